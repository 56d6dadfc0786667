#include "store/pgerr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pgerr_clear(struct pgerr *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

static void copy_line(char *dst, size_t n, const char *src)
{
	size_t i;

	if (!src)
		src = "";
	snprintf(dst, n, "%s", src);
	/* one line: libpq messages end in a newline */
	for (i = strlen(dst); i > 0 && (dst[i - 1] == '\n' || dst[i - 1] == ' '); i--)
		dst[i - 1] = '\0';
}

void pgerr_from_result(struct pgerr *e, const PGconn *conn, const PGresult *res)
{
	const char *s;

	if (!e)
		return;
	pgerr_clear(e);
	if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
		copy_line(e->sqlstate, sizeof(e->sqlstate), PQresultErrorField(res, PG_DIAG_SQLSTATE));
		s = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		copy_line(e->message, sizeof(e->message), s ? s : PQresultErrorMessage(res));
		copy_line(e->detail, sizeof(e->detail), PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
		copy_line(e->column, sizeof(e->column), PQresultErrorField(res, PG_DIAG_COLUMN_NAME));
		copy_line(e->constraint, sizeof(e->constraint),
			  PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
		return;
	}
	copy_line(e->message, sizeof(e->message), conn ? PQerrorMessage(conn) : "no connection");
	if (conn && PQstatus(conn) != CONNECTION_OK)
		snprintf(e->sqlstate, sizeof(e->sqlstate), "08006");
}

void pgerr_set(struct pgerr *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	pgerr_clear(e);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

int pgerr_status(const struct pgerr *e)
{
	const char *s = e->sqlstate;

	if (!s[0])
		return S3G_EPGQUERY;
	if (strcmp(s, "23505") == 0 || strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
		return S3G_ECONFLICT;
	if (strcmp(s, "23503") == 0)
		return S3G_ENOTFOUND;
	if (strcmp(s, "57014") == 0)
		return S3G_ETIMEOUT;
	if (strncmp(s, "22", 2) == 0 || strcmp(s, "23514") == 0 || strcmp(s, "23502") == 0)
		return S3G_EINVAL;
	if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0)
		return S3G_EPGCONN;
	return S3G_EPGQUERY;
}
