/* Group commit across processes (combine.h). The shared memory holds a
 * small header, a state word per slot and each slot's payload:
 *
 *   FREE -> FILLING (owner copies its operation in) -> PENDING
 *        -> TAKEN (a combiner took it into its batch) -> DONE (result set)
 *        -> FREE (the owner read the result)
 *
 * Whoever finds no combiner at work becomes the combiner (a compare-and-swap
 * of its pid into the header), takes every PENDING slot, applies the batch
 * in one transaction, marks the slots DONE and wakes the waiters, who sleep
 * on a sequence word (a futex) meanwhile. Operations that arrive while a
 * batch commits wait for it and go together in the next one: that is where
 * fsyncs are saved.
 *
 * Nothing here is needed for correctness: the store's own transactions stay
 * the only writers, so a process that cannot queue (no shared memory, no
 * free slot) writes alone. A process killed anywhere leaves a state the
 * others repair: a dead combiner's batch is taken again (its transaction
 * was either aborted by the kill or committed, and applying an operation
 * twice sets the same values twice); a dead owner's slot is reclaimed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "combine.h"

#define SLOTS 64
/* Layout version and size in one word: a queue made by another build of
 * the library is left alone rather than misread. */
#define MAGIC (0x66637331ULL << 32 | (uint64_t)SLOTS << 16 | 1U)
/* How long a waiter sleeps before it checks that the combiner still lives. */
#define WAIT_NS (10L * 1000 * 1000)
/* A combiner at work longer than this is taken for gone even if its pid
 * lives (reused after a crash): a batch is one transaction, milliseconds. */
#define LEASE_S 10

enum slot_state {
    SLOT_FREE,
    SLOT_FILLING,
    SLOT_PENDING,
    SLOT_TAKEN,
    SLOT_DONE,
};

struct slot_head {
    _Atomic uint32_t state;
    _Atomic int32_t owner; /* pid */
    int32_t result;
    uint32_t len;
};

struct shared {
    _Atomic uint64_t magic;
    _Atomic uint64_t combiner; /* since (monotonic s) << 32 | pid; 0 when none */
    _Atomic uint32_t seq;      /* bumped after every batch; waiters sleep on it */
    struct slot_head head[SLOTS];
    unsigned char payload[SLOTS][SESS_COMBINE_PAYLOAD_MAX] __attribute__((aligned(4096)));
};

struct sess_combiner {
    struct shared *sh;
    int32_t pid;
};

static bool
is_dead(int32_t pid)
{
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

static uint64_t
monotonic_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

/* Becomes the combiner if there is none; the word says since when. */
static bool
take_lead(struct sess_combiner *c)
{
    uint64_t none = 0;

    return atomic_compare_exchange_strong(&c->sh->combiner, &none,
                                          monotonic_s() << 32 | (uint32_t)c->pid);
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

struct sess_combiner *
sess_combiner_open(const char *path)
{
    struct sess_combiner *c;
    struct stat sb;
    uint64_t expected = 0;
    void *map;
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return NULL;
    /* All zeroes is the empty queue, so whoever comes first only sizes it. */
    if (fstat(fd, &sb) != 0 || (sb.st_size != 0 && sb.st_size != sizeof(struct shared)) ||
        (sb.st_size == 0 && ftruncate(fd, sizeof(struct shared)) != 0)) {
        close(fd);
        return NULL;
    }
    map = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return NULL;
    c = malloc(sizeof *c);
    if (!c) {
        munmap(map, sizeof(struct shared));
        return NULL;
    }
    c->sh = map;
    c->pid = (int32_t)getpid();
    if (!atomic_compare_exchange_strong(&c->sh->magic, &expected, MAGIC) && expected != MAGIC) {
        sess_combiner_close(c);
        return NULL;
    }
    return c;
}

void
sess_combiner_close(struct sess_combiner *c)
{
    if (!c)
        return;
    munmap(c->sh, sizeof(struct shared));
    free(c);
}

/* A slot for us: a free one, or one whose owner died. -1 when all are busy. */
static int
claim_slot(struct sess_combiner *c)
{
    struct shared *sh = c->sh;
    int i, n;

    for (n = 0; n < SLOTS; n++) {
        /* Start where our pid points, so processes rarely contend. */
        uint32_t state = SLOT_FREE;
        i = (int)((c->pid + n) % SLOTS);
        if (atomic_compare_exchange_strong(&sh->head[i].state, &state, SLOT_FILLING)) {
            atomic_store(&sh->head[i].owner, c->pid);
            return i;
        }
    }
    for (i = 0; i < SLOTS; i++) {
        int32_t owner = atomic_load(&sh->head[i].owner);
        uint32_t state = atomic_load(&sh->head[i].state);
        /* PENDING and TAKEN slots of the dead are still applied, then DONE. */
        if ((state == SLOT_FILLING || state == SLOT_DONE) && is_dead(owner) &&
            atomic_compare_exchange_strong(&sh->head[i].state, &state, SLOT_FILLING)) {
            atomic_store(&sh->head[i].owner, c->pid);
            return i;
        }
    }
    return -1;
}

/* As the combiner: one batch of whatever is pending, then step down. */
static void
combine_batch(struct sess_combiner *c, sess_combine_apply_fn apply, void *ctx)
{
    struct shared *sh = c->sh;
    struct sess_combine_op ops[SLOTS];
    int taken[SLOTS];
    size_t n = 0, k;
    uint64_t me = atomic_load(&sh->combiner);
    int i;

    for (i = 0; i < SLOTS; i++) {
        uint32_t state = SLOT_PENDING;
        if (!atomic_compare_exchange_strong(&sh->head[i].state, &state, SLOT_TAKEN))
            continue;
        ops[n] = (struct sess_combine_op){sh->payload[i], sh->head[i].len, 0};
        taken[n++] = i;
    }
    if (n)
        apply(ctx, ops, n);
    for (k = 0; k < n; k++) {
        sh->head[taken[k]].result = ops[k].result;
        atomic_store(&sh->head[taken[k]].state, SLOT_DONE);
    }
    (void)atomic_compare_exchange_strong(&sh->combiner, &me, 0);
    atomic_fetch_add(&sh->seq, 1);
    futex_wake_all(&sh->seq);
}

/* The combiner died with a batch taken: take it over, and give its slots
 * back to the queue. */
static bool
replace_dead_combiner(struct sess_combiner *c)
{
    struct shared *sh = c->sh;
    uint64_t lead = atomic_load(&sh->combiner), now = monotonic_s();
    int i;

    if (lead == 0 || (!is_dead((int32_t)(lead & 0xffffffffU)) && now - (lead >> 32) <= LEASE_S) ||
        !atomic_compare_exchange_strong(&sh->combiner, &lead, now << 32 | (uint32_t)c->pid))
        return false;
    for (i = 0; i < SLOTS; i++) {
        uint32_t state = SLOT_TAKEN;
        (void)atomic_compare_exchange_strong(&sh->head[i].state, &state, SLOT_PENDING);
    }
    return true;
}

int
sess_combine(struct sess_combiner *c, const void *payload, size_t len, sess_combine_apply_fn apply,
             void *ctx, int *result)
{
    struct shared *sh = c->sh;
    struct slot_head *head;
    int i;

    if (len > SESS_COMBINE_PAYLOAD_MAX || (i = claim_slot(c)) < 0)
        return 0;
    head = &sh->head[i];
    memcpy(sh->payload[i], payload, len);
    head->len = (uint32_t)len;
    atomic_store(&head->state, SLOT_PENDING);

    for (;;) {
        uint32_t seen;

        if (atomic_load(&head->state) == SLOT_DONE)
            break;
        if (take_lead(c)) {
            combine_batch(c, apply, ctx);
            continue;
        }
        seen = atomic_load(&sh->seq);
        if (atomic_load(&head->state) == SLOT_DONE)
            break;
        if (atomic_load(&sh->combiner) == 0)
            continue;
        futex_wait(&sh->seq, seen);
        if (atomic_load(&sh->seq) == seen && replace_dead_combiner(c))
            combine_batch(c, apply, ctx);
    }
    *result = head->result;
    /* The payload may be session data: it does not outlive the call. */
    sodium_memzero(sh->payload[i], len);
    atomic_store(&head->state, SLOT_FREE);
    return 1;
}
