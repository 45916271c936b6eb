/* Walking every session of the Redis store (store/redis/scan.c) against a
 * real redis-server (redis_fixture.h): sessctl's listing and statistics,
 * and the gc of sessions an Express app keeps alive past their absolute
 * deadline, at most one step per interval across processes. */
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
 * Listing, statistics, gc
 * ------------------------------------------------------------------------ */

static void
test_each_visits_every_session_or_one_owners(void **ctx)
{
    struct fx *f = *ctx;
    struct seen all = {0}, ivy = {0}, ivy_all = {0};
    int i;

    NEEDS_SERVER();
    for (i = 0; i < 230; i++) {
        char id[40];
        snprintf(id, sizeof id, "listed-session-%04d-xxxxxxxxxxxx", i);
        create(f, id, now_ms() + MIN_MS, 0, i % 10 == 0 ? "ivy" : "", "{}");
    }
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"ivy\"}", 60);
    direct_ok(f, "SET notasession x");
    assert_int_equal(f->st->ops->each(f->st, (struct sess_str){"", 0}, now_ms(), visit, &all),
                     SESS_OK);
    assert_int_equal(all.n, 231);
    assert_int_equal(all.owned_by_ivy, 24);
    assert_true(all.saw_express);
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT("ivy"), now_ms(), visit, &ivy), SESS_OK);
    assert_int_equal(ivy.n, 23);
    assert_int_equal(ivy.owned_by_ivy, 23);
    assert_false(ivy.saw_express);
    f->st->is_owner_scan = true;
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT("ivy"), now_ms(), visit, &ivy_all),
                     SESS_OK);
    assert_int_equal(ivy_all.n, 24);
    assert_true(ivy_all.saw_express);
}

static void
test_stats_count_sessions_owners_users_and_dead(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store_stats s;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "kim", "{}");

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "kim", "{}");
    rec.created_ms = 1795370500000LL;
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_OK);
    create(f, ID3, now_ms() + 10 * MIN_MS, now_ms() + MIN_MS, "lee", "{}");
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"max\"}", 60);
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("kim"), now_ms(), SESS_STR_LIT("{}"), false),
        SESS_OK);
    assert_int_equal(f->st->ops->stats(f->st, now_ms() + 2 * MIN_MS, &s), SESS_OK);
    assert_int_equal(s.sessions, 4);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.owners, 3);
    assert_int_equal(s.users, 1);
    assert_int_equal(s.oldest_created_ms, 1795370400000LL);
    assert_int_equal(s.newest_created_ms, 1795370500000LL);
    assert_int_equal(s.map_size_bytes, 0);
    assert_int_equal(s.readers_max, 0);
}

static void
test_gc_deletes_sessions_kept_alive_past_their_deadline(void **ctx)
{
    struct fx *f = *ctx;
    size_t purged, total = 0;
    bool more;
    int64_t now = now_ms();
    int steps = 0;

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    create(f, ID2, now + 30 * MIN_MS, now + 60 * MIN_MS, "", "{}");
    create(f, ID3, now + 30 * MIN_MS, 0, "", "{}");
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "", 60);
    do {
        assert_int_equal(f->st->ops->gc(f->st, now + 2 * MIN_MS, 2, &purged, &more), SESS_OK);
        assert_true(purged <= 2);
        total += purged;
    } while (more && ++steps < 100);
    assert_false(more);
    assert_int_equal(total, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2 " sess:" ID3 " sess:" EXPRESS_ID), 3);
}

static void
test_gc_if_due_runs_one_step_per_interval_across_stores(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *other;
    char errmsg[SESS_ERRMSG_MAX];
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    f->st->ops->gc_if_due(f->st, now + 2 * MIN_MS);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_true(direct_int(f, "PTTL fcgi-session:gc:lock") > 0);
    /* Another process within the interval does nothing. */
    create(f, ID2, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    assert_int_equal(open_url(f, f->url, &other, errmsg, sizeof errmsg), SESS_OK);
    other->ops->gc_if_due(other, now + 2 * MIN_MS);
    sess__store_close(other);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_visits_every_session_or_one_owners, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats_count_sessions_owners_users_and_dead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gc_deletes_sessions_kept_alive_past_their_deadline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_if_due_runs_one_step_per_interval_across_stores,
                                        setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
