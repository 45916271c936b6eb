/* fcgi-session: express-session's sessions for C programs behind FastCGI.
 *
 * The route author's header. A route is a function over `struct
 * sess_request`; sess_run() opens the configuration and the store once,
 * then calls it for every request. Everything a route needs is declared
 * here; the comments are the reference. Two more public headers serve
 * other audiences: sess_admin.h (sessctl and programs that manage users
 * and sessions outside a request) and sess_util.h (the building blocks:
 * configuration, cookies, signing, templates). Internal headers stay in
 * lib/. */
#ifndef SESS_H
#define SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only what the public headers declare is exported from the shared
 * library; the library is built with hidden visibility. */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#define SESS_MUST_CHECK     __attribute__((warn_unused_result))
#define SESS_PRINTF(fmt, a) __attribute__((format(printf, fmt, a)))
#else
#define SESS_MUST_CHECK
#define SESS_PRINTF(fmt, a)
#endif

/* ------------------------------------------------------------------------
 * Basics
 * ------------------------------------------------------------------------ */

/* A view of bytes owned by someone else; not NUL-terminated. Every function
 * that returns one says what it borrows from. */
struct sess_str {
    const char *ptr;
    size_t len;
};

/* A view of a string literal. C++ has no compound literals (-pedantic
 * says so): there it is the aggregate's own braces. */
#ifdef __cplusplus
#define SESS_STR_LIT(lit) (sess_str{(lit), sizeof(lit) - 1})
#else
#define SESS_STR_LIT(lit) ((struct sess_str){(lit), sizeof(lit) - 1})
#endif

/* Wraps a NUL-terminated string (NULL gives an empty view). */
struct sess_str sess_str_c(const char *s);

/* True when both views hold the same bytes (not constant-time). */
bool sess_str_eq(struct sess_str a, struct sess_str b);

/* Every error the library returns, in one table: its name, its text
 * (sess_strerror), the HTTP status a route answers it with
 * (sess_err_http_status) and the exit status a command ends with
 * (sess_err_exit_status, sysexits.h). Each call below says which of them
 * it can return.
 *   ENOTFOUND   no such cookie, session, user or key
 *   EBADINPUT   malformed client input
 *   ETOOBIG     over a configured bound
 *   EFORBIDDEN  CSRF token or Origin refused, bad credentials
 *   ETHROTTLED  too many failed logins
 *   ECONFIG     bad configuration: the executable exits 78
 *   ECRYPTO     a sealed value did not open under any key
 *   EEXISTS     the key is already there (create)
 *   EFULL       the store is full even after gc and growth
 *   ESTORE      the store failed (I/O, corruption, lock)
 *   EUNAVAIL    the store cannot be reached (Redis down)
 *   ECONFLICT   another request changed what this one read: run it again
 *   EIO         a page could not be read */
#define SESS_ERR_MAP(X)                                                 \
    X(OK, "success", 200, 0)                                            \
    X(ENOTFOUND, "not found", 404, 1)                                   \
    X(EBADINPUT, "malformed input", 400, 65)                            \
    X(ETOOBIG, "too large", 413, 70)                                    \
    X(EFORBIDDEN, "forbidden", 403, 70)                                 \
    X(ETHROTTLED, "too many attempts", 429, 70)                         \
    X(ECONFIG, "bad configuration", 500, 78)                            \
    X(ENOMEM, "out of memory", 503, 70)                                 \
    X(ECRYPTO, "sealed value did not open", 500, 70)                    \
    X(EEXISTS, "already exists", 409, 65)                               \
    X(EFULL, "store full", 503, 75)                                     \
    X(ESTORE, "store failed", 503, 75)                                  \
    X(EUNAVAIL, "store unavailable", 503, 75)                           \
    X(ECONFLICT, "session changed by another request", 503, 75)         \
    X(EIO, "I/O failed", 500, 74)

enum sess_err {
#define SESS_ERR_ENUM(name, text, http, exit) SESS_##name,
    SESS_ERR_MAP(SESS_ERR_ENUM)
#undef SESS_ERR_ENUM
};

/* The error's text, e.g. "not found"; never NULL, static storage. */
const char *sess_strerror(enum sess_err err);
/* The error's name, e.g. "SESS_ENOTFOUND"; never NULL, static storage. */
const char *sess_err_name(enum sess_err err);
/* The HTTP status an error is answered with (200 for SESS_OK, 500 for a
 * value outside the enum). */
int sess_err_http_status(enum sess_err err);
/* The exit status a command ends with on an error (sysexits.h; 0 for
 * SESS_OK, 70 for a value outside the enum). */
int sess_err_exit_status(enum sess_err err);

/* Exit codes from sysexits.h, used by sess_run() and sessctl. */
#define SESS_EXIT_USAGE    64
#define SESS_EXIT_DATAERR  65
#define SESS_EXIT_NOUSER   67
#define SESS_EXIT_SOFTWARE 70
#define SESS_EXIT_IOERR    74
#define SESS_EXIT_TEMPFAIL 75
#define SESS_EXIT_NOPERM   77
#define SESS_EXIT_CONFIG   78

/* Bounds on what a client can make us hold. */
#define SESS_ID_BYTES        32   /* random bytes in an id we make */
#define SESS_ID_LEN          43   /* base64url characters of such an id */
#define SESS_ID_MIN_LEN      16   /* shortest id accepted (Express makes 32) */
#define SESS_ID_MAX_LEN      128  /* longest id accepted */
#define SESS_SIG_LEN         43   /* base64 of HMAC-SHA256, without '=' */
#define SESS_COOKIE_MAX_LEN  4096 /* a single decoded cookie value */
#define SESS_SECRETS_MAX     16   /* secrets in secret_file */
#define SESS_SECRET_MIN_LEN  32   /* bytes per secret */
#define SESS_USERNAME_MAX    64   /* bytes in a username */
#define SESS_PASSWORD_MAX    1024 /* bytes in a password */
#define SESS_ERRMSG_MAX      512  /* room for one error message */
#define SESS_PATH_MAX        4096 /* bytes of a request path sess_path gives */

/* ------------------------------------------------------------------------
 * Routes and requests (run.c, http/)
 * ------------------------------------------------------------------------ */

struct sess_app;     /* one per process: config, secrets, store, templates */
struct sess_request; /* one per request; valid inside the route call only */

/* A route: reads the request and the session, then answers with exactly one
 * of the sess_send_* / sess_redirect / sess_fail calls. If it returns
 * without answering, the library answers 500.
 *
 * A route may run more than once for one request. Requests of one session
 * run in parallel but end as if they had run one after the other: when the
 * answer is sent, the session's changes are written only if no key the
 * route read (sess_get, sess_get_str, sess_to_json) was changed meanwhile
 * by another request. If one was, nothing is written or sent, and the
 * library runs the route again from the start on the session as now
 * stored, with the same request (body and query kept; headers the route
 * set are dropped), up to SESS_RERUN_MAX times in all, then answers 503
 * with Retry-After. So everything a route does before answering must be
 * safe to do again, except through the session itself; a route with other
 * side effects (a mail sent, a row written elsewhere) calls sess_save()
 * before them and handles SESS_ECONFLICT itself. Requests that only read
 * the session never run twice. */
typedef void (*sess_route_fn)(struct sess_request *req);

/* Runs of one route for one request, at most, when other requests keep
 * changing what it read. */
#define SESS_RERUN_MAX 128

/* The whole life of a route executable: opens the app from $SESSION_CONFIG
 * (STORE in the environment overrides `store`), then answers requests as
 * FastCGI (or once, as plain CGI) until the web server stops it. Returns the
 * process exit status: 0, SESS_EXIT_CONFIG (78) after printing
 * "ROUTE: FILE:LINE: ..." to stderr, or SESS_EXIT_SOFTWARE. Unless stderr
 * is a terminal or the journal, a failure to start also goes to syslog
 * (facility daemon, priority err, tagged ROUTE[PID]). */
int sess_run(const char *route_name, sess_route_fn route);

/* One entry of a route table: requests whose sess_path() is exactly
 * `path` go to `route`. */
struct sess_route {
    const char *path;
    sess_route_fn route;
};

/* sess_run for an executable that serves several paths: each request goes
 * to the entry whose `path` is byte for byte sess_path(req) (no prefix, no
 * trailing-slash or case folding, no percent-decoding: "/cart/" and
 * "/Cart" are not "/cart"), and a request that matches none is answered
 * 404 with sess_fail ("Not found": JSON or the "error" page). The table is
 * looked up once per request: when a route runs again (see sess_route_fn)
 * it is the same route. `routes` (`count` entries) is borrowed for the
 * life of the process. `name` is the program's name, as sess_run's
 * route_name: in its messages, the auth log and syslog. The table is
 * checked before anything is opened: a path that does not start with '/'
 * or that sess_path never gives (with '?' or '#', or longer than
 * SESS_PATH_MAX), a path given twice, a NULL route or an empty table prints
 * "NAME: route table: ..." to stderr and returns SESS_EXIT_SOFTWARE.
 * Otherwise returns what sess_run returns. */
int sess_run_routes(const char *name, const struct sess_route *routes, size_t count);

/* The app sess_run (or sess_run_routes) opened for this process, never
 * NULL: its configuration, store and accounts, for the calls of
 * sess_admin.h (include it) a route makes: an account page, "log out
 * everywhere" with sess_revoke_user. A route executable never opens a
 * second app with sess_app_open: LMDB forbids opening one environment
 * twice in a process.
 *
 * Those calls act on the store, not on the request's session, and a route
 * may run more than once (see sess_route_fn):
 *   - Safe at any point: sess_app_config, sess_now_ms, sess_app_errmsg,
 *     sess_app_warning, sess_users_each, sess_sessions_each,
 *     sess_stats_get, and sess_user_verify (which no throttle counts: log
 *     users in with sess_login). Their visitors call nothing of the
 *     library.
 *   - Changing the store: sess_user_add, sess_user_passwd, sess_user_del,
 *     sess_revoke, sess_revoke_user. A route that changed its session
 *     calls sess_save() first, which hands it a conflict as SESS_ECONFLICT
 *     (with the fresh session loaded: redo the work or answer) instead of
 *     running it again after the store has changed; and the route must be
 *     safe to run again all the same: a re-run comes from a key read and
 *     then changed by the end of the request, so read and change the
 *     session before these calls, not after them, and make each call
 *     harmless twice (sess_user_add with `must_be_new` gives SESS_EEXISTS
 *     the second time). The request's own session ended this way (the
 *     user's own sessions revoked or deleted) is never written back, but
 *     the browser keeps its cookie: call sess_destroy() as well.
 *   - Never in a route: sess_app_open, sess_app_close, sess_app_set_clock
 *     and sess_sessions_scan_all (they change the app for every later
 *     request of the process), and sess_gc (a whole sweep; the request
 *     loop already collects in small batches after its answers). */
struct sess_app *sess_request_app(struct sess_request *req);

/* --- the request --- */

/* A CGI parameter (REQUEST_METHOD, HTTP_ACCEPT, ...) or NULL. Valid until
 * the route returns. HTTP_PROXY and HTTP_SESSION are never returned. */
const char *sess_param(const struct sess_request *req, const char *name);

/* The client's address, as text in its canonical form ("203.0.113.9",
 * "2001:db8::1"): REMOTE_ADDR, unless trust_proxy is on and REMOTE_ADDR is
 * one of trusted_proxies; then the right-most X-Forwarded-For address that
 * is not a trusted proxy (the left-most one when all are; the walk stops at
 * an entry that is not an address, keeping the last good one). "" when the
 * server gave no REMOTE_ADDR. Worked out on first use; valid until the
 * route returns. */
const char *sess_client_addr(struct sess_request *req);

/* The path of the request, without the query string, NOT percent-decoded:
 * "/cart/add" for GET /cart/add?item=pear, "/a%20b" for /a%20b. Worked out
 * once per request, by this rule:
 *   - REQUEST_URI, when the server sets it (lighttpd, nginx with
 *     `fastcgi_param REQUEST_URI $request_uri`, Apache, CGI under any of
 *     them): the target as the client sent it, before any rewrite of the
 *     server's, cut at the first '?' or '#'. In absolute form
 *     ("http://host/cart", which Apache passes on as sent) the part from
 *     the first '/' after the host ("/" when there is none). A REQUEST_URI
 *     that names no path ("*") gives "".
 *   - Otherwise SCRIPT_NAME followed by PATH_INFO (either may be absent),
 *     as the server split them; servers decode and normalize these, so the
 *     path is then decoded. This is never preferred: Apache's
 *     mod_proxy_fcgi puts the whole path in SCRIPT_NAME and, depending on
 *     the backend type and proxy-fcgi-pathinfo, in PATH_INFO again, and
 *     lighttpd and nginx merge "//" and resolve "/../" in them.
 *   - "" when there is neither, or when the path is longer than
 *     SESS_PATH_MAX bytes.
 * Since it is not decoded, a route table entry matches only the request
 * whose raw path is exactly its path; "/c%61rt" is not "/cart" (404). Never
 * NULL; valid until the route returns. */
const char *sess_path(const struct sess_request *req);

/* The request method ("GET" when the server sent none). */
const char *sess_method(const struct sess_request *req);
bool sess_is_method(const struct sess_request *req, const char *method);

/* True when Content-Type or Accept names application/json. */
bool sess_wants_json(const struct sess_request *req);

/* True when the request came over HTTPS (HTTPS=on, or X-Forwarded-Proto:
 * https with trust_proxy). */
bool sess_is_secure(const struct sess_request *req);

/* If the method is not in the comma-separated `allowed` list ("GET, HEAD"),
 * answers 405 with `Allow` and returns false. */
bool sess_allow(struct sess_request *req, const char *allowed);

/* The body of a state-changing POST, parsed: a JSON object, or the fields of
 * a form as an object of strings (the first of repeated names wins). On any
 * refusal it answers itself and returns NULL: 403 for an Origin naming
 * another site or (forms) a missing or wrong `csrf` field, 415 for another
 * Content-Type, 413 past max_body (decided from Content-Length, before
 * reading), 400 for a short, invalid-UTF-8 or invalid-JSON body or a body
 * that is not an object. Borrowed: valid until the route returns. */
json_t *sess_body(struct sess_request *req);

/* Parses application/x-www-form-urlencoded text (a body or a query string)
 * into an object of strings: '+' is a space, the first of repeated names
 * wins, at most 100 fields. SESS_EBADINPUT for a bad escape, invalid UTF-8
 * or a NUL in a name; SESS_ETOOBIG past 100 fields. The caller owns *out. */
enum sess_err sess_form_parse(struct sess_str in, json_t **out) SESS_MUST_CHECK;

/* A field of the query string, or NULL (parsed on first use; borrowed until
 * the route returns). */
const char *sess_query_str(struct sess_request *req, const char *key);

/* A string field of the body, or NULL when absent or not a string. */
const char *sess_body_str(struct sess_request *req, const char *key, size_t *len);

/* The CSRF token for forms in this request's session (or for "no session").
 * Stateless: TIME.HMAC(key, TIME|id), valid 2 hours. Every page rendered
 * with sess_send_page gets it as {{csrf}}. */
const char *sess_csrf_token(struct sess_request *req);

/* --- the session (express-session's req.session) --- */

/* True when the request's cookie verified and named a live stored session
 * (or the route has since created or regenerated one). */
bool sess_exists(const struct sess_request *req);

/* The session id, or NULL before one is needed. */
const char *sess_id(const struct sess_request *req);

/* A top-level value of the session data, borrowed until the next change of
 * that key; NULL if absent. "cookie" is not data: use sess_to_json. The
 * key counts as read (see sess_route_fn): its value as loaded is kept, and
 * a change made in place to the value returned is saved like a set, as
 * express-session saves `req.session.cart.pear = 3`. */
json_t *sess_get(struct sess_request *req, const char *key);
/* The value of `key` like sess_get, but not recorded as read (borrowed;
 * NULL when absent): for what only decorates a page (a theme, a name),
 * never for what the route decides or writes from, since a change another
 * request makes to it meanwhile does not run the route again. */
json_t *sess_peek(const struct sess_request *req, const char *key);

/* Reads a dotted path ("user.username") as a string; NULL if absent. Its
 * top-level key counts as read. */
const char *sess_get_str(struct sess_request *req, const char *path);

/* Sets a top-level key, taking ownership of `value` (even on error). Setting
 * a key to a value equal to the stored one changes nothing (express-session's
 * hash rule); `value` may be the object sess_get returned, changed in place.
 * Only changed keys are merged into the stored record when it is saved.
 * SESS_EBADINPUT for "cookie" or an empty key. */
enum sess_err sess_set(struct sess_request *req, const char *key, json_t *value);
enum sess_err sess_unset(struct sess_request *req, const char *key);

/* A fresh id and no data; the old record is destroyed now. The new session
 * is saved and gets Set-Cookie when the response goes out. */
enum sess_err sess_regenerate(struct sess_request *req) SESS_MUST_CHECK;

/* A fresh id with the data kept (PHP's session_regenerate_id(true), scs's
 * RenewToken): for a change of privilege that should not cost the visitor
 * what they had. The old record is destroyed when the new one is written
 * (at the end of the request, or by sess_save), so a failed write leaves
 * the old session working; the new id gets Set-Cookie. The session keeps
 * its handle and its lifetime settings, and its absolute deadline starts
 * again now. Without a session, starts one as sess_regenerate does. */
enum sess_err sess_renew(struct sess_request *req) SESS_MUST_CHECK;

/* Gives this session a lifetime of its own, kept with it: `idle_s` seconds
 * idle (1 or more) and `absolute_s` at most since it was created or last
 * renewed (0: no absolute limit), and a persistent cookie (Max-Age =
 * `idle_s`, with Expires) even with cookie_persist = false; GET /session
 * shows cookie.originalMaxAge = idle_s * 1000, as express-session shows a
 * session whose cookie.maxAge was set. Starts a session if there is none;
 * the record is written and the cookie sent at the end of the request.
 * SESS_EBADINPUT for values out of range. */
enum sess_err sess_set_max_age(struct sess_request *req, int64_t idle_s,
                               int64_t absolute_s) SESS_MUST_CHECK;

/* "Remember me": sess_set_max_age(remember_max_age,
 * remember_absolute_timeout) when `is_remembered`; otherwise back to
 * max_age and absolute_timeout (and, with cookie_persist = false, a
 * browser-session cookie). */
enum sess_err sess_remember(struct sess_request *req, bool is_remembered) SESS_MUST_CHECK;

/* True when the session has a lifetime of its own (sess_remember). */
bool sess_is_remembered(const struct sess_request *req);

/* Destroys the stored session now and makes the response expire the cookie
 * (when the client sent one). The request then has no session. */
enum sess_err sess_destroy(struct sess_request *req) SESS_MUST_CHECK;

/* Writes the session now, the explicit commit (the end-of-request save still
 * happens if it changes again afterwards). SESS_ECONFLICT when a key this
 * request read was changed by another request since it was loaded: nothing
 * was written, and the request now holds the session as stored (as after
 * sess_reload; no session if it was destroyed meanwhile), so the route can
 * redo its work or answer. A route that calls it before a side effect
 * outside the session is never run again past that point by the library.
 * Values got before a successful save are not watched for in-place changes
 * afterwards: get them again. */
enum sess_err sess_save(struct sess_request *req) SESS_MUST_CHECK;

/* Re-reads the stored session, dropping this request's unsaved changes.
 * SESS_ENOTFOUND if it is gone. */
enum sess_err sess_reload(struct sess_request *req) SESS_MUST_CHECK;

/* The session as express-session shows it: {"cookie": {...}, data...}.
 * A new reference; the caller owns it (or hands it to sess_send_json). */
json_t *sess_to_json(struct sess_request *req);

/* Expiry of the session (Unix ms), or 0 without one. */
int64_t sess_expires_ms(const struct sess_request *req);

/* --- accounts (users.c) --- */

/* POST /login in one call: throttling (SESS_ETHROTTLED, *retry_after_s set),
 * argon2id verification with the same work for unknown users
 * (SESS_EFORBIDDEN), then a new id and `authenticated` and `user:
 * {username, role}` stored. The visitor's data is kept (sess_renew) unless
 * the session is another user's (then sess_regenerate: nothing carried
 * over). With max_sessions_per_user, the user's least recently used
 * sessions beyond it end. Call sess_remember() after it for "remember
 * me". */
enum sess_err sess_login(struct sess_request *req, const char *username, size_t username_len,
                         const char *password, size_t password_len,
                         int64_t *retry_after_s) SESS_MUST_CHECK;

/* --- flash messages (flash.c): connect-flash's layout --- */

/* Adds `msg` to the session's flash messages of `type` ("info", "error"),
 * kept as connect-flash keeps them, {"flash": {"info": ["..."]}}, so an
 * Express app using connect-flash on the same store shows ours and we show
 * its. Starts a session if there is none. Strings are copied.
 * SESS_EBADINPUT for an empty type or a string that is not UTF-8. */
enum sess_err sess_flash(struct sess_request *req, const char *type, const char *msg);

/* Takes the messages of `type` out of the session (read once, as
 * req.flash(type) does): a new array of strings the caller owns, or NULL
 * when there are none. The removal is saved with the session. */
json_t *sess_flash_take(struct sess_request *req, const char *type);

/* Takes every message out: a new object, type -> array of strings, or NULL
 * when there are none. sess_send_page calls it for every page whose vars
 * hold no "flash" of their own, and hands the page {{flash}}, a list of
 * {"type", "msg"} in the order they were added per type. */
json_t *sess_flash_take_all(struct sess_request *req);

/* --- the logged-in user's sessions (devices.c) ---
 * Each call acts for the user the request is logged in as (authenticated
 * and user.username) on that user's live sessions only, and is
 * SESS_ENOTFOUND when the request is not logged in; store failures come
 * back as the store reports them (answer 503). */

struct sess_device {
    const char *handle;      /* the session's public name: base64url of 16 random bytes,
                                fixed for its life; "" for a session stored before
                                handles, until its next write. Borrowed for the visit. */
    int64_t created_ms;      /* created, or last logged in (renewed) */
    int64_t last_seen_ms;    /* last write or touch, to touch_after; 0 unknown */
    int64_t expires_ms;      /* the earlier of idle expiry and absolute deadline */
    const char *client_addr; /* where it was last written from; "" unknown */
    const char *user_agent;  /* at most 256 bytes, printable ASCII; "" unknown */
    bool is_current;         /* the request's own session */
    bool is_remembered;
};
/* Return false to stop. */
typedef bool (*sess_device_fn)(void *arg, const struct sess_device *d);

/* Visits the user's live sessions, newest first. */
enum sess_err sess_user_sessions(struct sess_request *req, sess_device_fn visit,
                                 void *arg) SESS_MUST_CHECK;

/* Ends the user's session named `handle` (base64url, as sess_user_sessions
 * gives it); the request's own handle ends the request's session as
 * sess_destroy does. SESS_ENOTFOUND, ending nothing, when no session of
 * this user has it. */
enum sess_err sess_revoke_handle(struct sess_request *req, const char *handle) SESS_MUST_CHECK;

/* Ends every session of the user but the request's own; *count says how
 * many. */
enum sess_err sess_revoke_others(struct sess_request *req, size_t *count) SESS_MUST_CHECK;

/* Changes the user's password: SESS_EBADINPUT when `new_password` has
 * fewer than 10 characters (UTF-8 code points) or more than
 * SESS_PASSWORD_MAX bytes; SESS_EFORBIDDEN when `current` is not it, which
 * counts as a failed login for the user and the client address, and
 * SESS_ETHROTTLED (with *retry_after_s) past login_max_failures, as
 * sess_login. Then every other session of the user ends (*revoked says how
 * many) and this one is renewed (sess_renew): a new id, still logged in.
 * The auth log gets "password changed" or "password change failed". */
enum sess_err sess_change_password(struct sess_request *req, const char *current,
                                   size_t current_len, const char *new_password, size_t new_len,
                                   size_t *revoked, int64_t *retry_after_s) SESS_MUST_CHECK;

/* --- the auth log (log.c) --- */

/* The events of the auth log, as they appear in it. The fail2ban filter
 * (fail2ban/filter.d/fcgi-session.conf) matches the two "failed" ones. */
#define SESS_AUTH_LOGIN_OK        "login succeeded"
#define SESS_AUTH_LOGIN_FAILED    "login failed"
#define SESS_AUTH_LOGIN_THROTTLED "login throttled"
#define SESS_AUTH_LOGOUT          "logout"
#define SESS_AUTH_REVOKED         "session revoked"
#define SESS_AUTH_PASSWORD_OK     "password changed"
#define SESS_AUTH_PASSWORD_FAILED "password change failed"

/* Writes one line of the auth log to the `log` destination (stderr, syslog
 * with facility auth, or a file, where it is preceded by the UTC time,
 * "2026-11-22T18:00:00Z "):
 *   fcgi-session[ROUTE]: EVENT for "USERNAME" from ADDRESS
 * ROUTE is sess_run's route name, ADDRESS sess_client_addr(req) ("-" when
 * unknown). `event` is one of the SESS_AUTH_ constants (borrowed);
 * `username` may be NULL (logged as ""). Control bytes, bytes past 0x7e,
 * '"' and '\' in the username are escaped (\xNN, \", \\) and it is cut at
 * SESS_USERNAME_MAX bytes ("..." added), so no client input can forge a
 * line or a field. sess_login logs its own events. Never fails: a line
 * that cannot be written is lost. */
void sess_log_auth(struct sess_request *req, const char *event, const char *username);

/* --- the response: each answers once --- */

/* Adds a response header. SESS_EBADINPUT if name or value holds CR, LF or
 * another control byte. A page's Content-Security-Policy set this way
 * replaces the library's own (default-src 'none'; style-src 'self';
 * img-src 'self' data:; form-action 'self'; frame-ancestors 'none';
 * base-uri 'none': stylesheets of the site, no inline style), for a page
 * that loads a script or a stylesheet of another site. */
enum sess_err sess_header(struct sess_request *req, const char *name, const char *value);

/* Saves the session by express-session's rules, then sends `body` (owned:
 * freed here) as JSON. A failed save sends 503 instead, with no cookie. */
void sess_send_json(struct sess_request *req, int status, json_t *body);

/* Renders html_dir/PAGE.html with `vars` (owned; may be NULL) plus
 * {{csrf}}, {{user}} (when logged in) and what the program's
 * sess_set_page_vars hook adds; sends it as HTML. */
void sess_send_page(struct sess_request *req, int status, const char *page, json_t *vars);

/* Variables every page of the process gets (sess_send_page, and sess_fail's
 * error page), under the route's own: a key the route set wins. The hook
 * adds them to `vars`, reading the session with sess_peek. One per
 * process, set before sess_run; NULL for none. Whatever the hook, the
 * library adds `user` (the session's "user" while its "authenticated" is
 * true, as sess_login leaves them; an app with its own accounts sets both
 * to show its user) and `csrf` (sess_csrf_token, for the pages that show
 * it). The page folder's requirements are in fcgi-session(3). */
typedef void (*sess_page_vars_fn)(struct sess_request *req, json_t *vars);
void sess_set_page_vars(sess_page_vars_fn hook);

/* 303 See Other to `location`, which must pass sess_redirect_is_local();
 * anything else is a 500 "Bad redirect" (logged), never a Location. */
void sess_redirect(struct sess_request *req, const char *location);

/* Whether a browser takes `location` to a path of this site: it starts
 * with one '/' (not "//", no scheme, no leading space) and holds no
 * control byte (< 0x20, 0x7f) and no backslash, which browsers strip or
 * read as '/'. For checking a "next" parameter before redirecting to it. */
bool sess_redirect_is_local(const char *location);

/* An error in the client's language: JSON {"msg": MSG} or the "error"
 * page. The session is not saved. */
void sess_fail(struct sess_request *req, int status, const char *msg);

#ifdef __cplusplus
}
#endif

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#endif
