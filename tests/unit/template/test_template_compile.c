/* Unit tests for lib/template/compile.c: the Mustache subset's syntax as a
 * page author meets it, Mustache's standalone-line rule, and every syntax
 * error with the file and line it names. Rendering what compiled is
 * test_template_render.c's. */
#include "template_test.h"

/* ------------------------------------------------------ standalone lines */

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_standalone_tags_take_their_line),
        T(test_crlf_standalone_lines),
        T(test_syntax_errors_name_file_and_line),
        T(test_nesting_depth_bounded),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
