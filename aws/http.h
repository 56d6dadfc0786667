/* http.h — asynchronous HTTP/1.1 over TLS on a libuv loop (libcurl multi).
 *
 * One struct http_engine per loop: it drives a curl multi handle from
 * exactly one uv_poll_t per socket and one uv_timer_t, keeps a bounded cache
 * of keep-alive connections, runs at most max_in_flight transfers and queues
 * the rest FIFO inside the engine. A connection's poll handle is stopped
 * while the connection idles in the cache and closed (epoll entry removed)
 * before curl closes the socket (curl's open/close socket callbacks). Easy
 * handles and their buffers are reused from a free list. curl's own SigV4
 * is not used; callers send signed headers. Single-threaded: call
 * everything from the loop thread.
 *
 * TLS peer and host verification is always on. The CA bundle is ca_file, or
 * $AWS_CA_BUNDLE when ca_file is NULL, or the system default. Proxies come
 * from the environment by curl's rules (http_proxy for http://; https_proxy
 * or HTTPS_PROXY for https://; else all_proxy or ALL_PROXY; minus the hosts
 * in no_proxy or NO_PROXY), read once by http_engine_new().
 *
 * Requests are owned by the caller (usually embedded in an AWS operation):
 *   - fill the public fields, call http_start(); the request, its url and
 *     body must stay alive and unchanged until the done callback (the body
 *     is BORROWED, never copied); method, url and header lines are copied
 *     when the transfer starts, but keep them alive until done as well
 *     (a request may wait in the queue);
 *   - the done callback fires exactly once per http_start(), never from
 *     inside http_start()/http_cancel()/http_engine_close() (early errors and
 *     cancellations are delivered on a later loop pass);
 *   - after the callback returns the engine no longer touches the request:
 *     the callback may free it, restart it (http_start), start or cancel
 *     others, or http_engine_close() the engine (but not free it).
 *     The response (body, headers) is valid only during the callback; keep
 *     the body with buf_steal(resp->body).
 *
 * status is 0 when an HTTP response arrived (any code), else S3G_ETRANSPORT
 * (DNS, connect, TLS, reset, malformed URL), S3G_ETIMEOUT (timeout_ms
 * passed; the clock starts when the transfer leaves the queue), S3G_ETOOBIG
 * (body or headers over their limit; the transfer is aborted),
 * S3G_ECANCELLED (http_cancel), S3G_ESHUTDOWN (started while closing) or
 * S3G_EINVAL (missing url/method, too many headers).
 *
 * http_engine_close() cancels everything (callbacks with S3G_ECANCELLED),
 * closes every handle and then calls its close callback; only from then on
 * may the owner http_engine_free() the engine. Nothing here logs.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "core/err.h"

#define HTTP_MAX_HEADERS 48          /* request header lines */

struct http_engine;
struct http_request;
struct http_easy;

struct http_response {
	long code;                   /* HTTP status; 0 when none arrived */
	struct buf *body;            /* never NULL; may be buf_steal()-ed in the callback */
	const char *error;           /* transport detail (curl's text), "" when none */
	int transport_code;          /* CURLcode, 0 when none */
	const char *headers_;        /* private: "Name: value\0" lines */
	size_t headers_len_;         /* private */
};

/* Value of the (last) response header `name` (case-insensitive), trimmed
 * and NUL-terminated, or NULL. */
const char *http_response_header(const struct http_response *resp, const char *name);

typedef void (*http_done_cb)(struct http_request *req, int status, const struct http_response *resp);
typedef void (*http_engine_close_cb)(struct http_engine *eng, void *user);

enum http_req_state {
	HTTP_REQ_IDLE,               /* not started, or finished */
	HTTP_REQ_QUEUED,             /* waiting for an in-flight slot */
	HTTP_REQ_ACTIVE,             /* a curl transfer is running */
	HTTP_REQ_PENDING,            /* finished early; the callback is due on a later pass */
	HTTP_REQ_STATE_MAX
};

const char *http_req_state_name(enum http_req_state s);

struct http_request {
	/* Set by the caller. */
	const char *method;          /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	const char *url;             /* http:// or https:// only */
	const char *const *headers;  /* "Name: value" lines (no CR/LF), n_headers of them */
	size_t n_headers;            /* <= HTTP_MAX_HEADERS */
	const void *body;            /* borrowed until done; NULL with body_len 0 = none */
	size_t body_len;
	uint64_t timeout_ms;         /* whole transfer; 0 = engine default */
	size_t max_response;         /* body limit in bytes; 0 = engine default */
	http_done_cb done;
	void *user;

	/* Private to the engine. */
	struct http_engine *eng_;
	struct http_request *next_, *prev_;
	struct http_easy *easy_;
	int state_;
	int status_;
};

struct http_engine_opts {
	unsigned max_in_flight;      /* concurrent transfers (default 64) */
	unsigned max_connections;    /* idle+busy connection cache (default max_in_flight) */
	uint64_t timeout_ms;         /* default per-request timeout (default 30000) */
	uint64_t connect_timeout_ms; /* default 10000 */
	size_t max_response;         /* default body limit (default 16 MiB) */
	size_t max_headers;          /* response header bytes (default 64 KiB) */
	const char *ca_file;         /* NULL: $AWS_CA_BUNDLE or the system store */
	const char *user_agent;      /* NULL: "s3grantd/<version>" */
};

/* Defaults as documented above. */
void http_engine_opts_default(struct http_engine_opts *o);

int http_engine_new(uv_loop_t *loop, const struct http_engine_opts *opts, struct http_engine **ret_eng) S3G_WUR;
/* Begin shutdown; cb fires once every handle is closed. Idempotent. */
void http_engine_close(struct http_engine *eng, http_engine_close_cb cb, void *user);
/* Only after the close callback (or if the loop never ran since new). NULL is fine. */
void http_engine_free(struct http_engine *eng);

void http_start(struct http_engine *eng, struct http_request *req);
/* The request finishes with S3G_ECANCELLED on a later pass; no-op when it
 * is not running or queued (e.g. already finished). */
void http_cancel(struct http_request *req);

struct http_stats {
	uint64_t in_flight;          /* transfers running now */
	uint64_t queued;             /* waiting for a slot now */
	uint64_t completed;          /* finished with an HTTP response (any code) */
	uint64_t failed;             /* finished with a negative status (cancellations included) */
	uint64_t cancelled;          /* of which cancelled */
	uint64_t connections;        /* new connections opened (reuse = completed - connections) */
};

void http_engine_stats(const struct http_engine *eng, struct http_stats *ret);
