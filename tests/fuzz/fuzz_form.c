/* Fuzzes the form parser (sess_form_parse) with whole bodies: what it accepts
 * is at most 100 fields of valid UTF-8 strings under NUL-free names; the
 * fields, percent-encoded again, parse back to the same object; the first of
 * repeated names wins; and the 101st field is refused. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_util.h"
#include "sess_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS_MAX 100 /* sess.h: "at most 100 fields" */

struct text {
    char *ptr;
    size_t len, cap;
};

static void
put(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *p = realloc(t->ptr, cap);
        CHECK(p != NULL);
        t->ptr = p;
        t->cap = cap;
    }
    memcpy(t->ptr + t->len, s, n);
    t->len += n;
    t->ptr[t->len] = '\0';
}

/* What a browser sends: every byte but [A-Za-z0-9*-._] escaped, a space as
 * '+' (HTML's form encoding) or as %20 (encodeURIComponent). */
static void
put_encoded(struct text *t, const char *s, size_t n, bool space_as_plus)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            (c != '\0' && strchr("*-._", c) != NULL)) {
            put(t, &s[i], 1);
        } else if (c == ' ' && space_as_plus) {
            put(t, "+", 1);
        } else {
            put(t, esc, 3);
        }
    }
}

static void
check_accepted(json_t *form, bool space_as_plus)
{
    struct text enc = {0};
    const char *key, *first_key = NULL;
    json_t *value, *again = NULL;
    size_t n = json_object_size(form);

    CHECK(json_is_object(form));
    CHECK(n <= FIELDS_MAX);
    json_object_foreach(form, key, value)
    {
        CHECK(json_is_string(value));
        CHECK(fuzz_is_utf8(key, strlen(key)));
        CHECK(fuzz_is_utf8(json_string_value(value), json_string_length(value)));
        if (enc.len > 0)
            put(&enc, "&", 1);
        put_encoded(&enc, key, strlen(key), space_as_plus);
        put(&enc, "=", 1);
        put_encoded(&enc, json_string_value(value), json_string_length(value), space_as_plus);
        if (!first_key)
            first_key = key;
    }

    /* Encoded again, the fields read back as they were. */
    CHECK(sess_form_parse((struct sess_str){enc.ptr ? enc.ptr : "", enc.len}, &again) == SESS_OK);
    CHECK(json_equal(form, again));
    json_decref(again);
    again = NULL;

    /* One field more: refused at 101, else ignored when its name repeats
     * the first (the first of repeated names wins). */
    if (first_key) {
        put(&enc, "&", 1);
        put_encoded(&enc, first_key, strlen(first_key), space_as_plus);
        put(&enc, "=not+the+first", 14);
        if (n == FIELDS_MAX) {
            CHECK(sess_form_parse((struct sess_str){enc.ptr, enc.len}, &again) == SESS_ETOOBIG);
            CHECK(again == NULL);
        } else {
            CHECK(sess_form_parse((struct sess_str){enc.ptr, enc.len}, &again) == SESS_OK);
            CHECK(json_equal(form, again));
        }
        json_decref(again);
    }
    free(enc.ptr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t poison = {0};
    json_t *form = &poison; /* sess_form_parse must set it, even on error */
    enum sess_err err = sess_form_parse((struct sess_str){(const char *)data, size}, &form);

    if (err == SESS_OK) {
        CHECK(form != NULL);
        /* The encoding style follows the input, so both get exercised. */
        check_accepted(form, size % 2 == 0);
        json_decref(form);
    } else {
        CHECK(err == SESS_EBADINPUT || err == SESS_ETOOBIG);
        CHECK(form == NULL);
    }
    return 0;
}
