#include "core/grant.h"

#include <string.h>

#include "core/xalloc.h"

static const char *const grantee_names[GRANTEE_MAX_] = {
	[GRANTEE_IAM] = "IAM",
	[GRANTEE_DIRECTORY_USER] = "DIRECTORY_USER",
	[GRANTEE_DIRECTORY_GROUP] = "DIRECTORY_GROUP",
};

static const char *const perm_names[GRANT_PERM_MAX_] = {
	[GRANT_READ] = "READ",
	[GRANT_WRITE] = "WRITE",
	[GRANT_READWRITE] = "READWRITE",
};

const char *grant_grantee_name(enum grant_grantee t)
{
	return (unsigned)t < GRANTEE_MAX_ ? grantee_names[t] : "?";
}

const char *grant_perm_name(enum grant_perm p)
{
	return (unsigned)p < GRANT_PERM_MAX_ ? perm_names[p] : "?";
}

int grant_grantee_parse(const char *s, enum grant_grantee *ret)
{
	for (int i = 0; s && i < GRANTEE_MAX_; i++) {
		if (strcmp(s, grantee_names[i]) == 0) {
			*ret = (enum grant_grantee)i;
			return 0;
		}
	}
	return S3G_EINVAL;
}

int grant_perm_parse(const char *s, enum grant_perm *ret)
{
	for (int i = 0; s && i < GRANT_PERM_MAX_; i++) {
		if (strcmp(s, perm_names[i]) == 0) {
			*ret = (enum grant_perm)i;
			return 0;
		}
	}
	return S3G_EINVAL;
}

size_t grant_canon_sub_prefix_len(const char *s, size_t n)
{
	while (n >= 2 && s[n - 1] == '*' && s[n - 2] == '*')
		n--;
	return n;
}

static const char *opt(struct intern *in, const char *s)
{
	return s ? intern_str(in, s) : NULL;
}

int grant_make(struct intern *in, const char *grantee_type, const char *grantee_id, const char *permission,
	       const char *location_id, const char *sub_prefix, const char *grant_id, const char *grant_arn,
	       const char *grant_scope, struct grant *ret)
{
	enum grant_grantee t;
	enum grant_perm p;
	struct grant g = {0};
	size_t n;

	if (grant_grantee_parse(grantee_type, &t) < 0 || grant_perm_parse(permission, &p) < 0 || !grantee_id ||
	    !location_id)
		return S3G_EINVAL;
	if (!sub_prefix)
		sub_prefix = "";
	n = grant_canon_sub_prefix_len(sub_prefix, strlen(sub_prefix));
	g.grantee_type = (uint8_t)t;
	g.permission = (uint8_t)p;
	g.grantee_id = intern_str(in, grantee_id);
	g.location_id = intern_str(in, location_id);
	g.sub_prefix = intern_get(in, sub_prefix, n);
	g.grant_id = opt(in, grant_id);
	g.grant_arn = opt(in, grant_arn);
	g.grant_scope = opt(in, grant_scope);
	grant_set_hash(&g);
	*ret = g;
	return 0;
}

uint32_t grant_hash(const struct grant *g)
{
	uint32_t h = hash_bytes(g->grantee_id, strlen(g->grantee_id), g->grantee_type);

	h = hash_mix(h, hash_bytes(g->sub_prefix, strlen(g->sub_prefix), g->permission));
	return hash_mix(h, hash_bytes(g->location_id, strlen(g->location_id), 0));
}

void grant_set_hash(struct grant *g)
{
	g->hash = grant_hash(g);
}

static int str_eq(const char *a, const char *b)
{
	return a == b || strcmp(a, b) == 0;
}

int grant_key_eq(const struct grant *a, const struct grant *b)
{
	return a->grantee_type == b->grantee_type && a->permission == b->permission &&
	       str_eq(a->grantee_id, b->grantee_id) && str_eq(a->sub_prefix, b->sub_prefix) &&
	       str_eq(a->location_id, b->location_id);
}

int grant_key_cmp(const struct grant *a, const struct grant *b)
{
	int c;

	if ((c = strcmp(a->location_id, b->location_id)))
		return c;
	if ((c = strcmp(a->sub_prefix, b->sub_prefix)))
		return c;
	if (a->grantee_type != b->grantee_type)
		return a->grantee_type < b->grantee_type ? -1 : 1;
	if ((c = strcmp(a->grantee_id, b->grantee_id)))
		return c;
	if (a->permission != b->permission)
		return a->permission < b->permission ? -1 : 1;
	return 0;
}

int grant_matches_intent(const struct grant *intent, const struct grant *actual)
{
	return grant_key_eq(intent, actual);
}

char *grant_expected_scope(const char *location_scope, const char *sub_prefix)
{
	size_t n = strlen(location_scope);

	if (!sub_prefix || !*sub_prefix)
		return x_strdup(location_scope);
	if (n && location_scope[n - 1] == '/')
		return x_asprintf("%s%s", location_scope, sub_prefix);
	return x_asprintf("%s/%s", location_scope, sub_prefix);
}
