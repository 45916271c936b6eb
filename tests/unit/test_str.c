/* The shared string helpers (str.c): views, error texts, bounded
 * formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void
test_str_c_wraps_and_accepts_null(void **state)
{
    struct sess_str s = sess_str_c("abc");

    (void)state;
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.ptr, "abc", 3);
    s = sess_str_c(NULL);
    assert_non_null(s.ptr);
    assert_int_equal(s.len, 0);
}

static void
test_str_eq_compares_bytes_and_lengths(void **state)
{
    (void)state;
    assert_true(sess_str_eq(SESS_STR_LIT("sid"), sess_str_c("sid")));
    assert_false(sess_str_eq(SESS_STR_LIT("sid"), SESS_STR_LIT("sid2")));
    assert_false(sess_str_eq(SESS_STR_LIT("sid"), SESS_STR_LIT("SID")));
    assert_true(sess_str_eq((struct sess_str){NULL, 0}, SESS_STR_LIT("")));
    assert_true(sess_str_eq((struct sess_str){"a\0b", 3}, (struct sess_str){"a\0b", 3}));
    assert_false(sess_str_eq((struct sess_str){"a\0b", 3}, (struct sess_str){"a\0c", 3}));
}

static void
test_strerror_has_a_distinct_text_for_every_code(void **state)
{
    const char *seen[SESS_EIO + 1];

    (void)state;
    for (int e = SESS_OK; e <= SESS_EIO; e++) {
        seen[e] = sess_strerror((enum sess_err)e);
        assert_non_null(seen[e]);
        assert_true(strlen(seen[e]) > 0);
        for (int k = 0; k < e; k++)
            assert_string_not_equal(seen[k], seen[e]);
    }
    assert_string_equal(sess_strerror(SESS_ENOTFOUND), "not found");
    assert_string_equal(sess_strerror((enum sess_err)999), "unknown error");
}

static void
test_fmt_truncates_and_terminates(void **state)
{
    char out[8];

    (void)state;
    memset(out, 'x', sizeof(out));
    sess_fmt(out, sizeof(out), "%s:%d", "sess.conf", 12);
    assert_string_equal(out, "sess.co");
    sess_fmt(out, sizeof(out), "%d", 42);
    assert_string_equal(out, "42");
    out[0] = 'x';
    sess_fmt(out, 1, "%s", "anything");
    assert_int_equal(out[0], '\0');
    sess_fmt(out, 0, "%s", "nothing written");
    sess_fmt(NULL, 0, "%s", "nothing written");
    assert_int_equal(out[0], '\0');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_c_wraps_and_accepts_null),
        cmocka_unit_test(test_str_eq_compares_bytes_and_lengths),
        cmocka_unit_test(test_strerror_has_a_distinct_text_for_every_code),
        cmocka_unit_test(test_fmt_truncates_and_terminates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
