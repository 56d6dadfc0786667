/* log.h — the daemon's logger: levels, structured fields, two sinks.
 *
 * Only daemon/ logs (library layers return status). A line is a message
 * (printf-checked) plus key=value fields. The level is tested before any
 * formatting (the macros below), so a debug line costs one compare.
 *
 * Sinks: when JOURNAL_STREAM names stderr's dev:ino (systemd connected
 * stderr to journald) entries go natively to the journal with PRIORITY,
 * MESSAGE, MESSAGE_ID (key events), SYSLOG_IDENTIFIER and each field as an
 * uppercase journal field; otherwise one logfmt line per entry on stderr:
 *   ts=2024-05-01T10:00:00.123Z level=info msg="ready" db="host=/tmp"
 * The journal sender is pluggable (log_set_journal_sender) for tests.
 *
 * Secrets: log_set_secrets() registers strings (sensitive config values,
 * the password inside the conninfo) that are replaced by "<redacted>"
 * wherever they occur in a message or field value, in both sinks. Callers
 * still never log a raw secret; this is the safety net.
 *
 * Loop-thread only; no allocation failure paths (x_* abort on OOM).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Values are the syslog priorities. */
enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
	LOG_LEVEL_MAX
};

enum log_sink {
	LOG_SINK_STDERR,
	LOG_SINK_JOURNAL,
	LOG_SINK_MAX
};

struct log_field {
	const char *key;    /* lowercase snake_case; journal gets it uppercased */
	const char *value;  /* NULL fields are skipped */
};

/* MESSAGE_IDs of key events (journalctl MESSAGE_ID=...). */
#define LOG_MID_STARTED       "7b3b1c9e5f0a4d8e9a52d3c1e0f4a601"
#define LOG_MID_READY         "7b3b1c9e5f0a4d8e9a52d3c1e0f4a602"
#define LOG_MID_RELOAD        "7b3b1c9e5f0a4d8e9a52d3c1e0f4a603"
#define LOG_MID_RELOAD_FAILED "7b3b1c9e5f0a4d8e9a52d3c1e0f4a604"
#define LOG_MID_STOPPING      "7b3b1c9e5f0a4d8e9a52d3c1e0f4a605"
#define LOG_MID_STOPPED       "7b3b1c9e5f0a4d8e9a52d3c1e0f4a606"
#define LOG_MID_DB_CONNECTED  "7b3b1c9e5f0a4d8e9a52d3c1e0f4a607"
#define LOG_MID_DB_LOST       "7b3b1c9e5f0a4d8e9a52d3c1e0f4a608"
#define LOG_MID_CONFIG        "7b3b1c9e5f0a4d8e9a52d3c1e0f4a609"
#define LOG_MID_EXPORT_OK     "7b3b1c9e5f0a4d8e9a52d3c1e0f4a610"
#define LOG_MID_EXPORT_FAILED "7b3b1c9e5f0a4d8e9a52d3c1e0f4a611"

/* A NULL-terminated field list: LOG_FIELDS({"db", desc}, {"attempt", n}). */
#define LOG_FIELDS(...) ((const struct log_field[]){ __VA_ARGS__, { NULL, NULL } })
#define LOG_NO_FIELDS NULL

const char *log_level_name(enum log_level l);
/* "debug", "info", ...; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_sink_name(enum log_sink s);

/* Pick the sink from JOURNAL_STREAM and stderr; set the identifier. */
void log_init(const char *ident);
void log_set_level(enum log_level l);
enum log_level log_get_level(void);
enum log_sink log_get_sink(void);
void log_set_sink(enum log_sink s);
/* Replace the registered secrets (strings are copied). */
void log_set_secrets(const char *const *v, size_t n);

/* The journal sender: sd_journal_sendv by default. Returns 0 or -errno. */
typedef int (*log_journal_cb)(const struct iovec *iov, int n);
void log_set_journal_sender(log_journal_cb cb);

static inline bool log_enabled(enum log_level l)
{
	return l <= log_get_level();
}

/* Write one entry. Use the macros; they test the level first. */
void log_write(enum log_level l, const char *msgid, const struct log_field *fields,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define LOG_AT_(l, msgid, fields, ...) \
	do { if (log_enabled(l)) log_write(l, msgid, fields, __VA_ARGS__); } while (0)
#define log_err(msgid, fields, ...)     LOG_AT_(LOG_LEVEL_ERR, msgid, fields, __VA_ARGS__)
#define log_warning(msgid, fields, ...) LOG_AT_(LOG_LEVEL_WARNING, msgid, fields, __VA_ARGS__)
#define log_notice(msgid, fields, ...)  LOG_AT_(LOG_LEVEL_NOTICE, msgid, fields, __VA_ARGS__)
#define log_info(msgid, fields, ...)    LOG_AT_(LOG_LEVEL_INFO, msgid, fields, __VA_ARGS__)
#define log_debug(msgid, fields, ...)   LOG_AT_(LOG_LEVEL_DEBUG, msgid, fields, __VA_ARGS__)

/* Format a number into a caller buffer, for fields. */
const char *log_int(char *buf, size_t n, long long v);
