#include "store/queue.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/xalloc.h"

static const char *const kind_names[PGQ_KIND_MAX] = {
	[PGQ_KIND_INTEGRATION] = "integration",
	[PGQ_KIND_DATA_SOURCE] = "data_source",
	[PGQ_KIND_USER] = "user",
	[PGQ_KIND_SUBSCRIPTION] = "subscription",
};

const char *pgq_kind_name(enum pgq_kind k)
{
	return (unsigned)k < PGQ_KIND_MAX ? kind_names[k] : "?";
}

static int kind_parse(const char *s, enum pgq_kind *ret)
{
	for (int i = 0; i < PGQ_KIND_MAX; i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*ret = (enum pgq_kind)i;
			return 0;
		}
	return S3G_EPARSE;
}

void pgq_query_free(struct pgq_query *q)
{
	if (!q)
		return;
	for (int i = 0; i < 4; i++)
		X_FREE(q->owned[i]);
	memset(q, 0, sizeof(*q));
}

void pgq_batch_free(struct pgq_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		x_free(b->items[i].key);
	X_FREE(b->items);
	b->n = 0;
}

int pgq_claim_query(struct pgq_query *ret_q, int batch, int lease_ms, const char *who)
{
	struct pgq_query q = { 0 };

	if (batch < 1 || batch > PGQ_BATCH_MAX || lease_ms < 1 || !who || !who[0])
		return S3G_EINVAL;
	q.sql = "SELECT key, kind, integration_id, seq, changes, attempts "
		"FROM s3grant.claim_changes($1::int, $2::int, $3::text)";
	q.nparams = 3;
	q.owned[0] = x_asprintf("%d", batch);
	q.owned[1] = x_asprintf("%d", lease_ms);
	q.values[0] = q.owned[0];
	q.values[1] = q.owned[1];
	q.values[2] = who;
	*ret_q = q;
	return 0;
}

/* A Postgres array literal of quoted elements: {"a","b\"c"}. */
static int array_keys(const struct pgq_batch *b, char **ret)
{
	struct buf out;
	int r = 0;

	buf_init(&out, (size_t)PGQ_BATCH_MAX * (2 * PGQ_KEY_MAX + 3) + 3);
	r = buf_puts(&out, "{");
	for (size_t i = 0; r == 0 && i < b->n; i++) {
		const char *k = b->items[i].key;

		if (strlen(k) > PGQ_KEY_MAX) {
			r = S3G_EINVAL;
			break;
		}
		r = buf_puts(&out, i ? ",\"" : "\"");
		for (; r == 0 && *k; k++) {
			if (*k == '"' || *k == '\\')
				r = buf_append(&out, "\\", 1);
			if (r == 0)
				r = buf_append(&out, k, 1);
		}
		if (r == 0)
			r = buf_puts(&out, "\"");
	}
	if (r == 0)
		r = buf_puts(&out, "}");
	if (r == 0)
		*ret = buf_steal(&out);
	buf_free(&out);
	return r;
}

static int array_seqs(const struct pgq_batch *b, char **ret)
{
	struct buf out;
	int r;

	buf_init(&out, (size_t)PGQ_BATCH_MAX * 22 + 3);
	r = buf_puts(&out, "{");
	for (size_t i = 0; r == 0 && i < b->n; i++)
		r = buf_printf(&out, "%s%lld", i ? "," : "", b->items[i].seq);
	if (r == 0)
		r = buf_puts(&out, "}");
	if (r == 0)
		*ret = buf_steal(&out);
	buf_free(&out);
	return r;
}

int pgq_ack_query(struct pgq_query *ret_q, const struct pgq_batch *b, const char *who)
{
	struct pgq_query q = { 0 };
	int r;

	if (!b || b->n > PGQ_BATCH_MAX || !who || !who[0])
		return S3G_EINVAL;
	q.sql = "SELECT s3grant.ack_changes($1::text[], $2::bigint[], $3::text)";
	q.nparams = 3;
	r = array_keys(b, &q.owned[0]);
	if (r == 0)
		r = array_seqs(b, &q.owned[1]);
	if (r < 0) {
		pgq_query_free(&q);
		return r;
	}
	q.values[0] = q.owned[0];
	q.values[1] = q.owned[1];
	q.values[2] = who;
	*ret_q = q;
	return 0;
}

int pgq_release_query(struct pgq_query *ret_q, const struct pgq_batch *b, const char *who,
		      int delay_ms)
{
	struct pgq_query q = { 0 };
	int r;

	if (!b || b->n > PGQ_BATCH_MAX || !who || !who[0] || delay_ms < 0)
		return S3G_EINVAL;
	q.sql = "SELECT s3grant.release_changes($1::text[], $2::text, $3::int)";
	q.nparams = 3;
	r = array_keys(b, &q.owned[0]);
	if (r < 0) {
		pgq_query_free(&q);
		return r;
	}
	q.owned[2] = x_asprintf("%d", delay_ms);
	q.values[0] = q.owned[0];
	q.values[1] = who;
	q.values[2] = q.owned[2];
	*ret_q = q;
	return 0;
}

int pgq_renew_query(struct pgq_query *ret_q, int lease_ms, const char *who)
{
	struct pgq_query q = { 0 };

	if (lease_ms < 1 || !who || !who[0])
		return S3G_EINVAL;
	q.sql = "SELECT s3grant.renew_changes($1::int, $2::text)";
	q.nparams = 2;
	q.owned[0] = x_asprintf("%d", lease_ms);
	q.values[0] = q.owned[0];
	q.values[1] = who;
	*ret_q = q;
	return 0;
}

const char *pgq_session_sql(char *buf, size_t n, int timeout_ms)
{
	snprintf(buf, n, "SET statement_timeout = %d", timeout_ms < 0 ? 0 : timeout_ms);
	return buf;
}

int pgq_parse_claim(const PGresult *res, struct pgq_batch *ret_batch)
{
	struct pgq_batch b = { 0 };
	int n, r = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 6)
		return S3G_EPGQUERY;
	n = PQntuples(res);
	if (n > PGQ_BATCH_MAX)
		return S3G_ETOOBIG;
	b.items = n ? x_calloc((size_t)n, sizeof(*b.items)) : NULL;
	for (int i = 0; i < n; i++) {
		struct pgq_change *c = &b.items[i];

		c->key = x_strdup(PQgetvalue(res, i, 0));
		b.n++;
		r = kind_parse(PQgetvalue(res, i, 1), &c->kind);
		if (r < 0)
			break;
		c->integration_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		c->seq = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		c->changes = strtoll(PQgetvalue(res, i, 4), NULL, 10);
		c->attempts = atoi(PQgetvalue(res, i, 5));
	}
	if (r < 0) {
		pgq_batch_free(&b);
		return r;
	}
	*ret_batch = b;
	return 0;
}

int pgq_parse_ack(const PGresult *res, long long *ret_deleted)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 1)
		return S3G_EPGQUERY;
	*ret_deleted = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	return 0;
}

/* ---- blocking helpers ---- */

static int exec_cmd(PGconn *conn, const char *sql, struct pgerr *err)
{
	PGresult *res = PQexec(conn, sql);
	int r = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		struct pgerr tmp;

		pgerr_from_result(&tmp, conn, res);
		r = pgerr_status(&tmp);
		if (err)
			*err = tmp;
	}
	PQclear(res);
	return r;
}

/* BEGIN; SET LOCAL statement_timeout; q; COMMIT. res is the query's result. */
static int run_tx(PGconn *conn, const struct pgq_query *q, int timeout_ms, PGresult **ret_res,
		  struct pgerr *err)
{
	char set[64];
	PGresult *res = NULL;
	int r;

	r = exec_cmd(conn, "BEGIN", err);
	if (r < 0)
		return r;
	snprintf(set, sizeof(set), "SET LOCAL statement_timeout = %d", timeout_ms < 0 ? 0 : timeout_ms);
	r = exec_cmd(conn, set, err);
	if (r < 0)
		goto fail;
	res = PQexecParams(conn, q->sql, q->nparams, NULL, q->values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		struct pgerr tmp;

		pgerr_from_result(&tmp, conn, res);
		r = pgerr_status(&tmp);
		if (err)
			*err = tmp;
		goto fail;
	}
	r = exec_cmd(conn, "COMMIT", err);
	if (r < 0)
		goto fail;
	*ret_res = res;
	return 0;
fail:
	PQclear(res);
	PQclear(PQexec(conn, "ROLLBACK"));
	return r;
}

int pgq_claim(PGconn *conn, int batch, int lease_ms, const char *who, int timeout_ms,
	      struct pgq_batch *ret_batch, struct pgerr *err)
{
	struct pgq_query q;
	PGresult *res = NULL;
	int r = pgq_claim_query(&q, batch, lease_ms, who);

	if (r < 0)
		return r;
	r = run_tx(conn, &q, timeout_ms, &res, err);
	if (r == 0)
		r = pgq_parse_claim(res, ret_batch);
	PQclear(res);
	pgq_query_free(&q);
	return r;
}

/* Run a query whose one value is a count (ack, renew); r: the builder's status. */
static int run_count(PGconn *conn, struct pgq_query *q, int r, int timeout_ms, long long *ret_n,
		     struct pgerr *err)
{
	PGresult *res = NULL;

	if (r < 0)
		return r;
	r = run_tx(conn, q, timeout_ms, &res, err);
	if (r == 0)
		r = pgq_parse_ack(res, ret_n);
	PQclear(res);
	pgq_query_free(q);
	return r;
}

int pgq_ack(PGconn *conn, const struct pgq_batch *b, const char *who, int timeout_ms,
	    long long *ret_deleted, struct pgerr *err)
{
	struct pgq_query q;

	return run_count(conn, &q, pgq_ack_query(&q, b, who), timeout_ms, ret_deleted, err);
}

int pgq_release(PGconn *conn, const struct pgq_batch *b, const char *who, int delay_ms,
		struct pgerr *err)
{
	struct pgq_query q;
	PGresult *res = NULL;
	int r = pgq_release_query(&q, b, who, delay_ms);

	if (r < 0)
		return r;
	r = run_tx(conn, &q, 0, &res, err);
	PQclear(res);
	pgq_query_free(&q);
	return r;
}

int pgq_renew(PGconn *conn, int lease_ms, const char *who, long long *ret_renewed,
	      struct pgerr *err)
{
	struct pgq_query q;

	return run_count(conn, &q, pgq_renew_query(&q, lease_ms, who), 0, ret_renewed, err);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pgq_wait(PGconn *conn, int timeout_ms, long long *ret_iid, struct pgerr *err)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		PGnotify *nt;
		struct pollfd pfd;
		long long left;
		int pr;

		if (!PQconsumeInput(conn)) {
			pgerr_from_result(err, conn, NULL);
			return S3G_EPGCONN;
		}
		nt = PQnotifies(conn);
		if (nt) {
			long long iid = strtoll(nt->extra, NULL, 10);

			PQfreemem(nt);
			*ret_iid = iid;
			return 0;
		}
		left = deadline - now_ms();
		if (left <= 0)
			return S3G_ETIMEOUT;
		pfd.fd = PQsocket(conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0)
			return S3G_EPGCONN;
		pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno != EINTR)
			return -errno;
	}
}
