/* The LMDB store's session record: its stored layout in the two formats
 * (2, written now; 1, written by 0.1 and still read), the seal over its
 * payload and what the seal's additional data covers, and the conversion
 * between a stored value and a struct sess_record. Where records are kept
 * and indexed is sessions.c's; the seal itself is seal.c's. */
#include <stdint.h>
#include <string.h>

#include <lmdb.h>
#include <sodium.h>

#include "lmdb_store.h"

/* Session value: a fixed header, owner bytes, then the payload (sealed or
 * JSON). Fields are read and written with memcpy at fixed offsets, so the
 * layout never depends on a compiler's struct padding. Native byte order:
 * an LMDB file is only ever opened by machines of one byte order anyway.
 *
 * Format 2, written by this release:
 *
 *   offset size  field                                  in the seal's AD
 *        0    1  version = 2                            yes
 *        1    1  flags: 0x01 sealed, 0x02 remembered    yes (others: refused)
 *        2    2  owner length, u16                      yes
 *        4    4  extensions length, u32                 yes
 *        8    8  idle expiry, i64 Unix ms               no: touch moves it
 *       16    8  last seen, i64 Unix ms; 0 unknown      no: touch moves it
 *       24    8  absolute deadline, i64 Unix ms; 0 none yes
 *       32    8  created, i64 Unix ms                   yes
 *       40    8  generation, u64: 1 at creation, +1 per write    yes
 *       48   16  record nonce: random at creation, kept by updates   yes
 *       64       owner bytes                            yes
 *                extensions: {u8 type, u16 length, value} each     yes
 *                payload: nonce || ciphertext || tag (seal.c), or the JSON
 *
 * The additional data of the seal is REC_AD_LABEL, the id's length (u8)
 * and bytes, then every "yes" above in order: the header less its two
 * mutable fields, the owner and the extensions. Editing any of them, or
 * putting the payload under another id, another record (another nonce) or
 * another version of this one (another generation), makes it not open.
 * The idle expiry is outside so that a touch need not seal again; whatever
 * it says, a record is dead at its deadline, which is inside. What cannot
 * be caught without state outside the file: a whole value (header and
 * payload) put back as it was, e.g. a copy of a destroyed session's record;
 * it lives until its own expiry or deadline. README.md, "Security".
 *
 * Extensions carry per-session settings and client metadata; each is
 * written only when it differs from the default (zero, empty). A type
 * with bit 0x80 set must be understood: a record holding one this release
 * does not know is refused, others are skipped.
 *
 * Format 1 (0.1): version 1, flags (0x01 sealed), owner length u16, then
 * expiry, deadline and created (i64) at 8, 16 and 24, 32 bytes in all; the
 * owner; the payload sealed under 0.1's keys with the id alone as AD. Read
 * until the release after this one; rewritten as format 2 by the next
 * save. With encrypt on, an unsealed record of either format is refused:
 * anyone able to write the file could otherwise forge one. */
#define REC_VERSION        2
#define REC_FLAG_SEALED    0x01
#define REC_FLAG_REMEMBER  0x02
#define REC_FLAGS_KNOWN    (REC_FLAG_SEALED | REC_FLAG_REMEMBER)
#define REC_OFF_VERSION    0
#define REC_OFF_FLAGS      1
#define REC_OFF_OWNERLEN   2
#define REC_OFF_EXTLEN     4
#define REC_OFF_EXPIRES    8
#define REC_OFF_LAST_SEEN  16
#define REC_OFF_DEADLINE   24
#define REC_OFF_CREATED    32
#define REC_OFF_GENERATION 40
#define REC_OFF_NONCE      48
#define REC_HEADER_BYTES   64
#define REC_AD_LABEL       "fcgi-session record 2" /* with its NUL */

#define REC_EXT_IDLE_MS     0x01 /* i64: this session's idle lifetime */
#define REC_EXT_LIFETIME_MS 0x02 /* i64: its absolute lifetime */
#define REC_EXT_HANDLE      0x03 /* SESS_HANDLE_BYTES: its public handle */
#define REC_EXT_CLIENT_ADDR 0x04 /* bytes: client address */
#define REC_EXT_USER_AGENT  0x05 /* bytes: User-Agent */
#define REC_EXT_CRITICAL    0x80
#define REC_EXT_HEAD        3 /* type, u16 length */

#define REC1_VERSION      1
#define REC1_OFF_EXPIRES  8
#define REC1_OFF_DEADLINE 16
#define REC1_OFF_CREATED  24
#define REC1_HEADER_BYTES 32

_Static_assert(REC_OFF_EXPIRES == REC1_OFF_EXPIRES, "touch moves the expiry of either format");
_Static_assert(REC_OFF_NONCE + SESS_RECORD_NONCE_BYTES == REC_HEADER_BYTES, "header size");

/* Parses the header of either format; false for an unknown or
 * inconsistent layout (a corrupt record is never read past its end). */
size_t
lmdb__record_name_len(const MDB_val *v)
{
    const unsigned char *p = v->mv_data;

    if (v->mv_size >= REC_HEADER_BYTES && p[REC_OFF_VERSION] == REC_VERSION)
        return REC_HEADER_BYTES;
    return v->mv_size;
}

bool
lmdb__header_read(const MDB_val *v, struct lmdb_header *h)
{
    const unsigned char *p = v->mv_data;
    uint16_t owner_len;
    uint32_t ext_len;

    if (v->mv_size < REC1_HEADER_BYTES)
        return false;
    memset(h, 0, sizeof *h);
    h->version = p[REC_OFF_VERSION];
    h->flags = p[REC_OFF_FLAGS];
    memcpy(&owner_len, p + REC_OFF_OWNERLEN, sizeof owner_len);
    h->owner_len = owner_len;
    if (h->version == REC1_VERSION) {
        if (h->flags & ~REC_FLAG_SEALED || owner_len > v->mv_size - REC1_HEADER_BYTES)
            return false;
        h->owner_off = REC1_HEADER_BYTES;
        h->payload_off = REC1_HEADER_BYTES + owner_len;
        h->expires_ms = lmdb__get_i64(p + REC1_OFF_EXPIRES);
        h->deadline_ms = lmdb__get_i64(p + REC1_OFF_DEADLINE);
        h->created_ms = lmdb__get_i64(p + REC1_OFF_CREATED);
        return true;
    }
    if (h->version != REC_VERSION || v->mv_size < REC_HEADER_BYTES || h->flags & ~REC_FLAGS_KNOWN)
        return false;
    memcpy(&ext_len, p + REC_OFF_EXTLEN, sizeof ext_len);
    if (owner_len > v->mv_size - REC_HEADER_BYTES ||
        ext_len > v->mv_size - REC_HEADER_BYTES - owner_len)
        return false;
    h->owner_off = REC_HEADER_BYTES;
    h->ext_off = REC_HEADER_BYTES + owner_len;
    h->ext_len = ext_len;
    h->payload_off = h->ext_off + ext_len;
    h->expires_ms = lmdb__get_i64(p + REC_OFF_EXPIRES);
    h->last_seen_ms = lmdb__get_i64(p + REC_OFF_LAST_SEEN);
    h->deadline_ms = lmdb__get_i64(p + REC_OFF_DEADLINE);
    h->created_ms = lmdb__get_i64(p + REC_OFF_CREATED);
    memcpy(&h->generation, p + REC_OFF_GENERATION, sizeof h->generation);
    return true;
}

/* Moves a stored value's idle expiry and, in format 2, its last sighting:
 * the two fields the seal leaves out, so a touch keeps the payload's bytes
 * and the deadline, which the seal covers, still ends the record. */
void
lmdb__record_touch(unsigned char *value, const struct lmdb_header *h, int64_t expires_ms,
                   int64_t seen_ms)
{
    lmdb__set_i64(value + REC_OFF_EXPIRES, expires_ms);
    if (h->version == REC_VERSION)
        lmdb__set_i64(value + REC_OFF_LAST_SEEN, seen_ms);
}

static enum sess_err
ext_put(struct sess_buf *out, uint8_t type, const void *value, size_t len)
{
    uint16_t len16 = (uint16_t)len;
    enum sess_err err;

    if (len > UINT16_MAX)
        return SESS_EBADINPUT;
    err = sess__buf_append(out, &type, 1);
    if (err == SESS_OK)
        err = sess__buf_append(out, &len16, sizeof len16);
    return err == SESS_OK ? sess__buf_append(out, value, len) : err;
}

/* Appends the extensions of `rec` that differ from their defaults. */
static enum sess_err
ext_encode(struct sess_buf *out, const struct sess_record *rec)
{
    enum sess_err err = SESS_OK;

    if (rec->idle_ms)
        err = ext_put(out, REC_EXT_IDLE_MS, &rec->idle_ms, sizeof rec->idle_ms);
    if (err == SESS_OK && rec->lifetime_ms)
        err = ext_put(out, REC_EXT_LIFETIME_MS, &rec->lifetime_ms, sizeof rec->lifetime_ms);
    if (err == SESS_OK && rec->has_handle)
        err = ext_put(out, REC_EXT_HANDLE, rec->handle, sizeof rec->handle);
    if (err == SESS_OK && rec->client_addr.len)
        err = ext_put(out, REC_EXT_CLIENT_ADDR, rec->client_addr.ptr, rec->client_addr.len);
    if (err == SESS_OK && rec->user_agent.len)
        err = ext_put(out, REC_EXT_USER_AGENT, rec->user_agent.ptr, rec->user_agent.len);
    return err;
}

/* Reads a record's extensions into `out` (client address and User-Agent as
 * views into `ext`). False for a truncated entry, a known type of the wrong
 * size or seen twice, or an unknown critical type. */
static bool
ext_decode(const unsigned char *ext, size_t len, struct sess_record *out)
{
    unsigned seen = 0;
    size_t pos = 0;

    while (pos < len) {
        uint8_t type;
        uint16_t vlen;
        const unsigned char *val;

        if (len - pos < REC_EXT_HEAD)
            return false;
        type = ext[pos];
        memcpy(&vlen, ext + pos + 1, sizeof vlen);
        if (vlen > len - pos - REC_EXT_HEAD)
            return false;
        val = ext + pos + REC_EXT_HEAD;
        pos += REC_EXT_HEAD + vlen;
        if (type < 32) {
            if (seen & 1u << type)
                return false;
            seen |= 1u << type;
        }
        switch (type) {
        case REC_EXT_IDLE_MS:
        case REC_EXT_LIFETIME_MS:
            if (vlen != sizeof(int64_t))
                return false;
            memcpy(type == REC_EXT_IDLE_MS ? &out->idle_ms : &out->lifetime_ms, val, vlen);
            break;
        case REC_EXT_HANDLE:
            if (vlen != SESS_HANDLE_BYTES)
                return false;
            memcpy(out->handle, val, vlen);
            out->has_handle = true;
            break;
        case REC_EXT_CLIENT_ADDR:
            out->client_addr = (struct sess_str){(const char *)val, vlen};
            break;
        case REC_EXT_USER_AGENT:
            out->user_agent = (struct sess_str){(const char *)val, vlen};
            break;
        default:
            if (type & REC_EXT_CRITICAL)
                return false;
        }
    }
    return true;
}

/* The additional data of a format 2 record whose value (header, owner,
 * extensions; the payload may follow or not yet) starts at `value`: in
 * ls->ad, which stays valid until the next call. */
static enum sess_err
record_ad(struct lmdb_store *ls, struct sess_str id, const unsigned char *value,
          const struct lmdb_header *h, struct sess_str *ad)
{
    unsigned char id_len = (unsigned char)id.len;
    enum sess_err err;

    ls->ad.len = 0;
    err = sess__buf_append(&ls->ad, REC_AD_LABEL, sizeof REC_AD_LABEL);
    if (err == SESS_OK)
        err = sess__buf_append(&ls->ad, &id_len, 1);
    if (err == SESS_OK)
        err = sess__buf_append(&ls->ad, id.ptr, id.len);
    if (err == SESS_OK)
        err = sess__buf_append(&ls->ad, value, REC_OFF_EXPIRES);
    if (err == SESS_OK)
        err = sess__buf_append(&ls->ad, value + REC_OFF_DEADLINE,
                               REC_HEADER_BYTES - REC_OFF_DEADLINE);
    if (err == SESS_OK)
        err = sess__buf_append(&ls->ad, value + h->owner_off, h->payload_off - h->owner_off);
    *ad = (struct sess_str){ls->ad.ptr, ls->ad.len};
    return err;
}

/* Builds the stored value of `rec` in ls->val, in format 2. A record that
 * already has a nonce (read by an update) keeps it and gets the next
 * generation; lmdb__create gives a new one its own. */
enum sess_err
lmdb__record_encode(struct lmdb_store *ls, struct sess_str id, const struct sess_record *rec)
{
    enum sess_err err;
    unsigned char *p;
    uint16_t owner_len = (uint16_t)rec->owner.len;
    uint32_t ext_len;
    uint64_t generation = rec->generation + 1;
    struct lmdb_header h;
    struct sess_str ad;
    static const unsigned char no_nonce[SESS_RECORD_NONCE_BYTES];

    if (rec->owner.len > ls->max_key || rec->owner.len > UINT16_MAX) {
        sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                  "lmdb %s: owner of %zu bytes is over the key limit of %zu", ls->dir,
                  rec->owner.len, ls->max_key);
        return SESS_EBADINPUT;
    }
    if (!lmdb__id_is_usable(id))
        return SESS_EBADINPUT;
    ls->val.len = 0;
    err = sess__buf_reserve(&ls->val, REC_HEADER_BYTES + rec->owner.len);
    if (err != SESS_OK)
        return err;
    p = (unsigned char *)ls->val.ptr;
    memset(p, 0, REC_HEADER_BYTES);
    p[REC_OFF_VERSION] = REC_VERSION;
    p[REC_OFF_FLAGS] =
        (ls->is_sealing ? REC_FLAG_SEALED : 0) | (rec->is_remembered ? REC_FLAG_REMEMBER : 0);
    memcpy(p + REC_OFF_OWNERLEN, &owner_len, sizeof owner_len);
    lmdb__set_i64(p + REC_OFF_EXPIRES, rec->expires_ms);
    lmdb__set_i64(p + REC_OFF_LAST_SEEN, rec->last_seen_ms);
    lmdb__set_i64(p + REC_OFF_DEADLINE, rec->deadline_ms);
    lmdb__set_i64(p + REC_OFF_CREATED, rec->created_ms);
    memcpy(p + REC_OFF_GENERATION, &generation, sizeof generation);
    /* Never all zeros: a record built by hand and given to an update still
     * gets a nonce no other record has. */
    if (sodium_memcmp(rec->nonce, no_nonce, sizeof no_nonce) == 0)
        randombytes_buf(p + REC_OFF_NONCE, SESS_RECORD_NONCE_BYTES);
    else
        memcpy(p + REC_OFF_NONCE, rec->nonce, SESS_RECORD_NONCE_BYTES);
    ls->val.len = REC_HEADER_BYTES;
    err = sess__buf_append(&ls->val, rec->owner.ptr, rec->owner.len);
    if (err == SESS_OK)
        err = ext_encode(&ls->val, rec);
    if (err != SESS_OK)
        return err;
    if (ls->val.len - REC_HEADER_BYTES - rec->owner.len > UINT32_MAX)
        return SESS_EBADINPUT;
    ext_len = (uint32_t)(ls->val.len - REC_HEADER_BYTES - rec->owner.len);
    memcpy(ls->val.ptr + REC_OFF_EXTLEN, &ext_len, sizeof ext_len);
    if (!ls->is_sealing)
        return sess__buf_append(&ls->val, rec->data.ptr, rec->data.len);
    h = (struct lmdb_header){.owner_off = REC_HEADER_BYTES, .payload_off = ls->val.len};
    err = record_ad(ls, id, (const unsigned char *)ls->val.ptr, &h, &ad);
    return err == SESS_OK ? sess__seal(&ls->sealer, ad, rec->data, &ls->val) : err;
}

/* Copies a stored value into `buf` as "owner\0client_addr\0user_agent\0
 * data\0" and points `out` at it. A value that does not parse or open is
 * SESS_ENOTFOUND: one corrupt record must not turn into a 500 on every
 * request that names it. With `check_live`, a dead record is
 * SESS_ENOTFOUND before any decryption; without `with_data`, the data is
 * neither opened nor copied (left empty), and so nothing in the header is
 * authenticated: only for a value known to have opened before (an update
 * of the bytes get just returned) or for reading what is not trusted. */
enum sess_err
lmdb__record_decode(struct lmdb_store *ls, struct sess_str id, const MDB_val *v, bool check_live,
                    int64_t now_ms, struct sess_record *out, struct sess_buf *buf, bool with_data)
{
    enum sess_err err;
    struct lmdb_header h;
    struct sess_str payload, ad = {0};
    size_t addr_off, ua_off, data_off;
    const unsigned char *p = v->mv_data;

    memset(out, 0, sizeof *out);
    /* Ids read from an index (sessctl's walks) are the file's word only. */
    if (!lmdb__id_is_usable(id))
        return SESS_ENOTFOUND;
    if (!lmdb__header_read(v, &h) ||
        (h.version == REC_VERSION && !ext_decode(p + h.ext_off, h.ext_len, out))) {
        sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                  "lmdb %s: a session record has an unknown layout; ignored", ls->dir);
        return SESS_ENOTFOUND;
    }
    out->expires_ms = sess__record_expiry_ms(h.expires_ms, h.deadline_ms);
    out->deadline_ms = h.deadline_ms;
    out->created_ms = h.created_ms;
    out->last_seen_ms = h.last_seen_ms;
    out->generation = h.generation;
    out->is_remembered = (h.flags & REC_FLAG_REMEMBER) != 0;
    if (h.version == REC_VERSION)
        memcpy(out->nonce, p + REC_OFF_NONCE, SESS_RECORD_NONCE_BYTES);
    if (check_live && !sess__record_is_live(out, now_ms))
        return SESS_ENOTFOUND;
    if (ls->is_sealing && !(h.flags & REC_FLAG_SEALED)) {
        sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                  "lmdb %s: an unsealed session record in a store with encrypt on (written "
                  "by someone without the secret?); ignored",
                  ls->dir);
        return SESS_ENOTFOUND;
    }

    payload.ptr = (const char *)p + h.payload_off;
    payload.len = v->mv_size - h.payload_off;
    buf->len = 0;
    err = sess__buf_append(buf, p + h.owner_off, h.owner_len);
    if (err == SESS_OK)
        err = sess__buf_append(buf, "", 1);
    addr_off = buf->len;
    if (err == SESS_OK)
        err = sess__buf_append(buf, out->client_addr.ptr, out->client_addr.len);
    if (err == SESS_OK)
        err = sess__buf_append(buf, "", 1);
    ua_off = buf->len;
    if (err == SESS_OK)
        err = sess__buf_append(buf, out->user_agent.ptr, out->user_agent.len);
    if (err == SESS_OK)
        err = sess__buf_append(buf, "", 1);
    if (err != SESS_OK)
        return err;
    data_off = buf->len;
    if (with_data && (h.flags & REC_FLAG_SEALED)) {
        /* Format 1 was sealed under 0.1's keys with the id alone as AD;
         * format 2 under ours, with the header. */
        if (h.version == REC_VERSION) {
            err = record_ad(ls, id, p, &h, &ad);
            if (err == SESS_OK)
                err = sess__unseal_current(&ls->sealer, ad, payload, buf);
        } else {
            err = sess__unseal_legacy(&ls->sealer, id, payload, buf);
        }
        if (err == SESS_ECRYPTO) {
            sess__fmt(ls->base.errmsg, sizeof ls->base.errmsg,
                      "lmdb %s: a session record does not open under any secret (tampered, "
                      "moved, or sealed with a secret no longer in secret_file); ignored",
                      ls->dir);
            return SESS_ENOTFOUND;
        }
    } else if (with_data) {
        err = sess__buf_append(buf, payload.ptr, payload.len);
    }
    if (err == SESS_OK && with_data)
        err = sess__buf_append(buf, "", 1);
    if (err != SESS_OK)
        return err;
    out->owner = (struct sess_str){buf->ptr, h.owner_len};
    out->client_addr = (struct sess_str){buf->ptr + addr_off, ua_off - 1 - addr_off};
    out->user_agent = (struct sess_str){buf->ptr + ua_off, data_off - 1 - ua_off};
    out->data = with_data ? (struct sess_str){buf->ptr + data_off, buf->len - 1 - data_off}
                          : (struct sess_str){NULL, 0};
    return SESS_OK;
}
