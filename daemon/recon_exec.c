/* recon_exec.c — one reconcile of an integration, from the pass's loaded
 * inputs to its results: the listing of the location's grants in AWS (a
 * resync, a delete), the plan (desired set, diff, quota, intents) and the
 * step executor (creates and deletes under the rate limit, retries, deletes
 * waiting on their creates), then the subscriptions' statuses and the
 * integration's health.
 *
 * The pass (recon.c) enters at rint_reconcile from load_after. Results go
 * into the current batch (rint_add_*; recon.c commits it); the end goes
 * back to the pass through rint_pass_done, rscope_absorb or
 * lifecycle_delete_location. recond_stop ends an execution early through
 * rint_exec_maybe_done. The integration's step timer serves the listing's
 * retries, the executor and the lifecycle (recond_lc_timer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/recon_int.h"

#define LOG_MID_GRANT_CREATED "7b3b1c9e5f0a4d8e9a52d3c1e0f4a620"
#define LOG_MID_GRANT_DELETED "7b3b1c9e5f0a4d8e9a52d3c1e0f4a621"
#define LOG_MID_RECON_DONE    "7b3b1c9e5f0a4d8e9a52d3c1e0f4a622"
#define LOG_MID_QUOTA         "7b3b1c9e5f0a4d8e9a52d3c1e0f4a624"

#define INTENT_CHUNK 2000          /* intents recorded per job */
#define INTENT_AHEAD (2 * INTENT_CHUNK) /* recorded ahead of the creates sent */
#define STEP_RETRY_MAX 10          /* attempts of a retryable step in one pass */
#define SUBS_BUF 64

enum sx_state {
	SX_WAIT,        /* not issued yet */
	SX_INFLIGHT,
	SX_RETRY,       /* waiting for its backoff */
	SX_OK,
	SX_FAIL,
	SX_SKIP,        /* blocked: its create failed */
};

/* ---- listing (resync) ---------------------------------------------------- */

static void on_step_timer(uv_timer_t *t);
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
			uv_timer_start(&ri->step_timer, on_step_timer, d / 2 + rint_rnd64() % (d / 2 + 1), 0);
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

void rint_health_error(struct rint *ri, const char *err)
{
	struct cbatch *b = rint_cur_batch(ri);

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
static void intents_after(struct dbjob *j);

/* Intents are recorded a chunk at a time, up to INTENT_AHEAD ahead of the
 * creates sent, so Postgres writes them while the creates go out. Submitted
 * all at once, the 50 chunks of a 100,000-grant pass kept one core busy for
 * its first ~4 s while the daemon and the fake needed the other. */
static void intents_more(struct rint *ri)
{
	while (ri->intent_sent < ri->plan.ncreate && ri->intent_sent < ri->cr_next + INTENT_AHEAD &&
	       !ri->g->stopping) {
		struct dbjob *j = rint_job(ri, intents_work, intents_after);

		j->ifrom = ri->intent_sent;
		j->ito = j->ifrom + INTENT_CHUNK < ri->plan.ncreate ? j->ifrom + INTENT_CHUNK : ri->plan.ncreate;
		ri->intent_sent = j->ito;
		rint_submit(ri, j);
	}
}

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
	rint_exec_maybe_done(ri);
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
		rint_add_created(ri, a, 0, subs, m > SUBS_BUF ? SUBS_BUF : m, 0);
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
		rint_add_created(ri, a, ri->act.created_ms[kp->actual], subs, m > SUBS_BUF ? SUBS_BUF : m, 0);
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
	ri->intent_sent = 0;
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
			(uint32_t)config_int(ri->g->d->cfg, CONFIG_AWS_MAX_IN_FLIGHT), rint_now_ms(ri));
	intents_more(ri);
	if (ri->plan.ncreate == 0)
		pump(ri);
	rint_exec_maybe_done(ri);
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
	ri->sx[i].next_ms = rint_now_ms(ri) + d / 2 + rint_rnd64() % (d / 2 + 1);
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
	now = rint_now_ms(ri);
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
				struct cbatch *b = rint_cur_batch(ri);
				struct grant *gp;

				/* The new grant's id, ARN and scope are written once: they
				 * live in the batch (freed after its commit), not in the
				 * pass's pool, which 100,000 creates grew by ~20 MB. */
				g.grant_id = rint_batch_str(b, sg->id);
				g.grant_arn = rint_batch_str(b, sg->arn);
				g.grant_scope = rint_batch_str(b, sg->grant_scope);
				grant_set_hash(&g);
				gp = rint_batch_own(b, x_malloc(sizeof(*gp)));
				*gp = g;
				rint_add_created(ri, gp, sg->created_at_ms, subs, m > SUBS_BUF ? SUBS_BUF : m,
						 ri->intent_ids[i]);
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
		rint_maybe_flush(ri);
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
			rint_maybe_flush(ri);
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
			x->err = rint_batch_str(rint_cur_batch(ri), res->error);
			if (s->op == PLAN_CREATE && ri->intent_ids[i])
				rint_add_drop(ri, ri->intent_ids[i]);
			break;
		default:
			step_fail(ri, i, F_TERMINAL, res->error);
			x->err = rint_batch_str(rint_cur_batch(ri), res->error);
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
	rint_exec_maybe_done(ri);
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
	uint64_t now = rint_now_ms(ri);

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
	rint_exec_maybe_done(ri);
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
	intents_more(ri);
	for (;;) {
		uint32_t i;

		if (ri->g->stopping)
			break;
		now = rint_now_ms(ri);
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
	now = rint_now_ms(ri);
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
					rint_add_sub(ri, all[k], st, err);
				x_free(all);
			} else {
				for (size_t k = 0; k < total; k++)
					rint_add_sub(ri, subs[k], st, err);
			}
			if (st == RECON_SUB_ERROR || st == RECON_SUB_QUOTA)
				errors += total;
		}
		for (size_t k = 0; k < ri->set.nrej; k++)
			rint_add_sub(ri, ri->set.rej[k].subscription_id, RECON_SUB_REJECTED, ri->set.rej[k].reason);
	}
	actual = (int64_t)ri->act.n;
	b = rint_cur_batch(ri);
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

void rint_exec_maybe_done(struct rint *ri)
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
