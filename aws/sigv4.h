/* sigv4.h — AWS Signature Version 4 (AWS4-HMAC-SHA256) in the Authorization
 * header, for S3, S3 Control and STS.
 *
 * Ownership and lifetime. A struct sigv4_signer is created by
 * sigv4_signer_new() and freed by sigv4_signer_free() (NULL accepted). It
 * keeps reusable OpenSSL contexts, scratch buffers and a small cache of
 * derived signing keys, so it is NOT thread-safe: one signer per thread
 * (the daemon has one, on its loop). Everything passed to sigv4_sign() is
 * borrowed for the call only. The result (struct sigv4_signed) is filled by
 * the call; its header values point into the result itself and, for the
 * session token, into the credentials, so do not copy the struct by value
 * and keep the credentials alive while the headers are used.
 *
 * What the signer does. The caller gives the request as it will be sent:
 * method, path (what goes on the request line, already percent-encoded for
 * S3), raw query string, headers (must include Host; S3 Control also needs
 * x-amz-account-id and a checksum header, see sigv4_checksum_header()) and
 * the body. The signer ADDS headers the caller must send, in
 * ret->headers[0..n_headers): X-Amz-Date, X-Amz-Content-SHA256 (with
 * SIGV4_CONTENT_SHA256), X-Amz-Security-Token (when the credentials have a
 * session token) and Authorization. Re-sign every retry from the original
 * headers; a caller header that collides with one the signer adds
 * (X-Amz-Date, or the token or content hash when the signer adds them) is
 * S3G_EINVAL.
 *
 * Canonical forms (see shared/aws/WIRE.md section e):
 *  - URI: with SIGV4_S3_PATH the path as sent (no dot-segment removal, no
 *    second encoding; valid %XX escapes kept with upper-case hex, any byte
 *    outside the unreserved set that is not an escape gets encoded);
 *    otherwise (STS, the generic test suite) dot segments and empty segments
 *    removed, then every byte outside the unreserved set and '/' encoded —
 *    including '%', i.e. the path is encoded a second time.
 *  - Query: split on '&', then on the first '='; each side percent-decoded
 *    and re-encoded with the RFC 3986 unreserved set ('+' is a literal
 *    plus); sorted by encoded name then encoded value; "name=" when empty.
 *  - Headers: lower-case names, values trimmed with inner whitespace runs
 *    (including folded lines) collapsed to one space, repeated names joined
 *    with ',' in order, sorted. Unsigned (as botocore): authorization,
 *    user-agent, expect, connection, keep-alive, proxy-*, te, trailer,
 *    transfer-encoding, upgrade, x-amzn-trace-id.
 *
 * The clock is injected: sigv4_sign() takes `now` (UTC seconds) and never
 * reads the system clock. Every input is bounded (SIGV4_MAX_*); exceeding a
 * bound is S3G_ETOOBIG, malformed input S3G_EINVAL. Nothing here logs.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws/creds.h"
#include "aws/digest.h"
#include "core/buf.h"
#include "core/err.h"

#define SIGV4_MAX_HEADERS    64           /* caller headers per request */
#define SIGV4_MAX_PARAMS     256          /* query parameters per request */
#define SIGV4_CREQ_MAX       (256u * 1024) /* canonical request / scratch bytes */
#define SIGV4_AUTH_SIZE      4096         /* Authorization value, NUL included */
#define SIGV4_AKID_MAX       128
#define SIGV4_SECRET_MAX     256
#define SIGV4_SCOPE_PART_MAX 63           /* region and service names */
#define SIGV4_PAYLOAD_MAX    128          /* caller-supplied payload hash strings */
#define SIGV4_CACHE_SLOTS    4            /* (key, date, region, service) combinations kept */
#define SIGV4_OUT_MAX        4

#define SIGV4_UNSIGNED_PAYLOAD_VALUE "UNSIGNED-PAYLOAD"

enum sigv4_flag {
	SIGV4_S3_PATH          = 1u << 0, /* S3/S3 Control URI rule (see above) */
	SIGV4_CONTENT_SHA256   = 1u << 1, /* add and sign x-amz-content-sha256 (S3, S3 Control) */
	SIGV4_UNSIGNED_PAYLOAD = 1u << 2, /* payload hash is UNSIGNED-PAYLOAD (HTTPS S3 uploads) */
	SIGV4_OMIT_TOKEN       = 1u << 3, /* add the token header after signing, unsigned */
};

/* Per-endpoint signing settings; usually a long-lived constant. */
struct sigv4_config {
	const char *region;     /* signing region, e.g. "us-east-1" */
	const char *service;    /* signing name: "s3" (S3 and S3 Control), "sts" */
	unsigned flags;         /* enum sigv4_flag bits */
};

/* S3 and S3 Control: S3 path rule plus a signed x-amz-content-sha256. */
#define SIGV4_FLAGS_S3 (SIGV4_S3_PATH | SIGV4_CONTENT_SHA256)

struct sigv4_header {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;                 /* "GET", "POST", ... */
	const char *path;                   /* as on the request line, no query; NULL or "" = "/" */
	const char *query;                  /* raw query string without '?'; NULL = none */
	const struct sigv4_header *headers; /* must include Host (with :port when not default) */
	size_t n_headers;
	const void *body;
	size_t body_len;
	const char *payload_hash;           /* NULL = hex SHA-256 of body; else this literal */
};

struct sigv4_signed {
	struct sigv4_header headers[SIGV4_OUT_MAX]; /* add these to the request, in order */
	size_t n_headers;
	char amz_date[17];                          /* YYYYMMDD'T'HHMMSS'Z' */
	char content_sha256[SIGV4_PAYLOAD_MAX + 1]; /* the payload line of the canonical request */
	char signature[DIGEST_SHA256_HEX_SIZE];
	char authorization[SIGV4_AUTH_SIZE];
};

struct sigv4_signer;

int sigv4_signer_new(struct sigv4_signer **ret) S3G_WUR;
/* Wipes cached keys. NULL is a no-op. */
void sigv4_signer_free(struct sigv4_signer *s);
/* Cache on by default; off re-derives the signing key every time (benchmarks). */
void sigv4_signer_set_cache(struct sigv4_signer *s, bool enabled);
/* Wipe cached keys (credentials rotated or revoked). */
void sigv4_signer_forget(struct sigv4_signer *s);
void sigv4_signer_stats(const struct sigv4_signer *s, uint64_t *ret_hits, uint64_t *ret_misses);

/* Sign req. ret_creq / ret_sts (may be NULL) receive the canonical request
 * and the string to sign, for tests and debugging (they are reset first). */
int sigv4_sign(struct sigv4_signer *s, const struct sigv4_config *cfg, const struct aws_creds *creds,
	       const struct sigv4_request *req, time_t now, struct sigv4_signed *ret,
	       struct buf *ret_creq, struct buf *ret_sts) S3G_WUR;

/* Append s[0..n) percent-encoded with the RFC 3986 unreserved set
 * (A-Z a-z 0-9 - _ . ~), upper-case hex; '/' kept as is when keep_slash.
 * Use it for object keys (keep_slash) and query names/values, so the request
 * line carries exactly the bytes that were signed. */
int sigv4_uri_encode(const char *s, size_t n, bool keep_slash, struct buf *out) S3G_WUR;

struct sigv4_param {
	const char *name;       /* unencoded */
	const char *value;      /* unencoded; NULL = bare name ("?lifecycle") */
};

/* Append the wire query string (no '?') for the pairs: names and values
 * encoded as sigv4_uri_encode(keep_slash = false), sorted in canonical order
 * and joined with '&'. Sending it verbatim signs identically. */
int sigv4_query_build(const struct sigv4_param *params, size_t n, struct buf *out) S3G_WUR;

/* Append the canonical query / canonical URI of raw input (what sigv4_sign
 * puts in the canonical request). */
int sigv4_canonical_query(const char *query, size_t len, struct buf *out) S3G_WUR;
int sigv4_canonical_uri(const char *path, size_t len, bool s3_path, struct buf *out) S3G_WUR;

enum sigv4_checksum {
	SIGV4_CHECKSUM_MD5,     /* Content-MD5 */
	SIGV4_CHECKSUM_CRC32,   /* x-amz-checksum-crc32 (botocore >= 1.36) */
	SIGV4_CHECKSUM_MAX_
};

const char *sigv4_checksum_name(enum sigv4_checksum kind);

#define SIGV4_CHECKSUM_SIZE DIGEST_MD5_B64_SIZE /* fits every kind */

/* The checksum header S3 Control requires on every access-grants call
 * (httpChecksumRequired): fills value and sets *ret to {name, value}; add
 * *ret to the request headers before signing. */
int sigv4_checksum_header(enum sigv4_checksum kind, const void *body, size_t len,
			  char value[SIGV4_CHECKSUM_SIZE], struct sigv4_header *ret) S3G_WUR;
