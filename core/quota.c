#include "core/quota.h"

static const char *const level_names[QUOTA_LEVEL_MAX_] = {
	[QUOTA_OK] = "ok",
	[QUOTA_WARN] = "warn",
	[QUOTA_FULL] = "full",
};

const char *quota_level_name(enum quota_level l)
{
	return (unsigned)l < QUOTA_LEVEL_MAX_ ? level_names[l] : "?";
}

enum quota_level quota_level(size_t used, size_t limit)
{
	if (!limit)
		limit = QUOTA_GRANTS_PER_INSTANCE;
	if (used >= limit)
		return QUOTA_FULL;
	/* used / limit >= 90 %, without overflow for sane sizes */
	if (used * 100 >= limit * QUOTA_WARN_PERCENT)
		return QUOTA_WARN;
	return QUOTA_OK;
}

size_t quota_apply(struct plan *p, size_t used, size_t limit)
{
	size_t room, allowed = 0;

	if (!limit)
		limit = QUOTA_GRANTS_PER_INSTANCE;
	room = used >= limit ? 0 : limit - used;
	for (size_t i = 0; i < p->ncreate; i++) {
		if (allowed < room) {
			p->steps[i].status = PLAN_READY;
			allowed++;
		} else {
			p->steps[i].status = PLAN_QUOTA;
		}
	}
	for (size_t i = p->ncreate; i < p->n; i++) {
		struct plan_step *s = &p->steps[i];

		if (s->after != PLAN_NONE)
			s->status = p->steps[s->after].status == PLAN_READY ? PLAN_READY : PLAN_BLOCKED;
	}
	return allowed;
}
