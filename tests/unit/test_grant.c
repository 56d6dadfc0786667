/* Canonical grant: names, parsing, key equality, hashing, interning, sub-prefix rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/grant.h"
#include "core/hash.h"
#include "core/xalloc.h"

static void test_names(void **state)
{
	enum grant_grantee t;
	enum grant_perm p;

	assert_string_equal(grant_grantee_name(GRANTEE_DIRECTORY_USER), "DIRECTORY_USER");
	assert_string_equal(grant_perm_name(GRANT_READWRITE), "READWRITE");
	assert_string_equal(grant_perm_name(GRANT_PERM_MAX_), "?");
	assert_int_equal(grant_grantee_parse("IAM", &t), 0);
	assert_int_equal(t, GRANTEE_IAM);
	assert_int_equal(grant_grantee_parse("iam", &t), S3G_EINVAL);
	assert_int_equal(grant_perm_parse("WRITE", &p), 0);
	assert_int_equal(p, GRANT_WRITE);
	assert_int_equal(grant_perm_parse("ReadWrite", &p), S3G_EINVAL);
	assert_int_equal(grant_perm_parse(NULL, &p), S3G_EINVAL);
}

struct canon_case {
	const char *in;
	const char *out;
};

static const struct canon_case canon[] = {
	{"", ""}, {"bucket/*", "bucket/*"}, {"bucket/p*", "bucket/p*"}, {"bucket/p**", "bucket/p*"},
	{"bucket/p***", "bucket/p*"}, {"bucket/p", "bucket/p"}, {"*", "*"}, {"**", "*"},
};

static void test_canon_sub_prefix(void **state)
{
	for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
		size_t n = grant_canon_sub_prefix_len(canon[i].in, strlen(canon[i].in));

		assert_int_equal(n, strlen(canon[i].out));
		assert_memory_equal(canon[i].in, canon[i].out, n);
	}
}

struct eq_case {
	const char *a[4];   /* type, grantee, permission, sub-prefix */
	const char *b[4];
	int equal;
};

static const struct eq_case eqs[] = {
	{{"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p*"},
	 {"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p**"}, 1},
	{{"IAM", "arn:aws:iam::111122223333:user/a", "READ", ""},
	 {"IAM", "arn:aws:iam::111122223333:user/a", "READ", NULL}, 1},
	{{"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p*"},
	 {"IAM", "arn:aws:iam::111122223333:user/A", "READ", "b/p*"}, 0},   /* case-sensitive principal */
	{{"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p*"},
	 {"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/P*"}, 0},
	{{"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p*"},
	 {"IAM", "arn:aws:iam::111122223333:user/a", "READWRITE", "b/p*"}, 0},
	{{"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p*"},
	 {"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p/*"}, 0},
	{{"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p*"},
	 {"IAM", "arn:aws:iam::111122223333:user/a", "READ", "b/p"}, 0},
	{{"DIRECTORY_USER", "a1b2c3d4-5678-90ab-cdef-112233445566", "READ", "b/*"},
	 {"DIRECTORY_GROUP", "a1b2c3d4-5678-90ab-cdef-112233445566", "READ", "b/*"}, 0},
};

static void test_key_eq(void **state)
{
	struct intern in;

	intern_init(&in);
	for (size_t i = 0; i < sizeof(eqs) / sizeof(eqs[0]); i++) {
		struct grant a, b;

		assert_int_equal(grant_make(&in, eqs[i].a[0], eqs[i].a[1], eqs[i].a[2], "default", eqs[i].a[3], NULL,
					    NULL, NULL, &a), 0);
		assert_int_equal(grant_make(&in, eqs[i].b[0], eqs[i].b[1], eqs[i].b[2], "default", eqs[i].b[3],
					    "id-1", "arn:aws:s3:us-east-1:111122223333:access-grants/default/grant/id-1",
					    "s3://x", &b), 0);
		if (grant_key_eq(&a, &b) != eqs[i].equal)
			fail_msg("case %zu", i);
		assert_int_equal(grant_matches_intent(&a, &b), eqs[i].equal);
		if (eqs[i].equal) {
			assert_int_equal(a.hash, b.hash);
			assert_int_equal(grant_key_cmp(&a, &b), 0);
		} else {
			assert_int_not_equal(grant_key_cmp(&a, &b), 0);
			assert_int_equal(grant_key_cmp(&a, &b), -grant_key_cmp(&b, &a));
		}
	}
	intern_free(&in);
}

static void test_location_in_key(void **state)
{
	struct intern in;
	struct grant a, b;

	intern_init(&in);
	assert_int_equal(grant_make(&in, "IAM", "arn:aws:iam::111122223333:user/a", "READ", "default", "b/*", NULL,
				    NULL, NULL, &a), 0);
	assert_int_equal(grant_make(&in, "IAM", "arn:aws:iam::111122223333:user/a", "READ", "loc-2", "b/*", NULL,
				    NULL, NULL, &b), 0);
	assert_false(grant_key_eq(&a, &b));
	assert_int_equal(grant_make(&in, "NOPE", "x", "READ", "default", NULL, NULL, NULL, NULL, &b), S3G_EINVAL);
	intern_free(&in);
}

static void test_intern(void **state)
{
	struct intern in;
	const char *a, *b, *c;
	char buf[32];

	intern_init(&in);
	a = intern_str(&in, "hello");
	b = intern_get(&in, "hello world", 5);
	c = intern_str(&in, "hello!");
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_string_equal(b, "hello");
	/* many strings: pointers stay valid across growth */
	for (int i = 0; i < 50000; i++) {
		snprintf(buf, sizeof(buf), "s%d", i);
		intern_str(&in, buf);
	}
	assert_string_equal(a, "hello");
	assert_ptr_equal(intern_str(&in, "s4242"), intern_str(&in, "s4242"));
	assert_int_equal(in.count, 50002);
	intern_free(&in);
	intern_free(NULL);
}

static int u32_eq(uint32_t idx, const void *key, void *user)
{
	const uint32_t *vals = user;

	return vals[idx] == *(const uint32_t *)key;
}

static void test_hidx(void **state)
{
	static uint32_t vals[20000];
	struct hidx h;
	uint32_t idx, k;
	size_t cur;
	int found;

	hidx_init(&h);
	for (uint32_t i = 0; i < 20000; i++) {
		vals[i] = i % 10000;   /* every key twice */
		hidx_insert(&h, hash_u64(vals[i]), i);
	}
	k = 1234;
	assert_int_equal(hidx_find(&h, hash_u64(k), u32_eq, &k, vals, &idx, &cur), 0);
	found = 1;
	while (hidx_next(&h, hash_u64(k), u32_eq, &k, vals, &idx, &cur) == 0) {
		assert_int_equal(vals[idx], 1234);
		found++;
	}
	assert_int_equal(found, 2);
	k = 10001;
	assert_int_equal(hidx_find(&h, hash_u64(k), u32_eq, &k, vals, &idx, NULL), S3G_ENOTFOUND);
	hidx_free(&h);
	hidx_init(&h);
	assert_int_equal(hidx_find(&h, 1, u32_eq, &k, vals, &idx, NULL), S3G_ENOTFOUND);
}

static void test_expected_scope(void **state)
{
	char *s;

	s = grant_expected_scope("s3://", "bucket/p*");
	assert_string_equal(s, "s3://bucket/p*");
	x_free(s);
	s = grant_expected_scope("s3://research-data", "demographics*");
	assert_string_equal(s, "s3://research-data/demographics*");
	x_free(s);
	s = grant_expected_scope("s3://research-data", "");
	assert_string_equal(s, "s3://research-data");
	x_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_canon_sub_prefix),
		cmocka_unit_test(test_key_eq),
		cmocka_unit_test(test_location_in_key),
		cmocka_unit_test(test_intern),
		cmocka_unit_test(test_hidx),
		cmocka_unit_test(test_expected_scope),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
