/* The choice of a store from the `store` setting (lib/store/store.c): by
 * its scheme, and a setting of no scheme it knows refused with the ones it
 * does. The stores themselves are tested under lmdb/ and redis/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "lmdb/lmdb_fixture.h"

static void
test_store_open_dispatches_on_the_store_setting(void **ctx)
{
    static const struct {
        const char *store;
        enum sess_err err;
        const char *message_part;
    } cases[] = {
        {"rediss://example.org/0", SESS_ECONFIG, "rediss://"},
        {"lmdb:", SESS_ECONFIG, "lmdb:DIR"},
        {"mysql://db", SESS_ECONFIG, "unknown kind"},
        {"", SESS_ECONFIG, "unknown kind"},
    };
    struct fx *f = *ctx;
    struct sess_config cfg = f->cfg;
    struct sess_store *st;
    char errmsg[SESS_ERRMSG_MAX], spec[PATH_MAX + 8];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg.store = (char *)cases[i].store;
        errmsg[0] = '\0';
        assert_int_equal(sess__store_open(&st, &cfg, &f->secrets, errmsg, sizeof errmsg),
                         cases[i].err);
        assert_null(st);
        assert_non_null(strstr(errmsg, cases[i].message_part));
    }
    snprintf(spec, sizeof spec, "lmdb:%s/via-dispatch", f->dir.path);
    cfg.store = spec;
    assert_int_equal(sess__store_open(&st, &cfg, &f->secrets, errmsg, sizeof errmsg), SESS_OK);
    assert_string_equal(st->ops->kind, "lmdb");
    sess__store_close(st);
    /* Redis connects on first use: an unreachable server is no reason to
     * refuse to start (requests get 503 until it is back). */
    cfg.store = (char *)"unix:/nonexistent/redis.sock";
    assert_int_equal(sess__store_open(&st, &cfg, &f->secrets, errmsg, sizeof errmsg), SESS_OK);
    assert_string_equal(st->ops->kind, "redis");
    sess__store_close(st);
    sess__store_close(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_open_dispatches_on_the_store_setting, setup,
                                        teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
