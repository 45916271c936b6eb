/* GET /prefs: the stored preferences (JSON) or the form. POST /prefs:
 * validates `theme` and `lang`, merges them into the session's `prefs` (any
 * other key is ignored: no mass assignment), creating the session. */
#include <string.h>

#include "demo/demo.h"

#define PREF_MAX_LEN 64

/* A preference is a string of at most 64 characters as JavaScript counts
 * them (UTF-16 units: "é" is one, an emoji two), with no control
 * characters. */
static bool
is_valid_pref(json_t *v)
{
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t len = json_string_length(v), chars = 0;

    if (!json_is_string(v))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
        if ((s[i] & 0xC0) != 0x80) /* a lead byte starts a character */
            chars += s[i] >= 0xF0 ? 2 : 1;
    }
    return chars <= PREF_MAX_LEN;
}

static void
prefs(struct sess_request *req)
{
    static const char *const keys[] = {"theme", "lang"};
    json_t *body, *merged;
    const char *back;

    if (!sess_allow(req, "GET, HEAD, POST"))
        return;
    merged = json_deep_copy(sess_get(req, "prefs"));
    if (!json_is_object(merged)) {
        json_decref(merged);
        merged = json_object();
    }
    if (!sess_is_method(req, "POST")) {
        if (sess_wants_json(req)) {
            sess_send_json(req, 200, merged);
            return;
        }
        json_decref(merged);
        sess_send_page(req, 200, "prefs", json_pack("{s:s}", "title", "Preferences"));
        return;
    }
    if (!(body = sess_body(req))) {
        json_decref(merged);
        return;
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(body, keys[i]);
        if (v && !is_valid_pref(v)) {
            json_decref(merged);
            sess_fail(req, 400, strcmp(keys[i], "theme") == 0 ? "Invalid theme" : "Invalid lang");
            return;
        }
        if (v)
            json_object_set(merged, keys[i], v);
    }
    if (sess_set(req, "prefs", json_incref(merged)) != SESS_OK) {
        json_decref(merged);
        sess_fail(req, 500, "Could not store the preferences");
        return;
    }
    if (sess_wants_json(req)) {
        sess_send_json(req, 200, merged);
        return;
    }
    json_decref(merged);
    (void)sess_flash(req, "info", "Preferences saved");
    /* Back to the page the form was on: only our own two pages. */
    back = sess_body_str(req, "back", NULL);
    sess_redirect(req, back && strcmp(back, "/dashboard") == 0 ? "/dashboard" : "/prefs");
}

int
main(void)
{
    return demo_run("prefs", prefs);
}
