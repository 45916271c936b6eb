/* Accounts (users.c) and administration (admin.c) over a real LMDB store in
 * a scratch directory, with an app assembled by hand and a test clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "internal.h"
#include "store.h"
#include "tmpfiles.h"

#define SECRET "users test secret, thirty-two bytes or more"
#define T0     1795370400000LL
#define MIN_MS 60000LL
#define ID1    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID2    "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define ID3    "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"

static int64_t test_now_ms = T0;

static int64_t
test_clock(void)
{
    return test_now_ms;
}

struct fx {
    struct tmpdir dir;
    struct sess_app *app;
};

static int
setup(void **ctx)
{
    struct fx *f = calloc(1, sizeof *f);
    char store_dir[PATH_MAX], errmsg[SESS_ERRMSG_MAX];

    assert_non_null(f);
    assert_int_equal(tmpdir_make(&f->dir), 0);
    tmpdir_path(&f->dir, "sessions", store_dir);
    f->app = calloc(1, sizeof *f->app);
    assert_non_null(f->app);
    f->app->cfg.encrypt = SESS_ENCRYPT_AUTO;
    f->app->cfg.lmdb_map_size_bytes = 8u << 20;
    f->app->cfg.lmdb_sync = SESS_SYNC_NONE;
    f->app->clock = test_clock;
    test_now_ms = T0;
    assert_int_equal(sess_secrets_add(&f->app->secrets, SESS_STR_LIT(SECRET)), SESS_OK);
    if (sess__store_lmdb_open(&f->app->store, store_dir, &f->app->cfg, &f->app->secrets, errmsg,
                              sizeof errmsg) != SESS_OK)
        fail_msg("open: %s", errmsg);
    *ctx = f;
    return 0;
}

static int
teardown(void **ctx)
{
    struct fx *f = *ctx;

    sess__store_close(f->app->store);
    sess_secrets_free(&f->app->secrets);
    free(f->app);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

static void
add_user(struct fx *f, const char *name, const char *role, const char *password)
{
    enum sess_err err = sess_user_add(f->app, name, role, password, strlen(password), true);
    if (err != SESS_OK)
        fail_msg("sess_user_add(%s): %s", name, f->app->errmsg);
}

static enum sess_err
verify(struct fx *f, const char *name, const char *password, char role[33])
{
    return sess_user_verify(f->app, name, strlen(name), password, strlen(password), role);
}

static void
create_session(struct fx *f, const char *id, int64_t expires_ms, int64_t deadline_ms,
               const char *owner, const char *data)
{
    struct sess_record rec = {
        .expires_ms = expires_ms,
        .deadline_ms = deadline_ms,
        .created_ms = T0,
        .owner = sess_str_c(owner),
        .data = sess_str_c(data),
    };
    struct sess_store *st = f->app->store;

    assert_int_equal(st->ops->create(st, sess_str_c(id), test_now_ms, &rec), SESS_OK);
}

static bool
session_exists(struct fx *f, const char *id)
{
    struct sess_store *st = f->app->store;
    struct sess_record rec;
    struct sess_buf buf = {0};
    enum sess_err err = st->ops->get(st, sess_str_c(id), test_now_ms, &rec, &buf);

    sess__buf_free(&buf);
    assert_true(err == SESS_OK || err == SESS_ENOTFOUND);
    return err == SESS_OK;
}

/* ------------------------------------------------------------------------
 * Accounts
 * ------------------------------------------------------------------------ */

static void
test_verify_accepts_the_password_and_returns_the_role(void **ctx)
{
    struct fx *f = *ctx;
    char role[33] = "x";

    add_user(f, "alice", "admin", "correct horse battery staple");
    assert_int_equal(verify(f, "alice", "correct horse battery staple", role), SESS_OK);
    assert_string_equal(role, "admin");
}

static void
test_verify_refuses_a_wrong_password(void **ctx)
{
    struct fx *f = *ctx;
    char role[33];

    add_user(f, "alice", "admin", "correct horse battery staple");
    assert_int_equal(verify(f, "alice", "correct horse battery stapler", role), SESS_EFORBIDDEN);
    assert_int_equal(verify(f, "alice", "", role), SESS_EFORBIDDEN);
    assert_string_equal(role, "");
}

static void
test_verify_refuses_an_unknown_user_after_the_same_work(void **ctx)
{
    struct fx *f = *ctx;
    char role[33];

    add_user(f, "alice", "admin", "secret-1");
    assert_int_equal(verify(f, "mallory", "secret-1", role), SESS_EFORBIDDEN);
    /* the hash checked instead is a real argon2id one, with the same
     * limits as the accounts' */
    assert_int_equal(strncmp(f->app->dummy_hash, "$argon2id$", 10), 0);
    assert_int_equal(crypto_pwhash_str_needs_rehash(f->app->dummy_hash,
                                                    crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                    crypto_pwhash_MEMLIMIT_INTERACTIVE),
                     0);
}

static void
test_verify_refuses_names_with_embedded_nul_or_bad_bytes(void **ctx)
{
    struct fx *f = *ctx;
    char role[33];

    add_user(f, "alice", "admin", "pw");
    assert_int_equal(sess_user_verify(f->app, "alice\0x", 7, "pw", 2, role), SESS_EFORBIDDEN);
    assert_int_equal(sess_user_verify(f->app, "alice", 4, "pw", 2, role), SESS_EFORBIDDEN);
    assert_int_equal(verify(f, "al ice", "pw", role), SESS_EFORBIDDEN);
    assert_int_equal(verify(f, "", "pw", role), SESS_EFORBIDDEN);
    assert_int_equal(sess_user_verify(f->app, "alice\0", 6, "pw", 2, role), SESS_EFORBIDDEN);
    /* a password with a NUL is compared whole, not up to the NUL */
    assert_int_equal(sess_user_verify(f->app, "alice", 5, "pw\0x", 4, role), SESS_EFORBIDDEN);
}

static void
test_verify_refuses_a_damaged_account(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = f->app->store;
    char role[33];

    assert_int_equal(st->ops->user_put(st, SESS_STR_LIT("eve"), test_now_ms,
                                       SESS_STR_LIT("{\"role\":1}"), false),
                     SESS_OK);
    assert_int_equal(verify(f, "eve", "anything", role), SESS_EFORBIDDEN);
}

static void
test_user_add_stores_an_argon2id_hash_and_no_password(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_store *st = f->app->store;
    struct sess_buf buf = {0};
    json_t *root;
    const char *role, *hash;

    add_user(f, "bob", "user", "hunter2-hunter2");
    assert_int_equal(st->ops->user_get(st, SESS_STR_LIT("bob"), test_now_ms, &buf), SESS_OK);
    assert_null(memmem(buf.ptr, buf.len, "hunter2", 7));
    root = json_loadb(buf.ptr, buf.len, 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_unpack(root, "{s:s, s:s}", "role", &role, "hash", &hash), 0);
    assert_string_equal(role, "user");
    assert_int_equal(strncmp(hash, "$argon2id$", 10), 0);
    /* libsodium, not our code, agrees that it is the password's hash */
    assert_int_equal(crypto_pwhash_str_verify(hash, "hunter2-hunter2", 15), 0);
    json_decref(root);
    sess__buf_free(&buf);
}

static void
test_user_add_refuses_a_taken_name_when_it_must_be_new(void **ctx)
{
    struct fx *f = *ctx;
    char role[33];

    add_user(f, "carol", "user", "first");
    assert_int_equal(sess_user_add(f->app, "carol", "admin", "second", 6, true), SESS_EEXISTS);
    assert_non_null(strstr(f->app->errmsg, "carol"));
    assert_int_equal(verify(f, "carol", "first", role), SESS_OK);
    assert_string_equal(role, "user");
}

static void
test_user_add_replaces_when_allowed(void **ctx)
{
    struct fx *f = *ctx;
    char role[33];

    add_user(f, "carol", "user", "first");
    assert_int_equal(sess_user_add(f->app, "carol", "admin", "second", 6, false), SESS_OK);
    assert_int_equal(verify(f, "carol", "first", role), SESS_EFORBIDDEN);
    assert_int_equal(verify(f, "carol", "second", role), SESS_OK);
    assert_string_equal(role, "admin");
}

static void
test_user_add_validates_names(void **ctx)
{
    static const struct {
        const char *name;
        enum sess_err err;
    } cases[] = {
        {"a", SESS_OK},
        {"Alice.Smith_2@example-org", SESS_OK},
        {"0123456789012345678901234567890123456789012345678901234567890123", SESS_OK},
        {"01234567890123456789012345678901234567890123456789012345678901234", SESS_EBADINPUT},
        {"", SESS_EBADINPUT},
        {"al ice", SESS_EBADINPUT},
        {"alice:admin", SESS_EBADINPUT},
        {"al/ice", SESS_EBADINPUT},
        {"\xc3\xa9lise", SESS_EBADINPUT},
        {"alice\n", SESS_EBADINPUT},
        {NULL, SESS_EBADINPUT},
    };
    struct fx *f = *ctx;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum sess_err err = sess_user_add(f->app, cases[i].name, "user", "pw", 2, false);
        if (err != cases[i].err)
            fail_msg("name \"%s\": got %d, want %d", cases[i].name ? cases[i].name : "(null)", err,
                     cases[i].err);
    }
}

static void
test_user_add_validates_roles(void **ctx)
{
    static const struct {
        const char *role;
        enum sess_err err;
    } cases[] = {
        {"user", SESS_OK},
        {"super_admin-2", SESS_OK},
        {"abcdefghijklmnopqrstuvwxyz012345", SESS_OK},
        {"abcdefghijklmnopqrstuvwxyz0123456", SESS_EBADINPUT},
        {"", SESS_EBADINPUT},
        {"Admin", SESS_EBADINPUT},
        {"ad min", SESS_EBADINPUT},
        {"admin\"", SESS_EBADINPUT},
        {NULL, SESS_EBADINPUT},
    };
    struct fx *f = *ctx;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum sess_err err = sess_user_add(f->app, "rolecheck", cases[i].role, "pw", 2, false);
        if (err != cases[i].err)
            fail_msg("role \"%s\": got %d, want %d", cases[i].role ? cases[i].role : "(null)", err,
                     cases[i].err);
    }
}

static void
test_user_add_refuses_empty_and_oversized_passwords(void **ctx)
{
    struct fx *f = *ctx;
    char *big = malloc(SESS_PASSWORD_MAX + 1);

    assert_non_null(big);
    memset(big, 'p', SESS_PASSWORD_MAX + 1);
    assert_int_equal(sess_user_add(f->app, "dave", "user", "", 0, true), SESS_EBADINPUT);
    assert_int_equal(sess_user_add(f->app, "dave", "user", big, SESS_PASSWORD_MAX + 1, true),
                     SESS_EBADINPUT);
    free(big);
}

static void
test_user_passwd_changes_the_password_and_keeps_the_role(void **ctx)
{
    struct fx *f = *ctx;
    char role[33];

    add_user(f, "erin", "auditor", "old password");
    assert_int_equal(sess_user_passwd(f->app, "erin", "new password", 12), SESS_OK);
    assert_int_equal(verify(f, "erin", "old password", role), SESS_EFORBIDDEN);
    assert_int_equal(verify(f, "erin", "new password", role), SESS_OK);
    assert_string_equal(role, "auditor");
}

static void
test_user_passwd_of_unknown_user_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(sess_user_passwd(f->app, "nobody", "pw", 2), SESS_ENOTFOUND);
    assert_non_null(strstr(f->app->errmsg, "nobody"));
}

static void
test_user_del_removes_the_account_and_its_sessions(void **ctx)
{
    struct fx *f = *ctx;
    char role[33];

    add_user(f, "frank", "user", "pw");
    add_user(f, "grace", "user", "pw");
    create_session(f, ID1, T0 + 30 * MIN_MS, 0, "frank", "{}");
    create_session(f, ID2, T0 + 30 * MIN_MS, 0, "frank", "{}");
    create_session(f, ID3, T0 + 30 * MIN_MS, 0, "grace", "{}");
    assert_int_equal(sess_user_del(f->app, "frank"), SESS_OK);
    assert_int_equal(verify(f, "frank", "pw", role), SESS_EFORBIDDEN);
    assert_false(session_exists(f, ID1));
    assert_false(session_exists(f, ID2));
    assert_true(session_exists(f, ID3));
}

static void
test_user_del_of_unknown_user_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(sess_user_del(f->app, "nobody"), SESS_ENOTFOUND);
    assert_int_equal(sess_user_del(f->app, "bad name"), SESS_ENOTFOUND);
}

struct user_list {
    char lines[4][80];
    size_t count;
};

static bool
collect_user(void *arg, const struct sess_user_info *user)
{
    struct user_list *l = arg;

    snprintf(l->lines[l->count++], sizeof l->lines[0], "%s %s", user->name, user->role);
    return l->count < 4;
}

static void
test_users_each_lists_names_and_roles(void **ctx)
{
    struct fx *f = *ctx;
    struct user_list l = {0};

    add_user(f, "zoe", "user", "pw");
    add_user(f, "adam", "admin", "pw");
    assert_int_equal(sess_users_each(f->app, collect_user, &l), SESS_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.lines[0], "adam admin");
    assert_string_equal(l.lines[1], "zoe user");
}

/* ------------------------------------------------------------------------
 * Administration
 * ------------------------------------------------------------------------ */

struct session_list {
    struct {
        char id[SESS_ID_MAX_LEN + 1];
        char owner[65];
        char data[64];
        int64_t expires_ms;
        bool is_live;
    } items[4];
    size_t count;
};

static bool
collect_session(void *arg, const struct sess_session_info *s)
{
    struct session_list *l = arg;

    snprintf(l->items[l->count].id, sizeof l->items[0].id, "%s", s->id);
    snprintf(l->items[l->count].owner, sizeof l->items[0].owner, "%s", s->owner);
    snprintf(l->items[l->count].data, sizeof l->items[0].data, "%s", s->data);
    l->items[l->count].expires_ms = s->expires_ms;
    l->items[l->count].is_live = s->is_live;
    l->count++;
    return l->count < 4;
}

static void
test_sessions_each_lists_every_session_with_its_state(void **ctx)
{
    struct fx *f = *ctx;
    struct session_list l = {0};

    create_session(f, ID1, T0 + 30 * MIN_MS, T0 + 10 * MIN_MS, "henry", "{\"a\":1}");
    create_session(f, ID2, T0 - MIN_MS, 0, "", "{}");
    assert_int_equal(sess_sessions_each(f->app, NULL, collect_session, &l), SESS_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[0].id, ID1);
    assert_string_equal(l.items[0].owner, "henry");
    assert_string_equal(l.items[0].data, "{\"a\":1}");
    assert_int_equal(l.items[0].expires_ms, T0 + 10 * MIN_MS); /* the deadline is sooner */
    assert_true(l.items[0].is_live);
    assert_string_equal(l.items[1].owner, "");
    assert_false(l.items[1].is_live);
}

static void
test_sessions_each_of_a_user(void **ctx)
{
    struct fx *f = *ctx;
    struct session_list l = {0};

    create_session(f, ID1, T0 + 30 * MIN_MS, 0, "ivy", "{}");
    create_session(f, ID2, T0 + 30 * MIN_MS, 0, "jack", "{}");
    assert_int_equal(sess_sessions_each(f->app, "jack", collect_session, &l), SESS_OK);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.items[0].id, ID2);
}

static void
test_revoke_ends_one_session(void **ctx)
{
    struct fx *f = *ctx;

    create_session(f, ID1, T0 + 30 * MIN_MS, 0, "kim", "{}");
    create_session(f, ID2, T0 + 30 * MIN_MS, 0, "kim", "{}");
    assert_int_equal(sess_revoke(f->app, ID1), SESS_OK);
    assert_false(session_exists(f, ID1));
    assert_true(session_exists(f, ID2));
    assert_int_equal(sess_revoke(f->app, ID1), SESS_ENOTFOUND);
    assert_non_null(strstr(f->app->errmsg, ID1));
}

static void
test_revoke_removes_an_expired_session_too(void **ctx)
{
    struct fx *f = *ctx;
    struct session_list l = {0};

    create_session(f, ID1, T0 - MIN_MS, 0, "", "{}");
    assert_int_equal(sess_revoke(f->app, ID1), SESS_OK);
    assert_int_equal(sess_sessions_each(f->app, NULL, collect_session, &l), SESS_OK);
    assert_int_equal(l.count, 0);
}

static void
test_revoke_of_a_malformed_id_is_not_found(void **ctx)
{
    struct fx *f = *ctx;

    assert_int_equal(sess_revoke(f->app, "short"), SESS_ENOTFOUND);
    assert_int_equal(sess_revoke(f->app, "has spaces in it and is long enough"), SESS_ENOTFOUND);
}

static void
test_revoke_user_counts_what_it_ended(void **ctx)
{
    struct fx *f = *ctx;
    size_t count = 0;

    create_session(f, ID1, T0 + 30 * MIN_MS, 0, "leo", "{}");
    create_session(f, ID2, T0 + 30 * MIN_MS, 0, "leo", "{}");
    create_session(f, ID3, T0 + 30 * MIN_MS, 0, "mia", "{}");
    assert_int_equal(sess_revoke_user(f->app, "leo", &count), SESS_OK);
    assert_int_equal(count, 2);
    assert_true(session_exists(f, ID3));
    assert_int_equal(sess_revoke_user(f->app, "leo", &count), SESS_OK);
    assert_int_equal(count, 0);
}

static void
test_gc_purges_every_dead_session_across_batches(void **ctx)
{
    struct fx *f = *ctx;
    char id[SESS_ID_LEN + 1];
    size_t purged = 0;
    unsigned i;

    for (i = 0; i < SESS_GC_BATCH * 2 + 10; i++) {
        snprintf(id, sizeof id, "dead%039u", i);
        create_session(f, id, T0 - 1 - i, 0, "", "{}");
    }
    create_session(f, ID1, T0 + MIN_MS, 0, "", "{}");
    assert_int_equal(sess_gc(f->app, &purged), SESS_OK);
    assert_int_equal(purged, SESS_GC_BATCH * 2 + 10);
    assert_true(session_exists(f, ID1));
    assert_int_equal(sess_gc(f->app, &purged), SESS_OK);
    assert_int_equal(purged, 0);
}

static void
test_stats_get_reports_the_store(void **ctx)
{
    struct fx *f = *ctx;
    struct sess_stats s;

    add_user(f, "nina", "user", "pw");
    create_session(f, ID1, T0 + MIN_MS, 0, "nina", "{}");
    create_session(f, ID2, T0 - MIN_MS, 0, "", "{}");
    assert_int_equal(sess_stats_get(f->app, &s), SESS_OK);
    assert_string_equal(s.store_kind, "lmdb");
    assert_int_equal(s.sessions, 2);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.users, 1);
    assert_int_equal(s.owners, 1);
    assert_int_equal(s.map_size_bytes, 8u << 20);
    assert_true(s.readers_max > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_verify_accepts_the_password_and_returns_the_role),
        T(test_verify_refuses_a_wrong_password),
        T(test_verify_refuses_an_unknown_user_after_the_same_work),
        T(test_verify_refuses_names_with_embedded_nul_or_bad_bytes),
        T(test_verify_refuses_a_damaged_account),
        T(test_user_add_stores_an_argon2id_hash_and_no_password),
        T(test_user_add_refuses_a_taken_name_when_it_must_be_new),
        T(test_user_add_replaces_when_allowed),
        T(test_user_add_validates_names),
        T(test_user_add_validates_roles),
        T(test_user_add_refuses_empty_and_oversized_passwords),
        T(test_user_passwd_changes_the_password_and_keeps_the_role),
        T(test_user_passwd_of_unknown_user_is_not_found),
        T(test_user_del_removes_the_account_and_its_sessions),
        T(test_user_del_of_unknown_user_is_not_found),
        T(test_users_each_lists_names_and_roles),
        T(test_sessions_each_lists_every_session_with_its_state),
        T(test_sessions_each_of_a_user),
        T(test_revoke_ends_one_session),
        T(test_revoke_removes_an_expired_session_too),
        T(test_revoke_of_a_malformed_id_is_not_found),
        T(test_revoke_user_counts_what_it_ended),
        T(test_gc_purges_every_dead_session_across_batches),
        T(test_stats_get_reports_the_store),
#undef T
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
