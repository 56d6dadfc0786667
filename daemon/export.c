/* export.c — the export job: check → decide → claim+produce → upload → record. */
#include "daemon/export.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/isotime.h"
#include "core/xalloc.h"
#include "daemon/log.h"
#include "store/pgconn.h"

#define DEF_POLL_MS 60000u
#define DEF_LEASE_MS (30 * 60 * 1000LL)
#define DEF_RETRY_BASE_MS (5 * 60 * 1000LL)
#define DEF_RETRY_MAX_MS (60 * 60 * 1000LL)
#define DEF_MAX_ATTEMPTS 10
#define DEF_TIME_OF_DAY (3 * 3600)

enum job_state { J_IDLE, J_CHECK, J_PRODUCE, J_UPLOAD, J_RECORD };

struct job {
	int64_t now_ms;               /* the clock when the check was dispatched */
	int status;                   /* worker outcome; 0 or negative */
	char error[1100];
	/* check */
	bool have_cfg;
	struct exportdb_config cfg;
	bool have_last;
	struct exportdb_row last;
	int pending;                  /* manual requests waiting */
	int64_t next_ms;              /* the scheduler's next wake-up */
	bool after_busy;              /* the previous job lost the claim */
	/* produce */
	bool manual;
	int64_t day;
	bool claimed;
	struct exportdb_claim claim;
	bool produced;
	struct exportfile_result files;
	int64_t retry_ms;             /* failure: next retry (0 = none) */
	uint64_t rows;                /* grant records produced */
	/* upload */
	int upload_status;
	bool lease_lost;
};

struct export {
	uv_loop_t *loop;
	uv_timer_t timer;
	uv_work_t work;
	struct export_opts o;         /* strings below are the copies */
	char *conninfo, *state_dir, *instance, *default_tz;
	char *orig_tz;                /* TZ at start (NULL = unset) */
	char *applied_tz;             /* zone applied with setenv; NULL = orig */
	PGconn *conn;                 /* worker thread only (one job at a time) */
	struct pgconn *listen;
	enum job_state state;
	bool kick_pending, stopping, timer_closing, listen_closing;
	void (*closed_cb)(void *ud);
	void *closed_ud;
	struct job job;
};

static const char *const event_names[EXPORT_EV_MAX] = {
	[EXPORT_EV_IDLE] = "idle",
	[EXPORT_EV_DISABLED] = "disabled",
	[EXPORT_EV_BUSY] = "busy",
	[EXPORT_EV_SUCCEEDED] = "succeeded",
	[EXPORT_EV_FAILED] = "failed",
	[EXPORT_EV_DB_ERROR] = "db-error",
};

const char *export_event_name(enum export_event_kind k)
{
	return (unsigned)k < EXPORT_EV_MAX ? event_names[k] : "?";
}

int export_localtime(int64_t utc, struct sched_local *ret, void *user)
{
	time_t t = (time_t)utc;
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return S3G_EINVAL;
	ret->day = isotime_days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
	ret->sec_of_day = tm.tm_hour * 3600 + tm.tm_min * 60 + (tm.tm_sec > 59 ? 59 : tm.tm_sec);
	return 0;
}

static int64_t now_ms(const struct export *e)
{
	struct timespec ts;

	if (e->o.now_ms)
		return e->o.now_ms(e->o.clock_ud);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(struct export *e, const struct export_event *ev)
{
	if (e->o.on_event)
		e->o.on_event(e->o.event_ud, ev);
}

/* ---- time zone ------------------------------------------------------------ */

static void apply_tz(struct export *e, const char *zone)
{
	const char *want = zone && zone[0] ? zone : (e->default_tz && e->default_tz[0] ? e->default_tz : NULL);

	if ((want == NULL && e->applied_tz == NULL) || (want && e->applied_tz && strcmp(want, e->applied_tz) == 0))
		return;
	if (want) {
		char *v = x_asprintf(":%s", want);

		setenv("TZ", v, 1);
		x_free(v);
	} else if (e->orig_tz) {
		setenv("TZ", e->orig_tz, 1);
	} else {
		unsetenv("TZ");
	}
	tzset();
	x_free(e->applied_tz);
	e->applied_tz = want ? x_strdup(want) : NULL;
}

/* ---- worker side ----------------------------------------------------------- */

static int ensure_conn(struct export *e, struct job *j)
{
	if (e->conn && PQstatus(e->conn) == CONNECTION_OK)
		return 0;
	if (e->conn)
		PQfinish(e->conn);
	e->conn = PQconnectdb(e->conninfo);
	if (PQstatus(e->conn) != CONNECTION_OK) {
		snprintf(j->error, sizeof(j->error), "cannot connect to the database: %s", PQerrorMessage(e->conn));
		j->error[strcspn(j->error, "\n")] = '\0';
		PQfinish(e->conn);
		e->conn = NULL;
		return S3G_EPGCONN;
	}
	PQclear(PQexec(e->conn, "SET client_min_messages = warning"));
	PQclear(PQexec(e->conn, "SET application_name = 's3grantd-export'"));
	return 0;
}

static void set_pgerr(struct job *j, const struct pgerr *err)
{
	snprintf(j->error, sizeof(j->error), "%s", err->message);
}

static void work_check(uv_work_t *w)
{
	struct export *e = w->data;
	struct job *j = &e->job;
	struct pgerr err;
	int r;

	pgerr_clear(&err);
	j->status = ensure_conn(e, j);
	if (j->status < 0)
		return;
	exportdb_config_free(&j->cfg);
	r = exportdb_config_load(e->conn, &j->cfg, &err);
	j->have_cfg = r == 0;
	if (r < 0 && r != S3G_ENOTFOUND)
		goto fail;
	r = exportdb_last_scheduled(e->conn, &j->last, &err);
	j->have_last = r == 0;
	if (r < 0 && r != S3G_ENOTFOUND)
		goto fail;
	r = exportdb_pending_requests(e->conn, &j->pending, &err);
	if (r < 0)
		goto fail;
	return;
fail:
	j->status = r;
	set_pgerr(j, &err);
}

static int64_t retry_at(const struct export *e, const struct job *j, int attempts)
{
	int64_t d = e->o.retry_base_ms;

	if (j->manual || attempts >= e->o.max_attempts)
		return 0;
	for (int i = 1; i < attempts && d < e->o.retry_max_ms; i++)
		d *= 2;
	if (d > e->o.retry_max_ms)
		d = e->o.retry_max_ms;
	return j->now_ms + d;
}

static void work_produce(uv_work_t *w)
{
	struct export *e = w->data;
	struct job *j = &e->job;
	struct pgerr err;
	int r;

	pgerr_clear(&err);
	j->status = ensure_conn(e, j);
	if (j->status < 0)
		return;
	if (j->manual)
		r = exportdb_claim_request(e->conn, j->day, e->instance, j->now_ms, e->o.lease_ms, &j->claim, &err);
	else
		r = exportdb_claim_day(e->conn, j->day, e->instance, j->now_ms, e->o.lease_ms, &j->claim, &err);
	if (r == S3G_ECONFLICT || r == S3G_ENOTFOUND)
		return;   /* someone else has it */
	if (r < 0) {
		j->status = r;
		set_pgerr(j, &err);
		return;
	}
	j->claimed = true;
	{
		const struct exportfile_opts fo = {
			.state_dir = e->state_dir,
			.path = j->cfg.path,
			.day = j->day,
			.export_time_ms = j->now_ms,
			.time_zone = e->applied_tz,
			.kind = j->manual ? "manual" : "schedule",
			.level = e->o.gzip_level,
		};

		r = exportfile_produce(e->conn, &fo, &j->files, j->error, sizeof(j->error));
	}
	if (r == 0) {
		j->produced = true;
		return;
	}
	/* record the failure now, on this connection */
	{
		struct exportdb_outcome out = { .ok = false, .error = j->error, .rows = -1 };

		j->retry_ms = retry_at(e, j, j->claim.attempts);
		out.next_retry_ms = j->retry_ms;
		if (exportdb_finish(e->conn, j->claim.id, e->instance, j->now_ms, &out, &err) == S3G_ECONFLICT)
			j->lease_lost = true;
	}
}

static void work_record(uv_work_t *w)
{
	struct export *e = w->data;
	struct job *j = &e->job;
	struct exportdb_outcome out = { .ok = j->upload_status == 0, .rows = -1 };
	struct pgerr err;
	char *objects = NULL;
	int r;

	pgerr_clear(&err);
	if (out.ok) {
		objects = exportfile_objects_json(&j->files);
		out.prefix = j->files.prefix;
		out.manifest_key = j->files.obj[EXPORTFILE_MANIFEST].key;
		out.rows = (long long)j->files.obj[EXPORTFILE_GRANTS].rows;
		out.objects_json = objects;
	} else {
		j->retry_ms = retry_at(e, j, j->claim.attempts);
		out.error = j->error;
		out.next_retry_ms = j->retry_ms;
	}
	j->status = ensure_conn(e, j);
	if (j->status == 0) {
		r = exportdb_finish(e->conn, j->claim.id, e->instance, j->now_ms,
				    &out, &err);
		if (r == S3G_ECONFLICT)
			j->lease_lost = true;
		else if (r < 0) {
			j->status = r;
			if (out.ok)
				set_pgerr(j, &err);
		}
	}
	x_free(objects);
	j->rows = j->files.obj[EXPORTFILE_GRANTS].rows;
	exportfile_cleanup(&j->files);
}

/* ---- loop side --------------------------------------------------------------- */

static void start_check(struct export *e);
static void maybe_closed(struct export *e);

static void on_timer(uv_timer_t *t)
{
	export_kick(t->data);
}

static void arm(struct export *e, int64_t next_ms)
{
	int64_t now = now_ms(e), d = next_ms > 0 ? next_ms - now : (int64_t)e->o.poll_ms;

	if (d < 0)
		d = 0;
	if (d > (int64_t)e->o.poll_ms)
		d = (int64_t)e->o.poll_ms;
	uv_timer_start(&e->timer, on_timer, (uint64_t)d, 0);
}

static void job_done(struct export *e, bool recheck)
{
	e->state = J_IDLE;
	e->job.after_busy = false;
	if (e->stopping) {
		maybe_closed(e);
		return;
	}
	if (recheck || e->kick_pending) {
		e->kick_pending = false;
		start_check(e);
	}
}

static void queue(struct export *e, enum job_state st, uv_work_cb work, uv_after_work_cb after)
{
	int r;

	e->state = st;
	e->work.data = e;
	r = uv_queue_work(e->loop, &e->work, work, after);
	if (r < 0) {   /* cannot happen with a valid loop; stay alive on the timer */
		log_err(NULL, LOG_FIELDS({ "error", uv_strerror(r) }), "export: cannot queue work");
		e->state = J_IDLE;
		arm(e, 0);
	}
}

static void day_str(int64_t day, char out[16])
{
	exportdb_day_str(day, out);
}

static void after_record(uv_work_t *w, int status)
{
	struct export *e = w->data;
	struct job *j = &e->job;
	struct export_event ev = { .day = j->day, .id = j->claim.id, .attempts = j->claim.attempts,
				   .manual = j->manual };
	char ds[16], att[16], rows[32], nxt[32];

	day_str(j->day, ds);
	snprintf(att, sizeof(att), "%d", j->claim.attempts);
	if (j->upload_status == 0 && j->status == 0 && !j->lease_lost) {
		ev.kind = EXPORT_EV_SUCCEEDED;
		ev.rows = j->rows;
		snprintf(rows, sizeof(rows), "%llu", (unsigned long long)ev.rows);
		log_notice(LOG_MID_EXPORT_OK, LOG_FIELDS({ "day", ds }, { "attempt", att }, { "grants", rows },
			   { "manual", j->manual ? "yes" : "no" }), "access summary exported");
	} else {
		ev.kind = EXPORT_EV_FAILED;
		ev.next_ms = j->retry_ms;
		if (j->lease_lost)
			snprintf(j->error, sizeof(j->error), "the export's lease expired before it finished");
		ev.error = j->error;
		if (j->retry_ms) {
			char iso[32];

			isotime_format(j->retry_ms, 0, iso);
			snprintf(nxt, sizeof(nxt), "%s", iso);
		} else {
			snprintf(nxt, sizeof(nxt), "never");
		}
		log_warning(LOG_MID_EXPORT_FAILED, LOG_FIELDS({ "day", ds }, { "attempt", att }, { "error", j->error },
			    { "retry_at", nxt }, { "manual", j->manual ? "yes" : "no" }), "access summary export failed");
	}
	emit(e, &ev);
	job_done(e, true);
}

static void on_uploaded(void *ud, int status, const char *error)
{
	struct export *e = ud;
	struct job *j = &e->job;

	j->upload_status = status;
	if (status < 0)
		snprintf(j->error, sizeof(j->error), "upload: %s", error && error[0] ? error : err_str(status));
	queue(e, J_RECORD, work_record, after_record);
}

static void after_produce(uv_work_t *w, int status)
{
	struct export *e = w->data;
	struct job *j = &e->job;
	struct export_event ev = { .day = j->day, .manual = j->manual };
	char ds[16];

	day_str(j->day, ds);
	if (j->status < 0) {
		ev.kind = EXPORT_EV_DB_ERROR;
		ev.error = j->error;
		log_warning(NULL, LOG_FIELDS({ "day", ds }, { "error", j->error }), "export: claim failed");
		emit(e, &ev);
		job_done(e, false);
		arm(e, 0);
		return;
	}
	if (!j->claimed) {
		ev.kind = EXPORT_EV_BUSY;
		log_info(NULL, LOG_FIELDS({ "day", ds }), "export: another daemon holds this export");
		emit(e, &ev);
		job_done(e, true);
		e->job.after_busy = true;
		return;
	}
	ev.id = j->claim.id;
	ev.attempts = j->claim.attempts;
	if (!j->produced) {
		j->upload_status = S3G_EPGQUERY;
		after_record(w, 0);
		return;
	}
	{
		const struct export_upload_req req = { .cfg = &j->cfg, .files = &j->files };
		int r;

		e->state = J_UPLOAD;
		j->upload_status = 0;
		r = e->o.upload(e->o.upload_ud, &req, on_uploaded, e);
		if (r < 0) {
			j->upload_status = r;
			snprintf(j->error, sizeof(j->error), "upload: cannot start: %s", err_str(r));
			queue(e, J_RECORD, work_record, after_record);
		}
	}
}

static void after_check(uv_work_t *w, int status)
{
	struct export *e = w->data;
	struct job *j = &e->job;
	struct export_event ev = { 0 };
	const struct sched_clock clk = { export_localtime, NULL };
	struct sched_decision d;
	int64_t last_day = INT64_MIN, retry = 0;
	int last_ok = 0, tod, r;
	bool after_busy = j->after_busy;

	if (e->stopping) {
		job_done(e, false);
		return;
	}
	if (j->status < 0) {
		ev.kind = EXPORT_EV_DB_ERROR;
		ev.error = j->error;
		log_warning(NULL, LOG_FIELDS({ "error", j->error }), "export: cannot read the export state");
		emit(e, &ev);
		job_done(e, false);
		arm(e, 0);
		return;
	}
	if (!j->have_cfg || !j->cfg.enabled) {
		ev.kind = EXPORT_EV_DISABLED;
		emit(e, &ev);
		job_done(e, false);
		arm(e, 0);
		return;
	}
	apply_tz(e, j->cfg.time_zone);
	tod = j->cfg.time_of_day >= 0 ? j->cfg.time_of_day : e->o.default_time_of_day;
	if (j->have_last) {
		last_day = j->last.day;
		switch (j->last.status) {
		case EXPORTDB_SUCCEEDED:
			last_ok = 1;
			break;
		case EXPORTDB_FAILED:
			retry = j->last.next_retry_ms ? (j->last.next_retry_ms + 999) / 1000 : 0;
			break;
		default:          /* running: another daemon may take over when its lease ends */
			retry = (j->last.lease_until_ms + 999) / 1000;
			break;
		}
	}
	r = sched_decide(&clk, tod, j->now_ms / 1000, last_day, last_ok, retry, &d);
	if (r < 0) {
		ev.kind = EXPORT_EV_DB_ERROR;
		ev.error = "cannot compute local time";
		emit(e, &ev);
		job_done(e, false);
		arm(e, 0);
		return;
	}
	j->next_ms = d.next_utc * 1000;
	j->claimed = j->produced = j->lease_lost = false;
	j->retry_ms = 0;
	j->upload_status = 0;
	j->error[0] = '\0';
	memset(&j->claim, 0, sizeof(j->claim));
	if (j->pending > 0) {
		struct sched_local l;

		if (export_localtime(j->now_ms / 1000, &l, NULL) < 0)
			l.day = j->now_ms / 86400000;
		j->manual = true;
		j->day = l.day;
	} else if (d.due && !after_busy) {
		j->manual = false;
		j->day = d.day;
	} else {
		ev.kind = EXPORT_EV_IDLE;
		ev.next_ms = j->next_ms;
		emit(e, &ev);
		job_done(e, false);
		arm(e, j->next_ms);
		return;
	}
	queue(e, J_PRODUCE, work_produce, after_produce);
}

static void start_check(struct export *e)
{
	uv_timer_stop(&e->timer);
	e->job.status = 0;
	e->job.error[0] = '\0';
	e->job.now_ms = now_ms(e);
	queue(e, J_CHECK, work_check, after_check);
}

void export_kick(struct export *e)
{
	if (e->stopping)
		return;
	if (e->state != J_IDLE) {
		e->kick_pending = true;
		return;
	}
	start_check(e);
}

bool export_busy(const struct export *e)
{
	return e->state != J_IDLE;
}

/* ---- LISTEN -------------------------------------------------------------------- */

static void on_listen_result(struct pgconn *pc, int status, const PGresult *res, void *ud)
{
}

static void on_listen_connected(struct pgconn *pc, void *ud)
{
	struct export *e = ud;

	if (pgconn_query(pc, EXPORTDB_LISTEN_SQL, 0, NULL, on_listen_result, e) < 0)
		return;
	export_kick(e);   /* catch up with what was missed while down */
}

static void on_listen_lost(struct pgconn *pc, int err, const char *reason, bool was_up, uint64_t retry_ms,
			   void *ud)
{
}

static void on_listen_notification(struct pgconn *pc, const char *channel, const char *payload, int be_pid,
				   void *ud)
{
	if (strcmp(channel, EXPORTDB_CHANNEL) == 0)
		export_kick(ud);
}

/* ---- life cycle ------------------------------------------------------------------ */

int export_new(uv_loop_t *loop, const struct export_opts *opts, struct export **ret_e)
{
	struct export *e;
	const char *tz = getenv("TZ");
	int r;

	if (!opts->upload || !opts->state_dir)
		return S3G_EINVAL;
	e = x_calloc(1, sizeof(*e));
	e->loop = loop;
	e->o = *opts;
	e->conninfo = x_strdup(opts->conninfo ? opts->conninfo : "");
	e->state_dir = x_strdup(opts->state_dir);
	if (opts->instance) {
		e->instance = x_strdup(opts->instance);
	} else {
		char host[256] = "localhost";

		gethostname(host, sizeof(host) - 1);
		e->instance = x_asprintf("%s:%ld", host, (long)getpid());
	}
	e->default_tz = opts->default_time_zone && opts->default_time_zone[0] ? x_strdup(opts->default_time_zone)
		: NULL;
	e->orig_tz = tz ? x_strdup(tz) : NULL;
	e->o.conninfo = e->conninfo;
	e->o.state_dir = e->state_dir;
	e->o.instance = e->instance;
	e->o.default_time_zone = e->default_tz;
	if (e->o.default_time_of_day < 0 || e->o.default_time_of_day >= 86400)
		e->o.default_time_of_day = DEF_TIME_OF_DAY;
	if (!e->o.poll_ms)
		e->o.poll_ms = DEF_POLL_MS;
	if (e->o.lease_ms <= 0)
		e->o.lease_ms = DEF_LEASE_MS;
	if (e->o.retry_base_ms <= 0)
		e->o.retry_base_ms = DEF_RETRY_BASE_MS;
	if (e->o.retry_max_ms <= 0)
		e->o.retry_max_ms = DEF_RETRY_MAX_MS;
	if (e->o.max_attempts <= 0)
		e->o.max_attempts = DEF_MAX_ATTEMPTS;
	r = uv_timer_init(loop, &e->timer);
	if (r < 0) {
		x_free(e->conninfo);
		x_free(e->state_dir);
		x_free(e->instance);
		x_free(e->default_tz);
		x_free(e->orig_tz);
		x_free(e);
		return r;
	}
	e->timer.data = e;
	apply_tz(e, NULL);   /* [export] timezone from the start */
	*ret_e = e;
	return 0;
}

int export_start(struct export *e)
{
	int r;

	if (e->o.listen && !e->listen) {
		const struct pgconn_opts po = { .conninfo = e->conninfo };
		const struct pgconn_cbs cbs = {
			.connected = on_listen_connected,
			.lost = on_listen_lost,
			.notification = on_listen_notification,
		};

		r = pgconn_new(e->loop, &po, &cbs, e, &e->listen);
		if (r < 0)
			return r;
		r = pgconn_start(e->listen);
		if (r < 0)
			return r;
	}
	return uv_timer_start(&e->timer, on_timer, 0, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct export *e = h->data;
	void (*cb)(void *) = e->closed_cb;
	void *ud = e->closed_ud;

	if (e->conn)
		PQfinish(e->conn);
	exportdb_config_free(&e->job.cfg);
	exportfile_cleanup(&e->job.files);
	x_free(e->conninfo);
	x_free(e->state_dir);
	x_free(e->instance);
	x_free(e->default_tz);
	x_free(e->orig_tz);
	x_free(e->applied_tz);
	x_free(e);
	if (cb)
		cb(ud);
}

static void maybe_closed(struct export *e)
{
	if (e->state != J_IDLE || e->listen || e->timer_closing)
		return;
	e->timer_closing = true;
	uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

static void on_listen_closed(void *ud)
{
	struct export *e = ud;

	e->listen = NULL;
	maybe_closed(e);
}

void export_stop(struct export *e, void (*closed_cb)(void *ud), void *ud)
{
	if (e->stopping)
		return;
	e->stopping = true;
	e->closed_cb = closed_cb;
	e->closed_ud = ud;
	uv_timer_stop(&e->timer);
	if (e->listen && !e->listen_closing) {
		e->listen_closing = true;
		pgconn_close(e->listen, on_listen_closed, e);
	}
	maybe_closed(e);
}

/* ---- the directory sink ------------------------------------------------------------ */

struct dirsink_job {
	uv_work_t work;
	struct export_dirsink *sink;
	const struct export_upload_req *req;
	struct export_upload_req req_copy;
	export_upload_done_cb done;
	void *done_ud;
	bool fail;
	int status;
	char error[1100];
};

static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			int r = -errno;

			*p = '/';
			return r;
		}
		*p = '/';
	}
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = -1, out = -1, r = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		r = -errno;
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				if (errno == EINTR)
					continue;
				r = -errno;
				goto out;
			}
			off += w;
		}
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && r == 0)
		r = -errno;
	return r;
}

static void dirsink_work(uv_work_t *w)
{
	struct dirsink_job *dj = w->data;
	const struct exportfile_result *f = dj->req_copy.files;

	if (dj->fail) {
		dj->status = S3G_EAWS;
		snprintf(dj->error, sizeof(dj->error), "PutObject %s: AccessDenied (directory sink: injected failure)",
			 f->obj[0].key);
		return;
	}
	for (size_t i = 0; i < f->n; i++) {
		char *dst = x_asprintf("%s/%s/%s", dj->sink->dir, dj->req_copy.cfg->bucket, f->obj[i].key);
		char *tmp = x_asprintf("%s.tmp", dst);
		int r = mkdirs(dst);

		if (r == 0)
			r = copy_file(f->obj[i].local_path, tmp);
		if (r == 0 && rename(tmp, dst) < 0)
			r = -errno;
		if (r < 0) {
			unlink(tmp);
			dj->status = r;
			snprintf(dj->error, sizeof(dj->error), "directory sink: %s: %s", dst, err_str(r));
		}
		x_free(tmp);
		x_free(dst);
		if (r < 0)
			return;
	}
}

static void dirsink_after(uv_work_t *w, int status)
{
	struct dirsink_job *dj = w->data;

	if (dj->status == 0)
		dj->sink->objects += (unsigned)dj->req_copy.files->n;
	dj->done(dj->done_ud, dj->status, dj->status ? dj->error : NULL);
	x_free(dj);
}

int export_dirsink_upload(void *ud, const struct export_upload_req *req, export_upload_done_cb done,
			  void *done_ud)
{
	struct export_dirsink *s = ud;
	struct dirsink_job *dj = x_calloc(1, sizeof(*dj));
	int r;

	dj->sink = s;
	dj->req_copy = *req;
	dj->done = done;
	dj->done_ud = done_ud;
	if (s->fail_next) {
		s->fail_next--;
		dj->fail = true;
	}
	dj->work.data = dj;
	r = uv_queue_work(s->loop, &dj->work, dirsink_work, dirsink_after);
	if (r < 0)
		x_free(dj);
	return r;
}
