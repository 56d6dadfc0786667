/* Entitlement validation: principals, buckets, scopes, prefixes, access (tables). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/validate.h"

struct principal_case {
	const char *in;
	int ok;
	enum validate_principal kind;
	const char *why;   /* expected message (failures), NULL = any */
};

static const struct principal_case principals[] = {
	{"arn:aws:iam::111122223333:user/alice", 1, VALIDATE_IAM_USER, NULL},
	{"arn:aws:iam::111122223333:role/analyst", 1, VALIDATE_IAM_ROLE, NULL},
	{"arn:aws:iam::111122223333:role/team/data/analyst", 1, VALIDATE_IAM_ROLE, NULL},
	{"arn:aws-cn:iam::111122223333:user/a.b@c=d,e+f_g-h", 1, VALIDATE_IAM_USER, NULL},
	{"arn:aws-us-gov:iam::111122223333:user/x", 1, VALIDATE_IAM_USER, NULL},
	{"arn:aws-iso-b:iam::111122223333:role/x", 1, VALIDATE_IAM_ROLE, NULL},
	{"a1b2c3d4-5678-90ab-cdef-112233445566", 1, VALIDATE_DIRECTORY_USER, NULL},
	{"906753f2b1-a1b2c3d4-5678-90ab-cdef-112233445566", 1, VALIDATE_DIRECTORY_USER, NULL},
	{"", 0, 0, "principal: empty"},
	{"alice", 0, 0, "principal: not an IAM user or role ARN or an Identity Center user id"},
	{"A1B2C3D4-5678-90AB-CDEF-112233445566", 0, 0, NULL},
	{"a1b2c3d4-5678-90ab-cdef-11223344556", 0, 0, NULL},
	{"arn:aws:iam::111122223333:group/devs", 0, 0, "principal: ARN resource is not user/ or role/"},
	{"arn:aws:s3:::bucket", 0, 0, "principal: not an IAM user or role ARN"},
	{"arn:aws:iam::11112222333:user/alice", 0, 0, "principal: ARN account is not 12 digits"},
	{"arn:aws:iam::1111222233334:user/alice", 0, 0, "principal: ARN account is not 12 digits"},
	{"arn:aws:iam::111122223333:user/", 0, 0, "principal: IAM name must be 1 to 64 characters"},
	{"arn:aws:iam::111122223333:user/a b", 0, 0, NULL},
	{"arn:aws:iam::111122223333:user//alice", 0, 0, "principal: empty IAM path segment"},
	{"arn:aws:iam::111122223333:user/p#/alice", 0, 0, NULL},
	{"arn:aws-:iam::111122223333:user/alice", 0, 0, "principal: bad partition in ARN"},
	{"arn:AWS:iam::111122223333:user/alice", 0, 0, NULL},
	{"arn:aws:iam::111122223333:user/alice\n", 0, 0, NULL},
	{"arn:aws:iam::111122223333:user/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1, VALIDATE_IAM_USER, NULL},
	{"arn:aws:iam::111122223333:user/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0, NULL},
};

static void test_principals(void **state)
{
	for (size_t i = 0; i < sizeof(principals) / sizeof(principals[0]); i++) {
		const struct principal_case *c = &principals[i];
		enum validate_principal k = VALIDATE_PRINCIPAL_MAX_;
		const char *why = NULL;
		int r = validate_principal(c->in, strlen(c->in), &k, &why);

		if (c->ok) {
			if (r != 0)
				fail_msg("case %zu %s: %s", i, c->in, why);
			assert_int_equal(k, c->kind);
		} else {
			if (r != S3G_EINVAL)
				fail_msg("case %zu %s accepted", i, c->in);
			assert_non_null(why);
			assert_memory_equal(why, "principal: ", 11);
			if (c->why)
				assert_string_equal(why, c->why);
			assert_int_equal(k, VALIDATE_PRINCIPAL_MAX_);   /* untouched on failure */
		}
	}
}

static void test_iam_path_limit(void **state)
{
	char arn[700];
	const char *why;
	size_t n = (size_t)snprintf(arn, sizeof(arn), "arn:aws:iam::111122223333:role/");

	/* a 511-byte path "/aaa.../" is fine, 513 is not */
	memset(arn + n, 'a', 509);
	arn[n + 509] = '/';
	strcpy(arn + n + 510, "r");
	assert_int_equal(validate_iam_arn(arn, strlen(arn), NULL, &why), 0);
	memset(arn + n, 'a', 511);
	arn[n + 511] = '/';
	strcpy(arn + n + 512, "r");
	assert_int_equal(validate_iam_arn(arn, strlen(arn), NULL, &why), S3G_EINVAL);
	assert_string_equal(why, "principal: IAM path longer than 512 characters");
}

struct bucket_case {
	const char *in;
	int ok;
};

static const struct bucket_case buckets[] = {
	{"research-data", 1}, {"abc", 1}, {"a.b.c", 1}, {"123", 1},
	{"ab", 0}, {"Research", 0}, {"-abc", 0}, {"abc-", 0}, {"a..b", 0}, {"a_b", 0},
	{"192.168.1.1", 0}, {"xn--abc", 0}, {"abc-s3alias", 0}, {"abc--ol-s3", 0},
	{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1},
	{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},
};

static void test_buckets(void **state)
{
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		const char *why = NULL;
		int r = validate_bucket(buckets[i].in, strlen(buckets[i].in), &why);

		if (buckets[i].ok != (r == 0))
			fail_msg("bucket %s: r=%d why=%s", buckets[i].in, r, why ? why : "-");
		if (r)
			assert_memory_equal(why, "bucket: ", 8);
	}
}

struct scope_case {
	const char *in;
	int ok;
	size_t bucket_len;
};

static const struct scope_case scopes[] = {
	{"s3://", 1, 0},
	{"s3://research-data", 1, 13},
	{"s3://research-data/team/a", 1, 13},
	{"s3:/", 0, 0}, {"S3://bucket", 0, 0}, {"s3://Bucket", 0, 0}, {"s3://bucket/", 0, 0},
	{"s3://bucket//x", 0, 0}, {"s3://bucket/../x", 0, 0}, {"s3://bucket/*", 0, 0}, {"", 0, 0},
};

static void test_scopes(void **state)
{
	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
		const char *why = NULL;
		size_t bl = 99;
		int r = validate_location_scope(scopes[i].in, strlen(scopes[i].in), &bl, &why);

		if (scopes[i].ok != (r == 0))
			fail_msg("scope %s: r=%d why=%s", scopes[i].in, r, why ? why : "-");
		if (r == 0)
			assert_int_equal(bl, scopes[i].bucket_len);
		else
			assert_memory_equal(why, "location_scope: ", 16);
	}
}

struct prefix_case {
	const char *scope;
	const char *in;
	const char *out;   /* NULL = rejected */
	const char *why;
};

static const struct prefix_case prefixes[] = {
	{"s3://research-data", "/demographics", "demographics", NULL},
	{"s3://research-data", "demographics/", "demographics", NULL},
	{"s3://research-data", "a/b/c", "a/b/c", NULL},
	{"s3://research-data", "", "", NULL},
	{"s3://research-data", "/", "", NULL},
	{"s3://research-data", "s3://research-data/demographics", "demographics", NULL},
	{"s3://research-data", "s3://research-data", "", NULL},
	{"s3://research-data", "s3://research-datax/a", NULL, "prefix: outside the location scope"},
	{"s3://research-data", "s3://other/demographics", NULL, "prefix: outside the location scope"},
	{"s3://research-data", "a/../b", NULL, "prefix: has a \".\" or \"..\" segment"},
	{"s3://research-data", "..", NULL, "prefix: has a \".\" or \"..\" segment"},
	{"s3://research-data", "a/./b", NULL, "prefix: has a \".\" or \"..\" segment"},
	{"s3://research-data", "a..b/c", "a..b/c", NULL},
	{"s3://research-data", "a//b", NULL, "prefix: has an empty path segment"},
	{"s3://research-data", "//a", NULL, "prefix: has an empty path segment"},
	{"s3://research-data", "a//", NULL, "prefix: has an empty path segment"},
	{"s3://research-data", "a\tb", NULL, "prefix: contains a control character"},
	{"s3://research-data", "a\x7f", NULL, "prefix: contains a control character"},
	{"s3://research-data", "a*", NULL, "prefix: contains '*' (grants add the wildcard themselves)"},
	{"s3://research-data", "caf\xc3\xa9", "caf\xc3\xa9", NULL},
	{"s3://research-data", "caf\xc3", NULL, "prefix: not valid UTF-8"},
	{"s3://research-data", "\xed\xa0\x80", NULL, "prefix: not valid UTF-8"},
	{"s3://", "research-data/demographics", "research-data/demographics", NULL},
	{"s3://", "s3://research-data/x", "research-data/x", NULL},
	{"s3://", "research-data", "research-data", NULL},
	{"s3://", "", NULL, "prefix: must name a bucket when the location scope is s3://"},
	{"s3://", "Bad_Bucket/x", NULL, "prefix: first segment is not a valid S3 bucket name"},
	{"s3://bucket/team", "s3://bucket/team/x", "x", NULL},
	{"s3://bucket/team", "s3://bucket/teamx", NULL, "prefix: outside the location scope"},
};

static void test_prefixes(void **state)
{
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		const struct prefix_case *c = &prefixes[i];
		size_t off = 99, len = 99;
		const char *why = NULL;
		int r = validate_prefix(c->scope, c->in, strlen(c->in), &off, &len, &why);

		if (c->out) {
			if (r)
				fail_msg("case %zu %s: %s", i, c->in, why);
			assert_int_equal(len, strlen(c->out));
			assert_memory_equal(c->in + off, c->out, len);
		} else {
			if (r != S3G_EINVAL)
				fail_msg("case %zu %s accepted", i, c->in);
			assert_string_equal(why, c->why);
			assert_int_equal(off, 99);
		}
	}
}

static void test_prefix_length(void **state)
{
	static char p[2100];
	size_t off, len;
	const char *why;

	memset(p, 'a', 2000);
	p[2000] = '\0';
	assert_int_equal(validate_prefix("s3://bucket", p, 2000, &off, &len, &why), 0);
	p[2000] = 'a';
	p[2001] = '\0';
	assert_int_equal(validate_prefix("s3://bucket", p, 2001, &off, &len, &why), S3G_EINVAL);
	assert_string_equal(why, "prefix: longer than 2000 characters");
}

static void test_access_account(void **state)
{
	enum grant_perm p = GRANT_PERM_MAX_;
	const char *why = NULL;

	assert_int_equal(validate_access("read", 4, &p, &why), 0);
	assert_int_equal(p, GRANT_READ);
	assert_int_equal(validate_access("write", 5, &p, &why), 0);
	assert_int_equal(p, GRANT_READWRITE);
	assert_int_equal(validate_access("READ", 4, &p, &why), S3G_EINVAL);
	assert_string_equal(why, "access: must be read or write");
	assert_int_equal(validate_access("owner", 5, &p, &why), S3G_EINVAL);
	assert_int_equal(validate_access("rea", 3, &p, &why), S3G_EINVAL);
	assert_int_equal(validate_account("111122223333", 12, &why), 0);
	assert_int_equal(validate_account("11112222333", 11, &why), S3G_EINVAL);
	assert_int_equal(validate_account("11112222333x", 12, &why), S3G_EINVAL);
	assert_string_equal(why, "account: not a 12-digit AWS account id");
	assert_int_equal(validate_iam_name("alice", 5, &why), 0);
	assert_int_equal(validate_iam_name("al ice", 6, &why), S3G_EINVAL);
	assert_string_equal(validate_principal_name(VALIDATE_DIRECTORY_USER), "directory_user");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_principals),
		cmocka_unit_test(test_iam_path_limit),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_prefix_length),
		cmocka_unit_test(test_access_account),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
