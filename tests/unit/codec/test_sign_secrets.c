/* Session ids, the secrets and the keys derived from them (sign.c):
 * ids are 32 random bytes in base64url, the secret file is read with its
 * FILE:LINE errors and refused when others can read it, and each derived
 * key matches an outside computation (Python's hashlib, openssl). */
#include <sodium.h>

#include "sign_test.h"
#include "tmpfiles.h"

/* --- ids --- */

static void
test_id_new_is_43_base64url_characters(void **state)
{
    char id[SESS_ID_LEN + 1];

    (void)state;
    for (int i = 0; i < 100; i++) {
        memset(id, '*', sizeof(id));
        sess_id_new(id);
        assert_int_equal(strlen(id), SESS_ID_LEN);
        assert_int_equal(strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_"),
                         SESS_ID_LEN);
        assert_true(sess_id_is_valid(sess_str_c(id)));
    }
}

static int
compare_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void
test_id_new_never_repeats(void **state)
{
    enum { N = 4096 };
    char(*ids)[SESS_ID_LEN + 1] = calloc(N, sizeof(*ids));

    (void)state;
    assert_non_null(ids);
    for (size_t i = 0; i < N; i++)
        sess_id_new(ids[i]);
    qsort(ids, N, sizeof(*ids), compare_ids);
    for (size_t i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void
test_id_new_decodes_to_32_random_bytes(void **state)
{
    char id[SESS_ID_LEN + 1];
    unsigned char raw[SESS_ID_BYTES + 8];
    size_t len = 0;

    (void)state;
    sess_id_new(id);
    assert_int_equal(sodium_base642bin(raw, sizeof(raw), id, strlen(id), NULL, &len, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(len, SESS_ID_BYTES);
}

static void
test_new_id_round_trips_through_sign_and_unsign(void **state)
{
    struct sess_secrets s = {0};
    char id[SESS_ID_LEN + 1];
    char value[SESS_ID_LEN + SESS_SIG_LEN + 4];
    struct sess_str got;

    (void)state;
    add_secret(&s, secret_a);
    sess_id_new(id);
    sign_id(&s, id, value, sizeof(value));
    assert_int_equal(unsign_c(&s, value, &got), SESS_OK);
    assert_int_equal(got.len, SESS_ID_LEN);
    assert_memory_equal(got.ptr, id, SESS_ID_LEN);
    sess_secrets_free(&s);
}

static void
test_id_is_valid_bounds_and_charset(void **state)
{
    static const struct {
        const char *id;
        bool is_valid;
    } cases[] = {
        {"", false},
        {"abcdefghijklmno", false}, /* 15 */
        {"abcdefghijklmnop", true}, /* 16 */
        {"nc93lGy3AL5AfydR9DG4phvdX6VSIcfB", true},
        {"Yv3nRk0_2bq-LwX8sT6fJ9mHc1dQ4pZ7aE5gU0oNiK2", true},
        {"abcdefghijklmno+", false},
        {"abcdefghijklmno/", false},
        {"abcdefghijklmno=", false},
        {"abcdefghijklmno.", false},
        {"abcdefghijklmno\x80", false},
        {"----------------", true},
    };
    char longest[SESS_ID_MAX_LEN + 2];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(sess_id_is_valid(sess_str_c(cases[i].id)), cases[i].is_valid);
    memset(longest, 'Z', SESS_ID_MAX_LEN + 1);
    longest[SESS_ID_MAX_LEN + 1] = '\0';
    assert_false(sess_id_is_valid(sess_str_c(longest)));
    assert_true(sess_id_is_valid((struct sess_str){longest, SESS_ID_MAX_LEN}));
    /* A NUL inside the view is not a character of an id. */
    assert_false(sess_id_is_valid((struct sess_str){"abcdefgh\0ijklmnop", 17}));
}

/* --- secrets --- */

static void
test_secrets_add_copies_and_refuses_empty_or_too_many(void **state)
{
    struct sess_secrets s = {0};
    char buf[64];

    (void)state;
    strcpy(buf, secret_a);
    add_secret(&s, buf);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(s.item[0].len, strlen(secret_a));
    assert_memory_equal(s.item[0].ptr, secret_a, s.item[0].len);
    assert_int_equal(sess_secrets_add(&s, SESS_STR_LIT("")), SESS_EBADINPUT);
    while (s.count < SESS_SECRETS_MAX)
        add_secret(&s, secret_b);
    assert_int_equal(sess_secrets_add(&s, sess_str_c(secret_b)), SESS_ETOOBIG);
    sess_secrets_free(&s);
    assert_int_equal(s.count, 0);
    sess_secrets_free(&s);
    sess_secrets_free(NULL);
}

static enum sess_err
load_text(const char *text, mode_t mode, struct sess_secrets *s, char *msg, size_t msg_len,
          char path_out[PATH_MAX])
{
    struct tmpdir d;
    enum sess_err err;

    assert_int_equal(tmpdir_make(&d), 0);
    assert_int_equal(tmpdir_write(&d, "secrets", text, strlen(text), mode), 0);
    tmpdir_path(&d, "secrets", path_out);
    err = sess_secrets_load(s, path_out, msg, msg_len);
    tmpdir_remove(&d);
    return err;
}

static void
test_secrets_load_reads_one_secret_per_line_in_order(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX];
    char text[256];

    (void)state;
    snprintf(text, sizeof(text), "%s\n%s\n", secret_a, secret_b);
    assert_int_equal(load_text(text, 0600, &s, msg, sizeof(msg), path), SESS_OK);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.item[0].len, strlen(secret_a));
    assert_memory_equal(s.item[0].ptr, secret_a, strlen(secret_a));
    assert_int_equal(s.item[1].len, strlen(secret_b));
    assert_memory_equal(s.item[1].ptr, secret_b, strlen(secret_b));
    sess_secrets_free(&s);
}

static void
test_secrets_load_strips_cr_and_skips_empty_lines(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX];
    char text[256];

    (void)state;
    snprintf(text, sizeof(text), "\n\r\n%s\r\n\n%s", secret_a, secret_b);
    assert_int_equal(load_text(text, 0600, &s, msg, sizeof(msg), path), SESS_OK);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.item[0].len, strlen(secret_a));
    assert_memory_equal(s.item[0].ptr, secret_a, strlen(secret_a));
    /* The last line needs no newline. */
    assert_int_equal(s.item[1].len, strlen(secret_b));
    sess_secrets_free(&s);
}

static void
test_secrets_load_keeps_spaces_as_part_of_the_secret(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX];
    const char *text = "  spaces count, as in an Express secret  \n";

    (void)state;
    assert_int_equal(load_text(text, 0600, &s, msg, sizeof(msg), path), SESS_OK);
    assert_int_equal(s.item[0].len, strlen(text) - 1);
    sess_secrets_free(&s);
}

static void
test_secrets_load_names_the_line_of_a_short_secret(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX], want[SESS_ERRMSG_MAX + PATH_MAX];
    char text[256];

    (void)state;
    snprintf(text, sizeof(text), "%s\n\nshort secret\n", secret_a);
    assert_int_equal(load_text(text, 0600, &s, msg, sizeof(msg), path), SESS_ECONFIG);
    snprintf(want, sizeof(want),
             "%s:3: secret is 12 bytes; each line needs at least 32 (make one with: head -c 32 "
             "/dev/urandom | base64)",
             path);
    assert_string_equal(msg, want);
    assert_int_equal(s.count, 0);
}

static void
test_secrets_load_accepts_exactly_32_bytes_and_refuses_31(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX];

    (void)state;
    assert_int_equal(
        load_text("0123456789abcdef0123456789abcdef\n", 0600, &s, msg, sizeof(msg), path), SESS_OK);
    sess_secrets_free(&s);
    assert_int_equal(
        load_text("0123456789abcdef0123456789abcde\n", 0600, &s, msg, sizeof(msg), path),
        SESS_ECONFIG);
    assert_non_null(strstr(msg, ":1: secret is 31 bytes"));
}

static void
test_secrets_load_refuses_a_file_open_to_others(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX], want[SESS_ERRMSG_MAX + 2 * PATH_MAX];
    char text[128];

    (void)state;
    snprintf(text, sizeof(text), "%s\n", secret_a);
    assert_int_equal(load_text(text, 0644, &s, msg, sizeof(msg), path), SESS_ECONFIG);
    snprintf(want, sizeof(want),
             "%s: the secret file is open to other users (mode 0644); fix with: chmod o-rwx %s",
             path, path);
    assert_string_equal(msg, want);
    assert_int_equal(load_text(text, 0602, &s, msg, sizeof(msg), path), SESS_ECONFIG);
    assert_int_equal(load_text(text, 0601, &s, msg, sizeof(msg), path), SESS_ECONFIG);
}

static void
test_secrets_load_accepts_a_group_readable_file(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX];
    char text[128];

    (void)state;
    /* The web server's group may need to read it (spawn-fcgi -g). */
    snprintf(text, sizeof(text), "%s\n", secret_a);
    assert_int_equal(load_text(text, 0640, &s, msg, sizeof(msg), path), SESS_OK);
    assert_int_equal(s.count, 1);
    sess_secrets_free(&s);
}

static void
test_secrets_load_refuses_an_empty_file(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX];

    (void)state;
    assert_int_equal(load_text("\n\r\n\n", 0600, &s, msg, sizeof(msg), path), SESS_ECONFIG);
    assert_non_null(strstr(msg, ": no secret in the file"));
    assert_int_equal(load_text("", 0600, &s, msg, sizeof(msg), path), SESS_ECONFIG);
    assert_non_null(strstr(msg, ": no secret in the file"));
}

static void
test_secrets_load_refuses_more_than_sixteen(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "", path[PATH_MAX];
    char text[64 * (SESS_SECRETS_MAX + 1)] = "";

    (void)state;
    for (int i = 0; i < SESS_SECRETS_MAX; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s %02d\n", secret_a, i);
    assert_int_equal(load_text(text, 0600, &s, msg, sizeof(msg), path), SESS_OK);
    assert_int_equal(s.count, SESS_SECRETS_MAX);
    sess_secrets_free(&s);
    strcat(text, secret_b);
    assert_int_equal(load_text(text, 0600, &s, msg, sizeof(msg), path), SESS_ECONFIG);
    assert_non_null(strstr(msg, ":17: more than 16 secrets"));
    assert_int_equal(s.count, 0);
}

static void
test_secrets_load_refuses_a_missing_file_or_a_directory(void **state)
{
    struct sess_secrets s = {0};
    char msg[SESS_ERRMSG_MAX] = "";
    struct tmpdir d;
    char path[PATH_MAX];

    (void)state;
    assert_int_equal(tmpdir_make(&d), 0);
    tmpdir_path(&d, "absent", path);
    assert_int_equal(sess_secrets_load(&s, path, msg, sizeof(msg)), SESS_ECONFIG);
    assert_non_null(strstr(msg, "cannot open the secret file: No such file or directory"));
    assert_int_equal(chmod(d.path, 0700), 0);
    assert_int_equal(sess_secrets_load(&s, d.path, msg, sizeof(msg)), SESS_ECONFIG);
    assert_non_null(strstr(msg, "not a regular file"));
    tmpdir_remove(&d);
}

/* --- derived keys --- */

/* Python's hashlib:
 *   m = blake2b(SECRET, digest_size=32, person=b"fcgi-sess secret").digest()
 *   blake2b(PURPOSE, digest_size=32, key=m, person=b"fcgi-sess kdf v2").hexdigest() */
static void
test_derive_key_is_keyed_blake2b_of_the_purpose(void **state)
{
    static const struct {
        const char *purpose, *want_hex;
    } cases[] = {
        {"store", "7896dcc6163f4f432e96abb9cd617347c25169e1bd747c3c6d2144611e211fcb"},
        {"csrf", "cbd1866b0f4c597463019b69615dc962f5916ececec32dd949500e52a3a341ee"},
    };
    struct sess_secrets s = {0};
    unsigned char key[32];
    char hex[65];

    (void)state;
    add_secret(&s, secret_a);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sess_derive_key(&s, 0, cases[i].purpose, key);
        sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
        assert_string_equal(hex, cases[i].want_hex);
    }
    sess_secrets_free(&s);
}

/* 0.1's derivation, kept to open what it sealed:
 * printf 'fcgi-session store' | openssl dgst -sha256 -hmac 'first secret, at least
 * thirty-two bytes long' */
static void
test_legacy_derive_key_is_hmac_of_the_purpose(void **state)
{
    static const char want_hex[] =
        "ef14fa3936fcd82973fbb71e381f2f145e5813909f63ca0655a72909d3b1be30";
    struct sess_secrets s = {0};
    unsigned char key[32];
    char hex[65];

    (void)state;
    add_secret(&s, secret_a);
    sess__derive_key_legacy(&s, 0, "store", key);
    sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
    assert_string_equal(hex, want_hex);
    sess_secrets_free(&s);
}

static void
hmac_of(const struct sess_secrets *s, size_t i, const char *msg, unsigned char mac[32])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, s->item[i].ptr, s->item[i].len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
    crypto_auth_hmacsha256_final(&st, mac);
}

/* A derived key is no cookie signature: not the HMAC-SHA256 that
 * cookie-signature computes under any secret of the label or of the bare
 * purpose. The old derivation was exactly the first. */
static void
test_derived_keys_are_no_signature_of_any_label(void **state)
{
    static const char *const purposes[] = {"store", "csrf"};
    struct sess_secrets s = {0};
    unsigned char key[32], mac[32], sig_bin[32];
    char label[64], sig[128];
    size_t sig_len, bin_len;
    const char *dot;

    (void)state;
    add_secret(&s, secret_a);
    add_secret(&s, secret_b);
    for (size_t i = 0; i < s.count; i++) {
        for (size_t p = 0; p < sizeof purposes / sizeof purposes[0]; p++) {
            snprintf(label, sizeof label, "fcgi-session %s", purposes[p]);
            sess_derive_key(&s, i, purposes[p], key);
            hmac_of(&s, i, purposes[p], mac);
            assert_memory_not_equal(key, mac, sizeof mac);
            hmac_of(&s, i, label, mac);
            assert_memory_not_equal(key, mac, sizeof mac);
            sess__derive_key_legacy(&s, i, purposes[p], key);
            assert_memory_equal(key, mac, sizeof mac);
        }
    }
    /* What sess_sign (an Express app) makes of "fcgi-session store" under
     * the first secret, s:VALUE.SIG, is no key of ours either. */
    for (size_t p = 0; p < sizeof purposes / sizeof purposes[0]; p++) {
        snprintf(label, sizeof label, "fcgi-session %s", purposes[p]);
        assert_int_equal(sess_sign(&s, sess_str_c(label), sig, sizeof sig, &sig_len), SESS_OK);
        dot = strrchr(sig, '.');
        assert_non_null(dot);
        assert_int_equal(sodium_base642bin(sig_bin, sizeof sig_bin, dot + 1, strlen(dot + 1), NULL,
                                           &bin_len, NULL,
                                           sodium_base64_VARIANT_ORIGINAL_NO_PADDING),
                         0);
        assert_int_equal(bin_len, 32);
        sess_derive_key(&s, 0, purposes[p], key);
        assert_memory_not_equal(key, sig_bin, sizeof sig_bin);
        sess__derive_key_legacy(&s, 0, purposes[p], key);
        assert_memory_equal(key, sig_bin, sizeof sig_bin);
    }
    sess_secrets_free(&s);
}

static void
test_derive_key_differs_by_purpose_and_by_secret(void **state)
{
    struct sess_secrets s = {0};
    unsigned char store0[32], csrf0[32], store1[32];

    (void)state;
    add_secret(&s, secret_a);
    add_secret(&s, secret_b);
    sess_derive_key(&s, 0, "store", store0);
    sess_derive_key(&s, 0, "csrf", csrf0);
    sess_derive_key(&s, 1, "store", store1);
    assert_memory_not_equal(store0, csrf0, 32);
    assert_memory_not_equal(store0, store1, 32);
    sess_secrets_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_new_is_43_base64url_characters),
        cmocka_unit_test(test_id_new_never_repeats),
        cmocka_unit_test(test_id_new_decodes_to_32_random_bytes),
        cmocka_unit_test(test_new_id_round_trips_through_sign_and_unsign),
        cmocka_unit_test(test_id_is_valid_bounds_and_charset),
        cmocka_unit_test(test_secrets_add_copies_and_refuses_empty_or_too_many),
        cmocka_unit_test(test_secrets_load_reads_one_secret_per_line_in_order),
        cmocka_unit_test(test_secrets_load_strips_cr_and_skips_empty_lines),
        cmocka_unit_test(test_secrets_load_keeps_spaces_as_part_of_the_secret),
        cmocka_unit_test(test_secrets_load_names_the_line_of_a_short_secret),
        cmocka_unit_test(test_secrets_load_accepts_exactly_32_bytes_and_refuses_31),
        cmocka_unit_test(test_secrets_load_refuses_a_file_open_to_others),
        cmocka_unit_test(test_secrets_load_accepts_a_group_readable_file),
        cmocka_unit_test(test_secrets_load_refuses_an_empty_file),
        cmocka_unit_test(test_secrets_load_refuses_more_than_sixteen),
        cmocka_unit_test(test_secrets_load_refuses_a_missing_file_or_a_directory),
        cmocka_unit_test(test_derive_key_is_keyed_blake2b_of_the_purpose),
        cmocka_unit_test(test_legacy_derive_key_is_hmac_of_the_purpose),
        cmocka_unit_test(test_derived_keys_are_no_signature_of_any_label),
        cmocka_unit_test(test_derive_key_differs_by_purpose_and_by_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
