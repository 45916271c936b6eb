/* Unit tests for lib/template/watch.c: editors and deployments change
 * pages in more ways than writing in place (a rename over the page, a
 * release symlink swapped, html_dir replaced or made late), and each must
 * show on the next render, through inotify, or through stat() on every
 * render where inotify cannot be had. */
#include <dirent.h>
#include <sys/resource.h>

#include "template_test.h"

static void
make_dir(const struct fx *fx, const char *name)
{
    char path[PATH_MAX];

    assert_int_equal(mkdir(tmpdir_path(&fx->td, name, path), 0700), 0);
}

static void
make_link(const struct fx *fx, const char *target, const char *name)
{
    char path[PATH_MAX];

    assert_int_equal(symlink(target, tmpdir_path(&fx->td, name, path)), 0);
}

static void
rename_in(const struct fx *fx, const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];

    assert_int_equal(rename(tmpdir_path(&fx->td, from, a), tmpdir_path(&fx->td, to, b)), 0);
}

/* The inotify descriptors this process holds; `*cloexec` counts those that
 * a child would not inherit. */
static int
count_inotify_fds(int *cloexec)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[64], target[64];
    ssize_t n;
    int count = 0, fd;

    assert_non_null(d);
    *cloexec = 0;
    while ((e = readdir(d)) != NULL) {
        fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(d))
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, "anon_inode:inotify") != 0)
            continue;
        count++;
        if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
            (*cloexec)++;
    }
    closedir(d);
    return count;
}

/* Reopens the set on `sub`, a path inside the test's directory. */
static void
reopen_on(struct fx *fx, const char *sub)
{
    char dir[PATH_MAX];

    sess_templates_close(fx->tpl);
    fx->tpl = NULL;
    assert_int_equal(sess_templates_open(&fx->tpl, tmpdir_path(&fx->td, sub, dir)), SESS_OK);
}

/* Renders NAME twice, expecting WANT: the first render reads the files,
 * the second starts watching them, so what a test changes next is seen
 * through inotify (asserted: the set holds the process's one inotify
 * descriptor). */
static void
expect_watched(struct fx *fx, const char *name, const char *want)
{
    int cloexec;

    expect_render(fx, name, want);
    expect_render(fx, name, want);
    assert_int_equal(count_inotify_fds(&cloexec), 1);
}

/* ------------------------------------------------------- through inotify */

static void
test_edit_in_place_seen_at_once(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "p.html", "<!doctype html>one");
    expect_watched(fx, "p", "<!doctype html>one");
    /* Same size, no help from the clock. */
    put_file(fx, "p.html", "<!doctype html>two");
    expect_render(fx, "p", "<!doctype html>two");
}

static void
test_replace_by_rename_seen(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "layout.html", "[{{{content}}}]");
    put_file(fx, "p.html", "old");
    expect_watched(fx, "p", "[old]");
    put_file(fx, "p.html.swp", "new");
    rename_in(fx, "p.html.swp", "p.html");
    expect_render(fx, "p", "[new]");
    put_file(fx, "layout.tmp", "<{{{content}}}>");
    rename_in(fx, "layout.tmp", "layout.html");
    expect_render(fx, "p", "<new>");
}

static void
test_removed_page_is_not_found(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX];

    put_file(fx, "p.html", "<!doctype html>here");
    expect_watched(fx, "p", "<!doctype html>here");
    assert_int_equal(unlink(tmpdir_path(&fx->td, "p.html", path)), 0);
    assert_int_equal(render(fx, "p", "{}"), SESS_ENOTFOUND);
    put_file(fx, "p.html", "<!doctype html>back");
    expect_render(fx, "p", "<!doctype html>back");
}

/* html_dir as a symlink to the current release, swapped atomically as
 * deployment tools do (ln -sfn is a symlink and a rename). */
static void
test_symlinked_dir_swap_seen(void **state)
{
    struct fx *fx = *state;

    make_dir(fx, "v1");
    make_dir(fx, "v2");
    put_file(fx, "v1/p.html", "<!doctype html>v1");
    put_file(fx, "v2/p.html", "<!doctype html>v2");
    make_link(fx, "v1", "site");
    reopen_on(fx, "site");
    expect_watched(fx, "p", "<!doctype html>v1");
    make_link(fx, "v2", "site.new");
    rename_in(fx, "site.new", "site");
    expect_render(fx, "p", "<!doctype html>v2");
    /* The new release is watched from then on. */
    put_file(fx, "v2/p.html", "<!doctype html>V2");
    expect_render(fx, "p", "<!doctype html>V2");
}

/* A symlink higher up the path, as in /srv/app/current/html. */
static void
test_symlinked_parent_swap_seen(void **state)
{
    struct fx *fx = *state;

    make_dir(fx, "r1");
    make_dir(fx, "r1/html");
    make_dir(fx, "r2");
    make_dir(fx, "r2/html");
    put_file(fx, "r1/html/p.html", "<!doctype html>r1");
    put_file(fx, "r2/html/p.html", "<!doctype html>r2");
    make_link(fx, "r1", "current");
    reopen_on(fx, "current/./html/../html");
    expect_watched(fx, "p", "<!doctype html>r1");
    make_link(fx, "r2", "current.new");
    rename_in(fx, "current.new", "current");
    expect_render(fx, "p", "<!doctype html>r2");
}

/* A relative html_dir resolves from the working directory, ".." included,
 * and the symlink on the way is watched there. */
static void
test_relative_dir_watched(void **state)
{
    struct fx *fx = *state;

    make_dir(fx, "v1");
    make_dir(fx, "v2");
    put_file(fx, "v1/p.html", "<!doctype html>v1");
    put_file(fx, "v2/p.html", "<!doctype html>v2");
    make_link(fx, "v1", "site");
    assert_non_null(getcwd(fx->cwd, sizeof fx->cwd));
    assert_int_equal(chdir(fx->td.path), 0);
    sess_templates_close(fx->tpl);
    fx->tpl = NULL;
    assert_int_equal(sess_templates_open(&fx->tpl, "./site/../site/"), SESS_OK);
    expect_watched(fx, "p", "<!doctype html>v1");
    make_link(fx, "v2", "site.new");
    rename_in(fx, "site.new", "site");
    expect_render(fx, "p", "<!doctype html>v2");
}

static void
test_dir_replaced_seen(void **state)
{
    struct fx *fx = *state;

    make_dir(fx, "site");
    put_file(fx, "site/p.html", "<!doctype html>old");
    reopen_on(fx, "site");
    expect_watched(fx, "p", "<!doctype html>old");
    rename_in(fx, "site", "site.old");
    make_dir(fx, "site");
    put_file(fx, "site/p.html", "<!doctype html>new");
    expect_render(fx, "p", "<!doctype html>new");
    put_file(fx, "site/p.html", "<!doctype html>NEW");
    expect_render(fx, "p", "<!doctype html>NEW");
}

/* Nothing is watched before a page is there to watch. */
static void
test_dir_made_after_open(void **state)
{
    struct fx *fx = *state;

    reopen_on(fx, "later/html");
    assert_int_equal(render(fx, "p", "{}"), SESS_ENOTFOUND);
    assert_int_equal(render(fx, "p", "{}"), SESS_ENOTFOUND);
    make_dir(fx, "later");
    make_dir(fx, "later/html");
    put_file(fx, "later/html/p.html", "<!doctype html>a");
    expect_watched(fx, "p", "<!doctype html>a");
    put_file(fx, "later/html/p.html", "<!doctype html>b");
    expect_render(fx, "p", "<!doctype html>b");
}

/* While html_dir is gone, the watch waits where it would come back. */
static void
test_dir_removed_then_made_again(void **state)
{
    struct fx *fx = *state;

    make_dir(fx, "site");
    put_file(fx, "site/p.html", "<!doctype html>a");
    reopen_on(fx, "site");
    expect_watched(fx, "p", "<!doctype html>a");
    rename_in(fx, "site", "site.old");
    assert_int_equal(render(fx, "p", "{}"), SESS_ENOTFOUND);
    make_dir(fx, "site");
    put_file(fx, "site/p.html", "<!doctype html>b");
    expect_render(fx, "p", "<!doctype html>b");
    put_file(fx, "site/p.html", "<!doctype html>c");
    expect_render(fx, "p", "<!doctype html>c");
    /* Still through inotify, not fallen back to stat(). */
    expect_watched(fx, "p", "<!doctype html>c");
}

/* A page that is a symlink, or one of several hard links, can change
 * through a directory that is not watched. */
static void
test_linked_pages_edited_elsewhere_seen(void **state)
{
    struct fx *fx = *state;
    char a[PATH_MAX], b[PATH_MAX];

    make_dir(fx, "elsewhere");
    put_file(fx, "elsewhere/real.html", "<!doctype html>soft");
    make_link(fx, "elsewhere/real.html", "s.html");
    put_file(fx, "elsewhere/other.html", "<!doctype html>hard");
    assert_int_equal(
        link(tmpdir_path(&fx->td, "elsewhere/other.html", a), tmpdir_path(&fx->td, "h.html", b)),
        0);
    expect_watched(fx, "s", "<!doctype html>soft");
    expect_render(fx, "h", "<!doctype html>hard");
    expect_render(fx, "h", "<!doctype html>hard");
    put_file(fx, "elsewhere/real.html", "<!doctype html>soft, edited");
    put_file(fx, "elsewhere/other.html", "<!doctype html>hard, edited");
    expect_render(fx, "s", "<!doctype html>soft, edited");
    expect_render(fx, "h", "<!doctype html>hard, edited");
}

/* One descriptor per set, from the second render on (a plain CGI run
 * renders once), never inherited by a child, gone at close. */
static void
test_inotify_fd_cloexec_and_closed(void **state)
{
    struct fx *fx = *state;
    int cloexec;

    sess_templates_close(fx->tpl);
    fx->tpl = NULL;
    assert_int_equal(count_inotify_fds(&cloexec), 0);
    assert_int_equal(sess_templates_open(&fx->tpl, fx->td.path), SESS_OK);
    put_file(fx, "p.html", "<!doctype html>p");
    expect_render(fx, "p", "<!doctype html>p");
    assert_int_equal(count_inotify_fds(&cloexec), 0);
    expect_render(fx, "p", "<!doctype html>p");
    assert_int_equal(count_inotify_fds(&cloexec), 1);
    assert_int_equal(cloexec, 1);
    sess_templates_close(fx->tpl);
    fx->tpl = NULL;
    assert_int_equal(count_inotify_fds(&cloexec), 0);
}

/* -------------------------------------------------------- through stat() */

/* Opens the set on `dir` and renders `name` (giving `want`) until the set
 * would watch; that render runs with no descriptor to spare, so
 * inotify_init1 fails as it does past fs.inotify.max_user_instances, and
 * the set stays on stat() for good. */
static void
open_without_inotify(struct fx *fx, const char *dir, const char *name, const char *want)
{
    struct rlimit old, low;
    int cloexec, lowest;

    sess_templates_close(fx->tpl);
    fx->tpl = NULL;
    assert_int_equal(sess_templates_open(&fx->tpl, dir), SESS_OK);
    expect_render(fx, name, want);
    lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(lowest >= 0);
    close(lowest);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)lowest;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* The pages cannot be read either: an error, this once. */
    assert_int_not_equal(render(fx, name, "{}"), SESS_OK);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(count_inotify_fds(&cloexec), 0);
    expect_render(fx, name, want);
    assert_int_equal(count_inotify_fds(&cloexec), 0);
}

static void
test_stat_fallback_sees_edits(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "p.html", "<!doctype html>first");
    open_without_inotify(fx, fx->td.path, "p", "<!doctype html>first");
    /* Same size, later mtime: only the stat() tells them apart. */
    put_file(fx, "p.html", "<!doctype html>again");
    shift_mtime(fx, "p.html", 10);
    expect_render(fx, "p", "<!doctype html>again");
    put_file(fx, "p.html.swp", "<!doctype html>renamed");
    rename_in(fx, "p.html.swp", "p.html");
    expect_render(fx, "p", "<!doctype html>renamed");
    put_file(fx, "part.html", "old");
    put_file(fx, "q.html", "<!doctype html>[{{>part}}]");
    expect_render(fx, "q", "<!doctype html>[old]");
    put_file(fx, "part.html", "new");
    shift_mtime(fx, "part.html", 10);
    expect_render(fx, "q", "<!doctype html>[new]");
}

static void
test_stat_fallback_sees_symlink_swap(void **state)
{
    struct fx *fx = *state;
    char dir[PATH_MAX];

    make_dir(fx, "v1");
    make_dir(fx, "v2");
    put_file(fx, "v1/p.html", "<!doctype html>v1");
    put_file(fx, "v2/p.html", "<!doctype html>v2");
    make_link(fx, "v1", "site");
    open_without_inotify(fx, tmpdir_path(&fx->td, "site", dir), "p", "<!doctype html>v1");
    make_link(fx, "v2", "site.new");
    rename_in(fx, "site.new", "site");
    expect_render(fx, "p", "<!doctype html>v2");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_edit_in_place_seen_at_once),
        T(test_replace_by_rename_seen),
        T(test_removed_page_is_not_found),
        T(test_symlinked_dir_swap_seen),
        T(test_symlinked_parent_swap_seen),
        T(test_relative_dir_watched),
        T(test_dir_replaced_seen),
        T(test_dir_made_after_open),
        T(test_dir_removed_then_made_again),
        T(test_linked_pages_edited_elsewhere_seen),
        T(test_inotify_fd_cloexec_and_closed),
        T(test_stat_fallback_sees_edits),
        T(test_stat_fallback_sees_symlink_swap),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
