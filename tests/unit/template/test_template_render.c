/* Unit tests for lib/template/render.c: escaping, variables, sections,
 * partials, layout wrapping, the bounds on one render, and the demo pages in
 * html/ themselves. Each test works in its own mkdtemp() directory
 * (template_test.h); syntax is test_template_compile.c's, reloading
 * test_template_cache.c's and test_template_watch.c's. */
#include "template_test.h"

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

/* ---------------------------------------------------------------- bounds */

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

/* -------------------------------------------------------- the demo pages */

static const char *const demo_pages[] = {
    "index", "login", "profile", "dashboard", "logout", "prefs", "error", "devices", "password",
};

static void
open_demo(struct fx *fx)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    struct stat st;

    /* tests/unit/template/test_template_render.c -> html/ at the top of
     * the tree, relative to where it was compiled; ./html when that is not
     * here. */
    snprintf(dir, sizeof dir, "%.*s/../../../html", slash ? (int)(slash - __FILE__) : 1,
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
        assert_non_null(strstr(fx->out, "<link rel=\"stylesheet\" href=\"/static/style.css\">"));
        assert_null(strstr(fx->out, "<style"));
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
        T(test_partial_sees_the_context),
        T(test_partial_chain_depth_limit),
        T(test_recursive_partial_refused),
        T(test_unknown_partial_is_not_found),
        T(test_layout_wraps_page),
        T(test_doctype_page_not_wrapped),
        T(test_missing_layout_is_not_found),
        T(test_output_bounded),
        T(test_error_leaves_output_unchanged),
        T(test_empty_output_is_nul_terminated),
        T(test_demo_pages_render),
        T(test_demo_pages_logged_out),
        T(test_demo_pages_escape_user_values),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
