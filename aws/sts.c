/* sts.c — STS operations over aws/client. */
#include "aws/sts.h"

#include <stdio.h>
#include <string.h>

#include "core/xalloc.h"

struct sts_op {
	int creds;                       /* 1: shapes_sts_creds, 0: caller identity */
	void (*cb)(void);
	void *user;
	union {
		struct shapes_caller_identity id;
		struct shapes_sts_creds creds;
	} out;
};

static int parse_identity(const char *b, size_t n, const struct http_response *resp, void *out, char *why,
			  size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_caller_identity(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		snprintf(why, wl, "%s", xe.reason);
	return r;
}

static int parse_creds(const char *b, size_t n, const struct http_response *resp, void *out, char *why,
		       size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_sts_creds(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		snprintf(why, wl, "%s", xe.reason);
	return r;
}

static void sts_done(int status, const struct aws_result *res, void *user)
{
	struct sts_op *o = user;

	if (o->creds) {
		((sts_creds_cb)o->cb)(status, res, status == 0 ? &o->out.creds : NULL, o->user);
		shapes_sts_creds_clear(&o->out.creds);
	} else {
		((sts_identity_cb)o->cb)(status, res, status == 0 ? &o->out.id : NULL, o->user);
		shapes_caller_identity_clear(&o->out.id);
	}
	x_free(o);
}

static void sts_start(struct aws_client *cl, const char *name, int creds, unsigned flags, void (*cb)(void),
		      void *user, int built, char *body, size_t len)
{
	struct sts_op *o = x_calloc(1, sizeof(*o));
	struct aws_call_spec sp = {
		.op = name, .service = AWS_SERVICE_STS, .method = "POST", .path = "/",
		.body = body, .body_len = len, .body_owned = 1, .flags = flags,
		.parse = creds ? parse_creds : parse_identity, .out = &o->out, .done = sts_done, .user = o,
	};

	o->creds = creds;
	o->cb = cb;
	o->user = user;
	if (built < 0) {
		aws_call_fail(cl, name, built, "invalid request (a required field is missing or not valid text)",
			      sts_done, o);
		return;
	}
	aws_call_start(cl, &sp);
}

void sts_get_caller_identity(struct aws_client *cl, sts_identity_cb cb, void *user)
{
	char *body = NULL;
	size_t len = 0;
	int r = shapes_build_get_caller_identity(&body, &len);

	sts_start(cl, "GetCallerIdentity", 0, 0, (void (*)(void))cb, user, r, body, len);
}

void sts_assume_role(struct aws_client *cl, const struct shapes_assume_role_req *req, sts_creds_cb cb,
		     void *user)
{
	char *body = NULL;
	size_t len = 0;
	int r = req ? shapes_build_assume_role(req, &body, &len) : S3G_EINVAL;

	sts_start(cl, "AssumeRole", 1, 0, (void (*)(void))cb, user, r, body, len);
}

void sts_assume_role_web_identity(struct aws_client *cl, const struct shapes_web_identity_req *req,
				  sts_creds_cb cb, void *user)
{
	char *body = NULL;
	size_t len = 0;
	int r = req ? shapes_build_assume_role_web_identity(req, &body, &len) : S3G_EINVAL;

	sts_start(cl, "AssumeRoleWithWebIdentity", 1, AWS_CALL_UNSIGNED, (void (*)(void))cb, user, r, body, len);
}
