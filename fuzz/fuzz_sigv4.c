/* libFuzzer: SigV4 canonicalisation of arbitrary path, query and header bytes.
 *
 * Input: one flag byte, then NUL-separated fields: path, query, then header
 * name/value pairs; the whole input is also the body. Besides memory safety
 * (ASan/UBSan) it checks properties: canonical queries and S3 canonical URIs
 * are fixed points of their own canonicalisation, outputs use only the
 * encoded alphabet, normalised paths hold no empty or dot segments, the
 * query builder's output is canonical, and canonical header values carry no
 * line breaks or whitespace runs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "core/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 40

static struct sigv4_signer *signer;

static bool hex_upper(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F');
}

/* Only unreserved bytes, `extra`, and %XX with upper-case hex. */
static bool encoded_alphabet(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    (ch && strchr("-_.~", ch)) || (ch && strchr(extra, ch)))
			continue;
		if (ch == '%' && i + 2 < n && hex_upper(s[i + 1]) && hex_upper(s[i + 2])) {
			i += 2;
			continue;
		}
		return false;
	}
	return true;
}

static void check_query(const char *q, size_t n)
{
	struct buf a, b;

	buf_init(&a, 0);
	buf_init(&b, 0);
	if (sigv4_canonical_query(q, n, &a) == 0) {
		if (!encoded_alphabet(buf_str(&a), a.len, "=&"))
			abort();
		if (sigv4_canonical_query(buf_str(&a), a.len, &b) != 0 || strcmp(buf_str(&a), buf_str(&b)) != 0)
			abort();
	}
	buf_free(&a);
	buf_free(&b);
}

static void check_uri(const char *p, size_t n)
{
	struct buf a, b;

	buf_init(&a, 0);
	buf_init(&b, 0);
	if (sigv4_canonical_uri(p, n, true, &a) == 0) {
		if (!encoded_alphabet(buf_str(&a), a.len, "/"))
			abort();
		if (sigv4_canonical_uri(buf_str(&a), a.len, true, &b) != 0 || strcmp(buf_str(&a), buf_str(&b)) != 0)
			abort();
	}
	buf_reset(&a);
	if (sigv4_canonical_uri(p, n, false, &a) == 0) {
		const char *s = buf_str(&a);

		if (!encoded_alphabet(s, a.len, "/") || s[0] != '/' || strstr(s, "//") ||
		    strstr(s, "/./") || strstr(s, "/../") ||
		    (a.len >= 2 && strcmp(s + a.len - 2, "/.") == 0) ||
		    (a.len >= 3 && strcmp(s + a.len - 3, "/..") == 0))
			abort();
	}
	buf_free(&a);
	buf_free(&b);
}

static void check_builder(char **f, size_t nf)
{
	struct sigv4_param params[MAX_FIELDS / 2];
	size_t n = 0;
	struct buf a, b;

	for (size_t i = 0; i + 1 < nf && n < MAX_FIELDS / 2; i += 2)
		params[n++] = (struct sigv4_param){f[i], f[i + 1]};
	buf_init(&a, 0);
	buf_init(&b, 0);
	if (sigv4_query_build(params, n, &a) != 0)
		abort();
	/* every pair has a value, so the wire string is already canonical */
	if (sigv4_canonical_query(buf_str(&a), a.len, &b) != 0)
		abort();
	/* pairs with an empty name are dropped by neither; empty segments cannot occur */
	if (strcmp(buf_str(&a), buf_str(&b)) != 0)
		abort();
	buf_free(&a);
	buf_free(&b);
}

static void check_sign(unsigned flags, bool token, bool host, char **f, size_t nf, const uint8_t *body,
		       size_t size)
{
	struct sigv4_header h[MAX_FIELDS / 2 + 1];
	struct sigv4_config cfg = {"us-east-1", flags & SIGV4_S3_PATH ? "s3" : "service", flags};
	struct aws_creds creds = {.access_key_id = "AKIDEXAMPLE",
				  .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
				  .session_token = token ? "TOKEN" : NULL};
	struct sigv4_signed sig;
	struct buf creq, sts;
	size_t n = 0;
	int r;

	if (host)
		h[n++] = (struct sigv4_header){"Host", "example.amazonaws.com"};
	for (size_t i = 2; i + 1 < nf && n < MAX_FIELDS / 2 + 1; i += 2)
		h[n++] = (struct sigv4_header){f[i], f[i + 1]};
	buf_init(&creq, 0);
	buf_init(&sts, 0);
	{
		struct sigv4_request req = {"GET", nf > 0 ? f[0] : NULL, nf > 1 ? f[1] : NULL, h, n, body, size,
					    NULL};

		r = sigv4_sign(signer, &cfg, &creds, &req, 1440938160, &sig, &creq, &sts);
	}
	if (r == 0) {
		const char *c = buf_str(&creq);

		if (strncmp(sig.authorization, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/", 59) ||
		    strlen(sig.signature) != 64 || strchr(c, '\r') || strstr(c, "  ") ||
		    strncmp(buf_str(&sts), "AWS4-HMAC-SHA256\n20150830T123600Z\n", 34))
			abort();
	} else if (r != S3G_EINVAL && r != S3G_ETOOBIG) {
		abort();
	}
	buf_free(&creq);
	buf_free(&sts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *f[MAX_FIELDS];
	size_t nf = 0, start = 0;
	unsigned flags;

	if (size < 1)
		return 0;
	if (!signer && sigv4_signer_new(&signer) < 0)
		abort();
	flags = data[0] & (SIGV4_S3_PATH | SIGV4_CONTENT_SHA256 | SIGV4_UNSIGNED_PAYLOAD | SIGV4_OMIT_TOKEN);
	copy = x_malloc(size);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	for (size_t i = 0; i < size && nf < MAX_FIELDS; i++) {
		if (copy[i] == '\0') {
			f[nf++] = copy + start;
			start = i + 1;
		}
	}
	if (nf > 0)
		check_uri(f[0], strlen(f[0]));
	if (nf > 1)
		check_query(f[1], strlen(f[1]));
	check_query((const char *)data + 1, size - 1);   /* raw, NULs and all */
	check_builder(f, nf);
	check_sign(flags, data[0] & 0x10, !(data[0] & 0x20), f, nf, data, size);
	x_free(copy);
	return 0;
}
