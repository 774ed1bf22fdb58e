/* The string-keyed hash map: put, get, del, iteration, tombstones, growth,
 * and a random sequence checked against a plain array. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/map.h"

#define NKEYS 5000

static int values[NKEYS];

static void
key_of(int i, char *key, size_t cap)
{
    (void)snprintf(key, cap, "key%d", i);
}

static void
test_empty(void **state)
{
    struct pc_map m;
    size_t pos = 0;
    const char *k = NULL;

    pc_map_init(&m);
    assert_null(pc_map_get(&m, "nothing"));
    assert_null(pc_map_del(&m, "nothing"));
    assert_null(pc_map_next(&m, &pos, &k));
    pc_map_free(&m);
    pc_map_free(&m); /* idempotent */

    /* The empty string is a key like any other. */
    pc_map_init(&m);
    assert_int_equal(pc_map_put(&m, "", &values[0]), 0);
    assert_ptr_equal(pc_map_get(&m, ""), &values[0]);
    assert_ptr_equal(pc_map_del(&m, ""), &values[0]);
    assert_int_equal(m.count, 0);
    pc_map_free(&m);
}

static void
test_many(void **state)
{
    struct pc_map m;
    char key[32];

    pc_map_init(&m);
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, key, sizeof(key));
        values[i] = i;
        assert_int_equal(pc_map_put(&m, key, &values[i]), 0);
        /* The table grows before it is three quarters full. */
        assert_true(m.used * 4 <= m.cap * 3);
    }
    assert_int_equal(m.count, NKEYS);
    assert_true((m.cap & (m.cap - 1)) == 0);
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, key, sizeof(key));
        int *v = pc_map_get(&m, key);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    assert_null(pc_map_get(&m, "key5000"));
    assert_null(pc_map_get(&m, "Key1")); /* case matters here */
    /* Keys are copied: the caller's buffer may change. */
    (void)snprintf(key, sizeof(key), "key7");
    key[3] = '8';
    assert_ptr_equal(pc_map_get(&m, "key7"), &values[7]);

    /* Replacing keeps the count. */
    assert_int_equal(pc_map_put(&m, "key1", &values[2]), 0);
    assert_int_equal(m.count, NKEYS);
    assert_ptr_equal(pc_map_get(&m, "key1"), &values[2]);
    pc_map_free(&m);
}

static void
test_tombstones(void **state)
{
    struct pc_map m;
    char key[32];

    pc_map_init(&m);
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(pc_map_put(&m, key, &values[i]), 0);
    }
    size_t cap = m.cap;
    /* Delete half and put them back, many times: tombstones are reused or
     * rehashed away, so the table stays within one doubling and never
     * fills up. */
    for (int round = 0; round < 20; round++) {
        for (int i = round % 2; i < NKEYS; i += 2) {
            key_of(i, key, sizeof(key));
            assert_ptr_equal(pc_map_del(&m, key), &values[i]);
            assert_null(pc_map_get(&m, key));
            assert_null(pc_map_del(&m, key));
        }
        assert_int_equal(m.count, NKEYS / 2);
        for (int i = round % 2; i < NKEYS; i += 2) {
            key_of(i, key, sizeof(key));
            assert_int_equal(pc_map_put(&m, key, &values[i]), 0);
        }
        assert_int_equal(m.count, NKEYS);
        assert_true(m.cap <= 2 * cap);
        assert_true(m.used * 4 <= m.cap * 3);
    }
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, key, sizeof(key));
        assert_ptr_equal(pc_map_get(&m, key), &values[i]);
    }
    pc_map_free(&m);

    /* Churn through distinct keys with few alive: a table full of
     * tombstones is rehashed at the same size, not doubled. */
    pc_map_init(&m);
    for (int i = 0; i < 100000; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(pc_map_put(&m, key, &values[i % NKEYS]), 0);
        if (i >= 8) {
            key_of(i - 8, key, sizeof(key));
            assert_non_null(pc_map_del(&m, key));
        }
    }
    assert_int_equal(m.count, 8);
    assert_true(m.cap <= 64);
    pc_map_free(&m);
}

static void
test_iterate(void **state)
{
    struct pc_map m;
    char key[32];
    static unsigned char seen[NKEYS];
    size_t pos = 0, n = 0;
    const char *k;
    int *v;

    pc_map_init(&m);
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(pc_map_put(&m, key, &values[i]), 0);
    }
    for (int i = 0; i < NKEYS; i += 3) {
        key_of(i, key, sizeof(key));
        assert_non_null(pc_map_del(&m, key));
    }
    memset(seen, 0, sizeof(seen));
    while ((v = pc_map_next(&m, &pos, &k)) != NULL) {
        key_of(*v, key, sizeof(key));
        assert_string_equal(k, key);
        assert_int_equal(seen[*v], 0); /* each once */
        assert_true(*v % 3 != 0);      /* no deleted entry */
        seen[*v] = 1;
        n++;
    }
    assert_int_equal(n, m.count);
    /* The key pointer is optional. */
    pos = 0;
    assert_non_null(pc_map_next(&m, &pos, NULL));

    /* Deleting the entry just returned is allowed. */
    pos = 0;
    n = 0;
    while (pc_map_next(&m, &pos, &k) != NULL) {
        char copy[32];
        (void)snprintf(copy, sizeof(copy), "%s", k);
        assert_non_null(pc_map_del(&m, copy));
        n++;
    }
    assert_int_equal(m.count, 0);
    assert_true(n > 0);
    pc_map_free(&m);
}

/* Random puts, gets and deletes over a small key space, checked against a
 * plain array. */
static void
test_model(void **state)
{
    enum { SPACE = 300 };
    struct pc_map m;
    int *model[SPACE] = {0};
    char key[32];
    size_t live = 0;
    uint32_t seed = 12345;

    pc_map_init(&m);
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % SPACE);
        int op = (int)((seed >> 24) % 3);
        key_of(i, key, sizeof(key));
        if (op == 0) {
            int *v = &values[(seed >> 4) % NKEYS];
            assert_int_equal(pc_map_put(&m, key, v), 0);
            live += model[i] == NULL;
            model[i] = v;
        } else if (op == 1) {
            assert_ptr_equal(pc_map_del(&m, key), model[i]);
            live -= model[i] != NULL;
            model[i] = NULL;
        } else {
            assert_ptr_equal(pc_map_get(&m, key), model[i]);
        }
        assert_int_equal(m.count, live);
    }
    for (int i = 0; i < SPACE; i++) {
        key_of(i, key, sizeof(key));
        assert_ptr_equal(pc_map_get(&m, key), model[i]);
    }
    pc_map_free(&m);
}

static void
test_hash(void **state)
{
    /* Deterministic, and len bounds the input. */
    assert_true(pc_hash("", 0) == pc_hash("", 0));
    assert_true(pc_hash("abc", 3) == pc_hash("abcd", 3));
    assert_true(pc_hash("abc", 3) != pc_hash("abd", 3));
    assert_true(pc_hash("#room", 5) != pc_hash("#Room", 5));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),   cmocka_unit_test(test_many),
        cmocka_unit_test(test_tombstones), cmocka_unit_test(test_iterate),
        cmocka_unit_test(test_model),   cmocka_unit_test(test_hash),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
