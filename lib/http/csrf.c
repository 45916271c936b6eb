/* CSRF tokens for forms: stateless, TIME.HMAC(key, TIME "|" id), bound to
 * the session the form was shown in, checked in constant time. The first
 * secret's key makes them; every secret's key verifies them, as cookies.
 * Without a session a token is bound to the browser by a random
 * pre-session cookie (NAME.csrf), so a token an attacker fetched for
 * himself is worth nothing in his victim's browser (login CSRF). */
#include <string.h>

#include <sodium.h>

#include "http.h"

/* The pre-session cookie: "TIME.RANDOM", TIME in base 36 ms. It lives two
 * token lifetimes and is replaced once older than one, so every token made
 * for it outlives neither. */
#define PRE_LIFE_MS ((int64_t)2 * SESS_CSRF_TTL_MS)

static void
csrf_mac(const crypto_auth_hmacsha256_state *keyed, const char *time36, size_t time_len,
         const char *bind, char out[44])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    memcpy(&st, keyed, sizeof st);
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

static bool
from_base36(const char *s, size_t len, int64_t *out)
{
    int64_t t = 0;

    if (len == 0 || len > 12)
        return false;
    for (size_t i = 0; i < len; i++) {
        const char *d = s[i] ? strchr("0123456789abcdefghijklmnopqrstuvwxyz", s[i]) : NULL;
        if (!d)
            return false;
        t = t * 36 + (d - "0123456789abcdefghijklmnopqrstuvwxyz");
    }
    *out = t;
    return true;
}

static void
pre_cookie_name(const struct sess_app *app, char out[SESS_PRE_CSRF_NAME_MAX])
{
    sess__fmt(out, SESS_PRE_CSRF_NAME_MAX, "%s.csrf", app->cfg.name);
}

/* The pre-session cookie the client sent, when well-formed and not past
 * its life; else "". */
static void
read_pre_cookie(struct sess_request *req)
{
    const char *header = sess_param(req, "HTTP_COOKIE");
    char name[SESS_PRE_CSRF_NAME_MAX], value[sizeof req->pre_csrf];
    const char *dot;
    size_t len = 0;
    int64_t made_ms;

    req->pre_csrf[0] = '\0';
    pre_cookie_name(req->app, name);
    if (!header || sess_cookie_find(sess_str_c(header), sess_str_c(name), value, sizeof value,
                                    &len) != SESS_OK)
        return;
    dot = memchr(value, '.', len);
    if (!dot || !from_base36(value, (size_t)(dot - value), &made_ms) ||
        !sess_id_is_valid((struct sess_str){dot + 1, len - (size_t)(dot + 1 - value)}) ||
        req->now_ms - made_ms >= PRE_LIFE_MS || made_ms - req->now_ms > (int64_t)60 * 1000)
        return;
    memcpy(req->pre_csrf, value, len + 1);
    req->pre_csrf_made_ms = made_ms;
}

/* A new pre-session cookie, sent with this response. */
static void
make_pre_cookie(struct sess_request *req)
{
    const struct sess_config *cfg = &req->app->cfg;
    char name[SESS_PRE_CSRF_NAME_MAX], id[SESS_ID_LEN + 1], header[SESS_PRE_CSRF_NAME_MAX + 256];
    struct sess_cookie_attrs a = {
        .path = "/",
        .same_site = SESS_SAME_SITE_LAX,
        .http_only = true,
        .has_expiry = true,
        .expires_at = (req->now_ms + PRE_LIFE_MS) / 1000,
    };
    size_t n = to_base36(req->now_ms, req->pre_csrf), len;

    /* Secure as the session cookie would be; SameSite=Lax whatever the
     * session's: the cookie is only ever read by a POST of our own forms. */
    a.secure = cfg->cookie_secure == SESS_SECURE_ALWAYS ||
               (cfg->cookie_secure == SESS_SECURE_AUTO &&
                (req->is_secure || sess__cookie_has_prefix(cfg->name, "__Host-") ||
                 sess__cookie_has_prefix(cfg->name, "__Secure-")));
    sess_id_new(id);
    req->pre_csrf[n] = '.';
    memcpy(req->pre_csrf + n + 1, id, sizeof id);
    req->pre_csrf_made_ms = req->now_ms;
    req->is_pre_csrf_new = true;
    pre_cookie_name(req->app, name);
    if (sess_cookie_build(header, sizeof header, &len, sess_str_c(name), sess_str_c(req->pre_csrf),
                          &a, req->now_ms / 1000) != SESS_OK ||
        sess_header(req, "Set-Cookie", header) != SESS_OK)
        req->pre_csrf[0] = '\0'; /* a name too long for a cookie: tokens stay unbound */
}

/* What a token made now without a session is bound to: the pre-session
 * cookie, made (and sent) when the client has none or an old one. */
static const char *
pre_binding(struct sess_request *req, bool may_make)
{
    if (!req->is_pre_csrf_read) {
        read_pre_cookie(req);
        req->is_pre_csrf_read = true;
    }
    /* None yet, an old one, or a new one whose Set-Cookie went with the
     * headers of a run of the route that is being run again. */
    if (may_make &&
        (!req->pre_csrf[0] ||
         (!req->is_pre_csrf_new && req->now_ms - req->pre_csrf_made_ms >= SESS_CSRF_TTL_MS) ||
         (req->is_pre_csrf_new && !req->is_pre_csrf_sent)))
        make_pre_cookie(req);
    req->is_pre_csrf_sent = req->is_pre_csrf_sent || (may_make && req->is_pre_csrf_new);
    if (!req->pre_csrf[0])
        return NULL;
    sess__fmt(req->pre_bind, sizeof req->pre_bind, "pre|%s", req->pre_csrf);
    return req->pre_bind;
}

const char *
sess_csrf_token(struct sess_request *req)
{
    char time36[16], mac[44];
    size_t n = to_base36(req->now_ms, time36);
    const char *bind = sess_exists(req) ? req->id : pre_binding(req, true);

    _Static_assert(sizeof req->csrf >= 15 + 1 + 44, "req->csrf holds TIME.MAC");
    /* Unbound (no cookie could be made): a token that no check accepts. */
    csrf_mac(&req->app->csrf_keyed[0], time36, n, bind ? bind : "unbound|", mac);
    memcpy(req->csrf, time36, n);
    req->csrf[n] = '.';
    memcpy(req->csrf + n + 1, mac, 44);
    return req->csrf;
}

enum sess__csrf_check
sess__csrf_check(struct sess_request *req, const char *token, size_t len)
{
    const char *dot = memchr(token, '.', len);
    char mac[44];
    const char *binds[2];
    size_t tlen;
    int64_t t = 0;

    if (!dot || len - (size_t)(dot - token) - 1 != 43)
        return SESS_CSRF_BAD;
    tlen = (size_t)(dot - token);
    if (tlen == 0 || tlen > 12)
        return SESS_CSRF_BAD;
    if (!from_base36(token, tlen, &t))
        return SESS_CSRF_BAD;
    if (t - req->now_ms > (int64_t)60 * 1000)
        return SESS_CSRF_BAD;
    if (req->now_ms - t > SESS_CSRF_TTL_MS)
        return SESS_CSRF_EXPIRED;
    /* A token is bound to the session it was shown in, or to the browser's
     * pre-session cookie (a form shown before the session began, in this
     * tab or another). Never to nothing: an unbound token would be good in
     * any browser. The legacy keys are 0.1's: its tokens live
     * SESS_CSRF_TTL_MS, so they can go in the release after this one. */
    binds[0] = req->is_loaded ? req->cookie_id : NULL;
    binds[1] = pre_binding(req, false);
    for (size_t b = 0; b < 2; b++) {
        if (!binds[b] || !binds[b][0])
            continue;
        for (size_t round = 0; round < 2; round++) {
            for (size_t i = 0; i < req->app->secrets.count; i++) {
                csrf_mac(round == 0 ? &req->app->csrf_keyed[i] : &req->app->csrf_legacy[i], token,
                         tlen, binds[b], mac);
                if (sodium_memcmp(mac, dot + 1, 43) == 0)
                    return SESS_CSRF_OK;
            }
        }
    }
    /* A token of ours in shape and time whose session has ended (or its
     * pre-session cookie gone): what a form left open too long sends. A
     * forger learns nothing from the word: either way it is refused. */
    return SESS_CSRF_EXPIRED;
}
