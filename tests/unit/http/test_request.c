/* Requests: form parsing, bodies and their refusals (400, 403, 405, 413,
 * 415), CSRF tokens, the Origin check, parameters and response bytes, driven
 * as plain CGI requests through the real request path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

/* ------------------------------------------------------------------------
 * sess_form_parse
 * ------------------------------------------------------------------------ */

struct form_case {
    const char *in;
    enum sess_err err;
    const char *key, *value; /* one field to check when err is SESS_OK */
};

static void
test_form_parse_table(void **state)
{
    static const struct form_case cases[] = {
        {"username=alice&password=wonderland", SESS_OK, "username", "alice"},
        {"a=1&a=2", SESS_OK, "a", "1"}, /* the first of repeated names wins */
        {"q=hello+world", SESS_OK, "q", "hello world"},
        {"q=%41%42%43", SESS_OK, "q", "ABC"},
        {"q=caf%C3%A9", SESS_OK, "q", "caf\xc3\xa9"},
        {"flag", SESS_OK, "flag", ""},
        {"&&a=1&&", SESS_OK, "a", "1"},
        {"username%5B%5D=x", SESS_OK, "username[]", "x"},
        {"q=%zz", SESS_EBADINPUT, NULL, NULL},
        {"q=%4", SESS_EBADINPUT, NULL, NULL},
        {"q=%FF", SESS_EBADINPUT, NULL, NULL},       /* invalid UTF-8 */
        {"q=%C0%AF", SESS_EBADINPUT, NULL, NULL},    /* overlong */
        {"q=%ED%A0%80", SESS_EBADINPUT, NULL, NULL}, /* surrogate */
        {"k%00=v", SESS_EBADINPUT, NULL, NULL},      /* NUL in a name */
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *form = NULL;
        enum sess_err err = sess_form_parse(sess_str_c(cases[i].in), &form);
        if (err != cases[i].err)
            fail_msg("case %zu (%s): got %d, want %d", i, cases[i].in, err, cases[i].err);
        if (err == SESS_OK) {
            json_t *v = json_object_get(form, cases[i].key);
            assert_non_null(v);
            assert_string_equal(json_string_value(v), cases[i].value);
        }
        json_decref(form);
    }
}

static void
test_form_parse_keeps_nul_inside_values(void **state)
{
    json_t *form = NULL;
    json_t *v;
    (void)state;
    assert_int_equal(sess_form_parse(SESS_STR_LIT("username=alice%00x"), &form), SESS_OK);
    v = json_object_get(form, "username");
    assert_int_equal(json_string_length(v), 7);
    json_decref(form);
}

static void
test_form_parse_refuses_more_than_100_fields(void **state)
{
    char buf[2048] = "";
    json_t *form = NULL;
    (void)state;
    for (int i = 0; i < 101; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "k%d=v&", i);
    assert_int_equal(sess_form_parse(sess_str_c(buf), &form), SESS_ETOOBIG);
    assert_null(form);
}

/* ------------------------------------------------------------------------
 * Bodies through a route
 * ------------------------------------------------------------------------ */

static void
route_echo_body(struct sess_request *req)
{
    json_t *body;
    if (!sess_allow(req, "GET, POST"))
        return;
    if (sess_is_method(req, "GET")) {
        sess_send_json(req, 200, json_pack("{s:s}", "csrf", sess_csrf_token(req)));
        return;
    }
    body = sess_body(req);
    if (!body)
        return;
    sess_send_json(req, 200, json_deep_copy(body));
}

static void
post(struct fixture *f, struct client *c, const char *type, const char *body)
{
    f->method = "POST";
    f->content_type = type;
    f->body = body;
    fixture_get(f, c, route_echo_body);
    f->method = NULL;
    f->content_type = NULL;
    f->body = NULL;
}

static void
test_json_body_is_parsed(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/json", "{\"a\":1}");
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "{\"a\":1}\n");
    client_free(&c);
}

static void
test_json_with_charset_parameter_is_json(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/json; charset=utf-8", "{}");
    assert_int_equal(c.status, 200);
    client_free(&c);
}

static void
test_invalid_json_is_400(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/json", "{\"a\":");
    assert_int_equal(c.status, 400);
    assert_non_null(strstr(c.body, "Invalid JSON"));
    client_free(&c);
}

static void
test_json_array_body_is_400(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/json", "[1,2]");
    assert_int_equal(c.status, 400);
    client_free(&c);
}

static void
test_invalid_utf8_json_is_400(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/json", "{\"a\":\"\xff\"}");
    assert_int_equal(c.status, 400);
    assert_non_null(strstr(c.body, "UTF-8"));
    client_free(&c);
}

static void
test_deeply_nested_json_is_400(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    char *deep = malloc(10003);
    assert_non_null(deep);
    deep[0] = '{';
    deep[1] = '"';
    deep[2] = 'a';
    deep[3] = '"';
    deep[4] = ':';
    memset(deep + 5, '[', 5000);
    deep[5005] = '\0';
    post(f, &c, "application/json", deep);
    assert_int_equal(c.status, 400);
    free(deep);
    client_free(&c);
}

static void
test_text_plain_is_415(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "text/plain", "hello");
    assert_int_equal(c.status, 415);
    client_free(&c);
}

static void
test_json_lookalike_type_is_415(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/jsonx", "{}");
    assert_int_equal(c.status, 415);
    client_free(&c);
}

static void
test_body_over_max_body_is_413(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    char *big = malloc(16386);
    assert_non_null(big);
    memset(big, 'a', 16385);
    big[0] = '{';
    big[16385] = '\0';
    post(f, &c, "application/json", big);
    assert_int_equal(c.status, 413);
    free(big);
    client_free(&c);
}

static void
test_form_without_csrf_is_403(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/x-www-form-urlencoded", "theme=dark");
    assert_int_equal(c.status, 403);
    assert_non_null(strstr(c.body, "CSRF"));
    client_free(&c);
}

static void
test_form_with_wrong_csrf_is_403(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    post(f, &c, "application/x-www-form-urlencoded",
         "theme=dark&csrf=mz1abc.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(c.status, 403);
    post(f, &c, "application/x-www-form-urlencoded", "theme=dark&csrf=not-a-token");
    assert_int_equal(c.status, 403);
    assert_non_null(strstr(c.body, "Invalid CSRF token"));
    client_free(&c);
}

/* Takes the token a GET hands out, for a POST by the same client. */
static char *
fetch_token(struct fixture *f, struct client *c)
{
    json_t *j;
    char *token;
    fixture_get(f, c, route_echo_body);
    j = json_loads(c->body, 0, NULL);
    assert_non_null(j);
    token = strdup(json_string_value(json_object_get(j, "csrf")));
    json_decref(j);
    return token;
}

static void
test_form_with_valid_csrf_is_accepted(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    char body[200];
    char *token = fetch_token(f, &c);
    snprintf(body, sizeof body, "theme=dark&csrf=%s", token);
    post(f, &c, "application/x-www-form-urlencoded", body);
    assert_int_equal(c.status, 200);
    assert_non_null(strstr(c.body, "\"theme\":\"dark\""));
    free(token);
    client_free(&c);
}

static void
test_csrf_token_expires_after_two_hours(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    char body[200];
    char *token = fetch_token(f, &c);
    f->now_ms += SESS_CSRF_TTL_MS + 1000;
    snprintf(body, sizeof body, "theme=dark&csrf=%s", token);
    post(f, &c, "application/x-www-form-urlencoded", body);
    assert_int_equal(c.status, 403);
    /* Something a user can act on, not "invalid". */
    assert_non_null(strstr(c.body, "This form has expired; reload the page"));
    free(token);
    client_free(&c);
}

/* A new secret goes first in secret_file; a form shown before the change
 * carries a token made under what is now the second secret, and still
 * posts, as its cookie still verifies. */
static void
test_csrf_token_made_under_the_second_secret_verifies(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    char body[200], path[256];
    char *token = fetch_token(f, &c);
    FILE *fp;

    snprintf(path, sizeof path, "%s/secret", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("a brand-new secret, also well over thirty-two bytes\n"
          "a test secret of well over thirty-two bytes\n",
          fp);
    assert_int_equal(fclose(fp), 0);
    fixture_reopen(f, "");
    snprintf(body, sizeof body, "theme=dark&csrf=%s", token);
    post(f, &c, "application/x-www-form-urlencoded", body);
    assert_int_equal(c.status, 200);
    /* A secret no longer listed verifies nothing. */
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("a brand-new secret, also well over thirty-two bytes\n", fp);
    assert_int_equal(fclose(fp), 0);
    fixture_reopen(f, "");
    post(f, &c, "application/x-www-form-urlencoded", body);
    assert_int_equal(c.status, 403);
    free(token);
    client_free(&c);
}

static void
route_starts_session(struct sess_request *req)
{
    sess_send_json(req, 200, json_pack("{s:i}", "set", sess_set(req, "views", json_integer(1))));
}

/* The session id inside a client's cookie value "s%3AID.SIG". */
static void
id_of(const struct client *c, char out[SESS_ID_MAX_LEN + 1])
{
    const char *v = c->cookie + strlen("s%3A");
    snprintf(out, SESS_ID_MAX_LEN + 1, "%.*s", (int)strcspn(v, "."), v);
}

/* A token a 0.1 process handed out just before the upgrade, in the session
 * the form was shown in: TIME.MAC under 0.1's key, HMAC-SHA256(secret,
 * "fcgi-session csrf"), over TIME "|" ID. Without a session ("" as ID)
 * such a token would be good in any browser, and is refused. */
static void
test_csrf_token_of_the_previous_release_verifies(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    unsigned char key[32], mac[32];
    char time36[16], b64[48], body[200], id[SESS_ID_MAX_LEN + 1];
    crypto_auth_hmacsha256_state st;
    uint64_t t = (uint64_t)f->now_ms;
    size_t n = 0;

    fixture_get(f, &c, route_starts_session);
    assert_non_null(c.cookie);
    id_of(&c, id);
    do {
        memmove(time36 + 1, time36, n++);
        time36[0] = "0123456789abcdefghijklmnopqrstuvwxyz"[t % 36];
        t /= 36;
    } while (t);
    time36[n] = '\0';
    sess__derive_key_legacy(&f->app->secrets, 0, "csrf", key);
    crypto_auth_hmacsha256_init(&st, key, sizeof key);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)time36, n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"|", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(body, sizeof body, "theme=dark&csrf=%s.%s", time36, b64);
    post(f, &c, "application/x-www-form-urlencoded", body);
    assert_int_equal(c.status, 200);

    /* The same, bound to no session. */
    crypto_auth_hmacsha256_init(&st, key, sizeof key);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)time36, n);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"|", 1);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(body, sizeof body, "theme=dark&csrf=%s.%s", time36, b64);
    free(c.cookie);
    c.cookie = NULL;
    post(f, &c, "application/x-www-form-urlencoded", body);
    assert_int_equal(c.status, 403);
    client_free(&c);
}

/* Login CSRF: without a session, a token is bound to the browser's
 * pre-session cookie. One fetched by another client (an attacker, for
 * his victim's browser) is refused; so is one without the cookie. */
static void
test_csrf_token_without_session_is_bound_to_the_browser(void **state)
{
    struct fixture *f = *state;
    struct client attacker = {0}, victim = {0};
    char body[200];
    char *token = fetch_token(f, &attacker), *victim_token;

    assert_non_null(attacker.csrf_cookie);
    snprintf(body, sizeof body, "theme=dark&csrf=%s", token);
    post(f, &victim, "application/x-www-form-urlencoded", body);
    assert_int_equal(victim.status, 403);
    /* The victim's own cookie does not make the attacker's token good. */
    victim_token = fetch_token(f, &victim);
    assert_non_null(victim.csrf_cookie);
    assert_string_not_equal(victim.csrf_cookie, attacker.csrf_cookie);
    post(f, &victim, "application/x-www-form-urlencoded", body);
    assert_int_equal(victim.status, 403);
    /* The owner's cookie does. */
    post(f, &attacker, "application/x-www-form-urlencoded", body);
    assert_int_equal(attacker.status, 200);
    snprintf(body, sizeof body, "theme=dark&csrf=%s", victim_token);
    post(f, &victim, "application/x-www-form-urlencoded", body);
    assert_int_equal(victim.status, 200);
    free(token);
    free(victim_token);
    client_free(&attacker);
    client_free(&victim);
}

/* The pre-session cookie: HttpOnly, SameSite=Lax, Path=/, sent once; a
 * token fetched again with it reuses it, so no second Set-Cookie. */
static void
test_pre_session_cookie_attributes(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request req;
    const char *tok;
    char *h;

    fixture_begin(f, &c, &req);
    tok = sess_csrf_token(&req);
    assert_non_null(tok);
    h = strndup(req.headers.ptr, req.headers.len);
    assert_non_null(strstr(h, "Set-Cookie: sid.csrf="));
    assert_non_null(strstr(h, "; Path=/"));
    assert_non_null(strstr(h, "; HttpOnly"));
    assert_non_null(strstr(h, "; SameSite=Lax"));
    assert_null(strstr(h, "; Secure"));
    assert_non_null(strstr(h, "; Max-Age=14400"));
    free(h);
    /* A second token in the same request sets nothing more. */
    size_t before = req.headers.len;
    (void)sess_csrf_token(&req);
    assert_int_equal(req.headers.len, before);
    fixture_end(&req);
    free(fetch_token(f, &c));
    assert_non_null(c.csrf_cookie);
    fixture_begin(f, &c, &req);
    (void)sess_csrf_token(&req);
    assert_int_equal(req.headers.len, 0);
    fixture_end(&req);
    client_free(&c);
}

static void
test_foreign_origin_is_403_even_for_json(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    f->origin = "http://evil.example";
    post(f, &c, "application/json", "{}");
    assert_int_equal(c.status, 403);
    f->origin = "null";
    post(f, &c, "application/json", "{}");
    assert_int_equal(c.status, 403);
    f->origin = NULL;
    client_free(&c);
}

static void
test_same_origin_is_accepted(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    f->origin = "http://localhost";
    post(f, &c, "application/json", "{}");
    assert_int_equal(c.status, 200);
    f->origin = NULL;
    client_free(&c);
}

static void
test_wrong_method_is_405_with_allow(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request req;
    f->method = "PUT";
    fixture_get(f, &c, route_echo_body);
    assert_int_equal(c.status, 405);
    f->method = NULL;
    /* The Allow header went out with the 405. */
    fixture_begin(f, &c, &req);
    assert_false(sess_allow(&req, "DELETE"));
    assert_non_null(memmem(req.headers.ptr, req.headers.len, "Allow: DELETE\r\n", 15));
    fixture_end(&req);
    client_free(&c);
}

static void
test_header_refuses_crlf(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request req;
    fixture_begin(f, &c, &req);
    assert_int_equal(sess_header(&req, "X-Test", "a\r\nSet-Cookie: x=1"), SESS_EBADINPUT);
    assert_int_equal(sess_header(&req, "X Test", "a"), SESS_EBADINPUT);
    assert_int_equal(sess_header(&req, "X-Test", "fine\tvalue"), SESS_OK);
    fixture_end(&req);
    client_free(&c);
}

static void
test_httpoxy_params_are_never_returned(void **state)
{
    char *envp[] = {"HTTP_PROXY=http://evil:1", "HTTP_SESSION=x", "HTTP_HOST=h", NULL};
    struct sess_request req;
    (void)state;
    memset(&req, 0, sizeof req);
    req.envp = envp;
    assert_null(sess_param(&req, "HTTP_PROXY"));
    assert_null(sess_param(&req, "HTTP_SESSION"));
    assert_string_equal(sess_param(&req, "HTTP_HOST"), "h");
}

static void
test_wants_json_from_accept_or_content_type(void **state)
{
    char *a[] = {"HTTP_ACCEPT=text/html, application/json;q=0.9", NULL};
    char *b[] = {"CONTENT_TYPE=application/json", NULL};
    char *c[] = {"HTTP_ACCEPT=text/html", NULL};
    struct sess_request req;
    (void)state;
    memset(&req, 0, sizeof req);
    req.envp = a;
    assert_true(sess_wants_json(&req));
    req.envp = b;
    assert_true(sess_wants_json(&req));
    req.envp = c;
    assert_false(sess_wants_json(&req));
}

/* Targets a browser would resolve to another host (the URL parser strips
 * TAB, CR, LF and leading spaces and controls, reads '\\' as '/'), or
 * that name a scheme. */
static const char *const off_site[] = {
    "//evil.example/",
    "/\t/evil.example",
    "/\r/evil.example",
    "/\n/evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/x\\..\\..",
    "https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    " /evil",
    " //evil.example",
    "\t//evil.example",
    "/\x01/evil.example",
    "/\x7f",
    "evil.example",
    "",
    "/ok\r\nSet-Cookie: x=1",
};
static size_t off_site_i;

static void
route_redirects_off_site(struct sess_request *req)
{
    sess_redirect(req, off_site[off_site_i]);
}

static void
test_redirect_refuses_other_sites(void **state)
{
    struct fixture *f = *state;

    for (off_site_i = 0; off_site_i < sizeof off_site / sizeof off_site[0]; off_site_i++) {
        struct client c = {0};

        assert_false(sess_redirect_is_local(off_site[off_site_i]));
        fixture_get(f, &c, route_redirects_off_site);
        if (c.status != 500)
            fail_msg("target %zu answered %d", off_site_i, c.status);
        client_free(&c);
    }
}

static void
test_redirect_accepts_paths_of_this_site(void **state)
{
    static const char *const local[] = {"/",           "/dashboard",   "/a/b?c=d#e",
                                        "/%2F%2Fevil", "/caf\xc3\xa9", "/a//b"};

    (void)state;
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (!sess_redirect_is_local(local[i]))
            fail_msg("%s refused", local[i]);
    assert_false(sess_redirect_is_local(NULL));
}

static void
route_silent(struct sess_request *req)
{
    (void)req;
}

static void
test_route_without_answer_gets_500(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_get(f, &c, route_silent);
    assert_int_equal(c.status, 500);
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * What goes on the wire
 * ------------------------------------------------------------------------ */

/* One request through `route` as the request loop runs it, returning every
 * byte written to the client (malloc'd, `*len` of them). */
static char *
wire(struct fixture *f, const char *method, sess_route_fn route, size_t *len)
{
    char method_env[32];
    char *envp[] = {method_env, "REMOTE_ADDR=127.0.0.1", "HTTP_HOST=localhost", NULL};
    struct sess_request req;
    char *out = NULL;

    snprintf(method_env, sizeof method_env, "REQUEST_METHOD=%s", method);
    memset(&req, 0, sizeof req);
    req.app = f->app;
    req.envp = envp;
    req.cgi_out = open_memstream(&out, len);
    assert_non_null(req.cgi_out);
    sess__request_handle(&req, route);
    sess__request_reset(&req);
    sess__buf_free(&req.headers);
    sess__buf_free(&req.out);
    assert_int_equal(fclose(req.cgi_out), 0);
    return out;
}

#define CSP                                                                                        \
    "Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self' data:; "        \
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n"
#define NO_CACHE                                                                                   \
    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: "              \
    "same-origin\r\n"

static void
route_profile_page(struct sess_request *req)
{
    if (!sess_allow(req, "GET, HEAD"))
        return;
    sess_send_page(req, 200, "profile", json_pack("{s:s}", "title", "Profile"));
}

static void
test_page_bytes(void **state)
{
    static const char head[] =
        "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n" NO_CACHE CSP
        "Content-Length: ";
    struct fixture *f = *state;
    size_t len, head_len;
    char *out = wire(f, "GET", route_profile_page, &len), *body, *end;
    unsigned long body_len;

    assert_true(len > sizeof head);
    assert_memory_equal(out, head, sizeof head - 1);
    body_len = strtoul(out + sizeof head - 1, &end, 10);
    assert_memory_equal(end, "\r\n\r\n", 4);
    body = end + 4;
    head_len = (size_t)(body - out);
    assert_int_equal(len - head_len, body_len);
    assert_memory_equal(body, "<!doctype html>", 15);
    assert_non_null(strstr(body, "You're not logged in"));
    free(out);
    /* HEAD: the same head, Content-Length included, and no body. */
    out = wire(f, "HEAD", route_profile_page, &len);
    assert_int_equal(len, head_len);
    assert_memory_equal(out, head, sizeof head - 1);
    free(out);
}

static void
route_own_csp(struct sess_request *req)
{
    if (sess_header(req, "content-security-policy", "script-src 'self'") == SESS_OK)
        sess_send_page(req, 200, "profile", NULL);
}

/* A route's own policy replaces the library's: one header, its own. */
static void
test_page_with_its_own_csp(void **state)
{
    size_t len;
    char *out = wire(*state, "GET", route_own_csp, &len);

    assert_non_null(strstr(out, "content-security-policy: script-src 'self'\r\n"));
    assert_null(strstr(out, "Content-Security-Policy"));
    assert_non_null(strstr(out, NO_CACHE));
    free(out);
}

static void
route_teapot(struct sess_request *req)
{
    sess_send_json(req, 418, json_object());
}

static void
route_home(struct sess_request *req)
{
    sess_redirect(req, "/");
}

static void
test_json_and_redirect_bytes(void **state)
{
    static const char teapot[] = "Status: 418 Status\r\n"
                                 "Content-Type: application/json; charset=utf-8\r\n" NO_CACHE
                                 "Content-Length: 3\r\n\r\n{}\n";
    static const char home[] = "Status: 303 See Other\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Location: /\r\n" NO_CACHE "Content-Length: 0\r\n\r\n";
    struct fixture *f = *state;
    size_t len;
    char *out;

    out = wire(f, "GET", route_teapot, &len);
    assert_int_equal(len, sizeof teapot - 1);
    assert_memory_equal(out, teapot, len);
    free(out);
    out = wire(f, "POST", route_home, &len);
    assert_int_equal(len, sizeof home - 1);
    assert_memory_equal(out, home, len);
    free(out);
}

static void
route_login_page(struct sess_request *req)
{
    sess_send_page(req, 200, "login", json_pack("{s:s, s:s}", "title", "Log in", "csrf", "mine"));
}

/* The token is made only for pages that show it, and is the library's even
 * when the route passes a "csrf" of its own. */
static void
test_page_csrf_token_posts_back(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    char body[200];
    const char *field, *value;
    size_t value_len;

    fixture_get(f, &c, route_login_page);
    assert_int_equal(c.status, 200);
    field = strstr(c.body, "name=\"csrf\" value=\"");
    assert_non_null(field);
    value = field + strlen("name=\"csrf\" value=\"");
    value_len = strcspn(value, "\"");
    assert_int_equal(value_len > 44, 1);
    snprintf(body, sizeof body, "theme=dark&csrf=%.*s", (int)value_len, value);
    post(f, &c, "application/x-www-form-urlencoded", body);
    assert_int_equal(c.status, 200);
    client_free(&c);
}

/* sess_param walks the parameters as FCGX_GetParam does. */
static void
test_param_lookup_as_fcgx(void **state)
{
    char *envp[] = {
        "REQUEST_URI=/x", "REQUEST_METHOD=GET", "HTTP_HOST=h", "HTTP_HOSTNAME=n", "EMPTY=", "=odd",
        "NOEQUALS",       "HTTP_COOKIE=a=b",    NULL};
    static const char *const names[] = {
        "REQUEST_METHOD", "REQUEST", "HTTP_HOST", "HTTP_HOSTNAME",
        "HTTP_HOS",       "EMPTY",   "",          "NOEQUALS",
        "HTTP_COOKIE",    "MISSING", "R",
    };
    struct sess_request req;
    size_t i;
    (void)state;

    memset(&req, 0, sizeof req);
    req.envp = envp;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *want = FCGX_GetParam(names[i], envp), *got = sess_param(&req, names[i]);

        if (want)
            assert_string_equal(got, want);
        else
            assert_null(got);
    }
    req.envp = NULL;
    assert_null(sess_param(&req, "HTTP_HOST"));
}

static int
setup(void **state)
{
    *state = fixture_new("");
    return 0;
}

static int
teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_parse_table),
        cmocka_unit_test(test_form_parse_keeps_nul_inside_values),
        cmocka_unit_test(test_form_parse_refuses_more_than_100_fields),
        T(test_json_body_is_parsed),
        T(test_json_with_charset_parameter_is_json),
        T(test_invalid_json_is_400),
        T(test_json_array_body_is_400),
        T(test_invalid_utf8_json_is_400),
        T(test_deeply_nested_json_is_400),
        T(test_text_plain_is_415),
        T(test_json_lookalike_type_is_415),
        T(test_body_over_max_body_is_413),
        T(test_form_without_csrf_is_403),
        T(test_form_with_wrong_csrf_is_403),
        T(test_form_with_valid_csrf_is_accepted),
        T(test_csrf_token_expires_after_two_hours),
        T(test_csrf_token_made_under_the_second_secret_verifies),
        T(test_csrf_token_of_the_previous_release_verifies),
        T(test_csrf_token_without_session_is_bound_to_the_browser),
        T(test_pre_session_cookie_attributes),
        T(test_foreign_origin_is_403_even_for_json),
        T(test_same_origin_is_accepted),
        T(test_wrong_method_is_405_with_allow),
        T(test_header_refuses_crlf),
        cmocka_unit_test(test_httpoxy_params_are_never_returned),
        cmocka_unit_test(test_wants_json_from_accept_or_content_type),
        T(test_redirect_refuses_other_sites),
        T(test_redirect_accepts_paths_of_this_site),
        T(test_route_without_answer_gets_500),
        T(test_page_bytes),
        T(test_page_with_its_own_csp),
        T(test_json_and_redirect_bytes),
        T(test_page_csrf_token_posts_back),
        cmocka_unit_test(test_param_lookup_as_fcgx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
