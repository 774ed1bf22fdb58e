#include "config.h"

#include "store/store.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/migrations.h"
#include "util/err.h"

/* Schema migrations: blocking, for pchatctl and start-up checks only. Each
 * migration runs in its own transaction together with its row in
 * pchat_schema, under an advisory lock, so that concurrent runs (two
 * operators, or a pool upgrading) apply each migration exactly once. */

#define MIGRATE_LOCK_KEY "7012000001" /* pg_advisory_lock key for pchat */

int
pc_migrate_latest(void)
{
    int v = 0;
    for (size_t i = 0; i < pc_nmigrations; i++) {
        if (pc_migrations[i].version > v) {
            v = pc_migrations[i].version;
        }
    }
    return v;
}

static int
exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        (void)snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
        rc = PC_EDB;
    }
    PQclear(res);
    return rc;
}

int
pc_migrate_current(PGconn *conn, int *version, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT to_regclass('pchat_schema') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        (void)snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        return PC_EDB;
    }
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    *version = 0;
    if (!exists) {
        return 0;
    }
    res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM pchat_schema");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        (void)snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        return PC_EDB;
    }
    *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int
pc_migrate_apply(PGconn *conn, void (*report)(const char *line), char *err,
                 size_t errlen)
{
    char line[256];
    int current = 0;
    int rc;

    rc = exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err,
                 errlen);
    if (rc < 0) {
        return rc;
    }
    rc = exec_ok(conn,
                 "CREATE TABLE IF NOT EXISTS pchat_schema ("
                 " version integer PRIMARY KEY,"
                 " name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 err, errlen);
    if (rc == 0) {
        rc = pc_migrate_current(conn, &current, err, errlen);
    }
    if (rc == 0 && current > pc_migrate_latest()) {
        (void)snprintf(err, errlen, "database schema version %d is newer "
                       "than this program knows (%d); upgrade pchat first",
                       current, pc_migrate_latest());
        rc = PC_ESCHEMA;
    }
    for (size_t i = 0; rc == 0 && i < pc_nmigrations; i++) {
        const struct pc_migration *m = &pc_migrations[i];
        if (m->version <= current) {
            continue;
        }
        char version[16];
        (void)snprintf(version, sizeof(version), "%d", m->version);
        const char *params[2] = {version, m->name};
        rc = exec_ok(conn, "BEGIN", err, errlen);
        if (rc == 0) {
            rc = exec_ok(conn, m->sql, err, errlen);
        }
        if (rc == 0) {
            PGresult *res = PQexecParams(
                conn, "INSERT INTO pchat_schema (version, name) VALUES ($1, $2)",
                2, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                (void)snprintf(err, errlen, "%s", PQresultErrorMessage(res));
                err[strcspn(err, "\n")] = '\0';
                rc = PC_EDB;
            }
            PQclear(res);
        }
        if (rc == 0) {
            rc = exec_ok(conn, "COMMIT", err, errlen);
        }
        if (rc < 0) {
            char ignored[8];
            char first[512];
            (void)snprintf(first, sizeof(first), "migration %04d_%s: %s",
                           m->version, m->name, err);
            (void)exec_ok(conn, "ROLLBACK", ignored, sizeof(ignored));
            (void)snprintf(err, errlen, "%s", first);
        } else if (report != NULL) {
            (void)snprintf(line, sizeof(line), "applied %04d_%s", m->version,
                           m->name);
            report(line);
        }
    }
    char ignored[8];
    (void)exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")",
                  ignored, sizeof(ignored));
    return rc;
}
