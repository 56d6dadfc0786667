/* Change queue: triggers + NOTIFY, claim/ack/lease/renew, coalescing, parallel claimants.
 * S3G_NEEDS: pg
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pgtest.h"
#include "store/queue.h"
#include "store/schema.h"

static char *ci;

static int setup(void **state)
{
	PGconn *c;
	struct pgerr err;
	int applied;

	ci = pgtest_fresh_db();
	c = pgtest_connect(ci);
	if (schema_migrate(c, 0, &applied, &err) < 0)
		return -1;
	pgtest_exec(c,
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path)"
		" VALUES ('one', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://research-data');"
		"INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, 'a'), (1, 'b');"
		"INSERT INTO s3grant.users (username) VALUES ('alice'), ('bob');");
	PQfinish(c);
	return 0;
}

static int teardown(void **state)
{
	X_FREE(ci);
	return 0;
}

static void drain(PGconn *c)
{
	pgtest_exec(c, "DELETE FROM s3grant.change_queue");
}

static void test_commit_wakes_listener(void **state)
{
	PGconn *l = pgtest_connect(ci), *w = pgtest_connect(ci);
	struct pgerr err;
	long long iid = 0;

	drain(w);
	pgtest_exec(l, PGQ_LISTEN_SQL);
	assert_int_equal(pgq_wait(l, 50, &iid, &err), S3G_ETIMEOUT);
	/* uncommitted: no wake-up */
	pgtest_exec(w, "BEGIN");
	pgtest_exec(w, "INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES (1, 1, 'read')");
	assert_int_equal(pgq_wait(l, 100, &iid, &err), S3G_ETIMEOUT);
	pgtest_exec(w, "COMMIT");
	assert_int_equal(pgq_wait(l, 5000, &iid, &err), 0);
	assert_int_equal(iid, 1);
	{
		struct pgq_batch b = { 0 };

		assert_int_equal(pgq_claim(l, 100, 60000, "t1", 5000, &b, &err), 0);
		assert_int_equal(b.n, 1);
		assert_string_equal(b.items[0].key, "s:1:1:1");
		assert_int_equal(b.items[0].kind, PGQ_KIND_SUBSCRIPTION);
		pgq_batch_free(&b);
	}
	/* the daemon's own status writes do not enqueue or notify */
	drain(w);
	pgtest_exec(w, "UPDATE s3grant.subscriptions SET status = 'active'");
	pgtest_exec(w, "UPDATE s3grant.integrations SET status = 'enabled', location_id = 'loc-1'");
	assert_int_equal(pgq_wait(l, 100, &iid, &err), S3G_ETIMEOUT);
	{
		char *n = pgtest_value(w, "SELECT count(*) FROM s3grant.change_queue");

		assert_string_equal(n, "0");
		x_free(n);
	}
	pgtest_exec(w, "DELETE FROM s3grant.subscriptions");
	PQfinish(l);
	PQfinish(w);
}

static void test_coalescing_and_ack(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct pgq_batch b = { 0 }, b2 = { 0 };
	struct pgerr err;
	long long deleted = -1;

	drain(c);
	pgtest_exec(c, "INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) VALUES (1, 1, 'read')");
	pgtest_exec(c, "UPDATE s3grant.subscriptions SET access = 'write'");
	pgtest_exec(c, "UPDATE s3grant.subscriptions SET access = 'read'");
	assert_int_equal(pgq_claim(c, 100, 60000, "w1", 5000, &b, &err), 0);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.items[0].key, "s:1:1:1");
	assert_int_equal(b.items[0].changes, 3);
	/* a change after the claim: the ack releases the key instead of deleting it */
	pgtest_exec(c, "UPDATE s3grant.subscriptions SET access = 'write'");
	assert_int_equal(pgq_claim(c, 100, 60000, "w2", 5000, &b2, &err), 0);
	assert_int_equal(b2.n, 0);   /* still leased to w1 */
	assert_int_equal(pgq_ack(c, &b, "w1", 5000, &deleted, &err), 0);
	assert_int_equal(deleted, 0);
	pgq_batch_free(&b);
	assert_int_equal(pgq_claim(c, 100, 60000, "w2", 5000, &b2, &err), 0);
	assert_int_equal(b2.n, 1);
	assert_int_equal(b2.items[0].attempts, 2);
	assert_int_equal(pgq_ack(c, &b2, "w2", 5000, &deleted, &err), 0);
	assert_int_equal(deleted, 1);
	pgq_batch_free(&b2);
	assert_int_equal(pgq_claim(c, 100, 60000, "w2", 5000, &b2, &err), 0);
	assert_int_equal(b2.n, 0);
	pgtest_exec(c, "DELETE FROM s3grant.subscriptions");
	PQfinish(c);
}

static void test_expired_lease_reclaimed(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct pgq_batch b = { 0 }, b2 = { 0 };
	struct pgerr err;
	long long deleted = -1;

	drain(c);
	pgtest_exec(c, "UPDATE s3grant.data_sources SET prefix = 'a2' WHERE id = 1");
	assert_int_equal(pgq_claim(c, 10, 60000, "dead", 5000, &b, &err), 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(pgq_claim(c, 10, 60000, "alive", 5000, &b2, &err), 0);
	assert_int_equal(b2.n, 0);
	/* the dead claimant's lease runs out (moved into the past, no sleeping) */
	pgtest_exec(c, "UPDATE s3grant.change_queue SET locked_until = clock_timestamp() - interval '1 second'");
	assert_int_equal(pgq_claim(c, 10, 60000, "alive", 5000, &b2, &err), 0);
	assert_int_equal(b2.n, 1);
	assert_string_equal(b2.items[0].key, "d:1:1");
	/* the dead claimant's late ack does nothing */
	assert_int_equal(pgq_ack(c, &b, "dead", 5000, &deleted, &err), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(pgq_ack(c, &b2, "alive", 5000, &deleted, &err), 0);
	assert_int_equal(deleted, 1);
	pgq_batch_free(&b);
	pgq_batch_free(&b2);
	PQfinish(c);
}

static void test_renew_keeps_own_keys(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct pgq_batch b = { 0 }, b2 = { 0 };
	struct pgerr err;
	long long n = -1;
	char *v;

	drain(c);
	pgtest_exec(c, "UPDATE s3grant.data_sources SET prefix = 'r2' WHERE id = 1");
	assert_int_equal(pgq_claim(c, 10, 60000, "slow", 5000, &b, &err), 0);
	assert_int_equal(b.n, 1);
	/* the lease runs out mid-pass (moved into the past, no sleeping); the
	 * holder renews before anyone else claims */
	pgtest_exec(c, "UPDATE s3grant.change_queue SET locked_until = clock_timestamp() - interval '1 second'");
	assert_int_equal(pgq_renew(c, 60000, "slow", &n, &err), 0);
	assert_int_equal(n, 1);
	v = pgtest_value(c, "SELECT locked_until > clock_timestamp() + interval '50 seconds'"
			    " FROM s3grant.change_queue WHERE locked_by = 'slow'");
	assert_string_equal(v, "t");
	x_free(v);
	assert_int_equal(pgq_claim(c, 10, 60000, "other", 5000, &b2, &err), 0);
	assert_int_equal(b2.n, 0);
	/* a key somebody else claimed after an unrenewed expiry is not taken back */
	pgtest_exec(c, "UPDATE s3grant.change_queue SET locked_until = clock_timestamp() - interval '1 second'");
	assert_int_equal(pgq_claim(c, 10, 60000, "other", 5000, &b2, &err), 0);
	assert_int_equal(b2.n, 1);
	assert_int_equal(pgq_renew(c, 60000, "slow", &n, &err), 0);
	assert_int_equal(n, 0);
	v = pgtest_value(c, "SELECT locked_by FROM s3grant.change_queue");
	assert_string_equal(v, "other");
	x_free(v);
	assert_int_equal(pgq_renew(c, 0, "slow", &n, &err), S3G_EINVAL);
	assert_int_equal(pgq_ack(c, &b2, "other", 5000, &n, &err), 0);
	assert_int_equal(n, 1);
	pgq_batch_free(&b);
	pgq_batch_free(&b2);
	PQfinish(c);
}

static void test_release_and_statement_timeout(void **state)
{
	PGconn *c = pgtest_connect(ci), *locker = pgtest_connect(ci);
	struct pgq_batch b = { 0 };
	struct pgerr err;

	drain(c);
	pgtest_exec(c, "UPDATE s3grant.data_sources SET prefix = 'b2' WHERE id = 2");
	assert_int_equal(pgq_claim(c, 10, 60000, "x", 5000, &b, &err), 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(pgq_release(c, &b, "x", 0, &err), 0);
	pgq_batch_free(&b);
	assert_int_equal(pgq_claim(c, 10, 60000, "y", 5000, &b, &err), 0);
	assert_int_equal(b.n, 1);
	/* an ack blocked behind a row lock hits the statement timeout */
	pgtest_exec(locker, "BEGIN");
	pgtest_exec(locker, "SELECT 1 FROM s3grant.change_queue FOR UPDATE");
	{
		long long deleted;

		assert_int_equal(pgq_ack(c, &b, "y", 100, &deleted, &err), S3G_ETIMEOUT);
		assert_string_equal(err.sqlstate, "57014");
	}
	pgtest_exec(locker, "ROLLBACK");
	pgq_batch_free(&b);
	drain(c);
	PQfinish(c);
	PQfinish(locker);
}

#define NKEYS 400

struct claimant {
	const char *who;
	int seen[NKEYS];
	int held_twice;
};

static int held[NKEYS];
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

static void *claim_loop(void *arg)
{
	struct claimant *cl = arg;
	PGconn *c = pgtest_connect(ci);
	struct pgerr err;

	for (;;) {
		struct pgq_batch b = { 0 };
		long long deleted;

		if (pgq_claim(c, 7, 60000, cl->who, 5000, &b, &err) < 0 || b.n == 0) {
			pgq_batch_free(&b);
			break;
		}
		pthread_mutex_lock(&held_mu);
		for (size_t i = 0; i < b.n; i++) {
			int k = atoi(b.items[i].key + strlen("s:1:"));

			if (k >= 0 && k < NKEYS) {
				if (held[k])
					cl->held_twice++;
				held[k] = 1;
				cl->seen[k]++;
			}
		}
		pthread_mutex_unlock(&held_mu);
		pthread_mutex_lock(&held_mu);
		for (size_t i = 0; i < b.n; i++) {
			int k = atoi(b.items[i].key + strlen("s:1:"));

			if (k >= 0 && k < NKEYS)
				held[k] = 0;
		}
		pthread_mutex_unlock(&held_mu);
		if (pgq_ack(c, &b, cl->who, 5000, &deleted, &err) < 0)
			cl->held_twice += 1000;
		pgq_batch_free(&b);
	}
	PQfinish(c);
	return NULL;
}

static void test_parallel_claimants_disjoint(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct claimant a = { .who = "A" }, b = { .who = "B" }, d = { .who = "D" };
	pthread_t ta, tb, td;
	char sql[256];

	drain(c);
	snprintf(sql, sizeof(sql),
		 "SELECT s3grant.enqueue(array_agg('s:1:' || g), array_agg('subscription'::text), array_agg(1::bigint))"
		 " FROM generate_series(0, %d) g, generate_series(1, 3) r", NKEYS - 1);
	pgtest_exec(c, sql);
	pthread_create(&ta, NULL, claim_loop, &a);
	pthread_create(&tb, NULL, claim_loop, &b);
	pthread_create(&td, NULL, claim_loop, &d);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_join(td, NULL);
	assert_int_equal(a.held_twice + b.held_twice + d.held_twice, 0);
	for (int k = 0; k < NKEYS; k++)
		assert_int_equal(a.seen[k] + b.seen[k] + d.seen[k], 1);
	{
		char *n = pgtest_value(c, "SELECT count(*) FROM s3grant.change_queue");

		assert_string_equal(n, "0");
		x_free(n);
	}
	PQfinish(c);
}

static void test_query_builders(void **state)
{
	struct pgq_change items[2] = { { .key = (char *)(uintptr_t)"s:1:\"x\\", .seq = 5 },
				       { .key = (char *)(uintptr_t)"i:2", .seq = 7 } };
	struct pgq_batch b = { items, 2 };
	struct pgq_query q;
	char buf[64];

	assert_int_equal(pgq_ack_query(&q, &b, "me"), 0);
	assert_string_equal(q.values[0], "{\"s:1:\\\"x\\\\\",\"i:2\"}");
	assert_string_equal(q.values[1], "{5,7}");
	pgq_query_free(&q);
	assert_int_equal(pgq_claim_query(&q, 0, 1000, "me"), S3G_EINVAL);
	assert_int_equal(pgq_claim_query(&q, 50, 1000, "me"), 0);
	assert_string_equal(q.values[0], "50");
	pgq_query_free(&q);
	assert_string_equal(pgq_session_sql(buf, sizeof(buf), 5000), "SET statement_timeout = 5000");
	assert_string_equal(pgq_kind_name(PGQ_KIND_USER), "user");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_builders),
		cmocka_unit_test(test_commit_wakes_listener),
		cmocka_unit_test(test_coalescing_and_ack),
		cmocka_unit_test(test_expired_lease_reclaimed),
		cmocka_unit_test(test_renew_keeps_own_keys),
		cmocka_unit_test(test_release_and_statement_timeout),
		cmocka_unit_test(test_parallel_claimants_disjoint),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
