/* One session in the LMDB store (lib/store/lmdb/sessions.c): create and
 * get, an update as a patch laid over the stored record, touch and destroy,
 * each with an injected clock, the expiry index they keep for gc, and
 * several processes updating one record at once. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "lmdb_fixture.h"

/* ------------------------------------------------------------------------
 * create / get
 * ------------------------------------------------------------------------ */

static void
test_create_then_get_returns_the_record(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + 30 * MIN_MS, T0 + 720 * MIN_MS, "alice", "{\"a\":1}");

    rec.created_ms = T0 - 5;
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_int_equal(f->rec.expires_ms, T0 + 30 * MIN_MS);
    assert_int_equal(f->rec.deadline_ms, T0 + 720 * MIN_MS);
    assert_int_equal(f->rec.created_ms, T0 - 5);
    assert_str_view(f->rec.owner, "alice");
    assert_str_view(f->rec.data, "{\"a\":1}");
    /* the data is followed by a NUL, so it can be handed to C strings */
    assert_int_equal(f->rec.data.ptr[f->rec.data.len], '\0');
}

static void
test_get_of_unknown_id_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
}

static void
test_get_of_unusable_ids_is_not_found(void **ctx)
{
    struct fx *f = *ctx;
    char long_id[SESS_ID_MAX_LEN + 2];

    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(get(f, "", T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, long_id, T0), SESS_ENOTFOUND);
}

static void
test_create_of_existing_id_is_eexists(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + MIN_MS, 0, "", "{\"second\":true}");

    create(f, ID1, T0 + MIN_MS, "", "{\"first\":true}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_EEXISTS);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"first\":true}");
}

static void
test_get_at_or_after_expiry_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 1000, "", "{}");
    assert_int_equal(get(f, ID1, T0 + 999), SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 1000), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID1, T0 + 5000), SESS_ENOTFOUND);
}

static void
test_get_at_or_after_deadline_is_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + 60 * MIN_MS, T0 + 10 * MIN_MS, "", "{}");

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 10 * MIN_MS - 1), SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 10 * MIN_MS), SESS_ENOTFOUND);
}

static void
test_get_reuses_its_buffer(void **ctx)
{
    struct fx *f = *ctx;
    char *first;

    create(f, ID1, T0 + MIN_MS, "bob", "{\"x\":\"a longer value than the other one\"}");
    create(f, ID2, T0 + MIN_MS, "", "{}");
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    first = f->buf.ptr;
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    assert_ptr_equal(f->buf.ptr, first);
    assert_str_view(f->rec.data, "{}");
    assert_int_equal(f->rec.owner.len, 0);
}

static void
test_records_survive_reopening(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + MIN_MS, "carol", "{\"kept\":1}");
    close_store(f);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"kept\":1}");
    assert_str_view(f->rec.owner, "carol");
}

/* ------------------------------------------------------------------------
 * update
 * ------------------------------------------------------------------------ */

static void
test_update_merges_into_the_current_record(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"n\":2}", "{\"n\":1}", T0 + 40 * MIN_MS);

    create(f, ID1, T0 + 30 * MIN_MS, "alice", "{\"n\":1,\"kept\":true}");
    /* What it read held: the merge saw the stored record. */
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 35 * MIN_MS), SESS_OK);
    assert_int_equal(f->rec.expires_ms, T0 + 40 * MIN_MS);
    assert_str_view(f->rec.data, "{\"n\":2,\"kept\":true}");
    sess__patch_free(&p);
}

static void
test_update_of_destroyed_record_is_not_found_and_not_recreated(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"n\":2}", NULL, T0 + 40 * MIN_MS);

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"n\":1}");
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), T0), SESS_OK);
    assert_int_equal(update(f, ID1, T0, &p), SESS_ENOTFOUND);
    assert_false(was_merged(&p));
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    sess__patch_free(&p);
}

static void
test_update_of_expired_record_is_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"n\":2}", NULL, T0 + 90 * MIN_MS);

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"n\":1}");
    assert_int_equal(update(f, ID1, T0 + 30 * MIN_MS, &p), SESS_ENOTFOUND);
    assert_false(was_merged(&p));
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":1}");
    sess__patch_free(&p);
}

/* A merge that refuses (here: what the request read has changed) writes
 * nothing. */
static void
test_update_aborts_when_merge_fails(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"n\":2}", "{\"n\":0}", T0 + 40 * MIN_MS);

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"n\":1}");
    assert_int_equal(update(f, ID1, T0, &p), SESS_ECONFLICT);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":1}");
    assert_int_equal(f->rec.expires_ms, T0 + 30 * MIN_MS);
    sess__patch_free(&p);
}

static void
test_update_refiles_the_expiry_for_gc(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"n\":2}", NULL, T0 + 90 * MIN_MS);
    size_t purged;
    bool more;

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"n\":1}");
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    /* after the old expiry, gc must not take the record that moved */
    assert_int_equal(f->st->ops->gc(f->st, T0 + 60 * MIN_MS, 100, &purged, &more), SESS_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(get(f, ID1, T0 + 60 * MIN_MS), SESS_OK);
    assert_int_equal(f->st->ops->gc(f->st, T0 + 90 * MIN_MS, 100, &purged, &more), SESS_OK);
    assert_int_equal(purged, 1);
    sess__patch_free(&p);
}

/* The owner is the user the data is logged in as (sess__data_owner). */
static void
test_update_moves_the_owner_index(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch alice = patch("{\"user\":{\"username\":\"alice\"}}", NULL, T0 + 30 * MIN_MS);
    struct sess_patch bob = patch("{\"user\":{\"username\":\"bob\"}}", NULL, T0 + 30 * MIN_MS);
    size_t count;

    create(f, ID1, T0 + 30 * MIN_MS, "", "{}");
    assert_int_equal(update(f, ID1, T0, &alice), SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.owner, "alice");
    assert_int_equal(update(f, ID1, T0, &bob), SESS_OK);
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("alice"), T0, &count), SESS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("bob"), T0, &count), SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    sess__patch_free(&alice);
    sess__patch_free(&bob);
}

/* A read tag names what was read: the same until the record is written
 * or touched, and never again after, even when a write leaves the data as
 * it was or a record is made again under the same id. */
static void
test_read_tag_moves_with_every_write_and_touch(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"n\":1}", NULL, T0 + 30 * MIN_MS);
    uint64_t tags[5];

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"n\":1}");
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    tags[0] = f->rec.read_tag;
    assert_int_equal(get(f, ID1, T0 + 1), SESS_OK);
    assert_true(tags[0] != 0 && f->rec.read_tag == tags[0]);
    /* the same data and expiry: only the generation moves */
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":1}");
    tags[1] = f->rec.read_tag;
    assert_int_equal(
        f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0 + 20 * MIN_MS, T0 + 50 * MIN_MS), SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    tags[2] = f->rec.read_tag;
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), T0), SESS_OK);
    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"n\":1}");
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    tags[3] = f->rec.read_tag;
    create(f, ID2, T0 + 30 * MIN_MS, "", "{\"n\":1}");
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    tags[4] = f->rec.read_tag;
    for (size_t i = 0; i < 5; i++)
        for (size_t j = i + 1; j < 5; j++)
            assert_true(tags[i] != tags[j]);
    sess__patch_free(&p);
}

/* ------------------------------------------------------------------------
 * touch / destroy
 * ------------------------------------------------------------------------ */

static void
test_touch_moves_the_expiry_and_keeps_the_data(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 30 * MIN_MS, "dave", "{\"keep\":true}");
    assert_int_equal(
        f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0 + 20 * MIN_MS, T0 + 50 * MIN_MS), SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 45 * MIN_MS), SESS_OK);
    assert_int_equal(f->rec.expires_ms, T0 + 50 * MIN_MS);
    assert_str_view(f->rec.data, "{\"keep\":true}");
    assert_str_view(f->rec.owner, "dave");
}

static void
test_touch_of_dead_or_absent_record_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 30 * MIN_MS, "", "{}");
    assert_int_equal(
        f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0 + 30 * MIN_MS, T0 + 90 * MIN_MS),
        SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID2), T0, T0 + 90 * MIN_MS),
                     SESS_ENOTFOUND);
    assert_int_equal(get(f, ID1, T0 + 31 * MIN_MS), SESS_ENOTFOUND);
}

static void
test_touch_refiles_the_expiry_for_gc(void **ctx)
{
    struct fx *f = *ctx;
    size_t purged;
    bool more;

    create(f, ID1, T0 + 30 * MIN_MS, "", "{}");
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0, T0 + 60 * MIN_MS), SESS_OK);
    assert_int_equal(f->st->ops->gc(f->st, T0 + 45 * MIN_MS, 100, &purged, &more), SESS_OK);
    assert_int_equal(purged, 0);
    assert_int_equal(get(f, ID1, T0 + 45 * MIN_MS), SESS_OK);
}

static void
test_destroy_removes_the_record(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 30 * MIN_MS, "erin", "{}");
    create(f, ID2, T0 + 30 * MIN_MS, "erin", "{}");
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), T0), SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
}

static void
test_destroy_of_absent_id_is_ok(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), T0), SESS_OK);
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(""), T0), SESS_OK);
}

/* ------------------------------------------------------------------------
 * Several processes
 * ------------------------------------------------------------------------ */

#define WORKERS    4
#define PER_WORKER 150
#define COUNTER_ID "counter-counter-counter-counter-counter-abc"

/* Reads the counter and writes it back plus one, as a route would: a
 * patch that read "n", run again whenever another process changed "n"
 * between the read and the write (SESS_ECONFLICT). */
static enum sess_err
increment(struct sess_store *st, int64_t later)
{
    struct sess_record rec;
    struct sess_buf buf = {0};
    struct sess_patch p;
    enum sess_err err;
    json_t *n;

    do {
        err = st->ops->get(st, SESS_STR_LIT(COUNTER_ID), T0, &rec, &buf);
        if (err != SESS_OK)
            break;
        p = (struct sess_patch){.expires_ms = later, .set = json_object(), .del = json_object()};
        p.read = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
        n = json_object_get(p.read, "n");
        if (!p.set || !p.del || !json_is_integer(n) ||
            json_object_set_new(p.set, "n", json_integer(json_integer_value(n) + 1)) != 0)
            err = SESS_ENOMEM;
        else
            err = st->ops->update(st, SESS_STR_LIT(COUNTER_ID), T0, &p);
        sess__patch_free(&p);
    } while (err == SESS_ECONFLICT);
    sess__buf_free(&buf);
    return err;
}

static int
worker(struct fx *f, int w, int64_t later)
{
    struct sess_store *st;
    char errmsg[SESS_ERRMSG_MAX], id[SESS_ID_LEN + 1];
    struct sess_record rec = record(later, 0, "", "{}");
    int i, status = 0;

    /* After the fork: a store of this process's own. */
    if (sess__store_lmdb_open(&st, f->store_dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg))
        return 2;
    for (i = 0; i < PER_WORKER && status == 0; i++) {
        make_id(id, (unsigned)(w * 1000 + i));
        rec.owner = w % 2 ? SESS_STR_LIT("odd") : SESS_STR_LIT("even");
        if (st->ops->create(st, sess_str_c(id), T0, &rec) != SESS_OK)
            status = 3;
        else if (increment(st, later) != SESS_OK)
            status = 4;
    }
    sess__store_close(st);
    return status;
}

static void
test_processes_write_concurrently_without_losing_anything(void **ctx)
{
    struct fx *f = *ctx;
    int64_t later = T0 + 600 * MIN_MS;
    struct sess_record counter = record(later, 0, "", "{\"n\":0}");
    struct sess_store_stats stats;
    char id[SESS_ID_LEN + 1];
    pid_t pids[WORKERS];
    int w, i, status;
    size_t count;

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(COUNTER_ID), T0, &counter), SESS_OK);
    close_store(f); /* no environment of ours crosses the fork */
    for (w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0)
            _exit(worker(f, w, later));
    }
    for (w = 0; w < WORKERS; w++) {
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    open_store(f);
    for (w = 0; w < WORKERS; w++) {
        for (i = 0; i < PER_WORKER; i++) {
            make_id(id, (unsigned)(w * 1000 + i));
            assert_int_equal(get(f, id, T0), SESS_OK);
        }
    }
    assert_int_equal(get(f, COUNTER_ID, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":600}");
    assert_int_equal(WORKERS * PER_WORKER, 600);
    assert_int_equal(f->st->ops->stats(f->st, T0, &stats), SESS_OK);
    assert_int_equal(stats.sessions, WORKERS * PER_WORKER + 1);
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("odd"), T0, &count), SESS_OK);
    assert_int_equal(count, WORKERS / 2 * PER_WORKER);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_create_then_get_returns_the_record),
        T(test_get_of_unknown_id_is_not_found),
        T(test_get_of_unusable_ids_is_not_found),
        T(test_create_of_existing_id_is_eexists),
        T(test_get_at_or_after_expiry_is_not_found),
        T(test_get_at_or_after_deadline_is_not_found),
        T(test_get_reuses_its_buffer),
        T(test_records_survive_reopening),
        T(test_update_merges_into_the_current_record),
        T(test_update_of_destroyed_record_is_not_found_and_not_recreated),
        T(test_update_of_expired_record_is_not_found),
        T(test_update_aborts_when_merge_fails),
        T(test_update_refiles_the_expiry_for_gc),
        T(test_update_moves_the_owner_index),
        T(test_read_tag_moves_with_every_write_and_touch),
        T(test_touch_moves_the_expiry_and_keeps_the_data),
        T(test_touch_of_dead_or_absent_record_is_not_found),
        T(test_touch_refiles_the_expiry_for_gc),
        T(test_destroy_removes_the_record),
        T(test_destroy_of_absent_id_is_ok),
        T(test_processes_write_concurrently_without_losing_anything),
#undef T
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
