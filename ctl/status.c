/* s3grantctl status: per integration — status, desired vs actual grants,
 * pending work, errors, last resync, quota use, the daemon holding it — and
 * the subscriptions in error. Reads only; the daemon writes these rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quota.h"
#include "ctl/ctl.h"
#include "store/recon.h"

#define SUB_ERRORS_MAX "1000"   /* listed per integration; the counts are always exact */
#define TEXT_ERRORS_MAX 20

#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

enum {
	S_ID, S_NAME, S_STATUS, S_MESSAGE, S_PATH, S_LOCID, S_ACCOUNT, S_REGION, S_DESIRED, S_ACTUAL, S_QUEUED,
	S_INTENTS, S_SUBS, S_REJECTED, S_ERRORS, S_QUOTA, S_RESYNC, S_LASTERR, S_LASTERR_AT, S_QUSED,
	S_QKNOWN, S_PDONE, S_PTOTAL, S_WRITER_PID, S_WRITER_APP,
};

static const char status_sql[] =
	"SELECT i.id, i.name, i.status::text, i.status_message, i.location_path, i.location_id,"
	" i.aws_account_id, i.aws_region, h.desired_count,"
	" (SELECT count(*) FROM s3grant.grants g WHERE g.integration_id = i.id),"
	" (SELECT count(*) FROM s3grant.change_queue q WHERE q.integration_id = i.id),"
	" (SELECT count(*) FROM s3grant.grant_intents gi WHERE gi.integration_id = i.id),"
	" ss.total, ss.rejected, ss.errors, ss.quota,"
	" " ISO("h.last_resync_at") ", h.last_error, " ISO("h.last_error_at") ","
	" coalesce(h.instance_grants, (SELECT count(*) FROM s3grant.grants g JOIN s3grant.integrations i2"
	"   ON i2.id = g.integration_id WHERE i2.aws_account_id = i.aws_account_id"
	"   AND i2.aws_region = i.aws_region)),"
	" h.instance_grants IS NOT NULL, h.progress_done, h.progress_total, w.pid, w.application_name"
	" FROM s3grant.integrations i"
	" LEFT JOIN s3grant.integration_health h ON h.integration_id = i.id"
	" LEFT JOIN LATERAL (SELECT count(*) AS total, count(*) FILTER (WHERE s.status = 'rejected') AS rejected,"
	"   count(*) FILTER (WHERE s.status = 'error') AS errors,"
	"   count(*) FILTER (WHERE s.status = 'quota') AS quota"
	"   FROM s3grant.subscriptions s JOIN s3grant.data_sources d ON d.id = s.data_source_id"
	"   WHERE d.integration_id = i.id) ss ON true"
	" LEFT JOIN LATERAL (SELECT l.pid, a.application_name FROM pg_locks l"
	"   LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
	"   WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $2::bigint::oid"
	"   AND l.objid = (i.id & 4294967295)::oid AND l.objsubid = 2"
	"   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1) w ON true"
	" WHERE ($1::bigint IS NULL AND i.status <> 'deleted') OR i.id = $1::bigint"
	" ORDER BY i.id";

enum { E_IID, E_SID, E_USER, E_PREFIX, E_ACCESS, E_STATUS, E_ERROR, E_AT, E_RANK };

static const char errors_sql[] =
	"SELECT * FROM (SELECT d.integration_id, s.id, u.username, d.prefix, s.access, s.status, s.error,"
	" " ISO("s.error_at") ", row_number() OVER (PARTITION BY d.integration_id ORDER BY s.id)"
	" FROM s3grant.subscriptions s JOIN s3grant.data_sources d ON d.id = s.data_source_id"
	" JOIN s3grant.users u ON u.id = s.user_id JOIN s3grant.integrations i ON i.id = d.integration_id"
	" WHERE s.status IN ('rejected', 'error', 'quota')"
	" AND (($1::bigint IS NULL AND i.status <> 'deleted') OR i.id = $1::bigint)) x"
	" WHERE row_number <= " SUB_ERRORS_MAX " ORDER BY integration_id, id";

static const char *v(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static long long n(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? -1 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void gen_int_or_null(yajl_gen g, const char *k, long long x)
{
	ctl_gen_str(g, k);
	if (x < 0)
		yajl_gen_null(g);
	else
		yajl_gen_integer(g, x);
}

static void gen_errors(yajl_gen g, const PGresult *e, const char *iid)
{
	ctl_gen_str(g, "subscriptionErrors");
	yajl_gen_array_open(g);
	for (int j = 0; j < PQntuples(e); j++) {
		if (strcmp(v(e, j, E_IID), iid) != 0)
			continue;
		yajl_gen_map_open(g);
		gen_int_or_null(g, "subscriptionId", n(e, j, E_SID));
		ctl_gen_kv(g, "user", v(e, j, E_USER));
		ctl_gen_kv(g, "dataSource", v(e, j, E_PREFIX));
		ctl_gen_kv(g, "access", v(e, j, E_ACCESS));
		ctl_gen_kv(g, "status", v(e, j, E_STATUS));
		ctl_gen_kv(g, "error", v(e, j, E_ERROR));
		ctl_gen_kv(g, "at", v(e, j, E_AT));
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

static void gen_one(yajl_gen g, const PGresult *r, int i, const PGresult *e)
{
	long long used = n(r, i, S_QUSED);
	enum quota_level lvl = quota_level((size_t)used, 0);

	yajl_gen_map_open(g);
	gen_int_or_null(g, "id", n(r, i, S_ID));
	ctl_gen_kv(g, "name", v(r, i, S_NAME));
	ctl_gen_kv(g, "status", v(r, i, S_STATUS));
	ctl_gen_kv(g, "statusMessage", v(r, i, S_MESSAGE));
	ctl_gen_kv(g, "location", v(r, i, S_PATH));
	ctl_gen_kv(g, "locationId", v(r, i, S_LOCID));
	ctl_gen_kv(g, "awsAccountId", v(r, i, S_ACCOUNT));
	ctl_gen_kv(g, "awsRegion", v(r, i, S_REGION));
	ctl_gen_str(g, "grants");
	yajl_gen_map_open(g);
	gen_int_or_null(g, "desired", n(r, i, S_DESIRED));
	gen_int_or_null(g, "actual", n(r, i, S_ACTUAL));
	yajl_gen_map_close(g);
	ctl_gen_str(g, "pending");
	yajl_gen_map_open(g);
	gen_int_or_null(g, "queued", n(r, i, S_QUEUED));
	gen_int_or_null(g, "createIntents", n(r, i, S_INTENTS));
	yajl_gen_map_close(g);
	if (n(r, i, S_PTOTAL) > 0) {
		ctl_gen_str(g, "progress");
		yajl_gen_map_open(g);
		gen_int_or_null(g, "done", n(r, i, S_PDONE));
		gen_int_or_null(g, "total", n(r, i, S_PTOTAL));
		yajl_gen_map_close(g);
	}
	ctl_gen_kv(g, "lastResyncAt", v(r, i, S_RESYNC));
	ctl_gen_kv(g, "lastError", v(r, i, S_LASTERR));
	ctl_gen_kv(g, "lastErrorAt", v(r, i, S_LASTERR_AT));
	ctl_gen_str(g, "quota");
	yajl_gen_map_open(g);
	gen_int_or_null(g, "used", used);
	gen_int_or_null(g, "limit", QUOTA_GRANTS_PER_INSTANCE);
	ctl_gen_str(g, "percent");
	yajl_gen_double(g, (double)(used * 1000 / QUOTA_GRANTS_PER_INSTANCE) / 10.0);
	ctl_gen_kv(g, "level", quota_level_name(lvl));
	ctl_gen_kv(g, "source", strcmp(v(r, i, S_QKNOWN), "t") == 0 ? "aws" : "database");
	yajl_gen_map_close(g);
	ctl_gen_str(g, "writer");
	if (v(r, i, S_WRITER_PID)) {
		yajl_gen_map_open(g);
		gen_int_or_null(g, "pid", n(r, i, S_WRITER_PID));
		ctl_gen_kv(g, "applicationName", v(r, i, S_WRITER_APP));
		yajl_gen_map_close(g);
	} else {
		yajl_gen_null(g);
	}
	ctl_gen_str(g, "subscriptions");
	yajl_gen_map_open(g);
	gen_int_or_null(g, "total", n(r, i, S_SUBS));
	gen_int_or_null(g, "rejected", n(r, i, S_REJECTED));
	gen_int_or_null(g, "error", n(r, i, S_ERRORS));
	gen_int_or_null(g, "quota", n(r, i, S_QUOTA));
	yajl_gen_map_close(g);
	gen_errors(g, e, v(r, i, S_ID));
	yajl_gen_map_close(g);
}

static void print_one(const PGresult *r, int i, const PGresult *e)
{
	long long used = n(r, i, S_QUSED), problems = n(r, i, S_REJECTED) + n(r, i, S_ERRORS) + n(r, i, S_QUOTA);
	enum quota_level lvl = quota_level((size_t)used, 0);
	int shown = 0;

	printf("integration %s \"%s\" (%s, account %s, %s): %s%s%s\n", v(r, i, S_ID), v(r, i, S_NAME),
	       v(r, i, S_PATH), v(r, i, S_ACCOUNT), v(r, i, S_REGION), v(r, i, S_STATUS),
	       v(r, i, S_MESSAGE) ? " — " : "", v(r, i, S_MESSAGE) ? v(r, i, S_MESSAGE) : "");
	if (n(r, i, S_DESIRED) >= 0)
		printf("  grants         desired %lld, actual %lld\n", n(r, i, S_DESIRED), n(r, i, S_ACTUAL));
	else
		printf("  grants         desired (not reconciled yet), actual %lld\n", n(r, i, S_ACTUAL));
	printf("  pending        %lld queued change%s, %lld create intent%s\n", n(r, i, S_QUEUED),
	       n(r, i, S_QUEUED) == 1 ? "" : "s", n(r, i, S_INTENTS), n(r, i, S_INTENTS) == 1 ? "" : "s");
	if (n(r, i, S_PTOTAL) > 0)
		printf("  progress       reconciling %lld/%lld grants\n", n(r, i, S_PDONE), n(r, i, S_PTOTAL));
	printf("  last resync    %s\n", v(r, i, S_RESYNC) ? v(r, i, S_RESYNC) : "never");
	if (v(r, i, S_LASTERR))
		printf("  last error     %s (%s)\n", v(r, i, S_LASTERR), v(r, i, S_LASTERR_AT));
	printf("  quota          %lld / %d grants in the instance (%.1f %%)%s%s\n", used, QUOTA_GRANTS_PER_INSTANCE,
	       (double)(used * 1000 / QUOTA_GRANTS_PER_INSTANCE) / 10.0,
	       strcmp(v(r, i, S_QKNOWN), "t") == 0 ? "" : " [counted from the database]",
	       lvl == QUOTA_FULL ? " — FULL: creates are refused" :
	       lvl == QUOTA_WARN ? " — WARNING: 90 % or more used" : "");
	if (v(r, i, S_WRITER_PID))
		printf("  writer         backend pid %s (%s)\n", v(r, i, S_WRITER_PID),
		       v(r, i, S_WRITER_APP) && v(r, i, S_WRITER_APP)[0] ? v(r, i, S_WRITER_APP) : "?");
	else
		printf("  writer         none (no daemon holds this integration)\n");
	printf("  subscriptions  %lld: %lld rejected, %lld error, %lld refused by quota\n", n(r, i, S_SUBS),
	       n(r, i, S_REJECTED), n(r, i, S_ERRORS), n(r, i, S_QUOTA));
	for (int j = 0; j < PQntuples(e); j++) {
		if (strcmp(v(e, j, E_IID), v(r, i, S_ID)) != 0)
			continue;
		if (shown++ == TEXT_ERRORS_MAX)
			break;
		printf("    subscription %s (%s → %s, %s): %s: %s\n", v(e, j, E_SID), v(e, j, E_USER),
		       v(e, j, E_PREFIX), v(e, j, E_ACCESS), v(e, j, E_STATUS),
		       v(e, j, E_ERROR) ? v(e, j, E_ERROR) : "(no message)");
	}
	if (problems > TEXT_ERRORS_MAX)
		printf("    ... and %lld more (s3grantctl status --json)\n", problems - TEXT_ERRORS_MAX);
}

int ctl_cmd_status(struct ctl *c)
{
	char cls[24];
	const char *p[2] = { c->integration, cls };
	PGresult *r = NULL, *e = NULL;
	int code = CTL_OK;

	if (c->integration && strspn(c->integration, "0123456789") != strlen(c->integration))
		return ctl_fail(c, CTL_BADINPUT, "--integration: '%s' is not an integration id", c->integration);
	snprintf(cls, sizeof(cls), "%d", RECON_LOCK_CLASS);
	r = ctl_query(c, &code, status_sql, 2, p);
	if (!r)
		goto out;
	if (c->integration && PQntuples(r) == 0) {
		code = ctl_fail(c, CTL_NOTFOUND, "Integration with ID %s not found.", c->integration);
		goto out;
	}
	e = ctl_query(c, &code, errors_sql, 1, p);
	if (!e)
		goto out;
	if (c->json) {
		yajl_gen g = ctl_gen();

		yajl_gen_map_open(g);
		ctl_gen_str(g, "integrations");
		yajl_gen_array_open(g);
		for (int i = 0; i < PQntuples(r); i++)
			gen_one(g, r, i, e);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		ctl_gen_print(g);
	} else {
		if (PQntuples(r) == 0)
			printf("no integrations\n");
		for (int i = 0; i < PQntuples(r); i++)
			print_one(r, i, e);
	}
out:
	PQclear(r);
	PQclear(e);
	return code;
}
