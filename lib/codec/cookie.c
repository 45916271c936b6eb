/* Cookie header parsing and Set-Cookie building, with the rules of the npm
 * package cookie 0.7.2 that express-session uses, so both sides read and
 * write the same bytes. Signing is sign.c's job; deciding when to send a
 * cookie is session.c's. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec.h"

/* Latest instant whose dates still fit the fixed-width formats: year 9999. */
#define MAX_DATE_S ((int64_t)253402300799)

static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static bool
is_space_or_tab(char c)
{
    return c == ' ' || c == '\t';
}

static bool
is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The %XX escape at in[i], or -1 when there is none. */
static int
escape_at(struct sess_str in, size_t i)
{
    int hi, lo;

    if (in.len < 3 || i > in.len - 3 || in.ptr[i] != '%')
        return -1;
    hi = hex_value((unsigned char)in.ptr[i + 1]);
    lo = hex_value((unsigned char)in.ptr[i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi << 4 | lo;
}

/* RFC 7230 tchar: what cookie 0.7.2 allows in a cookie name. */
static bool
is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool
sess__cookie_has_prefix(const char *name, const char *prefix)
{
    return strncasecmp(name, prefix, strlen(prefix)) == 0;
}

bool
sess__cookie_name_is_valid(struct sess_str name)
{
    if (name.len == 0)
        return false;
    for (size_t i = 0; i < name.len; i++)
        if (!is_tchar((unsigned char)name.ptr[i]))
            return false;
    return true;
}

/* Decodes as JavaScript's decodeURIComponent does, which is what
 * cookie.parse calls: an escape of a byte >= 0x80 must start a complete,
 * shortest-form UTF-8 sequence of escapes for a scalar value, or the whole
 * call throws. Returns false on any such error. With `out` NULL only
 * measures. */
static bool
decode_uri_component(struct sess_str in, char *out, size_t *out_len)
{
    size_t n = 0;

    for (size_t i = 0; i < in.len;) {
        int b = (unsigned char)in.ptr[i];
        if (b != '%') {
            /* The run up to the next escape, at once: a signed id has a
             * few escapes in a hundred bytes. */
            const char *pct = memchr(in.ptr + i, '%', in.len - i);
            size_t run = pct ? (size_t)(pct - (in.ptr + i)) : in.len - i;
            if (out != NULL)
                memmove(out + n, in.ptr + i, run);
            n += run;
            i += run;
            continue;
        }
        b = escape_at(in, i);
        if (b < 0)
            return false;
        if (b < 0x80) {
            if (out != NULL)
                out[n] = (char)b;
            n++;
            i += 3;
            continue;
        }
        size_t extra;
        uint32_t cp, min;
        if ((b & 0xe0) == 0xc0) {
            extra = 1, cp = (uint32_t)b & 0x1f, min = 0x80;
        } else if ((b & 0xf0) == 0xe0) {
            extra = 2, cp = (uint32_t)b & 0x0f, min = 0x800;
        } else if ((b & 0xf8) == 0xf0) {
            extra = 3, cp = (uint32_t)b & 0x07, min = 0x10000;
        } else {
            return false;
        }
        unsigned char seq[4] = {(unsigned char)b, 0, 0, 0};
        for (size_t k = 1; k <= extra; k++) {
            int c = escape_at(in, i + 3 * k);
            if (c < 0 || (c & 0xc0) != 0x80)
                return false;
            seq[k] = (unsigned char)c;
            cp = cp << 6 | ((uint32_t)c & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        if (out != NULL)
            memcpy(out + n, seq, extra + 1);
        n += extra + 1;
        i += 3 * (extra + 1);
    }
    *out_len = n;
    return true;
}

enum sess_err
sess_percent_decode(struct sess_str in, bool plus_is_space, char *out, size_t *out_len)
{
    size_t n = 0;

    for (size_t i = 0; i < in.len; n++) {
        char c = in.ptr[i];
        if (c == '%') {
            int b = escape_at(in, i);
            if (b < 0)
                return SESS_EBADINPUT;
            out[n] = (char)b;
            i += 3;
        } else {
            out[n] = (char)(plus_is_space && c == '+' ? ' ' : c);
            i++;
        }
    }
    out[n] = '\0';
    *out_len = n;
    return SESS_OK;
}

/* Trims spaces and tabs from both ends of in[start, end). */
static struct sess_str
trimmed(const char *p, size_t start, size_t end)
{
    while (start < end && is_space_or_tab(p[start]))
        start++;
    while (end > start && is_space_or_tab(p[end - 1]))
        end--;
    return (struct sess_str){p + start, end - start};
}

/* The raw (undecoded, unquoted) value of the first pair named `name`, walking
 * the header exactly as cookie.parse does, including its backtracking over
 * pairs that have no '='. */
static bool
find_raw(struct sess_str header, struct sess_str name, struct sess_str *raw)
{
    const char *p = header.ptr;
    size_t len = header.len;
    size_t index = 0;

    /* cookie.parse: a pair needs at least a one-character name and '='. */
    if (len < 2)
        return false;
    do {
        const char *eq = memchr(p + index, '=', len - index);
        if (eq == NULL)
            break;
        size_t eq_idx = (size_t)(eq - p);
        const char *semi = memchr(p + index, ';', len - index);
        size_t end_idx = semi != NULL ? (size_t)(semi - p) : len;

        if (eq_idx > end_idx) {
            /* The '=' belongs to a later pair: restart just after the last ';'
             * before it, skipping every pair in between that had no '='. */
            size_t k = eq_idx;
            while (p[k - 1] != ';')
                k--;
            index = k;
            continue;
        }
        struct sess_str key = trimmed(p, index, eq_idx);
        if (sess_str_eq(key, name)) {
            struct sess_str val = trimmed(p, eq_idx + 1, end_idx);
            if (val.len > 0 && val.ptr[0] == '"' && val.ptr[val.len - 1] == '"') {
                /* A lone '"' is both the opening and the closing quote. */
                val = val.len >= 2 ? (struct sess_str){val.ptr + 1, val.len - 2}
                                   : (struct sess_str){val.ptr, 0};
            }
            *raw = val;
            return true;
        }
        index = end_idx + 1;
    } while (index < len);
    return false;
}

enum sess_err
sess_cookie_find(struct sess_str header, struct sess_str name, char *out, size_t out_cap,
                 size_t *out_len)
{
    struct sess_str raw;
    size_t need = 0;
    bool is_decoded = false;

    if (header.ptr == NULL || !find_raw(header, name, &raw))
        return SESS_ENOTFOUND;
    /* Only values holding '%' are decoded, and one that does not decode is
     * kept as it came (cookie's tryDecode). Decoding never lengthens, so a
     * value that fits decodes in place in one pass; only a longer one is
     * measured first. */
    if (memchr(raw.ptr, '%', raw.len) != NULL) {
        if (out_cap > 0 && raw.len <= out_cap - 1)
            is_decoded = decode_uri_component(raw, out, &need);
        else
            is_decoded = decode_uri_component(raw, NULL, &need);
    }
    if (!is_decoded)
        need = raw.len;
    if (out_cap == 0 || need > out_cap - 1)
        return SESS_ETOOBIG;
    if (is_decoded && raw.len > out_cap - 1) {
        if (!decode_uri_component(raw, out, &need))
            return SESS_EBADINPUT; /* unreachable: the same input decoded above */
    } else if (!is_decoded) {
        memcpy(out, raw.ptr, raw.len);
    }
    out[need] = '\0';
    for (size_t i = 0; i < need; i++) {
        if (is_control((unsigned char)out[i])) {
            out[0] = '\0';
            return SESS_EBADINPUT;
        }
    }
    *out_len = need;
    return SESS_OK;
}

/* --- building --- */

/* A bounded writer: once it overflows, it stays overflowed, so callers check
 * once at the end. */
struct writer {
    char *out;
    size_t cap;
    size_t len;
    bool is_full;
};

static void
put(struct writer *w, const char *s, size_t n)
{
    if (w->is_full || n >= w->cap - w->len) {
        w->is_full = true;
        return;
    }
    memcpy(w->out + w->len, s, n);
    w->len += n;
}

static void
put_c(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

/* encodeURIComponent's unreserved set: RFC 3986 unreserved plus !*'(). */
static bool
is_uri_component_char(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("-_.!~*'()", c) != NULL;
}

static void
put_encoded(struct writer *w, struct sess_str value)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < value.len && !w->is_full; i++) {
        unsigned char c = (unsigned char)value.ptr[i];
        if (is_uri_component_char(c)) {
            put(w, (const char *)&c, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(w, esc, 3);
        }
    }
}

/* Path: any CHAR but CTLs and ';' (RFC 6265 path-value), so a configured
 * path can never end the attribute or the header line. */
bool
sess__cookie_path_is_valid(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7e || c == ';')
            return false;
    }
    return true;
}

/* Domain: cookie 0.7.2's domainValueRegExp, an optional leading '.' then
 * RFC 1123 labels of letters, digits and inner hyphens, 63 at most each. */
bool
sess__cookie_domain_is_valid(const char *s)
{
    const char *p = s;

    if (*p == '.')
        p++;
    for (;;) {
        size_t n = 0;
        while ((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'z') ||
               (p[n] >= 'A' && p[n] <= 'Z') || p[n] == '-')
            n++;
        if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
            return false;
        p += n;
        if (*p == '\0')
            return true;
        if (*p != '.')
            return false;
        p++;
    }
}

static const char *
priority_text(const char *priority)
{
    static const char *const names[] = {"Low", "Medium", "High"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(priority, names[i]) == 0)
            return names[i];
    return NULL;
}

enum sess_err
sess_cookie_build(char *out, size_t out_cap, size_t *out_len, struct sess_str name,
                  struct sess_str value, const struct sess_cookie_attrs *attrs, int64_t now_s)
{
    struct writer w = {out, out_cap, 0, out_cap == 0};
    const char *priority = NULL;
    char num[24];
    char date[30];

    if (!sess__cookie_name_is_valid(name))
        return SESS_EBADINPUT;
    if (attrs->path != NULL && !sess__cookie_path_is_valid(attrs->path))
        return SESS_EBADINPUT;
    if (attrs->domain != NULL && !sess__cookie_domain_is_valid(attrs->domain))
        return SESS_EBADINPUT;
    if (attrs->priority != NULL && (priority = priority_text(attrs->priority)) == NULL)
        return SESS_EBADINPUT;

    put(&w, name.ptr, name.len);
    put_c(&w, "=");
    put_encoded(&w, value);
    if (attrs->domain != NULL) {
        put_c(&w, "; Domain=");
        put_c(&w, attrs->domain);
    }
    if (attrs->path != NULL) {
        put_c(&w, "; Path=");
        put_c(&w, attrs->path);
    }
    if (attrs->has_expiry) {
        /* One instant gives both, so browsers that prefer Max-Age (RFC 6265
         * section 5.3) and those that only know Expires agree. */
        /* Unsigned: the difference of any two int64_t fits, never overflows. */
        uint64_t left =
            attrs->expires_at > now_s ? (uint64_t)attrs->expires_at - (uint64_t)now_s : 0;
        sess_http_date(attrs->expires_at, date);
        put_c(&w, "; Expires=");
        put_c(&w, date);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)left);
        put_c(&w, "; Max-Age=");
        put_c(&w, num);
    }
    if (attrs->http_only)
        put_c(&w, "; HttpOnly");
    if (attrs->secure)
        put_c(&w, "; Secure");
    if (attrs->partitioned)
        put_c(&w, "; Partitioned");
    if (priority != NULL) {
        put_c(&w, "; Priority=");
        put_c(&w, priority);
    }
    switch (attrs->same_site) {
    case SESS_SAME_SITE_LAX:
        put_c(&w, "; SameSite=Lax");
        break;
    case SESS_SAME_SITE_STRICT:
        put_c(&w, "; SameSite=Strict");
        break;
    case SESS_SAME_SITE_NONE:
        put_c(&w, "; SameSite=None");
        break;
    case SESS_SAME_SITE_OFF:
        break;
    }
    if (w.is_full) {
        if (out_cap > 0)
            out[0] = '\0';
        return SESS_ETOOBIG;
    }
    out[w.len] = '\0';
    *out_len = w.len;
    return SESS_OK;
}

/* --- dates: C-locale names by hand, so a setlocale() in an embedding
 * program cannot change what goes on the wire --- */

/* Writes `v` as `width` decimal digits, zero-padded. */
static char *
put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

static char *
put_text(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Breaks `t` down in UTC, clamped to 1970..9999 so every field has the width
 * the formats promise. */
static void
utc_fields(int64_t t, struct tm *tm)
{
    time_t tt = (time_t)(t < 0 ? 0 : t > MAX_DATE_S ? MAX_DATE_S : t);

    if (gmtime_r(&tt, tm) == NULL)
        memset(tm, 0, sizeof(*tm)); /* unreachable within the clamp */
}

void
sess_http_date(int64_t t, char out[30])
{
    struct tm tm;
    char *p = out;

    utc_fields(t, &tm);
    p = put_text(p, day_names[tm.tm_wday]);
    p = put_text(p, ", ");
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = ' ';
    p = put_text(p, month_names[tm.tm_mon]);
    *p++ = ' ';
    p = put_digits(p, tm.tm_year + 1900, 4);
    *p++ = ' ';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    p = put_text(p, " GMT");
    *p = '\0';
}

void
sess_iso_date(int64_t t_ms, char out[25])
{
    int64_t ms = t_ms < 0 ? 0 : t_ms > MAX_DATE_S * 1000 + 999 ? MAX_DATE_S * 1000 + 999 : t_ms;
    struct tm tm;
    char *p = out;

    utc_fields(ms / 1000, &tm);
    p = put_digits(p, tm.tm_year + 1900, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, ms % 1000, 3);
    *p++ = 'Z';
    *p = '\0';
}
