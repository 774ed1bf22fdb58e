#include "config.h"

#include "chat/wire.h"

#include <string.h>

#include "util/err.h"

int
pc_wire_u8(struct pc_buf *b, unsigned v)
{
    unsigned char x = (unsigned char)v;
    return pc_buf_append(b, &x, 1);
}

int
pc_wire_u64(struct pc_buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++) {
        x[i] = (unsigned char)(v >> (8 * i));
    }
    return pc_buf_append(b, x, 8);
}

int
pc_wire_str(struct pc_buf *b, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    unsigned char x[2] = {(unsigned char)len, (unsigned char)(len >> 8)};
    if (len > 0xffff) {
        return PC_E2BIG;
    }
    int rc = pc_buf_append(b, x, 2);
    return rc ? rc : pc_buf_append(b, s ? s : "", len);
}

unsigned
pc_wire_rd_u8(struct pc_wire_reader *r)
{
    if (r->left < 1) {
        r->bad = true;
        return 0;
    }
    unsigned v = r->p[0];
    r->p++;
    r->left--;
    return v;
}

uint64_t
pc_wire_rd_u64(struct pc_wire_reader *r)
{
    uint64_t v = 0;
    if (r->left < 8) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += 8;
    r->left -= 8;
    return v;
}

struct pc_irc_str
pc_wire_rd_str(struct pc_wire_reader *r)
{
    struct pc_irc_str s = {"", 0};
    if (r->left < 2) {
        r->bad = true;
        return s;
    }
    size_t len = (size_t)r->p[0] | ((size_t)r->p[1] << 8);
    if (r->left - 2 < len) {
        r->bad = true;
        return s;
    }
    s.p = (const char *)r->p + 2;
    s.len = len;
    r->p += 2 + len;
    r->left -= 2 + len;
    return s;
}
