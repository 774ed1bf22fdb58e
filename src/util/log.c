#include "config.h"

#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

/* Process-wide by nature: one stderr, one syslog connection. */
static enum pc_log_level log_level = PC_LOG_NOTICE;
static bool log_syslog;

static const char *const level_names[] = {
    [PC_LOG_CRIT] = "crit",   [PC_LOG_ERR] = "error", [PC_LOG_WARN] = "warn",
    [PC_LOG_NOTICE] = "notice", [PC_LOG_INFO] = "info", [PC_LOG_DEBUG] = "debug",
    [PC_LOG_TRACE] = "trace",
};

void
pc_log_set_level(enum pc_log_level level)
{
    log_level = level;
}

enum pc_log_level
pc_log_get_level(void)
{
    return log_level;
}

void
pc_log_use_syslog(bool on, const char *ident)
{
    if (on && !log_syslog) {
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    } else if (!on && log_syslog) {
        closelog();
    }
    log_syslog = on;
}

int
pc_log_level_parse(const char *name)
{
    for (int i = PC_LOG_CRIT; i <= PC_LOG_TRACE; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcmp(name, "warning") == 0) {
        return PC_LOG_WARN;
    }
    return -1;
}

const char *
pc_log_level_name(enum pc_log_level level)
{
    if (level < PC_LOG_CRIT || level > PC_LOG_TRACE) {
        return "?";
    }
    return level_names[level];
}

void
pc_log(enum pc_log_level level, const char *ctx, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (level > log_level) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (log_syslog) {
        int prio = level > PC_LOG_DEBUG ? LOG_DEBUG : (int)level;
        syslog(prio, "%s%s%s", ctx ? ctx : "", ctx ? ": " : "", msg);
        return;
    }

    struct timespec ts;
    struct tm tm;
    char when[32];
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)gmtime_r(&ts.tv_sec, &tm);
    (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    (void)fprintf(stderr, "%s.%03ldZ %-6s %s%s%s\n", when,
                  ts.tv_nsec / 1000000L, pc_log_level_name(level),
                  ctx ? ctx : "", ctx ? ": " : "", msg);
}
