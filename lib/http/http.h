/* A request as the library holds it (request.c, session.c, csrf.c,
 * response.c, body.c): the structure, its lifetime, the session's life in
 * it, and the CSRF check. Internal to lib/. */
#ifndef SESS_HTTP_H
#define SESS_HTTP_H

#include <stdio.h>

#include <fcgiapp.h>

#include "app.h"

/* Bytes of a client address (an IPv6 text is at most 45) and of a
 * User-Agent a session records (README: the demo's "Your devices"). */
#define SESS_CLIENT_ADDR_MAX 63
#define SESS_USER_AGENT_MAX  256
/* How long a form's CSRF token stays valid. */
#define SESS_CSRF_TTL_MS ((int64_t)2 * 3600 * 1000)
/* Room for the pre-session cookie's name, the session cookie's + ".csrf". */
#define SESS_PRE_CSRF_NAME_MAX 256

/* One request, from accept to the end of its response. Lives in the
 * process's request loop (run.c) and is reset between requests; every
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
    bool has_own_csp; /* the route set Content-Security-Policy: no default one */
    char client_addr[SESS_ADDR_TEXT_MAX]; /* sess_client_addr, once worked out */
    bool has_client_addr;
    char path[SESS_PATH_MAX + 1]; /* sess_path, worked out by sess__request_start */

    /* response */
    int status;
    struct sess_buf headers;
    struct sess_buf out;
    char cookie_buf[SESS_COOKIE_MAX_LEN];
};

/* Runs one request through `route`: the session is loaded first and the
 * answer (saved session, headers, body) is written to fcgx or cgi_out. The
 * response stays in req->headers/req->out until sess__request_reset(), so
 * tests can read it. */
void sess__request_handle(struct sess_request *req, sess_route_fn route);
/* The same through a route table (sess_run_routes): the route whose path
 * is sess_path(req), picked once for every run, or a 404. */
void sess__request_route(struct sess_request *req, const struct sess_route *routes, size_t count);
/* The request's time, scheme and path, once for every run of its route. */
void sess__request_start(struct sess_request *req, int64_t now_ms);
void sess__request_reset(struct sess_request *req);

/* Session life of a request (session.c). */
void sess__session_begin(struct sess_request *req);
/* Applies express-session's end-of-request rules: save or touch, and the
 * Set-Cookie header. SESS_OK, or a store error (answer 503). */
enum sess_err sess__session_commit(struct sess_request *req) SESS_MUST_CHECK;
void sess__session_end(struct sess_request *req);

/* Checks a form's CSRF token against the session the request loaded, or
 * (also) the browser's pre-session cookie. */
enum sess__csrf_check {
    SESS_CSRF_OK,
    SESS_CSRF_BAD,     /* not a token we make */
    SESS_CSRF_EXPIRED, /* ours once: too old, or its session has ended */
};
enum sess__csrf_check sess__csrf_check(struct sess_request *req, const char *token, size_t len);

#endif
