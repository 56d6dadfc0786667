/* xalloc.h — allocation that never returns NULL.
 *
 * Out of memory is not an error the daemon can handle: these wrappers call
 * the OOM hook (the daemon installs one that writes a single log line) and
 * abort(). x_free(NULL) is a no-op, like free().
 */
#pragma once
#include <stddef.h>

typedef void (*xalloc_oom_cb)(size_t size);
void xalloc_set_oom_hook(xalloc_oom_cb cb);

void *x_malloc(size_t n) __attribute__((malloc, returns_nonnull));
void *x_calloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *x_realloc(void *p, size_t n) __attribute__((returns_nonnull));
char *x_strdup(const char *s) __attribute__((malloc, returns_nonnull));
char *x_strndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
char *x_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), malloc, returns_nonnull));
void x_free(void *p);

/* Free and NULL a pointer variable. */
#define X_FREE(p) do { x_free(p); (p) = NULL; } while (0)
