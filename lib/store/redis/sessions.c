/* One session in the Redis store (redis_store.h): get, create, update with
 * WATCH/MULTI/EXEC, touch and destroy, each a key in connect-redis's
 * layout whose TTL is the idle expiry, with the owner's index written in
 * the same transaction. The values are codec.c's, the index's key and
 * script owners.c's, the connection and its retries conn.c's. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "redis_store.h"

/* Optimistic transactions on one session: a conflict means another request
 * wrote it between our read and our write. Two or three are rare; this many
 * means something keeps writing it in a loop. */
#define UPDATE_ATTEMPTS 32

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

/* What the replies to GET and PTTL of a session key say: SESS_OK with a
 * value and its TTL, SESS_ENOTFOUND, or the server's error (never "not
 * found" for a server that cannot answer: that would log users out). */
static enum sess_err
session_replies(struct redis_store *rs, const redisReply *value, const redisReply *pttl)
{
    if (rs_reply_is(value, REDIS_REPLY_ERROR)) {
        /* WRONGTYPE: something else sits under our key; not a session. */
        if (rs_has_prefix(value->str, value->len, "WRONGTYPE"))
            return SESS_ENOTFOUND;
        return rs_reply_error(rs, value, "GET");
    }
    if (rs_reply_is(value, REDIS_REPLY_NIL))
        return SESS_ENOTFOUND;
    if (!rs_reply_is(value, REDIS_REPLY_STRING))
        return rs_reply_error(rs, NULL, "GET");
    if (!rs_reply_is(pttl, REDIS_REPLY_INTEGER))
        return rs_reply_error(rs, pttl, "PTTL");
    /* -2: expired between the two commands. */
    return pttl->integer == -2 ? SESS_ENOTFOUND : SESS_OK;
}

/* The record in the replies `value` and `pttl` (session_replies said
 * SESS_OK), live at now_ms; a value we may not read is not found, with the
 * reason in the store's message. */
static enum sess_err
decode_live(struct redis_store *rs, struct sess_str id, const redisReply *value,
            const redisReply *pttl, int64_t now_ms, struct sess_record *out, struct sess_buf *buf,
            bool *has_meta)
{
    enum sess_err err = rs_value_decode(&rs->codec, id, (struct sess_str){value->str, value->len},
                                        now_ms, pttl->integer, out, buf, has_meta);

    if (err == SESS_ENOTFOUND && rs->codec.why)
        sess__fmt(rs->base.errmsg, sizeof rs->base.errmsg, "%s: %s; ignored", rs->where,
                  rs->codec.why);
    /* Past the absolute deadline, though an Express app kept it alive. */
    if (err == SESS_OK && !sess__record_is_live(out, now_ms))
        err = SESS_ENOTFOUND;
    return err;
}

/* Stores `rec`'s metadata into a value Express made, `raw`, unless it has
 * changed since it was read (then the next reading tries again), keeping
 * its TTL: from then on the value carries the deadline rs_value_decode
 * gave it. A failure costs nothing but that: this reading has its
 * deadline. */
#define STAMP_SCRIPT                                                                               \
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "                                  \
    "local t = redis.call('PTTL', KEYS[1]) "                                                       \
    "if t > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', t) "                                  \
    "else redis.call('SET', KEYS[1], ARGV[2]) end "                                                \
    "return 1"

static void
stamp_express_value(struct redis_store *rs, struct sess_str id, const char *key, size_t key_len,
                    struct sess_str raw, const struct sess_record *rec)
{
    struct rs_cmd c;
    redisReply *r = NULL;
    enum sess_err err;

    if (rs_value_encode(&rs->codec, id, rec) != SESS_OK)
        return;
    rs_cmd_name(&c, "EVAL");
    rs_cmd_str(&c, STAMP_SCRIPT);
    rs_cmd_str(&c, "1");
    rs_cmd_arg(&c, key, key_len);
    rs_cmd_arg(&c, raw.ptr, raw.len);
    rs_cmd_arg(&c, rs->codec.val.ptr, rs->codec.val.len);
    err = rs_command(rs, &c, &r);
    (void)err; /* the next reading tries again */
    rs_replies_free(&r, 1);
}

/* Remembers who owns the session get just read, for touch. */
static void
remember_owner(struct redis_store *rs, struct sess_str id, struct sess_str owner)
{
    rs->seen_id_len = 0;
    rs->seen_owner.len = 0;
    if (sess__buf_append(&rs->seen_owner, owner.ptr, owner.len) != SESS_OK)
        return;
    memcpy(rs->seen_id, id.ptr, id.len);
    rs->seen_id_len = id.len;
}

static enum sess_err
get_once(struct redis_store *rs, struct sess_str id, int64_t now_ms, struct sess_record *out,
         struct sess_buf *buf)
{
    char key[RS_KEY_MAX];
    size_t key_len = rs_session_key(rs, key, id);
    struct rs_cmd cmds[2];
    redisReply *r[2];
    enum sess_err err;
    bool has_meta = true;

    rs_cmd_name(&cmds[0], "GET");
    rs_cmd_arg(&cmds[0], key, key_len);
    rs_cmd_name(&cmds[1], "PTTL");
    rs_cmd_arg(&cmds[1], key, key_len);
    err = rs_roundtrip(rs, cmds, 2, r);
    if (err == SESS_OK)
        err = session_replies(rs, r[0], r[1]);
    if (err == SESS_OK)
        err = decode_live(rs, id, r[0], r[1], now_ms, out, buf, &has_meta);
    if (err == SESS_OK && !has_meta && rs->codec.absolute_ms)
        stamp_express_value(rs, id, key, key_len, (struct sess_str){r[0]->str, r[0]->len}, out);
    if (err == SESS_OK)
        remember_owner(rs, id, out->owner);
    rs_replies_free(r, 2);
    return err;
}

enum sess_err
rs_get(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_record *out,
       struct sess_buf *buf)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    if (!rs_id_is_usable(id))
        return SESS_ENOTFOUND;
    do
        err = get_once(rs, id, now_ms, out, buf);
    while (rs_again(rs, err, &attempt));
    return err;
}

/* ------------------------------------------------------------------------
 * Writing: one command on the key, and the indexes with it
 * ------------------------------------------------------------------------ */

/* What a write of session `id` does to the per-user indexes. */
struct index_change {
    struct sess_str id;
    struct sess_str owner;     /* whose index gets the id, kept past ttl_s; empty: none */
    int64_t ttl_s;             /* how long the session now lives */
    struct sess_str old_owner; /* whose index loses it (logged out, someone else); empty: none */
};

/* Judges the reply to the write itself; SESS_OK to go on to WAIT. */
typedef enum sess_err (*reply_check_fn)(struct redis_store *rs, const redisReply *r);

/* `op`, a write of one session key, in one round trip: alone, or with the
 * index changes inside MULTI/EXEC so that both land or neither does
 * (always after a WATCH, which only EXEC checks: *is_conflict then says
 * whether the key changed since and nothing was written), then WAIT when
 * redis_min_replicas asks. `check` (may be NULL) judges op's reply. */
static enum sess_err
write_session(struct redis_store *rs, const struct rs_cmd *op, const struct index_change *ix,
              bool is_watched, reply_check_fn check, bool *is_conflict)
{
    struct rs_cmd cmds[6];
    redisReply *r[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    char idx_ttl[24], wait[2][24];
    const redisReply *res, *ex;
    bool is_multi = is_watched || ix->owner.len || ix->old_owner.len;
    size_t n = 0, queued = 0;
    enum sess_err err = SESS_OK;

    if (is_multi)
        rs_cmd_name(&cmds[n++], "MULTI");
    cmds[n++] = *op;
    if (ix->owner.len)
        err = rs_index_add(rs, &cmds[n++], ix->id, ix->owner, ix->ttl_s, idx_ttl);
    if (err == SESS_OK && ix->old_owner.len) {
        err = rs_index_key(rs, &rs->idx_old, ix->old_owner);
        rs_cmd_name(&cmds[n], "SREM");
        rs_cmd_arg(&cmds[n], rs->idx_old.ptr, rs->idx_old.len);
        rs_cmd_arg(&cmds[n++], ix->id.ptr, ix->id.len);
    }
    if (err != SESS_OK)
        return err;
    if (is_multi) {
        queued = n - 1;
        rs_cmd_name(&cmds[n++], "EXEC");
    }
    rs_add_wait(rs, cmds, &n, wait);
    err = rs_roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && is_multi)
        err = rs_exec_replies(rs, r, queued, cmds);
    if (err != SESS_OK)
        goto out;
    res = r[0];
    if (is_multi) {
        ex = r[queued + 1];
        if (rs_reply_is(ex, REDIS_REPLY_NIL)) {
            /* Without a WATCH of ours, one another call left behind. */
            if (is_watched)
                *is_conflict = true;
            else
                err = rs_reply_error(rs, ex, "EXEC");
            goto out;
        }
        res = ex->element[0];
    }
    if (check)
        err = check(rs, res);
    if (err == SESS_OK)
        err = rs_check_wait(rs, r[n - 1]);
out:
    rs_replies_free(r, n);
    return err;
}

/* SET NX: nil when the key is taken. */
static enum sess_err
set_nx_reply(struct redis_store *rs, const redisReply *r)
{
    if (rs_reply_is(r, REDIS_REPLY_NIL))
        return SESS_EEXISTS;
    return rs_reply_is(r, REDIS_REPLY_STATUS) ? SESS_OK : rs_reply_error(rs, r, "SET");
}

/* EXPIRE: 0 when there is no such key. */
static enum sess_err
expire_reply(struct redis_store *rs, const redisReply *r)
{
    if (!rs_reply_is(r, REDIS_REPLY_INTEGER))
        return rs_reply_error(rs, r, "EXPIRE");
    return r->integer == 0 ? SESS_ENOTFOUND : SESS_OK;
}

/* ------------------------------------------------------------------------
 * Create, touch, destroy
 * ------------------------------------------------------------------------ */

/* SET NX of codec.val, living ttl_s, into the owner's index with it. */
static enum sess_err
create_once(struct redis_store *rs, struct sess_str id, const char *key, size_t key_len,
            int64_t ttl_s, struct sess_str owner)
{
    struct index_change ix = {.id = id, .owner = owner, .ttl_s = ttl_s};
    struct rs_cmd op;
    char ttl[24];

    rs_cmd_name(&op, "SET");
    rs_cmd_arg(&op, key, key_len);
    rs_cmd_arg(&op, rs->codec.val.ptr, rs->codec.val.len);
    rs_cmd_str(&op, "EX");
    rs_cmd_i64(&op, ttl, ttl_s);
    rs_cmd_str(&op, "NX");
    return write_session(rs, &op, &ix, false, set_nx_reply, NULL);
}

enum sess_err
rs_create(struct sess_store *st, struct sess_str id, int64_t now_ms, const struct sess_record *rec)
{
    struct redis_store *rs = (struct redis_store *)st;
    char key[RS_KEY_MAX];
    size_t key_len;
    int64_t ttl_s;
    enum sess_err err;
    int attempt = 0;
    bool was_unsure = false;

    if (!rs_id_is_usable(id))
        return SESS_EBADINPUT;
    ttl_s = rs_ttl_seconds(rec, now_ms);
    /* connect-redis stores nothing that is already dead. */
    if (ttl_s == 0)
        return SESS_OK;
    err = rs_value_encode(&rs->codec, id, rec);
    if (err != SESS_OK)
        return err;
    key_len = rs_session_key(rs, key, id);
    do {
        err = create_once(rs, id, key, key_len, ttl_s, rec->owner);
        /* SET NX again after a lost reply: taken, perhaps by the first. */
        if (err == SESS_EEXISTS && was_unsure)
            err = rs_stored_is_ours(rs, NULL, key, key_len,
                                    (struct sess_str){rs->codec.val.ptr, rs->codec.val.len}, err);
        was_unsure = rs->is_unsure;
    } while (rs_again(rs, err, &attempt));
    return err;
}

enum sess_err
rs_touch(struct sess_store *st, struct sess_str id, int64_t now_ms, int64_t expires_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    struct sess_record rec = {.expires_ms = expires_ms};
    struct index_change ix = {.id = id};
    struct rs_cmd op;
    char key[RS_KEY_MAX], ttl[24];
    size_t key_len;
    enum sess_err err;
    int attempt = 0;

    if (!rs_id_is_usable(id))
        return SESS_ENOTFOUND;
    /* connect-redis's touch: EXPIRE, the value left alone; a TTL of 0 makes
     * Redis delete the key. The owner's index lives as long: session.c
     * touches what it has just read (get); a touch of anything else leaves
     * the index alone, which the index's slack covers (owners.c). */
    ix.ttl_s = rs_ttl_seconds(&rec, now_ms);
    if (ix.ttl_s > 0 && rs_str_eq(id, (struct sess_str){rs->seen_id, rs->seen_id_len}))
        ix.owner = (struct sess_str){rs->seen_owner.ptr, rs->seen_owner.len};
    key_len = rs_session_key(rs, key, id);
    do {
        rs_cmd_name(&op, "EXPIRE");
        rs_cmd_arg(&op, key, key_len);
        rs_cmd_i64(&op, ttl, ix.ttl_s);
        err = write_session(rs, &op, &ix, false, expire_reply, NULL);
    } while (rs_again(rs, err, &attempt));
    return err;
}

enum sess_err
rs_destroy(struct sess_store *st, struct sess_str id, int64_t now_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    char key[RS_KEY_MAX];
    size_t key_len;
    enum sess_err err;
    int attempt = 0;

    (void)now_ms; /* gone is gone, whatever the time */
    if (!rs_id_is_usable(id))
        return SESS_OK;
    key_len = rs_session_key(rs, key, id);
    do
        err = rs_delete_key(rs, key, key_len);
    while (rs_again(rs, err, &attempt));
    return err;
}

/* ------------------------------------------------------------------------
 * Update: read, merge here, write if nobody wrote in between
 * ------------------------------------------------------------------------ */

/* A WATCH left behind would abort this connection's next MULTI whenever
 * that key changed. Without a connection there is no WATCH either; if the
 * UNWATCH fails, the connection goes and the WATCH with it. The message of
 * the failure that brought us here is the one to keep. */
static void
unwatch(struct redis_store *rs)
{
    char errmsg[sizeof rs->base.errmsg];
    struct rs_cmd c;
    redisReply *r;

    if (!rs->c)
        return;
    memcpy(errmsg, rs->base.errmsg, sizeof errmsg);
    rs_cmd_name(&c, "UNWATCH");
    if (rs_command(rs, &c, &r) == SESS_OK)
        freeReplyObject(r);
    memcpy(rs->base.errmsg, errmsg, sizeof errmsg);
}

/* WATCH, GET and PTTL in one round trip: the live record into `cur`
 * (borrowing from rs->cur; zeroed on failure), and whether the stored bytes are those of our
 * own write whose EXEC reply was lost (rs->is_val_sent). */
static enum sess_err
watch_and_read(struct redis_store *rs, struct sess_str id, const char *key, size_t key_len,
               int64_t now_ms, struct sess_record *cur, bool *is_ours)
{
    struct rs_cmd cmds[3];
    redisReply *r[3];
    enum sess_err err;

    memset(cur, 0, sizeof *cur);
    rs_cmd_name(&cmds[0], "WATCH");
    rs_cmd_arg(&cmds[0], key, key_len);
    rs_cmd_name(&cmds[1], "GET");
    rs_cmd_arg(&cmds[1], key, key_len);
    rs_cmd_name(&cmds[2], "PTTL");
    rs_cmd_arg(&cmds[2], key, key_len);
    err = rs_roundtrip(rs, cmds, 3, r);
    if (err == SESS_OK && !rs_reply_is(r[0], REDIS_REPLY_STATUS)) {
        err = rs_reply_error(rs, r[0], "WATCH");
        goto out;
    }
    if (err == SESS_OK)
        err = session_replies(rs, r[1], r[2]);
    if (err == SESS_OK) {
        *is_ours = rs->is_val_sent && r[1]->len == rs->codec.val.len &&
                   memcmp(r[1]->str, rs->codec.val.ptr, rs->codec.val.len) == 0;
        err = decode_live(rs, id, r[1], r[2], now_ms, cur, &rs->cur, NULL);
    }
    if (err != SESS_OK)
        unwatch(rs);
out:
    rs_replies_free(r, 3);
    return err;
}

/* One optimistic transaction: WATCH and read, merge here, then SET (or DEL
 * when saved already expired, as connect-redis does) in MULTI/EXEC with
 * the owners' indexes, which Redis refuses if anyone wrote the key since
 * the WATCH: *is_conflict then asks for another go. A value that is our
 * own write, applied though its reply was lost, is written again as it is
 * (for WAIT), not merged a second time. */
static enum sess_err
update_try(struct redis_store *rs, struct sess_str id, int64_t now_ms, struct sess_patch *patch,
           bool *is_conflict)
{
    char key[RS_KEY_MAX], ttl[24];
    size_t key_len = rs_session_key(rs, key, id);
    struct sess_record cur, next;
    struct index_change ix = {.id = id};
    struct rs_cmd op;
    enum sess_err err;
    bool is_ours = false;

    *is_conflict = false;
    err = watch_and_read(rs, id, key, key_len, now_ms, &cur, &is_ours);
    if (err != SESS_OK)
        return err;
    next = cur;
    if (!is_ours) {
        err = sess__patch_merge(patch, &cur, &next);
        if (err == SESS_OK)
            err = rs_value_encode(&rs->codec, id, &next);
    }
    if (err != SESS_OK) {
        unwatch(rs);
        return err;
    }
    ix.ttl_s = rs_ttl_seconds(&next, now_ms);
    if (ix.ttl_s > 0) {
        rs_cmd_name(&op, "SET");
        rs_cmd_arg(&op, key, key_len);
        rs_cmd_arg(&op, rs->codec.val.ptr, rs->codec.val.len);
        rs_cmd_str(&op, "EX");
        rs_cmd_i64(&op, ttl, ix.ttl_s);
        ix.owner = next.owner;
    } else {
        rs_cmd_name(&op, "DEL");
        rs_cmd_arg(&op, key, key_len);
    }
    if (cur.owner.len && !rs_str_eq(cur.owner, next.owner))
        ix.old_owner = cur.owner;
    err = write_session(rs, &op, &ix, true, NULL, is_conflict);
    if (err != SESS_OK) {
        /* Sent, and perhaps applied: the next try must know its bytes. */
        rs->is_val_sent = rs->is_unsure;
        unwatch(rs);
    }
    return err;
}

/* A random pause after a lost race, so that the writers of one session
 * stop colliding in step: up to 100 us, doubling to 6.4 ms. Without it, four
 * processes updating one session on a busy two-core machine lost 32 races
 * in a row about once in 30 runs. */
static void
pause_after_conflict(int attempt)
{
    uint32_t cap_us = 100u << (attempt < 7 ? attempt : 6);
    struct timespec ts = {0, (long)randombytes_uniform(cap_us) * 1000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static enum sess_err
update_once(struct redis_store *rs, struct sess_str id, int64_t now_ms, struct sess_patch *patch)
{
    enum sess_err err;
    bool is_conflict;
    int i;

    for (i = 0; i < UPDATE_ATTEMPTS; i++) {
        if (i > 0)
            pause_after_conflict(i - 1);
        err = update_try(rs, id, now_ms, patch, &is_conflict);
        if (err != SESS_OK || !is_conflict)
            return err;
    }
    sess__fmt(rs->base.errmsg, sizeof rs->base.errmsg,
              "%s: session %.8s... changed under %d attempts to update it in a row", rs->where,
              id.ptr, UPDATE_ATTEMPTS);
    return SESS_ESTORE;
}

enum sess_err
rs_update(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_patch *patch)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    if (!rs_id_is_usable(id))
        return SESS_ENOTFOUND;
    /* A merge run twice after a lost EXEC reply would apply the request
     * twice (a counter counts two): update_try tells our own write by its
     * bytes. SESS_ECONFLICT from the merge goes back to session.c as it
     * is: it runs the request again. */
    rs->is_val_sent = false;
    do
        err = update_once(rs, id, now_ms, patch);
    while (rs_again(rs, err, &attempt));
    rs->is_val_sent = false;
    if (rs->cur.ptr)
        sodium_memzero(rs->cur.ptr, rs->cur.len);
    /* The request runs again next: the writers of one session that read
     * the same value would meet again in step without a pause. */
    if (err == SESS_ECONFLICT)
        pause_after_conflict(rs->lost_in_a_row++);
    else
        rs->lost_in_a_row = 0;
    return err;
}
