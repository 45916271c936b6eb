/* Walking every session of the Redis store (redis_store.h): SCAN over the
 * prefix in bounded steps, for sessctl's listing and statistics, the gc of
 * sessions an Express app keeps alive past their absolute deadline, and
 * revoking a user's sessions without the index (sessctl --scan). One
 * user's sessions through the index are owners.c's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#include "redis_store.h"

/* How often, across all processes, a request pays for a gc batch. */
#define GC_INTERVAL_MS 60000

/* ------------------------------------------------------------------------
 * Walking every session: SCAN in bounded steps
 * ------------------------------------------------------------------------ */

/* One SCAN step over the session keys with their values (and TTLs when
 * `with_ttl`), all in two round trips. The caller frees with scan_free. */
struct scan_step {
    redisReply *scan;    /* [next cursor, [key...]] */
    redisReply **values; /* GET (and PTTL) replies, per key */
    size_t n;            /* keys */
    bool with_ttl;
    size_t prefix_len;
    char next[24]; /* the cursor to continue from; "0" when done */
};

static void
scan_free(struct scan_step *s)
{
    if (s->values)
        rs_replies_free(s->values, s->n * (s->with_ttl ? 2 : 1));
    free(s->values);
    freeReplyObject(s->scan);
    memset(s, 0, sizeof *s);
}

static struct sess_str
scan_key(const struct scan_step *s, size_t i)
{
    const redisReply *k = s->scan->element[1]->element[i];
    return (struct sess_str){k->str, k->len};
}

/* The id of key i, or an empty view for a key that cannot be one. */
static struct sess_str
scan_id(const struct scan_step *s, size_t i)
{
    struct sess_str k = scan_key(s, i);
    struct sess_str id = {k.ptr + s->prefix_len, k.len - s->prefix_len};

    /* SCAN matched the prefix: only the length is left to check. */
    if (k.len < s->prefix_len || !rs_id_is_usable(id))
        return (struct sess_str){"", 0};
    return id;
}

/* The value of key i, or NULL when it has gone since the SCAN. */
static const redisReply *
scan_value(const struct scan_step *s, size_t i)
{
    const redisReply *v = s->values[s->with_ttl ? 2 * i : i];
    return rs_reply_is(v, REDIS_REPLY_STRING) ? v : NULL;
}

static long long
scan_pttl(const struct scan_step *s, size_t i)
{
    const redisReply *t = s->with_ttl ? s->values[2 * i + 1] : NULL;
    return rs_reply_is(t, REDIS_REPLY_INTEGER) ? t->integer : -1;
}

static enum sess_err
scan_step(struct redis_store *rs, const char *cursor, const char *count, bool with_ttl,
          struct scan_step *s)
{
    struct rs_cmd c, *cmds = NULL;
    const redisReply *keys;
    size_t i, per = with_ttl ? 2 : 1;
    enum sess_err err;

    memset(s, 0, sizeof *s);
    s->with_ttl = with_ttl;
    s->prefix_len = rs->prefix_len;
    rs_cmd_name(&c, "SCAN");
    rs_cmd_str(&c, cursor);
    rs_cmd_str(&c, "MATCH");
    rs_cmd_str(&c, rs->pattern);
    rs_cmd_str(&c, "COUNT");
    rs_cmd_str(&c, count);
    err = rs_command(rs, &c, &s->scan);
    if (err != SESS_OK)
        return err;
    if (!rs_reply_is(s->scan, REDIS_REPLY_ARRAY) || s->scan->elements != 2 ||
        !rs_reply_is(s->scan->element[0], REDIS_REPLY_STRING) ||
        s->scan->element[0]->len >= sizeof s->next ||
        !rs_reply_is(s->scan->element[1], REDIS_REPLY_ARRAY))
        return rs_reply_error(rs, s->scan, "SCAN");
    memcpy(s->next, s->scan->element[0]->str, s->scan->element[0]->len + 1);
    keys = s->scan->element[1];
    for (i = 0; i < keys->elements; i++)
        if (!rs_reply_is(keys->element[i], REDIS_REPLY_STRING))
            return rs_reply_error(rs, NULL, "SCAN");
    if (keys->elements == 0)
        return SESS_OK;

    cmds = calloc(keys->elements * per, sizeof *cmds);
    s->values = calloc(keys->elements * per, sizeof(redisReply *));
    if (!cmds || !s->values) {
        free(cmds);
        return SESS_ENOMEM;
    }
    s->n = keys->elements;
    for (i = 0; i < s->n; i++) {
        rs_cmd_name(&cmds[i * per], "GET");
        rs_cmd_arg(&cmds[i * per], keys->element[i]->str, keys->element[i]->len);
        if (with_ttl) {
            rs_cmd_name(&cmds[i * per + 1], "PTTL");
            rs_cmd_arg(&cmds[i * per + 1], keys->element[i]->str, keys->element[i]->len);
        }
    }
    err = rs_roundtrip(rs, cmds, s->n * per, s->values);
    free(cmds);
    return err;
}

/* The walk costs a SCAN step of RS_SCAN_COUNT keys, one pipelined round
 * trip of GETs and one DEL at a time: about a second per 100,000 sessions
 * on loopback. */
enum sess_err
rs_scan_destroy_owner(struct redis_store *rs, struct sess_str owner, size_t *count)
{
    struct scan_step s = {0};
    struct sess_buf buf = {0};
    const char **keys = NULL;
    size_t *lens = NULL, n, i, deleted;
    char cursor[24] = "0";
    enum sess_err err;

    *count = 0;
    do {
        err = scan_step(rs, cursor, RS_SCAN_COUNT, false, &s);
        if (err != SESS_OK)
            break;
        free(keys);
        free(lens);
        keys = malloc((s.n + 1) * sizeof *keys);
        lens = malloc((s.n + 1) * sizeof *lens);
        if (!keys || !lens) {
            err = SESS_ENOMEM;
            break;
        }
        for (i = n = 0; i < s.n; i++) {
            const redisReply *v = scan_value(&s, i);
            struct sess_str id = scan_id(&s, i), key = scan_key(&s, i);

            if (v && id.len &&
                rs_value_is_owned_by(&rs->codec, id, (struct sess_str){v->str, v->len}, owner,
                                     &buf)) {
                keys[n] = key.ptr;
                lens[n++] = key.len;
            }
        }
        /* SCAN may name a key twice; DEL counts each key once. */
        err = rs_delete_keys(rs, keys, lens, n, &deleted);
        *count += deleted;
        memcpy(cursor, s.next, sizeof cursor);
        scan_free(&s);
    } while (err == SESS_OK && strcmp(cursor, "0") != 0);
    scan_free(&s);
    free(keys);
    free(lens);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess__buf_free(&buf);
    return err;
}

/* ------------------------------------------------------------------------
 * gc: what Express keeps alive past its absolute deadline
 * ------------------------------------------------------------------------ */

/* One gc step from `cursor`: deletes the sessions past their absolute
 * deadline that an Express app keeps alive (it does not know the
 * deadline). Idle expiry is Redis's own. */
static enum sess_err
gc_step(struct redis_store *rs, int64_t now_ms, size_t max, const char *cursor, char next[24],
        size_t *purged)
{
    struct scan_step s = {0};
    struct sess_buf buf = {0};
    struct sess_record rec;
    const char **keys = NULL;
    size_t *lens = NULL, n = 0, i;
    char count[24];
    enum sess_err err;

    *purged = 0;
    snprintf(count, sizeof count, "%zu", max);
    err = scan_step(rs, cursor, count, false, &s);
    if (err != SESS_OK)
        goto out;
    memcpy(next, s.next, 24);
    keys = malloc((s.n + 1) * sizeof *keys);
    lens = malloc((s.n + 1) * sizeof *lens);
    if (!keys || !lens) {
        err = SESS_ENOMEM;
        goto out;
    }
    for (i = 0; i < s.n && n < max; i++) {
        const redisReply *v = scan_value(&s, i);
        struct sess_str id = scan_id(&s, i), key = scan_key(&s, i);

        if (!v || !id.len ||
            rs_value_decode(&rs->codec, id, (struct sess_str){v->str, v->len}, now_ms, -1, &rec,
                            &buf, NULL) != SESS_OK)
            continue;
        if (rec.deadline_ms != 0 && rec.deadline_ms <= now_ms) {
            keys[n] = key.ptr;
            lens[n++] = key.len;
        }
    }
    err = rs_delete_keys(rs, keys, lens, n, purged);
out:
    scan_free(&s);
    free(keys);
    free(lens);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess__buf_free(&buf);
    return err;
}

enum sess_err
rs_gc(struct sess_store *st, int64_t now_ms, size_t max, size_t *purged, bool *more)
{
    struct redis_store *rs = (struct redis_store *)st;
    char next[24];
    enum sess_err err;
    int attempt = 0;

    *purged = 0;
    *more = false;
    do
        err = gc_step(rs, now_ms, max ? max : 1, rs->gc_cursor, next, purged);
    while (rs_again(rs, err, &attempt));
    if (err != SESS_OK)
        return err;
    memcpy(rs->gc_cursor, next, sizeof rs->gc_cursor);
    *more = strcmp(next, "0") != 0;
    return SESS_OK;
}

/* At most one process per GC_INTERVAL_MS does a step, continuing the walk
 * where the last one stopped (the cursor is kept in Redis). */
void
rs_gc_if_due(struct sess_store *st, int64_t now_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    struct rs_cmd cmds[2], c;
    redisReply *r[2] = {NULL, NULL}, *w = NULL;
    char interval[24], cursor[24] = "0", next[24];
    size_t purged;

    if (now_ms < rs->gc_check_ms)
        return;
    /* Spread over the next interval so the processes do not all look at
     * the same instant. */
    rs->gc_check_ms = now_ms + GC_INTERVAL_MS + (int64_t)randombytes_uniform(GC_INTERVAL_MS);
    rs_cmd_name(&cmds[0], "SET");
    rs_cmd_str(&cmds[0], RS_GC_LOCK_KEY);
    rs_cmd_str(&cmds[0], "1");
    rs_cmd_str(&cmds[0], "PX");
    rs_cmd_i64(&cmds[0], interval, GC_INTERVAL_MS);
    rs_cmd_str(&cmds[0], "NX");
    rs_cmd_name(&cmds[1], "GET");
    rs_cmd_str(&cmds[1], RS_GC_CURSOR_KEY);
    if (rs_roundtrip(rs, cmds, 2, r) != SESS_OK || !rs_reply_is(r[0], REDIS_REPLY_STATUS))
        goto out;
    if (rs_reply_is(r[1], REDIS_REPLY_STRING) && r[1]->len < sizeof cursor)
        memcpy(cursor, r[1]->str, r[1]->len + 1);
    if (gc_step(rs, now_ms, SESS_GC_BATCH, cursor, next, &purged) != SESS_OK)
        goto out;
    rs_cmd_name(&c, "SET");
    rs_cmd_str(&c, RS_GC_CURSOR_KEY);
    rs_cmd_str(&c, next);
    if (rs_command(rs, &c, &w) == SESS_OK)
        freeReplyObject(w);
out:
    rs_replies_free(r, 2);
}

/* ------------------------------------------------------------------------
 * Listing and statistics (sessctl)
 * ------------------------------------------------------------------------ */

/* Distinct owners, counted by 64-bit hashes in an open-addressed table. */
struct name_set {
    uint64_t *slot; /* 0 = empty */
    size_t cap, n;
};

static uint64_t
name_hash(struct sess_str s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    size_t i;

    for (i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 0x100000001b3ULL;
    return h ? h : 1;
}

static enum sess_err
name_set_add(struct name_set *set, struct sess_str name)
{
    uint64_t h = name_hash(name), *old = set->slot;
    size_t i, old_cap = set->cap;

    if (set->n * 2 >= set->cap) {
        set->cap = set->cap ? set->cap * 2 : 64;
        set->slot = calloc(set->cap, sizeof *set->slot);
        if (!set->slot) {
            set->slot = old;
            set->cap = old_cap;
            return SESS_ENOMEM;
        }
        set->n = 0;
        for (i = 0; i < old_cap; i++) {
            if (old[i]) {
                size_t j = old[i] & (set->cap - 1);
                while (set->slot[j])
                    j = (j + 1) & (set->cap - 1);
                set->slot[j] = old[i];
                set->n++;
            }
        }
        free(old);
    }
    for (i = h & (set->cap - 1); set->slot[i]; i = (i + 1) & (set->cap - 1))
        if (set->slot[i] == h)
            return SESS_OK;
    set->slot[i] = h;
    set->n++;
    return SESS_OK;
}

static enum sess_err
count_users(struct redis_store *rs, uint64_t *users)
{
    struct rs_cmd c;
    redisReply *r;
    enum sess_err err;

    rs_cmd_name(&c, "HLEN");
    rs_cmd_str(&c, RS_USERS_KEY);
    err = rs_command(rs, &c, &r);
    if (err == SESS_OK && !rs_reply_is(r, REDIS_REPLY_INTEGER))
        err = rs_reply_error(rs, r, "HLEN");
    else if (err == SESS_OK)
        *users = (uint64_t)r->integer;
    freeReplyObject(r);
    return err;
}

static enum sess_err
stats_once(struct redis_store *rs, int64_t now_ms, struct sess_store_stats *out)
{
    struct scan_step s = {0};
    struct sess_buf buf = {0};
    struct name_set owners = {0};
    struct sess_record rec;
    char cursor[24] = "0";
    enum sess_err err;
    bool has_meta;
    size_t i;

    memset(out, 0, sizeof *out);
    err = count_users(rs, &out->users);
    while (err == SESS_OK) {
        err = scan_step(rs, cursor, RS_SCAN_COUNT, false, &s);
        for (i = 0; err == SESS_OK && i < s.n; i++) {
            const redisReply *v = scan_value(&s, i);
            struct sess_str id = scan_id(&s, i);

            if (!v || !id.len)
                continue;
            out->sessions++;
            if (rs_value_decode(&rs->codec, id, (struct sess_str){v->str, v->len}, now_ms, -1, &rec,
                                &buf, &has_meta) != SESS_OK)
                continue;
            if (rec.deadline_ms != 0 && rec.deadline_ms <= now_ms)
                out->expired++;
            if (rec.owner.len)
                err = name_set_add(&owners, rec.owner);
            /* Only values we wrote know when they began. */
            if (!has_meta)
                continue;
            if (out->oldest_created_ms == 0 || rec.created_ms < out->oldest_created_ms)
                out->oldest_created_ms = rec.created_ms;
            if (rec.created_ms > out->newest_created_ms)
                out->newest_created_ms = rec.created_ms;
        }
        if (err == SESS_OK)
            memcpy(cursor, s.next, sizeof cursor);
        scan_free(&s);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    out->owners = owners.n;
    free(owners.slot);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess__buf_free(&buf);
    return err;
}

enum sess_err
rs_stats(struct sess_store *st, int64_t now_ms, struct sess_store_stats *out)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    do
        err = stats_once(rs, now_ms, out);
    while (rs_again(rs, err, &attempt));
    return err;
}

enum sess_err
rs_scan_each(struct redis_store *rs, struct sess_str owner, int64_t now_ms,
             sess_record_visit_fn visit, void *arg)
{
    struct scan_step s = {0};
    struct sess_buf buf = {0}, scratch = {0};
    struct sess_record rec;
    char cursor[24] = "0";
    enum sess_err err;
    bool is_going = true;
    size_t i;

    do {
        err = scan_step(rs, cursor, RS_SCAN_COUNT, true, &s);
        for (i = 0; err == SESS_OK && is_going && i < s.n; i++) {
            const redisReply *v = scan_value(&s, i);
            struct sess_str id = scan_id(&s, i), raw;

            if (!v || !id.len)
                continue;
            raw = (struct sess_str){v->str, v->len};
            if (owner.len && !rs_value_is_owned_by(&rs->codec, id, raw, owner, &scratch))
                continue;
            if (rs_value_decode(&rs->codec, id, raw, now_ms, scan_pttl(&s, i), &rec, &buf, NULL) !=
                SESS_OK)
                continue;
            /* The visitor may call the store: every reply of this step is
             * already read, and `buf` is ours alone. */
            is_going = visit(arg, id, &rec);
        }
        if (err == SESS_OK)
            memcpy(cursor, s.next, sizeof cursor);
        scan_free(&s);
    } while (err == SESS_OK && is_going && strcmp(cursor, "0") != 0);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    if (scratch.ptr)
        sodium_memzero(scratch.ptr, scratch.cap);
    sess__buf_free(&buf);
    sess__buf_free(&scratch);
    return err;
}
