#include "core/schedule.h"

#include <string.h>

/* Widest UTC offset to search: real zones are within -12h..+14h. */
#define MAX_OFFSET (15 * 3600)

static int cmp_local(const struct sched_local *a, int64_t day, int sec)
{
	if (a->day != day)
		return a->day < day ? -1 : 1;
	if (a->sec_of_day != sec)
		return a->sec_of_day < sec ? -1 : 1;
	return 0;
}

int sched_slot(const struct sched_clock *clk, int64_t day, int sec_of_day, int64_t *ret_utc)
{
	/* The first instant whose local time is >= (day, sec). Local time only
	 * jumps at whole-minute UTC instants (every zone's transitions do), so it
	 * is monotonic inside each minute-aligned minute. Walk the minutes of the
	 * window that can contain the answer; the first minute whose last second
	 * is at or past the target contains it; bisect inside that minute. A
	 * fall-back overlap is thereby taken at its first occurrence and a
	 * spring-forward gap at its end. */
	const int64_t naive = day * 86400 + sec_of_day;
	int64_t t = (naive - MAX_OFFSET) / 60 * 60;
	struct sched_local l;
	int r;

	for (; t <= naive + MAX_OFFSET; t += 60) {
		int64_t lo = t - 1, hi = t + 59;

		r = clk->to_local(hi, &l, clk->user);
		if (r < 0)
			return r;
		if (cmp_local(&l, day, sec_of_day) < 0)
			continue;
		while (hi - lo > 1) {   /* local(lo) < target <= local(hi) */
			int64_t mid = lo + (hi - lo) / 2;

			r = clk->to_local(mid, &l, clk->user);
			if (r < 0)
				return r;
			if (cmp_local(&l, day, sec_of_day) >= 0)
				hi = mid;
			else
				lo = mid;
		}
		*ret_utc = hi;
		return 0;
	}
	return S3G_EINVAL;
}

int sched_decide(const struct sched_clock *clk, int sec_of_day, int64_t now, int64_t last_day, int last_ok,
		 int64_t retry_at, struct sched_decision *ret)
{
	struct sched_decision d = {0};
	struct sched_local l;
	int64_t slot_today, slot_next;
	int r;

	r = clk->to_local(now, &l, clk->user);
	if (r < 0)
		return r;
	r = sched_slot(clk, l.day, sec_of_day, &slot_today);
	if (r < 0)
		return r;
	r = sched_slot(clk, l.day + 1, sec_of_day, &slot_next);
	if (r < 0)
		return r;

	if (now < slot_today) {
		d.next_utc = slot_today;
	} else if (last_day != l.day) {
		d.due = 1;
		d.day = l.day;
		d.next_utc = slot_next;
	} else if (!last_ok && retry_at > 0) {
		/* today's export failed: retry, but the next slot belongs to tomorrow */
		if (now >= retry_at) {
			d.due = 1;
			d.day = l.day;
			d.next_utc = slot_next;
		} else {
			d.next_utc = retry_at < slot_next ? retry_at : slot_next;
		}
	} else {
		d.next_utc = slot_next;
	}
	*ret = d;
	return 0;
}

int sched_parse_time_of_day(const char *s, int *ret_sec)
{
	size_t n = strlen(s);
	int h, m, sec = 0;

	if ((n != 5 && n != 8) || s[2] != ':' || (n == 8 && s[5] != ':'))
		return S3G_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (i != 2 && i != 5 && (s[i] < '0' || s[i] > '9'))
			return S3G_EINVAL;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (n == 8)
		sec = (s[6] - '0') * 10 + (s[7] - '0');
	if (h > 23 || m > 59 || sec > 59)
		return S3G_EINVAL;
	*ret_sec = h * 3600 + m * 60 + sec;
	return 0;
}
