/* Loads JSON text into jansson values in one pass over a byte range. The
 * specification is jansson 2.14's json_loadb(text, len, 0): what it
 * rejects, this rejects, its quirks included (noted where they arise). What
 * becomes of the values is session.c's business. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_load.h"

/* A string as it stands in the text, between its quotes, already checked:
 * decoding it cannot fail. */
struct raw_string {
    const char *ptr;
    size_t len;
    bool has_escapes;
};

struct number {
    bool is_real;
    json_int_t integer;
    double real;
};

/* One load. A container is attached to its parent as soon as it is made, so
 * that releasing the root releases everything built so far. */
struct loader {
    const char *p;
    const char *end;
    json_t *root;
    const char *drop_key;
    size_t drop_len;
    bool is_skipping;                    /* inside a member being dropped: check, build nothing */
    struct raw_string key;               /* the member name waiting for its value */
    size_t depth;                        /* containers open */
    json_t *open[JSON_PARSER_MAX_DEPTH]; /* NULL for those being skipped */
    char closers[JSON_PARSER_MAX_DEPTH]; /* '}' or ']' */
};

enum step { STEP_VALUE, STEP_MEMBER, STEP_AFTER_VALUE, STEP_DONE, STEP_FAILED };

/* Bytes that stand for themselves in a string: ASCII from the space on,
 * but for '"' and '\\'. */
static const bool is_plain[256] = {
    [0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* '"' excluded */
    [0x30] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x40] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x50] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* '\\' excluded */
    [0x60] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [0x70] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* DEL included */
};

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* JSON's four whitespace bytes, and no others. */
static const char *
skip_spaces(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* The four hex digits at `s` as a number, -1 if one is not a hex digit. */
static int32_t
hex4(const char *s)
{
    int32_t value = 0;

    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int32_t digit;

        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return -1;
        value = value << 4 | digit;
    }
    return value;
}

/* Checks the escape at `p` (a backslash); returns the text after it, or
 * NULL. \u0000 is refused (hex4() <= 0): jansson refuses a NUL in a string
 * without JSON_ALLOW_NUL, and in a member name always. A surrogate must be
 * a high one followed by the \u escape of a low one. */
static const char *
scan_escape(const char *p, const char *end)
{
    int32_t cp;

    if (end - p < 2)
        return NULL;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 2;
    case 'u':
        break;
    default:
        return NULL;
    }
    if (end - p < 6 || (cp = hex4(p + 2)) <= 0 || (cp >= 0xdc00 && cp <= 0xdfff))
        return NULL;
    if (cp < 0xd800 || cp > 0xdbff)
        return p + 6;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
        return NULL;
    cp = hex4(p + 8);
    return cp >= 0xdc00 && cp <= 0xdfff ? p + 12 : NULL;
}

/* Checks the UTF-8 sequence at `p` (a byte neither plain, quote nor
 * backslash); returns the text after it, or NULL. Shortest form only, no
 * surrogates, nothing past U+10FFFF: jansson's decoder, as a table of
 * allowed second bytes (Unicode 15, table 3-7). Control bytes land here and
 * are refused. */
static const char *
scan_utf8(const char *p, const char *end)
{
    unsigned char lead = (unsigned char)p[0];
    unsigned char low = 0x80, high = 0xbf;
    ptrdiff_t trail;

    if (lead >= 0xc2 && lead <= 0xdf) {
        trail = 1;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        trail = 2;
        if (lead == 0xe0)
            low = 0xa0;
        else if (lead == 0xed)
            high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        trail = 3;
        if (lead == 0xf0)
            low = 0x90;
        else if (lead == 0xf4)
            high = 0x8f;
    } else {
        return NULL;
    }
    if (end - p <= trail || (unsigned char)p[1] < low || (unsigned char)p[1] > high)
        return NULL;
    for (ptrdiff_t i = 2; i <= trail; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80)
            return NULL;
    return p + trail + 1;
}

/* Checks the string whose opening quote is at `p`; returns the text after
 * its closing quote, or NULL. */
static const char *
scan_string(const char *p, const char *end, struct raw_string *out)
{
    const char *s = p + 1;

    out->has_escapes = false;
    for (;;) {
        while (s < end && is_plain[(unsigned char)*s])
            s++;
        if (s == end)
            return NULL;
        if (*s == '"')
            break;
        if (*s == '\\') {
            s = scan_escape(s, end);
            out->has_escapes = true;
        } else {
            s = scan_utf8(s, end);
        }
        if (s == NULL)
            return NULL;
    }
    out->ptr = p + 1;
    out->len = (size_t)(s - out->ptr);
    return s + 1;
}

static size_t
encode_utf8(int32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Writes what the checked escape at `p` stands for to `out` (up to 4 bytes)
 * and its length to `*n`; returns the text after it. */
static const char *
decode_escape(const char *p, char *out, size_t *n)
{
    int32_t cp;

    *n = 1;
    switch (p[1]) {
    case 'b':
        *out = '\b';
        return p + 2;
    case 'f':
        *out = '\f';
        return p + 2;
    case 'n':
        *out = '\n';
        return p + 2;
    case 'r':
        *out = '\r';
        return p + 2;
    case 't':
        *out = '\t';
        return p + 2;
    case 'u':
        break;
    default: /* '"', '\\' and '/' */
        *out = p[1];
        return p + 2;
    }
    cp = hex4(p + 2);
    p += 6;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(p + 2) - 0xdc00);
        p += 6;
    }
    *n = encode_utf8(cp, out);
    return p;
}

/* Writes the bytes the checked string `s` stands for to `out`, which has
 * room for s.len bytes (no escape is shorter than what it decodes to), and
 * returns their count. */
static size_t
decode_string(struct raw_string s, char *out)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    char *o = out;

    while (p < end) {
        const char *escape = memchr(p, '\\', (size_t)(end - p));
        size_t plain = (size_t)((escape != NULL ? escape : end) - p);
        size_t n;

        memcpy(o, p, plain);
        o += plain;
        p += plain;
        if (escape != NULL) {
            p = decode_escape(p, o, &n);
            o += n;
        }
    }
    return (size_t)(o - out);
}

/* Whether the checked string `s` stands for the `len` bytes at `name`,
 * decoding its escapes on the way rather than into a buffer. */
static bool
is_named(struct raw_string s, const char *name, size_t len)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    size_t at = 0;

    if (!s.has_escapes)
        return s.len == len && memcmp(s.ptr, name, len) == 0;
    while (p < end) {
        char bytes[4];
        size_t n = 1;

        if (*p == '\\')
            p = decode_escape(p, bytes, &n);
        else
            bytes[0] = *p++;
        if (n > len - at || memcmp(bytes, name + at, n) != 0)
            return false;
        at += n;
    }
    return at == len;
}

/* Strings with escapes are decoded on the stack up to this many bytes, on
 * the heap beyond. */
#define SMALL_DECODED 256

/* A new string of what `s` stands for; NULL when out of memory. */
static json_t *
string_new(struct raw_string s)
{
    char small[SMALL_DECODED];
    char *bytes = small;
    json_t *string;

    if (!s.has_escapes)
        return json_stringn_nocheck(s.ptr, s.len);
    if (s.len > sizeof small && (bytes = malloc(s.len)) == NULL)
        return NULL;
    string = json_stringn_nocheck(bytes, decode_string(s, bytes));
    if (bytes != small)
        free(bytes);
    return string;
}

/* Sets member `key` of `object` to `value`, whose reference it takes (NULL
 * when making the value failed). A name seen before keeps its place and
 * takes the new value, as jansson's loader does through the same call. */
static bool
set_member(json_t *object, struct raw_string key, json_t *value)
{
    char small[SMALL_DECODED];
    char *bytes = small;
    bool is_set;

    if (!key.has_escapes)
        return json_object_setn_new_nocheck(object, key.ptr, key.len, value) == 0;
    if (key.len > sizeof small && (bytes = malloc(key.len)) == NULL) {
        json_decref(value);
        return false;
    }
    is_set = json_object_setn_new_nocheck(object, bytes, decode_string(key, bytes), value) == 0;
    if (bytes != small)
        free(bytes);
    return is_set;
}

/* jansson hands strtod() the number with its '.' replaced by the locale's
 * decimal point, so that a setlocale() in the embedding program changes
 * nothing; and refuses an overflow to infinity, but takes an underflow
 * (1e-400 loads as 0.0). */
static bool
parse_real(const char *text, size_t len, double *out)
{
    char small[64];
    char *copy = small;
    const char *point = localeconv()->decimal_point;
    char *dot;

    if (len >= sizeof small && (copy = malloc(len + 1)) == NULL)
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (*point != '.' && (dot = memchr(copy, '.', len)) != NULL)
        *dot = *point;
    errno = 0;
    *out = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return !((*out == HUGE_VAL || *out == -HUGE_VAL) && errno == ERANGE);
}

/* Checks the number at `p` (JSON's grammar: no leading zeros, digits on
 * both sides of a '.') and finds its value; returns the text after it, or
 * NULL. Without '.', 'e' or 'E' it is an integer, refused past the range
 * of json_int_t as strtoll() reports it. */
static const char *
scan_number(const char *p, const char *end, struct number *n)
{
    const char *start = p;
    bool is_negative = *p == '-';
    uint64_t limit = is_negative ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
    uint64_t magnitude = 0;
    bool is_too_big = false;

    if (is_negative)
        p++;
    if (p == end || !is_digit(*p))
        return NULL;
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return NULL;
    } else {
        do {
            unsigned digit = (unsigned)(*p - '0');
            if (magnitude < limit / 10 || (magnitude == limit / 10 && digit <= limit % 10))
                magnitude = magnitude * 10 + digit;
            else
                is_too_big = true;
        } while (++p < end && is_digit(*p));
    }
    if (p == end || (*p != '.' && *p != 'e' && *p != 'E')) {
        n->is_real = false;
        if (!is_negative)
            n->integer = (json_int_t)magnitude;
        else if (magnitude != 0)
            n->integer = -(json_int_t)(magnitude - 1) - 1;
        else
            n->integer = 0;
        return is_too_big ? NULL : p;
    }
    if (*p == '.') {
        if (++p == end || !is_digit(*p))
            return NULL;
        while (++p < end && is_digit(*p))
            ;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        while (++p < end && is_digit(*p))
            ;
    }
    n->is_real = true;
    return parse_real(start, (size_t)(p - start), &n->real) ? p : NULL;
}

static const char *
scan_word(const char *p, const char *end, const char *word, size_t len)
{
    return (size_t)(end - p) >= len && memcmp(p, word, len) == 0 ? p + len : NULL;
}

/* Checks the string, number or literal at `p` and, when `is_built`, makes
 * its value into `*value` (NULL when out of memory); returns the text after
 * it, or NULL. */
static const char *
scan_scalar(const char *p, const char *end, bool is_built, json_t **value)
{
    struct raw_string s;
    struct number n;

    switch (*p) {
    case '"':
        p = scan_string(p, end, &s);
        if (p != NULL && is_built)
            *value = string_new(s);
        return p;
    case 't':
        p = scan_word(p, end, "true", 4);
        if (p != NULL && is_built)
            *value = json_true();
        break;
    case 'f':
        p = scan_word(p, end, "false", 5);
        if (p != NULL && is_built)
            *value = json_false();
        break;
    case 'n':
        p = scan_word(p, end, "null", 4);
        if (p != NULL && is_built)
            *value = json_null();
        break;
    default:
        p = scan_number(p, end, &n);
        if (p != NULL && is_built)
            *value = n.is_real ? json_real(n.real) : json_integer(n.integer);
        break;
    }
    /* jansson's lexer reads the byte after a number or a literal and pushes
     * it back; a NUL pushed back is lost, so "[1\0]" loads as [1]. */
    if (p != NULL && p < end && *p == '\0')
        p++;
    return p;
}

/* Hands `value` (a new reference, NULL when making it failed) to the
 * container open innermost, under the waiting member name in an object. */
static bool
attach(struct loader *ld, json_t *value)
{
    if (ld->depth == 0) {
        ld->root = value;
        return value != NULL;
    }
    if (ld->closers[ld->depth - 1] == ']')
        return json_array_append_new(ld->open[ld->depth - 1], value) == 0;
    return set_member(ld->open[ld->depth - 1], ld->key, value);
}

static enum step
open_container(struct loader *ld)
{
    bool is_object = *ld->p == '{';
    char closer = is_object ? '}' : ']';
    json_t *container = NULL;

    if (!ld->is_skipping) {
        container = is_object ? json_object() : json_array();
        if (!attach(ld, container))
            return STEP_FAILED;
    }
    ld->open[ld->depth] = container;
    ld->closers[ld->depth] = closer;
    ld->depth++;
    ld->p = skip_spaces(ld->p + 1, ld->end);
    if (ld->p < ld->end && *ld->p == closer) {
        ld->p++;
        ld->depth--;
        return STEP_AFTER_VALUE;
    }
    return is_object ? STEP_MEMBER : STEP_VALUE;
}

static enum step
load_value(struct loader *ld)
{
    json_t *value = NULL;
    const char *p;

    /* jansson counts every value against its depth limit, scalars too: a
     * container at the limit can only be empty. */
    if (ld->depth == JSON_PARSER_MAX_DEPTH || ld->p == ld->end)
        return STEP_FAILED;
    if (*ld->p == '{' || *ld->p == '[')
        return open_container(ld);
    p = scan_scalar(ld->p, ld->end, !ld->is_skipping, &value);
    if (p == NULL)
        return STEP_FAILED;
    ld->p = p;
    if (!ld->is_skipping && !attach(ld, value))
        return STEP_FAILED;
    return STEP_AFTER_VALUE;
}

static enum step
load_member_name(struct loader *ld)
{
    const char *p = ld->p;

    if (p == ld->end || *p != '"')
        return STEP_FAILED;
    p = scan_string(p, ld->end, &ld->key);
    if (p == NULL)
        return STEP_FAILED;
    p = skip_spaces(p, ld->end);
    if (p == ld->end || *p != ':')
        return STEP_FAILED;
    ld->p = skip_spaces(p + 1, ld->end);
    /* Each top-level member name decides for its value alone. */
    if (ld->depth == 1 && ld->drop_key != NULL)
        ld->is_skipping = is_named(ld->key, ld->drop_key, ld->drop_len);
    return STEP_VALUE;
}

/* After a value: a ',' and the next one, or the end of its container. */
static enum step
finish_value(struct loader *ld)
{
    const char *p = skip_spaces(ld->p, ld->end);

    if (ld->depth == 0)
        return p == ld->end ? STEP_DONE : STEP_FAILED;
    if (p == ld->end)
        return STEP_FAILED;
    if (*p == ',') {
        ld->p = skip_spaces(p + 1, ld->end);
        return ld->closers[ld->depth - 1] == '}' ? STEP_MEMBER : STEP_VALUE;
    }
    if (*p != ld->closers[ld->depth - 1])
        return STEP_FAILED;
    ld->p = p + 1;
    ld->depth--;
    return STEP_AFTER_VALUE;
}

json_t *
sess__json_load(const char *text, size_t len, const char *drop_key)
{
    /* Not zeroed: the two stacks are 18 KiB, and only their tops are read. */
    struct loader ld;
    enum step step = STEP_VALUE;

    if (text == NULL)
        return NULL;
    ld.end = text + len;
    ld.p = skip_spaces(text, ld.end);
    ld.root = NULL;
    ld.drop_key = drop_key;
    ld.drop_len = drop_key != NULL ? strlen(drop_key) : 0;
    ld.is_skipping = false;
    ld.depth = 0;
    /* Without JSON_DECODE_ANY, only an object or an array loads. */
    if (ld.p == ld.end || (*ld.p != '{' && *ld.p != '['))
        return NULL;
    do {
        if (step == STEP_VALUE)
            step = load_value(&ld);
        else if (step == STEP_MEMBER)
            step = load_member_name(&ld);
        else
            step = finish_value(&ld);
    } while (step != STEP_DONE && step != STEP_FAILED);
    if (step == STEP_FAILED) {
        json_decref(ld.root);
        return NULL;
    }
    return ld.root;
}
