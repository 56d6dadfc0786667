/* s3grantctl datasources / users / subscriptions: thin, parameterised SQL;
 * the schema's triggers validate and answer with the field at fault. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

static int need(struct ctl *c, const char *v, const char *what)
{
	if (!v || !v[0])
		return ctl_fail(c, CTL_USAGE, "missing %s (see --help)", what);
	return CTL_OK;
}

static int print_one(struct ctl *c, PGresult *res)
{
	int code = ctl_print_rows(c, res);

	PQclear(res);
	return code;
}

int ctl_cmd_datasources(struct ctl *c, const char *sub)
{
	int code = CTL_OK;
	PGresult *res;

	if (sub && strcmp(sub, "add") == 0) {
		const char *p[3] = { c->integration, c->prefix, c->name };

		if ((code = need(c, c->integration, "--integration ID")) ||
		    (code = need(c, c->prefix, "--prefix PREFIX")))
			return code;
		res = ctl_query(c, &code,
			"WITH d AS (INSERT INTO s3grant.data_sources (integration_id, prefix, name)"
			" VALUES ($1::bigint, $2, $3) RETURNING id, integration_id, prefix, name)"
			" SELECT d.id, d.integration_id AS \"integrationId\", d.prefix, d.name,"
			" rtrim(i.location_path, '/') || CASE WHEN i.location_path = 's3://' THEN '' ELSE '/' END"
			" || d.prefix AS path FROM d JOIN s3grant.integrations i ON i.id = d.integration_id",
			3, p);
		return res ? print_one(c, res) : code;
	}
	if (sub && strcmp(sub, "list") == 0) {
		const char *p[1] = { c->integration };

		res = ctl_query(c, &code,
			"SELECT d.id, d.integration_id AS \"integrationId\", d.prefix, d.name,"
			" rtrim(i.location_path, '/') || CASE WHEN i.location_path = 's3://' THEN '' ELSE '/' END"
			" || d.prefix AS path FROM s3grant.data_sources d"
			" JOIN s3grant.integrations i ON i.id = d.integration_id"
			" WHERE $1::bigint IS NULL OR d.integration_id = $1::bigint ORDER BY d.id", 1, p);
		return res ? print_one(c, res) : code;
	}
	if (sub && strcmp(sub, "delete") == 0) {
		const char *p[1];

		if (c->argc != 1)
			return ctl_fail(c, CTL_USAGE, "usage: s3grantctl datasources delete ID");
		p[0] = c->argv[0];
		res = ctl_query(c, &code, "DELETE FROM s3grant.data_sources WHERE id = $1::bigint RETURNING id",
				1, p);
		if (!res)
			return code;
		if (PQntuples(res) == 0) {
			PQclear(res);
			return ctl_fail(c, CTL_NOTFOUND, "data source %s does not exist", p[0]);
		}
		return print_one(c, res);
	}
	return ctl_fail(c, CTL_USAGE, "usage: s3grantctl datasources add|list|delete");
}

int ctl_cmd_users(struct ctl *c, const char *sub)
{
	int code = CTL_OK;
	PGresult *res;

	if (sub && strcmp(sub, "set-principal") == 0) {
		const char *p[2];

		if (c->argc < 1 || c->argc > 2)
			return ctl_fail(c, CTL_USAGE, "usage: s3grantctl users set-principal USER [PRINCIPAL]");
		p[0] = c->argv[0];
		p[1] = c->argc == 2 ? c->argv[1] : NULL;
		res = ctl_query(c, &code,
			"INSERT INTO s3grant.users (username, principal) VALUES ($1, $2)"
			" ON CONFLICT (username) DO UPDATE SET principal = excluded.principal"
			" RETURNING id, username, principal, principal_type AS \"principalType\"", 2, p);
		return res ? print_one(c, res) : code;
	}
	if (sub && strcmp(sub, "list") == 0) {
		res = ctl_query(c, &code,
			"SELECT id, username, principal, principal_type AS \"principalType\""
			" FROM s3grant.users ORDER BY username", 0, NULL);
		return res ? print_one(c, res) : code;
	}
	return ctl_fail(c, CTL_USAGE, "usage: s3grantctl users set-principal|list");
}

int ctl_cmd_subscriptions(struct ctl *c, const char *sub)
{
	int code = CTL_OK;
	PGresult *res;

	if (sub && strcmp(sub, "add") == 0) {
		const char *p[3] = { c->user, c->data_source, c->access };

		if ((code = need(c, c->user, "--user USER")) ||
		    (code = need(c, c->data_source, "--data-source ID")) ||
		    (code = need(c, c->access, "--access read|write")))
			return code;
		res = ctl_query(c, &code, "SELECT 1 FROM s3grant.users WHERE username = $1", 1, p);
		if (!res)
			return code;
		if (PQntuples(res) == 0) {
			PQclear(res);
			return ctl_fail(c, CTL_NOTFOUND, "user %s does not exist (users set-principal creates it)",
					c->user);
		}
		PQclear(res);
		res = ctl_query(c, &code, "SELECT 1 FROM s3grant.data_sources WHERE id = $1::bigint", 1, p + 1);
		if (!res)
			return code;
		if (PQntuples(res) == 0) {
			PQclear(res);
			return ctl_fail(c, CTL_NOTFOUND, "data source %s does not exist", c->data_source);
		}
		PQclear(res);
		res = ctl_query(c, &code,
			"INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)"
			" SELECT u.id, $2::bigint, $3 FROM s3grant.users u WHERE u.username = $1"
			" ON CONFLICT (user_id, data_source_id) DO UPDATE SET access = excluded.access"
			" RETURNING id, $1::text AS username, data_source_id AS \"dataSourceId\", access, status",
			3, p);
		return res ? print_one(c, res) : code;
	}
	if (sub && strcmp(sub, "remove") == 0) {
		const char *p[2] = { c->user, c->data_source };

		if ((code = need(c, c->user, "--user USER")) ||
		    (code = need(c, c->data_source, "--data-source ID")))
			return code;
		res = ctl_query(c, &code,
			"DELETE FROM s3grant.subscriptions s USING s3grant.users u"
			" WHERE s.user_id = u.id AND u.username = $1 AND s.data_source_id = $2::bigint"
			" RETURNING s.id", 2, p);
		if (!res)
			return code;
		if (PQntuples(res) == 0) {
			PQclear(res);
			return ctl_fail(c, CTL_NOTFOUND, "no subscription of %s to data source %s", c->user,
					c->data_source);
		}
		return print_one(c, res);
	}
	if (sub && strcmp(sub, "list") == 0) {
		const char *p[2] = { c->user, c->data_source };

		res = ctl_query(c, &code,
			"SELECT s.id, u.username, s.data_source_id AS \"dataSourceId\", s.access, s.status, s.error"
			" FROM s3grant.subscriptions s JOIN s3grant.users u ON u.id = s.user_id"
			" WHERE ($1::text IS NULL OR u.username = $1)"
			" AND ($2::bigint IS NULL OR s.data_source_id = $2::bigint) ORDER BY s.id", 2, p);
		return res ? print_one(c, res) : code;
	}
	return ctl_fail(c, CTL_USAGE, "usage: s3grantctl subscriptions add|remove|list");
}
