/* recon.c — the reconciler (see recon.h): integrations, passes, the
 * worker-thread database jobs, the step executor and the results. The
 * integration lifecycle (validation, location create/delete) is in
 * daemon/lifecycle.c; AWS calls in daemon/recon_aws.c (one credential
 * provider and client per integration, kept across passes). */
#include "daemon/recon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/recon_int.h"

#define LOG_MID_GRANT_CREATED "7b3b1c9e5f0a4d8e9a52d3c1e0f4a620"
#define LOG_MID_GRANT_DELETED "7b3b1c9e5f0a4d8e9a52d3c1e0f4a621"
#define LOG_MID_RECON_DONE    "7b3b1c9e5f0a4d8e9a52d3c1e0f4a622"
#define LOG_MID_RECON_FAILED  "7b3b1c9e5f0a4d8e9a52d3c1e0f4a623"
#define LOG_MID_QUOTA         "7b3b1c9e5f0a4d8e9a52d3c1e0f4a624"

#define INTENT_CHUNK 2000          /* intents recorded per job */
#define FLUSH_N 2000               /* results per commit */
#define FLUSH_MS 100               /* ... or after this long (100,000 creates: 770 commits, not 1,700 at 30 ms) */
#define STEP_RETRY_MAX 10          /* attempts of a retryable step in one pass */
#define PASS_BACKOFF_BASE_MS 1000
#define PASS_BACKOFF_CAP_MS 300000
#define BUSY_RETRY_MS 5000
#define DISCOVER_RETRY_MS 5000
#define SUBS_BUF 64

enum sx_state {
	SX_WAIT,        /* not issued yet */
	SX_INFLIGHT,
	SX_RETRY,       /* waiting for its backoff */
	SX_OK,
	SX_FAIL,
	SX_SKIP,        /* blocked: its create failed */
};

int64_t rint_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_ms(const struct rint *ri)
{
	return uv_now(ri->g->loop);
}

static uint64_t rnd64(void)
{
	static uint64_t x = 0;

	if (!x)
		x = uv_hrtime() | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* ---- database jobs (one at a time per integration, on the threadpool) --- */

static void job_kick(struct rint *ri);

static void on_job_work(uv_work_t *w)
{
	struct dbjob *j = w->data;

	j->work(j);
}

static void on_job_after(uv_work_t *w, int status)
{
	struct dbjob *j = w->data;
	struct rint *ri = j->ri;

	ri->job_running = false;
	if (!ri->g->closing && j->after)
		j->after(j);
	if (j->b)
		rint_batch_free(j->b);
	x_free(j->ids);
	x_free(j->page);
	x_free(j->results_json);
	x_free(j->message);
	x_free(j);
	if (ri->g->closing) {
		while (ri->jq) {
			struct dbjob *n = ri->jq->next;

			if (ri->jq->b)
				rint_batch_free(ri->jq->b);
			x_free(ri->jq->ids);
			x_free(ri->jq->page);
			x_free(ri->jq->results_json);
			x_free(ri->jq->message);
			x_free(ri->jq);
			ri->jq = n;
		}
		ri->jq_tail = NULL;
		rint_maybe_free(ri);
		return;
	}
	job_kick(ri);
}

static void job_kick(struct rint *ri)
{
	struct dbjob *j = ri->jq;

	if (ri->job_running || !j)
		return;
	ri->jq = j->next;
	if (!ri->jq)
		ri->jq_tail = NULL;
	j->w.data = j;
	ri->job_running = true;
	if (uv_queue_work(ri->g->loop, &j->w, on_job_work, on_job_after) < 0) {
		ri->job_running = false;
		j->status = S3G_ESHUTDOWN;
		snprintf(j->err, sizeof(j->err), "cannot queue database work");
		if (j->after)
			j->after(j);
		x_free(j->page);
		x_free(j);
	}
}

struct dbjob *rint_job(struct rint *ri, void (*work)(struct dbjob *), void (*after)(struct dbjob *))
{
	struct dbjob *j = x_calloc(1, sizeof(*j));

	j->ri = ri;
	j->work = work;
	j->after = after;
	return j;
}

void rint_submit(struct rint *ri, struct dbjob *j)
{
	if (ri->jq_tail)
		ri->jq_tail->next = j;
	else
		ri->jq = j;
	ri->jq_tail = j;
	job_kick(ri);
}

/* Worker side: the integration's connection. */
static void conn_drop(struct rint *ri)
{
	if (ri->conn)
		PQfinish(ri->conn);
	ri->conn = NULL;
	ri->locked = false;
}

static int conn_ensure(struct dbjob *j)
{
	struct rint *ri = j->ri;
	PGresult *res;

	if (ri->conn && PQstatus(ri->conn) == CONNECTION_OK)
		return 0;
	conn_drop(ri);
	ri->conn = PQconnectdb(ri->g->conninfo);
	if (PQstatus(ri->conn) != CONNECTION_OK) {
		snprintf(j->err, sizeof(j->err), "database: %s", PQerrorMessage(ri->conn));
		conn_drop(ri);
		return S3G_EPGCONN;
	}
	res = PQexec(ri->conn, "SELECT set_config('application_name', 's3grantd-recon', false)");
	PQclear(res);
	return 0;
}

void rint_pg_fail(struct dbjob *j, int r, const struct pgerr *pe)
{
	struct rint *ri = j->ri;

	j->status = r;
	snprintf(j->err, sizeof(j->err), "database: %.480s", pe && pe->message[0] ? pe->message : err_str(r));
	for (char *p = j->err; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (ri->conn && PQstatus(ri->conn) != CONNECTION_OK)
		conn_drop(ri);
}

/* Connect, take the writer lock. 0, S3G_EPGCONN or -EBUSY (another writer). */
int rint_conn_locked(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct pgerr pe;
	bool got = false;
	int r;

	if ((r = conn_ensure(j)) < 0) {
		j->status = r;
		return r;
	}
	if (ri->locked)
		return 0;
	pgerr_clear(&pe);
	r = recon_lock_try(ri->conn, ri->iid, &got, &pe);
	if (r < 0) {
		rint_pg_fail(j, r, &pe);
		return r;
	}
	if (!got) {
		j->status = -EBUSY;
		snprintf(j->err, sizeof(j->err), "another daemon is the writer");
		return -EBUSY;
	}
	ri->locked = true;
	return 0;
}

/* ---- results batch ------------------------------------------------------ */

static void *own(struct cbatch *b, void *p)
{
	if (b->nowned == b->owned_cap) {
		b->owned_cap = b->owned_cap ? 2 * b->owned_cap : 64;
		b->owned = x_realloc(b->owned, b->owned_cap * sizeof(*b->owned));
	}
	b->owned[b->nowned++] = p;
	return p;
}

const char *rint_batch_str(struct cbatch *b, const char *s)
{
	return s ? own(b, x_strdup(s)) : NULL;
}

#define GROW(v, n, cap) \
	do { \
		if ((n) == (cap)) { \
			(cap) = (cap) ? 2 * (cap) : 64; \
			(v) = x_realloc((v), (cap) * sizeof(*(v))); \
		} \
	} while (0)

void rint_batch_free(struct cbatch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nowned; i++)
		x_free(b->owned[i]);
	x_free(b->owned);
	x_free(b->created);
	x_free(b->deleted);
	x_free(b->drop);
	x_free(b->audit);
	x_free(b->subs);
	x_free(b);
}

size_t rint_batch_size(const struct cbatch *b)
{
	return b ? b->ncreated + b->ndeleted + b->ndrop + b->naudit + b->nsubs : 0;
}

static struct cbatch *cur_batch(struct rint *ri)
{
	if (!ri->batch)
		ri->batch = x_calloc(1, sizeof(*ri->batch));
	return ri->batch;
}

void rint_add_created(struct rint *ri, const struct grant *g, int64_t created_ms, const int64_t *subs,
		      size_t nsubs)
{
	struct cbatch *b = cur_batch(ri);
	int64_t *sv = NULL;

	if (nsubs) {
		sv = own(b, x_malloc(nsubs * sizeof(*sv)));
		memcpy(sv, subs, nsubs * sizeof(*sv));
	}
	GROW(b->created, b->ncreated, b->ccap);
	b->created[b->ncreated++] = (struct recon_created){ .g = g, .created_ms = created_ms, .subs = sv,
							    .nsubs = nsubs };
}

void rint_add_deleted(struct rint *ri, const char *grant_id)
{
	struct cbatch *b = cur_batch(ri);

	GROW(b->deleted, b->ndeleted, b->dcap);
	b->deleted[b->ndeleted++] = grant_id;
}

void rint_add_drop(struct rint *ri, int64_t intent_id)
{
	struct cbatch *b = cur_batch(ri);

	GROW(b->drop, b->ndrop, b->dropcap);
	b->drop[b->ndrop++] = intent_id;
}

void rint_add_audit(struct rint *ri, enum recon_op op, const struct grant *g, const char *reason,
		    const char *request_id)
{
	struct cbatch *b = cur_batch(ri);
	const char *scope = g->grant_scope;

	if (!scope)
		scope = own(b, grant_expected_scope(ri->in.integ.d.location_scope, g->sub_prefix));
	GROW(b->audit, b->naudit, b->acap);
	b->audit[b->naudit++] = (struct recon_audit){
		.op = op, .grant_id = g->grant_id, .grant_arn = g->grant_arn, .principal = g->grantee_id,
		.prefix = scope, .permission = grant_perm_name(g->permission),
		.reason = rint_batch_str(b, reason), .request_id = rint_batch_str(b, request_id),
	};
}

static void add_sub(struct rint *ri, int64_t id, enum recon_sub_state st, const char *error)
{
	struct cbatch *b = cur_batch(ri);

	GROW(b->subs, b->nsubs, b->scap);
	b->subs[b->nsubs++] = (struct recon_sub_status){ .id = id, .state = st, .error = rint_batch_str(b, error) };
}

static void commit_work(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct cbatch *b = j->b;
	struct recon_batch rb = {
		.created = b->created, .ncreated = b->ncreated,
		.deleted = b->deleted, .ndeleted = b->ndeleted,
		.drop_intents = b->drop, .ndrop_intents = b->ndrop,
		.audit = b->audit, .naudit = b->naudit,
		.subs = b->subs, .nsubs = b->nsubs,
	};
	struct pgerr pe;
	int r;

	if (rint_conn_locked(j) < 0)
		return;
	pgerr_clear(&pe);
	if (rint_batch_size(b)) {
		r = recon_batch_commit(ri->conn, ri->iid, &rb, &pe);
		if (r < 0) {
			rint_pg_fail(j, r, &pe);
			return;
		}
	}
	if (b->has_health) {
		r = recon_health_set(ri->conn, ri->iid, &b->health, &pe);
		if (r < 0)
			rint_pg_fail(j, r, &pe);
	}
}

static void commit_after(struct dbjob *j)
{
	struct rint *ri = j->ri;

	ri->commits_running--;
	if (j->status < 0) {
		ri->pass_failed = true;
		rint_set_error(ri, j->err);
	}
	if (j->then)
		j->then(ri);
	else if (!ri->commits_running && rint_batch_size(ri->batch))
		rint_flush(ri, NULL);   /* results held back while this commit ran */
}

/* Hand the current batch to a commit job; then(ri) runs after it. */
void rint_flush(struct rint *ri, void (*then)(struct rint *))
{
	struct dbjob *j = rint_job(ri, commit_work, commit_after);

	uv_timer_stop(&ri->flush_timer);
	j->b = ri->batch ? ri->batch : x_calloc(1, sizeof(*j->b));
	ri->batch = NULL;
	j->then = then;
	ri->commits_running++;
	rint_submit(ri, j);
}

/* While a commit is queued or running, results gather in the current batch
 * and go as one commit when it ends (commit_after): one transaction per
 * round trip instead of a queue of small ones Postgres falls behind on —
 * that backlog of batches was the peak of RSS in a 100,000-grant create. */
static void on_flush_timer(uv_timer_t *t)
{
	struct rint *ri = t->data;

	if (rint_batch_size(ri->batch) && !ri->commits_running)
		rint_flush(ri, NULL);
}

static void maybe_flush(struct rint *ri)
{
	size_t n = rint_batch_size(ri->batch);

	if (ri->commits_running)
		return;
	if (n >= FLUSH_N)
		rint_flush(ri, NULL);
	else if (n && !uv_is_active((uv_handle_t *)&ri->flush_timer))
		uv_timer_start(&ri->flush_timer, on_flush_timer, FLUSH_MS, 0);
}

void rint_set_error(struct rint *ri, const char *err)
{
	x_free(ri->pass_error);
	ri->pass_error = x_strdup(err);
}

/* ---- integrations ------------------------------------------------------- */

static void pass_start(struct rint *ri);
static void rint_unlink(struct rint *ri);
static void on_pass_timer(uv_timer_t *t);
static void on_step_timer(uv_timer_t *t);

static void on_rint_closed(uv_handle_t *h)
{
	struct rint *ri = h->data;
	struct rglue *g = ri->g;

	if (--ri->pending_closes)
		return;
	conn_drop(ri);
	rint_unlink(ri);
	x_free(ri->pass_error);
	x_free(ri->pending.v);
	x_free(ri->inpass.v);
	x_free(ri->skeys);
	x_free(ri);
	recond_maybe_free_glue(g);
}

static void glue_aws_gone(struct rglue *g);

static void on_rint_aws_closed(struct raws *a, void *user)
{
	struct rint *ri = user;

	raws_free(a);
	ri->aws = NULL;
	ri->aws_closing = false;
	glue_aws_gone(ri->g);
	rint_maybe_free(ri);
}

/* Cancel its calls (their callbacks see g->closing or ri->dead), close the
 * client and the provider; rint_maybe_free runs again after. */
static void rint_aws_close(struct rint *ri)
{
	if (!ri->aws || ri->aws_closing)
		return;
	ri->aws_closing = true;
	raws_close(ri->aws, on_rint_aws_closed, ri);
}

static void on_retired_aws_closed(struct raws *a, void *user)
{
	raws_free(a);
	glue_aws_gone(user);
}

/* A provider replaced (auth config changed, SIGHUP) or no longer needed
 * (deleted, disabled, createError, editError): closed now when idle, else
 * at the next pass. */
void rint_aws_retire(struct rint *ri)
{
	struct raws *a = ri->aws;

	if (!a || ri->aws_closing)
		return;
	if (raws_in_flight(a)) {
		ri->aws_stale = true;
		return;
	}
	ri->aws = NULL;
	ri->aws_stale = false;
	raws_close(a, on_retired_aws_closed, ri->g);
}

void rint_maybe_free(struct rint *ri)
{
	if (!(ri->g->closing || ri->dead) || ri->job_running || ri->freeing)
		return;
	if (ri->aws) {
		rint_aws_close(ri);
		return;
	}
	ri->freeing = true;
	rint_pass_clear(ri);
	rint_batch_free(ri->batch);
	ri->batch = NULL;
	ri->pending_closes = 3;
	uv_close((uv_handle_t *)&ri->pass_timer, on_rint_closed);
	uv_close((uv_handle_t *)&ri->step_timer, on_rint_closed);
	uv_close((uv_handle_t *)&ri->flush_timer, on_rint_closed);
}

static struct rint *rint_get(struct rglue *g, int64_t iid)
{
	struct rint *ri;

	for (ri = g->ints; ri; ri = ri->next)
		if (ri->iid == iid)
			return ri;
	ri = x_calloc(1, sizeof(*ri));
	ri->g = g;
	ri->iid = iid;
	ri->want_resync = true;
	ri->instance_grants = -1;
	uv_timer_init(g->loop, &ri->pass_timer);
	uv_timer_init(g->loop, &ri->step_timer);
	uv_timer_init(g->loop, &ri->flush_timer);
	ri->pass_timer.data = ri->step_timer.data = ri->flush_timer.data = ri;
	ri->next = g->ints;
	g->ints = ri;
	return ri;
}

static void item_push(struct ritems *l, struct watch_item *it)
{
	GROW(l->v, l->n, l->cap);
	l->v[l->n++] = it;
}

static uint64_t resync_delay(const struct rglue *g)
{
	uint64_t iv = (uint64_t)config_int(g->d->cfg, CONFIG_RECONCILE_RESYNC_INTERVAL);
	uint64_t jit = (uint64_t)config_int(g->d->cfg, CONFIG_RECONCILE_RESYNC_JITTER);

	return iv + (jit ? rnd64() % (jit + 1) : 0);
}

/* Arm the pass timer for the earliest of: the resync, a retry. */
static void arm_pass_timer(struct rint *ri)
{
	uint64_t now = now_ms(ri), at = ri->resync_at;

	if (ri->retry_at && (!at || ri->retry_at < at))
		at = ri->retry_at;
	if (!at)
		return;
	uv_timer_start(&ri->pass_timer, on_pass_timer, at > now ? at - now : 0, 0);
}

static void on_pass_timer(uv_timer_t *t)
{
	struct rint *ri = t->data;
	uint64_t now = now_ms(ri);

	if (ri->resync_at && ri->resync_at <= now) {
		ri->want_resync = true;
		ri->resync_at = 0;
	}
	if (ri->retry_at && ri->retry_at <= now)
		ri->retry_at = 0;
	ri->want_pass = true;
	pass_start(ri);
	arm_pass_timer(ri);
}

/* ---- the pass ------------------------------------------------------------ */

void rint_pass_clear(struct rint *ri)
{
	if (ri->have_plan) {
		plan_free(&ri->plan);
		diff_free(&ri->diff);
		desired_free(&ri->set);
		ri->have_plan = false;
	}
	x_free(ri->sx);
	ri->sx = NULL;
	x_free(ri->cstep);
	ri->cstep = NULL;
	x_free(ri->intent_ids);
	ri->intent_ids = NULL;
	x_free(ri->was_recorded);
	ri->was_recorded = NULL;
	x_free(ri->rq);
	ri->rq = NULL;
	ri->nrq = ri->rq_cap = ri->rq_head = 0;
	x_free(ri->retry);
	ri->retry = NULL;
	ri->nretry = ri->retry_cap = 0;
	x_free(ri->prev_ids);
	ri->prev_ids = NULL;
	ri->nprev_ids = 0;
	ri->nlisted = 0;
	x_free(ri->next_token);
	ri->next_token = NULL;
	recon_intents_free(&ri->intents);
	recon_grants_free(&ri->act);
	if (ri->have_in) {
		recon_inputs_free(&ri->in);
		ri->have_in = false;
	}
	lifecycle_clear(ri);
	ri->exec_done = false;
	ri->inflight = 0;
	ri->terminal_errors = 0;
	if (ri->have_pool) {
		intern_free(&ri->pool);
		ri->have_pool = false;
	}
	ri->exec_active = false;
	ri->total = ri->done = 0;
	rscope_clear(ri);
}

static void load_work(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct pgerr pe;
	int r;

	if ((r = conn_ensure(j)) < 0) {
		j->status = r;
		return;
	}
	if (ri->scope_try && rscope_load(j) != 0)
		return;   /* scoped, or failed */
	rscope_seen(j);
	pgerr_clear(&pe);
	r = recon_inputs_load(ri->conn, ri->iid, ri->g->have_key ? &ri->g->key : NULL, &ri->in, &pe);
	if (r == S3G_ENOTFOUND) {
		j->status = r;
		return;
	}
	if (r < 0) {
		rint_pg_fail(j, r, &pe);
		return;
	}
	ri->have_in = true;
	switch (ri->in.integ.status) {
	case RECON_DELETED:
	case RECON_DISABLED:
	case RECON_CREATE_ERROR:
	case RECON_EDIT_ERROR:
		return;   /* nothing to write: no lock needed */
	default:
		break;
	}
	if (rint_conn_locked(j) < 0)
		return;
	intern_init(&ri->pool);
	ri->have_pool = true;
	r = recon_grants_load(ri->conn, ri->iid, &ri->pool, &ri->act, &pe);
	if (r == 0)
		r = recon_intents_load(ri->conn, ri->iid, &ri->pool, &ri->intents, &pe);
	if (r < 0)
		rint_pg_fail(j, r, &pe);
}

static void pass_end(struct rint *ri);

static void load_after(struct dbjob *j)
{
	struct rint *ri = j->ri;

	if (j->status == S3G_ENOTFOUND) {
		ri->gone = true;
		pass_end(ri);
		return;
	}
	if (j->status == -EBUSY) {
		ri->busy = true;
		pass_end(ri);
		return;
	}
	if (j->status < 0) {
		ri->pass_failed = true;
		rint_set_error(ri, j->err);
		pass_end(ri);
		return;
	}
	ri->busy = false;
	switch (ri->in.integ.status) {
	case RECON_ENABLED:
	case RECON_RECURRING_VALIDATION_ERROR:
		if (ri->g->stopping) {
			ri->pass_failed = true;   /* release its keys for the next daemon */
			rint_set_error(ri, "stopping");
			pass_end(ri);
			return;
		}
		if (lifecycle_revalidate_due(ri)) {
			lifecycle_validate(ri);
			return;
		}
		rint_reconcile(ri);
		return;
	case RECON_CREATING:
	case RECON_EDITING:
		lifecycle_validate(ri);
		return;
	case RECON_DELETING:
	case RECON_DELETE_ERROR:
		ri->deleting = true;
		rint_reconcile(ri);
		return;
	default:
		rint_aws_retire(ri);   /* deleted, disabled, createError, editError */
		pass_end(ri);
		return;
	}
}

static void pass_start(struct rint *ri)
{
	struct rglue *g = ri->g;

	if (ri->in_pass || !ri->want_pass || g->closing || ri->freeing)
		return;
	if (g->stopping) {
		/* Draining: only to finish keys claimed before the stop (cheap
		 * passes finish; a reconcile stops issuing calls and releases). */
		if (!ri->pending.n)
			return;
		g->d->in_flight++;
	} else {
		if (ri->retry_at && ri->retry_at > now_ms(ri) && !ri->want_resync_now)
			return;   /* backing off; the pass timer restarts it */
		if (daemon_work_begin(g->d) < 0)
			return;
	}
	ri->in_pass = true;
	ri->want_pass = false;
	ri->want_resync_now = false;
	ri->pass_failed = false;
	ri->gone = false;
	ri->deleting = false;
	X_FREE(ri->pass_error);
	/* The keys claimed so far are this pass's. */
	for (size_t i = 0; i < ri->pending.n; i++)
		item_push(&ri->inpass, ri->pending.v[i]);
	ri->pending.n = 0;
	ri->pass_resync = ri->want_resync;
	ri->want_resync = false;
	ri->pass_started_ms = now_ms(ri);
	rscope_begin(ri);
	rint_submit(ri, rint_job(ri, load_work, load_after));
}

static int release_delay(struct rint *ri)
{
	uint64_t d = PASS_BACKOFF_BASE_MS;

	for (unsigned i = 1; i < ri->fails && d < PASS_BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > PASS_BACKOFF_CAP_MS)
		d = PASS_BACKOFF_CAP_MS;
	return (int)(d / 2 + rnd64() % (d / 2 + 1));
}

static void give_back_items(struct rint *ri, bool ok, int delay)
{
	struct watch *w = ri->g->w;

	for (size_t i = 0; i < ri->inpass.n; i++) {
		if (!w)
			break;
		if (ok)
			watch_ack(w, ri->inpass.v[i]);
		else
			watch_release(w, ri->inpass.v[i], delay);
	}
	ri->inpass.n = 0;
}

static void rint_unlink(struct rint *ri)
{
	struct rint **pp;

	for (pp = &ri->g->ints; *pp; pp = &(*pp)->next)
		if (*pp == ri) {
			*pp = ri->next;
			break;
		}
}

static void pass_end(struct rint *ri)
{
	struct rglue *g = ri->g;
	bool ok = !ri->pass_failed && !ri->busy;
	int delay = 0;

	if (ri->pass_failed) {
		char n[24], dl[24];

		ri->fails++;
		delay = release_delay(ri);
		ri->retry_at = now_ms(ri) + (uint64_t)delay;
		if (g->stopping) {
			delay = 0;
			log_debug(LOG_MID_RECON_FAILED, LOG_FIELDS({ "error", ri->pass_error }),
				  "reconcile stopped by the drain");
		} else {
			log_warning(LOG_MID_RECON_FAILED,
				    LOG_FIELDS({ "integration", log_int(n, sizeof(n), ri->iid) },
					       { "error", ri->pass_error ? ri->pass_error : "" },
					       { "retry_ms", log_int(dl, sizeof(dl), delay) }),
				    "reconcile failed; retrying");
		}
		ri->want_pass = true;
		if (ri->pass_resync)
			ri->want_resync = true;
	} else if (ri->busy) {
		delay = BUSY_RETRY_MS;
		ri->retry_at = now_ms(ri) + BUSY_RETRY_MS;
		ri->want_pass = true;
		ri->want_resync = true;
	} else {
		ri->fails = 0;
		ri->retry_at = 0;
	}
	if (!ri->busy && !ri->pass_failed && ri->pass_resync)
		ri->resync_at = now_ms(ri) + resync_delay(g);
	give_back_items(ri, ok || ri->gone, delay);
	rint_pass_clear(ri);
	ri->in_pass = false;
	if (ri->pending.n)
		ri->want_pass = true;
	daemon_work_end(g->d);
	if (g->closing)
		return;
	if (ri->gone) {
		/* The row is gone (DELETE FROM integrations): forget it. */
		for (size_t i = 0; i < ri->pending.n; i++)
			if (g->w)
				watch_ack(g->w, ri->pending.v[i]);
		ri->pending.n = 0;
		ri->dead = true;
		rint_unlink(ri);
		rint_maybe_free(ri);
		return;
	}
	if (g->stopping) {
		for (size_t i = 0; i < ri->pending.n; i++)
			if (g->w)
				watch_release(g->w, ri->pending.v[i], 0);
		ri->pending.n = 0;
		return;
	}
	arm_pass_timer(ri);
	pass_start(ri);
}

static bool batch_pending(const struct rint *ri)
{
	return rint_batch_size(ri->batch) || (ri->batch && ri->batch->has_health);
}

void rint_pass_done(struct rint *ri)
{
	if (batch_pending(ri) || ri->commits_running) {
		rint_flush(ri, rint_pass_done_flushed);
		return;
	}
	pass_end(ri);
}

void rint_pass_done_flushed(struct rint *ri)
{
	if (ri->commits_running || batch_pending(ri)) {
		if (!ri->commits_running)
			rint_flush(ri, rint_pass_done_flushed);
		return;   /* the last commit's then() comes back here */
	}
	pass_end(ri);
}

/* ---- listing (resync) ---------------------------------------------------- */

static void list_page(struct rint *ri);
static void plan_phase(struct rint *ri);

/* One listed page into the session's listing table; the page is freed
 * with the job. */
static void page_work(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct recon_listed *lv;
	struct pgerr pe;
	int r;

	if (rint_conn_locked(j) < 0)
		return;
	lv = x_calloc(j->npage ? j->npage : 1, sizeof(*lv));
	for (size_t i = 0; i < j->npage; i++)
		lv[i] = (struct recon_listed){ .g = &j->page[i].g, .created_ms = j->page[i].created_ms };
	pgerr_clear(&pe);
	r = recon_listing_add(ri->conn, rint_location_id(ri), lv, j->npage, j->ord0, &pe);
	x_free(lv);
	if (r < 0)
		rint_pg_fail(j, r, &pe);
}

static void page_after(struct dbjob *j)
{
	struct rint *ri = j->ri;

	ri->list_jobs--;
	if (j->status < 0) {
		ri->list_failed = true;   /* read by sync_work, which runs after this */
		ri->pass_failed = true;
		rint_set_error(ri, j->err);
	}
}

static int cmp_ptr(const void *a, const void *b);

/* prev_act: keep only the grants of the old record the new one lacks
 * (vanished from AWS), which is all the plan asks of it (was a missing
 * grant recorded?): a grant id's key never changes, so a grant in both
 * records adds nothing; 100,000 kept grants were a second ~7 MB copy of
 * the record for the whole planning. Ids are interned: compared as
 * pointers. */
static void prev_keep_vanished(struct rint *ri)
{
	uint8_t *in_new = x_calloc(ri->nprev_ids ? ri->nprev_ids : 1, 1);
	size_t k = 0;

	for (size_t i = 0; i < ri->act.n; i++) {
		const char **at = bsearch(&ri->act.v[i].grant_id, ri->prev_ids, ri->nprev_ids, sizeof(*ri->prev_ids),
					  cmp_ptr);

		if (at)
			in_new[at - ri->prev_ids] = 1;
	}
	for (size_t i = 0; i < ri->prev_act.n; i++) {
		const char **at = bsearch(&ri->prev_act.v[i].grant_id, ri->prev_ids, ri->nprev_ids,
					  sizeof(*ri->prev_ids), cmp_ptr);

		if (at && in_new[at - ri->prev_ids])
			continue;
		ri->prev_act.v[k] = ri->prev_act.v[i];
		ri->prev_act.created_ms[k] = ri->prev_act.created_ms[i];
		k++;
	}
	x_free(in_new);
	ri->prev_act.n = k;
	ri->prev_act.v = x_realloc(ri->prev_act.v, (k + 1) * sizeof(*ri->prev_act.v));
	ri->prev_act.created_ms = x_realloc(ri->prev_act.created_ms, (k + 1) * sizeof(*ri->prev_act.created_ms));
}

static void sync_work(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct recon_sync_result sr;
	struct pgerr pe;
	int r;

	if (ri->list_failed) {
		j->status = S3G_ECONFLICT;
		snprintf(j->err, sizeof(j->err), "a page of the listing was not recorded");
		return;
	}
	if (rint_conn_locked(j) < 0)
		return;
	pgerr_clear(&pe);
	r = recon_listing_sync(ri->conn, ri->iid, rint_location_id(ri), j->npage, true, &sr, &pe);
	if (r < 0) {
		rint_pg_fail(j, r, &pe);
		return;
	}
	j->sync = sr;
	/* The record before the listing: which grants did s3grantd know? */
	ri->prev_ids = x_calloc(ri->act.n ? ri->act.n : 1, sizeof(*ri->prev_ids));
	ri->nprev_ids = ri->act.n;
	for (size_t i = 0; i < ri->act.n; i++)
		ri->prev_ids[i] = ri->act.v[i].grant_id;
	qsort(ri->prev_ids, ri->nprev_ids, sizeof(*ri->prev_ids), cmp_ptr);
	ri->prev_act = ri->act;
	memset(&ri->act, 0, sizeof(ri->act));
	r = recon_grants_load(ri->conn, ri->iid, &ri->pool, &ri->act, &pe);
	if (r < 0) {
		rint_pg_fail(j, r, &pe);
		return;
	}
	prev_keep_vanished(ri);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const char *const *)a, y = (uintptr_t)*(const char *const *)b;

	return x < y ? -1 : x > y;
}

static void sync_after(struct dbjob *j)
{
	struct rint *ri = j->ri;

	if (j->status < 0) {
		recon_grants_free(&ri->prev_act);
		ri->pass_failed = true;
		rint_set_error(ri, j->err);
		rint_pass_done(ri);
		return;
	}
	ri->synced = true;
	if (j->sync.inserted || j->sync.removed) {
		char n[24], a[24], rm[24];

		log_info(NULL, LOG_FIELDS({ "integration", log_int(n, sizeof(n), ri->iid) },
					  { "unrecorded", log_int(a, sizeof(a), (long long)j->sync.inserted) },
					  { "vanished", log_int(rm, sizeof(rm), (long long)j->sync.removed) }),
			 "resync: AWS differs from the record");
	}
	plan_phase(ri);
}

/* The listing stops short: the pass ends once the page jobs queued so far
 * are done (their grants' strings live in the pass's pool). */
static void list_stop(struct rint *ri)
{
	if (ri->list_jobs)
		rint_flush(ri, rint_pass_done_flushed);
	else
		rint_pass_done(ri);
}

static void on_list_page(const struct raws_result *res, void *out, void *user)
{
	struct rint *ri = user;
	struct shapes_grant_list *l = out;
	const char *loc = rint_location_id(ri);
	struct dbjob *j;

	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	if (res->status < 0) {
		enum plan_class c = plan_classify(PLAN_DELETE, (int)res->http_code, res->code, res->message, 0, 0, 0);

		ri->list_fails++;
		if (res->status == S3G_ECREDS) {
			/* No credentials (AssumeRole refused, chain empty): the pass
			 * backoff retries; say why on the integration. */
			ri->pass_failed = true;
			rint_set_error(ri, res->error);
			rint_health_error(ri, res->error);
			list_stop(ri);
			return;
		}
		if ((c == PLAN_CLASS_RETRY) && ri->list_fails < STEP_RETRY_MAX && !ri->g->stopping) {
			uint64_t d = 100u << (ri->list_fails < 8 ? ri->list_fails : 8);

			ri->list_retry = true;
			uv_timer_start(&ri->step_timer, on_step_timer, d / 2 + rnd64() % (d / 2 + 1), 0);
			return;
		}
		ri->pass_failed = true;
		rint_set_error(ri, res->error);
		list_stop(ri);
		return;
	}
	ri->list_fails = 0;
	/* The page goes to the database now (one job per page, the first one
	 * even when empty: it empties the listing table), not into a list of
	 * the whole listing (100,000 grants: ~9 MB). */
	j = rint_job(ri, page_work, page_after);
	j->page = x_calloc(l->n ? l->n : 1, sizeof(*j->page));
	j->ord0 = ri->nlisted;
	for (size_t i = 0; i < l->n; i++) {
		const struct shapes_grant *s = &l->items[i];
		struct rlisted *x = &j->page[j->npage];

		ri->list_total++;
		if (!s->location_id || strcmp(s->location_id, loc) != 0)
			continue;
		if (grant_make(&ri->pool, s->grantee_type, s->grantee_id, s->permission, s->location_id,
			       s->sub_prefix, s->id, s->arn, s->grant_scope, &x->g) < 0)
			continue;   /* a kind we do not know: not ours to judge */
		grant_set_hash(&x->g);
		x->created_ms = s->created_at_ms;
		j->npage++;
	}
	ri->nlisted += j->npage;
	if (j->npage || j->ord0 == 0) {
		ri->list_jobs++;
		rint_submit(ri, j);
	} else {
		x_free(j->page);
		x_free(j);
	}
	x_free(ri->next_token);
	ri->next_token = l->next_token ? x_strdup(l->next_token) : NULL;
	if (ri->next_token) {
		list_page(ri);
		return;
	}
	ri->instance_grants = (int64_t)ri->list_total;
	j = rint_job(ri, sync_work, sync_after);
	j->npage = ri->nlisted;   /* the grants the pages sent */
	rint_submit(ri, j);
}

static void list_page(struct rint *ri)
{
	raws_list_grants(ri->aws, ri->next_token, on_list_page, ri);
}

const char *rint_location_id(const struct rint *ri)
{
	const char *l = ri->in.integ.d.location_id;

	return l && *l ? l : "default";
}

int rint_make_aws(struct rint *ri)
{
	const struct config *cfg = ri->g->d->cfg;
	const struct recon_integration *it = &ri->in.integ;
	struct raws_opts o = {
		.loop = ri->g->loop,
		.http = ri->g->http,
		.account = it->d.account,
		.region = it->d.region,
		.s3control_url = config_str(cfg, CONFIG_AWS_ENDPOINT_URL_S3_CONTROL),
		.sts_url = config_str(cfg, CONFIG_AWS_ENDPOINT_URL_STS),
		.s3_url = config_str(cfg, CONFIG_AWS_ENDPOINT_URL_S3),
		.timeout_ms = (uint64_t)config_int(cfg, CONFIG_AWS_REQUEST_TIMEOUT),
		.role_arn = it->role_to_assume,
		.external_id = it->external_id,
		.session_name = it->role_session_name,
	};
	char fp[RAWS_FINGERPRINT_SIZE], session[64], n[24];
	const char *why = NULL;
	int r;

	if (!*o.s3control_url)
		o.s3control_url = config_str(cfg, CONFIG_AWS_ENDPOINT_URL);
	if (!o.session_name || !*o.session_name) {
		snprintf(session, sizeof(session), "s3grantd-integration-%lld", (long long)ri->iid);
		o.session_name = session;
	}
	if (it->auth == RECON_AUTH_ACCESS_KEY) {
		if (!it->secret_access_key) {
			const char *m = it->has_secret ? "authenticationType accessKey: the secret access key does not open "
							 "with the daemon's secrets key"
						       : "authenticationType accessKey: no secret access key stored";

			rint_set_error(ri, m);
			rint_aws_retire(ri);
			return S3G_ECREDS;
		}
		o.auth = RAWS_AUTH_STATIC;
		o.access_key_id = it->access_key_id;
		o.secret_access_key = it->secret_access_key;
	} else if (*config_str(cfg, CONFIG_AWS_ACCESS_KEY_ID)) {
		o.auth = RAWS_AUTH_STATIC;     /* auto: the daemon's own key from [aws] */
		o.access_key_id = config_str(cfg, CONFIG_AWS_ACCESS_KEY_ID);
		o.secret_access_key = config_str(cfg, CONFIG_AWS_SECRET_ACCESS_KEY);
	} else {
		o.auth = RAWS_AUTH_DEFAULT;    /* auto: the AWS default chain */
	}
	raws_opts_fingerprint(&o, fp);
	if (ri->aws && !ri->aws_stale && strcmp(fp, ri->aws_fp) == 0)
		return 0;
	if (ri->aws && raws_in_flight(ri->aws))
		return 0;   /* cannot happen between passes; keep the old one rather than cut calls */
	rint_aws_retire(ri);
	ri->aws_stale = false;
	r = raws_new(&o, &ri->aws, &why);
	if (r < 0) {
		char *m = x_asprintf("authenticationType %s%s: %s", recon_auth_name(it->auth),
				     o.role_arn && *o.role_arn ? " + awsRoleToAssume" : "", why ? why : err_str(r));

		rint_set_error(ri, m);
		x_free(m);
		ri->aws = NULL;
		return S3G_ECREDS;
	}
	ri->g->aws_open++;
	memcpy(ri->aws_fp, fp, sizeof(fp));
	log_info(NULL, LOG_FIELDS({ "integration", log_int(n, sizeof(n), ri->iid) },
				  { "credentials", raws_auth_label(ri->aws) },
				  { "role", o.role_arn && *o.role_arn ? o.role_arn : NULL }),
		 "AWS credentials set up for the integration");
	return 0;
}

void rint_health_error(struct rint *ri, const char *err)
{
	struct cbatch *b = cur_batch(ri);

	if (!b->has_health) {
		b->has_health = true;
		b->health = recon_health_keep();
	}
	b->health.last_error = rint_batch_str(b, err ? err : "");
}

void rint_reconcile(struct rint *ri)
{
	if (rint_make_aws(ri) < 0) {
		ri->pass_failed = true;
		rint_health_error(ri, ri->pass_error);
		rint_pass_done(ri);
		return;
	}
	if (!ri->in.integ.d.location_id && strcmp(ri->in.integ.d.location_scope, "s3://") != 0) {
		if (ri->deleting) {
			lifecycle_deleted(ri);
			return;
		}
		ri->pass_failed = true;
		rint_set_error(ri, "the integration's location is not registered");
		rint_pass_done(ri);
		return;
	}
	ri->synced = false;
	if (ri->pass_resync || ri->deleting) {
		ri->list_total = 0;
		ri->list_fails = 0;
		ri->nlisted = 0;
		ri->list_failed = false;
		list_page(ri);
		return;
	}
	plan_phase(ri);
}

/* ---- planning ------------------------------------------------------------ */

static bool prev_recorded(const struct rint *ri, const char *grant_id)
{
	if (!ri->synced)
		return true;
	return bsearch(&grant_id, ri->prev_ids, ri->nprev_ids, sizeof(*ri->prev_ids), cmp_ptr) != NULL;
}

static void intents_work(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct recon_intent_in *v;
	int64_t subs[SUBS_BUF];
	int64_t *all;
	size_t n = j->ito - j->ifrom, nall = 0, cap = 0;
	struct pgerr pe;
	int r;

	if (rint_conn_locked(j) < 0)
		return;
	v = x_calloc(n ? n : 1, sizeof(*v));
	all = NULL;
	/* subscription ids: one flat array, slices per intent */
	for (size_t k = 0; k < n; k++) {
		const struct plan_step *s = &ri->plan.steps[j->ifrom + k];
		size_t m = desired_subscriptions(&ri->set, s->ref, subs, SUBS_BUF);

		if (m > SUBS_BUF)
			m = SUBS_BUF;
		if (nall + m > cap) {
			cap = (nall + m) * 2 + 64;
			all = x_realloc(all, cap * sizeof(*all));
		}
		memcpy(all + nall, subs, m * sizeof(*subs));
		v[k].nsubs = m;
		nall += m;
	}
	nall = 0;
	for (size_t k = 0; k < n; k++) {
		v[k].g = &ri->set.v[ri->plan.steps[j->ifrom + k].ref].g;
		v[k].subs = all + nall;
		nall += v[k].nsubs;
	}
	j->ids = x_calloc(n ? n : 1, sizeof(*j->ids));
	pgerr_clear(&pe);
	r = recon_intents_add(ri->conn, ri->iid, v, n, j->ids, &pe);
	x_free(v);
	x_free(all);
	if (r < 0)
		rint_pg_fail(j, r, &pe);
}

static void pump(struct rint *ri);
static void exec_maybe_done(struct rint *ri);

static void intents_after(struct dbjob *j)
{
	struct rint *ri = j->ri;

	if (j->status < 0) {
		/* No intent, no create: those steps fail this pass. */
		for (size_t i = j->ifrom; i < j->ito; i++) {
			ri->sx[i].st = SX_FAIL;
			ri->sx[i].fail = F_TRANSIENT;
			ri->done++;
		}
		ri->pass_failed = true;
		rint_set_error(ri, j->err);
	} else {
		for (size_t i = j->ifrom; i < j->ito; i++)
			ri->intent_ids[i] = j->ids[i - j->ifrom];
	}
	ri->intent_upto = j->ito;
	pump(ri);
	exec_maybe_done(ri);
}

/* Intents matching a grant that exists are adopted (recorded as created,
 * which resolves the intent); intents nobody wants any more are dropped.
 * An intent matches a kept grant iff its canonical key finds a desired grant
 * (desired_find) that diff.keep pairs with an actual grant: one hash lookup
 * per intent, not a scan of diff.keep (28,522 intents x 100,000 kept grants
 * after a kill -9 took 11 s of CPU). */
static void adopt_intents(struct rint *ri)
{
	uint32_t *keep_of;

	if (!ri->intents.n)
		return;
	keep_of = x_malloc((ri->set.n ? ri->set.n : 1) * sizeof(*keep_of));
	for (size_t i = 0; i < ri->set.n; i++)
		keep_of[i] = UINT32_MAX;
	for (size_t k = 0; k < ri->diff.nkeep; k++)
		keep_of[ri->diff.keep[k].desired] = (uint32_t)k;
	for (size_t i = 0; i < ri->intents.n; i++) {
		const struct recon_intent *in = &ri->intents.v[i];
		const struct diff_keep *kp;
		const struct grant *a;
		int64_t subs[SUBS_BUF];
		size_t idx, m;

		if (desired_find(&ri->set, &in->g, &idx) != 0) {
			rint_add_drop(ri, in->id);
			continue;
		}
		if (keep_of[idx] == UINT32_MAX)
			continue;   /* still wanted, not in AWS: the plan creates it */
		kp = &ri->diff.keep[keep_of[idx]];
		a = &ri->act.v[kp->actual];
		m = desired_subscriptions(&ri->set, kp->desired, subs, SUBS_BUF);
		rint_add_created(ri, a, 0, subs, m > SUBS_BUF ? SUBS_BUF : m);
		rint_add_audit(ri, RECON_OP_ADOPT, a, "intent found in AWS (created before a restart)", NULL);
	}
	x_free(keep_of);
}

/* A kept grant's record starts with the first subscription it serves now
 * (a scoped pass finds a user's grants through it, recon_scope_load): a
 * grant whose record does not is recorded again with the ones it serves. */
static void record_served(struct rint *ri)
{
	for (size_t k = 0; k < ri->diff.nkeep; k++) {
		const struct diff_keep *kp = &ri->diff.keep[k];
		const struct grant *a = &ri->act.v[kp->actual];
		int64_t subs[SUBS_BUF];
		size_t m = desired_subscriptions(&ri->set, kp->desired, subs, SUBS_BUF);

		if (a->subscription_id == subs[0])
			continue;
		rint_add_created(ri, a, ri->act.created_ms[kp->actual], subs, m > SUBS_BUF ? SUBS_BUF : m);
	}
}

static void plan_phase(struct rint *ri)
{
	const char *why = NULL;
	struct desired_integration di = ri->in.integ.d;
	size_t limit = (size_t)config_int(ri->g->d->cfg, CONFIG_RECONCILE_GRANT_QUOTA);
	size_t used, allowed;
	char n1[24], n2[24], n3[24], n4[24];
	int r;

	if (!di.location_id && strcmp(di.location_scope, "s3://") == 0)
		di.location_id = NULL;
	if (ri->in.rows_dropped) {   /* one plan per load: never plan from emptied rows */
		ri->pass_failed = true;
		rint_set_error(ri, "internal: inputs already planned");
		rint_pass_done(ri);
		return;
	}
	r = desired_build(&ri->pool, &di, ri->in.ds, ri->in.nds, ri->in.users, ri->in.nusers, ri->in.subs,
			  ri->deleting ? 0 : ri->in.nsubs, &ri->set, &why);
	/* The set interned what it needs: the rows (100,000 subscriptions:
	 * ~3.5 MB) need not live for the rest of the pass. */
	recon_inputs_drop_rows(&ri->in);
	if (r < 0) {
		ri->pass_failed = true;
		rint_set_error(ri, why ? why : err_str(r));
		rint_pass_done(ri);
		return;
	}
	if (diff_compute(&ri->set, ri->act.v, ri->act.n, &ri->diff) < 0) {
		desired_free(&ri->set);
		ri->pass_failed = true;
		rint_set_error(ri, "diff failed");
		rint_pass_done(ri);
		return;
	}
	if (plan_build(&ri->set, ri->act.v, ri->act.n, &ri->diff, &ri->plan) < 0) {
		diff_free(&ri->diff);
		desired_free(&ri->set);
		ri->pass_failed = true;
		rint_set_error(ri, "plan failed");
		rint_pass_done(ri);
		return;
	}
	ri->have_plan = true;
	used = ri->instance_grants >= 0 ? (size_t)ri->instance_grants : ri->act.n;
	if (ri->scoped && ri->instance_grants < 0)   /* act holds the scope's grants only */
		used = ri->sinfo.recorded >= 0 ? (size_t)ri->sinfo.recorded : ri->act.n;
	allowed = quota_apply(&ri->plan, used, limit);
	if (quota_level(used + allowed, limit) != QUOTA_OK) {
		log_warning(LOG_MID_QUOTA,
			    LOG_FIELDS({ "integration", log_int(n1, sizeof(n1), ri->iid) },
				       { "used", log_int(n2, sizeof(n2), (long long)used) },
				       { "limit", log_int(n3, sizeof(n3), (long long)limit) },
				       { "refused", log_int(n4, sizeof(n4), (long long)(ri->plan.ncreate - allowed)) }),
			    "Access Grants instance near or at its grant quota");
	}
	adopt_intents(ri);
	record_served(ri);
	/* Per-step state. */
	ri->sx = x_calloc(ri->plan.n ? ri->plan.n : 1, sizeof(*ri->sx));
	ri->intent_ids = x_calloc(ri->plan.ncreate ? ri->plan.ncreate : 1, sizeof(*ri->intent_ids));
	ri->cstep = x_malloc((ri->set.n ? ri->set.n : 1) * sizeof(*ri->cstep));
	for (size_t i = 0; i < ri->set.n; i++)
		ri->cstep[i] = UINT32_MAX;
	for (size_t i = 0; i < ri->plan.n; i++) {
		const struct plan_step *s = &ri->plan.steps[i];

		ri->sx[i].dep_head = UINT32_MAX;
		ri->sx[i].dep_next = UINT32_MAX;
		if (s->op == PLAN_CREATE)
			ri->cstep[s->ref] = (uint32_t)i;
		if (s->status == PLAN_QUOTA) {
			ri->sx[i].st = SX_FAIL;
			ri->sx[i].fail = F_QUOTA;
			ri->done++;
		} else if (s->status == PLAN_BLOCKED) {
			ri->sx[i].st = SX_SKIP;
			ri->done++;
		}
	}
	ri->was_recorded = x_calloc(ri->set.n ? ri->set.n : 1, 1);
	if (ri->synced)
		for (size_t i = 0; i < ri->prev_act.n; i++) {
			size_t idx;

			if (desired_find(&ri->set, &ri->prev_act.v[i], &idx) == 0)
				ri->was_recorded[idx] = 1;
		}
	recon_grants_free(&ri->prev_act);
	ri->total = ri->plan.n;
	ri->cr_next = 0;
	ri->del_next = ri->plan.ncreate;
	ri->intent_upto = 0;
	ri->exec_active = ri->plan.n > 0;
	rscope_log(ri, ri->plan.ncreate, ri->plan.n - ri->plan.ncreate);
	if (ri->plan.n) {
		log_info(NULL, LOG_FIELDS({ "integration", log_int(n1, sizeof(n1), ri->iid) },
					  { "create", log_int(n2, sizeof(n2), (long long)ri->plan.ncreate) },
					  { "delete", log_int(n3, sizeof(n3), (long long)(ri->plan.n - ri->plan.ncreate)) },
					  { "desired", log_int(n4, sizeof(n4), (long long)ri->set.n) },
					  { "pass", ri->scoped ? "scoped" : "whole" }),
			 "reconciling %zu grant change%s", ri->plan.n, ri->plan.n == 1 ? "" : "s");
		recond_progress(ri->g, true);
	}
	limit_configure(&ri->lim, (uint32_t)config_int(ri->g->d->cfg, CONFIG_RECONCILE_RATE_LIMIT),
			(uint32_t)config_int(ri->g->d->cfg, CONFIG_RECONCILE_RATE_LIMIT),
			(uint32_t)config_int(ri->g->d->cfg, CONFIG_AWS_MAX_IN_FLIGHT), now_ms(ri));
	for (size_t from = 0; from < ri->plan.ncreate; from += INTENT_CHUNK) {
		struct dbjob *j = rint_job(ri, intents_work, intents_after);

		j->ifrom = from;
		j->ito = from + INTENT_CHUNK < ri->plan.ncreate ? from + INTENT_CHUNK : ri->plan.ncreate;
		rint_submit(ri, j);
	}
	if (ri->plan.ncreate == 0)
		pump(ri);
	exec_maybe_done(ri);
}

/* ---- execution ----------------------------------------------------------- */

struct stepcall {
	struct rint *ri;
	uint32_t i;
};

static void rq_push(struct rint *ri, uint32_t i)
{
	GROW(ri->rq, ri->nrq, ri->rq_cap);
	ri->rq[ri->nrq++] = i;
}

static void step_ok(struct rint *ri, uint32_t i)
{
	ri->sx[i].st = SX_OK;
	ri->done++;
	for (uint32_t d = ri->sx[i].dep_head; d != UINT32_MAX; d = ri->sx[d].dep_next)
		rq_push(ri, d);
	ri->sx[i].dep_head = UINT32_MAX;
}

static void step_fail(struct rint *ri, uint32_t i, uint8_t why, const char *err)
{
	ri->sx[i].st = SX_FAIL;
	ri->sx[i].fail = why;
	ri->done++;
	if (why == F_TRANSIENT) {
		ri->pass_failed = true;
		rint_set_error(ri, err);
	}
	for (uint32_t d = ri->sx[i].dep_head; d != UINT32_MAX; d = ri->sx[d].dep_next) {
		ri->sx[d].st = SX_SKIP;
		ri->done++;
	}
	ri->sx[i].dep_head = UINT32_MAX;
}

static void step_retry(struct rint *ri, uint32_t i)
{
	uint64_t d = 200u << (ri->sx[i].attempts < 8 ? ri->sx[i].attempts : 8);

	ri->sx[i].st = SX_RETRY;
	ri->sx[i].next_ms = now_ms(ri) + d / 2 + rnd64() % (d / 2 + 1);
	GROW(ri->retry, ri->nretry, ri->retry_cap);
	ri->retry[ri->nretry++] = i;
}

static const char *create_reason(struct rint *ri, const struct plan_step *s, enum recon_op *ret_op)
{
	*ret_op = RECON_OP_CREATE;
	if (s->reason == PLAN_MISSING && ri->synced && ri->was_recorded[s->ref]) {
		*ret_op = RECON_OP_REPAIR_CREATE;
		return "repair: missing in AWS (deleted outside s3grantd)";
	}
	return s->reason == PLAN_REPLACE ? "replace (make-before-break: new grant first)" : "subscribed";
}

static const char *delete_reason(struct rint *ri, const struct plan_step *s, const struct grant *a,
				 enum recon_op *ret_op)
{
	*ret_op = RECON_OP_DELETE;
	if (ri->deleting)
		return "integration deleted";
	if (s->reason == PLAN_DUPLICATE) {
		*ret_op = RECON_OP_REPAIR_DELETE;
		return "repair: duplicate of a kept grant";
	}
	if (s->reason == PLAN_REPLACED)
		return "replaced (after its new grant was created)";
	if (!prev_recorded(ri, a->grant_id)) {
		*ret_op = RECON_OP_REPAIR_DELETE;
		return "repair: not made by s3grantd (added outside it in the managed location)";
	}
	return "not desired (unsubscribed, data source or principal changed)";
}

static void log_grant(struct rint *ri, bool created, const struct grant *g, const char *reason,
		      const char *request_id)
{
	char n[24];
	char *scope;

	if (!log_enabled(LOG_LEVEL_INFO))
		return;
	scope = g->grant_scope ? NULL : grant_expected_scope(ri->in.integ.d.location_scope, g->sub_prefix);
	log_info(created ? LOG_MID_GRANT_CREATED : LOG_MID_GRANT_DELETED,
		 LOG_FIELDS({ "integration", log_int(n, sizeof(n), ri->iid) }, { "grant_id", g->grant_id },
			    { "grantee_type", grant_grantee_name(g->grantee_type) }, { "grantee", g->grantee_id },
			    { "permission", grant_perm_name(g->permission) },
			    { "scope", g->grant_scope ? g->grant_scope : scope }, { "reason", reason },
			    { "request_id", request_id }),
		 "grant %s", created ? "created" : "deleted");
	x_free(scope);
}

static void on_step_done(const struct raws_result *res, void *out, void *user)
{
	struct stepcall *sc = user;
	struct rint *ri = sc->ri;
	uint32_t i = sc->i;
	const struct plan_step *s;
	struct rsx *x;
	uint64_t now;

	x_free(sc);
	limit_release(&ri->lim);
	ri->inflight--;
	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	s = &ri->plan.steps[i];
	x = &ri->sx[i];
	now = now_ms(ri);
	if (res->status == 0) {
		if (s->op == PLAN_CREATE) {
			const struct shapes_grant *sg = out;
			struct grant g;
			enum recon_op op;
			const char *why = create_reason(ri, s, &op);
			int64_t subs[SUBS_BUF];
			size_t m = desired_subscriptions(&ri->set, s->ref, subs, SUBS_BUF);

			if (sg && grant_make(&ri->pool, sg->grantee_type, sg->grantee_id, sg->permission,
					     sg->location_id, sg->sub_prefix, NULL, NULL, NULL, &g) == 0) {
				struct cbatch *b = cur_batch(ri);
				struct grant *gp;

				/* The new grant's id, ARN and scope are written once: they
				 * live in the batch (freed after its commit), not in the
				 * pass's pool, which 100,000 creates grew by ~20 MB. */
				g.grant_id = rint_batch_str(b, sg->id);
				g.grant_arn = rint_batch_str(b, sg->arn);
				g.grant_scope = rint_batch_str(b, sg->grant_scope);
				grant_set_hash(&g);
				gp = own(b, x_malloc(sizeof(*gp)));
				*gp = g;
				rint_add_created(ri, gp, sg->created_at_ms, subs, m > SUBS_BUF ? SUBS_BUF : m);
				rint_add_audit(ri, op, gp, why, res->request_id);
				log_grant(ri, true, gp, why, res->request_id);
				ri->instance_grants += ri->instance_grants >= 0;
			} else {
				/* Created but unreadable: the next resync lists and adopts it. */
				ri->want_resync = true;
				ri->want_pass = true;
			}
			step_ok(ri, i);
		} else {
			const struct grant *a = &ri->act.v[s->ref];
			enum recon_op op;
			const char *why = delete_reason(ri, s, a, &op);

			rint_add_deleted(ri, a->grant_id);
			rint_add_audit(ri, op, a, why, res->request_id);
			log_grant(ri, false, a, why, res->request_id);
			if (ri->instance_grants > 0)
				ri->instance_grants--;
			step_ok(ri, i);
		}
		maybe_flush(ri);
		goto next;
	}
	if (res->status == S3G_ECREDS) {
		/* No credentials: not this step's fault; the pass backoff retries. */
		step_fail(ri, i, F_TRANSIENT, res->error);
		goto next;
	}
	{
		uint64_t window = (uint64_t)config_int(ri->g->d->cfg, CONFIG_RECONCILE_PROPAGATION_WINDOW);
		enum plan_class c;

		c = plan_classify(s->op, (int)res->http_code, res->code, res->message,
				  x->first_prop_ms ? x->first_prop_ms : now, now, window);
		x->attempts++;
		switch (c) {
		case PLAN_CLASS_ADOPT:
			/* It exists: the listing at the next resync records it and
			 * resolves the intent; its replaced grant may go now. */
			ri->want_resync = true;
			ri->want_pass = true;
			step_ok(ri, i);
			break;
		case PLAN_CLASS_GONE: {
			const struct grant *a = &ri->act.v[s->ref];

			rint_add_deleted(ri, a->grant_id);
			step_ok(ri, i);
			maybe_flush(ri);
			break;
		}
		case PLAN_CLASS_PROPAGATION:
			if (!x->first_prop_ms)
				x->first_prop_ms = now;
			if (ri->g->stopping) {
				step_fail(ri, i, F_TRANSIENT, res->error);
				break;
			}
			step_retry(ri, i);
			break;
		case PLAN_CLASS_RETRY:
			if (x->attempts >= STEP_RETRY_MAX || ri->g->stopping) {
				step_fail(ri, i, F_TRANSIENT, res->error);
				break;
			}
			step_retry(ri, i);
			break;
		case PLAN_CLASS_QUOTA:
			/* Refused, nothing made: the intent goes, as for a terminal error. */
			step_fail(ri, i, F_QUOTA, res->error);
			x->err = rint_batch_str(cur_batch(ri), res->error);
			if (s->op == PLAN_CREATE && ri->intent_ids[i])
				rint_add_drop(ri, ri->intent_ids[i]);
			break;
		default:
			step_fail(ri, i, F_TERMINAL, res->error);
			x->err = rint_batch_str(cur_batch(ri), res->error);
			rint_set_error(ri, res->error);
			ri->terminal_errors++;
			if (s->op == PLAN_CREATE && ri->intent_ids[i])
				rint_add_drop(ri, ri->intent_ids[i]);
			{
				char n[24];

				log_warning(NULL, LOG_FIELDS({ "integration", log_int(n, sizeof(n), ri->iid) },
							     { "error", res->error },
							     { "request_id", res->request_id }),
					    "grant change refused by AWS");
			}
			break;
		}
	}
next:
	pump(ri);
	exec_maybe_done(ri);
}

static void issue(struct rint *ri, uint32_t i)
{
	const struct plan_step *s = &ri->plan.steps[i];
	struct stepcall *sc = x_malloc(sizeof(*sc));

	sc->ri = ri;
	sc->i = i;
	ri->sx[i].st = SX_INFLIGHT;
	ri->inflight++;
	if (s->op == PLAN_CREATE)
		raws_create_grant(ri->aws, &ri->set.v[s->ref].g, on_step_done, sc);
	else
		raws_delete_grant(ri->aws, ri->act.v[s->ref].grant_id, on_step_done, sc);
}

/* The next step that may be issued now, or UINT32_MAX. */
static uint32_t next_step(struct rint *ri)
{
	uint64_t now = now_ms(ri);

	/* due retries into the ready queue */
	for (size_t k = 0; k < ri->nretry;) {
		uint32_t i = ri->retry[k];

		if (ri->sx[i].next_ms <= now) {
			ri->retry[k] = ri->retry[--ri->nretry];
			ri->sx[i].st = SX_WAIT;
			rq_push(ri, i);
			continue;
		}
		k++;
	}
	while (ri->rq_head < ri->nrq) {
		uint32_t i = ri->rq[ri->rq_head++];

		if (ri->rq_head == ri->nrq)
			ri->rq_head = ri->nrq = 0;
		if (ri->sx[i].st == SX_WAIT)
			return i;
	}
	while (ri->cr_next < ri->intent_upto) {
		uint32_t i = (uint32_t)ri->cr_next++;

		if (ri->sx[i].st == SX_WAIT)
			return i;
	}
	if (ri->cr_next < ri->plan.ncreate)
		return UINT32_MAX;
	while (ri->del_next < ri->plan.n) {
		uint32_t i = (uint32_t)ri->del_next++;
		uint32_t a = ri->plan.steps[i].after;

		if (ri->sx[i].st != SX_WAIT)
			continue;
		if (a == PLAN_NONE || ri->sx[a].st == SX_OK)
			return i;
		if (ri->sx[a].st == SX_FAIL || ri->sx[a].st == SX_SKIP) {
			ri->sx[i].st = SX_SKIP;
			ri->done++;
			continue;
		}
		/* wait for its create */
		ri->sx[i].dep_next = ri->sx[a].dep_head;
		ri->sx[a].dep_head = i;
	}
	return UINT32_MAX;
}

static void on_step_timer(uv_timer_t *t)
{
	struct rint *ri = t->data;

	if (ri->list_retry) {
		ri->list_retry = false;
		list_page(ri);
		return;
	}
	if (ri->lc_timer_cb) {
		void (*cb)(struct rint *) = ri->lc_timer_cb;

		ri->lc_timer_cb = NULL;
		cb(ri);
		return;
	}
	pump(ri);
	exec_maybe_done(ri);
}

void recond_lc_timer(struct rint *ri, uint64_t ms)
{
	uv_timer_start(&ri->step_timer, on_step_timer, ms, 0);
}

static void pump(struct rint *ri)
{
	uint64_t wait = UINT64_MAX, now;

	if (!ri->exec_active || !ri->sx)
		return;
	for (;;) {
		uint32_t i;

		if (ri->g->stopping)
			break;
		now = now_ms(ri);
		if (limit_wait_ms(&ri->lim, now) != 0) {
			wait = limit_wait_ms(&ri->lim, now);
			break;
		}
		i = next_step(ri);
		if (i == UINT32_MAX)
			break;
		if (limit_acquire(&ri->lim, now) < 0) {
			rq_push(ri, i);
			continue;
		}
		issue(ri, i);
	}
	/* earliest retry */
	now = now_ms(ri);
	for (size_t k = 0; k < ri->nretry; k++) {
		uint64_t d = ri->sx[ri->retry[k]].next_ms > now ? ri->sx[ri->retry[k]].next_ms - now : 0;

		if (d < wait)
			wait = d;
	}
	if (wait != UINT64_MAX && !ri->g->stopping)
		uv_timer_start(&ri->step_timer, on_step_timer, wait ? wait : 1, 0);
}

/* ---- the end of execution: statuses, health -------------------------------- */

static void final_statuses(struct rint *ri)
{
	int64_t subs[SUBS_BUF];
	size_t errors = 0, refused = 0, freed = 0;
	int64_t actual;
	struct cbatch *b;

	if (!ri->deleting) {
		for (size_t d = 0; d < ri->set.n; d++) {
			uint32_t si = ri->cstep[d];
			enum recon_sub_state st = RECON_SUB_ACTIVE;
			const char *err = NULL;
			size_t m, total;

			if (si != UINT32_MAX) {
				const struct rsx *x = &ri->sx[si];

				if (x->st == SX_OK) {
					st = RECON_SUB_ACTIVE;
				} else if (x->st == SX_FAIL && x->fail == F_TERMINAL) {
					st = RECON_SUB_ERROR;
					err = x->err;
				} else if (x->st == SX_FAIL && x->fail == F_QUOTA) {
					st = RECON_SUB_QUOTA;
					err = x->err ? x->err : "refused: the Access Grants instance's grant quota is full";
				} else {
					st = RECON_SUB_PENDING;
				}
			}
			total = desired_subscriptions(&ri->set, d, subs, SUBS_BUF);
			if (total > SUBS_BUF) {
				int64_t *all = x_malloc(total * sizeof(*all));

				m = desired_subscriptions(&ri->set, d, all, total);
				for (size_t k = 0; k < m; k++)
					add_sub(ri, all[k], st, err);
				x_free(all);
			} else {
				for (size_t k = 0; k < total; k++)
					add_sub(ri, subs[k], st, err);
			}
			if (st == RECON_SUB_ERROR || st == RECON_SUB_QUOTA)
				errors += total;
		}
		for (size_t k = 0; k < ri->set.nrej; k++)
			add_sub(ri, ri->set.rej[k].subscription_id, RECON_SUB_REJECTED, ri->set.rej[k].reason);
	}
	actual = (int64_t)ri->act.n;
	b = cur_batch(ri);
	for (size_t i = 0; i < ri->plan.n; i++) {
		if (ri->sx[i].st == SX_OK) {
			actual += ri->plan.steps[i].op == PLAN_CREATE ? 1 : -1;
			if (ri->plan.steps[i].op != PLAN_CREATE)
				freed++;
		} else if (ri->sx[i].st == SX_FAIL && ri->sx[i].fail == F_QUOTA) {
			refused++;
		}
	}
	/* Creates were refused for quota with the use from before this pass's
	 * deletes: now that those freed room, plan again rather than wait for
	 * the next change or resync. Bounded: each such pass deletes grants. */
	if (refused && freed && !ri->deleting)
		ri->want_pass = true;
	/* Subscriptions outside the scope may wait for that room: plan them all. */
	if (ri->scoped && freed && ri->sinfo.quota_waiting) {
		ri->want_pass = true;
		ri->want_whole = true;
	}
	b->has_health = true;
	b->health = recon_health_keep();
	b->health.desired = (int64_t)ri->set.n;
	b->health.actual = actual;
	b->health.rejected = (int64_t)ri->set.nrej;
	b->health.errors = (int64_t)errors;
	if (ri->scoped)   /* the scope's numbers are not the integration's: the next whole pass sets them */
		b->health.desired = b->health.actual = b->health.rejected = b->health.errors = -1;
	if (ri->instance_grants >= 0)
		b->health.instance_grants = ri->instance_grants;
	if (ri->synced)
		b->health.resync_at_ms = rint_wall_ms();
	b->health.last_error = rint_batch_str(b, ri->pass_error ? ri->pass_error : "");
	b->health.progress_total = 0;
}

/* Every step of the plan was made (none failed, refused or skipped). */
static bool all_made(const struct rint *ri)
{
	if (ri->done != ri->plan.n)
		return false;
	for (size_t i = 0; i < ri->plan.n; i++)
		if (ri->sx[i].st != SX_OK)
			return false;
	return true;
}

static void exec_maybe_done(struct rint *ri)
{
	char n1[24], n2[24], n3[24], n4[24];

	if (!ri->sx || !ri->have_plan || ri->exec_done)
		return;
	if (ri->inflight || ri->done < ri->plan.n) {
		if (!ri->g->stopping || ri->inflight)
			return;
	}
	if (ri->intent_upto < ri->plan.ncreate && !ri->g->stopping)
		return;
	if (ri->done < ri->plan.n) {
		ri->pass_failed = true;   /* stopped early */
		if (!ri->pass_error)
			rint_set_error(ri, "stopped before every change was made");
	}
	ri->exec_done = true;
	ri->exec_active = false;
	uv_timer_stop(&ri->step_timer);
	final_statuses(ri);
	if (ri->plan.n)
		log_notice(LOG_MID_RECON_DONE,
			   LOG_FIELDS({ "integration", log_int(n1, sizeof(n1), ri->iid) },
				      { "done", log_int(n2, sizeof(n2), (long long)ri->done) },
				      { "desired", log_int(n3, sizeof(n3), (long long)ri->set.n) },
				      { "errors", log_int(n4, sizeof(n4), (long long)ri->terminal_errors) },
				      { "error", ri->pass_error }),
			   "reconciled %zu of %zu grant changes", ri->done, ri->plan.n);
	recond_progress(ri->g, true);
	if (ri->deleting && !ri->pass_failed && ri->done == ri->plan.n) {
		rint_flush(ri, lifecycle_delete_location);
		return;
	}
	if (rscope_absorb(ri, all_made(ri)))
		return;
	rint_pass_done(ri);
}

/* ---- discovery ------------------------------------------------------------- */

struct discover {
	uv_work_t w;
	struct rglue *g;
	int64_t *ids;
	size_t n;
	char err[256];
};

static void discover_work(uv_work_t *w)
{
	struct discover *x = w->data;
	struct rglue *g = x->g;
	PGresult *res;

	if (!g->disc_conn || PQstatus(g->disc_conn) != CONNECTION_OK) {
		if (g->disc_conn)
			PQfinish(g->disc_conn);
		g->disc_conn = PQconnectdb(g->conninfo);
		if (PQstatus(g->disc_conn) != CONNECTION_OK) {
			snprintf(x->err, sizeof(x->err), "%s", PQerrorMessage(g->disc_conn));
			PQfinish(g->disc_conn);
			g->disc_conn = NULL;
			return;
		}
	}
	res = PQexec(g->disc_conn, "SELECT id FROM s3grant.integrations WHERE status <> 'deleted' ORDER BY id");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(x->err, sizeof(x->err), "%s", PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(g->disc_conn);   /* e.g. the schema is not there yet: start afresh next time */
		g->disc_conn = NULL;
		return;
	}
	x->n = (size_t)PQntuples(res);
	x->ids = x_calloc(x->n ? x->n : 1, sizeof(*x->ids));
	for (size_t i = 0; i < x->n; i++)
		x->ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
	PQclear(res);
	PQfinish(g->disc_conn);
	g->disc_conn = NULL;
}

static void on_discover_timer(uv_timer_t *t);

static void discover_after(uv_work_t *w, int status)
{
	struct discover *x = w->data;
	struct rglue *g = x->g;

	g->disc_busy = false;
	if (!g->closing && !g->stopping) {
		if (x->err[0] || status < 0) {
			for (char *p = x->err; *p; p++)
				if (*p == '\n')
					*p = ' ';
			log_debug(NULL, LOG_FIELDS({ "error", x->err }), "reconciler: cannot list integrations yet");
			uv_timer_start(&g->disc_timer, on_discover_timer, DISCOVER_RETRY_MS, 0);
		} else {
			char n[24];

			g->discovered = true;
			log_info(NULL, LOG_FIELDS({ "integrations", log_int(n, sizeof(n), (long long)x->n) }),
				 "reconciler started");
			for (size_t i = 0; i < x->n; i++) {
				struct rint *ri = rint_get(g, x->ids[i]);

				ri->want_pass = true;
				pass_start(ri);
			}
		}
	}
	x_free(x->ids);
	x_free(x);
	if (g->closing)
		recond_maybe_free_glue(g);
}

static void discover(struct rglue *g)
{
	struct discover *x;

	if (g->disc_busy || g->closing)
		return;
	x = x_calloc(1, sizeof(*x));
	x->g = g;
	x->w.data = x;
	if (uv_queue_work(g->loop, &x->w, discover_work, discover_after) < 0) {
		x_free(x);
		return;
	}
	g->disc_busy = true;
}

static void on_discover_timer(uv_timer_t *t)
{
	discover(t->data);
}

/* ---- the daemon's interface ------------------------------------------------ */

void recond_consume(struct daemon *d, struct watch *w, struct watch_item *const *items, size_t n)
{
	struct rglue *g = d->recon;

	if (!g || g->closing) {
		for (size_t i = 0; i < n; i++)
			watch_release(w, items[i], 0);
		return;
	}
	g->w = w;
	for (size_t i = 0; i < n; i++) {
		struct rint *ri = rint_get(g, items[i]->change.integration_id);

		item_push(&ri->pending, items[i]);
		ri->want_pass = true;
	}
	for (struct rint *ri = g->ints; ri; ri = ri->next)
		if (ri->want_pass && ri->pending.n)
			pass_start(ri);
}

static void on_progress_timer(uv_timer_t *t)
{
	struct rglue *g = t->data;
	bool any = false;

	for (struct rint *ri = g->ints; ri; ri = ri->next)
		any |= ri->exec_active;
	if (!any) {
		uv_timer_stop(t);
		return;
	}
	daemon_update_status(g->d);
}

void recond_progress(struct rglue *g, bool force)
{
	if (force)
		daemon_update_status(g->d);
	if (!uv_is_active((uv_handle_t *)&g->progress_timer) && !g->closing)
		uv_timer_start(&g->progress_timer, on_progress_timer, 1000, 1000);
}

int recond_start(struct daemon *d)
{
	struct rglue *g = x_calloc(1, sizeof(*g));
	struct http_engine_opts ho;
	const char *kf = config_str(d->cfg, CONFIG_SECRETS_KEY_FILE);
	char *path = NULL;
	int r;

	g->d = d;
	g->loop = &d->loop;
	g->conninfo = x_strdup(config_str(d->cfg, CONFIG_DB_CONNINFO));
	if (secrets_key_path(*kf ? kf : NULL, &path) == 0) {
		r = secrets_key_load(path, &g->key);
		if (r == 0)
			g->have_key = true;
		else
			log_warning(NULL, LOG_FIELDS({ "file", path }, { "error", err_str(r) }),
				    "reconciler: cannot read the secrets key; access-key integrations cannot run");
		x_free(path);
	}
	http_engine_opts_default(&ho);
	ho.max_in_flight = 4 * (unsigned)config_int(d->cfg, CONFIG_AWS_MAX_IN_FLIGHT);
	ho.timeout_ms = (uint64_t)config_int(d->cfg, CONFIG_AWS_REQUEST_TIMEOUT);
	if (*config_str(d->cfg, CONFIG_AWS_CA_FILE))
		ho.ca_file = config_str(d->cfg, CONFIG_AWS_CA_FILE);
	r = http_engine_new(&d->loop, &ho, &g->http);
	if (r < 0) {
		secrets_key_wipe(&g->key);
		x_free(g->conninfo);
		x_free(g);
		return r;
	}
	uv_timer_init(&d->loop, &g->disc_timer);
	uv_timer_init(&d->loop, &g->progress_timer);
	g->disc_timer.data = g->progress_timer.data = g;
	d->recon = g;
	discover(g);
	return 0;
}

/* Settings are read from d->cfg when used. Credential providers are
 * rebuilt (shared config files, environment and [aws] keys read afresh):
 * idle ones now, busy ones at their next pass. */
void recond_apply(struct daemon *d)
{
	struct rglue *g = d->recon;

	if (!g || g->closing)
		return;
	for (struct rint *ri = g->ints; ri; ri = ri->next) {
		if (!ri->aws)
			continue;
		if (!ri->in_pass && raws_in_flight(ri->aws) == 0)
			rint_aws_retire(ri);
		else
			ri->aws_stale = true;
	}
}

void recond_stop(struct daemon *d)
{
	struct rglue *g = d->recon;

	if (!g)
		return;
	g->stopping = true;
	uv_timer_stop(&g->disc_timer);
	for (struct rint *ri = g->ints; ri; ri = ri->next) {
		uv_timer_stop(&ri->pass_timer);
		for (size_t i = 0; i < ri->pending.n; i++)
			if (g->w)
				watch_release(g->w, ri->pending.v[i], 0);
		ri->pending.n = 0;
		if (ri->exec_active)
			exec_maybe_done(ri);
	}
}

static void on_glue_handle_closed(uv_handle_t *h)
{
	struct rglue *g = h->data;

	g->pending_closes--;
	recond_maybe_free_glue(g);
}

static void on_http_closed(struct http_engine *eng, void *user)
{
	struct rglue *g = user;

	g->http_closed = true;
	recond_maybe_free_glue(g);
}

/* The engine closes after the last client and provider using it. */
static void glue_maybe_close_http(struct rglue *g)
{
	if (!g->closing || g->http_closing || g->aws_open)
		return;
	g->http_closing = true;
	http_engine_close(g->http, on_http_closed, g);
}

static void glue_aws_gone(struct rglue *g)
{
	g->aws_open--;
	glue_maybe_close_http(g);
	recond_maybe_free_glue(g);
}

void recond_maybe_free_glue(struct rglue *g)
{
	if (!g->closing || g->pending_closes || !g->http_closed || g->disc_busy || g->ints || g->aws_open)
		return;
	if (g->freed)
		return;
	g->freed = true;
	http_engine_free(g->http);
	secrets_key_wipe(&g->key);
	x_free(g->conninfo);
	x_free(g);
}

void recond_close(struct daemon *d)
{
	struct rglue *g = d->recon;
	struct rint *ri, *next;

	if (!g)
		return;
	d->recon = NULL;
	g->closing = true;
	g->stopping = true;
	g->w = NULL;   /* watch_close releases every item we held */
	for (ri = g->ints; ri; ri = ri->next) {
		ri->pending.n = 0;
		ri->inpass.n = 0;
	}
	g->pending_closes = 2;
	uv_close((uv_handle_t *)&g->disc_timer, on_glue_handle_closed);
	uv_close((uv_handle_t *)&g->progress_timer, on_glue_handle_closed);
	/* Cancel every integration's calls first (callbacks on later passes). */
	for (ri = g->ints; ri; ri = ri->next)
		rint_aws_close(ri);
	glue_maybe_close_http(g);
	for (ri = g->ints; ri; ri = next) {
		next = ri->next;
		rint_maybe_free(ri);
	}
}

void recond_status(const struct daemon *d, struct buf *b)
{
	const struct rglue *g = d->recon;
	size_t n = 0;

	if (!g)
		return;
	for (const struct rint *ri = g->ints; ri; ri = ri->next) {
		n++;
		if (ri->exec_active && buf_printf(b, "; integration %lld: reconciling %zu/%zu grants%s",
						  (long long)ri->iid, ri->done, ri->total,
						  ri->scoped ? " (scoped pass)" : "") < 0)
			return;
		if (ri->busy && buf_printf(b, "; integration %lld: another daemon is the writer", (long long)ri->iid) < 0)
			return;
	}
	(void)!buf_printf(b, "; %zu integration%s", n, n == 1 ? "" : "s");
}
