/* What sessctl does to sessions, over the store: list them, revoke one or a
 * user's, purge the dead, count. Accounts are users.c's; the store's own
 * rules (expiry, sealing) stay in lib/store/. */
#include <stdint.h>
#include <string.h>

#include "auth.h"

static enum sess_err
store_fail(struct sess_app *app, enum sess_err err)
{
    return sess__app_fail(app, err, "%s", app->store->errmsg);
}

struct sessions_visit {
    sess_session_fn visit;
    void *arg;
    int64_t now_ms;
    struct sess_buf data;
    enum sess_err err;
};

static bool
visit_session(void *arg, struct sess_str id, const struct sess_record *rec)
{
    struct sessions_visit *v = arg;
    struct sess_session_info info;
    char id_buf[SESS_ID_MAX_LEN + 1], owner_buf[SESS_USERNAME_MAX + 1];

    /* Longer ids and owners than the library makes were not made by it. */
    if (id.len > SESS_ID_MAX_LEN || rec->owner.len > SESS_USERNAME_MAX)
        return true;
    memcpy(id_buf, id.ptr, id.len);
    id_buf[id.len] = '\0';
    memcpy(owner_buf, rec->owner.ptr, rec->owner.len);
    owner_buf[rec->owner.len] = '\0';
    v->data.len = 0;
    v->err = sess__buf_append(&v->data, rec->data.ptr, rec->data.len);
    if (v->err == SESS_OK)
        v->err = sess__buf_append(&v->data, "", 1);
    if (v->err != SESS_OK)
        return false;
    info = (struct sess_session_info){
        .id = id_buf,
        .owner = owner_buf,
        .created_ms = rec->created_ms,
        .expires_ms = sess__record_expiry_ms(rec->expires_ms, rec->deadline_ms),
        .is_live = sess__record_is_live(rec, v->now_ms),
        .data = v->data.ptr,
    };
    return v->visit(v->arg, &info);
}

enum sess_err
sess_sessions_each(struct sess_app *app, const char *owner, sess_session_fn visit, void *arg)
{
    struct sess_store *st = app->store;
    struct sessions_visit v = {.visit = visit, .arg = arg, .now_ms = sess_now_ms(app)};
    enum sess_err err;

    err = st->ops->each(st, sess_str_c(owner), v.now_ms, visit_session, &v);
    if (err != SESS_OK)
        store_fail(app, err);
    else if (v.err != SESS_OK)
        err = sess__app_fail(app, v.err, "out of memory");
    sess__buf_free(&v.data);
    return err;
}

void
sess_sessions_scan_all(struct sess_app *app, bool is_on)
{
    app->store->is_owner_scan = is_on;
}

enum sess_err
sess_revoke(struct sess_app *app, const char *id)
{
    struct sess_store *st = app->store;
    struct sess_str key = sess_str_c(id);
    struct sess_record rec;
    struct sess_buf buf = {0};
    enum sess_err err, found;

    if (!sess_id_is_valid(key))
        return sess__app_fail(app, SESS_ENOTFOUND, "no session \"%.*s\"",
                              (int)(key.len > SESS_ID_MAX_LEN ? SESS_ID_MAX_LEN : key.len), id);
    /* Live at the beginning of time means stored at all: an expired record
     * awaiting gc is still one the administrator can see and remove. */
    found = st->ops->get(st, key, INT64_MIN, &rec, &buf);
    sess__buf_free(&buf);
    if (found != SESS_OK && found != SESS_ENOTFOUND)
        return store_fail(app, found);
    /* Destroyed either way: a record that no longer opens is not found,
     * but it should not stay behind. */
    err = st->ops->destroy(st, key, sess_now_ms(app));
    if (err != SESS_OK)
        return store_fail(app, err);
    if (found == SESS_ENOTFOUND)
        return sess__app_fail(app, found, "no session \"%s\"", id);
    return SESS_OK;
}

enum sess_err
sess_revoke_user(struct sess_app *app, const char *owner, size_t *count)
{
    struct sess_store *st = app->store;
    enum sess_err err;

    *count = 0;
    st->warning[0] = app->warning[0] = '\0';
    err = st->ops->destroy_owner(st, sess_str_c(owner), sess_now_ms(app), count);
    memcpy(app->warning, st->warning, sizeof app->warning);
    return err == SESS_OK ? SESS_OK : store_fail(app, err);
}

enum sess_err
sess_gc(struct sess_app *app, size_t *purged)
{
    struct sess_store *st = app->store;
    enum sess_err err;
    size_t n;
    bool more;

    *purged = 0;
    /* Batches, not one transaction: the routes keep writing in between.
     * LMDB's are large (one fsync each); Redis's are SCAN steps. */
    do {
        err = st->ops->gc(st, sess_now_ms(app), st->ops->gc_batch_max, &n, &more);
        if (err != SESS_OK)
            return store_fail(app, err);
        *purged += n;
    } while (more);
    return SESS_OK;
}

enum sess_err
sess_stats_get(struct sess_app *app, struct sess_stats *out)
{
    struct sess_store *st = app->store;
    struct sess_store_stats s;
    enum sess_err err;

    memset(out, 0, sizeof *out);
    err = st->ops->stats(st, sess_now_ms(app), &s);
    if (err != SESS_OK)
        return store_fail(app, err);
    *out = (struct sess_stats){
        .sessions = s.sessions,
        .expired = s.expired,
        .users = s.users,
        .owners = s.owners,
        .oldest_created_ms = s.oldest_created_ms,
        .newest_created_ms = s.newest_created_ms,
        .map_size_bytes = s.map_size_bytes,
        .map_used_bytes = s.map_used_bytes,
        .readers_used = s.readers_used,
        .readers_max = s.readers_max,
        .store_kind = st->ops->kind,
    };
    return SESS_OK;
}
