/* What the unit tests of sign.c share: two secrets of the required length,
 * and signing and verifying with the assertions each call needs. The
 * vectors from Node are sign_vectors.h. */
#ifndef TESTS_SIGN_TEST_H
#define TESTS_SIGN_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static const char secret_a[] = "first secret, at least thirty-two bytes long";
static const char secret_b[] = "second secret, also thirty-two bytes or more";

static inline void
add_secret(struct sess_secrets *s, const char *secret)
{
    assert_int_equal(sess_secrets_add(s, sess_str_c(secret)), SESS_OK);
}

static inline void
sign_id(const struct sess_secrets *s, const char *id, char *out, size_t cap)
{
    size_t len = 0;

    assert_int_equal(sess_sign(s, sess_str_c(id), out, cap, &len), SESS_OK);
    assert_int_equal(len, strlen(out));
}

static inline enum sess_err
unsign_c(const struct sess_secrets *s, const char *value, struct sess_str *id)
{
    return sess_unsign(s, sess_str_c(value), id);
}

#endif
