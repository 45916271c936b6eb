/* CSRF tokens for forms: stateless, TIME.HMAC(key, TIME "|" id), bound to
 * the session the form was shown in, checked in constant time. The first
 * secret's key makes them; every secret's key verifies them, as cookies. */
#include <string.h>

#include <sodium.h>

#include "internal.h"

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

const char *
sess_csrf_token(struct sess_request *req)
{
    char time36[16], mac[44];
    size_t n = to_base36(req->now_ms, time36);

    _Static_assert(sizeof req->csrf >= 15 + 1 + 44, "req->csrf holds TIME.MAC");
    csrf_mac(&req->app->csrf_keyed[0], time36, n, sess_exists(req) ? req->id : "", mac);
    memcpy(req->csrf, time36, n);
    req->csrf[n] = '.';
    memcpy(req->csrf + n + 1, mac, 44);
    return req->csrf;
}

bool
sess_csrf_is_valid(struct sess_request *req, const char *token, size_t len)
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
    if (req->now_ms - t > SESS_CSRF_TTL_MS || t - req->now_ms > (int64_t)60 * 1000)
        return false;
    /* The legacy keys are 0.1's: its tokens live SESS_CSRF_TTL_MS, so they
     * can go in the release after this one. */
    for (size_t round = 0; round < 2; round++) {
        for (size_t i = 0; i < req->app->secrets.count; i++) {
            csrf_mac(round == 0 ? &req->app->csrf_keyed[i] : &req->app->csrf_legacy[i], token, tlen,
                     req->is_loaded ? req->cookie_id : "", mac);
            if (sodium_memcmp(mac, dot + 1, 43) == 0)
                return true;
        }
    }
    return false;
}
