/* sess_path: the request's path from the parameters each server sets, as
 * lighttpd 1.4, nginx (with the shipped fastcgi_params), Apache 2.4's
 * mod_proxy_fcgi and CGI under any of them set them (the cases below are
 * what they sent for the same requests): REQUEST_URI first, without its
 * query and not decoded; SCRIPT_NAME and PATH_INFO only without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

struct path_case {
    const char *what;
    const char *request_uri, *script_name, *path_info; /* NULL: not set */
    const char *path;
};

static const struct path_case path_cases[] = {
    /* lighttpd, fastcgi.server "/cart" with check-local disabled */
    {"lighttpd prefix", "/cart/add?item=pear", "/cart", "/add", "/cart/add"},
    {"lighttpd prefix, the prefix itself", "/cart", "/cart", NULL, "/cart"},
    {"lighttpd merges // in PATH_INFO, REQUEST_URI keeps them", "/cart//add", "/cart", "/add",
     "/cart//add"},
    {"lighttpd decodes PATH_INFO, REQUEST_URI does not", "/cart/a%20b", "/cart", "/a b",
     "/cart/a%20b"},
    {"lighttpd url.rewrite: the path the client asked for", "/old/add?x=1", "/cart", "/add",
     "/old/add"},
    /* nginx: SCRIPT_NAME $fastcgi_script_name (decoded, normalized) */
    {"nginx", "/cart/add?item=pear", "/cart/add", NULL, "/cart/add"},
    {"nginx resolves /../ in SCRIPT_NAME, REQUEST_URI does not", "/cart/x/../add", "/cart/add",
     NULL, "/cart/x/../add"},
    /* Apache mod_proxy_fcgi: the whole path in SCRIPT_NAME, and with
     * another backend type or proxy-fcgi-pathinfo in PATH_INFO again */
    {"Apache ProxyPassMatch", "/cart/add?item=pear", "/cart/add", NULL, "/cart/add"},
    {"Apache with the path twice", "/cart/add", "/cart/add", "/cart/add", "/cart/add"},
    {"Apache passes an absolute-form target as sent", "http://127.0.0.1:8080/cart/add?x=1",
     "/cart/add", NULL, "/cart/add"},
    {"absolute form, scheme in capitals", "HTTPS://example.org/cart", NULL, NULL, "/cart"},
    {"absolute form without a path", "http://example.org?x=1", NULL, NULL, "/"},
    {"absolute form, nothing after the host", "http://example.org", NULL, NULL, "/"},
    /* CGI: SCRIPT_NAME is the program, PATH_INFO what follows it */
    {"CGI under Apache or lighttpd", "/cgi-bin/cart.cgi/add?x=1", "/cgi-bin/cart.cgi", "/add",
     "/cgi-bin/cart.cgi/add"},
    {"CGI without REQUEST_URI", NULL, "/cgi-bin/cart.cgi", "/add", "/cgi-bin/cart.cgi/add"},
    {"nginx without REQUEST_URI", NULL, "/cart/add", NULL, "/cart/add"},
    {"PATH_INFO alone", NULL, NULL, "/add", "/add"},
    /* edges */
    {"the root with a query", "/?q=1", "/", NULL, "/"},
    {"a fragment is no part of the path", "/cart#top", NULL, NULL, "/cart"},
    {"an empty query", "/cart?", NULL, NULL, "/cart"},
    {"OPTIONS *", "*", "/cart", NULL, ""},
    {"a REQUEST_URI that is no path", "mailto:x@example.org", "/cart", NULL, ""},
    {"a scheme without //", "http:/cart", NULL, NULL, ""},
    {"an empty REQUEST_URI", "", "/cart", NULL, ""},
    {"nothing at all", NULL, NULL, NULL, ""},
    {"no decoding, no folding", "/C%61rt/./", NULL, NULL, "/C%61rt/./"},
};

/* Adds NAME=VALUE to a request's parameters when `value` is set. */
static void
param(char (*env)[SESS_PATH_MAX + 64], char **envp, size_t *n, const char *name, const char *value)
{
    if (!value)
        return;
    snprintf(env[*n], sizeof env[*n], "%s=%s", name, value);
    envp[*n] = env[*n];
    (*n)++;
}

/* sess_path for a request with these parameters, through the start of a
 * real request. Returns a copy the caller frees. */
static char *
path_of(struct fixture *f, const char *request_uri, const char *script_name, const char *path_info)
{
    static char env[4][SESS_PATH_MAX + 64];
    char *envp[6];
    size_t n = 0;
    struct sess_request req;
    char *path;

    param(env, envp, &n, "REQUEST_URI", request_uri);
    param(env, envp, &n, "SCRIPT_NAME", script_name);
    param(env, envp, &n, "PATH_INFO", path_info);
    param(env, envp, &n, "REQUEST_METHOD", "GET");
    envp[n] = NULL;
    memset(&req, 0, sizeof req);
    req.app = f->app;
    req.envp = envp;
    sess__request_start(&req, f->now_ms);
    path = strdup(sess_path(&req));
    assert_non_null(path);
    sess__request_reset(&req);
    assert_string_equal(sess_path(&req), "");
    return path;
}

static void
test_path_table(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const struct path_case *c = &path_cases[i];
        char *got = path_of(f, c->request_uri, c->script_name, c->path_info);
        if (strcmp(got, c->path) != 0)
            fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, c->what, got, c->path);
        free(got);
    }
}

static void
test_path_of_sess_path_max_bytes_is_kept_and_longer_is_empty(void **state)
{
    struct fixture *f = *state;
    char *uri = malloc(SESS_PATH_MAX + 2), *got;

    assert_non_null(uri);
    memset(uri, 'a', SESS_PATH_MAX + 1);
    uri[0] = '/';
    uri[SESS_PATH_MAX] = '\0';
    got = path_of(f, uri, NULL, NULL);
    assert_int_equal(strlen(got), SESS_PATH_MAX);
    free(got);

    /* The query does not count. */
    uri[SESS_PATH_MAX - 2] = '?';
    uri[SESS_PATH_MAX] = 'a';
    uri[SESS_PATH_MAX + 1] = '\0';
    got = path_of(f, uri, NULL, NULL);
    assert_int_equal(strlen(got), SESS_PATH_MAX - 2);
    free(got);

    uri[SESS_PATH_MAX - 2] = 'a';
    got = path_of(f, uri, "/cart", NULL);
    assert_string_equal(got, ""); /* too long, and no fallback */
    free(got);

    /* SCRIPT_NAME and PATH_INFO together past the bound. */
    uri[SESS_PATH_MAX - 10] = '\0';
    got = path_of(f, NULL, uri, "/0123456789");
    assert_string_equal(got, "");
    free(got);
    got = path_of(f, NULL, uri, "/012345678");
    assert_int_equal(strlen(got), SESS_PATH_MAX);
    free(got);
    free(uri);
}

/* What a route sees: sess_path inside the route, on every run. */
static void
route_echo_path(struct sess_request *req)
{
    sess_send_json(req, 200, json_pack("{s:s}", "path", sess_path(req)));
}

static void
test_route_sees_the_path(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    f->params[0] = "REQUEST_URI=/cart/add?item=fig";
    f->params[1] = "SCRIPT_NAME=/cart";
    f->params[2] = "PATH_INFO=/add";
    fixture_get(f, &c, route_echo_path);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "{\"path\":\"/cart/add\"}\n");
    f->params[0] = f->params[1] = f->params[2] = NULL;
    client_free(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
        T(test_path_table),
        T(test_path_of_sess_path_max_bytes_is_kept_and_longer_is_empty),
        T(test_route_sees_the_path),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
