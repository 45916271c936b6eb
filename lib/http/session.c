/* The session of one request, with express-session's lifecycle: load from
 * the signed cookie, read and change top-level keys, regenerate, destroy,
 * and at the end save, touch and Set-Cookie by its rules (express-session's own
 * §2), closing its gaps: absolute timeout, lazy touch, merge of changed keys
 * only, never re-creating a destroyed record, and writes before headers. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "http.h"
#include "json_load.h"
#include "log.h"

/* ------------------------------------------------------------------------
 * Cookie attributes and expiry
 * ------------------------------------------------------------------------ */

static int64_t
cap_at_deadline(int64_t t_ms, int64_t deadline_ms)
{
    return deadline_ms && deadline_ms < t_ms ? deadline_ms : t_ms;
}

/* The session's idle lifetime: its own ("remember me") or max_age. */
static int64_t
idle_ms_of(const struct sess_request *req)
{
    return req->idle_ms > 0 ? req->idle_ms : req->app->cfg.max_age_s * 1000;
}

/* The absolute deadline of a session that starts, or logs in, at `from_ms`:
 * its own lifetime, or absolute_timeout; 0 when it has none. */
static int64_t
deadline_from(const struct sess_request *req, int64_t from_ms)
{
    int64_t life =
        req->lifetime_ms ? req->lifetime_ms : req->app->cfg.absolute_timeout_s * 1000;
    return life > 0 ? from_ms + life : 0;
}

/* Where a session's expiry moves on activity: now + its idle lifetime,
 * never past the absolute deadline. */
static int64_t
next_expiry(const struct sess_request *req)
{
    return cap_at_deadline(req->now_ms + idle_ms_of(req), req->deadline_ms);
}

/* A remembered session's cookie outlives the browser; with cookie_persist
 * = false the others' do not (express-session's cookie without maxAge). */
static bool
cookie_has_expiry(const struct sess_request *req)
{
    return req->is_remembered || req->app->cfg.cookie_persist;
}

static bool
cookie_is_secure(const struct sess_request *req)
{
    switch (req->app->cfg.cookie_secure) {
    case SESS_SECURE_ALWAYS:
        return true;
    case SESS_SECURE_NEVER:
        return false;
    case SESS_SECURE_AUTO:
        break;
    }
    return req->is_secure || sess__cookie_has_prefix(req->app->cfg.name, "__Host-") ||
           sess__cookie_has_prefix(req->app->cfg.name, "__Secure-");
}

static const char *
same_site_name(enum sess_same_site s)
{
    switch (s) {
    case SESS_SAME_SITE_LAX:
        return "lax";
    case SESS_SAME_SITE_STRICT:
        return "strict";
    case SESS_SAME_SITE_NONE:
        return "none";
    case SESS_SAME_SITE_OFF:
        break;
    }
    return NULL;
}

/* The "cookie" object as express-session stores and shows it, keys in
 * Cookie.data's order so it compares byte for byte with the Express peer. */
static json_t *
cookie_json(const struct sess_request *req, int64_t expires_ms)
{
    const struct sess_config *cfg = &req->app->cfg;
    char iso[25];
    json_t *c = json_object();
    const char *same_site = same_site_name(cfg->cookie_same_site);

    if (!c)
        return NULL;
    sess_iso_date(expires_ms, iso);
    /* express-session shows a cookie without maxAge as null, null. */
    json_object_set_new(c, "originalMaxAge", cookie_has_expiry(req)
                                                 ? json_integer(idle_ms_of(req))
                                                 : json_null());
    if (cfg->cookie_partitioned)
        json_object_set_new(c, "partitioned", json_true());
    if (cfg->cookie_priority)
        json_object_set_new(c, "priority", json_string(cfg->cookie_priority));
    json_object_set_new(c, "expires", cookie_has_expiry(req) ? json_string(iso) : json_null());
    json_object_set_new(c, "secure", json_boolean(cookie_is_secure(req)));
    json_object_set_new(c, "httpOnly", json_boolean(cfg->cookie_http_only));
    if (cfg->cookie_domain)
        json_object_set_new(c, "domain", json_string(cfg->cookie_domain));
    json_object_set_new(c, "path", json_string(cfg->cookie_path));
    if (same_site)
        json_object_set_new(c, "sameSite", json_string(same_site));
    return c;
}

static void
cookie_attrs(const struct sess_request *req, struct sess_cookie_attrs *a)
{
    const struct sess_config *cfg = &req->app->cfg;
    memset(a, 0, sizeof *a);
    a->path = cfg->cookie_path;
    a->domain = cfg->cookie_domain;
    a->priority = cfg->cookie_priority;
    a->same_site = cfg->cookie_same_site;
    a->secure = cookie_is_secure(req);
    a->http_only = cfg->cookie_http_only;
    a->partitioned = cfg->cookie_partitioned;
    a->has_expiry = cookie_has_expiry(req);
}

/* Set-Cookie for the current id, expiring with the stored session. */
static enum sess_err
set_cookie(struct sess_request *req, int64_t expires_ms)
{
    struct sess_cookie_attrs a;
    char signed_value[SESS_ID_MAX_LEN + SESS_SIG_LEN + 8];
    size_t signed_len, len;
    enum sess_err err;

    cookie_attrs(req, &a);
    /* Browsers drop a Secure cookie sent over plain HTTP; express-session
     * drops the header too (and we never store such a session). */
    if (a.secure && !req->is_secure)
        return SESS_OK;
    a.expires_at = expires_ms / 1000; /* Date.toUTCString() truncates the ms */
    err = sess_sign(&req->app->secrets, sess_str_c(req->id), signed_value, sizeof signed_value,
                    &signed_len);
    if (err == SESS_OK)
        err = sess_cookie_build(
            req->cookie_buf, sizeof req->cookie_buf, &len, sess_str_c(req->app->cfg.name),
            (struct sess_str){signed_value, signed_len}, &a, req->now_ms / 1000);
    if (err == SESS_OK)
        err = sess_header(req, "Set-Cookie", req->cookie_buf);
    sodium_memzero(signed_value, sizeof signed_value);
    return err;
}

/* Expires the browser's cookie with the same Path and Domain (or the
 * browser ignores it), Max-Age=0 as OWASP asks. */
static enum sess_err
clear_cookie(struct sess_request *req)
{
    struct sess_cookie_attrs a;
    size_t len;
    enum sess_err err;

    cookie_attrs(req, &a);
    a.has_expiry = true;
    a.expires_at = 0;
    err = sess_cookie_build(req->cookie_buf, sizeof req->cookie_buf, &len,
                            sess_str_c(req->app->cfg.name), (struct sess_str){"", 0}, &a,
                            req->now_ms / 1000);
    if (err == SESS_OK)
        err = sess_header(req, "Set-Cookie", req->cookie_buf);
    return err;
}

/* ------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------ */

/* Forgets what the route read: after a load or a write, the stored record
 * is what the request holds. */
static void
forget_reads(struct sess_request *req)
{
    json_decref(req->read);
    json_decref(req->read_absent);
    req->read = req->read_absent = NULL;
    req->is_untracked = false;
}

static void
reset_session(struct sess_request *req)
{
    json_decref(req->data);
    json_decref(req->dirty);
    req->data = NULL;
    req->dirty = NULL;
    forget_reads(req);
    req->id[0] = '\0';
    req->is_loaded = false;
    req->is_new = false;
    req->is_cookie_due = false;
    req->expires_ms = req->deadline_ms = req->created_ms = 0;
    req->idle_ms = req->lifetime_ms = 0;
    req->is_remembered = req->is_lifetime_changed = req->has_handle = false;
    req->renewed_from[0] = '\0';
}

/* Parses a stored record into the request. A record that is not a JSON
 * object is treated as absent: a corrupt value must not give a 500 on every
 * request that carries its cookie (express-session 1.16.1). */
static enum sess_err
adopt_record(struct sess_request *req, const struct sess_record *rec)
{
    /* The stored "cookie" member is left unbuilt: its fields come from the
     * record's expiry, and it is most of a typical record's values. */
    json_t *data = sess__json_load(rec->data.ptr, rec->data.len, "cookie");

    if (!json_is_object(data)) {
        json_decref(data);
        sess__log_error(req->app, "a stored session is not a JSON object; ignored");
        return SESS_ENOTFOUND;
    }
    json_decref(req->data);
    json_decref(req->dirty);
    forget_reads(req);
    req->data = data;
    req->dirty = json_object();
    req->read_tag = rec->read_tag;
    req->expires_ms = rec->expires_ms;
    req->deadline_ms = rec->deadline_ms;
    req->created_ms = rec->created_ms;
    req->idle_ms = rec->idle_ms;
    req->lifetime_ms = rec->lifetime_ms;
    req->is_remembered = rec->is_remembered;
    req->is_lifetime_changed = false;
    /* A record older than handles gets one with its next write. */
    req->has_handle = true;
    if (rec->has_handle)
        memcpy(req->handle, rec->handle, sizeof req->handle);
    else
        randombytes_buf(req->handle, sizeof req->handle);
    return req->dirty ? SESS_OK : SESS_ENOMEM;
}

static enum sess_err
load(struct sess_request *req, const char *id)
{
    struct sess_app *app = req->app;
    struct sess_record rec;
    enum sess_err err;

    err = app->store->ops->get(app->store, sess_str_c(id), req->now_ms, &rec, &app->scratch);
    if (err == SESS_OK)
        err = adopt_record(req, &rec);
    return err;
}

static enum sess_err generate(struct sess_request *req);
static void load_from_cookie(struct sess_request *req, const char *header);

void
sess__session_begin(struct sess_request *req)
{
    const char *header = sess_param(req, "HTTP_COOKIE");

    reset_session(req);
    req->cookie_id[0] = '\0';
    req->has_cookie = false;
    req->is_destroyed = false;
    req->store_failed = false;
    req->is_conflict = false;
    if (header)
        load_from_cookie(req, header);
    /* express-session makes a session for every request; with
     * saveUninitialized it is stored even when nothing is written. */
    if (!req->is_loaded && !req->store_failed && req->app->cfg.save_uninitialized &&
        generate(req) != SESS_OK)
        req->store_failed = true;
}

static void
load_from_cookie(struct sess_request *req, const char *header)
{
    char value[SESS_COOKIE_MAX_LEN];
    struct sess_str id;
    size_t len;
    enum sess_err err;

    err = sess_cookie_find(sess_str_c(header), sess_str_c(req->app->cfg.name), value, sizeof value,
                           &len);
    if (err == SESS_ENOTFOUND)
        return;
    req->has_cookie = true;
    /* Unsigned, forged, malformed or oversized: no session, silently, and
     * the id is never adopted (no fixation). */
    if (err != SESS_OK || sess__unsign_cached(&req->app->secrets, &req->app->verified,
                                              (struct sess_str){value, len}, &id) != SESS_OK)
        return;
    memcpy(req->cookie_id, id.ptr, id.len);
    req->cookie_id[id.len] = '\0';
    err = load(req, req->cookie_id);
    if (err == SESS_OK) {
        memcpy(req->id, req->cookie_id, id.len + 1);
        req->is_loaded = true;
    } else if (err != SESS_ENOTFOUND) {
        /* Never a fake empty session that would log the user out. */
        sess__log_error(req->app, "reading the session failed: %s: %s", sess_strerror(err),
                        req->app->store->errmsg);
        req->store_failed = true;
    }
}

void
sess__session_end(struct sess_request *req)
{
    reset_session(req);
}

/* ------------------------------------------------------------------------
 * Reading and changing
 * ------------------------------------------------------------------------ */

bool
sess_exists(const struct sess_request *req)
{
    return req->id[0] != '\0' && !req->is_destroyed;
}

const char *
sess_id(const struct sess_request *req)
{
    return sess_exists(req) ? req->id : NULL;
}

int64_t
sess_expires_ms(const struct sess_request *req)
{
    if (!sess_exists(req))
        return 0;
    return req->is_loaded ? cap_at_deadline(req->expires_ms, req->deadline_ms) : next_expiry(req);
}

/* Records that the route read `key` of the stored session, before any
 * change of its own: the value as loaded is kept (a copy, since the route
 * may change the one it got in place). Only keys a route reads cost this;
 * a session that is not stored yet has nothing to watch. */
static void
note_read(struct sess_request *req, const char *key)
{
    json_t *v;
    int rc;

    if (!req->is_loaded || json_object_get(req->dirty, key) ||
        json_object_get(req->read, key) || json_object_get(req->read_absent, key))
        return;
    if (!req->read && !(req->read = json_object()))
        goto untracked;
    if (!req->read_absent && !(req->read_absent = json_object()))
        goto untracked;
    v = json_object_get(req->data, key);
    rc = v ? json_object_set_new(req->read, key, json_deep_copy(v))
           : json_object_set_new(req->read_absent, key, json_true());
    if (rc == 0)
        return;
untracked:
    req->is_untracked = true;
}

json_t *
sess_peek(const struct sess_request *req, const char *key)
{
    return req->data ? json_object_get(req->data, key) : NULL;
}

json_t *
sess_get(struct sess_request *req, const char *key)
{
    if (!req->data || strcmp(key, "cookie") == 0)
        return NULL;
    note_read(req, key);
    return json_object_get(req->data, key);
}

const char *
sess_get_str(struct sess_request *req, const char *path)
{
    json_t *v = req->data;
    const char *p = path;

    while (v && *p) {
        char part[128];
        size_t len = strcspn(p, ".");
        if (len >= sizeof part || !json_is_object(v))
            return NULL;
        memcpy(part, p, len);
        part[len] = '\0';
        if (v == req->data)
            note_read(req, part);
        v = json_object_get(v, part);
        p += len;
        if (*p == '.')
            p++;
    }
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A new, unsaved session: the first write of a request without one. */
static enum sess_err
generate(struct sess_request *req)
{
    json_decref(req->data);
    json_decref(req->dirty);
    req->data = json_object();
    req->dirty = json_object();
    if (!req->data || !req->dirty)
        return SESS_ENOMEM;
    sess_id_new(req->id);
    req->is_new = true;
    req->is_loaded = false;
    req->is_destroyed = false;
    req->idle_ms = req->lifetime_ms = 0;
    req->is_remembered = req->is_lifetime_changed = false;
    req->has_handle = true;
    randombytes_buf(req->handle, sizeof req->handle);
    req->created_ms = req->now_ms;
    req->deadline_ms = deadline_from(req, req->now_ms);
    req->expires_ms = 0;
    return SESS_OK;
}

static enum sess_err
ensure_session(struct sess_request *req)
{
    return sess_exists(req) ? SESS_OK : generate(req);
}

enum sess_err
sess_set(struct sess_request *req, const char *key, json_t *value)
{
    enum sess_err err = SESS_OK;
    json_t *old;

    if (!value)
        return SESS_ENOMEM;
    if (!*key || strcmp(key, "cookie") == 0) {
        err = SESS_EBADINPUT;
        goto out;
    }
    err = ensure_session(req);
    if (err != SESS_OK)
        goto out;
    old = json_object_get(req->data, key);
    /* express-session hashes the data: an equal value is no change. A key
     * the route read is decided at commit, against the value as loaded (it
     * may be this very object, changed in place). */
    if (old && old != value && json_equal(old, value) && !json_object_get(req->read, key))
        goto out;
    if (json_object_set(req->data, key, value) != 0 ||
        json_object_set_new(req->dirty, key, json_true()) != 0)
        err = SESS_ENOMEM;
out:
    json_decref(value);
    return err;
}

enum sess_err
sess_unset(struct sess_request *req, const char *key)
{
    if (!sess_exists(req) || !json_object_get(req->data, key) || strcmp(key, "cookie") == 0)
        return SESS_OK;
    json_object_del(req->data, key);
    return json_object_set_new(req->dirty, key, json_true()) == 0 ? SESS_OK : SESS_ENOMEM;
}

/* Deletes the stored record this request loaded, if any, and the one a
 * renew left to destroy. */
static enum sess_err
destroy_loaded(struct sess_request *req)
{
    struct sess_store *st = req->app->store;
    enum sess_err err = SESS_OK;

    if (req->renewed_from[0])
        err = st->ops->destroy(st, sess_str_c(req->renewed_from), req->now_ms);
    if (err == SESS_OK)
        req->renewed_from[0] = '\0';
    if (err == SESS_OK && req->is_loaded)
        err = st->ops->destroy(st, sess_str_c(req->id), req->now_ms);
    return err;
}

enum sess_err
sess_regenerate(struct sess_request *req)
{
    enum sess_err err = destroy_loaded(req);

    if (err != SESS_OK)
        return err;
    err = generate(req);
    req->is_cookie_due = true;
    return err;
}

enum sess_err
sess_renew(struct sess_request *req)
{
    if (!sess_exists(req)) {
        enum sess_err err = generate(req);
        req->is_cookie_due = true;
        return err;
    }
    /* The record goes once the new one is stored (write_session): a failed
     * write leaves the visitor the session they had. A session renewed
     * twice was never stored under the id in between. */
    if (req->is_loaded)
        memcpy(req->renewed_from, req->id, sizeof req->renewed_from);
    sess_id_new(req->id);
    /* Every key is written under the new id: nothing to check against. */
    forget_reads(req);
    req->read_tag = 0;
    req->is_new = true;
    req->is_loaded = false;
    req->is_cookie_due = true;
    req->created_ms = req->now_ms;
    req->deadline_ms = deadline_from(req, req->now_ms);
    req->expires_ms = 0;
    return SESS_OK;
}

enum sess_err
sess_set_max_age(struct sess_request *req, int64_t idle_s, int64_t absolute_s)
{
    enum sess_err err;

    if (idle_s < 1 || absolute_s < 0 || idle_s > INT64_MAX / 1000 || absolute_s > INT64_MAX / 1000)
        return SESS_EBADINPUT;
    err = ensure_session(req);
    if (err != SESS_OK)
        return err;
    req->idle_ms = idle_s * 1000;
    /* -1: none, where 0 would mean absolute_timeout. */
    req->lifetime_ms = absolute_s ? absolute_s * 1000 : -1;
    req->deadline_ms = deadline_from(req, req->created_ms);
    req->is_remembered = true;
    req->is_lifetime_changed = true;
    req->is_cookie_due = true;
    return SESS_OK;
}

enum sess_err
sess_remember(struct sess_request *req, bool is_remembered)
{
    const struct sess_config *cfg = &req->app->cfg;
    if (!is_remembered) {
        if (!sess_exists(req) || (!req->is_remembered && !req->idle_ms && !req->lifetime_ms))
            return SESS_OK;
        req->idle_ms = req->lifetime_ms = 0;
        req->is_remembered = false;
        req->deadline_ms = deadline_from(req, req->created_ms);
        req->is_lifetime_changed = true;
        req->is_cookie_due = true;
        return SESS_OK;
    }
    return sess_set_max_age(req, cfg->remember_max_age_s, cfg->remember_absolute_timeout_s);
}

bool
sess_is_remembered(const struct sess_request *req)
{
    return sess_exists(req) && req->is_remembered;
}

enum sess_err
sess_destroy(struct sess_request *req)
{
    enum sess_err err = destroy_loaded(req);

    if (err != SESS_OK)
        return err;
    reset_session(req);
    req->is_destroyed = true;
    return SESS_OK;
}

enum sess_err
sess_reload(struct sess_request *req)
{
    enum sess_err err;
    if (!req->is_loaded)
        return SESS_ENOTFOUND;
    err = load(req, req->id);
    if (err == SESS_ENOTFOUND) {
        reset_session(req);
        req->is_destroyed = true;
    }
    return err;
}

/* ------------------------------------------------------------------------
 * Saving
 * ------------------------------------------------------------------------ */

/* Copies `in` into `out` (room for `cap` bytes and a NUL), at most
 * `cap` bytes, every byte outside printable ASCII made '?': what a
 * session records of its client is shown on pages and in JSON, and a
 * cut UTF-8 sequence would be neither. */
static void
copy_printable(char *out, size_t cap, const char *in)
{
    size_t i;

    for (i = 0; in && i < cap && in[i]; i++) {
        char c = in[i];
        if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
            c = '?';
        out[i] = c;
    }
    out[i] = '\0';
}

/* Where the request came from (README, "Login security and the auth log") and with
 * what, as its session records them. */
static void
note_client(struct sess_request *req)
{
    copy_printable(req->seen_addr, SESS_CLIENT_ADDR_MAX, sess_client_addr(req));
    copy_printable(req->user_agent, SESS_USER_AGENT_MAX, sess_param(req, "HTTP_USER_AGENT"));
}

static enum sess_err
save_new(struct sess_request *req, int64_t expires_ms)
{
    struct sess_store *st = req->app->store;
    struct sess_record rec = {0};
    json_t *whole = json_object();
    char *text = NULL;
    enum sess_err err = SESS_ENOMEM;

    if (!whole)
        return SESS_ENOMEM;
    json_object_set_new(whole, "cookie", cookie_json(req, expires_ms));
    if (json_object_update(whole, req->data) != 0)
        goto out;
    text = json_dumps(whole, JSON_COMPACT);
    if (!text)
        goto out;
    rec.expires_ms = expires_ms;
    rec.deadline_ms = req->deadline_ms;
    rec.created_ms = req->created_ms;
    rec.owner = sess__data_owner(req->data);
    rec.data = sess_str_c(text);
    rec.idle_ms = req->idle_ms;
    rec.lifetime_ms = req->lifetime_ms;
    rec.is_remembered = req->is_remembered;
    rec.has_handle = req->has_handle;
    memcpy(rec.handle, req->handle, sizeof rec.handle);
    note_client(req);
    rec.client_addr = sess_str_c(req->seen_addr);
    rec.user_agent = sess_str_c(req->user_agent);
    rec.last_seen_ms = req->now_ms;
    err = st->ops->create(st, sess_str_c(req->id), req->now_ms, &rec);
    /* Renewed: the old id stops working only now that the new one does. */
    if (err == SESS_OK && req->renewed_from[0]) {
        err = st->ops->destroy(st, sess_str_c(req->renewed_from), req->now_ms);
        if (err == SESS_OK)
            req->renewed_from[0] = '\0';
    }
out:
    free(text);
    json_decref(whole);
    return err;
}

static enum sess_err
save_loaded(struct sess_request *req, int64_t expires_ms)
{
    struct sess_store *st = req->app->store;
    struct sess_patch p = {.expires_ms = expires_ms,
                           .set = json_object(),
                           .del = json_object(),
                           .read = json_incref(req->read),
                           .absent = json_incref(req->read_absent),
                           .read_tag = req->read_tag,
                           .whole = req->data,
                           .last_seen_ms = req->now_ms,
                           .has_handle = req->has_handle,
                           .has_lifetime = req->is_lifetime_changed,
                           .is_remembered = req->is_remembered,
                           .idle_ms = req->idle_ms,
                           .lifetime_ms = req->lifetime_ms,
                           .deadline_ms = req->deadline_ms};
    enum sess_err err = SESS_ENOMEM;
    const char *key;
    json_t *v;

    if (!p.set || !p.del)
        goto out;
    memcpy(p.handle, req->handle, sizeof p.handle);
    note_client(req);
    p.client_addr = sess_str_c(req->seen_addr);
    p.user_agent = sess_str_c(req->user_agent);
    json_object_foreach(req->dirty, key, v)
    {
        json_t *value = json_object_get(req->data, key);
        if (value ? json_object_set(p.set, key, value) : json_object_set(p.del, key, json_true()))
            goto out;
    }
    if (json_object_set_new(p.set, "cookie", cookie_json(req, expires_ms)) != 0)
        goto out;
    err = st->ops->update(st, sess_str_c(req->id), req->now_ms, &p);
out:
    sess__patch_free(&p);
    return err;
}

/* Settles what changed among the keys the route read: a key is changed
 * when its value differs from the one loaded, whether it was set again or
 * changed in place (the object sess_get returned). Keys set without being
 * read were marked when set. */
static enum sess_err
settle_changes(struct sess_request *req)
{
    const char *key;
    json_t *loaded;
    int rc = 0;

    json_object_foreach(req->read, key, loaded)
    {
        json_t *now = json_object_get(req->data, key);
        if (now && json_equal(now, loaded))
            json_object_del(req->dirty, key);
        else
            rc |= json_object_set_new(req->dirty, key, json_true());
    }
    json_object_foreach(req->read_absent, key, loaded)
    {
        if (!json_object_get(req->data, key))
            json_object_del(req->dirty, key);
        else
            rc |= json_object_set_new(req->dirty, key, json_true());
    }
    return rc == 0 ? SESS_OK : SESS_ENOMEM;
}

/* Writes the session now, whatever changed. SESS_ECONFLICT when a key the
 * request read has changed in the store since it was loaded: nothing is
 * written. */
static enum sess_err
write_session(struct sess_request *req)
{
    int64_t expires_ms = next_expiry(req);
    enum sess_err err;

    if (req->is_untracked)
        return SESS_ENOMEM;
    err = req->is_new ? save_new(req, expires_ms) : save_loaded(req, expires_ms);
    if (err != SESS_OK)
        return err;
    req->is_new = false;
    req->is_loaded = true;
    req->is_lifetime_changed = false;
    req->expires_ms = expires_ms;
    json_object_clear(req->dirty);
    /* What is stored now is what the request holds. */
    forget_reads(req);
    req->read_tag = 0;
    return SESS_OK;
}

enum sess_err
sess_save(struct sess_request *req)
{
    enum sess_err err;
    bool was_new = req->is_new;

    if (!sess_exists(req))
        return SESS_ENOTFOUND;
    err = settle_changes(req);
    if (err == SESS_OK)
        err = write_session(req);
    if (err == SESS_ECONFLICT) {
        /* The route sees the session as stored now, to redo its work on. */
        enum sess_err reload_err = load(req, req->id);
        if (reload_err == SESS_ENOTFOUND) {
            reset_session(req);
            req->is_destroyed = true;
        }
        return reload_err == SESS_OK || reload_err == SESS_ENOTFOUND ? SESS_ECONFLICT
                                                                     : reload_err;
    }
    /* A new session saved early still gets its cookie at the end. */
    if (err == SESS_OK && was_new)
        req->is_cookie_due = true;
    return err;
}

enum sess_err
sess__session_commit(struct sess_request *req)
{
    const struct sess_config *cfg = &req->app->cfg;
    struct sess_store *st = req->app->store;
    bool is_modified;
    enum sess_err err;
    int64_t target;

    if (req->is_destroyed)
        return req->has_cookie ? clear_cookie(req) : SESS_OK;
    if (!sess_exists(req))
        return SESS_OK;
    err = settle_changes(req);
    if (err != SESS_OK)
        return err;
    is_modified = json_object_size(req->dirty) > 0 || req->is_lifetime_changed;

    if (req->is_new) {
        if (!cfg->save_uninitialized && !is_modified && !req->is_cookie_due)
            return SESS_OK;
        /* A Secure cookie cannot reach a client over plain HTTP: storing the
         * session would only leave an orphan (express-session does). */
        if (cookie_is_secure(req) && !req->is_secure)
            return SESS_OK;
        err = write_session(req);
        return err == SESS_OK ? set_cookie(req, req->expires_ms) : err;
    }

    if (is_modified || cfg->resave) {
        err = write_session(req);
        if (err == SESS_ENOTFOUND) {
            /* Destroyed or regenerated by another request since we loaded
             * it: never re-create it, and hand out no cookie for it. */
            reset_session(req);
            return SESS_OK;
        }
        if (err != SESS_OK)
            return err;
        /* express-session re-sends a browser-session cookie only with
         * rolling (express-session sends it on every response then). */
        return (is_modified && cookie_has_expiry(req)) || cfg->rolling || req->is_cookie_due
                   ? set_cookie(req, req->expires_ms)
                   : SESS_OK;
    }

    /* Unmodified: move the stored expiry only when it would move by at
     * least touch_after (lazy touch), so a page view is no write. */
    target = next_expiry(req);
    if (req->expires_ms < target - cfg->touch_after_s * 1000) {
        err = st->ops->touch(st, sess_str_c(req->id), req->now_ms, target);
        if (err == SESS_ENOTFOUND) {
            reset_session(req);
            return SESS_OK;
        }
        if (err != SESS_OK)
            return err;
        req->expires_ms = target;
        /* A remembered session lives remember_max_age idle in the browser
         * too: its cookie moves with each touch (at most one per
         * touch_after), or it would end that long after the login. */
        if (req->is_remembered)
            return set_cookie(req, req->expires_ms);
    }
    return cfg->rolling || req->is_cookie_due ? set_cookie(req, req->expires_ms) : SESS_OK;
}

json_t *
sess_to_json(struct sess_request *req)
{
    json_t *out = json_object();
    if (!out)
        return NULL;
    if (sess_exists(req)) {
        /* A lifetime just changed (remember me) moves the expiry at the
         * save, as setting cookie.maxAge does at once in express-session. */
        int64_t expires =
            req->is_loaded && !req->is_lifetime_changed ? req->expires_ms : next_expiry(req);
        const char *key;
        json_t *v;

        json_object_set_new(out, "cookie", cookie_json(req, expires));
        /* The caller gets the values themselves: all of them are read. */
        json_object_foreach(req->data, key, v)
        {
            note_read(req, key);
        }
        json_object_update(out, req->data);
    }
    return out;
}
