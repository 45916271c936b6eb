/* The LMDB store's environment (lib/store/lmdb/env.c): a full map met by a
 * purge, then growth, a size grown by one process kept by the next and
 * adopted by processes already open, and opening: the directory made
 * private, an unusable one named, encryption without a secret refused. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "lmdb_fixture.h"

/* ------------------------------------------------------------------------
 * A full map
 * ------------------------------------------------------------------------ */

static void
test_map_grows_when_full(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t later = T0 + 60 * MIN_MS;
    struct sess_store_stats stats;
    unsigned i;

    memset(data, 'x', sizeof data - 1);
    data[0] = '"';
    data[sizeof data - 2] = '"';
    data[sizeof data - 1] = '\0';
    for (i = 0; i < 600; i++) {
        make_id(id, i);
        create(f, id, later, "", data);
    }
    for (i = 0; i < 600; i++) {
        make_id(id, i);
        assert_int_equal(get(f, id, later - 1), SESS_OK);
        assert_int_equal(f->rec.data.len, sizeof data - 1);
    }
    assert_int_equal(f->st->ops->stats(f->st, later - 1, &stats), SESS_OK);
    assert_true(stats.map_size_bytes >= 600 * 1100);
    assert_int_equal(stats.sessions, 600);
}

/* Before the map grows, dead records make room. */
static void
test_full_map_purges_dead_records_before_growing(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t past = T0 - MIN_MS;
    struct sess_store_stats before, after;
    unsigned i;

    memset(data, 'x', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    assert_int_equal(f->st->ops->stats(f->st, past, &before), SESS_OK);
    for (i = 0; i < 300; i++) {
        make_id(id, i);
        create(f, id, past, "", data);
    }
    assert_int_equal(f->st->ops->stats(f->st, past, &after), SESS_OK);
    assert_int_equal(after.map_size_bytes, before.map_size_bytes);
    assert_true(after.sessions < 300);
}

static void
test_map_size_grown_by_one_process_is_kept_by_the_next(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t later = T0 + 60 * MIN_MS;
    struct sess_store_stats grown, reopened;
    unsigned i;

    memset(data, 'y', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    for (i = 0; i < 200; i++) {
        make_id(id, i);
        create(f, id, later, "", data);
    }
    assert_int_equal(f->st->ops->stats(f->st, later - 1, &grown), SESS_OK);
    assert_true(grown.map_size_bytes > f->cfg.lmdb_map_size_bytes);
    close_store(f);
    open_store(f);
    assert_int_equal(f->st->ops->stats(f->st, later - 1, &reopened), SESS_OK);
    assert_int_equal(reopened.map_size_bytes, grown.map_size_bytes);
}

static void
test_reopening_with_a_larger_map_size_takes_it(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store_stats stats;

    create(f, ID1, T0 + MIN_MS, "", "{}");
    close_store(f);
    f->cfg.lmdb_map_size_bytes = 4u << 20;
    open_store(f);
    assert_int_equal(f->st->ops->stats(f->st, T0, &stats), SESS_OK);
    assert_int_equal(stats.map_size_bytes, 4u << 20);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
}

/* Another process grows the map past ours: our next read and write meet
 * MDB_MAP_RESIZED and take the new size. The child never touches the
 * parent's environment; it opens its own after the fork. */
static void
test_map_grown_by_another_process_is_adopted(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1], data[1100];
    int64_t later = T0 + 60 * MIN_MS;
    pid_t pid;
    int status;
    unsigned i;

    create(f, ID1, later, "", "{}");
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    memset(data, 'z', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sess_store *st;
        char errmsg[SESS_ERRMSG_MAX];
        struct sess_record rec = record(later, 0, "", data);

        if (sess__store_lmdb_open(&st, f->store_dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg))
            _exit(2);
        for (i = 0; i < 300; i++) {
            make_id(id, i);
            if (st->ops->create(st, sess_str_c(id), T0, &rec) != SESS_OK)
                _exit(3);
        }
        sess__store_close(st);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    make_id(id, 299);
    assert_int_equal(get(f, id, T0), SESS_OK);
    assert_int_equal(f->rec.data.len, sizeof data - 1);
    create(f, ID2, later, "", data);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
}

/* ------------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------------ */

static void
test_open_creates_missing_directories_private(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = NULL;
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];
    struct stat sb;

    tmpdir_path(&f->dir, "a/b/c", dir);
    assert_int_equal(sess__store_lmdb_open(&st, dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    sess__store_close(st);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

static void
test_open_of_unusable_directory_names_it(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = NULL;
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];

    assert_int_equal(tmpdir_write_str(&f->dir, "file", "not a directory"), 0);
    tmpdir_path(&f->dir, "file/sessions", dir);
    assert_int_equal(sess__store_lmdb_open(&st, dir, &f->cfg, &f->secrets, errmsg, sizeof errmsg),
                     SESS_ECONFIG);
    assert_null(st);
    assert_non_null(strstr(errmsg, dir));
}

static void
test_open_with_encryption_and_no_secret_is_refused(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = NULL;
    struct sess_secrets none = {0};
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];

    tmpdir_path(&f->dir, "other", dir);
    assert_int_equal(sess__store_lmdb_open(&st, dir, &f->cfg, &none, errmsg, sizeof errmsg),
                     SESS_ECONFIG);
    assert_null(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name)    cmocka_unit_test_setup_teardown(name, setup, teardown)
#define TINY(name) cmocka_unit_test_setup_teardown(name, setup_tiny_map, teardown)
        TINY(test_map_grows_when_full),
        TINY(test_full_map_purges_dead_records_before_growing),
        TINY(test_map_size_grown_by_one_process_is_kept_by_the_next),
        TINY(test_map_grown_by_another_process_is_adopted),
        TINY(test_reopening_with_a_larger_map_size_takes_it),
        T(test_open_creates_missing_directories_private),
        T(test_open_of_unusable_directory_names_it),
        T(test_open_with_encryption_and_no_secret_is_refused),
#undef T
#undef TINY
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
