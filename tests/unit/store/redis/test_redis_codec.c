/* The Redis store's value codec (store/redis/codec.c), with no server: our
 * records to the JSON connect-redis stores and back, the values an Express
 * app writes (express-session 1.18's JSON, connect-redis 9's TTL rule:
 * ceil((expires - now) / 1000) seconds, a day without expires), the sealed
 * format of encrypt = true, and garbage, which reads as no session and
 * never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "internal.h"
#include "redis_codec.h"

#define SECRET_A "redis codec test secret A, thirty-two bytes or more"
#define SECRET_B "redis codec test secret B, thirty-two bytes or more"
#define ID       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID2      "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
/* 2026-11-22T18:00:00.000Z */
#define NOW_MS     1795370400000LL
#define MIN_MS     60000LL
#define ABSOLUTE_S (12 * 3600)

/* What express-session 1.18 saves for a logged-in session with maxAge
 * 1800000 (cookie.data's keys in its order), as connect-redis stores it. */
#define EXPRESS_VALUE                                                                              \
    "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"2026-11-22T18:30:00.000Z\","            \
    "\"secure\":false,\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},"                     \
    "\"user\":{\"username\":\"alice\",\"role\":\"admin\"},\"views\":3}"
#define DATA                                                                                       \
    "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"2026-11-22T18:30:00.000Z\","            \
    "\"secure\":false,\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},\"views\":3}"

struct state {
    struct sess_secrets secrets;
    struct rs_codec plain;  /* encrypt = auto: values as Express reads them */
    struct rs_codec sealed; /* encrypt = true */
    struct sess_buf buf;
    struct sess_record rec;
};

static int
setup(void **ctx)
{
    struct state *s = calloc(1, sizeof *s);

    assert_non_null(s);
    assert_int_equal(sess_secrets_add(&s->secrets, sess_str_c(SECRET_A)), SESS_OK);
    rs_codec_init(&s->plain, &s->secrets, false, ABSOLUTE_S * 1000LL);
    rs_codec_init(&s->sealed, &s->secrets, true, ABSOLUTE_S * 1000LL);
    *ctx = s;
    return 0;
}

static int
teardown(void **ctx)
{
    struct state *s = *ctx;

    rs_codec_wipe(&s->plain);
    rs_codec_wipe(&s->sealed);
    sess__buf_free(&s->buf);
    sess_secrets_free(&s->secrets);
    free(s);
    return 0;
}

/* A record with every field the store keeps set. */
static struct sess_record
full_record(void)
{
    struct sess_record rec = {
        .expires_ms = NOW_MS + 30 * MIN_MS,
        .deadline_ms = NOW_MS + 12 * 60 * MIN_MS,
        .created_ms = NOW_MS - MIN_MS,
        .owner = SESS_STR_LIT("alice"),
        .data = SESS_STR_LIT(DATA),
        .idle_ms = 30 * MIN_MS,
        .lifetime_ms = 12 * 60 * MIN_MS,
        .is_remembered = true,
        .has_handle = true,
        .client_addr = SESS_STR_LIT("2001:db8::7"),
        .user_agent = SESS_STR_LIT("Mozilla/5.0 (X11; Linux x86_64)"),
        .last_seen_ms = NOW_MS - 1000,
    };

    for (size_t i = 0; i < sizeof rec.handle; i++)
        rec.handle[i] = (unsigned char)(0xa0 + i);
    return rec;
}

static struct sess_str
val(const struct rs_codec *c)
{
    return (struct sess_str){c->val.ptr, c->val.len};
}

static void
assert_str_equal(struct sess_str got, const char *want)
{
    if (got.len != strlen(want) || memcmp(got.ptr, want, got.len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)got.len, got.ptr, want);
}

/* Every view of a decoded record lies in `buf` and ends with a NUL
 * (store.h's promise for get). */
static void
assert_views_in(const struct sess_record *rec, const struct sess_buf *buf)
{
    const struct sess_str *views[] = {&rec->owner, &rec->data, &rec->client_addr, &rec->user_agent};

    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        assert_true(views[i]->ptr >= buf->ptr);
        assert_true(views[i]->ptr + views[i]->len < buf->ptr + buf->len);
        assert_int_equal(views[i]->ptr[views[i]->len], '\0');
    }
}

static void
assert_same_meta(const struct sess_record *got, const struct sess_record *want)
{
    assert_int_equal(got->created_ms, want->created_ms);
    assert_int_equal(got->deadline_ms, want->deadline_ms);
    assert_int_equal(got->idle_ms, want->idle_ms);
    assert_int_equal(got->lifetime_ms, want->lifetime_ms);
    assert_int_equal(got->last_seen_ms, want->last_seen_ms);
    assert_int_equal(got->is_remembered, want->is_remembered);
    assert_int_equal(got->has_handle, want->has_handle);
    if (want->has_handle)
        assert_memory_equal(got->handle, want->handle, sizeof want->handle);
    assert_int_equal(got->owner.len, want->owner.len);
    assert_memory_equal(got->owner.ptr, want->owner.ptr, want->owner.len);
    assert_int_equal(got->client_addr.len, want->client_addr.len);
    assert_memory_equal(got->client_addr.ptr, want->client_addr.ptr, want->client_addr.len);
    assert_int_equal(got->user_agent.len, want->user_agent.len);
    assert_memory_equal(got->user_agent.ptr, want->user_agent.ptr, want->user_agent.len);
}

/* ------------------------------------------------------------------------
 * Our records, round trip
 * ------------------------------------------------------------------------ */

static void
test_round_trip_keeps_every_field_and_the_data_as_it_was(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record want = full_record(), got;
    bool has_meta = false;

    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &want), SESS_OK);
    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), val(&s->plain), NOW_MS, 1799995,
                                     &got, &s->buf, &has_meta),
                     SESS_OK);
    assert_true(has_meta);
    assert_same_meta(&got, &want);
    assert_str_equal(got.data, DATA);
    /* The idle expiry is the TTL's, not anything in the value. */
    assert_int_equal(got.expires_ms, NOW_MS + 1799995);
    assert_int_equal(got.read_tag, 0);
    assert_views_in(&got, &s->buf);
}

/* A record with nothing but the data: no owner, no client, no handle. */
static void
test_round_trip_of_a_bare_record(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record want = {.expires_ms = NOW_MS + MIN_MS,
                               .created_ms = NOW_MS,
                               .data = SESS_STR_LIT("{}")},
                       got;
    bool has_meta = false;

    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &want), SESS_OK);
    assert_str_equal(val(&s->plain), "{\"_fcgi\":{\"created\":1795370400000,\"deadline\":0}}");
    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), val(&s->plain), NOW_MS, 60000, &got,
                                     &s->buf, &has_meta),
                     SESS_OK);
    assert_true(has_meta);
    assert_same_meta(&got, &want);
    assert_str_equal(got.data, "{}");
    assert_views_in(&got, &s->buf);
}

/* The value is the session JSON an Express app reads: our key first (so
 * that express-session carries it along on every save), then the data's
 * keys with cookie.originalMaxAge and cookie.expires as they were. */
static void
test_value_is_express_session_json_with_our_key_first(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record rec = full_record();
    json_error_t jerr;
    json_t *v, *cookie;
    const char *first;

    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &rec), SESS_OK);
    v = json_loadb(s->plain.val.ptr, s->plain.val.len, 0, &jerr);
    if (!json_is_object(v))
        fail_msg("not JSON: %s", jerr.text);
    first = json_object_iter_key(json_object_iter(v));
    assert_string_equal(first, "_fcgi");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "_fcgi"), "created")),
                     rec.created_ms);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "_fcgi"), "owner")),
                        "alice");
    cookie = json_object_get(v, "cookie");
    assert_int_equal(json_integer_value(json_object_get(cookie, "originalMaxAge")), 1800000);
    assert_string_equal(json_string_value(json_object_get(cookie, "expires")),
                        "2026-11-22T18:30:00.000Z");
    assert_int_equal(json_integer_value(json_object_get(v, "views")), 3);
    json_decref(v);
}

/* Names and client strings with quotes, backslashes, control characters
 * and non-ASCII come back byte for byte (escaped in the JSON, then read by
 * the parser rather than the fast path). */
static void
test_round_trip_of_strings_that_need_escapes(void **ctx)
{
    static const char *const names[] = {"a\"b",        "back\\slash", "tab\there",     "\x01\x1f",
                                        "caf\xc3\xa9", "/slash/",     "\xe2\x82\xac 5"};
    struct state *s = *ctx;
    struct sess_record want = full_record(), got;

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        want.owner = sess_str_c(names[i]);
        want.user_agent = sess_str_c(names[i]);
        assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &want), SESS_OK);
        assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), val(&s->plain), NOW_MS, 1000,
                                         &got, &s->buf, NULL),
                         SESS_OK);
        assert_same_meta(&got, &want);
        assert_views_in(&got, &s->buf);
    }
}

/* A route that set "_fcgi" itself would make a second copy of the key,
 * which Express and we would resolve differently: the data's goes. */
static void
test_encode_drops_a_data_key_named_like_ours(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record rec = {.expires_ms = NOW_MS + MIN_MS,
                              .created_ms = 7,
                              .data = SESS_STR_LIT(
                                  "{\"a\":1,\"_fcgi\":{\"created\":1,\"owner\":\"mallory\"}}")},
                       got;

    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &rec), SESS_OK);
    assert_str_equal(val(&s->plain), "{\"_fcgi\":{\"created\":7,\"deadline\":0},\"a\":1}");
    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), val(&s->plain), NOW_MS, 1000, &got,
                                     &s->buf, NULL),
                     SESS_OK);
    assert_int_equal(got.created_ms, 7);
    assert_int_equal(got.owner.len, 0);
    assert_str_equal(got.data, "{\"a\":1}");
}

static void
test_encode_refuses_data_that_is_not_an_object(void **ctx)
{
    static const char *const bad[] = {"",  "  ", "[]", "null",        "\"{}\"",
                                      "{", "}",  "1",  "{\"_fcgi\":", "[{}]"};
    struct state *s = *ctx;
    struct sess_record rec = {.expires_ms = NOW_MS + MIN_MS};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rec.data = sess_str_c(bad[i]);
        if (rs_value_encode(&s->plain, sess_str_c(ID), &rec) != SESS_EBADINPUT)
            fail_msg("\"%s\": encoded", bad[i]);
        if (rs_value_encode(&s->sealed, sess_str_c(ID), &rec) != SESS_EBADINPUT)
            fail_msg("\"%s\": sealed", bad[i]);
    }
    /* Spaces around the braces are fine. */
    rec.data = sess_str_c(" \n{ \"a\" : 1 }\t");
    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &rec), SESS_OK);
}

/* connect-redis's getTTL: whole seconds, rounded up, until the record dies
 * (idle expiry or absolute deadline, the sooner). */
static void
test_ttl_is_whole_seconds_rounded_up_to_the_sooner_end(void **ctx)
{
    static const struct {
        int64_t expires_in_ms, deadline_in_ms; /* 0: no deadline */
        int64_t ttl_s;
    } cases[] = {
        {1799995, 0, 1800}, {1800000, 0, 1800}, {1800001, 0, 1801},     {1, 0, 1},
        {0, 0, 0},          {-5000, 0, 0},      {1800000, 600500, 601}, {600000, 1800000, 600},
        {1800000, -1, 0},
    };

    (void)ctx;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sess_record rec = {
            .expires_ms = NOW_MS + cases[i].expires_in_ms,
            .deadline_ms = cases[i].deadline_in_ms ? NOW_MS + cases[i].deadline_in_ms : 0,
        };
        int64_t ttl_s = rs_ttl_seconds(&rec, NOW_MS);

        if (ttl_s != cases[i].ttl_s)
            fail_msg("case %zu: %lld s, want %lld", i, (long long)ttl_s, (long long)cases[i].ttl_s);
    }
}

/* ------------------------------------------------------------------------
 * Values an Express app wrote
 * ------------------------------------------------------------------------ */

static void
test_express_value_reads_as_a_session_that_starts_now(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record got;
    bool has_meta = true;

    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), sess_str_c(EXPRESS_VALUE), NOW_MS,
                                     1234000, &got, &s->buf, &has_meta),
                     SESS_OK);
    assert_false(has_meta);
    /* Data untouched; owner from user.username; no metadata of ours. */
    assert_str_equal(got.data, EXPRESS_VALUE);
    assert_str_equal(got.owner, "alice");
    assert_int_equal(got.created_ms, NOW_MS);
    /* express-session has no absolute timeout: ours starts at this
     * reading. */
    assert_int_equal(got.deadline_ms, NOW_MS + ABSOLUTE_S * 1000LL);
    /* The TTL, not cookie.expires (connect-redis's touch moves only the
     * TTL). */
    assert_int_equal(got.expires_ms, NOW_MS + 1234000);
    assert_int_equal(got.idle_ms, 0);
    assert_false(got.has_handle);
    assert_int_equal(got.client_addr.len, 0);
    assert_views_in(&got, &s->buf);
}

/* A key left without a TTL (PTTL -1) lives connect-redis's default day. */
static void
test_express_value_without_ttl_lives_a_day(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record got;

    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), sess_str_c(EXPRESS_VALUE), NOW_MS,
                                     -1, &got, &s->buf, NULL),
                     SESS_OK);
    assert_int_equal(got.expires_ms, NOW_MS + RS_NO_TTL_EXPIRY_MS);
    assert_int_equal(RS_NO_TTL_EXPIRY_MS, 86400 * 1000LL);
}

/* Without absolute_timeout no deadline is made up. */
static void
test_express_value_without_absolute_timeout_has_no_deadline(void **ctx)
{
    struct state *s = *ctx;
    struct rs_codec c;
    struct sess_record got;

    rs_codec_init(&c, &s->secrets, false, 0);
    assert_int_equal(rs_value_decode(&c, sess_str_c(ID), sess_str_c(EXPRESS_VALUE), NOW_MS, 1000,
                                     &got, &s->buf, NULL),
                     SESS_OK);
    assert_int_equal(got.deadline_ms, 0);
    rs_codec_wipe(&c);
}

/* Who is logged in, as an Express app records it: data.user.username, a
 * string, or nobody. */
static void
test_express_value_owner_is_user_username_or_nobody(void **ctx)
{
    static const struct {
        const char *value, *owner;
    } cases[] = {
        {"{\"cookie\":{\"originalMaxAge\":null,\"expires\":null,\"httpOnly\":true,\"path\":\"/\"}}",
         ""},
        {"{\"user\":{\"username\":\"bob\"}}", "bob"},
        {"{\"user\":{\"username\":\"b\\u00f6b\"}}", "b\xc3\xb6"
                                                    "b"},
        {"{\"user\":{\"username\":42}}", ""},
        {"{\"user\":\"bob\"}", ""},
        {"{\"user\":null}", ""},
        {"{\"username\":\"bob\"}", ""},
        {"{\"user\":{\"name\":\"bob\"}}", ""},
        {"{\"user\":{\"username\":\"bob\"},\"user\":{\"username\":\"eve\"}}", "eve"},
        /* Not JSON after all: no owner, and session.c drops the data. */
        {"{\"user\":{\"username\":\"bob\"}", ""},
        {"{\"user\":{\"username\":\"bob\"},}", ""},
    };
    struct state *s = *ctx;
    struct sess_record got;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum sess_err err = rs_value_decode(&s->plain, sess_str_c(ID), sess_str_c(cases[i].value),
                                            NOW_MS, 1000, &got, &s->buf, NULL);

        if (err != SESS_OK)
            fail_msg("%s: %d", cases[i].value, err);
        if (got.owner.len != strlen(cases[i].owner) ||
            memcmp(got.owner.ptr, cases[i].owner, got.owner.len) != 0)
            fail_msg("%s: owner \"%.*s\", want \"%s\"", cases[i].value, (int)got.owner.len,
                     got.owner.ptr, cases[i].owner);
    }
}

/* express-session keeps our key when it saves, but a hand-made or
 * re-ordered value may have it elsewhere: the parser finds it, and the
 * data comes back without it. */
static void
test_our_key_anywhere_is_read_and_taken_out(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record got;
    bool has_meta = false;
    const char *value = "{\"cookie\":{\"path\":\"/\"},\"_fcgi\":{\"deadline\":9,\"created\":5,"
                        "\"owner\":\"bob\",\"idle\":60000,\"remember\":true,\"handle\":"
                        "\"oKGio6SlpqeoqaqrrK2urw\",\"ua\":\"UA\"},\"n\":1}";

    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), sess_str_c(value), NOW_MS, 1000,
                                     &got, &s->buf, &has_meta),
                     SESS_OK);
    assert_true(has_meta);
    assert_int_equal(got.created_ms, 5);
    assert_int_equal(got.deadline_ms, 9);
    assert_int_equal(got.idle_ms, 60000);
    assert_true(got.is_remembered);
    assert_true(got.has_handle);
    assert_int_equal(got.handle[0], 0xa0);
    assert_int_equal(got.handle[15], 0xaf);
    assert_str_equal(got.owner, "bob");
    assert_str_equal(got.user_agent, "UA");
    assert_str_equal(got.data, "{\"cookie\":{\"path\":\"/\"},\"n\":1}");
    assert_views_in(&got, &s->buf);
}

/* Numbers a JSON writer may make of ours: reals are read, those beyond an
 * int64 read as absent rather than as whatever a cast would make. */
static void
test_meta_numbers_out_of_range_read_as_absent(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record got;
    const char *value =
        "{\"n\":1,\"_fcgi\":{\"created\":1.5e300,\"deadline\":-1e300,\"idle\":60000.0,"
        "\"life\":9.3e18,\"seen\":\"x\"}}";

    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), sess_str_c(value), NOW_MS, 1000,
                                     &got, &s->buf, NULL),
                     SESS_OK);
    assert_int_equal(got.created_ms, 0);
    assert_int_equal(got.deadline_ms, 0);
    assert_int_equal(got.idle_ms, 60000);
    assert_int_equal(got.lifetime_ms, 0);
    assert_int_equal(got.last_seen_ms, 0);
}

/* ------------------------------------------------------------------------
 * Sealed values (encrypt = true)
 * ------------------------------------------------------------------------ */

static void
test_sealed_value_round_trips_and_is_not_json(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record want = full_record(), got;
    json_error_t jerr;
    json_t *v;

    assert_int_equal(rs_value_encode(&s->sealed, sess_str_c(ID), &want), SESS_OK);
    assert_true(rs_has_prefix(s->sealed.val.ptr, s->sealed.val.len, RS_SEAL_MAGIC));
    assert_true(s->sealed.val.len > RS_SEAL_MAGIC_LEN + SESS_SEAL_OVERHEAD + strlen(DATA));
    /* An Express app fails loudly on it rather than misreading it. */
    v = json_loadb(s->sealed.val.ptr, s->sealed.val.len, 0, &jerr);
    assert_null(v);
    assert_null(memmem(s->sealed.val.ptr, s->sealed.val.len, "alice", 5));
    /* The plaintext it held is wiped once sealed. */
    for (size_t i = 0; i < s->sealed.plain.len; i++)
        assert_int_equal(s->sealed.plain.ptr[i], 0);
    assert_int_equal(rs_value_decode(&s->sealed, sess_str_c(ID), val(&s->sealed), NOW_MS, 5000,
                                     &got, &s->buf, NULL),
                     SESS_OK);
    assert_same_meta(&got, &want);
    assert_str_equal(got.data, DATA);
    assert_int_equal(got.expires_ms, NOW_MS + 5000);
}

/* A sealed value names its id: moved to another key, cut, or changed in
 * any byte, it does not open, and says why. */
static void
test_sealed_value_moved_or_changed_does_not_open(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record rec = full_record(), got;
    char copy[4096];
    size_t len;

    assert_int_equal(rs_value_encode(&s->sealed, sess_str_c(ID), &rec), SESS_OK);
    len = s->sealed.val.len;
    assert_true(len <= sizeof copy);
    memcpy(copy, s->sealed.val.ptr, len);

    assert_int_equal(rs_value_decode(&s->sealed, sess_str_c(ID2), (struct sess_str){copy, len},
                                     NOW_MS, 1000, &got, &s->buf, NULL),
                     SESS_ENOTFOUND);
    assert_non_null(strstr(s->sealed.why, "does not open"));
    for (size_t i = RS_SEAL_MAGIC_LEN; i < len; i += 7) {
        copy[i] ^= 0x20;
        assert_int_equal(rs_value_decode(&s->sealed, sess_str_c(ID), (struct sess_str){copy, len},
                                         NOW_MS, 1000, &got, &s->buf, NULL),
                         SESS_ENOTFOUND);
        copy[i] ^= 0x20;
    }
    for (size_t cut = 0; cut < len; cut += 9)
        assert_int_equal(rs_value_decode(&s->sealed, sess_str_c(ID), (struct sess_str){copy, cut},
                                         NOW_MS, 1000, &got, &s->buf, NULL),
                         SESS_ENOTFOUND);
    assert_int_equal(rs_value_decode(&s->sealed, sess_str_c(ID), (struct sess_str){copy, len},
                                     NOW_MS, 1000, &got, &s->buf, NULL),
                     SESS_OK);
    assert_null(s->sealed.why);
}

/* While sealing, a plain value is refused: anyone who can write to Redis
 * could otherwise forge a session. */
static void
test_sealing_refuses_plain_values(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record rec = full_record(), got;

    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &rec), SESS_OK);
    assert_int_equal(rs_value_decode(&s->sealed, sess_str_c(ID), val(&s->plain), NOW_MS, 1000, &got,
                                     &s->buf, NULL),
                     SESS_ENOTFOUND);
    assert_non_null(strstr(s->sealed.why, "plain"));
    assert_int_equal(rs_value_decode(&s->sealed, sess_str_c(ID), sess_str_c(EXPRESS_VALUE), NOW_MS,
                                     1000, &got, &s->buf, NULL),
                     SESS_ENOTFOUND);
    assert_false(rs_value_is_owned_by(&s->sealed, sess_str_c(ID), val(&s->plain),
                                      sess_str_c("alice"), &s->buf));
}

/* encrypt turned off again: what was sealed still opens, under the
 * secrets it was sealed with (a rotated-out secret is a lost session). */
static void
test_sealed_value_opens_after_encrypt_is_off_with_its_secret_only(void **ctx)
{
    struct state *s = *ctx;
    struct sess_secrets other = {0};
    struct rs_codec c;
    struct sess_record rec = full_record(), got;

    assert_int_equal(rs_value_encode(&s->sealed, sess_str_c(ID), &rec), SESS_OK);
    assert_int_equal(rs_value_decode(&s->plain, sess_str_c(ID), val(&s->sealed), NOW_MS, 1000, &got,
                                     &s->buf, NULL),
                     SESS_OK);
    assert_str_equal(got.data, DATA);

    assert_int_equal(sess_secrets_add(&other, sess_str_c(SECRET_B)), SESS_OK);
    rs_codec_init(&c, &other, false, 0);
    assert_int_equal(
        rs_value_decode(&c, sess_str_c(ID), val(&s->sealed), NOW_MS, 1000, &got, &s->buf, NULL),
        SESS_ENOTFOUND);
    rs_codec_wipe(&c);
    /* Rotation: a new first secret, the old one kept to read with. */
    assert_int_equal(sess_secrets_add(&other, sess_str_c(SECRET_A)), SESS_OK);
    rs_codec_init(&c, &other, true, 0);
    assert_int_equal(
        rs_value_decode(&c, sess_str_c(ID), val(&s->sealed), NOW_MS, 1000, &got, &s->buf, NULL),
        SESS_OK);
    rs_codec_wipe(&c);
    sess_secrets_free(&other);
}

/* ------------------------------------------------------------------------
 * Whose session
 * ------------------------------------------------------------------------ */

static void
test_owned_by_our_owner_or_the_data_user(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record rec = full_record();
    const char *express_bob = "{\"user\":{\"username\":\"bob\"}}";
    /* We wrote alice; an Express app logged carol in since. */
    const char *changed = "{\"_fcgi\":{\"created\":1,\"deadline\":0,\"owner\":\"alice\"},"
                          "\"user\":{\"username\":\"carol\"}}";

    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &rec), SESS_OK);
    assert_true(rs_value_is_owned_by(&s->plain, sess_str_c(ID), val(&s->plain), sess_str_c("alice"),
                                     &s->buf));
    assert_false(rs_value_is_owned_by(&s->plain, sess_str_c(ID), val(&s->plain), sess_str_c("alic"),
                                      &s->buf));
    assert_false(rs_value_is_owned_by(&s->plain, sess_str_c(ID), val(&s->plain), sess_str_c("bob"),
                                      &s->buf));
    assert_true(rs_value_is_owned_by(&s->plain, sess_str_c(ID), sess_str_c(express_bob),
                                     sess_str_c("bob"), &s->buf));
    assert_true(rs_value_is_owned_by(&s->plain, sess_str_c(ID), sess_str_c(changed),
                                     sess_str_c("alice"), &s->buf));
    assert_true(rs_value_is_owned_by(&s->plain, sess_str_c(ID), sess_str_c(changed),
                                     sess_str_c("carol"), &s->buf));

    /* An escape where none is needed still names alice. */
    assert_true(rs_value_is_owned_by(&s->plain, sess_str_c(ID),
                                     sess_str_c("{\"user\":{\"username\":\"\\u0061lice\"}}"),
                                     sess_str_c("alice"), &s->buf));
    assert_true(rs_value_is_owned_by(
        &s->plain, sess_str_c(ID),
        sess_str_c("{\"_fcgi\":{\"created\":1,\"owner\":\"al\\/ice\"},\"n\":1}"),
        sess_str_c("al/ice"), &s->buf));

    /* A name that needs escapes is found through the parser. */
    rec.owner = sess_str_c("o\"brien/\\x");
    assert_int_equal(rs_value_encode(&s->sealed, sess_str_c(ID), &rec), SESS_OK);
    assert_true(
        rs_value_is_owned_by(&s->sealed, sess_str_c(ID), val(&s->sealed), rec.owner, &s->buf));
    assert_false(
        rs_value_is_owned_by(&s->sealed, sess_str_c(ID2), val(&s->sealed), rec.owner, &s->buf));
}

/* ------------------------------------------------------------------------
 * Garbage
 * ------------------------------------------------------------------------ */

/* Whatever sits under a session key reads as a session or as none: never
 * a crash, and never an error that would answer 503 to whoever names it. */
static void
test_garbage_reads_as_no_session_or_as_data_for_session_c(void **ctx)
{
    static const struct {
        const char *value;
        size_t len; /* 0: strlen */
        enum sess_err err;
    } cases[] = {
        {"", 0, SESS_ENOTFOUND},
        {"x", 0, SESS_ENOTFOUND},
        {"{", 0, SESS_ENOTFOUND},
        {"}", 0, SESS_ENOTFOUND},
        {"[1,2]", 0, SESS_ENOTFOUND},
        {"\"{}\"", 0, SESS_ENOTFOUND},
        {"fcgi-sealed:1:", 0, SESS_ENOTFOUND},
        {"fcgi-sealed:1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0, SESS_ENOTFOUND},
        {"fcgi-sealed:", 0, SESS_ENOTFOUND},
        /* Braces at both ends: data for session.c, which drops what does
         * not parse. */
        {"{}", 0, SESS_OK},
        {" {} ", 0, SESS_OK},
        {"{garbage}", 0, SESS_OK},
        {"{\"a\":\0}", 7, SESS_OK},
        {"{\"_fcgi\":{\"created\":}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":1,\"deadline\":2", 0, SESS_ENOTFOUND},
        {"{\"_fcgi\":{\"created\":1,\"deadline\":2}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":1,\"deadline\":2}}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":99999999999999999999,\"deadline\":2}}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":-9223372036854775808,\"deadline\":2}}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":1,\"deadline\":2,\"owner\":\"a}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":1,\"deadline\":2,\"handle\":\"!!\"}}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":1,\"deadline\":2,\"handle\":\"AAAA\"}}", 0, SESS_OK},
        {"{\"_fcgi\":[],\"user\":{\"username\":\"x\"}}", 0, SESS_OK},
        {"{\"_fcgi\":\"x\"}", 0, SESS_OK},
        {"{\"_fcgi\":{\"owner\":7}}", 0, SESS_OK},
        {"{\"user\":{\"username\":\"\xff\xfe\"}}", 0, SESS_OK},
        {"{\"_fcgi\":{\"created\":1,\"deadline\":2,\"owner\":\"\xff\"}}", 0, SESS_OK},
    };
    struct state *s = *ctx;
    struct sess_record got;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sess_str raw = {cases[i].value,
                               cases[i].len ? cases[i].len : strlen(cases[i].value)};
        enum sess_err err =
            rs_value_decode(&s->plain, sess_str_c(ID), raw, NOW_MS, 1000, &got, &s->buf, NULL);

        if (err != cases[i].err)
            fail_msg("case %zu (%.*s): %d, want %d", i, (int)raw.len, raw.ptr, err, cases[i].err);
        if (err == SESS_OK)
            assert_views_in(&got, &s->buf);
        (void)rs_value_is_owned_by(&s->plain, sess_str_c(ID), raw, sess_str_c("x"), &s->buf);
        assert_int_equal(
            rs_value_decode(&s->sealed, sess_str_c(ID), raw, NOW_MS, 1000, &got, &s->buf, NULL),
            SESS_ENOTFOUND);
    }
}

/* Every byte string up to three bytes long, and every cut of a real value. */
static void
test_every_short_value_and_every_cut_is_survived(void **ctx)
{
    struct state *s = *ctx;
    struct sess_record rec = full_record(), got;
    unsigned char b[3];
    char value[1024];
    size_t len;

    for (unsigned v = 0; v < 1u << 24; v += 97) {
        b[0] = (unsigned char)v;
        b[1] = (unsigned char)(v >> 8);
        b[2] = (unsigned char)(v >> 16);
        for (size_t n = 0; n <= 3; n++) {
            enum sess_err err =
                rs_value_decode(&s->plain, sess_str_c(ID), (struct sess_str){(const char *)b, n},
                                NOW_MS, 1000, &got, &s->buf, NULL);
            assert_true(err == SESS_OK || err == SESS_ENOTFOUND);
        }
    }
    assert_int_equal(rs_value_encode(&s->plain, sess_str_c(ID), &rec), SESS_OK);
    len = s->plain.val.len;
    assert_true(len <= sizeof value);
    memcpy(value, s->plain.val.ptr, len);
    for (size_t cut = 0; cut <= len; cut++) {
        enum sess_err err =
            rs_value_decode(&s->plain, sess_str_c(ID), (struct sess_str){value, cut}, NOW_MS, 1000,
                            &got, &s->buf, NULL);
        assert_true(err == SESS_OK || err == SESS_ENOTFOUND);
        if (err == SESS_OK)
            assert_views_in(&got, &s->buf);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_keeps_every_field_and_the_data_as_it_was,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_of_a_bare_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_is_express_session_json_with_our_key_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_of_strings_that_need_escapes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_encode_drops_a_data_key_named_like_ours, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_encode_refuses_data_that_is_not_an_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ttl_is_whole_seconds_rounded_up_to_the_sooner_end,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_express_value_reads_as_a_session_that_starts_now,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_express_value_without_ttl_lives_a_day, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_express_value_without_absolute_timeout_has_no_deadline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_express_value_owner_is_user_username_or_nobody, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_our_key_anywhere_is_read_and_taken_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_meta_numbers_out_of_range_read_as_absent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealed_value_round_trips_and_is_not_json, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealed_value_moved_or_changed_does_not_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealing_refuses_plain_values, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sealed_value_opens_after_encrypt_is_off_with_its_secret_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owned_by_our_owner_or_the_data_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_reads_as_no_session_or_as_data_for_session_c,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_short_value_and_every_cut_is_survived, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
