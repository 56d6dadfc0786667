#include "aws/creds.h"

#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <yajl/yajl_tree.h>

#include "core/isotime.h"
#include "core/xalloc.h"

static void wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	x_free(s);
}

void aws_creds_clear(struct aws_creds *c)
{
	if (!c)
		return;
	x_free(c->access_key_id);
	wipe_free(c->secret_access_key);
	wipe_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	aws_creds_clear(dst);
	dst->access_key_id = src->access_key_id ? x_strdup(src->access_key_id) : NULL;
	dst->secret_access_key = src->secret_access_key ? x_strdup(src->secret_access_key) : NULL;
	dst->session_token = src->session_token ? x_strdup(src->session_token) : NULL;
	dst->expiration_ms = src->expiration_ms;
}

int aws_creds_set(struct aws_creds *c, const char *akid, const char *secret, const char *token,
		  int64_t expiration_ms)
{
	if (!akid || !*akid || !secret || !*secret)
		return S3G_EINVAL;
	aws_creds_clear(c);
	c->access_key_id = x_strdup(akid);
	c->secret_access_key = x_strdup(secret);
	c->session_token = token && *token ? x_strdup(token) : NULL;
	c->expiration_ms = expiration_ms;
	return 0;
}

int creds_from_env(creds_getenv_cb getenv_cb, void *user, struct aws_creds *ret, const char **ret_reason)
{
	const char *id = getenv_cb("AWS_ACCESS_KEY_ID", user);
	const char *secret = getenv_cb("AWS_SECRET_ACCESS_KEY", user);
	const char *token = getenv_cb("AWS_SESSION_TOKEN", user);
	const char *exp = getenv_cb("AWS_CREDENTIAL_EXPIRATION", user);
	int64_t exp_ms = 0;

	if ((!id || !*id) && (!secret || !*secret))
		return S3G_ENOTFOUND;
	if (!id || !*id || !secret || !*secret) {
		*ret_reason = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set";
		return S3G_ECONFIG;
	}
	if (!token || !*token)
		token = getenv_cb("AWS_SECURITY_TOKEN", user);
	if (exp && *exp && isotime_parse(exp, strlen(exp), &exp_ms) < 0) {
		*ret_reason = "AWS_CREDENTIAL_EXPIRATION: not an ISO 8601 timestamp";
		return S3G_ECONFIG;
	}
	return aws_creds_set(ret, id, secret, token, exp_ms);
}

static const char *str_field(yajl_val root, const char *name)
{
	const char *path[] = {name, NULL};
	yajl_val v = yajl_tree_get(root, path, yajl_t_string);

	return v ? YAJL_GET_STRING(v) : NULL;
}

int creds_parse_json(enum creds_json_kind kind, const char *body, size_t len, struct aws_creds *ret,
		     const char **ret_reason)
{
	char errbuf[128];
	char *text;
	yajl_val root = NULL;
	const char *id, *secret, *token, *exp;
	int64_t exp_ms = 0;
	int r = S3G_EPARSE;

	if (len > CREDS_JSON_MAX) {
		*ret_reason = "document too large";
		return S3G_ETOOBIG;
	}
	text = x_malloc(len + 1);
	memcpy(text, body, len);
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		*ret_reason = "NUL byte in document";
		goto out;
	}
	root = yajl_tree_parse(text, errbuf, sizeof(errbuf));
	if (!root || !YAJL_IS_OBJECT(root)) {
		*ret_reason = "not a JSON object";
		goto out;
	}
	if (kind == CREDS_JSON_PROCESS) {
		const char *path[] = {"Version", NULL};
		yajl_val v = yajl_tree_get(root, path, yajl_t_number);

		if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != 1) {
			*ret_reason = "Version: must be 1";
			goto out;
		}
	}
	if (kind == CREDS_JSON_IMDS) {
		const char *code = str_field(root, "Code");

		if (code && strcmp(code, "Success") != 0) {
			*ret_reason = "Code: instance metadata reported an error";
			goto out;
		}
	}
	id = str_field(root, "AccessKeyId");
	secret = str_field(root, "SecretAccessKey");
	token = str_field(root, kind == CREDS_JSON_PROCESS ? "SessionToken" : "Token");
	exp = str_field(root, "Expiration");
	if (!id || !*id) {
		*ret_reason = "AccessKeyId: missing";
		goto out;
	}
	if (!secret || !*secret) {
		*ret_reason = "SecretAccessKey: missing";
		goto out;
	}
	if (kind != CREDS_JSON_PROCESS && (!exp || !*exp)) {
		*ret_reason = "Expiration: missing";
		goto out;
	}
	if (exp && *exp && isotime_parse(exp, strlen(exp), &exp_ms) < 0) {
		*ret_reason = "Expiration: not an ISO 8601 timestamp";
		goto out;
	}
	r = aws_creds_set(ret, id, secret, token, exp_ms);
out:
	yajl_tree_free(root);
	OPENSSL_cleanse(text, len);
	x_free(text);
	return r;
}

int64_t aws_wall_clock_ms(void *user)
{
	struct timespec ts;

	(void)user;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
