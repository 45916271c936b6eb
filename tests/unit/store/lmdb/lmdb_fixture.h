/* What the LMDB store's tests share (tests/unit/store/lmdb/test_lmdb_*.c,
 * one per file of lib/store/lmdb/): a store in a scratch directory with an
 * injected clock (T0), records and patches built in one call, and the
 * database file read and written behind the store's back. Include after
 * cmocka.h. */
#ifndef TESTS_LMDB_FIXTURE_H
#define TESTS_LMDB_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lmdb.h>

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

static inline void
open_store(struct fx *f)
{
    char errmsg[SESS_ERRMSG_MAX];

    if (sess__store_lmdb_open(&f->st, f->store_dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg) !=
        SESS_OK)
        fail_msg("open: %s", errmsg);
}

static inline void
close_store(struct fx *f)
{
    sess__store_close(f->st);
    f->st = NULL;
}

static inline void
reopen(struct fx *f)
{
    close_store(f);
    open_store(f);
}

static inline int
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

static inline int
setup(void **ctx)
{
    return setup_with(ctx, 16u << 20, SESS_ENCRYPT_AUTO);
}

static inline int
setup_tiny_map(void **ctx)
{
    return setup_with(ctx, 64u << 10, SESS_ENCRYPT_AUTO);
}

static inline int
setup_plain(void **ctx)
{
    return setup_with(ctx, 16u << 20, SESS_ENCRYPT_NO);
}

static inline int
teardown(void **ctx)
{
    struct fx *f = *ctx;

    close_store(f);
    sess_secrets_free(&f->secrets);
    sess__buf_free(&f->buf);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

static inline struct sess_record
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

static inline void
create(struct fx *f, const char *id, int64_t expires_ms, const char *owner, const char *data)
{
    struct sess_record rec = record(expires_ms, 0, owner, data);
    assert_int_equal(f->st->ops->create(f->st, sess_str_c(id), T0, &rec), SESS_OK);
}

static inline enum sess_err
get(struct fx *f, const char *id, int64_t now_ms)
{
    return f->st->ops->get(f->st, sess_str_c(id), now_ms, &f->rec, &f->buf);
}

static inline void
assert_str_view(struct sess_str view, const char *expected)
{
    assert_int_equal(view.len, strlen(expected));
    assert_memory_equal(view.ptr, expected, view.len);
}

/* An update as session.c makes one: the keys of `set` (JSON) laid over
 * the stored data, the idle expiry moved to `expires_ms`, and, when `read`
 * is not NULL, the keys the request read with the values it saw, checked
 * against the record first. Freed with sess__patch_free. */
static inline struct sess_patch
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

static inline enum sess_err
update(struct fx *f, const char *id, int64_t now_ms, struct sess_patch *p)
{
    return f->st->ops->update(f->st, sess_str_c(id), now_ms, p);
}

/* sess__patch_merge leaves its result in the patch: whether the store ever
 * laid the patch over a record. */
static inline bool
was_merged(const struct sess_patch *p)
{
    return p->merged != NULL;
}

static inline void
make_id(char out[SESS_ID_LEN + 1], unsigned n)
{
    snprintf(out, SESS_ID_LEN + 1, "id%041u", n);
}

/* Writes `value` under `key` in the named database `db` with plain LMDB.
 * The store must be closed: one environment per process. */
static inline void
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

/* Writes `value` under `id` in the sessions database with plain LMDB, as
 * someone with the file would. The store must be closed: one environment
 * per process. */
static inline void
raw_put(const char *dir, const char *id, const void *value, size_t len)
{
    raw_put_db(dir, "sessions", id, strlen(id), value, len);
}

static inline void
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
    assert_int_equal(sess__buf_append(out, v.mv_data, v.mv_size), SESS_OK);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

#endif
