#!/usr/bin/env bash
# parallel: no (a write load, a failover within 15 s)
# timeout: 400
# Redis that survives losing a node: store = redis-sentinel://... over a
# master, two replicas and three sentinels (quorum 2) on loopback ports of
# this test's own. Under a /views write load on several sessions the master
# is killed (-9): the routes answer 200 again within 15 s, a logged-in
# cookie is still logged in, and with redis_min_replicas = 1 every count a
# client was told survives (each session counts on from the last 200 it
# answered). The same with redis_min_replicas = 0 is measured and reported
# (diag). With every sentinel stopped a route that needs a new connection
# answers 503, and serves again when they are back.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

MASTER=mymaster
SESSIONS=4
LOAD_MAX_S=60 # a load loop stops by itself after this
declare -A R_PID=() S_PID=()
R_PORTS=() S_PORTS=()
LOAD_PIDS=()

skip_all() {
    skip "Redis failover under Sentinel" "$1"
    printf '1..%d\n' "$T_N"
    exit 0
}

stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -CONT "$pid" 2> /dev/null
    kill "$pid" 2> /dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        stack_alive "$pid" || break
        sleep 0.1
    done
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
}

stop_load() {
    local pid
    touch "$T_DIR/stop"
    for pid in "${LOAD_PIDS[@]}"; do
        wait "$pid" 2> /dev/null || true
    done
    LOAD_PIDS=()
}

failover_cleanup() {
    local p
    stop_load
    for p in "${S_PID[@]}" "${R_PID[@]}"; do
        stop_pid "$p"
    done
    t_cleanup
}
trap failover_cleanup EXIT

rcli() {
    local port=$1
    shift
    timeout 5 redis-cli -p "$port" "$@" 2> /dev/null
}

# redis_start PORT [MASTER_PORT]: a server, a replica of MASTER_PORT if given.
redis_start() {
    local port=$1 of=${2:-} i args=()
    mkdir -p "$T_DIR/r$port"
    [ -n "$of" ] && args=(--replicaof 127.0.0.1 "$of")
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$T_DIR/r$port" --daemonize no "${args[@]}" >> "$T_DIR/redis.$port.log" 2>&1 &
    R_PID[$port]=$!
    for ((i = 0; i < 100; i++)); do
        stack_alive "${R_PID[$port]}" || return 1
        [ "$(rcli "$port" ping)" = PONG ] && return 0
        sleep 0.05
    done
    return 1
}

sentinel_start() {
    local port=$1 master_port=$2 conf i
    conf=$T_DIR/sentinel.$port.conf
    if [ ! -f "$conf" ]; then
        cat > "$conf" << EOF
port $port
bind 127.0.0.1
daemonize no
dir $T_DIR
sentinel monitor $MASTER 127.0.0.1 $master_port 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 4000
sentinel parallel-syncs $MASTER 2
EOF
    fi
    $SENTINEL "$conf" >> "$T_DIR/sentinel.$port.log" 2>&1 &
    S_PID[$port]=$!
    for ((i = 0; i < 100; i++)); do
        stack_alive "${S_PID[$port]}" || return 1
        [ "$(rcli "$port" ping)" = PONG ] && return 0
        sleep 0.05
    done
    return 1
}

# The master's port as the sentinels name it.
master_port() {
    rcli "${S_PORTS[0]}" sentinel get-master-addr-by-name "$MASTER" | sed -n 2p
}

# until_true SECONDS COMMAND...: polls COMMAND every 0.2 s.
until_true() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 5; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

# Every sentinel knows the two replicas and the two other sentinels, and
# the master has both replicas online.
topology_ready() {
    local s m
    m=$(master_port)
    [ -n "$m" ] || return 1
    [ "$(rcli "$m" info replication | grep -c 'state=online')" -ge 2 ] || return 1
    for s in "${S_PORTS[@]}"; do
        [ "$(rcli "$s" sentinel master "$MASTER" | sed -n '/^num-slaves$/{n;p}')" = 2 ] || return 1
        [ "$(rcli "$s" sentinel master "$MASTER" | sed -n '/^num-other-sentinels$/{n;p}')" = 2 ] ||
            return 1
        [ "$(rcli "$s" sentinel get-master-addr-by-name "$MASTER" | sed -n 2p)" = "$m" ] || return 1
    done
}

# True when every replica of the master has all of its writes: the
# sentinels may fail over when they wake from a stop (their last ping is
# older than down-after then), and that must not lose a write they never
# had the time to copy.
replicas_caught_up() {
    local m info offset
    m=$(master_port)
    [ -n "$m" ] || return 1
    info=$(rcli "$m" info replication | tr -d '\r')
    offset=$(sed -n 's/^master_repl_offset://p' <<< "$info")
    [ -n "$offset" ] || return 1
    [ "$(grep -c 'state=online' <<< "$info")" -ge 2 ] || return 1
    ! grep '^slave[0-9]*:' <<< "$info" | grep -vq "offset=$offset,"
}

now_ms() {
    date +%s%3N
}

# load I: GET /views with session I's jar until $T_DIR/stop appears or
# LOAD_MAX_S pass; one line per request: "START_MS END_MS STATUS VIEWS".
load() {
    local i=$1 end out code body views start
    end=$(($(date +%s) + LOAD_MAX_S))
    while [ ! -e "$T_DIR/stop" ] && [ "$(date +%s)" -lt "$end" ]; do
        start=$(now_ms)
        out=$(curl -s -m 5 -b "$T_DIR/jar.s$i" -c "$T_DIR/jar.s$i" -H 'Accept: application/json' \
            -w '\n%{http_code}' "$T_URL/views" 2> /dev/null)
        code=${out##*$'\n'}
        body=${out%$'\n'*}
        views=$(sed -n 's/.*"views": *\([0-9]*\).*/\1/p' <<< "$body")
        echo "$start $(now_ms) ${code:-000} ${views:--}" >> "$T_DIR/load.$i"
    done
}

# failover_round LABEL: the load on fresh sessions, the master killed,
# then the figures. Sets FIRST_200_MS, N_503, LOST.
failover_round() {
    local label=$1 i t0 old first last v lost=0 n503=0 t bad
    rm -f "$T_DIR/stop" "$T_DIR"/load.* "$T_DIR"/jar.s*
    for ((i = 0; i < SESSIONS; i++)); do
        get_json "s$i" /views
        [ "$STATUS" = 200 ] || bail "$label: /views before the failover: $STATUS $BODY"
    done
    for ((i = 0; i < SESSIONS; i++)); do
        load "$i" &
        LOAD_PIDS+=($!)
    done
    sleep 2
    old=$(master_port)
    t0=$(now_ms)
    kill -9 "${R_PID[$old]}"
    wait "${R_PID[$old]}" 2> /dev/null
    unset "R_PID[$old]"
    # The first 200 to a request sent after the kill, then a few more
    # seconds of writes on the new master.
    first=
    for ((t = 0; t < 150; t++)); do
        first=$(sort -n "$T_DIR"/load.* |
            awk -v t0="$t0" '$1 > t0 && $3 == 200 { print $2 - t0; exit }')
        [ -n "$first" ] && break
        sleep 0.2
    done
    sleep 3
    stop_load
    FIRST_200_MS=${first:-none}
    for ((i = 0; i < SESSIONS; i++)); do
        n503=$((n503 + $(awk -v t0="$t0" '$2 > t0 && $3 == 503' "$T_DIR/load.$i" | wc -l)))
        last=$(awk '$3 == 200 { v = $4 } END { print v }' "$T_DIR/load.$i")
        # Every process finds the new master on its own: a 503 from one
        # still on its way there is expected, not reported.
        bad=${#T_BAD_STATUS[@]}
        for ((t = 0; t < 75; t++)); do
            get_json "s$i" /views
            [ "$STATUS" = 200 ] && break
            sleep 0.2
        done
        [ "$STATUS" = 200 ] && T_BAD_STATUS=("${T_BAD_STATUS[@]:0:$bad}")
        v=$(json .views)
        if [ "$STATUS" != 200 ] || [ -z "$last" ] || [ "$v" -le "$last" ]; then
            lost=$((lost + 1))
            diag "$label: session $i was told $last, counts on with $STATUS $v"
        fi
    done
    N_503=$n503
    LOST=$lost
    diag "$label: killed master :$old; first 200 after ${FIRST_200_MS} ms; $N_503 answers 503 meanwhile; $(cat "$T_DIR"/load.* | wc -l) requests; sessions that lost an acknowledged write: $LOST of $SESSIONS; new master :$(master_port)"
}

# ------------------------------------------------------------------ setup

command -v redis-server > /dev/null && command -v redis-cli > /dev/null ||
    skip_all "redis-server is not installed (scripts/deps installs it)"
if command -v redis-sentinel > /dev/null; then
    SENTINEL=redis-sentinel
else
    SENTINEL="redis-server --sentinel"
fi

for ((k = 0; k < 3; k++)); do
    R_PORTS+=("$(stack_free_port)")
done
redis_start "${R_PORTS[0]}" || bail "redis-server did not start: $(tail -n 3 "$T_DIR"/redis.*.log)"
redis_start "${R_PORTS[1]}" "${R_PORTS[0]}" || bail "a replica did not start"
redis_start "${R_PORTS[2]}" "${R_PORTS[0]}" || bail "a replica did not start"
for ((k = 0; k < 3; k++)); do
    S_PORTS+=("$(stack_free_port)")
    sentinel_start "${S_PORTS[$k]}" "${R_PORTS[0]}" ||
        bail "redis-sentinel did not start: $(tail -n 3 "$T_DIR"/sentinel.*.log)"
done
until_true 30 topology_ready || bail "the sentinels did not see the topology: $(tail -n 5 "$T_DIR"/sentinel.*.log)"
ok "a master, two replicas and three sentinels are up"

STORE_URL="redis-sentinel://127.0.0.1:${S_PORTS[0]},127.0.0.1:${S_PORTS[1]},127.0.0.1:${S_PORTS[2]}/$MASTER"
TEST_PROCS=2 start_stack "store=$STORE_URL" redis_min_replicas=1 redis_timeout_ms=500

login_json a alice wonderland
status_is 200 "login through the sentinels' master"
get_json a /views
is "$STATUS $(json .views)" "200 1" "/views counts"

# ------------------------------------------- the master killed, min_replicas 1

bad_before=${#T_BAD_STATUS[@]}
failover_round "redis_min_replicas = 1"
check "routes answer 200 again within 15 s (${FIRST_200_MS} ms)" \
    test "$FIRST_200_MS" != none -a "${FIRST_200_MS/none/99999}" -lt 15000
is "$LOST" 0 "redis_min_replicas = 1: no session lost a count a client was told"
get_json a /session
is "$STATUS $(json .user.username)" "200 alice" "the logged-in cookie is still logged in"
get_json a /views
is "$STATUS $(json .views)" "200 2" "and its count goes on"
listed=$("$T_BUILD/sessctl" -c "$T_CONFIG" sessions --user alice 2> /dev/null)
is "$(grep -c ' alice ' <<< "$listed")" 1 "sessctl finds alice's session on the new master, by the index"

# The old master back, as a replica of the new one (the sentinels turn it).
old_port=
for p in "${R_PORTS[@]}"; do
    [ -n "${R_PID[$p]:-}" ] || old_port=$p
done
redis_start "$old_port" || bail "the old master did not start again"
until_true 30 topology_ready || bail "the old master did not rejoin: $(tail -n 5 "$T_DIR"/sentinel.*.log)"
ok "the old master rejoined as a replica"

# ------------------------------------------- the master killed, min_replicas 0

stop_stack
TEST_PROCS=2 start_stack "store=$STORE_URL" redis_min_replicas=0 redis_timeout_ms=500
# The sentinels start no second failover of one master within twice
# failover-timeout of the first.
sleep 4
failover_round "redis_min_replicas = 0"
check "routes answer 200 again within 15 s (${FIRST_200_MS} ms)" \
    test "$FIRST_200_MS" != none -a "${FIRST_200_MS/none/99999}" -lt 15000
ok "redis_min_replicas = 0: $LOST of $SESSIONS sessions lost an acknowledged count (measured, not judged)"

# --------------------------------------------------- no sentinel answers

get_json z /views
is "$STATUS $(json .views)" "200 1" "a new session on the master the sentinels named last"
until_true 10 replicas_caught_up || diag "the replicas had not caught up with the master in 10 s"
bad_before=${#T_BAD_STATUS[@]}
for p in "${S_PORTS[@]}"; do
    kill -STOP "${S_PID[$p]}"
done
# Every connection of ours goes, on whichever server it is (one sentinel's
# word on the master may lag the routes' own just after a failover): the
# next request must ask the sentinels.
for p in "${!R_PID[@]}"; do
    rcli "$p" client kill type normal > /dev/null
done
get_json z /views
status_is 503 "no sentinel answers: /views answers 503"
get_json z /views
status_is 503 "... and again"
for p in "${S_PORTS[@]}"; do
    kill -CONT "${S_PID[$p]}"
done
for ((i = 0; i < 50; i++)); do
    get_json z /views
    [ "$STATUS" = 200 ] && break
    sleep 0.2
done
status_is 200 "the sentinels back: /views serves again, nothing restarted"
is "$(json .views)" 2 "the session counts on"
T_BAD_STATUS=("${T_BAD_STATUS[@]:0:$bad_before}")

stop_stack
for p in "${S_PORTS[@]}" ; do
    stop_pid "${S_PID[$p]}"
    unset "S_PID[$p]"
done
for p in "${!R_PID[@]}"; do
    stop_pid "${R_PID[$p]}"
    unset "R_PID[$p]"
done
ok "the servers and sentinels this test started are stopped"
done_testing
