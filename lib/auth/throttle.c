/* Login throttling: per-username and per-address counters in the store
 * (so every process sees them), an attempt reserved before the password
 * is checked, and argon2id verification with equal work for unknown users
 * (users.c). Shared by login (login.c) and the password change
 * (devices.c), which count alike. */
#include <stdio.h>
#include <string.h>

#include "auth.h"

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

/* ------------------------------------------------------------------------
 * Throttling: an attempt is reserved before the password is checked
 * ------------------------------------------------------------------------ */

/* Counting only failures, after the check, let every attempt that started
 * before the fifth failure ended through: 20 parallel guesses were 20
 * argon2id checks. So each attempt takes its place in the count first, in
 * one store write; the ones past login_max_failures are refused unchecked,
 * and a good login gives its place back. */

static int64_t
window_ms(const struct sess_app *app)
{
    return app->cfg.login_window_s * 1000;
}

/* Takes a place under `key`. SESS_ETHROTTLED (with *retry_after_s) when the
 * window already holds login_max_failures. */
static enum sess_err
take_place(struct sess_request *req, struct sess_str key, int64_t *retry_after_s)
{
    struct sess_app *app = req->app;
    struct sess_store *st = app->store;
    uint32_t count;
    int64_t first_ms;
    enum sess_err err;

    err = st->ops->throttle_hit(st, key, req->now_ms, window_ms(app), &count, &first_ms);
    if (err != SESS_OK)
        return sess__app_fail(app, err, "%s", st->errmsg);
    if (count <= app->cfg.login_max_failures)
        return SESS_OK;
    *retry_after_s = (first_ms + window_ms(app) - req->now_ms + 999) / 1000;
    if (*retry_after_s < 1)
        *retry_after_s = 1;
    return SESS_ETHROTTLED;
}

static void
give_back(struct sess_request *req, struct sess_str key)
{
    struct sess_store *st = req->app->store;

    (void)st->ops->throttle_undo(st, key, req->now_ms, window_ms(req->app));
}

/* The address first: an address that is locked out adds nothing to the
 * count of the names it tries. A name that is locked out gives the
 * address its place back, so that its owner's tries from the office do
 * not lock the whole office out too. */
static enum sess_err
attempt_begin(struct sess_request *req, struct sess_attempt *a, int64_t *retry_after_s)
{
    enum sess_err err = take_place(req, a->addr_key, retry_after_s);

    a->has_addr = err == SESS_OK || err == SESS_ETHROTTLED;
    if (err == SESS_OK && a->user_key.len > 0) {
        err = take_place(req, a->user_key, retry_after_s);
        a->has_user = err == SESS_OK || err == SESS_ETHROTTLED;
        if (err != SESS_OK) {
            give_back(req, a->addr_key);
            a->has_addr = false;
        }
    }
    return err;
}

/* After a check that decided nothing (the store failed): no one's count
 * should carry it. */
static void
attempt_void(struct sess_request *req, struct sess_attempt *a)
{
    if (a->has_addr)
        give_back(req, a->addr_key);
    if (a->has_user)
        give_back(req, a->user_key);
}

/* A good login clears its username's count, but only gives back its own
 * place in the address's: clearing that would let one valid account wipe
 * the failures its address ran up against every other name. */
static void
attempt_succeeded(struct sess_request *req, struct sess_attempt *a)
{
    struct sess_store *st = req->app->store;

    if (a->has_addr)
        give_back(req, a->addr_key);
    if (a->user_key.len > 0)
        (void)st->ops->throttle_clear(st, a->user_key, req->now_ms);
}

enum sess_err
sess__attempt_check(struct sess_request *req, struct sess_attempt *a, const char *username,
                    size_t username_len, const char *password, size_t password_len, char role[33],
                    int64_t *retry_after_s)
{
    const char *addr = sess_client_addr(req);
    bool is_shaped;
    enum sess_err err;

    *retry_after_s = 0;
    memset(a, 0, sizeof *a);
    is_shaped = username && password && username_len > 0 && username_len <= SESS_USERNAME_MAX &&
                password_len <= SESS_PASSWORD_MAX;
    a->addr_key = throttle_key(a->addr_buf, sizeof a->addr_buf, "addr:", addr, strlen(addr));
    if (is_shaped)
        a->user_key =
            throttle_key(a->user_buf, sizeof a->user_buf, "user:", username, username_len);

    err = attempt_begin(req, a, retry_after_s);
    if (err != SESS_OK)
        return err; /* no count can be kept: refuse rather than check unthrottled */
    err = is_shaped
              ? sess_user_verify(req->app, username, username_len, password, password_len, role)
              : SESS_EFORBIDDEN;
    if (err != SESS_OK)
        sess__attempt_end(req, a, err);
    return err;
}

void
sess__attempt_end(struct sess_request *req, struct sess_attempt *a, enum sess_err outcome)
{
    if (outcome == SESS_OK)
        attempt_succeeded(req, a);
    else if (outcome != SESS_EFORBIDDEN) /* a failure keeps the places it took */
        attempt_void(req, a);
}
