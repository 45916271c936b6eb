/* fcgi-session's administration: an app opened outside a request, user
 * accounts, every session of the store, revocation, gc and statistics.
 * What sessctl does, for programs that manage sessions themselves. */
#ifndef SESS_ADMIN_H
#define SESS_ADMIN_H

#include <sess.h>
#include <sess_util.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#endif

/* ------------------------------------------------------------------------
 * Applications outside a request (app.c)
 * ------------------------------------------------------------------------ */

/* Opens an app as sess_run does, for tools and tests. `config_path` NULL
 * means $SESSION_CONFIG. On failure `errmsg` says why. */
enum sess_err sess_app_open(struct sess_app **app, const char *config_path, char *errmsg,
                            size_t errmsg_len) SESS_MUST_CHECK;
void sess_app_close(struct sess_app *app);
const struct sess_config *sess_app_config(const struct sess_app *app);

/* Clock in Unix milliseconds. Tests replace it to move time. */
typedef int64_t (*sess_clock_fn)(void);
void sess_app_set_clock(struct sess_app *app, sess_clock_fn clock);
int64_t sess_now_ms(const struct sess_app *app);

/* ------------------------------------------------------------------------
 * Accounts and administration (users.c, admin.c): what sessctl does
 * ------------------------------------------------------------------------ */

/* Creates or replaces an account: argon2id hash (crypto_pwhash_str,
 * interactive limits) of `password`. Names are 1..SESS_USERNAME_MAX bytes of
 * [A-Za-z0-9._@-]; roles 1..32 of [a-z0-9_-]. SESS_EBADINPUT otherwise,
 * SESS_EEXISTS if `must_be_new` and the name is taken. */
enum sess_err sess_user_add(struct sess_app *app, const char *name, const char *role,
                            const char *password, size_t password_len,
                            bool must_be_new) SESS_MUST_CHECK;

/* Sets a new password, keeping the role. SESS_ENOTFOUND if no such user. */
enum sess_err sess_user_passwd(struct sess_app *app, const char *name, const char *password,
                               size_t password_len) SESS_MUST_CHECK;

/* Deletes the account and ends its sessions. */
enum sess_err sess_user_del(struct sess_app *app, const char *name) SESS_MUST_CHECK;

/* Checks a password with the same argon2id work whether or not the user
 * exists. SESS_OK with the role copied into `role` (at least 33 bytes);
 * SESS_EFORBIDDEN for an unknown user or a wrong password. */
enum sess_err sess_user_verify(struct sess_app *app, const char *name, size_t name_len,
                               const char *password, size_t password_len,
                               char role[33]) SESS_MUST_CHECK;

struct sess_user_info {
    const char *name; /* borrowed for the visit */
    const char *role;
};
typedef bool (*sess_user_fn)(void *arg, const struct sess_user_info *user);
enum sess_err sess_users_each(struct sess_app *app, sess_user_fn visit, void *arg) SESS_MUST_CHECK;

struct sess_session_info {
    const char *id;    /* borrowed for the visit */
    const char *owner; /* "" when anonymous */
    int64_t created_ms;
    int64_t expires_ms; /* the earlier of idle expiry and absolute deadline */
    bool is_live;
    const char *data;   /* the session JSON */
};
typedef bool (*sess_session_fn)(void *arg, const struct sess_session_info *s);

/* Visits every stored session, or those of `owner` when not NULL. */
enum sess_err sess_sessions_each(struct sess_app *app, const char *owner, sess_session_fn visit,
                                 void *arg) SESS_MUST_CHECK;

/* With `is_on`, sess_sessions_each with an owner and sess_revoke_user
 * walk every stored session instead of the store's index of owners:
 * slower, and in Redis the only way to find the sessions an Express app
 * sharing the store logged in and this library never wrote (sessctl
 * --scan). */
void sess_sessions_scan_all(struct sess_app *app, bool is_on);

/* Ends one session by id, or every session of a user (*count says how
 * many). */
enum sess_err sess_revoke(struct sess_app *app, const char *id) SESS_MUST_CHECK;
enum sess_err sess_revoke_user(struct sess_app *app, const char *owner,
                               size_t *count) SESS_MUST_CHECK;

/* Purges every expired session and stale throttle counter. */
enum sess_err sess_gc(struct sess_app *app, size_t *purged) SESS_MUST_CHECK;

struct sess_stats {
    uint64_t sessions, expired, users, owners;
    int64_t oldest_created_ms, newest_created_ms;
    uint64_t map_size_bytes, map_used_bytes, readers_used, readers_max;
    const char *store_kind; /* "lmdb", "redis" */
};
enum sess_err sess_stats_get(struct sess_app *app, struct sess_stats *out) SESS_MUST_CHECK;

/* The specific message of the last failure of an app call. */
const char *sess_app_errmsg(const struct sess_app *app);
/* What the last sess_revoke_user or sess_user_del skipped while succeeding
 * (a corrupt entry in the store's index), or NULL. Valid until the next
 * such call. */
const char *sess_app_warning(const struct sess_app *app);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
