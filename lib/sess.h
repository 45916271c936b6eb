/* fcgi-session: express-session's sessions for C programs behind FastCGI.
 *
 * The one public header. A route is a function over `struct sess_request`;
 * sess_run() opens the configuration and the store once, then calls it for
 * every request. Everything a route needs is declared here; the comments are
 * the reference. Internal headers (store.h, internal.h) stay in lib/. */
#ifndef SESS_H
#define SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
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

#define SESS_STR_LIT(lit) ((struct sess_str){(lit), sizeof(lit) - 1})

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

/* ------------------------------------------------------------------------
 * Configuration (config.c): the `key = value` file of DESIGN.md
 * ------------------------------------------------------------------------ */

enum sess_cookie_secure {
    SESS_SECURE_AUTO, /* Secure when the request came over HTTPS */
    SESS_SECURE_ALWAYS,
    SESS_SECURE_NEVER,
};

enum sess_same_site {
    SESS_SAME_SITE_LAX,
    SESS_SAME_SITE_STRICT,
    SESS_SAME_SITE_NONE, /* needs Secure: refused with cookie_secure = false */
    SESS_SAME_SITE_OFF,  /* no SameSite attribute (cookie_same_site = off) */
};

enum sess_encrypt {
    SESS_ENCRYPT_AUTO, /* yes in LMDB, no in Redis (Express must read it) */
    SESS_ENCRYPT_YES,
    SESS_ENCRYPT_NO,
};

enum sess_sync {
    SESS_SYNC_FULL, /* fsync data and meta page on every commit */
    SESS_SYNC_META, /* MDB_NOMETASYNC: lose at most the last commit on power loss */
    SESS_SYNC_NONE, /* MDB_NOSYNC: leave it to the kernel */
};

enum sess_log_to {
    SESS_LOG_STDERR, /* the web server's error log */
    SESS_LOG_SYSLOG, /* facility auth, tagged with the route's name */
    SESS_LOG_FILE,   /* log_path, appended to */
};

/* An IPv4 or IPv6 network: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d/96+n),
 * so one comparison serves both. */
struct sess_net {
    unsigned char addr[16];
    unsigned prefix_bits; /* 0..128 */
};

#define SESS_TRUSTED_PROXIES_MAX 32

/* Every key of the file, with its unit in the name. Strings are owned by the
 * config and freed by sess_config_free(); paths are absolute (a relative path
 * in the file is taken relative to the file's directory). */
struct sess_config {
    /* Strings and paths */
    char *path;            /* the file read, for messages; NULL if none */
    char *name;            /* cookie name, default "sid" */
    char *secret_file;     /* required */
    char *store;           /* "lmdb:/abs/dir", "redis://...", "unix:/path", ... */
    char *cookie_path;     /* default "/" */
    char *cookie_domain;   /* NULL: host-only */
    char *cookie_priority; /* NULL, "Low", "Medium" or "High" */
    char *html_dir;        /* default "html" next to the file */
    char *redis_prefix;    /* session keys' prefix, default "sess:"; NULL: that */
    char *log_path;        /* absolute, with SESS_LOG_FILE; else NULL */

    /* Lifetimes and sizes */
    int64_t max_age_s;          /* idle lifetime, default 1800 */
    int64_t absolute_timeout_s; /* since login or creation, default 43200; 0 = off */
    int64_t touch_after_s;      /* default 60 */
    int64_t remember_max_age_s; /* idle lifetime of a remembered session, default 2592000 */
    int64_t remember_absolute_timeout_s; /* its absolute lifetime, default 7776000; 0 = off */
    int64_t login_window_s;              /* default 300 */
    int64_t redis_timeout_ms;            /* connect and command timeout, default 1000 */
    size_t max_body_bytes;               /* default 16384 */
    size_t lmdb_map_size_bytes;          /* default 1 GiB; grows on demand */

    /* Login security (addr.c, login.c) */
    struct sess_net trusted_proxies[SESS_TRUSTED_PROXIES_MAX]; /* default 127.0.0.0/8, ::1 */
    size_t trusted_proxies_count;
    uint32_t login_max_failures;    /* per username and per client address, default 5 */
    unsigned max_sessions_per_user; /* live sessions a login may leave a user; 0 = no limit */
    int redis_min_replicas;         /* replicas that must have a write (WAIT); default 0 */

    /* Choices */
    enum sess_cookie_secure cookie_secure;
    enum sess_same_site cookie_same_site;
    enum sess_encrypt encrypt;
    enum sess_sync lmdb_sync;
    enum sess_log_to log_to; /* default stderr */
    bool rolling;
    bool resave;
    bool save_uninitialized;
    bool cookie_http_only;
    bool cookie_partitioned;
    bool trust_proxy;    /* believe X-Forwarded-Proto and -For from trusted_proxies */
    bool cookie_persist; /* false: a session not remembered gets a cookie without
                            Expires or Max-Age (the server-side expiry holds) */
};

/* Fills `cfg` with the defaults of DESIGN.md (secret_file NULL). Paths are
 * resolved against `base_dir` (NULL: the current directory). */
enum sess_err sess_config_defaults(struct sess_config *cfg, const char *base_dir) SESS_MUST_CHECK;

/* Fills `cfg` with the defaults (relative paths taken from the directory of
 * `path`, symlinks resolved), reads `path` over them, then runs
 * sess_config_check(). `cfg` needs no sess_config_defaults() first and is
 * overwritten, not freed. On SESS_ECONFIG, `errmsg` says "FILE:LINE: what is
 * wrong (what is allowed)"; `cfg` is then freed (all NULL). */
enum sess_err sess_config_load(struct sess_config *cfg, const char *path, char *errmsg,
                               size_t errmsg_len) SESS_MUST_CHECK;

/* Sets one key as if it were a line of the file (used for STORE=... in the
 * environment); a relative path is taken from the directory of cfg->path
 * (the current one when NULL). `origin` names the source in messages. On
 * error the key keeps its previous value. */
enum sess_err sess_config_set(struct sess_config *cfg, const char *origin, const char *key,
                              const char *value, char *errmsg, size_t errmsg_len) SESS_MUST_CHECK;

/* Checks the combination of keys (SameSite=None needs Secure, __Host- rules,
 * a secret_file). Called by sess_config_load(); call it after
 * sess_config_set(). */
enum sess_err sess_config_check(const struct sess_config *cfg, char *errmsg,
                                size_t errmsg_len) SESS_MUST_CHECK;

void sess_config_free(struct sess_config *cfg);

/* ------------------------------------------------------------------------
 * Cookies (cookie.c): RFC 6265 parsing, Set-Cookie building
 * ------------------------------------------------------------------------ */

/* Finds cookie `name` in a Cookie header with cookie 0.7's rules: pairs split
 * on ';', spaces and tabs trimmed, one pair of surrounding '"' stripped, the
 * first of repeated names wins. The value is percent-decoded into `out` (a
 * bad escape keeps the raw text, as cookie.parse does) and NUL-terminated.
 * SESS_ENOTFOUND if absent, SESS_ETOOBIG if the decoded value needs more than
 * `out_cap - 1` bytes, SESS_EBADINPUT if it holds a NUL or control byte. */
enum sess_err sess_cookie_find(struct sess_str header, struct sess_str name, char *out,
                               size_t out_cap, size_t *out_len) SESS_MUST_CHECK;

struct sess_cookie_attrs {
    const char *path;     /* NULL: no Path */
    const char *domain;   /* NULL: host-only */
    const char *priority; /* NULL, "Low", "Medium", "High" */
    enum sess_same_site same_site;
    bool secure;
    bool http_only;
    bool partitioned;
    bool has_expiry;     /* false: a browser-session cookie */
    int64_t expires_at;  /* Unix seconds; Expires and Max-Age derive from it */
};

/* Writes a Set-Cookie header value (without "Set-Cookie: ") into `out`:
 * `name=VALUE; Domain; Path; Expires; Max-Age; HttpOnly; Secure; Partitioned;
 * Priority; SameSite`, VALUE encoded as encodeURIComponent does. Max-Age is
 * the seconds from `now_s` to `expires_at` (0 when past). SESS_EBADINPUT if
 * the name is not an RFC 7230 token or an attribute holds a CTL or ';';
 * SESS_ETOOBIG if `out_cap` is too small. */
enum sess_err sess_cookie_build(char *out, size_t out_cap, size_t *out_len, struct sess_str name,
                                struct sess_str value, const struct sess_cookie_attrs *attrs,
                                int64_t now_s) SESS_MUST_CHECK;

/* Formats `t` (Unix seconds) as an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37
 * GMT", into `out` (at least 30 bytes), with C-locale names. `t` is clamped
 * to 1970..9999. */
void sess_http_date(int64_t t, char out[30]);

/* Formats `t_ms` (Unix milliseconds) as JavaScript's toISOString(),
 * "2026-11-22T18:30:00.123Z", into `out` (at least 25 bytes). `t_ms` is
 * clamped to 1970..9999. */
void sess_iso_date(int64_t t_ms, char out[25]);

/* Percent-decodes `in` into `out` (at least `in.len + 1` bytes) and
 * NUL-terminates it, '+' kept as is unless `plus_is_space` (form bodies).
 * "%00" decodes to a NUL counted in `*out_len`: check it if that matters.
 * SESS_EBADINPUT on a bad escape ('%' without two hex digits). */
enum sess_err sess_percent_decode(struct sess_str in, bool plus_is_space, char *out,
                                  size_t *out_len) SESS_MUST_CHECK;

/* ------------------------------------------------------------------------
 * Signing (sign.c): cookie-signature, byte for byte
 * ------------------------------------------------------------------------ */

struct sess_secrets {
    size_t count;
    struct {
        unsigned char *ptr; /* sodium_malloc'd, wiped on free */
        size_t len;
        void *keyed; /* the HMAC state keyed with it, made once (sign.c) */
    } item[SESS_SECRETS_MAX];
};

/* Reads one secret per line (CR stripped, empty lines skipped; other bytes,
 * spaces included, are the secret) from `path` into `secrets`, which is
 * overwritten. Each must be at least SESS_SECRET_MIN_LEN bytes, and there
 * must be 1..SESS_SECRETS_MAX. SESS_ECONFIG with "PATH:LINE: ..." in `errmsg`
 * otherwise, or when the file cannot be read or is open to users outside
 * its owner and group (mode & 007); `secrets` is then empty. */
enum sess_err sess_secrets_load(struct sess_secrets *secrets, const char *path, char *errmsg,
                                size_t errmsg_len) SESS_MUST_CHECK;

/* Adds one secret (copied into guarded memory) after those already in
 * `secrets` (zero-initialise it first). No minimum length here, so tests can
 * use cookie-signature's examples; SESS_EBADINPUT if empty, SESS_ETOOBIG
 * when SESS_SECRETS_MAX are there, SESS_ENOMEM. For tests and embedders. */
enum sess_err sess_secrets_add(struct sess_secrets *secrets, struct sess_str secret) SESS_MUST_CHECK;

/* Wipes and frees every secret and empties `secrets`; accepts NULL. */
void sess_secrets_free(struct sess_secrets *secrets);

/* Writes a new id: SESS_ID_BYTES from the CSPRNG, base64url, no padding. */
void sess_id_new(char out[SESS_ID_LEN + 1]);

/* True for SESS_ID_MIN_LEN..SESS_ID_MAX_LEN characters of [A-Za-z0-9_-]. */
bool sess_id_is_valid(struct sess_str id);

/* Writes "s:" ID "." SIG (not percent-encoded; sess_cookie_build encodes)
 * into `out`, NUL-terminated, signed with the secret `secrets->item[0]`.
 * `out_cap` needs id.len + SESS_SIG_LEN + 4, else SESS_ETOOBIG; SESS_ECONFIG
 * without secrets. Any id is signed, as cookie-signature does. */
enum sess_err sess_sign(const struct sess_secrets *secrets, struct sess_str id, char *out,
                        size_t out_cap, size_t *out_len) SESS_MUST_CHECK;

/* Verifies a decoded cookie value "s:ID.SIG" against every secret, comparing
 * the 43 signature characters in constant time. On SESS_OK, `*id` borrows
 * from `value`. SESS_EBADINPUT when the value is not signed, the signature
 * does not verify under any secret, or the id fails sess_id_is_valid(). */
enum sess_err sess_unsign(const struct sess_secrets *secrets, struct sess_str value,
                          struct sess_str *id) SESS_MUST_CHECK;

/* Derives a 32-byte key for `purpose` (e.g. "store", "csrf") from secret
 * `index` (< secrets->count): BLAKE2b-256 of `purpose`, keyed with
 * BLAKE2b-256(secret) (personalisation "fcgi-sess secret"), personalisation
 * "fcgi-sess kdf v2". No cookie signature (HMAC-SHA256 under the secret)
 * can equal such a key. */
void sess_derive_key(const struct sess_secrets *secrets, size_t index, const char *purpose,
                     unsigned char key[32]);

/* ------------------------------------------------------------------------
 * Templates (template.c): the pages in html_dir
 * ------------------------------------------------------------------------ */

struct sess_templates;

/* Opens the template set in `dir` (copied). Nothing is read yet: files are
 * read on first use and again whenever they change, so a missing directory
 * shows at the first render. SESS_EBADINPUT for an empty `dir`, SESS_ETOOBIG
 * for one too long to hold a page's path, SESS_ENOMEM. */
enum sess_err sess_templates_open(struct sess_templates **tpl, const char *dir) SESS_MUST_CHECK;
void sess_templates_close(struct sess_templates *tpl);

/* Renders `dir/NAME.html` (NAME: 1..64 of [a-z0-9_-], else SESS_EBADINPUT)
 * with `vars` (borrowed; may be NULL) and appends the result to the growing
 * buffer `*out` of `*out_len` bytes in `*out_cap` (realloc'd, kept
 * NUL-terminated; the caller frees it; unchanged on error).
 * Syntax, a Mustache subset: {{a.b}} HTML-escaped value (strings, numbers,
 * true/false; absent, null, objects and arrays print nothing), {{{a}}} or
 * {{&a}} raw, {{#a}}..{{/a}} when `a` is truthy (non-empty string or
 * container, non-zero number, true), once per element for an array, with
 * names inside resolved against `a` first and {{.}} naming it,
 * {{^a}}..{{/a}} when it is not, {{>name}} includes name.html (8 deep at
 * most), {{! comment }}. A page whose output does not start with
 * "<!doctype" (case-insensitive, after whitespace) is then rendered inside
 * "layout.html" as {{{content}}}. Files are re-read when they change:
 * inotify reports changes from the second render on (one non-blocking read
 * per render); where it cannot be had, each file is stat()ed per render.
 * Errors, with "DIR/FILE.html:LINE: what" in `errmsg`:
 * SESS_ENOTFOUND for a missing page, partial or layout, SESS_EBADINPUT for a
 * syntax error, SESS_ETOOBIG past 8 MiB of output or 2^20 tags visited
 * (loops), SESS_EIO, SESS_ENOMEM.
 * Not thread-safe: one set per thread. */
enum sess_err sess_templates_render(struct sess_templates *tpl, const char *name,
                                    const json_t *vars, char **out, size_t *out_len,
                                    size_t *out_cap, char *errmsg,
                                    size_t errmsg_len) SESS_MUST_CHECK;

/* Appends `in` HTML-escaped (& < > " ' ` as &amp; &lt; &gt; &quot; &#39;
 * &#96;; other bytes, UTF-8 included, as they are) to a growing buffer as
 * sess_templates_render does. SESS_ETOOBIG, SESS_ENOMEM. */
enum sess_err sess_html_escape(struct sess_str in, char **out, size_t *out_len,
                               size_t *out_cap) SESS_MUST_CHECK;

/* ------------------------------------------------------------------------
 * Applications and requests (app.c, request.c, session.c)
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

/* Opens an app as sess_run does, for tools and tests. `config_path` NULL
 * means $SESSION_CONFIG. On failure `errmsg` says why. */
enum sess_err sess_app_open(struct sess_app **app, const char *config_path, char *errmsg,
                            size_t errmsg_len) SESS_MUST_CHECK;
void sess_app_close(struct sess_app *app);
const struct sess_config *sess_app_config(const struct sess_app *app);

/* Clock in Unix milliseconds. Tests replace it to move time. */
typedef int64_t (*sess_clock_fn)(void);
void sess_app_set_clock(struct sess_app *app, sess_clock_fn clock);
int64_t sess_now_ms(const struct sess_app *app);

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

/* ------------------------------------------------------------------------
 * Accounts and administration (users.c, admin.c): what sessctl does
 * ------------------------------------------------------------------------ */

/* Creates or replaces an account: argon2id hash (crypto_pwhash_str,
 * interactive limits) of `password`. Names are 1..SESS_USERNAME_MAX bytes of
 * [A-Za-z0-9._@-]; roles 1..32 of [a-z0-9_-]. SESS_EBADINPUT otherwise,
 * SESS_EEXISTS if `must_be_new` and the name is taken. */
enum sess_err sess_user_add(struct sess_app *app, const char *name, const char *role,
                            const char *password, size_t password_len,
                            bool must_be_new) SESS_MUST_CHECK;

/* Sets a new password, keeping the role. SESS_ENOTFOUND if no such user. */
enum sess_err sess_user_passwd(struct sess_app *app, const char *name, const char *password,
                               size_t password_len) SESS_MUST_CHECK;

/* Deletes the account and ends its sessions. */
enum sess_err sess_user_del(struct sess_app *app, const char *name) SESS_MUST_CHECK;

/* Checks a password with the same argon2id work whether or not the user
 * exists. SESS_OK with the role copied into `role` (at least 33 bytes);
 * SESS_EFORBIDDEN for an unknown user or a wrong password. */
enum sess_err sess_user_verify(struct sess_app *app, const char *name, size_t name_len,
                               const char *password, size_t password_len,
                               char role[33]) SESS_MUST_CHECK;

struct sess_user_info {
    const char *name; /* borrowed for the visit */
    const char *role;
};
typedef bool (*sess_user_fn)(void *arg, const struct sess_user_info *user);
enum sess_err sess_users_each(struct sess_app *app, sess_user_fn visit, void *arg) SESS_MUST_CHECK;

struct sess_session_info {
    const char *id;    /* borrowed for the visit */
    const char *owner; /* "" when anonymous */
    int64_t created_ms;
    int64_t expires_ms; /* the earlier of idle expiry and absolute deadline */
    bool is_live;
    const char *data;   /* the session JSON */
};
typedef bool (*sess_session_fn)(void *arg, const struct sess_session_info *s);

/* Visits every stored session, or those of `owner` when not NULL. */
enum sess_err sess_sessions_each(struct sess_app *app, const char *owner, sess_session_fn visit,
                                 void *arg) SESS_MUST_CHECK;

/* With `is_on`, sess_sessions_each with an owner and sess_revoke_user
 * walk every stored session instead of the store's index of owners:
 * slower, and in Redis the only way to find the sessions an Express app
 * sharing the store logged in and this library never wrote (sessctl
 * --scan). */
void sess_sessions_scan_all(struct sess_app *app, bool is_on);

/* Ends one session by id, or every session of a user (*count says how
 * many). */
enum sess_err sess_revoke(struct sess_app *app, const char *id) SESS_MUST_CHECK;
enum sess_err sess_revoke_user(struct sess_app *app, const char *owner,
                               size_t *count) SESS_MUST_CHECK;

/* Purges every expired session and stale throttle counter. */
enum sess_err sess_gc(struct sess_app *app, size_t *purged) SESS_MUST_CHECK;

struct sess_stats {
    uint64_t sessions, expired, users, owners;
    int64_t oldest_created_ms, newest_created_ms;
    uint64_t map_size_bytes, map_used_bytes, readers_used, readers_max;
    const char *store_kind; /* "lmdb", "redis" */
};
enum sess_err sess_stats_get(struct sess_app *app, struct sess_stats *out) SESS_MUST_CHECK;

/* The specific message of the last failure of an app call. */
const char *sess_app_errmsg(const struct sess_app *app);
/* What the last sess_revoke_user or sess_user_del skipped while succeeding
 * (a corrupt entry in the store's index), or NULL. Valid until the next
 * such call. */
const char *sess_app_warning(const struct sess_app *app);

/* --- the response: each answers once --- */

/* Adds a response header. SESS_EBADINPUT if name or value holds CR, LF or
 * another control byte. */
enum sess_err sess_header(struct sess_request *req, const char *name, const char *value);

/* Saves the session by express-session's rules, then sends `body` (owned:
 * freed here) as JSON. A failed save sends 503 instead, with no cookie. */
void sess_send_json(struct sess_request *req, int status, json_t *body);

/* Renders html_dir/PAGE.html with `vars` (owned; may be NULL) plus
 * {{csrf}}, {{user}} (when logged in), {{theme}} and {{lang}} from the
 * session's prefs, and a true {{theme_VALUE}} / {{lang_VALUE}} for the
 * current choice; sends it as HTML. */
void sess_send_page(struct sess_request *req, int status, const char *page, json_t *vars);

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

#endif
