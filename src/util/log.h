/* Logging with Pacemaker's level meanings, to stderr or syslog.
 *
 * Each line carries a context (connection id, peer, nick, action) and a
 * key=value tail; never message bodies or secrets. */
#ifndef PC_UTIL_LOG_H
#define PC_UTIL_LOG_H

#include <stdbool.h>

enum pc_log_level {
    PC_LOG_CRIT = 2,  /* the process cannot go on */
    PC_LOG_ERR = 3,   /* an operation failed and needs attention */
    PC_LOG_WARN = 4,  /* something unexpected, handled */
    PC_LOG_NOTICE = 5, /* significant normal event (start, stop, role) */
    PC_LOG_INFO = 6,  /* routine event (client connected) */
    PC_LOG_DEBUG = 7, /* detail for developers */
    PC_LOG_TRACE = 8  /* per-message detail */
};

void pc_log_set_level(enum pc_log_level level);
enum pc_log_level pc_log_get_level(void);
/* Switches between syslog (true) and stderr (false). */
void pc_log_use_syslog(bool on, const char *ident);
/* Parses "crit".."trace"; returns -1 for an unknown name. */
int pc_log_level_parse(const char *name);
const char *pc_log_level_name(enum pc_log_level level);

void pc_log(enum pc_log_level level, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define pc_log_enabled(level) ((level) <= pc_log_get_level())

#endif
