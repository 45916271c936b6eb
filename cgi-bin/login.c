/* GET /login: the form. POST /login (form or JSON): a new id for good
 * credentials (the visitor's data kept), remembered for remember_max_age
 * when asked, 403 and no session for bad ones, 429 with Retry-After when
 * throttled. */
#include <stdio.h>
#include <string.h>

#include "demo/demo.h"

static void
refuse(struct sess_request *req, const char *username)
{
    if (sess_wants_json(req)) {
        sess_send_json(req, 403, json_pack("{s:s}", "msg", "Bad credentials"));
        return;
    }
    sess_send_page(req, 403, "login",
                   json_pack("{s:s, s:s, s:s}", "title", "Log in", "error", "Bad credentials",
                             "username", username ? username : ""));
}

/* "Remember me": a checked box sends "1" or "on", JSON sends true. */
static bool
wants_remembering(json_t *body)
{
    json_t *v = json_object_get(body, "remember");
    const char *s = json_string_value(v);

    return json_is_true(v) || (s && (strcmp(s, "1") == 0 || strcmp(s, "on") == 0));
}

static void
login(struct sess_request *req)
{
    size_t name_len = 0, password_len = 0;
    const char *username, *password;
    int64_t retry_after_s;
    char retry[24], welcome[96];
    json_t *body;

    if (!sess_allow(req, "GET, HEAD, POST"))
        return;
    if (!sess_is_method(req, "POST")) {
        sess_send_page(req, 200, "login", json_pack("{s:s}", "title", "Log in"));
        return;
    }
    if (!(body = sess_body(req)))
        return;
    username = sess_body_str(req, "username", &name_len);
    password = sess_body_str(req, "password", &password_len);
    switch (sess_login(req, username, name_len, password, password_len, &retry_after_s)) {
    case SESS_OK:
        if (sess_remember(req, wants_remembering(body)) != SESS_OK) {
            sess_fail(req, 500, "Could not remember the session");
            return;
        }
        if (sess_wants_json(req)) {
            sess_send_json(req, 200, sess_to_json(req));
            return;
        }
        snprintf(welcome, sizeof welcome, "Welcome back, %s", username);
        (void)sess_flash(req, "info", welcome);
        sess_redirect(req, "/dashboard");
        return;
    case SESS_EFORBIDDEN:
        refuse(req, username);
        return;
    case SESS_ETHROTTLED:
        snprintf(retry, sizeof retry, "%lld", (long long)retry_after_s);
        (void)sess_header(req, "Retry-After", retry);
        sess_fail(req, 429, "Too many failed logins; try again later");
        return;
    default:
        sess_fail(req, 503, "Login is unavailable; try again shortly");
        return;
    }
}

int
main(void)
{
    return demo_run("login", login);
}
