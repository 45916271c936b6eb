#!/usr/bin/env bash
# `make run` (scripts/run) with every SERVER: it starts the real server on
# the given port as the current user, creates the secret and the demo
# accounts, prints the URL, serves the demo, and SIGTERM (or Ctrl-C, to its
# process group) stops everything it started, leaving nothing running or
# listening. TLS=1 makes a self-signed certificate at the first run, reuses
# it at the next, and serves https with Secure cookies. Each run has a
# configuration and VAR of its own, so the repository's var/ is untouched.
# Started as root, the routes run as fcgi-session, which alone may open the
# secret and the store, and the server gets their sockets only.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

read -r -a servers <<< "${TEST_SERVERS:-lighttpd lighttpd-cgi apache apache-fcgid apache-cgi nginx}"
RUN_PID=
# The server's user (www-data when root) must get through to each run.
chmod 711 "$T_DIR"

# The processes of a run: each names its VAR or configuration directory in
# its command line or environment.
leftovers() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$BASHPID" ] && continue
        if grep -qsF "$1" "$p/cmdline" "$p/environ" 2> /dev/null; then
            printf '%s %s\n' "${p#/proc/}" "$(tr '\0' ' ' < "$p/cmdline" 2> /dev/null | head -c 120)"
        fi
    done
}

# start_run DIR SERVER [VAR=VALUE...]: scripts/run in a process group of its
# own, as from a terminal; waits for its "demo on URL" line, on another
# port when it finds its own taken meanwhile (exit 69). Sets RUN_URL.
start_run() {
    local tries
    for ((tries = 0; tries < 10; tries++)); do
        RUN_PORT=$(stack_free_port)
        start_run_on "$@" && return 0
        [ "$RUN_STATUS" = 69 ] || break
    done
    diag "$(cat "$1/run.log")"
    return 1
}

start_run_on() {
    local dir=$1 server=$2 i
    shift 2
    : > "$dir/run.log"
    # A shell starts background commands with SIGINT ignored, which a
    # script cannot undo; a terminal's foreground job has it: restore it
    # (perl is part of every Debian system).
    # shellcheck disable=SC2016 # perl's variables
    setsid env SERVER="$server" PORT="$RUN_PORT" VAR="$dir/var" SESSION_CONFIG="$dir/fcgi-session.conf" \
        BUILD="$T_BUILD" "$@" perl -e '$SIG{INT} = $SIG{QUIT} = "DEFAULT"; exec @ARGV or die "$ARGV[0]: $!\n"' \
        "$T_ROOT/scripts/run" >> "$dir/run.log" 2>&1 < /dev/null &
    RUN_PID=$!
    RUN_URL=
    RUN_STATUS=
    for ((i = 0; i < 300; i++)); do
        RUN_URL=$(sed -n 's/^fcgi-session demo on \(https\{0,1\}:\/\/[0-9.:]*\) .*/\1/p' "$dir/run.log")
        [ -n "$RUN_URL" ] && return 0
        stack_alive "$RUN_PID" || break
        sleep 0.1
    done
    if stack_alive "$RUN_PID"; then
        stop_run TERM
    else
        RUN_STATUS=0
        wait "$RUN_PID" 2> /dev/null || RUN_STATUS=$?
        RUN_PID=
    fi
    return 1
}

# stop_run SIGNAL: to the script alone (SIGTERM), or to its whole process
# group as a terminal's Ctrl-C does (INT). Sets RUN_STATUS.
stop_run() {
    local i
    if [ "$1" = INT ]; then
        kill -INT -- "-$RUN_PID" 2> /dev/null
    else
        kill -TERM "$RUN_PID" 2> /dev/null
    fi
    for ((i = 0; i < 200; i++)); do
        stack_alive "$RUN_PID" || break
        sleep 0.1
    done
    RUN_STATUS=0
    wait "$RUN_PID" 2> /dev/null || RUN_STATUS=$?
    RUN_PID=
}

# denied USER COMMAND...: true when COMMAND fails as USER.
# shellcheck disable=SC2317 # called by check
denied() {
    ! runuser -u "$1" -- "${@:2}" > /dev/null 2>&1
}

# The users the route processes of the run in $1 run as (each has its
# configuration in its environment), sorted, on one line.
route_users() {
    local pid
    leftovers "$1/" | awk '$2 ~ /\.fcgi$/ { print $1 }' | while read -r pid; do
        ps -o user:32= -p "$pid"
    done | sort -u | xargs
}

# check_users LABEL SERVER DIR [VAR=VALUE...]: started as root, the routes
# run as fcgi-session under spawn-fcgi, which alone may open the secret and
# the store; the servers that start them themselves run them as their own
# user (mod_fcgid: www-data, lighttpd's bin-path: root). CGI processes come
# and go: not checked.
check_users() {
    local label=$1 server=$2 dir=$3 want
    shift 3
    case $server in
    lighttpd | apache | nginx) want='fcgi-session' ;;
    apache-fcgid) want=www-data ;;
    *) return 0 ;;
    esac
    [[ " $* " == *" FCGI=lighttpd "* ]] && want=root
    is "$(route_users "$dir")" "$want" "$label: the routes run as $want (ps -o user=)"
    [ "$want" = fcgi-session ] || return 0
    is "$(stat -c '%U %a' "$dir/secret" "$dir/sessions" | xargs)" "fcgi-session 600 fcgi-session 700" \
        "$label: the secret and the store are fcgi-session's, 0600 and 0700"
    check "$label: www-data cannot read the secret" denied www-data cat "$dir/secret"
    check "$label: www-data cannot open the store" denied www-data ls "$dir/sessions"
    like "$(stat -c '%U %G %a' "$dir"/var/run/*.sock | sort -u)" "^fcgi-session (www-data|root) 660\$" \
        "$label: the sockets are fcgi-session's and the server's group's, 0660"
}

# check_run LABEL SERVER SIGNAL [VAR=VALUE...]: one run of SERVER in the
# directory $T_DIR/LABEL (kept for a next run of the same LABEL), with the
# given environment; SIGNAL stops it.
check_run() {
    local label=$1 server=$2 signal=$3 dir=$T_DIR/$1 left
    shift 3
    mkdir -p "$dir" && chmod 711 "$dir"
    t_config "$dir/fcgi-session.conf" secret_file=secret store=lmdb:sessions "html_dir=$T_ROOT/html"
    if ! start_run "$dir" "$server" "$@"; then
        not_ok "$label: make run starts"
        [ -n "$RUN_PID" ] && stop_run TERM
        return
    fi
    ok "$label: make run starts and prints $RUN_URL"
    check "$label: the secret is made, 0600" test "$(stat -c %a "$dir/secret" 2> /dev/null)" = 600
    T_URL=$RUN_URL T_ORIGIN=$RUN_URL T_CACERT=
    if [[ $RUN_URL == https:* ]]; then
        T_CACERT=$dir/var/tls/cert.pem
        check "$label: the certificate and its key (0600) are in VAR/tls" \
            test -s "$T_CACERT" -a "$(stat -c %a "$dir/var/tls/key.pem" 2> /dev/null)" = 600
    fi
    login_json "$label" alice wonderland
    is "$(json .user.username)" alice "$label: the demo account alice logs in"
    if [ -n "$T_CACERT" ]; then
        like "$(set_cookie)" '; Secure;' "$label: the cookie carries Secure"
    else
        unlike "$(set_cookie)" 'Secure' "$label: no Secure over http"
    fi
    get "$label" /profile
    like "$(text)" 'Hello alice' "$label: GET /profile: Hello alice"
    [ "$(id -u)" -eq 0 ] && check_users "$label" "$server" "$dir" "$@"
    stop_run "$signal"
    case $signal in
    INT) is "$RUN_STATUS" 130 "$label: Ctrl-C stops it (exit 130)" ;;
    TERM) is "$RUN_STATUS" 143 "$label: SIGTERM stops it (exit 143)" ;;
    esac
    check "$label: nothing listens on $RUN_PORT any more" eval "! stack_port_open $RUN_PORT"
    left=$(leftovers "$dir/")
    is "$left" "" "$label: nothing left running"
    T_CACERT=
}

for server in "${servers[@]}"; do
    check_run "$server" "$server" TERM
done
check_run lighttpd-ctrl-c lighttpd INT
# lighttpd's own process manager, which spawn-fcgi replaces by default as root.
check_run lighttpd-bin-path lighttpd TERM FCGI=lighttpd
check_run apache-ctrl-c apache INT

# --- TLS=1: a certificate at the first run, the same one at the next
check_run tls lighttpd TERM TLS=1
first=$(openssl x509 -noout -fingerprint -sha256 -in "$T_DIR/tls/var/tls/cert.pem" 2> /dev/null)
check_run tls apache TERM TLS=1
second=$(openssl x509 -noout -fingerprint -sha256 -in "$T_DIR/tls/var/tls/cert.pem" 2> /dev/null)
like "$first" 'Fingerprint=' "TLS=1: a certificate was made at the first run"
is "$second" "$first" "TLS=1: the next run keeps it"
like "$(openssl x509 -noout -ext subjectAltName -in "$T_DIR/tls/var/tls/cert.pem" 2> /dev/null)" \
    'DNS:localhost, IP Address:127.0.0.1' "TLS=1: the certificate names localhost and 127.0.0.1"

done_testing
