/* Fuzzes the Cookie header parser (sess_cookie_find) and the Set-Cookie
 * builder: bounded output, no control bytes let through, and every value the
 * builder writes is read back as the same bytes. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sess_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What decodeURIComponent accepts once every byte is escaped: shortest-form
 * UTF-8 of scalar values. */
static bool
is_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            n = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n >= len - i)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static bool
has_control(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

static void
check_find(struct sess_str header, const char *name, size_t cap)
{
    char *out = malloc(cap > 0 ? cap : 1);
    size_t len = SIZE_MAX;
    enum sess_err err;

    assert(out != NULL);
    err = sess_cookie_find(header, sess_str_c(name), out, cap, &len);
    if (err == SESS_OK) {
        assert(len < cap);
        assert(len <= header.len);
        assert(out[len] == '\0');
        assert(!has_control((const unsigned char *)out, len));
    } else {
        assert(err == SESS_ENOTFOUND || err == SESS_ETOOBIG || err == SESS_EBADINPUT);
    }
    free(out);
}

/* The builder's output, as a browser returns it ("name=VALUE"), parses back
 * to the value: exactly when the value is text cookie.parse would decode,
 * and as the encoded text otherwise (a bad decode keeps the raw value). */
static void
check_round_trip(const uint8_t *data, size_t size)
{
    struct sess_cookie_attrs attrs = {.path = "/",
                                      .same_site = SESS_SAME_SITE_LAX,
                                      .http_only = true,
                                      .has_expiry = true,
                                      .expires_at = 1795372200};
    size_t cap = size * 3 + 128;
    char *built = malloc(cap);
    char *out = malloc(size * 3 + 1);
    size_t built_len = 0, len = 0;
    enum sess_err err;

    assert(built != NULL && out != NULL);
    err = sess_cookie_build(built, cap, &built_len, SESS_STR_LIT("sid"),
                            (struct sess_str){(const char *)data, size}, &attrs, 1795370400);
    assert(err == SESS_OK);
    assert(built_len == strlen(built));
    char *semi = strchr(built, ';');
    assert(semi != NULL);
    struct sess_str pair = {built, (size_t)(semi - built)};
    err = sess_cookie_find(pair, SESS_STR_LIT("sid"), out, size * 3 + 1, &len);
    if (is_utf8(data, size)) {
        if (has_control(data, size)) {
            assert(err == SESS_EBADINPUT);
        } else {
            assert(err == SESS_OK);
            assert(len == size);
            assert(size == 0 || memcmp(out, data, size) == 0);
        }
    } else {
        assert(err == SESS_OK);
        assert(len == pair.len - 4);
        assert(memcmp(out, pair.ptr + 4, len) == 0);
    }
    free(out);
    free(built);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"sid", "a", "", "__Host-sid", "session", "s%3A"};
    struct sess_str header = {(const char *)data, size};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        check_find(header, names[i], SESS_COOKIE_MAX_LEN);
        check_find(header, names[i], 8);
    }
    check_find(header, "sid", 0);
    check_find(header, "sid", 1);
    check_round_trip(data, size);
    return 0;
}
