/* s3grantctl export-config set|get, export run|status.
 *
 * export-config set takes the seed's JSON body: {bucket, region,
 * accessKeyId, secretAccessKey, path} or {bucket, region, roleArn, path},
 * plus optional kmsKeyId, timeOfDay ("HH:MM") and timezone (IANA name). The
 * secret is sealed (store/secrets.h) before it reaches the database and
 * printed as "<REDACTED>". Saving runs the field checks here, then
 * validate_with_aws() (the AWS-side check, exit code 6 when it fails),
 * then the upsert. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>
#include <yajl/yajl_tree.h>

#include "core/buf.h"
#include "core/schedule.h"
#include "core/xalloc.h"
#include "ctl/ctl.h"
#include "daemon/export_s3.h"
#include "store/export.h"
#include "store/secrets.h"

#define JSON_MAX (64 * 1024)

static int read_json(struct ctl *c, yajl_val *ret_root)
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
	if (b.data)   /* may hold the secret */
		memset(b.data, 0, b.len);
	memset(chunk, 0, sizeof(chunk));
	buf_free(&b);
	return code;
}

static const char *const known_keys[] = {
	"bucket", "region", "path", "accessKeyId", "secretAccessKey", "roleArn", "kmsKeyId", "timeOfDay",
	"timezone", "enabled",
};

/* A string field; type errors name the field. */
static int field(struct ctl *c, yajl_val root, const char *key, const char **ret)
{
	const char *path[] = { key, NULL };
	yajl_val v = yajl_tree_get(root, path, yajl_t_any);

	*ret = NULL;
	if (!v || YAJL_IS_NULL(v))
		return CTL_OK;
	if (!YAJL_IS_STRING(v))
		return ctl_fail(c, CTL_BADINPUT, "%s: must be a string", key);
	*ret = YAJL_GET_STRING(v);
	if (!(*ret)[0])
		*ret = NULL;
	return CTL_OK;
}

/* The AWS-side check on save: the credentials work (GetCallerIdentity, or
 * AssumeRole with ExternalId = the tenant id, signed by the credentials
 * s3grantctl finds in its environment: the default chain) and ListObjectsV2
 * on bucket/path works. daemon/export_s3.c does the calls on a private
 * loop; each failure is one line naming what to fix, exit code
 * CTL_AWS_CHECK. --no-verify skips the check: configure first, print the
 * policies with `s3grantctl policy export`, create them, then set again. */

struct check_state {
	bool done;
	int status;
	char *identity;
	char error[2048];
};

static void on_checked(void *ud, int status, const char *identity, const char *error)
{
	struct check_state *st = ud;

	st->done = true;
	st->status = status;
	st->identity = identity ? x_strdup(identity) : NULL;
	snprintf(st->error, sizeof(st->error), "%s", error ? error : err_str(status));
}

static void on_x_closed(void *ud)
{
	*(bool *)ud = true;
}

static int check_fail(struct ctl *c, const char *msg)
{
	return ctl_fail(c, CTL_AWS_CHECK, "export-config not saved: %s", msg);
}

static int validate_with_aws(struct ctl *c, const struct exportdb_config *cfg, const char *secret)
{
	struct exportdb_config probe = *cfg;
	struct check_state st = { 0 };
	struct export_s3_opts so = { .timeout_ms = 30000, .max_attempts = 3 };
	struct export_s3 *x = NULL;
	struct pgerr err;
	char *tenant = NULL;
	bool closed = false;
	uv_loop_t loop;
	int r, code = CTL_OK;

	if (c->no_verify)
		return CTL_OK;
	if (cfg->auth == EXPORTDB_AUTH_ASSUME_ROLE && !cfg->external_id) {
		r = exportdb_tenant_id(c->conn, &tenant, &err);
		if (r < 0)
			return ctl_fail(c, ctl_code(r), "%s", err.message);
		probe.tenant_id = tenant;
	}
	r = uv_loop_init(&loop);
	if (r < 0) {
		x_free(tenant);
		return ctl_fail(c, CTL_FAIL, "cannot start the AWS check: %s", uv_strerror(r));
	}
	r = export_s3_new(&loop, &so, &x);
	if (r == 0)
		r = export_s3_check(x, &probe, secret, on_checked, &st);
	if (r < 0) {
		code = ctl_fail(c, CTL_FAIL, "cannot start the AWS check: %s", err_str(r));
		st.done = true;
	}
	while (!st.done && uv_run(&loop, UV_RUN_ONCE))
		;
	if (x)
		export_s3_close(x, on_x_closed, &closed);
	while (x && !closed && uv_run(&loop, UV_RUN_ONCE))
		;
	uv_loop_close(&loop);
	if (code == CTL_OK && st.status < 0)
		code = check_fail(c, st.error);
	else if (code == CTL_OK && !c->json)
		printf("verified: %s can list s3://%s/%s\n", st.identity ? st.identity : "the credentials",
		       cfg->bucket, cfg->path ? cfg->path : "");
	x_free(st.identity);
	x_free(tenant);
	return code;
}

static int seal(struct ctl *c, const char *secret, struct exportdb_config *cfg)
{
	struct secrets_key key;
	char *path = NULL;
	int r, code = CTL_OK;

	r = secrets_key_path(c->key_file, &path);
	if (r < 0)
		return ctl_fail(c, CTL_FAIL, "no secrets key: set --secrets-key-file, "
				"S3GRANT_SECRETS_KEY_FILE or $CREDENTIALS_DIRECTORY/secrets-key");
	r = secrets_key_load(path, &key);
	if (r < 0) {
		code = ctl_fail(c, CTL_FAIL, "cannot load the secrets key %s: %s", path, err_str(r));
		goto out;
	}
	r = secrets_seal(&key, EXPORTDB_SECRET_CONTEXT, secret, strlen(secret), &cfg->secret_env,
			 &cfg->secret_env_len);
	secrets_key_wipe(&key);
	if (r < 0)
		code = ctl_fail(c, CTL_BADINPUT, "secretAccessKey: %s", err_str(r));
out:
	x_free(path);
	return code;
}

static int do_set(struct ctl *c)
{
	yajl_val root = NULL;
	struct exportdb_config cfg = { .enabled = true, .time_of_day = -1 };
	const char *bucket, *region, *path, *key_id, *secret, *role, *kms, *tod, *tz;
	char msg[512];
	struct pgerr err;
	bool in_tx = false;
	int code, r;

	code = read_json(c, &root);
	if (code)
		return code;
	for (size_t i = 0; i < YAJL_GET_OBJECT(root)->len; i++) {
		const char *k = YAJL_GET_OBJECT(root)->keys[i];
		bool known = false;

		for (size_t j = 0; j < sizeof(known_keys) / sizeof(known_keys[0]); j++)
			known |= strcmp(k, known_keys[j]) == 0;
		if (!known) {
			code = ctl_fail(c, CTL_BADINPUT, "%s: unknown field (expected bucket, region, path, accessKeyId, "
					"secretAccessKey, roleArn, kmsKeyId, timeOfDay, timezone)", k);
			goto out;
		}
	}
	if ((code = field(c, root, "bucket", &bucket)) || (code = field(c, root, "region", &region)) ||
	    (code = field(c, root, "path", &path)) || (code = field(c, root, "accessKeyId", &key_id)) ||
	    (code = field(c, root, "secretAccessKey", &secret)) || (code = field(c, root, "roleArn", &role)) ||
	    (code = field(c, root, "kmsKeyId", &kms)) || (code = field(c, root, "timeOfDay", &tod)) ||
	    (code = field(c, root, "timezone", &tz)))
		goto out;
	{
		const char *path_en[] = { "enabled", NULL };
		yajl_val en = yajl_tree_get(root, path_en, yajl_t_any);

		if (en && !YAJL_IS_TRUE(en) && !YAJL_IS_FALSE(en)) {
			code = ctl_fail(c, CTL_BADINPUT, "enabled: must be true or false");
			goto out;
		}
		if (en)
			cfg.enabled = YAJL_IS_TRUE(en);
	}
	if (!bucket) {
		code = ctl_fail(c, CTL_BADINPUT, "bucket: required");
		goto out;
	}
	if (!region) {
		code = ctl_fail(c, CTL_BADINPUT, "region: required");
		goto out;
	}
	if (exportdb_check_bucket(bucket, msg, sizeof(msg)) < 0 || exportdb_check_region(region, msg, sizeof(msg)) < 0 ||
	    exportdb_check_path(path, msg, sizeof(msg)) < 0 ||
	    (role && exportdb_check_role_arn(role, msg, sizeof(msg)) < 0) ||
	    exportdb_check_time_zone(tz, NULL, msg, sizeof(msg)) < 0) {
		code = ctl_fail(c, CTL_BADINPUT, "%s", msg);
		goto out;
	}
	if (tod && sched_parse_time_of_day(tod, &cfg.time_of_day) < 0) {
		code = ctl_fail(c, CTL_BADINPUT, "timeOfDay: '%s' is not a time of day HH:MM (00:00 to 23:59)", tod);
		goto out;
	}
	if (role && (key_id || secret)) {
		code = ctl_fail(c, CTL_BADINPUT, "roleArn: give either accessKeyId/secretAccessKey or roleArn, not both");
		goto out;
	}
	if (!role && !key_id) {
		code = ctl_fail(c, CTL_BADINPUT, "accessKeyId: required (or roleArn for role authentication)");
		goto out;
	}
	if (key_id && !secret) {
		code = ctl_fail(c, CTL_BADINPUT, "secretAccessKey: required with accessKeyId");
		goto out;
	}
	if (key_id && (strlen(key_id) < 16 || strlen(key_id) > 128 ||
		       strspn(key_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != strlen(key_id))) {
		code = ctl_fail(c, CTL_BADINPUT, "accessKeyId: '%s' is not an AWS access key id", key_id);
		goto out;
	}
	if (secret && strlen(secret) > 256) {
		code = ctl_fail(c, CTL_BADINPUT, "secretAccessKey: longer than 256 characters");
		goto out;
	}
	cfg.bucket = x_strdup(bucket);
	cfg.region = x_strdup(region);
	cfg.path = x_strdup(path ? path : "");
	cfg.auth = role ? EXPORTDB_AUTH_ASSUME_ROLE : EXPORTDB_AUTH_ACCESS_KEY;
	cfg.access_key_id = key_id ? x_strdup(key_id) : NULL;
	cfg.role_arn = role ? x_strdup(role) : NULL;
	cfg.kms_key_id = kms ? x_strdup(kms) : NULL;
	cfg.time_zone = tz ? x_strdup(tz) : NULL;
	if (secret && (code = seal(c, secret, &cfg)))
		goto out;
	/* Saved inside a transaction so the table's trigger checks every field
	 * before any AWS call, and a failed AWS check leaves the old config. */
	if ((code = ctl_exec(c, "BEGIN")))
		goto out;
	in_tx = true;
	r = exportdb_config_save(c->conn, &cfg, &err);
	if (r < 0) {
		/* the trigger names columns; the user wrote JSON fields */
		static const char *const names[][2] = {
			{ "kms_key_arn", "kmsKeyId" }, { "role_arn", "roleArn" }, { "access_key_id", "accessKeyId" },
			{ "secret_access_key", "secretAccessKey" }, { "time_zone", "timezone" },
		};
		const char *m = err.message;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(err.column, names[i][0]) == 0 && strncmp(m, names[i][0], strlen(names[i][0])) == 0) {
				code = ctl_fail(c, ctl_code(r), "%s%s", names[i][1], m + strlen(names[i][0]));
				goto out;
			}
		code = ctl_fail(c, ctl_code(r), "%s", m);
		goto out;
	}
	if ((code = validate_with_aws(c, &cfg, secret)))
		goto out;
	if ((code = ctl_exec(c, "COMMIT")))
		goto out;
	in_tx = false;
	code = CTL_OK;
	if (!c->json)
		printf("export configured: s3://%s/%s%saccess-summary/ (%s)\n", cfg.bucket, cfg.path,
		       cfg.path[0] ? "/" : "", exportdb_auth_name(cfg.auth));
out:
	if (in_tx)
		PQclear(PQexec(c->conn, "ROLLBACK"));
	if (code == CTL_OK && c->json)
		code = ctl_cmd_export_config(c, "get");
	exportdb_config_free(&cfg);
	if (root) {
		/* the parsed secret lives in the tree: wipe it */
		const char *sp[] = { "secretAccessKey", NULL };
		yajl_val sv = yajl_tree_get(root, sp, yajl_t_string);

		char *sec = sv ? YAJL_GET_STRING(sv) : NULL;

		if (sec)
			memset(sec, 0, strlen(sec));
		yajl_tree_free(root);
	}
	return code;
}

static int do_get(struct ctl *c)
{
	struct exportdb_config cfg = { 0 };
	struct pgerr err;
	char tod[16] = "";
	int r;

	r = exportdb_config_load(c->conn, &cfg, &err);
	if (r == S3G_ENOTFOUND)
		return ctl_fail(c, CTL_NOTFOUND, "no export is configured (s3grantctl export-config set -f FILE)");
	if (r < 0)
		return ctl_fail(c, ctl_code(r), "%s", err.message);
	if (cfg.time_of_day >= 0)
		snprintf(tod, sizeof(tod), "%02d:%02d", cfg.time_of_day / 3600, cfg.time_of_day / 60 % 60);
	if (c->json) {
		yajl_gen g = ctl_gen();

		yajl_gen_map_open(g);
		ctl_gen_kv(g, "bucket", cfg.bucket);
		ctl_gen_kv(g, "region", cfg.region);
		ctl_gen_kv(g, "path", cfg.path);
		ctl_gen_kv(g, "authenticationType", exportdb_auth_name(cfg.auth));
		if (cfg.access_key_id)
			ctl_gen_kv(g, "accessKeyId", cfg.access_key_id);
		if (cfg.secret_env)
			ctl_gen_kv(g, "secretAccessKey", "<REDACTED>");
		if (cfg.role_arn) {
			ctl_gen_kv(g, "roleArn", cfg.role_arn);
			ctl_gen_kv(g, "externalId", cfg.external_id);
		}
		ctl_gen_kv(g, "kmsKeyId", cfg.kms_key_id);
		ctl_gen_kv(g, "timeOfDay", tod[0] ? tod : NULL);
		ctl_gen_kv(g, "timezone", cfg.time_zone);
		ctl_gen_str(g, "enabled");
		yajl_gen_bool(g, cfg.enabled);
		yajl_gen_map_close(g);
		ctl_gen_print(g);
	} else {
		printf("bucket\t%s\nregion\t%s\npath\t%s\nauthentication\t%s\n", cfg.bucket, cfg.region,
		       cfg.path[0] ? cfg.path : "-", exportdb_auth_name(cfg.auth));
		if (cfg.access_key_id)
			printf("accessKeyId\t%s\nsecretAccessKey\t%s\n", cfg.access_key_id,
			       cfg.secret_env ? "<REDACTED>" : "-");
		if (cfg.role_arn)
			printf("roleArn\t%s\nexternalId\t%s\n", cfg.role_arn, cfg.external_id);
		printf("kmsKeyId\t%s\ntimeOfDay\t%s\ntimezone\t%s\nenabled\t%s\n", cfg.kms_key_id ? cfg.kms_key_id : "-",
		       tod[0] ? tod : "- (daemon default, 03:00)", cfg.time_zone ? cfg.time_zone : "- (daemon default)",
		       cfg.enabled ? "yes" : "no");
	}
	exportdb_config_free(&cfg);
	return CTL_OK;
}

int ctl_cmd_export_config(struct ctl *c, const char *sub)
{
	if (sub && strcmp(sub, "set") == 0)
		return do_set(c);
	if (sub && strcmp(sub, "get") == 0)
		return do_get(c);
	return ctl_fail(c, CTL_USAGE, "usage: s3grantctl export-config set -f FILE | get");
}

int ctl_cmd_export(struct ctl *c, const char *sub)
{
	int code = CTL_OK;

	if (sub && strcmp(sub, "run") == 0) {
		char who[300], host[256] = "localhost";
		const char *user = getenv("USER");
		long long id;
		struct pgerr err;
		int r;

		gethostname(host, sizeof(host) - 1);
		snprintf(who, sizeof(who), "s3grantctl:%s@%s", user ? user : "?", host);
		r = exportdb_request(c->conn, who, &id, &err);
		if (r < 0)
			return ctl_fail(c, ctl_code(r), "%s", err.message);
		if (c->json) {
			yajl_gen g = ctl_gen();
			char ids[32];

			snprintf(ids, sizeof(ids), "%lld", id);
			yajl_gen_map_open(g);
			ctl_gen_str(g, "id");
			yajl_gen_number(g, ids, strlen(ids));
			ctl_gen_kv(g, "status", "pending");
			yajl_gen_map_close(g);
			ctl_gen_print(g);
		} else {
			printf("export %lld requested; a running s3grantd picks it up now\n", id);
		}
		return CTL_OK;
	}
	if (sub && strcmp(sub, "status") == 0) {
		PGresult *res = ctl_query(c, &code,
			"SELECT id, kind, local_day, status, attempts, row_count, object_key AS prefix, error,"
			" next_retry_at, started_at, finished_at FROM s3grant.exports ORDER BY id DESC LIMIT 20",
			0, NULL);

		if (!res)
			return code;
		code = ctl_print_rows(c, res);
		PQclear(res);
		return code;
	}
	return ctl_fail(c, CTL_USAGE, "usage: s3grantctl export run | status");
}
