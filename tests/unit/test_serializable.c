/* Concurrent requests of one session end as if they had run one after the
 * other (README, "Parallel requests of one session"): the conflict table (what a request read or changed x
 * what another changed meanwhile), the re-run of a route that lost and its
 * bound, changes made in place, and the explicit commit. Real requests
 * against a real LMDB store, interleaved by hand. The patch itself, as
 * carried to another process, is tests/unit/store/test_patch.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "fixture.h"

/* What the routes below reach outside their request: the fixture, the
 * client whose session they share, and how often they ran. */
static struct fixture *the_fixture;
static struct client *the_client;
static int runs;
static int meddle_until_run;

static void
route_counts(struct sess_request *req)
{
    json_int_t n = json_integer_value(sess_get(req, "n")) + 1;
    assert_int_equal(sess_set(req, "n", json_integer(n)), SESS_OK);
    sess_send_json(req, 200, json_pack("{s:I}", "n", n));
}

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

/* Counts, but another request counts too between its read and its write,
 * on its first `meddle_until_run` runs. */
static void
route_counts_while_another_does(struct sess_request *req)
{
    json_int_t n = json_integer_value(sess_get(req, "n"));

    if (++runs <= meddle_until_run)
        another_request_counts();
    assert_int_equal(sess_set(req, "n", json_integer(n + 1)), SESS_OK);
    assert_int_equal(sess_header(req, "X-Run", runs == 1 ? "first" : "again"), SESS_OK);
    sess_send_json(req, 200, json_pack("{s:I}", "n", n + 1));
}

/* A session {"n": 1, "a": 1, "b": 1} for the_client. */
static void
given_session(struct fixture *f, struct client *c)
{
    struct sess_request req;

    fixture_get(f, c, route_counts);
    fixture_begin(f, c, &req);
    assert_int_equal(sess_set(&req, "a", json_integer(1)), SESS_OK);
    assert_int_equal(sess_set(&req, "b", json_integer(1)), SESS_OK);
    assert_int_equal(sess__session_commit(&req), SESS_OK);
    fixture_end(&req);
}

static json_int_t
stored_int(struct fixture *f, struct client *c, const char *key)
{
    struct sess_request req;
    json_int_t v;

    fixture_begin(f, c, &req);
    v = json_integer_value(sess_get(&req, key));
    fixture_end(&req);
    return v;
}

/* ------------------------------------------------------------------------
 * The conflict table: request A loads, B changes and commits, A commits
 * ------------------------------------------------------------------------ */

enum a_does { A_READS_AND_SETS, A_READS_SETS_OTHER, A_SETS_BLIND, A_ONLY_READS, A_READS_ABSENT };

/* A loads; B sets `b_key` to `b_value` (or destroys, with NULL) and commits;
 * A acts and commits. Returns A's commit result. */
static enum sess_err
interleave(struct fixture *f, struct client *c, enum a_does a_does, const char *b_key,
           json_int_t b_value)
{
    struct sess_request a, b;
    enum sess_err err;

    fixture_begin(f, c, &a);
    if (a_does != A_SETS_BLIND)
        (void)sess_get(&a, a_does == A_READS_ABSENT ? "x" : "a");
    fixture_begin(f, c, &b);
    if (b_key)
        assert_int_equal(sess_set(&b, b_key, json_integer(b_value)), SESS_OK);
    else
        assert_int_equal(sess_destroy(&b), SESS_OK);
    assert_int_equal(sess__session_commit(&b), SESS_OK);
    fixture_end(&b);
    switch (a_does) {
    case A_READS_AND_SETS:
    case A_SETS_BLIND:
        assert_int_equal(sess_set(&a, "a", json_integer(10)), SESS_OK);
        break;
    case A_READS_SETS_OTHER:
        assert_int_equal(sess_set(&a, "c", json_integer(10)), SESS_OK);
        break;
    case A_READS_ABSENT:
        assert_int_equal(sess_set(&a, "x", json_integer(10)), SESS_OK);
        break;
    case A_ONLY_READS:
        break;
    }
    err = sess__session_commit(&a);
    fixture_end(&a);
    return err;
}

/* One row: what A does, what B sets meanwhile, what A's commit answers,
 * and a key's value stored afterwards. */
struct conflict_row {
    const char *name;
    enum a_does a_does;
    const char *b_key;
    json_int_t b_value;
    enum sess_err a_commit;
    const char *key;
    json_int_t stored;
};

static const struct conflict_row conflict_table[] = {
    {"read key changed meanwhile", A_READS_AND_SETS, "a", 2, SESS_ECONFLICT, "a", 2},
    {"read key changed, another key written", A_READS_SETS_OTHER, "a", 2, SESS_ECONFLICT, "c", 0},
    {"another key changed meanwhile", A_READS_AND_SETS, "b", 2, SESS_OK, "a", 10},
    {"blind write of a changed key", A_SETS_BLIND, "a", 2, SESS_OK, "a", 10},
    /* Compared by value: 1 -> 1 is no change to what A read. */
    {"same value written meanwhile", A_READS_AND_SETS, "a", 1, SESS_OK, "a", 10},
    {"a request that only reads", A_ONLY_READS, "a", 2, SESS_OK, "a", 2},
    {"key read absent, created meanwhile", A_READS_ABSENT, "x", 2, SESS_ECONFLICT, "x", 2},
};

static void
test_conflict_table(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof conflict_table / sizeof conflict_table[0]; i++) {
        const struct conflict_row *row = &conflict_table[i];
        struct client c = {0};

        print_message("# %s\n", row->name);
        given_session(f, &c);
        assert_int_equal(interleave(f, &c, row->a_does, row->b_key, row->b_value), row->a_commit);
        assert_int_equal(stored_int(f, &c, row->key), row->stored);
        client_free(&c);
    }
}

static void
test_destroyed_meanwhile_stays_destroyed(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;

    given_session(f, &c);
    assert_int_equal(interleave(f, &c, A_READS_AND_SETS, NULL, 0), SESS_OK);
    fixture_begin(f, &c, &r);
    assert_false(sess_exists(&r));
    fixture_end(&r);
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * Re-running the route
 * ------------------------------------------------------------------------ */

static void
test_route_that_lost_runs_again_on_the_fresh_record(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    given_session(f, &c);
    the_fixture = f;
    the_client = &c;
    runs = 0;
    meddle_until_run = 2;
    fixture_get(f, &c, route_counts_while_another_does);
    assert_int_equal(runs, 3);
    assert_int_equal(c.status, 200);
    /* n = 1, two counts by the other request, then this one's. */
    assert_string_equal(c.body, "{\"n\":4}\n");
    assert_int_equal(stored_int(f, &c, "n"), 4);
    client_free(&c);
}

static void
test_headers_of_a_lost_run_are_dropped(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request req;
    char *h;

    given_session(f, &c);
    the_fixture = f;
    the_client = &c;
    runs = 0;
    meddle_until_run = 1;
    fixture_begin(f, &c, &req); /* for its environment */
    fixture_end(&req);
    req.cgi_out = fopen("/dev/null", "w");
    assert_non_null(req.cgi_out);
    sess__request_handle(&req, route_counts_while_another_does);
    h = strndup(req.headers.ptr, req.headers.len);
    assert_non_null(strstr(h, "X-Run: again"));
    assert_null(strstr(h, "X-Run: first"));
    free(h);
    sess__request_reset(&req);
    sess__buf_free(&req.headers);
    sess__buf_free(&req.out);
    fclose(req.cgi_out);
    client_free(&c);
}

static void
test_route_that_always_loses_gets_503_with_retry_after(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    given_session(f, &c);
    the_fixture = f;
    the_client = &c;
    runs = 0;
    meddle_until_run = 1000;
    fixture_get(f, &c, route_counts_while_another_does);
    assert_int_equal(runs, SESS_RERUN_MAX);
    assert_int_equal(c.status, 503);
    assert_null(c.set_cookie);
    /* Only the other request's counts are stored. */
    assert_int_equal(stored_int(f, &c, "n"), 1 + SESS_RERUN_MAX);
    client_free(&c);
}

static void
test_explicit_save_reports_the_conflict_with_the_fresh_session(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request a;

    given_session(f, &c);
    the_fixture = f;
    the_client = &c;
    fixture_begin(f, &c, &a);
    assert_int_equal(json_integer_value(sess_get(&a, "n")), 1);
    another_request_counts();
    assert_int_equal(sess_set(&a, "n", json_integer(2)), SESS_OK);
    assert_int_equal(sess_save(&a), SESS_ECONFLICT);
    /* The request holds what is stored now, and can redo its work. */
    assert_int_equal(json_integer_value(sess_get(&a, "n")), 2);
    assert_int_equal(sess_set(&a, "n", json_integer(3)), SESS_OK);
    assert_int_equal(sess_save(&a), SESS_OK);
    fixture_end(&a);
    assert_int_equal(stored_int(f, &c, "n"), 3);
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * Changes made in place
 * ------------------------------------------------------------------------ */

static void
route_fills_cart(struct sess_request *req)
{
    assert_int_equal(sess_set(req, "cart", json_pack("{s:i}", "apple", 1)), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_adds_pear_and_sets_again(struct sess_request *req)
{
    json_t *cart = sess_get(req, "cart");

    assert_int_equal(json_object_set_new(cart, "pear", json_integer(3)), 0);
    assert_int_equal(sess_set(req, "cart", json_incref(cart)), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_adds_plum_in_place_only(struct sess_request *req)
{
    assert_int_equal(json_object_set_new(sess_get(req, "cart"), "plum", json_integer(2)), 0);
    sess_send_json(req, 200, json_object());
}

static void
route_changes_in_place_and_back(struct sess_request *req)
{
    json_t *cart = sess_get(req, "cart");

    assert_int_equal(json_object_set_new(cart, "fig", json_integer(9)), 0);
    assert_int_equal(json_object_del(cart, "fig"), 0);
    sess_send_json(req, 200, json_object());
}

static void
route_shows_session(struct sess_request *req)
{
    sess_send_json(req, 200, sess_to_json(req));
}

static json_t *
stored_cart(struct fixture *f, struct client *c)
{
    struct client look = {0};
    json_error_t jerr;
    json_t *all, *cart;

    client_copy(&look, c);
    fixture_get(f, &look, route_shows_session);
    all = json_loads(look.body, 0, &jerr);
    cart = json_incref(json_object_get(all, "cart"));
    json_decref(all);
    client_free(&look);
    return cart;
}

static void
test_value_changed_in_place_and_set_again_is_saved(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    json_t *cart;

    fixture_get(f, &c, route_fills_cart);
    fixture_get(f, &c, route_adds_pear_and_sets_again);
    cart = stored_cart(f, &c);
    assert_int_equal(json_integer_value(json_object_get(cart, "pear")), 3);
    assert_int_equal(json_integer_value(json_object_get(cart, "apple")), 1);
    json_decref(cart);
    client_free(&c);
}

static void
test_value_changed_in_place_without_set_is_saved(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    json_t *cart;

    fixture_get(f, &c, route_fills_cart);
    fixture_get(f, &c, route_adds_plum_in_place_only);
    cart = stored_cart(f, &c);
    assert_int_equal(json_integer_value(json_object_get(cart, "plum")), 2);
    json_decref(cart);
    client_free(&c);
}

static void
test_value_changed_in_place_and_back_is_no_change(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    fixture_get(f, &c, route_fills_cart);
    fixture_get(f, &c, route_changes_in_place_and_back);
    /* No change: no Set-Cookie (rolling is off), as for a page view. */
    assert_int_equal(c.status, 200);
    assert_null(c.set_cookie);
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * The patch carries the reads (group commit hands it to another process)
 * ------------------------------------------------------------------------ */

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_conflict_table),
        T(test_destroyed_meanwhile_stays_destroyed),
        T(test_route_that_lost_runs_again_on_the_fresh_record),
        T(test_headers_of_a_lost_run_are_dropped),
        T(test_route_that_always_loses_gets_503_with_retry_after),
        T(test_explicit_save_reports_the_conflict_with_the_fresh_session),
        T(test_value_changed_in_place_and_set_again_is_saved),
        T(test_value_changed_in_place_without_set_is_saved),
        T(test_value_changed_in_place_and_back_is_no_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
