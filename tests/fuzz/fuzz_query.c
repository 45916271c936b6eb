/* Fuzzes QUERY_STRING as a route reads it (sess_query_str on a request built
 * by hand) against a reference parser written here from sess.h's rules:
 * '&'-separated pairs split at the first '=', '+' as a space, %XX escapes,
 * the first of repeated names wins, at most 100 fields, and a bad escape,
 * invalid UTF-8 or a NUL in a name refuses the whole query. Every field the
 * reference finds must come back with its value, nothing else may, and the
 * parse is done once per request. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS_MAX 100
#define QUERY_MAX  65536 /* longer inputs are cut: a web server's URL limit is far below */

struct field {
    char *key, *value; /* decoded, NUL-terminated; value may hold NULs */
    size_t value_len;
};

struct reference {
    struct field field[FIELDS_MAX];
    size_t count;
};

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0, n) into a new string; false on a bad escape. */
static bool
decode(const char *s, size_t n, char **out, size_t *out_len)
{
    char *d = malloc(n + 1);
    size_t len = 0;

    CHECK(d != NULL);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(d);
                return false;
            }
            d[len++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            d[len++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    d[len] = '\0';
    *out = d;
    *out_len = len;
    return true;
}

static void
reference_free(struct reference *ref)
{
    for (size_t i = 0; i < ref->count; i++) {
        free(ref->field[i].key);
        free(ref->field[i].value);
    }
    ref->count = 0;
}

static struct field *
reference_find(struct reference *ref, const char *key)
{
    for (size_t i = 0; i < ref->count; i++)
        if (strcmp(ref->field[i].key, key) == 0)
            return &ref->field[i];
    return NULL;
}

/* False when the query is refused as a whole. Pairs that are empty on both
 * sides of the '=' ("&&", "&=&") are not fields. */
static bool
reference_parse(const char *qs, struct reference *ref)
{
    size_t fields = 0;
    const char *p = qs;

    ref->count = 0;
    while (*p) {
        size_t pair = strcspn(p, "&");
        size_t klen = strcspn(p, "=&");
        const char *v = klen < pair ? p + klen + 1 : p + pair;
        size_t vlen = klen < pair ? pair - klen - 1 : 0;
        char *key, *value;
        size_t key_len, value_len;
        bool is_ok;

        if (klen > 0 || vlen > 0) {
            if (++fields > FIELDS_MAX)
                return false;
            if (!decode(p, klen, &key, &key_len))
                return false;
            if (!decode(v, vlen, &value, &value_len)) {
                free(key);
                return false;
            }
            is_ok = fuzz_is_utf8(key, key_len) && fuzz_is_utf8(value, value_len) &&
                    strlen(key) == key_len;
            if (!is_ok || reference_find(ref, key)) {
                free(key);
                free(value);
                if (!is_ok)
                    return false;
            } else {
                ref->field[ref->count++] = (struct field){key, value, value_len};
            }
        }
        p += pair;
        if (*p == '&')
            p++;
    }
    return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sess_request req;
    static struct reference ref;
    static char qs_env[sizeof "QUERY_STRING=" + QUERY_MAX];
    char *envp[] = {"REQUEST_METHOD=GET", qs_env, NULL};
    size_t len = strnlen((const char *)data, size < QUERY_MAX ? size : QUERY_MAX);
    const char *qs = qs_env + strlen("QUERY_STRING=");
    bool is_ok;

    /* The server passes a C string: the query ends at a NUL. */
    memcpy(qs_env, "QUERY_STRING=", strlen("QUERY_STRING="));
    memcpy(qs_env + strlen("QUERY_STRING="), data, len);
    qs_env[strlen("QUERY_STRING=") + len] = '\0';
    memset(&req, 0, sizeof req);
    req.envp = envp;

    is_ok = reference_parse(qs, &ref);
    if (!is_ok) {
        reference_free(&ref);
        /* Nothing from a refused query, however often asked (each ask
         * parses it again: a few names are enough). */
        const char *p = qs;
        for (int i = 0; i < 4 && *p; i++) {
            char key[64];
            size_t klen = strcspn(p, "=&");
            size_t n = klen < sizeof key ? klen : sizeof key - 1;
            memcpy(key, p, n);
            key[n] = '\0';
            CHECK(sess_query_str(&req, key) == NULL);
            p += strcspn(p, "&");
            p += *p == '&';
        }
        CHECK(sess_query_str(&req, "") == NULL);
    } else {
        for (size_t i = 0; i < ref.count; i++) {
            const char *got = sess_query_str(&req, ref.field[i].key);
            /* A route sees a C string: the value up to its first NUL. */
            size_t want_len = strlen(ref.field[i].value);

            CHECK(got != NULL);
            CHECK(strlen(got) == want_len);
            CHECK(memcmp(got, ref.field[i].value, want_len) == 0);
            /* Parsed once per request: the same string when asked again. */
            CHECK(sess_query_str(&req, ref.field[i].key) == got);
        }
        /* Names are valid UTF-8, so these can never be one. */
        CHECK(sess_query_str(&req, "\xff") == NULL);
        CHECK(sess_query_str(&req, "\xc0\x80") == NULL);
        if (!reference_find(&ref, ""))
            CHECK(sess_query_str(&req, "") == NULL);
        reference_free(&ref);
    }
    sess__request_reset(&req);
    CHECK(req.query == NULL);
    return 0;
}
