/* client.h — the AWS request pipeline: one call = endpoint, request bytes,
 * credentials, SigV4, HTTP on the loop, classification, standard-mode
 * retries, parsing of the result or error.
 *
 * A struct aws_client stands for one identity in one region (and, for S3
 * Control, one account): it borrows an http_engine and a credprov, owns a
 * retry token bucket (core/retry.h), a clock-skew offset applied to every
 * later signature, a signer, a cap on calls in flight (excess calls wait in
 * FIFO order) and one uv_timer_t for backoff waits.
 *
 * Operation modules (s3control.h, sts.h, s3.h) describe a call with struct
 * aws_call_spec and aws_call_start() copies what it needs; the call object
 * is owned by the client and freed after its callback returns.
 *   - The done callback fires exactly once, never from inside
 *     aws_call_start() (errors found early come on a later loop pass).
 *   - status: 0 on success; S3G_EAWS (AWS answered with an error code),
 *     S3G_ETHROTTLED (still throttled after the retries), S3G_ETRANSPORT,
 *     S3G_ETIMEOUT, S3G_ETOOBIG (response over max_response), S3G_EPARSE
 *     (malformed body), S3G_ECREDS (no credentials), S3G_EINVAL,
 *     S3G_ECANCELLED (client closed).
 *   - struct aws_result is valid during the callback only. Its error string
 *     names the operation: "CreateAccessGrant: SignatureDoesNotMatch: The
 *     request signature ..."; it never contains a secret.
 *   - parse (when set) runs on a 2xx body and fills the caller's out struct;
 *     its failure becomes S3G_EPARSE with the reason in the error string.
 *
 * Each attempt is signed afresh (new X-Amz-Date, current credentials,
 * current skew). Clock skew (RequestTimeTooSkewed & co.) sets the offset
 * from <ServerTime> or the Date header and retries once; ExpiredToken /
 * InvalidToken invalidate the credentials and retry once after a refresh.
 * Throttling and transient failures back off with full jitter (injected
 * random source) and honour x-amz-retry-after when the policy says so.
 *
 * aws_client_close() fails every call (S3G_ECANCELLED), closes the timer and
 * then calls back; aws_client_free() only after that. Nothing here logs.
 * Loop thread only.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "aws/endpoint.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "core/err.h"
#include "core/retry.h"

struct aws_client;
struct credprov;

enum aws_service {
	AWS_SERVICE_S3CONTROL,
	AWS_SERVICE_STS,
	AWS_SERVICE_S3,
	AWS_SERVICE_MAX
};
const char *aws_service_name(enum aws_service s);

typedef int64_t (*aws_clock_cb)(void *user);    /* wall clock, Unix ms */
typedef void (*aws_client_close_cb)(struct aws_client *cl, void *user);

#define AWS_CLIENT_DEFAULT_IN_FLIGHT 64u
#define AWS_CLIENT_DEFAULT_MAX_RESPONSE (16u * 1024 * 1024)

struct aws_client_opts {
	struct http_engine *http;        /* required; borrowed */
	struct credprov *creds;          /* borrowed; NULL: only AWS_CALL_UNSIGNED calls */
	const char *region;              /* required */
	const char *account_id;          /* S3 Control calls: 12 digits */
	struct endpoint_cfg endpoints;   /* custom endpoints; strings copied */
	const struct retry_policy *policy; /* NULL: retry_policy_classic() */
	unsigned max_in_flight;          /* 0: AWS_CLIENT_DEFAULT_IN_FLIGHT */
	size_t max_response;             /* 0: AWS_CLIENT_DEFAULT_MAX_RESPONSE */
	uint64_t timeout_ms;             /* per attempt; 0: engine default */
	enum sigv4_checksum checksum;    /* S3 Control checksum header (opts_default: CRC32) */
	aws_clock_cb clock;              /* NULL: the system clock */
	void *clock_user;
	retry_rand_cb rand;              /* NULL: an internal PRNG */
	void *rand_user;
};

void aws_client_opts_default(struct aws_client_opts *o);

struct aws_result {
	long http_code;                  /* 0 when no response arrived */
	const char *code;                /* AWS error code, or NULL */
	const char *message;             /* AWS error message, or NULL */
	const char *request_id;          /* x-amz-request-id / RequestId, or NULL */
	unsigned attempts;               /* attempts made */
	const char *error;               /* "" on success, else "Op: Code: Message" */
	const struct http_response *resp;/* last response (headers), NULL when none */
};

typedef void (*aws_call_cb)(int status, const struct aws_result *res, void *user);
/* Parse a 2xx body into out; on failure write a short reason into why. */
typedef int (*aws_parse_cb)(const char *body, size_t len, const struct http_response *resp, void *out,
			    char *why, size_t why_len);

enum aws_call_flag {
	AWS_CALL_UNSIGNED        = 1u << 0, /* no Authorization (AssumeRoleWithWebIdentity) */
	AWS_CALL_UNSIGNED_PAYLOAD = 1u << 1, /* x-amz-content-sha256: UNSIGNED-PAYLOAD (HTTPS only) */
	AWS_CALL_NO_RETRY        = 1u << 2, /* one attempt only */
};

#define AWS_CALL_MAX_HEADERS 16

struct aws_call_spec {
	const char *op;                  /* operation name, for errors ("CreateAccessGrant") */
	enum aws_service service;
	const char *method;              /* "GET", "PUT", ... */
	const char *bucket;              /* S3: the bucket (virtual host or path) */
	const char *path;                /* encoded path below the endpoint (and bucket); "/" default */
	const char *query;               /* wire query string without '?', or NULL */
	const void *body;                /* borrowed until the callback unless body_owned */
	size_t body_len;
	int body_owned;                  /* body is x_malloc'd: the client frees it */
	const char *payload_hash;        /* precomputed hex SHA-256 of body, or NULL */
	const struct sigv4_header *headers; /* extra headers, copied */
	size_t n_headers;                /* <= AWS_CALL_MAX_HEADERS */
	unsigned flags;                  /* enum aws_call_flag */
	size_t max_response;             /* 0: the client's */
	aws_parse_cb parse;              /* NULL: body ignored */
	void *out;                       /* parse target */
	aws_call_cb done;
	void *user;
};

int aws_client_new(uv_loop_t *loop, const struct aws_client_opts *opts, struct aws_client **ret) S3G_WUR;
void aws_client_close(struct aws_client *cl, aws_client_close_cb cb, void *user);
void aws_client_free(struct aws_client *cl);

void aws_call_start(struct aws_client *cl, const struct aws_call_spec *spec);
/* For an operation that could not be built: done(status, "op: why") on a later pass. */
void aws_call_fail(struct aws_client *cl, const char *op, int status, const char *why, aws_call_cb done,
		   void *user);

const char *aws_client_region(const struct aws_client *cl);
const char *aws_client_account(const struct aws_client *cl);
struct credprov *aws_client_credprov(const struct aws_client *cl);
/* Wall clock (Unix ms) as the client signs: injected clock + skew offset. */
int64_t aws_client_now_ms(const struct aws_client *cl);

struct aws_client_stats {
	uint64_t calls;                  /* started */
	uint64_t attempts;               /* HTTP attempts sent */
	uint64_t retries;                /* attempts after the first */
	uint64_t failed;                 /* calls finished with status != 0 */
	int64_t skew_ms;                 /* current clock offset (server - local) */
	unsigned quota;                  /* retry tokens left */
	unsigned in_flight;              /* calls between start and callback */
};
void aws_client_stats(const struct aws_client *cl, struct aws_client_stats *ret);
