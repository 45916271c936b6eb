/* The lowest layer's helpers, beyond sess.h's strings and errors (str.c,
 * clock.c); the growing buffer is buf.h's. Internal to lib/. */
#ifndef SESS_BASE_H
#define SESS_BASE_H

#include <stdint.h>

#include "sess.h"

/* snprintf that never overflows and returns nothing to check. */
void sess_fmt(char *out, size_t out_len, const char *fmt, ...) SESS_PRINTF(3, 4);

/* Milliseconds of the real clock. */
int64_t sess_clock_real_ms(void);

#endif
