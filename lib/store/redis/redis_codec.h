/* The Redis store's values (codec.c): the session JSON connect-redis
 * stores, with our metadata inside it as its first key, optionally sealed,
 * and connect-redis's rule for the TTL. Pure: no I/O and no clock of its
 * own, so tests and the fuzz target drive it without a server. Moving the
 * bytes is the rest of the store's business (redis_store.h). Internal to
 * lib/store/redis/. */
#ifndef RS_CODEC_H
#define RS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* connect-redis's ttl for a session without cookie.expires; also the expiry
 * we assume for a key that somebody left without a TTL. */
#define RS_NO_TTL_EXPIRY_MS (86400 * 1000LL)

/* With encrypt = auto or false the values are plain JSON: an Express app
 * must read them, and so can anyone who reads Redis, its dumps or its
 * replicas, so Redis needs guarding (bind, requirepass or ACLs, socket
 * permissions). encrypt = true, for deployments without an Express peer,
 * seals them as the LMDB store does (seal.c: the id as additional data):
 * the value is this prefix, then nonce || ciphertext || tag of the session
 * JSON. Never valid JSON, so an Express app would fail loudly on it rather
 * than misread it. */
#define RS_SEAL_MAGIC     "fcgi-sealed:1:"
#define RS_SEAL_MAGIC_LEN (sizeof RS_SEAL_MAGIC - 1)

/* The keys and buffers of the codec, one per store. Not thread-safe: each
 * call reuses the buffers. */
struct rs_codec {
    bool is_sealing;           /* encrypt = true: seal what is written, refuse plain values */
    struct sess_sealer sealer; /* opens sealed values whether sealing or not */
    int64_t absolute_ms;       /* absolute_timeout: the deadline given Express's sessions */
    struct sess_buf val;       /* rs_value_encode's result: the bytes to store */
    struct sess_buf plain;     /* an unsealed value, or JSON about to be sealed; wiped after use */
    struct sess_buf text;      /* data re-serialised without our key */
    const char *why;           /* why the last value was refused (static text), or NULL */
};

/* Keys from `secrets` (none needed unless sealing), buffers empty. */
void rs_codec_init(struct rs_codec *c, const struct sess_secrets *secrets, bool is_sealing,
                   int64_t absolute_ms);
/* Wipes the keys and every buffer; accepts a codec never initialised
 * (zeroed). */
void rs_codec_wipe(struct rs_codec *c);

/* connect-redis's getTTL: whole seconds until the record dies
 * (sess__record_expiry_ms), rounded up (1,799,995 ms ahead gives EX 1800); 0
 * when already past. Against the caller's clock, as rs_value_decode turns a
 * TTL back into an instant. */
int64_t rs_ttl_seconds(const struct sess_record *rec, int64_t now_ms);

/* The bytes to store for `rec` under session `id`, into c->val: our key
 * first, then rec->data's keys (a "_fcgi" key of the data's own is
 * dropped), sealed when c->is_sealing. SESS_EBADINPUT if rec->data is not a
 * JSON object; SESS_ENOMEM. */
enum sess_err rs_value_encode(struct rs_codec *c, struct sess_str id,
                              const struct sess_record *rec) SESS_MUST_CHECK;

/* The record stored under `id` as `raw`, with `pttl_ms` to live (PTTL: -1
 * for a key without a TTL, which lives RS_NO_TTL_EXPIRY_MS). Its views
 * borrow from `buf`, which holds "owner\0client_addr\0user_agent\0data\0".
 * The idle expiry is now_ms + the TTL, never cookie.expires (connect-redis's
 * touch moves the TTL and leaves the value alone). A value Express made
 * (*has_meta false; may be NULL) starts at now_ms, with the absolute
 * deadline c->absolute_ms after that. SESS_ENOTFOUND for a value that is
 * not ours to read: sealed under no key we have, plain while sealing (c->why
 * says which), or not a JSON object; SESS_ENOMEM. The data is not parsed
 * beyond our key: session.c treats corrupt data as absent. */
enum sess_err rs_value_decode(struct rs_codec *c, struct sess_str id, struct sess_str raw,
                              int64_t now_ms, long long pttl_ms, struct sess_record *out,
                              struct sess_buf *buf, bool *has_meta) SESS_MUST_CHECK;

/* Whether `raw`, stored under `id`, belongs to `owner`: its recorded owner,
 * or the user logged into its data (an Express app may have changed the
 * user since we last wrote it). `buf` is scratch. False for a value that
 * does not open. */
bool rs_value_is_owned_by(struct rs_codec *c, struct sess_str id, struct sess_str raw,
                          struct sess_str owner, struct sess_buf *buf);

/* Small text helpers the store's files share. */
bool rs_has_prefix(const char *s, size_t len, const char *prefix);
bool rs_str_eq(struct sess_str a, struct sess_str b);
/* Whether `id` can name a session key: 1 to SESS_ID_MAX_LEN bytes. */
bool rs_id_is_usable(struct sess_str id);

#endif
