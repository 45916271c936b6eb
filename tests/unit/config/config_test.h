/* What the unit tests of lib/config/ share: a directory with a
 * configuration file in it (struct fixture, setup, teardown), loading a
 * text as that file, and the exact "FILE:LINE: ..." a failed load gives. */
#ifndef TESTS_CONFIG_TEST_H
#define TESTS_CONFIG_TEST_H

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "tmpfiles.h"

/* A directory with a configuration file in it, loaded. */
struct fixture {
    struct tmpdir dir;
    char real_dir[PATH_MAX]; /* realpath of dir: what relative paths resolve to */
    char conf[PATH_MAX];     /* the file's path as given to sess_config_load */
    struct sess_config cfg;
    char msg[SESS_ERRMSG_MAX];
};

static inline int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || tmpdir_make(&f->dir) != 0 || realpath(f->dir.path, f->real_dir) == NULL)
        return -1;
    tmpdir_path(&f->dir, "sess.conf", f->conf);
    *state = f;
    return 0;
}

static inline int
teardown(void **state)
{
    struct fixture *f = *state;

    sess_config_free(&f->cfg);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

static inline enum sess_err
load(struct fixture *f, const char *text)
{
    sess_config_free(&f->cfg);
    f->msg[0] = '\0';
    assert_int_equal(tmpdir_write_str(&f->dir, "sess.conf", text), 0);
    return sess_config_load(&f->cfg, f->conf, f->msg, sizeof(f->msg));
}

/* Loads `secret_file = s` followed by `text`. */
static inline enum sess_err
load_with_secret(struct fixture *f, const char *text)
{
    char full[4096];

    snprintf(full, sizeof(full), "secret_file = secret\n%s", text);
    return load(f, full);
}

/* Asserts that loading fails with "CONF:" + `tail`. */
static inline void
assert_load_error(struct fixture *f, const char *text, const char *tail)
{
    char want[SESS_ERRMSG_MAX + PATH_MAX];

    assert_int_equal(load(f, text), SESS_ECONFIG);
    snprintf(want, sizeof(want), "%s:%s", f->conf, tail);
    assert_string_equal(f->msg, want);
    /* A failed load leaves nothing to free. */
    assert_null(f->cfg.name);
    assert_null(f->cfg.path);
}

static inline void
assert_path(struct fixture *f, const char *got, const char *prefix, const char *rel)
{
    char want[PATH_MAX + 64];

    snprintf(want, sizeof(want), "%s%s/%s", prefix, f->real_dir, rel);
    assert_string_equal(got, want);
}

#endif
