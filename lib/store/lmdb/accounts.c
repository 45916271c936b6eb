/* The LMDB store's accounts and login throttling: one named database of
 * accounts (username -> JSON), and failure counters in fixed windows kept
 * under a hash of any key, with an index by window end so that gc (gc.c)
 * drops the stale ones. Sessions are sessions.c's. */
#include <stdint.h>
#include <string.h>

#include <lmdb.h>
#include <sodium.h>

#include "lmdb_store.h"

/* ------------------------------------------------------------------------
 * Accounts
 * ------------------------------------------------------------------------ */

static bool
name_is_usable(struct lmdb_store *ls, struct sess_str name)
{
    return name.len > 0 && name.len <= ls->max_key;
}

enum sess_err
lmdb__user_get(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_buf *value)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn;
    MDB_val k = lmdb__mval(name.ptr, name.len), v;
    enum sess_err err;
    int rc;

    (void)now_ms; /* accounts do not expire */
    if (!name_is_usable(ls, name))
        return SESS_ENOTFOUND;
    err = lmdb__read_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    rc = mdb_get(txn, ls->dbi[DB_USERS], &k, &v);
    if (rc == MDB_NOTFOUND) {
        err = SESS_ENOTFOUND;
    } else if (rc) {
        err = lmdb__fail(ls, rc, "mdb_get (users)");
    } else {
        value->len = 0;
        err = sess__buf_append(value, v.mv_data, v.mv_size);
        if (err == SESS_OK)
            err = sess__buf_append(value, "", 1);
        if (err == SESS_OK)
            value->len--;
    }
    lmdb__read_end(ls);
    return err;
}

struct user_arg {
    struct sess_str name;
    struct sess_str value;
    bool must_be_new;
};

static enum sess_err
do_user_put(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct user_arg *a = arg;
    MDB_val k = lmdb__mval(a->name.ptr, a->name.len), v = lmdb__mval(a->value.ptr, a->value.len);
    int rc = mdb_put(txn, ls->dbi[DB_USERS], &k, &v, a->must_be_new ? MDB_NOOVERWRITE : 0);

    if (rc == MDB_KEYEXIST)
        return SESS_EEXISTS;
    return rc ? lmdb__fail(ls, rc, "mdb_put (users)") : SESS_OK;
}

enum sess_err
lmdb__user_put(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str value,
               bool must_be_new)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct user_arg a = {name, value, must_be_new};

    if (!name_is_usable(ls, name))
        return SESS_EBADINPUT;
    return lmdb__write_txn(ls, do_user_put, &a, now_ms, true);
}

struct user_replace_arg {
    struct sess_str name, old, value;
};

static enum sess_err
do_user_replace(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct user_replace_arg *a = arg;
    MDB_val k = lmdb__mval(a->name.ptr, a->name.len), v;
    int rc = mdb_get(txn, ls->dbi[DB_USERS], &k, &v);

    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    if (rc)
        return lmdb__fail(ls, rc, "mdb_get (users)");
    if (v.mv_size != a->old.len || memcmp(v.mv_data, a->old.ptr, a->old.len) != 0)
        return SESS_ECONFLICT;
    v = lmdb__mval(a->value.ptr, a->value.len);
    rc = mdb_put(txn, ls->dbi[DB_USERS], &k, &v, 0);
    return rc ? lmdb__fail(ls, rc, "mdb_put (users)") : SESS_OK;
}

enum sess_err
lmdb__user_replace(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str old,
                   struct sess_str value)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct user_replace_arg a = {name, old, value};

    if (!name_is_usable(ls, name))
        return SESS_ENOTFOUND;
    return lmdb__write_txn(ls, do_user_replace, &a, now_ms, true);
}

static enum sess_err
do_user_del(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct user_arg *a = arg;
    MDB_val k = lmdb__mval(a->name.ptr, a->name.len);
    int rc = mdb_del(txn, ls->dbi[DB_USERS], &k, NULL);

    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    return rc ? lmdb__fail(ls, rc, "mdb_del (users)") : SESS_OK;
}

enum sess_err
lmdb__user_del(struct sess_store *st, struct sess_str name, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct user_arg a = {name, {NULL, 0}, false};

    if (!name_is_usable(ls, name))
        return SESS_ENOTFOUND;
    return lmdb__write_txn(ls, do_user_del, &a, now_ms, true);
}

enum sess_err
lmdb__user_each(struct sess_store *st, int64_t now_ms, sess_user_visit_fn visit, void *arg)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    enum sess_err err;
    int rc;

    (void)now_ms;
    err = lmdb__walk_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    rc = mdb_cursor_open(txn, ls->dbi[DB_USERS], &cur);
    if (rc == MDB_SUCCESS) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (!visit(arg, (struct sess_str){k.mv_data, k.mv_size},
                       (struct sess_str){v.mv_data, v.mv_size}))
                break;
        }
        mdb_cursor_close(cur);
    }
    if (rc && rc != MDB_NOTFOUND)
        err = lmdb__fail(ls, rc, "listing users");
    lmdb__walk_end(ls, txn);
    return err;
}

/* ------------------------------------------------------------------------
 * Login throttling
 * ------------------------------------------------------------------------ */

/* Throttle value: {u32 count, u32 reserved, i64 first_ms, i64 until_ms}.
 * until_ms is the end of the window the entry was filed under in the
 * throttle_expiry index, so the index entry can be found again. */
#define THR_OFF_COUNT  0
#define THR_OFF_FIRST  8
#define THR_OFF_UNTIL  16
#define THR_BYTES      24
#define THR_HASH_BYTES 32

/* Any bytes become a fixed 32-byte key: an attacker's 12 KB username must
 * not meet LMDB's 511-byte key limit. */
static void
throttle_key(unsigned char out[THR_HASH_BYTES], struct sess_str key)
{
    crypto_generichash(out, THR_HASH_BYTES, (const unsigned char *)key.ptr, key.len, NULL, 0);
}

struct throttle_state {
    uint32_t count;
    int64_t first_ms, until_ms;
};

static bool
throttle_read(const MDB_val *v, struct throttle_state *t)
{
    if (v->mv_size != THR_BYTES)
        return false;
    memcpy(&t->count, (const unsigned char *)v->mv_data + THR_OFF_COUNT, sizeof t->count);
    t->first_ms = lmdb__get_i64((const unsigned char *)v->mv_data + THR_OFF_FIRST);
    t->until_ms = lmdb__get_i64((const unsigned char *)v->mv_data + THR_OFF_UNTIL);
    return true;
}

static size_t
throttle_index_key(unsigned char out[8 + THR_HASH_BYTES], int64_t until_ms,
                   const unsigned char hash[THR_HASH_BYTES])
{
    lmdb__put_be64(out, until_ms);
    memcpy(out + 8, hash, THR_HASH_BYTES);
    return 8 + THR_HASH_BYTES;
}

struct throttle_arg {
    unsigned char hash[THR_HASH_BYTES];
    int64_t now_ms;
    int64_t window_ms;
    struct throttle_state state;
};

static enum sess_err
do_throttle_hit(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct throttle_arg *a = arg;
    MDB_val k = lmdb__mval(a->hash, THR_HASH_BYTES), v;
    struct throttle_state old = {0};
    unsigned char value[THR_BYTES] = {0}, ikey[8 + THR_HASH_BYTES];
    bool has_old;
    enum sess_err err;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return lmdb__fail(ls, rc, "mdb_get (throttle)");
    has_old = rc == MDB_SUCCESS && throttle_read(&v, &old);
    if (has_old && a->now_ms < old.first_ms + a->window_ms) {
        a->state = old;
        if (a->state.count < UINT32_MAX)
            a->state.count++;
    } else {
        a->state = (struct throttle_state){1, a->now_ms, a->now_ms + a->window_ms};
    }
    memcpy(value + THR_OFF_COUNT, &a->state.count, sizeof a->state.count);
    lmdb__set_i64(value + THR_OFF_FIRST, a->state.first_ms);
    lmdb__set_i64(value + THR_OFF_UNTIL, a->state.until_ms);
    v = lmdb__mval(value, sizeof value);
    rc = mdb_put(txn, ls->dbi[DB_THROTTLE], &k, &v, 0);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_put (throttle)");
    if (has_old && old.until_ms == a->state.until_ms)
        return SESS_OK;
    if (has_old) {
        err = lmdb__index_del(ls, txn, DB_THROTTLE_EXPIRY, ikey,
                              throttle_index_key(ikey, old.until_ms, a->hash), NULL, 0);
        if (err != SESS_OK)
            return err;
    }
    return lmdb__index_put(ls, txn, DB_THROTTLE_EXPIRY, ikey,
                           throttle_index_key(ikey, a->state.until_ms, a->hash), "", 0);
}

enum sess_err
lmdb__throttle_hit(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
                   uint32_t *count, int64_t *first_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct throttle_arg a = {.now_ms = now_ms, .window_ms = window_ms};
    enum sess_err err;

    throttle_key(a.hash, key);
    err = lmdb__write_txn(ls, do_throttle_hit, &a, now_ms, true);
    *count = err == SESS_OK ? a.state.count : 0;
    *first_ms = err == SESS_OK ? a.state.first_ms : 0;
    return err;
}

enum sess_err
lmdb__throttle_peek(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
                    uint32_t *count, int64_t *first_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    unsigned char hash[THR_HASH_BYTES];
    struct throttle_state t;
    MDB_txn *txn;
    MDB_val k, v;
    enum sess_err err;
    int rc;

    *count = 0;
    *first_ms = 0;
    throttle_key(hash, key);
    k = lmdb__mval(hash, sizeof hash);
    err = lmdb__read_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc == MDB_SUCCESS && throttle_read(&v, &t) && now_ms < t.first_ms + window_ms) {
        *count = t.count;
        *first_ms = t.first_ms;
    } else if (rc && rc != MDB_NOTFOUND) {
        err = lmdb__fail(ls, rc, "mdb_get (throttle)");
    }
    lmdb__read_end(ls);
    return err;
}

static enum sess_err
do_throttle_clear(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct throttle_arg *a = arg;
    MDB_val k = lmdb__mval(a->hash, THR_HASH_BYTES), v;
    struct throttle_state t;
    unsigned char ikey[8 + THR_HASH_BYTES];
    enum sess_err err = SESS_OK;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_OK;
    if (rc)
        return lmdb__fail(ls, rc, "mdb_get (throttle)");
    if (throttle_read(&v, &t))
        err = lmdb__index_del(ls, txn, DB_THROTTLE_EXPIRY, ikey,
                              throttle_index_key(ikey, t.until_ms, a->hash), NULL, 0);
    if (err != SESS_OK)
        return err;
    rc = mdb_del(txn, ls->dbi[DB_THROTTLE], &k, NULL);
    return rc ? lmdb__fail(ls, rc, "mdb_del (throttle)") : SESS_OK;
}

enum sess_err
lmdb__throttle_clear(struct sess_store *st, struct sess_str key, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct throttle_arg a = {0};

    throttle_key(a.hash, key);
    return lmdb__write_txn(ls, do_throttle_clear, &a, now_ms, true);
}

static enum sess_err
do_throttle_undo(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct throttle_arg *a = arg;
    MDB_val k = lmdb__mval(a->hash, THR_HASH_BYTES), v;
    struct throttle_state t;
    unsigned char value[THR_BYTES] = {0};
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_OK;
    if (rc)
        return lmdb__fail(ls, rc, "mdb_get (throttle)");
    if (!throttle_read(&v, &t) || t.count == 0 || a->now_ms >= t.first_ms + a->window_ms)
        return SESS_OK;
    /* The window and so the expiry index stay as they are. */
    t.count--;
    memcpy(value + THR_OFF_COUNT, &t.count, sizeof t.count);
    lmdb__set_i64(value + THR_OFF_FIRST, t.first_ms);
    lmdb__set_i64(value + THR_OFF_UNTIL, t.until_ms);
    v = lmdb__mval(value, sizeof value);
    rc = mdb_put(txn, ls->dbi[DB_THROTTLE], &k, &v, 0);
    return rc ? lmdb__fail(ls, rc, "mdb_put (throttle)") : SESS_OK;
}

enum sess_err
lmdb__throttle_undo(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct throttle_arg a = {.now_ms = now_ms, .window_ms = window_ms};

    throttle_key(a.hash, key);
    return lmdb__write_txn(ls, do_throttle_undo, &a, now_ms, true);
}

/* Deletes up to a->max throttle counters whose window has passed, from the
 * front of their expiry index: gc.c's batch, after the sessions. */
enum sess_err
lmdb__throttle_gc(struct lmdb_store *ls, MDB_txn *txn, struct lmdb_gc *a)
{
    MDB_cursor *cur = NULL;
    MDB_val k, d, v, ik;
    enum sess_err err = SESS_OK;
    size_t n;
    int rc;

    rc = mdb_cursor_open(txn, ls->dbi[DB_THROTTLE_EXPIRY], &cur);
    if (rc)
        return lmdb__fail(ls, rc, "mdb_cursor_open");
    for (n = 0;; n++) {
        rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        if (rc)
            break;
        if (k.mv_size == 8 + THR_HASH_BYTES && lmdb__get_be64(k.mv_data) > a->now_ms)
            break;
        if (n == a->max) {
            a->more = true;
            break;
        }
        if (k.mv_size == 8 + THR_HASH_BYTES) {
            ik = lmdb__mval((const char *)k.mv_data + 8, THR_HASH_BYTES);
            rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &ik, &v);
            if (rc == MDB_SUCCESS && v.mv_size == THR_BYTES &&
                lmdb__get_i64((const unsigned char *)v.mv_data + THR_OFF_UNTIL) ==
                    lmdb__get_be64(k.mv_data)) {
                rc = mdb_del(txn, ls->dbi[DB_THROTTLE], &ik, NULL);
                if (rc) {
                    err = lmdb__fail(ls, rc, "mdb_del (throttle)");
                    goto out;
                }
            } else if (rc && rc != MDB_NOTFOUND) {
                err = lmdb__fail(ls, rc, "mdb_get (throttle)");
                goto out;
            }
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc) {
            err = lmdb__fail(ls, rc, "mdb_cursor_del");
            goto out;
        }
    }
    if (rc && rc != MDB_NOTFOUND)
        err = lmdb__fail(ls, rc, "mdb_cursor_get");
out:
    mdb_cursor_close(cur);
    return err;
}
