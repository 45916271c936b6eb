/* Group commit across processes (combine.h). The shared memory holds a
 * header, and per slot a lock, a state word and the payload:
 *
 *   FREE -> FILLING (owner copies its operation in) -> PENDING
 *        -> TAKEN (the combiner took it into its batch) -> DONE (result set)
 *        -> FREE (the owner read the result)
 *
 * Who may do what is decided by two kinds of robust process-shared mutex in
 * the mapping. The lead lock is held by the combiner while it takes and
 * applies a batch and publishes the results; whoever finds it free becomes
 * the combiner, and waiters sleep on a sequence word (a futex) bumped after
 * each batch, so what arrives during a commit goes together in the next
 * batch: that is where fsyncs are saved. A slot's lock is held by its owner
 * from claim to free: a claim is one compare-and-swap, so no slot has two
 * owners.
 *
 * A robust mutex is how the kernel says that a process died: it marks the
 * lock of a dead holder (EOWNERDEAD for the next taker) whatever PID
 * namespace either lives in, and never that of a slow or stopped one. So a
 * live combiner is never replaced, and the next combiner after a dead one
 * finishes its batch, whose slots are still TAKEN (hence is_retry). Results
 * are published by compare-and-swap from the TAKEN word, generation
 * included, never by a blind store. A slot whose owner died is reclaimed
 * from FILLING or DONE; PENDING or TAKEN, it is still applied first.
 *
 * One limit comes from the kernel: it matches a dying thread to the locks
 * it held by thread id, and ids repeat across PID namespaces. A thread
 * killed within the few instructions of taking or releasing one of these
 * locks can get it marked dead while a thread with the same id in another
 * namespace holds it. Should that ever happen, the swaps still keep each
 * result to its own claim, but an operation may be applied twice (with its
 * token), or a slot's payload be written by two processes.
 *
 * Nothing here is needed for correctness of the store: its own transactions
 * stay the only writers, so a process that cannot queue writes alone. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "combine.h"

#define SLOTS 64
/* Layout version, size and the lock ABI in one word: a queue made by
 * another build of the library (version 1 had no locks) is left alone
 * rather than misread. */
#define MAGIC                                                                                      \
    (0x66637331ULL << 32 | (uint64_t)SLOTS << 16 | (uint64_t)sizeof(pthread_mutex_t) << 8 | 2U)
/* Its first opener is making the locks (under flock). */
#define MAGIC_INITIALIZING (MAGIC ^ 0xffU)
/* How long a waiter sleeps before it looks again whether the combiner died:
 * the kernel marks a dead combiner's lock but wakes nobody sleeping here. */
#define WAIT_NS (10L * 1000 * 1000)

enum slot_state {
    SLOT_FREE,
    SLOT_FILLING,
    SLOT_PENDING,
    SLOT_TAKEN,
    SLOT_DONE,
};

struct slot_head {
    pthread_mutex_t owner; /* held by the slot's owner from claim to free */
    /* generation (bumped by each claim) << 40 | state << 32 | result: a
     * result is published with its state, and only to the claim it is for */
    _Atomic uint64_t word;
    uint64_t token;
    uint32_t len;
};

struct shared {
    _Atomic uint64_t magic;
    _Atomic uint32_t seq; /* bumped after every batch; waiters sleep on it */
    pthread_mutex_t lead; /* held by the combiner through its batch */
    struct slot_head head[SLOTS];
    unsigned char payload[SLOTS][SESS_COMBINE_PAYLOAD_MAX] __attribute__((aligned(4096)));
};

struct sess_combiner {
    struct shared *sh;
};

struct batch {
    struct sess_combine_op ops[SLOTS];
    int slot[SLOTS];
    uint64_t taken[SLOTS]; /* each slot's word as taken */
    size_t n;
};

static uint64_t
slot_word(uint32_t gen, enum slot_state state, int result)
{
    return (uint64_t)(gen & 0xffffffU) << 40 | (uint64_t)state << 32 | (uint32_t)result;
}

static uint32_t
gen_of(uint64_t word)
{
    return (uint32_t)(word >> 40);
}

static enum slot_state
state_of(uint64_t word)
{
    return (enum slot_state)(word >> 32 & 0xffU);
}

static int
result_of(uint64_t word)
{
    return (int)(uint32_t)word;
}

static void
futex_wait(_Atomic uint32_t *word, uint32_t seen)
{
    struct timespec ts = {0, WAIT_NS};

    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

static void
futex_wake_all(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Robust, so the kernel reports a dead holder; NORMAL, because the error-
 * checking kind compares thread ids, which repeat across PID namespaces. */
static bool
init_lock(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    bool ok;

    if (pthread_mutexattr_init(&attr) != 0)
        return false;
    ok = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) == 0 &&
         pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) == 0 &&
         pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_NORMAL) == 0 &&
         pthread_mutex_init(m, &attr) == 0;
    pthread_mutexattr_destroy(&attr);
    return ok;
}

/* A new file is all zeroes, locks included, and zeroes are no robust lock:
 * the first opener makes them under flock, so that no other uses them half
 * made; one killed halfway leaves MAGIC_INITIALIZING for the next to redo.
 * A file another build claimed keeps its magic, and we stay out. */
static bool
initialize(struct shared *sh, int fd)
{
    uint64_t magic = 0;
    bool ok = true;
    int i;

    if (flock(fd, LOCK_EX) != 0)
        return false;
    if (atomic_compare_exchange_strong(&sh->magic, &magic, MAGIC_INITIALIZING))
        magic = MAGIC_INITIALIZING;
    if (magic == MAGIC_INITIALIZING) {
        ok = init_lock(&sh->lead);
        for (i = 0; ok && i < SLOTS; i++)
            ok = init_lock(&sh->head[i].owner);
        if (ok)
            atomic_store(&sh->magic, MAGIC);
    }
    (void)flock(fd, LOCK_UN);
    return ok && atomic_load(&sh->magic) == MAGIC;
}

struct sess_combiner *
sess__combiner_open(const char *path)
{
    struct sess_combiner *c = NULL;
    struct shared *sh = MAP_FAILED;
    struct stat sb;
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return NULL;
    /* Two first openers may both size it: the same size, all zeroes. */
    if (fstat(fd, &sb) != 0 || (sb.st_size != 0 && sb.st_size != sizeof(struct shared)) ||
        (sb.st_size == 0 && ftruncate(fd, sizeof(struct shared)) != 0))
        goto out;
    sh = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sh == MAP_FAILED || (atomic_load(&sh->magic) != MAGIC && !initialize(sh, fd)))
        goto out;
    c = malloc(sizeof *c);
    if (!c)
        goto out;
    c->sh = sh;
    sh = MAP_FAILED;
out:
    if (sh != MAP_FAILED)
        munmap(sh, sizeof(struct shared));
    close(fd);
    return c;
}

void
sess__combiner_close(struct sess_combiner *c)
{
    if (!c)
        return;
    munmap(c->sh, sizeof(struct shared));
    free(c);
}

/* A slot for us, FILLING under our lock, starting the search at `start`
 * so that processes rarely contend; its generation in *gen. -1 when every
 * slot is held or still carries a dead owner's operation. */
static int
claim_slot(struct shared *sh, unsigned start, uint32_t *gen)
{
    int n;

    for (n = 0; n < SLOTS; n++) {
        int i = (int)((start + (unsigned)n) % SLOTS);
        struct slot_head *head = &sh->head[i];
        bool was_dead = false;
        uint64_t word;
        int rc;

        rc = pthread_mutex_trylock(&head->owner);
        if (rc == EOWNERDEAD) {
            was_dead = true;
            rc = pthread_mutex_consistent(&head->owner);
        }
        if (rc != 0)
            continue;
        word = atomic_load(&head->word);
        switch (state_of(word)) {
        case SLOT_FREE:
            break;
        case SLOT_FILLING:
        case SLOT_DONE:
            /* Its owner died filling it, or before reading the result; or
             * it died with its op queued, a claimant let go of the dead
             * lock (below) and the op has been applied since. */
            was_dead = true;
            break;
        case SLOT_PENDING:
        case SLOT_TAKEN:
            /* A dead owner's operation, still to be applied: the slot is
             * free again once it is DONE. */
            pthread_mutex_unlock(&head->owner);
            continue;
        }
        *gen = gen_of(word) + 1;
        /* Only the holder of this lock moves a slot out of FREE, FILLING
         * or DONE, so this succeeds; a swap all the same, not a store. */
        if (!atomic_compare_exchange_strong(&head->word, &word, slot_word(*gen, SLOT_FILLING, 0))) {
            pthread_mutex_unlock(&head->owner);
            continue;
        }
        /* The payload may be session data of a process that is gone. */
        if (was_dead)
            sodium_memzero(sh->payload[i], SESS_COMBINE_PAYLOAD_MAX);
        return i;
    }
    return -1;
}

/* Puts slot i, whose TAKEN word is `taken`, in the batch. */
static size_t
add_op(struct shared *sh, int i, uint64_t taken, bool is_retry, struct batch *b)
{
    size_t len = sh->head[i].len;

    b->ops[b->n] = (struct sess_combine_op){
        .payload = sh->payload[i],
        .len = len < SESS_COMBINE_PAYLOAD_MAX ? len : SESS_COMBINE_PAYLOAD_MAX,
        .token = sh->head[i].token,
        .is_retry = is_retry,
    };
    b->slot[b->n] = i;
    b->taken[b->n] = taken;
    return b->n + 1;
}

/* As the combiner, holding the lead lock: one batch, results published.
 * TAKEN slots are a dead combiner's batch (a live one leaves none when it
 * lets go of the lock): they arrived first, so they go first. */
static void
combine_batch(struct shared *sh, sess_combine_apply_fn apply, void *ctx)
{
    struct batch b = {.n = 0};
    size_t k;
    int i;

    for (i = 0; i < SLOTS; i++) {
        uint64_t word = atomic_load(&sh->head[i].word);
        if (state_of(word) == SLOT_TAKEN)
            b.n = add_op(sh, i, word, true, &b);
    }
    for (i = 0; i < SLOTS; i++) {
        uint64_t word = atomic_load(&sh->head[i].word);
        uint64_t taken = slot_word(gen_of(word), SLOT_TAKEN, 0);
        if (state_of(word) == SLOT_PENDING &&
            atomic_compare_exchange_strong(&sh->head[i].word, &word, taken))
            b.n = add_op(sh, i, taken, false, &b);
    }
    if (b.n == 0)
        return;
    apply(ctx, b.ops, b.n);
    /* From the very word taken, generation included: a result never lands
     * on a slot claimed again since. */
    for (k = 0; k < b.n; k++) {
        uint64_t taken = b.taken[k];
        (void)atomic_compare_exchange_strong(&sh->head[b.slot[k]].word, &taken,
                                             slot_word(gen_of(taken), SLOT_DONE, b.ops[k].result));
    }
}

/* Runs one batch unless another process is running one (false then). */
static bool
lead_batch(struct shared *sh, sess_combine_apply_fn apply, void *ctx)
{
    int rc = pthread_mutex_trylock(&sh->lead);

    /* The combiner died holding it: its batch is ours to finish. */
    if (rc == EOWNERDEAD)
        rc = pthread_mutex_consistent(&sh->lead);
    if (rc != 0)
        return false;
    combine_batch(sh, apply, ctx);
    pthread_mutex_unlock(&sh->lead);
    /* After the unlock: a waiter that found the lock taken read the old
     * sequence before, so it does not sleep through this. */
    atomic_fetch_add(&sh->seq, 1);
    futex_wake_all(&sh->seq);
    return true;
}

int
sess__combine(struct sess_combiner *c, const void *payload, size_t len, sess_combine_apply_fn apply,
              void *ctx, int *result)
{
    struct shared *sh = c->sh;
    struct slot_head *head;
    uint64_t token, word;
    uint32_t gen;
    int i;

    if (len > SESS_COMBINE_PAYLOAD_MAX)
        return 0;
    randombytes_buf(&token, sizeof token);
    if ((i = claim_slot(sh, (unsigned)(token % SLOTS), &gen)) < 0)
        return 0;
    head = &sh->head[i];
    memcpy(sh->payload[i], payload, len);
    head->len = (uint32_t)len;
    head->token = token;
    /* The swap publishes the payload to the combiner. It fails only if our
     * lock was taken for a dead one's (the limit above). */
    word = slot_word(gen, SLOT_FILLING, 0);
    if (!atomic_compare_exchange_strong(&head->word, &word, slot_word(gen, SLOT_PENDING, 0)))
        return 0;

    for (;;) {
        uint32_t seen = atomic_load(&sh->seq);

        word = atomic_load(&head->word);
        if (state_of(word) == SLOT_DONE)
            break;
        if (!lead_batch(sh, apply, ctx))
            futex_wait(&sh->seq, seen);
    }
    *result = result_of(word);
    /* The payload may be session data: it does not outlive the call. */
    sodium_memzero(sh->payload[i], len);
    (void)atomic_compare_exchange_strong(&head->word, &word, slot_word(gen, SLOT_FREE, 0));
    pthread_mutex_unlock(&head->owner);
    return 1;
}
