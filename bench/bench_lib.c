/* `make bench-lib`: what the library costs per call, in nanoseconds, on
 * this machine: cookie parse + unsign, session load (LMDB read + unseal +
 * JSON parse), save (merge in one write transaction), and whole requests
 * (GET / anonymous, GET /profile logged in, GET /views) as plain CGI output
 * to /dev/null. Not a test: it prints figures and checks nothing but that
 * the calls succeed. `bench_lib N ROUTE` runs N whole requests of one route
 * (index, profile or views) and nothing else, for callgrind
 * (--toggle-collect=one_request). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define WARMUP 1000

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
report(const char *what, double seconds, long n)
{
    printf("%-44s %10.0f ns/call  (%ld calls)\n", what, seconds / (double)n * 1e9, n);
}

static int
die(const char *what, const char *why)
{
    fprintf(stderr, "bench_lib: %s: %s\n", what, why);
    return 1;
}

/* The routes as cgi-bin/ has them. */
static void
route_index(struct sess_request *req)
{
    if (!sess_allow(req, "GET, HEAD"))
        return;
    sess_send_page(req, 200, "index", json_pack("{s:s}", "title", "Welcome"));
}

static void
route_views(struct sess_request *req)
{
    json_int_t n;

    if (!sess_allow(req, "GET, HEAD"))
        return;
    n = json_integer_value(sess_get(req, "views")) + 1;
    if (sess_set(req, "views", json_integer(n)) != SESS_OK)
        return;
    sess_send_json(req, 200, json_pack("{s:I}", "views", n));
}

static void
route_profile(struct sess_request *req)
{
    if (!sess_allow(req, "GET, HEAD"))
        return;
    sess_send_page(req, 200, "profile", json_pack("{s:s}", "title", "Profile"));
}

/* One whole request: session load, route, save, response to /dev/null.
 * `req` lives across requests as in sess_run's loop, buffers and all.
 * Never inlined, so callgrind can collect inside it alone. */
static __attribute__((noinline)) void
one_request(struct sess_request *req, char **envp, sess_route_fn route)
{
    req->envp = envp;
    sess__request_handle(req, route);
    sess__request_reset(req);
}

/* N whole requests of `route` after WARMUP unmeasured ones. */
static void
whole_requests(struct sess_app *app, const char *what, char **envp, sess_route_fn route, long n,
               FILE *sink)
{
    struct sess_request req;
    double t0 = now_s();

    memset(&req, 0, sizeof req);
    req.app = app;
    req.cgi_out = sink;
    for (long i = 0; i < n + WARMUP; i++) {
        if (i == WARMUP)
            t0 = now_s();
        one_request(&req, envp, route);
    }
    report(what, now_s() - t0, n);
    sess__buf_free(&req.headers);
    sess__buf_free(&req.out);
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    const char *only = argc > 2 ? argv[2] : NULL;
    char dir[] = "/tmp/fcgi-session-bench.XXXXXX", path[256], cwd[200], errmsg[SESS_ERRMSG_MAX];
    char id[SESS_ID_LEN + 1], value[256], cookie_header[400], env_cookie[420];
    struct sess_app *app = NULL;
    struct sess_store *st;
    struct sess_record rec;
    struct sess_buf buf = {0};
    struct sess_str got, data = SESS_STR_LIT("{\"cookie\":{\"originalMaxAge\":1800000},"
                                             "\"authenticated\":true,\"user\":{\"username\":"
                                             "\"alice\",\"role\":\"admin\"},\"views\":1}");
    size_t len;
    double t0;
    FILE *fp, *sink;
    int64_t now;

    if (!mkdtemp(dir) || !getcwd(cwd, sizeof cwd))
        return die("setup", "mkdtemp/getcwd failed");
    snprintf(path, sizeof path, "%s/secret", dir);
    fp = fopen(path, "w");
    if (!fp)
        return die(path, "cannot write");
    fputs("a benchmark secret of more than thirty-two bytes\n", fp);
    fclose(fp);
    chmod(path, 0600);
    snprintf(path, sizeof path, "%s/bench.conf", dir);
    fp = fopen(path, "w");
    if (!fp)
        return die(path, "cannot write");
    fprintf(fp,
            "secret_file = secret\nstore = lmdb:sessions\nhtml_dir = %s/html\n"
            "lmdb_sync = none\n",
            cwd);
    fclose(fp);
    if (sess_app_open(&app, path, errmsg, sizeof errmsg) != SESS_OK)
        return die("sess_app_open", errmsg);
    st = app->store;
    now = sess_now_ms(app);

    sess_id_new(id);
    rec = (struct sess_record){.expires_ms = now + 1800000,
                               .deadline_ms = now + 43200000,
                               .created_ms = now,
                               .owner = SESS_STR_LIT("alice"),
                               .data = data};
    if (st->ops->create(st, sess_str_c(id), now, &rec) != SESS_OK)
        return die("create", st->errmsg);
    if (sess_sign(&app->secrets, sess_str_c(id), value, sizeof value, &len) != SESS_OK)
        return die("sign", "failed");
    /* The cookie as a browser sends it: percent-encoded, among others. */
    {
        struct sess_cookie_attrs a = {0};
        char built[512];
        size_t blen;
        if (sess_cookie_build(built, sizeof built, &blen, SESS_STR_LIT("sid"),
                              (struct sess_str){value, len}, &a, 0) != SESS_OK)
            return die("cookie_build", "failed");
        snprintf(cookie_header, sizeof cookie_header, "_ga=GA1.1.123; %.*s; theme=dark",
                 (int)strcspn(built, ";"), built);
    }

    if (!only) {
        printf("fcgi-session library microbenchmarks (%ld iterations each)\n", n);
        t0 = now_s();
        for (long i = 0; i < n + WARMUP; i++) {
            char decoded[SESS_COOKIE_MAX_LEN];
            size_t dlen;
            if (i == WARMUP)
                t0 = now_s();
            if (sess_cookie_find(sess_str_c(cookie_header), SESS_STR_LIT("sid"), decoded,
                                 sizeof decoded, &dlen) != SESS_OK ||
                sess_unsign(&app->secrets, (struct sess_str){decoded, dlen}, &got) != SESS_OK)
                return die("cookie parse + unsign", "failed");
        }
        report("cookie parse + unsign", now_s() - t0, n);

        for (long i = 0; i < n + WARMUP; i++) {
            json_error_t jerr;
            json_t *j;
            if (i == WARMUP)
                t0 = now_s();
            if (st->ops->get(st, sess_str_c(id), now, &rec, &buf) != SESS_OK)
                return die("get", st->errmsg);
            j = json_loadb(rec.data.ptr, rec.data.len, 0, &jerr);
            if (!j)
                return die("json", jerr.text);
            json_decref(j);
        }
        report("session load (LMDB read + unseal + JSON)", now_s() - t0, n);

        /* Every key written again, as a save of the whole session: the
         * patch is laid over the stored record in the write. */
        struct sess_patch save = {.expires_ms = now + 1800000,
                                  .set = json_loadb(data.ptr, data.len, 0, NULL),
                                  .del = json_object()};
        if (!save.set || !save.del)
            return die("update", "out of memory");
        for (long i = 0; i < n / 10 + WARMUP; i++) {
            if (i == WARMUP)
                t0 = now_s();
            if (st->ops->update(st, sess_str_c(id), now, &save) != SESS_OK)
                return die("update", st->errmsg);
        }
        sess__patch_free(&save);
        report("session save (write txn, lmdb_sync = none)", now_s() - t0, n / 10);
    }

    sink = fopen("/dev/null", "w");
    if (!sink)
        return die("/dev/null", "cannot write");
    snprintf(env_cookie, sizeof env_cookie, "HTTP_COOKIE=%s", cookie_header);
    {
        /* What lighttpd 1.4 passes for a wrk request, in its order: the
         * library looks parameters up by name, so their number counts. */
#define SERVER_PARAMS(uri)                                                                         \
    "CONTENT_LENGTH=0", "QUERY_STRING=", "REQUEST_URI=" uri, "REDIRECT_STATUS=200",                \
        "SCRIPT_NAME=" uri, "SCRIPT_FILENAME=/srv/www" uri, "DOCUMENT_ROOT=/srv/www",              \
        "REQUEST_METHOD=GET", "SERVER_PROTOCOL=HTTP/1.1", "SERVER_SOFTWARE=lighttpd/1.4.69",       \
        "GATEWAY_INTERFACE=CGI/1.1", "REQUEST_SCHEME=http", "SERVER_PORT=8080",                    \
        "SERVER_ADDR=127.0.0.1", "SERVER_NAME=127.0.0.1", "REMOTE_ADDR=127.0.0.1",                 \
        "REMOTE_PORT=51234", "HTTP_HOST=127.0.0.1:8080"
        char *env_index[] = {SERVER_PARAMS("/"), NULL};
        char *env_profile[] = {SERVER_PARAMS("/profile"), env_cookie, NULL};
        char *env_views[] = {SERVER_PARAMS("/views"), env_cookie, NULL};
#undef SERVER_PARAMS
        static const char *const names[] = {"index", "profile", "views"};
        static const char *const whats[] = {
            "whole request: GET / (anonymous, page)",
            "whole request: GET /profile (logged in, page)",
            "whole request: GET /views (write)",
        };
        char **envs[] = {env_index, env_profile, env_views};
        sess_route_fn routes[] = {route_index, route_profile, route_views};

        for (size_t k = 0; k < sizeof routes / sizeof routes[0]; k++)
            if (!only || strcmp(only, names[k]) == 0)
                whole_requests(app, whats[k], envs[k], routes[k], only ? n : n / 10, sink);
    }
    fclose(sink);
    sess__buf_free(&buf);
    sess_app_close(app);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    return system(path) == 0 ? 0 : 1;
}
