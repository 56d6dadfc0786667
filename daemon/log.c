#include "daemon/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "core/buf.h"
#include "core/xalloc.h"

/* Bounded text assembly: past the buffer's limit the text is truncated,
 * which is the intended behaviour for log and status lines. */
static void bput(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0) {
		/* truncated */
	}
}

static void bputs(struct buf *b, const char *s)
{
	bput(b, s, strlen(s));
}

#define LOG_MAX_LINE (64 * 1024)  /* one entry, fields included */
#define LOG_MAX_FIELDS 32

static struct {
	enum log_level level;
	enum log_sink sink;
	char ident[64];
	char **secrets;           /* longest first */
	size_t nsecrets;
	log_journal_cb journal;
} lg = { LOG_LEVEL_INFO, LOG_SINK_STDERR, "s3grantd", NULL, 0, NULL };

static const char *const level_names[LOG_LEVEL_MAX] = {
	[LOG_LEVEL_ERR] = "err",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const char *const sink_names[LOG_SINK_MAX] = {
	[LOG_SINK_STDERR] = "stderr",
	[LOG_SINK_JOURNAL] = "journal",
};

const char *log_level_name(enum log_level l)
{
	return (unsigned)l < LOG_LEVEL_MAX && level_names[l] ? level_names[l] : "?";
}

int log_level_parse(const char *name)
{
	for (int l = 0; l < LOG_LEVEL_MAX; l++)
		if (level_names[l] && strcmp(level_names[l], name) == 0)
			return l;
	return -1;
}

const char *log_sink_name(enum log_sink s)
{
	return (unsigned)s < LOG_SINK_MAX ? sink_names[s] : "?";
}

static int default_journal(const struct iovec *iov, int n)
{
	return sd_journal_sendv(iov, n);
}

/* systemd sets JOURNAL_STREAM=dev:ino of the stream it connected to stdout
 * and stderr; only if stderr is still that stream do we talk to journald. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident)
{
	snprintf(lg.ident, sizeof(lg.ident), "%s", ident);
	lg.sink = stderr_is_journal() ? LOG_SINK_JOURNAL : LOG_SINK_STDERR;
	if (!lg.journal)
		lg.journal = default_journal;
}

void log_set_level(enum log_level l)
{
	lg.level = l;
}

enum log_level log_get_level(void)
{
	return lg.level;
}

enum log_sink log_get_sink(void)
{
	return lg.sink;
}

void log_set_sink(enum log_sink s)
{
	lg.sink = s;
}

void log_set_journal_sender(log_journal_cb cb)
{
	lg.journal = cb ? cb : default_journal;
}

static int by_length_desc(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? 1 : la > lb ? -1 : 0;
}

void log_set_secrets(const char *const *v, size_t n)
{
	for (size_t i = 0; i < lg.nsecrets; i++)
		x_free(lg.secrets[i]);
	X_FREE(lg.secrets);
	lg.nsecrets = 0;
	if (!n)
		return;
	lg.secrets = x_calloc(n, sizeof(*lg.secrets));
	for (size_t i = 0; i < n; i++)
		if (v[i] && *v[i])
			lg.secrets[lg.nsecrets++] = x_strdup(v[i]);
	qsort(lg.secrets, lg.nsecrets, sizeof(*lg.secrets), by_length_desc);
}

const char *log_int(char *buf, size_t n, long long v)
{
	snprintf(buf, n, "%lld", v);
	return buf;
}

/* A copy of s with every registered secret replaced; NULL when none occurs
 * (the caller then uses s as is). */
static char *scrub(const char *s)
{
	char *out = NULL;

	for (size_t i = 0; i < lg.nsecrets; i++) {
		const char *cur = out ? out : s, *hit = strstr(cur, lg.secrets[i]);
		size_t sl = strlen(lg.secrets[i]);
		struct buf b;

		if (!hit)
			continue;
		buf_init(&b, 0);
		while (hit) {
			bput(&b, cur, (size_t)(hit - cur));
			bputs(&b, "<redacted>");
			cur = hit + sl;
			hit = strstr(cur, lg.secrets[i]);
		}
		bputs(&b, cur);
		x_free(out);
		out = buf_steal(&b);
	}
	return out;
}

static bool needs_quote(unsigned char c)
{
	return c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f;
}

/* A value as logfmt: bare when it can be, else quoted with its specials
 * escaped. Plain runs go in with one copy each (a line per grant change
 * makes this a hot path in a large reconcile). */
static void logfmt_value(struct buf *b, const char *v)
{
	const unsigned char *p = (const unsigned char *)v, *run;

	while (*p && !needs_quote(*p))
		p++;
	if (!*p && p != (const unsigned char *)v) {
		bput(b, v, (size_t)(p - (const unsigned char *)v));
		return;
	}
	bput(b, "\"", 1);
	for (p = run = (const unsigned char *)v;; p++) {
		unsigned char c = *p;
		char hex[5];

		if (c && c >= ' ' && c != '"' && c != '\\' && c != 0x7f)
			continue;
		bput(b, run, (size_t)(p - run));
		run = p + 1;
		switch (c) {
		case '\0': bput(b, "\"", 1); return;
		case '"': bputs(b, "\\\""); break;
		case '\\': bputs(b, "\\\\"); break;
		case '\n': bputs(b, "\\n"); break;
		case '\r': bputs(b, "\\r"); break;
		case '\t': bputs(b, "\\t"); break;
		default:
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			bputs(b, hex);
		}
	}
}

/* "YYYY-MM-DDTHH:MM:SS" of t, formatted once a second per thread. */
static const char *utc_second(time_t t)
{
	static __thread time_t last = (time_t)-1;
	static __thread char text[32];

	if (t != last) {
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
		last = t;
	}
	return text;
}

static void write_stderr(enum log_level l, const char *msg, const struct log_field *f, size_t nf)
{
	struct buf b;
	struct timespec ts;
	char ms[8];
	const char *p;
	size_t left;
	long m;

	clock_gettime(CLOCK_REALTIME, &ts);
	m = ts.tv_nsec / 1000000;
	ms[0] = '.';
	ms[1] = (char)('0' + m / 100);
	ms[2] = (char)('0' + m / 10 % 10);
	ms[3] = (char)('0' + m % 10);
	ms[4] = 'Z';
	buf_init(&b, LOG_MAX_LINE);
	if (buf_reserve(&b, 512) < 0) {
		/* cannot happen: 512 is below the limit */
	}
	bputs(&b, "ts=");
	bputs(&b, utc_second(ts.tv_sec));
	bput(&b, ms, 5);
	bputs(&b, " level=");
	bputs(&b, log_level_name(l));
	bputs(&b, " msg=");
	logfmt_value(&b, msg);
	for (size_t i = 0; i < nf; i++) {
		bput(&b, " ", 1);
		bputs(&b, f[i].key);
		bput(&b, "=", 1);
		logfmt_value(&b, f[i].value);
	}
	if (buf_puts(&b, "\n") < 0) {  /* over the limit: end the line anyway */
		b.data[b.len - 1] = '\n';
	}
	p = buf_str(&b);
	left = b.len;
	while (left) {
		ssize_t n = write(STDERR_FILENO, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	buf_free(&b);
}

/* One "KEY=value" journal field appended to b: its offset and length. */
struct jfield {
	size_t off, len;
};

static void journal_field(struct buf *b, struct jfield *jf, const char *key, bool fold, const char *value)
{
	jf->off = b->len;
	bputs(b, key);
	if (fold) {
		/* Journal field names: uppercase letters, digits, underscore. */
		for (char *k = b->data + jf->off; *k; k++)
			*k = isalnum((unsigned char)*k) ? (char)toupper((unsigned char)*k) : '_';
	}
	bput(b, "=", 1);
	bputs(b, value);
	jf->len = b->len - jf->off;
}

/* All fields of the entry in one buffer (no allocation per field), then
 * one sd_journal_sendv. */
static void write_journal(enum log_level l, const char *msgid, const char *msg,
			  const struct log_field *f, size_t nf)
{
	struct iovec iov[LOG_MAX_FIELDS + 4];
	struct jfield jf[LOG_MAX_FIELDS + 4];
	char prio[4] = { (char)('0' + (int)l), '\0' };
	struct buf b;
	int n = 0;

	buf_init(&b, 0);
	if (buf_reserve(&b, 1024) < 0) {
		/* cannot happen: no limit */
	}
	journal_field(&b, &jf[n++], "PRIORITY", false, prio);
	journal_field(&b, &jf[n++], "MESSAGE", false, msg);
	journal_field(&b, &jf[n++], "SYSLOG_IDENTIFIER", false, lg.ident);
	if (msgid)
		journal_field(&b, &jf[n++], "MESSAGE_ID", false, msgid);
	for (size_t i = 0; i < nf; i++)
		journal_field(&b, &jf[n++], f[i].key, true, f[i].value);
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = b.data + jf[i].off;
		iov[i].iov_len = jf[i].len;
	}
	(void)lg.journal(iov, n);
	buf_free(&b);
}

/* The message, cut at LOG_MAX_LINE: in sbuf (n bytes) when it fits, which
 * is nearly always, else in a heap copy the caller frees. */
static char *__attribute__((format(printf, 3, 0))) format_bounded(char *sbuf, size_t n, const char *fmt,
								   va_list ap)
{
	va_list ap2;
	int len;
	char *m;

	va_copy(ap2, ap);
	len = vsnprintf(sbuf, n, fmt, ap2);
	va_end(ap2);
	if (len < 0)
		return x_strdup("(unformattable message)");
	if ((size_t)len < n)
		return sbuf;
	if (len > LOG_MAX_LINE)
		len = LOG_MAX_LINE;
	m = x_malloc((size_t)len + 1);
	vsnprintf(m, (size_t)len + 1, fmt, ap);
	return m;
}

void log_write(enum log_level l, const char *msgid, const struct log_field *fields,
	       const char *fmt, ...)
{
	struct log_field f[LOG_MAX_FIELDS];
	char *fscrub[LOG_MAX_FIELDS];
	char sbuf[256];
	char *msg, *mscrub;
	size_t nf = 0;
	va_list ap;

	if (!log_enabled(l))
		return;
	va_start(ap, fmt);
	msg = format_bounded(sbuf, sizeof(sbuf), fmt, ap);
	va_end(ap);
	mscrub = scrub(msg);
	for (size_t i = 0; fields && fields[i].key && nf < LOG_MAX_FIELDS; i++) {
		if (!fields[i].value)
			continue;
		fscrub[nf] = scrub(fields[i].value);
		f[nf].key = fields[i].key;
		f[nf].value = fscrub[nf] ? fscrub[nf] : fields[i].value;
		nf++;
	}
	if (lg.sink == LOG_SINK_JOURNAL)
		write_journal(l, msgid, mscrub ? mscrub : msg, f, nf);
	else
		write_stderr(l, mscrub ? mscrub : msg, f, nf);
	for (size_t i = 0; i < nf; i++)
		x_free(fscrub[i]);
	x_free(mscrub);
	if (msg != sbuf)
		x_free(msg);
}
