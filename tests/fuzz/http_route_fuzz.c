/* libFuzzer target: the administration API's routing (http/route.c).
 * Input: the first byte picks the method (GET, POST, PUT, PATCH, DELETE
 * or any other), then the request target up to the first NUL, then the
 * body. Invariants: a routed request has an operation, a success status of
 * 200 or 201, at most PC_HTTP_MAX_ARGS arguments, each NUL-terminated
 * within 1 KiB; the password's four key slots, when reserved, are inside
 * the arguments and still NULL; a refusal is 400, 404 or 405 with a
 * reason; clearing leaves nothing behind. */
#include "config.h"

#include <http_parser.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "http/http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int methods[] = {HTTP_GET,   HTTP_POST,   HTTP_PUT,
                                  HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS};
    struct pc_http_req req;
    const char *why = NULL;

    if (size < 1) {
        return 0;
    }
    int method = methods[data[0] % 6];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    const char *nul = memchr(in, '\0', len);
    size_t url_len = nul ? (size_t)(nul - in) : len;
    const char *body = nul ? nul + 1 : "";
    size_t body_len = nul ? len - url_len - 1 : 0;

    memset(&req, 0, sizeof(req));
    int status = pc_http_route(method, in, url_len, body, body_len, &req, &why);
    if (status == 0) {
        fuzz_check(req.op != NULL && (req.status == 200 || req.status == 201));
        fuzz_check(req.nargs >= 0 && req.nargs <= PC_HTTP_MAX_ARGS);
        for (int i = 0; i < req.nargs; i++) {
            fuzz_check(req.args[i] == NULL || strlen(req.args[i]) <= 1025);
        }
        if (req.key_arg >= 0) {
            fuzz_check(req.key_arg + 4 <= req.nargs);
            for (int i = 0; i < 4; i++) {
                fuzz_check(req.args[req.key_arg + i] == NULL);
            }
        }
        fuzz_check(!req.derive
                   || (req.pass_len > 0 && req.pass_len <= PC_AUTH_PASS_MAX
                       && req.key_arg >= 0));
    } else {
        fuzz_check((status == 400 || status == 404 || status == 405)
                   && why != NULL);
    }
    pc_http_req_clear(&req);
    fuzz_check(req.nargs == 0 && req.pass_len == 0);
    /* The unescaper alone: output never longer than its input. */
    char out[256];
    int n = pc_http_unescape(in, url_len, out, sizeof(out));
    fuzz_check(n < 0 || ((size_t)n <= url_len && strlen(out) == (size_t)n));
    return 0;
}
