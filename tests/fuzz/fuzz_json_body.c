/* Fuzzes a whole POST through the real request path (sess__request_handle, a
 * route calling sess_body) as plain CGI: the body arrives on fd 0, and the
 * first input byte chooses the request around it. The answer must be the one
 * sess.h promises for that request (200, or 400, 403, 413, 415 with the
 * reason the request gives), a 200 must echo exactly what the body holds, and
 * no header may carry a control byte.
 *
 * First byte, bit by bit:
 *   0-1  Content-Type: application/json, x-www-form-urlencoded,
 *        "Application/JSON ; charset=utf-8", text/plain (415)
 *   2-4  Content-Length: 0-2 exact, 3 one byte more than sent (truncated),
 *        4 absent, 5 "1x", 6 max_body + 1, 7 past SIZE_MAX
 *   5    send the cookie of a stored session (else the pre-session cookie
 *        the token without a session is bound to)
 *   6    forms: start the body with the right csrf field
 *   7    Origin of another site (403) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "fuzz_app.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY 4096 /* small, so the fuzzer meets the limit */

enum { TYPE_JSON, TYPE_FORM, TYPE_JSON_PARAMS, TYPE_OTHER };
enum { LEN_EXACT_MAX = 2, LEN_SHORT, LEN_ABSENT, LEN_GARBAGE, LEN_OVER_MAX, LEN_OVERFLOW };

static const char *const content_types[] = {
    "application/json",
    "application/x-www-form-urlencoded",
    "Application/JSON ; charset=utf-8",
    "text/plain",
};

static struct {
    struct fuzz_app fa;
    int body_fd;                      /* a memfd dup'd onto fd 0 */
    char cookie[SESS_COOKIE_MAX_LEN]; /* "HTTP_COOKIE=sid=..." of the stored session */
    char pre_cookie[256];             /* "HTTP_COOKIE=sid.csrf=..." it is bound to */
    char token_none[64];              /* csrf field without a session */
    char token_session[64];           /* csrf field of the stored session */
    struct sess_request req;
    char *body;
    size_t body_cap;
} g;

/* Stores a session so that bit 5 has something to load. */
static void
route_login(struct sess_request *req)
{
    CHECK(sess_set(req, "user", json_pack("{s:s}", "username", "fuzz")) == SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_token(struct sess_request *req)
{
    json_t *body = json_pack("{s:s}", "csrf", sess_csrf_token(req));
    sess_send_json(req, 200, body);
}

static void
route_echo(struct sess_request *req)
{
    json_t *body = sess_body(req);

    if (body)
        sess_send_json(req, 200, json_deep_copy(body));
}

static void
take_token(char out[64])
{
    json_error_t jerr;
    json_t *resp = json_loadb(g.req.out.ptr, g.req.out.len, 0, &jerr);
    const char *t = json_string_value(json_object_get(resp, "csrf"));

    CHECK(t != NULL && strlen(t) < 64);
    memcpy(out, t, strlen(t) + 1);
    json_decref(resp);
}

static void
cleanup(void)
{
    sess__request_reset(&g.req);
    sess__buf_free(&g.req.headers);
    sess__buf_free(&g.req.out);
    free(g.body);
    fuzz_app_close(&g.fa);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *get_env[] = {"REQUEST_METHOD=GET", "HTTP_HOST=localhost", NULL, NULL};
    char extra[64];
    const char *set_cookie, *end;

    (void)argc;
    (void)argv;
    snprintf(extra, sizeof extra, "max_body = %d\n", MAX_BODY);
    fuzz_app_open(&g.fa, extra);
    g.body_fd = memfd_create("fuzz_json_body", MFD_CLOEXEC);
    CHECK(g.body_fd >= 0);
    CHECK(dup2(g.body_fd, STDIN_FILENO) == STDIN_FILENO);

    fuzz_request(&g.req, g.fa.app, get_env, route_login);
    CHECK(g.req.status == 200);
    set_cookie = memmem(g.req.headers.ptr, g.req.headers.len, "Set-Cookie: ", 12);
    CHECK(set_cookie != NULL);
    set_cookie += 12;
    end = memchr(set_cookie, ';', g.req.headers.len - (size_t)(set_cookie - g.req.headers.ptr));
    CHECK(end != NULL && (size_t)(end - set_cookie) + 13 < sizeof g.cookie);
    snprintf(g.cookie, sizeof g.cookie, "HTTP_COOKIE=%.*s", (int)(end - set_cookie), set_cookie);

    fuzz_request(&g.req, g.fa.app, get_env, route_token);
    take_token(g.token_none);
    set_cookie = memmem(g.req.headers.ptr, g.req.headers.len, "Set-Cookie: sid.csrf=", 21);
    CHECK(set_cookie != NULL);
    set_cookie += 12;
    end = memchr(set_cookie, ';', g.req.headers.len - (size_t)(set_cookie - g.req.headers.ptr));
    CHECK(end != NULL && (size_t)(end - set_cookie) + 13 < sizeof g.pre_cookie);
    snprintf(g.pre_cookie, sizeof g.pre_cookie, "HTTP_COOKIE=%.*s", (int)(end - set_cookie),
             set_cookie);
    get_env[2] = g.cookie;
    fuzz_request(&g.req, g.fa.app, get_env, route_token);
    take_token(g.token_session);
    CHECK(strcmp(g.token_none, g.token_session) != 0);
    atexit(cleanup);
    return 0;
}

static void
set_body(const char *data, size_t size)
{
    CHECK(ftruncate(g.body_fd, 0) == 0);
    CHECK(size == 0 || pwrite(g.body_fd, data, size, 0) == (ssize_t)size);
    CHECK(lseek(g.body_fd, 0, SEEK_SET) == 0);
}

/* Decided before the body is read, in sess_body's order: Origin, then
 * Content-Type, then the declared length. 0 when the body decides. */
static int
status_before_body(int type, int len_mode, bool is_cross_site, size_t declared)
{
    if (is_cross_site)
        return 403;
    if (type == TYPE_OTHER)
        return 415;
    if (len_mode == LEN_OVERFLOW || declared > MAX_BODY)
        return 413;
    if (len_mode == LEN_GARBAGE || len_mode == LEN_SHORT)
        return 400;
    return 0;
}

/* The body was read whole: its bytes decide. */
static void
check_body_answer(bool is_form, bool has_session, bool has_csrf, const char *body, size_t len)
{
    int status = g.req.status;
    json_error_t jerr;
    json_t *want = NULL, *got;

    if (!fuzz_is_utf8(body, len)) {
        CHECK(status == 400);
        return;
    }
    if (is_form) {
        enum sess_err err = sess_form_parse((struct sess_str){body, len}, &want);
        if (err == SESS_ETOOBIG) {
            CHECK(status == 413);
        } else if (err != SESS_OK) {
            CHECK(status == 400);
        } else {
            /* Only the token of this request's session passes, and the
             * fuzzer cannot make one: it is there when bit 6 put it. */
            const char *token = json_string_value(json_object_get(want, "csrf"));
            bool is_valid = token && has_csrf &&
                            strcmp(token, has_session ? g.token_session : g.token_none) == 0;
            CHECK(status == (is_valid ? 200 : 403));
        }
    } else {
        want = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        CHECK(status == (json_is_object(want) ? 200 : 400));
    }
    if (status == 200) {
        /* Form values may hold NULs, which JSON carries as \u0000. */
        got = json_loadb(g.req.out.ptr, g.req.out.len, JSON_ALLOW_NUL, &jerr);
        CHECK(got != NULL);
        CHECK(json_equal(got, want));
        json_decref(got);
    }
    json_decref(want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char type_env[64], len_env[64];
    char *envp[8];
    size_t n = 0, len, declared;
    uint8_t flags = size > 0 ? data[0] : 0;
    int type = flags & 3, len_mode = (flags >> 2) & 7, want;
    bool has_session = flags & 0x20, has_csrf = (flags & 0x40) && type == TYPE_FORM;
    bool is_cross_site = flags & 0x80;
    static const char csrf_field[] = "csrf=";

    if (size > 0) {
        data++;
        size--;
    }
    /* The body: the csrf field first when asked for, then the input. */
    len = size + (has_csrf ? sizeof csrf_field + sizeof g.token_none : 0);
    if (len + 1 > g.body_cap) {
        char *p = realloc(g.body, len + 1);
        CHECK(p != NULL);
        g.body = p;
        g.body_cap = len + 1;
    }
    len = 0;
    if (has_csrf)
        len = (size_t)snprintf(g.body, g.body_cap, "%s%s&", csrf_field,
                               has_session ? g.token_session : g.token_none);
    if (size > 0)
        memcpy(g.body + len, data, size);
    len += size;
    set_body(g.body, len);

    envp[n++] = "REQUEST_METHOD=POST";
    envp[n++] = "HTTP_HOST=localhost";
    snprintf(type_env, sizeof type_env, "CONTENT_TYPE=%s", content_types[type]);
    envp[n++] = type_env;
    declared = len;
    switch (len_mode) {
    case LEN_SHORT:
        declared = len + 1;
        snprintf(len_env, sizeof len_env, "CONTENT_LENGTH=%zu", declared);
        break;
    case LEN_ABSENT:
        /* No length is an empty body: no JSON, and a form without its
         * token. */
        declared = 0;
        len = 0;
        len_env[0] = '\0';
        break;
    case LEN_GARBAGE:
        snprintf(len_env, sizeof len_env, "CONTENT_LENGTH=1x");
        break;
    case LEN_OVER_MAX:
        declared = MAX_BODY + 1;
        snprintf(len_env, sizeof len_env, "CONTENT_LENGTH=%zu", declared);
        break;
    case LEN_OVERFLOW:
        snprintf(len_env, sizeof len_env, "CONTENT_LENGTH=%zu0", SIZE_MAX);
        break;
    default:
        snprintf(len_env, sizeof len_env, "CONTENT_LENGTH=%zu", len);
        break;
    }
    if (len_env[0])
        envp[n++] = len_env;
    envp[n++] = has_session ? g.cookie : g.pre_cookie;
    if (is_cross_site)
        envp[n++] = "HTTP_ORIGIN=http://evil.example";
    envp[n] = NULL;

    fuzz_request(&g.req, g.fa.app, envp, route_echo);

    CHECK(g.req.is_answered);
    CHECK(fuzz_headers_are_clean(&g.req.headers));
    want = status_before_body(type, len_mode, is_cross_site, declared);
    if (want != 0)
        CHECK(g.req.status == want);
    else
        check_body_answer(type == TYPE_FORM, has_session, has_csrf, g.body, len);
    sess__request_reset(&g.req);
    return 0;
}
