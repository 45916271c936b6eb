/* The LMDB store's garbage collection: dead records purged in batches from
 * the front of the expiry index (sessions.c files them there), with their
 * owner index entries, in the order that rewrites the fewest pages; a
 * batch on the request path at most once a minute across all processes
 * (gc_if_due), and sessctl's larger ones. Stale throttle counters go with
 * each batch (accounts.c); env.c runs a batch when the map fills up. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>
#include <sodium.h>

#include "lmdb_store.h"

/* How often, across all processes, a request pays for a gc batch. */
#define GC_INTERVAL_MS 60000

/* How many due entries of the expiry index a batch chooses from, per
 * record it may delete. It takes those with the smallest ids: the index is
 * in expiry order, random in id, and a run of batches that works through
 * the ids in order rewrites each page of the records and owners about once
 * rather than once per batch. Out of expiry order is harmless: get checks
 * the expiry of what it reads. */
#define GC_WINDOW 4

/* A due entry of the expiry index, be64(instant) || id, and what its
 * record had. Keys and owners are copied out of the map (the pages they lie
 * on change as the batch deletes): offsets while the buffers grow, then
 * pointers. */
struct gc_victim {
    uint64_t id_prefix; /* the id's first 8 bytes, big-endian: most comparisons end here */
    size_t key_off, key_len, owner_off, owner_len;
    const char *key, *owner;
    bool is_purged;
};

static const char *
victim_id(const struct gc_victim *v, size_t *len)
{
    *len = v->key_len > 8 ? v->key_len - 8 : 0;
    return *len ? v->key + 8 : v->key;
}

/* LMDB's own key order: bytes, then the shorter first. */
static int
cmp_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return c ? c : (a_len > b_len) - (a_len < b_len);
}

static int
cmp_victim_id(const void *pa, const void *pb)
{
    const struct gc_victim *a = pa, *b = pb;
    const char *a_id, *b_id;
    size_t a_len, b_len;

    if (a->id_prefix != b->id_prefix)
        return a->id_prefix < b->id_prefix ? -1 : 1;
    a_id = victim_id(a, &a_len);
    b_id = victim_id(b, &b_len);
    return cmp_bytes(a_id, a_len, b_id, b_len);
}

/* The purged ones with an owner first, by owner then id (a dupsort's
 * order); the rest after them. */
static int
cmp_victim_owner(const void *pa, const void *pb)
{
    const struct gc_victim *a = pa, *b = pb;
    bool a_has = a->is_purged && a->owner_len, b_has = b->is_purged && b->owner_len;
    int c;

    if (a_has != b_has)
        return a_has ? -1 : 1;
    if (!a_has)
        return 0;
    c = cmp_bytes(a->owner, a->owner_len, b->owner, b->owner_len);
    return c ? c : cmp_victim_id(a, b);
}

static int
cmp_victim_key(const void *pa, const void *pb)
{
    const struct gc_victim *a = pa, *b = pb;
    return cmp_bytes(a->key, a->key_len, b->key, b->key_len);
}

static void
sort_victims(struct gc_victim *vic, size_t n, int (*cmp)(const void *, const void *))
{
    /* qsort's array may not be NULL, even when empty */
    if (n > 1)
        qsort(vic, n, sizeof *vic, cmp);
}

/* Notes up to `window` due entries from the front of the expiry index in
 * `victims`, their keys in `keys`. */
static enum sess_err
gc_collect(struct lmdb_store *ls, MDB_txn *txn, struct lmdb_gc *a, size_t window,
           struct sess_buf *victims, struct sess_buf *keys)
{
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    struct gc_victim vic;
    const unsigned char *key;
    enum sess_err err = SESS_OK;
    size_t n, i;
    int rc;

    rc = mdb_cursor_open(txn, ls->dbi[DB_EXPIRY], &cur);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_cursor_open");
    for (n = 0;; n++) {
        rc = mdb_cursor_get(cur, &k, &d, n ? MDB_NEXT : MDB_FIRST);
        if (rc)
            break;
        if (k.mv_size > 8 && lmdb__get_be64(k.mv_data) > a->now_ms)
            break;
        if (n == window) {
            a->more = true;
            break;
        }
        key = k.mv_data;
        vic = (struct gc_victim){.key_off = keys->len, .key_len = k.mv_size};
        for (i = 8; i < 16; i++)
            vic.id_prefix = vic.id_prefix << 8 | (i < k.mv_size ? key[i] : 0);
        err = sess__buf_append(keys, k.mv_data, k.mv_size);
        if (err == SESS_OK)
            err = sess__buf_append(victims, &vic, sizeof vic);
        if (err != SESS_OK)
            goto out;
    }
    if (rc && rc != MDB_NOTFOUND)
        err = lmdb__fail(ls, rc, "mdb_cursor_get");
out:
    mdb_cursor_close(cur);
    return err;
}

/* Deletes the victims' records in key order, so that neighbours share the
 * pages they dirty and the walk down the tree, noting each one's owner.
 * Only a record still filed under the instant of its entry dies; one that
 * moved (touched) has its own, later entry. */
static enum sess_err
gc_purge_records(struct lmdb_store *ls, MDB_txn *txn, struct lmdb_gc *a, struct gc_victim *vic,
                 size_t n, struct sess_buf *owners)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct lmdb_header h;
    enum sess_err err = SESS_OK;
    int64_t at_ms;
    size_t i;
    int rc;

    rc = mdb_cursor_open(txn, ls->dbi[DB_SESSIONS], &cur);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_cursor_open");
    for (i = 0; i < n; i++) {
        k.mv_data = (void *)victim_id(&vic[i], &k.mv_size);
        if (!k.mv_size)
            continue;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc) {
            err = lmdb__fail(ls, rc, "mdb_cursor_get");
            goto out;
        }
        at_ms = lmdb__get_be64((const unsigned char *)vic[i].key);
        if (!lmdb__header_read(&v, &h) || lmdb__index_instant(h.expires_ms, h.deadline_ms) != at_ms)
            continue;
        vic[i].owner_off = owners->len;
        vic[i].owner_len = h.owner_len;
        err = sess__buf_append(owners, (const char *)v.mv_data + h.owner_off, h.owner_len);
        if (err != SESS_OK)
            goto out;
        rc = mdb_cursor_del(cur, 0);
        if (rc) {
            err = lmdb__fail(ls, rc, "mdb_del");
            goto out;
        }
        vic[i].is_purged = true;
        a->purged++;
    }
out:
    mdb_cursor_close(cur);
    return err;
}

/* Deletes the purged records' entries from one index, in the index's own
 * order, so that most are found on the page of the one before: the owners
 * index (owner, id) or the expiry index (its key). Already gone is fine:
 * indexes are repaired by whoever finds them stale. */
static enum sess_err
gc_purge_index(struct lmdb_store *ls, MDB_txn *txn, enum lmdb_db db, struct gc_victim *vic,
               size_t n)
{
    MDB_cursor *cur = NULL;
    MDB_val k, d;
    enum sess_err err = SESS_OK;
    bool by_owner = db == DB_OWNERS;
    size_t i;
    int rc;

    sort_victims(vic, n, by_owner ? cmp_victim_owner : cmp_victim_key);
    rc = mdb_cursor_open(txn, ls->dbi[db], &cur);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_cursor_open");
    /* By owner, the purged records with an owner come first. */
    for (i = 0; i < n && (!by_owner || (vic[i].is_purged && vic[i].owner_len)); i++) {
        if (by_owner) {
            k = lmdb__mval(vic[i].owner, vic[i].owner_len);
            d.mv_data = (void *)victim_id(&vic[i], &d.mv_size);
        } else {
            k = lmdb__mval(vic[i].key, vic[i].key_len);
        }
        rc = mdb_cursor_get(cur, &k, &d, by_owner ? MDB_GET_BOTH : MDB_SET);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_del(cur, 0);
        if (rc) {
            err = lmdb__fail(ls, rc, "mdb_del (index)");
            break;
        }
    }
    mdb_cursor_close(cur);
    return err;
}

/* Deletes up to a->max dead sessions, chosen among the oldest entries of
 * the expiry index, then up to a->max stale throttle counters
 * (accounts.c). */
enum sess_err
lmdb__gc_batch(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct lmdb_gc *a = arg;
    struct sess_buf victims = {0}, keys = {0}, owners = {0};
    struct gc_victim *vic;
    enum sess_err err;
    size_t n, i;

    a->purged = 0;
    a->more = false;
    err = gc_collect(ls, txn, a, a->max > SIZE_MAX / GC_WINDOW ? SIZE_MAX : a->max * GC_WINDOW,
                     &victims, &keys);
    if (err != SESS_OK)
        goto out;
    vic = (struct gc_victim *)victims.ptr;
    n = victims.len / sizeof *vic;
    for (i = 0; i < n; i++)
        vic[i].key = keys.ptr + vic[i].key_off;
    sort_victims(vic, n, cmp_victim_id);
    if (n > a->max) {
        n = a->max;
        a->more = true;
    }
    err = gc_purge_records(ls, txn, a, vic, n, &owners);
    if (err != SESS_OK)
        goto out;
    for (i = 0; i < n; i++)
        vic[i].owner = owners.ptr + vic[i].owner_off;
    err = gc_purge_index(ls, txn, DB_OWNERS, vic, n);
    if (err == SESS_OK)
        err = gc_purge_index(ls, txn, DB_EXPIRY, vic, n);
    if (err == SESS_OK)
        err = lmdb__throttle_gc(ls, txn, a);
out:
    sess__buf_free(&owners);
    sess__buf_free(&keys);
    sess__buf_free(&victims);
    return err;
}

enum sess_err
lmdb__gc(struct sess_store *st, int64_t now_ms, size_t max, size_t *purged, bool *more)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct lmdb_gc a = {.now_ms = now_ms, .max = max ? max : 1};
    enum sess_err err;
    int dead;

    *purged = 0;
    *more = false;
    /* A process killed inside a read txn pins every page since; free its
     * slot before the purge, or the space freed cannot be reused. */
    mdb_reader_check(ls->env, &dead);
    /* Deleting takes free pages too (copy-on-write), and the pages a batch
     * frees are reused only two transactions later: where a batch finds no
     * room in the map or on the disk, or dirties more than one transaction
     * may, a smaller one may still fit. */
    for (;;) {
        err = lmdb__write_txn(ls, lmdb__gc_batch, &a, now_ms, false);
        if (err == SESS_OK || a.max == 1 ||
            (ls->rc != MDB_MAP_FULL && ls->rc != ENOSPC && ls->rc != MDB_TXN_FULL))
            break;
        a.max /= 2;
    }
    if (err == SESS_OK) {
        *purged = a.purged;
        *more = a.more;
    }
    return err;
}

static const char gc_next_key[] = "gc_next";

struct gc_due_arg {
    struct lmdb_gc gc;
    int64_t next_ms;
};

static enum sess_err
do_gc_if_due(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct gc_due_arg *a = arg;
    MDB_val k = lmdb__mval(gc_next_key, sizeof gc_next_key - 1), v;
    unsigned char next[8];
    int rc;

    /* Re-read under the write lock: of all the processes that found gc due,
     * only the first to get here does the batch. */
    rc = mdb_get(txn, ls->dbi[DB_META], &k, &v);
    if (rc == MDB_SUCCESS && v.mv_size == 8 && lmdb__get_i64(v.mv_data) > a->gc.now_ms) {
        a->next_ms = lmdb__get_i64(v.mv_data);
        return SESS_OK;
    }
    if (rc && rc != MDB_NOTFOUND)
        return lmdb__fail(ls, rc, "mdb_get (meta)");
    a->next_ms = a->gc.now_ms + GC_INTERVAL_MS;
    lmdb__set_i64(next, a->next_ms);
    v = lmdb__mval(next, sizeof next);
    rc = mdb_put(txn, ls->dbi[DB_META], &k, &v, 0);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_put (meta)");
    return lmdb__gc_batch(ls, txn, &a->gc);
}

void
lmdb__gc_if_due(struct sess_store *st, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct gc_due_arg a = {.gc = {.now_ms = now_ms, .max = SESS_GC_BATCH}};
    MDB_val k = lmdb__mval(gc_next_key, sizeof gc_next_key - 1), v;
    MDB_txn *txn;
    int dead;

    if (now_ms < ls->gc_check_ms)
        return;
    /* The shared schedule in "meta" is read without the write lock; most
     * processes learn here that another one did the work. The first call
     * of a process always looks, so even one-request CGI processes share
     * the duty. */
    a.next_ms = 0;
    if (lmdb__read_begin(ls, &txn) == SESS_OK) {
        if (mdb_get(txn, ls->dbi[DB_META], &k, &v) == MDB_SUCCESS && v.mv_size == 8)
            a.next_ms = lmdb__get_i64(v.mv_data);
        lmdb__read_end(ls);
    }
    if (a.next_ms <= now_ms) {
        mdb_reader_check(ls->env, &dead);
        if (lmdb__write_txn(ls, do_gc_if_due, &a, now_ms, false) != SESS_OK)
            a.next_ms = now_ms + GC_INTERVAL_MS;
    }
    /* Spread over the next interval so the processes do not all look at
     * the same instant. */
    ls->gc_check_ms = a.next_ms + (int64_t)randombytes_uniform(GC_INTERVAL_MS);
}
