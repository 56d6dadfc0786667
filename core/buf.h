/* buf.h — a growable byte buffer with a hard maximum.
 *
 * Every buffer that grows with outside input has a limit (a hostile peer
 * cannot exhaust memory): an append returns S3G_ETOOBIG and leaves the buffer unchanged when the limit would be passed.
 * The content is always NUL-terminated (the NUL is not counted in len).
 */
#pragma once
#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

struct buf {
	char *data;   /* NUL-terminated; NULL until the first append */
	size_t len;   /* bytes used, excluding the NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* hard limit on len; 0 = unlimited */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Make room for extra more bytes (content unchanged): S3G_ETOOBIG past the
 * limit. Lets a builder size a buffer once instead of doubling up to it. */
int buf_reserve(struct buf *b, size_t extra) S3G_WUR;
int buf_append(struct buf *b, const void *p, size_t n) S3G_WUR;
int buf_puts(struct buf *b, const char *s) S3G_WUR;
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3))) S3G_WUR;
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0))) S3G_WUR;
/* Hand the bytes to the caller (who frees them with x_free); the buffer is emptied. */
char *buf_steal(struct buf *b);
/* Always a valid C string, "" when empty. */
const char *buf_str(const struct buf *b);
