/* The local control socket (pool.control_socket): a Unix stream socket for
 * pchatctl and the Pacemaker agent. One command line in, the answer out,
 * then the server closes the connection.
 *
 *   status               key=value lines (role, serving, quorate, ...)
 *   role active|standby  switch the role; answers "ok role=..." or "error ..."
 *   ping                 "pong"
 */
#ifndef PC_PCHATD_CONTROL_H
#define PC_PCHATD_CONTROL_H

#include <uv.h>

#include "util/buf.h"

struct pc_control;

struct pc_control_ops {
    /* Appends "key=value\n" lines. */
    void (*status)(void *arg, struct pc_buf *out);
    /* Returns 0 or a negative code; appends the answer line. */
    int (*set_role)(void *arg, const char *role, struct pc_buf *out);
};

/* Creates the socket at path (replacing a stale one), mode 0660. */
int pc_control_start(struct pc_control **out, uv_loop_t *loop,
                     const char *path, const struct pc_control_ops *ops,
                     void *arg);
void pc_control_stop(struct pc_control *c);

#endif
