/* Growable byte buffers with a hard cap (curl's dynbuf idea): appending past
 * `max` fails with PC_E2BIG instead of growing without limit. */
#ifndef PC_UTIL_BUF_H
#define PC_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct pc_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
};

void pc_buf_init(struct pc_buf *b, size_t max);
void pc_buf_free(struct pc_buf *b);
/* Appends; returns 0, PC_E2BIG past the cap, or -ENOMEM. */
int pc_buf_append(struct pc_buf *b, const void *data, size_t len);
int pc_buf_append_str(struct pc_buf *b, const char *s);
int pc_buf_printf(struct pc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void pc_buf_consume(struct pc_buf *b, size_t n);
void pc_buf_reset(struct pc_buf *b);
/* Releases the storage of an empty buffer, so idle owners cost nothing. */
void pc_buf_shrink(struct pc_buf *b);

#endif
