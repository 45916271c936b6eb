/* The stored session record's one rule of time: when it dies. Both stores
 * file, purge and refuse records by it, and sessctl shows it; how a record
 * is laid out is each store's business (lmdb/records.c, redis/codec.c). */
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

int64_t
sess__record_expiry_ms(int64_t expires_ms, int64_t deadline_ms)
{
    return deadline_ms != 0 && deadline_ms < expires_ms ? deadline_ms : expires_ms;
}

bool
sess__record_is_live(const struct sess_record *rec, int64_t now_ms)
{
    return now_ms < sess__record_expiry_ms(rec->expires_ms, rec->deadline_ms);
}
