/* The cache of verified values (sess__unsign_cached, sign.c): it answers
 * as sess_unsign does, for every vector from Node (sign_vectors.h), and a
 * value it holds never lets a changed one through. */
#include "sign_test.h"
#include "sign_vectors.h"

static enum sess_err
unsign_cached_c(const struct sess_secrets *s, struct sess_verified *cache, const char *value,
                struct sess_str *id)
{
    return sess__unsign_cached(s, cache, sess_str_c(value), id);
}

static void
test_unsign_cached_answers_as_unsign_for_every_vector(void **state)
{
    static struct sess_verified cache;

    (void)state;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < N_VECTORS; i++) {
            struct sess_secrets s = {0};
            struct sess_str want = {0}, got = {0};
            add_secret(&s, vectors[i].secret);
            enum sess_err err = unsign_c(&s, vectors[i].signed_value, &want);
            assert_int_equal(unsign_cached_c(&s, &cache, vectors[i].signed_value, &got), err);
            if (err == SESS_OK) {
                assert_int_equal(got.len, want.len);
                assert_ptr_equal(got.ptr, want.ptr);
            }
            sess_secrets_free(&s);
        }
    }
}

/* A value verified once is answered from the cache: a second call succeeds
 * even under secrets that would refuse it (one cache belongs to one secret
 * set, an app's, loaded once). */
static void
test_unsign_cached_hits_for_a_value_verified_before(void **state)
{
    static struct sess_verified cache;
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0}, other = {0};
    struct sess_str id;

    (void)state;
    add_secret(&s, v->secret);
    add_secret(&other, secret_b);
    assert_int_equal(unsign_cached_c(&other, &cache, v->signed_value, &id), SESS_EBADINPUT);
    assert_int_equal(unsign_cached_c(&s, &cache, v->signed_value, &id), SESS_OK);
    assert_int_equal(unsign_cached_c(&other, &cache, v->signed_value, &id), SESS_OK);
    assert_int_equal(id.len, strlen(v->id));
    assert_memory_equal(id.ptr, v->id, id.len);
    sess_secrets_free(&s);
    sess_secrets_free(&other);
}

/* Beside a cached value, every one-character change of it is still
 * refused, and the cached value still verifies afterwards. */
static void
test_unsign_cached_refuses_every_change_of_a_cached_value(void **state)
{
    static struct sess_verified cache;
    const struct sig_vector *v = valid_vector();
    struct sess_secrets s = {0};
    char value[128];
    struct sess_str id;
    size_t len = strlen(v->signed_value);

    (void)state;
    add_secret(&s, v->secret);
    assert_int_equal(unsign_cached_c(&s, &cache, v->signed_value, &id), SESS_OK);
    for (size_t pos = 0; pos < len; pos++) {
        strcpy(value, v->signed_value);
        value[pos] = value[pos] == 'A' ? 'B' : 'A';
        assert_int_equal(unsign_cached_c(&s, &cache, value, &id), SESS_EBADINPUT);
    }
    strcpy(value, v->signed_value);
    value[len - 1] = '\0';
    assert_int_equal(unsign_cached_c(&s, &cache, value, &id), SESS_EBADINPUT);
    assert_int_equal(unsign_cached_c(&s, &cache, v->signed_value, &id), SESS_OK);
    sess_secrets_free(&s);
}

/* Values too long for a slot are verified every time, and still are. */
static void
test_unsign_cached_verifies_long_values_each_time(void **state)
{
    static struct sess_verified cache;
    const char *id_text =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    struct sess_secrets s = {0}, other = {0};
    char value[256];
    struct sess_str id;

    (void)state;
    add_secret(&s, secret_a);
    add_secret(&other, secret_b);
    sign_id(&s, id_text, value, sizeof(value));
    assert_true(strlen(value) > SESS_VERIFIED_MAX);
    assert_int_equal(unsign_cached_c(&s, &cache, value, &id), SESS_OK);
    assert_int_equal(id.len, strlen(id_text));
    assert_int_equal(unsign_cached_c(&other, &cache, value, &id), SESS_EBADINPUT);
    sess_secrets_free(&s);
    sess_secrets_free(&other);
}

/* 256 clients taking turns, as the benchmark's sessions do: the second
 * turn finds (nearly) every one in the cache, which answers even under
 * secrets that would refuse them. Direct-mapped on two characters, two in
 * three missed. The ids are fixed, so the count is too. */
static void
test_unsign_cached_keeps_many_clients_taking_turns(void **state)
{
    static struct sess_verified cache;
    static char values[256][128];
    struct sess_secrets s = {0}, other = {0};
    struct sess_str id;
    size_t hits = 0;

    (void)state;
    add_secret(&s, secret_a);
    add_secret(&other, secret_b);
    for (size_t i = 0; i < 256; i++) {
        char id_text[44];
        snprintf(id_text, sizeof id_text, "client%037zu", i);
        sign_id(&s, id_text, values[i], sizeof values[i]);
        assert_true(strlen(values[i]) <= SESS_VERIFIED_MAX);
        assert_int_equal(unsign_cached_c(&s, &cache, values[i], &id), SESS_OK);
    }
    for (size_t i = 0; i < 256; i++)
        hits += unsign_cached_c(&other, &cache, values[i], &id) == SESS_OK;
    assert_true(hits >= 250);
    sess_secrets_free(&s);
    sess_secrets_free(&other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsign_cached_answers_as_unsign_for_every_vector),
        cmocka_unit_test(test_unsign_cached_hits_for_a_value_verified_before),
        cmocka_unit_test(test_unsign_cached_refuses_every_change_of_a_cached_value),
        cmocka_unit_test(test_unsign_cached_verifies_long_values_each_time),
        cmocka_unit_test(test_unsign_cached_keeps_many_clients_taking_turns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
