#include "config.h"

#include "util/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void
pc_buf_init(struct pc_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void
pc_buf_free(struct pc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static int
buf_reserve(struct pc_buf *b, size_t extra)
{
    size_t need = b->len + extra;

    if (extra > b->max || need > b->max) {
        return PC_E2BIG;
    }
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > b->max) {
        cap = b->max;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int
pc_buf_append(struct pc_buf *b, const void *data, size_t len)
{
    int rc;

    if (len == 0) {
        return 0;
    }
    rc = buf_reserve(b, len);
    if (rc < 0) {
        return rc;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int
pc_buf_append_str(struct pc_buf *b, const char *s)
{
    return pc_buf_append(b, s, strlen(s));
}

int
pc_buf_printf(struct pc_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return PC_EPROTO;
    }
    if ((size_t)n < sizeof(small)) {
        return pc_buf_append(b, small, (size_t)n);
    }
    int rc = buf_reserve(b, (size_t)n);
    if (rc < 0) {
        return rc;
    }
    if (b->cap - b->len > (size_t)n) {
        va_start(ap, fmt);
        (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
    }
    /* The text ends exactly at the cap: no room for vsnprintf's NUL. */
    char *tmp = malloc((size_t)n + 1);
    if (tmp == NULL) {
        return -ENOMEM;
    }
    va_start(ap, fmt);
    (void)vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    memcpy(b->data + b->len, tmp, (size_t)n);
    b->len += (size_t)n;
    free(tmp);
    return 0;
}

void
pc_buf_consume(struct pc_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void
pc_buf_reset(struct pc_buf *b)
{
    b->len = 0;
}

void
pc_buf_shrink(struct pc_buf *b)
{
    if (b->len == 0) {
        pc_buf_free(b);
    }
}
