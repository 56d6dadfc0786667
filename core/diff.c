#include "core/diff.h"

#include <string.h>

#include "core/xalloc.h"

#define NONE UINT32_MAX

static const char *const why_names[DIFF_WHY_MAX_] = {
	[DIFF_UNWANTED] = "unwanted",
	[DIFF_DUPLICATE] = "duplicate",
};

const char *diff_why_name(enum diff_why w)
{
	return (unsigned)w < DIFF_WHY_MAX_ ? why_names[w] : "?";
}

static int id_less(const char *a, const char *b)
{
	if (!a)
		return 0;
	if (!b)
		return 1;
	return strcmp(a, b) < 0;
}

int diff_compute(const struct desired_set *desired, const struct grant *actual, size_t nactual,
		 struct diff *ret)
{
	struct diff d = {0};
	uint32_t *kept;   /* desired index → actual index, NONE */
	uint8_t *dup;     /* actual index → removed as duplicate */
	size_t nd = desired->n;

	if (nactual >= NONE || nd >= NONE)
		return S3G_EINVAL;
	kept = x_malloc((nd + 1) * sizeof(*kept));
	dup = x_calloc(nactual + 1, 1);
	for (size_t i = 0; i < nd; i++)
		kept[i] = NONE;

	for (size_t a = 0; a < nactual; a++) {
		const struct grant *g = &actual[a];
		size_t di;

		if (strcmp(g->location_id, desired->location_id) != 0) {
			d.nforeign++;
			continue;
		}
		if (desired_find(desired, g, &di) < 0)
			continue;
		if (kept[di] == NONE) {
			kept[di] = (uint32_t)a;
		} else if (id_less(g->grant_id, actual[kept[di]].grant_id)) {
			dup[kept[di]] = 1;
			kept[di] = (uint32_t)a;
		} else {
			dup[a] = 1;
		}
	}

	d.create = x_malloc((nd + 1) * sizeof(*d.create));
	d.remove = x_malloc((nactual + 1) * sizeof(*d.remove));
	d.keep = x_malloc((nd + 1) * sizeof(*d.keep));
	for (size_t i = 0; i < nd; i++)
		if (kept[i] == NONE)
			d.create[d.ncreate++] = (uint32_t)i;
	for (size_t a = 0; a < nactual; a++) {
		const struct grant *g = &actual[a];
		size_t di;

		if (strcmp(g->location_id, desired->location_id) != 0)
			continue;
		if (dup[a]) {
			d.remove[d.nremove].actual = (uint32_t)a;
			d.remove[d.nremove++].why = DIFF_DUPLICATE;
		} else if (desired_find(desired, g, &di) < 0) {
			d.remove[d.nremove].actual = (uint32_t)a;
			d.remove[d.nremove++].why = DIFF_UNWANTED;
		} else {
			d.keep[d.nkeep].desired = (uint32_t)di;
			d.keep[d.nkeep++].actual = (uint32_t)a;
		}
	}
	x_free(kept);
	x_free(dup);
	*ret = d;
	return 0;
}

void diff_free(struct diff *d)
{
	if (!d)
		return;
	x_free(d->create);
	x_free(d->remove);
	x_free(d->keep);
	memset(d, 0, sizeof(*d));
}
