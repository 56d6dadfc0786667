/* recon_fixture.h — a fresh database migrated by s3grantctl, and the small
 * entitlement fixture the recon tests share. Header-only, tests only. */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "../store/pgtest.h"
#include "core/xalloc.h"
#include "store/secrets.h"

static const char recon_hexkey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/* A fresh database with the schema applied by `s3grantctl db migrate`. */
static inline char *recon_fresh_db(void)
{
	char *ci = pgtest_fresh_db();
	const char *bd = getenv("S3G_BUILD_DIR");
	char *cmd;

	if (!bd) {
		fprintf(stderr, "recon_fixture: S3G_BUILD_DIR is not set\n");
		abort();
	}
	cmd = x_asprintf("'%s/ctl/s3grantctl' -d '%s' db migrate >/dev/null", bd, ci);
	if (system(cmd) != 0) {
		fprintf(stderr, "recon_fixture: %s failed\n", cmd);
		abort();
	}
	x_free(cmd);
	return ci;
}

static inline void recon_key(struct secrets_key *k)
{
	if (secrets_key_parse((const uint8_t *)recon_hexkey, strlen(recon_hexkey), k) < 0)
		abort();
}

/* Integration 1 "one" (s3://research-data, registered as loc-1, accessKey with
 * a sealed secret "s3cr3t/KEY"), integration 2 "two" (s3://, default, auto).
 * Data sources (1) a, (2) b/c under 1; (3) bucket-x under 2.
 * Users: alice (IAM user ARN), bob (Identity Center id), carol (unset),
 * "bad name" (unset; not a valid IAM user name), dave (IAM role).
 * Subscriptions on integration 1: alice a read, bob b/c write, carol a write,
 * "bad name" a read, dave b/c admin (a legacy row the trigger would refuse);
 * on integration 2: alice bucket-x read. */
static inline void recon_fixture(PGconn *c)
{
	struct secrets_key k;
	uint8_t *env = NULL;
	size_t len;
	char *hex, *sql;

	recon_key(&k);
	if (secrets_seal(&k, "integrations.secret_access_key", "s3cr3t/KEY", 10, &env, &len) < 0)
		abort();
	hex = x_malloc(2 * len + 1);
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", env[i]);
	sql = x_asprintf(
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn,"
		" location_path, authentication_type, access_key_id, secret_access_key, status, location_id)"
		" VALUES ('one', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc',"
		" 's3://research-data', 'accessKey', 'AKIDEXAMPLE', '\\x%s', 'enabled', 'loc-1');", hex);
	pgtest_exec(c, sql);
	x_free(sql);
	x_free(hex);
	x_free(env);
	secrets_key_wipe(&k);
	pgtest_exec(c,
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path,"
		" status) VALUES ('two', '210987654321', 'eu-west-1', 'arn:aws:iam::210987654321:role/loc', 's3://',"
		" 'enabled');"
		"INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, 'a'), (1, '/b/c/'), (2, 'bucket-x');"
		"INSERT INTO s3grant.users (username, principal) VALUES"
		" ('alice', 'arn:aws:iam::123456789012:user/alice'),"
		" ('bob', '94482488-3041-7026-18f3-be45837cd0e4'),"
		" ('carol', NULL), ('bad name', ''),"
		" ('dave', 'arn:aws:iam::123456789012:role/dave');"
		"INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES"
		" (1, 1, 'read'), (2, 2, 'write'), (3, 1, 'write'), (4, 1, 'read'), (1, 3, 'read');"
		"ALTER TABLE s3grant.subscriptions DISABLE TRIGGER subscriptions_validate;"
		"INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES (5, 2, 'admin');"
		"ALTER TABLE s3grant.subscriptions ENABLE TRIGGER subscriptions_validate;"
		"DELETE FROM s3grant.change_queue;");
}
