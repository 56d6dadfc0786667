#include "core/retry.h"

#include <string.h>
#include <strings.h>

#include "core/isotime.h"

static const char *const class_names[RETRY_CLASS_MAX] = {
	[RETRY_NONE] = "none",
	[RETRY_THROTTLING] = "throttling",
	[RETRY_TRANSIENT] = "transient",
	[RETRY_TRANSIENT_TIMEOUT] = "transient-timeout",
	[RETRY_CLOCK_SKEW] = "clock-skew",
	[RETRY_EXPIRED_CREDS] = "expired-credentials",
	[RETRY_TERMINAL] = "terminal",
};

const char *retry_class_name(enum retry_class c)
{
	if ((unsigned)c >= RETRY_CLASS_MAX)
		return "?";
	return class_names[c];
}

void retry_policy_classic(struct retry_policy *p)
{
	p->max_attempts = 3;
	p->quota_max = 500;
	p->cost = 5;
	p->cost_throttling = 5;
	p->cost_timeout = 10;
	p->no_retry_increment = 1;
	p->base_ms = 1000;
	p->base_throttling_ms = 1000;
	p->cap_ms = 20000;
	p->honour_retry_after = 0;
	p->retry_after_extra_ms = 5000;
	p->skew_threshold_ms = 4 * 60 * 1000;
}

void retry_policy_2026(struct retry_policy *p)
{
	retry_policy_classic(p);
	p->cost = 14;
	p->cost_timeout = 14;
	p->base_ms = 50;
	p->honour_retry_after = 1;
}

void retry_quota_init(struct retry_quota *q, const struct retry_policy *p)
{
	q->tokens = p->quota_max;
	q->max = p->quota_max;
}

void retry_state_init(struct retry_state *st)
{
	memset(st, 0, sizeof(*st));
}

/* WIRE.md g: botocore retries/standard.py and special.py. */
static const char *const throttling_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	"TooManyRequestsException", "ProvisionedThroughputExceededException",
	"TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
	"LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	"EC2ThrottledException",
};
static const char *const transient_codes[] = {
	"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
	"IDPCommunicationError", "InternalError", "ServiceUnavailable",
};
static const char *const skew_codes[] = {
	"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture",
};
/* Skew only when the server's Date is far from ours (WIRE.md e). */
static const char *const maybe_skew_codes[] = {
	"SignatureDoesNotMatch", "InvalidSignatureException", "AuthFailure",
};
static const char *const expired_codes[] = {
	"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired",
};

#define N_(a) (sizeof(a) / sizeof((a)[0]))

static int in_list(const char *code, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(code, list[i]) == 0)
			return 1;
	return 0;
}

enum retry_class retry_classify(const struct retry_policy *pol, const struct retry_input *in)
{
	const char *code = in->aws_code && in->aws_code[0] ? in->aws_code : NULL;
	int64_t thr = pol ? pol->skew_threshold_ms : 4 * 60 * 1000;

	if (in->status == S3G_ETIMEOUT)
		return RETRY_TRANSIENT_TIMEOUT;
	if (in->status == S3G_ETRANSPORT)
		return RETRY_TRANSIENT;
	if (in->status < 0)
		return RETRY_TERMINAL;     /* cancelled, too big, shutdown, invalid */
	if (code) {
		if (in_list(code, throttling_codes, N_(throttling_codes)) || strstr(code, "Throttl"))
			return RETRY_THROTTLING;
		if (in_list(code, transient_codes, N_(transient_codes)))
			return RETRY_TRANSIENT;
		if (in_list(code, skew_codes, N_(skew_codes)))
			return RETRY_CLOCK_SKEW;
		if (in_list(code, maybe_skew_codes, N_(maybe_skew_codes)) && in->have_server_date) {
			int64_t d = in->server_date_ms - in->local_now_ms;

			if (d < 0)
				d = -d;
			if (d >= thr)
				return RETRY_CLOCK_SKEW;
		}
		if (in_list(code, expired_codes, N_(expired_codes)))
			return RETRY_EXPIRED_CREDS;
	}
	if (in->http_code == 429)
		return RETRY_THROTTLING;
	if (in->http_code == 500 || in->http_code == 502 || in->http_code == 503 || in->http_code == 504)
		return RETRY_TRANSIENT;
	if (in->modeled_retryable)
		return RETRY_TRANSIENT;
	if (code || in->http_code >= 300 || in->http_code < 100)
		return RETRY_TERMINAL;
	return RETRY_NONE;
}

uint64_t retry_backoff_ms(const struct retry_policy *pol, enum retry_class c, unsigned i, double r,
			  int64_t retry_after_ms)
{
	uint64_t base = c == RETRY_THROTTLING ? pol->base_throttling_ms : pol->base_ms;
	uint64_t step = base;
	uint64_t t;

	if (i == 0)
		return 0;
	if (!(r >= 0.0))
		r = 0.0;
	if (r >= 1.0)
		r = 0.0;
	for (unsigned k = 1; k < i && step < pol->cap_ms; k++)
		step *= 2;
	if (step > pol->cap_ms)
		step = pol->cap_ms;
	t = (uint64_t)(r * (double)step);
	if (t >= step && step > 0)
		t = step - 1;
	if (pol->honour_retry_after && retry_after_ms >= 0) {
		uint64_t ra = (uint64_t)retry_after_ms;
		uint64_t hi = t + pol->retry_after_extra_ms;

		if (ra > hi)
			ra = hi;
		if (ra > t)
			t = ra;
	}
	return t;
}

static unsigned cost_of(const struct retry_policy *pol, enum retry_class c)
{
	switch (c) {
	case RETRY_THROTTLING:
		return pol->cost_throttling;
	case RETRY_TRANSIENT_TIMEOUT:
		return pol->cost_timeout;
	default:
		return pol->cost;
	}
}

int retry_next(const struct retry_policy *pol, struct retry_quota *q, struct retry_state *st,
	       enum retry_class c, int64_t retry_after_ms, retry_rand_cb rnd, void *rnd_user,
	       uint64_t *ret_delay_ms)
{
	unsigned cost;
	double r;

	st->attempts++;
	if (st->attempts >= pol->max_attempts)
		return 0;
	switch (c) {
	case RETRY_CLOCK_SKEW:
		if (st->skew_done)
			return 0;
		st->skew_done = 1;
		*ret_delay_ms = 0;
		return 1;
	case RETRY_EXPIRED_CREDS:
		if (st->creds_done)
			return 0;
		st->creds_done = 1;
		*ret_delay_ms = 0;
		return 1;
	case RETRY_THROTTLING:
	case RETRY_TRANSIENT:
	case RETRY_TRANSIENT_TIMEOUT:
		break;
	default:
		return 0;
	}
	cost = cost_of(pol, c);
	if (q->tokens < cost)
		return 0;
	q->tokens -= cost;
	st->last_cost = cost;
	r = rnd ? rnd(rnd_user) : 0.0;
	*ret_delay_ms = retry_backoff_ms(pol, c, st->attempts, r, retry_after_ms);
	return 1;
}

void retry_success(const struct retry_policy *pol, struct retry_quota *q, const struct retry_state *st)
{
	unsigned add = st->last_cost ? st->last_cost : pol->no_retry_increment;

	if (q->tokens + add > q->max || q->tokens + add < q->tokens)
		q->tokens = q->max;
	else
		q->tokens += add;
}

static int digits(const char *s, size_t n, unsigned *ret)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return S3G_EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

int retry_parse_http_date(const char *s, size_t len, int64_t *ret_ms)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned d, mon = 0, y, hh, mm, ss;
	size_t i = 0;

	/* optional "Sun, " */
	if (len >= 5 && s[3] == ',' && s[4] == ' ')
		i = 5;
	/* "30 Aug 2015 12:36:00 GMT" = 24 bytes (1-digit day tolerated: 23) */
	if (len - i == 24) {
		if (digits(s + i, 2, &d) < 0)
			return S3G_EINVAL;
		i += 2;
	} else if (len - i == 23) {
		if (digits(s + i, 1, &d) < 0)
			return S3G_EINVAL;
		i += 1;
	} else {
		return S3G_EINVAL;
	}
	if (s[i] != ' ' || s[i + 4] != ' ' || s[i + 9] != ' ' || s[i + 12] != ':' || s[i + 15] != ':' ||
	    s[i + 18] != ' ')
		return S3G_EINVAL;
	for (mon = 0; mon < 12; mon++)
		if (memcmp(s + i + 1, months + 3 * mon, 3) == 0)
			break;
	if (mon == 12)
		return S3G_EINVAL;
	if (digits(s + i + 5, 4, &y) < 0 || digits(s + i + 10, 2, &hh) < 0 || digits(s + i + 13, 2, &mm) < 0 ||
	    digits(s + i + 16, 2, &ss) < 0)
		return S3G_EINVAL;
	if (memcmp(s + i + 19, "GMT", 3) != 0 && memcmp(s + i + 19, "UTC", 3) != 0)
		return S3G_EINVAL;
	if (d < 1 || d > mdays[mon] || hh > 23 || mm > 59 || ss > 60)
		return S3G_EINVAL;
	if (mon == 1 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return S3G_EINVAL;
	*ret_ms = (isotime_days_from_civil(y, mon + 1, d) * 86400 + (int64_t)hh * 3600 + (int64_t)mm * 60 +
		   (int64_t)ss) * 1000;
	return 0;
}

int retry_parse_retry_after(const char *s, size_t len, int64_t *ret_ms)
{
	int64_t v = 0;

	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len > 12)
		return S3G_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return S3G_EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*ret_ms = v;
	return 0;
}

double retry_prng_next(void *user)
{
	uint64_t *s = user;
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

uint64_t retry_prng_seed(uint64_t a, uint64_t b)
{
	uint64_t x = a * 6364136223846793005ULL ^ b;

	return x ? x : 0x9E3779B97F4A7C15ULL;
}
