#!/usr/bin/env bash
# parallel: no (a write load, executables killed, an answer within 5 s)
# Crash safety: a write load (GET /views on many sessions) while the views
# executables are killed with SIGKILL, several times. The server must answer
# again within 5 s, no client may see its counter go back (an acknowledged
# write is never lost), and the LMDB environment must still read. A power
# loss with lmdb_sync = full cannot be simulated here: that rests on LMDB's
# own guarantee (a commit is durable once mdb_txn_commit returns).
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CLIENTS=6
LOAD_SECONDS=${CRASH_LOAD_SECONDS:-8}
KILLS=3

TEST_PROCS=2 start_stack

views_pids() {
    pgrep -P "$STACK_LIGHTTPD_PID" -f "cgi-bin/views.fcgi" | tr '\n' ' '
}

# One client: GET /views in a loop with its own cookie jar; each line of
# its log is "STATUS BODY".
client_loop() {
    local n=$1 end=$((SECONDS + LOAD_SECONDS)) out
    while [ "$SECONDS" -lt "$end" ]; do
        out=$(curl -s --max-time 5 -b "$T_DIR/crash.jar.$n" -c "$T_DIR/crash.jar.$n" \
            -w ' %{http_code}' "$T_URL/views" 2> /dev/null) || out=" 000"
        printf '%s %s\n' "${out##* }" "${out% *}" >> "$T_DIR/crash.log.$n"
    done
}

before=$(views_pids)
check "views.fcgi runs ($before)" test -n "$before"

loops=()
for ((n = 0; n < CLIENTS; n++)); do
    client_loop "$n" &
    loops+=($!)
done

worst=0
for ((k = 1; k <= KILLS; k++)); do
    sleep 1.5
    pids=$(views_pids)
    # shellcheck disable=SC2086 # a list of pids
    [ -n "$pids" ] && kill -KILL $pids 2> /dev/null
    start=$(date +%s%N)
    status=000
    for ((i = 0; i < 100; i++)); do
        status=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$T_URL/views") || true
        [ "$status" = 200 ] && break
        sleep 0.05
    done
    ms=$((($(date +%s%N) - start) / 1000000))
    [ "$ms" -gt "$worst" ] && worst=$ms
    is "$status" 200 "kill $k (pids $pids): answering again after $ms ms"
    check "kill $k: back within 5 s ($ms ms)" test "$ms" -le 5000
done
# Only the clients: lighttpd is a child of this shell too.
wait "${loops[@]}"

# Every client's acknowledged counts go strictly up: a count that repeats or
# goes back is an acknowledged write the store lost.
acked=0 failed=0 skipped=0 lost=0
for ((n = 0; n < CLIENTS; n++)); do
    last=0
    while read -r status body; do
        if [ "$status" != 200 ]; then
            failed=$((failed + 1))
            continue
        fi
        v=$(sed -E 's/^\{"views":([0-9]+)\}$/\1/' <<< "$body")
        if ! [[ $v =~ ^[0-9]+$ ]]; then
            lost=$((lost + 1))
            diag "client $n: unexpected body '$body'"
            continue
        fi
        acked=$((acked + 1))
        if [ "$v" -le "$last" ]; then
            lost=$((lost + 1))
            diag "client $n: count $v after acknowledged $last"
        elif [ "$v" -gt $((last + 1)) ]; then
            # Written, then the process died before the answer went out.
            skipped=$((skipped + v - last - 1))
        fi
        last=$v
    done < "$T_DIR/crash.log.$n"
done
diag "acknowledged writes: $acked; failed requests: $failed; unacknowledged writes: $skipped; worst recovery: $worst ms"
check "the load got through ($acked acknowledged writes)" test "$acked" -ge $((CLIENTS * 10))
is "$lost" 0 "no acknowledged write lost, no counter went back"

after=$(views_pids)
check "views.fcgi was started again ($after)" test -n "$after"

if command -v mdb_stat > /dev/null; then
    check "mdb_stat reads the environment" eval "mdb_stat -a \"$T_DIR/sessions\" > /dev/null"
else
    skip "mdb_stat reads the environment" "lmdb-utils is not installed"
fi

# The kills were on purpose: stop the stack without the "no executable
# died" check of stop_stack.
T_STACK_UP=
if stack_stop 2> "$T_DIR/stop.err"; then
    ok "stack stopped: nothing left running or listening"
else
    not_ok "stack stopped: nothing left running or listening"
    diag "$(cat "$T_DIR/stop.err")"
fi
# The refused requests during the kills are expected here.
T_BAD_STATUS=()
done_testing
