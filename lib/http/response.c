/* Responses: status, headers that no client value can split, JSON, pages
 * and redirects. Every answer saves the session first (session.c), so a
 * failed store write becomes a 503 with no cookie. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "http.h"
#include "render_lazy.h"
#include "log.h"

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

/* Decimal digits of `v` at `p` (room for 20); returns how many. */
static size_t
put_uint(char *p, uintmax_t v)
{
    char tmp[20];
    size_t n = 0, i = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0)
        p[i++] = tmp[--n];
    return i;
}

static size_t
put_str(char *p, const char *s)
{
    size_t n = strlen(s);

    memcpy(p, s, n);
    return n;
}

/* Everything goes out in one piece once the status is final: headers are
 * collected first so a failed store write can still turn into a 503. The
 * lines are put together by hand, as printf's %d and %zu would write them:
 * snprintf was a tenth of a page's cost. */
static void
emit(struct sess_request *req, int status, const char *content_type)
{
    /* Status texts and content types are this file's constants: the longest
     * pair of lines is under 100 bytes. */
    char line[128];
    char tail[48];
    size_t n = 0, t = 0;
    bool is_head = sess_is_method(req, "HEAD");

    n += put_str(line + n, "Status: ");
    if (status < 0)
        line[n++] = '-';
    n += put_uint(line + n, status < 0 ? -(uintmax_t)status : (uintmax_t)status);
    line[n++] = ' ';
    n += put_str(line + n, status_text(status));
    n += put_str(line + n, "\r\nContent-Type: ");
    n += put_str(line + n, content_type);
    n += put_str(line + n, "\r\n");
    write_out(req, line, n);
    write_out(req, req->headers.ptr ? req->headers.ptr : "", req->headers.len);
    t += put_str(tail + t, "Content-Length: ");
    t += put_uint(tail + t, req->out.len);
    t += put_str(tail + t, "\r\n\r\n");
    write_out(req, tail, t);
    if (!is_head)
        write_out(req, req->out.ptr ? req->out.ptr : "", req->out.len);
    req->status = status;
    req->is_answered = true;
}

/* Pages and JSON here carry session data or a CSRF token: never cache.
 * Constant header lines, so they need no check and go in as one piece. */
#define COMMON_HEADERS                                                                             \
    "Cache-Control: no-store\r\n"                                                                  \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: same-origin\r\n"
/* Stylesheets from the site only ('self', no 'unsafe-inline'): the demo's
 * CSS is a file the web server serves (html/static/), so markup injected
 * into a page cannot restyle it to hide or fake what it shows. */
#define HTML_HEADERS                                                                               \
    COMMON_HEADERS                                                                                 \
    "Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self' data:; "        \
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n"

static void
common_headers(struct sess_request *req, bool is_html)
{
    static const char common[] = COMMON_HEADERS;
    static const char html[] = HTML_HEADERS;

    /* A page whose route set its own policy gets that one alone. */
    enum sess_err err = is_html && !req->has_own_csp
                            ? sess__buf_append(&req->headers, html, sizeof html - 1)
                            : sess__buf_append(&req->headers, common, sizeof common - 1);

    /* Out of memory leaves the response without them, as it always has. */
    (void)err;
}

/* Saves the session; on failure the answer becomes a 503 with no cookie. On
 * a conflict nothing is answered: the request is marked to run again
 * (request.c), and what the route still says is ignored. */
static bool
commit_or_503(struct sess_request *req)
{
    enum sess_err err = sess__session_commit(req);
    if (err == SESS_OK)
        return true;
    if (err == SESS_ECONFLICT) {
        req->is_conflict = true;
        req->is_answered = true;
        return false;
    }
    sess__log_error(req->app, "saving the session failed: %s: %s", sess_strerror(err),
                    req->app->store->errmsg);
    req->headers.len = 0;
    sess_fail(req, 503, "Session store unavailable; try again shortly");
    return false;
}

/* A 5xx is the operator's to see: the log names the route and says why;
 * the path without its query, which may carry what no log should keep. */
static void
log_5xx(struct sess_request *req, int status, const char *why)
{
    sess__log_error(req->app, "%d for %s %.200s: %s", status, sess_method(req), sess_path(req), why);
}

static void
send_json_now(struct sess_request *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    req->out.len = 0;
    if (!text || sess__buf_append(&req->out, text, strlen(text)) != SESS_OK ||
        sess__buf_append(&req->out, "\n", 1) != SESS_OK) {
        free(text);
        req->out.len = 0;
        log_5xx(req, 500,
                body ? "the JSON body could not be written (out of memory)"
                     : "sess_send_json got no JSON body (NULL: a json_pack that failed?)");
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
    if (status >= 500)
        log_5xx(req, status, "the route's own answer");
    if (commit_or_503(req))
        send_json_now(req, status, body);
    json_decref(body);
}

/* The program's own page variables (sess_set_page_vars); one per process. */
static sess_page_vars_fn page_vars_hook;

void
sess_set_page_vars(sess_page_vars_fn hook)
{
    page_vars_hook = hook;
}

/* Variables every page gets: the user, then the program's own; the CSRF
 * token comes from csrf_of, and only to pages that show it. */
static void
page_vars(struct sess_request *req, json_t *vars)
{
    json_t *user = sess_peek(req, "user");

    if (json_is_true(sess_peek(req, "authenticated")) && json_is_object(user) &&
        !json_object_get(vars, "user"))
        json_object_set_nocheck(vars, "user", user);
    if (page_vars_hook)
        page_vars_hook(req, vars);
}

/* {{csrf}}: an HMAC per page that shows a form, and none for the others. */
static const char *
csrf_of(void *req)
{
    return sess_csrf_token(req);
}

static void
send_page_now(struct sess_request *req, int status, const char *page, json_t *vars)
{
    char errmsg[SESS_ERRMSG_MAX];
    const struct sess_tpl_lazy csrf = {"csrf", 4, csrf_of, req};
    enum sess_err err;

    page_vars(req, vars);
    req->out.len = 0;
    err = sess__templates_render_lazy(req->app->templates, page, vars, &csrf, &req->out.ptr,
                                      &req->out.len, &req->out.cap, errmsg, sizeof errmsg);
    if (err != SESS_OK) {
        /* A broken page edit must not take the site down silently. */
        sess__log_error(req->app, "%s", errmsg);
        req->out.len = 0;
        if (sess__buf_append(&req->out, "Page template error; see the server log.\n", 41) !=
            SESS_OK)
            req->out.len = 0;
        common_headers(req, false);
        emit(req, 500, "text/plain; charset=utf-8");
        return;
    }
    common_headers(req, true);
    emit(req, status, "text/html; charset=utf-8");
}

/* {{flash}}: the session's flash messages, taken (read once) before the
 * session is saved, as a list of {"type", "msg"}. */
static void
take_flash(struct sess_request *req, json_t *vars)
{
    json_t *all, *list, *msgs, *msg;
    const char *type;
    size_t i;

    if (json_object_get(vars, "flash") || !sess_peek(req, "flash"))
        return;
    all = sess_flash_take_all(req);
    list = all ? json_array() : NULL;
    json_object_foreach(all, type, msgs)
    {
        json_array_foreach(msgs, i, msg)
        {
            if (json_is_string(msg))
                json_array_append_new(list, json_pack("{s:s, s:O}", "type", type, "msg", msg));
        }
    }
    if (list)
        json_object_set_new(vars, "flash", list);
    json_decref(all);
}

void
sess_send_page(struct sess_request *req, int status, const char *page, json_t *vars)
{
    if (!vars)
        vars = json_object();
    if (vars && !req->is_answered)
        take_flash(req, vars);
    if (status >= 500 && !req->is_answered)
        log_5xx(req, status, "the route's own answer");
    if (!req->is_answered && vars && commit_or_503(req))
        send_page_now(req, status, page, vars);
    json_decref(vars);
}

/* Browsers read a Location with the WHATWG URL parser, which strips
 * leading and trailing C0 controls and spaces, drops every TAB, CR and LF,
 * and takes '\\' for '/' in http(s) URLs: "/\t/evil.example" and
 * "/\\evil.example" both reach "//evil.example", another host. Hence no
 * control byte and no backslash anywhere, and one '/' first (which also
 * rules out a scheme and a leading space). */
bool
sess_redirect_is_local(const char *location)
{
    const unsigned char *p = (const unsigned char *)location;

    if (!p || p[0] != '/' || p[1] == '/')
        return false;
    for (; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return false;
    return true;
}

void
sess_redirect(struct sess_request *req, const char *location)
{
    if (req->is_answered)
        return;
    /* Only paths of this site: an open redirect would be a gift. The
     * target is not logged: it may be what an attacker chose. */
    if (!sess_redirect_is_local(location) || sess_header(req, "Location", location) != SESS_OK) {
        sess__log_error(req->app, "sess_redirect refused a target that is not a path of this site");
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
    if (status >= 500)
        log_5xx(req, status, msg);
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
