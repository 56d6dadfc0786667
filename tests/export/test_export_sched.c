/* The export scheduler glue with an injected clock and the directory sink:
 * an ordinary day, spring-forward and fall-back days, the daemon down at
 * the slot (one catch-up), two daemons (one export), a failed upload
 * retried later, and `export run` picked up through NOTIFY.
 * S3G_NEEDS: pg
 * S3G_TIMEOUT: 180
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "core/isotime.h"
#include "core/xalloc.h"
#include "daemon/export.h"
#include "export_fixture.h"
#include "store/export.h"

#define MAXEV 64

struct h {
	uv_loop_t loop;
	uv_timer_t guard;
	bool timed_out;
	char *ci;
	char state[64], sink_dir[64];
	struct export_dirsink sink;
	struct export *e[2];
	int64_t now;
	struct export_event ev[MAXEV];
	int nev;
	int closed;
};

static int64_t fake_now(void *ud)
{
	return ((struct h *)ud)->now;
}

static void on_event(void *ud, const struct export_event *ev)
{
	struct h *h = *(struct h **)ud;

	assert_true(h->nev < MAXEV);
	h->ev[h->nev] = *ev;
	h->ev[h->nev].error = NULL;
	h->nev++;
}

static struct h *evh_ptr[2];

static int64_t at(const char *iso)
{
	int64_t ms;

	assert_int_equal(isotime_parse(iso, strlen(iso), &ms), 0);
	return ms;
}

static void on_guard(uv_timer_t *t)
{
	struct h *h = t->data;

	h->timed_out = true;
	uv_stop(&h->loop);
}

static struct h *h_new(const char *tz, bool listen, int ndaemons)
{
	struct h *h = x_calloc(1, sizeof(*h));

	unsetenv("TZ");   /* each test starts from the host zone */
	tzset();
	h->ci = fx_db(10);
	snprintf(h->state, sizeof(h->state), "/tmp/s3g-exs-XXXXXX");
	assert_non_null(mkdtemp(h->state));
	snprintf(h->sink_dir, sizeof(h->sink_dir), "/tmp/s3g-exd-XXXXXX");
	assert_non_null(mkdtemp(h->sink_dir));
	assert_int_equal(uv_loop_init(&h->loop), 0);
	assert_int_equal(uv_timer_init(&h->loop, &h->guard), 0);
	h->guard.data = h;
	uv_unref((uv_handle_t *)&h->guard);
	h->sink.loop = &h->loop;
	h->sink.dir = h->sink_dir;
	for (int i = 0; i < ndaemons; i++) {
		char who[32];
		struct export_opts o = {
			.conninfo = h->ci, .state_dir = h->state, .default_time_of_day = -1,
			.default_time_zone = tz, .now_ms = fake_now, .clock_ud = h,
			.upload = export_dirsink_upload, .upload_ud = &h->sink,
			.on_event = on_event, .event_ud = &evh_ptr[i], .listen = listen,
			.poll_ms = 3600 * 1000, .retry_base_ms = 60 * 1000,
		};

		snprintf(who, sizeof(who), "daemon-%d", i);
		o.instance = who;
		evh_ptr[i] = h;
		assert_int_equal(export_new(&h->loop, &o, &h->e[i]), 0);
	}
	return h;
}

static int count(struct h *h, enum export_event_kind k)
{
	int n = 0;

	for (int i = 0; i < h->nev; i++)
		n += h->ev[i].kind == k;
	return n;
}

/* Run the loop until every daemon is idle and at least `events` events came. */
static void settle(struct h *h, int events)
{
	uv_timer_start(&h->guard, on_guard, 30000, 0);
	for (;;) {
		bool busy = false;

		for (int i = 0; i < 2; i++)
			if (h->e[i] && export_busy(h->e[i]))
				busy = true;
		if (!busy && h->nev >= events)
			break;
		uv_run(&h->loop, UV_RUN_ONCE);
		assert_false(h->timed_out);
	}
	uv_timer_stop(&h->guard);
}

/* Kick at time now; wait for the job to finish. Returns the first new event. */
static const struct export_event *tick(struct h *h, const char *iso, int who)
{
	int first = h->nev;

	h->now = at(iso);
	export_kick(h->e[who]);
	settle(h, first + 1);
	return &h->ev[first];
}

static void on_closed(void *ud)
{
	((struct h *)ud)->closed++;
}

static void h_free(struct h *h)
{
	int n = 0;
	char cmd[256];

	for (int i = 0; i < 2; i++)
		if (h->e[i]) {
			export_stop(h->e[i], on_closed, h);
			n++;
		}
	uv_close((uv_handle_t *)&h->guard, NULL);
	while (h->closed < n)
		uv_run(&h->loop, UV_RUN_ONCE);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&h->loop), 0);
	assert_int_equal(rmdir(h->state), 0);   /* temp files cleaned up */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", h->sink_dir);
	assert_int_equal(system(cmd), 0);
	x_free(h->ci);
	x_free(h);
}

static char *q(struct h *h, const char *sql)
{
	PGconn *c = pgtest_connect(h->ci);
	char *v = pgtest_value(c, sql);

	PQfinish(c);
	return v;
}

static void exec(struct h *h, const char *sql)
{
	PGconn *c = pgtest_connect(h->ci);

	pgtest_exec(c, sql);
	PQfinish(c);
}

static void assert_q(struct h *h, const char *sql, const char *want)
{
	char *v = q(h, sql);

	if (strcmp(v, want) != 0)
		fail_msg("%s: want %s, got %s", sql, want, v);
	x_free(v);
}

static void assert_object(struct h *h, const char *day, const char *file)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/export-bucket/summaries/prod/access-summary/%s/%s", h->sink_dir, day, file);
	if (stat(path, &st) < 0)
		fail_msg("missing object %s", path);
}

static void expect(const struct export_event *ev, enum export_event_kind k, const char *day)
{
	if (ev->kind != k)
		fail_msg("event %s, expected %s", export_event_name(ev->kind), export_event_name(k));
	if (day) {
		char ds[16];

		exportdb_day_str(ev->day, ds);
		assert_string_equal(ds, day);
	}
}

static void test_ordinary_day(void **state)
{
	struct h *h = h_new("Europe/Berlin", false, 1);
	const struct export_event *ev;

	/* 02:59:59 CEST: not yet; wake at 03:00 */
	ev = tick(h, "2024-06-10T00:59:59Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	assert_int_equal(ev->next_ms, at("2024-06-10T01:00:00Z"));
	ev = tick(h, "2024-06-10T01:00:00Z", 0);
	expect(ev, EXPORT_EV_SUCCEEDED, "2024-06-10");
	assert_int_equal(ev->attempts, 1);
	assert_int_equal(ev->rows, 11);
	/* the re-check after it: next is tomorrow 03:00 */
	expect(&h->ev[h->nev - 1], EXPORT_EV_IDLE, NULL);
	assert_int_equal(h->ev[h->nev - 1].next_ms, at("2024-06-11T01:00:00Z"));
	assert_object(h, "2024-06-10", "manifest.json");
	assert_object(h, "2024-06-10", "grants.ndjson.gz");
	assert_int_equal(h->sink.objects, 5);
	/* later the same day: nothing */
	ev = tick(h, "2024-06-10T20:00:00Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	assert_q(h, "SELECT status || ' ' || attempts || ' ' || row_count || ' ' || manifest_key FROM s3grant.exports",
		 "succeeded 1 11 summaries/prod/access-summary/2024-06-10/manifest.json");
	/* the database's time of day wins over the daemon's default */
	exec(h, "UPDATE s3grant.export_config SET time_of_day = '05:15'");
	ev = tick(h, "2024-06-11T03:14:59Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	assert_int_equal(ev->next_ms, at("2024-06-11T03:15:00Z"));
	ev = tick(h, "2024-06-11T03:15:00Z", 0);
	expect(ev, EXPORT_EV_SUCCEEDED, "2024-06-11");
	h_free(h);
}

static void test_spring_forward(void **state)
{
	struct h *h = h_new(NULL, false, 1);
	const struct export_event *ev;

	/* 02:30 does not exist in New York on 2024-03-10: the slot is 03:00 EDT */
	exec(h, "UPDATE s3grant.export_config SET time_of_day = '02:30', time_zone = 'America/New_York'");
	ev = tick(h, "2024-03-10T06:59:59Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	assert_int_equal(ev->next_ms, at("2024-03-10T07:00:00Z"));
	ev = tick(h, "2024-03-10T07:00:00Z", 0);
	expect(ev, EXPORT_EV_SUCCEEDED, "2024-03-10");
	/* next: 02:30 EDT on the 11th */
	assert_int_equal(h->ev[h->nev - 1].next_ms, at("2024-03-11T06:30:00Z"));
	assert_q(h, "SELECT count(*) FROM s3grant.exports", "1");
	h_free(h);
}

static void test_fall_back(void **state)
{
	struct h *h = h_new("America/New_York", false, 1);
	const struct export_event *ev;

	/* 01:30 happens twice on 2024-11-03: the export runs at the first (EDT) */
	exec(h, "UPDATE s3grant.export_config SET time_of_day = '01:30'");
	ev = tick(h, "2024-11-03T05:29:59Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	assert_int_equal(ev->next_ms, at("2024-11-03T05:30:00Z"));
	ev = tick(h, "2024-11-03T05:30:00Z", 0);
	expect(ev, EXPORT_EV_SUCCEEDED, "2024-11-03");
	/* 01:30 EST, an hour later: not again */
	ev = tick(h, "2024-11-03T06:30:00Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	assert_int_equal(ev->next_ms, at("2024-11-04T06:30:00Z"));
	assert_q(h, "SELECT count(*) FROM s3grant.exports", "1");
	h_free(h);
}

static void test_down_at_slot_one_catch_up(void **state)
{
	struct h *h = h_new("Europe/Berlin", false, 1);
	const struct export_event *ev;

	/* the last export was three days ago; the daemon starts at 10:00 */
	exec(h, "INSERT INTO s3grant.exports (local_day, status, attempts) VALUES ('2024-06-07', 'succeeded', 1)");
	ev = tick(h, "2024-06-10T08:00:00Z", 0);
	expect(ev, EXPORT_EV_SUCCEEDED, "2024-06-10");
	ev = tick(h, "2024-06-10T08:05:00Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	assert_q(h, "SELECT string_agg(local_day::text, ',' ORDER BY local_day) FROM s3grant.exports",
		 "2024-06-07,2024-06-10");
	assert_int_equal(count(h, EXPORT_EV_SUCCEEDED), 1);
	h_free(h);
}

static void test_two_daemons_one_export(void **state)
{
	struct h *h = h_new("Europe/Berlin", false, 2);

	for (int round = 0; round < 3; round++) {
		char iso[32], ds[16];
		int first = h->nev, ok = 0;

		snprintf(iso, sizeof(iso), "2024-06-%02dT01:00:00Z", 10 + round);
		snprintf(ds, sizeof(ds), "2024-06-%02d", 10 + round);
		h->now = at(iso);
		export_kick(h->e[0]);
		export_kick(h->e[1]);
		settle(h, first + 2);
		for (int i = first; i < h->nev; i++) {
			assert_true(h->ev[i].kind == EXPORT_EV_SUCCEEDED || h->ev[i].kind == EXPORT_EV_BUSY ||
				    h->ev[i].kind == EXPORT_EV_IDLE);
			ok += h->ev[i].kind == EXPORT_EV_SUCCEEDED;
		}
		assert_int_equal(ok, 1);
		(void)ds;
	}
	assert_q(h, "SELECT count(*) || ' ' || sum(attempts) FROM s3grant.exports", "3 3");
	assert_int_equal(h->sink.objects, 3 * 5);
	h_free(h);
}

static void test_failed_upload_retried(void **state)
{
	struct h *h = h_new("UTC", false, 1);
	const struct export_event *ev;

	h->sink.fail_next = 1;
	ev = tick(h, "2024-06-10T03:00:00Z", 0);
	expect(ev, EXPORT_EV_FAILED, "2024-06-10");
	assert_int_equal(ev->next_ms, at("2024-06-10T03:01:00Z"));   /* retry_base_ms = 60 s */
	assert_int_equal(h->sink.objects, 0);
	assert_q(h, "SELECT status || ' ' || attempts || ' ' || (error LIKE '%AccessDenied%') FROM s3grant.exports",
		 "failed 1 true");
	/* the re-check sleeps until the retry time */
	expect(&h->ev[h->nev - 1], EXPORT_EV_IDLE, NULL);
	assert_int_equal(h->ev[h->nev - 1].next_ms, at("2024-06-10T03:01:00Z"));
	ev = tick(h, "2024-06-10T03:00:59Z", 0);
	expect(ev, EXPORT_EV_IDLE, NULL);
	/* fails again: the backoff doubles */
	h->sink.fail_next = 1;
	ev = tick(h, "2024-06-10T03:01:00Z", 0);
	expect(ev, EXPORT_EV_FAILED, "2024-06-10");
	assert_int_equal(ev->attempts, 2);
	assert_int_equal(ev->next_ms, at("2024-06-10T03:03:00Z"));
	ev = tick(h, "2024-06-10T03:03:00Z", 0);
	expect(ev, EXPORT_EV_SUCCEEDED, "2024-06-10");
	assert_int_equal(ev->attempts, 3);
	assert_q(h, "SELECT status || ' ' || attempts || ' ' || coalesce(error, '-') FROM s3grant.exports",
		 "succeeded 3 -");
	assert_int_equal(h->sink.objects, 5);
	h_free(h);
}

static void test_export_run_via_notify(void **state)
{
	struct h *h = h_new("UTC", true, 1);
	long long id;
	struct pgerr err;
	int first;

	/* started before the slot: idle */
	h->now = at("2024-06-10T01:00:00Z");
	assert_int_equal(export_start(h->e[0]), 0);
	settle(h, 1);
	expect(&h->ev[0], EXPORT_EV_IDLE, NULL);
	/* LISTEN is up once the connection is (its connect also kicks a check) */
	first = h->nev;
	{
		PGconn *c = pgtest_connect(h->ci);

		assert_int_equal(exportdb_request(c, "tester", &id, &err), 0);
		PQfinish(c);
	}
	while (count(h, EXPORT_EV_SUCCEEDED) == 0)
		settle(h, h->nev + 1);
	for (int i = first; i < h->nev; i++)
		if (h->ev[i].kind == EXPORT_EV_SUCCEEDED) {
			assert_true(h->ev[i].manual);
			assert_int_equal(h->ev[i].id, id);
		}
	assert_q(h, "SELECT kind || ' ' || status || ' ' || local_day FROM s3grant.exports",
		 "manual succeeded 2024-06-10");
	/* a manual export does not stand in for the scheduled one */
	settle(h, h->nev);
	{
		const struct export_event *ev = tick(h, "2024-06-10T03:00:00Z", 0);

		expect(ev, EXPORT_EV_SUCCEEDED, "2024-06-10");
		assert_false(ev->manual);
	}
	h_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ordinary_day),
		cmocka_unit_test(test_spring_forward),
		cmocka_unit_test(test_fall_back),
		cmocka_unit_test(test_down_at_slot_one_catch_up),
		cmocka_unit_test(test_two_daemons_one_export),
		cmocka_unit_test(test_failed_upload_retried),
		cmocka_unit_test(test_export_run_via_notify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
