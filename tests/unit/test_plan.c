/* Plan: ordering, make-before-break, quota, error classes (table-driven). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/desired.h"
#include "core/diff.h"
#include "core/plan.h"
#include "core/quota.h"

#define ALICE "arn:aws:iam::111122223333:user/alice"
#define BOB "arn:aws:iam::111122223333:user/bob"
#define ROLE "arn:aws:iam::111122223333:role/analyst"
#define IDC "a1b2c3d4-5678-90ab-cdef-112233445566"

static const struct desired_integration integ = {1, "111122223333", "us-east-1", "s3://", NULL};

struct actual_row {
	const char *id, *type, *grantee, *perm, *sub_prefix;
	int64_t sub;
};

/* One expected step: "create <grantee> <perm> <reason>" or "delete <id> <reason> after=<step>" */
struct step_want {
	const char *op;
	const char *what;     /* create: grantee; delete: grant id */
	const char *reason;
	int after;            /* -1 = none */
};

struct plan_case {
	const char *name;
	struct desired_user users[4];
	size_t nusers;
	struct desired_data_source ds[3];
	size_t nds;
	struct desired_subscription subs[4];
	size_t nsubs;
	struct actual_row actual[4];
	size_t nactual;
	struct step_want steps[6];
	size_t nsteps;
};

static const struct plan_case cases[] = {
	{"subscribe: one create",
	 {{1, "alice", NULL}}, 1, {{10, "bkt/sales"}}, 1, {{100, 1, 10, "read"}}, 1, {{0}}, 0,
	 {{"create", ALICE, "missing", -1}}, 1},
	{"read -> write: make-before-break by subscription record",
	 {{1, "alice", NULL}}, 1, {{10, "bkt/sales"}}, 1, {{100, 1, 10, "write"}}, 1,
	 {{"g-old", "IAM", ALICE, "READ", "bkt/sales*", 100}}, 1,
	 {{"create", ALICE, "replace", -1}, {"delete", "g-old", "replaced", 0}}, 2},
	{"read -> write without a record: same grantee and prefix",
	 {{1, "alice", NULL}}, 1, {{10, "bkt/sales"}}, 1, {{100, 1, 10, "write"}}, 1,
	 {{"g-old", "IAM", ALICE, "READ", "bkt/sales*", 0}}, 1,
	 {{"create", ALICE, "replace", -1}, {"delete", "g-old", "replaced", 0}}, 2},
	{"principal change (unset -> role): new grant first",
	 {{1, "alice", ROLE}}, 1, {{10, "bkt/sales"}}, 1, {{100, 1, 10, "read"}}, 1,
	 {{"g-old", "IAM", ALICE, "READ", "bkt/sales*", 100}}, 1,
	 {{"create", ROLE, "replace", -1}, {"delete", "g-old", "replaced", 0}}, 2},
	{"principal change to Identity Center: DIRECTORY_USER first",
	 {{1, "alice", IDC}}, 1, {{10, "bkt/sales"}}, 1, {{100, 1, 10, "read"}}, 1,
	 {{"g-old", "IAM", ALICE, "READ", "bkt/sales*", 100}}, 1,
	 {{"create", IDC, "replace", -1}, {"delete", "g-old", "replaced", 0}}, 2},
	{"unsubscribe: plain delete",
	 {{1, "alice", NULL}}, 1, {{10, "bkt/sales"}}, 1, {{0}}, 0,
	 {{"g1", "IAM", ALICE, "READ", "bkt/sales*", 100}}, 1,
	 {{"delete", "g1", "unwanted", -1}}, 1},
	{"data source removed: its grants go, others stay",
	 {{1, "alice", NULL}, {2, "bob", NULL}}, 2, {{11, "bkt/hr"}}, 1, {{102, 2, 11, "read"}}, 1,
	 {{"g1", "IAM", ALICE, "READ", "bkt/sales*", 100}, {"g2", "IAM", BOB, "READWRITE", "bkt/sales*", 101},
	  {"g3", "IAM", BOB, "READ", "bkt/hr*", 102}}, 3,
	 {{"delete", "g1", "unwanted", -1}, {"delete", "g2", "unwanted", -1}}, 2},
	{"mixed: creates first, then deletes; duplicate removed",
	 {{1, "alice", NULL}, {2, "bob", NULL}}, 2, {{10, "bkt/sales"}, {11, "bkt/hr"}}, 2,
	 {{100, 1, 10, "write"}, {101, 2, 11, "read"}, {103, 2, 10, "read"}}, 3,
	 {{"g-hand", "IAM", "arn:aws:iam::111122223333:user/eve", "READ", "bkt/sales*", 0},
	  {"g-a", "IAM", ALICE, "READ", "bkt/sales*", 100}, {"g-b1", "IAM", BOB, "READ", "bkt/hr*", 101},
	  {"g-b0", "IAM", BOB, "READ", "bkt/hr*", 101}}, 4,
	 {{"create", ALICE, "replace", -1}, {"create", BOB, "missing", -1},
	  {"delete", "g-hand", "unwanted", -1}, {"delete", "g-a", "replaced", 0},
	  {"delete", "g-b1", "duplicate", -1}}, 5},
};

struct built {
	struct intern in;
	struct desired_set set;
	struct grant actual[4];
	size_t nactual;
	struct diff d;
	struct plan p;
};

static void build(const struct plan_case *k, struct built *b)
{
	const char *why;

	intern_init(&b->in);
	assert_int_equal(desired_build(&b->in, &integ, k->ds, k->nds, k->users, k->nusers, k->subs, k->nsubs,
				       &b->set, &why), 0);
	assert_int_equal(b->set.nrej, 0);
	for (size_t i = 0; i < k->nactual; i++) {
		const struct actual_row *a = &k->actual[i];

		assert_int_equal(grant_make(&b->in, a->type, a->grantee, a->perm, "default", a->sub_prefix, a->id, NULL,
					    NULL, &b->actual[i]), 0);
		b->actual[i].subscription_id = a->sub;
	}
	b->nactual = k->nactual;
	assert_int_equal(diff_compute(&b->set, b->actual, b->nactual, &b->d), 0);
	assert_int_equal(plan_build(&b->set, b->actual, b->nactual, &b->d, &b->p), 0);
}

static void unbuild(struct built *b)
{
	plan_free(&b->p);
	diff_free(&b->d);
	desired_free(&b->set);
	intern_free(&b->in);
}

static void test_plans(void **state)
{
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct plan_case *k = &cases[c];
		struct built b;
		int seen_delete = 0;

		build(k, &b);
		if (b.p.n != k->nsteps)
			fail_msg("%s: %zu steps", k->name, b.p.n);
		for (size_t i = 0; i < b.p.n; i++) {
			const struct plan_step *s = &b.p.steps[i];
			const struct step_want *w = &k->steps[i];

			assert_string_equal(plan_op_name(s->op), w->op);
			assert_string_equal(plan_reason_name(s->reason), w->reason);
			assert_int_equal(s->status, PLAN_READY);
			if (s->op == PLAN_CREATE) {
				assert_false(seen_delete);   /* creates first */
				assert_int_equal(i < b.p.ncreate, 1);
				assert_string_equal(b.set.v[s->ref].g.grantee_id, w->what);
			} else {
				seen_delete = 1;
				assert_string_equal(b.actual[s->ref].grant_id, w->what);
			}
			if (w->after < 0) {
				assert_int_equal(s->after, PLAN_NONE);
			} else {
				/* make-before-break: the delete waits on an earlier create */
				assert_int_equal(s->after, (uint32_t)w->after);
				assert_int_equal(b.p.steps[s->after].op, PLAN_CREATE);
				assert_true(s->after < i);
			}
		}
		unbuild(&b);
	}
}

static void test_reduces(void **state)
{
	struct built b;

	build(&cases[1], &b);   /* READ -> READWRITE: an upgrade */
	assert_false(plan_step_reduces(&b.p, 1, &b.set, b.actual));
	assert_false(plan_step_reduces(&b.p, 0, &b.set, b.actual));
	unbuild(&b);
	{
		struct plan_case k = cases[1];

		k.subs[0].access = "read";
		k.actual[0].perm = "READWRITE";
		build(&k, &b);  /* READWRITE -> READ: a downgrade */
		assert_int_equal(b.p.n, 2);
		assert_int_equal(b.p.steps[1].after, 0);
		assert_true(plan_step_reduces(&b.p, 1, &b.set, b.actual));
		unbuild(&b);
	}
}

struct level_case {
	size_t used, limit;
	enum quota_level want;
};

static const struct level_case levels[] = {
	{0, 0, QUOTA_OK}, {89999, 0, QUOTA_OK}, {90000, 0, QUOTA_WARN}, {99999, 0, QUOTA_WARN},
	{100000, 0, QUOTA_FULL}, {120000, 0, QUOTA_FULL}, {8, 10, QUOTA_OK}, {9, 10, QUOTA_WARN},
	{10, 10, QUOTA_FULL},
};

static void test_quota_levels(void **state)
{
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (quota_level(levels[i].used, levels[i].limit) != levels[i].want)
			fail_msg("used %zu limit %zu: %s", levels[i].used, levels[i].limit,
				 quota_level_name(quota_level(levels[i].used, levels[i].limit)));
	assert_string_equal(quota_level_name(QUOTA_WARN), "warn");
}

static void test_quota_apply(void **state)
{
	struct built b;

	/* mixed case: 2 creates (one replacing g-a), 3 deletes */
	build(&cases[7], &b);
	assert_int_equal(b.p.ncreate, 2);
	/* room for both */
	assert_int_equal(quota_apply(&b.p, 99998, 0), 2);
	for (size_t i = 0; i < b.p.n; i++)
		assert_int_equal(b.p.steps[i].status, PLAN_READY);
	/* room for one: the first create goes, the second is refused */
	assert_int_equal(quota_apply(&b.p, 99999, 0), 1);
	assert_int_equal(b.p.steps[0].status, PLAN_READY);
	assert_int_equal(b.p.steps[1].status, PLAN_QUOTA);
	assert_int_equal(b.p.steps[3].status, PLAN_READY);   /* its create is allowed */
	/* full: no create; the replaced delete is blocked, plain deletes still go */
	assert_int_equal(quota_apply(&b.p, 100000, 0), 0);
	assert_int_equal(b.p.steps[0].status, PLAN_QUOTA);
	assert_int_equal(b.p.steps[1].status, PLAN_QUOTA);
	assert_int_equal(b.p.steps[2].status, PLAN_READY);
	assert_string_equal(plan_status_name(b.p.steps[3].status), "blocked");
	assert_int_equal(b.p.steps[4].status, PLAN_READY);
	/* over quota (someone else filled it) */
	assert_int_equal(quota_apply(&b.p, 100500, 0), 0);
	/* small explicit limit */
	assert_int_equal(quota_apply(&b.p, 3, 4), 1);
	unbuild(&b);
}

struct class_case {
	enum plan_op op;
	int http;
	const char *code, *message;
	uint64_t first, now, window;
	enum plan_class want;
};

static const struct class_case classes[] = {
	{PLAN_CREATE, 409, "AccessGrantAlreadyExists", "exists", 0, 0, 0, PLAN_CLASS_ADOPT},
	{PLAN_DELETE, 409, "AccessGrantAlreadyExists", "exists", 0, 0, 0, PLAN_CLASS_TERMINAL},
	{PLAN_DELETE, 404, "NoSuchAccessGrantError", "gone", 0, 0, 0, PLAN_CLASS_GONE},
	{PLAN_DELETE, 404, "NoSuchAccessGrant", "gone", 0, 0, 0, PLAN_CLASS_GONE},
	{PLAN_CREATE, 404, "NoSuchAccessGrantsLocationError", "no loc", 0, 0, 0, PLAN_CLASS_TERMINAL},
	{PLAN_CREATE, 503, "SlowDown", "slow", 0, 0, 0, PLAN_CLASS_RETRY},
	{PLAN_CREATE, 400, "Throttling", "x", 0, 0, 0, PLAN_CLASS_RETRY},
	{PLAN_CREATE, 429, NULL, NULL, 0, 0, 0, PLAN_CLASS_RETRY},
	{PLAN_CREATE, 500, "InternalError", "x", 0, 0, 0, PLAN_CLASS_RETRY},
	{PLAN_DELETE, 0, NULL, NULL, 0, 0, 0, PLAN_CLASS_RETRY},
	{PLAN_CREATE, 400, "RequestTimeout", "x", 0, 0, 0, PLAN_CLASS_RETRY},
	{PLAN_CREATE, 409, "AccessGrantsQuotaExceededError", "100000", 0, 0, 0, PLAN_CLASS_QUOTA},
	{PLAN_CREATE, 403, "AccessDenied", "denied", 0, 0, 0, PLAN_CLASS_TERMINAL},
	{PLAN_CREATE, 400, "InvalidAccessGrant", "bad", 0, 0, 0, PLAN_CLASS_TERMINAL},
	{PLAN_CREATE, 400, "InvalidRequest", "bad next token", 0, 0, 0, PLAN_CLASS_TERMINAL},
	/* propagation window: Invalid Grantee and InvalidIamRole, 120 s */
	{PLAN_CREATE, 400, "InvalidRequest", "Invalid Grantee in the request", 1000, 1000, 120000,
	 PLAN_CLASS_PROPAGATION},
	{PLAN_CREATE, 400, "InvalidRequest", "Invalid Grantee in the request", 1000, 120999, 120000,
	 PLAN_CLASS_PROPAGATION},
	{PLAN_CREATE, 400, "InvalidRequest", "Invalid Grantee in the request", 1000, 121000, 120000,
	 PLAN_CLASS_TERMINAL},
	{PLAN_CREATE, 400, "InvalidRequest", NULL, 1000, 1000, 120000, PLAN_CLASS_TERMINAL},
	{PLAN_CREATE, 400, "InvalidIamRole", "role", 5000, 6000, 2000, PLAN_CLASS_PROPAGATION},
	{PLAN_CREATE, 400, "InvalidIamRole", "role", 5000, 7000, 2000, PLAN_CLASS_TERMINAL},
	{PLAN_CREATE, 400, "InvalidIamRole", "role", 5000, 4000, 2000, PLAN_CLASS_PROPAGATION},
	{PLAN_DELETE, 400, "AccessGrantsLocationNotEmptyError", "x", 0, 10, 100, PLAN_CLASS_PROPAGATION},
};

static void test_classify(void **state)
{
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		const struct class_case *c = &classes[i];
		enum plan_class got = plan_classify(c->op, c->http, c->code, c->message, c->first, c->now, c->window);

		if (got != c->want)
			fail_msg("case %zu (%s %s): got %s want %s", i, plan_op_name(c->op), c->code ? c->code : "-",
				 plan_class_name(got), plan_class_name(c->want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plans),
		cmocka_unit_test(test_reduces),
		cmocka_unit_test(test_quota_levels),
		cmocka_unit_test(test_quota_apply),
		cmocka_unit_test(test_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
