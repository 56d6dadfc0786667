/* recon_aws.h — the reconciler's AWS calls, behind one small interface.
 *
 * One struct raws per integration, kept across passes: its credential
 * provider (aws/credprov.h) and one aws_client (aws/client.h) for S3
 * Control (its account and region), STS and S3. Built from struct
 * raws_opts; the reconciler rebuilds it when raws_opts_fingerprint()
 * changes (the integration's auth fields, the daemon's keys, endpoints,
 * timeout) and on SIGHUP.
 *
 * Authentication (PRODUCT.md "integration auth"):
 *   RAWS_AUTH_STATIC   the given key (an accessKey integration's decrypted
 *                      secret, or the daemon's [aws] access_key_id);
 *   RAWS_AUTH_DEFAULT  the AWS default chain (env, web identity, profile,
 *                      container, IMDSv2);
 * either one, when role_arn is set, followed by STS AssumeRole into it with
 * ExternalId and RoleSessionName (credprov refreshes it before expiry).
 *
 * Retry policy stays in the reconciler (core/plan.h plan_classify, per-step
 * backoff, token bucket, in-flight cap): every call is ONE attempt as far as
 * throttling, 5xx and transport failures go, and its outcome goes straight
 * back as struct raws_result. What only the client can do is kept: clock
 * skew (RequestTimeTooSkewed & co.) is corrected and the call re-signed
 * once, ExpiredToken/InvalidToken refresh the credentials and re-sign once.
 *
 * Callbacks fire exactly once, never from inside the starting call; the
 * result and the parsed output are valid during the callback only.
 * raws_in_flight() counts calls whose callback has not started yet (it is
 * already decremented inside the callback). raws_close() cancels every call
 * (callbacks with S3G_ECANCELLED), closes the client and the provider and
 * then calls back; raws_free() only after that (or on a raws that was never
 * used on a running loop). Loop thread only; nothing here logs; no error
 * text ever contains a secret.
 */
#pragma once
#include <stdint.h>

#include <uv.h>

#include "aws/http.h"
#include "aws/shapes.h"
#include "core/err.h"
#include "core/grant.h"

struct raws;

enum raws_auth {
	RAWS_AUTH_STATIC,              /* access_key_id + secret_access_key */
	RAWS_AUTH_DEFAULT,             /* the AWS default credential chain */
	RAWS_AUTH_MAX
};

struct raws_opts {
	uv_loop_t *loop;
	struct http_engine *http;      /* borrowed; must outlive the raws */
	const char *account;           /* 12 digits */
	const char *region;
	const char *s3control_url;     /* "" = AWS */
	const char *sts_url;
	const char *s3_url;
	uint64_t timeout_ms;
	unsigned max_in_flight;        /* client cap; 0: the client default */
	enum raws_auth auth;
	const char *access_key_id;     /* STATIC (copied) */
	const char *secret_access_key; /* STATIC (copied; secret) */
	const char *role_arn;          /* NULL/"": no AssumeRole */
	const char *external_id;       /* AssumeRole ExternalId, optional */
	const char *session_name;      /* AssumeRole RoleSessionName */
};

struct raws_result {
	int status;                    /* 0: 2xx; S3G_EAWS, S3G_ETHROTTLED, S3G_ECREDS, S3G_ETRANSPORT, ... */
	long http_code;                /* 0 = no answer */
	const char *code;              /* AWS error code or NULL */
	const char *message;
	const char *request_id;
	const char *error;             /* "Op: Code: Message" or transport text; "" on success */
};

/* out points to the parsed result: struct shapes_grant (create),
 * shapes_grant_list (list), shapes_location (create location),
 * shapes_location_list, shapes_instance, shapes_caller_identity,
 * shapes_object_list; NULL for deletes and on failure. */
typedef void (*raws_cb)(const struct raws_result *res, void *out, void *user);
typedef void (*raws_close_cb)(struct raws *a, void *user);

#define RAWS_FINGERPRINT_SIZE 65       /* hex SHA-256 + NUL */

/* A digest of every option that shapes the provider and the client (the
 * secret included, hashed: nothing secret is kept beside the provider). */
void raws_opts_fingerprint(const struct raws_opts *o, char ret[RAWS_FINGERPRINT_SIZE]);

/* On failure *ret_reason (when not NULL) says why, without secrets. */
int raws_new(const struct raws_opts *o, struct raws **ret, const char **ret_reason) S3G_WUR;
void raws_close(struct raws *a, raws_close_cb cb, void *user);
void raws_free(struct raws *a);
unsigned raws_in_flight(const struct raws *a);
/* Which provider: "static", "default chain", "static + assume role", ... */
const char *raws_auth_label(const struct raws *a);
/* The S3 Control endpoint is a custom one (tests, fakes). */
int raws_custom_s3control(const struct raws *a);
int raws_has_sts_endpoint(const struct raws *a);
int raws_has_s3_endpoint(const struct raws *a);

void raws_create_grant(struct raws *a, const struct grant *g, raws_cb cb, void *user);
void raws_delete_grant(struct raws *a, const char *grant_id, raws_cb cb, void *user);
/* One page of the instance's grants (every location); token NULL = first. */
void raws_list_grants(struct raws *a, const char *token, raws_cb cb, void *user);
void raws_get_instance(struct raws *a, raws_cb cb, void *user);
void raws_list_locations(struct raws *a, const char *scope, const char *token, raws_cb cb, void *user);
void raws_create_location(struct raws *a, const char *scope, const char *role_arn, raws_cb cb, void *user);
void raws_delete_location(struct raws *a, const char *location_id, raws_cb cb, void *user);
void raws_caller_identity(struct raws *a, raws_cb cb, void *user);
/* ListObjectsV2 max-keys=1 under bucket/prefix. */
void raws_list_objects(struct raws *a, const char *bucket, const char *prefix, raws_cb cb, void *user);
