/* The executables' log (setting `log`): the auth log's lines and the
 * library's own error messages, on one path. Internal to lib/. */
#ifndef SESS_LOG_H
#define SESS_LOG_H

#include <stddef.h>

#include "sess.h"

/* sess_log_auth and the SESS_AUTH_ events are in sess.h, for routes. */

/* Names the process in every line ("fcgi-session[ROUTE]: ...") and opens
 * the destination now: the file (O_APPEND, created 0640) or syslog
 * (facility auth, ident ROUTE). sess_run calls it at start, so a log file
 * that cannot be opened stops the executable (SESS_ECONFIG, `errmsg` says
 * why); without it the name is the program's and a file is opened on the
 * first line. `route_name` is borrowed for the life of the app. */
enum sess_err sess__log_open(struct sess_app *app, const char *route_name, char *errmsg,
                             size_t errmsg_len) SESS_MUST_CHECK;

/* Closes what sess__log_open opened; sess_app_close calls it. */
void sess__log_close(struct sess_app *app);

/* The same from outside a request (sessctl): `addr` NULL or "" logs "-". */
void sess__log_auth_app(struct sess_app *app, const char *event, const char *username,
                        const char *addr);

/* An error message of the library: `fcgi-session[ROUTE]: MESSAGE`. */
void sess__log_error(struct sess_app *app, const char *fmt, ...) SESS_PRINTF(2, 3);

/* Why the executable cannot start, for every place an operator may look:
 * stderr ("ROUTE: MESSAGE": the web server's error log under lighttpd's
 * bin-path and mod_fcgid, the journal under systemd); the `log` file or
 * syslog of the configuration (`app`'s, or with `app` NULL, the `log`
 * line of the file at `config_path` even when another line of it is
 * broken); and, unless stderr is a terminal or the journal, syslog with
 * facility daemon and ident ROUTE (spawn-fcgi sends stderr to /dev/null). */
void sess__log_startup_error(struct sess_app *app, const char *route_name, const char *config_path,
                             const char *msg);

/* Formats an auth line (without the newline or the file's timestamp) into
 * `out` (NUL-terminated, cut to fit). Returns its length. For tests. */
size_t sess__log_auth_line(char *out, size_t out_cap, const char *route, const char *event,
                           const char *username, const char *addr);

#endif
