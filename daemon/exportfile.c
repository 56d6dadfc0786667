/* exportfile.c — streaming NDJSON+gzip writer over server-side cursors. */
#include "daemon/exportfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yajl/yajl_gen.h>
#include <zlib.h>

#include "core/isotime.h"
#include "core/xalloc.h"

#define OUT_CHUNK 65536

static const char *const kind_names[EXPORTFILE_KIND_MAX] = {
	[EXPORTFILE_GRANTS] = "grants.ndjson.gz",
	[EXPORTFILE_USERS] = "users.ndjson.gz",
	[EXPORTFILE_DATA_SOURCES] = "data_sources.ndjson.gz",
	[EXPORTFILE_INTEGRATIONS] = "integrations.ndjson.gz",
	[EXPORTFILE_MANIFEST] = "manifest.json",
};

static const char *const record_types[EXPORTFILE_KIND_MAX] = {
	[EXPORTFILE_GRANTS] = "grant",
	[EXPORTFILE_USERS] = "user",
	[EXPORTFILE_DATA_SOURCES] = "dataSource",
	[EXPORTFILE_INTEGRATIONS] = "integration",
	[EXPORTFILE_MANIFEST] = "manifest",
};

const char *exportfile_kind_name(enum exportfile_kind k)
{
	return (unsigned)k < EXPORTFILE_KIND_MAX ? kind_names[k] : "?";
}

/* ---- the record types: SQL and the JSON key of each column --------------- */

enum col_type { C_STR, C_NUM, C_SUBS };

struct col {
	const char *key;        /* JSON key; NULL = consumed by the previous C_SUBS */
	enum col_type type;
};

#define ISO(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define S3PATH(loc, rel) "CASE WHEN " rel " = '' THEN " loc " WHEN " loc " = 's3://' THEN 's3://' || " rel \
	" ELSE " loc " || '/' || " rel " END"

struct record_spec {
	const char *sql;
	const struct col *cols;
	int ncols;
};

static const struct col grant_cols[] = {
	{ "grantId", C_STR }, { "grantArn", C_STR }, { "permission", C_STR }, { "granteeType", C_STR },
	{ "principal", C_STR }, { "userId", C_NUM }, { "username", C_STR }, { "integrationId", C_NUM },
	{ "integrationName", C_STR }, { "dataSourceId", C_NUM }, { "dataSourcePrefix", C_STR },
	{ "s3Path", C_STR }, { "locationId", C_STR }, { "subPrefix", C_STR }, { "since", C_STR },
	{ "lastSeen", C_STR }, { "subscriptions", C_SUBS }, { NULL, C_STR }, { NULL, C_STR },
};

static const char grant_sql[] =
	"SELECT g.grant_id, g.grant_arn, g.permission, g.grantee_type, g.grantee_id,"
	" u.id, u.username, i.id, i.name, d.id, d.prefix,"
	" coalesce(g.grant_scope, " S3PATH("i.location_path", "g.sub_prefix") "),"
	" g.location_id, g.sub_prefix, " ISO("coalesce(g.created_at, g.seen_at)") ", " ISO("g.seen_at") ","
	" s.id, s.access, " ISO("s.created_at")
	" FROM s3grant.grants g JOIN s3grant.integrations i ON i.id = g.integration_id"
	" LEFT JOIN s3grant.subscriptions s ON s.id = g.subscription_id"
	" LEFT JOIN s3grant.users u ON u.id = s.user_id"
	" LEFT JOIN s3grant.data_sources d ON d.id = s.data_source_id"
	" ORDER BY g.integration_id, g.grant_id";

static const struct col user_cols[] = {
	{ "id", C_NUM }, { "username", C_STR }, { "principal", C_STR }, { "principalType", C_STR },
	{ "createdAt", C_STR }, { "updatedAt", C_STR },
};

static const char user_sql[] =
	"SELECT id, username, principal, principal_type, " ISO("created_at") ", " ISO("updated_at")
	" FROM s3grant.users ORDER BY id";

static const struct col ds_cols[] = {
	{ "id", C_NUM }, { "integrationId", C_NUM }, { "name", C_STR }, { "prefix", C_STR },
	{ "s3Path", C_STR }, { "createdAt", C_STR },
};

static const char ds_sql[] =
	"SELECT d.id, d.integration_id, d.name, d.prefix, " S3PATH("i.location_path", "d.prefix") ", "
	ISO("d.created_at")
	" FROM s3grant.data_sources d JOIN s3grant.integrations i ON i.id = d.integration_id ORDER BY d.id";

/* Deliberately no access_key_id, secret_access_key, external_id. */
static const struct col int_cols[] = {
	{ "id", C_NUM }, { "name", C_STR }, { "status", C_STR }, { "awsAccountId", C_STR },
	{ "awsRegion", C_STR }, { "locationPath", C_STR }, { "locationRoleArn", C_STR },
	{ "authenticationType", C_STR }, { "roleToAssume", C_STR }, { "locationId", C_STR },
	{ "locationArn", C_STR }, { "instanceArn", C_STR }, { "createdAt", C_STR }, { "updatedAt", C_STR },
};

static const char int_sql[] =
	"SELECT id, name, status::text, aws_account_id, aws_region, location_path, location_role_arn,"
	" authentication_type, role_to_assume, location_id, location_arn, instance_arn, "
	ISO("created_at") ", " ISO("updated_at") " FROM s3grant.integrations ORDER BY id";

#define SPEC(sql, cols) { sql, cols, (int)(sizeof(cols) / sizeof(cols[0])) }
static const struct record_spec specs[EXPORTFILE_MANIFEST] = {
	[EXPORTFILE_GRANTS] = SPEC(grant_sql, grant_cols),
	[EXPORTFILE_USERS] = SPEC(user_sql, user_cols),
	[EXPORTFILE_DATA_SOURCES] = SPEC(ds_sql, ds_cols),
	[EXPORTFILE_INTEGRATIONS] = SPEC(int_sql, int_cols),
};

/* ---- output: deflate + hash + write ------------------------------------ */

struct sink {
	int fd;
	bool gzip;
	z_stream zs;
	EVP_MD_CTX *md;
	uint64_t bytes;
	unsigned char out[OUT_CHUNK];
};

static void __attribute__((format(printf, 3, 4))) fail(char *errbuf, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, n, fmt, ap);
	va_end(ap);
}

static int write_all(struct sink *s, const unsigned char *p, size_t n)
{
	EVP_DigestUpdate(s->md, p, n);
	s->bytes += n;
	while (n) {
		ssize_t w = write(s->fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sink_open(struct sink *s, const char *path, bool gzip, int level)
{
	memset(s, 0, sizeof(*s));
	s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s->fd < 0)
		return -errno;
	s->md = EVP_MD_CTX_new();
	if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		return S3G_EINVAL;
	s->gzip = gzip;
	if (gzip && deflateInit2(&s->zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		s->gzip = false;
		return -ENOMEM;
	}
	return 0;
}

static int deflate_run(struct sink *s, const void *data, size_t n, int flush)
{
	int r, zr;

	s->zs.next_in = (Bytef *)(uintptr_t)data;
	s->zs.avail_in = (uInt)n;
	do {
		s->zs.next_out = s->out;
		s->zs.avail_out = sizeof(s->out);
		zr = deflate(&s->zs, flush);
		if (zr == Z_STREAM_ERROR)
			return S3G_EINVAL;
		r = write_all(s, s->out, sizeof(s->out) - s->zs.avail_out);
		if (r < 0)
			return r;
	} while (s->zs.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

static int sink_write(struct sink *s, const void *data, size_t n)
{
	if (!s->gzip)
		return write_all(s, data, n);
	return deflate_run(s, data, n, Z_NO_FLUSH);
}

/* Finish: flush, hash out, close. Always releases the sink. */
static int sink_close(struct sink *s, struct exportfile_object *obj)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int r = 0;

	if (s->gzip) {
		r = deflate_run(s, NULL, 0, Z_FINISH);
		deflateEnd(&s->zs);
		s->gzip = false;
	}
	if (s->md) {
		if (r == 0 && obj && EVP_DigestFinal_ex(s->md, md, &mdlen) == 1 && mdlen == 32) {
			for (unsigned i = 0; i < 32; i++)
				snprintf(obj->sha256_hex + 2 * i, 3, "%02x", md[i]);
			EVP_EncodeBlock((unsigned char *)obj->sha256_b64, md, 32);
			obj->bytes = s->bytes;
		}
		EVP_MD_CTX_free(s->md);
		s->md = NULL;
	}
	if (s->fd >= 0 && close(s->fd) < 0 && r == 0)
		r = -errno;
	s->fd = -1;
	return r;
}

/* ---- one record file ----------------------------------------------------- */

static void gen_cell(yajl_gen g, const PGresult *res, int row, int col, enum col_type t)
{
	const char *v = PQgetvalue(res, row, col);

	if (PQgetisnull(res, row, col))
		yajl_gen_null(g);
	else if (t == C_NUM)
		yajl_gen_number(g, v, strlen(v));
	else
		yajl_gen_string(g, (const unsigned char *)v, strlen(v));
}

static void gen_row(yajl_gen g, const struct record_spec *sp, const PGresult *res, int row)
{
	yajl_gen_map_open(g);
	for (int c = 0; c < sp->ncols; c++) {
		const struct col *col = &sp->cols[c];

		if (!col->key)
			continue;
		yajl_gen_string(g, (const unsigned char *)col->key, strlen(col->key));
		if (col->type != C_SUBS) {
			gen_cell(g, res, row, c, col->type);
			continue;
		}
		/* subscriptions: [{id, access, since}] from this and the next two columns */
		yajl_gen_array_open(g);
		if (!PQgetisnull(res, row, c)) {
			yajl_gen_map_open(g);
			yajl_gen_string(g, (const unsigned char *)"id", 2);
			gen_cell(g, res, row, c, C_NUM);
			yajl_gen_string(g, (const unsigned char *)"access", 6);
			gen_cell(g, res, row, c + 1, C_STR);
			yajl_gen_string(g, (const unsigned char *)"since", 5);
			gen_cell(g, res, row, c + 2, C_STR);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
}

static bool cmd_ok(PGconn *conn, const char *sql, char *errbuf, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
		msg[strcspn(msg, "\n")] = '\0';
		fail(errbuf, errlen, "%.40s: %s", sql, msg);
	}
	PQclear(res);
	return ok;
}

static int write_records(PGconn *conn, enum exportfile_kind k, const struct exportfile_opts *o,
			 struct exportfile_object *obj, char *errbuf, size_t errlen)
{
	const struct record_spec *sp = &specs[k];
	char declare[2048], fetch[64];
	struct sink s;
	yajl_gen g = NULL;
	int r;

	snprintf(declare, sizeof(declare), "DECLARE exp_cur NO SCROLL CURSOR FOR %s", sp->sql);
	snprintf(fetch, sizeof(fetch), "FETCH %d FROM exp_cur", o->fetch_rows > 0 ? o->fetch_rows
		 : EXPORTFILE_FETCH_ROWS);
	r = sink_open(&s, obj->local_path, true, o->level > 0 ? o->level : 6);
	if (r < 0) {
		fail(errbuf, errlen, "%s: cannot create %s: %s", kind_names[k], obj->local_path, err_str(r));
		goto out;
	}
	if (!cmd_ok(conn, declare, errbuf, errlen)) {
		r = S3G_EPGQUERY;
		goto out;
	}
	g = yajl_gen_alloc(NULL);
	for (;;) {
		PGresult *res = PQexec(conn, fetch);
		int rows;

		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
			msg[strcspn(msg, "\n")] = '\0';
			fail(errbuf, errlen, "%s: %s", kind_names[k], msg);
			PQclear(res);
			r = PQstatus(conn) == CONNECTION_OK ? S3G_EPGQUERY : S3G_EPGCONN;
			goto out;
		}
		rows = PQntuples(res);
		if (PQnfields(res) != sp->ncols) {
			fail(errbuf, errlen, "%s: %d columns, expected %d", kind_names[k], PQnfields(res), sp->ncols);
			PQclear(res);
			r = S3G_EPARSE;
			goto out;
		}
		for (int i = 0; i < rows; i++) {
			const unsigned char *buf;
			size_t len;

			gen_row(g, sp, res, i);
			yajl_gen_get_buf(g, &buf, &len);
			r = sink_write(&s, buf, len);
			if (r == 0)
				r = sink_write(&s, "\n", 1);
			yajl_gen_clear(g);
			yajl_gen_reset(g, NULL);
			if (r < 0) {
				fail(errbuf, errlen, "%s: write: %s", kind_names[k], err_str(r));
				PQclear(res);
				goto out;
			}
			obj->rows++;
		}
		PQclear(res);
		if (rows == 0)
			break;
	}
	if (!cmd_ok(conn, "CLOSE exp_cur", errbuf, errlen)) {
		r = S3G_EPGQUERY;
		goto out;
	}
	r = 0;
out:
	if (g)
		yajl_gen_free(g);
	{
		int cr = sink_close(&s, r == 0 ? obj : NULL);

		if (r == 0 && cr < 0) {
			fail(errbuf, errlen, "%s: %s", kind_names[k], err_str(cr));
			r = cr;
		}
	}
	return r;
}

/* ---- manifest ------------------------------------------------------------ */

static void kv(yajl_gen g, const char *k, const char *v)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
	if (v)
		yajl_gen_string(g, (const unsigned char *)v, strlen(v));
	else
		yajl_gen_null(g);
}

static void kn(yajl_gen g, const char *k, long long v)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
	yajl_gen_integer(g, v);
}

static int write_manifest(const struct exportfile_opts *o, struct exportfile_result *res,
			  char *errbuf, size_t errlen)
{
	struct exportfile_object *m = &res->obj[EXPORTFILE_MANIFEST];
	char when[32];
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;
	struct sink s;
	int r;

	isotime_format(o->export_time_ms, 0, when);
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	yajl_gen_map_open(g);
	kn(g, "schemaVersion", EXPORTFILE_SCHEMA_VERSION);
	kv(g, "format", "ndjson+gzip");
	kv(g, "exportTime", when);
	kv(g, "tenantId", res->tenant_id);
	kv(g, "localDay", res->day);
	kv(g, "timeZone", o->time_zone && o->time_zone[0] ? o->time_zone : NULL);
	kv(g, "trigger", o->kind ? o->kind : "schedule");
	kv(g, "prefix", res->prefix);
	yajl_gen_string(g, (const unsigned char *)"files", 5);
	yajl_gen_array_open(g);
	for (int k = 0; k < EXPORTFILE_MANIFEST; k++) {
		const struct exportfile_object *ob = &res->obj[k];

		yajl_gen_map_open(g);
		kv(g, "name", kind_names[k]);
		kv(g, "recordType", record_types[k]);
		kv(g, "key", ob->key);
		kn(g, "rows", (long long)ob->rows);
		kn(g, "bytes", (long long)ob->bytes);
		kv(g, "sha256", ob->sha256_hex);
		kv(g, "sha256Base64", ob->sha256_b64);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &buf, &len);
	r = sink_open(&s, m->local_path, false, 0);
	if (r == 0)
		r = sink_write(&s, buf, len);
	{
		int cr = sink_close(&s, r == 0 ? m : NULL);

		if (r == 0)
			r = cr;
	}
	if (r < 0)
		fail(errbuf, errlen, "manifest.json: %s", err_str(r));
	yajl_gen_free(g);
	return r;
}

/* ---- produce --------------------------------------------------------------- */

char *exportfile_prefix(const char *path, int64_t day)
{
	char ds[16];
	int64_t y;
	unsigned m, d;
	size_t n;

	isotime_civil_from_days(day, &y, &m, &d);
	snprintf(ds, sizeof(ds), "%04d-%02u-%02u", (int)y, m, d);
	if (!path)
		path = "";
	while (*path == '/')
		path++;
	n = strlen(path);
	while (n && path[n - 1] == '/')
		n--;
	if (!n)
		return x_asprintf("access-summary/%s/", ds);
	return x_asprintf("%.*s/access-summary/%s/", (int)n, path, ds);
}

int exportfile_produce(PGconn *conn, const struct exportfile_opts *o, struct exportfile_result *ret,
		       char *errbuf, size_t errlen)
{
	struct exportfile_result res = { 0 };
	PGresult *pr;
	int64_t y;
	unsigned mo, d;
	int r = 0;
	bool in_tx = false;

	errbuf[0] = '\0';
	isotime_civil_from_days(o->day, &y, &mo, &d);
	snprintf(res.day, sizeof(res.day), "%04d-%02u-%02u", (int)y, mo, d);
	res.prefix = exportfile_prefix(o->path, o->day);
	if (mkdir(o->state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		fail(errbuf, errlen, "state directory %s: %s", o->state_dir, strerror(errno));
		goto out;
	}
	res.dir = x_asprintf("%s/export-%s-XXXXXX", o->state_dir, res.day);
	if (!mkdtemp(res.dir)) {
		r = -errno;
		fail(errbuf, errlen, "cannot create a temp directory under %s: %s", o->state_dir, strerror(errno));
		X_FREE(res.dir);
		goto out;
	}
	for (int k = 0; k < EXPORTFILE_KIND_MAX; k++) {
		res.obj[k].kind = (enum exportfile_kind)k;
		res.obj[k].local_path = x_asprintf("%s/%s", res.dir, kind_names[k]);
		res.obj[k].key = x_asprintf("%s%s", res.prefix, kind_names[k]);
		res.obj[k].content_type = k == EXPORTFILE_MANIFEST ? "application/json" : "application/gzip";
		res.obj[k].sha256_hex[0] = res.obj[k].sha256_b64[0] = '\0';
	}
	res.n = EXPORTFILE_KIND_MAX;

	if (!cmd_ok(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", errbuf, errlen)) {
		r = PQstatus(conn) == CONNECTION_OK ? S3G_EPGQUERY : S3G_EPGCONN;
		goto out;
	}
	in_tx = true;
	pr = PQexec(conn, "SELECT id::text FROM s3grant.tenant");
	if (PQresultStatus(pr) != PGRES_TUPLES_OK || PQntuples(pr) != 1) {
		fail(errbuf, errlen, "tenant: %s", PQntuples(pr) == 0 ? "no tenant row" : PQresultErrorMessage(pr));
		errbuf[strcspn(errbuf, "\n")] = '\0';
		PQclear(pr);
		r = S3G_EPGQUERY;
		goto out;
	}
	res.tenant_id = x_strdup(PQgetvalue(pr, 0, 0));
	PQclear(pr);
	for (int k = 0; k < EXPORTFILE_MANIFEST; k++) {
		r = write_records(conn, (enum exportfile_kind)k, o, &res.obj[k], errbuf, errlen);
		if (r < 0)
			goto out;
	}
	in_tx = false;
	if (!cmd_ok(conn, "COMMIT", errbuf, errlen)) {
		r = S3G_EPGQUERY;
		goto out;
	}
	r = write_manifest(o, &res, errbuf, errlen);
out:
	if (in_tx)
		PQclear(PQexec(conn, "ROLLBACK"));
	if (r < 0) {
		exportfile_cleanup(&res);
		return r;
	}
	*ret = res;
	return 0;
}

char *exportfile_objects_json(const struct exportfile_result *r)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;
	char *s;

	yajl_gen_array_open(g);
	for (size_t k = 0; k < r->n; k++) {
		yajl_gen_map_open(g);
		kv(g, "name", kind_names[r->obj[k].kind]);
		kv(g, "key", r->obj[k].key);
		kn(g, "rows", (long long)r->obj[k].rows);
		kn(g, "bytes", (long long)r->obj[k].bytes);
		kv(g, "sha256", r->obj[k].sha256_hex);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_get_buf(g, &buf, &len);
	s = x_strndup((const char *)buf, len);
	yajl_gen_free(g);
	return s;
}

void exportfile_cleanup(struct exportfile_result *r)
{
	if (!r)
		return;
	for (int k = 0; k < EXPORTFILE_KIND_MAX; k++) {
		if (r->obj[k].local_path)
			unlink(r->obj[k].local_path);
		x_free(r->obj[k].local_path);
		x_free(r->obj[k].key);
	}
	if (r->dir)
		rmdir(r->dir);
	x_free(r->dir);
	x_free(r->prefix);
	x_free(r->tenant_id);
	memset(r, 0, sizeof(*r));
}
