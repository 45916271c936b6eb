/* GET /dashboard: username, role, session expiry and the preferences form;
 * 401 without a login. */
#include "demo/demo.h"
#include <sess_util.h>

static void
dashboard(struct sess_request *req)
{
    const char *username = sess_get_str(req, "user.username");
    const char *role = sess_get_str(req, "user.role");
    char expires[25], expires_text[30];

    if (!sess_allow(req, "GET, HEAD"))
        return;
    if (!json_is_true(sess_get(req, "authenticated")) || !username || !role) {
        sess_fail(req, 401, "Not logged in");
        return;
    }
    if (sess_wants_json(req)) {
        sess_send_json(req, 200, json_pack("{s:s, s:s}", "username", username, "role", role));
        return;
    }
    sess_iso_date(sess_expires_ms(req), expires);
    sess_http_date(sess_expires_ms(req) / 1000, expires_text);
    sess_send_page(req, 200, "dashboard",
                   json_pack("{s:s, s:s, s:s, s:s}", "title", "Dashboard", "expires", expires,
                             "expires_text", expires_text, "back", "/dashboard"));
}

int
main(void)
{
    return demo_run("dashboard", dashboard);
}
