/* recon_scope.c — the inputs of a scoped pass, and the queue rows a whole
 * pass has covered (store/recon.h: recon_scope_load, recon_queue_seen,
 * recon_queue_absorb).
 *
 * A pass whose keys name a few users and subscriptions (or data sources no
 * subscription names) plans only the grantees those keys can affect (the
 * scope P). The desired grants of a grantee depend only on the users that
 * resolve to it, so recon_scope_load finds P (steps 1-3), the users
 * resolving into P with their subscriptions and data sources (4-6), and
 * P's recorded grants and intents (7-9), in one REPEATABLE READ READ ONLY
 * transaction, instead of the whole integration's rows. When it cannot
 * scope exactly it says why (info->fallback) and the caller loads the
 * whole integration.
 *
 * A whole pass notes the queue rows nobody holds before it reads its inputs
 * (recon_queue_seen) and deletes them once it has made every change it
 * planned (recon_queue_absorb): a backlog (100,000 keys of a bulk load) then
 * costs one pass, not a pass per claim.
 *
 * The queries and row parsers shared with recon.c are in recon_int.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "store/recon_int.h"

/* ---- scoped inputs ------------------------------------------------------ */

struct gref {
	const char *id;                /* interned: equal ids are equal pointers */
	uint8_t type;                  /* enum grant_grantee */
};

struct grefs {
	struct gref *v;
	size_t n, cap;
};

static void gref_add(struct grefs *s, const char *id, uint8_t type)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = x_realloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = (struct gref){ id, type };
}

static int gref_cmp(const void *a, const void *b)
{
	const struct gref *x = a, *y = b;
	uintptr_t p = (uintptr_t)x->id, q = (uintptr_t)y->id;

	if (p != q)
		return p < q ? -1 : 1;
	return (int)x->type - (int)y->type;
}

/* Sort and drop repeats. */
static void gref_sort(struct grefs *s)
{
	size_t k = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), gref_cmp);
	for (size_t i = 1; i < s->n; i++)
		if (gref_cmp(&s->v[i], &s->v[k]) != 0)
			s->v[++k] = s->v[i];
	s->n = k + 1;
}

static bool gref_has(const struct grefs *s, const char *id, uint8_t type)
{
	struct gref key = { id, type };

	return s->n && bsearch(&key, s->v, s->n, sizeof(*s->v), gref_cmp) != NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and drop repeats; the new count. */
static size_t i64_uniq(int64_t *v, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_i64);
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[k])
			v[++k] = v[i];
	return k + 1;
}

static bool i64_has(const int64_t *v, size_t n, int64_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_i64) != NULL;
}

/* A bigint[] literal "{1,2}" ("{}" when n == 0). */
static int i64s_literal(struct buf *b, const int64_t *v, size_t n)
{
	int r = buf_puts(b, "{");

	for (size_t i = 0; i < n && r == 0; i++)
		r = buf_printf(b, "%s%" PRId64, i ? "," : "", v[i]);
	return r ? r : buf_puts(b, "}");
}

/* Append one element of a text[] literal: quoted, \ and " escaped. */
static int arr_str_add(struct buf *b, const char *s)
{
	int r = buf_puts(b, b->len > 1 ? ",\"" : "\"");

	for (const char *p = s; *p && r == 0; p++) {
		if (*p == '\\' || *p == '"')
			r = buf_append(b, "\\", 1);
		if (r == 0)
			r = buf_append(b, p, 1);
	}
	return r ? r : buf_puts(b, "\"");
}

static int64_t text_i64(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

struct pair {
	int64_t a, b;
};

static int cmp_pair(const void *x, const void *y)
{
	const struct pair *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return p->b < q->b ? -1 : p->b > q->b;
}

/* SQL texts of recon_scope_load (text results, except the grants). */
#define SCOPE_USERS_SQL "SELECT id, username, principal FROM s3grant.users WHERE id = ANY ($1::bigint[])"
#define SCOPE_KEYED_SUBS_SQL \
	"SELECT s.id, s.user_id, s.data_source_id FROM s3grant.subscriptions s" \
	" JOIN s3grant.data_sources d ON d.id = s.data_source_id" \
	" WHERE d.integration_id = $1::bigint AND s.user_id = ANY ($2::bigint[])"
#define SCOPE_DS_SQL \
	"SELECT id, prefix FROM s3grant.data_sources WHERE integration_id = $1::bigint AND id = ANY ($2::bigint[])" \
	" ORDER BY id"
#define SCOPE_SERVED_SQL \
	"SELECT g.grantee_type, g.grantee_id FROM s3grant.grants g" \
	" WHERE g.subscription_id = ANY ($2::bigint[]) AND g.integration_id = $1::bigint" \
	" UNION ALL SELECT g.grantee_type, g.grantee_id FROM s3grant.grants g" \
	" WHERE g.integration_id = $1::bigint AND g.subscription_id IS NULL AND g.sub_prefix = ANY ($3::text[])"
#define SCOPE_RESOLVING_SQL \
	"SELECT u.id, u.username, u.principal FROM s3grant.users u" \
	" WHERE (u.principal = ANY ($2::text[]) OR (u.principal IS NULL AND u.username = ANY ($3::text[])))" \
	" AND EXISTS (SELECT 1 FROM s3grant.subscriptions s JOIN s3grant.data_sources d ON d.id = s.data_source_id" \
	"  WHERE s.user_id = u.id AND d.integration_id = $1::bigint) ORDER BY u.id"
#define SCOPE_SUBS_SQL \
	"SELECT s.id, s.user_id, s.data_source_id, s.access FROM s3grant.subscriptions s" \
	" JOIN s3grant.data_sources d ON d.id = s.data_source_id" \
	" WHERE d.integration_id = $1::bigint AND s.user_id = ANY ($2::bigint[]) ORDER BY s.id"

struct scope_ctx {
	PGconn *conn;
	const char *id;                /* the integration id, text */
	struct intern *pool;
	struct recon_inputs in;
	struct grefs P;
	struct buf a, b;
	PGresult *ku, *ks, *kd, *rows;
	const char *fallback;
	struct pgerr *err;
};

#define SCOPE_NEW_DS_SQL \
	"SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM s3grant.subscriptions s WHERE s.data_source_id = d.id))," \
	" count(*) FROM s3grant.data_sources d WHERE d.integration_id = $1::bigint AND d.id = ANY ($2::bigint[])"

/* d: keys (user_id 0): a data source no subscription names gives no grant
 * and takes none away (its subscriptions' removal has keys of their own);
 * any other data source change has no scope. */
static int scope_data_sources(struct scope_ctx *c, const struct recon_scope_key *keys, size_t nkeys)
{
	int64_t *ids = x_calloc(nkeys + 1, sizeof(*ids));
	const char *p[2] = { c->id, NULL };
	PGresult *res = NULL;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < nkeys; i++)
		if (!keys[i].user_id)
			ids[n++] = keys[i].data_source_id;
	n = i64_uniq(ids, n);
	if (!n) {
		x_free(ids);
		return 0;
	}
	buf_reset(&c->a);
	r = i64s_literal(&c->a, ids, n);
	x_free(ids);
	p[1] = buf_str(&c->a);
	if (r == 0)
		r = rs_run(c->conn, SCOPE_NEW_DS_SQL, 2, p, 0, &res, c->err);
	if (r < 0)
		return r;
	if (text_i64(res, 0, 0) != 0 || (size_t)text_i64(res, 0, 1) != n)
		c->fallback = "a data source with subscriptions, or a removed one, changed";
	PQclear(res);
	return 0;
}

/* Steps 1-3: P from the keyed users, their subscriptions, the gone ones. */
static int scope_grantees(struct scope_ctx *c, const struct recon_scope_key *keys, size_t nkeys,
			  const struct recon_scope_max *max, struct recon_scope_info *info)
{
	const char *acct = c->in.integ.d.account;
	int64_t *uids = x_calloc(nkeys + 1, sizeof(*uids)), *subids = NULL, *gone = NULL;
	struct pair *have = NULL;
	const char *p[3];
	int64_t *dsids = NULL;
	size_t nu, nks, nuk = 0, nsub = 0, ngone = 0, nds = 0;
	int r;

	nu = 0;
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].user_id)
			uids[nu++] = keys[i].user_id;
	nu = i64_uniq(uids, nu);
	buf_reset(&c->a);
	r = i64s_literal(&c->a, uids, nu);
	x_free(uids);
	if (r < 0)
		return r;
	p[0] = buf_str(&c->a);
	r = rs_run(c->conn, SCOPE_USERS_SQL, 1, p, 0, &c->ku, c->err);
	if (r < 0)
		return r;
	if ((size_t)PQntuples(c->ku) != nu) {
		c->fallback = "a changed user no longer exists";
		return 0;
	}
	info->nkeyed = nu;
	for (int i = 0; i < PQntuples(c->ku); i++) {
		struct desired_user u = { text_i64(c->ku, i, 0), PQgetvalue(c->ku, i, 1), get_str(c->ku, i, 2) };
		const char *g, *why;
		uint8_t t;

		if (desired_principal(c->pool, acct, &u, &t, &g, &why) == 0)
			gref_add(&c->P, g, t);
	}

	p[0] = c->id;
	p[1] = buf_str(&c->a);
	r = rs_run(c->conn, SCOPE_KEYED_SUBS_SQL, 2, p, 0, &c->ks, c->err);
	if (r < 0)
		return r;
	nks = (size_t)PQntuples(c->ks);
	if (nu > max->users || nks > max->subscriptions) {
		c->fallback = "more users or subscriptions than a scoped pass takes";
		return 0;
	}
	subids = x_calloc(nks + 1, sizeof(*subids));
	have = x_calloc(nks + 1, sizeof(*have));
	dsids = x_calloc(nks + nkeys + 1, sizeof(*dsids));
	/* users with a u: key: their principal may have changed, so their
	 * grants are looked up through the subscriptions they serve */
	uids = x_calloc(nkeys + 1, sizeof(*uids));
	for (size_t i = 0; i < nkeys; i++)
		if (!keys[i].data_source_id)
			uids[nuk++] = keys[i].user_id;
	nuk = i64_uniq(uids, nuk);
	for (size_t i = 0; i < nks; i++) {
		int64_t uid = text_i64(c->ks, (int)i, 1), dsid = text_i64(c->ks, (int)i, 2);

		if (i64_has(uids, nuk, uid)) {
			subids[nsub++] = text_i64(c->ks, (int)i, 0);
			dsids[nds++] = dsid;
		}
		have[i] = (struct pair){ uid, dsid };
	}
	x_free(uids);
	qsort(have, nks, sizeof(*have), cmp_pair);
	/* keys whose subscription is gone */
	gone = x_calloc(nkeys + 1, sizeof(*gone));
	for (size_t i = 0; i < nkeys; i++) {
		struct pair k = { keys[i].user_id, keys[i].data_source_id };

		if (k.a && k.b && !(nks && bsearch(&k, have, nks, sizeof(*have), cmp_pair))) {
			gone[ngone++] = k.b;
			dsids[nds++] = k.b;
		}
	}
	x_free(have);
	ngone = i64_uniq(gone, ngone);
	nds = i64_uniq(dsids, nds);
	/* the sub-prefixes of those data sources */
	buf_reset(&c->b);
	r = buf_puts(&c->b, "{");
	if (r == 0 && nds) {
		size_t found = 0;

		buf_reset(&c->a);
		r = i64s_literal(&c->a, dsids, nds);
		p[1] = buf_str(&c->a);
		if (r == 0)
			r = rs_run(c->conn, SCOPE_DS_SQL, 2, p, 0, &c->kd, c->err);
		for (int i = 0; r == 0 && i < PQntuples(c->kd); i++) {
			struct desired_data_source d = { text_i64(c->kd, i, 0), PQgetvalue(c->kd, i, 1) };
			const char *sp, *why;

			found += i64_has(gone, ngone, d.id);
			if (desired_sub_prefix(c->pool, c->in.integ.d.location_scope, &d, &sp, &why) == 0)
				r = arr_str_add(&c->b, sp);
		}
		if (r == 0 && found != ngone)
			c->fallback = "a changed data source no longer exists";
	}
	x_free(gone);
	x_free(dsids);
	if (r == 0)
		r = buf_puts(&c->b, "}");
	if (r < 0 || c->fallback) {
		x_free(subids);
		return r;
	}

	/* recorded grants whose first subscription is one of a u:-keyed user's,
	 * or that have none left, at those data sources' prefixes */
	nsub = i64_uniq(subids, nsub);
	buf_reset(&c->a);
	r = i64s_literal(&c->a, subids, nsub);
	x_free(subids);
	p[1] = buf_str(&c->a);
	p[2] = buf_str(&c->b);
	if (r == 0 && (nsub || c->b.len > 2))
		r = rs_run(c->conn, SCOPE_SERVED_SQL, 3, p, 0, &c->rows, c->err);
	for (int i = 0; r == 0 && i < PQntuples(c->rows); i++) {
		enum grant_grantee t;

		if (grant_grantee_parse(PQgetvalue(c->rows, i, 0), &t) < 0) {
			r = bad_row(c->err, "grantee type", i);
			break;
		}
		gref_add(&c->P, intern_str(c->pool, PQgetvalue(c->rows, i, 1)), (uint8_t)t);
	}
	if (r < 0)
		return r;
	gref_sort(&c->P);
	info->ngrantees = c->P.n;
	if (c->P.n > max->users)
		c->fallback = "more grantees than a scoped pass takes";
	return 0;
}

/* Steps 4-6: the users resolving into P, their subscriptions and data sources. */
static int scope_inputs(struct scope_ctx *c, const struct recon_scope_max *max, struct recon_scope_info *info)
{
	struct recon_inputs *in = &c->in;
	const char *acct = in->integ.d.account;
	const char *p[3] = { c->id };
	int64_t *ids;
	size_t n, nids = 0;
	int r = 0;

	buf_reset(&c->a);
	buf_reset(&c->b);
	if (buf_puts(&c->a, "{") < 0 || buf_puts(&c->b, "{") < 0)
		return S3G_ETOOBIG;
	for (size_t i = 0; i < c->P.n && r == 0; i++) {
		size_t nl;
		const char *name = desired_unset_name(acct, c->P.v[i].id, &nl);

		r = arr_str_add(&c->a, c->P.v[i].id);
		if (r == 0 && name)
			r = arr_str_add(&c->b, name);
	}
	if (r == 0)
		r = buf_puts(&c->a, "}");
	if (r == 0)
		r = buf_puts(&c->b, "}");
	if (r < 0)
		return r;
	p[1] = buf_str(&c->a);
	p[2] = buf_str(&c->b);
	r = rs_run(c->conn, SCOPE_RESOLVING_SQL, 3, p, 0, &in->res[2], c->err);
	if (r < 0)
		return r;
	n = (size_t)PQntuples(in->res[2]);
	in->users = x_calloc(n + 1, sizeof(*in->users));
	for (size_t i = 0; i < n; i++) {
		struct desired_user u = { text_i64(in->res[2], (int)i, 0), PQgetvalue(in->res[2], (int)i, 1),
					  get_str(in->res[2], (int)i, 2) };
		const char *g, *why;
		uint8_t t;

		if (desired_principal(c->pool, acct, &u, &t, &g, &why) == 0 && gref_has(&c->P, g, t))
			in->users[in->nusers++] = u;
	}
	/* a keyed user that resolves to no grantee: its subscriptions are rejected */
	in->users = x_realloc(in->users, (in->nusers + (size_t)PQntuples(c->ku) + 1) * sizeof(*in->users));
	for (int i = 0; i < PQntuples(c->ku); i++) {
		struct desired_user u = { text_i64(c->ku, i, 0), PQgetvalue(c->ku, i, 1), get_str(c->ku, i, 2) };
		const char *g, *why;
		uint8_t t;

		if (desired_principal(c->pool, acct, &u, &t, &g, &why) < 0)
			in->users[in->nusers++] = u;
	}
	info->nusers = in->nusers;
	if (in->nusers > max->users) {
		c->fallback = "more users than a scoped pass takes";
		return 0;
	}

	ids = x_calloc(in->nusers + 1, sizeof(*ids));
	for (size_t i = 0; i < in->nusers; i++)
		ids[i] = in->users[i].id;
	buf_reset(&c->a);
	r = i64s_literal(&c->a, ids, in->nusers);
	x_free(ids);
	p[1] = buf_str(&c->a);
	if (r == 0)
		r = rs_run(c->conn, SCOPE_SUBS_SQL, 2, p, 0, &in->res[3], c->err);
	if (r < 0)
		return r;
	n = (size_t)PQntuples(in->res[3]);
	if (n > max->subscriptions) {
		c->fallback = "more subscriptions than a scoped pass takes";
		return 0;
	}
	in->subs = x_calloc(n + 1, sizeof(*in->subs));
	ids = x_calloc(n + 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		struct desired_subscription *s = &in->subs[i];

		s->id = text_i64(in->res[3], (int)i, 0);
		s->user_id = text_i64(in->res[3], (int)i, 1);
		s->data_source_id = text_i64(in->res[3], (int)i, 2);
		s->access = PQgetvalue(in->res[3], (int)i, 3);
		ids[nids++] = s->data_source_id;
	}
	in->nsubs = n;
	nids = i64_uniq(ids, nids);
	buf_reset(&c->a);
	r = i64s_literal(&c->a, ids, nids);
	x_free(ids);
	p[1] = buf_str(&c->a);
	if (r == 0)
		r = rs_run(c->conn, SCOPE_DS_SQL, 2, p, 0, &in->res[1], c->err);
	if (r < 0)
		return r;
	n = (size_t)PQntuples(in->res[1]);
	in->ds = x_calloc(n + 1, sizeof(*in->ds));
	for (size_t i = 0; i < n; i++)
		in->ds[i] = (struct desired_data_source){ text_i64(in->res[1], (int)i, 0),
							  PQgetvalue(in->res[1], (int)i, 1) };
	in->nds = n;
	rs_keep_strings(in);
	return 0;
}

/* The intents of P's grantees (c->a holds their ids), as recon_intents_load
 * reads them: by grantee, so that the dead rows a bulk create leaves behind
 * (100,000 intents written and resolved) are not read on every pass. */
static int scope_intents(struct scope_ctx *c, struct recon_intents *ret)
{
	const char *p[2] = { c->id, buf_str(&c->a) };
	PGresult *res = NULL;
	int r;

	r = rs_run(c->conn, INTENTS_SELECT " WHERE integration_id = $1::bigint AND grantee_id = ANY ($2::text[])"
		   " ORDER BY id", 2, p, 1, &res, c->err);
	if (r == 0)
		r = rs_intents_parse(res, c->pool, ret, c->err);
	PQclear(res);
	return r;
}

/* Steps 7-9: the recorded grants and intents of P; the integration's count. */
static int scope_actual(struct scope_ctx *c, int64_t iid, bool want_count, struct recon_grants *ret_act,
			struct recon_intents *ret_its, struct recon_scope_info *info)
{
	struct grants_rows x = { .in = c->pool, .err = c->err };
	struct recon_intents its = { 0 };
	const char *p[2] = { c->id, NULL };
	size_t k = 0;
	int r;

	/* P's ids again (scope_inputs reused the buffer) */
	buf_reset(&c->a);
	r = buf_puts(&c->a, "{");
	for (size_t i = 0; i < c->P.n && r == 0; i++)
		r = arr_str_add(&c->a, c->P.v[i].id);
	if (r == 0)
		r = buf_puts(&c->a, "}");
	if (r < 0)
		return r;
	p[1] = buf_str(&c->a);
	r = rs_run_rows(c->conn, GRANTS_SELECT " WHERE g.integration_id = $1::bigint"
			" AND g.grantee_id = ANY ($2::text[]) ORDER BY g.grant_id", 2, p, 1, rs_grants_row, &x, c->err);
	if (r < 0) {
		recon_grants_free(&x.g);
		return r;
	}
	for (size_t i = 0; i < x.g.n; i++)
		if (gref_has(&c->P, x.g.v[i].grantee_id, x.g.v[i].grantee_type)) {
			x.g.v[k] = x.g.v[i];
			x.g.created_ms[k++] = x.g.created_ms[i];
		}
	x.g.n = k;
	if (!x.g.v) {   /* callers may index v[0] of an empty set */
		x.g.v = x_calloc(1, sizeof(*x.g.v));
		x.g.created_ms = x_calloc(1, sizeof(*x.g.created_ms));
	}
	r = scope_intents(c, &its);
	if (r < 0) {
		recon_grants_free(&x.g);
		return r;
	}
	k = 0;
	for (size_t i = 0; i < its.n; i++)
		if (gref_has(&c->P, its.v[i].g.grantee_id, its.v[i].g.grantee_type))
			its.v[k++] = its.v[i];
	its.n = k;
	if (x.g.n) {   /* deletes may free quota room (nothing else can) */
		PGresult *res = NULL;

		r = rs_run(c->conn, "SELECT EXISTS (SELECT 1 FROM s3grant.subscriptions s JOIN s3grant.data_sources d"
			" ON d.id = s.data_source_id WHERE d.integration_id = $1::bigint AND s.status = 'quota')", 1, p, 0,
			&res, c->err);
		if (r == 0)
			info->quota_waiting = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (r < 0) {
			recon_grants_free(&x.g);
			recon_intents_free(&its);
			return r;
		}
	}
	if (want_count) {
		PGresult *res = NULL;

		r = rs_run(c->conn, "SELECT count(*) FROM s3grant.grants WHERE integration_id = $1::bigint", 1, p, 0,
			&res, c->err);
		if (r == 0)
			info->recorded = text_i64(res, 0, 0);
		PQclear(res);
		if (r < 0) {
			recon_grants_free(&x.g);
			recon_intents_free(&its);
			return r;
		}
	}
	*ret_act = x.g;
	*ret_its = its;
	return 0;
}

int recon_scope_load(PGconn *conn, int64_t iid, const struct secrets_key *key, const struct recon_scope_key *keys,
		     size_t nkeys, const struct recon_scope_max *max, bool want_count, struct intern *pool,
		     struct recon_inputs *ret_in,
		     struct recon_grants *ret_act, struct recon_intents *ret_intents, struct recon_scope_info *info,
		     struct pgerr *err)
{
	struct scope_ctx c = { .conn = conn, .pool = pool, .err = err };
	struct recon_grants act = { 0 };
	struct recon_intents its = { 0 };
	char id[24];
	const char *p[1] = { id };
	int r;

	memset(info, 0, sizeof(*info));
	info->recorded = -1;
	i64_str(iid, id);
	c.id = id;
	buf_init(&c.a, 0);
	buf_init(&c.b, 0);
	r = rs_script(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err);
	if (r < 0)
		goto out;
	r = rs_run(conn, INTEGRATION_SQL, 1, p, 1, &c.in.res[0], err);
	if (r < 0)
		goto out;
	if (PQntuples(c.in.res[0]) != 1) {
		c.fallback = "the integration does not exist";
		goto out;
	}
	r = rs_parse_integration(c.in.res[0], key, &c.in.integ, err);
	if (r < 0)
		goto out;
	if (c.in.integ.status != RECON_ENABLED && c.in.integ.status != RECON_RECURRING_VALIDATION_ERROR) {
		c.fallback = "the integration is not enabled";
		goto out;
	}
	r = scope_data_sources(&c, keys, nkeys);
	if (r < 0 || c.fallback)
		goto out;
	r = scope_grantees(&c, keys, nkeys, max, info);
	if (r < 0 || c.fallback)
		goto out;
	r = scope_inputs(&c, max, info);
	if (r < 0 || c.fallback)
		goto out;
	r = scope_actual(&c, iid, want_count, &act, &its, info);
	if (r < 0)
		goto out;
	r = rs_script(conn, "COMMIT", err);
out:
	rollback(conn);
	PQclear(c.ku);
	PQclear(c.ks);
	PQclear(c.kd);
	PQclear(c.rows);
	x_free(c.P.v);
	buf_free(&c.a);
	buf_free(&c.b);
	if (r < 0 || c.fallback) {
		recon_inputs_free(&c.in);
		recon_grants_free(&act);
		recon_intents_free(&its);
		info->fallback = c.fallback;
		return r;
	}
	*ret_in = c.in;
	*ret_act = act;
	*ret_intents = its;
	return 0;
}

/* ---- changes a whole pass has done -------------------------------------- */

struct seq_rows {
	int64_t *v;
	size_t n, cap;
	struct pgerr *err;
};

static int seq_row(const PGresult *res, int i, void *user)
{
	struct seq_rows *x = user;

	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 256;
		x->v = x_realloc(x->v, x->cap * sizeof(*x->v));
	}
	if (get_i64(res, i, 0, &x->v[x->n]) < 0)
		return bad_row(x->err, "queue seq", (int)x->n);
	x->n++;
	return 0;
}

int recon_queue_seen(PGconn *conn, int64_t iid, int64_t **ret_seqs, size_t *ret_n, struct pgerr *err)
{
	struct seq_rows x = { .err = err };
	char id[24];
	const char *p[1] = { id };
	int r;

	i64_str(iid, id);
	/* streamed: a 100,000-key backlog is never one PGresult */
	r = rs_run_rows(conn, "SELECT seq FROM s3grant.change_queue WHERE integration_id = $1::bigint"
			" AND locked_by IS NULL", 1, p, 1, seq_row, &x, err);
	if (r < 0) {
		x_free(x.v);
		return r;
	}
	*ret_seqs = x.v;
	*ret_n = x.n;
	return 0;
}

int recon_queue_absorb(PGconn *conn, int64_t iid, const int64_t *seqs, size_t n, size_t *ret_deleted,
		       struct pgerr *err)
{
	PGresult *res = NULL;
	struct buf a;
	char id[24];
	const char *p[2] = { id, NULL };
	int r;

	if (ret_deleted)
		*ret_deleted = 0;
	if (!n)
		return 0;
	i64_str(iid, id);
	buf_init(&a, 0);
	r = i64s_literal(&a, seqs, n);
	p[1] = buf_str(&a);
	if (r == 0)
		r = rs_run(conn, "DELETE FROM s3grant.change_queue WHERE integration_id = $1::bigint"
			" AND seq = ANY ($2::bigint[]) AND locked_by IS NULL", 2, p, 0, &res, err);
	buf_free(&a);
	if (r < 0)
		return r;
	if (ret_deleted)
		*ret_deleted = strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}
