/* export_s3.h — the access summary's S3 side: the upload the daemon runs
 * every night and the check `s3grantctl export-config set` runs on save.
 *
 * struct export_s3 owns one HTTP engine (TLS verification always on; CA
 * from ca_file, else $AWS_CA_BUNDLE, else the system store) and runs ONE
 * operation at a time (the daemon uploads one export at a time; the CLI
 * checks once). Each operation builds its own credentials and clients:
 *   access key  the export config's key id + secret (the sealed secret is
 *               opened with opts.key; the CLI passes the plaintext it has)
 *   role        STS AssumeRole(roleArn, ExternalId = cfg->external_id,
 *               RoleSessionName "s3grantd-export-<unix time>") signed with
 *               the daemon's own credentials (opts.access_key_id, else the
 *               default chain: env, web identity, profile, container, IMDS)
 * Endpoints: opts.endpoint_url_s3 / _sts, else opts.endpoint_url, else
 * AWS_ENDPOINT_URL_S3 / _STS / AWS_ENDPOINT_URL (aws/endpoint.h).
 *
 * Upload (export_s3_upload, an export_upload_cb): PutObject of every object
 * in order, manifest last, each with x-amz-checksum-sha256 and, when
 * cfg->kms_key_id is set, SSE-KMS headers; the checksum S3 echoes must equal
 * the manifest's; then ListObjectsV2 on the day's prefix (every page) must
 * show every key with its size. Check (export_s3_check): the credentials
 * work (GetCallerIdentity, or AssumeRole for a role) and ListObjectsV2 on
 * bucket/path works.
 *
 * Errors are one line naming the operation, the object and what to fix
 * ("PutObject s3://b/k: AccessDenied: ... — the IAM user or role needs
 * s3:PutObject on the export's objects under arn:aws:s3:::b/path"); no secret ever.
 * Callbacks fire exactly once, on a later loop pass, after every client and
 * credential provider of the operation is closed. export_s3_close() cancels
 * an operation in flight (its callback fires with S3G_ECANCELLED), closes
 * the engine, frees the object and then calls cb. Nothing here logs (the
 * daemon logs the outcome once, in daemon/export.c). Loop thread only.
 */
#pragma once
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "daemon/export.h"
#include "store/export.h"
#include "store/secrets.h"

struct export_s3;

struct export_s3_opts {
	const char *ca_file;             /* NULL/"": $AWS_CA_BUNDLE or the system store */
	const char *endpoint_url;        /* [aws] endpoint_url; NULL/"" = none */
	const char *endpoint_url_s3;     /* [aws] endpoint_url_s3 */
	const char *endpoint_url_sts;    /* [aws] endpoint_url_sts */
	const char *access_key_id;       /* the daemon's own key, signs AssumeRole; NULL/"" = default chain */
	const char *secret_access_key;
	const struct secrets_key *key;   /* opens the sealed secret (copied); NULL = cannot */
	uint64_t timeout_ms;             /* per attempt; 0 = 30 s */
	unsigned max_attempts;           /* per request; 0 = 3 */
};

int export_s3_new(uv_loop_t *loop, const struct export_s3_opts *opts, struct export_s3 **ret) S3G_WUR;

/* An export_upload_cb (daemon/export.h); ud is the struct export_s3.
 * -EBUSY while another operation runs. */
int export_s3_upload(void *ud, const struct export_upload_req *req, export_upload_done_cb done, void *done_ud);

/* identity: the caller ARN the check ran as (valid during the callback). */
typedef void (*export_s3_check_cb)(void *ud, int status, const char *identity, const char *error);
/* secret: the plaintext for an access-key config (NULL: open cfg->secret_env
 * with opts.key). cfg and secret are used during this call only. */
int export_s3_check(struct export_s3 *x, const struct exportdb_config *cfg, const char *secret,
		    export_s3_check_cb cb, void *ud) S3G_WUR;

void export_s3_close(struct export_s3 *x, void (*cb)(void *ud), void *ud);
