#include "store/recon.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "store/recon_int.h"

static const char *const istatus_names[RECON_ISTATUS_MAX_] = {
	[RECON_CREATING] = "creating",
	[RECON_ENABLED] = "enabled",
	[RECON_EDITING] = "editing",
	[RECON_DELETING] = "deleting",
	[RECON_DELETED] = "deleted",
	[RECON_DISABLED] = "disabled",
	[RECON_CREATE_ERROR] = "createError",
	[RECON_EDIT_ERROR] = "editError",
	[RECON_DELETE_ERROR] = "deleteError",
	[RECON_RECURRING_VALIDATION_ERROR] = "recurringValidationError",
};

static const char *const auth_names[RECON_AUTH_MAX_] = {
	[RECON_AUTH_AUTO] = "auto",
	[RECON_AUTH_ACCESS_KEY] = "accessKey",
};

static const char *const op_names[RECON_OP_MAX_] = {
	[RECON_OP_CREATE] = "create",
	[RECON_OP_DELETE] = "delete",
	[RECON_OP_ADOPT] = "adopt",
	[RECON_OP_REPAIR_CREATE] = "repair-create",
	[RECON_OP_REPAIR_DELETE] = "repair-delete",
};

static const char *const sub_state_names[RECON_SUB_STATE_MAX_] = {
	[RECON_SUB_PENDING] = "pending",
	[RECON_SUB_ACTIVE] = "active",
	[RECON_SUB_REJECTED] = "rejected",
	[RECON_SUB_ERROR] = "error",
	[RECON_SUB_QUOTA] = "quota",
};

const char *recon_istatus_name(enum recon_istatus s)
{
	return (unsigned)s < RECON_ISTATUS_MAX_ ? istatus_names[s] : "?";
}

int recon_istatus_parse(const char *s, enum recon_istatus *ret)
{
	for (int i = 0; s && i < RECON_ISTATUS_MAX_; i++)
		if (strcmp(s, istatus_names[i]) == 0) {
			*ret = (enum recon_istatus)i;
			return 0;
		}
	return S3G_EINVAL;
}

const char *recon_auth_name(enum recon_auth a)
{
	return (unsigned)a < RECON_AUTH_MAX_ ? auth_names[a] : "?";
}

const char *recon_op_name(enum recon_op op)
{
	return (unsigned)op < RECON_OP_MAX_ ? op_names[op] : "?";
}

const char *recon_sub_state_name(enum recon_sub_state s)
{
	return (unsigned)s < RECON_SUB_STATE_MAX_ ? sub_state_names[s] : "?";
}

/* ---- helpers ------------------------------------------------------------ */

static int fail_res(PGconn *conn, PGresult *res, struct pgerr *err)
{
	struct pgerr local;
	int r;

	if (!err)
		err = &local;
	pgerr_from_result(err, conn, res);
	r = pgerr_status(err);
	PQclear(res);
	return r;
}

/* Run a statement; text parameters, result format fmt (0 text, 1 binary). */
int rs_run(PGconn *conn, const char *sql, int n, const char *const *params, int fmt, PGresult **ret_res,
	   struct pgerr *err)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, fmt);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		return fail_res(conn, res, err);
	if (ret_res)
		*ret_res = res;
	else
		PQclear(res);
	return 0;
}

/* A multi-statement script without parameters (simple protocol). */
int rs_script(PGconn *conn, const char *sql, struct pgerr *err)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		return fail_res(conn, res, err);
	PQclear(res);
	return 0;
}

/* Run a query in single-row mode: row(res, i, user) sees every row as it
 * arrives and the result is freed at once, so a 100,000-row SELECT never
 * holds the whole PGresult (which costs several times the rows' bytes).
 * The first error (a callback's or the server's) wins; the remaining
 * results are drained either way. */
int rs_run_rows(PGconn *conn, const char *sql, int n, const char *const *params, int fmt,
		int (*row)(const PGresult *res, int i, void *user), void *user, struct pgerr *err)
{
	PGresult *res;
	int r = 0;

	if (!PQsendQueryParams(conn, sql, n, NULL, params, NULL, NULL, fmt))
		return fail_res(conn, NULL, err);
	(void)PQsetSingleRowMode(conn);   /* refused: one whole result, still correct */
	while ((res = PQgetResult(conn))) {
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
			for (int i = 0; i < PQntuples(res) && r == 0; i++)
				r = row(res, i, user);
			PQclear(res);
		} else if (r == 0) {
			r = fail_res(conn, res, err);
		} else {
			PQclear(res);
		}
	}
	return r;
}

/* ---- COPY --------------------------------------------------------------- */

#define COPY_FLUSH (64 * 1024)
#define COPY_ROW_MAX (16 * 1024 * 1024)

struct copy {
	PGconn *conn;
	struct buf b;
	int status;
};

static int copy_begin(struct copy *c, PGconn *conn, const char *sql, struct pgerr *err)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COPY_IN)
		return fail_res(conn, res, err);
	PQclear(res);
	c->conn = conn;
	c->status = 0;
	buf_init(&c->b, COPY_ROW_MAX);
	return 0;
}

static void copy_flush(struct copy *c)
{
	if (c->status == 0 && c->b.len && PQputCopyData(c->conn, c->b.data, (int)c->b.len) != 1)
		c->status = S3G_EPGCONN;
	buf_reset(&c->b);
}

/* Append one field (NULL → \N) in COPY text format, then a tab or newline. */
static void copy_field(struct copy *c, const char *s, bool last)
{
	char esc[2] = { '\\', 0 };
	const char *p, *run_start;

	if (c->status)
		return;
	if (!s) {
		if (buf_append(&c->b, "\\N", 2) < 0)
			c->status = S3G_ETOOBIG;
	} else {
		for (p = run_start = s; ; p++) {
			char ch = *p;

			if (ch != '\0' && ch != '\\' && ch != '\t' && ch != '\n' && ch != '\r')
				continue;
			if (p > run_start && buf_append(&c->b, run_start, (size_t)(p - run_start)) < 0)
				c->status = S3G_ETOOBIG;
			if (!ch)
				break;
			esc[1] = ch == '\\' ? '\\' : ch == '\t' ? 't' : ch == '\n' ? 'n' : 'r';
			if (buf_append(&c->b, esc, 2) < 0)
				c->status = S3G_ETOOBIG;
			run_start = p + 1;
		}
	}
	if (buf_append(&c->b, last ? "\n" : "\t", 1) < 0)
		c->status = S3G_ETOOBIG;
	if (last && c->b.len >= COPY_FLUSH)
		copy_flush(c);
}

static void copy_i64(struct copy *c, int64_t v, bool last)
{
	char s[24];

	i64_str(v, s);
	copy_field(c, s, last);
}

static int copy_end(struct copy *c, struct pgerr *err)
{
	PGresult *res;
	int r;

	copy_flush(c);
	buf_free(&c->b);
	if (c->status == S3G_ETOOBIG) {
		PQputCopyEnd(c->conn, "row too large");
		PQclear(PQgetResult(c->conn));
		if (err)
			pgerr_set(err, "a COPY row is larger than %d bytes", COPY_ROW_MAX);
		return S3G_ETOOBIG;
	}
	if (PQputCopyEnd(c->conn, NULL) != 1)
		c->status = S3G_EPGCONN;
	res = PQgetResult(c->conn);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		r = fail_res(c->conn, res, err);
	} else {
		PQclear(res);
		r = c->status;
		if (r && err)
			pgerr_set(err, "COPY: connection lost");
	}
	while ((res = PQgetResult(c->conn)))
		PQclear(res);
	return r;
}

/* ---- array parameters ---------------------------------------------------- */

/* The batch writes pass each column as one text-format array parameter
 * (unnest($2::text[], $3::bigint[], ...) in one statement): no temporary
 * table, no COPY, no truncation of temporary tables at commit, one round
 * trip. Every string element is quoted (\ and " escaped), NULL is bare. */
#define ARR_MAX (256u * 1024 * 1024)

struct arr {
	struct buf b;
	int status;
};

static void arr_put(struct arr *a, const char *p, size_t n)
{
	if (a->status == 0 && buf_append(&a->b, p, n) < 0)
		a->status = S3G_ETOOBIG;
}

static void arr_init(struct arr *a)
{
	buf_init(&a->b, ARR_MAX);
	a->status = 0;
	arr_put(a, "{", 1);
}

static void arr_sep(struct arr *a)
{
	if (a->b.len > 1)
		arr_put(a, ",", 1);
}

static void arr_null(struct arr *a)
{
	arr_sep(a);
	arr_put(a, "NULL", 4);
}

static void arr_str(struct arr *a, const char *s)
{
	const char *p, *run_start;

	if (!s) {
		arr_null(a);
		return;
	}
	arr_sep(a);
	arr_put(a, "\"", 1);
	for (p = run_start = s; *p; p++)
		if (*p == '"' || *p == '\\') {
			arr_put(a, run_start, (size_t)(p - run_start));
			arr_put(a, "\\", 1);
			run_start = p;
		}
	arr_put(a, run_start, (size_t)(p - run_start));
	arr_put(a, "\"", 1);
}

static void arr_i64(struct arr *a, int64_t v)
{
	char s[24];

	i64_str(v, s);
	arr_sep(a);
	arr_put(a, s, strlen(s));
}

/* One element holding a bigint[] literal "{1,2,3}" (NULL when n == 0). */
static void arr_ids(struct arr *a, const int64_t *v, size_t n)
{
	struct arr in;

	if (!n) {
		arr_null(a);
		return;
	}
	arr_init(&in);
	for (size_t i = 0; i < n; i++)
		arr_i64(&in, v[i]);
	arr_put(&in, "}", 1);
	if (in.status)
		a->status = in.status;
	arr_str(a, buf_str(&in.b));
	buf_free(&in.b);
}

/* Close the literal: its text, or NULL (and a->status) when too large. */
static const char *arr_end(struct arr *a)
{
	arr_put(a, "}", 1);
	return a->status ? NULL : buf_str(&a->b);
}

static void arrs_free(struct arr *v, int n)
{
	for (int i = 0; i < n; i++)
		buf_free(&v[i].b);
}

/* Close n literals into p[]; S3G_ETOOBIG (err set) when one is too large. */
static int arrs_end(struct arr *v, int n, const char **p, struct pgerr *err)
{
	for (int i = 0; i < n; i++) {
		p[i] = arr_end(&v[i]);
		if (!p[i]) {
			if (err)
				pgerr_set(err, "an array parameter is larger than %u bytes", ARR_MAX);
			return S3G_ETOOBIG;
		}
	}
	return 0;
}

/* ---- inputs ------------------------------------------------------------- */

enum {
	I_ID, I_NAME, I_STATUS, I_MESSAGE, I_ACCOUNT, I_REGION, I_PATH, I_LOCID, I_LOCARN, I_INSTARN, I_ROLE,
	I_AUTH, I_KEYID, I_SECRET, I_ASSUME, I_EXTID, I_SESSION, I_NCOLS_
};

int rs_parse_integration(PGresult *res, const struct secrets_key *key, struct recon_integration *ret,
			 struct pgerr *err)
{
	struct recon_integration it = { 0 };
	const char *auth;
	int r;

	if (PQnfields(res) != I_NCOLS_ || get_i64(res, 0, I_ID, &it.d.id) < 0)
		return bad_row(err, "integration columns", 0);
	it.name = get_str(res, 0, I_NAME);
	if (recon_istatus_parse(get_str(res, 0, I_STATUS), &it.status) < 0)
		return bad_row(err, "integration status", 0);
	it.status_message = get_str(res, 0, I_MESSAGE);
	it.d.account = get_str(res, 0, I_ACCOUNT);
	it.d.region = get_str(res, 0, I_REGION);
	it.d.location_scope = get_str(res, 0, I_PATH);
	it.d.location_id = get_str(res, 0, I_LOCID);
	it.location_arn = get_str(res, 0, I_LOCARN);
	it.instance_arn = get_str(res, 0, I_INSTARN);
	it.location_role_arn = get_str(res, 0, I_ROLE);
	auth = get_str(res, 0, I_AUTH);
	it.auth = auth && strcmp(auth, "accessKey") == 0 ? RECON_AUTH_ACCESS_KEY : RECON_AUTH_AUTO;
	it.access_key_id = get_str(res, 0, I_KEYID);
	it.has_secret = !PQgetisnull(res, 0, I_SECRET);
	it.role_to_assume = get_str(res, 0, I_ASSUME);
	it.external_id = get_str(res, 0, I_EXTID);
	it.role_session_name = get_str(res, 0, I_SESSION);
	if (it.has_secret && key) {
		size_t n;

		r = secrets_open(key, RECON_SECRET_CONTEXT, (const uint8_t *)PQgetvalue(res, 0, I_SECRET),
				 (size_t)PQgetlength(res, 0, I_SECRET), &it.secret_access_key, &n);
		if (r < 0) {
			if (err)
				pgerr_set(err, "integration %" PRId64 ": the secret access key does not open with "
					  "this secrets key (%s)", it.d.id, err_str(r));
			return r;
		}
	}
	*ret = it;
	return 0;
}

static const char *keep_str(char **at, const char *s)
{
	size_t n;
	char *p = *at;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	memcpy(p, s, n);
	*at = p + n;
	return p;
}

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

/* Copy the row strings of the data source, user and subscription results
 * into one block and free those results: a PGresult costs several times its
 * rows' bytes (100,000 subscriptions held ~10 MB for the whole pass). The
 * integration's own row (res[0]) stays. */
void rs_keep_strings(struct recon_inputs *in)
{
	size_t total = 1;
	char *at;

	for (size_t i = 0; i < in->nds; i++)
		total += str_size(in->ds[i].prefix);
	for (size_t i = 0; i < in->nusers; i++)
		total += str_size(in->users[i].name) + str_size(in->users[i].principal);
	for (size_t i = 0; i < in->nsubs; i++) {
		const char *a = in->subs[i].access;

		if (strcmp(a, "read") != 0 && strcmp(a, "write") != 0)
			total += str_size(a);
	}
	in->strs = at = x_malloc(total);
	for (size_t i = 0; i < in->nds; i++)
		in->ds[i].prefix = keep_str(&at, in->ds[i].prefix);
	for (size_t i = 0; i < in->nusers; i++) {
		in->users[i].name = keep_str(&at, in->users[i].name);
		in->users[i].principal = keep_str(&at, in->users[i].principal);
	}
	for (size_t i = 0; i < in->nsubs; i++) {
		const char *a = in->subs[i].access;

		if (strcmp(a, "read") == 0)
			in->subs[i].access = "read";
		else if (strcmp(a, "write") == 0)
			in->subs[i].access = "write";
		else
			in->subs[i].access = keep_str(&at, a);
	}
	for (int q = 1; q < 4; q++) {
		PQclear(in->res[q]);
		in->res[q] = NULL;
	}
}

int recon_inputs_load(PGconn *conn, int64_t iid, const struct secrets_key *key, struct recon_inputs *ret,
		      struct pgerr *err)
{
	static const char *const sql[4] = {
		INTEGRATION_SQL,
		"SELECT id, prefix FROM s3grant.data_sources WHERE integration_id = $1::bigint ORDER BY id",
		"SELECT u.id, u.username, u.principal FROM s3grant.users u WHERE u.id IN"
		" (SELECT s.user_id FROM s3grant.subscriptions s JOIN s3grant.data_sources d"
		"  ON d.id = s.data_source_id WHERE d.integration_id = $1::bigint) ORDER BY u.id",
		"SELECT s.id, s.user_id, s.data_source_id, s.access FROM s3grant.subscriptions s"
		" JOIN s3grant.data_sources d ON d.id = s.data_source_id"
		" WHERE d.integration_id = $1::bigint ORDER BY s.id",
	};
	struct recon_inputs in = { 0 };
	char id[24];
	const char *p[1] = { id };
	int r, n;

	i64_str(iid, id);
	r = rs_script(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err);
	if (r < 0)
		return r;
	for (int q = 0; q < 4; q++) {
		r = rs_run(conn, sql[q], 1, p, 1, &in.res[q], err);
		if (r < 0)
			goto out;
	}
	r = rs_script(conn, "COMMIT", err);
	if (r < 0)
		goto out;
	if (PQntuples(in.res[0]) != 1) {
		if (err)
			pgerr_set(err, "integration %" PRId64 " does not exist", iid);
		r = S3G_ENOTFOUND;
		goto out;
	}
	r = rs_parse_integration(in.res[0], key, &in.integ, err);
	if (r < 0)
		goto out;

	n = PQntuples(in.res[1]);
	in.ds = x_calloc((size_t)n + 1, sizeof(*in.ds));
	for (int i = 0; i < n; i++) {
		if (get_i64(in.res[1], i, 0, &in.ds[i].id) < 0 || PQgetisnull(in.res[1], i, 1)) {
			r = bad_row(err, "data source", i);
			goto out;
		}
		in.ds[i].prefix = PQgetvalue(in.res[1], i, 1);
	}
	in.nds = (size_t)n;

	n = PQntuples(in.res[2]);
	in.users = x_calloc((size_t)n + 1, sizeof(*in.users));
	for (int i = 0; i < n; i++) {
		if (get_i64(in.res[2], i, 0, &in.users[i].id) < 0 || PQgetisnull(in.res[2], i, 1)) {
			r = bad_row(err, "user", i);
			goto out;
		}
		in.users[i].name = PQgetvalue(in.res[2], i, 1);
		in.users[i].principal = get_str(in.res[2], i, 2);
	}
	in.nusers = (size_t)n;

	n = PQntuples(in.res[3]);
	in.subs = x_calloc((size_t)n + 1, sizeof(*in.subs));
	for (int i = 0; i < n; i++) {
		struct desired_subscription *s = &in.subs[i];

		if (get_i64(in.res[3], i, 0, &s->id) < 0 || get_i64(in.res[3], i, 1, &s->user_id) < 0 ||
		    get_i64(in.res[3], i, 2, &s->data_source_id) < 0 || PQgetisnull(in.res[3], i, 3)) {
			r = bad_row(err, "subscription", i);
			goto out;
		}
		s->access = PQgetvalue(in.res[3], i, 3);
	}
	in.nsubs = (size_t)n;
	rs_keep_strings(&in);
	*ret = in;
	return 0;
out:
	rollback(conn);
	recon_inputs_free(&in);
	return r;
}

void recon_inputs_drop_rows(struct recon_inputs *in)
{
	x_free(in->ds);
	x_free(in->users);
	x_free(in->subs);
	x_free(in->strs);
	in->ds = NULL;
	in->users = NULL;
	in->subs = NULL;
	in->strs = NULL;
	in->nds = in->nusers = in->nsubs = 0;
	in->rows_dropped = true;
}

void recon_inputs_free(struct recon_inputs *in)
{
	if (!in)
		return;
	if (in->integ.secret_access_key) {
		memset(in->integ.secret_access_key, 0, strlen(in->integ.secret_access_key));
		x_free(in->integ.secret_access_key);
	}
	x_free(in->ds);
	x_free(in->users);
	x_free(in->subs);
	x_free(in->strs);
	for (int i = 0; i < 4; i++)
		PQclear(in->res[i]);
	memset(in, 0, sizeof(*in));
}

/* ---- grants ------------------------------------------------------------- */

int rs_grants_row(const PGresult *res, int i, void *user)
{
	struct grants_rows *x = user;
	struct grant *gr;

	if (x->g.n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 1024;
		x->g.v = x_realloc(x->g.v, x->cap * sizeof(*x->g.v));
		x->g.created_ms = x_realloc(x->g.created_ms, x->cap * sizeof(*x->g.created_ms));
	}
	gr = &x->g.v[x->g.n];
	memset(gr, 0, sizeof(*gr));
	if (grant_make(x->in, get_str(res, i, 2), get_str(res, i, 3), get_str(res, i, 4), get_str(res, i, 5),
		       get_str(res, i, 6), get_str(res, i, 0), get_str(res, i, 1), get_str(res, i, 7), gr) < 0 ||
	    get_i64(res, i, 8, &gr->subscription_id) < 0 || get_i64(res, i, 9, &x->g.created_ms[x->g.n]) < 0)
		return bad_row(x->err, "grant", (int)x->g.n);
	x->g.n++;
	return 0;
}

int recon_grants_load(PGconn *conn, int64_t iid, struct intern *in, struct recon_grants *ret, struct pgerr *err)
{
	struct grants_rows x = { .in = in, .err = err };
	char id[24];
	const char *p[1] = { id };
	int r;

	i64_str(iid, id);
	r = rs_run_rows(conn, GRANTS_SELECT " WHERE g.integration_id = $1::bigint ORDER BY g.grant_id", 1, p, 1,
			rs_grants_row, &x, err);
	if (r < 0) {
		recon_grants_free(&x.g);
		return r;
	}
	if (!x.g.v) {   /* callers may index v[0] of an empty set */
		x.g.v = x_calloc(1, sizeof(*x.g.v));
		x.g.created_ms = x_calloc(1, sizeof(*x.g.created_ms));
	} else if (x.cap > x.g.n + 1) {   /* give the doubling's slack back */
		x.g.v = x_realloc(x.g.v, (x.g.n + 1) * sizeof(*x.g.v));
		x.g.created_ms = x_realloc(x.g.created_ms, (x.g.n + 1) * sizeof(*x.g.created_ms));
	}
	*ret = x.g;
	return 0;
}

void recon_grants_free(struct recon_grants *g)
{
	if (!g)
		return;
	x_free(g->v);
	x_free(g->created_ms);
	memset(g, 0, sizeof(*g));
}

/* The table a listing is COPied into, page by page (recon_listing_add):
 * session-local, kept across transactions until the next listing's first
 * page empties it. The batch writes use array parameters instead (see
 * "batch"). */
#define LISTING_TABLE \
	"BEGIN;" \
	"SET LOCAL client_min_messages = warning;" \
	"CREATE TEMP TABLE IF NOT EXISTS recon_listing (ord bigint, grant_id text, grant_arn text," \
	" grantee_type text, grantee_id text, permission text, location_id text, sub_prefix text," \
	" grant_scope text, created_ms bigint);" \
	"TRUNCATE recon_listing;" \
	"COMMIT;"

static void copy_grant(struct copy *c, size_t ord, const struct grant *g, int64_t created_ms)
{
	copy_i64(c, (int64_t)ord, false);
	copy_field(c, g->grant_id, false);
	copy_field(c, g->grant_arn, false);
	copy_field(c, grant_grantee_name((enum grant_grantee)g->grantee_type), false);
	copy_field(c, g->grantee_id, false);
	copy_field(c, grant_perm_name((enum grant_perm)g->permission), false);
	copy_field(c, g->location_id, false);
	copy_field(c, g->sub_prefix ? g->sub_prefix : "", false);
	copy_field(c, g->grant_scope, false);
	if (created_ms)
		copy_i64(c, created_ms, true);
	else
		copy_field(c, NULL, true);
}

static int commit(PGconn *conn, struct pgerr *err)
{
	return rs_script(conn, "COMMIT", err);
}

int recon_listing_add(PGconn *conn, const char *location_id, const struct recon_listed *v, size_t n, size_t ord0,
		      struct pgerr *err)
{
	struct copy c;
	int r;

	for (size_t i = 0; i < n; i++)
		if (!v[i].g->grant_id || strcmp(v[i].g->location_id, location_id) != 0) {
			if (err)
				pgerr_set(err, "listed grant %zu: no grant id, or not in location %s", i, location_id);
			return S3G_EINVAL;
		}
	if (ord0 == 0) {
		r = rs_script(conn, LISTING_TABLE, err);
		if (r < 0)
			return r;
	}
	if (!n)
		return 0;
	/* COPY outside a transaction block: the page is its own transaction */
	r = copy_begin(&c, conn, "COPY recon_listing FROM STDIN", err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		copy_grant(&c, ord0 + i, v[i].g, v[i].created_ms);
	return copy_end(&c, err);
}

int recon_listing_sync(PGconn *conn, int64_t iid, const char *location_id, size_t n, bool complete,
		       struct recon_sync_result *ret, struct pgerr *err)
{
	struct recon_sync_result out = { 0 };
	PGresult *res = NULL;
	char id[24];
	const char *p[2] = { id, location_id };
	int r;

	i64_str(iid, id);
	r = rs_script(conn, "BEGIN", err);
	if (r < 0)
		goto fail;
	/* A page lost (a reconnect empties the table, a failed COPY): an
	 * incomplete listing must not remove the records of grants it missed. */
	r = rs_run(conn, "SELECT count(*) FROM recon_listing", 0, NULL, 0, &res, err);
	if (r < 0)
		goto fail;
	if (strtoull(PQgetvalue(res, 0, 0), NULL, 10) != n) {
		if (err)
			pgerr_set(err, "the listing holds %s of %zu grants (a page was lost)", PQgetvalue(res, 0, 0), n);
		r = S3G_ECONFLICT;
		goto fail;
	}
	PQclear(res);
	res = NULL;
	/* xmax = 0: the row was inserted, not updated */
	r = rs_run(conn,
		"WITH u AS (INSERT INTO s3grant.grants AS g (grant_id, integration_id, grant_arn, grantee_type, grantee_id,"
		" permission, location_id, sub_prefix, grant_scope, created_at, seen_at)"
		" SELECT DISTINCT ON (grant_id) grant_id, $1::bigint, coalesce(grant_arn, ''), grantee_type,"
		" grantee_id, permission, location_id, sub_prefix, grant_scope,"
		" to_timestamp(created_ms / 1000.0), now() FROM recon_listing ORDER BY grant_id, ord"
		" ON CONFLICT (grant_id) DO UPDATE SET grant_arn = CASE WHEN excluded.grant_arn = ''"
		"   THEN g.grant_arn ELSE excluded.grant_arn END,"
		" grantee_type = excluded.grantee_type, grantee_id = excluded.grantee_id,"
		" permission = excluded.permission, location_id = excluded.location_id,"
		" sub_prefix = excluded.sub_prefix, grant_scope = coalesce(excluded.grant_scope, g.grant_scope),"
		" created_at = coalesce(excluded.created_at, g.created_at), seen_at = now()"
		" WHERE g.integration_id = $1::bigint"
		" RETURNING (g.xmax = 0) AS ins)"
		" SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM u",
		1, p, 0, &res, err);
	if (r < 0)
		goto fail;
	if (PQntuples(res) != 1) {
		r = bad_row(err, "upsert count", PQntuples(res));
		goto fail;
	}
	out.inserted = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	out.updated = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	res = NULL;
	if (complete) {
		r = rs_run(conn,
			"DELETE FROM s3grant.grants g WHERE g.integration_id = $1::bigint AND g.location_id = $2"
			" AND NOT EXISTS (SELECT 1 FROM recon_listing t WHERE t.grant_id = g.grant_id)",
			2, p, 0, &res, err);
		if (r < 0)
			goto fail;
		out.removed = strtoull(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		res = NULL;
	}
	r = rs_script(conn, "TRUNCATE recon_listing", err);   /* recorded: its rows are not needed */
	if (r == 0)
		r = commit(conn, err);
	if (r < 0)
		goto fail;
	if (ret)
		*ret = out;
	return 0;
fail:
	PQclear(res);
	rollback(conn);
	return r;
}

int recon_grants_sync(PGconn *conn, int64_t iid, const char *location_id, const struct recon_listed *v, size_t n,
		      bool complete, struct recon_sync_result *ret, struct pgerr *err)
{
	int r;

	r = recon_listing_add(conn, location_id, v, n, 0, err);
	if (r < 0)
		return r;
	return recon_listing_sync(conn, iid, location_id, n, complete, ret, err);
}

/* ---- intents ------------------------------------------------------------ */

#define KEY_MD5(t) "md5(" t "location_id || E'\\x1f' || " t "grantee_type || E'\\x1f' || " t "grantee_id" \
	" || E'\\x1f' || " t "permission || E'\\x1f' || " t "sub_prefix)"

int recon_intents_add(PGconn *conn, int64_t iid, const struct recon_intent_in *v, size_t n, int64_t *ret_ids,
		      struct pgerr *err)
{
	enum { A_TYPE, A_GRANTEE, A_PERM, A_LOC, A_SUB, A_SUBS, A_N };
	struct arr a[A_N];
	PGresult *res = NULL;
	char id[24];
	const char *p[1 + A_N] = { id };
	int r;

	if (!n)
		return 0;
	i64_str(iid, id);
	for (int k = 0; k < A_N; k++)
		arr_init(&a[k]);
	for (size_t i = 0; i < n; i++) {
		const struct grant *g = v[i].g;

		arr_str(&a[A_TYPE], grant_grantee_name((enum grant_grantee)g->grantee_type));
		arr_str(&a[A_GRANTEE], g->grantee_id);
		arr_str(&a[A_PERM], grant_perm_name((enum grant_perm)g->permission));
		arr_str(&a[A_LOC], g->location_id);
		arr_str(&a[A_SUB], g->sub_prefix ? g->sub_prefix : "");
		arr_ids(&a[A_SUBS], v[i].subs, v[i].nsubs);
	}
	r = arrs_end(a, A_N, p + 1, err);
	if (r < 0)
		goto out;
	/* One statement, its own transaction: the intents are committed when it
	 * returns. The input's ordinal (1-based) maps each row to its id.
	 * subscription_id is left NULL: readers take subscription_ids[1]
	 * (INTENTS_SELECT; the column is the fallback of rows older than 0004),
	 * and a NULL skips the per-row foreign key check on subscriptions that
	 * cost ~4 us an intent (with the lookup that kept it from failing). */
	r = rs_run(conn,
		"WITH t AS MATERIALIZED (SELECT *, " KEY_MD5("") " AS k FROM unnest($2::text[], $3::text[],"
		"  $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY"
		"  AS u(grantee_type, grantee_id, permission, location_id, sub_prefix, subs, ord)),"
		" ins AS (INSERT INTO s3grant.grant_intents AS gi (integration_id,"
		"  subscription_ids, grantee_type, grantee_id, permission, location_id, sub_prefix)"
		" SELECT DISTINCT ON (k) $1::bigint,"
		"  t.subs::bigint[], t.grantee_type, t.grantee_id, t.permission, t.location_id, t.sub_prefix"
		"  FROM t ORDER BY k, ord"
		" ON CONFLICT (integration_id, key_md5) DO UPDATE SET attempts = gi.attempts + 1,"
		"  subscription_ids = coalesce(excluded.subscription_ids, gi.subscription_ids)"
		" RETURNING gi.id, gi.key_md5)"
		" SELECT t.ord - 1, ins.id FROM t JOIN ins ON ins.key_md5 = t.k",
		1 + A_N, p, 0, &res, err);
	if (r < 0)
		goto out;
	if ((size_t)PQntuples(res) != n) {
		r = bad_row(err, "intent count", PQntuples(res));
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		size_t ord = strtoull(PQgetvalue(res, i, 0), NULL, 10);

		if (ord >= n) {
			r = bad_row(err, "intent ordinal", i);
			goto out;
		}
		ret_ids[ord] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
	}
out:
	PQclear(res);
	arrs_free(a, A_N);
	return r;
}

int rs_intents_parse(PGresult *res, struct intern *in, struct recon_intents *ret, struct pgerr *err)
{
	struct recon_intents out = { 0 };
	int n = PQntuples(res);

	out.v = x_calloc((size_t)n + 1, sizeof(*out.v));
	for (int i = 0; i < n; i++) {
		struct recon_intent *t = &out.v[i];
		int32_t attempts;

		if (get_i64(res, i, 0, &t->id) < 0 ||
		    grant_make(in, get_str(res, i, 1), get_str(res, i, 2), get_str(res, i, 3), get_str(res, i, 4),
			       get_str(res, i, 5), NULL, NULL, NULL, &t->g) < 0 ||
		    get_i64(res, i, 6, &t->g.subscription_id) < 0 || get_i64(res, i, 7, &t->created_ms) < 0 ||
		    get_i32(res, i, 8, &attempts) < 0) {
			recon_intents_free(&out);
			return bad_row(err, "intent", i);
		}
		t->attempts = attempts;
	}
	out.n = (size_t)n;
	*ret = out;
	return 0;
}

int recon_intents_load(PGconn *conn, int64_t iid, struct intern *in, struct recon_intents *ret,
		       struct pgerr *err)
{
	PGresult *res = NULL;
	char id[24];
	const char *p[1] = { id };
	int r;

	i64_str(iid, id);
	r = rs_run(conn, INTENTS_SELECT " WHERE integration_id = $1::bigint ORDER BY id", 1, p, 1, &res, err);
	if (r == 0)
		r = rs_intents_parse(res, in, ret, err);
	PQclear(res);
	return r;
}

void recon_intents_free(struct recon_intents *v)
{
	if (!v)
		return;
	x_free(v->v);
	memset(v, 0, sizeof(*v));
}

/* ---- batch -------------------------------------------------------------- */

/* A batch is written as a sequence of entries — created, then deleted,
 * dropped intents, audit rows, statuses — cut into windows of at most
 * BATCH_CHUNK entries; each window is one statement (every kind it holds
 * in one data-modifying WITH), so a batch of up to BATCH_CHUNK entries is
 * one round trip in its own transaction, and a larger one several
 * statements between BEGIN and COMMIT (the parameters of one window are
 * all the client holds at a time). */
#define BATCH_CHUNK 5000

enum {
	B_ID,
	C_GID, C_ARN, C_TYPE, C_GRANTEE, C_PERM, C_LOC, C_SUB, C_SCOPE, C_MS, C_SUBS,
	D_GID,
	X_ID,
	A_MS, A_OP, A_GID, A_ARN, A_PRINCIPAL, A_PREFIX, A_PERM, A_REASON, A_REQ,
	S_ID, S_STATUS, S_ERROR,
	C_INTENT,
	B_NPARAMS
};

/* The parts of a window's statement, each included only when the window
 * holds entries of its kind: a data-modifying WITH runs even when it has no
 * rows, and an UPDATE of subscriptions fires their statement trigger.
 * Grants are upserted except those the same window deletes (created, then
 * deleted: the row is gone either way; a statement must not touch a row
 * twice); no part reads another's rows. Recording a grant deletes its
 * intent: the one its create was sent under by id when the caller names it
 * (recon_created.intent_id; with the dropped ones, primary key lookups),
 * else the one with its canonical key (SQL_RESOLVE: an md5 a grant and text
 * lookups on grant_intents_key, ~5 us of Postgres CPU a grant more). */
static const char SQL_CREATED[] =
	" c AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
	"  $8::text[], $9::text[], $10::bigint[], $11::text[], $26::bigint[]) WITH ORDINALITY AS u(grant_id,"
	"  grant_arn, grantee_type, grantee_id, permission, location_id, sub_prefix, grant_scope, created_ms, subs,"
	"  intent, ord)),"
	" cg AS (INSERT INTO s3grant.grants AS g (grant_id, integration_id, grant_arn, grantee_type, grantee_id,"
	"  permission, location_id, sub_prefix, grant_scope, subscription_id, subscription_ids, created_at, seen_at)"
	"  SELECT DISTINCT ON (grant_id) grant_id, $1::bigint, coalesce(grant_arn, ''), grantee_type,"
	"  grantee_id, permission, location_id, sub_prefix, grant_scope,"
	"  (SELECT s.id FROM s3grant.subscriptions s WHERE s.id = (c.subs::bigint[])[1]), c.subs::bigint[],"
	"  coalesce(to_timestamp(created_ms / 1000.0), now()), now()"
	"  FROM c WHERE c.grant_id <> ALL ($12::text[]) ORDER BY grant_id, ord DESC"
	"  ON CONFLICT (grant_id) DO UPDATE SET grant_arn = CASE WHEN excluded.grant_arn = ''"
	"   THEN g.grant_arn ELSE excluded.grant_arn END,"
	"  grant_scope = coalesce(excluded.grant_scope, g.grant_scope),"
	"  subscription_id = coalesce(excluded.subscription_id, g.subscription_id),"
	"  subscription_ids = coalesce(excluded.subscription_ids, g.subscription_ids),"
	"  created_at = coalesce(excluded.created_at, g.created_at), seen_at = now()"
	"  WHERE g.integration_id = $1::bigint)";
static const char SQL_RESOLVE[] =
	" ci AS (DELETE FROM s3grant.grant_intents gi WHERE gi.integration_id = $1::bigint"
	"  AND gi.key_md5 = ANY (ARRAY(SELECT " KEY_MD5("c.") " FROM c WHERE c.intent IS NULL)))";
static const char SQL_DELETED[] =
	" dg AS (DELETE FROM s3grant.grants g WHERE g.grant_id = ANY ($12::text[]) AND g.integration_id = $1::bigint)";
/* The integration check is kept out of the index conditions ("IS TRUE"):
 * the planner, without statistics on grant_intents (never analysed on a
 * new database), otherwise chose grant_intents_integration_grantee_idx for
 * it and read every intent of the pass, dead ones too, per call. */
static const char SQL_DROPS[] =
	" xi AS (DELETE FROM s3grant.grant_intents gi WHERE gi.id = ANY ($13::bigint[])"
	"  AND (gi.integration_id = $1::bigint) IS TRUE)";
static const char SQL_AUDIT[] =
	" au AS (INSERT INTO s3grant.audit_log (at, integration_id, operation, grant_id, grant_arn, principal,"
	"  prefix, permission, reason, aws_request_id)"
	"  SELECT coalesce(to_timestamp(at_ms / 1000.0), now()), $1::bigint, operation, grant_id, grant_arn,"
	"  principal, prefix, permission, reason, aws_request_id FROM unnest($14::bigint[], $15::text[],"
	"  $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[])"
	"  WITH ORDINALITY AS u(at_ms, operation, grant_id, grant_arn, principal, prefix, permission, reason,"
	"  aws_request_id, ord) ORDER BY ord)";
/* last entry per id wins; unchanged rows are not written (no dead tuples) */
static const char SQL_SUBS[] =
	" su AS (UPDATE s3grant.subscriptions s SET status = t.status, error = t.error,"
	"  error_at = CASE WHEN t.error IS NULL THEN NULL ELSE now() END"
	"  FROM (SELECT DISTINCT ON (id) id, status, error FROM unnest($23::bigint[], $24::text[], $25::text[])"
	"   WITH ORDINALITY AS u(id, status, error, ord) ORDER BY id, ord DESC) t"
	"  WHERE s.id = t.id AND (s.status, s.error) IS DISTINCT FROM (t.status, t.error))";

/* Parameter types (pg_type OIDs): declared, so a part left out leaves its
 * parameters unused rather than of unknown type. */
#define OID_INT8 20
#define OID_TEXT_ARRAY 1009
#define OID_INT8_ARRAY 1016

static Oid param_type(int i)
{
	switch (i) {
	case B_ID:
		return OID_INT8;
	case C_MS: case X_ID: case A_MS: case S_ID: case C_INTENT:
		return OID_INT8_ARRAY;
	default:
		return OID_TEXT_ARRAY;
	}
}

/* Write entries [from, to) of the batch's sequence as one statement. */
static int batch_window(PGconn *conn, const char *id, const struct recon_batch *b, size_t from, size_t to,
			struct pgerr *err)
{
	struct arr a[B_NPARAMS];
	const char *p[B_NPARAMS];
	Oid types[B_NPARAMS];
	size_t k = 0, nc = 0, nkey = 0, nd = 0, nx = 0, na = 0, ns = 0;
	struct buf sql;
	int r;

	for (int i = 1; i < B_NPARAMS; i++)
		arr_init(&a[i]);
#define IN_WINDOW(n) for (size_t i = 0; i < (n); i++, k++) if (k >= from && k < to)
	IN_WINDOW(b->ncreated) {
		const struct recon_created *c = &b->created[i];
		const struct grant *g = c->g;

		nc++;
		arr_str(&a[C_GID], g->grant_id);
		arr_str(&a[C_ARN], g->grant_arn);
		arr_str(&a[C_TYPE], grant_grantee_name((enum grant_grantee)g->grantee_type));
		arr_str(&a[C_GRANTEE], g->grantee_id);
		arr_str(&a[C_PERM], grant_perm_name((enum grant_perm)g->permission));
		arr_str(&a[C_LOC], g->location_id);
		arr_str(&a[C_SUB], g->sub_prefix ? g->sub_prefix : "");
		arr_str(&a[C_SCOPE], g->grant_scope);
		if (c->created_ms)
			arr_i64(&a[C_MS], c->created_ms);
		else
			arr_null(&a[C_MS]);
		arr_ids(&a[C_SUBS], c->subs, c->nsubs);
		if (c->intent_id > 0) {
			arr_i64(&a[C_INTENT], c->intent_id);
			arr_i64(&a[X_ID], c->intent_id);
			nx++;
		} else {
			arr_null(&a[C_INTENT]);
			nkey++;
		}
	}
	IN_WINDOW(b->ndeleted)
		if (b->deleted[i]) {   /* a NULL would match no row, and make "<> ALL" unknown */
			nd++;
			arr_str(&a[D_GID], b->deleted[i]);
		}
	IN_WINDOW(b->ndrop_intents) {
		nx++;
		arr_i64(&a[X_ID], b->drop_intents[i]);
	}
	IN_WINDOW(b->naudit) {
		const struct recon_audit *au = &b->audit[i];

		na++;
		if (au->at_ms)
			arr_i64(&a[A_MS], au->at_ms);
		else
			arr_null(&a[A_MS]);
		arr_str(&a[A_OP], recon_op_name(au->op));
		arr_str(&a[A_GID], au->grant_id);
		arr_str(&a[A_ARN], au->grant_arn);
		arr_str(&a[A_PRINCIPAL], au->principal);
		arr_str(&a[A_PREFIX], au->prefix);
		arr_str(&a[A_PERM], au->permission);
		arr_str(&a[A_REASON], au->reason);
		arr_str(&a[A_REQ], au->request_id);
	}
	IN_WINDOW(b->nsubs) {
		ns++;
		arr_i64(&a[S_ID], b->subs[i].id);
		arr_str(&a[S_STATUS], recon_sub_state_name(b->subs[i].state));
		arr_str(&a[S_ERROR], b->subs[i].error);
	}
#undef IN_WINDOW
	p[B_ID] = id;
	for (int i = 0; i < B_NPARAMS; i++)
		types[i] = param_type(i);
	buf_init(&sql, 0);
	r = buf_puts(&sql, "WITH");
	if (r == 0 && nc)
		r = buf_printf(&sql, "%s,", SQL_CREATED);
	if (r == 0 && nkey)
		r = buf_printf(&sql, "%s,", SQL_RESOLVE);
	if (r == 0 && nd)
		r = buf_printf(&sql, "%s,", SQL_DELETED);
	if (r == 0 && nx)
		r = buf_printf(&sql, "%s,", SQL_DROPS);
	if (r == 0 && na)
		r = buf_printf(&sql, "%s,", SQL_AUDIT);
	if (r == 0 && ns)
		r = buf_printf(&sql, "%s,", SQL_SUBS);
	if (r == 0 && nc + nd + nx + na + ns == 0)
		goto out;   /* only NULL grant ids: nothing to write */
	if (r == 0) {
		sql.data[--sql.len] = '\0';   /* the last part's comma */
		r = buf_puts(&sql, " SELECT 1");
	}
	if (r == 0)
		r = arrs_end(a + 1, B_NPARAMS - 1, p + 1, err);
	if (r == 0) {
		PGresult *res = PQexecParams(conn, buf_str(&sql), B_NPARAMS, types, p, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			r = fail_res(conn, res, err);
		else
			PQclear(res);
	}
out:
	buf_free(&sql);
	arrs_free(a + 1, B_NPARAMS - 1);
	return r;
}

int recon_batch_commit(PGconn *conn, int64_t iid, const struct recon_batch *b, struct pgerr *err)
{
	size_t total = b->ncreated + b->ndeleted + b->ndrop_intents + b->naudit + b->nsubs;
	char id[24];
	int r = 0;

	for (size_t i = 0; i < b->ncreated; i++)
		if (!b->created[i].g->grant_id) {
			if (err)
				pgerr_set(err, "created grant %zu has no grant id", i);
			return S3G_EINVAL;
		}
	for (size_t i = 0; i < b->nsubs; i++)
		if ((unsigned)b->subs[i].state >= RECON_SUB_STATE_MAX_) {
			if (err)
				pgerr_set(err, "subscription status %zu is out of range", i);
			return S3G_EINVAL;
		}
	if (!total)
		return 0;
	i64_str(iid, id);
	if (total <= BATCH_CHUNK)
		return batch_window(conn, id, b, 0, total, err);
	r = rs_script(conn, "BEGIN", err);
	for (size_t from = 0; r == 0 && from < total; from += BATCH_CHUNK)
		r = batch_window(conn, id, b, from, from + BATCH_CHUNK < total ? from + BATCH_CHUNK : total, err);
	if (r == 0)
		r = commit(conn, err);
	if (r < 0)
		rollback(conn);
	return r;
}

/* ---- health ------------------------------------------------------------- */

struct recon_health recon_health_keep(void)
{
	return (struct recon_health){
		.desired = -1, .actual = -1, .rejected = -1, .errors = -1, .instance_grants = -1,
		.resync_at_ms = 0, .last_error = NULL, .progress_done = -1, .progress_total = -1,
	};
}

int recon_health_set(PGconn *conn, int64_t iid, const struct recon_health *h, struct pgerr *err)
{
	char v[9][24];
	const char *p[10];
	const int64_t nums[7] = { h->desired, h->actual, h->rejected, h->errors, h->instance_grants,
				  h->progress_done, h->progress_total };

	i64_str(iid, v[0]);
	p[0] = v[0];
	for (int i = 0; i < 7; i++) {
		i64_str(nums[i], v[i + 1]);
		p[i + 1] = nums[i] >= 0 ? v[i + 1] : NULL;
	}
	i64_str(h->resync_at_ms, v[8]);
	p[8] = h->resync_at_ms ? v[8] : NULL;
	p[9] = h->last_error;
	/* progress_total 0 clears both progress fields */
	return rs_run(conn,
		"INSERT INTO s3grant.integration_health AS h (integration_id, desired_count, actual_count,"
		" rejected_count, error_count, instance_grants, progress_done, progress_total, last_resync_at,"
		" last_error, last_error_at)"
		" VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bigint, $6::bigint,"
		"  CASE WHEN $8::bigint > 0 THEN $7::bigint END, nullif($8::bigint, 0),"
		"  to_timestamp($9::bigint / 1000.0), nullif($10, ''),"
		"  CASE WHEN coalesce($10, '') <> '' THEN now() END)"
		" ON CONFLICT (integration_id) DO UPDATE SET"
		" desired_count = coalesce($2::bigint, h.desired_count),"
		" actual_count = coalesce($3::bigint, h.actual_count),"
		" rejected_count = coalesce($4::bigint, h.rejected_count),"
		" error_count = coalesce($5::bigint, h.error_count),"
		" instance_grants = coalesce($6::bigint, h.instance_grants),"
		" progress_done = CASE WHEN $8::bigint IS NULL THEN coalesce($7::bigint, h.progress_done)"
		"   WHEN $8::bigint = 0 THEN NULL ELSE $7::bigint END,"
		" progress_total = CASE WHEN $8::bigint IS NULL THEN h.progress_total ELSE nullif($8::bigint, 0) END,"
		" last_resync_at = coalesce(to_timestamp($9::bigint / 1000.0), h.last_resync_at),"
		" last_error = CASE WHEN $10 IS NULL THEN h.last_error ELSE nullif($10, '') END,"
		" last_error_at = CASE WHEN $10 IS NULL THEN h.last_error_at WHEN $10 = '' THEN NULL"
		"   WHEN $10 IS DISTINCT FROM h.last_error THEN now() ELSE h.last_error_at END,"
		" updated_at = now()",
		10, p, 0, NULL, err);
}

/* ---- lifecycle ---------------------------------------------------------- */

bool recon_transition_legal(enum recon_istatus from, enum recon_istatus to)
{
	switch (from) {
	case RECON_CREATING:
		return to == RECON_ENABLED || to == RECON_CREATE_ERROR;
	case RECON_EDITING:
		return to == RECON_ENABLED || to == RECON_EDIT_ERROR;
	case RECON_DELETING:
		return to == RECON_DELETED || to == RECON_DELETE_ERROR;
	case RECON_DELETE_ERROR:
		return to == RECON_DELETING;
	case RECON_ENABLED:
	case RECON_RECURRING_VALIDATION_ERROR:
		return to == RECON_ENABLED || to == RECON_RECURRING_VALIDATION_ERROR;
	default:
		return false;
	}
}

int recon_integration_transition(PGconn *conn, int64_t iid, const struct recon_transition *t, struct pgerr *err)
{
	char id[24];
	const char *p[9];
	PGresult *res = NULL;
	int r;

	if (!recon_transition_legal(t->from, t->to)) {
		if (err)
			pgerr_set(err, "an integration does not go from %s to %s", recon_istatus_name(t->from),
				  recon_istatus_name(t->to));
		return S3G_EINVAL;
	}
	i64_str(iid, id);
	p[0] = id;
	p[1] = recon_istatus_name(t->from);
	p[2] = recon_istatus_name(t->to);
	p[3] = t->results_json;
	p[4] = t->message;
	p[5] = t->location_id;
	p[6] = t->location_arn;
	p[7] = t->instance_arn;
	/* $9: restore the configuration the edit replaced */
	p[8] = t->from == RECON_EDITING && t->to == RECON_EDIT_ERROR ? "t" : "f";
	r = rs_run(conn,
		"UPDATE s3grant.integrations i SET status = $3::s3grant.integration_status,"
		" status_message = $5,"
		" validation_results = coalesce($4::jsonb, i.validation_results),"
		" validated_at = CASE WHEN $4 IS NULL THEN i.validated_at ELSE now() END,"
		" location_id = coalesce($6, i.location_id), location_arn = coalesce($7, i.location_arn),"
		" instance_arn = coalesce($8, i.instance_arn),"
		" name = CASE WHEN $9::boolean AND i.previous_config IS NOT NULL"
		"   THEN i.previous_config->>'name' ELSE i.name END,"
		" authentication_type = CASE WHEN $9::boolean AND i.previous_config IS NOT NULL"
		"   THEN i.previous_config->>'authentication_type' ELSE i.authentication_type END,"
		" access_key_id = CASE WHEN $9::boolean AND i.previous_config IS NOT NULL"
		"   THEN i.previous_config->>'access_key_id' ELSE i.access_key_id END,"
		" secret_access_key = CASE WHEN $9::boolean AND i.previous_config IS NOT NULL"
		"   THEN i.previous_secret ELSE i.secret_access_key END,"
		" external_id = CASE WHEN $9::boolean AND i.previous_config IS NOT NULL"
		"   THEN i.previous_config->>'external_id' ELSE i.external_id END,"
		" role_session_name = CASE WHEN $9::boolean AND i.previous_config IS NOT NULL"
		"   THEN i.previous_config->>'role_session_name' ELSE i.role_session_name END,"
		" previous_config = NULL, previous_secret = NULL"
		" WHERE i.id = $1::bigint AND i.status = $2::s3grant.integration_status RETURNING i.id",
		9, p, 0, &res, err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1)
		goto out;
	PQclear(res);
	res = NULL;
	r = rs_run(conn, "SELECT status::text FROM s3grant.integrations WHERE id = $1::bigint", 1, p, 0, &res, err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		if (err)
			pgerr_set(err, "integration %" PRId64 " does not exist", iid);
		r = S3G_ENOTFOUND;
	} else {
		if (err)
			pgerr_set(err, "integration %" PRId64 " is %s, not %s", iid, PQgetvalue(res, 0, 0),
				  recon_istatus_name(t->from));
		r = S3G_ECONFLICT;
	}
out:
	PQclear(res);
	return r;
}

/* ---- lock --------------------------------------------------------------- */

static void lock_key(int64_t iid, char out[24])
{
	/* int4 key 2: the id's low 32 bits (ids beyond 2^32 share keys: harmless over-locking) */
	i64_str((int64_t)(int32_t)(uint32_t)iid, out);
}

int recon_lock_try(PGconn *conn, int64_t iid, bool *ret_got, struct pgerr *err)
{
	char cls[24], k[24];
	const char *p[2] = { cls, k };
	PGresult *res = NULL;
	int r;

	i64_str(RECON_LOCK_CLASS, cls);
	lock_key(iid, k);
	r = rs_run(conn, "SELECT pg_try_advisory_lock($1::int, $2::int)", 2, p, 0, &res, err);
	if (r < 0)
		return r;
	*ret_got = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

int recon_lock_release(PGconn *conn, int64_t iid, struct pgerr *err)
{
	char cls[24], k[24];
	const char *p[2] = { cls, k };
	PGresult *res = NULL;
	int r;

	i64_str(RECON_LOCK_CLASS, cls);
	lock_key(iid, k);
	/* only unlock what this session holds (pg_advisory_unlock warns otherwise) */
	r = rs_run(conn,
		"SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
		" AND pid = pg_backend_pid() AND classid = $1::bigint::oid"
		" AND objid = ($2::bigint & 4294967295)::oid AND objsubid = 2)"
		" THEN pg_advisory_unlock($1::int, $2::int) ELSE false END", 2, p, 0, &res, err);
	if (r < 0)
		return r;
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		if (err)
			pgerr_set(err, "this session does not hold integration %" PRId64 "'s lock", iid);
		r = S3G_ENOTFOUND;
	}
	PQclear(res);
	return r;
}

int recon_lock_holder(PGconn *conn, int64_t iid, int *ret_pid, struct pgerr *err)
{
	char cls[24], k[24];
	const char *p[2] = { cls, k };
	PGresult *res = NULL;
	int r;

	i64_str(RECON_LOCK_CLASS, cls);
	lock_key(iid, k);
	r = rs_run(conn,
		"SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database ="
		" (SELECT oid FROM pg_database WHERE datname = current_database())"
		" AND classid = $1::bigint::oid AND objid = ($2::bigint & 4294967295)::oid AND objsubid = 2 LIMIT 1",
		2, p, 0, &res, err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		r = S3G_ENOTFOUND;
	else
		*ret_pid = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return r;
}
