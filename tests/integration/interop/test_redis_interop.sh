#!/usr/bin/env bash
# One Redis, one secret, one key prefix other than connect-redis's default,
# two apps: our demo with store = redis://... and redis_prefix, and the
# Express peer (express-session + connect-redis) from ../shared/peers/express,
# run from a copy whose RedisStore is given the same prefix (the peer has no
# setting for it).
# A login on either is a login on both, /views counts on across them, logout
# on either ends the session on both, sessctl sees and revokes Express's
# sessions too (its own by --scan: they are not in our index of users);
# with Redis stopped our routes answer 503, and when it is back
# they serve again without a restart.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PEER=$T_ROOT/../shared/peers/express
PREFIX=interop:sess:
R_PORT= R_PID= E_PORT= E_PID= E_URL=

# Skips the whole file with one reason (the peer is not on a user's machine).
skip_all() {
    skip "Express and fcgi-session share sessions in Redis" "$1"
    printf '1..%d\n' "$T_N"
    exit 0
}

stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill "$pid" 2> /dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        stack_alive "$pid" || break
        sleep 0.1
    done
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
}

interop_cleanup() {
    stop_pid "$E_PID"
    stop_pid "$R_PID"
    E_PID= R_PID=
    t_cleanup
}
trap interop_cleanup EXIT

redis() {
    redis-cli -p "$R_PORT" "$@"
}


# on_express COMMAND...: runs a request helper of lib.sh against the peer.
on_express() {
    local ours=$T_URL rc=0
    T_URL=$E_URL
    T_ORIGIN=$E_URL
    "$@" || rc=$?
    T_URL=$ours
    T_ORIGIN=$ours
    return "$rc"
}

quietly() {
    "$@" > /dev/null
}

# The id in a client's jar.
sid_of() {
    cookie_id "$(jar_sid "$1")"
}

# Forgets the 5xx answers the test asked for (Redis stopped on purpose):
# done_testing reports every other one.
forget_bad_status_since() {
    T_BAD_STATUS=("${T_BAD_STATUS[@]:0:$1}")
}

# ------------------------------------------------------------------ setup

[ -d "$PEER" ] || skip_all "no Express peer in ../shared/peers/express"
command -v node > /dev/null || skip_all "node is not installed"
command -v redis-server > /dev/null && command -v redis-cli > /dev/null ||
    skip_all "redis-server is not installed (scripts/deps installs it)"
# npm ci replaces node_modules: only when the lock file is newer than the
# last install, so a peer that a benchmark is running is left alone.
if [ ! -f "$PEER/node_modules/.package-lock.json" ] ||
    [ "$PEER/package-lock.json" -nt "$PEER/node_modules/.package-lock.json" ]; then
    (cd "$PEER" && npm ci --no-audit --no-fund) > "$T_DIR/npm.log" 2>&1 ||
        skip_all "npm ci failed in $PEER: $(tail -n 1 "$T_DIR/npm.log")"
fi

# A free port can be taken between the check and the bind: try a few.
for ((try = 0; try < 5; try++)); do
    R_PORT=$(stack_free_port)
    redis_start && break
done
[ "$try" -lt 5 ] || bail "redis-server did not start: $(tail -n 5 "$T_DIR/redis.log")"
start_stack "store=redis://127.0.0.1:$R_PORT/0" "redis_prefix=$PREFIX"

# The peer as it is but for its RedisStore's prefix, beside its modules.
mkdir -p "$T_DIR/peer"
sed "s/prefix: 'sess:'/prefix: '$PREFIX'/" "$PEER/app.js" > "$T_DIR/peer/app.js"
grep -qF "prefix: '$PREFIX'" "$T_DIR/peer/app.js" ||
    bail "the peer's app.js no longer says prefix: 'sess:'; update this test"
ln -s "$(cd "$PEER" && pwd)/node_modules" "$T_DIR/peer/node_modules"

E_PORT=$(stack_free_port)
E_URL=http://127.0.0.1:$E_PORT
STORE=redis REDIS_URL=redis://127.0.0.1:$R_PORT SESSION_SECRET_FILE=$T_DIR/secret PORT=$E_PORT \
    node "$T_DIR/peer/app.js" > "$T_DIR/express.log" 2>&1 &
E_PID=$!
# node takes seconds to load Express on a busy machine: up to 30 s.
for ((i = 0; i < 300; i++)); do
    stack_port_open "$E_PORT" && break
    stack_alive "$E_PID" || break
    sleep 0.1
done
# Express 5 calls the listen callback on a failed bind too: the peer's
# "on http://..." line does not prove that it listens.
stack_port_open "$E_PORT" ||
    bail "the Express peer does not listen on port $E_PORT: $(tail -n 5 "$T_DIR/express.log")"

# ------------------------------------------------- a login on ours, on Express

login_json a alice wonderland
status_is 200 "login on fcgi-session"
id=$(sid_of a)
like "$(redis get "$PREFIX$id")" '^\{"_fcgi":\{"created":[0-9]+,"deadline":[0-9]+,"owner":"alice","handle":"[A-Za-z0-9_-]{22}","seen":[0-9]+,"addr":"127\.0\.0\.1","ua":"[^"]*"\},"cookie":\{' \
    "the session is plain JSON under PREFIX + ID, our record first"
ttl=$(redis ttl "$PREFIX$id")
check "its TTL is max_age ($ttl s)" test "$ttl" -gt 1790 -a "$ttl" -le 1800

on_express get_json a /session
status_is 200 "Express finds the session"
is "$(json .user.username)/$(json .authenticated)" "alice/true" "Express sees alice logged in"
on_express get_json a /dashboard
is "$(json -c .)" '{"username":"alice","role":"admin"}' "Express's /dashboard shows alice"

get_json a /views
is "$(json .views)" 1 "/views on fcgi-session: 1"
on_express get_json a /views
is "$(json .views)" 2 "/views on Express continues: 2"
get_json a /views
is "$(json .views)" 3 "/views on fcgi-session continues: 3"
on_express get_json a /views
is "$(json .views)" 4 "/views on Express continues: 4"
get_json a /session
is "$(json .user.username)/$(json .views)" "alice/4" "fcgi-session still sees alice, views 4"
is "$(json 'has("_fcgi")')" false "our record's key is hidden from the routes"
like "$(redis get "$PREFIX$id")" '^\{"_fcgi":\{"created":' "Express's saves kept our record"

# Logout on Express; a copy of the jar replays the old cookie.
cp "$T_DIR/jar.a" "$T_DIR/jar.a2"
on_express post_json a /logout '{}'
is "$STATUS $(json .msg)" "200 Logged out" "logout on Express"
is "$(redis exists "$PREFIX$id")" 0 "the session is gone from Redis"
get_json a2 /session
status_is 401 "fcgi-session no longer knows the old cookie"

# ------------------------------------------------- a login on Express, on ours

on_express login_json b alice wonderland
status_is 200 "login on Express"
id=$(sid_of b)
is "${#id}" 32 "Express made its 32-character id"
get_json b /session
status_is 200 "fcgi-session finds Express's session"
is "$(json .user.username)/$(json .authenticated)" "alice/true" "fcgi-session sees alice logged in"
get_json b /dashboard
is "$(json .username)/$(json .role)" "alice/admin" "our /dashboard shows alice"
get_json b /views
is "$(json .views)" 1 "/views on fcgi-session: 1"
on_express get_json b /views
is "$(json .views)" 2 "/views on Express continues: 2"
get_json b /views
is "$(json .views)" 3 "/views on fcgi-session continues: 3"

cp "$T_DIR/jar.b" "$T_DIR/jar.b2"
post_json b /logout '{}' -H "Origin: $T_ORIGIN"
status_is 200 "logout on fcgi-session"
is "$(redis exists "$PREFIX$id")" 0 "the session is gone from Redis"
on_express get_json b2 /session
is "$STATUS $(json -c .)" '401 {"error":"no session"}' "Express no longer knows the old cookie"

# ------------------------------------- remember me and flash, stored alike

# A remembered session carries its lifetime as express-session keeps a
# cookie.maxAge that was set: Express shows the same originalMaxAge.
post_json r /login '{"username":"alice","password":"wonderland","remember":true}'
status_is 200 "a remembered login on fcgi-session"
is "$(json .cookie.originalMaxAge)" 2592000000 "ours: originalMaxAge 2592000000"
on_express get_json r /session
is "$(json .cookie.originalMaxAge)" 2592000000 "Express shows the remembered session's originalMaxAge too"
id=$(sid_of r)
is "$(redis get "$PREFIX$id" | jq -c .cookie.originalMaxAge)" 2592000000 "stored as cookie.originalMaxAge"

# A form login leaves its flash message where connect-flash keeps it.
get f /login
token=$(csrf_token)
post_form f /login "username=alice&password=wonderland&csrf=$token"
status_is 303 "a form login on fcgi-session"
id=$(sid_of f)
is "$(redis get "$PREFIX$id" | jq -c .flash)" '{"info":["Welcome back, alice"]}' \
    "its flash is stored in connect-flash's layout"
post_json r /logout '{}' -H "Origin: $T_ORIGIN"
post_json f /logout '{}' -H "Origin: $T_ORIGIN"
is "$(redis --scan --pattern "$PREFIX*" | wc -l)" 0 "both logged out"

# ------------------------------------------------------------- sessctl

login_json c alice wonderland
on_express login_json d alice wonderland
login_json e bob builder
is "$(redis --scan --pattern 'sess:*' | wc -l)" 0 "nothing under connect-redis's default prefix"
is "$(redis --scan --pattern "$PREFIX*" | wc -l)" 3 "three sessions under $PREFIX"
listed=$("$T_BUILD/sessctl" -c "$T_CONFIG" sessions --user alice 2> /dev/null)
is "$(grep -c ' alice ' <<< "$listed")" 1 "sessctl finds our session of alice in the index"
listed=$("$T_BUILD/sessctl" -c "$T_CONFIG" sessions --user alice --scan 2> /dev/null)
is "$(grep -c ' alice ' <<< "$listed")" 2 "sessctl --scan lists alice's two sessions, ours and Express's"
check "sessctl revoke --user alice --scan" quietly "$T_BUILD/sessctl" -c "$T_CONFIG" revoke --user alice --scan
get_json c /session
status_is 401 "our session of alice is revoked"
on_express get_json d /session
status_is 401 "Express's session of alice is revoked"
get_json e /session
is "$STATUS $(json .user.username)" "200 bob" "bob's session is left alone"

# ------------------------------------------------- Redis stopped, then back

get_json e /views
is "$(json .views)" 1 "bob's /views: 1"
bad_before=${#T_BAD_STATUS[@]}
redis shutdown save > /dev/null 2>&1
wait "$R_PID" 2> /dev/null
R_PID=

get e /profile
status_is 503 "Redis stopped: /profile answers 503"
check "... at once (${T_TIME} s)" awk -v t="$T_TIME" 'BEGIN { exit !(t < 2) }'
like "$BODY" 'Session store unavailable' "... with a short message"
get_json e /views
status_is 503 "Redis stopped: /views answers 503"
no_set_cookie "... with no Set-Cookie (no new, empty session)"
login_json f alice wonderland
status_is 503 "Redis stopped: login answers 503"
get - /
status_is 200 "a request without a session cookie is still served"

redis_start || bail "redis-server did not start again: $(tail -n 5 "$T_DIR/redis.log")"
for ((i = 0; i < 50; i++)); do
    get_json e /views
    [ "$STATUS" = 200 ] && break
    sleep 0.1
done
status_is 200 "Redis back: /views answers again, the executables not restarted"
is "$(json .views)" 2 "bob's count continues: 2"
get e /profile
like "$BODY" 'Hello bob' "Redis back: /profile knows bob"
forget_bad_status_since "$bad_before"

stop_pid "$E_PID"
E_PID=
ok "the Express peer stopped"
stop_stack
stop_pid "$R_PID"
R_PID=
done_testing
