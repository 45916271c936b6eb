/* The per-process context every request shares (app.c): configuration,
 * secrets, store, templates, CSRF keys, the verified-cookie cache and the
 * log's destination. Internal to lib/. */
#ifndef SESS_APP_H
#define SESS_APP_H

#include <sodium.h>

#include "codec.h"
#include "sess_admin.h"
#include "store.h"

struct sess_app {
    struct sess_config cfg;
    struct sess_secrets secrets;
    struct sess_store *store;
    struct sess_templates *templates;
    /* HMACs keyed for CSRF tokens, once per secret: the first makes tokens,
     * every one verifies them (rotation leaves open forms working), and so
     * do the keys 0.1 derived, for the forms it served before an upgrade. */
    crypto_auth_hmacsha256_state csrf_keyed[SESS_SECRETS_MAX];
    crypto_auth_hmacsha256_state csrf_legacy[SESS_SECRETS_MAX];
    struct sess_verified verified;           /* cookies verified lately */
    sess_clock_fn clock;
    struct sess_buf scratch; /* store reads land here */
    char errmsg[SESS_ERRMSG_MAX];
    char warning[SESS_ERRMSG_MAX]; /* sess_app_warning */
    /* users.c: an argon2id hash verified against for unknown users, so they
     * cost the same work as known ones; made on first use ("" until then).
     * 128 = crypto_pwhash_STRBYTES. */
    char dummy_hash[128];
    /* log.c: the route named in every line (NULL: the program's name), and
     * the destination once open (-1: not a file, or not yet). */
    const char *route_name;
    int log_fd;
    bool is_syslog_open;
};

/* Formats the app's specific error message; returns `err` for chaining. */
enum sess_err sess__app_fail(struct sess_app *app, enum sess_err err, const char *fmt, ...)
    SESS_PRINTF(3, 4);

#endif
