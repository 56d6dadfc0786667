/* client_fixture.h — shared helpers of the tests/client loop tests: start the
 * S3 Control fake (node tests/fakes/s3control/server.js --port 0 --port-file F)
 * or another fixture process, talk to its control API with libcurl easy,
 * run a libuv loop until a counter reaches a value (with a guard timer).
 * Header-only (static functions); include once per test.
 */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "aws/client.h"
#include "aws/credprov.h"
#include "aws/http.h"
#include "core/buf.h"
#include "core/xalloc.h"

extern char **environ;

#define FX_ACCOUNT "111122223333"
#define FX_REGION  "us-east-1"
#define FX_AKID    "AKIDEXAMPLE"
#define FX_SECRET  "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

struct fx_proc {
	pid_t pid;
	int out_fd;                  /* its stdout */
	char line[4096];             /* first stdout line */
	int port;
	char url[128];               /* http://127.0.0.1:PORT */
	char dir[64];
};

static inline const char *fx_src(void)
{
	const char *s = getenv("S3G_SOURCE_DIR");

	return s ? s : ".";
}

/* Spawn argv (stdin /dev/null, stdout a pipe) and read its first stdout line. */
/* The string value of "key" in a fixture's one-line JSON (json.dumps style:
 * `"key": "value"`, no escapes in value). */
static inline void fx_json_str(const char *js, const char *key, char *out, size_t n)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = strstr(js, pat);
	assert_non_null(p);
	p += strlen(pat);
	q = strchr(p, '"');
	assert_non_null(q);
	snprintf(out, n, "%.*s", (int)(q - p), p);
}

static inline int fx_spawn(struct fx_proc *p, char *const argv[], const char *cwd, int timeout_ms)
{
	posix_spawn_file_actions_t fa;
	int out[2];
	size_t n = 0;
	char old[1024];

	memset(p, 0, sizeof(*p));
	if (pipe(out) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	if (!getcwd(old, sizeof(old)))
		return -1;
	if (cwd && chdir(cwd) < 0)
		return -1;
	if (posix_spawnp(&p->pid, argv[0], &fa, NULL, argv, environ) != 0) {
		if (chdir(old) < 0)
			return -1;
		return -1;
	}
	if (chdir(old) < 0)
		return -1;
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	p->out_fd = out[0];
	while (n < sizeof(p->line) - 1) {
		struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
		ssize_t k;

		if (poll(&pfd, 1, timeout_ms) != 1)
			return -1;
		k = read(p->out_fd, p->line + n, 1);
		if (k <= 0)
			return -1;
		if (p->line[n] == '\n') {
			p->line[n] = 0;
			return 0;
		}
		n++;
	}
	return -1;
}

static inline void fx_stop(struct fx_proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
	if (p->out_fd > 0) {
		close(p->out_fd);
		p->out_fd = 0;
	}
}

/* The S3 Control fake; extra args (NULL-terminated) appended. */
static inline int fx_fake_start(struct fx_proc *p, char **extra)
{
	char dir[1024], script[1100], portfile[128];
	char *argv[32];
	int n = 0;
	const char *pp;

	snprintf(dir, sizeof(dir), "%s/tests/fakes/s3control", fx_src());
	snprintf(script, sizeof(script), "%s/server.js", dir);
	snprintf(portfile, sizeof(portfile), "/tmp/s3g-client-fake-%d-%ld", (int)getpid(), (long)random());
	argv[n++] = "node";
	argv[n++] = script;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (fx_spawn(p, argv, dir, 30000) < 0)
		return -1;
	unlink(portfile);
	pp = strstr(p->line, "\"port\":");
	if (!pp)
		return -1;
	p->port = atoi(pp + 7);
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
	return p->port > 0 ? 0 : -1;
}

static inline size_t fx_write(char *d, size_t s, size_t n, void *u)
{
	struct buf *b = u;

	if (buf_append(b, d, s * n) < 0)
		return 0;
	return s * n;
}

/* POST/GET the fake's control API; the answer (JSON text) into *ret (x_free). */
static inline int fx_control(const struct fx_proc *p, const char *method, const char *path, const char *json, char **ret)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct buf b;
	char url[512];
	long code = 0;
	CURLcode cr;

	buf_init(&b, 64u * 1024 * 1024);
	snprintf(url, sizeof(url), "%s%s", p->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (json) {
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fx_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (ret)
		*ret = buf_steal(&b);
	else
		buf_free(&b);
	return cr == CURLE_OK && code == 200 ? 0 : -1;
}

static inline void fx_config(const struct fx_proc *p, const char *json)
{
	assert_int_equal(fx_control(p, "POST", "/__fake/config", json, NULL), 0);
}

/* ---- loop ---- */

struct fx_loop {
	uv_loop_t loop;
	uv_timer_t guard;
	uv_timer_t tick;             /* wakes uv_run(ONCE) so the flag is re-checked */
	struct http_engine *http;
	int closed;
};

static inline void fx_guard_fired(uv_timer_t *t)
{
	(void)t;
	fail_msg("test step did not finish in time");
}

static inline void fx_loop_init(struct fx_loop *l)
{
	struct http_engine_opts o;

	memset(l, 0, sizeof(*l));
	assert_int_equal(uv_loop_init(&l->loop), 0);
	uv_timer_init(&l->loop, &l->guard);
	uv_timer_init(&l->loop, &l->tick);
	http_engine_opts_default(&o);
	o.max_in_flight = 128;
	assert_int_equal(http_engine_new(&l->loop, &o, &l->http), 0);
}

static inline void fx_tick(uv_timer_t *t)
{
	(void)t;
}

/* A completion may be delivered from a timer phase, after which
 * uv_run(UV_RUN_ONCE) would block in poll: the tick bounds that wait. */
static inline void fx_run_until(struct fx_loop *l, const int *flag, int want, uint64_t timeout_ms)
{
	uv_timer_start(&l->guard, fx_guard_fired, timeout_ms, 0);
	uv_timer_start(&l->tick, fx_tick, 1, 1);
	while (*flag < want)
		uv_run(&l->loop, UV_RUN_ONCE);
	uv_timer_stop(&l->tick);
	uv_timer_stop(&l->guard);
}

static inline void fx_count_close(struct http_engine *e, void *u)
{
	(void)e;
	(*(int *)u)++;
}

static inline void fx_client_closed(struct aws_client *c, void *u)
{
	(void)c;
	(*(int *)u)++;
}

static inline void fx_prov_closed(struct credprov *p, void *u)
{
	(void)p;
	(*(int *)u)++;
}

static inline void fx_loop_done(struct fx_loop *l, struct aws_client *cl, struct credprov *prov)
{
	int n = 0, want = 1;

	if (cl) {
		aws_client_close(cl, fx_client_closed, &n);
		fx_run_until(l, &n, 1, 30000);
		aws_client_free(cl);
	}
	n = 0;
	if (prov) {
		credprov_close(prov, fx_prov_closed, &n);
		fx_run_until(l, &n, 1, 30000);
		credprov_free(prov);
	}
	n = 0;
	http_engine_close(l->http, fx_count_close, &n);
	fx_run_until(l, &n, want, 30000);
	http_engine_free(l->http);
	uv_close((uv_handle_t *)&l->guard, NULL);
	uv_close((uv_handle_t *)&l->tick, NULL);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&l->loop), 0);
}

static inline void fx_env_init(struct credprov_env *env, struct fx_loop *l)
{
	memset(env, 0, sizeof(*env));
	env->loop = &l->loop;
	env->http = l->http;
	env->region = FX_REGION;
}

/* A client of the fake with static keys. */
static inline struct aws_client *fx_client(struct fx_loop *l, const struct fx_proc *fake, struct credprov *prov,
				    struct aws_client_opts *o_in)
{
	struct aws_client_opts o;
	struct aws_client *cl = NULL;

	if (o_in)
		o = *o_in;
	else
		aws_client_opts_default(&o);
	o.http = l->http;
	o.creds = prov;
	o.region = FX_REGION;
	o.account_id = FX_ACCOUNT;
	o.endpoints.s3control_url = fake->url;
	assert_int_equal(aws_client_new(&l->loop, &o, &cl), 0);
	return cl;
}
