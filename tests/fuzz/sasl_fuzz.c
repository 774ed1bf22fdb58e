/* libFuzzer target: what a SASL client sends (auth/).
 * The first byte picks the parser, the rest is the message:
 *   0  SCRAM client-first, then (if it parsed) server-first with fixed
 *      keys, then the bytes after the first NUL as client-final;
 *   1  PLAIN;
 *   2  base64 and hex decoding.
 * Invariants: nothing reads or writes out of bounds; a parsed PLAIN
 * message has a non-empty authcid and password without NUL; a parsed
 * client-first has a user and the gs2 header is a prefix of the input; a
 * client-final without the exchange's nonce never succeeds; base64 that
 * decodes re-encodes to the same text (only canonical input is accepted). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "auth/auth.h"
#include "fuzz.h"
#include "util/err.h"

#define MAX_IN 4096

static void
fuzz_scram(const char *in, size_t size)
{
    static struct pc_scram s;
    static struct pc_auth_keys keys;
    static char out[PC_AUTH_MSG_MAX];
    const char *nul = memchr(in, '\0', size);
    size_t first = nul ? (size_t)(nul - in) : size;

    if (keys.salt_len == 0) {
        static const unsigned char salt[16] = "0123456789abcdef";
        /* One iteration: the fuzzer explores parsing, not PBKDF2. */
        fuzz_check(pc_auth_derive("pencil", 6, salt, sizeof(salt), 1, &keys)
                   == 0);
    }
    if (pc_scram_client_first(&s, in, first) != 0) {
        return;
    }
    fuzz_check(s.user[0] != '\0' && s.gs2_len <= first
               && memcmp(s.gs2_header, in, s.gs2_len) == 0);
    ssize_t n =
        pc_scram_server_first(&s, &keys, "SERVERNONCE", out, sizeof(out));
    if (n < 0) {
        return;
    }
    fuzz_check((size_t)n == strlen(out) && strstr(out, "SERVERNONCE"));
    if (nul == NULL) {
        return;
    }
    const char *fin = nul + 1;
    size_t flen = size - first - 1;
    ssize_t r = pc_scram_client_final(&s, fin, flen, out, sizeof(out));
    fuzz_check(r == PC_EPROTO || r == -EACCES || r > 2);
    if (r > 0) {
        /* Success needs the whole nonce, ours included. */
        fuzz_check(memmem(fin, flen, "SERVERNONCE", 11) != NULL);
        fuzz_check(out[0] == 'v' && out[1] == '=');
    }
    /* Never twice. */
    fuzz_check(pc_scram_client_final(&s, fin, flen, out, sizeof(out))
               == PC_EPROTO);
}

static void
fuzz_plain(const char *in, size_t size)
{
    static struct pc_auth_plain p;
    if (pc_auth_plain_parse(in, size, &p) != 0) {
        return;
    }
    fuzz_check(p.authcid[0] != '\0' && p.passwd_len > 0
               && p.passwd_len == strlen(p.passwd));
    fuzz_check(strlen(p.authzid) + strlen(p.authcid) + p.passwd_len + 2
               == size);
}

static void
fuzz_b64(const char *in, size_t size)
{
    static unsigned char raw[MAX_IN];
    static char back[2 * MAX_IN];

    ssize_t n = pc_auth_b64_decode(raw, sizeof(raw), in, size);
    if (n >= 0) {
        ssize_t e = pc_auth_b64_encode(back, sizeof(back), raw, (size_t)n);
        fuzz_check(e == (ssize_t)size && memcmp(back, in, size) == 0);
    }
    n = pc_auth_hex_decode(raw, sizeof(raw), in, size);
    fuzz_check(n < 0 || (size_t)n * 2 == size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_IN) {
        return 0;
    }
    const char *in = (const char *)data + 1;
    size--;
    switch (data[0] % 3) {
    case 0:
        fuzz_scram(in, size);
        break;
    case 1:
        fuzz_plain(in, size);
        break;
    default:
        fuzz_b64(in, size);
        break;
    }
    return 0;
}
