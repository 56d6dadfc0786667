/* policy.c — IAM policy documents for an integration and for the export.
 *
 * Statements are described as data (struct stmt) and written by a small
 * pretty JSON writer into a bounded buffer. Why these actions: WIRE.md a
 * (the S3 Control calls s3grantd makes, iam:PassRole for the location role,
 * the Access Grants service principal), the S3 user guide's location-role
 * example, and the export seed (s3:PutObject, s3:ListBucket, KMS). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "core/xalloc.h"

#define MAX_DEPTH 16
#define MAX_ACTIONS 16
#define MAX_RESOURCES 8
#define MAX_VALUES 4
#define MAX_CONDS 4
#define MAX_OWNED 48

static const char *const doc_names[POLICY_DOC_MAX] = {
	[POLICY_IDENTITY] = "identityPolicy",
	[POLICY_CALLER] = "callerPolicy",
	[POLICY_TRUST] = "trustPolicy",
	[POLICY_LOCATION_TRUST] = "locationRoleTrustPolicy",
	[POLICY_LOCATION_ROLE] = "locationRolePolicy",
	[POLICY_BUCKET] = "bucketPolicy",
	[POLICY_KMS] = "kmsStatements",
};

const char *policy_doc_name(enum policy_doc d)
{
	return (unsigned)d < POLICY_DOC_MAX ? doc_names[d] : "?";
}

void policy_set_free(struct policy_set *s)
{
	if (!s)
		return;
	for (int i = 0; i < POLICY_DOC_MAX; i++) {
		X_FREE(s->doc[i]);
		X_FREE(s->title[i]);
	}
}

const char *policy_partition(const char *region)
{
	if (region && strncmp(region, "cn-", 3) == 0)
		return "aws-cn";
	if (region && strncmp(region, "us-gov-", 7) == 0)
		return "aws-us-gov";
	return "aws";
}

/* ---- a pretty JSON writer -------------------------------------------------- */

struct jw {
	struct buf b;
	int depth;
	bool items[MAX_DEPTH];   /* something was written at this level */
	bool after_key;
	int r;                   /* first error */
};

static void jw_init(struct jw *w)
{
	memset(w, 0, sizeof(*w));
	buf_init(&w->b, POLICY_DOC_MAX_BYTES);
}

static void jw_raw(struct jw *w, const char *s, size_t n)
{
	if (w->r == 0)
		w->r = buf_append(&w->b, s, n);
}

static void jw_sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth == 0)
		return;
	if (w->items[w->depth])
		jw_raw(w, ",", 1);
	jw_raw(w, "\n", 1);
	for (int i = 0; i < w->depth; i++)
		jw_raw(w, "  ", 2);
	w->items[w->depth] = true;
}

static void jw_escaped(struct jw *w, const char *s)
{
	const char *run = s;

	jw_raw(w, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		jw_raw(w, run, (size_t)(s - run));
		if (ch == '"' || ch == '\\')
			snprintf(esc, sizeof(esc), "\\%c", ch);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
		jw_raw(w, esc, strlen(esc));
		run = s + 1;
	}
	jw_raw(w, run, (size_t)(s - run));
	jw_raw(w, "\"", 1);
}

static void jw_str(struct jw *w, const char *s)
{
	jw_sep(w);
	jw_escaped(w, s);
}

static void jw_key(struct jw *w, const char *k)
{
	jw_sep(w);
	jw_escaped(w, k);
	jw_raw(w, ": ", 2);
	w->after_key = true;
}

static void jw_open(struct jw *w, char c)
{
	jw_sep(w);
	jw_raw(w, &c, 1);
	if (w->depth + 1 >= MAX_DEPTH) {
		if (w->r == 0)
			w->r = S3G_ETOOBIG;
		return;
	}
	w->items[++w->depth] = false;
}

static void jw_close(struct jw *w, char c)
{
	bool had = w->items[w->depth];

	if (w->depth > 0)
		w->depth--;
	if (had) {
		jw_raw(w, "\n", 1);
		for (int i = 0; i < w->depth; i++)
			jw_raw(w, "  ", 2);
	}
	jw_raw(w, &c, 1);
}

/* ---- statements as data ---------------------------------------------------- */

struct cond {
	const char *op;                 /* "StringEquals", ... ; NULL = unused */
	const char *key;
	const char *v[MAX_VALUES];      /* one value is written as a string */
};

struct stmt {
	const char *sid;
	const char *ptype;              /* "AWS" or "Service"; NULL: no Principal */
	const char *principal;
	const char *action[MAX_ACTIONS];
	const char *resource[MAX_RESOURCES];   /* none: no Resource element */
	struct cond cond[MAX_CONDS];
};

static int count(const char *const *v, int max)
{
	int n = 0;

	while (n < max && v[n])
		n++;
	return n;
}

static void jw_values(struct jw *w, const char *const *v, int max, bool always_array)
{
	int n = count(v, max);

	if (n == 1 && !always_array) {
		jw_str(w, v[0]);
		return;
	}
	jw_open(w, '[');
	for (int i = 0; i < n; i++)
		jw_str(w, v[i]);
	jw_close(w, ']');
}

static void jw_stmt(struct jw *w, const struct stmt *s)
{
	jw_open(w, '{');
	jw_key(w, "Sid");
	jw_str(w, s->sid);
	jw_key(w, "Effect");
	jw_str(w, "Allow");
	if (s->ptype) {
		jw_key(w, "Principal");
		jw_open(w, '{');
		jw_key(w, s->ptype);
		jw_str(w, s->principal);
		jw_close(w, '}');
	}
	jw_key(w, "Action");
	jw_values(w, s->action, MAX_ACTIONS, true);
	if (s->resource[0]) {
		jw_key(w, "Resource");
		jw_values(w, s->resource, MAX_RESOURCES, true);
	}
	if (s->cond[0].op) {
		jw_key(w, "Condition");
		jw_open(w, '{');
		for (int i = 0; i < MAX_CONDS && s->cond[i].op; i++) {
			bool seen = false;

			for (int j = 0; j < i; j++)
				seen |= strcmp(s->cond[j].op, s->cond[i].op) == 0;
			if (seen)
				continue;
			jw_key(w, s->cond[i].op);
			jw_open(w, '{');
			for (int k = i; k < MAX_CONDS && s->cond[k].op; k++)
				if (strcmp(s->cond[k].op, s->cond[i].op) == 0) {
					jw_key(w, s->cond[k].key);
					jw_values(w, s->cond[k].v, MAX_VALUES, false);
				}
			jw_close(w, '}');
		}
		jw_close(w, '}');
	}
	jw_close(w, '}');
}

/* A document {Version, Statement: [...]} or, for key-policy statements, a bare array. */
static int render(const struct stmt *st, int n, bool bare, char **ret)
{
	struct jw w;
	int r;

	jw_init(&w);
	if (!bare) {
		jw_open(&w, '{');
		jw_key(&w, "Version");
		jw_str(&w, "2012-10-17");
		jw_key(&w, "Statement");
	}
	jw_open(&w, '[');
	for (int i = 0; i < n; i++)
		jw_stmt(&w, &st[i]);
	jw_close(&w, ']');
	if (!bare)
		jw_close(&w, '}');
	jw_raw(&w, "\n", 1);
	r = w.r;
	if (r == 0)
		*ret = buf_steal(&w.b);
	buf_free(&w.b);
	return r;
}

/* ---- generation context ------------------------------------------------------ */

struct gen {
	char *owned[MAX_OWNED];   /* strings the statements point to */
	int nowned;
	struct policy_set set;
	char *msg;
	size_t msg_size;
	int r;
};

static const char *own(struct gen *g, char *s)
{
	if (g->nowned >= MAX_OWNED)
		abort();   /* a programming error: MAX_OWNED is sized for the fixed set of strings */
	g->owned[g->nowned++] = s;
	return s;
}

static const char *fmt(struct gen *g, const char *f, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt(struct gen *g, const char *f, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	s = x_malloc((size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, f);
	vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, f, ap);
	va_end(ap);
	return own(g, s);
}

static int bad(struct gen *g, const char *f, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct gen *g, const char *f, ...)
{
	va_list ap;

	if (g->msg && g->msg_size) {
		va_start(ap, f);
		vsnprintf(g->msg, g->msg_size, f, ap);
		va_end(ap);
	}
	return S3G_EINVAL;
}

static void emit(struct gen *g, enum policy_doc d, const struct stmt *st, int n, const char *title)
{
	if (g->r == 0)
		g->r = render(st, n, d == POLICY_KMS, &g->set.doc[d]);
	g->set.title[d] = x_strdup(title);
}

static void gen_free(struct gen *g)
{
	for (int i = 0; i < g->nowned; i++)
		x_free(g->owned[i]);
	policy_set_free(&g->set);
}

static int finish(struct gen *g, struct policy_set *ret_set)
{
	int r = g->r;

	if (r == S3G_ETOOBIG)
		r = bad(g, "policy: a document would exceed %d bytes", POLICY_DOC_MAX_BYTES);
	if (r == 0) {
		*ret_set = g->set;
		memset(&g->set, 0, sizeof(g->set));
	}
	gen_free(g);
	return r;
}

/* ---- input checks ------------------------------------------------------------- */

static bool all_of(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZ" LOWER_DIGITS

static bool is_account(const char *s)
{
	return s && strlen(s) == 12 && all_of(s, "0123456789");
}

static bool is_region(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 4 && n <= 32 && all_of(s, LOWER_DIGITS "-") && strchr(s, '-') && s[0] != '-' &&
	       s[n - 1] != '-';
}

static bool is_partition(const char *s, size_t n)
{
	return (n == 3 && strncmp(s, "aws", 3) == 0) || (n == 6 && strncmp(s, "aws-cn", 6) == 0) ||
	       (n == 10 && strncmp(s, "aws-us-gov", 10) == 0);
}

/* arn:PARTITION:iam::ACCOUNT:role/NAME; the account is copied to ret_account (13 bytes). */
static bool is_role_arn(const char *s, char *ret_account)
{
	const char *p, *acct;

	if (!s || strncmp(s, "arn:", 4) != 0 || strlen(s) > 2048)
		return false;
	p = strchr(s + 4, ':');
	if (!p || !is_partition(s + 4, (size_t)(p - s - 4)) || strncmp(p, ":iam::", 6) != 0)
		return false;
	acct = p + 6;
	if (strspn(acct, "0123456789") != 12 || strncmp(acct + 12, ":role/", 6) != 0 || !acct[18])
		return false;
	if (!all_of(acct + 18, ALNUM "+=,.@_-/"))
		return false;
	memcpy(ret_account, acct, 12);
	ret_account[12] = '\0';
	return true;
}

/* IAM user or role ARN, account root ARN, or a 12-digit account (returned as its root ARN). */
static bool is_principal(const char *s)
{
	const char *p;

	if (!s || strlen(s) > 2048 || strncmp(s, "arn:", 4) != 0)
		return false;
	p = strchr(s + 4, ':');
	if (!p || !is_partition(s + 4, (size_t)(p - s - 4)))
		return false;
	if (strncmp(p, ":iam::", 6) != 0 && strncmp(p, ":sts::", 6) != 0)
		return false;
	p += 6;
	if (strspn(p, "0123456789") != 12 || p[12] != ':')
		return false;
	return p[13] && all_of(p + 13, ALNUM "+=,.@_-/:");
}

static bool is_external_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 2 && n <= 1224 && all_of(s, ALNUM "+=,.@:/_-");
}

static bool is_session_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 2 && n <= 64 && all_of(s, ALNUM "+=,.@_-");
}

static bool is_bucket(const char *s, size_t n)
{
	if (n < 3 || n > 63 || strspn(s, LOWER_DIGITS ".-") < n)
		return false;
	return s[0] != '.' && s[0] != '-' && s[n - 1] != '.' && s[n - 1] != '-';
}

/* Key prefix text for an ARN: printable, no IAM wildcards. */
static bool is_key_text(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '*' || *s == '?')
			return false;
	return true;
}

/* ---- shared pieces -------------------------------------------------------------- */

struct trust_in {
	const char *role;          /* the role assumed */
	const char *role_account;
	const char *principal;     /* NULL: the role account's root */
	const char *external_id;
	const char *session_name;  /* NULL: the prefix pattern */
	const char *part;
};

static void emit_trust(struct gen *g, const struct trust_in *t, const char *what)
{
	const char *who = t->principal ? t->principal : fmt(g, "arn:%s:iam::%s:root", t->part, t->role_account);
	struct stmt trust = {
		.sid = "AssumedByS3grantd",
		.ptype = "AWS", .principal = who,
		.action = { "sts:AssumeRole" },
		.cond = {
			{ "StringEquals", "sts:ExternalId", { t->external_id } },
			{ t->session_name ? "StringEquals" : "StringLike", "sts:RoleSessionName",
			  { t->session_name ? t->session_name : POLICY_SESSION_PREFIX "*" } },
		},
	};
	struct stmt caller = {
		.sid = "AssumeS3grantdRole",
		.action = { "sts:AssumeRole" },
		.resource = { t->role },
	};

	emit(g, POLICY_TRUST, &trust, 1,
	     fmt(g, "trust policy for %s (%s): s3grantd assumes it with ExternalId %s and session name %s",
		 t->role, what, t->external_id, t->session_name ? t->session_name : POLICY_SESSION_PREFIX "*"));
	emit(g, POLICY_CALLER, &caller, 1,
	     fmt(g, "policy for the credentials s3grantd starts from (%s): lets them assume %s",
		 t->principal ? t->principal : "its IAM user or role", t->role));
}

/* KMS resource (and an alias condition) for a key id, key ARN, alias name or alias ARN. */
static int kms_resource(struct gen *g, const char *key, const char *part, const char *region,
			const char *account, const char **ret_res, const char **ret_alias)
{
	const char *alias = NULL, *res;

	if (strlen(key) > 2048 || !all_of(key, ALNUM ":/_+=,.@-"))
		return bad(g, "kmsKeyId: '%s' is not a KMS key id, key ARN or alias", key);
	if (strncmp(key, "arn:", 4) == 0) {
		const char *a = strstr(key, ":alias/");

		if (!strstr(key, ":kms:") || (!a && !strstr(key, ":key/")))
			return bad(g, "kmsKeyId: '%s' is not a KMS key or alias ARN", key);
		if (a) {
			/* arn:P:kms:REGION:ACCOUNT:alias/NAME -> any key of that account with that alias */
			alias = own(g, x_strdup(a + 1));
			res = own(g, x_strndup(key, (size_t)(a - key) + 1));
			res = fmt(g, "%skey/*", res);
		} else {
			res = key;
		}
	} else if (strncmp(key, "alias/", 6) == 0) {
		alias = key;
		res = fmt(g, "arn:%s:kms:%s:%s:key/*", part, region, account ? account : "*");
	} else if (strchr(key, '/') || strchr(key, ':')) {
		return bad(g, "kmsKeyId: '%s' is not a KMS key id, key ARN or alias", key);
	} else {
		res = fmt(g, "arn:%s:kms:%s:%s:key/%s", part, region, account ? account : "*", key);
	}
	*ret_res = res;
	*ret_alias = alias;
	return 0;
}

/* ---- integration ---------------------------------------------------------------- */

int policy_integration(const struct policy_integration *in, struct policy_set *ret_set, char *msg, size_t msg_size)
{
	struct gen g = { .msg = msg, .msg_size = msg_size };
	char loc_account[13], assume_account[13];
	const char *account, *region, *part, *instance, *bucket_arn, *objects_arn, *label, *scope;
	const char *prefix_like[3] = { NULL };
	char *bucket = NULL, *prefix = NULL;
	bool exact_glob = false;
	int r;

	if (!in)
		return S3G_EINVAL;
	account = in->account ? in->account : "";
	region = in->region ? in->region : "";
	label = in->label ? in->label : "the integration";
	if (!is_account(account)) {
		r = bad(&g, "awsAccountId: '%s' is not a 12-digit AWS account id", account);
		goto out;
	}
	if (!is_region(region)) {
		r = bad(&g, "awsRegion: '%s' is not an AWS region name", region);
		goto out;
	}
	if (!is_role_arn(in->location_role, loc_account)) {
		r = bad(&g, "awsLocationRole: '%s' is not an IAM role ARN", in->location_role ? in->location_role : "");
		goto out;
	}
	if (in->role_to_assume && !is_role_arn(in->role_to_assume, assume_account)) {
		r = bad(&g, "awsRoleToAssume: '%s' is not an IAM role ARN", in->role_to_assume);
		goto out;
	}
	if (in->role_to_assume && !is_external_id(in->external_id)) {
		r = bad(&g, "externalId: '%s' is not a valid ExternalId (2-1224 of A-Za-z0-9+=,.@:/_-)",
			in->external_id ? in->external_id : "");
		goto out;
	}
	if (in->session_name && !is_session_name(in->session_name)) {
		r = bad(&g, "roleSessionName: '%s' is not a valid session name", in->session_name);
		goto out;
	}
	if (in->principal && !is_principal(in->principal)) {
		r = bad(&g, "principal: '%s' is not an IAM principal ARN", in->principal);
		goto out;
	}
	if (in->kms_key_arn && (strncmp(in->kms_key_arn, "arn:", 4) != 0 || !strstr(in->kms_key_arn, ":kms:") ||
				!strstr(in->kms_key_arn, ":key/") || !all_of(in->kms_key_arn, ALNUM ":/_-"))) {
		r = bad(&g, "kms-key: '%s' is not a KMS key ARN (arn:...:kms:REGION:ACCOUNT:key/ID)", in->kms_key_arn);
		goto out;
	}
	scope = in->location_path ? in->location_path : "";
	if (strncmp(scope, "s3://", 5) != 0) {
		r = bad(&g, "awsLocationPath: '%s' is not s3:// or s3://bucket[/prefix]", scope);
		goto out;
	}
	{
		const char *rest = scope + 5, *slash = strchr(rest, '/');
		size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);

		if (blen) {
			bucket = x_strndup(rest, blen);
			if (!is_bucket(bucket, blen)) {
				r = bad(&g, "awsLocationPath: '%s' is not a valid bucket name", bucket);
				goto out;
			}
		}
		if (slash) {
			size_t n;

			prefix = x_strdup(slash + 1);
			n = strlen(prefix);
			if (n && prefix[n - 1] == '*') {   /* a string-prefix scope: s3://bucket/pre* */
				prefix[--n] = '\0';
				exact_glob = true;
			}
			while (n && prefix[n - 1] == '/')
				prefix[--n] = '\0';
			if (!is_key_text(prefix) || n > 1024) {
				r = bad(&g, "awsLocationPath: the prefix in '%s' has a wildcard or control character", scope);
				goto out;
			}
			if (!n && !exact_glob)
				X_FREE(prefix);
		}
	}

	part = policy_partition(region);
	instance = fmt(&g, "arn:%s:s3:%s:%s:access-grants/default", part, region, account);
	if (!bucket) {
		bucket_arn = fmt(&g, "arn:%s:s3:::*", part);
		objects_arn = bucket_arn;
	} else if (!prefix) {
		bucket_arn = fmt(&g, "arn:%s:s3:::%s", part, bucket);
		objects_arn = fmt(&g, "arn:%s:s3:::%s/*", part, bucket);
	} else if (exact_glob) {
		bucket_arn = fmt(&g, "arn:%s:s3:::%s", part, bucket);
		objects_arn = fmt(&g, "arn:%s:s3:::%s/%s*", part, bucket, prefix);
		prefix_like[0] = fmt(&g, "%s*", prefix);
	} else {
		bucket_arn = fmt(&g, "arn:%s:s3:::%s", part, bucket);
		objects_arn = fmt(&g, "arn:%s:s3:::%s/%s/*", part, bucket, prefix);
		prefix_like[0] = prefix;
		prefix_like[1] = fmt(&g, "%s/*", prefix);
	}

	/* (1) the identity policy: exactly the calls s3grantd makes */
	{
		struct stmt st[8] = {
			{
				.sid = "AccessGrantsInstance",
				.action = { "s3:CreateAccessGrantsInstance", "s3:GetAccessGrantsInstance",
					    "s3:GetAccessGrantsInstanceForPrefix", "s3:CreateAccessGrantsLocation",
					    "s3:ListAccessGrantsLocations", "s3:ListAccessGrants" },
				.resource = { instance },
			},
			{
				.sid = "AccessGrantsLocation",
				.action = { "s3:GetAccessGrantsLocation", "s3:DeleteAccessGrantsLocation",
					    "s3:CreateAccessGrant" },
				.resource = { fmt(&g, "%s/location/*", instance) },
			},
			{
				.sid = "AccessGrants",
				.action = { "s3:GetAccessGrant", "s3:DeleteAccessGrant" },
				.resource = { fmt(&g, "%s/grant/*", instance) },
			},
			{
				.sid = "PassLocationRole",
				.action = { "iam:PassRole" },
				.resource = { in->location_role },
			},
			{
				.sid = "ValidateLocationPath",
				.action = { "s3:ListBucket" },
				.resource = { bucket_arn },
				.cond = { { prefix_like[0] ? "StringLike" : NULL, "s3:prefix",
					    { prefix_like[0], prefix_like[1] } } },
			},
			{
				.sid = "CallerIdentity",
				.action = { "sts:GetCallerIdentity" },
				.resource = { "*" },
			},
		};
		int n = 6;

		if (in->directory_users) {
			st[n++] = (struct stmt){
				.sid = "IdentityCenterDescribe",
				.action = { "sso:DescribeInstance", "sso:DescribeApplication" },
				.resource = { fmt(&g, "arn:%s:sso:::instance/*", part),
					      fmt(&g, "arn:%s:sso::%s:application/*", part, account) },
			};
			st[n++] = (struct stmt){
				.sid = "IdentityStoreDescribe",
				.action = { "identitystore:DescribeUser", "identitystore:DescribeGroup" },
				.resource = { fmt(&g, "arn:%s:identitystore::%s:identitystore/*", part, account),
					      fmt(&g, "arn:%s:identitystore:::user/*", part),
					      fmt(&g, "arn:%s:identitystore:::group/*", part) },
			};
		}
		emit(&g, POLICY_IDENTITY, st, n,
		     in->role_to_assume
			     ? fmt(&g, "identity policy for %s: attach to %s, the role s3grantd assumes", label,
				   in->role_to_assume)
			     : fmt(&g, "identity policy for %s: attach to the IAM user or role whose credentials "
				       "s3grantd uses (account %s)", label, account));
	}

	/* (2) the role s3grantd assumes */
	if (in->role_to_assume) {
		struct trust_in t = { in->role_to_assume, assume_account, in->principal, in->external_id,
				      in->session_name, part };

		emit_trust(&g, &t, label);
	}

	/* (3) the location role: trusted by Access Grants, scoped to the location */
	{
		struct stmt trust[2] = {
			{
				.sid = "AccessGrantsAssumeLocationRole",
				.ptype = "Service", .principal = "access-grants.s3.amazonaws.com",
				.action = { "sts:AssumeRole", "sts:SetSourceIdentity" },
				.cond = {
					{ "StringEquals", "aws:SourceAccount", { account } },
					{ "ArnEquals", "aws:SourceArn", { instance } },
				},
			},
			{
				.sid = "AccessGrantsIdentityCenterContext",
				.ptype = "Service", .principal = "access-grants.s3.amazonaws.com",
				.action = { "sts:SetContext" },
				.cond = {
					{ "StringEquals", "aws:SourceAccount", { account } },
					{ "ForAllValues:ArnEquals", "sts:RequestContextProviders",
					  { fmt(&g, "arn:%s:iam::aws:contextProvider/IdentityCenter", part) } },
				},
			},
		};
		struct cond scoped[MAX_CONDS] = {
			{ "StringEquals", "aws:ResourceAccount", { account } },
			{ "ArnEquals", "s3:AccessGrantsInstanceArn", { instance } },
		};
		struct stmt role[4] = {
			{
				.sid = "ObjectLevelReadPermissions",
				.action = { "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAcl",
					    "s3:GetObjectVersionAcl", "s3:ListMultipartUploadParts" },
				.resource = { objects_arn },
			},
			{
				.sid = "ObjectLevelWritePermissions",
				.action = { "s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl", "s3:DeleteObject",
					    "s3:DeleteObjectVersion", "s3:AbortMultipartUpload" },
				.resource = { objects_arn },
			},
			{
				.sid = "BucketLevelReadPermissions",
				.action = { "s3:ListBucket" },
				.resource = { bucket_arn },
			},
			{
				.sid = "KmsForSseKmsObjects",
				.action = { "kms:Decrypt", "kms:GenerateDataKey" },
				.resource = { in->kms_key_arn },
			},
		};
		struct stmt key = {
			.sid = "AllowS3AccessGrantsLocationRole",
			.ptype = "AWS", .principal = in->location_role,
			.action = { "kms:Decrypt", "kms:GenerateDataKey" },
			.resource = { "*" },
		};

		for (int i = 0; i < 3; i++)
			memcpy(role[i].cond, scoped, sizeof(scoped));
		if (prefix_like[0])
			role[2].cond[2] = (struct cond){ "StringLike", "s3:prefix", { prefix_like[0], prefix_like[1] } };
		emit(&g, POLICY_LOCATION_TRUST, trust, in->directory_users ? 2 : 1,
		     fmt(&g, "trust policy for the location role %s (%s): S3 Access Grants assumes it", in->location_role,
			 label));
		emit(&g, POLICY_LOCATION_ROLE, role, in->kms_key_arn ? 4 : 3,
		     fmt(&g, "permissions policy for the location role %s: the data under %s", in->location_role, scope));
		if (in->kms_key_arn)
			emit(&g, POLICY_KMS, &key, 1,
			     fmt(&g, "statements for the key policy of %s (the location role encrypts and decrypts "
				     "with it)", in->kms_key_arn));
	}
	r = 0;
out:
	x_free(bucket);
	x_free(prefix);
	if (r < 0) {
		gen_free(&g);
		return r;
	}
	return finish(&g, ret_set);
}

/* ---- export --------------------------------------------------------------------- */

int policy_export(const struct policy_export *in, struct policy_set *ret_set, char *msg, size_t msg_size)
{
	struct gen g = { .msg = msg, .msg_size = msg_size };
	char role_account[13] = "";
	const char *region, *part, *path, *objects_arn, *bucket_arn, *key_res = NULL, *alias = NULL, *who;
	const char *prefix_like[3] = { NULL };
	int r;

	if (!in)
		return S3G_EINVAL;
	region = in->region ? in->region : "";
	path = in->path ? in->path : "";
	if (!in->bucket || !is_bucket(in->bucket, strlen(in->bucket))) {
		r = bad(&g, "bucket: '%s' is not an S3 bucket name", in->bucket ? in->bucket : "");
		goto fail;
	}
	if (!is_region(region)) {
		r = bad(&g, "region: '%s' is not an AWS region name", region);
		goto fail;
	}
	if (strlen(path) > 1024 || !is_key_text(path) || path[0] == '/' || (path[0] && path[strlen(path) - 1] == '/')) {
		r = bad(&g, "path: '%s' is not a folder name inside the bucket", path);
		goto fail;
	}
	if (in->role_arn && !is_role_arn(in->role_arn, role_account)) {
		r = bad(&g, "roleArn: '%s' is not an IAM role ARN", in->role_arn);
		goto fail;
	}
	if (in->role_arn && !is_external_id(in->external_id)) {
		r = bad(&g, "externalId: '%s' is not a valid ExternalId", in->external_id ? in->external_id : "");
		goto fail;
	}
	if (in->session_name && !is_session_name(in->session_name)) {
		r = bad(&g, "roleSessionName: '%s' is not a valid session name", in->session_name);
		goto fail;
	}
	if (in->principal && !is_principal(in->principal)) {
		r = bad(&g, "principal: '%s' is not an IAM principal ARN", in->principal);
		goto fail;
	}
	part = policy_partition(region);
	if (in->kms_key && (r = kms_resource(&g, in->kms_key, part, region, role_account[0] ? role_account : NULL,
					     &key_res, &alias)) < 0)
		goto fail;

	bucket_arn = fmt(&g, "arn:%s:s3:::%s", part, in->bucket);
	if (path[0]) {
		objects_arn = fmt(&g, "arn:%s:s3:::%s/%s/*", part, in->bucket, path);
		prefix_like[0] = path;
		prefix_like[1] = fmt(&g, "%s/*", path);
	} else {
		objects_arn = fmt(&g, "arn:%s:s3:::%s/*", part, in->bucket);
	}
	/* the role, or the IAM user the admin named: the principal of the bucket and key policies */
	who = in->role_arn ? in->role_arn : in->principal;
	{
		struct stmt st[3] = {
			{
				.sid = "PutAccessSummaryObjects",
				.action = { "s3:PutObject" },
				.resource = { objects_arn },
			},
			{
				.sid = "ListAccessSummaryPrefix",
				.action = { "s3:ListBucket" },
				.resource = { bucket_arn },
				.cond = { { prefix_like[0] ? "StringLike" : NULL, "s3:prefix",
					    { prefix_like[0], prefix_like[1] } } },
			},
			{
				.sid = "EncryptAccessSummaryWithKms",
				.action = { "kms:GenerateDataKey", "kms:Decrypt" },
				.resource = { key_res },
				.cond = { { alias ? "ForAnyValue:StringEquals" : NULL, "kms:ResourceAliases", { alias } } },
			},
		};

		emit(&g, POLICY_IDENTITY, st, key_res ? 3 : 2,
		     in->role_arn ? fmt(&g, "identity policy for the access summary export: attach to %s, the role "
					    "s3grantd assumes", in->role_arn)
				  : fmt(&g, "identity policy for the access summary export: attach to the IAM user whose "
					    "access key s3grantd uses%s%s", in->principal ? " (" : "",
					in->principal ? fmt(&g, "%s)", in->principal) : ""));
		if (who) {
			struct stmt bp[2];

			memcpy(bp, st, sizeof(bp));
			for (int i = 0; i < 2; i++) {
				bp[i].ptype = "AWS";
				bp[i].principal = who;
			}
			bp[0].sid = "S3grantdPutAccessSummary";
			bp[1].sid = "S3grantdListAccessSummary";
			emit(&g, POLICY_BUCKET, bp, 2,
			     fmt(&g, "bucket policy for %s (optional: add these statements when the bucket policy "
				     "restricts access)", in->bucket));
		}
		if (key_res && who) {
			struct stmt key = {
				.sid = "AllowS3grantdAccessSummaryExport",
				.ptype = "AWS", .principal = who,
				.action = { "kms:GenerateDataKey", "kms:Decrypt" },
				.resource = { "*" },
			};

			emit(&g, POLICY_KMS, &key, 1,
			     fmt(&g, "statements for the key policy of %s (s3grantd writes the export with SSE-KMS)",
				 in->kms_key));
		}
	}
	if (in->role_arn) {
		struct trust_in t = { in->role_arn, role_account, in->principal, in->external_id, in->session_name, part };

		emit_trust(&g, &t, "the access summary export");
	}
	return finish(&g, ret_set);
fail:
	gen_free(&g);
	return r;
}

/* ---- the combined object ------------------------------------------------------ */

int policy_set_json(const struct policy_set *s, struct buf *out)
{
	int r = buf_puts(out, "{");

	for (int i = 0; i < POLICY_DOC_MAX && r == 0; i++) {
		const char *d = s->doc[i];

		r = buf_printf(out, "%s\n  \"%s\": ", i ? "," : "", doc_names[i]);
		if (r == 0 && !d)
			r = buf_puts(out, "null");
		/* re-indent by two spaces: strings never hold a raw newline */
		for (; r == 0 && d && *d; d++) {
			if (*d == '\n' && d[1])
				r = buf_puts(out, "\n  ");
			else if (*d != '\n')
				r = buf_append(out, d, 1);
		}
	}
	if (r == 0)
		r = buf_puts(out, "\n}\n");
	return r;
}
