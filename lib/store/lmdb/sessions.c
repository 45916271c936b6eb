/* The LMDB store's sessions: get, create, update, touch and destroy of one
 * record, each in one transaction, and the expiry index that gc walks
 * (filed by the instant a record dies, whole seconds). An update is a
 * patch laid over the stored record, or carried, sealed, to whichever
 * process commits next (group commit, combine.c): that process applies
 * its batch, every update in one transaction and one fsync, each checked
 * against what the ones before it left, and a batch handed over again
 * after its combiner died is recognised, and not applied twice. The record's layout is records.c's; many records
 * at once (gc, a user's sessions, listing) are gc.c's and admin.c's. */
#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <lmdb.h>
#include <sodium.h>

#include "lmdb_store.h"

/* Granularity of the expiry index (see lmdb__index_instant): a second keeps gc
 * and stats exact to the second. */
#define EXPIRY_BUCKET_MS 1000

/* The instant a record is filed under in the expiry index: its death,
 * rounded up to the next whole EXPIRY_BUCKET_MS. A session written again
 * within the same bucket keeps its index entry, so a write moves two
 * B-trees' worth of pages rather than three; gc meets a dead record at
 * most one bucket late, and get never returns one (it checks the record). */
int64_t
lmdb__index_instant(int64_t expires_ms, int64_t deadline_ms)
{
    int64_t at = sess__record_expiry_ms(expires_ms, deadline_ms);
    if (at <= 0 || at > INT64_MAX - EXPIRY_BUCKET_MS)
        return at;
    return (at + EXPIRY_BUCKET_MS - 1) / EXPIRY_BUCKET_MS * EXPIRY_BUCKET_MS;
}

/* The expiry index's key for `id`; the caller has checked the id with
 * lmdb__id_is_usable. Never more than the buffer, whatever it is given. */
static size_t
expiry_key(unsigned char out[8 + SESS_ID_MAX_LEN], int64_t at_ms, struct sess_str id)
{
    size_t len = id.len <= SESS_ID_MAX_LEN ? id.len : SESS_ID_MAX_LEN;

    assert(id.len <= SESS_ID_MAX_LEN);
    lmdb__put_be64(out, at_ms);
    memcpy(out + 8, id.ptr, len);
    return 8 + len;
}

static enum sess_err
expiry_put(struct lmdb_store *ls, MDB_txn *txn, struct sess_str id, int64_t at_ms)
{
    unsigned char key[8 + SESS_ID_MAX_LEN];
    return lmdb__index_put(ls, txn, DB_EXPIRY, key, expiry_key(key, at_ms, id), "", 0);
}

enum sess_err
lmdb__expiry_del(struct lmdb_store *ls, MDB_txn *txn, struct sess_str id, int64_t at_ms)
{
    unsigned char key[8 + SESS_ID_MAX_LEN];
    return lmdb__index_del(ls, txn, DB_EXPIRY, key, expiry_key(key, at_ms, id), NULL, 0);
}

/* Deletes a session record and its index entries, given its parsed header. */
static enum sess_err
delete_record(struct lmdb_store *ls, MDB_txn *txn, struct sess_str id, const MDB_val *v)
{
    enum sess_err err = SESS_OK;
    struct lmdb_header h;
    MDB_val k = lmdb__mval(id.ptr, id.len);
    int rc;

    if (lmdb__header_read(v, &h)) {
        err = lmdb__expiry_del(ls, txn, id, lmdb__index_instant(h.expires_ms, h.deadline_ms));
        if (err == SESS_OK && h.owner_len)
            err = lmdb__index_del(ls, txn, DB_OWNERS, (const char *)v->mv_data + h.owner_off,
                                  h.owner_len, id.ptr, id.len);
        if (err != SESS_OK)
            return err;
    }
    rc = mdb_del(txn, ls->dbi[DB_SESSIONS], &k, NULL);
    return rc && rc != MDB_NOTFOUND ? lmdb__fail(ls, rc, "mdb_del") : SESS_OK;
}

/* Names the stored bytes of a record for sess_record.read_tag; never 0.
 * Only the bytes that tell it apart are hashed (lmdb__record_name_len),
 * not the whole sealed record. */
static uint64_t
read_tag(const struct lmdb_store *ls, const MDB_val *v)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t tag;

    crypto_shorthash(h, v->mv_data, lmdb__record_name_len(v), ls->tag_key);
    memcpy(&tag, h, sizeof tag);
    return tag ? tag : 1;
}

enum sess_err
lmdb__get(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_record *out,
          struct sess_buf *buf)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn;
    MDB_val k = lmdb__mval(id.ptr, id.len), v;
    enum sess_err err;
    int rc;

    if (!lmdb__id_is_usable(id))
        return SESS_ENOTFOUND;
    err = lmdb__read_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        err = SESS_ENOTFOUND;
    else if (rc)
        err = lmdb__fail(ls, rc, "mdb_get");
    else
        err = lmdb__record_decode(ls, id, &v, true, now_ms, out, buf, true);
    if (err == SESS_OK)
        out->read_tag = read_tag(ls, &v);
    lmdb__read_end(ls);
    return err;
}

struct create_arg {
    struct sess_str id;
    const struct sess_record *rec;
};

static enum sess_err
do_create(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct create_arg *a = arg;
    MDB_val k = lmdb__mval(a->id.ptr, a->id.len), v = lmdb__mval(ls->val.ptr, ls->val.len);
    enum sess_err err;
    int rc;

    rc = mdb_put(txn, ls->dbi[DB_SESSIONS], &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return SESS_EEXISTS;
    if (rc)
        return lmdb__fail(ls, rc, "mdb_put");
    err = expiry_put(ls, txn, a->id, lmdb__index_instant(a->rec->expires_ms, a->rec->deadline_ms));
    if (err == SESS_OK && a->rec->owner.len)
        err = lmdb__index_put(ls, txn, DB_OWNERS, a->rec->owner.ptr, a->rec->owner.len, a->id.ptr,
                              a->id.len);
    return err;
}

enum sess_err
lmdb__create(struct sess_store *st, struct sess_str id, int64_t now_ms,
             const struct sess_record *rec)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct create_arg a = {id, rec};
    struct sess_record fresh;
    enum sess_err err;

    if (!lmdb__id_is_usable(id))
        return SESS_EBADINPUT;
    /* A new record never takes a nonce or generation from its caller: a
     * payload sealed for any earlier record must not open under this one. */
    fresh = *rec;
    randombytes_buf(fresh.nonce, sizeof fresh.nonce);
    fresh.generation = 0;
    a.rec = &fresh;
    /* Sealed before the write lock is taken: other writers wait for less. */
    err = lmdb__record_encode(ls, id, &fresh);
    if (err != SESS_OK)
        return err;
    return lmdb__write_txn(ls, do_create, &a, now_ms, true);
}

/* The stored bytes `v` are the very ones the patch's request read. Ids are
 * random and a tag is keyed by a secret of this process, so two records
 * share one only by chance (2^-64); every write moves the generation, even
 * of the same data (read_tag). */
static bool
is_unchanged_since_read(const struct lmdb_store *ls, const struct lmdb_update *a, const MDB_val *v)
{
    const struct sess_patch *p = a->patch;

    return p->whole && p->read_tag && p->read_tag == read_tag(ls, v);
}

enum sess_err
lmdb__update_apply(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct lmdb_update *a = arg;
    MDB_val k = lmdb__mval(a->id.ptr, a->id.len), v;
    struct sess_record cur, next;
    int64_t cur_at, next_at;
    enum sess_err err;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    if (rc)
        return lmdb__fail(ls, rc, "mdb_get");
    /* Copied out of the map: the put below may reuse the pages `v` is on,
     * and `next` may borrow from `cur`. A patch whose request holds the
     * whole session, over the very bytes it read, is laid over what the
     * request holds: the record is not opened again. */
    err = lmdb__record_decode(ls, a->id, &v, true, a->now_ms, &cur, &ls->cur,
                              !is_unchanged_since_read(ls, a, &v));
    if (err != SESS_OK)
        return err;
    next = cur;
    err = sess__patch_merge(a->patch, &cur, &next);
    if (err != SESS_OK)
        return err;
    err = lmdb__record_encode(ls, a->id, &next);
    if (err != SESS_OK)
        return err;
    v = lmdb__mval(ls->val.ptr, ls->val.len);
    rc = mdb_put(txn, ls->dbi[DB_SESSIONS], &k, &v, 0);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_put");

    cur_at = lmdb__index_instant(cur.expires_ms, cur.deadline_ms);
    next_at = lmdb__index_instant(next.expires_ms, next.deadline_ms);
    if (cur_at != next_at) {
        err = lmdb__expiry_del(ls, txn, a->id, cur_at);
        if (err == SESS_OK)
            err = expiry_put(ls, txn, a->id, next_at);
        if (err != SESS_OK)
            return err;
    }
    if (!lmdb__str_eq(cur.owner, next.owner)) {
        if (cur.owner.len)
            err = lmdb__index_del(ls, txn, DB_OWNERS, cur.owner.ptr, cur.owner.len, a->id.ptr,
                                  a->id.len);
        if (err == SESS_OK && next.owner.len)
            err = lmdb__index_put(ls, txn, DB_OWNERS, next.owner.ptr, next.owner.len, a->id.ptr,
                                  a->id.len);
    }
    return err;
}

enum sess_err
lmdb__update(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_patch *patch)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct lmdb_update a = {id, now_ms, patch};
    enum sess_err err;
    int result;

    if (!lmdb__id_is_usable(id))
        return SESS_ENOTFOUND;
    /* A patch can be applied by another process: queue it, unless the map
     * needs room first. Other outcomes than success or gone are repeated
     * alone, so that the error message is this process's own. */
    lmdb__purge_if_pressed(ls, now_ms);
    if (ls->may_combine && !ls->combiner) {
        /* Only processes that update sessions make the queue: sessctl,
         * which may run as root, never leaves one others cannot open. */
        char path[PATH_MAX];
        sess__fmt(path, sizeof path, "%s/commit-2.queue", ls->dir);
        ls->combiner = sess__combiner_open(path);
        ls->may_combine = ls->combiner != NULL;
    }
    if (ls->combiner && lmdb__batch_encode(ls, id, now_ms, patch) &&
        sess__combine(ls->combiner, ls->val.ptr, ls->val.len, lmdb__batch_apply, ls, &result)) {
        sodium_memzero(ls->val.ptr, ls->val.len);
        if (result == SESS_OK || result == SESS_ENOTFOUND || result == SESS_ECONFLICT)
            return (enum sess_err)result;
    }
    err = lmdb__write_txn(ls, lmdb__update_apply, &a, now_ms, true);
    /* The current record was plaintext in our buffer; do not keep it. */
    if (ls->cur.ptr)
        sodium_memzero(ls->cur.ptr, ls->cur.len);
    return err;
}

struct touch_arg {
    struct sess_str id;
    int64_t now_ms;
    int64_t expires_ms;
};

static enum sess_err
do_touch(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct touch_arg *a = arg;
    MDB_val k = lmdb__mval(a->id.ptr, a->id.len), v;
    struct lmdb_header h;
    enum sess_err err;
    int64_t old_at, new_at;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    if (rc)
        return lmdb__fail(ls, rc, "mdb_get");
    if (!lmdb__header_read(&v, &h))
        return SESS_ENOTFOUND;
    if (a->now_ms >= sess__record_expiry_ms(h.expires_ms, h.deadline_ms))
        return SESS_ENOTFOUND;
    /* The same payload bytes, the expiry moved (lmdb__record_touch). */
    ls->val.len = 0;
    err = sess__buf_append(&ls->val, v.mv_data, v.mv_size);
    if (err != SESS_OK)
        return err;
    lmdb__record_touch((unsigned char *)ls->val.ptr, &h, a->expires_ms, a->now_ms);
    v = lmdb__mval(ls->val.ptr, ls->val.len);
    rc = mdb_put(txn, ls->dbi[DB_SESSIONS], &k, &v, 0);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_put");
    old_at = lmdb__index_instant(h.expires_ms, h.deadline_ms);
    new_at = lmdb__index_instant(a->expires_ms, h.deadline_ms);
    if (old_at == new_at)
        return SESS_OK;
    err = lmdb__expiry_del(ls, txn, a->id, old_at);
    return err == SESS_OK ? expiry_put(ls, txn, a->id, new_at) : err;
}

enum sess_err
lmdb__touch(struct sess_store *st, struct sess_str id, int64_t now_ms, int64_t expires_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct touch_arg a = {id, now_ms, expires_ms};

    if (!lmdb__id_is_usable(id))
        return SESS_ENOTFOUND;
    return lmdb__write_txn(ls, do_touch, &a, now_ms, true);
}

static enum sess_err
do_destroy(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct sess_str *id = arg;
    MDB_val k = lmdb__mval(id->ptr, id->len), v;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_OK;
    if (rc)
        return lmdb__fail(ls, rc, "mdb_get");
    return delete_record(ls, txn, *id, &v);
}

enum sess_err
lmdb__destroy(struct sess_store *st, struct sess_str id, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;

    if (!lmdb__id_is_usable(id))
        return SESS_OK;
    return lmdb__write_txn(ls, do_destroy, &id, now_ms, true);
}

/* ------------------------------------------------------------------------
 * Group commit: an update queued as its patch, and the batch
 * ------------------------------------------------------------------------ */

/* Group commit (combine.c): an update travels as its patch, behind the
 * session id: u8 id length, the id, then i64 now_ms, i64 expires_ms and the
 * patch text, sealed like a record (the id as associated data), since the
 * queue is a file too. */
#define UPD_OFF_ID 1
/* A batch result that sends each update back to be written alone. */
#define UPDATE_ALONE (-1)

/* Builds the queued form of an update in ls->val; false when it does not fit. */
bool
lmdb__batch_encode(struct lmdb_store *ls, struct sess_str id, int64_t now_ms,
                   const struct sess_patch *patch)
{
    char *text = sess__patch_dump(patch);
    size_t len = text ? strlen(text) : 0;
    unsigned char times[16];
    bool ok;

    lmdb__set_i64(times, now_ms);
    lmdb__set_i64(times + 8, patch->expires_ms);
    ls->op.len = 0;
    ls->val.len = 0;
    ok = text && sess__buf_append(&ls->op, times, sizeof times) == SESS_OK &&
         sess__buf_append(&ls->op, text, len) == SESS_OK &&
         sess__buf_append(&ls->val, (unsigned char[]){(unsigned char)id.len}, 1) == SESS_OK &&
         sess__buf_append(&ls->val, id.ptr, id.len) == SESS_OK &&
         (ls->is_sealing
              ? sess__seal(&ls->sealer, id, (struct sess_str){ls->op.ptr, ls->op.len}, &ls->val)
              : sess__buf_append(&ls->val, ls->op.ptr, ls->op.len)) == SESS_OK &&
         ls->val.len <= SESS_COMBINE_PAYLOAD_MAX;
    if (text)
        sodium_memzero(text, len);
    free(text);
    if (ls->op.ptr)
        sodium_memzero(ls->op.ptr, ls->op.len);
    return ok;
}

/* One queued update of a batch, opened. */
struct queued_update {
    struct lmdb_update a;
    struct sess_patch patch;
    enum sess_err err; /* of opening it, or of applying it */
    bool is_done;      /* a dead combiner committed it: `err` is its result */
};

/* Opens a queued update: its id, time and patch. */
static enum sess_err
open_update(struct lmdb_store *ls, const struct sess_combine_op *op, struct queued_update *q)
{
    struct sess_str body;
    const unsigned char *p;
    enum sess_err err;

    q->a.patch = &q->patch;
    if (op->len < UPD_OFF_ID || op->len < UPD_OFF_ID + (size_t)op->payload[0])
        return SESS_EBADINPUT;
    q->a.id = (struct sess_str){(const char *)op->payload + UPD_OFF_ID, op->payload[0]};
    body = (struct sess_str){q->a.id.ptr + q->a.id.len, op->len - UPD_OFF_ID - q->a.id.len};
    ls->op.len = 0;
    err = ls->is_sealing ? sess__unseal(&ls->sealer, q->a.id, body, &ls->op)
                         : sess__buf_append(&ls->op, body.ptr, body.len);
    if (err != SESS_OK)
        return err;
    if (ls->op.len < 16 || !lmdb__id_is_usable(q->a.id))
        return SESS_EBADINPUT;
    p = (const unsigned char *)ls->op.ptr;
    q->a.now_ms = lmdb__get_i64(p);
    err = sess__patch_parse(&q->patch, ls->op.ptr + 16, ls->op.len - 16, lmdb__get_i64(p + 8));
    sodium_memzero(ls->op.ptr, ls->op.len);
    return err;
}

/* What a batch leaves in DB_META, in its own transaction: the token (u64)
 * and result (i32) of each of its updates. A combiner that dies after its
 * commit hands its batch to the next one again (combine.h); this is how the
 * next one knows the batch is applied already, and with what results. */
static const char batch_done_key[] = "batch_done";
#define DONE_ENTRY_BYTES 12

static bool
find_done(const MDB_val *done, uint64_t token, enum sess_err *result)
{
    const unsigned char *p = done->mv_data;
    size_t off;

    for (off = 0; off + DONE_ENTRY_BYTES <= done->mv_size; off += DONE_ENTRY_BYTES) {
        uint64_t t;
        int32_t r;
        memcpy(&t, p + off, sizeof t);
        if (t != token)
            continue;
        memcpy(&r, p + off + 8, sizeof r);
        *result = (enum sess_err)r;
        return true;
    }
    return false;
}

static enum sess_err
record_done(struct lmdb_store *ls, MDB_txn *txn, const struct sess_combine_op *ops,
            const struct queued_update *q, size_t n)
{
    MDB_val k = lmdb__mval(batch_done_key, sizeof batch_done_key - 1), v;
    unsigned char *p;
    size_t i;
    int rc;

    v.mv_size = n * DONE_ENTRY_BYTES;
    rc = mdb_put(txn, ls->dbi[DB_META], &k, &v, MDB_RESERVE);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_put (batch)");
    p = v.mv_data;
    for (i = 0; i < n; i++) {
        int32_t r = (int32_t)q[i].err;
        memcpy(p + i * DONE_ENTRY_BYTES, &ops[i].token, sizeof ops[i].token);
        memcpy(p + i * DONE_ENTRY_BYTES + 8, &r, sizeof r);
    }
    return SESS_OK;
}

/* The order updates of one batch are applied in: the oldest request first,
 * so a request that lost to others and runs again wins the next batch
 * rather than losing to newcomers each time. */
static void
order_by_age(const struct queued_update *q, size_t *order, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        size_t k = i;
        for (j = i; j > 0 && q[order[j - 1]].a.now_ms > q[k].a.now_ms; j--)
            order[j] = order[j - 1];
        order[j] = k;
    }
}

/* The combiner's batch: every update in one transaction, one commit, each
 * checked against the state the updates before it left. A failed LMDB call
 * spoils the transaction: then each process writes its own update alone,
 * where a full map is recovered from. */
void
lmdb__batch_apply(void *ctx, struct sess_combine_op *ops, size_t n)
{
    struct lmdb_store *ls = ctx;
    struct queued_update *q = calloc(n, sizeof *q);
    size_t *order = calloc(n, sizeof *order);
    MDB_val k = lmdb__mval(batch_done_key, sizeof batch_done_key - 1), done = {0};
    bool is_committed = false;
    MDB_txn *txn = NULL;
    size_t i;
    int rc;

    if (!q || !order || lmdb__write_begin(ls, &txn) != SESS_OK)
        goto out;
    if (mdb_get(txn, ls->dbi[DB_META], &k, &done) != MDB_SUCCESS)
        done.mv_size = 0;
    for (i = 0; i < n; i++) {
        q[i].is_done = ops[i].is_retry && find_done(&done, ops[i].token, &q[i].err);
        if (!q[i].is_done)
            q[i].err = open_update(ls, &ops[i], &q[i]);
    }
    order_by_age(q, order, n);
    for (i = 0; i < n && ls->rc == MDB_SUCCESS; i++) {
        struct queued_update *u = &q[order[i]];
        if (!u->is_done && u->err == SESS_OK)
            u->err = lmdb__update_apply(ls, txn, &u->a);
    }
    if (ls->rc == MDB_SUCCESS && record_done(ls, txn, ops, q, n) == SESS_OK) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc == MDB_SUCCESS)
            is_committed = true;
        else
            (void)lmdb__fail(ls, rc, "mdb_txn_commit");
    }
    if (txn)
        mdb_txn_abort(txn);
out:
    for (i = 0; i < n; i++)
        ops[i].result = q && (is_committed || q[i].is_done) ? (int)q[i].err : UPDATE_ALONE;
    for (i = 0; q && i < n; i++)
        sess__patch_free(&q[i].patch);
    free(q);
    free(order);
    /* Other processes' sessions, unsealed: not kept. */
    if (ls->cur.ptr)
        sodium_memzero(ls->cur.ptr, ls->cur.len);
}
