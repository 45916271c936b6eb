/* GET /password: the form. POST /password (`current`, `new`): 403 for a
 * wrong current password, 400 for a new one under 10 characters or over
 * 1024 bytes; else the password changes, the user's other sessions end and
 * this one goes on under a new id. 401 without a login. */
#include <stdio.h>

#include "demo/demo.h"

/* The form again with what went wrong; JSON clients get {"msg": ...}. */
static void
refuse(struct sess_request *req, int status, const char *msg)
{
    if (sess_wants_json(req)) {
        sess_fail(req, status, msg);
        return;
    }
    sess_send_page(req, status, "password",
                   json_pack("{s:s, s:s}", "title", "Change password", "error", msg));
}

static void
password(struct sess_request *req)
{
    size_t current_len = 0, new_len = 0, revoked;
    const char *current, *new_password;
    int64_t retry_after_s;
    char retry[24];

    if (!sess_allow(req, "GET, HEAD, POST"))
        return;
    if (!json_is_true(sess_get(req, "authenticated"))) {
        sess_fail(req, 401, "Not logged in");
        return;
    }
    if (!sess_is_method(req, "POST")) {
        sess_send_page(req, 200, "password", json_pack("{s:s}", "title", "Change password"));
        return;
    }
    if (!sess_body(req))
        return;
    current = sess_body_str(req, "current", &current_len);
    new_password = sess_body_str(req, "new", &new_len);
    switch (sess_change_password(req, current, current_len, new_password, new_len, &revoked,
                                 &retry_after_s)) {
    case SESS_OK:
        break;
    case SESS_ENOTFOUND:
        sess_fail(req, 401, "Not logged in");
        return;
    case SESS_EFORBIDDEN:
        refuse(req, 403, "The current password is wrong");
        return;
    case SESS_ETHROTTLED:
        snprintf(retry, sizeof retry, "%lld", (long long)retry_after_s);
        (void)sess_header(req, "Retry-After", retry);
        sess_fail(req, 429, "Too many failed attempts; try again later");
        return;
    case SESS_EBADINPUT:
        refuse(req, 400, "The new password needs 10 to 1024 characters");
        return;
    default:
        sess_fail(req, 503, "Password change is unavailable; try again shortly");
        return;
    }
    if (sess_wants_json(req)) {
        sess_send_json(
            req, 200,
            json_pack("{s:s, s:I}", "msg", "Password changed", "revoked", (json_int_t)revoked));
        return;
    }
    (void)sess_flash(req, "info", "Password changed");
    sess_redirect(req, "/dashboard");
}

int
main(void)
{
    return demo_run("password", password);
}
