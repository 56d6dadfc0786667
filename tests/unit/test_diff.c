/* Diff: desired vs actual in the managed location (drift, adoption, duplicates, foreign grants). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/desired.h"
#include "core/diff.h"

#define ALICE "arn:aws:iam::111122223333:user/alice"
#define BOB "arn:aws:iam::111122223333:user/bob"
#define ROLE "arn:aws:iam::111122223333:role/analyst"

static const struct desired_integration integ = {1, "111122223333", "us-east-1", "s3://", NULL};
static const struct desired_user users[] = {{1, "alice", NULL}, {2, "bob", NULL}, {3, "carol", ROLE}};
static const struct desired_data_source dss[] = {{10, "bkt/sales"}, {11, "bkt/hr"}};
static const struct desired_subscription subs[] = {
	{100, 1, 10, "read"},     /* alice READ bkt/sales*  */
	{101, 2, 10, "write"},    /* bob READWRITE bkt/sales* */
	{102, 3, 11, "read"},     /* role READ bkt/hr* */
};

struct actual_row {
	const char *id, *grantee, *perm, *loc, *sub_prefix;
};

struct diff_case {
	const char *name;
	struct actual_row actual[8];
	size_t nactual;
	/* expectations */
	const char *create[4];        /* grantee of each create, desired order */
	const char *remove[8];        /* grant ids removed, actual order */
	const char *remove_why[8];
	const char *keep[4];          /* grant ids kept */
	size_t nforeign;
};

static const struct diff_case cases[] = {
	{"empty actual: create all", {{0}}, 0, {ALICE, BOB, ROLE}, {NULL}, {NULL}, {NULL}, 0},
	{"in sync",
	 {{"g1", ALICE, "READ", "default", "bkt/sales*"}, {"g2", BOB, "READWRITE", "default", "bkt/sales*"},
	  {"g3", ROLE, "READ", "default", "bkt/hr*"}}, 3,
	 {NULL}, {NULL}, {NULL}, {"g1", "g2", "g3"}, 0},
	{"drift: missing one, extra hand-made one, foreign untouched",
	 {{"g1", ALICE, "READ", "default", "bkt/sales*"},
	  {"hand", "arn:aws:iam::111122223333:user/mallory", "READ", "default", "bkt/sales*"},
	  {"other-loc", "arn:aws:iam::111122223333:user/mallory", "READ", "loc-9", "bkt/sales*"},
	  {"g3", ROLE, "READ", "default", "bkt/hr*"}}, 4,
	 {BOB}, {"hand"}, {"unwanted"}, {"g1", "g3"}, 1},
	{"trailing-star forms: a** adopts, a/* and no-star do not",
	 {{"g1", ALICE, "READ", "default", "bkt/sales**"}, {"g2", BOB, "READWRITE", "default", "bkt/sales/*"},
	  {"g3", ROLE, "READ", "default", "bkt/hr"}}, 3,
	 {BOB, ROLE}, {"g2", "g3"}, {"unwanted", "unwanted"}, {"g1"}, 0},
	{"case-sensitive principals",
	 {{"g1", "arn:aws:iam::111122223333:user/Alice", "READ", "default", "bkt/sales*"}}, 1,
	 {ALICE, BOB, ROLE}, {"g1"}, {"unwanted"}, {NULL}, 0},
	{"duplicates from drift: smallest id kept",
	 {{"g9", ALICE, "READ", "default", "bkt/sales*"}, {"g1", ALICE, "READ", "default", "bkt/sales*"},
	  {"g5", ALICE, "READ", "default", "bkt/sales*"}}, 3,
	 {BOB, ROLE}, {"g9", "g5"}, {"duplicate", "duplicate"}, {"g1"}, 0},
	{"everything foreign",
	 {{"x1", ALICE, "READ", "loc-2", "bkt/sales*"}, {"x2", BOB, "READWRITE", "loc-3", "bkt/sales*"}}, 2,
	 {ALICE, BOB, ROLE}, {NULL}, {NULL}, {NULL}, 2},
};

static size_t count(const char *const *v, size_t max)
{
	size_t n = 0;

	while (n < max && v[n])
		n++;
	return n;
}

static void test_cases(void **state)
{
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct diff_case *k = &cases[c];
		struct grant actual[8];
		struct desired_set set;
		struct intern in;
		struct diff d;
		const char *why;

		intern_init(&in);
		assert_int_equal(desired_build(&in, &integ, dss, 2, users, 3, subs, 3, &set, &why), 0);
		for (size_t i = 0; i < k->nactual; i++) {
			const struct actual_row *a = &k->actual[i];

			assert_int_equal(grant_make(&in, "IAM", a->grantee, a->perm, a->loc, a->sub_prefix, a->id, NULL,
						    NULL, &actual[i]), 0);
		}
		assert_int_equal(diff_compute(&set, actual, k->nactual, &d), 0);
		if (d.ncreate != count(k->create, 4) || d.nremove != count(k->remove, 8) ||
		    d.nkeep != count(k->keep, 4) || d.nforeign != k->nforeign)
			fail_msg("%s: create %zu remove %zu keep %zu foreign %zu", k->name, d.ncreate, d.nremove, d.nkeep,
				 d.nforeign);
		for (size_t i = 0; i < d.ncreate; i++)
			assert_string_equal(set.v[d.create[i]].g.grantee_id, k->create[i]);
		for (size_t i = 0; i < d.nremove; i++) {
			assert_string_equal(actual[d.remove[i].actual].grant_id, k->remove[i]);
			assert_string_equal(diff_why_name(d.remove[i].why), k->remove_why[i]);
		}
		for (size_t i = 0; i < d.nkeep; i++) {
			assert_string_equal(actual[d.keep[i].actual].grant_id, k->keep[i]);
			assert_true(grant_key_eq(&actual[d.keep[i].actual], &set.v[d.keep[i].desired].g));
		}
		/* every managed actual grant is either kept or removed */
		assert_int_equal(d.nkeep + d.nremove + d.nforeign, k->nactual);
		diff_free(&d);
		desired_free(&set);
		intern_free(&in);
	}
}

static void test_non_default_location(void **state)
{
	const struct desired_integration ri = {2, "111122223333", "us-east-1", "s3://research-data", "loc-7"};
	const struct desired_data_source ds[] = {{1, "/demographics"}};
	const struct desired_subscription s[] = {{1, 1, 1, "read"}};
	struct grant actual[2];
	struct desired_set set;
	struct intern in;
	struct diff d;
	const char *why;

	intern_init(&in);
	assert_int_equal(desired_build(&in, &ri, ds, 1, users, 3, s, 1, &set, &why), 0);
	assert_int_equal(grant_make(&in, "IAM", ALICE, "READ", "loc-7", "demographics*", "g1", NULL,
				    "s3://research-data/demographics*", &actual[0]), 0);
	assert_int_equal(grant_make(&in, "IAM", ALICE, "READ", "default", "research-data/demographics*", "g2", NULL,
				    NULL, &actual[1]), 0);
	assert_int_equal(diff_compute(&set, actual, 2, &d), 0);
	assert_int_equal(d.nkeep, 1);
	assert_int_equal(d.ncreate, 0);
	assert_int_equal(d.nremove, 0);
	assert_int_equal(d.nforeign, 1);   /* the default-location grant is someone else's */
	diff_free(&d);
	diff_free(NULL);
	desired_free(&set);
	intern_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_non_default_location),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
