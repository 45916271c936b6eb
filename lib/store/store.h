/* The store interface: where sessions, accounts and login-failure counters
 * live. Two implementations: lmdb/ (one machine, embedded) and
 * redis/ (several machines). Session records travel as plaintext
 * JSON; sealing at rest is the store's business (seal.c). Internal to lib/. */
#ifndef SESS_STORE_H
#define SESS_STORE_H

#include "buf.h"
#include "seal.h"
#include "sess_util.h"

#define SESS_HANDLE_BYTES       16 /* a session's public handle */
#define SESS_RECORD_NONCE_BYTES 16

/* One stored session. A record built by hand starts zeroed: every field
 * after `data` then means "default" or "none". */
struct sess_record {
    int64_t expires_ms;    /* idle expiry, Unix ms; the record is dead at or after it */
    int64_t deadline_ms;   /* absolute timeout, Unix ms; 0 = none */
    int64_t created_ms;    /* creation or last regenerate */
    struct sess_str owner; /* username, for destroy-all-for-user; may be empty */
    struct sess_str data;  /* the session JSON as express-session stores it */

    /* Per-session settings and client metadata (LMDB: record format 2;
     * Redis: the value's "_fcgi" object, redis/codec.c). Views borrow like
     * `owner`. */
    int64_t idle_ms;                         /* this session's idle lifetime; 0 = max_age */
    int64_t lifetime_ms;                     /* its absolute lifetime; 0 = absolute_timeout */
    bool is_remembered;                      /* "remember me": a persistent cookie */
    bool has_handle;                         /* `handle` is set */
    unsigned char handle[SESS_HANDLE_BYTES]; /* public, non-secret name of the session */
    struct sess_str client_addr; /* where it was created or last saved from; may be empty */
    struct sess_str user_agent;  /* may be empty */
    int64_t last_seen_ms;        /* last save or touch; 0 = unknown */

    /* Maintained by the store (LMDB): what binds a sealed payload to this
     * record and this version of it. A new record gets a fresh random
     * nonce and generation 1 whatever these hold; an update keeps the nonce
     * of the record it read and writes generation + 1. */
    unsigned char nonce[SESS_RECORD_NONCE_BYTES];
    uint64_t generation;

    /* Set by get: names the stored bytes it read, so that an update in this
     * process can tell they are still the ones stored (0: no such tag). */
    uint64_t read_tag;
};

/* The one rule of when a record dies, for every store and its callers
 * (record.c): at its idle expiry, or at its absolute deadline (0: none)
 * if that comes first. A record is live while now is before that instant. */
int64_t sess__record_expiry_ms(int64_t expires_ms, int64_t deadline_ms);
bool sess__record_is_live(const struct sess_record *rec, int64_t now_ms);

/* A session update as data (session.c): the keys this request set, "cookie"
 * among them, and the keys it deleted, laid over the record as stored when
 * the write transaction runs; and what the request read, checked against
 * that record first. If a key it read no longer holds the value it read,
 * the merge is SESS_ECONFLICT and nothing is written: the request runs
 * again on the fresh record (concurrent requests of one session are
 * serializable: README, "Parallel requests of one session"). Keys written without being read merge as they are.
 * Being data, it can be carried to another process and written there in a
 * shared transaction (LMDB's group commit, combine.c), where each patch is
 * checked against the state the batch's earlier ones left. */
struct sess_patch {
    int64_t expires_ms; /* the new idle expiry */
    json_t *set;        /* key -> value */
    json_t *del;        /* key -> true */
    json_t *read;       /* key -> the value the request read; may be NULL */
    json_t *absent;     /* key -> true: read, and absent; may be NULL */
    uint64_t read_tag;  /* the loaded record's read_tag, or 0 */
    /* The whole session as the request holds it (what it loaded, with the
     * changes above; borrowed), or NULL. A store that knows the record is
     * still the one that request loaded (its read_tag is the one get gave)
     * may pass `current` with empty data: the result is then this, with the
     * new cookie, and nothing is parsed. */
    json_t *whole;
    json_t *merged; /* sess__patch_merge's result, kept for `next`'s views */
    char *text;

    /* Laid over the record's own fields (store.h, struct sess_record): the
     * request's sighting of the client (each when set), a handle for a
     * record that has none, and the session's lifetime when the request
     * changed it (sess_set_max_age). Views borrow from the request, or
     * from `meta` after sess__patch_parse. */
    int64_t last_seen_ms;
    struct sess_str client_addr;
    struct sess_str user_agent;
    bool has_handle;
    unsigned char handle[SESS_HANDLE_BYTES];
    bool has_lifetime;
    bool is_remembered;
    int64_t idle_ms, lifetime_ms, deadline_ms;
    json_t *meta;
};

/* The username a session's data is logged in as (data.user.username), ""
 * if none; borrowed from `data`. The record's owner, for revoke --user. */
struct sess_str sess__data_owner(json_t *data);

/* Lays `patch` over `current`, the live record as stored, into `next`,
 * whose views borrow from `current` and from the patch (patch->text) until
 * the patch is merged again or freed. SESS_ECONFLICT when a key the
 * request read has changed, SESS_ENOTFOUND when the stored data is not a
 * JSON object; nothing is to be written then. Called by a store inside its
 * write, and again with a fresh `current` whenever the store retries it
 * (LMDB: after making room in a full map; Redis: after a lost race): it
 * depends on nothing but its arguments. */
enum sess_err sess__patch_merge(struct sess_patch *patch, const struct sess_record *current,
                                struct sess_record *next) SESS_MUST_CHECK;
/* The patch as one JSON text, {"set":{...},"del":{...},"read":{...},
 * "absent":{...},"meta":{...}}; malloc'd, NULL
 * when out of memory. */
char *sess__patch_dump(const struct sess_patch *patch);
/* Reads what sess__patch_dump wrote. SESS_EBADINPUT if it is not that. */
enum sess_err sess__patch_parse(struct sess_patch *patch, const char *text, size_t len,
                                int64_t expires_ms) SESS_MUST_CHECK;
void sess__patch_free(struct sess_patch *patch);

struct sess_store_stats {
    uint64_t sessions; /* records, live or not */
    uint64_t expired;  /* of which dead, awaiting gc */
    uint64_t users;
    uint64_t owners;           /* distinct usernames with sessions */
    int64_t oldest_created_ms; /* 0 without sessions */
    int64_t newest_created_ms;
    uint64_t map_size_bytes; /* LMDB: map size; 0 elsewhere */
    uint64_t map_used_bytes; /* LMDB: pages in use x page size */
    uint64_t readers_used;
    uint64_t readers_max;
};

/* A visitor for sessctl: return false to stop. Views valid during the call. */
typedef bool (*sess_record_visit_fn)(void *arg, struct sess_str id, const struct sess_record *rec);
typedef bool (*sess_user_visit_fn)(void *arg, struct sess_str name, struct sess_str value);

/* gc: at most this many records per batch on the request path (and when a
 * full LMDB map needs room). */
#define SESS_GC_BATCH 256

struct sess_store;

struct sess_store_ops {
    const char *kind; /* "lmdb", "redis" */
    /* Dead records per gc batch when sessctl purges (sess_gc): what suits
     * the store's unit of work (LMDB: one transaction and its fsync; Redis:
     * one SCAN step). The request path's gc_if_due takes SESS_GC_BATCH. */
    size_t gc_batch_max;

    /* Every call takes the caller's clock, `now_ms` (Unix ms), for all it
     * decides by time: liveness, expiry, the map's recovery by gc (LMDB),
     * TTLs (Redis). A store never reads a clock of its own. */

    /* Copies the live record of `id` into `out`, its views borrowing from
     * `buf` (whose previous contents are replaced; owner and data, and
     * client_addr and user_agent when not empty, are followed by a NUL).
     * SESS_ENOTFOUND if absent, dead, or unreadable (a corrupt or foreign
     * value is logged by the caller as not found, never a 500). */
    enum sess_err (*get)(struct sess_store *st, struct sess_str id, int64_t now_ms,
                         struct sess_record *out, struct sess_buf *buf);
    /* Stores a new record. SESS_EEXISTS if the id is taken. */
    enum sess_err (*create)(struct sess_store *st, struct sess_str id, int64_t now_ms,
                            const struct sess_record *rec);
    /* Lays `patch` over the live record in one transaction (sess__patch_merge,
     * which may run more than once). SESS_ENOTFOUND (never re-created) if
     * the record is absent or dead; SESS_ECONFLICT, nothing written, if a
     * key the patch read has changed. `patch` stays the caller's. */
    enum sess_err (*update)(struct sess_store *st, struct sess_str id, int64_t now_ms,
                            struct sess_patch *patch);
    /* Moves the expiry of a live record, leaving its data alone. */
    enum sess_err (*touch)(struct sess_store *st, struct sess_str id, int64_t now_ms,
                           int64_t expires_ms);
    /* SESS_OK also when it was already gone. */
    enum sess_err (*destroy)(struct sess_store *st, struct sess_str id, int64_t now_ms);
    /* Destroys every session owned by `owner`; *count says how many. */
    enum sess_err (*destroy_owner)(struct sess_store *st, struct sess_str owner, int64_t now_ms,
                                   size_t *count);
    /* Deletes at most `max` dead records (and stale throttle counters);
     * *more is true when more may remain. */
    enum sess_err (*gc)(struct sess_store *st, int64_t now_ms, size_t max, size_t *purged,
                        bool *more);
    /* A bounded gc batch if one is due (at most one process per interval,
     * decided through the store); cheap when not due. Called after a response
     * has gone out. */
    void (*gc_if_due)(struct sess_store *st, int64_t now_ms);
    enum sess_err (*stats)(struct sess_store *st, int64_t now_ms, struct sess_store_stats *out);
    /* Visits every record (owner non-empty only if `owner.len`). */
    enum sess_err (*each)(struct sess_store *st, struct sess_str owner, int64_t now_ms,
                          sess_record_visit_fn visit, void *arg);

    /* Accounts: `value` is the account's JSON ({"role":..,"hash":..});
     * user_get replaces the contents of `value`, NUL-terminated after its
     * length. user_put with `must_be_new` is SESS_EEXISTS when the name is
     * taken, checked and written in one step: of two concurrent creations
     * of one name, one fails. */
    enum sess_err (*user_get)(struct sess_store *st, struct sess_str name, int64_t now_ms,
                              struct sess_buf *value);
    enum sess_err (*user_put)(struct sess_store *st, struct sess_str name, int64_t now_ms,
                              struct sess_str value, bool must_be_new);
    enum sess_err (*user_del)(struct sess_store *st, struct sess_str name, int64_t now_ms);
    /* Replaces the account only while it still holds `old`, checked and
     * written in one step: SESS_ENOTFOUND when it is gone (it is never
     * re-created), SESS_ECONFLICT when it changed meanwhile. For writes
     * that must not undo a concurrent userdel or password change (the
     * rehash on login). */
    enum sess_err (*user_replace)(struct sess_store *st, struct sess_str name, int64_t now_ms,
                                  struct sess_str old, struct sess_str value);
    enum sess_err (*user_each)(struct sess_store *st, int64_t now_ms, sess_user_visit_fn visit,
                               void *arg);

    /* Login-failure counters in a fixed window that starts at the first
     * failure. `key` is any bytes (hashed to fit the store's key limit).
     * hit: count one attempt, return the new count and the window start.
     * peek: the current count (0 when none or the window has passed).
     * clear: forget the key. */
    enum sess_err (*throttle_hit)(struct sess_store *st, struct sess_str key, int64_t now_ms,
                                  int64_t window_ms, uint32_t *count, int64_t *first_ms);
    enum sess_err (*throttle_peek)(struct sess_store *st, struct sess_str key, int64_t now_ms,
                                   int64_t window_ms, uint32_t *count, int64_t *first_ms);
    enum sess_err (*throttle_clear)(struct sess_store *st, struct sess_str key, int64_t now_ms);
    /* undo: takes back one hit of a window that is still open (the attempt
     * a good login had reserved); nothing when the key is gone or at 0. */
    enum sess_err (*throttle_undo)(struct sess_store *st, struct sess_str key, int64_t now_ms,
                                   int64_t window_ms);

    void (*close)(struct sess_store *st);
};

/* Every store begins with this, so the generic code reaches the ops. */
struct sess_store {
    const struct sess_store_ops *ops;
    char errmsg[SESS_ERRMSG_MAX]; /* the last failure, specific */
    /* What a call that succeeded had to skip (corrupt index entries), for
     * sessctl to report; the caller clears it before the call. */
    char warning[SESS_ERRMSG_MAX];
    /* Set by sessctl --scan: `each` with an owner and `destroy_owner` walk
     * every session instead of the store's index of owners (Redis: which
     * an Express app sharing the store never writes to). */
    bool is_owner_scan;
};

/* Opens the store named by cfg->store ("lmdb:DIR", "redis://...",
 * "unix:/path"). The keys for sealing come from `secrets` (all tried on
 * read, the first seals). Must be called after any fork (LMDB). */
enum sess_err sess__store_open(struct sess_store **st, const struct sess_config *cfg,
                               const struct sess_secrets *secrets, char *errmsg,
                               size_t errmsg_len) SESS_MUST_CHECK;
void sess__store_close(struct sess_store *st);

enum sess_err sess__store_lmdb_open(struct sess_store **st, const char *dir,
                                    const struct sess_config *cfg,
                                    const struct sess_secrets *secrets, char *errmsg,
                                    size_t errmsg_len) SESS_MUST_CHECK;
enum sess_err sess__store_redis_open(struct sess_store **st, const char *url,
                                     const struct sess_config *cfg,
                                     const struct sess_secrets *secrets, char *errmsg,
                                     size_t errmsg_len) SESS_MUST_CHECK;

#endif
