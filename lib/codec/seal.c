/* Sealing session data at rest: XChaCha20-Poly1305 with a random nonce and
 * additional data the store chooses (the session id, or a record's header
 * with it), so a copied database reveals nothing and a value moved under
 * another id or header does not open. Keys come from the secrets (sign.c
 * derives them); where the bytes live is the store's job. */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "seal.h"

_Static_assert(SESS_SEAL_OVERHEAD == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                         crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "SESS_SEAL_OVERHEAD must be nonce + tag");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "32-byte keys");

void
sess__sealer_init(struct sess_sealer *s, const struct sess_secrets *secrets)
{
    size_t i;

    s->count = secrets->count < SESS_SECRETS_MAX ? secrets->count : SESS_SECRETS_MAX;
    for (i = 0; i < s->count; i++) {
        sess_derive_key(secrets, i, "store", s->key[i]);
        sess__derive_key_legacy(secrets, i, "store", s->legacy[i]);
    }
}

void
sess__sealer_wipe(struct sess_sealer *s)
{
    sodium_memzero(s, sizeof *s);
}

enum sess_err
sess__seal(const struct sess_sealer *s, struct sess_str ad, struct sess_str plain,
           struct sess_buf *out)
{
    enum sess_err err;
    unsigned char *dst;
    unsigned long long clen;

    if (s->count == 0)
        return SESS_ECRYPTO;
    if (plain.len > SIZE_MAX - SESS_SEAL_OVERHEAD)
        return SESS_ENOMEM;
    err = sess__buf_reserve(out, plain.len + SESS_SEAL_OVERHEAD);
    if (err != SESS_OK)
        return err;
    dst = (unsigned char *)out->ptr + out->len;
    randombytes_buf(dst, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        dst + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, (const unsigned char *)plain.ptr,
        plain.len, (const unsigned char *)ad.ptr, ad.len, NULL, dst, s->key[0]);
    out->len += crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t)clen;
    return SESS_OK;
}

static enum sess_err
unseal(const struct sess_sealer *s, struct sess_str ad, struct sess_str sealed, bool use_current,
       bool use_legacy, struct sess_buf *out)
{
    enum sess_err err;
    const unsigned char *nonce = (const unsigned char *)sealed.ptr;
    const unsigned char *cipher = nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const unsigned char(*keys)[32];
    size_t clen, i, round;
    unsigned long long plen;

    if (sealed.len < SESS_SEAL_OVERHEAD)
        return SESS_ECRYPTO;
    clen = sealed.len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    /* One byte more than the plaintext: room for a caller's NUL, and never a
     * NULL buffer for an empty plaintext. */
    err = sess__buf_reserve(out, clen - crypto_aead_xchacha20poly1305_ietf_ABYTES + 1);
    if (err != SESS_OK)
        return err;
    /* Keys are tried in the order of secret_file, so the current key, which
     * sealed nearly everything, opens on the first attempt; the legacy keys
     * last, as only what 0.1 wrote needs them. */
    for (round = 0; round < 2; round++) {
        if (!(round == 0 ? use_current : use_legacy))
            continue;
        keys = round == 0 ? s->key : s->legacy;
        for (i = 0; i < s->count; i++) {
            if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                    (unsigned char *)out->ptr + out->len, &plen, NULL, cipher, clen,
                    (const unsigned char *)ad.ptr, ad.len, nonce, keys[i]) == 0) {
                out->len += (size_t)plen;
                return SESS_OK;
            }
        }
    }
    return SESS_ECRYPTO;
}

enum sess_err
sess__unseal(const struct sess_sealer *s, struct sess_str ad, struct sess_str sealed,
             struct sess_buf *out)
{
    return unseal(s, ad, sealed, true, true, out);
}

enum sess_err
sess__unseal_current(const struct sess_sealer *s, struct sess_str ad, struct sess_str sealed,
                     struct sess_buf *out)
{
    return unseal(s, ad, sealed, true, false, out);
}

enum sess_err
sess__unseal_legacy(const struct sess_sealer *s, struct sess_str ad, struct sess_str sealed,
                    struct sess_buf *out)
{
    return unseal(s, ad, sealed, false, true, out);
}
