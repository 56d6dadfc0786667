/* Schema migrations and the product-rule constraints, against a real Postgres.
 * S3G_NEEDS: pg
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pgtest.h"
#include "store/schema.h"

static PGconn *migrated(char **ret_ci)
{
	char *ci = pgtest_fresh_db();
	PGconn *c = pgtest_connect(ci);
	struct pgerr err;
	int applied = -1;

	assert_int_equal(schema_migrate(c, 0, &applied, &err), 0);
	assert_int_equal(applied, schema_migrations_count);
	if (ret_ci)
		*ret_ci = ci;
	else
		x_free(ci);
	return c;
}

static void test_migrate_from_empty_and_rerun(void **state)
{
	char *ci = pgtest_fresh_db();
	PGconn *c = pgtest_connect(ci);
	struct pgerr err;
	struct schema_state st;
	int applied = -1;
	char *v;

	assert_int_equal(schema_check(c, &err), S3G_ESCHEMA);
	assert_non_null(strstr(err.message, "no s3grant schema"));
	assert_int_equal(schema_migrate(c, 0, &applied, &err), 0);
	assert_int_equal(applied, schema_migrations_count);
	assert_int_equal(schema_check(c, &err), 0);
	v = pgtest_value(c, "SELECT id FROM s3grant.tenant");
	assert_int_equal(strlen(v), 36);
	/* re-run: no-op, tenant unchanged */
	assert_int_equal(schema_migrate(c, 0, &applied, &err), 0);
	assert_int_equal(applied, 0);
	{
		char *v2 = pgtest_value(c, "SELECT id FROM s3grant.tenant");

		assert_string_equal(v, v2);
		x_free(v2);
	}
	assert_int_equal(schema_status(c, &st, &err), 0);
	assert_int_equal(st.version, schema_migrations_count);
	assert_int_equal(st.latest, schema_migrations_count);
	assert_string_equal(st.name, schema_latest_name());
	x_free(v);
	PQfinish(c);
	x_free(ci);
}

static void test_check_refuses_older_and_newer(void **state)
{
	char *ci = pgtest_fresh_db();
	PGconn *c = pgtest_connect(ci);
	struct pgerr err;
	int applied = -1;
	char want[256];

	assert_true(schema_migrations_count >= 2);
	assert_int_equal(schema_migrate(c, 1, &applied, &err), 0);
	assert_int_equal(applied, 1);
	assert_int_equal(schema_check(c, &err), S3G_ESCHEMA);
	snprintf(want, sizeof(want), "needs migration 2 (%s)", schema_migrations[1].name);
	assert_non_null(strstr(err.message, want));
	assert_int_equal(schema_migrate(c, 0, &applied, &err), 0);
	assert_int_equal(applied, schema_migrations_count - 1);
	assert_int_equal(schema_check(c, &err), 0);
	pgtest_exec(c, "INSERT INTO s3grant.schema_migrations (version, name) VALUES (999, 'from_the_future')");
	assert_int_equal(schema_check(c, &err), S3G_ESCHEMA);
	assert_non_null(strstr(err.message, "999 (from_the_future), newer than this binary"));
	assert_int_equal(schema_migrate(c, 0, &applied, &err), S3G_ESCHEMA);
	PQfinish(c);
	x_free(ci);
}

static void test_parallel_migrators(void **state)
{
	char *ci = pgtest_fresh_db();
	PGconn *a = pgtest_connect(ci), *b = pgtest_connect(ci);
	struct pgerr err;
	int applied = -1;
	PGresult *res;

	/* a holds the migration lock; b's migrate must wait, then find nothing to do */
	pgtest_exec(a, "BEGIN");
	pgtest_exec(a, "SELECT pg_advisory_xact_lock(" "23418804482690644" ")");
	assert_int_equal(PQsendQuery(b, "SELECT pg_try_advisory_xact_lock(23418804482690644)"), 1);
	res = PQgetResult(b);
	assert_string_equal(PQgetvalue(res, 0, 0), "f");
	PQclear(res);
	while ((res = PQgetResult(b)))
		PQclear(res);
	pgtest_exec(a, "ROLLBACK");
	assert_int_equal(schema_migrate(a, 0, &applied, &err), 0);
	assert_int_equal(schema_migrate(b, 0, &applied, &err), 0);
	assert_int_equal(applied, 0);
	PQfinish(a);
	PQfinish(b);
	x_free(ci);
}

struct bad_case {
	const char *sql;
	const char *sqlstate;
	const char *column;
	const char *message;    /* substring */
};

static const char setup_sql[] =
	"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path)"
	" VALUES ('one', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://research-data'),"
	"        ('root', '123456789012', 'eu-west-1', 'arn:aws:iam::123456789012:role/loc', 's3://');"
	"INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, '/demographics');"
	"INSERT INTO s3grant.users (username, principal) VALUES"
	" ('alice', 'arn:aws:iam::123456789012:user/alice'), ('bob', 'arn:aws:iam::123456789012:role/analyst');";

#define INTEG(name, acct, region, path) \
	"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path)" \
	" VALUES ('" name "', '" acct "', '" region "', 'arn:aws:iam::123456789012:role/loc', '" path "')"
#define DS(iid, prefix) "INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (" iid ", '" prefix "')"
#define USER(name, p) "INSERT INTO s3grant.users (username, principal) VALUES ('" name "', '" p "')"

static const struct bad_case bad_cases[] = {
	{ INTEG("one", "123456789012", "us-east-1", "s3://other"), "23505", "name", "name: an integration named 'one' already exists" },
	{ INTEG("two", "123456789012", "us-east-1", "s3://research-data/"), "23505", "location_path", "location_path: an integration already uses the location path" },
	{ INTEG("", "123456789012", "us-east-1", "s3://x1"), "23514", "name", "name: must be 1 to 256" },
	{ INTEG("t", "12ab", "us-east-1", "s3://x2"), "23514", "aws_account_id", "aws_account_id: '12ab' is not an AWS account id" },
	{ INTEG("t", "123456789012", "mars", "s3://x3"), "23514", "aws_region", "aws_region: 'mars' is not an AWS region" },
	{ INTEG("t", "123456789012", "us-east-1", "https://x4"), "23514", "location_path", "location_path: 'https://x4' must start with s3://" },
	{ INTEG("t", "123456789012", "us-east-1", "s3://Bad_Bucket"), "23514", "location_path", "is not a valid S3 bucket name" },
	{ INTEG("t", "123456789012", "us-east-1", "s3://bkt/a//b"), "23514", "location_path", "has an empty path segment" },
	{ "UPDATE s3grant.integrations SET aws_region = 'us-west-2' WHERE id = 1", "23514", "location_path", "only name and the authentication fields" },
	{ "UPDATE s3grant.integrations SET authentication_type = 'password' WHERE id = 1", "23514", "authentication_type", "authentication_type: 'password' must be accessKey or auto" },
	{ "UPDATE s3grant.integrations SET authentication_type = 'accessKey' WHERE id = 1", "23514", "access_key_id", "access_key_id: must be an access key id" },
	{ "UPDATE s3grant.integrations SET authentication_type = 'accessKey', access_key_id = 'AKIA1', secret_access_key = 'plain' WHERE id = 1", "23514", "secret_access_key", "must be an encrypted envelope" },
	{ DS("1", "a/../b"), "23514", "prefix", "prefix: 'a/../b' has a \".\" or \"..\" segment" },
	{ DS("1", "./b"), "23514", "prefix", "has a \".\" or \"..\" segment" },
	{ DS("1", "a//b"), "23514", "prefix", "prefix: 'a//b' has an empty path segment" },
	{ DS("1", "//a"), "23514", "prefix", "has an empty path segment" },
	{ DS("1", "a/*"), "23514", "prefix", "contains \"*\"" },
	{ DS("1", "s3://elsewhere/x"), "23514", "prefix", "prefix: 's3://elsewhere/x' is outside the location scope s3://research-data" },
	{ DS("1", "s3://research-data-2/x"), "23514", "prefix", "is outside the location scope" },
	{ DS("2", ""), "23514", "prefix", "prefix: must name a bucket when the location scope is s3://" },
	{ DS("2", "NO_SUCH/x"), "23514", "prefix", "is not a valid S3 bucket name" },
	{ DS("1", "demographics"), "23505", NULL, "data_sources_prefix_key" },
	{ DS("99", "x"), "23503", "integration_id", "integration_id: integration 99 does not exist" },
	{ USER("eve", "arn:aws:iam::123456789012:role/analyst"), "23505", "principal", "principal: the IAM role arn:aws:iam::123456789012:role/analyst already maps to another user" },
	{ USER("eve", "arn:aws:iam::12345:user/eve"), "23514", "principal", "is not an IAM user ARN" },
	{ USER("eve", "arn:aws:iam::123456789012:group/eve"), "23514", "principal", "principal: 'arn:aws:iam::123456789012:group/eve' is not an IAM user ARN" },
	{ USER("eve", "arn:aws:s3:::bucket"), "23514", "principal", "is not an IAM user ARN" },
	{ USER("eve", "94482488-3041-7026-18f3"), "23514", "principal", "or an Identity Center user id" },
	{ USER("eve", "d-9067642ac7/94482488-3041-7026-18f3-be45837cd0e4"), "23514", "principal", "or an Identity Center user id" },
	{ USER("", "arn:aws:iam::123456789012:user/x"), "23514", "username", "username: must be 1 to 256" },
	{ USER("alice", "arn:aws:iam::123456789012:user/x"), "23505", NULL, "users_username_key" },
	{ "INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES (1, 1, 'admin')", "23514", "access", "access: 'admin' must be read or write" },
	{ "INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES (1, 1, NULL)", "23514", "access", "access: NULL must be read or write" },
	{ "INSERT INTO s3grant.exports (local_day, status) VALUES ('2025-01-01', 'succeeded'), ('2025-01-01', 'succeeded')", "23505", NULL, "exports_schedule_day_key" },
};

static void test_constraints_reject_bad_input(void **state)
{
	PGconn *c = migrated(NULL);

	pgtest_exec(c, setup_sql);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		PGresult *res = PQexec(c, bc->sql);
		struct pgerr err;
		char both[1200];

		if (PQresultStatus(res) != PGRES_FATAL_ERROR)
			fail_msg("case %zu accepted: %s", i, bc->sql);
		pgerr_from_result(&err, c, res);
		PQclear(res);
		snprintf(both, sizeof(both), "%s %s", err.message, err.constraint);
		if (strcmp(err.sqlstate, bc->sqlstate) != 0 || !strstr(both, bc->message) ||
		    (bc->column && strcmp(err.column, bc->column) != 0))
			fail_msg("case %zu: %s\n  got %s [%s] %s (%s)", i, bc->sql, err.sqlstate,
				 err.column, err.message, err.constraint);
	}
	PQfinish(c);
}

struct good_case {
	const char *sql;
	const char *check;      /* query whose value must equal want */
	const char *want;
};

static const struct good_case good_cases[] = {
	{ DS("1", "s3://research-data/x/y/"), "SELECT prefix FROM s3grant.data_sources WHERE id = (SELECT max(id) FROM s3grant.data_sources)", "x/y" },
	{ DS("2", "/my-bucket/a/"), "SELECT prefix FROM s3grant.data_sources WHERE id = (SELECT max(id) FROM s3grant.data_sources)", "my-bucket/a" },
	{ USER("carol", "94482488-3041-7026-18f3-be45837cd0e4"), "SELECT principal_type FROM s3grant.users WHERE username = 'carol'", "directory_user" },
	{ USER("dave", "9067642ac7-94482488-3041-7026-18f3-be45837cd0e4"), "SELECT principal_type FROM s3grant.users WHERE username = 'dave'", "directory_user" },
	{ USER("Alice", "arn:aws:iam::123456789012:user/dept/Alice"), "SELECT principal_type FROM s3grant.users WHERE username = 'Alice'", "iam_user" },
	{ USER("frank", ""), "SELECT coalesce(principal_type, 'unset') FROM s3grant.users WHERE username = 'frank'", "unset" },
	{ "INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES (1, 1, 'write')", "SELECT access FROM s3grant.subscriptions", "write" },
	{ "UPDATE s3grant.integrations SET name = 'renamed' WHERE id = 1", "SELECT name FROM s3grant.integrations WHERE id = 1", "renamed" },
};

static void test_good_input_normalised(void **state)
{
	PGconn *c = migrated(NULL);

	pgtest_exec(c, setup_sql);
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		char *v;

		pgtest_exec(c, good_cases[i].sql);
		v = pgtest_value(c, good_cases[i].check);
		if (strcmp(v, good_cases[i].want) != 0)
			fail_msg("case %zu: got '%s' want '%s'", i, v, good_cases[i].want);
		x_free(v);
	}
	PQfinish(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_from_empty_and_rerun),
		cmocka_unit_test(test_check_refuses_older_and_newer),
		cmocka_unit_test(test_parallel_migrators),
		cmocka_unit_test(test_constraints_reject_bad_input),
		cmocka_unit_test(test_good_input_normalised),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
