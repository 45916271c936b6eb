# shellcheck shell=bash disable=SC2153
# Starts and stops the demo stack: lighttpd on a loopback port in front of
# the route executables, from the templates in lighttpd-conf/. Sourced by
# scripts/run (`make run`) and tests/integration/lib.sh, so the tests serve
# exactly what users run. Functions only; nothing runs when sourced.
#
# The caller sets, before stack_prepare:
#   STACK_ROOT    repository root (templates)
#   STACK_BUILD   build directory holding cgi-bin/*.fcgi (absolute)
#   STACK_RUN     directory for the generated lighttpd.conf, sockets, pid
#                 and log files (created)
#   STACK_CONFIG  the fcgi-session configuration file (absolute)
#   STACK_PORT    TCP port on STACK_BIND (default 127.0.0.1)
#   STACK_FCGI    lighttpd: lighttpd starts the executables and restarts one
#                 that dies (mod_fastcgi bin-path, the default);
#                 spawn-fcgi: spawn-fcgi starts them, stack_supervise
#                 restarts them
#   STACK_PROCS   processes per route (default 1)
#   STACK_LOG     file for lighttpd's and the executables' stderr (default:
#                 inherited)

STACK_ROUTES=(index login logout profile dashboard session views prefs)
STACK_BIND=${STACK_BIND:-127.0.0.1}
STACK_LIGHTTPD_PID=
STACK_BACKEND_PIDS=
declare -gA STACK_ROUTE_PIDS=()

stack_err() {
    printf 'fcgi-session: %s\n' "$*" >&2
}

# Finds a program also in the sbin directories, which a normal user's PATH
# lacks on Debian (lighttpd lives in /usr/sbin).
stack_find_prog() {
    local d
    if command -v "$1" 2> /dev/null; then
        return 0
    fi
    for d in /usr/sbin /sbin /usr/local/sbin; do
        if [ -x "$d/$1" ]; then
            printf '%s\n' "$d/$1"
            return 0
        fi
    done
    return 1
}

# True when something accepts connections on the port.
stack_port_open() {
    (exec 3<> "/dev/tcp/$STACK_BIND/$1") 2> /dev/null
}

# True while the process exists and is not a zombie.
stack_alive() {
    local stat
    [ -n "${1:-}" ] || return 1
    # read, not cat: no fork, so a Ctrl-C never lands in a helper process.
    read -r stat 2> /dev/null < "/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# Prints the pids whose parent is $1.
stack_children() {
    local f line pid rest state ppid
    for f in /proc/[0-9]*/stat; do
        read -r line 2> /dev/null < "$f" || continue
        pid=${line%% *}
        rest=${line##*) }
        read -r state ppid _ <<< "$rest"
        if [ "$ppid" = "$1" ] && [ "$state" != Z ]; then
            printf '%s\n' "$pid"
        fi
    done
}

# Prints the pids of processes that hold a unix socket bound under
# $STACK_RUN: the executables, even after the socket file is gone.
stack_socket_holders() {
    local inode path expr=()
    # Num RefCount Protocol Flags Type St Inode Path
    while read -r _ _ _ _ _ _ inode path; do
        if [[ $path == "$STACK_RUN"/* ]]; then
            [ ${#expr[@]} -gt 0 ] && expr+=(-o)
            expr+=(-lname "socket:\\[$inode\\]")
        fi
    done < /proc/net/unix
    [ ${#expr[@]} -gt 0 ] || return 0
    find /proc/[0-9]*/fd -maxdepth 1 \( "${expr[@]}" \) 2> /dev/null |
        sed -n 's|^/proc/\([0-9]*\)/fd/.*|\1|p' | sort -u
}

# Creates a secret file (one line: 32 random bytes in base64, mode 0600)
# unless it exists.
stack_secret() {
    local file=$1
    [ -s "$file" ] && return 0
    mkdir -p "$(dirname "$file")"
    (
        umask 077
        head -c 32 /dev/urandom | base64 -w 0 > "$file.tmp" && echo >> "$file.tmp" &&
            mv "$file.tmp" "$file"
    )
}

# stack_accounts SESSCTL CONFIG NAME ROLE PASSWORD [NAME ROLE PASSWORD...]:
# creates each account that `sessctl users` does not list yet.
stack_accounts() {
    local sessctl=$1 config=$2 users
    shift 2
    users=$("$sessctl" -c "$config" users) || return 1
    while [ $# -ge 3 ]; do
        if ! awk -v n="$1" '$1 == n { found = 1 } END { exit !found }' <<< "$users"; then
            printf '%s\n' "$3" | "$sessctl" -c "$config" useradd "$1" --role "$2" > /dev/null ||
                return 1
        fi
        shift 3
    done
}

# The generated configuration is lighttpd syntax: refuse paths that would
# need quoting there or escaping in sed.
stack_check_path() {
    case $1 in
    /*) ;;
    *)
        stack_err "$1: an absolute path is needed"
        return 1
        ;;
    esac
    case $1 in
    *[\"\\\|\&$'\n']*)
        stack_err "$1: a path with \", \\, |, & or a newline cannot go into lighttpd.conf"
        return 1
        ;;
    esac
}

# Writes $STACK_RUN/lighttpd.conf from the template of $STACK_FCGI and checks
# it with lighttpd -tt. Removes what an earlier run left in $STACK_RUN.
stack_prepare() {
    local template route p
    STACK_FCGI=${STACK_FCGI:-lighttpd}
    STACK_PROCS=${STACK_PROCS:-1}
    case $STACK_FCGI in
    lighttpd) template=$STACK_ROOT/lighttpd-conf/lighttpd-fcgi-bin-path.conf.in ;;
    spawn-fcgi) template=$STACK_ROOT/lighttpd-conf/lighttpd-spawn-fcgi.conf.in ;;
    *)
        stack_err "FCGI=$STACK_FCGI is not supported; use lighttpd or spawn-fcgi"
        return 1
        ;;
    esac
    case $STACK_PORT in
    '' | *[!0-9]* | 0*)
        stack_err "port \"$STACK_PORT\" is not a number from 1 to 65535"
        return 1
        ;;
    esac
    if [ "$STACK_PORT" -gt 65535 ]; then
        stack_err "port $STACK_PORT is not a number from 1 to 65535"
        return 1
    fi
    case $STACK_PROCS in
    [1-9] | [1-9][0-9]) ;;
    *)
        stack_err "PROCS=$STACK_PROCS: give 1 to 99 processes per route"
        return 1
        ;;
    esac
    for p in "$STACK_BUILD" "$STACK_RUN" "$STACK_CONFIG"; do
        stack_check_path "$p" || return 1
    done
    STACK_LIGHTTPD=$(stack_find_prog lighttpd) || {
        stack_err "lighttpd is not installed (scripts/deps installs it)"
        return 1
    }
    if [ "$STACK_FCGI" = spawn-fcgi ]; then
        STACK_SPAWN_FCGI=$(stack_find_prog spawn-fcgi) || {
            stack_err "spawn-fcgi is not installed (scripts/deps installs it)"
            return 1
        }
    fi
    for route in "${STACK_ROUTES[@]}"; do
        if [ ! -x "$STACK_BUILD/cgi-bin/$route.fcgi" ]; then
            stack_err "$STACK_BUILD/cgi-bin/$route.fcgi is missing: run make first"
            return 1
        fi
    done
    mkdir -p "$STACK_RUN/www" "$STACK_RUN/upload" || return 1
    rm -f "$STACK_RUN"/*.sock "$STACK_RUN"/*.sock-[0-9]* "$STACK_RUN"/*.pid \
        "$STACK_RUN/lighttpd-error.log"
    sed -e "s|@BIND@|$STACK_BIND|g" -e "s|@PORT@|$STACK_PORT|g" -e "s|@RUN@|$STACK_RUN|g" \
        -e "s|@BUILD@|$STACK_BUILD|g" -e "s|@CONFIG@|$STACK_CONFIG|g" \
        -e "s|@PROCS@|$STACK_PROCS|g" "$template" > "$STACK_RUN/lighttpd.conf" || return 1
    if ! "$STACK_LIGHTTPD" -tt -f "$STACK_RUN/lighttpd.conf" > "$STACK_RUN/lighttpd-check.log" 2>&1; then
        stack_err "lighttpd refuses $STACK_RUN/lighttpd.conf:"
        cat "$STACK_RUN/lighttpd-check.log" >&2
        return 1
    fi
    rm -f "$STACK_RUN/lighttpd-check.log"
    stack_preflight
}

# Runs one executable once, as plain CGI, so that a configuration it refuses
# stops the start here with its own message: lighttpd would only notice an
# executable that exits at once, and go on respawning one that is slower.
stack_preflight() {
    local rc=0
    SESSION_CONFIG=$STACK_CONFIG GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=OPTIONS \
        SERVER_PROTOCOL=HTTP/1.1 SCRIPT_NAME=/ REQUEST_URI=/ QUERY_STRING='' \
        REMOTE_ADDR=127.0.0.1 "$STACK_BUILD/cgi-bin/index.fcgi" < /dev/null > /dev/null \
        2> "$STACK_RUN/preflight.log" || rc=$?
    if [ "$rc" -ne 0 ]; then
        stack_err "$STACK_BUILD/cgi-bin/index.fcgi refuses to start (exit $rc):"
        cat "$STACK_RUN/preflight.log" >&2
        return 1
    fi
    rm -f "$STACK_RUN/preflight.log"
}

# Starts spawn-fcgi's processes for one route and records their pids.
stack_spawn() {
    local route=$1 sock=$STACK_RUN/$1.sock pidfile=$STACK_RUN/$1.pid pid pids=
    rm -f "$sock" "$pidfile"
    if [ -n "${STACK_LOG:-}" ]; then
        SESSION_CONFIG=$STACK_CONFIG "$STACK_SPAWN_FCGI" -s "$sock" -M 0600 -F "$STACK_PROCS" \
            -P "$pidfile" -- "$STACK_BUILD/cgi-bin/$route.fcgi" >> "$STACK_LOG" 2>&1
    else
        SESSION_CONFIG=$STACK_CONFIG "$STACK_SPAWN_FCGI" -s "$sock" -M 0600 -F "$STACK_PROCS" \
            -P "$pidfile" -- "$STACK_BUILD/cgi-bin/$route.fcgi" > /dev/null
    fi || {
        stack_err "spawn-fcgi could not start $route.fcgi"
        return 1
    }
    # spawn-fcgi writes one pid per line, the last without a newline.
    while read -r pid || [ -n "$pid" ]; do
        [ -n "$pid" ] && pids="$pids $pid"
    done < "$pidfile"
    STACK_ROUTE_PIDS[$route]=${pids# }
}

# Restarts every route of a spawn-fcgi stack whose process died (all of its
# processes, since they share one listening socket). Call it every second.
stack_supervise() {
    local route pid dead
    if [ "${STACK_FCGI:-}" != spawn-fcgi ]; then
        # lighttpd restarts its own; remember them in case it dies first.
        if stack_alive "$STACK_LIGHTTPD_PID"; then
            STACK_BACKEND_PIDS=$(stack_children "$STACK_LIGHTTPD_PID")
        fi
        return 0
    fi
    for route in "${STACK_ROUTES[@]}"; do
        dead=
        for pid in ${STACK_ROUTE_PIDS[$route]:-}; do
            stack_alive "$pid" || dead=$pid
        done
        [ -n "$dead" ] || continue
        stack_err "$route.fcgi (pid $dead) died; starting it again"
        # shellcheck disable=SC2086 # a list of pids
        stack_kill_wait ${STACK_ROUTE_PIDS[$route]} || true
        stack_spawn "$route" || return 1
    done
}

# Sends SIGTERM to the pids, waits up to 10 s, then SIGKILL. Fails if one
# needed SIGKILL.
stack_kill_wait() {
    local pid i left
    for pid in "$@"; do
        stack_alive "$pid" && kill -TERM "$pid" 2> /dev/null
    done
    for ((i = 0; i < 100; i++)); do
        left=
        for pid in "$@"; do
            stack_alive "$pid" && left="$left $pid"
        done
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    stack_err "still running 10 s after SIGTERM, killed:$left"
    for pid in $left; do
        kill -KILL "$pid" 2> /dev/null || true
    done
    return 1
}

# Starts the stack; returns once it answers HTTP. Returns 2 when the port is
# taken (the caller may try another), 1 on any other failure (with the
# reason on stderr), leaving nothing running.
stack_start() {
    local route i status
    if stack_port_open "$STACK_PORT"; then
        stack_err "port $STACK_PORT is taken: something already listens on $STACK_BIND:$STACK_PORT" \
            "(stop it, or choose another port with PORT=...)"
        return 2
    fi
    STACK_ROUTE_PIDS=()
    if [ "$STACK_FCGI" = spawn-fcgi ]; then
        for route in "${STACK_ROUTES[@]}"; do
            stack_spawn "$route" || {
                stack_stop > /dev/null 2>&1
                return 1
            }
        done
    fi
    # In a session of its own, so that a Ctrl-C reaches only the caller,
    # which stops lighttpd in order (lighttpd would restart an executable
    # killed by the same Ctrl-C while it shuts down).
    if [ -n "${STACK_LOG:-}" ]; then
        setsid "$STACK_LIGHTTPD" -D -f "$STACK_RUN/lighttpd.conf" >> "$STACK_LOG" 2>&1 < /dev/null &
    else
        setsid "$STACK_LIGHTTPD" -D -f "$STACK_RUN/lighttpd.conf" < /dev/null &
    fi
    STACK_LIGHTTPD_PID=$!
    # lighttpd listens before it spawns the executables and answers only
    # after; a 404 for a path that is no route proves the whole start-up.
    for ((i = 0; i < 300; i++)); do
        if ! stack_alive "$STACK_LIGHTTPD_PID"; then
            wait "$STACK_LIGHTTPD_PID" 2> /dev/null
            STACK_LIGHTTPD_PID=
            stack_stop > /dev/null 2>&1
            if grep -qs 'Address already in use' "$STACK_RUN/lighttpd-error.log" "${STACK_LOG:-/dev/null}"; then
                stack_err "port $STACK_PORT is taken (lighttpd: Address already in use)"
                return 2
            fi
            stack_err "lighttpd did not start; from $STACK_RUN/lighttpd-error.log:"
            tail -n 15 "$STACK_RUN/lighttpd-error.log" >&2 2> /dev/null
            return 1
        fi
        status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
            "http://$STACK_BIND:$STACK_PORT/.fcgi-session-ready" 2> /dev/null) || true
        if [ "$status" = 404 ]; then
            if grep -qsE 'child exited|spawning gw failed' "$STACK_RUN/lighttpd-error.log"; then
                stack_err "an executable died at start; from $STACK_RUN/lighttpd-error.log:"
                tail -n 15 "$STACK_RUN/lighttpd-error.log" >&2
                stack_stop > /dev/null 2>&1
                return 1
            fi
            stack_supervise
            return 0
        fi
        sleep 0.05
    done
    stack_err "lighttpd started but does not answer on $STACK_BIND:$STACK_PORT"
    stack_stop > /dev/null 2>&1
    return 1
}

# Stops everything stack_start started: lighttpd (which stops the
# executables it spawned), then any executable still running, by pid.
# Fails when a process needed SIGKILL or the port still accepts connections.
stack_stop() {
    local rc=0 pids=() route
    # shellcheck disable=SC2206 # a list of pids
    pids=($STACK_BACKEND_PIDS)
    STACK_BACKEND_PIDS=
    if [ -n "$STACK_LIGHTTPD_PID" ]; then
        if stack_alive "$STACK_LIGHTTPD_PID"; then
            mapfile -t -O ${#pids[@]} pids < <(stack_children "$STACK_LIGHTTPD_PID")
            stack_kill_wait "$STACK_LIGHTTPD_PID" || rc=1
        fi
        wait "$STACK_LIGHTTPD_PID" 2> /dev/null
        STACK_LIGHTTPD_PID=
    fi
    for route in "${!STACK_ROUTE_PIDS[@]}"; do
        # shellcheck disable=SC2206
        pids+=(${STACK_ROUTE_PIDS[$route]})
    done
    STACK_ROUTE_PIDS=()
    if [ ${#pids[@]} -gt 0 ]; then
        stack_kill_wait "${pids[@]}" || rc=1
    fi
    mapfile -t pids < <(stack_socket_holders)
    if [ ${#pids[@]} -gt 0 ]; then
        stack_err "still listening on a socket in $STACK_RUN, stopped now: ${pids[*]}"
        stack_kill_wait "${pids[@]}"
        rc=1
    fi
    rm -f "$STACK_RUN"/*.sock "$STACK_RUN"/*.sock-[0-9]* "$STACK_RUN"/*.pid
    if [ -n "${STACK_PORT:-}" ] && stack_port_open "$STACK_PORT"; then
        stack_err "something still listens on $STACK_BIND:$STACK_PORT"
        rc=1
    fi
    return $rc
}
