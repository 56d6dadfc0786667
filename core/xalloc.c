#include "core/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static xalloc_oom_cb oom_hook;

void xalloc_set_oom_hook(xalloc_oom_cb cb)
{
	oom_hook = cb;
}

static _Noreturn void oom(size_t n)
{
	if (oom_hook)
		oom_hook(n);
	abort();
}

void *x_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *x_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom(n * size);
	return p;
}

void *x_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *x_strdup(const char *s)
{
	return x_strndup(s, strlen(s));
}

char *x_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = x_malloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *x_asprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	p = x_malloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void x_free(void *p)
{
	free(p);
}
