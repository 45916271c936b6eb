/* Fuzzes the Redis store's value codec (store/redis/codec.c) on the read
 * path: whatever sits under a session key, as anyone who can write to
 * Redis could leave it. A value is a session or none: never a crash, never
 * an error that would answer 503; a session's views lie in the buffer and
 * end with a NUL; its expiry is the TTL's; a value Express made keeps its
 * data byte for byte and starts at the reading; the owner decode names is
 * one rs_value_is_owned_by agrees with; the sealing codec opens nothing but
 * its own sealed value; and what decodes encodes again and decodes to the
 * same metadata.
 *
 * First byte: bits 1-2 pick the TTL Redis reports (-1, 0, 1 ms, 1799995
 * ms). Bit 0 clear, the rest is the value. Bit 0 set, the rest edits the
 * sealed value of a fixed record: triples (offset high, offset low, xor
 * mask), offsets modulo its length, then a last byte or two cut its
 * length. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_util.h"
#include "redis_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID         "FuzzRedisValue-0123456789_abcdefghijklmnopq" /* 43 characters */
#define NOW_MS     1795370400000LL                               /* 2026-11-22T18:00Z */
#define ABSOLUTE_S (12 * 3600)

static const char data_json[] =
    "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"2026-11-22T18:30:00.000Z\","
    "\"secure\":false,\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},"
    "\"user\":{\"username\":\"alice\"},\"views\":3}";

static struct {
    bool is_ready;
    struct sess_secrets secrets;
    struct rs_codec plain;  /* encrypt = auto */
    struct rs_codec sealed; /* encrypt = true */
    struct sess_buf own;    /* the sealed value of the fixed record */
    struct sess_buf value;  /* this input's value */
    struct sess_buf buf, buf2, scratch, text;
} g;

static void
cleanup(void)
{
    rs_codec_wipe(&g.plain);
    rs_codec_wipe(&g.sealed);
    sess__buf_free(&g.own);
    sess__buf_free(&g.value);
    sess__buf_free(&g.buf);
    sess__buf_free(&g.buf2);
    sess__buf_free(&g.scratch);
    sess__buf_free(&g.text);
    sess_secrets_free(&g.secrets);
}

static void
init(void)
{
    struct sess_record rec = {
        .expires_ms = NOW_MS + 30 * 60 * 1000LL,
        .deadline_ms = NOW_MS + 12 * 3600 * 1000LL,
        .created_ms = NOW_MS - 60 * 1000LL,
        .owner = SESS_STR_LIT("alice"),
        .data = SESS_STR_LIT(data_json),
        .idle_ms = 30 * 60 * 1000LL,
        .has_handle = true,
        .client_addr = SESS_STR_LIT("192.0.2.1"),
        .user_agent = SESS_STR_LIT("curl/8"),
        .last_seen_ms = NOW_MS,
    };

    if (g.is_ready)
        return;
    CHECK(sess_secrets_add(&g.secrets, SESS_STR_LIT("redis value fuzz secret, 32 bytes or more")) ==
          SESS_OK);
    rs_codec_init(&g.plain, &g.secrets, false, ABSOLUTE_S * 1000LL);
    rs_codec_init(&g.sealed, &g.secrets, true, ABSOLUTE_S * 1000LL);
    CHECK(rs_value_encode(&g.sealed, SESS_STR_LIT(ID), &rec) == SESS_OK);
    CHECK(sess__buf_append(&g.own, g.sealed.val.ptr, g.sealed.val.len) == SESS_OK);
    atexit(cleanup);
    g.is_ready = true;
}

/* The input's value: raw bytes, or the sealed value edited. */
static void
make_value(const uint8_t *data, size_t size, uint8_t mode)
{
    g.value.len = 0;
    if (!(mode & 1)) {
        CHECK(sess__buf_append(&g.value, data, size) == SESS_OK);
        return;
    }
    CHECK(sess__buf_append(&g.value, g.own.ptr, g.own.len) == SESS_OK);
    for (; size >= 3; data += 3, size -= 3)
        g.value.ptr[((size_t)data[0] << 8 | data[1]) % g.value.len] ^= (char)data[2];
    if (size > 0)
        g.value.len = ((size_t)data[0] | (size > 1 ? (size_t)data[1] << 8 : 0)) % (g.value.len + 1);
}

static bool
str_eq(struct sess_str a, struct sess_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Bytes JSON writes without an escape, so that codec.c reads them back on
 * its fast path. */
static bool
is_plain(struct sess_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] < 0x20 || s.ptr[i] == '"' || s.ptr[i] == '\\')
            return false;
    return true;
}

static bool
is_short(int64_t v)
{
    return v > -900000000000000000LL && v < 900000000000000000LL;
}

static void
check_views(const struct sess_record *rec, const struct sess_buf *buf)
{
    const struct sess_str *views[] = {&rec->owner, &rec->data, &rec->client_addr, &rec->user_agent};

    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        CHECK(views[i]->ptr >= buf->ptr && views[i]->ptr + views[i]->len < buf->ptr + buf->len);
        CHECK(views[i]->ptr[views[i]->len] == '\0');
    }
}

static void
check_same_meta(const struct sess_record *a, const struct sess_record *b)
{
    CHECK(a->created_ms == b->created_ms && a->deadline_ms == b->deadline_ms);
    CHECK(a->idle_ms == b->idle_ms && a->lifetime_ms == b->lifetime_ms);
    CHECK(a->last_seen_ms == b->last_seen_ms && a->is_remembered == b->is_remembered);
    CHECK(a->has_handle == b->has_handle);
    CHECK(!a->has_handle || memcmp(a->handle, b->handle, sizeof a->handle) == 0);
    CHECK(str_eq(a->owner, b->owner) && str_eq(a->client_addr, b->client_addr) &&
          str_eq(a->user_agent, b->user_agent));
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* `d` as write_json lays it after our key: "{", then the first key (or the
 * closing brace), surrounding spaces gone. */
static struct sess_str
as_rewritten(struct sess_str d)
{
    size_t b = 0, e = d.len;

    while (b < e && is_space(d.ptr[b]))
        b++;
    while (e > b && is_space(d.ptr[e - 1]))
        e--;
    for (b++; b < e && is_space(d.ptr[b]);)
        b++;
    g.text.len = 0;
    CHECK(sess__buf_append(&g.text, "{", 1) == SESS_OK);
    CHECK(sess__buf_append(&g.text, d.ptr + b, e - b) == SESS_OK);
    return (struct sess_str){g.text.ptr, g.text.len};
}

/* What decoded encodes again (unless its data is no JSON object), and
 * decodes to the same metadata: on codec.c's fast path when nothing needs
 * an escape, with the data as write_json lays it. */
static void
check_round_trip(const struct sess_record *rec)
{
    struct sess_record again;
    bool has_meta = false;
    json_error_t jerr;
    json_t *obj = json_loadb(rec->data.ptr, rec->data.len, 0, &jerr);
    enum sess_err err = rs_value_encode(&g.plain, SESS_STR_LIT(ID), rec);
    bool is_fast = is_plain(rec->owner) && is_plain(rec->client_addr) &&
                   is_plain(rec->user_agent) && is_short(rec->created_ms) &&
                   is_short(rec->deadline_ms) && is_short(rec->idle_ms) &&
                   is_short(rec->lifetime_ms) && is_short(rec->last_seen_ms);

    CHECK(err == SESS_OK || err == SESS_EBADINPUT);
    CHECK(err == SESS_OK || !json_is_object(obj));
    json_decref(obj);
    if (err != SESS_OK)
        return;
    err = rs_value_decode(&g.plain, SESS_STR_LIT(ID),
                          (struct sess_str){g.plain.val.ptr, g.plain.val.len}, NOW_MS, 1000, &again,
                          &g.buf2, &has_meta);
    CHECK(err == SESS_OK);
    check_views(&again, &g.buf2);
    CHECK(!is_fast || has_meta);
    if (has_meta)
        check_same_meta(&again, rec);
    /* Data holding a key like ours loses it (codec.c's without_meta). */
    if (is_fast && !memmem(rec->data.ptr, rec->data.len, "\"_fcgi\"", 7))
        CHECK(str_eq(again.data, as_rewritten(rec->data)));
}

static void
check_plain(struct sess_str raw, long long pttl_ms)
{
    struct sess_record rec;
    bool has_meta = false;
    json_error_t jerr;
    json_t *obj;
    enum sess_err err =
        rs_value_decode(&g.plain, SESS_STR_LIT(ID), raw, NOW_MS, pttl_ms, &rec, &g.buf, &has_meta);

    CHECK(err == SESS_OK || err == SESS_ENOTFOUND);
    if (err != SESS_OK)
        return;
    check_views(&rec, &g.buf);
    CHECK(rec.expires_ms == NOW_MS + (pttl_ms >= 0 ? pttl_ms : RS_NO_TTL_EXPIRY_MS));
    if (!has_meta) {
        /* Express's: untouched, starting now, owned by user.username. */
        CHECK(str_eq(rec.data, raw));
        CHECK(rec.created_ms == NOW_MS && rec.deadline_ms == NOW_MS + ABSOLUTE_S * 1000LL);
        obj = json_loadb(raw.ptr, raw.len, 0, &jerr);
        CHECK(str_eq(rec.owner, sess__data_owner(obj)));
        json_decref(obj);
    }
    if (rec.owner.len)
        CHECK(rs_value_is_owned_by(&g.plain, SESS_STR_LIT(ID), raw, rec.owner, &g.scratch));
    check_round_trip(&rec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long long pttls[] = {-1, 0, 1, 1799995};
    uint8_t mode = size > 0 ? data[0] : 0;
    struct sess_record rec;
    struct sess_str raw;
    enum sess_err err;

    init();
    make_value(size > 0 ? data + 1 : data, size > 0 ? size - 1 : 0, mode);
    raw = (struct sess_str){g.value.ptr ? g.value.ptr : "", g.value.len};
    check_plain(raw, pttls[(mode >> 1) & 3]);
    /* Sealing: only the store's own sealed value opens. */
    err = rs_value_decode(&g.sealed, SESS_STR_LIT(ID), raw, NOW_MS, 1000, &rec, &g.buf, NULL);
    CHECK(err == (str_eq(raw, (struct sess_str){g.own.ptr, g.own.len}) ? SESS_OK : SESS_ENOTFOUND));
    if (err == SESS_OK)
        check_views(&rec, &g.buf);
    return 0;
}
