/* Unit tests for template.c: escaping, the Mustache subset, layout wrapping,
 * reloading edited files (through inotify, and through stat() where inotify
 * cannot be had), the errors a page author sees, and the demo pages in html/
 * themselves. Each test works in its own mkdtemp() directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "sess.h"
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

static void
put_file(const struct fx *fx, const char *name, const char *text)
{
    assert_int_equal(tmpdir_write_str(&fx->td, name, text), 0);
}

/* Moves a file's mtime by `delta_s`, as an editor saving later would. */
static void
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

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);

    assert_non_null(fx);
    assert_int_equal(tmpdir_make(&fx->td), 0);
    assert_int_equal(sess_templates_open(&fx->tpl, fx->td.path), SESS_OK);
    *state = fx;
    return 0;
}

static int
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
static enum sess_err
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
static void
expect_page(struct fx *fx, const char *page, const char *vars_json, const char *want)
{
    char text[4096];

    snprintf(text, sizeof text, "<!doctype x>%s", page);
    put_file(fx, "p.html", text);
    assert_int_equal(render(fx, "p", vars_json), SESS_OK);
    assert_string_equal(fx->out + strlen("<!doctype x>"), want);
    assert_int_equal(fx->out_len, strlen(fx->out));
}

static void
expect_error(struct fx *fx, const char *page, enum sess_err want_err, const char *want_msg)
{
    char text[4096];
    char msg[SESS_ERRMSG_MAX];

    snprintf(text, sizeof text, "<!doctype x>%s", page);
    put_file(fx, "p.html", text);
    assert_int_equal(render(fx, "p", "{}"), want_err);
    snprintf(msg, sizeof msg, "%s/%s", fx->td.path, want_msg);
    assert_string_equal(fx->errmsg, msg);
    assert_int_equal(fx->out_len, 0);
}

/* ---------------------------------------------------------------- escape */

static void
test_escape_every_special_char(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"&", "&amp;"},
        {"<", "&lt;"},
        {">", "&gt;"},
        {"\"", "&quot;"},
        {"'", "&#39;"},
        {"`", "&#96;"},
        {"a&b<c>d\"e'f`g", "a&amp;b&lt;c&gt;d&quot;e&#39;f&#96;g"},
        {"&amp;", "&amp;amp;"},
        {"", ""},
        {"plain text = 1 + 2; {} [] / \\", "plain text = 1 + 2; {} [] / \\"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        size_t len = 0, cap = 0;

        assert_int_equal(sess_html_escape(sess_str_c(cases[i].in), &out, &len, &cap), SESS_OK);
        assert_int_equal(len, strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, len);
        free(out);
    }
}

static void
test_escape_passes_utf8_and_control_bytes(void **state)
{
    static const char in[] = "h\xC3\xA9llo \xE2\x9C\x93 \xE6\x97\xA5\xF0\x9F\x98\x80\t\n";
    char *out = NULL;
    size_t len = 0, cap = 0;

    (void)state;
    assert_int_equal(sess_html_escape(SESS_STR_LIT(in), &out, &len, &cap), SESS_OK);
    assert_int_equal(len, sizeof in - 1);
    assert_memory_equal(out, in, len);
    free(out);
}

static void
test_escape_appends_and_keeps_nul(void **state)
{
    char *out = strdup("x=");
    size_t len = 2, cap = 3;
    struct sess_str nul_in = {"a\0<", 3};

    (void)state;
    assert_non_null(out);
    assert_int_equal(sess_html_escape(SESS_STR_LIT("<b>"), &out, &len, &cap), SESS_OK);
    assert_string_equal(out, "x=&lt;b&gt;");
    /* A NUL byte inside is data, copied as is. */
    assert_int_equal(sess_html_escape(nul_in, &out, &len, &cap), SESS_OK);
    assert_int_equal(len, 11 + 6);
    assert_memory_equal(out + 11, "a\0&lt;", 6);
    assert_int_equal(out[len], '\0');
    free(out);
}

/* ------------------------------------------------------------- variables */

static void
test_var_is_escaped_and_triple_is_raw(void **state)
{
    expect_page(*state, "{{v}}|{{{v}}}|{{&v}}|{{ v }}", "{\"v\":\"<a href='x'>&</a>\"}",
                "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;|<a href='x'>&</a>|<a href='x'>&</a>|"
                "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
}

static void
test_dotted_names_descend_objects(void **state)
{
    expect_page(*state, "[{{user.name}}][{{user.address.city}}][{{user.none.x}}][{{none.x}}]",
                "{\"user\":{\"name\":\"ann\",\"address\":{\"city\":\"Lyon\"}}}", "[ann][Lyon][][]");
}

static void
test_scalars_print_like_json(void **state)
{
    expect_page(*state,
                "{{i}} {{neg}} {{big}} {{r}} {{tenth}} {{whole}} {{t}} {{f}} [{{n}}] [{{o}}] "
                "[{{a}}] [{{missing}}]",
                "{\"i\":42,\"neg\":-7,\"big\":9007199254740993,\"r\":1.5,\"tenth\":0.1,"
                "\"whole\":2.0,\"t\":true,\"f\":false,\"n\":null,\"o\":{\"k\":1},\"a\":[1,2]}",
                "42 -7 9007199254740993 1.5 0.1 2 true false [] [] [] []");
}

static void
test_null_vars_render_empty(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "p.html", "<!DOCTYPE html>[{{a}}]{{#a}}x{{/a}}{{^a}}y{{/a}}");
    assert_int_equal(render(fx, "p", NULL), SESS_OK);
    assert_string_equal(fx->out, "<!DOCTYPE html>[]y");
}

/* -------------------------------------------------------------- sections */

static void
test_section_truthiness(void **state)
{
    static const struct {
        const char *value;
        bool is_truthy;
    } cases[] = {
        {"\"x\"", true},     {"\"\"", false}, {"1", true},    {"0", false},     {"-1", true},
        {"0.5", true},       {"0.0", false},  {"true", true}, {"false", false}, {"null", false},
        {"{\"k\":0}", true}, {"{}", false},   {"[0]", true},  {"[]", false},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char vars[64];

        snprintf(vars, sizeof vars, "{\"v\":%s}", cases[i].value);
        expect_page(*state, "{{#v}}yes{{/v}}{{^v}}no{{/v}}", vars,
                    cases[i].is_truthy ? "yes" : "no");
    }
    expect_page(*state, "{{#absent}}yes{{/absent}}{{^absent}}no{{/absent}}", "{}", "no");
}

static void
test_nested_sections_resolve_inner_first(void **state)
{
    expect_page(*state, "{{#a}}{{x}}{{#b}}:{{x}}{{y}}{{z}}{{a.x}}{{/b}}{{/a}}",
                "{\"x\":\"root\",\"y\":\"Y\",\"z\":\"Z\","
                "\"a\":{\"x\":\"A\",\"b\":{\"x\":\"B\",\"y\":\"b\"}}}",
                "A:BbZA");
}

static void
test_section_over_array_repeats(void **state)
{
    expect_page(*state, "{{#list}}<{{.}}>{{/list}}|{{#people}}{{name}}@{{site}};{{/people}}",
                "{\"list\":[\"a\",1,true,\"<\"],\"site\":\"s\","
                "\"people\":[{\"name\":\"x\"},{\"name\":\"y\",\"site\":\"t\"}]}",
                "<a><1><true><&lt;>|x@s;y@t;");
}

static void
test_inverted_section_shows_when_falsy(void **state)
{
    expect_page(*state, "{{^user}}guest{{/user}}{{^user.name}}, no name{{/user.name}}",
                "{\"user\":{\"role\":\"r\"}}", ", no name");
}

static void
test_standalone_tags_take_their_line(void **state)
{
    expect_page(*state,
                "\n{{! a comment\n  over two lines }}\n<ul>\n  {{#items}}\n  <li>{{.}}</li>\n"
                "  {{/items}}\n</ul>\n{{v}} {{! inline }}x\n",
                "{\"items\":[1,2],\"v\":\"V\"}",
                "\n<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\nV x\n");
}

static void
test_crlf_standalone_lines(void **state)
{
    expect_page(*state, "\r\n{{#t}}\r\nyes\r\n{{/t}}\r\nend", "{\"t\":true}", "\r\nyes\r\nend");
}

/* -------------------------------------------------------------- partials */

static void
test_partial_sees_the_context(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "item_row.html", "<{{name}}:{{title}}>");
    expect_page(fx, "{{#items}}{{> item_row }}{{/items}}",
                "{\"title\":\"T\",\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}]}", "<a:T><b:T>");
}

static void
test_partial_chain_depth_limit(void **state)
{
    struct fx *fx = *state;
    char name[32], text[64];
    int i;

    /* The page includes p0, p0 includes p1 ... p6 includes p7: eight
     * levels, allowed. */
    for (i = 0; i < 7; i++) {
        snprintf(name, sizeof name, "p%d.html", i);
        snprintf(text, sizeof text, "%d{{>p%d}}", i, i + 1);
        put_file(fx, name, text);
    }
    put_file(fx, "p7.html", "7");
    expect_page(fx, "{{>p0}}", "{}", "01234567");

    /* A ninth is refused. */
    put_file(fx, "p7.html", "7{{>p8}}");
    shift_mtime(fx, "p7.html", 10);
    put_file(fx, "p8.html", "8");
    expect_error(fx, "{{>p0}}", SESS_EBADINPUT,
                 "p7.html:1: partials nested deeper than 8 at {{>p8}}");
}

static void
test_recursive_partial_refused(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "loop.html", "x{{>loop}}");
    expect_error(fx, "{{>loop}}", SESS_EBADINPUT,
                 "loop.html:1: partials nested deeper than 8 at {{>loop}}");
}

static void
test_unknown_partial_is_not_found(void **state)
{
    struct fx *fx = *state;
    char want[SESS_ERRMSG_MAX];

    snprintf(want, sizeof want, "p.html:2: unknown partial (no %s/nope.html) at {{>nope}}",
             fx->td.path);
    expect_error(fx, "a\n{{>nope}}", SESS_ENOTFOUND, want);
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

/* ---------------------------------------------------------------- layout */

static void
test_layout_wraps_page(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "layout.html",
             "<!doctype html><title>{{title}}</title>{{#user}}[{{user.username}}]{{/user}}"
             "<main>{{{content}}}</main>|{{content}}");
    put_file(fx, "page.html", "{{! page }}\n<p>{{title}} & {{content}}</p>\n");
    assert_int_equal(render(fx, "page",
                            "{\"title\":\"T<\",\"user\":{\"username\":\"ann\"},"
                            "\"content\":\"from vars\"}"),
                     SESS_OK);
    /* The page's own {{content}} is the caller's var; the layout's is the
     * page output, which overrides it. */
    assert_string_equal(fx->out, "<!doctype html><title>T&lt;</title>[ann]"
                                 "<main><p>T&lt; & from vars</p>\n</main>|"
                                 "&lt;p&gt;T&amp;lt; &amp; from vars&lt;/p&gt;\n");
}

static void
test_doctype_page_not_wrapped(void **state)
{
    static const char *const pages[] = {
        "<!doctype html>x",
        "<!DOCTYPE html>x",
        "<!DocType html>x",
        "{{! c }}\n  \n<!doctype html>x",
    };
    struct fx *fx = *state;
    size_t i;

    put_file(fx, "layout.html", "LAYOUT{{{content}}}");
    for (i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        put_file(fx, "p.html", pages[i]);
        assert_int_equal(render(fx, "p", "{}"), SESS_OK);
        assert_null(strstr(fx->out, "LAYOUT"));
        assert_non_null(strstr(fx->out, "html>x"));
    }
    put_file(fx, "p.html", "<!doctyp html>x");
    assert_int_equal(render(fx, "p", "{}"), SESS_OK);
    assert_string_equal(fx->out, "LAYOUT<!doctyp html>x");
}

static void
test_missing_layout_is_not_found(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "p.html", "<p>no doctype</p>");
    assert_int_equal(render(fx, "p", "{}"), SESS_ENOTFOUND);
    assert_non_null(strstr(fx->errmsg, "/layout.html"));
    assert_int_equal(fx->out_len, 0);
}

/* ---------------------------------------------------------------- files */

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

/* Editors and deployments change pages in more ways than writing in place;
 * each must show on the next render. */

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

static void
expect_render(struct fx *fx, const char *name, const char *want)
{
    assert_int_equal(render(fx, name, "{}"), SESS_OK);
    assert_string_equal(fx->out, want);
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

/* ---------------------------------------------------------------- errors */

static void
test_syntax_errors_name_file_and_line(void **state)
{
    static const struct {
        const char *page, *msg;
        enum sess_err err;
    } cases[] = {
        {"a\nb\n{{#error}}\nc\n", "p.html:3: unclosed section {{#error}}", SESS_EBADINPUT},
        {"\n{{^a}}{{#b}}{{/b}}", "p.html:2: unclosed section {{^a}}", SESS_EBADINPUT},
        {"a\n\nb {{name\n", "p.html:3: unclosed tag {{name?", SESS_EBADINPUT},
        {"{{{raw}}", "p.html:1: unclosed tag {{{raw}}", SESS_EBADINPUT},
        {"{{#a}}\n{{#b}}\n{{/a}}", "p.html:3: {{/a}} closes {{#b}} from line 2", SESS_EBADINPUT},
        {"x\n{{/a}}", "p.html:2: {{/a}} closes no open section", SESS_EBADINPUT},
        {"{{a b}}", "p.html:1: bad tag {{a b}} (names are a.b.c of A-Z a-z 0-9 _ -, or \".\")",
         SESS_EBADINPUT},
        {"{{a..b}}", "p.html:1: bad tag {{a..b}} (names are a.b.c of A-Z a-z 0-9 _ -, or \".\")",
         SESS_EBADINPUT},
        {"{{}}", "p.html:1: bad tag {{}} (names are a.b.c of A-Z a-z 0-9 _ -, or \".\")",
         SESS_EBADINPUT},
        {"{{=<% %>=}}", "p.html:1: custom delimiters {{=<% %>=}} are not supported",
         SESS_EBADINPUT},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(*state, cases[i].page, cases[i].err, cases[i].msg);
}

static void
test_nesting_depth_bounded(void **state)
{
    char page[1024] = "";
    int i;

    for (i = 0; i < 33; i++)
        strcat(page, "{{#a}}");
    expect_error(*state, page, SESS_EBADINPUT,
                 "p.html:1: sections nested deeper than 32 at {{#a}}");
}

static void
test_output_bounded(void **state)
{
    struct fx *fx = *state;
    json_t *vars = json_object();
    json_t *list = json_array();
    char *big = malloc(1 << 20);
    int i;

    assert_non_null(big);
    memset(big, 'x', 1 << 20);
    assert_int_equal(json_object_set_new(vars, "big", json_stringn(big, 1 << 20)), 0);
    for (i = 0; i < 9; i++)
        assert_int_equal(json_array_append_new(list, json_true()), 0);
    assert_int_equal(json_object_set_new(vars, "list", list), 0);
    free(big);

    put_file(fx, "p.html", "<!doctype html>{{#list}}{{big}}{{/list}}");
    fx->out_len = 0;
    assert_int_equal(sess_templates_render(fx->tpl, "p", vars, &fx->out, &fx->out_len, &fx->out_cap,
                                           fx->errmsg, sizeof fx->errmsg),
                     SESS_ETOOBIG);
    assert_non_null(strstr(fx->errmsg, "output over"));
    assert_int_equal(fx->out_len, 0);
    json_decref(vars);
}

static void
test_error_leaves_output_unchanged(void **state)
{
    struct fx *fx = *state;

    fx->out = strdup("kept");
    assert_non_null(fx->out);
    fx->out_len = 4;
    fx->out_cap = 5;
    put_file(fx, "p.html", "<!doctype html>lots of output first{{>missing}}");
    assert_int_equal(sess_templates_render(fx->tpl, "p", NULL, &fx->out, &fx->out_len, &fx->out_cap,
                                           fx->errmsg, sizeof fx->errmsg),
                     SESS_ENOTFOUND);
    assert_int_equal(fx->out_len, 4);
    assert_string_equal(fx->out, "kept");
    /* And a success appends. */
    put_file(fx, "q.html", "<!doctype html>!");
    assert_int_equal(sess_templates_render(fx->tpl, "q", NULL, &fx->out, &fx->out_len, &fx->out_cap,
                                           fx->errmsg, sizeof fx->errmsg),
                     SESS_OK);
    assert_string_equal(fx->out, "kept<!doctype html>!");
}

static void
test_empty_output_is_nul_terminated(void **state)
{
    struct fx *fx = *state;

    put_file(fx, "layout.html", "{{{content}}}");
    put_file(fx, "p.html", "{{! nothing }}");
    assert_null(fx->out);
    assert_int_equal(render(fx, "p", "{}"), SESS_OK);
    assert_int_equal(fx->out_len, 0);
    assert_non_null(fx->out);
    assert_int_equal(fx->out[0], '\0');
    assert_string_equal(fx->errmsg, "");
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

/* ------------------------------------------------------ the demo pages */

static const char *const demo_pages[] = {
    "index", "login", "profile", "dashboard", "logout", "prefs", "error", "devices", "password",
};

static void
open_demo(struct fx *fx)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    struct stat st;

    /* tests/unit/test_template.c -> html/ at the top of the tree, relative
     * to where it was compiled; ./html when that is not here. */
    snprintf(dir, sizeof dir, "%.*s/../../html", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    if (stat(dir, &st) != 0)
        snprintf(dir, sizeof dir, "html");
    sess_templates_close(fx->tpl);
    assert_int_equal(sess_templates_open(&fx->tpl, dir), SESS_OK);
}

static void
test_demo_pages_render(void **state)
{
    static const char vars[] =
        "{\"title\":\"Page\",\"csrf\":\"tok.en\",\"theme\":\"dark\",\"lang\":\"fr\","
        "\"user\":{\"username\":\"alice\",\"role\":\"admin\"},"
        "\"expires\":\"2026-11-22T18:30:00.000Z\",\"theme_dark\":true,\"lang_fr\":true,"
        "\"status\":404,\"msg\":\"Not found\",\"error\":\"Bad credentials\","
        "\"username\":\"alice\"}";
    struct fx *fx = *state;
    size_t i;

    open_demo(fx);
    for (i = 0; i < sizeof demo_pages / sizeof demo_pages[0]; i++) {
        assert_int_equal(render(fx, demo_pages[i], vars), SESS_OK);
        assert_non_null(strstr(fx->out, "<!doctype html>"));
        assert_non_null(strstr(fx->out, "<html lang=\"fr\" data-theme=\"dark\">"));
        assert_non_null(strstr(fx->out, "<title>Page · fcgi-session</title>"));
        assert_non_null(strstr(fx->out, "<style>"));
        assert_non_null(strstr(fx->out, "href=\"/logout\">Log out</a>"));
        assert_null(strstr(fx->out, "href=\"/login\">Log in</a>"));
        assert_null(strstr(fx->out, "{{"));
        assert_null(strstr(fx->out, "}}"));
    }
    assert_int_equal(render(fx, "index", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "Welcome back, alice"));
    assert_int_equal(render(fx, "profile", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "Hello alice"));
    assert_null(strstr(fx->out, "not logged in"));
    assert_int_equal(render(fx, "dashboard", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "alice"));
    assert_non_null(strstr(fx->out, "admin"));
    assert_non_null(strstr(fx->out, "2026-11-22T18:30:00.000Z"));
    assert_non_null(strstr(fx->out, "<option value=\"dark\" selected>"));
    assert_non_null(strstr(fx->out, "<option value=\"fr\" lang=\"fr\" selected>"));
    assert_null(strstr(fx->out, "<option value=\"light\" selected>"));
    assert_non_null(strstr(fx->out, "name=\"csrf\" value=\"tok.en\""));
    assert_int_equal(render(fx, "login", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "<p class=\"error\" role=\"alert\">Bad credentials</p>"));
    assert_non_null(strstr(fx->out, "name=\"username\" value=\"alice\""));
    assert_non_null(strstr(fx->out, "name=\"password\""));
    assert_non_null(strstr(fx->out, "action=\"/login\""));
    assert_int_equal(render(fx, "error", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "404"));
    assert_non_null(strstr(fx->out, "Not found"));
    assert_int_equal(render(fx, "prefs", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "Theme: dark"));
    assert_non_null(strstr(fx->out, "Language: fr"));
    assert_non_null(strstr(fx->out, "action=\"/prefs\""));
    assert_int_equal(render(fx, "logout", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "action=\"/logout\""));
}

static void
test_demo_pages_logged_out(void **state)
{
    struct fx *fx = *state;
    size_t i;

    open_demo(fx);
    for (i = 0; i < sizeof demo_pages / sizeof demo_pages[0]; i++) {
        assert_int_equal(render(fx, demo_pages[i], "{\"csrf\":\"t\"}"), SESS_OK);
        assert_non_null(strstr(fx->out, "<html lang=\"en\" data-theme=\"system\">"));
        assert_non_null(strstr(fx->out, "<title>fcgi-session</title>"));
        assert_non_null(strstr(fx->out, "href=\"/login\">Log in</a>"));
        /* The dashboard is only ever shown logged in. */
        if (strcmp(demo_pages[i], "dashboard") != 0)
            assert_null(strstr(fx->out, "Log out</a>"));
    }
    assert_int_equal(render(fx, "profile", "{}"), SESS_OK);
    assert_non_null(strstr(fx->out, "You're not logged in"));
    assert_null(strstr(fx->out, "Hello"));
    assert_int_equal(render(fx, "index", "{}"), SESS_OK);
    assert_null(strstr(fx->out, "Welcome back"));
    assert_int_equal(render(fx, "login", "{}"), SESS_OK);
    assert_null(strstr(fx->out, "class=\"error\""));
}

static void
test_demo_pages_escape_user_values(void **state)
{
    static const char vars[] =
        "{\"title\":\"<t>\",\"csrf\":\"\\\"><x>\",\"theme\":\"\\\"onmouseover=\","
        "\"lang\":\"en' x='\",\"user\":{\"username\":\"<script>alert(1)</script>\","
        "\"role\":\"<b>\"},\"expires\":\"\\\"<\",\"error\":\"<i>\","
        "\"username\":\"\\\" autofocus onfocus=alert(1) x=\\\"\",\"status\":\"<s>\","
        "\"msg\":\"<m>\"}";
    struct fx *fx = *state;
    size_t i;

    open_demo(fx);
    for (i = 0; i < sizeof demo_pages / sizeof demo_pages[0]; i++) {
        assert_int_equal(render(fx, demo_pages[i], vars), SESS_OK);
        assert_null(strstr(fx->out, "<script>alert"));
        assert_null(strstr(fx->out, "\"onmouseover"));
        assert_null(strstr(fx->out, "<t>"));
        assert_null(strstr(fx->out, "<x>"));
        assert_null(strstr(fx->out, "<b>"));
        assert_null(strstr(fx->out, "<i>"));
        assert_null(strstr(fx->out, "<s>"));
        assert_null(strstr(fx->out, "<m>"));
        assert_null(strstr(fx->out, "\" autofocus"));
        assert_null(strstr(fx->out, "en' x"));
        assert_non_null(strstr(fx->out, "data-theme=\"&quot;onmouseover=\""));
    }
    assert_int_equal(render(fx, "profile", vars), SESS_OK);
    assert_non_null(strstr(fx->out, "Hello &lt;script&gt;alert(1)&lt;/script&gt;"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        cmocka_unit_test(test_escape_every_special_char),
        cmocka_unit_test(test_escape_passes_utf8_and_control_bytes),
        cmocka_unit_test(test_escape_appends_and_keeps_nul),
        T(test_var_is_escaped_and_triple_is_raw),
        T(test_dotted_names_descend_objects),
        T(test_scalars_print_like_json),
        T(test_null_vars_render_empty),
        T(test_section_truthiness),
        T(test_nested_sections_resolve_inner_first),
        T(test_section_over_array_repeats),
        T(test_inverted_section_shows_when_falsy),
        T(test_standalone_tags_take_their_line),
        T(test_crlf_standalone_lines),
        T(test_partial_sees_the_context),
        T(test_partial_chain_depth_limit),
        T(test_recursive_partial_refused),
        T(test_unknown_partial_is_not_found),
        T(test_partial_reloaded_after_change),
        T(test_layout_wraps_page),
        T(test_doctype_page_not_wrapped),
        T(test_missing_layout_is_not_found),
        T(test_missing_page_is_not_found),
        T(test_bad_page_names_refused),
        T(test_reload_after_mtime_change),
        T(test_broken_edit_then_fixed),
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
        T(test_syntax_errors_name_file_and_line),
        T(test_nesting_depth_bounded),
        T(test_output_bounded),
        T(test_error_leaves_output_unchanged),
        T(test_empty_output_is_nul_terminated),
        cmocka_unit_test(test_open_refuses_bad_dirs),
        T(test_demo_pages_render),
        T(test_demo_pages_logged_out),
        T(test_demo_pages_escape_user_values),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
