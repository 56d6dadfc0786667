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
static void __attribute__((format(printf, 2, 3))) bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(b, fmt, ap) < 0) {
		/* truncated */
	}
	va_end(ap);
}

static void bput(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0) {
		/* truncated */
	}
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
			bprintf(&b, "%s", "<redacted>");
			cur = hit + sl;
			hit = strstr(cur, lg.secrets[i]);
		}
		bprintf(&b, "%s", cur);
		x_free(out);
		out = buf_steal(&b);
	}
	return out;
}

static bool needs_quotes(const char *v)
{
	if (!*v)
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
			return true;
	return false;
}

static void logfmt_value(struct buf *b, const char *v)
{
	if (!needs_quotes(v)) {
		bprintf(b, "%s", v);
		return;
	}
	bprintf(b, "%s", "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		switch (*p) {
		case '"': bprintf(b, "%s", "\\\""); break;
		case '\\': bprintf(b, "%s", "\\\\"); break;
		case '\n': bprintf(b, "%s", "\\n"); break;
		case '\r': bprintf(b, "%s", "\\r"); break;
		case '\t': bprintf(b, "%s", "\\t"); break;
		default:
			if (*p < ' ' || *p == 0x7f)
				bprintf(b, "\\x%02x", *p);
			else
				bput(b, p, 1);
		}
	}
	bprintf(b, "%s", "\"");
}

static void write_stderr(enum log_level l, const char *msg, const struct log_field *f, size_t nf)
{
	struct buf b;
	struct timespec ts;
	struct tm tm;
	char tbuf[32];
	const char *p;
	size_t left;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_init(&b, LOG_MAX_LINE);
	bprintf(&b, "ts=%s.%03ldZ level=%s msg=", tbuf, ts.tv_nsec / 1000000, log_level_name(l));
	logfmt_value(&b, msg);
	for (size_t i = 0; i < nf; i++) {
		bprintf(&b, " %s=", f[i].key);
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

static void write_journal(enum log_level l, const char *msgid, const char *msg,
			  const struct log_field *f, size_t nf)
{
	struct iovec iov[LOG_MAX_FIELDS + 4];
	char *own[LOG_MAX_FIELDS + 4];
	int n = 0;

	own[n] = x_asprintf("PRIORITY=%d", (int)l);
	n++;
	own[n] = x_asprintf("MESSAGE=%s", msg);
	n++;
	own[n] = x_asprintf("SYSLOG_IDENTIFIER=%s", lg.ident);
	n++;
	if (msgid) {
		own[n] = x_asprintf("MESSAGE_ID=%s", msgid);
		n++;
	}
	for (size_t i = 0; i < nf; i++) {
		char *s = x_asprintf("%s=%s", f[i].key, f[i].value);

		/* Journal field names: uppercase letters, digits, underscore. */
		for (char *p = s; *p != '='; p++)
			*p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
		own[n++] = s;
	}
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = own[i];
		iov[i].iov_len = strlen(own[i]);
	}
	(void)lg.journal(iov, n);
	for (int i = 0; i < n; i++)
		x_free(own[i]);
}

/* The message, cut at LOG_MAX_LINE. */
static char *__attribute__((format(printf, 1, 0))) format_bounded(const char *fmt, va_list ap)
{
	va_list ap2;
	int n;
	char *m;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return x_strdup("(unformattable message)");
	if (n > LOG_MAX_LINE)
		n = LOG_MAX_LINE;
	m = x_malloc((size_t)n + 1);
	vsnprintf(m, (size_t)n + 1, fmt, ap);
	return m;
}

void log_write(enum log_level l, const char *msgid, const struct log_field *fields,
	       const char *fmt, ...)
{
	struct log_field f[LOG_MAX_FIELDS];
	char *fscrub[LOG_MAX_FIELDS];
	char *msg, *mscrub;
	size_t nf = 0;
	va_list ap;

	if (!log_enabled(l))
		return;
	va_start(ap, fmt);
	msg = format_bounded(fmt, ap);
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
	x_free(msg);
}
