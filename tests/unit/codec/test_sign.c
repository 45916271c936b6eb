/* Signing (sign.c) against cookie-signature 1.0.7, the version
 * express-session 1.19 bundles: every expected signature comes from Node,
 * not from our code (sign_vectors.h). Rotation of secrets, and every
 * forgery refused. Ids and secrets are test_sign_secrets.c's, the cache
 * of verified values test_sign_cached.c's. */
#include <sodium.h>

#include "sign_test.h"
#include "sign_vectors.h"

/* --- signing vectors --- */

static void
test_sign_matches_cookie_signature(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_VECTORS; i++) {
        struct sess_secrets s = {0};
        char out[256];
        add_secret(&s, vectors[i].secret);
        sign_id(&s, vectors[i].id, out, sizeof(out));
        assert_string_equal(out, vectors[i].signed_value);
        sess_secrets_free(&s);
    }
}

static void
test_signed_value_encodes_like_express_cookie(void **state)
{
    struct sess_cookie_attrs attrs = {.same_site = SESS_SAME_SITE_OFF};

    (void)state;
    for (size_t i = 0; i < N_VECTORS; i++) {
        char out[512];
        size_t len = 0;
        assert_int_equal(sess_cookie_build(out, sizeof(out), &len, SESS_STR_LIT("sid"),
                                           sess_str_c(vectors[i].signed_value), &attrs, 0),
                         SESS_OK);
        assert_memory_equal(out, "sid=", 4);
        assert_string_equal(out + 4, vectors[i].cookie_value);
    }
}

static void
test_unsign_accepts_every_express_signature_of_a_valid_id(void **state)
{
    size_t accepted = 0;

    (void)state;
    for (size_t i = 0; i < N_VECTORS; i++) {
        struct sess_secrets s = {0};
        struct sess_str id = {0};
        add_secret(&s, vectors[i].secret);
        enum sess_err err = unsign_c(&s, vectors[i].signed_value, &id);
        if (sess_id_is_valid(sess_str_c(vectors[i].id))) {
            assert_int_equal(err, SESS_OK);
            assert_int_equal(id.len, strlen(vectors[i].id));
            assert_memory_equal(id.ptr, vectors[i].id, id.len);
            accepted++;
        } else {
            /* "abc", "has.a.dot" and "": signed, but never an id of ours. */
            assert_int_equal(err, SESS_EBADINPUT);
        }
        sess_secrets_free(&s);
    }
    assert_true(accepted >= N_VECTORS / 2);
}

static void
test_unsign_refuses_signature_under_another_secret(void **state)
{
    struct sess_secrets s = {0};
    struct sess_str id;

    (void)state;
    add_secret(&s, "keyboard cat");
    /* Signed with "secret" in the table. */
    for (size_t i = 0; i < N_VECTORS; i++)
        if (strcmp(vectors[i].secret, "secret") == 0)
            assert_int_equal(unsign_c(&s, vectors[i].signed_value, &id), SESS_EBADINPUT);
    sess_secrets_free(&s);
}

/* --- rotation --- */

static void
test_sign_uses_the_first_secret(void **state)
{
    struct sess_secrets first = {0}, both = {0};
    char a[128], b[128];

    (void)state;
    add_secret(&first, secret_a);
    add_secret(&both, secret_a);
    add_secret(&both, secret_b);
    sign_id(&first, "nc93lGy3AL5AfydR9DG4phvdX6VSIcfB", a, sizeof(a));
    sign_id(&both, "nc93lGy3AL5AfydR9DG4phvdX6VSIcfB", b, sizeof(b));
    assert_string_equal(a, b);
    sess_secrets_free(&first);
    sess_secrets_free(&both);
}

static void
test_unsign_accepts_an_old_secret_after_rotation(void **state)
{
    struct sess_secrets old = {0}, rotated = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&old, secret_a);
    sign_id(&old, "Yv3nRk0_2bq-LwX8sT6fJ9mHc1dQ4pZ7aE5gU0oNiK2", value, sizeof(value));
    add_secret(&rotated, secret_b);
    add_secret(&rotated, "a third secret that has nothing to do with it");
    add_secret(&rotated, secret_a);
    assert_int_equal(unsign_c(&rotated, value, &id), SESS_OK);
    assert_int_equal(id.len, 43);
    sess_secrets_free(&old);
    sess_secrets_free(&rotated);
}

static void
test_unsign_accepts_the_first_of_several_secrets(void **state)
{
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&s, secret_a);
    add_secret(&s, secret_b);
    add_secret(&s, "a third secret that has nothing to do with it");
    sign_id(&s, "Yv3nRk0_2bq-LwX8sT6fJ9mHc1dQ4pZ7aE5gU0oNiK2", value, sizeof(value));
    assert_int_equal(unsign_c(&s, value, &id), SESS_OK);
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_a_secret_dropped_from_rotation(void **state)
{
    struct sess_secrets old = {0}, rotated = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&old, secret_a);
    sign_id(&old, "Yv3nRk0_2bq-LwX8sT6fJ9mHc1dQ4pZ7aE5gU0oNiK2", value, sizeof(value));
    add_secret(&rotated, secret_b);
    assert_int_equal(unsign_c(&rotated, value, &id), SESS_EBADINPUT);
    sess_secrets_free(&old);
    sess_secrets_free(&rotated);
}

static void
test_unsign_refuses_without_secrets(void **state)
{
    struct sess_secrets none = {0};
    struct sess_str id;

    (void)state;
    assert_int_equal(unsign_c(&none, vectors[1].signed_value, &id), SESS_EBADINPUT);
}

static void
test_sign_refuses_without_secrets(void **state)
{
    struct sess_secrets none = {0};
    char out[128];
    size_t len;

    (void)state;
    assert_int_equal(sess_sign(&none, SESS_STR_LIT("0123456789abcdef"), out, sizeof(out), &len),
                     SESS_ECONFIG);
}

/* --- forgeries --- */

static void
test_unsign_refuses_every_single_character_change_in_the_signature(void **state)
{
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&s, v->secret);
    size_t len = strlen(v->signed_value);
    for (size_t pos = len - SESS_SIG_LEN; pos < len; pos++) {
        strcpy(value, v->signed_value);
        value[pos] = value[pos] == 'A' ? 'B' : 'A';
        assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    }
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_a_changed_id(void **state)
{
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&s, v->secret);
    for (size_t pos = 2; pos < 2 + strlen(v->id); pos++) {
        strcpy(value, v->signed_value);
        value[pos] = value[pos] == 'x' ? 'y' : 'x';
        assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    }
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_text_after_the_signature(void **state)
{
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    char value[160];
    struct sess_str id;
    static const char *const tails[] = {"=", "x", " ", ".", ".x", "\n", "==", "A"};

    (void)state;
    add_secret(&s, v->secret);
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        snprintf(value, sizeof(value), "%s%s", v->signed_value, tails[i]);
        assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    }
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_a_truncated_signature(void **state)
{
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&s, v->secret);
    strcpy(value, v->signed_value);
    for (size_t len = strlen(value); len > 0; len--) {
        value[len - 1] = '\0';
        assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    }
    sess_secrets_free(&s);
}

/* The last of 43 base64 characters carries 4 bits of the MAC and 2 unused
 * ones, so the characters at alphabet positions 4k..4k+3 all decode to the
 * same MAC in a lenient decoder. cookie-signature compares text and refuses
 * all but the canonical one ("...ONig4" vs "...ONig5"); so must we. */
static void
test_unsign_refuses_a_non_canonical_last_character(void **state)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&s, v->secret);
    strcpy(value, v->signed_value);
    char *last = value + strlen(value) - 1;
    size_t idx = (size_t)(strchr(alphabet, *last) - alphabet);
    assert_int_equal(idx % 4, 0);
    for (size_t k = 1; k < 4; k++) {
        *last = alphabet[idx + k];
        assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    }
    *last = alphabet[idx];
    assert_int_equal(unsign_c(&s, value, &id), SESS_OK);
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_the_base64url_alphabet(void **state)
{
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;
    bool changed = false;

    (void)state;
    for (size_t i = 0; i < N_VECTORS && !changed; i++) {
        const char *sig = strrchr(vectors[i].signed_value, '.') + 1;
        if (strlen(vectors[i].id) != 43 || strpbrk(sig, "+/") == NULL)
            continue;
        add_secret(&s, vectors[i].secret);
        strcpy(value, vectors[i].signed_value);
        for (char *p = strrchr(value, '.') + 1; *p != '\0'; p++)
            *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
        assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
        changed = true;
    }
    assert_true(changed);
    sess_secrets_free(&s);
}

static void
test_unsign_requires_the_s_colon_prefix(void **state)
{
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;

    (void)state;
    add_secret(&s, v->secret);
    assert_int_equal(unsign_c(&s, v->signed_value + 2, &id), SESS_EBADINPUT);
    snprintf(value, sizeof(value), "S:%s", v->signed_value + 2);
    assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    snprintf(value, sizeof(value), " s:%s", v->signed_value + 2);
    assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    snprintf(value, sizeof(value), "s%%3A%s", v->signed_value + 2);
    assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_an_empty_id_even_when_signed(void **state)
{
    struct sess_secrets s = {0};
    struct sess_str id;
    bool seen = false;

    (void)state;
    for (size_t i = 0; i < N_VECTORS; i++) {
        if (vectors[i].id[0] != '\0')
            continue;
        add_secret(&s, vectors[i].secret);
        assert_int_equal(unsign_c(&s, vectors[i].signed_value, &id), SESS_EBADINPUT);
        sess_secrets_free(&s);
        seen = true;
    }
    assert_true(seen);
}

static void
test_unsign_refuses_an_id_with_a_dot_even_when_signed(void **state)
{
    struct sess_secrets s = {0};
    struct sess_str id;
    char value[160];

    (void)state;
    add_secret(&s, secret_a);
    /* "a.b" ids: the signature covers everything before the last '.'. */
    sign_id(&s, "0123456789abcdef.0123456789abcdef", value, sizeof(value));
    assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_ids_of_the_wrong_length_even_when_signed(void **state)
{
    struct sess_secrets s = {0};
    struct sess_str id;
    char raw[SESS_ID_MAX_LEN + 2];
    char value[SESS_ID_MAX_LEN + 64];

    (void)state;
    add_secret(&s, secret_a);
    for (size_t len = 0; len <= SESS_ID_MAX_LEN + 1; len++) {
        memset(raw, 'k', len);
        raw[len] = '\0';
        sign_id(&s, raw, value, sizeof(value));
        enum sess_err want =
            len >= SESS_ID_MIN_LEN && len <= SESS_ID_MAX_LEN ? SESS_OK : SESS_EBADINPUT;
        assert_int_equal(unsign_c(&s, value, &id), want);
    }
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_ids_outside_the_charset_even_when_signed(void **state)
{
    static const char *const bad[] = {
        "0123456789abcde+",  "0123456789abcde/", "0123456789abcde=",       "0123456789abcde ",
        "0123456789abcde%",  "0123456789abcde:", "0123456789abcd\303\251", "0123456789abcde\001",
        "0123456789abcde\"", "0123456789abcde;",
    };
    struct sess_secrets s = {0};
    struct sess_str id;
    char value[128];

    (void)state;
    add_secret(&s, secret_a);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sign_id(&s, bad[i], value, sizeof(value));
        assert_int_equal(unsign_c(&s, value, &id), SESS_EBADINPUT);
    }
    sess_secrets_free(&s);
}

static void
test_unsign_refuses_shapes_without_a_signature(void **state)
{
    static const char *const bad[] = {"",
                                      "s",
                                      "s:",
                                      "s:.",
                                      "s:..",
                                      "s:abc",
                                      ".",
                                      ":",
                                      "s:0123456789abcdef",
                                      "s:0123456789abcdef."};
    struct sess_secrets s = {0};
    struct sess_str id;

    (void)state;
    add_secret(&s, secret_a);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(unsign_c(&s, bad[i], &id), SESS_EBADINPUT);
    sess_secrets_free(&s);
}

static void
test_unsign_id_borrows_from_the_value(void **state)
{
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    struct sess_str value = sess_str_c(v->signed_value);
    struct sess_str id = {0};

    (void)state;
    add_secret(&s, v->secret);
    assert_int_equal(sess_unsign(&s, value, &id), SESS_OK);
    assert_ptr_equal(id.ptr, value.ptr + 2);
    assert_int_equal(id.len, value.len - 2 - 1 - SESS_SIG_LEN);
    sess_secrets_free(&s);
}

static void
test_unsign_reads_only_the_given_length(void **state)
{
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    size_t len = strlen(v->signed_value);
    char *exact = malloc(len); /* no NUL: ASan catches any read past it */
    struct sess_str id;

    (void)state;
    assert_non_null(exact);
    memcpy(exact, v->signed_value, len);
    add_secret(&s, v->secret);
    assert_int_equal(sess_unsign(&s, (struct sess_str){exact, len}, &id), SESS_OK);
    assert_int_equal(sess_unsign(&s, (struct sess_str){exact, len - 1}, &id), SESS_EBADINPUT);
    free(exact);
    sess_secrets_free(&s);
}

static void
test_sign_refuses_a_buffer_one_byte_short(void **state)
{
    struct sess_secrets s = {0};
    const char *id = "nc93lGy3AL5AfydR9DG4phvdX6VSIcfB";
    size_t need = strlen(id) + SESS_SIG_LEN + 4;
    char out[128];
    size_t len = 0;

    (void)state;
    add_secret(&s, secret_a);
    assert_int_equal(sess_sign(&s, sess_str_c(id), out, need - 1, &len), SESS_ETOOBIG);
    assert_int_equal(sess_sign(&s, sess_str_c(id), out, need, &len), SESS_OK);
    assert_int_equal(len, need - 1);
    assert_int_equal(out[len], '\0');
    sess_secrets_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_matches_cookie_signature),
        cmocka_unit_test(test_signed_value_encodes_like_express_cookie),
        cmocka_unit_test(test_unsign_accepts_every_express_signature_of_a_valid_id),
        cmocka_unit_test(test_unsign_refuses_signature_under_another_secret),
        cmocka_unit_test(test_sign_uses_the_first_secret),
        cmocka_unit_test(test_unsign_accepts_an_old_secret_after_rotation),
        cmocka_unit_test(test_unsign_accepts_the_first_of_several_secrets),
        cmocka_unit_test(test_unsign_refuses_a_secret_dropped_from_rotation),
        cmocka_unit_test(test_unsign_refuses_without_secrets),
        cmocka_unit_test(test_sign_refuses_without_secrets),
        cmocka_unit_test(test_unsign_refuses_every_single_character_change_in_the_signature),
        cmocka_unit_test(test_unsign_refuses_a_changed_id),
        cmocka_unit_test(test_unsign_refuses_text_after_the_signature),
        cmocka_unit_test(test_unsign_refuses_a_truncated_signature),
        cmocka_unit_test(test_unsign_refuses_a_non_canonical_last_character),
        cmocka_unit_test(test_unsign_refuses_the_base64url_alphabet),
        cmocka_unit_test(test_unsign_requires_the_s_colon_prefix),
        cmocka_unit_test(test_unsign_refuses_an_empty_id_even_when_signed),
        cmocka_unit_test(test_unsign_refuses_an_id_with_a_dot_even_when_signed),
        cmocka_unit_test(test_unsign_refuses_ids_of_the_wrong_length_even_when_signed),
        cmocka_unit_test(test_unsign_refuses_ids_outside_the_charset_even_when_signed),
        cmocka_unit_test(test_unsign_refuses_shapes_without_a_signature),
        cmocka_unit_test(test_unsign_id_borrows_from_the_value),
        cmocka_unit_test(test_unsign_reads_only_the_given_length),
        cmocka_unit_test(test_sign_refuses_a_buffer_one_byte_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
