/* credprov.c — credential providers: cache, single-flight refresh, sources. */
#include "aws/credprov.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/http.h"
#include "aws/profile.h"
#include "aws/shapes.h"
#include "aws/sts.h"
#include "core/buf.h"
#include "core/isotime.h"
#include "core/xalloc.h"

#define VALID_MARGIN_MS     10000      /* stop using credentials this long before they expire */
#define DEFAULT_BEFORE_MS   (5 * 60 * 1000)
#define DEFAULT_TIMEOUT_MS  5000
#define FAIL_RETRY_MS       30000      /* background refresh failed: try again after */
#define TOKEN_FILE_MAX      (64u * 1024)
#define REASON_MAX          512
#define IMDS_TOKEN_TTL      "21600"
#define IMDS_TOKEN_VALID_MS (21595LL * 1000)

enum fetch_stage {
	STAGE_NONE,
	STAGE_IMDS_TOKEN,
	STAGE_IMDS_ROLE,
	STAGE_IMDS_CREDS,
	STAGE_CONTAINER,
};

struct credprov {
	enum credprov_kind kind;
	uv_loop_t *loop;
	struct http_engine *http;
	char *region;
	struct endpoint_cfg ecfg;
	char *sts_url;
	credprov_clock_cb clock;
	void *clock_user;
	retry_rand_cb rand;
	void *rand_user;
	uint64_t prng;
	int64_t refresh_before_ms;
	uint64_t timeout_ms;

	struct aws_creds cur;            /* cached; valid when have */
	int have;
	uint64_t gen;
	int fetching;
	int last_status;                 /* of the last finished fetch */
	char reason[REASON_MAX];
	struct credprov_waiter *waiters;
	uv_timer_t refresh;              /* background refresh */
	int64_t refresh_at;              /* wall clock (injected) it is due; 0 = not armed */
	uv_timer_t kick;                 /* deliver to waiters on a later pass */
	int open_handles;
	int closing;
	credprov_close_cb close_cb;
	void *close_user;
	struct credprov_stats stats;

	/* Sources. */
	char *akid, *secret, *token;     /* static */
	char *token_file;                /* web identity */
	char *role_arn, *session_name, *external_id, *source_identity;
	unsigned duration_seconds;
	char *command;                   /* process */
	struct credprov *source;         /* assume role */
	struct aws_client *sts;          /* assume role, web identity */
	char *web_token;                 /* web identity token of the running fetch */

	/* process */
	uv_process_t proc;
	uv_pipe_t out_pipe, err_pipe;
	struct buf proc_out, proc_err;
	int proc_pending;                /* handles of the running process not yet closed */
	int64_t proc_exit;
	int proc_exited;
	uv_timer_t proc_timer;

	/* container / IMDS */
	struct http_request req;
	enum fetch_stage stage;
	char *url;
	char *url2;
	const char *lines[4];
	char *line_store[4];
	char *imds_base;
	char *imds_token;
	int64_t imds_token_exp;
	char *imds_role;
	int imds_v1;
	int imds_retoken;                /* a 401 already made this fetch get a new token */
};

static const char *const kind_names[CREDPROV_KIND_MAX] = {
	[CREDPROV_STATIC] = "static",
	[CREDPROV_ENVIRONMENT] = "environment",
	[CREDPROV_WEB_IDENTITY] = "web-identity",
	[CREDPROV_PROCESS] = "process",
	[CREDPROV_CONTAINER] = "container",
	[CREDPROV_IMDS] = "imds",
	[CREDPROV_ASSUME_ROLE] = "assume-role",
};

const char *credprov_kind_name(enum credprov_kind k)
{
	return (unsigned)k < CREDPROV_KIND_MAX ? kind_names[k] : "?";
}

static int64_t now_ms(const struct credprov *p)
{
	return p->clock(p->clock_user);
}

static const char *penv(const struct credprov *p, const char *name)
{
	const char *v = p->ecfg.getenv ? p->ecfg.getenv(name, p->ecfg.getenv_user) : NULL;

	return v && v[0] ? v : NULL;
}

static void refresh_fired(uv_timer_t *t);
static void kick_fired(uv_timer_t *t);
static void close_handles(struct credprov *p);
static void fetch_assume_role(struct credprov *p);
static void fetch_web_identity(struct credprov *p);
static void fetch_process(struct credprov *p);
static void fetch_container(struct credprov *p);
static void fetch_imds(struct credprov *p);
static void prov_discard(struct credprov *p);
static int fetch_busy(const struct credprov *p);
static void fetch_start(struct credprov *p);

static struct credprov *prov_alloc(const struct credprov_env *env, enum credprov_kind kind)
{
	struct credprov *p = x_calloc(1, sizeof(*p));

	p->kind = kind;
	p->loop = env->loop;
	p->http = env->http;
	p->region = x_strdup(env->region && env->region[0] ? env->region : "us-east-1");
	p->ecfg = env->endpoints;
	if (!p->ecfg.getenv)
		p->ecfg.getenv = endpoint_getenv_process;
	p->sts_url = env->endpoints.sts_url ? x_strdup(env->endpoints.sts_url) : NULL;
	p->ecfg.sts_url = p->sts_url;
	p->ecfg.s3control_url = NULL;
	p->ecfg.s3_url = NULL;
	p->clock = env->clock ? env->clock : aws_wall_clock_ms;
	p->clock_user = env->clock ? env->clock_user : NULL;
	p->prng = retry_prng_seed((uint64_t)aws_wall_clock_ms(NULL), (uint64_t)(uintptr_t)p);
	p->rand = env->rand ? env->rand : retry_prng_next;
	p->rand_user = env->rand ? env->rand_user : &p->prng;
	p->refresh_before_ms = env->refresh_before_ms > 0 ? env->refresh_before_ms : DEFAULT_BEFORE_MS;
	p->timeout_ms = env->timeout_ms ? env->timeout_ms : DEFAULT_TIMEOUT_MS;
	uv_timer_init(p->loop, &p->refresh);
	uv_timer_init(p->loop, &p->kick);
	p->refresh.data = p;
	p->kick.data = p;
	p->open_handles = 2;
	buf_init(&p->proc_out, CREDS_JSON_MAX);
	buf_init(&p->proc_err, 4096);
	return p;
}

enum credprov_kind credprov_kind(const struct credprov *p)
{
	return p->kind;
}

uint64_t credprov_generation(const struct credprov *p)
{
	return p->gen;
}

void credprov_stats(const struct credprov *p, struct credprov_stats *ret)
{
	*ret = p->stats;
	ret->expiration_ms = p->have ? p->cur.expiration_ms : 0;
	ret->refresh_at_ms = p->refresh_at;
}

static int creds_valid(const struct credprov *p)
{
	if (!p->have)
		return 0;
	return p->cur.expiration_ms == 0 || now_ms(p) < p->cur.expiration_ms - VALID_MARGIN_MS;
}

const struct aws_creds *credprov_peek(struct credprov *p)
{
	return creds_valid(p) ? &p->cur : NULL;
}

/* ---- waiters ---------------------------------------------------------------- */

static void waiter_unlink(struct credprov_waiter *w)
{
	struct credprov *p = w->p_;

	if (!p)
		return;
	if (w->prev_)
		w->prev_->next_ = w->next_;
	else
		p->waiters = w->next_;
	if (w->next_)
		w->next_->prev_ = w->prev_;
	w->next_ = w->prev_ = NULL;
	w->p_ = NULL;
}

static void kick_soon(struct credprov *p)
{
	if (p->closing != 2)
		uv_timer_start(&p->kick, kick_fired, 0, 0);
}

void credprov_get(struct credprov *p, struct credprov_waiter *w, credprov_cb cb, void *user)
{
	w->cb_ = cb;
	w->user_ = user;
	w->p_ = p;
	w->prev_ = NULL;
	w->next_ = p->waiters;
	if (p->waiters)
		p->waiters->prev_ = w;
	p->waiters = w;
	if (p->closing) {
		p->last_status = S3G_ECANCELLED;
		kick_soon(p);
		return;
	}
	if (creds_valid(p)) {
		kick_soon(p);
		return;
	}
	if (!p->fetching)
		fetch_start(p);
}

void credprov_cancel(struct credprov_waiter *w)
{
	waiter_unlink(w);
}

/* Deliver to every waiter: the credentials, or the last failure when no
 * fetch is running. Waiters added by a callback are served next pass. */
static void kick_fired(uv_timer_t *t)
{
	struct credprov *p = t->data;
	struct credprov_waiter *list, *w;
	int ok = creds_valid(p);

	if (!ok && p->fetching && !p->closing)
		return;
	if (p->closing)
		ok = 0;
	list = p->waiters;
	p->waiters = NULL;
	for (w = list; w; w = w->next_)
		w->p_ = NULL;
	while ((w = list)) {
		list = w->next_;
		if (list)
			list->prev_ = NULL;
		w->next_ = w->prev_ = NULL;
		/* A callback may cancel a later waiter of this batch: it is no
		 * longer linked to p (p_ NULL), so re-check by walking only what
		 * is left; credprov_cancel on it is a no-op. */
		if (p->closing)
			w->cb_(S3G_ECANCELLED, NULL, "credential provider closed", w->user_);
		else if (ok)
			w->cb_(0, &p->cur, "", w->user_);
		else
			w->cb_(p->last_status < 0 ? p->last_status : S3G_ECREDS, NULL, p->reason, w->user_);
	}
	if (p->closing == 1 && !fetch_busy(p))
		close_handles(p);
}

/* ---- fetch completion and refresh ------------------------------------------ */

static void schedule_refresh(struct credprov *p)
{
	int64_t now = now_ms(p), exp = p->cur.expiration_ms, at, delay;
	double r;

	if (p->closing || !p->have || exp == 0) {
		uv_timer_stop(&p->refresh);
		p->refresh_at = 0;
		return;
	}
	r = p->rand(p->rand_user);
	if (!(r >= 0.0 && r < 1.0))
		r = 0.0;
	at = exp - p->refresh_before_ms - (int64_t)(r * (double)(p->refresh_before_ms / 4));
	delay = at - now;
	if (delay < 1000) {
		/* Short-lived credentials: refresh half-way to the safety margin. */
		delay = (exp - VALID_MARGIN_MS - now) / 2;
		if (delay < 200)
			delay = 200;
	}
	p->refresh_at = now + delay;
	uv_timer_start(&p->refresh, refresh_fired, (uint64_t)delay, 0);
}

static void fetch_done(struct credprov *p, int status, struct aws_creds *creds, const char *reason)
{
	p->fetching = 0;
	p->stage = STAGE_NONE;
	p->last_status = status;
	if (status == 0) {
		aws_creds_clear(&p->cur);
		p->cur = *creds;
		memset(creds, 0, sizeof(*creds));
		p->have = 1;
		p->gen++;
		p->reason[0] = 0;
		schedule_refresh(p);
	} else {
		p->stats.failures++;
		snprintf(p->reason, sizeof(p->reason), "%s credentials: %s", kind_names[p->kind],
			 reason && reason[0] ? reason : err_str(status));
		if (!p->closing && p->have) {
			p->refresh_at = now_ms(p) + FAIL_RETRY_MS;
			uv_timer_start(&p->refresh, refresh_fired, FAIL_RETRY_MS, 0);
		}
	}
	if (p->waiters || p->closing == 1)
		uv_timer_start(&p->kick, kick_fired, 0, 0);
}

static void refresh_fired(uv_timer_t *t)
{
	struct credprov *p = t->data;

	p->refresh_at = 0;
	if (!p->fetching && !p->closing)
		fetch_start(p);
}

void credprov_invalidate(struct credprov *p, uint64_t gen)
{
	if (p->closing || gen != p->gen || !p->have || p->kind == CREDPROV_STATIC)
		return;
	aws_creds_clear(&p->cur);
	p->have = 0;
	if (!p->fetching)
		fetch_start(p);
}

/* ---- sources ---------------------------------------------------------------- */

static void fetch_static(struct credprov *p)
{
	struct aws_creds c = {0};
	int r = aws_creds_set(&c, p->akid, p->secret, p->token, 0);

	fetch_done(p, r, &c, r < 0 ? "invalid static keys" : NULL);
	aws_creds_clear(&c);
}

static const char *env_cb(const char *name, void *user)
{
	return penv(user, name);
}

static void fetch_env(struct credprov *p)
{
	struct aws_creds c = {0};
	const char *why = NULL;
	int r = creds_from_env(env_cb, p, &c, &why);

	if (r == S3G_ENOTFOUND)
		why = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set";
	fetch_done(p, r < 0 ? S3G_ECREDS : 0, &c, why);
	aws_creds_clear(&c);
}


/* ---- STS-backed sources --------------------------------------------------- */

static void sts_creds_done(int status, const struct aws_result *res, struct shapes_sts_creds *sc, void *user)
{
	struct credprov *p = user;
	struct aws_creds c = {0};
	int r;

	if (p->web_token) {
		memset(p->web_token, 0, strlen(p->web_token));
		X_FREE(p->web_token);
	}
	if (status < 0) {
		fetch_done(p, status == S3G_ECANCELLED ? status : S3G_ECREDS, NULL, res->error);
		return;
	}
	r = aws_creds_set(&c, sc->access_key_id, sc->secret_access_key, sc->session_token, sc->expiration_ms);
	fetch_done(p, r, &c, r < 0 ? "STS returned unusable credentials" : NULL);
	aws_creds_clear(&c);
}

static int make_sts_client(struct credprov *p, struct credprov *creds)
{
	struct aws_client_opts o;

	aws_client_opts_default(&o);
	o.http = p->http;
	o.creds = creds;
	o.region = p->region;
	o.endpoints = p->ecfg;
	o.timeout_ms = p->timeout_ms;
	return aws_client_new(p->loop, &o, &p->sts);
}

static const char *session_name(struct credprov *p, char *tmp, size_t n)
{
	if (p->session_name)
		return p->session_name;
	snprintf(tmp, n, "s3grantd-%lld", (long long)(now_ms(p) / 1000));
	return tmp;
}

static void fetch_assume_role(struct credprov *p)
{
	char tmp[64];
	struct shapes_assume_role_req req = {
		.role_arn = p->role_arn, .session_name = session_name(p, tmp, sizeof(tmp)),
		.external_id = p->external_id, .duration_seconds = p->duration_seconds,
		.source_identity = p->source_identity,
	};

	sts_assume_role(p->sts, &req, sts_creds_done, p);
}

/* Read a small file whole (token files); NUL-terminated, trailing space trimmed. */
static int read_small_file(const char *path, size_t max, char **ret, char *why, size_t wl)
{
	struct buf b;
	char chunk[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
	ssize_t k;
	size_t n;

	if (fd < 0) {
		snprintf(why, wl, "cannot open %s: %s", path, strerror(errno));
		return S3G_ECREDS;
	}
	buf_init(&b, max);
	while ((k = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&b, chunk, (size_t)k) < 0) {
			snprintf(why, wl, "%s is larger than %zu bytes", path, max);
			r = S3G_ECREDS;
			break;
		}
	}
	if (k < 0 && r == 0) {
		snprintf(why, wl, "cannot read %s: %s", path, strerror(errno));
		r = S3G_ECREDS;
	}
	close(fd);
	if (r < 0) {
		buf_free(&b);
		return r;
	}
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' '))
		b.len--;
	if (b.len == 0) {
		buf_free(&b);
		snprintf(why, wl, "%s is empty", path);
		return S3G_ECREDS;
	}
	n = b.len;
	*ret = buf_steal(&b);
	(*ret)[n] = 0;   /* the trim above shortened len, not the string */
	return 0;
}

static void fetch_web_identity(struct credprov *p)
{
	char tmp[64], why[300];
	struct shapes_web_identity_req req = {0};
	char *tok = NULL;
	int r = read_small_file(p->token_file, TOKEN_FILE_MAX, &tok, why, sizeof(why));

	if (r < 0) {
		fetch_done(p, r, NULL, why);
		return;
	}
	p->web_token = tok;
	req.role_arn = p->role_arn;
	req.session_name = session_name(p, tmp, sizeof(tmp));
	req.token = tok;
	req.duration_seconds = p->duration_seconds;
	sts_assume_role_web_identity(p->sts, &req, sts_creds_done, p);
}

/* ---- credential_process ---------------------------------------------------- */

#define PROC_MAX_ARGS 64

/* Split like a POSIX shell would for words: blanks separate, '...' literal,
 * "..." with \" \\ escapes, backslash escapes outside quotes. */
static int split_command(const char *cmd, char ***ret_argv, char **ret_store)
{
	size_t n = strlen(cmd);
	char *store = x_malloc(n + 1), *w = store;
	char **argv = x_calloc(PROC_MAX_ARGS + 1, sizeof(char *));
	size_t argc = 0;
	const char *s = cmd;

	while (*s) {
		int in_word = 0;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		if (argc >= PROC_MAX_ARGS)
			goto bad;
		argv[argc++] = w;
		while (*s && !(*s == ' ' || *s == '\t' || *s == '\n')) {
			in_word = 1;
			if (*s == '\'') {
				s++;
				while (*s && *s != '\'')
					*w++ = *s++;
				if (*s != '\'')
					goto bad;
				s++;
			} else if (*s == '"') {
				s++;
				while (*s && *s != '"') {
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					*w++ = *s++;
				}
				if (*s != '"')
					goto bad;
				s++;
			} else if (*s == '\\' && s[1]) {
				s++;
				*w++ = *s++;
			} else {
				*w++ = *s++;
			}
		}
		(void)in_word;
		*w++ = 0;
	}
	if (argc == 0)
		goto bad;
	*ret_argv = argv;
	*ret_store = store;
	return 0;
bad:
	x_free(argv);
	x_free(store);
	return S3G_ECONFIG;
}

static void proc_handle_closed(uv_handle_t *h);

static void proc_finish_check(struct credprov *p)
{
	struct aws_creds c = {0};
	const char *why = NULL;
	char msg[REASON_MAX];
	int r;

	if (p->proc_pending > 0)
		return;
	uv_timer_stop(&p->proc_timer);
	if (p->closing) {
		fetch_done(p, S3G_ECANCELLED, NULL, "closed");
		return;
	}
	if (!p->proc_exited || p->proc_exit != 0) {
		size_t el = p->proc_err.len;

		while (el > 0 && (p->proc_err.data[el - 1] == '\n' || p->proc_err.data[el - 1] == '\r'))
			el--;
		if (p->proc_exit == -2)
			snprintf(msg, sizeof(msg), "credential_process printed more than %u bytes", CREDS_JSON_MAX);
		else if (p->proc_exit == -3)
			snprintf(msg, sizeof(msg), "credential_process timed out");
		else if (p->proc_exit == -4)
			snprintf(msg, sizeof(msg), "credential_process: cannot start the command (not found or not "
				 "executable)");
		else
			snprintf(msg, sizeof(msg), "credential_process exited with %lld%s%.*s", (long long)p->proc_exit,
				 el ? ": " : "", (int)(el > 200 ? 200 : el), el ? p->proc_err.data : "");
		fetch_done(p, S3G_ECREDS, NULL, msg);
		return;
	}
	r = creds_parse_json(CREDS_JSON_PROCESS, p->proc_out.data ? p->proc_out.data : "", p->proc_out.len, &c, &why);
	if (r < 0)
		snprintf(msg, sizeof(msg), "credential_process output: %s", why ? why : "not valid JSON");
	fetch_done(p, r < 0 ? S3G_ECREDS : 0, &c, r < 0 ? msg : NULL);
	aws_creds_clear(&c);
}

static void proc_handle_closed(uv_handle_t *h)
{
	struct credprov *p = h->data;

	p->proc_pending--;
	proc_finish_check(p);
}

static void proc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char slab[16384];

	(void)h;
	(void)hint;
	b->base = slab;
	b->len = sizeof(slab);
}

static void proc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct credprov *p = s->data;
	struct buf *dst = s == (uv_stream_t *)&p->out_pipe ? &p->proc_out : &p->proc_err;

	if (n > 0) {
		if (buf_append(dst, b->base, (size_t)n) < 0) {
			if (dst == &p->proc_out) {
				p->proc_exit = -2;
				if (!p->proc_exited)
					uv_process_kill(&p->proc, SIGKILL);
				uv_read_stop(s);
				uv_close((uv_handle_t *)s, proc_handle_closed);
			}
			/* stderr beyond its bound is dropped */
		}
		return;
	}
	if (n < 0) {
		uv_read_stop(s);
		if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, proc_handle_closed);
	}
}

static void proc_exited(uv_process_t *h, int64_t status, int sig)
{
	struct credprov *p = h->data;

	p->proc_exited = 1;
	if (p->proc_exit == 0)
		p->proc_exit = sig ? -(int64_t)sig - 1000 : status;
	uv_close((uv_handle_t *)h, proc_handle_closed);
}

static void proc_timeout(uv_timer_t *t)
{
	struct credprov *p = t->data;

	p->proc_exit = -3;
	if (!p->proc_exited)
		uv_process_kill(&p->proc, SIGKILL);
	/* A grandchild may hold the pipes open: stop waiting for them too. */
	if (!uv_is_closing((uv_handle_t *)&p->out_pipe))
		uv_close((uv_handle_t *)&p->out_pipe, proc_handle_closed);
	if (!uv_is_closing((uv_handle_t *)&p->err_pipe))
		uv_close((uv_handle_t *)&p->err_pipe, proc_handle_closed);
}

static void fetch_process(struct credprov *p)
{
	uv_process_options_t po = {0};
	uv_stdio_container_t io[3];
	char **argv = NULL, *store = NULL;
	int r;

	buf_reset(&p->proc_out);
	buf_reset(&p->proc_err);
	p->proc_exit = 0;
	p->proc_exited = 0;
	r = split_command(p->command, &argv, &store);
	if (r < 0) {
		fetch_done(p, S3G_ECONFIG, NULL, "credential_process: cannot split the command line");
		return;
	}
	uv_pipe_init(p->loop, &p->out_pipe, 0);
	uv_pipe_init(p->loop, &p->err_pipe, 0);
	p->out_pipe.data = p;
	p->err_pipe.data = p;
	p->proc.data = p;
	io[0].flags = UV_IGNORE;
	io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[1].data.stream = (uv_stream_t *)&p->out_pipe;
	io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[2].data.stream = (uv_stream_t *)&p->err_pipe;
	po.file = argv[0];
	po.args = argv;
	po.stdio = io;
	po.stdio_count = 3;
	po.exit_cb = proc_exited;
	r = uv_spawn(p->loop, &p->proc, &po);
	x_free(argv);
	x_free(store);
	p->proc_pending = 3;
	if (r < 0) {
		/* A failed uv_spawn still leaves the process handle initialized. */
		uv_close((uv_handle_t *)&p->proc, proc_handle_closed);
		uv_close((uv_handle_t *)&p->out_pipe, proc_handle_closed);
		uv_close((uv_handle_t *)&p->err_pipe, proc_handle_closed);
		p->proc_exited = 1;
		p->proc_exit = -4;   /* reported when the handles have closed */
		return;
	}
	uv_read_start((uv_stream_t *)&p->out_pipe, proc_alloc, proc_read);
	uv_read_start((uv_stream_t *)&p->err_pipe, proc_alloc, proc_read);
	uv_timer_start(&p->proc_timer, proc_timeout, p->timeout_ms, 0);
}

/* ---- container and IMDS (HTTP) --------------------------------------------- */

static void http_fetch(struct credprov *p, const char *method, const char *url, size_t nlines);

static void set_line(struct credprov *p, size_t i, const char *name, const char *v)
{
	x_free(p->line_store[i]);
	p->line_store[i] = x_asprintf("%s: %s", name, v);
	p->lines[i] = p->line_store[i];
}

static int host_allowed(const char *url)
{
	static const char *const ok[] = {
		"http://127.", "http://localhost:", "http://localhost/", "http://[::1]", "http://169.254.170.2:",
		"http://169.254.170.2/", "http://169.254.170.23:", "http://169.254.170.23/", "http://[fd00:ec2::23]",
	};

	if (strncasecmp(url, "https://", 8) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncasecmp(url, ok[i], strlen(ok[i])) == 0)
			return 1;
	return 0;
}

static void fetch_container(struct credprov *p)
{
	const char *rel = penv(p, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = penv(p, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tfile = penv(p, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tval = penv(p, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *tok = NULL, why[300];
	size_t nl = 0;

	X_FREE(p->url);
	if (rel)
		p->url = x_asprintf("http://169.254.170.2%s", rel);
	else if (full && host_allowed(full))
		p->url = x_strdup(full);
	else {
		fetch_done(p, S3G_ECREDS, NULL, full ? "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback/"
			   "ECS/EKS address" : "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI not set");
		return;
	}
	set_line(p, nl++, "Accept", "application/json");
	if (tfile) {
		if (read_small_file(tfile, 16384, &tok, why, sizeof(why)) < 0) {
			fetch_done(p, S3G_ECREDS, NULL, why);
			return;
		}
	} else if (tval) {
		tok = x_strdup(tval);
	}
	if (tok) {
		if (strpbrk(tok, "\r\n")) {
			x_free(tok);
			fetch_done(p, S3G_ECREDS, NULL, "the container authorization token contains CR or LF");
			return;
		}
		set_line(p, nl++, "Authorization", tok);
		x_free(tok);
	}
	p->stage = STAGE_CONTAINER;
	http_fetch(p, "GET", p->url, nl);
}

static void imds_step(struct credprov *p);

static void fetch_imds(struct credprov *p)
{
	const char *ep = penv(p, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = penv(p, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	const char *dis = penv(p, "AWS_EC2_METADATA_DISABLED");
	size_t n;

	if (dis && strcasecmp(dis, "true") == 0) {
		fetch_done(p, S3G_ECREDS, NULL, "IMDS disabled by AWS_EC2_METADATA_DISABLED");
		return;
	}
	X_FREE(p->imds_base);
	p->imds_base = x_strdup(ep ? ep : mode && strcasecmp(mode, "IPv6") == 0 ? "http://[fd00:ec2::254]" :
				"http://169.254.169.254");
	n = strlen(p->imds_base);
	while (n > 0 && p->imds_base[n - 1] == '/')
		p->imds_base[--n] = 0;
	p->imds_retoken = 0;
	if (p->imds_token && now_ms(p) < p->imds_token_exp) {
		p->stage = STAGE_IMDS_ROLE;
	} else {
		X_FREE(p->imds_token);
		p->stage = STAGE_IMDS_TOKEN;
	}
	imds_step(p);
}

static size_t imds_auth(struct credprov *p)
{
	if (!p->imds_token)
		return 0;
	set_line(p, 0, "X-aws-ec2-metadata-token", p->imds_token);
	return 1;
}

static void imds_step(struct credprov *p)
{
	X_FREE(p->url);
	switch (p->stage) {
	case STAGE_IMDS_TOKEN:
		p->url = x_asprintf("%s/latest/api/token", p->imds_base);
		set_line(p, 0, "X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL);
		http_fetch(p, "PUT", p->url, 1);
		break;
	case STAGE_IMDS_ROLE:
		p->url = x_asprintf("%s/latest/meta-data/iam/security-credentials/", p->imds_base);
		http_fetch(p, "GET", p->url, imds_auth(p));
		break;
	case STAGE_IMDS_CREDS:
		p->url = x_asprintf("%s/latest/meta-data/iam/security-credentials/%s", p->imds_base, p->imds_role);
		http_fetch(p, "GET", p->url, imds_auth(p));
		break;
	default:
		break;
	}
}

/* IMDS said 401 to a token we hold (it expired early, or the instance
 * metadata service restarted): get a new token and start over, once per fetch. */
static int imds_token_rejected(struct credprov *p, long code)
{
	if (code != 401 || !p->imds_token || p->imds_retoken)
		return 0;
	p->imds_retoken = 1;
	X_FREE(p->imds_token);
	p->stage = STAGE_IMDS_TOKEN;
	imds_step(p);
	return 1;
}

static void http_fetched(struct http_request *req, int status, const struct http_response *resp)
{
	struct credprov *p = req->user;
	struct aws_creds c = {0};
	const char *why = NULL;
	char msg[REASON_MAX];
	const char *body = resp->body->data ? resp->body->data : "";
	size_t len = resp->body->len;
	int r;

	if (p->closing) {
		fetch_done(p, S3G_ECANCELLED, NULL, "closed");
		return;
	}
	if (status < 0) {
		snprintf(msg, sizeof(msg), "%s: %s%s%s", p->url, err_str(status), resp->error[0] ? ": " : "",
			 resp->error);
		if (p->stage == STAGE_IMDS_TOKEN && status == S3G_ETIMEOUT)
			snprintf(msg, sizeof(msg), "no EC2 instance metadata service at %s (timeout)", p->imds_base);
		fetch_done(p, S3G_ECREDS, NULL, msg);
		return;
	}
	switch (p->stage) {
	case STAGE_IMDS_TOKEN:
		if (resp->code == 200 && len > 0 && len < 1024) {
			p->imds_token = x_malloc(len + 1);
			memcpy(p->imds_token, body, len);
			p->imds_token[len] = 0;
			p->imds_token_exp = now_ms(p) + IMDS_TOKEN_VALID_MS;
			p->imds_v1 = 0;
		} else if (resp->code == 403 || resp->code == 404 || resp->code == 405) {
			const char *v1 = penv(p, "AWS_EC2_METADATA_V1_DISABLED");

			if (v1 && strcasecmp(v1, "true") == 0) {
				fetch_done(p, S3G_ECREDS, NULL, "IMDSv2 unavailable and IMDSv1 disabled");
				return;
			}
			p->imds_v1 = 1;
		} else {
			snprintf(msg, sizeof(msg), "IMDS token request answered HTTP %ld", resp->code);
			fetch_done(p, S3G_ECREDS, NULL, msg);
			return;
		}
		p->stage = STAGE_IMDS_ROLE;
		imds_step(p);
		return;
	case STAGE_IMDS_ROLE: {
		size_t n = 0;

		if (imds_token_rejected(p, resp->code))
			return;
		while (n < len && body[n] != '\n' && body[n] != '\r')
			n++;
		if (resp->code != 200 || n == 0 || n > 128) {
			snprintf(msg, sizeof(msg), "IMDS has no instance role (HTTP %ld)", resp->code);
			fetch_done(p, S3G_ECREDS, NULL, msg);
			return;
		}
		X_FREE(p->imds_role);
		p->imds_role = x_malloc(n + 1);
		memcpy(p->imds_role, body, n);
		p->imds_role[n] = 0;
		p->stage = STAGE_IMDS_CREDS;
		imds_step(p);
		return;
	}
	case STAGE_IMDS_CREDS:
	case STAGE_CONTAINER:
		if (p->stage == STAGE_IMDS_CREDS && imds_token_rejected(p, resp->code))
			return;
		if (resp->code != 200) {
			snprintf(msg, sizeof(msg), "%s answered HTTP %ld", p->stage == STAGE_CONTAINER ?
				 "the container credentials endpoint" : "IMDS", resp->code);
			fetch_done(p, S3G_ECREDS, NULL, msg);
			return;
		}
		r = creds_parse_json(p->stage == STAGE_CONTAINER ? CREDS_JSON_CONTAINER : CREDS_JSON_IMDS, body, len,
				     &c, &why);
		if (r == 0 && p->stage == STAGE_IMDS_CREDS && c.expiration_ms &&
		    c.expiration_ms - now_ms(p) < p->refresh_before_ms) {
			/* Static stability (botocore): IMDS handed out credentials already in
			 * the refresh window; use them a while longer instead of failing. */
			c.expiration_ms = now_ms(p) + 15 * 60 * 1000 +
					  (int64_t)(p->rand(p->rand_user) * 8 * 60 * 1000) + 2 * 60 * 1000;
		}
		snprintf(msg, sizeof(msg), "bad document from %s: %s", p->stage == STAGE_CONTAINER ?
			 "the container endpoint" : "IMDS", why ? why : "unusable");
		fetch_done(p, r < 0 ? S3G_ECREDS : 0, &c, r < 0 ? msg : NULL);
		aws_creds_clear(&c);
		return;
	default:
		fetch_done(p, S3G_ECREDS, NULL, "internal state");
	}
}

static void http_fetch(struct credprov *p, const char *method, const char *url, size_t nlines)
{
	memset(&p->req, 0, sizeof(p->req));
	p->req.method = method;
	p->req.url = url;
	p->req.headers = p->lines;
	p->req.n_headers = nlines;
	p->req.timeout_ms = p->timeout_ms;
	p->req.max_response = CREDS_JSON_MAX;
	p->req.done = http_fetched;
	p->req.user = p;
	http_start(p->http, &p->req);
}

static void fetch_start(struct credprov *p)
{
	p->fetching = 1;
	p->stats.fetches++;
	switch (p->kind) {
	case CREDPROV_STATIC:
		fetch_static(p);
		break;
	case CREDPROV_ENVIRONMENT:
		fetch_env(p);
		break;
	case CREDPROV_ASSUME_ROLE:
		fetch_assume_role(p);
		break;
	case CREDPROV_WEB_IDENTITY:
		fetch_web_identity(p);
		break;
	case CREDPROV_PROCESS:
		fetch_process(p);
		break;
	case CREDPROV_CONTAINER:
		fetch_container(p);
		break;
	case CREDPROV_IMDS:
		fetch_imds(p);
		break;
	default:
		fetch_done(p, S3G_ECREDS, NULL, "source not supported");
		break;
	}
}

/* ---- constructors ------------------------------------------------------------ */

int credprov_new_static(const struct credprov_env *env, const char *akid, const char *secret,
			const char *token, struct credprov **ret)
{
	struct credprov *p;

	if (!env || !env->loop || !akid || !akid[0] || !secret || !secret[0])
		return S3G_EINVAL;
	p = prov_alloc(env, CREDPROV_STATIC);
	p->akid = x_strdup(akid);
	p->secret = x_strdup(secret);
	p->token = token && token[0] ? x_strdup(token) : NULL;
	*ret = p;
	return 0;
}

int credprov_new_env(const struct credprov_env *env, struct credprov **ret)
{
	if (!env || !env->loop)
		return S3G_EINVAL;
	*ret = prov_alloc(env, CREDPROV_ENVIRONMENT);
	return 0;
}


static int need_http(const struct credprov_env *env)
{
	return env && env->loop && env->http;
}

int credprov_new_web_identity(const struct credprov_env *env, const char *token_file, const char *role_arn,
			      const char *session_name, struct credprov **ret)
{
	struct credprov *p;
	int r;

	if (!need_http(env) || !token_file || !token_file[0] || !role_arn || !role_arn[0])
		return S3G_EINVAL;
	p = prov_alloc(env, CREDPROV_WEB_IDENTITY);
	p->token_file = x_strdup(token_file);
	p->role_arn = x_strdup(role_arn);
	p->session_name = session_name && session_name[0] ? x_strdup(session_name) : NULL;
	r = make_sts_client(p, NULL);
	if (r < 0) {
		prov_discard(p);
		return r;
	}
	*ret = p;
	return 0;
}

int credprov_new_process(const struct credprov_env *env, const char *command, struct credprov **ret)
{
	struct credprov *p;

	if (!env || !env->loop || !command || !command[0])
		return S3G_EINVAL;
	p = prov_alloc(env, CREDPROV_PROCESS);
	p->command = x_strdup(command);
	uv_timer_init(p->loop, &p->proc_timer);
	p->proc_timer.data = p;
	p->open_handles++;
	*ret = p;
	return 0;
}

int credprov_new_container(const struct credprov_env *env, struct credprov **ret)
{
	if (!need_http(env))
		return S3G_EINVAL;
	*ret = prov_alloc(env, CREDPROV_CONTAINER);
	return 0;
}

int credprov_new_imds(const struct credprov_env *env, struct credprov **ret)
{
	if (!need_http(env))
		return S3G_EINVAL;
	*ret = prov_alloc(env, CREDPROV_IMDS);
	return 0;
}

int credprov_new_assume_role(const struct credprov_env *env, struct credprov *source,
			     const struct credprov_role *role, struct credprov **ret)
{
	struct credprov *p;
	int r;

	if (!need_http(env) || !source || !role || !role->role_arn || !role->role_arn[0]) {
		if (source)
			prov_discard(source);
		return S3G_EINVAL;
	}
	p = prov_alloc(env, CREDPROV_ASSUME_ROLE);
	p->source = source;
	p->role_arn = x_strdup(role->role_arn);
	p->session_name = role->session_name && role->session_name[0] ? x_strdup(role->session_name) : NULL;
	p->external_id = role->external_id && role->external_id[0] ? x_strdup(role->external_id) : NULL;
	p->source_identity = role->source_identity && role->source_identity[0] ? x_strdup(role->source_identity) :
			     NULL;
	p->duration_seconds = role->duration_seconds;
	r = make_sts_client(p, source);
	if (r < 0) {
		prov_discard(p);
		return r;
	}
	*ret = p;
	return 0;
}

static int base_provider(const struct credprov_env *env, const struct cred_chain *ch, struct credprov **ret)
{
	switch (ch->base) {
	case CRED_SOURCE_STATIC:
		return credprov_new_static(env, ch->access_key_id, ch->secret_access_key, ch->session_token, ret);
	case CRED_SOURCE_ENVIRONMENT:
		return credprov_new_env(env, ret);
	case CRED_SOURCE_WEB_IDENTITY:
		return credprov_new_web_identity(env, ch->web_identity_token_file, ch->web_identity_role_arn,
						 ch->web_identity_session_name, ret);
	case CRED_SOURCE_PROCESS:
		return credprov_new_process(env, ch->process_command, ret);
	case CRED_SOURCE_CONTAINER:
		return credprov_new_container(env, ret);
	case CRED_SOURCE_IMDS:
		return credprov_new_imds(env, ret);
	default:
		return S3G_ENOTFOUND;
	}
}

static const char *env_or(const struct credprov_env *env, const char *name)
{
	endpoint_getenv_cb g = env->endpoints.getenv ? env->endpoints.getenv : endpoint_getenv_process;
	const char *v = g(name, env->endpoints.getenv_user);

	return v && v[0] ? v : NULL;
}

int credprov_new_profile(const struct credprov_env *env, const char *profile, const char *config_path,
			 const char *credentials_path, struct credprov **ret, const char **ret_reason)
{
	struct profile_set set;
	struct profile_error perr = {0};
	struct cred_chain ch;
	struct credprov *p = NULL;
	const char *why = NULL, *home = env_or(env, "HOME");
	char *cfg = NULL, *crd = NULL;
	int r;

	if (!env || !env->loop)
		return S3G_EINVAL;
	if (!profile)
		profile = env_or(env, "AWS_PROFILE");
	if (!profile)
		profile = "default";
	if (!config_path)
		config_path = env_or(env, "AWS_CONFIG_FILE");
	if (!config_path && home)
		config_path = cfg = x_asprintf("%s/.aws/config", home);
	if (!credentials_path)
		credentials_path = env_or(env, "AWS_SHARED_CREDENTIALS_FILE");
	if (!credentials_path && home)
		credentials_path = crd = x_asprintf("%s/.aws/credentials", home);
	profile_set_init(&set);
	r = profile_load_files(&set, config_path, credentials_path, &perr);
	if (r < 0) {
		why = perr.reason ? perr.reason : "cannot read the shared config files";
		r = S3G_ECONFIG;
		goto out;
	}
	r = profile_resolve(&set, profile, &ch, &why);
	if (r < 0)
		goto out;
	if (ch.base == CRED_SOURCE_NONE) {
		why = "the profile has no credentials";
		r = S3G_ENOTFOUND;
		goto out;
	}
	r = base_provider(env, &ch, &p);
	if (r < 0) {
		why = "the profile's credential source is incomplete";
		goto out;
	}
	for (size_t i = 0; i < ch.nhops; i++) {
		struct credprov_role role = {
			.role_arn = ch.hops[i].role_arn, .external_id = ch.hops[i].external_id,
			.session_name = ch.hops[i].session_name,
			.duration_seconds = ch.hops[i].duration_seconds > 0 ? (unsigned)ch.hops[i].duration_seconds : 0,
		};

		r = credprov_new_assume_role(env, p, &role, &p);
		if (r < 0) {
			p = NULL;
			why = "bad role in the profile";
			goto out;
		}
	}
	*ret = p;
out:
	if (r < 0 && ret_reason)
		*ret_reason = why;
	profile_set_free(&set);
	x_free(cfg);
	x_free(crd);
	return r;
}

int credprov_new_default(const struct credprov_env *env, struct credprov **ret, const char **ret_reason)
{
	const char *why = NULL;
	int r;

	if (!env || !env->loop)
		return S3G_EINVAL;
	if (env_or(env, "AWS_ACCESS_KEY_ID") || env_or(env, "AWS_SECRET_ACCESS_KEY"))
		return credprov_new_env(env, ret);
	if (env_or(env, "AWS_WEB_IDENTITY_TOKEN_FILE") && env_or(env, "AWS_ROLE_ARN"))
		return credprov_new_web_identity(env, env_or(env, "AWS_WEB_IDENTITY_TOKEN_FILE"),
						 env_or(env, "AWS_ROLE_ARN"), env_or(env, "AWS_ROLE_SESSION_NAME"), ret);
	r = credprov_new_profile(env, NULL, NULL, NULL, ret, &why);
	if (r == S3G_ENOTFOUND && env_or(env, "AWS_PROFILE") && why && strcmp(why, "no such profile") == 0) {
		/* Named on purpose: falling through to the instance's role would
		 * hide the typo behind other credentials (botocore: ProfileNotFound). */
		if (ret_reason)
			*ret_reason = "AWS_PROFILE names a profile found in neither the config nor the credentials file";
		return S3G_ECONFIG;
	}
	if (r != S3G_ENOTFOUND) {
		if (r < 0 && ret_reason)
			*ret_reason = why;
		return r;
	}
	if (env_or(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || env_or(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI"))
		return credprov_new_container(env, ret);
	if (!env->http) {
		if (ret_reason)
			*ret_reason = "no credentials found (environment, profile, container)";
		return S3G_ECREDS;
	}
	return credprov_new_imds(env, ret);
}

/* ---- close ------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
	struct credprov *p = h->data;

	if (--p->open_handles == 0 && p->close_cb)
		p->close_cb(p, p->close_user);
}

static void sts_closed(struct aws_client *cl, void *user)
{
	struct credprov *p = user;

	(void)cl;
	handle_closed((uv_handle_t *)&p->refresh);
}

static void source_closed(struct credprov *src, void *user)
{
	struct credprov *p = user;

	(void)src;
	handle_closed((uv_handle_t *)&p->refresh);
}

static void close_handles(struct credprov *p)
{
	if (p->closing == 2)
		return;
	p->closing = 2;
	uv_timer_stop(&p->refresh);
	p->refresh_at = 0;
	if (p->sts) {
		p->open_handles++;
		aws_client_close(p->sts, sts_closed, p);
	}
	if (p->source) {
		p->open_handles++;
		credprov_close(p->source, source_closed, p);
	}
	if (p->kind == CREDPROV_PROCESS)
		uv_close((uv_handle_t *)&p->proc_timer, handle_closed);
	uv_close((uv_handle_t *)&p->refresh, handle_closed);
	uv_close((uv_handle_t *)&p->kick, handle_closed);
}

static void discard_closed(struct credprov *p, void *user)
{
	(void)user;
	credprov_free(p);
}

/* A provider nobody will use (construction failed): close, then free. */
static void prov_discard(struct credprov *p)
{
	credprov_close(p, discard_closed, NULL);
}

/* Handles still needed by a running fetch close when it ends (fetch_done). */
static int fetch_busy(const struct credprov *p)
{
	return p->fetching && !p->sts;   /* an STS call ends when the client closes */
}

void credprov_close(struct credprov *p, credprov_close_cb cb, void *user)
{
	if (!p || p->closing)
		return;
	p->closing = 1;
	p->close_cb = cb;
	p->close_user = user;
	uv_timer_stop(&p->refresh);
	if (p->fetching) {
		/* Stop what runs; its completion reports S3G_ECANCELLED. */
		if (p->stage != STAGE_NONE && (p->kind == CREDPROV_CONTAINER || p->kind == CREDPROV_IMDS))
			http_cancel(&p->req);
		if (p->kind == CREDPROV_PROCESS && p->proc_pending > 0 && !p->proc_exited)
			uv_process_kill(&p->proc, SIGKILL);
	}
	if (p->waiters || fetch_busy(p)) {
		/* Waiters hear S3G_ECANCELLED on the next pass; handles close after. */
		uv_timer_start(&p->kick, kick_fired, 0, 0);
		return;
	}
	close_handles(p);
}

void credprov_free(struct credprov *p)
{
	if (!p)
		return;
	aws_creds_clear(&p->cur);
	x_free(p->region);
	x_free(p->sts_url);
	if (p->secret)
		memset(p->secret, 0, strlen(p->secret));
	if (p->token)
		memset(p->token, 0, strlen(p->token));
	x_free(p->akid);
	x_free(p->secret);
	x_free(p->token);
	x_free(p->token_file);
	x_free(p->role_arn);
	x_free(p->session_name);
	x_free(p->external_id);
	x_free(p->source_identity);
	x_free(p->command);
	x_free(p->web_token);
	buf_free(&p->proc_out);
	buf_free(&p->proc_err);
	x_free(p->url);
	x_free(p->url2);
	for (int i = 0; i < 4; i++)
		x_free(p->line_store[i]);
	x_free(p->imds_base);
	x_free(p->imds_token);
	x_free(p->imds_role);
	credprov_free(p->source);
	aws_client_free(p->sts);
	x_free(p);
}
