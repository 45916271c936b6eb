/* The LMDB store's group commit (combine.c): an update queued as its patch,
 * sealed, for whichever process commits next, and the batch that process
 * applies, every update of it in one transaction and one fsync, each
 * checked against what the ones before it left. A batch handed over again
 * after its combiner died is recognised, and not applied twice. The update
 * itself is sessions.c's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>
#include <sodium.h>

#include "lmdb_store.h"

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
    char *text = sess_patch_dump(patch);
    size_t len = text ? strlen(text) : 0;
    unsigned char times[16];
    bool ok;

    lmdb__set_i64(times, now_ms);
    lmdb__set_i64(times + 8, patch->expires_ms);
    ls->op.len = 0;
    ls->val.len = 0;
    ok = text && sess_buf_append(&ls->op, times, sizeof times) == SESS_OK &&
         sess_buf_append(&ls->op, text, len) == SESS_OK &&
         sess_buf_append(&ls->val, (unsigned char[]){(unsigned char)id.len}, 1) == SESS_OK &&
         sess_buf_append(&ls->val, id.ptr, id.len) == SESS_OK &&
         (ls->is_sealing
              ? sess_seal(&ls->sealer, id, (struct sess_str){ls->op.ptr, ls->op.len}, &ls->val)
              : sess_buf_append(&ls->val, ls->op.ptr, ls->op.len)) == SESS_OK &&
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
    err = ls->is_sealing ? sess_unseal(&ls->sealer, q->a.id, body, &ls->op)
                         : sess_buf_append(&ls->op, body.ptr, body.len);
    if (err != SESS_OK)
        return err;
    if (ls->op.len < 16 || !lmdb__id_is_usable(q->a.id))
        return SESS_EBADINPUT;
    p = (const unsigned char *)ls->op.ptr;
    q->a.now_ms = lmdb__get_i64(p);
    err = sess_patch_parse(&q->patch, ls->op.ptr + 16, ls->op.len - 16, lmdb__get_i64(p + 8));
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
        sess_patch_free(&q[i].patch);
    free(q);
    free(order);
    /* Other processes' sessions, unsealed: not kept. */
    if (ls->cur.ptr)
        sodium_memzero(ls->cur.ptr, ls->cur.len);
}
