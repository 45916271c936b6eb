/* What the unit tests of lib/template/ share: a fresh mkdtemp() directory
 * with a template set open on it (struct fx, setup, teardown), writing
 * pages, and rendering one with the exact output or error expected. */
#ifndef TESTS_TEMPLATE_TEST_H
#define TESTS_TEMPLATE_TEST_H

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "sess_util.h"
#include "tmpfiles.h"

struct fx {
    struct tmpdir td;
    struct sess_templates *tpl;
    char *out;
    size_t out_len;
    size_t out_cap;
    char errmsg[SESS_ERRMSG_MAX];
    char cwd[PATH_MAX]; /* to go back to, when a test moved */
};

static inline void
put_file(const struct fx *fx, const char *name, const char *text)
{
    assert_int_equal(tmpdir_write_str(&fx->td, name, text), 0);
}

/* Moves a file's mtime by `delta_s`, as an editor saving later would. */
static inline void
shift_mtime(const struct fx *fx, const char *name, time_t delta_s)
{
    char path[PATH_MAX];
    struct stat st;
    struct timespec times[2];

    tmpdir_path(&fx->td, name, path);
    assert_int_equal(stat(path, &st), 0);
    times[0] = st.st_atim;
    times[1] = st.st_mtim;
    times[1].tv_sec += delta_s;
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static inline int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);

    assert_non_null(fx);
    assert_int_equal(tmpdir_make(&fx->td), 0);
    assert_int_equal(sess_templates_open(&fx->tpl, fx->td.path), SESS_OK);
    *state = fx;
    return 0;
}

static inline int
teardown(void **state)
{
    struct fx *fx = *state;

    if (fx->cwd[0])
        assert_int_equal(chdir(fx->cwd), 0);
    sess_templates_close(fx->tpl);
    tmpdir_remove(&fx->td);
    free(fx->out);
    free(fx);
    return 0;
}

/* Renders into a fresh output; `vars_json` NULL renders without vars. */
static inline enum sess_err
render(struct fx *fx, const char *name, const char *vars_json)
{
    json_t *vars = NULL;
    json_error_t jerr;
    enum sess_err err;

    if (vars_json) {
        vars = json_loads(vars_json, 0, &jerr);
        assert_non_null(vars);
    }
    fx->out_len = 0;
    if (fx->out)
        fx->out[0] = '\0';
    fx->errmsg[0] = '\0';
    err = sess_templates_render(fx->tpl, name, vars, &fx->out, &fx->out_len, &fx->out_cap,
                                fx->errmsg, sizeof fx->errmsg);
    json_decref(vars);
    return err;
}

/* Writes p.html (a doctype page, so no layout is involved), renders it and
 * checks the exact output. */
static inline void
expect_page(struct fx *fx, const char *page, const char *vars_json, const char *want)
{
    char text[4096];

    snprintf(text, sizeof text, "<!doctype x>%s", page);
    put_file(fx, "p.html", text);
    assert_int_equal(render(fx, "p", vars_json), SESS_OK);
    assert_string_equal(fx->out + strlen("<!doctype x>"), want);
    assert_int_equal(fx->out_len, strlen(fx->out));
}

static inline void
expect_error(struct fx *fx, const char *page, enum sess_err want_err, const char *want_msg)
{
    char text[4096];
    /* Room for the directory too: inlined, the compiler sees that a
     * message as long as the library's could not fit after it. */
    char msg[sizeof fx->td.path + SESS_ERRMSG_MAX];

    snprintf(text, sizeof text, "<!doctype x>%s", page);
    put_file(fx, "p.html", text);
    assert_int_equal(render(fx, "p", "{}"), want_err);
    snprintf(msg, sizeof msg, "%s/%s", fx->td.path, want_msg);
    assert_string_equal(fx->errmsg, msg);
    assert_int_equal(fx->out_len, 0);
}

static inline void
expect_render(struct fx *fx, const char *name, const char *want)
{
    assert_int_equal(render(fx, name, "{}"), SESS_OK);
    assert_string_equal(fx->out, want);
}

#endif
