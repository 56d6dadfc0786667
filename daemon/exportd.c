/* exportd.c — the daemon's side of the nightly access summary export.
 *
 * Owns one struct export (daemon/export.c) for the life of the process and
 * chooses its upload: the local directory sink when [export] sink_dir is
 * set (the local demo, tests), else S3 (daemon/export_s3.c, with the [aws]
 * endpoints, CA file, request timeout and attempts, the daemon's own key
 * for AssumeRole, and the secrets key for the export's sealed secret). On
 * SIGTERM an export job in flight becomes one unit of in-flight work until
 * the export's close callback, so the drain waits for it up to
 * shutdown_timeout; when the drain ends first, closing the S3 uploader
 * cancels the upload (recorded as failed, retried by the next daemon).
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/isotime.h"
#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/export.h"
#include "daemon/export_s3.h"
#include "daemon/log.h"
#include "store/secrets.h"

struct export_glue {
	struct daemon *d;
	struct export *e;            /* NULL once stopped */
	struct export_s3 *s3;        /* the S3 uploader (no sink_dir); NULL once closed */
	bool export_open;            /* e not closed yet */
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

static int s3_start(struct daemon *d, struct export_glue *g)
{
	const struct config *cfg = d->cfg;
	const char *kf = config_str(cfg, CONFIG_SECRETS_KEY_FILE);
	struct secrets_key key;
	bool have_key = false;
	char *path = NULL;
	struct export_s3_opts so = {
		.ca_file = config_str(cfg, CONFIG_AWS_CA_FILE),
		.endpoint_url = config_str(cfg, CONFIG_AWS_ENDPOINT_URL),
		.endpoint_url_s3 = config_str(cfg, CONFIG_AWS_ENDPOINT_URL_S3),
		.endpoint_url_sts = config_str(cfg, CONFIG_AWS_ENDPOINT_URL_STS),
		.access_key_id = config_str(cfg, CONFIG_AWS_ACCESS_KEY_ID),
		.secret_access_key = config_str(cfg, CONFIG_AWS_SECRET_ACCESS_KEY),
		.timeout_ms = (uint64_t)config_int(cfg, CONFIG_AWS_REQUEST_TIMEOUT),
		.max_attempts = (unsigned)config_int(cfg, CONFIG_AWS_MAX_ATTEMPTS),
	};
	int r;

	if (secrets_key_path(*kf ? kf : NULL, &path) == 0) {
		r = secrets_key_load(path, &key);
		if (r == 0)
			have_key = true;
		else
			log_warning(NULL, LOG_FIELDS({ "file", path }, { "error", err_str(r) }),
				    "export: cannot read the secrets key; an access-key export cannot run");
		x_free(path);
	}
	so.key = have_key ? &key : NULL;
	r = export_s3_new(&d->loop, &so, &g->s3);
	secrets_key_wipe(&key);
	if (r < 0)
		log_err(NULL, LOG_FIELDS({ "error", err_str(r) }), "export: cannot set up the S3 uploader");
	return r;
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
		r = s3_start(d, g);
		if (r < 0) {
			x_free(g->state_dir);
			x_free(g);
			return r;
		}
		o.upload = export_s3_upload;
		o.upload_ud = g->s3;
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
		if (g->s3)   /* nothing ran on it yet */
			export_s3_close(g->s3, NULL, NULL);
		x_free(g->sink_dir);
		x_free(g->state_dir);
		x_free(g);
		return r;
	}
	g->export_open = true;
	d->exporter = g;
	return 0;
}

/* The glue goes once the export and the S3 uploader are both closed. */
static void glue_maybe_free(struct export_glue *g)
{
	struct daemon *d = g->d;
	bool counted = g->counted;

	if (g->export_open || g->s3)
		return;
	if (d->exporter == g)
		d->exporter = NULL;
	x_free(g->sink_dir);
	x_free(g->state_dir);
	x_free(g);
	if (counted)
		daemon_work_end(d);
}

static void on_s3_closed(void *ud)
{
	struct export_glue *g = ud;

	g->s3 = NULL;
	glue_maybe_free(g);
}

static void on_export_closed(void *ud)
{
	struct export_glue *g = ud;

	g->export_open = false;
	if (g->s3)   /* no job in flight any more: nothing to cancel */
		export_s3_close(g->s3, on_s3_closed, g);
	else
		glue_maybe_free(g);
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
	/* An upload still in flight holds the export open: cancel it (its done
	 * callback records the failure; the export then closes). */
	if (g->export_open && g->s3) {
		export_s3_close(g->s3, on_s3_closed, g);
	}
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
