/* recon.c — the reconciler (see recon.h): integrations, passes, the
 * worker-thread database jobs and the results. A pass's reconcile (the
 * listing, planning, the step executor) is in daemon/recon_exec.c; the
 * integration lifecycle (validation, location create/delete) in
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

#define LOG_MID_RECON_FAILED  "7b3b1c9e5f0a4d8e9a52d3c1e0f4a623"

#define FLUSH_N 2000               /* results per commit */
#define FLUSH_MS 100               /* ... or after this long (100,000 creates: 770 commits, not 1,700 at 30 ms) */
#define PASS_BACKOFF_BASE_MS 1000
#define PASS_BACKOFF_CAP_MS 300000
#define BUSY_RETRY_MS 5000
#define DISCOVER_RETRY_MS 5000

int64_t rint_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t rint_now_ms(const struct rint *ri)
{
	return uv_now(ri->g->loop);
}

uint64_t rint_rnd64(void)
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

void *rint_batch_own(struct cbatch *b, void *p)
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
	return s ? rint_batch_own(b, x_strdup(s)) : NULL;
}

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

struct cbatch *rint_cur_batch(struct rint *ri)
{
	if (!ri->batch)
		ri->batch = x_calloc(1, sizeof(*ri->batch));
	return ri->batch;
}

void rint_add_created(struct rint *ri, const struct grant *g, int64_t created_ms, const int64_t *subs,
		      size_t nsubs, int64_t intent_id)
{
	struct cbatch *b = rint_cur_batch(ri);
	int64_t *sv = NULL;

	if (nsubs) {
		sv = rint_batch_own(b, x_malloc(nsubs * sizeof(*sv)));
		memcpy(sv, subs, nsubs * sizeof(*sv));
	}
	GROW(b->created, b->ncreated, b->ccap);
	b->created[b->ncreated++] = (struct recon_created){ .g = g, .created_ms = created_ms, .subs = sv,
							    .nsubs = nsubs, .intent_id = intent_id };
}

void rint_add_deleted(struct rint *ri, const char *grant_id)
{
	struct cbatch *b = rint_cur_batch(ri);

	GROW(b->deleted, b->ndeleted, b->dcap);
	b->deleted[b->ndeleted++] = grant_id;
}

void rint_add_drop(struct rint *ri, int64_t intent_id)
{
	struct cbatch *b = rint_cur_batch(ri);

	GROW(b->drop, b->ndrop, b->dropcap);
	b->drop[b->ndrop++] = intent_id;
}

void rint_add_audit(struct rint *ri, enum recon_op op, const struct grant *g, const char *reason,
		    const char *request_id)
{
	struct cbatch *b = rint_cur_batch(ri);
	const char *scope = g->grant_scope;

	if (!scope)
		scope = rint_batch_own(b, grant_expected_scope(ri->in.integ.d.location_scope, g->sub_prefix));
	GROW(b->audit, b->naudit, b->acap);
	b->audit[b->naudit++] = (struct recon_audit){
		.op = op, .grant_id = g->grant_id, .grant_arn = g->grant_arn, .principal = g->grantee_id,
		.prefix = scope, .permission = grant_perm_name(g->permission),
		.reason = rint_batch_str(b, reason), .request_id = rint_batch_str(b, request_id),
	};
}

void rint_add_sub(struct rint *ri, int64_t id, enum recon_sub_state st, const char *error)
{
	struct cbatch *b = rint_cur_batch(ri);

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

void rint_maybe_flush(struct rint *ri)
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

	return iv + (jit ? rint_rnd64() % (jit + 1) : 0);
}

/* Arm the pass timer for the earliest of: the resync, a retry. */
static void arm_pass_timer(struct rint *ri)
{
	uint64_t now = rint_now_ms(ri), at = ri->resync_at;

	if (ri->retry_at && (!at || ri->retry_at < at))
		at = ri->retry_at;
	if (!at)
		return;
	uv_timer_start(&ri->pass_timer, on_pass_timer, at > now ? at - now : 0, 0);
}

static void on_pass_timer(uv_timer_t *t)
{
	struct rint *ri = t->data;
	uint64_t now = rint_now_ms(ri);

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
		if (ri->retry_at && ri->retry_at > rint_now_ms(ri) && !ri->want_resync_now)
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
	ri->pass_started_ms = rint_now_ms(ri);
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
	return (int)(d / 2 + rint_rnd64() % (d / 2 + 1));
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
		ri->retry_at = rint_now_ms(ri) + (uint64_t)delay;
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
		ri->retry_at = rint_now_ms(ri) + BUSY_RETRY_MS;
		ri->want_pass = true;
		ri->want_resync = true;
	} else {
		ri->fails = 0;
		ri->retry_at = 0;
	}
	if (!ri->busy && !ri->pass_failed && ri->pass_resync)
		ri->resync_at = rint_now_ms(ri) + resync_delay(g);
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
			rint_exec_maybe_done(ri);
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
