/* The LMDB store for sessctl (lib/store/lmdb/admin.c): a user's sessions
 * ended through the owners index (and an index entry no session can have
 * skipped), every record or a user's visited, and the statistics. */

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
 * A user's sessions
 * ------------------------------------------------------------------------ */

static void
test_destroy_owner_ends_only_that_owners_sessions(void **ctx)
{
    struct fx *f = *ctx;
    size_t count;

    create(f, ID1, T0 + 30 * MIN_MS, "frank", "{}");
    create(f, ID2, T0 + 30 * MIN_MS, "frank", "{}");
    create(f, ID3, T0 + 30 * MIN_MS, "grace", "{}");
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("frank"), T0, &count), SESS_OK);
    assert_int_equal(count, 2);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID3, T0), SESS_OK);
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("frank"), T0, &count), SESS_OK);
    assert_int_equal(count, 0);
}

static void
test_destroy_owner_of_unknown_owner_counts_zero(void **ctx)
{
    struct fx *f = *ctx;
    size_t count = 99;

    create(f, ID1, T0 + 30 * MIN_MS, "", "{}");
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("nobody"), T0, &count), SESS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT(""), T0, &count), SESS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
}

/* A 400-byte "id" in the owners index (the stack buffer for an expiry key
 * holds 8 + 128): skipped, reported, and the user's real sessions end. */
static void
test_destroy_owner_skips_an_id_no_session_can_have(void **ctx)
{
    struct fx *f = *ctx;
    char long_id[400];
    size_t count = 99;

    memset(long_id, 'Z', sizeof long_id);
    create(f, ID1, T0 + 30 * MIN_MS, "alice", "{}");
    create(f, ID2, T0 + 30 * MIN_MS, "alice", "{}");
    close_store(f);
    raw_put_db(f->store_dir, "owners", "alice", 5, long_id, sizeof long_id);
    raw_put_db(f->store_dir, "sessions", long_id, sizeof long_id, "x", 1);
    open_store(f);
    f->st->warning[0] = '\0';
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("alice"), T0, &count), SESS_OK);
    assert_int_equal(count, 2);
    assert_non_null(strstr(f->st->warning, "1 entry"));
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    /* The bad entry went with the owner's others: a second run is clean. */
    f->st->warning[0] = '\0';
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("alice"), T0, &count), SESS_OK);
    assert_int_equal(count, 0);
    assert_string_equal(f->st->warning, "");
}

/* ------------------------------------------------------------------------
 * Listing and statistics
 * ------------------------------------------------------------------------ */

struct visit_list {
    char ids[8][SESS_ID_MAX_LEN + 1];
    char data[8][32];
    size_t count;
    size_t stop_after;
};

static bool
collect_record(void *arg, struct sess_str id, const struct sess_record *rec)
{
    struct visit_list *l = arg;

    snprintf(l->ids[l->count], sizeof l->ids[0], "%.*s", (int)id.len, id.ptr);
    snprintf(l->data[l->count], sizeof l->data[0], "%.*s", (int)rec->data.len, rec->data.ptr);
    l->count++;
    return l->count != l->stop_after && l->count < 8;
}

static void
test_each_visits_every_record_unsealed(void **ctx)
{
    struct fx *f = *ctx;
    struct visit_list l = {0};

    create(f, ID2, T0 + MIN_MS, "x", "{\"b\":2}");
    create(f, ID1, T0 - MIN_MS, "", "{\"a\":1}"); /* dead records are listed too */
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT(""), T0, collect_record, &l), SESS_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.ids[0], ID1);
    assert_string_equal(l.data[0], "{\"a\":1}");
    assert_string_equal(l.ids[1], ID2);
    assert_string_equal(l.data[1], "{\"b\":2}");
}

static void
test_each_of_an_owner_visits_only_theirs(void **ctx)
{
    struct fx *f = *ctx;
    struct visit_list l = {0};

    create(f, ID1, T0 + MIN_MS, "ivan", "{\"i\":1}");
    create(f, ID2, T0 + MIN_MS, "judy", "{\"j\":1}");
    create(f, ID3, T0 + MIN_MS, "ivan", "{\"i\":2}");
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT("ivan"), T0, collect_record, &l),
                     SESS_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.ids[0], ID1);
    assert_string_equal(l.ids[1], ID3);
}

static void
test_each_stops_when_the_visitor_says_so(void **ctx)
{
    struct fx *f = *ctx;
    struct visit_list l = {.stop_after = 1};

    create(f, ID1, T0 + MIN_MS, "", "{}");
    create(f, ID2, T0 + MIN_MS, "", "{}");
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT(""), T0, collect_record, &l), SESS_OK);
    assert_int_equal(l.count, 1);
}

/* A visitor may write to the store (sessctl revokes while listing). */
static bool
destroy_visited(void *arg, struct sess_str id, const struct sess_record *rec)
{
    struct sess_store *st = arg;

    (void)rec;
    return st->ops->destroy(st, id, T0) == SESS_OK;
}

static void
test_each_visitor_may_destroy_records(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + MIN_MS, "", "{}");
    create(f, ID2, T0 + MIN_MS, "", "{}");
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT(""), T0, destroy_visited, f->st),
                     SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
}

static void
test_stats_counts_what_is_stored(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + 30 * MIN_MS, 0, "kate", "{}");
    struct sess_store_stats s;

    rec.created_ms = T0 - 3000;
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    rec.created_ms = T0 + 3000;
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), T0, &rec), SESS_OK);
    create(f, ID3, T0 + 1000, "leo", "{}");
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("kate"), T0, SESS_STR_LIT("{}"), false), SESS_OK);
    assert_int_equal(f->st->ops->stats(f->st, T0 + 2000, &s), SESS_OK);
    assert_int_equal(s.sessions, 3);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.users, 1);
    assert_int_equal(s.owners, 2);
    assert_int_equal(s.oldest_created_ms, T0 - 3000);
    assert_int_equal(s.newest_created_ms, T0 + 3000);
    assert_int_equal(s.map_size_bytes, f->cfg.lmdb_map_size_bytes);
    assert_true(s.map_used_bytes > 0 && s.map_used_bytes < s.map_size_bytes);
    assert_true(s.readers_used >= 1);
    assert_true(s.readers_max >= 510);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_destroy_owner_ends_only_that_owners_sessions),
        T(test_destroy_owner_of_unknown_owner_counts_zero),
        T(test_destroy_owner_skips_an_id_no_session_can_have),
        T(test_each_visits_every_record_unsealed),
        T(test_each_of_an_owner_visits_only_theirs),
        T(test_each_stops_when_the_visitor_says_so),
        T(test_each_visitor_may_destroy_records),
        T(test_stats_counts_what_is_stored),
#undef T
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
