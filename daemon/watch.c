/* watch.c — the change-queue watcher (see watch.h), then the daemon's glue:
 * configuration, logging, readiness and the hand-over to the reconciler. */
#include "daemon/watch.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/recon.h"
#include "store/pgconn.h"

enum item_state {
	ITEM_HELD,      /* with the consumer */
	ITEM_ACK,       /* ack waiting to be sent */
	ITEM_REL,       /* release waiting to be sent */
	ITEM_SENT,      /* in an ack/release query */
};

enum watch_state {
	W_IDLE,
	W_RUNNING,
	W_STOPPED,      /* watch_stop: no claims */
	W_CLOSING,      /* watch_close: flushing */
	W_CLOSED,       /* handles closing */
};

/* One ack or release query in flight: its items are ITEM_SENT. */
struct wquery {
	struct watch *w;
	enum watch_op op;
	struct watch_item **items;
	size_t n;
	int delay_ms;
	int asked;              /* claim: batch size asked for */
};

struct watch {
	uv_loop_t *loop;
	struct watch_opts opts;
	struct watch_cbs cbs;
	void *ud;
	char who[WATCH_WHO_MAX];

	enum watch_state state;
	struct pgconn *pc;         /* NULL once closed */
	bool session_up;           /* SET done on this connection */
	bool listening;            /* LISTEN done on this connection */
	uv_timer_t poll_timer;     /* fallback claim + flush retry */
	uv_timer_t kick_timer;     /* next loop pass: claim and/or flush */
	uv_timer_t close_timer;    /* bound on the closing flush */
	uv_timer_t renew_timer;    /* every third of the lease, while keys are held */
	unsigned pending_closes;
	bool renewing;             /* renew query in flight */

	bool want_claim;           /* claim when possible */
	bool want_flush;
	struct wquery *claim_q;    /* claim in flight */
	struct wquery *ack_q;      /* ack in flight */
	struct wquery *rel_q;      /* release in flight */

	struct watch_item *items;  /* every live item */
	unsigned held;             /* ITEM_HELD */
	unsigned pending;          /* ITEM_ACK + ITEM_REL */
	unsigned long long claimed_total, acked_total, released_total;
	unsigned long long renewals;   /* renew queries that succeeded */

	watch_closed_cb closed_cb;
	void *closed_ud;
};

static const char *const op_names[WATCH_OP_MAX] = {
	[WATCH_OP_SESSION] = "session",
	[WATCH_OP_LISTEN] = "listen",
	[WATCH_OP_CLAIM] = "claim",
	[WATCH_OP_ACK] = "ack",
	[WATCH_OP_RELEASE] = "release",
	[WATCH_OP_RENEW] = "renew",
};

const char *watch_op_name(enum watch_op op)
{
	return (unsigned)op < WATCH_OP_MAX ? op_names[op] : "?";
}

static void kick(struct watch *w);
static void flush(struct watch *w);
static void maybe_final_close(struct watch *w);
static void final_close(struct watch *w);

/* ---- items -------------------------------------------------------------- */

static struct watch_item *item_new(struct watch *w, struct pgq_change *c)
{
	struct watch_item *it = x_calloc(1, sizeof(*it));

	it->change = *c;
	c->key = NULL;  /* moved */
	it->state = ITEM_HELD;
	it->next = w->items;
	if (w->items)
		w->items->prev = it;
	w->items = it;
	w->held++;
	return it;
}

static void item_free(struct watch *w, struct watch_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		w->items = it->next;
	if (it->next)
		it->next->prev = it->prev;
	if (it->state == ITEM_HELD)
		w->held--;
	else if (it->state == ITEM_ACK || it->state == ITEM_REL)
		w->pending--;
	x_free(it->change.key);
	x_free(it);
}

static void give_back(struct watch *w, struct watch_item *it, enum item_state st, int delay_ms)
{
	if (!it || it->state != ITEM_HELD || w->state >= W_CLOSED)
		return;
	it->state = st;
	it->delay_ms = delay_ms < 0 ? 0 : delay_ms;
	w->held--;
	w->pending++;
	w->want_flush = true;
	kick(w);
}

void watch_ack(struct watch *w, struct watch_item *it)
{
	give_back(w, it, ITEM_ACK, 0);
}

void watch_release(struct watch *w, struct watch_item *it, int delay_ms)
{
	give_back(w, it, ITEM_REL, delay_ms);
}

/* ---- life cycle --------------------------------------------------------- */

static unsigned max_held(const struct watch *w)
{
	return w->opts.max_held ? w->opts.max_held : 4u * (unsigned)w->opts.batch;
}

static void make_who(char *out, size_t n)
{
	char host[64] = "localhost";
	unsigned char rnd[4] = { 0 };
	uint64_t x = uv_hrtime() ^ ((uint64_t)getpid() << 20);

	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (getentropy(rnd, sizeof(rnd)) != 0)
		memcpy(rnd, &x, sizeof(rnd));
	snprintf(out, n, "%s:%ld:%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2],
		 rnd[3]);
}

static void on_pg_connected(struct pgconn *pc, void *ud);
static void on_pg_lost(struct pgconn *pc, int err, const char *reason, bool was_up,
		       uint64_t retry_ms, void *ud);
static void on_pg_notification(struct pgconn *pc, const char *channel, const char *payload,
			       int be_pid, void *ud);

static void sanitize_opts(struct watch_opts *o)
{
	if (o->batch < 1)
		o->batch = 1;
	if (o->batch > PGQ_BATCH_MAX)
		o->batch = PGQ_BATCH_MAX;
	if (o->lease_ms < 1)
		o->lease_ms = 1;
	if (o->poll_interval_ms == 0)
		o->poll_interval_ms = 5000;
	if (o->statement_timeout_ms < 0)
		o->statement_timeout_ms = 0;
}

int watch_new(uv_loop_t *loop, const struct watch_opts *opts, const struct watch_cbs *cbs,
	      void *ud, struct watch **ret_w)
{
	static const struct pgconn_cbs pcbs = {
		.connected = on_pg_connected,
		.lost = on_pg_lost,
		.notification = on_pg_notification,
	};
	struct pgconn_opts po = {
		.conninfo = opts->conninfo,
		.connect_timeout_ms = opts->connect_timeout_ms,
		.backoff_max_ms = opts->backoff_max_ms,
	};
	struct watch *w = x_calloc(1, sizeof(*w));
	int r;

	w->loop = loop;
	w->opts = *opts;
	w->opts.conninfo = NULL;  /* pgconn keeps its copy */
	sanitize_opts(&w->opts);
	w->cbs = *cbs;
	w->ud = ud;
	make_who(w->who, sizeof(w->who));
	r = pgconn_new(loop, &po, &pcbs, w, &w->pc);
	if (r < 0) {
		x_free(w);
		return r;
	}
	/* Timer inits cannot fail on a live loop (they only link the handle). */
	uv_timer_init(loop, &w->poll_timer);
	uv_timer_init(loop, &w->kick_timer);
	uv_timer_init(loop, &w->close_timer);
	uv_timer_init(loop, &w->renew_timer);
	w->poll_timer.data = w->kick_timer.data = w->close_timer.data = w->renew_timer.data = w;
	w->state = W_IDLE;
	*ret_w = w;
	return 0;
}

static void on_poll_timer(uv_timer_t *t)
{
	struct watch *w = t->data;

	w->want_claim = true;
	w->want_flush = true;
	kick(w);
}

static void on_renew_timer(uv_timer_t *t);

static uint64_t renew_interval(const struct watch *w)
{
	return w->opts.lease_ms >= 3 ? (uint64_t)w->opts.lease_ms / 3 : 1;
}

int watch_start(struct watch *w)
{
	int r;

	if (w->state != W_IDLE)
		return -EALREADY;
	r = pgconn_start(w->pc);
	if (r < 0)
		return r;
	w->state = W_RUNNING;
	uv_timer_start(&w->renew_timer, on_renew_timer, renew_interval(w), renew_interval(w));
	return uv_timer_start(&w->poll_timer, on_poll_timer, w->opts.poll_interval_ms,
			      w->opts.poll_interval_ms);
}

static void send_session(struct watch *w);

void watch_set_opts(struct watch *w, const struct watch_opts *opts)
{
	struct watch_opts o = *opts;
	bool new_timeout = o.statement_timeout_ms != w->opts.statement_timeout_ms;
	bool new_poll = o.poll_interval_ms != w->opts.poll_interval_ms;
	bool new_lease = o.lease_ms != w->opts.lease_ms;

	o.conninfo = NULL;
	sanitize_opts(&o);
	w->opts = o;
	if (w->pc)
		pgconn_set_timeouts(w->pc, o.connect_timeout_ms, o.backoff_max_ms);
	if (new_poll && w->state == W_RUNNING)
		uv_timer_start(&w->poll_timer, on_poll_timer, o.poll_interval_ms, o.poll_interval_ms);
	if (new_lease && uv_is_active((uv_handle_t *)&w->renew_timer))
		uv_timer_start(&w->renew_timer, on_renew_timer, renew_interval(w), renew_interval(w));
	if (new_timeout && w->session_up)
		send_session(w);
}

void watch_kick(struct watch *w)
{
	if (w->state != W_RUNNING)
		return;
	w->want_claim = true;
	kick(w);
}

void watch_stop(struct watch *w)
{
	if (w->state != W_RUNNING && w->state != W_IDLE)
		return;
	w->state = W_STOPPED;
	w->want_claim = false;
	uv_timer_stop(&w->poll_timer);
}

const char *watch_who(const struct watch *w)
{
	return w->who;
}

bool watch_listening(const struct watch *w)
{
	return w->listening;
}

unsigned watch_held(const struct watch *w)
{
	return w->held;
}

unsigned long long watch_claimed_total(const struct watch *w)
{
	return w->claimed_total;
}

unsigned long long watch_acked_total(const struct watch *w)
{
	return w->acked_total;
}

unsigned long long watch_released_total(const struct watch *w)
{
	return w->released_total;
}

unsigned long long watch_renewals(const struct watch *w)
{
	return w->renewals;
}

/* ---- queries ------------------------------------------------------------ */

static void report_error(struct watch *w, enum watch_op op, int status, const PGresult *res)
{
	char msg[512];
	const char *m = res ? PQresultErrorMessage(res) : NULL;
	size_t l;

	if (!w->cbs.error || w->state >= W_CLOSED)
		return;
	snprintf(msg, sizeof(msg), "%s", m && *m ? m : err_str(status));
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	l = strlen(msg);
	while (l && msg[l - 1] == ' ')
		msg[--l] = '\0';
	w->cbs.error(w, op, status, msg, w->ud);
}

static void wquery_free(struct wquery *q)
{
	if (!q)
		return;
	x_free(q->items);
	x_free(q);
}

static void on_listen(struct pgconn *pc, int status, const PGresult *res, void *ud)
{
	struct watch *w = ud;

	if (status == S3G_EPGCONN || status == S3G_ECANCELLED || w->state >= W_CLOSED)
		return;
	if (status < 0) {
		report_error(w, WATCH_OP_LISTEN, status, res);
		return;
	}
	w->listening = true;
	if (w->cbs.listening)
		w->cbs.listening(w, w->ud);
	/* Catch up with whatever was committed while we were away. */
	if (w->state == W_RUNNING)
		w->want_claim = true;
	w->want_flush = true;
	kick(w);
}

static void on_session(struct pgconn *pc, int status, const PGresult *res, void *ud)
{
	struct watch *w = ud;

	if (status == S3G_EPGCONN || status == S3G_ECANCELLED || w->state >= W_CLOSED)
		return;
	if (status < 0) {
		report_error(w, WATCH_OP_SESSION, status, res);
		return;
	}
	w->session_up = true;
	w->want_flush = true;
	kick(w);
}

static void send_session(struct watch *w)
{
	char tmo[24];
	const char *params[2] = { WATCH_APPLICATION_NAME, tmo };
	int r;

	snprintf(tmo, sizeof(tmo), "%d", w->opts.statement_timeout_ms);
	r = pgconn_query(w->pc,
			 "SELECT set_config('application_name', $1, false),"
			 " set_config('statement_timeout', $2, false)",
			 2, params, on_session, w);
	if (r < 0)
		report_error(w, WATCH_OP_SESSION, r, NULL);
}

static void on_pg_connected(struct pgconn *pc, void *ud)
{
	struct watch *w = ud;
	int r;

	w->session_up = false;
	w->listening = false;
	if (w->state >= W_CLOSING)
		return;
	send_session(w);
	/* Queued behind the SET; sent one at a time. */
	r = pgconn_query(pc, PGQ_LISTEN_SQL, 0, NULL, on_listen, w);
	if (r < 0)
		report_error(w, WATCH_OP_LISTEN, r, NULL);
}

static void on_pg_lost(struct pgconn *pc, int err, const char *reason, bool was_up,
		       uint64_t retry_ms, void *ud)
{
	struct watch *w = ud;

	w->session_up = false;
	w->listening = false;
	if (w->state >= W_CLOSING) {
		maybe_final_close(w);
		return;
	}
	if (w->cbs.lost)
		w->cbs.lost(w, reason, was_up, pgconn_attempts(pc), retry_ms, w->ud);
}

static void on_pg_notification(struct pgconn *pc, const char *channel, const char *payload,
			       int be_pid, void *ud)
{
	struct watch *w = ud;

	/* A hint: whatever it names, claim. */
	if (w->state != W_RUNNING)
		return;
	w->want_claim = true;
	kick(w);
}

static void on_claim(struct pgconn *pc, int status, const PGresult *res, void *ud)
{
	struct wquery *q = ud;
	struct watch *w = q->w;
	struct pgq_batch b = { 0 };
	struct watch_item **items;
	int asked = q->asked, r;

	if (w->claim_q == q)
		w->claim_q = NULL;
	wquery_free(q);
	if (status == S3G_EPGCONN || status == S3G_ECANCELLED || w->state >= W_CLOSED)
		return;
	if (status < 0) {
		report_error(w, WATCH_OP_CLAIM, status, res);
		return;  /* the poll timer retries */
	}
	r = pgq_parse_claim(res, &b);
	if (r < 0) {
		report_error(w, WATCH_OP_CLAIM, r, NULL);
		return;
	}
	if (b.n == 0) {
		pgq_batch_free(&b);
		goto again;
	}
	items = x_calloc(b.n, sizeof(*items));
	for (size_t i = 0; i < b.n; i++)
		items[i] = item_new(w, &b.items[i]);
	w->claimed_total += b.n;
	/* Full batch: more may be waiting. */
	if ((int)b.n >= asked && w->state == W_RUNNING)
		w->want_claim = true;
	{
		size_t n = b.n;

		pgq_batch_free(&b);
		if (w->cbs.batch)
			w->cbs.batch(w, items, n, w->ud);
	}
	x_free(items);
again:
	if (w->want_claim)
		kick(w);
}

static void claim(struct watch *w)
{
	struct pgq_query pq;
	struct wquery *q;
	unsigned room, lim = max_held(w);
	int n, r;

	if (w->state != W_RUNNING) {
		w->want_claim = false;
		return;
	}
	if (!w->listening || w->claim_q)
		return;  /* want_claim stays; LISTEN and the claim result re-kick */
	room = w->held < lim ? lim - w->held : 0;
	if (room == 0)
		return;  /* an ack re-kicks */
	n = (unsigned)w->opts.batch < room ? w->opts.batch : (int)room;
	r = pgq_claim_query(&pq, n, w->opts.lease_ms, w->who);
	if (r < 0) {
		report_error(w, WATCH_OP_CLAIM, r, NULL);
		return;
	}
	q = x_calloc(1, sizeof(*q));
	q->w = w;
	q->op = WATCH_OP_CLAIM;
	q->asked = n;
	r = pgconn_query(w->pc, pq.sql, pq.nparams, pq.values, on_claim, q);
	pgq_query_free(&pq);
	if (r < 0) {
		wquery_free(q);
		return;
	}
	w->claim_q = q;
	w->want_claim = false;
}

/* Leases of the keys still held (with the consumer, or waiting for their ack
 * or release) are renewed while the watch runs or is stopped; a pass longer
 * than the lease keeps its keys. A failed renewal is reported and tried again
 * at the next tick, a third of a lease later. */
static void on_renew(struct pgconn *pc, int status, const PGresult *res, void *ud)
{
	struct watch *w = ud;
	long long n;
	int r = status;

	w->renewing = false;
	if (status == S3G_EPGCONN || status == S3G_ECANCELLED || w->state >= W_CLOSED)
		return;
	if (r == 0)
		r = pgq_parse_ack(res, &n);
	if (r < 0) {
		report_error(w, WATCH_OP_RENEW, r, res);
		return;
	}
	w->renewals++;
}

static void on_renew_timer(uv_timer_t *t)
{
	struct watch *w = t->data;
	struct pgq_query pq;
	int r;

	if ((w->state != W_RUNNING && w->state != W_STOPPED) || !w->items || !w->session_up ||
	    w->renewing)
		return;
	r = pgq_renew_query(&pq, w->opts.lease_ms, w->who);
	if (r == 0) {
		r = pgconn_query(w->pc, pq.sql, pq.nparams, pq.values, on_renew, w);
		pgq_query_free(&pq);
	}
	if (r < 0) {
		report_error(w, WATCH_OP_RENEW, r, NULL);
		return;
	}
	w->renewing = true;
}

/* A shallow batch (keys point into the items) for the query builders. */
static void shallow_batch(const struct wquery *q, struct pgq_batch *b)
{
	b->items = x_calloc(q->n ? q->n : 1, sizeof(*b->items));
	b->n = q->n;
	for (size_t i = 0; i < q->n; i++)
		b->items[i] = q->items[i]->change;
}

static void on_done_query(struct pgconn *pc, int status, const PGresult *res, void *ud)
{
	struct wquery *q = ud;
	struct watch *w = q->w;
	struct pgq_batch b = { 0 };
	long long deleted = 0;
	int r = status;

	if (q->op == WATCH_OP_ACK)
		w->ack_q = NULL;
	else
		w->rel_q = NULL;
	if (status == S3G_ECANCELLED || w->state >= W_CLOSED) {
		/* Closing: the items are freed with the watch. */
		wquery_free(q);
		return;
	}
	if (r == 0 && q->op == WATCH_OP_ACK)
		r = pgq_parse_ack(res, &deleted);
	if (r < 0) {
		/* Back to pending: sent again after the reconnect (connection
		 * lost) or on the next poll tick (query error). */
		for (size_t i = 0; i < q->n; i++) {
			q->items[i]->state = q->op == WATCH_OP_ACK ? ITEM_ACK : ITEM_REL;
			w->pending++;
		}
		if (status != S3G_EPGCONN)
			report_error(w, q->op, r, res);
		wquery_free(q);
		if (w->state == W_CLOSING)
			final_close(w);  /* no retries while closing */
		return;
	}
	shallow_batch(q, &b);
	if (q->op == WATCH_OP_ACK) {
		w->acked_total += (unsigned long long)deleted;
		/* Keys that changed since the claim were released: claim them. */
		if (deleted < (long long)q->n && w->state == W_RUNNING)
			w->want_claim = true;
		if (w->cbs.acked)
			w->cbs.acked(w, &b, deleted, w->ud);
	} else {
		w->released_total += q->n;
		if (w->cbs.released)
			w->cbs.released(w, &b, q->delay_ms, w->ud);
	}
	x_free(b.items);
	for (size_t i = 0; i < q->n; i++)
		item_free(w, q->items[i]);
	wquery_free(q);
	if (w->pending)
		w->want_flush = true;
	if (w->want_flush || w->want_claim)
		kick(w);
	maybe_final_close(w);
}

/* Send up to PGQ_BATCH_MAX pending items of one kind (releases: of the
 * first pending item's delay). */
static void send_done(struct watch *w, enum watch_op op)
{
	enum item_state want = op == WATCH_OP_ACK ? ITEM_ACK : ITEM_REL;
	struct pgq_query pq;
	struct pgq_batch b;
	struct wquery *q = x_calloc(1, sizeof(*q));
	int delay = -1, r;
	size_t cap = 0;

	q->w = w;
	q->op = op;
	for (struct watch_item *it = w->items; it && q->n < PGQ_BATCH_MAX; it = it->next) {
		if (it->state != (int)want)
			continue;
		if (op == WATCH_OP_RELEASE) {
			if (delay < 0)
				delay = it->delay_ms;
			else if (it->delay_ms != delay)
				continue;
		}
		if (q->n == cap) {
			cap = cap ? 2 * cap : 64;
			q->items = x_realloc(q->items, cap * sizeof(*q->items));
		}
		q->items[q->n++] = it;
	}
	if (q->n == 0) {
		wquery_free(q);
		return;
	}
	q->delay_ms = delay < 0 ? 0 : delay;
	shallow_batch(q, &b);
	r = op == WATCH_OP_ACK ? pgq_ack_query(&pq, &b, w->who)
			       : pgq_release_query(&pq, &b, w->who, q->delay_ms);
	x_free(b.items);
	if (r < 0) {
		/* An unusable key (too long): drop it; its lease expires. */
		report_error(w, op, r, NULL);
		for (size_t i = 0; i < q->n; i++)
			item_free(w, q->items[i]);
		wquery_free(q);
		return;
	}
	r = pgconn_query(w->pc, pq.sql, pq.nparams, pq.values, on_done_query, q);
	pgq_query_free(&pq);
	if (r < 0) {
		wquery_free(q);
		return;
	}
	for (size_t i = 0; i < q->n; i++) {
		q->items[i]->state = ITEM_SENT;
		w->pending--;
	}
	if (op == WATCH_OP_ACK)
		w->ack_q = q;
	else
		w->rel_q = q;
}

static void flush(struct watch *w)
{
	w->want_flush = false;
	if (!w->pending || !w->session_up || !w->pc || pgconn_state(w->pc) != PGCONN_READY)
		return;
	if (!w->ack_q)
		send_done(w, WATCH_OP_ACK);
	if (!w->rel_q)
		send_done(w, WATCH_OP_RELEASE);
}

static void on_kick(uv_timer_t *t)
{
	struct watch *w = t->data;

	if (w->state >= W_CLOSED)
		return;
	if (w->want_flush)
		flush(w);
	if (w->want_claim)
		claim(w);
}

static void kick(struct watch *w)
{
	if (w->state >= W_CLOSED)
		return;
	if (!uv_is_active((uv_handle_t *)&w->kick_timer))
		uv_timer_start(&w->kick_timer, on_kick, 0, 0);
}

/* ---- close -------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct watch *w = h->data;
	watch_closed_cb cb;
	void *ud;

	if (--w->pending_closes)
		return;
	while (w->items)
		item_free(w, w->items);
	cb = w->closed_cb;
	ud = w->closed_ud;
	x_free(w);
	if (cb)
		cb(ud);
}

static void on_pc_closed(void *ud)
{
	on_handle_closed((uv_handle_t *)&((struct watch *)ud)->close_timer);
}

static void final_close(struct watch *w)
{
	struct pgconn *pc = w->pc;

	if (w->state == W_CLOSED)
		return;
	w->state = W_CLOSED;
	w->pending_closes = 5;
	uv_close((uv_handle_t *)&w->poll_timer, on_handle_closed);
	uv_close((uv_handle_t *)&w->kick_timer, on_handle_closed);
	uv_close((uv_handle_t *)&w->close_timer, on_handle_closed);
	uv_close((uv_handle_t *)&w->renew_timer, on_handle_closed);
	w->pc = NULL;
	pgconn_close(pc, on_pc_closed, w);
}

static void maybe_final_close(struct watch *w)
{
	bool up = w->pc && w->session_up && pgconn_state(w->pc) == PGCONN_READY;

	if (w->state != W_CLOSING)
		return;
	if (w->ack_q || w->rel_q)
		return;
	if (up && w->pending)
		return;
	final_close(w);
}

static void on_close_deadline(uv_timer_t *t)
{
	final_close(t->data);
}

void watch_close(struct watch *w, watch_closed_cb cb, void *ud)
{
	uint64_t bound;

	if (!w || w->state >= W_CLOSING)
		return;
	w->closed_cb = cb;
	w->closed_ud = ud;
	w->state = W_CLOSING;
	w->want_claim = false;
	uv_timer_stop(&w->poll_timer);
	/* Unfinished work goes back to the queue at once. */
	for (struct watch_item *it = w->items; it; it = it->next)
		if (it->state == ITEM_HELD) {
			it->state = ITEM_REL;
			it->delay_ms = 0;
			w->held--;
			w->pending++;
		}
	bound = (uint64_t)(w->opts.statement_timeout_ms ? w->opts.statement_timeout_ms : 5000);
	if (bound > 10000)
		bound = 10000;
	uv_timer_start(&w->close_timer, on_close_deadline, bound, 0);
	flush(w);
	maybe_final_close(w);
}

/* ==== the daemon's glue ===================================================
 * Options from the config, logging, readiness, STATUS, and the hand-over
 * of each batch to the reconciler (which acks or releases every item).
 * Test hooks (environment): S3GRANTD_TEST_CONSUMER_DELAY_MS holds
 * each batch that long before acking (so a test can kill a daemon while it
 * holds claims); S3GRANTD_TEST_REJECT_KEYS is a glob of keys the consumer
 * rejects (released with backoff, like a poisoned row). */

#define KEYS_LOG_MAX (64 * 1024)
#define STATUS_MIN_MS 1000

struct watch_job {
	uv_timer_t timer;          /* delay hook */
	struct watch_glue *g;
	struct watch_item **items;
	size_t n;
	struct watch_job *prev, *next;
};

struct watch_glue {
	struct daemon *d;
	struct watch *w;           /* NULL once closed */
	unsigned long long batches, done, rejected;
	unsigned errors;           /* query errors since the last LISTEN */
	unsigned lost;             /* connection failures since the last LISTEN */
	bool was_listening;        /* a LISTEN was up before (reconnect) */
	uint64_t delay_ms;         /* S3GRANTD_TEST_CONSUMER_DELAY_MS */
	char *reject;              /* S3GRANTD_TEST_REJECT_KEYS */
	uint64_t status_at;        /* last STATUS update from progress */
	struct watch_job *jobs;
};

static void watch_opts_from(const struct config *cfg, struct watch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->conninfo = config_str(cfg, CONFIG_DB_CONNINFO);
	o->connect_timeout_ms = (uint64_t)config_int(cfg, CONFIG_DB_CONNECT_TIMEOUT);
	o->backoff_max_ms = (uint64_t)config_int(cfg, CONFIG_DB_RECONNECT_MAX_BACKOFF);
	o->poll_interval_ms = (uint64_t)config_int(cfg, CONFIG_RECONCILE_QUEUE_POLL_INTERVAL);
	o->lease_ms = (int)config_int(cfg, CONFIG_RECONCILE_QUEUE_LEASE);
	o->batch = (int)config_int(cfg, CONFIG_RECONCILE_QUEUE_BATCH);
	o->statement_timeout_ms = (int)config_int(cfg, CONFIG_DB_STATEMENT_TIMEOUT);
}

static char *keys_text(struct watch_item *const *items, const struct pgq_batch *b, size_t n)
{
	struct buf out;

	buf_init(&out, KEYS_LOG_MAX);
	for (size_t i = 0; i < n; i++) {
		const char *k = items ? items[i]->change.key : b->items[i].key;

		if (buf_printf(&out, "%s%s", i ? "," : "", k) < 0)
			break;  /* truncated: the count field is exact */
	}
	return buf_steal(&out);
}

static void progress_status(struct watch_glue *g, bool force)
{
	uint64_t now = uv_now(&g->d->loop);

	if (!force && now - g->status_at < STATUS_MIN_MS)
		return;
	g->status_at = now;
	daemon_update_status(g->d);
}

static void glue_listening(struct watch *w, void *ud)
{
	struct watch_glue *g = ud;

	log_info(NULL, LOG_FIELDS({ "who", watch_who(w) }, { "channel", PGQ_CHANNEL },
				  { "reconnect", g->was_listening ? "yes" : "no" }),
		 "listening for changes");
	g->was_listening = true;
	g->errors = 0;
	g->lost = 0;
	g->d->listening = true;
	if (!daemon_maybe_ready(g->d))
		daemon_update_status(g->d);
}

static void glue_lost(struct watch *w, const char *reason, bool was_up, unsigned attempts,
		      uint64_t retry_ms, void *ud)
{
	struct watch_glue *g = ud;
	char a[24], r[24];
	const struct log_field *f = LOG_FIELDS({ "reason", reason },
					       { "attempt", log_int(a, sizeof(a), attempts) },
					       { "retry_ms", log_int(r, sizeof(r), (long long)retry_ms) });

	g->d->listening = false;
	g->lost++;
	if (was_up)
		log_warning(LOG_MID_DB_LOST, f, "change-queue connection lost");
	else if ((g->lost & (g->lost - 1)) == 0)
		log_warning(LOG_MID_DB_LOST, f, "cannot connect the change-queue listener");
	else
		log_debug(LOG_MID_DB_LOST, f, "cannot connect the change-queue listener");
	daemon_update_status(g->d);
}

static void glue_error(struct watch *w, enum watch_op op, int status, const char *message,
		       void *ud)
{
	struct watch_glue *g = ud;
	char n[24];
	const struct log_field *f = LOG_FIELDS({ "op", watch_op_name(op) },
					       { "error", message },
					       { "count", log_int(n, sizeof(n), g->errors + 1) });

	/* A retry storm is one warning, then one per doubling. */
	g->errors++;
	if ((g->errors & (g->errors - 1)) == 0)
		log_warning(NULL, f, "change-queue %s failed", watch_op_name(op));
	else
		log_debug(NULL, f, "change-queue %s failed", watch_op_name(op));
}

static void glue_acked(struct watch *w, const struct pgq_batch *b, long long deleted, void *ud)
{
	char n[24], dl[24], *keys;

	if (!log_enabled(LOG_LEVEL_DEBUG))
		return;
	keys = keys_text(NULL, b, b->n);
	log_debug(NULL, LOG_FIELDS({ "who", watch_who(w) },
				   { "n", log_int(n, sizeof(n), (long long)b->n) },
				   { "deleted", log_int(dl, sizeof(dl), deleted) }, { "keys", keys }),
		  "acked changes");
	x_free(keys);
}

static void glue_released(struct watch *w, const struct pgq_batch *b, int delay_ms, void *ud)
{
	char n[24], dl[24], *keys;

	if (!log_enabled(LOG_LEVEL_DEBUG))
		return;
	keys = keys_text(NULL, b, b->n);
	log_debug(NULL, LOG_FIELDS({ "who", watch_who(w) },
				   { "n", log_int(n, sizeof(n), (long long)b->n) },
				   { "delay_ms", log_int(dl, sizeof(dl), delay_ms) }, { "keys", keys }),
		  "released changes");
	x_free(keys);
}

/* Backoff for a rejected key: 1 s doubling per attempt, capped at 5 min. */
static int reject_delay(const struct pgq_change *c)
{
	long long d = 1000;

	for (int i = 1; i < c->attempts && d < 300000; i++)
		d *= 2;
	return (int)(d > 300000 ? 300000 : d);
}

/* Hand the items to the reconciler (daemon/recon.c), which acks each one
 * when the integration's pass that covers it succeeds and releases it with
 * backoff when it fails; the test hook rejects matching keys first. */
static void consume(struct watch_glue *g, struct watch_item *const *items, size_t n)
{
	struct watch_item **mine = x_calloc(n ? n : 1, sizeof(*mine));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct watch_item *it = items[i];

		if (g->reject && fnmatch(g->reject, it->change.key, 0) == 0) {
			char a[24], dl[24];
			int delay = reject_delay(&it->change);

			g->rejected++;
			log_debug(NULL, LOG_FIELDS({ "key", it->change.key },
						   { "attempt", log_int(a, sizeof(a), it->change.attempts) },
						   { "retry_ms", log_int(dl, sizeof(dl), delay) }),
				  "change rejected by the consumer");
			watch_release(g->w, it, delay);
			continue;
		}
		g->done++;
		if (g->d->recon)
			mine[k++] = it;
		else
			watch_ack(g->w, it);
	}
	if (k)
		recond_consume(g->d, g->w, mine, k);
	x_free(mine);
}

static void job_unlink(struct watch_glue *g, struct watch_job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		g->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
}

static void on_job_closed(uv_handle_t *h)
{
	struct watch_job *j = h->data;

	x_free(j->items);
	x_free(j);
}

static void on_job_timer(uv_timer_t *t)
{
	struct watch_job *j = t->data;
	struct watch_glue *g = j->g;

	job_unlink(g, j);
	consume(g, j->items, j->n);
	uv_close((uv_handle_t *)&j->timer, on_job_closed);
	progress_status(g, false);
	daemon_work_end(g->d);
}

static void glue_batch(struct watch *w, struct watch_item *const *items, size_t n, void *ud)
{
	struct watch_glue *g = ud;
	struct watch_job *j;

	if (log_enabled(LOG_LEVEL_DEBUG)) {
		char c[24], *keys = keys_text(items, NULL, n);

		log_debug(NULL, LOG_FIELDS({ "who", watch_who(w) },
					   { "n", log_int(c, sizeof(c), (long long)n) }, { "keys", keys }),
			  "claimed changes");
		x_free(keys);
	}
	g->batches++;
	if (daemon_work_begin(g->d) < 0) {
		/* Stopping: give them back for another daemon. */
		for (size_t i = 0; i < n; i++)
			watch_release(w, items[i], 0);
		return;
	}
	if (!g->delay_ms) {
		consume(g, items, n);
		progress_status(g, false);
		daemon_work_end(g->d);
		return;
	}
	j = x_calloc(1, sizeof(*j));
	j->g = g;
	j->n = n;
	j->items = x_calloc(n, sizeof(*j->items));
	memcpy(j->items, items, n * sizeof(*items));
	uv_timer_init(&g->d->loop, &j->timer);
	j->timer.data = j;
	j->next = g->jobs;
	if (g->jobs)
		g->jobs->prev = j;
	g->jobs = j;
	uv_timer_start(&j->timer, on_job_timer, g->delay_ms, 0);
}

int watch_daemon_start(struct daemon *d)
{
	static const struct watch_cbs cbs = {
		.listening = glue_listening,
		.lost = glue_lost,
		.error = glue_error,
		.acked = glue_acked,
		.released = glue_released,
		.batch = glue_batch,
	};
	struct watch_glue *g = x_calloc(1, sizeof(*g));
	struct watch_opts o;
	const char *s;
	int r;

	g->d = d;
	s = getenv("S3GRANTD_TEST_CONSUMER_DELAY_MS");
	if (s && *s)
		g->delay_ms = strtoull(s, NULL, 10);
	s = getenv("S3GRANTD_TEST_REJECT_KEYS");
	if (s && *s)
		g->reject = x_strdup(s);
	watch_opts_from(d->cfg, &o);
	r = watch_new(&d->loop, &o, &cbs, g, &g->w);
	if (r == 0) {
		r = watch_start(g->w);
		if (r < 0)
			watch_close(g->w, NULL, NULL);
	}
	if (r < 0) {
		x_free(g->reject);
		x_free(g);
		return r;
	}
	d->queue = g;
	return 0;
}

void watch_daemon_apply(struct daemon *d)
{
	struct watch_opts o;

	if (!d->queue || !d->queue->w)
		return;
	watch_opts_from(d->cfg, &o);
	watch_set_opts(d->queue->w, &o);
}

void watch_daemon_stop(struct daemon *d)
{
	if (d->queue && d->queue->w)
		watch_stop(d->queue->w);
}

static void on_watch_closed(void *ud)
{
	struct watch_glue *g = ud;

	x_free(g->reject);
	x_free(g);
}

void watch_daemon_close(struct daemon *d)
{
	struct watch_glue *g = d->queue;
	struct watch *w;

	if (!g)
		return;
	d->queue = NULL;
	d->listening = false;
	/* Abandoned consumer work: its items are released by watch_close. */
	while (g->jobs) {
		struct watch_job *j = g->jobs;

		job_unlink(g, j);
		uv_close((uv_handle_t *)&j->timer, on_job_closed);
	}
	w = g->w;
	g->w = NULL;
	if (w) {
		char c[24];

		log_debug(NULL, LOG_FIELDS({ "held", log_int(c, sizeof(c), watch_held(w)) }),
			  "closing the change-queue listener");
		watch_close(w, on_watch_closed, g);
	} else {
		on_watch_closed(g);
	}
}

void watch_daemon_status(const struct daemon *d, struct buf *b)
{
	const struct watch_glue *g = d->queue;

	if (!g || !g->w)
		return;
	if (buf_printf(b, "; queue %s, %llu change%s done",
		       d->listening ? "listening" : "not listening", g->done,
		       g->done == 1 ? "" : "s") < 0)
		return;  /* truncated */
	if (g->rejected && buf_printf(b, ", %llu retried", g->rejected) < 0)
		return;
	if (watch_held(g->w) && buf_printf(b, ", %u in progress", watch_held(g->w)) < 0)
		return;
}
