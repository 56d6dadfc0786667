#include "core/isotime.h"

#include <stdio.h>

int64_t isotime_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's days_from_civil */
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

void isotime_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, size_t n, unsigned *ret)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

static int leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int isotime_parse(const char *s, size_t len, int64_t *ret_ms)
{
	static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned Y, M, D, h, mi, sec, ms = 0;
	int64_t off_min = 0;
	size_t i;

	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':')
		return S3G_EINVAL;
	if (digits(s, 4, &Y) || digits(s + 5, 2, &M) || digits(s + 8, 2, &D) || digits(s + 11, 2, &h) ||
	    digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
		return S3G_EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] + (M == 2 && leap(Y)) || h > 23 || mi > 59 || sec > 60)
		return S3G_EINVAL;
	i = 19;
	if (i < len && s[i] == '.') {
		unsigned scale = 100;
		size_t start = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			ms += (unsigned)(s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == start || i - start > 9)
			return S3G_EINVAL;
	}
	if (i >= len)
		return S3G_EINVAL;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		unsigned oh, om;

		if (len - i != 6 || s[i + 3] != ':' || digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) ||
		    oh > 23 || om > 59)
			return S3G_EINVAL;
		off_min = (int64_t)oh * 60 + om;
		if (s[i] == '-')
			off_min = -off_min;
		i += 6;
	} else {
		return S3G_EINVAL;
	}
	if (i != len)
		return S3G_EINVAL;
	if (sec == 60)
		sec = 59;   /* a leap second folds onto the previous one */
	*ret_ms = ((isotime_days_from_civil(Y, M, D) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec -
		    off_min * 60) * 1000) + ms;
	return 0;
}

void isotime_format(int64_t ms, int with_ms, char out[32])
{
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t rem = secs - days * 86400;
	int64_t y;
	unsigned m, d;

	isotime_civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		y = y < 0 ? 0 : 9999;
		m = y ? 12 : 1;
		d = y ? 31 : 1;
		rem = y ? 86399 : 0;
	}
	if (with_ms)
		snprintf(out, 32, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d, (unsigned)(rem / 3600),
			 (unsigned)(rem / 60 % 60), (unsigned)(rem % 60), (unsigned)(ms - secs * 1000));
	else
		snprintf(out, 32, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d, (unsigned)(rem / 3600),
			 (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
}
