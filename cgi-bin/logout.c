/* GET /logout: a confirm form that changes nothing. POST /logout: destroys
 * the stored session and expires the cookie; forms then go to /. */
#include <stdio.h>

#include "demo/demo.h"

static void
logout(struct sess_request *req)
{
    char username[SESS_USERNAME_MAX + 1] = "";
    const char *user;
    bool had_session;

    if (!sess_allow(req, "GET, HEAD, POST"))
        return;
    if (!sess_is_method(req, "POST")) {
        sess_send_page(req, 200, "logout", json_pack("{s:s}", "title", "Log out"));
        return;
    }
    if (!sess_body(req))
        return;
    /* Copied: destroying the session frees what sess_get_str lent. */
    user = sess_get_str(req, "user.username");
    if (user)
        snprintf(username, sizeof username, "%s", user);
    had_session = sess_exists(req);
    if (sess_destroy(req) != SESS_OK) {
        sess_fail(req, 503, "Session store unavailable; try again shortly");
        return;
    }
    if (had_session)
        sess_log_auth(req, SESS_AUTH_LOGOUT, username);
    if (sess_wants_json(req)) {
        sess_send_json(req, 200, json_pack("{s:s}", "msg", "Logged out"));
        return;
    }
    sess_redirect(req, "/");
}

int
main(void)
{
    return demo_run("logout", logout);
}
