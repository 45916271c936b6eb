/* Group commit across processes: writers that arrive while another process
 * commits leave their operation in shared memory, and the next process to
 * commit writes them all in one transaction, paying for one fsync instead of
 * one each (flat combining). The queue knows nothing of what an operation
 * means: the store hands it bytes and a function that applies a batch.
 * Internal to lib/ (store_lmdb.c). */
#ifndef SESS_COMBINE_H
#define SESS_COMBINE_H

#include <stddef.h>
#include <stdint.h>

/* Largest operation carried; a larger one is written by its own process. */
#define SESS_COMBINE_PAYLOAD_MAX (16 * 1024 - 64)

/* One operation of a batch, as the apply function sees it. */
struct sess_combine_op {
    const unsigned char *payload;
    size_t len;
    int result; /* set by the apply function */
};

/* Applies `n` operations (in arrival order) and commits them together,
 * setting each op's result; it runs in whichever process commits, for
 * operations of any process. */
typedef void (*sess_combine_apply_fn)(void *ctx, struct sess_combine_op *ops, size_t n);

struct sess_combiner;

/* Opens (creating if needed) the queue shared by every process that opens
 * the file at `path` (mapped, never read or written otherwise). NULL when
 * that fails: the caller then writes alone, which is only slower. */
struct sess_combiner *sess_combiner_open(const char *path);
void sess_combiner_close(struct sess_combiner *c);

/* Queues one operation and returns once some process has applied it: 1 and
 * its result in *result; 0 when it could not be queued (too large, queue
 * full): the caller then applies it itself. */
int sess_combine(struct sess_combiner *c, const void *payload, size_t len,
                 sess_combine_apply_fn apply, void *ctx, int *result);

#endif
