/* daemon/watch on a real loop against the shared Postgres: claim on NOTIFY,
 * an ack of a key that changed since its claim brings it back, max_held
 * pauses claiming, watch_close releases what the consumer still holds, held
 * keys outlive their lease (renewed).
 * S3G_NEEDS: pg
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/watch.h"
#include "store/schema.h"
#include "tests/store/pgtest.h"

#define MAX_HOLD 64

struct ctx {
	uv_loop_t loop;
	struct watch *w;
	bool listening, closed, hold;
	struct watch_item *held[MAX_HOLD];
	size_t nheld;
	size_t batches;
	long long deleted;
	unsigned acks;
};

static char *ci;
static PGconn *db;

static int setup(void **state)
{
	struct pgerr err;
	int applied;

	ci = pgtest_fresh_db();
	db = pgtest_connect(ci);
	if (schema_migrate(db, 0, &applied, &err) < 0)
		return -1;
	pgtest_exec(db, "INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path)"
			" VALUES ('one', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://research-data')");
	return 0;
}

static int teardown(void **state)
{
	PQfinish(db);
	X_FREE(ci);
	return 0;
}

static void on_listening(struct watch *w, void *ud)
{
	((struct ctx *)ud)->listening = true;
}

static void on_batch(struct watch *w, struct watch_item *const *items, size_t n, void *ud)
{
	struct ctx *c = ud;

	c->batches++;
	for (size_t i = 0; i < n; i++) {
		if (c->hold && c->nheld < MAX_HOLD)
			c->held[c->nheld++] = items[i];
		else
			watch_ack(w, items[i]);
	}
}

static void on_acked(struct watch *w, const struct pgq_batch *b, long long deleted, void *ud)
{
	struct ctx *c = ud;

	c->deleted += deleted;
	c->acks++;
}

static void on_closed(void *ud)
{
	((struct ctx *)ud)->closed = true;
}

static void on_deadline(uv_timer_t *t)
{
}

/* Run the loop until *flag or the deadline (fails the test). */
static void run_until(struct ctx *c, bool (*cond)(struct ctx *), unsigned ms)
{
	uv_timer_t t;
	uint64_t end;

	uv_update_time(&c->loop);
	end = uv_now(&c->loop) + ms;
	uv_timer_init(&c->loop, &t);
	uv_timer_start(&t, on_deadline, ms, 0);
	while (!cond(c) && uv_now(&c->loop) < end)
		uv_run(&c->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&c->loop, UV_RUN_NOWAIT);
	assert_true(cond(c));
}

static bool is_listening(struct ctx *c) { return c->listening; }
static bool is_closed(struct ctx *c) { return c->closed; }
static bool queue_empty(struct ctx *c)
{
	char *v = pgtest_value(db, "SELECT count(*) FROM s3grant.change_queue");
	bool empty = strcmp(v, "0") == 0;

	x_free(v);
	return empty;
}

/* Stop holding, ack what is held, run until the queue is empty. */
static void ack_held_until_empty(struct ctx *c)
{
	c->hold = false;
	for (size_t i = 0; i < c->nheld; i++)
		watch_ack(c->w, c->held[i]);
	c->nheld = 0;
	run_until(c, queue_empty, 5000);
}

static void assert_sql(const char *sql, const char *want)
{
	char *v = pgtest_value(db, sql);

	assert_string_equal(v, want);
	x_free(v);
}

static bool held3(struct ctx *c) { return c->nheld >= 3; }
static bool held5(struct ctx *c) { return c->nheld >= 5; }

static int lease_ms = 60000;

static void start(struct ctx *c, int batch, unsigned max_held)
{
	static const struct watch_cbs cbs = {
		.listening = on_listening,
		.acked = on_acked,
		.batch = on_batch,
	};
	struct watch_opts o = {
		.conninfo = ci,
		.poll_interval_ms = 3600 * 1000,  /* only NOTIFY, catch-up and acks drive claims */
		.lease_ms = lease_ms,
		.batch = batch,
		.statement_timeout_ms = 5000,
		.max_held = max_held,
	};

	memset(c, 0, sizeof(*c));
	assert_int_equal(uv_loop_init(&c->loop), 0);
	assert_int_equal(watch_new(&c->loop, &o, &cbs, c, &c->w), 0);
	assert_int_equal(watch_start(c->w), 0);
	run_until(c, is_listening, 5000);
}

static void stop(struct ctx *c)
{
	watch_close(c->w, on_closed, c);
	run_until(c, is_closed, 15000);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&c->loop), 0);
}

static void test_changed_since_claim_comes_back(void **state)
{
	struct ctx c;

	pgtest_exec(db, "DELETE FROM s3grant.change_queue");
	start(&c, 10, 0);
	c.hold = true;
	pgtest_exec(db, "INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, 'x1'), (1, 'x2'), (1, 'x3')");
	run_until(&c, held3, 5000);
	assert_int_equal(c.nheld, 3);
	assert_int_equal(watch_held(c.w), 3);
	/* One key changes again while claimed. */
	pgtest_exec(db, "INSERT INTO s3grant.change_queue (key, kind, integration_id) "
			"SELECT key, kind, integration_id FROM s3grant.change_queue WHERE key LIKE 'd:1:%' LIMIT 1 "
			"ON CONFLICT (key) DO UPDATE SET seq = nextval('s3grant.change_seq')");
	c.hold = false;
	for (size_t i = 0; i < c.nheld; i++)
		watch_ack(c.w, c.held[i]);
	c.nheld = 0;
	/* Two deleted by the first ack; the changed one is claimed again and acked. */
	run_until(&c, queue_empty, 5000);
	assert_int_equal(c.deleted, 3);
	assert_true(c.batches >= 2);
	assert_int_equal(watch_acked_total(c.w), 3);
	stop(&c);
}

static void test_max_held_pauses_claims(void **state)
{
	struct ctx c;

	pgtest_exec(db, "DELETE FROM s3grant.change_queue");
	start(&c, 10, 5);
	c.hold = true;
	pgtest_exec(db, "INSERT INTO s3grant.data_sources (integration_id, prefix)"
			" SELECT 1, 'm' || g FROM generate_series(1, 12) g");
	run_until(&c, held5, 5000);
	/* A notification while full claims nothing more. */
	pgtest_exec(db, "NOTIFY s3grant_changes, '1'");
	uv_run(&c.loop, UV_RUN_NOWAIT);
	assert_int_equal(watch_held(c.w), 5);
	assert_sql("SELECT count(*) FROM s3grant.change_queue WHERE locked_by IS NOT NULL", "5");
	ack_held_until_empty(&c);
	assert_int_equal(watch_claimed_total(c.w), 12);
	stop(&c);
}

static void test_close_releases_held(void **state)
{
	struct ctx c;

	pgtest_exec(db, "DELETE FROM s3grant.change_queue");
	start(&c, 10, 0);
	c.hold = true;
	pgtest_exec(db, "INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, 'c1'), (1, 'c2'), (1, 'c3')");
	run_until(&c, held3, 5000);
	watch_ack(c.w, c.held[0]);  /* one done, two still held at close */
	stop(&c);
	assert_sql("SELECT count(*) FROM s3grant.change_queue WHERE locked_by IS NULL AND locked_until IS NULL", "2");
	assert_sql("SELECT count(*) FROM s3grant.change_queue", "2");
}

static bool renewed5(struct ctx *c)
{
	return watch_renewals(c->w) >= 5;
}

static void test_held_keys_outlive_lease(void **state)
{
	struct ctx c;

	pgtest_exec(db, "DELETE FROM s3grant.change_queue");
	lease_ms = 600;
	start(&c, 10, 0);
	lease_ms = 60000;
	c.hold = true;
	pgtest_exec(db, "INSERT INTO s3grant.data_sources (integration_id, prefix) VALUES (1, 'l1'), (1, 'l2'), (1, 'l3')");
	run_until(&c, held3, 5000);
	/* five renewals, one per 200 ms: past the end of the claim's own lease */
	run_until(&c, renewed5, 5000);
	assert_sql("SELECT count(*) FROM s3grant.claim_changes(10, 60000, 'other')", "0");
	assert_sql("SELECT count(*) FROM s3grant.change_queue WHERE locked_until > clock_timestamp()", "3");
	ack_held_until_empty(&c);
	assert_int_equal(c.deleted, 3);
	stop(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changed_since_claim_comes_back),
		cmocka_unit_test(test_max_held_pauses_claims),
		cmocka_unit_test(test_close_releases_held),
		cmocka_unit_test(test_held_keys_outlive_lease),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
