/* policy.h — the IAM documents an admin must create for s3grantd (pure).
 *
 * policy_integration() and policy_export() turn an integration (or the
 * export config) into the JSON documents AWS needs: the identity policy for
 * the credentials s3grantd acts with, the trust policy of the role it
 * assumes (ExternalId = the tenant id, RoleSessionName pattern
 * POLICY_SESSION_PREFIX "*"), the Access Grants location role's trust and
 * permissions policies, a bucket policy, and KMS key-policy statements.
 *
 * Every document is pretty JSON text (two-space indent), Version
 * 2012-10-17, a Sid on every statement, ARNs in the partition of the region
 * (aws, aws-cn for cn-*, aws-us-gov for us-gov-*). Input strings are
 * checked (S3G_EINVAL and a "field: reason" message in msg) and
 * JSON-escaped; no secret is ever an input. Outputs are owned by the
 * struct policy_set (policy_set_free accepts a zeroed or half-filled set)
 * and written only on success. No I/O, no logging.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* s3grantd names every AssumeRole session POLICY_SESSION_PREFIX + something
 * (unless the integration sets role_session_name); trust policies allow
 * exactly that pattern. */
#define POLICY_SESSION_PREFIX "s3grantd-"
#define POLICY_DOC_MAX_BYTES (64 * 1024)   /* IAM's own limits are 6-20 KB */

enum policy_doc {
	POLICY_IDENTITY,          /* identityPolicy: on the credentials s3grantd acts with */
	POLICY_CALLER,            /* callerPolicy: lets s3grantd's own credentials assume that role */
	POLICY_TRUST,             /* trustPolicy: trust policy of the role s3grantd assumes */
	POLICY_LOCATION_TRUST,    /* locationRoleTrustPolicy: the location role trusts Access Grants */
	POLICY_LOCATION_ROLE,     /* locationRolePolicy: what the location role may do on the scope */
	POLICY_BUCKET,            /* bucketPolicy: optional bucket policy variant (export) */
	POLICY_KMS,               /* kmsStatements: a JSON array of statements for the key policy */
	POLICY_DOC_MAX
};
/* The JSON key ("identityPolicy", ...). */
const char *policy_doc_name(enum policy_doc d);

struct policy_set {
	char *doc[POLICY_DOC_MAX];     /* JSON text; NULL = not needed for this configuration */
	char *title[POLICY_DOC_MAX];   /* one line: what it is and where it goes */
};
void policy_set_free(struct policy_set *s);

struct policy_integration {
	const char *label;             /* "integration 7 (research)", for titles */
	const char *account;           /* awsAccountId: 12 digits */
	const char *region;            /* awsRegion */
	const char *location_path;     /* "s3://" | "s3://bucket[/prefix]" */
	const char *location_role;     /* awsLocationRole: IAM role ARN */
	const char *role_to_assume;    /* awsRoleToAssume; NULL: s3grantd's credentials act directly */
	const char *external_id;       /* with role_to_assume: the ExternalId (tenant id); required */
	const char *session_name;      /* NULL: any POLICY_SESSION_PREFIX "*" session */
	const char *principal;         /* who assumes role_to_assume; NULL: the role's account root */
	const char *kms_key_arn;       /* NULL: no SSE-KMS on the location's buckets */
	bool directory_users;          /* Identity Center users are (or will be) grantees */
};

struct policy_export {
	const char *bucket;
	const char *region;
	const char *path;              /* NULL or "": the bucket root; no leading/trailing '/' */
	const char *role_arn;          /* NULL: access key (identity policy for that IAM user) */
	const char *external_id;       /* with role_arn: required */
	const char *session_name;      /* NULL: any POLICY_SESSION_PREFIX "*" session */
	const char *principal;         /* trust: who assumes role_arn (NULL: its account root);
					* access key: the IAM user, for the bucket policy (NULL: none) */
	const char *kms_key;           /* key id, key ARN, alias name or alias ARN; NULL: none */
};

/* "aws", "aws-cn" or "aws-us-gov" for a region name. */
const char *policy_partition(const char *region);

int policy_integration(const struct policy_integration *in, struct policy_set *ret_set,
		       char *msg, size_t msg_size) S3G_WUR;
int policy_export(const struct policy_export *in, struct policy_set *ret_set,
		  char *msg, size_t msg_size) S3G_WUR;

/* One JSON object {"identityPolicy": {...}|null, ...} with every key of
 * enum policy_doc, appended to out. */
int policy_set_json(const struct policy_set *s, struct buf *out) S3G_WUR;
