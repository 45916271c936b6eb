/* Unit tests for lib/template/cache.c: opening a set, finding a page by a
 * safe name, and reading a page again once it changed (here through its
 * mtime, before any watch is up: the first render of a set has none).
 * Changes seen through inotify are test_template_watch.c's. */
#include <errno.h>

#include "template_test.h"

/* ----------------------------------------------------------------- files */

static void
test_missing_page_is_not_found(void **state)
{
    struct fx *fx = *state;
    char want[SESS_ERRMSG_MAX];

    assert_int_equal(render(fx, "nope", "{}"), SESS_ENOTFOUND);
    snprintf(want, sizeof want, "%s/nope.html: %s", fx->td.path, strerror(ENOENT));
    assert_string_equal(fx->errmsg, want);
}

static void
test_bad_page_names_refused(void **state)
{
    static const char *const names[] = {
        "../p",
        "..",
        "/etc/passwd",
        "a/b",
        "",
        "P",
        ".p",
        "p.html",
        "p ",
        "p%2e",
        "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp1", /* 65 */
    };
    struct fx *fx = *state;
    size_t i;

    put_file(fx, "p.html", "<!doctype html>");
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(render(fx, names[i], "{}"), SESS_EBADINPUT);
    assert_int_equal(render(fx, NULL, "{}"), SESS_EBADINPUT);
    /* The same rule holds for partials, at compile time. */
    expect_error(fx, "{{>../p}}", SESS_EBADINPUT,
                 "p.html:1: bad tag {{>../p}} (names are a-z 0-9 _ -)");
}

static void
test_reload_after_mtime_change(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "p.html", "<!doctype html>first");
    assert_int_equal(render(fx, "p", "{}"), SESS_OK);
    assert_string_equal(fx->out, "<!doctype html>first");
    /* Same size, later mtime: only the stat() tells them apart. */
    put_file(fx, "p.html", "<!doctype html>again");
    shift_mtime(fx, "p.html", 10);
    assert_int_equal(render(fx, "p", "{}"), SESS_OK);
    assert_string_equal(fx->out, "<!doctype html>again");
}

static void
test_broken_edit_then_fixed(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "p.html", "<!doctype html>ok");
    assert_int_equal(render(fx, "p", "{}"), SESS_OK);
    put_file(fx, "p.html", "<!doctype html>{{#a}}");
    shift_mtime(fx, "p.html", 10);
    assert_int_equal(render(fx, "p", "{}"), SESS_EBADINPUT);
    put_file(fx, "p.html", "<!doctype html>ok again");
    shift_mtime(fx, "p.html", 20);
    assert_int_equal(render(fx, "p", "{}"), SESS_OK);
    assert_string_equal(fx->out, "<!doctype html>ok again");
}

static void
test_partial_reloaded_after_change(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "part.html", "old");
    expect_page(fx, "[{{>part}}]", "{}", "[old]");
    put_file(fx, "part.html", "new");
    shift_mtime(fx, "part.html", 10);
    assert_int_equal(render(fx, "p", "{}"), SESS_OK);
    assert_string_equal(fx->out, "<!doctype x>[new]");
}

static void
test_open_refuses_bad_dirs(void **state)
{
    static char sentinel;
    struct sess_templates *tpl = (struct sess_templates *)&sentinel;
    char longdir[PATH_MAX + 2];

    (void)state;
    assert_int_equal(sess_templates_open(&tpl, ""), SESS_EBADINPUT);
    assert_null(tpl);
    memset(longdir, 'd', sizeof longdir - 1);
    longdir[sizeof longdir - 1] = '\0';
    tpl = (struct sess_templates *)&sentinel;
    assert_int_equal(sess_templates_open(&tpl, longdir), SESS_ETOOBIG);
    assert_null(tpl);
    sess_templates_close(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_partial_reloaded_after_change), T(test_missing_page_is_not_found),
        T(test_bad_page_names_refused),        T(test_reload_after_mtime_change),
        T(test_broken_edit_then_fixed),        cmocka_unit_test(test_open_refuses_bad_dirs),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
