/* Fuzzes signature checking (sess_unsign): whatever it accepts is an id of
 * ours, lying inside the input, that one of the secrets really signed; and a
 * signed id always verifies. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sess_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const secret_texts[] = {
    "the current secret, thirty-two bytes or more",
    "an older secret still accepted for rotation",
};

/* Per secret and all together; built once per process. */
static struct sess_secrets singles[2], both;

static void
init_secrets(void)
{
    static bool is_ready;

    if (is_ready)
        return;
    for (size_t i = 0; i < 2; i++) {
        assert(sess_secrets_add(&singles[i], sess_str_c(secret_texts[i])) == SESS_OK);
        assert(sess_secrets_add(&both, sess_str_c(secret_texts[i])) == SESS_OK);
    }
    is_ready = true;
}

static void
check_accepted(struct sess_str value, struct sess_str id)
{
    char again[SESS_ID_MAX_LEN + SESS_SIG_LEN + 4];
    size_t len = 0;
    bool is_signed = false;

    assert(id.ptr >= value.ptr && id.ptr + id.len <= value.ptr + value.len);
    assert(sess_id_is_valid(id));
    for (size_t i = 0; i < 2; i++) {
        assert(sess_sign(&singles[i], id, again, sizeof(again), &len) == SESS_OK);
        is_signed |= len == value.len && memcmp(again, value.ptr, len) == 0;
    }
    assert(is_signed);
}

/* Maps fuzz bytes to an id of the accepted alphabet and signs it. */
static void
check_round_trip(const uint8_t *data, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char raw[SESS_ID_MAX_LEN];
    char value[SESS_ID_MAX_LEN + SESS_SIG_LEN + 4];
    size_t n = size < SESS_ID_MAX_LEN ? size : SESS_ID_MAX_LEN;
    size_t len = 0;
    struct sess_str id;

    if (n < SESS_ID_MIN_LEN)
        return;
    for (size_t i = 0; i < n; i++)
        raw[i] = alphabet[data[i] & 63];
    assert(sess_sign(&singles[data[0] & 1], (struct sess_str){raw, n}, value, sizeof(value),
                     &len) == SESS_OK);
    assert(sess_unsign(&both, (struct sess_str){value, len}, &id) == SESS_OK);
    assert(id.len == n && memcmp(id.ptr, raw, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sess_str value = {(const char *)data, size};
    struct sess_str id = {0};

    init_secrets();
    enum sess_err err = sess_unsign(&both, value, &id);
    assert(err == SESS_OK || err == SESS_EBADINPUT);
    if (err == SESS_OK)
        check_accepted(value, id);
    check_round_trip(data, size);
    return 0;
}
