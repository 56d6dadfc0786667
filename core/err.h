/* err.h — the project's error codes.
 *
 * Every fallible function returns int: 0 on success, a negative errno, or one
 * of the negative S3G_E* codes below. The codes are declared once in the
 * X-macro list so the enum and the strings cannot drift apart. err_name()
 * and err_str() accept any value (errno or project code) and never return
 * NULL.
 */
#pragma once

#define S3G_ERRORS(X)                                                         \
	X(S3G_EAWS,        "aws",          "AWS answered with an error")          \
	X(S3G_ETHROTTLED,  "throttled",    "AWS throttled the request")           \
	X(S3G_ETRANSPORT,  "transport",    "HTTP transport failure")              \
	X(S3G_ETIMEOUT,    "timeout",      "request timed out")                   \
	X(S3G_ETOOBIG,     "too-big",      "response over its size limit")        \
	X(S3G_EPARSE,      "parse",        "malformed document")                  \
	X(S3G_ECREDS,      "credentials",  "no usable AWS credentials")           \
	X(S3G_EPGCONN,     "pg-conn",      "PostgreSQL connection lost")          \
	X(S3G_EPGQUERY,    "pg-query",     "PostgreSQL query failed")             \
	X(S3G_ESCHEMA,     "schema",       "database schema version mismatch")    \
	X(S3G_ECONFIG,     "config",       "invalid configuration")               \
	X(S3G_EINVAL,      "invalid",      "invalid input")                       \
	X(S3G_ENOTFOUND,   "not-found",    "not found")                           \
	X(S3G_ECONFLICT,   "conflict",     "conflict")                            \
	X(S3G_ECANCELLED,  "cancelled",    "cancelled")                           \
	X(S3G_ESHUTDOWN,   "shutdown",     "shutting down")

enum s3g_err {
	S3G_ERR_BASE_ = -10000,
#define S3G_ERR_ENUM_(code, name, text) code,
	S3G_ERRORS(S3G_ERR_ENUM_)
#undef S3G_ERR_ENUM_
	S3G_ERR_MAX_
};

/* Short machine name ("throttled", "ENOENT"-style for errno values). */
const char *err_name(int err);
/* One-line human text. */
const char *err_str(int err);

#define S3G_WUR __attribute__((warn_unused_result))
