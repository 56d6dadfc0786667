/* pgerr.h — what went wrong in a PostgreSQL call, as data.
 *
 * Store functions return an int status (0, negative errno or S3G_E*) and,
 * when the caller passes a struct pgerr, fill it with the server's message,
 * SQLSTATE and the column/constraint fields of the error (the schema's
 * validation triggers set them: "prefix: 'a/../b' has a ".." segment").
 * The struct is plain data with fixed-size fields: nothing to free.
 * pgerr_status() maps a SQLSTATE to the project code a caller acts on.
 */
#pragma once
#include <libpq-fe.h>

#include "core/err.h"

struct pgerr {
	char sqlstate[6];       /* "" when the error is not from the server */
	char message[1024];     /* primary message, one line */
	char detail[512];
	char column[64];        /* offending column, when the server named one */
	char constraint[128];   /* offending constraint, when named */
};

void pgerr_clear(struct pgerr *e);
/* Fill from a failed result (res may be NULL: the connection's message is used). */
void pgerr_from_result(struct pgerr *e, const PGconn *conn, const PGresult *res);
/* Fill with a message of our own (printf-style); sqlstate stays "". */
void pgerr_set(struct pgerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* S3G_EINVAL for data/check errors (class 22, 23514, 23502), S3G_ECONFLICT for
 * unique violations and serialization failures, S3G_ENOTFOUND for foreign-key
 * violations, S3G_ETIMEOUT for a statement timeout, S3G_EPGCONN for
 * connection errors (class 08, 57P01), S3G_EPGQUERY otherwise. */
int pgerr_status(const struct pgerr *e);
