/* s3grantctl policy integration ID | policy export: the IAM documents an
 * admin creates for s3grantd, filled in from the database (core/policy.h
 * builds them). Text mode prints each document under a "# what it is"
 * heading; --json prints one object keyed by document. No secret is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/policy.h"
#include "core/xalloc.h"
#include "ctl/ctl.h"
#include "store/export.h"

static const enum policy_doc text_order[] = {
	POLICY_IDENTITY, POLICY_CALLER, POLICY_TRUST, POLICY_LOCATION_TRUST, POLICY_LOCATION_ROLE,
	POLICY_BUCKET, POLICY_KMS,
};

static int print_set(struct ctl *c, const struct policy_set *s, const char *const *notes)
{
	if (c->json) {
		struct buf b;
		int r;

		buf_init(&b, 8 * POLICY_DOC_MAX_BYTES);
		r = policy_set_json(s, &b);
		if (r == 0)
			fputs(buf_str(&b), stdout);
		buf_free(&b);
		return r == 0 ? CTL_OK : ctl_fail(c, CTL_FAIL, "policy: %s", err_str(r));
	}
	for (size_t i = 0, shown = 0; i < sizeof(text_order) / sizeof(text_order[0]); i++) {
		enum policy_doc d = text_order[i];

		if (s->doc[d])
			printf("%s# %s\n%s", shown++ ? "\n" : "", s->title[d], s->doc[d]);
	}
	for (; notes && *notes; notes++)
		printf("\n# note: %s\n", *notes);
	return CTL_OK;
}

static const char *val(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

static int do_integration(struct ctl *c)
{
	struct policy_integration in = { 0 };
	struct policy_set set = { 0 };
	PGresult *res;
	const char *p[1];
	const char *notes[3] = { NULL };
	char msg[512], *label = NULL, *end;
	int code = CTL_OK, r, n = 0;

	if (c->argc != 1)
		return ctl_fail(c, CTL_USAGE, "usage: s3grantctl policy integration ID [--kms-key ARN] "
				"[--principal ARN] [--json]");
	p[0] = c->argv[0];
	strtoll(p[0], &end, 10);
	if (!p[0][0] || *end)
		return ctl_fail(c, CTL_BADINPUT, "id: '%s' is not an integration id", p[0]);
	res = ctl_query(c, &code,
		"SELECT i.id, i.name, i.aws_account_id, i.aws_region, i.location_path, i.location_role_arn,"
		" i.role_to_assume, coalesce(i.external_id, t.id::text), i.role_session_name,"
		" EXISTS (SELECT 1 FROM s3grant.users u WHERE u.principal_type = 'directory_user')"
		" FROM s3grant.integrations i CROSS JOIN s3grant.tenant t WHERE i.id = $1::bigint", 1, p);
	if (!res)
		return code;
	if (PQntuples(res) == 0) {
		code = ctl_fail(c, CTL_NOTFOUND, "Integration with ID %s not found.", p[0]);
		goto out;
	}
	label = x_asprintf("integration %s (%s)", val(res, 0), val(res, 1));
	in.label = label;
	in.account = val(res, 2);
	in.region = val(res, 3);
	in.location_path = val(res, 4);
	in.location_role = val(res, 5);
	in.role_to_assume = val(res, 6) && val(res, 6)[0] ? val(res, 6) : NULL;
	in.external_id = val(res, 7);
	in.session_name = val(res, 8) && val(res, 8)[0] ? val(res, 8) : NULL;
	in.directory_users = strcmp(val(res, 9), "t") == 0;
	in.principal = c->principal;
	in.kms_key_arn = c->kms_key;
	r = policy_integration(&in, &set, msg, sizeof(msg));
	if (r < 0) {
		code = ctl_fail(c, r == S3G_EINVAL ? CTL_BADINPUT : CTL_FAIL, "%s", r == S3G_EINVAL ? msg : err_str(r));
		goto out;
	}
	if (in.role_to_assume && !c->principal)
		notes[n++] = "the trust policy trusts the role's account root; pass --principal ARN (the IAM user "
			     "or role s3grantd starts from) to name it exactly";
	if (!c->kms_key)
		notes[n++] = "if the location's buckets use SSE-KMS, pass --kms-key ARN for the KMS statements";
	code = print_set(c, &set, notes);
out:
	policy_set_free(&set);
	x_free(label);
	PQclear(res);
	return code;
}

static int do_export(struct ctl *c)
{
	struct exportdb_config cfg = { 0 };
	struct policy_export in = { 0 };
	struct policy_set set = { 0 };
	struct pgerr err;
	const char *notes[3] = { NULL };
	char msg[512];
	int r, code, n = 0;

	if (c->argc != 0)
		return ctl_fail(c, CTL_USAGE, "usage: s3grantctl policy export [--principal ARN] [--json]");
	r = exportdb_config_load(c->conn, &cfg, &err);
	if (r == S3G_ENOTFOUND)
		return ctl_fail(c, CTL_NOTFOUND, "no export is configured (s3grantctl export-config set -f FILE)");
	if (r < 0)
		return ctl_fail(c, ctl_code(r), "%s", err.message);
	in.bucket = cfg.bucket;
	in.region = cfg.region;
	in.path = cfg.path;
	in.kms_key = cfg.kms_key_id;
	in.principal = c->principal;
	if (cfg.auth == EXPORTDB_AUTH_ASSUME_ROLE) {
		in.role_arn = cfg.role_arn;
		in.external_id = cfg.external_id;
	}
	r = policy_export(&in, &set, msg, sizeof(msg));
	if (r < 0) {
		code = ctl_fail(c, r == S3G_EINVAL ? CTL_BADINPUT : CTL_FAIL, "%s", r == S3G_EINVAL ? msg : err_str(r));
		goto out;
	}
	if (!in.role_arn && !c->principal)
		notes[n++] = "pass --principal ARN (the IAM user whose access key s3grantd uses) for the bucket "
			     "policy and KMS key policy statements";
	else if (in.role_arn && !c->principal)
		notes[n++] = "the trust policy trusts the role's account root; pass --principal ARN (the IAM user "
			     "or role s3grantd starts from) to name it exactly";
	code = print_set(c, &set, notes);
out:
	policy_set_free(&set);
	exportdb_config_free(&cfg);
	return code;
}

int ctl_cmd_policy(struct ctl *c, const char *sub)
{
	if (sub && strcmp(sub, "integration") == 0)
		return do_integration(c);
	if (sub && strcmp(sub, "export") == 0)
		return do_export(c);
	return ctl_fail(c, CTL_USAGE, "usage: s3grantctl policy integration ID | policy export "
			"[--kms-key ARN] [--principal ARN] [--json]");
}
