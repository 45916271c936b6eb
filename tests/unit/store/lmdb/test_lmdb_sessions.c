/* The LMDB store (store_lmdb.c) in a scratch directory: the record life
 * cycle with injected clocks, indexes, gc, map growth, throttling, accounts,
 * sealing as seen in the database file, and several processes at once. */
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

#include "internal.h"
#include "store.h"
#include "tmpfiles.h"

#define SECRET_A "store test secret A, thirty-two bytes or more"
#define SECRET_B "store test secret B, thirty-two bytes or more"
#define ID1      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID2      "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define ID3      "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
#define T0       1795370400000LL /* 2026-11-22T18:00:00Z */
#define MIN_MS   60000LL

struct fx {
    struct tmpdir dir;
    char store_dir[PATH_MAX];
    struct sess_config cfg;
    struct sess_secrets secrets;
    struct sess_store *st;
    struct sess_buf buf;
    struct sess_record rec;
};

static void
open_store(struct fx *f)
{
    char errmsg[SESS_ERRMSG_MAX];

    if (sess_store_lmdb_open(&f->st, f->store_dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg) !=
        SESS_OK)
        fail_msg("open: %s", errmsg);
}

static void
close_store(struct fx *f)
{
    sess_store_close(f->st);
    f->st = NULL;
}

static int
setup_with(void **ctx, size_t map_size, enum sess_encrypt encrypt)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    assert_int_equal(tmpdir_make(&f->dir), 0);
    tmpdir_path(&f->dir, "sessions", f->store_dir);
    f->cfg.encrypt = encrypt;
    f->cfg.lmdb_map_size_bytes = map_size;
    f->cfg.lmdb_sync = SESS_SYNC_NONE;
    assert_int_equal(sess_secrets_add(&f->secrets, SESS_STR_LIT(SECRET_A)), SESS_OK);
    open_store(f);
    *ctx = f;
    return 0;
}

static int
setup(void **ctx)
{
    return setup_with(ctx, 16u << 20, SESS_ENCRYPT_AUTO);
}

static int
setup_tiny_map(void **ctx)
{
    return setup_with(ctx, 64u << 10, SESS_ENCRYPT_AUTO);
}

static int
setup_plain(void **ctx)
{
    return setup_with(ctx, 16u << 20, SESS_ENCRYPT_NO);
}

static int
teardown(void **ctx)
{
    struct fx *f = *ctx;

    close_store(f);
    sess_secrets_free(&f->secrets);
    sess_buf_free(&f->buf);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

static struct sess_record
record(int64_t expires_ms, int64_t deadline_ms, const char *owner, const char *data)
{
    return (struct sess_record){
        .expires_ms = expires_ms,
        .deadline_ms = deadline_ms,
        .created_ms = T0,
        .owner = sess_str_c(owner),
        .data = sess_str_c(data),
    };
}

static void
create(struct fx *f, const char *id, int64_t expires_ms, const char *owner, const char *data)
{
    struct sess_record rec = record(expires_ms, 0, owner, data);
    assert_int_equal(f->st->ops->create(f->st, sess_str_c(id), T0, &rec), SESS_OK);
}

static enum sess_err
get(struct fx *f, const char *id, int64_t now_ms)
{
    return f->st->ops->get(f->st, sess_str_c(id), now_ms, &f->rec, &f->buf);
}

static void
assert_str_view(struct sess_str view, const char *expected)
{
    assert_int_equal(view.len, strlen(expected));
    assert_memory_equal(view.ptr, expected, view.len);
}

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
test_record_is_live_follows_expiry_and_deadline(void **ctx)
{
    static const struct {
        int64_t expires_ms, deadline_ms, now_ms;
        bool is_live;
    } cases[] = {
        {1000, 0, 999, true},      {1000, 0, 1000, false},  {1000, 0, 1001, false},
        {1000, 500, 499, true},    {1000, 500, 500, false}, {1000, 2000, 999, true},
        {1000, 2000, 1000, false}, {INT64_MAX, 0, 0, true},
    };
    size_t i;

    (void)ctx;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sess_record rec = {.expires_ms = cases[i].expires_ms,
                                  .deadline_ms = cases[i].deadline_ms};
        assert_int_equal(sess_record_is_live(&rec, cases[i].now_ms), cases[i].is_live);
    }
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

/* An update as session.c makes one: the keys of `set` (JSON) laid over
 * the stored data, the idle expiry moved to `expires_ms`, and, when `read`
 * is not NULL, the keys the request read with the values it saw, checked
 * against the record first. Freed with sess_patch_free. */
static struct sess_patch
patch(const char *set, const char *read, int64_t expires_ms)
{
    struct sess_patch p = {.expires_ms = expires_ms,
                           .set = json_loads(set, 0, NULL),
                           .del = json_object(),
                           .read = read ? json_loads(read, 0, NULL) : NULL};

    assert_non_null(p.set);
    assert_non_null(p.del);
    assert_true(!read || p.read);
    return p;
}

static enum sess_err
update(struct fx *f, const char *id, int64_t now_ms, struct sess_patch *p)
{
    return f->st->ops->update(f->st, sess_str_c(id), now_ms, p);
}

/* sess_patch_merge leaves its result in the patch: whether the store ever
 * laid the patch over a record. */
static bool
was_merged(const struct sess_patch *p)
{
    return p->merged != NULL;
}

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
    sess_patch_free(&p);
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
    sess_patch_free(&p);
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
    sess_patch_free(&p);
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
    sess_patch_free(&p);
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
    sess_patch_free(&p);
}

/* The owner is the user the data is logged in as (sess_data_owner). */
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
    sess_patch_free(&alice);
    sess_patch_free(&bob);
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

/* ------------------------------------------------------------------------
 * gc
 * ------------------------------------------------------------------------ */

static void
make_id(char out[SESS_ID_LEN + 1], unsigned n)
{
    snprintf(out, SESS_ID_LEN + 1, "id%041u", n);
}

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
 * A full map
 * ------------------------------------------------------------------------ */

static void
test_map_grows_when_full(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t later = T0 + 60 * MIN_MS;
    struct sess_store_stats stats;
    unsigned i;

    memset(data, 'x', sizeof data - 1);
    data[0] = '"';
    data[sizeof data - 2] = '"';
    data[sizeof data - 1] = '\0';
    for (i = 0; i < 600; i++) {
        make_id(id, i);
        create(f, id, later, "", data);
    }
    for (i = 0; i < 600; i++) {
        make_id(id, i);
        assert_int_equal(get(f, id, later - 1), SESS_OK);
        assert_int_equal(f->rec.data.len, sizeof data - 1);
    }
    assert_int_equal(f->st->ops->stats(f->st, later - 1, &stats), SESS_OK);
    assert_true(stats.map_size_bytes >= 600 * 1100);
    assert_int_equal(stats.sessions, 600);
}

/* Before the map grows, dead records make room. */
static void
test_full_map_purges_dead_records_before_growing(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t past = T0 - MIN_MS;
    struct sess_store_stats before, after;
    unsigned i;

    memset(data, 'x', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    assert_int_equal(f->st->ops->stats(f->st, past, &before), SESS_OK);
    for (i = 0; i < 300; i++) {
        make_id(id, i);
        create(f, id, past, "", data);
    }
    assert_int_equal(f->st->ops->stats(f->st, past, &after), SESS_OK);
    assert_int_equal(after.map_size_bytes, before.map_size_bytes);
    assert_true(after.sessions < 300);
}

static void
test_map_size_grown_by_one_process_is_kept_by_the_next(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t later = T0 + 60 * MIN_MS;
    struct sess_store_stats grown, reopened;
    unsigned i;

    memset(data, 'y', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    for (i = 0; i < 200; i++) {
        make_id(id, i);
        create(f, id, later, "", data);
    }
    assert_int_equal(f->st->ops->stats(f->st, later - 1, &grown), SESS_OK);
    assert_true(grown.map_size_bytes > f->cfg.lmdb_map_size_bytes);
    close_store(f);
    open_store(f);
    assert_int_equal(f->st->ops->stats(f->st, later - 1, &reopened), SESS_OK);
    assert_int_equal(reopened.map_size_bytes, grown.map_size_bytes);
}

static void
test_reopening_with_a_larger_map_size_takes_it(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store_stats stats;

    create(f, ID1, T0 + MIN_MS, "", "{}");
    close_store(f);
    f->cfg.lmdb_map_size_bytes = 4u << 20;
    open_store(f);
    assert_int_equal(f->st->ops->stats(f->st, T0, &stats), SESS_OK);
    assert_int_equal(stats.map_size_bytes, 4u << 20);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
}

/* Another process grows the map past ours: our next read and write meet
 * MDB_MAP_RESIZED and take the new size. The child never touches the
 * parent's environment; it opens its own after the fork. */
static void
test_map_grown_by_another_process_is_adopted(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t later = T0 + 60 * MIN_MS;
    pid_t pid;
    int status;
    unsigned i;

    create(f, ID1, later, "", "{}");
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    memset(data, 'z', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sess_store *st;
        char errmsg[SESS_ERRMSG_MAX];
        struct sess_record rec = record(later, 0, "", data);

        if (sess_store_lmdb_open(&st, f->store_dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg))
            _exit(2);
        for (i = 0; i < 300; i++) {
            make_id(id, i);
            if (st->ops->create(st, sess_str_c(id), T0, &rec) != SESS_OK)
                _exit(3);
        }
        sess_store_close(st);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    make_id(id, 299);
    assert_int_equal(get(f, id, T0), SESS_OK);
    assert_int_equal(f->rec.data.len, sizeof data - 1);
    create(f, ID2, later, "", data);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
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

/* ------------------------------------------------------------------------
 * Sealing, as seen in the file
 * ------------------------------------------------------------------------ */

#define MARKER "marker-7f3a9c-plaintext"

static bool
file_contains(const char *dir, const char *needle)
{
    char path[PATH_MAX];
    FILE *fp;
    char *data;
    long size;
    bool found;

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    size = ftell(fp);
    assert_true(size > 0);
    rewind(fp);
    data = malloc((size_t)size);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    found = memmem(data, (size_t)size, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

static void
test_sealed_data_never_reaches_the_file_in_plaintext(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"note\":\"" MARKER "2\"}", NULL, T0 + 60 * MIN_MS);

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"note\":\"" MARKER "\"}");
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess_patch_free(&p);
    close_store(f);
    assert_false(file_contains(f->store_dir, MARKER));
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"note\":\"" MARKER "2\"}");
}

/* The control for the test above: without encryption the marker is there,
 * so the search would find it. */
static void
test_unsealed_store_keeps_plain_json(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"note\":\"" MARKER "\"}");
    close_store(f);
    assert_true(file_contains(f->store_dir, MARKER));
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
}

/* Writes `value` under `id` in the sessions database with plain LMDB, as
 * someone with the file would. The store must be closed: one environment
 * per process. */
static void
raw_put(const char *dir, const char *id, const void *value, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(id), (void *)id}, v = {len, (void *)value};

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
raw_get(const char *dir, const char *id, struct sess_buf *out)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(id), (void *)id}, v;

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    out->len = 0;
    assert_int_equal(sess_buf_append(out, v.mv_data, v.mv_size), SESS_OK);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static void
test_value_moved_to_another_id_does_not_open(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf raw = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"user\":\"mallory\"}");
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    raw_put(f->store_dir, ID2, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    sess_buf_free(&raw);
}

static void
test_corrupt_records_are_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf raw = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"a\":1}");
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    raw.ptr[raw.len - 1] ^= 0x40; /* a flipped bit in the tag */
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    raw_put(f->store_dir, ID2, "short", 5);  /* no header */
    raw_put(f->store_dir, ID3, raw.ptr, 20); /* truncated header */
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID3, T0), SESS_ENOTFOUND);
    sess_buf_free(&raw);
}

static void
test_records_sealed_under_an_older_secret_still_open(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_secrets rotated = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"old\":true}");
    close_store(f);
    assert_int_equal(sess_secrets_add(&rotated, SESS_STR_LIT(SECRET_B)), SESS_OK);
    assert_int_equal(sess_secrets_add(&rotated, SESS_STR_LIT(SECRET_A)), SESS_OK);
    sess_secrets_free(&f->secrets);
    f->secrets = rotated;
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"old\":true}");
}

static void
test_records_of_a_retired_secret_are_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_secrets only_b = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"old\":true}");
    close_store(f);
    assert_int_equal(sess_secrets_add(&only_b, SESS_STR_LIT(SECRET_B)), SESS_OK);
    sess_secrets_free(&f->secrets);
    f->secrets = only_b;
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

static void
test_open_creates_missing_directories_private(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = NULL;
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];
    struct stat sb;

    tmpdir_path(&f->dir, "a/b/c", dir);
    assert_int_equal(sess_store_lmdb_open(&st, dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    sess_store_close(st);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

static void
test_open_of_unusable_directory_names_it(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = NULL;
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];

    assert_int_equal(tmpdir_write_str(&f->dir, "file", "not a directory"), 0);
    tmpdir_path(&f->dir, "file/sessions", dir);
    assert_int_equal(sess_store_lmdb_open(&st, dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg),
                     SESS_ECONFIG);
    assert_null(st);
    assert_non_null(strstr(errmsg, dir));
}

static void
test_open_with_encryption_and_no_secret_is_refused(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = NULL;
    struct sess_secrets none = {0};
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];

    tmpdir_path(&f->dir, "other", dir);
    assert_int_equal(sess_store_lmdb_open(&st, dir, &f->cfg, &none, errmsg, sizeof errmsg),
                     SESS_ECONFIG);
    assert_null(st);
}

static void
test_store_open_dispatches_on_the_store_setting(void **ctx)
{
    static const struct {
        const char *store;
        enum sess_err err;
        const char *message_part;
    } cases[] = {
        {"rediss://example.org/0", SESS_ECONFIG, "rediss://"},
        {"lmdb:", SESS_ECONFIG, "lmdb:DIR"},
        {"mysql://db", SESS_ECONFIG, "unknown kind"},
        {"", SESS_ECONFIG, "unknown kind"},
    };
    struct fx *f = *ctx;
    struct sess_config cfg = f->cfg;
    struct sess_store *st;
    char errmsg[SESS_ERRMSG_MAX], spec[PATH_MAX + 8];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg.store = (char *)cases[i].store;
        errmsg[0] = '\0';
        assert_int_equal(sess_store_open(&st, &cfg, &f->secrets, errmsg, sizeof errmsg),
                         cases[i].err);
        assert_null(st);
        assert_non_null(strstr(errmsg, cases[i].message_part));
    }
    snprintf(spec, sizeof spec, "lmdb:%s/via-dispatch", f->dir.path);
    cfg.store = spec;
    assert_int_equal(sess_store_open(&st, &cfg, &f->secrets, errmsg, sizeof errmsg), SESS_OK);
    assert_string_equal(st->ops->kind, "lmdb");
    sess_store_close(st);
    /* Redis connects on first use: an unreachable server is no reason to
     * refuse to start (requests get 503 until it is back). */
    cfg.store = (char *)"unix:/nonexistent/redis.sock";
    assert_int_equal(sess_store_open(&st, &cfg, &f->secrets, errmsg, sizeof errmsg), SESS_OK);
    assert_string_equal(st->ops->kind, "redis");
    sess_store_close(st);
    sess_store_close(NULL);
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
        sess_patch_free(&p);
    } while (err == SESS_ECONFLICT);
    sess_buf_free(&buf);
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
    if (sess_store_lmdb_open(&st, f->store_dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg))
        return 2;
    for (i = 0; i < PER_WORKER && status == 0; i++) {
        make_id(id, (unsigned)(w * 1000 + i));
        rec.owner = w % 2 ? SESS_STR_LIT("odd") : SESS_STR_LIT("even");
        if (st->ops->create(st, sess_str_c(id), T0, &rec) != SESS_OK)
            status = 3;
        else if (increment(st, later) != SESS_OK)
            status = 4;
    }
    sess_store_close(st);
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

/* ------------------------------------------------------------------------
 * The record format (store_lmdb.c, "Format 2") and what its seal covers
 * ------------------------------------------------------------------------ */

/* Format 2's layout, from its description, independently of the store. */
#define V2_OFF_FLAGS      1
#define V2_OFF_OWNERLEN   2
#define V2_OFF_EXTLEN     4
#define V2_OFF_EXPIRES    8
#define V2_OFF_LAST_SEEN  16
#define V2_OFF_DEADLINE   24
#define V2_OFF_GENERATION 40
#define V2_OFF_NONCE      48
#define V2_HEADER         64
#define V1_HEADER         32

static void
reopen(struct fx *f)
{
    close_store(f);
    open_store(f);
}

static int64_t
field_i64(const struct sess_buf *b, size_t off)
{
    int64_t v;
    memcpy(&v, b->ptr + off, sizeof v);
    return v;
}

static size_t
v2_payload_off(const struct sess_buf *b)
{
    uint16_t owner_len;
    uint32_t ext_len;

    memcpy(&owner_len, b->ptr + V2_OFF_OWNERLEN, sizeof owner_len);
    memcpy(&ext_len, b->ptr + V2_OFF_EXTLEN, sizeof ext_len);
    return V2_HEADER + owner_len + ext_len;
}

/* A value as 0.1 wrote it: format 1, the payload sealed by libsodium under
 * HMAC-SHA256(secret, "fcgi-session store") with the id alone as AD, or
 * plain JSON. */
static void
v1_value(struct sess_buf *out, const char *id, bool is_sealed, int64_t expires_ms,
         int64_t deadline_ms, const char *owner, const char *data)
{
    unsigned char header[V1_HEADER] = {1, is_sealed ? 1 : 0};
    uint16_t owner_len = (uint16_t)strlen(owner);
    int64_t created_ms = T0 - MIN_MS;
    unsigned char key[32], nonce[24];
    unsigned char sealed[512];
    unsigned long long clen;
    crypto_auth_hmacsha256_state h;

    memcpy(header + 2, &owner_len, 2);
    memcpy(header + 8, &expires_ms, 8);
    memcpy(header + 16, &deadline_ms, 8);
    memcpy(header + 24, &created_ms, 8);
    out->len = 0;
    assert_int_equal(sess_buf_append(out, header, sizeof header), SESS_OK);
    assert_int_equal(sess_buf_append(out, owner, owner_len), SESS_OK);
    if (!is_sealed) {
        assert_int_equal(sess_buf_append(out, data, strlen(data)), SESS_OK);
        return;
    }
    crypto_auth_hmacsha256_init(&h, (const unsigned char *)SECRET_A, strlen(SECRET_A));
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)"fcgi-session store", 18);
    crypto_auth_hmacsha256_final(&h, key);
    randombytes_buf(nonce, sizeof nonce);
    assert_true(strlen(data) + 40 <= sizeof sealed);
    memcpy(sealed, nonce, sizeof nonce);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + 24, &clen, (const unsigned char *)data,
                                               strlen(data), (const unsigned char *)id, strlen(id),
                                               NULL, nonce, key);
    assert_int_equal(sess_buf_append(out, sealed, 24 + (size_t)clen), SESS_OK);
}

/* The review's forgery: whoever can write the file puts plain JSON saying
 * "alice, admin" under the id of an anonymous cookie they hold. With
 * encrypt on, no unsealed record opens, of either format. */
static void
test_plain_record_in_a_sealed_store_is_refused(void **ctx)
{
    struct fx *f = *ctx;
    static const char forged[] =
        "{\"authenticated\":true,\"user\":{\"username\":\"alice\",\"role\":\"admin\"}}";
    struct sess_buf raw = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{}");
    /* Format 2, written by a store with encrypt off. */
    close_store(f);
    f->cfg.encrypt = SESS_ENCRYPT_NO;
    open_store(f);
    create(f, ID2, T0 + 30 * MIN_MS, "alice", forged);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID2, &raw);
    assert_int_equal(raw.ptr[V2_OFF_FLAGS] & 1, 0);
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    /* Format 1, unsealed. */
    v1_value(&raw, ID3, false, T0 + 30 * MIN_MS, 0, "alice", forged);
    raw_put(f->store_dir, ID3, raw.ptr, raw.len);
    f->cfg.encrypt = SESS_ENCRYPT_AUTO;
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID3, T0), SESS_ENOTFOUND);
    sess_buf_free(&raw);
}

static struct sess_record
full_record(void)
{
    struct sess_record rec = record(T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice", "{\"a\":1}");

    rec.idle_ms = 15 * MIN_MS;
    rec.lifetime_ms = 7 * 24 * 60 * MIN_MS;
    rec.is_remembered = true;
    rec.has_handle = true;
    memcpy(rec.handle, "0123456789abcdef", SESS_HANDLE_BYTES);
    rec.client_addr = SESS_STR_LIT("192.0.2.7");
    rec.user_agent = SESS_STR_LIT("Mozilla/5.0 (X11; Linux x86_64)");
    rec.last_seen_ms = T0;
    return rec;
}

static void
test_format_2_carries_the_per_session_fields(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = full_record();

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    reopen(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_int_equal(f->rec.idle_ms, 15 * MIN_MS);
    assert_int_equal(f->rec.lifetime_ms, 7 * 24 * 60 * MIN_MS);
    assert_true(f->rec.is_remembered);
    assert_true(f->rec.has_handle);
    assert_memory_equal(f->rec.handle, "0123456789abcdef", SESS_HANDLE_BYTES);
    assert_str_view(f->rec.client_addr, "192.0.2.7");
    assert_str_view(f->rec.user_agent, "Mozilla/5.0 (X11; Linux x86_64)");
    assert_int_equal(f->rec.client_addr.ptr[f->rec.client_addr.len], '\0');
    assert_int_equal(f->rec.last_seen_ms, T0);
    assert_str_view(f->rec.owner, "alice");
    assert_str_view(f->rec.data, "{\"a\":1}");
    assert_int_equal(f->rec.generation, 1);
    /* A touch moves the last sighting with the expiry. */
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0 + 5 * MIN_MS, T0 + 35 * MIN_MS),
                     SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 6 * MIN_MS), SESS_OK);
    assert_int_equal(f->rec.last_seen_ms, T0 + 5 * MIN_MS);
    assert_int_equal(f->rec.expires_ms, T0 + 35 * MIN_MS);
    /* Defaults stay defaults. */
    create(f, ID2, T0 + 30 * MIN_MS, "", "{}");
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    assert_int_equal(f->rec.idle_ms, 0);
    assert_int_equal(f->rec.lifetime_ms, 0);
    assert_false(f->rec.is_remembered);
    assert_false(f->rec.has_handle);
    assert_int_equal(f->rec.client_addr.len, 0);
    assert_int_equal(f->rec.user_agent.len, 0);
}

static void
test_updates_keep_the_nonce_and_count_generations(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = full_record();
    unsigned char nonce[SESS_RECORD_NONCE_BYTES];
    struct sess_patch p = patch("{\"a\":2}", NULL, T0 + 30 * MIN_MS);

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    memcpy(nonce, f->rec.nonce, sizeof nonce);
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess_patch_free(&p);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_int_equal(f->rec.generation, 2);
    assert_memory_equal(f->rec.nonce, nonce, sizeof nonce);
    assert_str_view(f->rec.user_agent, "Mozilla/5.0 (X11; Linux x86_64)");
    assert_str_view(f->rec.data, "{\"a\":2}");
    /* Another record, even built from this one, gets its own. */
    rec = f->rec;
    rec.data = SESS_STR_LIT("{}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), T0, &rec), SESS_OK);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    assert_int_equal(f->rec.generation, 1);
    assert_memory_not_equal(f->rec.nonce, nonce, sizeof nonce);
}

/* Every byte of the header but the idle expiry and the last sighting, and
 * every byte of the owner and the extensions, is under the seal: a record
 * edited in any of them does not open. */
static void
test_every_sealed_header_field_edited_does_not_open(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = full_record();
    struct sess_buf orig = {0}, raw = {0};
    size_t payload_off, off;

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &orig);
    payload_off = v2_payload_off(&orig);
    assert_true(payload_off > V2_HEADER + 5);
    for (off = 0; off < payload_off; off++) {
        if (off >= V2_OFF_EXPIRES && off < V2_OFF_LAST_SEEN + 8)
            continue;
        for (unsigned bit = 0; bit < 8; bit += 3) {
            raw.len = 0;
            assert_int_equal(sess_buf_append(&raw, orig.ptr, orig.len), SESS_OK);
            raw.ptr[off] ^= (char)(1u << bit);
            raw_put(f->store_dir, ID1, raw.ptr, raw.len);
            open_store(f);
            if (get(f, ID1, T0) != SESS_ENOTFOUND)
                fail_msg("byte %zu bit %u edited, the record still opens", off, bit);
            close_store(f);
        }
    }
    /* The control: untouched, it opens. */
    raw_put(f->store_dir, ID1, orig.ptr, orig.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    sess_buf_free(&orig);
    sess_buf_free(&raw);
}

/* The idle expiry is outside the seal (a touch rewrites it alone), so it
 * can be pushed forward; the deadline, inside, still ends the record. */
static void
test_edited_expiry_is_capped_by_the_sealed_deadline(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice", "{}");
    struct sess_buf raw = {0};
    int64_t far = T0 + 365 * 24 * 60 * MIN_MS;

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    memcpy(raw.ptr + V2_OFF_EXPIRES, &far, sizeof far);
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0 + 60 * MIN_MS), SESS_OK);
    assert_int_equal(f->rec.expires_ms, T0 + 120 * MIN_MS);
    assert_int_equal(get(f, ID1, T0 + 120 * MIN_MS), SESS_ENOTFOUND);
    sess_buf_free(&raw);
}

/* The payload of a destroyed session, put under the header of a new record
 * of the same id, does not open; nor does an older version's payload under
 * the current header of its own record. (The whole old value, header
 * included, would: without state outside the file nothing can tell it
 * from the real one. README.md, "Security".) */
static void
test_replayed_old_payload_does_not_open_under_a_new_header(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice",
                                    "{\"user\":{\"username\":\"alice\",\"role\":\"admin\"}}");
    struct sess_buf old = {0}, cur = {0}, mix = {0};
    struct sess_patch p = patch("{\"n\":2}", NULL, T0 + 30 * MIN_MS);

    /* A destroyed record, then a new one under the same id. */
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &old);
    open_store(f);
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), T0), SESS_OK);
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &cur);
    assert_int_equal(old.len, cur.len);
    assert_memory_not_equal(old.ptr + V2_OFF_NONCE, cur.ptr + V2_OFF_NONCE, 16);
    assert_int_equal(sess_buf_append(&mix, cur.ptr, v2_payload_off(&cur)), SESS_OK);
    assert_int_equal(
        sess_buf_append(&mix, old.ptr + v2_payload_off(&old), old.len - v2_payload_off(&old)),
        SESS_OK);
    raw_put(f->store_dir, ID1, mix.ptr, mix.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);

    /* An older version of a live record: generation 1's payload under
     * generation 2's header. */
    close_store(f);
    raw_put(f->store_dir, ID1, cur.ptr, cur.len);
    open_store(f);
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess_patch_free(&p);
    close_store(f);
    raw_get(f->store_dir, ID1, &old); /* generation 2 */
    assert_int_equal(field_i64(&old, V2_OFF_GENERATION), 2);
    mix.len = 0;
    assert_int_equal(sess_buf_append(&mix, old.ptr, v2_payload_off(&old)), SESS_OK);
    assert_int_equal(
        sess_buf_append(&mix, cur.ptr + v2_payload_off(&cur), cur.len - v2_payload_off(&cur)),
        SESS_OK);
    raw_put(f->store_dir, ID1, mix.ptr, mix.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    sess_buf_free(&old);
    sess_buf_free(&cur);
    sess_buf_free(&mix);
}

/* A store written by 0.1: its sealed records open, under its key and its
 * AD, and the next save writes them in format 2; a touch keeps them
 * readable meanwhile. */
static void
test_records_of_the_previous_format_still_open_and_are_rewritten(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf raw = {0};
    struct sess_patch p = patch("{\"n\":2}", "{\"n\":1}", T0 + 40 * MIN_MS);

    close_store(f);
    v1_value(&raw, ID1, true, T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice", "{\"n\":1}");
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    /* Its payload under another id does not open. */
    raw_put(f->store_dir, ID2, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":1}");
    assert_str_view(f->rec.owner, "alice");
    assert_int_equal(f->rec.expires_ms, T0 + 30 * MIN_MS);
    assert_int_equal(f->rec.deadline_ms, T0 + 120 * MIN_MS);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(
        f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0 + 10 * MIN_MS, T0 + 50 * MIN_MS), SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 45 * MIN_MS), SESS_OK);
    /* It read n = 1 there: the merge saw the old record opened. */
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess_patch_free(&p);
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    assert_int_equal(raw.ptr[0], 2);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":2}");
    /* revoke --user finds it by the owner of either format. */
    close_store(f);
    v1_value(&raw, ID3, true, T0 + 30 * MIN_MS, 0, "bob", "{}");
    raw_put(f->store_dir, ID3, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID3, T0), SESS_OK);
    sess_buf_free(&raw);
}

/* Extensions in a store without sealing, where they can be written by
 * hand: an unknown one is skipped, an unknown critical one (0x80 set), a
 * known one of the wrong size or twice, or one cut short refuses the
 * record. */
static void
test_unknown_extensions_are_skipped_unless_critical(void **ctx)
{
    struct fx *f = *ctx;
    static const struct {
        const char *ext;
        size_t len;
        enum sess_err want;
    } cases[] = {
        {"\x40\x02\x00xy", 5, SESS_OK},
        {"\xc0\x02\x00xy", 5, SESS_ENOTFOUND},
        {"\x01\x02\x00xy", 5, SESS_ENOTFOUND},             /* idle_ms of 2 bytes */
        {"\x04\x01\x00x\x04\x01\x00y", 8, SESS_ENOTFOUND}, /* address twice */
        {"\x04\x09\x00x", 4, SESS_ENOTFOUND},              /* longer than the section */
        {"\x04", 1, SESS_ENOTFOUND},                       /* a type alone */
        {"\x04\x00\x00", 3, SESS_OK},                      /* empty address */
    };
    struct sess_buf orig = {0}, raw = {0};
    size_t payload_off;

    create(f, ID1, T0 + 30 * MIN_MS, "bob", "{\"k\":1}");
    close_store(f);
    raw_get(f->store_dir, ID1, &orig);
    payload_off = v2_payload_off(&orig);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t ext_len = (uint32_t)cases[i].len;
        raw.len = 0;
        assert_int_equal(sess_buf_append(&raw, orig.ptr, payload_off), SESS_OK);
        assert_int_equal(sess_buf_append(&raw, cases[i].ext, cases[i].len), SESS_OK);
        assert_int_equal(sess_buf_append(&raw, orig.ptr + payload_off, orig.len - payload_off),
                         SESS_OK);
        memcpy(raw.ptr + V2_OFF_EXTLEN, &ext_len, sizeof ext_len);
        raw_put(f->store_dir, ID1, raw.ptr, raw.len);
        open_store(f);
        if (get(f, ID1, T0) != cases[i].want)
            fail_msg("case %zu: not %s", i, sess_strerror(cases[i].want));
        if (cases[i].want == SESS_OK)
            assert_str_view(f->rec.data, "{\"k\":1}");
        close_store(f);
    }
    open_store(f);
    sess_buf_free(&orig);
    sess_buf_free(&raw);
}

static void
raw_put_db(const char *dir, const char *db, const void *key, size_t key_len, const void *value,
           size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {key_len, (void *)key}, v = {len, (void *)value};

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name)    cmocka_unit_test_setup_teardown(name, setup, teardown)
#define TINY(name) cmocka_unit_test_setup_teardown(name, setup_tiny_map, teardown)
        T(test_create_then_get_returns_the_record),
        T(test_get_of_unknown_id_is_not_found),
        T(test_get_of_unusable_ids_is_not_found),
        T(test_create_of_existing_id_is_eexists),
        T(test_get_at_or_after_expiry_is_not_found),
        T(test_get_at_or_after_deadline_is_not_found),
        T(test_record_is_live_follows_expiry_and_deadline),
        T(test_get_reuses_its_buffer),
        T(test_records_survive_reopening),
        T(test_update_merges_into_the_current_record),
        T(test_update_of_destroyed_record_is_not_found_and_not_recreated),
        T(test_update_of_expired_record_is_not_found),
        T(test_update_aborts_when_merge_fails),
        T(test_update_refiles_the_expiry_for_gc),
        T(test_update_moves_the_owner_index),
        T(test_touch_moves_the_expiry_and_keeps_the_data),
        T(test_touch_of_dead_or_absent_record_is_not_found),
        T(test_touch_refiles_the_expiry_for_gc),
        T(test_destroy_removes_the_record),
        T(test_destroy_of_absent_id_is_ok),
        T(test_destroy_owner_ends_only_that_owners_sessions),
        T(test_destroy_owner_of_unknown_owner_counts_zero),
        T(test_gc_purges_only_dead_records),
        T(test_gc_works_in_bounded_batches),
        T(test_gc_if_due_purges_at_most_once_per_interval),
        T(test_gc_if_due_follows_the_shared_schedule),
        TINY(test_map_grows_when_full),
        TINY(test_full_map_purges_dead_records_before_growing),
        TINY(test_map_size_grown_by_one_process_is_kept_by_the_next),
        TINY(test_map_grown_by_another_process_is_adopted),
        TINY(test_reopening_with_a_larger_map_size_takes_it),
        T(test_throttle_counts_failures_in_the_window),
        T(test_throttle_restarts_after_the_window),
        T(test_throttle_peek_does_not_count),
        T(test_throttle_clear_forgets_the_key),
        T(test_throttle_keys_are_independent),
        T(test_throttle_accepts_keys_over_the_lmdb_key_limit),
        T(test_gc_purges_stale_throttle_counters),
        T(test_user_put_get_and_del),
        T(test_user_put_replaces),
        T(test_user_put_new_refuses_a_taken_name),
        T(test_user_each_visits_every_account_in_name_order),
        T(test_each_visits_every_record_unsealed),
        T(test_each_of_an_owner_visits_only_theirs),
        T(test_each_stops_when_the_visitor_says_so),
        T(test_each_visitor_may_destroy_records),
        T(test_stats_counts_what_is_stored),
        T(test_sealed_data_never_reaches_the_file_in_plaintext),
        cmocka_unit_test_setup_teardown(test_unsealed_store_keeps_plain_json, setup_plain,
                                        teardown),
        T(test_value_moved_to_another_id_does_not_open),
        T(test_corrupt_records_are_not_found),
        T(test_records_sealed_under_an_older_secret_still_open),
        T(test_records_of_a_retired_secret_are_not_found),
        T(test_open_creates_missing_directories_private),
        T(test_open_of_unusable_directory_names_it),
        T(test_open_with_encryption_and_no_secret_is_refused),
        T(test_store_open_dispatches_on_the_store_setting),
        T(test_processes_write_concurrently_without_losing_anything),
        T(test_gc_of_a_large_batch_keeps_the_owner_index),
        TINY(test_gc_of_a_batch_too_large_for_the_map_purges_a_smaller_one),
        T(test_plain_record_in_a_sealed_store_is_refused),
        T(test_format_2_carries_the_per_session_fields),
        T(test_updates_keep_the_nonce_and_count_generations),
        T(test_every_sealed_header_field_edited_does_not_open),
        T(test_edited_expiry_is_capped_by_the_sealed_deadline),
        T(test_replayed_old_payload_does_not_open_under_a_new_header),
        T(test_records_of_the_previous_format_still_open_and_are_rewritten),
        cmocka_unit_test_setup_teardown(test_unknown_extensions_are_skipped_unless_critical,
                                        setup_plain, teardown),
        T(test_destroy_owner_skips_an_id_no_session_can_have),
#undef T
#undef TINY
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
