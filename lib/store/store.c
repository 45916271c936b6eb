/* The choice of a store from cfg->store, by its scheme. What a store is
 * and does is store.h's; the record's expiry rule is record.c's, the
 * update as data patch.c's; the stores themselves are lmdb/ and
 * redis/. */
#include <string.h>

#include "base.h"
#include "redis_url.h"
#include "store.h"

static bool
is_lmdb(const char *spec)
{
    return strncmp(spec, "lmdb:", 5) == 0;
}

static enum sess_err
open_lmdb(struct sess_store **st, const char *spec, const struct sess_config *cfg,
          const struct sess_secrets *secrets, char *errmsg, size_t errmsg_len)
{
    if (spec[5] == '\0') {
        sess__fmt(errmsg, errmsg_len, "store = %s: no directory (use lmdb:DIR)", spec);
        return SESS_ECONFIG;
    }
    return sess__store_lmdb_open(st, spec + 5, cfg, secrets, errmsg, errmsg_len);
}

/* The stores, by the scheme of the `store` setting that names them. */
static const struct scheme {
    bool (*names)(const char *spec);
    enum sess_err (*open)(struct sess_store **st, const char *spec, const struct sess_config *cfg,
                          const struct sess_secrets *secrets, char *errmsg, size_t errmsg_len);
} schemes[] = {
    {is_lmdb, open_lmdb},
    /* redis://, rediss://, redis-sentinel://, unix: (redis_url.h) */
    {sess__redis_url_is_redis, sess__store_redis_open},
};

enum sess_err
sess__store_open(struct sess_store **st, const struct sess_config *cfg,
                 const struct sess_secrets *secrets, char *errmsg, size_t errmsg_len)
{
    const char *spec = cfg->store ? cfg->store : "";
    char shown[SESS_ERRMSG_MAX / 2];
    size_t i;

    *st = NULL;
    for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        if (schemes[i].names(spec))
            return schemes[i].open(st, spec, cfg, secrets, errmsg, errmsg_len);
    }
    /* Any URL may carry a password. */
    sess__redis_url_mask(spec, shown, sizeof shown);
    sess__fmt(errmsg, errmsg_len,
              "store = %s: unknown kind (use lmdb:DIR, redis://HOST:PORT/DB, "
              "redis-sentinel://HOST:PORT,.../MASTER or unix:/PATH)",
              shown);
    return SESS_ECONFIG;
}

void
sess__store_close(struct sess_store *st)
{
    if (st)
        st->ops->close(st);
}
