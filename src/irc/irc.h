/* The IRC protocol, pure: framing, parsing, serialising, tag escaping,
 * casemapping and UTF-8 checks. No I/O, no allocation, no globals; every
 * function is safe on hostile input and is fuzzed (tests/fuzz/). */
#ifndef PC_IRC_IRC_H
#define PC_IRC_IRC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Limits from the modern IRC client protocol and the message-tags spec. */
#define PC_IRC_BODY_MAX 512   /* source, command, params and CR LF */
/* Tag section a server may send: '@', 4094 bytes of client tag data, 4094
 * of server tag data, a ';' between them and ' '. */
#define PC_IRC_TAGS_MAX 8191
/* Tag section a client may send: '@', 4094 bytes of tag data and ' '. */
#define PC_IRC_CLIENT_TAGS_MAX 4096
#define PC_IRC_LINE_MAX (PC_IRC_TAGS_MAX + PC_IRC_BODY_MAX)
#define PC_IRC_MAX_PARAMS 15
#define PC_IRC_MAX_TAGS 64

enum {
    PC_IRC_ETOOLONG = -20001, /* line over the limits: reply 417 */
    PC_IRC_EEMPTY = -20002,   /* empty line: ignore silently */
    PC_IRC_ESYNTAX = -20003,  /* no command, bad tag section, bad source */
    PC_IRC_ETOOMANY = -20004, /* more than PC_IRC_MAX_PARAMS or _TAGS */
};

/* A slice of the caller's buffer; not NUL-terminated. */
struct pc_irc_str {
    const char *p;
    size_t len;
};

struct pc_irc_tag {
    struct pc_irc_str key;   /* with its '+' client prefix and vendor/ */
    struct pc_irc_str value; /* still escaped; len 0 when absent or empty */
};

struct pc_irc_msg {
    struct pc_irc_tag tags[PC_IRC_MAX_TAGS];
    size_t ntags;
    struct pc_irc_str source; /* without the ':'; len 0 when absent */
    struct pc_irc_str command;
    struct pc_irc_str params[PC_IRC_MAX_PARAMS];
    size_t nparams;
};

/* Framing. Finds the next line in buf[0..len): returns the number of bytes
 * to consume including the terminator (LF or CR LF) and sets *line_len to the
 * length without it; 0 if no complete line is there yet; PC_IRC_ETOOLONG if
 * more than `max` bytes precede the terminator (or len > max without one,
 * unless the last of max + 1 bytes is the CR of a CR LF still to come).
 * The caller then discards input up to the next LF. A CR alone does not end
 * a line: it stays in the line and pc_irc_parse() rejects it. */
ssize_t pc_irc_frame(const char *buf, size_t len, size_t max,
                     size_t *line_len);

/* Parses one line without its terminator. Slices point into `line`.
 * Enforces the tag section limit (PC_IRC_CLIENT_TAGS_MAX) and the body limit
 * (PC_IRC_BODY_MAX - 2) separately. A command is letters or three digits.
 * Returns 0; PC_IRC_EEMPTY for a line of nothing or spaces; PC_IRC_ESYNTAX
 * for a NUL, CR or LF in the line, a bad tag key, an empty source or a
 * missing or bad command; PC_IRC_ETOOMANY past PC_IRC_MAX_PARAMS params or
 * PC_IRC_MAX_TAGS tags; PC_IRC_ETOOLONG past either limit. */
int pc_irc_parse(const char *line, size_t len, struct pc_irc_msg *msg);
/* A command: one or more ASCII letters, or exactly three digits. */
bool pc_irc_cmd_valid(const char *p, size_t len);

/* Returns the tag with this key, or NULL. With duplicate keys the last one
 * wins, as the message-tags spec says. */
const struct pc_irc_tag *pc_irc_msg_tag(const struct pc_irc_msg *msg,
                                        const char *key);
/* Case-insensitive comparison of the command with an upper-case name. */
bool pc_irc_cmd_is(const struct pc_irc_msg *msg, const char *upper);

/* Tag keys (message-tags spec): an optional '+' client prefix, an optional
 * vendor (a host name: letters, digits, '-' and '.') and '/', then a name of
 * letters, digits and '-'. */
bool pc_irc_tag_key_valid(const char *p, size_t len);

/* Tag values (message-tags spec): escape ';' ' ' '\\' CR LF. Both return the
 * output length, or -1 if it would not fit in cap (no NUL is written). The
 * unescape drops a trailing lone backslash and unknown escapes keep the
 * character, as the spec says. */
ssize_t pc_irc_tag_escape(char *dst, size_t cap, const char *src, size_t len);
ssize_t pc_irc_tag_unescape(char *dst, size_t cap, const char *src,
                            size_t len);

/* Serialiser: builds one line into a fixed buffer. A component that does not
 * fit sets err = PC_IRC_ETOOLONG and later calls do nothing. Tags must all
 * come before the source, the source before the command, params after, and
 * nothing after the trailing parameter (else err = PC_IRC_ESYNTAX). No
 * component may hold NUL, CR or LF (PC_IRC_ESYNTAX): a line cannot smuggle
 * another one. More than PC_IRC_MAX_PARAMS params: PC_IRC_ETOOMANY. */
struct pc_irc_line {
    char buf[PC_IRC_LINE_MAX + 2];
    size_t len;
    size_t body_start; /* offset after the tag section */
    bool in_body;      /* the source or command has been written */
    int ntags;
    int nparams;
    int err;
    bool has_cmd;      /* the command has been written */
    bool has_trailing; /* the last parameter has been written */
};

void pc_irc_line_init(struct pc_irc_line *l);
/* Adds key=value, escaping value; value NULL (or empty) adds a bare key. The
 * key must pass pc_irc_tag_key_valid(). */
void pc_irc_line_tag(struct pc_irc_line *l, const char *key,
                     const char *value, size_t value_len);
/* Adds a tag whose value is already escaped (as received). Key and value
 * are checked only for the bytes that would break the line (space, ';', NUL,
 * CR, LF, and '=' in the key). */
void pc_irc_line_tag_raw(struct pc_irc_line *l, struct pc_irc_str key,
                         struct pc_irc_str value);
/* The source, without ':': non-empty, no space. */
void pc_irc_line_source(struct pc_irc_line *l, const char *source);
/* The command must pass pc_irc_cmd_valid(). */
void pc_irc_line_cmd(struct pc_irc_line *l, const char *command);
/* A middle parameter: must be non-empty, no space, not starting with ':'
 * (else err = PC_IRC_ESYNTAX). */
void pc_irc_line_param(struct pc_irc_line *l, const char *p, size_t len);
/* The last parameter, always written with ':'. */
void pc_irc_line_trailing(struct pc_irc_line *l, const char *p, size_t len);
/* Appends CR LF. Returns the line length or l->err. If the body would exceed
 * PC_IRC_BODY_MAX, the trailing parameter is cut at a UTF-8 boundary. */
ssize_t pc_irc_line_end(struct pc_irc_line *l);

/* Casemapping rfc1459: A-Z [ \ ] ^ fold to a-z { | } ~. */
char pc_irc_fold_char(char c);
/* Writes the folded form of src (len bytes) to dst and a NUL; dst must hold
 * len + 1 bytes. */
void pc_irc_casefold(char *dst, const char *src, size_t len);
int pc_irc_casecmp(const char *a, const char *b);

/* UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
bool pc_utf8_valid(const char *s, size_t len);
/* The largest n <= max (and <= len) at which s can be cut without splitting
 * a character: s[n] is not a continuation byte. */
size_t pc_utf8_cut(const char *s, size_t len, size_t max);

/* Validation. */
/* Nicknames: 1..maxlen, first char a letter or one of []\`_^{|}, then also
 * digits and '-'. */
bool pc_irc_nick_valid(const char *s, size_t len, size_t maxlen);
/* Channel names: '#' then 1..maxlen-1 bytes, none of space, comma, colon,
 * BEL, CR, LF, NUL, and valid UTF-8. */
bool pc_irc_chan_valid(const char *s, size_t len, size_t maxlen);

#endif
