/* An update as data (lib/store/patch.c): laid over the stored record only
 * while what the request read still holds, its deletions and sets over the
 * stored keys, the request's sighting of the client over the record's own,
 * and the text that carries it to the process that writes a group commit,
 * reads and all. No store: records built by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "store.h"

static void
assert_str_view(struct sess_str view, const char *expected)
{
    assert_int_equal(view.len, strlen(expected));
    assert_memory_equal(view.ptr, expected, view.len);
}

static void
test_merge_deletes_then_sets_over_the_stored_keys(void **state)
{
    struct sess_patch p = {.expires_ms = 5000,
                           .set = json_pack("{s:{s:s}}", "user", "username", "bob"),
                           .del = json_pack("{s:b}", "cart", 1)};
    struct sess_record cur = {.expires_ms = 1000, .created_ms = 7}, next = {0};

    (void)state;
    cur.data = SESS_STR_LIT("{\"cart\":[1],\"theme\":\"dark\"}");
    cur.owner = SESS_STR_LIT("alice");
    assert_int_equal(sess__patch_merge(&p, &cur, &next), SESS_OK);
    assert_str_view(next.data, "{\"theme\":\"dark\",\"user\":{\"username\":\"bob\"}}");
    /* The owner is the user the data is logged in as; the rest of the
     * record is the stored one, the expiry the patch's. */
    assert_str_view(next.owner, "bob");
    assert_int_equal(next.expires_ms, 5000);
    assert_int_equal(next.created_ms, 7);
    sess__patch_free(&p);
}

static void
test_merge_over_data_that_is_not_an_object_is_not_found(void **state)
{
    struct sess_patch p = {.expires_ms = 5000, .set = json_object(), .del = json_object()};
    struct sess_record cur = {.expires_ms = 1000}, next = {0};

    (void)state;
    cur.data = SESS_STR_LIT("[1,2]");
    assert_int_equal(sess__patch_merge(&p, &cur, &next), SESS_ENOTFOUND);
    cur.data = SESS_STR_LIT("{not json");
    assert_int_equal(sess__patch_merge(&p, &cur, &next), SESS_ENOTFOUND);
    sess__patch_free(&p);
}

/* A store that knows the record is still the one the request loaded passes
 * it without data: the result is the whole session the request holds. */
static void
test_merge_of_the_record_as_loaded_takes_the_whole_session(void **state)
{
    struct sess_patch p = {.expires_ms = 5000,
                           .set = json_pack("{s:i}", "views", 3),
                           .del = json_object(),
                           .read = json_pack("{s:i}", "views", 2),
                           .whole = json_pack("{s:i,s:s}", "views", 3, "theme", "dark")};
    struct sess_record cur = {.expires_ms = 1000}, next = {0};

    (void)state;
    assert_int_equal(sess__patch_merge(&p, &cur, &next), SESS_OK);
    assert_str_view(next.data, "{\"views\":3,\"theme\":\"dark\"}");
    json_decref(p.whole);
    sess__patch_free(&p);
}

/* The request's sighting of the client and its change of the lifetime go
 * over the record's; a handle once given stays. */
static void
test_merge_lays_the_request_metadata_over_the_record(void **state)
{
    struct sess_patch p = {.expires_ms = 5000,
                           .set = json_object(),
                           .del = json_object(),
                           .last_seen_ms = 4000,
                           .client_addr = SESS_STR_LIT("192.0.2.9"),
                           .has_handle = true,
                           .has_lifetime = true,
                           .is_remembered = true,
                           .idle_ms = 60000,
                           .lifetime_ms = 120000,
                           .deadline_ms = 9000};
    struct sess_record cur = {.expires_ms = 1000, .has_handle = true}, next = {0};

    (void)state;
    memset(p.handle, 'p', sizeof p.handle);
    memset(cur.handle, 'r', sizeof cur.handle);
    cur.data = SESS_STR_LIT("{}");
    cur.client_addr = SESS_STR_LIT("198.51.100.1");
    cur.user_agent = SESS_STR_LIT("curl/8");
    assert_int_equal(sess__patch_merge(&p, &cur, &next), SESS_OK);
    assert_int_equal(next.last_seen_ms, 4000);
    assert_str_view(next.client_addr, "192.0.2.9");
    assert_str_view(next.user_agent, "curl/8");
    assert_memory_equal(next.handle, cur.handle, sizeof next.handle);
    assert_true(next.is_remembered);
    assert_int_equal(next.idle_ms, 60000);
    assert_int_equal(next.lifetime_ms, 120000);
    assert_int_equal(next.deadline_ms, 9000);
    /* A record made before handles existed takes the request's. */
    cur.has_handle = false;
    assert_int_equal(sess__patch_merge(&p, &cur, &next), SESS_OK);
    assert_true(next.has_handle);
    assert_memory_equal(next.handle, p.handle, sizeof next.handle);
    sess__patch_free(&p);
}

static void
test_patch_text_carries_the_metadata(void **state)
{
    struct sess_patch p = {.set = json_object(),
                           .del = json_object(),
                           .last_seen_ms = 4000,
                           .user_agent = SESS_STR_LIT("Mozilla/5.0"),
                           .has_handle = true,
                           .has_lifetime = true,
                           .idle_ms = 60000,
                           .lifetime_ms = 120000,
                           .deadline_ms = 9000},
                      back = {0};
    char *text;

    (void)state;
    memset(p.handle, 0xa5, sizeof p.handle);
    text = sess__patch_dump(&p);
    assert_non_null(text);
    assert_int_equal(sess__patch_parse(&back, text, strlen(text), 7000), SESS_OK);
    assert_int_equal(back.expires_ms, 7000);
    assert_int_equal(back.last_seen_ms, 4000);
    assert_str_view(back.user_agent, "Mozilla/5.0");
    assert_int_equal(back.client_addr.len, 0);
    assert_true(back.has_handle);
    assert_memory_equal(back.handle, p.handle, sizeof p.handle);
    assert_true(back.has_lifetime);
    assert_false(back.is_remembered);
    assert_int_equal(back.idle_ms, 60000);
    assert_int_equal(back.lifetime_ms, 120000);
    assert_int_equal(back.deadline_ms, 9000);
    free(text);
    sess__patch_free(&back);
    sess__patch_free(&p);
}

static void
test_patch_text_carries_reads_and_is_checked_on_the_record(void **state)
{
    struct sess_patch p = {0}, back = {0};
    struct sess_record cur = {0}, next = {0};
    const char *stored = "{\"a\":1,\"b\":2}";
    char *text;

    (void)state;
    p.set = json_pack("{s:i}", "a", 2);
    p.del = json_object();
    p.read = json_pack("{s:i}", "a", 1);
    p.absent = json_pack("{s:b}", "x", 1);
    text = sess__patch_dump(&p);
    assert_non_null(text);
    assert_int_equal(sess__patch_parse(&back, text, strlen(text), 1000), SESS_OK);
    cur.data = sess_str_c(stored);
    assert_int_equal(sess__patch_merge(&back, &cur, &next), SESS_OK);
    assert_string_equal(next.data.ptr, "{\"a\":2,\"b\":2}");
    cur.data = sess_str_c("{\"a\":5,\"b\":2}");
    assert_int_equal(sess__patch_merge(&back, &cur, &next), SESS_ECONFLICT);
    cur.data = sess_str_c("{\"a\":1,\"x\":0}");
    assert_int_equal(sess__patch_merge(&back, &cur, &next), SESS_ECONFLICT);
    free(text);
    sess__patch_free(&back);
    sess__patch_free(&p);
}

static void
test_patch_without_reads_is_refused_as_foreign(void **state)
{
    struct sess_patch back = {0};
    const char *old = "{\"set\":{\"a\":1},\"del\":{}}";

    (void)state;
    /* A queued update of a build that did not carry its reads must not be
     * taken for a blind write. */
    assert_int_equal(sess__patch_parse(&back, old, strlen(old), 1000), SESS_EBADINPUT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_deletes_then_sets_over_the_stored_keys),
        cmocka_unit_test(test_merge_over_data_that_is_not_an_object_is_not_found),
        cmocka_unit_test(test_merge_of_the_record_as_loaded_takes_the_whole_session),
        cmocka_unit_test(test_merge_lays_the_request_metadata_over_the_record),
        cmocka_unit_test(test_patch_text_carries_the_metadata),
        cmocka_unit_test(test_patch_text_carries_reads_and_is_checked_on_the_record),
        cmocka_unit_test(test_patch_without_reads_is_refused_as_foreign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
