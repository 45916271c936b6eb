/* Request bodies: the Origin check, Content-Type and Content-Length
 * decisions (415, 413 before reading), strict UTF-8, JSON and form parsing,
 * and the CSRF check of forms. Bounded everywhere: a client decides nothing
 * about how much we allocate beyond max_body. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "http.h"

#define FORM_FIELDS_MAX 100


/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing past U+10FFFF. */
static bool
is_valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned int cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += n + 1;
    }
    return true;
}

enum sess_err
sess_form_parse(struct sess_str in, json_t **out)
{
    enum sess_err err = SESS_OK;
    json_t *form = json_object();
    char *buf = NULL;
    size_t fields = 0;
    const char *p = in.ptr, *end = in.ptr + in.len;

    *out = NULL;
    if (!form)
        return SESS_ENOMEM;
    /* A name and a value, each NUL-terminated: a lone name ("flag", no '=')
     * as long as the input needs in.len + 2 bytes. */
    buf = malloc(in.len + 2);
    if (!buf) {
        err = SESS_ENOMEM;
        goto out;
    }
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        struct sess_str key = {p, (size_t)((eq ? eq : pair_end) - p)};
        struct sess_str val = {eq ? eq + 1 : pair_end, eq ? (size_t)(pair_end - eq - 1) : 0};
        size_t klen, vlen;
        char *kbuf = buf;

        p = amp ? amp + 1 : end;
        if (key.len == 0 && val.len == 0)
            continue;
        if (++fields > FORM_FIELDS_MAX) {
            err = SESS_ETOOBIG;
            goto out;
        }
        err = sess_percent_decode(key, true, kbuf, &klen);
        if (err == SESS_OK)
            err = sess_percent_decode(val, true, kbuf + klen + 1, &vlen);
        if (err != SESS_OK)
            goto out;
        /* Lengths travel with the bytes: "alice%00x" stays 7 bytes and can
         * never match "alice" (no strlen on decoded input). */
        if (!is_valid_utf8((unsigned char *)kbuf, klen) ||
            !is_valid_utf8((unsigned char *)kbuf + klen + 1, vlen) || memchr(kbuf, 0, klen)) {
            err = SESS_EBADINPUT;
            goto out;
        }
        kbuf[klen] = '\0';
        if (json_object_get(form, kbuf))
            continue; /* the first of repeated names wins */
        if (json_object_set_new(form, kbuf, json_stringn(kbuf + klen + 1, vlen)) != 0) {
            err = SESS_EBADINPUT;
            goto out;
        }
    }
    *out = form;
    form = NULL;
out:
    free(buf);
    json_decref(form);
    return err;
}

/* CONTENT_LENGTH, strictly: digits only, no sign, overflow-checked. */
static enum sess_err
content_length(const struct sess_request *req, size_t *len)
{
    const char *s = sess_param(req, "CONTENT_LENGTH");
    size_t n = 0;

    *len = 0;
    if (!s || !*s)
        return SESS_OK;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return SESS_EBADINPUT;
        if (n > (SIZE_MAX - 9) / 10)
            return SESS_ETOOBIG;
        n = n * 10 + (size_t)(*s - '0');
    }
    *len = n;
    return SESS_OK;
}

static size_t
read_input(struct sess_request *req, char *buf, size_t len)
{
    size_t got = 0;
    if (req->fcgx) {
        while (got < len) {
            int want = len - got > 65536 ? 65536 : (int)(len - got);
            int n = FCGX_GetStr(buf + got, want, req->fcgx->in);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        return got;
    }
    while (got < len) {
        ssize_t n = read(STDIN_FILENO, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* The Origin of a POST must be this site: scheme://Host. A missing Origin
 * (curl, old browsers) falls back to the CSRF token; "null" is refused. */
static bool
origin_is_same_site(const struct sess_request *req)
{
    const char *origin = sess_param(req, "HTTP_ORIGIN");
    const char *host = sess_param(req, "HTTP_HOST");
    const char *scheme = req->is_secure ? "https://" : "http://";
    size_t slen = strlen(scheme);

    if (!origin)
        return true;
    if (!host || strncasecmp(origin, scheme, slen) != 0)
        return false;
    return strcasecmp(origin + slen, host) == 0;
}

static bool
media_type_is(const char *content_type, const char *type)
{
    size_t len = strlen(type);
    if (!content_type)
        return false;
    content_type += strspn(content_type, " \t");
    if (strncasecmp(content_type, type, len) != 0)
        return false;
    content_type += len;
    content_type += strspn(content_type, " \t");
    return *content_type == '\0' || *content_type == ';';
}

json_t *
sess_body(struct sess_request *req)
{
    const char *type = sess_param(req, "CONTENT_TYPE");
    bool is_json = media_type_is(type, "application/json");
    bool is_form = media_type_is(type, "application/x-www-form-urlencoded");
    size_t len = 0, got;
    char *raw = NULL;
    json_t *body = NULL;
    json_error_t jerr;
    enum sess_err err;

    if (req->body)
        return req->body;
    if (!origin_is_same_site(req)) {
        sess_fail(req, 403, "Cross-site request refused");
        return NULL;
    }
    if (!is_json && !is_form) {
        sess_fail(req, 415, "Unsupported content type");
        return NULL;
    }
    err = content_length(req, &len);
    if (err == SESS_ETOOBIG || (err == SESS_OK && len > req->app->cfg.max_body_bytes)) {
        /* Decided from the declared length, before reading a byte. */
        sess_fail(req, 413, "Body too large");
        return NULL;
    }
    if (err != SESS_OK) {
        sess_fail(req, 400, "Bad Content-Length");
        return NULL;
    }
    raw = malloc(len + 1);
    if (!raw) {
        sess_fail(req, 503, "Out of memory");
        return NULL;
    }
    got = read_input(req, raw, len);
    req->is_input_drained = true;
    if (got != len) {
        sess_fail(req, 400, "Truncated body");
        goto out;
    }
    if (!is_valid_utf8((unsigned char *)raw, len)) {
        sess_fail(req, 400, "Invalid UTF-8");
        goto out;
    }
    if (is_json) {
        body = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!body) {
            sess_fail(req, 400, "Invalid JSON");
            goto out;
        }
    } else {
        err = sess_form_parse((struct sess_str){raw, len}, &body);
        if (err != SESS_OK) {
            sess_fail(req, err == SESS_ETOOBIG ? 413 : 400,
                      err == SESS_ETOOBIG ? "Too many form fields" : "Invalid form body");
            goto out;
        }
    }
    if (!json_is_object(body)) {
        sess_fail(req, 400, "Invalid body: expected an object");
        goto out;
    }
    if (is_form) {
        json_t *tok = json_object_get(body, "csrf");
        enum sess__csrf_check check =
            json_is_string(tok)
                ? sess__csrf_check(req, json_string_value(tok), json_string_length(tok))
                : SESS_CSRF_BAD;
        if (check != SESS_CSRF_OK) {
            sess_fail(req, 403,
                      check == SESS_CSRF_EXPIRED ? "This form has expired; reload the page"
                                                 : "Invalid CSRF token");
            goto out;
        }
    }
    req->body = body;
    body = NULL;
out:
    json_decref(body);
    free(raw);
    return req->body;
}

const char *
sess_query_str(struct sess_request *req, const char *key)
{
    const char *qs = sess_param(req, "QUERY_STRING");
    json_t *v;

    if (!req->query && sess_form_parse(sess_str_c(qs), &req->query) != SESS_OK)
        return NULL;
    v = json_object_get(req->query, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *
sess_body_str(struct sess_request *req, const char *key, size_t *len)
{
    json_t *v = req->body ? json_object_get(req->body, key) : NULL;
    if (!json_is_string(v))
        return NULL;
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

