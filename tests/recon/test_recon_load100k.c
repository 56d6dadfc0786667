/* store/recon at 100,000 subscriptions: load the inputs, build the desired
 * set, then record 100,000 intents, creates (+ audit + statuses), a listing,
 * and load the grants back — each in bounded round trips. Prints the times.
 * S3G_NEEDS: pg
 * S3G_TIMEOUT: 600
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "core/desired.h"
#include "core/diff.h"
#include "recon_fixture.h"
#include "store/recon.h"

#define NUSERS 20000
#define NDS 5
#define NSUBS (NUSERS * NDS)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_load_100k(void **state)
{
	char *ci = recon_fresh_db();
	PGconn *c = pgtest_connect(ci);
	struct recon_inputs in;
	struct intern pool;
	struct desired_set set;
	struct pgerr err;
	const char *why = NULL;
	double t0, t_load, t_desired, t_intents, t_batch, t_grants, t_sync;

	pgtest_exec(c,
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path,"
		" status, location_id) VALUES ('big', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc',"
		" 's3://big-data', 'enabled', 'loc-big');"
		"INSERT INTO s3grant.data_sources (integration_id, prefix)"
		" SELECT 1, 'team-' || i || '/data' FROM generate_series(1, 5) i;"
		"INSERT INTO s3grant.users (username, principal)"
		" SELECT 'user' || i, CASE WHEN i % 10 = 0 THEN NULL"
		"  ELSE 'arn:aws:iam::123456789012:user/user' || i END FROM generate_series(1, 20000) i;"
		"INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)"
		" SELECT u.id, d.id, CASE WHEN (u.id + d.id) % 3 = 0 THEN 'write' ELSE 'read' END"
		" FROM s3grant.users u CROSS JOIN s3grant.data_sources d;"
		"DELETE FROM s3grant.change_queue;");
	pgtest_exec(c, "VACUUM ANALYZE");

	t0 = now_s();
	assert_int_equal(recon_inputs_load(c, 1, NULL, &in, &err), 0);
	t_load = now_s() - t0;
	assert_int_equal(in.nsubs, NSUBS);
	assert_int_equal(in.nusers, NUSERS);
	assert_int_equal(in.nds, NDS);

	intern_init(&pool);
	t0 = now_s();
	assert_int_equal(desired_build(&pool, &in.integ.d, in.ds, in.nds, in.users, in.nusers, in.subs, in.nsubs, &set,
				       &why), 0);
	t_desired = now_s() - t0;
	assert_int_equal(set.n, NSUBS);
	assert_int_equal(set.nrej, 0);

	/* intents for every create, in one call */
	{
		struct recon_intent_in *ii = x_calloc(set.n, sizeof(*ii));
		int64_t *ids = x_calloc(set.n, sizeof(*ids));

		for (size_t i = 0; i < set.n; i++)
			ii[i] = (struct recon_intent_in){ .g = &set.v[i].g, .subs = &set.v[i].g.subscription_id,
							  .nsubs = 1 };
		t0 = now_s();
		assert_int_equal(recon_intents_add(c, 1, ii, set.n, ids, &err), 0);
		t_intents = now_s() - t0;
		assert_true(ids[0] > 0 && ids[set.n - 1] > 0);
		x_free(ii);
		x_free(ids);
	}
	/* every create succeeded: grants + intents resolved + audit + statuses, one transaction */
	{
		struct recon_created *cr = x_calloc(set.n, sizeof(*cr));
		struct recon_audit *au = x_calloc(set.n, sizeof(*au));
		struct recon_sub_status *ss = x_calloc(set.n, sizeof(*ss));
		struct grant *made = x_calloc(set.n, sizeof(*made));
		struct recon_batch b;
		char id[32];

		for (size_t i = 0; i < set.n; i++) {
			made[i] = set.v[i].g;
			snprintf(id, sizeof(id), "grant-%06zu", i);
			made[i].grant_id = intern_str(&pool, id);
			cr[i] = (struct recon_created){ .g = &made[i], .subs = &set.v[i].g.subscription_id, .nsubs = 1 };
			au[i] = (struct recon_audit){ .op = RECON_OP_CREATE, .grant_id = made[i].grant_id,
						      .principal = made[i].grantee_id, .prefix = made[i].sub_prefix,
						      .permission = grant_perm_name((enum grant_perm)made[i].permission),
						      .reason = "subscribed", .request_id = "REQ" };
			ss[i] = (struct recon_sub_status){ .id = set.v[i].g.subscription_id, .state = RECON_SUB_ACTIVE };
		}
		b = (struct recon_batch){ .created = cr, .ncreated = set.n, .audit = au, .naudit = set.n,
					  .subs = ss, .nsubs = set.n };
		t0 = now_s();
		assert_int_equal(recon_batch_commit(c, 1, &b, &err), 0);
		t_batch = now_s() - t0;

		/* a full listing of the location, every grant seen again */
		{
			struct recon_listed *l = x_calloc(set.n, sizeof(*l));
			struct recon_sync_result sr;

			for (size_t i = 0; i < set.n; i++)
				l[i] = (struct recon_listed){ .g = &made[i], .created_ms = 1700000000000LL };
			t0 = now_s();
			assert_int_equal(recon_grants_sync(c, 1, "loc-big", l, set.n, true, &sr, &err), 0);
			t_sync = now_s() - t0;
			assert_int_equal(sr.updated, NSUBS);
			assert_int_equal(sr.removed, 0);
			x_free(l);
		}
		x_free(cr);
		x_free(au);
		x_free(ss);
		x_free(made);
	}
	{
		char *v = pgtest_value(c, "SELECT (SELECT count(*) FROM s3grant.grant_intents) || '/' ||"
				      " (SELECT count(*) FROM s3grant.audit_log) || '/' ||"
				      " (SELECT count(*) FROM s3grant.subscriptions WHERE status = 'active')");

		assert_string_equal(v, "0/100000/100000");
		x_free(v);
	}
	{
		struct recon_grants act;
		struct diff d;

		t0 = now_s();
		assert_int_equal(recon_grants_load(c, 1, &pool, &act, &err), 0);
		t_grants = now_s() - t0;
		assert_int_equal(act.n, NSUBS);
		assert_int_equal(diff_compute(&set, act.v, act.n, &d), 0);
		assert_int_equal(d.ncreate, 0);
		assert_int_equal(d.nremove, 0);
		assert_int_equal(d.nkeep, NSUBS);
		diff_free(&d);
		recon_grants_free(&act);
	}
	printf("recon 100k: inputs load %.3f s, desired_build %.3f s, intents_add %.3f s,"
	       " batch_commit (100k grants+audit+statuses) %.3f s, grants_sync %.3f s, grants_load %.3f s\n",
	       t_load, t_desired, t_intents, t_batch, t_sync, t_grants);
	/* generous bounds (a shared 2-core machine); the figures are what matter */
	assert_true(t_load < 10.0);
	assert_true(t_batch < 60.0);
	desired_free(&set);
	intern_free(&pool);
	recon_inputs_free(&in);
	PQfinish(c);
	x_free(ci);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_100k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
