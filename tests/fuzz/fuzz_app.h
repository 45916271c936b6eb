/* A real app for the fuzz targets that drive the request path: a scratch
 * directory (under $TMPDIR) with a secret, a configuration, an LMDB store and
 * an error page, opened once per process. The clock never moves, so CSRF
 * tokens and expiry times written into seeds stay valid. Header-only: each
 * target is one program. */
#ifndef FUZZ_APP_H
#define FUZZ_APP_H

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "internal.h"

/* 2026-11-22T18:00:00.000Z, the unit tests' epoch. */
#define FUZZ_NOW_MS 1795370400000LL

struct fuzz_app {
    char dir[PATH_MAX];
    char store_dir[PATH_MAX];
    struct sess_app *app;
};

static inline int64_t
fuzz_clock(void)
{
    return FUZZ_NOW_MS;
}

static inline void
fuzz_put_file(const char *dir, const char *name, const void *data, size_t size, mode_t mode)
{
    char path[PATH_MAX];
    size_t done = 0;
    ssize_t n;
    int fd;

    CHECK(snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    CHECK(fd >= 0);
    while (done < size) {
        n = write(fd, (const char *)data + done, size - done);
        CHECK(n > 0);
        done += (size_t)n;
    }
    CHECK(close(fd) == 0);
}

/* Makes the directory and opens the app; `extra` is appended to the
 * configuration ("key = value\n" lines). Aborts on any failure: without its
 * app a target tests nothing. */
static inline void
fuzz_app_open(struct fuzz_app *fa, const char *extra)
{
    static const char secret[] = "the fuzz targets' secret, thirty-two bytes or more\n"
                                 "an older secret, still verifying signatures\n";
    /* Self-contained (doctype: no layout), so sess_fail works without the
     * repository's html/. */
    static const char error_page[] = "<!doctype html><title>{{title}}</title>"
                                     "<p>{{status}} {{msg}}</p>\n";
    const char *tmp = getenv("TMPDIR");
    char config[1024], errmsg[SESS_ERRMSG_MAX], html[PATH_MAX];

    CHECK(snprintf(fa->dir, sizeof fa->dir, "%s/fcgi-session-fuzz.XXXXXX",
                   tmp && *tmp ? tmp : "/tmp") < (int)sizeof fa->dir);
    CHECK(mkdtemp(fa->dir) != NULL);
    CHECK(snprintf(html, sizeof html, "%s/html", fa->dir) < (int)sizeof html);
    CHECK(mkdir(html, 0700) == 0);
    CHECK(snprintf(fa->store_dir, sizeof fa->store_dir, "%s/sessions", fa->dir) <
          (int)sizeof fa->store_dir);
    fuzz_put_file(fa->dir, "secret", secret, strlen(secret), 0600);
    fuzz_put_file(html, "error.html", error_page, strlen(error_page), 0600);
    /* No fsync: the store is scratch, and a fuzzer wants executions. */
    CHECK(snprintf(config, sizeof config,
                   "secret_file = secret\nstore = lmdb:sessions\nhtml_dir = html\n"
                   "lmdb_map_size = 8M\nlmdb_sync = none\nsave_uninitialized = false\n%s",
                   extra ? extra : "") < (int)sizeof config);
    fuzz_put_file(fa->dir, "fcgi-session.conf", config, strlen(config), 0600);
    CHECK(snprintf(config, sizeof config, "%s/fcgi-session.conf", fa->dir) < (int)sizeof config);
    if (sess_app_open(&fa->app, config, errmsg, sizeof errmsg) != SESS_OK) {
        fprintf(stderr, "fuzz: sess_app_open: %s\n", errmsg);
        abort();
    }
    sess_app_set_clock(fa->app, fuzz_clock);
}

static inline int
fuzz_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* Closes the app and removes the directory. */
static inline void
fuzz_app_close(struct fuzz_app *fa)
{
    sess_app_close(fa->app);
    fa->app = NULL;
    if (fa->dir[0] != '\0')
        nftw(fa->dir, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    fa->dir[0] = '\0';
}

/* Runs one plain-CGI request through `route` with `envp`; the response stays
 * in req->headers and req->out until the next call. */
static inline void
fuzz_request(struct sess_request *req, struct sess_app *app, char **envp, sess_route_fn route)
{
    sess__request_reset(req);
    req->app = app;
    req->fcgx = NULL;
    req->cgi_out = NULL;
    req->envp = envp;
    sess__request_handle(req, route);
}

/* True when every header line is "Name: value\r\n" with no control byte in
 * the value: nothing a client sent split the response. */
static inline bool
fuzz_headers_are_clean(const struct sess_buf *headers)
{
    const char *p = headers->ptr, *end = headers->ptr + headers->len;

    while (p < end) {
        const char *crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *colon = crlf ? memchr(p, ':', (size_t)(crlf - p)) : NULL;

        if (!colon || colon == p)
            return false;
        for (const char *c = p; c < crlf; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return false;
        p = crlf + 2;
    }
    return true;
}

#endif
