/* canned_server.h — the benches' minimal keep-alive HTTP/1.1 server.
 *
 * canned_server_fork() forks a child that listens on 127.0.0.1:0 (libuv)
 * and answers every request (a header block ending in a blank line; the
 * benches' bodies hold none) with the same response, pipelining answers
 * when several requests arrive in one read. The child's CPU is not counted
 * in the parent's getrusage. Returns the child's pid (stop it with SIGTERM
 * and waitpid) and its port in *ret_port, or -1. The response must stay
 * valid in the parent until the fork (the child inherits the memory).
 * Header-only: bench programs are single files.
 */
#pragma once
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

static const char *canned_resp_;
static size_t canned_resp_len_;

struct canned_conn_ {
	uv_tcp_t tcp;
	int m;                        /* bytes of "\r\n\r\n" matched */
};

static void canned_alloc_(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	(void)h;
	(void)sz;
	b->base = malloc(65536);
	b->len = b->base ? 65536 : 0;
}

static void canned_closed_(uv_handle_t *h)
{
	free(h->data);
}

static void canned_written_(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void canned_read_(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct canned_conn_ *c = s->data;
	static const char end[] = "\r\n\r\n";
	size_t count = 0;

	for (ssize_t i = 0; i < n; i++) {
		char ch = b->base[i];

		if (ch == end[c->m])
			c->m++;
		else
			c->m = ch == '\r';
		if (c->m == 4) {
			count++;
			c->m = 0;
		}
	}
	free(b->base);
	if (n < 0) {
		uv_close((uv_handle_t *)s, canned_closed_);
		return;
	}
	if (count) {
		char *out = malloc(count * canned_resp_len_);
		uv_write_t *w = malloc(sizeof(*w));
		uv_buf_t wb = uv_buf_init(out, (unsigned)(count * canned_resp_len_));

		for (size_t i = 0; i < count; i++)
			memcpy(out + i * canned_resp_len_, canned_resp_, canned_resp_len_);
		w->data = out;
		if (uv_write(w, s, &wb, 1, canned_written_) < 0) {
			free(out);
			free(w);
		}
	}
}

static void canned_conn_cb_(uv_stream_t *srv, int status)
{
	struct canned_conn_ *c = calloc(1, sizeof(*c));

	(void)status;
	uv_tcp_init(srv->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, canned_closed_);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, canned_alloc_, canned_read_);
}

static void canned_child_(int port_fd)
{
	uv_loop_t *loop = uv_default_loop();
	uv_tcp_t srv;
	struct sockaddr_in a;
	struct sockaddr_storage got;
	int len = sizeof(got), port;

	uv_tcp_init(loop, &srv);
	uv_ip4_addr("127.0.0.1", 0, &a);
	if (uv_tcp_bind(&srv, (const struct sockaddr *)&a, 0) < 0 ||
	    uv_listen((uv_stream_t *)&srv, 512, canned_conn_cb_) < 0)
		_exit(1);
	uv_tcp_getsockname(&srv, (struct sockaddr *)&got, &len);
	port = ntohs(((struct sockaddr_in *)&got)->sin_port);
	if (write(port_fd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	close(port_fd);
	uv_run(loop, UV_RUN_DEFAULT);
	_exit(0);
}

static pid_t canned_server_fork(const char *resp, size_t resp_len, int *ret_port)
{
	int pfd[2], port = 0;
	pid_t pid;

	canned_resp_ = resp;
	canned_resp_len_ = resp_len;
	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		canned_child_(pfd[1]);
	}
	close(pfd[1]);
	if (pid < 0 || read(pfd[0], &port, sizeof(port)) != sizeof(port))
		port = 0;
	close(pfd[0]);
	*ret_port = port;
	return port ? pid : -1;
}
