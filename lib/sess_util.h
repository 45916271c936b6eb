/* fcgi-session's building blocks, for programs that need one piece of it
 * without a request: the configuration file, RFC 6265 cookies and
 * Set-Cookie, express-session's cookie signatures, and the page templates.
 * Errors and strings are sess.h's. */
#ifndef SESS_UTIL_H
#define SESS_UTIL_H

#include <sess.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#endif

/* ------------------------------------------------------------------------
 * Configuration (config.c): the `key = value` file of README, "Configuration"
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

    /* Login security (codec/addr.c, auth/throttle.c) */
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

/* Fills `cfg` with the defaults README lists ("Configuration") (secret_file NULL). Paths are
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
 * Templates (template/): the pages in html_dir
 * ------------------------------------------------------------------------ */

/* What a program's html_dir must hold, besides the pages its own
 * sess_send_page calls name:
 *   - error.html: sess_fail answers browsers with it (JSON clients get
 *     {"msg": MSG}), and so does every refusal the library makes itself:
 *     404 of sess_run_routes, 405 of sess_allow, 400, 403, 413 and 415 of
 *     sess_body, 503 when the store is unavailable, 500 when a route
 *     answered nothing. Its vars: status (the HTTP status), msg and
 *     title (what went wrong), user when logged in, and those of
 *     sess_set_page_vars. Without it, each of those answers becomes a 500
 *     "Page template error" (logged).
 *   - layout.html, unless every page (error.html included) starts with
 *     "<!doctype": the frame of the others, with the page as {{{content}}}
 *     and the page's vars (flash, user, title...).
 * The demo's html/ has both; a program with its own html_dir copies or
 * writes them. */

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

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
