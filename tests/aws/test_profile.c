/* AWS shared config/credentials parsing and chain resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aws/profile.h"

static void parse2(struct profile_set *set, const char *config, const char *creds)
{
	struct profile_error e = {0};

	profile_set_init(set);
	if (config)
		assert_int_equal(profile_parse(set, PROFILE_FILE_CONFIG, config, strlen(config), &e), 0);
	if (creds)
		assert_int_equal(profile_parse(set, PROFILE_FILE_CREDENTIALS, creds, strlen(creds), &e), 0);
}

static const char *get(const struct profile_set *set, const char *prof, const char *key)
{
	return profile_get(profile_find(set, prof), key);
}

static void test_syntax(void **state)
{
	struct profile_set set;
	const char *config =
		"# comment\n"
		"; another\n"
		"[default]\r\n"
		"region = us-east-1 # trailing comment\n"
		"output=json;not-a-comment\n"
		"[profile dev]   # header comment\n"
		"region\t=\teu-west-1\n"
		"s3 =\n"
		"  max_concurrent_requests = 20\n"
		"  addressing_style = path\n"
		"note = first\n"
		"  second line\n"
		"[sso-session corp]\n"
		"sso_region = us-east-1\n"
		"[services x]\n"
		"s3 = y\n"
		"[unprefixed]\n"
		"region = nowhere\n";

	parse2(&set, config, NULL);
	assert_string_equal(get(&set, "default", "region"), "us-east-1");
	assert_string_equal(get(&set, "default", "output"), "json;not-a-comment");
	assert_string_equal(get(&set, "dev", "region"), "eu-west-1");
	assert_string_equal(get(&set, "dev", "s3.max_concurrent_requests"), "20");
	assert_string_equal(get(&set, "dev", "s3.addressing_style"), "path");
	assert_string_equal(get(&set, "dev", "note"), "first\nsecond line");
	assert_null(profile_find(&set, "corp"));
	assert_null(profile_find(&set, "x"));
	assert_null(profile_find(&set, "unprefixed"));
	profile_set_free(&set);
}

static void test_profile_default_wins(void **state)
{
	struct profile_set set;

	parse2(&set, "[default]\nregion = a\nfoo = 1\n[profile default]\nregion = b\n[default]\nregion = c\n", NULL);
	assert_string_equal(get(&set, "default", "region"), "b");
	assert_null(get(&set, "default", "foo"));
	profile_set_free(&set);
}

static void test_credentials_file_rules(void **state)
{
	struct profile_set set;

	parse2(&set, "[profile dev]\nregion = r\naws_access_key_id = FROMCONFIG\n",
	       "[dev]\naws_access_key_id = AKID\naws_secret_access_key = S#x\n"
	       "[profile skipped]\naws_access_key_id = nope\n");
	assert_string_equal(get(&set, "dev", "region"), "r");
	assert_string_equal(get(&set, "dev", "aws_access_key_id"), "AKID");   /* credentials win */
	assert_string_equal(get(&set, "dev", "aws_secret_access_key"), "S#x");
	assert_null(profile_find(&set, "skipped"));
	assert_null(profile_find(&set, "profile skipped"));
	profile_set_free(&set);
}

static void test_syntax_errors(void **state)
{
	static const struct {
		const char *text;
		int line;
	} cases[] = {
		{"[default\nregion = x\n", 1},
		{"[default]\nno equals here\n", 2},
		{"[default]\n = value\n", 2},
		{"[default] junk\n", 1},
		{"[default]\n\n\nregion =\n  not a pair\n", 5},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct profile_set set;
		struct profile_error e = {0};

		profile_set_init(&set);
		assert_int_equal(profile_parse(&set, PROFILE_FILE_CONFIG, cases[i].text, strlen(cases[i].text), &e),
				 S3G_EPARSE);
		assert_int_equal(e.line, cases[i].line);
		assert_non_null(e.reason);
		profile_set_free(&set);
	}
}

static void test_resolve_static(void **state)
{
	struct profile_set set;
	struct cred_chain c;
	const char *why = NULL;

	parse2(&set, NULL, "[default]\naws_access_key_id = AKID\naws_secret_access_key = SECRET\naws_session_token = TOK\n"
			   "[half]\naws_access_key_id = AKID\n[empty]\nregion = x\n");
	assert_int_equal(profile_resolve(&set, "default", &c, &why), 0);
	assert_int_equal(c.base, CRED_SOURCE_STATIC);
	assert_string_equal(c.access_key_id, "AKID");
	assert_string_equal(c.secret_access_key, "SECRET");
	assert_string_equal(c.session_token, "TOK");
	assert_int_equal(c.nhops, 0);

	assert_int_equal(profile_resolve(&set, "half", &c, &why), S3G_ECONFIG);
	assert_non_null(strstr(why, "both"));
	assert_int_equal(profile_resolve(&set, "empty", &c, &why), 0);
	assert_int_equal(c.base, CRED_SOURCE_NONE);
	assert_int_equal(profile_resolve(&set, "missing", &c, &why), S3G_ENOTFOUND);
	profile_set_free(&set);
}

static void test_resolve_role_chain(void **state)
{
	struct profile_set set;
	struct cred_chain c;
	const char *why = NULL;
	const char *config =
		"[profile outer]\n"
		"role_arn = arn:aws:iam::111122223333:role/outer\n"
		"source_profile = middle\n"
		"external_id = tenant-uuid\n"
		"role_session_name = s3grantd\n"
		"duration_seconds = 1800\n"
		"[profile middle]\n"
		"role_arn = arn:aws:iam::111122223333:role/middle\n"
		"source_profile = base\n"
		"[profile base]\n"
		"aws_access_key_id = AKID\n"
		"aws_secret_access_key = SECRET\n"
		"[profile self]\n"
		"role_arn = arn:aws:iam::111122223333:role/self\n"
		"source_profile = self\n"
		"aws_access_key_id = SELFKEY\n"
		"aws_secret_access_key = SELFSECRET\n"
		"[profile imds]\n"
		"role_arn = arn:aws:iam::111122223333:role/r\n"
		"credential_source = Ec2InstanceMetadata\n"
		"[profile web]\n"
		"role_arn = arn:aws:iam::111122223333:role/web\n"
		"web_identity_token_file = /var/run/token\n"
		"[profile proc]\n"
		"credential_process = /usr/bin/get-creds --json\n";

	parse2(&set, config, NULL);
	assert_int_equal(profile_resolve(&set, "outer", &c, &why), 0);
	assert_int_equal(c.base, CRED_SOURCE_STATIC);
	assert_string_equal(c.access_key_id, "AKID");
	assert_int_equal(c.nhops, 2);
	assert_string_equal(c.hops[0].role_arn, "arn:aws:iam::111122223333:role/middle");
	assert_null(c.hops[0].external_id);
	assert_string_equal(c.hops[1].role_arn, "arn:aws:iam::111122223333:role/outer");
	assert_string_equal(c.hops[1].external_id, "tenant-uuid");
	assert_string_equal(c.hops[1].session_name, "s3grantd");
	assert_int_equal(c.hops[1].duration_seconds, 1800);

	assert_int_equal(profile_resolve(&set, "self", &c, &why), 0);
	assert_string_equal(c.access_key_id, "SELFKEY");
	assert_int_equal(c.nhops, 1);

	assert_int_equal(profile_resolve(&set, "imds", &c, &why), 0);
	assert_int_equal(c.base, CRED_SOURCE_IMDS);
	assert_int_equal(c.nhops, 1);

	assert_int_equal(profile_resolve(&set, "web", &c, &why), 0);
	assert_int_equal(c.base, CRED_SOURCE_WEB_IDENTITY);
	assert_string_equal(c.web_identity_role_arn, "arn:aws:iam::111122223333:role/web");
	assert_int_equal(c.nhops, 0);

	assert_int_equal(profile_resolve(&set, "proc", &c, &why), 0);
	assert_int_equal(c.base, CRED_SOURCE_PROCESS);
	assert_string_equal(c.process_command, "/usr/bin/get-creds --json");
	profile_set_free(&set);
}

static void test_resolve_errors(void **state)
{
	static const struct {
		const char *config;
		const char *why;
	} cases[] = {
		{"[profile p]\nrole_arn = arn:aws:iam::1:role/r\n", "requires source_profile"},
		{"[profile p]\nrole_arn = a\nsource_profile = q\ncredential_source = Environment\n[profile q]\naws_access_key_id=a\naws_secret_access_key=b\n",
		 "mutually exclusive"},
		{"[profile p]\nrole_arn = a\nsource_profile = q\n[profile q]\nrole_arn = b\nsource_profile = p\n", "loop"},
		{"[profile p]\nrole_arn = a\nsource_profile = nowhere\n", "missing profile"},
		{"[profile p]\nrole_arn = a\nsource_profile = p\n", "names itself"},
		{"[profile p]\nrole_arn = a\ncredential_source = Magic\n", "credential_source"},
		{"[profile p]\nrole_arn = a\nsource_profile = q\nduration_seconds = 60\n[profile q]\naws_access_key_id=a\naws_secret_access_key=b\n",
		 "duration_seconds"},
		{"[profile p]\nweb_identity_token_file = /t\n", "requires role_arn"},
		{"[profile p]\nrole_arn = a\nsource_profile = q\n[profile q]\nregion = x\n", "no credentials"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct profile_set set;
		struct cred_chain c;
		const char *why = NULL;

		parse2(&set, cases[i].config, NULL);
		assert_int_equal(profile_resolve(&set, "p", &c, &why), S3G_ECONFIG);
		assert_non_null(why);
		if (!strstr(why, cases[i].why))
			fail_msg("case %zu: reason '%s' lacks '%s'", i, why, cases[i].why);
		profile_set_free(&set);
	}
}

static void test_chain_too_long(void **state)
{
	char text[8192];
	size_t n = 0;
	struct profile_set set;
	struct cred_chain c;
	const char *why = NULL;

	for (int i = 0; i < PROFILE_MAX_HOPS + 2; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "[profile p%d]\nrole_arn = arn:aws:iam::111122223333:role/r%d\nsource_profile = p%d\n",
				      i, i, i + 1);
	snprintf(text + n, sizeof(text) - n, "[profile p%d]\naws_access_key_id=a\naws_secret_access_key=b\n",
		 PROFILE_MAX_HOPS + 2);
	parse2(&set, text, NULL);
	assert_int_equal(profile_resolve(&set, "p0", &c, &why), S3G_ECONFIG);
	assert_non_null(strstr(why, "too many"));
	assert_int_equal(profile_resolve(&set, "p3", &c, &why), 0);
	assert_int_equal(c.nhops, PROFILE_MAX_HOPS - 1);
	profile_set_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_profile_default_wins),
		cmocka_unit_test(test_credentials_file_rules),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_resolve_static),
		cmocka_unit_test(test_resolve_role_chain),
		cmocka_unit_test(test_resolve_errors),
		cmocka_unit_test(test_chain_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
