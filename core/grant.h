/* grant.h — the canonical S3 Access Grant, one form for desired and actual.
 *
 * A grant's identity (its canonical key) is
 *     (location id, grantee type, grantee identifier, permission, sub-prefix)
 * compared byte for byte: principals and prefixes are case-sensitive.
 * The AWS identity (grant id, ARN, GrantScope) and the subscription it serves
 * are payload, not part of the key.
 *
 * The sub-prefix rule (one rule, used for desired and actual):
 *  - an empty S3SubPrefix (AWS returns <S3SubPrefix></S3SubPrefix> for grants
 *    made without one) and an absent one are the same: "" = none;
 *  - a run of trailing '*' is one '*' ("a/b**" ≡ "a/b*"); otherwise the string
 *    is kept as is, so "a/b*" (every key starting with a/b), "a/b/" + '*' and
 *    "a/b" (one object) are three different grants;
 *  - the daemon itself only ever asks for "<path>*" (key-prefix grants) or,
 *    for a whole bucket under the default location, "<bucket>/" + '*'; for a data
 *    source that is a whole non-default location it sends no sub-prefix
 *    (see desired.h). A grant found in AWS in any other form is therefore not
 *    one the daemon wants and is repaired (deleted, and the wanted form
 *    created).
 *
 * Strings in struct grant are borrowed: normally interned in a struct intern
 * (core/hash.h) owned by whoever owns the grants, so a grant is 64 bytes plus
 * its share of the interned strings.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hash.h"

enum grant_grantee {
	GRANTEE_IAM,
	GRANTEE_DIRECTORY_USER,
	GRANTEE_DIRECTORY_GROUP,
	GRANTEE_MAX_
};

enum grant_perm {
	GRANT_READ,
	GRANT_WRITE,
	GRANT_READWRITE,
	GRANT_PERM_MAX_
};

/* AWS spellings: "IAM", "DIRECTORY_USER", ...; "READ", "WRITE", "READWRITE". */
const char *grant_grantee_name(enum grant_grantee t);
const char *grant_perm_name(enum grant_perm p);
/* Exact (case-sensitive) AWS spelling → enum; S3G_EINVAL otherwise. */
int grant_grantee_parse(const char *s, enum grant_grantee *ret) S3G_WUR;
int grant_perm_parse(const char *s, enum grant_perm *ret) S3G_WUR;

struct grant {
	const char *grantee_id;       /* IAM ARN or Identity Center UUID */
	const char *location_id;      /* "default" or the generated id */
	const char *sub_prefix;       /* canonical; "" = none */
	const char *grant_id;         /* AWS AccessGrantId; NULL for desired grants */
	const char *grant_arn;        /* NULL unless known */
	const char *grant_scope;      /* as AWS returned it; NULL unless known */
	int64_t subscription_id;      /* desired: the first subscription served; actual: the daemon's record, 0 = unknown */
	uint32_t hash;                /* grant_hash() of the key, set by grant_set_hash() */
	uint8_t grantee_type;         /* enum grant_grantee */
	uint8_t permission;           /* enum grant_perm */
};

/* Canonical length of a sub-prefix (see the rule above): how many bytes of
 * s[0..n) belong to the canonical form (trailing '*' run cut to one). */
size_t grant_canon_sub_prefix_len(const char *s, size_t n);

/* Fill g from AWS fields, canonicalising and interning every string into in.
 * sub_prefix and the AWS identity fields may be NULL. S3G_EINVAL for an
 * unknown grantee type or permission. */
int grant_make(struct intern *in, const char *grantee_type, const char *grantee_id, const char *permission,
	       const char *location_id, const char *sub_prefix, const char *grant_id, const char *grant_arn,
	       const char *grant_scope, struct grant *ret) S3G_WUR;

uint32_t grant_hash(const struct grant *g);
void grant_set_hash(struct grant *g);
/* Key equality (strings compared by content; pointer-equal fast path). */
int grant_key_eq(const struct grant *a, const struct grant *b);
/* Total order on the key (for sorting and stable output). */
int grant_key_cmp(const struct grant *a, const struct grant *b);
/* Do the grant an intent recorded and an actual grant match (adopt it)?
 * Simple canonical key equality; the intent's AWS fields are ignored. */
int grant_matches_intent(const struct grant *intent, const struct grant *actual);

/* The GrantScope the daemon expects for a grant in a location with the given
 * scope ("s3://" + sub-prefix for the default location; scope + "/" +
 * sub-prefix, or the scope itself without a sub-prefix, otherwise). Advisory
 * only (WIRE.md: AWS's returned GrantScope is authoritative). Allocated;
 * free with x_free. */
char *grant_expected_scope(const char *location_scope, const char *sub_prefix);
