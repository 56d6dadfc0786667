#include "aws/profile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

static const char *const source_names[CRED_SOURCE_MAX_] = {
	[CRED_SOURCE_NONE] = "none",
	[CRED_SOURCE_STATIC] = "static",
	[CRED_SOURCE_ENVIRONMENT] = "environment",
	[CRED_SOURCE_WEB_IDENTITY] = "web-identity",
	[CRED_SOURCE_PROCESS] = "process",
	[CRED_SOURCE_CONTAINER] = "container",
	[CRED_SOURCE_IMDS] = "imds",
};

const char *cred_source_kind_name(enum cred_source_kind k)
{
	return k < CRED_SOURCE_MAX_ ? source_names[k] : "?";
}

void profile_set_init(struct profile_set *set)
{
	set->head = NULL;
}

static void props_free(struct profile_prop *p)
{
	while (p) {
		struct profile_prop *next = p->next;

		x_free(p->name);
		x_free(p->value);
		x_free(p);
		p = next;
	}
}

void profile_set_free(struct profile_set *set)
{
	struct profile *p, *next;

	if (!set)
		return;
	for (p = set->head; p; p = next) {
		next = p->next;
		props_free(p->props);
		x_free(p->name);
		x_free(p);
	}
	set->head = NULL;
}

const struct profile *profile_find(const struct profile_set *set, const char *name)
{
	for (const struct profile *p = set->head; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

const char *profile_get(const struct profile *p, const char *key)
{
	if (!p)
		return NULL;
	for (const struct profile_prop *q = p->props; q; q = q->next)
		if (strcmp(q->name, key) == 0)
			return q->value;
	return NULL;
}

static struct profile *profile_get_or_add(struct profile_set *set, const char *name, size_t len)
{
	struct profile **pp;

	for (pp = &set->head; *pp; pp = &(*pp)->next)
		if (strlen((*pp)->name) == len && memcmp((*pp)->name, name, len) == 0)
			return *pp;
	*pp = x_calloc(1, sizeof(**pp));
	(*pp)->name = x_strndup(name, len);
	return *pp;
}

static struct profile_prop *prop_set(struct profile *p, const char *name, size_t nlen,
				     const char *value, size_t vlen)
{
	struct profile_prop **pp;

	for (pp = &p->props; *pp; pp = &(*pp)->next) {
		if (strlen((*pp)->name) == nlen && memcmp((*pp)->name, name, nlen) == 0) {
			x_free((*pp)->value);
			(*pp)->value = x_strndup(value, vlen);
			return *pp;
		}
	}
	*pp = x_calloc(1, sizeof(**pp));
	(*pp)->name = x_strndup(name, nlen);
	(*pp)->value = x_strndup(value, vlen);
	return *pp;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && is_ws(**s))
		(*s)++;
	while (*e > *s && is_ws((*e)[-1]))
		(*e)--;
}

/* Parser state for one file. */
struct parse {
	struct profile_set *set;
	enum profile_file kind;
	struct profile *cur;         /* NULL: outside a section we keep */
	struct profile_prop *last;   /* the property a continuation line extends */
	char *last_parent;           /* name of an open "parent =" block */
	int skip_default;            /* config: [default] ignored after [profile default] */
	int saw_profile_default;
};

/* Section header body between '[' and ']'. Returns the profile name to use
 * (pointer into the line) or NULL to skip the section. */
static const char *section_name(struct parse *ps, const char *s, const char *e, size_t *ret_len,
				int *ret_prefixed)
{
	*ret_prefixed = 0;
	trim(&s, &e);
	if (s == e)
		return NULL;
	if (ps->kind == PROFILE_FILE_CREDENTIALS) {
		if (e - s > 8 && memcmp(s, "profile", 7) == 0 && is_ws(s[7]))
			return NULL;   /* "[profile x]" is not valid in the credentials file */
		*ret_len = (size_t)(e - s);
		return s;
	}
	if ((size_t)(e - s) == 7 && memcmp(s, "default", 7) == 0) {
		*ret_len = 7;
		return s;
	}
	if (e - s > 8 && memcmp(s, "profile", 7) == 0 && is_ws(s[7])) {
		s += 8;
		trim(&s, &e);
		if (s == e)
			return NULL;
		*ret_len = (size_t)(e - s);
		*ret_prefixed = 1;
		return s;
	}
	return NULL;   /* sso-session, services, or an unprefixed name: not a profile */
}

static int parse_line(struct parse *ps, const char *s, const char *e, const char **ret_reason)
{
	const char *t = s, *te = e;

	trim(&t, &te);
	if (t == te || *t == '#' || *t == ';')
		return 0;   /* blank or full-line comment; does not end a continuation */

	if (is_ws(*s)) {   /* continuation */
		const char *eq;

		if (!ps->cur)
			return 0;
		if (!ps->last) {
			*ret_reason = "continuation line without a property";
			return S3G_EPARSE;
		}
		if (ps->last_parent) {
			eq = memchr(t, '=', (size_t)(te - t));
			if (!eq) {
				*ret_reason = "expected 'key = value' in a nested block";
				return S3G_EPARSE;
			}
			const char *ks = t, *ke = eq, *vs = eq + 1, *ve = te;
			trim(&ks, &ke);
			trim(&vs, &ve);
			if (ks == ke) {
				*ret_reason = "empty key in a nested block";
				return S3G_EPARSE;
			}
			char *full = x_asprintf("%s.%.*s", ps->last_parent, (int)(ke - ks), ks);
			prop_set(ps->cur, full, strlen(full), vs, (size_t)(ve - vs));
			x_free(full);
			return 0;
		}
		char *joined = x_asprintf("%s\n%.*s", ps->last->value, (int)(te - t), t);
		x_free(ps->last->value);
		ps->last->value = joined;
		return 0;
	}

	ps->last = NULL;
	X_FREE(ps->last_parent);

	if (*t == '[') {
		const char *close = memchr(t, ']', (size_t)(te - t));
		const char *name;
		size_t nlen = 0;
		int prefixed;

		if (!close) {
			*ret_reason = "section header without ']'";
			return S3G_EPARSE;
		}
		/* after ']' only whitespace or a comment may follow */
		for (const char *q = close + 1; q < te; q++) {
			if (*q == '#' || *q == ';')
				break;
			if (!is_ws(*q)) {
				*ret_reason = "text after section header";
				return S3G_EPARSE;
			}
		}
		name = section_name(ps, t + 1, close, &nlen, &prefixed);
		ps->cur = NULL;
		if (!name)
			return 0;
		if (ps->kind == PROFILE_FILE_CONFIG && nlen == 7 && memcmp(name, "default", 7) == 0) {
			if (prefixed) {
				/* [profile default] wins: drop what [default] said */
				struct profile *d = profile_get_or_add(ps->set, "default", 7);

				if (!ps->saw_profile_default) {
					props_free(d->props);
					d->props = NULL;
				}
				ps->saw_profile_default = 1;
				ps->cur = d;
				return 0;
			}
			if (ps->saw_profile_default)
				return 0;   /* ignored */
		}
		ps->cur = profile_get_or_add(ps->set, name, nlen);
		return 0;
	}

	if (!ps->cur)
		return 0;   /* property of a skipped section */

	const char *eq = memchr(t, '=', (size_t)(te - t));
	if (!eq) {
		*ret_reason = "expected 'key = value'";
		return S3G_EPARSE;
	}
	const char *ks = t, *ke = eq, *vs = eq + 1, *ve = te;
	trim(&ks, &ke);
	if (ks == ke) {
		*ret_reason = "empty key";
		return S3G_EPARSE;
	}
	/* an inline comment needs whitespace before it */
	for (const char *q = vs; q < ve; q++) {
		if ((*q == '#' || *q == ';') && q > vs && is_ws(q[-1])) {
			ve = q;
			break;
		}
	}
	trim(&vs, &ve);
	ps->last = prop_set(ps->cur, ks, (size_t)(ke - ks), vs, (size_t)(ve - vs));
	if (vs == ve)
		ps->last_parent = x_strndup(ks, (size_t)(ke - ks));
	return 0;
}

int profile_parse(struct profile_set *set, enum profile_file kind, const char *text, size_t len,
		  struct profile_error *ret_err)
{
	struct parse ps = { .set = set, .kind = kind };
	const char *p = text, *end = text + len;
	const char *reason = NULL;
	int line = 0, r = 0;

	if (len > PROFILE_MAX_TEXT) {
		reason = "file too large";
		r = S3G_ETOOBIG;
		goto out;
	}
	while (p < end) {
		size_t rest = (size_t)(end - p);
		const char *nl = memchr(p, '\n', rest);
		size_t n = nl ? (size_t)(nl - p) : rest;

		line++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		const char *le = p + n;
		if (memchr(p, '\0', n)) {
			reason = "NUL byte";
			r = S3G_EPARSE;
			goto out;
		}
		r = parse_line(&ps, p, le, &reason);
		if (r < 0)
			goto out;
		p = nl ? nl + 1 : end;
	}
out:
	x_free(ps.last_parent);
	if (r < 0 && ret_err) {
		ret_err->line = line;
		ret_err->reason = reason;
	}
	return r;
}

static int load_one(struct profile_set *set, enum profile_file kind, const char *path,
		    struct profile_error *ret_err)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	if (!path)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > PROFILE_MAX_TEXT + 8192) {
				r = S3G_ETOOBIG;
				if (ret_err) {
					ret_err->line = 0;
					ret_err->reason = "file too large";
				}
				goto out;
			}
			text = x_realloc(text, cap);
		}
		size_t n = fread(text + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		r = -EIO;
		goto out;
	}
	r = profile_parse(set, kind, text ? text : "", len, ret_err);
out:
	fclose(f);
	x_free(text);
	return r;
}

int profile_load_files(struct profile_set *set, const char *config_path, const char *credentials_path,
		       struct profile_error *ret_err)
{
	int r = load_one(set, PROFILE_FILE_CONFIG, config_path, ret_err);

	if (r < 0)
		return r;
	return load_one(set, PROFILE_FILE_CREDENTIALS, credentials_path, ret_err);
}

static int static_keys(const struct profile *p, struct cred_chain *c, const char **ret_reason)
{
	const char *id = profile_get(p, "aws_access_key_id");
	const char *secret = profile_get(p, "aws_secret_access_key");

	if (!id && !secret)
		return 0;
	if (!id || !secret || !*id || !*secret) {
		*ret_reason = "aws_access_key_id and aws_secret_access_key must both be set";
		return S3G_ECONFIG;
	}
	c->base = CRED_SOURCE_STATIC;
	c->access_key_id = id;
	c->secret_access_key = secret;
	c->session_token = profile_get(p, "aws_session_token");
	return 1;
}

static int credential_source(const char *v, enum cred_source_kind *ret)
{
	if (strcmp(v, "Environment") == 0)
		*ret = CRED_SOURCE_ENVIRONMENT;
	else if (strcmp(v, "Ec2InstanceMetadata") == 0)
		*ret = CRED_SOURCE_IMDS;
	else if (strcmp(v, "EcsContainer") == 0)
		*ret = CRED_SOURCE_CONTAINER;
	else
		return S3G_ECONFIG;
	return 0;
}

/* The non-role base of profile p, or 0 when it has none. */
static int base_of(const struct profile *p, struct cred_chain *c, const char **ret_reason)
{
	const char *tok = profile_get(p, "web_identity_token_file");
	const char *proc;
	int r;

	if (tok) {
		c->base = CRED_SOURCE_WEB_IDENTITY;
		c->web_identity_token_file = tok;
		c->web_identity_role_arn = profile_get(p, "role_arn");
		c->web_identity_session_name = profile_get(p, "role_session_name");
		if (!c->web_identity_role_arn || !*c->web_identity_role_arn) {
			*ret_reason = "web_identity_token_file requires role_arn";
			return S3G_ECONFIG;
		}
		return 1;
	}
	r = static_keys(p, c, ret_reason);
	if (r != 0)
		return r;
	proc = profile_get(p, "credential_process");
	if (proc && *proc) {
		c->base = CRED_SOURCE_PROCESS;
		c->process_command = proc;
		return 1;
	}
	return 0;
}

static int parse_duration(const char *v, int *ret)
{
	char *end;
	long n;

	if (!v)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 900 || n > 43200)
		return S3G_ECONFIG;
	*ret = (int)n;
	return 0;
}

int profile_resolve(const struct profile_set *set, const char *name, struct cred_chain *ret_chain,
		    const char **ret_reason)
{
	struct cred_chain c = { .base = CRED_SOURCE_NONE };
	const struct profile *visited[PROFILE_MAX_HOPS + 1];
	struct role_hop rev[PROFILE_MAX_HOPS];
	size_t nvisited = 0, nrev = 0;
	const struct profile *p = profile_find(set, name);
	const char *reason = NULL;
	int r;

	if (!p) {
		reason = "no such profile";
		r = S3G_ENOTFOUND;
		goto out;
	}
	for (;;) {
		const char *role = profile_get(p, "role_arn");
		const char *src = profile_get(p, "source_profile");
		const char *csrc = profile_get(p, "credential_source");

		for (size_t i = 0; i < nvisited; i++) {
			if (visited[i] == p) {
				reason = "source_profile loop";
				r = S3G_ECONFIG;
				goto out;
			}
		}
		visited[nvisited++] = p;

		if (!role || profile_get(p, "web_identity_token_file")) {
			r = base_of(p, &c, &reason);
			if (r < 0)
				goto out;
			if (r == 0 && nrev > 0) {
				reason = "source_profile has no credentials";
				r = S3G_ECONFIG;
				goto out;
			}
			break;
		}
		if (nrev == PROFILE_MAX_HOPS) {
			reason = "too many chained roles";
			r = S3G_ECONFIG;
			goto out;
		}
		if (src && csrc) {
			reason = "source_profile and credential_source are mutually exclusive";
			r = S3G_ECONFIG;
			goto out;
		}
		struct role_hop *h = &rev[nrev++];
		h->role_arn = role;
		h->external_id = profile_get(p, "external_id");
		h->session_name = profile_get(p, "role_session_name");
		h->duration_seconds = 0;
		if (parse_duration(profile_get(p, "duration_seconds"), &h->duration_seconds) < 0) {
			reason = "duration_seconds must be 900..43200";
			r = S3G_ECONFIG;
			goto out;
		}
		if (csrc) {
			if (credential_source(csrc, &c.base) < 0) {
				reason = "credential_source must be Environment, Ec2InstanceMetadata or EcsContainer";
				r = S3G_ECONFIG;
				goto out;
			}
			break;
		}
		if (!src) {
			reason = "role_arn requires source_profile or credential_source";
			r = S3G_ECONFIG;
			goto out;
		}
		if (strcmp(src, p->name) == 0) {
			/* a profile may source itself only through its own static keys */
			r = static_keys(p, &c, &reason);
			if (r < 0)
				goto out;
			if (r == 0) {
				reason = "source_profile names itself but has no static keys";
				r = S3G_ECONFIG;
				goto out;
			}
			break;
		}
		p = profile_find(set, src);
		if (!p) {
			reason = "source_profile names a missing profile";
			r = S3G_ECONFIG;
			goto out;
		}
	}
	/* hops were collected outermost first; assume innermost first */
	c.nhops = nrev;
	for (size_t i = 0; i < nrev; i++)
		c.hops[i] = rev[nrev - 1 - i];
	*ret_chain = c;
	r = 0;
out:
	if (r < 0 && ret_reason)
		*ret_reason = reason;
	return r;
}
