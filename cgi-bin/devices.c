/* GET /devices: the logged-in user's live sessions, newest first, each with
 * its handle, when it started and was last seen, from where and with what
 * browser; the page has a "Log out" button for each other session. 401
 * without a login. */
#include "demo/demo.h"
#include <sess_util.h>

static json_t *
iso_or_null(int64_t ms)
{
    char iso[25];

    if (!ms)
        return json_null();
    sess_iso_date(ms, iso);
    return json_string(iso);
}

static bool
add_row(void *arg, const struct sess_device *d)
{
    char when[30];

    sess_http_date((d->last_seen_ms ? d->last_seen_ms : d->created_ms) / 1000, when);
    return json_array_append_new(arg, json_pack("{s:s, s:o, s:o, s:s, s:s, s:b, s:s}", "handle",
                                                d->handle, "created", iso_or_null(d->created_ms),
                                                "last_seen", iso_or_null(d->last_seen_ms), "ip",
                                                d->client_addr, "user_agent", d->user_agent,
                                                "current", d->is_current, "seen_text", when)) == 0;
}

static void
devices(struct sess_request *req)
{
    json_t *rows = json_array();
    size_t i;
    json_t *row;

    if (!sess_allow(req, "GET, HEAD")) {
        json_decref(rows);
        return;
    }
    switch (sess_user_sessions(req, add_row, rows)) {
    case SESS_OK:
        break;
    case SESS_ENOTFOUND:
        json_decref(rows);
        sess_fail(req, 401, "Not logged in");
        return;
    default:
        json_decref(rows);
        sess_fail(req, 503, "Session store unavailable; try again shortly");
        return;
    }
    if (sess_wants_json(req)) {
        json_array_foreach(rows, i, row)
        {
            json_object_del(row, "seen_text");
        }
        sess_send_json(req, 200, json_pack("{s:o}", "sessions", rows));
        return;
    }
    sess_send_page(req, 200, "devices",
                   json_pack("{s:s, s:o, s:b}", "title", "Your devices", "sessions", rows,
                             "has_others", json_array_size(rows) > 1));
}

int
main(void)
{
    return demo_run("devices", devices);
}
