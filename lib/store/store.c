/* What every store shares: the growing buffer store calls copy into, and
 * the choice of implementation from cfg->store. The record's expiry rule
 * is store/record.c's; the implementations themselves are store_lmdb.c
 * and store_redis.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "redis_url.h"
#include "store.h"

enum sess_err
sess_buf_reserve(struct sess_buf *buf, size_t extra)
{
    size_t need, cap;
    char *ptr;

    if (extra > SIZE_MAX - buf->len)
        return SESS_ENOMEM;
    need = buf->len + extra;
    if (need <= buf->cap)
        return SESS_OK;
    /* Doubling from 256 keeps a warm buffer at the size of the largest
     * session it has held, so reads stop allocating after the first few. */
    cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    ptr = realloc(buf->ptr, cap);
    if (!ptr)
        return SESS_ENOMEM;
    buf->ptr = ptr;
    buf->cap = cap;
    return SESS_OK;
}

enum sess_err
sess_buf_append(struct sess_buf *buf, const void *data, size_t len)
{
    enum sess_err err = sess_buf_reserve(buf, len);

    if (err != SESS_OK)
        return err;
    if (len)
        memcpy(buf->ptr + buf->len, data, len);
    buf->len += len;
    return SESS_OK;
}

void
sess_buf_free(struct sess_buf *buf)
{
    if (!buf)
        return;
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
}

void
sess_buf_wipe(struct sess_buf *buf)
{
    if (buf->ptr)
        sodium_memzero(buf->ptr, buf->cap);
    sess_buf_free(buf);
}

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

enum sess_err
sess_store_open(struct sess_store **st, const struct sess_config *cfg,
                const struct sess_secrets *secrets, char *errmsg, size_t errmsg_len)
{
    const char *spec = cfg->store ? cfg->store : "";
    char shown[SESS_ERRMSG_MAX / 2];

    *st = NULL;
    if (has_prefix(spec, "lmdb:")) {
        if (spec[5] == '\0') {
            sess_fmt(errmsg, errmsg_len, "store = %s: no directory (use lmdb:DIR)", spec);
            return SESS_ECONFIG;
        }
        return sess_store_lmdb_open(st, spec + 5, cfg, secrets, errmsg, errmsg_len);
    }
    if (sess_redis_url_is_redis(spec))
        return sess_store_redis_open(st, spec, cfg, secrets, errmsg, errmsg_len);
    /* Any URL may carry a password. */
    sess_redis_url_mask(spec, shown, sizeof shown);
    sess_fmt(errmsg, errmsg_len,
             "store = %s: unknown kind (use lmdb:DIR, redis://HOST:PORT/DB, "
             "redis-sentinel://HOST:PORT,.../MASTER or unix:/PATH)",
             shown);
    return SESS_ECONFIG;
}

void
sess_store_close(struct sess_store *st)
{
    if (st)
        st->ops->close(st);
}
