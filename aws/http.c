#include "aws/http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/xalloc.h"
#include "version.h"

/* One reusable curl easy handle with its buffers (kept on a free list, so a
 * steady stream of requests allocates nothing of its own). */
struct http_easy {
	CURL *curl;
	struct http_engine *eng;
	struct http_request *req;
	struct http_easy *next_free;
	struct buf body;
	struct buf hdrs;              /* response header lines, NUL-separated */
	struct buf reqhdrs;           /* copies of the request header lines */
	struct curl_slist nodes[HTTP_MAX_HEADERS + 3];
	int too_big;                  /* a limit was hit in a callback */
	int proxy_scheme;             /* PROXY_* the proxy options are set for */
	char errbuf[CURL_ERROR_SIZE];
};

/* Which scheme's proxy an easy handle is set up for. */
enum {
	PROXY_ENV,                    /* none set: curl reads the environment itself */
	PROXY_HTTP,
	PROXY_HTTPS,
};

/* One per socket curl asks us to watch; freed in the poll's close callback. */
struct http_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct http_engine *eng;
	int events;                   /* UV_READABLE/UV_WRITABLE being polled; 0 = stopped */
	int idle;                     /* curl dropped it (cached connection), still polled */
};

/* What the engine knows about an fd number. */
struct http_fd {
	struct http_sock *s;          /* its poll handle, if any */
	unsigned char conn;           /* a connection socket curl opened through us */
};

struct http_engine {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;             /* curl's timeout */
	uv_idle_t defer;              /* delivers early completions on a later pass */
	struct http_engine_opts opts;
	char *ca_file;
	char *user_agent;
	char *ua_line;                /* "User-Agent: <user_agent>", built once */
	char *proxy_http;             /* the environment's proxy for http:// URLs, "" for none */
	char *proxy_https;            /* ... for https:// URLs */
	char *no_proxy;               /* the environment's no_proxy list, "" for none */
	struct http_easy *free_easies;
	struct http_request *q_head, *q_tail;       /* FIFO, waiting for a slot */
	struct http_request *active;                /* running transfers */
	struct http_request *pend_head, *pend_tail; /* callbacks due on a later pass */
	struct http_fd *fdtab;        /* by fd number */
	size_t fdcap;
	size_t nsocks;
	unsigned handles_open;        /* uv handles not yet closed */
	int closing;
	int curl_gone;                /* multi cleaned up */
	int defer_active;
	http_engine_close_cb close_cb;
	void *close_user;
	struct http_stats st;
};

static const char *const state_names[HTTP_REQ_STATE_MAX] = {
	[HTTP_REQ_IDLE] = "idle",
	[HTTP_REQ_QUEUED] = "queued",
	[HTTP_REQ_ACTIVE] = "active",
	[HTTP_REQ_PENDING] = "pending",
};

const char *http_req_state_name(enum http_req_state s)
{
	if ((unsigned)s >= HTTP_REQ_STATE_MAX)
		return "?";
	return state_names[s];
}

static char empty_str[1];

static void start_transfers(struct http_engine *eng);
static void maybe_finish_close(struct http_engine *eng);

/* ---- intrusive lists ---- */

static void list_push_tail(struct http_request **head, struct http_request **tail, struct http_request *r)
{
	r->next_ = NULL;
	r->prev_ = *tail;
	if (*tail)
		(*tail)->next_ = r;
	else
		*head = r;
	*tail = r;
}

static void list_unlink(struct http_request **head, struct http_request **tail, struct http_request *r)
{
	if (r->prev_)
		r->prev_->next_ = r->next_;
	else
		*head = r->next_;
	if (r->next_)
		r->next_->prev_ = r->prev_;
	else if (tail)
		*tail = r->prev_;
	r->next_ = r->prev_ = NULL;
}

static void active_push(struct http_engine *eng, struct http_request *r)
{
	r->prev_ = NULL;
	r->next_ = eng->active;
	if (eng->active)
		eng->active->prev_ = r;
	eng->active = r;
}

/* ---- response headers ---- */

const char *http_response_header(const struct http_response *resp, const char *name)
{
	const char *p, *end, *found = NULL;
	size_t nlen = strlen(name);

	if (!resp || !resp->headers_)
		return NULL;
	p = resp->headers_;
	end = p + resp->headers_len_;
	while (p < end) {
		size_t l = strlen(p);

		if (l > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			found = v;
		}
		p += l + 1;
	}
	return found;
}

/* ---- deferred completions ---- */

static void on_defer(uv_idle_t *h);

static void defer_kick(struct http_engine *eng)
{
	if (!eng->defer_active) {
		uv_idle_start(&eng->defer, on_defer);
		eng->defer_active = 1;
	}
}

static void finish_later(struct http_engine *eng, struct http_request *req, int status)
{
	req->state_ = HTTP_REQ_PENDING;
	req->status_ = status;
	req->easy_ = NULL;
	list_push_tail(&eng->pend_head, &eng->pend_tail, req);
	defer_kick(eng);
}

static void on_defer(uv_idle_t *h)
{
	struct http_engine *eng = h->data;
	struct http_request *r = eng->pend_head;
	struct buf empty;
	struct http_response resp = {.body = &empty, .error = empty_str};

	/* Deliver only what is due now; whatever callbacks add waits a pass. */
	eng->pend_head = eng->pend_tail = NULL;
	while (r) {
		struct http_request *next = r->next_;

		r->next_ = r->prev_ = NULL;
		r->state_ = HTTP_REQ_IDLE;
		eng->st.failed++;
		if (r->status_ == S3G_ECANCELLED)
			eng->st.cancelled++;
		buf_init(&empty, 0);
		r->done(r, r->status_, &resp);
		buf_free(&empty);
		r = next;
	}
	if (!eng->pend_head) {
		uv_idle_stop(&eng->defer);
		eng->defer_active = 0;
		if (eng->closing)
			maybe_finish_close(eng);
	}
}

/* ---- curl callbacks ---- */

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
	struct http_easy *e = user;
	size_t len = size * n;

	if (buf_append(&e->body, p, len) < 0) {
		e->too_big = 1;
		return 0;                      /* aborts with CURLE_WRITE_ERROR */
	}
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
	struct http_easy *e = user;
	size_t len = size * n, l = len;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
		buf_reset(&e->hdrs);           /* a new response (after 100, 1xx) */
	while (l && (p[l - 1] == '\r' || p[l - 1] == '\n' || p[l - 1] == ' '))
		l--;
	if (l == 0)
		return len;
	if (buf_append(&e->hdrs, p, l) < 0 || buf_append(&e->hdrs, "", 1) < 0) {
		e->too_big = 1;
		return 0;
	}
	return len;
}

static void sock_closed(uv_handle_t *h)
{
	struct http_sock *s = h->data;
	struct http_engine *eng = s->eng;

	x_free(s);
	eng->handles_open--;
	if (eng->closing)
		maybe_finish_close(eng);
}

/* Close the poll handle of fd (if any). libuv drops the fd from epoll inside
 * uv_close, so the caller may close(fd) right after. */
static void sock_drop(struct http_engine *eng, curl_socket_t fd)
{
	struct http_sock *s;

	if (fd < 0 || (size_t)fd >= eng->fdcap || !(s = eng->fdtab[fd].s))
		return;
	eng->fdtab[fd].s = NULL;
	eng->nsocks--;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void check_done(struct http_engine *eng);

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct http_sock *s = h->data;
	struct http_engine *eng = s->eng;
	int flags = 0, running;

	if (s->idle) {
		/* A cached connection stirred (peer closed it, or stray data):
		 * stop polling; curl checks it before reusing it. */
		uv_poll_stop(&s->poll);
		s->events = 0;
		return;
	}
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	curl_multi_socket_action(eng->multi, s->fd, flags, &running);
	check_done(eng);
}

static void fdtab_grow(struct http_engine *eng, curl_socket_t fd)
{
	size_t cap = eng->fdcap ? eng->fdcap : 64;

	if ((size_t)fd < eng->fdcap)
		return;
	while (cap <= (size_t)fd)
		cap *= 2;
	eng->fdtab = x_realloc(eng->fdtab, cap * sizeof(*eng->fdtab));
	memset(eng->fdtab + eng->fdcap, 0, (cap - eng->fdcap) * sizeof(*eng->fdtab));
	eng->fdcap = cap;
}

/* curl's socket callback. A connection going idle in the cache gets
 * CURL_POLL_REMOVE without being closed: for connection sockets (opened and
 * closed through our callbacks) we keep the handle, and keep polling it for
 * reading, marked idle, for the next transfer on that connection (no epoll
 * churn, no allocation; the poll is only restarted when the events change).
 * If an idle connection wakes up (the peer closed it), on_poll stops
 * polling it and curl's own liveness check drops it before any reuse. The
 * handle is closed in on_closesocket, before the fd. Any other
 * socket (e.g. the threaded resolver's socketpair, which curl closes
 * directly) loses its handle at once. */
static int on_socket(CURL *curl, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_engine *eng = userp;
	struct http_sock *s = socketp;
	int events = 0;

	if (fd < 0)
		return 0;
	fdtab_grow(eng, fd);
	if (!s)
		s = eng->fdtab[fd].s;
	if (what == CURL_POLL_REMOVE) {
		/* A connection going idle stays polled, marked idle: the next
		 * transfer on it usually wants the same events, and stopping and
		 * restarting cost two epoll_ctl per request. */
		if (s && eng->fdtab[fd].conn) {
			s->idle = 1;
			/* An idle connection must not keep the loop alive (it did
			 * not when its poll was stopped). */
			uv_unref((uv_handle_t *)&s->poll);
			if (s->events & UV_WRITABLE) {   /* would fire at once */
				uv_poll_stop(&s->poll);
				s->events = 0;
			}
		} else
			sock_drop(eng, fd);
		return 0;
	}
	if (!s) {
		s = x_calloc(1, sizeof(*s));
		if (uv_poll_init_socket(eng->loop, &s->poll, fd) < 0) {
			x_free(s);
			return -1;
		}
		s->fd = fd;
		s->eng = eng;
		s->poll.data = s;
		eng->fdtab[fd].s = s;
		eng->nsocks++;
		eng->handles_open++;
	}
	if (!socketp)
		curl_multi_assign(eng->multi, fd, s);
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	if (s->idle) {
		s->idle = 0;
		uv_ref((uv_handle_t *)&s->poll);
	}
	if (events != s->events) {
		uv_poll_start(&s->poll, events, on_poll);
		s->events = events;
	}
	return 0;
}

static curl_socket_t on_opensocket(void *user, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct http_engine *eng = user;
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

	if (fd >= 0) {
		fdtab_grow(eng, fd);
		eng->fdtab[fd].conn = 1;
	}
	return fd;
}

/* curl closes a connection socket: stop and close its poll handle first. */
static int on_closesocket(void *user, curl_socket_t fd)
{
	struct http_engine *eng = user;

	sock_drop(eng, fd);
	if (fd >= 0 && (size_t)fd < eng->fdcap)
		eng->fdtab[fd].conn = 0;
	return close(fd);
}

static void on_timer(uv_timer_t *h)
{
	struct http_engine *eng = h->data;
	int running;

	curl_multi_socket_action(eng->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(eng);
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_engine *eng = userp;

	if (timeout_ms < 0)
		uv_timer_stop(&eng->timer);
	else
		uv_timer_start(&eng->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- easy handles ---- */

static struct http_easy *easy_get(struct http_engine *eng)
{
	struct http_easy *e = eng->free_easies;

	if (e) {
		eng->free_easies = e->next_free;
		e->next_free = NULL;
		return e;
	}
	e = x_calloc(1, sizeof(*e));
	e->eng = eng;
	e->curl = curl_easy_init();
	if (!e->curl)
		abort();
	buf_init(&e->body, 0);
	buf_init(&e->hdrs, eng->opts.max_headers);
	buf_init(&e->reqhdrs, 256 * 1024);
	/* Everything that does not change between requests is set once. */
	curl_easy_setopt(e->curl, CURLOPT_PRIVATE, e);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* SigV4 for S3 signs the path as sent: no dot-segment removal (and no
	 * per-request normalising pass). */
	curl_easy_setopt(e->curl, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (eng->ca_file)
		curl_easy_setopt(e->curl, CURLOPT_CAINFO, eng->ca_file);
	/* No CURLOPT_USERAGENT: curl would aprintf "User-Agent: %s" on every
	 * request; easy_setup sends the preformatted line instead. */
	curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->errbuf);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, e);
	curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e->curl, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	curl_easy_setopt(e->curl, CURLOPT_OPENSOCKETDATA, eng);
	curl_easy_setopt(e->curl, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
	curl_easy_setopt(e->curl, CURLOPT_CLOSESOCKETDATA, eng);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)eng->opts.connect_timeout_ms);
	return e;
}

static void easy_put(struct http_engine *eng, struct http_easy *e)
{
	e->req = NULL;
	/* Keep the capacity of small buffers; drop big bodies. */
	if (e->body.cap > 64 * 1024)
		buf_free(&e->body);
	buf_reset(&e->body);
	buf_reset(&e->hdrs);
	e->next_free = eng->free_easies;
	eng->free_easies = e;
}

static void easy_destroy(struct http_easy *e)
{
	curl_easy_cleanup(e->curl);
	buf_free(&e->body);
	buf_free(&e->hdrs);
	buf_free(&e->reqhdrs);
	x_free(e);
}

static int has_header(const struct http_request *req, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < req->n_headers; i++)
		if (strncasecmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
			return 1;
	return 0;
}

/* ---- proxies ----
 *
 * libcurl 7.88 reads the proxy environment again for every transfer (five
 * getenv calls and copies each). The engine reads it once, in curl's order,
 * and hands curl the result: CURLOPT_PROXY "" and CURLOPT_NOPROXY "" mean
 * "none" exactly as unset variables do. The process environment does not
 * change under the daemon, so curl would find the same values. */

/* curl_getenv: an empty variable counts as unset. */
static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

static char *env_first(const char *a, const char *b, const char *c, const char *d)
{
	const char *v = NULL;

	if (a && !v)
		v = env_nonempty(a);
	if (b && !v)
		v = env_nonempty(b);
	if (c && !v)
		v = env_nonempty(c);
	if (d && !v)
		v = env_nonempty(d);
	return x_strdup(v ? v : "");
}

static void proxy_resolve(struct http_engine *eng)
{
	/* curl's detect_proxy(): "<scheme>_proxy", its upper-case spelling
	 * except for HTTP_PROXY (CGI sets it from a request header), then
	 * all_proxy, ALL_PROXY; no_proxy before NO_PROXY. */
	eng->proxy_http = env_first("http_proxy", NULL, "all_proxy", "ALL_PROXY");
	eng->proxy_https = env_first("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY");
	eng->no_proxy = env_first("no_proxy", "NO_PROXY", NULL, NULL);
}

/* Point the handle at the proxy for url's scheme; a URL that is neither
 * http nor https (curl refuses it later) gets curl's own lookup. */
static void proxy_setup(struct http_engine *eng, struct http_easy *e, const char *url)
{
	int want = strncasecmp(url, "https:", 6) == 0 ? PROXY_HTTPS :
		   strncasecmp(url, "http:", 5) == 0 ? PROXY_HTTP : PROXY_ENV;

	if (want == e->proxy_scheme)
		return;
	if (want == PROXY_ENV) {
		curl_easy_setopt(e->curl, CURLOPT_PROXY, NULL);
		curl_easy_setopt(e->curl, CURLOPT_NOPROXY, NULL);
	} else {
		curl_easy_setopt(e->curl, CURLOPT_PROXY, want == PROXY_HTTPS ? eng->proxy_https : eng->proxy_http);
		curl_easy_setopt(e->curl, CURLOPT_NOPROXY, eng->no_proxy);
	}
	e->proxy_scheme = want;
}

/* Program the easy handle for req. */
static int easy_setup(struct http_engine *eng, struct http_easy *e, struct http_request *req)
{
	CURL *c = e->curl;
	size_t off[HTTP_MAX_HEADERS + 3];
	size_t n = 0;
	const char *m = req->method;
	int is_head = strcmp(m, "HEAD") == 0;
	int want_body = req->body || strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0;

	buf_reset(&e->reqhdrs);
	for (size_t i = 0; i < req->n_headers; i++) {
		off[n++] = e->reqhdrs.len;
		if (buf_puts(&e->reqhdrs, req->headers[i]) < 0 || buf_append(&e->reqhdrs, "", 1) < 0)
			return S3G_EINVAL;
	}
	if (!has_header(req, "User-Agent")) {
		off[n++] = e->reqhdrs.len;
		if (buf_append(&e->reqhdrs, eng->ua_line, strlen(eng->ua_line) + 1) < 0)
			return S3G_EINVAL;
	}
	/* No "Expect: 100-continue" round trip (curl adds it only above 1 KiB
	 * in old versions, 1 MiB now; every header line is scanned by each of
	 * curl's header checks, so it is not sent when not needed); no
	 * default form content type. */
	if (req->body_len > 1024) {
		off[n++] = e->reqhdrs.len;
		if (buf_append(&e->reqhdrs, "Expect:", 8) < 0)
			return S3G_EINVAL;
	}
	if (want_body && !has_header(req, "Content-Type")) {
		off[n++] = e->reqhdrs.len;
		if (buf_append(&e->reqhdrs, "Content-Type:", 14) < 0)
			return S3G_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		e->nodes[i].data = e->reqhdrs.data + off[i];
		e->nodes[i].next = i + 1 < n ? &e->nodes[i + 1] : NULL;
	}
	e->too_big = 0;
	e->errbuf[0] = '\0';
	buf_reset(&e->body);
	buf_reset(&e->hdrs);
	e->body.max = req->max_response ? req->max_response : eng->opts.max_response;
	e->req = req;

	curl_easy_setopt(c, CURLOPT_URL, req->url);
	proxy_setup(eng, e, req->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	if (is_head) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (want_body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : (const void *)empty_str);
		if (strcmp(m, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, &e->nodes[0]);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms ? req->timeout_ms : eng->opts.timeout_ms));
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)e->body.max);
	return 0;
}

/* ---- start, finish ---- */

static void start_one(struct http_engine *eng, struct http_request *req)
{
	struct http_easy *e = easy_get(eng);
	int r = easy_setup(eng, e, req);

	if (r == 0 && curl_multi_add_handle(eng->multi, e->curl) != CURLM_OK)
		r = S3G_ETRANSPORT;
	if (r < 0) {
		easy_put(eng, e);
		finish_later(eng, req, r);
		return;
	}
	req->easy_ = e;
	req->state_ = HTTP_REQ_ACTIVE;
	active_push(eng, req);
	eng->st.in_flight++;
}

static void start_transfers(struct http_engine *eng)
{
	while (eng->q_head && eng->st.in_flight < eng->opts.max_in_flight && !eng->closing) {
		struct http_request *r = eng->q_head;

		list_unlink(&eng->q_head, &eng->q_tail, r);
		eng->st.queued--;
		start_one(eng, r);
	}
}

void http_start(struct http_engine *eng, struct http_request *req)
{
	req->eng_ = eng;
	req->easy_ = NULL;
	req->next_ = req->prev_ = NULL;
	if (!req->done)
		abort();                       /* nobody to tell: a programming error */
	if (eng->closing) {
		finish_later(eng, req, S3G_ESHUTDOWN);
		return;
	}
	if (!req->url || !req->method || req->n_headers > HTTP_MAX_HEADERS || (req->n_headers && !req->headers) ||
	    (req->body_len && !req->body)) {
		finish_later(eng, req, S3G_EINVAL);
		return;
	}
	req->state_ = HTTP_REQ_QUEUED;
	list_push_tail(&eng->q_head, &eng->q_tail, req);
	eng->st.queued++;
	/* curl_multi_add_handle only arms the timer; nothing completes here. */
	start_transfers(eng);
}

static void active_remove(struct http_engine *eng, struct http_request *req)
{
	list_unlink(&eng->active, NULL, req);
	curl_multi_remove_handle(eng->multi, req->easy_->curl);
	eng->st.in_flight--;
}

void http_cancel(struct http_request *req)
{
	struct http_engine *eng = req->eng_;

	if (!eng)
		return;
	switch (req->state_) {
	case HTTP_REQ_QUEUED:
		list_unlink(&eng->q_head, &eng->q_tail, req);
		eng->st.queued--;
		finish_later(eng, req, S3G_ECANCELLED);
		break;
	case HTTP_REQ_ACTIVE: {
		struct http_easy *e = req->easy_;

		active_remove(eng, req);
		easy_put(eng, e);
		finish_later(eng, req, S3G_ECANCELLED);
		start_transfers(eng);
		break;
	}
	default:
		break;
	}
}

static int map_result(const struct http_easy *e, CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return S3G_ETIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return S3G_ETOOBIG;
	case CURLE_WRITE_ERROR:
		return e->too_big ? S3G_ETOOBIG : S3G_ETRANSPORT;
	default:
		return e->too_big ? S3G_ETOOBIG : S3G_ETRANSPORT;
	}
}

static void check_done(struct http_engine *eng)
{
	CURLMsg *m;
	int left;

	while (!eng->curl_gone && (m = curl_multi_info_read(eng->multi, &left))) {
		struct http_easy *e;
		struct http_request *req;
		char *priv = NULL;
		struct http_response resp;
		long code = 0, nconn = 0;
		int status;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		e = (struct http_easy *)(void *)priv;
		req = e->req;
		status = map_result(e, m->data.result);
		memset(&resp, 0, sizeof(resp));
		resp.transport_code = (int)m->data.result;
		if (status == 0)
			curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(e->curl, CURLINFO_NUM_CONNECTS, &nconn);
		eng->st.connections += (uint64_t)nconn;
		resp.code = code;
		resp.body = &e->body;
		resp.error = status == 0 ? empty_str
					 : (e->errbuf[0] ? e->errbuf : curl_easy_strerror(m->data.result));
		resp.headers_ = e->hdrs.data;
		resp.headers_len_ = e->hdrs.len;
		/* m is invalid after remove_handle. */
		active_remove(eng, req);
		req->easy_ = NULL;
		req->state_ = HTTP_REQ_IDLE;
		if (status == 0)
			eng->st.completed++;
		else
			eng->st.failed++;
		req->done(req, status, &resp);
		easy_put(eng, e);
		start_transfers(eng);
	}
}

/* ---- engine ---- */

void http_engine_opts_default(struct http_engine_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_in_flight = 64;
	o->timeout_ms = 30000;
	o->connect_timeout_ms = 10000;
	o->max_response = 16 * 1024 * 1024;
	o->max_headers = 64 * 1024;
}

static void handle_closed(uv_handle_t *h)
{
	struct http_engine *eng = h->data;

	eng->handles_open--;
	maybe_finish_close(eng);
}

int http_engine_new(uv_loop_t *loop, const struct http_engine_opts *opts, struct http_engine **ret_eng)
{
	struct http_engine *eng;
	struct http_engine_opts d;
	const char *ca;

	http_engine_opts_default(&d);
	if (!opts)
		opts = &d;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return S3G_ETRANSPORT;
	eng = x_calloc(1, sizeof(*eng));
	eng->loop = loop;
	eng->opts = *opts;
	if (!eng->opts.max_in_flight)
		eng->opts.max_in_flight = d.max_in_flight;
	if (!eng->opts.max_connections)
		eng->opts.max_connections = eng->opts.max_in_flight;
	if (!eng->opts.timeout_ms)
		eng->opts.timeout_ms = d.timeout_ms;
	if (!eng->opts.connect_timeout_ms)
		eng->opts.connect_timeout_ms = d.connect_timeout_ms;
	if (!eng->opts.max_response)
		eng->opts.max_response = d.max_response;
	if (!eng->opts.max_headers)
		eng->opts.max_headers = d.max_headers;
	ca = opts->ca_file ? opts->ca_file : getenv("AWS_CA_BUNDLE");
	eng->ca_file = ca && ca[0] ? x_strdup(ca) : NULL;
	eng->user_agent = opts->user_agent ? x_strdup(opts->user_agent) : x_strdup("s3grantd/" S3G_VERSION);
	eng->ua_line = x_asprintf("User-Agent: %s", eng->user_agent);
	proxy_resolve(eng);
	eng->opts.ca_file = eng->ca_file;
	eng->opts.user_agent = eng->user_agent;

	eng->multi = curl_multi_init();
	if (!eng->multi) {
		x_free(eng->ca_file);
		x_free(eng->user_agent);
		x_free(eng->ua_line);
		x_free(eng->proxy_http);
		x_free(eng->proxy_https);
		x_free(eng->no_proxy);
		x_free(eng);
		curl_global_cleanup();
		return S3G_ETRANSPORT;
	}
	curl_multi_setopt(eng->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(eng->multi, CURLMOPT_SOCKETDATA, eng);
	curl_multi_setopt(eng->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
	curl_multi_setopt(eng->multi, CURLMOPT_TIMERDATA, eng);
	curl_multi_setopt(eng->multi, CURLMOPT_MAXCONNECTS, (long)eng->opts.max_connections);

	uv_timer_init(loop, &eng->timer);
	eng->timer.data = eng;
	uv_idle_init(loop, &eng->defer);
	eng->defer.data = eng;
	eng->handles_open = 2;
	*ret_eng = eng;
	return 0;
}

static void maybe_finish_close(struct http_engine *eng)
{
	if (!eng->closing || eng->pend_head || eng->defer_active)
		return;
	if (!eng->curl_gone) {
		struct http_easy *e;

		eng->curl_gone = 1;
		/* May call on_socket(REMOVE) for open connections. */
		curl_multi_cleanup(eng->multi);
		eng->multi = NULL;
		for (size_t fd = 0; fd < eng->fdcap; fd++)
			sock_drop(eng, (curl_socket_t)fd);
		X_FREE(eng->fdtab);
		eng->fdcap = 0;
		while ((e = eng->free_easies)) {
			eng->free_easies = e->next_free;
			easy_destroy(e);
		}
		uv_timer_stop(&eng->timer);
		uv_close((uv_handle_t *)&eng->timer, handle_closed);
		uv_close((uv_handle_t *)&eng->defer, handle_closed);
		return;
	}
	if (eng->handles_open == 0 && eng->close_cb) {
		http_engine_close_cb cb = eng->close_cb;

		eng->close_cb = NULL;
		curl_global_cleanup();
		cb(eng, eng->close_user);
	}
}

void http_engine_close(struct http_engine *eng, http_engine_close_cb cb, void *user)
{
	struct http_request *r;

	if (!eng || eng->closing)
		return;
	eng->closing = 1;
	eng->close_cb = cb;
	eng->close_user = user;
	while ((r = eng->q_head)) {
		list_unlink(&eng->q_head, &eng->q_tail, r);
		eng->st.queued--;
		finish_later(eng, r, S3G_ECANCELLED);
	}
	while ((r = eng->active)) {
		struct http_easy *e = r->easy_;

		active_remove(eng, r);
		easy_put(eng, e);
		finish_later(eng, r, S3G_ECANCELLED);
	}
	/* The rest happens on the next pass (never inside the caller's stack). */
	defer_kick(eng);
}

void http_engine_free(struct http_engine *eng)
{
	if (!eng)
		return;
	x_free(eng->ca_file);
	x_free(eng->user_agent);
	x_free(eng->ua_line);
	x_free(eng->proxy_http);
	x_free(eng->proxy_https);
	x_free(eng->no_proxy);
	x_free(eng);
}

void http_engine_stats(const struct http_engine *eng, struct http_stats *ret)
{
	*ret = eng->st;
}
