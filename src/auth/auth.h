/* Authentication, pure: SCRAM-SHA-256 server side (RFC 5802, RFC 7677),
 * SASL PLAIN checked against the same salted keys, key derivation with
 * PBKDF2-HMAC-SHA-256, strict base64, constant-time comparisons. No I/O
 * and no allocation; the hashing functions are CPU-heavy and belong on a
 * worker thread (uv_queue_work), never on an event loop. */
#ifndef PC_AUTH_AUTH_H
#define PC_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Frees OpenSSL's per-thread state (its error queue) on the calling
 * thread: call it at the end of every job run on a thread-pool thread,
 * whose threads outlive the loop and never run OpenSSL's own clean-up. */
void pc_auth_thread_done(void);

#define PC_AUTH_KEY_LEN   32 /* SHA-256 */
#define PC_AUTH_SALT_MAX  64
#define PC_AUTH_NAME_MAX  64 /* account names (they are nicks) */
#define PC_AUTH_PASS_MAX  512
#define PC_AUTH_NONCE_MAX 128
#define PC_AUTH_MSG_MAX   1024 /* any one SCRAM message */

/* What the database stores for an account (the password never). */
struct pc_auth_keys {
    uint32_t iterations;
    unsigned char salt[PC_AUTH_SALT_MAX];
    size_t salt_len;
    unsigned char stored_key[PC_AUTH_KEY_LEN];
    unsigned char server_key[PC_AUTH_KEY_LEN];
};

/* Base64 (RFC 4648, with padding). encode returns the length written
 * (NUL-terminated, cap includes the NUL) or -1 if it does not fit. decode
 * is strict: no whitespace, correct padding, zero trailing bits; returns
 * the bytes written or -1. */
ssize_t pc_auth_b64_encode(char *out, size_t cap, const unsigned char *in,
                           size_t len);
ssize_t pc_auth_b64_decode(unsigned char *out, size_t cap, const char *in,
                           size_t len);

/* Lower-case hex to bytes; returns the bytes written or -1. */
ssize_t pc_auth_hex_decode(unsigned char *out, size_t cap, const char *in,
                           size_t len);

/* True if a and b (n bytes each) are equal, in time independent of where
 * they differ. */
bool pc_auth_equal(const void *a, const void *b, size_t n);

/* SaltedPassword = PBKDF2(password, salt, iterations), then StoredKey and
 * ServerKey (RFC 5802 section 3). Fills out (salt and iterations copied).
 * Returns 0, or PC_EPROTO for a salt or iteration count out of range. */
int pc_auth_derive(const char *password, size_t len, const unsigned char *salt,
                   size_t salt_len, uint32_t iterations,
                   struct pc_auth_keys *out);

/* SASL PLAIN: message = [authzid] NUL authcid NUL passwd. */
struct pc_auth_plain {
    char authzid[PC_AUTH_NAME_MAX + 1];
    char authcid[PC_AUTH_NAME_MAX + 1];
    char passwd[PC_AUTH_PASS_MAX + 1];
    size_t passwd_len;
};

/* Returns 0, or PC_EPROTO (malformed, a field too long or holding NUL). */
int pc_auth_plain_parse(const char *msg, size_t len, struct pc_auth_plain *out);

/* True if the password gives the stored keys (derives: CPU-heavy). */
bool pc_auth_plain_check(const struct pc_auth_keys *keys, const char *passwd,
                         size_t len);

/* SCRAM-SHA-256, server side. Use: client_first (parse), then the caller
 * looks the account up and calls server_first with its keys (or made-up
 * ones for an unknown account, so that the answer does not reveal it),
 * then client_final (verifies the proof: call it off the loop), whose
 * output is the server-final message. */
enum pc_scram_state {
    PC_SCRAM_START,
    PC_SCRAM_FIRST_DONE,  /* client-first parsed */
    PC_SCRAM_SERVER_SENT, /* server-first produced */
    PC_SCRAM_DONE,        /* proof checked (good or bad) */
};

struct pc_scram {
    enum pc_scram_state state;
    char user[PC_AUTH_NAME_MAX + 1];    /* decoded authcid */
    char authzid[PC_AUTH_NAME_MAX + 1]; /* decoded, "" if none */
    char gs2_header[PC_AUTH_NAME_MAX * 3 + 8];
    size_t gs2_len;
    char client_first_bare[PC_AUTH_MSG_MAX];
    size_t cfb_len;
    char server_first[PC_AUTH_MSG_MAX];
    size_t sf_len;
    char nonce[2 * PC_AUTH_NONCE_MAX + 1]; /* client nonce + server nonce */
    struct pc_auth_keys keys;
};

/* Parses client-first-message. Returns 0, or PC_EPROTO (malformed,
 * channel binding required, unsupported mandatory extension). */
int pc_scram_client_first(struct pc_scram *s, const char *msg, size_t len);

/* Produces server-first-message into out (NUL-terminated). server_nonce
 * is printable ASCII without ','. Returns its length or PC_EPROTO. */
ssize_t pc_scram_server_first(struct pc_scram *s,
                              const struct pc_auth_keys *keys,
                              const char *server_nonce, char *out, size_t cap);

/* Checks client-final-message: channel binding, nonce and proof. On
 * success writes server-final-message ("v=...") into out and returns its
 * length; returns PC_EPROTO if malformed (or the binding or nonce do not
 * match) and -EACCES for a wrong proof. */
ssize_t pc_scram_client_final(struct pc_scram *s, const char *msg, size_t len,
                              char *out, size_t cap);

/* Random printable nonce (base64 of 18 random bytes, ',' never occurs);
 * out holds at least 25 bytes. Returns 0 or -EIO. */
int pc_auth_nonce(char *out, size_t cap);

#endif
