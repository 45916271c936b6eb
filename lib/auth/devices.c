/* The logged-in user's own sessions, from inside a request ("Your devices"
 * in the README's contract of the demo): list them by handle, end one or all but this one, cap
 * how many a login leaves, and change the password. Every call is scoped
 * to the user the request is logged in as, through the store's walk of
 * that owner's records; what sessctl does to anyone's is admin.c's. */
#include <stdlib.h>
#include <string.h>

#include "auth.h"

#define HANDLE_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* base64url of SESS_HANDLE_BYTES, with its NUL. */
#define HANDLE_TEXT_BYTES sodium_base64_ENCODED_LEN(SESS_HANDLE_BYTES, HANDLE_B64)
/* Fewer characters than this, counted as code points, is too short. */
#define PASSWORD_MIN_CHARS 10

/* One live session of the user, copied out of the store's walk. */
struct entry {
    char id[SESS_ID_MAX_LEN + 1];
    unsigned char handle[SESS_HANDLE_BYTES];
    bool has_handle;
    bool is_remembered;
    int64_t created_ms, last_seen_ms, expires_ms;
    char client_addr[SESS_CLIENT_ADDR_MAX + 1];
    char user_agent[SESS_USER_AGENT_MAX + 1];
};

struct collect {
    struct entry *items;
    size_t n, cap;
    int64_t now_ms;
    int64_t max_age_ms; /* the idle lifetime of a session without its own */
    enum sess_err err;
};

/* When the session was last active: its last sighting, or its idle expiry
 * less its idle lifetime when that is later. Every touch moves the expiry
 * (at most touch_after late), while Redis's touch, connect-redis's EXPIRE,
 * leaves the stored sighting alone. */
static int64_t
last_active_ms(const struct collect *c, const struct sess_record *rec)
{
    int64_t idle = rec->idle_ms > 0 ? rec->idle_ms : c->max_age_ms;
    int64_t from_expiry = rec->expires_ms - idle;

    if (from_expiry > c->now_ms)
        from_expiry = c->now_ms;
    return from_expiry > rec->last_seen_ms ? from_expiry : rec->last_seen_ms;
}

/* The user the request is logged in as (authenticated, with a username),
 * or NULL. Not recorded as read: these calls act on other records. */
static const char *
logged_in_user(const struct sess_request *req)
{
    json_t *user = sess_peek(req, "user");
    json_t *name = json_is_object(user) ? json_object_get(user, "username") : NULL;

    if (!sess_exists(req) || !json_is_true(sess_peek(req, "authenticated")) ||
        !json_is_string(name) || json_string_length(name) == 0)
        return NULL;
    return json_string_value(name);
}

static void
copy_view(char *out, size_t cap, struct sess_str in)
{
    size_t len = in.len < cap ? in.len : cap;

    memcpy(out, in.ptr, len);
    out[len] = '\0';
}

static bool
collect_one(void *arg, struct sess_str id, const struct sess_record *rec)
{
    struct collect *c = arg;
    struct entry *e;

    if (!sess__record_is_live(rec, c->now_ms) || id.len > SESS_ID_MAX_LEN)
        return true;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct entry *items = realloc(c->items, cap * sizeof *items);
        if (!items) {
            c->err = SESS_ENOMEM;
            return false;
        }
        c->items = items;
        c->cap = cap;
    }
    e = &c->items[c->n++];
    memset(e, 0, sizeof *e);
    copy_view(e->id, SESS_ID_MAX_LEN, id);
    e->has_handle = rec->has_handle;
    memcpy(e->handle, rec->handle, sizeof e->handle);
    e->is_remembered = rec->is_remembered;
    e->created_ms = rec->created_ms;
    e->last_seen_ms = last_active_ms(c, rec);
    e->expires_ms = sess__record_expiry_ms(rec->expires_ms, rec->deadline_ms);
    copy_view(e->client_addr, SESS_CLIENT_ADDR_MAX, rec->client_addr);
    copy_view(e->user_agent, SESS_USER_AGENT_MAX, rec->user_agent);
    return true;
}

/* The live sessions of `owner`, in the store's order; free c->items. */
static enum sess_err
collect(struct sess_request *req, const char *owner, struct collect *c)
{
    struct sess_store *st = req->app->store;
    enum sess_err err;

    *c = (struct collect){.now_ms = req->now_ms,
                          .max_age_ms = req->app->cfg.max_age_s * 1000};
    err = st->ops->each(st, sess_str_c(owner), req->now_ms, collect_one, c);
    if (err == SESS_OK)
        err = c->err;
    if (err != SESS_OK) {
        free(c->items);
        c->items = NULL;
        c->n = 0;
    }
    return err;
}

/* Whether `e` is the request's own session (or the record it renews). */
static bool
is_current(const struct sess_request *req, const struct entry *e)
{
    return strcmp(e->id, req->id) == 0 ||
           (req->renewed_from[0] && strcmp(e->id, req->renewed_from) == 0);
}

static int
newest_first(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;

    return (a->created_ms < b->created_ms) - (a->created_ms > b->created_ms);
}

/* Least recently used first: last seen, or created when never seen. */
static int
least_recent_first(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int64_t ta = a->last_seen_ms ? a->last_seen_ms : a->created_ms;
    int64_t tb = b->last_seen_ms ? b->last_seen_ms : b->created_ms;

    return (ta > tb) - (ta < tb);
}

enum sess_err
sess_user_sessions(struct sess_request *req, sess_device_fn visit, void *arg)
{
    const char *owner = logged_in_user(req);
    struct collect c;
    char handle[HANDLE_TEXT_BYTES];
    enum sess_err err;

    if (!owner)
        return SESS_ENOTFOUND;
    err = collect(req, owner, &c);
    if (err != SESS_OK)
        return err;
    qsort(c.items, c.n, sizeof *c.items, newest_first);
    for (size_t i = 0; i < c.n; i++) {
        const struct entry *e = &c.items[i];
        struct sess_device d = {
            .handle = handle,
            .created_ms = e->created_ms,
            .last_seen_ms = is_current(req, e) ? req->now_ms : e->last_seen_ms,
            .expires_ms = e->expires_ms,
            .client_addr = e->client_addr,
            .user_agent = e->user_agent,
            .is_current = is_current(req, e),
            .is_remembered = e->is_remembered,
        };
        /* A record from before handles has none until its next write. */
        handle[0] = '\0';
        if (e->has_handle)
            sodium_bin2base64(handle, sizeof handle, e->handle, sizeof e->handle, HANDLE_B64);
        if (!visit(arg, &d))
            break;
    }
    free(c.items);
    return SESS_OK;
}

/* Ends the sessions of `c` that `should_end` picks (up to `max`), leaving
 * the request's own; *count says how many. */
static enum sess_err
end_sessions(struct sess_request *req, struct collect *c, size_t max,
             bool (*should_end)(const struct entry *e, const void *arg), const void *arg,
             size_t *count)
{
    struct sess_store *st = req->app->store;
    enum sess_err err = SESS_OK;

    for (size_t i = 0; i < c->n && *count < max && err == SESS_OK; i++) {
        if (is_current(req, &c->items[i]) || !should_end(&c->items[i], arg))
            continue;
        err = st->ops->destroy(st, sess_str_c(c->items[i].id), req->now_ms);
        if (err == SESS_OK)
            (*count)++;
    }
    return err;
}

static bool
any(const struct entry *e, const void *arg)
{
    (void)e;
    (void)arg;
    return true;
}

static bool
has_handle(const struct entry *e, const void *arg)
{
    return e->has_handle && sodium_memcmp(e->handle, arg, SESS_HANDLE_BYTES) == 0;
}

enum sess_err
sess_revoke_handle(struct sess_request *req, const char *handle)
{
    const char *owner = logged_in_user(req);
    unsigned char bin[SESS_HANDLE_BYTES];
    size_t len = 0, count = 0;
    struct collect c;
    enum sess_err err;

    if (!owner)
        return SESS_ENOTFOUND;
    if (!handle || strlen(handle) != HANDLE_TEXT_BYTES - 1 ||
        sodium_base642bin(bin, sizeof bin, handle, strlen(handle), NULL, &len, NULL, HANDLE_B64) !=
            0 ||
        len != sizeof bin)
        return SESS_ENOTFOUND;
    /* Its own handle ends the request's session, as a logout does. */
    if (req->has_handle && sodium_memcmp(req->handle, bin, sizeof bin) == 0) {
        sess_log_auth(req, SESS_AUTH_REVOKED, owner);
        return sess_destroy(req);
    }
    err = collect(req, owner, &c);
    if (err == SESS_OK)
        err = end_sessions(req, &c, 1, has_handle, bin, &count);
    free(c.items);
    if (err == SESS_OK && count > 0)
        sess_log_auth(req, SESS_AUTH_REVOKED, owner);
    return err == SESS_OK && count == 0 ? SESS_ENOTFOUND : err;
}

enum sess_err
sess_revoke_others(struct sess_request *req, size_t *count)
{
    const char *owner = logged_in_user(req);
    struct collect c;
    enum sess_err err;

    *count = 0;
    if (!owner)
        return SESS_ENOTFOUND;
    err = collect(req, owner, &c);
    if (err == SESS_OK)
        err = end_sessions(req, &c, SIZE_MAX, any, NULL, count);
    free(c.items);
    if (err == SESS_OK && *count > 0)
        sess_log_auth(req, SESS_AUTH_REVOKED, owner);
    return err;
}

enum sess_err
sess__user_sessions_trim(struct sess_request *req, const char *username, size_t username_len)
{
    unsigned limit = req->app->cfg.max_sessions_per_user;
    char owner[SESS_USERNAME_MAX + 1];
    size_t count = 0, others;
    struct collect c;
    enum sess_err err;

    if (limit == 0 || username_len == 0 || username_len > SESS_USERNAME_MAX)
        return SESS_OK;
    memcpy(owner, username, username_len);
    owner[username_len] = '\0';
    err = collect(req, owner, &c);
    if (err != SESS_OK)
        return err;
    others = 0;
    for (size_t i = 0; i < c.n; i++)
        others += !is_current(req, &c.items[i]);
    /* The login's own session is one of the `limit`. */
    if (others + 1 > limit) {
        qsort(c.items, c.n, sizeof *c.items, least_recent_first);
        err = end_sessions(req, &c, others + 1 - limit, any, NULL, &count);
    }
    free(c.items);
    return err;
}

/* Characters as a person counts them: UTF-8 lead bytes (the body parser
 * has checked the encoding). */
static size_t
count_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

enum sess_err
sess_change_password(struct sess_request *req, const char *current, size_t current_len,
                     const char *new_password, size_t new_len, size_t *revoked,
                     int64_t *retry_after_s)
{
    const char *owner = logged_in_user(req);
    struct sess_attempt a;
    char role[33], name[SESS_USERNAME_MAX + 1];
    enum sess_err err;

    *revoked = 0;
    *retry_after_s = 0;
    if (!owner)
        return SESS_ENOTFOUND;
    /* The session's data changes below: keep the name. */
    sess__fmt(name, sizeof name, "%s", owner);
    if (!new_password || new_len > SESS_PASSWORD_MAX ||
        count_chars(new_password, new_len) < PASSWORD_MIN_CHARS)
        return SESS_EBADINPUT;
    /* The current password is checked as a login's is: counted and
     * throttled, so this form is no way around the login's limit. */
    err = sess__attempt_check(req, &a, name, strlen(name), current ? current : "",
                              current ? current_len : 0, role, retry_after_s);
    if (err == SESS_EFORBIDDEN || err == SESS_ETHROTTLED)
        sess_log_auth(req, SESS_AUTH_PASSWORD_FAILED, name);
    if (err != SESS_OK)
        return err;
    err = sess_user_passwd(req->app, name, new_password, new_len);
    /* Whoever knew the old password is out: every other session ends, and
     * this one goes on under a new id. */
    if (err == SESS_OK)
        err = sess_revoke_others(req, revoked);
    if (err == SESS_OK)
        err = sess_renew(req);
    sess__attempt_end(req, &a, err);
    if (err == SESS_OK)
        sess_log_auth(req, SESS_AUTH_PASSWORD_OK, name);
    return err;
}
