/* export_s3.c — upload of the access summary to S3, and the save-time check.
 *
 * One operation: [AssumeRole | GetCallerIdentity] → (upload) PutObject × n,
 * manifest last → ListObjectsV2 pages on the day's prefix; (check)
 * ListObjectsV2 on bucket/path. Then teardown: clients closed, then the
 * credential providers, then the callback — from a zero timer, so nothing
 * is closed inside its own callback chain.
 */
#include "daemon/export_s3.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/client.h"
#include "aws/credprov.h"
#include "aws/http.h"
#include "aws/s3.h"
#include "aws/sts.h"
#include "core/policy.h"
#include "core/xalloc.h"

#define DEF_TIMEOUT_MS 30000u
#define DEF_ATTEMPTS 3u
#define ERR_MAX 2048

enum op_kind { OP_UPLOAD, OP_CHECK };

enum op_state {
	ST_IDLE,
	ST_AUTH,                      /* AssumeRole or GetCallerIdentity */
	ST_PUT,                       /* PutObject obj[next] */
	ST_LIST,                      /* ListObjectsV2 page */
	ST_TEARDOWN,                  /* closing clients and providers */
	ST_STATE_MAX
};

struct op {
	enum op_kind kind;
	enum op_state state;
	/* what: copies (the check's cfg is gone after export_s3_check returns) */
	char *bucket, *region, *path, *kms_key_id, *role_arn, *external_id, *access_key_id;
	enum exportdb_auth auth;
	const struct exportfile_result *files;  /* upload: borrowed until done */
	/* how */
	struct credprov *base;        /* role: signs AssumeRole */
	struct aws_client *sts;
	struct credprov *creds;       /* the export's own credentials */
	struct aws_client *s3;
	size_t next;                  /* next object to put */
	char *token;                  /* ListObjectsV2 continuation */
	bool seen[EXPORTFILE_KIND_MAX];
	char *identity;               /* caller / assumed role ARN */
	unsigned closing;             /* close callbacks outstanding */
	/* outcome */
	int status;
	char error[ERR_MAX];
	export_upload_done_cb done;
	void *done_ud;
	export_s3_check_cb check_cb;
	void *check_ud;
};

struct export_s3 {
	uv_loop_t *loop;
	struct http_engine *http;
	uv_timer_t timer;             /* runs teardown steps outside callback chains */
	struct export_s3_opts o;      /* strings below are the copies */
	char *ca_file, *ep, *ep_s3, *ep_sts, *akid, *secret;
	bool have_key;
	struct secrets_key key;
	struct op *op;                /* the operation in flight, or NULL */
	bool closing;
	unsigned close_pending;
	void (*close_cb)(void *ud);
	void *close_ud;
};

static char *dup_or_null(const char *s)
{
	return s && *s ? x_strdup(s) : NULL;
}

static void wipe_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		x_free(s);
	}
}

/* ---- messages ------------------------------------------------------------------- */

/* The object ARN pattern of the export: bucket, path, then a star. */
static void object_arn(const struct op *p, char *out, size_t n)
{
	snprintf(out, n, "arn:%s:s3:::%s/%s%s*", policy_partition(p->region), p->bucket, p->path ? p->path : "",
		 p->path ? "/" : "");
}

static bool code_is(const struct aws_result *res, const char *code)
{
	return res && res->code && strcmp(res->code, code) == 0;
}

static const char *aws_text(int status, const struct aws_result *res)
{
	return res && res->error && res->error[0] ? res->error : err_str(status);
}

/* The hint after the AWS text: what the admin changes. */
static void hint(const struct op *p, const char *opname, int status, const struct aws_result *res, char *out,
		 size_t n)
{
	const char *who = p->auth == EXPORTDB_AUTH_ASSUME_ROLE ? "the role" : "the IAM user";
	const char *actual = res && res->resp ? http_response_header(res->resp, "x-amz-bucket-region") : NULL;
	char arn[600];

	out[0] = '\0';
	if (status == S3G_ETRANSPORT || status == S3G_ETIMEOUT) {
		snprintf(out, n, "cannot reach AWS: check the network, proxy and [aws] endpoint_url / ca_file");
		return;
	}
	if (status == S3G_ECREDS) {
		snprintf(out, n, "s3grantd has no AWS credentials of its own to call AssumeRole with: set [aws] "
			 "access_key_id/secret_access_key or provide the default chain (environment, profile, "
			 "web identity, container or instance role)");
		return;
	}
	if (!res || !res->code) {
		if (res && res->http_code == 301)
			snprintf(out, n, "bucket %s is in region %s, not %s: fix region", p->bucket,
				 actual ? actual : "(another)", p->region);
		else if (res && res->http_code == 404 && strcmp(opname, "AssumeRole") != 0)
			snprintf(out, n, "bucket %s does not exist: fix bucket", p->bucket);
		return;
	}
	if (code_is(res, "InvalidAccessKeyId") || code_is(res, "InvalidClientTokenId")) {
		if (p->auth == EXPORTDB_AUTH_ASSUME_ROLE && strcmp(opname, "AssumeRole") == 0)
			snprintf(out, n, "AWS does not know s3grantd's own access key id: fix [aws] access_key_id "
				 "or the default credential chain");
		else if (p->auth == EXPORTDB_AUTH_ACCESS_KEY)
			snprintf(out, n, "AWS does not know access key id %s: fix accessKeyId (a new key for the "
				 "IAM user)", p->access_key_id);
		return;
	}
	if (code_is(res, "SignatureDoesNotMatch")) {
		if (p->auth == EXPORTDB_AUTH_ACCESS_KEY)
			snprintf(out, n, "the secret does not belong to access key id %s: fix secretAccessKey",
				 p->access_key_id);
		else
			snprintf(out, n, "s3grantd's own secret key does not match its access key id: fix "
				 "[aws] secret_access_key");
		return;
	}
	if (code_is(res, "NoSuchBucket")) {
		snprintf(out, n, "bucket %s does not exist: fix bucket", p->bucket);
		return;
	}
	if (code_is(res, "PermanentRedirect") || code_is(res, "AuthorizationHeaderMalformed") ||
	    code_is(res, "IllegalLocationConstraintException") || res->http_code == 301) {
		snprintf(out, n, "bucket %s is in region %s, not %s: fix region", p->bucket,
			 actual ? actual : "(another)", p->region);
		return;
	}
	if (strncmp(res->code, "KMS.", 4) == 0 || (code_is(res, "AccessDenied") && p->kms_key_id && res->message &&
						   strstr(res->message, "kms"))) {
		snprintf(out, n, "%s needs kms:GenerateDataKey and kms:Decrypt on KMS key %s (and the key must "
			 "exist and be enabled in %s): fix the key policy or kmsKeyId", who,
			 p->kms_key_id ? p->kms_key_id : "(the bucket's default)", p->region);
		return;
	}
	if (code_is(res, "ExpiredToken") || code_is(res, "InvalidToken")) {
		snprintf(out, n, "the session credentials expired or were revoked");
		return;
	}
	if (!code_is(res, "AccessDenied") && !code_is(res, "AllAccessDisabled"))
		return;
	if (strcmp(opname, "AssumeRole") == 0) {
		snprintf(out, n, "the trust policy of %s must allow sts:AssumeRole by s3grantd's own identity with "
			 "sts:ExternalId = %s, and that identity needs sts:AssumeRole on the role "
			 "(s3grantctl policy export prints both)", p->role_arn, p->external_id ? p->external_id : "");
	} else if (strcmp(opname, "PutObject") == 0) {
		object_arn(p, arn, sizeof(arn));
		snprintf(out, n, "%s needs s3:PutObject on %s%s%s%s", who, arn,
			 p->kms_key_id ? " (and kms:GenerateDataKey, kms:Decrypt on " : "",
			 p->kms_key_id ? p->kms_key_id : "", p->kms_key_id ? ")" : "");
	} else if (strcmp(opname, "ListObjectsV2") == 0) {
		if (p->path)
			snprintf(out, n, "%s needs s3:ListBucket on arn:%s:s3:::%s for s3:prefix %s/*", who,
				 policy_partition(p->region), p->bucket, p->path);
		else
			snprintf(out, n, "%s needs s3:ListBucket on arn:%s:s3:::%s", who, policy_partition(p->region),
				 p->bucket);
	} else if (strcmp(opname, "GetCallerIdentity") == 0) {
		snprintf(out, n, "the credentials cannot call sts:GetCallerIdentity (an SCP denies it?)");
	}
}

/* "Op s3://bucket/key: <AWS text> — <hint>" into p->error. */
static void fail_msg(struct op *p, const char *opname, const char *object, int status, const struct aws_result *res)
{
	char h[700];
	const char *text = aws_text(status, res);
	size_t ol = strlen(opname);

	hint(p, opname, status, res, h, sizeof(h));
	/* the client's text starts with "Op: "; the object goes between */
	if (strncmp(text, opname, ol) == 0 && text[ol] == ':')
		text += ol + 1 + (text[ol + 1] == ' ');
	snprintf(p->error, sizeof(p->error), "%s%s%s: %s%s%s", opname, object ? " " : "", object ? object : "", text,
		 h[0] ? " — " : "", h);
	p->status = status < 0 ? status : S3G_EAWS;
}

/* ---- teardown ----------------------------------------------------------------------- */

static void teardown(struct export_s3 *x);

static void on_timer(uv_timer_t *t)
{
	teardown(t->data);
}

/* Finish the operation: teardown from a fresh loop pass. */
static void finish(struct export_s3 *x)
{
	x->op->state = ST_TEARDOWN;
	uv_timer_start(&x->timer, on_timer, 0, 0);
}

static void op_free(struct op *p)
{
	x_free(p->bucket);
	x_free(p->region);
	x_free(p->path);
	x_free(p->kms_key_id);
	x_free(p->role_arn);
	x_free(p->external_id);
	x_free(p->access_key_id);
	x_free(p->token);
	x_free(p->identity);
	x_free(p);
}

static void deliver(struct export_s3 *x)
{
	struct op *p = x->op;

	x->op = NULL;
	if (p->kind == OP_UPLOAD)
		p->done(p->done_ud, p->status, p->status ? p->error : NULL);
	else
		p->check_cb(p->check_ud, p->status, p->identity, p->status ? p->error : NULL);
	op_free(p);
	if (x->closing)
		teardown(x);
}

static void on_client_closed(struct aws_client *cl, void *user)
{
	struct export_s3 *x = user;

	aws_client_free(cl);
	if (--x->op->closing == 0)
		teardown(x);
}

static void on_prov_closed(struct credprov *pv, void *user)
{
	struct export_s3 *x = user;

	credprov_free(pv);
	if (--x->op->closing == 0)
		teardown(x);
}

static void on_http_closed(struct http_engine *eng, void *user)
{
	struct export_s3 *x = user;

	http_engine_free(eng);
	x->http = NULL;
	if (--x->close_pending == 0)
		teardown(x);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct export_s3 *x = h->data;

	if (--x->close_pending == 0)
		teardown(x);
}

/* Each call advances one stage; re-entered from every close callback. */
static void teardown(struct export_s3 *x)
{
	struct op *p = x->op;

	if (p) {
		if (p->state != ST_TEARDOWN || p->closing)
			return;
		if (p->s3 || p->sts) {
			struct aws_client *c[2] = { p->s3, p->sts };

			p->s3 = p->sts = NULL;
			for (int i = 0; i < 2; i++)
				if (c[i]) {
					p->closing++;
					aws_client_close(c[i], on_client_closed, x);
				}
			return;
		}
		if (p->creds || p->base) {
			struct credprov *v[2] = { p->creds, p->base };

			p->creds = p->base = NULL;
			for (int i = 0; i < 2; i++)
				if (v[i]) {
					p->closing++;
					credprov_close(v[i], on_prov_closed, x);
				}
			return;
		}
		deliver(x);   /* calls teardown again when closing */
		return;
	}
	if (!x->closing || x->close_pending)
		return;
	if (x->http) {
		x->close_pending = 2;
		http_engine_close(x->http, on_http_closed, x);
		uv_close((uv_handle_t *)&x->timer, on_handle_closed);
		return;
	}
	{
		void (*cb)(void *) = x->close_cb;
		void *ud = x->close_ud;

		x_free(x->ca_file);
		x_free(x->ep);
		x_free(x->ep_s3);
		x_free(x->ep_sts);
		x_free(x->akid);
		wipe_free(x->secret);
		secrets_key_wipe(&x->key);
		x_free(x);
		if (cb)
			cb(ud);
	}
}

/* ---- clients ------------------------------------------------------------------------ */

static void env_of(const struct export_s3 *x, const struct op *p, struct credprov_env *e)
{
	memset(e, 0, sizeof(*e));
	e->loop = x->loop;
	e->http = x->http;
	e->region = p->region;
	e->endpoints.sts_url = x->ep_sts ? x->ep_sts : x->ep;
	e->endpoints.s3_url = x->ep_s3 ? x->ep_s3 : x->ep;
	e->endpoints.getenv = endpoint_getenv_process;
	e->timeout_ms = x->o.timeout_ms;
}

static int client_new(struct export_s3 *x, struct op *p, struct credprov *creds, struct aws_client **ret)
{
	struct aws_client_opts o;
	struct retry_policy rp;

	retry_policy_classic(&rp);
	rp.max_attempts = x->o.max_attempts;
	aws_client_opts_default(&o);
	o.http = x->http;
	o.creds = creds;
	o.region = p->region;
	o.endpoints.sts_url = x->ep_sts ? x->ep_sts : x->ep;
	o.endpoints.s3_url = x->ep_s3 ? x->ep_s3 : x->ep;
	o.endpoints.getenv = endpoint_getenv_process;
	o.policy = &rp;
	o.max_in_flight = 4;
	o.timeout_ms = x->o.timeout_ms;
	return aws_client_new(x->loop, &o, ret);   /* copies what it keeps */
}

/* ---- the steps ---------------------------------------------------------------------- */

static void put_next(struct export_s3 *x);
static void list_page(struct export_s3 *x);

static void on_list(int status, const struct aws_result *res, struct shapes_object_list *list, void *user)
{
	struct export_s3 *x = user;
	struct op *p = x->op;
	char obj[1200];

	if (p->state != ST_LIST)
		return;
	if (status < 0) {
		if (p->kind == OP_UPLOAD)
			snprintf(obj, sizeof(obj), "s3://%s/%s", p->bucket, p->files->prefix);
		else
			snprintf(obj, sizeof(obj), "s3://%s/%s%s", p->bucket, p->path ? p->path : "", p->path ? "/" : "");
		fail_msg(p, "ListObjectsV2", obj, status, res);
		finish(x);
		return;
	}
	if (p->kind == OP_CHECK) {
		p->status = 0;
		finish(x);
		return;
	}
	for (size_t i = 0; i < list->ncontents; i++)
		for (size_t k = 0; k < p->files->n; k++) {
			const struct exportfile_object *o = &p->files->obj[k];

			if (strcmp(list->contents[i].key, o->key) != 0)
				continue;
			if (list->contents[i].size >= 0 && (uint64_t)list->contents[i].size != o->bytes) {
				snprintf(p->error, sizeof(p->error), "ListObjectsV2 s3://%s/%s: %s is %lld bytes, "
					 "%llu were uploaded — another writer uses this prefix?", p->bucket,
					 p->files->prefix, o->key, (long long)list->contents[i].size,
					 (unsigned long long)o->bytes);
				p->status = S3G_EAWS;
				finish(x);
				return;
			}
			p->seen[k] = true;
		}
	x_free(p->token);
	p->token = list->is_truncated && list->next_continuation_token ? x_strdup(list->next_continuation_token)
								      : NULL;
	if (p->token) {
		list_page(x);
		return;
	}
	for (size_t k = 0; k < p->files->n; k++)
		if (!p->seen[k]) {
			snprintf(p->error, sizeof(p->error), "ListObjectsV2 s3://%s/%s: %s is missing after a successful "
				 "PutObject — a lifecycle rule or another writer removed it?", p->bucket,
				 p->files->prefix, p->files->obj[k].key);
			p->status = S3G_EAWS;
			finish(x);
			return;
		}
	p->status = 0;
	finish(x);
}

static void list_page(struct export_s3 *x)
{
	struct op *p = x->op;
	char *prefix = NULL;
	struct s3_list_req lr = { .bucket = p->bucket, .continuation_token = p->token };

	p->state = ST_LIST;
	if (p->kind == OP_UPLOAD) {
		lr.prefix = p->files->prefix;
	} else if (p->path) {
		/* The path itself: it is what the s3:prefix condition names, and
		 * one key is enough to prove the permission. */
		lr.prefix = prefix = x_strdup(p->path);
		lr.max_keys = 1;
	} else {
		lr.max_keys = 1;
	}
	s3_list_objects(p->s3, &lr, on_list, x);
	x_free(prefix);
}

static void on_put(int status, const struct aws_result *res, const struct s3_put_result *out, void *user)
{
	struct export_s3 *x = user;
	struct op *p = x->op;
	const struct exportfile_object *o = &p->files->obj[p->next];
	char obj[1200];
	const char *echo;

	if (p->state != ST_PUT)
		return;
	snprintf(obj, sizeof(obj), "s3://%s/%s", p->bucket, o->key);
	if (status < 0) {
		fail_msg(p, "PutObject", obj, status, res);
		finish(x);
		return;
	}
	echo = res->resp ? http_response_header(res->resp, "x-amz-checksum-sha256") : NULL;
	if (echo && strcmp(echo, o->sha256_b64) != 0) {
		snprintf(p->error, sizeof(p->error), "PutObject %s: S3 stored SHA-256 %s, the manifest says %s — the "
			 "local file changed while uploading", obj, echo, o->sha256_b64);
		p->status = S3G_EAWS;
		finish(x);
		return;
	}
	if (p->kms_key_id && (!out || !out->sse || strcmp(out->sse, "aws:kms") != 0)) {
		snprintf(p->error, sizeof(p->error), "PutObject %s: S3 did not confirm SSE-KMS encryption "
			 "(x-amz-server-side-encryption: %s)", obj, out && out->sse ? out->sse : "absent");
		p->status = S3G_EAWS;
		finish(x);
		return;
	}
	p->next++;
	put_next(x);
}

static void put_next(struct export_s3 *x)
{
	struct op *p = x->op;

	if (p->next >= p->files->n) {
		list_page(x);
		return;
	}
	{
		const struct exportfile_object *o = &p->files->obj[p->next];
		const struct s3_put_req pr = {
			.bucket = p->bucket,
			.key = o->key,
			.content_type = o->content_type,
			.checksum = S3_CHECKSUM_SHA256,
			.sse_kms = p->kms_key_id != NULL,
			.kms_key_id = p->kms_key_id,
		};

		p->state = ST_PUT;
		s3_put_object_file(p->s3, &pr, o->local_path, on_put, x);
	}
}

/* With credentials for the export in p->creds: the S3 part. */
static void s3_begin(struct export_s3 *x)
{
	struct op *p = x->op;
	int r = client_new(x, p, p->creds, &p->s3);

	if (r < 0) {
		snprintf(p->error, sizeof(p->error), "cannot set up the S3 client for region %s: %s", p->region,
			 err_str(r));
		p->status = r;
		finish(x);
		return;
	}
	if (p->kind == OP_UPLOAD)
		put_next(x);
	else
		list_page(x);
}

static void on_assumed(int status, const struct aws_result *res, struct shapes_sts_creds *c, void *user)
{
	struct export_s3 *x = user;
	struct op *p = x->op;
	struct credprov_env env;
	int r;

	if (p->state != ST_AUTH)
		return;
	if (status < 0) {
		fail_msg(p, "AssumeRole", p->role_arn, status, res);
		finish(x);
		return;
	}
	p->identity = dup_or_null(c->assumed_role_arn);
	env_of(x, p, &env);
	r = credprov_new_static(&env, c->access_key_id, c->secret_access_key, c->session_token, &p->creds);
	if (r < 0) {
		snprintf(p->error, sizeof(p->error), "AssumeRole %s: cannot use the session credentials: %s",
			 p->role_arn, err_str(r));
		p->status = r;
		finish(x);
		return;
	}
	s3_begin(x);
}

static void on_identity(int status, const struct aws_result *res, struct shapes_caller_identity *id, void *user)
{
	struct export_s3 *x = user;
	struct op *p = x->op;

	if (p->state != ST_AUTH)
		return;
	if (status < 0) {
		fail_msg(p, "GetCallerIdentity", NULL, status, res);
		finish(x);
		return;
	}
	p->identity = dup_or_null(id->arn);
	s3_begin(x);
}

/* Credentials, then the first call; errors end the operation (on a later pass). */
static void op_begin(struct export_s3 *x, const char *secret_plain)
{
	struct op *p = x->op;
	struct credprov_env env;
	const char *reason = NULL;
	int r;

	env_of(x, p, &env);
	p->state = ST_AUTH;
	if (p->auth == EXPORTDB_AUTH_ACCESS_KEY) {
		r = credprov_new_static(&env, p->access_key_id, secret_plain, NULL, &p->creds);
		if (r < 0) {
			snprintf(p->error, sizeof(p->error), "accessKeyId/secretAccessKey: not usable: %s", err_str(r));
			goto fail;
		}
		if (p->kind == OP_UPLOAD) {
			s3_begin(x);
			return;
		}
		r = client_new(x, p, p->creds, &p->sts);
		if (r < 0) {
			snprintf(p->error, sizeof(p->error), "cannot set up the STS client for region %s: %s",
				 p->region, err_str(r));
			goto fail;
		}
		sts_get_caller_identity(p->sts, on_identity, x);
		return;
	}
	if (p->auth != EXPORTDB_AUTH_ASSUME_ROLE) {
		/* "auto" (the daemon's own chain) is not a body the seed knows; the
		 * store never writes it for the export. */
		r = S3G_ECONFIG;
		snprintf(p->error, sizeof(p->error), "the export config has no accessKeyId or roleArn");
		goto fail;
	}
	if (x->akid)
		r = credprov_new_static(&env, x->akid, x->secret ? x->secret : "", NULL, &p->base);
	else
		r = credprov_new_default(&env, &p->base, &reason);
	if (r < 0) {
		snprintf(p->error, sizeof(p->error), "AssumeRole %s: s3grantd has no AWS credentials of its own%s%s — "
			 "set [aws] access_key_id/secret_access_key or provide the default chain", p->role_arn,
			 reason ? ": " : "", reason ? reason : "");
		r = S3G_ECREDS;
		goto fail;
	}
	r = client_new(x, p, p->base, &p->sts);
	if (r < 0) {
		snprintf(p->error, sizeof(p->error), "cannot set up the STS client for region %s: %s", p->region,
			 err_str(r));
		goto fail;
	}
	{
		char session[64];
		const struct shapes_assume_role_req ar = {
			.role_arn = p->role_arn,
			.session_name = session,
			.external_id = p->external_id,
		};

		snprintf(session, sizeof(session), "s3grantd-export-%lld", (long long)time(NULL));
		sts_assume_role(p->sts, &ar, on_assumed, x);
	}
	return;
fail:
	p->status = r;
	finish(x);
}

static struct op *op_new(const struct exportdb_config *cfg, enum op_kind kind)
{
	struct op *p = x_calloc(1, sizeof(*p));

	p->kind = kind;
	p->bucket = x_strdup(cfg->bucket ? cfg->bucket : "");
	p->region = x_strdup(cfg->region ? cfg->region : "");
	p->path = dup_or_null(cfg->path);
	p->kms_key_id = dup_or_null(cfg->kms_key_id);
	p->role_arn = dup_or_null(cfg->role_arn);
	p->external_id = dup_or_null(cfg->external_id ? cfg->external_id : cfg->tenant_id);
	p->access_key_id = dup_or_null(cfg->access_key_id);
	p->auth = cfg->auth;
	return p;
}

/* The plaintext secret of an access-key config (x_malloc'd; wipe_free it). */
static int open_secret(struct export_s3 *x, const struct exportdb_config *cfg, char *err, size_t n,
		       char **ret)
{
	size_t len;
	int r;

	if (!cfg->secret_env) {
		snprintf(err, n, "the export config has no secret access key: set it again with s3grantctl "
			 "export-config set");
		return S3G_ECREDS;
	}
	if (!x->have_key) {
		snprintf(err, n, "no secrets key to open the export's secret access key: set [secrets] key_file "
			 "or LoadCredential=secrets-key");
		return S3G_ECREDS;
	}
	r = secrets_open(&x->key, EXPORTDB_SECRET_CONTEXT, cfg->secret_env, cfg->secret_env_len, ret, &len);
	if (r < 0)
		snprintf(err, n, "the export's secret access key does not open with the secrets key (%s): "
			 "was it sealed with another key? set it again with s3grantctl export-config set", err_str(r));
	return r;
}

static int start(struct export_s3 *x, struct op *p, const struct exportdb_config *cfg, const char *secret)
{
	char *plain = NULL;

	if (x->closing || x->op) {
		op_free(p);
		return x->closing ? S3G_ESHUTDOWN : -EBUSY;
	}
	x->op = p;
	if (p->auth == EXPORTDB_AUTH_ACCESS_KEY && !secret) {
		p->state = ST_AUTH;
		p->status = open_secret(x, cfg, p->error, sizeof(p->error), &plain);
		if (p->status < 0) {
			finish(x);
			return 0;
		}
		secret = plain;
	}
	op_begin(x, secret);
	wipe_free(plain);
	return 0;
}

/* ---- public ------------------------------------------------------------------------- */

int export_s3_upload(void *ud, const struct export_upload_req *req, export_upload_done_cb done, void *done_ud)
{
	struct export_s3 *x = ud;
	struct op *p = op_new(req->cfg, OP_UPLOAD);

	p->files = req->files;
	p->done = done;
	p->done_ud = done_ud;
	return start(x, p, req->cfg, NULL);
}

int export_s3_check(struct export_s3 *x, const struct exportdb_config *cfg, const char *secret,
		    export_s3_check_cb cb, void *ud)
{
	struct op *p = op_new(cfg, OP_CHECK);

	p->check_cb = cb;
	p->check_ud = ud;
	return start(x, p, cfg, secret);
}

int export_s3_new(uv_loop_t *loop, const struct export_s3_opts *opts, struct export_s3 **ret)
{
	struct export_s3 *x = x_calloc(1, sizeof(*x));
	struct http_engine_opts ho;
	int r;

	x->loop = loop;
	x->o = *opts;
	x->ca_file = dup_or_null(opts->ca_file);
	x->ep = dup_or_null(opts->endpoint_url);
	x->ep_s3 = dup_or_null(opts->endpoint_url_s3);
	x->ep_sts = dup_or_null(opts->endpoint_url_sts);
	x->akid = dup_or_null(opts->access_key_id);
	x->secret = x->akid ? dup_or_null(opts->secret_access_key) : NULL;
	if (opts->key) {
		x->key = *opts->key;
		x->have_key = true;
	}
	x->o.ca_file = x->ca_file;
	x->o.endpoint_url = x->ep;
	x->o.endpoint_url_s3 = x->ep_s3;
	x->o.endpoint_url_sts = x->ep_sts;
	x->o.access_key_id = x->akid;
	x->o.secret_access_key = NULL;
	x->o.key = NULL;
	if (!x->o.timeout_ms)
		x->o.timeout_ms = DEF_TIMEOUT_MS;
	if (!x->o.max_attempts)
		x->o.max_attempts = DEF_ATTEMPTS;
	http_engine_opts_default(&ho);
	ho.max_in_flight = 8;
	ho.timeout_ms = x->o.timeout_ms;
	ho.ca_file = x->ca_file;
	r = http_engine_new(loop, &ho, &x->http);
	if (r == 0)
		r = uv_timer_init(loop, &x->timer);
	if (r < 0) {
		if (x->http) {   /* the loop has not run since: free directly */
			http_engine_free(x->http);
		}
		x_free(x->ca_file);
		x_free(x->ep);
		x_free(x->ep_s3);
		x_free(x->ep_sts);
		x_free(x->akid);
		wipe_free(x->secret);
		secrets_key_wipe(&x->key);
		x_free(x);
		return r;
	}
	x->timer.data = x;
	*ret = x;
	return 0;
}

void export_s3_close(struct export_s3 *x, void (*cb)(void *ud), void *ud)
{
	if (!x || x->closing)
		return;
	x->closing = true;
	x->close_cb = cb;
	x->close_ud = ud;
	if (x->op && x->op->state != ST_TEARDOWN) {
		snprintf(x->op->error, sizeof(x->op->error), "the upload was cancelled (s3grantd is stopping)");
		x->op->status = S3G_ECANCELLED;
		x->op->state = ST_TEARDOWN;   /* in-flight callbacks now see TEARDOWN and return */
		teardown(x);                  /* closing the clients cancels their calls */
		return;
	}
	if (!x->op)
		teardown(x);
}
