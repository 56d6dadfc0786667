/* ISO 8601 timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/isotime.h"

static void test_parse_table(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{"1970-01-01T00:00:00Z", 0},
		{"2015-08-30T12:36:00Z", 1440938160000},
		{"2015-08-30T12:36:00.870Z", 1440938160870},
		{"2023-09-21T23:47:24.870123Z", 1695340044870},
		{"2015-08-30T14:36:00+02:00", 1440938160000},
		{"2015-08-30T10:36:00-02:00", 1440938160000},
		{"2024-02-29T00:00:00Z", 1709164800000},
		{"2000-03-01T00:00:00z", 951868800000},
		{"1969-12-31T23:59:59Z", -1000},
	};
	static const char *const bad[] = {
		"", "2015-08-30", "2015-08-30T12:36:00", "2015-08-30T12:36:00ZZ", "2015-13-30T12:36:00Z",
		"2015-02-29T12:36:00Z", "2015-08-30T24:00:00Z", "2015-08-30T12:36:00.Z", "2015-08-30T12:36:00+0200",
		"2015-08-30X12:36:00Z", "2015-08-30T12:3a:00Z", "2015-08-30T12:36:00.1234567890Z",
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(isotime_parse(ok[i].s, strlen(ok[i].s), &ms), 0);
		if (ms != ok[i].ms)
			fail_msg("%s: %lld != %lld", ok[i].s, (long long)ms, (long long)ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (isotime_parse(bad[i], strlen(bad[i]), &ms) == 0)
			fail_msg("accepted '%s'", bad[i]);
}

static void test_format_roundtrip(void **state)
{
	char out[32];
	int64_t ms;

	isotime_format(1440938160870, 1, out);
	assert_string_equal(out, "2015-08-30T12:36:00.870Z");
	isotime_format(1440938160870, 0, out);
	assert_string_equal(out, "2015-08-30T12:36:00Z");
	isotime_format(-1000, 0, out);
	assert_string_equal(out, "1969-12-31T23:59:59Z");
	for (int64_t t = -86400000LL * 800; t < 86400000LL * 40000; t += 86400000LL * 13 + 3723456) {
		isotime_format(t, 1, out);
		assert_int_equal(isotime_parse(out, strlen(out), &ms), 0);
		assert_int_equal(ms, t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_format_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
