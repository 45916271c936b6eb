/* The shared string helpers (str.c): views, the error table, bounded
 * formatting, quoted fields. */
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

/* The table's rows, as sess.h lists them: every code has its name, and
 * the statuses a route and a command end with. */
static void
test_error_table_names_every_code_with_its_statuses(void **state)
{
    static const struct {
        enum sess_err err;
        const char *name;
        int http, exit;
    } rows[] = {
        {SESS_OK, "SESS_OK", 200, 0},
        {SESS_ENOTFOUND, "SESS_ENOTFOUND", 404, 1},
        {SESS_EBADINPUT, "SESS_EBADINPUT", 400, SESS_EXIT_DATAERR},
        {SESS_ETOOBIG, "SESS_ETOOBIG", 413, SESS_EXIT_SOFTWARE},
        {SESS_EFORBIDDEN, "SESS_EFORBIDDEN", 403, SESS_EXIT_SOFTWARE},
        {SESS_ETHROTTLED, "SESS_ETHROTTLED", 429, SESS_EXIT_SOFTWARE},
        {SESS_ECONFIG, "SESS_ECONFIG", 500, SESS_EXIT_CONFIG},
        {SESS_ENOMEM, "SESS_ENOMEM", 503, SESS_EXIT_SOFTWARE},
        {SESS_ECRYPTO, "SESS_ECRYPTO", 500, SESS_EXIT_SOFTWARE},
        {SESS_EEXISTS, "SESS_EEXISTS", 409, SESS_EXIT_DATAERR},
        {SESS_EFULL, "SESS_EFULL", 503, SESS_EXIT_TEMPFAIL},
        {SESS_ESTORE, "SESS_ESTORE", 503, SESS_EXIT_TEMPFAIL},
        {SESS_EUNAVAIL, "SESS_EUNAVAIL", 503, SESS_EXIT_TEMPFAIL},
        {SESS_ECONFLICT, "SESS_ECONFLICT", 503, SESS_EXIT_TEMPFAIL},
        {SESS_EIO, "SESS_EIO", 500, SESS_EXIT_IOERR},
    };

    (void)state;
    assert_int_equal(sizeof rows / sizeof rows[0], SESS_EIO + 1);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_string_equal(sess_err_name(rows[i].err), rows[i].name);
        assert_int_equal(sess_err_http_status(rows[i].err), rows[i].http);
        assert_int_equal(sess_err_exit_status(rows[i].err), rows[i].exit);
    }
    assert_string_equal(sess_err_name((enum sess_err)999), "SESS_E?");
    assert_int_equal(sess_err_http_status((enum sess_err)-1), 500);
    assert_int_equal(sess_err_exit_status((enum sess_err)999), SESS_EXIT_SOFTWARE);
}

/* Quoted fields of the log and of configuration errors: escapes, the cut
 * at `max` bytes or at the room left, and always a NUL. */
static void
test_escape_field_escapes_and_cuts(void **state)
{
    char out[32];
    size_t n = 0;

    (void)state;
    sess__escape_field(out, sizeof out, &n, "a\"b\\c\n\xff", SIZE_MAX);
    assert_string_equal(out, "a\\\"b\\\\c\\x0a\\xff");
    assert_int_equal(n, strlen(out));
    n = 0;
    sess__escape_field(out, sizeof out, &n, "abcdef", 3);
    assert_string_equal(out, "abc...");
    n = 0;
    sess__escape_field(out, 8, &n, "abcdefghijkl", SIZE_MAX);
    assert_true(n < 8);
    assert_int_equal(out[n], '\0');
    assert_memory_equal(out, "abc", 3);
    n = 2;
    memcpy(out, "x=", 2);
    sess__escape_field(out, sizeof out, &n, "", SIZE_MAX);
    assert_string_equal(out, "x=");
}

static void
test_fmt_truncates_and_terminates(void **state)
{
    char out[8];

    (void)state;
    memset(out, 'x', sizeof(out));
    sess__fmt(out, sizeof(out), "%s:%d", "sess.conf", 12);
    assert_string_equal(out, "sess.co");
    sess__fmt(out, sizeof(out), "%d", 42);
    assert_string_equal(out, "42");
    out[0] = 'x';
    sess__fmt(out, 1, "%s", "anything");
    assert_int_equal(out[0], '\0');
    sess__fmt(out, 0, "%s", "nothing written");
    sess__fmt(NULL, 0, "%s", "nothing written");
    assert_int_equal(out[0], '\0');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_c_wraps_and_accepts_null),
        cmocka_unit_test(test_str_eq_compares_bytes_and_lengths),
        cmocka_unit_test(test_strerror_has_a_distinct_text_for_every_code),
        cmocka_unit_test(test_error_table_names_every_code_with_its_statuses),
        cmocka_unit_test(test_escape_field_escapes_and_cuts),
        cmocka_unit_test(test_fmt_truncates_and_terminates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
