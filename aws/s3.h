/* s3.h — S3 PutObject, ListObjectsV2, HeadBucket (WIRE.md d) over aws/client.
 *
 * Addressing comes from aws/endpoint.h (virtual-hosted unless the bucket is
 * not a DNS label, the endpoint is an IP or path style is forced). Keys are
 * percent-encoded once with '/' kept, as S3 signs them.
 *
 * PutObject sends Content-Length (curl), x-amz-content-sha256 = hex SHA-256
 * of the body and, by default, x-amz-checksum-sha256 (same digest, base64;
 * or Content-MD5), plus the SSE-KMS headers when asked. From a buffer the
 * body is BORROWED until the callback. From a file (s3_put_object_file) the
 * file is mapped read-only (mmap) for the duration of the call — the HTTP
 * engine has no streaming read callback — so it must not be truncated
 * meanwhile; retries resend the mapping.
 *
 * Callbacks fire once, on a later loop pass; result structs are valid during
 * the callback only.
 */
#pragma once
#include <stddef.h>

#include "aws/client.h"
#include "aws/shapes.h"

enum s3_checksum {
	S3_CHECKSUM_SHA256,              /* x-amz-checksum-sha256 */
	S3_CHECKSUM_MD5,                 /* Content-MD5 */
	S3_CHECKSUM_NONE,
	S3_CHECKSUM_MAX
};
const char *s3_checksum_name(enum s3_checksum c);

struct s3_put_req {
	const char *bucket;              /* required */
	const char *key;                 /* required, unencoded */
	const void *body;                /* buffer puts: borrowed until the callback */
	size_t body_len;
	const char *content_type;        /* optional */
	enum s3_checksum checksum;
	int sse_kms;                     /* x-amz-server-side-encryption: aws:kms */
	const char *kms_key_id;          /* optional key id / ARN / alias (implies sse_kms) */
	int bucket_key;                  /* x-amz-server-side-encryption-bucket-key-enabled: true */
	const char *expected_owner;      /* x-amz-expected-bucket-owner, optional */
};

struct s3_put_result {
	const char *etag;                /* ETag (quoted), or NULL */
	const char *version_id;          /* x-amz-version-id */
	const char *sse;                 /* x-amz-server-side-encryption */
	const char *kms_key_id;          /* x-amz-server-side-encryption-aws-kms-key-id */
};

typedef void (*s3_put_cb)(int status, const struct aws_result *res, const struct s3_put_result *out, void *user);
typedef void (*s3_list_cb)(int status, const struct aws_result *res, struct shapes_object_list *list, void *user);
/* region: x-amz-bucket-region of the answer (also on 301/400/403), or NULL. */
typedef void (*s3_head_bucket_cb)(int status, const struct aws_result *res, const char *region, void *user);

void s3_put_object(struct aws_client *cl, const struct s3_put_req *req, s3_put_cb cb, void *user);
/* req->body is ignored; the body is the file at path (mapped read-only). */
void s3_put_object_file(struct aws_client *cl, const struct s3_put_req *req, const char *path, s3_put_cb cb,
			void *user);

struct s3_list_req {
	const char *bucket;              /* required */
	const char *prefix;              /* optional */
	const char *delimiter;           /* optional */
	const char *continuation_token;  /* optional: NextContinuationToken of the previous page */
	unsigned max_keys;               /* 0: S3 default (1000) */
};

/* The list shape is owned by the call and cleared after the callback. */
void s3_list_objects(struct aws_client *cl, const struct s3_list_req *req, s3_list_cb cb, void *user);
void s3_head_bucket(struct aws_client *cl, const char *bucket, s3_head_bucket_cb cb, void *user);
