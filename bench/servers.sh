# Sourced by bench/run: the processes it starts and stops (by pid, every
# one, Ctrl-C included), and the configurations it measures: the demo as
# `make run` serves it, the floors (a bare FastCGI hello, one raw LMDB
# transaction per request; behind the demo's lighttpd configuration and a
# minimal one), and the peers (PHP sessions, express-session). It uses
# bench/run's settings and its log and die.
# shellcheck shell=bash

# ------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------

# Sets FREE_PORT to a loopback port that nothing listens on and that this
# run has not handed out yet.
free_port() {
    local p
    while :; do
        p=$(stack_free_port)
        [[ " ${USED_PORTS[*]} " == *" $p "* ]] && continue
        USED_PORTS+=("$p")
        FREE_PORT=$p
        return 0
    done
}

# Prints the given pids that exist and all their descendants.
proc_tree() {
    [ $# -gt 0 ] || return 0
    # cat goes on past processes that end meanwhile; awk would stop.
    cat /proc/[0-9]*/stat 2> /dev/null | awk -v roots="$*" '
        { line = $0; pid = $1; sub(/^.*\) /, "", line); split(line, f, " "); parent[pid] = f[2] }
        END {
            n = split(roots, r, " ")
            for (i = 1; i <= n; i++) if (r[i] in parent) keep[r[i]] = 1
            do {
                changed = 0
                for (p in parent)
                    if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
            } while (changed)
            for (p in keep) print p
        }'
}

# One line per pid: "pid cpu_ticks comm [rss_kb private_dirty_kb]" (memory
# with $1 = mem).
snapshot() {
    local with_mem=$1 p line rest ut st comm rss pd
    shift
    for p in "$@"; do
        read -r line 2> /dev/null < "/proc/$p/stat" || continue
        read -r comm 2> /dev/null < "/proc/$p/comm" || continue
        rest=${line##*) }
        read -r _ _ _ _ _ _ _ _ _ _ _ ut st _ <<< "$rest"
        if [ "$with_mem" = mem ]; then
            read -r rss pd < <(awk '/^Rss:/ { r = $2 } /^Private_Dirty:/ { d = $2 }
                END { print r + 0, d + 0 }' "/proc/$p/smaps_rollup" 2> /dev/null) || rss=0 pd=0
            echo "$p $((ut + st)) $comm $rss $pd"
        else
            echo "$p $((ut + st)) $comm"
        fi
    done
}

# Stops a configuration started by pid (not through stack.sh): TERM to its
# roots, then TERM and finally KILL to whatever of its tree is left.
stop_tree() {
    local cfg=$1 pids p i left
    # shellcheck disable=SC2086 # lists of pids
    mapfile -t pids < <(proc_tree ${CFG_ROOTS[$cfg]})
    for p in ${CFG_ROOTS[$cfg]}; do
        kill -TERM "$p" 2> /dev/null || true
    done
    for ((i = 0; i < 100; i++)); do
        left=()
        for p in "${pids[@]}"; do
            stack_alive "$p" && left+=("$p")
        done
        [ ${#left[@]} -eq 0 ] && break
        # A child the root left behind (it died first): TERM it too.
        if [ "$i" = 30 ]; then
            kill -TERM "${left[@]}" 2> /dev/null || true
        fi
        sleep 0.1
    done
    if [ ${#left[@]} -gt 0 ]; then
        log "$cfg: still running 10 s after SIGTERM, killed: ${left[*]}"
        kill -KILL "${left[@]}" 2> /dev/null || true
    fi
    for p in ${CFG_ROOTS[$cfg]}; do
        wait "$p" 2> /dev/null || true
    done
}

stack_use() {
    STACK_RUN=${CFG_RUN[$1]}
    STACK_PORT=${CFG_PORT[$1]}
    STACK_LIGHTTPD_PID=${CFG_LIGHTTPD[$1]}
    STACK_BACKEND_PIDS=${CFG_BACKENDS[$1]}
    STACK_ROUTE_PIDS=()
}

stop_config() {
    local cfg=$1
    if [ "${CFG_STACK[$cfg]:-}" = 1 ]; then
        stack_use "$cfg"
        stack_stop > /dev/null 2>> "$work/$cfg/server.log" || log "$cfg: stopped, not cleanly (see $work/$cfg/server.log)"
        CFG_LIGHTTPD[$cfg]=
    else
        stop_tree "$cfg"
    fi
    CFG_ROOTS[$cfg]=
}

stop_all() {
    local i cfg
    for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do
        cfg=${CONFIGS[$i]}
        [ -n "${CFG_ROOTS[$cfg]:-}" ] && stop_config "$cfg"
    done
    CONFIGS=()
}

cleanup() {
    local status=$?
    trap '' INT TERM
    if [ -n "$WRK_PID" ]; then
        kill -TERM "$WRK_PID" 2> /dev/null || true
        wait "$WRK_PID" 2> /dev/null || true
    fi
    stop_all
    if [ "${BENCH_KEEP:-}" != 1 ] && [ -n "$work" ] && [ -d "$work" ]; then
        rm -rf "$work"
    elif [ -n "$work" ]; then
        log "kept ${work#"$root"/}"
    fi
    exit "$status"
}

# ------------------------------------------------------------------------
# Starting the configurations
# ------------------------------------------------------------------------

# start_stack CFG BUILD_DIR CONFIG: lighttpd with the route executables of
# BUILD_DIR/cgi-bin, exactly as `make run` serves them (lighttpd-conf/
# lighttpd-fcgi-bin-path.conf.in, one process per read route, WRITE_PROCS for
# views and prefs).
start_stack() {
    local cfg=$1 attempt rc=1
    STACK_ROOT=$root
    STACK_BUILD=$2
    STACK_CONFIG=$3
    STACK_RUN=$work/$cfg/run
    STACK_FCGI=lighttpd
    # As `make run` starts them (scripts/stack.sh's defaults), but for
    # PROCS processes per read route when given.
    STACK_PROCS=${PROCS:-}
    STACK_WRITE_PROCS=
    STACK_LOG=$work/$cfg/server.log
    for ((attempt = 0; attempt < 5; attempt++)); do
        free_port
        STACK_PORT=$FREE_PORT
        stack_prepare || return 1
        rc=0
        stack_start || rc=$?
        [ "$rc" != 2 ] && break
    done
    [ "$rc" = 0 ] || return 1
    CONFIGS+=("$cfg")
    CFG_STACK[$cfg]=1
    CFG_PORT[$cfg]=$STACK_PORT
    CFG_RUN[$cfg]=$STACK_RUN
    CFG_LIGHTTPD[$cfg]=$STACK_LIGHTTPD_PID
    CFG_BACKENDS[$cfg]=$STACK_BACKEND_PIDS
    CFG_ROOTS[$cfg]=$STACK_LIGHTTPD_PID
}

# A build directory whose route executables are the floor responder: the
# floor then runs behind the very same lighttpd configuration as the demo.
floor_build() {
    local dir=$1 route
    shift
    mkdir -p "$dir/cgi-bin"
    for route in "${STACK_ROUTES[@]}"; do
        printf '#!/bin/sh\nexec %q' "$build/bench/floor" > "$dir/cgi-bin/$route.fcgi"
        printf ' %q' "$@" >> "$dir/cgi-bin/$route.fcgi"
        printf '\n' >> "$dir/cgi-bin/$route.fcgi"
        chmod 755 "$dir/cgi-bin/$route.fcgi"
    done
}

start_floor() {
    local cfg=$1 dir=$work/$1
    shift
    mkdir -p "$dir"
    floor_build "$dir/build" "$@"
    : > "$dir/unused.conf"
    start_stack "$cfg" "$dir/build" "$dir/unused.conf" || die "$cfg: could not start (see $dir/server.log)"
}

# start_min_floor CFG PROCS FLOOR_ARGS...: the floor as a user measures it,
# apart from any configuration of ours: lighttpd with one fastcgi.server
# entry ("/", every path) on one unix socket, where spawn-fcgi started PROCS
# floor processes. What the demo's own configuration costs is the
# difference between this and the floors above.
start_min_floor() {
    local cfg=$1 procs=$2 dir=$work/$1 attempt pid pids='' p
    shift 2
    mkdir -p "$dir/www"
    spawn-fcgi -s "$dir/floor.sock" -M 0600 -F "$procs" -P "$dir/floor.pid" -- \
        "$build/bench/floor" "$@" >> "$dir/server.log" 2>&1 || die "$cfg: spawn-fcgi failed"
    while read -r p || [ -n "$p" ]; do
        [ -n "$p" ] && pids="$pids $p"
    done < "$dir/floor.pid"
    CONFIGS+=("$cfg")
    CFG_ROOTS[$cfg]=${pids# }
    for ((attempt = 0; attempt < 5; attempt++)); do
        free_port
        cat > "$dir/lighttpd.conf" << EOF
server.modules += ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $FREE_PORT
server.document-root = "$dir/www"
server.errorlog = "$dir/lighttpd-error.log"
server.max-keep-alive-requests = 1000
fastcgi.server = ("/" => (("socket" => "$dir/floor.sock", "check-local" => "disable")))
EOF
        setsid "$(stack_find_prog lighttpd)" -D -f "$dir/lighttpd.conf" >> "$dir/server.log" 2>&1 < /dev/null &
        pid=$!
        if wait_http "$FREE_PORT" "$pid"; then
            CFG_ROOTS[$cfg]="$pid${pids}"
            CFG_PORT[$cfg]=$FREE_PORT
            return 0
        fi
        kill -TERM "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
    done
    die "$cfg: lighttpd did not start (see $dir/server.log)"
}

# demo_store DIR SYNC LIVE EXPIRED [HTML_DIR]: etc/fcgi-session.conf with its
# own secret and store in DIR and the pages of HTML_DIR (this tree's html/),
# filled by the generator; the first sessions' cookies go to DIR/cookies,
# and the demo accounts are created.
demo_store() {
    local dir=$1 sync=$2 live=$3 expired=$4 html=${5:-$root/html} key
    mkdir -p "$dir/store"
    stack_secret "$dir/secret"
    # The demo's own file, so the benchmark serves what `make run` serves;
    # only where things live and the sync mode differ. The map is sized for
    # a million sessions up front: growth would purge expired ones first.
    sed -e "s|^secret_file = .*|secret_file = $dir/secret|" \
        -e "s|^store = .*|store = lmdb:$dir/store|" \
        -e "s|^html_dir = .*|html_dir = $html|" \
        -e "s|^lmdb_sync = .*|lmdb_sync = $sync|" \
        -e "s|^lmdb_map_size = .*|lmdb_map_size = 4294967296|" \
        "$root/etc/fcgi-session.conf" > "$dir/fcgi-session.conf"
    for key in secret_file store html_dir lmdb_sync lmdb_map_size; do
        grep -q "^$key = " "$dir/fcgi-session.conf" ||
            die "etc/fcgi-session.conf has no \"$key = \" line to override"
    done
    "$build/bench/gen_sessions" -n "$live" -x "$expired" -k "$sessions_keep" -o "$dir/cookies" \
        "$dir/fcgi-session.conf" >> "$dir/gen.log" || die "gen_sessions failed (see $dir/gen.log)"
    stack_accounts "$build/sessctl" "$dir/fcgi-session.conf" alice admin wonderland bob user builder ||
        die "sessctl could not create the demo accounts in $dir"
}

# start_demo CFG SYNC LIVE EXPIRED [BUILD_DIR]: the demo of BUILD_DIR
# (this run's build by default) over a store of its own, with the pages of
# the tree BUILD_DIR is in (the nearest directory above it with
# html/layout.html), so that an earlier build serves its own pages.
start_demo() {
    local cfg=$1 sync=$2 live=$3 expired=$4 dir=$work/$1 build=${5:-$build} tree
    tree=$build
    while [ "$tree" != / ] && [ ! -f "$tree/html/layout.html" ]; do
        tree=$(dirname "$tree")
    done
    [ -f "$tree/html/layout.html" ] || tree=$root
    mkdir -p "$dir"
    demo_store "$dir" "$sync" "$live" "$expired" "$tree/html"
    start_stack "$cfg" "$build" "$dir/fcgi-session.conf" || die "$cfg: could not start (see $dir/server.log)"
    CFG_COOKIES[$cfg]=$dir/cookies
}

# Waits until GET / answers 200 on the port; false after 20 s or when the
# pid has died.
wait_http() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 200; i++)); do
        stack_alive "$pid" || return 1
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/")" = 200 ] &&
            return 0
        sleep 0.1
    done
    return 1
}

# login_cookies CFG COUNT: logs in COUNT times through POST /login (the
# peers' only way to a logged-in session) and keeps the cookies.
login_cookies() {
    local cfg=$1 count=$2 file=$work/$1/cookies n
    seq "$count" | xargs -P 4 -I{} curl -s -o /dev/null -D - --max-time 30 \
        -H 'Content-Type: application/json' -H 'Accept: application/json' \
        --data "$login_body" "http://127.0.0.1:${CFG_PORT[$cfg]}/login" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(sid=[^;]*\).*/\1/p' > "$file"
    n=$(wc -l < "$file")
    [ "$n" = "$count" ] || {
        log "$cfg: $n of $count logins gave a session cookie"
        return 1
    }
    CFG_COOKIES[$cfg]=$file
}

start_php() {
    local cfg=php dir=$work/php pid
    mkdir -p "$dir/tmp"
    free_port
    # run.sh keeps its configuration, sockets and session files under TMPDIR
    # and removes them when stopped.
    PHP_CHILDREN=8 TMPDIR=$dir/tmp setsid bash "$peers_dir/php/run.sh" "$FREE_PORT" \
        >> "$dir/server.log" 2>&1 < /dev/null &
    pid=$!
    CONFIGS+=("$cfg")
    CFG_ROOTS[$cfg]=$pid
    CFG_PORT[$cfg]=$FREE_PORT
    if ! wait_http "$FREE_PORT" "$pid" || ! login_cookies "$cfg" "$sessions_keep"; then
        stop_config "$cfg"
        SKIPPED+=("php: did not start or log in (see the log of a run with BENCH_KEEP=1)")
        log "php: skipped, see $dir/server.log"
        return 0
    fi
}

# The Express peer runs from a copy under $build with its locked
# dependencies (npm ci), so ../shared stays untouched; it is installed again
# only when app.js or the lock file change.
express_install() {
    local src=$peers_dir/express dst=$build/bench-peers/express stamp
    stamp=$(cat "$src/app.js" "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
    if [ "$(cat "$dst/.stamp" 2> /dev/null)" = "$stamp" ] && [ -d "$dst/node_modules" ]; then
        EXPRESS_DIR=$dst
        return 0
    fi
    rm -rf "$dst"
    mkdir -p "$dst"
    cp "$src/app.js" "$src/package.json" "$src/package-lock.json" "$dst/"
    log "express: npm ci in ${dst#"$root"/}"
    (cd "$dst" && npm ci --no-audit --no-fund --loglevel=error > npm.log 2>&1) || {
        log "express: npm ci failed (see $dst/npm.log)"
        return 1
    }
    echo "$stamp" > "$dst/.stamp"
    EXPRESS_DIR=$dst
}

start_redis() {
    local dir=$work/redis pid i
    mkdir -p "$dir"
    free_port
    setsid redis-server --bind 127.0.0.1 --port "$FREE_PORT" --save '' --appendonly no \
        --dir "$dir" --daemonize no --logfile "$dir/redis.log" > /dev/null 2>&1 < /dev/null &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        stack_alive "$pid" || return 1
        stack_port_open "$FREE_PORT" && break
        sleep 0.1
    done
    REDIS_PID=$pid
    REDIS_PORT=$FREE_PORT
}

start_express() {
    local cfg=$1 store=$2 dir=$work/$1 pid port env=()
    mkdir -p "$dir"
    stack_secret "$dir/secret"
    free_port
    port=$FREE_PORT
    env=(PORT="$port" HOST=127.0.0.1 STORE="$store" SESSION_SECRET_FILE="$dir/secret"
        NODE_ENV=production)
    if [ "$store" = redis ]; then
        if ! start_redis; then
            SKIPPED+=("$cfg: redis-server did not start")
            log "$cfg: skipped, redis-server did not start"
            return 0
        fi
        env+=(REDIS_URL="redis://127.0.0.1:$REDIS_PORT")
    fi
    (cd "$EXPRESS_DIR" && exec setsid env "${env[@]}" node app.js) >> "$dir/server.log" 2>&1 < /dev/null &
    pid=$!
    CONFIGS+=("$cfg")
    CFG_ROOTS[$cfg]="$pid${REDIS_PID:+ $REDIS_PID}"
    REDIS_PID=
    CFG_PORT[$cfg]=$port
    if ! wait_http "$port" "$pid" || ! login_cookies "$cfg" "$sessions_keep"; then
        stop_config "$cfg"
        SKIPPED+=("$cfg: did not start or log in")
        log "$cfg: skipped, see $dir/server.log"
    fi
}

