/* Small string helpers every module shares: byte views, the generic error
 * texts, and a formatter that cannot overflow. Parsing of any particular
 * format lives with its module (cookie.c, config.c, request.c). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

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

const char *
sess_strerror(enum sess_err err)
{
    switch (err) {
    case SESS_OK:
        return "success";
    case SESS_ENOTFOUND:
        return "not found";
    case SESS_EBADINPUT:
        return "malformed input";
    case SESS_ETOOBIG:
        return "too large";
    case SESS_EMEDIA:
        return "unsupported media type";
    case SESS_EMETHOD:
        return "method not allowed";
    case SESS_EFORBIDDEN:
        return "forbidden";
    case SESS_ETHROTTLED:
        return "too many attempts";
    case SESS_ECONFIG:
        return "bad configuration";
    case SESS_ENOMEM:
        return "out of memory";
    case SESS_ECRYPTO:
        return "sealed value did not open";
    case SESS_EEXISTS:
        return "already exists";
    case SESS_EFULL:
        return "store full";
    case SESS_ESTORE:
        return "store failed";
    case SESS_EUNAVAIL:
        return "store unavailable";
    case SESS_ECONFLICT:
        return "session changed by another request";
    case SESS_EIO:
        return "client I/O failed";
    }
    /* An int cast into the enum from outside: still never NULL. */
    return "unknown error";
}

void
sess_fmt(char *out, size_t out_len, const char *fmt, ...)
{
    va_list ap;

    if (out == NULL || out_len == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(out, out_len, fmt, ap) < 0)
        out[0] = '\0';
    va_end(ap);
}
