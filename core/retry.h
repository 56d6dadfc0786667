/* retry.h — the AWS "standard" retry mode as data and pure functions.
 *
 * What it decides, for one AWS client (one endpoint):
 *   - how to classify a finished attempt (retry_classify) from the transport
 *     status (0 or S3G_E*), the HTTP code, the AWS error code and message and
 *     the server's Date header (clock-skew detection);
 *   - whether to retry and after how long (retry_next), charging a shared
 *     token bucket (struct retry_quota) and counting attempts per request
 *     (struct retry_state, embedded in the caller's request);
 *   - what to give back to the bucket on success (retry_success).
 * The numbers live in struct retry_policy: retry_policy_classic() gives the
 * SDKs' current standard mode (3 attempts, bucket 500, cost 5 / 10 for
 * timeouts, refund 1, full jitter with base 1 s and cap 20 s),
 * retry_policy_2026() the opt-in 2026 behaviour (base 50 ms for
 * non-throttling errors, cost 14 / 5 for throttling, x-amz-retry-after).
 *
 * Clock skew and expired credentials are retried at most once each per
 * request, immediately and without charging the bucket: the caller fixes the
 * clock offset (retry_parse_http_date) or refreshes the credentials and
 * re-signs. Every retry is re-signed by the caller.
 *
 * Pure: no clock, no I/O; the random source is injected (retry_rand_cb
 * returns a value in [0, 1)).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum retry_class {
	RETRY_NONE,               /* success: nothing to retry */
	RETRY_THROTTLING,         /* throttling codes, HTTP 429 */
	RETRY_TRANSIENT,          /* 500/502/503/504, transient codes, transport failures */
	RETRY_TRANSIENT_TIMEOUT,  /* connect/read timeout (costs more quota) */
	RETRY_CLOCK_SKEW,         /* re-sign with a corrected clock, once */
	RETRY_EXPIRED_CREDS,      /* refresh credentials and re-sign, once */
	RETRY_TERMINAL,           /* do not retry */
	RETRY_CLASS_MAX
};

const char *retry_class_name(enum retry_class c);

typedef double (*retry_rand_cb)(void *user);

/* The default jitter source: xorshift64* over a uint64_t state (user), a
 * double in [0, 1). Jitter only, not security; seed the state non-zero
 * (retry_prng_seed). */
double retry_prng_next(void *user);
uint64_t retry_prng_seed(uint64_t a, uint64_t b);

struct retry_policy {
	unsigned max_attempts;          /* total attempts including the first (3) */
	unsigned quota_max;             /* bucket size and start value (500) */
	unsigned cost;                  /* retry cost of a non-throttling error (5; 14 in 2026) */
	unsigned cost_throttling;       /* retry cost of a throttling error (5) */
	unsigned cost_timeout;          /* retry cost after a timeout (10) */
	unsigned no_retry_increment;    /* added on success at the first attempt (1) */
	uint64_t base_ms;               /* backoff base, non-throttling (1000; 50 in 2026) */
	uint64_t base_throttling_ms;    /* backoff base, throttling (1000) */
	uint64_t cap_ms;                /* backoff cap (20000) */
	int honour_retry_after;         /* use x-amz-retry-after (0 classic, 1 in 2026) */
	uint64_t retry_after_extra_ms;  /* at most this much longer than computed (5000) */
	int64_t skew_threshold_ms;      /* SignatureDoesNotMatch & co. are skew beyond this (240000) */
};

void retry_policy_classic(struct retry_policy *p);
void retry_policy_2026(struct retry_policy *p);

/* The token bucket shared by all requests of one client. */
struct retry_quota {
	unsigned tokens;
	unsigned max;
};

void retry_quota_init(struct retry_quota *q, const struct retry_policy *p);

/* Per request; zero it (retry_state_init) before the first attempt. */
struct retry_state {
	unsigned attempts;       /* attempts finished so far */
	unsigned last_cost;      /* tokens taken for the latest retry (0 none) */
	unsigned char skew_done; /* the one clock-skew retry was used */
	unsigned char creds_done;/* the one expired-credentials retry was used */
};

void retry_state_init(struct retry_state *st);

/* What the caller knows about a finished attempt. */
struct retry_input {
	int status;              /* transport: 0, S3G_ETRANSPORT, S3G_ETIMEOUT, ... */
	int http_code;           /* 0 when there was no response */
	const char *aws_code;    /* <Code> or NULL */
	const char *message;     /* <Message> or NULL (informational) */
	int modeled_retryable;   /* the service model marks the error retryable */
	int have_server_date;    /* server_date_ms is valid */
	int64_t server_date_ms;  /* the response Date header, Unix ms */
	int64_t local_now_ms;    /* local wall clock when the response came, Unix ms */
};

/* skew_threshold_ms is only read from pol (NULL: 4 minutes). */
enum retry_class retry_classify(const struct retry_policy *pol, const struct retry_input *in);

/* Backoff before retry i (i = 1 for the first retry):
 *     t = r * min(base * 2^(i-1), cap)   with r in [0, 1)
 * base = base_throttling_ms for throttling, base_ms otherwise; with
 * honour_retry_after and retry_after_ms >= 0, t = max(t, min(retry_after_ms,
 * t + retry_after_extra_ms)). */
uint64_t retry_backoff_ms(const struct retry_policy *pol, enum retry_class c, unsigned i, double r,
			  int64_t retry_after_ms);

/* After an attempt classified c has failed: 1 and *ret_delay_ms when it is
 * to be retried (attempts left, quota paid), 0 when the caller gives up.
 * retry_after_ms < 0 when the response had no x-amz-retry-after. rnd may be
 * NULL (no jitter: r = 0). */
int retry_next(const struct retry_policy *pol, struct retry_quota *q, struct retry_state *st,
	       enum retry_class c, int64_t retry_after_ms, retry_rand_cb rnd, void *rnd_user,
	       uint64_t *ret_delay_ms);

/* After a successful attempt: +no_retry_increment, or refund the last cost. */
void retry_success(const struct retry_policy *pol, struct retry_quota *q, const struct retry_state *st);

/* RFC 1123 HTTP date "Sun, 30 Aug 2015 12:36:00 GMT" (also "UTC"; the
 * weekday is optional and not checked) into Unix milliseconds. */
int retry_parse_http_date(const char *s, size_t len, int64_t *ret_ms) S3G_WUR;

/* Parse x-amz-retry-after (decimal milliseconds); S3G_EINVAL when malformed. */
int retry_parse_retry_after(const char *s, size_t len, int64_t *ret_ms) S3G_WUR;
