/* schedule.h — when the nightly export is due, in local time, DST-safe.
 *
 * The export runs once per local day at a local time of day (default 03:00).
 * Local time comes from a converter the caller injects (the daemon uses
 * localtime_r with the configured time zone; tests use synthetic zones), so
 * this module is pure. Rules:
 *  - the slot of local day D is the first instant whose local time is at or
 *    after D hh:mm: in a spring-forward gap that is the end of the gap (a 02:30
 *    slot on a day that skips 02:00–03:00 runs at 03:00); in a fall-back
 *    overlap it is the first occurrence (01:30 runs once, not twice);
 *  - an export is due when today's slot has passed and today has no export
 *    yet (this is also the catch-up after downtime: one export, not one per
 *    missed day);
 *  - a failed export is retried with backoff, but never past the next slot.
 * Times are Unix seconds (UTC); local days are days since 1970-01-01.
 */
#pragma once
#include <stdint.h>

#include "core/err.h"

struct sched_local {
	int64_t day;                 /* local calendar day, days since 1970-01-01 */
	int sec_of_day;              /* 0..86399 (local wall clock) */
};

/* UTC seconds → local wall clock. Returns 0 or a negative error. */
typedef int (*sched_to_local_cb)(int64_t utc, struct sched_local *ret, void *user);

struct sched_clock {
	sched_to_local_cb to_local;
	void *user;
};

/* The UTC instant of day's slot at sec_of_day (see the rules above). */
int sched_slot(const struct sched_clock *clk, int64_t day, int sec_of_day, int64_t *ret_utc) S3G_WUR;

struct sched_decision {
	int due;                     /* run now */
	int64_t day;                 /* the local day the export is for (when due) */
	int64_t next_utc;            /* when to wake up next (the timer) */
};

/* Decide at `now`. last_day is the local day of the most recent export that
 * exists (succeeded or still retrying), or INT64_MIN for none; retry_at is
 * when a failed export of today may be retried (0 = not failed). */
int sched_decide(const struct sched_clock *clk, int sec_of_day, int64_t now, int64_t last_day, int last_ok,
		 int64_t retry_at, struct sched_decision *ret) S3G_WUR;

/* Parse "HH:MM" (or "HH:MM:SS") into seconds of day. */
int sched_parse_time_of_day(const char *s, int *ret_sec) S3G_WUR;
