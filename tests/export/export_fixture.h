/* export_fixture.h — a migrated database with entitlements, grants and an
 * export config for the export tests (header-only, tests only). */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "../store/pgtest.h"
#include "store/schema.h"

/* Markers that must never appear in an exported file. */
#define FX_INT_KEY_ID "AKIAINTEGRATIONKEY01"
#define FX_EXPORT_KEY_ID "AKIAEXPORTKEYID00001"
#define FX_EXTERNAL_ID "ext-id-secret-marker"
#define FX_ENVELOPE_HEX "01a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4"

/* A fresh migrated database with n grants (and users, data sources,
 * subscriptions behind most of them); returns its conninfo. */
static inline char *fx_db(int ngrants)
{
	char *ci = pgtest_fresh_db();
	PGconn *c = pgtest_connect(ci);
	struct pgerr err;
	int applied;
	char sql[4096];

	if (schema_migrate(c, 0, &applied, &err) < 0) {
		fprintf(stderr, "migrate: %s\n", err.message);
		abort();
	}
	pgtest_exec(c,
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path,"
		" authentication_type, access_key_id, secret_access_key, external_id, status, location_id)"
		" VALUES ('research', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc',"
		" 's3://research-data', 'accessKey', '" FX_INT_KEY_ID "', '\\x" FX_ENVELOPE_HEX "', '" FX_EXTERNAL_ID "',"
		" 'enabled', 'loc-1'),"
		" ('everything', '210987654321', 'eu-west-1', 'arn:aws:iam::210987654321:role/loc2', 's3://',"
		" 'auto', NULL, NULL, NULL, 'enabled', 'loc-2')");
	snprintf(sql, sizeof(sql),
		"INSERT INTO s3grant.users (username, principal)"
		" SELECT 'user' || g, CASE WHEN g %% 3 = 0 THEN NULL WHEN g %% 3 = 1 THEN"
		"  'arn:aws:iam::123456789012:user/u' || g ELSE 'arn:aws:iam::123456789012:role/r' || g END"
		" FROM generate_series(1, %d) g;"
		"INSERT INTO s3grant.users (username, principal) VALUES ('dora \"the\" \xc3\xa9xplorer', NULL);"
		"INSERT INTO s3grant.data_sources (integration_id, prefix, name)"
		" SELECT 1, 'ds/' || g, 'Data source ' || g FROM generate_series(1, %d) g;"
		"INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (2, 'other-bucket/x');"
		"INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)"
		" SELECT g, g, CASE WHEN g %% 2 = 0 THEN 'read' ELSE 'write' END FROM generate_series(1, %d) g;"
		"INSERT INTO s3grant.grants (grant_id, integration_id, grant_arn, grantee_type, grantee_id, permission,"
		" location_id, sub_prefix, grant_scope, subscription_id, created_at)"
		" SELECT 'g-' || lpad(g::text, 7, '0'), 1,"
		"  'arn:aws:s3:us-east-1:123456789012:access-grants/default/grant/g-' || g, 'IAM',"
		"  coalesce(u.principal, 'arn:aws:iam::123456789012:user/' || u.username),"
		"  CASE WHEN g %% 2 = 0 THEN 'READ' ELSE 'READWRITE' END, 'loc-1', 'ds/' || g || '/*',"
		"  's3://research-data/ds/' || g || '/*', s.id, '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 minute'"
		" FROM generate_series(1, %d) g JOIN s3grant.users u ON u.id = g"
		" JOIN s3grant.subscriptions s ON s.user_id = g AND s.data_source_id = g;"
		/* a grant seen in AWS that no subscription explains (adopted / pending repair) */
		"INSERT INTO s3grant.grants (grant_id, integration_id, grant_arn, grantee_type, grantee_id, permission,"
		" location_id, sub_prefix) VALUES ('zz-orphan', 2, 'arn:aws:s3:eu-west-1:210987654321:access-grants/default/grant/zz',"
		" 'DIRECTORY_USER', '94482488-3041-7026-18f3-be45837cd0e4', 'READ', 'loc-2', 'other-bucket/x/*');"
		"INSERT INTO s3grant.export_config (bucket, region, path, authentication_type, access_key_id,"
		" secret_access_key) VALUES ('export-bucket', 'us-east-1', 'summaries/prod', 'accessKey',"
		" '" FX_EXPORT_KEY_ID "', '\\x" FX_ENVELOPE_HEX "')",
		ngrants, ngrants, ngrants, ngrants);
	pgtest_exec(c, sql);
	PQfinish(c);
	return ci;
}
