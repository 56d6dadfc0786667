/* bench_queue — change-queue throughput through claim, and commit→claim
 * wake-up latency. Connects with the PG* environment to a scratch database
 * it creates (bench_queue_<pid>) and drops.
 *
 *   bench_queue [changes=200000] [keys=20000] [batch=500] [samples=500]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/xalloc.h"
#include "store/queue.h"
#include "store/schema.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static PGconn *connect_or_die(const char *ci)
{
	PGconn *c = PQconnectdb(ci);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench_queue: %s", PQerrorMessage(c));
		exit(1);
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static void exec_or_die(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench_queue: %s: %s", sql, PQerrorMessage(c));
		exit(1);
	}
	PQclear(res);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int changes = argc > 1 ? atoi(argv[1]) : 200000;
	int keys = argc > 2 ? atoi(argv[2]) : 20000;
	int batch = argc > 3 ? atoi(argv[3]) : 500;
	int samples = argc > 4 ? atoi(argv[4]) : 500;
	char db[64], sql[512], *ci;
	PGconn *admin, *c, *w;
	struct pgerr err;
	int applied, claimed = 0, r;
	double t0, t1, t2, *lat;

	snprintf(db, sizeof(db), "bench_queue_%ld", (long)getpid());
	admin = connect_or_die("dbname=postgres");
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	exec_or_die(admin, sql);
	ci = x_asprintf("dbname=%s", db);
	c = connect_or_die(ci);
	w = connect_or_die(ci);
	if (schema_migrate(c, 0, &applied, &err) < 0) {
		fprintf(stderr, "bench_queue: %s\n", err.message);
		return 1;
	}

	/* 1. throughput: enqueue `changes` changes over `keys` keys (in statements of
	 * 10,000 changes through s3grant.enqueue, as the triggers do), then claim+ack all. */
	t0 = now_s();
	for (int off = 0; off < changes; off += 10000) {
		int n = changes - off < 10000 ? changes - off : 10000;

		snprintf(sql, sizeof(sql),
			 "SELECT s3grant.enqueue(array_agg('s:1:' || (g %% %d)), array_agg('subscription'::text),"
			 " array_agg(1::bigint)) FROM generate_series(%d, %d) g", keys, off, off + n - 1);
		exec_or_die(w, sql);
	}
	t1 = now_s();
	for (;;) {
		struct pgq_batch b = { 0 };
		long long deleted;

		r = pgq_claim(c, batch, 60000, "bench", 10000, &b, &err);
		if (r < 0 || b.n == 0) {
			pgq_batch_free(&b);
			break;
		}
		claimed += (int)b.n;
		r = pgq_ack(c, &b, "bench", 10000, &deleted, &err);
		pgq_batch_free(&b);
		if (r < 0)
			break;
	}
	t2 = now_s();
	if (r < 0) {
		fprintf(stderr, "bench_queue: %s\n", err.message);
		return 1;
	}
	printf("throughput: %d changes over %d keys: enqueue %.3f s, claim+ack %.3f s (%d keys, batch %d)\n",
	       changes, keys, t1 - t0, t2 - t1, claimed, batch);
	printf("throughput: %.0f changes/s end to end, %.0f changes/s through claim, %.0f keys/s claimed\n",
	       changes / (t2 - t0), changes / (t2 - t1), claimed / (t2 - t1));

	/* 2. latency: writer commits a subscription (trigger + NOTIFY); the listener
	 * waits in poll() on its socket, then claims. */
	exec_or_die(w,
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path)"
		" VALUES ('b', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/r', 's3://bench-bucket');"
		"INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, 'p');"
		"INSERT INTO s3grant.users (username) VALUES ('u')");
	exec_or_die(c, "DELETE FROM s3grant.change_queue");
	exec_or_die(c, PGQ_LISTEN_SQL);
	{
		long long iid;

		while (pgq_wait(c, 0, &iid, &err) == 0)
			;   /* drain notifications from the setup */
	}
	lat = x_calloc((size_t)samples, sizeof(double));
	for (int i = 0; i < samples; i++) {
		struct pgq_batch b = { 0 };
		long long iid, deleted;
		double start;

		start = now_s();
		exec_or_die(w, i % 2 ? "UPDATE s3grant.subscriptions SET access = 'write'"
				     : (i == 0 ? "INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)"
						 " VALUES (1, 1, 'read')"
					       : "UPDATE s3grant.subscriptions SET access = 'read'"));
		if (pgq_wait(c, 5000, &iid, &err) < 0 ||
		    pgq_claim(c, 100, 60000, "bench", 5000, &b, &err) < 0 || b.n != 1) {
			fprintf(stderr, "bench_queue: sample %d: no wake-up/claim (%s)\n", i, err.message);
			return 1;
		}
		lat[i] = (now_s() - start) * 1000;
		if (pgq_ack(c, &b, "bench", 5000, &deleted, &err) < 0)
			return 1;
		pgq_batch_free(&b);
	}
	qsort(lat, (size_t)samples, sizeof(double), cmp_d);
	printf("latency: commit->wake->claim over %d samples: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       samples, lat[samples / 2], lat[(int)(samples * 0.99)], lat[samples - 1]);
	x_free(lat);
	PQfinish(c);
	PQfinish(w);
	snprintf(sql, sizeof(sql), "DROP DATABASE %s", db);
	exec_or_die(admin, sql);
	PQfinish(admin);
	x_free(ci);
	return 0;
}
