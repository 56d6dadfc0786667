/* aws/credprov: every credential source on the loop, against real endpoints.
 *   process      scripts printing credential_process JSON; bad JSON, non-zero
 *                exit, oversized output, a missing command and a hung one give
 *                clear reasons that never carry the secret
 *   container    tests/client/creds_server.py, Authorization from a token file
 *                or value, wrong token, a disallowed host
 *   IMDSv2       the same server: token PUT with a TTL, role, credentials;
 *                tokenless GETs are refused (401), the token is reused and
 *                replaced when the service stops accepting it
 *   web identity moto AssumeRoleWithWebIdentity with a token file
 *   profiles     shared config + credentials (role_arn, source_profile,
 *                external_id, role_session_name) against moto
 *   default      the chain's order, with an injected environment
 *   refresh      at least 5 minutes before expiry (injected clock and jitter),
 *                in the background, single-flight (50 waiters, one fetch), a
 *                failed refresh keeps serving valid credentials
 *   mid-run      a stream of S3 Control calls against the fake while the
 *                credentials rotate, are revoked early (ExpiredToken) and
 *                expire under a jumping clock: no call fails
 * S3G_TIMEOUT: 240
 */
#include "client_fixture.h"

#include "aws/s3control.h"
#include "aws/sts.h"
#include "core/isotime.h"

static struct fx_proc cs, fake, moto;
static char tmpdir[64];
static char m_akid[128], m_secret[128], m_role[256], m_user[256];

/* ---- small helpers ---------------------------------------------------------- */

static long json_int(const char *js, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(js, pat);
	return p ? atol(p + strlen(pat)) : 0;
}

/* One counter of the credentials server. */
static long cs_stat(const char *name)
{
	char *js = NULL;
	long v;

	assert_int_equal(fx_control(&cs, "GET", "/__ctl/stats", NULL, &js), 0);
	v = json_int(js, name);
	x_free(js);
	return v;
}

static void cs_config(const char *json)
{
	assert_int_equal(fx_control(&cs, "POST", "/__ctl/config", json, NULL), 0);
}

static void write_file(const char *path, const char *text, int mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, (mode_t)mode), 0);
}

static char *tmp_path(const char *name)
{
	return x_asprintf("%s/%s", tmpdir, name);
}

static void iso(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An injected environment: a small table. */
struct fenv {
	const char *k[24];
	const char *v[24];
	size_t n;
};

static const char *fenv_get(const char *name, void *user)
{
	struct fenv *e = user;

	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->k[i], name) == 0)
			return e->v[i];
	return NULL;
}

static void fenv_set(struct fenv *e, const char *k, const char *v)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->k[i], k) == 0) {
			e->v[i] = v;
			return;
		}
	assert_true(e->n < 24);
	e->k[e->n] = k;
	e->v[e->n++] = v;
}

/* Injected wall clock and jitter. */
static int64_t clock_now;
static int64_t test_clock(void *user)
{
	(void)user;
	return clock_now;
}

/* Real time plus an offset the test moves. */
static int64_t clock_offset;
static int64_t offset_clock(void *user)
{
	(void)user;
	return wall_ms() + clock_offset;
}

static double rand_value;
static double test_rand(void *user)
{
	(void)user;
	return rand_value;
}

static void env_with(struct credprov_env *env, struct fx_loop *l, struct fenv *fe)
{
	fx_env_init(env, l);
	env->endpoints.getenv = fenv_get;
	env->endpoints.getenv_user = fe;
}

struct got {
	int n;
	int status;
	char akid[128];
	char secret[128];
	char token[256];
	int64_t exp;
	char reason[768];
};

static void on_got(int status, const struct aws_creds *c, const char *reason, void *user)
{
	struct got *g = user;

	g->n++;
	g->status = status;
	snprintf(g->reason, sizeof(g->reason), "%s", reason ? reason : "");
	if (c) {
		snprintf(g->akid, sizeof(g->akid), "%s", c->access_key_id);
		snprintf(g->secret, sizeof(g->secret), "%s", c->secret_access_key);
		snprintf(g->token, sizeof(g->token), "%s", c->session_token ? c->session_token : "");
		g->exp = c->expiration_ms;
	}
}

static void get(struct fx_loop *l, struct credprov *p, struct got *g)
{
	struct credprov_waiter w;

	memset(g, 0, sizeof(*g));
	credprov_get(p, &w, on_got, g);
	fx_run_until(l, &g->n, 1, 30000);
}

/* Expect a failure whose reason contains want and not the secret. */
static void get_fails(struct fx_loop *l, struct credprov *p, const char *want, const char *secret)
{
	struct got g;

	get(l, p, &g);
	print_message("%s\n", g.reason);
	assert_int_equal(g.status, S3G_ECREDS);
	if (!strstr(g.reason, want))
		fail_msg("reason \"%s\" lacks \"%s\"", g.reason, want);
	if (secret)
		assert_null(strstr(g.reason, secret));
}

static void prov_done(struct fx_loop *l, struct credprov *p)
{
	fx_loop_done(l, NULL, p);
}

typedef int (*pred_cb)(void *arg);

static void run_until_pred(struct fx_loop *l, pred_cb pred, void *arg, uint64_t timeout_ms)
{
	uv_timer_start(&l->guard, fx_guard_fired, timeout_ms, 0);
	uv_timer_start(&l->tick, fx_tick, 1, 1);
	while (!pred(arg))
		uv_run(&l->loop, UV_RUN_ONCE);
	uv_timer_stop(&l->tick);
	uv_timer_stop(&l->guard);
}

/* ---- fixtures --------------------------------------------------------------- */

static int group_setup(void **state)
{
	char s1[1024], s2[1024];
	char *cs_argv[] = {"python3", s1, NULL};
	char *moto_argv[] = {"python3", s2, NULL};
	const char *pp;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid());
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/s3g-creds-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(s1, sizeof(s1), "%s/tests/client/creds_server.py", fx_src());
	snprintf(s2, sizeof(s2), "%s/tests/client/moto_fixture.py", fx_src());
	if (fx_spawn(&cs, cs_argv, NULL, 30000) < 0)
		return -1;
	pp = strstr(cs.line, "\"port\": ");
	if (!pp)
		return -1;
	cs.port = atoi(pp + 8);
	snprintf(cs.url, sizeof(cs.url), "http://127.0.0.1:%d", cs.port);
	if (fx_fake_start(&fake, NULL) < 0)
		return -1;
	if (fx_spawn(&moto, moto_argv, NULL, 120000) < 0)
		return -1;
	fx_json_str(moto.line, "endpoint", moto.url, sizeof(moto.url));
	fx_json_str(moto.line, "akid", m_akid, sizeof(m_akid));
	fx_json_str(moto.line, "secret", m_secret, sizeof(m_secret));
	fx_json_str(moto.line, "role_arn", m_role, sizeof(m_role));
	fx_json_str(moto.line, "user_arn", m_user, sizeof(m_user));
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fx_stop(&cs);
	fx_stop(&fake);
	fx_stop(&moto);
	if (tmpdir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);   /* our mkdtemp name: no quotes in it */
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static int reset_servers(void **state)
{
	(void)state;
	assert_int_equal(fx_control(&cs, "POST", "/__ctl/reset", "{}", NULL), 0);
	assert_int_equal(fx_control(&fake, "POST", "/__fake/reset", "{}", NULL), 0);
	clock_offset = 0;
	rand_value = 0.0;
	return 0;
}

/* ---- credential_process -------------------------------------------------------- */

static void test_process(void **state)
{
	struct fx_loop l;
	struct credprov_env env;
	struct credprov *p = NULL;
	struct credprov_stats st;
	struct got g;
	char *good = tmp_path("good.sh"), *bad = tmp_path("bad.sh"), *fail = tmp_path("fail.sh");
	char *huge = tmp_path("huge.sh"), *hang = tmp_path("hang.sh"), *v2 = tmp_path("v2.sh");
	char *cmd;

	(void)state;
	write_file(good,
		   "#!/bin/sh\n"
		   "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"proc-secret\", "
		   "\"SessionToken\": \"tok-%s-%s\", \"Expiration\": \"2099-01-01T00:00:00Z\"}\\n' \"$1\" \"$2\"\n",
		   0755);
	write_file(bad, "#!/bin/sh\nprintf '{\"Version\": 1, \"AccessKeyId\": \"AKID\", \"SecretAccessKey\": "
		   "\"proc-secret-leak\",'\n", 0755);
	write_file(fail, "#!/bin/sh\necho 'no SSO session: run aws sso login' >&2\nexit 3\n", 0755);
	write_file(huge, "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\000' a\n", 0755);
	write_file(hang, "#!/bin/sh\nexec sleep 60\n", 0755);
	write_file(v2, "#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\"}'\n", 0755);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	/* Arguments split like a shell: quotes keep the blank, no shell runs. */
	cmd = x_asprintf("%s 'a b' e\\ \"f\"", good);
	assert_int_equal(credprov_new_process(&env, cmd, &p), 0);
	x_free(cmd);
	assert_int_equal(credprov_kind(p), CREDPROV_PROCESS);
	get(&l, p, &g);
	if (g.status)
		fail_msg("%s", g.reason);
	assert_string_equal(g.akid, "AKIDPROCESS");
	assert_string_equal(g.secret, "proc-secret");
	assert_string_equal(g.token, "tok-a b-e f");
	assert_int_equal(g.exp, 4070908800000);
	get(&l, p, &g);   /* cached */
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 1);
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	assert_int_equal(credprov_new_process(&env, bad, &p), 0);
	get_fails(&l, p, "process credentials: credential_process output: ", "proc-secret-leak");
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	assert_int_equal(credprov_new_process(&env, fail, &p), 0);
	get_fails(&l, p, "credential_process exited with 3: no SSO session: run aws sso login", NULL);
	/* Each get after a failure tries again. */
	get_fails(&l, p, "exited with 3", NULL);
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 2);
	assert_int_equal(st.failures, 2);
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	assert_int_equal(credprov_new_process(&env, huge, &p), 0);
	get_fails(&l, p, "credential_process printed more than 65536 bytes", NULL);
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	assert_int_equal(credprov_new_process(&env, "/nonexistent/credential-helper --profile x", &p), 0);
	get_fails(&l, p, "cannot start the command", NULL);
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	assert_int_equal(credprov_new_process(&env, v2, &p), 0);
	get_fails(&l, p, "credential_process output: ", "\"s\"");
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	env.timeout_ms = 300;
	assert_int_equal(credprov_new_process(&env, hang, &p), 0);
	get_fails(&l, p, "credential_process timed out", NULL);
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	assert_int_equal(credprov_new_process(&env, "'unterminated", &p), 0);
	get(&l, p, &g);
	assert_int_equal(g.status, S3G_ECONFIG);
	assert_non_null(strstr(g.reason, "cannot split the command line"));
	prov_done(&l, p);

	/* Closing while the command runs: the waiter hears "cancelled", the child is killed. */
	fx_loop_init(&l);
	fx_env_init(&env, &l);
	assert_int_equal(credprov_new_process(&env, hang, &p), 0);
	{
		struct credprov_waiter w;
		int closed = 0;

		memset(&g, 0, sizeof(g));
		credprov_get(p, &w, on_got, &g);
		credprov_close(p, fx_prov_closed, &closed);
		fx_run_until(&l, &closed, 1, 10000);
		assert_int_equal(g.n, 1);
		assert_int_equal(g.status, S3G_ECANCELLED);
		credprov_free(p);
	}
	fx_loop_done(&l, NULL, NULL);

	x_free(good);
	x_free(bad);
	x_free(fail);
	x_free(huge);
	x_free(hang);
	x_free(v2);
}

/* ---- container endpoint ------------------------------------------------------ */

static void test_container(void **state)
{
	struct fx_loop l;
	struct credprov_env env;
	struct credprov *p = NULL;
	struct fenv fe = {0};
	struct got g;
	char url[256], *tokfile = tmp_path("container-token");

	(void)state;
	snprintf(url, sizeof(url), "%s/container/creds", cs.url);
	write_file(tokfile, "Bearer eks-pod-identity-token\n", 0600);
	cs_config("{\"container_auth\": \"Bearer eks-pod-identity-token\"}");

	fenv_set(&fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
	fenv_set(&fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tokfile);
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_container(&env, &p), 0);
	get(&l, p, &g);
	if (g.status)
		fail_msg("%s", g.reason);
	assert_string_equal(g.akid, "ASIACONTAINER0001");
	assert_string_equal(g.secret, "container-secret-1");
	assert_string_equal(g.token, "container-token-1");
	assert_int_equal(g.exp, 4070908800000);
	assert_int_equal(cs_stat("container"), 1);
	assert_int_equal(cs_stat("container_unauthorized"), 0);
	prov_done(&l, p);

	/* The token as a value; the file wins when both are set (botocore). */
	fenv_set(&fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);
	fenv_set(&fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer eks-pod-identity-token");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_container(&env, &p), 0);
	get(&l, p, &g);
	assert_int_equal(g.status, 0);
	prov_done(&l, p);

	/* A wrong token: the endpoint's 401, the token not echoed. */
	fenv_set(&fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer wrong-token-value");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_container(&env, &p), 0);
	get_fails(&l, p, "the container credentials endpoint answered HTTP 401", "wrong-token-value");
	assert_int_equal(cs_stat("container_unauthorized"), 1);
	prov_done(&l, p);

	/* A token with a line break cannot become a header. */
	fenv_set(&fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer x\r\nX-Injected: 1");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_container(&env, &p), 0);
	get_fails(&l, p, "contains CR or LF", NULL);
	prov_done(&l, p);

	/* Plain http only to loopback and the ECS/EKS addresses. */
	fenv_set(&fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL);
	fenv_set(&fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_container(&env, &p), 0);
	get_fails(&l, p, "must be https or a loopback", NULL);
	prov_done(&l, p);

	/* Broken documents. */
	cs_config("{\"container_auth\": null, \"mode\": \"badjson\"}");
	fenv_set(&fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_container(&env, &p), 0);
	get_fails(&l, p, "container credentials: bad document from the container endpoint: ",
		  "leaked-secret-value");
	cs_config("{\"mode\": \"nosecret\"}");
	get_fails(&l, p, "SecretAccessKey", NULL);
	cs_config("{\"mode\": \"huge\"}");
	get_fails(&l, p, "container/creds: ", NULL);
	cs_config("{\"mode\": \"500\"}");
	get_fails(&l, p, "answered HTTP 500", NULL);
	prov_done(&l, p);
	x_free(tokfile);
}

/* ---- IMDSv2 ------------------------------------------------------------------- */

static void test_imds(void **state)
{
	struct fx_loop l;
	struct credprov_env env;
	struct credprov *p = NULL;
	struct fenv fe = {0};
	struct got g;

	(void)state;
	cs_config("{\"creds\": [{\"AccessKeyId\": \"ASIAIMDS0001\", \"SecretAccessKey\": \"imds-secret-1\", "
		  "\"Token\": \"imds-token-1\", \"Expiration\": \"2099-01-01T00:00:00Z\"}, "
		  "{\"AccessKeyId\": \"ASIAIMDS0002\", \"SecretAccessKey\": \"imds-secret-2\", "
		  "\"Token\": \"imds-token-2\", \"Expiration\": \"2099-01-01T00:00:00Z\"}]}");
	fenv_set(&fe, "AWS_EC2_METADATA_SERVICE_ENDPOINT", cs.url);
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_imds(&env, &p), 0);
	get(&l, p, &g);
	if (g.status)
		fail_msg("%s", g.reason);
	assert_string_equal(g.akid, "ASIAIMDS0001");
	assert_string_equal(g.token, "imds-token-1");
	/* Token PUT with a valid TTL, then role and credentials with it: the
	 * server refuses every tokenless GET (IMDSv1 off). */
	assert_int_equal(cs_stat("imds_token"), 1);
	assert_int_equal(cs_stat("imds_token_bad"), 0);
	assert_int_equal(cs_stat("imds_role"), 1);
	assert_int_equal(cs_stat("imds_creds"), 1);
	assert_int_equal(cs_stat("imds_unauthorized"), 0);

	/* AWS rejected them (ExpiredToken): the session token is reused. */
	credprov_invalidate(p, credprov_generation(p));
	get(&l, p, &g);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.akid, "ASIAIMDS0002");
	assert_int_equal(cs_stat("imds_token"), 1);
	assert_int_equal(cs_stat("imds_creds"), 2);

	/* The service forgets its tokens: one 401, a new token, success. */
	cs_config("{\"revoke_imds_tokens\": true}");
	credprov_invalidate(p, credprov_generation(p));
	get(&l, p, &g);
	assert_int_equal(g.status, 0);
	credprov_invalidate(p, credprov_generation(p));
	get(&l, p, &g);
	assert_int_equal(g.status, 0);
	assert_int_equal(cs_stat("imds_token"), 2);
	assert_int_equal(cs_stat("imds_unauthorized"), 1);
	prov_done(&l, p);

	/* No role on the instance, broken credentials, IMDS disabled. */
	cs_config("{\"revoke_imds_tokens\": false, \"mode\": \"badjson\"}");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_imds(&env, &p), 0);
	get_fails(&l, p, "imds credentials: bad document from IMDS: ", "leaked-secret-value");
	prov_done(&l, p);

	fenv_set(&fe, "AWS_EC2_METADATA_DISABLED", "true");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_imds(&env, &p), 0);
	get_fails(&l, p, "IMDS disabled by AWS_EC2_METADATA_DISABLED", NULL);
	prov_done(&l, p);
}

/* ---- web identity and profiles (moto) ------------------------------------------ */

struct cap {
	int n;
	int status;
	char error[1024];
	char arn[512];
};

static void on_identity(int status, const struct aws_result *res, struct shapes_caller_identity *id, void *user)
{
	struct cap *c = user;

	c->n++;
	c->status = status;
	snprintf(c->error, sizeof(c->error), "%s", res->error);
	if (id)
		snprintf(c->arn, sizeof(c->arn), "%s", id->arn);
}

/* GetCallerIdentity on moto signed by p; the caller's ARN (or the error) in c. */
static void whoami(struct fx_loop *l, struct credprov *p, struct cap *c)
{
	struct aws_client_opts o;
	struct aws_client *cl = NULL;
	int n = 0;

	memset(c, 0, sizeof(*c));
	aws_client_opts_default(&o);
	o.http = l->http;
	o.creds = p;
	o.region = "us-east-1";
	o.endpoints.sts_url = moto.url;
	assert_int_equal(aws_client_new(&l->loop, &o, &cl), 0);
	sts_get_caller_identity(cl, on_identity, c);
	fx_run_until(l, &c->n, 1, 60000);
	aws_client_close(cl, fx_client_closed, &n);
	fx_run_until(l, &n, 1, 30000);
	aws_client_free(cl);
}

static void test_web_identity(void **state)
{
	struct fx_loop l;
	struct credprov_env env;
	struct credprov *p = NULL;
	struct credprov_stats st;
	struct cap c;
	struct got g;
	char *tok = tmp_path("web-identity-token"), *missing = tmp_path("no-such-token");

	(void)state;
	write_file(tok, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzM2dyYW50ZCJ9.c2lnbmF0dXJl\n", 0600);
	fx_loop_init(&l);
	fx_env_init(&env, &l);
	env.endpoints.sts_url = moto.url;
	assert_int_equal(credprov_new_web_identity(&env, tok, m_role, "s3grantd-wi", &p), 0);
	assert_int_equal(credprov_kind(p), CREDPROV_WEB_IDENTITY);
	get(&l, p, &g);
	if (g.status)
		fail_msg("%s", g.reason);
	assert_true(strncmp(g.akid, "ASIA", 4) == 0);
	assert_true(g.token[0]);
	assert_true(g.exp > wall_ms());
	whoami(&l, p, &c);
	if (c.status)
		fail_msg("%s", c.error);
	assert_non_null(strstr(c.arn, ":assumed-role/tenant/s3grantd-wi"));
	/* The token file is read again on every refresh (kubelet rotates it). */
	write_file(tok, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb3RhdGVkIn0.c2lnbmF0dXJl\n", 0600);
	credprov_invalidate(p, credprov_generation(p));
	get(&l, p, &g);
	assert_int_equal(g.status, 0);
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 2);
	prov_done(&l, p);

	fx_loop_init(&l);
	fx_env_init(&env, &l);
	env.endpoints.sts_url = moto.url;
	assert_int_equal(credprov_new_web_identity(&env, missing, m_role, NULL, &p), 0);
	get_fails(&l, p, "web-identity credentials: cannot open ", NULL);
	prov_done(&l, p);
	x_free(tok);
	x_free(missing);
}

static void test_profiles(void **state)
{
	struct fx_loop l;
	struct credprov_env env;
	struct credprov *p = NULL;
	struct fenv fe = {0};
	struct cap c;
	struct got g;
	const char *why = NULL;
	char *cfg = tmp_path("config"), *crd = tmp_path("credentials"), *good = tmp_path("prof-proc.sh");
	char *text;

	(void)state;
	write_file(good, "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROFPROC\", "
		   "\"SecretAccessKey\": \"s\"}'\n", 0755);
	text = x_asprintf("[default]\nregion = us-east-1\n\n"
			  "[profile tenant]\nrole_arn = %s\nsource_profile = base\nexternal_id = tenant-42\n"
			  "role_session_name = s3grantd-prof\nduration_seconds = 900\n\n"
			  "[profile wrong-external]\nrole_arn = %s\nsource_profile = base\nexternal_id = nope\n\n"
			  "[profile proc]\ncredential_process = %s\n",
			  m_role, m_role, good);
	write_file(cfg, text, 0600);
	x_free(text);
	text = x_asprintf("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n", m_akid, m_secret);
	write_file(crd, text, 0600);
	x_free(text);

	/* role_arn + source_profile + external_id + role_session_name. */
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	env.endpoints.sts_url = moto.url;
	assert_int_equal(credprov_new_profile(&env, "tenant", cfg, crd, &p, &why), 0);
	assert_int_equal(credprov_kind(p), CREDPROV_ASSUME_ROLE);
	whoami(&l, p, &c);
	if (c.status)
		fail_msg("%s", c.error);
	assert_non_null(strstr(c.arn, ":assumed-role/tenant/s3grantd-prof"));
	prov_done(&l, p);

	/* The base profile alone: the user's own keys. */
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	env.endpoints.sts_url = moto.url;
	assert_int_equal(credprov_new_profile(&env, "base", cfg, crd, &p, &why), 0);
	assert_int_equal(credprov_kind(p), CREDPROV_STATIC);
	whoami(&l, p, &c);
	assert_int_equal(c.status, 0);
	assert_string_equal(c.arn, m_user);
	prov_done(&l, p);

	/* The trust policy wants ExternalId tenant-42. */
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	env.endpoints.sts_url = moto.url;
	assert_int_equal(credprov_new_profile(&env, "wrong-external", cfg, crd, &p, &why), 0);
	whoami(&l, p, &c);
	assert_int_equal(c.status, S3G_ECREDS);
	print_message("%s\n", c.error);
	assert_non_null(strstr(c.error, "AssumeRole: AccessDenied"));
	assert_null(strstr(c.error, m_secret));
	prov_done(&l, p);

	/* credential_process in a profile. */
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_profile(&env, "proc", cfg, crd, &p, &why), 0);
	assert_int_equal(credprov_kind(p), CREDPROV_PROCESS);
	get(&l, p, &g);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.akid, "AKIDPROFPROC");
	prov_done(&l, p);

	/* AWS_PROFILE picks the profile when none is given. */
	fenv_set(&fe, "AWS_PROFILE", "base");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	assert_int_equal(credprov_new_profile(&env, NULL, cfg, crd, &p, &why), 0);
	assert_int_equal(credprov_kind(p), CREDPROV_STATIC);
	prov_done(&l, p);

	/* A profile that does not exist: an error with a reason, nothing leaked. */
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	why = NULL;
	p = NULL;
	assert_true(credprov_new_profile(&env, "nope", cfg, crd, &p, &why) < 0);
	assert_null(p);
	assert_non_null(why);
	print_message("nope: %s\n", why);
	fx_loop_done(&l, NULL, NULL);
	x_free(cfg);
	x_free(crd);
	x_free(good);
}

/* ---- the default chain -------------------------------------------------------- */

static void test_default_chain(void **state)
{
	struct fx_loop l;
	struct credprov_env env;
	struct credprov *p = NULL;
	struct fenv fe = {0};
	struct got g;
	const char *why = NULL;
	char *cfg = tmp_path("chain-config"), *crd = tmp_path("chain-credentials"), *tok = tmp_path("chain-wi");
	char url[256];
	static const struct {
		const char *drop;            /* removed before this step */
		enum credprov_kind want;
	} steps[] = {
		{NULL, CREDPROV_ENVIRONMENT},
		{"AWS_ACCESS_KEY_ID", CREDPROV_WEB_IDENTITY},
		{"AWS_WEB_IDENTITY_TOKEN_FILE", CREDPROV_STATIC},             /* the profile's keys */
		{"AWS_SHARED_CREDENTIALS_FILE", CREDPROV_CONTAINER},
		{"AWS_CONTAINER_CREDENTIALS_FULL_URI", CREDPROV_IMDS},
	};

	(void)state;
	write_file(cfg, "[profile chain]\nregion = us-east-1\n", 0600);
	write_file(crd, "[chain]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n", 0600);
	write_file(tok, "token\n", 0600);
	snprintf(url, sizeof(url), "%s/container/creds", cs.url);
	fenv_set(&fe, "HOME", tmpdir);
	fenv_set(&fe, "AWS_ACCESS_KEY_ID", "AKIDENV");
	fenv_set(&fe, "AWS_SECRET_ACCESS_KEY", "env-secret");
	fenv_set(&fe, "AWS_WEB_IDENTITY_TOKEN_FILE", tok);
	fenv_set(&fe, "AWS_ROLE_ARN", m_role);
	fenv_set(&fe, "AWS_PROFILE", "chain");
	fenv_set(&fe, "AWS_CONFIG_FILE", cfg);
	fenv_set(&fe, "AWS_SHARED_CREDENTIALS_FILE", crd);
	fenv_set(&fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
	fenv_set(&fe, "AWS_EC2_METADATA_SERVICE_ENDPOINT", cs.url);

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].drop) {
			fenv_set(&fe, steps[i].drop, NULL);
			if (strcmp(steps[i].drop, "AWS_ACCESS_KEY_ID") == 0)
				fenv_set(&fe, "AWS_SECRET_ACCESS_KEY", NULL);
		}
		fx_loop_init(&l);
		env_with(&env, &l, &fe);
		env.endpoints.sts_url = moto.url;
		why = NULL;
		if (credprov_new_default(&env, &p, &why) < 0)
			fail_msg("step %zu: %s", i, why ? why : "?");
		if (credprov_kind(p) != steps[i].want)
			fail_msg("step %zu: %s, want %s", i, credprov_kind_name(credprov_kind(p)),
				 credprov_kind_name(steps[i].want));
		get(&l, p, &g);
		if (g.status)
			fail_msg("step %zu (%s): %s", i, credprov_kind_name(steps[i].want), g.reason);
		if (i == 0)
			assert_string_equal(g.akid, "AKIDENV");
		if (i == 2)
			assert_string_equal(g.akid, "AKIDPROFILE");
		if (i >= 3)
			assert_string_equal(g.akid, "ASIACONTAINER0001");
		prov_done(&l, p);
	}
	assert_int_equal(cs_stat("container"), 1);
	assert_int_equal(cs_stat("imds_creds"), 1);

	/* A profile named on purpose but missing is an error, not IMDS. */
	fenv_set(&fe, "AWS_SHARED_CREDENTIALS_FILE", crd);
	fenv_set(&fe, "AWS_PROFILE", "chian");
	fx_loop_init(&l);
	env_with(&env, &l, &fe);
	why = NULL;
	p = NULL;
	assert_int_equal(credprov_new_default(&env, &p, &why), S3G_ECONFIG);
	assert_null(p);
	assert_non_null(why);
	assert_non_null(strstr(why, "AWS_PROFILE"));
	fx_loop_done(&l, NULL, NULL);
	x_free(cfg);
	x_free(crd);
	x_free(tok);
}

/* ---- refresh, single flight ----------------------------------------------------- */

static struct credprov *container_prov(struct fx_loop *l, struct fenv *fe, char *url, size_t n,
				       credprov_clock_cb clk)
{
	struct credprov_env env;
	struct credprov *p = NULL;

	snprintf(url, n, "%s/container/creds", cs.url);
	memset(fe, 0, sizeof(*fe));
	fenv_set(fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
	env_with(&env, l, fe);
	env.clock = clk;
	env.rand = test_rand;
	assert_int_equal(credprov_new_container(&env, &p), 0);
	return p;
}

static void cs_creds(int64_t exp1, int64_t exp2, int64_t exp3)
{
	char e1[32], e2[32], e3[32], js[1024];

	iso(exp1, e1, sizeof(e1));
	iso(exp2, e2, sizeof(e2));
	iso(exp3, e3, sizeof(e3));
	snprintf(js, sizeof(js),
		 "{\"creds\": [{\"AccessKeyId\": \"ASIAROTATE0001\", \"SecretAccessKey\": \"rotate-secret-1\", "
		 "\"Token\": \"rotate-token-1\", \"Expiration\": \"%s\"}, "
		 "{\"AccessKeyId\": \"ASIAROTATE0002\", \"SecretAccessKey\": \"rotate-secret-2\", "
		 "\"Token\": \"rotate-token-2\", \"Expiration\": \"%s\"}, "
		 "{\"AccessKeyId\": \"ASIAROTATE0003\", \"SecretAccessKey\": \"rotate-secret-3\", "
		 "\"Token\": \"rotate-token-3\", \"Expiration\": \"%s\"}]}",
		 e1, e2, e3);
	cs_config(js);
}

struct fetch_wait {
	struct credprov *p;
	uint64_t want;
};

static int fetches_reached(void *arg)
{
	struct fetch_wait *fw = arg;
	struct credprov_stats st;

	credprov_stats(fw->p, &st);
	return st.fetches >= fw->want && credprov_generation(fw->p) + st.failures >= fw->want;
}

static void test_refresh_window(void **state)
{
	struct fx_loop l;
	struct credprov *p;
	struct credprov_stats st;
	struct fenv fe;
	struct got g;
	const struct aws_creds *cur;
	char url[256];
	int64_t t0 = 1767225600000;   /* 2026-01-01T00:00:00Z */
	static const double jitters[] = {0.0, 0.5, 0.999};

	(void)state;
	/* An hour-long credential: the refresh is due 5 minutes before expiry,
	 * earlier by up to a quarter of that (jitter), never later. */
	for (size_t i = 0; i < sizeof(jitters) / sizeof(jitters[0]); i++) {
		clock_now = t0;
		rand_value = jitters[i];
		assert_int_equal(fx_control(&cs, "POST", "/__ctl/reset", "{}", NULL), 0);
		cs_creds(t0 + 3600000, t0 + 7200000, t0 + 7200000);
		fx_loop_init(&l);
		p = container_prov(&l, &fe, url, sizeof(url), test_clock);
		get(&l, p, &g);
		assert_int_equal(g.status, 0);
		credprov_stats(p, &st);
		assert_int_equal(st.expiration_ms, t0 + 3600000);
		print_message("jitter %.3f: refresh %lld s before expiry\n", jitters[i],
			      (long long)(st.expiration_ms - st.refresh_at_ms) / 1000);
		assert_true(st.expiration_ms - st.refresh_at_ms >= 5 * 60 * 1000);
		assert_true(st.expiration_ms - st.refresh_at_ms <= 5 * 60 * 1000 + 75 * 1000);
		if (jitters[i] == 0.0)
			assert_int_equal(st.refresh_at_ms, t0 + 3600000 - 300000);
		/* Within the window, served from the cache. */
		clock_now = st.refresh_at_ms - 1;
		assert_non_null(credprov_peek(p));
		prov_done(&l, p);
	}

	/* Due in 2 s: the refresh happens by itself, the old credentials are
	 * served meanwhile, then the new ones; nobody waited. */
	clock_now = t0;
	rand_value = 0.0;
	assert_int_equal(fx_control(&cs, "POST", "/__ctl/reset", "{}", NULL), 0);
	cs_creds(t0 + 300000 + 2000, t0 + 3600000, t0 + 3600000);
	fx_loop_init(&l);
	p = container_prov(&l, &fe, url, sizeof(url), test_clock);
	get(&l, p, &g);
	assert_string_equal(g.akid, "ASIAROTATE0001");
	credprov_stats(p, &st);
	assert_int_equal(st.refresh_at_ms, t0 + 2000);
	cur = credprov_peek(p);
	assert_non_null(cur);
	assert_string_equal(cur->access_key_id, "ASIAROTATE0001");
	{
		struct fetch_wait fw = {p, 2};

		run_until_pred(&l, fetches_reached, &fw, 10000);
	}
	cur = credprov_peek(p);
	assert_non_null(cur);
	assert_string_equal(cur->access_key_id, "ASIAROTATE0002");
	assert_int_equal(credprov_generation(p), 2);
	assert_int_equal(cs_stat("container"), 2);
	credprov_stats(p, &st);
	assert_int_equal(st.refresh_at_ms, t0 + 3600000 - 300000);
	prov_done(&l, p);

	/* A failed background refresh keeps serving the still-valid credentials
	 * and tries again later. */
	assert_int_equal(fx_control(&cs, "POST", "/__ctl/reset", "{}", NULL), 0);
	cs_creds(t0 + 300000 + 2000, t0 + 3600000, t0 + 3600000);
	fx_loop_init(&l);
	p = container_prov(&l, &fe, url, sizeof(url), test_clock);
	get(&l, p, &g);
	cs_config("{\"mode\": \"500\"}");
	{
		struct fetch_wait fw = {p, 2};

		run_until_pred(&l, fetches_reached, &fw, 10000);
	}
	credprov_stats(p, &st);
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.refresh_at_ms, t0 + 30000);
	cur = credprov_peek(p);
	assert_non_null(cur);
	assert_string_equal(cur->access_key_id, "ASIAROTATE0001");
	get(&l, p, &g);
	assert_int_equal(g.status, 0);
	assert_string_equal(g.akid, "ASIAROTATE0001");
	prov_done(&l, p);
}

#define NWAIT 50

static void test_single_flight(void **state)
{
	struct fx_loop l;
	struct credprov *p;
	struct credprov_stats st;
	struct fenv fe;
	struct credprov_waiter w[NWAIT];
	static struct got g[NWAIT];
	char url[256];
	int done = 0;

	(void)state;
	/* A slow endpoint: 50 callers arrive while the one fetch runs. */
	cs_config("{\"latency_ms\": 300}");
	fx_loop_init(&l);
	p = container_prov(&l, &fe, url, sizeof(url), NULL);
	for (int i = 0; i < NWAIT; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		credprov_get(p, &w[i], on_got, &g[i]);
	}
	for (int i = 0; i < NWAIT; i++) {
		fx_run_until(&l, &g[i].n, 1, 10000);
		assert_int_equal(g[i].status, 0);
		assert_string_equal(g[i].akid, "ASIACONTAINER0001");
		done++;
	}
	assert_int_equal(done, NWAIT);
	assert_int_equal(cs_stat("container"), 1);
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 1);

	/* A failing refresh: every waiter hears the one failure. */
	cs_config("{\"mode\": \"500\"}");
	credprov_invalidate(p, credprov_generation(p));
	for (int i = 0; i < NWAIT; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		credprov_get(p, &w[i], on_got, &g[i]);
	}
	/* One cancelled waiter is not called. */
	credprov_cancel(&w[7]);
	for (int i = 0; i < NWAIT; i++) {
		if (i == 7)
			continue;
		fx_run_until(&l, &g[i].n, 1, 10000);
		assert_int_equal(g[i].status, S3G_ECREDS);
		assert_non_null(strstr(g[i].reason, "answered HTTP 500"));
	}
	assert_int_equal(g[7].n, 0);
	assert_int_equal(cs_stat("container"), 2);
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 2);
	assert_int_equal(st.failures, 1);
	prov_done(&l, p);
}

/* ---- credentials that expire mid-run -------------------------------------------- */

struct stream {
	struct aws_client *cl;
	int started, finished, failed, target;
	int in_flight;
	char first_error[1024];
};

static void stream_next(struct stream *s);

static void stream_done(int status, const struct aws_result *res, struct shapes_instance_list *list, void *user)
{
	struct stream *s = user;

	(void)list;
	s->finished++;
	s->in_flight--;
	if (status != 0 && !s->failed++)
		snprintf(s->first_error, sizeof(s->first_error), "%s", res->error);
	stream_next(s);
}

/* Keep 8 ListAccessGrantsInstances calls in flight until target have started. */
static void stream_next(struct stream *s)
{
	while (s->in_flight < 8 && s->started < s->target) {
		s->started++;
		s->in_flight++;
		s3control_list_instances(s->cl, NULL, stream_done, s);
	}
}

static int stream_at_gen(void *arg)
{
	struct stream *s = arg;

	return credprov_generation(aws_client_credprov(s->cl)) >= 2;
}

static void run_stream(struct fx_loop *l, struct stream *s, int more)
{
	s->target += more;
	stream_next(s);
	fx_run_until(l, &s->finished, s->target, 60000);
	if (s->failed)
		fail_msg("%d calls failed, first: %s", s->failed, s->first_error);
}

static void test_expire_mid_run(void **state)
{
	struct fx_loop l;
	struct credprov *p;
	struct credprov_stats st;
	struct aws_client_stats cst;
	struct fenv fe;
	struct stream s = {0};
	char url[256];
	int64_t now = wall_ms();

	(void)state;
	assert_int_equal(fx_control(&fake, "POST", "/__fake/credentials",
				    "{\"credentials\": ["
				    "{\"access_key\": \"ASIAROTATE0001\", \"secret_key\": \"rotate-secret-1\", "
				    "\"session_token\": \"rotate-token-1\", \"account\": \"" FX_ACCOUNT "\"},"
				    "{\"access_key\": \"ASIAROTATE0002\", \"secret_key\": \"rotate-secret-2\", "
				    "\"session_token\": \"rotate-token-2\", \"account\": \"" FX_ACCOUNT "\"},"
				    "{\"access_key\": \"ASIAROTATE0003\", \"secret_key\": \"rotate-secret-3\", "
				    "\"session_token\": \"rotate-token-3\", \"account\": \"" FX_ACCOUNT "\"}]}",
				    NULL), 0);
	/* 1: refreshed in the background 2-3 s from now (5 min before expiry);
	 * 2: valid an hour, but revoked early; 3: valid an hour. */
	cs_creds(now + 300000 + 3000, now + 3600000, now + 3600000 + 3600000);
	rand_value = 0.0;
	clock_offset = 0;
	fx_loop_init(&l);
	p = container_prov(&l, &fe, url, sizeof(url), offset_clock);
	s.cl = fx_client(&l, &fake, p, NULL);

	/* Phase 1: calls keep flowing across the background rotation; once the
	 * new credentials are in, the old token is expired at the service. */
	s.target = 0;
	s.target = 1000000;
	stream_next(&s);
	run_until_pred(&l, stream_at_gen, &s, 20000);
	fx_config(&fake, "{\"expired_tokens\": [\"rotate-token-1\"]}");
	s.target = s.started;
	run_stream(&l, &s, 50);
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 2);
	assert_int_equal(credprov_generation(p), 2);
	print_message("phase 1: %d calls across a background refresh, 0 failed\n", s.finished);

	/* Phase 2: the service expires token 2 before its time (ExpiredToken):
	 * the calls that hit it invalidate, ONE refresh runs, they are re-signed. */
	fx_config(&fake, "{\"expired_tokens\": [\"rotate-token-1\", \"rotate-token-2\"]}");
	run_stream(&l, &s, 100);
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 3);
	assert_int_equal(credprov_generation(p), 3);
	aws_client_stats(s.cl, &cst);
	assert_true(cst.retries >= 1);
	print_message("phase 2: %d calls, %llu re-signed after ExpiredToken, 0 failed\n", s.finished,
		      (unsigned long long)cst.retries);

	/* Phase 3: the wall clock jumps 2 h (suspend/resume): token 3 is past its
	 * expiry; queued calls wait for one fetch and succeed. */
	cs_config("{\"creds\": [{\"AccessKeyId\": \"ASIAROTATE0001\", \"SecretAccessKey\": \"rotate-secret-1\", "
		  "\"Token\": \"rotate-token-1\", \"Expiration\": \"2099-01-01T00:00:00Z\"}]}");
	fx_config(&fake, "{\"expired_tokens\": [\"rotate-token-2\", \"rotate-token-3\"]}");
	clock_offset = 2 * 3600 * 1000;
	assert_null(credprov_peek(p));
	run_stream(&l, &s, 100);
	credprov_stats(p, &st);
	assert_int_equal(st.fetches, 4);
	assert_int_equal(st.failures, 0);
	aws_client_stats(s.cl, &cst);
	assert_int_equal(cst.failed, 0);
	print_message("phase 3: %d calls in all, %llu attempts, 0 failed\n", s.finished,
		      (unsigned long long)cst.attempts);
	fx_loop_done(&l, s.cl, p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_process, reset_servers),
		cmocka_unit_test_setup(test_container, reset_servers),
		cmocka_unit_test_setup(test_imds, reset_servers),
		cmocka_unit_test_setup(test_web_identity, reset_servers),
		cmocka_unit_test_setup(test_profiles, reset_servers),
		cmocka_unit_test_setup(test_default_chain, reset_servers),
		cmocka_unit_test_setup(test_refresh_window, reset_servers),
		cmocka_unit_test_setup(test_single_flight, reset_servers),
		cmocka_unit_test_setup(test_expire_mid_run, reset_servers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
