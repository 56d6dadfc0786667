/* aws/client + aws/s3control against the signature-verifying S3 Control fake:
 * every Access Grants operation, pagination, filters, errors, a wrong secret.
 * S3G_TIMEOUT: 180
 */
#include "client_fixture.h"

#include "aws/s3control.h"

static struct fx_proc fake;

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid());
	return fx_fake_start(&fake, NULL);
}

static int group_teardown(void **state)
{
	(void)state;
	fx_stop(&fake);
	return 0;
}

static int reset_fake(void **state)
{
	(void)state;
	return fx_control(&fake, "POST", "/__fake/reset", "{}", NULL);
}

/* ---- result capture ---- */

struct cap {
	int n;                       /* callbacks seen */
	int status;
	long http_code;
	char code[128];
	char error[1024];
	char request_id[128];
	unsigned attempts;
	/* shapes moved out */
	struct shapes_grant grant;
	struct shapes_grant_list grants;
	struct shapes_location loc;
	struct shapes_location_list locs;
	struct shapes_instance inst;
	struct shapes_instance_list insts;
	int pages;
};

static void cap_res(struct cap *c, int status, const struct aws_result *res)
{
	c->n++;
	c->status = status;
	c->http_code = res->http_code;
	snprintf(c->code, sizeof(c->code), "%s", res->code ? res->code : "");
	snprintf(c->error, sizeof(c->error), "%s", res->error);
	snprintf(c->request_id, sizeof(c->request_id), "%s", res->request_id ? res->request_id : "");
	c->attempts = res->attempts;
}

static void cap_clear(struct cap *c)
{
	shapes_grant_clear(&c->grant);
	shapes_grant_list_clear(&c->grants);
	shapes_location_clear(&c->loc);
	shapes_location_list_clear(&c->locs);
	shapes_instance_clear(&c->inst);
	shapes_instance_list_clear(&c->insts);
	memset(c, 0, sizeof(*c));
}

static void on_done(int status, const struct aws_result *res, void *user)
{
	cap_res(user, status, res);
}

static void on_grant(int status, const struct aws_result *res, struct shapes_grant *g, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (g) {
		shapes_grant_clear(&c->grant);
		c->grant = *g;
		memset(g, 0, sizeof(*g));
	}
}

static void on_grants(int status, const struct aws_result *res, struct shapes_grant_list *l, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (l) {
		shapes_grant_list_clear(&c->grants);
		c->grants = *l;
		memset(l, 0, sizeof(*l));
	}
}

static int on_page(int status, const struct aws_result *res, struct shapes_grant_list *l, int last, void *user)
{
	struct cap *c = user;

	if (l) {
		c->pages++;
		c->grants.n += l->n;
	}
	if (last)
		cap_res(c, status, res);
	return 0;
}

static void on_loc(int status, const struct aws_result *res, struct shapes_location *l, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (l) {
		shapes_location_clear(&c->loc);
		c->loc = *l;
		memset(l, 0, sizeof(*l));
	}
}

static void on_locs(int status, const struct aws_result *res, struct shapes_location_list *l, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (l) {
		shapes_location_list_clear(&c->locs);
		c->locs = *l;
		memset(l, 0, sizeof(*l));
	}
}

static void on_inst(int status, const struct aws_result *res, struct shapes_instance *i, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (i) {
		shapes_instance_clear(&c->inst);
		c->inst = *i;
		memset(i, 0, sizeof(*i));
	}
}

static void on_insts(int status, const struct aws_result *res, struct shapes_instance_list *l, void *user)
{
	struct cap *c = user;

	cap_res(c, status, res);
	if (l) {
		shapes_instance_list_clear(&c->insts);
		c->insts = *l;
		memset(l, 0, sizeof(*l));
	}
}

#define STARTS(a, b) (strncmp((a), (b), strlen(b)) == 0)
#define WAIT(L, C) fx_run_until((L), &(C)->n, 1, 60000)
#define OK(C) do { if ((C)->status != 0) fail_msg("failed: %s", (C)->error); } while (0)

static struct credprov *static_prov(struct fx_loop *l, const char *secret)
{
	struct credprov_env env;
	struct credprov *p = NULL;

	fx_env_init(&env, l);
	assert_int_equal(credprov_new_static(&env, FX_AKID, secret, NULL, &p), 0);
	return p;
}

static void create_grant(struct aws_client *cl, struct fx_loop *l, const char *grantee, const char *perm,
			 const char *sub, struct cap *c)
{
	struct shapes_create_grant_req g = {
		.location_id = "default", .sub_prefix = sub, .grantee_type = "IAM", .grantee_id = grantee,
		.permission = perm,
	};

	memset(c, 0, sizeof(*c));
	s3control_create_grant(cl, &g, on_grant, c);
	WAIT(l, c);
}

static void test_all_operations(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct cap c = {0};
	char id0[128], loc2[128];
	int ngrants = 0;

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l, FX_SECRET);
	cl = fx_client(&l, &fake, prov, NULL);

	/* Before the instance exists: a 404 naming the operation. */
	s3control_get_instance(cl, on_inst, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_int_equal(c.http_code, 404);
	assert_string_equal(c.code, "AccessGrantsInstanceNotExistsError");
	assert_true(STARTS(c.error, "GetAccessGrantsInstance: AccessGrantsInstanceNotExistsError: "));
	assert_int_equal(c.attempts, 1);
	assert_true(c.request_id[0]);
	cap_clear(&c);

	s3control_create_instance(cl, NULL, on_inst, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_string_equal(c.inst.id, "default");
	assert_non_null(c.inst.arn);
	cap_clear(&c);

	s3control_create_instance(cl, NULL, on_inst, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_string_equal(c.code, "AccessGrantsInstanceAlreadyExists");
	cap_clear(&c);

	s3control_get_instance(cl, on_inst, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_string_equal(c.inst.id, "default");
	assert_true(c.inst.created_at_ms > 0);
	cap_clear(&c);

	s3control_list_instances(cl, NULL, on_insts, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.insts.n, 1);
	assert_null(c.insts.next_token);
	cap_clear(&c);

	s3control_list_instances_all(cl, 1, on_insts, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.insts.n, 1);
	cap_clear(&c);

	/* Locations: the default one (s3://) and a bucket. */
	{
		struct shapes_create_location_req lr = {.scope = "s3://", .iam_role_arn =
			"arn:aws:iam::111122223333:role/access-grants-location"};

		s3control_create_location(cl, &lr, on_loc, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_string_equal(c.loc.id, "default");
		assert_string_equal(c.loc.scope, "s3://");
		cap_clear(&c);

		s3control_create_location(cl, &lr, on_loc, &c);
		WAIT(&l, &c);
		assert_int_equal(c.status, S3G_EAWS);
		assert_string_equal(c.code, "AccessGrantsLocationAlreadyExistsError");
		assert_int_equal(c.http_code, 409);
		cap_clear(&c);

		lr.scope = "s3://bucket-two/some prefix+x";
		s3control_create_location(cl, &lr, on_loc, &c);
		WAIT(&l, &c);
		OK(&c);
		snprintf(loc2, sizeof(loc2), "%s", c.loc.id);
		assert_string_not_equal(loc2, "default");
		cap_clear(&c);
	}
	s3control_get_location(cl, loc2, on_loc, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_string_equal(c.loc.scope, "s3://bucket-two/some prefix+x");
	cap_clear(&c);

	s3control_get_instance_for_prefix(cl, "s3://bucket-two/some prefix+x/a b", on_inst, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_non_null(c.inst.arn);
	cap_clear(&c);

	s3control_list_locations(cl, NULL, NULL, on_locs, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.locs.n, 2);
	cap_clear(&c);

	s3control_list_locations(cl, "s3://bucket-two/some prefix+x", NULL, on_locs, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.locs.n, 1);
	assert_string_equal(c.locs.items[0].id, loc2);
	cap_clear(&c);

	s3control_list_locations_all(cl, NULL, 1, on_locs, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.locs.n, 2);
	cap_clear(&c);

	s3control_get_location(cl, "nosuchlocation", on_loc, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_string_equal(c.code, "NoSuchAccessGrantsLocationError");
	cap_clear(&c);

	/* Grants: 25 on the default location, with awkward characters. */
	for (int i = 0; i < 25; i++) {
		char grantee[128], sub[128];

		snprintf(grantee, sizeof(grantee), "arn:aws:iam::111122223333:role/team-%d", i % 5);
		snprintf(sub, sizeof(sub), "bucket-one/team %d/+=~*", i);
		create_grant(cl, &l, grantee, i % 2 ? "READ" : "READWRITE", sub, &c);
		OK(&c);
		assert_non_null(c.grant.id);
		assert_non_null(c.grant.grant_scope);
		if (i == 0) {
			snprintf(id0, sizeof(id0), "%s", c.grant.id);
			assert_string_equal(c.grant.grant_scope, "s3://bucket-one/team 0/+=~*");
			assert_string_equal(c.grant.sub_prefix, "bucket-one/team 0/+=~*");
		}
		ngrants++;
		cap_clear(&c);
	}
	/* Location-wide grant on the bucket location: empty S3SubPrefix comes back as NULL. */
	{
		struct shapes_create_grant_req g = {
			.location_id = loc2, .grantee_type = "IAM",
			.grantee_id = "arn:aws:iam::111122223333:role/wide", .permission = "WRITE",
		};

		s3control_create_grant(cl, &g, on_grant, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_null(c.grant.sub_prefix);
		assert_string_equal(c.grant.location_id, loc2);
		ngrants++;
		cap_clear(&c);
	}
	/* The same grant again: 409, not retried. */
	create_grant(cl, &l, "arn:aws:iam::111122223333:role/team-0", "READWRITE", "bucket-one/team 0/+=~*", &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_int_equal(c.http_code, 409);
	assert_string_equal(c.code, "AccessGrantAlreadyExists");
	assert_int_equal(c.attempts, 1);
	assert_true(STARTS(c.error, "CreateAccessGrant: AccessGrantAlreadyExists: "));
	cap_clear(&c);

	s3control_get_grant(cl, id0, on_grant, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_string_equal(c.grant.id, id0);
	assert_string_equal(c.grant.grantee_id, "arn:aws:iam::111122223333:role/team-0");
	assert_string_equal(c.grant.permission, "READWRITE");
	cap_clear(&c);

	/* One page of 10 with a NextToken (contains + / =). */
	{
		struct s3control_page pg = {.max_results = 10};
		char tok[1024];

		s3control_list_grants(cl, NULL, &pg, on_grants, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.grants.n, 10);
		assert_non_null(c.grants.next_token);
		snprintf(tok, sizeof(tok), "%s", c.grants.next_token);
		cap_clear(&c);
		pg.next_token = tok;
		s3control_list_grants(cl, NULL, &pg, on_grants, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.grants.n, 10);
		cap_clear(&c);
	}
	s3control_list_grants_all(cl, NULL, 7, on_grants, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.grants.n, ngrants);
	cap_clear(&c);

	s3control_list_grants_pages(cl, NULL, 10, on_page, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.pages, 3);
	assert_int_equal(c.grants.n, ngrants);
	c.grants.n = 0;
	cap_clear(&c);

	/* Filters. */
	{
		struct s3control_grant_filter f = {.permission = "READ"};

		s3control_list_grants_all(cl, &f, 0, on_grants, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.grants.n, 12);
		cap_clear(&c);

		f = (struct s3control_grant_filter){.grantee_type = "IAM",
			.grantee_id = "arn:aws:iam::111122223333:role/team-1"};
		s3control_list_grants_all(cl, &f, 2, on_grants, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.grants.n, 5);
		cap_clear(&c);

		f = (struct s3control_grant_filter){.grant_scope = "s3://bucket-one/team 3/+=~*"};
		s3control_list_grants_all(cl, &f, 0, on_grants, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.grants.n, 1);
		cap_clear(&c);
	}

	/* A location with grants cannot go; delete grant, then 404 on it. */
	s3control_delete_location(cl, "default", on_done, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_string_equal(c.code, "AccessGrantsLocationNotEmptyError");
	cap_clear(&c);

	s3control_delete_grant(cl, id0, on_done, &c);
	WAIT(&l, &c);
	OK(&c);
	assert_int_equal(c.http_code, 200);
	cap_clear(&c);

	s3control_get_grant(cl, id0, on_grant, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_int_equal(c.http_code, 404);
	assert_string_equal(c.code, "NoSuchAccessGrantError");
	assert_true(STARTS(c.error, "GetAccessGrant: NoSuchAccessGrantError"));
	cap_clear(&c);

	s3control_delete_grant(cl, id0, on_done, &c);
	WAIT(&l, &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_int_equal(c.http_code, 404);
	cap_clear(&c);

	/* Empty location goes. */
	{
		struct s3control_grant_filter f = {.grantee_id = "arn:aws:iam::111122223333:role/wide",
						   .grantee_type = "IAM"};

		s3control_list_grants_all(cl, &f, 0, on_grants, &c);
		WAIT(&l, &c);
		OK(&c);
		assert_int_equal(c.grants.n, 1);
		snprintf(id0, sizeof(id0), "%s", c.grants.items[0].id);
		cap_clear(&c);
		s3control_delete_grant(cl, id0, on_done, &c);
		WAIT(&l, &c);
		OK(&c);
		cap_clear(&c);
		s3control_delete_location(cl, loc2, on_done, &c);
		WAIT(&l, &c);
		OK(&c);
		cap_clear(&c);
	}

	/* A request body that cannot be built fails cleanly, asynchronously. */
	{
		struct shapes_create_grant_req g = {.location_id = "default"};

		s3control_create_grant(cl, &g, on_grant, &c);
		assert_int_equal(c.n, 0);
		WAIT(&l, &c);
		assert_int_equal(c.status, S3G_EINVAL);
		assert_true(STARTS(c.error, "CreateAccessGrant: "));
		cap_clear(&c);
	}
	fx_loop_done(&l, cl, prov);
}

static void test_wrong_secret(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct cap c = {0};

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l, "not-the-secret");
	cl = fx_client(&l, &fake, prov, NULL);
	create_grant(cl, &l, "arn:aws:iam::111122223333:role/x", "READ", "b/x/*", &c);
	assert_int_equal(c.status, S3G_EAWS);
	assert_int_equal(c.http_code, 403);
	assert_string_equal(c.code, "SignatureDoesNotMatch");
	assert_int_equal(c.attempts, 1);
	assert_true(STARTS(c.error, "CreateAccessGrant: SignatureDoesNotMatch: The request signature we calculated "
			    "does not match"));
	assert_null(strstr(c.error, "not-the-secret"));
	cap_clear(&c);
	fx_loop_done(&l, cl, prov);
}

/* Many calls at once through the per-client cap: all succeed, FIFO excess. */
static void test_in_flight_cap(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct aws_client_opts o;
	struct aws_client_stats st;
	struct cap c[200];

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l, FX_SECRET);
	aws_client_opts_default(&o);
	o.max_in_flight = 8;
	cl = fx_client(&l, &fake, prov, &o);
	memset(c, 0, sizeof(c));
	{
		struct cap ci = {0};

		s3control_create_instance(cl, NULL, on_inst, &ci);
		WAIT(&l, &ci);
		OK(&ci);
		cap_clear(&ci);
	}
	int done = 0;
	for (int i = 0; i < 200; i++)
		s3control_get_instance(cl, on_inst, &c[i]);
	aws_client_stats(cl, &st);
	assert_int_equal(st.in_flight, 200);
	while (done < 200) {
		uv_run(&l.loop, UV_RUN_NOWAIT);
		done = 0;
		for (int i = 0; i < 200; i++)
			done += c[i].n;
	}
	for (int i = 0; i < 200; i++) {
		OK(&c[i]);
		cap_clear(&c[i]);
	}
	fx_loop_done(&l, cl, prov);
}

/* Closing the client with calls queued and running: each gets S3G_ECANCELLED or finishes. */
static void test_close_cancels(void **state)
{
	struct fx_loop l;
	struct credprov *prov;
	struct aws_client *cl;
	struct aws_client_opts o;
	struct cap c[20];
	int closed = 0, done;

	(void)state;
	fx_loop_init(&l);
	prov = static_prov(&l, FX_SECRET);
	aws_client_opts_default(&o);
	o.max_in_flight = 4;
	cl = fx_client(&l, &fake, prov, &o);
	fx_config(&fake, "{\"latency_ms\": 2000}");
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 20; i++)
		s3control_get_instance(cl, on_inst, &c[i]);
	uv_run(&l.loop, UV_RUN_NOWAIT);
	aws_client_close(cl, fx_client_closed, &closed);
	fx_run_until(&l, &closed, 1, 30000);
	done = 0;
	for (int i = 0; i < 20; i++) {
		done += c[i].n;
		assert_int_equal(c[i].status, S3G_ECANCELLED);
		cap_clear(&c[i]);
	}
	assert_int_equal(done, 20);
	aws_client_free(cl);
	fx_config(&fake, "{\"latency_ms\": 0}");
	fx_loop_done(&l, NULL, prov);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_all_operations, reset_fake),
		cmocka_unit_test_setup(test_wrong_secret, reset_fake),
		cmocka_unit_test_setup(test_in_flight_cap, reset_fake),
		cmocka_unit_test_setup(test_close_cancels, reset_fake),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
