/* The migrations built into this program (generated migrations.c). */
#ifndef PC_STORE_MIGRATIONS_H
#define PC_STORE_MIGRATIONS_H

#include <stddef.h>

struct pc_migration {
    int version; /* the NNNN prefix of its file */
    const char *name;
    const char *sql;
};

extern const struct pc_migration pc_migrations[];
extern const size_t pc_nmigrations;

#endif
