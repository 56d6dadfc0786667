/* AWS result shapes and request bodies: WIRE.md documents, error wrappers,
 * hostile input, golden request bodies, and the cost of a 1,000-grant page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "aws/shapes.h"
#include "core/buf.h"
#include "core/xalloc.h"

#define NS_DECL " xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\""

static const char grant_body[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<CreateAccessGrantResult" NS_DECL ">\n"
	"  <CreatedAt>2023-09-21T23:47:24.870Z</CreatedAt>\n"
	"  <AccessGrantId>a1b2c3d4-5678-90ab-cdef-EXAMPLE11111</AccessGrantId>\n"
	"  <AccessGrantArn>arn:aws:s3:us-east-2:111122223333:access-grants/default/grant/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111</AccessGrantArn>\n"
	"  <Grantee><GranteeType>IAM</GranteeType><GranteeIdentifier>arn:aws:iam::111122223333:role/r</GranteeIdentifier></Grantee>\n"
	"  <AccessGrantsLocationId>default</AccessGrantsLocationId>\n"
	"  <AccessGrantsLocationConfiguration><S3SubPrefix>bucket/team-a/*</S3SubPrefix></AccessGrantsLocationConfiguration>\n"
	"  <Permission>READ</Permission>\n"
	"  <ApplicationArn>arn:aws:sso::111122223333:application/ssoins-1/apl-1</ApplicationArn>\n"
	"  <GrantScope>s3://bucket/team-a/*</GrantScope>\n"
	"</CreateAccessGrantResult>\n";

static void test_grant(void **state)
{
	struct shapes_grant g = {0};
	struct xml_error e = {0};

	assert_int_equal(shapes_parse_grant(grant_body, strlen(grant_body), &g, &e), 0);
	assert_string_equal(g.id, "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111");
	assert_string_equal(g.arn, "arn:aws:s3:us-east-2:111122223333:access-grants/default/grant/"
				   "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111");
	assert_int_equal(g.created_at_ms, 1695340044870);
	assert_string_equal(g.grantee_type, "IAM");
	assert_string_equal(g.grantee_id, "arn:aws:iam::111122223333:role/r");
	assert_string_equal(g.permission, "READ");
	assert_string_equal(g.location_id, "default");
	assert_string_equal(g.sub_prefix, "bucket/team-a/*");
	assert_string_equal(g.grant_scope, "s3://bucket/team-a/*");
	assert_string_equal(g.application_arn, "arn:aws:sso::111122223333:application/ssoins-1/apl-1");
	shapes_grant_clear(&g);
	assert_null(g.id);
	shapes_grant_clear(&g);
	shapes_grant_clear(NULL);

	/* Get result, no namespace, empty sub-prefix, no ApplicationArn, offset timestamp */
	static const char get[] =
		"<GetAccessGrantResult><CreatedAt>2023-09-22T01:47:24+02:00</CreatedAt>"
		"<AccessGrantId>g2</AccessGrantId>"
		"<Grantee><GranteeIdentifier>0123-uuid</GranteeIdentifier><GranteeType>DIRECTORY_USER</GranteeType></Grantee>"
		"<Permission>READWRITE</Permission><AccessGrantsLocationId>loc-1</AccessGrantsLocationId>"
		"<AccessGrantsLocationConfiguration><S3SubPrefix></S3SubPrefix></AccessGrantsLocationConfiguration>"
		"<GrantScope>s3://bucket/</GrantScope><Unknown><X>y</X></Unknown></GetAccessGrantResult>";
	assert_int_equal(shapes_parse_grant(get, strlen(get), &g, &e), 0);
	assert_int_equal(g.created_at_ms, 1695340044000);
	assert_string_equal(g.grantee_type, "DIRECTORY_USER");
	assert_string_equal(g.grantee_id, "0123-uuid");
	assert_null(g.sub_prefix);
	assert_null(g.application_arn);
	assert_null(g.arn);
	shapes_grant_clear(&g);

	/* prefixed namespace, self-closed S3SubPrefix, no configuration at all */
	static const char pfx[] =
		"<ac:GetAccessGrantResult xmlns:ac=\"http://awss3control.amazonaws.com/doc/2018-08-20/\">"
		"<ac:AccessGrantId>g3</ac:AccessGrantId><ac:AccessGrantsLocationConfiguration><ac:S3SubPrefix/>"
		"</ac:AccessGrantsLocationConfiguration></ac:GetAccessGrantResult>";
	assert_int_equal(shapes_parse_grant(pfx, strlen(pfx), &g, &e), 0);
	assert_string_equal(g.id, "g3");
	assert_null(g.sub_prefix);
	assert_int_equal(g.created_at_ms, 0);
	assert_null(g.grantee_type);
	shapes_grant_clear(&g);
}

static void test_grant_bad(void **state)
{
	static const struct {
		const char *doc;
		int r;
		const char *why;
	} cases[] = {
		{"<GetAccessGrantResult><Permission>READ</Permission></GetAccessGrantResult>", S3G_EPARSE,
		 "AccessGrantId missing"},
		{"<GetAccessGrantResult><AccessGrantId></AccessGrantId></GetAccessGrantResult>", S3G_EPARSE,
		 "AccessGrantId missing"},
		{"<GetAccessGrantResult><AccessGrantId>g</AccessGrantId><CreatedAt>yesterday</CreatedAt>"
		 "</GetAccessGrantResult>", S3G_EPARSE, "CreatedAt"},
		{"<GetAccessGrantResult><AccessGrantId>g</AccessGrantId>", S3G_EPARSE, "line 1"},
		{"", S3G_EPARSE, "no element"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shapes_grant g = {0};
		struct xml_error e = {0};
		int r = shapes_parse_grant(cases[i].doc, strlen(cases[i].doc), &g, &e);

		if (r != cases[i].r || !strstr(e.reason, cases[i].why))
			fail_msg("case %zu: %s: %s", i, err_name(r), e.reason);
		assert_null(g.id);   /* untouched on failure */
	}
}

static void test_grant_list(void **state)
{
	static const char doc[] =
		"<ListAccessGrantsResult" NS_DECL ">\n"
		"  <NextToken>eyJ0b2tlbiI6IjEyMyJ9+/=</NextToken>\n"
		"  <AccessGrantsList>\n"
		"    <AccessGrant>\n"
		"      <CreatedAt>2023-09-21T23:47:24.870Z</CreatedAt>\n"
		"      <AccessGrantId>a1</AccessGrantId>\n"
		"      <AccessGrantArn>arn:aws:s3:us-east-2:111122223333:access-grants/default/grant/a1</AccessGrantArn>\n"
		"      <Grantee><GranteeType>IAM</GranteeType><GranteeIdentifier>arn:aws:iam::111122223333:role/r</GranteeIdentifier></Grantee>\n"
		"      <Permission>READ</Permission>\n"
		"      <AccessGrantsLocationId>default</AccessGrantsLocationId>\n"
		"      <AccessGrantsLocationConfiguration><S3SubPrefix>bucket/team-a/*</S3SubPrefix></AccessGrantsLocationConfiguration>\n"
		"      <GrantScope>s3://bucket/team-a/*</GrantScope>\n"
		"    </AccessGrant>\n"
		"    <AccessGrant><AccessGrantId>a2</AccessGrantId><Permission>WRITE</Permission>"
		"<AccessGrantsLocationConfiguration><S3SubPrefix></S3SubPrefix></AccessGrantsLocationConfiguration></AccessGrant>\n"
		"  </AccessGrantsList>\n"
		"</ListAccessGrantsResult>\n";
	static const char last[] =
		"<ListAccessGrantsResult><NextToken></NextToken><AccessGrantsList/></ListAccessGrantsResult>";
	static const char bare[] = "<ListAccessGrantsResult/>";
	static const char bad[] =
		"<ListAccessGrantsResult><AccessGrantsList><AccessGrant><AccessGrantId>x</AccessGrantId></AccessGrant>"
		"<AccessGrant><Permission>READ</Permission></AccessGrant></AccessGrantsList></ListAccessGrantsResult>";
	struct shapes_grant_list l = {0};
	struct xml_error e = {0};

	assert_int_equal(shapes_parse_grant_list(doc, strlen(doc), &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.next_token, "eyJ0b2tlbiI6IjEyMyJ9+/=");
	assert_string_equal(l.items[0].id, "a1");
	assert_string_equal(l.items[0].sub_prefix, "bucket/team-a/*");
	assert_string_equal(l.items[0].grantee_type, "IAM");
	assert_int_equal(l.items[0].created_at_ms, 1695340044870);
	assert_string_equal(l.items[1].id, "a2");
	assert_string_equal(l.items[1].permission, "WRITE");
	assert_null(l.items[1].sub_prefix);
	shapes_grant_list_clear(&l);
	shapes_grant_list_clear(NULL);

	assert_int_equal(shapes_parse_grant_list(last, strlen(last), &l, &e), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
	assert_null(l.next_token);
	shapes_grant_list_clear(&l);
	assert_int_equal(shapes_parse_grant_list(bare, strlen(bare), &l, &e), 0);
	assert_int_equal(l.n, 0);
	shapes_grant_list_clear(&l);
	assert_int_equal(shapes_parse_grant_list(bad, strlen(bad), &l, &e), S3G_EPARSE);
	assert_string_equal(e.reason, "AccessGrant #2: AccessGrantId missing");
	assert_null(l.items);
}

static void test_location(void **state)
{
	static const char one[] =
		"<CreateAccessGrantsLocationResult" NS_DECL "><CreatedAt>2023-09-21T23:47:24Z</CreatedAt>"
		"<AccessGrantsLocationId>default</AccessGrantsLocationId>"
		"<AccessGrantsLocationArn>arn:aws:s3:us-east-1:111122223333:access-grants/default/location/default</AccessGrantsLocationArn>"
		"<LocationScope>s3://</LocationScope><IAMRoleArn>arn:aws:iam::111122223333:role/loc</IAMRoleArn>"
		"</CreateAccessGrantsLocationResult>";
	static const char list[] =
		"<ListAccessGrantsLocationsResult><NextToken>n+/=</NextToken><AccessGrantsLocationsList>"
		"<AccessGrantsLocation><AccessGrantsLocationId>default</AccessGrantsLocationId><LocationScope>s3://</LocationScope></AccessGrantsLocation>"
		"<AccessGrantsLocation><AccessGrantsLocationId>abc-1</AccessGrantsLocationId><LocationScope>s3://b/p</LocationScope>"
		"<IAMRoleArn>arn:aws:iam::111122223333:role/x</IAMRoleArn></AccessGrantsLocation>"
		"</AccessGrantsLocationsList></ListAccessGrantsLocationsResult>";
	struct shapes_location loc = {0};
	struct shapes_location_list l = {0};
	struct xml_error e = {0};

	assert_int_equal(shapes_parse_location(one, strlen(one), &loc, &e), 0);
	assert_string_equal(loc.id, "default");
	assert_string_equal(loc.scope, "s3://");
	assert_string_equal(loc.iam_role_arn, "arn:aws:iam::111122223333:role/loc");
	assert_non_null(strstr(loc.arn, "location/default"));
	assert_int_equal(loc.created_at_ms, 1695340044000);
	shapes_location_clear(&loc);
	shapes_location_clear(NULL);

	assert_int_equal(shapes_parse_location_list(list, strlen(list), &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.next_token, "n+/=");
	assert_string_equal(l.items[1].id, "abc-1");
	assert_string_equal(l.items[1].scope, "s3://b/p");
	assert_null(l.items[0].iam_role_arn);
	shapes_location_list_clear(&l);
	shapes_location_list_clear(NULL);

	assert_int_equal(shapes_parse_location("<GetAccessGrantsLocationResult/>", 32, &loc, &e), S3G_EPARSE);
	assert_non_null(strstr(e.reason, "AccessGrantsLocationId"));
}

static void test_instance(void **state)
{
	static const char get[] =
		"<GetAccessGrantsInstanceResult" NS_DECL ">"
		"<AccessGrantsInstanceArn>arn:aws:s3:us-east-1:111122223333:access-grants/default</AccessGrantsInstanceArn>"
		"<AccessGrantsInstanceId>default</AccessGrantsInstanceId>"
		"<IdentityCenterArn>arn:aws:sso:::instance/ssoins-1</IdentityCenterArn>"
		"<IdentityCenterInstanceArn>arn:aws:sso:::instance/ssoins-1</IdentityCenterInstanceArn>"
		"<IdentityCenterApplicationArn>arn:aws:sso::111122223333:application/ssoins-1/apl-1</IdentityCenterApplicationArn>"
		"<CreatedAt>2023-09-21T23:47:24.1Z</CreatedAt></GetAccessGrantsInstanceResult>";
	static const char prefix[] =
		"<GetAccessGrantsInstanceForPrefixResult><AccessGrantsInstanceArn>arn:aws:s3:us-east-1:111122223333:access-grants/default"
		"</AccessGrantsInstanceArn><AccessGrantsInstanceId>default</AccessGrantsInstanceId>"
		"</GetAccessGrantsInstanceForPrefixResult>";
	static const char list[] =
		"<ListAccessGrantsInstancesResult><AccessGrantsInstancesList><AccessGrantsInstance>"
		"<AccessGrantsInstanceId>default</AccessGrantsInstanceId>"
		"<AccessGrantsInstanceArn>arn:aws:s3:us-east-1:111122223333:access-grants/default</AccessGrantsInstanceArn>"
		"<CreatedAt>2023-09-21T23:47:24Z</CreatedAt></AccessGrantsInstance></AccessGrantsInstancesList>"
		"</ListAccessGrantsInstancesResult>";
	struct shapes_instance in = {0};
	struct shapes_instance_list l = {0};
	struct xml_error e = {0};

	assert_int_equal(shapes_parse_instance(get, strlen(get), &in, &e), 0);
	assert_string_equal(in.id, "default");
	assert_string_equal(in.identity_center_arn, "arn:aws:sso:::instance/ssoins-1");
	assert_string_equal(in.identity_center_instance_arn, "arn:aws:sso:::instance/ssoins-1");
	assert_string_equal(in.identity_center_application_arn, "arn:aws:sso::111122223333:application/ssoins-1/apl-1");
	assert_int_equal(in.created_at_ms, 1695340044100);
	shapes_instance_clear(&in);
	shapes_instance_clear(NULL);

	assert_int_equal(shapes_parse_instance(prefix, strlen(prefix), &in, &e), 0);
	assert_string_equal(in.arn, "arn:aws:s3:us-east-1:111122223333:access-grants/default");
	assert_null(in.identity_center_arn);
	shapes_instance_clear(&in);

	assert_int_equal(shapes_parse_instance_list(list, strlen(list), &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_null(l.next_token);
	assert_string_equal(l.items[0].id, "default");
	shapes_instance_list_clear(&l);
	shapes_instance_list_clear(NULL);

	assert_int_equal(shapes_parse_instance("<X><Y/></X>", 11, &in, &e), S3G_EPARSE);
}

static void test_sts(void **state)
{
	static const char who[] =
		"<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
		"  <GetCallerIdentityResult>\n"
		"    <Arn>arn:aws:sts::111122223333:assumed-role/role-name/session</Arn>\n"
		"    <UserId>AROAEXAMPLE:session</UserId>\n"
		"    <Account>111122223333</Account>\n"
		"  </GetCallerIdentityResult>\n"
		"  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>\n"
		"</GetCallerIdentityResponse>\n";
	static const char assume[] =
		"<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
		"  <AssumeRoleResult>\n"
		"    <SourceIdentity>svc-daemon</SourceIdentity>\n"
		"    <AssumedRoleUser>\n"
		"      <Arn>arn:aws:sts::111122223333:assumed-role/role-name/session</Arn>\n"
		"      <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>\n"
		"    </AssumedRoleUser>\n"
		"    <Credentials>\n"
		"      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>\n"
		"      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
		"      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764+bNrR=</SessionToken>\n"
		"      <Expiration>2015-08-30T13:36:00Z</Expiration>\n"
		"    </Credentials>\n"
		"    <PackedPolicySize>6</PackedPolicySize>\n"
		"  </AssumeRoleResult>\n"
		"  <ResponseMetadata><RequestId>uuid</RequestId></ResponseMetadata>\n"
		"</AssumeRoleResponse>\n";
	static const char web[] =
		"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		"<AssumeRoleWithWebIdentityResult>"
		"<SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>"
		"<Audience>sts.amazonaws.com</Audience>"
		"<AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/r/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>"
		"<Credentials><SessionToken>tok</SessionToken><SecretAccessKey>sec</SecretAccessKey>"
		"<Expiration>2015-08-30T13:36:00.123Z</Expiration><AccessKeyId>ASIAWEB</AccessKeyId></Credentials>"
		"<Provider>arn:aws:iam::111122223333:oidc-provider/x</Provider>"
		"</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
	static const char notoken[] =
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>S</SecretAccessKey><Expiration>2015-08-30T13:36:00Z</Expiration>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>";
	static const char noexp[] =
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>";
	struct shapes_caller_identity c = {0};
	struct shapes_sts_creds k = {0};
	struct xml_error e = {0};

	assert_int_equal(shapes_parse_caller_identity(who, strlen(who), &c, &e), 0);
	assert_string_equal(c.arn, "arn:aws:sts::111122223333:assumed-role/role-name/session");
	assert_string_equal(c.user_id, "AROAEXAMPLE:session");
	assert_string_equal(c.account, "111122223333");
	shapes_caller_identity_clear(&c);
	shapes_caller_identity_clear(NULL);
	assert_int_equal(shapes_parse_caller_identity(assume, strlen(assume), &c, &e), S3G_EPARSE);
	assert_non_null(strstr(e.reason, "Arn"));

	assert_int_equal(shapes_parse_sts_creds(assume, strlen(assume), &k, &e), 0);
	assert_string_equal(k.access_key_id, "ASIAEXAMPLE");
	assert_string_equal(k.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
	assert_string_equal(k.session_token, "AQoDYXdzEPT//////////wEXAMPLEtc764+bNrR=");
	assert_int_equal(k.expiration_ms, 1440941760000);
	assert_string_equal(k.assumed_role_arn, "arn:aws:sts::111122223333:assumed-role/role-name/session");
	assert_string_equal(k.assumed_role_id, "AROAEXAMPLE:session");
	assert_string_equal(k.source_identity, "svc-daemon");
	assert_null(k.subject);
	shapes_sts_creds_clear(&k);
	shapes_sts_creds_clear(NULL);

	assert_int_equal(shapes_parse_sts_creds(web, strlen(web), &k, &e), 0);
	assert_string_equal(k.access_key_id, "ASIAWEB");
	assert_string_equal(k.session_token, "tok");
	assert_int_equal(k.expiration_ms, 1440941760123);
	assert_string_equal(k.subject, "system:serviceaccount:ns:sa");
	assert_null(k.source_identity);
	shapes_sts_creds_clear(&k);

	assert_int_equal(shapes_parse_sts_creds(notoken, strlen(notoken), &k, &e), S3G_EPARSE);
	assert_non_null(strstr(e.reason, "SessionToken"));
	assert_int_equal(shapes_parse_sts_creds(noexp, strlen(noexp), &k, &e), S3G_EPARSE);
	assert_non_null(strstr(e.reason, "Expiration"));
	assert_int_equal(shapes_parse_sts_creds(who, strlen(who), &k, &e), S3G_EPARSE);

	/* a session token far bigger than today's (no cap below the document limit) */
	{
		struct buf b;
		size_t tok = 200000;

		buf_init(&b, 0);
		assert_int_equal(buf_puts(&b, "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
					      "<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SessionToken>"), 0);
		for (size_t i = 0; i < tok; i++)
			assert_int_equal(buf_append(&b, "Z", 1), 0);
		assert_int_equal(buf_puts(&b, "</SessionToken><Expiration>2015-08-30T13:36:00Z</Expiration>"
					      "</Credentials></AssumeRoleResult></AssumeRoleResponse>"), 0);
		assert_int_equal(shapes_parse_sts_creds(b.data, b.len, &k, &e), 0);
		assert_int_equal(strlen(k.session_token), tok);
		shapes_sts_creds_clear(&k);
		buf_free(&b);
	}
}

static void test_object_list(void **state)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
		"  <Name>bucket</Name><Prefix>team-a/</Prefix><KeyCount>2</KeyCount>\n"
		"  <MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>\n"
		"  <ContinuationToken>prev</ContinuationToken>\n"
		"  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n"
		"  <Contents>\n"
		"    <Key>team-a/x.json</Key><LastModified>2015-08-30T12:36:00.000Z</LastModified>\n"
		"    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>\n"
		"    <ChecksumAlgorithm>CRC32</ChecksumAlgorithm>\n"
		"    <ChecksumType>FULL_OBJECT</ChecksumType>\n"
		"    <Size>11</Size><StorageClass>STANDARD</StorageClass>\n"
		"    <Owner><ID>o</ID><DisplayName>d</DisplayName></Owner>\n"
		"  </Contents>\n"
		"  <Contents><Key>team-a/y &amp; z</Key><Size>0</Size></Contents>\n"
		"  <CommonPrefixes><Prefix>team-a/sub/</Prefix></CommonPrefixes>\n"
		"  <CommonPrefixes><Prefix>team-a/sub2/</Prefix></CommonPrefixes>\n"
		"</ListBucketResult>\n";
	static const char url[] =
		"<ListBucketResult><Name>b</Name><Prefix>team-a/reports+2015/</Prefix><EncodingType>url</EncodingType>"
		"<IsTruncated>false</IsTruncated><StartAfter>a%2Bb</StartAfter>"
		"<Contents><Key>team-a/reports+2015/%24summary%01.json</Key><Size>5</Size></Contents>"
		"<CommonPrefixes><Prefix>x%2Fy+z/</Prefix></CommonPrefixes></ListBucketResult>";
	static const char *const bad[] = {
		"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%zz</Key></Contents></ListBucketResult>",
		"<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%00</Key></Contents></ListBucketResult>",
		"<ListBucketResult><EncodingType>url</EncodingType><Prefix>%4</Prefix></ListBucketResult>",
		"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><KeyCount>99999999999999999999999</KeyCount></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><LastModified>2015-13-30T12:36:00Z</LastModified></Contents></ListBucketResult>",
	};
	struct shapes_object_list l = {0};
	struct xml_error e = {0};

	assert_int_equal(shapes_parse_object_list(doc, strlen(doc), &l, &e), 0);
	assert_string_equal(l.name, "bucket");
	assert_string_equal(l.prefix, "team-a/");
	assert_string_equal(l.delimiter, "/");
	assert_int_equal(l.key_count, 2);
	assert_true(l.is_truncated);
	assert_string_equal(l.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_int_equal(l.ncontents, 2);
	assert_string_equal(l.contents[0].key, "team-a/x.json");
	assert_string_equal(l.contents[0].etag, "\"9b2cf535f27731c974343645a3985328\"");
	assert_int_equal(l.contents[0].size, 11);
	assert_int_equal(l.contents[0].last_modified_ms, 1440938160000);
	assert_string_equal(l.contents[1].key, "team-a/y & z");
	assert_int_equal(l.contents[1].size, 0);
	assert_null(l.contents[1].etag);
	assert_int_equal(l.ncommon_prefixes, 2);
	assert_string_equal(l.common_prefixes[1], "team-a/sub2/");
	shapes_object_list_clear(&l);
	shapes_object_list_clear(NULL);

	assert_int_equal(shapes_parse_object_list(url, strlen(url), &l, &e), 0);
	assert_string_equal(l.prefix, "team-a/reports 2015/");
	assert_string_equal(l.start_after, "a+b");
	assert_false(l.is_truncated);
	assert_null(l.next_continuation_token);
	assert_int_equal(l.key_count, -1);
	assert_string_equal(l.contents[0].key, "team-a/reports 2015/$summary\x01.json");
	assert_string_equal(l.common_prefixes[0], "x/y z/");
	shapes_object_list_clear(&l);

	/* without EncodingType, '+' and '%' are literal */
	{
		static const char lit[] = "<ListBucketResult><Contents><Key>a+b%2F</Key></Contents></ListBucketResult>";

		assert_int_equal(shapes_parse_object_list(lit, strlen(lit), &l, &e), 0);
		assert_string_equal(l.contents[0].key, "a+b%2F");
		assert_int_equal(l.contents[0].size, -1);
		shapes_object_list_clear(&l);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = shapes_parse_object_list(bad[i], strlen(bad[i]), &l, &e);

		if (r != S3G_EPARSE)
			fail_msg("bad %zu: %s", i, err_name(r));
		assert_null(l.name);
		assert_null(l.contents);
	}
}

static void test_errors(void **state)
{
	static const char s3[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the "
		"current time is too large.</Message><RequestTime>20150830T123600Z</RequestTime>"
		"<ServerTime>2015-08-30T12:56:00Z</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
		"<RequestId>4442587FB7D0A2F9</RequestId><HostId>host/id==</HostId></Error>";
	static const char sts[] =
		"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
		"  <Error>\n    <Type>Sender</Type>\n    <Code>AccessDenied</Code>\n"
		"    <Message>User: arn:aws:iam::111122223333:user/x is not authorized to perform: sts:AssumeRole</Message>\n"
		"  </Error>\n  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n</ErrorResponse>\n";
	static const char s3c[] =
		"<ErrorResponse><Error><Code>NoSuchAccessGrantError</Code><Message>The specified access grant does not exist"
		"</Message><RequestId>inner</RequestId></Error><RequestId>outer</RequestId><HostId>h</HostId></ErrorResponse>";
	static const char region[] =
		"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting "
		"'eu-west-1'</Message><Region>eu-west-1</Region><RequestId>r</RequestId></Error>";
	static const char redirect[] =
		"<Error><Code>PermanentRedirect</Code><Message>m</Message><Endpoint>bucket.s3.eu-west-1.amazonaws.com</Endpoint>"
		"<Bucket>bucket</Bucket></Error>";
	struct shapes_error er = {0};
	struct xml_error e = {0};

	assert_int_equal(shapes_parse_error(s3, strlen(s3), &er, &e), 0);
	assert_string_equal(er.code, "RequestTimeTooSkewed");
	assert_string_equal(er.request_time, "20150830T123600Z");
	assert_string_equal(er.server_time, "2015-08-30T12:56:00Z");
	assert_int_equal(er.server_time_ms, 1440939360000);
	assert_string_equal(er.request_id, "4442587FB7D0A2F9");
	assert_string_equal(er.host_id, "host/id==");
	assert_null(er.type);
	shapes_error_clear(&er);
	shapes_error_clear(NULL);

	assert_int_equal(shapes_parse_error(sts, strlen(sts), &er, &e), 0);
	assert_string_equal(er.code, "AccessDenied");
	assert_string_equal(er.type, "Sender");
	assert_string_equal(er.request_id, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");
	assert_non_null(strstr(er.message, "sts:AssumeRole"));
	assert_int_equal(er.server_time_ms, 0);
	shapes_error_clear(&er);

	assert_int_equal(shapes_parse_error(s3c, strlen(s3c), &er, &e), 0);
	assert_string_equal(er.code, "NoSuchAccessGrantError");
	assert_string_equal(er.request_id, "inner");
	assert_string_equal(er.host_id, "h");
	shapes_error_clear(&er);

	assert_int_equal(shapes_parse_error(region, strlen(region), &er, &e), 0);
	assert_string_equal(er.region, "eu-west-1");
	shapes_error_clear(&er);
	assert_int_equal(shapes_parse_error(redirect, strlen(redirect), &er, &e), 0);
	assert_string_equal(er.endpoint, "bucket.s3.eu-west-1.amazonaws.com");
	assert_string_equal(er.bucket, "bucket");
	assert_null(er.request_id);
	shapes_error_clear(&er);

	/* moto's query-protocol errors (STS, IAM), byte for byte as moto_server 5.2.1 sends them. */
	{
		static const char moto[] =
			"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>"
			"SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the "
			"signature you provided. Check your AWS Secret Access Key and signing method. Consult the service "
			"documentation for details.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>";
		static const char ec2[] =
			"<Response><Errors><Error><Code>AuthFailure</Code><Message>m</Message></Error></Errors>"
			"<RequestID>ec2-req</RequestID></Response>";
		static const char padded[] = "<Error>\n  <Code>\n    SlowDown\n  </Code>\n</Error>";

		assert_int_equal(shapes_parse_error(moto, strlen(moto), &er, &e), 0);
		assert_string_equal(er.code, "SignatureDoesNotMatch");
		assert_string_equal(er.type, "Sender");
		assert_true(strncmp(er.message, "The request signature we calculated", 35) == 0);
		shapes_error_clear(&er);
		assert_int_equal(shapes_parse_error(ec2, strlen(ec2), &er, &e), 0);
		assert_string_equal(er.code, "AuthFailure");
		assert_string_equal(er.request_id, "ec2-req");
		shapes_error_clear(&er);
		assert_int_equal(shapes_parse_error(padded, strlen(padded), &er, &e), 0);
		assert_string_equal(er.code, "SlowDown");
		shapes_error_clear(&er);
		assert_int_equal(shapes_parse_error("<Error><Code> </Code></Error>", 29, &er, &e), S3G_EPARSE);
		assert_int_equal(shapes_parse_error("<Response><Errors/></Response>", 30, &er, &e), S3G_EPARSE);
		assert_non_null(strstr(e.reason, "Response without Error"));
		assert_int_equal(shapes_parse_error("<ErrorResponse><Errors><Error><Message>m</Message></Error></Errors>"
						    "</ErrorResponse>", 83, &er, &e), S3G_EPARSE);
		assert_null(er.code);
	}

	assert_int_equal(shapes_parse_error("<ErrorResponse><RequestId>x</RequestId></ErrorResponse>", 55, &er, &e),
			 S3G_EPARSE);
	assert_non_null(strstr(e.reason, "without Error"));
	assert_int_equal(shapes_parse_error("<Error><Message>m</Message></Error>", 35, &er, &e), S3G_EPARSE);
	assert_non_null(strstr(e.reason, "Code"));
	assert_int_equal(shapes_parse_error(grant_body, strlen(grant_body), &er, &e), S3G_EPARSE);
	assert_non_null(strstr(e.reason, "not an error document"));
	assert_null(er.code);
}

/* Every parser against hostile or broken documents: a clean error, no crash, no leak. */
static void test_hostile(void **state)
{
	struct buf big, deep;
	const char *docs[6];
	const int want[6] = {S3G_ETOOBIG, S3G_ETOOBIG, S3G_EPARSE, S3G_EPARSE, S3G_EPARSE, S3G_EPARSE};

	buf_init(&big, 0);
	assert_int_equal(buf_puts(&big, "<Error><Code>"), 0);
	while (big.len <= XML_DEFAULT_MAX_BYTES)
		assert_int_equal(buf_puts(&big, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
	assert_int_equal(buf_puts(&big, "</Code></Error>"), 0);
	buf_init(&deep, 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(buf_puts(&deep, "<Error>"), 0);
	docs[0] = big.data;
	docs[1] = deep.data;
	docs[2] = "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;\">"
		  "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]><Error><Code>&c;</Code></Error>";
	docs[3] = "<!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Error><Code>&x;</Code></Error>";
	docs[4] = "<ListAccessGrantsResult><AccessGrantsList><AccessGrant><AccessGrantId>a</AccessGrantId>";
	docs[5] = "<Error><Code>x</Code></Err>";
	for (size_t i = 0; i < 6; i++) {
		size_t len = strlen(docs[i]);
		struct xml_error e;
		int r;

#define TRY(type, fn, clear)                                                                  \
	do {                                                                                  \
		struct type v = {0};                                                          \
		memset(&e, 0, sizeof(e));                                                     \
		r = fn(docs[i], len, &v, &e);                                                 \
		if (r != want[i] || !e.reason[0])                                             \
			fail_msg("doc %zu %s: %s (%s)", i, #fn, err_name(r), e.reason);        \
		clear(&v);                                                                    \
	} while (0)
		TRY(shapes_grant, shapes_parse_grant, shapes_grant_clear);
		TRY(shapes_grant_list, shapes_parse_grant_list, shapes_grant_list_clear);
		TRY(shapes_location, shapes_parse_location, shapes_location_clear);
		TRY(shapes_location_list, shapes_parse_location_list, shapes_location_list_clear);
		TRY(shapes_instance, shapes_parse_instance, shapes_instance_clear);
		TRY(shapes_instance_list, shapes_parse_instance_list, shapes_instance_list_clear);
		TRY(shapes_caller_identity, shapes_parse_caller_identity, shapes_caller_identity_clear);
		TRY(shapes_sts_creds, shapes_parse_sts_creds, shapes_sts_creds_clear);
		TRY(shapes_object_list, shapes_parse_object_list, shapes_object_list_clear);
		TRY(shapes_error, shapes_parse_error, shapes_error_clear);
#undef TRY
	}
	buf_free(&big);
	buf_free(&deep);
}

/* ---- request bodies against shared/aws/golden/signed-requests.json ---- */

static yajl_val golden;

static const char *golden_body(const char *service, const char *operation)
{
	const char *ex_path[] = {"examples", NULL};
	yajl_val ex = yajl_tree_get(golden, ex_path, yajl_t_array);

	assert_non_null(ex);
	for (size_t i = 0; i < ex->u.array.len; i++) {
		yajl_val o = ex->u.array.values[i];
		const char *sp[] = {"service", NULL}, *op[] = {"operation", NULL}, *bp[] = {"request", "body", NULL};
		const char *s = YAJL_GET_STRING(yajl_tree_get(o, sp, yajl_t_string));
		const char *n = YAJL_GET_STRING(yajl_tree_get(o, op, yajl_t_string));

		if (s && n && strcmp(s, service) == 0 && strcmp(n, operation) == 0)
			return YAJL_GET_STRING(yajl_tree_get(o, bp, yajl_t_string));
	}
	fail_msg("no golden example %s %s", service, operation);
	return NULL;
}

static int load_golden(void **state)
{
	const char *dir = getenv("S3G_SHARED_DIR");
	char path[4096], errbuf[256];
	FILE *f;
	struct buf b;
	char chunk[4096];
	size_t n;

	snprintf(path, sizeof(path), "%s/aws/golden/signed-requests.json", dir ? dir : "/work/shared");
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) < 0)
			abort();
	fclose(f);
	golden = yajl_tree_parse(b.data, errbuf, sizeof(errbuf));
	buf_free(&b);
	return golden ? 0 : -1;
}

static int free_golden(void **state)
{
	yajl_tree_free(golden);
	return 0;
}

static void test_build_golden(void **state)
{
	const struct shapes_tag tags[] = {{"owner", "daemon"}};
	const struct shapes_create_grant_req grant = {
		.location_id = "default",
		.sub_prefix = "amzn-s3-demo-bucket/team-a/*",
		.grantee_type = "IAM",
		.grantee_id = "arn:aws:iam::111122223333:role/data-consumer",
		.permission = "READWRITE",
		.tags = tags,
		.ntags = 1,
	};
	const struct shapes_create_location_req loc = {
		.scope = "s3://",
		.iam_role_arn = "arn:aws:iam::111122223333:role/access-grants-location-role",
	};
	const struct shapes_assume_role_req ar = {
		.role_arn = "arn:aws:iam::111122223333:role/s3-access-grants-admin",
		.session_name = "grants-daemon@host-1",
		.external_id = "Example/External:Id=42",
		.duration_seconds = 3600,
		.source_identity = "svc-daemon",
	};
	char *body = NULL;
	size_t len = 0;

	assert_int_equal(shapes_build_create_grant(&grant, &body, &len), 0);
	assert_string_equal(body, golden_body("s3control", "CreateAccessGrant"));
	assert_int_equal(len, strlen(body));
	X_FREE(body);
	assert_int_equal(shapes_build_create_location(&loc, &body, &len), 0);
	assert_string_equal(body, golden_body("s3control", "CreateAccessGrantsLocation"));
	X_FREE(body);
	assert_int_equal(shapes_build_get_caller_identity(&body, &len), 0);
	assert_string_equal(body, golden_body("sts", "GetCallerIdentity"));
	X_FREE(body);
	assert_int_equal(shapes_build_assume_role(&ar, &body, &len), 0);
	assert_string_equal(body, golden_body("sts", "AssumeRole"));
	X_FREE(body);
	/* botocore sends an empty body here; we send the namespaced empty root (see shapes.h) */
	assert_string_equal(golden_body("s3control", "CreateAccessGrantsInstance"), "");
	assert_int_equal(shapes_build_create_instance(NULL, &body, &len), 0);
	assert_string_equal(body, "<CreateAccessGrantsInstanceRequest xmlns=\"" SHAPES_S3CONTROL_NS "\"/>");
	X_FREE(body);
}

static void test_build_more(void **state)
{
	const struct shapes_tag tags[] = {{"a&b", "<v>"}, {"k", ""}};
	struct shapes_create_grant_req g = {
		.location_id = "loc-1",
		.sub_prefix = "bucket/R&D <2024>/\r*",
		.grantee_type = "DIRECTORY_GROUP",
		.grantee_id = "0a1b-\xc3\xa9",
		.permission = "READ",
		.application_arn = "arn:aws:sso::111122223333:application/ssoins-1/apl-1",
		.s3_prefix_type = "Object",
		.tags = tags,
		.ntags = 2,
	};
	const struct shapes_create_instance_req inst = {.identity_center_arn = "arn:aws:sso:::instance/ssoins-1"};
	const struct shapes_web_identity_req web = {
		.role_arn = "arn:aws:iam::111122223333:role/r",
		.session_name = "s",
		.token = "eyJ a.b~c_d-e+f/=\xc3\xa9",
		.provider_id = "www.amazon.com",
		.duration_seconds = 900,
	};
	struct shapes_tag many[SHAPES_MAX_TAGS + 1];
	struct xml_doc *doc = NULL;
	char *body = NULL;
	size_t len;

	assert_int_equal(shapes_build_create_grant(&g, &body, &len), 0);
	assert_string_equal(body,
		"<CreateAccessGrantRequest xmlns=\"" SHAPES_S3CONTROL_NS "\">"
		"<AccessGrantsLocationId>loc-1</AccessGrantsLocationId>"
		"<AccessGrantsLocationConfiguration><S3SubPrefix>bucket/R&amp;D &lt;2024&gt;/&#13;*</S3SubPrefix>"
		"</AccessGrantsLocationConfiguration>"
		"<Grantee><GranteeType>DIRECTORY_GROUP</GranteeType><GranteeIdentifier>0a1b-\xc3\xa9</GranteeIdentifier></Grantee>"
		"<Permission>READ</Permission>"
		"<ApplicationArn>arn:aws:sso::111122223333:application/ssoins-1/apl-1</ApplicationArn>"
		"<S3PrefixType>Object</S3PrefixType>"
		"<Tags><Tag><Key>a&amp;b</Key><Value>&lt;v&gt;</Value></Tag><Tag><Key>k</Key><Value></Value></Tag></Tags>"
		"</CreateAccessGrantRequest>");
	/* round trip through the reader: the text comes back byte for byte */
	assert_int_equal(xml_parse(body, len, NULL, &doc, NULL), 0);
	assert_string_equal(xml_path_text(xml_root(doc), "AccessGrantsLocationConfiguration/S3SubPrefix"),
			    "bucket/R&D <2024>/\r*");
	xml_free(doc);
	X_FREE(body);

	/* no sub-prefix: no configuration element */
	g.sub_prefix = "";
	g.application_arn = NULL;
	g.s3_prefix_type = NULL;
	g.ntags = 0;
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), 0);
	assert_null(strstr(body, "AccessGrantsLocationConfiguration"));
	assert_null(strstr(body, "Tags"));
	X_FREE(body);

	/* invalid input */
	g.grantee_id = "bad\x01";
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), S3G_EINVAL);
	g.grantee_id = "bad\xc3";
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), S3G_EINVAL);
	g.grantee_id = "bad\xed\xa0\x80";   /* surrogate */
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), S3G_EINVAL);
	g.grantee_id = "bad\xc0\xaf";       /* overlong */
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), S3G_EINVAL);
	g.grantee_id = NULL;
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), S3G_EINVAL);
	g.grantee_id = "ok";
	for (size_t i = 0; i <= SHAPES_MAX_TAGS; i++)
		many[i] = (struct shapes_tag){"k", "v"};
	g.tags = many;
	g.ntags = SHAPES_MAX_TAGS + 1;
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), S3G_EINVAL);
	g.ntags = SHAPES_MAX_TAGS;
	assert_int_equal(shapes_build_create_grant(&g, &body, &len), 0);
	X_FREE(body);
	assert_int_equal(shapes_build_create_grant(NULL, &body, &len), S3G_EINVAL);
	assert_null(body);
	{
		struct buf huge;

		buf_init(&huge, 0);
		while (huge.len < SHAPES_MAX_BODY)
			assert_int_equal(buf_puts(&huge, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), 0);
		g.sub_prefix = huge.data;
		assert_int_equal(shapes_build_create_grant(&g, &body, &len), S3G_ETOOBIG);
		assert_null(body);
		buf_free(&huge);
	}
	{
		const struct shapes_create_location_req bad = {.scope = "s3://"};

		assert_int_equal(shapes_build_create_location(&bad, &body, &len), S3G_EINVAL);
	}

	assert_int_equal(shapes_build_create_instance(&inst, &body, &len), 0);
	assert_string_equal(body, "<CreateAccessGrantsInstanceRequest xmlns=\"" SHAPES_S3CONTROL_NS "\">"
				  "<IdentityCenterArn>arn:aws:sso:::instance/ssoins-1</IdentityCenterArn>"
				  "</CreateAccessGrantsInstanceRequest>");
	X_FREE(body);

	assert_int_equal(shapes_build_assume_role_web_identity(&web, &body, &len), 0);
	assert_string_equal(body, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
				  "&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fr&RoleSessionName=s"
				  "&WebIdentityToken=eyJ%20a.b~c_d-e%2Bf%2F%3D%C3%A9&ProviderId=www.amazon.com"
				  "&DurationSeconds=900");
	X_FREE(body);
	{
		const struct shapes_assume_role_req min = {.role_arn = "arn:aws:iam::1:role/r", .session_name = "a b"};
		const struct shapes_web_identity_req notok = {.role_arn = "r", .session_name = "s"};

		assert_int_equal(shapes_build_assume_role(&min, &body, &len), 0);
		assert_string_equal(body, "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"
					  "&RoleSessionName=a%20b");
		X_FREE(body);
		assert_int_equal(shapes_build_assume_role_web_identity(&notok, &body, &len), S3G_EINVAL);
		assert_int_equal(shapes_build_assume_role(NULL, &body, &len), S3G_EINVAL);
	}
}

/* The resync lists 100,000 grants: 100 pages of 1,000. Report µs per page. */
static void test_page_speed(void **state)
{
	struct buf b;
	struct timespec t0, t1, c0, c1;
	int rounds = 50;
	double us, cpu_us;

	buf_init(&b, 0);
	assert_int_equal(buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAccessGrantsResult" NS_DECL ">"
				      "<NextToken>eyJ0b2tlbiI6IjEyMyJ9+/=</NextToken><AccessGrantsList>"), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b,
			"<AccessGrant><CreatedAt>2023-09-21T23:47:24.870Z</CreatedAt>"
			"<AccessGrantId>a1b2c3d4-5678-90ab-cdef-%012d</AccessGrantId>"
			"<AccessGrantArn>arn:aws:s3:us-east-2:111122223333:access-grants/default/grant/a1b2c3d4-5678-90ab-cdef-%012d</AccessGrantArn>"
			"<Grantee><GranteeType>IAM</GranteeType><GranteeIdentifier>arn:aws:iam::111122223333:role/team-%d</GranteeIdentifier></Grantee>"
			"<Permission>READWRITE</Permission><AccessGrantsLocationId>default</AccessGrantsLocationId>"
			"<AccessGrantsLocationConfiguration><S3SubPrefix>amzn-s3-demo-bucket/team-%d/*</S3SubPrefix></AccessGrantsLocationConfiguration>"
			"<GrantScope>s3://amzn-s3-demo-bucket/team-%d/*</GrantScope></AccessGrant>\n",
			i, i, i, i, i), 0);
	assert_int_equal(buf_puts(&b, "</AccessGrantsList></ListAccessGrantsResult>"), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	for (int k = 0; k < rounds; k++) {
		struct shapes_grant_list l = {0};

		assert_int_equal(shapes_parse_grant_list(b.data, b.len, &l, NULL), 0);
		assert_int_equal(l.n, 1000);
		assert_string_equal(l.items[999].grant_scope, "s3://amzn-s3-demo-bucket/team-999/*");
		shapes_grant_list_clear(&l);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / rounds;
	cpu_us = ((double)(c1.tv_sec - c0.tv_sec) * 1e6 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e3) / rounds;
	printf("# ListAccessGrants page: 1000 grants, %zu bytes: %.0f us CPU, %.0f us wall per page "
	       "(%.0f ms CPU per 100,000-grant resync)\n", b.len, cpu_us, us, cpu_us * 100 / 1000);
	/* generous: catches an accidental quadratic, not a slow machine or a sanitizer build */
	assert_true(us < 200000);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grant),
		cmocka_unit_test(test_grant_bad),
		cmocka_unit_test(test_grant_list),
		cmocka_unit_test(test_location),
		cmocka_unit_test(test_instance),
		cmocka_unit_test(test_sts),
		cmocka_unit_test(test_object_list),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test_setup_teardown(test_build_golden, load_golden, free_golden),
		cmocka_unit_test(test_build_more),
		cmocka_unit_test(test_page_speed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
