/* The LMDB store for sessctl and revoke-by-user: every session of a user
 * ended in one transaction through the owners index, every record (or a
 * user's) visited for listing, and the counts and sizes of the store. The
 * owners index is kept by sessions.c and gc.c as they write and purge. */
#include <stdint.h>
#include <string.h>

#include <lmdb.h>
#include <sodium.h>

#include "lmdb_store.h"

struct owner_arg {
    struct sess_str owner;
    size_t count;
    size_t corrupt; /* index entries that named no possible id */
};

static enum sess_err
do_destroy_owner(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct owner_arg *a = arg;
    MDB_cursor *cur = NULL;
    MDB_val k = lmdb__mval(a->owner.ptr, a->owner.len), d, v;
    struct lmdb_header h;
    struct sess_str id;
    enum sess_err err = SESS_OK;
    int rc;

    a->count = a->corrupt = 0;
    rc = mdb_cursor_open(txn, ls->dbi[DB_OWNERS], &cur);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_cursor_open");
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP)) {
        MDB_val ik;

        id = (struct sess_str){d.mv_data, d.mv_size};
        /* The index is a file anyone with write access can fill: an id no
         * session can have is reported, and the walk goes on (the owner's
         * index entries all go below). */
        if (!lmdb__id_is_usable(id)) {
            a->corrupt++;
            continue;
        }
        ik = lmdb__mval(id.ptr, id.len);
        rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &ik, &v);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            break;
        /* An index entry left by an older owner of this id is not proof. */
        if (!lmdb__header_read(&v, &h) || h.owner_len != a->owner.len ||
            memcmp((const char *)v.mv_data + h.owner_off, a->owner.ptr, a->owner.len) != 0)
            continue;
        err = lmdb__expiry_del(ls, txn, id, lmdb__index_instant(h.expires_ms, h.deadline_ms));
        if (err != SESS_OK)
            goto out;
        rc = mdb_del(txn, ls->dbi[DB_SESSIONS], &ik, NULL);
        if (rc)
            break;
        a->count++;
    }
    if (rc != MDB_NOTFOUND) {
        err = lmdb__fail(ls, rc, "destroying an owner's sessions");
        goto out;
    }
    k = lmdb__mval(a->owner.ptr, a->owner.len);
    err = lmdb__index_del(ls, txn, DB_OWNERS, k.mv_data, k.mv_size, NULL, 0);
out:
    mdb_cursor_close(cur);
    return err;
}

enum sess_err
lmdb__destroy_owner(struct sess_store *st, struct sess_str owner, int64_t now_ms, size_t *count)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct owner_arg a = {owner, 0, 0};
    enum sess_err err;

    *count = 0;
    if (owner.len == 0 || owner.len > ls->max_key)
        return SESS_OK;
    err = lmdb__write_txn(ls, do_destroy_owner, &a, now_ms, true);
    if (err == SESS_OK)
        *count = a.count;
    if (err == SESS_OK && a.corrupt)
        sess__fmt(ls->base.warning, sizeof ls->base.warning,
                  "lmdb %s: %zu entr%s of this user in the owners index named no possible "
                  "session id (corrupt, or written by hand); skipped and removed",
                  ls->dir, a.corrupt, a.corrupt == 1 ? "y" : "ies");
    return err;
}

static int
count_reader(const char *msg, void *ctx)
{
    size_t *n = ctx;

    while (*msg == ' ')
        msg++;
    if (*msg >= '0' && *msg <= '9')
        (*n)++;
    return 0;
}

enum sess_err
lmdb__stats(struct sess_store *st, int64_t now_ms, struct sess_store_stats *out)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_stat ms;
    MDB_envinfo info;
    MDB_val k, v;
    struct lmdb_header h;
    enum sess_err err;
    size_t readers = 0;
    int rc;

    memset(out, 0, sizeof *out);
    err = lmdb__walk_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    if ((rc = mdb_stat(txn, ls->dbi[DB_SESSIONS], &ms)) != 0)
        goto lmdb_fail;
    out->sessions = ms.ms_entries;
    if ((rc = mdb_stat(txn, ls->dbi[DB_USERS], &ms)) != 0)
        goto lmdb_fail;
    out->users = ms.ms_entries;

    if ((rc = mdb_cursor_open(txn, ls->dbi[DB_OWNERS], &cur)) != 0)
        goto lmdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP))
        out->owners++;
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc != MDB_NOTFOUND)
        goto lmdb_fail;

    if ((rc = mdb_cursor_open(txn, ls->dbi[DB_EXPIRY], &cur)) != 0)
        goto lmdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= 8 || lmdb__get_be64(k.mv_data) > now_ms)
            break;
        out->expired++;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc && rc != MDB_NOTFOUND)
        goto lmdb_fail;

    if ((rc = mdb_cursor_open(txn, ls->dbi[DB_SESSIONS], &cur)) != 0)
        goto lmdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!lmdb__header_read(&v, &h))
            continue;
        if (out->oldest_created_ms == 0 || h.created_ms < out->oldest_created_ms)
            out->oldest_created_ms = h.created_ms;
        if (h.created_ms > out->newest_created_ms)
            out->newest_created_ms = h.created_ms;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc != MDB_NOTFOUND)
        goto lmdb_fail;

    if ((rc = mdb_env_info(ls->env, &info)) != 0 || (rc = mdb_env_stat(ls->env, &ms)) != 0)
        goto lmdb_fail;
    out->map_size_bytes = info.me_mapsize;
    out->map_used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
    out->readers_max = info.me_maxreaders;
    mdb_reader_list(ls->env, count_reader, &readers);
    out->readers_used = readers;
    lmdb__walk_end(ls, txn);
    return SESS_OK;

lmdb_fail:
    mdb_cursor_close(cur);
    lmdb__walk_end(ls, txn);
    return lmdb__fail(ls, rc, "stats");
}

enum sess_err
lmdb__each(struct sess_store *st, struct sess_str owner, int64_t now_ms, sess_record_visit_fn visit,
           void *arg)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, d, v;
    MDB_cursor_op first = MDB_FIRST, next = MDB_NEXT;
    struct sess_buf buf = {0};
    struct sess_record rec;
    struct sess_str id;
    enum sess_err err;
    int rc;

    (void)now_ms; /* every record, live or dead: sessctl shows which */
    err = lmdb__walk_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    if (owner.len) {
        if (owner.len > ls->max_key)
            goto out;
        k = lmdb__mval(owner.ptr, owner.len);
        first = MDB_SET_KEY;
        next = MDB_NEXT_DUP;
        rc = mdb_cursor_open(txn, ls->dbi[DB_OWNERS], &cur);
    } else {
        rc = mdb_cursor_open(txn, ls->dbi[DB_SESSIONS], &cur);
    }
    if (rc) {
        err = lmdb__fail(ls, rc, "mdb_cursor_open");
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &k, &d, first); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &d, next)) {
        if (owner.len) {
            MDB_val ik = d;

            id = (struct sess_str){d.mv_data, d.mv_size};
            rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &ik, &v);
            if (rc == MDB_NOTFOUND)
                continue;
            if (rc)
                break;
        } else {
            id = (struct sess_str){k.mv_data, k.mv_size};
            v = d;
        }
        err = lmdb__record_decode(ls, id, &v, false, 0, &rec, &buf, true);
        if (err == SESS_ENOTFOUND)
            continue;
        /* Before the owner is compared: on failure `rec` was not filled. */
        if (err != SESS_OK)
            goto out;
        if (owner.len && !lmdb__str_eq(rec.owner, owner))
            continue;
        if (!visit(arg, id, &rec))
            break;
    }
    err = SESS_OK;
    if (rc && rc != MDB_NOTFOUND)
        err = lmdb__fail(ls, rc, "mdb_cursor_get");
out:
    mdb_cursor_close(cur);
    lmdb__walk_end(ls, txn);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess__buf_free(&buf);
    return err;
}
