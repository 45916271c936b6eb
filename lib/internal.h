/* What the library's own files share beyond sess.h: the app and request
 * structures and a few helpers. Internal to lib/. */
#ifndef SESS_INTERNAL_H
#define SESS_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include <fcgiapp.h>
#include <sodium.h>

#include "sess.h"
#include "store.h"

/* Bytes of a client address (an IPv6 text is at most 45) and of a
 * User-Agent a session records (CONTRACT.md, "Your devices"). */
#define SESS_CLIENT_ADDR_MAX 63
#define SESS_USER_AGENT_MAX  256

/* An address as text: INET6_ADDRSTRLEN. */
#define SESS_ADDR_TEXT_MAX 46
/* How long a form's CSRF token stays valid. */
#define SESS_CSRF_TTL_MS ((int64_t)2 * 3600 * 1000)
/* Room for the pre-session cookie's name, the session cookie's + ".csrf". */
#define SESS_PRE_CSRF_NAME_MAX 256

/* Cookie values this process verified lately, so that a client's next
 * request skips the HMAC (~17k instructions, a fifth of a logged-in page).
 * Sets chosen by a hash of the signature's first characters, four values
 * each, so that a thousand clients taking turns all stay in (direct-mapped
 * on two characters, 256 clients in turn missed two times in three); a
 * value that fits is "s:" + id + "." + signature, 89 bytes for our
 * 43-character ids. */
#define SESS_VERIFIED_SETS 256
#define SESS_VERIFIED_WAYS 4
#define SESS_VERIFIED_MAX  96

struct sess_verified {
    unsigned char len[SESS_VERIFIED_SETS][SESS_VERIFIED_WAYS]; /* 0: empty */
    unsigned char victim[SESS_VERIFIED_SETS]; /* the way a miss replaces next */
    char value[SESS_VERIFIED_SETS][SESS_VERIFIED_WAYS][SESS_VERIFIED_MAX];
};

/* sess_unsign() with `cache` in front: the same answer for every value. A
 * hit is a constant-time compare with a value that verified before, so
 * neither the answer nor its timing tells a forger more than the HMAC. */
enum sess_err sess_unsign_cached(const struct sess_secrets *secrets, struct sess_verified *cache,
                                 struct sess_str value, struct sess_str *id) SESS_MUST_CHECK;

struct sess_app {
    struct sess_config cfg;
    struct sess_secrets secrets;
    struct sess_store *store;
    struct sess_templates *templates;
    /* HMACs keyed for CSRF tokens, once per secret: the first makes tokens,
     * every one verifies them (rotation leaves open forms working), and so
     * do the keys 0.1 derived, for the forms it served before an upgrade. */
    crypto_auth_hmacsha256_state csrf_keyed[SESS_SECRETS_MAX];
    crypto_auth_hmacsha256_state csrf_legacy[SESS_SECRETS_MAX];
    struct sess_verified verified;           /* cookies verified lately */
    sess_clock_fn clock;
    struct sess_buf scratch; /* store reads land here */
    char errmsg[SESS_ERRMSG_MAX];
    char warning[SESS_ERRMSG_MAX]; /* sess_app_warning */
    /* users.c: an argon2id hash verified against for unknown users, so they
     * cost the same work as known ones; made on first use ("" until then).
     * 128 = crypto_pwhash_STRBYTES. */
    char dummy_hash[128];
    /* log.c: the route named in every line (NULL: the program's name), and
     * the destination once open (-1: not a file, or not yet). */
    const char *route_name;
    int log_fd;
    bool is_syslog_open;
};

/* One request, from accept to the end of its response. Lives in the
 * process's request loop (request.c) and is reset between requests; every
 * buffer keeps its capacity, so a warm process allocates only what the
 * request's own data needs (JSON values). */
struct sess_request {
    struct sess_app *app;
    FCGX_Request *fcgx; /* NULL when run as plain CGI */
    FILE *cgi_out;      /* where plain CGI (and tests) write the response */
    char **envp;
    int64_t now_ms;
    bool is_answered;
    bool is_secure;

    /* input */
    json_t *body;
    json_t *query;
    bool is_input_drained;

    /* session (session.c) */
    char cookie_id[SESS_ID_MAX_LEN + 1]; /* the id the cookie verified to, or "" */
    char id[SESS_ID_MAX_LEN + 1];        /* the current id, or "" */
    bool has_cookie;                     /* the client sent a cookie of our name */
    bool is_loaded;                      /* a live stored record backs `id` */
    bool is_new;                         /* `id` is not stored yet (generated or regenerated) */
    bool is_cookie_due;                  /* regenerated, or saved early while new */
    bool is_destroyed;
    bool store_failed;  /* the store could not be read: answer 503 */
    json_t *data;       /* the session's top-level keys except "cookie" */
    json_t *dirty;      /* keys changed since load or save: key -> true */
    /* What the route read of the stored session before changing it: key ->
     * the value as loaded (a copy), and key -> true for keys it found
     * absent. A write validates them against the record it replaces
     * (serializable requests), and in-place changes are found by comparing
     * with them. NULL until the first read. */
    json_t *read;
    json_t *read_absent;
    uint64_t read_tag; /* the store's tag of the record loaded (0 after a write) */
    bool is_untracked; /* a read could not be recorded: refuse to write */
    bool is_conflict;  /* a key it read changed under it: run the route again */
    int64_t expires_ms; /* stored idle expiry of a loaded session */
    int64_t deadline_ms;
    int64_t created_ms;
    /* The session's own lifetime ("remember me") and name, as its record
     * keeps them (store.h): idle 0 is max_age, lifetime 0 absolute_timeout
     * and -1 none. */
    int64_t idle_ms;
    int64_t lifetime_ms;
    bool is_remembered;
    bool is_lifetime_changed; /* sess_set_max_age: write it, and send the cookie */
    bool has_handle;
    unsigned char handle[SESS_HANDLE_BYTES];
    /* sess_renew: the stored record the new id replaces, destroyed once
     * the new one is written; "" when none. */
    char renewed_from[SESS_ID_MAX_LEN + 1];
    char seen_addr[SESS_CLIENT_ADDR_MAX + 1]; /* the client address, as recorded on a write */
    char user_agent[SESS_USER_AGENT_MAX + 1];
    char csrf[64];
    /* csrf.c: the pre-session cookie, "TIME.RANDOM" ("" when none), what
     * tokens are bound to ("pre|" and it), and whether it was read from the
     * request, made by this request, and sent in this run's headers. */
    char pre_csrf[16 + SESS_ID_LEN + 1];
    char pre_bind[4 + 16 + SESS_ID_LEN + 1];
    int64_t pre_csrf_made_ms;
    bool is_pre_csrf_read;
    bool is_pre_csrf_new;
    bool is_pre_csrf_sent;
    char client_addr[SESS_ADDR_TEXT_MAX]; /* sess_client_addr, once worked out */
    bool has_client_addr;

    /* response */
    int status;
    struct sess_buf headers;
    struct sess_buf out;
    char cookie_buf[SESS_COOKIE_MAX_LEN];
};

/* Runs one request through `route`: the session is loaded first and the
 * answer (saved session, headers, body) is written to fcgx or cgi_out. The
 * response stays in req->headers/req->out until sess_request_reset(), so
 * tests can read it. */
void sess_request_handle(struct sess_request *req, sess_route_fn route);
void sess_request_reset(struct sess_request *req);

/* sess_templates_render (template.c) with one top-level name whose string
 * value costs work (the CSRF token, an HMAC): asked for only when a render
 * reaches a tag that names it, and then once. It shadows a var of that
 * name. */
struct sess_tpl_lazy {
    const char *name;
    size_t name_len;
    const char *(*get)(void *arg);
    void *arg;
};

enum sess_err sess_templates_render_lazy(struct sess_templates *tpl, const char *name,
                                         const json_t *vars, const struct sess_tpl_lazy *lazy,
                                         char **out, size_t *out_len, size_t *out_cap, char *errmsg,
                                         size_t errmsg_len);

/* Checks a form's CSRF token against the session the request loaded, or
 * (also) the browser's pre-session cookie. */
bool sess_csrf_is_valid(struct sess_request *req, const char *token, size_t len);

/* Whether the account `name` exists (users.c). False with *err set when
 * the store failed; with SESS_OK when it is absent. */
bool sess_user_exists(struct sess_app *app, struct sess_str name, enum sess_err *err);

/* Addresses (addr.c). Parses an IPv4 or IPv6 address into 16 bytes, IPv4
 * as IPv4-mapped IPv6. */
bool sess_addr_parse(struct sess_str s, unsigned char out[16]);
/* The canonical text of an address (IPv4-mapped ones as IPv4). */
void sess_addr_format(const unsigned char a[16], char out[SESS_ADDR_TEXT_MAX]);
/* Parses trusted_proxies: comma-separated addresses or CIDRs, spaces
 * around each allowed; "" is an empty list. SESS_EBADINPUT for an entry
 * that is neither (an empty one too), SESS_ETOOBIG past `cap`; `*bad`
 * then borrows the entry from `text`. */
enum sess_err sess_net_list_parse(const char *text, struct sess_net *nets, size_t cap,
                                  size_t *count, struct sess_str *bad) SESS_MUST_CHECK;
bool sess_net_list_has(const struct sess_net *nets, size_t count, const unsigned char a[16]);
/* One throttled password check (login.c), as CONTRACT.md asks of logins
 * and password changes: a place is taken in the counts of the client
 * address and of the username before argon2id runs, so parallel attempts
 * cannot get past the limit (SESS_ETHROTTLED, *retry_after_s set). On
 * SESS_OK (`role` filled) the caller does what the password allows, then
 * settles the counts with sess_attempt_end and its outcome: success clears
 * the username's count, SESS_EFORBIDDEN keeps the places as failures, any
 * other gives them back. A refused check is settled already. */
struct sess_attempt {
    struct sess_str addr_key, user_key;
    bool has_addr, has_user; /* places taken, to give back */
    char user_buf[SESS_USERNAME_MAX + 8];
    char addr_buf[SESS_ADDR_TEXT_MAX + 8];
};

enum sess_err sess_attempt_check(struct sess_request *req, struct sess_attempt *a,
                                 const char *username, size_t username_len, const char *password,
                                 size_t password_len, char role[33],
                                 int64_t *retry_after_s) SESS_MUST_CHECK;
void sess_attempt_end(struct sess_request *req, struct sess_attempt *a, enum sess_err outcome);

/* sess_client_addr's choice, from the parameters alone. */
void sess_client_addr_pick(const char *remote, const char *forwarded, bool trust_proxy,
                           const struct sess_net *trusted, size_t trusted_count,
                           char out[SESS_ADDR_TEXT_MAX]);

/* Session life of a request (session.c). */
void sess_session_begin(struct sess_request *req);
/* A top-level value for the library's own use after the answer is decided
 * (page variables): not recorded as read by the route. */
json_t *sess_session_peek(const struct sess_request *req, const char *key);
/* Applies express-session's end-of-request rules: save or touch, and the
 * Set-Cookie header. SESS_OK, or a store error (answer 503). */
enum sess_err sess_session_commit(struct sess_request *req) SESS_MUST_CHECK;
void sess_session_end(struct sess_request *req);

/* At a login of `username`: ends that user's least recently used sessions
 * beyond max_sessions_per_user, counting the login's own (devices.c). */
enum sess_err sess_user_sessions_trim(struct sess_request *req, const char *username,
                                      size_t username_len) SESS_MUST_CHECK;

/* Formats the app's specific error message; returns `err` for chaining. */
enum sess_err sess_app_fail(struct sess_app *app, enum sess_err err, const char *fmt, ...)
    SESS_PRINTF(3, 4);

/* What sess_cookie_build() accepts (cookie.c): config.c refuses at load time
 * what would otherwise fail on every response. Name: an RFC 7230 token. Path:
 * printable ASCII without ';'. Domain: cookie 0.7.2's rule, RFC 1123 labels
 * with an optional leading '.'. */
bool sess_cookie_name_is_valid(struct sess_str name);
/* Whether cookie `name` starts with `prefix` ("__Host-", "__Secure-") as
 * browsers now match it: without regard to case (RFC 6265bis), so that
 * the configuration check and the Set-Cookie agree with them. */
bool sess_cookie_has_prefix(const char *name, const char *prefix);
bool sess_cookie_path_is_valid(const char *path);
bool sess_cookie_domain_is_valid(const char *domain);

/* snprintf that never overflows and returns nothing to check. */
void sess_fmt(char *out, size_t out_len, const char *fmt, ...) SESS_PRINTF(3, 4);

/* Milliseconds of the real clock. */
int64_t sess_clock_real_ms(void);

#endif
