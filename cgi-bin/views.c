/* GET /views: counts this session's visits; the first visit creates the
 * session. The smallest route: start a new one from a copy of this. */
#include "demo/demo.h"

static void
views(struct sess_request *req)
{
    json_int_t n;

    if (!sess_allow(req, "GET, HEAD"))
        return;
    n = json_integer_value(sess_get(req, "views")) + 1;
    if (sess_set(req, "views", json_integer(n)) != SESS_OK) {
        sess_fail(req, 500, "Could not count the visit");
        return;
    }
    sess_send_json(req, 200, json_pack("{s:I}", "views", n));
}

int
main(void)
{
    return demo_run("views", views);
}
