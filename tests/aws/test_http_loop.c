/* aws/http: the libcurl-on-libuv engine against a loopback HTTP(S) fixture
 * (tests/aws/httpd_fixture.py, spawned per run, port read from its stdout).
 * S3G_TIMEOUT: 180
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "aws/http.h"

struct fixture {
	pid_t pid;
	int stdin_fd;
	int port;
	char cafile[512];
	char dir[64];
};

static struct fixture plain, tls;

static int fixture_start(struct fixture *f, int with_tls)
{
	const char *src = getenv("S3G_SOURCE_DIR");
	char script[1024], line[700];
	int in[2], out[2];
	struct pollfd pfd;
	FILE *fp;

	snprintf(script, sizeof(script), "%s/tests/aws/httpd_fixture.py", src ? src : ".");
	if (with_tls) {
		strcpy(f->dir, "/tmp/s3g-httpd-XXXXXX");
		if (!mkdtemp(f->dir))
			return -1;
	}
	if (pipe(in) < 0 || pipe(out) < 0)
		return -1;
	f->pid = fork();
	if (f->pid < 0)
		return -1;
	if (f->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		if (with_tls)
			execlp("python3", "python3", script, "--tls", f->dir, (char *)NULL);
		else
			execlp("python3", "python3", script, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	f->stdin_fd = in[1];
	pfd.fd = out[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 30000) != 1)
		return -1;
	fp = fdopen(out[0], "r");
	if (!fp || !fgets(line, sizeof(line), fp))
		return -1;
	fclose(fp);
	if (sscanf(line, "%d %511s", &f->port, f->cafile) != 2)
		return -1;
	return 0;
}

static void fixture_stop(struct fixture *f)
{
	if (f->pid <= 0)
		return;
	close(f->stdin_fd);
	kill(f->pid, SIGTERM);
	waitpid(f->pid, NULL, 0);
	f->pid = 0;
	if (f->dir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", f->dir);
	}
}

static int group_setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("AWS_CA_BUNDLE");
	if (fixture_start(&plain, 0) < 0 || fixture_start(&tls, 1) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	fixture_stop(&plain);
	fixture_stop(&tls);
	return 0;
}

/* ---- loop helpers ---- */

struct tctx {
	uv_loop_t loop;
	uv_timer_t guard;
	struct http_engine *eng;
	int closed;
	int done;                   /* finished requests */
	unsigned max_seen_in_flight;
};

static void guard_fired(uv_timer_t *t)
{
	fail_msg("test step did not finish in time");
}

static void ctx_init(struct tctx *c, const struct http_engine_opts *o)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(uv_loop_init(&c->loop), 0);
	uv_timer_init(&c->loop, &c->guard);
	assert_int_equal(http_engine_new(&c->loop, o, &c->eng), 0);
}

static void run_until(struct tctx *c, const int *flag, int want)
{
	uv_timer_start(&c->guard, guard_fired, 60000, 0);
	while (*flag < want)
		uv_run(&c->loop, UV_RUN_ONCE);
	uv_timer_stop(&c->guard);
}

static void on_closed(struct http_engine *eng, void *user)
{
	struct tctx *c = user;

	c->closed = 1;
}

static void ctx_close(struct tctx *c)
{
	http_engine_close(c->eng, on_closed, c);
	assert_int_equal(c->closed, 0);     /* never synchronous */
	run_until(c, &c->closed, 1);
	http_engine_free(c->eng);
	uv_close((uv_handle_t *)&c->guard, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&c->loop), 0);
}

struct treq {
	struct http_request r;
	struct tctx *c;
	char url[256];
	int done;
	int status;
	long code;
	int tcode;
	char body[4096];
	size_t body_len;
	char rid[64];
	int has_date;
	struct http_request *cancel_other; /* cancelled from this callback */
};

static void on_done(struct http_request *r, int status, const struct http_response *resp)
{
	struct treq *t = (struct treq *)r;
	struct http_stats st;
	const char *v;

	assert_int_equal(t->done, 0);
	t->done = 1;
	t->status = status;
	t->code = resp->code;
	t->tcode = resp->transport_code;
	assert_non_null(resp->body);
	assert_non_null(resp->error);
	t->body_len = resp->body->len;
	if (t->body_len < sizeof(t->body)) {
		memcpy(t->body, buf_str(resp->body), t->body_len);
		t->body[t->body_len] = '\0';
	}
	v = http_response_header(resp, "X-Amz-Request-Id");
	snprintf(t->rid, sizeof(t->rid), "%s", v ? v : "");
	t->has_date = http_response_header(resp, "date") != NULL;
	http_engine_stats(t->c->eng, &st);
	if (st.in_flight > t->c->max_seen_in_flight)
		t->c->max_seen_in_flight = (unsigned)st.in_flight;
	if (t->cancel_other)
		http_cancel(t->cancel_other);
	t->c->done++;
}

static void treq_init(struct treq *t, struct tctx *c, const char *method, const char *path)
{
	memset(t, 0, sizeof(*t));
	t->c = c;
	snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d%s", plain.port, path);
	t->r.method = method;
	t->r.url = t->url;
	t->r.done = on_done;
}

static void fetch_stats(struct tctx *c, long *conns, long *reqs, long *maxc)
{
	struct treq t;
	int base = c->done;
	const char *p;

	treq_init(&t, c, "GET", "/stats");
	http_start(c->eng, &t.r);
	run_until(c, &c->done, base + 1);
	assert_int_equal(t.status, 0);
	p = strstr(t.body, "\"connections\": ");
	assert_non_null(p);
	*conns = strtol(p + 15, NULL, 10);
	p = strstr(t.body, "\"requests\": ");
	assert_non_null(p);
	*reqs = strtol(p + 12, NULL, 10);
	p = strstr(t.body, "\"max_concurrent\": ");
	assert_non_null(p);
	*maxc = strtol(p + 18, NULL, 10);
}

static void zero_stats(struct tctx *c)
{
	struct treq t;
	int base = c->done;

	treq_init(&t, c, "GET", "/zero");
	http_start(c->eng, &t.r);
	run_until(c, &c->done, base + 1);
	assert_int_equal(t.status, 0);
}

/* ---- tests ---- */

static void test_methods_headers_async(void **state)
{
	struct tctx c;
	struct treq get, post, put, head, del, st;
	static const char *const hdrs[] = {"X-Test: one", "x-amz-date: 20150830T123600Z"};
	static const char body[] = "Action=GetCallerIdentity&Version=2011-06-15";

	ctx_init(&c, NULL);
	treq_init(&get, &c, "GET", "/ok");
	http_start(c.eng, &get.r);
	assert_int_equal(get.done, 0);      /* never called synchronously */

	treq_init(&post, &c, "POST", "/echo");
	post.r.headers = hdrs;
	post.r.n_headers = 2;
	post.r.body = body;
	post.r.body_len = strlen(body);
	http_start(c.eng, &post.r);

	treq_init(&put, &c, "PUT", "/echo");
	put.r.headers = (const char *const[]){"Content-Type: text/plain"};
	put.r.n_headers = 1;
	put.r.body = "hello";
	put.r.body_len = 5;
	http_start(c.eng, &put.r);

	treq_init(&head, &c, "HEAD", "/ok");
	http_start(c.eng, &head.r);
	treq_init(&del, &c, "DELETE", "/echo");
	http_start(c.eng, &del.r);
	treq_init(&st, &c, "GET", "/status?code=503");
	http_start(c.eng, &st.r);
	run_until(&c, &c.done, 6);

	assert_int_equal(get.status, 0);
	assert_int_equal(get.code, 200);
	assert_string_equal(get.body, "<ok/>");
	assert_string_equal(get.rid, "REQ123");
	assert_true(get.has_date);

	assert_int_equal(post.code, 200);
	assert_true(strncmp(post.body, "POST\n", 5) == 0);
	assert_non_null(strstr(post.body, "X-Test: one\n"));
	assert_non_null(strstr(post.body, "x-amz-date: 20150830T123600Z\n"));
	assert_null(strstr(post.body, "Expect:"));
	assert_null(strstr(post.body, "application/x-www-form-urlencoded"));
	assert_non_null(strstr(post.body, "\n\nAction=GetCallerIdentity&Version=2011-06-15"));

	assert_true(strncmp(put.body, "PUT\n", 4) == 0);
	assert_non_null(strstr(put.body, "Content-Type: text/plain\n"));
	assert_non_null(strstr(put.body, "Content-Length: 5\n"));
	assert_non_null(strstr(put.body, "\n\nhello"));

	assert_int_equal(head.status, 0);
	assert_int_equal(head.code, 200);
	assert_int_equal(head.body_len, 0);
	assert_true(strncmp(del.body, "DELETE\n", 7) == 0);
	assert_int_equal(st.code, 503);
	assert_non_null(strstr(st.body, "SlowDown"));

	/* Reused handles switch methods cleanly: GET after POST/PUT/HEAD. */
	treq_init(&get, &c, "GET", "/echo");
	http_start(c.eng, &get.r);
	run_until(&c, &c.done, 7);
	assert_true(strncmp(get.body, "GET\n", 4) == 0);
	assert_null(strstr(get.body, "Content-Length"));
	ctx_close(&c);
}

static void count_polls(uv_handle_t *h, void *arg)
{
	if (h->type == UV_POLL && !uv_is_closing(h))
		(*(int *)arg)++;
}

static void test_cap_and_reuse(void **state)
{
	enum { N = 40, CAP = 4 };
	struct http_engine_opts o;
	struct tctx c;
	struct treq *t = calloc(N, sizeof(*t));
	struct http_stats st;
	long conns, reqs, maxc;

	http_engine_opts_default(&o);
	o.max_in_flight = CAP;
	ctx_init(&c, &o);
	zero_stats(&c);
	c.done = 0;
	for (int i = 0; i < N; i++) {
		treq_init(&t[i], &c, "GET", "/slow?ms=20");
		http_start(c.eng, &t[i].r);
	}
	http_engine_stats(c.eng, &st);
	assert_int_equal(st.in_flight, CAP);
	assert_int_equal(st.queued, N - CAP);
	run_until(&c, &c.done, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(t[i].status, 0);
		assert_int_equal(t[i].code, 200);
	}
	assert_true(c.max_seen_in_flight <= CAP);
	fetch_stats(&c, &conns, &reqs, &maxc);
	assert_int_equal(reqs, N);
	assert_true(maxc <= CAP);
	assert_true(maxc >= 2);
	/* keep-alive: the server saw far fewer connections than requests */
	assert_true(conns <= CAP + 1);
	http_engine_stats(c.eng, &st);
	assert_true(st.connections <= CAP + 1);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.failed, 0);
	/* one uv_poll_t per socket: idle connections keep theirs, no more */
	int polls = 0;
	uv_walk(&c.loop, count_polls, &polls);
	assert_true(polls >= 1);
	assert_true(polls <= (int)st.connections);
	ctx_close(&c);
	free(t);
}

static void test_many_64(void **state)
{
	enum { N = 2000 };
	struct tctx c;
	struct treq *t = calloc(N, sizeof(*t));
	struct http_stats st;

	ctx_init(&c, NULL);
	for (int i = 0; i < N; i++) {
		treq_init(&t[i], &c, "GET", "/ok");
		http_start(c.eng, &t[i].r);
	}
	run_until(&c, &c.done, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(t[i].code, 200);
	http_engine_stats(c.eng, &st);
	assert_int_equal(st.completed, N);
	assert_true(c.max_seen_in_flight <= 64);
	assert_true(st.connections <= 64 + 8);
	ctx_close(&c);
	free(t);
}

/* The path goes out as given: SigV4 for S3 signs it without normalising,
 * so curl must not remove dot segments from an object key. */
static void test_path_verbatim(void **state)
{
	static const char *const paths[] = {"/raw/a/./b/../c%2Fd?x=1", "/raw/k/..", "/raw//x/./"};
	struct tctx c;
	struct treq t;

	ctx_init(&c, NULL);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		treq_init(&t, &c, "GET", paths[i]);
		http_start(c.eng, &t.r);
		run_until(&c, &t.done, 1);
		assert_int_equal(t.status, 0);
		assert_int_equal(t.code, 200);
		assert_string_equal(t.body, paths[i]);
	}
	ctx_close(&c);
}

static void test_timeout(void **state)
{
	struct tctx c;
	struct treq a, b;
	uint64_t t0;

	ctx_init(&c, NULL);
	treq_init(&a, &c, "GET", "/slow?ms=5000");
	a.r.timeout_ms = 200;
	treq_init(&b, &c, "GET", "/ok");
	t0 = uv_hrtime();
	http_start(c.eng, &a.r);
	http_start(c.eng, &b.r);
	run_until(&c, &c.done, 2);
	assert_int_equal(a.status, S3G_ETIMEOUT);
	assert_int_equal(a.code, 0);
	assert_int_equal(a.tcode, CURLE_OPERATION_TIMEDOUT);
	assert_true((uv_hrtime() - t0) / 1000000 < 3000);
	assert_int_equal(b.status, 0);
	ctx_close(&c);
}

static void test_too_big(void **state)
{
	struct tctx c;
	struct treq a, b, d, e;

	ctx_init(&c, NULL);
	treq_init(&a, &c, "GET", "/big?n=200000");
	a.r.max_response = 1000;
	treq_init(&b, &c, "GET", "/chunked?n=200000");
	b.r.max_response = 1000;
	treq_init(&d, &c, "GET", "/big?n=1000");
	d.r.max_response = 1000;
	treq_init(&e, &c, "GET", "/chunked?n=1000");
	e.r.max_response = 1000;
	http_start(c.eng, &a.r);
	http_start(c.eng, &b.r);
	http_start(c.eng, &d.r);
	http_start(c.eng, &e.r);
	run_until(&c, &c.done, 4);
	assert_int_equal(a.status, S3G_ETOOBIG);
	assert_int_equal(b.status, S3G_ETOOBIG);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.body_len, 1000);
	assert_int_equal(e.status, 0);
	assert_int_equal(e.body_len, 1000);
	ctx_close(&c);
}

static void test_reset(void **state)
{
	struct tctx c;
	struct treq a, b;

	ctx_init(&c, NULL);
	treq_init(&a, &c, "GET", "/reset");
	http_start(c.eng, &a.r);
	run_until(&c, &c.done, 1);
	assert_int_equal(a.status, S3G_ETRANSPORT);
	assert_int_equal(a.code, 0);
	assert_true(a.tcode != 0);
	/* the engine is fine afterwards */
	treq_init(&b, &c, "GET", "/ok");
	http_start(c.eng, &b.r);
	run_until(&c, &c.done, 2);
	assert_int_equal(b.code, 200);
	ctx_close(&c);
}

static void test_invalid_async(void **state)
{
	struct tctx c;
	struct treq a, b, d;

	ctx_init(&c, NULL);
	treq_init(&a, &c, "GET", "/ok");
	snprintf(a.url, sizeof(a.url), "ftp://127.0.0.1:%d/x", plain.port);
	treq_init(&b, &c, NULL, "/ok");
	treq_init(&d, &c, "GET", "/ok");
	snprintf(d.url, sizeof(d.url), "http://127.0.0.1:1/refused");
	http_start(c.eng, &a.r);
	http_start(c.eng, &b.r);
	http_start(c.eng, &d.r);
	assert_int_equal(a.done + b.done + d.done, 0);
	run_until(&c, &c.done, 3);
	assert_int_equal(a.status, S3G_ETRANSPORT);
	assert_int_equal(b.status, S3G_EINVAL);
	assert_int_equal(d.status, S3G_ETRANSPORT);
	ctx_close(&c);
}

static void cancel_timer(uv_timer_t *t)
{
	http_cancel(t->data);
}

static void test_cancel(void **state)
{
	struct http_engine_opts o;
	struct tctx c;
	struct treq a, b, d;
	uv_timer_t tm;
	struct http_stats st;
	uint64_t t0 = uv_hrtime();

	http_engine_opts_default(&o);
	o.max_in_flight = 1;
	ctx_init(&c, &o);
	treq_init(&a, &c, "GET", "/slow?ms=10000");
	treq_init(&b, &c, "GET", "/ok");
	treq_init(&d, &c, "GET", "/ok");
	http_start(c.eng, &a.r);
	http_start(c.eng, &b.r);
	http_cancel(&b.r);                   /* queued */
	assert_int_equal(b.done, 0);         /* not synchronous */
	run_until(&c, &b.done, 1);
	assert_int_equal(b.status, S3G_ECANCELLED);
	http_cancel(&b.r);                   /* finished: no-op */

	uv_timer_init(&c.loop, &tm);
	tm.data = &a.r;
	uv_timer_start(&tm, cancel_timer, 100, 0);
	http_start(c.eng, &d.r);             /* queued behind a */
	run_until(&c, &a.done, 1);
	assert_int_equal(a.status, S3G_ECANCELLED);
	run_until(&c, &d.done, 1);
	assert_int_equal(d.code, 200);
	assert_true((uv_hrtime() - t0) / 1000000 < 5000);
	http_engine_stats(c.eng, &st);
	assert_int_equal(st.cancelled, 2);
	uv_close((uv_handle_t *)&tm, NULL);
	ctx_close(&c);
}

static void on_done_restart(struct http_request *r, int status, const struct http_response *resp)
{
	struct treq *t = (struct treq *)r;

	on_done(r, status, resp);
	/* starting during close is refused (later pass, S3G_ESHUTDOWN) */
	if (t->cancel_other == NULL && status == S3G_ECANCELLED) {
		t->cancel_other = r;             /* only once */
		t->done = 0;
		t->c->done--;
		http_start(t->c->eng, r);
	}
}

static void close_timer(uv_timer_t *t)
{
	struct tctx *c = t->data;

	http_engine_close(c->eng, on_closed, c);
}

static void test_close_in_flight(void **state)
{
	enum { N = 12 };
	struct http_engine_opts o;
	struct tctx c;
	struct treq t[N];
	uv_timer_t tm;

	http_engine_opts_default(&o);
	o.max_in_flight = 8;
	ctx_init(&c, &o);
	for (int i = 0; i < N; i++) {
		treq_init(&t[i], &c, "GET", "/slow?ms=10000");
		if (i == 0)
			t[i].r.done = on_done_restart;
		http_start(c.eng, &t[i].r);
	}
	uv_timer_init(&c.loop, &tm);
	tm.data = &c;
	uv_timer_start(&tm, close_timer, 150, 0);
	run_until(&c, &c.closed, 1);
	assert_int_equal(c.done, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(t[i].status, i == 0 ? S3G_ESHUTDOWN : S3G_ECANCELLED);
	http_engine_free(c.eng);
	uv_close((uv_handle_t *)&tm, NULL);
	uv_close((uv_handle_t *)&c.guard, NULL);
	uv_run(&c.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&c.loop), 0);
}

static void test_close_idle_and_unused(void **state)
{
	struct tctx c;

	/* closing an engine that never ran a request */
	ctx_init(&c, NULL);
	ctx_close(&c);
}

static void test_tls_verification(void **state)
{
	struct http_engine_opts o;
	struct tctx c, n;
	struct treq a, b, d;

	http_engine_opts_default(&o);
	o.ca_file = tls.cafile;
	ctx_init(&c, &o);
	treq_init(&a, &c, "GET", "/ok");
	snprintf(a.url, sizeof(a.url), "https://localhost:%d/ok", tls.port);
	treq_init(&b, &c, "GET", "/ok");
	snprintf(b.url, sizeof(b.url), "https://127.0.0.1:%d/ok", tls.port);
	http_start(c.eng, &a.r);
	http_start(c.eng, &b.r);
	run_until(&c, &c.done, 2);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.code, 200);
	assert_string_equal(a.rid, "REQ123");
	assert_int_equal(b.code, 200);
	ctx_close(&c);

	/* the same server without its CA: the handshake must fail */
	ctx_init(&n, NULL);
	treq_init(&d, &n, "GET", "/ok");
	snprintf(d.url, sizeof(d.url), "https://localhost:%d/ok", tls.port);
	http_start(n.eng, &d.r);
	run_until(&n, &n.done, 1);
	assert_int_equal(d.status, S3G_ETRANSPORT);
	assert_int_equal(d.tcode, CURLE_PEER_FAILED_VERIFICATION);
	ctx_close(&n);

	/* AWS_CA_BUNDLE is the fallback CA file */
	setenv("AWS_CA_BUNDLE", tls.cafile, 1);
	ctx_init(&n, NULL);
	unsetenv("AWS_CA_BUNDLE");
	treq_init(&d, &n, "GET", "/ok");
	snprintf(d.url, sizeof(d.url), "https://localhost:%d/ok", tls.port);
	http_start(n.eng, &d.r);
	run_until(&n, &n.done, 1);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.code, 200);
	ctx_close(&n);
}

/* ---- proxies from the environment (read once per engine, curl's rules) ---- */

static const char *const proxy_vars[] = {
	"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
};

static void proxy_env_clear(void)
{
	for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++)
		unsetenv(proxy_vars[i]);
}

/* One GET of url on a fresh engine made under the current environment. */
static void proxy_get(const char *url, const char *ca_file, struct treq *t)
{
	struct http_engine_opts o;
	struct tctx c;

	http_engine_opts_default(&o);
	o.ca_file = ca_file;
	ctx_init(&c, &o);
	treq_init(t, &c, "GET", "/");
	snprintf(t->url, sizeof(t->url), "%s", url);
	http_start(c.eng, &t->r);
	run_until(&c, &c.done, 1);
	ctx_close(&c);
}

static void test_proxy_env(void **state)
{
	char proxy[64], direct[128], via[] = "http://proxied.invalid/echo", tls_url[128];
	static const char dead[] = "http://127.0.0.1:1";     /* nothing listens: refused */
	struct treq t;

	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", plain.port);
	snprintf(direct, sizeof(direct), "http://127.0.0.1:%d/echo", plain.port);
	snprintf(tls_url, sizeof(tls_url), "https://localhost:%d/ok", tls.port);

	/* http_proxy: the fixture answers as the proxy (absolute-form request) */
	proxy_env_clear();
	setenv("http_proxy", proxy, 1);
	proxy_get(via, NULL, &t);
	assert_int_equal(t.status, 0);
	assert_int_equal(t.code, 200);
	assert_non_null(strstr(t.body, "Host: proxied.invalid\n"));

	/* an empty variable counts as unset: all_proxy is next */
	setenv("http_proxy", "", 1);
	setenv("all_proxy", proxy, 1);
	proxy_get(via, NULL, &t);
	assert_int_equal(t.code, 200);
	assert_non_null(strstr(t.body, "Host: proxied.invalid\n"));

	/* HTTP_PROXY (upper case) is never read for http:// */
	proxy_env_clear();
	setenv("HTTP_PROXY", dead, 1);
	proxy_get(direct, NULL, &t);
	assert_int_equal(t.status, 0);
	assert_int_equal(t.code, 200);

	/* NO_PROXY when no_proxy is empty */
	proxy_env_clear();
	setenv("http_proxy", dead, 1);
	setenv("no_proxy", "", 1);
	setenv("NO_PROXY", "127.0.0.1", 1);
	proxy_get(direct, NULL, &t);
	assert_int_equal(t.status, 0);
	assert_int_equal(t.code, 200);
	unsetenv("NO_PROXY");
	proxy_get(direct, NULL, &t);
	assert_int_equal(t.status, S3G_ETRANSPORT);
	assert_int_equal(t.tcode, CURLE_COULDNT_CONNECT);

	/* https:// reads HTTPS_PROXY (upper case too), not http_proxy */
	proxy_env_clear();
	setenv("http_proxy", proxy, 1);
	proxy_get(tls_url, tls.cafile, &t);
	assert_int_equal(t.status, 0);
	assert_int_equal(t.code, 200);
	setenv("HTTPS_PROXY", dead, 1);
	proxy_get(tls_url, tls.cafile, &t);
	assert_int_equal(t.status, S3G_ETRANSPORT);
	assert_int_equal(t.tcode, CURLE_COULDNT_CONNECT);
	setenv("no_proxy", "localhost", 1);
	proxy_get(tls_url, tls.cafile, &t);
	assert_int_equal(t.status, 0);
	assert_int_equal(t.code, 200);
	proxy_env_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_methods_headers_async),
		cmocka_unit_test(test_cap_and_reuse),
		cmocka_unit_test(test_many_64),
		cmocka_unit_test(test_path_verbatim),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_invalid_async),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_close_in_flight),
		cmocka_unit_test(test_close_idle_and_unused),
		cmocka_unit_test(test_tls_verification),
		cmocka_unit_test(test_proxy_env),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
