/* A session update as data (store.h, struct sess_patch): laid over the
 * stored record inside the store's write, checked first against what the
 * request read, and carried as JSON text to the process that writes a
 * group commit. What a request changes and reads is session.c's business;
 * how a store runs the write is the store's. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base.h"
#include "store.h"

struct sess_str
sess__data_owner(json_t *data)
{
    json_t *user = json_object_get(data, "user");
    json_t *name = json_is_object(user) ? json_object_get(user, "username") : NULL;
    if (!json_is_string(name))
        return (struct sess_str){"", 0};
    return (struct sess_str){json_string_value(name), json_string_length(name)};
}

/* True when every key the request read still holds the value it read:
 * then writing its changes now is what running it after the writers it
 * overlapped would have written. */
static bool
patch_reads_hold(const struct sess_patch *p, json_t *stored)
{
    const char *key;
    json_t *v;

    json_object_foreach(p->read, key, v)
    {
        json_t *now = json_object_get(stored, key);
        if (!now || !json_equal(now, v))
            return false;
    }
    json_object_foreach(p->absent, key, v)
    {
        if (json_object_get(stored, key))
            return false;
    }
    return true;
}

/* The request's sighting of the client, and its change of the session's
 * lifetime if it made one, over the record's own. A handle, once given,
 * stays: only a record made before handles existed takes the request's. */
static void
apply_meta(const struct sess_patch *p, const struct sess_record *current, struct sess_record *next)
{
    if (p->last_seen_ms)
        next->last_seen_ms = p->last_seen_ms;
    if (p->client_addr.len)
        next->client_addr = p->client_addr;
    if (p->user_agent.len)
        next->user_agent = p->user_agent;
    if (!current->has_handle && p->has_handle) {
        next->has_handle = true;
        memcpy(next->handle, p->handle, sizeof next->handle);
    }
    if (p->has_lifetime) {
        next->idle_ms = p->idle_ms;
        next->lifetime_ms = p->lifetime_ms;
        next->deadline_ms = p->deadline_ms;
        next->is_remembered = p->is_remembered;
    }
}

enum sess_err
sess__patch_merge(struct sess_patch *p, const struct sess_record *current, struct sess_record *next)
{
    json_error_t jerr;
    const char *key;
    json_t *v;

    json_decref(p->merged);
    free(p->text);
    p->text = NULL;
    /* Without data, the store knows the record is the one the request
     * loaded: nothing can have changed under it. */
    if (!current->data.ptr && p->whole)
        p->merged = json_copy(p->whole);
    else
        p->merged = json_loadb(current->data.ptr, current->data.len, 0, &jerr);
    if (!json_is_object(p->merged))
        return current->data.ptr ? SESS_ENOTFOUND : SESS_ENOMEM;
    if (current->data.ptr && !patch_reads_hold(p, p->merged))
        return SESS_ECONFLICT;
    json_object_foreach(p->del, key, v)
    {
        json_object_del(p->merged, key);
    }
    if (json_object_update(p->merged, p->set) != 0)
        return SESS_ENOMEM;
    p->text = json_dumps(p->merged, JSON_COMPACT);
    if (!p->text)
        return SESS_ENOMEM;
    *next = *current;
    next->expires_ms = p->expires_ms;
    next->owner = sess__data_owner(p->merged);
    next->data = sess_str_c(p->text);
    apply_meta(p, current, next);
    return SESS_OK;
}

/* The metadata as one JSON object, {"seen":MS,"addr":..,"ua":..,"handle":
 * "HEX", "idle":MS,"life":MS,"deadline":MS,"remember":BOOL}, each only when
 * set. */
static json_t *
meta_dump(const struct sess_patch *p)
{
    json_t *m = json_object();
    char hex[2 * SESS_HANDLE_BYTES + 1];

    if (!m)
        return NULL;
    if (p->last_seen_ms)
        json_object_set_new(m, "seen", json_integer(p->last_seen_ms));
    if (p->client_addr.len)
        json_object_set_new(m, "addr", json_stringn(p->client_addr.ptr, p->client_addr.len));
    if (p->user_agent.len)
        json_object_set_new(m, "ua", json_stringn(p->user_agent.ptr, p->user_agent.len));
    if (p->has_handle) {
        sodium_bin2hex(hex, sizeof hex, p->handle, sizeof p->handle);
        json_object_set_new(m, "handle", json_string(hex));
    }
    if (p->has_lifetime) {
        json_object_set_new(m, "idle", json_integer(p->idle_ms));
        json_object_set_new(m, "life", json_integer(p->lifetime_ms));
        json_object_set_new(m, "deadline", json_integer(p->deadline_ms));
        json_object_set_new(m, "remember", json_boolean(p->is_remembered));
    }
    return m;
}

static struct sess_str
str_view(json_t *v)
{
    return json_is_string(v) ? (struct sess_str){json_string_value(v), json_string_length(v)}
                             : (struct sess_str){"", 0};
}

/* Reads meta_dump's object into `p`; views borrow from it (p->meta). */
static bool
meta_parse(struct sess_patch *p, json_t *m)
{
    json_t *handle = json_object_get(m, "handle"), *idle = json_object_get(m, "idle");
    size_t len;

    p->last_seen_ms = json_integer_value(json_object_get(m, "seen"));
    p->client_addr = str_view(json_object_get(m, "addr"));
    p->user_agent = str_view(json_object_get(m, "ua"));
    if (handle) {
        if (!json_is_string(handle) ||
            sodium_hex2bin(p->handle, sizeof p->handle, json_string_value(handle),
                           json_string_length(handle), NULL, &len, NULL) != 0 ||
            len != sizeof p->handle)
            return false;
        p->has_handle = true;
    }
    if (idle) {
        p->has_lifetime = true;
        p->idle_ms = json_integer_value(idle);
        p->lifetime_ms = json_integer_value(json_object_get(m, "life"));
        p->deadline_ms = json_integer_value(json_object_get(m, "deadline"));
        p->is_remembered = json_is_true(json_object_get(m, "remember"));
    }
    return true;
}

char *
sess__patch_dump(const struct sess_patch *patch)
{
    /* "o" takes the reference it is given: the empty object made for an
     * absent read set must not outlive the pack. */
    json_t *all = json_pack("{sOsOsososo}", "set", patch->set, "del", patch->del, "read",
                            patch->read ? json_incref(patch->read) : json_object(), "absent",
                            patch->absent ? json_incref(patch->absent) : json_object(), "meta",
                            meta_dump(patch));
    char *text = all ? json_dumps(all, JSON_COMPACT) : NULL;

    json_decref(all);
    return text;
}

enum sess_err
sess__patch_parse(struct sess_patch *patch, const char *text, size_t len, int64_t expires_ms)
{
    json_error_t jerr;
    json_t *all = json_loadb(text, len, 0, &jerr);
    json_t *set = json_object_get(all, "set"), *del = json_object_get(all, "del");
    json_t *read = json_object_get(all, "read"), *absent = json_object_get(all, "absent");
    json_t *meta = json_object_get(all, "meta");

    if (!json_is_object(set) || !json_is_object(del) || !json_is_object(read) ||
        !json_is_object(absent) || (meta && !json_is_object(meta))) {
        json_decref(all);
        return SESS_EBADINPUT;
    }
    *patch = (struct sess_patch){.expires_ms = expires_ms,
                                 .set = json_incref(set),
                                 .del = json_incref(del),
                                 .read = json_incref(read),
                                 .absent = json_incref(absent),
                                 .meta = json_incref(meta)};
    json_decref(all);
    if (meta && !meta_parse(patch, meta)) {
        sess__patch_free(patch);
        return SESS_EBADINPUT;
    }
    return SESS_OK;
}

void
sess__patch_free(struct sess_patch *patch)
{
    json_decref(patch->set);
    json_decref(patch->del);
    json_decref(patch->read);
    json_decref(patch->absent);
    json_decref(patch->meta);
    json_decref(patch->merged);
    free(patch->text);
    *patch = (struct sess_patch){0};
}
