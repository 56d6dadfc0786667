/* recon_scope.c — scoped reconcile passes: a pass whose keys are only
 * subscriptions (s:) and user principals (u:) plans the grantees those keys
 * can affect, not the whole integration (store/recon.h, recon_scope_load,
 * says how the scope is found). The desired grants of a grantee depend only
 * on the users that resolve to it, so planning every user that resolves
 * into the scope against every recorded grant of the scope's grantees gives
 * the same steps for those grantees as a whole pass; grants of other
 * grantees are not looked at. Execution is the whole pass's (recon_exec.c).
 *
 * Anything else takes the whole pass: a resync, a revalidation due, an i:
 * key, a d: key of a data source with subscriptions (one without gives no
 * grants), more than SCOPE_KEYS_MAX keys, and every case
 * recon_scope_load cannot scope exactly (then the same job loads the whole
 * integration).
 *
 * A whole pass reads its inputs after noting the queue rows nobody holds;
 * when it has made every change it planned, those rows (unchanged since)
 * are deleted: their changes were in its inputs. A backlog (100,000 keys of
 * a bulk load) then costs one pass, not a pass per claim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/recon_int.h"

/* Above these a scoped pass would cost about as much as the whole one. */
static const struct recon_scope_max scope_max = { .users = 1000, .subscriptions = 10000 };
#define SCOPE_KEYS_MAX 10000

/* "<n>" then end or ':'; advances *p past it. */
static int parse_id(const char **p, int64_t *ret)
{
	char *end;
	long long v;

	if (**p < '0' || **p > '9')
		return -1;
	v = strtoll(*p, &end, 10);
	if (v <= 0 || (*end != '\0' && *end != ':'))
		return -1;
	*ret = v;
	*p = *end ? end + 1 : end;
	return 0;
}

/* s:<iid>:<uid>:<dsid>, u:<iid>:<uid> or d:<iid>:<dsid> of integration iid. */
static int parse_key(const struct pgq_change *c, int64_t iid, struct recon_scope_key *ret)
{
	static const char letter[PGQ_KIND_MAX] = {
		[PGQ_KIND_SUBSCRIPTION] = 's', [PGQ_KIND_USER] = 'u', [PGQ_KIND_DATA_SOURCE] = 'd',
	};
	const char *p = c->key;
	int64_t kiid;

	if (!p || (unsigned)c->kind >= PGQ_KIND_MAX || !letter[c->kind] || p[0] != letter[c->kind] || p[1] != ':')
		return -1;
	p += 2;
	ret->user_id = ret->data_source_id = 0;
	if (parse_id(&p, &kiid) < 0 || kiid != iid)
		return -1;
	if (c->kind == PGQ_KIND_DATA_SOURCE)
		return parse_id(&p, &ret->data_source_id) < 0 || *p ? -1 : 0;
	if (parse_id(&p, &ret->user_id) < 0)
		return -1;
	if (c->kind == PGQ_KIND_USER)
		return *p ? -1 : 0;
	if (parse_id(&p, &ret->data_source_id) < 0 || *p)
		return -1;
	return 0;
}

void rscope_begin(struct rint *ri)
{
	uint64_t now = uv_now(ri->g->loop);

	rscope_clear(ri);
	if (ri->want_whole) {
		ri->want_whole = false;   /* this pass is the whole one */
		return;
	}
	if (ri->pass_resync || !ri->inpass.n || ri->inpass.n > SCOPE_KEYS_MAX || ri->g->stopping)
		return;
	if (!ri->revalidate_at || now >= ri->revalidate_at)
		return;   /* not looked at yet, or a revalidation is due: the whole pass does it */
	for (size_t i = 0; i < ri->inpass.n; i++) {
		if (ri->nskeys == ri->skeys_cap) {
			ri->skeys_cap = ri->skeys_cap ? ri->skeys_cap * 2 : 16;
			ri->skeys = x_realloc(ri->skeys, ri->skeys_cap * sizeof(*ri->skeys));
		}
		if (parse_key(&ri->inpass.v[i]->change, ri->iid, &ri->skeys[ri->nskeys]) < 0) {
			ri->nskeys = 0;
			return;
		}
		ri->nskeys++;
	}
	ri->scope_try = true;
	ri->scope_want_count = ri->instance_grants < 0;
}

int rscope_load(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct pgerr pe;
	int r;

	if (rint_conn_locked(j) < 0) {
		/* the whole load takes the lock again and says what is wrong */
		j->status = 0;
		j->err[0] = '\0';
		return 0;
	}
	intern_init(&ri->pool);
	ri->have_pool = true;
	pgerr_clear(&pe);
	r = recon_scope_load(ri->conn, ri->iid, ri->g->have_key ? &ri->g->key : NULL, ri->skeys, ri->nskeys,
			     &scope_max, ri->scope_want_count, &ri->pool, &ri->in, &ri->act, &ri->intents, &ri->sinfo,
			     &pe);
	if (r < 0) {
		rint_pg_fail(j, r, &pe);
		return r;
	}
	if (ri->sinfo.fallback) {
		intern_free(&ri->pool);
		ri->have_pool = false;
		return 0;
	}
	ri->have_in = true;
	ri->scoped = true;
	return 1;
}

void rscope_log(struct rint *ri, size_t ncreate, size_t ndelete)
{
	char n1[24], n2[24], n3[24], n4[24], n5[24], n6[24];
	size_t planned = ncreate + ndelete;

	if (!ri->scoped) {
		if (ri->scope_try && ri->sinfo.fallback)
			log_info(NULL, LOG_FIELDS({ "integration", log_int(n1, sizeof(n1), ri->iid) },
						  { "reason", ri->sinfo.fallback }),
				 "no scoped pass (%s): planning the whole integration", ri->sinfo.fallback);
		return;
	}
	log_info(NULL, LOG_FIELDS({ "integration", log_int(n1, sizeof(n1), ri->iid) },
				  { "users", log_int(n2, sizeof(n2), (long long)ri->sinfo.nusers) },
				  { "grantees", log_int(n3, sizeof(n3), (long long)ri->sinfo.ngrantees) },
				  { "desired", log_int(n4, sizeof(n4), (long long)ri->set.n) },
				  { "create", log_int(n5, sizeof(n5), (long long)ncreate) },
				  { "delete", log_int(n6, sizeof(n6), (long long)ndelete) }),
		 "scoped pass: %zu user%s, %zu grant%s planned", ri->sinfo.nusers, ri->sinfo.nusers == 1 ? "" : "s",
		 planned, planned == 1 ? "" : "s");
}

void rscope_clear(struct rint *ri)
{
	ri->scope_try = false;
	ri->scoped = false;
	ri->scope_want_count = false;
	ri->nskeys = 0;
	X_FREE(ri->absorb);
	ri->nabsorb = 0;
	memset(&ri->sinfo, 0, sizeof(ri->sinfo));
	ri->sinfo.recorded = -1;
}

/* ---- a whole pass does the changes queued before it ----------------------- */

void rscope_seen(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct pgerr pe;

	X_FREE(ri->absorb);
	ri->nabsorb = 0;
	pgerr_clear(&pe);
	if (recon_queue_seen(ri->conn, ri->iid, &ri->absorb, &ri->nabsorb, &pe) < 0)
		ri->nabsorb = 0;   /* only a saving: the keys are claimed and planned as usual */
}

static void absorb_work(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct pgerr pe;
	size_t n = 0;
	int r;

	if (rint_conn_locked(j) < 0)
		return;
	pgerr_clear(&pe);
	r = recon_queue_absorb(ri->conn, ri->iid, ri->absorb, ri->nabsorb, &n, &pe);
	if (r < 0)
		rint_pg_fail(j, r, &pe);
	j->sync.removed = n;   /* rows removed from the queue */
}

static void absorb_after(struct dbjob *j)
{
	struct rint *ri = j->ri;
	char n1[24], n2[24];

	/* a failure costs only the saving: the keys stay queued */
	if (j->status == 0 && j->sync.removed)
		log_info(NULL, LOG_FIELDS({ "integration", log_int(n1, sizeof(n1), ri->iid) },
					  { "changes", log_int(n2, sizeof(n2), (long long)j->sync.removed) }),
			 "whole pass: %zu queued change%s already done", j->sync.removed,
			 j->sync.removed == 1 ? "" : "s");
	rint_pass_done(ri);
}

bool rscope_absorb(struct rint *ri, bool all_made)
{
	/* want_resync: an adoption or an unreadable create waits for the listing */
	if (ri->scoped || !ri->nabsorb || !all_made || ri->pass_failed || ri->deleting || ri->want_resync ||
	    ri->g->stopping)
		return false;
	rint_submit(ri, rint_job(ri, absorb_work, absorb_after));
	return true;
}
