/* recon_aws.h — the reconciler's AWS calls, behind one small interface.
 *
 * One struct raws per integration: its account, region, static credentials
 * and endpoints. Every call is ONE attempt (no retries here): the
 * reconciler owns retry policy (core/plan.h plan_classify, per-step
 * backoff, the token bucket), so a call's outcome goes straight back as
 * struct raws_result. Calls are signed with SigV4 on the loop and sent
 * through the shared http_engine.
 *
 * Callbacks fire exactly once, never from inside the starting call; the
 * result and the parsed output are valid during the callback only (the
 * output struct is cleared after it returns). raws_free() may be called
 * only when no call is in flight (raws_in_flight() == 0); in-flight calls
 * are cancelled by closing the http engine (callbacks with
 * S3G_ECANCELLED). Loop thread only; nothing here logs. When aws/s3control
 * lands this file is the only one that changes.
 */
#pragma once
#include <stdint.h>

#include <uv.h>

#include "aws/http.h"
#include "aws/shapes.h"
#include "core/err.h"
#include "core/grant.h"

struct raws;

struct raws_opts {
	struct http_engine *http;      /* borrowed */
	const char *account;           /* 12 digits */
	const char *region;
	const char *s3control_url;     /* "" = AWS */
	const char *sts_url;
	const char *s3_url;
	const char *access_key_id;     /* static credentials (copied); NULL: environment */
	const char *secret_access_key;
	const char *session_token;
	uint64_t timeout_ms;
};

struct raws_result {
	int status;                    /* 0: 2xx; S3G_EAWS: AWS error; S3G_ETRANSPORT, S3G_ETIMEOUT, ... */
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

int raws_new(const struct raws_opts *o, struct raws **ret) S3G_WUR;
void raws_free(struct raws *a);
unsigned raws_in_flight(const struct raws *a);
/* The S3 Control endpoint is a custom one (tests, fakes). */
int raws_custom_s3control(const struct raws *a);
int raws_has_sts_endpoint(const struct raws *a);
/* Credentials were given or found in the environment. */
int raws_has_creds(const struct raws *a);
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
