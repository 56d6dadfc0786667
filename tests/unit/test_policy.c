/* core/policy: the IAM documents parse as JSON, carry exactly the expected
 * action sets, a Sid on each statement, and ARNs in the right partition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "core/policy.h"

#define ACCOUNT "111122223333"
#define TENANT "a9b28d9e-8e09-4735-bdb1-2f44ddbd4801"
#define LOC_ROLE "arn:aws:iam::111122223333:role/ag-location"

static yajl_val parse(const char *text)
{
	char err[256];
	yajl_val v = yajl_tree_parse(text, err, sizeof(err));

	if (!v)
		fail_msg("not JSON: %s\n%s", err, text);
	return v;
}

static yajl_val get(yajl_val v, const char *key)
{
	const char *path[] = { key, NULL };

	return yajl_tree_get(v, path, yajl_t_any);
}

static const char *str(yajl_val v, const char *key)
{
	yajl_val s = get(v, key);

	return s && YAJL_IS_STRING(s) ? YAJL_GET_STRING(s) : NULL;
}

/* The statement with that Sid; checks Version and that every statement has a Sid. */
static yajl_val stmt(yajl_val doc, const char *sid)
{
	yajl_val st = get(doc, "Statement");
	yajl_val found = NULL;

	assert_string_equal(str(doc, "Version"), "2012-10-17");
	assert_non_null(st);
	assert_true(YAJL_IS_ARRAY(st));
	for (size_t i = 0; i < YAJL_GET_ARRAY(st)->len; i++) {
		yajl_val s = YAJL_GET_ARRAY(st)->values[i];

		assert_non_null(str(s, "Sid"));
		assert_string_equal(str(s, "Effect"), "Allow");
		if (sid && strcmp(str(s, "Sid"), sid) == 0)
			found = s;
	}
	return found;
}

static size_t nstmts(yajl_val doc)
{
	return YAJL_GET_ARRAY(get(doc, "Statement"))->len;
}

/* a is one string or an array of exactly the given strings, in any order. */
static void assert_vals(yajl_val a, const char *key, const char *const *want)
{
	size_t n = 0;

	assert_non_null(a);
	if (YAJL_IS_STRING(a)) {
		assert_non_null(want[0]);
		assert_null(want[1]);
		assert_string_equal(YAJL_GET_STRING(a), want[0]);
		return;
	}
	assert_true(YAJL_IS_ARRAY(a));
	while (want[n])
		n++;
	if (YAJL_GET_ARRAY(a)->len != n)
		fail_msg("%s: %zu values, want %zu", key, YAJL_GET_ARRAY(a)->len, n);
	for (size_t i = 0; i < n; i++) {
		bool hit = false;

		for (size_t j = 0; j < n; j++) {
			yajl_val v = YAJL_GET_ARRAY(a)->values[j];

			assert_true(YAJL_IS_STRING(v));
			hit |= strcmp(v->u.string, want[i]) == 0;
		}
		if (!hit)
			fail_msg("%s: missing %s", key, want[i]);
	}
}

static void assert_set(yajl_val s, const char *key, const char *const *want)
{
	assert_vals(get(s, key), key, want);
}

static yajl_val at(yajl_val v, const char *a, const char *b, const char *c)
{
	const char *path[] = { a, b, c, NULL };

	return yajl_tree_get(v, path, yajl_t_any);
}

static const char *cond(yajl_val s, const char *op, const char *key)
{
	const char *path[] = { "Condition", op, key, NULL };
	yajl_val v = yajl_tree_get(s, path, yajl_t_any);

	return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static struct policy_integration base_integration(void)
{
	return (struct policy_integration){
		.label = "integration 1 (research)",
		.account = ACCOUNT,
		.region = "us-east-2",
		.location_path = "s3://research-data",
		.location_role = LOC_ROLE,
	};
}

static void test_integration_identity(void **state)
{
	struct policy_integration in = base_integration();
	struct policy_set s = { 0 };
	char msg[256];
	yajl_val doc, st;

	assert_int_equal(policy_integration(&in, &s, msg, sizeof(msg)), 0);
	doc = parse(s.doc[POLICY_IDENTITY]);
	assert_int_equal(nstmts(doc), 6);
	st = stmt(doc, "AccessGrantsInstance");
	assert_set(st, "Action", (const char *[]){ "s3:CreateAccessGrantsInstance", "s3:GetAccessGrantsInstance",
						   "s3:GetAccessGrantsInstanceForPrefix",
						   "s3:CreateAccessGrantsLocation", "s3:ListAccessGrantsLocations",
						   "s3:ListAccessGrants", NULL });
	assert_set(st, "Resource", (const char *[]){ "arn:aws:s3:us-east-2:" ACCOUNT ":access-grants/default", NULL });
	st = stmt(doc, "AccessGrantsLocation");
	assert_set(st, "Action", (const char *[]){ "s3:GetAccessGrantsLocation", "s3:DeleteAccessGrantsLocation",
						   "s3:CreateAccessGrant", NULL });
	assert_set(st, "Resource",
		   (const char *[]){ "arn:aws:s3:us-east-2:" ACCOUNT ":access-grants/default/location/*", NULL });
	st = stmt(doc, "AccessGrants");
	assert_set(st, "Action", (const char *[]){ "s3:GetAccessGrant", "s3:DeleteAccessGrant", NULL });
	assert_set(st, "Resource",
		   (const char *[]){ "arn:aws:s3:us-east-2:" ACCOUNT ":access-grants/default/grant/*", NULL });
	st = stmt(doc, "PassLocationRole");
	assert_set(st, "Action", (const char *[]){ "iam:PassRole", NULL });
	assert_set(st, "Resource", (const char *[]){ LOC_ROLE, NULL });
	st = stmt(doc, "CallerIdentity");
	assert_set(st, "Action", (const char *[]){ "sts:GetCallerIdentity", NULL });
	st = stmt(doc, "ValidateLocationPath");
	assert_set(st, "Resource", (const char *[]){ "arn:aws:s3:::research-data", NULL });
	assert_null(get(st, "Condition"));
	assert_null(stmt(doc, "IdentityCenterDescribe"));
	/* no role to assume: no trust or caller policy; no KMS key: no key statements */
	assert_null(s.doc[POLICY_TRUST]);
	assert_null(s.doc[POLICY_CALLER]);
	assert_null(s.doc[POLICY_KMS]);
	assert_null(s.doc[POLICY_BUCKET]);
	assert_non_null(strstr(s.title[POLICY_IDENTITY], "identity policy for integration 1"));
	yajl_tree_free(doc);
	policy_set_free(&s);
}

static void test_integration_directory_users(void **state)
{
	struct policy_integration in = base_integration();
	struct policy_set s = { 0 };
	yajl_val doc, st;

	in.directory_users = true;
	assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_IDENTITY]);
	assert_int_equal(nstmts(doc), 8);
	st = stmt(doc, "IdentityCenterDescribe");
	assert_set(st, "Action", (const char *[]){ "sso:DescribeInstance", "sso:DescribeApplication", NULL });
	st = stmt(doc, "IdentityStoreDescribe");
	assert_set(st, "Action", (const char *[]){ "identitystore:DescribeUser", "identitystore:DescribeGroup", NULL });
	yajl_tree_free(doc);
	doc = parse(s.doc[POLICY_LOCATION_TRUST]);
	st = stmt(doc, "AccessGrantsIdentityCenterContext");
	assert_non_null(st);
	assert_set(st, "Action", (const char *[]){ "sts:SetContext", NULL });
	yajl_tree_free(doc);
	policy_set_free(&s);
}

static void test_integration_assume_role(void **state)
{
	struct policy_integration in = base_integration();
	struct policy_set s = { 0 };
	yajl_val doc, st;

	in.role_to_assume = "arn:aws:iam::444455556666:role/s3grantd-manager";
	in.external_id = TENANT;
	assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_TRUST]);
	assert_int_equal(nstmts(doc), 1);
	st = stmt(doc, "AssumedByS3grantd");
	assert_set(st, "Action", (const char *[]){ "sts:AssumeRole", NULL });
	assert_null(get(st, "Resource"));
	{
		const char *path[] = { "Principal", "AWS", NULL };

		assert_string_equal(YAJL_GET_STRING(yajl_tree_get(st, path, yajl_t_string)),
				    "arn:aws:iam::444455556666:root");
	}
	assert_string_equal(cond(st, "StringEquals", "sts:ExternalId"), TENANT);
	assert_string_equal(cond(st, "StringLike", "sts:RoleSessionName"), POLICY_SESSION_PREFIX "*");
	yajl_tree_free(doc);
	doc = parse(s.doc[POLICY_CALLER]);
	st = stmt(doc, "AssumeS3grantdRole");
	assert_set(st, "Resource", (const char *[]){ "arn:aws:iam::444455556666:role/s3grantd-manager", NULL });
	yajl_tree_free(doc);
	assert_non_null(strstr(s.title[POLICY_IDENTITY], "arn:aws:iam::444455556666:role/s3grantd-manager"));
	policy_set_free(&s);

	/* a fixed session name and a named principal */
	in.session_name = "nightly-sync";
	in.principal = "arn:aws:iam::777788889999:user/s3grantd";
	assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_TRUST]);
	st = stmt(doc, "AssumedByS3grantd");
	assert_string_equal(cond(st, "StringEquals", "sts:RoleSessionName"), "nightly-sync");
	assert_null(cond(st, "StringLike", "sts:RoleSessionName"));
	{
		const char *path[] = { "Principal", "AWS", NULL };

		assert_string_equal(YAJL_GET_STRING(yajl_tree_get(st, path, yajl_t_string)),
				    "arn:aws:iam::777788889999:user/s3grantd");
	}
	yajl_tree_free(doc);
	policy_set_free(&s);
}

static void test_location_role(void **state)
{
	struct policy_integration in = base_integration();
	struct policy_set s = { 0 };
	yajl_val doc, st;

	in.location_path = "s3://research-data/teams/";
	in.kms_key_arn = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
	assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_LOCATION_TRUST]);
	assert_int_equal(nstmts(doc), 1);
	st = stmt(doc, "AccessGrantsAssumeLocationRole");
	{
		const char *path[] = { "Principal", "Service", NULL };

		assert_string_equal(YAJL_GET_STRING(yajl_tree_get(st, path, yajl_t_string)),
				    "access-grants.s3.amazonaws.com");
	}
	assert_set(st, "Action", (const char *[]){ "sts:AssumeRole", "sts:SetSourceIdentity", NULL });
	assert_string_equal(cond(st, "StringEquals", "aws:SourceAccount"), ACCOUNT);
	assert_string_equal(cond(st, "ArnEquals", "aws:SourceArn"),
			    "arn:aws:s3:us-east-2:" ACCOUNT ":access-grants/default");
	yajl_tree_free(doc);

	doc = parse(s.doc[POLICY_LOCATION_ROLE]);
	assert_int_equal(nstmts(doc), 4);
	st = stmt(doc, "ObjectLevelReadPermissions");
	assert_set(st, "Action", (const char *[]){ "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAcl",
						   "s3:GetObjectVersionAcl", "s3:ListMultipartUploadParts", NULL });
	assert_set(st, "Resource", (const char *[]){ "arn:aws:s3:::research-data/teams/*", NULL });
	assert_string_equal(cond(st, "ArnEquals", "s3:AccessGrantsInstanceArn"),
			    "arn:aws:s3:us-east-2:" ACCOUNT ":access-grants/default");
	st = stmt(doc, "ObjectLevelWritePermissions");
	assert_set(st, "Action", (const char *[]){ "s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectVersionAcl",
						   "s3:DeleteObject", "s3:DeleteObjectVersion",
						   "s3:AbortMultipartUpload", NULL });
	st = stmt(doc, "BucketLevelReadPermissions");
	assert_set(st, "Action", (const char *[]){ "s3:ListBucket", NULL });
	assert_set(st, "Resource", (const char *[]){ "arn:aws:s3:::research-data", NULL });
	assert_vals(at(st, "Condition", "StringLike", "s3:prefix"), "s3:prefix",
		    (const char *[]){ "teams", "teams/*", NULL });
	st = stmt(doc, "KmsForSseKmsObjects");
	assert_set(st, "Action", (const char *[]){ "kms:Decrypt", "kms:GenerateDataKey", NULL });
	assert_set(st, "Resource", (const char *[]){ in.kms_key_arn, NULL });
	yajl_tree_free(doc);

	/* key-policy statements: a bare array naming the location role */
	doc = parse(s.doc[POLICY_KMS]);
	assert_true(YAJL_IS_ARRAY(doc));
	st = YAJL_GET_ARRAY(doc)->values[0];
	assert_string_equal(str(st, "Sid"), "AllowS3AccessGrantsLocationRole");
	assert_string_equal(YAJL_GET_STRING(at(st, "Principal", "AWS", NULL)), LOC_ROLE);
	assert_set(st, "Action", (const char *[]){ "kms:Decrypt", "kms:GenerateDataKey", NULL });
	assert_set(st, "Resource", (const char *[]){ "*", NULL });
	yajl_tree_free(doc);
	policy_set_free(&s);
}

static void test_location_scopes(void **state)
{
	static const struct {
		const char *path, *objects, *bucket, *prefix1, *prefix2;
	} cases[] = {
		{ "s3://", "arn:aws:s3:::*", "arn:aws:s3:::*", NULL, NULL },
		{ "s3://research-data/", "arn:aws:s3:::research-data/*", "arn:aws:s3:::research-data", NULL, NULL },
		{ "s3://research-data/a/b", "arn:aws:s3:::research-data/a/b/*", "arn:aws:s3:::research-data", "a/b",
		  "a/b/*" },
		{ "s3://research-data/pre*", "arn:aws:s3:::research-data/pre*", "arn:aws:s3:::research-data", "pre*",
		  NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_integration in = base_integration();
		struct policy_set s = { 0 };
		yajl_val doc, st;

		in.location_path = cases[i].path;
		assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
		doc = parse(s.doc[POLICY_LOCATION_ROLE]);
		assert_int_equal(nstmts(doc), 3);
		assert_set(stmt(doc, "ObjectLevelWritePermissions"), "Resource",
			   (const char *[]){ cases[i].objects, NULL });
		st = stmt(doc, "BucketLevelReadPermissions");
		assert_set(st, "Resource", (const char *[]){ cases[i].bucket, NULL });
		if (cases[i].prefix1)
			assert_vals(at(st, "Condition", "StringLike", "s3:prefix"), "s3:prefix",
				    (const char *[]){ cases[i].prefix1, cases[i].prefix2, NULL });
		else
			assert_null(at(st, "Condition", "StringLike", NULL));
		yajl_tree_free(doc);
		policy_set_free(&s);
	}
}

static void test_partitions(void **state)
{
	struct policy_integration in = base_integration();
	struct policy_set s = { 0 };
	yajl_val doc;

	assert_string_equal(policy_partition("eu-west-1"), "aws");
	assert_string_equal(policy_partition("cn-north-1"), "aws-cn");
	assert_string_equal(policy_partition("cn-northwest-1"), "aws-cn");
	assert_string_equal(policy_partition("us-gov-west-1"), "aws-us-gov");
	assert_string_equal(policy_partition("us-east-1"), "aws");

	in.region = "cn-north-1";
	in.location_role = "arn:aws-cn:iam::111122223333:role/ag-location";
	in.directory_users = true;
	assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_IDENTITY]);
	assert_set(stmt(doc, "AccessGrantsInstance"), "Resource",
		   (const char *[]){ "arn:aws-cn:s3:cn-north-1:" ACCOUNT ":access-grants/default", NULL });
	assert_set(stmt(doc, "ValidateLocationPath"), "Resource", (const char *[]){ "arn:aws-cn:s3:::research-data", NULL });
	assert_set(stmt(doc, "IdentityCenterDescribe"), "Resource",
		   (const char *[]){ "arn:aws-cn:sso:::instance/*", "arn:aws-cn:sso::" ACCOUNT ":application/*", NULL });
	yajl_tree_free(doc);
	doc = parse(s.doc[POLICY_LOCATION_TRUST]);
	assert_string_equal(YAJL_GET_STRING(at(stmt(doc, "AccessGrantsIdentityCenterContext"), "Condition",
					      "ForAllValues:ArnEquals", "sts:RequestContextProviders")),
			    "arn:aws-cn:iam::aws:contextProvider/IdentityCenter");
	yajl_tree_free(doc);
	/* no "arn:aws:" anywhere in a China document */
	for (int i = 0; i < POLICY_DOC_MAX; i++)
		if (s.doc[i])
			assert_null(strstr(s.doc[i], "arn:aws:"));
	policy_set_free(&s);

	in.region = "us-gov-west-1";
	in.location_role = "arn:aws-us-gov:iam::111122223333:role/ag-location";
	assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_LOCATION_ROLE]);
	assert_set(stmt(doc, "ObjectLevelReadPermissions"), "Resource",
		   (const char *[]){ "arn:aws-us-gov:s3:::research-data/*", NULL });
	assert_string_equal(YAJL_GET_STRING(at(stmt(doc, "ObjectLevelReadPermissions"), "Condition", "ArnEquals",
					      "s3:AccessGrantsInstanceArn")),
			    "arn:aws-us-gov:s3:us-gov-west-1:" ACCOUNT ":access-grants/default");
	yajl_tree_free(doc);
	policy_set_free(&s);
}

static void test_integration_rejects(void **state)
{
	static const struct {
		const char *field, *value, *want;
	} cases[] = {
		{ "account", "11112222333", "awsAccountId:" },
		{ "region", "US-EAST-1", "awsRegion:" },
		{ "region", "", "awsRegion:" },
		{ "path", "research-data", "awsLocationPath:" },
		{ "path", "s3://Research", "awsLocationPath:" },
		{ "path", "s3://research-data/a*b", "awsLocationPath:" },
		{ "path", "s3://research-data/a?", "awsLocationPath:" },
		{ "role", "arn:aws:iam::111122223333:user/x", "awsLocationRole:" },
		{ "role", "arn:aws:iam::111122223333:role/\"x", "awsLocationRole:" },
		{ "assume", "role/x", "awsRoleToAssume:" },
		{ "external", "x", "externalId:" },
		{ "session", "has space", "roleSessionName:" },
		{ "principal", "alice", "principal:" },
		{ "kms", "alias/x", "kms-key:" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy_integration in = base_integration();
		struct policy_set s = { 0 };
		char msg[256] = "";
		const char *f = cases[i].field;

		in.role_to_assume = "arn:aws:iam::111122223333:role/s3grantd";
		in.external_id = TENANT;
		if (!strcmp(f, "account"))
			in.account = cases[i].value;
		else if (!strcmp(f, "region"))
			in.region = cases[i].value;
		else if (!strcmp(f, "path"))
			in.location_path = cases[i].value;
		else if (!strcmp(f, "role"))
			in.location_role = cases[i].value;
		else if (!strcmp(f, "assume"))
			in.role_to_assume = cases[i].value;
		else if (!strcmp(f, "external"))
			in.external_id = cases[i].value;
		else if (!strcmp(f, "session"))
			in.session_name = cases[i].value;
		else if (!strcmp(f, "principal"))
			in.principal = cases[i].value;
		else
			in.kms_key_arn = cases[i].value;
		assert_int_equal(policy_integration(&in, &s, msg, sizeof(msg)), S3G_EINVAL);
		if (strncmp(msg, cases[i].want, strlen(cases[i].want)) != 0)
			fail_msg("case %zu: '%s' does not start with %s", i, msg, cases[i].want);
		for (int d = 0; d < POLICY_DOC_MAX; d++)
			assert_null(s.doc[d]);
	}
}

static void test_export_access_key(void **state)
{
	struct policy_export in = { .bucket = "access-summary-bucket", .region = "us-east-1", .path = "immuta/exports" };
	struct policy_set s = { 0 };
	yajl_val doc, st;

	assert_int_equal(policy_export(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_IDENTITY]);
	assert_int_equal(nstmts(doc), 2);
	st = stmt(doc, "PutAccessSummaryObjects");
	assert_set(st, "Action", (const char *[]){ "s3:PutObject", NULL });
	assert_set(st, "Resource", (const char *[]){ "arn:aws:s3:::access-summary-bucket/immuta/exports/*", NULL });
	st = stmt(doc, "ListAccessSummaryPrefix");
	assert_set(st, "Action", (const char *[]){ "s3:ListBucket", NULL });
	assert_set(st, "Resource", (const char *[]){ "arn:aws:s3:::access-summary-bucket", NULL });
	assert_vals(at(st, "Condition", "StringLike", "s3:prefix"), "s3:prefix",
		    (const char *[]){ "immuta/exports", "immuta/exports/*", NULL });
	yajl_tree_free(doc);
	/* no role: no trust policy; no principal known: no bucket or key policy */
	for (int d = 0; d < POLICY_DOC_MAX; d++)
		if (d != POLICY_IDENTITY)
			assert_null(s.doc[d]);
	policy_set_free(&s);

	/* at the bucket root, with the IAM user named: a bucket policy for that user */
	in.path = "";
	in.principal = "arn:aws:iam::123456789012:user/access-summary";
	assert_int_equal(policy_export(&in, &s, NULL, 0), 0);
	doc = parse(s.doc[POLICY_IDENTITY]);
	assert_set(stmt(doc, "PutAccessSummaryObjects"), "Resource",
		   (const char *[]){ "arn:aws:s3:::access-summary-bucket/*", NULL });
	assert_null(get(stmt(doc, "ListAccessSummaryPrefix"), "Condition"));
	yajl_tree_free(doc);
	doc = parse(s.doc[POLICY_BUCKET]);
	st = stmt(doc, "S3grantdPutAccessSummary");
	assert_string_equal(YAJL_GET_STRING(at(st, "Principal", "AWS", NULL)), in.principal);
	assert_set(st, "Action", (const char *[]){ "s3:PutObject", NULL });
	assert_non_null(stmt(doc, "S3grantdListAccessSummary"));
	yajl_tree_free(doc);
	assert_null(s.doc[POLICY_TRUST]);
	policy_set_free(&s);
}

static void test_export_role_kms(void **state)
{
	static const struct {
		const char *key, *resource, *alias;
	} keys[] = {
		{ "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		  "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", NULL },
		{ "1234abcd-12ab-34cd-56ef-1234567890ab",
		  "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", NULL },
		{ "alias/exports", "arn:aws:kms:eu-west-1:123456789012:key/*", "alias/exports" },
		{ "arn:aws:kms:eu-west-1:210987654321:alias/exports", "arn:aws:kms:eu-west-1:210987654321:key/*",
		  "alias/exports" },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct policy_export in = {
			.bucket = "access-summary-bucket", .region = "eu-west-1", .path = "exports",
			.role_arn = "arn:aws:iam::123456789012:role/access-summary-export",
			.external_id = TENANT, .kms_key = keys[i].key,
		};
		struct policy_set s = { 0 };
		yajl_val doc, st;

		assert_int_equal(policy_export(&in, &s, NULL, 0), 0);
		doc = parse(s.doc[POLICY_IDENTITY]);
		assert_int_equal(nstmts(doc), 3);
		st = stmt(doc, "EncryptAccessSummaryWithKms");
		assert_set(st, "Action", (const char *[]){ "kms:GenerateDataKey", "kms:Decrypt", NULL });
		assert_set(st, "Resource", (const char *[]){ keys[i].resource, NULL });
		if (keys[i].alias)
			assert_string_equal(YAJL_GET_STRING(at(st, "Condition", "ForAnyValue:StringEquals",
							      "kms:ResourceAliases")), keys[i].alias);
		else
			assert_null(get(st, "Condition"));
		yajl_tree_free(doc);

		doc = parse(s.doc[POLICY_TRUST]);
		st = stmt(doc, "AssumedByS3grantd");
		assert_string_equal(YAJL_GET_STRING(at(st, "Principal", "AWS", NULL)), "arn:aws:iam::123456789012:root");
		assert_string_equal(cond(st, "StringEquals", "sts:ExternalId"), TENANT);
		assert_string_equal(cond(st, "StringLike", "sts:RoleSessionName"), "s3grantd-*");
		yajl_tree_free(doc);

		doc = parse(s.doc[POLICY_KMS]);
		st = YAJL_GET_ARRAY(doc)->values[0];
		assert_string_equal(YAJL_GET_STRING(at(st, "Principal", "AWS", NULL)), in.role_arn);
		assert_set(st, "Action", (const char *[]){ "kms:GenerateDataKey", "kms:Decrypt", NULL });
		yajl_tree_free(doc);

		doc = parse(s.doc[POLICY_BUCKET]);
		assert_string_equal(YAJL_GET_STRING(at(stmt(doc, "S3grantdPutAccessSummary"), "Principal", "AWS", NULL)),
				    in.role_arn);
		yajl_tree_free(doc);
		assert_non_null(s.doc[POLICY_CALLER]);
		assert_null(s.doc[POLICY_LOCATION_ROLE]);
		policy_set_free(&s);
	}
}

static void test_export_rejects(void **state)
{
	struct policy_export in = { .bucket = "Bad_Bucket", .region = "us-east-1" };
	struct policy_set s = { 0 };
	char msg[256];

	assert_int_equal(policy_export(&in, &s, msg, sizeof(msg)), S3G_EINVAL);
	assert_non_null(strstr(msg, "bucket:"));
	in.bucket = "good-bucket";
	in.path = "/lead";
	assert_int_equal(policy_export(&in, &s, msg, sizeof(msg)), S3G_EINVAL);
	assert_non_null(strstr(msg, "path:"));
	in.path = "x*";
	assert_int_equal(policy_export(&in, &s, msg, sizeof(msg)), S3G_EINVAL);
	in.path = NULL;
	in.role_arn = "arn:aws:iam::123456789012:role/r";
	assert_int_equal(policy_export(&in, &s, msg, sizeof(msg)), S3G_EINVAL);   /* no ExternalId */
	assert_non_null(strstr(msg, "externalId:"));
	in.external_id = TENANT;
	in.kms_key = "key with space";
	assert_int_equal(policy_export(&in, &s, msg, sizeof(msg)), S3G_EINVAL);
	assert_non_null(strstr(msg, "kmsKeyId:"));
	in.kms_key = NULL;
	assert_int_equal(policy_export(&in, &s, msg, sizeof(msg)), 0);
	policy_set_free(&s);
}

static void test_set_json(void **state)
{
	struct policy_integration in = base_integration();
	struct policy_set s = { 0 };
	struct buf b;
	yajl_val root;

	in.role_to_assume = "arn:aws:iam::111122223333:role/s3grantd";
	in.external_id = TENANT;
	assert_int_equal(policy_integration(&in, &s, NULL, 0), 0);
	buf_init(&b, 1 << 20);
	assert_int_equal(policy_set_json(&s, &b), 0);
	root = parse(buf_str(&b));
	for (int d = 0; d < POLICY_DOC_MAX; d++) {
		yajl_val v = get(root, policy_doc_name(d));

		assert_non_null(v);
		if (s.doc[d]) {
			yajl_val one = parse(s.doc[d]);

			assert_true(YAJL_IS_OBJECT(v) || YAJL_IS_ARRAY(v));
			assert_int_equal(YAJL_IS_OBJECT(v), YAJL_IS_OBJECT(one));
			yajl_tree_free(one);
		} else {
			assert_true(YAJL_IS_NULL(v));
		}
	}
	assert_string_equal(str(get(root, "trustPolicy"), "Version"), "2012-10-17");
	yajl_tree_free(root);
	buf_free(&b);
	/* a bounded output buffer: too small is an error, not a truncation */
	buf_init(&b, 64);
	assert_int_equal(policy_set_json(&s, &b), S3G_ETOOBIG);
	buf_free(&b);
	policy_set_free(&s);
	policy_set_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integration_identity),
		cmocka_unit_test(test_integration_directory_users),
		cmocka_unit_test(test_integration_assume_role),
		cmocka_unit_test(test_location_role),
		cmocka_unit_test(test_location_scopes),
		cmocka_unit_test(test_partitions),
		cmocka_unit_test(test_integration_rejects),
		cmocka_unit_test(test_export_access_key),
		cmocka_unit_test(test_export_role_kms),
		cmocka_unit_test(test_export_rejects),
		cmocka_unit_test(test_set_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
