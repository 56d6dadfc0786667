/* digest: SHA-256, HMAC-SHA256 (RFC 4231), MD5/CRC32/SHA-256 base64, hex, base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aws/digest.h"

static void test_hex_base64(void **state)
{
	static const struct {
		const char *in;
		const char *b64;
	} b64[] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
		{"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
	};
	char out[64];
	const uint8_t bytes[] = {0x00, 0x0f, 0xf0, 0xff, 0xfb};

	for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
		assert_int_equal(digest_base64(b64[i].in, strlen(b64[i].in), out), strlen(b64[i].b64));
		assert_string_equal(out, b64[i].b64);
	}
	digest_hex(bytes, sizeof(bytes), out);
	assert_string_equal(out, "000ff0fffb");
	digest_base64(bytes, sizeof(bytes), out);
	assert_string_equal(out, "AA/w//s=");
	digest_hex("", 0, out);
	assert_string_equal(out, "");
}

static void test_sha256(void **state)
{
	char hex[DIGEST_SHA256_HEX_SIZE], b64[DIGEST_SHA256_B64_SIZE];
	uint8_t raw[DIGEST_SHA256_LEN];

	assert_int_equal(digest_sha256_hex("", 0, hex), 0);
	assert_string_equal(hex, DIGEST_EMPTY_SHA256_HEX);
	assert_int_equal(digest_sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(digest_sha256("abc", 3, raw), 0);
	assert_int_equal(raw[0], 0xba);
	assert_int_equal(digest_sha256_b64("", 0, b64), 0);
	assert_string_equal(b64, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

static void test_hmac(void **state)
{
	uint8_t mac[DIGEST_SHA256_LEN], key[131];
	char hex[DIGEST_SHA256_HEX_SIZE];

	/* RFC 4231 test case 2 */
	assert_int_equal(digest_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
	digest_hex(mac, sizeof(mac), hex);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* RFC 4231 test case 6: key longer than the block */
	memset(key, 0xaa, sizeof(key));
	assert_int_equal(digest_hmac_sha256(key, sizeof(key), "Test Using Larger Than Block-Size Key - Hash Key First",
					    54, mac), 0);
	digest_hex(mac, sizeof(mac), hex);
	assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_checksums(void **state)
{
	char md5[DIGEST_MD5_B64_SIZE], crc[DIGEST_CRC32_B64_SIZE];

	assert_int_equal(digest_md5_b64("", 0, md5), 0);
	assert_string_equal(md5, DIGEST_EMPTY_MD5_B64);
	assert_int_equal(digest_md5_b64("hello", 5, md5), 0);
	assert_string_equal(md5, "XUFAKrxLKna5cZ2REBfFkg==");   /* golden PutObject unsigned.bin */
	digest_crc32_b64("", 0, crc);
	assert_string_equal(crc, DIGEST_EMPTY_CRC32_B64);
	digest_crc32_b64("123456789", 9, crc);
	assert_string_equal(crc, "y/Q5Jg==");                   /* check value 0xCBF43926 */
	digest_crc32_b64("hello", 5, crc);
	assert_string_equal(crc, "NhCmhg==");
	assert_int_equal(digest_crc32_update(digest_crc32_update(0, "1234", 4), "56789", 5), 0xcbf43926u);
	assert_non_null(digest_md_sha256());
	assert_non_null(digest_mac_hmac());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_base64),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_hmac),
		cmocka_unit_test(test_checksums),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
