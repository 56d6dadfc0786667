#include "aws/digest.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <zlib.h>

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;
static EVP_MD *md_md5;
static EVP_MAC *mac_hmac;

/* Explicit fetches: EVP_sha256() would repeat an implicit fetch (a locked
 * method-store lookup) on every init. Held for the life of the process. */
static void fetch_algorithms(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

const EVP_MD *digest_md_sha256(void)
{
	pthread_once(&fetch_once, fetch_algorithms);
	return md_sha256;
}

EVP_MAC *digest_mac_hmac(void)
{
	pthread_once(&fetch_once, fetch_algorithms);
	return mac_hmac;
}

static const EVP_MD *md_md5_get(void)
{
	pthread_once(&fetch_once, fetch_algorithms);
	return md_md5;
}

void digest_hex(const void *p, size_t n, char *ret)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = p;

	for (size_t i = 0; i < n; i++) {
		ret[2 * i] = hex[s[i] >> 4];
		ret[2 * i + 1] = hex[s[i] & 15];
	}
	ret[2 * n] = '\0';
}

size_t digest_base64(const void *p, size_t n, char *ret)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *s = p;
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		ret[o++] = b64[v >> 18];
		ret[o++] = b64[(v >> 12) & 63];
		ret[o++] = b64[(v >> 6) & 63];
		ret[o++] = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		ret[o++] = b64[v >> 18];
		ret[o++] = b64[(v >> 12) & 63];
		ret[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		ret[o++] = '=';
	}
	ret[o] = '\0';
	return o;
}

static int md_oneshot(const EVP_MD *md, const void *p, size_t n, uint8_t *ret)
{
	if (!md || !EVP_Digest(p, n, ret, NULL, md, NULL))
		return S3G_EINVAL;
	return 0;
}

int digest_sha256(const void *p, size_t n, uint8_t ret[DIGEST_SHA256_LEN])
{
	return md_oneshot(digest_md_sha256(), p, n, ret);
}

int digest_sha256_hex(const void *p, size_t n, char ret[DIGEST_SHA256_HEX_SIZE])
{
	uint8_t h[DIGEST_SHA256_LEN];
	int r = md_oneshot(digest_md_sha256(), p, n, h);

	if (r == 0)
		digest_hex(h, sizeof(h), ret);
	return r;
}

int digest_sha256_b64(const void *p, size_t n, char ret[DIGEST_SHA256_B64_SIZE])
{
	uint8_t h[DIGEST_SHA256_LEN];
	int r = md_oneshot(digest_md_sha256(), p, n, h);

	if (r == 0)
		digest_base64(h, sizeof(h), ret);
	return r;
}

int digest_md5_b64(const void *p, size_t n, char ret[DIGEST_MD5_B64_SIZE])
{
	uint8_t h[16];
	int r = md_oneshot(md_md5_get(), p, n, h);

	if (r == 0)
		digest_base64(h, sizeof(h), ret);
	return r;
}

int digest_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
		       uint8_t ret[DIGEST_SHA256_LEN])
{
	EVP_MAC *mac = digest_mac_hmac();
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outlen = 0;
	int r = S3G_EINVAL;

	if (!mac || !(ctx = EVP_MAC_CTX_new(mac)))
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key, keylen, params) || !EVP_MAC_update(ctx, msg, n) ||
	    !EVP_MAC_final(ctx, ret, &outlen, DIGEST_SHA256_LEN) || outlen != DIGEST_SHA256_LEN)
		goto out;
	r = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return r;
}

uint32_t digest_crc32_update(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *s = p;

	/* zlib's CRC-32 (same polynomial and conditioning) is table-braided and
	 * several times faster than a byte loop; it takes uInt lengths. */
	while (n > 0) {
		uInt chunk = n > 0x40000000u ? 0x40000000u : (uInt)n;

		crc = (uint32_t)crc32(crc, s, chunk);
		s += chunk;
		n -= chunk;
	}
	return crc;
}

void digest_crc32_b64(const void *p, size_t n, char ret[DIGEST_CRC32_B64_SIZE])
{
	uint32_t c = digest_crc32_update(0, p, n);
	uint8_t be[4] = {(uint8_t)(c >> 24), (uint8_t)(c >> 16), (uint8_t)(c >> 8), (uint8_t)c};

	digest_base64(be, sizeof(be), ret);
}
