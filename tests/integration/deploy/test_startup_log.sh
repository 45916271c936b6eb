#!/usr/bin/env bash
# sanitizer: same
# parallel: no (binds /dev/log where the machine has none; four stacks with a broken configuration)
# Where a route's startup error lands in each deployment of README.md,
# "When a route does not start", with a configuration broken after the
# stack served once (an unknown key at its last line): the config loader's
# FILE:LINE message must be
#   - lighttpd bin-path (lighttpd starts the routes): not in lighttpd's
#     server.errorlog, which says "child exited: 78" and a hint about PHP:
#     the routes' stderr is lighttpd's own (the journal of lighttpd.service
#     under systemd, /dev/null when it runs as a daemon), so in the system
#     log, as under spawn-fcgi, and on lighttpd's stderr;
#   - Apache mod_fcgid: in Apache's error log, the routes' stderr;
#   - spawn-fcgi without -n (stderr is /dev/null): in the system log,
#     facility daemon, tagged with the route's name;
# and in each of them, in the file of the configuration's `log` setting
# too, though the `log` line comes after the broken one; with `log =
# syslog`, in the system log with the auth lines (facility auth).
# systemd, the fourth deployment, is test_systemd.sh's.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=tests/integration/deploy/syslog_capture.sh
. "$(dirname "${BASH_SOURCE[0]}")/syslog_capture.sh"

log_capture_start

# The executables that stack_start's spawn-fcgi and server run reach the
# captured /dev/log (through LOGGED where /dev/log was taken).
logged_cmd() {
    [ ${#LOGGED[@]} -eq 0 ] && return 0
    STACK_CMD=("${LOGGED[@]}" "${STACK_CMD[@]}")
    if [ -n "${STACK_SPAWN_FCGI:-}" ]; then
        printf '#!/bin/sh\nexec %s %q "$@"\n' "$(printf '%q ' "${LOGGED[@]}")" "$STACK_SPAWN_FCGI" \
            > "$T_DIR/spawn-fcgi" && chmod +x "$T_DIR/spawn-fcgi"
        STACK_SPAWN_FCGI=$T_DIR/spawn-fcgi
    fi
}

# deployment NAME SERVER FCGI LOG: serves /views, then breaks the
# configuration and starts the same stack again. Sets WANT (the message's
# ERE, without what precedes it) and STARTED (the second start's status).
deployment() {
    local name=$1 server=$2 fcgi=$3 log=$4 line
    TEST_SERVER=$server start_stack --fcgi="$fcgi" "log=$log"
    get - /views
    status_is 200 "$name: serves /views with a good configuration"
    stop_stack
    # The `log` line after the broken one, where an operator may put it.
    sed -i '/^log = /d' "$T_CONFIG"
    printf 'max_agee = 60\n' >> "$T_CONFIG"
    line=$(wc -l < "$T_CONFIG")
    printf 'log = %s\n' "$log" >> "$T_CONFIG"
    : > "$STACK_LOG"
    WANT="$T_CONFIG:$line: unknown key \"max_agee\" \\(did you mean \"max_age\"\\?\\)"
    : > "$STACK_ERRLOG"
    logged_cmd
    STARTED=0
    stack_start 2> "$T_DIR/start.err" || STARTED=$?
    [ "$STARTED" -eq 0 ] && T_STACK_UP=1
}

# The file of the `log` setting: the message, dated, named by its route.
in_log_file() {
    local name=$1 route=$2
    wait_file "$T_DIR/app.log" "fcgi-session\\[$route\\]: $WANT"
    like "$(cat "$T_DIR/app.log")" \
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z fcgi-session\\[$route\\]: $WANT" \
        "$name: the log file has the FILE:LINE message"
}

# --- lighttpd bin-path: lighttpd gives up when a route will not start.
: > "$T_DIR/syslog"
deployment "lighttpd bin-path" lighttpd lighttpd app.log
isnt "$STARTED" 0 "lighttpd bin-path: lighttpd does not start with the broken configuration"
like "$(cat "$STACK_ERRLOG")" "child exited: 78" "lighttpd bin-path: lighttpd's error log says \"child exited: 78\""
wait_log "^<27>.* [a-z_]+\\[[0-9]+\\]: $WANT"
like "$(cat "$T_DIR/syslog")" "<27>.* [a-z_]+\\[[0-9]+\\]: $WANT" \
    "lighttpd bin-path: the system log (daemon.err, the route's name) has the FILE:LINE message"
wait_file "$STACK_LOG" "[a-z_]+: $WANT"
like "$(cat "$STACK_LOG")" "[a-z_]+: $WANT" "lighttpd bin-path: lighttpd's stderr (lighttpd -D) has it"
in_log_file "lighttpd bin-path" '[a-z_]+'
stack_stop > /dev/null 2>&1
T_STACK_UP=

# --- Apache mod_fcgid: Apache starts; a route starts at its first request.
deployment "Apache mod_fcgid" apache-fcgid fcgid app.log
is "$STARTED" 0 "Apache mod_fcgid: Apache starts with the broken configuration"
T_MAX_TIME=30 get - /views
isnt "$STATUS" 200 "Apache mod_fcgid: GET /views fails ($STATUS)"
T_BAD_STATUS=()
wait_file "$STACK_ERRLOG" "views: $WANT"
like "$(cat "$STACK_ERRLOG")" "views: $WANT" "Apache mod_fcgid: Apache's error log has the FILE:LINE message"
in_log_file "Apache mod_fcgid" views
stack_stop > /dev/null 2>&1
T_STACK_UP=

# --- spawn-fcgi without -n: stderr is /dev/null; the system log has it.
: > "$T_DIR/syslog"
deployment "spawn-fcgi" lighttpd spawn-fcgi app.log
isnt "$STARTED" 0 "spawn-fcgi: the stack does not start with the broken configuration"
like "$(cat "$STACK_LOG")" "child exited with: 78" "spawn-fcgi: says only \"child exited with: 78\""
wait_log "^<27>.* [a-z_]+\\[[0-9]+\\]: $WANT"
like "$(cat "$T_DIR/syslog")" "<27>.* [a-z_]+\\[[0-9]+\\]: $WANT" \
    "spawn-fcgi: the system log (daemon.err, the route's name) has the FILE:LINE message"
in_log_file "spawn-fcgi" '[a-z_]+'
stack_stop > /dev/null 2>&1
T_STACK_UP=

# --- log = syslog: with the auth lines, once.
: > "$T_DIR/syslog"
deployment "spawn-fcgi, log = syslog" lighttpd spawn-fcgi syslog
wait_log "^<35>.* ([a-z_]+)\\[[0-9]+\\]: fcgi-session\\[[a-z_]+\\]: $WANT"
like "$(cat "$T_DIR/syslog")" "<35>.* ([a-z_]+)\\[[0-9]+\\]: fcgi-session\\[[a-z_]+\\]: $WANT" \
    "log = syslog: the system log has it as auth.err, as the route's other lines"
# (Other programs of the machine may log to the same /dev/log meanwhile.)
unlike "$(grep -F "$T_CONFIG" "$T_DIR/syslog")" "<27>" "log = syslog: and not a second time as daemon.err"
stack_stop > /dev/null 2>&1
T_STACK_UP=

done_testing
