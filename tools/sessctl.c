/* sessctl: the administrator's command for fcgi-session. Accounts, sessions,
 * gc and statistics over the same configuration and store the routes use,
 * and the check that the routes can start with them.
 * It includes only the public headers: whatever it does, an embedding
 * program can do. The check is sessctl_check.c's.
 * See man/sessctl.8. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "sess.h"
#include "sess_admin.h"
#include "sess_util.h"
#include "sessctl.h"

#define PREFIX_MIN     4 /* shortest id prefix accepted for show and revoke */

static const char usage_text[] =
    "usage: sessctl [-c CONFIG] COMMAND [ARGS]\n"
    "\n"
    "accounts:\n"
    "  useradd NAME [--role ROLE]  create an account (role \"user\" by default);\n"
    "                              the password comes from stdin, or is asked twice\n"
    "  passwd NAME [--keep-sessions]\n"
    "                              set a new password and end the user's sessions\n"
    "                              (whoever knew the old one is logged out)\n"
    "  userdel NAME                delete an account and end its sessions\n"
    "  users                       list accounts and their roles\n"
    "sessions:\n"
    "  sessions [--user NAME [--scan]]\n"
    "                              list sessions, all or one user's; --scan walks\n"
    "                              every session rather than the index of users (Redis:\n"
    "                              also what an Express app logged in)\n"
    "  show ID                     print a session's data as JSON\n"
    "  revoke ID                   end one session (ID or a unique prefix of it)\n"
    "  revoke --user NAME [--scan] end every session of a user\n"
    "  gc                          purge expired sessions and stale login counters\n"
    "  stats                       counts, map size and use, reader slots\n"
    "deployment:\n"
    "  check                       whether the routes can start, run as their user:\n"
    "                              the configuration, and the permissions of the\n"
    "                              secret, the store and html_dir\n"
    "  help                        this text\n"
    "\n"
    "CONFIG is -c, else $SESSION_CONFIG, else " DEFAULT_CONFIG ".\n";

/* ------------------------------------------------------------------------
 * Messages and exit codes
 * ------------------------------------------------------------------------ */

void
say(const char *fmt, ...)
{
    va_list ap;

    fputs("sessctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
usage_error(const char *what)
{
    say("%s (sessctl --help lists the commands)", what);
    return SESS_EXIT_USAGE;
}

/* The error table's exit status (sess.h, sysexits.h), but for "not
 * found", which is `missing` in this command's terms: no such user (67) or
 * no such session (1). */
int
exit_status(enum sess_err err, int missing)
{
    return err == SESS_ENOTFOUND ? missing : sess_err_exit_status(err);
}

int
app_failed(struct sess_app *app, enum sess_err err, int missing)
{
    say("%s", sess_app_errmsg(app));
    return exit_status(err, missing);
}

/* ------------------------------------------------------------------------
 * Passwords
 * ------------------------------------------------------------------------ */

/* The terminal's settings while echo is off, for the signal handler. */
static int tty_fd = -1;
static struct termios tty_saved;

static void
restore_tty_and_die(int sig)
{
    tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads one line from `fd` into `buf` (NUL-terminated, newline and a CR
 * before it removed). -1 on error, -2 when it is longer than `cap - 1`. */
static int
read_line(int fd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    ssize_t got;
    char c;
    bool is_too_long = false;

    for (;;) {
        got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0 || c == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = c;
        else
            is_too_long = true;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *len = n;
    return is_too_long ? -2 : 0;
}

static int
prompt_hidden(int fd, const char *prompt, char *buf, size_t cap, size_t *len)
{
    struct termios quiet;
    struct sigaction sa = {.sa_handler = restore_tty_and_die}, old[4];
    static const int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    int i, rc;

    if (tcgetattr(fd, &tty_saved) != 0)
        return -1;
    tty_fd = fd;
    quiet = tty_saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    for (i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]);
    if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
        rc = -1;
    } else {
        rc = read_line(fd, buf, cap, len);
        tcsetattr(fd, TCSAFLUSH, &tty_saved);
        if (write(fd, "\n", 1) < 0)
            rc = -1;
    }
    for (i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    tty_fd = -1;
    return rc;
}

/* The new password of `name`: one line of stdin when stdin is not a
 * terminal (scripts, `echo pw | sessctl useradd`), else asked twice on
 * /dev/tty with echo off. Returns 0, or an exit status after a message. */
static int
read_new_password(const char *name, char *buf, size_t cap, size_t *len)
{
    char again[SESS_PASSWORD_MAX + 2], prompt[128];
    size_t again_len = 0;
    int fd, rc;

    if (!isatty(STDIN_FILENO)) {
        rc = read_line(STDIN_FILENO, buf, cap, len);
        if (rc == -2) {
            say("the password is longer than %d bytes", SESS_PASSWORD_MAX);
            return SESS_EXIT_DATAERR;
        }
        if (rc != 0) {
            say("reading the password from stdin: %s", strerror(errno));
            return SESS_EXIT_IOERR;
        }
        return 0;
    }
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        say("/dev/tty: %s (give the password on stdin instead)", strerror(errno));
        return SESS_EXIT_IOERR;
    }
    snprintf(prompt, sizeof prompt, "New password for %s: ", name);
    rc = prompt_hidden(fd, prompt, buf, cap, len);
    if (rc == 0)
        rc = prompt_hidden(fd, "Retype it: ", again, sizeof again, &again_len);
    close(fd);
    if (rc == -2) {
        say("the password is longer than %d bytes", SESS_PASSWORD_MAX);
        rc = SESS_EXIT_DATAERR;
    } else if (rc != 0) {
        say("reading the password from the terminal failed");
        rc = SESS_EXIT_IOERR;
    } else if (again_len != *len || sodium_memcmp(again, buf, *len) != 0) {
        say("the two passwords differ; nothing changed");
        rc = SESS_EXIT_DATAERR;
    }
    sodium_memzero(again, sizeof again);
    return rc;
}

/* ------------------------------------------------------------------------
 * Arguments
 * ------------------------------------------------------------------------ */

/* An id as the library makes them: SESS_ID_LEN base64url characters. One
 * may even start with "--", and no option is that long. */
static bool
is_session_id(const char *arg)
{
    return strlen(arg) == SESS_ID_LEN &&
           strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               SESS_ID_LEN;
}

/* Returns 0, or SESS_EXIT_USAGE after a message. */
int
parse_args(int argc, char **argv, const char *opt_name, int max_pos, struct args *a)
{
    size_t opt_len = opt_name ? strlen(opt_name) : 0;
    bool is_literal = false;
    char msg[160];
    int i;

    memset(a, 0, sizeof *a);
    for (i = 0; i < argc; i++) {
        const char *arg = argv[i];

        /* Ids are base64url and may start with '-': only "--name" is an
         * option (never an id's length), and "--" ends the options. */
        if (strcmp(arg, "--") == 0 && !is_literal) {
            is_literal = true;
            continue;
        }
        if (is_literal) {
            if (a->npos >= max_pos) {
                snprintf(msg, sizeof msg, "unexpected argument \"%s\"", arg);
                return usage_error(msg);
            }
            a->pos[a->npos++] = arg;
        } else if (opt_name && strncmp(arg, opt_name, opt_len) == 0 &&
            (arg[opt_len] == '\0' || arg[opt_len] == '=')) {
            if (arg[opt_len] == '=') {
                a->opt_value = arg + opt_len + 1;
            } else if (i + 1 < argc) {
                a->opt_value = argv[++i];
            } else {
                snprintf(msg, sizeof msg, "%s needs a value", opt_name);
                return usage_error(msg);
            }
        } else if (opt_name && strcmp(opt_name, "--user") == 0 && strcmp(arg, "--scan") == 0) {
            a->is_scan = true;
        } else if (arg[0] == '-' && arg[1] == '-' && !is_session_id(arg)) {
            snprintf(msg, sizeof msg, "unknown option %s", arg);
            return usage_error(msg);
        } else if (a->npos < max_pos) {
            a->pos[a->npos++] = arg;
        } else {
            snprintf(msg, sizeof msg, "unexpected argument \"%s\"", arg);
            return usage_error(msg);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Formatting
 * ------------------------------------------------------------------------ */

static void
iso_utc(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "-");
}

static void
human_bytes(uint64_t n, char out[32])
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, 32, "%llu B", (unsigned long long)n);
    else
        snprintf(out, 32, "%.1f %s", v, units[u]);
}

/* ------------------------------------------------------------------------
 * Finding a session by id or unique prefix
 * ------------------------------------------------------------------------ */

struct found {
    const char *want;
    size_t want_len;
    size_t matches;
    bool is_exact;
    char id[SESS_ID_MAX_LEN + 1];
    char *data;
};

static bool
match_session(void *arg, const struct sess_session_info *s)
{
    struct found *f = arg;
    bool is_exact = strcmp(s->id, f->want) == 0;

    if (!is_exact && strncmp(s->id, f->want, f->want_len) != 0)
        return true;
    f->matches++;
    snprintf(f->id, sizeof f->id, "%s", s->id);
    free(f->data);
    f->data = strdup(s->data);
    f->is_exact = is_exact;
    return !is_exact;
}

/* Finds the one session named by `want`. Returns 0, or an exit status
 * after a message. */
static int
find_session(struct sess_app *app, const char *want, struct found *f)
{
    enum sess_err err;

    memset(f, 0, sizeof *f);
    f->want = want;
    f->want_len = strlen(want);
    if (f->want_len < PREFIX_MIN) {
        say("\"%s\" is too short: give the id or at least %d of its first characters", want,
            PREFIX_MIN);
        return SESS_EXIT_USAGE;
    }
    err = sess_sessions_each(app, NULL, match_session, f);
    if (err != SESS_OK)
        return app_failed(app, err, 1);
    if (f->is_exact)
        f->matches = 1;
    if (f->matches == 0) {
        say("no session \"%s\"", want);
        return 1;
    }
    if (f->matches > 1) {
        say("%zu sessions start with \"%s\"; give more of the id", f->matches, want);
        return SESS_EXIT_USAGE;
    }
    if (!f->data) {
        say("out of memory");
        return SESS_EXIT_SOFTWARE;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------ */

static int
cmd_useradd(struct sess_app *app, int argc, char **argv)
{
    char password[SESS_PASSWORD_MAX + 2];
    size_t len = 0;
    struct args a;
    enum sess_err err;
    int rc;

    rc = parse_args(argc, argv, "--role", 1, &a);
    if (rc)
        return rc;
    if (a.npos != 1)
        return usage_error("useradd needs a user name");
    rc = read_new_password(a.pos[0], password, sizeof password, &len);
    if (rc == 0) {
        err = sess_user_add(app, a.pos[0], a.opt_value ? a.opt_value : "user", password, len, true);
        if (err == SESS_EEXISTS)
            say("user \"%s\" already exists (sessctl passwd changes the password)", a.pos[0]);
        else if (err != SESS_OK)
            say("%s", sess_app_errmsg(app));
        else
            printf("added %s (%s)\n", a.pos[0], a.opt_value ? a.opt_value : "user");
        rc = exit_status(err, SESS_EXIT_NOUSER);
    }
    sodium_memzero(password, sizeof password);
    return rc;
}

/* Takes the flag `name` out of argv (before a "--"); true if it was there. */
static bool
take_flag(int *argc, char **argv, const char *name)
{
    bool is_found = false;
    int i, j;

    for (i = 0, j = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc)
                argv[j++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], name) == 0)
            is_found = true;
        else
            argv[j++] = argv[i];
    }
    *argc = j;
    return is_found;
}

static int
cmd_passwd(struct sess_app *app, int argc, char **argv)
{
    char password[SESS_PASSWORD_MAX + 2];
    size_t len = 0, count = 0;
    struct args a;
    enum sess_err err;
    bool is_keeping = take_flag(&argc, argv, "--keep-sessions");
    int rc;

    rc = parse_args(argc, argv, NULL, 1, &a);
    if (rc)
        return rc;
    if (a.npos != 1)
        return usage_error("passwd needs a user name");
    rc = read_new_password(a.pos[0], password, sizeof password, &len);
    if (rc == 0) {
        err = sess_user_passwd(app, a.pos[0], password, len);
        /* As the password change of the demo (README): a new password is for
         * locking out whoever had the old one. */
        if (err == SESS_OK && !is_keeping) {
            err = sess_revoke_user(app, a.pos[0], &count);
            if (sess_app_warning(app))
                say("warning: %s", sess_app_warning(app));
        }
        if (err != SESS_OK)
            say("%s", sess_app_errmsg(app));
        else if (is_keeping)
            printf("changed the password of %s; its sessions go on\n", a.pos[0]);
        else
            printf("changed the password of %s and ended %zu session%s\n", a.pos[0], count,
                   count == 1 ? "" : "s");
        rc = exit_status(err, SESS_EXIT_NOUSER);
    }
    sodium_memzero(password, sizeof password);
    return rc;
}

static int
cmd_userdel(struct sess_app *app, int argc, char **argv)
{
    struct args a;
    enum sess_err err;
    int rc;

    rc = parse_args(argc, argv, NULL, 1, &a);
    if (rc)
        return rc;
    if (a.npos != 1)
        return usage_error("userdel needs a user name");
    err = sess_user_del(app, a.pos[0]);
    if (sess_app_warning(app))
        say("warning: %s", sess_app_warning(app));
    if (err != SESS_OK)
        return app_failed(app, err, SESS_EXIT_NOUSER);
    printf("deleted %s and ended their sessions\n", a.pos[0]);
    return 0;
}

static bool
print_user(void *arg, const struct sess_user_info *user)
{
    (void)arg;
    printf("%-24s %s\n", user->name, user->role);
    return true;
}

static int
cmd_users(struct sess_app *app, int argc, char **argv)
{
    struct args a;
    enum sess_err err;
    int rc;

    rc = parse_args(argc, argv, NULL, 0, &a);
    if (rc)
        return rc;
    err = sess_users_each(app, print_user, NULL);
    return err == SESS_OK ? 0 : app_failed(app, err, 1);
}

struct listing {
    size_t total, live;
};

static bool
print_session(void *arg, const struct sess_session_info *s)
{
    struct listing *l = arg;
    char created[32], expires[32];

    iso_utc(s->created_ms, created);
    iso_utc(s->expires_ms, expires);
    /* Eight characters are enough to tell sessions apart and to paste into
     * show or revoke; the whole id is a bearer credential. */
    printf("%.8s\xe2\x80\xa6  %-16s %-20s  %-20s  %s\n", s->id, s->owner[0] ? s->owner : "-",
           created, expires, s->is_live ? "live" : "expired");
    l->total++;
    l->live += s->is_live;
    return true;
}

static int
cmd_sessions(struct sess_app *app, int argc, char **argv)
{
    struct listing l = {0};
    struct args a;
    enum sess_err err;
    int rc;

    rc = parse_args(argc, argv, "--user", 0, &a);
    if (rc)
        return rc;
    sess_sessions_scan_all(app, a.is_scan);
    printf("%-11s %-16s %-20s  %-20s  %s\n", "ID", "USER", "CREATED", "EXPIRES", "STATE");
    err = sess_sessions_each(app, a.opt_value, print_session, &l);
    if (err != SESS_OK)
        return app_failed(app, err, 1);
    fprintf(stderr, "%zu sessions, %zu live\n", l.total, l.live);
    return 0;
}

static int
cmd_show(struct sess_app *app, int argc, char **argv)
{
    struct found f;
    struct args a;
    json_t *root;
    int rc;

    rc = parse_args(argc, argv, NULL, 1, &a);
    if (rc)
        return rc;
    if (a.npos != 1)
        return usage_error("show needs a session id");
    rc = find_session(app, a.pos[0], &f);
    if (rc == 0) {
        root = json_loads(f.data, 0, NULL);
        if (root)
            json_dumpf(root, stdout, JSON_INDENT(2));
        else
            fputs(f.data, stdout); /* not JSON: shown as stored */
        putchar('\n');
        json_decref(root);
    }
    free(f.data);
    return rc;
}

static int
cmd_revoke(struct sess_app *app, int argc, char **argv)
{
    struct found f;
    struct args a;
    enum sess_err err;
    size_t count;
    int rc;

    rc = parse_args(argc, argv, "--user", 1, &a);
    if (rc)
        return rc;
    if (a.opt_value && a.npos == 0) {
        sess_sessions_scan_all(app, a.is_scan);
        err = sess_revoke_user(app, a.opt_value, &count);
        if (sess_app_warning(app))
            say("warning: %s", sess_app_warning(app));
        if (err != SESS_OK)
            return app_failed(app, err, SESS_EXIT_NOUSER);
        printf("revoked %zu session%s of %s\n", count, count == 1 ? "" : "s", a.opt_value);
        return 0;
    }
    if (a.opt_value || a.npos != 1)
        return usage_error("revoke needs a session id, or --user NAME");
    rc = find_session(app, a.pos[0], &f);
    if (rc == 0) {
        err = sess_revoke(app, f.id);
        if (err != SESS_OK)
            rc = app_failed(app, err, 1);
        else
            printf("revoked %.8s\xe2\x80\xa6\n", f.id);
    }
    free(f.data);
    return rc;
}

static int
cmd_gc(struct sess_app *app, int argc, char **argv)
{
    struct timespec t0, t1;
    struct args a;
    enum sess_err err;
    size_t purged;
    double ms;
    int rc;

    rc = parse_args(argc, argv, NULL, 0, &a);
    if (rc)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    err = sess_gc(app, &purged);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (err != SESS_OK)
        return app_failed(app, err, 1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("purged %zu expired session%s in %.1f ms\n", purged, purged == 1 ? "" : "s", ms);
    return 0;
}

static int
cmd_stats(struct sess_app *app, int argc, char **argv)
{
    struct sess_stats s;
    struct args a;
    enum sess_err err;
    char used[32], size[32], oldest[32], newest[32];
    int rc;

    rc = parse_args(argc, argv, NULL, 0, &a);
    if (rc)
        return rc;
    err = sess_stats_get(app, &s);
    if (err != SESS_OK)
        return app_failed(app, err, 1);
    iso_utc(s.oldest_created_ms, oldest);
    iso_utc(s.newest_created_ms, newest);
    printf("store      %s\n", s.store_kind);
    printf("sessions   %llu (%llu expired, awaiting gc)\n", (unsigned long long)s.sessions,
           (unsigned long long)s.expired);
    printf("users      %llu accounts, %llu with sessions\n", (unsigned long long)s.users,
           (unsigned long long)s.owners);
    printf("oldest     %s\n", oldest);
    printf("newest     %s\n", newest);
    if (s.map_size_bytes) {
        human_bytes(s.map_used_bytes, used);
        human_bytes(s.map_size_bytes, size);
        printf("map        %s used of %s (%.1f%%)\n", used, size,
               100.0 * (double)s.map_used_bytes / (double)s.map_size_bytes);
    }
    if (s.readers_max)
        printf("readers    %llu of %llu slots\n", (unsigned long long)s.readers_used,
               (unsigned long long)s.readers_max);
    return 0;
}

static const struct command {
    const char *name;
    int (*run)(struct sess_app *app, int argc, char **argv);
} commands[] = {
    {"useradd", cmd_useradd},   {"passwd", cmd_passwd},
    {"userdel", cmd_userdel},   {"users", cmd_users},
    {"sessions", cmd_sessions}, {"show", cmd_show},
    {"revoke", cmd_revoke},     {"gc", cmd_gc},
    {"stats", cmd_stats},
};

int
main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *name;
    const struct command *cmd = NULL;
    struct sess_app *app = NULL;
    char errmsg[SESS_ERRMSG_MAX], msg[128];
    enum sess_err err;
    size_t i;
    int opt, rc;

    /* A Redis store that closes the connection must give an error, not a
     * silent death by SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* '+': options after the command belong to the command. */
    while ((opt = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return SESS_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return SESS_EXIT_USAGE;
    }
    name = argv[optind];
    if (strcmp(name, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd && strcmp(name, "check") != 0) {
        snprintf(msg, sizeof msg, "unknown command \"%.60s\"", name);
        return usage_error(msg);
    }

    if (!config)
        config = getenv("SESSION_CONFIG");
    if (!config || !*config)
        config = DEFAULT_CONFIG;
    if (!cmd) {
        rc = cmd_check(config, argc - optind - 1, argv + optind + 1);
        goto out;
    }
    err = sess_app_open(&app, config, errmsg, sizeof errmsg);
    if (err != SESS_OK) {
        say("%s", errmsg);
        return exit_status(err, SESS_EXIT_CONFIG);
    }
    rc = cmd->run(app, argc - optind - 1, argv + optind + 1);
    sess_app_close(app);
out:
    if (fflush(stdout) != 0 && rc == 0) {
        say("writing the output: %s", strerror(errno));
        rc = SESS_EXIT_IOERR;
    }
    return rc;
}
