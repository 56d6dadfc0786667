#include "core/desired.h"

#include <string.h>

#include "core/validate.h"
#include "core/xalloc.h"

#define NONE UINT32_MAX

struct id_key {
	const void *rows;
	size_t stride;   /* bytes per row; the int64 id is the first member */
};

static int id_eq(uint32_t idx, const void *key, void *user)
{
	const struct id_key *k = user;
	int64_t id;

	memcpy(&id, (const char *)k->rows + (size_t)idx * k->stride, sizeof(id));
	return id == *(const int64_t *)key;
}

static void index_ids(struct hidx *h, const void *rows, size_t n, size_t stride)
{
	hidx_reserve(h, n);
	for (size_t i = 0; i < n; i++) {
		int64_t id;

		memcpy(&id, (const char *)rows + i * stride, sizeof(id));
		hidx_insert(h, hash_u64((uint64_t)id), (uint32_t)i);
	}
}

static int lookup_id(const struct hidx *h, const void *rows, size_t stride, int64_t id, uint32_t *ret)
{
	struct id_key k = {rows, stride};

	return hidx_find(h, hash_u64((uint64_t)id), id_eq, &id, &k, ret, NULL);
}

static int grant_eq(uint32_t idx, const void *key, void *user)
{
	const struct desired_set *set = user;

	return grant_key_eq(&set->v[idx].g, key);
}

int desired_find(const struct desired_set *set, const struct grant *g, size_t *ret_idx)
{
	uint32_t i;
	int r = hidx_find(&set->idx, g->hash, grant_eq, g, (void *)(uintptr_t)set, &i, NULL);

	if (r == 0)
		*ret_idx = i;
	return r;
}

static void reject(struct desired_set *set, int64_t sub_id, const char *why)
{
	if (set->nrej == set->rej_cap) {
		set->rej_cap = set->rej_cap ? set->rej_cap * 2 : 16;
		set->rej = x_realloc(set->rej, set->rej_cap * sizeof(*set->rej));
	}
	set->rej[set->nrej].subscription_id = sub_id;
	set->rej[set->nrej].reason = why;
	set->nrej++;
}

static void add_link(struct desired_set *set, struct desired_grant *d, int64_t sub_id)
{
	uint32_t *tail = &d->more;

	if (set->nlinks == set->links_cap) {
		set->links_cap = set->links_cap ? set->links_cap * 2 : 16;
		set->links = x_realloc(set->links, set->links_cap * sizeof(*set->links));
	}
	while (*tail != NONE)
		tail = &set->links[*tail].next;
	set->links[set->nlinks].subscription_id = sub_id;
	set->links[set->nlinks].next = NONE;
	*tail = (uint32_t)set->nlinks++;
	d->nsubs++;
}

struct user_out {
	const char *grantee;   /* interned; NULL when rejected */
	const char *why;
	uint8_t type;
};

static void resolve_user(struct intern *in, const char *account, const struct desired_user *u,
			 struct user_out *out)
{
	enum validate_principal kind;
	const char *p = u->principal;

	out->grantee = NULL;
	if (!p || !*p) {
		char arn[128];
		size_t nl = u->name ? strlen(u->name) : 0;

		if (validate_iam_name(u->name ? u->name : "", nl, &out->why) < 0) {
			out->why = "principal: unset, and the user name is not a valid IAM user name";
			return;
		}
		/* "arn:aws:iam::" + 12 + ":user/" + ≤ 64 */
		memcpy(arn, "arn:aws:iam::", 13);
		memcpy(arn + 13, account, 12);
		memcpy(arn + 25, ":user/", 6);
		memcpy(arn + 31, u->name, nl);
		out->grantee = intern_get(in, arn, 31 + nl);
		out->type = GRANTEE_IAM;
		return;
	}
	if (validate_principal(p, strlen(p), &kind, &out->why) < 0)
		return;
	out->type = kind == VALIDATE_DIRECTORY_USER ? GRANTEE_DIRECTORY_USER : GRANTEE_IAM;
	out->grantee = intern_str(in, p);
}

int desired_principal(struct intern *in, const char *account, const struct desired_user *u, uint8_t *ret_type,
		      const char **ret_grantee, const char **ret_why)
{
	struct user_out o = {0};
	const char *why = NULL;

	if (!account || validate_account(account, strlen(account), &why) < 0) {
		if (ret_why)
			*ret_why = why ? why : "account: missing";
		return S3G_EINVAL;
	}
	resolve_user(in, account, u, &o);
	if (!o.grantee) {
		if (ret_why)
			*ret_why = o.why;
		return S3G_EINVAL;
	}
	*ret_type = o.type;
	*ret_grantee = o.grantee;
	return 0;
}

const char *desired_unset_name(const char *account, const char *grantee, size_t *ret_len)
{
	size_t n;

	if (!account || strlen(account) != 12 || !grantee || strncmp(grantee, "arn:aws:iam::", 13) != 0 ||
	    strncmp(grantee + 13, account, 12) != 0 || strncmp(grantee + 25, ":user/", 6) != 0)
		return NULL;
	n = strlen(grantee + 31);
	if (!n || memchr(grantee + 31, '/', n))
		return NULL;
	*ret_len = n;
	return grantee + 31;
}

struct ds_out {
	const char *sub_prefix;   /* interned; NULL when rejected */
	const char *why;
};

static void resolve_ds(struct intern *in, const char *scope, const struct desired_data_source *d,
		       struct ds_out *out)
{
	char sub[VALIDATE_PREFIX_MAX + 8];
	size_t off, len, n, scope_len = strlen(scope);
	int def = scope_len == 5;
	const char *p = d->prefix ? d->prefix : "";

	out->sub_prefix = NULL;
	if (validate_prefix(scope, p, strlen(p), &off, &len, &out->why) < 0)
		return;
	memcpy(sub, p + off, len);
	n = len;
	if (def && !memchr(p + off, '/', len))
		sub[n++] = '/';   /* a whole bucket: "bucket/" + '*' */
	if (n)
		sub[n++] = '*';
	/* GrantScope = scope [+ "/"] + sub-prefix must fit in an S3Prefix */
	if (scope_len + (def || !n ? 0 : 1) + n > VALIDATE_PREFIX_MAX) {
		out->why = "prefix: the final path is longer than 2000 characters";
		return;
	}
	out->sub_prefix = intern_get(in, sub, n);
}

int desired_sub_prefix(struct intern *in, const char *location_scope, const struct desired_data_source *d,
		       const char **ret_sub_prefix, const char **ret_why)
{
	const char *scope = location_scope ? location_scope : "";
	const char *why = NULL;
	struct ds_out o = {0};

	if (validate_location_scope(scope, strlen(scope), NULL, &why) < 0) {
		if (ret_why)
			*ret_why = why;
		return S3G_EINVAL;
	}
	resolve_ds(in, scope, d, &o);
	if (!o.sub_prefix) {
		if (ret_why)
			*ret_why = o.why;
		return S3G_EINVAL;
	}
	*ret_sub_prefix = o.sub_prefix;
	return 0;
}

int desired_build(struct intern *in, const struct desired_integration *integ,
		  const struct desired_data_source *ds, size_t nds, const struct desired_user *users, size_t nusers,
		  const struct desired_subscription *subs, size_t nsubs, struct desired_set *ret,
		  const char **ret_why)
{
	struct desired_set set;
	struct hidx uidx, didx;
	struct user_out *uo = NULL;
	struct ds_out *dso = NULL;
	const char *scope = integ->location_scope ? integ->location_scope : "";
	const char *why = NULL;
	if (!integ->account)
		why = "account: missing";
	else if (validate_account(integ->account, strlen(integ->account), &why) == 0 &&
		 validate_location_scope(scope, strlen(scope), NULL, &why) == 0 && !integ->location_id &&
		 strcmp(scope, "s3://") != 0)
		why = "location_id: the location is not registered yet";
	else if (nsubs >= NONE || nds >= NONE || nusers >= NONE)
		why = "subscriptions: too many rows";
	if (why) {
		if (ret_why)
			*ret_why = why;
		return S3G_EINVAL;
	}

	memset(&set, 0, sizeof(set));
	hidx_init(&set.idx);
	hidx_init(&uidx);
	hidx_init(&didx);
	set.location_id = intern_str(in, integ->location_id ? integ->location_id : "default");
	index_ids(&uidx, users, nusers, sizeof(*users));
	index_ids(&didx, ds, nds, sizeof(*ds));
	uo = x_calloc(nusers + 1, sizeof(*uo));
	dso = x_calloc(nds + 1, sizeof(*dso));
	for (size_t i = 0; i < nusers; i++)
		resolve_user(in, integ->account, &users[i], &uo[i]);
	for (size_t i = 0; i < nds; i++)
		resolve_ds(in, scope, &ds[i], &dso[i]);
	hidx_reserve(&set.idx, nsubs);

	for (size_t i = 0; i < nsubs; i++) {
		const struct desired_subscription *s = &subs[i];
		struct grant g = {0};
		enum grant_perm perm;
		uint32_t ui, di;
		size_t found;

		if (lookup_id(&uidx, users, sizeof(*users), s->user_id, &ui) < 0) {
			reject(&set, s->id, "user_id: no such user");
			continue;
		}
		if (lookup_id(&didx, ds, sizeof(*ds), s->data_source_id, &di) < 0) {
			reject(&set, s->id, "data_source_id: no such data source");
			continue;
		}
		if (!s->access || validate_access(s->access, strlen(s->access), &perm, &why) < 0) {
			reject(&set, s->id, s->access ? why : "access: must be read or write");
			continue;
		}
		if (!uo[ui].grantee) {
			reject(&set, s->id, uo[ui].why);
			continue;
		}
		if (!dso[di].sub_prefix) {
			reject(&set, s->id, dso[di].why);
			continue;
		}
		g.grantee_type = uo[ui].type;
		g.grantee_id = uo[ui].grantee;
		g.permission = (uint8_t)perm;
		g.location_id = set.location_id;
		g.sub_prefix = dso[di].sub_prefix;
		g.subscription_id = s->id;
		grant_set_hash(&g);
		if (desired_find(&set, &g, &found) == 0) {
			add_link(&set, &set.v[found], s->id);
			continue;
		}
		if (set.n == set.cap) {
			set.cap = set.cap ? set.cap * 2 : 64;
			set.v = x_realloc(set.v, set.cap * sizeof(*set.v));
		}
		set.v[set.n].g = g;
		set.v[set.n].more = NONE;
		set.v[set.n].nsubs = 1;
		hidx_insert(&set.idx, g.hash, (uint32_t)set.n);
		set.n++;
	}
	if (set.cap > set.n + set.n / 16 + 64) {   /* the set lives long: give back the doubling slack */
		set.cap = set.n ? set.n : 1;
		set.v = x_realloc(set.v, set.cap * sizeof(*set.v));
	}
	*ret = set;
	x_free(uo);
	x_free(dso);
	hidx_free(&uidx);
	hidx_free(&didx);
	return 0;
}

void desired_free(struct desired_set *set)
{
	if (!set)
		return;
	x_free(set->v);
	x_free(set->links);
	x_free(set->rej);
	hidx_free(&set->idx);
	memset(set, 0, sizeof(*set));
}

int desired_serves(const struct desired_set *set, size_t i, int64_t sub_id)
{
	const struct desired_grant *d = &set->v[i];

	if (d->g.subscription_id == sub_id)
		return 1;
	for (uint32_t l = d->more; l != NONE; l = set->links[l].next)
		if (set->links[l].subscription_id == sub_id)
			return 1;
	return 0;
}

size_t desired_subscriptions(const struct desired_set *set, size_t i, int64_t *out, size_t max)
{
	const struct desired_grant *d = &set->v[i];
	size_t n = 0;

	if (n < max)
		out[n] = d->g.subscription_id;
	n++;
	for (uint32_t l = d->more; l != NONE; l = set->links[l].next) {
		if (n < max)
			out[n] = set->links[l].subscription_id;
		n++;
	}
	return n;
}

size_t desired_bytes(const struct desired_set *set)
{
	return set->cap * sizeof(*set->v) + set->links_cap * sizeof(*set->links) +
	       set->rej_cap * sizeof(*set->rej) + hidx_bytes(&set->idx);
}
