/* Session lifecycle: express-session's save/touch/Set-Cookie table
 * (express-session's save and touch rules) and the gaps we close (lazy touch, absolute
 * timeout, merge of changed keys, no re-creation after destroy), driven
 * through real requests against a real LMDB store with a test clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "fixture.h"

/* ------------------------------------------------------------------------
 * Counting the store calls a request makes
 * ------------------------------------------------------------------------ */

static const struct sess_store_ops *real_ops;
static struct sess_store_ops counting_ops;
static int n_get, n_create, n_update, n_touch, n_destroy;
static enum sess_err fail_writes_with;

static enum sess_err
count_get(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_record *out,
          struct sess_buf *buf)
{
    n_get++;
    return real_ops->get(st, id, now_ms, out, buf);
}

static enum sess_err
count_create(struct sess_store *st, struct sess_str id, int64_t now_ms,
             const struct sess_record *rec)
{
    n_create++;
    return fail_writes_with ? fail_writes_with : real_ops->create(st, id, now_ms, rec);
}

static enum sess_err
count_update(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_patch *patch)
{
    n_update++;
    return fail_writes_with ? fail_writes_with : real_ops->update(st, id, now_ms, patch);
}

static enum sess_err
count_touch(struct sess_store *st, struct sess_str id, int64_t now_ms, int64_t expires_ms)
{
    n_touch++;
    return real_ops->touch(st, id, now_ms, expires_ms);
}

static enum sess_err
count_destroy(struct sess_store *st, struct sess_str id, int64_t now_ms)
{
    n_destroy++;
    return real_ops->destroy(st, id, now_ms);
}

static void
count_store_calls(struct sess_app *app)
{
    real_ops = app->store->ops;
    counting_ops = *real_ops;
    counting_ops.get = count_get;
    counting_ops.create = count_create;
    counting_ops.update = count_update;
    counting_ops.touch = count_touch;
    counting_ops.destroy = count_destroy;
    app->store->ops = &counting_ops;
    n_get = n_create = n_update = n_touch = n_destroy = 0;
    fail_writes_with = SESS_OK;
}

static void
reset_counts(void)
{
    n_get = n_create = n_update = n_touch = n_destroy = 0;
}

/* ------------------------------------------------------------------------
 * Routes used by the table
 * ------------------------------------------------------------------------ */

static void
route_reads(struct sess_request *req)
{
    sess_send_json(req, 200, json_object());
}

static void
route_counts(struct sess_request *req)
{
    json_int_t n = json_integer_value(sess_get(req, "views")) + 1;
    assert_int_equal(sess_set(req, "views", json_integer(n)), SESS_OK);
    sess_send_json(req, 200, json_pack("{s:I}", "views", n));
}

static void
route_sets_same_value(struct sess_request *req)
{
    json_t *v = sess_get(req, "views");
    assert_int_equal(sess_set(req, "views", json_copy(v)), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_regenerates(struct sess_request *req)
{
    assert_int_equal(sess_regenerate(req), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_regenerates_and_writes(struct sess_request *req)
{
    assert_int_equal(sess_regenerate(req), SESS_OK);
    assert_int_equal(sess_set(req, "who", json_string("alice")), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_destroys(struct sess_request *req)
{
    assert_int_equal(sess_destroy(req), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_saves_early(struct sess_request *req)
{
    assert_int_equal(sess_set(req, "early", json_true()), SESS_OK);
    assert_int_equal(sess_save(req), SESS_OK);
    sess_send_json(req, 200, json_object());
}

static void
route_sets_a(struct sess_request *req)
{
    assert_int_equal(sess_set(req, "a", json_integer(1)), SESS_OK);
    sess_send_json(req, 200, json_object());
}

/* ------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------ */

/* A session exists for the client `c` with views = 1, counts reset. */
static void
given_stored_session(struct fixture *f, struct client *c)
{
    fixture_get(f, c, route_counts);
    assert_non_null(c->cookie);
    reset_counts();
}

static void
test_row1_no_cookie_nothing_written_no_store_call_no_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_create + n_update + n_touch + n_destroy, 0);
    assert_null(c.set_cookie);
    client_free(&c);
}

static void
test_row2_no_cookie_data_written_creates_and_sets_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_get(f, &c, route_counts);
    assert_int_equal(n_create, 1);
    assert_non_null(c.set_cookie);
    assert_non_null(strstr(c.set_cookie, "; Path=/; Expires="));
    assert_non_null(strstr(c.set_cookie, "; Max-Age=1800; HttpOnly; SameSite=Lax"));
    assert_null(strstr(c.set_cookie, "Secure"));
    client_free(&c);
}

static void
test_row3_save_uninitialized_stores_an_empty_session(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "save_uninitialized = true\n");
    count_store_calls(f->app);
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_create, 1);
    assert_non_null(c.set_cookie);
    client_free(&c);
}

static void
test_row4_rolling_without_session_sends_nothing(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "rolling = true\n");
    count_store_calls(f->app);
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_create + n_update + n_touch, 0);
    assert_null(c.set_cookie);
    client_free(&c);
}

static void
test_row5_loaded_unchanged_touches_without_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "touch_after = 0\n");
    count_store_calls(f->app);
    given_stored_session(f, &c);
    f->now_ms += 1000;
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_get, 1);
    assert_int_equal(n_touch, 1);
    assert_int_equal(n_update, 0);
    assert_null(c.set_cookie);
    client_free(&c);
}

static void
test_row6_loaded_unchanged_rolling_touches_and_sets_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "rolling = true\ntouch_after = 0\n");
    count_store_calls(f->app);
    given_stored_session(f, &c);
    f->now_ms += 1000;
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_touch, 1);
    assert_non_null(c.set_cookie);
    client_free(&c);
}

static void
test_row7_resave_writes_unmodified_session_without_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "resave = true\n");
    count_store_calls(f->app);
    given_stored_session(f, &c);
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_update, 1);
    assert_null(c.set_cookie);
    client_free(&c);
}

static void
test_row8_loaded_changed_updates_and_sets_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    given_stored_session(f, &c);
    fixture_get(f, &c, route_counts);
    assert_int_equal(n_update, 1);
    assert_non_null(c.set_cookie);
    assert_string_equal(c.body, "{\"views\":2}\n");
    client_free(&c);
}

static void
test_row10_same_value_is_no_change(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    given_stored_session(f, &c);
    fixture_get(f, &c, route_sets_same_value);
    assert_int_equal(n_update, 0);
    assert_null(c.set_cookie);
    client_free(&c);
}

static void
test_row12_explicit_save_then_nothing_writes_once(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    given_stored_session(f, &c);
    fixture_get(f, &c, route_saves_early);
    assert_int_equal(n_update, 1);
    assert_int_equal(n_touch, 0);
    client_free(&c);
}

static void
test_row13_regenerate_destroys_old_and_sets_new_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    char old_cookie[512];

    given_stored_session(f, &c);
    snprintf(old_cookie, sizeof old_cookie, "%s", c.cookie);
    fixture_get(f, &c, route_regenerates);
    assert_int_equal(n_destroy, 1);
    assert_int_equal(n_create, 1);
    assert_non_null(c.set_cookie);
    assert_string_not_equal(c.cookie, old_cookie);
    client_free(&c);
}

static void
test_regenerate_old_id_no_longer_loads(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, old = {0};

    given_stored_session(f, &c);
    client_copy(&old, &c);
    fixture_get(f, &c, route_regenerates_and_writes);
    fixture_get(f, &old, route_counts);
    assert_string_equal(old.body, "{\"views\":1}\n");
    client_free(&old);
    client_free(&c);
}

static void
test_row15_destroy_deletes_record_and_expires_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, replay = {0};

    given_stored_session(f, &c);
    client_copy(&replay, &c);
    fixture_get(f, &c, route_destroys);
    assert_int_equal(n_destroy, 1);
    assert_non_null(c.set_cookie);
    assert_non_null(strstr(c.set_cookie, "Expires=Thu, 01 Jan 1970 00:00:00 GMT"));
    assert_non_null(strstr(c.set_cookie, "Max-Age=0"));
    fixture_get(f, &replay, route_counts);
    assert_string_equal(replay.body, "{\"views\":1}\n");
    client_free(&replay);
    client_free(&c);
}

static void
test_explicit_save_of_new_session_still_sets_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_get(f, &c, route_saves_early);
    assert_int_equal(n_create, 1);
    assert_non_null(c.set_cookie);
    client_free(&c);
}

static void
test_row19_secure_cookie_over_http_stores_nothing(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "cookie_secure = true\n");
    count_store_calls(f->app);
    fixture_get(f, &c, route_counts);
    assert_int_equal(n_create, 0);
    assert_null(c.set_cookie);
    client_free(&c);
}

static void
test_secure_cookie_over_https_carries_secure(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    f->https = true;
    fixture_get(f, &c, route_counts);
    assert_non_null(c.set_cookie);
    assert_non_null(strstr(c.set_cookie, "; Secure"));
    client_free(&c);
}

/* Browsers match the __Host- and __Secure- prefixes without regard to
 * case, so "__host-sid" is a __Host- cookie: with cookie_secure = auto it
 * carries Secure as "__Host-sid" does, or a browser would drop it. */
static void
test_cookie_prefixes_take_secure_whatever_their_case(void **state)
{
    static const char *const names[] = {"__Host-sid", "__host-sid", "__HOST-sid", "__secure-sid",
                                        "__SeCuRe-sid"};
    struct fixture *f = *state;
    char extra[64];

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct client c = {0};

        snprintf(extra, sizeof extra, "name = %s\n", names[i]);
        fixture_reopen(f, extra);
        f->https = false;
        fixture_get(f, &c, route_counts);
        if (c.set_cookie && !strstr(c.set_cookie, "; Secure"))
            fail_msg("%s over http: %s", names[i], c.set_cookie);
        client_free(&c);
        f->https = true;
        fixture_get(f, &c, route_counts);
        assert_non_null(c.set_cookie);
        if (!strstr(c.set_cookie, "; Secure"))
            fail_msg("%s over https: %s", names[i], c.set_cookie);
        client_free(&c);
    }
}

static void
test_forwarded_proto_ignored_without_trust_proxy(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    f->forwarded_proto = "https";
    fixture_get(f, &c, route_counts);
    assert_non_null(c.set_cookie);
    assert_null(strstr(c.set_cookie, "Secure"));
    client_free(&c);
}

static void
test_forwarded_proto_honoured_with_trust_proxy(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "trust_proxy = true\n");
    f->forwarded_proto = "HTTPS, http";
    fixture_get(f, &c, route_counts);
    assert_non_null(c.set_cookie);
    assert_non_null(strstr(c.set_cookie, "; Secure"));
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * Lazy touch, expiry, absolute timeout
 * ------------------------------------------------------------------------ */

static void
test_touch_after_skips_early_touches(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    given_stored_session(f, &c); /* touch_after defaults to 60 s */
    f->now_ms += 30 * 1000;
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_touch, 0);
    f->now_ms += 31 * 1000;
    fixture_get(f, &c, route_reads);
    assert_int_equal(n_touch, 1);
    client_free(&c);
}

static void
test_idle_session_expires_after_max_age(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    given_stored_session(f, &c);
    f->now_ms += 1800 * 1000;
    fixture_get(f, &c, route_counts);
    assert_string_equal(c.body, "{\"views\":1}\n");
    client_free(&c);
}

static void
test_touch_keeps_session_alive_past_max_age(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    given_stored_session(f, &c);
    for (int i = 0; i < 4; i++) {
        f->now_ms += 1000 * 1000;
        fixture_get(f, &c, route_reads);
    }
    fixture_get(f, &c, route_counts);
    assert_string_equal(c.body, "{\"views\":2}\n");
    client_free(&c);
}

static void
test_absolute_timeout_ends_an_active_session(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "absolute_timeout = 3600\n");
    count_store_calls(f->app);
    given_stored_session(f, &c);
    for (int i = 0; i < 3; i++) {
        f->now_ms += 1000 * 1000;
        fixture_get(f, &c, route_counts);
    }
    assert_string_equal(c.body, "{\"views\":4}\n");
    f->now_ms += 700 * 1000; /* 3700 s after creation */
    fixture_get(f, &c, route_counts);
    assert_string_equal(c.body, "{\"views\":1}\n");
    client_free(&c);
}

static void
test_cookie_max_age_capped_at_absolute_deadline(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fixture_reopen(f, "absolute_timeout = 2000\n");
    count_store_calls(f->app);
    given_stored_session(f, &c);
    f->now_ms += 1000 * 1000;
    fixture_get(f, &c, route_counts);
    assert_non_null(strstr(c.set_cookie, "Max-Age=1000;"));
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * Fixation, concurrency, failures
 * ------------------------------------------------------------------------ */

static void
test_forged_cookie_never_adopted(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    const char *forged =
        "s%3AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    c.cookie = strdup(forged);
    fixture_get(f, &c, route_counts);
    assert_string_equal(c.body, "{\"views\":1}\n");
    assert_non_null(c.cookie);
    assert_null(strstr(c.cookie, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA."));
    client_free(&c);
}

static void
test_valid_signature_on_unknown_id_gets_new_id(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, gone = {0};
    given_stored_session(f, &c);
    client_copy(&gone, &c);
    fixture_get(f, &c, route_destroys);
    fixture_get(f, &gone, route_counts);
    assert_string_equal(gone.body, "{\"views\":1}\n");
    assert_string_not_equal(gone.cookie, c.cookie ? c.cookie : "");
    client_free(&gone);
    client_free(&c);
}

/* Two requests of one session load the same copy; each changes another
 * key. Both changes survive (express-session's last write wins would lose
 * one). */
static void
test_concurrent_requests_merge_changed_keys(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request a, b;

    given_stored_session(f, &c);
    fixture_begin(f, &c, &a);
    fixture_begin(f, &c, &b);
    assert_int_equal(sess_set(&a, "a", json_integer(1)), SESS_OK);
    assert_int_equal(sess_set(&b, "b", json_integer(2)), SESS_OK);
    assert_int_equal(sess__session_commit(&a), SESS_OK);
    assert_int_equal(sess__session_commit(&b), SESS_OK);
    fixture_end(&a);
    fixture_end(&b);
    fixture_begin(f, &c, &a);
    assert_int_equal(json_integer_value(sess_get(&a, "a")), 1);
    assert_int_equal(json_integer_value(sess_get(&a, "b")), 2);
    assert_int_equal(json_integer_value(sess_get(&a, "views")), 1);
    fixture_end(&a);
    client_free(&c);
}

static void
test_destroyed_meanwhile_is_never_recreated(void **state)
{
    struct fixture *f = *state;
    struct client c = {0}, after = {0};
    struct sess_request slow;

    given_stored_session(f, &c);
    client_copy(&after, &c);
    fixture_begin(f, &c, &slow);
    fixture_get(f, &c, route_destroys);
    assert_int_equal(sess_set(&slow, "late", json_true()), SESS_OK);
    assert_int_equal(sess__session_commit(&slow), SESS_OK);
    assert_null(memmem(slow.headers.ptr ? slow.headers.ptr : "", slow.headers.len, "Set-Cookie", 10));
    fixture_end(&slow);
    fixture_get(f, &after, route_counts);
    assert_string_equal(after.body, "{\"views\":1}\n");
    client_free(&after);
    client_free(&c);
}

static void
test_failed_write_answers_503_without_cookie(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    fail_writes_with = SESS_ESTORE;
    fixture_get(f, &c, route_counts);
    assert_int_equal(c.status, 503);
    assert_null(c.set_cookie);
    client_free(&c);
}

static void
test_session_json_has_express_cookie_shape(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;
    json_t *j, *cookie;

    given_stored_session(f, &c);
    fixture_begin(f, &c, &r);
    j = sess_to_json(&r);
    cookie = json_object_get(j, "cookie");
    assert_int_equal(json_integer_value(json_object_get(cookie, "originalMaxAge")), 1800000);
    assert_string_equal(json_string_value(json_object_get(cookie, "expires")),
                        "2026-11-22T18:30:00.000Z");
    assert_true(json_is_true(json_object_get(cookie, "httpOnly")));
    assert_true(json_is_false(json_object_get(cookie, "secure")));
    assert_string_equal(json_string_value(json_object_get(cookie, "path")), "/");
    assert_string_equal(json_string_value(json_object_get(cookie, "sameSite")), "lax");
    assert_int_equal(json_integer_value(json_object_get(j, "views")), 1);
    json_decref(j);
    fixture_end(&r);
    client_free(&c);
}

static void
test_unset_removes_key_from_store(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;

    fixture_get(f, &c, route_sets_a);
    fixture_begin(f, &c, &r);
    assert_int_equal(sess_unset(&r, "a"), SESS_OK);
    assert_int_equal(sess_set(&r, "b", json_true()), SESS_OK);
    assert_int_equal(sess__session_commit(&r), SESS_OK);
    fixture_end(&r);
    fixture_begin(f, &c, &r);
    assert_null(sess_get(&r, "a"));
    assert_non_null(sess_get(&r, "b"));
    fixture_end(&r);
    client_free(&c);
}

static void
test_cookie_key_cannot_be_set(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;
    fixture_begin(f, &c, &r);
    assert_int_equal(sess_set(&r, "cookie", json_true()), SESS_EBADINPUT);
    assert_int_equal(sess_set(&r, "", json_true()), SESS_EBADINPUT);
    fixture_end(&r);
    client_free(&c);
}

static void
test_get_str_follows_dotted_path(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;
    fixture_begin(f, &c, &r);
    assert_int_equal(sess_set(&r, "user", json_pack("{s:s}", "username", "alice")), SESS_OK);
    assert_string_equal(sess_get_str(&r, "user.username"), "alice");
    assert_null(sess_get_str(&r, "user.role"));
    assert_null(sess_get_str(&r, "user"));
    fixture_end(&r);
    client_free(&c);
}

/* Stores `text` as the data of session `id`, as another writer (Express
 * through Redis, an older version) may have laid it out. */
static void
store_text(struct fixture *f, const char *id, const char *text)
{
    struct sess_store *st = f->app->store;
    struct sess_record rec = {.expires_ms = FIXTURE_EPOCH_MS + 1800000,
                              .created_ms = FIXTURE_EPOCH_MS,
                              .data = sess_str_c(text)};
    enum sess_err err = st->ops->destroy(st, sess_str_c(id), FIXTURE_EPOCH_MS);

    assert_true(err == SESS_OK || err == SESS_ENOTFOUND);
    assert_int_equal(st->ops->create(st, sess_str_c(id), FIXTURE_EPOCH_MS, &rec), SESS_OK);
}

/* The session's data as a route sees it (sess_to_json without "cookie"),
 * compact, or "none" when the record did not load. */
static char *
loaded_data(struct fixture *f, struct client *c)
{
    struct sess_request r;
    char *text;
    json_t *j;

    fixture_begin(f, c, &r);
    if (!r.is_loaded) {
        fixture_end(&r);
        return strdup("none");
    }
    j = sess_to_json(&r);
    json_object_del(j, "cookie");
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    fixture_end(&r);
    return text;
}

/* The stored "cookie" member is never data, wherever it stands and however
 * it is spaced; nested "cookie" keys and look-alike strings are data. */
static void
test_stored_cookie_member_is_dropped_in_any_layout(void **state)
{
    static const char *const cases[][2] = {
        {"{\"cookie\":{\"path\":\"/\"},\"a\":1}", "{\"a\":1}"},
        {"{\"a\":1,\"cookie\":{\"x\":\"}\\\"{\"},\"b\":[1,{\"cookie\":2}]}",
         "{\"a\":1,\"b\":[1,{\"cookie\":2}]}"},
        {"{\"a\":\"x\\\"y\",\"cookie\":{}}", "{\"a\":\"x\\\"y\"}"},
        {"{\"cookie\":{\"expires\":\"2026-11-22T18:30:00.000Z\"}}", "{}"},
        {" {\n \"cookie\" : { } ,\t\"a\" : 1 } ", "{\"a\":1}"},
        {"{\"cookie\":1,\"a\":2,\"cookie\":3}", "{\"a\":2}"},
        {"{\"cooki\\u0065\":1,\"a\":2}", "{\"a\":2}"},
        {"{\"a\":\"\\\"cookie\\\":1\",\"cookies\":[\"cookie\"]}",
         "{\"a\":\"\\\"cookie\\\":1\",\"cookies\":[\"cookie\"]}"},
        {"{\"_x\":{\"cookie\":{}},\"cookie\":null}", "{\"_x\":{\"cookie\":{}}}"},
        {"{\"cookie\":{},\"a\":tru}", "none"},
        {"{\"cookie\":{}}x", "none"},
        {"[\"cookie\"]", "none"},
    };
    struct fixture *f = *state;
    struct client c = {0};
    struct sess_request r;
    char id[SESS_ID_MAX_LEN + 1];

    given_stored_session(f, &c);
    fixture_begin(f, &c, &r);
    strcpy(id, r.id);
    fixture_end(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got;
        store_text(f, id, cases[i][0]);
        got = loaded_data(f, &c);
        assert_string_equal(got, cases[i][1]);
        free(got);
    }
    client_free(&c);
}

static int
setup(void **state)
{
    struct fixture *f = fixture_new("");
    count_store_calls(f->app);
    *state = f;
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_row1_no_cookie_nothing_written_no_store_call_no_cookie),
        T(test_row2_no_cookie_data_written_creates_and_sets_cookie),
        T(test_row3_save_uninitialized_stores_an_empty_session),
        T(test_row4_rolling_without_session_sends_nothing),
        T(test_row5_loaded_unchanged_touches_without_cookie),
        T(test_row6_loaded_unchanged_rolling_touches_and_sets_cookie),
        T(test_row7_resave_writes_unmodified_session_without_cookie),
        T(test_row8_loaded_changed_updates_and_sets_cookie),
        T(test_row10_same_value_is_no_change),
        T(test_row12_explicit_save_then_nothing_writes_once),
        T(test_row13_regenerate_destroys_old_and_sets_new_cookie),
        T(test_regenerate_old_id_no_longer_loads),
        T(test_row15_destroy_deletes_record_and_expires_cookie),
        T(test_explicit_save_of_new_session_still_sets_cookie),
        T(test_row19_secure_cookie_over_http_stores_nothing),
        T(test_secure_cookie_over_https_carries_secure),
        T(test_cookie_prefixes_take_secure_whatever_their_case),
        T(test_forwarded_proto_ignored_without_trust_proxy),
        T(test_forwarded_proto_honoured_with_trust_proxy),
        T(test_touch_after_skips_early_touches),
        T(test_idle_session_expires_after_max_age),
        T(test_touch_keeps_session_alive_past_max_age),
        T(test_absolute_timeout_ends_an_active_session),
        T(test_cookie_max_age_capped_at_absolute_deadline),
        T(test_stored_cookie_member_is_dropped_in_any_layout),
        T(test_forged_cookie_never_adopted),
        T(test_valid_signature_on_unknown_id_gets_new_id),
        T(test_concurrent_requests_merge_changed_keys),
        T(test_destroyed_meanwhile_is_never_recreated),
        T(test_failed_write_answers_503_without_cookie),
        T(test_session_json_has_express_cookie_shape),
        T(test_unset_removes_key_from_store),
        T(test_cookie_key_cannot_be_set),
        T(test_get_str_follows_dotted_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
