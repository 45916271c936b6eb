# shellcheck shell=bash disable=SC2034 # LOGGED is the tests'
# A stand-in syslog daemon for the deploy tests (sourced after lib.sh):
# log_sink.c receives what the processes started with "${LOGGED[@]}" send to
# /dev/log, into $T_DIR/syslog: at /dev/log itself when nothing is there
# (removed afterwards), else at a path of the test's own, bound over
# /dev/log in a mount namespace of theirs (root only); the machine's own
# syslog is left alone either way. Each line is the message as sent:
# "<PRI>DATE IDENT[PID]: TEXT" (PRI = facility * 8 + severity: daemon.err
# is 27, auth.err 35).
LOG_SINK_PID=
LOGGED=()
log_capture_start() {
    local sock=/dev/log i
    "${CC:-cc}" -O2 -o "$T_DIR/log_sink" "$T_ROOT/tests/integration/log_sink.c" 2> "$T_DIR/cc.err" ||
        bail "cannot build log_sink: $(head -n 3 "$T_DIR/cc.err")"
    : > "$T_DIR/syslog"
    if [ -e /dev/log ] || [ -L /dev/log ]; then
        sock=$T_DIR/log.sock
        # shellcheck disable=SC2016 # for the inner shell
        LOGGED=(unshare -m sh -c 'mount --bind "$0" /dev/log && exec "$@"' "$sock")
    fi
    "$T_DIR/log_sink" "$sock" "$T_DIR/syslog" &
    LOG_SINK_PID=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$sock" ] && return 0
        sleep 0.05
    done
    bail "log_sink did not bind $sock"
}

# shellcheck disable=SC2317 # called from the EXIT trap
log_capture_stop() {
    if [ -n "$LOG_SINK_PID" ]; then
        kill -TERM "$LOG_SINK_PID" 2> /dev/null
        wait "$LOG_SINK_PID" 2> /dev/null
        LOG_SINK_PID=
    fi
}
trap 'log_capture_stop; t_cleanup' EXIT

# wait_file FILE ERE: waits up to 10 s for a line of FILE to match.
wait_file() {
    local i
    for ((i = 0; i < 200; i++)); do
        grep -qE -- "$2" "$1" 2> /dev/null && return 0
        sleep 0.05
    done
    return 1
}

# wait_log ERE: the same in the captured system log.
wait_log() {
    wait_file "$T_DIR/syslog" "$1"
}
