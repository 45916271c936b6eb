/* Sealing at rest (seal.c): XChaCha20-Poly1305 under keys derived from
 * the secrets. The stores seal what they keep (store/). Internal to lib/. */
#ifndef SESS_SEAL_H
#define SESS_SEAL_H

#include "buf.h"
#include "sess_util.h"

#define SESS_SEAL_OVERHEAD (24 + 16) /* nonce + tag */

/* Keys by sess_derive_key(), and the keys 0.1 derived (HMAC-SHA256 of
 * "fcgi-session " purpose, which a cookie signature could equal): those
 * open what 0.1 sealed and never seal. To be dropped with the 0.1 record
 * format (lmdb/records.c) in the release after this one. */
struct sess_sealer {
    size_t count;
    unsigned char key[SESS_SECRETS_MAX][32];    /* wiped by sess__sealer_wipe */
    unsigned char legacy[SESS_SECRETS_MAX][32]; /* wiped by sess__sealer_wipe */
};

/* sess_derive_key as 0.1 did it: HMAC-SHA256(secret, "fcgi-session " purpose).
 * Only to verify what 0.1 made (sealed records, CSRF tokens). */
void sess__derive_key_legacy(const struct sess_secrets *secrets, size_t index, const char *purpose,
                             unsigned char key[32]);

void sess__sealer_init(struct sess_sealer *s, const struct sess_secrets *secrets);
void sess__sealer_wipe(struct sess_sealer *s);
/* Appends nonce || ciphertext || tag of `plain` to `out`, under key 0, with
 * `ad` as additional data (the session id, or a record's header). */
enum sess_err sess__seal(const struct sess_sealer *s, struct sess_str ad, struct sess_str plain,
                         struct sess_buf *out) SESS_MUST_CHECK;
/* Appends the plaintext to `out`, trying every key, then every legacy key.
 * SESS_ECRYPTO if none opens it (tampered, truncated, other `ad`, unknown
 * key). */
enum sess_err sess__unseal(const struct sess_sealer *s, struct sess_str ad, struct sess_str sealed,
                           struct sess_buf *out) SESS_MUST_CHECK;
/* sess__unseal without the legacy keys: for what was never sealed under them. */
enum sess_err sess__unseal_current(const struct sess_sealer *s, struct sess_str ad,
                                   struct sess_str sealed, struct sess_buf *out) SESS_MUST_CHECK;
/* Only the legacy keys: for what 0.1 sealed and nothing since does. */
enum sess_err sess__unseal_legacy(const struct sess_sealer *s, struct sess_str ad,
                                  struct sess_str sealed, struct sess_buf *out) SESS_MUST_CHECK;

#endif
