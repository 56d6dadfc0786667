/* notify.h — sd_notify(3) messages to the service manager.
 *
 * Without NOTIFY_SOCKET every call is a no-op (libsystemd returns 0).
 * RELOADING=1 is sent together with MONOTONIC_USEC=<CLOCK_MONOTONIC µs> in
 * one datagram, as systemd's Type=notify-reload expects. Status lines are
 * single lines: newlines are replaced.
 *
 * The watchdog is a loop timer embedded in its owner: it pings WATCHDOG=1 at
 * half of WATCHDOG_USEC, so it only fires while the loop is turning. Close
 * it with notify_watchdog_close() and free the owner only after the close
 * callback.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct notify_watchdog {
	uv_timer_t timer;      /* handle; data points back to this struct */
	uint64_t interval_ms;  /* ping period (half of WATCHDOG_USEC); 0 = off */
	bool started;          /* timer initialised (needs closing) */
};

void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(const char *status);
void notify_status(const char *status);

/* Start pinging if the manager asked for a watchdog (sd_watchdog_enabled).
 * Returns 0 (also when disabled) or a negative libuv error. */
int notify_watchdog_start(uv_loop_t *loop, struct notify_watchdog *wd);
/* Returns true when a close was started (cb will fire). */
bool notify_watchdog_close(struct notify_watchdog *wd, uv_close_cb cb);
