/* store/recon: inputs, grants, intents (crash → adopt), batches, health,
 * lifecycle transitions, the per-integration lock.
 * S3G_NEEDS: pg
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/desired.h"
#include "core/diff.h"
#include "core/plan.h"
#include "recon_fixture.h"
#include "store/recon.h"

static char *ci;

static int setup(void **state)
{
	PGconn *c;

	ci = recon_fresh_db();
	c = pgtest_connect(ci);
	recon_fixture(c);
	PQfinish(c);
	return 0;
}

static int teardown(void **state)
{
	X_FREE(ci);
	return 0;
}

static const struct desired_user *user_named(const struct recon_inputs *in, const char *name)
{
	for (size_t i = 0; i < in->nusers; i++)
		if (strcmp(in->users[i].name, name) == 0)
			return &in->users[i];
	return NULL;
}

static void test_inputs_load(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct secrets_key k;
	struct recon_inputs in;
	struct pgerr err;

	recon_key(&k);
	assert_int_equal(recon_inputs_load(c, 1, &k, &in, &err), 0);
	assert_int_equal(in.integ.d.id, 1);
	assert_string_equal(in.integ.name, "one");
	assert_int_equal(in.integ.status, RECON_ENABLED);
	assert_string_equal(in.integ.d.account, "123456789012");
	assert_string_equal(in.integ.d.region, "us-east-1");
	assert_string_equal(in.integ.d.location_scope, "s3://research-data");
	assert_string_equal(in.integ.d.location_id, "loc-1");
	assert_string_equal(in.integ.location_role_arn, "arn:aws:iam::123456789012:role/loc");
	assert_int_equal(in.integ.auth, RECON_AUTH_ACCESS_KEY);
	assert_string_equal(in.integ.access_key_id, "AKIDEXAMPLE");
	assert_true(in.integ.has_secret);
	assert_string_equal(in.integ.secret_access_key, "s3cr3t/KEY");
	assert_null(in.integ.role_to_assume);
	assert_int_equal(strlen(in.integ.external_id), 36);   /* the tenant id */

	assert_int_equal(in.nds, 2);
	assert_int_equal(in.ds[0].id, 1);
	assert_string_equal(in.ds[0].prefix, "a");
	assert_string_equal(in.ds[1].prefix, "b/c");
	/* alice, bob, carol, bad name, dave: users of integration 1 only */
	assert_int_equal(in.nusers, 5);
	assert_string_equal(user_named(&in, "alice")->principal, "arn:aws:iam::123456789012:user/alice");
	assert_string_equal(user_named(&in, "bob")->principal, "94482488-3041-7026-18f3-be45837cd0e4");
	assert_null(user_named(&in, "carol")->principal);
	assert_null(user_named(&in, "bad name")->principal);
	assert_int_equal(in.nsubs, 5);
	assert_int_equal(in.subs[0].id, 1);
	assert_int_equal(in.subs[0].user_id, 1);
	assert_int_equal(in.subs[0].data_source_id, 1);
	assert_string_equal(in.subs[0].access, "read");
	assert_int_equal(in.subs[4].id, 6);
	assert_string_equal(in.subs[4].access, "admin");

	/* feed core/desired exactly as the daemon will */
	{
		struct intern pool;
		struct desired_set set;
		const char *why = NULL;

		intern_init(&pool);
		assert_int_equal(desired_build(&pool, &in.integ.d, in.ds, in.nds, in.users, in.nusers, in.subs,
					       in.nsubs, &set, &why), 0);
		assert_int_equal(set.n, 3);
		assert_string_equal(set.v[0].g.grantee_id, "arn:aws:iam::123456789012:user/alice");
		assert_int_equal(set.v[0].g.permission, GRANT_READ);
		assert_string_equal(set.v[0].g.sub_prefix, "a*");
		assert_int_equal(set.v[1].g.grantee_type, GRANTEE_DIRECTORY_USER);
		assert_int_equal(set.v[1].g.permission, GRANT_READWRITE);
		assert_string_equal(set.v[1].g.sub_prefix, "b/c*");
		assert_string_equal(set.v[2].g.grantee_id, "arn:aws:iam::123456789012:user/carol");
		assert_int_equal(set.nrej, 2);
		assert_int_equal(set.rej[0].subscription_id, 4);
		assert_non_null(strstr(set.rej[0].reason, "principal"));
		assert_int_equal(set.rej[1].subscription_id, 6);
		assert_non_null(strstr(set.rej[1].reason, "access"));
		desired_free(&set);
		intern_free(&pool);
	}
	recon_inputs_free(&in);

	/* without a key the secret stays sealed; another key does not open it */
	assert_int_equal(recon_inputs_load(c, 1, NULL, &in, &err), 0);
	assert_null(in.integ.secret_access_key);
	assert_true(in.integ.has_secret);
	recon_inputs_free(&in);
	{
		struct secrets_key k2;
		uint8_t raw[32];

		memset(raw, 7, sizeof(raw));
		assert_int_equal(secrets_key_parse(raw, 32, &k2), 0);
		assert_int_equal(recon_inputs_load(c, 1, &k2, &in, &err), S3G_ECONFIG);
		assert_non_null(strstr(err.message, "secret"));
	}
	assert_int_equal(recon_inputs_load(c, 2, NULL, &in, &err), 0);
	assert_int_equal(in.integ.auth, RECON_AUTH_AUTO);
	assert_null(in.integ.d.location_id);
	assert_int_equal(in.nsubs, 1);
	assert_int_equal(in.nusers, 1);
	recon_inputs_free(&in);
	assert_int_equal(recon_inputs_load(c, 99, NULL, &in, &err), S3G_ENOTFOUND);
	assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
	secrets_key_wipe(&k);
	PQfinish(c);
}

static void mk(struct intern *in, const char *type, const char *who, const char *perm, const char *sub,
	       const char *id, struct grant *g)
{
	char arn[128], scope[128];

	snprintf(arn, sizeof(arn), "arn:aws:s3:us-east-1:123456789012:access-grants/default/grant/%s", id ? id : "");
	snprintf(scope, sizeof(scope), "s3://research-data/%s", sub);
	assert_int_equal(grant_make(in, type, who, perm, "loc-1", sub, id, id ? arn : NULL, id ? scope : NULL, g), 0);
}

static void test_grants_sync_and_batch(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct intern in;
	struct grant g[4];
	struct recon_listed l[3];
	struct recon_sync_result sr;
	struct recon_grants got;
	struct pgerr err;

	intern_init(&in);
	mk(&in, "IAM", "arn:aws:iam::123456789012:user/alice", "READ", "a*", "g1", &g[0]);
	mk(&in, "IAM", "arn:aws:iam::123456789012:user/mallory", "READ", "x\t\\y\n*", "g2", &g[1]);
	mk(&in, "DIRECTORY_USER", "94482488-3041-7026-18f3-be45837cd0e4", "READWRITE", "", "g3", &g[2]);
	for (int i = 0; i < 3; i++)
		l[i] = (struct recon_listed){ .g = &g[i], .created_ms = 1700000000000LL + i };
	assert_int_equal(recon_grants_sync(c, 1, "loc-1", l, 3, true, &sr, &err), 0);
	assert_int_equal(sr.inserted, 3);
	assert_int_equal(sr.updated, 0);
	assert_int_equal(recon_grants_load(c, 1, &in, &got, &err), 0);
	assert_int_equal(got.n, 3);
	assert_string_equal(got.v[1].grant_id, "g2");
	assert_string_equal(got.v[1].sub_prefix, "x\t\\y\n*");   /* COPY escaping round trip */
	assert_ptr_equal(got.v[1].sub_prefix, g[1].sub_prefix); /* interned in the caller's pool */
	assert_int_equal(got.v[2].grantee_type, GRANTEE_DIRECTORY_USER);
	assert_string_equal(got.v[2].sub_prefix, "");
	assert_int_equal(got.created_ms[0], 1700000000000LL);
	assert_int_equal(got.v[0].subscription_id, 0);
	assert_true(grant_key_eq(&got.v[0], &g[0]));
	recon_grants_free(&got);

	/* a complete listing without g2 removes it; a partial one removes nothing */
	assert_int_equal(recon_grants_sync(c, 1, "loc-1", l, 1, false, &sr, &err), 0);
	assert_int_equal(sr.updated, 1);
	assert_int_equal(sr.removed, 0);
	l[1] = l[2];
	assert_int_equal(recon_grants_sync(c, 1, "loc-1", l, 2, true, &sr, &err), 0);
	assert_int_equal(sr.removed, 1);
	assert_int_equal(recon_grants_sync(c, 1, "loc-2", l, 2, true, &sr, &err), S3G_EINVAL);

	/* page by page (g1, g3); a page lost — the table holds fewer grants than
	 * were sent, or a new session has no table — fails the sync and removes
	 * nothing */
	assert_int_equal(recon_listing_add(c, "loc-1", l, 1, 0, &err), 0);
	assert_int_equal(recon_listing_add(c, "loc-1", l + 1, 1, 1, &err), 0);
	assert_int_equal(recon_listing_sync(c, 1, "loc-1", 2, true, &sr, &err), 0);
	assert_int_equal(sr.updated, 2);
	assert_int_equal(sr.removed, 0);
	assert_int_equal(recon_listing_add(c, "loc-1", l, 1, 0, &err), 0);
	assert_int_equal(recon_listing_sync(c, 1, "loc-1", 2, true, &sr, &err), S3G_ECONFLICT);
	{
		PGconn *c2 = pgtest_connect(ci);

		assert_true(recon_listing_sync(c2, 1, "loc-1", 0, true, &sr, &err) < 0);
		PQfinish(c2);
	}
	assert_int_equal(recon_grants_load(c, 1, &in, &got, &err), 0);
	assert_int_equal(got.n, 2);
	recon_grants_free(&got);

	/* created (serving subscriptions 1 and 3), deleted, audit, statuses: one transaction */
	{
		int64_t subs[2] = { 3, 1 };
		struct recon_created cr = { .g = &g[3], .subs = subs, .nsubs = 2 };
		const char *del[1] = { "g3" };
		struct recon_audit au[2] = {
			{ .op = RECON_OP_CREATE, .grant_id = "g4", .principal = "arn:aws:iam::123456789012:user/carol",
			  .prefix = "s3://research-data/a*", .permission = "READWRITE", .reason = "subscribed",
			  .request_id = "REQ-1" },
			{ .op = RECON_OP_REPAIR_DELETE, .grant_id = "g3", .reason = "tab\there", .at_ms = 1000 },
		};
		struct recon_sub_status ss[4] = {
			{ .id = 1, .state = RECON_SUB_ACTIVE },
			{ .id = 4, .state = RECON_SUB_REJECTED, .error = "principal: not an IAM user name" },
			{ .id = 2, .state = RECON_SUB_ERROR, .error = "AccessDenied: no" },
			{ .id = 6, .state = RECON_SUB_REJECTED, .error = "access: 'admin' must be read or write" },
		};
		struct recon_batch b = { .created = &cr, .ncreated = 1, .deleted = del, .ndeleted = 1, .audit = au,
					 .naudit = 2, .subs = ss, .nsubs = 4 };
		char *v;

		mk(&in, "IAM", "arn:aws:iam::123456789012:user/carol", "READWRITE", "a*", "g4", &g[3]);
		assert_int_equal(recon_batch_commit(c, 1, &b, &err), 0);
		assert_int_equal(recon_grants_load(c, 1, &in, &got, &err), 0);
		assert_int_equal(got.n, 2);
		assert_string_equal(got.v[1].grant_id, "g4");
		assert_int_equal(got.v[1].subscription_id, 3);
		assert_true(got.created_ms[1] > 0);
		recon_grants_free(&got);
		/* subscription 3 goes away: the next recorded one (1) serves make-before-break */
		pgtest_exec(c, "DELETE FROM s3grant.subscriptions WHERE id = 3");
		assert_int_equal(recon_grants_load(c, 1, &in, &got, &err), 0);
		assert_int_equal(got.v[1].subscription_id, 1);
		recon_grants_free(&got);
		v = pgtest_value(c, "SELECT string_agg(operation || '|' || coalesce(principal, '-') || '|' ||"
				    " coalesce(aws_request_id, '-') || '|' || reason, ',' ORDER BY id) FROM s3grant.audit_log");
		assert_string_equal(v, "create|arn:aws:iam::123456789012:user/carol|REQ-1|subscribed,"
				       "repair-delete|-|-|tab\there");
		x_free(v);
		v = pgtest_value(c, "SELECT string_agg(id || ':' || status || ':' || coalesce(error, '-') ||"
				    " ':' || (error_at IS NOT NULL), ',' ORDER BY id) FROM s3grant.subscriptions");
		assert_string_equal(v, "1:active:-:false,2:error:AccessDenied: no:true,"
				       "4:rejected:principal: not an IAM user name:true,5:pending:-:false,"
				       "6:rejected:access: 'admin' must be read or write:true");
		x_free(v);
		/* unchanged statuses are not rewritten */
		v = pgtest_value(c, "SELECT updated_at FROM s3grant.subscriptions WHERE id = 4");
		assert_int_equal(recon_batch_commit(c, 1, &(struct recon_batch){ .subs = ss, .nsubs = 4 }, &err), 0);
		{
			char *w = pgtest_value(c, "SELECT updated_at FROM s3grant.subscriptions WHERE id = 4");

			assert_string_equal(v, w);
			x_free(w);
		}
		x_free(v);
		/* the daemon's writes enqueue nothing */
		v = pgtest_value(c, "SELECT count(*) FROM s3grant.change_queue WHERE key NOT LIKE 's:1:3:%'");
		assert_string_equal(v, "0");
		x_free(v);
	}
	/* a failing batch leaves nothing behind */
	{
		struct recon_sub_status bad = { .id = 1, .state = RECON_SUB_STATE_MAX_ };
		struct recon_batch b = { .subs = &bad, .nsubs = 1 };

		assert_int_equal(recon_batch_commit(c, 1, &b, &err), S3G_EINVAL);
		assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
	}
	pgtest_exec(c, "DELETE FROM s3grant.grants; DELETE FROM s3grant.audit_log;"
		       " UPDATE s3grant.subscriptions SET status = 'pending', error = NULL, error_at = NULL;"
		       " INSERT INTO s3grant.subscriptions (id, user_id, data_source_id, access) OVERRIDING SYSTEM VALUE"
		       " VALUES (3, 3, 1, 'write') ON CONFLICT DO NOTHING");
	intern_free(&in);
	PQfinish(c);
}

/* The daemon records intents, "crashes" after sending the creates (nothing
 * recorded), restarts, lists the location and adopts what matches. */
static void test_intent_crash_adopt(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct intern in;
	struct grant want[2], listed;
	int64_t subs0[1] = { 1 }, ids[3], ids2[1];
	struct recon_intent_in ii[3];
	struct recon_intents got;
	struct pgerr err;

	intern_init(&in);
	mk(&in, "IAM", "arn:aws:iam::123456789012:user/alice", "READ", "a*", NULL, &want[0]);
	mk(&in, "DIRECTORY_USER", "94482488-3041-7026-18f3-be45837cd0e4", "READWRITE", "b/c*", NULL, &want[1]);
	ii[0] = (struct recon_intent_in){ .g = &want[0], .subs = subs0, .nsubs = 1 };
	ii[1] = (struct recon_intent_in){ .g = &want[1] };
	ii[2] = ii[0];   /* the same key twice in a batch: one intent */
	assert_int_equal(recon_intents_add(c, 1, ii, 3, ids, &err), 0);
	assert_true(ids[0] > 0);
	assert_true(ids[1] > 0 && ids[1] != ids[0]);
	assert_int_equal(ids[2], ids[0]);
	/* retrying the same create: same intent, attempts counted */
	assert_int_equal(recon_intents_add(c, 1, ii, 1, ids2, &err), 0);
	assert_int_equal(ids2[0], ids[0]);

	/* restart: the intents are there, no grant is */
	assert_int_equal(recon_intents_load(c, 1, &in, &got, &err), 0);
	assert_int_equal(got.n, 2);
	assert_int_equal(got.v[0].id, ids[0]);
	assert_int_equal(got.v[0].attempts, 2);   /* a duplicate inside one batch is not an attempt */
	assert_int_equal(got.v[0].g.subscription_id, 1);
	assert_true(got.v[0].created_ms > 0);
	assert_int_equal(got.v[1].g.subscription_id, 0);
	assert_ptr_equal(got.v[0].g.grantee_id, want[0].grantee_id);
	{
		struct recon_grants none;

		assert_int_equal(recon_grants_load(c, 1, &in, &none, &err), 0);
		assert_int_equal(none.n, 0);
		recon_grants_free(&none);
	}
	/* the listing shows the first create did reach AWS: adopt it */
	mk(&in, "IAM", "arn:aws:iam::123456789012:user/alice", "READ", "a**", "g-adopt", &listed);
	assert_true(grant_matches_intent(&got.v[0].g, &listed));
	assert_false(grant_matches_intent(&got.v[1].g, &listed));
	{
		struct recon_created cr = { .g = &listed, .subs = subs0, .nsubs = 1 };
		struct recon_audit au = { .op = RECON_OP_ADOPT, .grant_id = "g-adopt", .reason = "intent found at list" };
		int64_t drop[1] = { got.v[1].id };
		struct recon_batch b = { .created = &cr, .ncreated = 1, .audit = &au, .naudit = 1,
					 .drop_intents = drop, .ndrop_intents = 1 };

		assert_int_equal(recon_batch_commit(c, 1, &b, &err), 0);
	}
	recon_intents_free(&got);
	assert_int_equal(recon_intents_load(c, 1, &in, &got, &err), 0);
	assert_int_equal(got.n, 0);
	recon_intents_free(&got);
	{
		struct recon_grants gr;

		assert_int_equal(recon_grants_load(c, 1, &in, &gr, &err), 0);
		assert_int_equal(gr.n, 1);
		assert_string_equal(gr.v[0].grant_id, "g-adopt");
		assert_string_equal(gr.v[0].sub_prefix, "a*");
		assert_int_equal(gr.v[0].subscription_id, 1);
		recon_grants_free(&gr);
	}
	/* another integration's intents are its own */
	assert_int_equal(recon_intents_load(c, 2, &in, &got, &err), 0);
	assert_int_equal(got.n, 0);
	recon_intents_free(&got);
	/* a create that names the intent it was sent under resolves that one by
	 * id, whatever key the grant AWS returned has; no other intent goes */
	{
		int64_t idk[2];
		struct grant made;
		struct recon_created cr;
		struct recon_batch b;

		ii[0] = (struct recon_intent_in){ .g = &want[0], .subs = subs0, .nsubs = 1 };
		ii[1] = (struct recon_intent_in){ .g = &want[1] };
		assert_int_equal(recon_intents_add(c, 1, ii, 2, idk, &err), 0);
		mk(&in, "DIRECTORY_USER", "94482488-3041-7026-18f3-be45837cd0e4", "READWRITE", "b/c*", "g-byid", &made);
		cr = (struct recon_created){ .g = &made, .subs = subs0, .nsubs = 1, .intent_id = idk[0] };
		b = (struct recon_batch){ .created = &cr, .ncreated = 1 };
		assert_int_equal(recon_batch_commit(c, 1, &b, &err), 0);
		assert_int_equal(recon_intents_load(c, 1, &in, &got, &err), 0);
		assert_int_equal(got.n, 1);
		assert_int_equal(got.v[0].id, idk[1]);
		recon_intents_free(&got);
		/* the same batch again: the grant is there, nothing else goes */
		assert_int_equal(recon_batch_commit(c, 1, &b, &err), 0);
		assert_int_equal(recon_intents_load(c, 1, &in, &got, &err), 0);
		assert_int_equal(got.n, 1);
		recon_intents_free(&got);
	}
	pgtest_exec(c, "DELETE FROM s3grant.grants; DELETE FROM s3grant.audit_log; DELETE FROM s3grant.grant_intents");
	intern_free(&in);
	PQfinish(c);
}

static void test_health(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct recon_health h = recon_health_keep();
	struct pgerr err;
	char *v;

	h.desired = 3;
	h.actual = 1;
	h.instance_grants = 91000;
	h.progress_done = 1;
	h.progress_total = 3;
	h.last_error = "AccessDenied: ListAccessGrants";
	h.resync_at_ms = 1700000000000LL;
	assert_int_equal(recon_health_set(c, 1, &h, &err), 0);
	h = recon_health_keep();
	h.actual = 3;
	h.progress_total = 0;
	assert_int_equal(recon_health_set(c, 1, &h, &err), 0);
	v = pgtest_value(c, "SELECT concat_ws('|', desired_count, actual_count, instance_grants,"
			    " coalesce(progress_total::text, '-'), last_error, last_error_at IS NOT NULL,"
			    " extract(epoch FROM last_resync_at)::bigint) FROM s3grant.integration_health");
	assert_string_equal(v, "3|3|91000|-|AccessDenied: ListAccessGrants|t|1700000000");
	x_free(v);
	h = recon_health_keep();
	h.last_error = "";
	assert_int_equal(recon_health_set(c, 1, &h, &err), 0);
	v = pgtest_value(c, "SELECT coalesce(last_error, '-') || (last_error_at IS NULL) FROM s3grant.integration_health");
	assert_string_equal(v, "-true");
	x_free(v);
	assert_int_equal(recon_health_set(c, 99, &h, &err), S3G_ENOTFOUND);
	PQfinish(c);
}

static int transition(PGconn *c, int64_t iid, enum recon_istatus from, enum recon_istatus to, const char *results,
		      struct pgerr *err)
{
	struct recon_transition t = { .from = from, .to = to, .results_json = results };

	return recon_integration_transition(c, iid, &t, err);
}

static void test_lifecycle(void **state)
{
	PGconn *c = pgtest_connect(ci);
	struct pgerr err;
	char *v;

	pgtest_exec(c,
		"INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn, location_path)"
		" VALUES ('life', '123456789012', 'us-east-1', 'arn:aws:iam::123456789012:role/loc', 's3://life')");
	/* illegal: refused before any query */
	assert_int_equal(transition(c, 3, RECON_CREATING, RECON_DELETED, NULL, &err), S3G_EINVAL);
	assert_int_equal(transition(c, 3, RECON_ENABLED, RECON_EDITING, NULL, &err), S3G_EINVAL);
	assert_false(recon_transition_legal(RECON_DELETED, RECON_ENABLED));
	/* legal, but not the current state */
	assert_int_equal(transition(c, 3, RECON_EDITING, RECON_ENABLED, NULL, &err), S3G_ECONFLICT);
	assert_non_null(strstr(err.message, "is creating, not editing"));
	assert_int_equal(transition(c, 42, RECON_CREATING, RECON_ENABLED, NULL, &err), S3G_ENOTFOUND);
	/* creating → createError with results → (user re-creates: creating) → enabled with the location */
	assert_int_equal(transition(c, 3, RECON_CREATING, RECON_CREATE_ERROR, "{\"status\": \"failed\"}", &err), 0);
	pgtest_exec(c, "UPDATE s3grant.integrations SET status = 'creating' WHERE id = 3");
	{
		struct recon_transition t = { .from = RECON_CREATING, .to = RECON_ENABLED,
					      .results_json = "{\"status\": \"passed\"}", .location_id = "loc-life",
					      .location_arn = "arn:aws:s3:us-east-1:123456789012:access-grants/default/location/loc-life" };

		assert_int_equal(recon_integration_transition(c, 3, &t, &err), 0);
		/* a second daemon racing the same step loses */
		assert_int_equal(recon_integration_transition(c, 3, &t, &err), S3G_ECONFLICT);
	}
	v = pgtest_value(c, "SELECT concat_ws('|', status, location_id, validation_results->>'status',"
			    " validated_at IS NOT NULL) FROM s3grant.integrations WHERE id = 3");
	assert_string_equal(v, "enabled|loc-life|passed|t");
	x_free(v);
	/* periodic re-validation fails, then passes */
	assert_int_equal(transition(c, 3, RECON_ENABLED, RECON_RECURRING_VALIDATION_ERROR, "{\"status\": \"failed\"}", &err), 0);
	assert_int_equal(transition(c, 3, RECON_RECURRING_VALIDATION_ERROR, RECON_ENABLED, "{\"status\": \"passed\"}", &err), 0);

	/* an edit that fails validation rolls back to the previous configuration */
	pgtest_exec(c, "UPDATE s3grant.integrations SET name = 'life-renamed', status = 'editing' WHERE id = 3");
	assert_int_equal(transition(c, 3, RECON_EDITING, RECON_EDIT_ERROR, "{\"status\": \"failed\"}", &err), 0);
	v = pgtest_value(c, "SELECT concat_ws('|', name, status, previous_config IS NULL) FROM s3grant.integrations WHERE id = 3");
	assert_string_equal(v, "life|editError|t");
	x_free(v);
	/* one that passes keeps the new configuration */
	pgtest_exec(c, "UPDATE s3grant.integrations SET name = 'life-2', status = 'editing' WHERE id = 3");
	assert_int_equal(transition(c, 3, RECON_EDITING, RECON_ENABLED, "{\"status\": \"passed\"}", &err), 0);
	v = pgtest_value(c, "SELECT concat_ws('|', name, status, previous_config IS NULL) FROM s3grant.integrations WHERE id = 3");
	assert_string_equal(v, "life-2|enabled|t");
	x_free(v);
	/* delete: deleting → deleteError → deleting → deleted */
	pgtest_exec(c, "UPDATE s3grant.integrations SET status = 'deleting' WHERE id = 3");
	assert_int_equal(transition(c, 3, RECON_DELETING, RECON_DELETE_ERROR, NULL, &err), 0);
	assert_int_equal(transition(c, 3, RECON_DELETE_ERROR, RECON_DELETING, NULL, &err), 0);
	assert_int_equal(transition(c, 3, RECON_DELETING, RECON_DELETED, NULL, &err), 0);
	assert_int_equal(transition(c, 3, RECON_DELETING, RECON_DELETED, NULL, &err), S3G_ECONFLICT);
	PQfinish(c);
}

static void test_lock_two_holders(void **state)
{
	PGconn *a = pgtest_connect(ci), *b = pgtest_connect(ci);
	struct pgerr err;
	bool got;
	int pid = 0;

	assert_int_equal(recon_lock_holder(a, 1, &pid, &err), S3G_ENOTFOUND);
	assert_int_equal(recon_lock_try(a, 1, &got, &err), 0);
	assert_true(got);
	assert_int_equal(recon_lock_try(b, 1, &got, &err), 0);
	assert_false(got);
	assert_int_equal(recon_lock_try(b, 2, &got, &err), 0);   /* other integrations are independent */
	assert_true(got);
	assert_int_equal(recon_lock_holder(b, 1, &pid, &err), 0);
	assert_int_equal(pid, PQbackendPID(a));
	assert_int_equal(recon_lock_release(b, 1, &err), S3G_ENOTFOUND);   /* not b's */
	assert_int_equal(recon_lock_try(b, 1, &got, &err), 0);
	assert_false(got);
	assert_int_equal(recon_lock_release(a, 1, &err), 0);
	assert_int_equal(recon_lock_try(b, 1, &got, &err), 0);
	assert_true(got);
	/* the holder dies: its session's locks go with it */
	PQfinish(b);
	{
		int tries = 0;

		do {
			assert_int_equal(recon_lock_try(a, 1, &got, &err), 0);
			if (!got) {
				struct timespec ts = { 0, 10 * 1000 * 1000 };

				nanosleep(&ts, NULL);   /* the backend exits asynchronously after PQfinish */
			}
		} while (!got && ++tries < 500);
		assert_true(got);
	}
	assert_int_equal(recon_lock_holder(a, 2, &pid, &err), S3G_ENOTFOUND);
	PQfinish(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inputs_load),
		cmocka_unit_test(test_grants_sync_and_batch),
		cmocka_unit_test(test_intent_crash_adopt),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_lock_two_holders),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
