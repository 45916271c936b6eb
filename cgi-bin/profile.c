/* GET /profile: "Hello USER" when logged in, "You're not logged in"
 * otherwise (the page decides from {{user}}). */
#include "demo/demo.h"

static void
profile(struct sess_request *req)
{
    if (!sess_allow(req, "GET, HEAD"))
        return;
    sess_send_page(req, 200, "profile", json_pack("{s:s}", "title", "Profile"));
}

int
main(void)
{
    return demo_run("profile", profile);
}
