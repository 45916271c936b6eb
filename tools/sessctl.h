/* What sessctl's two files share (sessctl.c: the commands on accounts and
 * sessions; sessctl_check.c: the check before the routes start). */
#ifndef SESSCTL_H
#define SESSCTL_H

#include <stdbool.h>

#include "sess.h"
#include "sess_admin.h"

#define DEFAULT_CONFIG "./etc/fcgi-session.conf"

/* A command's arguments: positionals plus the one option it may take
 * (`--role ROLE`, `--user NAME`, also as `--role=ROLE`). */
struct args {
    const char *pos[2];
    int npos;
    const char *opt_value;
    bool is_scan; /* --scan, with --user */
};

/* "sessctl: MESSAGE" on stderr. */
void say(const char *fmt, ...) SESS_PRINTF(1, 2);
/* Says what is wrong with the command line; returns SESS_EXIT_USAGE. */
int usage_error(const char *what);
/* The exit status for `err`; `missing` for "not found". */
int exit_status(enum sess_err err, int missing);
/* Says the app's message; returns exit_status(err, missing). */
int app_failed(struct sess_app *app, enum sess_err err, int missing);
/* Returns 0, or SESS_EXIT_USAGE after a message. */
int parse_args(int argc, char **argv, const char *opt_name, int max_pos, struct args *a);

/* sessctl check: whether the routes can start, run as their user. */
int cmd_check(const char *config_path, int argc, char **argv);

#endif
