/* watch.h — the change-queue watcher: LISTEN, claim, hand over, ack.
 *
 * A struct watch owns one DEDICATED pgconn (application_name
 * s3grantd-watch) on the daemon's loop. After every (re)connect it sets the
 * session (application_name, statement_timeout: every statement it sends is
 * bounded), issues LISTEN s3grant_changes, tells the owner (cbs.listening)
 * and claims at once (catch-up: changes committed while it was away). It
 * claims again on every notification (a hint: the payload is ignored), on
 * the poll timer (opts.poll_interval_ms; the fallback that also picks up
 * expired leases of dead daemons), after an ack that gave keys back (they
 * changed since the claim) and as long as claims come back full. One claim
 * is in flight at a time; all queries are async (PQsendQueryParams through
 * pgconn), never blocking the loop.
 *
 * Claims use s3grant.claim_changes (FOR UPDATE SKIP LOCKED, a lease of
 * opts.lease_ms in locked_until, locked_by = watch_who(): host:pid:random,
 * unique per process), so several daemons share one queue and never hold
 * the same key. Keys are distinct per claim (the table coalesces repeated
 * changes into one row).
 *
 * Hand-over: cbs.batch gets the claimed items (the array is valid during the
 * call; each item until the consumer gives it back). The consumer gives
 * back every item exactly once, from any loop callback, with watch_ack()
 * (done: the row is deleted unless it changed since the claim, in which
 * case it is claimable again at once) or watch_release() (retry after
 * delay_ms). Acks and releases made in one loop pass go out as one query;
 * while the connection is down they wait and go out after the reconnect
 * (the lease still names this process). At most opts.max_held items are
 * with the consumer; claiming pauses at the limit.
 *
 * Shutdown: watch_stop() stops claiming (the consumer may still ack).
 * watch_close() sends the outstanding acks, releases every item the
 * consumer still holds (they are freed: the consumer must have dropped its
 * references), waits for those queries for at most the statement timeout,
 * closes the connection and then calls closed_cb. No other callback runs
 * after watch_close(). Callbacks never run inside watch_start/watch_ack/
 * watch_release/watch_stop. Loop thread only. daemon/ layer: it does not
 * log itself; the owner logs from the callbacks.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/err.h"
#include "store/queue.h"

#define WATCH_APPLICATION_NAME "s3grantd-watch"
#define WATCH_WHO_MAX 128

struct watch;

/* One claimed key. */
struct watch_item {
	struct pgq_change change;      /* key, kind, integration, seq, attempts */
	struct watch_item *prev, *next; /* the watch's list of live items */
	int state;                     /* private to watch.c */
	int delay_ms;                  /* release delay (private) */
};

struct watch_opts {
	const char *conninfo;          /* copied by pgconn; "" = PG* environment */
	uint64_t connect_timeout_ms;
	uint64_t backoff_max_ms;
	uint64_t poll_interval_ms;     /* fallback claim period */
	int lease_ms;                  /* claim lease */
	int batch;                     /* keys per claim, 1..PGQ_BATCH_MAX */
	int statement_timeout_ms;      /* every statement on the connection */
	unsigned max_held;             /* items with the consumer at most; 0 = 4 * batch */
};

/* Claimed items for the consumer; see the contract above. */
typedef void (*watch_batch_cb)(struct watch *w, struct watch_item *const *items, size_t n,
			       void *ud);
typedef void (*watch_closed_cb)(void *ud);

enum watch_op {
	WATCH_OP_SESSION,
	WATCH_OP_LISTEN,
	WATCH_OP_CLAIM,
	WATCH_OP_ACK,
	WATCH_OP_RELEASE,
	WATCH_OP_RENEW,
	WATCH_OP_MAX
};
const char *watch_op_name(enum watch_op op);

struct watch_cbs {
	/* LISTEN is up (after each connect). */
	void (*listening)(struct watch *w, void *ud);
	/* The connection failed or dropped (see pgconn's lost). */
	void (*lost)(struct watch *w, const char *reason, bool was_up, unsigned attempts,
		     uint64_t retry_ms, void *ud);
	/* A query failed (status S3G_EPGQUERY, message one line from Postgres)
	 * or a result did not parse. The watcher retries on its own. */
	void (*error)(struct watch *w, enum watch_op op, int status, const char *message, void *ud);
	/* Informational, for logs: an ack query finished (n keys sent,
	 * deleted of them done) / a release query finished. */
	void (*acked)(struct watch *w, const struct pgq_batch *b, long long deleted, void *ud);
	void (*released)(struct watch *w, const struct pgq_batch *b, int delay_ms, void *ud);
	watch_batch_cb batch;
};

int watch_new(uv_loop_t *loop, const struct watch_opts *opts, const struct watch_cbs *cbs,
	      void *ud, struct watch **ret_w) S3G_WUR;
/* Connect (on the next loop pass). */
int watch_start(struct watch *w) S3G_WUR;
/* Reloadable settings (poll interval, lease, batch, timeouts, max_held);
 * conninfo is not changed. */
void watch_set_opts(struct watch *w, const struct watch_opts *opts);
/* The consumer gives an item back. */
void watch_ack(struct watch *w, struct watch_item *it);
void watch_release(struct watch *w, struct watch_item *it, int delay_ms);
/* Claim now (e.g. a test or an operator hint); a no-op while stopped. */
void watch_kick(struct watch *w);
void watch_stop(struct watch *w);
void watch_close(struct watch *w, watch_closed_cb cb, void *ud);

const char *watch_who(const struct watch *w);
bool watch_listening(const struct watch *w);
/* Items with the consumer now. */
unsigned watch_held(const struct watch *w);
/* Totals since start: keys claimed, keys acked (deleted), keys released. */
unsigned long long watch_claimed_total(const struct watch *w);
unsigned long long watch_acked_total(const struct watch *w);
unsigned long long watch_released_total(const struct watch *w);
unsigned long long watch_renewals(const struct watch *w);   /* renew queries that succeeded */
