/* daemon.h — the daemon proper: one libuv loop that owns the config
 * snapshot, the database connection, signals, sd_notify and the drain.
 *
 * struct daemon is the owner object: every handle is embedded in it and it
 * outlives its last close callback (daemon_main returns only after the loop
 * ran out of handles). Life cycle:
 *   STARTING  config loaded, connecting to Postgres; READY=1 once connected
 *   RUNNING   READY=1 sent; SIGHUP reloads (daemon/reload.c)
 *   STOPPING  SIGTERM/SIGINT: STOPPING=1, no new work, in-flight work may
 *             finish until [daemon] shutdown_timeout; a second signal or
 *             the deadline ends the drain at once
 *   STOPPED   handles closing; the loop returns; exit 0
 *
 * Work accounting: future work sources call daemon_work_begin() (refused
 * once STOPPING) and daemon_work_end(); the drain waits for the count to
 * reach zero. Test hook: S3GRANTD_TEST_HOLD_WORK=1 in the environment
 * starts the daemon with one unit of work that never finishes, so tests can
 * observe the drain deadline and the second signal.
 */
#pragma once
#include <stdbool.h>

#include <uv.h>

#include "daemon/config.h"
#include "daemon/notify.h"
#include "store/pgconn.h"

struct buf;
struct watch_glue;
struct rglue;
struct export_glue;

enum daemon_state {
	DAEMON_STARTING,
	DAEMON_RUNNING,
	DAEMON_STOPPING,
	DAEMON_STOPPED,
	DAEMON_STATE_MAX
};

struct daemon {
	uv_loop_t loop;
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t status_timer;       /* refreshes STATUS= every status_interval */
	uv_timer_t drain_timer;        /* shutdown_timeout deadline */
	struct notify_watchdog wd;
	char *config_path;
	struct config *cfg;            /* the running snapshot; swapped on reload */
	struct pgconn *pg;             /* NULL once closed */
	enum daemon_state state;
	bool db_up;
	char *db_server;               /* "host=... dbname=..." while up */
	char *db_reason;               /* last failure while down */
	char *reload_error;            /* last failed reload, for STATUS; NULL if none */
	bool restart_pending[CONFIG_KEY_MAX]; /* file differs from the running value */
	unsigned in_flight;            /* units of work the drain waits for */
	struct watch_glue *queue;      /* change-queue watcher (daemon/watch.c) */
	bool listening;                /* LISTEN is up on the watcher's connection */
	struct export_glue *exporter;  /* nightly export (daemon/exportd.c) */
	struct rglue *recon;           /* the reconciler (daemon/recon.c) */
	int exit_code;
};

const char *daemon_state_name(enum daemon_state s);

/* Run the daemon with the config file at path until it is told to stop.
 * Returns the process exit code. */
int daemon_main(const char *config_path);

int daemon_work_begin(struct daemon *d) S3G_WUR;
/* READY=1 once config, database and LISTEN are up (STARTING only); true
 * when it was sent now. */
bool daemon_maybe_ready(struct daemon *d);
void daemon_work_end(struct daemon *d);

/* The one-line STATUS= summary (caller frees), and send it. */
char *daemon_status_line(const struct daemon *d);
void daemon_update_status(struct daemon *d);
/* The status_timer callback (re-armed by reload_apply). */
void daemon_on_status_timer(uv_timer_t *t);

/* Logging of key events; sensitive values never leave here raw. */
void daemon_log_db_connected(const char *server, const struct config *cfg);
void daemon_log_db_lost(const char *reason, bool was_up, unsigned attempts,
			unsigned long long retry_ms, const struct config *cfg);

/* daemon/reload.c */
/* SIGHUP: RELOADING=1, parse the file whole, validate, swap or keep; READY=1. */
void reload_run(struct daemon *d);
/* Apply the reloadable settings of d->cfg (log level, timers, pgconn). */
void reload_apply(struct daemon *d);
/* Register cfg's secrets with the logger (plus extra, e.g. a new file's). */
void reload_register_secrets(const struct config *cfg, const struct config *extra);
/* One log line: msg plus every key that differs from its default
 * (sensitive ones as "<redacted>"). */
void reload_log_config(const struct config *cfg, const char *msgid, const char *msg);

/* daemon/watch.c: the change-queue watcher and its hand-over to the reconciler (daemon/recon.c). */
int watch_daemon_start(struct daemon *d) S3G_WUR;
void watch_daemon_apply(struct daemon *d);   /* reload */
void watch_daemon_stop(struct daemon *d);    /* drain: stop claiming */
void watch_daemon_close(struct daemon *d);   /* finish: release, close */
void watch_daemon_status(const struct daemon *d, struct buf *b);

/* daemon/exportd.c: the nightly export (one unit of work until closed). */
int export_daemon_start(struct daemon *d) S3G_WUR;
void export_daemon_stop(struct daemon *d);   /* drain: finish the job in flight, close */
void export_daemon_close(struct daemon *d);  /* finish: close without holding the drain */
void export_daemon_status(const struct daemon *d, struct buf *b);
