/* The Redis store (store_redis.c) against a real redis-server started here
 * on a free loopback port: connect-redis's layout as seen through a second,
 * direct connection (keys, values, TTLs), values written the way Express
 * writes them, atomic updates across processes, throttles, accounts, URL
 * forms, and a server that stops, hangs and comes back. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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
#include <sodium.h>

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

static int64_t
now_ms(void)
{
    return sess_clock_real_ms();
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
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

static bool
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

static bool
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

static void
server_stop(void)
{
    if (srv.pid <= 0)
        return;
    kill(srv.pid, SIGCONT);
    kill(srv.pid, SIGKILL);
    waitpid(srv.pid, NULL, 0);
    srv.pid = 0;
}

static int
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

static int
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

static redisReply *
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
static long long
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

static void
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
static json_t *
direct_json(struct fx *f, const char *key)
{
    redisReply *r = direct(f, "GET %s", key);
    json_t *v = NULL;

    if (r->type == REDIS_REPLY_STRING)
        v = json_loadb(r->str, r->len, 0, NULL);
    freeReplyObject(r);
    return v;
}

static void
direct_connect(struct fx *f)
{
    struct timeval tv = {2, 0};

    redisFree(f->direct);
    f->direct = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    if (!f->direct || f->direct->err)
        fail_msg("direct connection failed");
}

static enum sess_err
open_url(struct fx *f, const char *url, struct sess_store **st, char *errmsg, size_t len)
{
    return sess_store_redis_open(st, url, &f->cfg, &f->secrets, errmsg, len);
}

static void
open_store(struct fx *f)
{
    char errmsg[SESS_ERRMSG_MAX];

    if (open_url(f, f->url, &f->st, errmsg, sizeof errmsg) != SESS_OK)
        fail_msg("open %s: %s", f->url, errmsg);
}

static int
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

static int
setup(void **ctx)
{
    return setup_with(ctx, SESS_ENCRYPT_AUTO);
}

static int
setup_sealed(void **ctx)
{
    return setup_with(ctx, SESS_ENCRYPT_YES);
}

static int
teardown(void **ctx)
{
    struct fx *f = *ctx;

    sess_store_close(f->st);
    sess_secrets_free(&f->secrets);
    sess_buf_free(&f->buf);
    redisFree(f->direct);
    free(f);
    return 0;
}

#define NEEDS_SERVER()                                                                             \
    do {                                                                                           \
        if (!srv.is_available)                                                                     \
            skip();                                                                                \
    } while (0)

static struct sess_record
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

static void
create(struct fx *f, const char *id, int64_t expires_ms, int64_t deadline_ms, const char *owner,
       const char *data)
{
    struct sess_record rec = record(expires_ms, deadline_ms, owner, data);
    assert_int_equal(f->st->ops->create(f->st, sess_str_c(id), now_ms(), &rec), SESS_OK);
}

static enum sess_err
get(struct fx *f, const char *id)
{
    return f->st->ops->get(f->st, sess_str_c(id), now_ms(), &f->rec, &f->buf);
}

static void
assert_str_view(struct sess_str view, const char *expected)
{
    if (view.len != strlen(expected) || memcmp(view.ptr, expected, view.len) != 0)
        fail_msg("got \"%.*s\", expected \"%s\"", (int)view.len, view.ptr, expected);
}

static void
assert_near(int64_t got, int64_t want, int64_t slack)
{
    if (got < want - slack || got > want + slack)
        fail_msg("got %lld, expected %lld within %lld", (long long)got, (long long)want,
                 (long long)slack);
}

/* A session as express-session + connect-redis store it (cookie first,
 * expires as toISOString), with `extra` top-level members. */
static void
express_set(struct fx *f, const char *id, const char *expires_iso, const char *extra, int ttl_s)
{
    char value[1024];

    snprintf(value, sizeof value,
             "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"%s\",\"secure\":false,"
             "\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"}%s%s}",
             expires_iso, *extra ? "," : "", extra);
    direct_ok(f, "SET sess:%s %s EX %d", id, value, ttl_s);
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

static void
test_open_accepts_url_forms_and_refuses_bad_ones(void **ctx)
{
    struct fx *f = *ctx;
    static const struct {
        const char *url;
        enum sess_err err;
        const char *says; /* in the message when refused */
    } cases[] = {
        /* Nothing listens on port 1: the store still opens, lazily. */
        {"redis://127.0.0.1:1/0", SESS_OK, NULL},
        {"redis://127.0.0.1:1", SESS_OK, NULL},
        {"redis://localhost:1/15", SESS_OK, NULL},
        {"redis://[::1]:1/2", SESS_OK, NULL},
        {"redis://:pa%40ss@127.0.0.1:1/0", SESS_OK, NULL},
        {"redis://user:pass@127.0.0.1:1/0", SESS_OK, NULL},
        {"unix:/nonexistent/redis.sock", SESS_OK, NULL},
        {"unix:///nonexistent/redis.sock?db=3", SESS_OK, NULL},
        {"unix:/nonexistent/redis.sock?db=3&password=x", SESS_OK, NULL},
        {"redis://127.0.0.1:0/0", SESS_ECONFIG, "port"},
        {"redis://127.0.0.1:65536/0", SESS_ECONFIG, "port"},
        {"redis://127.0.0.1:1/x", SESS_ECONFIG, "database"},
        {"redis://:1/0", SESS_ECONFIG, "host"},
        {"redis://[::1/0", SESS_ECONFIG, "host"},
        {"redis://user@127.0.0.1:1/0", SESS_ECONFIG, "password"},
        {"redis://:bad%zzescape@127.0.0.1:1/0", SESS_ECONFIG, "escape"},
        {"unix:relative.sock", SESS_ECONFIG, "absolute"},
        {"unix:/x.sock?size=3", SESS_ECONFIG, "unknown parameter"},
        {"rediss://127.0.0.1:1/0", SESS_ECONFIG, "hiredis_ssl"},
    };
    char errmsg[SESS_ERRMSG_MAX];
    struct sess_store *st;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errmsg[0] = '\0';
        st = NULL;
        if (open_url(f, cases[i].url, &st, errmsg, sizeof errmsg) != cases[i].err)
            fail_msg("%s: unexpected result (%s)", cases[i].url, errmsg);
        if (cases[i].err == SESS_OK) {
            assert_non_null(st);
            assert_string_equal(st->ops->kind, "redis");
        } else if (!strstr(errmsg, cases[i].says)) {
            fail_msg("%s: message \"%s\" does not say %s", cases[i].url, errmsg, cases[i].says);
        }
        sess_store_close(st);
    }
}

static void
test_open_never_shows_the_password(void **ctx)
{
    struct fx *f = *ctx;
    char errmsg[SESS_ERRMSG_MAX];
    struct sess_store *st = NULL;

    assert_int_equal(
        open_url(f, "redis://:hunter2-secret@127.0.0.1:0/0", &st, errmsg, sizeof errmsg),
        SESS_ECONFIG);
    assert_null(strstr(errmsg, "hunter2"));
    assert_non_null(strstr(errmsg, "127.0.0.1"));
}

static void
test_store_open_dispatches_redis_urls(void **ctx)
{
    struct fx *f = *ctx;
    char errmsg[SESS_ERRMSG_MAX], url[64];
    struct sess_store *st = NULL;

    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", srv.port > 0 ? srv.port : 1);
    f->cfg.store = url;
    assert_int_equal(sess_store_open(&st, &f->cfg, &f->secrets, errmsg, sizeof errmsg), SESS_OK);
    assert_string_equal(st->ops->kind, "redis");
    sess_store_close(st);
    f->cfg.store = "rediss://127.0.0.1:1/0";
    assert_int_equal(sess_store_open(&st, &f->cfg, &f->secrets, errmsg, sizeof errmsg),
                     SESS_ECONFIG);
    f->cfg.store = NULL;
}

static void
test_open_refuses_a_wrong_password_and_a_missing_database(void **ctx)
{
    struct fx *f = *ctx;
    char errmsg[SESS_ERRMSG_MAX], url[96];
    struct sess_store *st = NULL;
    struct sess_buf value = {0};

    NEEDS_SERVER();
    direct_ok(f, "CONFIG SET requirepass %s", "s3cret-pass");
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d/0", srv.port);
    assert_int_equal(open_url(f, url, &st, errmsg, sizeof errmsg), SESS_ECONFIG);
    assert_non_null(strstr(errmsg, "AUTH"));
    assert_null(strstr(errmsg, "wrong@"));

    snprintf(url, sizeof url, "redis://:s3cret-pass@127.0.0.1:%d/1", srv.port);
    assert_int_equal(open_url(f, url, &st, errmsg, sizeof errmsg), SESS_OK);
    assert_int_equal(
        st->ops->user_put(st, SESS_STR_LIT("ann"), now_ms(), SESS_STR_LIT("{}"), false), SESS_OK);
    assert_int_equal(st->ops->user_get(st, SESS_STR_LIT("ann"), now_ms(), &value), SESS_OK);
    sess_store_close(st);
    sess_buf_free(&value);
    /* The account went to database 1. */
    direct_ok(f, "AUTH %s", "s3cret-pass");
    direct_ok(f, "SELECT 1");
    assert_int_equal(direct_int(f, "HEXISTS fcgi-session:users ann"), 1);
    direct_ok(f, "CONFIG SET requirepass %s", "");
    direct_ok(f, "FLUSHALL");

    snprintf(url, sizeof url, "redis://127.0.0.1:%d/9999", srv.port);
    assert_int_equal(open_url(f, url, &st, errmsg, sizeof errmsg), SESS_ECONFIG);
    assert_non_null(strstr(errmsg, "SELECT"));
}

/* ------------------------------------------------------------------------
 * The layout, as an Express app sees it
 * ------------------------------------------------------------------------ */

/* A session's lifetime, handle and client travel in the value's "_fcgi"
 * object, through the fast reader and through the parser alike (an
 * escaped User-Agent takes the parser). */
static void
test_session_metadata_round_trips(void **ctx)
{
    static const char *const agents[] = {"Mozilla/5.0 (X11)", "quote \" and \\ back"};
    struct fx *f = *ctx;
    int64_t now = now_ms();

    NEEDS_SERVER();
    for (size_t i = 0; i < 2; i++) {
        struct sess_record rec = record(now + 30 * MIN_MS, now + 600 * MIN_MS, "alice",
                                        "{\"cookie\":{\"originalMaxAge\":2592000000},\"n\":1}");
        redisReply *r;

        rec.idle_ms = 2592000000LL;
        rec.lifetime_ms = -1;
        rec.is_remembered = true;
        rec.has_handle = true;
        memset(rec.handle, 0xA5, sizeof rec.handle);
        rec.client_addr = sess_str_c("203.0.113.9");
        rec.user_agent = sess_str_c(agents[i]);
        rec.last_seen_ms = now - 5000;
        (void)f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms());
        assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_OK);
        assert_int_equal(get(f, ID1), SESS_OK);
        assert_int_equal(f->rec.idle_ms, 2592000000LL);
        assert_int_equal(f->rec.lifetime_ms, -1);
        assert_true(f->rec.is_remembered);
        assert_true(f->rec.has_handle);
        assert_memory_equal(f->rec.handle, rec.handle, sizeof rec.handle);
        assert_str_view(f->rec.client_addr, "203.0.113.9");
        assert_str_view(f->rec.user_agent, agents[i]);
        assert_int_equal(f->rec.last_seen_ms, now - 5000);
        assert_str_view(f->rec.owner, "alice");
        assert_str_view(f->rec.data, "{\"cookie\":{\"originalMaxAge\":2592000000},\"n\":1}");
        /* Express sees the lifetime where it looks: cookie.originalMaxAge. */
        r = direct(f, "GET sess:" ID1);
        assert_non_null(strstr(r->str, "\"originalMaxAge\":2592000000"));
        freeReplyObject(r);
    }
}

static void
test_create_then_get_returns_the_record(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + 600 * MIN_MS, "alice",
           "{\"cookie\":{\"path\":\"/\"},\"user\":{\"username\":\"alice\"},\"n\":1}");
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.owner, "alice");
    assert_str_view(f->rec.data, "{\"cookie\":{\"path\":\"/\"},\"user\":{\"username\":\"alice\"},"
                                 "\"n\":1}");
    assert_int_equal(f->rec.data.ptr[f->rec.data.len], '\0');
    assert_int_equal(f->rec.owner.ptr[f->rec.owner.len], '\0');
    assert_int_equal(f->rec.created_ms, 1795370400000LL);
    assert_int_equal(f->rec.deadline_ms, now + 600 * MIN_MS);
    /* EX rounds up to whole seconds, as connect-redis does. */
    assert_near(f->rec.expires_ms, now + 30 * MIN_MS, 1500);
}

static void
test_value_is_plain_json_under_sess_key_with_ttl_from_expiry(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();
    json_t *v, *meta;
    long long pttl;

    NEEDS_SERVER();
    /* connect-redis's TTL: 1,799,995 ms ahead gives EX 1800. */
    create(f, ID1, now + 1799995, now + 600 * MIN_MS, "alice",
           "{\"cookie\":{\"originalMaxAge\":1800000},\"views\":2}");
    v = direct_json(f, "sess:" ID1);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "views")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(v, "cookie"), "originalMaxAge")),
        1800000);
    meta = json_object_get(v, "_fcgi");
    assert_true(json_is_object(meta));
    assert_int_equal(json_integer_value(json_object_get(meta, "created")), 1795370400000LL);
    assert_int_equal(json_integer_value(json_object_get(meta, "deadline")), now + 600 * MIN_MS);
    assert_string_equal(json_string_value(json_object_get(meta, "owner")), "alice");
    json_decref(v);
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 1795000 && pttl <= 1800000);
    assert_int_equal(direct_int(f, "TTL sess:" ID1), 1800);
    /* The session, and alice's index outside connect-redis's prefix. */
    assert_int_equal(direct_int(f, "DBSIZE"), 2);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:sess:user:alice " ID1), 1);
}

static void
test_ttl_stops_at_the_absolute_deadline(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();
    long long pttl;

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + 10000, "", "{}");
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 9000 && pttl <= 10000);
}

static void
test_get_of_an_express_session_takes_expiry_from_the_ttl(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();
    char data[1024];

    NEEDS_SERVER();
    /* Touched by connect-redis since its last save: cookie.expires is in
     * the past, the TTL is what counts. */
    express_set(f, EXPRESS_ID, "2020-01-01T00:00:00.000Z",
                "\"authenticated\":true,\"user\":{\"username\":\"alice\",\"role\":\"admin\"}", 600);
    assert_int_equal(get(f, EXPRESS_ID), SESS_OK);
    assert_near(f->rec.expires_ms, now + 600000, 1500);
    assert_near(f->rec.created_ms, now, 1500);
    assert_int_equal(f->rec.deadline_ms, 0);
    assert_str_view(f->rec.owner, "alice");
    snprintf(data, sizeof data,
             "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"2020-01-01T00:00:00.000Z\","
             "\"secure\":false,\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},"
             "\"authenticated\":true,\"user\":{\"username\":\"alice\",\"role\":\"admin\"}}");
    assert_str_view(f->rec.data, data);
}

/* express-session has no absolute timeout: a session an Express app made
 * and keeps alive would never end here either. It gets absolute_timeout
 * from our first reading, written into the value (TTL kept) so that later
 * readings keep the same deadline. */
static void
test_express_session_ends_at_a_deadline_from_first_sight(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms(), deadline;
    long long pttl;
    json_t *v;

    NEEDS_SERVER();
    sess_store_close(f->st);
    f->cfg.absolute_timeout_s = 3600;
    open_store(f);
    /* A long cookie maxAge: the TTL outlives the absolute timeout. */
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z",
                "\"user\":{\"username\":\"alice\",\"role\":\"admin\"}", 86400);
    assert_int_equal(get(f, EXPRESS_ID), SESS_OK);
    assert_near(f->rec.deadline_ms, now + 3600 * 1000, 1500);
    deadline = f->rec.deadline_ms;
    v = direct_json(f, "sess:" EXPRESS_ID);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "_fcgi"), "deadline")),
                     deadline);
    assert_non_null(json_object_get(v, "cookie"));
    json_decref(v);
    pttl = direct_int(f, "PTTL sess:" EXPRESS_ID);
    assert_true(pttl > 86000 * 1000LL && pttl <= 86400 * 1000LL);
    /* Read again, later: the same deadline, and past it the session is gone
     * though its TTL runs for most of a day. */
    assert_int_equal(
        f->st->ops->get(f->st, SESS_STR_LIT(EXPRESS_ID), now + 1800 * 1000, &f->rec, &f->buf),
        SESS_OK);
    assert_int_equal(f->rec.deadline_ms, deadline);
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(EXPRESS_ID), deadline, &f->rec, &f->buf),
                     SESS_ENOTFOUND);
}

static void
test_get_of_an_anonymous_express_session_has_no_owner(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"views\":3", 60);
    assert_int_equal(get(f, EXPRESS_ID), SESS_OK);
    assert_int_equal(f->rec.owner.len, 0);
    assert_non_null(strstr(f->rec.data.ptr, "\"views\":3"));
}

static void
test_get_strips_our_key_however_express_rewrote_it(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    /* Not first, with spaces and an escaped owner: the parser's way. */
    direct_ok(f, "SET sess:%s %s EX 60", ID1,
              "{\"cookie\":{},\"_fcgi\": {\"deadline\":0, \"owner\":\"o\\\"k\", \"created\":42},"
              "\"n\":1}");
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_int_equal(f->rec.created_ms, 42);
    assert_str_view(f->rec.owner, "o\"k");
    assert_null(strstr(f->rec.data.ptr, "_fcgi"));
    assert_non_null(strstr(f->rec.data.ptr, "\"n\":1"));
}

static void
test_get_of_unknown_corrupt_or_foreign_values_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    assert_int_equal(get(f, ID1), SESS_ENOTFOUND);
    direct_ok(f, "SET sess:%s %s", ID1, "not json at all");
    assert_int_equal(get(f, ID1), SESS_ENOTFOUND);
    direct_ok(f, "HSET sess:%s a b", ID2);
    assert_int_equal(get(f, ID2), SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->get(f->st, (struct sess_str){"", 0}, now_ms(), &f->rec, &f->buf),
                     SESS_ENOTFOUND);
}

static void
test_get_after_the_deadline_is_not_found(void **ctx)
{
    struct fx *f = *ctx;
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(ID1), now + MIN_MS, &f->rec, &f->buf),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(ID1), now + MIN_MS - 1, &f->rec, &f->buf),
                     SESS_OK);
    /* sessctl's "stored at all". */
    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(ID1), INT64_MIN, &f->rec, &f->buf),
                     SESS_OK);
}

static void
test_create_of_taken_id_is_eexists_and_of_dead_record_stores_nothing(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "", "{\"b\":2}");

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{\"a\":1}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_EEXISTS);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_non_null(strstr(f->rec.data.ptr, "\"a\":1"));

    rec = record(now_ms() - 1, 0, "", "{}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 0);
}

static void
test_create_refuses_data_that_is_not_an_object(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "", "[1,2]");

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_EBADINPUT);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
}

static void
test_ids_travel_as_arguments_not_as_command_text(void **ctx)
{
    struct fx *f = *ctx;
    static const char id[] = "x\r\nFLUSHALL\r\n y";

    NEEDS_SERVER();
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    create(f, id, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(direct_int(f, "EXISTS sess:%b", id, sizeof id - 1), 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
    assert_int_equal(get(f, id), SESS_OK);
}

/* ------------------------------------------------------------------------
 * update
 * ------------------------------------------------------------------------ */

/* An update as session.c makes one: the keys of `set` (JSON) laid over
 * the stored data, the idle expiry moved to `expires_ms`, and, when `read`
 * is not NULL, the keys the request read with the values it saw, checked
 * against the record first. Freed with sess_patch_free. */
static struct sess_patch
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

static enum sess_err
update(struct fx *f, const char *id, int64_t now_ms, struct sess_patch *p)
{
    return f->st->ops->update(f->st, sess_str_c(id), now_ms, p);
}

/* sess_patch_merge leaves its result in the patch: whether the store ever
 * laid the patch over a record. */
static bool
was_merged(const struct sess_patch *p)
{
    return p->merged != NULL;
}

/* Adds one to data.counter as a route would: reads it, then writes it back
 * in a patch that read it, again from the start whenever another writer
 * changed it in between (SESS_ECONFLICT). */
static enum sess_err
increment(struct sess_store *st, struct sess_str id)
{
    struct sess_record rec;
    struct sess_buf buf = {0};
    struct sess_patch p;
    enum sess_err err;
    json_t *n;

    do {
        err = st->ops->get(st, id, now_ms(), &rec, &buf);
        if (err != SESS_OK)
            break;
        p = (struct sess_patch){
            .expires_ms = now_ms() + 10 * MIN_MS, .set = json_object(), .del = json_object()};
        p.read = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
        n = json_object_get(p.read, "counter");
        if (!p.set || !p.del || !json_is_integer(n) ||
            json_object_set_new(p.set, "counter", json_integer(json_integer_value(n) + 1)) != 0)
            err = SESS_ENOMEM;
        else
            err = st->ops->update(st, id, now_ms(), &p);
        sess_patch_free(&p);
    } while (err == SESS_ECONFLICT);
    sess_buf_free(&buf);
    return err;
}

/* The calls Redis has served of `command` since the last CONFIG RESETSTAT. */
static long long
command_calls(struct fx *f, const char *command)
{
    redisReply *r = direct(f, "INFO commandstats");
    char field[64];
    const char *at;
    long long calls = 0;

    snprintf(field, sizeof field, "cmdstat_%s:calls=", command);
    if (r->type == REDIS_REPLY_STRING) {
        at = strstr(r->str, field);
        if (at)
            calls = strtoll(at + strlen(field), NULL, 10);
    }
    freeReplyObject(r);
    return calls;
}

/* The fixture whose direct connection writes ID1 behind the store's back,
 * from inside the store's next update: the first allocation jansson makes
 * once armed is the one that parses the record the update has just read
 * under WATCH, so the write lands between its read and its EXEC. */
static struct fx *write_behind;

static void *
malloc_writing_behind(size_t size)
{
    struct fx *f = write_behind;

    if (f) {
        write_behind = NULL;
        direct_ok(f, "SET sess:%s %s EX 60", ID1,
                  "{\"_fcgi\":{\"created\":1,\"deadline\":0},\"other\":7}");
    }
    return malloc(size);
}

static void
test_update_merges_into_the_current_record_and_moves_the_ttl(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":2}", "{\"a\":1}", now_ms() + 20 * MIN_MS);
    long long pttl;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, now_ms() + 600 * MIN_MS, "carol",
           "{\"user\":{\"username\":\"carol\"},\"a\":1}");
    /* What it read held: the merge saw the stored record. */
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_OK);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.data, "{\"user\":{\"username\":\"carol\"},\"a\":1,\"b\":2}");
    assert_str_view(f->rec.owner, "carol");
    assert_int_equal(f->rec.created_ms, 1795370400000LL);
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 20 * MIN_MS - 2000 && pttl <= 20 * MIN_MS);
    sess_patch_free(&p);
}

static void
test_update_of_absent_record_is_not_found_and_not_recreated(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":0}", NULL, now_ms() + MIN_MS);
    struct sess_patch other = patch("{\"c\":0}", NULL, now_ms() + MIN_MS);

    NEEDS_SERVER();
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_ENOTFOUND);
    assert_false(was_merged(&p));
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    /* No WATCH left behind to spoil the next transaction. */
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(update(f, ID2, now_ms(), &other), SESS_OK);
    sess_patch_free(&p);
    sess_patch_free(&other);
}

static void
test_update_past_the_deadline_is_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":0}", NULL, now_ms() + MIN_MS);
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    assert_int_equal(update(f, ID1, now + MIN_MS, &p), SESS_ENOTFOUND);
    assert_false(was_merged(&p));
    sess_patch_free(&p);
}

/* A merge that refuses (here: what the request read has changed) writes
 * nothing. */
static void
test_update_aborts_when_the_merge_fails(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":2}", "{\"a\":0}", now_ms() + MIN_MS);

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{\"a\":1}");
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_ECONFLICT);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.data, "{\"a\":1}");
    sess_patch_free(&p);
}

static void
test_update_starts_again_after_a_concurrent_write(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"mine\":1}", NULL, now_ms() + MIN_MS);
    enum sess_err err;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{\"a\":1}");
    direct_ok(f, "CONFIG RESETSTAT");
    write_behind = f;
    json_set_alloc_funcs(malloc_writing_behind, free);
    err = update(f, ID1, now_ms(), &p);
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(err, SESS_OK);
    assert_null(write_behind);
    /* The first write lost to the concurrent one (its EXEC was refused),
     * and the patch was laid again over what that one wrote. */
    assert_int_equal(command_calls(f, "watch"), 2);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.data, "{\"other\":7,\"mine\":1}");
    sess_patch_free(&p);
}

static void
test_concurrent_updates_from_processes_lose_nothing(void **ctx)
{
    struct fx *f = *ctx;
    enum { PROCS = 4, EACH = 50 };
    pid_t pids[PROCS];
    int i, status;
    json_t *v;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + 10 * MIN_MS, 0, "", "{\"counter\":0}");
    for (i = 0; i < PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct sess_store *st;
            char errmsg[SESS_ERRMSG_MAX];
            int n, bad = 0;

            /* A store of its own: one connection per process. */
            if (open_url(f, f->url, &st, errmsg, sizeof errmsg) != SESS_OK)
                _exit(2);
            for (n = 0; n < EACH; n++)
                if (increment(st, SESS_STR_LIT(ID1)) != SESS_OK)
                    bad++;
            sess_store_close(st);
            _exit(bad ? 1 : 0);
        }
    }
    for (i = 0; i < PROCS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    v = direct_json(f, "sess:" ID1);
    assert_int_equal(json_integer_value(json_object_get(v, "counter")), PROCS * EACH);
    json_decref(v);
}

/* ------------------------------------------------------------------------
 * touch, destroy
 * ------------------------------------------------------------------------ */

static void
test_touch_sets_the_ttl_and_leaves_the_value_alone(void **ctx)
{
    struct fx *f = *ctx;
    redisReply *before, *after;
    long long pttl;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "dave", "{\"a\":1}");
    before = direct(f, "GET sess:" ID1);
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), now_ms(), now_ms() + 45 * MIN_MS),
                     SESS_OK);
    after = direct(f, "GET sess:" ID1);
    assert_int_equal(before->len, after->len);
    assert_memory_equal(before->str, after->str, before->len);
    freeReplyObject(before);
    freeReplyObject(after);
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 45 * MIN_MS - 2000 && pttl <= 45 * MIN_MS);
}

static void
test_touch_of_absent_is_not_found_and_into_the_past_deletes(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), now_ms(), now_ms() + MIN_MS),
                     SESS_ENOTFOUND);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID2), now_ms(), now_ms() - 1), SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 0);
}

static void
test_destroy_deletes_the_key_and_absent_is_fine(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{}");
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms()), SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms()), SESS_OK);
}

static void
test_destroy_owner_ends_ours_by_the_index_and_express_ones_by_scan(void **ctx)
{
    struct fx *f = *ctx;
    size_t count = 99;
    int i;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "frank", "{\"user\":{\"username\":\"frank\"}}");
    create(f, ID2, now_ms() + MIN_MS, 0, "frank", "{\"user\":{\"username\":\"frank\"}}");
    create(f, ID3, now_ms() + MIN_MS, 0, "franky", "{\"user\":{\"username\":\"franky\"}}");
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"frank\"}", 60);
    express_set(f, "other-express-session-id-000001", "2030-01-01T00:00:00.000Z",
                "\"user\":{\"username\":\"grace\"},\"note\":\"frank\"", 60);
    /* Enough other sessions for several SCAN steps. */
    for (i = 0; i < 250; i++) {
        char id[40];
        snprintf(id, sizeof id, "filler-session-%04d-xxxxxxxxxxxx", i);
        create(f, id, now_ms() + MIN_MS, 0, "grace", "{\"user\":{\"username\":\"grace\"}}");
    }
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("frank"), now_ms(), &count),
                     SESS_OK);
    /* The index knows ours only: Express never writes to it. */
    assert_int_equal(count, 2);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1 " sess:" ID2), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" EXPRESS_ID " sess:" ID3), 2);
    assert_int_equal(direct_int(f, "EXISTS fcgi-session:sess:user:frank"), 0);
    f->st->is_owner_scan = true;
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("frank"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" EXPRESS_ID), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID3), 1);
    /* 250 of grace's, franky's, the other Express session, two indexes. */
    assert_int_equal(direct_int(f, "DBSIZE"), 254);
    f->st->is_owner_scan = false;
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("nobody"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 0);
}

/* ------------------------------------------------------------------------
 * Listing, statistics, gc
 * ------------------------------------------------------------------------ */

struct seen {
    int n;
    int owned_by_ivy;
    bool saw_express;
};

static bool
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

static void
test_each_visits_every_session_or_one_owners(void **ctx)
{
    struct fx *f = *ctx;
    struct seen all = {0}, ivy = {0}, ivy_all = {0};
    int i;

    NEEDS_SERVER();
    for (i = 0; i < 230; i++) {
        char id[40];
        snprintf(id, sizeof id, "listed-session-%04d-xxxxxxxxxxxx", i);
        create(f, id, now_ms() + MIN_MS, 0, i % 10 == 0 ? "ivy" : "", "{}");
    }
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"ivy\"}", 60);
    direct_ok(f, "SET notasession x");
    assert_int_equal(f->st->ops->each(f->st, (struct sess_str){"", 0}, now_ms(), visit, &all),
                     SESS_OK);
    assert_int_equal(all.n, 231);
    assert_int_equal(all.owned_by_ivy, 24);
    assert_true(all.saw_express);
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT("ivy"), now_ms(), visit, &ivy), SESS_OK);
    assert_int_equal(ivy.n, 23);
    assert_int_equal(ivy.owned_by_ivy, 23);
    assert_false(ivy.saw_express);
    f->st->is_owner_scan = true;
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT("ivy"), now_ms(), visit, &ivy_all),
                     SESS_OK);
    assert_int_equal(ivy_all.n, 24);
    assert_true(ivy_all.saw_express);
}

static void
test_stats_count_sessions_owners_users_and_dead(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store_stats s;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "kim", "{}");

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "kim", "{}");
    rec.created_ms = 1795370500000LL;
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_OK);
    create(f, ID3, now_ms() + 10 * MIN_MS, now_ms() + MIN_MS, "lee", "{}");
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"max\"}", 60);
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("kim"), now_ms(), SESS_STR_LIT("{}"), false),
        SESS_OK);
    assert_int_equal(f->st->ops->stats(f->st, now_ms() + 2 * MIN_MS, &s), SESS_OK);
    assert_int_equal(s.sessions, 4);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.owners, 3);
    assert_int_equal(s.users, 1);
    assert_int_equal(s.oldest_created_ms, 1795370400000LL);
    assert_int_equal(s.newest_created_ms, 1795370500000LL);
    assert_int_equal(s.map_size_bytes, 0);
    assert_int_equal(s.readers_max, 0);
}

static void
test_gc_deletes_sessions_kept_alive_past_their_deadline(void **ctx)
{
    struct fx *f = *ctx;
    size_t purged, total = 0;
    bool more;
    int64_t now = now_ms();
    int steps = 0;

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    create(f, ID2, now + 30 * MIN_MS, now + 60 * MIN_MS, "", "{}");
    create(f, ID3, now + 30 * MIN_MS, 0, "", "{}");
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "", 60);
    do {
        assert_int_equal(f->st->ops->gc(f->st, now + 2 * MIN_MS, 2, &purged, &more), SESS_OK);
        assert_true(purged <= 2);
        total += purged;
    } while (more && ++steps < 100);
    assert_false(more);
    assert_int_equal(total, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2 " sess:" ID3 " sess:" EXPRESS_ID), 3);
}

static void
test_gc_if_due_runs_one_step_per_interval_across_stores(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *other;
    char errmsg[SESS_ERRMSG_MAX];
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    f->st->ops->gc_if_due(f->st, now + 2 * MIN_MS);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_true(direct_int(f, "PTTL fcgi-session:gc:lock") > 0);
    /* Another process within the interval does nothing. */
    create(f, ID2, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    assert_int_equal(open_url(f, f->url, &other, errmsg, sizeof errmsg), SESS_OK);
    other->ops->gc_if_due(other, now + 2 * MIN_MS);
    sess_store_close(other);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
}

/* ------------------------------------------------------------------------
 * Accounts and throttles
 * ------------------------------------------------------------------------ */

static bool
visit_user(void *arg, struct sess_str name, struct sess_str value)
{
    int *n = arg;

    (*n)++;
    assert_true(value.len > 0);
    return name.len > 0;
}

static void
test_users_are_put_read_listed_and_deleted(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf value = {0};
    int n = 0, i;

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_put(f->st, SESS_STR_LIT("zoe"), now_ms(),
                                          SESS_STR_LIT("{\"role\":\"admin\",\"hash\":\"h\"}"),
                                          false),
                     SESS_OK);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value), SESS_OK);
    assert_string_equal(value.ptr, "{\"role\":\"admin\",\"hash\":\"h\"}");
    assert_int_equal(value.len, strlen(value.ptr));
    redisReply *r = direct(f, "HGET fcgi-session:users zoe");
    assert_string_equal(r->str, "{\"role\":\"admin\",\"hash\":\"h\"}");
    freeReplyObject(r);
    /* A creation finds the name taken and leaves the account alone. */
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("zoe"), now_ms(), SESS_STR_LIT("{}"), true),
        SESS_EEXISTS);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value), SESS_OK);
    assert_string_equal(value.ptr, "{\"role\":\"admin\",\"hash\":\"h\"}");
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("new"), now_ms(), SESS_STR_LIT("{}"), true),
        SESS_OK);
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("new"), now_ms()), SESS_OK);
    for (i = 0; i < 150; i++) {
        char name[16];
        snprintf(name, sizeof name, "user%d", i);
        assert_int_equal(
            f->st->ops->user_put(f->st, sess_str_c(name), now_ms(), SESS_STR_LIT("{}"), false),
            SESS_OK);
    }
    assert_int_equal(f->st->ops->user_each(f->st, now_ms(), visit_user, &n), SESS_OK);
    assert_int_equal(n, 151);
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("zoe"), now_ms()), SESS_OK);
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("zoe"), now_ms()), SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("zoe"), now_ms(), &value),
                     SESS_ENOTFOUND);
    sess_buf_free(&value);
}

static void
test_throttle_counts_failures_in_a_window_under_a_hashed_key(void **ctx)
{
    struct fx *f = *ctx;
    unsigned char hash[32];
    char key[128] = "fcgi-session:throttle:";
    uint32_t count;
    int64_t first, first1 = 0, now = now_ms();
    long long pttl;
    int i;

    NEEDS_SERVER();
    for (i = 1; i <= 3; i++) {
        assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("user:alice"), now_ms(),
                                                  5 * MIN_MS, &count, &first),
                         SESS_OK);
        assert_int_equal(count, (uint32_t)i);
        if (i == 1)
            first1 = first;
        assert_near(first, first1, 20);
    }
    assert_near(first1, now, 50);
    crypto_generichash(hash, sizeof hash, (const unsigned char *)"user:alice", 10, NULL, 0);
    sodium_bin2hex(key + strlen(key), 65, hash, sizeof hash);
    pttl = direct_int(f, "PTTL %s", key);
    assert_true(pttl > 5 * MIN_MS - 1000 && pttl <= 5 * MIN_MS);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("user:alice"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 3);
    assert_near(first, first1, 20);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("user:bob"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(f->st->ops->throttle_clear(f->st, SESS_STR_LIT("user:alice"), now_ms()),
                     SESS_OK);
    assert_int_equal(direct_int(f, "EXISTS %s", key), 0);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("user:alice"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
}

/* A good login gives back the place it took: one less, the window (the
 * key's TTL) untouched, never below 0, never a key made again. */
static void
test_throttle_undo_takes_back_one_and_keeps_the_window(void **ctx)
{
    struct fx *f = *ctx;
    uint32_t count;
    int64_t first;

    NEEDS_SERVER();
    assert_int_equal(
        f->st->ops->throttle_undo(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(), 5 * MIN_MS),
        SESS_OK);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                                  5 * MIN_MS, &count, &first),
                         SESS_OK);
    assert_int_equal(
        f->st->ops->throttle_undo(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(), 5 * MIN_MS),
        SESS_OK);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                               5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_near(first, now_ms(), 100);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            f->st->ops->throttle_undo(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(), 5 * MIN_MS),
            SESS_OK);
    assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.9"), now_ms(),
                                              5 * MIN_MS, &count, &first),
                     SESS_OK);
    assert_int_equal(count, 1);
}

/* The rehash on login: written only over the value it read. */
static void
test_user_replace_only_over_the_value_read(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf value = {0};

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->user_replace(f->st, SESS_STR_LIT("yann"), now_ms(),
                                              SESS_STR_LIT("{\"a\":1}"), SESS_STR_LIT("{\"a\":2}")),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("yann"), now_ms(), &value),
                     SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->user_put(f->st, SESS_STR_LIT("yann"), now_ms(),
                                          SESS_STR_LIT("{\"a\":1}"), true),
                     SESS_OK);
    assert_int_equal(f->st->ops->user_replace(f->st, SESS_STR_LIT("yann"), now_ms(),
                                              SESS_STR_LIT("{\"a\":0}"), SESS_STR_LIT("{\"a\":2}")),
                     SESS_ECONFLICT);
    assert_int_equal(f->st->ops->user_replace(f->st, SESS_STR_LIT("yann"), now_ms(),
                                              SESS_STR_LIT("{\"a\":1}"), SESS_STR_LIT("{\"a\":2}")),
                     SESS_OK);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("yann"), now_ms(), &value), SESS_OK);
    assert_string_equal(value.ptr, "{\"a\":2}");
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("yann"), now_ms()), SESS_OK);
    sess_buf_free(&value);
}

static void
test_throttle_window_ends_and_a_new_one_starts(void **ctx)
{
    struct fx *f = *ctx;
    uint32_t count;
    int64_t first, first1;

    NEEDS_SERVER();
    assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.1"), now_ms(), 150,
                                              &count, &first1),
                     SESS_OK);
    assert_int_equal(count, 1);
    sleep_ms(250);
    assert_int_equal(f->st->ops->throttle_peek(f->st, SESS_STR_LIT("addr:10.0.0.1"), now_ms(), 150,
                                               &count, &first),
                     SESS_OK);
    assert_int_equal(count, 0);
    assert_int_equal(f->st->ops->throttle_hit(f->st, SESS_STR_LIT("addr:10.0.0.1"), now_ms(), 150,
                                              &count, &first),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_true(first >= first1 + 200);
}

/* ------------------------------------------------------------------------
 * encrypt = true, unix sockets
 * ------------------------------------------------------------------------ */

static void
test_sealed_values_hide_the_data_and_refuse_plain_ones(void **ctx)
{
    struct fx *f = *ctx;
    redisReply *r;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "alice", "{\"user\":{\"username\":\"alice\"}}");
    r = direct(f, "GET sess:" ID1);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_memory_equal(r->str, "fcgi-sealed:1:", 14);
    assert_null(memmem(r->str, r->len, "alice", 5));
    freeReplyObject(r);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.owner, "alice");
    assert_str_view(f->rec.data, "{\"user\":{\"username\":\"alice\"}}");
    /* Someone who can write to Redis cannot forge a plain session. */
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"alice\"}", 60);
    assert_int_equal(get(f, EXPRESS_ID), SESS_ENOTFOUND);
    /* Nor move a sealed value to another id. */
    direct_ok(f, "RENAME sess:" ID1 " sess:" ID2);
    assert_int_equal(get(f, ID2), SESS_ENOTFOUND);
}

static void
test_unix_socket_and_database_number(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st;
    char errmsg[SESS_ERRMSG_MAX], url[PATH_MAX + 16];
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "", "{}");

    NEEDS_SERVER();
    snprintf(url, sizeof url, "unix:%s?db=2", srv.sock);
    assert_int_equal(open_url(f, url, &st, errmsg, sizeof errmsg), SESS_OK);
    assert_int_equal(st->ops->create(st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_OK);
    sess_store_close(st);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    direct_ok(f, "SELECT 2");
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 1);
}

/* ------------------------------------------------------------------------
 * A server that goes away
 * ------------------------------------------------------------------------ */

/* Polls `get` until the store answers (found or not) rather than with
 * SESS_EUNAVAIL; returns the milliseconds it took, or -1. */
static long
wait_for_store(struct fx *f, long limit_ms)
{
    int64_t start = now_ms();
    enum sess_err err;

    do {
        err = get(f, ID1);
        if (err != SESS_EUNAVAIL)
            return (long)(now_ms() - start);
        sleep_ms(20);
    } while (now_ms() - start < limit_ms);
    return -1;
}

static void
test_stopped_server_is_unavailable_quickly_and_comes_back(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "", "{}");
    struct sess_patch p = patch("{\"b\":0}", NULL, now_ms() + MIN_MS);
    uint32_t count;
    int64_t first, t0;
    long waited;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{}");
    server_stop();
    t0 = now_ms();
    assert_int_equal(get(f, ID1), SESS_EUNAVAIL);
    assert_true(now_ms() - t0 < TIMEOUT_MS);
    assert_non_null(strstr(f->st->errmsg, "redis 127.0.0.1"));
    /* Within the back-off: no attempt at all. */
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_EUNAVAIL);
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_EUNAVAIL);
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), now_ms(), now_ms() + MIN_MS),
                     SESS_EUNAVAIL);
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms()), SESS_EUNAVAIL);
    assert_int_equal(
        f->st->ops->throttle_hit(f->st, SESS_STR_LIT("k"), now_ms(), MIN_MS, &count, &first),
        SESS_EUNAVAIL);
    assert_true(now_ms() - t0 < TIMEOUT_MS);
    assert_false(was_merged(&p));

    assert_true(server_start());
    /* Back within the longest back-off, without reopening the store. */
    waited = wait_for_store(f, 2 * 2000 + 500);
    assert_true(waited >= 0);
    /* --save '': the restarted server is empty. */
    assert_int_equal(get(f, ID1), SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_OK);
    sess_patch_free(&p);
}

static void
test_restart_between_calls_costs_no_error(void **ctx)
{
    struct fx *f = *ctx;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(get(f, ID1), SESS_OK);
    /* The store's connection now points at a dead server; the first call
     * after the restart notices and retries on a new connection at once. */
    server_stop();
    assert_true(server_start());
    assert_int_equal(get(f, ID1), SESS_ENOTFOUND);
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{}");
}

static void
test_stuck_server_times_out_and_recovers(void **ctx)
{
    struct fx *f = *ctx;
    int64_t t0, took;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{}");
    kill(srv.pid, SIGSTOP);
    t0 = now_ms();
    assert_int_equal(get(f, ID1), SESS_EUNAVAIL);
    took = now_ms() - t0;
    kill(srv.pid, SIGCONT);
    if (took < TIMEOUT_MS - 20 || took > TIMEOUT_MS + 400)
        fail_msg("gave up after %lld ms; redis_timeout_ms is %d", (long long)took, TIMEOUT_MS);
    assert_non_null(strstr(f->st->errmsg, "redis_timeout_ms"));
    assert_true(wait_for_store(f, 2 * 2000 + 500) >= 0);
    assert_int_equal(get(f, ID1), SESS_OK);
}

/* ------------------------------------------------------------------------
 * The URL grammar (redis_url.c): no server needed
 * ------------------------------------------------------------------------ */

static void
test_sentinel_url_names_sentinels_master_password_and_db(void **ctx)
{
    struct sess_redis_url u;
    char why[200];

    (void)ctx;
    assert_int_equal(sess_redis_url_parse("redis-sentinel://:p%40ss@10.0.0.1:26380,sentinel-b,"
                                          "[::1]:26381/my-master/3",
                                          &u, why, sizeof why),
                     SESS_OK);
    assert_int_equal(u.kind, SESS_REDIS_SENTINEL);
    assert_int_equal(u.sentinels, 3);
    assert_string_equal(u.sentinel[0].host, "10.0.0.1");
    assert_int_equal(u.sentinel[0].port, 26380);
    assert_string_equal(u.sentinel[1].host, "sentinel-b");
    assert_int_equal(u.sentinel[1].port, 26379);
    assert_string_equal(u.sentinel[2].host, "::1");
    assert_int_equal(u.sentinel[2].port, 26381);
    assert_string_equal(u.master, "my-master");
    assert_string_equal(u.password, "p@ss");
    assert_null(u.user);
    assert_int_equal(u.db, 3);
    sess_redis_url_free(&u);

    assert_int_equal(sess_redis_url_parse("redis-sentinel://s:1/m", &u, why, sizeof why), SESS_OK);
    assert_int_equal(u.sentinels, 1);
    assert_null(u.password);
    assert_int_equal(u.db, 0);
    sess_redis_url_free(&u);

    /* The same userinfo grammar as redis://: the last '@' ends it. */
    assert_int_equal(sess_redis_url_parse("redis://:a/b@c@h:7/1", &u, why, sizeof why), SESS_OK);
    assert_string_equal(u.password, "a/b@c");
    assert_string_equal(u.node.host, "h");
    assert_int_equal(u.node.port, 7);
    assert_int_equal(u.db, 1);
    sess_redis_url_free(&u);
}

static void
test_sentinel_url_errors_say_what_and_show_no_password(void **ctx)
{
    static const struct {
        const char *url;
        const char *says;
    } cases[] = {
        {"redis-sentinel://:SECRETPW@a:1", "no master name"},
        {"redis-sentinel://:SECRETPW@a:1/", "no master name"},
        {"redis-sentinel://:SECRETPW@a:1,,b:2/m", "no host"},
        {"redis-sentinel://:SECRETPW@a:0/m", "port"},
        {"redis-sentinel://:SECRETPW@a:1/m/x", "database"},
        {"redis-sentinel://SECRETPW@a:1/m", "needs a password"},
        {"redis-sentinel://:SECRETPW%zz@a:1/m", "escape"},
        {"redis-sentinel://:SECRETPW@a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m", "more than 16"},
    };
    struct fx *f = *ctx;
    struct sess_redis_url u;
    struct sess_store *st = NULL;
    char why[200], errmsg[SESS_ERRMSG_MAX];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sess_redis_url_parse(cases[i].url, &u, why, sizeof why), SESS_ECONFIG);
        sess_redis_url_free(&u);
        if (!strstr(why, cases[i].says))
            fail_msg("%s: \"%s\" does not say %s", cases[i].url, why, cases[i].says);
        assert_null(strstr(why, "SECRET"));
        assert_int_equal(open_url(f, cases[i].url, &st, errmsg, sizeof errmsg), SESS_ECONFIG);
        if (strstr(errmsg, "SECRET") || !strstr(errmsg, "***"))
            fail_msg("%s: the message shows the password: %s", cases[i].url, errmsg);
    }
    sess_redis_url_mask("redis-sentinel://user:SECRETPW@a:1,b:2/m", errmsg, sizeof errmsg);
    assert_string_equal(errmsg, "redis-sentinel://user:***@a:1,b:2/m");
}

/* ------------------------------------------------------------------------
 * redis_prefix and the per-user index
 * ------------------------------------------------------------------------ */

static void
reopen_with_prefix(struct fx *f, const char *prefix)
{
    sess_store_close(f->st);
    f->cfg.redis_prefix = (char *)prefix;
    open_store(f);
    f->cfg.redis_prefix = NULL;
}

static void
test_prefix_names_every_session_key_and_the_index(void **ctx)
{
    struct fx *f = *ctx;
    struct seen all = {0};
    size_t count;

    NEEDS_SERVER();
    reopen_with_prefix(f, "app1:s:");
    create(f, ID1, now_ms() + MIN_MS, 0, "ivy", "{\"user\":{\"username\":\"ivy\"}}");
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(direct_int(f, "EXISTS app1:s:" ID1 " app1:s:" ID2), 2);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:app1:s:user:ivy " ID1), 1);
    /* Another prefix's session is not ours to see. */
    express_set(f, EXPRESS_ID, "2030-01-01T00:00:00.000Z", "\"user\":{\"username\":\"ivy\"}", 60);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_int_equal(get(f, EXPRESS_ID), SESS_ENOTFOUND);
    assert_int_equal(f->st->ops->each(f->st, (struct sess_str){"", 0}, now_ms(), visit, &all),
                     SESS_OK);
    assert_int_equal(all.n, 2);
    f->st->is_owner_scan = true;
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("ivy"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" EXPRESS_ID), 1);
}

static void
test_index_follows_owner_and_ttl_and_drops_ids_that_are_gone(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"a\":1}", NULL, now_ms() + 30 * MIN_MS);
    struct sess_patch logout = patch("{}", NULL, now_ms() + 30 * MIN_MS);
    struct seen ivy = {0};
    long long pttl;
    size_t count;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "ivy", IVY);
    create(f, ID2, now_ms() + 2 * MIN_MS, 0, "ivy", IVY);
    create(f, ID3, now_ms() + MIN_MS, 0, "ivy", IVY);
    assert_int_equal(direct_int(f, "SCARD fcgi-session:sess:user:ivy"), 3);
    /* The set lives past the longest of its members. */
    pttl = direct_int(f, "PTTL fcgi-session:sess:user:ivy");
    assert_true(pttl > 2 * MIN_MS + 3590000 && pttl <= 2 * MIN_MS + 3600000);
    /* An update that moves the TTL moves the set's. */
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_OK);
    pttl = direct_int(f, "PTTL fcgi-session:sess:user:ivy");
    assert_true(pttl > 30 * MIN_MS + 3590000);
    /* So does a touch of a session just read. */
    assert_int_equal(get(f, ID3), SESS_OK);
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID3), now_ms(), now_ms() + 60 * MIN_MS),
                     SESS_OK);
    pttl = direct_int(f, "PTTL fcgi-session:sess:user:ivy");
    assert_true(pttl > 60 * MIN_MS + 3590000);
    /* Gone behind our back, or someone else's now: dropped when met. */
    direct_ok(f, "DEL sess:" ID2);
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}"); /* not ivy's */
    direct_ok(f, "DEL sess:" ID2);
    direct_ok(f, "SADD fcgi-session:sess:user:ivy " ID2);
    direct_ok(f, "SET sess:" ID2 " {\"user\":{\"username\":\"zoe\"}} EX 60");
    assert_int_equal(f->st->ops->each(f->st, SESS_STR_LIT("ivy"), now_ms(), visit, &ivy), SESS_OK);
    assert_int_equal(ivy.n, 2);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:sess:user:ivy " ID2), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID2), 1);
    /* Logged out: off the list at once. */
    assert_int_equal(json_object_set_new(logout.del, "user", json_true()), 0);
    assert_int_equal(update(f, ID3, now_ms(), &logout), SESS_OK);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:sess:user:ivy " ID3), 0);
    /* Revocation through the index: the last one ends, the set goes. */
    assert_int_equal(f->st->ops->destroy_owner(f->st, SESS_STR_LIT("ivy"), now_ms(), &count),
                     SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1 " fcgi-session:sess:user:ivy"), 0);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID3), 1);
    sess_patch_free(&p);
    sess_patch_free(&logout);
}

/* ------------------------------------------------------------------------
 * Writes whose reply is lost: a proxy that drops the connection after
 * passing on one chosen command and letting Redis answer it
 * ------------------------------------------------------------------------ */

struct proxy {
    int listen_fd;
    int port;
    pthread_t thread;
    char trigger[32]; /* the command name as RESP sends it: "$6\r\nHSETNX\r\n" */
    volatile int fired;
    volatile bool is_stopping;
};

static void
relay(struct proxy *p, int client)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct pollfd fds[2];
    char buf[65536];
    int server = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    a.sin_port = htons((uint16_t)srv.port);
    if (server < 0 || connect(server, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    while (!p->is_stopping) {
        fds[0] = (struct pollfd){.fd = client, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = server, .events = POLLIN};
        if (poll(fds, 2, 100) <= 0)
            continue;
        if (fds[0].revents) {
            n = read(client, buf, sizeof buf);
            if (n <= 0 || write(server, buf, (size_t)n) != n)
                break;
            if (!p->fired && p->trigger[0] &&
                memmem(buf, (size_t)n, p->trigger, strlen(p->trigger))) {
                /* Redis answers a whole buffer of commands at once: any
                 * reply means the trigger ran. The client never sees it. */
                fds[1] = (struct pollfd){.fd = server, .events = POLLIN};
                if (poll(&fds[1], 1, 2000) > 0 && read(server, buf, sizeof buf) < 0)
                    fprintf(stderr, "# proxy: %s\n", strerror(errno));
                p->fired++;
                break;
            }
        }
        if (fds[1].revents) {
            n = read(server, buf, sizeof buf);
            if (n <= 0 || write(client, buf, (size_t)n) != n)
                break;
        }
    }
out:
    if (server >= 0)
        close(server);
    close(client);
}

static void *
proxy_main(void *arg)
{
    struct proxy *p = arg;
    struct pollfd pfd;
    int client;

    while (!p->is_stopping) {
        pfd = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        client = accept(p->listen_fd, NULL, NULL);
        if (client >= 0)
            relay(p, client);
    }
    return NULL;
}

static void
proxy_start(struct proxy *p)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;

    memset(p, 0, sizeof *p);
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->listen_fd >= 0);
    assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&a, &len), 0);
    assert_int_equal(listen(p->listen_fd, 8), 0);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

static void
proxy_stop(struct proxy *p)
{
    p->is_stopping = true;
    pthread_join(p->thread, NULL);
    close(p->listen_fd);
}

/* The store reopened through the proxy, its connection made and used once
 * (only a connection that has answered before is retried at once). */
static void
through_proxy(struct fx *f, struct proxy *p, const char *command)
{
    struct sess_buf value = {0};

    proxy_start(p);
    sess_store_close(f->st);
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d/0", p->port);
    open_store(f);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("nobody"), now_ms(), &value),
                     SESS_ENOTFOUND);
    sess_buf_free(&value);
    snprintf(p->trigger, sizeof p->trigger, "$%zu\r\n%s\r\n", strlen(command), command);
}

static void
test_useradd_after_a_lost_reply_is_created_not_taken(void **ctx)
{
    struct fx *f = *ctx;
    struct proxy p;
    const char *account = "{\"role\":\"user\",\"hash\":\"$argon2id$salted\"}";
    redisReply *r;

    NEEDS_SERVER();
    through_proxy(f, &p, "HSETNX");
    assert_int_equal(
        f->st->ops->user_put(f->st, SESS_STR_LIT("bob"), now_ms(), sess_str_c(account), true),
        SESS_OK);
    assert_int_equal(p.fired, 1);
    r = direct(f, "HGET fcgi-session:users bob");
    assert_string_equal(r->str, account);
    freeReplyObject(r);
    /* Someone else's account is still taken. */
    assert_int_equal(f->st->ops->user_put(f->st, SESS_STR_LIT("bob"), now_ms(),
                                          SESS_STR_LIT("{\"role\":\"user\",\"hash\":\"other\"}"),
                                          true),
                     SESS_EEXISTS);
    /* And a lost reply to HDEL is no "no such user". */
    p.fired = 0;
    snprintf(p.trigger, sizeof p.trigger, "$4\r\nHDEL\r\n");
    assert_int_equal(f->st->ops->user_del(f->st, SESS_STR_LIT("bob"), now_ms()), SESS_OK);
    assert_int_equal(p.fired, 1);
    assert_int_equal(direct_int(f, "HEXISTS fcgi-session:users bob"), 0);
    proxy_stop(&p);
}

static void
test_create_after_a_lost_reply_is_stored_not_taken(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "ivy", "{\"a\":1}");
    struct sess_record anon = record(now_ms() + MIN_MS, 0, "", "{\"a\":2}");
    struct proxy p;

    NEEDS_SERVER();
    through_proxy(f, &p, "EXEC");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), now_ms(), &rec), SESS_OK);
    assert_int_equal(p.fired, 1);
    assert_int_equal(direct_int(f, "SISMEMBER fcgi-session:sess:user:ivy " ID1), 1);
    p.fired = 0;
    snprintf(p.trigger, sizeof p.trigger, "$3\r\nSET\r\n");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &anon), SESS_OK);
    assert_int_equal(p.fired, 1);
    /* A real collision is still one. */
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_EEXISTS);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.data, "{\"a\":1}");
    assert_int_equal(get(f, ID2), SESS_OK);
    assert_str_view(f->rec.data, "{\"a\":2}");
    proxy_stop(&p);
}

static void
test_update_after_a_lost_exec_reply_is_applied_once(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch two = patch("{\"counter\":2}", "{\"counter\":1}", now_ms() + MIN_MS);
    struct sess_patch three = patch("{\"counter\":3}", "{\"counter\":2}", now_ms() + MIN_MS);
    struct proxy p;
    json_t *v;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{\"counter\":1}");
    through_proxy(f, &p, "EXEC");
    /* Merged a second time, over the value its own lost EXEC wrote, the
     * patch would find that the counter it read has changed: a conflict,
     * not SESS_OK. */
    assert_int_equal(update(f, ID1, now_ms(), &two), SESS_OK);
    assert_int_equal(p.fired, 1);
    v = direct_json(f, "sess:" ID1);
    assert_int_equal(json_integer_value(json_object_get(v, "counter")), 2);
    json_decref(v);
    /* The next one counts on. */
    assert_int_equal(update(f, ID1, now_ms(), &three), SESS_OK);
    v = direct_json(f, "sess:" ID1);
    assert_int_equal(json_integer_value(json_object_get(v, "counter")), 3);
    json_decref(v);
    sess_patch_free(&two);
    sess_patch_free(&three);
    proxy_stop(&p);
}

static void
test_throttle_hit_after_a_lost_reply_counts_once(void **ctx)
{
    struct fx *f = *ctx;
    uint32_t count;
    int64_t first;
    struct proxy p;

    NEEDS_SERVER();
    through_proxy(f, &p, "INCR");
    assert_int_equal(
        f->st->ops->throttle_hit(f->st, SESS_STR_LIT("carol"), now_ms(), MIN_MS, &count, &first),
        SESS_EUNAVAIL);
    assert_int_equal(p.fired, 1);
    assert_int_equal(
        f->st->ops->throttle_peek(f->st, SESS_STR_LIT("carol"), now_ms(), MIN_MS, &count, &first),
        SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(
        f->st->ops->throttle_hit(f->st, SESS_STR_LIT("carol"), now_ms(), MIN_MS, &count, &first),
        SESS_OK);
    assert_int_equal(count, 2);
    proxy_stop(&p);
}

/* ------------------------------------------------------------------------
 * redis_min_replicas
 * ------------------------------------------------------------------------ */

static void
test_write_without_enough_replicas_fails_though_reads_work(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(now_ms() + MIN_MS, 0, "", "{}");
    struct sess_patch p = patch("{\"a\":1}", NULL, now_ms() + MIN_MS);
    int64_t t0;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{}");
    sess_store_close(f->st);
    f->cfg.redis_min_replicas = 1;
    open_store(f);
    assert_int_equal(get(f, ID1), SESS_OK);
    t0 = now_ms();
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), now_ms(), &rec), SESS_EUNAVAIL);
    assert_true(now_ms() - t0 < TIMEOUT_MS + 100);
    assert_non_null(strstr(f->st->errmsg, "0 of the 1 replicas"));
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_EUNAVAIL);
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), now_ms()), SESS_EUNAVAIL);
    f->cfg.redis_min_replicas = 0;
    sess_patch_free(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_accepts_url_forms_and_refuses_bad_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_never_shows_the_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_open_dispatches_redis_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_a_wrong_password_and_a_missing_database,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_then_get_returns_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_metadata_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_value_is_plain_json_under_sess_key_with_ttl_from_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_stops_at_the_absolute_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_express_session_ends_at_a_deadline_from_first_sight,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_of_an_express_session_takes_expiry_from_the_ttl,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_of_an_anonymous_express_session_has_no_owner,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_strips_our_key_however_express_rewrote_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_of_unknown_corrupt_or_foreign_values_is_not_found,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_after_the_deadline_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_create_of_taken_id_is_eexists_and_of_dead_record_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_data_that_is_not_an_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ids_travel_as_arguments_not_as_command_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_update_merges_into_the_current_record_and_moves_the_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_of_absent_record_is_not_found_and_not_recreated,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_past_the_deadline_is_not_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_update_aborts_when_the_merge_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_starts_again_after_a_concurrent_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_updates_from_processes_lose_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_touch_sets_the_ttl_and_leaves_the_value_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_touch_of_absent_is_not_found_and_into_the_past_deletes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_deletes_the_key_and_absent_is_fine, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_destroy_owner_ends_ours_by_the_index_and_express_ones_by_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_visits_every_session_or_one_owners, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats_count_sessions_owners_users_and_dead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gc_deletes_sessions_kept_alive_past_their_deadline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_if_due_runs_one_step_per_interval_across_stores,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_are_put_read_listed_and_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_throttle_counts_failures_in_a_window_under_a_hashed_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_window_ends_and_a_new_one_starts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_throttle_undo_takes_back_one_and_keeps_the_window,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_replace_only_over_the_value_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealed_values_hide_the_data_and_refuse_plain_ones,
                                        setup_sealed, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket_and_database_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopped_server_is_unavailable_quickly_and_comes_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_between_calls_costs_no_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_server_times_out_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinel_url_names_sentinels_master_password_and_db,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sentinel_url_errors_say_what_and_show_no_password,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_names_every_session_key_and_the_index, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_index_follows_owner_and_ttl_and_drops_ids_that_are_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_useradd_after_a_lost_reply_is_created_not_taken, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_create_after_a_lost_reply_is_stored_not_taken, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_update_after_a_lost_exec_reply_is_applied_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_throttle_hit_after_a_lost_reply_counts_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_without_enough_replicas_fails_though_reads_work,
                                        setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
