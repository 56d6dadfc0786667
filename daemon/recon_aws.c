/* recon_aws.c — the reconciler's S3 Control, STS and S3 calls on the AWS
 * client layer (see recon_aws.h): one credential provider and one
 * aws_client per integration; this file only adapts results.
 *
 * Client configuration (why): the reconciler owns retry policy — it
 * classifies every outcome with plan_classify, backs off per step, paces
 * with its token bucket and caps calls in flight — so the client must not
 * multiply retries. The client gets the standard policy with max_attempts
 * 3 but an EMPTY retry quota (quota_max 0, no refunds): retry_next() then
 * refuses every throttling / transient / timeout retry (they cost tokens),
 * while the two free, immediate retries remain — one re-sign after a clock
 * skew correction and one after an ExpiredToken/InvalidToken credential
 * refresh. (max_attempts 1 would have disabled those two as well.) The
 * client's own in-flight cap is set high (1024, the config maximum) so the
 * reconciler's cap is the one that binds.
 */
#include "daemon/recon_aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "aws/credprov.h"
#include "aws/digest.h"
#include "aws/endpoint.h"
#include "aws/s3.h"
#include "aws/s3control.h"
#include "aws/sts.h"
#include "core/buf.h"
#include "core/retry.h"
#include "core/xalloc.h"

#define RAWS_CLIENT_IN_FLIGHT 1024u
#define FP_MAX (64u * 1024)

struct raws {
	struct credprov *creds;
	struct aws_client *cl;
	int have_sts, have_s3, custom_s3c;
	const char *label;
	unsigned in_flight;
	int closing;
	raws_close_cb close_cb;
	void *close_user;
};

struct rcall {
	struct raws *a;
	raws_cb cb;
	void *user;
};

/* ---- construction ------------------------------------------------------------ */

static void fp_add(struct buf *b, const char *s)
{
	(void)!buf_puts(b, s ? s : "");
	(void)!buf_append(b, "", 1);
}

void raws_opts_fingerprint(const struct raws_opts *o, char ret[RAWS_FINGERPRINT_SIZE])
{
	struct buf b;
	char n[64];

	buf_init(&b, FP_MAX);
	snprintf(n, sizeof(n), "%d/%llu/%u", (int)o->auth, (unsigned long long)o->timeout_ms, o->max_in_flight);
	fp_add(&b, n);
	fp_add(&b, o->account);
	fp_add(&b, o->region);
	fp_add(&b, o->s3control_url);
	fp_add(&b, o->sts_url);
	fp_add(&b, o->s3_url);
	fp_add(&b, o->access_key_id);
	fp_add(&b, o->secret_access_key);
	fp_add(&b, o->role_arn);
	fp_add(&b, o->external_id);
	fp_add(&b, o->session_name);
	if (digest_sha256_hex(b.data ? b.data : "", b.len, ret) < 0)
		snprintf(ret, RAWS_FINGERPRINT_SIZE, "?");
	if (b.data)
		memset(b.data, 0, b.len);   /* held the secret */
	buf_free(&b);
}

static void discard_closed(struct credprov *p, void *user)
{
	(void)user;
	credprov_free(p);
}

int raws_new(const struct raws_opts *o, struct raws **ret, const char **ret_reason)
{
	struct raws *a;
	struct credprov_env env = {
		.loop = o->loop,
		.http = o->http,
		.region = o->region,
		.endpoints = { .sts_url = o->sts_url, .getenv = endpoint_getenv_process },
		.timeout_ms = o->timeout_ms,
	};
	struct aws_client_opts co;
	struct retry_policy pol;
	struct endpoint_cfg ec = {
		.s3control_url = o->s3control_url, .sts_url = o->sts_url, .s3_url = o->s3_url,
		.getenv = endpoint_getenv_process,
	};
	struct endpoint s3c = { 0 }, sts = { 0 };
	struct credprov *p = NULL;
	const char *why = NULL;
	int r;

	if ((r = endpoint_s3control(&ec, o->account, o->region, &s3c)) < 0 ||
	    (r = endpoint_sts(&ec, o->region, &sts)) < 0) {
		endpoint_free(&s3c);
		endpoint_free(&sts);
		if (ret_reason)
			*ret_reason = "cannot set up the AWS endpoints (account, region or endpoint URL)";
		return r;
	}
	a = x_calloc(1, sizeof(*a));
	a->custom_s3c = s3c.custom;
	a->have_sts = !s3c.custom || sts.custom;
	a->have_s3 = !s3c.custom || (o->s3_url && *o->s3_url) || getenv("AWS_ENDPOINT_URL_S3");
	endpoint_free(&s3c);
	endpoint_free(&sts);

	switch (o->auth) {
	case RAWS_AUTH_STATIC:
		r = credprov_new_static(&env, o->access_key_id, o->secret_access_key, NULL, &p);
		if (r < 0)
			why = "the access key id or secret access key is empty";
		a->label = "static key";
		break;
	case RAWS_AUTH_DEFAULT:
		r = credprov_new_default(&env, &p, &why);
		if (r < 0 && !why)
			why = "no credentials in the AWS default chain";
		a->label = "AWS default chain";
		break;
	default:
		r = S3G_EINVAL;
		why = "unknown authentication type";
		break;
	}
	if (r < 0)
		goto fail;
	if (o->role_arn && *o->role_arn) {
		struct credprov_role role = {
			.role_arn = o->role_arn, .external_id = o->external_id, .session_name = o->session_name,
		};

		r = credprov_new_assume_role(&env, p, &role, &p);   /* takes p, also on failure */
		if (r < 0) {
			p = NULL;
			why = "cannot set up AssumeRole into awsRoleToAssume";
			goto fail;
		}
		a->label = o->auth == RAWS_AUTH_STATIC ? "static key + AssumeRole" : "AWS default chain + AssumeRole";
	}
	a->creds = p;
	p = NULL;

	aws_client_opts_default(&co);
	retry_policy_classic(&pol);
	pol.max_attempts = 3;          /* room for the skew and the credentials re-sign */
	pol.quota_max = 0;             /* ... and nothing else: the reconciler retries */
	pol.no_retry_increment = 0;
	co.http = o->http;
	co.creds = a->creds;
	co.region = o->region;
	co.account_id = o->account;
	co.endpoints = ec;
	co.policy = &pol;
	co.max_in_flight = o->max_in_flight ? o->max_in_flight : RAWS_CLIENT_IN_FLIGHT;
	co.timeout_ms = o->timeout_ms;
	r = aws_client_new(o->loop, &co, &a->cl);
	if (r < 0) {
		why = "cannot set up the AWS client (account or region)";
		goto fail;
	}
	*ret = a;
	return 0;
fail:
	if (p)
		credprov_close(p, discard_closed, NULL);
	if (a->creds)
		credprov_close(a->creds, discard_closed, NULL);
	x_free(a);
	if (ret_reason)
		*ret_reason = why;
	return r < 0 ? r : S3G_EINVAL;
}

static void creds_closed(struct credprov *p, void *user)
{
	struct raws *a = user;

	(void)p;
	if (a->close_cb)
		a->close_cb(a, a->close_user);
}

static void client_closed(struct aws_client *cl, void *user)
{
	struct raws *a = user;

	(void)cl;
	credprov_close(a->creds, creds_closed, a);
}

void raws_close(struct raws *a, raws_close_cb cb, void *user)
{
	if (!a || a->closing)
		return;
	a->closing = 1;
	a->close_cb = cb;
	a->close_user = user;
	aws_client_close(a->cl, client_closed, a);   /* then the provider it signs with */
}

void raws_free(struct raws *a)
{
	if (!a)
		return;
	aws_client_free(a->cl);
	credprov_free(a->creds);
	x_free(a);
}

unsigned raws_in_flight(const struct raws *a)
{
	return a->in_flight;
}

const char *raws_auth_label(const struct raws *a)
{
	return a->label;
}

int raws_custom_s3control(const struct raws *a)
{
	return a->custom_s3c;
}

int raws_has_sts_endpoint(const struct raws *a)
{
	return a->have_sts;
}

int raws_has_s3_endpoint(const struct raws *a)
{
	return a->have_s3;
}

/* ---- calls ----------------------------------------------------------------- */

static struct rcall *rcall_new(struct raws *a, raws_cb cb, void *user)
{
	struct rcall *c = x_malloc(sizeof(*c));

	c->a = a;
	c->cb = cb;
	c->user = user;
	a->in_flight++;
	return c;
}

/* Hand the outcome over: in_flight counts down before the callback. */
static void deliver(struct rcall *c, int status, const struct aws_result *ar, void *out)
{
	struct raws_result res = {
		.status = status,
		.http_code = ar ? ar->http_code : 0,
		.code = ar ? ar->code : NULL,
		.message = ar ? ar->message : NULL,
		.request_id = ar ? ar->request_id : NULL,
		.error = ar && ar->error ? ar->error : (status < 0 ? err_str(status) : ""),
	};
	raws_cb cb = c->cb;
	void *user = c->user;

	c->a->in_flight--;
	x_free(c);
	cb(&res, status == 0 ? out : NULL, user);
}

static void on_done(int status, const struct aws_result *res, void *user)
{
	deliver(user, status, res, NULL);
}

static void on_grant(int status, const struct aws_result *res, struct shapes_grant *g, void *user)
{
	deliver(user, status, res, g);
}

static void on_grant_list(int status, const struct aws_result *res, struct shapes_grant_list *l, void *user)
{
	deliver(user, status, res, l);
}

static void on_location(int status, const struct aws_result *res, struct shapes_location *l, void *user)
{
	deliver(user, status, res, l);
}

static void on_location_list(int status, const struct aws_result *res, struct shapes_location_list *l,
			     void *user)
{
	deliver(user, status, res, l);
}

static void on_instance(int status, const struct aws_result *res, struct shapes_instance *in, void *user)
{
	deliver(user, status, res, in);
}

static void on_identity(int status, const struct aws_result *res, struct shapes_caller_identity *id, void *user)
{
	deliver(user, status, res, id);
}

static void on_objects(int status, const struct aws_result *res, struct shapes_object_list *l, void *user)
{
	deliver(user, status, res, l);
}

void raws_create_grant(struct raws *a, const struct grant *g, raws_cb cb, void *user)
{
	struct shapes_create_grant_req rq = {
		.location_id = g->location_id,
		.sub_prefix = g->sub_prefix,
		.grantee_type = grant_grantee_name(g->grantee_type),
		.grantee_id = g->grantee_id,
		.permission = grant_perm_name(g->permission),
	};

	s3control_create_grant(a->cl, &rq, on_grant, rcall_new(a, cb, user));
}

void raws_delete_grant(struct raws *a, const char *grant_id, raws_cb cb, void *user)
{
	s3control_delete_grant(a->cl, grant_id, on_done, rcall_new(a, cb, user));
}

void raws_list_grants(struct raws *a, const char *token, raws_cb cb, void *user)
{
	struct s3control_page pg = { .next_token = token, .max_results = 1000 };

	s3control_list_grants(a->cl, NULL, &pg, on_grant_list, rcall_new(a, cb, user));
}

void raws_get_instance(struct raws *a, raws_cb cb, void *user)
{
	s3control_get_instance(a->cl, on_instance, rcall_new(a, cb, user));
}

void raws_list_locations(struct raws *a, const char *scope, const char *token, raws_cb cb, void *user)
{
	struct s3control_page pg = { .next_token = token, .max_results = 1000 };

	s3control_list_locations(a->cl, scope, &pg, on_location_list, rcall_new(a, cb, user));
}

void raws_create_location(struct raws *a, const char *scope, const char *role_arn, raws_cb cb, void *user)
{
	struct shapes_create_location_req rq = { .scope = scope, .iam_role_arn = role_arn };

	s3control_create_location(a->cl, &rq, on_location, rcall_new(a, cb, user));
}

void raws_delete_location(struct raws *a, const char *location_id, raws_cb cb, void *user)
{
	s3control_delete_location(a->cl, location_id, on_done, rcall_new(a, cb, user));
}

void raws_caller_identity(struct raws *a, raws_cb cb, void *user)
{
	sts_get_caller_identity(a->cl, on_identity, rcall_new(a, cb, user));
}

void raws_list_objects(struct raws *a, const char *bucket, const char *prefix, raws_cb cb, void *user)
{
	struct s3_list_req rq = { .bucket = bucket, .prefix = prefix ? prefix : "", .max_keys = 1 };

	s3_list_objects(a->cl, &rq, on_objects, rcall_new(a, cb, user));
}
