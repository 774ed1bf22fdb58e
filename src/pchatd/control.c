#include "config.h"

#include "pchatd/control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"

#define CONTROL_LINE_MAX 256

struct pc_control {
    uv_pipe_t server;
    const struct pc_control_ops *ops;
    void *arg;
    char *path;
};

struct control_client {
    uv_pipe_t pipe;
    struct pc_control *ctl;
    char line[CONTROL_LINE_MAX];
    size_t len;
    bool answered;
    uv_write_t wreq;
    struct pc_buf out;
};

static void
client_closed(uv_handle_t *h)
{
    struct control_client *cl = h->data;
    pc_buf_free(&cl->out);
    free(cl);
}

static void
client_written(uv_write_t *req, int status)
{
    struct control_client *cl = req->data;
    uv_close((uv_handle_t *)&cl->pipe, client_closed);
}

static void
client_answer(struct control_client *cl)
{
    struct pc_control *ctl = cl->ctl;
    char *cmd = cl->line;
    char *arg = strchr(cmd, ' ');

    cl->answered = true;
    uv_read_stop((uv_stream_t *)&cl->pipe);
    if (arg != NULL) {
        *arg++ = '\0';
        while (*arg == ' ') {
            arg++;
        }
    }
    if (strcmp(cmd, "status") == 0) {
        ctl->ops->status(ctl->arg, &cl->out);
    } else if (strcmp(cmd, "role") == 0 && arg != NULL) {
        (void)ctl->ops->set_role(ctl->arg, arg, &cl->out);
    } else if (strcmp(cmd, "ping") == 0) {
        (void)pc_buf_append_str(&cl->out, "pong\n");
    } else {
        (void)pc_buf_append_str(&cl->out, "error unknown command "
                                          "(status, role active|standby, "
                                          "ping)\n");
    }
    uv_buf_t b = uv_buf_init(cl->out.data, (unsigned)cl->out.len);
    cl->wreq.data = cl;
    if (uv_write(&cl->wreq, (uv_stream_t *)&cl->pipe, &b, 1, client_written)
        != 0) {
        uv_close((uv_handle_t *)&cl->pipe, client_closed);
    }
}

static void
client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct control_client *cl = h->data;
    buf->base = cl->line + cl->len;
    buf->len = sizeof(cl->line) - 1 - cl->len;
}

static void
client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct control_client *cl = s->data;

    if (cl->answered) {
        return;
    }
    if (n < 0) {
        uv_close((uv_handle_t *)&cl->pipe, client_closed);
        return;
    }
    cl->len += (size_t)n;
    cl->line[cl->len] = '\0';
    char *nl = strpbrk(cl->line, "\r\n");
    if (nl != NULL) {
        *nl = '\0';
        client_answer(cl);
    } else if (cl->len >= sizeof(cl->line) - 1) {
        uv_close((uv_handle_t *)&cl->pipe, client_closed);
    }
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct pc_control *ctl = server->data;
    struct control_client *cl;

    if (status < 0) {
        return;
    }
    cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        return;
    }
    cl->ctl = ctl;
    pc_buf_init(&cl->out, 64 * 1024);
    (void)uv_pipe_init(server->loop, &cl->pipe, 0);
    cl->pipe.data = cl;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0
        || uv_read_start((uv_stream_t *)&cl->pipe, client_alloc, client_read)
               != 0) {
        uv_close((uv_handle_t *)&cl->pipe, client_closed);
    }
}

int
pc_control_start(struct pc_control **out, uv_loop_t *loop, const char *path,
                 const struct pc_control_ops *ops, void *arg)
{
    struct pc_control *ctl = calloc(1, sizeof(*ctl));
    int rc;

    if (ctl == NULL) {
        return -ENOMEM;
    }
    ctl->ops = ops;
    ctl->arg = arg;
    ctl->path = strdup(path);
    if (ctl->path == NULL) {
        free(ctl);
        return -ENOMEM;
    }
    (void)uv_pipe_init(loop, &ctl->server, 0);
    ctl->server.data = ctl;
    /* A socket left by a process that died is stale: replace it. */
    (void)unlink(path);
    mode_t old = umask(007);
    rc = uv_pipe_bind(&ctl->server, path);
    umask(old);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
    }
    if (rc != 0) {
        pc_control_stop(ctl);
        return rc;
    }
    *out = ctl;
    return 0;
}

static void
server_closed(uv_handle_t *h)
{
    struct pc_control *ctl = h->data;
    free(ctl->path);
    free(ctl);
}

void
pc_control_stop(struct pc_control *ctl)
{
    if (ctl == NULL) {
        return;
    }
    (void)unlink(ctl->path);
    uv_close((uv_handle_t *)&ctl->server, server_closed);
}
