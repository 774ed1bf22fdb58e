/* The administration API's requests, pure: the request target and the
 * body become one operation of pchat_admin_call and its arguments. No I/O;
 * fuzzed (tests/fuzz/http_route_fuzz.c). */
#include "config.h"

#include <http_parser.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define ARG_MAX    1024
#define API_PREFIX "/api/v1/"

enum body_kind {
    BODY_NONE,   /* no body expected (one is ignored) */
    BODY_FIELDS, /* the named fields, in order, as arguments */
    BODY_PAIRS,  /* every key and value, as key, value arguments */
};

struct route {
    enum http_method method;
    const char *path[5]; /* segments after /api/v1/; "*" takes an argument */
    const char *op;
    enum body_kind body;
    const char *fields[6]; /* "password": four SCRAM key arguments */
    const char *query;     /* a required query parameter, as an argument */
    int status;            /* on success */
};

static const struct route routes[] = {
    {HTTP_GET, {"accounts"}, "account_list", BODY_NONE, {NULL}, NULL, 200},
    {HTTP_POST,
     {"accounts"},
     "account_create",
     BODY_FIELDS,
     {"name", "admin", "password"},
     NULL,
     201},
    {HTTP_PATCH,
     {"accounts", "*"},
     "account_set",
     BODY_PAIRS,
     {NULL},
     NULL,
     200},
    {HTTP_PUT,
     {"accounts", "*", "password"},
     "account_set_keys",
     BODY_FIELDS,
     {"password"},
     NULL,
     200},
    {HTTP_DELETE,
     {"accounts", "*"},
     "account_delete",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_POST,
     {"accounts", "*", "certs"},
     "account_cert_add",
     BODY_FIELDS,
     {"fingerprint"},
     NULL,
     201},
    {HTTP_DELETE,
     {"accounts", "*", "certs", "*"},
     "account_cert_remove",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_GET, {"groups"}, "group_list", BODY_NONE, {NULL}, NULL, 200},
    {HTTP_POST,
     {"groups"},
     "group_create",
     BODY_FIELDS,
     {"name", "description"},
     NULL,
     201},
    {HTTP_DELETE,
     {"groups", "*"},
     "group_delete",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_POST,
     {"groups", "*", "members"},
     "group_add",
     BODY_FIELDS,
     {"account"},
     NULL,
     201},
    {HTTP_DELETE,
     {"groups", "*", "members", "*"},
     "group_remove",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_GET, {"categories"}, "category_list", BODY_NONE, {NULL}, NULL, 200},
    {HTTP_POST,
     {"categories"},
     "category_create",
     BODY_FIELDS,
     {"name", "description"},
     NULL,
     201},
    {HTTP_GET,
     {"categories", "*"},
     "category_show",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_PATCH,
     {"categories", "*"},
     "category_set",
     BODY_PAIRS,
     {NULL},
     NULL,
     200},
    {HTTP_DELETE,
     {"categories", "*"},
     "category_delete",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_POST,
     {"categories", "*", "principals"},
     "category_grant",
     BODY_FIELDS,
     {"role", "principal"},
     NULL,
     201},
    {HTTP_DELETE,
     {"categories", "*", "principals", "*", "*"},
     "category_revoke",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_GET, {"rooms"}, "room_list", BODY_NONE, {NULL}, NULL, 200},
    {HTTP_POST,
     {"rooms"},
     "room_create",
     BODY_FIELDS,
     {"name", "category", "type", "privacy", "description"},
     NULL,
     201},
    {HTTP_GET, {"rooms", "*"}, "room_show", BODY_NONE, {NULL}, NULL, 200},
    {HTTP_PATCH, {"rooms", "*"}, "room_set", BODY_PAIRS, {NULL}, NULL, 200},
    {HTTP_DELETE, {"rooms", "*"}, "room_delete", BODY_NONE, {NULL}, NULL, 200},
    {HTTP_POST,
     {"rooms", "*", "members"},
     "room_grant",
     BODY_FIELDS,
     {"role", "principal"},
     NULL,
     201},
    {HTTP_DELETE,
     {"rooms", "*", "members", "*", "*"},
     "room_revoke",
     BODY_NONE,
     {NULL},
     NULL,
     200},
    {HTTP_DELETE,
     {"rooms", "*", "messages"},
     "room_clear_history",
     BODY_NONE,
     {NULL},
     "before",
     200},
    {HTTP_DELETE,
     {"messages", "*"},
     "message_remove",
     BODY_NONE,
     {NULL},
     NULL,
     200},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
pc_http_unescape(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len) {
                return -1;
            }
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) {
            return -1;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

static int
add_arg(struct pc_http_req *req, const char *s, size_t len)
{
    if (req->nargs == PC_HTTP_MAX_ARGS) {
        return -1;
    }
    if (s == NULL) {
        req->args[req->nargs++] = NULL;
        return 0;
    }
    char *copy = strndup(s, len);
    if (copy == NULL) {
        return -1;
    }
    req->args[req->nargs++] = copy;
    return 0;
}

/* A JSON value as an argument: strings as they are, true/false, numbers
 * as text, null as NULL. Returns 0 or -1 (objects, arrays, too long). */
static int
add_json_arg(struct pc_http_req *req, json_t *v)
{
    char num[64];

    if (v == NULL || json_is_null(v)) {
        return add_arg(req, NULL, 0);
    }
    if (json_is_string(v)) {
        if (json_string_length(v) > ARG_MAX
            || strlen(json_string_value(v)) != json_string_length(v)) {
            return -1;
        }
        return add_arg(req, json_string_value(v), json_string_length(v));
    }
    if (json_is_boolean(v)) {
        return add_arg(req, json_is_true(v) ? "true" : "false",
                       json_is_true(v) ? 4 : 5);
    }
    if (json_is_integer(v)) {
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        return add_arg(req, num, (size_t)n);
    }
    return -1;
}

/* Matches the path (after the prefix) against the routes, collecting the
 * "*" segments as arguments. Returns the route, or NULL with *status set
 * (404 no such path, 405 path known but not with this method). */
static const struct route *
route_match(struct pc_http_req *req, int method, const char *path, size_t len,
            int *status)
{
    const char *seg[6];
    size_t seglen[6];
    int nseg = 0;
    size_t i = 0;

    *status = 404;
    while (i < len) {
        size_t j = i;
        while (j < len && path[j] != '/') {
            j++;
        }
        if (nseg == 6 || j == i) {
            return NULL; /* too deep, or an empty segment */
        }
        seg[nseg] = path + i;
        seglen[nseg++] = j - i;
        i = j + 1;
        if (j + 1 == len) {
            break; /* one trailing slash is tolerated */
        }
    }
    for (size_t r = 0; r < NROUTES; r++) {
        const struct route *rt = &routes[r];
        int n = 0;
        bool match = true;
        while (n < 5 && rt->path[n] != NULL) {
            n++;
        }
        if (n != nseg) {
            continue;
        }
        for (int s = 0; s < n && match; s++) {
            match = strcmp(rt->path[s], "*") == 0
                    || (strlen(rt->path[s]) == seglen[s]
                        && memcmp(rt->path[s], seg[s], seglen[s]) == 0);
        }
        if (!match) {
            continue;
        }
        if ((int)rt->method != method) {
            *status = 405;
            continue;
        }
        for (int s = 0; s < n; s++) {
            if (strcmp(rt->path[s], "*") != 0) {
                continue;
            }
            char arg[ARG_MAX + 2];
            int k = pc_http_unescape(seg[s], seglen[s], arg + 1, ARG_MAX);
            if (k < 0) {
                *status = 400;
                return NULL;
            }
            /* A room may be named without its '#' (%23) in a URL. */
            char *a = arg + 1;
            if (s == 1 && strcmp(rt->path[0], "rooms") == 0 && a[0] != '#') {
                arg[0] = '#';
                a = arg;
                k++;
            }
            if (add_arg(req, a, (size_t)k) < 0) {
                *status = 400;
                return NULL;
            }
        }
        return rt;
    }
    return NULL;
}

/* Finds name=value in a query string and unescapes it into out. */
static bool
query_param(const char *q, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && q[j] != '&') {
            j++;
        }
        if (j - i > nlen && memcmp(q + i, name, nlen) == 0
            && q[i + nlen] == '=') {
            return pc_http_unescape(q + i + nlen + 1, j - i - nlen - 1, out,
                                    cap)
                   >= 0;
        }
        i = j + 1;
    }
    return false;
}

/* The body's fields or pairs as arguments. Returns 0, or an HTTP status
 * with *why set. */
static int
body_args(struct pc_http_req *req, const struct route *rt, const char *body,
          size_t body_len, const char **why)
{
    json_error_t jerr;
    json_t *j = NULL;
    int status = 0;

    if (rt->body == BODY_NONE) {
        return 0;
    }
    if (body_len == 0) {
        *why = "a JSON object is required in the body";
        return 400;
    }
    j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        *why = "the body is not a JSON object";
        return 400;
    }
    const char *key;
    json_t *v;
    if (rt->body == BODY_PAIRS) {
        if (json_object_size(j) == 0) {
            *why = "nothing to change";
            status = 400;
        }
        json_object_foreach(j, key, v)
        {
            if (status == 0
                && (add_arg(req, key, strlen(key)) < 0
                    || add_json_arg(req, v) < 0)) {
                *why = "a value must be a string, a number, true, false or "
                       "null (and not too long), and at most 7 keys";
                status = 400;
            }
        }
        json_decref(j);
        return status;
    }
    json_object_foreach(j, key, v)
    {
        bool known = false;
        for (int f = 0; f < 6 && rt->fields[f]; f++) {
            known = known || strcmp(rt->fields[f], key) == 0;
        }
        if (!known) {
            *why = "unknown field in the body";
            json_decref(j);
            return 400;
        }
    }
    for (int f = 0; f < 6 && rt->fields[f] && status == 0; f++) {
        v = json_object_get(j, rt->fields[f]);
        if (strcmp(rt->fields[f], "password") != 0) {
            if (add_json_arg(req, v) < 0) {
                *why = "a field must be a string, a number, true, false or "
                       "null";
                status = 400;
            }
            continue;
        }
        req->key_arg = req->nargs;
        for (int k = 0; k < 4; k++) {
            (void)add_arg(req, NULL, 0);
        }
        if (v == NULL || json_is_null(v)) {
            if (strcmp(rt->op, "account_set_keys") == 0) {
                *why = "password is required";
                status = 400;
            }
            continue;
        }
        if (!json_is_string(v) || json_string_length(v) == 0
            || json_string_length(v) > PC_AUTH_PASS_MAX
            || strlen(json_string_value(v)) != json_string_length(v)) {
            *why = "password: a string of 1 to 256 bytes";
            status = 400;
            continue;
        }
        memcpy(req->pass, json_string_value(v), json_string_length(v));
        req->pass_len = json_string_length(v);
        req->derive = true;
    }
    json_decref(j);
    return status;
}

void
pc_http_req_clear(struct pc_http_req *req)
{
    for (int i = 0; i < req->nargs; i++) {
        free(req->args[i]);
        req->args[i] = NULL;
    }
    req->nargs = 0;
    req->op = NULL;
    req->status = 0;
    req->key_arg = -1;
    req->derive = false;
    explicit_bzero(req->pass, sizeof(req->pass));
    req->pass_len = 0;
}

int
pc_http_route(int method, const char *url, size_t url_len, const char *body,
              size_t body_len, struct pc_http_req *req, const char **why)
{
    struct http_parser_url u;
    int status = 0;

    pc_http_req_clear(req);
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, url_len, 0, &u) != 0
        || !(u.field_set & (1 << UF_PATH))) {
        *why = "bad request target";
        return 400;
    }
    const char *path = url + u.field_data[UF_PATH].off;
    size_t plen = u.field_data[UF_PATH].len;
    size_t pre = strlen(API_PREFIX);
    if (plen <= pre || memcmp(path, API_PREFIX, pre) != 0) {
        *why = "no such endpoint (the API is under /api/v1/)";
        return 404;
    }
    const struct route *rt =
        route_match(req, method, path + pre, plen - pre, &status);
    if (rt == NULL) {
        *why = status == 405   ? "method not allowed here"
               : status == 400 ? "bad escape in the path"
                               : "no such endpoint";
        return status;
    }
    req->op = rt->op;
    req->status = rt->status;
    if (rt->query != NULL) {
        char value[ARG_MAX + 1];
        bool found = (u.field_set & (1 << UF_QUERY))
                     && query_param(url + u.field_data[UF_QUERY].off,
                                    u.field_data[UF_QUERY].len, rt->query,
                                    value, sizeof(value));
        if (!found || add_arg(req, value, strlen(value)) < 0) {
            *why = "the before= query parameter (a date) is required";
            return 400;
        }
    }
    return body_args(req, rt, body, body_len, why);
}
