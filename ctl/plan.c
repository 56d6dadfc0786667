/* s3grantctl plan: what the daemon would change, without changing anything.
 * Desired grants come from the database through core/desired (the rows
 * store/recon loads for the daemon), actual ones from s3grant.grants (as the
 * daemon last saw AWS); core/diff, core/plan and core/quota decide, exactly
 * as the daemon does. Printed like `terraform plan`, or as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/desired.h"
#include "core/diff.h"
#include "core/plan.h"
#include "core/quota.h"
#include "core/xalloc.h"
#include "ctl/ctl.h"
#include "store/recon.h"

struct pl {
	struct ctl *c;
	yajl_gen g;                    /* --json */
	struct recon_inputs in;
	struct intern pool;
	struct desired_set set;
	struct recon_grants act;
	struct diff d;
	struct plan p;
	size_t quota_used;
	bool have_set, have_diff, have_plan;
	const char *note;              /* why there is no plan */
	size_t ncreate, nreplace, ndelete, nquota, nblocked;
};

static int cmp_sub(const void *k, const void *e)
{
	int64_t a = *(const int64_t *)k, b = ((const struct desired_subscription *)e)->id;

	return a < b ? -1 : a > b;
}

static int cmp_user(const void *k, const void *e)
{
	int64_t a = *(const int64_t *)k, b = ((const struct desired_user *)e)->id;

	return a < b ? -1 : a > b;
}

static int cmp_ds(const void *k, const void *e)
{
	int64_t a = *(const int64_t *)k, b = ((const struct desired_data_source *)e)->id;

	return a < b ? -1 : a > b;
}

/* The rows behind a subscription id (inputs are in id order). */
static void sub_names(const struct pl *x, int64_t sid, const char **ret_user, const char **ret_ds)
{
	const struct desired_subscription *s = bsearch(&sid, x->in.subs, x->in.nsubs, sizeof(*s), cmp_sub);
	const struct desired_user *u = s ? bsearch(&s->user_id, x->in.users, x->in.nusers, sizeof(*u), cmp_user) : NULL;
	const struct desired_data_source *d = s ? bsearch(&s->data_source_id, x->in.ds, x->in.nds, sizeof(*d), cmp_ds)
						: NULL;

	*ret_user = u ? u->name : "?";
	*ret_ds = d ? d->prefix : "?";
}

static char *scope_of(const struct pl *x, const struct grant *g)
{
	return g->grant_scope ? x_strdup(g->grant_scope) : grant_expected_scope(x->in.integ.d.location_scope,
										 g->sub_prefix);
}

static void gen_grant(struct pl *x, const struct grant *g, int64_t desired_idx, const char *why)
{
	yajl_gen y = x->g;
	char *scope = scope_of(x, g);

	yajl_gen_map_open(y);
	if (g->grant_id)
		ctl_gen_kv(y, "grantId", g->grant_id);
	ctl_gen_kv(y, "permission", grant_perm_name((enum grant_perm)g->permission));
	ctl_gen_kv(y, "granteeType", grant_grantee_name((enum grant_grantee)g->grantee_type));
	ctl_gen_kv(y, "grantee", g->grantee_id);
	ctl_gen_kv(y, "scope", scope);
	ctl_gen_kv(y, "subPrefix", g->sub_prefix);
	if (why)
		ctl_gen_kv(y, "reason", why);
	if (desired_idx >= 0) {
		int64_t ids[64];
		size_t k = desired_subscriptions(&x->set, (size_t)desired_idx, ids, 64);

		ctl_gen_str(y, "subscriptions");
		yajl_gen_array_open(y);
		for (size_t i = 0; i < k && i < 64; i++)
			yajl_gen_integer(y, ids[i]);
		yajl_gen_array_close(y);
	}
	yajl_gen_map_close(y);
	x_free(scope);
}

static void print_grant(const struct pl *x, const char *mark, const char *verb, const struct grant *g,
			const char *tail)
{
	char *scope = scope_of(x, g);

	printf("  %s %-7s %-9s %s %s%s%s\n", mark, verb, grant_perm_name((enum grant_perm)g->permission),
	       g->grantee_id, scope, tail ? "  " : "", tail ? tail : "");
	x_free(scope);
}

static const char *delete_why(const struct plan_step *s)
{
	return s->reason == PLAN_DUPLICATE ? "duplicate of a kept grant" : "not desired";
}

/* Text: creates, replacements (a create with its deletes), deletes, refusals, rejections. */
static void print_plan(struct pl *x)
{
	const struct recon_integration *it = &x->in.integ;
	char tail[256];

	printf("integration %lld \"%s\" (%s, location %s): %s\n", (long long)it->d.id, it->name,
	       it->d.location_scope, it->d.location_id ? it->d.location_id : "(not registered)",
	       recon_istatus_name(it->status));
	if (x->note) {
		printf("  %s\n\n", x->note);
		return;
	}
	for (size_t i = 0; i < x->p.ncreate; i++) {
		const struct plan_step *s = &x->p.steps[i];
		const struct grant *g = &x->set.v[s->ref].g;

		if (s->status == PLAN_QUOTA || s->reason == PLAN_REPLACE)
			continue;
		snprintf(tail, sizeof(tail), "(subscription %lld%s)", (long long)g->subscription_id,
			 x->set.v[s->ref].nsubs > 1 ? " and more" : "");
		print_grant(x, "+", "create", g, tail);
	}
	for (size_t i = 0; i < x->p.ncreate; i++) {
		const struct plan_step *s = &x->p.steps[i];

		if (s->reason != PLAN_REPLACE || s->status == PLAN_QUOTA)
			continue;
		print_grant(x, "~", "replace", &x->set.v[s->ref].g, "(create first, then delete:)");
		for (size_t j = x->p.ncreate; j < x->p.n; j++)
			if (x->p.steps[j].after == i) {
				const struct grant *old = &x->act.v[x->p.steps[j].ref];

				snprintf(tail, sizeof(tail), "(grant %s)", old->grant_id);
				print_grant(x, " ", "  was", old, tail);
			}
	}
	for (size_t j = x->p.ncreate; j < x->p.n; j++) {
		const struct plan_step *s = &x->p.steps[j];
		const struct grant *g = &x->act.v[s->ref];

		if (s->after != PLAN_NONE && s->status != PLAN_BLOCKED)
			continue;
		snprintf(tail, sizeof(tail), "(grant %s: %s)", g->grant_id,
			 s->status == PLAN_BLOCKED ? "kept: its replacement is refused by quota" : delete_why(s));
		print_grant(x, s->status == PLAN_BLOCKED ? "!" : "-", s->status == PLAN_BLOCKED ? "blocked" : "delete",
			    g, tail);
	}
	for (size_t i = 0; i < x->p.ncreate; i++) {
		const struct plan_step *s = &x->p.steps[i];

		if (s->status == PLAN_QUOTA)
			print_grant(x, "!", "quota", &x->set.v[s->ref].g, "(refused: instance grant quota)");
	}
	for (size_t i = 0; i < x->set.nrej; i++) {
		const char *user, *ds;

		sub_names(x, x->set.rej[i].subscription_id, &user, &ds);
		printf("  ! reject  subscription %lld (%s → %s): %s\n", (long long)x->set.rej[i].subscription_id, user, ds,
		       x->set.rej[i].reason);
	}
	if (!x->ncreate && !x->nreplace && !x->ndelete && !x->nquota && !x->set.nrej)
		printf("  No changes. AWS (as last seen) matches the subscriptions.\n");
	printf("  Plan: %zu to create, %zu to replace, %zu to delete; %zu rejected, %zu refused by quota"
	       " (%zu desired, %zu in AWS, %zu kept; quota %zu/%d %s).\n\n", x->ncreate, x->nreplace, x->ndelete,
	       x->set.nrej, x->nquota, x->set.n, x->act.n, x->d.nkeep, x->quota_used, QUOTA_GRANTS_PER_INSTANCE,
	       quota_level_name(quota_level(x->quota_used, 0)));
}

static void gen_plan(struct pl *x)
{
	yajl_gen y = x->g;
	const struct recon_integration *it = &x->in.integ;

	yajl_gen_map_open(y);
	ctl_gen_str(y, "integrationId");
	yajl_gen_integer(y, it->d.id);
	ctl_gen_kv(y, "name", it->name);
	ctl_gen_kv(y, "status", recon_istatus_name(it->status));
	ctl_gen_kv(y, "location", it->d.location_scope);
	ctl_gen_kv(y, "locationId", it->d.location_id);
	ctl_gen_kv(y, "note", x->note);
	if (x->note) {
		yajl_gen_map_close(y);
		return;
	}
	ctl_gen_str(y, "create");
	yajl_gen_array_open(y);
	for (size_t i = 0; i < x->p.ncreate; i++)
		if (x->p.steps[i].status != PLAN_QUOTA && x->p.steps[i].reason != PLAN_REPLACE)
			gen_grant(x, &x->set.v[x->p.steps[i].ref].g, x->p.steps[i].ref, NULL);
	yajl_gen_array_close(y);
	ctl_gen_str(y, "replace");
	yajl_gen_array_open(y);
	for (size_t i = 0; i < x->p.ncreate; i++) {
		if (x->p.steps[i].reason != PLAN_REPLACE || x->p.steps[i].status == PLAN_QUOTA)
			continue;
		yajl_gen_map_open(y);
		ctl_gen_str(y, "create");
		gen_grant(x, &x->set.v[x->p.steps[i].ref].g, x->p.steps[i].ref, NULL);
		ctl_gen_str(y, "thenDelete");
		yajl_gen_array_open(y);
		for (size_t j = x->p.ncreate; j < x->p.n; j++)
			if (x->p.steps[j].after == i)
				gen_grant(x, &x->act.v[x->p.steps[j].ref], -1, "replaced");
		yajl_gen_array_close(y);
		yajl_gen_map_close(y);
	}
	yajl_gen_array_close(y);
	ctl_gen_str(y, "delete");
	yajl_gen_array_open(y);
	for (size_t j = x->p.ncreate; j < x->p.n; j++)
		if (x->p.steps[j].after == PLAN_NONE)
			gen_grant(x, &x->act.v[x->p.steps[j].ref], -1,
				  x->p.steps[j].reason == PLAN_DUPLICATE ? "duplicate" : "unwanted");
	yajl_gen_array_close(y);
	ctl_gen_str(y, "quotaRefused");
	yajl_gen_array_open(y);
	for (size_t i = 0; i < x->p.ncreate; i++)
		if (x->p.steps[i].status == PLAN_QUOTA)
			gen_grant(x, &x->set.v[x->p.steps[i].ref].g, x->p.steps[i].ref, "quota");
	yajl_gen_array_close(y);
	ctl_gen_str(y, "blocked");
	yajl_gen_array_open(y);
	for (size_t j = x->p.ncreate; j < x->p.n; j++)
		if (x->p.steps[j].status == PLAN_BLOCKED)
			gen_grant(x, &x->act.v[x->p.steps[j].ref], -1, "replacement refused by quota");
	yajl_gen_array_close(y);
	ctl_gen_str(y, "rejected");
	yajl_gen_array_open(y);
	for (size_t i = 0; i < x->set.nrej; i++) {
		const char *user, *ds;

		sub_names(x, x->set.rej[i].subscription_id, &user, &ds);
		yajl_gen_map_open(y);
		ctl_gen_str(y, "subscriptionId");
		yajl_gen_integer(y, x->set.rej[i].subscription_id);
		ctl_gen_kv(y, "user", user);
		ctl_gen_kv(y, "dataSource", ds);
		ctl_gen_kv(y, "reason", x->set.rej[i].reason);
		yajl_gen_map_close(y);
	}
	yajl_gen_array_close(y);
	ctl_gen_str(y, "summary");
	yajl_gen_map_open(y);
	{
		const struct { const char *k; size_t v; } s[] = {
			{ "create", x->ncreate }, { "replace", x->nreplace }, { "delete", x->ndelete },
			{ "rejected", x->set.nrej }, { "quotaRefused", x->nquota }, { "blocked", x->nblocked },
			{ "desired", x->set.n }, { "actual", x->act.n }, { "keep", x->d.nkeep },
			{ "foreign", x->d.nforeign }, { "quotaUsed", x->quota_used },
		};

		for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
			ctl_gen_str(y, s[i].k);
			yajl_gen_integer(y, (long long)s[i].v);
		}
	}
	ctl_gen_str(y, "quotaLimit");
	yajl_gen_integer(y, QUOTA_GRANTS_PER_INSTANCE);
	ctl_gen_kv(y, "quotaLevel", quota_level_name(quota_level(x->quota_used, 0)));
	yajl_gen_map_close(y);
	yajl_gen_map_close(y);
}

static int quota_used(struct ctl *c, int64_t iid, size_t *ret)
{
	char id[24];
	const char *p[1] = { id };
	PGresult *res;
	int code = CTL_OK;

	snprintf(id, sizeof(id), "%lld", (long long)iid);
	res = ctl_query(c, &code,
			"SELECT coalesce(h.instance_grants, (SELECT count(*) FROM s3grant.grants g"
			"  JOIN s3grant.integrations i2 ON i2.id = g.integration_id"
			"  WHERE i2.aws_account_id = i.aws_account_id AND i2.aws_region = i.aws_region))"
			" FROM s3grant.integrations i LEFT JOIN s3grant.integration_health h ON h.integration_id = i.id"
			" WHERE i.id = $1::bigint", 1, p);
	if (!res)
		return code;
	*ret = PQntuples(res) ? strtoull(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return CTL_OK;
}

static int plan_one(struct ctl *c, yajl_gen g, int64_t iid)
{
	struct pl x = { .c = c, .g = g };
	struct pgerr err;
	const char *why = NULL;
	int r, code = CTL_OK;

	intern_init(&x.pool);
	r = recon_inputs_load(c->conn, iid, NULL, &x.in, &err);
	if (r < 0) {
		code = ctl_fail(c, ctl_code(r), "%s", err.message);
		goto out;
	}
	switch (x.in.integ.status) {
	case RECON_CREATING:
	case RECON_CREATE_ERROR:
		x.note = "no plan: the location is not registered yet (the daemon validates and creates it first)";
		break;
	case RECON_DISABLED:
		x.note = "no plan: the integration is disabled";
		break;
	case RECON_DELETED:
		x.note = "no plan: the integration is deleted";
		break;
	default:
		break;
	}
	if (!x.note) {
		/* deleting: nothing is desired any more, every grant goes */
		int del = x.in.integ.status == RECON_DELETING || x.in.integ.status == RECON_DELETE_ERROR;

		r = desired_build(&x.pool, &x.in.integ.d, x.in.ds, x.in.nds, x.in.users, x.in.nusers, x.in.subs,
				  del ? 0 : x.in.nsubs, &x.set, &why);
		if (r < 0) {
			x.note = why ? why : "no plan: the integration cannot be planned";
		} else {
			x.have_set = true;
		}
	}
	if (!x.note) {
		if ((r = recon_grants_load(c->conn, iid, &x.pool, &x.act, &err)) < 0) {
			code = ctl_fail(c, ctl_code(r), "%s", err.message);
			goto out;
		}
		if ((code = quota_used(c, iid, &x.quota_used)) != CTL_OK)
			goto out;
		if (diff_compute(&x.set, x.act.v, x.act.n, &x.d) < 0) {
			code = ctl_fail(c, CTL_FAIL, "integration %lld: diff failed", (long long)iid);
			goto out;
		}
		x.have_diff = true;
		if (plan_build(&x.set, x.act.v, x.act.n, &x.d, &x.p) < 0) {
			code = ctl_fail(c, CTL_FAIL, "integration %lld: plan failed", (long long)iid);
			goto out;
		}
		x.have_plan = true;
		quota_apply(&x.p, x.quota_used, 0);
		for (size_t i = 0; i < x.p.n; i++) {
			const struct plan_step *s = &x.p.steps[i];

			if (s->op == PLAN_CREATE && s->status == PLAN_QUOTA)
				x.nquota++;
			else if (s->op == PLAN_CREATE && s->reason == PLAN_REPLACE)
				x.nreplace++;
			else if (s->op == PLAN_CREATE)
				x.ncreate++;
			else if (s->status == PLAN_BLOCKED)
				x.nblocked++;
			else if (s->after == PLAN_NONE)
				x.ndelete++;
		}
	}
	if (g)
		gen_plan(&x);
	else
		print_plan(&x);
out:
	if (x.have_plan)
		plan_free(&x.p);
	if (x.have_diff)
		diff_free(&x.d);
	if (x.have_set)
		desired_free(&x.set);
	recon_grants_free(&x.act);
	recon_inputs_free(&x.in);
	intern_free(&x.pool);
	return code;
}

int ctl_cmd_plan(struct ctl *c)
{
	PGresult *res;
	const char *p[1] = { c->integration };
	yajl_gen g = NULL;
	int code = CTL_OK;

	if (c->integration && strspn(c->integration, "0123456789") != strlen(c->integration))
		return ctl_fail(c, CTL_BADINPUT, "--integration: '%s' is not an integration id", c->integration);
	res = ctl_query(c, &code, "SELECT id FROM s3grant.integrations WHERE ($1::bigint IS NULL AND"
			" status <> 'deleted') OR id = $1::bigint ORDER BY id", 1, p);
	if (!res)
		return code;
	if (c->integration && PQntuples(res) == 0) {
		PQclear(res);
		return ctl_fail(c, CTL_NOTFOUND, "Integration with ID %s not found.", c->integration);
	}
	if (c->json) {
		g = ctl_gen();
		yajl_gen_map_open(g);
		ctl_gen_str(g, "integrations");
		yajl_gen_array_open(g);
	}
	for (int i = 0; i < PQntuples(res) && code == CTL_OK; i++)
		code = plan_one(c, g, strtoll(PQgetvalue(res, i, 0), NULL, 10));
	if (g) {
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		if (code == CTL_OK)
			ctl_gen_print(g);
		else
			yajl_gen_free(g);
	} else if (PQntuples(res) == 0) {
		printf("no integrations\n");
	}
	PQclear(res);
	return code;
}
