/* isotime.h — ISO 8601 / RFC 3339 timestamps as AWS writes them.
 *
 * Parses "2015-08-30T12:36:00Z", "2015-08-30T12:36:00.123Z" and
 * "2015-08-30T12:36:00+02:00" into milliseconds since the Unix epoch (UTC),
 * and formats UTC milliseconds back. Pure: no time zone database, no clock.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* S3G_EINVAL unless the whole string is one timestamp. */
int isotime_parse(const char *s, size_t len, int64_t *ret_ms) S3G_WUR;

/* "YYYY-MM-DDTHH:MM:SSZ" (with ".mmmZ" when with_ms) into out (32 bytes; years outside 0..9999 are clamped). */
void isotime_format(int64_t ms, int with_ms, char out[32]);

/* Days since 1970-01-01 for a proleptic Gregorian date (month 1..12). */
int64_t isotime_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The inverse: the date of day z (days since 1970-01-01). */
void isotime_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
