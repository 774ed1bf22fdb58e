/* Error codes shared by every module.
 *
 * Functions return 0 on success and a negative value on failure: -errno and
 * libuv codes pass through unchanged, pchat's own codes start at PC_EBASE. */
#ifndef PC_UTIL_ERR_H
#define PC_UTIL_ERR_H

enum {
    PC_EBASE = -10000,
    PC_E2BIG = PC_EBASE - 1,     /* input or buffer over its configured cap */
    PC_EPROTO = PC_EBASE - 2,    /* malformed input from a peer */
    PC_EUNKNOWN = PC_EBASE - 3,  /* sent to the database, outcome unknown */
    PC_ECANCELED = PC_EBASE - 4, /* shut down before completion */
    PC_ETIMEDOUT = PC_EBASE - 5, /* deadline passed before it was sent */
    PC_EDB = PC_EBASE - 6,       /* the database refused the statement */
    PC_ECONFIG = PC_EBASE - 7,   /* invalid configuration */
    PC_ENOTFOUND = PC_EBASE - 8, /* no such object */
    PC_EEXIST = PC_EBASE - 9,    /* object already exists */
    PC_EUTF8 = PC_EBASE - 10,    /* text is not valid UTF-8 */
    PC_ESCHEMA = PC_EBASE - 11,  /* database schema newer than this build */
    PC_ELAST = PC_EBASE - 12
};

/* Names an error: pchat's own codes, libuv's and plain -errno values. */
const char *pc_strerror(int err);

#endif
