/* Opening the LMDB store: its directory (made if missing), the environment
 * and its named databases, reader slots of processes that died, and the
 * table of operations, which are the neighbours' (sessions.c, gc.c,
 * admin.c, accounts.c). The top of the LMDB store: nothing in it is called
 * by them. */
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

/* 8 routes times a few dozen FastCGI processes each, each holding one
 * reader slot for its renewed read transaction, plus sessctl. The lock file
 * costs 64 bytes per slot. */
#define MAX_READERS 1022

static const char *const db_names[DB_COUNT] = {
    "sessions", "expiry", "owners", "users", "throttle", "throttle_expiry", "meta",
};

static const struct sess_store_ops lmdb_ops;

/* ------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------ */

static void
lmdb_close(struct sess_store *st)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;

    if (!ls)
        return;
    if (ls->rtxn)
        mdb_txn_abort(ls->rtxn);
    if (ls->env)
        mdb_env_close(ls->env);
    sess__combiner_close(ls->combiner);
    sess__sealer_wipe(&ls->sealer);
    sess__buf_wipe(&ls->cur);
    sess__buf_wipe(&ls->val);
    sess__buf_wipe(&ls->op);
    sodium_memzero(ls->tag_key, sizeof ls->tag_key);
    sess__buf_free(&ls->ad);
    free(ls);
}

/* mkdir -p, the last component (and any it creates) with mode 0700: the
 * directory holds every session of the site. */
static int
make_dirs(const char *dir)
{
    char path[PATH_MAX];
    size_t i, len = strlen(dir);

    if (len == 0 || len >= sizeof path)
        return ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return errno;
        path[i] = dir[i];
    }
    return 0;
}

static enum sess_err
do_open_dbs(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    int i, rc;

    (void)arg;
    for (i = 0; i < DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE | (i == DB_OWNERS ? MDB_DUPSORT : 0),
                          &ls->dbi[i]);
        if (rc)
            return lmdb__fail(ls, rc, "mdb_dbi_open");
    }
    return SESS_OK;
}

static unsigned
sync_flags(enum sess_sync sync)
{
    switch (sync) {
    case SESS_SYNC_FULL:
        return 0;
    case SESS_SYNC_NONE:
        return MDB_NOSYNC;
    case SESS_SYNC_META:
        break;
    }
    return MDB_NOMETASYNC;
}

enum sess_err
sess__store_lmdb_open(struct sess_store **st, const char *dir, const struct sess_config *cfg,
                      const struct sess_secrets *secrets, char *errmsg, size_t errmsg_len)
{
    struct lmdb_store *ls;
    struct stat sb;
    MDB_envinfo info;
    enum sess_err err = SESS_ESTORE;
    char data_path[PATH_MAX];
    bool is_new;
    int rc, dead;

    *st = NULL;
    ls = calloc(1, sizeof *ls + strlen(dir) + 1);
    if (!ls) {
        sess__fmt(errmsg, errmsg_len, "lmdb %s: out of memory", dir);
        return SESS_ENOMEM;
    }
    memcpy(ls->dir, dir, strlen(dir) + 1);
    ls->base.ops = &lmdb_ops;
    ls->purge = lmdb__gc_batch;
    ls->is_sealing = cfg->encrypt != SESS_ENCRYPT_NO;
    if (ls->is_sealing && secrets->count == 0) {
        sess__fmt(errmsg, errmsg_len, "lmdb %s: encrypt needs at least one secret in secret_file",
                  dir);
        err = SESS_ECONFIG;
        goto out;
    }
    sess__sealer_init(&ls->sealer, secrets);

    rc = make_dirs(dir);
    if (rc == 0 && access(dir, W_OK | X_OK) != 0)
        rc = errno;
    if (rc) {
        sess__fmt(errmsg, errmsg_len,
                  "lmdb %s: %s (as uid %ld: create the directory and give it to the user the "
                  "FastCGI processes and sessctl run as, or point store = lmdb:DIR elsewhere)",
                  dir, strerror(rc), (long)geteuid());
        err = SESS_ECONFIG;
        goto out;
    }
    sess__fmt(data_path, sizeof data_path, "%s/data.mdb", dir);
    is_new = stat(data_path, &sb) != 0;

    rc = mdb_env_create(&ls->env);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(ls->env, MAX_READERS);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(ls->env, 8);
    /* An existing environment keeps the size it has grown to (the map size
     * recorded in the file); only a new one starts at lmdb_map_size. */
    if (rc == 0 && is_new)
        rc = mdb_env_set_mapsize(ls->env, cfg->lmdb_map_size_bytes);
    if (rc) {
        sess__fmt(errmsg, errmsg_len, "lmdb %s: mdb_env_create: %s", dir, mdb_strerror(rc));
        goto out;
    }
    /* MDB_NOTLS: reader slots belong to transaction handles, so the renewed
     * read handle keeps its slot. Never MDB_NOMEMINIT: freed pages would
     * keep old bytes. */
    rc = mdb_env_open(ls->env, dir, MDB_NOTLS | sync_flags(cfg->lmdb_sync), 0600);
    if (rc) {
        sess__fmt(errmsg, errmsg_len, "lmdb %s: mdb_env_open: %s%s", dir, mdb_strerror(rc),
                  rc == EACCES ? " (the files must belong to the user the FastCGI processes and "
                                 "sessctl run as)"
                               : "");
        err = rc == EACCES ? SESS_ECONFIG : SESS_ESTORE;
        goto out;
    }
    if (!is_new && mdb_env_info(ls->env, &info) == 0 &&
        info.me_mapsize < cfg->lmdb_map_size_bytes) {
        rc = mdb_env_set_mapsize(ls->env, cfg->lmdb_map_size_bytes);
        if (rc) {
            sess__fmt(errmsg, errmsg_len, "lmdb %s: mdb_env_set_mapsize: %s", dir,
                      mdb_strerror(rc));
            goto out;
        }
    }
    /* Slots of processes that died inside a read txn would pin pages. */
    mdb_reader_check(ls->env, &dead);
    ls->max_key = (size_t)mdb_env_get_maxkeysize(ls->env);

    err = lmdb__write_txn(ls, do_open_dbs, NULL, 0, true);
    if (err != SESS_OK) {
        sess__fmt(errmsg, errmsg_len, "%s", ls->base.errmsg);
        goto out;
    }
    ls->is_ready = true;
    /* Without fsync there is nothing for a group to share. */
    ls->may_combine = cfg->lmdb_sync != SESS_SYNC_NONE;
    randombytes_buf(ls->tag_key, sizeof ls->tag_key);
    *st = &ls->base;
out:
    if (err != SESS_OK)
        lmdb_close(&ls->base);
    return err;
}

static const struct sess_store_ops lmdb_ops = {
    .kind = "lmdb",
    .gc_batch_max = LMDB_GC_ADMIN_BATCH,
    .get = lmdb__get,
    .create = lmdb__create,
    .update = lmdb__update,
    .touch = lmdb__touch,
    .destroy = lmdb__destroy,
    .destroy_owner = lmdb__destroy_owner,
    .gc = lmdb__gc,
    .gc_if_due = lmdb__gc_if_due,
    .stats = lmdb__stats,
    .each = lmdb__each,
    .user_get = lmdb__user_get,
    .user_put = lmdb__user_put,
    .user_replace = lmdb__user_replace,
    .user_del = lmdb__user_del,
    .user_each = lmdb__user_each,
    .throttle_hit = lmdb__throttle_hit,
    .throttle_peek = lmdb__throttle_peek,
    .throttle_clear = lmdb__throttle_clear,
    .throttle_undo = lmdb__throttle_undo,
    .close = lmdb_close,
};
