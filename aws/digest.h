/* digest.h — the hashes AWS requests need, over OpenSSL 3.
 *
 * SHA-256 (hex for x-amz-content-sha256 and SigV4, base64 for
 * x-amz-checksum-sha256), HMAC-SHA256 (SigV4 key derivation), MD5 base64
 * (Content-MD5), CRC32 base64 (x-amz-checksum-crc32, the big-endian CRC32
 * of the body), hex and base64 encoding.
 *
 * Output buffers are caller-owned fixed arrays of the *_SIZE constants
 * (NUL included); nothing here allocates except inside OpenSSL's one-shot
 * digests. Functions that go through OpenSSL return 0 or S3G_EINVAL when
 * the algorithm is unavailable (e.g. MD5 under a FIPS-only provider); the
 * pure ones (hex, base64, CRC32) cannot fail. Algorithms are fetched once
 * per process (thread-safe); every function is safe to call from any thread.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"

#define DIGEST_SHA256_LEN       32
#define DIGEST_SHA256_HEX_SIZE  65   /* 64 hex digits + NUL */
#define DIGEST_SHA256_B64_SIZE  45   /* 44 + NUL */
#define DIGEST_MD5_B64_SIZE     25   /* 24 + NUL */
#define DIGEST_CRC32_B64_SIZE   9    /* 8 + NUL */

/* SHA-256 of the empty string, the payload hash of every body-less request. */
#define DIGEST_EMPTY_SHA256_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Content-MD5 and x-amz-checksum-crc32 of the empty body. */
#define DIGEST_EMPTY_MD5_B64    "1B2M2Y8AsgTpgAmY7PhCfg=="
#define DIGEST_EMPTY_CRC32_B64  "AAAAAA=="

/* Lower-case hex of n bytes into ret (2n+1 bytes, NUL-terminated). */
void digest_hex(const void *p, size_t n, char *ret);
/* Standard base64 with padding, no line breaks, into ret (4*((n+2)/3)+1
 * bytes, NUL-terminated). Returns the length written, without the NUL. */
size_t digest_base64(const void *p, size_t n, char *ret);

int digest_sha256(const void *p, size_t n, uint8_t ret[DIGEST_SHA256_LEN]) S3G_WUR;
int digest_sha256_hex(const void *p, size_t n, char ret[DIGEST_SHA256_HEX_SIZE]) S3G_WUR;
int digest_sha256_b64(const void *p, size_t n, char ret[DIGEST_SHA256_B64_SIZE]) S3G_WUR;
int digest_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
		       uint8_t ret[DIGEST_SHA256_LEN]) S3G_WUR;
/* Content-MD5 value of a body. */
int digest_md5_b64(const void *p, size_t n, char ret[DIGEST_MD5_B64_SIZE]) S3G_WUR;

/* CRC-32 (IEEE 802.3, as zlib): start with crc = 0, feed pieces in order. */
uint32_t digest_crc32_update(uint32_t crc, const void *p, size_t n);
/* x-amz-checksum-crc32 value of a body: base64 of the 4 big-endian CRC bytes. */
void digest_crc32_b64(const void *p, size_t n, char ret[DIGEST_CRC32_B64_SIZE]);

/* The process-wide pre-fetched algorithms, for callers that keep their own
 * reusable contexts (the SigV4 signer). NULL when unavailable. Not owned. */
const EVP_MD *digest_md_sha256(void);
EVP_MAC *digest_mac_hmac(void);
