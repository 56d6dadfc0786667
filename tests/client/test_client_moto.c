/* aws/client + aws/sts + aws/s3 + aws/credprov against moto_server with
 * signatures and IAM policies enforced (tests/client/moto_fixture.py):
 * GetCallerIdentity, AssumeRole with ExternalId (directly and as a credential
 * provider, whose session then writes with SSE-KMS where its role policy
 * allows and gets AccessDenied elsewhere), a role the policy does not allow
 * (AccessDenied), PutObject with SSE-KMS and a checksum (SHA-256 or MD5) from
 * a buffer and from a file, under a key with a space and '+' (see
 * moto_fixture.py for why stock moto cannot verify that one), ListObjectsV2
 * with pagination, HeadBucket, and a wrong secret surfacing
 * SignatureDoesNotMatch naming the operation.
 * S3G_TIMEOUT: 240
 */
#include "client_fixture.h"

#include "aws/s3.h"
#include "aws/sts.h"

static struct fx_proc moto;
static char m_akid[128], m_secret[128], m_role[256], m_other[256], m_kms[128], m_bucket[64], m_user[256];

static int group_setup(void **state)
{
	char script[1024], ep[128];
	char *argv[] = {"python3", script, NULL};

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	snprintf(script, sizeof(script), "%s/tests/client/moto_fixture.py", fx_src());
	if (fx_spawn(&moto, argv, NULL, 120000) < 0)
		return -1;
	fx_json_str(moto.line, "endpoint", ep, sizeof(ep));
	snprintf(moto.url, sizeof(moto.url), "%s", ep);
	fx_json_str(moto.line, "akid", m_akid, sizeof(m_akid));
	fx_json_str(moto.line, "secret", m_secret, sizeof(m_secret));
	fx_json_str(moto.line, "role_arn", m_role, sizeof(m_role));
	fx_json_str(moto.line, "other_role_arn", m_other, sizeof(m_other));
	fx_json_str(moto.line, "kms_key_id", m_kms, sizeof(m_kms));
	fx_json_str(moto.line, "bucket", m_bucket, sizeof(m_bucket));
	fx_json_str(moto.line, "user_arn", m_user, sizeof(m_user));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fx_stop(&moto);
	return 0;
}

struct cap {
	int n;
	int status;
	long http_code;
	char code[128];
	char error[1024];
	char arn[512];
	char akid[128];
	char region[64];
	char sse[64];
	char kms[256];
	char next[512];
	size_t nkeys;
	char keys[8][128];
	unsigned attempts;
};

static void cap_res(struct cap *c, int status, const struct aws_result *res)
{
	c->n++;
	c->status = status;
	c->http_code = res->http_code;
	snprintf(c->code, sizeof(c->code), "%s", res->code ? res->code : "");
	snprintf(c->error, sizeof(c->error), "%s", res->error);
	c->attempts = res->attempts;
}

static void on_identity(int status, const struct aws_result *res, struct shapes_caller_identity *id, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (id)
		snprintf(c->arn, sizeof(c->arn), "%s", id->arn);
}

static void on_creds(int status, const struct aws_result *res, struct shapes_sts_creds *cr, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (cr) {
		snprintf(c->akid, sizeof(c->akid), "%s", cr->access_key_id);
		snprintf(c->arn, sizeof(c->arn), "%s", cr->assumed_role_arn ? cr->assumed_role_arn : "");
		assert_true(cr->expiration_ms > 0);
		assert_non_null(cr->session_token);
	}
}

static void on_put(int status, const struct aws_result *res, const struct s3_put_result *pr, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (pr) {
		snprintf(c->sse, sizeof(c->sse), "%s", pr->sse ? pr->sse : "");
		snprintf(c->kms, sizeof(c->kms), "%s", pr->kms_key_id ? pr->kms_key_id : "");
	}
}

static void on_list(int status, const struct aws_result *res, struct shapes_object_list *l, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (l) {
		c->nkeys = l->ncontents;
		for (size_t i = 0; i < l->ncontents && i < 8; i++)
			snprintf(c->keys[i], sizeof(c->keys[i]), "%s", l->contents[i].key);
		snprintf(c->next, sizeof(c->next), "%s", l->next_continuation_token ? l->next_continuation_token : "");
	}
}

static void on_head(int status, const struct aws_result *res, const char *region, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	snprintf(c->region, sizeof(c->region), "%s", region ? region : "");
}

#define STARTS(a, b) (strncmp((a), (b), strlen(b)) == 0)
#define WAIT(L, C) fx_run_until((L), &(C)->n, 1, 60000)
#define OK(C) do { if ((C)->status != 0) fail_msg("failed: %s", (C)->error); } while (0)

static struct aws_client *moto_client(struct fx_loop *l, struct credprov *p)
{
	struct aws_client_opts o;
	struct aws_client *cl = NULL;

	aws_client_opts_default(&o);
	o.http = l->http;
	o.creds = p;
	o.region = "us-east-1";
	o.endpoints.sts_url = moto.url;
	o.endpoints.s3_url = moto.url;
	assert_int_equal(aws_client_new(&l->loop, &o, &cl), 0);
	return cl;
}

static struct credprov *user_prov(struct fx_loop *l, const char *secret)
{
	struct credprov_env env;
	struct credprov *p = NULL;

	fx_env_init(&env, l);
	assert_int_equal(credprov_new_static(&env, m_akid, secret, NULL, &p), 0);
	return p;
}

static void test_sts(void **state)
{
	struct fx_loop l;
	struct credprov *p;
	struct aws_client *cl;
	struct cap c = {0};

	(void)state;
	fx_loop_init(&l);
	p = user_prov(&l, m_secret);
	cl = moto_client(&l, p);

	sts_get_caller_identity(cl, on_identity, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_string_equal(c.arn, m_user);
	memset(&c, 0, sizeof(c));

	{
		struct shapes_assume_role_req r = {.role_arn = m_role, .session_name = "s3grantd-test",
						   .external_id = "tenant-42", .duration_seconds = 900,
						   .source_identity = "s3grantd"};

		sts_assume_role(cl, &r, on_creds, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_true(STARTS(c.akid, "ASIA"));
		assert_non_null(strstr(c.arn, ":assumed-role/tenant/s3grantd-test"));
		memset(&c, 0, sizeof(c));

		/* The user's policy allows sts:AssumeRole on "tenant" only. */
		r.role_arn = m_other;
		sts_assume_role(cl, &r, on_creds, &c);
		WAIT(&l, &c);
		assert_int_equal(c.status, S3G_EAWS);
		assert_string_equal(c.code, "AccessDenied");
		assert_int_equal(c.attempts, 1);
		print_message("%s\n", c.error);
		assert_true(STARTS(c.error, "AssumeRole: AccessDenied: "));
		memset(&c, 0, sizeof(c));
	}
	fx_loop_done(&l, cl, p);
}

/* An integration's provider: its own key + AssumeRole with ExternalId. */
static void test_assume_role_provider(void **state)
{
	struct fx_loop l;
	struct credprov_env env;
	struct credprov *src, *p = NULL;
	struct aws_client *cl;
	struct credprov_stats st;
	struct cap c = {0};
	struct credprov_role role = {.role_arn = m_role, .external_id = "tenant-42", .duration_seconds = 900};

	(void)state;
	fx_loop_init(&l);
	src = user_prov(&l, m_secret);
	fx_env_init(&env, &l);
	env.endpoints.sts_url = moto.url;
	assert_int_equal(credprov_new_assume_role(&env, src, &role, &p), 0);
	assert_int_equal(credprov_kind(p), CREDPROV_ASSUME_ROLE);
	cl = moto_client(&l, p);

	/* Two calls at once: one AssumeRole (single-flight), both signed with it. */
	{
		struct cap c2 = {0};

		sts_get_caller_identity(cl, on_identity, &c);
		sts_get_caller_identity(cl, on_identity, &c2);
		WAIT(&l, &c);
		WAIT(&l, &c2);
		OK(&c);
		OK(&c2);
		assert_non_null(strstr(c.arn, ":assumed-role/tenant/s3grantd-"));
		assert_string_equal(c.arn, c2.arn);
	}
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 1);
	assert_true(st.expiration_ms > 0);
	memset(&c, 0, sizeof(c));

	/* The role's session (x-amz-security-token signed) can write under
	 * tenant/ with SSE-KMS, and only there: moto enforces the role policy. */
	{
		static const char body[] = "{\"grants\":[]}";
		struct s3_put_req r = {.bucket = m_bucket, .key = "tenant/summary.json", .body = body,
				       .body_len = sizeof(body) - 1, .kms_key_id = m_kms};

		s3_put_object(cl, &r, on_put, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_string_equal(c.sse, "aws:kms");
		memset(&c, 0, sizeof(c));
		r.key = "exports/not-the-tenants.json";
		s3_put_object(cl, &r, on_put, &c);
		WAIT(&l, &c);
		assert_int_equal(c.status, S3G_EAWS);
		assert_string_equal(c.code, "AccessDenied");
		assert_true(STARTS(c.error, "PutObject: AccessDenied: "));
		memset(&c, 0, sizeof(c));
	}
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 1);
	fx_loop_done(&l, cl, p);

	/* A role the user may not assume: the call fails naming AssumeRole, no secret in the text. */
	fx_loop_init(&l);
	src = user_prov(&l, m_secret);
	fx_env_init(&env, &l);
	env.endpoints.sts_url = moto.url;
	role.role_arn = m_other;
	assert_int_equal(credprov_new_assume_role(&env, src, &role, &p), 0);
	cl = moto_client(&l, p);
	sts_get_caller_identity(cl, on_identity, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_ECREDS);
	print_message("%s\n", c.error);
	assert_true(STARTS(c.error, "GetCallerIdentity: no AWS credentials: assume-role credentials: AssumeRole: "
			    "AccessDenied"));
	assert_null(strstr(c.error, m_secret));
	fx_loop_done(&l, cl, p);
}

static void test_s3(void **state)
{
	struct fx_loop l;
	struct credprov *p;
	struct aws_client *cl;
	struct cap c = {0};
	static const char body[] = "{\"schema_version\":1,\"grants\":[]}\n";
	char path[] = "/tmp/s3g-client-put-XXXXXX";
	int fd;

	(void)state;
	fx_loop_init(&l);
	p = user_prov(&l, m_secret);
	cl = moto_client(&l, p);

	{
		struct s3_put_req r = {.bucket = m_bucket, .key = "exports/2024-01-01/a b+c.json", .body = body,
				       .body_len = sizeof(body) - 1, .content_type = "application/json",
				       .kms_key_id = m_kms, .bucket_key = 1};

		s3_put_object(cl, &r, on_put, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_string_equal(c.sse, "aws:kms");
		assert_non_null(strstr(c.kms, m_kms));
		memset(&c, 0, sizeof(c));

		/* Every sub-delimiter, percent-encoded on the wire and in the
		 * canonical URI exactly as botocore does. */
		r.key = "odd/x=1;y,z(!)*'$&@:.json";
		s3_put_object(cl, &r, on_put, &c);
		WAIT(&l, &c);
		OK(&c);
		memset(&c, 0, sizeof(c));

		r.key = "exports/2024-01-01/b.json";
		r.checksum = S3_CHECKSUM_MD5;
		r.bucket_key = 0;
		s3_put_object(cl, &r, on_put, &c);
		WAIT(&l, &c);
		OK(&c);
		memset(&c, 0, sizeof(c));

		/* From a file (mapped). */
		fd = mkstemp(path);
		assert_true(fd >= 0);
		for (int i = 0; i < 1000; i++)
			assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
		close(fd);
		r.key = "exports/2024-01-01/c.json";
		r.checksum = S3_CHECKSUM_SHA256;
		s3_put_object_file(cl, &r, path, on_put, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_string_equal(c.sse, "aws:kms");
		unlink(path);
		memset(&c, 0, sizeof(c));

		s3_put_object_file(cl, &r, "/nonexistent/file", on_put, &c);
		WAIT(&l, &c);
		assert_true(c.status < 0);
		assert_true(STARTS(c.error, "PutObject: cannot read /nonexistent/file"));
		memset(&c, 0, sizeof(c));
	}
	{
		struct s3_list_req lr = {.bucket = m_bucket, .prefix = "exports/2024-01-01/", .max_keys = 2};
		char tok[512];

		s3_list_objects(cl, &lr, on_list, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.nkeys, 2);
		assert_string_equal(c.keys[0], "exports/2024-01-01/a b+c.json");
		assert_true(c.next[0]);
		snprintf(tok, sizeof(tok), "%s", c.next);
		memset(&c, 0, sizeof(c));
		lr.continuation_token = tok;
		s3_list_objects(cl, &lr, on_list, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.nkeys, 1);
		assert_string_equal(c.keys[0], "exports/2024-01-01/c.json");
		assert_string_equal(c.next, "");
		memset(&c, 0, sizeof(c));
	}
	{
		struct s3_list_req lr = {.bucket = m_bucket, .prefix = "odd/"};

		s3_list_objects(cl, &lr, on_list, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.nkeys, 1);
		assert_string_equal(c.keys[0], "odd/x=1;y,z(!)*'$&@:.json");
		memset(&c, 0, sizeof(c));
	}
	s3_head_bucket(cl, m_bucket, on_head, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_string_equal(c.region, "us-east-1");
	memset(&c, 0, sizeof(c));

	s3_head_bucket(cl, "no-such-bucket-here", on_head, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	print_message("%s\n", c.error);
	assert_true(c.http_code == 404 || c.http_code == 403);
	assert_true(STARTS(c.error, "HeadBucket: HTTP "));
	fx_loop_done(&l, cl, p);
}

static void test_wrong_secret(void **state)
{
	struct fx_loop l;
	struct credprov *p;
	struct aws_client *cl;
	struct cap c = {0};
	struct s3_put_req r = {.bucket = m_bucket, .key = "x.json", .body = "x", .body_len = 1};

	(void)state;
	fx_loop_init(&l);
	p = user_prov(&l, "definitely-not-the-secret");
	cl = moto_client(&l, p);
	sts_get_caller_identity(cl, on_identity, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_string_equal(c.code, "SignatureDoesNotMatch");
	assert_int_equal(c.attempts, 1);
	print_message("%s\n", c.error);
	assert_true(STARTS(c.error, "GetCallerIdentity: SignatureDoesNotMatch: The request signature we calculated "
			    "does not match"));
	assert_null(strstr(c.error, "definitely-not-the-secret"));
	memset(&c, 0, sizeof(c));
	s3_put_object(cl, &r, on_put, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	print_message("%s\n", c.error);
	assert_true(STARTS(c.error, "PutObject: SignatureDoesNotMatch: "));
	fx_loop_done(&l, cl, p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sts),
		cmocka_unit_test(test_assume_role_provider),
		cmocka_unit_test(test_s3),
		cmocka_unit_test(test_wrong_secret),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
