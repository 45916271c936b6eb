/* See fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

static struct fixture *clock_owner;

static int64_t
fixture_clock(void)
{
    return clock_owner->now_ms;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void
open_app(struct fixture *f, const char *extra)
{
    char path[256], cwd[200], text[2048], errmsg[SESS_ERRMSG_MAX];

    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(text, sizeof text,
             "secret_file = secret\nstore = lmdb:sessions\nhtml_dir = %s/html\n"
             "lmdb_map_size = 8M\n%s",
             cwd, extra);
    snprintf(path, sizeof path, "%s/fcgi-session.conf", f->dir);
    write_file(path, text, 0644);
    snprintf(f->config_path, sizeof f->config_path, "%s", path);
    if (sess_app_open(&f->app, f->config_path, errmsg, sizeof errmsg) != SESS_OK)
        fail_msg("sess_app_open: %s", errmsg);
    clock_owner = f;
    sess_app_set_clock(f->app, fixture_clock);
}

struct fixture *
fixture_new(const char *extra)
{
    struct fixture *f = calloc(1, sizeof *f);
    char path[128];

    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/fcgi-session-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof path, "%s/secret", f->dir);
    write_file(path, "a test secret of well over thirty-two bytes\nan older secret, still verifying\n",
               0600);
    f->now_ms = FIXTURE_EPOCH_MS;
    open_app(f, extra);
    return f;
}

void
fixture_reopen(struct fixture *f, const char *extra)
{
    sess_app_close(f->app);
    f->app = NULL;
    open_app(f, extra);
}

void
fixture_free(struct fixture *f)
{
    char cmd[128];
    if (!f)
        return;
    sess_app_close(f->app);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

int
fixture_setup(void **state)
{
    *state = fixture_new("");
    return 0;
}

int
fixture_teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

static char **
make_env(struct fixture *f, const struct client *c)
{
    unsigned slot = f->next_env++ % 4, n = 0;
    char(*env)[1024] = f->env[slot];

    snprintf(env[n++], 1024, "REQUEST_METHOD=%s", f->method ? f->method : "GET");
    snprintf(env[n++], 1024, "REMOTE_ADDR=%s", f->remote_addr ? f->remote_addr : "127.0.0.1");
    snprintf(env[n++], 1024, "HTTP_HOST=localhost");
    if (c->cookie && c->csrf_cookie)
        snprintf(env[n++], 1024, "HTTP_COOKIE=%s=%s; %s.csrf=%s", f->app->cfg.name, c->cookie,
                 f->app->cfg.name, c->csrf_cookie);
    else if (c->cookie)
        snprintf(env[n++], 1024, "HTTP_COOKIE=%s=%s", f->app->cfg.name, c->cookie);
    else if (c->csrf_cookie)
        snprintf(env[n++], 1024, "HTTP_COOKIE=%s.csrf=%s", f->app->cfg.name, c->csrf_cookie);
    if (f->forwarded_for)
        snprintf(env[n++], 1024, "HTTP_X_FORWARDED_FOR=%s", f->forwarded_for);
    if (f->https)
        snprintf(env[n++], 1024, "HTTPS=on");
    if (f->forwarded_proto)
        snprintf(env[n++], 1024, "HTTP_X_FORWARDED_PROTO=%s", f->forwarded_proto);
    if (f->content_type)
        snprintf(env[n++], 1024, "CONTENT_TYPE=%s", f->content_type);
    if (f->origin)
        snprintf(env[n++], 1024, "HTTP_ORIGIN=%s", f->origin);
    if (f->body)
        snprintf(env[n++], 1024, "CONTENT_LENGTH=%zu", strlen(f->body));
    if (f->user_agent)
        snprintf(env[n++], 1024, "HTTP_USER_AGENT=%s", f->user_agent);
    for (unsigned i = 0; i < sizeof f->params / sizeof f->params[0] && f->params[i]; i++)
        snprintf(env[n++], 1024, "%s", f->params[i]);
    for (unsigned i = 0; i < n; i++)
        f->envp[slot][i] = env[i];
    f->envp[slot][n] = NULL;
    return f->envp[slot];
}

/* Keeps the pre-session cookie NAME.csrf if the response set one. */
static void
take_csrf_cookie(struct client *c, const char *headers, const char *name)
{
    char prefix[300];
    const char *sc;

    snprintf(prefix, sizeof prefix, "Set-Cookie: %s.csrf=", name);
    sc = strstr(headers, prefix);
    if (!sc)
        return;
    sc += strlen(prefix);
    free(c->csrf_cookie);
    c->csrf_cookie = strndup(sc, strcspn(sc, ";\r"));
}

/* Remembers the response's session Set-Cookie and the cookie value it
 * carries, and the pre-session cookie. */
static void
take_response(struct client *c, const struct sess_request *req, const char *name)
{
    /* The header buffer is not NUL-terminated. */
    char *h = strndup(req->headers.ptr ? req->headers.ptr : "", req->headers.len);
    char prefix[300];
    const char *sc;

    free(c->set_cookie);
    free(c->body);
    c->set_cookie = NULL;
    c->status = req->status;
    c->body = strndup(req->out.ptr ? req->out.ptr : "", req->out.len);
    assert_non_null(h);
    take_csrf_cookie(c, h, name);
    snprintf(prefix, sizeof prefix, "Set-Cookie: %s=", name);
    sc = strstr(h, prefix);
    if (sc) {
        sc += strlen("Set-Cookie: ");
        c->set_cookie = strndup(sc, strcspn(sc, "\r"));
    }
    free(h);
    if (!c->set_cookie)
        return;
    if (strncmp(c->set_cookie, name, strlen(name)) == 0 && c->set_cookie[strlen(name)] == '=') {
        const char *v = c->set_cookie + strlen(name) + 1;
        free(c->cookie);
        c->cookie = strcspn(v, ";") ? strndup(v, strcspn(v, ";")) : NULL;
    }
}

/* fixture_get with `route`, fixture_route with `routes`. */
static void
run_request(struct fixture *f, struct client *c, sess_route_fn route,
            const struct sess_route *routes, size_t count)
{
    struct sess_request req;

    memset(&req, 0, sizeof req);
    req.app = f->app;
    req.envp = make_env(f, c);
    req.cgi_out = fopen("/dev/null", "w");
    assert_non_null(req.cgi_out);
    if (f->body) {
        /* Plain CGI reads the body from fd 0. */
        FILE *tmp = tmpfile();
        assert_non_null(tmp);
        assert_int_equal(fputs(f->body, tmp) >= 0, 1);
        assert_int_equal(fflush(tmp), 0);
        rewind(tmp);
        assert_int_equal(dup2(fileno(tmp), STDIN_FILENO), STDIN_FILENO);
        fclose(tmp);
    }
    if (routes)
        sess__request_route(&req, routes, count);
    else
        sess__request_handle(&req, route);
    take_response(c, &req, f->app->cfg.name);
    sess__request_reset(&req);
    sess__buf_free(&req.headers);
    sess__buf_free(&req.out);
    fclose(req.cgi_out);
}

void
fixture_get(struct fixture *f, struct client *c, sess_route_fn route)
{
    run_request(f, c, route, NULL, 0);
}

void
fixture_route(struct fixture *f, struct client *c, const struct sess_route *routes, size_t count)
{
    run_request(f, c, NULL, routes, count);
}

void
fixture_begin(struct fixture *f, struct client *c, struct sess_request *req)
{
    memset(req, 0, sizeof *req);
    req->app = f->app;
    req->envp = make_env(f, c);
    req->cgi_out = NULL;
    req->now_ms = f->now_ms;
    req->is_secure = f->https;
    sess__session_begin(req);
}

void
fixture_end(struct sess_request *req)
{
    sess__session_end(req);
    sess__request_reset(req);
    sess__buf_free(&req->headers);
    sess__buf_free(&req->out);
}

void
client_copy(struct client *dst, const struct client *src)
{
    dst->cookie = src->cookie ? strdup(src->cookie) : NULL;
    dst->csrf_cookie = src->csrf_cookie ? strdup(src->csrf_cookie) : NULL;
    dst->set_cookie = NULL;
    dst->body = NULL;
    dst->status = 0;
}

void
client_free(struct client *c)
{
    free(c->cookie);
    free(c->set_cookie);
    free(c->body);
    free(c->csrf_cookie);
    memset(c, 0, sizeof *c);
}
