/* Export content: the produced files gunzip, parse and match the database
 * row for row; the manifest's counts and hashes verify; no secret leaks;
 * the day claim admits exactly one of two racing producers.
 * S3G_NEEDS: pg
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yajl/yajl_tree.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/isotime.h"
#include "core/xalloc.h"
#include "daemon/exportfile.h"
#include "export_fixture.h"
#include "store/export.h"

#define NGRANTS 37

static char *ci;

static int setup(void **state)
{
	ci = fx_db(NGRANTS);
	return 0;
}

static int teardown(void **state)
{
	X_FREE(ci);
	return 0;
}

/* Whole file, gunzipped when gz. */
static char *slurp(const char *path, int gz, size_t *ret_n)
{
	struct buf b;
	char chunk[8192];
	int n;
	gzFile f = gzopen(path, "rb");

	assert_non_null(f);
	buf_init(&b, 64 << 20);
	while ((n = gzread(f, chunk, sizeof(chunk))) > 0)
		assert_int_equal(buf_append(&b, chunk, (size_t)n), 0);
	assert_true(n == 0);
	gzclose(f);
	*ret_n = b.len;
	return buf_steal(&b);
}

static const char *jstr(yajl_val obj, const char *key)
{
	const char *path[] = { key, NULL };
	yajl_val v = yajl_tree_get(obj, path, yajl_t_any);

	if (!v || YAJL_IS_NULL(v))
		return NULL;
	if (YAJL_IS_NUMBER(v))
		return YAJL_GET_NUMBER(v);
	assert_true(YAJL_IS_STRING(v));
	return YAJL_GET_STRING(v);
}

static void assert_same(const char *want, const char *got, const char *what, int row)
{
	if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
		fail_msg("%s row %d: want %s, got %s", what, row, want ? want : "null", got ? got : "null");
}

/* Compare every NDJSON line of file with the rows of sql (columns = keys). */
static void compare(PGconn *c, const char *file, const char *sql, const char *const *keys, int nkeys,
		    uint64_t *ret_rows)
{
	size_t n;
	char *text = slurp(file, 1, &n), *line = text, *nl;
	PGresult *res = PQexec(c, sql);
	int row = 0;

	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	while ((nl = memchr(line, '\n', n - (size_t)(line - text)))) {
		char err[256];
		yajl_val v;

		*nl = '\0';
		v = yajl_tree_parse(line, err, sizeof(err));
		if (!v)
			fail_msg("%s line %d does not parse: %s", file, row + 1, err);
		assert_true(YAJL_IS_OBJECT(v));
		assert_true(row < PQntuples(res));
		for (int k = 0; k < nkeys; k++)
			assert_same(PQgetisnull(res, row, k) ? NULL : PQgetvalue(res, row, k), jstr(v, keys[k]),
				    keys[k], row);
		yajl_tree_free(v);
		row++;
		line = nl + 1;
	}
	assert_int_equal((size_t)(line - text), n);   /* every record ends in \n */
	assert_int_equal(row, PQntuples(res));
	*ret_rows = (uint64_t)row;
	PQclear(res);
	x_free(text);
}

static void sha256_file(const char *path, char hex[65], char b64[45], uint64_t *ret_size)
{
	size_t n;
	char *data;
	unsigned char md[32];
	FILE *f = fopen(path, "rb");
	struct stat st;

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	n = (size_t)st.st_size;
	data = x_malloc(n + 1);
	assert_int_equal(fread(data, 1, n, f), n);
	fclose(f);
	unsigned int len = 0;

	EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	EVP_EncodeBlock((unsigned char *)b64, md, 32);
	*ret_size = n;
	x_free(data);
}

static void assert_no_secret(const char *path, int gz)
{
	static const char *const markers[] = { FX_INT_KEY_ID, FX_EXPORT_KEY_ID, FX_EXTERNAL_ID,
					       "a1b2c3d4e5f6", "secret", "accessKeyId" };
	size_t n;
	char *text = slurp(path, gz, &n);

	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
		if (memmem(text, n, markers[i], strlen(markers[i])))
			fail_msg("%s contains %s", path, markers[i]);
	x_free(text);
}

#define ISO(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static void test_files_match_database(void **state)
{
	PGconn *c = pgtest_connect(ci);
	char dir[] = "/tmp/s3g-export-test-XXXXXX", errbuf[1100];
	struct exportfile_result res = { 0 };
	int64_t day, when;
	uint64_t rows[EXPORTFILE_MANIFEST];
	struct exportfile_opts o = { .path = "/summaries/prod/", .kind = "schedule", .fetch_rows = 5,
				     .time_zone = "Europe/Berlin" };

	assert_non_null(mkdtemp(dir));
	o.state_dir = dir;
	assert_int_equal(exportdb_day_parse("2024-03-31", &day), 0);
	assert_int_equal(isotime_parse("2024-03-31T01:00:00Z", 20, &when), 0);
	o.day = day;
	o.export_time_ms = when;
	if (exportfile_produce(c, &o, &res, errbuf, sizeof(errbuf)) < 0)
		fail_msg("produce: %s", errbuf);
	assert_int_equal(res.n, EXPORTFILE_KIND_MAX);
	assert_string_equal(res.prefix, "summaries/prod/access-summary/2024-03-31/");
	assert_string_equal(res.obj[EXPORTFILE_MANIFEST].key, "summaries/prod/access-summary/2024-03-31/manifest.json");
	assert_string_equal(res.obj[EXPORTFILE_GRANTS].key,
			    "summaries/prod/access-summary/2024-03-31/grants.ndjson.gz");
	assert_int_equal(res.obj[res.n - 1].kind, EXPORTFILE_MANIFEST);

	{
		static const char *const keys[] = { "grantId", "grantArn", "permission", "granteeType", "principal",
						    "userId", "username", "integrationId", "integrationName",
						    "dataSourceId", "dataSourcePrefix", "s3Path", "subPrefix", "since" };

		compare(c, res.obj[EXPORTFILE_GRANTS].local_path,
			"SELECT g.grant_id, g.grant_arn, g.permission, g.grantee_type, g.grantee_id, u.id, u.username,"
			" i.id, i.name, d.id, d.prefix, coalesce(g.grant_scope, 's3://' || g.sub_prefix), g.sub_prefix,"
			" " ISO("coalesce(g.created_at, g.seen_at)")
			" FROM s3grant.grants g JOIN s3grant.integrations i ON i.id = g.integration_id"
			" LEFT JOIN s3grant.subscriptions s ON s.id = g.subscription_id"
			" LEFT JOIN s3grant.users u ON u.id = s.user_id LEFT JOIN s3grant.data_sources d ON d.id = s.data_source_id"
			" ORDER BY g.integration_id, g.grant_id", keys, 14, &rows[EXPORTFILE_GRANTS]);
		assert_int_equal(rows[EXPORTFILE_GRANTS], NGRANTS + 1);
	}
	{
		/* the subscriptions array of a grant: spot-check the first and the orphan */
		size_t n;
		char *text = slurp(res.obj[EXPORTFILE_GRANTS].local_path, 1, &n);

		assert_non_null(strstr(text, "\"subscriptions\":[{\"id\":1,\"access\":\"write\",\"since\":\"20"));
		assert_non_null(strstr(text, "\"grantId\":\"zz-orphan\""));
		assert_non_null(strstr(text, "\"s3Path\":\"s3://other-bucket/x/*\""));
		assert_non_null(strstr(text, "\"subscriptions\":[]}"));
		x_free(text);
	}
	{
		static const char *const keys[] = { "id", "username", "principal", "principalType" };

		compare(c, res.obj[EXPORTFILE_USERS].local_path,
			"SELECT id, username, principal, principal_type FROM s3grant.users ORDER BY id", keys, 4,
			&rows[EXPORTFILE_USERS]);
		assert_int_equal(rows[EXPORTFILE_USERS], NGRANTS + 1);
	}
	{
		static const char *const keys[] = { "id", "integrationId", "name", "prefix", "s3Path" };

		compare(c, res.obj[EXPORTFILE_DATA_SOURCES].local_path,
			"SELECT d.id, d.integration_id, d.name, d.prefix, CASE WHEN i.location_path = 's3://'"
			" THEN 's3://' || d.prefix ELSE i.location_path || '/' || d.prefix END"
			" FROM s3grant.data_sources d JOIN s3grant.integrations i ON i.id = d.integration_id ORDER BY d.id",
			keys, 5, &rows[EXPORTFILE_DATA_SOURCES]);
	}
	{
		static const char *const keys[] = { "id", "name", "status", "awsAccountId", "awsRegion", "locationPath",
						    "authenticationType", "locationId" };

		compare(c, res.obj[EXPORTFILE_INTEGRATIONS].local_path,
			"SELECT id, name, status::text, aws_account_id, aws_region, location_path, authentication_type,"
			" location_id FROM s3grant.integrations ORDER BY id", keys, 8, &rows[EXPORTFILE_INTEGRATIONS]);
		assert_int_equal(rows[EXPORTFILE_INTEGRATIONS], 2);
	}

	/* the manifest: counts, sizes, hashes, keys */
	{
		size_t n;
		char *text = slurp(res.obj[EXPORTFILE_MANIFEST].local_path, 0, &n), err[256];
		yajl_val m = yajl_tree_parse(text, err, sizeof(err)), files;
		const char *fp[] = { "files", NULL };
		char *tenant = pgtest_value(c, "SELECT id FROM s3grant.tenant");

		assert_non_null(m);
		assert_string_equal(jstr(m, "schemaVersion"), "1");
		assert_string_equal(jstr(m, "exportTime"), "2024-03-31T01:00:00Z");
		assert_string_equal(jstr(m, "tenantId"), tenant);
		assert_string_equal(jstr(m, "localDay"), "2024-03-31");
		assert_string_equal(jstr(m, "timeZone"), "Europe/Berlin");
		assert_string_equal(jstr(m, "format"), "ndjson+gzip");
		files = yajl_tree_get(m, fp, yajl_t_array);
		assert_non_null(files);
		assert_int_equal(YAJL_GET_ARRAY(files)->len, EXPORTFILE_MANIFEST);
		for (int k = 0; k < EXPORTFILE_MANIFEST; k++) {
			yajl_val f = YAJL_GET_ARRAY(files)->values[k];
			char hex[65], b64[45], num[32];
			uint64_t size;

			sha256_file(res.obj[k].local_path, hex, b64, &size);
			assert_string_equal(jstr(f, "name"), exportfile_kind_name((enum exportfile_kind)k));
			assert_string_equal(jstr(f, "key"), res.obj[k].key);
			assert_string_equal(jstr(f, "sha256"), hex);
			assert_string_equal(jstr(f, "sha256Base64"), b64);
			assert_string_equal(res.obj[k].sha256_b64, b64);
			snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
			assert_string_equal(jstr(f, "bytes"), num);
			snprintf(num, sizeof(num), "%llu", (unsigned long long)rows[k]);
			assert_string_equal(jstr(f, "rows"), num);
		}
		yajl_tree_free(m);
		x_free(text);
		x_free(tenant);
	}
	for (int k = 0; k < EXPORTFILE_KIND_MAX; k++)
		assert_no_secret(res.obj[k].local_path, k != EXPORTFILE_MANIFEST);
	{
		char *j = exportfile_objects_json(&res);

		assert_non_null(strstr(j, "\"name\":\"manifest.json\""));
		x_free(j);
	}
	exportfile_cleanup(&res);
	assert_int_equal(rmdir(dir), 0);   /* nothing left behind */
	PQfinish(c);
}

static void test_empty_database_and_root_path(void **state)
{
	char *ci2 = pgtest_fresh_db();
	PGconn *c = pgtest_connect(ci2);
	char dir[] = "/tmp/s3g-export-test-XXXXXX", errbuf[1100];
	struct exportfile_result res = { 0 };
	struct pgerr err;
	int applied;
	struct exportfile_opts o = { .path = "", .day = 0, .export_time_ms = 0 };

	assert_int_equal(schema_migrate(c, 0, &applied, &err), 0);
	assert_non_null(mkdtemp(dir));
	o.state_dir = dir;
	if (exportfile_produce(c, &o, &res, errbuf, sizeof(errbuf)) < 0)
		fail_msg("produce: %s", errbuf);
	assert_string_equal(res.prefix, "access-summary/1970-01-01/");
	for (int k = 0; k < EXPORTFILE_MANIFEST; k++) {
		size_t n;
		char *t = slurp(res.obj[k].local_path, 1, &n);

		assert_int_equal(n, 0);
		assert_int_equal(res.obj[k].rows, 0);
		assert_true(res.obj[k].bytes > 0);   /* a valid empty gzip stream */
		x_free(t);
	}
	exportfile_cleanup(&res);
	assert_int_equal(rmdir(dir), 0);
	PQfinish(c);
	x_free(ci2);
}

static void test_config_roundtrip_and_checks(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct exportdb_config cfg = { 0 }, in = { 0 };
	struct pgerr err;
	char msg[256];

	assert_int_equal(exportdb_config_load(c, &cfg, &err), 0);
	assert_string_equal(cfg.bucket, "export-bucket");
	assert_string_equal(cfg.path, "summaries/prod");
	assert_int_equal(cfg.auth, EXPORTDB_AUTH_ACCESS_KEY);
	assert_int_equal(cfg.secret_env_len, strlen(FX_ENVELOPE_HEX) / 2);
	assert_int_equal(cfg.secret_env[0], 1);
	assert_int_equal(cfg.time_of_day, -1);
	assert_null(cfg.time_zone);
	assert_string_equal(cfg.external_id, cfg.tenant_id);   /* ExternalId defaults to the tenant id */

	/* switch to a role; the trigger clears nothing we did not ask for */
	in.enabled = true;
	in.bucket = "export-bucket";
	in.region = "eu-central-1";
	in.path = "/a/b/";
	in.auth = EXPORTDB_AUTH_ASSUME_ROLE;
	in.role_arn = "arn:aws:iam::123456789012:role/exporter";
	in.kms_key_id = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
	in.time_of_day = 5 * 3600 + 30 * 60;
	in.time_zone = "Europe/Berlin";
	assert_int_equal(exportdb_config_save(c, &in, &err), 0);
	exportdb_config_free(&cfg);
	assert_int_equal(exportdb_config_load(c, &cfg, &err), 0);
	assert_string_equal(cfg.path, "a/b");
	assert_int_equal(cfg.auth, EXPORTDB_AUTH_ASSUME_ROLE);
	assert_null(cfg.secret_env);
	assert_null(cfg.access_key_id);
	assert_int_equal(cfg.time_of_day, 5 * 3600 + 30 * 60);
	assert_string_equal(cfg.time_zone, "Europe/Berlin");
	exportdb_config_free(&cfg);

	in.role_arn = "arn:aws:iam::123:role/x";
	assert_int_equal(exportdb_config_save(c, &in, &err), S3G_EINVAL);
	assert_string_equal(err.column, "role_arn");
	in.role_arn = "arn:aws:iam::123456789012:role/exporter";
	in.region = "Mars";
	assert_int_equal(exportdb_config_save(c, &in, &err), S3G_EINVAL);
	assert_string_equal(err.column, "region");

	assert_int_equal(exportdb_check_bucket("ab", msg, sizeof(msg)), S3G_EINVAL);
	assert_non_null(strstr(msg, "bucket: 'ab'"));
	assert_int_equal(exportdb_check_bucket("Upper", msg, sizeof(msg)), S3G_EINVAL);
	assert_int_equal(exportdb_check_bucket("a..b", msg, sizeof(msg)), S3G_EINVAL);
	assert_int_equal(exportdb_check_bucket("my.bucket-1", msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_region("us-east-1", msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_region("us-gov-west-1", msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_region("useast1", msg, sizeof(msg)), S3G_EINVAL);
	assert_non_null(strstr(msg, "region:"));
	assert_int_equal(exportdb_check_role_arn("arn:aws:iam::123456789012:role/a/b/c", msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_role_arn("arn:aws-cn:iam::123456789012:role/x", msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_role_arn("arn:aws:iam::123456789012:user/x", msg, sizeof(msg)), S3G_EINVAL);
	assert_non_null(strstr(msg, "roleArn:"));
	assert_int_equal(exportdb_check_role_arn("arn:aws:iam::123456789012:role/", msg, sizeof(msg)), S3G_EINVAL);
	assert_int_equal(exportdb_check_path("a/b", msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_path("a/../b", msg, sizeof(msg)), S3G_EINVAL);
	assert_int_equal(exportdb_check_path("a//b", msg, sizeof(msg)), S3G_EINVAL);
	assert_int_equal(exportdb_check_time_zone("Europe/Berlin", NULL, msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_time_zone("", NULL, msg, sizeof(msg)), 0);
	assert_int_equal(exportdb_check_time_zone("Mars/Olympus", NULL, msg, sizeof(msg)), S3G_EINVAL);
	assert_non_null(strstr(msg, "timezone: unknown time zone 'Mars/Olympus'"));
	assert_int_equal(exportdb_check_time_zone("../etc/passwd", NULL, msg, sizeof(msg)), S3G_EINVAL);
	PQfinish(c);
}

struct racer {
	pthread_barrier_t *bar;
	int64_t day;
	const char *who;
	int result;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	PGconn *c = pgtest_connect(ci);
	struct exportdb_claim cl;
	struct pgerr err;

	pthread_barrier_wait(r->bar);
	r->result = exportdb_claim_day(c, r->day, r->who, 1700000000000LL, 60000, &cl, &err);
	PQfinish(c);
	return NULL;
}

static void test_racing_claims_one_winner(void **state)
{
	pthread_barrier_t bar;

	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < 20; i++) {
		struct racer a = { &bar, 19000 + i, "a", 1 }, b = { &bar, 19000 + i, "b", 1 };
		pthread_t ta, tb;

		pthread_create(&ta, NULL, race, &a);
		pthread_create(&tb, NULL, race, &b);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		if (!((a.result == 0 && b.result == S3G_ECONFLICT) || (b.result == 0 && a.result == S3G_ECONFLICT)))
			fail_msg("round %d: a=%d b=%d", i, a.result, b.result);
	}
	pthread_barrier_destroy(&bar);
	{
		PGconn *c = pgtest_connect(ci);
		char *n = pgtest_value(c, "SELECT count(*) FROM s3grant.exports WHERE local_day >= '2022-01-08'");

		assert_string_equal(n, "20");
		x_free(n);
		PQfinish(c);
	}
}

static void test_claim_lease_retry_rules(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct exportdb_claim cl;
	struct exportdb_row row;
	struct exportdb_outcome fail = { .ok = false, .error = "PutObject: AccessDenied", .rows = -1,
					 .next_retry_ms = 2000000 };
	struct pgerr err;
	const int64_t day = 30000;   /* later than the racing test's days */

	assert_int_equal(exportdb_claim_day(c, day, "a", 1000000, 60000, &cl, &err), 0);
	assert_int_equal(cl.attempts, 1);
	/* held: b cannot take it until the lease ends */
	assert_int_equal(exportdb_claim_day(c, day, "b", 1059000, 60000, &cl, &err), S3G_ECONFLICT);
	assert_int_equal(exportdb_claim_day(c, day, "b", 1060000, 60000, &cl, &err), 0);
	assert_int_equal(cl.attempts, 2);
	/* a lost the lease: its outcome is refused */
	assert_int_equal(exportdb_finish(c, cl.id, "a", 1061000, &fail, &err), S3G_ECONFLICT);
	assert_int_equal(exportdb_finish(c, cl.id, "b", 1061000, &fail, &err), 0);
	assert_int_equal(exportdb_last_scheduled(c, &row, &err), 0);
	assert_int_equal(row.status, EXPORTDB_FAILED);
	assert_int_equal(row.next_retry_ms, 2000000);
	assert_string_equal(row.error, "PutObject: AccessDenied");
	/* failed: only once the retry time has come */
	assert_int_equal(exportdb_claim_day(c, day, "a", 1999999, 60000, &cl, &err), S3G_ECONFLICT);
	assert_int_equal(exportdb_claim_day(c, day, "a", 2000000, 60000, &cl, &err), 0);
	assert_int_equal(cl.attempts, 3);
	{
		struct exportdb_outcome ok = { .ok = true, .prefix = "p/", .manifest_key = "p/manifest.json",
					       .rows = 5, .objects_json = "[]" };

		assert_int_equal(exportdb_finish(c, cl.id, "a", 2001000, &ok, &err), 0);
	}
	/* succeeded: nobody claims it again */
	assert_int_equal(exportdb_claim_day(c, day, "b", 9999999999LL, 60000, &cl, &err), S3G_ECONFLICT);
	assert_int_equal(exportdb_last_scheduled(c, &row, &err), 0);
	assert_int_equal(row.status, EXPORTDB_SUCCEEDED);
	/* manual requests */
	{
		long long id;
		int n;

		assert_int_equal(exportdb_claim_request(c, day, "a", 3000000, 60000, &cl, &err), S3G_ENOTFOUND);
		assert_int_equal(exportdb_request(c, "tester", &id, &err), 0);
		assert_int_equal(exportdb_pending_requests(c, &n, &err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(exportdb_claim_request(c, day, "a", 3000000, 60000, &cl, &err), 0);
		assert_int_equal(cl.id, id);
		assert_int_equal(exportdb_pending_requests(c, &n, &err), 0);
		assert_int_equal(n, 0);
	}
	PQfinish(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files_match_database),
		cmocka_unit_test(test_empty_database_and_root_path),
		cmocka_unit_test(test_config_roundtrip_and_checks),
		cmocka_unit_test(test_racing_claims_one_winner),
		cmocka_unit_test(test_claim_lease_retry_rules),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
