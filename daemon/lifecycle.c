/* lifecycle.c — an integration's life: the seven validation tests,
 * CreateAccessGrantsLocation (creating → enabled | createError), edits
 * (editing → enabled | editError, the store rolls the edit back),
 * periodic re-validation (→ recurringValidationError and back), and the
 * end of a delete (the location after its grants → deleted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/validate.h"
#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/recon_int.h"

#define LOG_MID_LIFECYCLE "7b3b1c9e5f0a4d8e9a52d3c1e0f4a630"
#define LC_RETRY_MAX 6

enum rlc_result {
	RLC_PENDING,
	RLC_PASSED,
	RLC_FAILED,
	RLC_WARNING,
	RLC_SKIPPED,
	RLC_RESULT_MAX_
};

static const char *const rlc_names[RLC_RESULT_MAX_] = {
	[RLC_PENDING] = "pending", [RLC_PASSED] = "passed", [RLC_FAILED] = "failed",
	[RLC_WARNING] = "warning", [RLC_SKIPPED] = "skipped",
};

static const char *const test_names[RLC_TESTS] = {
	"There is no existing integration matching this configuration",
	"The provided integration name is unique across Immuta S3 integrations",
	"The provided access grants location role is a valid ARN format",
	"The provided credentials can call sts:GetCallerIdentity",
	"An S3 Access Grants instance exists in the account and region",
	"The S3 path exists and can be listed",
	"No S3 Access Grants location exists yet for the path",
};

enum { T_MATCH, T_NAME, T_ROLE, T_CALLER, T_INSTANCE, T_PATH, T_LOCATION };

static uint64_t rnd(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

void lifecycle_clear(struct rint *ri)
{
	for (int i = 0; i < RLC_TESTS; i++) {
		X_FREE(ri->lc_msg[i]);
		ri->lc_status[i] = RLC_PENDING;
	}
	X_FREE(ri->lc_location_id);
	X_FREE(ri->lc_location_arn);
	X_FREE(ri->lc_instance_arn);
	ri->lc_step = 0;
	ri->lc_attempts = 0;
	ri->lc_first_prop_ms = 0;
}

bool lifecycle_revalidate_due(struct rint *ri)
{
	uint64_t now = uv_now(ri->g->loop);

	if (!ri->revalidate_at) {
		/* first look at an enabled integration: validate after one period */
		ri->revalidate_at = now + (uint64_t)config_int(ri->g->d->cfg, CONFIG_RECONCILE_REVALIDATE_INTERVAL);
		return ri->in.integ.status == RECON_RECURRING_VALIDATION_ERROR;
	}
	return now >= ri->revalidate_at;
}

static void set_test(struct rint *ri, int t, enum rlc_result r, const char *msg)
{
	ri->lc_status[t] = r;
	x_free(ri->lc_msg[t]);
	ri->lc_msg[t] = msg ? x_strdup(msg) : NULL;
}

static void json_str(struct buf *b, const char *s)
{
	(void)!buf_puts(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			(void)!buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			(void)!buf_printf(b, "\\u%04x", *p);
		else
			(void)!buf_append(b, p, 1);
	}
	(void)!buf_puts(b, "\"");
}

static bool any_failed(const struct rint *ri)
{
	for (int i = 0; i < RLC_TESTS; i++)
		if (ri->lc_status[i] == RLC_FAILED)
			return true;
	return false;
}

static char *results_json(const struct rint *ri)
{
	struct buf b;

	buf_init(&b, 64 * 1024);
	(void)!buf_printf(&b, "{\"status\": \"%s\", \"validationTests\": [", any_failed(ri) ? "failed" : "passed");
	for (int i = 0; i < RLC_TESTS; i++) {
		(void)!buf_printf(&b, "%s{\"name\": ", i ? ", " : "");
		json_str(&b, test_names[i]);
		(void)!buf_printf(&b, ", \"status\": \"%s\"", rlc_names[ri->lc_status[i]]);
		if (ri->lc_msg[i]) {
			(void)!buf_puts(&b, ", \"message\": ");
			json_str(&b, ri->lc_msg[i]);
		}
		(void)!buf_puts(&b, "}");
	}
	(void)!buf_puts(&b, "]}");
	return buf_steal(&b);
}

static char *first_failure(const struct rint *ri)
{
	for (int i = 0; i < RLC_TESTS; i++)
		if (ri->lc_status[i] == RLC_FAILED)
			return x_asprintf("%s: %s", test_names[i], ri->lc_msg[i] ? ri->lc_msg[i] : "failed");
	return NULL;
}

/* ---- transitions ------------------------------------------------------- */

static void transition_work(struct dbjob *j)
{
	struct rint *ri = j->ri;
	struct pgerr pe;
	int r;

	if (rint_conn_locked(j) < 0)
		return;
	pgerr_clear(&pe);
	if (j->tr.from == RECON_DELETE_ERROR) {
		struct recon_transition t = { .from = RECON_DELETE_ERROR, .to = RECON_DELETING };

		r = recon_integration_transition(ri->conn, ri->iid, &t, &pe);
		if (r < 0) {
			rint_pg_fail(j, r, &pe);
			return;
		}
		j->tr.from = RECON_DELETING;
	}
	r = recon_integration_transition(ri->conn, ri->iid, &j->tr, &pe);
	if (r < 0)
		rint_pg_fail(j, r, &pe);
}

static void transition_after(struct dbjob *j)
{
	struct rint *ri = j->ri;
	char n[24];

	if (j->status < 0) {
		ri->pass_failed = true;
		rint_set_error(ri, j->err);
	} else {
		const struct log_field *f = LOG_FIELDS({ "integration", log_int(n, sizeof(n), ri->iid) },
						       { "from", recon_istatus_name(j->tr.from) },
						       { "to", recon_istatus_name(j->tr.to) },
						       { "message", j->tr.message });

		if (j->tr.to == RECON_ENABLED || j->tr.to == RECON_DELETED)
			log_notice(LOG_MID_LIFECYCLE, f, "integration %s", recon_istatus_name(j->tr.to));
		else
			log_warning(LOG_MID_LIFECYCLE, f, "integration %s", recon_istatus_name(j->tr.to));
		if (j->tr.to == RECON_ENABLED) {
			ri->want_resync = true;
			ri->want_pass = true;
		}
		if (j->tr.to == RECON_DELETED)
			ri->resync_at = 0;
		if (j->tr.to == RECON_DELETED || j->tr.to == RECON_CREATE_ERROR || j->tr.to == RECON_EDIT_ERROR)
			rint_aws_retire(ri);   /* no more calls until an edit or a new pass needs them */
	}
	lifecycle_clear(ri);
	rint_pass_done(ri);
}

static void transition(struct rint *ri, enum recon_istatus to, bool with_results, const char *message)
{
	struct dbjob *j = rint_job(ri, transition_work, transition_after);

	j->tr.from = ri->in.integ.status;
	j->tr.to = to;
	if (with_results) {
		j->results_json = results_json(ri);
		j->tr.results_json = j->results_json;
	}
	if (message) {
		j->message = x_strdup(message);
		j->tr.message = j->message;
	}
	if (ri->lc_location_id) {
		j->tr.location_id = ri->lc_location_id;
		j->tr.location_arn = ri->lc_location_arn;
		j->tr.instance_arn = ri->lc_instance_arn;
	}
	rint_submit(ri, j);
}

/* ---- the tests ------------------------------------------------------------ */

static void next_test(struct rint *ri);

static void retry_later(struct rint *ri, void (*cb)(struct rint *))
{
	uint64_t d = 250u << (ri->lc_attempts < 6 ? ri->lc_attempts : 6);

	ri->lc_timer_cb = cb;
	recond_lc_timer(ri, d / 2 + rnd() % (d / 2 + 1));
}

static bool transient(const struct raws_result *res)
{
	if (res->status == S3G_ECREDS)
		return false;   /* no credentials: retrying at once will not help */
	return plan_classify(PLAN_DELETE, (int)res->http_code, res->code, res->message, 0, 0, 0) ==
	       PLAN_CLASS_RETRY;
}

static void run_step(struct rint *ri);
static void finish_tests(struct rint *ri);

/* The credentials could not be had (AssumeRole refused, empty chain): test
 * t fails with the reason and the tests after it cannot run. */
static bool creds_failed(struct rint *ri, int t, const struct raws_result *res)
{
	if (res->status != S3G_ECREDS)
		return false;
	set_test(ri, t, RLC_FAILED, res->error);
	for (int k = t + 1; k < RLC_TESTS; k++)
		set_test(ri, k, RLC_SKIPPED, "no usable AWS credentials");
	ri->lc_step = RLC_TESTS;
	finish_tests(ri);
	return true;
}

/* Common handling of one test's call: retry transient failures, else record. */
static bool lc_retry(struct rint *ri, const struct raws_result *res)
{
	if (res->status < 0 && transient(res) && ri->lc_attempts < LC_RETRY_MAX && !ri->g->stopping) {
		ri->lc_attempts++;
		retry_later(ri, run_step);
		return true;
	}
	ri->lc_attempts = 0;
	return false;
}

static void on_caller(const struct raws_result *res, void *out, void *user)
{
	struct rint *ri = user;
	const struct shapes_caller_identity *who = out;

	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	if (lc_retry(ri, res) || creds_failed(ri, T_CALLER, res))
		return;
	if (res->status < 0) {
		set_test(ri, T_CALLER, RLC_FAILED, res->error);
	} else if (who && who->account && strcmp(who->account, ri->in.integ.d.account) != 0) {
		char *m = x_asprintf("the credentials belong to account %s, not %s", who->account,
				     ri->in.integ.d.account);

		set_test(ri, T_CALLER, RLC_WARNING, m);
		x_free(m);
	} else {
		set_test(ri, T_CALLER, RLC_PASSED, who && who->arn ? who->arn : NULL);
	}
	ri->lc_step++;
	next_test(ri);
}

static void on_instance(const struct raws_result *res, void *out, void *user)
{
	struct rint *ri = user;
	const struct shapes_instance *in = out;

	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	if (lc_retry(ri, res) || creds_failed(ri, T_INSTANCE, res))
		return;
	if (res->status < 0) {
		set_test(ri, T_INSTANCE, RLC_FAILED, res->error);
	} else {
		set_test(ri, T_INSTANCE, RLC_PASSED, NULL);
		x_free(ri->lc_instance_arn);
		ri->lc_instance_arn = in && in->arn ? x_strdup(in->arn) : NULL;
	}
	ri->lc_step++;
	next_test(ri);
}

static void on_objects(const struct raws_result *res, void *out, void *user)
{
	struct rint *ri = user;

	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	if (lc_retry(ri, res) || creds_failed(ri, T_PATH, res))
		return;
	set_test(ri, T_PATH, res->status < 0 ? RLC_FAILED : RLC_PASSED, res->status < 0 ? res->error : NULL);
	ri->lc_step++;
	next_test(ri);
}

static void on_locations(const struct raws_result *res, void *out, void *user)
{
	struct rint *ri = user;
	const struct shapes_location_list *l = out;
	const struct recon_integration *it = &ri->in.integ;
	const struct shapes_location *ours = NULL, *other = NULL;

	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	if (lc_retry(ri, res) || creds_failed(ri, T_LOCATION, res))
		return;
	if (res->status < 0) {
		set_test(ri, T_LOCATION, RLC_FAILED, res->error);
		goto out;
	}
	for (size_t i = 0; l && i < l->n; i++) {
		const struct shapes_location *x = &l->items[i];

		if (!x->scope || strcmp(x->scope, it->d.location_scope) != 0)
			continue;
		if ((it->d.location_id && x->id && strcmp(x->id, it->d.location_id) == 0) ||
		    (!it->d.location_id && x->iam_role_arn && strcmp(x->iam_role_arn, it->location_role_arn) == 0))
			ours = x;
		else
			other = x;
	}
	if (it->status == RECON_CREATING) {
		if (ours) {
			/* Made by an earlier attempt of ours (crash before the record): adopt. */
			ri->lc_location_id = x_strdup(ours->id);
			ri->lc_location_arn = ours->arn ? x_strdup(ours->arn) : NULL;
			set_test(ri, T_LOCATION, RLC_PASSED, "a location with this scope and role exists: adopted");
		} else if (other) {
			char *m = x_asprintf("409 Conflict: location %s already covers %s", other->id ? other->id : "?",
					     it->d.location_scope);

			set_test(ri, T_LOCATION, RLC_FAILED, m);
			x_free(m);
		} else {
			set_test(ri, T_LOCATION, RLC_PASSED, NULL);
		}
	} else if (it->d.location_id || strcmp(it->d.location_scope, "s3://") != 0) {
		set_test(ri, T_LOCATION, ours ? RLC_PASSED : RLC_FAILED,
			 ours ? "the integration's location is registered" : "the integration's location is gone");
	} else {
		set_test(ri, T_LOCATION, RLC_PASSED, NULL);
	}
out:
	ri->lc_step++;
	next_test(ri);
}

static void on_location_created(const struct raws_result *res, void *out, void *user)
{
	struct rint *ri = user;
	const struct shapes_location *loc = out;
	uint64_t now = uv_now(ri->g->loop);
	uint64_t window = (uint64_t)config_int(ri->g->d->cfg, CONFIG_RECONCILE_PROPAGATION_WINDOW);
	enum plan_class c;
	char *m;

	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	if (res->status == 0 && loc && loc->id) {
		ri->lc_location_id = x_strdup(loc->id);
		ri->lc_location_arn = loc->arn ? x_strdup(loc->arn) : NULL;
		transition(ri, RECON_ENABLED, true, NULL);
		return;
	}
	c = plan_classify(PLAN_CREATE, (int)res->http_code, res->code, res->message,
			  ri->lc_first_prop_ms ? ri->lc_first_prop_ms : now, now, window);
	if ((c == PLAN_CLASS_PROPAGATION || (c == PLAN_CLASS_RETRY && ri->lc_attempts < LC_RETRY_MAX)) &&
	    !ri->g->stopping) {
		if (c == PLAN_CLASS_PROPAGATION && !ri->lc_first_prop_ms)
			ri->lc_first_prop_ms = now;
		ri->lc_attempts++;
		retry_later(ri, run_step);
		return;
	}
	if (c == PLAN_CLASS_RETRY || ri->g->stopping) {
		ri->pass_failed = true;
		rint_set_error(ri, res->error);
		rint_pass_done(ri);
		return;
	}
	m = x_asprintf("CreateAccessGrantsLocation failed: %s", res->error);
	transition(ri, RECON_CREATE_ERROR, true, m);
	x_free(m);
}

static void finish_tests(struct rint *ri)
{
	enum recon_istatus st = ri->in.integ.status;
	char *why = first_failure(ri);

	switch (st) {
	case RECON_CREATING:
		if (why) {
			transition(ri, RECON_CREATE_ERROR, true, why);
		} else if (ri->lc_location_id) {
			transition(ri, RECON_ENABLED, true, NULL);
		} else {
			ri->lc_step = 100;
			ri->lc_attempts = 0;
			run_step(ri);
		}
		break;
	case RECON_EDITING:
		transition(ri, why ? RECON_EDIT_ERROR : RECON_ENABLED, true, why);
		break;
	default:
		ri->revalidate_at = uv_now(ri->g->loop) +
				    (uint64_t)config_int(ri->g->d->cfg, CONFIG_RECONCILE_REVALIDATE_INTERVAL);
		transition(ri, why ? RECON_RECURRING_VALIDATION_ERROR : RECON_ENABLED, true, why);
		break;
	}
	x_free(why);
}

static void run_step(struct rint *ri)
{
	const struct recon_integration *it = &ri->in.integ;

	switch (ri->lc_step) {
	case T_CALLER:
		if (!raws_has_sts_endpoint(ri->aws)) {
			set_test(ri, T_CALLER, RLC_SKIPPED, "no STS endpoint configured beside the custom S3 Control endpoint");
			ri->lc_step++;
			next_test(ri);
			return;
		}
		raws_caller_identity(ri->aws, on_caller, ri);
		return;
	case T_INSTANCE:
		raws_get_instance(ri->aws, on_instance, ri);
		return;
	case T_PATH: {
		const char *p = it->d.location_scope + 5;   /* after "s3://" */
		const char *slash = strchr(p, '/');
		char *bucket;

		if (!*p) {
			set_test(ri, T_PATH, RLC_SKIPPED, "the location is s3:// (every bucket)");
			ri->lc_step++;
			next_test(ri);
			return;
		}
		if (!raws_has_s3_endpoint(ri->aws)) {
			set_test(ri, T_PATH, RLC_SKIPPED, "no S3 endpoint configured beside the custom S3 Control endpoint");
			ri->lc_step++;
			next_test(ri);
			return;
		}
		bucket = slash ? x_strndup(p, (size_t)(slash - p)) : x_strdup(p);
		raws_list_objects(ri->aws, bucket, slash ? slash + 1 : "", on_objects, ri);
		x_free(bucket);
		return;
	}
	case T_LOCATION:
		raws_list_locations(ri->aws, it->d.location_scope, NULL, on_locations, ri);
		return;
	case 100:
		raws_create_location(ri->aws, it->d.location_scope, it->location_role_arn, on_location_created, ri);
		return;
	default:
		finish_tests(ri);
		return;
	}
}

static void next_test(struct rint *ri)
{
	if (ri->lc_step >= RLC_TESTS) {
		finish_tests(ri);
		return;
	}
	run_step(ri);
}

void lifecycle_validate(struct rint *ri)
{
	const struct recon_integration *it = &ri->in.integ;
	enum validate_principal kind;
	const char *why = NULL;

	lifecycle_clear(ri);
	set_test(ri, T_MATCH, RLC_PASSED, NULL);   /* the schema's unique indexes */
	set_test(ri, T_NAME, RLC_PASSED, NULL);
	if (validate_iam_arn(it->location_role_arn, strlen(it->location_role_arn), &kind, &why) == 0 &&
	    kind == VALIDATE_IAM_ROLE)
		set_test(ri, T_ROLE, RLC_PASSED, NULL);
	else
		set_test(ri, T_ROLE, RLC_FAILED, why ? why : "not an IAM role ARN");
	if (rint_make_aws(ri) < 0) {
		set_test(ri, T_CALLER, RLC_FAILED, ri->pass_error ? ri->pass_error : "no usable credentials");
		X_FREE(ri->pass_error);
		for (int t = T_INSTANCE; t < RLC_TESTS; t++)
			set_test(ri, t, RLC_SKIPPED, "no usable credentials");
		ri->lc_step = RLC_TESTS;
		finish_tests(ri);
		return;
	}
	ri->lc_step = T_CALLER;
	run_step(ri);
}

/* ---- delete --------------------------------------------------------------- */

static void on_location_deleted(const struct raws_result *res, void *out, void *user)
{
	struct rint *ri = user;

	if (ri->g->closing) {
		rint_maybe_free(ri);
		return;
	}
	if (res->status == 0 || (res->code && strcmp(res->code, "NoSuchAccessGrantsLocationError") == 0) ||
	    res->http_code == 404) {
		transition(ri, RECON_DELETED, false, NULL);
		return;
	}
	if ((transient(res) || (res->code && strcmp(res->code, "AccessGrantsLocationNotEmptyError") == 0)) &&
	    ri->lc_attempts < LC_RETRY_MAX && !ri->g->stopping) {
		ri->lc_attempts++;
		retry_later(ri, lifecycle_delete_location);
		return;
	}
	if (transient(res) || ri->g->stopping) {
		ri->pass_failed = true;
		rint_set_error(ri, res->error);
		rint_pass_done(ri);
		return;
	}
	{
		char *m = x_asprintf("DeleteAccessGrantsLocation failed: %s", res->error);

		transition(ri, RECON_DELETE_ERROR, false, m);
		x_free(m);
	}
}

void lifecycle_delete_location(struct rint *ri)
{
	if (ri->pass_failed) {
		rint_pass_done(ri);
		return;
	}
	raws_delete_location(ri->aws, rint_location_id(ri), on_location_deleted, ri);
}

void lifecycle_deleted(struct rint *ri)
{
	transition(ri, RECON_DELETED, false, NULL);
}
