/* What the two halves of the configuration share, and nothing outside
 * lib/config/ includes: the table of keys (keys.c: one parser and check per
 * key) that the loader (config.c: the file, FILE:LINE, "did you mean")
 * looks names up in, and the helpers both use. Functions here carry the
 * cfg_ prefix: they are not the library's API. */
#ifndef SESS_CONFIG_IMPL_H
#define SESS_CONFIG_IMPL_H

#include <stddef.h>

#include "codec.h"

#define CFG_SHOWN_MAX 64 /* characters of a bad value quoted back */
#define CFG_KEY_COUNT 33 /* entries in cfg_keys; keys.c checks it */

/* Where one setting comes from, for messages, and what a relative path in it
 * is relative to. */
struct cfg_origin {
    const char *where; /* "FILE:LINE" or the caller's name */
    const char *base_dir;
    char *errmsg;
    size_t errmsg_len;
};

/* Parses `value`, checks it and stores it in `cfg`. SESS_ECONFIG with
 * "WHERE: KEY = "VALUE": expected ..." in o->errmsg, or SESS_ENOMEM (no
 * message: the caller writes it). */
typedef enum sess_err (*cfg_set_fn)(struct sess_config *cfg, const struct cfg_origin *o,
                                    const char *key, const char *value);

struct cfg_key {
    const char *name;
    cfg_set_fn set;
};

/* --- keys.c --- */

/* Every key, in the order an unknown key's message lists them. */
extern const struct cfg_key cfg_keys[CFG_KEY_COUNT];

/* The entry for `name` (exact, case-sensitive), or NULL. */
const struct cfg_key *cfg_key_find(const char *name);

/* `rel` taken relative to `base` (absolute), or `rel` itself when absolute.
 * The result need not exist yet. The caller frees it; NULL on allocation
 * failure. */
char *cfg_resolve_path(const char *base, const char *rel);

/* "lmdb:" and the absolute form of `dir`, as cfg_resolve_path. */
char *cfg_lmdb_store(const char *base, const char *dir);

/* Copies `s` for quoting in a message: non-printable bytes, '"' and '\' as
 * escapes, cut at CFG_SHOWN_MAX characters. */
static inline void
cfg_shown(char out[CFG_SHOWN_MAX + 8], const char *s)
{
    size_t n = 0;

    sess__escape_field(out, CFG_SHOWN_MAX, &n, s, SIZE_MAX);
}

#endif
