/* validate.h — grammar checks for entitlement input (outside data).
 *
 * Every check takes a byte string (s, n) that need not be NUL-terminated and
 * may hold anything (it is fuzzed), returns 0 or S3G_EINVAL, and on failure
 * sets *ret_why to a static message naming the field and the reason, e.g.
 * "principal: not an IAM user or role ARN". Outputs are written only on
 * success. No allocation: normalised results are (offset, length) views into
 * the input.
 *
 * Grammars:
 *  - IAM ARN: arn:aws(-[a-z]+)*:iam::<12 digits>:(user|role)<path><name>, path
 *    "/" or "/seg/.../" (≤ 512 bytes, segments [A-Za-z0-9+=,.@_-]+), name
 *    1..64 bytes of [A-Za-z0-9+=,.@_-]; whole ARN ≤ 2048 bytes (IAMRoleArn).
 *  - Identity Center user id: [0-9a-f]{10}- optional, then a lower-case UUID.
 *  - Location scope: "s3://", "s3://bucket" or "s3://bucket/prefix" (prefix
 *    normalised like data source prefixes; no trailing slash); ≤ 2000 bytes.
 *  - Bucket: 3..63 bytes of [a-z0-9.-], starting and ending with a letter or
 *    digit, no "..", not an IPv4 address, no reserved prefix (xn--, sthree-,
 *    amzn-s3-demo-) or suffix (-s3alias, --ol-s3, .mrap, --x-s3).
 *  - Prefix (a data source path relative to the location scope, or an
 *    absolute s3:// URL inside the scope): one leading and one trailing "/"
 *    are dropped; then no empty, "." or ".." segment, no control character, no
 *    '*', valid UTF-8, ≤ 2000 bytes. Under the default scope ("s3://") the
 *    first segment must be a valid bucket name and the path must not be empty.
 *  - Access: "read" or "write" (case-sensitive, as the schema stores them).
 */
#pragma once
#include <stddef.h>

#include "core/err.h"
#include "core/grant.h"

#define VALIDATE_PREFIX_MAX 2000
#define VALIDATE_ARN_MAX 2048
#define VALIDATE_IAM_NAME_MAX 64
#define VALIDATE_IAM_PATH_MAX 512

enum validate_principal {
	VALIDATE_IAM_USER,
	VALIDATE_IAM_ROLE,
	VALIDATE_DIRECTORY_USER,
	VALIDATE_PRINCIPAL_MAX_
};

const char *validate_principal_name(enum validate_principal k);

int validate_account(const char *s, size_t n, const char **ret_why) S3G_WUR;
/* IAM user or role ARN; *ret_kind is VALIDATE_IAM_USER or VALIDATE_IAM_ROLE. */
int validate_iam_arn(const char *s, size_t n, enum validate_principal *ret_kind, const char **ret_why) S3G_WUR;
/* An IAM user name (for unset principals: the user of the same name). */
int validate_iam_name(const char *s, size_t n, const char **ret_why) S3G_WUR;
int validate_identity_center_id(const char *s, size_t n, const char **ret_why) S3G_WUR;
/* Any principal a user row may hold; the kind says which. */
int validate_principal(const char *s, size_t n, enum validate_principal *ret_kind, const char **ret_why) S3G_WUR;
int validate_bucket(const char *s, size_t n, const char **ret_why) S3G_WUR;
/* *ret_bucket_len: length of the bucket part after "s3://" (0 for "s3://"). */
int validate_location_scope(const char *s, size_t n, size_t *ret_bucket_len, const char **ret_why) S3G_WUR;
/* scope must already be valid (validate_location_scope). The normalised
 * relative path is raw[*ret_off .. *ret_off + *ret_len); it may be empty
 * (the whole location) except under the default scope. */
int validate_prefix(const char *scope, const char *raw, size_t n, size_t *ret_off, size_t *ret_len,
		    const char **ret_why) S3G_WUR;
int validate_access(const char *s, size_t n, enum grant_perm *ret, const char **ret_why) S3G_WUR;
