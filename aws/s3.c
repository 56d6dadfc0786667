/* s3.c — S3 operations over aws/client. */
#include "aws/s3.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/digest.h"
#include "core/buf.h"
#include "core/xalloc.h"

#define S3_PUT_MAX ((size_t)5 * 1024 * 1024 * 1024)   /* single PUT limit */

static const char *const checksum_names[S3_CHECKSUM_MAX] = {
	[S3_CHECKSUM_SHA256] = "sha256",
	[S3_CHECKSUM_MD5] = "md5",
	[S3_CHECKSUM_NONE] = "none",
};

const char *s3_checksum_name(enum s3_checksum c)
{
	return (unsigned)c < S3_CHECKSUM_MAX ? checksum_names[c] : "?";
}

enum s3_kind {
	S3K_PUT,
	S3K_LIST,
	S3K_HEAD,
};

struct s3_op {
	enum s3_kind kind;
	void (*cb)(void);
	void *user;
	void *map;                       /* file put: the mapping */
	size_t map_len;
	struct shapes_object_list list;
};

static int parse_list(const char *b, size_t n, const struct http_response *resp, void *out, char *why, size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_object_list(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		snprintf(why, wl, "%s", xe.reason);
	return r;
}

static void s3_done(int status, const struct aws_result *res, void *user)
{
	struct s3_op *o = user;
	const struct http_response *resp = res->resp;

	switch (o->kind) {
	case S3K_PUT: {
		struct s3_put_result pr = {0};

		if (status == 0 && resp) {
			pr.etag = http_response_header(resp, "ETag");
			pr.version_id = http_response_header(resp, "x-amz-version-id");
			pr.sse = http_response_header(resp, "x-amz-server-side-encryption");
			pr.kms_key_id = http_response_header(resp, "x-amz-server-side-encryption-aws-kms-key-id");
		}
		((s3_put_cb)o->cb)(status, res, status == 0 ? &pr : NULL, o->user);
		break;
	}
	case S3K_LIST:
		((s3_list_cb)o->cb)(status, res, status == 0 ? &o->list : NULL, o->user);
		shapes_object_list_clear(&o->list);
		break;
	case S3K_HEAD:
		((s3_head_bucket_cb)o->cb)(status, res, resp ? http_response_header(resp, "x-amz-bucket-region") : NULL,
					   o->user);
		break;
	}
	if (o->map)
		munmap(o->map, o->map_len);
	x_free(o);
}

static struct s3_op *op_new(enum s3_kind kind, void (*cb)(void), void *user)
{
	struct s3_op *o = x_calloc(1, sizeof(*o));

	o->kind = kind;
	o->cb = cb;
	o->user = user;
	return o;
}

static char *key_path(const char *key)
{
	struct buf b;

	buf_init(&b, 8192);
	if (buf_puts(&b, "/") < 0 || sigv4_uri_encode(key, strlen(key), true, &b) < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static void put_start(struct aws_client *cl, struct s3_op *o, const struct s3_put_req *req, const void *body,
		      size_t len)
{
	struct sigv4_header h[8];
	size_t nh = 0;
	uint8_t sha[DIGEST_SHA256_LEN];
	char hex[DIGEST_SHA256_HEX_SIZE], b64[DIGEST_SHA256_B64_SIZE], md5[DIGEST_MD5_B64_SIZE];
	char *path;
	int r;

	if (!req->bucket || !req->key || !req->key[0] || !(path = key_path(req->key))) {
		aws_call_fail(cl, "PutObject", S3G_EINVAL, "bucket and key are required (key up to 1024 bytes)",
			      s3_done, o);
		return;
	}
	r = digest_sha256(body, len, sha);
	if (r == 0 && req->checksum == S3_CHECKSUM_MD5)
		r = digest_md5_b64(body, len, md5);
	if (r < 0) {
		x_free(path);
		aws_call_fail(cl, "PutObject", r, "digest unavailable", s3_done, o);
		return;
	}
	digest_hex(sha, sizeof(sha), hex);
	digest_base64(sha, sizeof(sha), b64);
	if (req->content_type)
		h[nh++] = (struct sigv4_header){"Content-Type", req->content_type};
	if (req->checksum == S3_CHECKSUM_SHA256)
		h[nh++] = (struct sigv4_header){"x-amz-checksum-sha256", b64};
	else if (req->checksum == S3_CHECKSUM_MD5)
		h[nh++] = (struct sigv4_header){"Content-MD5", md5};
	if (req->sse_kms || req->kms_key_id) {
		h[nh++] = (struct sigv4_header){"x-amz-server-side-encryption", "aws:kms"};
		if (req->kms_key_id)
			h[nh++] = (struct sigv4_header){"x-amz-server-side-encryption-aws-kms-key-id", req->kms_key_id};
		if (req->bucket_key)
			h[nh++] = (struct sigv4_header){"x-amz-server-side-encryption-bucket-key-enabled", "true"};
	}
	if (req->expected_owner)
		h[nh++] = (struct sigv4_header){"x-amz-expected-bucket-owner", req->expected_owner};

	struct aws_call_spec sp = {
		.op = "PutObject", .service = AWS_SERVICE_S3, .method = "PUT", .bucket = req->bucket, .path = path,
		.body = body, .body_len = len, .payload_hash = hex, .headers = h, .n_headers = nh,
		.done = s3_done, .user = o,
	};
	aws_call_start(cl, &sp);
	x_free(path);
}

void s3_put_object(struct aws_client *cl, const struct s3_put_req *req, s3_put_cb cb, void *user)
{
	struct s3_op *o = op_new(S3K_PUT, (void (*)(void))cb, user);

	put_start(cl, o, req, req->body, req->body_len);
}

void s3_put_object_file(struct aws_client *cl, const struct s3_put_req *req, const char *path, s3_put_cb cb,
			void *user)
{
	struct s3_op *o = op_new(S3K_PUT, (void (*)(void))cb, user);
	struct stat st;
	char why[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > S3_PUT_MAX) {
		int e = fd < 0 || errno ? -errno : S3G_EINVAL;

		snprintf(why, sizeof(why), "cannot read %s: %s", path,
			 fd < 0 ? strerror(-e) : "not a regular file of at most 5 GB");
		if (fd >= 0)
			close(fd);
		aws_call_fail(cl, "PutObject", e < 0 ? e : S3G_EINVAL, why, s3_done, o);
		return;
	}
	if (st.st_size > 0) {
		o->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (o->map == MAP_FAILED) {
			int e = -errno;

			o->map = NULL;
			close(fd);
			snprintf(why, sizeof(why), "cannot map %s: %s", path, strerror(-e));
			aws_call_fail(cl, "PutObject", e, why, s3_done, o);
			return;
		}
		o->map_len = (size_t)st.st_size;
	}
	close(fd);
	put_start(cl, o, req, o->map, o->map_len);
}

void s3_list_objects(struct aws_client *cl, const struct s3_list_req *req, s3_list_cb cb, void *user)
{
	struct s3_op *o = op_new(S3K_LIST, (void (*)(void))cb, user);
	struct sigv4_param pp[5];
	size_t n = 0;
	char mk[16];
	struct buf q;

	pp[n++] = (struct sigv4_param){"list-type", "2"};
	if (req->prefix)
		pp[n++] = (struct sigv4_param){"prefix", req->prefix};
	if (req->delimiter)
		pp[n++] = (struct sigv4_param){"delimiter", req->delimiter};
	if (req->continuation_token)
		pp[n++] = (struct sigv4_param){"continuation-token", req->continuation_token};
	if (req->max_keys) {
		snprintf(mk, sizeof(mk), "%u", req->max_keys);
		pp[n++] = (struct sigv4_param){"max-keys", mk};
	}
	buf_init(&q, 16384);
	if (sigv4_query_build(pp, n, &q) < 0) {
		buf_free(&q);
		aws_call_fail(cl, "ListObjectsV2", S3G_EINVAL, "query too long", s3_done, o);
		return;
	}
	struct aws_call_spec sp = {
		.op = "ListObjectsV2", .service = AWS_SERVICE_S3, .method = "GET", .bucket = req->bucket, .path = "/",
		.query = buf_str(&q), .parse = parse_list, .out = &o->list, .done = s3_done, .user = o,
	};
	aws_call_start(cl, &sp);
	buf_free(&q);
}

void s3_head_bucket(struct aws_client *cl, const char *bucket, s3_head_bucket_cb cb, void *user)
{
	struct s3_op *o = op_new(S3K_HEAD, (void (*)(void))cb, user);
	struct aws_call_spec sp = {
		.op = "HeadBucket", .service = AWS_SERVICE_S3, .method = "HEAD", .bucket = bucket, .path = "/",
		.done = s3_done, .user = o,
	};

	aws_call_start(cl, &sp);
}
