/* core/retry: standard retry mode — classification, quota, backoff, dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/retry.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

static const int64_t NOW = 1440938160000; /* Sun, 30 Aug 2015 12:36:00 GMT */

static void test_classify_table(void **state)
{
	static const struct {
		int status, http;
		const char *code;
		int have_date;
		int64_t date_off;
		enum retry_class want;
	} t[] = {
		{0, 200, NULL, 0, 0, RETRY_NONE},
		{0, 204, NULL, 0, 0, RETRY_NONE},
		{S3G_ETIMEOUT, 0, NULL, 0, 0, RETRY_TRANSIENT_TIMEOUT},
		{S3G_ETRANSPORT, 0, NULL, 0, 0, RETRY_TRANSIENT},
		{S3G_ECANCELLED, 0, NULL, 0, 0, RETRY_TERMINAL},
		{S3G_ETOOBIG, 200, NULL, 0, 0, RETRY_TERMINAL},
		{0, 429, NULL, 0, 0, RETRY_THROTTLING},
		{0, 500, NULL, 0, 0, RETRY_TRANSIENT},
		{0, 502, NULL, 0, 0, RETRY_TRANSIENT},
		{0, 503, NULL, 0, 0, RETRY_TRANSIENT},
		{0, 504, NULL, 0, 0, RETRY_TRANSIENT},
		{0, 501, "NotImplemented", 0, 0, RETRY_TERMINAL},
		{0, 503, "SlowDown", 0, 0, RETRY_THROTTLING},
		{0, 400, "Throttling", 0, 0, RETRY_THROTTLING},
		{0, 400, "ThrottlingException", 0, 0, RETRY_THROTTLING},
		{0, 400, "ThrottledException", 0, 0, RETRY_THROTTLING},
		{0, 400, "RequestThrottledException", 0, 0, RETRY_THROTTLING},
		{0, 400, "TooManyRequestsException", 0, 0, RETRY_THROTTLING},
		{0, 400, "ProvisionedThroughputExceededException", 0, 0, RETRY_THROTTLING},
		{0, 400, "TransactionInProgressException", 0, 0, RETRY_THROTTLING},
		{0, 400, "RequestLimitExceeded", 0, 0, RETRY_THROTTLING},
		{0, 400, "BandwidthLimitExceeded", 0, 0, RETRY_THROTTLING},
		{0, 400, "LimitExceededException", 0, 0, RETRY_THROTTLING},
		{0, 400, "RequestThrottled", 0, 0, RETRY_THROTTLING},
		{0, 400, "PriorRequestNotComplete", 0, 0, RETRY_THROTTLING},
		{0, 400, "EC2ThrottledException", 0, 0, RETRY_THROTTLING},
		{0, 400, "KMS.ThrottlingException", 0, 0, RETRY_THROTTLING},
		{0, 400, "RequestTimeout", 0, 0, RETRY_TRANSIENT},
		{0, 400, "RequestTimeoutException", 0, 0, RETRY_TRANSIENT},
		{0, 400, "IDPCommunicationError", 0, 0, RETRY_TRANSIENT},
		{0, 403, "RequestTimeTooSkewed", 0, 0, RETRY_CLOCK_SKEW},
		{0, 400, "RequestExpired", 0, 0, RETRY_CLOCK_SKEW},
		{0, 400, "RequestInTheFuture", 0, 0, RETRY_CLOCK_SKEW},
		{0, 403, "SignatureDoesNotMatch", 0, 0, RETRY_TERMINAL},
		{0, 403, "SignatureDoesNotMatch", 1, 239999, RETRY_TERMINAL},
		{0, 403, "SignatureDoesNotMatch", 1, 240000, RETRY_CLOCK_SKEW},
		{0, 403, "SignatureDoesNotMatch", 1, -600000, RETRY_CLOCK_SKEW},
		{0, 400, "InvalidSignatureException", 1, 300000, RETRY_CLOCK_SKEW},
		{0, 400, "ExpiredToken", 0, 0, RETRY_EXPIRED_CREDS},
		{0, 400, "ExpiredTokenException", 0, 0, RETRY_EXPIRED_CREDS},
		{0, 400, "TokenRefreshRequired", 0, 0, RETRY_EXPIRED_CREDS},
		{0, 400, "InvalidToken", 0, 0, RETRY_TERMINAL},
		{0, 403, "AccessDenied", 0, 0, RETRY_TERMINAL},
		{0, 404, "NoSuchBucket", 0, 0, RETRY_TERMINAL},
		{0, 409, "ConflictException", 0, 0, RETRY_TERMINAL},
		{0, 404, NULL, 0, 0, RETRY_TERMINAL},
		{0, 301, "PermanentRedirect", 0, 0, RETRY_TERMINAL},
	};
	struct retry_policy pol;

	retry_policy_classic(&pol);
	for (size_t i = 0; i < N_(t); i++) {
		struct retry_input in = {
			.status = t[i].status, .http_code = t[i].http, .aws_code = t[i].code,
			.have_server_date = t[i].have_date, .server_date_ms = NOW + t[i].date_off,
			.local_now_ms = NOW,
		};
		enum retry_class c = retry_classify(&pol, &in);

		if (c != t[i].want)
			fail_msg("row %zu (%d %s): %s != %s", i, t[i].http, t[i].code ? t[i].code : "-",
				 retry_class_name(c), retry_class_name(t[i].want));
	}
	struct retry_input mr = {.http_code = 400, .aws_code = "Whatever", .modeled_retryable = 1};
	assert_int_equal(retry_classify(&pol, &mr), RETRY_TRANSIENT);
	assert_string_equal(retry_class_name(RETRY_TRANSIENT_TIMEOUT), "transient-timeout");
	assert_string_equal(retry_class_name(RETRY_CLASS_MAX), "?");
}

static double fixed_rand(void *user)
{
	return *(double *)user;
}

static void test_quota_arithmetic(void **state)
{
	struct retry_policy pol;
	struct retry_quota q;
	struct retry_state st;
	uint64_t d;
	double r = 0.5;

	retry_policy_classic(&pol);
	retry_quota_init(&q, &pol);
	assert_int_equal(q.tokens, 500);

	/* success at first attempt: +1 but never above 500 */
	retry_state_init(&st);
	retry_success(&pol, &q, &st);
	assert_int_equal(q.tokens, 500);

	/* transient: cost 5, max 3 attempts → 2 retries */
	retry_state_init(&st);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_TRANSIENT, -1, fixed_rand, &r, &d), 1);
	assert_int_equal(q.tokens, 495);
	assert_int_equal(d, 500); /* 0.5 * 1000 */
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_TRANSIENT_TIMEOUT, -1, fixed_rand, &r, &d), 1);
	assert_int_equal(q.tokens, 485);
	assert_int_equal(d, 1000); /* 0.5 * 2000 */
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_TRANSIENT, -1, fixed_rand, &r, &d), 0);
	assert_int_equal(q.tokens, 485); /* giving up costs nothing */

	/* success after retries refunds the last cost (10) */
	retry_success(&pol, &q, &st);
	assert_int_equal(q.tokens, 495);
	retry_state_init(&st);
	retry_success(&pol, &q, &st);
	assert_int_equal(q.tokens, 496);

	/* terminal errors are never retried */
	retry_state_init(&st);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_TERMINAL, -1, NULL, NULL, &d), 0);
	assert_int_equal(q.tokens, 496);

	/* an empty bucket stops retries */
	q.tokens = 4;
	retry_state_init(&st);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_THROTTLING, -1, NULL, NULL, &d), 0);
	q.tokens = 9;
	retry_state_init(&st);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_TRANSIENT_TIMEOUT, -1, NULL, NULL, &d), 0);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_TRANSIENT, -1, NULL, NULL, &d), 1);
	assert_int_equal(q.tokens, 4);

	/* drain to zero with many failing requests: exactly 100 retries from 500 */
	retry_quota_init(&q, &pol);
	unsigned retries = 0;
	for (int k = 0; k < 1000; k++) {
		retry_state_init(&st);
		retries += (unsigned)retry_next(&pol, &q, &st, RETRY_THROTTLING, -1, NULL, NULL, &d);
	}
	assert_int_equal(retries, 100);
	assert_int_equal(q.tokens, 0);

	/* skew and expired credentials: once each, free, immediate */
	pol.max_attempts = 5;
	retry_quota_init(&q, &pol);
	retry_state_init(&st);
	d = 99;
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_CLOCK_SKEW, -1, NULL, NULL, &d), 1);
	assert_int_equal(d, 0);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_CLOCK_SKEW, -1, NULL, NULL, &d), 0);
	retry_state_init(&st);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_EXPIRED_CREDS, -1, NULL, NULL, &d), 1);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_EXPIRED_CREDS, -1, NULL, NULL, &d), 0);
	assert_int_equal(q.tokens, 500);

	/* 2026 costs */
	retry_policy_2026(&pol);
	retry_quota_init(&q, &pol);
	retry_state_init(&st);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_TRANSIENT, -1, NULL, NULL, &d), 1);
	assert_int_equal(q.tokens, 486);
	retry_state_init(&st);
	assert_int_equal(retry_next(&pol, &q, &st, RETRY_THROTTLING, -1, NULL, NULL, &d), 1);
	assert_int_equal(q.tokens, 481);
}

static void test_backoff_bounds(void **state)
{
	struct retry_policy pol;
	static const double rs[] = {0.0, 0.25, 0.5, 0.999999, 0.9999999999};

	retry_policy_classic(&pol);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 0, 0.9, -1), 0);
	for (unsigned i = 1; i <= 12; i++) {
		uint64_t step = 1000ull << (i - 1);

		if (step > 20000)
			step = 20000;
		for (size_t k = 0; k < N_(rs); k++) {
			uint64_t d = retry_backoff_ms(&pol, RETRY_TRANSIENT, i, rs[k], -1);

			assert_true(d < step);
			assert_int_equal(d, (uint64_t)(rs[k] * (double)step) >= step ? step - 1
									       : (uint64_t)(rs[k] * (double)step));
		}
	}
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 3, 0.5, -1), 2000);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 40, 0.5, -1), 10000);
	/* out-of-range random values are treated as 0 */
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 2, 1.0, -1), 0);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 2, -0.5, -1), 0);

	/* 2026: 50 ms base for non-throttling, 1 s for throttling */
	retry_policy_2026(&pol);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 1, 0.5, -1), 25);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 3, 0.5, -1), 100);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_THROTTLING, 1, 0.5, -1), 500);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 20, 0.5, -1), 10000);
}

static void test_retry_after(void **state)
{
	struct retry_policy pol;
	int64_t ms;

	retry_policy_2026(&pol);
	/* t = 0.5 * 50 = 25 */
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 1, 0.5, 1000), 1000);   /* within t + 5 s */
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 1, 0.5, 60000), 5025); /* capped at t + 5 s */
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 1, 0.5, 10), 25);      /* never below t */
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 1, 0.5, 0), 25);
	/* classic ignores it */
	retry_policy_classic(&pol);
	assert_int_equal(retry_backoff_ms(&pol, RETRY_TRANSIENT, 1, 0.5, 60000), 500);

	assert_int_equal(retry_parse_retry_after("1500", 4, &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(retry_parse_retry_after(" 7 ", 3, &ms), 0);
	assert_int_equal(ms, 7);
	assert_int_equal(retry_parse_retry_after("", 0, &ms), S3G_EINVAL);
	assert_int_equal(retry_parse_retry_after("-1", 2, &ms), S3G_EINVAL);
	assert_int_equal(retry_parse_retry_after("1.5", 3, &ms), S3G_EINVAL);
	assert_int_equal(retry_parse_retry_after("9999999999999", 13, &ms), S3G_EINVAL);
}

static void test_http_date(void **state)
{
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{"Sun, 30 Aug 2015 12:36:00 GMT", 1440938160000},
		{"30 Aug 2015 12:36:00 GMT", 1440938160000},
		{"Sun, 30 Aug 2015 12:36:00 UTC", 1440938160000},
		{"Thu, 01 Jan 1970 00:00:00 GMT", 0},
		{"Thu, 1 Jan 1970 00:00:01 GMT", 1000},
		{"Thu, 29 Feb 2024 23:59:59 GMT", 1709251199000},
		{"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799000},
	};
	static const char *const bad[] = {
		"", "Sun, 30 Aug 2015 12:36:00", "Sun, 30 Aug 2015 12:36:00 CET", "Sun, 30 Foo 2015 12:36:00 GMT",
		"Sun, 32 Aug 2015 12:36:00 GMT", "Sun, 29 Feb 2015 12:36:00 GMT", "Sun, 30 Aug 2015 24:36:00 GMT",
		"Sun, 30 Aug 2015 12:60:00 GMT", "Sun, 30 Aug 15 12:36:00 GMT", "Sunday, 30-Aug-15 12:36:00 GMT",
		"Sun Aug 30 12:36:00 2015", "Sun, 30 Aug 2015 12-36-00 GMT", "Sun, 3a Aug 2015 12:36:00 GMT",
	};
	int64_t ms;

	for (size_t i = 0; i < N_(ok); i++) {
		assert_int_equal(retry_parse_http_date(ok[i].s, strlen(ok[i].s), &ms), 0);
		if (ms != ok[i].ms)
			fail_msg("%s: %lld != %lld", ok[i].s, (long long)ms, (long long)ok[i].ms);
	}
	for (size_t i = 0; i < N_(bad); i++) {
		ms = 42;
		if (retry_parse_http_date(bad[i], strlen(bad[i]), &ms) != S3G_EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(ms, 42);
	}
}

/* The default jitter source: in [0, 1), reproducible from its seed, spread. */
static void test_prng(void **state)
{
	uint64_t a = retry_prng_seed(1700000000000ULL, 0x1234), b = a, z = retry_prng_seed(0, 0);
	unsigned low = 0;

	(void)state;
	assert_true(a != 0);
	assert_true(z != 0);
	for (int i = 0; i < 100000; i++) {
		double x = retry_prng_next(&a);

		assert_true(x >= 0.0 && x < 1.0);
		assert_true(x == retry_prng_next(&b));
		low += x < 0.5;
	}
	assert_in_range(low, 49000, 51000);
	assert_true(retry_prng_next(&z) >= 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_quota_arithmetic),
		cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_http_date),
		cmocka_unit_test(test_prng),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
