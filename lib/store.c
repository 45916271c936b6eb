/* What every store shares: the liveness rule, and the choice of
 * implementation from cfg->store. The
 * implementations themselves are store_lmdb.c and store_redis.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "redis_url.h"
#include "store.h"

bool
sess_record_is_live(const struct sess_record *rec, int64_t now_ms)
{
    if (now_ms >= rec->expires_ms)
        return false;
    return rec->deadline_ms == 0 || now_ms < rec->deadline_ms;
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
