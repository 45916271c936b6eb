/* A request as the route sees it: its CGI parameters, method, path,
 * whether it came over HTTPS, the client's address, the process's app,
 * and the headers the answer will carry (checked here so that no client
 * value can split them). The accept loop that fills it is run.c's; the
 * session, body and answer are session.c's, body.c's and response.c's. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* ------------------------------------------------------------------------
 * Parameters
 * ------------------------------------------------------------------------ */

const char *
sess_param(const struct sess_request *req, const char *name)
{
    size_t len;
    char **p;

    /* httpoxy (CVE-2016-5387) and mod_session's CVE-2018-1283: these names
     * come from client headers and must never be mistaken for ours. */
    if (strcmp(name, "HTTP_PROXY") == 0 || strcmp(name, "HTTP_SESSION") == 0)
        return NULL;
    /* FCGX_GetParam's walk, with the first byte tested before the call: a
     * request has two dozen parameters and we look up a few per request. */
    if (!req->envp)
        return NULL;
    len = strlen(name);
    for (p = req->envp; *p; p++)
        if ((len == 0 || (*p)[0] == name[0]) && strncmp(name, *p, len) == 0 && (*p)[len] == '=')
            return *p + len + 1;
    return NULL;
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

/* Copies `len` bytes of `s` as the request's path, or leaves "" when they
 * do not fit. */
static void
keep_path(struct sess_request *req, const char *s, size_t len)
{
    if (len > SESS_PATH_MAX)
        return;
    memcpy(req->path, s, len);
    req->path[len] = '\0';
}

/* Past "scheme://authority" of an absolute-form target (RFC 9112 3.2.2),
 * or NULL when `uri` does not start with a scheme and "://". */
static const char *
skip_scheme_and_authority(const char *uri)
{
    const char *p = uri;

    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return NULL;
    p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    if (strncmp(p, "://", 3) != 0)
        return NULL;
    p += 3;
    return p + strcspn(p, "/?#");
}

/* sess_path's rule (sess.h): REQUEST_URI's path when the server set it,
 * else SCRIPT_NAME and PATH_INFO, else "". */
static void
find_path(struct sess_request *req)
{
    const char *uri = sess_param(req, "REQUEST_URI");
    const char *script, *info;
    size_t script_len, info_len;

    req->path[0] = '\0';
    if (uri) {
        const char *after = *uri == '/' ? uri : skip_scheme_and_authority(uri);
        if (!after)
            return; /* "*", or nothing a path can be read from */
        if (*after != '/')
            keep_path(req, "/", 1); /* "http://host" or "http://host?q" */
        else
            keep_path(req, after, strcspn(after, "?#"));
        return;
    }
    script = sess_param(req, "SCRIPT_NAME");
    info = sess_param(req, "PATH_INFO");
    script_len = script ? strlen(script) : 0;
    info_len = info ? strlen(info) : 0;
    if (script_len > SESS_PATH_MAX || info_len > SESS_PATH_MAX - script_len)
        return;
    if (script_len)
        memcpy(req->path, script, script_len);
    if (info_len)
        memcpy(req->path + script_len, info, info_len);
    req->path[script_len + info_len] = '\0';
}

const char *
sess_path(const struct sess_request *req)
{
    return req->path;
}

struct sess_app *
sess_request_app(struct sess_request *req)
{
    return req->app;
}

/* What every run of the route shares: the one time of the request (its
 * age orders the writers of a group commit batch, oldest first), whether
 * it came over HTTPS, and its path. */
void
sess__request_start(struct sess_request *req, int64_t now_ms)
{
    req->now_ms = now_ms;
    req->is_secure = request_is_secure(req);
    find_path(req);
}

const char *
sess_client_addr(struct sess_request *req)
{
    const struct sess_config *cfg = &req->app->cfg;

    if (!req->has_client_addr) {
        sess__client_addr_pick(sess_param(req, "REMOTE_ADDR"),
                               sess_param(req, "HTTP_X_FORWARDED_FOR"), cfg->trust_proxy,
                               cfg->trusted_proxies, cfg->trusted_proxies_count, req->client_addr);
        req->has_client_addr = true;
    }
    return req->client_addr;
}

/* ------------------------------------------------------------------------
 * Headers and the request's lifetime
 * ------------------------------------------------------------------------ */

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
    if (strcasecmp(name, "Content-Security-Policy") == 0)
        req->has_own_csp = true;
    err = sess__buf_append(&req->headers, name, strlen(name));
    if (err == SESS_OK)
        err = sess__buf_append(&req->headers, ": ", 2);
    if (err == SESS_OK)
        err = sess__buf_append(&req->headers, value, strlen(value));
    if (err == SESS_OK)
        err = sess__buf_append(&req->headers, "\r\n", 2);
    return err;
}

void
sess__request_reset(struct sess_request *req)
{
    json_decref(req->body);
    json_decref(req->query);
    req->body = req->query = NULL;
    req->is_answered = false;
    req->is_input_drained = false;
    req->has_client_addr = false;
    req->path[0] = '\0';
    req->is_pre_csrf_read = false;
    req->is_pre_csrf_new = false;
    req->is_pre_csrf_sent = false;
    req->has_own_csp = false;
    req->status = 0;
    req->headers.len = 0;
    req->out.len = 0;
}
