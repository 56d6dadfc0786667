#include "core/err.h"

#include <string.h>

struct err_entry {
	int code;
	const char *name;
	const char *text;
};

static const struct err_entry table[] = {
#define S3G_ERR_ROW_(code, name, text) {code, name, text},
	S3G_ERRORS(S3G_ERR_ROW_)
#undef S3G_ERR_ROW_
};

static const struct err_entry *find(int err)
{
	for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == err)
			return &table[i];
	return NULL;
}

const char *err_name(int err)
{
	const struct err_entry *e = find(err);

	if (e)
		return e->name;
	if (err == 0)
		return "ok";
	return err < 0 && err > -4096 ? "errno" : "unknown";
}

const char *err_str(int err)
{
	const struct err_entry *e = find(err);

	if (e)
		return e->text;
	if (err == 0)
		return "success";
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
