/* backoff.h — per-key exponential backoff with jitter and a cap.
 *
 * Delay after the n-th consecutive failure (n = 1, 2, ...):
 *     d = min(cap, base * 2^(n-1));  delay = d/2 + rand() % (d/2 + 1)
 * ("equal jitter": never less than half the exponential step, never more
 * than the cap, so retries of many keys spread without hot-looping).
 * Time is monotonic milliseconds supplied by the caller (uv_now); the random
 * source is injected (tests pass a fixed sequence).
 *
 * struct backoff_state is embedded per key by its owner; struct backoff_table
 * is a ready-made map from a 64-bit key (e.g. a grant or subscription id) to
 * state, for owners without a natural place. Success resets (removes) a key.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef uint64_t (*backoff_rand_cb)(void *user);

struct backoff_policy {
	uint64_t base_ms;          /* first step, > 0 */
	uint64_t cap_ms;           /* maximum delay */
	backoff_rand_cb rand;      /* NULL: no jitter (delay = d) */
	void *rand_user;
};

struct backoff_state {
	uint32_t failures;         /* consecutive */
	uint64_t next_ms;          /* earliest next attempt (monotonic ms) */
};

/* The delay after `failures` consecutive failures (0 → 0). */
uint64_t backoff_delay(const struct backoff_policy *pol, uint32_t failures);
void backoff_fail(const struct backoff_policy *pol, struct backoff_state *st, uint64_t now_ms);
void backoff_reset(struct backoff_state *st);
/* 1 when an attempt may be made at now_ms. */
int backoff_ready(const struct backoff_state *st, uint64_t now_ms);

struct backoff_entry {
	uint64_t key;
	struct backoff_state st;
	uint8_t used;
};

struct backoff_table {
	struct backoff_policy pol;
	struct backoff_entry *v;   /* open addressing, backward-shift deletion */
	size_t cap, n;
	size_t max;                /* at most this many keys (bounded); 0 = unlimited */
};

void backoff_table_init(struct backoff_table *t, const struct backoff_policy *pol, size_t max);
void backoff_table_free(struct backoff_table *t);
/* Record a failure of key at now_ms; *ret_next_ms = the next attempt time.
 * S3G_ETOOBIG when the table is full (the caller keeps the key retrying on
 * its own schedule). */
int backoff_table_fail(struct backoff_table *t, uint64_t key, uint64_t now_ms, uint64_t *ret_next_ms) S3G_WUR;
void backoff_table_ok(struct backoff_table *t, uint64_t key);
/* Next attempt time of key: 0 when it has no failure (may run now). */
uint64_t backoff_table_next(const struct backoff_table *t, uint64_t key);
/* Earliest next attempt over all keys (the loop timer), UINT64_MAX if none. */
uint64_t backoff_table_earliest(const struct backoff_table *t);
