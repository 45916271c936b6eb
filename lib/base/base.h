/* The lowest layer's helpers, beyond sess.h's strings and errors (str.c,
 * clock.c); the growing buffer is buf.h's. Internal to lib/. */
#ifndef SESS_BASE_H
#define SESS_BASE_H

#include <stdint.h>

#include "sess.h"

/* Appends `s` to out[*n] as a quoted field of a message shows it: bytes
 * outside printable ASCII as \xHH, '"' and '\' escaped, at most `max`
 * bytes of `s` and "..." when it was cut; NUL-terminated within `cap`
 * (at least 1), *n advanced. For the log and configuration errors. */
void sess__escape_field(char *out, size_t cap, size_t *n, const char *s, size_t max);

/* snprintf that never overflows and returns nothing to check. */
void sess__fmt(char *out, size_t out_len, const char *fmt, ...) SESS_PRINTF(3, 4);

/* Milliseconds of the real clock. */
int64_t sess__clock_real_ms(void);

#endif
