/* recon_aws.c — single-attempt S3 Control, STS and S3 calls for the
 * reconciler (see recon_aws.h): build, sign, send, parse. */
#include "daemon/recon_aws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/creds.h"
#include "aws/endpoint.h"
#include "aws/sigv4.h"
#include "core/buf.h"
#include "core/xalloc.h"

#define MAX_LINES 12
#define ERRTEXT_MAX 512
#define QUERY_MAX 8192

enum rop {
	ROP_CREATE_GRANT,
	ROP_DELETE_GRANT,
	ROP_LIST_GRANTS,
	ROP_GET_INSTANCE,
	ROP_LIST_LOCATIONS,
	ROP_CREATE_LOCATION,
	ROP_DELETE_LOCATION,
	ROP_CALLER_IDENTITY,
	ROP_LIST_OBJECTS,
	ROP_MAX_
};

static const char *const rop_names[ROP_MAX_] = {
	[ROP_CREATE_GRANT] = "CreateAccessGrant",
	[ROP_DELETE_GRANT] = "DeleteAccessGrant",
	[ROP_LIST_GRANTS] = "ListAccessGrants",
	[ROP_GET_INSTANCE] = "GetAccessGrantsInstance",
	[ROP_LIST_LOCATIONS] = "ListAccessGrantsLocations",
	[ROP_CREATE_LOCATION] = "CreateAccessGrantsLocation",
	[ROP_DELETE_LOCATION] = "DeleteAccessGrantsLocation",
	[ROP_CALLER_IDENTITY] = "GetCallerIdentity",
	[ROP_LIST_OBJECTS] = "ListObjectsV2",
};

struct raws {
	struct http_engine *http;
	char *account, *region;
	struct endpoint s3c, sts;
	char *s3_url;
	int have_sts, have_s3;
	struct aws_creds creds;
	int have_creds;
	struct sigv4_signer *signer;
	uint64_t timeout_ms;
	unsigned in_flight;
};

struct rcall {
	struct http_request req;
	struct raws *a;
	enum rop op;
	raws_cb cb;
	void *user;
	char *url;
	char *lines[MAX_LINES];
	const char *linep[MAX_LINES];
	size_t nlines;
	char *body;
	size_t body_len;
	char err[ERRTEXT_MAX];
};

int raws_new(const struct raws_opts *o, struct raws **ret)
{
	struct raws *a = x_calloc(1, sizeof(*a));
	struct endpoint_cfg ec = {
		.s3control_url = o->s3control_url,
		.sts_url = o->sts_url,
		.s3_url = o->s3_url,
		.getenv = endpoint_getenv_process,
	};
	const char *why = NULL;
	int r;

	a->http = o->http;
	a->account = x_strdup(o->account);
	a->region = x_strdup(o->region);
	a->timeout_ms = o->timeout_ms;
	a->s3_url = x_strdup(o->s3_url ? o->s3_url : "");
	if ((r = endpoint_s3control(&ec, o->account, o->region, &a->s3c)) < 0)
		goto fail;
	if ((r = endpoint_sts(&ec, o->region, &a->sts)) < 0)
		goto fail;
	a->have_sts = !a->s3c.custom || a->sts.custom;
	a->have_s3 = !a->s3c.custom || (o->s3_url && *o->s3_url) || getenv("AWS_ENDPOINT_URL_S3");
	if (o->access_key_id && *o->access_key_id) {
		r = aws_creds_set(&a->creds, o->access_key_id, o->secret_access_key ? o->secret_access_key : "",
				  o->session_token, 0);
		if (r < 0)
			goto fail;
		a->have_creds = 1;
	} else if (creds_from_env(endpoint_getenv_process, NULL, &a->creds, &why) == 0) {
		a->have_creds = 1;
	}
	if ((r = sigv4_signer_new(&a->signer)) < 0)
		goto fail;
	*ret = a;
	return 0;
fail:
	raws_free(a);
	return r;
}

void raws_free(struct raws *a)
{
	if (!a)
		return;
	endpoint_free(&a->s3c);
	endpoint_free(&a->sts);
	aws_creds_clear(&a->creds);
	sigv4_signer_free(a->signer);
	x_free(a->account);
	x_free(a->region);
	x_free(a->s3_url);
	x_free(a);
}

unsigned raws_in_flight(const struct raws *a)
{
	return a->in_flight;
}

int raws_custom_s3control(const struct raws *a)
{
	return a->s3c.custom;
}

int raws_has_creds(const struct raws *a)
{
	return a->have_creds;
}

int raws_has_sts_endpoint(const struct raws *a)
{
	return a->have_sts;
}

int raws_has_s3_endpoint(const struct raws *a)
{
	return a->have_s3;
}

static void rcall_free(struct rcall *c)
{
	for (size_t i = 0; i < c->nlines; i++)
		x_free(c->lines[i]);
	x_free(c->url);
	x_free(c->body);
	x_free(c);
}

static void add_line(struct rcall *c, const char *name, const char *value)
{
	if (c->nlines < MAX_LINES)
		c->lines[c->nlines++] = x_asprintf("%s: %s", name, value);
}

static void on_http_done(struct http_request *req, int status, const struct http_response *resp);

/* Sign and send; on any local failure the engine reports S3G_EINVAL on a
 * later pass (url NULL) and err says why. */
static void send_call(struct rcall *c, const struct endpoint *ep, const char *service, unsigned flags,
		      const char *method, const char *path, const char *query, const char *ctype)
{
	struct raws *a = c->a;
	struct sigv4_header hs[6];
	size_t nh = 0;
	struct sigv4_config sc = { .region = ep->region, .service = service, .flags = flags };
	struct sigv4_signed sig;
	struct sigv4_request sr;
	char cks[SIGV4_CHECKSUM_SIZE];
	char *full_path = x_asprintf("%s%s", ep->path_prefix, path);
	int r;

	hs[nh++] = (struct sigv4_header){ "Host", ep->host };
	if (ctype)
		hs[nh++] = (struct sigv4_header){ "Content-Type", ctype };
	if (strcmp(service, "s3") == 0 && ep == &a->s3c) {
		hs[nh++] = (struct sigv4_header){ "x-amz-account-id", a->account };
		r = sigv4_checksum_header(SIGV4_CHECKSUM_CRC32, c->body, c->body_len, cks, &hs[nh]);
		if (r < 0) {
			snprintf(c->err, sizeof(c->err), "%s: checksum: %s", rop_names[c->op], err_str(r));
			goto send;
		}
		nh++;
	}
	if (!a->have_creds) {
		snprintf(c->err, sizeof(c->err), "%s: no AWS credentials", rop_names[c->op]);
		goto send;
	}
	sr = (struct sigv4_request){ .method = method, .path = full_path, .query = query, .headers = hs,
				     .n_headers = nh, .body = c->body, .body_len = c->body_len };
	r = sigv4_sign(a->signer, &sc, &a->creds, &sr, time(NULL), &sig, NULL, NULL);
	if (r < 0) {
		snprintf(c->err, sizeof(c->err), "%s: signing: %s", rop_names[c->op], err_str(r));
		goto send;
	}
	for (size_t i = 1; i < nh; i++)   /* Host is curl's */
		add_line(c, hs[i].name, hs[i].value);
	for (size_t i = 0; i < sig.n_headers; i++)
		add_line(c, sig.headers[i].name, sig.headers[i].value);
	add_line(c, "Host", ep->host);
	c->url = x_asprintf("%s%s%s%s", ep->base_url, path, query ? "?" : "", query ? query : "");
send:
	x_free(full_path);
	for (size_t i = 0; i < c->nlines; i++)
		c->linep[i] = c->lines[i];
	c->req.method = method;
	c->req.url = c->url;
	c->req.headers = c->linep;
	c->req.n_headers = c->nlines;
	c->req.body = c->body;
	c->req.body_len = c->body_len;
	c->req.timeout_ms = a->timeout_ms;
	c->req.done = on_http_done;
	c->req.user = c;
	a->in_flight++;
	http_start(a->http, &c->req);
}

static struct rcall *rcall_new(struct raws *a, enum rop op, raws_cb cb, void *user)
{
	struct rcall *c = x_calloc(1, sizeof(*c));

	c->a = a;
	c->op = op;
	c->cb = cb;
	c->user = user;
	return c;
}

union rout {
	struct shapes_grant grant;
	struct shapes_grant_list grants;
	struct shapes_location loc;
	struct shapes_location_list locs;
	struct shapes_instance inst;
	struct shapes_caller_identity who;
	struct shapes_object_list objs;
};

static int parse_out(enum rop op, const char *body, size_t len, union rout *o, struct xml_error *xe)
{
	switch (op) {
	case ROP_CREATE_GRANT:
		return shapes_parse_grant(body, len, &o->grant, xe);
	case ROP_LIST_GRANTS:
		return shapes_parse_grant_list(body, len, &o->grants, xe);
	case ROP_GET_INSTANCE:
		return shapes_parse_instance(body, len, &o->inst, xe);
	case ROP_LIST_LOCATIONS:
		return shapes_parse_location_list(body, len, &o->locs, xe);
	case ROP_CREATE_LOCATION:
		return shapes_parse_location(body, len, &o->loc, xe);
	case ROP_CALLER_IDENTITY:
		return shapes_parse_caller_identity(body, len, &o->who, xe);
	case ROP_LIST_OBJECTS:
		return shapes_parse_object_list(body, len, &o->objs, xe);
	default:
		return 0;
	}
}

static void clear_out(enum rop op, union rout *o)
{
	switch (op) {
	case ROP_CREATE_GRANT:
		shapes_grant_clear(&o->grant);
		break;
	case ROP_LIST_GRANTS:
		shapes_grant_list_clear(&o->grants);
		break;
	case ROP_GET_INSTANCE:
		shapes_instance_clear(&o->inst);
		break;
	case ROP_LIST_LOCATIONS:
		shapes_location_list_clear(&o->locs);
		break;
	case ROP_CREATE_LOCATION:
		shapes_location_clear(&o->loc);
		break;
	case ROP_CALLER_IDENTITY:
		shapes_caller_identity_clear(&o->who);
		break;
	case ROP_LIST_OBJECTS:
		shapes_object_list_clear(&o->objs);
		break;
	default:
		break;
	}
}

static void on_http_done(struct http_request *req, int status, const struct http_response *resp)
{
	struct rcall *c = req->user;
	struct raws *a = c->a;
	struct raws_result res = { .status = status, .error = "" };
	struct shapes_error se = { 0 };
	union rout out;
	void *outp = NULL;
	char errtext[2 * ERRTEXT_MAX];

	memset(&out, 0, sizeof(out));
	a->in_flight--;
	if (status < 0) {
		if (c->err[0])
			snprintf(errtext, sizeof(errtext), "%s", c->err);
		else
			snprintf(errtext, sizeof(errtext), "%s: %s%s%.256s", rop_names[c->op], err_str(status),
				 resp && resp->error && *resp->error ? ": " : "", resp && resp->error ? resp->error : "");
		res.error = errtext;
		goto call;
	}
	res.http_code = resp->code;
	res.request_id = http_response_header(resp, "x-amz-request-id");
	if (resp->code >= 200 && resp->code < 300) {
		struct xml_error xe = { 0 };
		const char *body = buf_str(resp->body);
		int r = parse_out(c->op, body, resp->body->len, &out, &xe);

		if (r < 0) {
			res.status = S3G_EPARSE;
			snprintf(errtext, sizeof(errtext), "%s: unreadable answer: %s", rop_names[c->op],
				 err_str(r));
			res.error = errtext;
		} else if (c->op != ROP_DELETE_GRANT && c->op != ROP_DELETE_LOCATION) {
			outp = &out;
		}
		goto call;
	}
	res.status = S3G_EAWS;
	if (shapes_parse_error(buf_str(resp->body), resp->body->len, &se, NULL) == 0) {
		res.code = se.code;
		res.message = se.message;
		if (!res.request_id)
			res.request_id = se.request_id;
	}
	if (resp->code == 503 || resp->code == 429)
		res.status = S3G_ETHROTTLED;
	snprintf(errtext, sizeof(errtext), "%s: %s: %s", rop_names[c->op], res.code ? res.code : "HTTP error",
		 res.message ? res.message : "");
	if (!res.code) {
		char *tail = errtext + strlen(errtext);

		snprintf(tail, sizeof(errtext) - (size_t)(tail - errtext), "HTTP %ld", resp->code);
	}
	res.error = errtext;
call:
	c->cb(&res, outp, c->user);
	if (outp)
		clear_out(c->op, &out);
	shapes_error_clear(&se);
	rcall_free(c);
}

static void s3c_call(struct raws *a, enum rop op, const char *method, const char *path, const char *query,
		     char *body, size_t len, raws_cb cb, void *user)
{
	struct rcall *c = rcall_new(a, op, cb, user);

	c->body = body;
	c->body_len = len;
	send_call(c, &a->s3c, "s3", SIGV4_FLAGS_S3, method, path, query, NULL);
}

static char *query_of(const struct sigv4_param *p, size_t n)
{
	struct buf b;

	buf_init(&b, QUERY_MAX);
	if (n == 0 || sigv4_query_build(p, n, &b) < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static void fail_early(struct raws *a, enum rop op, const char *why, raws_cb cb, void *user)
{
	struct rcall *c = rcall_new(a, op, cb, user);

	snprintf(c->err, sizeof(c->err), "%s: %s", rop_names[op], why);
	c->req.method = "GET";
	c->req.done = on_http_done;
	c->req.user = c;
	a->in_flight++;
	http_start(a->http, &c->req);   /* url NULL: S3G_EINVAL on a later pass */
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
	char *body = NULL;
	size_t len = 0;

	if (shapes_build_create_grant(&rq, &body, &len) < 0) {
		fail_early(a, ROP_CREATE_GRANT, "cannot build the request", cb, user);
		return;
	}
	s3c_call(a, ROP_CREATE_GRANT, "POST", "/v20180820/accessgrantsinstance/grant", NULL, body, len, cb, user);
}

void raws_delete_grant(struct raws *a, const char *grant_id, raws_cb cb, void *user)
{
	char *path;

	if (!grant_id || !*grant_id || strspn(grant_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					       "0123456789-") != strlen(grant_id)) {
		fail_early(a, ROP_DELETE_GRANT, "bad grant id", cb, user);
		return;
	}
	path = x_asprintf("/v20180820/accessgrantsinstance/grant/%s", grant_id);
	s3c_call(a, ROP_DELETE_GRANT, "DELETE", path, NULL, NULL, 0, cb, user);
	x_free(path);
}

void raws_list_grants(struct raws *a, const char *token, raws_cb cb, void *user)
{
	struct sigv4_param p[2] = { { "maxResults", "1000" }, { "nextToken", token } };
	char *q = query_of(p, token ? 2 : 1);

	s3c_call(a, ROP_LIST_GRANTS, "GET", "/v20180820/accessgrantsinstance/grants", q, NULL, 0, cb, user);
	x_free(q);
}

void raws_get_instance(struct raws *a, raws_cb cb, void *user)
{
	s3c_call(a, ROP_GET_INSTANCE, "GET", "/v20180820/accessgrantsinstance", NULL, NULL, 0, cb, user);
}

void raws_list_locations(struct raws *a, const char *scope, const char *token, raws_cb cb, void *user)
{
	struct sigv4_param p[3];
	size_t n = 0;
	char *q;

	p[n++] = (struct sigv4_param){ "maxResults", "1000" };
	if (scope)
		p[n++] = (struct sigv4_param){ "locationscope", scope };
	if (token)
		p[n++] = (struct sigv4_param){ "nextToken", token };
	q = query_of(p, n);
	s3c_call(a, ROP_LIST_LOCATIONS, "GET", "/v20180820/accessgrantsinstance/locations", q, NULL, 0, cb, user);
	x_free(q);
}

void raws_create_location(struct raws *a, const char *scope, const char *role_arn, raws_cb cb, void *user)
{
	struct shapes_create_location_req rq = { .scope = scope, .iam_role_arn = role_arn };
	char *body = NULL;
	size_t len = 0;

	if (shapes_build_create_location(&rq, &body, &len) < 0) {
		fail_early(a, ROP_CREATE_LOCATION, "cannot build the request", cb, user);
		return;
	}
	s3c_call(a, ROP_CREATE_LOCATION, "POST", "/v20180820/accessgrantsinstance/location", NULL, body, len, cb,
		 user);
}

void raws_delete_location(struct raws *a, const char *location_id, raws_cb cb, void *user)
{
	char *path;

	if (!location_id || !*location_id || strchr(location_id, '/') || strchr(location_id, '?')) {
		fail_early(a, ROP_DELETE_LOCATION, "bad location id", cb, user);
		return;
	}
	path = x_asprintf("/v20180820/accessgrantsinstance/location/%s", location_id);
	s3c_call(a, ROP_DELETE_LOCATION, "DELETE", path, NULL, NULL, 0, cb, user);
	x_free(path);
}

void raws_caller_identity(struct raws *a, raws_cb cb, void *user)
{
	struct rcall *c = rcall_new(a, ROP_CALLER_IDENTITY, cb, user);
	size_t len = 0;

	if (shapes_build_get_caller_identity(&c->body, &len) < 0) {
		x_free(c);
		fail_early(a, ROP_CALLER_IDENTITY, "cannot build the request", cb, user);
		return;
	}
	c->body_len = len;
	send_call(c, &a->sts, "sts", 0, "POST", "/", NULL, "application/x-www-form-urlencoded; charset=utf-8");
}

void raws_list_objects(struct raws *a, const char *bucket, const char *prefix, raws_cb cb, void *user)
{
	struct endpoint_cfg ec = { .s3_url = a->s3_url, .getenv = endpoint_getenv_process };
	struct endpoint ep = { 0 };
	struct sigv4_param p[3] = { { "list-type", "2" }, { "max-keys", "1" }, { "prefix", prefix ? prefix : "" } };
	struct rcall *c;
	char *q, *path;

	if (endpoint_s3(&ec, bucket, a->region, &ep) < 0) {
		fail_early(a, ROP_LIST_OBJECTS, "bad bucket", cb, user);
		return;
	}
	q = query_of(p, 3);
	path = ep.path_style ? x_asprintf("/%s", bucket) : x_strdup("/");
	c = rcall_new(a, ROP_LIST_OBJECTS, cb, user);
	send_call(c, &ep, "s3", SIGV4_FLAGS_S3, "GET", path, q, NULL);
	x_free(path);
	x_free(q);
	endpoint_free(&ep);
}
