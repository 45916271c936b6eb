/* Opening and closing the Redis store (redis_store.h), and its table of
 * operations: the URL, redis_prefix, the timeouts and encrypt are read
 * once here; the operations themselves are in sessions.c, owners.c,
 * scan.c and accounts.c, the connection in conn.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "redis_store.h"

static void
rs_close(struct sess_store *st)
{
    struct redis_store *rs = (struct redis_store *)st;

    if (!rs)
        return;
    redisFree(rs->c);
    free(rs->host);
    rs_codec_wipe(&rs->codec);
    sess__buf_wipe(&rs->cur);
    sess__buf_free(&rs->idx);
    sess__buf_free(&rs->idx_old);
    sess__buf_free(&rs->seen_owner);
    /* Wipes the password. */
    sess__redis_url_free(&rs->url);
    free(rs);
}

static const struct sess_store_ops redis_ops = {
    .kind = "redis",
    .gc_batch_max = SESS_GC_BATCH,
    .get = rs_get,
    .create = rs_create,
    .update = rs_update,
    .touch = rs_touch,
    .destroy = rs_destroy,
    .destroy_owner = rs_destroy_owner,
    .gc = rs_gc,
    .gc_if_due = rs_gc_if_due,
    .stats = rs_stats,
    .each = rs_each,
    .user_get = rs_user_get,
    .user_put = rs_user_put,
    .user_replace = rs_user_replace,
    .user_del = rs_user_del,
    .user_each = rs_user_each,
    .throttle_hit = rs_throttle_hit,
    .throttle_peek = rs_throttle_peek,
    .throttle_clear = rs_throttle_clear,
    .throttle_undo = rs_throttle_undo,
    .close = rs_close,
};

/* redis_timeout_ms for connecting and for each command; WAIT answers
 * before the socket's own timeout would cut it short. */
static void
set_timeouts(struct redis_store *rs, const struct sess_config *cfg)
{
    int64_t wait_ms;

    rs->timeout.tv_sec = (time_t)(cfg->redis_timeout_ms / 1000);
    rs->timeout.tv_usec = (suseconds_t)(cfg->redis_timeout_ms % 1000) * 1000;
    if (cfg->redis_timeout_ms <= 0)
        rs->timeout.tv_sec = 1;
    rs->min_replicas = cfg->redis_min_replicas > 0 ? cfg->redis_min_replicas : 0;
    wait_ms = rs_timeout_ms(rs) * 3 / 4;
    rs->wait_ms = wait_ms > 0 ? wait_ms : 1;
}

enum sess_err
sess__store_redis_open(struct sess_store **st, const char *url, const struct sess_config *cfg,
                       const struct sess_secrets *secrets, char *errmsg, size_t errmsg_len)
{
    struct redis_store *rs;
    enum sess_err err;
    char shown[SESS_ERRMSG_MAX / 2], why[SESS_ERRMSG_MAX / 2];
    const char *prefix = cfg->redis_prefix ? cfg->redis_prefix : RS_DEFAULT_PREFIX;
    bool is_sealing;

    *st = NULL;
    sess__redis_url_mask(url, shown, sizeof shown);
    rs = calloc(1, sizeof *rs);
    if (!rs) {
        sess__fmt(errmsg, errmsg_len, "store = %s: out of memory", shown);
        return SESS_ENOMEM;
    }
    rs->base.ops = &redis_ops;
    memcpy(rs->gc_cursor, "0", 2);
    set_timeouts(rs, cfg);

    err = sess__redis_url_parse(url, &rs->url, why, sizeof why);
    if (err != SESS_OK) {
        sess__fmt(errmsg, errmsg_len, "store = %s: %s", shown, why);
        goto out;
    }
    /* hiredis_ssl came with hiredis 1.0; Debian 12 ships 0.14. */
    if (rs->url.kind == SESS_REDIS_TLS) {
        sess__fmt(errmsg, errmsg_len,
                  "store = %s: TLS to Redis needs hiredis_ssl (hiredis 1.0 or later), which this "
                  "build's libhiredis (Debian's 0.14) does not have; use redis:// to a local TLS "
                  "tunnel (stunnel, spiped) or to a unix: socket",
                  shown);
        err = SESS_ECONFIG;
        goto out;
    }
    err = SESS_ECONFIG;
    if (strlen(prefix) == 0 || strlen(prefix) > RS_PREFIX_MAX) {
        sess__fmt(errmsg, errmsg_len, "redis_prefix: 1 to %d characters", RS_PREFIX_MAX);
        goto out;
    }
    rs->prefix_len = strlen(prefix);
    memcpy(rs->prefix, prefix, rs->prefix_len + 1);
    sess__fmt(rs->pattern, sizeof rs->pattern, "%s*", rs->prefix);
    /* With sentinels, host and port come from them on each connection. */
    rs->host = rs->url.node.host;
    rs->port = rs->url.node.port;
    rs->url.node.host = NULL;
    rs_describe(rs);

    /* Plain JSON unless encrypt = true: an Express app sharing the store
     * must read the values (README, "Redis"), so `auto` means no here. */
    is_sealing = cfg->encrypt == SESS_ENCRYPT_YES;
    if (is_sealing && secrets->count == 0) {
        sess__fmt(errmsg, errmsg_len, "%s: encrypt needs at least one secret in secret_file",
                  rs->where);
        goto out;
    }
    rs_codec_init(&rs->codec, secrets, is_sealing, cfg->absolute_timeout_s * 1000);

    /* A wrong password or database stops the start (exit 78); an
     * unreachable server does not: the routes answer 503 until it is up. */
    if (rs_connection(rs) != SESS_OK && rs->is_refused) {
        sess__fmt(errmsg, errmsg_len, "%s", rs->down_msg);
        goto out;
    }
    err = SESS_OK;
    *st = &rs->base;
out:
    if (err != SESS_OK)
        rs_close(&rs->base);
    return err;
}
