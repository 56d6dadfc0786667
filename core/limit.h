/* limit.h — a token bucket and a cap on requests in flight, per integration.
 *
 * A request may start when a token is available and fewer than max_inflight
 * requests are in flight; limit_acquire takes both, limit_release gives the
 * in-flight slot back when the request completes (tokens are not returned).
 * Tokens refill continuously at rate_per_s up to burst; time is monotonic
 * milliseconds from the caller. Integer arithmetic in milli-tokens: exact,
 * no drift. rate_per_s 0 = no rate limit; max_inflight 0 = no cap.
 */
#pragma once
#include <stdint.h>

#include "core/err.h"

struct limit {
	uint32_t rate_per_s;       /* tokens per second */
	uint32_t burst;            /* bucket size in tokens, ≥ 1 */
	uint32_t max_inflight;
	uint32_t inflight;
	uint64_t milli;            /* tokens × 1000 in the bucket */
	uint64_t last_ms;          /* last refill */
};

/* The bucket starts full at now_ms. */
void limit_init(struct limit *l, uint32_t rate_per_s, uint32_t burst, uint32_t max_inflight, uint64_t now_ms);
/* Change rate/burst/cap (reload), keeping the tokens (clipped to burst). */
void limit_configure(struct limit *l, uint32_t rate_per_s, uint32_t burst, uint32_t max_inflight, uint64_t now_ms);
/* 0 and one token + one slot taken, or -EAGAIN. */
int limit_acquire(struct limit *l, uint64_t now_ms) S3G_WUR;
void limit_release(struct limit *l);
/* Milliseconds until limit_acquire can succeed: 0 = now, UINT64_MAX = only
 * after a release (the in-flight cap is the obstacle). */
uint64_t limit_wait_ms(struct limit *l, uint64_t now_ms);
