/* The Redis store: connect-redis's layout (key redis_prefix + id, "sess:"
 * by default, the session JSON as the value, the key's TTL as the idle
 * expiry), so an Express app using connect-redis with the same secret and
 * prefix shares every session. One connection per process, made on first
 * use and made again, with back-off, after any failure; with
 * redis-sentinel:// made to whichever server the sentinels name as master.
 * Accounts, login throttles and the per-user index live under
 * "fcgi-session:", outside the prefix (connect-redis's all() and length()
 * walk PREFIX*). */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sodium.h>

#include "internal.h"
#include "redis_url.h"
#include "store.h"

#define SESS_PREFIX "sess:" /* connect-redis's default prefix */
#define PREFIX_MAX  64      /* config.c's bound on redis_prefix */
/* The sessions of one user: a set of ids under INDEX_PREFIX + prefix +
 * "user:" + name, whose TTL is kept past the longest of its members' by
 * INDEX_SLACK_MS (a touch from a process that read an older owner must not
 * let the set expire first); ids whose key is gone or names someone else
 * are removed when a listing or revocation meets them. */
#define INDEX_PREFIX    "fcgi-session:"
#define INDEX_SLACK_MS  (3600 * 1000LL)
#define USERS_KEY       "fcgi-session:users"
#define THROTTLE_PREFIX "fcgi-session:throttle:"
#define GC_LOCK_KEY     "fcgi-session:gc:lock"
#define GC_CURSOR_KEY   "fcgi-session:gc:cursor"

/* What this library knows about a session beyond express-session's JSON.
 * It travels inside that JSON, as the first top-level key:
 *   {"_fcgi":{"created":MS,"deadline":MS,"owner":"NAME"},"cookie":{...},...}
 * rather than in a key of its own ("sessmeta:ID"), because express-session
 * copies unknown top-level keys onto req.session and writes them back on
 * every save, and connect-redis's touch never rewrites the value: the
 * absolute deadline survives however long an Express app keeps the session
 * alive, where a sibling key would expire or go stale behind its back. The
 * key is taken out before the data reaches session.c and put back on write,
 * so routes never see it. A value without it was made by Express: created
 * when we first read it, owner from user.username, and (express-session
 * having no absolute timeout) absolute_timeout after that first reading,
 * which get writes into the value as our key so that later readings, ours
 * or Express's saves, keep it. */
#define META_KEY    "_fcgi"
#define META_OPEN   "{\"" META_KEY "\":{\"created\":"
#define META_NEEDLE "\"" META_KEY "\""
#define OWNER_FIELD "username" /* data.user.username: who is logged in */

/* With encrypt = auto or false the values are plain JSON: an Express app
 * must read them, and so can anyone who reads Redis, its dumps or its
 * replicas, so Redis needs guarding (bind, requirepass or ACLs, socket
 * permissions). encrypt = true, for deployments without an Express peer,
 * seals them as the LMDB store does (seal.c: the id as additional data):
 * the value is this prefix, then nonce || ciphertext || tag of the JSON
 * above. Never valid JSON, so an Express app would fail loudly on it rather
 * than misread it. */
#define SEAL_MAGIC     "fcgi-sealed:1:"
#define SEAL_MAGIC_LEN (sizeof SEAL_MAGIC - 1)

/* connect-redis's ttl for a session without cookie.expires; also the expiry
 * we assume for a key that somebody left without a TTL. */
#define NO_TTL_EXPIRY_MS (86400 * 1000LL)
/* connect-redis's scanCount: each SCAN step stays short for the server. */
#define SCAN_COUNT "100"
/* Optimistic transactions on one session: a conflict means another request
 * wrote it between our read and our write. Two or three are rare; this many
 * means something keeps writing it in a loop. */
#define UPDATE_ATTEMPTS 32
/* After a failed connection attempt, no new one for 100 ms, doubling up to
 * 2 s: a down Redis costs a request one refused connect at most that often,
 * and the store is back at most 2 s after Redis is. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
/* How often, across all processes, a request pays for a gc batch. */
#define GC_INTERVAL_MS 60000
/* A connection idle this long is PINGed before a command that cannot be
 * retried. */
#define FRESH_MS 1000

#define CMD_ARGS_MAX   8
#define KEY_MAX        (PREFIX_MAX + 1 + SESS_ID_MAX_LEN)
#define THR_HASH_BYTES 32
#define THR_HEX_BYTES  (2 * (size_t)THR_HASH_BYTES)
#define THR_KEY_MAX    (sizeof THROTTLE_PREFIX + THR_HEX_BYTES)

struct redis_store {
    struct sess_store base; /* first: the generic code sees only this */
    redisContext *c;        /* NULL while disconnected */

    /* Where, from the URL (with sentinels, host and port are the master
     * they named last). */
    struct sess_redis_url url; /* the sentinels and the master's name */
    size_t sentinel_next;      /* the sentinel to ask first: the last that answered */
    char *host;                /* NULL with a unix socket */
    char *socket_path;         /* NULL over TCP */
    char *user;                /* Redis 6 ACL user, or NULL */
    char *password;            /* NULL: no AUTH; wiped on close */
    int port;
    int db;
    struct timeval timeout; /* connect and each command */
    char where[160];        /* "redis HOST:PORT/DB", never the password */

    /* Reconnecting. */
    int64_t retry_at_ms; /* monotonic: no connection attempt before this */
    int64_t backoff_ms;  /* the current wait after a failed attempt; 0 when up */
    bool is_reused;      /* the connection has answered before */
    bool may_retry;      /* the last failure was a stale connection: try a new one at once */
    int lost_in_a_row;   /* updates refused in a row because what they read changed */
    bool is_refused;     /* the server refused AUTH or SELECT */
    /* The last failure came after a command was sent: it may have run. */
    bool is_unsure;
    int64_t used_ms;                    /* monotonic: when the connection last answered */
    char down_msg[SESS_ERRMSG_MAX / 2]; /* why the last attempt failed */

    bool is_sealing;
    struct sess_sealer sealer;
    struct sess_buf val;   /* the value being written */
    struct sess_buf plain; /* an unsealed value, or JSON about to be sealed */
    struct sess_buf cur;   /* update: the current record */
    struct sess_buf text;  /* a value re-serialised without META_KEY */

    char prefix[PREFIX_MAX + 1]; /* redis_prefix */
    size_t prefix_len;
    char pattern[PREFIX_MAX + 2]; /* prefix + "*", for SCAN */
    int min_replicas;             /* redis_min_replicas: WAIT for this many */
    int64_t wait_ms;              /* WAIT's timeout */
    struct sess_buf idx;          /* an index key being built */
    struct sess_buf idx_old;      /* update: the index of the owner before */
    bool is_val_sent;             /* rs->val went out in an EXEC whose reply was lost */
    /* The owner of the session the last get read, for touch (which is not
     * told) to keep that owner's index alive. */
    char seen_id[SESS_ID_MAX_LEN];
    size_t seen_id_len;
    struct sess_buf seen_owner;

    int64_t absolute_ms; /* absolute_timeout: the deadline given Express's sessions */
    int64_t gc_check_ms; /* before this, gc_if_due does not even look */
    char gc_cursor[24];  /* where sessctl's gc walk is; "0" at the start */
};

/* Session metadata as found in a value. The fields after `owner` are
 * written, in this order, only when set: ,"handle":"BASE64URL","seen":MS,
 * "idle":MS,"life":MS,"remember":true,"addr":"..","ua":"..". The idle
 * lifetime is also what session.c writes as cookie.originalMaxAge, as
 * express-session stores a session whose cookie.maxAge was set. */
struct meta {
    bool is_present;
    int64_t created_ms;
    int64_t deadline_ms;
    struct sess_str owner;
    bool has_handle;
    unsigned char handle[SESS_HANDLE_BYTES];
    int64_t last_seen_ms, idle_ms, lifetime_ms;
    bool is_remembered;
    struct sess_str client_addr, user_agent;
};

#define HANDLE_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

struct cmd {
    int argc;
    const char *argv[CMD_ARGS_MAX];
    size_t len[CMD_ARGS_MAX];
};

static const struct sess_store_ops redis_ops;

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
id_is_usable(struct sess_str id)
{
    return id.len > 0 && id.len <= SESS_ID_MAX_LEN;
}

static bool
has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

static bool
str_eq(struct sess_str a, struct sess_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static size_t
session_key(const struct redis_store *rs, char out[KEY_MAX], struct sess_str id)
{
    memcpy(out, rs->prefix, rs->prefix_len);
    memcpy(out + rs->prefix_len, id.ptr, id.len);
    return rs->prefix_len + id.len;
}

/* The key of `owner`'s index, in `out`. */
static enum sess_err
index_key(const struct redis_store *rs, struct sess_buf *out, struct sess_str owner)
{
    enum sess_err err;

    out->len = 0;
    err = sess_buf_append(out, INDEX_PREFIX, sizeof INDEX_PREFIX - 1);
    if (err == SESS_OK)
        err = sess_buf_append(out, rs->prefix, rs->prefix_len);
    if (err == SESS_OK)
        err = sess_buf_append(out, "user:", 5);
    if (err == SESS_OK)
        err = sess_buf_append(out, owner.ptr, owner.len);
    return err;
}

/* connect-redis's getTTL: whole seconds until cookie.expires, rounded up
 * (1,799,995 ms ahead gives EX 1800); 0 when already past. The TTL is
 * taken against the caller's clock, and get() turns a TTL back into an
 * instant against it the same way. */
static int64_t
ttl_seconds(const struct sess_record *rec, int64_t now_ms)
{
    int64_t left = sess_record_expiry_ms(rec->expires_ms, rec->deadline_ms) - now_ms;

    if (left <= 0)
        return 0;
    return left / 1000 + (left % 1000 != 0);
}

static void
cmd_name(struct cmd *c, const char *name)
{
    c->argc = 0;
    c->argv[c->argc] = name;
    c->len[c->argc++] = strlen(name);
}

static void
cmd_arg(struct cmd *c, const void *ptr, size_t len)
{
    if (c->argc >= CMD_ARGS_MAX)
        abort(); /* our own commands are short; more is a bug here */
    c->argv[c->argc] = ptr;
    c->len[c->argc++] = len;
}

static void
cmd_str(struct cmd *c, const char *s)
{
    cmd_arg(c, s, strlen(s));
}

/* Appends the decimal form of `v` to `c`, kept in `buf` until sent. */
static void
cmd_i64(struct cmd *c, char buf[24], int64_t v)
{
    int n = snprintf(buf, 24, "%lld", (long long)v);
    cmd_arg(c, buf, (size_t)n);
}

static bool
reply_is(const redisReply *r, int type)
{
    return r != NULL && r->type == type;
}

static void
free_replies(redisReply **r, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

/* ------------------------------------------------------------------------
 * The connection
 * ------------------------------------------------------------------------ */

static void
drop(struct redis_store *rs)
{
    redisFree(rs->c);
    rs->c = NULL;
    rs->is_reused = false;
}

static void
back_off(struct redis_store *rs)
{
    rs->backoff_ms = rs->backoff_ms ? rs->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (rs->backoff_ms > BACKOFF_MAX_MS)
        rs->backoff_ms = BACKOFF_MAX_MS;
    rs->retry_at_ms = mono_ms() + rs->backoff_ms;
}

static enum sess_err
unavailable(struct redis_store *rs)
{
    sess_fmt(rs->base.errmsg, sizeof rs->base.errmsg, "%s", rs->down_msg);
    return SESS_EUNAVAIL;
}

static int64_t
timeout_ms(const struct redis_store *rs)
{
    return (int64_t)rs->timeout.tv_sec * 1000 + rs->timeout.tv_usec / 1000;
}

static bool
errno_is_timeout(int saved_errno)
{
    return saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT ||
           saved_errno == EINPROGRESS;
}

/* The connection broke while `doing`; `saved_errno` is errno at the
 * failure, `is_sent` whether the commands may have reached the server. A
 * socket the server closed while we were idle (Redis restarted, or a
 * failover) is worth one immediate retry on a new connection: an operation
 * whose command may have run already must then find out whether it did
 * (rs->is_unsure), or not retry. A timeout is not: the server may be stuck,
 * and retrying would double the wait. */
static enum sess_err
broken(struct redis_store *rs, const char *doing, int saved_errno, bool is_sent)
{
    bool is_timeout = rs->c->err == REDIS_ERR_IO && errno_is_timeout(saved_errno);

    if (is_timeout)
        sess_fmt(rs->down_msg, sizeof rs->down_msg,
                 "%s: no answer within %lld ms while %s (redis_timeout_ms)", rs->where,
                 (long long)timeout_ms(rs), doing);
    else
        sess_fmt(rs->down_msg, sizeof rs->down_msg, "%s: %s: %s", rs->where, doing,
                 rs->c->errstr[0] ? rs->c->errstr : "connection lost");
    rs->may_retry = rs->is_reused && !is_timeout;
    rs->is_unsure = is_sent;
    drop(rs);
    if (!rs->may_retry)
        back_off(rs);
    return unavailable(rs);
}

/* An error reply. Busy or read-only servers are unavailable (503); a
 * replica promoted away from us (READONLY) refused the command, so one
 * retry on a new connection, which asks the sentinels again, is safe. OOM
 * is a full store; anything else is a store failure. */
static enum sess_err
reply_error(struct redis_store *rs, const redisReply *r, const char *doing)
{
    static const char *const busy[] = {"LOADING",  "BUSY",        "MASTERDOWN",
                                       "TRYAGAIN", "CLUSTERDOWN", "READONLY",
                                       "NOAUTH",   "WRONGPASS",   "NOREPLICAS"};
    const char *text = r && r->str ? r->str : "unexpected reply";
    size_t len = r && r->str ? r->len : strlen(text), i;

    rs->may_retry = false;
    rs->is_unsure = false;
    sess_fmt(rs->base.errmsg, sizeof rs->base.errmsg, "%s: %s: %.*s", rs->where, doing,
             (int)(len > 200 ? 200 : len), text);
    if (has_prefix(text, len, "OOM"))
        return SESS_EFULL;
    for (i = 0; i < sizeof busy / sizeof busy[0]; i++) {
        if (has_prefix(text, len, busy[i])) {
            rs->may_retry = has_prefix(text, len, "READONLY") && rs->is_reused;
            drop(rs);
            return SESS_EUNAVAIL;
        }
    }
    return SESS_ESTORE;
}

static enum sess_err roundtrip(struct redis_store *rs, struct cmd *cmds, size_t n,
                               redisReply **out);

/* Sends `n` commands on `c` and reads their replies into `out` (NULL on
 * failure; the caller frees them). For the sentinels, outside roundtrip's
 * bookkeeping. */
static bool
ask(redisContext *c, struct cmd *cmds, size_t n, redisReply **out)
{
    size_t i;
    void *r;

    memset(out, 0, n * sizeof(redisReply *));
    for (i = 0; i < n; i++)
        if (redisAppendCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].len) != REDIS_OK)
            return false;
    for (i = 0; i < n; i++) {
        if (redisGetReply(c, &r) != REDIS_OK)
            return false;
        out[i] = r;
    }
    return true;
}

/* A port as a sentinel writes it: 1 to 65535 in decimal, nothing else. */
static bool
parse_port(const redisReply *r, int *port)
{
    size_t i;
    int v = 0;

    if (r->len == 0 || r->len > 5)
        return false;
    for (i = 0; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return false;
        v = v * 10 + (r->str[i] - '0');
    }
    *port = v;
    return v >= 1 && v <= 65535;
}

/* Asks sentinel `i` where the master is: SENTINEL get-master-addr-by-name,
 * after AUTH when the URL has a password (a sentinel without requirepass
 * refuses the AUTH and answers the question all the same). On success the
 * master's address replaces rs->host and rs->port; else `why` says what
 * this sentinel did. */
static bool
ask_sentinel(struct redis_store *rs, size_t i, char *why, size_t why_len)
{
    const struct sess_redis_node *node = &rs->url.sentinel[i];
    redisContext *c = redisConnectWithTimeout(node->host, node->port, rs->timeout);
    struct cmd cmds[2];
    redisReply *r[2] = {NULL, NULL};
    const redisReply *a;
    size_t n = 0;
    int port;
    char *host;
    bool is_found = false;

    if (!c || c->err || redisSetTimeout(c, rs->timeout) != REDIS_OK) {
        sess_fmt(why, why_len, "sentinel %s:%d: %s", node->host, node->port,
                 c ? c->errstr : "out of memory");
        redisFree(c);
        return false;
    }
    if (rs->password) {
        cmd_name(&cmds[n], "AUTH");
        if (rs->user)
            cmd_str(&cmds[n], rs->user);
        cmd_str(&cmds[n++], rs->password);
    }
    cmd_name(&cmds[n], "SENTINEL");
    cmd_str(&cmds[n], "get-master-addr-by-name");
    cmd_str(&cmds[n++], rs->url.master);
    if (!ask(c, cmds, n, r)) {
        sess_fmt(why, why_len, "sentinel %s:%d: %s", node->host, node->port,
                 c->errstr[0] ? c->errstr : "no answer");
        goto out;
    }
    a = r[n - 1];
    if (reply_is(a, REDIS_REPLY_NIL)) {
        sess_fmt(why, why_len, "sentinel %s:%d does not know master \"%s\"", node->host, node->port,
                 rs->url.master);
        goto out;
    }
    if (!reply_is(a, REDIS_REPLY_ARRAY) || a->elements != 2 ||
        !reply_is(a->element[0], REDIS_REPLY_STRING) ||
        !reply_is(a->element[1], REDIS_REPLY_STRING) || a->element[0]->len == 0 ||
        a->element[0]->len > 255 || !parse_port(a->element[1], &port)) {
        if (a && a->str)
            sess_fmt(why, why_len, "sentinel %s:%d: %.*s", node->host, node->port,
                     (int)(a->len < 200 ? a->len : 200), a->str);
        else
            sess_fmt(why, why_len, "sentinel %s:%d: an unexpected reply", node->host, node->port);
        goto out;
    }
    host = strndup(a->element[0]->str, a->element[0]->len);
    if (!host) {
        sess_fmt(why, why_len, "out of memory");
        goto out;
    }
    free(rs->host);
    rs->host = host;
    rs->port = port;
    is_found = true;
out:
    free_replies(r, n);
    redisFree(c);
    return is_found;
}

/* With sentinels: the master's address from the first sentinel that knows
 * it, starting with the one that answered last. Each sentinel costs at
 * most redis_timeout_ms to connect and as much to answer. */
static bool
find_master(struct redis_store *rs)
{
    char why[SESS_ERRMSG_MAX / 4] = "";
    size_t k, i;

    for (k = 0; k < rs->url.sentinels; k++) {
        i = (rs->sentinel_next + k) % rs->url.sentinels;
        if (ask_sentinel(rs, i, why, sizeof why)) {
            rs->sentinel_next = i;
            sess_fmt(rs->where, sizeof rs->where, "redis-sentinel %.40s (%s%.100s%s:%d)/%d",
                     rs->url.master, strchr(rs->host, ':') ? "[" : "", rs->host,
                     strchr(rs->host, ':') ? "]" : "", rs->port, rs->db);
            return true;
        }
    }
    sess_fmt(rs->down_msg, sizeof rs->down_msg,
             "redis-sentinel %.40s: no sentinel names a master (last: %s)", rs->url.master, why);
    return false;
}

/* AUTH and SELECT on a new connection, and with sentinels ROLE, in one
 * round trip: a server the sentinels named may have been demoted since. */
static enum sess_err
handshake(struct redis_store *rs)
{
    struct cmd cmds[3];
    redisReply *r[3] = {NULL, NULL, NULL};
    const redisReply *role;
    char db[24];
    size_t n = 0, i;
    enum sess_err err;
    bool is_sentinel = rs->url.kind == SESS_REDIS_SENTINEL;

    if (rs->password) {
        cmd_name(&cmds[n], "AUTH");
        if (rs->user)
            cmd_str(&cmds[n], rs->user);
        cmd_str(&cmds[n], rs->password);
        n++;
    }
    if (rs->db != 0) {
        cmd_name(&cmds[n], "SELECT");
        cmd_i64(&cmds[n], db, rs->db);
        n++;
    }
    if (is_sentinel)
        cmd_name(&cmds[n++], "ROLE");
    if (n == 0)
        return SESS_OK;
    err = roundtrip(rs, cmds, n, r);
    for (i = 0; err == SESS_OK && i < n - is_sentinel; i++) {
        if (reply_is(r[i], REDIS_REPLY_ERROR)) {
            sess_fmt(rs->down_msg, sizeof rs->down_msg, "%s: %s refused: %.*s", rs->where,
                     cmds[i].argv[0], (int)(r[i]->len > 200 ? 200 : r[i]->len), r[i]->str);
            rs->is_refused = true;
            drop(rs);
            back_off(rs);
            err = unavailable(rs);
        }
    }
    role = is_sentinel && err == SESS_OK ? r[n - 1] : NULL;
    if (role && (!reply_is(role, REDIS_REPLY_ARRAY) || role->elements < 1 ||
                 !reply_is(role->element[0], REDIS_REPLY_STRING) ||
                 strcmp(role->element[0]->str, "master") != 0)) {
        sess_fmt(rs->down_msg, sizeof rs->down_msg,
                 "%s: the server the sentinels named is not the master (ROLE: %.20s)", rs->where,
                 reply_is(role, REDIS_REPLY_ARRAY) && role->elements &&
                         reply_is(role->element[0], REDIS_REPLY_STRING)
                     ? role->element[0]->str
                     : "?");
        drop(rs);
        back_off(rs);
        err = unavailable(rs);
    }
    free_replies(r, n);
    return err;
}

/* The process's connection, made now if there is none and the back-off
 * allows; with sentinels, to the master they name now. */
static enum sess_err
connection(struct redis_store *rs)
{
    redisContext *c;
    int64_t now;
    enum sess_err err;

    if (rs->c)
        return SESS_OK;
    rs->may_retry = false;
    now = mono_ms();
    if (now < rs->retry_at_ms) {
        sess_fmt(rs->base.errmsg, sizeof rs->base.errmsg, "%s (next attempt in %lld ms)",
                 rs->down_msg, (long long)(rs->retry_at_ms - now));
        return SESS_EUNAVAIL;
    }
    rs->is_refused = false;
    if (rs->url.kind == SESS_REDIS_SENTINEL && !find_master(rs)) {
        back_off(rs);
        return unavailable(rs);
    }
    c = rs->socket_path ? redisConnectUnixWithTimeout(rs->socket_path, rs->timeout)
                        : redisConnectWithTimeout(rs->host, rs->port, rs->timeout);
    if (!c || c->err || redisSetTimeout(c, rs->timeout) != REDIS_OK ||
        (!rs->socket_path && redisEnableKeepAlive(c) != REDIS_OK)) {
        sess_fmt(rs->down_msg, sizeof rs->down_msg, "%s: cannot connect: %s", rs->where,
                 c ? c->errstr : "out of memory");
        redisFree(c);
        back_off(rs);
        return unavailable(rs);
    }
    rs->c = c;
    rs->is_reused = false;
    err = handshake(rs);
    if (err == SESS_OK)
        rs->backoff_ms = 0;
    return err;
}

/* Sends `n` commands in one write and reads their `n` replies into `out`
 * (freed by the caller with free_replies, also on failure). A connection
 * that fails is dropped. Every key and value goes as a counted argument,
 * never formatted into a command line. */
static enum sess_err
roundtrip(struct redis_store *rs, struct cmd *cmds, size_t n, redisReply **out)
{
    enum sess_err err;
    size_t i;
    void *r;

    memset(out, 0, n * sizeof(redisReply *));
    rs->is_unsure = false;
    err = connection(rs);
    if (err != SESS_OK)
        return err;
    for (i = 0; i < n; i++) {
        if (redisAppendCommandArgv(rs->c, cmds[i].argc, cmds[i].argv, cmds[i].len) != REDIS_OK)
            return broken(rs, "sending", errno, false);
    }
    for (i = 0; i < n; i++) {
        errno = 0;
        /* The first call writes the commands: from here they may run. */
        if (redisGetReply(rs->c, &r) != REDIS_OK)
            return broken(rs, "reading a reply", errno, true);
        out[i] = r;
    }
    rs->is_reused = true;
    rs->used_ms = mono_ms();
    return SESS_OK;
}

static enum sess_err
command(struct redis_store *rs, struct cmd *c, redisReply **out)
{
    return roundtrip(rs, c, 1, out);
}

/* Whether to run an operation once more: only after a stale connection
 * (or a replica that refused a write), only once. An operation whose
 * command may have run (rs->is_unsure) must be idempotent, or check what
 * is stored before doing it again. */
static bool
again(struct redis_store *rs, enum sess_err err, int *attempt)
{
    if (err != SESS_EUNAVAIL || !rs->may_retry || *attempt > 0)
        return false;
    (*attempt)++;
    rs->may_retry = false;
    return true;
}

/* A command that must not run twice goes on a connection that answered
 * lately: one idle for a while is checked with a PING first (retried on a
 * new connection if stale), so that a server restarted or failed over
 * while we were idle costs no error, and no second run. */
static enum sess_err
fresh_connection(struct redis_store *rs)
{
    struct cmd c;
    redisReply *r = NULL;
    enum sess_err err;
    int attempt = 0;

    if (rs->c && mono_ms() - rs->used_ms < FRESH_MS)
        return SESS_OK;
    do {
        cmd_name(&c, "PING");
        err = command(rs, &c, &r);
        if (err == SESS_OK && !reply_is(r, REDIS_REPLY_STATUS))
            err = reply_error(rs, r, "PING");
        freeReplyObject(r);
        r = NULL;
    } while (again(rs, err, &attempt));
    return err;
}

/* WAIT for redis_min_replicas after the writes of a pipeline: appended to
 * `cmds` at `*n` when asked for (the timeout text kept in `buf`). */
static void
add_wait(struct redis_store *rs, struct cmd *cmds, size_t *n, char buf[2][24])
{
    if (rs->min_replicas == 0)
        return;
    cmd_name(&cmds[*n], "WAIT");
    cmd_i64(&cmds[*n], buf[0], rs->min_replicas);
    cmd_i64(&cmds[*n], buf[1], rs->wait_ms);
    (*n)++;
}

/* The reply to add_wait's WAIT: fewer replicas than asked is a failed write
 * (503), though the master has it: nothing says it would survive the
 * master's loss. */
static enum sess_err
check_wait(struct redis_store *rs, const redisReply *r)
{
    if (rs->min_replicas == 0)
        return SESS_OK;
    if (!reply_is(r, REDIS_REPLY_INTEGER))
        return reply_error(rs, r, "WAIT");
    if (r->integer >= rs->min_replicas)
        return SESS_OK;
    sess_fmt(rs->base.errmsg, sizeof rs->base.errmsg,
             "%s: a write reached %lld of the %d replicas redis_min_replicas asks for within %lld "
             "ms",
             rs->where, (long long)r->integer, rs->min_replicas, (long long)rs->wait_ms);
    return SESS_EUNAVAIL;
}

/* ------------------------------------------------------------------------
 * Values: session JSON with the metadata inside, optionally sealed
 * ------------------------------------------------------------------------ */

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Appends `s` as the body of a JSON string (without the quotes). */
static enum sess_err
append_json_chars(struct sess_buf *out, struct sess_str s)
{
    static const char hex[] = "0123456789abcdef";
    enum sess_err err = SESS_OK;
    size_t i, run = 0;

    for (i = 0; i < s.len && err == SESS_OK; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        err = sess_buf_append(out, s.ptr + run, i - run);
        if (err == SESS_OK && (ch == '"' || ch == '\\'))
            err = sess_buf_append(out, (char[]){'\\', (char)ch}, 2);
        else if (err == SESS_OK)
            err = sess_buf_append(out, esc, sizeof esc);
        run = i + 1;
    }
    return err == SESS_OK ? sess_buf_append(out, s.ptr + run, s.len - run) : err;
}

/* `data` without a top-level META_KEY, which a route may have set itself:
 * a second copy would be a duplicate key that Express and we resolve
 * differently. Borrows from `data` or from rs->text. */
static enum sess_err
without_meta(struct redis_store *rs, struct sess_str data, struct sess_str *out)
{
    json_error_t jerr;
    json_t *obj;
    char *text;
    enum sess_err err;

    *out = data;
    if (!memmem(data.ptr, data.len, META_NEEDLE, sizeof META_NEEDLE - 1))
        return SESS_OK;
    obj = json_loadb(data.ptr, data.len, 0, &jerr);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return SESS_EBADINPUT;
    }
    json_object_del(obj, META_KEY);
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return SESS_ENOMEM;
    rs->text.len = 0;
    err = sess_buf_append(&rs->text, text, strlen(text));
    free(text);
    *out = (struct sess_str){rs->text.ptr, rs->text.len};
    return err;
}

static enum sess_err
write_meta_str(struct sess_buf *out, const char *name, struct sess_str v)
{
    enum sess_err err = SESS_OK;

    if (!v.len)
        return SESS_OK;
    err = sess_buf_append(out, name, strlen(name));
    if (err == SESS_OK)
        err = append_json_chars(out, v);
    return err == SESS_OK ? sess_buf_append(out, "\"", 1) : err;
}

static enum sess_err
write_meta_i64(struct sess_buf *out, const char *name, int64_t v)
{
    char num[24];
    int n;

    if (!v)
        return SESS_OK;
    n = snprintf(num, sizeof num, "%lld", (long long)v);
    return sess_buf_append(out, name, strlen(name)) == SESS_OK
               ? sess_buf_append(out, num, (size_t)n)
               : SESS_ENOMEM;
}

/* The fields of struct meta after the owner, those that are set. */
static enum sess_err
write_meta_fields(struct sess_buf *out, const struct sess_record *rec)
{
    char handle[sodium_base64_ENCODED_LEN(SESS_HANDLE_BYTES, HANDLE_B64)];
    enum sess_err err = SESS_OK;

    if (rec->has_handle) {
        sodium_bin2base64(handle, sizeof handle, rec->handle, sizeof rec->handle, HANDLE_B64);
        err = write_meta_str(out, ",\"handle\":\"", sess_str_c(handle));
    }
    if (err == SESS_OK)
        err = write_meta_i64(out, ",\"seen\":", rec->last_seen_ms);
    if (err == SESS_OK)
        err = write_meta_i64(out, ",\"idle\":", rec->idle_ms);
    if (err == SESS_OK)
        err = write_meta_i64(out, ",\"life\":", rec->lifetime_ms);
    if (err == SESS_OK && rec->is_remembered)
        err = sess_buf_append(out, ",\"remember\":true", 16);
    if (err == SESS_OK)
        err = write_meta_str(out, ",\"addr\":\"", rec->client_addr);
    if (err == SESS_OK)
        err = write_meta_str(out, ",\"ua\":\"", rec->user_agent);
    return err;
}

/* Writes into `out` the JSON Redis holds for `rec`: META_KEY first, then
 * the record's data as session.c made it. */
static enum sess_err
write_json(struct redis_store *rs, const struct sess_record *rec, struct sess_buf *out)
{
    struct sess_str data;
    char head[96];
    const char *body, *end;
    enum sess_err err;
    int n;

    err = without_meta(rs, rec->data, &data);
    if (err != SESS_OK)
        return err;
    body = data.ptr;
    end = data.ptr + data.len;
    while (body < end && is_space(*body))
        body++;
    while (end > body && is_space(end[-1]))
        end--;
    if (end - body < 2 || *body != '{' || end[-1] != '}')
        return SESS_EBADINPUT;
    body++;
    while (body < end && is_space(*body))
        body++;

    out->len = 0;
    n = snprintf(head, sizeof head, META_OPEN "%lld,\"deadline\":%lld", (long long)rec->created_ms,
                 (long long)rec->deadline_ms);
    err = sess_buf_append(out, head, (size_t)n);
    if (err == SESS_OK && rec->owner.len) {
        err = sess_buf_append(out, ",\"owner\":\"", 10);
        if (err == SESS_OK)
            err = append_json_chars(out, rec->owner);
        if (err == SESS_OK)
            err = sess_buf_append(out, "\"", 1);
    }
    if (err == SESS_OK)
        err = write_meta_fields(out, rec);
    if (err == SESS_OK)
        err = sess_buf_append(out, "}", 1);
    /* `body` now starts at the first key, or at the closing brace. */
    if (err == SESS_OK && *body != '}')
        err = sess_buf_append(out, ",", 1);
    if (err == SESS_OK)
        err = sess_buf_append(out, body, (size_t)(end - body));
    return err;
}

/* The bytes to store for `rec` under `id`, in rs->val. */
static enum sess_err
encode_value(struct redis_store *rs, struct sess_str id, const struct sess_record *rec)
{
    enum sess_err err;

    if (!rs->is_sealing)
        return write_json(rs, rec, &rs->val);
    err = write_json(rs, rec, &rs->plain);
    if (err == SESS_OK) {
        rs->val.len = 0;
        err = sess_buf_append(&rs->val, SEAL_MAGIC, SEAL_MAGIC_LEN);
    }
    if (err == SESS_OK)
        err = sess_seal(&rs->sealer, id, (struct sess_str){rs->plain.ptr, rs->plain.len}, &rs->val);
    if (rs->plain.ptr)
        sodium_memzero(rs->plain.ptr, rs->plain.len);
    return err;
}

/* The JSON inside a stored value: the value itself, or the unsealed bytes
 * in rs->plain. A value that does not open, and a plain one when sealing is
 * on (anyone who can write to Redis could otherwise forge one), is
 * SESS_ENOTFOUND. */
static enum sess_err
open_value(struct redis_store *rs, struct sess_str id, struct sess_str raw, struct sess_str *json)
{
    enum sess_err err;

    if (has_prefix(raw.ptr, raw.len, SEAL_MAGIC)) {
        rs->plain.len = 0;
        err = sess_unseal(&rs->sealer, id,
                          (struct sess_str){raw.ptr + SEAL_MAGIC_LEN, raw.len - SEAL_MAGIC_LEN},
                          &rs->plain);
        if (err == SESS_ECRYPTO) {
            sess_fmt(rs->base.errmsg, sizeof rs->base.errmsg,
                     "%s: a session value does not open under any secret (tampered, moved, or "
                     "sealed with a secret no longer in secret_file); ignored",
                     rs->where);
            return SESS_ENOTFOUND;
        }
        *json = (struct sess_str){rs->plain.ptr, rs->plain.len};
        return err;
    }
    if (rs->is_sealing) {
        sess_fmt(rs->base.errmsg, sizeof rs->base.errmsg,
                 "%s: a plain session value with encrypt = true; ignored", rs->where);
        return SESS_ENOTFOUND;
    }
    *json = raw;
    return SESS_OK;
}

/* Reads a decimal integer at text[*pos]. */
static bool
scan_i64(struct sess_str text, size_t *pos, int64_t *out)
{
    size_t i = *pos;
    bool is_negative = i < text.len && text.ptr[i] == '-';
    int64_t v = 0;

    if (is_negative)
        i++;
    if (i >= text.len || text.ptr[i] < '0' || text.ptr[i] > '9')
        return false;
    for (; i < text.len && text.ptr[i] >= '0' && text.ptr[i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (text.ptr[i] - '0');
    }
    *out = is_negative ? -v : v;
    *pos = i;
    return true;
}

static bool
scan_lit(struct sess_str text, size_t *pos, const char *lit)
{
    size_t n = strlen(lit);

    if (text.len - *pos < n || memcmp(text.ptr + *pos, lit, n) != 0)
        return false;
    *pos += n;
    return true;
}

/* A string field of the metadata without escapes (those go to the
 * parser): `name` is ',"NAME":"'. Absent is fine; false if malformed. */
static bool
scan_meta_str(struct sess_str text, size_t *pos, const char *name, struct sess_str *out)
{
    size_t start;

    if (!scan_lit(text, pos, name))
        return true;
    start = *pos;
    while (*pos < text.len && text.ptr[*pos] != '"' && text.ptr[*pos] != '\\')
        (*pos)++;
    if (*pos >= text.len || text.ptr[*pos] != '"')
        return false;
    *out = (struct sess_str){text.ptr + start, *pos - start};
    (*pos)++;
    return true;
}

static bool
scan_meta_i64(struct sess_str text, size_t *pos, const char *name, int64_t *out)
{
    return !scan_lit(text, pos, name) || scan_i64(text, pos, out);
}

/* Sets m->handle from its base64url text; false if it is not one. */
static bool
meta_handle(struct meta *m, struct sess_str text)
{
    size_t len = 0;

    if (!text.len)
        return true;
    if (sodium_base642bin(m->handle, sizeof m->handle, text.ptr, text.len, NULL, &len, NULL,
                          HANDLE_B64) != 0 ||
        len != sizeof m->handle)
        return false;
    m->has_handle = true;
    return true;
}

/* The fields write_meta_fields writes, in its order. */
static bool
meta_fast_fields(struct sess_str text, size_t *pos, struct meta *m)
{
    struct sess_str handle = {"", 0};

    if (!scan_meta_str(text, pos, ",\"handle\":\"", &handle) || !meta_handle(m, handle) ||
        !scan_meta_i64(text, pos, ",\"seen\":", &m->last_seen_ms) ||
        !scan_meta_i64(text, pos, ",\"idle\":", &m->idle_ms) ||
        !scan_meta_i64(text, pos, ",\"life\":", &m->lifetime_ms))
        return false;
    m->is_remembered = scan_lit(text, pos, ",\"remember\":true");
    return scan_meta_str(text, pos, ",\"addr\":\"", &m->client_addr) &&
           scan_meta_str(text, pos, ",\"ua\":\"", &m->user_agent);
}

/* The common case without a JSON parser: META_KEY first, exactly as
 * write_json puts it (JSON.stringify writes the same bytes when Express
 * saves the session again). On success *rest is where the remaining keys
 * start: at ',' or at the object's closing '}'. */
static bool
meta_fast(struct sess_str text, struct meta *m, size_t *rest)
{
    size_t pos = 0, start;

    if (!scan_lit(text, &pos, META_OPEN) || !scan_i64(text, &pos, &m->created_ms) ||
        !scan_lit(text, &pos, ",\"deadline\":") || !scan_i64(text, &pos, &m->deadline_ms))
        return false;
    m->owner = (struct sess_str){"", 0};
    /* An owner with escapes is left to the parser. */
    if (scan_lit(text, &pos, ",\"owner\":\"")) {
        start = pos;
        while (pos < text.len && text.ptr[pos] != '"' && text.ptr[pos] != '\\')
            pos++;
        if (pos >= text.len || text.ptr[pos] != '"')
            return false;
        m->owner = (struct sess_str){text.ptr + start, pos - start};
        pos++;
    }
    if (!meta_fast_fields(text, &pos, m) || !scan_lit(text, &pos, "}") || pos >= text.len ||
        (text.ptr[pos] != ',' && text.ptr[pos] != '}'))
        return false;
    m->is_present = true;
    *rest = pos;
    return true;
}

static struct sess_str
json_str_view(json_t *v)
{
    if (!json_is_string(v))
        return (struct sess_str){"", 0};
    return (struct sess_str){json_string_value(v), json_string_length(v)};
}

static int64_t
json_ms(json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

/* The username in data.user.username ("" if none), from a parsed object. */
static struct sess_str
data_owner(json_t *obj)
{
    json_t *user = json_object_get(obj, "user");
    return json_str_view(json_is_object(user) ? json_object_get(user, OWNER_FIELD) : NULL);
}

/* The cheap part of "is this a JSON object": braces at both ends. The rest
 * is session.c's parse, which treats a corrupt value as absent. */
static bool
looks_like_object(struct sess_str json)
{
    size_t b = 0, e = json.len;

    while (b < e && is_space(json.ptr[b]))
        b++;
    while (e > b && is_space(json.ptr[e - 1]))
        e--;
    return e - b >= 2 && json.ptr[b] == '{' && json.ptr[e - 1] == '}';
}

/* Appends "owner\0client_addr\0user_agent\0" to `buf`; *addr_off is where
 * the address starts. */
static enum sess_err
append_meta_views(struct sess_buf *buf, struct sess_str owner, const struct meta *m,
                  size_t *addr_off)
{
    enum sess_err err = sess_buf_append(buf, owner.ptr, owner.len);

    if (err == SESS_OK)
        err = sess_buf_append(buf, "", 1);
    *addr_off = buf->len;
    if (err == SESS_OK)
        err = sess_buf_append(buf, m->client_addr.ptr, m->client_addr.len);
    if (err == SESS_OK)
        err = sess_buf_append(buf, "", 1);
    if (err == SESS_OK)
        err = sess_buf_append(buf, m->user_agent.ptr, m->user_agent.len);
    return err == SESS_OK ? sess_buf_append(buf, "", 1) : err;
}

/* Splits a session value's JSON into metadata and the data session.c sees,
 * writing "owner\0client_addr\0user_agent\0data\0" into `buf` and pointing
 * `out`'s views at it;
 * `out->expires_ms` is left to the caller. *has_meta (if not NULL) says
 * whether we wrote the value (else Express made it). The data is not
 * validated here: session.c parses it and treats a corrupt value as absent. */
static enum sess_err
split_json(struct sess_str json, int64_t now_ms, struct sess_record *out, struct sess_buf *buf,
           bool *has_meta)
{
    struct meta m = {0};
    struct sess_str owner = {"", 0}, data = json;
    json_error_t jerr;
    json_t *obj = NULL, *meta;
    char *text = NULL;
    size_t rest, data_off, addr_off;
    enum sess_err err;

    buf->len = 0;
    if (meta_fast(json, &m, &rest)) {
        err = append_meta_views(buf, m.owner, &m, &addr_off);
        if (err == SESS_OK)
            err = sess_buf_append(buf, "{", 1);
        data_off = buf->len - 1;
        /* After "{": the keys that followed META_KEY, or "}" when none. */
        if (json.ptr[rest] == ',')
            rest++;
        if (err == SESS_OK)
            err = sess_buf_append(buf, json.ptr + rest, json.len - rest);
        goto done;
    }
    if (!looks_like_object(json))
        return SESS_ENOTFOUND;
    /* Anything else takes the parser, but a value with neither our key nor
     * a user (an anonymous Express session) needs nothing from it. */
    if (memmem(json.ptr, json.len, META_NEEDLE, sizeof META_NEEDLE - 1) ||
        memmem(json.ptr, json.len, "\"user\"", 6)) {
        obj = json_loadb(json.ptr, json.len, 0, &jerr);
        meta = json_object_get(obj, META_KEY);
        if (json_is_object(meta)) {
            m.is_present = true;
            m.created_ms = json_ms(json_object_get(meta, "created"));
            m.deadline_ms = json_ms(json_object_get(meta, "deadline"));
            owner = json_str_view(json_object_get(meta, "owner"));
            (void)meta_handle(&m, json_str_view(json_object_get(meta, "handle")));
            m.last_seen_ms = json_ms(json_object_get(meta, "seen"));
            m.idle_ms = json_ms(json_object_get(meta, "idle"));
            m.lifetime_ms = json_ms(json_object_get(meta, "life"));
            m.is_remembered = json_is_true(json_object_get(meta, "remember"));
            m.client_addr = json_str_view(json_object_get(meta, "addr"));
            m.user_agent = json_str_view(json_object_get(meta, "ua"));
        } else {
            owner = data_owner(obj);
        }
    }
    err = append_meta_views(buf, owner, &m, &addr_off);
    data_off = buf->len;
    if (err == SESS_OK && m.is_present) {
        /* Copied out above: `owner` pointed into the object freed here. */
        json_object_del(obj, META_KEY);
        text = json_dumps(obj, JSON_COMPACT);
        if (!text)
            err = SESS_ENOMEM;
        data = sess_str_c(text);
    }
    if (err == SESS_OK)
        err = sess_buf_append(buf, data.ptr, data.len);

done:
    if (err == SESS_OK)
        err = sess_buf_append(buf, "", 1);
    if (err == SESS_OK) {
        /* A value Express made: it started now as far as we can tell, and
         * has no absolute deadline (express-session has none). */
        out->created_ms = m.is_present ? m.created_ms : now_ms;
        out->deadline_ms = m.is_present ? m.deadline_ms : 0;
        out->owner = (struct sess_str){buf->ptr, strlen(buf->ptr)};
        out->client_addr = (struct sess_str){buf->ptr + addr_off, strlen(buf->ptr + addr_off)};
        out->user_agent = (struct sess_str){out->client_addr.ptr + out->client_addr.len + 1,
                                            strlen(out->client_addr.ptr + out->client_addr.len + 1)};
        out->data = (struct sess_str){buf->ptr + data_off, buf->len - 1 - data_off};
        out->has_handle = m.has_handle;
        memcpy(out->handle, m.handle, sizeof out->handle);
        out->last_seen_ms = m.last_seen_ms;
        out->idle_ms = m.idle_ms;
        out->lifetime_ms = m.lifetime_ms;
        out->is_remembered = m.is_remembered;
        if (has_meta)
            *has_meta = m.is_present;
    }
    free(text);
    json_decref(obj);
    return err;
}

/* The record stored under `id` as `raw` with `pttl_ms` to live (PTTL: -1
 * when the key has no TTL). The idle expiry comes from the TTL, never from
 * cookie.expires: connect-redis's touch moves the TTL and leaves the value
 * alone, so a live session's stored expires may well be in the past. */
static enum sess_err
decode_value(struct redis_store *rs, struct sess_str id, struct sess_str raw, int64_t now_ms,
             long long pttl_ms, struct sess_record *out, struct sess_buf *buf, bool *has_meta)
{
    struct sess_str json;
    enum sess_err err;
    bool is_ours = false;

    /* The fields Redis does not keep (store.h) read as their defaults. */
    memset(out, 0, sizeof *out);
    err = open_value(rs, id, raw, &json);
    if (err == SESS_OK)
        err = split_json(json, now_ms, out, buf, &is_ours);
    if (rs->plain.ptr)
        sodium_memzero(rs->plain.ptr, rs->plain.len);
    if (err != SESS_OK)
        return err;
    if (has_meta)
        *has_meta = is_ours;
    /* Express's session, seen for the first time (or again, if stamping it
     * failed): its absolute lifetime starts now. */
    if (!is_ours && rs->absolute_ms)
        out->deadline_ms = out->created_ms + rs->absolute_ms;
    out->expires_ms = now_ms + (pttl_ms >= 0 ? (int64_t)pttl_ms : NO_TTL_EXPIRY_MS);
    out->read_tag = 0;
    return SESS_OK;
}

/* Whether a stored value belongs to `owner`: its recorded owner, or the
 * user logged into its data (an Express app may have changed the user
 * since we last wrote it). */
static bool
value_is_owned_by(struct redis_store *rs, struct sess_str id, struct sess_str raw,
                  struct sess_str owner, struct sess_buf *buf)
{
    struct sess_record rec;
    struct sess_str json;
    json_error_t jerr;
    json_t *obj;
    bool is_owned;
    size_t i;
    bool is_plain = true;

    if (open_value(rs, id, raw, &json) != SESS_OK)
        return false;
    /* Most values name someone else: when the name needs no JSON escape it
     * appears verbatim in any value it owns, so a search rules most out. */
    for (i = 0; i < owner.len; i++) {
        unsigned char ch = (unsigned char)owner.ptr[i];
        if (ch < 0x20 || ch == '"' || ch == '\\' || ch == '/' || ch >= 0x7f)
            is_plain = false;
    }
    if (is_plain && !memmem(json.ptr, json.len, owner.ptr, owner.len)) {
        is_owned = false;
        goto out;
    }
    /* Only the owner is looked at: no clock needed. */
    is_owned = split_json(json, 0, &rec, buf, NULL) == SESS_OK && str_eq(rec.owner, owner);
    if (!is_owned) {
        obj = json_loadb(json.ptr, json.len, 0, &jerr);
        is_owned = json_is_object(obj) && str_eq(data_owner(obj), owner);
        json_decref(obj);
    }
out:
    if (rs->plain.ptr)
        sodium_memzero(rs->plain.ptr, rs->plain.len);
    return is_owned;
}

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

/* What the replies to GET and PTTL of a session key say: SESS_OK with a
 * value and its TTL, SESS_ENOTFOUND, or the server's error (never "not
 * found" for a server that cannot answer: that would log users out). */
static enum sess_err
session_replies(struct redis_store *rs, const redisReply *value, const redisReply *pttl)
{
    if (reply_is(value, REDIS_REPLY_ERROR)) {
        /* WRONGTYPE: something else sits under our key; not a session. */
        if (has_prefix(value->str, value->len, "WRONGTYPE"))
            return SESS_ENOTFOUND;
        return reply_error(rs, value, "GET");
    }
    if (reply_is(value, REDIS_REPLY_NIL))
        return SESS_ENOTFOUND;
    if (!reply_is(value, REDIS_REPLY_STRING))
        return reply_error(rs, NULL, "GET");
    if (!reply_is(pttl, REDIS_REPLY_INTEGER))
        return reply_error(rs, pttl, "PTTL");
    /* -2: expired between the two commands. */
    return pttl->integer == -2 ? SESS_ENOTFOUND : SESS_OK;
}

/* GET and PTTL of one key in one round trip: `r[0]` the value, `r[1]` its
 * time to live. */
static enum sess_err
read_session(struct redis_store *rs, const char *key, size_t key_len, redisReply *r[2])
{
    struct cmd cmds[2];
    enum sess_err err;

    cmd_name(&cmds[0], "GET");
    cmd_arg(&cmds[0], key, key_len);
    cmd_name(&cmds[1], "PTTL");
    cmd_arg(&cmds[1], key, key_len);
    err = roundtrip(rs, cmds, 2, r);
    return err == SESS_OK ? session_replies(rs, r[0], r[1]) : err;
}

/* Stores `rec`'s metadata into a value Express made, `raw`, unless it has
 * changed since it was read (then the next reading tries again), keeping
 * its TTL: from then on the value carries the deadline decode_value gave
 * it. A failure costs nothing but that: this reading has its deadline. */
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
    struct cmd c;
    redisReply *r = NULL;

    if (encode_value(rs, id, rec) != SESS_OK)
        return;
    cmd_name(&c, "EVAL");
    cmd_str(&c, STAMP_SCRIPT);
    cmd_str(&c, "1");
    cmd_arg(&c, key, key_len);
    cmd_arg(&c, raw.ptr, raw.len);
    cmd_arg(&c, rs->val.ptr, rs->val.len);
    (void)command(rs, &c, &r);
    free_replies(&r, 1);
}

/* Remembers who owns the session get just read, for touch. */
static void
remember_owner(struct redis_store *rs, struct sess_str id, struct sess_str owner)
{
    rs->seen_id_len = 0;
    rs->seen_owner.len = 0;
    if (sess_buf_append(&rs->seen_owner, owner.ptr, owner.len) != SESS_OK)
        return;
    memcpy(rs->seen_id, id.ptr, id.len);
    rs->seen_id_len = id.len;
}

static enum sess_err
get_once(struct redis_store *rs, struct sess_str id, int64_t now_ms, struct sess_record *out,
         struct sess_buf *buf)
{
    char key[KEY_MAX];
    size_t key_len = session_key(rs, key, id);
    redisReply *r[2];
    enum sess_err err;
    bool has_meta = true;

    err = read_session(rs, key, key_len, r);
    if (err == SESS_OK)
        err = decode_value(rs, id, (struct sess_str){r[0]->str, r[0]->len}, now_ms, r[1]->integer,
                           out, buf, &has_meta);
    if (err == SESS_OK && !has_meta && rs->absolute_ms && sess_record_is_live(out, now_ms))
        stamp_express_value(rs, id, key, key_len, (struct sess_str){r[0]->str, r[0]->len}, out);
    /* Past the absolute deadline, though an Express app kept it alive. */
    if (err == SESS_OK && !sess_record_is_live(out, now_ms))
        err = SESS_ENOTFOUND;
    if (err == SESS_OK)
        remember_owner(rs, id, out->owner);
    free_replies(r, 2);
    return err;
}

static enum sess_err
redis_get(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_record *out,
          struct sess_buf *buf)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    if (!id_is_usable(id))
        return SESS_ENOTFOUND;
    do
        err = get_once(rs, id, now_ms, out, buf);
    while (again(rs, err, &attempt));
    return err;
}

/* Adds ARGV[1] to the set KEYS[1] and keeps the set at least ARGV[2] ms
 * (PTTL -1: no TTL yet). */
#define INDEX_ADD_SCRIPT                                                                           \
    "redis.call('SADD', KEYS[1], ARGV[1]) "                                                        \
    "local t = redis.call('PTTL', KEYS[1]) "                                                       \
    "if t < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "                   \
    "return 1"

/* Queues in `c` the index update for session `id` of `owner` living
 * `ttl_s`: the set's key built in rs->idx, the TTL text in `buf`. */
static enum sess_err
index_add(struct redis_store *rs, struct cmd *c, struct sess_str id, struct sess_str owner,
          int64_t ttl_s, char buf[24])
{
    enum sess_err err = index_key(rs, &rs->idx, owner);

    if (err != SESS_OK)
        return err;
    cmd_name(c, "EVAL");
    cmd_str(c, INDEX_ADD_SCRIPT);
    cmd_str(c, "1");
    cmd_arg(c, rs->idx.ptr, rs->idx.len);
    cmd_arg(c, id.ptr, id.len);
    cmd_i64(c, buf, ttl_s * 1000 + INDEX_SLACK_MS);
    return SESS_OK;
}

/* The replies of MULTI, `queued` commands and EXEC in r[0..queued+1]: an
 * error where a command was queued (READONLY, OOM) or in EXEC's array is
 * the failure. SESS_OK leaves EXEC's array (or nil, after a WATCH) in
 * r[queued + 1]. */
static enum sess_err
exec_replies(struct redis_store *rs, redisReply **r, size_t queued, struct cmd *cmds)
{
    const redisReply *ex = r[queued + 1];
    size_t i;

    for (i = 0; i <= queued; i++)
        if (!reply_is(r[i], REDIS_REPLY_STATUS))
            return reply_error(rs, r[i], cmds[i].argv[0]);
    if (reply_is(ex, REDIS_REPLY_NIL))
        return SESS_OK;
    if (!reply_is(ex, REDIS_REPLY_ARRAY) || ex->elements != queued)
        return reply_error(rs, ex, "EXEC");
    for (i = 0; i < queued; i++)
        if (reply_is(ex->element[i], REDIS_REPLY_ERROR))
            return reply_error(rs, ex->element[i], cmds[i + 1].argv[0]);
    return SESS_OK;
}

/* SET NX of rs->val, in one transaction with the owner's index; then WAIT
 * if asked. */
static enum sess_err
create_once(struct redis_store *rs, const char *key, size_t key_len, int64_t ttl_s,
            struct sess_str owner)
{
    struct cmd cmds[5];
    redisReply *r[5];
    char ttl[24], idx_ttl[24], wait[2][24];
    struct sess_str id = {key + rs->prefix_len, key_len - rs->prefix_len};
    const redisReply *set;
    size_t n = 0, set_at = 0;
    enum sess_err err;

    if (owner.len)
        cmd_name(&cmds[n++], "MULTI");
    set_at = n;
    cmd_name(&cmds[n], "SET");
    cmd_arg(&cmds[n], key, key_len);
    cmd_arg(&cmds[n], rs->val.ptr, rs->val.len);
    cmd_str(&cmds[n], "EX");
    cmd_i64(&cmds[n], ttl, ttl_s);
    cmd_str(&cmds[n++], "NX");
    if (owner.len) {
        err = index_add(rs, &cmds[n++], id, owner, ttl_s, idx_ttl);
        if (err != SESS_OK)
            return err;
        cmd_name(&cmds[n++], "EXEC");
    }
    add_wait(rs, cmds, &n, wait);
    err = roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && owner.len)
        err = exec_replies(rs, r, 2, cmds);
    set = owner.len && err == SESS_OK ? r[3]->element[0] : r[set_at];
    if (err == SESS_OK && reply_is(set, REDIS_REPLY_NIL))
        err = SESS_EEXISTS;
    else if (err == SESS_OK && !reply_is(set, REDIS_REPLY_STATUS))
        err = reply_error(rs, set, "SET");
    if (err == SESS_OK)
        err = check_wait(rs, r[n - 1]);
    free_replies(r, n);
    return err;
}

/* After a create or account write whose reply was lost, the retry found
 * the key taken: SESS_OK if it holds the very bytes we sent (the session
 * id, or the account's salted hash, makes them ours alone), written again
 * to be WAITed for; else `err`. */
static enum sess_err
stored_is_ours(struct redis_store *rs, const char *hash, const char *key, size_t key_len,
               struct sess_str val, enum sess_err err)
{
    struct cmd cmds[2];
    redisReply *r[2];
    char wait[2][24];
    size_t n = 0;
    enum sess_err e;

    cmd_name(&cmds[0], hash ? "HGET" : "GET");
    if (hash)
        cmd_str(&cmds[0], hash);
    cmd_arg(&cmds[0], key, key_len);
    e = command(rs, cmds, r);
    if (e == SESS_OK && reply_is(r[0], REDIS_REPLY_STRING) && r[0]->len == val.len &&
        memcmp(r[0]->str, val.ptr, val.len) == 0)
        err = SESS_OK;
    else if (e != SESS_OK)
        err = e;
    free_replies(r, 1);
    if (err != SESS_OK || rs->min_replicas == 0)
        return err;
    cmd_name(&cmds[0], hash ? "HSET" : "SET");
    if (hash)
        cmd_str(&cmds[0], hash);
    cmd_arg(&cmds[0], key, key_len);
    cmd_arg(&cmds[0], val.ptr, val.len);
    if (!hash) {
        cmd_str(&cmds[0], "XX");
        cmd_str(&cmds[0], "KEEPTTL");
    }
    n = 1;
    add_wait(rs, cmds, &n, wait);
    err = roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && reply_is(r[0], REDIS_REPLY_ERROR))
        err = reply_error(rs, r[0], cmds[0].argv[0]);
    if (err == SESS_OK)
        err = check_wait(rs, r[1]);
    free_replies(r, n);
    return err;
}

static enum sess_err
redis_create(struct sess_store *st, struct sess_str id, int64_t now_ms,
             const struct sess_record *rec)
{
    struct redis_store *rs = (struct redis_store *)st;
    char key[KEY_MAX];
    size_t key_len;
    int64_t ttl_s;
    enum sess_err err;
    int attempt = 0;
    bool was_unsure = false;

    if (!id_is_usable(id))
        return SESS_EBADINPUT;
    ttl_s = ttl_seconds(rec, now_ms);
    /* connect-redis stores nothing that is already dead. */
    if (ttl_s == 0)
        return SESS_OK;
    err = encode_value(rs, id, rec);
    if (err != SESS_OK)
        return err;
    key_len = session_key(rs, key, id);
    do {
        err = create_once(rs, key, key_len, ttl_s, rec->owner);
        /* SET NX again after a lost reply: taken, perhaps by the first. */
        if (err == SESS_EEXISTS && was_unsure)
            err = stored_is_ours(rs, NULL, key, key_len,
                                 (struct sess_str){rs->val.ptr, rs->val.len}, err);
        was_unsure = rs->is_unsure;
    } while (again(rs, err, &attempt));
    return err;
}

/* A WATCH left behind would abort this connection's next MULTI whenever
 * that key changed. Without a connection there is no WATCH either; if the
 * UNWATCH fails, the connection goes and the WATCH with it. The message of
 * the failure that brought us here is the one to keep. */
static void
unwatch(struct redis_store *rs)
{
    char errmsg[sizeof rs->base.errmsg];
    struct cmd c;
    redisReply *r;

    if (!rs->c)
        return;
    memcpy(errmsg, rs->base.errmsg, sizeof errmsg);
    cmd_name(&c, "UNWATCH");
    if (command(rs, &c, &r) == SESS_OK)
        freeReplyObject(r);
    memcpy(rs->base.errmsg, errmsg, sizeof errmsg);
}

/* One optimistic transaction: WATCH and read, merge here, then MULTI/SET/
 * EXEC (with the owner's index), which Redis refuses (a nil reply) if
 * anyone wrote the key since the WATCH. *is_conflict then asks for another
 * go. After an EXEC whose reply was lost (rs->is_val_sent), a value equal
 * to the bytes we sent is our write, applied: it is written again as it is
 * (for WAIT), not merged a second time. */
static enum sess_err
update_try(struct redis_store *rs, struct sess_str id, int64_t now_ms, struct sess_patch *patch,
           bool *is_conflict)
{
    char key[KEY_MAX], ttl[24], idx_ttl[24], wait[2][24];
    size_t key_len = session_key(rs, key, id);
    struct cmd cmds[6];
    redisReply *r[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    struct sess_record cur, next;
    int64_t ttl_s;
    enum sess_err err;
    size_t n = 3, queued;
    bool is_ours;

    *is_conflict = false;
    cmd_name(&cmds[0], "WATCH");
    cmd_arg(&cmds[0], key, key_len);
    cmd_name(&cmds[1], "GET");
    cmd_arg(&cmds[1], key, key_len);
    cmd_name(&cmds[2], "PTTL");
    cmd_arg(&cmds[2], key, key_len);
    err = roundtrip(rs, cmds, 3, r);
    if (err != SESS_OK)
        goto out;
    if (!reply_is(r[0], REDIS_REPLY_STATUS)) {
        err = reply_error(rs, r[0], "WATCH");
        goto out;
    }
    err = session_replies(rs, r[1], r[2]);
    if (err != SESS_OK)
        goto unwatch;
    is_ours = rs->is_val_sent && r[1]->len == rs->val.len &&
              memcmp(r[1]->str, rs->val.ptr, rs->val.len) == 0;
    err = decode_value(rs, id, (struct sess_str){r[1]->str, r[1]->len}, now_ms, r[2]->integer, &cur,
                       &rs->cur, NULL);
    if (err == SESS_OK && !sess_record_is_live(&cur, now_ms))
        err = SESS_ENOTFOUND;
    if (err != SESS_OK)
        goto unwatch;
    next = cur;
    if (!is_ours) {
        err = sess_patch_merge(patch, &cur, &next);
        if (err == SESS_OK)
            err = encode_value(rs, id, &next);
    }
    if (err != SESS_OK)
        goto unwatch;
    free_replies(r, 3);

    n = 0;
    cmd_name(&cmds[n++], "MULTI");
    ttl_s = ttl_seconds(&next, now_ms);
    if (ttl_s > 0) {
        cmd_name(&cmds[n], "SET");
        cmd_arg(&cmds[n], key, key_len);
        cmd_arg(&cmds[n], rs->val.ptr, rs->val.len);
        cmd_str(&cmds[n], "EX");
        cmd_i64(&cmds[n++], ttl, ttl_s);
        if (next.owner.len)
            err = index_add(rs, &cmds[n++], id, next.owner, ttl_s, idx_ttl);
    } else {
        /* Saved already expired: connect-redis deletes it. */
        cmd_name(&cmds[n], "DEL");
        cmd_arg(&cmds[n++], key, key_len);
    }
    /* Logged out or someone else now: off the old owner's list. */
    if (err == SESS_OK && cur.owner.len && !str_eq(cur.owner, next.owner)) {
        err = index_key(rs, &rs->idx_old, cur.owner);
        cmd_name(&cmds[n], "SREM");
        cmd_arg(&cmds[n], rs->idx_old.ptr, rs->idx_old.len);
        cmd_arg(&cmds[n++], id.ptr, id.len);
    }
    if (err != SESS_OK) {
        n = 0;
        goto unwatch;
    }
    queued = n - 1;
    cmd_name(&cmds[n++], "EXEC");
    add_wait(rs, cmds, &n, wait);
    err = roundtrip(rs, cmds, n, r);
    if (err != SESS_OK) {
        rs->is_val_sent = rs->is_unsure;
        goto out;
    }
    err = exec_replies(rs, r, queued, cmds);
    if (err == SESS_OK && reply_is(r[queued + 1], REDIS_REPLY_NIL))
        *is_conflict = true;
    else if (err == SESS_OK)
        err = check_wait(rs, r[n - 1]);
    goto out;
unwatch:
    unwatch(rs);
out:
    free_replies(r, n);
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
    sess_fmt(rs->base.errmsg, sizeof rs->base.errmsg,
             "%s: session %.8s... changed under %d attempts to update it in a row", rs->where,
             id.ptr, UPDATE_ATTEMPTS);
    return SESS_ESTORE;
}

static enum sess_err
redis_update(struct sess_store *st, struct sess_str id, int64_t now_ms, struct sess_patch *patch)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    if (!id_is_usable(id))
        return SESS_ENOTFOUND;
    /* A merge run twice after a lost EXEC reply would apply the request
     * twice (a counter counts two): update_try tells our own write by its
     * bytes. SESS_ECONFLICT from the merge goes back to session.c as it
     * is: it runs the request again. */
    rs->is_val_sent = false;
    do
        err = update_once(rs, id, now_ms, patch);
    while (again(rs, err, &attempt));
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

static enum sess_err
touch_once(struct redis_store *rs, const char *key, size_t key_len, int64_t ttl_s,
           struct sess_str owner)
{
    struct cmd cmds[5];
    redisReply *r[5];
    char ttl[24], idx_ttl[24], wait[2][24];
    struct sess_str id = {key + rs->prefix_len, key_len - rs->prefix_len};
    const redisReply *res;
    size_t n = 0;
    enum sess_err err;
    bool has_index = owner.len && ttl_s > 0;

    /* connect-redis's touch: EXPIRE, the value left alone; a TTL of 0 makes
     * Redis delete the key. The owner's index lives as long. */
    if (has_index)
        cmd_name(&cmds[n++], "MULTI");
    cmd_name(&cmds[n], "EXPIRE");
    cmd_arg(&cmds[n], key, key_len);
    cmd_i64(&cmds[n++], ttl, ttl_s);
    if (has_index) {
        err = index_add(rs, &cmds[n++], id, owner, ttl_s, idx_ttl);
        if (err != SESS_OK)
            return err;
        cmd_name(&cmds[n++], "EXEC");
    }
    add_wait(rs, cmds, &n, wait);
    err = roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && has_index)
        err = exec_replies(rs, r, 2, cmds);
    res = has_index && err == SESS_OK ? r[3]->element[0] : r[0];
    if (err == SESS_OK && !reply_is(res, REDIS_REPLY_INTEGER))
        err = reply_error(rs, res, "EXPIRE");
    else if (err == SESS_OK && res->integer == 0)
        err = SESS_ENOTFOUND;
    if (err == SESS_OK)
        err = check_wait(rs, r[n - 1]);
    free_replies(r, n);
    return err;
}

static enum sess_err
redis_touch(struct sess_store *st, struct sess_str id, int64_t now_ms, int64_t expires_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    struct sess_record rec = {.expires_ms = expires_ms};
    struct sess_str owner = {"", 0};
    char key[KEY_MAX];
    size_t key_len;
    enum sess_err err;
    int attempt = 0;

    if (!id_is_usable(id))
        return SESS_ENOTFOUND;
    /* session.c touches what it has just read (get); a touch of anything
     * else leaves the index alone, which INDEX_SLACK_MS covers. */
    if (str_eq(id, (struct sess_str){rs->seen_id, rs->seen_id_len}))
        owner = (struct sess_str){rs->seen_owner.ptr, rs->seen_owner.len};
    key_len = session_key(rs, key, id);
    do
        err = touch_once(rs, key, key_len, ttl_seconds(&rec, now_ms), owner);
    while (again(rs, err, &attempt));
    return err;
}

/* `verb` (DEL, or SREM with `set`) of `n` keys or members in one command;
 * *deleted says how many existed. */
static enum sess_err
keys_command(struct redis_store *rs, const char *verb, struct sess_str set, const char *const *keys,
             const size_t *lens, size_t n, size_t *deleted)
{
    const char **argv = NULL;
    size_t *argl = NULL;
    redisReply *r = NULL;
    enum sess_err err;
    size_t i, base;
    void *reply;

    *deleted = 0;
    if (n == 0)
        return SESS_OK;
    if (n >= INT_MAX - 2)
        return SESS_ENOMEM;
    err = connection(rs);
    if (err != SESS_OK)
        return err;
    argv = malloc((n + 2) * sizeof *argv);
    argl = malloc((n + 2) * sizeof *argl);
    if (!argv || !argl) {
        err = SESS_ENOMEM;
        goto out;
    }
    argv[0] = verb;
    argl[0] = strlen(verb);
    argv[1] = set.ptr;
    argl[1] = set.len;
    base = set.len ? 2 : 1;
    for (i = 0; i < n; i++) {
        argv[i + base] = keys[i];
        argl[i + base] = lens[i];
    }
    errno = 0;
    reply = redisCommandArgv(rs->c, (int)(n + base), argv, argl);
    if (!reply) {
        err = broken(rs, "deleting sessions", errno, true);
        goto out;
    }
    r = reply;
    rs->is_reused = true;
    rs->used_ms = mono_ms();
    if (!reply_is(r, REDIS_REPLY_INTEGER))
        err = reply_error(rs, r, verb);
    else
        *deleted = (size_t)r->integer;
out:
    freeReplyObject(r);
    free(argv);
    free(argl);
    return err;
}

/* DEL of `n` keys in one command; *deleted says how many existed. */
static enum sess_err
delete_keys(struct redis_store *rs, const char *const *keys, const size_t *lens, size_t n,
            size_t *deleted)
{
    return keys_command(rs, "DEL", (struct sess_str){"", 0}, keys, lens, n, deleted);
}

static enum sess_err
destroy_once(struct redis_store *rs, const char *key, size_t key_len)
{
    struct cmd cmds[2];
    redisReply *r[2];
    char wait[2][24];
    size_t n = 1;
    enum sess_err err;

    cmd_name(&cmds[0], "DEL");
    cmd_arg(&cmds[0], key, key_len);
    add_wait(rs, cmds, &n, wait);
    err = roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && !reply_is(r[0], REDIS_REPLY_INTEGER))
        err = reply_error(rs, r[0], "DEL");
    if (err == SESS_OK)
        err = check_wait(rs, r[n - 1]);
    free_replies(r, n);
    return err;
}

static enum sess_err
redis_destroy(struct sess_store *st, struct sess_str id, int64_t now_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    char key[KEY_MAX];
    size_t key_len;
    enum sess_err err;
    int attempt = 0;

    (void)now_ms;
    if (!id_is_usable(id))
        return SESS_OK;
    key_len = session_key(rs, key, id);
    do
        err = destroy_once(rs, key, key_len);
    while (again(rs, err, &attempt));
    return err;
}

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
        free_replies(s->values, s->n * (s->with_ttl ? 2 : 1));
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
    if (k.len < s->prefix_len || !id_is_usable(id))
        return (struct sess_str){"", 0};
    return id;
}

/* The value of key i, or NULL when it has gone since the SCAN. */
static const redisReply *
scan_value(const struct scan_step *s, size_t i)
{
    const redisReply *v = s->values[s->with_ttl ? 2 * i : i];
    return reply_is(v, REDIS_REPLY_STRING) ? v : NULL;
}

static long long
scan_pttl(const struct scan_step *s, size_t i)
{
    const redisReply *t = s->with_ttl ? s->values[2 * i + 1] : NULL;
    return reply_is(t, REDIS_REPLY_INTEGER) ? t->integer : -1;
}

static enum sess_err
scan_step(struct redis_store *rs, const char *cursor, const char *count, bool with_ttl,
          struct scan_step *s)
{
    struct cmd c, *cmds = NULL;
    const redisReply *keys;
    size_t i, per = with_ttl ? 2 : 1;
    enum sess_err err;

    memset(s, 0, sizeof *s);
    s->with_ttl = with_ttl;
    s->prefix_len = rs->prefix_len;
    cmd_name(&c, "SCAN");
    cmd_str(&c, cursor);
    cmd_str(&c, "MATCH");
    cmd_str(&c, rs->pattern);
    cmd_str(&c, "COUNT");
    cmd_str(&c, count);
    err = command(rs, &c, &s->scan);
    if (err != SESS_OK)
        return err;
    if (!reply_is(s->scan, REDIS_REPLY_ARRAY) || s->scan->elements != 2 ||
        !reply_is(s->scan->element[0], REDIS_REPLY_STRING) ||
        s->scan->element[0]->len >= sizeof s->next ||
        !reply_is(s->scan->element[1], REDIS_REPLY_ARRAY))
        return reply_error(rs, s->scan, "SCAN");
    memcpy(s->next, s->scan->element[0]->str, s->scan->element[0]->len + 1);
    keys = s->scan->element[1];
    for (i = 0; i < keys->elements; i++)
        if (!reply_is(keys->element[i], REDIS_REPLY_STRING))
            return reply_error(rs, NULL, "SCAN");
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
        cmd_name(&cmds[i * per], "GET");
        cmd_arg(&cmds[i * per], keys->element[i]->str, keys->element[i]->len);
        if (with_ttl) {
            cmd_name(&cmds[i * per + 1], "PTTL");
            cmd_arg(&cmds[i * per + 1], keys->element[i]->str, keys->element[i]->len);
        }
    }
    err = roundtrip(rs, cmds, s->n * per, s->values);
    free(cmds);
    return err;
}

static enum sess_err
destroy_owner_once(struct redis_store *rs, struct sess_str owner, size_t *count)
{
    struct scan_step s = {0};
    struct sess_buf buf = {0};
    const char **keys = NULL;
    size_t *lens = NULL, n, i, deleted;
    char cursor[24] = "0";
    enum sess_err err;

    *count = 0;
    do {
        err = scan_step(rs, cursor, SCAN_COUNT, false, &s);
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
                value_is_owned_by(rs, id, (struct sess_str){v->str, v->len}, owner, &buf)) {
                keys[n] = key.ptr;
                lens[n++] = key.len;
            }
        }
        /* SCAN may name a key twice; DEL counts each key once. */
        err = delete_keys(rs, keys, lens, n, &deleted);
        *count += deleted;
        memcpy(cursor, s.next, sizeof cursor);
        scan_free(&s);
    } while (err == SESS_OK && strcmp(cursor, "0") != 0);
    scan_free(&s);
    free(keys);
    free(lens);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess_buf_free(&buf);
    return err;
}

/* ------------------------------------------------------------------------
 * One user's sessions: the per-user index
 * ------------------------------------------------------------------------ */

/* One SSCAN step over an index, with each member's value and TTL in one
 * pipelined round trip. The caller frees with index_free. */
struct index_step {
    redisReply *sscan; /* [next cursor, [id...]] */
    char (*keys)[KEY_MAX];
    size_t *key_lens;
    redisReply **values; /* GET and PTTL replies, two per member */
    size_t n;
    char next[24];
};

static void
index_free(struct index_step *s)
{
    if (s->values)
        free_replies(s->values, 2 * s->n);
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

    return reply_is(m, REDIS_REPLY_STRING) && id_is_usable(id) ? id : (struct sess_str){"", 0};
}

static enum sess_err
index_step(struct redis_store *rs, struct sess_str set, const char *cursor, struct index_step *s)
{
    struct cmd c, *cmds = NULL;
    const redisReply *ids;
    size_t i;
    enum sess_err err;

    memset(s, 0, sizeof *s);
    cmd_name(&c, "SSCAN");
    cmd_arg(&c, set.ptr, set.len);
    cmd_str(&c, cursor);
    cmd_str(&c, "COUNT");
    cmd_str(&c, SCAN_COUNT);
    err = command(rs, &c, &s->sscan);
    if (err != SESS_OK)
        return err;
    if (!reply_is(s->sscan, REDIS_REPLY_ARRAY) || s->sscan->elements != 2 ||
        !reply_is(s->sscan->element[0], REDIS_REPLY_STRING) ||
        s->sscan->element[0]->len >= sizeof s->next ||
        !reply_is(s->sscan->element[1], REDIS_REPLY_ARRAY))
        return reply_error(rs, s->sscan, "SSCAN");
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
        s->key_lens[i] = id.len ? session_key(rs, s->keys[i], id) : 0;
        cmd_name(&cmds[2 * i], "GET");
        cmd_arg(&cmds[2 * i], s->keys[i], s->key_lens[i]);
        cmd_name(&cmds[2 * i + 1], "PTTL");
        cmd_arg(&cmds[2 * i + 1], s->keys[i], s->key_lens[i]);
    }
    err = roundtrip(rs, cmds, 2 * s->n, s->values);
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
    err = index_key(rs, &set, owner);
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

            raw = reply_is(v, REDIS_REPLY_STRING) ? (struct sess_str){v->str, v->len}
                                                  : (struct sess_str){"", 0};
            if (!id.len || !raw.len || !value_is_owned_by(rs, id, raw, owner, &scratch)) {
                if (reply_is(m, REDIS_REPLY_STRING)) {
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
            if (decode_value(rs, id, raw, now_ms,
                             reply_is(t, REDIS_REPLY_INTEGER) ? t->integer : -1, &rec, &buf,
                             NULL) != SESS_OK)
                continue;
            (*count)++;
            is_going = visit(arg, id, &rec);
        }
        err = delete_keys(rs, owned, owned_lens, n_owned, &deleted);
        if (is_destroying)
            *count += deleted;
        if (err == SESS_OK)
            err = keys_command(rs, "SREM", (struct sess_str){set.ptr, set.len}, gone, gone_lens,
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
    sess_buf_free(&buf);
    sess_buf_free(&scratch);
    sess_buf_free(&set);
    return err;
}

/* Every session of a user: through the user's index, or with
 * st->is_owner_scan (sessctl --scan) by SCAN over all sessions, which also
 * finds what an Express app logged in and we never wrote (it adds nothing
 * to our index). The walk costs a SCAN step of SCAN_COUNT keys, one
 * pipelined round trip of GETs and one DEL at a time: about a second per
 * 100,000 sessions on loopback. */
static enum sess_err
redis_destroy_owner(struct sess_store *st, struct sess_str owner, int64_t now_ms, size_t *count)
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
            err = destroy_owner_once(rs, owner, &n);
        else
            err = index_walk(rs, owner, now_ms, true, NULL, NULL, &n);
        *count += n;
    } while (again(rs, err, &attempt));
    return err;
}

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
            decode_value(rs, id, (struct sess_str){v->str, v->len}, now_ms, -1, &rec, &buf, NULL) !=
                SESS_OK)
            continue;
        if (rec.deadline_ms != 0 && rec.deadline_ms <= now_ms) {
            keys[n] = key.ptr;
            lens[n++] = key.len;
        }
    }
    err = delete_keys(rs, keys, lens, n, purged);
out:
    scan_free(&s);
    free(keys);
    free(lens);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess_buf_free(&buf);
    return err;
}

static enum sess_err
redis_gc(struct sess_store *st, int64_t now_ms, size_t max, size_t *purged, bool *more)
{
    struct redis_store *rs = (struct redis_store *)st;
    char next[24];
    enum sess_err err;
    int attempt = 0;

    *purged = 0;
    *more = false;
    do
        err = gc_step(rs, now_ms, max ? max : 1, rs->gc_cursor, next, purged);
    while (again(rs, err, &attempt));
    if (err != SESS_OK)
        return err;
    memcpy(rs->gc_cursor, next, sizeof rs->gc_cursor);
    *more = strcmp(next, "0") != 0;
    return SESS_OK;
}

/* At most one process per GC_INTERVAL_MS does a step, continuing the walk
 * where the last one stopped (the cursor is kept in Redis). */
static void
redis_gc_if_due(struct sess_store *st, int64_t now_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    struct cmd cmds[2], c;
    redisReply *r[2] = {NULL, NULL}, *w = NULL;
    char interval[24], cursor[24] = "0", next[24];
    size_t purged;

    if (now_ms < rs->gc_check_ms)
        return;
    /* Spread over the next interval so the processes do not all look at
     * the same instant. */
    rs->gc_check_ms = now_ms + GC_INTERVAL_MS + (int64_t)randombytes_uniform(GC_INTERVAL_MS);
    cmd_name(&cmds[0], "SET");
    cmd_str(&cmds[0], GC_LOCK_KEY);
    cmd_str(&cmds[0], "1");
    cmd_str(&cmds[0], "PX");
    cmd_i64(&cmds[0], interval, GC_INTERVAL_MS);
    cmd_str(&cmds[0], "NX");
    cmd_name(&cmds[1], "GET");
    cmd_str(&cmds[1], GC_CURSOR_KEY);
    if (roundtrip(rs, cmds, 2, r) != SESS_OK || !reply_is(r[0], REDIS_REPLY_STATUS))
        goto out;
    if (reply_is(r[1], REDIS_REPLY_STRING) && r[1]->len < sizeof cursor)
        memcpy(cursor, r[1]->str, r[1]->len + 1);
    if (gc_step(rs, now_ms, SESS_GC_BATCH, cursor, next, &purged) != SESS_OK)
        goto out;
    cmd_name(&c, "SET");
    cmd_str(&c, GC_CURSOR_KEY);
    cmd_str(&c, next);
    if (command(rs, &c, &w) == SESS_OK)
        freeReplyObject(w);
out:
    free_replies(r, 2);
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
    struct cmd c;
    redisReply *r;
    enum sess_err err;

    cmd_name(&c, "HLEN");
    cmd_str(&c, USERS_KEY);
    err = command(rs, &c, &r);
    if (err == SESS_OK && !reply_is(r, REDIS_REPLY_INTEGER))
        err = reply_error(rs, r, "HLEN");
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
        err = scan_step(rs, cursor, SCAN_COUNT, false, &s);
        for (i = 0; err == SESS_OK && i < s.n; i++) {
            const redisReply *v = scan_value(&s, i);
            struct sess_str id = scan_id(&s, i);

            if (!v || !id.len)
                continue;
            out->sessions++;
            if (decode_value(rs, id, (struct sess_str){v->str, v->len}, now_ms, -1, &rec, &buf,
                             &has_meta) != SESS_OK)
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
    sess_buf_free(&buf);
    return err;
}

static enum sess_err
redis_stats(struct sess_store *st, int64_t now_ms, struct sess_store_stats *out)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    do
        err = stats_once(rs, now_ms, out);
    while (again(rs, err, &attempt));
    return err;
}

static enum sess_err
redis_each(struct sess_store *st, struct sess_str owner, int64_t now_ms, sess_record_visit_fn visit,
           void *arg)
{
    struct redis_store *rs = (struct redis_store *)st;
    struct scan_step s = {0};
    struct sess_buf buf = {0}, scratch = {0};
    struct sess_record rec;
    char cursor[24] = "0";
    enum sess_err err;
    bool is_going = true;
    size_t i, n;

    if (owner.len && !st->is_owner_scan)
        return index_walk(rs, owner, now_ms, false, visit, arg, &n);
    do {
        err = scan_step(rs, cursor, SCAN_COUNT, true, &s);
        for (i = 0; err == SESS_OK && is_going && i < s.n; i++) {
            const redisReply *v = scan_value(&s, i);
            struct sess_str id = scan_id(&s, i), raw;

            if (!v || !id.len)
                continue;
            raw = (struct sess_str){v->str, v->len};
            if (owner.len && !value_is_owned_by(rs, id, raw, owner, &scratch))
                continue;
            if (decode_value(rs, id, raw, now_ms, scan_pttl(&s, i), &rec, &buf, NULL) != SESS_OK)
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
    sess_buf_free(&buf);
    sess_buf_free(&scratch);
    return err;
}

/* ------------------------------------------------------------------------
 * Accounts: one hash, name -> account JSON
 * ------------------------------------------------------------------------ */

static enum sess_err
user_get_once(struct redis_store *rs, struct sess_str name, struct sess_buf *value)
{
    struct cmd c;
    redisReply *r;
    enum sess_err err;

    cmd_name(&c, "HGET");
    cmd_str(&c, USERS_KEY);
    cmd_arg(&c, name.ptr, name.len);
    err = command(rs, &c, &r);
    if (err != SESS_OK)
        goto out;
    if (reply_is(r, REDIS_REPLY_NIL)) {
        err = SESS_ENOTFOUND;
        goto out;
    }
    if (!reply_is(r, REDIS_REPLY_STRING)) {
        err = reply_error(rs, r, "HGET");
        goto out;
    }
    value->len = 0;
    err = sess_buf_append(value, r->str, r->len);
    if (err == SESS_OK)
        err = sess_buf_append(value, "", 1);
    if (err == SESS_OK)
        value->len--;
out:
    freeReplyObject(r);
    return err;
}

static enum sess_err
redis_user_get(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_buf *value)
{
    struct redis_store *rs = (struct redis_store *)st;
    enum sess_err err;
    int attempt = 0;

    (void)now_ms;
    if (name.len == 0)
        return SESS_ENOTFOUND;
    do
        err = user_get_once(rs, name, value);
    while (again(rs, err, &attempt));
    return err;
}

/* HSET, HSETNX or HDEL of one account; for HDEL, 0 deleted is
 * SESS_ENOTFOUND, for HSETNX 0 set is SESS_EEXISTS. */
static enum sess_err
user_write_once(struct redis_store *rs, const char *verb, struct sess_str name,
                const struct sess_str *value)
{
    struct cmd cmds[2];
    redisReply *r[2];
    char wait[2][24];
    size_t n = 1;
    enum sess_err err;

    cmd_name(&cmds[0], verb);
    cmd_str(&cmds[0], USERS_KEY);
    cmd_arg(&cmds[0], name.ptr, name.len);
    if (value)
        cmd_arg(&cmds[0], value->ptr, value->len);
    add_wait(rs, cmds, &n, wait);
    err = roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && !reply_is(r[0], REDIS_REPLY_INTEGER))
        err = reply_error(rs, r[0], verb);
    else if (err == SESS_OK && !value && r[0]->integer == 0)
        err = SESS_ENOTFOUND;
    else if (err == SESS_OK && strcmp(verb, "HSETNX") == 0 && r[0]->integer == 0)
        err = SESS_EEXISTS;
    if (err == SESS_OK)
        err = check_wait(rs, r[n - 1]);
    free_replies(r, n);
    return err;
}

static enum sess_err
redis_user_put(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str value,
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
            err = stored_is_ours(rs, USERS_KEY, name.ptr, name.len, value, err);
        was_unsure = rs->is_unsure;
    } while (again(rs, err, &attempt));
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
    struct cmd c;
    redisReply *r = NULL;
    enum sess_err err;

    cmd_name(&c, "EVAL");
    cmd_str(&c, USER_REPLACE_SCRIPT);
    cmd_str(&c, "1");
    cmd_str(&c, USERS_KEY);
    cmd_arg(&c, name.ptr, name.len);
    cmd_arg(&c, old.ptr, old.len);
    cmd_arg(&c, value.ptr, value.len);
    err = command(rs, &c, &r);
    if (err == SESS_OK && !reply_is(r, REDIS_REPLY_INTEGER))
        err = reply_error(rs, r, "EVAL");
    else if (err == SESS_OK && r->integer < 0)
        err = SESS_ENOTFOUND;
    else if (err == SESS_OK && r->integer == 0)
        err = SESS_ECONFLICT;
    free_replies(&r, 1);
    return err;
}

static enum sess_err
redis_user_replace(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_str old,
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
    while (again(rs, err, &attempt));
    return err;
}

static enum sess_err
redis_user_del(struct sess_store *st, struct sess_str name, int64_t now_ms)
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
    } while (again(rs, err, &attempt));
    return err;
}

static enum sess_err
redis_user_each(struct sess_store *st, int64_t now_ms, sess_user_visit_fn visit, void *arg)
{
    struct redis_store *rs = (struct redis_store *)st;
    struct cmd c;
    redisReply *r = NULL;
    const redisReply *items;
    char cursor[24] = "0";
    enum sess_err err;
    bool is_going = true;
    size_t i;

    (void)now_ms;
    do {
        cmd_name(&c, "HSCAN");
        cmd_str(&c, USERS_KEY);
        cmd_str(&c, cursor);
        cmd_str(&c, "COUNT");
        cmd_str(&c, SCAN_COUNT);
        err = command(rs, &c, &r);
        if (err != SESS_OK)
            break;
        if (!reply_is(r, REDIS_REPLY_ARRAY) || r->elements != 2 ||
            !reply_is(r->element[0], REDIS_REPLY_STRING) || r->element[0]->len >= sizeof cursor ||
            !reply_is(r->element[1], REDIS_REPLY_ARRAY) || r->element[1]->elements % 2) {
            err = reply_error(rs, r, "HSCAN");
            break;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
        items = r->element[1];
        for (i = 0; is_going && i + 1 < items->elements; i += 2) {
            const redisReply *k = items->element[i], *v = items->element[i + 1];
            if (reply_is(k, REDIS_REPLY_STRING) && reply_is(v, REDIS_REPLY_STRING))
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
    size_t n = sizeof THROTTLE_PREFIX - 1;

    crypto_generichash(hash, sizeof hash, (const unsigned char *)key.ptr, key.len, NULL, 0);
    memcpy(out, THROTTLE_PREFIX, n);
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
    if (reply_is(count, REDIS_REPLY_INTEGER))
        n = count->integer;
    else if (reply_is(count, REDIS_REPLY_STRING))
        n = strtoll(count->str, NULL, 10);
    /* Without a TTL the window cannot be known: no such counter is ever
     * made below, so it is not ours. */
    if (n <= 0 || !reply_is(pttl, REDIS_REPLY_INTEGER) || pttl->integer < 0)
        return;
    *out_count = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    *first_ms = now_ms + pttl->integer - window_ms;
}

static enum sess_err
throttle_hit_once(struct redis_store *rs, const char *key, size_t key_len, int64_t now_ms,
                  int64_t window_ms, uint32_t *count, int64_t *first_ms)
{
    struct cmd cmds[6];
    redisReply *r[6];
    char window[24], wait[2][24];
    const redisReply *res;
    enum sess_err err;
    size_t i, n = 5;

    /* In one transaction: the first failure creates the counter with the
     * window as its TTL, and INCR never meets a key that expired in
     * between (it would make a counter without a TTL: a lock for ever). */
    cmd_name(&cmds[0], "MULTI");
    cmd_name(&cmds[1], "SET");
    cmd_arg(&cmds[1], key, key_len);
    cmd_str(&cmds[1], "0");
    cmd_str(&cmds[1], "PX");
    cmd_i64(&cmds[1], window, window_ms > 0 ? window_ms : 1);
    cmd_str(&cmds[1], "NX");
    cmd_name(&cmds[2], "INCR");
    cmd_arg(&cmds[2], key, key_len);
    cmd_name(&cmds[3], "PTTL");
    cmd_arg(&cmds[3], key, key_len);
    cmd_name(&cmds[4], "EXEC");
    add_wait(rs, cmds, &n, wait);
    err = roundtrip(rs, cmds, n, r);
    if (err == SESS_OK) {
        for (i = 1; i < 4 && err == SESS_OK; i++)
            if (reply_is(r[i], REDIS_REPLY_ERROR))
                err = reply_error(rs, r[i], cmds[i].argv[0]);
        res = r[4];
        if (err == SESS_OK && (!reply_is(res, REDIS_REPLY_ARRAY) || res->elements != 3 ||
                               reply_is(res->element[1], REDIS_REPLY_ERROR)))
            err = reply_error(
                rs, reply_is(res, REDIS_REPLY_ARRAY) && res->elements == 3 ? res->element[1] : res,
                "EXEC");
        if (err == SESS_OK)
            throttle_state(res->element[1], res->element[2], now_ms, window_ms, count, first_ms);
        if (err == SESS_OK)
            err = check_wait(rs, r[n - 1]);
    }
    free_replies(r, n);
    return err;
}

static enum sess_err
redis_throttle_hit(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
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
    err = fresh_connection(rs);
    if (err == SESS_OK)
        err = throttle_hit_once(rs, k, k_len, now_ms, window_ms, count, first_ms);
    rs->may_retry = false;
    return err;
}

static enum sess_err
throttle_peek_once(struct redis_store *rs, const char *key, size_t key_len, int64_t now_ms,
                   int64_t window_ms, uint32_t *count, int64_t *first_ms)
{
    struct cmd cmds[2];
    redisReply *r[2];
    enum sess_err err;

    cmd_name(&cmds[0], "GET");
    cmd_arg(&cmds[0], key, key_len);
    cmd_name(&cmds[1], "PTTL");
    cmd_arg(&cmds[1], key, key_len);
    err = roundtrip(rs, cmds, 2, r);
    if (err == SESS_OK && reply_is(r[0], REDIS_REPLY_ERROR))
        err = reply_error(rs, r[0], "GET");
    if (err == SESS_OK)
        throttle_state(r[0], r[1], now_ms, window_ms, count, first_ms);
    free_replies(r, 2);
    return err;
}

static enum sess_err
redis_throttle_peek(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms,
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
    while (again(rs, err, &attempt));
    return err;
}

static enum sess_err
redis_throttle_clear(struct sess_store *st, struct sess_str key, int64_t now_ms)
{
    struct redis_store *rs = (struct redis_store *)st;
    char k[THR_KEY_MAX];
    size_t k_len = throttle_key(k, key);
    enum sess_err err;
    int attempt = 0;

    (void)now_ms;
    do
        err = destroy_once(rs, k, k_len);
    while (again(rs, err, &attempt));
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
    struct cmd c;
    redisReply *r = NULL;
    enum sess_err err;

    cmd_name(&c, "EVAL");
    cmd_str(&c, THROTTLE_UNDO_SCRIPT);
    cmd_str(&c, "1");
    cmd_arg(&c, key, key_len);
    err = command(rs, &c, &r);
    if (err == SESS_OK && !reply_is(r, REDIS_REPLY_INTEGER))
        err = reply_error(rs, r, "EVAL");
    free_replies(&r, 1);
    return err;
}

static enum sess_err
redis_throttle_undo(struct sess_store *st, struct sess_str key, int64_t now_ms, int64_t window_ms)
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
    while (again(rs, err, &attempt));
    return err;
}

/* ------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------ */

static void
free_secret(char *s)
{
    if (s)
        sodium_memzero(s, strlen(s));
    free(s);
}

static void
redis_close(struct sess_store *st)
{
    struct redis_store *rs = (struct redis_store *)st;

    if (!rs)
        return;
    redisFree(rs->c);
    free(rs->host);
    free(rs->socket_path);
    free_secret(rs->user);
    free_secret(rs->password);
    sess_sealer_wipe(&rs->sealer);
    sess_buf_wipe(&rs->val);
    sess_buf_wipe(&rs->plain);
    sess_buf_wipe(&rs->cur);
    sess_buf_wipe(&rs->text);
    sess_buf_free(&rs->idx);
    sess_buf_free(&rs->idx_old);
    sess_buf_free(&rs->seen_owner);
    sess_redis_url_free(&rs->url);
    free(rs);
}

/* "redis HOST:PORT/DB" and the like: where, for messages, never with the
 * password. */
static void
describe(struct redis_store *rs)
{
    bool is_v6 = rs->host && strchr(rs->host, ':');

    if (rs->url.kind == SESS_REDIS_SENTINEL)
        sess_fmt(rs->where, sizeof rs->where, "redis-sentinel %.40s (%zu sentinels)/%d",
                 rs->url.master, rs->url.sentinels, rs->db);
    else if (rs->socket_path)
        sess_fmt(rs->where, sizeof rs->where, "redis unix:%.100s (db %d)", rs->socket_path, rs->db);
    else
        sess_fmt(rs->where, sizeof rs->where, "redis %s%.100s%s:%d/%d", is_v6 ? "[" : "", rs->host,
                 is_v6 ? "]" : "", rs->port, rs->db);
}

enum sess_err
sess_store_redis_open(struct sess_store **st, const char *url, const struct sess_config *cfg,
                      const struct sess_secrets *secrets, char *errmsg, size_t errmsg_len)
{
    struct redis_store *rs;
    enum sess_err err;
    char shown[SESS_ERRMSG_MAX / 2], why[SESS_ERRMSG_MAX / 2];
    const char *prefix = cfg->redis_prefix ? cfg->redis_prefix : SESS_PREFIX;

    *st = NULL;
    sess_redis_url_mask(url, shown, sizeof shown);
    rs = calloc(1, sizeof *rs);
    if (!rs) {
        sess_fmt(errmsg, errmsg_len, "store = %s: out of memory", shown);
        return SESS_ENOMEM;
    }
    rs->base.ops = &redis_ops;
    memcpy(rs->gc_cursor, "0", 2);
    rs->timeout.tv_sec = (time_t)(cfg->redis_timeout_ms / 1000);
    rs->timeout.tv_usec = (suseconds_t)(cfg->redis_timeout_ms % 1000) * 1000;
    if (cfg->redis_timeout_ms <= 0)
        rs->timeout.tv_sec = 1;
    /* WAIT answers before the socket's own timeout would cut it short. */
    rs->min_replicas = cfg->redis_min_replicas > 0 ? cfg->redis_min_replicas : 0;
    rs->wait_ms = timeout_ms(rs) * 3 / 4 > 0 ? timeout_ms(rs) * 3 / 4 : 1;

    err = sess_redis_url_parse(url, &rs->url, why, sizeof why);
    if (err != SESS_OK) {
        sess_fmt(errmsg, errmsg_len, "store = %s: %s", shown, why);
        goto out;
    }
    /* hiredis_ssl came with hiredis 1.0; Debian 12 ships 0.14. */
    if (rs->url.kind == SESS_REDIS_TLS) {
        sess_fmt(errmsg, errmsg_len,
                 "store = %s: TLS to Redis needs hiredis_ssl (hiredis 1.0 or later), which this "
                 "build's libhiredis (Debian's 0.14) does not have; use redis:// to a local TLS "
                 "tunnel (stunnel, spiped) or to a unix: socket",
                 shown);
        err = SESS_ECONFIG;
        goto out;
    }
    err = SESS_ECONFIG;
    if (strlen(prefix) == 0 || strlen(prefix) > PREFIX_MAX) {
        sess_fmt(errmsg, errmsg_len, "redis_prefix: 1 to %d characters", PREFIX_MAX);
        goto out;
    }
    rs->prefix_len = strlen(prefix);
    memcpy(rs->prefix, prefix, rs->prefix_len + 1);
    sess_fmt(rs->pattern, sizeof rs->pattern, "%s*", rs->prefix);
    /* The connection's own fields take what the URL names; with sentinels,
     * host and port come from them on each connection. */
    rs->host = rs->url.node.host;
    rs->port = rs->url.node.port;
    rs->socket_path = rs->url.socket_path;
    rs->user = rs->url.user;
    rs->password = rs->url.password;
    rs->db = rs->url.db;
    rs->url.node.host = rs->url.socket_path = rs->url.user = rs->url.password = NULL;
    describe(rs);

    /* Plain JSON unless encrypt = true: an Express app sharing the store
     * must read the values (README, "Redis"), so `auto` means no here. */
    rs->is_sealing = cfg->encrypt == SESS_ENCRYPT_YES;
    rs->absolute_ms = cfg->absolute_timeout_s * 1000;
    if (rs->is_sealing && secrets->count == 0) {
        sess_fmt(errmsg, errmsg_len, "%s: encrypt needs at least one secret in secret_file",
                 rs->where);
        goto out;
    }
    sess_sealer_init(&rs->sealer, secrets);

    /* A wrong password or database stops the start (exit 78); an
     * unreachable server does not: the routes answer 503 until it is up. */
    if (connection(rs) != SESS_OK && rs->is_refused) {
        sess_fmt(errmsg, errmsg_len, "%s", rs->down_msg);
        goto out;
    }
    err = SESS_OK;
    *st = &rs->base;
out:
    if (err != SESS_OK)
        redis_close(&rs->base);
    return err;
}

static const struct sess_store_ops redis_ops = {
    .kind = "redis",
    .gc_batch_max = SESS_GC_BATCH,
    .get = redis_get,
    .create = redis_create,
    .update = redis_update,
    .touch = redis_touch,
    .destroy = redis_destroy,
    .destroy_owner = redis_destroy_owner,
    .gc = redis_gc,
    .gc_if_due = redis_gc_if_due,
    .stats = redis_stats,
    .each = redis_each,
    .user_get = redis_user_get,
    .user_put = redis_user_put,
    .user_replace = redis_user_replace,
    .user_del = redis_user_del,
    .user_each = redis_user_each,
    .throttle_hit = redis_throttle_hit,
    .throttle_peek = redis_throttle_peek,
    .throttle_clear = redis_throttle_clear,
    .throttle_undo = redis_throttle_undo,
    .close = redis_close,
};
