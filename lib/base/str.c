/* Small string helpers every module shares: byte views, the generic error
 * texts, and a formatter that cannot overflow. Parsing of any particular
 * format lives with its module (cookie.c, config.c, request.c). */
#include <stdio.h>
#include <string.h>

#include "base.h"

struct sess_str
sess_str_c(const char *s)
{
    if (s == NULL)
        return (struct sess_str){"", 0};
    return (struct sess_str){s, strlen(s)};
}

bool
sess_str_eq(struct sess_str a, struct sess_str b)
{
    /* memcmp() with a NULL pointer is undefined even for zero bytes. */
    if (a.len != b.len)
        return false;
    return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* The error table (sess.h, SESS_ERR_MAP), by code. */
struct err_row {
    const char *name, *text;
    int http_status, exit_status;
};

static const struct err_row err_rows[] = {
#define ERR_ROW(name, text, http, exit) [SESS_##name] = {"SESS_" #name, text, http, exit},
    SESS_ERR_MAP(ERR_ROW)
#undef ERR_ROW
};

/* An int cast into the enum from outside still gets a row, never NULL. */
static const struct err_row *
err_row(enum sess_err err)
{
    static const struct err_row unknown = {"SESS_E?", "unknown error", 500, 70};
    size_t i = (size_t)err;

    return i < sizeof err_rows / sizeof err_rows[0] ? &err_rows[i] : &unknown;
}

const char *
sess_strerror(enum sess_err err)
{
    return err_row(err)->text;
}

const char *
sess_err_name(enum sess_err err)
{
    return err_row(err)->name;
}

int
sess_err_http_status(enum sess_err err)
{
    return err_row(err)->http_status;
}

int
sess_err_exit_status(enum sess_err err)
{
    return err_row(err)->exit_status;
}

void
sess__escape_field(char *out, size_t cap, size_t *n, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < max && s[i] != '\0' && *n + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f) {
            out[(*n)++] = '\\';
            out[(*n)++] = 'x';
            out[(*n)++] = hex[c >> 4];
            out[(*n)++] = hex[c & 15];
        } else if (c == '"' || c == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)c;
        } else {
            out[(*n)++] = (char)c;
        }
    }
    if (s[i] != '\0' && *n + 3 < cap) {
        memcpy(out + *n, "...", 3);
        *n += 3;
    }
    out[*n] = '\0';
}

void
sess__fmt(char *out, size_t out_len, const char *fmt, ...)
{
    va_list ap;

    if (out == NULL || out_len == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(out, out_len, fmt, ap) < 0)
        out[0] = '\0';
    va_end(ap);
}
