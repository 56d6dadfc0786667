#include "store/export.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/isotime.h"
#include "core/xalloc.h"

static const char *const auth_names[EXPORTDB_AUTH_MAX] = {
	[EXPORTDB_AUTH_AUTO] = "auto",
	[EXPORTDB_AUTH_ACCESS_KEY] = "accessKey",
	[EXPORTDB_AUTH_ASSUME_ROLE] = "assumeRole",
};

static const char *const status_names[EXPORTDB_STATUS_MAX] = {
	[EXPORTDB_PENDING] = "pending",
	[EXPORTDB_RUNNING] = "running",
	[EXPORTDB_SUCCEEDED] = "succeeded",
	[EXPORTDB_FAILED] = "failed",
};

const char *exportdb_auth_name(enum exportdb_auth a)
{
	return (unsigned)a < EXPORTDB_AUTH_MAX ? auth_names[a] : "?";
}

const char *exportdb_status_name(enum exportdb_status s)
{
	return (unsigned)s < EXPORTDB_STATUS_MAX ? status_names[s] : "?";
}

void exportdb_config_free(struct exportdb_config *c)
{
	if (!c)
		return;
	x_free(c->bucket);
	x_free(c->region);
	x_free(c->path);
	x_free(c->access_key_id);
	if (c->secret_env)
		memset(c->secret_env, 0, c->secret_env_len);
	x_free(c->secret_env);
	x_free(c->role_arn);
	x_free(c->external_id);
	x_free(c->kms_key_id);
	x_free(c->time_zone);
	x_free(c->tenant_id);
	memset(c, 0, sizeof(*c));
}

/* ---- field checks ------------------------------------------------------- */

static int __attribute__((format(printf, 3, 4))) bad(char *msg, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, n, fmt, ap);
	va_end(ap);
	return S3G_EINVAL;
}

int exportdb_check_bucket(const char *b, char *msg, size_t n)
{
	size_t len = b ? strlen(b) : 0;

	if (len < 3 || len > 63)
		return bad(msg, n, "bucket: '%s' is not a valid S3 bucket name (3 to 63 characters)", b ? b : "");
	for (size_t i = 0; i < len; i++) {
		char ch = b[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
			return bad(msg, n, "bucket: '%s' is not a valid S3 bucket name (lowercase letters, digits, "
				   "'.' and '-' only)", b);
	}
	if (b[0] == '.' || b[0] == '-' || b[len - 1] == '.' || b[len - 1] == '-' || strstr(b, ".."))
		return bad(msg, n, "bucket: '%s' is not a valid S3 bucket name (must begin and end with a letter "
			   "or digit, no '..')", b);
	return 0;
}

int exportdb_check_region(const char *r, char *msg, size_t n)
{
	/* ^[a-z]{2}(-[a-z]+)+-[0-9]+$, as the table's trigger */
	const char *p = r;
	int groups = 0;

	if (!r || strlen(r) > 32)
		goto fail;
	for (int i = 0; i < 2; i++, p++)
		if (*p < 'a' || *p > 'z')
			goto fail;
	while (*p == '-' && p[1] >= 'a' && p[1] <= 'z') {
		p++;
		while (*p >= 'a' && *p <= 'z')
			p++;
		groups++;
	}
	if (!groups || *p != '-' || p[1] < '0' || p[1] > '9')
		goto fail;
	for (p++; *p; p++)
		if (*p < '0' || *p > '9')
			goto fail;
	return 0;
fail:
	return bad(msg, n, "region: '%s' is not an AWS region name such as us-east-1", r ? r : "");
}

static int iam_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       strchr("+=,.@_-", ch) != NULL;
}

int exportdb_check_role_arn(const char *arn, char *msg, size_t n)
{
	/* arn:aws(-[a-z]+)*:iam::<12 digits>:role[/path...]/NAME, NAME 1..64 characters */
	const char *p = arn, *last;
	size_t seg;

	if (!arn || strncmp(p, "arn:aws", 7) != 0)
		goto fail;
	p += 7;
	while (*p == '-') {
		p++;
		if (*p < 'a' || *p > 'z')
			goto fail;
		while (*p >= 'a' && *p <= 'z')
			p++;
	}
	if (strncmp(p, ":iam::", 6) != 0)
		goto fail;
	p += 6;
	for (int i = 0; i < 12; i++, p++)
		if (*p < '0' || *p > '9')
			goto fail;
	if (strncmp(p, ":role/", 6) != 0)
		goto fail;
	p += 5;
	last = p;
	while (*p == '/') {
		p++;
		seg = 0;
		while (*p && *p != '/' && iam_name_char(*p)) {
			p++;
			seg++;
		}
		if (!seg)
			goto fail;
		last = p - seg;
	}
	if (*p || p - last > 64)
		goto fail;
	return 0;
fail:
	return bad(msg, n, "roleArn: '%s' is not an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)",
		   arn ? arn : "");
}

int exportdb_check_path(const char *path, char *msg, size_t n)
{
	const char *p = path, *seg;

	if (!path)
		return 0;
	if (*p == '/')
		p++;
	if (strlen(path) > 512)
		return bad(msg, n, "path: '%.64s...' is longer than 512 bytes", path);
	while (*p) {
		seg = p;
		while (*p && *p != '/') {
			if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '*' || *p == '\\')
				return bad(msg, n, "path: '%s' contains a control character, '*' or '\\'", path);
			p++;
		}
		if (p == seg && *p == '/')
			return bad(msg, n, "path: '%s' has an empty segment ('//')", path);
		if ((p - seg == 1 && seg[0] == '.') || (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
			return bad(msg, n, "path: '%s' has a '.' or '..' segment", path);
		if (*p == '/')
			p++;
	}
	return 0;
}

int exportdb_check_time_zone(const char *zone, const char *dir, char *msg, size_t n)
{
	char path[PATH_MAX];
	struct stat st;

	if (!zone || !zone[0])
		return 0;   /* the host's zone */
	if (strlen(zone) > 64 || zone[0] == '/' || strstr(zone, "..") || strspn(zone,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-/") != strlen(zone))
		return bad(msg, n, "timezone: '%s' is not an IANA time zone name such as Europe/Berlin", zone);
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", zone);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return bad(msg, n, "timezone: unknown time zone '%s' (not in the zoneinfo database)", zone);
	return 0;
}

/* ---- days --------------------------------------------------------------- */

void exportdb_day_str(int64_t day, char out[16])
{
	int64_t y;
	unsigned m, d;

	isotime_civil_from_days(day, &y, &m, &d);
	snprintf(out, 16, "%04d-%02u-%02u", (int)y, m, d);
}

int exportdb_day_parse(const char *s, int64_t *ret_day)
{
	int y, m, d, used = 0;

	if (!s || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || used != 10 || s[10] ||
	    m < 1 || m > 12 || d < 1 || d > 31)
		return S3G_EINVAL;
	*ret_day = isotime_days_from_civil(y, (unsigned)m, (unsigned)d);
	return 0;
}

/* ---- queries ------------------------------------------------------------ */

static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params, int *ret_status,
		     struct pgerr *err)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	struct pgerr local;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
		*ret_status = 0;
		return res;
	}
	if (!err)
		err = &local;
	pgerr_from_result(err, conn, res);
	*ret_status = pgerr_status(err);
	PQclear(res);
	return NULL;
}

static char *dup_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : x_strdup(PQgetvalue(res, row, col));
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static void ms_str(int64_t ms, char out[32])
{
	snprintf(out, 32, "%lld", (long long)ms);
}

#define TS(p) "to_timestamp(" p "::float8 / 1000)"
#define MS(c) "(extract(epoch FROM " c ") * 1000)::bigint"

int exportdb_tenant_id(PGconn *conn, char **ret_id, struct pgerr *err)
{
	int r;
	PGresult *res = run(conn, "SELECT id FROM s3grant.tenant", 0, NULL, &r, err);

	if (!res)
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		if (err)
			pgerr_set(err, "the tenant row is missing (run s3grantctl db migrate)");
		return S3G_ENOTFOUND;
	}
	*ret_id = x_strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int exportdb_config_load(PGconn *conn, struct exportdb_config *ret_cfg, struct pgerr *err)
{
	struct exportdb_config c = { 0 };
	PGresult *res;
	const char *hex;
	int r = 0;

	res = run(conn,
		  "SELECT e.enabled, e.bucket, e.region, e.path, e.authentication_type, e.access_key_id,"
		  " encode(e.secret_access_key, 'hex'), e.role_arn, coalesce(e.external_id, t.id::text),"
		  " e.kms_key_arn, extract(epoch FROM e.time_of_day)::int, e.time_zone, t.id"
		  " FROM s3grant.export_config e, s3grant.tenant t", 0, NULL, &r, err);
	if (!res)
		return r;
	if (PQntuples(res) != 1) {
		if (err)
			pgerr_set(err, "no export is configured (s3grantctl export-config set)");
		r = S3G_ENOTFOUND;
		goto out;
	}
	c.enabled = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	c.bucket = x_strdup(PQgetvalue(res, 0, 1));
	c.region = x_strdup(PQgetvalue(res, 0, 2));
	c.path = x_strdup(PQgetvalue(res, 0, 3));
	c.auth = EXPORTDB_AUTH_AUTO;
	for (int i = 0; i < EXPORTDB_AUTH_MAX; i++)
		if (strcmp(PQgetvalue(res, 0, 4), auth_names[i]) == 0)
			c.auth = (enum exportdb_auth)i;
	c.access_key_id = dup_or_null(res, 0, 5);
	hex = PQgetisnull(res, 0, 6) ? NULL : PQgetvalue(res, 0, 6);
	if (hex) {
		size_t n = strlen(hex) / 2;

		c.secret_env = x_malloc(n ? n : 1);
		c.secret_env_len = n;
		for (size_t i = 0; i < n; i++)
			c.secret_env[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
	}
	c.role_arn = dup_or_null(res, 0, 7);
	c.external_id = dup_or_null(res, 0, 8);
	c.kms_key_id = dup_or_null(res, 0, 9);
	c.time_of_day = PQgetisnull(res, 0, 10) ? -1 : atoi(PQgetvalue(res, 0, 10));
	c.time_zone = dup_or_null(res, 0, 11);
	c.tenant_id = x_strdup(PQgetvalue(res, 0, 12));
	*ret_cfg = c;
out:
	PQclear(res);
	return r;
}

int exportdb_config_save(PGconn *conn, const struct exportdb_config *c, struct pgerr *err)
{
	char *hex = NULL, tod[16] = "";
	PGresult *res;
	int r;

	if (c->secret_env) {
		hex = x_malloc(2 * c->secret_env_len + 3);
		hex[0] = '\\';
		hex[1] = 'x';
		for (size_t i = 0; i < c->secret_env_len; i++)
			snprintf(hex + 2 + 2 * i, 3, "%02x", c->secret_env[i]);
	}
	if (c->time_of_day >= 0)
		snprintf(tod, sizeof(tod), "%02d:%02d:%02d", c->time_of_day / 3600, c->time_of_day / 60 % 60,
			 c->time_of_day % 60);
	{
		const char *p[12] = {
			c->enabled ? "t" : "f", c->bucket, c->region, c->path ? c->path : "",
			exportdb_auth_name(c->auth), c->access_key_id, hex, c->role_arn, c->external_id,
			c->kms_key_id, tod[0] ? tod : NULL, c->time_zone,
		};

		/* accessKey without a new secret keeps the stored one */
		res = run(conn,
			  "INSERT INTO s3grant.export_config AS e (enabled, bucket, region, path,"
			  " authentication_type, access_key_id, secret_access_key, role_arn, external_id,"
			  " kms_key_arn, time_of_day, time_zone)"
			  " VALUES ($1::boolean, $2, $3, $4, $5, $6, $7::bytea, $8, $9, $10, $11::time, $12)"
			  " ON CONFLICT (singleton) DO UPDATE SET enabled = excluded.enabled,"
			  " bucket = excluded.bucket, region = excluded.region, path = excluded.path,"
			  " authentication_type = excluded.authentication_type,"
			  " access_key_id = excluded.access_key_id,"
			  " secret_access_key = CASE WHEN excluded.authentication_type = 'accessKey'"
			  "   THEN coalesce(excluded.secret_access_key, e.secret_access_key) END,"
			  " role_arn = excluded.role_arn, external_id = excluded.external_id,"
			  " kms_key_arn = excluded.kms_key_arn, time_of_day = excluded.time_of_day,"
			  " time_zone = excluded.time_zone", 12, p, &r, err);
	}
	PQclear(res);
	x_free(hex);
	return r;
}

static enum exportdb_status parse_status(const char *s)
{
	for (int i = 0; i < EXPORTDB_STATUS_MAX; i++)
		if (strcmp(s, status_names[i]) == 0)
			return (enum exportdb_status)i;
	return EXPORTDB_FAILED;
}

int exportdb_last_scheduled(PGconn *conn, struct exportdb_row *ret_row, struct pgerr *err)
{
	struct exportdb_row row = { 0 };
	PGresult *res;
	int r;

	res = run(conn,
		  "SELECT id, local_day::text, status, attempts, coalesce(" MS("next_retry_at") ", 0),"
		  " coalesce(" MS("lease_until") ", 0), coalesce(error, '')"
		  " FROM s3grant.exports WHERE kind = 'schedule' ORDER BY local_day DESC LIMIT 1",
		  0, NULL, &r, err);
	if (!res)
		return r;
	if (PQntuples(res) == 0) {
		r = S3G_ENOTFOUND;
		goto out;
	}
	row.id = atoll(PQgetvalue(res, 0, 0));
	r = exportdb_day_parse(PQgetvalue(res, 0, 1), &row.day);
	if (r < 0)
		goto out;
	row.status = parse_status(PQgetvalue(res, 0, 2));
	row.attempts = atoi(PQgetvalue(res, 0, 3));
	row.next_retry_ms = atoll(PQgetvalue(res, 0, 4));
	row.lease_until_ms = atoll(PQgetvalue(res, 0, 5));
	snprintf(row.error, sizeof(row.error), "%s", PQgetvalue(res, 0, 6));
	*ret_row = row;
out:
	PQclear(res);
	return r;
}

int exportdb_pending_requests(PGconn *conn, int *ret_n, struct pgerr *err)
{
	int r;
	PGresult *res = run(conn, "SELECT count(*) FROM s3grant.exports WHERE status = 'pending'", 0, NULL,
			    &r, err);

	if (!res)
		return r;
	*ret_n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

static int claim(PGconn *conn, const char *sql, int64_t day, const char *who, int64_t now_ms,
		 int64_t lease_ms, int none, struct exportdb_claim *ret_claim, struct pgerr *err)
{
	char ds[16], now[32], lease[32];
	const char *p[4] = { ds, who, now, lease };
	PGresult *res;
	int r;

	exportdb_day_str(day, ds);
	ms_str(now_ms, now);
	ms_str(lease_ms, lease);
	res = run(conn, sql, 4, p, &r, err);
	if (!res)
		return r;
	if (PQntuples(res) != 1) {
		r = none;
	} else {
		ret_claim->id = atoll(PQgetvalue(res, 0, 0));
		ret_claim->attempts = atoi(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return r;
}

int exportdb_claim_day(PGconn *conn, int64_t day, const char *who, int64_t now_ms, int64_t lease_ms,
		       struct exportdb_claim *ret_claim, struct pgerr *err)
{
	return claim(conn, "SELECT id, attempts FROM s3grant.claim_export_day($1::date, $2, " TS("$3")
		     ", $4::bigint)", day, who, now_ms, lease_ms, S3G_ECONFLICT, ret_claim, err);
}

int exportdb_claim_request(PGconn *conn, int64_t day, const char *who, int64_t now_ms, int64_t lease_ms,
			   struct exportdb_claim *ret_claim, struct pgerr *err)
{
	return claim(conn, "SELECT id, attempts FROM s3grant.claim_export_request($1::date, $2, " TS("$3")
		     ", $4::bigint)", day, who, now_ms, lease_ms, S3G_ENOTFOUND, ret_claim, err);
}

int exportdb_finish(PGconn *conn, long long id, const char *who, int64_t now_ms,
		    const struct exportdb_outcome *o, struct pgerr *err)
{
	char ids[32], now[32], retry[32], rows[32];
	PGresult *res;
	int r;

	snprintf(ids, sizeof(ids), "%lld", id);
	ms_str(now_ms, now);
	ms_str(o->next_retry_ms, retry);
	snprintf(rows, sizeof(rows), "%lld", o->rows);
	{
		const char *p[10] = { ids, who, now, o->ok ? "t" : "f", o->error,
				      !o->ok && o->next_retry_ms > 0 ? retry : NULL, o->prefix, o->manifest_key,
				      o->rows >= 0 ? rows : NULL, o->objects_json };

		res = run(conn, "SELECT s3grant.finish_export($1::bigint, $2, " TS("$3") ", $4::boolean, $5, "
			  TS("$6") ", $7, $8, $9::bigint, $10::jsonb)", 10, p, &r, err);
	}
	if (!res)
		return r;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		if (err)
			pgerr_set(err, "export %lld is no longer held by %s", id, who);
		r = S3G_ECONFLICT;
	}
	PQclear(res);
	return r;
}

int exportdb_request(PGconn *conn, const char *who, long long *ret_id, struct pgerr *err)
{
	const char *p[1] = { who };
	PGresult *res;
	int r;

	res = run(conn, "SELECT s3grant.request_export($1)", 1, p, &r, err);
	if (!res)
		return r;
	*ret_id = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}
