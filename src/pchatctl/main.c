/* pchatctl: administration from the command line.
 *
 *   pchatctl [-c FILE] [--db CONNINFO] db migrate | db status
 *   pchatctl [-c FILE] [--socket PATH] status | role active|standby | ping
 *   pchatctl [-c FILE] [--db CONNINFO] [--json] account|group|category|room ...
 *     (admin.c; docs/admin-guide.md)
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pchatctl/admin.h"
#include "store/store.h"
#include "util/conf.h"
#include "util/err.h"

#define DEFAULT_CONF "/etc/pchat/pchatd.conf"

static void
usage(FILE *out)
{
    (void)fprintf(out,
        "usage: pchatctl [-c FILE] [--db CONNINFO] db migrate|status\n"
        "       pchatctl [-c FILE] [--socket PATH] status|ping\n"
        "       pchatctl [-c FILE] [--socket PATH] role active|standby\n");
    pc_ctl_admin_usage(out);
    (void)fprintf(out,
        "\n"
        "  -c, --config FILE   pchatd configuration (default %s if present)\n"
        "  -d, --db CONNINFO   database to use instead of database.conninfo\n"
        "  -s, --socket PATH   control socket instead of pool.control_socket\n"
        "  -j, --json          print listings and results as JSON\n",
        DEFAULT_CONF);
}

static void
report_line(const char *line)
{
    (void)printf("%s\n", line);
}

/* Server notices ("already exists, skipping") are not for the operator. */
static void
quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Connects to the database, or prints why not and returns NULL. */
static PGconn *
db_connect(const char *conninfo)
{
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {conninfo, "pchatctl", NULL};

    PGconn *db = PQconnectdbParams(keys, vals, 1);
    if (db == NULL) {
        (void)fprintf(stderr, "pchatctl: out of memory\n");
        return NULL;
    }
    if (PQstatus(db) != CONNECTION_OK) {
        (void)fprintf(stderr, "pchatctl: cannot connect to the database: %s",
                      PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }
    PQsetNoticeProcessor(db, quiet_notice, NULL);
    return db;
}

static int
cmd_admin(const char *conninfo, int argc, char **argv, bool as_json)
{
    PGconn *db = db_connect(conninfo);
    if (db == NULL) {
        return 1;
    }
    int rc = pc_ctl_admin(db, argc, argv, as_json);
    PQfinish(db);
    return rc;
}

static int
cmd_db(const char *conninfo, const char *sub)
{
    char err[512];
    int version = 0, rc;

    if (strcmp(sub, "migrate") != 0 && strcmp(sub, "status") != 0) {
        usage(stderr);
        return 2;
    }
    PGconn *db = db_connect(conninfo);
    if (db == NULL) {
        return 1;
    }
    if (strcmp(sub, "migrate") == 0) {
        rc = pc_migrate_apply(db, report_line, err, sizeof(err));
        if (rc == 0) {
            rc = pc_migrate_current(db, &version, err, sizeof(err));
        }
        if (rc == 0) {
            (void)printf("schema version %d (latest %d)\n", version,
                         pc_migrate_latest());
        }
    } else {
        rc = pc_migrate_current(db, &version, err, sizeof(err));
        if (rc == 0) {
            (void)printf("schema version %d, this pchatctl knows %d: %s\n",
                         version, pc_migrate_latest(),
                         version == pc_migrate_latest() ? "up to date"
                         : version < pc_migrate_latest()
                             ? "run: pchatctl db migrate"
                             : "the database is newer: upgrade pchat");
        }
    }
    PQfinish(db);
    if (rc < 0) {
        (void)fprintf(stderr, "pchatctl: %s\n", err);
        return 1;
    }
    return 0;
}

/* Sends one command line to pchatd's control socket and prints the answer.
 * Exit status 1 if the answer starts with "error". */
static int
cmd_control(const char *path, const char *line)
{
    struct sockaddr_un sa;
    char buf[4096];
    int fd, status = 0;
    size_t off = 0;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        (void)fprintf(stderr, "pchatctl: socket path too long: %s\n", path);
        return 1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        (void)fprintf(stderr, "pchatctl: socket: %s\n", strerror(errno));
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        (void)fprintf(stderr, "pchatctl: cannot reach pchatd at %s: %s\n",
                      path, strerror(errno));
        (void)close(fd);
        return 1;
    }
    size_t len = strlen(line);
    if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
        (void)fprintf(stderr, "pchatctl: write: %s\n", strerror(errno));
        (void)close(fd);
        return 1;
    }
    for (;;) {
        ssize_t n = read(fd, buf + off, sizeof(buf) - 1 - off);
        if (n <= 0) {
            break;
        }
        off += (size_t)n;
        if (off == sizeof(buf) - 1) {
            break;
        }
    }
    (void)close(fd);
    buf[off] = '\0';
    if (off == 0) {
        (void)fprintf(stderr, "pchatctl: no answer from pchatd\n");
        return 1;
    }
    if (strncmp(buf, "error", 5) == 0) {
        (void)fprintf(stderr, "pchatctl: %s", buf);
        status = 1;
    } else {
        (void)fputs(buf, stdout);
    }
    return status;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"db", required_argument, NULL, 'd'},
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf_path = NULL, *db = NULL, *sock = NULL;
    struct pc_conf conf;
    char err[512];
    int opt, rc;
    bool as_json = false;

    while ((opt = getopt_long(argc, argv, "+c:d:s:jh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 'd': db = optarg; break;
        case 's': sock = optarg; break;
        case 'j': as_json = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (pc_conf_init(&conf) < 0) {
        return 1;
    }
    if (conf_path == NULL && access(DEFAULT_CONF, R_OK) == 0) {
        conf_path = DEFAULT_CONF;
    }
    if (conf_path != NULL
        && pc_conf_load(&conf, conf_path, err, sizeof(err)) < 0) {
        (void)fprintf(stderr, "pchatctl: %s\n", err);
        pc_conf_free(&conf);
        return 1;
    }
    const char *cmd = argv[optind];
    if (strcmp(cmd, "db") == 0 && optind + 2 == argc) {
        rc = cmd_db(db ? db : conf.db_conninfo, argv[optind + 1]);
    } else if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "ping") == 0)
               && optind + 1 == argc) {
        rc = cmd_control(sock ? sock : conf.pool_control_socket, cmd);
    } else if (pc_ctl_admin_is(cmd)) {
        rc = cmd_admin(db ? db : conf.db_conninfo, argc - optind,
                       argv + optind, as_json);
    } else if (strcmp(cmd, "role") == 0 && optind + 2 == argc) {
        char line[64];
        (void)snprintf(line, sizeof(line), "role %s", argv[optind + 1]);
        rc = cmd_control(sock ? sock : conf.pool_control_socket, line);
    } else {
        usage(stderr);
        rc = 2;
    }
    pc_conf_free(&conf);
    return rc;
}
