/* The JSON loader (json_load.c) against its specification, jansson 2.14's
 * json_loadb(text, len, 0): every case is loaded both ways, and the two must
 * fail together or give equal values that dump to the same text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "json_load.h"

struct text {
    const char *ptr;
    size_t len;
};

/* A string literal with its length, NULs included: {TEXT("[1\0]")}. */
#define TEXT(lit) (lit), sizeof(lit) - 1
#define COUNT(a)  (sizeof(a) / sizeof((a)[0]))

/* Both NULL, or equal and dumping to the same text: json_equal() alone
 * ignores member order and the sign of -0.0. */
static bool
is_same(json_t *want, json_t *got)
{
    char *want_text, *got_text;
    bool is_equal;

    if (want == NULL || got == NULL)
        return want == got;
    want_text = json_dumps(want, JSON_COMPACT);
    got_text = json_dumps(got, JSON_COMPACT);
    assert_non_null(want_text);
    assert_non_null(got_text);
    is_equal = json_equal(want, got) && strcmp(want_text, got_text) == 0;
    free(want_text);
    free(got_text);
    return is_equal;
}

/* Loads `t` with `drop_key` and checks it against json_loadb with that
 * member deleted; returns the loader's result. */
static json_t *
load_checked(struct text t, const char *drop_key)
{
    json_error_t jerr;
    json_t *want = json_loadb(t.ptr, t.len, 0, &jerr);
    json_t *got = sess__json_load(t.ptr, t.len, drop_key);

    if (drop_key != NULL && json_is_object(want))
        json_object_del(want, drop_key);
    if (!is_same(want, got))
        fail_msg("%.*s: json_loadb %s, sess__json_load %s", t.len > 60 ? 60 : (int)t.len, t.ptr,
                 want ? "loads" : "fails", got ? "loads (differently)" : "fails");
    json_decref(want);
    return got;
}

static const struct text accepted[] = {
    {TEXT("{}")},
    {TEXT("[]")},
    {TEXT(" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \t\r\n")},
    {TEXT("{\"\":\"\"}")},
    {TEXT("[true,false,null]")},
    {TEXT("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]")},
    {TEXT("[\"\\u0041\\u00e9\\u20AC\\uFFFF\"]")},
    {TEXT("[\"\\ud83d\\ude00\",\"\\uDBFF\\uDFFF\"]")},
    {TEXT("{\"\\u00e9\\n\":1}")},
    {TEXT("[\"\x7f\"]")},
    {TEXT("[\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\"]")},
    {TEXT("[\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"]")},
    {TEXT("[0,-0,1,-1,9223372036854775807,-9223372036854775808]")},
    {TEXT("[0.5,-0.0,1e3,1E3,1e+3,1e-3,-1.5e300,2.5E-3]")},
    {TEXT("[1e-400,-1e-400]")}, /* underflow: 0.0 and -0.0, not an error */
    {TEXT("[1.7976931348623157e308,4.9e-324]")},
    {TEXT("[[[[]],{}],{\"a\":[{\"b\":null}]}]")},
};

static void
test_loads_what_jansson_loads(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(accepted); i++) {
        json_t *got = load_checked(accepted[i], NULL);
        assert_non_null(got);
        json_decref(got);
    }
}

static const struct text rejected[] = {
    /* without JSON_DECODE_ANY, only an object or an array */
    {TEXT("")},
    {TEXT(" \n")},
    {TEXT("1")},
    {TEXT("\"a\"")},
    {TEXT("true")},
    {TEXT("null")},
    /* whitespace is space, tab, CR and LF only */
    {TEXT("\f[]")},
    {TEXT("[\v]")},
    {TEXT("[\xc2\xa0]")},
    /* nothing but whitespace after the value */
    {TEXT("{} x")},
    {TEXT("[][]")},
    {TEXT("{}\0")},
    /* structure */
    {TEXT("{")},
    {TEXT("[1")},
    {TEXT("[1,]")},
    {TEXT("[,1]")},
    {TEXT("[1 2]")},
    {TEXT("{\"a\"}")},
    {TEXT("{\"a\" 1}")},
    {TEXT("{\"a\":}")},
    {TEXT("{\"a\":1,}")},
    {TEXT("{1:2}")},
    {TEXT("{'a':1}")},
    {TEXT("[1}")},
    {TEXT("{\"a\":1]")},
    {TEXT("[tru]")},
    {TEXT("[truex]")},
    {TEXT("[True]")},
    {TEXT("[nul]")},
    /* UTF-8: overlong, surrogates, past U+10FFFF, stray or missing bytes */
    {TEXT("[\"\xc0\x80\"]")},
    {TEXT("[\"\xc1\xbf\"]")},
    {TEXT("[\"\xe0\x9f\xbf\"]")},
    {TEXT("[\"\xf0\x8f\xbf\xbf\"]")},
    {TEXT("[\"\xed\xa0\x80\"]")},
    {TEXT("[\"\xed\xbf\xbf\"]")},
    {TEXT("[\"\xf4\x90\x80\x80\"]")},
    {TEXT("[\"\xf5\x80\x80\x80\"]")},
    {TEXT("[\"\xff\"]")},
    {TEXT("[\"\x80\"]")},
    {TEXT("[\"\xc3\"]")},
    {TEXT("[\"\xe2\x82\"]")},
    {TEXT("[\"\xe2\x82\x41\"]")},
    {TEXT("[\"\xc3")},
    {TEXT("[\"\xc3\xa9\"\xc3\xa9]")},
    /* raw control bytes and NUL in strings and between tokens */
    {TEXT("[\"a\tb\"]")},
    {TEXT("[\"a\nb\"]")},
    {TEXT("[\"\x1f\"]")},
    {TEXT("[\"a\0b\"]")},
    {TEXT("[\0]")},
    {TEXT("[\"a\"\0]")},
    {TEXT("{\"a\"\0:1}")},
    /* escapes */
    {TEXT("[\"\\x\"]")},
    {TEXT("[\"\\U0041\"]")},
    {TEXT("[\"\\u004\"]")},
    {TEXT("[\"\\u00g1\"]")},
    {TEXT("[\"\\")},
    {TEXT("[\"\\u00")},
    {TEXT("[\"\\ud800\"]")},
    {TEXT("[\"\\udc00\"]")},
    {TEXT("[\"\\ud800\\u0041\"]")},
    {TEXT("[\"\\ud800\\ud800\"]")},
    {TEXT("[\"\\ud800\\n\"]")},
    {TEXT("[\"\\ud800x\\udc00\"]")},
    {TEXT("[\"\\ude00\\ud83d\"]")},
    {TEXT("[\"\\u0000\"]")},
    {TEXT("{\"\\u0000\":1}")},
    {TEXT("[\"a\\u0000\"]")},
    /* numbers */
    {TEXT("[01]")},
    {TEXT("[-01]")},
    {TEXT("[00]")},
    {TEXT("[-]")},
    {TEXT("[-a]")},
    {TEXT("[+1]")},
    {TEXT("[1.]")},
    {TEXT("[1.e3]")},
    {TEXT("[.5]")},
    {TEXT("[1e]")},
    {TEXT("[1e+]")},
    {TEXT("[1E-]")},
    {TEXT("[0x10]")},
    {TEXT("[1.5.3]")},
    {TEXT("[Infinity]")},
    {TEXT("[NaN]")},
    {TEXT("[9223372036854775808]")},
    {TEXT("[-9223372036854775809]")},
    {TEXT("[99999999999999999999]")},
    {TEXT("[1e309]")},
    {TEXT("[-1e309]")},
    {TEXT("[1")},
    {TEXT("[1.")},
    {TEXT("[1e5")},
};

static void
test_fails_where_jansson_fails(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(rejected); i++)
        assert_null(load_checked(rejected[i], NULL));
}

/* jansson's lexer reads the byte after a number or a literal and pushes it
 * back, and a pushed-back NUL is lost: one NUL there is skipped. */
static void
test_one_nul_after_a_number_or_literal_is_skipped(void **state)
{
    static const struct text skipped[] = {
        {TEXT("[1\0]")},
        {TEXT("[1.5\0,2e3\0 ]")},
        {TEXT("[true\0,false\0,null\0]")},
        {TEXT("{\"a\":-0\0}")},
    };
    static const struct text not_skipped[] = {
        {TEXT("[1\0\0]")},  {TEXT("[1 \0]")},   {TEXT("[\0 1]")},
        {TEXT("[1,\0 2]")}, {TEXT("[0\0001]")}, {TEXT("[1\0")},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(skipped); i++) {
        json_t *got = load_checked(skipped[i], NULL);
        assert_non_null(got);
        json_decref(got);
    }
    for (size_t i = 0; i < COUNT(not_skipped); i++)
        assert_null(load_checked(not_skipped[i], NULL));
}

static void
test_numbers_keep_their_type_and_value(void **state)
{
    struct text t = {TEXT("[9223372036854775807,-9223372036854775808,-0,-0.0,1e-400,1.0]")};
    json_t *got = load_checked(t, NULL);

    (void)state;
    assert_non_null(got);
    assert_true(json_integer_value(json_array_get(got, 0)) == INT64_MAX);
    assert_true(json_integer_value(json_array_get(got, 1)) == INT64_MIN);
    assert_true(json_is_integer(json_array_get(got, 2)));
    assert_true(json_is_real(json_array_get(got, 3)));
    assert_true(json_is_real(json_array_get(got, 4)));
    assert_true(json_real_value(json_array_get(got, 4)) == 0.0);
    assert_true(json_is_real(json_array_get(got, 5)));
    json_decref(got);
}

/* The last value wins, in the place where the name first appeared
 * (json_object_set on a name already there). */
static void
test_duplicate_names_keep_the_first_place_and_the_last_value(void **state)
{
    struct text t = {TEXT("{\"a\":1,\"b\":2,\"a\":{\"x\":[3]},\"c\":4,\"a\":5}")};
    json_t *got = load_checked(t, NULL);
    char *dumped;

    (void)state;
    assert_non_null(got);
    dumped = json_dumps(got, JSON_COMPACT);
    assert_string_equal(dumped, "{\"a\":5,\"b\":2,\"c\":4}");
    free(dumped);
    json_decref(got);
}

/* JSON_PARSER_MAX_DEPTH counts every value, so the innermost of 2048
 * nested containers can only be empty. */
static char *
nested(size_t depth, const char *open, const char *inner, const char *close, size_t *len)
{
    size_t open_len = strlen(open), inner_len = strlen(inner), close_len = strlen(close);
    char *text = malloc(depth * (open_len + close_len) + inner_len);
    char *p = text;

    assert_non_null(text);
    for (size_t i = 0; i < depth; i++, p += open_len)
        memcpy(p, open, open_len);
    memcpy(p, inner, inner_len);
    p += inner_len;
    for (size_t i = 0; i < depth; i++, p += close_len)
        memcpy(p, close, close_len);
    *len = (size_t)(p - text);
    return text;
}

static void
test_nesting_stops_at_jansson_depth_limit(void **state)
{
    static const struct {
        size_t depth;
        const char *open, *inner, *close;
        bool is_loaded;
    } cases[] = {
        {JSON_PARSER_MAX_DEPTH, "[", "", "]", true},
        {JSON_PARSER_MAX_DEPTH, "{\"a\":", "{}", "}", false},
        {JSON_PARSER_MAX_DEPTH - 1, "{\"a\":", "{}", "}", true},
        {JSON_PARSER_MAX_DEPTH - 1, "[", "[1]", "]", false},
        {JSON_PARSER_MAX_DEPTH - 1, "[", "1", "]", true},
        {JSON_PARSER_MAX_DEPTH + 1, "[", "", "]", false},
        {100000, "[", "", "]", false},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct text t;
        char *text = nested(cases[i].depth, cases[i].open, cases[i].inner, cases[i].close, &t.len);
        json_t *got;

        t.ptr = text;
        got = load_checked(t, NULL);
        assert_int_equal(got != NULL, cases[i].is_loaded);
        json_decref(got);
        free(text);
    }
}

static void
test_input_ends_at_len_not_at_a_nul(void **state)
{
    static const char text[] = "[1]   [2]";
    json_t *got;

    (void)state;
    got = load_checked((struct text){text, 3}, NULL);
    assert_non_null(got);
    json_decref(got);
    assert_null(load_checked((struct text){text, 2}, NULL));
    assert_null(load_checked((struct text){text, 0}, NULL));
    assert_null(sess__json_load(NULL, 0, NULL));
}

static void
test_drop_key_leaves_out_the_member_wherever_it_is(void **state)
{
    static const struct {
        struct text in;
        const char *want;
    } cases[] = {
        {{TEXT("{\"cookie\":{\"path\":\"/\"},\"a\":1,\"b\":2}")}, "{\"a\":1,\"b\":2}"},
        {{TEXT("{\"a\":1,\"cookie\":[1,{\"x\":2}],\"b\":2}")}, "{\"a\":1,\"b\":2}"},
        {{TEXT("{\"a\":1,\"b\":2,\"cookie\":\"c\"}")}, "{\"a\":1,\"b\":2}"},
        {{TEXT("{\"a\":1,\"b\":2}")}, "{\"a\":1,\"b\":2}"},
        {{TEXT("{\"cookie\":1}")}, "{}"},
        /* every occurrence, and under any spelling of the name */
        {{TEXT("{\"cookie\":1,\"a\":2,\"cookie\":{},\"\\u0063ookie\":3,\"cooki\\u0065\":4}")},
         "{\"a\":2}"},
        /* only the top-level member */
        {{TEXT("{\"user\":{\"cookie\":1},\"list\":[{\"cookie\":2}],\"cookie\":3}")},
         "{\"user\":{\"cookie\":1},\"list\":[{\"cookie\":2}]}"},
        {{TEXT("[{\"cookie\":1}]")}, "[{\"cookie\":1}]"},
        /* names that only start or end like it */
        {{TEXT("{\"cookies\":1,\"cooki\":2,\"\":3}")}, "{\"cookies\":1,\"cooki\":2,\"\":3}"},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        json_t *got = load_checked(cases[i].in, "cookie");
        char *dumped;

        assert_non_null(got);
        dumped = json_dumps(got, JSON_COMPACT);
        assert_string_equal(dumped, cases[i].want);
        free(dumped);
        json_decref(got);
    }
}

/* Left out, but checked all the same: json_loadb fails on it. */
static void
test_dropped_member_must_still_be_valid(void **state)
{
    static const struct text cases[] = {
        {TEXT("{\"cookie\":[1e309],\"a\":1}")},     {TEXT("{\"cookie\":{\"x\":\"\xff\"},\"a\":1}")},
        {TEXT("{\"cookie\":9223372036854775808}")}, {TEXT("{\"cookie\":\"\\u0000\"}")},
        {TEXT("{\"cookie\":{\"x\":1,}}")},          {TEXT("{\"cookie\":[01]}")},
    };

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++)
        assert_null(load_checked(cases[i], "cookie"));
}

/* The object is depth 1, so the member can nest one level less. */
static void
test_dropped_member_counts_against_the_depth_limit(void **state)
{
    static const struct {
        const char *inner;
        bool is_loaded;
    } cases[] = {{"", true}, {"1", false}};

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        size_t len;
        char *member = nested(JSON_PARSER_MAX_DEPTH - 1, "[", cases[i].inner, "]", &len);
        char *text = malloc(len + 32);
        json_t *got;

        assert_non_null(text);
        len = (size_t)sprintf(text, "{\"cookie\":%.*s,\"a\":1}", (int)len, member);
        got = load_checked((struct text){text, len}, "cookie");
        assert_int_equal(got != NULL, cases[i].is_loaded);
        json_decref(got);
        free(text);
        free(member);
    }
}

/* Long enough for the heap paths: escaped strings decoded past the stack
 * buffer, in values and names, and a real number's text. */
static void
test_long_strings_and_numbers(void **state)
{
    size_t n = 100000;
    char *text = malloc(3 * n);
    char *p = text;
    json_t *got;
    struct text t;

    (void)state;
    assert_non_null(text);
    p += sprintf(p, "{\"");
    for (size_t i = 0; i < 300; i++)
        p += sprintf(p, "k\\n");
    p += sprintf(p, "\":[\"");
    for (size_t i = 0; i < n / 16; i++)
        p += sprintf(p, "ab\\u00e9\xe2\x82\xac");
    p += sprintf(p, "\",\"");
    memset(p, 'x', n);
    p += n;
    p += sprintf(p, "\",0.");
    memset(p, '1', 200);
    p += 200;
    p += sprintf(p, "]}");
    t = (struct text){text, (size_t)(p - text)};
    got = load_checked(t, NULL);
    assert_non_null(got);
    json_decref(got);
    /* the long escaped name compared with the drop key */
    got = load_checked(t, "cookie");
    assert_non_null(got);
    json_decref(got);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_what_jansson_loads),
        cmocka_unit_test(test_fails_where_jansson_fails),
        cmocka_unit_test(test_one_nul_after_a_number_or_literal_is_skipped),
        cmocka_unit_test(test_numbers_keep_their_type_and_value),
        cmocka_unit_test(test_duplicate_names_keep_the_first_place_and_the_last_value),
        cmocka_unit_test(test_nesting_stops_at_jansson_depth_limit),
        cmocka_unit_test(test_input_ends_at_len_not_at_a_nul),
        cmocka_unit_test(test_drop_key_leaves_out_the_member_wherever_it_is),
        cmocka_unit_test(test_dropped_member_must_still_be_valid),
        cmocka_unit_test(test_dropped_member_counts_against_the_depth_limit),
        cmocka_unit_test(test_long_strings_and_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
