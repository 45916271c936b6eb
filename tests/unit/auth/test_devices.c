/* Sessions of their own (the demo's contract, README: "Remember me", "Login keeps what the
 * visitor had", "Flash messages", "Your devices"): renew keeping data, a
 * lifetime per session and its cookie, flash read once, the handle, and
 * the logged-in user's own sessions, driven through real requests against
 * a real LMDB store with a test clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "internal.h"

#define DAY_MS ((int64_t)86400 * 1000)

/* ------------------------------------------------------------------------
 * Routes
 * ------------------------------------------------------------------------ */

static void
route_counts(struct sess_request *req)
{
    json_int_t n = json_integer_value(sess_get(req, "views")) + 1;
    assert_int_equal(sess_set(req, "views", json_integer(n)), SESS_OK);
    sess_send_json(req, 200, json_pack("{s:I}", "views", n));
}

static void
route_show(struct sess_request *req)
{
    if (!sess_exists(req)) {
        sess_send_json(req, 401, json_pack("{s:s}", "error", "no session"));
        return;
    }
    sess_send_json(req, 200, sess_to_json(req));
}

static void
route_renews(struct sess_request *req)
{
    assert_int_equal(sess_renew(req), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
login_as(struct sess_request *req, const char *name, const char *password, bool remember)
{
    int64_t retry;

    assert_int_equal(sess_login(req, name, strlen(name), password, strlen(password), &retry),
                     SESS_OK);
    assert_int_equal(sess_remember(req, remember), SESS_OK);
    sess_send_json(req, 200, sess_to_json(req));
}

static void
route_login_alice(struct sess_request *req)
{
    login_as(req, "alice", "wonderland", false);
}

static void
route_login_alice_remembered(struct sess_request *req)
{
    login_as(req, "alice", "wonderland", true);
}

static void
route_login_bob(struct sess_request *req)
{
    login_as(req, "bob", "builder-builder", false);
}

static void
route_flashes(struct sess_request *req)
{
    assert_int_equal(sess_flash(req, "info", "Preferences saved"), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_page(struct sess_request *req)
{
    sess_send_page(req, 200, "profile", NULL);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* The session id inside the client's cookie ("s%3AID.SIG"). */
static char *
cookie_id(const struct client *c)
{
    const char *v = c->cookie + strlen("s%3A");
    return strndup(v, strrchr(v, '.') - v);
}

static void
add_users(struct fixture *f)
{
    assert_int_equal(sess_user_add(f->app, "alice", "admin", "wonderland", 10, false), SESS_OK);
    assert_int_equal(sess_user_add(f->app, "bob", "user", "builder-builder", 15, false), SESS_OK);
}

struct listing {
    size_t n, current;
    char handles[8][32];
    char agents[8][64];
};

static bool
list_one(void *arg, const struct sess_device *d)
{
    struct listing *l = arg;

    if (l->n < 8) {
        snprintf(l->handles[l->n], sizeof l->handles[0], "%s", d->handle);
        snprintf(l->agents[l->n], sizeof l->agents[0], "%s", d->user_agent);
    }
    l->current += d->is_current;
    l->n++;
    return true;
}

static void
list_sessions(struct fixture *f, struct client *c, struct listing *l)
{
    struct sess_request r;

    memset(l, 0, sizeof *l);
    fixture_begin(f, c, &r);
    assert_int_equal(sess_user_sessions(&r, list_one, l), SESS_OK);
    fixture_end(&r);
}

/* ------------------------------------------------------------------------
 * Renew and login
 * ------------------------------------------------------------------------ */

static void
test_renew_keeps_the_data_under_a_new_id(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, old = {0};
    char *before, *after;

    fixture_get(f, &c, route_counts);
    fixture_get(f, &c, route_counts);
    client_copy(&old, &c);
    before = cookie_id(&c);
    fixture_get(f, &c, route_renews);
    assert_non_null(c.set_cookie);
    after = cookie_id(&c);
    assert_string_not_equal(before, after);
    fixture_get(f, &c, route_counts);
    assert_string_equal(c.body, "{\"views\":3}\n");
    /* The old id no longer works. */
    fixture_get(f, &old, route_show);
    assert_int_equal(old.status, 401);
    free(before);
    free(after);
    client_free(&c);
    client_free(&old);
}

static void
test_login_keeps_what_the_visitor_had(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, old = {0};
    json_t *j;

    add_users(f);
    fixture_get(f, &c, route_counts);
    client_copy(&old, &c);
    fixture_get(f, &c, route_login_alice);
    assert_int_equal(c.status, 200);
    fixture_get(f, &c, route_show);
    j = json_loads(c.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "views")), 1);
    assert_true(json_is_true(json_object_get(j, "authenticated")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "username")),
                        "alice");
    json_decref(j);
    fixture_get(f, &old, route_show);
    assert_int_equal(old.status, 401);
    client_free(&c);
    client_free(&old);
}

static void
test_login_over_another_users_session_carries_nothing(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    add_users(f);
    fixture_get(f, &c, route_counts);
    fixture_get(f, &c, route_login_alice);
    fixture_get(f, &c, route_login_bob);
    fixture_get(f, &c, route_show);
    assert_null(strstr(c.body, "\"views\""));
    assert_non_null(strstr(c.body, "\"username\":\"bob\""));
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * Remember me
 * ------------------------------------------------------------------------ */

static void
test_remembered_login_cookie_carries_remember_max_age(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    add_users(f);
    fixture_get(f, &c, route_login_alice_remembered);
    assert_non_null(strstr(c.set_cookie, "; Expires=Tue, 22 Dec 2026 18:00:00 GMT"));
    assert_non_null(strstr(c.set_cookie, "; Max-Age=2592000;"));
    assert_non_null(strstr(c.body, "\"originalMaxAge\":2592000000"));
    fixture_get(f, &c, route_show);
    assert_non_null(strstr(c.body, "\"originalMaxAge\":2592000000"));
    client_free(&c);
}

static void
test_remembered_session_outlives_max_age_and_ends_at_its_own_limits(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, d = {0};

    add_users(f);
    fixture_get(f, &c, route_login_alice_remembered);
    fixture_get(f, &d, route_login_alice);
    /* Two hours idle: past max_age, well within remember_max_age. */
    f->now_ms += 2 * 3600 * 1000;
    fixture_get(f, &c, route_show);
    assert_int_equal(c.status, 200);
    fixture_get(f, &d, route_show);
    assert_int_equal(d.status, 401);
    /* Kept active, it still ends remember_absolute_timeout (90 days)
     * after the login; its touches re-send the cookie. */
    for (int i = 0; i < 3; i++) {
        f->now_ms += 25 * DAY_MS;
        fixture_get(f, &c, route_show);
        if (c.status != 200)
            fail_msg("round %d: %d %s", i, c.status, c.body);
        assert_non_null(c.set_cookie);
    }
    /* Day 95: idle for 20 days only, but past the 90. */
    f->now_ms += 20 * DAY_MS;
    fixture_get(f, &c, route_show);
    assert_int_equal(c.status, 401);
    client_free(&c);
    client_free(&d);
}

static void
test_cookie_persist_false_gives_a_browser_session_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, r = {0};

    fixture_reopen(f, "cookie_persist = false\n");
    add_users(f);
    fixture_get(f, &c, route_login_alice);
    assert_null(strstr(c.set_cookie, "Expires="));
    assert_null(strstr(c.set_cookie, "Max-Age="));
    assert_non_null(strstr(c.body, "\"originalMaxAge\":null"));
    assert_non_null(strstr(c.body, "\"expires\":null"));
    /* The server-side expiry holds. */
    f->now_ms += 1801 * 1000;
    fixture_get(f, &c, route_show);
    assert_int_equal(c.status, 401);
    /* A remembered session's cookie persists all the same. */
    fixture_get(f, &r, route_login_alice_remembered);
    assert_non_null(strstr(r.set_cookie, "; Max-Age=2592000;"));
    assert_non_null(strstr(r.set_cookie, "; Expires="));
    client_free(&c);
    client_free(&r);
}

static void
test_set_max_age_refuses_out_of_range(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;

    fixture_begin(f, &c, &r);
    assert_int_equal(sess_set_max_age(&r, 0, 10), SESS_EBADINPUT);
    assert_int_equal(sess_set_max_age(&r, 10, -1), SESS_EBADINPUT);
    assert_int_equal(sess_set_max_age(&r, 60, 0), SESS_OK);
    assert_true(sess_is_remembered(&r));
    fixture_end(&r);
}

/* ------------------------------------------------------------------------
 * Flash
 * ------------------------------------------------------------------------ */

static void
test_flash_is_shown_once(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    fixture_get(f, &c, route_flashes);
    fixture_get(f, &c, route_show);
    assert_non_null(strstr(c.body, "\"flash\":{\"info\":[\"Preferences saved\"]}"));
    fixture_get(f, &c, route_page);
    assert_non_null(strstr(c.body, "<p class=\"flash\" role=\"status\" data-type=\"info\">"
                                   "Preferences saved</p>"));
    fixture_get(f, &c, route_page);
    assert_null(strstr(c.body, "class=\"flash\""));
    fixture_get(f, &c, route_show);
    assert_null(strstr(c.body, "flash"));
    client_free(&c);
}

static void
test_flash_take_reads_one_type_and_removes_it(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;
    json_t *msgs;

    fixture_begin(f, &c, &r);
    assert_int_equal(sess_flash(&r, "info", "one"), SESS_OK);
    assert_int_equal(sess_flash(&r, "info", "two"), SESS_OK);
    assert_int_equal(sess_flash(&r, "error", "bad"), SESS_OK);
    assert_int_equal(sess_flash(&r, "", "x"), SESS_EBADINPUT);
    msgs = sess_flash_take(&r, "info");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_array_get(msgs, 1)), "two");
    json_decref(msgs);
    assert_null(sess_flash_take(&r, "info"));
    msgs = sess_flash_take(&r, "error");
    assert_int_equal(json_array_size(msgs), 1);
    json_decref(msgs);
    assert_null(sess_get(&r, "flash"));
    fixture_end(&r);
}

/* ------------------------------------------------------------------------
 * Handles and the user's sessions
 * ------------------------------------------------------------------------ */

static void
test_handle_stays_for_the_sessions_life(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct listing l;
    char first[32];

    add_users(f);
    fixture_get(f, &c, route_counts);
    fixture_get(f, &c, route_login_alice);
    list_sessions(f, &c, &l);
    assert_int_equal(l.n, 1);
    assert_int_equal(strlen(l.handles[0]), 22);
    strcpy(first, l.handles[0]);
    f->now_ms += 120 * 1000;
    fixture_get(f, &c, route_counts); /* a write */
    f->now_ms += 120 * 1000;
    fixture_get(f, &c, route_show); /* a touch */
    fixture_get(f, &c, route_renews);
    list_sessions(f, &c, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.handles[0], first);
    client_free(&c);
}

static void
test_user_sessions_lists_the_users_own_newest_first(void **state)
{
    struct fixture *f = *state;
    struct client a1 = {0}, a2 = {0}, b = {0}, anon = {0};
    struct sess_request r;
    struct listing l;

    add_users(f);
    f->user_agent = "First/1.0";
    fixture_get(f, &a1, route_login_alice);
    f->now_ms += 1000;
    f->user_agent = "Second/2.0";
    fixture_get(f, &a2, route_login_alice);
    f->user_agent = NULL;
    fixture_get(f, &b, route_login_bob);
    list_sessions(f, &a1, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.current, 1);
    assert_string_equal(l.agents[0], "Second/2.0");
    assert_string_equal(l.agents[1], "First/1.0");
    /* Not logged in: nothing to list. */
    fixture_get(f, &anon, route_counts);
    fixture_begin(f, &anon, &r);
    assert_int_equal(sess_user_sessions(&r, list_one, &l), SESS_ENOTFOUND);
    fixture_end(&r);
    client_free(&a1);
    client_free(&a2);
    client_free(&b);
    client_free(&anon);
}

static void
test_revoke_handle_ends_only_the_users_own(void **state)
{
    struct fixture *f = *state;
    struct client a1 = {0}, a2 = {0}, b = {0};
    struct sess_request r;
    struct listing la, lb;

    add_users(f);
    fixture_get(f, &a1, route_login_alice);
    f->now_ms += 1000;
    fixture_get(f, &a2, route_login_alice);
    fixture_get(f, &b, route_login_bob);
    list_sessions(f, &a1, &la);
    list_sessions(f, &b, &lb);
    /* Bob's handle is not one of alice's: 404, nothing ends. */
    fixture_begin(f, &a1, &r);
    assert_int_equal(sess_revoke_handle(&r, lb.handles[0]), SESS_ENOTFOUND);
    assert_int_equal(sess_revoke_handle(&r, "not a handle"), SESS_ENOTFOUND);
    /* la.handles[0] is a2's session (newest first). */
    assert_int_equal(sess_revoke_handle(&r, la.handles[0]), SESS_OK);
    fixture_end(&r);
    fixture_get(f, &a2, route_show);
    assert_int_equal(a2.status, 401);
    fixture_get(f, &b, route_show);
    assert_int_equal(b.status, 200);
    fixture_get(f, &a1, route_show);
    assert_int_equal(a1.status, 200);
    client_free(&a1);
    client_free(&a2);
    client_free(&b);
}

static void
test_revoke_others_keeps_the_current_one(void **state)
{
    struct fixture *f = *state;
    struct client a[3] = {{0}}, b = {0};
    struct sess_request r;
    size_t count;

    add_users(f);
    for (int i = 0; i < 3; i++)
        fixture_get(f, &a[i], route_login_alice);
    fixture_get(f, &b, route_login_bob);
    fixture_begin(f, &a[1], &r);
    assert_int_equal(sess_revoke_others(&r, &count), SESS_OK);
    fixture_end(&r);
    assert_int_equal(count, 2);
    for (int i = 0; i < 3; i++) {
        fixture_get(f, &a[i], route_show);
        assert_int_equal(a[i].status, i == 1 ? 200 : 401);
        client_free(&a[i]);
    }
    fixture_get(f, &b, route_show);
    assert_int_equal(b.status, 200);
    client_free(&b);
}

static void
test_max_sessions_per_user_ends_the_least_recently_used(void **state)
{
    struct fixture *f = *state;
    struct client a[3] = {{0}};

    fixture_reopen(f, "max_sessions_per_user = 2\ntouch_after = 0\n");
    add_users(f);
    fixture_get(f, &a[0], route_login_alice);
    f->now_ms += 1000;
    fixture_get(f, &a[1], route_login_alice);
    f->now_ms += 1000;
    fixture_get(f, &a[0], route_show); /* a[0] is now the more recent */
    f->now_ms += 1000;
    fixture_get(f, &a[2], route_login_alice);
    fixture_get(f, &a[1], route_show);
    assert_int_equal(a[1].status, 401);
    fixture_get(f, &a[0], route_show);
    assert_int_equal(a[0].status, 200);
    fixture_get(f, &a[2], route_show);
    assert_int_equal(a[2].status, 200);
    for (int i = 0; i < 3; i++)
        client_free(&a[i]);
}

static void
test_wrong_current_password_is_throttled_as_a_failed_login(void **state)
{
    struct fixture *f = *state;
    struct client a1 = {0};
    struct sess_request r;
    size_t revoked;
    int64_t retry = 0;
    int i;

    add_users(f);
    fixture_get(f, &a1, route_login_alice);
    fixture_begin(f, &a1, &r);
    for (i = 0; i < 5; i++)
        assert_int_equal(
            sess_change_password(&r, "wrong", 5, "a new password", 14, &revoked, &retry),
            SESS_EFORBIDDEN);
    /* The sixth is refused before any check, even with the right one. */
    assert_int_equal(
        sess_change_password(&r, "wonderland", 10, "a new password", 14, &revoked, &retry),
        SESS_ETHROTTLED);
    assert_true(retry > 0);
    fixture_end(&r);
    client_free(&a1);
}

static void
test_change_password_ends_the_others_and_renews(void **state)
{
    struct fixture *f = *state;
    struct client a1 = {0}, a2 = {0}, old = {0};
    struct sess_request r;
    char role[33];
    size_t revoked;
    int64_t retry;

    add_users(f);
    fixture_get(f, &a1, route_login_alice);
    fixture_get(f, &a2, route_login_alice);
    client_copy(&old, &a1);
    fixture_begin(f, &a1, &r);
    assert_int_equal(sess_change_password(&r, "wrong", 5, "a new password", 14, &revoked, &retry),
                     SESS_EFORBIDDEN);
    assert_int_equal(sess_change_password(&r, "wonderland", 10, "short", 5, &revoked, &retry),
                     SESS_EBADINPUT);
    /* Ten characters, more bytes: counted as characters. */
    assert_int_equal(
        sess_change_password(&r, "wonderland", 10, "\xc3\xa9\xc3\xa9\xc3\xa9", 6, &revoked, &retry),
        SESS_EBADINPUT);
    assert_int_equal(sess_change_password(&r, "wonderland", 10, "a new password", 14, &revoked, &retry),
                     SESS_OK);
    assert_int_equal(revoked, 1);
    assert_int_equal(sess__session_commit(&r), SESS_OK);
    fixture_end(&r);
    fixture_get(f, &a2, route_show);
    assert_int_equal(a2.status, 401);
    fixture_get(f, &old, route_show);
    assert_int_equal(old.status, 401);
    assert_int_equal(sess_user_verify(f->app, "alice", 5, "a new password", 14, role), SESS_OK);
    assert_int_equal(sess_user_verify(f->app, "alice", 5, "wonderland", 10, role), SESS_EFORBIDDEN);
    client_free(&a1);
    client_free(&a2);
    client_free(&old);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_renew_keeps_the_data_under_a_new_id),
        T(test_login_keeps_what_the_visitor_had),
        T(test_login_over_another_users_session_carries_nothing),
        T(test_remembered_login_cookie_carries_remember_max_age),
        T(test_remembered_session_outlives_max_age_and_ends_at_its_own_limits),
        T(test_cookie_persist_false_gives_a_browser_session_cookie),
        T(test_set_max_age_refuses_out_of_range),
        T(test_flash_is_shown_once),
        T(test_flash_take_reads_one_type_and_removes_it),
        T(test_handle_stays_for_the_sessions_life),
        T(test_user_sessions_lists_the_users_own_newest_first),
        T(test_revoke_handle_ends_only_the_users_own),
        T(test_revoke_others_keeps_the_current_one),
        T(test_max_sessions_per_user_ends_the_least_recently_used),
        T(test_change_password_ends_the_others_and_renews),
        T(test_wrong_current_password_is_throttled_as_a_failed_login),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
