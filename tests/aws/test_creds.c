/* Credentials: environment and JSON sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aws/creds.h"

static const char *fake_env(const char *name, void *user)
{
	const char *const *kv = user;

	for (; kv[0]; kv += 2)
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	return NULL;
}

static void test_env(void **state)
{
	const char *full[] = {"AWS_ACCESS_KEY_ID", "AKID", "AWS_SECRET_ACCESS_KEY", "SECRET",
			      "AWS_SESSION_TOKEN", "TOK", "AWS_CREDENTIAL_EXPIRATION", "2015-08-30T12:36:00Z", NULL};
	const char *legacy[] = {"AWS_ACCESS_KEY_ID", "AKID", "AWS_SECRET_ACCESS_KEY", "SECRET",
				"AWS_SECURITY_TOKEN", "OLD", NULL};
	const char *half[] = {"AWS_ACCESS_KEY_ID", "AKID", NULL};
	const char *badexp[] = {"AWS_ACCESS_KEY_ID", "AKID", "AWS_SECRET_ACCESS_KEY", "S",
				"AWS_CREDENTIAL_EXPIRATION", "tomorrow", NULL};
	const char *none[] = {NULL};
	struct aws_creds c = {0};
	const char *why = NULL;

	assert_int_equal(creds_from_env(fake_env, full, &c, &why), 0);
	assert_string_equal(c.access_key_id, "AKID");
	assert_string_equal(c.secret_access_key, "SECRET");
	assert_string_equal(c.session_token, "TOK");
	assert_int_equal(c.expiration_ms, 1440938160000);
	assert_int_equal(creds_from_env(fake_env, legacy, &c, &why), 0);
	assert_string_equal(c.session_token, "OLD");
	assert_int_equal(creds_from_env(fake_env, half, &c, &why), S3G_ECONFIG);
	assert_non_null(strstr(why, "both"));
	assert_int_equal(creds_from_env(fake_env, badexp, &c, &why), S3G_ECONFIG);
	assert_non_null(strstr(why, "AWS_CREDENTIAL_EXPIRATION"));
	assert_int_equal(creds_from_env(fake_env, none, &c, &why), S3G_ENOTFOUND);
	aws_creds_clear(&c);
	aws_creds_clear(NULL);
}

static void test_json(void **state)
{
	static const struct {
		enum creds_json_kind kind;
		const char *body;
		int r;
		const char *why;            /* substring of the reason on failure */
		const char *token;
	} cases[] = {
		{CREDS_JSON_PROCESS, "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", 0, NULL, NULL},
		{CREDS_JSON_PROCESS,
		 "{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"SessionToken\":\"T\",\"Expiration\":\"2015-08-30T13:36:00Z\"}",
		 0, NULL, "T"},
		{CREDS_JSON_PROCESS, "{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", S3G_EPARSE, "Version", NULL},
		{CREDS_JSON_CONTAINER,
		 "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Token\":\"T\",\"Expiration\":\"2015-08-30T13:36:00Z\",\"RoleArn\":\"x\"}",
		 0, NULL, "T"},
		{CREDS_JSON_CONTAINER, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", S3G_EPARSE, "Expiration", NULL},
		{CREDS_JSON_IMDS,
		 "{\"Code\":\"Success\",\"LastUpdated\":\"2015-08-30T12:36:00Z\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIA\","
		 "\"SecretAccessKey\":\"S\",\"Token\":\"T\",\"Expiration\":\"2017-11-21T01:25:48Z\"}",
		 0, NULL, "T"},
		{CREDS_JSON_IMDS, "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no\"}", S3G_EPARSE, "Code", NULL},
		{CREDS_JSON_IMDS, "[1,2]", S3G_EPARSE, "object", NULL},
		{CREDS_JSON_IMDS, "{\"AccessKeyId\":", S3G_EPARSE, "object", NULL},
		{CREDS_JSON_CONTAINER, "{\"AccessKeyId\":\"A\",\"Expiration\":\"2015-08-30T13:36:00Z\"}", S3G_EPARSE,
		 "SecretAccessKey", NULL},
		{CREDS_JSON_CONTAINER, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"soon\"}", S3G_EPARSE,
		 "Expiration", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aws_creds c = {0};
		const char *why = NULL;
		int r = creds_parse_json(cases[i].kind, cases[i].body, strlen(cases[i].body), &c, &why);

		if (r != cases[i].r)
			fail_msg("case %zu: r=%d (%s)", i, r, why ? why : "");
		if (r == 0) {
			assert_string_equal(c.secret_access_key, "S");
			if (cases[i].token)
				assert_string_equal(c.session_token, cases[i].token);
			else
				assert_null(c.session_token);
		} else if (!strstr(why, cases[i].why)) {
			fail_msg("case %zu: reason '%s' lacks '%s'", i, why, cases[i].why);
		}
		aws_creds_clear(&c);
	}
}

static void test_json_nul_byte(void **state)
{
	/* found by fuzz_creds: a NUL inside the document */
	static const char doc[] = "\xd8" "1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
	struct aws_creds c = {0};
	const char *why = NULL;

	assert_int_equal(creds_parse_json(CREDS_JSON_IMDS, doc, sizeof(doc) - 1, &c, &why), S3G_EPARSE);
	assert_non_null(strstr(why, "NUL"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_nul_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
