/* Group commit across processes (lib/store/combine.c), with real
 * processes: what arrives during a commit goes in the next batch; a
 * stopped combiner is waited for and a killed one's batch finished, across
 * PID namespaces too; a full queue gives each slot to one process; every
 * operation is applied once and its result reaches its owner. And through
 * the LMDB store, updates of several processes to one session all land,
 * and one laid over the data its request holds never hides a change made
 * since the read. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "combine.h"
#include "internal.h"
#include "store.h"
#include "tmpfiles.h"

#define MAX_BATCHES 32
#define SESSION_ID  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define T0          1795370400000LL

/* What every apply call saw, in memory all test processes share. */
struct journal {
    int batches;
    char ops[MAX_BATCHES][8]; /* the first byte of each payload, in order */
};

static struct journal *journal;

/* Operations numbered by the tests, 4 bytes each: how many times each was
 * committed, in memory all test processes share. */
#define MAX_OPS 1024
/* Slots of the queue (combine.c): a test that fills it needs the number. */
#define QUEUE_SLOTS 64
/* Exit codes of a child that queued one operation. */
#define APPLIED_BY_QUEUE 0
#define APPLIED_ALONE    10

struct tally {
    int applied[MAX_OPS];
    uint64_t token[MAX_OPS]; /* as last committed */
    int batches, retries;
    int at_work, most_at_work; /* apply functions running at once */
};

static struct tally *tally;

/* How this process's apply function behaves. */
struct behaviour {
    int delay_ms;         /* per batch, before committing */
    int stalled_fd;       /* told once that a batch is at the stall point */
    int resume_fd;        /* a byte on it ends the stall; -1: wait forever */
    bool stall_committed; /* the stall point: after the commit, not before */
    bool by_token;        /* skips a retried op whose token it committed */
};

static struct behaviour how = {.stalled_fd = -1, .resume_fd = -1};
/* In the process that should stall inside its batch: told through `stalled`
 * that it is there, it waits for a byte on `resume` (or forever). */
static int stalled_fd = -1, resume_fd = -1;

static void
record(void *ctx, struct sess_combine_op *ops, size_t n)
{
    int b = __atomic_fetch_add(&journal->batches, 1, __ATOMIC_SEQ_CST);
    size_t i;
    char c;

    (void)ctx;
    for (i = 0; i < n; i++) {
        if (b < MAX_BATCHES && i < sizeof journal->ops[b] - 1)
            journal->ops[b][i] = (char)ops[i].payload[0];
        ops[i].result = ops[i].payload[0];
    }
    if (stalled_fd >= 0) {
        if (write(stalled_fd, "s", 1) != 1)
            _exit(3);
        if (resume_fd < 0)
            pause();
        else if (read(resume_fd, &c, 1) != 1)
            _exit(4);
        stalled_fd = -1;
    }
}

/* A child stalled forever, or stopped, by a test that failed would hold
 * the output pipe of the suite open: it goes when the suite does. */
static void
die_with_parent(void)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* A child that queues one op and exits 0 if its own result came back. */
static pid_t
submit_in_child(const char *path, char op, int stall_fd, int go_fd)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct sess_combiner *c = sess__combiner_open(path);
        int result = 0;
        die_with_parent();
        stalled_fd = stall_fd;
        resume_fd = go_fd;
        if (!c || !sess__combine(c, &op, 1, record, NULL, &result))
            _exit(2);
        sess__combiner_close(c);
        _exit(result == op ? 0 : 1);
    }
    return pid;
}

static int
exit_code(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int
setup(void **ctx)
{
    struct tmpdir *d = calloc(1, sizeof *d);

    assert_non_null(d);
    assert_int_equal(tmpdir_make(d), 0);
    journal =
        mmap(NULL, sizeof *journal, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(journal != MAP_FAILED);
    *ctx = d;
    return 0;
}

static int
teardown(void **ctx)
{
    struct tmpdir *d = *ctx;

    tmpdir_remove(d);
    munmap(journal, sizeof *journal);
    free(d);
    return 0;
}

/* Three ops queued while `a` commits are written together, in one batch. */
static void
arrivals_during_a_commit_share_the_next_batch(void **ctx)
{
    char path[PATH_MAX], c;
    int stalled[2], resume[2];
    pid_t a, others[3];
    int i;

    tmpdir_path(*ctx, "queue", path);
    assert_int_equal(pipe(stalled), 0);
    assert_int_equal(pipe(resume), 0);
    a = submit_in_child(path, 'a', stalled[1], resume[0]);
    assert_int_equal(read(stalled[0], &c, 1), 1);
    for (i = 0; i < 3; i++)
        others[i] = submit_in_child(path, (char)('b' + i), -1, -1);
    /* They queue and sleep on the futex; give them time to get there. */
    usleep(300 * 1000);
    assert_int_equal(write(resume[1], "g", 1), 1);
    assert_int_equal(exit_code(a), 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(exit_code(others[i]), 0);

    assert_int_equal(journal->batches, 2);
    assert_string_equal(journal->ops[0], "a");
    assert_int_equal(strlen(journal->ops[1]), 3);
    for (i = 0; i < 3; i++)
        assert_non_null(strchr(journal->ops[1], 'b' + i));
    close(stalled[0]), close(stalled[1]), close(resume[0]), close(resume[1]);
}

/* The combiner is killed inside its batch: a waiter takes the batch over,
 * the dead process's op included, and everyone else gets an answer. */
static void
a_killed_combiners_batch_is_taken_over(void **ctx)
{
    char path[PATH_MAX], c;
    int stalled[2];
    pid_t a, b;

    tmpdir_path(*ctx, "queue", path);
    assert_int_equal(pipe(stalled), 0);
    a = submit_in_child(path, 'a', stalled[1], -1);
    assert_int_equal(read(stalled[0], &c, 1), 1);
    b = submit_in_child(path, 'b', -1, -1);
    usleep(100 * 1000);
    kill(a, SIGKILL);
    assert_int_equal(exit_code(a), 128 + SIGKILL);
    assert_int_equal(exit_code(b), 0);

    assert_int_equal(journal->batches, 2);
    assert_string_equal(journal->ops[0], "a");
    assert_int_equal(strlen(journal->ops[1]), 2);
    assert_non_null(strchr(journal->ops[1], 'a'));
    assert_non_null(strchr(journal->ops[1], 'b'));
    /* The dead owner's slot is reclaimed: 64 more ops still find room. */
    for (int i = 0; i < 64; i++)
        assert_int_equal(exit_code(submit_in_child(path, 'x', -1, -1)), 0);
    close(stalled[0]), close(stalled[1]);
}

static void
an_op_too_large_is_left_to_its_owner(void **ctx)
{
    static unsigned char big[SESS_COMBINE_PAYLOAD_MAX + 1];
    char path[PATH_MAX];
    struct sess_combiner *c;
    int result = -1;

    tmpdir_path(*ctx, "queue", path);
    c = sess__combiner_open(path);
    assert_non_null(c);
    assert_int_equal(sess__combine(c, big, sizeof big, record, NULL, &result), 0);
    assert_int_equal(sess__combine(c, big, sizeof big - 1, record, NULL, &result), 1);
    assert_int_equal(result, 0);
    assert_int_equal(journal->batches, 1);
    sess__combiner_close(c);
}

static void
a_file_of_another_layout_is_not_used(void **ctx)
{
    char path[PATH_MAX];
    FILE *f;

    tmpdir_path(*ctx, "queue", path);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a queue", f);
    fclose(f);
    assert_null(sess__combiner_open(path));
}

/* Through the store: processes that each set their own key of one session,
 * over and over, with durable commits; every last value lands. */
static void
concurrent_updates_of_one_session_all_land(void **ctx)
{
    enum { PROCS = 4, ROUNDS = 40 };
    struct sess_config cfg = {.encrypt = SESS_ENCRYPT_AUTO,
                              .lmdb_map_size_bytes = 16u << 20,
                              .lmdb_sync = SESS_SYNC_META};
    struct sess_secrets secrets = {0};
    struct sess_record rec = {.expires_ms = T0 + 3600000, .created_ms = T0};
    struct sess_buf buf = {0};
    struct sess_store *st;
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX], key[16];
    pid_t pids[PROCS];
    json_t *data;
    int p, r;

    tmpdir_path(*ctx, "sessions", dir);
    assert_int_equal(
        sess_secrets_add(&secrets, SESS_STR_LIT("combine test secret, 32 bytes or more")), SESS_OK);
    assert_int_equal(sess__store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    rec.data = SESS_STR_LIT("{\"cookie\":{}}");
    assert_int_equal(st->ops->create(st, SESS_STR_LIT(SESSION_ID), T0, &rec), SESS_OK);
    sess__store_close(st);

    for (p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] > 0)
            continue;
        if (sess__store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg) != SESS_OK)
            _exit(2);
        snprintf(key, sizeof key, "p%d", p);
        for (r = 1; r <= ROUNDS; r++) {
            struct sess_patch patch = {
                .expires_ms = T0 + 3600000, .set = json_object(), .del = json_object()};
            json_object_set_new(patch.set, key, json_integer(r));
            if (st->ops->update(st, SESS_STR_LIT(SESSION_ID), T0, &patch) != SESS_OK)
                _exit(3);
            sess__patch_free(&patch);
        }
        sess__store_close(st);
        _exit(0);
    }
    for (p = 0; p < PROCS; p++)
        assert_int_equal(exit_code(pids[p]), 0);

    assert_int_equal(sess__store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    assert_int_equal(st->ops->get(st, SESS_STR_LIT(SESSION_ID), T0, &rec, &buf), SESS_OK);
    data = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
    assert_non_null(data);
    for (p = 0; p < PROCS; p++) {
        snprintf(key, sizeof key, "p%d", p);
        assert_int_equal(json_integer_value(json_object_get(data, key)), ROUNDS);
    }
    json_decref(data);
    sess__buf_free(&buf);
    sess__store_close(st);
}

/* An update whose request holds the whole session is laid over it only if
 * the record is still the one that request read: a change another process
 * made in between is merged, not lost. */
static void
a_record_changed_since_it_was_read_is_merged(void **ctx)
{
    struct sess_config cfg = {.encrypt = SESS_ENCRYPT_AUTO,
                              .lmdb_map_size_bytes = 16u << 20,
                              .lmdb_sync = SESS_SYNC_NONE};
    struct sess_secrets secrets = {0};
    struct sess_record rec = {.expires_ms = T0 + 3600000, .created_ms = T0};
    struct sess_buf buf = {0};
    struct sess_store *st;
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];
    json_t *whole, *data;
    pid_t pid;
    int round;

    tmpdir_path(*ctx, "sessions", dir);
    assert_int_equal(sess_secrets_add(&secrets, SESS_STR_LIT("combine test secret, 32 bytes ok")),
                     SESS_OK);
    assert_int_equal(sess__store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    rec.data = SESS_STR_LIT("{\"cookie\":{},\"a\":1}");
    assert_int_equal(st->ops->create(st, SESS_STR_LIT(SESSION_ID), T0, &rec), SESS_OK);

    for (round = 0; round < 2; round++) {
        struct sess_patch patch = {
            .expires_ms = T0 + 3600000, .set = json_object(), .del = json_object()};
        /* The request: read, then hold the whole data with its change. */
        assert_int_equal(st->ops->get(st, SESS_STR_LIT(SESSION_ID), T0, &rec, &buf), SESS_OK);
        whole = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
        json_object_del(whole, "cookie");
        json_object_set_new(whole, "mine", json_integer(round));
        json_object_set_new(patch.set, "mine", json_integer(round));
        json_object_set_new(patch.set, "cookie", json_object());
        patch.whole = whole;
        if (round == 1) {
            /* Meanwhile another process writes a key of its own. */
            pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                struct sess_store *other;
                struct sess_patch theirs = {
                    .expires_ms = T0 + 3600000, .set = json_object(), .del = json_object()};
                json_object_set_new(theirs.set, "theirs", json_true());
                if (sess__store_lmdb_open(&other, dir, &cfg, &secrets, errmsg, sizeof errmsg) ||
                    other->ops->update(other, SESS_STR_LIT(SESSION_ID), T0, &theirs))
                    _exit(1);
                _exit(0);
            }
            assert_int_equal(exit_code(pid), 0);
        }
        assert_int_equal(st->ops->update(st, SESS_STR_LIT(SESSION_ID), T0, &patch), SESS_OK);
        sess__patch_free(&patch);
        json_decref(whole);

        assert_int_equal(st->ops->get(st, SESS_STR_LIT(SESSION_ID), T0, &rec, &buf), SESS_OK);
        data = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(data, "a")), 1);
        assert_int_equal(json_integer_value(json_object_get(data, "mine")), round);
        assert_true(json_is_object(json_object_get(data, "cookie")));
        assert_int_equal(json_is_true(json_object_get(data, "theirs")), round == 1);
        json_decref(data);
    }
    sess__buf_free(&buf);
    sess__store_close(st);
}

static void
stall_here(void)
{
    char c;

    if (how.stalled_fd < 0)
        return;
    if (write(how.stalled_fd, "s", 1) != 1)
        _exit(3);
    if (how.resume_fd < 0)
        for (;;)
            pause();
    if (read(how.resume_fd, &c, 1) != 1)
        _exit(4);
    how.stalled_fd = -1;
}

static uint32_t
op_id(const struct sess_combine_op *op)
{
    uint32_t id;

    memcpy(&id, op->payload, sizeof id);
    return id < MAX_OPS ? id : MAX_OPS - 1;
}

/* The apply function of the tests below: a transaction whose commit is the
 * loop that counts, so a process killed before it has applied nothing. */
static void
count(void *ctx, struct sess_combine_op *ops, size_t n)
{
    int at_work = __atomic_add_fetch(&tally->at_work, 1, __ATOMIC_SEQ_CST);
    int most = __atomic_load_n(&tally->most_at_work, __ATOMIC_SEQ_CST);
    size_t i;

    (void)ctx;
    while (at_work > most &&
           !__atomic_compare_exchange_n(&tally->most_at_work, &most, at_work, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    __atomic_fetch_add(&tally->batches, 1, __ATOMIC_SEQ_CST);
    if (how.delay_ms)
        usleep((useconds_t)how.delay_ms * 1000);
    if (!how.stall_committed)
        stall_here();
    for (i = 0; i < n; i++) {
        uint32_t id = op_id(&ops[i]);
        ops[i].result = (int)id;
        if (ops[i].is_retry)
            __atomic_fetch_add(&tally->retries, 1, __ATOMIC_SEQ_CST);
        if (how.by_token && ops[i].is_retry && tally->token[id] == ops[i].token)
            continue;
        __atomic_fetch_add(&tally->applied[id], 1, __ATOMIC_SEQ_CST);
        tally->token[id] = ops[i].token;
    }
    __atomic_sub_fetch(&tally->at_work, 1, __ATOMIC_SEQ_CST);
    if (how.stall_committed)
        stall_here();
}

/* In a child: queues op `id` (or applies it alone when it cannot) and
 * exits APPLIED_BY_QUEUE with its own result back, or APPLIED_ALONE. */
_Noreturn static void
submit_op(const char *path, uint32_t id)
{
    struct sess_combiner *c = sess__combiner_open(path);
    int result = -1;

    if (!c)
        _exit(2);
    if (!sess__combine(c, &id, sizeof id, count, NULL, &result)) {
        __atomic_fetch_add(&tally->applied[id], 1, __ATOMIC_SEQ_CST);
        _exit(APPLIED_ALONE);
    }
    sess__combiner_close(c);
    _exit(result == (int)id ? APPLIED_BY_QUEUE : 1);
}

static pid_t
submit_op_in_child(const char *path, uint32_t id, struct behaviour b)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        die_with_parent();
        how = b;
        submit_op(path, id);
    }
    return pid;
}

static struct behaviour
stalling(int stalled, int resume)
{
    return (struct behaviour){.stalled_fd = stalled, .resume_fd = resume};
}

static const struct behaviour plain = {.stalled_fd = -1, .resume_fd = -1};

static int
tally_setup(void **ctx)
{
    setup(ctx);
    tally = mmap(NULL, sizeof *tally, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(tally != MAP_FAILED);
    return 0;
}

static int
tally_teardown(void **ctx)
{
    munmap(tally, sizeof *tally);
    return teardown(ctx);
}

static void
assert_each_applied_once(uint32_t from, uint32_t to)
{
    for (uint32_t id = from; id < to; id++) {
        if (tally->applied[id] != 1)
            fail_msg("op %u applied %d times", id, tally->applied[id]);
    }
}

/* A combiner stopped inside its batch, far longer than the waiters' sleeps
 * between looks, still holds its lock: it is waited for, not replaced, and
 * once it goes on every op is applied once. The old queue let a 10 s lease
 * decide; nothing here goes by time. */
static void
a_stopped_combiner_is_waited_for_not_replaced(void **ctx)
{
    enum { STOPPED_S = 3 };
    char path[PATH_MAX], c;
    int stalled[2], resume[2], status;
    pid_t a, others[3];
    int i;

    tmpdir_path(*ctx, "queue", path);
    assert_int_equal(pipe(stalled), 0);
    assert_int_equal(pipe(resume), 0);
    a = submit_op_in_child(path, 0, stalling(stalled[1], resume[0]));
    assert_int_equal(read(stalled[0], &c, 1), 1);
    assert_int_equal(kill(a, SIGSTOP), 0);
    for (i = 0; i < 3; i++)
        others[i] = submit_op_in_child(path, (uint32_t)i + 1, plain);
    sleep(STOPPED_S);

    for (i = 0; i < 3; i++)
        assert_int_equal(waitpid(others[i], &status, WNOHANG), 0);
    assert_int_equal(tally->batches, 1);
    for (i = 0; i < 4; i++)
        assert_int_equal(tally->applied[i], 0);

    assert_int_equal(write(resume[1], "g", 1), 1);
    assert_int_equal(kill(a, SIGCONT), 0);
    assert_int_equal(exit_code(a), APPLIED_BY_QUEUE);
    for (i = 0; i < 3; i++)
        assert_int_equal(exit_code(others[i]), APPLIED_BY_QUEUE);
    assert_each_applied_once(0, 4);
    assert_int_equal(tally->batches, 2);
    assert_int_equal(tally->retries, 0);
    assert_int_equal(tally->most_at_work, 1);
    close(stalled[0]), close(stalled[1]), close(resume[0]), close(resume[1]);
}

/* Killed before its commit, the combiner applied nothing: the next one
 * applies its batch (the dead process's op included) with the waiters'. */
static void
a_combiner_killed_mid_apply_loses_nothing(void **ctx)
{
    enum { WAITERS = 5 };
    char path[PATH_MAX], c;
    int stalled[2], i;
    pid_t a, others[WAITERS];

    tmpdir_path(*ctx, "queue", path);
    assert_int_equal(pipe(stalled), 0);
    a = submit_op_in_child(path, 0, stalling(stalled[1], -1));
    assert_int_equal(read(stalled[0], &c, 1), 1);
    for (i = 0; i < WAITERS; i++)
        others[i] = submit_op_in_child(path, (uint32_t)i + 1, plain);
    usleep(100 * 1000);
    assert_int_equal(kill(a, SIGKILL), 0);
    assert_int_equal(exit_code(a), 128 + SIGKILL);
    for (i = 0; i < WAITERS; i++)
        assert_int_equal(exit_code(others[i]), APPLIED_BY_QUEUE);
    assert_each_applied_once(0, WAITERS + 1);
    assert_int_equal(tally->retries, 1);
    close(stalled[0]), close(stalled[1]);
}

/* Killed after its commit and before publishing, the combiner leaves its
 * batch to be applied again: with is_retry set and the token it had, so an
 * apply function that keeps tokens applies it once. */
static void
a_committed_batch_comes_back_with_its_tokens(void **ctx)
{
    struct behaviour by_token = {.stalled_fd = -1, .resume_fd = -1, .by_token = true};
    struct behaviour dies = by_token;
    char path[PATH_MAX], c;
    int stalled[2];
    uint64_t token;
    pid_t a, b;

    tmpdir_path(*ctx, "queue", path);
    assert_int_equal(pipe(stalled), 0);
    dies.stalled_fd = stalled[1];
    dies.stall_committed = true;
    a = submit_op_in_child(path, 0, dies);
    assert_int_equal(read(stalled[0], &c, 1), 1);
    assert_int_equal(tally->applied[0], 1);
    token = tally->token[0];
    assert_true(token != 0);
    b = submit_op_in_child(path, 1, by_token);
    usleep(100 * 1000);
    assert_int_equal(kill(a, SIGKILL), 0);
    assert_int_equal(exit_code(a), 128 + SIGKILL);
    assert_int_equal(exit_code(b), APPLIED_BY_QUEUE);

    assert_int_equal(tally->retries, 1);
    assert_true(tally->token[0] == token);
    assert_true(tally->token[1] != token);
    assert_each_applied_once(0, 2);
    close(stalled[0]), close(stalled[1]);
}

/* One namespace's processes after `skip_pids` pids were used and let go:
 * `workers` processes that each queue `rounds` ops. Runs as the init (pid
 * 1) of a fresh PID namespace, so its exit would kill them all. */
_Noreturn static void
namespace_init(const char *path, int ns, int skip_pids, int workers, int rounds)
{
    pid_t pids[16];
    bool ok = true;
    int w, status;

    for (w = 0; w < skip_pids; w++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
            _exit(5);
    }
    for (w = 0; w < workers; w++) {
        pids[w] = fork();
        if (pids[w] < 0)
            _exit(5);
        if (pids[w] == 0) {
            for (int r = 0; r < rounds; r++) {
                pid_t op = fork();
                if (op < 0)
                    _exit(5);
                if (op == 0)
                    submit_op(path, (uint32_t)((ns * workers + w) * rounds + r));
                if (waitpid(op, &status, 0) != op || !WIFEXITED(status) ||
                    (WEXITSTATUS(status) != APPLIED_BY_QUEUE &&
                     WEXITSTATUS(status) != APPLIED_ALONE))
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (w = 0; w < workers; w++)
        ok &= waitpid(pids[w], &status, 0) == pids[w] && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0;
    _exit(ok ? 0 : 1);
}

/* Two PID namespaces with the same pids for different processes, and the
 * pids of one absent from the other: pids say nothing about who lives. With
 * each batch slower than a waiter's sleep, every op is still applied once,
 * by one combiner at a time. */
static void
ops_from_two_pid_namespaces_are_applied_once_each(void **ctx)
{
    enum { WORKERS = 6, ROUNDS = 12, SKIPPED_PIDS = 40 };
    char path[PATH_MAX];
    pid_t roots[2];
    int ns, code[2];

    tmpdir_path(*ctx, "queue", path);
    for (ns = 0; ns < 2; ns++) {
        roots[ns] = fork();
        assert_true(roots[ns] >= 0);
        if (roots[ns] == 0) {
            pid_t init;
            int status;
            die_with_parent();
            if (unshare(CLONE_NEWPID) != 0)
                _exit(errno == EPERM || errno == EINVAL ? 77 : 6);
            how.delay_ms = 20;
            init = fork();
            if (init == 0) {
                /* The namespace ends with its init. */
                die_with_parent();
                namespace_init(path, ns, ns == 0 ? 0 : SKIPPED_PIDS, WORKERS, ROUNDS);
            }
            if (init < 0 || waitpid(init, &status, 0) != init)
                _exit(7);
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 8);
        }
    }
    for (ns = 0; ns < 2; ns++)
        code[ns] = exit_code(roots[ns]);
    if (code[0] == 77 || code[1] == 77)
        skip();
    assert_int_equal(code[0], 0);
    assert_int_equal(code[1], 0);
    assert_each_applied_once(0, 2 * WORKERS * ROUNDS);
    assert_int_equal(tally->most_at_work, 1);
    assert_int_equal(tally->retries, 0);
}

/* Forks `n` children that queue ops first..first+n-1. */
static void
submit_wave(const char *path, uint32_t first, int n, pid_t *pids)
{
    for (int i = 0; i < n; i++)
        pids[i] = submit_op_in_child(path, first + (uint32_t)i, plain);
}

/* Reaps, among `pids`, the `n` children that applied their op alone (their
 * pids become 0); fails after 10 s. The others are still queued. */
static void
reap_alone(pid_t *pids, int count_, int n)
{
    struct timespec start, now;
    int i, status, reaped = 0;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (reaped < n) {
        for (i = 0; i < count_; i++) {
            if (pids[i] == 0 || waitpid(pids[i], &status, WNOHANG) != pids[i])
                continue;
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), APPLIED_ALONE);
            pids[i] = 0;
            reaped++;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 10)
            fail_msg("%d of %d callers came back alone", reaped, n);
        usleep(5 * 1000);
    }
}

/* More callers than slots, while a combiner holds the queue: each slot has
 * one owner and the rest apply their ops alone. Slots of owners killed
 * while queued are skipped until their ops are applied, then reclaimed,
 * each by one of many callers at once. Every op is applied once. */
static void
a_full_queue_gives_each_slot_to_one_caller(void **ctx)
{
    enum { WAVE = 120, KILLED = 20, QUEUED = QUEUE_SLOTS - 1 };
    static pid_t wave1[WAVE], wave2[WAVE], wave3[WAVE];
    char path[PATH_MAX], c;
    int stalled[2], resume[2], i, killed = 0;
    pid_t a;

    tmpdir_path(*ctx, "queue", path);
    assert_int_equal(pipe(stalled), 0);
    assert_int_equal(pipe(resume), 0);

    /* Wave 1: `a` holds one slot inside its batch, 63 queue. */
    a = submit_op_in_child(path, 0, stalling(stalled[1], resume[0]));
    assert_int_equal(read(stalled[0], &c, 1), 1);
    submit_wave(path, 1, WAVE, wave1);
    reap_alone(wave1, WAVE, WAVE - QUEUED);
    for (i = 0; i < WAVE && killed < KILLED; i++) {
        if (wave1[i] == 0)
            continue;
        assert_int_equal(kill(wave1[i], SIGKILL), 0);
        assert_int_equal(exit_code(wave1[i]), 128 + SIGKILL);
        wave1[i] = 0;
        killed++;
    }
    /* Wave 2: the dead owners' ops are still queued, so no room. */
    submit_wave(path, 1 + WAVE, WAVE, wave2);
    reap_alone(wave2, WAVE, WAVE);
    assert_int_equal(write(resume[1], "g", 1), 1);
    assert_int_equal(exit_code(a), APPLIED_BY_QUEUE);
    for (i = 0; i < WAVE; i++)
        if (wave1[i])
            assert_int_equal(exit_code(wave1[i]), APPLIED_BY_QUEUE);

    /* Wave 3: the dead owners' slots are free again, for one caller each. */
    a = submit_op_in_child(path, 1 + 2 * WAVE, stalling(stalled[1], resume[0]));
    assert_int_equal(read(stalled[0], &c, 1), 1);
    submit_wave(path, 2 + 2 * WAVE, WAVE, wave3);
    reap_alone(wave3, WAVE, WAVE - QUEUED);
    assert_int_equal(write(resume[1], "g", 1), 1);
    assert_int_equal(exit_code(a), APPLIED_BY_QUEUE);
    for (i = 0; i < WAVE; i++)
        if (wave3[i])
            assert_int_equal(exit_code(wave3[i]), APPLIED_BY_QUEUE);

    assert_each_applied_once(0, 2 + 3 * WAVE);
    assert_int_equal(tally->retries, 0);
    close(stalled[0]), close(stalled[1]), close(resume[0]), close(resume[1]);
}

static void
a_queue_of_the_previous_layout_is_not_used(void **ctx)
{
    const uint64_t version1 = 0x66637331ULL << 32 | (uint64_t)QUEUE_SLOTS << 16 | 1U;
    char path[PATH_MAX];
    struct sess_combiner *c;
    FILE *f;

    tmpdir_path(*ctx, "queue", path);
    c = sess__combiner_open(path);
    assert_non_null(c);
    sess__combiner_close(c);
    f = fopen(path, "r+");
    assert_non_null(f);
    assert_int_equal(fwrite(&version1, sizeof version1, 1, f), 1);
    fclose(f);
    assert_null(sess__combiner_open(path));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(arrivals_during_a_commit_share_the_next_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_killed_combiners_batch_is_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(an_op_too_large_is_left_to_its_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(a_file_of_another_layout_is_not_used, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_updates_of_one_session_all_land, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_record_changed_since_it_was_read_is_merged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_stopped_combiner_is_waited_for_not_replaced, tally_setup,
                                        tally_teardown),
        cmocka_unit_test_setup_teardown(a_combiner_killed_mid_apply_loses_nothing, tally_setup,
                                        tally_teardown),
        cmocka_unit_test_setup_teardown(a_committed_batch_comes_back_with_its_tokens, tally_setup,
                                        tally_teardown),
        cmocka_unit_test_setup_teardown(ops_from_two_pid_namespaces_are_applied_once_each,
                                        tally_setup, tally_teardown),
        cmocka_unit_test_setup_teardown(a_full_queue_gives_each_slot_to_one_caller, tally_setup,
                                        tally_teardown),
        cmocka_unit_test_setup_teardown(a_queue_of_the_previous_layout_is_not_used, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
