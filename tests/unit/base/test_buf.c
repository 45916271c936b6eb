/* The growing buffer (lib/base/buf.c) that store reads, codecs and
 * responses land in: contents kept as it grows, one allocation once warm,
 * sizes that overflow refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static void
test_buf_append_keeps_what_was_there(void **ctx)
{
    struct sess_buf buf = {0};
    char chunk[100];
    size_t i;

    (void)ctx;
    for (i = 0; i < 50; i++) {
        memset(chunk, 'a' + (int)(i % 26), sizeof chunk);
        assert_int_equal(sess__buf_append(&buf, chunk, sizeof chunk), SESS_OK);
    }
    assert_int_equal(buf.len, 50 * sizeof chunk);
    assert_true(buf.cap >= buf.len);
    for (i = 0; i < 50; i++)
        assert_int_equal(buf.ptr[i * sizeof chunk + 99], 'a' + (int)(i % 26));
    sess__buf_free(&buf);
}

static void
test_buf_reserve_grows_once_for_a_warm_buffer(void **ctx)
{
    struct sess_buf buf = {0};
    char *first;

    (void)ctx;
    assert_int_equal(sess__buf_reserve(&buf, 1000), SESS_OK);
    assert_true(buf.cap >= 1000);
    assert_int_equal(buf.len, 0);
    first = buf.ptr;
    buf.len = 0;
    assert_int_equal(sess__buf_reserve(&buf, 1000), SESS_OK);
    assert_ptr_equal(buf.ptr, first);
    sess__buf_free(&buf);
}

static void
test_buf_reserve_refuses_sizes_that_overflow(void **ctx)
{
    struct sess_buf buf = {0};

    (void)ctx;
    assert_int_equal(sess__buf_append(&buf, "abc", 3), SESS_OK);
    assert_int_equal(sess__buf_reserve(&buf, SIZE_MAX - 1), SESS_ENOMEM);
    assert_int_equal(sess__buf_reserve(&buf, SIZE_MAX), SESS_ENOMEM);
    assert_int_equal(buf.len, 3);
    assert_memory_equal(buf.ptr, "abc", 3);
    sess__buf_free(&buf);
}

static void
test_buf_append_of_nothing_is_fine(void **ctx)
{
    struct sess_buf buf = {0};

    (void)ctx;
    assert_int_equal(sess__buf_append(&buf, NULL, 0), SESS_OK);
    assert_int_equal(buf.len, 0);
    sess__buf_free(&buf);
}

static void
test_buf_free_resets_and_accepts_null(void **ctx)
{
    struct sess_buf buf = {0};

    (void)ctx;
    assert_int_equal(sess__buf_append(&buf, "x", 1), SESS_OK);
    sess__buf_free(&buf);
    assert_null(buf.ptr);
    assert_int_equal(buf.len, 0);
    assert_int_equal(buf.cap, 0);
    sess__buf_free(&buf);
    sess__buf_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_keeps_what_was_there),
        cmocka_unit_test(test_buf_reserve_grows_once_for_a_warm_buffer),
        cmocka_unit_test(test_buf_reserve_refuses_sizes_that_overflow),
        cmocka_unit_test(test_buf_append_of_nothing_is_fine),
        cmocka_unit_test(test_buf_free_resets_and_accepts_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
