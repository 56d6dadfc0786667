/* queue.h — the change queue (s3grant.change_queue): claim, ack, release.
 *
 * Triggers on integrations, data_sources, users and subscriptions upsert one
 * row per affected key and pg_notify(PGQ_CHANNEL, '<integration id>') in the
 * writer's transaction. Keys:
 *   i:<iid>                 an integration's configuration or status
 *   d:<iid>:<dsid>          a data source (prefix) added, changed, removed
 *   u:<iid>:<uid>           a user's principal changed (user has subscriptions here)
 *   s:<iid>:<uid>:<dsid>    a subscription added, changed (access), removed
 * Repeated changes to a key coalesce into its row (seq bumped, changes
 * counted), so a claim returns distinct keys. A claim leases keys
 * (locked_until) with FOR UPDATE SKIP LOCKED: claimants never hold the same
 * key, and a dead claimant's keys come back when the lease expires. An ack
 * deletes a key only if its seq is the claimed one; a key that changed again
 * since is released for the next claim instead.
 *
 * Two layers:
 *  - builders/parsers for the daemon's own async connection:
 *    pgq_claim_query()/pgq_ack_query()/pgq_release_query() fill a struct
 *    pgq_query (SQL + text parameters, to PQsendQueryParams); the caller
 *    frees it with pgq_query_free() after the send. pgq_parse_claim() and
 *    pgq_parse_ack() read the results. pgq_session_sql() gives the SET
 *    statement that bounds every statement on that connection.
 *  - blocking helpers (tests, bench, s3grantctl) that wrap each call in a
 *    transaction with SET LOCAL statement_timeout.
 * A struct pgq_batch owns its strings; pgq_batch_free(NULL) is a no-op.
 */
#pragma once
#include <stddef.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "store/pgerr.h"

#define PGQ_CHANNEL "s3grant_changes"
#define PGQ_LISTEN_SQL "LISTEN s3grant_changes"
#define PGQ_BATCH_MAX 10000            /* largest claim batch */
#define PGQ_KEY_MAX 256                /* longest key accepted in an ack */

enum pgq_kind {
	PGQ_KIND_INTEGRATION,
	PGQ_KIND_DATA_SOURCE,
	PGQ_KIND_USER,
	PGQ_KIND_SUBSCRIPTION,
	PGQ_KIND_MAX
};
const char *pgq_kind_name(enum pgq_kind k);

struct pgq_change {
	char *key;
	enum pgq_kind kind;
	long long integration_id;
	long long seq;          /* pass back in the ack */
	long long changes;      /* how many changes coalesced into this key */
	int attempts;           /* claims so far, this one included */
};

struct pgq_batch {
	struct pgq_change *items;
	size_t n;
};

struct pgq_query {
	const char *sql;        /* static text */
	int nparams;
	const char *values[4];  /* text parameters (point into owned[] or caller strings) */
	char *owned[4];
};

void pgq_query_free(struct pgq_query *q);
void pgq_batch_free(struct pgq_batch *b);

int pgq_claim_query(struct pgq_query *ret_q, int batch, int lease_ms, const char *who) S3G_WUR;
/* Ack every item of b (as claimed by who). */
int pgq_ack_query(struct pgq_query *ret_q, const struct pgq_batch *b, const char *who) S3G_WUR;
/* Give items back; claimable again after delay_ms (0 = at once). */
int pgq_release_query(struct pgq_query *ret_q, const struct pgq_batch *b, const char *who,
		      int delay_ms) S3G_WUR;
/* Renew the lease of every key who still holds (expired or not, while
 * nobody else claimed it); the result parses with pgq_parse_ack (keys renewed). */
int pgq_renew_query(struct pgq_query *ret_q, int lease_ms, const char *who) S3G_WUR;
/* "SET statement_timeout = N" for a session; buf must hold 64 bytes. */
const char *pgq_session_sql(char *buf, size_t n, int timeout_ms);

int pgq_parse_claim(const PGresult *res, struct pgq_batch *ret_batch) S3G_WUR;
int pgq_parse_ack(const PGresult *res, long long *ret_deleted) S3G_WUR;

/* Blocking helpers. timeout_ms bounds the statement (SET LOCAL). */
int pgq_claim(PGconn *conn, int batch, int lease_ms, const char *who, int timeout_ms,
	      struct pgq_batch *ret_batch, struct pgerr *err) S3G_WUR;
int pgq_ack(PGconn *conn, const struct pgq_batch *b, const char *who, int timeout_ms,
	    long long *ret_deleted, struct pgerr *err) S3G_WUR;
int pgq_release(PGconn *conn, const struct pgq_batch *b, const char *who, int delay_ms,
		struct pgerr *err) S3G_WUR;
int pgq_renew(PGconn *conn, int lease_ms, const char *who, long long *ret_renewed,
	      struct pgerr *err) S3G_WUR;
/* Wait up to timeout_ms for a notification on a connection that ran
 * PGQ_LISTEN_SQL (poll() on PQsocket). ret_iid: the payload (integration id).
 * S3G_ETIMEOUT when none came. */
int pgq_wait(PGconn *conn, int timeout_ms, long long *ret_iid, struct pgerr *err) S3G_WUR;
