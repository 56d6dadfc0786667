#include "core/backoff.h"

#include <string.h>

#include "core/hash.h"
#include "core/xalloc.h"

uint64_t backoff_delay(const struct backoff_policy *pol, uint32_t failures)
{
	uint64_t d = pol->base_ms, half;

	if (failures == 0)
		return 0;
	for (uint32_t i = 1; i < failures && d < pol->cap_ms; i++)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	if (d > pol->cap_ms)
		d = pol->cap_ms;
	if (!pol->rand)
		return d;
	half = d / 2;
	return half + pol->rand(pol->rand_user) % (d - half + 1);
}

void backoff_fail(const struct backoff_policy *pol, struct backoff_state *st, uint64_t now_ms)
{
	if (st->failures < UINT32_MAX)
		st->failures++;
	st->next_ms = now_ms + backoff_delay(pol, st->failures);
}

void backoff_reset(struct backoff_state *st)
{
	st->failures = 0;
	st->next_ms = 0;
}

int backoff_ready(const struct backoff_state *st, uint64_t now_ms)
{
	return now_ms >= st->next_ms;
}

void backoff_table_init(struct backoff_table *t, const struct backoff_policy *pol, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->pol = *pol;
	t->max = max;
}

void backoff_table_free(struct backoff_table *t)
{
	if (!t)
		return;
	x_free(t->v);
	t->v = NULL;
	t->cap = t->n = 0;
}

static size_t slot_of(const struct backoff_table *t, uint64_t key)
{
	return hash_u64(key) & (t->cap - 1);
}

static struct backoff_entry *find(const struct backoff_table *t, uint64_t key)
{
	if (!t->cap)
		return NULL;
	for (size_t j = slot_of(t, key); t->v[j].used; j = (j + 1) & (t->cap - 1))
		if (t->v[j].key == key)
			return &t->v[j];
	return NULL;
}

static void grow(struct backoff_table *t)
{
	struct backoff_entry *old = t->v;
	size_t ocap = t->cap;

	t->cap = ocap ? ocap * 2 : 64;
	t->v = x_calloc(t->cap, sizeof(*t->v));
	for (size_t i = 0; i < ocap; i++) {
		size_t j;

		if (!old[i].used)
			continue;
		for (j = slot_of(t, old[i].key); t->v[j].used; j = (j + 1) & (t->cap - 1))
			;
		t->v[j] = old[i];
	}
	x_free(old);
}

int backoff_table_fail(struct backoff_table *t, uint64_t key, uint64_t now_ms, uint64_t *ret_next_ms)
{
	struct backoff_entry *e = find(t, key);

	if (!e) {
		size_t j;

		if (t->max && t->n >= t->max)
			return S3G_ETOOBIG;
		if ((t->n + 1) * 4 > t->cap * 3)
			grow(t);
		for (j = slot_of(t, key); t->v[j].used; j = (j + 1) & (t->cap - 1))
			;
		e = &t->v[j];
		memset(e, 0, sizeof(*e));
		e->used = 1;
		e->key = key;
		t->n++;
	}
	backoff_fail(&t->pol, &e->st, now_ms);
	*ret_next_ms = e->st.next_ms;
	return 0;
}

void backoff_table_ok(struct backoff_table *t, uint64_t key)
{
	struct backoff_entry *e = find(t, key);
	size_t i, j, mask = t->cap - 1;

	if (!e)
		return;
	i = (size_t)(e - t->v);
	t->v[i].used = 0;
	t->n--;
	/* backward-shift: move later entries of the cluster into the hole */
	for (j = (i + 1) & mask; t->v[j].used; j = (j + 1) & mask) {
		size_t home = slot_of(t, t->v[j].key);

		/* entry j may move to i if its home is not in (i, j] cyclically */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			t->v[i] = t->v[j];
			t->v[j].used = 0;
			i = j;
		}
	}
}

uint64_t backoff_table_next(const struct backoff_table *t, uint64_t key)
{
	const struct backoff_entry *e = find(t, key);

	return e ? e->st.next_ms : 0;
}

uint64_t backoff_table_earliest(const struct backoff_table *t)
{
	uint64_t m = UINT64_MAX;

	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].used && t->v[i].st.next_ms < m)
			m = t->v[i].st.next_ms;
	return m;
}
