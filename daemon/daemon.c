#include "daemon/daemon.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "daemon/log.h"
#include "daemon/recon.h"
#include "version.h"

/* Bounded text assembly: past the buffer's limit the text is truncated,
 * which is the intended behaviour for log and status lines. */
static void __attribute__((format(printf, 2, 3))) bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(b, fmt, ap) < 0) {
		/* truncated */
	}
	va_end(ap);
}

static const char *const state_names[DAEMON_STATE_MAX] = {
	[DAEMON_STARTING] = "starting",
	[DAEMON_RUNNING] = "running",
	[DAEMON_STOPPING] = "stopping",
	[DAEMON_STOPPED] = "stopped",
};

const char *daemon_state_name(enum daemon_state s)
{
	return (unsigned)s < DAEMON_STATE_MAX ? state_names[s] : "?";
}

static void finish(struct daemon *d);

/* ---- status ------------------------------------------------------------- */

char *daemon_status_line(const struct daemon *d)
{
	struct buf b;
	bool first = true;

	buf_init(&b, 4096);
	switch (d->state) {
	case DAEMON_STOPPING:
	case DAEMON_STOPPED:
		bprintf(&b, "stopping: draining %u in-flight work item%s",
				 d->in_flight, d->in_flight == 1 ? "" : "s");
		break;
	default:
		if (d->db_up) {
			bprintf(&b, "connected to database (%s); %s", d->db_server,
					 d->in_flight ? "working" : "idle");
			watch_daemon_status(d, &b);
			recond_status(d, &b);
			if (d->exporter) {
				(void)!buf_puts(&b, "; ");
				export_daemon_status(d, &b);
			}
		} else if (d->db_reason) {
			bprintf(&b, "waiting for database: %s", d->db_reason);
		} else {
			bprintf(&b, "%s", "connecting to database");
		}
		break;
	}
	if (d->reload_error)
		bprintf(&b, "; %s", d->reload_error);
	for (int k = 0; k < CONFIG_KEY_MAX; k++) {
		if (!d->restart_pending[k])
			continue;
		bprintf(&b, "%s%s", first ? "; restart required for " : ", ",
				 config_key_label(k));
		first = false;
	}
	return buf_steal(&b);
}

void daemon_update_status(struct daemon *d)
{
	char *s = daemon_status_line(d);

	notify_status(s);
	x_free(s);
}

void daemon_on_status_timer(uv_timer_t *t)
{
	struct daemon *d = t->data;
	char *s = daemon_status_line(d);

	notify_status(s);
	log_debug(NULL, LOG_FIELDS({ "status", s }), "status");
	x_free(s);
}

/* ---- work accounting and the drain -------------------------------------- */

int daemon_work_begin(struct daemon *d)
{
	if (d->state >= DAEMON_STOPPING)
		return S3G_ESHUTDOWN;
	d->in_flight++;
	return 0;
}

void daemon_work_end(struct daemon *d)
{
	if (d->in_flight)
		d->in_flight--;
	if (d->state == DAEMON_STOPPING && d->in_flight == 0)
		finish(d);
}

static void on_drain_deadline(uv_timer_t *t)
{
	struct daemon *d = t->data;
	char n[24];

	log_warning(NULL, LOG_FIELDS({ "in_flight", log_int(n, sizeof(n), d->in_flight) }),
		    "shutdown_timeout reached; abandoning in-flight work");
	finish(d);
}

static void begin_shutdown(struct daemon *d, const char *signame)
{
	char n[24], *st;

	if (d->state == DAEMON_STOPPED)
		return;
	if (d->state == DAEMON_STOPPING) {
		log_warning(NULL, LOG_FIELDS({ "signal", signame },
					     { "in_flight", log_int(n, sizeof(n), d->in_flight) }),
			    "second signal: exiting without waiting for in-flight work");
		finish(d);
		return;
	}
	d->state = DAEMON_STOPPING;
	uv_timer_stop(&d->status_timer);
	watch_daemon_stop(d);
	recond_stop(d);
	export_daemon_stop(d);
	st = daemon_status_line(d);
	notify_stopping(st);
	x_free(st);
	log_notice(LOG_MID_STOPPING,
		   LOG_FIELDS({ "signal", signame }, { "in_flight", log_int(n, sizeof(n), d->in_flight) }),
		   "stopping");
	if (d->in_flight == 0) {
		finish(d);
		return;
	}
	uv_timer_start(&d->drain_timer, on_drain_deadline,
		       (uint64_t)config_int(d->cfg, CONFIG_DAEMON_SHUTDOWN_TIMEOUT), 0);
}

static void on_pg_closed(void *ud)
{
	(void)ud;
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Close every handle; uv_run returns once the last close callback ran. */
static void finish(struct daemon *d)
{
	if (d->state == DAEMON_STOPPED)
		return;
	d->state = DAEMON_STOPPED;
	close_handle((uv_handle_t *)&d->sig_hup);
	close_handle((uv_handle_t *)&d->sig_term);
	close_handle((uv_handle_t *)&d->sig_int);
	close_handle((uv_handle_t *)&d->status_timer);
	close_handle((uv_handle_t *)&d->drain_timer);
	(void)notify_watchdog_close(&d->wd, NULL);
	recond_close(d);
	watch_daemon_close(d);
	export_daemon_close(d);
	if (d->pg) {
		pgconn_close(d->pg, on_pg_closed, d);
		d->pg = NULL;
	}
}

/* ---- database ----------------------------------------------------------- */

void daemon_log_db_connected(const char *server, const struct config *cfg)
{
	char *target = pgconn_redact_conninfo(config_str(cfg, CONFIG_DB_CONNINFO));

	log_info(LOG_MID_DB_CONNECTED, LOG_FIELDS({ "server", server }, { "conninfo", target }),
		 "connected to database");
	x_free(target);
}

void daemon_log_db_lost(const char *reason, bool was_up, unsigned attempts,
			unsigned long long retry_ms, const struct config *cfg)
{
	char *target = pgconn_redact_conninfo(config_str(cfg, CONFIG_DB_CONNINFO));
	char a[24], r[24];
	const struct log_field *f = LOG_FIELDS({ "reason", reason }, { "conninfo", target },
					       { "attempt", log_int(a, sizeof(a), attempts) },
					       { "retry_ms", log_int(r, sizeof(r), (long long)retry_ms) });

	/* A retry storm is one warning at first, then one per doubling. */
	if (was_up)
		log_warning(LOG_MID_DB_LOST, f, "database connection lost");
	else if ((attempts & (attempts - 1)) == 0)
		log_warning(LOG_MID_DB_LOST, f, "cannot connect to database");
	else
		log_debug(LOG_MID_DB_LOST, f, "cannot connect to database");
	x_free(target);
}

static void on_pg_connected(struct pgconn *pc, void *ud)
{
	struct daemon *d = ud;

	X_FREE(d->db_server);
	X_FREE(d->db_reason);
	d->db_server = pgconn_server(pc);
	d->db_up = true;
	daemon_log_db_connected(d->db_server, d->cfg);
	if (!daemon_maybe_ready(d))
		daemon_update_status(d);
}

bool daemon_maybe_ready(struct daemon *d)
{
	char *st;

	if (d->state != DAEMON_STARTING || !d->db_up || !d->listening)
		return false;
	d->state = DAEMON_RUNNING;
	st = daemon_status_line(d);
	notify_ready(st);
	log_notice(LOG_MID_READY, LOG_FIELDS({ "status", st }), "ready");
	x_free(st);
	return true;
}

static void on_pg_lost(struct pgconn *pc, int err, const char *reason, bool was_up,
		       uint64_t retry_ms, void *ud)
{
	struct daemon *d = ud;

	d->db_up = false;
	X_FREE(d->db_server);
	x_free(d->db_reason);
	d->db_reason = x_strdup(reason);
	daemon_log_db_lost(reason, was_up, pgconn_attempts(pc), retry_ms, d->cfg);
	daemon_update_status(d);
}

static void on_pg_notification(struct pgconn *pc, const char *channel, const char *payload,
			       int be_pid, void *ud)
{
	log_debug(NULL, LOG_FIELDS({ "channel", channel }), "notification");
}

/* ---- signals ------------------------------------------------------------ */

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	switch (signum) {
	case SIGHUP:
		if (d->state == DAEMON_STARTING || d->state == DAEMON_RUNNING)
			reload_run(d);
		break;
	case SIGTERM:
		begin_shutdown(d, "SIGTERM");
		break;
	case SIGINT:
		begin_shutdown(d, "SIGINT");
		break;
	default:
		break;
	}
}

static int start_signal(uv_signal_t *h, int signum)
{
	return uv_signal_start(h, on_signal, signum);
}

/* ---- main --------------------------------------------------------------- */

static void oom(size_t size)
{
	char n[24];

	log_err(NULL, LOG_FIELDS({ "size", log_int(n, sizeof(n), (long long)size) }), "out of memory");
}

static int load_initial(const char *path, struct config **ret_cfg)
{
	struct config_errors errs = {0};
	int r = config_load(path, ret_cfg, &errs);

	for (size_t i = 0; i < errs.n; i++) {
		char line[24];
		char *text = config_error_format(&errs.v[i]);

		log_err(NULL, LOG_FIELDS({ "file", errs.v[i].file },
					 { "line", log_int(line, sizeof(line), errs.v[i].line) },
					 { "key", errs.v[i].key }, { "reason", errs.v[i].reason }),
			"configuration error: %s", text);
		x_free(text);
	}
	config_errors_free(&errs);
	return r;
}

int daemon_main(const char *config_path)
{
	struct daemon *d = x_calloc(1, sizeof(*d));
	struct pgconn_opts po = {0};
	static const struct pgconn_cbs pcbs = {
		.connected = on_pg_connected,
		.lost = on_pg_lost,
		.notification = on_pg_notification,
	};
	const char *hold;
	char *st;
	int r, rc = 1;

	log_init("s3grantd");
	xalloc_set_oom_hook(oom);
	signal(SIGPIPE, SIG_IGN);
	d->config_path = x_strdup(config_path);
	if (load_initial(config_path, &d->cfg) < 0)
		goto out_free;
	reload_register_secrets(d->cfg, NULL);
	r = uv_loop_init(&d->loop);
	if (r < 0) {
		log_err(NULL, LOG_FIELDS({ "error", uv_strerror(r) }), "cannot create the event loop");
		goto out_free;
	}
	d->state = DAEMON_STARTING;
	/* Every handle is initialised before anything can fail, so finish()
	 * may close them all. */
	if ((r = uv_timer_init(&d->loop, &d->status_timer)) < 0 ||
	    (r = uv_timer_init(&d->loop, &d->drain_timer)) < 0 ||
	    (r = uv_signal_init(&d->loop, &d->sig_hup)) < 0 ||
	    (r = uv_signal_init(&d->loop, &d->sig_term)) < 0 ||
	    (r = uv_signal_init(&d->loop, &d->sig_int)) < 0) {
		log_err(NULL, LOG_FIELDS({ "error", uv_strerror(r) }), "cannot set up the event loop");
		goto out_free;  /* exiting: the half-built loop is left to the kernel */
	}
	d->status_timer.data = d->drain_timer.data = d;
	d->sig_hup.data = d->sig_term.data = d->sig_int.data = d;
	if ((r = start_signal(&d->sig_hup, SIGHUP)) < 0 ||
	    (r = start_signal(&d->sig_term, SIGTERM)) < 0 ||
	    (r = start_signal(&d->sig_int, SIGINT)) < 0 ||
	    (r = notify_watchdog_start(&d->loop, &d->wd)) < 0) {
		log_err(NULL, LOG_FIELDS({ "error", uv_strerror(r) }), "cannot set up the event loop");
		goto out_loop;
	}
	reload_apply(d);
	{
		char pid[24], wd[24];

		log_notice(LOG_MID_STARTED,
			   LOG_FIELDS({ "version", S3G_VERSION }, { "pid", log_int(pid, sizeof(pid), getpid()) },
				      { "config", config_path }, { "log_sink", log_sink_name(log_get_sink()) },
				      { "watchdog_ms", log_int(wd, sizeof(wd), (long long)d->wd.interval_ms) }),
			   "s3grantd starting");
	}
	reload_log_config(d->cfg, LOG_MID_CONFIG, "configuration loaded");

	hold = getenv("S3GRANTD_TEST_HOLD_WORK");
	if (hold && strcmp(hold, "1") == 0)
		d->in_flight = 1;

	po.conninfo = config_str(d->cfg, CONFIG_DB_CONNINFO);
	po.connect_timeout_ms = (uint64_t)config_int(d->cfg, CONFIG_DB_CONNECT_TIMEOUT);
	po.backoff_max_ms = (uint64_t)config_int(d->cfg, CONFIG_DB_RECONNECT_MAX_BACKOFF);
	if ((r = pgconn_new(&d->loop, &po, &pcbs, d, &d->pg)) < 0 || (r = pgconn_start(d->pg)) < 0) {
		log_err(NULL, LOG_FIELDS({ "error", err_str(r) }), "cannot start the database connection");
		goto out_loop;
	}
	if ((r = watch_daemon_start(d)) < 0) {
		log_err(NULL, LOG_FIELDS({ "error", err_str(r) }), "cannot start the change-queue listener");
		goto out_loop;
	}
	if ((r = recond_start(d)) < 0) {
		log_err(NULL, LOG_FIELDS({ "error", err_str(r) }), "cannot start the reconciler");
		goto out_loop;
	}
	if ((r = export_daemon_start(d)) < 0) {
		log_err(NULL, LOG_FIELDS({ "error", err_str(r) }), "cannot start the access summary export");
		goto out_loop;
	}
	st = daemon_status_line(d);
	notify_status(st);
	x_free(st);

	uv_run(&d->loop, UV_RUN_DEFAULT);
	log_notice(LOG_MID_STOPPED, LOG_NO_FIELDS, "stopped");
	rc = d->exit_code;
	goto out_close;
out_loop:
	finish(d);
	uv_run(&d->loop, UV_RUN_DEFAULT);
out_close:
	if (uv_loop_close(&d->loop) != 0)
		log_warning(NULL, LOG_NO_FIELDS, "event loop closed with live handles");
out_free:
	config_free(d->cfg);
	x_free(d->config_path);
	x_free(d->db_server);
	x_free(d->db_reason);
	x_free(d->reload_error);
	x_free(d);
	log_set_secrets(NULL, 0);
	return rc;
}
