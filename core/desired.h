/* desired.h — the desired grants of one integration:
 * subscriptions ⋈ users ⋈ data sources.
 *
 * Input is plain arrays of rows as the store hands them (strings borrowed for
 * the duration of desired_build only). Output grants intern their strings in
 * the caller's struct intern, which must outlive the set.
 *
 * Rules:
 *  - principal NULL or "" → IAM user arn:<partition>:iam::<account>:user/<name>
 *    (partition "aws"; the user name must be a valid IAM name);
 *    IAM user/role ARN → GRANTEE_IAM; Identity Center user id →
 *    GRANTEE_DIRECTORY_USER. Principals are case-sensitive and kept as is.
 *  - access "read" → READ, "write" → READWRITE.
 *  - final path = location scope + data source prefix. The grant's
 *    S3SubPrefix is that path relative to the location (validate_prefix):
 *      default location ("s3://"):  "bucket"        → "bucket/" + '*'
 *                                   "bucket/p/q"    → "bucket/p/q*"
 *      "s3://research-data":        "/demographics" → "demographics*"
 *                                   "" (whole loc.) → "" (no sub-prefix)
 *    i.e. key-prefix semantics ("every object whose key begins with the
 *    prefix", as the seed describes data sources); a whole bucket gets
 *    "bucket/" + '*' so that it cannot spill into other buckets.
 *    The resulting GrantScope must fit in 2000 bytes.
 *  - location id: integration.location_id, or "default" when it is NULL and
 *    the scope is "s3://". A non-default scope without a location id is an
 *    error for the whole build (the location is not registered yet).
 *  - a bad row (principal, prefix, access, dangling user or data source id)
 *    rejects only the subscriptions it feeds, each with a reason; the others
 *    still produce grants.
 *  - subscriptions that yield the same canonical grant share one desired
 *    grant, which lists all their ids (grant.subscription_id is the first).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/grant.h"
#include "core/hash.h"

struct desired_integration {
	int64_t id;
	const char *account;          /* 12 digits */
	const char *region;           /* informational */
	const char *location_scope;   /* "s3://", "s3://bucket[/prefix]" */
	const char *location_id;      /* NULL: "default" for s3://, else not registered */
};

struct desired_data_source {
	int64_t id;
	const char *prefix;           /* relative (leading "/" allowed) or s3:// URL inside the scope */
};

struct desired_user {
	int64_t id;
	const char *name;
	const char *principal;        /* NULL or "": the IAM user named name */
};

struct desired_subscription {
	int64_t id;
	int64_t user_id;
	int64_t data_source_id;
	const char *access;           /* "read" | "write" */
};

struct desired_reject {
	int64_t subscription_id;
	const char *reason;           /* static text "field: reason" */
};

struct desired_grant {
	struct grant g;               /* g.subscription_id = first subscription */
	uint32_t more;                /* first index into set->links, UINT32_MAX = none */
	uint32_t nsubs;               /* subscriptions served */
};

struct desired_link {
	int64_t subscription_id;
	uint32_t next;                /* UINT32_MAX = end */
};

struct desired_set {
	struct desired_grant *v;      /* in first-subscription order */
	size_t n, cap;
	struct desired_link *links;   /* extra subscriptions per grant */
	size_t nlinks, links_cap;
	struct desired_reject *rej;
	size_t nrej, rej_cap;
	struct hidx idx;              /* key → index into v */
	const char *location_id;      /* interned */
};

/* Build the set. S3G_EINVAL (with *ret_why) only when the integration itself
 * is unusable; row problems go to set->rej. On success *ret is initialised
 * (free with desired_free); on failure it is left untouched. */
int desired_build(struct intern *in, const struct desired_integration *integ,
		  const struct desired_data_source *ds, size_t nds, const struct desired_user *users, size_t nusers,
		  const struct desired_subscription *subs, size_t nsubs, struct desired_set *ret,
		  const char **ret_why) S3G_WUR;
void desired_free(struct desired_set *set);

/* The grantee user u resolves to by the rules above (what desired_build
 * gives its subscriptions): *ret_type an enum grant_grantee, *ret_grantee
 * interned in in. S3G_EINVAL (with *ret_why) when the account is not 12
 * digits or the user cannot become a grantee. */
int desired_principal(struct intern *in, const char *account, const struct desired_user *u, uint8_t *ret_type,
		      const char **ret_grantee, const char **ret_why) S3G_WUR;
/* The S3SubPrefix data source d gives under location_scope (the rules
 * above; interned in in). S3G_EINVAL (with *ret_why) when it gives none. */
int desired_sub_prefix(struct intern *in, const char *location_scope, const struct desired_data_source *d,
		       const char **ret_sub_prefix, const char **ret_why) S3G_WUR;
/* If a user with an unset principal could resolve to grantee (an IAM user
 * ARN arn:aws:iam::<account>:user/NAME without a path), NAME (pointing into
 * grantee, *ret_len bytes); else NULL. A candidate only: desired_principal
 * says whether NAME is a valid IAM user name. */
const char *desired_unset_name(const char *account, const char *grantee, size_t *ret_len);

/* The index of the grant equal (canonical key) to g, or S3G_ENOTFOUND. */
int desired_find(const struct desired_set *set, const struct grant *g, size_t *ret_idx) S3G_WUR;
/* Does desired grant i serve subscription sub_id? */
int desired_serves(const struct desired_set *set, size_t i, int64_t sub_id);
/* Copy up to max subscription ids of grant i into out; returns the total. */
size_t desired_subscriptions(const struct desired_set *set, size_t i, int64_t *out, size_t max);
/* Bytes held by the set's own arrays (not the interned strings). */
size_t desired_bytes(const struct desired_set *set);
