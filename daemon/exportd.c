/* exportd.c — the daemon's side of the nightly access summary export.
 *
 * Owns one struct export (daemon/export.c) for the life of the process and
 * chooses its upload: the local directory sink when [export] sink_dir is
 * set (the local demo, tests), else S3 (daemon/export_s3.c). On SIGTERM an
 * export job in flight becomes one unit of in-flight work until the export's
 * close callback, so the drain waits for it up to shutdown_timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/isotime.h"
#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/export.h"
#include "daemon/log.h"

struct export_glue {
	struct daemon *d;
	struct export *e;            /* NULL once stopped */
	struct export_dirsink sink;  /* used when sink_dir is set */
	char *sink_dir;
	char *state_dir;
	enum export_event_kind last; /* for STATUS */
	int64_t last_day;
	int64_t next_ms;
	bool counted;                /* holds one unit of daemon work (draining) */
};

static void day_str(int64_t day, char out[16])
{
	int64_t y;
	unsigned m, dd;

	isotime_civil_from_days(day, &y, &m, &dd);
	snprintf(out, 16, "%04lld-%02u-%02u", (long long)y, m, dd);
}

static void on_event(void *ud, const struct export_event *ev)
{
	struct export_glue *g = ud;
	char day[16], next[32];

	g->last = ev->kind;
	g->next_ms = ev->next_ms;
	day_str(ev->day, day);
	isotime_format(ev->next_ms, 0, next);
	switch (ev->kind) {
	case EXPORT_EV_SUCCEEDED:   /* daemon/export.c logs the outcome itself */
		g->last_day = ev->day;
		break;
	case EXPORT_EV_FAILED:
		break;
	case EXPORT_EV_DB_ERROR:
		log_warning(NULL, LOG_FIELDS({ "error", ev->error ? ev->error : "" }),
			    "access summary export: database check failed");
		break;
	case EXPORT_EV_BUSY:
		log_debug(NULL, LOG_FIELDS({ "day", day }), "access summary export held by another daemon");
		break;
	case EXPORT_EV_IDLE:
		log_debug(NULL, LOG_FIELDS({ "next", next }), "access summary export idle");
		break;
	case EXPORT_EV_DISABLED:
	case EXPORT_EV_MAX:
		break;
	}
}

static const char *state_dir_default(void)
{
	const char *s = getenv("STATE_DIRECTORY");   /* systemd StateDirectory= */

	if (s && *s) {
		const char *colon = strchr(s, ':');      /* several directories: take the first */

		return colon ? NULL : s;
	}
	return "/var/lib/s3grantd";
}

int export_daemon_start(struct daemon *d)
{
	struct export_glue *g = x_calloc(1, sizeof(*g));
	struct export_opts o = {0};
	const char *sink = config_str(d->cfg, CONFIG_EXPORT_SINK_DIR);
	const char *state = config_str(d->cfg, CONFIG_EXPORT_STATE_DIR);
	int r;

	g->d = d;
	g->last = EXPORT_EV_MAX;
	if (!*state)
		state = state_dir_default();
	if (!state) {
		const char *s = getenv("STATE_DIRECTORY");

		g->state_dir = x_strndup(s, (size_t)(strchr(s, ':') - s));
	} else {
		g->state_dir = x_strdup(state);
	}
	o.conninfo = config_str(d->cfg, CONFIG_DB_CONNINFO);
	o.state_dir = g->state_dir;
	o.default_time_of_day = (int)config_int(d->cfg, CONFIG_EXPORT_TIME_OF_DAY) * 60;
	o.default_time_zone = config_str(d->cfg, CONFIG_EXPORT_TIMEZONE);
	o.on_event = on_event;
	o.event_ud = g;
	o.listen = true;
	if (*sink) {
		g->sink_dir = x_strdup(sink);
		g->sink.loop = &d->loop;
		g->sink.dir = g->sink_dir;
		o.upload = export_dirsink_upload;
		o.upload_ud = &g->sink;
	} else {
		o.upload = export_s3_upload;
		o.upload_ud = d;
	}
	r = export_new(&d->loop, &o, &g->e);
	if (r == 0) {
		r = export_start(g->e);
		if (r < 0) {
			export_stop(g->e, NULL, NULL);
			g->e = NULL;
		}
	}
	if (r < 0) {
		x_free(g->sink_dir);
		x_free(g->state_dir);
		x_free(g);
		return r;
	}
	d->exporter = g;
	return 0;
}

static void on_export_closed(void *ud)
{
	struct export_glue *g = ud;
	struct daemon *d = g->d;
	bool counted = g->counted;

	d->exporter = NULL;
	x_free(g->sink_dir);
	x_free(g->state_dir);
	x_free(g);
	if (counted)
		daemon_work_end(d);
}

void export_daemon_stop(struct daemon *d)
{
	struct export_glue *g = d->exporter;

	if (!g || !g->e)
		return;
	/* A job in flight (a worker thread cannot be cancelled) holds the
	 * drain; daemon_work_begin() refuses new work once STOPPING, and this is
	 * work already running, so count it directly. */
	if (export_busy(g->e)) {
		d->in_flight++;
		g->counted = true;
	}
	export_stop(g->e, on_export_closed, g);
	g->e = NULL;
}

void export_daemon_close(struct daemon *d)
{
	struct export_glue *g = d->exporter;

	if (!g)
		return;
	if (g->e) {
		export_stop(g->e, on_export_closed, g);
		g->e = NULL;
	}
	g->counted = false;   /* the drain is over: nothing waits for it any more */
}

void export_daemon_status(const struct daemon *d, struct buf *b)
{
	const struct export_glue *g = d->exporter;
	char day[16];

	if (!g)
		return;
	switch (g->last) {
	case EXPORT_EV_SUCCEEDED:
		day_str(g->last_day, day);
		(void)!buf_printf(b, "export %s ok", day);
		break;
	case EXPORT_EV_FAILED:
		(void)!buf_puts(b, "export failing");
		break;
	case EXPORT_EV_DISABLED:
		(void)!buf_puts(b, "export not configured");
		break;
	default:
		(void)!buf_puts(b, "export scheduled");
		break;
	}
}
