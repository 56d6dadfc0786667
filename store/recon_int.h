/* recon_int.h — private to store/recon.c and store/recon_scope.c: the
 * queries, row parsers and SQL texts both use. The rs_* functions live in
 * recon.c; the static inline ones are too small to be worth a call.
 *
 * Same rules as store/recon.h: blocking libpq calls on the caller's
 * connection, 0 or a negative status, err (may be NULL) filled on failure,
 * no logging.
 */
#pragma once
#include <endian.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "store/pgerr.h"
#include "store/recon.h"

/* One integration row (rs_parse_integration's columns), binary. */
#define INTEGRATION_SQL \
	"SELECT i.id, i.name, i.status::text, i.status_message, i.aws_account_id, i.aws_region," \
	" i.location_path, i.location_id, i.location_arn, i.instance_arn, i.location_role_arn," \
	" i.authentication_type, i.access_key_id, i.secret_access_key, i.role_to_assume," \
	" coalesce(i.external_id, t.id::text), i.role_session_name" \
	" FROM s3grant.integrations i, s3grant.tenant t WHERE i.id = $1::bigint"

/* rs_grants_row's columns: the first recorded subscription that still exists
 * (0: none), created_at in ms (0: unknown). */
#define GRANTS_SELECT \
	"SELECT g.grant_id, g.grant_arn, g.grantee_type, g.grantee_id, g.permission, g.location_id," \
	" g.sub_prefix, g.grant_scope," \
	" coalesce((SELECT u.x FROM unnest(coalesce(g.subscription_ids, ARRAY[g.subscription_id]))" \
	"   WITH ORDINALITY AS u(x, o)" \
	"   WHERE EXISTS (SELECT 1 FROM s3grant.subscriptions s WHERE s.id = u.x) ORDER BY u.o LIMIT 1), 0)," \
	" coalesce((extract(epoch FROM g.created_at) * 1000)::bigint, 0)" \
	" FROM s3grant.grants g"

/* rs_intents_parse's columns, binary: the first recorded subscription (0:
 * none), created_at in ms. The caller adds WHERE and ORDER BY. */
#define INTENTS_SELECT \
	"SELECT id, grantee_type, grantee_id, permission, location_id, sub_prefix," \
	" coalesce(subscription_ids[1], subscription_id, 0)," \
	" (extract(epoch FROM created_at) * 1000)::bigint, attempts" \
	" FROM s3grant.grant_intents"

/* rs_run_rows's state for GRANTS_SELECT: the grants so far, interned into in. */
struct grants_rows {
	struct intern *in;
	struct recon_grants g;
	size_t cap;
	struct pgerr *err;
};

/* Run a statement; text parameters, result format fmt (0 text, 1 binary);
 * *ret_res (may be NULL: cleared at once) is the caller's to PQclear. */
int rs_run(PGconn *conn, const char *sql, int n, const char *const *params, int fmt, PGresult **ret_res,
	   struct pgerr *err) S3G_WUR;
/* A multi-statement script without parameters (simple protocol). */
int rs_script(PGconn *conn, const char *sql, struct pgerr *err) S3G_WUR;
/* Run a query in single-row mode: row(res, i, user) sees every row as it
 * arrives; the first error (a callback's or the server's) is returned. */
int rs_run_rows(PGconn *conn, const char *sql, int n, const char *const *params, int fmt,
		int (*row)(const PGresult *res, int i, void *user), void *user, struct pgerr *err) S3G_WUR;
/* INTEGRATION_SQL's row into *ret: its strings point into res, except the
 * secret access key, decrypted (allocated) only when key is given. */
int rs_parse_integration(PGresult *res, const struct secrets_key *key, struct recon_integration *ret,
			 struct pgerr *err) S3G_WUR;
/* Copy the row strings of in->res[1..3] into in->strs and free those results. */
void rs_keep_strings(struct recon_inputs *in);
/* rs_run_rows callback for GRANTS_SELECT (user: struct grants_rows). */
int rs_grants_row(const PGresult *res, int i, void *user);
/* Every row of an INTENTS_SELECT result, grants interned into in; *ret
 * (free with recon_intents_free) is written only on success. */
int rs_intents_parse(PGresult *res, struct intern *in, struct recon_intents *ret, struct pgerr *err) S3G_WUR;

/* Roll back the transaction the connection is in, if any. */
static inline void rollback(PGconn *conn)
{
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
}

static inline int bad_row(struct pgerr *err, const char *what, int row)
{
	if (err)
		pgerr_set(err, "unexpected %s in result row %d", what, row);
	return S3G_EPARSE;
}

/* Binary int8 column. */
static inline int get_i64(const PGresult *res, int row, int col, int64_t *ret)
{
	const char *p;
	uint64_t v;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return S3G_EPARSE;
	p = PQgetvalue(res, row, col);
	memcpy(&v, p, 8);
	*ret = (int64_t)be64toh(v);
	return 0;
}

/* Binary int4 column. */
static inline int get_i32(const PGresult *res, int row, int col, int32_t *ret)
{
	uint32_t v;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 4)
		return S3G_EPARSE;
	memcpy(&v, PQgetvalue(res, row, col), 4);
	*ret = (int32_t)be32toh(v);
	return 0;
}

/* A text column in a binary result (libpq NUL-terminates every value);
 * NULL for SQL NULL. */
static inline const char *get_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static inline void i64_str(int64_t v, char out[24])
{
	snprintf(out, 24, "%" PRId64, v);
}
