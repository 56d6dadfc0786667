/* latency_front — a TCP front that gives a server an exact answer time.
 *
 *   latency_front UPSTREAM_PORT LATENCY_MS PORT_FILE
 *
 * Listens on 127.0.0.1 (an ephemeral port, written to PORT_FILE atomically)
 * and relays each connection to 127.0.0.1:UPSTREAM_PORT, one upstream
 * connection per client connection. Request bytes go through at once; the
 * answer to a request is handed to the client LATENCY_MS after the request's
 * first bytes were read here — never earlier, and late only by this loop's
 * own delay (a timerfd on CLOCK_MONOTONIC, nanosecond resolution) or when
 * the upstream answers later than that.
 *
 * Why: the benches want "the fake at 10 ms" to mean a server that answers
 * 10 ms after the request arrives, as the 6,400/s bound (64 in flight / 10 ms)
 * assumes. The S3 Control fake holds answers itself from the moment its
 * JavaScript sees the request; under 5,000+ requests/s its single thread reads
 * a request 0.5-1 ms after it arrived (queued behind the work of the requests
 * before it), so its answers left 11.05 ms after the request's packet (loopback
 * capture), and no client could pass 64 / 11.05 ms = 90.5 % of the bound. Here
 * the fake runs with no latency of its own and its work happens inside the
 * 10 ms, as a real service's does.
 *
 * HTTP/1.1 without pipelining is assumed (curl and botocore send one request
 * per connection at a time): the bytes a client sends while no answer is owed
 * start a request; bytes it sends while one is owed belong to it. Bytes the
 * upstream sends belong to the request owed; those that come after the answer
 * time pass go straight through. An upstream that closes after its answer
 * (Connection: close) closes the client's connection once the answer is
 * out; a client that closes, or a reset on either side, closes both.
 *
 * SIGUSR1 prints the figures below as one JSON line and starts them afresh;
 * SIGUSR2 drops the latency to 0 for requests from then on; SIGTERM/SIGINT
 * print the figures and exit 0. The figures: requests, answers, hold_ms
 * (mean, a request's first bytes read -> its answer's first bytes handed to
 * the client), late_ms and max_late_ms (beyond LATENCY_MS), upstream_late
 * (answers the upstream gave after their time) and upstream_late_ms (their
 * share of late_ms: the rest is this loop's own delay), turnaround_ms (mean,
 * an answer handed over -> the client's next request on that connection: the
 * client's share of a round trip). Exits 1 on a setup error (stderr).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define READ_CHUNK 65536

struct buf {
	char *p;
	size_t len, cap;
};

struct side {
	int fd;
	struct buf out;               /* bytes to write to this side */
	int want_out;                 /* EPOLLOUT armed */
};

struct pair {
	struct side c, u;             /* client, upstream */
	struct buf held;              /* answer bytes waiting for their time */
	uint64_t due;                 /* answer time of the request owed, ns */
	int owed;                     /* a request is owed an answer */
	int released;                 /* its answer time has passed */
	int answered;                 /* answer bytes have gone to the client */
	int queued;                   /* on the answer-time queue */
	int up_eof;                   /* the upstream closed: close once its answer is out */
	int got_up;                   /* answer bytes came from upstream for this request */
	int late_up;                  /* ... after its answer time */
	uint64_t arrived;             /* the request's first bytes read, ns */
	uint64_t answered_at;         /* its answer's first bytes handed to the client, ns */
	int dead;
	struct pair *qnext;
};

/* epoll data: a pair's address with bit 0 telling client (0) from upstream
 * (1); the listener, the timer and the signals use small odd constants. */
enum { TAG_LISTEN = 3, TAG_TIMER = 5, TAG_SIGNAL = 7 };

static int ep, tfd;
static uint64_t latency_ns;
static struct sockaddr_in upstream;
static struct pair *q_head, *q_tail; /* answer times to come, earliest first */
static struct pair **dead;
static size_t ndead, capdead;

/* Printed as one JSON line on SIGUSR1 (then zeroed) and SIGTERM/SIGINT. */
static struct {
	uint64_t requests, answers, hold_ns, late_ns, max_late_ns, upstream_late, upstream_late_ns, turns, turn_ns;
} st;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "latency_front: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			die("realloc");
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void pair_free(struct pair *pr)
{
	free(pr->c.out.p);
	free(pr->u.out.p);
	free(pr->held.p);
	free(pr);
}

/* Freed after this batch of events, which may still name it. */
static void dead_add(struct pair *pr)
{
	if (ndead == capdead) {
		capdead = capdead ? capdead * 2 : 64;
		dead = realloc(dead, capdead * sizeof(*dead));
		if (!dead)
			die("realloc");
	}
	dead[ndead++] = pr;
}

static void pair_kill(struct pair *pr)
{
	if (pr->dead)
		return;
	pr->dead = 1;
	close(pr->c.fd);               /* also leaves the epoll set */
	close(pr->u.fd);
	dead_add(pr);                  /* kept while on the answer-time queue */
}

static void arm(struct pair *pr, struct side *s, unsigned tag)
{
	struct epoll_event ev = {.events = EPOLLIN | (s->want_out ? EPOLLOUT : 0),
				 .data.u64 = (uint64_t)(uintptr_t)pr | tag};

	if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		die("epoll_ctl MOD");
}

/* An upstream that closed (an answer with "Connection: close") takes the
 * client connection with it once that answer has been handed over. */
static void maybe_finish(struct pair *pr)
{
	if (pr->up_eof && !pr->dead && !(pr->owed && !pr->released) && !pr->held.len && !pr->c.out.len)
		pair_kill(pr);
}

/* Write what this side has queued; EPOLLOUT for the rest. */
static void flush_side(struct pair *pr, struct side *s, unsigned tag)
{
	size_t off = 0;

	while (off < s->out.len) {
		ssize_t w = send(s->fd, s->out.p + off, s->out.len - off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			pair_kill(pr);
			return;
		}
		off += (size_t)w;
	}
	memmove(s->out.p, s->out.p + off, s->out.len - off);
	s->out.len -= off;
	if (!s->want_out != !s->out.len) {
		s->want_out = s->out.len != 0;
		arm(pr, s, tag);
	}
	maybe_finish(pr);
}

static void send_to(struct pair *pr, struct side *s, unsigned tag, const char *p, size_t n)
{
	buf_add(&s->out, p, n);
	if (!s->want_out)
		flush_side(pr, s, tag);
}

static void timer_set(void)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (q_head) {
		its.it_value.tv_sec = (time_t)(q_head->due / 1000000000u);
		its.it_value.tv_nsec = (long)(q_head->due % 1000000000u);
	}
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		die("timerfd_settime");
}

static void to_client(struct pair *pr, const char *p, size_t n)
{
	if (!pr->answered && pr->owed) {
		uint64_t now = now_ns(), late = now > pr->due ? now - pr->due : 0;

		pr->answered_at = now;
		st.answers++;
		st.hold_ns += now - pr->arrived;
		st.late_ns += late;
		if (late > st.max_late_ns)
			st.max_late_ns = late;
		if (pr->late_up)
			st.upstream_late_ns += late;
	}
	pr->answered = 1;
	send_to(pr, &pr->c, 0, p, n);
}

/* Answers whose time has come go out. Called on the timer and after every
 * event: a busy loop must not keep an answer waiting behind the rest of an
 * epoll batch (each loopback send costs this thread the receiver's TCP work). */
static void release_due(void)
{
	uint64_t now;

	if (!q_head || q_head->due > (now = now_ns()))
		return;
	while (q_head && q_head->due <= now) {
		struct pair *pr = q_head;

		q_head = pr->qnext;
		if (!q_head)
			q_tail = NULL;
		pr->qnext = NULL;
		pr->queued = 0;
		if (pr->dead) {
			dead_add(pr);          /* the sweep left it while queued */
			continue;
		}
		pr->released = 1;
		if (pr->held.len) {
			to_client(pr, pr->held.p, pr->held.len);
			pr->held.len = 0;
		}
		maybe_finish(pr);
	}
	timer_set();
}

static void on_timer(void)
{
	uint64_t exp;

	if (read(tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		die("read timerfd");
	release_due();
}

/* Bytes from the client: the first after an answer began start a request. */
static void from_client(struct pair *pr, const char *p, size_t n)
{
	if (!pr->owed || (pr->released && pr->answered)) {
		uint64_t now = now_ns();

		if (pr->owed) {
			st.turns++;
			st.turn_ns += now - pr->answered_at;
		}
		st.requests++;
		pr->owed = 1;
		pr->released = 0;
		pr->answered = 0;
		pr->got_up = 0;
		pr->late_up = 0;
		pr->arrived = now;
		pr->due = now + latency_ns;
		if (!latency_ns) {
			pr->released = 1;      /* after SIGUSR2: nothing to hold */
		} else {
			/* the latency is constant: arrival order is due order */
			pr->queued = 1;
			if (q_tail)
				q_tail->qnext = pr;
			else
				q_head = pr;
			q_tail = pr;
			if (q_head == pr)
				timer_set();
		}
	}
	send_to(pr, &pr->u, 1, p, n);
}

static void from_upstream(struct pair *pr, const char *p, size_t n)
{
	if (pr->owed && !pr->got_up) {
		pr->got_up = 1;
		if (pr->released) {
			st.upstream_late++;
			pr->late_up = 1;
		}
	}
	if (pr->owed && !pr->released)
		buf_add(&pr->held, p, n);
	else
		to_client(pr, p, n);
}

static void on_readable(struct pair *pr, int up)
{
	static char chunk[READ_CHUNK];
	struct side *s = up ? &pr->u : &pr->c;

	for (;;) {
		ssize_t r = recv(s->fd, chunk, sizeof(chunk), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r == 0 && up) {
			/* The answer (if owed) still goes out at its time. */
			pr->up_eof = 1;
			if (epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL) < 0)
				die("epoll_ctl DEL");
			maybe_finish(pr);
			return;
		}
		if (r <= 0) {
			/* The client left, or a reset: nobody to answer. */
			pair_kill(pr);
			return;
		}
		if (up)
			from_upstream(pr, chunk, (size_t)r);
		else
			from_client(pr, chunk, (size_t)r);
		if (pr->dead || (size_t)r < sizeof(chunk))
			return;
	}
}

static void on_accept(int lfd)
{
	for (;;) {
		int one = 1, ufd;
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN};
		struct pair *pr;

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;                /* EAGAIN; or out of fds: the client waits */
		}
		/* a blocking connect on loopback: the upstream is there or not */
		ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (ufd < 0 || connect(ufd, (struct sockaddr *)&upstream, sizeof(upstream)) < 0 ||
		    fcntl(ufd, F_SETFL, O_NONBLOCK) < 0) {
			if (ufd >= 0)
				close(ufd);
			close(cfd);
			continue;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pr = calloc(1, sizeof(*pr));
		if (!pr)
			die("calloc");
		pr->c.fd = cfd;
		pr->u.fd = ufd;
		ev.data.u64 = (uint64_t)(uintptr_t)pr;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0)
			die("epoll_ctl ADD");
		ev.data.u64 = (uint64_t)(uintptr_t)pr | 1u;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev) < 0)
			die("epoll_ctl ADD");
	}
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void print_stats(void)
{
	double n = st.answers ? (double)st.answers : 1.0;

	printf("{\"requests\":%llu,\"answers\":%llu,\"latency_ms\":%.3f,\"hold_ms\":%.4f,\"late_ms\":%.4f,"
	       "\"max_late_ms\":%.3f,\"upstream_late\":%llu,\"upstream_late_ms\":%.4f,\"turnarounds\":%llu,"
	       "\"turnaround_ms\":%.4f}\n",
	       (unsigned long long)st.requests, (unsigned long long)st.answers, ms(latency_ns), ms(st.hold_ns) / n,
	       ms(st.late_ns) / n, ms(st.max_late_ns), (unsigned long long)st.upstream_late, ms(st.upstream_late_ns) / n,
	       (unsigned long long)st.turns, st.turns ? ms(st.turn_ns) / (double)st.turns : 0.0);
	fflush(stdout);
}

static void write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
		die(path);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct epoll_event ev, evs[MAX_EVENTS];
	sigset_t sigs;
	int lfd, sfd, one = 1;
	long up_port, lat_ms;

	if (argc != 4) {
		fprintf(stderr, "usage: latency_front UPSTREAM_PORT LATENCY_MS PORT_FILE\n");
		return 2;
	}
	up_port = strtol(argv[1], NULL, 10);
	lat_ms = strtol(argv[2], NULL, 10);
	if (up_port <= 0 || up_port > 65535 || lat_ms < 0 || lat_ms > 600000) {
		fprintf(stderr, "latency_front: UPSTREAM_PORT 1-65535, LATENCY_MS 0-600000\n");
		return 2;
	}
	latency_ns = (uint64_t)lat_ms * 1000000u;
	memset(&upstream, 0, sizeof(upstream));
	upstream.sin_family = AF_INET;
	upstream.sin_port = htons((uint16_t)up_port);
	upstream.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0)
		die("signalfd");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	if ((tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0)
		die("timerfd_create");
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) < 0)
		die("listen");
	ev.events = EPOLLIN;
	ev.data.u64 = TAG_LISTEN;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	ev.data.u64 = TAG_TIMER;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
		die("epoll_ctl");
	ev.data.u64 = TAG_SIGNAL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
		die("epoll_ctl");
	write_port_file(argv[3], ntohs(a.sin_port));

	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			struct pair *pr = (struct pair *)(uintptr_t)(d & ~(uint64_t)1);
			int up = (int)(d & 1);

			if (d == TAG_LISTEN) {
				on_accept(lfd);
				continue;
			}
			if (d == TAG_TIMER) {
				on_timer();
				continue;
			}
			if (d == TAG_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
					continue;
				if (si.ssi_signo == SIGUSR2) {
					latency_ns = 0;
					continue;
				}
				print_stats();
				if (si.ssi_signo == SIGUSR1) {
					memset(&st, 0, sizeof(st));
					continue;
				}
				return 0;
			}
			if (pr->dead)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush_side(pr, up ? &pr->u : &pr->c, (unsigned)up);
			if (!pr->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				on_readable(pr, up);
			release_due();
		}
		for (size_t k = 0; k < ndead; k++)
			if (!dead[k]->queued)
				pair_free(dead[k]);
		ndead = 0;
	}
}
