/* The LMDB store's environment once open: the transactions every
 * operation runs in, and what keeps a write going when the map fills up (a
 * purge of dead records, then a larger map, then a clear SESS_EFULL); a map
 * another process grew. Opening it is open.c's; the operations are the
 * neighbours': sessions.c, gc.c, admin.c, accounts.c; the record's layout
 * is records.c's. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "lmdb_store.h"

enum sess_err
lmdb__fail(struct lmdb_store *ls, int rc, const char *what)
{
    ls->rc = rc;
    sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg, "lmdb %s: %s: %s", ls->dir, what,
              mdb_strerror(rc));
    if (rc == MDB_MAP_FULL)
        return SESS_EFULL;
    if (rc == ENOMEM)
        return SESS_ENOMEM;
    return SESS_ESTORE;
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */

/* Another process grew the map past ours: take its size. Only legal with
 * no transaction of ours mapping the old size. */
static enum sess_err
adopt_map_size(struct lmdb_store *ls)
{
    int rc;

    if (ls->open_reads) {
        sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                  "lmdb %s: another process grew the map while a listing was open; retry", ls->dir);
        return SESS_ESTORE;
    }
    rc = mdb_env_set_mapsize(ls->env, 0);
    return rc ? lmdb__fail(ls, rc, "mdb_env_set_mapsize") : SESS_OK;
}

/* The renewed transaction for short reads: no allocation and no reader-slot
 * search once warm (MDB_NOTLS ties the slot to the handle). */
enum sess_err
lmdb__read_begin(struct lmdb_store *ls, MDB_txn **txn)
{
    int rc, attempt;
    enum sess_err err;

    for (attempt = 0;; attempt++) {
        if (ls->rtxn)
            rc = mdb_txn_renew(ls->rtxn);
        else
            rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, &ls->rtxn);
        if (rc == MDB_SUCCESS) {
            *txn = ls->rtxn;
            return SESS_OK;
        }
        if (rc != MDB_MAP_RESIZED || attempt == 3)
            return lmdb__fail(ls, rc, "mdb_txn_begin (read)");
        err = adopt_map_size(ls);
        if (err != SESS_OK)
            return err;
    }
}

void
lmdb__read_end(struct lmdb_store *ls)
{
    mdb_txn_reset(ls->rtxn);
}

/* A read transaction of its own, for walks whose visitor may call back into
 * the store (and so use the renewed one). */
enum sess_err
lmdb__walk_begin(struct lmdb_store *ls, MDB_txn **txn)
{
    int rc, attempt;
    enum sess_err err;

    for (attempt = 0;; attempt++) {
        rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, txn);
        if (rc == MDB_SUCCESS) {
            ls->open_reads++;
            return SESS_OK;
        }
        if (rc != MDB_MAP_RESIZED || attempt == 3)
            return lmdb__fail(ls, rc, "mdb_txn_begin (read)");
        err = adopt_map_size(ls);
        if (err != SESS_OK)
            return err;
    }
}

void
lmdb__walk_end(struct lmdb_store *ls, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    ls->open_reads--;
}

static enum sess_err
grow_map(struct lmdb_store *ls)
{
    MDB_envinfo info;
    int rc;

    if (ls->open_reads) {
        sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                  "lmdb %s: the map is full and cannot grow while a listing is open", ls->dir);
        return SESS_EFULL;
    }
    rc = mdb_env_info(ls->env, &info);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_env_info");
    if (info.me_mapsize > SIZE_MAX / 2) {
        sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg, "lmdb %s: the map cannot grow past %zu",
                  ls->dir, info.me_mapsize);
        return SESS_EFULL;
    }
    rc = mdb_env_set_mapsize(ls->env, info.me_mapsize * 2);
    if (rc == MDB_SUCCESS)
        return SESS_OK;
    /* The old mapping is gone by now (no address space for the new one?):
     * map the old size again, or every later call would fault. */
    mdb_env_set_mapsize(ls->env, info.me_mapsize);
    return lmdb__fail(ls, rc, "mdb_env_set_mapsize (growing)");
}

/* Purges dead records while the map still has room to do it: deleting is a
 * write too (copy-on-write pages), so once the map is full a purge fails
 * like any other write and only growth is left. Above 3/4 full, at most
 * once a second per process, a batch goes; with nothing dead it costs one
 * look at the front of the expiry index. */
void
lmdb__purge_if_pressed(struct lmdb_store *ls, int64_t now_ms)
{
    MDB_envinfo info;
    MDB_stat stat;
    struct lmdb_gc gc = {.now_ms = now_ms, .max = SESS_GC_BATCH};

    if (!ls->is_ready || now_ms < ls->pressure_gc_ms || mdb_env_info(ls->env, &info) ||
        mdb_env_stat(ls->env, &stat))
        return;
    if ((uint64_t)(info.me_last_pgno + 1) * stat.ms_psize < (uint64_t)info.me_mapsize / 4 * 3)
        return;
    ls->pressure_gc_ms = now_ms + 1000;
    (void)lmdb__write_txn(ls, ls->purge, &gc, now_ms, false);
}

/* Begins a write transaction, adopting a map another process has grown. */
enum sess_err
lmdb__write_begin(struct lmdb_store *ls, MDB_txn **txn)
{
    enum sess_err err;
    int rc, resized;

    for (resized = 0;; resized++) {
        ls->rc = MDB_SUCCESS;
        rc = mdb_txn_begin(ls->env, NULL, 0, txn);
        if (rc == MDB_SUCCESS)
            return SESS_OK;
        if (rc != MDB_MAP_RESIZED || resized == 3)
            return lmdb__fail(ls, rc, "mdb_txn_begin");
        err = adopt_map_size(ls);
        if (err != SESS_OK)
            return err;
    }
}

/* Runs `fn` in one write transaction and commits it. MDB_MAP_FULL is met
 * as README ("Configuration") says: purge a batch of dead records and retry, then double
 * the map and retry, then give up with SESS_EFULL. `fn` may therefore run
 * more than once; it must start from scratch each time. */
enum sess_err
lmdb__write_txn(struct lmdb_store *ls, lmdb_write_fn fn, void *arg, int64_t now_ms,
                bool may_recover)
{
    enum sess_err err;
    MDB_txn *txn;
    MDB_envinfo info;
    int rc, stage = 0;
    struct lmdb_gc gc;

    if (may_recover)
        lmdb__purge_if_pressed(ls, now_ms);
    for (;;) {
        err = lmdb__write_begin(ls, &txn);
        if (err != SESS_OK)
            return err;
        err = fn(ls, txn, arg);
        if (err == SESS_OK) {
            rc = mdb_txn_commit(txn);
            if (rc != MDB_SUCCESS)
                err = lmdb__fail(ls, rc, "mdb_txn_commit");
        } else {
            mdb_txn_abort(txn);
        }
        if (err == SESS_OK || (ls->rc != MDB_MAP_FULL && ls->rc != ENOSPC) || !may_recover)
            return err;

        /* A full disk, like a full map, may still leave free pages inside
         * the file for a purge; growing the map cannot help it. */
        if (stage == 0 && ls->is_ready) {
            stage = 1;
            gc = (struct lmdb_gc){.now_ms = now_ms, .max = SESS_GC_BATCH};
            if (lmdb__write_txn(ls, ls->purge, &gc, now_ms, false) == SESS_OK && gc.purged > 0)
                continue;
        }
        if (ls->rc == ENOSPC) {
            sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                      "lmdb %s: the disk is full (expired sessions purged where there was room); "
                      "free disk space",
                      ls->dir);
            return SESS_ESTORE;
        }
        if (stage < 2) {
            stage = 2;
            err = grow_map(ls);
            if (err != SESS_OK)
                return err;
            continue;
        }
        if (mdb_env_info(ls->env, &info) != MDB_SUCCESS)
            info.me_mapsize = 0;
        sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                  "lmdb %s: MDB_MAP_FULL: the map (%zu bytes) is full even after purging expired "
                  "sessions and growing it; free disk space or raise lmdb_map_size",
                  ls->dir, info.me_mapsize);
        return SESS_EFULL;
    }
}

enum sess_err
lmdb__index_put(struct lmdb_store *ls, MDB_txn *txn, enum lmdb_db db, const void *key,
                size_t key_len, const void *data, size_t data_len)
{
    MDB_val k = lmdb__mval(key, key_len), d = lmdb__mval(data, data_len);
    int rc = mdb_put(txn, ls->dbi[db], &k, &d, 0);

    return rc ? lmdb__fail(ls, rc, "mdb_put (index)") : SESS_OK;
}

/* Deleting an entry that is already gone is fine: indexes are repaired by
 * whoever finds them stale. */
enum sess_err
lmdb__index_del(struct lmdb_store *ls, MDB_txn *txn, enum lmdb_db db, const void *key,
                size_t key_len, const void *data, size_t data_len)
{
    MDB_val k = lmdb__mval(key, key_len), d = lmdb__mval(data, data_len);
    int rc = mdb_del(txn, ls->dbi[db], &k, data ? &d : NULL);

    return rc && rc != MDB_NOTFOUND ? lmdb__fail(ls, rc, "mdb_del (index)") : SESS_OK;
}
