/* GET /session: the session as express-session shows it, or 401
 * {"error":"no session"}. Always JSON. */
#include "demo/demo.h"

static void
show_session(struct sess_request *req)
{
    if (!sess_allow(req, "GET, HEAD"))
        return;
    if (!sess_exists(req)) {
        sess_send_json(req, 401, json_pack("{s:s}", "error", "no session"));
        return;
    }
    sess_send_json(req, 200, sess_to_json(req));
}

int
main(void)
{
    return demo_run("session", show_session);
}
