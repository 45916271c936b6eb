/* One user's sessions in the Redis store (store/redis/owners.c) against a
 * real redis-server (redis_fixture.h): revoking them through the per-user
 * index, and by SCAN for those an Express app logged in; the index
 * following owners and TTLs; and redis_prefix naming every key. */
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
 * A user's sessions
 * ------------------------------------------------------------------------ */

static void
test_destroy_owner_ends_ours_by_the_index_and_express_ones_by_scan(void **ctx)
{
    struct fx *f = *ctx;
    size_t count = 99;
    int i;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "frank", "{\"user\":{\"username\":\"frank\"}}");
    create(f, ID2, now_ms() + MIN_MS, 0, "frank", "{\"user\":{\"username\":\"frank\"}}");
    create(f, ID3, now_ms() + MIN_MS, 0, "franky", "{\"user\":{\"username\":\"franky\"}}");
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"frank\"}", 60);
    express_set(f, "other-express-session-id-000001", "2030-01-01T00:00:00.000Z",
                "\"user\":{\"username\":\"grace\"},\"note\":\"frank\"", 60);
    /* Enough other sessions for several SCAN steps. */
    for (i = 0; i < 250; i++) {
        char id[40];
        snprintf(id, sizeof id, "filler-session-%04d-xxxxxxxxxxxx", i);
        create(f, id, now_ms() + MIN_MS, 0, "grace", "{\"user\":{\"username\":\"grace\"}}");
    }
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("frank"), now_ms(), &count),
                     SESS_OK);
    /* The index knows ours only: Express never writes to it. */
    assert_int_equal(count, 2);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1 " sess:" ID2), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" EXPRESS_ID " sess:" ID3), 2);
    assert_int_equal(direct_int(f, "EXISTS fcgi-session:sess:user:frank"), 0);
    f->st->is_owner_scan = true;
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("frank"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" EXPRESS_ID), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID3), 1);
    /* 250 of grace's, franky's, the other Express session, two indexes. */
    assert_int_equal(direct_int(f, "DBSIZE"), 254);
    f->st->is_owner_scan = false;
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("nobody"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 0);
}

/* ------------------------------------------------------------------------
 * redis_prefix and the per-user index
 * ------------------------------------------------------------------------ */

static void
reopen_with_prefix(struct fx *f, const char *prefix)
{
    sess__store_close(f->st);
    f->cfg.redis_prefix = (char *)prefix;
    open_store(f);
    f->cfg.redis_prefix = NULL;
}

static void
test_prefix_names_every_session_key_and_the_index(void **ctx)
{
    struct fx *f = *ctx;
    struct seen all = {0};
    size_t count;

    NEEDS_SERVER();
    reopen_with_prefix(f, "app1:s:");
    create(f, ID1, now_ms() + MIN_MS, 0, "ivy", "{\"user\":{\"username\":\"ivy\"}}");
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(direct_int(f, "EXISTS app1:s:" ID1 " app1:s:" ID2), 2);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:app1:s:user:ivy " ID1), 1);
    /* Another prefix's session is not ours to see. */
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"ivy\"}", 60);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_int_equal(get(f, EXPRESS_ID), SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->each(f->st, (struct sess_str){"", 0}, now_ms(), visit, &all),
                     SESS_OK);
    assert_int_equal(all.n, 2);
    f->st->is_owner_scan = true;
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("ivy"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" EXPRESS_ID), 1);
}

static void
test_index_follows_owner_and_ttl_and_drops_ids_that_are_gone(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"a\":1}", NULL, now_ms() + 30 * MIN_MS);
    struct sess_patch logout = patch("{}", NULL, now_ms() + 30 * MIN_MS);
    struct seen ivy = {0};
    long long pttl;
    size_t count;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "ivy", IVY);
    create(f, ID2, now_ms() + 2 * MIN_MS, 0, "ivy", IVY);
    create(f, ID3, now_ms() + MIN_MS, 0, "ivy", IVY);
    assert_int_equal(direct_int(f, "SCARD fcgi-session:sess:user:ivy"), 3);
    /* The set lives past the longest of its members. */
    pttl = direct_int(f, "PTTL fcgi-session:sess:user:ivy");
    assert_true(pttl > 2 * MIN_MS + 3590000 && pttl <= 2 * MIN_MS + 3600000);
    /* An update that moves the TTL moves the set's. */
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_OK);
    pttl = direct_int(f, "PTTL fcgi-session:sess:user:ivy");
    assert_true(pttl > 30 * MIN_MS + 3590000);
    /* So does a touch of a session just read. */
    assert_int_equal(get(f, ID3), SESS_OK);
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID3), now_ms(), now_ms() + 60 * MIN_MS),
                     SESS_OK);
    pttl = direct_int(f, "PTTL fcgi-session:sess:user:ivy");
    assert_true(pttl > 60 * MIN_MS + 3590000);
    /* Gone behind our back, or someone else's now: dropped when met. */
    direct_ok(f, "DEL sess:" ID2);
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}"); /* not ivy's */
    direct_ok(f, "DEL sess:" ID2);
    direct_ok(f, "SADD fcgi-session:sess:user:ivy " ID2);
    direct_ok(f, "SET sess:" ID2 " {\"user\":{\"username\":\"zoe\"}} EX 60");
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT("ivy"), now_ms(), visit, &ivy), SESS_OK);
    assert_int_equal(ivy.n, 2);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:sess:user:ivy " ID2), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
    /* Logged out: off the list at once. */
    assert_int_equal(json_object_set_new(logout.del, "user", json_true()), 0);
    assert_int_equal(update(f, ID3, now_ms(), &logout), SESS_OK);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:sess:user:ivy " ID3), 0);
    /* Revocation through the index: the last one ends, the set goes. */
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("ivy"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1 " fcgi-session:sess:user:ivy"), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID3), 1);
    sess__patch_free(&p);
    sess__patch_free(&logout);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_destroy_owner_ends_ours_by_the_index_and_express_ones_by_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_names_every_session_key_and_the_index, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_index_follows_owner_and_ttl_and_drops_ids_that_are_gone, setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
