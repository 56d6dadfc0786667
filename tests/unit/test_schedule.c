/* Export schedule: local time of day, DST gaps and overlaps, catch-up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/isotime.h"
#include "core/schedule.h"

/* A synthetic zone shaped like US Eastern 2026: UTC-5, UTC-4 from
 * 2026-03-08 07:00Z (02:00 EST jumps to 03:00 EDT) until 2026-11-01 06:00Z
 * (02:00 EDT falls back to 01:00 EST). */
static int64_t utc(int y, unsigned m, unsigned d, int h, int mi)
{
	return isotime_days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60;
}

static int eastern(int64_t t, struct sched_local *ret, void *user)
{
	int64_t off = (t >= utc(2026, 3, 8, 7, 0) && t < utc(2026, 11, 1, 6, 0)) ? -4 * 3600 : -5 * 3600;
	int64_t l = t + off;
	int64_t day = l >= 0 ? l / 86400 : (l - 86399) / 86400;

	ret->day = day;
	ret->sec_of_day = (int)(l - day * 86400);
	return 0;
}

/* The real thing, as the daemon does it: localtime_r under TZ. */
static int libc_local(int64_t t, struct sched_local *ret, void *user)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm))
		return -1;
	ret->day = isotime_days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
	ret->sec_of_day = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return 0;
}

static const struct sched_clock synthetic = {eastern, NULL};
static const struct sched_clock real = {libc_local, NULL};

static int64_t day_of(int y, unsigned m, unsigned d)
{
	return isotime_days_from_civil(y, m, d);
}

static void check_slots(const struct sched_clock *clk)
{
	int64_t t;

	/* ordinary day: 03:00 EDT = 07:00Z */
	assert_int_equal(sched_slot(clk, day_of(2026, 6, 15), 3 * 3600, &t), 0);
	assert_int_equal(t, utc(2026, 6, 15, 7, 0));
	/* winter: 03:00 EST = 08:00Z */
	assert_int_equal(sched_slot(clk, day_of(2026, 12, 15), 3 * 3600, &t), 0);
	assert_int_equal(t, utc(2026, 12, 15, 8, 0));
	/* spring forward: 02:30 does not exist; runs at the end of the gap, 03:00 EDT = 07:00Z */
	assert_int_equal(sched_slot(clk, day_of(2026, 3, 8), 2 * 3600 + 1800, &t), 0);
	assert_int_equal(t, utc(2026, 3, 8, 7, 0));
	/* spring forward, 03:00 itself: 07:00Z */
	assert_int_equal(sched_slot(clk, day_of(2026, 3, 8), 3 * 3600, &t), 0);
	assert_int_equal(t, utc(2026, 3, 8, 7, 0));
	/* fall back: 01:30 happens twice; the first is 01:30 EDT = 05:30Z */
	assert_int_equal(sched_slot(clk, day_of(2026, 11, 1), 3600 + 1800, &t), 0);
	assert_int_equal(t, utc(2026, 11, 1, 5, 30));
	/* fall back, a slot in the last second before the jump: 01:59:59 EDT */
	assert_int_equal(sched_slot(clk, day_of(2026, 11, 1), 3600 + 59 * 60 + 59, &t), 0);
	assert_int_equal(t, utc(2026, 11, 1, 5, 59) + 59);
	/* fall back, 03:00 EST = 08:00Z */
	assert_int_equal(sched_slot(clk, day_of(2026, 11, 1), 3 * 3600, &t), 0);
	assert_int_equal(t, utc(2026, 11, 1, 8, 0));
	/* midnight */
	assert_int_equal(sched_slot(clk, day_of(2026, 6, 15), 0, &t), 0);
	assert_int_equal(t, utc(2026, 6, 15, 4, 0));
}

static void test_slots_synthetic(void **state)
{
	check_slots(&synthetic);
}

static void test_slots_libc_new_york(void **state)
{
	setenv("TZ", "America/New_York", 1);
	tzset();
	check_slots(&real);
}

/* Run a simulated daemon from `from` to `to`, jumping from wake-up to
 * wake-up; the export of the local day of `from` has already been made;
 * `down_from..down_to` is when the daemon is not running; `fail_first` makes
 * the first attempt of each day fail. Records one entry per run. */
struct run {
	int64_t day;
	int64_t at;
	int ok;
};

static size_t simulate(const struct sched_clock *clk, int sec, int64_t from, int64_t to, int64_t down_from,
		       int64_t down_to, int fail_first, struct run *runs, size_t max)
{
	int64_t now = from, last_day, retry_at = 0;
	int last_ok = 1;
	size_t n = 0;
	struct sched_local l0;

	assert_int_equal(clk->to_local(from, &l0, clk->user), 0);
	last_day = l0.day;

	while (now < to) {
		struct sched_decision d;

		if (now >= down_from && now < down_to)
			now = down_to;   /* restart: decide again at once */
		assert_int_equal(sched_decide(clk, sec, now, last_day, last_ok, retry_at, &d), 0);
		if (d.due) {
			int ok = !(fail_first && (last_day != d.day));

			assert_true(n < max);
			runs[n++] = (struct run){d.day, now, ok};
			last_ok = ok;
			last_day = d.day;
			retry_at = ok ? 0 : now + 600;   /* backoff: 10 minutes */
			assert_int_equal(sched_decide(clk, sec, now, last_day, last_ok, retry_at, &d), 0);
			assert_false(d.due);
		}
		assert_true(d.next_utc > now);
		now = d.next_utc;
	}
	return n;
}

static void test_once_per_local_day_across_dst(void **state)
{
	static const int slots[] = {3 * 3600, 2 * 3600 + 1800, 3600 + 1800, 0, 23 * 3600 + 59 * 60};
	const struct sched_clock *clocks[] = {&synthetic, &real};

	setenv("TZ", "America/New_York", 1);
	tzset();
	for (size_t c = 0; c < 2; c++) {
		for (size_t s = 0; s < sizeof(slots) / sizeof(slots[0]); s++) {
			struct run runs[64];
			/* around both transitions */
			int64_t spans[2][2] = {{utc(2026, 3, 4, 12, 0), utc(2026, 3, 12, 12, 0)},
					       {utc(2026, 10, 28, 12, 0), utc(2026, 11, 5, 12, 0)}};

			for (int sp = 0; sp < 2; sp++) {
				size_t n = simulate(clocks[c], slots[s], spans[sp][0], spans[sp][1], 0, 0, 0, runs, 64);
				struct sched_local l0;
				size_t expect = 0;
				int64_t slot0;

				/* one run for every local day after the first whose slot is in the span */
				assert_int_equal(clocks[c]->to_local(spans[sp][0], &l0, NULL), 0);
				for (int64_t d = l0.day + 1;; d++) {
					assert_int_equal(sched_slot(clocks[c], d, slots[s], &slot0), 0);
					if (slot0 >= spans[sp][1])
						break;
					expect++;
				}
				assert_in_range(expect, 7, 8);
				assert_int_equal(n, expect);
				for (size_t i = 0; i < n; i++) {
					struct sched_local l;
					int64_t slot;

					assert_int_equal(runs[i].day, runs[0].day + (int64_t)i);
					assert_int_equal(sched_slot(clocks[c], runs[i].day, slots[s], &slot), 0);
					assert_int_equal(runs[i].at, slot);
					assert_int_equal(clocks[c]->to_local(runs[i].at, &l, NULL), 0);
					assert_int_equal(l.day, runs[i].day);
				}
			}
		}
	}
}

static void test_catch_up_after_downtime(void **state)
{
	struct run runs[64];
	/* down from 02:00 to 09:00 local on 2026-06-15 (06:00Z..13:00Z): one catch-up export at 13:00Z */
	size_t n = simulate(&synthetic, 3 * 3600, utc(2026, 6, 14, 12, 0), utc(2026, 6, 16, 12, 0),
			    utc(2026, 6, 15, 6, 0), utc(2026, 6, 15, 13, 0), 0, runs, 64);

	assert_int_equal(n, 2);
	assert_int_equal(runs[0].day, day_of(2026, 6, 15));
	assert_int_equal(runs[0].at, utc(2026, 6, 15, 13, 0));
	assert_int_equal(runs[1].day, day_of(2026, 6, 16));
	assert_int_equal(runs[1].at, utc(2026, 6, 16, 7, 0));

	/* down for three days: one export for the day it comes back, none for the missed days */
	n = simulate(&synthetic, 3 * 3600, utc(2026, 6, 14, 12, 0), utc(2026, 6, 18, 6, 0), utc(2026, 6, 14, 13, 0),
		     utc(2026, 6, 17, 10, 0), 0, runs, 64);
	assert_int_equal(n, 1);
	assert_int_equal(runs[0].day, day_of(2026, 6, 17));
	assert_int_equal(runs[0].at, utc(2026, 6, 17, 10, 0));
}

static void test_retry_until_next_slot(void **state)
{
	struct run runs[64];
	size_t n = simulate(&synthetic, 3 * 3600, utc(2026, 6, 14, 12, 0), utc(2026, 6, 16, 6, 0), 0, 0, 1, runs, 64);

	/* day 15: fails at 07:00Z, retried at 07:10Z and succeeds; day 16 not reached */
	assert_int_equal(n, 2);
	assert_false(runs[0].ok);
	assert_int_equal(runs[0].at, utc(2026, 6, 15, 7, 0));
	assert_true(runs[1].ok);
	assert_int_equal(runs[1].at, utc(2026, 6, 15, 7, 10));
	assert_int_equal(runs[1].day, day_of(2026, 6, 15));
}

static void test_first_start_runs_today(void **state)
{
	struct sched_decision d;

	/* never exported, started after today's slot: due now, for today */
	assert_int_equal(sched_decide(&synthetic, 3 * 3600, utc(2026, 6, 15, 12, 0), INT64_MIN, 0, 0, &d), 0);
	assert_true(d.due);
	assert_int_equal(d.day, day_of(2026, 6, 15));
	/* never exported, started before today's slot: wait for it */
	assert_int_equal(sched_decide(&synthetic, 3 * 3600, utc(2026, 6, 15, 5, 0), INT64_MIN, 0, 0, &d), 0);
	assert_false(d.due);
	assert_int_equal(d.next_utc, utc(2026, 6, 15, 7, 0));
}

static void test_retry_never_past_next_slot(void **state)
{
	struct sched_decision d;
	int64_t now = utc(2026, 6, 16, 6, 55);   /* 02:55 local on the 16th */

	/* yesterday's export failed with a retry due after today's slot: the slot wins */
	assert_int_equal(sched_decide(&synthetic, 3 * 3600, now, day_of(2026, 6, 15), 0, utc(2026, 6, 16, 9, 0), &d), 0);
	assert_false(d.due);
	assert_int_equal(d.next_utc, utc(2026, 6, 16, 7, 0));
	/* a retry for today due before tomorrow's slot */
	now = utc(2026, 6, 16, 8, 0);
	assert_int_equal(sched_decide(&synthetic, 3 * 3600, now, day_of(2026, 6, 16), 0, utc(2026, 6, 16, 8, 30), &d), 0);
	assert_false(d.due);
	assert_int_equal(d.next_utc, utc(2026, 6, 16, 8, 30));
	/* a retry for today due after tomorrow's slot: capped at the slot */
	assert_int_equal(sched_decide(&synthetic, 3 * 3600, now, day_of(2026, 6, 16), 0, utc(2026, 6, 17, 9, 0), &d), 0);
	assert_int_equal(d.next_utc, utc(2026, 6, 17, 7, 0));
}

static void test_parse_time_of_day(void **state)
{
	int s;

	assert_int_equal(sched_parse_time_of_day("03:00", &s), 0);
	assert_int_equal(s, 3 * 3600);
	assert_int_equal(sched_parse_time_of_day("23:59:30", &s), 0);
	assert_int_equal(s, 23 * 3600 + 59 * 60 + 30);
	assert_int_equal(sched_parse_time_of_day("00:00", &s), 0);
	assert_int_equal(s, 0);
	static const char *const bad[] = {"24:00", "3:00", "03:60", "03-00", "", "03:00:", "ab:cd", "03:00:60"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sched_parse_time_of_day(bad[i], &s), S3G_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots_synthetic),
		cmocka_unit_test(test_slots_libc_new_york),
		cmocka_unit_test(test_once_per_local_day_across_dst),
		cmocka_unit_test(test_catch_up_after_downtime),
		cmocka_unit_test(test_retry_until_next_slot),
		cmocka_unit_test(test_first_start_runs_today),
		cmocka_unit_test(test_retry_never_past_next_slot),
		cmocka_unit_test(test_parse_time_of_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
