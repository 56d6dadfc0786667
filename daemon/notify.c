#include "daemon/notify.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "core/xalloc.h"

static char *one_line(const char *s)
{
	char *c = x_strdup(s ? s : "");

	for (char *p = c; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return c;
}

static void send_with_status(const char *head, const char *status)
{
	char *st = one_line(status);

	if (status)
		(void)sd_notifyf(0, "%s\nSTATUS=%s", head, st);
	else
		(void)sd_notify(0, head);
	x_free(st);
}

void notify_ready(const char *status)
{
	send_with_status("READY=1", status);
}

void notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
			 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

void notify_stopping(const char *status)
{
	send_with_status("STOPPING=1", status);
}

void notify_status(const char *status)
{
	char *st = one_line(status);

	(void)sd_notifyf(0, "STATUS=%s", st);
	x_free(st);
}

static void on_watchdog(uv_timer_t *t)
{
	(void)sd_notify(0, "WATCHDOG=1");
}

int notify_watchdog_start(uv_loop_t *loop, struct notify_watchdog *wd)
{
	uint64_t usec = 0;
	int r;

	wd->interval_ms = 0;
	wd->started = false;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	wd->interval_ms = usec / 2000;  /* half the interval, in ms */
	if (wd->interval_ms == 0)
		wd->interval_ms = 1;
	r = uv_timer_init(loop, &wd->timer);
	if (r < 0)
		return r;
	wd->timer.data = wd;
	wd->started = true;
	(void)sd_notify(0, "WATCHDOG=1");
	return uv_timer_start(&wd->timer, on_watchdog, wd->interval_ms, wd->interval_ms);
}

bool notify_watchdog_close(struct notify_watchdog *wd, uv_close_cb cb)
{
	if (!wd->started)
		return false;
	wd->started = false;
	uv_close((uv_handle_t *)&wd->timer, cb);
	return true;
}
