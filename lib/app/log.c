/* The executables' log: one line per write(2), to stderr (the web server's
 * error log), syslog (facility auth) or a file opened with O_APPEND, so
 * lines from the processes of every route never interleave. What to log
 * is the callers' (login.c, the routes); the client address is
 * request.c's (sess_client_addr). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "app.h"
#include "log.h"

/* "fcgi-session[" ROUTE "]: " an event, 3 + 4 * SESS_USERNAME_MAX + 3 for
 * the quoted username, an address: well under this. */
#define LINE_MAX_BYTES 1024

static const char *
route_of(const struct sess_app *app)
{
    return app->route_name ? app->route_name : program_invocation_short_name;
}

static enum sess_err
open_file(struct sess_app *app, char *errmsg, size_t errmsg_len)
{
    app->log_fd =
        open(app->cfg.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (app->log_fd >= 0)
        return SESS_OK;
    sess__fmt(errmsg, errmsg_len, "%s: log = %s: cannot open it for appending: %s",
              app->cfg.path ? app->cfg.path : "configuration", app->cfg.log_path, strerror(errno));
    return SESS_ECONFIG;
}

enum sess_err
sess__log_open(struct sess_app *app, const char *route_name, char *errmsg, size_t errmsg_len)
{
    app->route_name = route_name;
    switch (app->cfg.log_to) {
    case SESS_LOG_FILE:
        return app->log_fd >= 0 ? SESS_OK : open_file(app, errmsg, errmsg_len);
    case SESS_LOG_SYSLOG:
        openlog(route_of(app), LOG_PID, LOG_AUTH);
        app->is_syslog_open = true;
        return SESS_OK;
    case SESS_LOG_STDERR:
        break;
    }
    return SESS_OK;
}

void
sess__log_close(struct sess_app *app)
{
    if (app->log_fd >= 0)
        close(app->log_fd);
    app->log_fd = -1;
    if (app->is_syslog_open)
        closelog();
    app->is_syslog_open = false;
}

static void
write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* `text` is a whole line without its newline. */
static void
emit_line(struct sess_app *app, int priority, const char *text)
{
    char line[LINE_MAX_BYTES + 32], stamp[25], err[SESS_ERRMSG_MAX];
    size_t n;

    switch (app->cfg.log_to) {
    case SESS_LOG_SYSLOG:
        if (!app->is_syslog_open) {
            openlog(route_of(app), LOG_PID, LOG_AUTH);
            app->is_syslog_open = true;
        }
        syslog(priority, "%s", text);
        return;
    case SESS_LOG_FILE:
        if (app->log_fd < 0 && open_file(app, err, sizeof err) != SESS_OK) {
            sess__fmt(line, sizeof line, "%s\n%s\n", err, text);
            write_all(STDERR_FILENO, line, strlen(line));
            return;
        }
        /* The file has no one else to date its lines (fail2ban needs it). */
        sess_iso_date(app->clock(), stamp);
        memcpy(stamp + 19, "Z", 2); /* whole seconds */
        sess__fmt(line, sizeof line, "%s %s\n", stamp, text);
        n = strlen(line);
        write_all(app->log_fd, line, n);
        return;
    case SESS_LOG_STDERR:
        break;
    }
    sess__fmt(line, sizeof line, "%s\n", text);
    write_all(STDERR_FILENO, line, strlen(line));
}

size_t
sess__log_auth_line(char *out, size_t out_cap, const char *route, const char *event,
                    const char *username, const char *addr)
{
    size_t n;
    char shown_addr[SESS_ADDR_TEXT_MAX + 8];

    /* The address is ours (addr.c), but keep the line one line anyway. */
    n = 0;
    sess__escape_field(shown_addr, sizeof shown_addr, &n, addr && *addr ? addr : "-",
                       SESS_ADDR_TEXT_MAX);
    sess__fmt(out, out_cap, "fcgi-session[%s]: %s for \"", route, event);
    n = strlen(out);
    sess__escape_field(out, out_cap, &n, username ? username : "", SESS_USERNAME_MAX);
    sess__fmt(out + n, out_cap - n, "\" from %s", shown_addr);
    return strlen(out);
}

void
sess__log_auth_app(struct sess_app *app, const char *event, const char *username, const char *addr)
{
    char line[LINE_MAX_BYTES];

    sess__log_auth_line(line, sizeof line, route_of(app), event, username, addr);
    emit_line(app, LOG_NOTICE, line);
}

void
sess__log_error(struct sess_app *app, const char *fmt, ...)
{
    char msg[SESS_ERRMSG_MAX + 64], line[LINE_MAX_BYTES];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    sess__fmt(line, sizeof line, "fcgi-session[%s]: %s", route_of(app), msg);
    emit_line(app, LOG_ERR, line);
}

/* True when stderr is the journal's stream already (a systemd service):
 * systemd names it in JOURNAL_STREAM as "DEVICE:INODE". */
static bool
stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char *end;
    struct stat st;

    if (!js)
        return false;
    dev = strtoull(js, &end, 10);
    if (end == js || *end != ':')
        return false;
    js = end + 1;
    ino = strtoull(js, &end, 10);
    return end != js && *end == '\0' && fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* The value of the `log` line of a configuration file that did not load,
 * cut as the loader cuts it (quotes, a comment after whitespace), into
 * `out`; false when there is none. The loader stops at the first bad line,
 * and the `log` line may come after it: the operator who set a log file
 * looks there for why the executable does not start. */
static bool
find_log_line(const char *path, char *out, size_t out_cap)
{
    char line[1024];
    bool found = false;
    FILE *fp = fopen(path, "re");

    if (!fp)
        return false;
    while (!found && fgets(line, sizeof line, fp)) {
        char *p = line + strspn(line, " \t"), *end;

        if (strncmp(p, "log", 3) != 0)
            continue;
        p += 3 + strspn(p + 3, " \t");
        if (*p != '=')
            continue;
        p += 1 + strspn(p + 1, " \t");
        if (*p == '"' || *p == '\'') {
            end = strchr(p + 1, *p);
            if (!end)
                continue;
            p++;
        } else {
            for (end = p; *end && *end != '\n' && *end != '\r'; end++)
                if (*end == '#' && end > p && (end[-1] == ' ' || end[-1] == '\t'))
                    break;
            while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        }
        *end = '\0';
        found = *p != '\0' && strlen(p) < out_cap;
        if (found)
            memcpy(out, p, strlen(p) + 1);
    }
    fclose(fp);
    return found;
}

/* The `log` destination of the configuration at `path`, read leniently:
 * stderr when it names none or cannot be read. `cfg` is to be freed. */
static void
startup_target(struct sess_config *cfg, const char *path)
{
    char value[1024], err[SESS_ERRMSG_MAX];

    memset(cfg, 0, sizeof *cfg);
    cfg->log_to = SESS_LOG_STDERR;
    if (!path || !*path || !find_log_line(path, value, sizeof value))
        return;
    cfg->path = strdup(path); /* sess_config_set: relative to the file */
    if (!cfg->path || sess_config_set(cfg, path, "log", value, err, sizeof err) != SESS_OK) {
        free(cfg->log_path);
        cfg->log_path = NULL;
        cfg->log_to = SESS_LOG_STDERR;
    }
}

void
sess__log_startup_error(struct sess_app *app, const char *route_name, const char *config_path,
                        const char *msg)
{
    struct sess_config lenient;
    const struct sess_config *cfg;
    char line[LINE_MAX_BYTES + 32], stamp[25];
    bool in_syslog = false;
    int fd;

    sess__fmt(line, sizeof line, "%s: %s\n", route_name, msg);
    write_all(STDERR_FILENO, line, strlen(line));
    memset(&lenient, 0, sizeof lenient);
    if (app) {
        cfg = &app->cfg;
    } else {
        startup_target(&lenient, config_path);
        cfg = &lenient;
    }
    if (cfg->log_to == SESS_LOG_FILE && cfg->log_path) {
        fd = app && app->log_fd >= 0
                 ? app->log_fd
                 : open(cfg->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd >= 0) {
            sess_iso_date(sess__clock_real_ms(), stamp);
            memcpy(stamp + 19, "Z", 2);
            sess__fmt(line, sizeof line, "%s fcgi-session[%s]: %s\n", stamp, route_name, msg);
            write_all(fd, line, strlen(line));
            if (!app || fd != app->log_fd)
                close(fd);
        }
    } else if (cfg->log_to == SESS_LOG_SYSLOG) {
        /* Where every other line of the route goes (facility auth). */
        openlog(route_name, LOG_PID, LOG_AUTH);
        syslog(LOG_ERR, "fcgi-session[%s]: %s", route_name, msg);
        closelog();
        if (app)
            app->is_syslog_open = false;
        in_syslog = true;
    }
    /* spawn-fcgi points stderr at /dev/null and web servers keep it in
     * logs of their own, so unless stderr is a terminal (someone ran it by
     * hand) or the journal, the system log gets it too, where the operator
     * looks when the server answers "connection refused". */
    if (!in_syslog && !isatty(STDERR_FILENO) && !stderr_is_journal()) {
        openlog(route_name, LOG_PID, LOG_DAEMON);
        syslog(LOG_ERR, "%s", msg);
        closelog();
        if (app)
            app->is_syslog_open = false;
    }
    sess_config_free(&lenient);
}
