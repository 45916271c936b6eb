/* Accounts and login throttles in the Redis store (store/redis/accounts.c)
 * against a real redis-server (redis_fixture.h): accounts put, read,
 * listed, replaced only over what was read, and deleted; failure counters
 * under a hashed key whose TTL is the window. */
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
 * Accounts and throttles
 * ------------------------------------------------------------------------ */

static bool
visit_user(void *arg, struct sess_str name, struct sess_str value)
{
    int *n = arg;

    (*n)++;
    assert_true(value.len > 0);
    return name.len > 0;
}

static void
test_users_are_put_read_listed_and_deleted(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf value = {0};
    int n = 0, i;

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_put(f->st, SESS_STR_LIT("zoe"), now_ms(),
                                          SESS_STR_LIT("{\"role\":\"admin\",\"hash\":\"h\"}"),
                                          false),
                     SESS_OK);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value), SESS_OK);
    assert_string_equal(value.ptr, "{\"role\":\"admin\",\"hash\":\"h\"}");
    assert_int_equal(value.len, strlen(value.ptr));
    redisReply *r = direct(f, "HGET fcgi-session:users zoe");
    assert_string_equal(r->str, "{\"role\":\"admin\",\"hash\":\"h\"}");
    freeReplyObject(r);
    /* A creation finds the name taken and leaves the account alone. */
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("zoe"), now_ms(), SESS_STR_LIT("{}"), true),
        SESS_EEXISTS);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value), SESS_OK);
    assert_string_equal(value.ptr, "{\"role\":\"admin\",\"hash\":\"h\"}");
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("new"), now_ms(), SESS_STR_LIT("{}"), true),
        SESS_OK);
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("new"), now_ms()), SESS_OK);
    for (i = 0; i < 150; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        assert_int_equal(
            f->st->ops->user_put(f->st, sess_str_c(name), now_ms(), SESS_STR_LIT("{}"), false),
            SESS_OK);
    }
    assert_int_equal(f->st->ops->user_each(f->st, now_ms(), visit_user, &n), SESS_OK);
    assert_int_equal(n, 151);
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("zoe"), now_ms()), SESS_OK);
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("zoe"), now_ms()), SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value),
                     SESS_ENOTFOUND);
    sess__buf_free(&value);
}

static void
test_throttle_counts_failures_in_a_window_under_a_hashed_key(void **ctx)
{
    struct fx *f = *ctx;
    unsigned char hash[32];
    char key[128] = "fcgi-session:throttle:";
    uint32_t count;
    int64_t first, first1 = 0, now = now_ms();
    long long pttl;
    int i;

    NEEDS_SERVER();
    for (i = 1; i <= 3; i++) {
        assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("user:alice"), now_ms(),
                                                  5 * MIN_MS, &count, &first),
                         SESS_OK);
        assert_int_equal(count, (uint32_t)i);
        if (i == 1)
            first1 = first;
        assert_near(first, first1, 20);
    }
    assert_near(first1, now, 50);
    crypto_generichash(hash, sizeof hash, (const unsigned char *)"user:alice", 10, NULL, 0);
    sodium_bin2hex(key + strlen(key), 65, hash, sizeof hash);
    pttl = direct_int(f, "PTTL %s", key);
    assert_true(pttl > 5 * MIN_MS - 1000 && pttl <= 5 * MIN_MS);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("user:alice"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 3);
    assert_near(first, first1, 20);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("user:bob"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(f->st->ops->throttle_clear(f->st, SESS_STR_LIT("user:alice"), now_ms()),
                     SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS %s", key), 0);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("user:alice"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
}

/* A good login gives back the place it took: one less, the window (the
 * key's TTL) untouched, never below 0, never a key made again. */
static void
test_throttle_undo_takes_back_one_and_keeps_the_window(void **ctx)
{
    struct fx *f = *ctx;
    uint32_t count;
    int64_t first;

    NEEDS_SERVER();
    assert_int_equal(
        f->st->ops->throttle_undo(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(), 5 * MIN_MS),
        SESS_OK);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                                  5 * MIN_MS, &count, &first),
                         SESS_OK);
    assert_int_equal(
        f->st->ops->throttle_undo(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(), 5 * MIN_MS),
        SESS_OK);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_near(first, now_ms(), 100);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            f->st->ops->throttle_undo(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(), 5 * MIN_MS),
            SESS_OK);
    assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                              5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 1);
}

/* The rehash on login: written only over the value it read. */
static void
test_user_replace_only_over_the_value_read(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf value = {0};

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->user_replace(f->st, SESS_STR_LIT("yann"), now_ms(),
                                              SESS_STR_LIT("{\"a\":1}"), SESS_STR_LIT("{\"a\":2}")),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("yann"), now_ms(), &value),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_put(f->st, SESS_STR_LIT("yann"), now_ms(),
                                          SESS_STR_LIT("{\"a\":1}"), true),
                     SESS_OK);
    assert_int_equal(f->st->ops->user_replace(f->st, SESS_STR_LIT("yann"), now_ms(),
                                              SESS_STR_LIT("{\"a\":0}"), SESS_STR_LIT("{\"a\":2}")),
                     SESS_ECONFLICT);
    assert_int_equal(f->st->ops->user_replace(f->st, SESS_STR_LIT("yann"), now_ms(),
                                              SESS_STR_LIT("{\"a\":1}"), SESS_STR_LIT("{\"a\":2}")),
                     SESS_OK);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("yann"), now_ms(), &value), SESS_OK);
    assert_string_equal(value.ptr, "{\"a\":2}");
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("yann"), now_ms()), SESS_OK);
    sess__buf_free(&value);
}

static void
test_throttle_window_ends_and_a_new_one_starts(void **ctx)
{
    struct fx *f = *ctx;
    uint32_t count;
    int64_t first, first1;

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.1"), now_ms(), 150,
                                              &count, &first1),
                     SESS_OK);
    assert_int_equal(count, 1);
    sleep_ms(250);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("addr:10.0.0.1"), now_ms(), 150,
                                               &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.1"), now_ms(), 150,
                                              &count, &first),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_true(first >= first1 + 200);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_are_put_read_listed_and_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_throttle_counts_failures_in_a_window_under_a_hashed_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_window_ends_and_a_new_one_starts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_throttle_undo_takes_back_one_and_keeps_the_window,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_replace_only_over_the_value_read, setup,
                                        teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
