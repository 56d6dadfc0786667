/* credprov.c — credential providers: cache, single-flight refresh, sources. */
#include "aws/credprov.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
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

static int64_t system_clock(void *user)
{
	struct timespec ts;

	(void)user;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double prng_next(void *user)
{
	uint64_t *s = user;
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
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
	p->sts_url = env->endpoints.sts_url ? x_strdup(env->endpoints.sts_url) : NULL;
	p->ecfg.sts_url = p->sts_url;
	p->ecfg.s3control_url = NULL;
	p->ecfg.s3_url = NULL;
	p->clock = env->clock ? env->clock : system_clock;
	p->clock_user = env->clock ? env->clock_user : NULL;
	p->prng = (uint64_t)system_clock(NULL) * 6364136223846793005ULL ^ (uint64_t)(uintptr_t)p;
	if (!p->prng)
		p->prng = 1;
	p->rand = env->rand ? env->rand : prng_next;
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
	uv_timer_start(&p->refresh, refresh_fired, (uint64_t)delay, 0);
}

static void fetch_done(struct credprov *p, int status, struct aws_creds *creds, const char *reason)
{
	p->fetching = 0;
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
		if (!p->closing && p->have)
			uv_timer_start(&p->refresh, refresh_fired, FAIL_RETRY_MS, 0);
	}
	if (p->waiters || p->closing == 1)
		uv_timer_start(&p->kick, kick_fired, 0, 0);
}

static void refresh_fired(uv_timer_t *t)
{
	struct credprov *p = t->data;

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

/* ---- close ------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
	struct credprov *p = h->data;

	if (--p->open_handles == 0 && p->close_cb)
		p->close_cb(p, p->close_user);
}

static void close_handles(struct credprov *p)
{
	if (p->closing == 2)
		return;
	p->closing = 2;
	uv_timer_stop(&p->refresh);
	uv_close((uv_handle_t *)&p->refresh, handle_closed);
	uv_close((uv_handle_t *)&p->kick, handle_closed);
}

/* Handles still needed by a running fetch close when it ends (fetch_done). */
static int fetch_busy(const struct credprov *p)
{
	return p->fetching;
}

void credprov_close(struct credprov *p, credprov_close_cb cb, void *user)
{
	if (!p || p->closing)
		return;
	p->closing = 1;
	p->close_cb = cb;
	p->close_user = user;
	uv_timer_stop(&p->refresh);
	if (p->source)
		credprov_close(p->source, NULL, NULL);
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
