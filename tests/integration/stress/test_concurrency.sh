#!/usr/bin/env bash
# parallel: no (hundreds of requests at once, four processes a write route: a load of its own)
# Concurrent requests of one session are serializable (README, "Parallel requests of one session"): 8
# clients sharing one cookie send 100 GET /views each, in parallel, and the
# counter ends at exactly the number of 200 answers, on LMDB (lmdb_sync meta
# and none, four processes per write route, so group commit batches them)
# and on Redis; parallel theme and lang POST /prefs both survive, 60 times
# over; a /views load during a logout leaves the session destroyed; and 64
# clients on one session (many more than processes) all get through.
# timeout: 600
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CLIENTS=8
EACH=100
R_PORT= R_PID=

# new_session: a session with {"views":1}; sets SID (the cookie value).
new_session() {
    get - /views
    SID=$(set_cookie_value)
}

# hammer_views: CLIENTS curls, each EACH requests (one keep-alive
# connection, curl's URL range), all on SID; prints one status per request.
hammer_views() {
    local i pids=()
    for ((i = 0; i < CLIENTS; i++)); do
        curl -s -w '\n%{http_code}\n' -H "Cookie: sid=$SID" --max-time 60 \
            "$T_URL/views?n=[1-$EACH]" | grep -E '^[0-9]{3}$' &
        pids+=($!)
    done
    wait "${pids[@]}"
}

# views_test LABEL: the 8 x 100 test on the running stack.
views_test() {
    local label=$1 codes ok others views
    new_session
    codes=$(hammer_views)
    ok=$(grep -c '^200$' <<< "$codes")
    others=$(grep -vc '^200$' <<< "$codes")
    get_json - /session -H "Cookie: sid=$SID"
    views=$(json .views)
    diag "$label: $ok answers of 200, $others others, views = $views"
    is "$views" "$((ok + 1))" "$label: $CLIENTS x $EACH parallel GET /views on one session: counter = 1 + the 200 answers"
    check "$label: at least 95 % of the parallel requests answered 200 ($ok)" \
        test "$ok" -ge $((CLIENTS * EACH * 95 / 100))
    # Every answer that was not 200 must have been the documented 503.
    is "$(grep -v '^200$' <<< "$codes" | grep -vc '^503$')" 0 "$label: no answer other than 200 or 503"
}

# prefs_test LABEL: 60 trials of theme and lang posted at the same moment.
prefs_test() {
    local label=$1 trial both=0 p1 p2
    for ((trial = 0; trial < 60; trial++)); do
        new_session
        curl -s -o /dev/null -H "Cookie: sid=$SID" -H 'Content-Type: application/json' \
            -H "Origin: $T_ORIGIN" --data-binary "{\"theme\":\"dark$trial\"}" "$T_URL/prefs" &
        p1=$!
        curl -s -o /dev/null -H "Cookie: sid=$SID" -H 'Content-Type: application/json' \
            -H "Origin: $T_ORIGIN" --data-binary "{\"lang\":\"fr$trial\"}" "$T_URL/prefs" &
        p2=$!
        wait "$p1" "$p2"
        get_json - /prefs -H "Cookie: sid=$SID"
        if [ "$(json .theme)" = "dark$trial" ] && [ "$(json .lang)" = "fr$trial" ]; then
            both=$((both + 1))
        fi
    done
    is "$both" 60 "$label: parallel theme + lang POST /prefs: both kept in 60 of 60 trials"
}

# logout_test LABEL: a /views load while the session logs out.
logout_test() {
    local label=$1 csrf load
    login_json a alice wonderland
    status_is 200 "$label: alice logs in"
    SID=$(jar_sid a)
    hammer_views > /dev/null &
    load=$!
    sleep 0.2
    get a /logout
    csrf=$(csrf_token)
    post_form a /logout "csrf=$csrf"
    wait "$load"
    get_json - /session -H "Cookie: sid=$SID"
    status_is 401 "$label: after a logout under a parallel /views load, the session stays destroyed"
}

redis_stop() {
    [ -n "$R_PID" ] || return 0
    kill "$R_PID" 2> /dev/null
    wait "$R_PID" 2> /dev/null
    R_PID=
}
trap redis_stop EXIT

start_stack store=lmdb:sessions-meta lmdb_sync=meta
views_test "LMDB, lmdb_sync = meta"
# Many more clients than processes: a request that keeps losing to newer
# ones must still get through (SESS_RERUN_MAX), not be answered 503.
CLIENTS=64 EACH=15 views_test "LMDB, lmdb_sync = meta, 64 clients"
prefs_test "LMDB, lmdb_sync = meta"
logout_test "LMDB, lmdb_sync = meta"
stop_stack

start_stack store=lmdb:sessions-none lmdb_sync=none
views_test "LMDB, lmdb_sync = none"
prefs_test "LMDB, lmdb_sync = none"
stop_stack

if command -v redis-server > /dev/null && command -v redis-cli > /dev/null; then
    for ((try = 0; try < 5; try++)); do
        R_PORT=$(stack_free_port)
        redis_start && break
    done
    [ "$try" -lt 5 ] || bail "redis-server did not start: $(tail -n 5 "$T_DIR/redis.log")"
    start_stack "store=redis://127.0.0.1:$R_PORT/0"
    views_test "Redis"
    prefs_test "Redis"
    logout_test "Redis"
    stop_stack
    redis_stop
else
    skip "the Redis store under parallel requests" "redis-server is not installed"
fi

done_testing
