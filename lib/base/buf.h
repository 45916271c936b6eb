/* The growing buffer (buf.c): store reads, sealed values, response
 * headers and bodies land in one, reused across calls so that a warm
 * process allocates nothing for them. Internal to lib/. */
#ifndef SESS_BUF_H
#define SESS_BUF_H

#include "sess.h"

/* A growing buffer a store call copies its result into, reused across calls
 * so that reads allocate nothing once warm. */
struct sess_buf {
    char *ptr;
    size_t len;
    size_t cap;
};

enum sess_err sess_buf_reserve(struct sess_buf *buf, size_t extra) SESS_MUST_CHECK;
enum sess_err sess_buf_append(struct sess_buf *buf, const void *data, size_t len) SESS_MUST_CHECK;
void sess_buf_free(struct sess_buf *buf);
/* Frees after wiping: for buffers that held session data or secrets. */
void sess_buf_wipe(struct sess_buf *buf);

#endif
