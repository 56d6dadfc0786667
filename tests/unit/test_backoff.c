/* Per-key exponential backoff: bounds, cap, jitter source, reset, table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/backoff.h"

static uint64_t fixed_rand(void *user)
{
	return *(uint64_t *)user;
}

/* xorshift64 for the bounds sweep */
static uint64_t xs_rand(void *user)
{
	uint64_t *s = user;

	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct delay_case {
	uint32_t failures;
	uint64_t rnd;
	uint64_t want;
};

/* base 100 ms, cap 10 s */
static const struct delay_case delays[] = {
	{0, 0, 0},
	{1, 0, 50}, {1, 50, 100}, {1, 51, 50},          /* d=100: 50 + r % 51 */
	{2, 0, 100}, {2, 100, 200},                     /* d=200 */
	{3, 0, 200},                                    /* d=400 */
	{7, 0, 3200}, {7, 3200, 6400},                  /* d=6400 */
	{8, 0, 5000}, {8, 5000, 10000}, {8, 5001, 5000},/* capped: d=10000 */
	{40, 0, 5000}, {UINT32_MAX, 5000, 10000},       /* no overflow far out */
};

static void test_delays(void **state)
{
	for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
		uint64_t r = delays[i].rnd;
		struct backoff_policy pol = {100, 10000, fixed_rand, &r};

		if (backoff_delay(&pol, delays[i].failures) != delays[i].want)
			fail_msg("case %zu: %llu", i, (unsigned long long)backoff_delay(&pol, delays[i].failures));
	}
	{
		struct backoff_policy nojitter = {100, 10000, NULL, NULL};

		assert_int_equal(backoff_delay(&nojitter, 1), 100);
		assert_int_equal(backoff_delay(&nojitter, 4), 800);
		assert_int_equal(backoff_delay(&nojitter, 30), 10000);
	}
}

static void test_bounds_sweep(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	struct backoff_policy pol = {250, 60000, xs_rand, &seed};

	for (uint32_t n = 1; n < 64; n++) {
		uint64_t d = 250;

		for (uint32_t i = 1; i < n && d < 60000; i++)
			d *= 2;
		if (d > 60000)
			d = 60000;
		for (int k = 0; k < 200; k++) {
			uint64_t got = backoff_delay(&pol, n);

			assert_true(got >= d / 2);
			assert_true(got <= d);
			assert_true(got <= 60000);
		}
	}
}

static void test_state(void **state)
{
	uint64_t r = 0;
	struct backoff_policy pol = {1000, 8000, fixed_rand, &r};
	struct backoff_state st = {0};

	assert_true(backoff_ready(&st, 0));
	backoff_fail(&pol, &st, 10000);   /* d=1000 → 500 */
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.next_ms, 10500);
	assert_false(backoff_ready(&st, 10499));
	assert_true(backoff_ready(&st, 10500));
	backoff_fail(&pol, &st, 10500);   /* d=2000 → 1000 */
	assert_int_equal(st.next_ms, 11500);
	backoff_reset(&st);
	assert_int_equal(st.failures, 0);
	assert_true(backoff_ready(&st, 0));
	backoff_fail(&pol, &st, 20000);   /* back to the first step */
	assert_int_equal(st.next_ms, 20500);
}

static void test_table(void **state)
{
	uint64_t r = 0, next;
	struct backoff_policy pol = {100, 1000, fixed_rand, &r};
	struct backoff_table t;

	backoff_table_init(&t, &pol, 5000);
	assert_int_equal(backoff_table_earliest(&t), UINT64_MAX);
	assert_int_equal(backoff_table_next(&t, 42), 0);
	assert_int_equal(backoff_table_fail(&t, 42, 1000, &next), 0);
	assert_int_equal(next, 1050);
	assert_int_equal(backoff_table_fail(&t, 42, 1050, &next), 0);
	assert_int_equal(next, 1150);
	assert_int_equal(backoff_table_fail(&t, 7, 1000, &next), 0);
	assert_int_equal(backoff_table_earliest(&t), 1050);
	assert_int_equal(backoff_table_next(&t, 42), 1150);
	backoff_table_ok(&t, 42);
	assert_int_equal(backoff_table_next(&t, 42), 0);
	assert_int_equal(t.n, 1);
	/* many keys, removals keep the others findable (backward shift) */
	for (uint64_t k = 1000; k < 6000 - 1; k++)
		assert_int_equal(backoff_table_fail(&t, k, k, &next), 0);
	assert_int_equal(t.n, 5000);
	assert_int_equal(backoff_table_fail(&t, 999999, 0, &next), S3G_ETOOBIG);   /* bounded */
	for (uint64_t k = 1000; k < 5999; k += 2)
		backoff_table_ok(&t, k);
	for (uint64_t k = 1001; k < 5999; k += 2)
		assert_int_equal(backoff_table_next(&t, k), k + 50);
	for (uint64_t k = 1000; k < 5999; k += 2)
		assert_int_equal(backoff_table_next(&t, k), 0);
	assert_int_equal(backoff_table_next(&t, 7), 1050);
	assert_int_equal(backoff_table_earliest(&t), 1050);
	backoff_table_ok(&t, 12345678);   /* absent: no-op */
	backoff_table_free(&t);
	backoff_table_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delays),
		cmocka_unit_test(test_bounds_sweep),
		cmocka_unit_test(test_state),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
