/* bench_export — produce an access summary export of N grants (default
 * 100,000) and report wall time, CPU time and peak RSS growth over idle.
 *
 *   bench_export [-n GRANTS] [-d CONNINFO]   (default: the PG* environment)
 *
 * Creates a fresh database on the server (CREATE DATABASE from the postgres
 * database), migrates it, inserts N users / data sources / subscriptions /
 * grants with one generate_series statement each, then measures
 * exportfile_produce() alone (the daemon's worker-thread step). Targets:
 * <= 2 s CPU, <= 16 MB RSS growth. Exits 1 when a target is missed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/xalloc.h"
#include "daemon/exportfile.h"
#include "store/schema.h"

static void must(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench_export: %.80s: %s", sql, PQerrorMessage(c));
		exit(2);
	}
	PQclear(res);
}

static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = atol(line + n + 1);
	fclose(f);
	return v;
}

static double secs(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	const char *base = "";
	long n = 100000;
	char dbname[64], sql[4096], *ci;
	PGconn *admin, *c;
	struct pgerr err;
	int applied, o;

	while ((o = getopt(argc, argv, "n:d:")) != -1) {
		switch (o) {
		case 'n': n = atol(optarg); break;
		case 'd': base = optarg; break;
		default:
			fprintf(stderr, "usage: bench_export [-n GRANTS] [-d CONNINFO]\n");
			return 2;
		}
	}
	ci = x_asprintf("%s%sdbname=postgres", base, base[0] ? " " : "");
	admin = PQconnectdb(ci);
	x_free(ci);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "bench_export: %s", PQerrorMessage(admin));
		return 2;
	}
	snprintf(dbname, sizeof(dbname), "bench_export_%ld_%ld", (long)getpid(), (long)time(NULL));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
	must(admin, sql);
	ci = x_asprintf("%s%sdbname=%s", base, base[0] ? " " : "", dbname);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench_export: %s", PQerrorMessage(c));
		return 2;
	}
	must(c, "SET client_min_messages = warning");
	if (schema_migrate(c, 0, &applied, &err) < 0) {
		fprintf(stderr, "bench_export: migrate: %s\n", err.message);
		return 2;
	}
	snprintf(sql, sizeof(sql),
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path)"
		" VALUES ('bench', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://bench-data');"
		"INSERT INTO s3grant.users (username, principal) SELECT 'user' || g,"
		" 'arn:aws:iam::123456789012:user/user' || g FROM generate_series(1, %ld) g;"
		"INSERT INTO s3grant.data_sources (integration_id, prefix) SELECT 1, 'datasets/ds' || g"
		" FROM generate_series(1, %ld) g;"
		"INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)"
		" SELECT g, g, CASE WHEN g %% 2 = 0 THEN 'read' ELSE 'write' END FROM generate_series(1, %ld) g;"
		"INSERT INTO s3grant.grants (grant_id, integration_id, grant_arn, grantee_type, grantee_id, permission,"
		" location_id, sub_prefix, grant_scope, subscription_id, created_at)"
		" SELECT 'g-' || lpad(g::text, 8, '0'), 1,"
		" 'arn:aws:s3:us-east-1:123456789012:access-grants/default/grant/g-' || g, 'IAM',"
		" 'arn:aws:iam::123456789012:user/user' || g, CASE WHEN g %% 2 = 0 THEN 'READ' ELSE 'READWRITE' END,"
		" 'loc-1', 'datasets/ds' || g || '/*', 's3://bench-data/datasets/ds' || g || '/*', g, now()"
		" FROM generate_series(1, %ld) g;"
		"ANALYZE;", n, n, n, n);
	must(c, sql);

	{
		char dir[] = "/tmp/bench-export-XXXXXX", errbuf[1100];
		struct exportfile_result res = { 0 };
		struct exportfile_opts eo = { .path = "bench", .day = 20000, .export_time_ms = 1728000000000LL,
					      .kind = "schedule" };
		struct rusage ru0, ru1;
		struct timespec t0, t1;
		long hwm0, rss0, hwm1;
		double wall, cpu;
		uint64_t bytes = 0;
		int r;

		if (!mkdtemp(dir))
			return 2;
		eo.state_dir = dir;
		{   /* reset the high-water mark to the current RSS (Linux >= 4.0) */
			FILE *f = fopen("/proc/self/clear_refs", "w");

			if (f) {
				fputs("5", f);
				fclose(f);
			}
		}
		rss0 = status_kb("VmRSS");
		hwm0 = status_kb("VmHWM");
		getrusage(RUSAGE_SELF, &ru0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = exportfile_produce(c, &eo, &res, errbuf, sizeof(errbuf));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		getrusage(RUSAGE_SELF, &ru1);
		hwm1 = status_kb("VmHWM");
		if (r < 0) {
			fprintf(stderr, "bench_export: %s\n", errbuf);
			return 2;
		}
		for (size_t i = 0; i < res.n; i++)
			bytes += res.obj[i].bytes;
		wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		cpu = secs(ru1.ru_utime) - secs(ru0.ru_utime) + secs(ru1.ru_stime) - secs(ru0.ru_stime);
		printf("grants=%llu users=%llu bytes=%llu (grants.ndjson.gz %llu)\n",
		       (unsigned long long)res.obj[EXPORTFILE_GRANTS].rows,
		       (unsigned long long)res.obj[EXPORTFILE_USERS].rows, (unsigned long long)bytes,
		       (unsigned long long)res.obj[EXPORTFILE_GRANTS].bytes);
		printf("wall=%.3f s cpu=%.3f s (user %.3f, sys %.3f)\n", wall, cpu,
		       secs(ru1.ru_utime) - secs(ru0.ru_utime), secs(ru1.ru_stime) - secs(ru0.ru_stime));
		printf("VmRSS idle=%ld kB, VmHWM before=%ld kB after=%ld kB: peak growth over idle %.2f MB\n", rss0, hwm0,
		       hwm1, (double)(hwm1 - rss0) / 1024.0);
		printf("targets: cpu<=2 s %s, growth<=16 MB %s\n", cpu <= 2.0 ? "ok" : "MISSED",
		       hwm1 - rss0 <= 16 * 1024 ? "ok" : "MISSED");
		exportfile_cleanup(&res);
		rmdir(dir);
		PQfinish(c);
		snprintf(sql, sizeof(sql), "DROP DATABASE %s", dbname);
		must(admin, sql);
		PQfinish(admin);
		x_free(ci);
		return cpu <= 2.0 && hwm1 - rss0 <= 16 * 1024 ? 0 : 1;
	}
}
