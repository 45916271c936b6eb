#!/usr/bin/env bash
# parallel: no (10 000 connections held open, descriptors to the hard limit)
# Connection and request-size exhaustion through the real stack. 10 000
# idle client connections are lighttpd's to hold: the FastCGI executables
# never see them, keep their few descriptors, and go on answering other
# clients at once; when the connections close, everything is as before.
# Oversized and numerous request headers (which become FastCGI params) get
# lighttpd's 431 or a clean answer from the executables, never a crash
# (stop_stack checks that no executable died).
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

WANT=10000
HOLD_PID=

# shellcheck disable=SC2317 # run by the EXIT trap
conns_cleanup() {
    if [ -n "$HOLD_PID" ]; then
        kill "$HOLD_PID" 2> /dev/null
        wait "$HOLD_PID" 2> /dev/null
        HOLD_PID=
    fi
    t_cleanup
}
trap conns_cleanup EXIT

start_stack

# ------------------------------------------------------ lighttpd's limits

# The shipped template keeps lighttpd's defaults (4096 descriptors, a third
# of them for connections): past ~1365 connections lighttpd stops
# accepting, and an idle crowd then locks everyone out before any
# executable is involved. Give it room for the crowd and one more client,
# within what this machine allows (lighttpd wants 2 descriptors per
# connection), by restarting it with two more settings.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
fds=$((hard < 32768 ? hard : 32768))
max_conns=$((fds / 2))
idle=$((max_conns - 16 < WANT ? max_conns - 16 : WANT))
conf=$STACK_RUN/lighttpd.conf
if [ "$idle" -lt 1000 ]; then
    skip "$WANT idle connections" "a descriptor limit of $hard leaves lighttpd too few connections"
    done_testing
fi
stack_stop > /dev/null 2>&1
printf 'server.max-fds = %d\nserver.max-connections = %d\n' "$fds" "$max_conns" >> "$conf"
stack_start 2> "$T_DIR/restart.err" || bail "lighttpd did not start again: $(cat "$T_DIR/restart.err")"
[ "$idle" -lt "$WANT" ] &&
    diag "this machine's descriptor limit ($hard) lets lighttpd hold $max_conns connections: $idle idle ones here"

"${CC:-cc}" -O2 -o "$T_DIR/hold_conns" "$T_ROOT/tests/integration/hold_conns.c" 2> "$T_DIR/cc.err" ||
    bail "cannot build hold_conns: $(head -n 3 "$T_DIR/cc.err")"

# ----------------------------------------------------- idle connections

fd_count() {
    local fds=(/proc/"$1"/fd/*)
    printf '%d\n' "${#fds[@]}"
}

exec_pids=$(stack_children "$STACK_LIGHTTPD_PID" | sort -n | tr '\n' ' ')
check "lighttpd runs the executables ($exec_pids)" test -n "$exec_pids"
max_exec_fds=0
for pid in $exec_pids; do
    n=$(fd_count "$pid")
    [ "$n" -gt "$max_exec_fds" ] && max_exec_fds=$n
done
base_fds=$(fd_count "$STACK_LIGHTTPD_PID")

get client /views
is "$STATUS $BODY" '200 {"views":1}' "a client's first visit before the crowd"
login_json bob bob builder
status_is 200 "bob logs in before the crowd"

port=${T_URL##*:}
# coproc sets HOLD_PID, which the cleanup kills if the test ends early.
coproc HOLD { exec "$T_DIR/hold_conns" "$STACK_BIND" "$port" "$idle"; }
line=
read -r -t 60 line <&"${HOLD[0]}"
is "$line" "connected $idle" "$idle idle connections are open"
# They are lighttpd's once it has accepted them all.
accepted=0
for ((i = 0; i < 200; i++)); do
    accepted=$(($(fd_count "$STACK_LIGHTTPD_PID") - base_fds))
    [ "$accepted" -ge "$idle" ] && break
    sleep 0.05
done
check "lighttpd accepted them all ($accepted)" test "$accepted" -ge "$idle"

T_MAX_TIME=2 get client /views
is "$STATUS $BODY" '200 {"views":2}' "with the crowd connected, a client's next visit: 200 in ${T_TIME} s"
T_MAX_TIME=2 get_json bob /session
is "$STATUS $(json .user.username)" "200 bob" "with the crowd connected, GET /session: 200 in ${T_TIME} s"
T_MAX_TIME=2 get_json - /
status_is 200 "with the crowd connected, GET /: 200 in ${T_TIME} s"
args=()
for ((i = 0; i < 20; i++)); do
    args+=(-o /dev/null "$T_URL/views")
done
statuses=$(curl -s --max-time 10 -w '%{http_code} ' "${args[@]}" 2> /dev/null)
is "$statuses" "$(printf '200 %.0s' {1..20})" "with the crowd connected, 20 new clients: all 200"

grew=
for pid in $exec_pids; do
    n=$(fd_count "$pid")
    [ "$n" -gt "$max_exec_fds" ] && grew="$grew $pid:$n"
done
is "$grew" "" "the executables hold no more descriptors than before the crowd (at most $max_exec_fds)"

hold_in=${HOLD[1]}
exec {hold_in}>&-
line=
read -r -t 30 line <&"${HOLD[0]}"
wait "$HOLD_PID" 2> /dev/null
HOLD_PID=
is "$line" "open $idle" "lighttpd kept every idle connection open while the test ran"

left=
for ((i = 0; i < 200; i++)); do
    left=$(($(fd_count "$STACK_LIGHTTPD_PID") - base_fds))
    [ "$left" -le 0 ] && break
    sleep 0.05
done
check "the crowd gone, lighttpd holds no more descriptors than before ($left more)" test "$left" -le 0
get client /views
is "$STATUS $BODY" '200 {"views":3}' "after the crowd, the client's visits go on"
is "$(stack_children "$STACK_LIGHTTPD_PID" | sort -n | tr '\n' ' ')" "$exec_pids" \
    "the same executables serve: none was restarted"

# ------------------------------------------------- oversized and many params

fill() {
    head -c "$1" /dev/zero | tr '\0' a
}

# 4xx from lighttpd, or an answer from the executable; never 5xx or none.
clean_answer() {
    case $STATUS in
    2?? | 4??) ok "$1: $STATUS" ;;
    *) not_ok "$1: $STATUS" && t_last_response ;;
    esac
}

get - /views -H "Cookie: x=$(fill 60000)"
clean_answer "a 60 KB Cookie header"
like "$STATUS" '^4' "a 60 KB Cookie header is refused with a 4xx"

sid=$(jar_sid client)
get - /views -H "Cookie: pad=$(fill 30000); sid=$sid"
is "$STATUS $BODY" '200 {"views":4}' "a 30 KB Cookie header reaches the executable, which finds sid after the padding"
get - /views -H "Cookie: x=$(fill 30000)"
is "$STATUS $BODY" '200 {"views":1}' "a 30 KB Cookie header without sid: a new session"

for n in 200 1000; do
    headers=()
    for ((i = 0; i < n; i++)); do
        headers+=(-H "X-Header-$i: value $i")
    done
    get client /views "${headers[@]}"
    clean_answer "$n request headers ($n FastCGI params)"
done
is "$BODY" '{"views":6}' "the session read through 1000 params is the client's"

headers=()
for ((i = 0; i < 200; i++)); do
    headers+=(-H "Cookie: c$i=$(fill 100)")
done
get - /views "${headers[@]}" -H "Cookie: sid=$sid"
is "$STATUS $BODY" '200 {"views":7}' "200 Cookie headers (one 20 KB HTTP_COOKIE), sid last"

get - "/views?q=$(fill 30000)"
clean_answer "a 30 KB query string"
get - "/views?q=$(fill 70000)"
clean_answer "a 70 KB query string"
get - /views -H "X-$(fill 20000): v"
clean_answer "a header name of 20 KB (a FastCGI param name of 20 KB)"
{
    printf '{"theme":"'
    fill 3000000
    printf '"}'
} > "$T_DIR/big.json"
req - POST /prefs -H 'Content-Type: application/json' --data-binary @"$T_DIR/big.json"
clean_answer "a 3 MB JSON body"
is "$STATUS" 413 "a 3 MB JSON body: 413 from the executable (max_body)"

done_testing
