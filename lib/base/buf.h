/* The growing buffer: bytes appended at its end, its allocation kept across
 * uses, so that a warm buffer allocates nothing. Store calls copy their
 * results into one (store.h); so do the codecs and the request's output.
 * libc and libsodium only. Internal to lib/. */
#ifndef SESS_BUF_H
#define SESS_BUF_H

#include <stddef.h>

#include "sess.h"

struct sess_buf {
    char *ptr;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

/* Makes room for `extra` more bytes after `len`. SESS_ENOMEM when that
 * overflows or cannot be allocated; the buffer is as it was then. */
enum sess_err sess__buf_reserve(struct sess_buf *buf, size_t extra) SESS_MUST_CHECK;
/* Copies `len` bytes of `data` to the end. SESS_ENOMEM as above. */
enum sess_err sess__buf_append(struct sess_buf *buf, const void *data, size_t len) SESS_MUST_CHECK;
/* Releases the allocation and empties the buffer, which stays usable;
 * accepts NULL. */
void sess__buf_free(struct sess_buf *buf);
/* Frees after wiping: for buffers that held session data or secrets. */
void sess__buf_wipe(struct sess_buf *buf);

#endif
