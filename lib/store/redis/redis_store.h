/* The Redis store's private header, for its own files only: the layout of
 * the keys, the store's state, and what each file offers the others.
 *
 *   codec.c     records to values and back, no I/O (redis_codec.h)
 *   conn.c      connecting (sentinels, AUTH, SELECT), running commands,
 *               retries after a stale connection, timeouts, WAIT
 *   scan.c      walking every session: listing, gc, statistics
 *   owners.c    the per-user index: listing and revoking a user's sessions
 *   sessions.c  one session: get, create, update, touch, destroy
 *   accounts.c  accounts and login throttles
 *   open.c      opening and closing, and the table of operations
 *
 * A file calls only those above it in this list (make lint checks that
 * none call each other round in a cycle). Internal names start with rs_;
 * the only public one is sess__store_redis_open (store.h). */
#ifndef RS_STORE_H
#define RS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "base.h"
#include "redis_codec.h"
#include "redis_url.h"
#include "store.h"

/* connect-redis's layout: key redis_prefix + id ("sess:" by default), the
 * session JSON as the value, the key's TTL as the idle expiry. What is ours
 * alone lives under "fcgi-session:", outside the prefix, where
 * connect-redis's all() and length(), which walk PREFIX*, never see it. */
#define RS_DEFAULT_PREFIX "sess:"
#define RS_PREFIX_MAX     64 /* config.c's bound on redis_prefix */
#define RS_KEY_MAX        (RS_PREFIX_MAX + 1 + SESS_ID_MAX_LEN)
/* The sessions of one user: a set of ids under RS_INDEX_PREFIX + prefix +
 * "user:" + name (owners.c). */
#define RS_INDEX_PREFIX    "fcgi-session:"
#define RS_USERS_KEY       "fcgi-session:users" /* a hash, name -> account JSON */
#define RS_THROTTLE_PREFIX "fcgi-session:throttle:"
#define RS_GC_LOCK_KEY     "fcgi-session:gc:lock"
#define RS_GC_CURSOR_KEY   "fcgi-session:gc:cursor"
/* connect-redis's scanCount: each SCAN step stays short for the server. */
#define RS_SCAN_COUNT "100"

/* One command as counted arguments: every key and value goes as one,
 * never formatted into a command line. */
#define RS_CMD_ARGS_MAX 8
struct rs_cmd {
    int argc;
    const char *argv[RS_CMD_ARGS_MAX];
    size_t len[RS_CMD_ARGS_MAX];
};

struct redis_store {
    struct sess_store base; /* first: the generic code sees only this */
    redisContext *c;        /* NULL while disconnected */

    /* Where: the URL (socket, user, password, database, the sentinels and
     * the master's name), and the server to connect to, which with
     * sentinels is the master they named last. */
    struct sess_redis_url url;
    size_t sentinel_next; /* the sentinel to ask first: the last that answered */
    char *host;           /* NULL with a unix socket, or before a sentinel answered */
    int port;
    struct timeval timeout; /* connect and each command */
    char where[160];        /* "redis HOST:PORT/DB", never the password (rs_describe) */

    /* Reconnecting (conn.c). */
    int64_t retry_at_ms; /* monotonic: no connection attempt before this */
    int64_t backoff_ms;  /* the current wait after a failed attempt; 0 when up */
    bool is_reused;      /* the connection has answered before */
    bool may_retry;      /* the last failure was a stale connection: try a new one at once */
    bool is_refused;     /* the server refused AUTH or SELECT */
    /* The last failure came after a command was sent: it may have run. */
    bool is_unsure;
    int64_t used_ms;                    /* monotonic: when the connection last answered */
    char down_msg[SESS_ERRMSG_MAX / 2]; /* why the last attempt failed */
    int min_replicas;                   /* redis_min_replicas: WAIT for this many */
    int64_t wait_ms;                    /* WAIT's timeout */

    struct rs_codec codec; /* values, and the keys that seal them */

    char prefix[RS_PREFIX_MAX + 1]; /* redis_prefix */
    size_t prefix_len;
    char pattern[RS_PREFIX_MAX + 2]; /* prefix + "*", for SCAN */

    /* Sessions (sessions.c). */
    struct sess_buf cur;     /* update: the current record */
    struct sess_buf idx;     /* an index key being built */
    struct sess_buf idx_old; /* update: the index of the owner before */
    bool is_val_sent;        /* codec.val went out in an EXEC whose reply was lost */
    int lost_in_a_row;       /* updates refused in a row because what they read changed */
    /* The owner of the session the last get read, for touch (which is not
     * told) to keep that owner's index alive. */
    char seen_id[SESS_ID_MAX_LEN];
    size_t seen_id_len;
    struct sess_buf seen_owner;

    /* gc (scan.c). */
    int64_t gc_check_ms; /* before this, gc_if_due does not even look */
    char gc_cursor[24];  /* where sessctl's gc walk is; "0" at the start */
};

/* --- conn.c: the connection and the commands ---------------------------- */

void rs_cmd_name(struct rs_cmd *c, const char *name);
void rs_cmd_arg(struct rs_cmd *c, const void *ptr, size_t len);
void rs_cmd_str(struct rs_cmd *c, const char *s);
/* Appends the decimal form of `v`, kept in `buf` until sent. */
void rs_cmd_i64(struct rs_cmd *c, char buf[24], int64_t v);

/* Inline, so that the analyzers (make lint) see that a NULL reply is no
 * reply of any type. */
static inline bool
rs_reply_is(const redisReply *r, int type)
{
    return r != NULL && r->type == type;
}
/* Frees r[0..n) and sets them NULL. */
void rs_replies_free(redisReply **r, size_t n);

/* rs->where from what is known of the server: for messages, never with the
 * password. */
void rs_describe(struct redis_store *rs);
int64_t rs_timeout_ms(const struct redis_store *rs);

/* The process's connection, made now if there is none and the back-off
 * allows; with sentinels, to the master they name now. SESS_EUNAVAIL
 * (rs->is_refused when AUTH or SELECT was refused). */
enum sess_err rs_connection(struct redis_store *rs) SESS_MUST_CHECK;
/* Sends `n` commands in one write and reads their `n` replies into `out`
 * (freed by the caller with rs_replies_free, also on failure). A
 * connection that fails is dropped: SESS_EUNAVAIL, rs->is_unsure when the
 * commands may have run. */
enum sess_err rs_roundtrip(struct redis_store *rs, struct rs_cmd *cmds, size_t n,
                           redisReply **out) SESS_MUST_CHECK;
enum sess_err rs_command(struct redis_store *rs, struct rs_cmd *c,
                         redisReply **out) SESS_MUST_CHECK;
/* The error for an unexpected reply `r` (NULL: none) to `doing`, in
 * rs->base.errmsg: SESS_EUNAVAIL for a busy, loading or read-only server,
 * SESS_EFULL for OOM, else SESS_ESTORE. */
enum sess_err rs_reply_error(struct redis_store *rs, const redisReply *r, const char *doing);
/* The replies of MULTI, `queued` commands and EXEC in r[0..queued+1]: an
 * error where a command was queued or in EXEC's array is the failure.
 * SESS_OK leaves EXEC's array (or nil, after a WATCH) in r[queued + 1]. */
enum sess_err rs_exec_replies(struct redis_store *rs, redisReply **r, size_t queued,
                              const struct rs_cmd *cmds);

/* Whether to run an operation once more: only after a stale connection
 * (or a replica that refused a write), only once. An operation whose
 * command may have run (rs->is_unsure) must be idempotent, or check what
 * is stored before doing it again. */
bool rs_again(struct redis_store *rs, enum sess_err err, int *attempt);
/* For a command that must not run twice: a connection idle for a while is
 * PINGed first, and made again if stale. */
enum sess_err rs_fresh_connection(struct redis_store *rs) SESS_MUST_CHECK;

/* WAIT for redis_min_replicas after the writes of a pipeline: appended to
 * `cmds` at `*n` when asked for (the numbers' text kept in `buf`). */
void rs_add_wait(struct redis_store *rs, struct rs_cmd *cmds, size_t *n, char buf[2][24]);
/* The reply to rs_add_wait's WAIT (SESS_OK when none was added): fewer
 * replicas than asked is SESS_EUNAVAIL. */
enum sess_err rs_check_wait(struct redis_store *rs, const redisReply *r);

/* `verb` (DEL, or SREM with `set`) of `n` keys or members in one command;
 * *deleted says how many existed. */
enum sess_err rs_keys_command(struct redis_store *rs, const char *verb, struct sess_str set,
                              const char *const *keys, const size_t *lens, size_t n,
                              size_t *deleted) SESS_MUST_CHECK;
enum sess_err rs_delete_keys(struct redis_store *rs, const char *const *keys, const size_t *lens,
                             size_t n, size_t *deleted) SESS_MUST_CHECK;
/* DEL of one key, then WAIT if asked. */
enum sess_err rs_delete_key(struct redis_store *rs, const char *key,
                            size_t key_len) SESS_MUST_CHECK;
/* After a create or account write whose reply was lost, the retry found
 * the key taken (`err`): SESS_OK if it holds the very bytes `val` we sent,
 * written again to be WAITed for; else `err`. `hash`: the field `key` of
 * that hash, else the key itself. */
enum sess_err rs_stored_is_ours(struct redis_store *rs, const char *hash, const char *key,
                                size_t key_len, struct sess_str val, enum sess_err err);

/* --- scan.c: every session ----------------------------------------------- */

/* Deletes every session `owner` is logged into, found by SCAN (sessctl
 * --scan): also those an Express app logged in, which our index never saw. */
enum sess_err rs_scan_destroy_owner(struct redis_store *rs, struct sess_str owner, size_t *count);
/* Every session, or with `owner` those it is logged into (our record or
 * the data's user.username), to `visit` until it returns false. */
enum sess_err rs_scan_each(struct redis_store *rs, struct sess_str owner, int64_t now_ms,
                           sess_record_visit_fn visit, void *arg);
enum sess_err rs_gc(struct sess_store *st, int64_t now_ms, size_t max, size_t *purged, bool *more);
void rs_gc_if_due(struct sess_store *st, int64_t now_ms);
enum sess_err rs_stats(struct sess_store *st, int64_t now_ms, struct sess_store_stats *out);

/* --- owners.c: the per-user index ---------------------------------------- */

/* The key of `owner`'s index, in `out`. */
enum sess_err rs_index_key(const struct redis_store *rs, struct sess_buf *out,
                           struct sess_str owner) SESS_MUST_CHECK;
/* Builds in `c` the index update for session `id` of `owner` living
 * `ttl_s`: the set's key kept in rs->idx, the TTL text in `buf`. */
enum sess_err rs_index_add(struct redis_store *rs, struct rs_cmd *c, struct sess_str id,
                           struct sess_str owner, int64_t ttl_s, char buf[24]) SESS_MUST_CHECK;
/* The operations on one user's sessions: through the index, or through
 * scan.c when st->is_owner_scan (sessctl --scan); rs_each without an owner
 * is scan.c's walk. */
enum sess_err rs_destroy_owner(struct sess_store *st, struct sess_str owner, int64_t now_ms,
                               size_t *count);
enum sess_err rs_each(struct sess_store *st, struct sess_str owner, int64_t now_ms,
                      sess_record_visit_fn visit, void *arg);

/* --- sessions.c: one session --------------------------------------------- */

/* The key of session `id` (1 to SESS_ID_MAX_LEN bytes) in `out`; its
 * length. Inline here: owners.c names session keys too, and calls nothing
 * in sessions.c. */
static inline size_t
rs_session_key(const struct redis_store *rs, char out[RS_KEY_MAX], struct sess_str id)
{
    memcpy(out, rs->prefix, rs->prefix_len);
    memcpy(out + rs->prefix_len, id.ptr, id.len);
    return rs->prefix_len + id.len;
}

enum sess_err rs_get(struct sess_store *st, struct sess_str id, int64_t now_ms,
                     struct sess_record *out, struct sess_buf *buf);
enum sess_err rs_create(struct sess_store *st, struct sess_str id, int64_t now_ms,
                        const struct sess_record *rec);
enum sess_err rs_update(struct sess_store *st, struct sess_str id, int64_t now_ms,
                        struct sess_patch *patch);
enum sess_err rs_touch(struct sess_store *st, struct sess_str id, int64_t now_ms,
                       int64_t expires_ms);
enum sess_err rs_destroy(struct sess_store *st, struct sess_str id, int64_t now_ms);

/* --- accounts.c: accounts and login throttles ----------------------------- */

enum sess_err rs_user_get(struct sess_store *st, struct sess_str name, int64_t now_ms,
                          struct sess_buf *value);
enum sess_err rs_user_put(struct sess_store *st, struct sess_str name, int64_t now_ms,
                          struct sess_str value, bool must_be_new);
enum sess_err rs_user_del(struct sess_store *st, struct sess_str name, int64_t now_ms);
enum sess_err rs_user_replace(struct sess_store *st, struct sess_str name, int64_t now_ms,
                              struct sess_str old, struct sess_str value);
enum sess_err rs_user_each(struct sess_store *st, int64_t now_ms, sess_user_visit_fn visit,
                           void *arg);
enum sess_err rs_throttle_hit(struct sess_store *st, struct sess_str key, int64_t now_ms,
                              int64_t window_ms, uint32_t *count, int64_t *first_ms);
enum sess_err rs_throttle_peek(struct sess_store *st, struct sess_str key, int64_t now_ms,
                               int64_t window_ms, uint32_t *count, int64_t *first_ms);
enum sess_err rs_throttle_clear(struct sess_store *st, struct sess_str key, int64_t now_ms);
enum sess_err rs_throttle_undo(struct sess_store *st, struct sess_str key, int64_t now_ms,
                               int64_t window_ms);

#endif
