/* Updates in the Redis store (store/redis/sessions.c) against a real
 * redis-server (redis_fixture.h): a patch laid over the record as stored,
 * a write that lost to a concurrent one and starts again, a merge that
 * refuses, and counters from several processes that lose no increment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sodium.h>

#include "redis_fixture.h"

/* ------------------------------------------------------------------------
 * update: WATCH, merge here, MULTI/EXEC
 * ------------------------------------------------------------------------ */

/* Adds one to data.counter as a route would: reads it, then writes it back
 * in a patch that read it, again from the start whenever another writer
 * changed it in between (SESS_ECONFLICT). */
static enum sess_err
increment(struct sess_store *st, struct sess_str id)
{
    struct sess_record rec;
    struct sess_buf buf = {0};
    struct sess_patch p;
    enum sess_err err;
    json_t *n;

    do {
        err = st->ops->get(st, id, now_ms(), &rec, &buf);
        if (err != SESS_OK)
            break;
        p = (struct sess_patch){
            .expires_ms = now_ms() + 10 * MIN_MS, .set = json_object(), .del = json_object()};
        p.read = json_loadb(rec.data.ptr, rec.data.len, 0, NULL);
        n = json_object_get(p.read, "counter");
        if (!p.set || !p.del || !json_is_integer(n) ||
            json_object_set_new(p.set, "counter", json_integer(json_integer_value(n) + 1)) != 0)
            err = SESS_ENOMEM;
        else
            err = st->ops->update(st, id, now_ms(), &p);
        sess__patch_free(&p);
    } while (err == SESS_ECONFLICT);
    sess__buf_free(&buf);
    return err;
}

/* The calls Redis has served of `command` since the last CONFIG RESETSTAT. */
static long long
command_calls(struct fx *f, const char *command)
{
    redisReply *r = direct(f, "INFO commandstats");
    char field[64];
    const char *at;
    long long calls = 0;

    snprintf(field, sizeof field, "cmdstat_%s:calls=", command);
    if (r->type == REDIS_REPLY_STRING) {
        at = strstr(r->str, field);
        if (at)
            calls = strtoll(at + strlen(field), NULL, 10);
    }
    freeReplyObject(r);
    return calls;
}

/* The fixture whose direct connection writes ID1 behind the store's back,
 * from inside the store's next update: the first allocation jansson makes
 * once armed is the one that parses the record the update has just read
 * under WATCH, so the write lands between its read and its EXEC. */
static struct fx *write_behind;

static void *
malloc_writing_behind(size_t size)
{
    struct fx *f = write_behind;

    if (f) {
        write_behind = NULL;
        direct_ok(f, "SET sess:%s %s EX 60", ID1,
                  "{\"_fcgi\":{\"created\":1,\"deadline\":0},\"other\":7}");
    }
    return malloc(size);
}

static void
test_update_merges_into_the_current_record_and_moves_the_ttl(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":2}", "{\"a\":1}", now_ms() + 20 * MIN_MS);
    long long pttl;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, now_ms() + 600 * MIN_MS, "carol",
           "{\"user\":{\"username\":\"carol\"},\"a\":1}");
    /* What it read held: the merge saw the stored record. */
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_OK);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.data, "{\"user\":{\"username\":\"carol\"},\"a\":1,\"b\":2}");
    assert_str_view(f->rec.owner, "carol");
    assert_int_equal(f->rec.created_ms, 1795370400000LL);
    pttl = direct_int(f, "PTTL sess:" ID1);
    assert_true(pttl > 20 * MIN_MS - 2000 && pttl <= 20 * MIN_MS);
    sess__patch_free(&p);
}

static void
test_update_of_absent_record_is_not_found_and_not_recreated(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":0}", NULL, now_ms() + MIN_MS);
    struct sess_patch other = patch("{\"c\":0}", NULL, now_ms() + MIN_MS);

    NEEDS_SERVER();
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_ENOTFOUND);
    assert_false(was_merged(&p));
    assert_int_equal(direct_int(f, "EXISTS sess:" ID1), 0);
    /* No WATCH left behind to spoil the next transaction. */
    create(f, ID2, now_ms() + MIN_MS, 0, "", "{}");
    assert_int_equal(update(f, ID2, now_ms(), &other), SESS_OK);
    sess__patch_free(&p);
    sess__patch_free(&other);
}

static void
test_update_past_the_deadline_is_not_found(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":0}", NULL, now_ms() + MIN_MS);
    int64_t now = now_ms();

    NEEDS_SERVER();
    create(f, ID1, now + 30 * MIN_MS, now + MIN_MS, "", "{}");
    assert_int_equal(update(f, ID1, now + MIN_MS, &p), SESS_ENOTFOUND);
    assert_false(was_merged(&p));
    sess__patch_free(&p);
}

/* A merge that refuses (here: what the request read has changed) writes
 * nothing. */
static void
test_update_aborts_when_the_merge_fails(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"b\":2}", "{\"a\":0}", now_ms() + MIN_MS);

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{\"a\":1}");
    assert_int_equal(update(f, ID1, now_ms(), &p), SESS_ECONFLICT);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.data, "{\"a\":1}");
    sess__patch_free(&p);
}

static void
test_update_starts_again_after_a_concurrent_write(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_patch p = patch("{\"mine\":1}", NULL, now_ms() + MIN_MS);
    enum sess_err err;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + MIN_MS, 0, "", "{\"a\":1}");
    direct_ok(f, "CONFIG RESETSTAT");
    write_behind = f;
    json_set_alloc_funcs(malloc_writing_behind, free);
    err = update(f, ID1, now_ms(), &p);
    json_set_alloc_funcs(malloc, free);
    assert_int_equal(err, SESS_OK);
    assert_null(write_behind);
    /* The first write lost to the concurrent one (its EXEC was refused),
     * and the patch was laid again over what that one wrote. */
    assert_int_equal(command_calls(f, "watch"), 2);
    assert_int_equal(get(f, ID1), SESS_OK);
    assert_str_view(f->rec.data, "{\"other\":7,\"mine\":1}");
    sess__patch_free(&p);
}

static void
test_concurrent_updates_from_processes_lose_nothing(void **ctx)
{
    struct fx *f = *ctx;
    enum { PROCS = 4, EACH = 50 };
    pid_t pids[PROCS];
    int i, status;
    json_t *v;

    NEEDS_SERVER();
    create(f, ID1, now_ms() + 10 * MIN_MS, 0, "", "{\"counter\":0}");
    for (i = 0; i < PROCS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct sess_store *st;
            char errmsg[SESS_ERRMSG_MAX];
            int n, bad = 0;

            /* A store of its own: one connection per process. */
            if (open_url(f, f->url, &st, errmsg, sizeof errmsg) != SESS_OK)
                _exit(2);
            for (n = 0; n < EACH; n++)
                if (increment(st, SESS_STR_LIT(ID1)) != SESS_OK)
                    bad++;
            sess__store_close(st);
            _exit(bad ? 1 : 0);
        }
    }
    for (i = 0; i < PROCS; i++) {
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    v = direct_json(f, "sess:" ID1);
    assert_int_equal(json_integer_value(json_object_get(v, "counter")), PROCS * EACH);
    json_decref(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_update_merges_into_the_current_record_and_moves_the_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_of_absent_record_is_not_found_and_not_recreated,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_past_the_deadline_is_not_found, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_update_aborts_when_the_merge_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_starts_again_after_a_concurrent_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_updates_from_processes_lose_nothing, setup,
                                        teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
