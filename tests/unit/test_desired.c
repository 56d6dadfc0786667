/* Desired set: subscriptions ⋈ users ⋈ data sources (table-driven). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/desired.h"

#define ACCT "111122223333"
#define IDC "a1b2c3d4-5678-90ab-cdef-112233445566"

static const struct desired_user users[] = {
	{1, "alice", NULL},
	{2, "bob", "arn:aws:iam::111122223333:role/analyst"},
	{3, "carol", IDC},
	{4, "dave", "not-a-principal"},
	{5, "Eve", ""},                                         /* "" = unset, case kept */
	{6, "bad name", NULL},
	{7, "frank", "arn:aws:iam::111122223333:role/analyst"}, /* same principal as bob */
};

/* default location (s3://) */
static const struct desired_data_source ds_default[] = {
	{10, "research-data/demographics"},
	{11, "research-data"},
	{12, "/research-data/a/b/"},
	{13, "s3://research-data/x"},
	{14, "research-data/../etc"},
	{15, "research-data//x"},
	{16, ""},
	{17, "Not_A_Bucket/x"},
};

struct expect {
	int64_t sub, user, ds;
	const char *access;
	const char *type;       /* NULL: rejected */
	const char *grantee;    /* or the reason when rejected */
	const char *perm;
	const char *sub_prefix;
};

static const struct expect default_cases[] = {
	{100, 1, 10, "read", "IAM", "arn:aws:iam::111122223333:user/alice", "READ", "research-data/demographics*"},
	{101, 2, 11, "write", "IAM", "arn:aws:iam::111122223333:role/analyst", "READWRITE", "research-data/*"},
	{102, 3, 10, "read", "DIRECTORY_USER", IDC, "READ", "research-data/demographics*"},
	{103, 5, 12, "write", "IAM", "arn:aws:iam::111122223333:user/Eve", "READWRITE", "research-data/a/b*"},
	{104, 1, 13, "read", "IAM", "arn:aws:iam::111122223333:user/alice", "READ", "research-data/x*"},
	{105, 4, 10, "read", NULL, "principal: not an IAM user or role ARN or an Identity Center user id", NULL, NULL},
	{106, 1, 14, "read", NULL, "prefix: has a \".\" or \"..\" segment", NULL, NULL},
	{107, 1, 15, "read", NULL, "prefix: has an empty path segment", NULL, NULL},
	{108, 1, 10, "admin", NULL, "access: must be read or write", NULL, NULL},
	{109, 99, 10, "read", NULL, "user_id: no such user", NULL, NULL},
	{110, 1, 99, "read", NULL, "data_source_id: no such data source", NULL, NULL},
	{111, 6, 10, "read", NULL, "principal: unset, and the user name is not a valid IAM user name", NULL, NULL},
	{112, 1, 16, "read", NULL, "prefix: must name a bucket when the location scope is s3://", NULL, NULL},
	{113, 1, 17, "read", NULL, "prefix: first segment is not a valid S3 bucket name", NULL, NULL},
	{114, 1, 10, NULL, NULL, "access: must be read or write", NULL, NULL},
	/* same principal + prefix + permission as 101: one grant serving both */
	{115, 7, 11, "write", "IAM", "arn:aws:iam::111122223333:role/analyst", "READWRITE", "research-data/*"},
};

static void run(const struct desired_integration *integ, const struct desired_data_source *ds, size_t nds,
		const struct expect *cases, size_t n, size_t want_grants)
{
	struct desired_subscription subs[64];
	struct desired_set set;
	struct intern in;
	const char *why = NULL;
	size_t accepted = 0, rejected = 0;

	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++) {
		subs[i].id = cases[i].sub;
		subs[i].user_id = cases[i].user;
		subs[i].data_source_id = cases[i].ds;
		subs[i].access = cases[i].access;
	}
	intern_init(&in);
	assert_int_equal(desired_build(&in, integ, ds, nds, users, sizeof(users) / sizeof(users[0]), subs, n, &set,
				       &why), 0);
	for (size_t i = 0; i < n; i++) {
		const struct expect *e = &cases[i];
		size_t found = SIZE_MAX;

		for (size_t g = 0; g < set.n; g++)
			if (desired_serves(&set, g, e->sub))
				found = g;
		if (!e->type) {
			size_t r;

			rejected++;
			if (found != SIZE_MAX)
				fail_msg("sub %lld should be rejected", (long long)e->sub);
			for (r = 0; r < set.nrej && set.rej[r].subscription_id != e->sub; r++)
				;
			if (r == set.nrej)
				fail_msg("sub %lld: no rejection", (long long)e->sub);
			assert_string_equal(set.rej[r].reason, e->grantee);
			continue;
		}
		accepted++;
		if (found == SIZE_MAX)
			fail_msg("sub %lld: no grant", (long long)e->sub);
		assert_string_equal(grant_grantee_name(set.v[found].g.grantee_type), e->type);
		assert_string_equal(set.v[found].g.grantee_id, e->grantee);
		assert_string_equal(grant_perm_name(set.v[found].g.permission), e->perm);
		assert_string_equal(set.v[found].g.sub_prefix, e->sub_prefix);
		assert_string_equal(set.v[found].g.location_id, set.location_id);
		assert_null(set.v[found].g.grant_id);
		assert_int_equal(set.v[found].g.hash, grant_hash(&set.v[found].g));
	}
	assert_int_equal(set.nrej, rejected);
	assert_int_equal(set.n, want_grants);
	assert_true(accepted >= want_grants);
	desired_free(&set);
	intern_free(&in);
}

static void test_default_location(void **state)
{
	const struct desired_integration integ = {1, ACCT, "us-east-1", "s3://", NULL};

	run(&integ, ds_default, sizeof(ds_default) / sizeof(ds_default[0]), default_cases,
	    sizeof(default_cases) / sizeof(default_cases[0]), 5);
}

static const struct desired_data_source ds_research[] = {
	{20, "/demographics"},
	{21, ""},
	{22, "s3://research-data/demographics/2024"},
	{23, "s3://other-bucket/demographics"},
	{24, "demo*"},
};

static const struct expect research_cases[] = {
	{200, 1, 20, "read", "IAM", "arn:aws:iam::111122223333:user/alice", "READ", "demographics*"},
	{201, 2, 21, "write", "IAM", "arn:aws:iam::111122223333:role/analyst", "READWRITE", ""},
	{202, 3, 22, "write", "DIRECTORY_USER", IDC, "READWRITE", "demographics/2024*"},
	{203, 1, 23, "read", NULL, "prefix: outside the location scope", NULL, NULL},
	{204, 1, 24, "read", NULL, "prefix: contains '*' (grants add the wildcard themselves)", NULL, NULL},
};

static void test_non_default_location(void **state)
{
	const struct desired_integration integ = {2, ACCT, "us-east-1", "s3://research-data", "a1b2-loc"};

	run(&integ, ds_research, sizeof(ds_research) / sizeof(ds_research[0]), research_cases,
	    sizeof(research_cases) / sizeof(research_cases[0]), 3);
}

static void test_shared_grant_lists_subscriptions(void **state)
{
	const struct desired_integration integ = {1, ACCT, "us-east-1", "s3://", NULL};
	const struct desired_subscription subs[] = {
		{1, 2, 11, "write"}, {2, 7, 11, "write"}, {3, 1, 10, "read"},
	};
	struct desired_set set;
	struct intern in;
	int64_t ids[4];
	size_t i;
	const char *why;

	intern_init(&in);
	assert_int_equal(desired_build(&in, &integ, ds_default, 8, users, 7, subs, 3, &set, &why), 0);
	assert_int_equal(set.n, 2);
	assert_string_equal(set.location_id, "default");
	assert_int_equal(desired_find(&set, &set.v[1].g, &i), 0);
	assert_int_equal(i, 1);
	assert_int_equal(set.v[0].nsubs, 2);
	assert_int_equal(desired_subscriptions(&set, 0, ids, 4), 2);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 2);
	assert_int_equal(desired_subscriptions(&set, 0, ids, 1), 2);   /* total even when truncated */
	assert_true(desired_serves(&set, 0, 2));
	assert_false(desired_serves(&set, 0, 3));
	assert_true(desired_bytes(&set) > 0);
	desired_free(&set);
	desired_free(NULL);
	intern_free(&in);
}

struct integ_case {
	struct desired_integration integ;
	const char *why;
};

static const struct integ_case bad_integrations[] = {
	{{1, "1111", "us-east-1", "s3://", NULL}, "account: not a 12-digit AWS account id"},
	{{1, NULL, "us-east-1", "s3://", NULL}, "account: missing"},
	{{1, ACCT, "us-east-1", "s3:/", NULL}, "location_scope: must start with s3://"},
	{{1, ACCT, "us-east-1", "s3://Bad", NULL}, "location_scope: not a valid S3 bucket name"},
	{{1, ACCT, "us-east-1", "s3://research-data", NULL}, "location_id: the location is not registered yet"},
};

static void test_bad_integration(void **state)
{
	for (size_t i = 0; i < sizeof(bad_integrations) / sizeof(bad_integrations[0]); i++) {
		struct desired_set set;
		struct intern in;
		const char *why = NULL;

		intern_init(&in);
		memset(&set, 0x5a, sizeof(set));
		assert_int_equal(desired_build(&in, &bad_integrations[i].integ, ds_default, 8, users, 7, NULL, 0, &set,
					       &why), S3G_EINVAL);
		assert_string_equal(why, bad_integrations[i].why);
		intern_free(&in);
	}
}

static void test_final_path_length(void **state)
{
	static char p[2001];
	const struct desired_integration integ = {2, ACCT, "us-east-1", "s3://research-data", "loc"};
	struct desired_data_source ds = {1, p};
	const struct desired_subscription sub = {1, 1, 1, "read"};
	struct desired_set set;
	struct intern in;
	const char *why;

	memset(p, 'a', 1990);
	p[1990] = '\0';   /* valid prefix, but "s3://research-data/" + 1990 + "*" > 2000 */
	intern_init(&in);
	assert_int_equal(desired_build(&in, &integ, &ds, 1, users, 7, &sub, 1, &set, &why), 0);
	assert_int_equal(set.n, 0);
	assert_int_equal(set.nrej, 1);
	assert_string_equal(set.rej[0].reason, "prefix: the final path is longer than 2000 characters");
	desired_free(&set);
	intern_free(&in);
}

/* desired_principal agrees with desired_build's grantee for every user;
 * desired_unset_name finds the name an unset principal turns into. */
static void test_principal(void **state)
{
	static const struct {
		int64_t user;
		const char *grantee;   /* NULL: rejected */
		uint8_t type;
	} want[] = {
		{1, "arn:aws:iam::111122223333:user/alice", GRANTEE_IAM},
		{2, "arn:aws:iam::111122223333:role/analyst", GRANTEE_IAM},
		{3, IDC, GRANTEE_DIRECTORY_USER},
		{4, NULL, 0},
		{5, "arn:aws:iam::111122223333:user/Eve", GRANTEE_IAM},
		{6, NULL, 0},
		{7, "arn:aws:iam::111122223333:role/analyst", GRANTEE_IAM},
	};
	struct intern in;
	const char *g, *why, *name;
	uint8_t type;
	size_t n;

	intern_init(&in);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int r = desired_principal(&in, ACCT, &users[i], &type, &g, &why);

		assert_int_equal(users[i].id, want[i].user);
		if (!want[i].grantee) {
			assert_int_equal(r, S3G_EINVAL);
			continue;
		}
		assert_int_equal(r, 0);
		assert_string_equal(g, want[i].grantee);
		assert_int_equal(type, want[i].type);
		assert_ptr_equal(g, intern_str(&in, want[i].grantee));
	}
	assert_int_equal(desired_principal(&in, "1234", &users[0], &type, &g, &why), S3G_EINVAL);

	name = desired_unset_name(ACCT, "arn:aws:iam::111122223333:user/alice", &n);
	assert_non_null(name);
	assert_int_equal(n, 5);
	assert_memory_equal(name, "alice", 5);
	assert_null(desired_unset_name(ACCT, "arn:aws:iam::111122223333:user/path/alice", &n));
	assert_null(desired_unset_name(ACCT, "arn:aws:iam::999922223333:user/alice", &n));
	assert_null(desired_unset_name(ACCT, "arn:aws:iam::111122223333:role/analyst", &n));
	assert_null(desired_unset_name(ACCT, "arn:aws:iam::111122223333:user/", &n));
	assert_null(desired_unset_name(ACCT, "arn:aws:iam::1111", &n));
	assert_null(desired_unset_name(ACCT, IDC, &n));
	intern_free(&in);
}

/* desired_sub_prefix gives the S3SubPrefix desired_build puts in grants. */
static void test_sub_prefix(void **state)
{
	const struct desired_data_source scoped = {1, "/demographics"}, whole = {2, ""};
	struct intern in;
	const char *sp, *why;

	intern_init(&in);
	for (size_t i = 0; i < sizeof(default_cases) / sizeof(default_cases[0]); i++) {
		const struct expect *x = &default_cases[i];
		const struct desired_data_source *d = NULL;

		for (size_t k = 0; k < sizeof(ds_default) / sizeof(ds_default[0]); k++)
			if (ds_default[k].id == x->ds)
				d = &ds_default[k];
		if (!d || !x->sub_prefix)
			continue;
		assert_int_equal(desired_sub_prefix(&in, "s3://", d, &sp, &why), 0);
		assert_string_equal(sp, x->sub_prefix);
	}
	assert_int_equal(desired_sub_prefix(&in, "s3://", &ds_default[4], &sp, &why), S3G_EINVAL);
	assert_string_equal(why, "prefix: has a \".\" or \"..\" segment");
	assert_int_equal(desired_sub_prefix(&in, "s3://research-data", &scoped, &sp, &why), 0);
	assert_string_equal(sp, "demographics*");
	assert_int_equal(desired_sub_prefix(&in, "s3://research-data", &whole, &sp, &why), 0);
	assert_string_equal(sp, "");
	assert_int_equal(desired_sub_prefix(&in, "s3://Bad", &scoped, &sp, &why), S3G_EINVAL);
	intern_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_location),
		cmocka_unit_test(test_non_default_location),
		cmocka_unit_test(test_shared_grant_lists_subscriptions),
		cmocka_unit_test(test_bad_integration),
		cmocka_unit_test(test_final_path_length),
		cmocka_unit_test(test_principal),
		cmocka_unit_test(test_sub_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
