/* quota.h — the instance grant quota (100,000 grants per Region per account).
 *
 * `used` is the number of grants that exist in the Access Grants instance
 * now (every location, not only the managed one). Levels: OK below 90 %,
 * WARN from 90 %, FULL at or above the limit. Creates run before deletes
 * (plan.h), so the peak is used + creates: quota_apply lets the first
 * (limit - used) creates of the plan through, marks the rest PLAN_QUOTA
 * ("quota exceeded" on their subscriptions) and marks deletes that wait on a
 * refused create PLAN_BLOCKED (the old grant stays; make-before-break).
 * Deletes that free room are unaffected; the next plan after they complete
 * gets the room.
 */
#pragma once
#include <stddef.h>

#include "core/plan.h"

#define QUOTA_GRANTS_PER_INSTANCE 100000
#define QUOTA_WARN_PERCENT 90

enum quota_level {
	QUOTA_OK,
	QUOTA_WARN,
	QUOTA_FULL,
	QUOTA_LEVEL_MAX_
};

const char *quota_level_name(enum quota_level l);
/* limit 0 = QUOTA_GRANTS_PER_INSTANCE */
enum quota_level quota_level(size_t used, size_t limit);
/* Returns the number of creates allowed. */
size_t quota_apply(struct plan *p, size_t used, size_t limit);
