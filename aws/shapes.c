/* shapes.c — AWS result shapes and request bodies (see shapes.h). */
#include "aws/shapes.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/isotime.h"
#include "core/xalloc.h"

/* ---- Table-driven field extraction -------------------------------------
 *
 * One pass over an element's children; each child is matched against a small
 * table of (name, kind, offset). A 1,000-grant page is 14,000 elements, so
 * the pass, not the lookups, is what has to be cheap. The first occurrence
 * of a field wins (like xml_child).
 */

enum fkind {
	F_STR,                       /* char *: text, "" kept */
	F_STR_NONEMPTY,              /* char *: text, "" = NULL */
	F_TIME,                      /* int64_t ms; "" = 0 */
	F_INT,                       /* int64_t, non-negative decimal */
	F_BOOL,                      /* bool: true | false */
	F_NESTED,                    /* recurse into the child with sub */
};

struct field {
	const char *name;
	enum fkind kind;
	size_t off;
	const struct field *sub;     /* F_NESTED: fields of the child, same base struct */
};

#define FIELDS_END {NULL, F_STR, 0, NULL}

static void reason(struct xml_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reason(struct xml_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->line = 0;
	err->column = 0;
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
}

static int parse_int(const char *s, int64_t *ret)
{
	int64_t v = 0;

	if (!*s)
		return S3G_EPARSE;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return S3G_EPARSE;
		v = v * 10 + (*s - '0');
	}
	*ret = v;
	return 0;
}

static int fill(const struct xml_node *n, const struct field *tab, void *base, struct xml_error *err)
{
	for (const struct xml_node *c = n ? n->child : NULL; c; c = c->next) {
		const struct field *f;
		char *p;

		for (f = tab; f->name; f++)
			if (f->name[0] == c->name[0] && strcmp(f->name, c->name) == 0)
				break;
		if (!f->name)
			continue;
		p = (char *)base + f->off;
		switch (f->kind) {
		case F_STR:
		case F_STR_NONEMPTY:
			if (*(char **)p)
				break;
			if (f->kind == F_STR_NONEMPTY && c->text_len == 0)
				break;
			*(char **)p = x_strndup(c->text, c->text_len);
			break;
		case F_TIME:
			if (*(int64_t *)p || c->text_len == 0)
				break;
			if (isotime_parse(c->text, c->text_len, (int64_t *)p) < 0) {
				reason(err, "%s: not an ISO 8601 timestamp", c->name);
				return S3G_EPARSE;
			}
			break;
		case F_INT:
			if (parse_int(c->text, (int64_t *)p) < 0) {
				reason(err, "%s: not a number", c->name);
				return S3G_EPARSE;
			}
			break;
		case F_BOOL:
			if (strcmp(c->text, "true") == 0) {
				*(bool *)p = true;
			} else if (strcmp(c->text, "false") == 0) {
				*(bool *)p = false;
			} else {
				reason(err, "%s: not true or false", c->name);
				return S3G_EPARSE;
			}
			break;
		case F_NESTED: {
			int r = fill(c, f->sub, base, err);

			if (r < 0)
				return r;
			break;
		}
		}
	}
	return 0;
}

static size_t count_same(const struct xml_node *first)
{
	size_t n = 0;

	for (const struct xml_node *c = first; c; c = xml_next_same(c))
		n++;
	return n;
}

static int load(const char *body, size_t len, struct xml_doc **doc, struct xml_error *err)
{
	return xml_parse(body, len, NULL, doc, err);
}

static int need(const char *v, const char *what, struct xml_error *err)
{
	if (v && *v)
		return 0;
	reason(err, "%s missing", what);
	return S3G_EPARSE;
}

/* ---- S3 Control ---------------------------------------------------------- */

#define G(m) offsetof(struct shapes_grant, m)
static const struct field grantee_fields[] = {
	{"GranteeType", F_STR, G(grantee_type), NULL},
	{"GranteeIdentifier", F_STR, G(grantee_id), NULL},
	FIELDS_END,
};
static const struct field locconf_fields[] = {
	{"S3SubPrefix", F_STR_NONEMPTY, G(sub_prefix), NULL},
	FIELDS_END,
};
static const struct field grant_fields[] = {
	{"CreatedAt", F_TIME, G(created_at_ms), NULL},
	{"AccessGrantId", F_STR, G(id), NULL},
	{"AccessGrantArn", F_STR, G(arn), NULL},
	{"Grantee", F_NESTED, 0, grantee_fields},
	{"Permission", F_STR, G(permission), NULL},
	{"AccessGrantsLocationId", F_STR, G(location_id), NULL},
	{"AccessGrantsLocationConfiguration", F_NESTED, 0, locconf_fields},
	{"GrantScope", F_STR, G(grant_scope), NULL},
	{"ApplicationArn", F_STR, G(application_arn), NULL},
	FIELDS_END,
};
#undef G

#define L(m) offsetof(struct shapes_location, m)
static const struct field location_fields[] = {
	{"CreatedAt", F_TIME, L(created_at_ms), NULL},
	{"AccessGrantsLocationId", F_STR, L(id), NULL},
	{"AccessGrantsLocationArn", F_STR, L(arn), NULL},
	{"LocationScope", F_STR, L(scope), NULL},
	{"IAMRoleArn", F_STR, L(iam_role_arn), NULL},
	FIELDS_END,
};
#undef L

#define I(m) offsetof(struct shapes_instance, m)
static const struct field instance_fields[] = {
	{"CreatedAt", F_TIME, I(created_at_ms), NULL},
	{"AccessGrantsInstanceId", F_STR, I(id), NULL},
	{"AccessGrantsInstanceArn", F_STR, I(arn), NULL},
	{"IdentityCenterArn", F_STR, I(identity_center_arn), NULL},
	{"IdentityCenterInstanceArn", F_STR, I(identity_center_instance_arn), NULL},
	{"IdentityCenterApplicationArn", F_STR, I(identity_center_application_arn), NULL},
	FIELDS_END,
};
#undef I

void shapes_grant_clear(struct shapes_grant *g)
{
	if (!g)
		return;
	x_free(g->id);
	x_free(g->arn);
	x_free(g->grantee_type);
	x_free(g->grantee_id);
	x_free(g->permission);
	x_free(g->location_id);
	x_free(g->sub_prefix);
	x_free(g->grant_scope);
	x_free(g->application_arn);
	memset(g, 0, sizeof(*g));
}

void shapes_location_clear(struct shapes_location *l)
{
	if (!l)
		return;
	x_free(l->id);
	x_free(l->arn);
	x_free(l->scope);
	x_free(l->iam_role_arn);
	memset(l, 0, sizeof(*l));
}

void shapes_instance_clear(struct shapes_instance *i)
{
	if (!i)
		return;
	x_free(i->id);
	x_free(i->arn);
	x_free(i->identity_center_arn);
	x_free(i->identity_center_instance_arn);
	x_free(i->identity_center_application_arn);
	memset(i, 0, sizeof(*i));
}

static int grant_from(const struct xml_node *n, struct shapes_grant *g, struct xml_error *err)
{
	int r = fill(n, grant_fields, g, err);

	if (r == 0)
		r = need(g->id, "AccessGrantId", err);
	return r;
}

static int location_from(const struct xml_node *n, struct shapes_location *l, struct xml_error *err)
{
	int r = fill(n, location_fields, l, err);

	if (r == 0)
		r = need(l->id, "AccessGrantsLocationId", err);
	return r;
}

static int instance_from(const struct xml_node *n, struct shapes_instance *i, struct xml_error *err)
{
	int r = fill(n, instance_fields, i, err);

	if (r == 0 && !(i->id && *i->id))
		r = need(i->arn, "AccessGrantsInstanceId and AccessGrantsInstanceArn", err);
	return r;
}

/* One parser for the three paginated lists: items of item_size bytes under
 * list_name/item_name, each filled by from() and cleared by clear(). */
struct list_kind {
	const char *list_name;
	size_t item_size;
	int (*from)(const struct xml_node *n, void *item, struct xml_error *err);
	void (*clear)(void *item);
};

static int grant_from_v(const struct xml_node *n, void *item, struct xml_error *err)
{
	return grant_from(n, item, err);
}

static int location_from_v(const struct xml_node *n, void *item, struct xml_error *err)
{
	return location_from(n, item, err);
}

static int instance_from_v(const struct xml_node *n, void *item, struct xml_error *err)
{
	return instance_from(n, item, err);
}

static void grant_clear_v(void *item)
{
	shapes_grant_clear(item);
}

static void location_clear_v(void *item)
{
	shapes_location_clear(item);
}

static void instance_clear_v(void *item)
{
	shapes_instance_clear(item);
}

static int parse_list(const struct list_kind *k, const char *item_name, const char *body, size_t len,
		      void **ret_items, size_t *ret_n, char **ret_token, struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	const struct xml_node *root, *first;
	char *items = NULL, *token = NULL;
	size_t n = 0, done = 0;
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	root = xml_root(doc);
	first = xml_child(xml_child(root, k->list_name), item_name);
	n = count_same(first);
	if (n)
		items = x_calloc(n, k->item_size);
	for (const struct xml_node *c = first; c; c = xml_next_same(c)) {
		r = k->from(c, items + done * k->item_size, err);
		done++;
		if (r < 0) {
			if (err) {
				char why[sizeof(err->reason)];

				memcpy(why, err->reason, sizeof(why));
				reason(err, "%s #%zu: %s", item_name, done, why);
			}
			goto out;
		}
	}
	{
		const struct xml_node *t = xml_child(root, "NextToken");

		if (t && t->text_len)
			token = x_strndup(t->text, t->text_len);
	}
	*ret_items = items;
	*ret_n = n;
	*ret_token = token;
	items = NULL;
	done = 0;
out:
	for (size_t i = 0; i < done; i++)
		k->clear(items + i * k->item_size);
	x_free(items);
	xml_free(doc);
	return r;
}

static const struct list_kind grant_list_kind = {
	"AccessGrantsList", sizeof(struct shapes_grant), grant_from_v, grant_clear_v,
};
static const struct list_kind location_list_kind = {
	"AccessGrantsLocationsList", sizeof(struct shapes_location), location_from_v, location_clear_v,
};
static const struct list_kind instance_list_kind = {
	"AccessGrantsInstancesList", sizeof(struct shapes_instance), instance_from_v, instance_clear_v,
};

int shapes_parse_grant(const char *body, size_t len, struct shapes_grant *ret, struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	struct shapes_grant g = {0};
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	r = grant_from(xml_root(doc), &g, err);
	if (r == 0)
		*ret = g;
	else
		shapes_grant_clear(&g);
	xml_free(doc);
	return r;
}

int shapes_parse_location(const char *body, size_t len, struct shapes_location *ret, struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	struct shapes_location l = {0};
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	r = location_from(xml_root(doc), &l, err);
	if (r == 0)
		*ret = l;
	else
		shapes_location_clear(&l);
	xml_free(doc);
	return r;
}

int shapes_parse_instance(const char *body, size_t len, struct shapes_instance *ret, struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	struct shapes_instance i = {0};
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	r = instance_from(xml_root(doc), &i, err);
	if (r == 0)
		*ret = i;
	else
		shapes_instance_clear(&i);
	xml_free(doc);
	return r;
}

int shapes_parse_grant_list(const char *body, size_t len, struct shapes_grant_list *ret, struct xml_error *err)
{
	void *items;
	size_t n;
	char *token;
	int r = parse_list(&grant_list_kind, "AccessGrant", body, len, &items, &n, &token, err);

	if (r == 0) {
		ret->items = items;
		ret->n = n;
		ret->next_token = token;
	}
	return r;
}

int shapes_parse_location_list(const char *body, size_t len, struct shapes_location_list *ret,
			       struct xml_error *err)
{
	void *items;
	size_t n;
	char *token;
	int r = parse_list(&location_list_kind, "AccessGrantsLocation", body, len, &items, &n, &token, err);

	if (r == 0) {
		ret->items = items;
		ret->n = n;
		ret->next_token = token;
	}
	return r;
}

int shapes_parse_instance_list(const char *body, size_t len, struct shapes_instance_list *ret,
			       struct xml_error *err)
{
	void *items;
	size_t n;
	char *token;
	int r = parse_list(&instance_list_kind, "AccessGrantsInstance", body, len, &items, &n, &token, err);

	if (r == 0) {
		ret->items = items;
		ret->n = n;
		ret->next_token = token;
	}
	return r;
}

void shapes_grant_list_clear(struct shapes_grant_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		shapes_grant_clear(&l->items[i]);
	x_free(l->items);
	x_free(l->next_token);
	memset(l, 0, sizeof(*l));
}

void shapes_location_list_clear(struct shapes_location_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		shapes_location_clear(&l->items[i]);
	x_free(l->items);
	x_free(l->next_token);
	memset(l, 0, sizeof(*l));
}

void shapes_instance_list_clear(struct shapes_instance_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		shapes_instance_clear(&l->items[i]);
	x_free(l->items);
	x_free(l->next_token);
	memset(l, 0, sizeof(*l));
}

/* ---- STS ----------------------------------------------------------------- */

#define C(m) offsetof(struct shapes_caller_identity, m)
static const struct field caller_fields[] = {
	{"Arn", F_STR, C(arn), NULL},
	{"UserId", F_STR, C(user_id), NULL},
	{"Account", F_STR, C(account), NULL},
	FIELDS_END,
};
#undef C

#define S(m) offsetof(struct shapes_sts_creds, m)
static const struct field credentials_fields[] = {
	{"AccessKeyId", F_STR, S(access_key_id), NULL},
	{"SecretAccessKey", F_STR, S(secret_access_key), NULL},
	{"SessionToken", F_STR, S(session_token), NULL},
	{"Expiration", F_TIME, S(expiration_ms), NULL},
	FIELDS_END,
};
static const struct field role_user_fields[] = {
	{"Arn", F_STR, S(assumed_role_arn), NULL},
	{"AssumedRoleId", F_STR, S(assumed_role_id), NULL},
	FIELDS_END,
};
static const struct field sts_creds_fields[] = {
	{"Credentials", F_NESTED, 0, credentials_fields},
	{"AssumedRoleUser", F_NESTED, 0, role_user_fields},
	{"SourceIdentity", F_STR, S(source_identity), NULL},
	{"SubjectFromWebIdentityToken", F_STR, S(subject), NULL},
	FIELDS_END,
};
#undef S

void shapes_caller_identity_clear(struct shapes_caller_identity *c)
{
	if (!c)
		return;
	x_free(c->arn);
	x_free(c->user_id);
	x_free(c->account);
	memset(c, 0, sizeof(*c));
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		x_free(s);
	}
}

void shapes_sts_creds_clear(struct shapes_sts_creds *c)
{
	if (!c)
		return;
	x_free(c->access_key_id);
	wipe_free(c->secret_access_key);
	wipe_free(c->session_token);
	x_free(c->assumed_role_arn);
	x_free(c->assumed_role_id);
	x_free(c->source_identity);
	x_free(c->subject);
	memset(c, 0, sizeof(*c));
}

/* The <XResult> inside <XResponse>; the root itself when a front end sends
 * the result unwrapped. */
static const struct xml_node *sts_result(const struct xml_node *root, const char *a, const char *b)
{
	const struct xml_node *n = xml_child(root, a);

	if (!n && b)
		n = xml_child(root, b);
	return n ? n : root;
}

int shapes_parse_caller_identity(const char *body, size_t len, struct shapes_caller_identity *ret,
				 struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	struct shapes_caller_identity c = {0};
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	r = fill(sts_result(xml_root(doc), "GetCallerIdentityResult", NULL), caller_fields, &c, err);
	if (r == 0)
		r = need(c.arn, "Arn", err);
	if (r == 0)
		r = need(c.account, "Account", err);
	if (r == 0)
		*ret = c;
	else
		shapes_caller_identity_clear(&c);
	xml_free(doc);
	return r;
}

int shapes_parse_sts_creds(const char *body, size_t len, struct shapes_sts_creds *ret, struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	struct shapes_sts_creds c = {0};
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	r = fill(sts_result(xml_root(doc), "AssumeRoleResult", "AssumeRoleWithWebIdentityResult"),
		 sts_creds_fields, &c, err);
	if (r == 0)
		r = need(c.access_key_id, "Credentials/AccessKeyId", err);
	if (r == 0)
		r = need(c.secret_access_key, "Credentials/SecretAccessKey", err);
	if (r == 0)
		r = need(c.session_token, "Credentials/SessionToken", err);
	if (r == 0 && c.expiration_ms == 0) {
		reason(err, "Credentials/Expiration missing");
		r = S3G_EPARSE;
	}
	if (r == 0)
		*ret = c;
	else
		shapes_sts_creds_clear(&c);
	xml_free(doc);
	return r;
}

/* ---- S3 ListObjectsV2 -------------------------------------------------- */

#define O(m) offsetof(struct shapes_object, m)
static const struct field object_fields[] = {
	{"Key", F_STR, O(key), NULL},
	{"Size", F_INT, O(size), NULL},
	{"ETag", F_STR, O(etag), NULL},
	{"LastModified", F_TIME, O(last_modified_ms), NULL},
	FIELDS_END,
};
#undef O

#define B(m) offsetof(struct shapes_object_list, m)
static const struct field object_list_fields[] = {
	{"Name", F_STR, B(name), NULL},
	{"Prefix", F_STR, B(prefix), NULL},
	{"Delimiter", F_STR, B(delimiter), NULL},
	{"StartAfter", F_STR, B(start_after), NULL},
	{"KeyCount", F_INT, B(key_count), NULL},
	{"IsTruncated", F_BOOL, B(is_truncated), NULL},
	{"NextContinuationToken", F_STR_NONEMPTY, B(next_continuation_token), NULL},
	FIELDS_END,
};
#undef B

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* EncodingType=url: S3 percent-encodes and writes a space as '+' (botocore
 * decodes with unquote_plus). In place; NULL is fine. A %00 or a broken
 * escape is S3G_EPARSE (the C string could not carry it). */
static int url_decode(char *s, const char *what, struct xml_error *err)
{
	char *w = s;

	if (!s)
		return 0;
	for (const char *p = s; *p; p++) {
		if (*p == '+') {
			*w++ = ' ';
		} else if (*p == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

			if (hi < 0 || lo < 0 || (hi | lo) == 0) {
				reason(err, "%s: bad percent-encoding", what);
				return S3G_EPARSE;
			}
			*w++ = (char)(hi << 4 | lo);
			p += 2;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	return 0;
}

void shapes_object_list_clear(struct shapes_object_list *l)
{
	if (!l)
		return;
	x_free(l->name);
	x_free(l->prefix);
	x_free(l->delimiter);
	x_free(l->start_after);
	x_free(l->next_continuation_token);
	for (size_t i = 0; i < l->ncontents; i++) {
		x_free(l->contents[i].key);
		x_free(l->contents[i].etag);
	}
	x_free(l->contents);
	for (size_t i = 0; i < l->ncommon_prefixes; i++)
		x_free(l->common_prefixes[i]);
	x_free(l->common_prefixes);
	memset(l, 0, sizeof(*l));
}

int shapes_parse_object_list(const char *body, size_t len, struct shapes_object_list *ret,
			     struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	struct shapes_object_list l = {.key_count = -1};
	const struct xml_node *root, *first;
	bool url;
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	root = xml_root(doc);
	r = fill(root, object_list_fields, &l, err);
	if (r < 0)
		goto out;
	url = xml_path_text(root, "EncodingType") && strcmp(xml_path_text(root, "EncodingType"), "url") == 0;

	first = xml_child(root, "Contents");
	l.ncontents = count_same(first);
	if (l.ncontents)
		l.contents = x_calloc(l.ncontents, sizeof(*l.contents));
	for (size_t i = 0; i < l.ncontents; i++)
		l.contents[i].size = -1;
	for (size_t i = 0; first; first = xml_next_same(first), i++) {
		struct shapes_object *o = &l.contents[i];

		r = fill(first, object_fields, o, err);
		if (r == 0)
			r = need(o->key, "Contents/Key", err);
		if (r == 0 && url)
			r = url_decode(o->key, "Contents/Key", err);
		if (r < 0)
			goto out;
	}

	first = xml_child(root, "CommonPrefixes");
	l.ncommon_prefixes = count_same(first);
	if (l.ncommon_prefixes)
		l.common_prefixes = x_calloc(l.ncommon_prefixes, sizeof(*l.common_prefixes));
	for (size_t i = 0; first; first = xml_next_same(first), i++) {
		const char *p = xml_path_text(first, "Prefix");

		l.common_prefixes[i] = x_strdup(p ? p : "");
		if (url && (r = url_decode(l.common_prefixes[i], "CommonPrefixes/Prefix", err)) < 0)
			goto out;
	}

	if (url && ((r = url_decode(l.prefix, "Prefix", err)) < 0 ||
		    (r = url_decode(l.delimiter, "Delimiter", err)) < 0 ||
		    (r = url_decode(l.start_after, "StartAfter", err)) < 0))
		goto out;
	*ret = l;
	memset(&l, 0, sizeof(l));
out:
	shapes_object_list_clear(&l);
	xml_free(doc);
	return r;
}

/* ---- Errors -------------------------------------------------------------- */

#define E(m) offsetof(struct shapes_error, m)
static const struct field error_fields[] = {
	{"Code", F_STR, E(code), NULL},
	{"Message", F_STR, E(message), NULL},
	{"RequestId", F_STR, E(request_id), NULL},
	{"HostId", F_STR, E(host_id), NULL},
	{"Type", F_STR, E(type), NULL},
	{"ServerTime", F_STR, E(server_time), NULL},
	{"RequestTime", F_STR, E(request_time), NULL},
	{"Region", F_STR, E(region), NULL},
	{"Endpoint", F_STR, E(endpoint), NULL},
	{"Bucket", F_STR, E(bucket), NULL},
	FIELDS_END,
};
static const struct field error_wrapper_fields[] = {
	{"RequestId", F_STR, E(request_id), NULL},
	{"RequestID", F_STR, E(request_id), NULL},    /* EC2-style <Response> */
	{"HostId", F_STR, E(host_id), NULL},
	FIELDS_END,
};
#undef E

void shapes_error_clear(struct shapes_error *e)
{
	if (!e)
		return;
	x_free(e->code);
	x_free(e->message);
	x_free(e->request_id);
	x_free(e->host_id);
	x_free(e->type);
	x_free(e->server_time);
	x_free(e->request_time);
	x_free(e->region);
	x_free(e->endpoint);
	x_free(e->bucket);
	memset(e, 0, sizeof(*e));
}

/* The <Error> element of an error document, or NULL. Shapes seen from AWS
 * and its emulators (botocore's parsers accept the same set):
 *   <Error>…</Error>                                  S3, S3 Control
 *   <ErrorResponse><Error>…</Error><RequestId/>       STS, query protocol
 *   <ErrorResponse><Errors><Error>…</Error></Errors>  moto's query errors
 *   <Response><Errors><Error>…</Error></Errors><RequestID/>   EC2 style
 * *wrapper gets the element that may hold RequestId/HostId beside it. */
static const struct xml_node *error_element(const struct xml_node *root, const struct xml_node **wrapper)
{
	const struct xml_node *e;

	*wrapper = NULL;
	if (strcmp(root->name, "Error") == 0)
		return root;
	if (strcmp(root->name, "ErrorResponse") != 0 && strcmp(root->name, "Response") != 0)
		return NULL;
	*wrapper = root;
	e = xml_child(root, "Error");
	if (!e)
		e = xml_path(root, "Errors/Error");
	return e;
}

/* Code without surrounding white space (pretty-printed documents); "" = missing. */
static void trim_code(char *s)
{
	size_t a = 0, n;

	if (!s)
		return;
	while (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r')
		a++;
	n = strlen(s + a);
	while (n > 0 && (s[a + n - 1] == ' ' || s[a + n - 1] == '\t' || s[a + n - 1] == '\n' ||
			 s[a + n - 1] == '\r'))
		n--;
	memmove(s, s + a, n);
	s[n] = 0;
}

int shapes_parse_error(const char *body, size_t len, struct shapes_error *ret, struct xml_error *err)
{
	struct xml_doc *doc = NULL;
	struct shapes_error e = {0};
	const struct xml_node *root, *inner, *wrapper;
	int r = load(body, len, &doc, err);

	if (r < 0)
		return r;
	root = xml_root(doc);
	inner = error_element(root, &wrapper);
	if (!inner) {
		if (wrapper)
			reason(err, "%s without Error", root->name);
		else
			reason(err, "not an error document (root %.40s)", root->name);
		r = S3G_EPARSE;
		goto out;
	}
	r = fill(inner, error_fields, &e, err);
	if (r == 0 && wrapper)
		r = fill(wrapper, error_wrapper_fields, &e, err);   /* first wins: Error's own RequestId */
	if (r < 0)
		goto out;
	trim_code(e.code);
	r = need(e.code, "Error/Code", err);
	if (r < 0)
		goto out;
	if (e.server_time && isotime_parse(e.server_time, strlen(e.server_time), &e.server_time_ms) < 0)
		e.server_time_ms = 0;
	*ret = e;
	memset(&e, 0, sizeof(e));
out:
	shapes_error_clear(&e);
	xml_free(doc);
	return r;
}

/* ---- Request bodies ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (XML 1.0 Char production: no
 * control characters but tab/LF/CR, no surrogates, no U+FFFE/U+FFFF), or 0. */
static size_t xml_char_len(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') && c != 0x7f ? 1 : 0;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned cp;

		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		cp = (c & 0x0f) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu);
		if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned cp;

		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		cp = (c & 0x07) << 18 | (s[1] & 0x3fu) << 12 | (s[2] & 0x3fu) << 6 | (s[3] & 0x3fu);
		if (cp < 0x10000 || cp > 0x10ffff)
			return 0;
		return 4;
	}
	return 0;
}

static int check_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t k = xml_char_len(p);

		if (!k)
			return S3G_EINVAL;
		p += k;
	}
	return 0;
}

/* Escape as botocore's ElementTree does (&, <, >), plus CR as a character
 * reference so the server's end-of-line handling cannot turn it into LF. */
static int put_escaped(struct buf *b, const char *s)
{
	const char *run = s;
	int r = check_text(s);

	if (r < 0)
		return r;
	for (; *s; s++) {
		const char *rep;

		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\r': rep = "&#13;"; break;
		default: continue;
		}
		if ((r = buf_append(b, run, (size_t)(s - run))) < 0 || (r = buf_puts(b, rep)) < 0)
			return r;
		run = s + 1;
	}
	return buf_append(b, run, (size_t)(s - run));
}

/* A request body is a dozen of these: the usual value (nothing to escape)
 * is written with one size check and three copies, not printf. */
static int put_elem(struct buf *b, const char *name, const char *value)
{
	size_t n = strlen(name), v = strcspn(value, "&<>\r");
	char *o;
	int r;

	if (value[v] != '\0') {
		if ((r = buf_append(b, "<", 1)) < 0 || (r = buf_append(b, name, n)) < 0 ||
		    (r = buf_append(b, ">", 1)) < 0 || (r = put_escaped(b, value)) < 0 ||
		    (r = buf_append(b, "</", 2)) < 0 || (r = buf_append(b, name, n)) < 0 ||
		    (r = buf_append(b, ">", 1)) < 0)
			return r;
		return 0;
	}
	if ((r = check_text(value)) < 0 || (r = buf_reserve(b, 2 * n + v + 5)) < 0)
		return r;
	o = b->data + b->len;
	*o++ = '<';
	memcpy(o, name, n);
	o += n;
	*o++ = '>';
	memcpy(o, value, v);
	o += v;
	*o++ = '<';
	*o++ = '/';
	memcpy(o, name, n);
	o += n;
	*o++ = '>';
	*o = '\0';
	b->len = (size_t)(o - b->data);
	return 0;
}

static int put_opt(struct buf *b, const char *name, const char *value)
{
	return value ? put_elem(b, name, value) : 0;
}

static int put_tags(struct buf *b, const struct shapes_tag *tags, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	if (!tags || n > SHAPES_MAX_TAGS)
		return S3G_EINVAL;
	if ((r = buf_puts(b, "<Tags>")) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (!tags[i].key || !*tags[i].key || !tags[i].value)
			return S3G_EINVAL;
		if ((r = buf_puts(b, "<Tag>")) < 0 || (r = put_elem(b, "Key", tags[i].key)) < 0 ||
		    (r = put_elem(b, "Value", tags[i].value)) < 0 || (r = buf_puts(b, "</Tag>")) < 0)
			return r;
	}
	return buf_puts(b, "</Tags>");
}

static bool given(const char *s)
{
	return s && *s;
}

static int finish(struct buf *b, int r, char **ret_body, size_t *ret_len)
{
	if (r == 0) {
		size_t len = b->len;

		*ret_body = buf_steal(b);
		if (ret_len)
			*ret_len = len;
	}
	buf_free(b);
	return r;
}

int shapes_build_create_grant(const struct shapes_create_grant_req *req, char **ret_body, size_t *ret_len)
{
	struct buf b;
	int r;

	buf_init(&b, SHAPES_MAX_BODY);
	if (!req || !given(req->location_id) || !given(req->grantee_type) || !given(req->grantee_id) ||
	    !given(req->permission)) {
		r = S3G_EINVAL;
		goto out;
	}
	/* Typical bodies are 400-800 bytes: one allocation (1 KiB, still in
	 * malloc's per-thread cache), no doubling. */
	if ((r = buf_reserve(&b, 900)) < 0 ||
	    (r = buf_puts(&b, "<CreateAccessGrantRequest xmlns=\"" SHAPES_S3CONTROL_NS "\">")) < 0 ||
	    (r = put_elem(&b, "AccessGrantsLocationId", req->location_id)) < 0)
		goto out;
	if (given(req->sub_prefix) &&
	    ((r = buf_puts(&b, "<AccessGrantsLocationConfiguration>")) < 0 ||
	     (r = put_elem(&b, "S3SubPrefix", req->sub_prefix)) < 0 ||
	     (r = buf_puts(&b, "</AccessGrantsLocationConfiguration>")) < 0))
		goto out;
	if ((r = buf_puts(&b, "<Grantee>")) < 0 || (r = put_elem(&b, "GranteeType", req->grantee_type)) < 0 ||
	    (r = put_elem(&b, "GranteeIdentifier", req->grantee_id)) < 0 || (r = buf_puts(&b, "</Grantee>")) < 0 ||
	    (r = put_elem(&b, "Permission", req->permission)) < 0 ||
	    (r = put_opt(&b, "ApplicationArn", req->application_arn)) < 0 ||
	    (r = put_opt(&b, "S3PrefixType", req->s3_prefix_type)) < 0 ||
	    (r = put_tags(&b, req->tags, req->ntags)) < 0 ||
	    (r = buf_puts(&b, "</CreateAccessGrantRequest>")) < 0)
		goto out;
out:
	return finish(&b, r, ret_body, ret_len);
}

int shapes_build_create_location(const struct shapes_create_location_req *req, char **ret_body, size_t *ret_len)
{
	struct buf b;
	int r;

	buf_init(&b, SHAPES_MAX_BODY);
	if (!req || !given(req->scope) || !given(req->iam_role_arn)) {
		r = S3G_EINVAL;
		goto out;
	}
	if ((r = buf_puts(&b, "<CreateAccessGrantsLocationRequest xmlns=\"" SHAPES_S3CONTROL_NS "\">")) < 0 ||
	    (r = put_elem(&b, "LocationScope", req->scope)) < 0 ||
	    (r = put_elem(&b, "IAMRoleArn", req->iam_role_arn)) < 0 ||
	    (r = put_tags(&b, req->tags, req->ntags)) < 0 ||
	    (r = buf_puts(&b, "</CreateAccessGrantsLocationRequest>")) < 0)
		goto out;
out:
	return finish(&b, r, ret_body, ret_len);
}

int shapes_build_create_instance(const struct shapes_create_instance_req *req, char **ret_body, size_t *ret_len)
{
	static const struct shapes_create_instance_req none = {0};
	struct buf b;
	int r;

	buf_init(&b, SHAPES_MAX_BODY);
	if (!req)
		req = &none;
	if (!req->identity_center_arn && req->ntags == 0) {
		r = buf_puts(&b, "<CreateAccessGrantsInstanceRequest xmlns=\"" SHAPES_S3CONTROL_NS "\"/>");
		goto out;
	}
	if ((r = buf_puts(&b, "<CreateAccessGrantsInstanceRequest xmlns=\"" SHAPES_S3CONTROL_NS "\">")) < 0 ||
	    (r = put_opt(&b, "IdentityCenterArn", req->identity_center_arn)) < 0 ||
	    (r = put_tags(&b, req->tags, req->ntags)) < 0 ||
	    (r = buf_puts(&b, "</CreateAccessGrantsInstanceRequest>")) < 0)
		goto out;
out:
	return finish(&b, r, ret_body, ret_len);
}

/* name=value with RFC 3986 encoding of the value (the names are plain). */
static int put_param(struct buf *b, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	int r;

	if ((r = check_text(value)) < 0 || (r = buf_printf(b, "&%s=", name)) < 0)
		return r;
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		unsigned char c = *p;
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~')
			r = buf_append(b, p, 1);
		else
			r = buf_append(b, esc, 3);
		if (r < 0)
			return r;
	}
	return 0;
}

int shapes_build_get_caller_identity(char **ret_body, size_t *ret_len)
{
	struct buf b;
	int r;

	buf_init(&b, SHAPES_MAX_BODY);
	r = buf_puts(&b, "Action=GetCallerIdentity&Version=2011-06-15");
	return finish(&b, r, ret_body, ret_len);
}

int shapes_build_assume_role(const struct shapes_assume_role_req *req, char **ret_body, size_t *ret_len)
{
	struct buf b;
	int r;

	buf_init(&b, SHAPES_MAX_BODY);
	if (!req || !given(req->role_arn) || !given(req->session_name)) {
		r = S3G_EINVAL;
		goto out;
	}
	if ((r = buf_puts(&b, "Action=AssumeRole&Version=2011-06-15")) < 0 ||
	    (r = put_param(&b, "RoleArn", req->role_arn)) < 0 ||
	    (r = put_param(&b, "RoleSessionName", req->session_name)) < 0 ||
	    (given(req->external_id) && (r = put_param(&b, "ExternalId", req->external_id)) < 0) ||
	    (req->duration_seconds && (r = buf_printf(&b, "&DurationSeconds=%u", req->duration_seconds)) < 0) ||
	    (given(req->source_identity) && (r = put_param(&b, "SourceIdentity", req->source_identity)) < 0))
		goto out;
out:
	return finish(&b, r, ret_body, ret_len);
}

int shapes_build_assume_role_web_identity(const struct shapes_web_identity_req *req, char **ret_body,
					  size_t *ret_len)
{
	struct buf b;
	int r;

	/* The token may be up to 20,000 characters, x3 when percent-encoded. */
	buf_init(&b, SHAPES_MAX_BODY);
	if (!req || !given(req->role_arn) || !given(req->session_name) || !given(req->token)) {
		r = S3G_EINVAL;
		goto out;
	}
	if ((r = buf_puts(&b, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15")) < 0 ||
	    (r = put_param(&b, "RoleArn", req->role_arn)) < 0 ||
	    (r = put_param(&b, "RoleSessionName", req->session_name)) < 0 ||
	    (r = put_param(&b, "WebIdentityToken", req->token)) < 0 ||
	    (given(req->provider_id) && (r = put_param(&b, "ProviderId", req->provider_id)) < 0) ||
	    (req->duration_seconds && (r = buf_printf(&b, "&DurationSeconds=%u", req->duration_seconds)) < 0))
		goto out;
out:
	if (r < 0 && b.data)
		explicit_bzero(b.data, b.cap);
	return finish(&b, r, ret_body, ret_len);
}
