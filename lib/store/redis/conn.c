/* The Redis store's connection (redis_store.h): one per process, made on
 * first use and made again, with back-off, after any failure; with
 * redis-sentinel:// made to whichever server the sentinels name as master.
 * It runs commands as counted arguments, pipelined, and decides when an
 * operation may run again and when a write waits for replicas. What the
 * commands are is the business of sessions.c, owners.c, scan.c and
 * accounts.c; parsing the URL, codec/redis_url.c's. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "redis_store.h"

/* After a failed connection attempt, no new one for 100 ms, doubling up to
 * 2 s: a down Redis costs a request one refused connect at most that often,
 * and the store is back at most 2 s after Redis is. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
/* A connection idle this long is PINGed before a command that cannot be
 * retried. */
#define FRESH_MS 1000

/* The connection's own timing: back-off and idleness are measured on the
 * monotonic clock, whatever clock the app's requests run on (a test's
 * frozen clock must not stop a reconnection). */
static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * Commands and replies
 * ------------------------------------------------------------------------ */

void
rs_cmd_name(struct rs_cmd *c, const char *name)
{
    c->argc = 0;
    c->argv[c->argc] = name;
    c->len[c->argc++] = strlen(name);
}

void
rs_cmd_arg(struct rs_cmd *c, const void *ptr, size_t len)
{
    if (c->argc >= RS_CMD_ARGS_MAX)
        abort(); /* our own commands are short; more is a bug here */
    c->argv[c->argc] = ptr;
    c->len[c->argc++] = len;
}

void
rs_cmd_str(struct rs_cmd *c, const char *s)
{
    rs_cmd_arg(c, s, strlen(s));
}

void
rs_cmd_i64(struct rs_cmd *c, char buf[24], int64_t v)
{
    int n = snprintf(buf, 24, "%lld", (long long)v);
    rs_cmd_arg(c, buf, (size_t)n);
}

void
rs_replies_free(redisReply **r, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

/* ------------------------------------------------------------------------
 * Naming the server
 * ------------------------------------------------------------------------ */

void
rs_describe(struct redis_store *rs)
{
    char node[128];

    if (rs->host)
        sess__redis_node_format(rs->host, rs->port, node, sizeof node);
    if (rs->url.kind == SESS_REDIS_SENTINEL && !rs->host)
        sess__fmt(rs->where, sizeof rs->where, "redis-sentinel %.40s (%zu sentinels)/%d",
                  rs->url.master, rs->url.sentinels, rs->url.db);
    else if (rs->url.kind == SESS_REDIS_SENTINEL)
        sess__fmt(rs->where, sizeof rs->where, "redis-sentinel %.40s (%s)/%d", rs->url.master, node,
                  rs->url.db);
    else if (rs->url.socket_path)
        sess__fmt(rs->where, sizeof rs->where, "redis unix:%.100s (db %d)", rs->url.socket_path,
                  rs->url.db);
    else
        sess__fmt(rs->where, sizeof rs->where, "redis %s/%d", node, rs->url.db);
}

int64_t
rs_timeout_ms(const struct redis_store *rs)
{
    return (int64_t)rs->timeout.tv_sec * 1000 + rs->timeout.tv_usec / 1000;
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
    sess__fmt(rs->base.errmsg, sizeof rs->base.errmsg, "%s", rs->down_msg);
    return SESS_EUNAVAIL;
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
        sess__fmt(rs->down_msg, sizeof rs->down_msg,
                  "%s: no answer within %lld ms while %s (redis_timeout_ms)", rs->where,
                  (long long)rs_timeout_ms(rs), doing);
    else
        sess__fmt(rs->down_msg, sizeof rs->down_msg, "%s: %s: %s", rs->where, doing,
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
enum sess_err
rs_reply_error(struct redis_store *rs, const redisReply *r, const char *doing)
{
    static const char *const busy[] = {"LOADING",  "BUSY",        "MASTERDOWN",
                                       "TRYAGAIN", "CLUSTERDOWN", "READONLY",
                                       "NOAUTH",   "WRONGPASS",   "NOREPLICAS"};
    const char *text = r && r->str ? r->str : "unexpected reply";
    size_t len = r && r->str ? r->len : strlen(text), i;

    rs->may_retry = false;
    rs->is_unsure = false;
    sess__fmt(rs->base.errmsg, sizeof rs->base.errmsg, "%s: %s: %.*s", rs->where, doing,
              (int)(len > 200 ? 200 : len), text);
    if (rs_has_prefix(text, len, "OOM"))
        return SESS_EFULL;
    for (i = 0; i < sizeof busy / sizeof busy[0]; i++) {
        if (rs_has_prefix(text, len, busy[i])) {
            rs->may_retry = rs_has_prefix(text, len, "READONLY") && rs->is_reused;
            drop(rs);
            return SESS_EUNAVAIL;
        }
    }
    return SESS_ESTORE;
}

/* ------------------------------------------------------------------------
 * Sentinels, and connecting
 * ------------------------------------------------------------------------ */

/* AUTH [USER] PASSWORD in `c` when the URL has a password: 1 command, or
 * none. Sentinels and servers take the same. */
static size_t
add_auth(const struct redis_store *rs, struct rs_cmd *c)
{
    if (!rs->url.password)
        return 0;
    rs_cmd_name(c, "AUTH");
    if (rs->url.user)
        rs_cmd_str(c, rs->url.user);
    rs_cmd_str(c, rs->url.password);
    return 1;
}

/* Sends `n` commands on `c` and reads their replies into `out` (NULL on
 * failure; the caller frees them). For the sentinels, outside
 * rs_roundtrip's bookkeeping. */
static bool
ask(redisContext *c, struct rs_cmd *cmds, size_t n, redisReply **out)
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
    struct rs_cmd cmds[2];
    redisReply *r[2] = {NULL, NULL};
    const redisReply *a;
    size_t n = 0;
    int port;
    char *host;
    bool is_found = false;

    if (!c || c->err || redisSetTimeout(c, rs->timeout) != REDIS_OK) {
        sess__fmt(why, why_len, "sentinel %s:%d: %s", node->host, node->port,
                  c ? c->errstr : "out of memory");
        redisFree(c);
        return false;
    }
    n += add_auth(rs, &cmds[n]);
    rs_cmd_name(&cmds[n], "SENTINEL");
    rs_cmd_str(&cmds[n], "get-master-addr-by-name");
    rs_cmd_str(&cmds[n++], rs->url.master);
    if (!ask(c, cmds, n, r)) {
        sess__fmt(why, why_len, "sentinel %s:%d: %s", node->host, node->port,
                  c->errstr[0] ? c->errstr : "no answer");
        goto out;
    }
    a = r[n - 1];
    if (rs_reply_is(a, REDIS_REPLY_NIL)) {
        sess__fmt(why, why_len, "sentinel %s:%d does not know master \"%s\"", node->host,
                  node->port, rs->url.master);
        goto out;
    }
    if (!rs_reply_is(a, REDIS_REPLY_ARRAY) || a->elements != 2 ||
        !rs_reply_is(a->element[0], REDIS_REPLY_STRING) ||
        !rs_reply_is(a->element[1], REDIS_REPLY_STRING) || a->element[0]->len == 0 ||
        a->element[0]->len > 255 ||
        !sess__redis_port_parse(a->element[1]->str, a->element[1]->len, &port)) {
        if (a && a->str)
            sess__fmt(why, why_len, "sentinel %s:%d: %.*s", node->host, node->port,
                      (int)(a->len < 200 ? a->len : 200), a->str);
        else
            sess__fmt(why, why_len, "sentinel %s:%d: an unexpected reply", node->host, node->port);
        goto out;
    }
    host = strndup(a->element[0]->str, a->element[0]->len);
    if (!host) {
        sess__fmt(why, why_len, "out of memory");
        goto out;
    }
    free(rs->host);
    rs->host = host;
    rs->port = port;
    is_found = true;
out:
    rs_replies_free(r, n);
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
            rs_describe(rs);
            return true;
        }
    }
    sess__fmt(rs->down_msg, sizeof rs->down_msg,
              "redis-sentinel %.40s: no sentinel names a master (last: %s)", rs->url.master, why);
    return false;
}

/* AUTH and SELECT on a new connection, and with sentinels ROLE, in one
 * round trip: a server the sentinels named may have been demoted since. */
static enum sess_err
handshake(struct redis_store *rs)
{
    struct rs_cmd cmds[3];
    redisReply *r[3] = {NULL, NULL, NULL};
    const redisReply *role;
    char db[24];
    size_t n = 0, i;
    enum sess_err err;
    bool is_sentinel = rs->url.kind == SESS_REDIS_SENTINEL;

    n += add_auth(rs, &cmds[n]);
    if (rs->url.db != 0) {
        rs_cmd_name(&cmds[n], "SELECT");
        rs_cmd_i64(&cmds[n], db, rs->url.db);
        n++;
    }
    if (is_sentinel)
        rs_cmd_name(&cmds[n++], "ROLE");
    if (n == 0)
        return SESS_OK;
    err = rs_roundtrip(rs, cmds, n, r);
    for (i = 0; err == SESS_OK && i < n - is_sentinel; i++) {
        if (rs_reply_is(r[i], REDIS_REPLY_ERROR)) {
            sess__fmt(rs->down_msg, sizeof rs->down_msg, "%s: %s refused: %.*s", rs->where,
                      cmds[i].argv[0], (int)(r[i]->len > 200 ? 200 : r[i]->len), r[i]->str);
            rs->is_refused = true;
            drop(rs);
            back_off(rs);
            err = unavailable(rs);
        }
    }
    role = is_sentinel && err == SESS_OK ? r[n - 1] : NULL;
    if (role && (!rs_reply_is(role, REDIS_REPLY_ARRAY) || role->elements < 1 ||
                 !rs_reply_is(role->element[0], REDIS_REPLY_STRING) ||
                 strcmp(role->element[0]->str, "master") != 0)) {
        sess__fmt(rs->down_msg, sizeof rs->down_msg,
                  "%s: the server the sentinels named is not the master (ROLE: %.20s)", rs->where,
                  rs_reply_is(role, REDIS_REPLY_ARRAY) && role->elements &&
                          rs_reply_is(role->element[0], REDIS_REPLY_STRING)
                      ? role->element[0]->str
                      : "?");
        drop(rs);
        back_off(rs);
        err = unavailable(rs);
    }
    rs_replies_free(r, n);
    return err;
}

/* The process's connection, made now if there is none and the back-off
 * allows; with sentinels, to the master they name now. */
enum sess_err
rs_connection(struct redis_store *rs)
{
    redisContext *c;
    int64_t now;
    enum sess_err err;

    if (rs->c)
        return SESS_OK;
    rs->may_retry = false;
    now = mono_ms();
    if (now < rs->retry_at_ms) {
        sess__fmt(rs->base.errmsg, sizeof rs->base.errmsg, "%s (next attempt in %lld ms)",
                  rs->down_msg, (long long)(rs->retry_at_ms - now));
        return SESS_EUNAVAIL;
    }
    rs->is_refused = false;
    if (rs->url.kind == SESS_REDIS_SENTINEL && !find_master(rs)) {
        back_off(rs);
        return unavailable(rs);
    }
    c = rs->url.socket_path ? redisConnectUnixWithTimeout(rs->url.socket_path, rs->timeout)
                            : redisConnectWithTimeout(rs->host, rs->port, rs->timeout);
    if (!c || c->err || redisSetTimeout(c, rs->timeout) != REDIS_OK ||
        (!rs->url.socket_path && redisEnableKeepAlive(c) != REDIS_OK)) {
        sess__fmt(rs->down_msg, sizeof rs->down_msg, "%s: cannot connect: %s", rs->where,
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

/* ------------------------------------------------------------------------
 * Running commands, and running them again
 * ------------------------------------------------------------------------ */

/* Every key and value goes as a counted argument (redisAppendCommandArgv),
 * never formatted into a command line. */
enum sess_err
rs_roundtrip(struct redis_store *rs, struct rs_cmd *cmds, size_t n, redisReply **out)
{
    enum sess_err err;
    size_t i;
    void *r;

    memset(out, 0, n * sizeof(redisReply *));
    rs->is_unsure = false;
    err = rs_connection(rs);
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

enum sess_err
rs_command(struct redis_store *rs, struct rs_cmd *c, redisReply **out)
{
    return rs_roundtrip(rs, c, 1, out);
}

bool
rs_again(struct redis_store *rs, enum sess_err err, int *attempt)
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
enum sess_err
rs_fresh_connection(struct redis_store *rs)
{
    struct rs_cmd c;
    redisReply *r = NULL;
    enum sess_err err;
    int attempt = 0;

    if (rs->c && mono_ms() - rs->used_ms < FRESH_MS)
        return SESS_OK;
    do {
        rs_cmd_name(&c, "PING");
        err = rs_command(rs, &c, &r);
        if (err == SESS_OK && !rs_reply_is(r, REDIS_REPLY_STATUS))
            err = rs_reply_error(rs, r, "PING");
        freeReplyObject(r);
        r = NULL;
    } while (rs_again(rs, err, &attempt));
    return err;
}

/* ------------------------------------------------------------------------
 * Writes: transactions, WAIT, and what a lost reply leaves behind
 * ------------------------------------------------------------------------ */

void
rs_add_wait(struct redis_store *rs, struct rs_cmd *cmds, size_t *n, char buf[2][24])
{
    if (rs->min_replicas == 0)
        return;
    rs_cmd_name(&cmds[*n], "WAIT");
    rs_cmd_i64(&cmds[*n], buf[0], rs->min_replicas);
    rs_cmd_i64(&cmds[*n], buf[1], rs->wait_ms);
    (*n)++;
}

/* Fewer replicas than asked is a failed write (503), though the master has
 * it: nothing says it would survive the master's loss. */
enum sess_err
rs_check_wait(struct redis_store *rs, const redisReply *r)
{
    if (rs->min_replicas == 0)
        return SESS_OK;
    if (!rs_reply_is(r, REDIS_REPLY_INTEGER))
        return rs_reply_error(rs, r, "WAIT");
    if (r->integer >= rs->min_replicas)
        return SESS_OK;
    sess__fmt(rs->base.errmsg, sizeof rs->base.errmsg,
              "%s: a write reached %lld of the %d replicas redis_min_replicas asks for within %lld "
              "ms",
              rs->where, (long long)r->integer, rs->min_replicas, (long long)rs->wait_ms);
    return SESS_EUNAVAIL;
}
/* A queued command's error (READONLY, OOM) shows where it was queued or
 * in EXEC's array. */
enum sess_err
rs_exec_replies(struct redis_store *rs, redisReply **r, size_t queued, const struct rs_cmd *cmds)
{
    const redisReply *ex = r[queued + 1];
    size_t i;

    for (i = 0; i <= queued; i++)
        if (!rs_reply_is(r[i], REDIS_REPLY_STATUS))
            return rs_reply_error(rs, r[i], cmds[i].argv[0]);
    if (rs_reply_is(ex, REDIS_REPLY_NIL))
        return SESS_OK;
    if (!rs_reply_is(ex, REDIS_REPLY_ARRAY) || ex->elements != queued)
        return rs_reply_error(rs, ex, "EXEC");
    for (i = 0; i < queued; i++)
        if (rs_reply_is(ex->element[i], REDIS_REPLY_ERROR))
            return rs_reply_error(rs, ex->element[i], cmds[i + 1].argv[0]);
    return SESS_OK;
}

/* The session id, or the account's salted hash, makes the bytes we sent
 * ours alone. */
enum sess_err
rs_stored_is_ours(struct redis_store *rs, const char *hash, const char *key, size_t key_len,
                  struct sess_str val, enum sess_err err)
{
    struct rs_cmd cmds[2];
    redisReply *r[2];
    char wait[2][24];
    size_t n = 0;
    enum sess_err e;

    rs_cmd_name(&cmds[0], hash ? "HGET" : "GET");
    if (hash)
        rs_cmd_str(&cmds[0], hash);
    rs_cmd_arg(&cmds[0], key, key_len);
    e = rs_command(rs, cmds, r);
    if (e == SESS_OK && rs_reply_is(r[0], REDIS_REPLY_STRING) && r[0]->len == val.len &&
        memcmp(r[0]->str, val.ptr, val.len) == 0)
        err = SESS_OK;
    else if (e != SESS_OK)
        err = e;
    rs_replies_free(r, 1);
    if (err != SESS_OK || rs->min_replicas == 0)
        return err;
    rs_cmd_name(&cmds[0], hash ? "HSET" : "SET");
    if (hash)
        rs_cmd_str(&cmds[0], hash);
    rs_cmd_arg(&cmds[0], key, key_len);
    rs_cmd_arg(&cmds[0], val.ptr, val.len);
    if (!hash) {
        rs_cmd_str(&cmds[0], "XX");
        rs_cmd_str(&cmds[0], "KEEPTTL");
    }
    n = 1;
    rs_add_wait(rs, cmds, &n, wait);
    err = rs_roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && rs_reply_is(r[0], REDIS_REPLY_ERROR))
        err = rs_reply_error(rs, r[0], cmds[0].argv[0]);
    if (err == SESS_OK)
        err = rs_check_wait(rs, r[1]);
    rs_replies_free(r, n);
    return err;
}

/* ------------------------------------------------------------------------
 * Many keys in one command
 * ------------------------------------------------------------------------ */

/* Not a pipeline of one command per key: DEL and SREM take them all, and
 * the server counts what existed. */
enum sess_err
rs_keys_command(struct redis_store *rs, const char *verb, struct sess_str set,
                const char *const *keys, const size_t *lens, size_t n, size_t *deleted)
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
    err = rs_connection(rs);
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
    if (!rs_reply_is(r, REDIS_REPLY_INTEGER))
        err = rs_reply_error(rs, r, verb);
    else
        *deleted = (size_t)r->integer;
out:
    freeReplyObject(r);
    free(argv);
    free(argl);
    return err;
}

enum sess_err
rs_delete_keys(struct redis_store *rs, const char *const *keys, const size_t *lens, size_t n,
               size_t *deleted)
{
    return rs_keys_command(rs, "DEL", (struct sess_str){"", 0}, keys, lens, n, deleted);
}

enum sess_err
rs_delete_key(struct redis_store *rs, const char *key, size_t key_len)
{
    struct rs_cmd cmds[2];
    redisReply *r[2];
    char wait[2][24];
    size_t n = 1;
    enum sess_err err;

    rs_cmd_name(&cmds[0], "DEL");
    rs_cmd_arg(&cmds[0], key, key_len);
    rs_add_wait(rs, cmds, &n, wait);
    err = rs_roundtrip(rs, cmds, n, r);
    if (err == SESS_OK && !rs_reply_is(r[0], REDIS_REPLY_INTEGER))
        err = rs_reply_error(rs, r[0], "DEL");
    if (err == SESS_OK)
        err = rs_check_wait(rs, r[n - 1]);
    rs_replies_free(r, n);
    return err;
}
