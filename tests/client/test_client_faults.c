/* aws/client fault handling against the S3 Control fake's knobs and a
 * broken-body server: throttling backs off (spacing seen in the fake's log),
 * transient 500s are retried within the quota, terminal errors are not,
 * RequestTimeTooSkewed is corrected and retried once, oversized and
 * malformed bodies are clear errors. Credentials that expire or are revoked
 * mid-run (ExpiredToken forcing a refresh) are in test_client_creds.c.
 * S3G_TIMEOUT: 180
 */
#include "client_fixture.h"

#include "aws/s3control.h"
#include "core/isotime.h"

static struct fx_proc fake, bad;

static int group_setup(void **state)
{
	char script[1024];
	char *argv[] = {"python3", script, NULL};

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid());
	snprintf(script, sizeof(script), "%s/tests/client/badxml_server.py", fx_src());
	if (fx_fake_start(&fake, NULL) < 0 || fx_spawn(&bad, argv, NULL, 30000) < 0)
		return -1;
	bad.port = atoi(bad.line);
	snprintf(bad.url, sizeof(bad.url), "http://127.0.0.1:%d", bad.port);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fx_stop(&fake);
	fx_stop(&bad);
	return 0;
}

static int reset_fake(void **state)
{
	(void)state;
	return fx_control(&fake, "POST", "/__fake/reset", "{}", NULL);
}

struct cap {
	int n;
	int status;
	long http_code;
	char code[128];
	char error[1024];
	unsigned attempts;
	char grant_id[128];
};

static void on_grant(int status, const struct aws_result *res, struct shapes_grant *g, void *user)
{
	struct cap *c = user;

	c->n++;
	c->status = status;
	c->http_code = res->http_code;
	snprintf(c->code, sizeof(c->code), "%s", res->code ? res->code : "");
	snprintf(c->error, sizeof(c->error), "%s", res->error);
	c->attempts = res->attempts;
	if (g)
		snprintf(c->grant_id, sizeof(c->grant_id), "%s", g->id);
}

static void on_inst(int status, const struct aws_result *res, struct shapes_instance *i, void *user)
{
	struct cap *c = user;

	(void)i;
	c->n++;
	c->status = status;
	c->http_code = res->http_code;
	snprintf(c->code, sizeof(c->code), "%s", res->code ? res->code : "");
	snprintf(c->error, sizeof(c->error), "%s", res->error);
	c->attempts = res->attempts;
}

static void on_grants(int status, const struct aws_result *res, struct shapes_grant_list *l, void *user)
{
	struct cap *c = user;

	(void)l;
	c->n++;
	c->status = status;
	snprintf(c->error, sizeof(c->error), "%s", res->error);
	c->attempts = res->attempts;
}

#define STARTS(a, b) (strncmp((a), (b), strlen(b)) == 0)
#define WAIT(L, C) fx_run_until((L), &(C)->n, 1, 60000)
#define OK(C) do { if ((C)->status != 0) fail_msg("failed: %s", (C)->error); } while (0)

static double rand_high(void *u)
{
	(void)u;
	return 0.999;
}

static struct credprov *static_prov(struct fx_loop *l)
{
	struct credprov_env env;
	struct credprov *p = NULL;

	fx_env_init(&env, l);
	assert_int_equal(credprov_new_static(&env, FX_AKID, FX_SECRET, NULL, &p), 0);
	return p;
}

/* Client with a fast policy: base 100 ms (both kinds), jitter r = 0.999. */
static struct aws_client *fast_client(struct fx_loop *l, const struct fx_proc *srv, struct credprov *p,
				      struct retry_policy *pol)
{
	struct aws_client_opts o;

	aws_client_opts_default(&o);
	retry_policy_classic(pol);
	pol->base_ms = 100;
	pol->base_throttling_ms = 100;
	o.policy = pol;
	o.rand = rand_high;
	return fx_client(l, srv, p, &o);
}

static void make_instance(struct aws_client *cl, struct fx_loop *l)
{
	struct cap c = {0};
	struct shapes_create_location_req lr = {.scope = "s3://", .iam_role_arn = "arn:aws:iam::111122223333:role/l"};

	s3control_create_instance(cl, NULL, on_inst, &c);
	WAIT(l, &c);
	OK(&c);
	memset(&c, 0, sizeof(c));
	s3control_create_location(cl, &lr, (s3control_location_cb)(void (*)(void))on_inst, &c);
	WAIT(l, &c);
	OK(&c);
}

static void create_grant(struct aws_client *cl, struct fx_loop *l, const char *sub, struct cap *c)
{
	struct shapes_create_grant_req g = {
		.location_id = "default", .sub_prefix = sub, .grantee_type = "IAM",
		.grantee_id = "arn:aws:iam::111122223333:role/r", .permission = "READ",
	};

	memset(c, 0, sizeof(*c));
	s3control_create_grant(cl, &g, on_grant, c);
	WAIT(l, c);
}

/* Times (ms) of the logged CreateAccessGrant attempts, in order. */
static size_t log_times(int64_t *out, size_t max, int *statuses)
{
	char *js = NULL, *p;
	size_t n = 0;

	assert_int_equal(fx_control(&fake, "GET", "/__fake/log", NULL, &js), 0);
	for (p = js; n < max && (p = strstr(p, "\"time\":\"")); ) {
		char *q = strchr(p + 8, '"');
		char *st;

		assert_non_null(q);
		assert_int_equal(isotime_parse(p + 8, (size_t)(q - p - 8), &out[n]), 0);
		st = strstr(q, "\"status\":");
		statuses[n] = st ? atoi(st + 9) : -1;
		n++;
		p = q;
	}
	x_free(js);
	return n;
}

static void test_throttling_backs_off(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct retry_policy pol;
	struct aws_client_stats st;
	struct cap c;
	int64_t t[16];
	int s[16];
	size_t n;

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l);
	cl = fast_client(&l, &fake, prov, &pol);
	make_instance(cl, &l);
	assert_int_equal(fx_control(&fake, "POST", "/__fake/log/clear", "{}", NULL), 0);

	/* Two SlowDowns then success: delays 0.999*100 and 0.999*200 ms. */
	fx_config(&fake, "{\"throttle_next\": 2, \"fault_ops\": [\"CreateAccessGrant\"]}");
	create_grant(cl, &l, "b/throttled/*", &c);
	OK(&c);
	assert_int_equal(c.attempts, 3);
	n = log_times(t, 16, s);
	assert_int_equal(n, 3);
	assert_int_equal(s[0], 503);
	assert_int_equal(s[1], 503);
	assert_int_equal(s[2], 200);
	print_message("throttled attempts spaced %lld ms and %lld ms (expected >= 99 and >= 199)\n",
		      (long long)(t[1] - t[0]), (long long)(t[2] - t[1]));
	assert_true(t[1] - t[0] >= 95);
	assert_true(t[2] - t[1] >= 190);
	aws_client_stats(cl, &st);
	assert_int_equal(st.quota, 495);     /* 2 x 5 taken, the last 5 refunded on success */

	/* Still throttled after 3 attempts: S3G_ETHROTTLED naming the op. */
	fx_config(&fake, "{\"throttle_next\": 3}");
	create_grant(cl, &l, "b/throttled2/*", &c);
	assert_int_equal(c.status, S3G_ETHROTTLED);
	assert_int_equal(c.attempts, 3);
	assert_true(STARTS(c.error, "CreateAccessGrant: SlowDown: "));

	/* 429 with x-amz-retry-after honoured under the 2026 policy. */
	fx_config(&fake, "{\"throttle_next\": 1, \"throttle_status\": 429, \"retry_after_ms\": 300}");
	assert_int_equal(fx_control(&fake, "POST", "/__fake/log/clear", "{}", NULL), 0);
	fx_loop_done(&l, cl, prov);
	fx_loop_init(&l);
	{
		struct aws_client_opts o;
		struct credprov *p2 = static_prov(&l);

		aws_client_opts_default(&o);
		retry_policy_2026(&pol);
		o.policy = &pol;
		o.rand = rand_high;
		cl = fx_client(&l, &fake, p2, &o);
		create_grant(cl, &l, "b/retry-after/*", &c);
		OK(&c);
		assert_int_equal(c.attempts, 2);
		n = log_times(t, 16, s);
		assert_int_equal(n, 2);
		assert_int_equal(s[0], 429);
		print_message("retry-after 300 ms: attempts spaced %lld ms\n", (long long)(t[1] - t[0]));
		assert_true(t[1] - t[0] >= 290);
		fx_loop_done(&l, cl, p2);
	}
}

static void test_transient_within_quota(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct retry_policy pol;
	struct aws_client_stats st;
	struct cap c;

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l);
	cl = fast_client(&l, &fake, prov, &pol);
	make_instance(cl, &l);

	fx_config(&fake, "{\"error_next\": 2, \"fault_ops\": [\"CreateAccessGrant\"]}");
	create_grant(cl, &l, "b/t1/*", &c);
	OK(&c);
	assert_int_equal(c.attempts, 3);
	aws_client_stats(cl, &st);
	assert_int_equal(st.quota, 495);     /* 10 taken, last cost 5 refunded */

	/* Connection resets are transient too (curl itself may resend on a
	 * reused connection that died before answering, so 1 or 2 attempts). */
	fx_config(&fake, "{\"reset_next\": 1}");
	create_grant(cl, &l, "b/t2/*", &c);
	OK(&c);
	assert_true(c.attempts >= 1 && c.attempts <= 2);

	/* A small bucket: the first failing call spends it, the next is not retried. */
	fx_loop_done(&l, cl, prov);
	fx_loop_init(&l);
	{
		struct aws_client_opts o;
		struct credprov *p2 = static_prov(&l);

		aws_client_opts_default(&o);
		retry_policy_classic(&pol);
		pol.base_ms = 20;
		pol.quota_max = 10;
		o.policy = &pol;
		o.rand = rand_high;
		cl = fx_client(&l, &fake, p2, &o);
		fx_config(&fake, "{\"error_rate\": 1}");
		create_grant(cl, &l, "b/q1/*", &c);
		assert_int_equal(c.status, S3G_EAWS);
		assert_string_equal(c.code, "InternalError");
		assert_int_equal(c.attempts, 3);
		aws_client_stats(cl, &st);
		assert_int_equal(st.quota, 0);
		create_grant(cl, &l, "b/q2/*", &c);
		assert_int_equal(c.status, S3G_EAWS);
		assert_int_equal(c.attempts, 1);     /* no tokens left: no retry */
		assert_true(STARTS(c.error, "CreateAccessGrant: InternalError: "));
		fx_config(&fake, "{\"error_rate\": 0}");
		fx_loop_done(&l, cl, p2);
	}
}

static void test_terminal_not_retried(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct retry_policy pol;
	struct aws_client_stats st;
	struct cap c = {0};

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l);
	cl = fast_client(&l, &fake, prov, &pol);
	make_instance(cl, &l);
	s3control_get_grant(cl, "no-such-grant", on_grant, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_int_equal(c.attempts, 1);
	assert_string_equal(c.code, "NoSuchAccessGrantError");
	/* The fake's Invalid Grantee window: InvalidRequest is terminal here
	 * (the reconciler owns propagation retries). */
	fx_config(&fake, "{\"invalid_grantee_seconds\": 60}");
	create_grant(cl, &l, "b/ig/*", &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_string_equal(c.code, "InvalidRequest");
	assert_int_equal(c.attempts, 1);
	aws_client_stats(cl, &st);
	assert_int_equal(st.retries, 0);
	fx_loop_done(&l, cl, prov);
}

static void test_skew_corrected_once(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct retry_policy pol;
	struct aws_client_stats st;
	struct cap c;

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l);
	cl = fast_client(&l, &fake, prov, &pol);
	make_instance(cl, &l);
	fx_config(&fake, "{\"clock_offset_ms\": 3600000}");
	create_grant(cl, &l, "b/skew/*", &c);
	OK(&c);
	assert_int_equal(c.attempts, 2);
	aws_client_stats(cl, &st);
	print_message("skew learnt: %lld ms\n", (long long)st.skew_ms);
	assert_true(st.skew_ms > 3590000 && st.skew_ms < 3610000);
	/* Later calls are signed with the corrected clock: one attempt. */
	create_grant(cl, &l, "b/skew2/*", &c);
	OK(&c);
	assert_int_equal(c.attempts, 1);
	/* The server clock jumps again: corrected and retried once more. */
	fx_config(&fake, "{\"clock_offset_ms\": -3600000}");
	create_grant(cl, &l, "b/skew3/*", &c);
	OK(&c);
	assert_int_equal(c.attempts, 2);
	fx_config(&fake, "{\"clock_offset_ms\": 0}");
	fx_loop_done(&l, cl, prov);
}

static void test_bad_bodies(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct aws_client_opts o;
	struct cap c = {0};

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l);
	aws_client_opts_default(&o);
	o.max_response = 1u << 20;
	cl = fx_client(&l, &bad, prov, &o);

	s3control_get_grant(cl, "malformed", on_grant, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EPARSE);
	print_message("%s\n", c.error);
	assert_true(STARTS(c.error, "GetAccessGrant: malformed response (HTTP 200, "));
	memset(&c, 0, sizeof(c));

	s3control_get_grant(cl, "notxml", on_grant, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EPARSE);
	assert_true(STARTS(c.error, "GetAccessGrant: malformed response"));
	memset(&c, 0, sizeof(c));

	s3control_get_grant(cl, "huge", on_grant, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_ETOOBIG);
	print_message("%s\n", c.error);
	assert_true(STARTS(c.error, "GetAccessGrant: response over its size limit (1048576 bytes)"));
	assert_int_equal(c.attempts, 1);
	memset(&c, 0, sizeof(c));

	s3control_get_grant(cl, "badxmlerr", on_grant, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_int_equal(c.http_code, 403);
	print_message("%s\n", c.error);
	assert_true(STARTS(c.error, "GetAccessGrant: HTTP 403 Forbidden (unreadable error body"));
	memset(&c, 0, sizeof(c));

	s3control_list_grants(cl, NULL, NULL, on_grants, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_true(STARTS(c.error, "ListAccessGrants: NoSuchThing: nothing here"));
	fx_loop_done(&l, cl, prov);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_throttling_backs_off, reset_fake),
		cmocka_unit_test_setup(test_transient_within_quota, reset_fake),
		cmocka_unit_test_setup(test_terminal_not_retried, reset_fake),
		cmocka_unit_test_setup(test_skew_corrected_once, reset_fake),
		cmocka_unit_test_setup(test_bad_bodies, reset_fake),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
