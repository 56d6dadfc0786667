#include "store/pgconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/xalloc.h"

/* Bounded text assembly: past the buffer's limit the text is truncated,
 * which is the intended behaviour for log and status lines. */
static void __attribute__((format(printf, 2, 3))) bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(b, fmt, ap) < 0) {
		/* truncated */
	}
	va_end(ap);
}

#define BACKOFF_MIN_MS 250
#define REASON_MAX 512

/* A poll handle lives in its own allocation so a new one can be made for a
 * new socket while the old one is still closing. */
struct pgsock {
	uv_poll_t poll;
	struct pgconn *pc;
};

struct pgquery {
	char *sql;
	int nparams;
	char **params;
	pgconn_result_cb cb;
	void *ud;
	struct pgquery *next;
};

struct pgconn {
	uv_loop_t *loop;
	char *conninfo;
	uint64_t connect_timeout_ms;
	uint64_t backoff_max_ms;
	struct pgconn_cbs cbs;
	void *ud;

	enum pgconn_state state;
	PGconn *conn;              /* NULL unless CONNECTING or READY */
	struct pgsock *sock;       /* poll on the current PQsocket, or NULL */
	int fd;                    /* fd sock watches */
	uv_timer_t timer;          /* backoff, connect deadline, query kick */
	unsigned attempts;         /* failures since the last success */
	uint64_t rng;              /* jitter */

	struct pgquery *q_head, *q_tail;
	unsigned q_len;
	bool q_sent;               /* q_head is on the wire */
	PGresult *q_result;        /* result collected for q_head */

	unsigned pending_closes;   /* handle closes outstanding */
	pgconn_closed_cb closed_cb;
	void *closed_ud;
};

static const char *const state_names[PGCONN_STATE_MAX] = {
	[PGCONN_IDLE] = "idle",
	[PGCONN_CONNECTING] = "connecting",
	[PGCONN_READY] = "ready",
	[PGCONN_BACKOFF] = "backoff",
	[PGCONN_CLOSED] = "closed",
};

const char *pgconn_state_name(enum pgconn_state s)
{
	return (unsigned)s < PGCONN_STATE_MAX ? state_names[s] : "?";
}

static void on_timer(uv_timer_t *t);
static void on_poll(uv_poll_t *h, int status, int events);
static void lose(struct pgconn *pc, const char *reason);

int pgconn_new(uv_loop_t *loop, const struct pgconn_opts *opts, const struct pgconn_cbs *cbs,
	       void *ud, struct pgconn **ret_pc)
{
	struct pgconn *pc = x_calloc(1, sizeof(*pc));
	int r;

	pc->loop = loop;
	pc->conninfo = x_strdup(opts->conninfo ? opts->conninfo : "");
	pc->cbs = *cbs;
	pc->ud = ud;
	pc->fd = -1;
	pc->state = PGCONN_IDLE;
	pc->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)pc;
	pgconn_set_timeouts(pc, opts->connect_timeout_ms, opts->backoff_max_ms);
	r = uv_timer_init(loop, &pc->timer);
	if (r < 0) {
		x_free(pc->conninfo);
		x_free(pc);
		return r;
	}
	pc->timer.data = pc;
	*ret_pc = pc;
	return 0;
}

void pgconn_set_timeouts(struct pgconn *pc, uint64_t connect_timeout_ms, uint64_t backoff_max_ms)
{
	pc->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : 10000;
	pc->backoff_max_ms = backoff_max_ms ? backoff_max_ms : 30000;
}

enum pgconn_state pgconn_state(const struct pgconn *pc)
{
	return pc->state;
}

unsigned pgconn_pending(const struct pgconn *pc)
{
	return pc->q_len;
}

unsigned pgconn_attempts(const struct pgconn *pc)
{
	return pc->attempts;
}

PGconn *pgconn_handle(const struct pgconn *pc)
{
	return pc->state == PGCONN_READY ? pc->conn : NULL;
}

int pgconn_start(struct pgconn *pc)
{
	if (pc->state != PGCONN_IDLE)
		return -EALREADY;
	pc->state = PGCONN_BACKOFF;
	return uv_timer_start(&pc->timer, on_timer, 0, 0);
}

/* ---- sockets ------------------------------------------------------------ */

static void maybe_freed(struct pgconn *pc)
{
	pgconn_closed_cb cb;
	void *ud;

	if (pc->state != PGCONN_CLOSED || pc->pending_closes)
		return;
	cb = pc->closed_cb;
	ud = pc->closed_ud;
	x_free(pc->conninfo);
	x_free(pc);
	if (cb)
		cb(ud);
}

static void on_sock_closed(uv_handle_t *h)
{
	struct pgsock *s = h->data;
	struct pgconn *pc = s->pc;

	x_free(s);
	pc->pending_closes--;
	maybe_freed(pc);
}

/* Stop watching; must precede anything that closes the socket (PQfinish,
 * or PQconnectPoll moving to another address). uv_close unregisters the fd
 * synchronously, so the socket may be closed right after. */
static void drop_sock(struct pgconn *pc)
{
	if (!pc->sock)
		return;
	uv_poll_stop(&pc->sock->poll);
	uv_close((uv_handle_t *)&pc->sock->poll, on_sock_closed);
	pc->pending_closes++;
	pc->sock = NULL;
	pc->fd = -1;
}

/* Watch PQsocket() for events, with a fresh handle when `fresh` (libpq may
 * have closed the old socket and reused its number) or the fd changed. */
static int watch(struct pgconn *pc, int events, bool fresh)
{
	int fd = PQsocket(pc->conn), r;

	if (fd < 0)
		return -EBADF;
	if (pc->sock && (fresh || fd != pc->fd))
		drop_sock(pc);
	if (!pc->sock) {
		struct pgsock *s = x_calloc(1, sizeof(*s));

		r = uv_poll_init(pc->loop, &s->poll, fd);
		if (r < 0) {
			x_free(s);
			return r;
		}
		s->pc = pc;
		s->poll.data = s;
		pc->sock = s;
		pc->fd = fd;
	}
	return uv_poll_start(&pc->sock->poll, events, on_poll);
}

/* ---- queries ------------------------------------------------------------ */

static void query_free(struct pgquery *q)
{
	for (int i = 0; i < q->nparams; i++)
		x_free(q->params[i]);
	x_free(q->params);
	x_free(q->sql);
	x_free(q);
}

static struct pgquery *pop(struct pgconn *pc)
{
	struct pgquery *q = pc->q_head;

	if (!q)
		return NULL;
	pc->q_head = q->next;
	if (!pc->q_head)
		pc->q_tail = NULL;
	pc->q_len--;
	return q;
}

/* Fail every queued query. New ones cannot be queued meanwhile: the state
 * is no longer READY. */
static void fail_queries(struct pgconn *pc, int status)
{
	struct pgquery *q;

	if (pc->q_result) {
		PQclear(pc->q_result);
		pc->q_result = NULL;
	}
	pc->q_sent = false;
	while ((q = pop(pc))) {
		q->cb(pc, status, NULL, q->ud);
		query_free(q);
	}
}

static int flush(struct pgconn *pc)
{
	int r = PQflush(pc->conn);

	if (r < 0)
		return S3G_EPGCONN;
	return watch(pc, r ? UV_READABLE | UV_WRITABLE : UV_READABLE, false);
}

static void send_next(struct pgconn *pc)
{
	struct pgquery *q = pc->q_head;
	int r;

	if (pc->state != PGCONN_READY || pc->q_sent || !q)
		return;
	if (!PQsendQueryParams(pc->conn, q->sql, q->nparams, NULL,
			       (const char *const *)q->params, NULL, NULL, 0)) {
		lose(pc, PQerrorMessage(pc->conn));
		return;
	}
	pc->q_sent = true;
	r = flush(pc);
	if (r < 0)
		lose(pc, PQerrorMessage(pc->conn));
}

int pgconn_query(struct pgconn *pc, const char *sql, int nparams, const char *const *params,
		 pgconn_result_cb cb, void *ud)
{
	struct pgquery *q;

	if (pc->state != PGCONN_READY)
		return S3G_EPGCONN;
	if (nparams < 0 || nparams > 65535 || !cb || !sql)
		return S3G_EINVAL;
	q = x_calloc(1, sizeof(*q));
	q->sql = x_strdup(sql);
	q->nparams = nparams;
	if (nparams) {
		q->params = x_calloc((size_t)nparams, sizeof(*q->params));
		for (int i = 0; i < nparams; i++)
			q->params[i] = params[i] ? x_strdup(params[i]) : NULL;
	}
	q->cb = cb;
	q->ud = ud;
	if (pc->q_tail)
		pc->q_tail->next = q;
	else
		pc->q_head = q;
	pc->q_tail = q;
	pc->q_len++;
	/* Sent from the next loop pass, so a send failure never calls back
	 * from inside this function. */
	if (!pc->q_sent)
		return uv_timer_start(&pc->timer, on_timer, 0, 0);
	return 0;
}

/* Drain results and notifications after input was consumed. */
static void process(struct pgconn *pc)
{
	PGnotify *n;

	while (pc->state == PGCONN_READY && pc->q_sent && !PQisBusy(pc->conn)) {
		PGresult *res = PQgetResult(pc->conn);

		if (res) {
			/* Keep the first result, or the first error after it. */
			if (!pc->q_result) {
				pc->q_result = res;
			} else if (PQresultStatus(res) == PGRES_FATAL_ERROR &&
				   PQresultStatus(pc->q_result) != PGRES_FATAL_ERROR) {
				PQclear(pc->q_result);
				pc->q_result = res;
			} else {
				PQclear(res);
			}
			continue;
		}
		{
			struct pgquery *q = pop(pc);
			PGresult *r = pc->q_result;
			ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
			int status = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : S3G_EPGQUERY;

			pc->q_result = NULL;
			pc->q_sent = false;
			q->cb(pc, status, r, q->ud);
			if (r)
				PQclear(r);
			query_free(q);
			send_next(pc);
		}
	}
	while (pc->state == PGCONN_READY && (n = PQnotifies(pc->conn))) {
		if (pc->cbs.notification)
			pc->cbs.notification(pc, n->relname, n->extra, n->be_pid, pc->ud);
		PQfreemem(n);
	}
}

/* ---- connection --------------------------------------------------------- */

static uint64_t next_backoff(struct pgconn *pc)
{
	uint64_t d = BACKOFF_MIN_MS;

	for (unsigned i = 1; i < pc->attempts && d < pc->backoff_max_ms; i++)
		d *= 2;
	if (d > pc->backoff_max_ms)
		d = pc->backoff_max_ms;
	/* xorshift64 */
	pc->rng ^= pc->rng << 13;
	pc->rng ^= pc->rng >> 7;
	pc->rng ^= pc->rng << 17;
	return d / 2 + pc->rng % (d / 2 + 1);
}

/* The attempt failed or the connection dropped: clean up, schedule the next
 * attempt, tell the owner. */
static void lose(struct pgconn *pc, const char *reason)
{
	char why[REASON_MAX];
	bool was_up = pc->state == PGCONN_READY;
	uint64_t delay;
	size_t l;

	/* One line, copied before PQfinish frees libpq's message. */
	snprintf(why, sizeof(why), "%s", reason && *reason ? reason : "unknown error");
	for (char *p = why; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	l = strlen(why);
	while (l && why[l - 1] == ' ')
		why[--l] = '\0';
	drop_sock(pc);
	if (pc->conn) {
		PQfinish(pc->conn);
		pc->conn = NULL;
	}
	pc->state = PGCONN_BACKOFF;
	pc->attempts++;
	delay = next_backoff(pc);
	uv_timer_start(&pc->timer, on_timer, delay, 0);
	fail_queries(pc, S3G_EPGCONN);
	if (pc->state == PGCONN_BACKOFF && pc->cbs.lost)
		pc->cbs.lost(pc, S3G_EPGCONN, why, was_up, delay, pc->ud);
}

static void became_ready(struct pgconn *pc)
{
	int r;

	uv_timer_stop(&pc->timer);
	pc->state = PGCONN_READY;
	pc->attempts = 0;
	r = watch(pc, UV_READABLE, true);
	if (r < 0) {
		lose(pc, uv_strerror(r));
		return;
	}
	if (pc->cbs.connected)
		pc->cbs.connected(pc, pc->ud);
	if (pc->state == PGCONN_READY)
		send_next(pc);
}

static void step_connect(struct pgconn *pc)
{
	PostgresPollingStatusType ps = PQconnectPoll(pc->conn);
	int r;

	switch (ps) {
	case PGRES_POLLING_READING:
		r = watch(pc, UV_READABLE, true);
		break;
	case PGRES_POLLING_WRITING:
		r = watch(pc, UV_WRITABLE, true);
		break;
	case PGRES_POLLING_OK:
		became_ready(pc);
		return;
	case PGRES_POLLING_FAILED:
	default:
		lose(pc, PQerrorMessage(pc->conn));
		return;
	}
	if (r < 0)
		lose(pc, r == -EBADF ? "no socket" : uv_strerror(r));
}

static void attempt(struct pgconn *pc)
{
	int r;

	pc->conn = PQconnectStart(pc->conninfo);
	if (!pc->conn) {
		lose(pc, "out of memory");
		return;
	}
	pc->state = PGCONN_CONNECTING;
	if (PQstatus(pc->conn) == CONNECTION_BAD) {
		lose(pc, PQerrorMessage(pc->conn));
		return;
	}
	if (PQsetnonblocking(pc->conn, 1) != 0) {
		lose(pc, PQerrorMessage(pc->conn));
		return;
	}
	uv_timer_start(&pc->timer, on_timer, pc->connect_timeout_ms, 0);
	/* After PQconnectStart, act as if PQconnectPoll said WRITING. */
	r = watch(pc, UV_WRITABLE, true);
	if (r < 0)
		lose(pc, r == -EBADF ? "no socket" : uv_strerror(r));
}

static void on_timer(uv_timer_t *t)
{
	struct pgconn *pc = t->data;
	char why[64];

	switch (pc->state) {
	case PGCONN_BACKOFF:
		attempt(pc);
		break;
	case PGCONN_CONNECTING:
		snprintf(why, sizeof(why), "connection attempt timed out after %llu ms",
			 (unsigned long long)pc->connect_timeout_ms);
		lose(pc, why);
		break;
	case PGCONN_READY:
		send_next(pc);
		break;
	default:
		break;
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pgsock *s = h->data;
	struct pgconn *pc = s->pc;

	if (s != pc->sock)
		return;  /* stale wake-up */
	if (status < 0) {
		lose(pc, uv_strerror(status));
		return;
	}
	if (pc->state == PGCONN_CONNECTING) {
		step_connect(pc);
		return;
	}
	if (pc->state != PGCONN_READY)
		return;
	if (events & UV_WRITABLE) {
		if (flush(pc) < 0) {
			lose(pc, PQerrorMessage(pc->conn));
			return;
		}
	}
	if (events & UV_READABLE) {
		if (!PQconsumeInput(pc->conn) || PQstatus(pc->conn) == CONNECTION_BAD) {
			lose(pc, PQerrorMessage(pc->conn));
			return;
		}
	}
	process(pc);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct pgconn *pc = h->data;

	pc->pending_closes--;
	maybe_freed(pc);
}

void pgconn_close(struct pgconn *pc, pgconn_closed_cb cb, void *ud)
{
	if (!pc || pc->state == PGCONN_CLOSED)
		return;
	pc->state = PGCONN_CLOSED;
	pc->closed_cb = cb;
	pc->closed_ud = ud;
	drop_sock(pc);
	if (pc->conn) {
		PQfinish(pc->conn);
		pc->conn = NULL;
	}
	fail_queries(pc, S3G_ECANCELLED);
	uv_timer_stop(&pc->timer);
	uv_close((uv_handle_t *)&pc->timer, on_timer_closed);
	pc->pending_closes++;
}

/* ---- descriptions ------------------------------------------------------- */

char *pgconn_server(const struct pgconn *pc)
{
	const char *host, *port, *db, *user;

	if (pc->state != PGCONN_READY)
		return NULL;
	host = PQhost(pc->conn);
	port = PQport(pc->conn);
	db = PQdb(pc->conn);
	user = PQuser(pc->conn);
	return x_asprintf("host=%s port=%s dbname=%s user=%s", host ? host : "",
			  port ? port : "", db ? db : "", user ? user : "");
}

char *pgconn_redact_conninfo(const char *conninfo)
{
	PQconninfoOption *opts;
	struct buf b;

	if (!conninfo || !*conninfo)
		return x_strdup("(PG* environment)");
	opts = PQconninfoParse(conninfo, NULL);
	if (!opts)
		return x_strdup("(invalid conninfo)");
	buf_init(&b, 8192);
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (b.len)
			bprintf(&b, "%s", " ");
		if (strcmp(o->keyword, "password") == 0 || (o->dispchar && o->dispchar[0] == '*'))
			bprintf(&b, "%s=<redacted>", o->keyword);
		else
			bprintf(&b, "%s=%s", o->keyword, o->val);
	}
	PQconninfoFree(opts);
	if (!b.len) {
		buf_free(&b);
		return x_strdup("(PG* environment)");
	}
	return buf_steal(&b);
}
