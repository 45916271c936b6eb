/* The Redis store's connection (store/redis/conn.c) against a real
 * redis-server (redis_fixture.h) that stops, restarts and hangs: a down
 * server answers 503 quickly and the store is back soon after it; a
 * restart between calls costs no error; a write whose reply is lost (a
 * proxy here drops the connection after Redis has answered) is found
 * applied rather than done twice or reported as taken; and
 * redis_min_replicas fails a write that reached too few replicas. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sodium.h>

#include "redis_fixture.h"

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
    sess__patch_free(&p);
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
    sess__store_close(f->st);
    snprintf(f->url, sizeof f->url, "redis://127.0.0.1:%d/0", p->port);
    open_store(f);
    assert_int_equal(f->st->ops->user_get(f->st, SESS_STR_LIT("nobody"), now_ms(), &value),
                     SESS_ENOTFOUND);
    sess__buf_free(&value);
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
    sess__patch_free(&two);
    sess__patch_free(&three);
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
    sess__store_close(f->st);
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
    sess__patch_free(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stopped_server_is_unavailable_quickly_and_comes_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_between_calls_costs_no_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_server_times_out_and_recovers, setup, teardown),
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
