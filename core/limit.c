#include "core/limit.h"

#include <errno.h>

static void refill(struct limit *l, uint64_t now_ms)
{
	uint64_t full = (uint64_t)l->burst * 1000;

	if (now_ms > l->last_ms) {
		/* ms × tokens/s = milli-tokens; saturate at a full bucket */
		uint64_t dt = now_ms - l->last_ms;

		if (l->milli < full)
			l->milli = dt >= (full - l->milli + l->rate_per_s - 1) / (l->rate_per_s ? l->rate_per_s : 1) ?
					   full : l->milli + dt * l->rate_per_s;
		l->last_ms = now_ms;
	}
	if (l->milli > full)
		l->milli = full;
}

void limit_init(struct limit *l, uint32_t rate_per_s, uint32_t burst, uint32_t max_inflight, uint64_t now_ms)
{
	l->rate_per_s = rate_per_s;
	l->burst = burst ? burst : 1;
	l->max_inflight = max_inflight;
	l->inflight = 0;
	l->milli = (uint64_t)l->burst * 1000;
	l->last_ms = now_ms;
}

void limit_configure(struct limit *l, uint32_t rate_per_s, uint32_t burst, uint32_t max_inflight, uint64_t now_ms)
{
	refill(l, now_ms);
	l->rate_per_s = rate_per_s;
	l->burst = burst ? burst : 1;
	l->max_inflight = max_inflight;
	refill(l, now_ms);
}

int limit_acquire(struct limit *l, uint64_t now_ms)
{
	if (l->max_inflight && l->inflight >= l->max_inflight)
		return -EAGAIN;
	if (l->rate_per_s) {
		refill(l, now_ms);
		if (l->milli < 1000)
			return -EAGAIN;
		l->milli -= 1000;
	}
	l->inflight++;
	return 0;
}

void limit_release(struct limit *l)
{
	if (l->inflight)
		l->inflight--;
}

uint64_t limit_wait_ms(struct limit *l, uint64_t now_ms)
{
	uint64_t need;

	if (l->max_inflight && l->inflight >= l->max_inflight)
		return UINT64_MAX;
	if (!l->rate_per_s)
		return 0;
	refill(l, now_ms);
	if (l->milli >= 1000)
		return 0;
	need = 1000 - l->milli;
	return (need + l->rate_per_s - 1) / l->rate_per_s;
}
