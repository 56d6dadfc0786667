#define _GNU_SOURCE
/* AES-256-GCM envelopes and key loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>

#include "core/xalloc.h"
#include "store/secrets.h"

static const char hexkey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

static void test_seal_open_roundtrip(void **state)
{
	struct secrets_key k;
	uint8_t *env = NULL, *env2 = NULL;
	size_t len, len2, n;
	char *plain = NULL;

	assert_int_equal(secrets_key_parse((const uint8_t *)hexkey, strlen(hexkey), &k), 0);
	assert_int_equal(k.key[31], 0x1f);
	assert_int_equal(secrets_seal(&k, "ctx", "wJalrXUtnFEMI/K7MDENG", 21, &env, &len), 0);
	assert_int_equal(len, SECRETS_HEADER + 21 + SECRETS_TAG);
	assert_int_equal(env[0], 1);
	assert_null(memmem(env, len, "wJalr", 5));
	assert_int_equal(secrets_seal(&k, "ctx", "wJalrXUtnFEMI/K7MDENG", 21, &env2, &len2), 0);
	assert_memory_not_equal(env + 5, env2 + 5, 12);   /* fresh nonce */
	assert_int_equal(secrets_open(&k, "ctx", env, len, &plain, &n), 0);
	assert_int_equal(n, 21);
	assert_string_equal(plain, "wJalrXUtnFEMI/K7MDENG");
	x_free(plain);
	/* wrong context, tampering, wrong key */
	assert_int_equal(secrets_open(&k, "other", env, len, &plain, &n), S3G_EPARSE);
	env[SECRETS_HEADER] ^= 1;
	assert_int_equal(secrets_open(&k, "ctx", env, len, &plain, &n), S3G_EPARSE);
	env[SECRETS_HEADER] ^= 1;
	{
		struct secrets_key k2;
		uint8_t raw[32];

		memset(raw, 7, sizeof(raw));
		assert_int_equal(secrets_key_parse(raw, 32, &k2), 0);
		assert_int_equal(secrets_open(&k2, "ctx", env, len, &plain, &n), S3G_ECONFIG);
	}
	x_free(env);
	x_free(env2);
}

static void test_key_sources(void **state)
{
	char dir[] = "/tmp/s3g-secrets-XXXXXX", path[128];
	struct secrets_key k;
	char *p = NULL;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secrets-key", dir);
	f = fopen(path, "w");
	fputs(hexkey, f);
	fclose(f);
	unsetenv("S3GRANT_SECRETS_KEY_FILE");
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(secrets_key_path(NULL, &p), -ENOENT);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(secrets_key_path(NULL, &p), 0);
	assert_string_equal(p, path);
	assert_int_equal(secrets_key_load(p, &k), 0);
	x_free(p);
	setenv("S3GRANT_SECRETS_KEY_FILE", "/env/path", 1);
	assert_int_equal(secrets_key_path(NULL, &p), 0);
	assert_string_equal(p, "/env/path");
	x_free(p);
	assert_int_equal(secrets_key_path("/flag", &p), 0);
	assert_string_equal(p, "/flag");
	x_free(p);
	assert_int_equal(secrets_key_parse((const uint8_t *)"short", 5, &k), S3G_ECONFIG);
	assert_int_equal(secrets_key_load("/nonexistent/key", &k), -ENOENT);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open_roundtrip),
		cmocka_unit_test(test_key_sources),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
