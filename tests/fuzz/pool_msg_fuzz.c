/* libFuzzer target: pool messages from another member. Whatever a peer
 * sends, pchatd must ignore what it cannot read and never crash or corrupt
 * its state; the input is split into several messages so that sequences
 * (a user, then its joins, nick changes, quits...) are explored too. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "chat/chat.h"
#include "store/store.h"
#include "util/conf.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct pc_conf conf;
static struct pc_store *store;
static struct pc_chat *chat;
static struct pc_bus *bus;

static void
setup(void)
{
    struct pc_store_cfg scfg = {"dbname=none", 1000, 100, 1000, 4};
    pc_log_set_level(PC_LOG_CRIT);
    (void)uv_loop_init(&loop);
    (void)pc_conf_init(&conf);
    /* The store is never started: queries wait, nothing is sent. */
    (void)pc_store_new(&store, &loop, &scfg, NULL, NULL);
    (void)pc_chat_new(&chat, &loop, &conf, store);
    (void)pc_bus_local_new(&bus, &loop, &pc_chat_bus_cbs, chat);
    pc_chat_set_bus(chat, bus);
    pc_chat_set_pool(chat, 0x100000001ULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (chat == NULL) {
        setup();
    }
    /* Messages are separated by the byte sequence 0xff 0x00. The sender is
     * another member (or, for the first byte's low bit, ourselves). */
    uint64_t from = size > 0 && (data[0] & 1) ? 0x100000001ULL : 0x200000002ULL;
    size_t start = size > 0 ? 1 : 0;
    for (size_t i = start; i <= size; i++) {
        if (i == size || (i + 1 < size && data[i] == 0xff && data[i + 1] == 0)) {
            if (i > start) {
                pc_chat_pool_cbs.deliver(chat, from, data + start, i - start);
            }
            start = i + 2;
            i++;
        }
    }
    return 0;
}
