/* Group commit across processes (combine.c), with real processes: what
 * arrives during a commit goes in the next batch, a killed combiner's batch
 * is taken over, results reach their owners; and through the LMDB store,
 * updates of several processes to one session all land, and one laid over
 * the data its request holds never hides a change made since the read. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

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

/* A child that queues one op and exits 0 if its own result came back. */
static pid_t
submit_in_child(const char *path, char op, int stall_fd, int go_fd)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct sess_combiner *c = sess_combiner_open(path);
        int result = 0;
        stalled_fd = stall_fd;
        resume_fd = go_fd;
        if (!c || !sess_combine(c, &op, 1, record, NULL, &result))
            _exit(2);
        sess_combiner_close(c);
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
    c = sess_combiner_open(path);
    assert_non_null(c);
    assert_int_equal(sess_combine(c, big, sizeof big, record, NULL, &result), 0);
    assert_int_equal(sess_combine(c, big, sizeof big - 1, record, NULL, &result), 1);
    assert_int_equal(result, 0);
    assert_int_equal(journal->batches, 1);
    sess_combiner_close(c);
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
    assert_null(sess_combiner_open(path));
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
    assert_int_equal(sess_store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    rec.data = SESS_STR_LIT("{\"cookie\":{}}");
    assert_int_equal(st->ops->create(st, SESS_STR_LIT(SESSION_ID), &rec), SESS_OK);
    sess_store_close(st);

    for (p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] > 0)
            continue;
        if (sess_store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg) != SESS_OK)
            _exit(2);
        snprintf(key, sizeof key, "p%d", p);
        for (r = 1; r <= ROUNDS; r++) {
            struct sess_patch patch = {
                .expires_ms = T0 + 3600000, .set = json_object(), .del = json_object()};
            json_object_set_new(patch.set, key, json_integer(r));
            if (st->ops->update(st, SESS_STR_LIT(SESSION_ID), T0, sess_patch_merge, &patch) !=
                SESS_OK)
                _exit(3);
            sess_patch_free(&patch);
        }
        sess_store_close(st);
        _exit(0);
    }
    for (p = 0; p < PROCS; p++)
        assert_int_equal(exit_code(pids[p]), 0);

    assert_int_equal(sess_store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    assert_int_equal(st->ops->get(st, SESS_STR_LIT(SESSION_ID), T0, &rec, &buf), SESS_OK);
    data = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
    assert_non_null(data);
    for (p = 0; p < PROCS; p++) {
        snprintf(key, sizeof key, "p%d", p);
        assert_int_equal(json_integer_value(json_object_get(data, key)), ROUNDS);
    }
    json_decref(data);
    sess_buf_free(&buf);
    sess_store_close(st);
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
    assert_int_equal(sess_store_lmdb_open(&st, dir, &cfg, &secrets, errmsg, sizeof errmsg),
                     SESS_OK);
    rec.data = SESS_STR_LIT("{\"cookie\":{},\"a\":1}");
    assert_int_equal(st->ops->create(st, SESS_STR_LIT(SESSION_ID), &rec), SESS_OK);

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
                if (sess_store_lmdb_open(&other, dir, &cfg, &secrets, errmsg, sizeof errmsg) ||
                    other->ops->update(other, SESS_STR_LIT(SESSION_ID), T0, sess_patch_merge,
                                       &theirs))
                    _exit(1);
                _exit(0);
            }
            assert_int_equal(exit_code(pid), 0);
        }
        assert_int_equal(
            st->ops->update(st, SESS_STR_LIT(SESSION_ID), T0, sess_patch_merge, &patch), SESS_OK);
        sess_patch_free(&patch);
        json_decref(whole);

        assert_int_equal(st->ops->get(st, SESS_STR_LIT(SESSION_ID), T0, &rec, &buf), SESS_OK);
        data = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(data, "a")), 1);
        assert_int_equal(json_integer_value(json_object_get(data, "mine")), round);
        assert_true(json_is_object(json_object_get(data, "cookie")));
        assert_int_equal(json_is_true(json_object_get(data, "theirs")), round == 1);
        json_decref(data);
    }
    sess_buf_free(&buf);
    sess_store_close(st);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
