/* The wall clock, in milliseconds since the epoch. Only the app reads it
 * (app.c: sess_now_ms, which a test may replace with sess_app_set_clock);
 * everything else is given `now_ms`, so one clock governs a request. */
#include <time.h>

#include "base.h"

int64_t
sess__clock_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
