/* credprov.h — asynchronous AWS credential providers on the loop.
 *
 * A struct credprov hands out struct aws_creds for signing. Kinds:
 *   static       keys given by the caller (an integration's own access key)
 *   environment  AWS_ACCESS_KEY_ID & co., re-read on refresh when
 *                AWS_CREDENTIAL_EXPIRATION is set
 *   web identity token file + role ARN: unsigned STS
 *                AssumeRoleWithWebIdentity, the file re-read on every refresh
 *   process      credential_process: spawned with uv_spawn (no shell, argv
 *                split like a shell), stdout bounded to CREDS_JSON_MAX
 *   container    ECS/EKS endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI /
 *                _FULL_URI, auth token file or value; plain http only to
 *                loopback, 169.254.170.2, 169.254.170.23, fd00:ec2::23)
 *   imds         EC2 IMDSv2: token PUT, role name, credentials (endpoint from
 *                AWS_EC2_METADATA_SERVICE_ENDPOINT, for tests too)
 *   assume role  STS AssumeRole signed with another provider's credentials
 *                (ExternalId, RoleSessionName, DurationSeconds, SourceIdentity)
 *   profile      ~/.aws/config + credentials through aws/profile.h: the base
 *                source of the profile plus its role_arn hops
 *   default      env -> web identity (env) -> profile -> container -> IMDS;
 *                an AWS_PROFILE that names no profile is an error, not a
 *                reason to fall through to the container or instance role
 *
 * Caching and refresh. Credentials with an expiration are refreshed in the
 * background at expiration - refresh_before_ms (default 5 min) minus a random
 * jitter of up to 1/4 of that; the current ones keep being served until they
 * actually expire (minus a 10 s safety margin). Refreshes are single-flight:
 * every caller of credprov_get() while one runs waits for that one.
 * credprov_invalidate() (ExpiredToken/InvalidToken from AWS) drops the cached
 * credentials if they are still the generation the caller signed with and
 * starts a refresh. Static keys cannot be refreshed: invalidating them is a
 * no-op and the retry fails again.
 *
 * Callbacks. credprov_get() never calls back synchronously: when credentials
 * are cached the callback fires on the next loop pass. The creds pointer in a
 * callback (and from credprov_peek) is valid until control returns to the
 * loop; copy it (aws_creds_copy) to keep it. A waiter is embedded by the
 * caller and must stay alive until its callback fired or credprov_cancel().
 *
 * Secrets never appear in a reason string or anywhere but struct aws_creds.
 * Nothing here logs. Single-threaded: the loop thread only.
 *
 * Lifetime: credprov_close() cancels waiters (status S3G_ECANCELLED), stops
 * refreshes, closes every handle and then calls its callback; free after it.
 * An assume-role provider owns its source provider.
 */
#pragma once
#include <stdint.h>

#include <uv.h>

#include "aws/creds.h"
#include "aws/endpoint.h"
#include "core/err.h"
#include "core/retry.h"

struct credprov;
struct http_engine;

typedef int64_t (*credprov_clock_cb)(void *user);   /* wall clock, Unix ms */
typedef void (*credprov_cb)(int status, const struct aws_creds *creds, const char *reason, void *user);
typedef void (*credprov_close_cb)(struct credprov *p, void *user);

enum credprov_kind {
	CREDPROV_STATIC,
	CREDPROV_ENVIRONMENT,
	CREDPROV_WEB_IDENTITY,
	CREDPROV_PROCESS,
	CREDPROV_CONTAINER,
	CREDPROV_IMDS,
	CREDPROV_ASSUME_ROLE,
	CREDPROV_KIND_MAX
};
const char *credprov_kind_name(enum credprov_kind k);

/* What every provider may need; copied (strings duplicated) at creation. */
struct credprov_env {
	uv_loop_t *loop;                 /* required */
	struct http_engine *http;        /* required for STS, container, IMDS */
	const char *region;              /* STS region (default us-east-1) */
	struct endpoint_cfg endpoints;   /* STS endpoint override; getenv also used for the env vars */
	credprov_clock_cb clock;         /* NULL: the system clock */
	void *clock_user;
	retry_rand_cb rand;              /* NULL: random(3)-free internal PRNG seeded from the clock */
	void *rand_user;
	int64_t refresh_before_ms;       /* 0: 5 minutes */
	uint64_t timeout_ms;             /* per fetch (HTTP, process); 0: 5000 */
};

struct credprov_role {
	const char *role_arn;            /* required */
	const char *session_name;        /* NULL: "s3grantd-<unix time>" */
	const char *external_id;         /* optional */
	unsigned duration_seconds;       /* 0: STS default (3600) */
	const char *source_identity;     /* optional */
};

struct credprov_waiter {
	credprov_cb cb_;
	void *user_;
	struct credprov *p_;
	struct credprov_waiter *next_, *prev_;
};

int credprov_new_static(const struct credprov_env *env, const char *akid, const char *secret,
			const char *token, struct credprov **ret) S3G_WUR;
int credprov_new_env(const struct credprov_env *env, struct credprov **ret) S3G_WUR;
int credprov_new_web_identity(const struct credprov_env *env, const char *token_file, const char *role_arn,
			      const char *session_name, struct credprov **ret) S3G_WUR;
/* command: a credential_process line, split like a shell would (no shell). */
int credprov_new_process(const struct credprov_env *env, const char *command, struct credprov **ret) S3G_WUR;
int credprov_new_container(const struct credprov_env *env, struct credprov **ret) S3G_WUR;
int credprov_new_imds(const struct credprov_env *env, struct credprov **ret) S3G_WUR;
/* Takes ownership of source (also on failure). */
int credprov_new_assume_role(const struct credprov_env *env, struct credprov *source,
			     const struct credprov_role *role, struct credprov **ret) S3G_WUR;
/* profile NULL: AWS_PROFILE, else "default". Paths NULL: AWS_CONFIG_FILE /
 * AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/config and ~/.aws/credentials. */
int credprov_new_profile(const struct credprov_env *env, const char *profile, const char *config_path,
			 const char *credentials_path, struct credprov **ret, const char **ret_reason) S3G_WUR;
int credprov_new_default(const struct credprov_env *env, struct credprov **ret, const char **ret_reason) S3G_WUR;

enum credprov_kind credprov_kind(const struct credprov *p);

/* The cached credentials when valid right now, else NULL (then use credprov_get). */
const struct aws_creds *credprov_peek(struct credprov *p);
void credprov_get(struct credprov *p, struct credprov_waiter *w, credprov_cb cb, void *user);
/* The waiter's callback will not fire. No-op when it already did. */
void credprov_cancel(struct credprov_waiter *w);
/* Bumped each time the cached credentials change. */
uint64_t credprov_generation(const struct credprov *p);
/* AWS rejected the credentials of generation gen (ExpiredToken/InvalidToken):
 * when they are still the cached ones, forget them and refresh. */
void credprov_invalidate(struct credprov *p, uint64_t gen);

struct credprov_stats {
	uint64_t fetches;                /* refreshes started */
	uint64_t failures;               /* refreshes that failed */
	int64_t expiration_ms;           /* of the cached credentials; 0 = none or no expiry */
	int64_t refresh_at_ms;           /* wall clock (env clock) of the next background refresh; 0 = none */
};
void credprov_stats(const struct credprov *p, struct credprov_stats *ret);

void credprov_close(struct credprov *p, credprov_close_cb cb, void *user);
/* After the close callback (or when the loop never ran since new). NULL is fine. */
void credprov_free(struct credprov *p);
