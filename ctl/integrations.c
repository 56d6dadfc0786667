/* s3grantctl integrations: the seed's /integrations JSON in and out.
 * Secrets are sealed (store/secrets.h) before they reach the database and
 * are printed as "<REDACTED>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "ctl/ctl.h"
#include "store/secrets.h"

#define JSON_MAX (1024 * 1024)
#define SECRET_CONTEXT "integrations.secret_access_key"

static const char *const test_names[] = {
	"There is no existing integration matching this configuration",
	"The provided integration name is unique across Immuta S3 integrations",
	"The provided access grants location role is a valid ARN format",
};

struct icfg {
	const char *name, *account, *region, *role, *path, *auth, *key_id, *secret, *assume;
};

static int read_input(struct ctl *c, yajl_val *ret_root)
{
	struct buf b;
	char chunk[4096], errbuf[256];
	FILE *f;
	size_t n;
	int code = CTL_OK;
	yajl_val root;

	if (!c->file)
		return ctl_fail(c, CTL_USAGE, "missing -f FILE (JSON; - for stdin)");
	f = strcmp(c->file, "-") == 0 ? stdin : fopen(c->file, "r");
	if (!f)
		return ctl_fail(c, CTL_BADINPUT, "cannot open %s", c->file);
	buf_init(&b, JSON_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) < 0) {
			code = ctl_fail(c, CTL_BADINPUT, "input is larger than %d bytes", JSON_MAX);
			goto out;
		}
	root = yajl_tree_parse(buf_str(&b), errbuf, sizeof(errbuf));
	if (!root || !YAJL_IS_OBJECT(root)) {
		errbuf[strcspn(errbuf, "\n")] = '\0';
		code = ctl_fail(c, CTL_BADINPUT, "input is not a JSON object%s%s", root ? "" : ": ",
				root ? "" : errbuf);
		yajl_tree_free(root);
		goto out;
	}
	*ret_root = root;
out:
	if (f != stdin)
		fclose(f);
	buf_free(&b);
	return code;
}

static const char *str_at(yajl_val obj, const char *key)
{
	const char *path[] = { key, NULL };
	yajl_val v = yajl_tree_get(obj, path, yajl_t_string);

	return v ? YAJL_GET_STRING(v) : NULL;
}

static int parse_config(struct ctl *c, yajl_val root, struct icfg *ret)
{
	const char *path[] = { "config", NULL };
	yajl_val cfg = yajl_tree_get(root, path, yajl_t_object);
	const char *type = str_at(root, "type");
	struct icfg ic;

	if (type && strcmp(type, "Native S3") != 0)
		return ctl_fail(c, CTL_BADINPUT, "type: '%s' is not supported (only \"Native S3\")", type);
	if (!cfg)
		return ctl_fail(c, CTL_BADINPUT, "config: missing object");
	ic.name = str_at(cfg, "name");
	ic.account = str_at(cfg, "awsAccountId");
	ic.region = str_at(cfg, "awsRegion");
	ic.role = str_at(cfg, "awsLocationRole");
	ic.path = str_at(cfg, "awsLocationPath");
	ic.auth = str_at(cfg, "authenticationType");
	ic.key_id = str_at(cfg, "awsAccessKeyId");
	ic.secret = str_at(cfg, "awsSecretAccessKey");
	ic.assume = str_at(cfg, "awsRoleToAssume");
	if (ic.assume && !ic.assume[0])
		ic.assume = NULL;
	if (!ic.auth)
		ic.auth = "auto";
	*ret = ic;
	return CTL_OK;
}

static int require_create(struct ctl *c, const struct icfg *ic)
{
	const struct { const char *v, *field; } req[] = {
		{ ic->name, "name" }, { ic->account, "awsAccountId" }, { ic->region, "awsRegion" },
		{ ic->role, "awsLocationRole" }, { ic->path, "awsLocationPath" },
	};

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
		if (!req[i].v)
			return ctl_fail(c, CTL_BADINPUT, "config.%s: required", req[i].field);
	return CTL_OK;
}

/* Seal the secret into a bytea text literal (\x...). NULL when there is none. */
static int seal_secret(struct ctl *c, const struct icfg *ic, char **ret_hex)
{
	struct secrets_key key;
	char *path = NULL;
	uint8_t *env = NULL;
	size_t len;
	int r, code = CTL_OK;

	*ret_hex = NULL;
	if (strcmp(ic->auth, "accessKey") != 0 || !ic->secret)
		return CTL_OK;
	r = secrets_key_path(c->key_file, &path);
	if (r < 0)
		return ctl_fail(c, CTL_FAIL, "no secrets key: set --secrets-key-file, "
				"S3GRANT_SECRETS_KEY_FILE or $CREDENTIALS_DIRECTORY/secrets-key");
	r = secrets_key_load(path, &key);
	if (r < 0) {
		code = ctl_fail(c, CTL_FAIL, "cannot load the secrets key %s: %s", path, err_str(r));
		goto out;
	}
	r = secrets_seal(&key, SECRET_CONTEXT, ic->secret, strlen(ic->secret), &env, &len);
	secrets_key_wipe(&key);
	if (r < 0) {
		code = ctl_fail(c, CTL_BADINPUT, "config.awsSecretAccessKey: %s", err_str(r));
		goto out;
	}
	{
		char *hex = x_malloc(2 * len + 3);

		hex[0] = '\\';
		hex[1] = 'x';
		for (size_t i = 0; i < len; i++)
			snprintf(hex + 2 + 2 * i, 3, "%02x", env[i]);
		*ret_hex = hex;
	}
out:
	x_free(env);
	x_free(path);
	return code;
}

static int role_arn_ok(const char *s)
{
	const char *p;

	if (!s || strncmp(s, "arn:aws", 7) != 0)
		return 0;
	p = strstr(s, ":iam::");
	if (!p)
		return 0;
	p += 6;
	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return strncmp(p, ":role/", 6) == 0 && p[6] != '\0';
}

/* {"status":...,"validationTests":[...]} for the checks s3grantctl can run itself;
 * the daemon runs and records the AWS ones. */
static char *local_validation(const struct icfg *ic)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *out;
	size_t len;
	int arn = role_arn_ok(ic->role);
	char *s;

	yajl_gen_map_open(g);
	ctl_gen_kv(g, "status", arn ? "pending" : "failed");
	ctl_gen_str(g, "validationTests");
	yajl_gen_array_open(g);
	for (int i = 0; i < 3; i++) {
		yajl_gen_map_open(g);
		ctl_gen_kv(g, "name", test_names[i]);
		ctl_gen_kv(g, "status", i < 2 || arn ? "passed" : "failed");
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &out, &len);
	s = x_strndup((const char *)out, len);
	yajl_gen_free(g);
	return s;
}

enum { COL_ID, COL_STATUS, COL_VR, COL_NAME, COL_ACCOUNT, COL_REGION, COL_ROLE, COL_PATH, COL_AUTH,
       COL_KEYID, COL_HASSECRET, COL_ASSUME };

#define SELECT_COLS "SELECT id, status, validation_results::text, name, aws_account_id, aws_region," \
	" location_role_arn, location_path, authentication_type, access_key_id," \
	" secret_access_key IS NOT NULL, role_to_assume FROM s3grant.integrations"

static const char *val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static void gen_validation(yajl_gen g, const PGresult *res, int row)
{
	const char *vr = val(res, row, COL_VR);

	ctl_gen_str(g, "validationResults");
	if (vr)
		yajl_gen_number(g, vr, strlen(vr));   /* already JSON text from jsonb */
	else
		yajl_gen_null(g);
}

static void gen_full(yajl_gen g, const PGresult *res, int row)
{
	yajl_gen_map_open(g);
	ctl_gen_kv(g, "id", val(res, row, COL_ID));
	ctl_gen_kv(g, "status", val(res, row, COL_STATUS));
	gen_validation(g, res, row);
	ctl_gen_kv(g, "type", "Native S3");
	ctl_gen_str(g, "autoBootstrap");
	yajl_gen_bool(g, 0);
	ctl_gen_str(g, "config");
	yajl_gen_map_open(g);
	ctl_gen_kv(g, "name", val(res, row, COL_NAME));
	ctl_gen_kv(g, "awsAccountId", val(res, row, COL_ACCOUNT));
	ctl_gen_kv(g, "awsRegion", val(res, row, COL_REGION));
	ctl_gen_kv(g, "awsLocationRole", val(res, row, COL_ROLE));
	ctl_gen_kv(g, "awsLocationPath", val(res, row, COL_PATH));
	ctl_gen_kv(g, "authenticationType", val(res, row, COL_AUTH));
	if (val(res, row, COL_KEYID))
		ctl_gen_kv(g, "awsAccessKeyId", val(res, row, COL_KEYID));
	if (strcmp(val(res, row, COL_HASSECRET), "t") == 0)
		ctl_gen_kv(g, "awsSecretAccessKey", "<REDACTED>");
	if (val(res, row, COL_ASSUME))
		ctl_gen_kv(g, "awsRoleToAssume", val(res, row, COL_ASSUME));
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static void gen_short(yajl_gen g, const PGresult *res, int row)
{
	yajl_gen_map_open(g);
	ctl_gen_kv(g, "id", val(res, row, COL_ID));
	ctl_gen_kv(g, "status", val(res, row, COL_STATUS));
	gen_validation(g, res, row);
	yajl_gen_map_close(g);
}

static PGresult *load(struct ctl *c, const char *id, int *ret_code)
{
	const char *p[1] = { id };
	PGresult *res;
	char *end;

	strtoll(id, &end, 10);
	if (!id[0] || *end) {
		*ret_code = ctl_fail(c, CTL_BADINPUT, "id: '%s' is not an integration id", id);
		return NULL;
	}
	res = ctl_query(c, ret_code, SELECT_COLS " WHERE id = $1::bigint", 1, p);
	if (res && PQntuples(res) == 0) {
		PQclear(res);
		*ret_code = ctl_fail(c, CTL_NOTFOUND, "Integration with ID %s not found.", id);
		return NULL;
	}
	return res;
}

static int emit(PGresult *res, int full)
{
	yajl_gen g = ctl_gen();

	if (full)
		gen_full(g, res, 0);
	else
		gen_short(g, res, 0);
	ctl_gen_print(g);
	PQclear(res);
	return CTL_OK;
}

static int do_create(struct ctl *c)
{
	yajl_val root = NULL;
	struct icfg ic;
	char *hex = NULL, *vr = NULL;
	PGresult *res = NULL;
	int code;

	code = read_input(c, &root);
	if (code)
		return code;
	if ((code = parse_config(c, root, &ic)) || (code = require_create(c, &ic)))
		goto out;
	{
		const char *p[2] = { ic.path, ic.name };

		/* the seed's answer when the path is taken */
		res = ctl_query(c, &code, "SELECT 1 FROM s3grant.integrations WHERE status <> 'deleted'"
				" AND rtrim(location_path, '/') = rtrim($1, '/')", 1, p);
		if (!res)
			goto out;
		if (PQntuples(res)) {
			code = ctl_fail(c, CTL_CONFLICT, "Access Grants location already exists on provided path.");
			goto out;
		}
		PQclear(res);
		res = NULL;
	}
	if ((code = seal_secret(c, &ic, &hex)))
		goto out;
	vr = local_validation(&ic);
	{
		const char *p[11] = { ic.name, ic.account, ic.region, ic.role, ic.path, ic.auth,
				      strcmp(ic.auth, "accessKey") == 0 ? ic.key_id : NULL, hex, ic.assume, vr };

		res = ctl_query(c, &code,
			"WITH i AS (INSERT INTO s3grant.integrations (name, aws_account_id, aws_region,"
			" location_role_arn, location_path, authentication_type, access_key_id,"
			" secret_access_key, role_to_assume, validation_results)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bytea, $9, $10::jsonb) RETURNING *)"
			" SELECT id, status, validation_results::text FROM i", 10, p);
	}
	if (res) {
		code = emit(res, 0);
		res = NULL;
	}
out:
	PQclear(res);
	x_free(hex);
	x_free(vr);
	yajl_tree_free(root);
	return code;
}

static int editable_state(const char *s)
{
	return strcmp(s, "enabled") == 0 || strcmp(s, "disabled") == 0 || strcmp(s, "createError") == 0 ||
	       strcmp(s, "editError") == 0 || strcmp(s, "recurringValidationError") == 0;
}

static int same_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 5 && a[la - 1] == '/')
		la--;
	while (lb > 5 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

static int do_update(struct ctl *c)
{
	yajl_val root = NULL;
	struct icfg ic;
	PGresult *cur = NULL, *res = NULL;
	char *hex = NULL;
	const char *id;
	int code;

	if (c->argc != 1)
		return ctl_fail(c, CTL_USAGE, "usage: s3grantctl integrations update ID -f FILE");
	id = c->argv[0];
	code = read_input(c, &root);
	if (code)
		return code;
	if ((code = parse_config(c, root, &ic)))
		goto out;
	cur = load(c, id, &code);
	if (!cur)
		goto out;
	if (!editable_state(val(cur, 0, COL_STATUS))) {
		code = ctl_fail(c, CTL_CONFLICT, "Unable to edit integration with ID %s in current state %s.",
				id, val(cur, 0, COL_STATUS));
		goto out;
	}
	{
		const struct { const char *given, *have, *field; } fixed[] = {
			{ ic.account, val(cur, 0, COL_ACCOUNT), "awsAccountId" },
			{ ic.region, val(cur, 0, COL_REGION), "awsRegion" },
			{ ic.role, val(cur, 0, COL_ROLE), "awsLocationRole" },
			{ ic.path, val(cur, 0, COL_PATH), "awsLocationPath" },
			{ ic.assume ? ic.assume : "", val(cur, 0, COL_ASSUME) ? val(cur, 0, COL_ASSUME) : "",
			  "awsRoleToAssume" },
		};

		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
			int same = !fixed[i].given || (i == 3 ? same_path(fixed[i].given, fixed[i].have)
						       : strcmp(fixed[i].given, fixed[i].have) == 0);

			if (!same) {
				code = ctl_fail(c, CTL_CONFLICT, "Unable to edit integration with ID %s: %s "
						"must match the existing configuration.", id, fixed[i].field);
				goto out;
			}
		}
	}
	if ((code = seal_secret(c, &ic, &hex)))
		goto out;
	{
		int access = strcmp(ic.auth, "accessKey") == 0;
		const char *p[5] = { id, ic.name, ic.auth, access ? ic.key_id : NULL, hex };

		/* accessKey without a new secret keeps the stored one */
		res = ctl_query(c, &code,
			"WITH i AS (UPDATE s3grant.integrations SET name = coalesce($2, name),"
			" authentication_type = $3, access_key_id = $4,"
			" secret_access_key = CASE WHEN $3 = 'auto' THEN NULL"
			"   ELSE coalesce($5::bytea, secret_access_key) END,"
			" status = 'editing' WHERE id = $1::bigint RETURNING *)"
			" SELECT id, status, validation_results::text FROM i", 5, p);
	}
	if (res) {
		code = emit(res, 0);
		res = NULL;
	}
out:
	PQclear(res);
	PQclear(cur);
	x_free(hex);
	yajl_tree_free(root);
	return code;
}

static int do_delete(struct ctl *c)
{
	PGresult *cur, *res;
	const char *p[1];
	int code = CTL_OK;

	if (c->argc != 1)
		return ctl_fail(c, CTL_USAGE, "usage: s3grantctl integrations delete ID");
	p[0] = c->argv[0];
	cur = load(c, p[0], &code);
	if (!cur)
		return code;
	if (strcmp(val(cur, 0, COL_STATUS), "deleting") == 0 || strcmp(val(cur, 0, COL_STATUS), "deleted") == 0 ||
	    strcmp(val(cur, 0, COL_STATUS), "editing") == 0) {
		code = ctl_fail(c, CTL_CONFLICT, "Unable to delete integration with ID %s in current state %s.",
				p[0], val(cur, 0, COL_STATUS));
		PQclear(cur);
		return code;
	}
	PQclear(cur);
	res = ctl_query(c, &code, "UPDATE s3grant.integrations SET status = 'deleting' WHERE id = $1::bigint"
			" RETURNING id, status, validation_results::text", 1, p);
	return res ? emit(res, 0) : code;
}

int ctl_cmd_integrations(struct ctl *c, const char *sub)
{
	int code = CTL_OK;
	PGresult *res;

	if (sub && strcmp(sub, "create") == 0)
		return do_create(c);
	if (sub && strcmp(sub, "update") == 0)
		return do_update(c);
	if (sub && strcmp(sub, "delete") == 0)
		return do_delete(c);
	if (sub && strcmp(sub, "get") == 0) {
		if (c->argc != 1)
			return ctl_fail(c, CTL_USAGE, "usage: s3grantctl integrations get ID");
		res = load(c, c->argv[0], &code);
		return res ? emit(res, 1) : code;
	}
	if (sub && strcmp(sub, "list") == 0) {
		yajl_gen g;

		res = ctl_query(c, &code, SELECT_COLS " ORDER BY id", 0, NULL);
		if (!res)
			return code;
		g = ctl_gen();
		yajl_gen_array_open(g);
		for (int i = 0; i < PQntuples(res); i++)
			gen_full(g, res, i);
		yajl_gen_array_close(g);
		ctl_gen_print(g);
		PQclear(res);
		return CTL_OK;
	}
	return ctl_fail(c, CTL_USAGE, "usage: s3grantctl integrations create|get|list|update|delete");
}
