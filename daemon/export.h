/* export.h — the nightly access summary export, glued to the loop.
 *
 * struct export is owned by the daemon (one per process). It decides when to
 * export with core/schedule (sched_decide, DST-safe, once per local day,
 * catch-up after downtime, retries until the next slot), claims the day in
 * the database (store/export: one export per local day across daemons),
 * produces the files off the loop (daemon/exportfile via uv_queue_work on
 * the object's own blocking libpq connection), hands them to an upload
 * implementation (export_upload_cb), and records the outcome with a retry
 * time (exponential backoff) on failure. Manual requests (s3grantctl export
 * run) are picked up on NOTIFY s3grant_export (when opts.listen) or at the
 * next check; the object re-checks at least every poll_ms.
 *
 * One job at a time: check (worker) → decide (loop) → claim + produce
 * (worker) → upload (upload_cb, on the loop) → record (worker) → check
 * again. Every callback (on_event, the upload's done) runs on the loop
 * thread, never inside export_start()/export_kick(). The wall clock is
 * injectable (opts.now_ms; tests drive it and call export_kick()); local
 * time is localtime_r under TZ, which the object sets with setenv+tzset from
 * the configured zone (export_config.time_zone, else opts.default_time_zone,
 * else the zone the process started with) — on the loop thread only.
 *
 * export_stop() waits for the job in flight (a worker cannot be cancelled;
 * an upload must call its done callback), closes the handles, frees the
 * object and then calls closed_cb. Logs through daemon/log (loop thread).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "core/schedule.h"
#include "daemon/exportfile.h"
#include "store/export.h"

struct export;

/* What an upload gets: the config (bucket, region, auth with the sealed
 * secret, KMS key, ExternalId) and the produced objects, manifest last.
 * Valid until done is called. */
struct export_upload_req {
	const struct exportdb_config *cfg;
	const struct exportfile_result *files;
};

typedef void (*export_upload_done_cb)(void *done_ud, int status, const char *error);
/* Start uploading every object of req in order (manifest last; PutObject
 * with x-amz-checksum-sha256 = sha256_b64, SSE-KMS when cfg->kms_key_id,
 * then ListObjectsV2 to confirm). Call done exactly once, on a later loop
 * pass; error is one line naming what to fix. Return < 0 when it cannot
 * start (done is then not called). */
typedef int (*export_upload_cb)(void *ud, const struct export_upload_req *req, export_upload_done_cb done,
				void *done_ud);

/* The local "directory sink": copies each object to dir/<bucket>/<key>
 * (temp file + rename, manifest last) on a worker thread. Used by tests and
 * by the daemon when [export] sink_dir is set. */
struct export_dirsink {
	uv_loop_t *loop;
	const char *dir;
	unsigned objects;             /* objects written so far */
	unsigned fail_next;           /* test knob: fail this many uploads */
};
/* Upload to S3 with the export config (daemon/export_s3.c). */
int export_s3_upload(void *ud, const struct export_upload_req *req, export_upload_done_cb done, void *done_ud);
int export_dirsink_upload(void *ud, const struct export_upload_req *req, export_upload_done_cb done,
			  void *done_ud);

enum export_event_kind {
	EXPORT_EV_IDLE,               /* nothing due; next_ms is the next wake-up */
	EXPORT_EV_DISABLED,           /* no export config, or disabled */
	EXPORT_EV_BUSY,               /* another daemon holds today's export */
	EXPORT_EV_SUCCEEDED,
	EXPORT_EV_FAILED,             /* next_ms: retry time, 0 = given up */
	EXPORT_EV_DB_ERROR,           /* the check itself failed; retried after poll_ms */
	EXPORT_EV_MAX
};
const char *export_event_name(enum export_event_kind k);

struct export_event {
	enum export_event_kind kind;
	int64_t day;                  /* local day of the export (SUCCEEDED, FAILED, BUSY) */
	long long id;                 /* s3grant.exports.id */
	int attempts;
	bool manual;                  /* s3grantctl export run */
	uint64_t rows;                /* grant records (SUCCEEDED) */
	int64_t next_ms;              /* UTC ms: next wake-up (IDLE) or retry (FAILED) */
	const char *error;            /* FAILED, DB_ERROR */
};
typedef void (*export_event_cb)(void *ud, const struct export_event *ev);

typedef int64_t (*export_now_cb)(void *ud);   /* UTC milliseconds */

struct export_opts {
	const char *conninfo;         /* for the worker connection (and LISTEN); "" = PG* env */
	const char *state_dir;        /* temp files */
	const char *instance;         /* claimant name; NULL = "hostname:pid" */
	int default_time_of_day;      /* seconds after midnight ([export] time_of_day); -1 = 03:00 */
	const char *default_time_zone;/* [export] timezone; NULL/"" = the process's zone */
	export_now_cb now_ms;         /* NULL = CLOCK_REALTIME */
	void *clock_ud;
	export_upload_cb upload;      /* required */
	void *upload_ud;
	export_event_cb on_event;     /* optional */
	void *event_ud;
	bool listen;                  /* LISTEN s3grant_export on its own async connection */
	uint64_t poll_ms;             /* re-check at least this often; 0 = 60 s */
	int64_t lease_ms;             /* claim lease; 0 = 30 min */
	int64_t retry_base_ms;        /* first retry delay; 0 = 5 min (doubles) */
	int64_t retry_max_ms;         /* 0 = 1 h */
	int max_attempts;             /* per day; 0 = 10 */
	int gzip_level;               /* 0 = 6 */
};

int export_new(uv_loop_t *loop, const struct export_opts *opts, struct export **ret_e) S3G_WUR;
/* First check on the next loop pass. */
int export_start(struct export *e) S3G_WUR;
/* Check now (NOTIFY, tests); coalesces with a job in flight. */
void export_kick(struct export *e);
bool export_busy(const struct export *e);
void export_stop(struct export *e, void (*closed_cb)(void *ud), void *ud);

/* The local-time converter the object uses: localtime_r under TZ. */
int export_localtime(int64_t utc, struct sched_local *ret, void *user);
