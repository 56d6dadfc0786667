/* hash.h — string interning and a compact index hash table.
 *
 * struct intern stores each distinct string once in arena chunks that never
 * move: the pointer intern_get() returns stays valid until intern_free(), and
 * two interned strings are equal exactly when their pointers are equal (same
 * pool). Strings are NUL-terminated; embedded NULs are not supported.
 *
 * struct hidx maps a 32-bit hash to uint32 indices into an array the caller
 * owns (open addressing, linear probing). It stores no keys: lookups call an
 * equality callback with each candidate index. Duplicate keys are allowed
 * (hidx_insert does not check); hidx_find returns the first match and
 * hidx_next the following ones.
 *
 * Pure: no I/O. Memory grows without a limit of its own; the callers bound
 * the number of entries (the grant quota).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* 32-bit FNV-1a-style hash over bytes, with a final avalanche. */
uint32_t hash_bytes(const void *p, size_t n, uint32_t seed);
uint32_t hash_u64(uint64_t v);
/* Combine hashes (order-sensitive). */
uint32_t hash_mix(uint32_t h, uint32_t v);

struct intern_chunk;

struct intern {
	struct intern_chunk *chunks;   /* newest first */
	const char **slots;            /* open addressing; NULL = empty */
	uint32_t *hashes;              /* hash of slots[i] */
	size_t cap;                    /* power of two, 0 before first use */
	size_t count;                  /* distinct strings */
	size_t bytes;                  /* bytes of string data incl. NULs */
	size_t alloc;                  /* bytes allocated (chunks + table) */
};

void intern_init(struct intern *in);
void intern_free(struct intern *in);
/* The pool's copy of s[0..n) (never NULL). */
const char *intern_get(struct intern *in, const char *s, size_t n);
const char *intern_str(struct intern *in, const char *s);

struct hidx {
	uint32_t *slot;    /* index + 1; 0 = empty */
	uint32_t *hash;
	size_t cap;        /* power of two */
	size_t n;
};

typedef int (*hidx_eq_cb)(uint32_t idx, const void *key, void *user);

void hidx_init(struct hidx *h);
void hidx_free(struct hidx *h);
/* Pre-size for n entries (optional). */
void hidx_reserve(struct hidx *h, size_t n);
void hidx_insert(struct hidx *h, uint32_t hash, uint32_t idx);
/* 0 and *ret_idx on a match, S3G_ENOTFOUND otherwise. *cursor (may be NULL)
 * receives the probe position for hidx_next. */
int hidx_find(const struct hidx *h, uint32_t hash, hidx_eq_cb eq, const void *key, void *user,
	      uint32_t *ret_idx, size_t *cursor) S3G_WUR;
int hidx_next(const struct hidx *h, uint32_t hash, hidx_eq_cb eq, const void *key, void *user,
	      uint32_t *ret_idx, size_t *cursor) S3G_WUR;
size_t hidx_bytes(const struct hidx *h);
