/* pgtest.h — a fresh database per test on the CTest fixture's Postgres
 * (PGHOST/PGPORT/PGUSER from the environment). Header-only, tests only. */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/xalloc.h"

/* Create an empty database; returns its conninfo (x_free it). */
static inline char *pgtest_fresh_db(void)
{
	char name[64], sql[128];
	PGconn *c = PQconnectdb("dbname=postgres");
	PGresult *res;
	struct timespec ts;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgtest: %s", PQerrorMessage(c));
		abort();
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "t_%ld_%ld_%ld", (long)getpid(), (long)ts.tv_sec, ts.tv_nsec);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pgtest: %s", PQerrorMessage(c));
		abort();
	}
	PQclear(res);
	PQfinish(c);
	return x_asprintf("dbname=%s", name);
}

static inline PGconn *pgtest_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgtest: %s", PQerrorMessage(c));
		abort();
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

/* Run SQL that must succeed. */
static inline void pgtest_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
		abort();
	}
	PQclear(res);
}

/* First column of the first row, x_strdup'd ("" if no row). */
static inline char *pgtest_value(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	char *v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
		abort();
	}
	v = x_strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return v;
}
