/* Sealing at rest (seal.c): round trips, and every way a sealed value can
 * be damaged or misplaced failing with SESS_ECRYPTO. The layout and the key
 * derivation are checked against libsodium called directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "store.h"

#define SECRET_A "first secret, at least thirty-two bytes long"
#define SECRET_B "second secret, also at least thirty-two bytes"
#define ID       "x7PqK2mWn9Rt4VbZc8LdHs1FgYj3Ea6Uo0iTwNr5Qxe"
#define PLAIN    "{\"cookie\":{\"originalMaxAge\":1800000},\"user\":{\"username\":\"alice\"}}"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES   crypto_aead_xchacha20poly1305_ietf_ABYTES

struct state {
    struct sess_secrets secrets;
    struct sess_sealer sealer;
    struct sess_buf sealed;
    struct sess_buf plain;
};

static void
add_secret(struct sess_secrets *secrets, const char *secret)
{
    assert_int_equal(sess_secrets_add(secrets, sess_str_c(secret)), SESS_OK);
}

static int
setup(void **ctx)
{
    struct state *s = calloc(1, sizeof *s);

    assert_non_null(s);
    add_secret(&s->secrets, SECRET_A);
    sess__sealer_init(&s->sealer, &s->secrets);
    *ctx = s;
    return 0;
}

static int
teardown(void **ctx)
{
    struct state *s = *ctx;

    sess__sealer_wipe(&s->sealer);
    sess_secrets_free(&s->secrets);
    sess__buf_free(&s->sealed);
    sess__buf_free(&s->plain);
    free(s);
    return 0;
}

static void
seal_plain(struct state *s)
{
    assert_int_equal(sess__seal(&s->sealer, SESS_STR_LIT(ID), SESS_STR_LIT(PLAIN), &s->sealed),
                     SESS_OK);
}

static enum sess_err
unseal_with(const struct sess_sealer *sealer, struct state *s, const char *id, size_t len)
{
    return sess__unseal(sealer, sess_str_c(id), (struct sess_str){s->sealed.ptr, len}, &s->plain);
}

static void
test_seal_round_trip(void **ctx)
{
    struct state *s = *ctx;

    seal_plain(s);
    assert_int_equal(s->sealed.len, strlen(PLAIN) + SESS_SEAL_OVERHEAD);
    assert_int_equal(unseal_with(&s->sealer, s, ID, s->sealed.len), SESS_OK);
    assert_int_equal(s->plain.len, strlen(PLAIN));
    assert_memory_equal(s->plain.ptr, PLAIN, strlen(PLAIN));
}

static void
test_seal_empty_plaintext_round_trip(void **ctx)
{
    struct state *s = *ctx;

    assert_int_equal(sess__seal(&s->sealer, SESS_STR_LIT(ID), SESS_STR_LIT(""), &s->sealed),
                     SESS_OK);
    assert_int_equal(s->sealed.len, SESS_SEAL_OVERHEAD);
    assert_int_equal(unseal_with(&s->sealer, s, ID, s->sealed.len), SESS_OK);
    assert_int_equal(s->plain.len, 0);
}

static void
test_seal_appends_after_existing_bytes(void **ctx)
{
    struct state *s = *ctx;

    assert_int_equal(sess__buf_append(&s->sealed, "HEADER", 6), SESS_OK);
    seal_plain(s);
    assert_memory_equal(s->sealed.ptr, "HEADER", 6);
    assert_int_equal(s->sealed.len, 6 + strlen(PLAIN) + SESS_SEAL_OVERHEAD);
    assert_int_equal(sess__unseal(&s->sealer, SESS_STR_LIT(ID),
                                  (struct sess_str){s->sealed.ptr + 6, s->sealed.len - 6},
                                  &s->plain),
                     SESS_OK);
    assert_memory_equal(s->plain.ptr, PLAIN, strlen(PLAIN));
}

/* The stored form, decrypted by libsodium itself under the key the design
 * names: BLAKE2b-256("store") keyed with BLAKE2b-256(secret), nonce first,
 * the given additional data (here the id). */
static void
test_seal_layout_is_nonce_ciphertext_tag_under_derived_key(void **ctx)
{
    struct state *s = *ctx;
    unsigned char master[32], key[32];
    unsigned char out[sizeof PLAIN];
    unsigned long long out_len;
    const unsigned char *p;

    seal_plain(s);
    crypto_generichash_blake2b_salt_personal(master, sizeof master, (const unsigned char *)SECRET_A,
                                             strlen(SECRET_A), NULL, 0, NULL,
                                             (const unsigned char *)"fcgi-sess secret");
    crypto_generichash_blake2b_salt_personal(key, sizeof key, (const unsigned char *)"store", 5,
                                             master, sizeof master, NULL,
                                             (const unsigned char *)"fcgi-sess kdf v2");
    p = (const unsigned char *)s->sealed.ptr;
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
                         out, &out_len, NULL, p + NONCE_BYTES, s->sealed.len - NONCE_BYTES,
                         (const unsigned char *)ID, strlen(ID), p, key),
                     0);
    assert_int_equal(out_len, strlen(PLAIN));
    assert_memory_equal(out, PLAIN, strlen(PLAIN));
}

/* What 0.1 sealed: under HMAC-SHA256(secret, "fcgi-session store"), by
 * libsodium directly. sess__unseal and sess__unseal_legacy open it;
 * sess__unseal_current, for formats 0.1 never wrote, does not. */
static void
test_values_sealed_under_the_legacy_key_open_only_where_allowed(void **ctx)
{
    struct state *s = *ctx;
    unsigned char key[32], nonce[NONCE_BYTES];
    unsigned char sealed[NONCE_BYTES + sizeof PLAIN + TAG_BYTES];
    unsigned long long clen;
    crypto_auth_hmacsha256_state h;
    struct sess_str v;

    crypto_auth_hmacsha256_init(&h, (const unsigned char *)SECRET_A, strlen(SECRET_A));
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)"fcgi-session store", 18);
    crypto_auth_hmacsha256_final(&h, key);
    randombytes_buf(nonce, sizeof nonce);
    memcpy(sealed, nonce, sizeof nonce);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        sealed + NONCE_BYTES, &clen, (const unsigned char *)PLAIN, strlen(PLAIN),
        (const unsigned char *)ID, strlen(ID), NULL, nonce, key);
    v = (struct sess_str){(const char *)sealed, NONCE_BYTES + (size_t)clen};
    assert_int_equal(sess__unseal(&s->sealer, SESS_STR_LIT(ID), v, &s->plain), SESS_OK);
    assert_memory_equal(s->plain.ptr, PLAIN, strlen(PLAIN));
    s->plain.len = 0;
    assert_int_equal(sess__unseal_legacy(&s->sealer, SESS_STR_LIT(ID), v, &s->plain), SESS_OK);
    s->plain.len = 0;
    assert_int_equal(sess__unseal_current(&s->sealer, SESS_STR_LIT(ID), v, &s->plain),
                     SESS_ECRYPTO);
    /* And what this release seals is no business of the legacy keys. */
    seal_plain(s);
    assert_int_equal(sess__unseal_legacy(&s->sealer, SESS_STR_LIT(ID),
                                         (struct sess_str){s->sealed.ptr, s->sealed.len},
                                         &s->plain),
                     SESS_ECRYPTO);
    assert_int_equal(sess__unseal_current(&s->sealer, SESS_STR_LIT(ID),
                                          (struct sess_str){s->sealed.ptr, s->sealed.len},
                                          &s->plain),
                     SESS_OK);
}

static void
test_seal_uses_a_fresh_nonce_each_time(void **ctx)
{
    struct state *s = *ctx;
    size_t one;

    seal_plain(s);
    one = s->sealed.len;
    seal_plain(s);
    assert_int_equal(s->sealed.len, 2 * one);
    assert_memory_not_equal(s->sealed.ptr, s->sealed.ptr + one, NONCE_BYTES);
    assert_memory_not_equal(s->sealed.ptr + NONCE_BYTES, s->sealed.ptr + one + NONCE_BYTES,
                            one - NONCE_BYTES);
}

static void
test_seal_does_not_contain_the_plaintext(void **ctx)
{
    struct state *s = *ctx;

    seal_plain(s);
    assert_null(memmem(s->sealed.ptr, s->sealed.len, "alice", 5));
}

/* Flips one byte at `offset` and expects the value not to open. */
static void
expect_tamper_refused(struct state *s, size_t offset)
{
    seal_plain(s);
    assert_true(offset < s->sealed.len);
    s->sealed.ptr[offset] ^= 0x01;
    assert_int_equal(unseal_with(&s->sealer, s, ID, s->sealed.len), SESS_ECRYPTO);
    assert_int_equal(s->plain.len, 0);
}

static void
test_unseal_refuses_tampered_nonce(void **ctx)
{
    expect_tamper_refused(*ctx, 0);
}

static void
test_unseal_refuses_tampered_nonce_last_byte(void **ctx)
{
    expect_tamper_refused(*ctx, NONCE_BYTES - 1);
}

static void
test_unseal_refuses_tampered_ciphertext(void **ctx)
{
    expect_tamper_refused(*ctx, NONCE_BYTES + 10);
}

static void
test_unseal_refuses_tampered_tag(void **ctx)
{
    expect_tamper_refused(*ctx, NONCE_BYTES + strlen(PLAIN) + TAG_BYTES - 1);
}

static void
test_unseal_refuses_another_id(void **ctx)
{
    struct state *s = *ctx;
    char other[] = ID;

    seal_plain(s);
    other[0] = 'y';
    assert_int_equal(unseal_with(&s->sealer, s, other, s->sealed.len), SESS_ECRYPTO);
    assert_int_equal(unseal_with(&s->sealer, s, "", s->sealed.len), SESS_ECRYPTO);
    assert_int_equal(unseal_with(&s->sealer, s, ID "x", s->sealed.len), SESS_ECRYPTO);
}

static void
test_unseal_refuses_every_truncation(void **ctx)
{
    struct state *s = *ctx;
    size_t len;

    seal_plain(s);
    for (len = 0; len < s->sealed.len; len++)
        assert_int_equal(unseal_with(&s->sealer, s, ID, len), SESS_ECRYPTO);
    assert_int_equal(s->plain.len, 0);
}

static void
test_unseal_refuses_trailing_bytes(void **ctx)
{
    struct state *s = *ctx;

    seal_plain(s);
    assert_int_equal(sess__buf_append(&s->sealed, "x", 1), SESS_OK);
    assert_int_equal(unseal_with(&s->sealer, s, ID, s->sealed.len), SESS_ECRYPTO);
}

/* Rotation: a new secret goes first in secret_file; values sealed under the
 * old one still open, and new values are sealed under the new one. */
static void
test_unseal_opens_values_sealed_under_an_older_secret(void **ctx)
{
    struct state *s = *ctx;
    struct sess_secrets rotated = {0};
    struct sess_sealer new_sealer;

    seal_plain(s); /* under A only */
    add_secret(&rotated, SECRET_B);
    add_secret(&rotated, SECRET_A);
    sess__sealer_init(&new_sealer, &rotated);
    assert_int_equal(new_sealer.count, 2);
    assert_int_equal(unseal_with(&new_sealer, s, ID, s->sealed.len), SESS_OK);
    assert_memory_equal(s->plain.ptr, PLAIN, strlen(PLAIN));
    sess__sealer_wipe(&new_sealer);
    sess_secrets_free(&rotated);
}

static void
test_seal_uses_the_first_secret(void **ctx)
{
    struct state *s = *ctx;
    struct sess_secrets rotated = {0}, only_b = {0};
    struct sess_sealer rotated_sealer, b_sealer;

    add_secret(&rotated, SECRET_B);
    add_secret(&rotated, SECRET_A);
    add_secret(&only_b, SECRET_B);
    sess__sealer_init(&rotated_sealer, &rotated);
    sess__sealer_init(&b_sealer, &only_b);
    assert_int_equal(sess__seal(&rotated_sealer, SESS_STR_LIT(ID), SESS_STR_LIT(PLAIN), &s->sealed),
                     SESS_OK);
    assert_int_equal(unseal_with(&b_sealer, s, ID, s->sealed.len), SESS_OK);
    /* and the sealer of A alone cannot open it */
    s->plain.len = 0;
    assert_int_equal(unseal_with(&s->sealer, s, ID, s->sealed.len), SESS_ECRYPTO);
    sess__sealer_wipe(&rotated_sealer);
    sess__sealer_wipe(&b_sealer);
    sess_secrets_free(&rotated);
    sess_secrets_free(&only_b);
}

static void
test_unseal_refuses_a_retired_secret(void **ctx)
{
    struct state *s = *ctx;
    struct sess_secrets only_b = {0};
    struct sess_sealer b_sealer;

    seal_plain(s); /* under A */
    add_secret(&only_b, SECRET_B);
    sess__sealer_init(&b_sealer, &only_b);
    assert_int_equal(unseal_with(&b_sealer, s, ID, s->sealed.len), SESS_ECRYPTO);
    sess__sealer_wipe(&b_sealer);
    sess_secrets_free(&only_b);
}

static void
test_seal_without_keys_is_refused(void **ctx)
{
    struct state *s = *ctx;
    struct sess_sealer empty = {0};

    assert_int_equal(sess__seal(&empty, SESS_STR_LIT(ID), SESS_STR_LIT(PLAIN), &s->sealed),
                     SESS_ECRYPTO);
    assert_int_equal(s->sealed.len, 0);
    seal_plain(s);
    assert_int_equal(unseal_with(&empty, s, ID, s->sealed.len), SESS_ECRYPTO);
}

static void
test_sealer_keys_differ_per_secret_and_wipe_clears_them(void **ctx)
{
    struct state *s = *ctx;
    struct sess_secrets two = {0};
    struct sess_sealer sealer;
    unsigned char zero[32] = {0};

    (void)s;
    add_secret(&two, SECRET_A);
    add_secret(&two, SECRET_B);
    sess__sealer_init(&sealer, &two);
    assert_memory_not_equal(sealer.key[0], sealer.key[1], 32);
    assert_memory_not_equal(sealer.key[0], zero, 32);
    sess__sealer_wipe(&sealer);
    assert_int_equal(sealer.count, 0);
    assert_memory_equal(sealer.key[0], zero, 32);
    assert_memory_equal(sealer.key[1], zero, 32);
    sess_secrets_free(&two);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_seal_round_trip),
        T(test_seal_empty_plaintext_round_trip),
        T(test_seal_appends_after_existing_bytes),
        T(test_seal_layout_is_nonce_ciphertext_tag_under_derived_key),
        T(test_values_sealed_under_the_legacy_key_open_only_where_allowed),
        T(test_seal_uses_a_fresh_nonce_each_time),
        T(test_seal_does_not_contain_the_plaintext),
        T(test_unseal_refuses_tampered_nonce),
        T(test_unseal_refuses_tampered_nonce_last_byte),
        T(test_unseal_refuses_tampered_ciphertext),
        T(test_unseal_refuses_tampered_tag),
        T(test_unseal_refuses_another_id),
        T(test_unseal_refuses_every_truncation),
        T(test_unseal_refuses_trailing_bytes),
        T(test_unseal_opens_values_sealed_under_an_older_secret),
        T(test_seal_uses_the_first_secret),
        T(test_unseal_refuses_a_retired_secret),
        T(test_seal_without_keys_is_refused),
        T(test_sealer_keys_differ_per_secret_and_wipe_clears_them),
#undef T
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
