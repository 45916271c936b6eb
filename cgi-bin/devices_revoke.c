/* POST /devices/revoke: `handle=H` ends that session of the logged-in user
 * (404 if it is not one of theirs), `others=1` every one but this. JSON
 * gets {"revoked": N}, forms go back to /devices. 401 without a login. */
#include <string.h>

#include "demo/demo.h"

static void
revoke(struct sess_request *req)
{
    const char *handle, *others;
    size_t count = 1;
    enum sess_err err;

    if (!sess_allow(req, "POST"))
        return;
    if (!json_is_true(sess_get(req, "authenticated"))) {
        sess_fail(req, 401, "Not logged in");
        return;
    }
    if (!sess_body(req))
        return;
    handle = sess_body_str(req, "handle", NULL);
    others = sess_body_str(req, "others", NULL);
    if ((others && (strcmp(others, "1") == 0 || strcmp(others, "on") == 0)) ||
        json_is_true(json_object_get(sess_body(req), "others")))
        err = sess_revoke_others(req, &count);
    else if (handle)
        err = sess_revoke_handle(req, handle);
    else {
        sess_fail(req, 400, "Say which session: handle or others");
        return;
    }
    if (err == SESS_ENOTFOUND) {
        sess_fail(req, 404, "No such session");
        return;
    }
    if (err != SESS_OK) {
        sess_fail(req, 503, "Session store unavailable; try again shortly");
        return;
    }
    if (sess_wants_json(req)) {
        sess_send_json(req, 200, json_pack("{s:I}", "revoked", (json_int_t)count));
        return;
    }
    sess_redirect(req, sess_exists(req) ? "/devices" : "/");
}

int
main(void)
{
    return demo_run("devices_revoke", revoke);
}
