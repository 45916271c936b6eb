/* Session ids and their signatures: cookie-signature 1.0.7 byte for byte, so
 * a cookie signed by an Express app with the same secret verifies here and
 * the other way round. Secrets live in sodium_malloc'd memory and are wiped
 * on free. Finding the cookie is cookie.c's job. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "codec.h"
#include "seal.h"

/* A secret file is a few lines; anything larger is the wrong file. */
#define SECRET_FILE_MAX_BYTES 65536

/* The 0.1 key derivation (sess__derive_key_legacy), kept to read its stores. */
#define KEY_PURPOSE_PREFIX "fcgi-session "

enum sess_err
sess_secrets_add(struct sess_secrets *secrets, struct sess_str secret)
{
    crypto_auth_hmacsha256_state *keyed;
    unsigned char *copy;

    if (secret.len == 0)
        return SESS_EBADINPUT;
    if (secrets->count >= SESS_SECRETS_MAX)
        return SESS_ETOOBIG;
    /* sodium_malloc() needs the page size that sodium_init() records; the
     * call is cheap after the first. */
    if (sodium_init() < 0)
        return SESS_ENOMEM;
    copy = sodium_malloc(secret.len);
    keyed = sodium_malloc(sizeof *keyed);
    if (copy == NULL || keyed == NULL) {
        sodium_free(copy);
        sodium_free(keyed);
        return SESS_ENOMEM;
    }
    memcpy(copy, secret.ptr, secret.len);
    /* Keying HMAC hashes the key's pads: done once here, every signature
     * then starts from a copy (half the SHA-256 work per cookie). */
    crypto_auth_hmacsha256_init(keyed, copy, secret.len);
    secrets->item[secrets->count].ptr = copy;
    secrets->item[secrets->count].len = secret.len;
    secrets->item[secrets->count].keyed = keyed;
    secrets->count++;
    return SESS_OK;
}

void
sess_secrets_free(struct sess_secrets *secrets)
{
    if (secrets == NULL)
        return;
    /* sodium_free() wipes each copy before it unmaps it. */
    for (size_t i = 0; i < secrets->count && i < SESS_SECRETS_MAX; i++) {
        sodium_free(secrets->item[i].ptr);
        sodium_free(secrets->item[i].keyed);
    }
    sodium_memzero(secrets, sizeof(*secrets));
}

/* Reads the whole of `fd` into a sodium_malloc'd buffer, so the secrets never
 * sit in ordinary heap memory that is freed without wiping. */
static enum sess_err
read_secret_file(int fd, const char *path, size_t size, unsigned char **buf, char *errmsg,
                 size_t errmsg_len)
{
    size_t got = 0;

    *buf = sodium_malloc(size + 1);
    if (*buf == NULL)
        return SESS_ENOMEM;
    while (got < size) {
        ssize_t n = read(fd, *buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sess__fmt(errmsg, errmsg_len, "%s: cannot read: %s", path, strerror(errno));
            return SESS_ECONFIG;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got != size) {
        sess__fmt(errmsg, errmsg_len, "%s: the file changed while it was read; try again", path);
        return SESS_ECONFIG;
    }
    return SESS_OK;
}

enum sess_err
sess_secrets_load(struct sess_secrets *secrets, const char *path, char *errmsg, size_t errmsg_len)
{
    enum sess_err err;
    unsigned char *buf = NULL;
    size_t size = 0;
    struct stat st;
    unsigned line_no = 0;
    int fd;

    memset(secrets, 0, sizeof(*secrets));
    if (sodium_init() < 0) {
        sess__fmt(errmsg, errmsg_len, "%s: libsodium failed to initialise", path);
        return SESS_ENOMEM;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sess__fmt(errmsg, errmsg_len, "%s: cannot open the secret file: %s", path, strerror(errno));
        err = SESS_ECONFIG;
        goto out;
    }
    /* fstat on the open descriptor: the mode checked is that of the file
     * read, not of whatever the path names a moment later. */
    if (fstat(fd, &st) != 0) {
        sess__fmt(errmsg, errmsg_len, "%s: cannot stat: %s", path, strerror(errno));
        err = SESS_ECONFIG;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        sess__fmt(errmsg, errmsg_len, "%s: not a regular file", path);
        err = SESS_ECONFIG;
        goto out;
    }
    if ((st.st_mode & 007) != 0) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: the secret file is open to other users (mode %04o); fix with: "
                  "chmod o-rwx %s",
                  path, (unsigned)(st.st_mode & 07777), path);
        err = SESS_ECONFIG;
        goto out;
    }
    if (st.st_size > SECRET_FILE_MAX_BYTES) {
        sess__fmt(errmsg, errmsg_len, "%s: %lld bytes is too large for a secret file (at most %d)",
                  path, (long long)st.st_size, SECRET_FILE_MAX_BYTES);
        err = SESS_ECONFIG;
        goto out;
    }
    size = (size_t)st.st_size;
    err = read_secret_file(fd, path, size, &buf, errmsg, errmsg_len);
    if (err != SESS_OK)
        goto out;

    for (size_t pos = 0; pos < size;) {
        unsigned char *nl = memchr(buf + pos, '\n', size - pos);
        size_t end = nl != NULL ? (size_t)(nl - buf) : size;
        size_t len = end - pos;

        line_no++;
        if (len > 0 && buf[pos + len - 1] == '\r')
            len--;
        if (len > 0 && len < SESS_SECRET_MIN_LEN) {
            sess__fmt(errmsg, errmsg_len,
                      "%s:%u: secret is %zu bytes; each line needs at least %d (make one with: "
                      "head -c 32 /dev/urandom | base64)",
                      path, line_no, len, SESS_SECRET_MIN_LEN);
            err = SESS_ECONFIG;
            goto out;
        }
        if (len > 0 && secrets->count == SESS_SECRETS_MAX) {
            sess__fmt(errmsg, errmsg_len,
                      "%s:%u: more than %d secrets; remove the oldest (the last lines)", path,
                      line_no, SESS_SECRETS_MAX);
            err = SESS_ECONFIG;
            goto out;
        }
        if (len > 0) {
            err = sess_secrets_add(secrets, (struct sess_str){(const char *)buf + pos, len});
            if (err != SESS_OK) {
                sess__fmt(errmsg, errmsg_len, "%s:%u: %s", path, line_no, sess_strerror(err));
                goto out;
            }
        }
        pos = end + 1;
    }
    if (secrets->count == 0) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: no secret in the file; put one of at least %d bytes per line (make one "
                  "with: head -c 32 /dev/urandom | base64)",
                  path, SESS_SECRET_MIN_LEN);
        err = SESS_ECONFIG;
        goto out;
    }
    err = SESS_OK;
out:
    if (err != SESS_OK)
        sess_secrets_free(secrets);
    sodium_free(buf);
    if (fd >= 0)
        close(fd);
    return err;
}

void
sess_id_new(char out[SESS_ID_LEN + 1])
{
    unsigned char raw[SESS_ID_BYTES];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, SESS_ID_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

bool
sess_id_is_valid(struct sess_str id)
{
    if (id.len < SESS_ID_MIN_LEN || id.len > SESS_ID_MAX_LEN)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.ptr[i];
        bool is_alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!is_alnum && c != '-' && c != '_')
            return false;
    }
    return true;
}

/* The signature text of `msg` under one secret: standard base64 of the
 * HMAC-SHA256, '=' stripped. cookie-signature strips the padding; so must we,
 * or cookies signed by an Express app with the same secret never verify.
 * `keyed` is the secret's state from crypto_auth_hmacsha256_init, which
 * takes a key of any length as Node's createHmac does
 * (crypto_auth_hmacsha256() would insist on 32 bytes). */
static void
signature_text(const void *keyed, struct sess_str msg, char sig[SESS_SIG_LEN + 1])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    memcpy(&st, keyed, sizeof st);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg.ptr, msg.len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(sig, SESS_SIG_LEN + 1, mac, sizeof(mac),
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(mac, sizeof(mac));
}

enum sess_err
sess_sign(const struct sess_secrets *secrets, struct sess_str id, char *out, size_t out_cap,
          size_t *out_len)
{
    char sig[SESS_SIG_LEN + 1];
    size_t need;

    if (secrets->count == 0)
        return SESS_ECONFIG;
    if (id.len > SIZE_MAX - (SESS_SIG_LEN + 4))
        return SESS_ETOOBIG;
    need = id.len + SESS_SIG_LEN + 3;
    if (out_cap < need + 1)
        return SESS_ETOOBIG;
    signature_text(secrets->item[0].keyed, id, sig);
    memcpy(out, "s:", 2);
    if (id.len > 0)
        memcpy(out + 2, id.ptr, id.len);
    out[2 + id.len] = '.';
    memcpy(out + 3 + id.len, sig, SESS_SIG_LEN + 1);
    *out_len = need;
    return SESS_OK;
}

enum sess_err
sess_unsign(const struct sess_secrets *secrets, struct sess_str value, struct sess_str *id)
{
    struct sess_str rest, candidate, sig;
    const char *dot;
    char expected[SESS_SIG_LEN + 1];
    int matches = 0;

    if (value.len < 2 || memcmp(value.ptr, "s:", 2) != 0)
        return SESS_EBADINPUT;
    rest = (struct sess_str){value.ptr + 2, value.len - 2};
    dot = rest.len > 0 ? memrchr(rest.ptr, '.', rest.len) : NULL;
    if (dot == NULL)
        return SESS_EBADINPUT;
    candidate = (struct sess_str){rest.ptr, (size_t)(dot - rest.ptr)};
    sig = (struct sess_str){dot + 1, rest.len - candidate.len - 1};
    /* Both checks look only at what the client sent, so failing early here
     * tells it nothing, and garbage costs no HMAC. An id that would fail the
     * charset check can still carry a valid signature (cookie-signature signs
     * anything), but ids outside it are never ours nor Express's. */
    if (sig.len != SESS_SIG_LEN || !sess_id_is_valid(candidate))
        return SESS_EBADINPUT;
    /* Every secret is tried, without stopping at a match, so the time taken
     * says nothing about which secret signed. Comparing the encoded
     * characters rather than decoded bytes refuses a non-canonical last
     * base64 character, as cookie-signature's string compare does. */
    for (size_t i = 0; i < secrets->count; i++) {
        signature_text(secrets->item[i].keyed, candidate, expected);
        matches |= sodium_memcmp(expected, sig.ptr, SESS_SIG_LEN) == 0;
    }
    sodium_memzero(expected, sizeof(expected));
    if (!matches)
        return SESS_EBADINPUT;
    *id = candidate;
    return SESS_OK;
}

/* The set of a signed value: its signature is HMAC output, so its first
 * characters spread values evenly; a client choosing them can only evict.
 * Four base64 characters (24 bits) hashed, not two bytes shifted: of the
 * old (c0 << 8 | c1) % 256 only c1 was left, 64 slots of 256. */
static size_t
verified_set(struct sess_str value)
{
    const unsigned char *sig = (const unsigned char *)value.ptr + value.len - SESS_SIG_LEN;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < 4; i++) {
        h ^= sig[i];
        h *= 16777619u;
    }
    return (h ^ h >> 16) % SESS_VERIFIED_SETS;
}

enum sess_err
sess__unsign_cached(const struct sess_secrets *secrets, struct sess_verified *cache,
                    struct sess_str value, struct sess_str *id)
{
    size_t set, way;
    enum sess_err err;

    if (value.len < SESS_SIG_LEN + 3 || value.len > SESS_VERIFIED_MAX)
        return sess_unsign(secrets, value, id);
    set = verified_set(value);
    for (way = 0; way < SESS_VERIFIED_WAYS; way++) {
        if (cache->len[set][way] == value.len &&
            sodium_memcmp(cache->value[set][way], value.ptr, value.len) == 0) {
            /* It verified before: "s:" ID "." SIG. */
            *id = (struct sess_str){value.ptr + 2, value.len - SESS_SIG_LEN - 3};
            return SESS_OK;
        }
    }
    err = sess_unsign(secrets, value, id);
    if (err == SESS_OK) {
        way = cache->victim[set] % SESS_VERIFIED_WAYS;
        cache->victim[set] = (unsigned char)((way + 1) % SESS_VERIFIED_WAYS);
        memcpy(cache->value[set][way], value.ptr, value.len);
        cache->len[set][way] = (unsigned char)value.len;
    }
    return err;
}

/* Keys for sealing and CSRF tokens. Not an HMAC-SHA256 of any string under
 * the secret, which is what cookie-signature computes: the old derivation,
 * HMAC-SHA256(secret, "fcgi-session " purpose), is exactly the signature of
 * a cookie holding "fcgi-session store", so whoever got a signature of that
 * value (an Express app signing what it is given) had the key. BLAKE2b with
 * personalisations of our own cannot collide with a signature. The secret
 * is hashed first because it may be longer than a BLAKE2b key (64 bytes). */
#define KDF_PERSONAL_SECRET "fcgi-sess secret"
#define KDF_PERSONAL_KEY    "fcgi-sess kdf v2"

_Static_assert(sizeof KDF_PERSONAL_SECRET - 1 == crypto_generichash_blake2b_PERSONALBYTES &&
                   sizeof KDF_PERSONAL_KEY - 1 == crypto_generichash_blake2b_PERSONALBYTES,
               "BLAKE2b personalisations are 16 bytes");

void
sess_derive_key(const struct sess_secrets *secrets, size_t index, const char *purpose,
                unsigned char key[32])
{
    unsigned char master[32];

    assert(index < secrets->count);
    crypto_generichash_blake2b_salt_personal(master, sizeof master, secrets->item[index].ptr,
                                             secrets->item[index].len, NULL, 0, NULL,
                                             (const unsigned char *)KDF_PERSONAL_SECRET);
    crypto_generichash_blake2b_salt_personal(key, 32, (const unsigned char *)purpose,
                                             strlen(purpose), master, sizeof master, NULL,
                                             (const unsigned char *)KDF_PERSONAL_KEY);
    sodium_memzero(master, sizeof master);
}

void
sess__derive_key_legacy(const struct sess_secrets *secrets, size_t index, const char *purpose,
                        unsigned char key[32])
{
    crypto_auth_hmacsha256_state st;

    assert(index < secrets->count);
    crypto_auth_hmacsha256_init(&st, secrets->item[index].ptr, secrets->item[index].len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)KEY_PURPOSE_PREFIX,
                                  sizeof(KEY_PURPOSE_PREFIX) - 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)purpose, strlen(purpose));
    crypto_auth_hmacsha256_final(&st, key);
    sodium_memzero(&st, sizeof(st));
}
