/* One session in the Redis store (store/redis/sessions.c) against a real
 * redis-server (redis_fixture.h), looked at through a second, direct
 * connection: connect-redis's layout (key, JSON value, TTL), sessions an
 * Express app wrote, the absolute deadline kept through Express's saves,
 * create, get, touch and destroy, and sealed values. Updates are
 * test_redis_update.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sodium.h>

#include "redis_fixture.h"

/* ------------------------------------------------------------------------
 * The layout, as an Express app sees it
 * ------------------------------------------------------------------------ */

/* A session's lifetime, handle and client travel in the value's "_fcgi"
 * object, through the fast reader and through the parser alike (an
 * escaped User-Agent takes the parser). */
static void
test_session_metadata_round_trips(void **ctx)
{
    static const char *const agents[] = {"Mozilla/5.0 (X11)", "quote \" and \\ back"};
    struct fx *f = *ctx;
    int64_t now = now_ms();

    NEEDS_SERVER();
    for (size_t i = 0; i < 2; i++) {
        struct sess_record rec = record(now + 30 * MIN_MS, now + 600 * MIN_MS, "alice",
                                        "{\"cookie\":{\"originalMaxAge\":2592000000},\"n\":1}");
        redisReply *r;

        rec.idle_ms = 2592000000LL;
        rec.lifetime_ms = -1;
        rec.is_remembered = true;
        rec.has_handle = true;
        memset(rec.handle, 0xA5, sizeof rec.handle);
        rec.client_addr = sess_str_c("203.0.113.9");
        rec.user_agent = sess_str_c(agents[i]);
        rec.last_seen_ms = now - 5000;
        (void)f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms());
        assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_OK);
        assert_int_equal(get(f, ID1), SESS_OK);
        assert_int_equal(f->rec.idle_ms, 2592000000LL);
        assert_int_equal(f->rec.lifetime_ms, -1);
        assert_true(f->rec.is_remembered);
        assert_true(f->rec.has_handle);
        assert_memory_equal(f->rec.handle, rec.handle, sizeof rec.handle);
        assert_str_view(f->rec.client_addr, "203.0.113.9");
        assert_str_view(f->rec.user_agent, agents[i]);
        assert_int_equal(f->rec.last_seen_ms, now - 5000);
        assert_str_view(f->rec.owner, "alice");
        assert_str_view(f->rec.data, "{\"cookie\":{\"originalMaxAge\":2592000000},\"n\":1}");
        /* Express sees the lifetime where it looks: cookie.originalMaxAge. */
        r = direct(f, "GET sess:" ID1);
        assert_non_null(strstr(r->str, "\"originalMaxAge\":2592000000"));
        freeReplyObject(r);
    }
}

static void
test_create_then_get_returns_the_record(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + 600 * MIN_MS, "alice",
           "{\"cookie\":{\"path\":\"/\"},\"user\":{\"username\":\"alice\"},\"n\":1}");
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.owner, "alice");
    assert_str_view(f->rec.data, "{\"cookie\":{\"path\":\"/\"},\"user\":{\"username\":\"alice\"},"
                                 "\"n\":1}");
    assert_int_equal(f->rec.data.ptr[f->rec.data.len], '\0');
    assert_int_equal(f->rec.owner.ptr[f->rec.owner.len], '\0');
    assert_int_equal(f->rec.created_ms, 1795370400000LL);
    assert_int_equal(f->rec.deadline_ms, now + 600 * MIN_MS);
    /* EX rounds up to whole seconds, as connect-redis does. */
    assert_near(f->rec.expires_ms, now + 30 * MIN_MS, 1500);
}

static void
test_value_is_plain_json_under_sess_key_with_ttl_from_expiry(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();
    json_t *v, *meta;
    long long pttl;

    NEEDS_SERVER();
    /* connect-redis's TTL: 1,799,995 ms ahead gives EX 1800. */
    create(f, ID1, now + 1799995, now + 600 * MIN_MS, "alice",
           "{\"cookie\":{\"originalMaxAge\":1800000},\"views\":2}");
    v = direct_json(f, "sess:" ID1);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "views")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v, "cookie"), "originalMaxAge")),
        1800000);
    meta = json_object_get(v, "_fcgi");
    assert_true(json_is_object(meta));
    assert_int_equal(json_integer_value(json_object_get(meta, "created")), 1795370400000LL);
    assert_int_equal(json_integer_value(json_object_get(meta, "deadline")), now + 600 * MIN_MS);
    assert_string_equal(json_string_value(json_object_get(meta, "owner")), "alice");
    json_decref(v);
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 1795000 && pttl <= 1800000);
    assert_int_equal(direct_int(f, "TTL sess:" ID1), 1800);
    /* The session, and alice's index outside connect-redis's prefix. */
    assert_int_equal(direct_int(f, "DBSIZE"), 2);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:sess:user:alice " ID1), 1);
}

static void
test_ttl_stops_at_the_absolute_deadline(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();
    long long pttl;

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + 10000, "", "{}");
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 9000 && pttl <= 10000);
}

static void
test_get_of_an_express_session_takes_expiry_from_the_ttl(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();
    char data[1024];

    NEEDS_SERVER();
    /* Touched by connect-redis since its last save: cookie.expires is in
     * the past, the TTL is what counts. */
    express_set(f, EXPRESS_ID, "2020-01-01T00:00:00.000Z",
                "\"authenticated\":true,\"user\":{\"username\":\"alice\",\"role\":\"admin\"}", 600);
    assert_int_equal(get(f, EXPRESS_ID), SESS_OK);
    assert_near(f->rec.expires_ms, now + 600000, 1500);
    assert_near(f->rec.created_ms, now, 1500);
    assert_int_equal(f->rec.deadline_ms, 0);
    assert_str_view(f->rec.owner, "alice");
    snprintf(data, sizeof data,
             "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"2020-01-01T00:00:00.000Z\","
             "\"secure\":false,\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},"
             "\"authenticated\":true,\"user\":{\"username\":\"alice\",\"role\":\"admin\"}}");
    assert_str_view(f->rec.data, data);
}

/* express-session has no absolute timeout: a session an Express app made
 * and keeps alive would never end here either. It gets absolute_timeout
 * from our first reading, written into the value (TTL kept) so that later
 * readings keep the same deadline. */
static void
test_express_session_ends_at_a_deadline_from_first_sight(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms(), deadline;
    long long pttl;
    json_t *v;

    NEEDS_SERVER();
    sess__store_close(f->st);
    f->cfg.absolute_timeout_s = 3600;
    open_store(f);
    /* A long cookie maxAge: the TTL outlives the absolute timeout. */
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z",
                "\"user\":{\"username\":\"alice\",\"role\":\"admin\"}", 86400);
    assert_int_equal(get(f, EXPRESS_ID), SESS_OK);
    assert_near(f->rec.deadline_ms, now + 3600 * 1000, 1500);
    deadline = f->rec.deadline_ms;
    v = direct_json(f, "sess:" EXPRESS_ID);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "_fcgi"), "deadline")),
                     deadline);
    assert_non_null(json_object_get(v, "cookie"));
    json_decref(v);
    pttl = direct_int(f, "PTTL sess:" EXPRESS_ID);
    assert_true(pttl > 86000 * 1000LL && pttl <= 86400 * 1000LL);
    /* Read again, later: the same deadline, and past it the session is gone
     * though its TTL runs for most of a day. */
    assert_int_equal(
        f->st->ops->get(f->st, SESS_STR_LIT(EXPRESS_ID), now + 1800 * 1000, &f->rec, &f->buf),
        SESS_OK);
    assert_int_equal(f->rec.deadline_ms, deadline);
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(EXPRESS_ID), deadline, &f->rec, &f->buf),
                     SESS_ENOTFOUND);
}

static void
test_get_of_an_anonymous_express_session_has_no_owner(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"views\":3", 60);
    assert_int_equal(get(f, EXPRESS_ID), SESS_OK);
    assert_int_equal(f->rec.owner.len, 0);
    assert_non_null(strstr(f->rec.data.ptr, "\"views\":3"));
}

static void
test_get_strips_our_key_however_express_rewrote_it(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    /* Not first, with spaces and an escaped owner: the parser's way. */
    direct_ok(f, "SET sess:%s %s EX 60", ID1,
              "{\"cookie\":{},\"_fcgi\": {\"deadline\":0, \"owner\":\"o\\\"k\", \"created\":42},"
              "\"n\":1}");
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_int_equal(f->rec.created_ms, 42);
    assert_str_view(f->rec.owner, "o\"k");
    assert_null(strstr(f->rec.data.ptr, "_fcgi"));
    assert_non_null(strstr(f->rec.data.ptr, "\"n\":1"));
}

static void
test_get_of_unknown_corrupt_or_foreign_values_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    assert_int_equal(get(f, ID1), SESS_ENOTFOUND);
    direct_ok(f, "SET sess:%s %s", ID1, "not json at all");
    assert_int_equal(get(f, ID1), SESS_ENOTFOUND);
    direct_ok(f, "HSET sess:%s a b", ID2);
    assert_int_equal(get(f, ID2), SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->get(f->st, (struct sess_str){"", 0}, now_ms(), &f->rec, &f->buf),
                     SESS_ENOTFOUND);
}

static void
test_get_after_the_deadline_is_not_found(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(ID1), now + MIN_MS, &f->rec, &f->buf),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(ID1), now + MIN_MS - 1, &f->rec, &f->buf),
                     SESS_OK);
    /* sessctl's "stored at all". */
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(ID1), INT64_MIN, &f->rec, &f->buf),
                     SESS_OK);
}

static void
test_create_of_taken_id_is_eexists_and_of_dead_record_stores_nothing(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "", "{\"b\":2}");

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{\"a\":1}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_EEXISTS);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_non_null(strstr(f->rec.data.ptr, "\"a\":1"));

    rec = record(now_ms() - 1, 0, "", "{}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 0);
}

static void
test_create_refuses_data_that_is_not_an_object(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "", "[1,2]");

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_EBADINPUT);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
}

static void
test_ids_travel_as_arguments_not_as_command_text(void **ctx)
{
    struct fx *f = *ctx;
    static const char id[] = "x\r\nFLUSHALL\r\n y";

    NEEDS_SERVER();
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    create(f, id, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(direct_int(f, "EXISTS sess:%b", id, sizeof id - 1), 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
    assert_int_equal(get(f, id), SESS_OK);
}

/* ------------------------------------------------------------------------
 * touch, destroy
 * ------------------------------------------------------------------------ */

static void
test_touch_sets_the_ttl_and_leaves_the_value_alone(void **ctx)
{
    struct fx *f = *ctx;
    redisReply *before, *after;
    long long pttl;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "dave", "{\"a\":1}");
    before = direct(f, "GET sess:" ID1);
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), now_ms(), now_ms() + 45 * MIN_MS),
                     SESS_OK);
    after = direct(f, "GET sess:" ID1);
    assert_int_equal(before->len, after->len);
    assert_memory_equal(before->str, after->str, before->len);
    freeReplyObject(before);
    freeReplyObject(after);
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 45 * MIN_MS - 2000 && pttl <= 45 * MIN_MS);
}

static void
test_touch_of_absent_is_not_found_and_into_the_past_deletes(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), now_ms(), now_ms() + MIN_MS),
                     SESS_ENOTFOUND);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID2), now_ms(), now_ms() - 1), SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 0);
}

static void
test_destroy_deletes_the_key_and_absent_is_fine(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{}");
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms()), SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms()), SESS_OK);
}

/* ------------------------------------------------------------------------
 * encrypt = true
 * ------------------------------------------------------------------------ */

static void
test_sealed_values_hide_the_data_and_refuse_plain_ones(void **ctx)
{
    struct fx *f = *ctx;
    redisReply *r;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "alice", "{\"user\":{\"username\":\"alice\"}}");
    r = direct(f, "GET sess:" ID1);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_memory_equal(r->str, "fcgi-sealed:1:", 14);
    assert_null(memmem(r->str, r->len, "alice", 5));
    freeReplyObject(r);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.owner, "alice");
    assert_str_view(f->rec.data, "{\"user\":{\"username\":\"alice\"}}");
    /* Someone who can write to Redis cannot forge a plain session. */
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"alice\"}", 60);
    assert_int_equal(get(f, EXPRESS_ID), SESS_ENOTFOUND);
    /* Nor move a sealed value to another id. */
    direct_ok(f, "RENAME sess:" ID1 " sess:" ID2);
    assert_int_equal(get(f, ID2), SESS_ENOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_get_returns_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_metadata_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_value_is_plain_json_under_sess_key_with_ttl_from_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_stops_at_the_absolute_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_express_session_ends_at_a_deadline_from_first_sight,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_of_an_express_session_takes_expiry_from_the_ttl,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_of_an_anonymous_express_session_has_no_owner,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_strips_our_key_however_express_rewrote_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_of_unknown_corrupt_or_foreign_values_is_not_found,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_after_the_deadline_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_create_of_taken_id_is_eexists_and_of_dead_record_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_data_that_is_not_an_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ids_travel_as_arguments_not_as_command_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_touch_sets_the_ttl_and_leaves_the_value_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_touch_of_absent_is_not_found_and_into_the_past_deletes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_deletes_the_key_and_absent_is_fine, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealed_values_hide_the_data_and_refuse_plain_ones,
                                        setup_sealed, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
