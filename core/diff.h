/* diff.h — desired vs actual grants of one managed location.
 *
 * Actual grants are what the daemon's record and the AWS listing say exists
 * (struct grant with grant_id set). Only actual grants whose location id is
 * the desired set's location are considered; grants in other locations are
 * counted in nforeign and never appear in remove (never touched).
 *
 *  - keep:   an actual grant whose canonical key equals a desired grant
 *            (this is also how a grant created before a crash, or reported
 *            by AlreadyExists, is adopted: canonical equality);
 *  - create: desired grants with no equal actual grant;
 *  - remove: actual grants in the location that no desired grant equals
 *            (DIFF_UNWANTED: unsubscribed, data source gone, changed
 *            permission or principal, added by hand), and extra copies of a
 *            kept grant (DIFF_DUPLICATE — only drift can make them: AWS answers
 *            409 to an identical create). Of identical copies the one with the
 *            smallest grant id is kept, so repeated resyncs agree.
 *
 * Indices refer to desired->v and the actual array; the struct diff owns
 * only its arrays. Output orders: create in desired order, remove and keep in
 * actual order.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/desired.h"
#include "core/err.h"
#include "core/grant.h"

enum diff_why {
	DIFF_UNWANTED,
	DIFF_DUPLICATE,
	DIFF_WHY_MAX_
};

const char *diff_why_name(enum diff_why w);

struct diff_remove {
	uint32_t actual;
	uint8_t why;                 /* enum diff_why */
};

struct diff_keep {
	uint32_t desired;
	uint32_t actual;
};

struct diff {
	uint32_t *create;            /* desired indices */
	size_t ncreate;
	struct diff_remove *remove;
	size_t nremove;
	struct diff_keep *keep;
	size_t nkeep;
	size_t nforeign;             /* actual grants in other locations */
};

int diff_compute(const struct desired_set *desired, const struct grant *actual, size_t nactual,
		 struct diff *ret) S3G_WUR;
void diff_free(struct diff *d);
