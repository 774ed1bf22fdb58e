/* The room policy (docs/room-model.md): every right for every room type,
 * privacy and kind of principal, as one table. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "chat/policy.h"

enum who {
    W_ALLOWED,   /* in the category's allowed group */
    W_DENIED,    /* allowed, and also denied */
    W_MEMBER,    /* a member of the room (not allowed by the category) */
    W_MANAGER,   /* a manager (by account) */
    W_PRESENTER, /* a presenter (by group) */
    W_CREATOR,   /* allowed and a creator */
    W_OUTSIDER,  /* an account nothing names */
    W_ADMIN,     /* an administrator that nothing names */
    W_ANON,      /* not logged in */
    W_DENIED_MANAGER, /* a manager who is also denied */
    W_COUNT
};

#define G_STAFF 10
#define G_STAGE 11
#define G_BAD   12

static const int64_t staff[] = {G_STAFF};
static const int64_t staff_bad[] = {G_STAFF, G_BAD};
static const int64_t stage[] = {G_STAGE};

static const struct pc_policy_user users[W_COUNT] = {
    [W_ALLOWED] = {101, false, staff, 1},
    [W_DENIED] = {102, false, staff_bad, 2},
    [W_MEMBER] = {103, false, NULL, 0},
    [W_MANAGER] = {104, false, NULL, 0},
    [W_PRESENTER] = {105, false, stage, 1},
    [W_CREATOR] = {106, false, staff, 1},
    [W_OUTSIDER] = {107, false, NULL, 0},
    [W_ADMIN] = {108, true, NULL, 0},
    [W_ANON] = {0, false, NULL, 0},
    [W_DENIED_MANAGER] = {109, false, staff_bad, 2},
};

struct fixture {
    struct pc_policy_cat cat;
    struct pc_prin_list members, managers, presenters;
};

static void
fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(pc_prin_list_add(&f->cat.allowed, PC_PRIN_GROUP, G_STAFF),
                     0);
    assert_int_equal(pc_prin_list_add(&f->cat.denied, PC_PRIN_GROUP, G_BAD), 0);
    assert_int_equal(pc_prin_list_add(&f->cat.creators, PC_PRIN_ACCOUNT, 106),
                     0);
    f->cat.history_kept = true;
    f->cat.invitations_allowed = true;
    assert_int_equal(pc_prin_list_add(&f->members, PC_PRIN_ACCOUNT, 103), 0);
    assert_int_equal(pc_prin_list_add(&f->managers, PC_PRIN_ACCOUNT, 104), 0);
    assert_int_equal(pc_prin_list_add(&f->managers, PC_PRIN_ACCOUNT, 109), 0);
    assert_int_equal(pc_prin_list_add(&f->presenters, PC_PRIN_GROUP, G_STAGE),
                     0);
}

static void
fixture_free(struct fixture *f)
{
    pc_prin_list_clear(&f->cat.allowed);
    pc_prin_list_clear(&f->cat.denied);
    pc_prin_list_clear(&f->cat.creators);
    pc_prin_list_clear(&f->members);
    pc_prin_list_clear(&f->managers);
    pc_prin_list_clear(&f->presenters);
}

/* Expected rights as a string: s(ee) j(oin) h(istory) m(anage) p(ost), a
 * letter when granted, '-' when not. */
struct expect {
    enum pc_room_type type;
    enum pc_room_privacy privacy;
    const char *rights[W_COUNT];
};

static const struct expect table[] = {
    {PC_ROOM_NORMAL, PC_PRIV_OPEN,
     {"sjh-p", "-----", "sjh-p", "sjhmp", "sjh-p", "sjh-p", "-----", "sjhmp",
      "-----", "-----"}},
    {PC_ROOM_NORMAL, PC_PRIV_CLOSED,
     {"s----", "-----", "sjh-p", "sjhmp", "sjh-p", "s----", "-----", "sjhmp",
      "-----", "-----"}},
    {PC_ROOM_NORMAL, PC_PRIV_SECRET,
     {"-----", "-----", "sjh-p", "sjhmp", "sjh-p", "-----", "-----", "sjhmp",
      "-----", "-----"}},
    {PC_ROOM_AUDITORIUM, PC_PRIV_OPEN,
     {"sjh--", "-----", "sjh--", "sjhmp", "sjh-p", "sjh--", "-----", "sjhmp",
      "-----", "-----"}},
    {PC_ROOM_AUDITORIUM, PC_PRIV_CLOSED,
     {"s----", "-----", "sjh--", "sjhmp", "sjh-p", "s----", "-----", "sjhmp",
      "-----", "-----"}},
    {PC_ROOM_AUDITORIUM, PC_PRIV_SECRET,
     {"-----", "-----", "sjh--", "sjhmp", "sjh-p", "-----", "-----", "sjhmp",
      "-----", "-----"}},
};

static void
rights_str(const struct pc_rights *r, char out[6])
{
    out[0] = r->see ? 's' : '-';
    out[1] = r->join ? 'j' : '-';
    out[2] = r->history ? 'h' : '-';
    out[3] = r->manage ? 'm' : '-';
    out[4] = r->post ? 'p' : '-';
    out[5] = '\0';
}

static struct pc_policy_room
room_of(const struct fixture *f, enum pc_room_type type,
        enum pc_room_privacy privacy)
{
    struct pc_policy_room room = {type,       privacy,        false,
                                  &f->members, &f->managers,  &f->presenters,
                                  &f->cat};
    return room;
}

static void
test_matrix(void **state)
{
    struct fixture f;
    fixture_init(&f);
    for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
        struct pc_policy_room room = room_of(&f, table[t].type,
                                             table[t].privacy);
        for (int w = 0; w < W_COUNT; w++) {
            struct pc_rights r;
            char got[6];
            pc_policy_rights(&room, &users[w], &r);
            rights_str(&r, got);
            if (strcmp(got, table[t].rights[w]) != 0) {
                fail_msg("row %zu who %d: got %s want %s", t, w, got,
                         table[t].rights[w]);
            }
        }
    }
    fixture_free(&f);
}

/* A disabled room: administrators see it and read its history, nobody
 * joins. */
static void
test_disabled(void **state)
{
    struct fixture f;
    fixture_init(&f);
    struct pc_policy_room room = room_of(&f, PC_ROOM_NORMAL, PC_PRIV_OPEN);
    room.disabled = true;
    for (int w = 0; w < W_COUNT; w++) {
        struct pc_rights r;
        char got[6];
        pc_policy_rights(&room, &users[w], &r);
        rights_str(&r, got);
        assert_string_equal(got, w == W_ADMIN ? "s-hmp" : "-----");
    }
    fixture_free(&f);
}

/* History follows the category's history_kept, except for admins. */
static void
test_history_not_kept(void **state)
{
    struct fixture f;
    struct pc_rights r;
    fixture_init(&f);
    f.cat.history_kept = false;
    struct pc_policy_room room = room_of(&f, PC_ROOM_NORMAL, PC_PRIV_OPEN);
    pc_policy_rights(&room, &users[W_MEMBER], &r);
    assert_true(r.join);
    assert_false(r.history);
    pc_policy_rights(&room, &users[W_ADMIN], &r);
    assert_true(r.history);
    fixture_free(&f);
}

/* No category known: only administrators. */
static void
test_unknown_category(void **state)
{
    struct fixture f;
    struct pc_rights r;
    fixture_init(&f);
    struct pc_policy_room room = room_of(&f, PC_ROOM_NORMAL, PC_PRIV_OPEN);
    room.cat = NULL;
    pc_policy_rights(&room, &users[W_MANAGER], &r);
    assert_false(r.see || r.join || r.manage || r.member);
    pc_policy_rights(&room, &users[W_ADMIN], &r);
    assert_true(r.see && r.join && r.manage);
    fixture_free(&f);
}

/* The default category (anyone allowed, anyone creates) behaves like a
 * plain IRC server, for unauthenticated connections too; "authenticated"
 * matches accounts only. */
static void
test_anyone_and_authenticated(void **state)
{
    struct pc_policy_cat cat;
    struct pc_rights r;
    memset(&cat, 0, sizeof(cat));
    cat.history_kept = true;
    assert_int_equal(pc_prin_list_add(&cat.allowed, PC_PRIN_ANYONE, 0), 0);
    assert_int_equal(pc_prin_list_add(&cat.creators, PC_PRIN_ANYONE, 0), 0);
    struct pc_prin_list none = {0};
    struct pc_policy_room room = {PC_ROOM_NORMAL, PC_PRIV_OPEN, false, &none,
                                  &none, &none, &cat};
    pc_policy_rights(&room, &users[W_ANON], &r);
    assert_true(r.see && r.join && r.history && r.post);
    assert_false(r.manage);
    assert_true(pc_policy_can_create(&cat, &users[W_ANON]));

    pc_prin_list_clear(&cat.creators);
    assert_int_equal(
        pc_prin_list_add(&cat.creators, PC_PRIN_AUTHENTICATED, 0), 0);
    assert_false(pc_policy_can_create(&cat, &users[W_ANON]));
    assert_true(pc_policy_can_create(&cat, &users[W_OUTSIDER]));
    assert_true(pc_policy_can_create(&cat, &users[W_ADMIN]));
    pc_prin_list_clear(&cat.allowed);
    pc_prin_list_clear(&cat.creators);
}

static void
test_can_create(void **state)
{
    struct fixture f;
    fixture_init(&f);
    assert_true(pc_policy_can_create(&f.cat, &users[W_CREATOR]));
    assert_true(pc_policy_can_create(&f.cat, &users[W_ADMIN]));
    assert_false(pc_policy_can_create(&f.cat, &users[W_ALLOWED]));
    assert_false(pc_policy_can_create(&f.cat, &users[W_ANON]));
    /* A creator who is not allowed (or denied) may not. */
    assert_int_equal(pc_prin_list_add(&f.cat.creators, PC_PRIN_ACCOUNT, 107),
                     0);
    assert_int_equal(pc_prin_list_add(&f.cat.creators, PC_PRIN_ACCOUNT, 102),
                     0);
    assert_false(pc_policy_can_create(&f.cat, &users[W_OUTSIDER]));
    assert_false(pc_policy_can_create(&f.cat, &users[W_DENIED]));
    assert_false(pc_policy_can_create(NULL, &users[W_CREATOR]));
    fixture_free(&f);
}

static void
test_kind_parse(void **state)
{
    assert_int_equal(pc_prin_kind_parse("account"), PC_PRIN_ACCOUNT);
    assert_int_equal(pc_prin_kind_parse("group"), PC_PRIN_GROUP);
    assert_int_equal(pc_prin_kind_parse("authenticated"),
                     PC_PRIN_AUTHENTICATED);
    assert_int_equal(pc_prin_kind_parse("anyone"), PC_PRIN_ANYONE);
    assert_int_equal(pc_prin_kind_parse("everyone"), -1);
    assert_int_equal(pc_prin_kind_parse(""), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_history_not_kept),
        cmocka_unit_test(test_unknown_category),
        cmocka_unit_test(test_anyone_and_authenticated),
        cmocka_unit_test(test_can_create),
        cmocka_unit_test(test_kind_parse),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
