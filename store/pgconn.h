/* pgconn.h — one asynchronous libpq connection on a libuv loop.
 *
 * Connects with PQconnectStart/PQconnectPoll, watching PQsocket() with a
 * uv_poll_t (re-read after every PQconnectPoll step and on every reconnect;
 * the poll is stopped and closed before PQfinish closes the socket). The
 * connection attempt has its own deadline (libpq enforces connect_timeout
 * only in blocking mode). When an attempt fails or a live connection is
 * lost, the next attempt follows after a capped exponential backoff with
 * jitter (250 ms doubling up to backoff_max_ms, each delay drawn from
 * [d/2, d]); the attempt counter resets on success. An empty conninfo means
 * libpq's PG* environment variables.
 *
 * Callbacks (never called from inside pgconn_start/pgconn_query):
 *   connected     — the connection is up (again); re-issue LISTEN here.
 *   lost          — an attempt failed or the connection dropped; reason is
 *                   one line from libpq (it carries no password); retry_ms is
 *                   the delay until the next attempt; was_up tells which.
 *   notification  — a NOTIFY arrived (strings valid during the call).
 * Queries: pgconn_query() queues one statement (only when READY) and sends
 * them one at a time; the result callback gets status 0 (PGRES_COMMAND_OK
 * or PGRES_TUPLES_OK), S3G_EPGQUERY (res holds the error), S3G_EPGCONN
 * (connection lost, res NULL) or S3G_ECANCELLED (pgconn_close, res NULL).
 * res is owned by pgconn and cleared after the callback returns.
 *
 * Any callback may call pgconn_query() or pgconn_close(). pgconn_close()
 * cancels queued queries (their callbacks run inside it), stops all
 * callbacks, and frees the object after its handles are closed, then calls
 * closed_cb. Library code: it does not log; the daemon does.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "core/err.h"

enum pgconn_state {
	PGCONN_IDLE,        /* created, not started */
	PGCONN_CONNECTING,  /* PQconnectPoll in progress */
	PGCONN_READY,       /* connected */
	PGCONN_BACKOFF,     /* waiting before the next attempt */
	PGCONN_CLOSED,      /* pgconn_close called */
	PGCONN_STATE_MAX
};

struct pgconn;

struct pgconn_opts {
	const char *conninfo;          /* copied; "" = PG* environment */
	uint64_t connect_timeout_ms;   /* per attempt; 0 = 10 s */
	uint64_t backoff_max_ms;       /* cap of the reconnect delay; 0 = 30 s */
};

struct pgconn_cbs {
	void (*connected)(struct pgconn *pc, void *ud);
	void (*lost)(struct pgconn *pc, int err, const char *reason, bool was_up,
		     uint64_t retry_ms, void *ud);
	void (*notification)(struct pgconn *pc, const char *channel, const char *payload,
			     int be_pid, void *ud);
};

typedef void (*pgconn_result_cb)(struct pgconn *pc, int status, const PGresult *res, void *ud);
typedef void (*pgconn_closed_cb)(void *ud);

const char *pgconn_state_name(enum pgconn_state s);

int pgconn_new(uv_loop_t *loop, const struct pgconn_opts *opts, const struct pgconn_cbs *cbs,
	       void *ud, struct pgconn **ret_pc) S3G_WUR;
/* Begin connecting (on the next loop pass). */
int pgconn_start(struct pgconn *pc) S3G_WUR;
/* Queue a statement with text parameters (copied; NULL = SQL NULL). */
int pgconn_query(struct pgconn *pc, const char *sql, int nparams, const char *const *params,
		 pgconn_result_cb cb, void *ud) S3G_WUR;
void pgconn_close(struct pgconn *pc, pgconn_closed_cb cb, void *ud);

/* Reloadable settings; they apply from the next attempt on. */
void pgconn_set_timeouts(struct pgconn *pc, uint64_t connect_timeout_ms, uint64_t backoff_max_ms);
enum pgconn_state pgconn_state(const struct pgconn *pc);
/* Queries queued or in flight. */
unsigned pgconn_pending(const struct pgconn *pc);
/* Connection attempts since the last success. */
unsigned pgconn_attempts(const struct pgconn *pc);
/* The live connection's libpq handle (READY only), e.g. for PQescape*. */
PGconn *pgconn_handle(const struct pgconn *pc);

/* "host=... port=... dbname=... user=..." of the live connection; NULL when
 * not READY. Caller frees (x_free). No password. */
char *pgconn_server(const struct pgconn *pc);
/* A conninfo with its password replaced by "<redacted>", safe to log.
 * "" gives "(PG* environment)"; an unparseable one "(invalid conninfo)". */
char *pgconn_redact_conninfo(const char *conninfo);
