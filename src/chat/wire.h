/* Encoding of pool messages: little-endian integers and u16-length
 * strings. Readers never trust a length: a short or malformed message
 * sets `bad` and yields zeros and empty strings. */
#ifndef PC_CHAT_WIRE_H
#define PC_CHAT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "irc/irc.h"
#include "util/buf.h"

enum pc_wire_type {
    WIRE_ROOM_MSG = 1, /* a committed room message */
    WIRE_USER = 2,     /* a user and its rooms (announce) */
    WIRE_NICK = 3,
    WIRE_JOIN = 4,
    WIRE_PART = 5,     /* PART or KICK, with the line members see */
    WIRE_QUIT = 6,
    WIRE_ROOM = 7,     /* room settings changed, with the line members see */
    WIRE_FLAGS = 8,    /* a member's op/voice changed */
    WIRE_DM = 9,       /* a private PRIVMSG/NOTICE/TAGMSG to a user elsewhere */
    WIRE_TAGMSG = 10,  /* a TAGMSG to a room (client-only tags, not stored) */
};

int pc_wire_u8(struct pc_buf *b, unsigned v);
int pc_wire_u64(struct pc_buf *b, uint64_t v);
int pc_wire_str(struct pc_buf *b, const char *s);

struct pc_wire_reader {
    const unsigned char *p;
    size_t left;
    bool bad;
};

unsigned pc_wire_rd_u8(struct pc_wire_reader *r);
uint64_t pc_wire_rd_u64(struct pc_wire_reader *r);
struct pc_irc_str pc_wire_rd_str(struct pc_wire_reader *r);

#endif
