/* sess_run and sess_run_routes: the accept loop (or one CGI request), a
 * request through its route table and its re-runs, signals and draining.
 * Everything a request does is below it: parameters, path and headers in
 * http/request.c, the session in http/session.c, the answer in
 * http/response.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "http.h"
#include "log.h"

extern char **environ;

/* Unread input is drained before the early close; past this much we let
 * libfcgi's lingering close deal with it instead. */
#define DRAIN_MAX_BYTES ((size_t)1 << 20)

/* A plain CGI run drains the declared body up to this much: above what the
 * shipped server configurations let through (4 MiB). */
#define CGI_DRAIN_MAX_BYTES ((size_t)8 << 20)

/* Forgets what a run of the route answered; its input stays. */
static void
forget_answer(struct sess_request *req)
{
    req->is_answered = false;
    req->is_conflict = false;
    req->is_pre_csrf_sent = false; /* its Set-Cookie went with the headers */
    req->has_own_csp = false;
    req->status = 0;
    req->headers.len = 0;
    req->out.len = 0;
}

/* The runs of one request through `route`, its time, scheme and path set
 * (sess__request_start). */
static void
run_route(struct sess_request *req, sess_route_fn route)
{
    int run;

    for (run = 1;; run++) {
        sess__session_begin(req);
        if (req->store_failed)
            sess_fail(req, 503, "Session store unavailable; try again shortly");
        else
            route(req);
        if (!req->is_conflict)
            break;
        /* Another request changed what this one read: nothing was written
         * or sent, so run it again on the session as now stored. */
        sess__session_end(req);
        forget_answer(req);
        if (run == SESS_RERUN_MAX) {
            sess__log_error(req->app,
                            "a request conflicted with others of its session %d times in a "
                            "row; answered 503",
                            run);
            if (sess_header(req, "Retry-After", "1") == SESS_OK)
                sess_fail(req, 503, "The session is busy; try again shortly");
            break;
        }
        /* At once: the record it lost to is committed by now, and in a
         * group commit batch the oldest request goes first. */
    }
    if (!req->is_answered)
        sess_fail(req, 500, "The route sent no answer");
    sess__session_end(req);
}

void
sess__request_handle(struct sess_request *req, sess_route_fn route)
{
    sess__request_start(req, sess_now_ms(req->app));
    run_route(req, route);
}

/* A route table's answer to a path it does not hold. */
static void
not_found(struct sess_request *req)
{
    sess_fail(req, 404, "Not found");
}

void
sess__request_route(struct sess_request *req, const struct sess_route *routes, size_t count)
{
    const char *path;
    sess_route_fn route = not_found;
    size_t i;

    sess__request_start(req, sess_now_ms(req->app));
    /* Once per request: every run of it is the same route's. */
    path = sess_path(req);
    for (i = 0; i < count; i++)
        if (routes[i].route && strcmp(routes[i].path, path) == 0) {
            route = routes[i].route;
            break;
        }
    run_route(req, route);
}

/* libfcgi's FCGX_Finish_r shuts its side down and waits for the web server
 * to close first; detaching first closes at once (3.5x on a bare hello,
 * README, "Performance"). We must have all the server's input by then, or
 * the close can reset the connection: drain first, and keep the lingering
 * close when the input is too large. The output needs no flush of its own:
 * FCGX_Finish_r writes what is buffered, the end of the stream and the end
 * of the request in one write before it closes, where a flush first made
 * it two (and woke the server twice). */
static void
finish(FCGX_Request *fcgx)
{
    char sink[4096];
    size_t drained = 0;
    int n = 0;

    while (drained < DRAIN_MAX_BYTES && (n = FCGX_GetStr(sink, sizeof sink, fcgx->in)) > 0)
        drained += (size_t)n;
    if (n == 0)
        FCGX_Detach(fcgx);
    FCGX_Finish_r(fcgx);
}

/* A CGI program that exits with its body unread can lose its answer:
 * mod_cgid gives the program one socket as stdin and stdout, and closing it
 * with unread data resets the connection before Apache has read the
 * response (an empty reply instead of a 405, 403 or 413). So read what the
 * server declared and the route left, within a bound. */
static void
cgi_drain(const struct sess_request *req)
{
    const char *s = sess_param(req, "CONTENT_LENGTH");
    char sink[4096];
    size_t left = 0;

    if (req->is_input_drained || !s)
        return;
    for (; *s >= '0' && *s <= '9'; s++) {
        left = left * 10 + (size_t)(*s - '0');
        if (left > CGI_DRAIN_MAX_BYTES)
            return;
    }
    while (left > 0) {
        ssize_t n = read(STDIN_FILENO, sink, left < sizeof sink ? left : sizeof sink);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        left -= (size_t)n;
    }
}

/* SIGTERM (web server or spawn-fcgi stopping us) and SIGINT end the accept
 * loop instead of the process, so the store is closed and memory freed as
 * in any orderly exit (and LeakSanitizer gets to look). */
static void
on_stop_signal(int sig)
{
    (void)sig;
    FCGX_ShutdownPending();
}

static void
catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: accept() must return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Why the executable cannot start (log.c says where it goes). The
 * configuration is the one sess_app_open reads when given none. */
static void
report_startup_error(struct sess_app *app, const char *route_name, const char *msg)
{
    sess__log_startup_error(app, route_name, getenv("SESSION_CONFIG"), msg);
}

/* What a process serves: one route, or a table of them. */
struct serving {
    sess_route_fn route;
    const struct sess_route *routes;
    size_t count;
};

static void
serve_one(struct sess_request *req, const struct serving *what)
{
    if (what->route)
        sess__request_handle(req, what->route);
    else
        sess__request_route(req, what->routes, what->count);
}

/* A route table's mistakes, found before anything is opened: every path
 * one that sess_path can give ('/' first, no query), none twice, every
 * route set. */
static bool
routes_are_valid(const struct sess_route *routes, size_t count, char *errmsg, size_t errmsg_len)
{
    size_t i, j;

    if (!routes || count == 0) {
        snprintf(errmsg, errmsg_len, "route table: no routes");
        return false;
    }
    for (i = 0; i < count; i++) {
        const char *path = routes[i].path;
        if (!path || path[0] != '/') {
            snprintf(errmsg, errmsg_len, "route table: entry %zu: the path must start with '/'", i);
            return false;
        }
        /* sess_path never holds these, nor is it longer. */
        if (strcspn(path, "?#") != strlen(path) || strlen(path) > SESS_PATH_MAX) {
            snprintf(errmsg, errmsg_len,
                     "route table: entry %zu (%.200s) can never match: a path holds no '?' or '#' "
                     "and is at most %d bytes",
                     i, path, SESS_PATH_MAX);
            return false;
        }
        if (!routes[i].route) {
            snprintf(errmsg, errmsg_len, "route table: entry %zu (%.200s): no route", i, path);
            return false;
        }
        for (j = 0; j < i; j++)
            if (strcmp(routes[j].path, path) == 0) {
                snprintf(errmsg, errmsg_len,
                         "route table: %.200s is there twice (entries %zu and %zu)", path, j, i);
                return false;
            }
    }
    return true;
}

static int
run_process(const char *route_name, const struct serving *what)
{
    char errmsg[SESS_ERRMSG_MAX] = "";
    struct sess_app *app = NULL;
    struct sess_request req;
    FCGX_Request fcgx;
    enum sess_err err;
    int status = 0;

    signal(SIGPIPE, SIG_IGN);
    err = sess_app_open(&app, NULL, errmsg, sizeof errmsg);
    if (err != SESS_OK) {
        report_startup_error(NULL, route_name, errmsg);
        return err == SESS_ECONFIG ? SESS_EXIT_CONFIG : SESS_EXIT_SOFTWARE;
    }
    if (sess__log_open(app, route_name, errmsg, sizeof errmsg) != SESS_OK) {
        report_startup_error(app, route_name, errmsg);
        sess_app_close(app);
        return SESS_EXIT_CONFIG;
    }
    memset(&req, 0, sizeof req);
    req.app = app;

    if (FCGX_IsCGI()) {
        req.envp = environ;
        req.cgi_out = stdout;
        serve_one(&req, what);
        fflush(stdout);
        cgi_drain(&req);
        goto out;
    }
    catch_stop_signals();
    if (FCGX_Init() != 0 || FCGX_InitRequest(&fcgx, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        report_startup_error(app, route_name, "libfcgi failed to initialise");
        status = SESS_EXIT_SOFTWARE;
        goto out;
    }
    /* FCGX_Init installs libfcgi's own empty SIGPIPE handler. The closing
     * record of a detached request finds the server gone, typically: with
     * a handler, that is a signal delivered per request; ignored, EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    req.fcgx = &fcgx;
    while (FCGX_Accept_r(&fcgx) >= 0) {
        req.envp = fcgx.envp;
        serve_one(&req, what);
        sess__request_reset(&req);
        finish(&fcgx);
        /* After the response: a bounded gc batch when one is due. */
        app->store->ops->gc_if_due(app->store, sess_now_ms(app));
    }
out:
    sess__request_reset(&req);
    sess__buf_free(&req.headers);
    sess__buf_free(&req.out);
    sess_app_close(app);
    return status;
}

int
sess_run(const char *route_name, sess_route_fn route)
{
    const struct serving what = {.route = route};

    if (!route) {
        report_startup_error(NULL, route_name, "no route given to sess_run");
        return SESS_EXIT_SOFTWARE;
    }
    return run_process(route_name, &what);
}

int
sess_run_routes(const char *name, const struct sess_route *routes, size_t count)
{
    const struct serving what = {.routes = routes, .count = count};
    char errmsg[SESS_ERRMSG_MAX];

    if (!routes_are_valid(routes, count, errmsg, sizeof errmsg)) {
        report_startup_error(NULL, name, errmsg);
        return SESS_EXIT_SOFTWARE;
    }
    return run_process(name, &what);
}
