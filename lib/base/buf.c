/* The growing buffer (buf.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"

enum sess_err
sess__buf_reserve(struct sess_buf *buf, size_t extra)
{
    size_t need, cap;
    char *ptr;

    if (extra > SIZE_MAX - buf->len)
        return SESS_ENOMEM;
    need = buf->len + extra;
    if (need <= buf->cap)
        return SESS_OK;
    /* Doubling from 256 keeps a warm buffer at the size of the largest
     * session it has held, so reads stop allocating after the first few. */
    cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    ptr = realloc(buf->ptr, cap);
    if (!ptr)
        return SESS_ENOMEM;
    buf->ptr = ptr;
    buf->cap = cap;
    return SESS_OK;
}

enum sess_err
sess__buf_append(struct sess_buf *buf, const void *data, size_t len)
{
    enum sess_err err = sess__buf_reserve(buf, len);

    if (err != SESS_OK)
        return err;
    if (len)
        memcpy(buf->ptr + buf->len, data, len);
    buf->len += len;
    return SESS_OK;
}

void
sess__buf_free(struct sess_buf *buf)
{
    if (!buf)
        return;
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
}

void
sess__buf_wipe(struct sess_buf *buf)
{
    if (buf->ptr)
        sodium_memzero(buf->ptr, buf->cap);
    sess__buf_free(buf);
}
