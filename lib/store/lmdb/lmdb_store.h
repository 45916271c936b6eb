/* What the LMDB store's files share, and nothing outside lib/store/lmdb/
 * includes: the store's state, its named databases, the header of a stored
 * record, and the calls one file makes into another (prefix lmdb__). Its
 * one entry from outside is sess__store_lmdb_open (store.h).
 *
 * The store: one environment in a directory, shared by every process of
 * every route. A session record carries its expiry in a small header and
 * its data sealed at rest (seal.c); indexes by expiry and by owner let gc
 * and revoke-by-user touch only what they delete. One store per process,
 * used from one thread, opened after any fork.
 *
 *   open.c      opening: the environment, its databases, the operations
 *   env.c       transactions, a full map, a map another process grew
 *   records.c   a record's stored layout and its seal
 *   sessions.c  one session's get, create, update, touch, destroy, and
 *               updates of several processes in one commit
 *   gc.c        dead records and stale counters purged
 *   admin.c     a user's sessions ended, listing, statistics
 *   accounts.c  accounts and login throttling
 *
 * Named lmdb_store.h, not lmdb.h, which would hide the system's <lmdb.h>. */
#ifndef SESS_LMDB_STORE_H
#define SESS_LMDB_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <lmdb.h>
#include <sodium.h>

#include "base.h"
#include "combine.h"
#include "store.h"

/* sessctl's gc batch (gc_batch_max), one transaction each. A commit waits
 * for the pages it rewrote (lmdb_sync = meta), so 100k dead among 1M
 * records took 4 s in batches of SESS_GC_BATCH and 0.75 s in these, each
 * holding the write lock for up to ~0.4 s. */
#define LMDB_GC_ADMIN_BATCH 32768

enum lmdb_db {
    DB_SESSIONS,        /* id -> header || owner || payload (records.c) */
    DB_EXPIRY,          /* be64(effective expiry) || id -> "" */
    DB_OWNERS,          /* owner -> id (dupsort) */
    DB_USERS,           /* username -> account JSON */
    DB_THROTTLE,        /* BLAKE2b(key) -> throttle value (accounts.c) */
    DB_THROTTLE_EXPIRY, /* be64(window end) || BLAKE2b(key) -> "" */
    DB_META,            /* "gc_next" -> i64; "batch_done" (sessions.c) */
    DB_COUNT,
};

struct lmdb_store;

/* What a write does inside its transaction; it may run more than once (see
 * lmdb__write_txn), from scratch each time. */
typedef enum sess_err (*lmdb_write_fn)(struct lmdb_store *ls, MDB_txn *txn, void *arg);

struct lmdb_store {
    struct sess_store base; /* first: the generic code sees only this */
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    bool is_ready;       /* the named databases are open */
    MDB_txn *rtxn;       /* read transaction, reset between calls, renewed */
    unsigned open_reads; /* other read txns open now (each, stats): pin the map */
    int rc;              /* LMDB code of the last failure in a write txn */
    size_t max_key;      /* mdb_env_get_maxkeysize */
    bool is_sealing;
    struct sess_sealer sealer;
    struct sess_buf ad;     /* a record's additional data (records.c) */
    int64_t gc_check_ms;    /* before this, gc_if_due does not even look */
    int64_t pressure_gc_ms; /* before this, a nearly full map is not purged again */
    /* A write transaction's purge of dead records (gc.c's batch): env.c
     * calls it when the map fills, gc.c's batches run in env.c's
     * transactions; through this, neither file calls the other. */
    lmdb_write_fn purge;
    struct sess_buf cur;    /* update: the current record, unsealed */
    struct sess_buf val;    /* the value being written */
    struct sess_buf op;     /* a queued update, unsealed */
    /* Keys the read tags of records (sess_record.read_tag), random per
     * process: an update that finds the bytes its request read need not
     * open and parse them again. */
    unsigned char tag_key[crypto_shorthash_KEYBYTES];
    bool may_combine;               /* group commit: lmdb_sync is not none */
    struct sess_combiner *combiner; /* opened by the first update; NULL: alone */
    char dir[];
};

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static inline MDB_val
lmdb__mval(const void *ptr, size_t len)
{
    return (MDB_val){.mv_size = len, .mv_data = (void *)ptr};
}

/* Big-endian, for keys that sort by time; negative instants as 0. */
static inline void
lmdb__put_be64(unsigned char *p, int64_t v)
{
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

static inline int64_t
lmdb__get_be64(const unsigned char *p)
{
    uint64_t u = 0;
    int i;

    for (i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return u > INT64_MAX ? INT64_MAX : (int64_t)u;
}

/* Native byte order, at any alignment: values inside a stored record. */
static inline int64_t
lmdb__get_i64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void
lmdb__set_i64(unsigned char *p, int64_t v)
{
    memcpy(p, &v, sizeof v);
}

static inline bool
lmdb__id_is_usable(struct sess_str id)
{
    return id.len > 0 && id.len <= SESS_ID_MAX_LEN;
}

static inline bool
lmdb__str_eq(struct sess_str a, struct sess_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ------------------------------------------------------------------------
 * env.c: failures, transactions, indexes
 * ------------------------------------------------------------------------ */

/* Notes LMDB's `rc` in ls->rc and the message in ls->base.errmsg; returns
 * what it means to the caller: SESS_EFULL, SESS_ENOMEM or SESS_ESTORE. */
enum sess_err lmdb__fail(struct lmdb_store *ls, int rc, const char *what);

/* The renewed read transaction for short reads; lmdb__read_end resets it.
 * Not for a walk whose visitor may call the store: lmdb__walk_begin gives
 * such a walk a transaction of its own, ended by lmdb__walk_end. */
enum sess_err lmdb__read_begin(struct lmdb_store *ls, MDB_txn **txn);
void lmdb__read_end(struct lmdb_store *ls);
enum sess_err lmdb__walk_begin(struct lmdb_store *ls, MDB_txn **txn);
void lmdb__walk_end(struct lmdb_store *ls, MDB_txn *txn);


/* A write transaction, the map grown by another process adopted. */
enum sess_err lmdb__write_begin(struct lmdb_store *ls, MDB_txn **txn);
/* Runs `fn` in one write transaction and commits it; with `may_recover`,
 * a full map is met by a purge (lmdb__gc_batch at `now_ms`), then growth,
 * before SESS_EFULL. */
enum sess_err lmdb__write_txn(struct lmdb_store *ls, lmdb_write_fn fn, void *arg, int64_t now_ms,
                              bool may_recover);
/* A purge batch before a write when the map is over 3/4 full, at most once
 * a second per process. */
void lmdb__purge_if_pressed(struct lmdb_store *ls, int64_t now_ms);

/* Puts or deletes one entry of an index database; deleting one already
 * gone is SESS_OK (`data` NULL: every value of `key`). */
enum sess_err lmdb__index_put(struct lmdb_store *ls, MDB_txn *txn, enum lmdb_db db, const void *key,
                              size_t key_len, const void *data, size_t data_len);
enum sess_err lmdb__index_del(struct lmdb_store *ls, MDB_txn *txn, enum lmdb_db db, const void *key,
                              size_t key_len, const void *data, size_t data_len);

/* ------------------------------------------------------------------------
 * records.c: the stored record
 * ------------------------------------------------------------------------ */

/* A value's header as lmdb__header_read finds it, either format. */
struct lmdb_header {
    uint8_t version;
    uint8_t flags;
    size_t owner_off, owner_len;
    size_t ext_off, ext_len; /* format 2 */
    size_t payload_off;
    int64_t expires_ms, deadline_ms, created_ms;
    int64_t last_seen_ms; /* format 2 */
    uint64_t generation;  /* format 2 */
};

/* Parses the header of either format; false for an unknown or
 * inconsistent layout (a corrupt record is never read past its end). */
bool lmdb__header_read(const MDB_val *v, struct lmdb_header *h);
/* How many leading bytes of a stored value tell it from every other value
 * stored under its id: a format 2 header alone (a new record draws a nonce
 * of its own, every write moves the generation, a touch the expiry), and
 * all of a format 1 value. */
size_t lmdb__record_name_len(const MDB_val *v);
/* Builds the stored value of `rec` under `id` in ls->val, in format 2,
 * sealed when the store seals. A record that has a nonce keeps it and
 * gets the next generation. SESS_EBADINPUT for an unusable id or an owner
 * over the key limit. */
enum sess_err lmdb__record_encode(struct lmdb_store *ls, struct sess_str id,
                                  const struct sess_record *rec);
/* Reads a stored value into `out`, its views in `buf`. SESS_ENOTFOUND for
 * what does not parse or open (ls->base.errmsg says why), and with
 * `check_live` for a record dead at `now_ms`; without `with_data`, the
 * payload is neither opened nor copied (see records.c). */
enum sess_err lmdb__record_decode(struct lmdb_store *ls, struct sess_str id, const MDB_val *v,
                                  bool check_live, int64_t now_ms, struct sess_record *out,
                                  struct sess_buf *buf, bool with_data);
/* Moves the idle expiry (and in format 2 the last sighting) of a stored
 * value in place, given its parsed header. */
void lmdb__record_touch(unsigned char *value, const struct lmdb_header *h, int64_t expires_ms,
                        int64_t seen_ms);

/* ------------------------------------------------------------------------
 * sessions.c
 * ------------------------------------------------------------------------ */

/* The instant a record is filed under in the expiry index. */
int64_t lmdb__index_instant(int64_t expires_ms, int64_t deadline_ms);
/* Deletes `id`'s entry filed under `at_ms` from the expiry index. */
enum sess_err lmdb__expiry_del(struct lmdb_store *ls, MDB_txn *txn, struct sess_str id,
                               int64_t at_ms);

/* One update: `patch` laid over the live record `id` at `now_ms`. */
struct lmdb_update {
    struct sess_str id;
    int64_t now_ms;
    struct sess_patch *patch;
};

/* An lmdb_write_fn: applies one update (a struct lmdb_update) in `txn`. */
enum sess_err lmdb__update_apply(struct lmdb_store *ls, MDB_txn *txn, void *arg);

/* Builds the queued form of an update in ls->val; false when it does not
 * fit the queue (it is then written alone). */
bool lmdb__batch_encode(struct lmdb_store *ls, struct sess_str id, int64_t now_ms,
                        const struct sess_patch *patch);
/* The combiner's apply function (combine.h): a batch of queued updates of
 * any process, in one transaction. */
void lmdb__batch_apply(void *ctx, struct sess_combine_op *ops, size_t n);

/* ------------------------------------------------------------------------
 * gc.c and accounts.c
 * ------------------------------------------------------------------------ */

struct lmdb_gc {
    int64_t now_ms;
    size_t max;    /* at most this many records, and as many counters */
    size_t purged; /* records purged */
    bool more;     /* more may be due */
};

/* An lmdb_write_fn: one gc batch (a struct lmdb_gc). */
enum sess_err lmdb__gc_batch(struct lmdb_store *ls, MDB_txn *txn, void *arg);
/* gc's part in accounts.c: up to a->max stale throttle counters. */
enum sess_err lmdb__throttle_gc(struct lmdb_store *ls, MDB_txn *txn, struct lmdb_gc *a);

/* ------------------------------------------------------------------------
 * The operations (struct sess_store_ops, store.h), each in its file
 * ------------------------------------------------------------------------ */

enum sess_err lmdb__get(struct sess_store *st, struct sess_str id, int64_t now_ms,
                        struct sess_record *out, struct sess_buf *buf);
enum sess_err lmdb__create(struct sess_store *st, struct sess_str id, int64_t now_ms,
                           const struct sess_record *rec);
enum sess_err lmdb__update(struct sess_store *st, struct sess_str id, int64_t now_ms,
                           struct sess_patch *patch);
enum sess_err lmdb__touch(struct sess_store *st, struct sess_str id, int64_t now_ms,
                          int64_t expires_ms);
enum sess_err lmdb__destroy(struct sess_store *st, struct sess_str id, int64_t now_ms);

enum sess_err lmdb__gc(struct sess_store *st, int64_t now_ms, size_t max, size_t *purged,
                       bool *more);
void lmdb__gc_if_due(struct sess_store *st, int64_t now_ms);

enum sess_err lmdb__destroy_owner(struct sess_store *st, struct sess_str owner, int64_t now_ms,
                                  size_t *count);
enum sess_err lmdb__stats(struct sess_store *st, int64_t now_ms, struct sess_store_stats *out);
enum sess_err lmdb__each(struct sess_store *st, struct sess_str owner, int64_t now_ms,
                         sess_record_visit_fn visit, void *arg);

enum sess_err lmdb__user_get(struct sess_store *st, struct sess_str name, int64_t now_ms,
                             struct sess_buf *value);
enum sess_err lmdb__user_put(struct sess_store *st, struct sess_str name, int64_t now_ms,
                             struct sess_str value, bool must_be_new);
enum sess_err lmdb__user_replace(struct sess_store *st, struct sess_str name, int64_t now_ms,
                                 struct sess_str old, struct sess_str value);
enum sess_err lmdb__user_del(struct sess_store *st, struct sess_str name, int64_t now_ms);
enum sess_err lmdb__user_each(struct sess_store *st, int64_t now_ms, sess_user_visit_fn visit,
                              void *arg);
enum sess_err lmdb__throttle_hit(struct sess_store *st, struct sess_str key, int64_t now_ms,
                                 int64_t window_ms, uint32_t *count, int64_t *first_ms);
enum sess_err lmdb__throttle_peek(struct sess_store *st, struct sess_str key, int64_t now_ms,
                                  int64_t window_ms, uint32_t *count, int64_t *first_ms);
enum sess_err lmdb__throttle_clear(struct sess_store *st, struct sess_str key, int64_t now_ms);
enum sess_err lmdb__throttle_undo(struct sess_store *st, struct sess_str key, int64_t now_ms,
                                  int64_t window_ms);

#endif
