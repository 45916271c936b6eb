/* POST /login in one call: an attempt taken in the throttle before the
 * password is checked (throttle.c), then a fresh id for the new privilege
 * (renew, keeping the visitor's data, unless it was another user's), the
 * user's session limit (devices.c), and the auth log's line. The password
 * never reaches the session. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "log.h"

/* Whether the session is, or was, logged in as another user. */
static bool
is_someone_elses(const struct sess_request *req, const char *username, size_t username_len)
{
    json_t *user = sess_peek(req, "user");
    json_t *name = json_is_object(user) ? json_object_get(user, "username") : NULL;

    return json_is_string(name) &&
           !sess_str_eq((struct sess_str){json_string_value(name), json_string_length(name)},
                        (struct sess_str){username, username_len});
}

/* ------------------------------------------------------------------------
 * The session of a good login
 * ------------------------------------------------------------------------ */

/* Stores the logged-in session now, then looks at the account once more: a
 * userdel (or revocation) that ran while this login was checking the
 * password ended the user's sessions before this one existed. Either the
 * account is still there when looked at, and then the userdel comes later
 * and its destroy_owner finds this session already stored, or it is gone,
 * and the session is destroyed here: in no order does it survive. */
static enum sess_err
start_session(struct sess_request *req, const char *username, size_t username_len, const char *role)
{
    struct sess_str name = {username, username_len};
    json_t *user;
    enum sess_err err, check;

    /* "Login keeps what the visitor had" (README, "The HTTP contract of
     * the demo") under a new id, unless the session is someone else's:
     * nothing of theirs carries. */
    err = is_someone_elses(req, username, username_len) ? sess_regenerate(req) : sess_renew(req);
    if (err == SESS_OK)
        err = sess__user_sessions_trim(req, username, username_len);
    if (err != SESS_OK)
        return err;
    user = json_pack("{s:s%, s:s}", "username", username, username_len, "role", role);
    err = sess_set(req, "authenticated", json_true());
    if (err == SESS_OK)
        err = sess_set(req, "user", user);
    else
        json_decref(user);
    if (err == SESS_OK)
        err = sess_save(req);
    if (err != SESS_OK)
        return err;
    if (sess__user_exists(req->app, name, &check))
        return SESS_OK;
    err = sess_destroy(req);
    if (err != SESS_OK)
        return err;
    return check != SESS_OK ? check : SESS_EFORBIDDEN;
}

enum sess_err
sess_login(struct sess_request *req, const char *username, size_t username_len,
           const char *password, size_t password_len, int64_t *retry_after_s)
{
    struct sess_attempt a;
    char role[33];
    enum sess_err err;

    err = sess__attempt_check(req, &a, username, username_len, password, password_len, role,
                              retry_after_s);
    if (err == SESS_OK) {
        err = start_session(req, username, username_len, role);
        sess__attempt_end(req, &a, err);
    }
    if (err == SESS_OK)
        sess_log_auth(req, SESS_AUTH_LOGIN_OK, username);
    else if (err == SESS_ETHROTTLED)
        sess_log_auth(req, SESS_AUTH_LOGIN_THROTTLED, username);
    else if (err == SESS_EFORBIDDEN)
        sess_log_auth(req, SESS_AUTH_LOGIN_FAILED, username);
    return err;
}
