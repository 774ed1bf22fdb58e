/* auth/: SCRAM-SHA-256 against RFC 7677's test vector, PLAIN against the
 * same keys, strict base64, and malformed messages refused. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "util/err.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* RFC 7677 section 3. */
static const char rfc_client_first[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char rfc_server_nonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char rfc_server_first[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char rfc_client_final[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char rfc_server_final[] =
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

static void
rfc_keys(struct pc_auth_keys *k)
{
    unsigned char salt[32];
    ssize_t n =
        pc_auth_b64_decode(salt, sizeof(salt), "W22ZaJ0SNY7soEsUEjb6gQ==", 24);
    assert_int_equal(n, 16);
    assert_int_equal(pc_auth_derive("pencil", 6, salt, (size_t)n, 4096, k), 0);
}

static void
start(struct pc_scram *s, const struct pc_auth_keys *k)
{
    char out[PC_AUTH_MSG_MAX];
    assert_int_equal(
        pc_scram_client_first(s, rfc_client_first, strlen(rfc_client_first)),
        0);
    ssize_t n = pc_scram_server_first(s, k, rfc_server_nonce, out, sizeof(out));
    assert_int_equal(n, (ssize_t)strlen(rfc_server_first));
    assert_string_equal(out, rfc_server_first);
}

static void
test_rfc7677_vector(void **state)
{
    struct pc_auth_keys k;
    struct pc_scram s;
    char out[PC_AUTH_MSG_MAX];

    rfc_keys(&k);
    start(&s, &k);
    assert_string_equal(s.user, "user");
    assert_string_equal(s.authzid, "");
    ssize_t n = pc_scram_client_final(
        &s, rfc_client_final, strlen(rfc_client_final), out, sizeof(out));
    assert_int_equal(n, (ssize_t)strlen(rfc_server_final));
    assert_string_equal(out, rfc_server_final);
    /* One client-final per exchange. */
    assert_int_equal(pc_scram_client_final(&s, rfc_client_final,
                                           strlen(rfc_client_final), out,
                                           sizeof(out)),
                     PC_EPROTO);
}

static void
test_wrong_password(void **state)
{
    struct pc_auth_keys k;
    struct pc_scram s;
    char out[PC_AUTH_MSG_MAX];
    unsigned char salt[16];

    (void)pc_auth_b64_decode(salt, sizeof(salt),
                             "W22ZaJ0SNY7soEsUEjb6gQ==", 24);
    assert_int_equal(pc_auth_derive("pencil2", 7, salt, 16, 4096, &k), 0);
    start(&s, &k);
    assert_int_equal(pc_scram_client_final(&s, rfc_client_final,
                                           strlen(rfc_client_final), out,
                                           sizeof(out)),
                     -EACCES);
}

static void
test_final_tampered(void **state)
{
    static const char *const bad[] = {
        /* wrong channel binding (claims "y,,") */
        "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        /* nonce without the server's part */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        /* no proof */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        /* proof not last */
        "c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,"
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        /* proof of the wrong length, bad base64 */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV=Q",
        "",
        "garbage",
    };
    struct pc_auth_keys k;
    rfc_keys(&k);
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct pc_scram s;
        char out[PC_AUTH_MSG_MAX];
        start(&s, &k);
        assert_int_equal(
            pc_scram_client_final(&s, bad[i], strlen(bad[i]), out, sizeof(out)),
            PC_EPROTO);
    }
    /* A flipped proof bit is a wrong password, not a malformed message. */
    struct pc_scram s;
    char out[PC_AUTH_MSG_MAX];
    char msg[sizeof(rfc_client_final)];
    memcpy(msg, rfc_client_final, sizeof(msg));
    msg[sizeof(msg) - 5] = msg[sizeof(msg) - 5] == 'A' ? 'B' : 'A';
    start(&s, &k);
    assert_int_equal(
        pc_scram_client_final(&s, msg, strlen(msg), out, sizeof(out)), -EACCES);
}

static void
test_client_first(void **state)
{
    struct pc_scram s;

    assert_int_equal(pc_scram_client_first(&s, "y,,n=a=2Cb=3Dc,r=xyz,e=1",
                                           strlen("y,,n=a=2Cb=3Dc,r=xyz,e=1")),
                     0);
    assert_string_equal(s.user, "a,b=c");
    assert_string_equal(s.gs2_header, "y,,");
    assert_string_equal(s.client_first_bare, "n=a=2Cb=3Dc,r=xyz,e=1");
    assert_int_equal(pc_scram_client_first(&s, "n,a=bob,n=bob,r=x", 17), 0);
    assert_string_equal(s.authzid, "bob");

    static const char *const bad[] = {
        "",
        "n,,",
        "p=tls-unique,,n=user,r=abc", /* channel binding: not offered */
        "x,,n=user,r=abc",
        "n,,m=ext,n=user,r=abc", /* mandatory extension */
        "n,,n=user,r=abc,m=x",
        "n,,n=,r=abc",
        "n,,n=us=2Xer,r=abc", /* bad saslname escape */
        "n,,n=user=2,r=abc",
        "n,,n=user=",
        "n,,n=user",
        "n,,n=user,r=",
        "n,,r=abc,n=user",
        "n,a=alice,n=bob,r=abc", /* acting as another account */
        "n,,n=user,r=a b",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        assert_int_equal(pc_scram_client_first(&s, bad[i], strlen(bad[i])),
                         PC_EPROTO);
    }
    /* NUL inside. */
    assert_int_equal(pc_scram_client_first(&s, "n,,n=us\0r,r=abc", 15),
                     PC_EPROTO);
    /* A name longer than an account can be. */
    char longmsg[200] = "n,,n=";
    memset(longmsg + 5, 'a', 100);
    memcpy(longmsg + 105, ",r=abc", 7);
    assert_int_equal(pc_scram_client_first(&s, longmsg, strlen(longmsg)),
                     PC_EPROTO);
}

static void
test_state_order(void **state)
{
    struct pc_scram s;
    struct pc_auth_keys k;
    char out[PC_AUTH_MSG_MAX];

    rfc_keys(&k);
    memset(&s, 0, sizeof(s));
    assert_int_equal(pc_scram_server_first(&s, &k, "abc", out, sizeof(out)),
                     PC_EPROTO);
    assert_int_equal(pc_scram_client_final(&s, rfc_client_final,
                                           strlen(rfc_client_final), out,
                                           sizeof(out)),
                     PC_EPROTO);
    assert_int_equal(
        pc_scram_client_first(&s, rfc_client_first, strlen(rfc_client_first)),
        0);
    /* A server nonce with a comma would break the message. */
    assert_int_equal(pc_scram_server_first(&s, &k, "a,b", out, sizeof(out)),
                     PC_EPROTO);
}

static void
test_plain(void **state)
{
    struct pc_auth_plain p;
    struct pc_auth_keys k;

    rfc_keys(&k);
    assert_int_equal(pc_auth_plain_parse("\0user\0pencil", 12, &p), 0);
    assert_string_equal(p.authzid, "");
    assert_string_equal(p.authcid, "user");
    assert_true(pc_auth_plain_check(&k, p.passwd, p.passwd_len));
    assert_false(pc_auth_plain_check(&k, "pencil ", 7));
    assert_false(pc_auth_plain_check(&k, "", 0));
    assert_int_equal(pc_auth_plain_parse("user\0user\0pencil", 16, &p), 0);
    assert_string_equal(p.authzid, "user");

    static const struct {
        const char *m;
        size_t len;
    } bad[] = {
        {"", 0},
        {"user", 4},
        {"\0user", 5},
        {"\0user\0", 6},          /* empty password */
        {"\0\0pencil", 8},        /* empty authcid */
        {"\0user\0pen\0cil", 13}, /* NUL in the password */
    };

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        assert_int_equal(pc_auth_plain_parse(bad[i].m, bad[i].len, &p),
                         PC_EPROTO);
    }
}

static void
test_derive_limits(void **state)
{
    struct pc_auth_keys k;
    unsigned char salt[PC_AUTH_SALT_MAX + 1] = {0};

    assert_int_equal(pc_auth_derive("x", 1, salt, 0, 4096, &k), PC_EPROTO);
    assert_int_equal(pc_auth_derive("x", 1, salt, sizeof(salt), 4096, &k),
                     PC_EPROTO);
    assert_int_equal(pc_auth_derive("x", 1, salt, 16, 0, &k), PC_EPROTO);
    assert_int_equal(pc_auth_derive("x", 1, salt, 16, 1, &k), 0);
    assert_int_equal(k.iterations, 1);
}

static void
test_base64(void **state)
{
    static const struct {
        const char *raw;
        const char *b64;
    } ok[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };

    char enc[64];
    unsigned char dec[64];
    for (size_t i = 0; i < N_ELEMS(ok); i++) {
        size_t rl = strlen(ok[i].raw), bl = strlen(ok[i].b64);
        assert_int_equal(pc_auth_b64_encode(enc, sizeof(enc),
                                            (const unsigned char *)ok[i].raw,
                                            rl),
                         (ssize_t)bl);
        assert_string_equal(enc, ok[i].b64);
        assert_int_equal(pc_auth_b64_decode(dec, sizeof(dec), ok[i].b64, bl),
                         (ssize_t)rl);
        assert_memory_equal(dec, ok[i].raw, rl);
    }
    static const char *const bad[] = {
        "Zg=",      "Zg",   "Z===",  "Zh==", "Zm9=",
        "Zg==Zg==", "Zm 9", "Zm9\n", "====", "Zm9v!A==",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        assert_int_equal(
            pc_auth_b64_decode(dec, sizeof(dec), bad[i], strlen(bad[i])), -1);
    }
    /* Output caps. */
    assert_int_equal(pc_auth_b64_encode(enc, 4, (const unsigned char *)"f", 1),
                     -1);
    assert_int_equal(pc_auth_b64_decode(dec, 5, "Zm9vYmFy", 8), -1);
    /* Hex. */
    assert_int_equal(pc_auth_hex_decode(dec, sizeof(dec), "00ff7a", 6), 3);
    assert_int_equal(dec[1], 0xff);
    assert_int_equal(pc_auth_hex_decode(dec, sizeof(dec), "0F", 2), -1);
    assert_int_equal(pc_auth_hex_decode(dec, sizeof(dec), "abc", 3), -1);
    assert_int_equal(pc_auth_hex_decode(dec, 1, "abcd", 4), -1);
}

static void
test_nonce(void **state)
{
    char a[32], b[32];
    assert_int_equal(pc_auth_nonce(a, sizeof(a)), 0);
    assert_int_equal(pc_auth_nonce(b, sizeof(b)), 0);
    assert_int_equal(strlen(a), 24);
    assert_string_not_equal(a, b);
    assert_null(strchr(a, ','));
    assert_int_not_equal(pc_auth_nonce(a, 10), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_vector),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_final_tampered),
        cmocka_unit_test(test_client_first),
        cmocka_unit_test(test_state_order),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_derive_limits),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_nonce),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
