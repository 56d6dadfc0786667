/* aws/endpoint: S3 Control, STS and S3 endpoint resolution (injected environment). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aws/endpoint.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/* "NAME=value" pairs, NULL-terminated. */
static const char *fake_env(const char *name, void *user)
{
	const char *const *kv = user;
	size_t n = strlen(name);

	for (; kv && *kv; kv++)
		if (strncmp(*kv, name, n) == 0 && (*kv)[n] == '=')
			return *kv + n + 1;
	return NULL;
}

static void cfg_env(struct endpoint_cfg *cfg, const char *const *kv)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->getenv = fake_env;
	cfg->getenv_user = (void *)(uintptr_t)kv;
}

static void check(const struct endpoint *e, const char *base, const char *host, const char *prefix,
		  const char *region)
{
	assert_string_equal(e->base_url, base);
	assert_string_equal(e->host, host);
	assert_string_equal(e->path_prefix, prefix);
	assert_string_equal(e->region, region);
}

static void test_validation(void **state)
{
	assert_true(endpoint_valid_account("111122223333"));
	assert_false(endpoint_valid_account("11112222333"));
	assert_false(endpoint_valid_account("1111222233334"));
	assert_false(endpoint_valid_account("11112222333a"));
	assert_false(endpoint_valid_account(""));
	assert_false(endpoint_valid_account(NULL));

	assert_true(endpoint_valid_region("us-east-1"));
	assert_true(endpoint_valid_region("cn-north-1"));
	assert_false(endpoint_valid_region(""));
	assert_false(endpoint_valid_region("us-east-1.evil.com"));
	assert_false(endpoint_valid_region("-us"));
	assert_false(endpoint_valid_region("us-"));
	assert_false(endpoint_valid_region("US-EAST-1"));
	assert_false(endpoint_valid_region("us_east_1"));
	assert_false(endpoint_valid_region("us/east"));

	assert_true(endpoint_valid_bucket("my-bucket"));
	assert_true(endpoint_valid_bucket("my.bucket.name"));
	assert_true(endpoint_valid_bucket("abc"));
	assert_false(endpoint_valid_bucket("ab"));
	assert_false(endpoint_valid_bucket("My-Bucket"));
	assert_false(endpoint_valid_bucket("my_bucket"));
	assert_false(endpoint_valid_bucket("-bucket"));
	assert_false(endpoint_valid_bucket("bucket-"));
	assert_false(endpoint_valid_bucket("my..bucket"));
	assert_false(endpoint_valid_bucket("my.-bucket"));
	assert_false(endpoint_valid_bucket("192.168.5.4"));
	assert_false(endpoint_valid_bucket("a234567890123456789012345678901234567890123456789012345678901234"));
	assert_true(endpoint_bucket_virtual_hostable("my-bucket"));
	assert_false(endpoint_bucket_virtual_hostable("my.bucket"));

	assert_string_equal(endpoint_dns_suffix("eu-west-1"), "amazonaws.com");
	assert_string_equal(endpoint_dns_suffix("cn-northwest-1"), "amazonaws.com.cn");
}

static void test_s3control(void **state)
{
	static const char *const none[] = {NULL};
	static const char *const svc[] = {"AWS_ENDPOINT_URL=http://global:1", "AWS_ENDPOINT_URL_S3_CONTROL=http://127.0.0.1:4510/", NULL};
	static const char *const glob[] = {"AWS_ENDPOINT_URL=https://LocalHost:8443/base/", NULL};
	static const char *const ign[] = {"AWS_ENDPOINT_URL_S3_CONTROL=http://127.0.0.1:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true", NULL};
	struct endpoint_cfg cfg;
	struct endpoint e;

	cfg_env(&cfg, none);
	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "us-west-2", &e), 0);
	check(&e, "https://111122223333.s3-control.us-west-2.amazonaws.com",
	      "111122223333.s3-control.us-west-2.amazonaws.com", "", "us-west-2");
	assert_false(e.custom);
	endpoint_free(&e);

	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "cn-north-1", &e), 0);
	check(&e, "https://111122223333.s3-control.cn-north-1.amazonaws.com.cn",
	      "111122223333.s3-control.cn-north-1.amazonaws.com.cn", "", "cn-north-1");
	endpoint_free(&e);

	assert_int_equal(endpoint_s3control(&cfg, "1111", "us-west-2", &e), S3G_EINVAL);
	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "us-west-2.evil", &e), S3G_EINVAL);

	/* service variable beats the global one; no account prefix on custom endpoints */
	cfg_env(&cfg, svc);
	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "us-east-1", &e), 0);
	check(&e, "http://127.0.0.1:4510", "127.0.0.1:4510", "", "us-east-1");
	assert_true(e.custom);
	endpoint_free(&e);

	/* config beats the environment */
	cfg.s3control_url = "https://fake.example:9000";
	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "us-east-1", &e), 0);
	check(&e, "https://fake.example:9000", "fake.example:9000", "", "us-east-1");
	endpoint_free(&e);

	/* global variable, host lower-cased, path kept, trailing slash dropped */
	cfg_env(&cfg, glob);
	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "eu-central-1", &e), 0);
	check(&e, "https://localhost:8443/base", "localhost:8443", "/base", "eu-central-1");
	endpoint_free(&e);

	cfg_env(&cfg, ign);
	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "us-east-1", &e), 0);
	assert_false(e.custom);
	endpoint_free(&e);

	/* no getenv at all */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(endpoint_s3control(&cfg, "111122223333", "us-east-1", &e), 0);
	assert_false(e.custom);
	endpoint_free(&e);
}

static void test_bad_custom_urls(void **state)
{
	static const char *const bad[] = {
		"ftp://x", "localhost:4566", "http://", "http://:80", "http://host:", "http://host:0",
		"http://host:65536", "http://host:12a", "http://user@host", "http://host?x=1", "http://host/p#f",
		"http://ho st", "http://[::1", "http://[]",
	};
	struct endpoint_cfg cfg;
	struct endpoint e;

	for (size_t i = 0; i < N_(bad); i++) {
		cfg_env(&cfg, NULL);
		cfg.sts_url = bad[i];
		if (endpoint_sts(&cfg, "us-east-1", &e) != S3G_EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
	/* default ports are dropped so Host matches what curl sends */
	cfg.sts_url = "https://sts.local:443";
	assert_int_equal(endpoint_sts(&cfg, "us-east-1", &e), 0);
	check(&e, "https://sts.local", "sts.local", "", "us-east-1");
	endpoint_free(&e);
	cfg.sts_url = "http://[::1]:80/";
	assert_int_equal(endpoint_sts(&cfg, "us-east-1", &e), 0);
	check(&e, "http://[::1]", "[::1]", "", "us-east-1");
	endpoint_free(&e);
	cfg.sts_url = "http://[::1]:4566";
	assert_int_equal(endpoint_sts(&cfg, "us-east-1", &e), 0);
	check(&e, "http://[::1]:4566", "[::1]:4566", "", "us-east-1");
	endpoint_free(&e);
}

static void test_sts(void **state)
{
	static const char *const env[] = {"AWS_ENDPOINT_URL_STS=http://127.0.0.1:5000", NULL};
	struct endpoint_cfg cfg;
	struct endpoint e;

	cfg_env(&cfg, NULL);
	assert_int_equal(endpoint_sts(&cfg, "eu-west-1", &e), 0);
	check(&e, "https://sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com", "", "eu-west-1");
	endpoint_free(&e);
	assert_int_equal(endpoint_sts(&cfg, "cn-north-1", &e), 0);
	check(&e, "https://sts.cn-north-1.amazonaws.com.cn", "sts.cn-north-1.amazonaws.com.cn", "", "cn-north-1");
	endpoint_free(&e);
	assert_int_equal(endpoint_sts(&cfg, "aws-global", &e), 0);
	check(&e, "https://sts.amazonaws.com", "sts.amazonaws.com", "", "us-east-1");
	endpoint_free(&e);
	assert_int_equal(endpoint_sts(&cfg, "", &e), S3G_EINVAL);
	assert_int_equal(endpoint_sts(&cfg, NULL, &e), S3G_EINVAL);

	cfg_env(&cfg, env);
	assert_int_equal(endpoint_sts(&cfg, "eu-west-1", &e), 0);
	check(&e, "http://127.0.0.1:5000", "127.0.0.1:5000", "", "eu-west-1");
	endpoint_free(&e);
}

static void test_s3(void **state)
{
	static const char *const env_host[] = {"AWS_ENDPOINT_URL_S3=http://minio.local:9000/s3/", NULL};
	static const char *const env_ip[] = {"AWS_ENDPOINT_URL=http://127.0.0.1:5000", NULL};
	struct endpoint_cfg cfg;
	struct endpoint e;

	cfg_env(&cfg, NULL);
	assert_int_equal(endpoint_s3(&cfg, "my-bucket", "us-west-2", &e), 0);
	check(&e, "https://my-bucket.s3.us-west-2.amazonaws.com", "my-bucket.s3.us-west-2.amazonaws.com", "",
	      "us-west-2");
	assert_false(e.path_style);
	endpoint_free(&e);

	/* dotted names: path style (wildcard certificates do not cover them) */
	assert_int_equal(endpoint_s3(&cfg, "my.bucket", "us-west-2", &e), 0);
	check(&e, "https://s3.us-west-2.amazonaws.com/my.bucket", "s3.us-west-2.amazonaws.com", "/my.bucket",
	      "us-west-2");
	assert_true(e.path_style);
	endpoint_free(&e);

	assert_int_equal(endpoint_s3(&cfg, "exports", "cn-north-1", &e), 0);
	check(&e, "https://exports.s3.cn-north-1.amazonaws.com.cn", "exports.s3.cn-north-1.amazonaws.com.cn", "",
	      "cn-north-1");
	endpoint_free(&e);

	cfg.s3_force_path_style = 1;
	assert_int_equal(endpoint_s3(&cfg, "my-bucket", "us-west-2", &e), 0);
	check(&e, "https://s3.us-west-2.amazonaws.com/my-bucket", "s3.us-west-2.amazonaws.com", "/my-bucket",
	      "us-west-2");
	endpoint_free(&e);

	assert_int_equal(endpoint_s3(&cfg, "Bad_Bucket", "us-west-2", &e), S3G_EINVAL);
	assert_int_equal(endpoint_s3(&cfg, "ok-bucket", "us west", &e), S3G_EINVAL);

	/* custom host: still virtual-hosted unless forced or dotted */
	cfg_env(&cfg, env_host);
	assert_int_equal(endpoint_s3(&cfg, "my-bucket", "us-east-1", &e), 0);
	check(&e, "http://my-bucket.minio.local:9000/s3", "my-bucket.minio.local:9000", "/s3", "us-east-1");
	assert_true(e.custom);
	endpoint_free(&e);
	assert_int_equal(endpoint_s3(&cfg, "my.bucket", "us-east-1", &e), 0);
	check(&e, "http://minio.local:9000/s3/my.bucket", "minio.local:9000", "/s3/my.bucket", "us-east-1");
	endpoint_free(&e);
	cfg.s3_force_path_style = 1;
	assert_int_equal(endpoint_s3(&cfg, "my-bucket", "us-east-1", &e), 0);
	check(&e, "http://minio.local:9000/s3/my-bucket", "minio.local:9000", "/s3/my-bucket", "us-east-1");
	endpoint_free(&e);

	/* custom IP endpoint: path style */
	cfg_env(&cfg, env_ip);
	assert_int_equal(endpoint_s3(&cfg, "my-bucket", "us-east-1", &e), 0);
	check(&e, "http://127.0.0.1:5000/my-bucket", "127.0.0.1:5000", "/my-bucket", "us-east-1");
	assert_true(e.path_style);
	endpoint_free(&e);

	/* config beats the environment */
	cfg.s3_url = "https://s3.internal";
	assert_int_equal(endpoint_s3(&cfg, "my-bucket", "us-east-1", &e), 0);
	check(&e, "https://my-bucket.s3.internal", "my-bucket.s3.internal", "", "us-east-1");
	endpoint_free(&e);
	endpoint_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_s3control),
		cmocka_unit_test(test_bad_custom_urls),
		cmocka_unit_test(test_sts),
		cmocka_unit_test(test_s3),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
