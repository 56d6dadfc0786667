#include "store/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char create_sql[] =
	"CREATE SCHEMA IF NOT EXISTS s3grant;\n"
	"CREATE TABLE IF NOT EXISTS s3grant.schema_migrations (\n"
	"  version int PRIMARY KEY,\n"
	"  name text NOT NULL,\n"
	"  applied_at timestamptz NOT NULL DEFAULT now())";

const char *schema_latest_name(void)
{
	return schema_migrations[schema_migrations_count - 1].name;
}

static int exec_ok(PGconn *conn, const char *sql, struct pgerr *err)
{
	PGresult *res = PQexec(conn, sql);
	int r = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgerr_from_result(err, conn, res);
		r = err ? pgerr_status(err) : S3G_EPGQUERY;
	}
	PQclear(res);
	return r;
}

/* Highest applied (version, name); version 0 when the table is absent or empty. */
static int read_state(PGconn *conn, struct schema_state *st, struct pgerr *err)
{
	PGresult *res;
	int r = 0;

	memset(st, 0, sizeof(*st));
	st->latest = schema_migrations_count;
	res = PQexec(conn, "SELECT to_regclass('s3grant.schema_migrations') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgerr_from_result(err, conn, res);
		r = err ? pgerr_status(err) : S3G_EPGQUERY;
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		goto out;
	PQclear(res);
	res = PQexec(conn, "SELECT version, name, count(*) OVER () FROM s3grant.schema_migrations "
			   "ORDER BY version DESC LIMIT 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgerr_from_result(err, conn, res);
		r = err ? pgerr_status(err) : S3G_EPGQUERY;
		goto out;
	}
	if (PQntuples(res) == 1) {
		st->version = atoi(PQgetvalue(res, 0, 0));
		snprintf(st->name, sizeof(st->name), "%s", PQgetvalue(res, 0, 1));
		st->applied = atoi(PQgetvalue(res, 0, 2));
	}
out:
	PQclear(res);
	return r;
}

int schema_status(PGconn *conn, struct schema_state *ret_state, struct pgerr *err)
{
	struct schema_state st;
	int r = read_state(conn, &st, err);

	if (r == 0)
		*ret_state = st;
	return r;
}

static int record(PGconn *conn, const struct schema_migration *m, struct pgerr *err)
{
	char v[16];
	const char *params[2] = { v, m->name };
	PGresult *res;
	int r = 0;

	snprintf(v, sizeof(v), "%d", m->version);
	res = PQexecParams(conn, "INSERT INTO s3grant.schema_migrations (version, name) VALUES ($1, $2)",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgerr_from_result(err, conn, res);
		r = err ? pgerr_status(err) : S3G_EPGQUERY;
	}
	PQclear(res);
	return r;
}

int schema_migrate(PGconn *conn, int target, int *ret_applied, struct pgerr *err)
{
	struct schema_state st;
	char lock[96];
	int r, applied = 0, in_tx = 0;

	if (target <= 0 || target > schema_migrations_count)
		target = schema_migrations_count;
	r = exec_ok(conn, "BEGIN", err);
	if (r < 0)
		goto out;
	in_tx = 1;
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)", (long long)SCHEMA_LOCK_KEY);
	r = exec_ok(conn, lock, err);
	if (r < 0)
		goto out;
	r = exec_ok(conn, "SET LOCAL client_min_messages = warning", err);
	if (r < 0)
		goto out;
	r = exec_ok(conn, create_sql, err);
	if (r < 0)
		goto out;
	r = read_state(conn, &st, err);
	if (r < 0)
		goto out;
	if (st.version > schema_migrations_count) {
		pgerr_set(err, "database schema is at migration %d (%s), newer than this binary knows "
			  "(latest %d, %s)", st.version, st.name, schema_migrations_count,
			  schema_latest_name());
		r = S3G_ESCHEMA;
		goto out;
	}
	for (int i = st.version; i < target; i++) {
		const struct schema_migration *m = &schema_migrations[i];

		r = exec_ok(conn, m->sql, err);
		if (r < 0) {
			if (err) {
				char msg[sizeof(err->message) + 160];

				snprintf(msg, sizeof(msg), "migration %d (%s) failed: %s", m->version,
					 m->name, err->message);
				snprintf(err->message, sizeof(err->message), "%.*s",
					 (int)sizeof(err->message) - 1, msg);
			}
			goto out;
		}
		r = record(conn, m, err);
		if (r < 0)
			goto out;
		applied++;
	}
	r = exec_ok(conn, "COMMIT", err);
	in_tx = 0;
	if (r < 0)
		goto out;
	*ret_applied = applied;
out:
	if (in_tx) {
		PGresult *res = PQexec(conn, "ROLLBACK");

		PQclear(res);
	}
	return r;
}

int schema_check(PGconn *conn, struct pgerr *err)
{
	struct schema_state st;
	int r = read_state(conn, &st, err);

	if (r < 0)
		return r;
	if (st.version == 0) {
		pgerr_set(err, "database has no s3grant schema; this binary needs migration %d (%s): "
			  "run s3grantctl db migrate", schema_migrations_count, schema_latest_name());
		return S3G_ESCHEMA;
	}
	if (st.version < schema_migrations_count) {
		pgerr_set(err, "database schema is at migration %d (%s); this binary needs migration "
			  "%d (%s): run s3grantctl db migrate", st.version, st.name,
			  st.version + 1, schema_migrations[st.version].name);
		return S3G_ESCHEMA;
	}
	if (st.version > schema_migrations_count) {
		pgerr_set(err, "database schema is at migration %d (%s), newer than this binary "
			  "knows (latest %d, %s): upgrade s3grantd", st.version, st.name,
			  schema_migrations_count, schema_latest_name());
		return S3G_ESCHEMA;
	}
	if (strcmp(st.name, schema_latest_name()) != 0) {
		pgerr_set(err, "database migration %d is named %s, this binary's is %s",
			  st.version, st.name, schema_latest_name());
		return S3G_ESCHEMA;
	}
	return 0;
}
