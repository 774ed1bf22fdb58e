#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>

#include "pool/bus.h"
#include "pool/bus_impl.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

/* The Corosync back end. Every payload is multicast with CPG_TYPE_AGREED to
 * the process group, so every member, the sender included, receives all of
 * them in one total order, and membership changes arrive in that same
 * order (virtual synchrony). Quorum comes from libquorum.
 *
 * Nothing here blocks: both libraries' descriptors are polled on the loop,
 * and a multicast refused with CS_ERR_TRY_AGAIN (flow control) stays at the
 * head of the outbox while a timer retries it (10 ms doubling to 1 s). If
 * Corosync goes away, the node reports quorum lost and reconnects every
 * second. */

#define CPG_MAGIC 0x50434231u /* "PCB1" */
#define CPG_RETRY_MIN_MS 10
#define CPG_RETRY_MAX_MS 1000
#define CPG_RECONNECT_MS 1000
#define CPG_OUTBOX_MAX (64u * 1024 * 1024)
/* Payloads published in one loop pass travel as one CPG message (up to
 * this size): fewer, larger multicasts go through Corosync's token far
 * faster than one multicast per payload. */
#define CPG_BATCH_MAX (60u * 1024)

struct cpg_item {
    struct cpg_item *next;
    size_t len;
    unsigned char data[]; /* header + payload */
};

struct bus_cpg {
    struct pc_bus base;
    char group[CPG_MAX_NAME_LENGTH];
    uint16_t version;
    cpg_handle_t cpg;
    quorum_handle_t quorum;
    bool cpg_up;
    bool quorum_up;
    bool joined;
    int quorate; /* last reported: -1 unknown */
    uv_poll_t cpg_poll;
    uv_poll_t quorum_poll;
    bool cpg_poll_open;
    bool quorum_poll_open;
    uv_timer_t retry_timer;
    uint32_t retry_ms;
    struct cpg_item *head;
    struct cpg_item **tail;
    size_t outbox_bytes;
    struct pc_buf batch; /* header + (u32 length, payload)* of this pass */
    uint64_t refused_logged_ms;
    unsigned closing; /* handles whose close callback is still to come */
    bool freeing;     /* cpgb_free: the last close callback frees b */
};

/* Wire format of one CPG message: magic, protocol version, sender's pid,
 * then payloads each preceded by its u32 length. Little-endian. */
#define CPG_HDR_LEN 12

static void
put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t
get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
           | (uint32_t)p[3] << 24;
}

static struct bus_cpg *
from_cpg(cpg_handle_t h)
{
    void *ctx = NULL;
    if (cpg_context_get(h, &ctx) != CS_OK) {
        return NULL;
    }
    return ctx;
}

static void
report_quorum(struct bus_cpg *b, int quorate)
{
    if (b->quorate == quorate) {
        return;
    }
    b->quorate = quorate;
    pc_log(quorate ? PC_LOG_NOTICE : PC_LOG_CRIT, "pool",
           "quorum %s node=%u", quorate ? "gained" : "lost",
           (unsigned)PC_BUS_NODE(b->base.node_id));
    if (b->base.cbs.quorum != NULL) {
        b->base.cbs.quorum(b->base.arg, quorate);
    }
}

static void
on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
           uint32_t pid, void *msg, size_t len)
{
    struct bus_cpg *b = from_cpg(h);
    const unsigned char *p = msg;

    if (b == NULL) {
        return;
    }
    if (len < CPG_HDR_LEN || get_u32(p) != CPG_MAGIC) {
        pc_log(PC_LOG_WARN, "pool", "ignored malformed pool message "
               "from=%u pid=%u len=%zu", (unsigned)nodeid, (unsigned)pid, len);
        return;
    }
    uint32_t version = get_u32(p + 4);
    if (version != b->version) {
        uint64_t now = pc_now_ms();
        if (now - b->refused_logged_ms > 10000) {
            b->refused_logged_ms = now;
            pc_log(PC_LOG_ERR, "pool", "ignoring node %u: pool protocol "
                   "version %u, this node speaks %u; upgrade the pool to one "
                   "version", (unsigned)nodeid, (unsigned)version,
                   (unsigned)b->version);
        }
        return;
    }
    uint64_t from = (uint64_t)nodeid << 32 | pid;
    size_t off = CPG_HDR_LEN;
    while (off < len) {
        if (len - off < 4 || get_u32(p + off) > len - off - 4) {
            pc_log(PC_LOG_WARN, "pool", "ignored the rest of a malformed "
                   "pool message from=%u pid=%u len=%zu at=%zu",
                   (unsigned)nodeid, (unsigned)pid, len, off);
            return;
        }
        size_t n = get_u32(p + off);
        b->base.cbs.deliver(b->base.arg, from, p + off + 4, n);
        off += 4 + n;
    }
}

static void
on_confchg(cpg_handle_t h, const struct cpg_name *group,
           const struct cpg_address *members, size_t nmembers,
           const struct cpg_address *left, size_t nleft,
           const struct cpg_address *joined, size_t njoined)
{
    struct bus_cpg *b = from_cpg(h);
    uint64_t m[CPG_MEMBERS_MAX];
    uint64_t l[CPG_MEMBERS_MAX];
    uint64_t j[CPG_MEMBERS_MAX];
    size_t nm = 0, nl = 0, nj = 0;

    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < nmembers && nm < CPG_MEMBERS_MAX; i++) {
        m[nm++] = (uint64_t)members[i].nodeid << 32 | members[i].pid;
    }
    for (size_t i = 0; i < nleft && nl < CPG_MEMBERS_MAX; i++) {
        l[nl++] = (uint64_t)left[i].nodeid << 32 | left[i].pid;
        pc_log(PC_LOG_NOTICE, "pool", "member %u/%u left (reason %u)",
               (unsigned)left[i].nodeid, (unsigned)left[i].pid,
               (unsigned)left[i].reason);
    }
    for (size_t i = 0; i < njoined && nj < CPG_MEMBERS_MAX; i++) {
        j[nj++] = (uint64_t)joined[i].nodeid << 32 | joined[i].pid;
        pc_log(PC_LOG_NOTICE, "pool", "member %u/%u joined",
               (unsigned)joined[i].nodeid, (unsigned)joined[i].pid);
    }
    if (b->base.cbs.membership != NULL) {
        b->base.cbs.membership(b->base.arg, m, nm, l, nl, j, nj);
    }
}

static void
on_quorum(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring,
          uint32_t nmembers, const uint32_t *members)
{
    const void *ctx = NULL;
    if (quorum_context_get(h, &ctx) != CS_OK || ctx == NULL) {
        return;
    }
    /* Our own context pointer, handed back by libquorum. */
    struct bus_cpg *b;
    memcpy(&b, &ctx, sizeof(b));
    report_quorum(b, quorate ? 1 : 0);
}

static void cpg_disconnect(struct bus_cpg *b);
static void cpg_arm_retry(struct bus_cpg *b, uint32_t ms);

static void
on_cpg_readable(uv_poll_t *p, int status, int events)
{
    struct bus_cpg *b = p->data;
    cs_error_t rc = cpg_dispatch(b->cpg, CS_DISPATCH_ALL);
    if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
        pc_log(PC_LOG_CRIT, "pool", "lost Corosync (cpg_dispatch: %d); "
               "reconnecting", (int)rc);
        cpg_disconnect(b);
        report_quorum(b, 0);
        cpg_arm_retry(b, CPG_RECONNECT_MS);
    }
}

static void
on_quorum_readable(uv_poll_t *p, int status, int events)
{
    struct bus_cpg *b = p->data;
    cs_error_t rc = quorum_dispatch(b->quorum, CS_DISPATCH_ALL);
    if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
        pc_log(PC_LOG_CRIT, "pool", "lost Corosync quorum service (%d)",
               (int)rc);
        cpg_disconnect(b);
        report_quorum(b, 0);
        cpg_arm_retry(b, CPG_RECONNECT_MS);
    }
}

static void bus_release(struct bus_cpg *b);

/* libuv runs close callbacks newest first, so b (which holds the handles)
 * is freed only by the last of them. */
static void
handle_closed(uv_handle_t *h)
{
    struct bus_cpg *b = h->data;
    b->closing--;
    if (b->freeing && b->closing == 0) {
        bus_release(b);
    }
}

static void
close_handle(struct bus_cpg *b, uv_handle_t *h)
{
    b->closing++;
    uv_close(h, handle_closed);
}

static void
cpg_disconnect(struct bus_cpg *b)
{
    if (b->cpg_poll_open) {
        close_handle(b, (uv_handle_t *)&b->cpg_poll);
        b->cpg_poll_open = false;
    }
    if (b->quorum_poll_open) {
        close_handle(b, (uv_handle_t *)&b->quorum_poll);
        b->quorum_poll_open = false;
    }
    if (b->cpg_up) {
        (void)cpg_finalize(b->cpg);
        b->cpg_up = false;
        b->joined = false;
    }
    if (b->quorum_up) {
        (void)quorum_finalize(b->quorum);
        b->quorum_up = false;
    }
}

static int
cpg_connect(struct bus_cpg *b)
{
    cpg_model_v1_data_t model;
    quorum_model_v1_data_t qmodel;
    struct cpg_name name;
    uint32_t qtype = 0;
    unsigned int nodeid = 0;
    int fd = -1;
    cs_error_t rc;

    memset(&model, 0, sizeof(model));
    model.model = CPG_MODEL_V1;
    model.cpg_deliver_fn = on_deliver;
    model.cpg_confchg_fn = on_confchg;
    rc = cpg_model_initialize(&b->cpg, CPG_MODEL_V1,
                              (cpg_model_data_t *)&model, b);
    if (rc != CS_OK) {
        return -ECONNREFUSED;
    }
    b->cpg_up = true;
    if (cpg_local_get(b->cpg, &nodeid) == CS_OK) {
        b->base.node_id = (uint64_t)nodeid << 32 | (uint32_t)getpid();
    }
    memset(&name, 0, sizeof(name));
    name.length = (uint32_t)strlen(b->group);
    memcpy(name.value, b->group, name.length);
    rc = cpg_join(b->cpg, &name);
    if (rc != CS_OK) {
        cpg_disconnect(b);
        return rc == CS_ERR_TRY_AGAIN ? -EAGAIN : -ECONNREFUSED;
    }
    b->joined = true;
    if (cpg_fd_get(b->cpg, &fd) != CS_OK
        || uv_poll_init(b->base.loop, &b->cpg_poll, fd) != 0) {
        cpg_disconnect(b);
        return -EIO;
    }
    b->cpg_poll_open = true;
    b->cpg_poll.data = b;
    (void)uv_poll_start(&b->cpg_poll, UV_READABLE, on_cpg_readable);

    memset(&qmodel, 0, sizeof(qmodel));
    qmodel.model = QUORUM_MODEL_V1;
    qmodel.quorum_notify_fn = on_quorum;
    rc = quorum_model_initialize(&b->quorum, QUORUM_MODEL_V1,
                                 (quorum_model_data_t *)&qmodel, &qtype, b);
    if (rc != CS_OK) {
        cpg_disconnect(b);
        return -ECONNREFUSED;
    }
    b->quorum_up = true;
    if (quorum_trackstart(b->quorum, CS_TRACK_CHANGES | CS_TRACK_CURRENT)
            != CS_OK
        || quorum_fd_get(b->quorum, &fd) != CS_OK
        || uv_poll_init(b->base.loop, &b->quorum_poll, fd) != 0) {
        cpg_disconnect(b);
        return -EIO;
    }
    b->quorum_poll_open = true;
    b->quorum_poll.data = b;
    (void)uv_poll_start(&b->quorum_poll, UV_READABLE, on_quorum_readable);
    pc_log(PC_LOG_NOTICE, "pool", "joined process group %s node=%u "
           "quorum_provider=%s", b->group, (unsigned)PC_BUS_NODE(b->base.node_id),
           qtype == QUORUM_SET ? "votequorum" : "none");
    if (qtype != QUORUM_SET) {
        /* Without a quorum provider Corosync is always quorate. */
        report_quorum(b, 1);
    }
    return 0;
}

/* Sends what the outbox holds until Corosync pushes back. */
static void
cpg_flush(struct bus_cpg *b)
{
    while (b->head != NULL && b->joined) {
        struct cpg_item *it = b->head;
        struct iovec iov = {it->data, it->len};
        cs_error_t rc = cpg_mcast_joined(b->cpg, CPG_TYPE_AGREED, &iov, 1);
        if (rc == CS_ERR_TRY_AGAIN) {
            cpg_arm_retry(b, b->retry_ms ? b->retry_ms : CPG_RETRY_MIN_MS);
            return;
        }
        if (rc != CS_OK) {
            pc_log(PC_LOG_ERR, "pool", "multicast failed (%d); will retry",
                   (int)rc);
            cpg_arm_retry(b, CPG_RECONNECT_MS);
            return;
        }
        b->retry_ms = 0;
        b->head = it->next;
        if (b->head == NULL) {
            b->tail = &b->head;
        }
        b->outbox_bytes -= it->len;
        free(it);
    }
}

static void
on_retry(uv_timer_t *t)
{
    struct bus_cpg *b = t->data;

    if (!b->cpg_up) {
        int rc = cpg_connect(b);
        if (rc < 0) {
            cpg_arm_retry(b, CPG_RECONNECT_MS);
            return;
        }
    }
    b->retry_ms = b->retry_ms ? b->retry_ms * 2 : CPG_RETRY_MIN_MS;
    if (b->retry_ms > CPG_RETRY_MAX_MS) {
        b->retry_ms = CPG_RETRY_MAX_MS;
    }
    cpg_flush(b);
}

static void
cpg_arm_retry(struct bus_cpg *b, uint32_t ms)
{
    if (!uv_is_active((uv_handle_t *)&b->retry_timer)) {
        (void)uv_timer_start(&b->retry_timer, on_retry, ms, 0);
    }
}

/* Moves the pass's batch to the outbox. */
static int
batch_seal(struct bus_cpg *b)
{
    if (b->batch.len == 0) {
        return 0;
    }
    if (b->outbox_bytes + b->batch.len > CPG_OUTBOX_MAX) {
        pc_buf_reset(&b->batch);
        return PC_E2BIG;
    }
    struct cpg_item *it = malloc(sizeof(*it) + b->batch.len);
    if (it == NULL) {
        pc_buf_reset(&b->batch);
        return -ENOMEM;
    }
    it->next = NULL;
    it->len = b->batch.len;
    memcpy(it->data, b->batch.data, b->batch.len);
    *b->tail = it;
    b->tail = &it->next;
    b->outbox_bytes += it->len;
    pc_buf_reset(&b->batch);
    return 0;
}

static int
cpgb_publish(struct pc_bus *base, const void *data, size_t len)
{
    struct bus_cpg *b = (struct bus_cpg *)base;
    unsigned char hdr[CPG_HDR_LEN], flen[4];
    int rc = 0;

    if (len > CPG_BATCH_MAX - CPG_HDR_LEN - 4) {
        return PC_E2BIG;
    }
    if (b->batch.len + 4 + len > CPG_BATCH_MAX) {
        rc = batch_seal(b);
    }
    if (rc == 0 && b->batch.len == 0) {
        put_u32(hdr, CPG_MAGIC);
        put_u32(hdr + 4, b->version);
        put_u32(hdr + 8, (uint32_t)getpid());
        rc = pc_buf_append(&b->batch, hdr, sizeof(hdr));
    }
    put_u32(flen, (uint32_t)len);
    rc = rc ? rc : pc_buf_append(&b->batch, flen, 4);
    rc = rc ? rc : pc_buf_append(&b->batch, data, len);
    return rc;
}

static void
cpgb_dispatch(struct pc_bus *base)
{
    struct bus_cpg *b = (struct bus_cpg *)base;

    /* Delivery happens from the descriptor's poll callback; here the
     * pass's publications go out together. */
    int rc = batch_seal(b);
    if (rc < 0) {
        pc_log(PC_LOG_ERR, "pool", "pool messages dropped: %s",
               pc_strerror(rc));
    }
    if (b->head != NULL && !uv_is_active((uv_handle_t *)&b->retry_timer)) {
        cpg_flush(b);
    }
}

static void
bus_release(struct bus_cpg *b)
{
    pc_buf_free(&b->batch);
    while (b->head != NULL) {
        struct cpg_item *it = b->head;
        b->head = it->next;
        free(it);
    }
    free(b);
}

static void
cpgb_free(struct pc_bus *base)
{
    struct bus_cpg *b = (struct bus_cpg *)base;
    b->freeing = true;
    cpg_disconnect(b);
    close_handle(b, (uv_handle_t *)&b->retry_timer);
}

static const struct pc_bus_ops cpg_ops = {
    .name = "cpg",
    .publish = cpgb_publish,
    .dispatch = cpgb_dispatch,
    .free = cpgb_free,
};

int
pc_bus_cpg_new(struct pc_bus **out, uv_loop_t *loop, const char *group,
               uint16_t version, const struct pc_bus_cbs *cbs, void *arg)
{
    struct bus_cpg *b = calloc(1, sizeof(*b));
    int rc;

    if (b == NULL) {
        return -ENOMEM;
    }
    if (strlen(group) >= sizeof(b->group)) {
        free(b);
        return PC_ECONFIG;
    }
    b->base.ops = &cpg_ops;
    b->base.cbs = *cbs;
    b->base.arg = arg;
    b->base.loop = loop;
    memcpy(b->group, group, strlen(group) + 1);
    b->version = version;
    b->quorate = -1;
    b->tail = &b->head;
    pc_buf_init(&b->batch, CPG_BATCH_MAX);
    (void)uv_timer_init(loop, &b->retry_timer);
    b->retry_timer.data = b;
    rc = cpg_connect(b);
    if (rc < 0) {
        pc_log(PC_LOG_WARN, "pool", "Corosync not reachable (%s); retrying "
               "every %d ms", pc_strerror(rc), CPG_RECONNECT_MS);
        cpg_arm_retry(b, CPG_RECONNECT_MS);
    }
    *out = &b->base;
    return 0;
}
