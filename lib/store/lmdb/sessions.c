/* The LMDB store: one environment in a directory, shared by every process
 * of every route. A session record carries its expiry in a small header and
 * its data sealed at rest (seal.c); indexes by expiry and by owner let gc and
 * revoke-by-user touch only what they delete. One store per process, used
 * from one thread, opened after any fork. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "combine.h"
#include "internal.h"
#include "store.h"

/* Session value: a fixed header, owner bytes, then the payload (sealed or
 * JSON). Fields are read and written with memcpy at fixed offsets, so the
 * layout never depends on a compiler's struct padding. Native byte order:
 * an LMDB file is only ever opened by machines of one byte order anyway.
 *
 * Format 2, written by this release:
 *
 *   offset size  field                                  in the seal's AD
 *        0    1  version = 2                            yes
 *        1    1  flags: 0x01 sealed, 0x02 remembered    yes (others: refused)
 *        2    2  owner length, u16                      yes
 *        4    4  extensions length, u32                 yes
 *        8    8  idle expiry, i64 Unix ms               no: touch moves it
 *       16    8  last seen, i64 Unix ms; 0 unknown      no: touch moves it
 *       24    8  absolute deadline, i64 Unix ms; 0 none yes
 *       32    8  created, i64 Unix ms                   yes
 *       40    8  generation, u64: 1 at creation, +1 per write    yes
 *       48   16  record nonce: random at creation, kept by updates   yes
 *       64       owner bytes                            yes
 *                extensions: {u8 type, u16 length, value} each     yes
 *                payload: nonce || ciphertext || tag (seal.c), or the JSON
 *
 * The additional data of the seal is REC_AD_LABEL, the id's length (u8)
 * and bytes, then every "yes" above in order: the header less its two
 * mutable fields, the owner and the extensions. Editing any of them, or
 * putting the payload under another id, another record (another nonce) or
 * another version of this one (another generation), makes it not open.
 * The idle expiry is outside so that a touch need not seal again; whatever
 * it says, a record is dead at its deadline, which is inside. What cannot
 * be caught without state outside the file: a whole value (header and
 * payload) put back as it was, e.g. a copy of a destroyed session's record;
 * it lives until its own expiry or deadline. README.md, "Security".
 *
 * Extensions carry per-session settings and client metadata; each is
 * written only when it differs from the default (zero, empty). A type
 * with bit 0x80 set must be understood: a record holding one this release
 * does not know is refused, others are skipped.
 *
 * Format 1 (0.1): version 1, flags (0x01 sealed), owner length u16, then
 * expiry, deadline and created (i64) at 8, 16 and 24, 32 bytes in all; the
 * owner; the payload sealed under 0.1's keys with the id alone as AD. Read
 * until the release after this one; rewritten as format 2 by the next
 * save. With encrypt on, an unsealed record of either format is refused:
 * anyone able to write the file could otherwise forge one. */
#define REC_VERSION        2
#define REC_FLAG_SEALED    0x01
#define REC_FLAG_REMEMBER  0x02
#define REC_FLAGS_KNOWN    (REC_FLAG_SEALED | REC_FLAG_REMEMBER)
#define REC_OFF_VERSION    0
#define REC_OFF_FLAGS      1
#define REC_OFF_OWNERLEN   2
#define REC_OFF_EXTLEN     4
#define REC_OFF_EXPIRES    8
#define REC_OFF_LAST_SEEN  16
#define REC_OFF_DEADLINE   24
#define REC_OFF_CREATED    32
#define REC_OFF_GENERATION 40
#define REC_OFF_NONCE      48
#define REC_HEADER_BYTES   64
#define REC_AD_LABEL       "fcgi-session record 2" /* with its NUL */

#define REC_EXT_IDLE_MS     0x01 /* i64: this session's idle lifetime */
#define REC_EXT_LIFETIME_MS 0x02 /* i64: its absolute lifetime */
#define REC_EXT_HANDLE      0x03 /* SESS_HANDLE_BYTES: its public handle */
#define REC_EXT_CLIENT_ADDR 0x04 /* bytes: client address */
#define REC_EXT_USER_AGENT  0x05 /* bytes: User-Agent */
#define REC_EXT_CRITICAL    0x80
#define REC_EXT_HEAD        3 /* type, u16 length */

#define REC1_VERSION      1
#define REC1_OFF_EXPIRES  8
#define REC1_OFF_DEADLINE 16
#define REC1_OFF_CREATED  24
#define REC1_HEADER_BYTES 32

_Static_assert(REC_OFF_EXPIRES == REC1_OFF_EXPIRES, "touch moves the expiry of either format");
_Static_assert(REC_OFF_NONCE + SESS_RECORD_NONCE_BYTES == REC_HEADER_BYTES, "header size");

/* Throttle value: {u32 count, u32 reserved, i64 first_ms, i64 until_ms}.
 * until_ms is the end of the window the entry was filed under in the
 * throttle_expiry index, so the index entry can be found again. */
#define THR_OFF_COUNT  0
#define THR_OFF_FIRST  8
#define THR_OFF_UNTIL  16
#define THR_BYTES      24
#define THR_HASH_BYTES 32

/* How often, across all processes, a request pays for a gc batch. */
#define GC_INTERVAL_MS 60000
/* sessctl's gc batch (gc_batch_max), one transaction each. A commit waits
 * for the pages it rewrote (lmdb_sync = meta), so 100k dead among 1M
 * records took 4 s in batches of SESS_GC_BATCH and 0.75 s in these, each
 * holding the write lock for up to ~0.4 s. */
#define GC_ADMIN_BATCH 32768
/* Granularity of the expiry index (see index_instant): a second keeps gc
 * and stats exact to the second. */
#define EXPIRY_BUCKET_MS 1000

/* 8 routes times a few dozen FastCGI processes each, each holding one
 * reader slot for its renewed read transaction, plus sessctl. The lock file
 * costs 64 bytes per slot. */
#define MAX_READERS 1022

enum db {
    DB_SESSIONS,        /* id -> header || owner || payload */
    DB_EXPIRY,          /* be64(effective expiry) || id -> "" */
    DB_OWNERS,          /* owner -> id (dupsort) */
    DB_USERS,           /* username -> account JSON */
    DB_THROTTLE,        /* BLAKE2b(key) -> throttle value */
    DB_THROTTLE_EXPIRY, /* be64(window end) || BLAKE2b(key) -> "" */
    DB_META,            /* "gc_next" -> i64 */
    DB_COUNT,
};

static const char *const db_names[DB_COUNT] = {
    "sessions", "expiry", "owners", "users", "throttle", "throttle_expiry", "meta",
};

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
    struct sess_buf ad;     /* a record's additional data (record_ad) */
    int64_t gc_check_ms;    /* before this, gc_if_due does not even look */
    int64_t pressure_gc_ms; /* before this, a nearly full map is not purged again */
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

/* A value's header as header_read finds it, either format. */
struct header {
    uint8_t version;
    uint8_t flags;
    size_t owner_off, owner_len;
    size_t ext_off, ext_len; /* format 2 */
    size_t payload_off;
    int64_t expires_ms, deadline_ms, created_ms;
    int64_t last_seen_ms; /* format 2 */
    uint64_t generation;  /* format 2 */
};

static const struct sess_store_ops lmdb_ops;

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static MDB_val
mval(const void *ptr, size_t len)
{
    return (MDB_val){.mv_size = len, .mv_data = (void *)ptr};
}

static void
put_be64(unsigned char *p, int64_t v)
{
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

static int64_t
get_be64(const unsigned char *p)
{
    uint64_t u = 0;
    int i;

    for (i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return u > INT64_MAX ? INT64_MAX : (int64_t)u;
}

static int64_t
get_i64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void
set_i64(unsigned char *p, int64_t v)
{
    memcpy(p, &v, sizeof v);
}

/* The instant a record is filed under in the expiry index: its death,
 * rounded up to the next whole EXPIRY_BUCKET_MS. A session written again
 * within the same bucket keeps its index entry, so a write moves two
 * B-trees' worth of pages rather than three; gc meets a dead record at
 * most one bucket late, and get never returns one (it checks the record). */
static int64_t
index_instant(int64_t expires_ms, int64_t deadline_ms)
{
    int64_t at = sess_record_expiry_ms(expires_ms, deadline_ms);
    if (at <= 0 || at > INT64_MAX - EXPIRY_BUCKET_MS)
        return at;
    return (at + EXPIRY_BUCKET_MS - 1) / EXPIRY_BUCKET_MS * EXPIRY_BUCKET_MS;
}

static bool
id_is_usable(struct sess_str id)
{
    return id.len > 0 && id.len <= SESS_ID_MAX_LEN;
}

static bool
str_eq(struct sess_str a, struct sess_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static enum sess_err
fail(struct lmdb_store *ls, int rc, const char *what)
{
    ls->rc = rc;
    sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg, "lmdb %s: %s: %s", ls->dir, what,
             mdb_strerror(rc));
    if (rc == MDB_MAP_FULL)
        return SESS_EFULL;
    if (rc == ENOMEM)
        return SESS_ENOMEM;
    return SESS_ESTORE;
}

/* Parses the header of either format; false for an unknown or
 * inconsistent layout (a corrupt record is never read past its end). */
static bool
header_read(const MDB_val *v, struct header *h)
{
    const unsigned char *p = v->mv_data;
    uint16_t owner_len;
    uint32_t ext_len;

    if (v->mv_size < REC1_HEADER_BYTES)
        return false;
    memset(h, 0, sizeof *h);
    h->version = p[REC_OFF_VERSION];
    h->flags = p[REC_OFF_FLAGS];
    memcpy(&owner_len, p + REC_OFF_OWNERLEN, sizeof owner_len);
    h->owner_len = owner_len;
    if (h->version == REC1_VERSION) {
        if (h->flags & ~REC_FLAG_SEALED || owner_len > v->mv_size - REC1_HEADER_BYTES)
            return false;
        h->owner_off = REC1_HEADER_BYTES;
        h->payload_off = REC1_HEADER_BYTES + owner_len;
        h->expires_ms = get_i64(p + REC1_OFF_EXPIRES);
        h->deadline_ms = get_i64(p + REC1_OFF_DEADLINE);
        h->created_ms = get_i64(p + REC1_OFF_CREATED);
        return true;
    }
    if (h->version != REC_VERSION || v->mv_size < REC_HEADER_BYTES || h->flags & ~REC_FLAGS_KNOWN)
        return false;
    memcpy(&ext_len, p + REC_OFF_EXTLEN, sizeof ext_len);
    if (owner_len > v->mv_size - REC_HEADER_BYTES ||
        ext_len > v->mv_size - REC_HEADER_BYTES - owner_len)
        return false;
    h->owner_off = REC_HEADER_BYTES;
    h->ext_off = REC_HEADER_BYTES + owner_len;
    h->ext_len = ext_len;
    h->payload_off = h->ext_off + ext_len;
    h->expires_ms = get_i64(p + REC_OFF_EXPIRES);
    h->last_seen_ms = get_i64(p + REC_OFF_LAST_SEEN);
    h->deadline_ms = get_i64(p + REC_OFF_DEADLINE);
    h->created_ms = get_i64(p + REC_OFF_CREATED);
    memcpy(&h->generation, p + REC_OFF_GENERATION, sizeof h->generation);
    return true;
}

/* The expiry index's key for `id`; the caller has checked the id with
 * id_is_usable. Never more than the buffer, whatever it is given. */
static size_t
expiry_key(unsigned char out[8 + SESS_ID_MAX_LEN], int64_t at_ms, struct sess_str id)
{
    size_t len = id.len <= SESS_ID_MAX_LEN ? id.len : SESS_ID_MAX_LEN;

    assert(id.len <= SESS_ID_MAX_LEN);
    put_be64(out, at_ms);
    memcpy(out + 8, id.ptr, len);
    return 8 + len;
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
        sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                 "lmdb %s: another process grew the map while a listing was open; retry", ls->dir);
        return SESS_ESTORE;
    }
    rc = mdb_env_set_mapsize(ls->env, 0);
    return rc ? fail(ls, rc, "mdb_env_set_mapsize") : SESS_OK;
}

/* The renewed transaction for short reads: no allocation and no reader-slot
 * search once warm (MDB_NOTLS ties the slot to the handle). */
static enum sess_err
read_begin(struct lmdb_store *ls, MDB_txn **txn)
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
            return fail(ls, rc, "mdb_txn_begin (read)");
        err = adopt_map_size(ls);
        if (err != SESS_OK)
            return err;
    }
}

static void
read_end(struct lmdb_store *ls)
{
    mdb_txn_reset(ls->rtxn);
}

/* A read transaction of its own, for walks whose visitor may call back into
 * the store (and so use the renewed one). */
static enum sess_err
walk_begin(struct lmdb_store *ls, MDB_txn **txn)
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
            return fail(ls, rc, "mdb_txn_begin (read)");
        err = adopt_map_size(ls);
        if (err != SESS_OK)
            return err;
    }
}

static void
walk_end(struct lmdb_store *ls, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    ls->open_reads--;
}

typedef enum sess_err (*write_fn)(struct lmdb_store *ls, MDB_txn *txn, void *arg);

struct gc_arg {
    int64_t now_ms;
    size_t max;
    size_t purged;
    bool more;
};

static enum sess_err write_txn(struct lmdb_store *ls, write_fn fn, void *arg, int64_t now_ms,
                               bool may_recover);
static enum sess_err do_gc(struct lmdb_store *ls, MDB_txn *txn, void *arg);

static enum sess_err
grow_map(struct lmdb_store *ls)
{
    MDB_envinfo info;
    int rc;

    if (ls->open_reads) {
        sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                 "lmdb %s: the map is full and cannot grow while a listing is open", ls->dir);
        return SESS_EFULL;
    }
    rc = mdb_env_info(ls->env, &info);
    if (rc)
        return fail(ls, rc, "mdb_env_info");
    if (info.me_mapsize > SIZE_MAX / 2) {
        sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg, "lmdb %s: the map cannot grow past %zu",
                 ls->dir, info.me_mapsize);
        return SESS_EFULL;
    }
    rc = mdb_env_set_mapsize(ls->env, info.me_mapsize * 2);
    if (rc == MDB_SUCCESS)
        return SESS_OK;
    /* The old mapping is gone by now (no address space for the new one?):
     * map the old size again, or every later call would fault. */
    mdb_env_set_mapsize(ls->env, info.me_mapsize);
    return fail(ls, rc, "mdb_env_set_mapsize (growing)");
}

/* Purges dead records while the map still has room to do it: deleting is a
 * write too (copy-on-write pages), so once the map is full a purge fails
 * like any other write and only growth is left. Above 3/4 full, at most
 * once a second per process, a batch goes; with nothing dead it costs one
 * look at the front of the expiry index. */
static void
purge_if_pressed(struct lmdb_store *ls, int64_t now_ms)
{
    MDB_envinfo info;
    MDB_stat stat;
    struct gc_arg gc = {.now_ms = now_ms, .max = SESS_GC_BATCH};

    if (!ls->is_ready || now_ms < ls->pressure_gc_ms || mdb_env_info(ls->env, &info) ||
        mdb_env_stat(ls->env, &stat))
        return;
    if ((uint64_t)(info.me_last_pgno + 1) * stat.ms_psize < (uint64_t)info.me_mapsize / 4 * 3)
        return;
    ls->pressure_gc_ms = now_ms + 1000;
    (void)write_txn(ls, do_gc, &gc, now_ms, false);
}

/* Runs `fn` in one write transaction and commits it. MDB_MAP_FULL is met
 * as DESIGN.md says: purge a batch of dead records and retry, then double
 * the map and retry, then give up with SESS_EFULL. `fn` may therefore run
 * more than once; it must start from scratch each time. */
/* Begins a write transaction, adopting a map another process has grown. */
static enum sess_err
write_begin(struct lmdb_store *ls, MDB_txn **txn)
{
    enum sess_err err;
    int rc, resized;

    for (resized = 0;; resized++) {
        ls->rc = MDB_SUCCESS;
        rc = mdb_txn_begin(ls->env, NULL, 0, txn);
        if (rc == MDB_SUCCESS)
            return SESS_OK;
        if (rc != MDB_MAP_RESIZED || resized == 3)
            return fail(ls, rc, "mdb_txn_begin");
        err = adopt_map_size(ls);
        if (err != SESS_OK)
            return err;
    }
}

static enum sess_err
write_txn(struct lmdb_store *ls, write_fn fn, void *arg, int64_t now_ms, bool may_recover)
{
    enum sess_err err;
    MDB_txn *txn;
    MDB_envinfo info;
    int rc, stage = 0;
    struct gc_arg gc;

    if (may_recover)
        purge_if_pressed(ls, now_ms);
    for (;;) {
        err = write_begin(ls, &txn);
        if (err != SESS_OK)
            return err;
        err = fn(ls, txn, arg);
        if (err == SESS_OK) {
            rc = mdb_txn_commit(txn);
            if (rc != MDB_SUCCESS)
                err = fail(ls, rc, "mdb_txn_commit");
        } else {
            mdb_txn_abort(txn);
        }
        if (err == SESS_OK || (ls->rc != MDB_MAP_FULL && ls->rc != ENOSPC) || !may_recover)
            return err;

        /* A full disk, like a full map, may still leave free pages inside
         * the file for a purge; growing the map cannot help it. */
        if (stage == 0 && ls->is_ready) {
            stage = 1;
            gc = (struct gc_arg){.now_ms = now_ms, .max = SESS_GC_BATCH};
            if (write_txn(ls, do_gc, &gc, now_ms, false) == SESS_OK && gc.purged > 0)
                continue;
        }
        if (ls->rc == ENOSPC) {
            sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
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
        sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                 "lmdb %s: MDB_MAP_FULL: the map (%zu bytes) is full even after purging expired "
                 "sessions and growing it; free disk space or raise lmdb_map_size",
                 ls->dir, info.me_mapsize);
        return SESS_EFULL;
    }
}

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

static enum sess_err
ext_put(struct sess_buf *out, uint8_t type, const void *value, size_t len)
{
    uint16_t len16 = (uint16_t)len;
    enum sess_err err;

    if (len > UINT16_MAX)
        return SESS_EBADINPUT;
    err = sess_buf_append(out, &type, 1);
    if (err == SESS_OK)
        err = sess_buf_append(out, &len16, sizeof len16);
    return err == SESS_OK ? sess_buf_append(out, value, len) : err;
}

/* Appends the extensions of `rec` that differ from their defaults. */
static enum sess_err
ext_encode(struct sess_buf *out, const struct sess_record *rec)
{
    enum sess_err err = SESS_OK;

    if (rec->idle_ms)
        err = ext_put(out, REC_EXT_IDLE_MS, &rec->idle_ms, sizeof rec->idle_ms);
    if (err == SESS_OK && rec->lifetime_ms)
        err = ext_put(out, REC_EXT_LIFETIME_MS, &rec->lifetime_ms, sizeof rec->lifetime_ms);
    if (err == SESS_OK && rec->has_handle)
        err = ext_put(out, REC_EXT_HANDLE, rec->handle, sizeof rec->handle);
    if (err == SESS_OK && rec->client_addr.len)
        err = ext_put(out, REC_EXT_CLIENT_ADDR, rec->client_addr.ptr, rec->client_addr.len);
    if (err == SESS_OK && rec->user_agent.len)
        err = ext_put(out, REC_EXT_USER_AGENT, rec->user_agent.ptr, rec->user_agent.len);
    return err;
}

/* Reads a record's extensions into `out` (client address and User-Agent as
 * views into `ext`). False for a truncated entry, a known type of the wrong
 * size or seen twice, or an unknown critical type. */
static bool
ext_decode(const unsigned char *ext, size_t len, struct sess_record *out)
{
    unsigned seen = 0;
    size_t pos = 0;

    while (pos < len) {
        uint8_t type;
        uint16_t vlen;
        const unsigned char *val;

        if (len - pos < REC_EXT_HEAD)
            return false;
        type = ext[pos];
        memcpy(&vlen, ext + pos + 1, sizeof vlen);
        if (vlen > len - pos - REC_EXT_HEAD)
            return false;
        val = ext + pos + REC_EXT_HEAD;
        pos += REC_EXT_HEAD + vlen;
        if (type < 32) {
            if (seen & 1u << type)
                return false;
            seen |= 1u << type;
        }
        switch (type) {
        case REC_EXT_IDLE_MS:
        case REC_EXT_LIFETIME_MS:
            if (vlen != sizeof(int64_t))
                return false;
            memcpy(type == REC_EXT_IDLE_MS ? &out->idle_ms : &out->lifetime_ms, val, vlen);
            break;
        case REC_EXT_HANDLE:
            if (vlen != SESS_HANDLE_BYTES)
                return false;
            memcpy(out->handle, val, vlen);
            out->has_handle = true;
            break;
        case REC_EXT_CLIENT_ADDR:
            out->client_addr = (struct sess_str){(const char *)val, vlen};
            break;
        case REC_EXT_USER_AGENT:
            out->user_agent = (struct sess_str){(const char *)val, vlen};
            break;
        default:
            if (type & REC_EXT_CRITICAL)
                return false;
        }
    }
    return true;
}

/* The additional data of a format 2 record whose value (header, owner,
 * extensions; the payload may follow or not yet) starts at `value`: in
 * ls->ad, which stays valid until the next call. */
static enum sess_err
record_ad(struct lmdb_store *ls, struct sess_str id, const unsigned char *value,
          const struct header *h, struct sess_str *ad)
{
    unsigned char id_len = (unsigned char)id.len;
    enum sess_err err;

    ls->ad.len = 0;
    err = sess_buf_append(&ls->ad, REC_AD_LABEL, sizeof REC_AD_LABEL);
    if (err == SESS_OK)
        err = sess_buf_append(&ls->ad, &id_len, 1);
    if (err == SESS_OK)
        err = sess_buf_append(&ls->ad, id.ptr, id.len);
    if (err == SESS_OK)
        err = sess_buf_append(&ls->ad, value, REC_OFF_EXPIRES);
    if (err == SESS_OK)
        err =
            sess_buf_append(&ls->ad, value + REC_OFF_DEADLINE, REC_HEADER_BYTES - REC_OFF_DEADLINE);
    if (err == SESS_OK)
        err = sess_buf_append(&ls->ad, value + h->owner_off, h->payload_off - h->owner_off);
    *ad = (struct sess_str){ls->ad.ptr, ls->ad.len};
    return err;
}

/* Builds the stored value of `rec` in ls->val, in format 2. A record that
 * already has a nonce (read by an update) keeps it and gets the next
 * generation; lmdb_create gives a new one its own. */
static enum sess_err
encode_record(struct lmdb_store *ls, struct sess_str id, const struct sess_record *rec)
{
    enum sess_err err;
    unsigned char *p;
    uint16_t owner_len = (uint16_t)rec->owner.len;
    uint32_t ext_len;
    uint64_t generation = rec->generation + 1;
    struct header h;
    struct sess_str ad;
    static const unsigned char no_nonce[SESS_RECORD_NONCE_BYTES];

    if (rec->owner.len > ls->max_key || rec->owner.len > UINT16_MAX) {
        sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                 "lmdb %s: owner of %zu bytes is over the key limit of %zu", ls->dir,
                 rec->owner.len, ls->max_key);
        return SESS_EBADINPUT;
    }
    if (!id_is_usable(id))
        return SESS_EBADINPUT;
    ls->val.len = 0;
    err = sess_buf_reserve(&ls->val, REC_HEADER_BYTES + rec->owner.len);
    if (err != SESS_OK)
        return err;
    p = (unsigned char *)ls->val.ptr;
    memset(p, 0, REC_HEADER_BYTES);
    p[REC_OFF_VERSION] = REC_VERSION;
    p[REC_OFF_FLAGS] =
        (ls->is_sealing ? REC_FLAG_SEALED : 0) | (rec->is_remembered ? REC_FLAG_REMEMBER : 0);
    memcpy(p + REC_OFF_OWNERLEN, &owner_len, sizeof owner_len);
    set_i64(p + REC_OFF_EXPIRES, rec->expires_ms);
    set_i64(p + REC_OFF_LAST_SEEN, rec->last_seen_ms);
    set_i64(p + REC_OFF_DEADLINE, rec->deadline_ms);
    set_i64(p + REC_OFF_CREATED, rec->created_ms);
    memcpy(p + REC_OFF_GENERATION, &generation, sizeof generation);
    /* Never all zeros: a record built by hand and given to an update still
     * gets a nonce no other record has. */
    if (sodium_memcmp(rec->nonce, no_nonce, sizeof no_nonce) == 0)
        randombytes_buf(p + REC_OFF_NONCE, SESS_RECORD_NONCE_BYTES);
    else
        memcpy(p + REC_OFF_NONCE, rec->nonce, SESS_RECORD_NONCE_BYTES);
    ls->val.len = REC_HEADER_BYTES;
    err = sess_buf_append(&ls->val, rec->owner.ptr, rec->owner.len);
    if (err == SESS_OK)
        err = ext_encode(&ls->val, rec);
    if (err != SESS_OK)
        return err;
    if (ls->val.len - REC_HEADER_BYTES - rec->owner.len > UINT32_MAX)
        return SESS_EBADINPUT;
    ext_len = (uint32_t)(ls->val.len - REC_HEADER_BYTES - rec->owner.len);
    memcpy(ls->val.ptr + REC_OFF_EXTLEN, &ext_len, sizeof ext_len);
    if (!ls->is_sealing)
        return sess_buf_append(&ls->val, rec->data.ptr, rec->data.len);
    h = (struct header){.owner_off = REC_HEADER_BYTES, .payload_off = ls->val.len};
    err = record_ad(ls, id, (const unsigned char *)ls->val.ptr, &h, &ad);
    return err == SESS_OK ? sess_seal(&ls->sealer, ad, rec->data, &ls->val) : err;
}

/* Copies a stored value into `buf` as "owner\0client_addr\0user_agent\0
 * data\0" and points `out` at it. A value that does not parse or open is
 * SESS_ENOTFOUND: one corrupt record must not turn into a 500 on every
 * request that names it. With `check_live`, a dead record is
 * SESS_ENOTFOUND before any decryption; without `with_data`, the data is
 * neither opened nor copied (left empty), and so nothing in the header is
 * authenticated: only for a value known to have opened before (an update
 * of the bytes get just returned) or for reading what is not trusted. */
static enum sess_err
decode_record(struct lmdb_store *ls, struct sess_str id, const MDB_val *v, bool check_live,
              int64_t now_ms, struct sess_record *out, struct sess_buf *buf, bool with_data)
{
    enum sess_err err;
    struct header h;
    struct sess_str payload, ad = {0};
    size_t addr_off, ua_off, data_off;
    const unsigned char *p = v->mv_data;

    memset(out, 0, sizeof *out);
    /* Ids read from an index (sessctl's walks) are the file's word only. */
    if (!id_is_usable(id))
        return SESS_ENOTFOUND;
    if (!header_read(v, &h) ||
        (h.version == REC_VERSION && !ext_decode(p + h.ext_off, h.ext_len, out))) {
        sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                 "lmdb %s: a session record has an unknown layout; ignored", ls->dir);
        return SESS_ENOTFOUND;
    }
    out->expires_ms = sess_record_expiry_ms(h.expires_ms, h.deadline_ms);
    out->deadline_ms = h.deadline_ms;
    out->created_ms = h.created_ms;
    out->last_seen_ms = h.last_seen_ms;
    out->generation = h.generation;
    out->is_remembered = (h.flags & REC_FLAG_REMEMBER) != 0;
    if (h.version == REC_VERSION)
        memcpy(out->nonce, p + REC_OFF_NONCE, SESS_RECORD_NONCE_BYTES);
    if (check_live && !sess_record_is_live(out, now_ms))
        return SESS_ENOTFOUND;
    if (ls->is_sealing && !(h.flags & REC_FLAG_SEALED)) {
        sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                 "lmdb %s: an unsealed session record in a store with encrypt on (written "
                 "by someone without the secret?); ignored",
                 ls->dir);
        return SESS_ENOTFOUND;
    }

    payload.ptr = (const char *)p + h.payload_off;
    payload.len = v->mv_size - h.payload_off;
    buf->len = 0;
    err = sess_buf_append(buf, p + h.owner_off, h.owner_len);
    if (err == SESS_OK)
        err = sess_buf_append(buf, "", 1);
    addr_off = buf->len;
    if (err == SESS_OK)
        err = sess_buf_append(buf, out->client_addr.ptr, out->client_addr.len);
    if (err == SESS_OK)
        err = sess_buf_append(buf, "", 1);
    ua_off = buf->len;
    if (err == SESS_OK)
        err = sess_buf_append(buf, out->user_agent.ptr, out->user_agent.len);
    if (err == SESS_OK)
        err = sess_buf_append(buf, "", 1);
    if (err != SESS_OK)
        return err;
    data_off = buf->len;
    if (with_data && (h.flags & REC_FLAG_SEALED)) {
        /* Format 1 was sealed under 0.1's keys with the id alone as AD;
         * format 2 under ours, with the header. */
        if (h.version == REC_VERSION) {
            err = record_ad(ls, id, p, &h, &ad);
            if (err == SESS_OK)
                err = sess_unseal_current(&ls->sealer, ad, payload, buf);
        } else {
            err = sess_unseal_legacy(&ls->sealer, id, payload, buf);
        }
        if (err == SESS_ECRYPTO) {
            sess_fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                     "lmdb %s: a session record does not open under any secret (tampered, "
                     "moved, or sealed with a secret no longer in secret_file); ignored",
                     ls->dir);
            return SESS_ENOTFOUND;
        }
    } else if (with_data) {
        err = sess_buf_append(buf, payload.ptr, payload.len);
    }
    if (err == SESS_OK && with_data)
        err = sess_buf_append(buf, "", 1);
    if (err != SESS_OK)
        return err;
    out->owner = (struct sess_str){buf->ptr, h.owner_len};
    out->client_addr = (struct sess_str){buf->ptr + addr_off, ua_off - 1 - addr_off};
    out->user_agent = (struct sess_str){buf->ptr + ua_off, data_off - 1 - ua_off};
    out->data = with_data ? (struct sess_str){buf->ptr + data_off, buf->len - 1 - data_off}
                          : (struct sess_str){NULL, 0};
    return SESS_OK;
}

static enum sess_err
index_put(struct lmdb_store *ls, MDB_txn *txn, enum db db, const void *key, size_t key_len,
          const void *data, size_t data_len)
{
    MDB_val k = mval(key, key_len), d = mval(data, data_len);
    int rc = mdb_put(txn, ls->dbi[db], &k, &d, 0);

    return rc ? fail(ls, rc, "mdb_put (index)") : SESS_OK;
}

/* Deleting an entry that is already gone is fine: indexes are repaired by
 * whoever finds them stale. */
static enum sess_err
index_del(struct lmdb_store *ls, MDB_txn *txn, enum db db, const void *key, size_t key_len,
          const void *data, size_t data_len)
{
    MDB_val k = mval(key, key_len), d = mval(data, data_len);
    int rc = mdb_del(txn, ls->dbi[db], &k, data ? &d : NULL);

    return rc && rc != MDB_NOTFOUND ? fail(ls, rc, "mdb_del (index)") : SESS_OK;
}

static enum sess_err
expiry_put(struct lmdb_store *ls, MDB_txn *txn, struct sess_str id, int64_t at_ms)
{
    unsigned char key[8 + SESS_ID_MAX_LEN];
    return index_put(ls, txn, DB_EXPIRY, key, expiry_key(key, at_ms, id), "", 0);
}

static enum sess_err
expiry_del(struct lmdb_store *ls, MDB_txn *txn, struct sess_str id, int64_t at_ms)
{
    unsigned char key[8 + SESS_ID_MAX_LEN];
    return index_del(ls, txn, DB_EXPIRY, key, expiry_key(key, at_ms, id), NULL, 0);
}

/* Deletes a session record and its index entries, given its parsed header. */
static enum sess_err
delete_record(struct lmdb_store *ls, MDB_txn *txn, struct sess_str id, const MDB_val *v)
{
    enum sess_err err = SESS_OK;
    struct header h;
    MDB_val k = mval(id.ptr, id.len);
    int rc;

    if (header_read(v, &h)) {
        err = expiry_del(ls, txn, id, index_instant(h.expires_ms, h.deadline_ms));
        if (err == SESS_OK && h.owner_len)
            err = index_del(ls, txn, DB_OWNERS, (const char *)v->mv_data + h.owner_off, h.owner_len,
                            id.ptr, id.len);
        if (err != SESS_OK)
            return err;
    }
    rc = mdb_del(txn, ls->dbi[DB_SESSIONS], &k, NULL);
    return rc && rc != MDB_NOTFOUND ? fail(ls, rc, "mdb_del") : SESS_OK;
}

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

/* Names the stored bytes of a record for sess_record.read_tag; never 0. */
static uint64_t
read_tag(const struct lmdb_store *ls, const MDB_val *v)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t tag;

    crypto_shorthash(h, v->mv_data, v->mv_size, ls->tag_key);
    memcpy(&tag, h, sizeof tag);
    return tag ? tag : 1;
}

static enum sess_err
lmdb_get(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_record *out,
         struct sess_buf *buf)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn;
    MDB_val k = mval(id.ptr, id.len), v;
    enum sess_err err;
    int rc;

    if (!id_is_usable(id))
        return SESS_ENOTFOUND;
    err = read_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        err = SESS_ENOTFOUND;
    else if (rc)
        err = fail(ls, rc, "mdb_get");
    else
        err = decode_record(ls, id, &v, true, now_ms, out, buf, true);
    if (err == SESS_OK)
        out->read_tag = read_tag(ls, &v);
    read_end(ls);
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
    MDB_val k = mval(a->id.ptr, a->id.len), v = mval(ls->val.ptr, ls->val.len);
    enum sess_err err;
    int rc;

    rc = mdb_put(txn, ls->dbi[DB_SESSIONS], &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return SESS_EEXISTS;
    if (rc)
        return fail(ls, rc, "mdb_put");
    err = expiry_put(ls, txn, a->id, index_instant(a->rec->expires_ms, a->rec->deadline_ms));
    if (err == SESS_OK && a->rec->owner.len)
        err = index_put(ls, txn, DB_OWNERS, a->rec->owner.ptr, a->rec->owner.len, a->id.ptr,
                        a->id.len);
    return err;
}

static enum sess_err
lmdb_create(struct sess_store *st, struct sess_str id, int64_t now_ms,
            const struct sess_record *rec)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct create_arg a = {id, rec};
    struct sess_record fresh;
    enum sess_err err;

    if (!id_is_usable(id))
        return SESS_EBADINPUT;
    /* A new record never takes a nonce or generation from its caller: a
     * payload sealed for any earlier record must not open under this one. */
    fresh = *rec;
    randombytes_buf(fresh.nonce, sizeof fresh.nonce);
    fresh.generation = 0;
    a.rec = &fresh;
    /* Sealed before the write lock is taken: other writers wait for less. */
    err = encode_record(ls, id, &fresh);
    if (err != SESS_OK)
        return err;
    return write_txn(ls, do_create, &a, now_ms, true);
}

struct update_arg {
    struct sess_str id;
    int64_t now_ms;
    struct sess_patch *patch;
};

/* The stored bytes `v` are the very ones the patch's request read. Ids are
 * random and a tag is keyed by a secret of this process, so two records
 * share one only by chance (2^-64); a sealed record's bytes change on every
 * write, even of the same data. */
static bool
is_unchanged_since_read(const struct lmdb_store *ls, const struct update_arg *a, const MDB_val *v)
{
    const struct sess_patch *p = a->patch;

    return p->whole && p->read_tag && p->read_tag == read_tag(ls, v);
}

static enum sess_err
do_update(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct update_arg *a = arg;
    MDB_val k = mval(a->id.ptr, a->id.len), v;
    struct sess_record cur, next;
    int64_t cur_at, next_at;
    enum sess_err err;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    if (rc)
        return fail(ls, rc, "mdb_get");
    /* Copied out of the map: the put below may reuse the pages `v` is on,
     * and `next` may borrow from `cur`. A patch whose request holds the
     * whole session, over the very bytes it read, is laid over what the
     * request holds: the record is not opened again. */
    err = decode_record(ls, a->id, &v, true, a->now_ms, &cur, &ls->cur,
                        !is_unchanged_since_read(ls, a, &v));
    if (err != SESS_OK)
        return err;
    next = cur;
    err = sess_patch_merge(a->patch, &cur, &next);
    if (err != SESS_OK)
        return err;
    err = encode_record(ls, a->id, &next);
    if (err != SESS_OK)
        return err;
    v = mval(ls->val.ptr, ls->val.len);
    rc = mdb_put(txn, ls->dbi[DB_SESSIONS], &k, &v, 0);
    if (rc)
        return fail(ls, rc, "mdb_put");

    cur_at = index_instant(cur.expires_ms, cur.deadline_ms);
    next_at = index_instant(next.expires_ms, next.deadline_ms);
    if (cur_at != next_at) {
        err = expiry_del(ls, txn, a->id, cur_at);
        if (err == SESS_OK)
            err = expiry_put(ls, txn, a->id, next_at);
        if (err != SESS_OK)
            return err;
    }
    if (!str_eq(cur.owner, next.owner)) {
        if (cur.owner.len)
            err = index_del(ls, txn, DB_OWNERS, cur.owner.ptr, cur.owner.len, a->id.ptr, a->id.len);
        if (err == SESS_OK && next.owner.len)
            err =
                index_put(ls, txn, DB_OWNERS, next.owner.ptr, next.owner.len, a->id.ptr, a->id.len);
    }
    return err;
}

/* Group commit (combine.c): an update travels as its patch, behind the
 * session id: u8 id length, the id, then i64 now_ms, i64 expires_ms and the
 * patch text, sealed like a record (the id as associated data), since the
 * queue is a file too. */
#define UPD_OFF_ID 1
/* A batch result that sends each update back to be written alone. */
#define UPDATE_ALONE (-1)

/* Builds the queued form of an update in ls->val; false when it does not fit. */
static bool
update_encode(struct lmdb_store *ls, struct sess_str id, int64_t now_ms,
              const struct sess_patch *patch)
{
    char *text = sess_patch_dump(patch);
    size_t len = text ? strlen(text) : 0;
    unsigned char times[16];
    bool ok;

    set_i64(times, now_ms);
    set_i64(times + 8, patch->expires_ms);
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
    struct update_arg a;
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
    if (ls->op.len < 16 || !id_is_usable(q->a.id))
        return SESS_EBADINPUT;
    p = (const unsigned char *)ls->op.ptr;
    q->a.now_ms = get_i64(p);
    err = sess_patch_parse(&q->patch, ls->op.ptr + 16, ls->op.len - 16, get_i64(p + 8));
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
    MDB_val k = mval(batch_done_key, sizeof batch_done_key - 1), v;
    unsigned char *p;
    size_t i;
    int rc;

    v.mv_size = n * DONE_ENTRY_BYTES;
    rc = mdb_put(txn, ls->dbi[DB_META], &k, &v, MDB_RESERVE);
    if (rc)
        return fail(ls, rc, "mdb_put (batch)");
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
static void
apply_updates(void *ctx, struct sess_combine_op *ops, size_t n)
{
    struct lmdb_store *ls = ctx;
    struct queued_update *q = calloc(n, sizeof *q);
    size_t *order = calloc(n, sizeof *order);
    MDB_val k = mval(batch_done_key, sizeof batch_done_key - 1), done = {0};
    bool is_committed = false;
    MDB_txn *txn = NULL;
    size_t i;
    int rc;

    if (!q || !order || write_begin(ls, &txn) != SESS_OK)
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
            u->err = do_update(ls, txn, &u->a);
    }
    if (ls->rc == MDB_SUCCESS && record_done(ls, txn, ops, q, n) == SESS_OK) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc == MDB_SUCCESS)
            is_committed = true;
        else
            (void)fail(ls, rc, "mdb_txn_commit");
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

static enum sess_err
lmdb_update(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_patch *patch)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct update_arg a = {id, now_ms, patch};
    enum sess_err err;
    int result;

    if (!id_is_usable(id))
        return SESS_ENOTFOUND;
    /* A patch can be applied by another process: queue it, unless the map
     * needs room first. Other outcomes than success or gone are repeated
     * alone, so that the error message is this process's own. */
    purge_if_pressed(ls, now_ms);
    if (ls->may_combine && !ls->combiner) {
        /* Only processes that update sessions make the queue: sessctl,
         * which may run as root, never leaves one others cannot open. */
        char path[PATH_MAX];
        sess_fmt(path, sizeof path, "%s/commit-2.queue", ls->dir);
        ls->combiner = sess_combiner_open(path);
        ls->may_combine = ls->combiner != NULL;
    }
    if (ls->combiner && update_encode(ls, id, now_ms, patch) &&
        sess_combine(ls->combiner, ls->val.ptr, ls->val.len, apply_updates, ls, &result)) {
        sodium_memzero(ls->val.ptr, ls->val.len);
        if (result == SESS_OK || result == SESS_ENOTFOUND || result == SESS_ECONFLICT)
            return (enum sess_err)result;
    }
    err = write_txn(ls, do_update, &a, now_ms, true);
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
    MDB_val k = mval(a->id.ptr, a->id.len), v;
    struct header h;
    struct sess_record rec;
    enum sess_err err;
    int64_t old_at, new_at;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    if (rc)
        return fail(ls, rc, "mdb_get");
    if (!header_read(&v, &h))
        return SESS_ENOTFOUND;
    rec = (struct sess_record){.expires_ms = h.expires_ms, .deadline_ms = h.deadline_ms};
    if (!sess_record_is_live(&rec, a->now_ms))
        return SESS_ENOTFOUND;
    /* Same payload bytes: the seal leaves out the idle expiry and the last
     * sighting (format 2), so only they change; the deadline, which it
     * covers, still ends the record. */
    ls->val.len = 0;
    err = sess_buf_append(&ls->val, v.mv_data, v.mv_size);
    if (err != SESS_OK)
        return err;
    set_i64((unsigned char *)ls->val.ptr + REC_OFF_EXPIRES, a->expires_ms);
    if (h.version == REC_VERSION)
        set_i64((unsigned char *)ls->val.ptr + REC_OFF_LAST_SEEN, a->now_ms);
    v = mval(ls->val.ptr, ls->val.len);
    rc = mdb_put(txn, ls->dbi[DB_SESSIONS], &k, &v, 0);
    if (rc)
        return fail(ls, rc, "mdb_put");
    old_at = index_instant(h.expires_ms, h.deadline_ms);
    new_at = index_instant(a->expires_ms, h.deadline_ms);
    if (old_at == new_at)
        return SESS_OK;
    err = expiry_del(ls, txn, a->id, old_at);
    return err == SESS_OK ? expiry_put(ls, txn, a->id, new_at) : err;
}

static enum sess_err
lmdb_touch(struct sess_store *st, struct sess_str id, int64_t now_ms, int64_t expires_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct touch_arg a = {id, now_ms, expires_ms};

    if (!id_is_usable(id))
        return SESS_ENOTFOUND;
    return write_txn(ls, do_touch, &a, now_ms, true);
}

static enum sess_err
do_destroy(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct sess_str *id = arg;
    MDB_val k = mval(id->ptr, id->len), v;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_OK;
    if (rc)
        return fail(ls, rc, "mdb_get");
    return delete_record(ls, txn, *id, &v);
}

static enum sess_err
lmdb_destroy(struct sess_store *st, struct sess_str id, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;

    if (!id_is_usable(id))
        return SESS_OK;
    return write_txn(ls, do_destroy, &id, now_ms, true);
}

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
    MDB_val k = mval(a->owner.ptr, a->owner.len), d, v;
    struct header h;
    struct sess_str id;
    enum sess_err err = SESS_OK;
    int rc;

    a->count = a->corrupt = 0;
    rc = mdb_cursor_open(txn, ls->dbi[DB_OWNERS], &cur);
    if (rc)
        return fail(ls, rc, "mdb_cursor_open");
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP)) {
        MDB_val ik;

        id = (struct sess_str){d.mv_data, d.mv_size};
        /* The index is a file anyone with write access can fill: an id no
         * session can have is reported, and the walk goes on (the owner's
         * index entries all go below). */
        if (!id_is_usable(id)) {
            a->corrupt++;
            continue;
        }
        ik = mval(id.ptr, id.len);
        rc = mdb_get(txn, ls->dbi[DB_SESSIONS], &ik, &v);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            break;
        /* An index entry left by an older owner of this id is not proof. */
        if (!header_read(&v, &h) || h.owner_len != a->owner.len ||
            memcmp((const char *)v.mv_data + h.owner_off, a->owner.ptr, a->owner.len) != 0)
            continue;
        err = expiry_del(ls, txn, id, index_instant(h.expires_ms, h.deadline_ms));
        if (err != SESS_OK)
            goto out;
        rc = mdb_del(txn, ls->dbi[DB_SESSIONS], &ik, NULL);
        if (rc)
            break;
        a->count++;
    }
    if (rc != MDB_NOTFOUND) {
        err = fail(ls, rc, "destroying an owner's sessions");
        goto out;
    }
    k = mval(a->owner.ptr, a->owner.len);
    err = index_del(ls, txn, DB_OWNERS, k.mv_data, k.mv_size, NULL, 0);
out:
    mdb_cursor_close(cur);
    return err;
}

static enum sess_err
lmdb_destroy_owner(struct sess_store *st, struct sess_str owner, int64_t now_ms, size_t *count)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct owner_arg a = {owner, 0, 0};
    enum sess_err err;

    *count = 0;
    if (owner.len == 0 || owner.len > ls->max_key)
        return SESS_OK;
    err = write_txn(ls, do_destroy_owner, &a, now_ms, true);
    if (err == SESS_OK)
        *count = a.count;
    if (err == SESS_OK && a.corrupt)
        sess_fmt(ls->base.warning, sizeof ls->base.warning,
                 "lmdb %s: %zu entr%s of this user in the owners index named no possible "
                 "session id (corrupt, or written by hand); skipped and removed",
                 ls->dir, a.corrupt, a.corrupt == 1 ? "y" : "ies");
    return err;
}

/* ------------------------------------------------------------------------
 * Garbage collection
 * ------------------------------------------------------------------------ */

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
gc_collect(struct lmdb_store *ls, MDB_txn *txn, struct gc_arg *a, size_t window,
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
        return fail(ls, rc, "mdb_cursor_open");
    for (n = 0;; n++) {
        rc = mdb_cursor_get(cur, &k, &d, n ? MDB_NEXT : MDB_FIRST);
        if (rc)
            break;
        if (k.mv_size > 8 && get_be64(k.mv_data) > a->now_ms)
            break;
        if (n == window) {
            a->more = true;
            break;
        }
        key = k.mv_data;
        vic = (struct gc_victim){.key_off = keys->len, .key_len = k.mv_size};
        for (i = 8; i < 16; i++)
            vic.id_prefix = vic.id_prefix << 8 | (i < k.mv_size ? key[i] : 0);
        err = sess_buf_append(keys, k.mv_data, k.mv_size);
        if (err == SESS_OK)
            err = sess_buf_append(victims, &vic, sizeof vic);
        if (err != SESS_OK)
            goto out;
    }
    if (rc && rc != MDB_NOTFOUND)
        err = fail(ls, rc, "mdb_cursor_get");
out:
    mdb_cursor_close(cur);
    return err;
}

/* Deletes the victims' records in key order, so that neighbours share the
 * pages they dirty and the walk down the tree, noting each one's owner.
 * Only a record still filed under the instant of its entry dies; one that
 * moved (touched) has its own, later entry. */
static enum sess_err
gc_purge_records(struct lmdb_store *ls, MDB_txn *txn, struct gc_arg *a, struct gc_victim *vic,
                 size_t n, struct sess_buf *owners)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct header h;
    enum sess_err err = SESS_OK;
    int64_t at_ms;
    size_t i;
    int rc;

    rc = mdb_cursor_open(txn, ls->dbi[DB_SESSIONS], &cur);
    if (rc)
        return fail(ls, rc, "mdb_cursor_open");
    for (i = 0; i < n; i++) {
        k.mv_data = (void *)victim_id(&vic[i], &k.mv_size);
        if (!k.mv_size)
            continue;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc) {
            err = fail(ls, rc, "mdb_cursor_get");
            goto out;
        }
        at_ms = get_be64((const unsigned char *)vic[i].key);
        if (!header_read(&v, &h) || index_instant(h.expires_ms, h.deadline_ms) != at_ms)
            continue;
        vic[i].owner_off = owners->len;
        vic[i].owner_len = h.owner_len;
        err = sess_buf_append(owners, (const char *)v.mv_data + h.owner_off, h.owner_len);
        if (err != SESS_OK)
            goto out;
        rc = mdb_cursor_del(cur, 0);
        if (rc) {
            err = fail(ls, rc, "mdb_del");
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
gc_purge_index(struct lmdb_store *ls, MDB_txn *txn, enum db db, struct gc_victim *vic, size_t n)
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
        return fail(ls, rc, "mdb_cursor_open");
    /* By owner, the purged records with an owner come first. */
    for (i = 0; i < n && (!by_owner || (vic[i].is_purged && vic[i].owner_len)); i++) {
        if (by_owner) {
            k = mval(vic[i].owner, vic[i].owner_len);
            d.mv_data = (void *)victim_id(&vic[i], &d.mv_size);
        } else {
            k = mval(vic[i].key, vic[i].key_len);
        }
        rc = mdb_cursor_get(cur, &k, &d, by_owner ? MDB_GET_BOTH : MDB_SET);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_del(cur, 0);
        if (rc) {
            err = fail(ls, rc, "mdb_del (index)");
            break;
        }
    }
    mdb_cursor_close(cur);
    return err;
}

/* Deletes up to a->max dead sessions, chosen among the oldest entries of
 * the expiry index, then up to a->max stale throttle counters. */
static enum sess_err
do_gc(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct gc_arg *a = arg;
    struct sess_buf victims = {0}, keys = {0}, owners = {0};
    struct gc_victim *vic;
    MDB_cursor *cur = NULL;
    MDB_val k, d, v, ik;
    enum sess_err err;
    size_t n, i;
    int rc;

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
    if (err != SESS_OK)
        goto out;

    rc = mdb_cursor_open(txn, ls->dbi[DB_THROTTLE_EXPIRY], &cur);
    if (rc) {
        err = fail(ls, rc, "mdb_cursor_open");
        goto out;
    }
    for (n = 0;; n++) {
        rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        if (rc)
            break;
        if (k.mv_size == 8 + THR_HASH_BYTES && get_be64(k.mv_data) > a->now_ms)
            break;
        if (n == a->max) {
            a->more = true;
            break;
        }
        if (k.mv_size == 8 + THR_HASH_BYTES) {
            ik = mval((const char *)k.mv_data + 8, THR_HASH_BYTES);
            rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &ik, &v);
            if (rc == MDB_SUCCESS && v.mv_size == THR_BYTES &&
                get_i64((const unsigned char *)v.mv_data + THR_OFF_UNTIL) == get_be64(k.mv_data)) {
                rc = mdb_del(txn, ls->dbi[DB_THROTTLE], &ik, NULL);
                if (rc) {
                    err = fail(ls, rc, "mdb_del (throttle)");
                    goto out;
                }
            } else if (rc && rc != MDB_NOTFOUND) {
                err = fail(ls, rc, "mdb_get (throttle)");
                goto out;
            }
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc) {
            err = fail(ls, rc, "mdb_cursor_del");
            goto out;
        }
    }
    if (rc && rc != MDB_NOTFOUND)
        err = fail(ls, rc, "mdb_cursor_get");
out:
    if (cur)
        mdb_cursor_close(cur);
    sess_buf_free(&owners);
    sess_buf_free(&keys);
    sess_buf_free(&victims);
    return err;
}

static enum sess_err
lmdb_gc(struct sess_store *st, int64_t now_ms, size_t max, size_t *purged, bool *more)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct gc_arg a = {.now_ms = now_ms, .max = max ? max : 1};
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
        err = write_txn(ls, do_gc, &a, now_ms, false);
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
    struct gc_arg gc;
    int64_t next_ms;
};

static enum sess_err
do_gc_if_due(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct gc_due_arg *a = arg;
    MDB_val k = mval(gc_next_key, sizeof gc_next_key - 1), v;
    unsigned char next[8];
    int rc;

    /* Re-read under the write lock: of all the processes that found gc due,
     * only the first to get here does the batch. */
    rc = mdb_get(txn, ls->dbi[DB_META], &k, &v);
    if (rc == MDB_SUCCESS && v.mv_size == 8 && get_i64(v.mv_data) > a->gc.now_ms) {
        a->next_ms = get_i64(v.mv_data);
        return SESS_OK;
    }
    if (rc && rc != MDB_NOTFOUND)
        return fail(ls, rc, "mdb_get (meta)");
    a->next_ms = a->gc.now_ms + GC_INTERVAL_MS;
    set_i64(next, a->next_ms);
    v = mval(next, sizeof next);
    rc = mdb_put(txn, ls->dbi[DB_META], &k, &v, 0);
    if (rc)
        return fail(ls, rc, "mdb_put (meta)");
    return do_gc(ls, txn, &a->gc);
}

static void
lmdb_gc_if_due(struct sess_store *st, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct gc_due_arg a = {.gc = {.now_ms = now_ms, .max = SESS_GC_BATCH}};
    MDB_val k = mval(gc_next_key, sizeof gc_next_key - 1), v;
    MDB_txn *txn;
    int dead;

    if (now_ms < ls->gc_check_ms)
        return;
    /* The shared schedule in "meta" is read without the write lock; most
     * processes learn here that another one did the work. The first call
     * of a process always looks, so even one-request CGI processes share
     * the duty. */
    a.next_ms = 0;
    if (read_begin(ls, &txn) == SESS_OK) {
        if (mdb_get(txn, ls->dbi[DB_META], &k, &v) == MDB_SUCCESS && v.mv_size == 8)
            a.next_ms = get_i64(v.mv_data);
        read_end(ls);
    }
    if (a.next_ms <= now_ms) {
        mdb_reader_check(ls->env, &dead);
        if (write_txn(ls, do_gc_if_due, &a, now_ms, false) != SESS_OK)
            a.next_ms = now_ms + GC_INTERVAL_MS;
    }
    /* Spread over the next interval so the processes do not all look at
     * the same instant. */
    ls->gc_check_ms = a.next_ms + (int64_t)randombytes_uniform(GC_INTERVAL_MS);
}

/* ------------------------------------------------------------------------
 * Listing and statistics (sessctl)
 * ------------------------------------------------------------------------ */

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

static enum sess_err
lmdb_stats(struct sess_store *st, int64_t now_ms, struct sess_store_stats *out)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_stat ms;
    MDB_envinfo info;
    MDB_val k, v;
    struct header h;
    enum sess_err err;
    size_t readers = 0;
    int rc;

    memset(out, 0, sizeof *out);
    err = walk_begin(ls, &txn);
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
        if (k.mv_size <= 8 || get_be64(k.mv_data) > now_ms)
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
        if (!header_read(&v, &h))
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
    walk_end(ls, txn);
    return SESS_OK;

lmdb_fail:
    mdb_cursor_close(cur);
    walk_end(ls, txn);
    return fail(ls, rc, "stats");
}

static enum sess_err
lmdb_each(struct sess_store *st, struct sess_str owner, int64_t now_ms, sess_record_visit_fn visit,
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
    err = walk_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    if (owner.len) {
        if (owner.len > ls->max_key)
            goto out;
        k = mval(owner.ptr, owner.len);
        first = MDB_SET_KEY;
        next = MDB_NEXT_DUP;
        rc = mdb_cursor_open(txn, ls->dbi[DB_OWNERS], &cur);
    } else {
        rc = mdb_cursor_open(txn, ls->dbi[DB_SESSIONS], &cur);
    }
    if (rc) {
        err = fail(ls, rc, "mdb_cursor_open");
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
        err = decode_record(ls, id, &v, false, 0, &rec, &buf, true);
        if (err == SESS_ENOTFOUND)
            continue;
        /* Before the owner is compared: on failure `rec` was not filled. */
        if (err != SESS_OK)
            goto out;
        if (owner.len && !str_eq(rec.owner, owner))
            continue;
        if (!visit(arg, id, &rec))
            break;
    }
    err = SESS_OK;
    if (rc && rc != MDB_NOTFOUND)
        err = fail(ls, rc, "mdb_cursor_get");
out:
    mdb_cursor_close(cur);
    walk_end(ls, txn);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess_buf_free(&buf);
    return err;
}

/* ------------------------------------------------------------------------
 * Accounts
 * ------------------------------------------------------------------------ */

static bool
name_is_usable(struct lmdb_store *ls, struct sess_str name)
{
    return name.len > 0 && name.len <= ls->max_key;
}

static enum sess_err
lmdb_user_get(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_buf *value)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn;
    MDB_val k = mval(name.ptr, name.len), v;
    enum sess_err err;
    int rc;

    (void)now_ms; /* accounts do not expire */
    if (!name_is_usable(ls, name))
        return SESS_ENOTFOUND;
    err = read_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    rc = mdb_get(txn, ls->dbi[DB_USERS], &k, &v);
    if (rc == MDB_NOTFOUND) {
        err = SESS_ENOTFOUND;
    } else if (rc) {
        err = fail(ls, rc, "mdb_get (users)");
    } else {
        value->len = 0;
        err = sess_buf_append(value, v.mv_data, v.mv_size);
        if (err == SESS_OK)
            err = sess_buf_append(value, "", 1);
        if (err == SESS_OK)
            value->len--;
    }
    read_end(ls);
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
    MDB_val k = mval(a->name.ptr, a->name.len), v = mval(a->value.ptr, a->value.len);
    int rc = mdb_put(txn, ls->dbi[DB_USERS], &k, &v, a->must_be_new ? MDB_NOOVERWRITE : 0);

    if (rc == MDB_KEYEXIST)
        return SESS_EEXISTS;
    return rc ? fail(ls, rc, "mdb_put (users)") : SESS_OK;
}

static enum sess_err
lmdb_user_put(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str value,
              bool must_be_new)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct user_arg a = {name, value, must_be_new};

    if (!name_is_usable(ls, name))
        return SESS_EBADINPUT;
    return write_txn(ls, do_user_put, &a, now_ms, true);
}

struct user_replace_arg {
    struct sess_str name, old, value;
};

static enum sess_err
do_user_replace(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct user_replace_arg *a = arg;
    MDB_val k = mval(a->name.ptr, a->name.len), v;
    int rc = mdb_get(txn, ls->dbi[DB_USERS], &k, &v);

    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    if (rc)
        return fail(ls, rc, "mdb_get (users)");
    if (v.mv_size != a->old.len || memcmp(v.mv_data, a->old.ptr, a->old.len) != 0)
        return SESS_ECONFLICT;
    v = mval(a->value.ptr, a->value.len);
    rc = mdb_put(txn, ls->dbi[DB_USERS], &k, &v, 0);
    return rc ? fail(ls, rc, "mdb_put (users)") : SESS_OK;
}

static enum sess_err
lmdb_user_replace(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str old,
                  struct sess_str value)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct user_replace_arg a = {name, old, value};

    if (!name_is_usable(ls, name))
        return SESS_ENOTFOUND;
    return write_txn(ls, do_user_replace, &a, now_ms, true);
}

static enum sess_err
do_user_del(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    const struct user_arg *a = arg;
    MDB_val k = mval(a->name.ptr, a->name.len);
    int rc = mdb_del(txn, ls->dbi[DB_USERS], &k, NULL);

    if (rc == MDB_NOTFOUND)
        return SESS_ENOTFOUND;
    return rc ? fail(ls, rc, "mdb_del (users)") : SESS_OK;
}

static enum sess_err
lmdb_user_del(struct sess_store *st, struct sess_str name, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct user_arg a = {name, {NULL, 0}, false};

    if (!name_is_usable(ls, name))
        return SESS_ENOTFOUND;
    return write_txn(ls, do_user_del, &a, now_ms, true);
}

static enum sess_err
lmdb_user_each(struct sess_store *st, int64_t now_ms, sess_user_visit_fn visit, void *arg)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    enum sess_err err;
    int rc;

    (void)now_ms;
    err = walk_begin(ls, &txn);
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
        err = fail(ls, rc, "listing users");
    walk_end(ls, txn);
    return err;
}

/* ------------------------------------------------------------------------
 * Login throttling
 * ------------------------------------------------------------------------ */

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
    t->first_ms = get_i64((const unsigned char *)v->mv_data + THR_OFF_FIRST);
    t->until_ms = get_i64((const unsigned char *)v->mv_data + THR_OFF_UNTIL);
    return true;
}

static size_t
throttle_index_key(unsigned char out[8 + THR_HASH_BYTES], int64_t until_ms,
                   const unsigned char hash[THR_HASH_BYTES])
{
    put_be64(out, until_ms);
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
    MDB_val k = mval(a->hash, THR_HASH_BYTES), v;
    struct throttle_state old = {0};
    unsigned char value[THR_BYTES] = {0}, ikey[8 + THR_HASH_BYTES];
    bool has_old;
    enum sess_err err;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc && rc != MDB_NOTFOUND)
        return fail(ls, rc, "mdb_get (throttle)");
    has_old = rc == MDB_SUCCESS && throttle_read(&v, &old);
    if (has_old && a->now_ms < old.first_ms + a->window_ms) {
        a->state = old;
        if (a->state.count < UINT32_MAX)
            a->state.count++;
    } else {
        a->state = (struct throttle_state){1, a->now_ms, a->now_ms + a->window_ms};
    }
    memcpy(value + THR_OFF_COUNT, &a->state.count, sizeof a->state.count);
    set_i64(value + THR_OFF_FIRST, a->state.first_ms);
    set_i64(value + THR_OFF_UNTIL, a->state.until_ms);
    v = mval(value, sizeof value);
    rc = mdb_put(txn, ls->dbi[DB_THROTTLE], &k, &v, 0);
    if (rc)
        return fail(ls, rc, "mdb_put (throttle)");
    if (has_old && old.until_ms == a->state.until_ms)
        return SESS_OK;
    if (has_old) {
        err = index_del(ls, txn, DB_THROTTLE_EXPIRY, ikey,
                        throttle_index_key(ikey, old.until_ms, a->hash), NULL, 0);
        if (err != SESS_OK)
            return err;
    }
    return index_put(ls, txn, DB_THROTTLE_EXPIRY, ikey,
                     throttle_index_key(ikey, a->state.until_ms, a->hash), "", 0);
}

static enum sess_err
lmdb_throttle_hit(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
                  uint32_t *count, int64_t *first_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct throttle_arg a = {.now_ms = now_ms, .window_ms = window_ms};
    enum sess_err err;

    throttle_key(a.hash, key);
    err = write_txn(ls, do_throttle_hit, &a, now_ms, true);
    *count = err == SESS_OK ? a.state.count : 0;
    *first_ms = err == SESS_OK ? a.state.first_ms : 0;
    return err;
}

static enum sess_err
lmdb_throttle_peek(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
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
    k = mval(hash, sizeof hash);
    err = read_begin(ls, &txn);
    if (err != SESS_OK)
        return err;
    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc == MDB_SUCCESS && throttle_read(&v, &t) && now_ms < t.first_ms + window_ms) {
        *count = t.count;
        *first_ms = t.first_ms;
    } else if (rc && rc != MDB_NOTFOUND) {
        err = fail(ls, rc, "mdb_get (throttle)");
    }
    read_end(ls);
    return err;
}

static enum sess_err
do_throttle_clear(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct throttle_arg *a = arg;
    MDB_val k = mval(a->hash, THR_HASH_BYTES), v;
    struct throttle_state t;
    unsigned char ikey[8 + THR_HASH_BYTES];
    enum sess_err err = SESS_OK;
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_OK;
    if (rc)
        return fail(ls, rc, "mdb_get (throttle)");
    if (throttle_read(&v, &t))
        err = index_del(ls, txn, DB_THROTTLE_EXPIRY, ikey,
                        throttle_index_key(ikey, t.until_ms, a->hash), NULL, 0);
    if (err != SESS_OK)
        return err;
    rc = mdb_del(txn, ls->dbi[DB_THROTTLE], &k, NULL);
    return rc ? fail(ls, rc, "mdb_del (throttle)") : SESS_OK;
}

static enum sess_err
lmdb_throttle_clear(struct sess_store *st, struct sess_str key, int64_t now_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct throttle_arg a = {0};

    throttle_key(a.hash, key);
    return write_txn(ls, do_throttle_clear, &a, now_ms, true);
}

static enum sess_err
do_throttle_undo(struct lmdb_store *ls, MDB_txn *txn, void *arg)
{
    struct throttle_arg *a = arg;
    MDB_val k = mval(a->hash, THR_HASH_BYTES), v;
    struct throttle_state t;
    unsigned char value[THR_BYTES] = {0};
    int rc;

    rc = mdb_get(txn, ls->dbi[DB_THROTTLE], &k, &v);
    if (rc == MDB_NOTFOUND)
        return SESS_OK;
    if (rc)
        return fail(ls, rc, "mdb_get (throttle)");
    if (!throttle_read(&v, &t) || t.count == 0 || a->now_ms >= t.first_ms + a->window_ms)
        return SESS_OK;
    /* The window and so the expiry index stay as they are. */
    t.count--;
    memcpy(value + THR_OFF_COUNT, &t.count, sizeof t.count);
    set_i64(value + THR_OFF_FIRST, t.first_ms);
    set_i64(value + THR_OFF_UNTIL, t.until_ms);
    v = mval(value, sizeof value);
    rc = mdb_put(txn, ls->dbi[DB_THROTTLE], &k, &v, 0);
    return rc ? fail(ls, rc, "mdb_put (throttle)") : SESS_OK;
}

static enum sess_err
lmdb_throttle_undo(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms)
{
    struct lmdb_store *ls = (struct lmdb_store *)st;
    struct throttle_arg a = {.now_ms = now_ms, .window_ms = window_ms};

    throttle_key(a.hash, key);
    return write_txn(ls, do_throttle_undo, &a, now_ms, true);
}

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
    sess_combiner_close(ls->combiner);
    sess_sealer_wipe(&ls->sealer);
    sess_buf_wipe(&ls->cur);
    sess_buf_wipe(&ls->val);
    sess_buf_wipe(&ls->op);
    sodium_memzero(ls->tag_key, sizeof ls->tag_key);
    sess_buf_free(&ls->ad);
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
            return fail(ls, rc, "mdb_dbi_open");
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
sess_store_lmdb_open(struct sess_store **st, const char *dir, const struct sess_config *cfg,
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
        sess_fmt(errmsg, errmsg_len, "lmdb %s: out of memory", dir);
        return SESS_ENOMEM;
    }
    memcpy(ls->dir, dir, strlen(dir) + 1);
    ls->base.ops = &lmdb_ops;
    ls->is_sealing = cfg->encrypt != SESS_ENCRYPT_NO;
    if (ls->is_sealing && secrets->count == 0) {
        sess_fmt(errmsg, errmsg_len, "lmdb %s: encrypt needs at least one secret in secret_file",
                 dir);
        err = SESS_ECONFIG;
        goto out;
    }
    sess_sealer_init(&ls->sealer, secrets);

    rc = make_dirs(dir);
    if (rc == 0 && access(dir, W_OK | X_OK) != 0)
        rc = errno;
    if (rc) {
        sess_fmt(errmsg, errmsg_len,
                 "lmdb %s: %s (as uid %ld: create the directory and give it to the user the "
                 "FastCGI processes and sessctl run as, or point store = lmdb:DIR elsewhere)",
                 dir, strerror(rc), (long)geteuid());
        err = SESS_ECONFIG;
        goto out;
    }
    sess_fmt(data_path, sizeof data_path, "%s/data.mdb", dir);
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
        sess_fmt(errmsg, errmsg_len, "lmdb %s: mdb_env_create: %s", dir, mdb_strerror(rc));
        goto out;
    }
    /* MDB_NOTLS: reader slots belong to transaction handles, so the renewed
     * read handle keeps its slot. Never MDB_NOMEMINIT: freed pages would
     * keep old bytes. */
    rc = mdb_env_open(ls->env, dir, MDB_NOTLS | sync_flags(cfg->lmdb_sync), 0600);
    if (rc) {
        sess_fmt(errmsg, errmsg_len, "lmdb %s: mdb_env_open: %s%s", dir, mdb_strerror(rc),
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
            sess_fmt(errmsg, errmsg_len, "lmdb %s: mdb_env_set_mapsize: %s", dir, mdb_strerror(rc));
            goto out;
        }
    }
    /* Slots of processes that died inside a read txn would pin pages. */
    mdb_reader_check(ls->env, &dead);
    ls->max_key = (size_t)mdb_env_get_maxkeysize(ls->env);

    err = write_txn(ls, do_open_dbs, NULL, 0, true);
    if (err != SESS_OK) {
        sess_fmt(errmsg, errmsg_len, "%s", ls->base.errmsg);
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
    .gc_batch_max = GC_ADMIN_BATCH,
    .get = lmdb_get,
    .create = lmdb_create,
    .update = lmdb_update,
    .touch = lmdb_touch,
    .destroy = lmdb_destroy,
    .destroy_owner = lmdb_destroy_owner,
    .gc = lmdb_gc,
    .gc_if_due = lmdb_gc_if_due,
    .stats = lmdb_stats,
    .each = lmdb_each,
    .user_get = lmdb_user_get,
    .user_put = lmdb_user_put,
    .user_replace = lmdb_user_replace,
    .user_del = lmdb_user_del,
    .user_each = lmdb_user_each,
    .throttle_hit = lmdb_throttle_hit,
    .throttle_peek = lmdb_throttle_peek,
    .throttle_clear = lmdb_throttle_clear,
    .throttle_undo = lmdb_throttle_undo,
    .close = lmdb_close,
};
