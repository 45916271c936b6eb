/* Opening the Redis store (store/redis/open.c, conn.c) against a real
 * redis-server started here (redis_fixture.h): the URL forms it takes and
 * those it refuses, messages without the password, and what stops the
 * start (a wrong password, a missing database) and what does not (a
 * server not up yet). The grammar alone is tests/unit/codec's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sodium.h>

#include "redis_fixture.h"

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
        sess__store_close(st);
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
    assert_int_equal(sess__store_open(&st, &f->cfg, &f->secrets, errmsg, sizeof errmsg), SESS_OK);
    assert_string_equal(st->ops->kind, "redis");
    sess__store_close(st);
    f->cfg.store = "rediss://127.0.0.1:1/0";
    assert_int_equal(sess__store_open(&st, &f->cfg, &f->secrets, errmsg, sizeof errmsg),
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
    sess__store_close(st);
    sess__buf_free(&value);
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
 * Sentinel URLs: what a mistake says
 * ------------------------------------------------------------------------ */

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
        assert_int_equal(sess__redis_url_parse(cases[i].url, &u, why, sizeof why), SESS_ECONFIG);
        sess__redis_url_free(&u);
        if (!strstr(why, cases[i].says))
            fail_msg("%s: \"%s\" does not say %s", cases[i].url, why, cases[i].says);
        assert_null(strstr(why, "SECRET"));
        assert_int_equal(open_url(f, cases[i].url, &st, errmsg, sizeof errmsg), SESS_ECONFIG);
        if (strstr(errmsg, "SECRET") || !strstr(errmsg, "***"))
            fail_msg("%s: the message shows the password: %s", cases[i].url, errmsg);
    }
    sess__redis_url_mask("redis-sentinel://user:SECRETPW@a:1,b:2/m", errmsg, sizeof errmsg);
    assert_string_equal(errmsg, "redis-sentinel://user:***@a:1,b:2/m");
}

/* ------------------------------------------------------------------------
 * A unix socket
 * ------------------------------------------------------------------------ */

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
    sess__store_close(st);
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    direct_ok(f, "SELECT 2");
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 1);
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
        cmocka_unit_test_setup_teardown(test_sentinel_url_errors_say_what_and_show_no_password,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket_and_database_number, setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
