/* Route tables (sess_run_routes): exact matches on sess_path, 404 through
 * sess_fail for the rest, one lookup per request whatever its re-runs, the
 * table checked before anything opens; and sess_request_app, the app a
 * route reaches sess_admin.h through ("log out everywhere"). Real requests
 * through the request path, as the request loop runs them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

/* How often each route ran. */
static int a_runs, b_runs, root_runs;

static void
route_a(struct sess_request *req)
{
    a_runs++;
    sess_send_json(req, 200, json_pack("{s:s, s:s}", "route", "a", "path", sess_path(req)));
}

static void
route_b(struct sess_request *req)
{
    b_runs++;
    sess_send_json(req, 200, json_pack("{s:s}", "route", "b"));
}

static void
route_root(struct sess_request *req)
{
    root_runs++;
    sess_send_json(req, 200, json_pack("{s:s}", "route", "root"));
}

static const struct sess_route table[] = {
    {"/", route_root},
    {"/cart", route_a},
    {"/cart/add", route_b},
};
#define TABLE_COUNT (sizeof table / sizeof table[0])

/* One request for REQUEST_URI `uri` (and its query as QUERY_STRING)
 * through `routes`. */
static void
request(struct fixture *f, struct client *c, const char *uri, const struct sess_route *routes,
        size_t count)
{
    const char *q = strchr(uri, '?');
    char uri_param[256], query_param[256];

    snprintf(uri_param, sizeof uri_param, "REQUEST_URI=%s", uri);
    snprintf(query_param, sizeof query_param, "QUERY_STRING=%s", q ? q + 1 : "");
    f->params[0] = uri_param;
    f->params[1] = query_param;
    fixture_route(f, c, routes, count);
    f->params[0] = f->params[1] = NULL;
}

static void
reset_counts(void)
{
    a_runs = b_runs = root_runs = 0;
}

static void
test_each_path_reaches_its_route(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    reset_counts();
    request(f, &c, "/cart?x=1", table, TABLE_COUNT);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "{\"route\":\"a\",\"path\":\"/cart\"}\n");
    request(f, &c, "/cart/add", table, TABLE_COUNT);
    assert_string_equal(c.body, "{\"route\":\"b\"}\n");
    request(f, &c, "/", table, TABLE_COUNT);
    assert_string_equal(c.body, "{\"route\":\"root\"}\n");
    assert_int_equal(a_runs, 1);
    assert_int_equal(b_runs, 1);
    assert_int_equal(root_runs, 1);
    client_free(&c);
}

static void
test_anything_else_is_404(void **state)
{
    static const char *const misses[] = {
        "/cart/",        /* no trailing-slash folding */
        "/Cart",         /* no case folding */
        "/c%61rt",       /* no decoding */
        "/cartx",        /* no prefix match */
        "/cart/add/x",   /* no prefix match, the other way */
        "//cart",        /* no merging of slashes */
        "/cart/../cart", /* no resolving of dot segments */
        "*",             /* no path at all */
    };
    struct fixture *f = *state;
    struct client c = {0};

    reset_counts();
    f->content_type = "application/json";
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++) {
        request(f, &c, misses[i], table, TABLE_COUNT);
        if (c.status != 404)
            fail_msg("%s: got %d, want 404", misses[i], c.status);
        assert_string_equal(c.body, "{\"msg\":\"Not found\"}\n");
    }
    f->content_type = NULL;
    assert_int_equal(a_runs + b_runs + root_runs, 0);
    client_free(&c);
}

static void
test_404_for_a_browser_is_the_error_page(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    request(f, &c, "/nowhere", table, TABLE_COUNT);
    assert_int_equal(c.status, 404);
    assert_non_null(strstr(c.body, "<h1>Error 404</h1>"));
    assert_non_null(strstr(c.body, "Not found"));
    assert_null(c.set_cookie); /* no session for a miss */
    client_free(&c);
}

static void
test_the_lookup_takes_the_first_match(void **state)
{
    /* sess_run_routes refuses a path twice before it serves; the lookup
     * itself takes the first. */
    static const struct sess_route twice[] = {{"/cart", route_a}, {"/cart", route_b}};
    struct fixture *f = *state;
    struct client c = {0};

    reset_counts();
    request(f, &c, "/cart", twice, 2);
    assert_int_equal(a_runs, 1);
    assert_int_equal(b_runs, 0);
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * Re-runs: the route picked once is the route that runs again
 * ------------------------------------------------------------------------ */

static struct fixture *the_fixture;
static struct client *the_client;
/* The table the request is dispatched through, which the route changes
 * under it: a second lookup would find route_b. */
static struct sess_route moving_table[2];

/* Another request of the same session adds one to "n", now. */
static void
another_request_counts(void)
{
    struct sess_request other;
    json_int_t n;

    fixture_begin(the_fixture, the_client, &other);
    n = json_integer_value(sess_get(&other, "n"));
    assert_int_equal(sess_set(&other, "n", json_integer(n + 1)), SESS_OK);
    assert_int_equal(sess__session_commit(&other), SESS_OK);
    fixture_end(&other);
}

/* Counts; on its first run another request counts between its read and
 * its write, and the table's entry for its path moves to route_b. */
static void
route_counts_and_moves(struct sess_request *req)
{
    json_int_t n = json_integer_value(sess_get(req, "n"));

    if (++a_runs == 1) {
        another_request_counts();
        moving_table[0].route = route_b;
    }
    assert_int_equal(sess_set(req, "n", json_integer(n + 1)), SESS_OK);
    sess_send_json(req, 200, json_pack("{s:I, s:s}", "n", n + 1, "path", sess_path(req)));
}

static void
route_counts_only(struct sess_request *req)
{
    json_int_t n = json_integer_value(sess_get(req, "n")) + 1;
    assert_int_equal(sess_set(req, "n", json_integer(n)), SESS_OK);
    sess_send_json(req, 200, json_pack("{s:I}", "n", n));
}

static void
test_a_rerun_runs_the_route_picked_once(void **state)
{
    static const struct sess_route counter[] = {{"/count", route_counts_only}};
    struct fixture *f = *state;
    struct client c = {0};

    request(f, &c, "/count", counter, 1); /* a session with n = 1 */
    assert_string_equal(c.body, "{\"n\":1}\n");
    the_fixture = f;
    the_client = &c;
    reset_counts();
    moving_table[0] = (struct sess_route){"/count", route_counts_and_moves};
    moving_table[1] = (struct sess_route){"/other", route_b};
    request(f, &c, "/count", moving_table, 2);
    assert_int_equal(c.status, 200);
    /* Run twice, both times the first route: 1, another request's 2, ours 3. */
    assert_int_equal(a_runs, 2);
    assert_int_equal(b_runs, 0);
    assert_string_equal(c.body, "{\"n\":3,\"path\":\"/count\"}\n");
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * sess_run_routes refuses a table it could not serve
 * ------------------------------------------------------------------------ */

static void
test_a_bad_table_is_refused_before_anything_opens(void **state)
{
    static const struct sess_route no_slash[] = {{"cart", route_a}};
    static const struct sess_route with_query[] = {{"/cart?x=1", route_a}};
    static const struct sess_route with_fragment[] = {{"/cart#top", route_a}};
    static const struct sess_route no_route[] = {{"/", route_a}, {"/cart", NULL}};
    static const struct sess_route no_path[] = {{NULL, route_a}};
    static const struct sess_route twice[] = {
        {"/cart", route_a}, {"/x", route_b}, {"/cart", route_b}};
    (void)state;

    /* Nothing is opened: no SESSION_CONFIG is needed to be refused. */
    assert_int_equal(unsetenv("SESSION_CONFIG"), 0);
    assert_int_equal(sess_run_routes("t", no_slash, 1), SESS_EXIT_SOFTWARE);
    assert_int_equal(sess_run_routes("t", with_query, 1), SESS_EXIT_SOFTWARE);
    assert_int_equal(sess_run_routes("t", with_fragment, 1), SESS_EXIT_SOFTWARE);
    assert_int_equal(sess_run_routes("t", no_route, 2), SESS_EXIT_SOFTWARE);
    assert_int_equal(sess_run_routes("t", no_path, 1), SESS_EXIT_SOFTWARE);
    assert_int_equal(sess_run_routes("t", twice, 3), SESS_EXIT_SOFTWARE);
    assert_int_equal(sess_run_routes("t", table, 0), SESS_EXIT_SOFTWARE);
    assert_int_equal(sess_run_routes("t", NULL, 0), SESS_EXIT_SOFTWARE);
}

/* ------------------------------------------------------------------------
 * sess_request_app: sess_admin.h from a route
 * ------------------------------------------------------------------------ */

static struct sess_app *app_seen;

/* Logs in ?user=NAME (alice by default) with the password every account
 * here has. */
static void
route_login(struct sess_request *req)
{
    const char *user = sess_query_str(req, "user");
    int64_t retry = 0;

    if (!user)
        user = "alice";
    app_seen = sess_request_app(req);
    if (sess_login(req, user, strlen(user), "a long password", 15, &retry) != SESS_OK) {
        sess_fail(req, 403, "Bad credentials");
        return;
    }
    sess_send_json(req, 200, json_pack("{s:b}", "in", true));
}

static void
route_whoami(struct sess_request *req)
{
    const char *user = sess_get_str(req, "user.username");
    sess_send_json(req, 200, json_pack("{s:s?}", "user", user));
}

/* "Log out everywhere": every session of the user, this one included. It
 * changed nothing in its session, so it needs no sess_save first, and
 * revoking twice is harmless. */
static void
route_logout_everywhere(struct sess_request *req)
{
    char user[SESS_USERNAME_MAX + 1];
    const char *u = sess_get_str(req, "user.username");
    size_t n = 0;

    if (!u) {
        sess_fail(req, 401, "Log in first");
        return;
    }
    snprintf(user, sizeof user, "%s", u);
    if (sess_revoke_user(sess_request_app(req), user, &n) != SESS_OK ||
        sess_destroy(req) != SESS_OK) {
        sess_fail(req, 503, "Try again");
        return;
    }
    sess_send_json(req, 200, json_pack("{s:I}", "revoked", (json_int_t)n));
}

/* An account page: a new account through the app, after saving the
 * session it changed. */
static void
route_add_account(struct sess_request *req)
{
    struct sess_app *app = sess_request_app(req);
    char role[33];
    enum sess_err err;

    if (sess_set(req, "added", json_string("carol")) != SESS_OK || sess_save(req) != SESS_OK) {
        sess_fail(req, 503, "Try again");
        return;
    }
    err = sess_user_add(app, "carol", "user", "carol's password", 16, true);
    if (err != SESS_OK && err != SESS_EEXISTS) {
        sess_fail(req, 500, sess_app_errmsg(app));
        return;
    }
    sess_send_json(
        req, 200,
        json_pack("{s:b, s:i}", "verified",
                  sess_user_verify(app, "carol", 5, "carol's password", 16, role) == SESS_OK,
                  "max_age", (int)sess_app_config(app)->max_age_s));
}

static const struct sess_route account_routes[] = {
    {"/login", route_login},
    {"/whoami", route_whoami},
    {"/logout/everywhere", route_logout_everywhere},
    {"/account/add", route_add_account},
};
#define ACCOUNT_COUNT (sizeof account_routes / sizeof account_routes[0])

static void
test_request_app_is_the_process_app(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    assert_int_equal(sess_user_add(f->app, "alice", "admin", "a long password", 15, false),
                     SESS_OK);
    app_seen = NULL;
    request(f, &c, "/login", account_routes, ACCOUNT_COUNT);
    assert_int_equal(c.status, 200);
    assert_ptr_equal(app_seen, f->app);

    request(f, &c, "/account/add", account_routes, ACCOUNT_COUNT);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "{\"verified\":true,\"max_age\":1800}\n");
    client_free(&c);
}

static void
test_logout_everywhere_ends_every_session_of_the_user(void **state)
{
    struct fixture *f = *state;
    struct client one = {0}, two = {0}, bob = {0};

    assert_int_equal(sess_user_add(f->app, "alice", "admin", "a long password", 15, false),
                     SESS_OK);
    request(f, &one, "/login", account_routes, ACCOUNT_COUNT);
    assert_int_equal(one.status, 200);
    request(f, &two, "/login", account_routes, ACCOUNT_COUNT);
    assert_int_equal(two.status, 200);
    request(f, &two, "/whoami", account_routes, ACCOUNT_COUNT);
    assert_string_equal(two.body, "{\"user\":\"alice\"}\n");

    /* Someone else's session stays. */
    assert_int_equal(sess_user_add(f->app, "bob", "user", "a long password", 15, false), SESS_OK);
    request(f, &bob, "/login?user=bob", account_routes, ACCOUNT_COUNT);
    assert_int_equal(bob.status, 200);

    request(f, &one, "/logout/everywhere", account_routes, ACCOUNT_COUNT);
    assert_int_equal(one.status, 200);
    assert_string_equal(one.body, "{\"revoked\":2}\n");
    assert_non_null(one.set_cookie);
    assert_non_null(strstr(one.set_cookie, "Max-Age=0"));

    request(f, &two, "/whoami", account_routes, ACCOUNT_COUNT);
    assert_string_equal(two.body, "{\"user\":null}\n");
    request(f, &one, "/whoami", account_routes, ACCOUNT_COUNT);
    assert_string_equal(one.body, "{\"user\":null}\n");
    request(f, &bob, "/whoami", account_routes, ACCOUNT_COUNT);
    assert_string_equal(bob.body, "{\"user\":\"bob\"}\n");
    request(f, &one, "/logout/everywhere", account_routes, ACCOUNT_COUNT);
    assert_int_equal(one.status, 401);
    client_free(&one);
    client_free(&two);
    client_free(&bob);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
        T(test_each_path_reaches_its_route),
        T(test_anything_else_is_404),
        T(test_404_for_a_browser_is_the_error_page),
        T(test_the_lookup_takes_the_first_match),
        T(test_a_rerun_runs_the_route_picked_once),
        T(test_a_bad_table_is_refused_before_anything_opens),
        T(test_request_app_is_the_process_app),
        T(test_logout_everywhere_ends_every_session_of_the_user),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
