/* The per-process context: configuration, secrets, store and templates,
 * opened once before the first request and shared by every request. The
 * request loop itself lives in run.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "app.h"
#include "log.h"

enum sess_err
sess__app_fail(struct sess_app *app, enum sess_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(app->errmsg, sizeof app->errmsg, fmt, ap) < 0)
        app->errmsg[0] = '\0';
    va_end(ap);
    return err;
}

const char *
sess_app_errmsg(const struct sess_app *app)
{
    return app->errmsg[0] ? app->errmsg : "no error";
}

const char *
sess_app_warning(const struct sess_app *app)
{
    return app->warning[0] ? app->warning : NULL;
}

/* The configuration named by the caller or $SESSION_CONFIG, with $STORE
 * overriding `store` for this process (`make run STORE=...`). */
static enum sess_err
load_config(struct sess_config *cfg, const char *path, char *errmsg, size_t errmsg_len)
{
    enum sess_err err;
    const char *store = getenv("STORE");

    if (!path)
        path = getenv("SESSION_CONFIG");
    if (!path || !*path) {
        sess__fmt(errmsg, errmsg_len,
                  "SESSION_CONFIG is not set: point it at the configuration file "
                  "(e.g. SESSION_CONFIG=/etc/fcgi-session.conf)");
        return SESS_ECONFIG;
    }
    err = sess_config_load(cfg, path, errmsg, errmsg_len);
    if (err != SESS_OK)
        return err;
    if (store && *store) {
        err = sess_config_set(cfg, "STORE (environment)", "store", store, errmsg, errmsg_len);
        if (err == SESS_OK)
            err = sess_config_check(cfg, errmsg, errmsg_len);
        if (err != SESS_OK)
            sess_config_free(cfg);
    }
    return err;
}

enum sess_err
sess_app_open(struct sess_app **out, const char *config_path, char *errmsg, size_t errmsg_len)
{
    enum sess_err err;
    struct sess_app *app = NULL;

    *out = NULL;
    if (sodium_init() < 0) {
        sess__fmt(errmsg, errmsg_len, "libsodium failed to initialise");
        return SESS_ECRYPTO;
    }
    app = calloc(1, sizeof *app);
    if (!app) {
        sess__fmt(errmsg, errmsg_len, "out of memory");
        return SESS_ENOMEM;
    }
    app->clock = sess__clock_real_ms;
    app->log_fd = -1;
    err = load_config(&app->cfg, config_path, errmsg, errmsg_len);
    if (err != SESS_OK) {
        free(app);
        return err;
    }
    err = sess_secrets_load(&app->secrets, app->cfg.secret_file, errmsg, errmsg_len);
    if (err != SESS_OK)
        goto out;
    for (size_t i = 0; i < app->secrets.count; i++) {
        unsigned char csrf_key[32];
        sess_derive_key(&app->secrets, i, "csrf", csrf_key);
        crypto_auth_hmacsha256_init(&app->csrf_keyed[i], csrf_key, sizeof csrf_key);
        sess__derive_key_legacy(&app->secrets, i, "csrf", csrf_key);
        crypto_auth_hmacsha256_init(&app->csrf_legacy[i], csrf_key, sizeof csrf_key);
        sodium_memzero(csrf_key, sizeof csrf_key);
    }
    err = sess__store_open(&app->store, &app->cfg, &app->secrets, errmsg, errmsg_len);
    if (err != SESS_OK)
        goto out;
    err = sess_templates_open(&app->templates, app->cfg.html_dir);
    if (err != SESS_OK) {
        sess__fmt(errmsg, errmsg_len, "%s: html_dir = %s: %s", app->cfg.path, app->cfg.html_dir,
                  sess_strerror(err));
        goto out;
    }
    *out = app;
out:
    if (err != SESS_OK)
        sess_app_close(app);
    return err;
}

void
sess_app_close(struct sess_app *app)
{
    if (!app)
        return;
    sess__log_close(app);
    sess_templates_close(app->templates);
    sess__store_close(app->store);
    sess_secrets_free(&app->secrets);
    sess_config_free(&app->cfg);
    sess__buf_free(&app->scratch);
    sodium_memzero(app->csrf_keyed, sizeof app->csrf_keyed);
    sodium_memzero(app->csrf_legacy, sizeof app->csrf_legacy);
    sodium_memzero(&app->verified, sizeof app->verified);
    free(app);
}

const struct sess_config *
sess_app_config(const struct sess_app *app)
{
    return &app->cfg;
}

void
sess_app_set_clock(struct sess_app *app, sess_clock_fn clock)
{
    app->clock = clock ? clock : sess__clock_real_ms;
}

int64_t
sess_now_ms(const struct sess_app *app)
{
    return app->clock();
}
