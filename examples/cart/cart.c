/* The cart example: a small shop's cart in one FastCGI executable that
 * serves several paths through a route table (sess_run_routes), with a
 * login, a logout, flash messages and "log out everywhere". It uses the
 * public API of an installed fcgi-session only (sess.h, and sess_admin.h
 * for sess_revoke_user), and is built outside the library's tree by its
 * own Makefile, with pkg-config.
 *
 *   GET  /cart                    the cart, and the form to add to it
 *   POST /cart/add                item=ID [qty=1..99]: adds to the cart
 *   POST /cart/remove             item=ID: takes it out of the cart
 *   GET  /cart/login              the login form
 *   POST /cart/login              username, password: logs in (the cart is kept)
 *   POST /cart/logout             ends this session
 *   POST /cart/logout-everywhere  ends every session of the logged-in user
 *
 * Browsers get pages (pages/) and 303 redirects after a form; a request
 * with Accept: application/json or a JSON body gets JSON. The cart lives in
 * the session as {"cart": {"pear": 2}}, as an Express app would keep it.
 *
 * Every route may run more than once for one request (sess.h, "A route may
 * run more than once"): they change nothing but the session, except
 * logout_everywhere, whose store-wide revocation is harmless done twice. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sess.h>
#include <sess_admin.h>

struct item {
    const char *id;
    const char *name;
};

static const struct item catalogue[] = {
    {"apple", "Apple"},
    {"pear", "Pear"},
    {"fig", "Fig"},
};
#define CATALOGUE_COUNT (sizeof catalogue / sizeof catalogue[0])
#define QTY_MAX         99

static const struct item *
find_item(const char *id)
{
    size_t i;

    for (i = 0; id && i < CATALOGUE_COUNT; i++)
        if (strcmp(catalogue[i].id, id) == 0)
            return &catalogue[i];
    return NULL;
}

/* The username the session is logged in as (as sess_login leaves it), or
 * NULL. Read with sess_get: a route that decides from it runs again if
 * another request logs the session out meanwhile. */
static const char *
logged_in_user(struct sess_request *req)
{
    if (!json_is_true(sess_get(req, "authenticated")))
        return NULL;
    return sess_get_str(req, "user.username");
}

/* The session's cart, {"pear": 2, ...}, or NULL when it has none. */
static json_t *
cart_of(struct sess_request *req)
{
    json_t *cart = sess_get(req, "cart");
    return json_is_object(cart) ? cart : NULL;
}

/* Answers a form with a redirect, JSON with the cart as it now is. */
static void
answer_with_cart(struct sess_request *req, const char *redirect_to)
{
    json_t *cart = cart_of(req);

    if (sess_wants_json(req)) {
        sess_send_json(req, 200,
                       json_pack("{s:o}", "cart", cart ? json_deep_copy(cart) : json_object()));
        return;
    }
    sess_redirect(req, redirect_to);
}

/* ------------------------------------------------------------------------
 * The cart
 * ------------------------------------------------------------------------ */

/* GET /cart */
static void
show_cart(struct sess_request *req)
{
    json_t *cart, *items, *shop, *qty;
    json_int_t count = 0;
    size_t i;

    if (!sess_allow(req, "GET, HEAD"))
        return;
    cart = cart_of(req);
    if (sess_wants_json(req)) {
        const char *user = logged_in_user(req);
        sess_send_json(req, 200,
                       json_pack("{s:o, s:s?}", "cart", cart ? json_deep_copy(cart) : json_object(),
                                 "user", user));
        return;
    }
    /* In the catalogue's order, whatever the session's. */
    items = json_array();
    shop = json_array();
    for (i = 0; i < CATALOGUE_COUNT; i++) {
        json_array_append_new(
            shop, json_pack("{s:s, s:s}", "id", catalogue[i].id, "name", catalogue[i].name));
        qty = json_object_get(cart, catalogue[i].id);
        if (json_integer_value(qty) > 0) {
            json_array_append_new(items,
                                  json_pack("{s:s, s:s, s:I}", "id", catalogue[i].id, "name",
                                            catalogue[i].name, "qty", json_integer_value(qty)));
            count += json_integer_value(qty);
        }
    }
    /* user, csrf and flash come with every page. */
    sess_send_page(req, 200, "cart",
                   json_pack("{s:s, s:o, s:o, s:I}", "title", "Your cart", "items", items,
                             "catalogue", shop, "count", count));
}

/* The quantity a form ("3") or JSON (3) asked for: 1 when absent, 0 when
 * out of 1..QTY_MAX or not a number. */
static json_int_t
wanted_qty(json_t *body)
{
    json_t *v = json_object_get(body, "qty");
    json_int_t n;
    char *end;

    if (!v)
        return 1;
    if (json_is_integer(v))
        n = json_integer_value(v);
    else if (json_is_string(v) && *json_string_value(v)) {
        n = strtoll(json_string_value(v), &end, 10);
        if (*end)
            return 0;
    } else
        return 0;
    return n >= 1 && n <= QTY_MAX ? n : 0;
}

/* POST /cart/add */
static void
add_to_cart(struct sess_request *req)
{
    const struct item *item;
    json_t *body, *cart, *next;
    json_int_t qty, had;
    char msg[96];

    if (!sess_allow(req, "POST") || !(body = sess_body(req)))
        return;
    item = find_item(sess_body_str(req, "item", NULL));
    if (!item) {
        sess_fail(req, 400, "No such item");
        return;
    }
    qty = wanted_qty(body);
    if (qty == 0) {
        sess_fail(req, 400, "The quantity is a number from 1 to 99");
        return;
    }
    cart = cart_of(req);
    had = json_integer_value(json_object_get(cart, item->id));
    if (had + qty > QTY_MAX)
        qty = QTY_MAX - had;
    next = cart ? json_deep_copy(cart) : json_object();
    if (!next || json_object_set_new(next, item->id, json_integer(had + qty)) != 0 ||
        sess_set(req, "cart", next) != SESS_OK) {
        json_decref(next);
        sess_fail(req, 503, "Could not update the cart; try again");
        return;
    }
    /* Shown once, by the page the form goes back to. */
    if (!sess_wants_json(req)) {
        snprintf(msg, sizeof msg, "Added %lld \xc3\x97 %s", (long long)qty, item->name);
        (void)sess_flash(req, "info", msg);
    }
    answer_with_cart(req, "/cart");
}

/* POST /cart/remove */
static void
remove_from_cart(struct sess_request *req)
{
    const struct item *item;
    json_t *cart, *next;
    char msg[96];

    if (!sess_allow(req, "POST") || !sess_body(req))
        return;
    item = find_item(sess_body_str(req, "item", NULL));
    if (!item) {
        sess_fail(req, 400, "No such item");
        return;
    }
    cart = cart_of(req);
    if (json_object_get(cart, item->id)) {
        next = json_deep_copy(cart);
        if (!next || json_object_del(next, item->id) != 0 ||
            sess_set(req, "cart", next) != SESS_OK) {
            json_decref(next);
            sess_fail(req, 503, "Could not update the cart; try again");
            return;
        }
        if (!sess_wants_json(req)) {
            snprintf(msg, sizeof msg, "Removed %s", item->name);
            (void)sess_flash(req, "info", msg);
        }
    }
    answer_with_cart(req, "/cart");
}

/* ------------------------------------------------------------------------
 * Logging in and out
 * ------------------------------------------------------------------------ */

/* GET and POST /cart/login */
static void
login(struct sess_request *req)
{
    size_t name_len = 0, password_len = 0;
    const char *username, *password, *user;
    int64_t retry_after_s = 0;
    char retry[24], welcome[96];

    if (!sess_allow(req, "GET, HEAD, POST"))
        return;
    if (!sess_is_method(req, "POST")) {
        sess_send_page(req, 200, "login", json_pack("{s:s}", "title", "Log in"));
        return;
    }
    if (!sess_body(req))
        return;
    username = sess_body_str(req, "username", &name_len);
    password = sess_body_str(req, "password", &password_len);
    /* Throttled, the same work for unknown users, a new session id, and
     * the visitor's cart kept. */
    switch (sess_login(req, username, name_len, password, password_len, &retry_after_s)) {
    case SESS_OK:
        break;
    case SESS_EFORBIDDEN:
        if (sess_wants_json(req))
            sess_send_json(req, 403, json_pack("{s:s}", "msg", "Bad credentials"));
        else
            sess_send_page(req, 403, "login",
                           json_pack("{s:s, s:s}", "title", "Log in", "error", "Bad credentials"));
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
    if (sess_wants_json(req)) {
        answer_with_cart(req, "/cart");
        return;
    }
    user = logged_in_user(req);
    snprintf(welcome, sizeof welcome, "Welcome, %s", user ? user : "");
    (void)sess_flash(req, "info", welcome);
    sess_redirect(req, "/cart");
}

/* POST /cart/logout: this session ends, the cart with it. */
static void
logout(struct sess_request *req)
{
    char user[SESS_USERNAME_MAX + 1] = "";
    const char *u;
    bool had_session;

    if (!sess_allow(req, "POST") || !sess_body(req))
        return;
    /* Copied: destroying the session frees what sess_get_str lent. */
    u = logged_in_user(req);
    if (u)
        snprintf(user, sizeof user, "%s", u);
    had_session = sess_exists(req);
    if (sess_destroy(req) != SESS_OK) {
        sess_fail(req, 503, "Session store unavailable; try again shortly");
        return;
    }
    if (had_session && user[0])
        sess_log_auth(req, SESS_AUTH_LOGOUT, user);
    if (sess_wants_json(req))
        sess_send_json(req, 200, json_pack("{s:s}", "msg", "Logged out"));
    else
        sess_redirect(req, "/cart");
}

/* POST /cart/logout-everywhere: every session of the user, on every
 * device, this one included. sess_revoke_user is an administration call
 * (sess_admin.h) on the process's own app: it acts on the store, not on
 * this request's session. The route changed nothing in its session before
 * it, so it needs no sess_save() first (sess.h, sess_request_app); if it
 * runs again, revoking again is harmless. */
static void
logout_everywhere(struct sess_request *req)
{
    char user[SESS_USERNAME_MAX + 1];
    struct sess_app *app = sess_request_app(req);
    const char *u;
    size_t revoked = 0;

    if (!sess_allow(req, "POST") || !sess_body(req))
        return;
    u = logged_in_user(req);
    if (!u) {
        sess_fail(req, 401, "Log in first");
        return;
    }
    snprintf(user, sizeof user, "%s", u);
    if (sess_revoke_user(app, user, &revoked) != SESS_OK) {
        sess_fail(req, 503, "Could not log out everywhere; try again shortly");
        return;
    }
    /* This session is gone from the store already; expire its cookie. */
    if (sess_destroy(req) != SESS_OK) {
        sess_fail(req, 503, "Session store unavailable; try again shortly");
        return;
    }
    sess_log_auth(req, SESS_AUTH_REVOKED, user);
    if (sess_wants_json(req))
        sess_send_json(req, 200, json_pack("{s:I}", "revoked", (json_int_t)revoked));
    else
        sess_redirect(req, "/cart");
}

/* ------------------------------------------------------------------------
 * One executable, several paths
 * ------------------------------------------------------------------------ */

static const struct sess_route routes[] = {
    {"/cart", show_cart},
    {"/cart/add", add_to_cart},
    {"/cart/remove", remove_from_cart},
    {"/cart/login", login},
    {"/cart/logout", logout},
    {"/cart/logout-everywhere", logout_everywhere},
};

int
main(void)
{
    /* Any other path, /cart/ and /cart/x included, is a 404. */
    return sess_run_routes("cart", routes, sizeof routes / sizeof routes[0]);
}
