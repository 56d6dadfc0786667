#include "core/hash.h"

#include <string.h>

#include "core/xalloc.h"

#define CHUNK_MIN 16384

struct intern_chunk {
	struct intern_chunk *next;
	size_t used, size;
	char data[];
};

uint32_t hash_bytes(const void *p, size_t n, uint32_t seed)
{
	const unsigned char *s = p;
	uint32_t h = 2166136261u ^ seed;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	v *= 0xc4ceb9fe1a85ec53ull;
	v ^= v >> 33;
	return (uint32_t)v;
}

uint32_t hash_mix(uint32_t h, uint32_t v)
{
	return hash_u64(((uint64_t)h << 32) | v);
}

void intern_init(struct intern *in)
{
	memset(in, 0, sizeof(*in));
}

void intern_free(struct intern *in)
{
	struct intern_chunk *c, *next;

	if (!in)
		return;
	for (c = in->chunks; c; c = next) {
		next = c->next;
		x_free(c);
	}
	x_free(in->slots);
	x_free(in->hashes);
	memset(in, 0, sizeof(*in));
}

static void intern_grow(struct intern *in)
{
	size_t ncap = in->cap ? in->cap * 2 : 1024;
	const char **slots = x_calloc(ncap, sizeof(*slots));
	uint32_t *hashes = x_calloc(ncap, sizeof(*hashes));

	for (size_t i = 0; i < in->cap; i++) {
		size_t j;

		if (!in->slots[i])
			continue;
		for (j = in->hashes[i] & (ncap - 1); slots[j]; j = (j + 1) & (ncap - 1))
			;
		slots[j] = in->slots[i];
		hashes[j] = in->hashes[i];
	}
	in->alloc += (ncap - in->cap) * (sizeof(*slots) + sizeof(*hashes));
	x_free(in->slots);
	x_free(in->hashes);
	in->slots = slots;
	in->hashes = hashes;
	in->cap = ncap;
}

static char *intern_copy(struct intern *in, const char *s, size_t n)
{
	struct intern_chunk *c = in->chunks;
	char *p;

	if (!c || c->size - c->used < n + 1) {
		size_t size = n + 1 > CHUNK_MIN ? n + 1 : CHUNK_MIN;

		c = x_malloc(sizeof(*c) + size);
		c->used = 0;
		c->size = size;
		c->next = in->chunks;
		in->chunks = c;
		in->alloc += sizeof(*c) + size;
	}
	p = c->data + c->used;
	memcpy(p, s, n);
	p[n] = '\0';
	c->used += n + 1;
	in->bytes += n + 1;
	return p;
}

const char *intern_get(struct intern *in, const char *s, size_t n)
{
	uint32_t h = hash_bytes(s, n, 0);
	size_t j;

	if ((in->count + 1) * 4 > in->cap * 3)
		intern_grow(in);
	for (j = h & (in->cap - 1); in->slots[j]; j = (j + 1) & (in->cap - 1)) {
		if (in->hashes[j] == h && strncmp(in->slots[j], s, n) == 0 && in->slots[j][n] == '\0')
			return in->slots[j];
	}
	in->slots[j] = intern_copy(in, s, n);
	in->hashes[j] = h;
	in->count++;
	return in->slots[j];
}

const char *intern_str(struct intern *in, const char *s)
{
	return intern_get(in, s, strlen(s));
}

void hidx_init(struct hidx *h)
{
	memset(h, 0, sizeof(*h));
}

void hidx_free(struct hidx *h)
{
	if (!h)
		return;
	x_free(h->slot);
	x_free(h->hash);
	memset(h, 0, sizeof(*h));
}

static void hidx_rehash(struct hidx *h, size_t ncap)
{
	uint32_t *slot = x_calloc(ncap, sizeof(*slot));
	uint32_t *hash = x_calloc(ncap, sizeof(*hash));

	for (size_t i = 0; i < h->cap; i++) {
		size_t j;

		if (!h->slot[i])
			continue;
		for (j = h->hash[i] & (ncap - 1); slot[j]; j = (j + 1) & (ncap - 1))
			;
		slot[j] = h->slot[i];
		hash[j] = h->hash[i];
	}
	x_free(h->slot);
	x_free(h->hash);
	h->slot = slot;
	h->hash = hash;
	h->cap = ncap;
}

void hidx_reserve(struct hidx *h, size_t n)
{
	size_t cap = h->cap ? h->cap : 16;

	while (n * 4 >= cap * 3)
		cap *= 2;
	if (cap != h->cap)
		hidx_rehash(h, cap);
}

void hidx_insert(struct hidx *h, uint32_t hash, uint32_t idx)
{
	size_t j;

	hidx_reserve(h, h->n + 1);
	for (j = hash & (h->cap - 1); h->slot[j]; j = (j + 1) & (h->cap - 1))
		;
	h->slot[j] = idx + 1;
	h->hash[j] = hash;
	h->n++;
}

static int probe(const struct hidx *h, uint32_t hash, hidx_eq_cb eq, const void *key, void *user,
		 size_t j, uint32_t *ret_idx, size_t *cursor)
{
	if (!h->cap)
		return S3G_ENOTFOUND;
	for (j &= h->cap - 1; h->slot[j]; j = (j + 1) & (h->cap - 1)) {
		if (h->hash[j] == hash && eq(h->slot[j] - 1, key, user)) {
			*ret_idx = h->slot[j] - 1;
			if (cursor)
				*cursor = j;
			return 0;
		}
	}
	return S3G_ENOTFOUND;
}

int hidx_find(const struct hidx *h, uint32_t hash, hidx_eq_cb eq, const void *key, void *user,
	      uint32_t *ret_idx, size_t *cursor)
{
	return probe(h, hash, eq, key, user, hash, ret_idx, cursor);
}

int hidx_next(const struct hidx *h, uint32_t hash, hidx_eq_cb eq, const void *key, void *user,
	      uint32_t *ret_idx, size_t *cursor)
{
	return probe(h, hash, eq, key, user, *cursor + 1, ret_idx, cursor);
}

size_t hidx_bytes(const struct hidx *h)
{
	return h->cap * (sizeof(*h->slot) + sizeof(*h->hash));
}
