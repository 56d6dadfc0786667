/* exportfile.h — produce the access summary files (schema_version 1).
 *
 * exportfile_produce() reads one consistent snapshot (a REPEATABLE READ,
 * READ ONLY transaction) through server-side cursors (FETCH in batches of
 * fetch_rows), encodes each row with yajl_gen as one NDJSON line, deflates
 * it (gzip) and writes it to a temp file under state_dir, computing the
 * SHA-256 of the written bytes and the row count on the fly. Memory is
 * bounded by one batch plus fixed buffers: it does not grow with row count.
 * Files, in this order (docs/export.md describes every field):
 *   grants.ndjson.gz, users.ndjson.gz, data_sources.ndjson.gz,
 *   integrations.ndjson.gz, and manifest.json last (schema version, export
 *   time, tenant id, local day, per-file key, rows, bytes, SHA-256 hex and
 *   base64), so a reader that finds the manifest knows the export is whole.
 * Object keys: {path}/access-summary/{YYYY-MM-DD}/{file} ("access-summary/…"
 * when path is empty). No secret column is ever selected.
 *
 * Blocking: runs on a worker thread (uv_queue_work) with its own libpq
 * connection, which must not be inside a transaction. Does not log; errors
 * come back as status plus one line in errbuf. The result owns its strings
 * and temp files: exportfile_cleanup() removes the files and frees it
 * (accepts a zeroed or half-built result).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/err.h"

#define EXPORTFILE_SCHEMA_VERSION 1
#define EXPORTFILE_FETCH_ROWS 1000

enum exportfile_kind {
	EXPORTFILE_GRANTS,
	EXPORTFILE_USERS,
	EXPORTFILE_DATA_SOURCES,
	EXPORTFILE_INTEGRATIONS,
	EXPORTFILE_MANIFEST,            /* always last */
	EXPORTFILE_KIND_MAX
};
/* The file name: "grants.ndjson.gz", ..., "manifest.json". */
const char *exportfile_kind_name(enum exportfile_kind k);

struct exportfile_object {
	enum exportfile_kind kind;
	char *local_path;               /* temp file */
	char *key;                      /* object key in the bucket */
	const char *content_type;       /* "application/gzip" / "application/json" */
	uint64_t rows;                  /* records (manifest: 0) */
	uint64_t bytes;                 /* object size */
	char sha256_hex[65];
	char sha256_b64[45];            /* x-amz-checksum-sha256 */
};

struct exportfile_opts {
	const char *state_dir;          /* temp files go to state_dir/export-DAY-XXXXXX/ */
	const char *path;               /* the export config's path; NULL or "" = bucket root */
	int64_t day;                    /* local day (days since 1970-01-01) */
	int64_t export_time_ms;         /* UTC, for the manifest */
	const char *time_zone;          /* recorded in the manifest; NULL = host zone */
	const char *kind;               /* "schedule" or "manual", recorded in the manifest */
	int fetch_rows;                 /* cursor batch; 0 = EXPORTFILE_FETCH_ROWS */
	int level;                      /* gzip level 1..9; 0 = 6 */
};

struct exportfile_result {
	char *dir;                      /* temp directory */
	char *prefix;                   /* key prefix, ends in '/' */
	char *tenant_id;
	char day[16];                   /* "YYYY-MM-DD" */
	struct exportfile_object obj[EXPORTFILE_KIND_MAX];  /* in upload order, manifest last */
	size_t n;
};

int exportfile_produce(PGconn *conn, const struct exportfile_opts *o, struct exportfile_result *ret,
		       char *errbuf, size_t errlen) S3G_WUR;
/* The objects as a JSON array [{name,key,rows,bytes,sha256}] (x_malloc'd),
 * for s3grant.exports.objects. */
char *exportfile_objects_json(const struct exportfile_result *r);
/* "{path}/access-summary/{day}/" (x_malloc'd). */
char *exportfile_prefix(const char *path, int64_t day);
void exportfile_cleanup(struct exportfile_result *r);
