/* The LMDB store's side of group commit (lib/store/lmdb/sessions.c): the batch
 * a combiner applies for other processes. Each update is checked against
 * the state the earlier ones of the batch left, the oldest request goes
 * first, and a batch that a dead combiner had committed, handed over again
 * (combine.h: is_retry, the same token), is not applied twice. The queued
 * form and the apply function are called as the store calls them, through
 * its private header. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "lmdb_store.h"
#include "tmpfiles.h"

#define SECRET "batch test secret, thirty-two bytes or more"
#define ID     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define T0     1795370400000LL
#define HOUR   3600000LL

struct fx {
    struct tmpdir dir;
    struct sess_secrets secrets;
    struct sess_store *st;
    struct lmdb_store *ls;
    unsigned char payload[4][SESS_COMBINE_PAYLOAD_MAX];
    struct sess_combine_op ops[4];
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct sess_config cfg = {.encrypt = SESS_ENCRYPT_AUTO,
                              .lmdb_map_size_bytes = 16u << 20,
                              .lmdb_sync = SESS_SYNC_NONE};
    char dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];
    struct sess_record rec = {.expires_ms = T0 + HOUR, .created_ms = T0};

    assert_non_null(f);
    assert_int_equal(tmpdir_make(&f->dir), 0);
    assert_int_equal(sess_secrets_add(&f->secrets, SESS_STR_LIT(SECRET)), SESS_OK);
    if (sess__store_lmdb_open(&f->st, tmpdir_path(&f->dir, "s", dir), &cfg, &f->secrets, errmsg,
                              sizeof errmsg) != SESS_OK)
        fail_msg("open: %s", errmsg);
    f->ls = (struct lmdb_store *)f->st;
    rec.data = SESS_STR_LIT("{\"n\":1}");
    assert_int_equal(f->st->ops->create(f->st, SESS_STR_LIT(ID), T0, &rec), SESS_OK);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    sess__store_close(f->st);
    sess_secrets_free(&f->secrets);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

/* Queues, as a request at `now_ms` would, "n was `read`, make it `set`",
 * into op `i` with `token`. */
static void
queue_update(struct fx *f, size_t i, int64_t now_ms, json_int_t read, json_int_t set,
             uint64_t token)
{
    struct sess_patch p = {.expires_ms = T0 + HOUR,
                           .set = json_pack("{sI}", "n", set),
                           .del = json_object(),
                           .read = json_pack("{sI}", "n", read)};

    assert_true(lmdb__batch_encode(f->ls, SESS_STR_LIT(ID), now_ms, &p));
    memcpy(f->payload[i], f->ls->val.ptr, f->ls->val.len);
    f->ops[i] =
        (struct sess_combine_op){.payload = f->payload[i], .len = f->ls->val.len, .token = token};
    sess__patch_free(&p);
}

static json_int_t
stored_n(struct fx *f)
{
    struct sess_record rec;
    struct sess_buf buf = {0};
    json_error_t jerr;
    json_t *data;
    json_int_t n;

    assert_int_equal(f->st->ops->get(f->st, SESS_STR_LIT(ID), T0, &rec, &buf), SESS_OK);
    data = json_loadb(rec.data.ptr, rec.data.len, 0, &jerr);
    n = json_integer_value(json_object_get(data, "n"));
    json_decref(data);
    sess__buf_free(&buf);
    return n;
}

static void
test_later_update_of_a_batch_sees_the_earlier_ones(void **state)
{
    struct fx *f = *state;

    /* Two requests read n = 1; the first in the batch wins, the other
     * conflicts and runs again (it is not laid over the first). */
    queue_update(f, 0, T0 + 1, 1, 2, 11);
    queue_update(f, 1, T0 + 2, 1, 2, 12);
    lmdb__batch_apply(f->ls, f->ops, 2);
    assert_int_equal(f->ops[0].result, SESS_OK);
    assert_int_equal(f->ops[1].result, SESS_ECONFLICT);
    assert_int_equal(stored_n(f), 2);
}

static void
test_oldest_request_of_a_batch_goes_first(void **state)
{
    struct fx *f = *state;

    queue_update(f, 0, T0 + 50, 1, 5, 21);
    queue_update(f, 1, T0 + 10, 1, 7, 22); /* older: it has lost before */
    lmdb__batch_apply(f->ls, f->ops, 2);
    assert_int_equal(f->ops[1].result, SESS_OK);
    assert_int_equal(f->ops[0].result, SESS_ECONFLICT);
    assert_int_equal(stored_n(f), 7);
}

static void
test_batch_handed_over_after_its_commit_is_not_applied_again(void **state)
{
    struct fx *f = *state;

    queue_update(f, 0, T0 + 1, 1, 2, 31);
    queue_update(f, 1, T0 + 2, 5, 6, 32); /* conflicts: its result is kept too */
    lmdb__batch_apply(f->ls, f->ops, 2);
    assert_int_equal(f->ops[0].result, SESS_OK);
    assert_int_equal(f->ops[1].result, SESS_ECONFLICT);
    /* Its combiner died before publishing: the next one gets it again. */
    f->ops[0].is_retry = f->ops[1].is_retry = 1;
    f->ops[0].result = f->ops[1].result = -99;
    lmdb__batch_apply(f->ls, f->ops, 2);
    assert_int_equal(f->ops[0].result, SESS_OK); /* not a conflict with itself */
    assert_int_equal(f->ops[1].result, SESS_ECONFLICT);
    assert_int_equal(stored_n(f), 2);
    /* And once more, behind a combiner that died again. */
    lmdb__batch_apply(f->ls, f->ops, 2);
    assert_int_equal(f->ops[0].result, SESS_OK);
    assert_int_equal(stored_n(f), 2);
}

static void
test_retried_update_that_was_never_committed_is_applied(void **state)
{
    struct fx *f = *state;

    queue_update(f, 0, T0 + 1, 1, 2, 41);
    f->ops[0].is_retry = 1; /* its combiner died before the commit */
    lmdb__batch_apply(f->ls, f->ops, 1);
    assert_int_equal(f->ops[0].result, SESS_OK);
    assert_int_equal(stored_n(f), 2);
}

static void
test_batch_after_the_retried_one_keeps_its_results(void **state)
{
    struct fx *f = *state;

    queue_update(f, 0, T0 + 1, 1, 2, 51);
    lmdb__batch_apply(f->ls, f->ops, 1);
    /* Handed over, together with a new update: both recorded again, so a
     * third combiner still knows the first was done. */
    f->ops[0].is_retry = 1;
    queue_update(f, 1, T0 + 3, 2, 3, 52);
    lmdb__batch_apply(f->ls, f->ops, 2);
    assert_int_equal(f->ops[0].result, SESS_OK);
    assert_int_equal(f->ops[1].result, SESS_OK);
    f->ops[1].is_retry = 1;
    lmdb__batch_apply(f->ls, f->ops, 2);
    assert_int_equal(f->ops[0].result, SESS_OK);
    assert_int_equal(f->ops[1].result, SESS_OK);
    assert_int_equal(stored_n(f), 3);
}

/* Adds one to "n" `count` times through its own store handle, as a route
 * process would: read, then write what it read plus one, again on a
 * conflict. */
static int
count_up(const char *dir, const struct sess_secrets *secrets, int count)
{
    struct sess_config cfg = {.encrypt = SESS_ENCRYPT_AUTO,
                              .lmdb_map_size_bytes = 16u << 20,
                              .lmdb_sync = SESS_SYNC_META};
    char errmsg[SESS_ERRMSG_MAX];
    struct sess_store *st;
    struct sess_buf buf = {0};
    int done = 0, status = 0;

    if (sess__store_lmdb_open(&st, dir, &cfg, secrets, errmsg, sizeof errmsg) != SESS_OK) {
        fprintf(stderr, "# open: %s\n", errmsg);
        return 1;
    }
    while (done < count && status == 0) {
        struct sess_record rec;
        json_error_t jerr;
        json_t *data;
        json_int_t n;
        struct sess_patch p = {.expires_ms = T0 + HOUR, .del = json_object()};
        enum sess_err err;

        err = st->ops->get(st, SESS_STR_LIT(ID), T0, &rec, &buf);
        if (err != SESS_OK) {
            fprintf(stderr, "# get: %s: %s\n", sess_strerror(err), st->errmsg);
            status = 2;
        }
        data = status ? NULL : json_loadb(rec.data.ptr, rec.data.len, 0, &jerr);
        n = json_integer_value(json_object_get(data, "n"));
        json_decref(data);
        p.read = json_pack("{sI}", "n", n);
        p.set = json_pack("{sI}", "n", n + 1);
        err = status ? SESS_OK : st->ops->update(st, SESS_STR_LIT(ID), T0, &p);
        if (err == SESS_OK)
            done++;
        else if (err != SESS_ECONFLICT) {
            fprintf(stderr, "# update: %s: %s\n", sess_strerror(err), st->errmsg);
            status = 3;
        }
        sess__patch_free(&p);
    }
    sess__buf_free(&buf);
    sess__store_close(st);
    return status;
}

#define WORKERS 3
#define COUNTS  40

/* Runs WORKERS counters and waits for them; exits 0 when they all did. */
static void
run_counters(const char *dir, const struct sess_secrets *secrets)
{
    pid_t pids[WORKERS];
    int i, status, failed = 0;

    for (i = 0; i < WORKERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            _exit(count_up(dir, secrets, COUNTS));
    }
    for (i = 0; i < WORKERS; i++)
        failed |= pids[i] < 0 || waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
                  WEXITSTATUS(status) != 0;
    _exit(failed);
}

/* A process that starts a PID namespace of its own and runs the counters
 * in it, under a first process that is the namespace's init (its exit
 * would end the others). */
static void
namespace_of_counters(const char *dir, const struct sess_secrets *secrets)
{
    pid_t init;
    int status;

    if (unshare(CLONE_NEWPID) != 0)
        _exit(77);
    init = fork();
    if (init == 0)
        run_counters(dir, secrets);
    _exit(init > 0 && waitpid(init, &status, 0) == init && WIFEXITED(status) ? WEXITSTATUS(status)
                                                                             : 1);
}

/* Counters in this PID namespace and in a new one share the store: the
 * queue sees processes it cannot signal and pids it cannot tell apart from
 * its own namespace's. (Two new namespaces would give their processes the
 * same small pids, which LMDB itself refuses: its reader table is keyed by
 * pid, and such a reader gets EAGAIN, a 503, never a lost write.) */
static void
test_writers_in_two_pid_namespaces_lose_nothing(void **state)
{
    struct fx *f = *state;
    char dir[PATH_MAX];
    pid_t ns, here;
    int status, ns_status;

    tmpdir_path(&f->dir, "s", dir);
    ns = fork();
    assert_true(ns >= 0);
    if (ns == 0)
        namespace_of_counters(dir, &f->secrets);
    here = fork();
    assert_true(here >= 0);
    if (here == 0)
        run_counters(dir, &f->secrets);
    assert_int_equal(waitpid(here, &status, 0), here);
    assert_int_equal(waitpid(ns, &ns_status, 0), ns);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(WIFEXITED(ns_status));
    if (WEXITSTATUS(ns_status) == 77)
        skip(); /* no CLONE_NEWPID here (not root, or a container) */
    assert_int_equal(WEXITSTATUS(ns_status), 0);
    assert_int_equal(stored_n(f), 1 + 2 * WORKERS * COUNTS);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_later_update_of_a_batch_sees_the_earlier_ones),
        T(test_oldest_request_of_a_batch_goes_first),
        T(test_batch_handed_over_after_its_commit_is_not_applied_again),
        T(test_retried_update_that_was_never_committed_is_applied),
        T(test_batch_after_the_retried_one_keeps_its_results),
        T(test_writers_in_two_pid_namespaces_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
