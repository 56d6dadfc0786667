/* ctl.h — s3grantctl internals shared by the command files.
 *
 * Every command gets a struct ctl (options, the open connection) and returns
 * an exit code: CTL_OK, CTL_USAGE, CTL_BADINPUT, CTL_NOTFOUND, CTL_CONFLICT,
 * CTL_AWS_CHECK, CTL_FAIL. Errors are reported once through ctl_fail() (stderr text, or a
 * JSON error object on stdout with --json). Secrets never reach any output.
 */
#pragma once
#include <stdbool.h>

#include <libpq-fe.h>
#include <yajl/yajl_gen.h>

#include "store/pgerr.h"

enum {
	CTL_OK = 0,
	CTL_FAIL = 1,
	CTL_USAGE = 2,
	CTL_BADINPUT = 3,
	CTL_NOTFOUND = 4,
	CTL_CONFLICT = 5,
	CTL_AWS_CHECK = 6,   /* AWS refused what the input asks for (export-config set's check) */
	CTL_CODE_MAX_
};

struct ctl {
	const char *db;          /* conninfo; NULL: PG* variables */
	bool json;
	const char *file;        /* -f: JSON input, "-" = stdin */
	const char *key_file;    /* --secrets-key-file */
	const char *integration; /* --integration */
	const char *prefix;      /* --prefix */
	const char *name;        /* --name */
	const char *user;        /* --user */
	const char *data_source; /* --data-source */
	const char *access;      /* --access */
	const char *kms_key;     /* --kms-key (policy) */
	const char *principal;   /* --principal (policy) */
	bool no_verify;          /* --no-verify (export-config set: skip the AWS check) */
	int argc;                /* positional words after the command pair */
	char **argv;
	PGconn *conn;
};

int ctl_connect(struct ctl *c);
/* Report an error; returns code. */
int ctl_fail(struct ctl *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report a failed query; maps SQLSTATE to an exit code. */
int ctl_pgfail(struct ctl *c, const PGresult *res);
/* Exit code for a store status. */
int ctl_code(int status);
/* Run a parameterised query; NULL and an error report on failure. */
PGresult *ctl_query(struct ctl *c, int *ret_code, const char *sql, int n, const char *const *params);
int ctl_exec(struct ctl *c, const char *sql);

yajl_gen ctl_gen(void);
void ctl_gen_str(yajl_gen g, const char *s);
void ctl_gen_kv(yajl_gen g, const char *k, const char *v);   /* v NULL: null */
void ctl_gen_print(yajl_gen g);                               /* to stdout, frees g */
/* Print a result set: --json an array of objects (columns as keys), else tab-separated. */
int ctl_print_rows(struct ctl *c, const PGresult *res);

int ctl_cmd_db(struct ctl *c, const char *sub);
int ctl_cmd_tenant(struct ctl *c);
int ctl_cmd_integrations(struct ctl *c, const char *sub);
int ctl_cmd_datasources(struct ctl *c, const char *sub);
int ctl_cmd_users(struct ctl *c, const char *sub);
int ctl_cmd_subscriptions(struct ctl *c, const char *sub);
int ctl_cmd_export_config(struct ctl *c, const char *sub);
int ctl_cmd_export(struct ctl *c, const char *sub);
int ctl_cmd_status(struct ctl *c);
int ctl_cmd_plan(struct ctl *c);
int ctl_cmd_policy(struct ctl *c, const char *sub);
