/* The LMDB store's record (lib/store/lmdb/records.c), as seen in the
 * database file: sealed data never in plaintext, a value that does not
 * open under its id, secret or header (moved, corrupt, retired secret,
 * unsealed, any sealed field edited, an old payload replayed) is not
 * found; format 2's per-session fields and generations; format 1 (0.1)
 * still read and rewritten; extensions skipped unless critical. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "lmdb_fixture.h"

/* ------------------------------------------------------------------------
 * Sealing, as seen in the file
 * ------------------------------------------------------------------------ */

#define MARKER "marker-7f3a9c-plaintext"

static bool
file_contains(const char *dir, const char *needle)
{
    char path[PATH_MAX];
    FILE *fp;
    char *data;
    long size;
    bool found;

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    size = ftell(fp);
    assert_true(size > 0);
    rewind(fp);
    data = malloc((size_t)size);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    found = memmem(data, (size_t)size, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

static void
test_sealed_data_never_reaches_the_file_in_plaintext(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"note\":\"" MARKER "2\"}", NULL, T0 + 60 * MIN_MS);

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"note\":\"" MARKER "\"}");
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess__patch_free(&p);
    close_store(f);
    assert_false(file_contains(f->store_dir, MARKER));
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"note\":\"" MARKER "2\"}");
}

/* The control for the test above: without encryption the marker is there,
 * so the search would find it. */
static void
test_unsealed_store_keeps_plain_json(void **ctx)
{
    struct fx *f = *ctx;

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"note\":\"" MARKER "\"}");
    close_store(f);
    assert_true(file_contains(f->store_dir, MARKER));
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
}

static void
test_value_moved_to_another_id_does_not_open(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf raw = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"user\":\"mallory\"}");
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    raw_put(f->store_dir, ID2, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    sess__buf_free(&raw);
}

static void
test_corrupt_records_are_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf raw = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"a\":1}");
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    raw.ptr[raw.len - 1] ^= 0x40; /* a flipped bit in the tag */
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    raw_put(f->store_dir, ID2, "short", 5);  /* no header */
    raw_put(f->store_dir, ID3, raw.ptr, 20); /* truncated header */
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID3, T0), SESS_ENOTFOUND);
    sess__buf_free(&raw);
}

static void
test_records_sealed_under_an_older_secret_still_open(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_secrets rotated = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"old\":true}");
    close_store(f);
    assert_int_equal(sess_secrets_add(&rotated, SESS_STR_LIT(SECRET_B)), SESS_OK);
    assert_int_equal(sess_secrets_add(&rotated, SESS_STR_LIT(SECRET_A)), SESS_OK);
    sess_secrets_free(&f->secrets);
    f->secrets = rotated;
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"old\":true}");
}

static void
test_records_of_a_retired_secret_are_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_secrets only_b = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{\"old\":true}");
    close_store(f);
    assert_int_equal(sess_secrets_add(&only_b, SESS_STR_LIT(SECRET_B)), SESS_OK);
    sess_secrets_free(&f->secrets);
    f->secrets = only_b;
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
}

/* ------------------------------------------------------------------------
 * The record format (records.c, "Format 2") and what its seal covers
 * ------------------------------------------------------------------------ */

/* Format 2's layout, from its description, independently of the store. */
#define V2_OFF_FLAGS      1
#define V2_OFF_OWNERLEN   2
#define V2_OFF_EXTLEN     4
#define V2_OFF_EXPIRES    8
#define V2_OFF_LAST_SEEN  16
#define V2_OFF_DEADLINE   24
#define V2_OFF_GENERATION 40
#define V2_OFF_NONCE      48
#define V2_HEADER         64
#define V1_HEADER         32

static int64_t
field_i64(const struct sess_buf *b, size_t off)
{
    int64_t v;
    memcpy(&v, b->ptr + off, sizeof v);
    return v;
}

static size_t
v2_payload_off(const struct sess_buf *b)
{
    uint16_t owner_len;
    uint32_t ext_len;

    memcpy(&owner_len, b->ptr + V2_OFF_OWNERLEN, sizeof owner_len);
    memcpy(&ext_len, b->ptr + V2_OFF_EXTLEN, sizeof ext_len);
    return V2_HEADER + owner_len + ext_len;
}

/* A value as 0.1 wrote it: format 1, the payload sealed by libsodium under
 * HMAC-SHA256(secret, "fcgi-session store") with the id alone as AD, or
 * plain JSON. */
static void
v1_value(struct sess_buf *out, const char *id, bool is_sealed, int64_t expires_ms,
         int64_t deadline_ms, const char *owner, const char *data)
{
    unsigned char header[V1_HEADER] = {1, is_sealed ? 1 : 0};
    uint16_t owner_len = (uint16_t)strlen(owner);
    int64_t created_ms = T0 - MIN_MS;
    unsigned char key[32], nonce[24];
    unsigned char sealed[512];
    unsigned long long clen;
    crypto_auth_hmacsha256_state h;

    memcpy(header + 2, &owner_len, 2);
    memcpy(header + 8, &expires_ms, 8);
    memcpy(header + 16, &deadline_ms, 8);
    memcpy(header + 24, &created_ms, 8);
    out->len = 0;
    assert_int_equal(sess__buf_append(out, header, sizeof header), SESS_OK);
    assert_int_equal(sess__buf_append(out, owner, owner_len), SESS_OK);
    if (!is_sealed) {
        assert_int_equal(sess__buf_append(out, data, strlen(data)), SESS_OK);
        return;
    }
    crypto_auth_hmacsha256_init(&h, (const unsigned char *)SECRET_A, strlen(SECRET_A));
    crypto_auth_hmacsha256_update(&h, (const unsigned char *)"fcgi-session store", 18);
    crypto_auth_hmacsha256_final(&h, key);
    randombytes_buf(nonce, sizeof nonce);
    assert_true(strlen(data) + 40 <= sizeof sealed);
    memcpy(sealed, nonce, sizeof nonce);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + 24, &clen, (const unsigned char *)data,
                                               strlen(data), (const unsigned char *)id, strlen(id),
                                               NULL, nonce, key);
    assert_int_equal(sess__buf_append(out, sealed, 24 + (size_t)clen), SESS_OK);
}

/* The review's forgery: whoever can write the file puts plain JSON saying
 * "alice, admin" under the id of an anonymous cookie they hold. With
 * encrypt on, no unsealed record opens, of either format. */
static void
test_plain_record_in_a_sealed_store_is_refused(void **ctx)
{
    struct fx *f = *ctx;
    static const char forged[] =
        "{\"authenticated\":true,\"user\":{\"username\":\"alice\",\"role\":\"admin\"}}";
    struct sess_buf raw = {0};

    create(f, ID1, T0 + 30 * MIN_MS, "", "{}");
    /* Format 2, written by a store with encrypt off. */
    close_store(f);
    f->cfg.encrypt = SESS_ENCRYPT_NO;
    open_store(f);
    create(f, ID2, T0 + 30 * MIN_MS, "alice", forged);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID2, &raw);
    assert_int_equal(raw.ptr[V2_OFF_FLAGS] & 1, 0);
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    /* Format 1, unsealed. */
    v1_value(&raw, ID3, false, T0 + 30 * MIN_MS, 0, "alice", forged);
    raw_put(f->store_dir, ID3, raw.ptr, raw.len);
    f->cfg.encrypt = SESS_ENCRYPT_AUTO;
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(get(f, ID3, T0), SESS_ENOTFOUND);
    sess__buf_free(&raw);
}

static struct sess_record
full_record(void)
{
    struct sess_record rec = record(T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice", "{\"a\":1}");

    rec.idle_ms = 15 * MIN_MS;
    rec.lifetime_ms = 7 * 24 * 60 * MIN_MS;
    rec.is_remembered = true;
    rec.has_handle = true;
    memcpy(rec.handle, "0123456789abcdef", SESS_HANDLE_BYTES);
    rec.client_addr = SESS_STR_LIT("192.0.2.7");
    rec.user_agent = SESS_STR_LIT("Mozilla/5.0 (X11; Linux x86_64)");
    rec.last_seen_ms = T0;
    return rec;
}

static void
test_format_2_carries_the_per_session_fields(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = full_record();

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    reopen(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_int_equal(f->rec.idle_ms, 15 * MIN_MS);
    assert_int_equal(f->rec.lifetime_ms, 7 * 24 * 60 * MIN_MS);
    assert_true(f->rec.is_remembered);
    assert_true(f->rec.has_handle);
    assert_memory_equal(f->rec.handle, "0123456789abcdef", SESS_HANDLE_BYTES);
    assert_str_view(f->rec.client_addr, "192.0.2.7");
    assert_str_view(f->rec.user_agent, "Mozilla/5.0 (X11; Linux x86_64)");
    assert_int_equal(f->rec.client_addr.ptr[f->rec.client_addr.len], '\0');
    assert_int_equal(f->rec.last_seen_ms, T0);
    assert_str_view(f->rec.owner, "alice");
    assert_str_view(f->rec.data, "{\"a\":1}");
    assert_int_equal(f->rec.generation, 1);
    /* A touch moves the last sighting with the expiry. */
    assert_int_equal(f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0 + 5 * MIN_MS, T0 + 35 * MIN_MS),
                     SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 6 * MIN_MS), SESS_OK);
    assert_int_equal(f->rec.last_seen_ms, T0 + 5 * MIN_MS);
    assert_int_equal(f->rec.expires_ms, T0 + 35 * MIN_MS);
    /* Defaults stay defaults. */
    create(f, ID2, T0 + 30 * MIN_MS, "", "{}");
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    assert_int_equal(f->rec.idle_ms, 0);
    assert_int_equal(f->rec.lifetime_ms, 0);
    assert_false(f->rec.is_remembered);
    assert_false(f->rec.has_handle);
    assert_int_equal(f->rec.client_addr.len, 0);
    assert_int_equal(f->rec.user_agent.len, 0);
}

static void
test_updates_keep_the_nonce_and_count_generations(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = full_record();
    unsigned char nonce[SESS_RECORD_NONCE_BYTES];
    struct sess_patch p = patch("{\"a\":2}", NULL, T0 + 30 * MIN_MS);

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    memcpy(nonce, f->rec.nonce, sizeof nonce);
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess__patch_free(&p);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_int_equal(f->rec.generation, 2);
    assert_memory_equal(f->rec.nonce, nonce, sizeof nonce);
    assert_str_view(f->rec.user_agent, "Mozilla/5.0 (X11; Linux x86_64)");
    assert_str_view(f->rec.data, "{\"a\":2}");
    /* Another record, even built from this one, gets its own. */
    rec = f->rec;
    rec.data = SESS_STR_LIT("{}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID2), T0, &rec), SESS_OK);
    assert_int_equal(get(f, ID2, T0), SESS_OK);
    assert_int_equal(f->rec.generation, 1);
    assert_memory_not_equal(f->rec.nonce, nonce, sizeof nonce);
}

/* Every byte of the header but the idle expiry and the last sighting, and
 * every byte of the owner and the extensions, is under the seal: a record
 * edited in any of them does not open. */
static void
test_every_sealed_header_field_edited_does_not_open(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = full_record();
    struct sess_buf orig = {0}, raw = {0};
    size_t payload_off, off;

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &orig);
    payload_off = v2_payload_off(&orig);
    assert_true(payload_off > V2_HEADER + 5);
    for (off = 0; off < payload_off; off++) {
        if (off >= V2_OFF_EXPIRES && off < V2_OFF_LAST_SEEN + 8)
            continue;
        for (unsigned bit = 0; bit < 8; bit += 3) {
            raw.len = 0;
            assert_int_equal(sess__buf_append(&raw, orig.ptr, orig.len), SESS_OK);
            raw.ptr[off] ^= (char)(1u << bit);
            raw_put(f->store_dir, ID1, raw.ptr, raw.len);
            open_store(f);
            if (get(f, ID1, T0) != SESS_ENOTFOUND)
                fail_msg("byte %zu bit %u edited, the record still opens", off, bit);
            close_store(f);
        }
    }
    /* The control: untouched, it opens. */
    raw_put(f->store_dir, ID1, orig.ptr, orig.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    sess__buf_free(&orig);
    sess__buf_free(&raw);
}

/* The idle expiry is outside the seal (a touch rewrites it alone), so it
 * can be pushed forward; the deadline, inside, still ends the record. */
static void
test_edited_expiry_is_capped_by_the_sealed_deadline(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice", "{}");
    struct sess_buf raw = {0};
    int64_t far = T0 + 365 * 24 * 60 * MIN_MS;

    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    memcpy(raw.ptr + V2_OFF_EXPIRES, &far, sizeof far);
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0 + 60 * MIN_MS), SESS_OK);
    assert_int_equal(f->rec.expires_ms, T0 + 120 * MIN_MS);
    assert_int_equal(get(f, ID1, T0 + 120 * MIN_MS), SESS_ENOTFOUND);
    sess__buf_free(&raw);
}

/* The payload of a destroyed session, put under the header of a new record
 * of the same id, does not open; nor does an older version's payload under
 * the current header of its own record. (The whole old value, header
 * included, would: without state outside the file nothing can tell it
 * from the real one. README.md, "Security".) */
static void
test_replayed_old_payload_does_not_open_under_a_new_header(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_record rec = record(T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice",
                                    "{\"user\":{\"username\":\"alice\",\"role\":\"admin\"}}");
    struct sess_buf old = {0}, cur = {0}, mix = {0};
    struct sess_patch p = patch("{\"n\":2}", NULL, T0 + 30 * MIN_MS);

    /* A destroyed record, then a new one under the same id. */
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &old);
    open_store(f);
    assert_int_equal(f->st->ops->destroy(f->st, SESS_STR_LIT(ID1), T0), SESS_OK);
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID1), T0, &rec), SESS_OK);
    close_store(f);
    raw_get(f->store_dir, ID1, &cur);
    assert_int_equal(old.len, cur.len);
    assert_memory_not_equal(old.ptr + V2_OFF_NONCE, cur.ptr + V2_OFF_NONCE, 16);
    assert_int_equal(sess__buf_append(&mix, cur.ptr, v2_payload_off(&cur)), SESS_OK);
    assert_int_equal(
        sess__buf_append(&mix, old.ptr + v2_payload_off(&old), old.len - v2_payload_off(&old)),
        SESS_OK);
    raw_put(f->store_dir, ID1, mix.ptr, mix.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);

    /* An older version of a live record: generation 1's payload under
     * generation 2's header. */
    close_store(f);
    raw_put(f->store_dir, ID1, cur.ptr, cur.len);
    open_store(f);
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess__patch_free(&p);
    close_store(f);
    raw_get(f->store_dir, ID1, &old); /* generation 2 */
    assert_int_equal(field_i64(&old, V2_OFF_GENERATION), 2);
    mix.len = 0;
    assert_int_equal(sess__buf_append(&mix, old.ptr, v2_payload_off(&old)), SESS_OK);
    assert_int_equal(
        sess__buf_append(&mix, cur.ptr + v2_payload_off(&cur), cur.len - v2_payload_off(&cur)),
        SESS_OK);
    raw_put(f->store_dir, ID1, mix.ptr, mix.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_ENOTFOUND);
    sess__buf_free(&old);
    sess__buf_free(&cur);
    sess__buf_free(&mix);
}

/* A store written by 0.1: its sealed records open, under its key and its
 * AD, and the next save writes them in format 2; a touch keeps them
 * readable meanwhile. */
static void
test_records_of_the_previous_format_still_open_and_are_rewritten(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_buf raw = {0};
    struct sess_patch p = patch("{\"n\":2}", "{\"n\":1}", T0 + 40 * MIN_MS);

    close_store(f);
    v1_value(&raw, ID1, true, T0 + 30 * MIN_MS, T0 + 120 * MIN_MS, "alice", "{\"n\":1}");
    raw_put(f->store_dir, ID1, raw.ptr, raw.len);
    /* Its payload under another id does not open. */
    raw_put(f->store_dir, ID2, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":1}");
    assert_str_view(f->rec.owner, "alice");
    assert_int_equal(f->rec.expires_ms, T0 + 30 * MIN_MS);
    assert_int_equal(f->rec.deadline_ms, T0 + 120 * MIN_MS);
    assert_int_equal(get(f, ID2, T0), SESS_ENOTFOUND);
    assert_int_equal(
        f->st->ops->touch(f->st, SESS_STR_LIT(ID1), T0 + 10 * MIN_MS, T0 + 50 * MIN_MS), SESS_OK);
    assert_int_equal(get(f, ID1, T0 + 45 * MIN_MS), SESS_OK);
    /* It read n = 1 there: the merge saw the old record opened. */
    assert_int_equal(update(f, ID1, T0, &p), SESS_OK);
    sess__patch_free(&p);
    close_store(f);
    raw_get(f->store_dir, ID1, &raw);
    assert_int_equal(raw.ptr[0], 2);
    open_store(f);
    assert_int_equal(get(f, ID1, T0), SESS_OK);
    assert_str_view(f->rec.data, "{\"n\":2}");
    /* revoke --user finds it by the owner of either format. */
    close_store(f);
    v1_value(&raw, ID3, true, T0 + 30 * MIN_MS, 0, "bob", "{}");
    raw_put(f->store_dir, ID3, raw.ptr, raw.len);
    open_store(f);
    assert_int_equal(get(f, ID3, T0), SESS_OK);
    sess__buf_free(&raw);
}

/* Extensions in a store without sealing, where they can be written by
 * hand: an unknown one is skipped, an unknown critical one (0x80 set), a
 * known one of the wrong size or twice, or one cut short refuses the
 * record. */
static void
test_unknown_extensions_are_skipped_unless_critical(void **ctx)
{
    struct fx *f = *ctx;
    static const struct {
        const char *ext;
        size_t len;
        enum sess_err want;
    } cases[] = {
        {"\x40\x02\x00xy", 5, SESS_OK},
        {"\xc0\x02\x00xy", 5, SESS_ENOTFOUND},
        {"\x01\x02\x00xy", 5, SESS_ENOTFOUND},             /* idle_ms of 2 bytes */
        {"\x04\x01\x00x\x04\x01\x00y", 8, SESS_ENOTFOUND}, /* address twice */
        {"\x04\x09\x00x", 4, SESS_ENOTFOUND},              /* longer than the section */
        {"\x04", 1, SESS_ENOTFOUND},                       /* a type alone */
        {"\x04\x00\x00", 3, SESS_OK},                      /* empty address */
    };
    struct sess_buf orig = {0}, raw = {0};
    size_t payload_off;

    create(f, ID1, T0 + 30 * MIN_MS, "bob", "{\"k\":1}");
    close_store(f);
    raw_get(f->store_dir, ID1, &orig);
    payload_off = v2_payload_off(&orig);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t ext_len = (uint32_t)cases[i].len;
        raw.len = 0;
        assert_int_equal(sess__buf_append(&raw, orig.ptr, payload_off), SESS_OK);
        assert_int_equal(sess__buf_append(&raw, cases[i].ext, cases[i].len), SESS_OK);
        assert_int_equal(sess__buf_append(&raw, orig.ptr + payload_off, orig.len - payload_off),
                         SESS_OK);
        memcpy(raw.ptr + V2_OFF_EXTLEN, &ext_len, sizeof ext_len);
        raw_put(f->store_dir, ID1, raw.ptr, raw.len);
        open_store(f);
        if (get(f, ID1, T0) != cases[i].want)
            fail_msg("case %zu: not %s", i, sess_strerror(cases[i].want));
        if (cases[i].want == SESS_OK)
            assert_str_view(f->rec.data, "{\"k\":1}");
        close_store(f);
    }
    open_store(f);
    sess__buf_free(&orig);
    sess__buf_free(&raw);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name)     cmocka_unit_test_setup_teardown(name, setup, teardown)
#define PLAIN(name) cmocka_unit_test_setup_teardown(name, setup_plain, teardown)
        T(test_sealed_data_never_reaches_the_file_in_plaintext),
        PLAIN(test_unsealed_store_keeps_plain_json),
        T(test_value_moved_to_another_id_does_not_open),
        T(test_corrupt_records_are_not_found),
        T(test_records_sealed_under_an_older_secret_still_open),
        T(test_records_of_a_retired_secret_are_not_found),
        T(test_plain_record_in_a_sealed_store_is_refused),
        T(test_format_2_carries_the_per_session_fields),
        T(test_updates_keep_the_nonce_and_count_generations),
        T(test_every_sealed_header_field_edited_does_not_open),
        T(test_edited_expiry_is_capped_by_the_sealed_deadline),
        T(test_replayed_old_payload_does_not_open_under_a_new_header),
        T(test_records_of_the_previous_format_still_open_and_are_rewritten),
        PLAIN(test_unknown_extensions_are_skipped_unless_critical),
#undef T
#undef PLAIN
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
