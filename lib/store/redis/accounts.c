/* Accounts and login throttles in the Redis store (redis_store.h), under
 * "fcgi-session:" where connect-redis never looks: the accounts as one
 * hash, name -> account JSON, and a counter per throttled key whose TTL is
 * the rest of its window. Sessions are sessions.c's; what an account or a
 * throttle means is users.c's and login.c's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "redis_store.h"

#define THR_HASH_BYTES 32
#define THR_HEX_BYTES  (2 * (size_t)THR_HASH_BYTES)
#define THR_KEY_MAX    (sizeof RS_THROTTLE_PREFIX + THR_HEX_BYTES)

/* ------------------------------------------------------------------------
 * Accounts: one hash, name -> account JSON
 * ------------------------------------------------------------------------ */

static enum sess_err
user_get_once(struct redis_store *rs, struct sess_str name, struct sess_buf *value)
{
    struct rs_cmd c;
    redisReply *r;
    enum sess_err err;

    rs_cmd_name(&c, "HGET");
    rs_cmd_str(&c, RS_USERS_KEY);
    rs_cmd_arg(&c, name.ptr, name.len);
    err = rs_command(rs, &c, &r);
    if (err != SESS_OK)
        goto out;
    if (rs_reply_is(r, REDIS_REPLY_NIL)) {
        err = SESS_ENOTFOUND;
        goto out;
    }
    if (!rs_reply_is(r, REDIS_REPLY_STRING)) {
        err = rs_reply_error(rs, r, "HGET");
        goto out;
    }
    value->len = 0;
    err = sess__buf_append(value, r->str, r->len);
    if (err == SESS_OK)
        err = sess__buf_append(value, "", 1);
    if (err == SESS_OK)
        value->len--;
out:
    freeReplyObject(r);
    return err;
}

enum sess_err
rs_user_get(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_buf *value)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    (void)now_ms;
    if (name.len == 0)
        return SESS_ENOTFOUND;
    do
        err = user_get_once(rs, name, value);
    while (rs_again(rs, err, &attempt));
    return err;
}

/* HSET, HSETNX or HDEL of one account; for HDEL, 0 deleted is
 * SESS_ENOTFOUND, for HSETNX 0 set is SESS_EEXISTS. */
static enum sess_err
user_write_once(struct redis_store *rs, const char *verb, struct sess_str name,
                const struct sess_str *value)
{
    struct rs_cmd cmds[2];
    redisReply *r[2];
    char wait[2][24];
    size_t n = 1;
    enum sess_err err;

    rs_cmd_name(&cmds[0], verb);
    rs_cmd_str(&cmds[0], RS_USERS_KEY);
    rs_cmd_arg(&cmds[0], name.ptr, name.len);
    if (value)
        rs_cmd_arg(&cmds[0], value->ptr, value->len);
    rs_add_wait(rs, cmds, &n, wait);
    err = rs_roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && !rs_reply_is(r[0], REDIS_REPLY_INTEGER))
        err = rs_reply_error(rs, r[0], verb);
    else if (err == SESS_OK && !value && r[0]->integer == 0)
        err = SESS_ENOTFOUND;
    else if (err == SESS_OK && strcmp(verb, "HSETNX") == 0 && r[0]->integer == 0)
        err = SESS_EEXISTS;
    if (err == SESS_OK)
        err = rs_check_wait(rs, r[n - 1]);
    rs_replies_free(r, n);
    return err;
}

enum sess_err
rs_user_put(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str value,
            bool must_be_new)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;
    bool was_unsure = false;

    (void)now_ms;
    if (name.len == 0)
        return SESS_EBADINPUT;
    do {
        err = user_write_once(rs, must_be_new ? "HSETNX" : "HSET", name, &value);
        /* HSETNX again after a lost reply: the name is taken, perhaps by
         * the first HSETNX. The account's password hash has its own random
         * salt, so the very bytes we sent are ours. */
        if (err == SESS_EEXISTS && was_unsure)
            err = rs_stored_is_ours(rs, RS_USERS_KEY, name.ptr, name.len, value, err);
        was_unsure = rs->is_unsure;
    } while (rs_again(rs, err, &attempt));
    return err;
}

/* HSET only while the field still holds ARGV[2]: -1 gone, 0 changed. */
#define USER_REPLACE_SCRIPT                                                                        \
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) "                                              \
    "if not v then return -1 end "                                                                 \
    "if v ~= ARGV[2] then return 0 end "                                                           \
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1"

static enum sess_err
user_replace_once(struct redis_store *rs, struct sess_str name, struct sess_str old,
                  struct sess_str value)
{
    struct rs_cmd c;
    redisReply *r = NULL;
    enum sess_err err;

    rs_cmd_name(&c, "EVAL");
    rs_cmd_str(&c, USER_REPLACE_SCRIPT);
    rs_cmd_str(&c, "1");
    rs_cmd_str(&c, RS_USERS_KEY);
    rs_cmd_arg(&c, name.ptr, name.len);
    rs_cmd_arg(&c, old.ptr, old.len);
    rs_cmd_arg(&c, value.ptr, value.len);
    err = rs_command(rs, &c, &r);
    if (err == SESS_OK && !rs_reply_is(r, REDIS_REPLY_INTEGER))
        err = rs_reply_error(rs, r, "EVAL");
    else if (err == SESS_OK && r->integer < 0)
        err = SESS_ENOTFOUND;
    else if (err == SESS_OK && r->integer == 0)
        err = SESS_ECONFLICT;
    rs_replies_free(&r, 1);
    return err;
}

enum sess_err
rs_user_replace(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str old,
                struct sess_str value)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    (void)now_ms;
    if (name.len == 0)
        return SESS_ENOTFOUND;
    do
        err = user_replace_once(rs, name, old, value);
    while (rs_again(rs, err, &attempt));
    return err;
}

enum sess_err
rs_user_del(struct sess_store *st, struct sess_str name, int64_t now_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;
    bool was_unsure = false;

    (void)now_ms;
    if (name.len == 0)
        return SESS_ENOTFOUND;
    do {
        err = user_write_once(rs, "HDEL", name, NULL);
        /* Gone after a lost reply: most likely our first HDEL; either way
         * the account is gone, as asked. */
        if (err == SESS_ENOTFOUND && was_unsure)
            err = SESS_OK;
        was_unsure = rs->is_unsure;
    } while (rs_again(rs, err, &attempt));
    return err;
}

enum sess_err
rs_user_each(struct sess_store *st, int64_t now_ms, sess_user_visit_fn visit, void *arg)
{
    struct redis_store *rs = (struct redis_store *)st;
    struct rs_cmd c;
    redisReply *r = NULL;
    const redisReply *items;
    char cursor[24] = "0";
    enum sess_err err;
    bool is_going = true;
    size_t i;

    (void)now_ms;
    do {
        rs_cmd_name(&c, "HSCAN");
        rs_cmd_str(&c, RS_USERS_KEY);
        rs_cmd_str(&c, cursor);
        rs_cmd_str(&c, "COUNT");
        rs_cmd_str(&c, RS_SCAN_COUNT);
        err = rs_command(rs, &c, &r);
        if (err != SESS_OK)
            break;
        if (!rs_reply_is(r, REDIS_REPLY_ARRAY) || r->elements != 2 ||
            !rs_reply_is(r->element[0], REDIS_REPLY_STRING) ||
            r->element[0]->len >= sizeof cursor || !rs_reply_is(r->element[1], REDIS_REPLY_ARRAY) ||
            r->element[1]->elements % 2) {
            err = rs_reply_error(rs, r, "HSCAN");
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        items = r->element[1];
        for (i = 0; is_going && i + 1 < items->elements; i += 2) {
            const redisReply *k = items->element[i], *v = items->element[i + 1];
            if (rs_reply_is(k, REDIS_REPLY_STRING) && rs_reply_is(v, REDIS_REPLY_STRING))
                is_going = visit(arg, (struct sess_str){k->str, k->len},
                                 (struct sess_str){v->str, v->len});
        }
        freeReplyObject(r);
        r = NULL;
    } while (is_going && strcmp(cursor, "0") != 0);
    freeReplyObject(r);
    return err;
}

/* ------------------------------------------------------------------------
 * Login throttling: a counter per key, its TTL the rest of the window
 * ------------------------------------------------------------------------ */

/* Any bytes become a fixed key: an attacker's 12 KB username must not
 * become a 12 KB Redis key. */
static size_t
throttle_key(char out[THR_KEY_MAX], struct sess_str key)
{
    unsigned char hash[THR_HASH_BYTES];
    size_t n = sizeof RS_THROTTLE_PREFIX - 1;

    crypto_generichash(hash, sizeof hash, (const unsigned char *)key.ptr, key.len, NULL, 0);
    memcpy(out, RS_THROTTLE_PREFIX, n);
    sodium_bin2hex(out + n, THR_HEX_BYTES + 1, hash, sizeof hash);
    return n + THR_HEX_BYTES;
}

/* Count and window start from a counter value and its PTTL. */
static void
throttle_state(const redisReply *count, const redisReply *pttl, int64_t now_ms, int64_t window_ms,
               uint32_t *out_count, int64_t *first_ms)
{
    long long n = 0;

    *out_count = 0;
    *first_ms = 0;
    if (rs_reply_is(count, REDIS_REPLY_INTEGER))
        n = count->integer;
    else if (rs_reply_is(count, REDIS_REPLY_STRING))
        n = strtoll(count->str, NULL, 10);
    /* Without a TTL the window cannot be known: no such counter is ever
     * made below, so it is not ours. */
    if (n <= 0 || !rs_reply_is(pttl, REDIS_REPLY_INTEGER) || pttl->integer < 0)
        return;
    *out_count = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    *first_ms = now_ms + pttl->integer - window_ms;
}

static enum sess_err
throttle_hit_once(struct redis_store *rs, const char *key, size_t key_len, int64_t now_ms,
                  int64_t window_ms, uint32_t *count, int64_t *first_ms)
{
    struct rs_cmd cmds[6];
    redisReply *r[6];
    char window[24], wait[2][24];
    const redisReply *res;
    enum sess_err err;
    size_t n = 5;

    /* In one transaction: the first failure creates the counter with the
     * window as its TTL, and INCR never meets a key that expired in
     * between (it would make a counter without a TTL: a lock for ever). */
    rs_cmd_name(&cmds[0], "MULTI");
    rs_cmd_name(&cmds[1], "SET");
    rs_cmd_arg(&cmds[1], key, key_len);
    rs_cmd_str(&cmds[1], "0");
    rs_cmd_str(&cmds[1], "PX");
    rs_cmd_i64(&cmds[1], window, window_ms > 0 ? window_ms : 1);
    rs_cmd_str(&cmds[1], "NX");
    rs_cmd_name(&cmds[2], "INCR");
    rs_cmd_arg(&cmds[2], key, key_len);
    rs_cmd_name(&cmds[3], "PTTL");
    rs_cmd_arg(&cmds[3], key, key_len);
    rs_cmd_name(&cmds[4], "EXEC");
    rs_add_wait(rs, cmds, &n, wait);
    err = rs_roundtrip(rs, cmds, n, r);
    if (err == SESS_OK)
        err = rs_exec_replies(rs, r, 3, cmds);
    res = r[4];
    /* Nil: refused for a WATCH that some other call left behind. */
    if (err == SESS_OK && !rs_reply_is(res, REDIS_REPLY_ARRAY))
        err = rs_reply_error(rs, res, "EXEC");
    if (err == SESS_OK) {
        throttle_state(res->element[1], res->element[2], now_ms, window_ms, count, first_ms);
        err = rs_check_wait(rs, r[n - 1]);
    }
    rs_replies_free(r, n);
    return err;
}

enum sess_err
rs_throttle_hit(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
                uint32_t *count, int64_t *first_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    char k[THR_KEY_MAX];
    size_t k_len = throttle_key(k, key);
    enum sess_err err;

    *count = 0;
    *first_ms = 0;
    /* INCR is not run twice: after a lost reply one failure would count
     * two. A stale connection is found by fresh_connection's PING instead;
     * a reply lost after that is a 503. */
    err = rs_fresh_connection(rs);
    if (err == SESS_OK)
        err = throttle_hit_once(rs, k, k_len, now_ms, window_ms, count, first_ms);
    rs->may_retry = false;
    return err;
}

static enum sess_err
throttle_peek_once(struct redis_store *rs, const char *key, size_t key_len, int64_t now_ms,
                   int64_t window_ms, uint32_t *count, int64_t *first_ms)
{
    struct rs_cmd cmds[2];
    redisReply *r[2];
    enum sess_err err;

    rs_cmd_name(&cmds[0], "GET");
    rs_cmd_arg(&cmds[0], key, key_len);
    rs_cmd_name(&cmds[1], "PTTL");
    rs_cmd_arg(&cmds[1], key, key_len);
    err = rs_roundtrip(rs, cmds, 2, r);
    if (err == SESS_OK && rs_reply_is(r[0], REDIS_REPLY_ERROR))
        err = rs_reply_error(rs, r[0], "GET");
    if (err == SESS_OK)
        throttle_state(r[0], r[1], now_ms, window_ms, count, first_ms);
    rs_replies_free(r, 2);
    return err;
}

enum sess_err
rs_throttle_peek(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
                 uint32_t *count, int64_t *first_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    char k[THR_KEY_MAX];
    size_t k_len = throttle_key(k, key);
    enum sess_err err;
    int attempt = 0;

    *count = 0;
    *first_ms = 0;
    do
        err = throttle_peek_once(rs, k, k_len, now_ms, window_ms, count, first_ms);
    while (rs_again(rs, err, &attempt));
    return err;
}

enum sess_err
rs_throttle_clear(struct sess_store *st, struct sess_str key, int64_t now_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    char k[THR_KEY_MAX];
    size_t k_len = throttle_key(k, key);
    enum sess_err err;
    int attempt = 0;

    (void)now_ms;
    do
        err = rs_delete_key(rs, k, k_len);
    while (rs_again(rs, err, &attempt));
    return err;
}

/* DECR keeps the key's TTL, so the window stays; a key that expired is
 * not made again (DECR alone would make one without a TTL). */
#define THROTTLE_UNDO_SCRIPT                                                                       \
    "local n = tonumber(redis.call('GET', KEYS[1])) "                                              \
    "if n and n > 0 then return redis.call('DECR', KEYS[1]) end return 0"

static enum sess_err
throttle_undo_once(struct redis_store *rs, const char *key, size_t key_len)
{
    struct rs_cmd c;
    redisReply *r = NULL;
    enum sess_err err;

    rs_cmd_name(&c, "EVAL");
    rs_cmd_str(&c, THROTTLE_UNDO_SCRIPT);
    rs_cmd_str(&c, "1");
    rs_cmd_arg(&c, key, key_len);
    err = rs_command(rs, &c, &r);
    if (err == SESS_OK && !rs_reply_is(r, REDIS_REPLY_INTEGER))
        err = rs_reply_error(rs, r, "EVAL");
    rs_replies_free(&r, 1);
    return err;
}

enum sess_err
rs_throttle_undo(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    char k[THR_KEY_MAX];
    size_t k_len = throttle_key(k, key);
    enum sess_err err;
    int attempt = 0;

    /* The key's TTL is the window: once it has passed the key is gone. */
    (void)now_ms;
    (void)window_ms;
    do
        err = throttle_undo_once(rs, k, k_len);
    while (rs_again(rs, err, &attempt));
    return err;
}
