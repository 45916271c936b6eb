/* What the Redis store's tests share: a redis-server started for each
 * test program on a free loopback port (and a unix socket), a fixture with
 * a store and a second, direct connection to look at what it wrote, and
 * helpers for records, Express's values and patches. Everything here is
 * static: each test program includes it once. */
#ifndef TEST_REDIS_FIXTURE_H
#define TEST_REDIS_FIXTURE_H

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "internal.h"
#include "redis_url.h"
#include "store.h"
#include "tmpfiles.h"

#define SECRET_A   "redis store test secret A, thirty-two bytes or more"
#define ID1        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID2        "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define ID3        "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
#define EXPRESS_ID "nc93lGy3AL5AfydR9DG4phvdX6VSIcfB" /* uid-safe's 32 characters */
#define TIMEOUT_MS 300
#define MIN_MS     60000LL
#define IVY        "{\"user\":{\"username\":\"ivy\"}}"

/* The server every test talks to (one per test program). */
static struct server {
    struct tmpdir dir;
    char sock[PATH_MAX];
    int port;
    pid_t pid;
    bool is_available;
} srv;

struct fx {
    struct sess_config cfg;
    struct sess_secrets secrets;
    struct sess_store *st;
    struct sess_buf buf;
    struct sess_record rec;
    redisContext *direct; /* to look at what the store wrote */
    char url[128];
};

/* ------------------------------------------------------------------------
 * The server
 * ------------------------------------------------------------------------ */

static inline int64_t
now_ms(void)
{
    return sess__clock_real_ms();
}

static inline void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static inline bool
server_answers(void)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
    bool ok = r && r->type == REDIS_REPLY_STATUS;

    freeReplyObject(r);
    redisFree(c);
    return ok;
}

static inline bool
server_start(void)
{
    char port[16];
    pid_t parent;
    int i;

    snprintf(port, sizeof port, "%d", srv.port);
    parent = getpid();
    srv.pid = fork();
    if (srv.pid < 0)
        return false;
    if (srv.pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        /* A test program that dies without its teardown takes the server
         * with it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        /* Its log would land in the middle of the TAP output. */
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", srv.dir.path, "--unixsocket", srv.sock,
               "--unixsocketperm", "700", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 100; i++) {
        if (server_answers())
            return true;
        if (waitpid(srv.pid, NULL, WNOHANG) == srv.pid) {
            srv.pid = 0;
            return false;
        }
        sleep_ms(50);
    }
    return false;
}

static inline void
server_stop(void)
{
    if (srv.pid <= 0)
        return;
    kill(srv.pid, SIGCONT);
    kill(srv.pid, SIGKILL);
    waitpid(srv.pid, NULL, 0);
    srv.pid = 0;
}

static inline int
group_setup(void **ctx)
{
    (void)ctx;
    if (tmpdir_make(&srv.dir) != 0)
        return -1;
    tmpdir_path(&srv.dir, "redis.sock", srv.sock);
    srv.port = free_port();
    srv.is_available = srv.port > 0 && server_start();
    if (!srv.is_available)
        fprintf(stderr, "# redis-server did not start: the Redis store tests are skipped\n");
    return 0;
}

static inline int
group_teardown(void **ctx)
{
    (void)ctx;
    server_stop();
    tmpdir_remove(&srv.dir);
    return 0;
}

/* ------------------------------------------------------------------------
 * Fixture: a store and a direct connection, on an empty server
 * ------------------------------------------------------------------------ */

static inline redisReply *
direct(struct fx *f, const char *fmt, ...)
{
    va_list ap;
    void *r;

    va_start(ap, fmt);
    r = redisvCommand(f->direct, fmt, ap);
    va_end(ap);
    if (!r)
        fail_msg("direct connection: %s", f->direct->errstr);
    return r;
}

/* Runs a command on the direct connection and returns its integer reply. */
static inline long long
direct_int(struct fx *f, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v;

    va_start(ap, fmt);
    r = redisvCommand(f->direct, fmt, ap);
    va_end(ap);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        fail_msg("direct %s: no integer reply", fmt);
        return -1; /* not reached: fail_msg() ends the test */
    }
    v = r->integer;
    freeReplyObject(r);
    return v;
}

static inline void
direct_ok(struct fx *f, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(f->direct, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR)
        fail_msg("direct %s: %s", fmt, r ? r->str : f->direct->errstr);
    freeReplyObject(r);
}

/* The value of a key as Redis holds it, parsed as JSON (NULL if it is not). */
static inline json_t *
direct_json(struct fx *f, const char *key)
{
    redisReply *r = direct(f, "GET %s", key);
    json_t *v = NULL;

    if (r->type == REDIS_REPLY_STRING)
        v = json_loadb(r->str, r->len, 0, NULL);
    freeReplyObject(r);
    return v;
}

static inline void
direct_connect(struct fx *f)
{
    struct timeval tv = {2, 0};

    redisFree(f->direct);
    f->direct = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    if (!f->direct || f->direct->err)
        fail_msg("direct connection failed");
}

static inline enum sess_err
open_url(struct fx *f, const char *url, struct sess_store **st, char *errmsg, size_t len)
{
    return sess__store_redis_open(st, url, &f->cfg, &f->secrets, errmsg, len);
}

static inline void
open_store(struct fx *f)
{
    char errmsg[SESS_ERRMSG_MAX];

    if (open_url(f, f->url, &f->st, errmsg, sizeof errmsg) != SESS_OK)
        fail_msg("open %s: %s", f->url, errmsg);
}

static inline int
setup_with(void **ctx, enum sess_encrypt encrypt)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    *ctx = f;
    f->cfg.encrypt = encrypt;
    f->cfg.redis_timeout_ms = TIMEOUT_MS;
    assert_int_equal(sess_secrets_add(&f->secrets, SESS_STR_LIT(SECRET_A)), SESS_OK);
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d/0", srv.port);
    if (!srv.is_available)
        return 0;
    /* A test that stopped the server (or set a password) and failed leaves
     * it so: start a fresh one. */
    if (!server_answers()) {
        server_stop();
        if (!server_start())
            return -1;
    }
    direct_connect(f);
    direct_ok(f, "FLUSHALL");
    open_store(f);
    return 0;
}

static inline int
setup(void **ctx)
{
    return setup_with(ctx, SESS_ENCRYPT_AUTO);
}

static inline int
setup_sealed(void **ctx)
{
    return setup_with(ctx, SESS_ENCRYPT_YES);
}

static inline int
teardown(void **ctx)
{
    struct fx *f = *ctx;

    sess__store_close(f->st);
    sess_secrets_free(&f->secrets);
    sess__buf_free(&f->buf);
    redisFree(f->direct);
    free(f);
    return 0;
}

#define NEEDS_SERVER()                                                                             \
    do {                                                                                           \
        if (!srv.is_available)                                                                     \
            skip();                                                                                \
    } while (0)

static inline struct sess_record
record(int64_t expires_ms, int64_t deadline_ms, const char *owner, const char *data)
{
    return (struct sess_record){
        .expires_ms = expires_ms,
        .deadline_ms = deadline_ms,
        .created_ms = 1795370400000LL,
        .owner = sess_str_c(owner),
        .data = sess_str_c(data),
    };
}

static inline void
create(struct fx *f, const char *id, int64_t expires_ms, int64_t deadline_ms, const char *owner,
       const char *data)
{
    struct sess_record rec = record(expires_ms, deadline_ms, owner, data);
    assert_int_equal(f->st->ops->create(f->st, sess_str_c(id), now_ms(), &rec), SESS_OK);
}

static inline enum sess_err
get(struct fx *f, const char *id)
{
    return f->st->ops->get(f->st, sess_str_c(id), now_ms(), &f->rec, &f->buf);
}

static inline void
assert_str_view(struct sess_str view, const char *expected)
{
    if (view.len != strlen(expected) || memcmp(view.ptr, expected, view.len) != 0)
        fail_msg("got \"%.*s\", expected \"%s\"", (int)view.len, view.ptr, expected);
}

static inline void
assert_near(int64_t got, int64_t want, int64_t slack)
{
    if (got < want - slack || got > want + slack)
        fail_msg("got %lld, expected %lld within %lld", (long long)got, (long long)want,
                 (long long)slack);
}

/* A session as express-session + connect-redis store it (cookie first,
 * expires as toISOString), with `extra` top-level members. */
static inline void
express_set(struct fx *f, const char *id, const char *expires_iso, const char *extra, int ttl_s)
{
    char value[1024];

    snprintf(value, sizeof value,
             "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"%s\",\"secure\":false,"
             "\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"}%s%s}",
             expires_iso, *extra ? "," : "", extra);
    direct_ok(f, "SET sess:%s %s EX %d", id, value, ttl_s);
}

/* An update as session.c makes one: the keys of `set` (JSON) laid over
 * the stored data, the idle expiry moved to `expires_ms`, and, when `read`
 * is not NULL, the keys the request read with the values it saw, checked
 * against the record first. Freed with sess__patch_free. */
static inline struct sess_patch
patch(const char *set, const char *read, int64_t expires_ms)
{
    struct sess_patch p = {.expires_ms = expires_ms,
                           .set = json_loads(set, 0, NULL),
                           .del = json_object(),
                           .read = read ? json_loads(read, 0, NULL) : NULL};

    assert_non_null(p.set);
    assert_non_null(p.del);
    assert_true(!read || p.read);
    return p;
}

static inline enum sess_err
update(struct fx *f, const char *id, int64_t now_ms, struct sess_patch *p)
{
    return f->st->ops->update(f->st, sess_str_c(id), now_ms, p);
}

/* sess__patch_merge leaves its result in the patch: whether the store ever
 * laid the patch over a record. */
static inline bool
was_merged(const struct sess_patch *p)
{
    return p->merged != NULL;
}

struct seen {
    int n;
    int owned_by_ivy;
    bool saw_express;
};

static inline bool
visit(void *arg, struct sess_str id, const struct sess_record *rec)
{
    struct seen *s = arg;

    s->n++;
    if (rec->owner.len == 3 && memcmp(rec->owner.ptr, "ivy", 3) == 0)
        s->owned_by_ivy++;
    if (id.len == strlen(EXPRESS_ID) && memcmp(id.ptr, EXPRESS_ID, id.len) == 0)
        s->saw_express = true;
    assert_true(rec->expires_ms > now_ms());
    return true;
}

#endif
