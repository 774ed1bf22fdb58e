/* pchatd configuration: one table of keys {section, name, type, offset,
 * default, min, max, reloadable, help} drives parsing (libinih), command-line
 * overrides, validation, --check-config and docs/config.md. */
#ifndef PC_UTIL_CONF_H
#define PC_UTIL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PC_CONF_MAX_LISTEN 8

struct pc_conf {
    /* [server] */
    char *server_name;       /* shown as the IRC server name */
    char *network;           /* ISUPPORT NETWORK= */
    char *motd_file;         /* empty: no MOTD (422) */
    uint32_t max_clients;    /* refuse beyond this many connections */
    /* [listen] comma-separated host:port lists; IPv6 as [::1]:6697 */
    char *listen_plain;      /* default 127.0.0.1:6667 */
    char *listen_tls;        /* default 127.0.0.1:6697 */
    /* [tls] */
    char *tls_cert;          /* PEM chain */
    char *tls_key;           /* PEM key */
    bool tls_session_tickets;
    /* [database] */
    char *db_conninfo;       /* libpq conninfo or URI, may be multi-host */
    uint32_t db_connect_timeout_ms;
    uint32_t db_backoff_min_ms;
    uint32_t db_backoff_max_ms;
    uint32_t db_post_timeout_ms; /* how long a post may wait for the DB */
    uint32_t db_max_batch;       /* posts per group commit */
    char *db_mirror_policy;      /* durability | availability */
    uint32_t db_mirror_timeout_ms; /* availability: missing -> async */
    uint32_t db_mirror_check_ms;   /* mirror watcher interval */
    char *db_read_standby_conninfo; /* history reads; empty: none */
    /* [limits] */
    uint32_t nick_len;
    uint32_t channel_len;
    uint32_t topic_len;
    uint32_t max_joins;          /* channels per client */
    uint32_t sendq_bytes;        /* output queued per client before kill */
    uint32_t flood_burst;        /* lines a client may send at once */
    uint32_t flood_rate;         /* lines per second after the burst */
    uint32_t register_timeout_ms;
    uint32_t ping_interval_ms;   /* idle time before the server PINGs */
    uint32_t ping_timeout_ms;    /* time to answer that PING */
    /* [history] */
    uint32_t history_replay;     /* lines replayed on JOIN without chathistory */
    uint32_t history_max;        /* chathistory limit (ISUPPORT CHATHISTORY=) */
    /* [log] */
    char *log_level;             /* crit error warn notice info debug trace */
    bool log_syslog;
    /* [auth] */
    char *auth_required;         /* auto|yes|no: pc_conf_auth_required() */
    uint32_t auth_pbkdf2_iterations; /* for new keys and unknown accounts */
    uint32_t auth_fail_burst;    /* failed logins per account / address */
    uint32_t auth_fail_interval_ms; /* one more failure allowed per ... */
    /* [pool] */
    char *pool_backend;          /* local | cpg */
    char *pool_control_socket;   /* local control socket path */
    /* [admin] the HTTPS administration API */
    char *admin_listen;          /* one host:port, empty: off */
    char *admin_cert;            /* empty: tls.cert */
    char *admin_key;             /* empty: tls.key */
    uint32_t admin_max_body;     /* bytes of a request body */
    uint32_t admin_max_conns;    /* connections at once */
    uint32_t admin_idle_timeout_ms; /* idle or slow connections close */
};

/* Fills every key with its default. */
int pc_conf_init(struct pc_conf *c);
void pc_conf_free(struct pc_conf *c);
/* Loads an INI file over the current values. On error returns PC_ECONFIG
 * and writes "FILE:LINE: message naming the key" into err. */
int pc_conf_load(struct pc_conf *c, const char *path, char *err,
                 size_t errlen);
/* Sets one key given as "section.name=value" (command-line override). */
int pc_conf_set(struct pc_conf *c, const char *assignment, char *err,
                size_t errlen);
/* Cross-key checks (e.g. TLS listener without certificate, min > max). */
int pc_conf_validate(const struct pc_conf *c, char *err, size_t errlen);
/* Writes the effective configuration as INI (for --check-config); with
 * redact, passwords in conninfo keys are masked. */
void pc_conf_dump(const struct pc_conf *c, FILE *out, bool redact);
/* auth.required resolved: yes, no, or auto (yes with pool.backend = cpg). */
bool pc_conf_auth_required(const struct pc_conf *c);
/* A conninfo (key=value or URI) with its password masked. */
void pc_conninfo_redact(const char *in, char *out, size_t cap);
/* Writes the key reference as Markdown (docs/config.md is generated). */
void pc_conf_doc_markdown(FILE *out);
/* Writes the key reference as roff, for pchatd.conf(5). */
void pc_conf_doc_man(FILE *out);
/* Writes an example file: every key commented out with its default. */
void pc_conf_doc_example(FILE *out);
/* True if the key may change on SIGHUP without a restart. */
bool pc_conf_reloadable(const char *section, const char *name);
/* Parses "host:port" or "[v6]:port" (len bytes of s). Returns 0 or
 * PC_ECONFIG. */
int pc_conf_parse_hostport(const char *s, size_t len, char *host,
                           size_t hostcap, int *port);
/* Walks a comma-separated list such as listen.plain (blanks and empty
 * items skipped): start with *pos = 0; each call points *item at the next
 * item, sets *len to its length (not NUL-terminated) and returns true, or
 * returns false at the end. The lists hold at most PC_CONF_MAX_LISTEN
 * items. */
bool pc_conf_list_next(const char *list, size_t *pos, const char **item,
                       size_t *len);

#endif
