/* A stored record's one rule of time (lib/store/record.c): it dies at its
 * idle expiry, or at its absolute deadline if that comes first; every
 * store files, purges and refuses records by it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store.h"

static void
test_expiry_is_the_sooner_of_idle_expiry_and_deadline(void **ctx)
{
    (void)ctx;
    assert_int_equal(sess__record_expiry_ms(1000, 0), 1000);
    assert_int_equal(sess__record_expiry_ms(1000, 500), 500);
    assert_int_equal(sess__record_expiry_ms(1000, 2000), 1000);
    assert_int_equal(sess__record_expiry_ms(1000, 1000), 1000);
    assert_true(sess__record_expiry_ms(INT64_MAX, 0) == INT64_MAX);
}

static void
test_record_is_live_follows_expiry_and_deadline(void **ctx)
{
    static const struct {
        int64_t expires_ms, deadline_ms, now_ms;
        bool is_live;
    } cases[] = {
        {1000, 0, 999, true},      {1000, 0, 1000, false},  {1000, 0, 1001, false},
        {1000, 500, 499, true},    {1000, 500, 500, false}, {1000, 2000, 999, true},
        {1000, 2000, 1000, false}, {INT64_MAX, 0, 0, true},
    };
    size_t i;

    (void)ctx;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sess_record rec = {.expires_ms = cases[i].expires_ms,
                                  .deadline_ms = cases[i].deadline_ms};
        assert_int_equal(sess__record_is_live(&rec, cases[i].now_ms), cases[i].is_live);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expiry_is_the_sooner_of_idle_expiry_and_deadline),
        cmocka_unit_test(test_record_is_live_follows_expiry_and_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
