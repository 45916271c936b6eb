/* Garbage collection in the LMDB store (lib/store/lmdb/gc.c): only dead
 * records go, in bounded batches, at most once per interval across
 * processes on the request path, and large batches keep the owner index
 * right and shrink where the map has no room for them. Stale throttle
 * counters are test_lmdb_accounts.c's. */

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

static void
test_gc_purges_only_dead_records(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record capped = record(T0 + 60 * MIN_MS, T0 + 5 * MIN_MS, "h", "{}");
    size_t purged;
    bool more;

    create(f, ID1, T0 + 10 * MIN_MS, "h", "{}");
    create(f, ID2, T0 + 30 * MIN_MS, "h", "{}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID3), T0, &capped), SESS_OK);
    assert_int_equal(f->st->ops->gc(f->st, T0 + 10 * MIN_MS, 100, &purged, &more), SESS_OK);
    assert_int_equal(purged, 2); /* ID1 by expiry, ID3 by its deadline */
    assert_false(more);
    assert_int_equal(get(f, ID2, T0 + 10 * MIN_MS), SESS_OK);
    /* gone for good, not only hidden: a reader with an older clock sees nothing */
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID3, T0), SESS_ENOTFOUND);
}

static void
test_gc_works_in_bounded_batches(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1];
    size_t purged, total = 0;
    unsigned i;
    bool more;

    for (i = 0; i < 25; i++) {
        make_id(id, i);
        create(f, id, T0 + i, "", "{}");
    }
    create(f, ID1, T0 + 60 * MIN_MS, "", "{}");
    assert_int_equal(f->st->ops->gc(f->st, T0 + MIN_MS, 10, &purged, &more), SESS_OK);
    assert_int_equal(purged, 10);
    assert_true(more);
    /* oldest first */
    make_id(id, 9);
    assert_int_equal(get(f, id, T0), SESS_ENOTFOUND);
    make_id(id, 10);
    assert_int_equal(get(f, id, T0), SESS_OK);
    total = purged;
    do {
        assert_int_equal(f->st->ops->gc(f->st, T0 + MIN_MS, 10, &purged, &more), SESS_OK);
        total += purged;
    } while (more);
    assert_int_equal(total, 25);
    assert_int_equal(get(f, ID1, T0 + MIN_MS), SESS_OK);
}

static void
test_gc_if_due_purges_at_most_once_per_interval(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 1000, "", "{}");
    f->st->ops->gc_if_due(f->st, T0 + 2000);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);

    create(f, ID2, T0 + 3000, "", "{}");
    f->st->ops->gc_if_due(f->st, T0 + 4000);
    assert_int_equal(get(f, ID2, T0), SESS_OK); /* not due again yet */
    f->st->ops->gc_if_due(f->st, T0 + 2000 + 2 * MIN_MS + 1);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
}

/* Another process's gc batch counts for everyone: a fresh process that
 * finds the shared schedule not due does no purge. */
static void
test_gc_if_due_follows_the_shared_schedule(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 1000, "", "{}");
    f->st->ops->gc_if_due(f->st, T0 + 2000); /* "another process", due: runs */
    create(f, ID2, T0 + 3000, "", "{}");
    close_store(f);
    open_store(f); /* a new process: its own first check reads the schedule */
    f->st->ops->gc_if_due(f->st, T0 + 4000);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    f->st->ops->gc_if_due(f->st, T0 + 2000 + 2 * MIN_MS);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
}

/* ------------------------------------------------------------------------
 * gc in large batches
 * ------------------------------------------------------------------------ */

/* Many deletions in one transaction, made in key order rather than the
 * expiry index's: each purged record takes its owner index entry along,
 * and no live record or entry goes with them. Ids are filed in an order
 * unrelated to their expiry; owners share records. */
static void
test_gc_of_a_large_batch_keeps_the_owner_index(void **ctx)
{
    struct fx *f = *ctx;
    static const char *const owners[] = {"", "ann", "bo", "cy", "dee"};
    char id[SESS_ID_LEN + 1];
    struct sess_record rec;
    struct sess_store_stats stats;
    size_t purged, count, live[5] = {0}, dead = 0;
    unsigned i, n;
    bool more, is_dead;

    for (i = 0; i < 1000; i++) {
        n = i * 7919 % 1000; /* every n below 1000 once, out of order */
        make_id(id, n);
        /* "dee" keeps no live session */
        is_dead = n % 3 != 0 || n % 5 == 4;
        rec = record(is_dead ? T0 + (int64_t)(i % 50) * 1000 : T0 + 60 * MIN_MS, 0, owners[n % 5],
                     "{}");
        assert_int_equal(f->st->ops->create(f->st, sess_str_c(id), T0, &rec), SESS_OK);
        if (is_dead)
            dead++;
        else
            live[n % 5]++;
    }
    assert_int_equal(
        f->st->ops->gc(f->st, T0 + 10 * MIN_MS, f->st->ops->gc_batch_max, &purged, &more), SESS_OK);
    assert_int_equal(purged, dead);
    assert_false(more);
    for (n = 0; n < 1000; n++) {
        make_id(id, n);
        is_dead = n % 3 != 0 || n % 5 == 4;
        assert_int_equal(get(f, id, T0), is_dead ? SESS_ENOTFOUND : SESS_OK);
    }
    assert_int_equal(f->st->ops->stats(f->st, T0 + 10 * MIN_MS, &stats), SESS_OK);
    assert_int_equal(stats.sessions, 1000 - dead);
    assert_int_equal(stats.expired, 0);
    assert_int_equal(stats.owners, 3); /* no entry left behind for "dee" */
    for (i = 1; i < 5; i++) {
        assert_int_equal(f->st->ops->destroy_owner(f->st, sess_str_c(owners[i]), T0, &count),
                         SESS_OK);
        assert_int_equal(count, live[i]);
    }
    assert_int_equal(f->st->ops->stats(f->st, T0 + 10 * MIN_MS, &stats), SESS_OK);
    assert_int_equal(stats.sessions, live[0]);
}

/* Deleting takes free pages too: where a batch does not fit a nearly full
 * map, gc purges a smaller one rather than failing, and never grows the
 * map to do it. */
static void
test_gc_of_a_batch_too_large_for_the_map_purges_a_smaller_one(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], owner[16];
    int64_t later = T0 + 60 * MIN_MS;
    struct sess_store_stats before, after;
    size_t purged, total;
    unsigned i, n;
    bool more;

    /* Every other record dies, so a purge of all of them rewrites every
     * page of the records and of their owners without emptying one: past
     * 3/4 of a map grown to 1 MiB, more pages than are free. A batch of the
     * oldest few rewrites only the first pages: owners sort like ids. */
    for (n = 0;; n++) {
        make_id(id, n);
        snprintf(owner, sizeof owner, "u%06u", n);
        create(f, id, n % 2 ? later : later + 60 * MIN_MS, owner, "{\"n\":1}");
        if (n % 8 != 7)
            continue;
        assert_int_equal(f->st->ops->stats(f->st, later - 1, &before), SESS_OK);
        if (before.map_size_bytes >= 1u << 20 &&
            before.map_used_bytes >= before.map_size_bytes / 4 * 3)
            break;
    }
    n++;
    later += 1000; /* the expiry index's granularity */
    assert_int_equal(f->st->ops->gc(f->st, later, 1u << 20, &purged, &more), SESS_OK);
    assert_true(purged > 0 && purged < n / 2);
    assert_true(more);
    total = purged;
    while (more) {
        assert_int_equal(f->st->ops->gc(f->st, later, 1u << 20, &purged, &more), SESS_OK);
        total += purged;
    }
    assert_int_equal(total, n / 2);
    assert_int_equal(f->st->ops->stats(f->st, later, &after), SESS_OK);
    assert_int_equal(after.sessions, n / 2);
    assert_int_equal(after.owners, n / 2);
    assert_int_equal(after.map_size_bytes, before.map_size_bytes);
    for (i = 0; i < n; i += 7) {
        make_id(id, i);
        assert_int_equal(get(f, id, later), i % 2 ? SESS_ENOTFOUND : SESS_OK);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name)    cmocka_unit_test_setup_teardown(name, setup, teardown)
#define TINY(name) cmocka_unit_test_setup_teardown(name, setup_tiny_map, teardown)
        T(test_gc_purges_only_dead_records),
        T(test_gc_works_in_bounded_batches),
        T(test_gc_if_due_purges_at_most_once_per_interval),
        T(test_gc_if_due_follows_the_shared_schedule),
        T(test_gc_of_a_large_batch_keeps_the_owner_index),
        TINY(test_gc_of_a_batch_too_large_for_the_map_purges_a_smaller_one),
#undef T
#undef TINY
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
