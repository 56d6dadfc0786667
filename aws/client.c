/* client.c — the AWS request pipeline (see client.h). */
#include "aws/client.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/credprov.h"
#include "aws/digest.h"
#include "aws/shapes.h"
#include "core/buf.h"
#include "core/xalloc.h"

#define ERR_TEXT_MAX 1024
#define HDR_BUF_MAX  (64u * 1024)
#define STR_BUF_MAX  (64u * 1024)
#define SPARE_BUF_MAX 4096           /* a recycled call keeps buffers up to this size */

enum call_where {
	CALL_NEW,       /* allocated, not yet placed */
	CALL_QUEUED,    /* waiting for an in-flight slot */
	CALL_TIMER,     /* on the timer list (backoff, or due now) */
	CALL_CREDS,     /* waiting for the credential provider */
	CALL_HTTP,      /* an HTTP attempt is running */
};

struct aws_call {
	struct aws_client *cl;
	struct aws_call *next, *prev;    /* queue or timer list, by where */
	struct aws_call *all_next, *all_prev; /* every live call of the client */
	enum call_where where;
	int early_status;                /* finish with this when the timer fires (0: attempt) */

	const char *op;
	enum aws_service svc;
	const char *method;              /* this and the next five: in strs */
	const char *url;
	const char *sign_path;
	const char *query;               /* NULL when none */
	const char *host;
	const char *region;
	struct buf strs;                 /* the call's strings, sized once by prepare */
	const void *body;
	size_t body_len;
	void *owned_body;                /* body, when handed over */
	char payload_hash[DIGEST_SHA256_HEX_SIZE];
	int have_payload_hash;
	char checksum_value[SIGV4_CHECKSUM_SIZE];
	struct sigv4_header checksum_hdr;
	struct sigv4_header extra[AWS_CALL_MAX_HEADERS];
	size_t n_extra;
	char *extra_store;
	unsigned flags;
	size_t max_response;
	aws_parse_cb parse;
	void *out;
	aws_call_cb done;
	void *user;

	struct retry_state rs;
	uint64_t due;                    /* uv_now ms when on the timer list */
	uint64_t creds_gen;              /* credentials generation signed with */
	struct http_request http;
	const char *lines[HTTP_MAX_HEADERS];
	struct buf hdrs;
	struct credprov_waiter cw;
	char *err_text;
	int64_t retry_after_ms;
};

struct aws_client {
	uv_loop_t *loop;
	struct http_engine *http;
	struct credprov *creds;
	char *region;
	char *account;
	struct endpoint_cfg ecfg;
	char *ecfg_s3control, *ecfg_sts, *ecfg_s3;
	struct endpoint ep_s3control;    /* resolved when an account is set */
	int have_s3control;
	struct endpoint ep_sts;
	int have_sts;
	struct retry_policy policy;
	struct retry_quota quota;
	unsigned max_in_flight;
	size_t max_response;
	uint64_t timeout_ms;
	enum sigv4_checksum checksum;
	aws_clock_cb clock;
	void *clock_user;
	retry_rand_cb rand;
	void *rand_user;
	uint64_t prng;
	int64_t skew_ms;

	struct sigv4_signer *signer;
	uv_timer_t timer;
	struct aws_call *timer_head;     /* sorted by due */
	struct aws_call *queue_head, *queue_tail;
	struct aws_call *all;            /* live calls */
	struct aws_call *spare;          /* finished calls kept for reuse (LIFO) */
	unsigned nspare;                 /* at most max_in_flight */
	unsigned active;                 /* calls holding a slot */
	unsigned ncalls;                 /* all live calls */
	int closing;
	aws_client_close_cb close_cb;
	void *close_user;
	struct aws_client_stats stats;
};

static const char *const service_names[AWS_SERVICE_MAX] = {
	[AWS_SERVICE_S3CONTROL] = "s3control",
	[AWS_SERVICE_STS] = "sts",
	[AWS_SERVICE_S3] = "s3",
};

const char *aws_service_name(enum aws_service s)
{
	return (unsigned)s < AWS_SERVICE_MAX ? service_names[s] : "?";
}

void aws_client_opts_default(struct aws_client_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_in_flight = AWS_CLIENT_DEFAULT_IN_FLIGHT;
	o->max_response = AWS_CLIENT_DEFAULT_MAX_RESPONSE;
	o->checksum = SIGV4_CHECKSUM_CRC32;
}

static void timer_fired(uv_timer_t *t);

int aws_client_new(uv_loop_t *loop, const struct aws_client_opts *opts, struct aws_client **ret)
{
	struct aws_client *cl;
	int r;

	if (!loop || !opts || !opts->http || !opts->region || !endpoint_valid_region(opts->region))
		return S3G_EINVAL;
	if (opts->account_id && !endpoint_valid_account(opts->account_id))
		return S3G_EINVAL;
	cl = x_calloc(1, sizeof(*cl));
	cl->loop = loop;
	cl->http = opts->http;
	cl->creds = opts->creds;
	cl->region = x_strdup(opts->region);
	cl->account = opts->account_id ? x_strdup(opts->account_id) : NULL;
	cl->ecfg = opts->endpoints;
	cl->ecfg_s3control = opts->endpoints.s3control_url ? x_strdup(opts->endpoints.s3control_url) : NULL;
	cl->ecfg_sts = opts->endpoints.sts_url ? x_strdup(opts->endpoints.sts_url) : NULL;
	cl->ecfg_s3 = opts->endpoints.s3_url ? x_strdup(opts->endpoints.s3_url) : NULL;
	cl->ecfg.s3control_url = cl->ecfg_s3control;
	cl->ecfg.sts_url = cl->ecfg_sts;
	cl->ecfg.s3_url = cl->ecfg_s3;
	if (opts->policy)
		cl->policy = *opts->policy;
	else
		retry_policy_classic(&cl->policy);
	retry_quota_init(&cl->quota, &cl->policy);
	cl->max_in_flight = opts->max_in_flight ? opts->max_in_flight : AWS_CLIENT_DEFAULT_IN_FLIGHT;
	cl->max_response = opts->max_response ? opts->max_response : AWS_CLIENT_DEFAULT_MAX_RESPONSE;
	cl->timeout_ms = opts->timeout_ms;
	cl->checksum = (unsigned)opts->checksum < SIGV4_CHECKSUM_MAX_ ? opts->checksum : SIGV4_CHECKSUM_CRC32;
	cl->clock = opts->clock ? opts->clock : aws_wall_clock_ms;
	cl->clock_user = opts->clock ? opts->clock_user : NULL;
	cl->prng = retry_prng_seed((uint64_t)aws_wall_clock_ms(NULL), (uint64_t)(uintptr_t)cl);
	cl->rand = opts->rand ? opts->rand : retry_prng_next;
	cl->rand_user = opts->rand ? opts->rand_user : &cl->prng;
	if (cl->account) {
		r = endpoint_s3control(&cl->ecfg, cl->account, cl->region, &cl->ep_s3control);
		if (r < 0)
			goto fail;
		cl->have_s3control = 1;
	}
	r = endpoint_sts(&cl->ecfg, cl->region, &cl->ep_sts);
	if (r < 0)
		goto fail;
	cl->have_sts = 1;
	r = sigv4_signer_new(&cl->signer);
	if (r < 0)
		goto fail;
	uv_timer_init(loop, &cl->timer);
	cl->timer.data = cl;
	*ret = cl;
	return 0;
fail:
	aws_client_free(cl);
	return r;
}

static void client_release(struct aws_client *cl)
{
	struct aws_call *c;

	while ((c = cl->spare)) {
		cl->spare = c->next;
		buf_free(&c->hdrs);
		buf_free(&c->strs);
		x_free(c);
	}
	endpoint_free(&cl->ep_s3control);
	endpoint_free(&cl->ep_sts);
	sigv4_signer_free(cl->signer);
	x_free(cl->region);
	x_free(cl->account);
	x_free(cl->ecfg_s3control);
	x_free(cl->ecfg_sts);
	x_free(cl->ecfg_s3);
	x_free(cl);
}

void aws_client_free(struct aws_client *cl)
{
	if (!cl)
		return;
	client_release(cl);
}

const char *aws_client_region(const struct aws_client *cl)
{
	return cl->region;
}

const char *aws_client_account(const struct aws_client *cl)
{
	return cl->account;
}

struct credprov *aws_client_credprov(const struct aws_client *cl)
{
	return cl->creds;
}

int64_t aws_client_now_ms(const struct aws_client *cl)
{
	return cl->clock(cl->clock_user) + cl->skew_ms;
}

void aws_client_stats(const struct aws_client *cl, struct aws_client_stats *ret)
{
	*ret = cl->stats;
	ret->skew_ms = cl->skew_ms;
	ret->quota = cl->quota.tokens;
	ret->in_flight = cl->ncalls;
}

/* ---- lists ---------------------------------------------------------------- */

static void timer_arm(struct aws_client *cl)
{
	uint64_t now = uv_now(cl->loop);

	if (!cl->timer_head) {
		uv_timer_stop(&cl->timer);
		return;
	}
	uv_timer_start(&cl->timer, timer_fired, cl->timer_head->due > now ? cl->timer_head->due - now : 0, 0);
}

static void timer_add(struct aws_call *c, uint64_t delay_ms)
{
	struct aws_client *cl = c->cl;
	struct aws_call **pp = &cl->timer_head;

	c->due = uv_now(cl->loop) + delay_ms;
	while (*pp && (*pp)->due <= c->due)
		pp = &(*pp)->next;
	c->next = *pp;
	c->prev = NULL;
	*pp = c;
	c->where = CALL_TIMER;
	if (cl->timer_head == c)
		timer_arm(cl);
}

static void queue_push(struct aws_call *c)
{
	struct aws_client *cl = c->cl;

	c->next = NULL;
	c->prev = cl->queue_tail;
	if (cl->queue_tail)
		cl->queue_tail->next = c;
	else
		cl->queue_head = c;
	cl->queue_tail = c;
	c->where = CALL_QUEUED;
}

static struct aws_call *queue_pop(struct aws_client *cl)
{
	struct aws_call *c = cl->queue_head;

	if (!c)
		return NULL;
	cl->queue_head = c->next;
	if (cl->queue_head)
		cl->queue_head->prev = NULL;
	else
		cl->queue_tail = NULL;
	c->next = c->prev = NULL;
	c->where = CALL_NEW;
	return c;
}

/* ---- call life ------------------------------------------------------------- */

static void attempt_begin(struct aws_call *c);

static void call_free(struct aws_call *c)
{
	struct aws_client *cl = c->cl;

	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else
		cl->all = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	if (c->owned_body) {
		if (c->svc == AWS_SERVICE_STS)
			memset(c->owned_body, 0, c->body_len);   /* may hold a web identity token */
		x_free(c->owned_body);
	}
	x_free(c->extra_store);
	x_free(c->err_text);
	/* Keep it for the next call (a steady stream of calls then allocates
	 * neither the call nor its two buffers, and reuses warm memory). */
	if (!cl->closing && cl->nspare < cl->max_in_flight && c->hdrs.cap <= SPARE_BUF_MAX &&
	    c->strs.cap <= SPARE_BUF_MAX) {
		c->next = cl->spare;
		cl->spare = c;
		cl->nspare++;
		return;
	}
	buf_free(&c->hdrs);
	buf_free(&c->strs);
	x_free(c);
}

/* A zeroed call: a spare one (buffers emptied, capacity kept) or a new one. */
static struct aws_call *call_alloc(struct aws_client *cl)
{
	struct aws_call *c = cl->spare;
	struct buf hdrs, strs;

	if (!c) {
		c = x_calloc(1, sizeof(*c));
		buf_init(&c->hdrs, HDR_BUF_MAX);
		buf_init(&c->strs, STR_BUF_MAX);
		return c;
	}
	cl->spare = c->next;
	cl->nspare--;
	hdrs = c->hdrs;
	strs = c->strs;
	memset(c, 0, sizeof(*c));
	c->hdrs = hdrs;
	c->strs = strs;
	buf_reset(&c->hdrs);
	buf_reset(&c->strs);
	return c;
}

static void maybe_closed(struct aws_client *cl);

static void set_err(struct aws_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct aws_call *c, const char *fmt, ...)
{
	va_list ap;

	x_free(c->err_text);
	c->err_text = x_malloc(ERR_TEXT_MAX);
	va_start(ap, fmt);
	vsnprintf(c->err_text, ERR_TEXT_MAX, fmt, ap);
	va_end(ap);
}

/* Deliver the result, release the slot, start the next queued call. */
static void call_finish(struct aws_call *c, int status, struct aws_result *res)
{
	struct aws_client *cl = c->cl;
	struct aws_call *n;

	res->attempts = c->rs.attempts;
	if (!res->error)
		res->error = status < 0 ? (c->err_text ? c->err_text : err_str(status)) : "";
	if (status < 0)
		cl->stats.failed++;
	c->done(status, res, c->user);
	call_free(c);
	cl->active--;
	cl->ncalls--;
	while (!cl->closing && cl->active < cl->max_in_flight && (n = queue_pop(cl))) {
		cl->active++;
		attempt_begin(n);
	}
	maybe_closed(cl);
}

static void finish_simple(struct aws_call *c, int status)
{
	struct aws_result res = {0};

	call_finish(c, status, &res);
}

static void timer_fired(uv_timer_t *t)
{
	struct aws_client *cl = t->data;
	uint64_t now = uv_now(cl->loop);
	struct aws_call *c;

	while ((c = cl->timer_head) && c->due <= now) {
		cl->timer_head = c->next;
		c->next = NULL;
		c->where = CALL_NEW;
		if (c->early_status < 0)
			finish_simple(c, c->early_status);
		else
			attempt_begin(c);
	}
	if (cl->closing != 2)
		timer_arm(cl);
}

/* Fail on a later loop pass (start functions never call back synchronously). */
static void fail_later(struct aws_call *c, int status)
{
	c->early_status = status;
	timer_add(c, 0);
}

/* ---- building and signing -------------------------------------------------- */

/* "Name: value\0" by plain copies: a request has about ten of these and
 * printf was a tenth of the client's CPU per request. */
static void header_line(struct aws_call *c, size_t *offs, size_t *n, const char *name, const char *value, int *bad)
{
	size_t ln = strlen(name), lv = strlen(value);

	if (*bad < 0)
		return;
	if (*n >= HTTP_MAX_HEADERS) {
		*bad = S3G_EINVAL;
		return;
	}
	offs[(*n)++] = c->hdrs.len;
	if (buf_reserve(&c->hdrs, ln + lv + 3) < 0) {
		*bad = S3G_ETOOBIG;
		return;
	}
	memcpy(c->hdrs.data + c->hdrs.len, name, ln);
	memcpy(c->hdrs.data + c->hdrs.len + ln, ": ", 2);
	memcpy(c->hdrs.data + c->hdrs.len + ln + 2, value, lv);
	c->hdrs.len += ln + 2 + lv + 1;
	c->hdrs.data[c->hdrs.len - 1] = '\0';
	c->hdrs.data[c->hdrs.len] = '\0';
}

static void http_done(struct http_request *req, int status, const struct http_response *resp);

static void send_attempt(struct aws_call *c, const struct aws_creds *creds)
{
	struct aws_client *cl = c->cl;
	struct sigv4_header sh[AWS_CALL_MAX_HEADERS + 4];
	struct sigv4_signed sig;
	struct sigv4_config scfg;
	struct sigv4_request sreq;
	size_t ns = 0, offs[HTTP_MAX_HEADERS], nl = 0;
	int bad = 0, r;

	sh[ns++] = (struct sigv4_header){"Host", c->host};
	if (c->svc == AWS_SERVICE_S3CONTROL) {
		sh[ns++] = (struct sigv4_header){"x-amz-account-id", cl->account};
		sh[ns++] = c->checksum_hdr;
	} else if (c->svc == AWS_SERVICE_STS) {
		sh[ns++] = (struct sigv4_header){"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
	}
	for (size_t i = 0; i < c->n_extra; i++)
		sh[ns++] = c->extra[i];

	buf_reset(&c->hdrs);
	if (buf_reserve(&c->hdrs, 900) < 0)    /* one 1 KiB allocation for the usual ~700 bytes */
		bad = S3G_ETOOBIG;
	if (!(c->flags & AWS_CALL_UNSIGNED)) {
		scfg.region = c->region;
		scfg.service = c->svc == AWS_SERVICE_STS ? "sts" : "s3";
		scfg.flags = c->svc == AWS_SERVICE_STS ? 0 : SIGV4_FLAGS_S3;
		if (c->flags & AWS_CALL_UNSIGNED_PAYLOAD)
			scfg.flags |= SIGV4_UNSIGNED_PAYLOAD;
		sreq = (struct sigv4_request){
			.method = c->method, .path = c->sign_path, .query = c->query,
			.headers = sh, .n_headers = ns, .body = c->body, .body_len = c->body_len,
			.payload_hash = c->have_payload_hash && !(c->flags & AWS_CALL_UNSIGNED_PAYLOAD) ?
				c->payload_hash : NULL,
		};
		r = sigv4_sign(cl->signer, &scfg, creds, &sreq, (time_t)(aws_client_now_ms(cl) / 1000), &sig,
			       NULL, NULL);
		if (r < 0) {
			set_err(c, "%s: cannot sign the request: %s", c->op, err_str(r));
			finish_simple(c, r);
			return;
		}
		if (!c->have_payload_hash && c->svc != AWS_SERVICE_STS &&
		    !(c->flags & AWS_CALL_UNSIGNED_PAYLOAD)) {
			/* The body does not change between attempts: hash it once. */
			memcpy(c->payload_hash, sig.content_sha256, sizeof(c->payload_hash));
			c->payload_hash[DIGEST_SHA256_HEX_SIZE - 1] = 0;
			c->have_payload_hash = strlen(c->payload_hash) == DIGEST_SHA256_HEX_SIZE - 1;
		}
		for (size_t i = 1; i < ns; i++)   /* Host is curl's */
			header_line(c, offs, &nl, sh[i].name, sh[i].value, &bad);
		for (size_t i = 0; i < sig.n_headers; i++)
			header_line(c, offs, &nl, sig.headers[i].name, sig.headers[i].value, &bad);
	} else {
		for (size_t i = 1; i < ns; i++)
			header_line(c, offs, &nl, sh[i].name, sh[i].value, &bad);
	}
	header_line(c, offs, &nl, "Host", c->host, &bad);
	if (bad < 0) {
		set_err(c, "%s: request headers: %s", c->op, err_str(bad));
		finish_simple(c, bad);
		return;
	}
	for (size_t i = 0; i < nl; i++)
		c->lines[i] = c->hdrs.data + offs[i];

	memset(&c->http, 0, sizeof(c->http));
	c->http.method = c->method;
	c->http.url = c->url;
	c->http.headers = c->lines;
	c->http.n_headers = nl;
	c->http.body = c->body;
	c->http.body_len = c->body_len;
	c->http.timeout_ms = cl->timeout_ms;
	c->http.max_response = c->max_response;
	c->http.done = http_done;
	c->http.user = c;
	c->where = CALL_HTTP;
	cl->stats.attempts++;
	if (c->rs.attempts > 0)
		cl->stats.retries++;
	http_start(cl->http, &c->http);
}

static void creds_ready(int status, const struct aws_creds *creds, const char *reason, void *user)
{
	struct aws_call *c = user;

	c->where = CALL_NEW;
	if (status < 0) {
		set_err(c, "%s: no AWS credentials: %s", c->op, reason && reason[0] ? reason : err_str(status));
		finish_simple(c, status == S3G_ECANCELLED ? status : S3G_ECREDS);
		return;
	}
	c->creds_gen = credprov_generation(c->cl->creds);
	send_attempt(c, creds);
}

static void attempt_begin(struct aws_call *c)
{
	struct aws_client *cl = c->cl;
	const struct aws_creds *creds;

	if (cl->closing) {
		finish_simple(c, S3G_ECANCELLED);
		return;
	}
	if (c->flags & AWS_CALL_UNSIGNED) {
		send_attempt(c, NULL);
		return;
	}
	creds = credprov_peek(cl->creds);
	if (creds) {
		c->creds_gen = credprov_generation(cl->creds);
		send_attempt(c, creds);
		return;
	}
	c->where = CALL_CREDS;
	credprov_get(cl->creds, &c->cw, creds_ready, c);
}

/* ---- completion ----------------------------------------------------------- */

static const char *reason_phrase(long code)
{
	switch (code) {
	case 301: return "Moved Permanently";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 409: return "Conflict";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

static void http_done(struct http_request *req, int status, const struct http_response *resp)
{
	struct aws_call *c = req->user;
	struct aws_client *cl = c->cl;
	struct shapes_error perr = {0};
	struct aws_result res = {0};
	struct retry_input in = {0};
	struct xml_error xerr = {0};
	enum retry_class cls;
	const char *date, *ra;
	int64_t raw_now;
	int have_perr = 0, final = status;
	uint64_t delay = 0;

	c->where = CALL_NEW;
	res.resp = status == 0 ? resp : NULL;
	res.http_code = resp ? resp->code : 0;
	if (status == 0) {
		res.request_id = http_response_header(resp, "x-amz-request-id");
		if (!res.request_id)
			res.request_id = http_response_header(resp, "x-amzn-RequestId");
	}

	if (status == 0 && resp->code >= 200 && resp->code < 300) {
		if (c->parse) {
			char why[256] = "";
			int r = c->parse(resp->body->data ? resp->body->data : "", resp->body->len, resp, c->out,
					 why, sizeof(why));

			if (r < 0) {
				c->rs.attempts++;
				set_err(c, "%s: malformed response (HTTP %ld, %zu bytes): %s", c->op, resp->code,
					resp->body->len, why[0] ? why : err_str(r));
				call_finish(c, r == S3G_ETOOBIG ? S3G_ETOOBIG : S3G_EPARSE, &res);
				return;
			}
		}
		retry_success(&cl->policy, &cl->quota, &c->rs);
		c->rs.attempts++;
		call_finish(c, 0, &res);
		return;
	}

	/* Read the wall clock only for a failure (clock skew, Date). */
	raw_now = cl->clock(cl->clock_user);
	in.status = status;
	if (status == 0) {
		in.http_code = (int)resp->code;
		if (resp->body->len > 0 &&
		    shapes_parse_error(resp->body->data, resp->body->len, &perr, &xerr) == 0) {
			have_perr = 1;
			in.aws_code = perr.code;
			in.message = perr.message;
			if (!res.request_id)
				res.request_id = perr.request_id;
		}
		date = http_response_header(resp, "Date");
		if (date && retry_parse_http_date(date, strlen(date), &in.server_date_ms) == 0)
			in.have_server_date = 1;
		in.local_now_ms = raw_now + cl->skew_ms;
		res.code = have_perr ? perr.code : NULL;
		res.message = have_perr ? perr.message : NULL;
	}
	cls = retry_classify(&cl->policy, &in);
	if (cls == RETRY_TERMINAL && have_perr && strcmp(perr.code, "InvalidToken") == 0 && cl->creds)
		cls = RETRY_EXPIRED_CREDS;

	c->retry_after_ms = -1;
	if (status == 0 && (ra = http_response_header(resp, "x-amz-retry-after")) &&
	    retry_parse_retry_after(ra, strlen(ra), &c->retry_after_ms) < 0)
		c->retry_after_ms = -1;

	if (c->flags & AWS_CALL_NO_RETRY || cl->closing)
		c->rs.attempts++;
	else if (retry_next(&cl->policy, &cl->quota, &c->rs, cls, c->retry_after_ms, cl->rand, cl->rand_user,
			    &delay)) {
		if (cls == RETRY_CLOCK_SKEW) {
			int64_t server = have_perr && perr.server_time_ms > 0 ? perr.server_time_ms :
					 in.have_server_date ? in.server_date_ms : 0;

			if (server > 0)
				cl->skew_ms = server - raw_now;
		} else if (cls == RETRY_EXPIRED_CREDS && cl->creds) {
			credprov_invalidate(cl->creds, c->creds_gen);
		}
		shapes_error_clear(&perr);
		timer_add(c, delay);
		return;
	}

	/* Final failure. */
	if (status < 0) {
		final = status;
		if (status == S3G_ETOOBIG)
			set_err(c, "%s: response over its size limit (%zu bytes)", c->op,
				c->max_response ? c->max_response : cl->max_response);
		else if (status == S3G_ECANCELLED || status == S3G_ESHUTDOWN)
			set_err(c, "%s: cancelled", c->op);
		else
			set_err(c, "%s: %s%s%s", c->op, err_str(status), resp && resp->error && resp->error[0] ? ": " : "",
				resp && resp->error ? resp->error : "");
	} else if (have_perr) {
		final = cls == RETRY_THROTTLING ? S3G_ETHROTTLED : S3G_EAWS;
		set_err(c, "%s: %s: %s", c->op, perr.code, perr.message ? perr.message : "");
	} else {
		final = cls == RETRY_THROTTLING ? S3G_ETHROTTLED : S3G_EAWS;
		if (resp->body->len > 0 && strcmp(c->method, "HEAD") != 0)
			set_err(c, "%s: HTTP %ld %s (unreadable error body: %s)", c->op, resp->code,
				reason_phrase(resp->code), xerr.reason);
		else
			set_err(c, "%s: HTTP %ld %s", c->op, resp->code, reason_phrase(resp->code));
	}
	call_finish(c, final, &res);
	shapes_error_clear(&perr);
}

/* ---- start ----------------------------------------------------------------- */

/* a+b+c+d, NUL-terminated, appended to strs, whose room the caller
 * reserved (so earlier strings never move). */
static const char *strs_put(struct buf *strs, const char *a, const char *b, const char *c, const char *d)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c), ld = strlen(d);
	char *s = strs->data + strs->len;

	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc);
	memcpy(s + la + lb + lc, d, ld);
	s[la + lb + lc + ld] = '\0';
	strs->len += la + lb + lc + ld + 1;
	return s;
}

static int prepare(struct aws_call *c, const struct aws_call_spec *sp)
{
	struct aws_client *cl = c->cl;
	struct endpoint s3ep = {0};
	const struct endpoint *ep;
	const char *path = sp->path && sp->path[0] ? sp->path : "/";
	const char *method = sp->method ? sp->method : "GET", *query;
	size_t extra_len = 0, off = 0;
	int r = 0;

	switch (sp->service) {
	case AWS_SERVICE_S3CONTROL:
		if (!cl->have_s3control) {
			set_err(c, "%s: the client has no account id", c->op);
			return S3G_EINVAL;
		}
		ep = &cl->ep_s3control;
		break;
	case AWS_SERVICE_STS:
		ep = &cl->ep_sts;
		break;
	case AWS_SERVICE_S3:
		r = endpoint_s3(&cl->ecfg, sp->bucket ? sp->bucket : "", cl->region, &s3ep);
		if (r < 0) {
			set_err(c, "%s: bad bucket name or S3 endpoint", c->op);
			return r;
		}
		ep = &s3ep;
		break;
	default:
		return S3G_EINVAL;
	}
	/* A bucket listing on a path-style endpoint is "/bucket", not "/bucket/". */
	if (strcmp(path, "/") == 0 && ep->path_prefix[0])
		path = "";
	query = sp->query ? sp->query : "";
	/* Method, URL (with "?query"), signed path, host, region, query. */
	if (buf_reserve(&c->strs, strlen(method) + strlen(ep->base_url) + 2 * strlen(path) + 2 * strlen(query) +
				  strlen(ep->path_prefix) + strlen(ep->host) + strlen(ep->region) + 7) < 0) {
		endpoint_free(&s3ep);
		set_err(c, "%s: request line too long", c->op);
		return S3G_EINVAL;
	}
	c->method = strs_put(&c->strs, method, "", "", "");
	c->url = strs_put(&c->strs, ep->base_url, path, query[0] ? "?" : "", query);
	c->sign_path = strs_put(&c->strs, ep->path_prefix, path, "", "");
	c->host = strs_put(&c->strs, ep->host, "", "", "");
	c->region = strs_put(&c->strs, ep->region, "", "", "");
	c->query = query[0] ? strs_put(&c->strs, query, "", "", "") : NULL;
	endpoint_free(&s3ep);

	if (sp->n_headers > AWS_CALL_MAX_HEADERS)
		return S3G_EINVAL;
	for (size_t i = 0; i < sp->n_headers; i++)
		extra_len += strlen(sp->headers[i].name) + strlen(sp->headers[i].value) + 2;
	if (sp->n_headers) {
		c->extra_store = x_malloc(extra_len);
		for (size_t i = 0; i < sp->n_headers; i++) {
			size_t ln = strlen(sp->headers[i].name) + 1, lv = strlen(sp->headers[i].value) + 1;

			memcpy(c->extra_store + off, sp->headers[i].name, ln);
			c->extra[i].name = c->extra_store + off;
			off += ln;
			memcpy(c->extra_store + off, sp->headers[i].value, lv);
			c->extra[i].value = c->extra_store + off;
			off += lv;
		}
		c->n_extra = sp->n_headers;
	}
	if (sp->service == AWS_SERVICE_S3CONTROL) {
		r = sigv4_checksum_header(cl->checksum, c->body, c->body_len, c->checksum_value, &c->checksum_hdr);
		if (r < 0)
			return r;
	}
	if (sp->payload_hash) {
		if (strlen(sp->payload_hash) != DIGEST_SHA256_HEX_SIZE - 1)
			return S3G_EINVAL;
		memcpy(c->payload_hash, sp->payload_hash, DIGEST_SHA256_HEX_SIZE);
		c->have_payload_hash = 1;
	}
	if (!(sp->flags & AWS_CALL_UNSIGNED) && !cl->creds) {
		set_err(c, "%s: the client has no credential provider", c->op);
		return S3G_ECREDS;
	}
	return 0;
}

void aws_call_start(struct aws_client *cl, const struct aws_call_spec *sp)
{
	struct aws_call *c = call_alloc(cl);
	int r;

	c->cl = cl;
	c->op = sp->op ? sp->op : "AWS";
	c->svc = sp->service;
	c->body = sp->body;
	c->body_len = sp->body_len;
	if (sp->body_owned)
		memcpy(&c->owned_body, &sp->body, sizeof(void *));   /* ownership handed over */
	c->flags = sp->flags;
	c->max_response = sp->max_response ? sp->max_response : cl->max_response;
	c->parse = sp->parse;
	c->out = sp->out;
	c->done = sp->done;
	c->user = sp->user;
	retry_state_init(&c->rs);
	c->all_next = cl->all;
	if (cl->all)
		cl->all->all_prev = c;
	cl->all = c;
	cl->ncalls++;
	cl->active++;
	cl->stats.calls++;
	if (cl->closing) {
		set_err(c, "%s: the client is closing", c->op);
		fail_later(c, S3G_ECANCELLED);
		return;
	}
	r = prepare(c, sp);
	if (r < 0) {
		if (!c->err_text)
			set_err(c, "%s: invalid request: %s", c->op, err_str(r));
		fail_later(c, r);
		return;
	}
	if (cl->active > cl->max_in_flight) {
		cl->active--;
		queue_push(c);
		return;
	}
	attempt_begin(c);
}

void aws_call_fail(struct aws_client *cl, const char *op, int status, const char *why, aws_call_cb done,
		   void *user)
{
	struct aws_call_spec sp = {.op = op, .service = AWS_SERVICE_STS, .method = "GET", .flags = AWS_CALL_UNSIGNED,
				   .done = done, .user = user};
	struct aws_call *c = call_alloc(cl);

	c->cl = cl;
	c->op = op ? op : "AWS";
	c->done = sp.done;
	c->user = sp.user;
	retry_state_init(&c->rs);
	c->all_next = cl->all;
	if (cl->all)
		cl->all->all_prev = c;
	cl->all = c;
	cl->ncalls++;
	cl->active++;
	cl->stats.calls++;
	set_err(c, "%s: %s", c->op, why ? why : err_str(status));
	fail_later(c, status < 0 ? status : S3G_EINVAL);
}

/* ---- close ------------------------------------------------------------------ */

static void timer_closed(uv_handle_t *h)
{
	struct aws_client *cl = h->data;

	if (cl->close_cb)
		cl->close_cb(cl, cl->close_user);
}

static void maybe_closed(struct aws_client *cl)
{
	if (!cl->closing || cl->ncalls > 0 || cl->closing == 2)
		return;
	cl->closing = 2;
	uv_close((uv_handle_t *)&cl->timer, timer_closed);
}

void aws_client_close(struct aws_client *cl, aws_client_close_cb cb, void *user)
{
	struct aws_call *c;

	if (!cl || cl->closing)
		return;
	cl->closing = 1;
	cl->close_cb = cb;
	cl->close_user = user;
	/* Queued calls never got a slot; they fail on the next pass. */
	while ((c = queue_pop(cl))) {
		cl->active++;
		set_err(c, "%s: cancelled", c->op);
		fail_later(c, S3G_ECANCELLED);
	}
	/* Every other live call: cancel what it waits for. HTTP attempts end
	 * through http_cancel (callback on a later pass, then no retry). */
	for (c = cl->all; c; c = c->all_next) {
		switch (c->where) {
		case CALL_TIMER:
			c->early_status = S3G_ECANCELLED;
			c->due = 0;
			break;
		case CALL_CREDS:
			credprov_cancel(&c->cw);
			set_err(c, "%s: cancelled", c->op);
			fail_later(c, S3G_ECANCELLED);
			break;
		case CALL_HTTP:
			http_cancel(&c->http);
			break;
		default:
			break;
		}
	}
	/* The timer list may have been reordered by due = 0. */
	if (cl->timer_head) {
		struct aws_call *list = cl->timer_head, *nx;

		cl->timer_head = NULL;
		for (c = list; c; c = nx) {
			nx = c->next;
			timer_add(c, 0);
		}
	}
	timer_arm(cl);
	maybe_closed(cl);
}
