#include "config.h"

#include "auth/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "util/err.h"

#define ITER_MIN 1
#define ITER_MAX 10000000

/* Base64. */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

ssize_t
pc_auth_b64_encode(char *out, size_t cap, const unsigned char *in, size_t len)
{
    size_t need = (len + 2) / 3 * 4;
    size_t o = 0;

    if (need + 1 > cap) {
        return -1;
    }
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = len - i;
        if (left > 1) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (left > 2) {
            v |= in[i + 2];
        }
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return (ssize_t)o;
}

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

ssize_t
pc_auth_b64_decode(unsigned char *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;

    if (len % 4 != 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        size_t pad = 0;
        bool last = i + 4 == len;
        for (size_t k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0) {
                return -1; /* data after padding */
            }
            v[k] = b64_value(c);
            if (v[k] < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12
                     | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t n = 3 - pad;
        /* Canonical form only: the bits padding drops are zero. */
        if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0)) {
            return -1;
        }
        if (o + n > cap) {
            return -1;
        }
        out[o++] = (unsigned char)(w >> 16);
        if (n > 1) {
            out[o++] = (unsigned char)(w >> 8);
        }
        if (n > 2) {
            out[o++] = (unsigned char)w;
        }
    }
    return (ssize_t)o;
}

ssize_t
pc_auth_hex_decode(unsigned char *out, size_t cap, const char *in, size_t len)
{
    if (len % 2 != 0 || len / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < len; i += 2) {
        int v = 0;
        for (size_t k = 0; k < 2; k++) {
            char c = in[i + k];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                           : -1;
            if (d < 0) {
                return -1;
            }
            v = v * 16 + d;
        }
        out[i / 2] = (unsigned char)v;
    }
    return (ssize_t)(len / 2);
}

bool
pc_auth_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* Keys. */

static void
hmac256(const unsigned char *key, size_t keylen, const void *data, size_t len,
        unsigned char out[PC_AUTH_KEY_LEN])
{
    unsigned int outlen = PC_AUTH_KEY_LEN;
    (void)HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen);
}

int
pc_auth_derive(const char *password, size_t len, const unsigned char *salt,
               size_t salt_len, uint32_t iterations, struct pc_auth_keys *out)
{
    unsigned char salted[PC_AUTH_KEY_LEN];
    unsigned char client_key[PC_AUTH_KEY_LEN];

    if (salt_len == 0 || salt_len > PC_AUTH_SALT_MAX || iterations < ITER_MIN
        || iterations > ITER_MAX || len > PC_AUTH_PASS_MAX) {
        return PC_EPROTO;
    }
    if (PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len,
                          (int)iterations, EVP_sha256(), sizeof(salted), salted)
        != 1) {
        return PC_EPROTO;
    }
    hmac256(salted, sizeof(salted), "Client Key", 10, client_key);
    (void)SHA256(client_key, sizeof(client_key), out->stored_key);
    hmac256(salted, sizeof(salted), "Server Key", 10, out->server_key);
    memcpy(out->salt, salt, salt_len);
    out->salt_len = salt_len;
    out->iterations = iterations;
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return 0;
}

/* PLAIN. */

/* Copies the field at *p, up to its NUL (the last one: to the end, with
 * no NUL allowed), into dst and steps past it. Returns its length or
 * PC_EPROTO. */
static int
plain_field(char *dst, size_t cap, const char **p, size_t *left, bool last)
{
    const char *nul = memchr(*p, '\0', *left);
    if ((nul == NULL) != last) {
        return PC_EPROTO;
    }
    size_t n = last ? *left : (size_t)(nul - *p);
    if (n >= cap) {
        return PC_EPROTO;
    }
    memcpy(dst, *p, n);
    dst[n] = '\0';
    if (!last) {
        *p += n + 1;
        *left -= n + 1;
    }
    return (int)n;
}

int
pc_auth_plain_parse(const char *msg, size_t len, struct pc_auth_plain *out)
{
    const char *p = msg;
    size_t left = len;

    if (plain_field(out->authzid, sizeof(out->authzid), &p, &left, false) < 0
        || plain_field(out->authcid, sizeof(out->authcid), &p, &left, false)
               <= 0) {
        return PC_EPROTO;
    }
    int n = plain_field(out->passwd, sizeof(out->passwd), &p, &left, true);
    if (n <= 0) {
        return PC_EPROTO;
    }
    out->passwd_len = (size_t)n;
    return 0;
}

bool
pc_auth_plain_check(const struct pc_auth_keys *keys, const char *passwd,
                    size_t len)
{
    struct pc_auth_keys got;

    if (pc_auth_derive(passwd, len, keys->salt, keys->salt_len,
                       keys->iterations, &got)
        < 0) {
        return false;
    }
    /* Both compared, always: no early exit. */
    bool ok = pc_auth_equal(got.stored_key, keys->stored_key, PC_AUTH_KEY_LEN);
    ok &= pc_auth_equal(got.server_key, keys->server_key, PC_AUTH_KEY_LEN);
    OPENSSL_cleanse(&got, sizeof(got));
    return ok;
}

/* SCRAM. */

/* Decodes a saslname ("=2C" is ',', "=3D" is '='). */
static int
saslname(char *dst, size_t cap, const char *p, size_t n)
{
    size_t o = 0;
    if (n == 0) {
        return PC_EPROTO;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '=') {
            if (i + 2 >= n) {
                return PC_EPROTO;
            }
            if (p[i + 1] == '2' && p[i + 2] == 'C') {
                c = ',';
            } else if (p[i + 1] == '3' && p[i + 2] == 'D') {
                c = '=';
            } else {
                return PC_EPROTO;
            }
            i += 2;
        } else if (c == ',' || c == '\0') {
            return PC_EPROTO;
        }
        if (o + 1 >= cap) {
            return PC_EPROTO;
        }
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

typedef struct {
    const char *v;
    size_t n;
} attr_val;

/* Splits the next ','-separated attribute "x=value" off [*p, end). */
static bool
attr_next(const char **p, const char *end, char *name, attr_val *val)
{
    if (*p >= end) {
        return false;
    }
    const char *comma = memchr(*p, ',', (size_t)(end - *p));
    const char *stop = comma ? comma : end;
    if (stop - *p < 2 || (*p)[1] != '=') {
        return false;
    }
    *name = (*p)[0];
    val->v = *p + 2;
    val->n = (size_t)(stop - *p - 2);
    *p = comma ? comma + 1 : end;
    return true;
}

static bool
printable_nonce(const char *p, size_t n)
{
    if (n == 0 || n > PC_AUTH_NONCE_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',') {
            return false;
        }
    }
    return true;
}

int
pc_scram_client_first(struct pc_scram *s, const char *msg, size_t len)
{
    const char *p = msg;
    const char *end = msg + len;
    attr_val v;
    char name;

    memset(s, 0, sizeof(*s));
    if (len == 0 || len >= PC_AUTH_MSG_MAX || memchr(msg, '\0', len)) {
        return PC_EPROTO;
    }
    /* gs2-cbind-flag: "n" or "y" (we offer no -PLUS mechanism, so a client
     * that can bind is right not to); "p=" asks for binding: refused. */
    if (len < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',') {
        return PC_EPROTO;
    }
    p += 2;
    if (p < end && *p == 'a') {
        if (!attr_next(&p, end, &name, &v) || name != 'a'
            || saslname(s->authzid, sizeof(s->authzid), v.v, v.n) < 0) {
            return PC_EPROTO;
        }
    } else if (p < end && *p == ',') {
        p++;
    } else {
        return PC_EPROTO;
    }
    s->gs2_len = (size_t)(p - msg);
    if (s->gs2_len >= sizeof(s->gs2_header)) {
        return PC_EPROTO;
    }
    memcpy(s->gs2_header, msg, s->gs2_len);
    s->gs2_header[s->gs2_len] = '\0';

    const char *bare = p;
    s->cfb_len = (size_t)(end - bare);
    memcpy(s->client_first_bare, bare, s->cfb_len);
    s->client_first_bare[s->cfb_len] = '\0';
    /* n=user,r=nonce[,extensions]; "m=" is a mandatory extension. */
    if (!attr_next(&p, end, &name, &v) || name != 'n'
        || saslname(s->user, sizeof(s->user), v.v, v.n) < 0) {
        return PC_EPROTO;
    }
    if (!attr_next(&p, end, &name, &v) || name != 'r'
        || !printable_nonce(v.v, v.n)) {
        return PC_EPROTO;
    }
    memcpy(s->nonce, v.v, v.n);
    s->nonce[v.n] = '\0';
    while (p < end) {
        if (!attr_next(&p, end, &name, &v) || name == 'm') {
            return PC_EPROTO;
        }
    }
    if (s->authzid[0] != '\0' && strcmp(s->authzid, s->user) != 0) {
        return PC_EPROTO; /* acting as another account is not offered */
    }
    s->state = PC_SCRAM_FIRST_DONE;
    return 0;
}

ssize_t
pc_scram_server_first(struct pc_scram *s, const struct pc_auth_keys *keys,
                      const char *server_nonce, char *out, size_t cap)
{
    char salt64[(PC_AUTH_SALT_MAX + 2) / 3 * 4 + 1];
    size_t cn = strlen(s->nonce);
    size_t sn = strlen(server_nonce);

    if (s->state != PC_SCRAM_FIRST_DONE || !printable_nonce(server_nonce, sn)
        || cn + sn >= sizeof(s->nonce) || keys->salt_len == 0
        || keys->salt_len > PC_AUTH_SALT_MAX) {
        return PC_EPROTO;
    }
    memcpy(s->nonce + cn, server_nonce, sn + 1);
    s->keys = *keys;
    if (pc_auth_b64_encode(salt64, sizeof(salt64), keys->salt, keys->salt_len)
        < 0) {
        return PC_EPROTO;
    }
    int n = snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%u",
                     s->nonce, salt64, (unsigned)keys->iterations);
    if (n < 0 || (size_t)n >= sizeof(s->server_first) || (size_t)n >= cap) {
        return PC_EPROTO;
    }
    s->sf_len = (size_t)n;
    memcpy(out, s->server_first, s->sf_len + 1);
    s->state = PC_SCRAM_SERVER_SENT;
    return n;
}

ssize_t
pc_scram_client_final(struct pc_scram *s, const char *msg, size_t len,
                      char *out, size_t cap)
{
    const char *p = msg;
    const char *end = msg + len;
    attr_val v;
    char name;
    unsigned char cbind[sizeof(s->gs2_header)];
    unsigned char proof[PC_AUTH_KEY_LEN + 3];
    unsigned char sig[PC_AUTH_KEY_LEN], key[PC_AUTH_KEY_LEN];
    unsigned char stored[PC_AUTH_KEY_LEN];
    char auth[3 * PC_AUTH_MSG_MAX];

    if (s->state != PC_SCRAM_SERVER_SENT) {
        return PC_EPROTO;
    }
    s->state = PC_SCRAM_DONE;
    if (len == 0 || len >= PC_AUTH_MSG_MAX || memchr(msg, '\0', len)) {
        return PC_EPROTO;
    }
    /* c=base64(gs2-header), r=nonce[,ext...],p=proof */
    if (!attr_next(&p, end, &name, &v) || name != 'c') {
        return PC_EPROTO;
    }
    ssize_t cb = pc_auth_b64_decode(cbind, sizeof(cbind), v.v, v.n);
    if (cb < 0 || (size_t)cb != s->gs2_len
        || memcmp(cbind, s->gs2_header, s->gs2_len) != 0) {
        return PC_EPROTO;
    }
    if (!attr_next(&p, end, &name, &v) || name != 'r' || v.n != strlen(s->nonce)
        || memcmp(v.v, s->nonce, v.n) != 0) {
        return PC_EPROTO;
    }
    const char *without_proof_end = NULL;
    attr_val pv = {NULL, 0};
    while (p < end) {
        const char *start = p;
        if (!attr_next(&p, end, &name, &v)) {
            return PC_EPROTO;
        }
        if (name == 'p') {
            if (p != end) {
                return PC_EPROTO; /* the proof comes last */
            }
            without_proof_end = start - 1;
            pv = v;
        } else if (name == 'm') {
            return PC_EPROTO;
        }
    }
    if (without_proof_end == NULL) {
        return PC_EPROTO;
    }
    ssize_t pl = pc_auth_b64_decode(proof, sizeof(proof), pv.v, pv.n);
    if (pl != PC_AUTH_KEY_LEN) {
        return PC_EPROTO;
    }
    /* AuthMessage = client-first-bare "," server-first ","
     *               client-final-without-proof */
    size_t wl = (size_t)(without_proof_end - msg);
    int n = snprintf(auth, sizeof(auth), "%s,%s,%.*s", s->client_first_bare,
                     s->server_first, (int)wl, msg);
    if (n < 0 || (size_t)n >= sizeof(auth)) {
        return PC_EPROTO;
    }
    hmac256(s->keys.stored_key, PC_AUTH_KEY_LEN, auth, (size_t)n, sig);
    for (size_t i = 0; i < PC_AUTH_KEY_LEN; i++) {
        key[i] = proof[i] ^ sig[i];
    }
    (void)SHA256(key, sizeof(key), stored);
    bool ok = pc_auth_equal(stored, s->keys.stored_key, PC_AUTH_KEY_LEN);
    OPENSSL_cleanse(key, sizeof(key));
    if (!ok) {
        return -EACCES;
    }
    hmac256(s->keys.server_key, PC_AUTH_KEY_LEN, auth, (size_t)n, sig);
    if (cap < 3) {
        return PC_EPROTO;
    }
    out[0] = 'v';
    out[1] = '=';
    ssize_t e = pc_auth_b64_encode(out + 2, cap - 2, sig, sizeof(sig));
    if (e < 0) {
        return PC_EPROTO;
    }
    return e + 2;
}

int
pc_auth_nonce(char *out, size_t cap)
{
    unsigned char raw[18];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return -EIO;
    }
    return pc_auth_b64_encode(out, cap, raw, sizeof(raw)) < 0 ? -EIO : 0;
}

void
pc_auth_thread_done(void)
{
    OPENSSL_thread_stop();
}
