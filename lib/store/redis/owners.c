/* The per-user index of the Redis store (redis_store.h): the sessions of
 * one user as a set of ids, kept beside connect-redis's keys so that
 * sessctl can list or revoke a user's sessions without walking them all.
 * sessions.c adds to it in the same transaction as each write; walking
 * every session instead (sessctl --scan, gc, statistics) is scan.c's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "redis_store.h"

/* The set's TTL is kept past the longest of its members' by this much (a
 * touch from a process that read an older owner must not let the set
 * expire first); ids whose key is gone or names someone else are removed
 * when a listing or revocation meets them. */
#define INDEX_SLACK_MS (3600 * 1000LL)

enum sess_err
rs_index_key(const struct redis_store *rs, struct sess_buf *out, struct sess_str owner)
{
    enum sess_err err;

    out->len = 0;
    err = sess__buf_append(out, RS_INDEX_PREFIX, sizeof RS_INDEX_PREFIX - 1);
    if (err == SESS_OK)
        err = sess__buf_append(out, rs->prefix, rs->prefix_len);
    if (err == SESS_OK)
        err = sess__buf_append(out, "user:", 5);
    if (err == SESS_OK)
        err = sess__buf_append(out, owner.ptr, owner.len);
    return err;
}

/* Adds ARGV[1] to the set KEYS[1] and keeps the set at least ARGV[2] ms
 * (PTTL -1: no TTL yet). */
#define INDEX_ADD_SCRIPT                                                                           \
    "redis.call('SADD', KEYS[1], ARGV[1]) "                                                        \
    "local t = redis.call('PTTL', KEYS[1]) "                                                       \
    "if t < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "                   \
    "return 1"

enum sess_err
rs_index_add(struct redis_store *rs, struct rs_cmd *c, struct sess_str id, struct sess_str owner,
             int64_t ttl_s, char buf[24])
{
    enum sess_err err = rs_index_key(rs, &rs->idx, owner);

    if (err != SESS_OK)
        return err;
    rs_cmd_name(c, "EVAL");
    rs_cmd_str(c, INDEX_ADD_SCRIPT);
    rs_cmd_str(c, "1");
    rs_cmd_arg(c, rs->idx.ptr, rs->idx.len);
    rs_cmd_arg(c, id.ptr, id.len);
    rs_cmd_i64(c, buf, ttl_s * 1000 + INDEX_SLACK_MS);
    return SESS_OK;
}

/* ------------------------------------------------------------------------
 * Walking one user's index
 * ------------------------------------------------------------------------ */

/* One SSCAN step over an index, with each member's value and TTL in one
 * pipelined round trip. The caller frees with index_free. */
struct index_step {
    redisReply *sscan; /* [next cursor, [id...]] */
    char (*keys)[RS_KEY_MAX];
    size_t *key_lens;
    redisReply **values; /* GET and PTTL replies, two per member */
    size_t n;
    char next[24];
};

static void
index_free(struct index_step *s)
{
    if (s->values)
        rs_replies_free(s->values, 2 * s->n);
    free(s->values);
    free(s->keys);
    free(s->key_lens);
    freeReplyObject(s->sscan);
    memset(s, 0, sizeof *s);
}

static struct sess_str
index_id(const struct index_step *s, size_t i)
{
    const redisReply *m = s->sscan->element[1]->element[i];
    struct sess_str id = {m->str, m->len};

    return rs_reply_is(m, REDIS_REPLY_STRING) && rs_id_is_usable(id) ? id
                                                                     : (struct sess_str){"", 0};
}

static enum sess_err
index_step(struct redis_store *rs, struct sess_str set, const char *cursor, struct index_step *s)
{
    struct rs_cmd c, *cmds = NULL;
    const redisReply *ids;
    size_t i;
    enum sess_err err;

    memset(s, 0, sizeof *s);
    rs_cmd_name(&c, "SSCAN");
    rs_cmd_arg(&c, set.ptr, set.len);
    rs_cmd_str(&c, cursor);
    rs_cmd_str(&c, "COUNT");
    rs_cmd_str(&c, RS_SCAN_COUNT);
    err = rs_command(rs, &c, &s->sscan);
    if (err != SESS_OK)
        return err;
    if (!rs_reply_is(s->sscan, REDIS_REPLY_ARRAY) || s->sscan->elements != 2 ||
        !rs_reply_is(s->sscan->element[0], REDIS_REPLY_STRING) ||
        s->sscan->element[0]->len >= sizeof s->next ||
        !rs_reply_is(s->sscan->element[1], REDIS_REPLY_ARRAY))
        return rs_reply_error(rs, s->sscan, "SSCAN");
    memcpy(s->next, s->sscan->element[0]->str, s->sscan->element[0]->len + 1);
    ids = s->sscan->element[1];
    if (ids->elements == 0)
        return SESS_OK;
    cmds = calloc(2 * ids->elements, sizeof *cmds);
    s->values = calloc(2 * ids->elements, sizeof(redisReply *));
    s->keys = calloc(ids->elements, sizeof *s->keys);
    s->key_lens = calloc(ids->elements, sizeof *s->key_lens);
    if (!cmds || !s->values || !s->keys || !s->key_lens) {
        free(cmds);
        return SESS_ENOMEM;
    }
    s->n = ids->elements;
    for (i = 0; i < s->n; i++) {
        struct sess_str id = index_id(s, i);

        /* A member that cannot be an id reads as gone: removed. */
        s->key_lens[i] = id.len ? rs_session_key(rs, s->keys[i], id) : 0;
        rs_cmd_name(&cmds[2 * i], "GET");
        rs_cmd_arg(&cmds[2 * i], s->keys[i], s->key_lens[i]);
        rs_cmd_name(&cmds[2 * i + 1], "PTTL");
        rs_cmd_arg(&cmds[2 * i + 1], s->keys[i], s->key_lens[i]);
    }
    err = rs_roundtrip(rs, cmds, 2 * s->n, s->values);
    free(cmds);
    return err;
}

/* Walks `owner`'s index: each session still stored and still theirs goes
 * to `visit` (when not NULL) and, with `is_destroying`, is deleted; the
 * members that are neither are removed from the set as they are met.
 * *count says how many were visited or deleted. */
static enum sess_err
index_walk(struct redis_store *rs, struct sess_str owner, int64_t now_ms, bool is_destroying,
           sess_record_visit_fn visit, void *arg, size_t *count)
{
    struct index_step s = {0};
    struct sess_buf set = {0}, buf = {0}, scratch = {0};
    struct sess_record rec;
    const char **gone = NULL, **owned = NULL;
    size_t *gone_lens = NULL, *owned_lens = NULL, n_gone, n_owned, i, deleted, removed;
    char cursor[24] = "0";
    enum sess_err err;
    bool is_going = true;

    *count = 0;
    /* The visitor may call the store, and rs->idx with it. */
    err = rs_index_key(rs, &set, owner);
    while (err == SESS_OK && is_going) {
        err = index_step(rs, (struct sess_str){set.ptr, set.len}, cursor, &s);
        if (err != SESS_OK)
            break;
        free(gone);
        free(owned);
        free(gone_lens);
        free(owned_lens);
        gone = malloc((s.n + 1) * sizeof *gone);
        owned = malloc((s.n + 1) * sizeof *owned);
        gone_lens = malloc((s.n + 1) * sizeof *gone_lens);
        owned_lens = malloc((s.n + 1) * sizeof *owned_lens);
        if (!gone || !owned || !gone_lens || !owned_lens) {
            err = SESS_ENOMEM;
            break;
        }
        n_gone = n_owned = 0;
        for (i = 0; i < s.n && is_going; i++) {
            const redisReply *m = s.sscan->element[1]->element[i], *v = s.values[2 * i];
            const redisReply *t = s.values[2 * i + 1];
            struct sess_str id = index_id(&s, i), raw;

            raw = rs_reply_is(v, REDIS_REPLY_STRING) ? (struct sess_str){v->str, v->len}
                                                     : (struct sess_str){"", 0};
            if (!id.len || !raw.len ||
                !rs_value_is_owned_by(&rs->codec, id, raw, owner, &scratch)) {
                if (rs_reply_is(m, REDIS_REPLY_STRING)) {
                    gone[n_gone] = m->str;
                    gone_lens[n_gone++] = m->len;
                }
                continue;
            }
            if (is_destroying) {
                owned[n_owned] = s.keys[i];
                owned_lens[n_owned++] = s.key_lens[i];
                gone[n_gone] = m->str;
                gone_lens[n_gone++] = m->len;
                continue;
            }
            if (rs_value_decode(&rs->codec, id, raw, now_ms,
                                rs_reply_is(t, REDIS_REPLY_INTEGER) ? t->integer : -1, &rec, &buf,
                                NULL) != SESS_OK)
                continue;
            (*count)++;
            is_going = visit(arg, id, &rec);
        }
        err = rs_delete_keys(rs, owned, owned_lens, n_owned, &deleted);
        if (is_destroying)
            *count += deleted;
        if (err == SESS_OK)
            err = rs_keys_command(rs, "SREM", (struct sess_str){set.ptr, set.len}, gone, gone_lens,
                                  n_gone, &removed);
        memcpy(cursor, s.next, sizeof cursor);
        index_free(&s);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    index_free(&s);
    free(gone);
    free(owned);
    free(gone_lens);
    free(owned_lens);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    if (scratch.ptr)
        sodium_memzero(scratch.ptr, scratch.cap);
    sess__buf_free(&buf);
    sess__buf_free(&scratch);
    sess__buf_free(&set);
    return err;
}

/* Every session of a user: through the user's index, or with
 * st->is_owner_scan (sessctl --scan) by SCAN over all sessions, which also
 * finds what an Express app logged in and we never wrote (it adds nothing
 * to our index; scan.c). */
enum sess_err
rs_destroy_owner(struct sess_store *st, struct sess_str owner, int64_t now_ms, size_t *count)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    size_t n = 0;
    int attempt = 0;

    *count = 0;
    if (owner.len == 0)
        return SESS_OK;
    do {
        if (st->is_owner_scan)
            err = rs_scan_destroy_owner(rs, owner, &n);
        else
            err = index_walk(rs, owner, now_ms, true, NULL, NULL, &n);
        *count += n;
    } while (rs_again(rs, err, &attempt));
    return err;
}

/* A user's sessions through the index, or with st->is_owner_scan by SCAN;
 * everyone's by SCAN. */
enum sess_err
rs_each(struct sess_store *st, struct sess_str owner, int64_t now_ms, sess_record_visit_fn visit,
        void *arg)
{
    struct redis_store *rs = (struct redis_store *)st;
    size_t n;

    if (owner.len && !st->is_owner_scan)
        return index_walk(rs, owner, now_ms, false, visit, arg, &n);
    return rs_scan_each(rs, owner, now_ms, visit, arg);
}
