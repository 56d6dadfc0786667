/* config.h — the daemon's configuration: one declarative table of keys.
 *
 * Every key is one line of CONFIG_KEYS below: id, section, name, type,
 * default (as it would be written in the file), bounds (numbers: the integer;
 * durations: milliseconds), flags and help. Adding a key is adding a line.
 *
 * A struct config is an immutable snapshot: config_load()/config_parse()
 * build a fresh one from defaults plus the whole file, validate it whole and
 * hand it over only if there were no errors. Reload parses a new snapshot and
 * swaps the pointer (daemon/reload.c); nothing writes into a live config.
 *
 * Errors are collected, not stopped at: struct config_errors receives every
 * "file:line: key: reason" in the file (bounded at CONFIG_MAX_ERRORS).
 *
 * Keys flagged CONFIG_SENSITIVE (passwords, secret keys) are never shown:
 * config_display() returns "<redacted>" for them, and config_secrets() lists
 * their values (and the password inside a conninfo) for the logger's
 * scrubber. Keys without CONFIG_RELOAD are restart-only: on reload
 * config_carry_restart_only() keeps the running value and reports the change.
 *
 * Not thread-safe; everything runs on the loop thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

enum config_type {
	CONFIG_STRING,     /* any text up to CONFIG_MAX_VALUE bytes */
	CONFIG_INT,        /* decimal integer within [min, max] */
	CONFIG_BOOL,       /* yes/no, true/false, on/off, 1/0 */
	CONFIG_DURATION,   /* "250ms", "30s", "5m", "1h", "2d", "1h30m"; bare number = seconds */
	CONFIG_ENUM,       /* one of the '|'-separated choices */
	CONFIG_PATH,       /* empty or an absolute path */
	CONFIG_URL,        /* empty or http(s)://host[:port][/path] */
	CONFIG_TIME,       /* time of day "HH:MM" (minutes after midnight) */
	CONFIG_CONNINFO,   /* libpq conninfo or URI (checked with PQconninfoParse) */
	CONFIG_TIMEZONE,   /* empty (local time) or an IANA zone name present in zoneinfo */
	CONFIG_TYPE_MAX
};

#define CONFIG_RELOAD    0x1u  /* takes effect on SIGHUP; otherwise restart-only */
#define CONFIG_SENSITIVE 0x2u  /* value never displayed or logged */

#define CONFIG_MS_S (1000LL)
#define CONFIG_MS_M (60 * CONFIG_MS_S)
#define CONFIG_MS_H (60 * CONFIG_MS_M)
#define CONFIG_MS_D (24 * CONFIG_MS_H)

#define CONFIG_LOG_LEVELS "debug|info|notice|warning|err"

/* X(id, section, name, type, default, min, max, flags, choices, help) */
#define CONFIG_KEYS(X) \
	X(DB_CONNINFO, "database", "conninfo", CONFIG_CONNINFO, "", 0, 0, CONFIG_SENSITIVE, NULL, "libpq connection string or URI; empty = the PG* environment variables") \
	X(DB_CONNECT_TIMEOUT, "database", "connect_timeout", CONFIG_DURATION, "10s", CONFIG_MS_S, 10 * CONFIG_MS_M, CONFIG_RELOAD, NULL, "give up one connection attempt after this long") \
	X(DB_RECONNECT_MAX_BACKOFF, "database", "reconnect_max_backoff", CONFIG_DURATION, "30s", 100, CONFIG_MS_H, CONFIG_RELOAD, NULL, "cap of the exponential reconnect backoff") \
	X(DB_STATEMENT_TIMEOUT, "database", "statement_timeout", CONFIG_DURATION, "30s", 100, CONFIG_MS_H, CONFIG_RELOAD, NULL, "bound on every statement of the change-queue connection") \
	X(DAEMON_LOG_LEVEL, "daemon", "log_level", CONFIG_ENUM, "info", 0, 0, CONFIG_RELOAD, CONFIG_LOG_LEVELS, "lowest level logged") \
	X(DAEMON_SHUTDOWN_TIMEOUT, "daemon", "shutdown_timeout", CONFIG_DURATION, "30s", 0, 10 * CONFIG_MS_M, CONFIG_RELOAD, NULL, "how long SIGTERM waits for in-flight work") \
	X(DAEMON_STATUS_INTERVAL, "daemon", "status_interval", CONFIG_DURATION, "60s", CONFIG_MS_S, CONFIG_MS_D, CONFIG_RELOAD, NULL, "how often the status line is refreshed") \
	X(AWS_REGION, "aws", "region", CONFIG_STRING, "", 0, 0, 0, NULL, "default region; empty = AWS_REGION / the shared config") \
	X(AWS_CA_FILE, "aws", "ca_file", CONFIG_PATH, "", 0, 0, 0, NULL, "CA bundle for TLS to AWS; empty = system store") \
	X(AWS_ENDPOINT_URL, "aws", "endpoint_url", CONFIG_URL, "", 0, 0, 0, NULL, "endpoint for every AWS service (tests, fakes)") \
	X(AWS_ENDPOINT_URL_S3_CONTROL, "aws", "endpoint_url_s3_control", CONFIG_URL, "", 0, 0, 0, NULL, "S3 Control endpoint override") \
	X(AWS_ENDPOINT_URL_STS, "aws", "endpoint_url_sts", CONFIG_URL, "", 0, 0, 0, NULL, "STS endpoint override") \
	X(AWS_ENDPOINT_URL_S3, "aws", "endpoint_url_s3", CONFIG_URL, "", 0, 0, 0, NULL, "S3 endpoint override") \
	X(AWS_MAX_IN_FLIGHT, "aws", "max_in_flight", CONFIG_INT, "16", 1, 1024, CONFIG_RELOAD, NULL, "concurrent AWS requests") \
	X(AWS_REQUEST_TIMEOUT, "aws", "request_timeout", CONFIG_DURATION, "30s", CONFIG_MS_S, 10 * CONFIG_MS_M, CONFIG_RELOAD, NULL, "deadline of one AWS request") \
	X(AWS_MAX_ATTEMPTS, "aws", "max_attempts", CONFIG_INT, "3", 1, 20, CONFIG_RELOAD, NULL, "attempts per AWS request (standard retry mode)") \
	X(AWS_ACCESS_KEY_ID, "aws", "access_key_id", CONFIG_STRING, "", 0, 0, 0, NULL, "static key for the daemon's own calls; empty = credential chain") \
	X(AWS_SECRET_ACCESS_KEY, "aws", "secret_access_key", CONFIG_STRING, "", 0, 0, CONFIG_SENSITIVE, NULL, "secret of access_key_id") \
	X(RECONCILE_RESYNC_INTERVAL, "reconcile", "resync_interval", CONFIG_DURATION, "6h", CONFIG_MS_M, 7 * CONFIG_MS_D, CONFIG_RELOAD, NULL, "full resync period per integration") \
	X(RECONCILE_RESYNC_JITTER, "reconcile", "resync_jitter", CONFIG_DURATION, "10m", 0, CONFIG_MS_D, CONFIG_RELOAD, NULL, "random spread added to each resync") \
	X(RECONCILE_RATE_LIMIT, "reconcile", "rate_limit", CONFIG_INT, "20", 1, 10000, CONFIG_RELOAD, NULL, "S3 Control requests per second") \
	X(RECONCILE_PROPAGATION_WINDOW, "reconcile", "propagation_window", CONFIG_DURATION, "5m", CONFIG_MS_S, CONFIG_MS_H, CONFIG_RELOAD, NULL, "how long Invalid Grantee / InvalidIamRole for a new principal or role is retried") \
	X(RECONCILE_REVALIDATE_INTERVAL, "reconcile", "revalidate_interval", CONFIG_DURATION, "24h", CONFIG_MS_M, 30 * CONFIG_MS_D, CONFIG_RELOAD, NULL, "how often an enabled integration's validation tests run again") \
	X(RECONCILE_GRANT_QUOTA, "reconcile", "grant_quota", CONFIG_INT, "100000", 1, 100000, CONFIG_RELOAD, NULL, "grants per Access Grants instance; creates beyond it are refused (warning from 90 %)") \
	X(RECONCILE_QUEUE_POLL_INTERVAL, "reconcile", "queue_poll_interval", CONFIG_DURATION, "5s", 100, CONFIG_MS_D, CONFIG_RELOAD, NULL, "claim from the change queue this often even without a notification") \
	X(RECONCILE_QUEUE_LEASE, "reconcile", "queue_lease", CONFIG_DURATION, "2m", CONFIG_MS_S, CONFIG_MS_H, CONFIG_RELOAD, NULL, "lease on claimed changes; a dead daemon's claims return after it") \
	X(RECONCILE_QUEUE_BATCH, "reconcile", "queue_batch", CONFIG_INT, "100", 1, 10000, CONFIG_RELOAD, NULL, "changes claimed at a time") \
	X(EXPORT_TIME_OF_DAY, "export", "time_of_day", CONFIG_TIME, "03:00", 0, 0, CONFIG_RELOAD, NULL, "local time of the daily export") \
	X(EXPORT_TIMEZONE, "export", "timezone", CONFIG_TIMEZONE, "", 0, 0, CONFIG_RELOAD, NULL, "IANA zone of time_of_day; empty = system local time") \
	X(EXPORT_SINK_DIR, "export", "sink_dir", CONFIG_PATH, "", 0, 0, 0, NULL, "write exports to this local directory instead of S3 (demo, tests)") \
	X(EXPORT_STATE_DIR, "export", "state_dir", CONFIG_PATH, "", 0, 0, 0, NULL, "where export files are produced; empty = $STATE_DIRECTORY or /var/lib/s3grantd") \
	X(SECRETS_KEY_FILE, "secrets", "key_file", CONFIG_PATH, "", 0, 0, 0, NULL, "AES-256 key for secrets at rest; empty = $CREDENTIALS_DIRECTORY/secrets-key")

enum config_key {
#define CONFIG_KEY_ENUM_(id, ...) CONFIG_##id,
	CONFIG_KEYS(CONFIG_KEY_ENUM_)
#undef CONFIG_KEY_ENUM_
	CONFIG_KEY_MAX
};

struct config_key_info {
	const char *section;
	const char *name;
	enum config_type type;
	const char *def;        /* default, in file syntax */
	long long min, max;     /* INT: value; DURATION: ms; both 0 = unbounded */
	unsigned flags;         /* CONFIG_RELOAD, CONFIG_SENSITIVE */
	const char *choices;    /* ENUM: "a|b|c" */
	const char *help;
};

#define CONFIG_MAX_VALUE 4096  /* bytes of one value */
#define CONFIG_MAX_FILE (1 << 20)
#define CONFIG_MAX_ERRORS 100
#define CONFIG_DEFAULT_PATH "/etc/s3grantd/s3grantd.conf"

struct config_error {
	char *file;
	int line;       /* 0 = the whole file */
	char *key;      /* "section.name" as written, or "" */
	char *reason;
};

struct config_errors {
	struct config_error *v;
	size_t n;
	size_t dropped;  /* errors past CONFIG_MAX_ERRORS */
};

struct config;

const char *config_type_name(enum config_type t);
const struct config_key_info *config_key_info(enum config_key k);
/* Key by section and name; -1 when unknown. */
int config_key_find(const char *section, const char *name);
/* "section.name" of a key (static storage). */
const char *config_key_label(enum config_key k);

/* A config holding only the defaults (never fails: defaults are tested). */
struct config *config_defaults(void);
/* Parse text (named `file` in errors). On any error ret_cfg is untouched,
 * errs holds them all and S3G_ECONFIG is returned. */
int config_parse(const char *file, const char *text, struct config **ret_cfg,
		 struct config_errors *errs) S3G_WUR;
/* Read and parse a file (bounded at CONFIG_MAX_FILE). */
int config_load(const char *path, struct config **ret_cfg,
		struct config_errors *errs) S3G_WUR;
void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);
/* One error as "file:line: key: reason" (caller frees). */
char *config_error_format(const struct config_error *e);

/* Typed reads. Durations are milliseconds; TIME is minutes after midnight;
 * ENUM is the index of the choice. */
const char *config_str(const struct config *cfg, enum config_key k);
long long config_int(const struct config *cfg, enum config_key k);
bool config_bool(const struct config *cfg, enum config_key k);
/* Line the key was set on, 0 = default. */
int config_line(const struct config *cfg, enum config_key k);
const char *config_file(const struct config *cfg);
/* The value as it may be shown: "<redacted>" for a non-empty sensitive key. */
const char *config_display(const struct config *cfg, enum config_key k);
bool config_equal(const struct config *a, const struct config *b, enum config_key k);

/* Secret strings the logger must scrub: every non-empty sensitive value and
 * the password inside a conninfo. Returns the count; *ret_v (caller frees
 * with config_secrets_free) is written only when the count is positive. */
size_t config_secrets(const struct config *cfg, char ***ret_v);
void config_secrets_free(char **v, size_t n);

/* Reload: for each key whose value differs between old and fresh, call cb;
 * for restart-only keys copy the old value into fresh first (applied=false),
 * so the running daemon keeps using it. */
typedef void (*config_change_cb)(void *ud, enum config_key k, bool applied);
void config_carry_restart_only(struct config *fresh, const struct config *old,
			       config_change_cb cb, void *ud);

/* Parsers, exposed for tests. */
int config_parse_duration(const char *s, long long *ret_ms) S3G_WUR;
int config_parse_bool(const char *s, bool *ret_b) S3G_WUR;
