/* pchatctl's administration commands (accounts, groups, categories, rooms),
 * each one call of a function of sql/content/0004_admin.sql. */
#ifndef PC_PCHATCTL_ADMIN_H
#define PC_PCHATCTL_ADMIN_H

#include <stdbool.h>
#include <stdio.h>

#include <libpq-fe.h>

/* True if word starts an administration command. */
bool pc_ctl_admin_is(const char *word);

/* Runs the command in argv (its words, arguments and options) on db.
 * Returns the exit status: 0 done, 1 refused or failed, 2 usage. */
int pc_ctl_admin(PGconn *db, int argc, char **argv, bool as_json);

/* One usage line per command. */
void pc_ctl_admin_usage(FILE *out);

#endif
