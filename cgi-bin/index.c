/* GET /: the welcome page, naming the user when logged in. Creates no
 * session. */
#include "demo/demo.h"

static void
welcome(struct sess_request *req)
{
    if (!sess_allow(req, "GET, HEAD"))
        return;
    sess_send_page(req, 200, "index", json_pack("{s:s}", "title", "Welcome"));
}

int
main(void)
{
    return demo_run("index", welcome);
}
