/* Accounts and login throttling in the LMDB store
 * (lib/store/lmdb/accounts.c): accounts put, replaced only when new if
 * asked, deleted and listed in name order; failure counters in a window
 * that starts at the first failure, under keys of any length, and purged
 * by gc once stale. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "lmdb_fixture.h"

/* ------------------------------------------------------------------------
 * Accounts
 * ------------------------------------------------------------------------ */

static void
test_user_put_get_and_del(void **ctx)
{
    struct fx *f = *ctx;
    const char *json = "{\"role\":\"admin\",\"hash\":\"$argon2id$x\"}";

    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("alice"), T0, sess_str_c(json), false), SESS_OK);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("alice"), T0, &f->buf), SESS_OK);
    assert_int_equal(f->buf.len, strlen(json));
    assert_string_equal(f->buf.ptr, json); /* NUL-terminated after its length */
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("alice"), T0), SESS_OK);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("alice"), T0, &f->buf),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("alice"), T0), SESS_ENOTFOUND);
}

static void
test_user_put_replaces(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("bob"), T0, SESS_STR_LIT("{\"v\":1}"), false),
        SESS_OK);
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("bob"), T0, SESS_STR_LIT("{\"v\":2}"), false),
        SESS_OK);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("bob"), T0, &f->buf), SESS_OK);
    assert_string_equal(f->buf.ptr, "{\"v\":2}");
}

/* A creation finds the name taken in the same transaction it writes in. */
static void
test_user_put_new_refuses_a_taken_name(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("bob"), T0, SESS_STR_LIT("{\"v\":1}"), true),
        SESS_OK);
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("bob"), T0, SESS_STR_LIT("{\"v\":2}"), true),
        SESS_EEXISTS);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("bob"), T0, &f->buf), SESS_OK);
    assert_string_equal(f->buf.ptr, "{\"v\":1}");
}

struct name_list {
    char names[8][16];
    size_t count;
};

static bool
collect_user(void *arg, struct sess_str name, struct sess_str value)
{
    struct name_list *l = arg;

    (void)value;
    snprintf(l->names[l->count++], sizeof l->names[0], "%.*s", (int)name.len, name.ptr);
    return l->count < 8;
}

static void
test_user_each_visits_every_account_in_name_order(void **ctx)
{
    struct fx *f = *ctx;
    struct name_list l = {0};

    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("zed"), T0, SESS_STR_LIT("{}"), false), SESS_OK);
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("amy"), T0, SESS_STR_LIT("{}"), false), SESS_OK);
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("kim"), T0, SESS_STR_LIT("{}"), false), SESS_OK);
    assert_int_equal(f->st->ops->user_each(f->st, T0, collect_user, &l), SESS_OK);
    assert_int_equal(l.count, 3);
    assert_string_equal(l.names[0], "amy");
    assert_string_equal(l.names[1], "kim");
    assert_string_equal(l.names[2], "zed");
}

/* ------------------------------------------------------------------------
 * Throttling
 * ------------------------------------------------------------------------ */

#define WINDOW_MS (5 * MIN_MS)

static uint32_t
hit(struct fx *f, const char *key, int64_t now_ms, int64_t *first_ms)
{
    uint32_t count = 0;
    int64_t first = 0;

    assert_int_equal(
        f->st->ops->throttle_hit(f->st, sess_str_c(key), now_ms, WINDOW_MS, &count, &first),
        SESS_OK);
    if (first_ms)
        *first_ms = first;
    return count;
}

static uint32_t
peek(struct fx *f, const char *key, int64_t now_ms)
{
    uint32_t count = 99;
    int64_t first;

    assert_int_equal(
        f->st->ops->throttle_peek(f->st, sess_str_c(key), now_ms, WINDOW_MS, &count, &first),
        SESS_OK);
    return count;
}

static void
test_throttle_counts_failures_in_the_window(void **ctx)
{
    struct fx *f = *ctx;
    int64_t first;

    assert_int_equal(hit(f, "user:alice", T0, &first), 1);
    assert_int_equal(first, T0);
    assert_int_equal(hit(f, "user:alice", T0 + 1000, &first), 2);
    assert_int_equal(hit(f, "user:alice", T0 + WINDOW_MS - 1, &first), 3);
    assert_int_equal(first, T0);
    assert_int_equal(peek(f, "user:alice", T0 + WINDOW_MS - 1), 3);
}

static void
test_throttle_restarts_after_the_window(void **ctx)
{
    struct fx *f = *ctx;
    int64_t first;

    hit(f, "ip:192.0.2.1", T0, NULL);
    hit(f, "ip:192.0.2.1", T0 + 1, NULL);
    assert_int_equal(peek(f, "ip:192.0.2.1", T0 + WINDOW_MS), 0);
    assert_int_equal(hit(f, "ip:192.0.2.1", T0 + WINDOW_MS, &first), 1);
    assert_int_equal(first, T0 + WINDOW_MS);
}

static void
test_throttle_peek_does_not_count(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(peek(f, "user:bob", T0), 0);
    hit(f, "user:bob", T0, NULL);
    assert_int_equal(peek(f, "user:bob", T0 + 1), 1);
    assert_int_equal(peek(f, "user:bob", T0 + 2), 1);
}

static void
test_throttle_clear_forgets_the_key(void **ctx)
{
    struct fx *f = *ctx;

    hit(f, "user:carol", T0, NULL);
    hit(f, "user:carol", T0, NULL);
    assert_int_equal(f->st->ops->throttle_clear(f->st, SESS_STR_LIT("user:carol"), T0), SESS_OK);
    assert_int_equal(peek(f, "user:carol", T0), 0);
    assert_int_equal(hit(f, "user:carol", T0, NULL), 1);
    assert_int_equal(f->st->ops->throttle_clear(f->st, SESS_STR_LIT("user:never"), T0), SESS_OK);
}

static void
test_throttle_keys_are_independent(void **ctx)
{
    struct fx *f = *ctx;

    hit(f, "user:dave", T0, NULL);
    hit(f, "user:dave", T0, NULL);
    assert_int_equal(hit(f, "user:Dave", T0, NULL), 1);
    assert_int_equal(peek(f, "user:dave", T0), 2);
}

static void
test_throttle_accepts_keys_over_the_lmdb_key_limit(void **ctx)
{
    struct fx *f = *ctx;
    char *key = malloc(12001);

    assert_non_null(key);
    memset(key, 'u', 12000);
    key[12000] = '\0';
    assert_int_equal(hit(f, key, T0, NULL), 1);
    assert_int_equal(hit(f, key, T0, NULL), 2);
    key[11999] = 'v';
    assert_int_equal(peek(f, key, T0), 0);
    free(key);
}

/* A counter whose window has passed is deleted by gc: seen by going back
 * in time, where a surviving counter would still count. */
static void
test_gc_purges_stale_throttle_counters(void **ctx)
{
    struct fx *f = *ctx;
    size_t purged;
    bool more;

    hit(f, "user:old", T0, NULL);
    hit(f, "user:new", T0 + WINDOW_MS, NULL);
    assert_int_equal(f->st->ops->gc(f->st, T0 + WINDOW_MS, 100, &purged, &more), SESS_OK);
    assert_int_equal(peek(f, "user:old", T0 + 1), 0);
    assert_int_equal(peek(f, "user:new", T0 + WINDOW_MS + 1), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_user_put_get_and_del),
        T(test_user_put_replaces),
        T(test_user_put_new_refuses_a_taken_name),
        T(test_user_each_visits_every_account_in_name_order),
        T(test_throttle_counts_failures_in_the_window),
        T(test_throttle_restarts_after_the_window),
        T(test_throttle_peek_does_not_count),
        T(test_throttle_clear_forgets_the_key),
        T(test_throttle_keys_are_independent),
        T(test_throttle_accepts_keys_over_the_lmdb_key_limit),
        T(test_gc_purges_stale_throttle_counters),
#undef T
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
