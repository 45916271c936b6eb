/* FastCGI requests: the accept loop, CGI parameters, bounded body parsing
 * (JSON and forms), the CSRF and Origin checks, and response output that no
 * client value can split. Session rules live in session.c; the page
 * renderer in template.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <sodium.h>

#include "internal.h"

extern char **environ;

#define FORM_FIELDS_MAX 100
/* Unread input is drained before the early close; past this much we let
 * libfcgi's lingering close deal with it instead. */
#define DRAIN_MAX_BYTES (1024 * 1024)

/* ------------------------------------------------------------------------
 * Parameters
 * ------------------------------------------------------------------------ */

const char *
sess_param(const struct sess_request *req, const char *name)
{
    /* httpoxy (CVE-2016-5387) and mod_session's CVE-2018-1283: these names
     * come from client headers and must never be mistaken for ours. */
    if (strcmp(name, "HTTP_PROXY") == 0 || strcmp(name, "HTTP_SESSION") == 0)
        return NULL;
    return FCGX_GetParam(name, req->envp);
}

const char *
sess_method(const struct sess_request *req)
{
    const char *m = sess_param(req, "REQUEST_METHOD");
    return m && *m ? m : "GET";
}

bool
sess_is_method(const struct sess_request *req, const char *method)
{
    return strcmp(sess_method(req), method) == 0;
}

static bool
names_json(const char *value)
{
    return value && strcasestr(value, "application/json") != NULL;
}

bool
sess_wants_json(const struct sess_request *req)
{
    return names_json(sess_param(req, "CONTENT_TYPE")) || names_json(sess_param(req, "HTTP_ACCEPT"));
}

bool
sess_is_secure(const struct sess_request *req)
{
    return req->is_secure;
}

/* HTTPS=on from the server, or the first X-Forwarded-Proto value when the
 * configuration trusts the proxy (express-session's issecure with proxy:
 * true: trimmed, lowercased, "https"). */
static bool
request_is_secure(const struct sess_request *req)
{
    const char *https = sess_param(req, "HTTPS");
    const char *proto;
    size_t len;

    if (https && *https && strcasecmp(https, "off") != 0)
        return true;
    if (!req->app->cfg.trust_proxy)
        return false;
    proto = sess_param(req, "HTTP_X_FORWARDED_PROTO");
    if (!proto)
        return false;
    proto += strspn(proto, " \t");
    len = strcspn(proto, ",");
    while (len > 0 && (proto[len - 1] == ' ' || proto[len - 1] == '\t'))
        len--;
    return len == 5 && strncasecmp(proto, "https", 5) == 0;
}

bool
sess_allow(struct sess_request *req, const char *allowed)
{
    const char *method = sess_method(req);
    size_t mlen = strlen(method);
    const char *p = allowed;

    while (*p) {
        size_t len;
        p += strspn(p, ", ");
        len = strcspn(p, ", ");
        if (len == mlen && strncmp(p, method, len) == 0)
            return true;
        p += len;
    }
    if (sess_header(req, "Allow", allowed) == SESS_OK)
        sess_fail(req, 405, "Method not allowed");
    return false;
}

/* ------------------------------------------------------------------------
 * Bodies
 * ------------------------------------------------------------------------ */

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
    buf = malloc(in.len + 1);
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

static bool csrf_is_valid(struct sess_request *req, const char *token, size_t len);

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
        if (!json_is_string(tok) ||
            !csrf_is_valid(req, json_string_value(tok), json_string_length(tok))) {
            sess_fail(req, 403, "Invalid CSRF token");
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

/* ------------------------------------------------------------------------
 * CSRF: stateless tokens TIME.HMAC(key, TIME "|" id), bound to the session
 * the form was shown in ("" before there is one: login CSRF needs a token
 * that exists before the session does).
 * ------------------------------------------------------------------------ */

static void
csrf_mac(const struct sess_request *req, const char *time36, size_t time_len, const char *bind,
         char out[44])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, req->app->csrf_key, sizeof req->app->csrf_key);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)time36, time_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)"|", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)bind, strlen(bind));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, 44, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static size_t
to_base36(int64_t v, char out[16])
{
    char tmp[16];
    size_t n = 0, i;
    uint64_t u = v < 0 ? 0 : (uint64_t)v;
    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[u % 36];
        u /= 36;
    } while (u && n < sizeof tmp - 1);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

const char *
sess_csrf_token(struct sess_request *req)
{
    char time36[16], mac[44];
    size_t n = to_base36(req->now_ms, time36);

    csrf_mac(req, time36, n, sess_exists(req) ? req->id : "", mac);
    sess_fmt(req->csrf, sizeof req->csrf, "%s.%s", time36, mac);
    return req->csrf;
}

static bool
csrf_is_valid(struct sess_request *req, const char *token, size_t len)
{
    const char *dot = memchr(token, '.', len);
    char mac[44];
    size_t tlen;
    int64_t t = 0;

    if (!dot || len - (size_t)(dot - token) - 1 != 43)
        return false;
    tlen = (size_t)(dot - token);
    if (tlen == 0 || tlen > 12)
        return false;
    for (size_t i = 0; i < tlen; i++) {
        const char *d = strchr("0123456789abcdefghijklmnopqrstuvwxyz", token[i]);
        if (!d || !token[i])
            return false;
        t = t * 36 + (d - "0123456789abcdefghijklmnopqrstuvwxyz");
    }
    if (req->now_ms - t > SESS_CSRF_TTL_MS || t - req->now_ms > 60 * 1000)
        return false;
    csrf_mac(req, token, tlen, req->is_loaded ? req->cookie_id : "", mac);
    return sodium_memcmp(mac, dot + 1, 43) == 0;
}

/* ------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------ */

static const char *
status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static bool
is_header_safe(const char *s, bool is_name)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            if (is_name || c != '\t')
                return false;
        if (is_name && (c == ':' || c == ' '))
            return false;
    }
    return true;
}

enum sess_err
sess_header(struct sess_request *req, const char *name, const char *value)
{
    enum sess_err err;
    if (!*name || !is_header_safe(name, true) || !is_header_safe(value, false))
        return SESS_EBADINPUT;
    err = sess_buf_append(&req->headers, name, strlen(name));
    if (err == SESS_OK)
        err = sess_buf_append(&req->headers, ": ", 2);
    if (err == SESS_OK)
        err = sess_buf_append(&req->headers, value, strlen(value));
    if (err == SESS_OK)
        err = sess_buf_append(&req->headers, "\r\n", 2);
    return err;
}

static void
write_out(struct sess_request *req, const char *data, size_t len)
{
    if (req->fcgx) {
        while (len > 0) {
            int n = FCGX_PutStr(data, len > 65536 ? 65536 : (int)len, req->fcgx->out);
            if (n <= 0)
                return;
            data += n;
            len -= (size_t)n;
        }
        return;
    }
    /* Nowhere to write: a request driven by hand (tests) keeps its
     * response in req->headers and req->out. */
    if (req->cgi_out && fwrite(data, 1, len, req->cgi_out) != len)
        return;
}

/* Everything goes out in one piece once the status is final: headers are
 * collected first so a failed store write can still turn into a 503. */
static void
emit(struct sess_request *req, int status, const char *content_type)
{
    char line[96];
    bool is_head = sess_is_method(req, "HEAD");

    sess_fmt(line, sizeof line, "Status: %d %s\r\nContent-Type: %s\r\n", status,
             status_text(status), content_type);
    write_out(req, line, strlen(line));
    write_out(req, req->headers.ptr ? req->headers.ptr : "", req->headers.len);
    sess_fmt(line, sizeof line, "Content-Length: %zu\r\n\r\n", req->out.len);
    write_out(req, line, strlen(line));
    if (!is_head)
        write_out(req, req->out.ptr ? req->out.ptr : "", req->out.len);
    req->status = status;
    req->is_answered = true;
}

static void
common_headers(struct sess_request *req, bool is_html)
{
    /* Pages and JSON here carry session data or a CSRF token: never cache.
     * The header values are constants, so they cannot fail validation. */
    (void)sess_header(req, "Cache-Control", "no-store");
    (void)sess_header(req, "X-Content-Type-Options", "nosniff");
    (void)sess_header(req, "Referrer-Policy", "same-origin");
    if (is_html)
        (void)sess_header(req, "Content-Security-Policy",
                          "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
}

/* Saves the session; on failure the answer becomes a 503 with no cookie. */
static bool
commit_or_503(struct sess_request *req)
{
    enum sess_err err = sess_session_commit(req);
    if (err == SESS_OK)
        return true;
    fprintf(stderr, "fcgi-session: saving the session failed: %s: %s\n", sess_strerror(err),
            req->app->store->errmsg);
    req->headers.len = 0;
    sess_fail(req, 503, "Session store unavailable; try again shortly");
    return false;
}

static void
send_json_now(struct sess_request *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    req->out.len = 0;
    if (!text || sess_buf_append(&req->out, text, strlen(text)) != SESS_OK ||
        sess_buf_append(&req->out, "\n", 1) != SESS_OK) {
        free(text);
        req->out.len = 0;
        status = 500;
    } else {
        free(text);
    }
    common_headers(req, false);
    emit(req, status, "application/json; charset=utf-8");
}

void
sess_send_json(struct sess_request *req, int status, json_t *body)
{
    if (req->is_answered) {
        json_decref(body);
        return;
    }
    if (commit_or_503(req))
        send_json_now(req, status, body);
    json_decref(body);
}

/* Sets "theme_dark": true for theme "dark", so a page can mark the chosen
 * <option> without logic (only short [a-z] values become names). */
static void
flag_choice(json_t *vars, const char *name)
{
    const char *v = json_string_value(json_object_get(vars, name));
    char key[40];

    if (!v || strlen(v) > 16 || v[strspn(v, "abcdefghijklmnopqrstuvwxyz")] != '\0')
        return;
    sess_fmt(key, sizeof key, "%s_%s", name, v);
    json_object_set_new(vars, key, json_true());
}

/* Variables every page gets: the CSRF token, the user, the preferences. */
static void
page_vars(struct sess_request *req, json_t *vars)
{
    json_t *prefs = sess_get(req, "prefs");
    json_t *theme = json_is_object(prefs) ? json_object_get(prefs, "theme") : NULL;
    json_t *lang = json_is_object(prefs) ? json_object_get(prefs, "lang") : NULL;
    json_t *user = sess_get(req, "user");
    json_t *authed = sess_get(req, "authenticated");

    json_object_set_new(vars, "csrf", json_string(sess_csrf_token(req)));
    if (json_is_true(authed) && json_is_object(user) && !json_object_get(vars, "user"))
        json_object_set(vars, "user", user);
    if (!json_object_get(vars, "theme"))
        json_object_set_new(vars, "theme", json_is_string(theme) ? json_copy(theme)
                                                                 : json_string("system"));
    if (!json_object_get(vars, "lang"))
        json_object_set_new(vars, "lang", json_is_string(lang) ? json_copy(lang)
                                                               : json_string("en"));
    flag_choice(vars, "theme");
    flag_choice(vars, "lang");
}

static void
send_page_now(struct sess_request *req, int status, const char *page, json_t *vars)
{
    char errmsg[SESS_ERRMSG_MAX];
    enum sess_err err;

    page_vars(req, vars);
    req->out.len = 0;
    err = sess_templates_render(req->app->templates, page, vars, &req->out.ptr, &req->out.len,
                                &req->out.cap, errmsg, sizeof errmsg);
    if (err != SESS_OK) {
        /* A broken page edit must not take the site down silently. */
        fprintf(stderr, "fcgi-session: %s\n", errmsg);
        req->out.len = 0;
        if (sess_buf_append(&req->out, "Page template error; see the server log.\n", 41) !=
            SESS_OK)
            req->out.len = 0;
        common_headers(req, false);
        emit(req, 500, "text/plain; charset=utf-8");
        return;
    }
    common_headers(req, true);
    emit(req, status, "text/html; charset=utf-8");
}

void
sess_send_page(struct sess_request *req, int status, const char *page, json_t *vars)
{
    if (!vars)
        vars = json_object();
    if (!req->is_answered && vars && commit_or_503(req))
        send_page_now(req, status, page, vars);
    json_decref(vars);
}

void
sess_redirect(struct sess_request *req, const char *location)
{
    if (req->is_answered)
        return;
    /* Only paths of this site: an open redirect would be a gift. */
    if (location[0] != '/' || location[1] == '/' || location[1] == '\\' ||
        sess_header(req, "Location", location) != SESS_OK) {
        sess_fail(req, 500, "Bad redirect");
        return;
    }
    if (!commit_or_503(req))
        return;
    req->out.len = 0;
    common_headers(req, false);
    emit(req, 303, "text/plain; charset=utf-8");
}

void
sess_fail(struct sess_request *req, int status, const char *msg)
{
    if (req->is_answered)
        return;
    if (sess_wants_json(req)) {
        json_t *body = json_pack("{s:s}", "msg", msg);
        send_json_now(req, status, body);
        json_decref(body);
        return;
    }
    json_t *vars = json_pack("{s:i, s:s, s:s}", "status", status, "msg", msg, "title", msg);
    if (!vars) {
        req->out.len = 0;
        emit(req, status, "text/plain; charset=utf-8");
        return;
    }
    send_page_now(req, status, "error", vars);
    json_decref(vars);
}

/* ------------------------------------------------------------------------
 * The request loop
 * ------------------------------------------------------------------------ */

void
sess_request_reset(struct sess_request *req)
{
    json_decref(req->body);
    json_decref(req->query);
    req->body = req->query = NULL;
    req->is_answered = false;
    req->status = 0;
    req->headers.len = 0;
    req->out.len = 0;
}

void
sess_request_handle(struct sess_request *req, sess_route_fn route)
{
    req->now_ms = sess_now_ms(req->app);
    req->is_secure = request_is_secure(req);
    sess_session_begin(req);
    if (req->store_failed)
        sess_fail(req, 503, "Session store unavailable; try again shortly");
    else
        route(req);
    if (!req->is_answered)
        sess_fail(req, 500, "The route sent no answer");
    sess_session_end(req);
}

/* libfcgi's FCGX_Finish_r shuts its side down and waits for the web server
 * to close first; detaching first closes at once (3.5x on a bare hello,
 * PERF-ANCHORS.md). The server must have all our output and we must have
 * all its input by then, or the close can reset the connection: drain
 * first, and keep the lingering close when the input is too large. */
static void
finish(FCGX_Request *fcgx)
{
    char sink[4096];
    size_t drained = 0;
    int n = 0;

    while (drained < DRAIN_MAX_BYTES && (n = FCGX_GetStr(sink, sizeof sink, fcgx->in)) > 0)
        drained += (size_t)n;
    if (n == 0 && FCGX_FFlush(fcgx->out) == 0)
        FCGX_Detach(fcgx);
    FCGX_Finish_r(fcgx);
}

int
sess_run(const char *route_name, sess_route_fn route)
{
    char errmsg[SESS_ERRMSG_MAX] = "";
    struct sess_app *app = NULL;
    struct sess_request req;
    FCGX_Request fcgx;
    enum sess_err err;
    int status = 0;

    signal(SIGPIPE, SIG_IGN);
    err = sess_app_open(&app, NULL, errmsg, sizeof errmsg);
    if (err != SESS_OK) {
        fprintf(stderr, "%s: %s\n", route_name, errmsg);
        return err == SESS_ECONFIG ? SESS_EXIT_CONFIG : SESS_EXIT_SOFTWARE;
    }
    memset(&req, 0, sizeof req);
    req.app = app;

    if (FCGX_IsCGI()) {
        req.envp = environ;
        req.cgi_out = stdout;
        sess_request_handle(&req, route);
        fflush(stdout);
        goto out;
    }
    if (FCGX_Init() != 0 || FCGX_InitRequest(&fcgx, 0, 0) != 0) {
        fprintf(stderr, "%s: libfcgi failed to initialise\n", route_name);
        status = SESS_EXIT_SOFTWARE;
        goto out;
    }
    req.fcgx = &fcgx;
    while (FCGX_Accept_r(&fcgx) >= 0) {
        req.envp = fcgx.envp;
        sess_request_handle(&req, route);
        sess_request_reset(&req);
        finish(&fcgx);
        /* After the response: a bounded gc batch when one is due. */
        app->store->ops->gc_if_due(app->store, sess_now_ms(app));
    }
out:
    sess_request_reset(&req);
    sess_buf_free(&req.headers);
    sess_buf_free(&req.out);
    sess_app_close(app);
    return status;
}
