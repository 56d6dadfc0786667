/* s3grantctl — entry point: options, connection, output and error helpers. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "ctl/ctl.h"
#include "store/schema.h"
#include "version.h"

static const char usage_text[] =
	"usage: s3grantctl [OPTIONS] COMMAND ...\n"
	"\n"
	"  db migrate | db status            apply / show schema migrations\n"
	"  tenant                            the tenant id (the default ExternalId)\n"
	"  integrations create -f FILE       create from the /integrations JSON (-f - = stdin)\n"
	"  integrations get ID | list        print integrations (secrets redacted)\n"
	"  integrations update ID -f FILE    change name or authentication fields\n"
	"  integrations delete ID            move the integration to deleting\n"
	"  datasources add --integration ID --prefix P [--name N]\n"
	"  datasources list [--integration ID] | datasources delete ID\n"
	"  users set-principal USER [PRINCIPAL]   IAM user/role ARN, Identity Center user id, or unset\n"
	"  users list\n"
	"  subscriptions add --user U --data-source ID --access read|write\n"
	"  subscriptions remove --user U --data-source ID\n"
	"  subscriptions list [--user U] [--data-source ID]\n"
	"  export-config set -f FILE [--no-verify]\n"
	"                                    the seed's export-config JSON (secret sealed); checked\n"
	"                                    against AWS first unless --no-verify\n"
	"  export-config get                 print it (secret redacted)\n"
	"  export run | export status        request an export now / show recent exports\n"
	"  status [--integration ID]         health per integration, quota use, subscription errors\n"
	"  plan [--integration ID]           what the daemon would change (creates, deletes, replaces)\n"
	"  policy integration ID [--kms-key ARN] [--principal ARN]   IAM, trust, location role, KMS policies\n"
	"  policy export [--principal ARN]   the export's IAM, trust, bucket and KMS policies\n"
	"\n"
	"options:\n"
	"  -d, --db CONNINFO          libpq conninfo or URI (default: PG* variables, service files)\n"
	"      --json                 machine-readable output (and errors) on stdout\n"
	"  -f, --file FILE            JSON input\n"
	"      --secrets-key-file F   AES-256 key for secrets at rest (else $S3GRANT_SECRETS_KEY_FILE,\n"
	"                             $CREDENTIALS_DIRECTORY/secrets-key)\n"
	"      --no-verify            export-config set: save without the AWS check\n"
	"  -h, --help | --version\n"
	"\n"
	"exit codes: 0 ok, 1 error, 2 usage, 3 bad input, 4 not found, 5 conflict,\n"
	"            6 AWS check failed (export-config set)\n";

int ctl_fail(struct ctl *c, int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->json) {
		yajl_gen g = ctl_gen();
		static const int http[CTL_CODE_MAX_] = { 200, 500, 400, 400, 404, 409, 400 };
		static const char *const names[CTL_CODE_MAX_] = { "OK", "Internal Server Error", "Bad Request",
								  "Bad Request", "Not Found", "Conflict",
								  "Bad Request" };
		int k = code >= 0 && code < CTL_CODE_MAX_ ? code : CTL_FAIL;

		yajl_gen_map_open(g);
		ctl_gen_str(g, "statusCode");
		yajl_gen_integer(g, http[k]);
		ctl_gen_kv(g, "error", names[k]);
		ctl_gen_kv(g, "message", msg);
		yajl_gen_map_close(g);
		ctl_gen_print(g);
	} else {
		fprintf(stderr, "s3grantctl: %s\n", msg);
	}
	return code;
}

int ctl_code(int status)
{
	switch (status) {
	case 0: return CTL_OK;
	case S3G_EINVAL: return CTL_BADINPUT;
	case S3G_ENOTFOUND: return CTL_NOTFOUND;
	case S3G_ECONFLICT: return CTL_CONFLICT;
	default: return CTL_FAIL;
	}
}

/* Messages for constraints whose server message does not name the field. */
static const struct {
	const char *constraint;
	const char *message;
} constraint_messages[] = {
	{ "users_username_key", "username: a user with this name already exists" },
	{ "data_sources_prefix_key", "prefix: this integration already has a data source with that prefix" },
	{ "subscriptions_user_data_source_key", "subscription: the user already subscribes to that data source" },
	{ "integrations_name_key", "name: an integration with this name already exists" },
	{ "integrations_location_path_key", "location_path: an integration already uses this location path" },
	{ "users_role_principal_key", "principal: this IAM role already maps to another user" },
};

int ctl_pgfail(struct ctl *c, const PGresult *res)
{
	struct pgerr e;

	pgerr_from_result(&e, c->conn, res);
	for (size_t i = 0; i < sizeof(constraint_messages) / sizeof(constraint_messages[0]); i++)
		if (strcmp(e.constraint, constraint_messages[i].constraint) == 0 &&
		    strcmp(e.sqlstate, "23505") == 0 && !strchr(e.message, ':'))
			return ctl_fail(c, CTL_CONFLICT, "%s", constraint_messages[i].message);
	return ctl_fail(c, ctl_code(pgerr_status(&e)), "%s", e.message);
}

PGresult *ctl_query(struct ctl *c, int *ret_code, const char *sql, int n, const char *const *params)
{
	PGresult *res = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
		*ret_code = ctl_pgfail(c, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

int ctl_exec(struct ctl *c, const char *sql)
{
	int code = CTL_OK;
	PGresult *res = ctl_query(c, &code, sql, 0, NULL);

	PQclear(res);
	return code;
}

int ctl_connect(struct ctl *c)
{
	c->conn = PQconnectdb(c->db ? c->db : "");
	if (PQstatus(c->conn) != CONNECTION_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->conn));
		msg[strcspn(msg, "\n")] = '\0';
		return ctl_fail(c, CTL_FAIL, "cannot connect to the database: %s", msg);
	}
	PQclear(PQexec(c->conn, "SET client_min_messages = warning"));
	PQclear(PQexec(c->conn, "SET statement_timeout = 30000"));
	return CTL_OK;
}

yajl_gen ctl_gen(void)
{
	yajl_gen g = yajl_gen_alloc(NULL);

	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	return g;
}

void ctl_gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void ctl_gen_kv(yajl_gen g, const char *k, const char *v)
{
	ctl_gen_str(g, k);
	if (v)
		ctl_gen_str(g, v);
	else
		yajl_gen_null(g);
}

void ctl_gen_print(yajl_gen g)
{
	const unsigned char *out;
	size_t len;

	yajl_gen_get_buf(g, &out, &len);
	fwrite(out, 1, len, stdout);
	if (len && out[len - 1] != '\n')
		fputc('\n', stdout);
	yajl_gen_free(g);
}

int ctl_print_rows(struct ctl *c, const PGresult *res)
{
	int rows = PQntuples(res), cols = PQnfields(res);

	if (c->json) {
		yajl_gen g = ctl_gen();

		yajl_gen_array_open(g);
		for (int i = 0; i < rows; i++) {
			yajl_gen_map_open(g);
			for (int j = 0; j < cols; j++)
				ctl_gen_kv(g, PQfname(res, j),
					   PQgetisnull(res, i, j) ? NULL : PQgetvalue(res, i, j));
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		ctl_gen_print(g);
		return CTL_OK;
	}
	for (int j = 0; j < cols; j++)
		printf("%s%s", j ? "\t" : "", PQfname(res, j));
	putchar('\n');
	for (int i = 0; i < rows; i++) {
		for (int j = 0; j < cols; j++)
			printf("%s%s", j ? "\t" : "", PQgetisnull(res, i, j) ? "-" : PQgetvalue(res, i, j));
		putchar('\n');
	}
	return CTL_OK;
}

int ctl_cmd_db(struct ctl *c, const char *sub)
{
	struct pgerr err;
	struct schema_state st;
	int r, applied = 0;

	if (!sub || (strcmp(sub, "migrate") != 0 && strcmp(sub, "status") != 0))
		return ctl_fail(c, CTL_USAGE, "usage: s3grantctl db migrate|status");
	if (strcmp(sub, "migrate") == 0) {
		r = schema_migrate(c->conn, 0, &applied, &err);
		if (r < 0)
			return ctl_fail(c, ctl_code(r) == CTL_OK ? CTL_FAIL : CTL_FAIL, "%s", err.message);
	}
	r = schema_status(c->conn, &st, &err);
	if (r < 0)
		return ctl_fail(c, CTL_FAIL, "%s", err.message);
	r = schema_check(c->conn, &err);
	if (c->json) {
		yajl_gen g = ctl_gen();

		yajl_gen_map_open(g);
		ctl_gen_str(g, "version");
		yajl_gen_integer(g, st.version);
		ctl_gen_kv(g, "name", st.version ? st.name : NULL);
		ctl_gen_str(g, "latest");
		yajl_gen_integer(g, st.latest);
		ctl_gen_kv(g, "latestName", schema_latest_name());
		ctl_gen_str(g, "applied");
		yajl_gen_integer(g, applied);
		ctl_gen_str(g, "current");
		yajl_gen_bool(g, r == 0);
		ctl_gen_kv(g, "message", r == 0 ? NULL : err.message);
		yajl_gen_map_close(g);
		ctl_gen_print(g);
	} else {
		if (strcmp(sub, "migrate") == 0)
			printf("applied %d migration%s\n", applied, applied == 1 ? "" : "s");
		printf("schema at migration %d (%s); binary knows %d (%s)\n", st.version,
		       st.version ? st.name : "none", st.latest, schema_latest_name());
		if (r < 0)
			printf("%s\n", err.message);
	}
	return r == 0 ? CTL_OK : CTL_FAIL;
}

int ctl_cmd_tenant(struct ctl *c)
{
	int code = CTL_OK;
	PGresult *res = ctl_query(c, &code, "SELECT id FROM s3grant.tenant", 0, NULL);

	if (!res)
		return code;
	if (c->json) {
		yajl_gen g = ctl_gen();

		yajl_gen_map_open(g);
		ctl_gen_kv(g, "tenantId", PQgetvalue(res, 0, 0));
		yajl_gen_map_close(g);
		ctl_gen_print(g);
	} else {
		printf("%s\n", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return CTL_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "file", required_argument, NULL, 'f' },
		{ "secrets-key-file", required_argument, NULL, 'k' },
		{ "integration", required_argument, NULL, 'i' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "name", required_argument, NULL, 'n' },
		{ "user", required_argument, NULL, 'u' },
		{ "data-source", required_argument, NULL, 's' },
		{ "access", required_argument, NULL, 'a' },
		{ "kms-key", required_argument, NULL, 'K' },
		{ "principal", required_argument, NULL, 'P' },
		{ "no-verify", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { 0 };
	const char *cmd, *sub;
	int o, code;

	while ((o = getopt_long(argc, argv, "d:f:h", opts, NULL)) != -1) {
		switch (o) {
		case 'd': c.db = optarg; break;
		case 'j': c.json = true; break;
		case 'f': c.file = optarg; break;
		case 'k': c.key_file = optarg; break;
		case 'i': c.integration = optarg; break;
		case 'p': c.prefix = optarg; break;
		case 'n': c.name = optarg; break;
		case 'u': c.user = optarg; break;
		case 's': c.data_source = optarg; break;
		case 'a': c.access = optarg; break;
		case 'K': c.kms_key = optarg; break;
		case 'P': c.principal = optarg; break;
		case 'N': c.no_verify = true; break;
		case 'h': fputs(usage_text, stdout); return CTL_OK;
		case 'V': printf("s3grantctl %s\n", S3G_VERSION); return CTL_OK;
		default: fputs(usage_text, stderr); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return CTL_USAGE;
	}
	cmd = argv[optind++];
	sub = optind < argc ? argv[optind++] : NULL;
	c.argc = argc - optind;
	c.argv = argv + optind;
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return CTL_OK;
	}
	if (strcmp(cmd, "db") && strcmp(cmd, "tenant") && strcmp(cmd, "integrations") &&
	    strcmp(cmd, "datasources") && strcmp(cmd, "users") && strcmp(cmd, "subscriptions") &&
	    strcmp(cmd, "export-config") && strcmp(cmd, "export") && strcmp(cmd, "status") && strcmp(cmd, "plan") &&
	    strcmp(cmd, "policy"))
		return ctl_fail(&c, CTL_USAGE, "unknown command '%s' (see --help)", cmd);
	code = ctl_connect(&c);
	if (code != CTL_OK)
		goto out;
	if (strcmp(cmd, "db") == 0)
		code = ctl_cmd_db(&c, sub);
	else if (strcmp(cmd, "tenant") == 0)
		code = ctl_cmd_tenant(&c);
	else if (strcmp(cmd, "integrations") == 0)
		code = ctl_cmd_integrations(&c, sub);
	else if (strcmp(cmd, "datasources") == 0)
		code = ctl_cmd_datasources(&c, sub);
	else if (strcmp(cmd, "users") == 0)
		code = ctl_cmd_users(&c, sub);
	else if (strcmp(cmd, "export-config") == 0)
		code = ctl_cmd_export_config(&c, sub);
	else if (strcmp(cmd, "export") == 0)
		code = ctl_cmd_export(&c, sub);
	else if (strcmp(cmd, "policy") == 0)
		code = ctl_cmd_policy(&c, sub);
	else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "plan") == 0)
		code = sub ? ctl_fail(&c, CTL_USAGE, "usage: s3grantctl %s [--integration ID] [--json]", cmd)
			   : strcmp(cmd, "status") == 0 ? ctl_cmd_status(&c) : ctl_cmd_plan(&c);
	else
		code = ctl_cmd_subscriptions(&c, sub);
out:
	PQfinish(c.conn);
	return code;
}
