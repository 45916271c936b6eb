/* Accounts and logins beyond sess.h and sess_admin.h: the throttled
 * password check (throttle.c) that login and the password change share,
 * whether an account exists (users.c), and a user's session limit
 * (devices.c). Internal to lib/. */
#ifndef SESS_AUTH_H
#define SESS_AUTH_H

#include "http.h"

/* Whether the account `name` exists (users.c). False with *err set when
 * the store failed; with SESS_OK when it is absent. */
bool sess__user_exists(struct sess_app *app, struct sess_str name, enum sess_err *err);

/* One throttled password check (login.c), as the demo's contract (README) asks of logins
 * and password changes: a place is taken in the counts of the client
 * address and of the username before argon2id runs, so parallel attempts
 * cannot get past the limit (SESS_ETHROTTLED, *retry_after_s set). On
 * SESS_OK (`role` filled) the caller does what the password allows, then
 * settles the counts with sess__attempt_end and its outcome: success clears
 * the username's count, SESS_EFORBIDDEN keeps the places as failures, any
 * other gives them back. A refused check is settled already. */
struct sess_attempt {
    struct sess_str addr_key, user_key;
    bool has_addr, has_user; /* places taken, to give back */
    char user_buf[SESS_USERNAME_MAX + 8];
    char addr_buf[SESS_ADDR_TEXT_MAX + 8];
};

enum sess_err sess__attempt_check(struct sess_request *req, struct sess_attempt *a,
                                  const char *username, size_t username_len, const char *password,
                                  size_t password_len, char role[33],
                                  int64_t *retry_after_s) SESS_MUST_CHECK;
void sess__attempt_end(struct sess_request *req, struct sess_attempt *a, enum sess_err outcome);

/* At a login of `username`: ends that user's least recently used sessions
 * beyond max_sessions_per_user, counting the login's own (devices.c). */
enum sess_err sess__user_sessions_trim(struct sess_request *req, const char *username,
                                       size_t username_len) SESS_MUST_CHECK;

#endif
