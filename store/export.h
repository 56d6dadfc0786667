/* export.h — the access summary export's rows: config, daily claim, outcome.
 *
 * s3grant.export_config (one row) holds where and how to export; the secret
 * access key is a sealed envelope (store/secrets.h, context
 * EXPORTDB_SECRET_CONTEXT) that this module passes through unopened.
 * s3grant.exports holds one 'schedule' row per local day and any number of
 * 'manual' rows (s3grantctl export run).
 *
 * Exactly one export per local day across daemons: exportdb_claim_day()
 * creates the day's row with INSERT ... ON CONFLICT DO NOTHING RETURNING,
 * or takes over a failed row whose retry time has come or a running row
 * whose lease expired (one UPDATE; a concurrent claimant re-checks the row
 * after the first commits and finds it taken). Only the claimant (who) can
 * record the outcome (exportdb_finish: S3G_ECONFLICT when the lease was
 * lost). Times are passed in as Unix milliseconds by the caller's clock.
 *
 * All functions are blocking libpq calls on a connection the caller owns
 * (the daemon calls them from a worker thread on its own connection), each
 * one statement (autocommit). Library code: no logging. Strings in the
 * structs are x_malloc'd and owned by the struct.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "store/pgerr.h"

#define EXPORTDB_SECRET_CONTEXT "export_config.secret_access_key"
#define EXPORTDB_CHANNEL "s3grant_export"          /* NOTIFY on config change and export run */
#define EXPORTDB_LISTEN_SQL "LISTEN s3grant_export"

enum exportdb_auth {
	EXPORTDB_AUTH_AUTO,           /* the daemon's default credential chain */
	EXPORTDB_AUTH_ACCESS_KEY,     /* access_key_id + sealed secret */
	EXPORTDB_AUTH_ASSUME_ROLE,    /* AssumeRole(role_arn, ExternalId = external_id) */
	EXPORTDB_AUTH_MAX
};
/* "auto", "accessKey", "assumeRole" (the column values). */
const char *exportdb_auth_name(enum exportdb_auth a);

enum exportdb_status {
	EXPORTDB_PENDING,             /* manual request not claimed yet */
	EXPORTDB_RUNNING,
	EXPORTDB_SUCCEEDED,
	EXPORTDB_FAILED,
	EXPORTDB_STATUS_MAX
};
const char *exportdb_status_name(enum exportdb_status s);

struct exportdb_config {
	bool enabled;
	char *bucket;
	char *region;
	char *path;                   /* "" = the bucket root; no leading/trailing '/' */
	enum exportdb_auth auth;
	char *access_key_id;          /* ACCESS_KEY */
	uint8_t *secret_env;          /* ACCESS_KEY: sealed secret (NULL on save = keep the stored one) */
	size_t secret_env_len;
	char *role_arn;               /* ASSUME_ROLE */
	char *external_id;            /* load: the column or else the tenant id; save: NULL = tenant id */
	char *kms_key_id;             /* NULL = no SSE-KMS */
	int time_of_day;              /* seconds after local midnight; -1 = the daemon's default */
	char *time_zone;              /* IANA name; NULL = the daemon's default */
	char *tenant_id;              /* load only */
};
void exportdb_config_free(struct exportdb_config *c);

/* S3G_ENOTFOUND when no export is configured. */
int exportdb_config_load(PGconn *conn, struct exportdb_config *ret_cfg, struct pgerr *err) S3G_WUR;
/* Insert or replace the one row (validated again by the table's trigger:
 * S3G_EINVAL with err->column naming the field). */
int exportdb_config_save(PGconn *conn, const struct exportdb_config *cfg, struct pgerr *err) S3G_WUR;
int exportdb_tenant_id(PGconn *conn, char **ret_id, struct pgerr *err) S3G_WUR;

/* Field checks s3grantctl runs before saving (the trigger repeats the
 * grammar ones). On failure S3G_EINVAL and msg holds "field: reason". */
int exportdb_check_bucket(const char *bucket, char *msg, size_t n) S3G_WUR;
int exportdb_check_region(const char *region, char *msg, size_t n) S3G_WUR;
int exportdb_check_role_arn(const char *arn, char *msg, size_t n) S3G_WUR;
int exportdb_check_path(const char *path, char *msg, size_t n) S3G_WUR;
/* The zone must exist as zoneinfo_dir/<name> (NULL dir = /usr/share/zoneinfo). */
int exportdb_check_time_zone(const char *zone, const char *zoneinfo_dir, char *msg, size_t n) S3G_WUR;

/* "YYYY-MM-DD" of a day number (days since 1970-01-01) into out[16]. */
void exportdb_day_str(int64_t day, char out[16]);
int exportdb_day_parse(const char *s, int64_t *ret_day) S3G_WUR;

struct exportdb_row {
	long long id;
	int64_t day;                  /* local day */
	enum exportdb_status status;
	int attempts;
	int64_t next_retry_ms;        /* FAILED: when it may be retried; 0 = gave up */
	int64_t lease_until_ms;       /* RUNNING: when another daemon may take over */
	char error[512];              /* FAILED: why ("" otherwise) */
};

/* The most recent scheduled export; S3G_ENOTFOUND when there is none. */
int exportdb_last_scheduled(PGconn *conn, struct exportdb_row *ret_row, struct pgerr *err) S3G_WUR;
/* How many manual requests wait to be claimed. */
int exportdb_pending_requests(PGconn *conn, int *ret_n, struct pgerr *err) S3G_WUR;

struct exportdb_claim {
	long long id;
	int attempts;                 /* including this one */
};

/* Claim day's scheduled export for lease_ms. S3G_ECONFLICT: someone else has it
 * (or it succeeded, or its retry time has not come). */
int exportdb_claim_day(PGconn *conn, int64_t day, const char *who, int64_t now_ms, int64_t lease_ms,
		       struct exportdb_claim *ret_claim, struct pgerr *err) S3G_WUR;
/* Claim the oldest pending manual request, recording day as its local day.
 * S3G_ENOTFOUND: none pending. */
int exportdb_claim_request(PGconn *conn, int64_t day, const char *who, int64_t now_ms, int64_t lease_ms,
			   struct exportdb_claim *ret_claim, struct pgerr *err) S3G_WUR;

struct exportdb_outcome {
	bool ok;
	const char *error;            /* !ok: one line, no secrets */
	int64_t next_retry_ms;        /* !ok: retry at; 0 = do not retry */
	const char *prefix;           /* key prefix of the objects (NULL = unchanged) */
	const char *manifest_key;
	long long rows;               /* grant records; -1 = unchanged */
	const char *objects_json;     /* JSON array describing the objects; NULL = unchanged */
};

/* Record the outcome of claim id. S3G_ECONFLICT when who no longer holds it. */
int exportdb_finish(PGconn *conn, long long id, const char *who, int64_t now_ms,
		    const struct exportdb_outcome *o, struct pgerr *err) S3G_WUR;
/* A manual request plus NOTIFY (s3grantctl export run). */
int exportdb_request(PGconn *conn, const char *who, long long *ret_id, struct pgerr *err) S3G_WUR;
