/* POST /login in one call: per-username and per-address throttling counted
 * in the store (so every process sees it), argon2id verification with equal
 * work for unknown users, then a fresh id for the new privilege (renew,
 * keeping the visitor's data) and the user's session limit. The password
 * never reaches the session. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Throttle keys: "user:NAME" and "addr:ADDRESS" (the store hashes them). */
static struct sess_str
throttle_key(char *buf, size_t cap, const char *kind, const char *value, size_t len)
{
    size_t klen = strlen(kind);
    if (klen + len > cap)
        len = cap - klen;
    memcpy(buf, kind, klen);
    memcpy(buf + klen, value, len);
    return (struct sess_str){buf, klen + len};
}

/* Seconds until the window of a key that reached the limit ends; 0 if it
 * has not. */
static int64_t
locked_for_s(struct sess_store *st, struct sess_str key, int64_t now_ms)
{
    uint32_t count = 0;
    int64_t first_ms = 0;
    if (st->ops->throttle_peek(st, key, now_ms, SESS_THROTTLE_WINDOW_MS, &count, &first_ms) !=
            SESS_OK ||
        count < SESS_THROTTLE_MAX)
        return 0;
    return (first_ms + SESS_THROTTLE_WINDOW_MS - now_ms + 999) / 1000;
}

/* Whether the session is, or was, logged in as another user. */
static bool
is_someone_elses(const struct sess_request *req, const char *username, size_t username_len)
{
    json_t *user = sess_session_peek(req, "user");
    json_t *name = json_is_object(user) ? json_object_get(user, "username") : NULL;

    return json_is_string(name) &&
           !sess_str_eq((struct sess_str){json_string_value(name), json_string_length(name)},
                        (struct sess_str){username, username_len});
}

enum sess_err
sess_login(struct sess_request *req, const char *username, size_t username_len,
           const char *password, size_t password_len, int64_t *retry_after_s)
{
    struct sess_app *app = req->app;
    struct sess_store *st = app->store;
    const char *addr = sess_param(req, "REMOTE_ADDR");
    char user_buf[SESS_USERNAME_MAX + 8], addr_buf[80], role[33];
    struct sess_str user_key, addr_key;
    int64_t wait_s;
    uint32_t count;
    int64_t first_ms;
    bool is_shaped;
    enum sess_err err;
    json_t *user;

    *retry_after_s = 0;
    is_shaped = username && password && username_len > 0 && username_len <= SESS_USERNAME_MAX &&
                password_len <= SESS_PASSWORD_MAX;
    addr_key = throttle_key(addr_buf, sizeof addr_buf, "addr:", addr ? addr : "", addr ? strlen(addr) : 0);
    user_key = throttle_key(user_buf, sizeof user_buf, "user:", is_shaped ? username : "",
                            is_shaped ? username_len : 0);

    wait_s = locked_for_s(st, addr_key, req->now_ms);
    if (is_shaped) {
        int64_t w = locked_for_s(st, user_key, req->now_ms);
        wait_s = w > wait_s ? w : wait_s;
    }
    if (wait_s > 0) {
        *retry_after_s = wait_s;
        return SESS_ETHROTTLED;
    }

    err = is_shaped ? sess_user_verify(app, username, username_len, password, password_len, role)
                    : SESS_EFORBIDDEN;
    if (err == SESS_EFORBIDDEN) {
        /* Count the failure; a store error here must not hide the 403. */
        (void)st->ops->throttle_hit(st, addr_key, req->now_ms, SESS_THROTTLE_WINDOW_MS, &count,
                                    &first_ms);
        if (is_shaped)
            (void)st->ops->throttle_hit(st, user_key, req->now_ms, SESS_THROTTLE_WINDOW_MS,
                                        &count, &first_ms);
        return SESS_EFORBIDDEN;
    }
    if (err != SESS_OK)
        return err;
    (void)st->ops->throttle_clear(st, user_key);

    /* "Login keeps what the visitor had" (CONTRACT.md) under a new id,
     * unless the session is someone else's: nothing of theirs carries. */
    err = is_someone_elses(req, username, username_len) ? sess_regenerate(req) : sess_renew(req);
    if (err == SESS_OK)
        err = sess_user_sessions_trim(req, username, username_len);
    if (err != SESS_OK)
        return err;
    user = json_pack("{s:s%, s:s}", "username", username, username_len, "role", role);
    err = sess_set(req, "authenticated", json_true());
    if (err == SESS_OK)
        err = sess_set(req, "user", user);
    else
        json_decref(user);
    return err;
}
