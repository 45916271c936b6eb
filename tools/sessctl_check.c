/* sessctl check: what would stop a route at start, found before it is
 * started: the configuration, the secret's and the store's permissions for
 * the user it runs as, html_dir. The other commands are sessctl.c's. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sess_util.h"
#include "sessctl.h"

struct checker {
    char user[64];
    unsigned problems;
};

static void problem(struct checker *c, const char *fmt, ...) SESS_PRINTF(2, 3);

static void
problem(struct checker *c, const char *fmt, ...)
{
    va_list ap;

    fputs("sessctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    c->problems++;
}

/* "owner www-data, group www-data, mode 0600" of `st`. */
static void
describe(const struct stat *st, char *out, size_t cap)
{
    const struct passwd *pw = getpwuid(st->st_uid);
    const struct group *gr = getgrgid(st->st_gid);
    char uid[24], gid[24];

    snprintf(uid, sizeof uid, "%u", (unsigned)st->st_uid);
    snprintf(gid, sizeof gid, "%u", (unsigned)st->st_gid);
    snprintf(out, cap, "owner %s, group %s, mode %04o", pw ? pw->pw_name : uid,
             gr ? gr->gr_name : gid, (unsigned)(st->st_mode & 07777));
}

/* Whether this user may access `path` as `mode` (R_OK, W_OK, X_OK), as the
 * routes would: with the effective ids. A problem names what is missing. */
static bool
check_access(struct checker *c, const char *what, const char *path, int mode, const char *verb)
{
    struct stat st;
    char desc[160];

    if (stat(path, &st) != 0) {
        problem(c, "%s %s: %s", what, path, strerror(errno));
        return false;
    }
    if (faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0)
        return true;
    describe(&st, desc, sizeof desc);
    problem(c, "%s %s: not %s by %s (%s)", what, path, verb, c->user, desc);
    return false;
}

/* The LMDB directory and its files: the routes read and write all of them.
 * A directory that does not exist yet is made by the first process that
 * opens the store, which must then be a process of the routes' user. */
static void
check_lmdb(struct checker *c, const char *dir, bool is_root)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "commit-2.queue"};
    char path[PATH_MAX], parent[PATH_MAX], desc[160], *slash;
    struct stat st;
    size_t i;

    if (stat(dir, &st) != 0 && errno != ENOENT) {
        problem(c, "store %s: %s (as %s)", dir, strerror(errno), c->user);
        return;
    }
    if (access(dir, F_OK) != 0) {
        /* The nearest directory that exists, where it would be made. */
        snprintf(parent, sizeof parent, "%s", dir);
        do {
            slash = strrchr(parent, '/');
            if (!slash)
                break;
            slash[slash == parent ? 1 : 0] = '\0';
        } while (slash != parent && access(parent, F_OK) != 0);
        if (is_root) {
            problem(c,
                    "store %s does not exist; run sessctl check as the routes' user, so that "
                    "the store is theirs when it is made",
                    dir);
        } else if (faccessat(AT_FDCWD, parent, W_OK | X_OK, AT_EACCESS) != 0) {
            desc[0] = '\0';
            if (stat(parent, &st) == 0)
                describe(&st, desc, sizeof desc);
            problem(c, "store %s does not exist, and %s cannot make it in %s (%s)", dir, c->user,
                    parent, desc);
        } else {
            printf("store %s: does not exist yet; made now, as the routes would\n", dir);
        }
        return;
    }
    if (!check_access(c, "store", dir, R_OK | W_OK | X_OK, "readable and writable"))
        return;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (access(path, F_OK) == 0)
            check_access(c, "store", path, R_OK | W_OK, "readable and writable");
    }
}

/* Loads the configuration (a bad one: the message and 78, as the routes
 * exit), checks the permissions of what the routes open, then opens the
 * secret, the store and the pages as they do. */
int
cmd_check(const char *config_path, int argc, char **argv)
{
    struct checker c = {.problems = 0};
    struct sess_config cfg;
    struct sess_app *app = NULL;
    const struct passwd *pw = getpwuid(geteuid());
    const char *store_env = getenv("STORE");
    char errmsg[SESS_ERRMSG_MAX], desc[160];
    bool is_root = geteuid() == 0;
    struct stat st;
    enum sess_err err;
    struct args a;
    int rc;

    rc = parse_args(argc, argv, NULL, 0, &a);
    if (rc)
        return rc;
    if (pw)
        snprintf(c.user, sizeof c.user, "%s", pw->pw_name);
    else
        snprintf(c.user, sizeof c.user, "uid %u", (unsigned)geteuid());
    err = sess_config_load(&cfg, config_path, errmsg, sizeof errmsg);
    if (err == SESS_OK && store_env && *store_env) {
        err =
            sess_config_set(&cfg, "STORE (environment)", "store", store_env, errmsg, sizeof errmsg);
        if (err == SESS_OK)
            err = sess_config_check(&cfg, errmsg, sizeof errmsg);
        if (err != SESS_OK)
            sess_config_free(&cfg);
    }
    if (err != SESS_OK) {
        say("%s", errmsg);
        return exit_status(err, SESS_EXIT_CONFIG);
    }
    printf("configuration %s: read as %s\n", cfg.path, c.user);
    if (is_root)
        say("running as root, who may open every file: run it as the routes' user "
            "(runuser -u fcgi-session -- sessctl check) to see what they can open");

    /* A Redis password in a file every user can read is everyone's. */
    if (stat(cfg.path, &st) == 0 && (st.st_mode & S_IROTH) && strncmp(cfg.store, "lmdb:", 5) != 0 &&
        strchr(cfg.store, '@')) {
        describe(&st, desc, sizeof desc);
        problem(&c,
                "configuration %s: holds the store's password and every user can read it (%s); "
                "fix with: chgrp ROUTES_GROUP %s && chmod 0640 %s",
                cfg.path, desc, cfg.path, cfg.path);
    }
    if (check_access(&c, "secret_file", cfg.secret_file, R_OK, "readable") &&
        stat(cfg.secret_file, &st) == 0 && (st.st_mode & 007)) {
        describe(&st, desc, sizeof desc);
        problem(&c, "secret_file %s: other users may open it (%s); fix with: chmod o-rwx %s",
                cfg.secret_file, desc, cfg.secret_file);
    }
    if (strncmp(cfg.store, "lmdb:", 5) == 0)
        check_lmdb(&c, cfg.store + 5, is_root);
    check_access(&c, "html_dir", cfg.html_dir, R_OK | X_OK, "readable");

    if (c.problems == 0) {
        /* As the routes start: this reads the secrets, opens (or makes) the
         * store, connects to Redis, and parses every page. */
        err = sess_app_open(&app, config_path, errmsg, sizeof errmsg);
        if (err != SESS_OK) {
            say("%s", errmsg);
            rc = exit_status(err, SESS_EXIT_CONFIG);
        } else {
            printf("secret_file %s: ok\nstore %s: ok\nhtml_dir %s: ok\n", cfg.secret_file,
                   cfg.store, cfg.html_dir);
            printf("ok: the routes can start with this configuration as %s\n", c.user);
        }
        sess_app_close(app);
    } else {
        say("%u problem%s: the routes would not start, or not safely", c.problems,
            c.problems == 1 ? "" : "s");
        rc = SESS_EXIT_NOPERM;
    }
    sess_config_free(&cfg);
    return rc;
}
