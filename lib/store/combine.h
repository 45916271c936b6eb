/* Group commit across processes: writers that arrive while another process
 * commits leave their operation in shared memory, and the next process to
 * commit writes them all in one transaction, paying for one fsync instead of
 * one each (flat combining). The queue knows nothing of what an operation
 * means: the store hands it bytes and a function that applies a batch.
 * Internal to lib/ (lmdb/sessions.c). */
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
    /* 64 random bits drawn when the operation is queued, so distinct
     * operations differ (but for the odds of a 64-bit collision), and the
     * same each time this one is handed to an apply function: what an
     * apply function records, in the transaction it commits, to recognize
     * an operation it already committed (see sess__combine). */
    uint64_t token;
    /* 1 when a combiner that died had this operation in its batch: its
     * transaction may have committed it. Such operations come first. */
    int is_retry;
};

/* Applies `n` operations and commits them together, setting each op's
 * result; it runs in whichever process commits, for operations of any
 * process. Operations of a batch are concurrent (none of their callers has
 * returned yet), so any order is an arrival order. */
typedef void (*sess_combine_apply_fn)(void *ctx, struct sess_combine_op *ops, size_t n);

struct sess_combiner;

/* Opens (creating if needed) the queue shared by every process that opens
 * the file at `path` (mapped, never read or written otherwise), in any PID
 * namespace. NULL when that fails, or when the file was made by a build
 * with another layout: the caller then writes alone, which is only slower. */
struct sess_combiner *sess__combiner_open(const char *path);
void sess__combiner_close(struct sess_combiner *c);

/* Queues one operation and returns once some process has applied it: 1 and
 * its result in *result; 0 when it could not be queued (too large, queue
 * full): the caller then applies it itself.
 *
 * What holds: one process at a time applies batches, and a combiner that
 * lives is never replaced, however slow or stopped (the callers wait for
 * it). Each result is published once, to the slot of the call it belongs
 * to, and each call returns the result of its own operation. A queued
 * operation is never lost: if its combiner dies, or its caller, it is
 * still applied. (combine.c names the one exception the kernel leaves, in
 * processes of different PID namespaces killed at a given instant.)
 *
 * The one case where an operation reaches an apply function twice: its
 * combiner died (killed, crashed) after calling apply and before publishing
 * the results. The next combiner then gets it again, with is_retry set and
 * the same token; the dead one's transaction either committed (the
 * operation is applied already) or did not, and only the store knows
 * which. An apply function for which applying twice is not harmless keeps
 * the tokens of the batches it commits, in the same transaction, and
 * takes a retried operation whose token it finds there as done. */
int sess__combine(struct sess_combiner *c, const void *payload, size_t len,
                  sess_combine_apply_fn apply, void *ctx, int *result);

#endif
