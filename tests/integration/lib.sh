# shellcheck shell=bash disable=SC2034 # variables set here are read by the tests
# The harness of the HTTP integration tests, sourced by each test_*.sh: a
# private stack (a real web server and the real executables on a free
# loopback port, from the same scripts/stack.sh and templates as `make
# run`) with its own configuration, secret, store and the accounts
# alice/wonderland (admin) and bob/builder (user); TAP helpers; a curl
# client with one cookie jar per named client. done_testing stops the
# stack, checks that nothing is left running or listening, and prints the
# plan.
#
# The tests sit in folders below this file, and source it as
# "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"; tests/run finds them at any
# depth:
#   routes/   the HTTP contract, a route (or a concern of them all) a file
#   deploy/   make run, install and deb, the man pages, Debian's servers,
#             systemd, every web server, TLS, the configuration, sessctl,
#             scripts/deps
#   stress/   concurrency, crashes, exhausted connections, disk, map, files
#   interop/  Redis with the Express peer and sentinels, a real browser,
#             the benchmark's quick mode
# The C helpers some of them build (hold_conns.c, hold_reader.c,
# log_sink.c) sit here, next to this file.
#
# Environment: TEST_SERVER picks the web server (a SERVER of `make run`:
# lighttpd, the default, lighttpd-cgi, apache, apache-fcgid, apache-cgi,
# nginx); TEST_FCGI (lighttpd or spawn-fcgi) and TEST_PROCS as FCGI and
# PROCS of `make run`; TEST_STORE the store; T_KEEP=1 keeps the test's
# directory.
set -uo pipefail

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_BUILD=${BUILD:-build}
case $T_BUILD in
/*) ;;
*) T_BUILD=$T_ROOT/$T_BUILD ;;
esac
# shellcheck source=scripts/stack.sh
. "$T_ROOT/scripts/stack.sh"

T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fcgi-session-test.XXXXXX") || exit 1
T_N=0
T_FAILED=0
T_BAD_STATUS=()
T_CACHEABLE_COOKIES=()
T_STACK_UP=
T_URL=
T_ORIGIN=
T_SECRET=
T_CONFIG=
T_CACERT=
STATUS=
BODY=
T_REQ=
T_TIME=

# A user's STORE must not leak into the tests; TEST_STORE picks the store the
# contract is tested against (default: LMDB in the test's directory).
unset STORE

t_cleanup() {
    if [ -n "$T_STACK_UP" ]; then
        stack_stop > /dev/null 2>&1
        T_STACK_UP=
    fi
    if [ -n "${T_KEEP:-}" ]; then
        echo "# kept $T_DIR" >&2
    else
        rm -rf "$T_DIR"
    fi
}
trap t_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ------------------------------------------------------------------ TAP

diag() {
    local line
    while IFS= read -r line; do
        printf '# %s\n' "$line"
    done <<< "$*"
}

ok() {
    T_N=$((T_N + 1))
    printf 'ok %d - %s\n' "$T_N" "$*"
}

# The last response, for the diagnostics of a failed check.
t_last_response() {
    [ -n "$T_REQ" ] || return 0
    diag "request: $T_REQ"
    diag "status: $STATUS"
    [ -s "$T_DIR/headers" ] && diag "$(tr -d '\r' < "$T_DIR/headers" | head -n 15)"
    diag "body: $(head -c 400 "$T_DIR/body" 2> /dev/null | tr -d '\0')"
}

not_ok() {
    T_N=$((T_N + 1))
    T_FAILED=$((T_FAILED + 1))
    printf 'not ok %d - %s\n' "$T_N" "$*"
}

skip() {
    T_N=$((T_N + 1))
    printf 'ok %d - %s # SKIP %s\n' "$T_N" "$1" "$2"
}

# check DESC COMMAND...: passes when the command succeeds.
check() {
    local desc=$1
    shift
    if "$@"; then
        ok "$desc"
    else
        not_ok "$desc"
        t_last_response
        return 1
    fi
}

is() {
    if [ "$1" == "$2" ]; then
        ok "$3"
    else
        not_ok "$3"
        diag "     got: '$1'"$'\n'"expected: '$2'"
        t_last_response
        return 1
    fi
}

isnt() {
    if [ "$1" != "$2" ]; then
        ok "$3"
    else
        not_ok "$3"
        diag "got '$1', which it must not be"
        t_last_response
        return 1
    fi
}

# like GOT ERE DESC
like() {
    if [[ $1 =~ $2 ]]; then
        ok "$3"
    else
        not_ok "$3"
        diag "     got: '${1:0:600}'"$'\n'"expected to match: $2"
        t_last_response
        return 1
    fi
}

unlike() {
    if ! [[ $1 =~ $2 ]]; then
        ok "$3"
    else
        not_ok "$3"
        diag "     got: '${1:0:600}'"$'\n'"expected not to match: $2"
        t_last_response
        return 1
    fi
}

# ---------------------------------------------------------------- stack

# t_config FILE KEY=VALUE...: etc/fcgi-session.conf with each KEY's line
# replaced (the last pair of a key wins), the new lines at the end.
t_config() {
    local file=$1 kv key order=()
    local -A vals=()
    shift
    for kv in "$@"; do
        key=${kv%%=*}
        [ -n "${vals[$key]+set}" ] || order+=("$key")
        vals[$key]=${kv#*=}
    done
    awk -v keys="${order[*]}" '
        BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) drop[k[i]] = 1 }
        {
            line = $0
            sub(/^[ \t]+/, "", line)
            key = line
            sub(/[ \t]*=.*/, "", key)
            if (line !~ /^#/ && (key in drop)) next
            print
        }' "$T_ROOT/etc/fcgi-session.conf" > "$file"
    for key in "${order[@]}"; do
        printf '%s = %s\n' "$key" "${vals[$key]}" >> "$file"
    done
}

# start_stack [--fcgi=lighttpd|spawn-fcgi] [--tls] [KEY=VALUE...]: a
# private stack behind $TEST_SERVER; the KEY=VALUE pairs override
# configuration keys. --fcgi applies to lighttpd (the other servers start
# the executables their own way); --tls serves HTTPS with a certificate
# made for the test, which the client trusts. Sets T_URL, T_ORIGIN,
# T_CONFIG, T_SECRET. Exits the test (Bail out!) if it cannot start.
start_stack() {
    local fcgi=${TEST_FCGI:-lighttpd} tls='' tries rc store log overrides=()
    while [ $# -gt 0 ]; do
        case $1 in
        --fcgi=*) fcgi=${1#--fcgi=} ;;
        --tls) tls=1 ;;
        *) overrides+=("$1") ;;
        esac
        shift
    done
    T_CONFIG=$T_DIR/fcgi-session.conf
    # Relative paths, as the committed file has them, resolved against the
    # configuration's directory.
    t_config "$T_CONFIG" secret_file=secret "store=${TEST_STORE:-lmdb:sessions}" \
        "html_dir=$T_ROOT/html" "${overrides[@]}"
    mkdir -p "$T_DIR/sessions"
    stack_secret "$T_DIR/secret" || bail "cannot write $T_DIR/secret"
    T_SECRET=$(head -n 1 "$T_DIR/secret")
    [ -x "$T_BUILD/sessctl" ] || bail "$T_BUILD/sessctl is missing: run make"
    stack_accounts "$T_BUILD/sessctl" "$T_CONFIG" alice admin wonderland bob user builder \
        > "$T_DIR/sessctl.log" 2>&1 || bail "sessctl could not create the accounts: $(cat "$T_DIR/sessctl.log")"

    STACK_ROOT=$T_ROOT
    STACK_BUILD=$T_BUILD
    STACK_RUN=$T_DIR/run
    STACK_CONFIG=$T_CONFIG
    STACK_SERVER=${TEST_SERVER:-lighttpd}
    STACK_FCGI=
    stack_driver 2> "$T_DIR/start.err" || bail "$(cat "$T_DIR/start.err")"
    # --fcgi where the server lets it choose (lighttpd).
    [ "$(stack_fcgi_choices | wc -l)" -gt 1 ] && STACK_FCGI=$fcgi
    STACK_PROCS=${TEST_PROCS:-1}
    STACK_LOG=$T_DIR/stack.log
    STACK_TLS=$tls
    if [ -n "$tls" ]; then
        stack_tls_cert "$T_DIR/tls" 2> "$T_DIR/start.err" || bail "$(cat "$T_DIR/start.err")"
        T_CACERT=$STACK_TLS_CERT
    else
        T_CACERT=
    fi
    # What the executables keep private, for a server that runs them as
    # its own user when the tests run as root (Apache as www-data); the
    # server's user must also get through the test's directory.
    STACK_OWN=("$T_DIR/secret")
    store=$(sed -n 's/^store[ \t]*=[ \t]*lmdb://p' "$T_CONFIG" | tail -n 1)
    if [ -n "$store" ]; then
        case $store in
        /*) STACK_OWN+=("$store") ;;
        *) STACK_OWN+=("$T_DIR/$store") ;;
        esac
    fi
    # A log file of the configuration's is theirs to append to as well.
    log=$(sed -n 's/^log[ \t]*=[ \t]*//p' "$T_CONFIG" | tail -n 1)
    case $log in
    "" | stderr | syslog) ;;
    *)
        case $log in /*) ;; *) log=$T_DIR/$log ;; esac
        touch "$log" && STACK_OWN+=("$log")
        ;;
    esac
    [ "$(id -u)" -eq 0 ] && chmod 711 "$T_DIR"
    # A random port; another one if it turns out to be taken meanwhile.
    for ((tries = 0; tries < 20; tries++)); do
        STACK_PORT=$(stack_free_port)
        stack_prepare 2> "$T_DIR/start.err" || bail "$(cat "$T_DIR/start.err")"
        rc=0
        stack_start 2> "$T_DIR/start.err" || rc=$?
        [ "$rc" -eq 0 ] && break
        [ "$rc" -eq 2 ] && continue
        bail "the stack did not start: $(cat "$T_DIR/start.err")"$'\n'"$(tail -n 20 "$STACK_LOG" 2> /dev/null)"
    done
    [ "$rc" -eq 0 ] || bail "no free port found"
    T_STACK_UP=1
    T_URL=$STACK_URL
    T_ORIGIN=$T_URL
}

bail() {
    printf 'Bail out! %s\n' "$(head -n 1 <<< "$*")"
    diag "$*"
    exit 1
}

# stop_stack: stops the stack, checking first that no executable died while
# it served and then that nothing is left running or listening.
stop_stack() {
    local died route pid gone=
    [ -n "$T_STACK_UP" ] || return 0
    # The server's words for an executable that died (lighttpd's,
    # mod_fcgid's: its driver's STACK_DRV_DIED_RE).
    died=
    if [ -n "${STACK_DRV_DIED_RE:-}" ]; then
        died=$(grep -E "$STACK_DRV_DIED_RE" "$STACK_ERRLOG" 2> /dev/null)
    fi
    for route in "${!STACK_ROUTE_PIDS[@]}"; do
        for pid in ${STACK_ROUTE_PIDS[$route]}; do
            stack_alive "$pid" || gone="$gone $route.fcgi($pid)"
        done
    done
    if [ -z "$died$gone" ]; then
        ok "no executable died while serving"
    else
        not_ok "no executable died while serving"
        diag "$died$gone"
    fi
    if stack_stop 2> "$T_DIR/stop.err"; then
        ok "stack stopped: nothing left running or listening"
    else
        not_ok "stack stopped: nothing left running or listening"
        diag "$(cat "$T_DIR/stop.err")"
    fi
    T_STACK_UP=
}

done_testing() {
    if [ -n "$T_STACK_UP" ]; then
        stop_stack
    fi
    if [ ${#T_CACHEABLE_COOKIES[@]} -eq 0 ]; then
        ok "every response with Set-Cookie had Cache-Control: no-store"
    else
        not_ok "every response with Set-Cookie had Cache-Control: no-store"
        diag "$(printf '%s\n' "${T_CACHEABLE_COOKIES[@]}")"
    fi
    if [ ${#T_BAD_STATUS[@]} -eq 0 ]; then
        ok "no 5xx and no request without an answer"
    else
        not_ok "no 5xx and no request without an answer"
        diag "$(printf '%s\n' "${T_BAD_STATUS[@]}")"
    fi
    if [ "$T_FAILED" -gt 0 ] && [ -n "${STACK_RUN:-}" ]; then
        diag "${STACK_ERRLOG##*/}:"$'\n'"$(tail -n 20 "$STACK_ERRLOG" 2> /dev/null)"
        diag "stderr of ${STACK_SERVER:-the server} and the executables:"$'\n'"$(tail -n 20 "$T_DIR/stack.log" 2> /dev/null)"
    fi
    printf '1..%d\n' "$T_N"
    [ "$T_FAILED" -eq 0 ]
    exit $?
}

# ---------------------------------------------------------------- HTTP

# req CLIENT METHOD PATH [CURL-ARGS...]: one request. CLIENT names a cookie
# jar ($T_DIR/jar.CLIENT, kept across requests like a browser's); "-" sends
# and keeps no cookies. T_FROM=127.0.0.N sends from another loopback
# address (a client address of its own, for the login throttle).
# Sets STATUS ("000" when no answer), BODY, T_TIME (seconds the request
# took), and the files of hdr/set_cookie.
req() {
    local client=$1 method=$2 path=$3 args out body_file=$T_DIR/body
    shift 3
    case $method in
    GET) args=() ;;
    # -I: curl then reads no body (with -X HEAD it would wait for one); it
    # prints the headers on stdout, which -D keeps anyway.
    HEAD)
        args=(-I)
        body_file=/dev/null
        ;;
    *) args=(-X "$method") ;;
    esac
    args+=(-sS --max-time "${T_MAX_TIME:-20}" -D "$T_DIR/headers" -o "$body_file"
        -w '%{http_code} %{time_total}' -H 'Expect:')
    if [ "$client" != - ]; then
        args+=(-b "$T_DIR/jar.$client" -c "$T_DIR/jar.$client")
    fi
    if [ -n "${T_FROM:-}" ]; then
        args+=(--interface "$T_FROM")
    fi
    if [ -n "$T_CACERT" ]; then
        args+=(--cacert "$T_CACERT")
    fi
    : > "$T_DIR/headers"
    : > "$T_DIR/body"
    out=$(curl "${args[@]}" "$@" "$T_URL$path" 2> "$T_DIR/curl.err") || true
    STATUS=${out%% *}
    T_TIME=${out#* }
    [ -n "$STATUS" ] || STATUS=000
    BODY=$(tr -d '\0' < "$T_DIR/body")
    T_REQ="$method $path${client:+ (client $client)}"
    case $STATUS in
    5* | 000) T_BAD_STATUS+=("$STATUS for $T_REQ after ${T_TIME:-?} s $(head -c 200 "$T_DIR/curl.err")") ;;
    esac
    if [ "$(hdr_count Set-Cookie)" -gt 0 ] && ! [[ $(hdr Cache-Control) =~ no-store ]]; then
        T_CACHEABLE_COOKIES+=("$STATUS for $T_REQ")
    fi
}

get() {
    local client=$1 path=$2
    shift 2
    req "$client" GET "$path" "$@"
}

# t_defaults NAME:VALUE... -- CURL-ARGS...: sets T_ARGS to the CURL-ARGS
# preceded by a -H for each default header they do not give themselves. A
# header sent twice would reach the executables once or twice depending on
# the server (nginx before 1.23 passes both as separate parameters).
t_defaults() {
    local -a defaults=()
    local d a given
    while [ "$1" != -- ]; do
        defaults+=("$1")
        shift
    done
    shift
    T_ARGS=()
    for d in "${defaults[@]}"; do
        given=
        for a in "$@"; do
            if [[ ${a,,} == "${d%%:*}":* ]]; then
                given=1
            fi
        done
        [ -n "$given" ] || T_ARGS+=(-H "${d#*:}")
    done
    T_ARGS+=("$@")
}

get_json() {
    local client=$1 path=$2
    shift 2
    t_defaults 'accept:Accept: application/json' -- "$@"
    req "$client" GET "$path" "${T_ARGS[@]}"
}

# post_json CLIENT PATH JSON [CURL-ARGS...]
post_json() {
    local client=$1 path=$2 json=$3
    shift 3
    t_defaults 'content-type:Content-Type: application/json' 'accept:Accept: application/json' -- "$@"
    req "$client" POST "$path" --data-binary "$json" "${T_ARGS[@]}"
}

# post_form CLIENT PATH URLENCODED [CURL-ARGS...]: as a browser posts a form
# (Accept: text/html unless the arguments give another Accept).
post_form() {
    local client=$1 path=$2 data=$3
    shift 3
    t_defaults 'content-type:Content-Type: application/x-www-form-urlencoded' \
        'accept:Accept: text/html' -- "$@"
    req "$client" POST "$path" --data-binary "$data" "${T_ARGS[@]}"
}

# The first value of a response header (case-insensitive name), or nothing.
hdr() {
    tr -d '\r' < "$T_DIR/headers" | awk -v n="$1" '
        { i = index($0, ":") }
        i && tolower(substr($0, 1, i - 1)) == tolower(n) {
            v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit
        }'
}

# How many times a header appears.
hdr_count() {
    tr -d '\r' < "$T_DIR/headers" | awk -v n="$1" '
        { i = index($0, ":") }
        i && tolower(substr($0, 1, i - 1)) == tolower(n) { c++ }
        END { print c + 0 }'
}

# The whole Set-Cookie header of the session cookie `sid`, or nothing.
set_cookie() {
    tr -d '\r' < "$T_DIR/headers" | awk '
        tolower(substr($0, 1, 11)) == "set-cookie:" {
            v = substr($0, 12); sub(/^[ \t]+/, "", v)
            if (substr(v, 1, 4) == "sid=") { print v; exit }
        }'
}

# The value the last Set-Cookie gave `sid` (still percent-encoded).
set_cookie_value() {
    local c
    c=$(set_cookie)
    c=${c#sid=}
    printf '%s\n' "${c%%;*}"
}

# The value of `sid` in a client's jar, or nothing.
jar_sid() {
    [ -f "$T_DIR/jar.$1" ] || return 0
    awk -F '\t' '$6 == "sid" { print $7 }' "$T_DIR/jar.$1" | tail -n 1
}

# The session id inside a cookie value "s%3AID.SIG" (or "s:ID.SIG").
cookie_id() {
    local v=${1/#s%3A/s:}
    v=${v#s:}
    printf '%s\n' "${v%.*}"
}

# The signature cookie-signature gives an id: base64(HMAC-SHA256(secret,
# id)) without "=", with the given secret (default: the stack's).
hmac_sig() {
    local sig
    sig=$(printf '%s' "$1" | openssl dgst -sha256 -hmac "${2:-$T_SECRET}" -binary | base64 -w 0)
    printf '%s\n' "${sig%%=*}"
}

# A cookie value as express-session writes it: encodeURIComponent("s:" ID
# "." SIG).
sign_id() {
    local sig
    sig=$(hmac_sig "$1" "${2:-$T_SECRET}")
    sig=${sig//+/%2B}
    printf 's%%3A%s.%s\n' "$1" "${sig//\//%2F}"
}

# Decodes the percent-escapes of a cookie value.
urldec() {
    local v=${1//+/%2B}
    printf '%b\n' "${v//%/\\x}"
}

# A field of the JSON body: json [JQ-OPTION...] FILTER (raw output).
json() {
    jq -r "$@" <<< "$BODY" 2> /dev/null
}

# True when the body is a JSON value equal to the given one (jq's equality,
# so key order and spacing do not matter).
json_eq() {
    jq -e --argjson want "$1" '. == $want' <<< "$BODY" > /dev/null 2>&1
}

# The page's text: tags dropped, the entities a template escapes decoded.
text() {
    sed -e 's/<[^>]*>/ /g' -e 's/&#39;/'"'"'/g; s/&#x27;/'"'"'/g; s/&apos;/'"'"'/g' \
        -e 's/&quot;/"/g; s/&#34;/"/g; s/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g' <<< "$BODY" |
        tr -s ' \t\n' ' '
}

# The csrf token of the first form in the body.
csrf_token() {
    sed -n 's/.*name="csrf"[^>]*value="\([^"]*\)".*/\1/p' <<< "$BODY" | head -n 1
}

# Percent-encodes a string for a form body or a query.
urlenc() {
    jq -rn --arg v "$1" '$v | @uri'
}

# A fresh loopback source address per call (127.0.0.2, .3, ...), for tests
# that count login failures per client address.
T_NEXT_ADDR=0
fresh_addr() {
    T_ADDR="127.0.$((T_NEXT_ADDR / 250)).$((T_NEXT_ADDR % 250 + 2))"
    T_NEXT_ADDR=$((T_NEXT_ADDR + 1))
}

# login_json CLIENT USER PASSWORD [CURL-ARGS...]: logs a client in with
# JSON; leaves the response in STATUS/BODY.
login_json() {
    local client=$1 body
    body=$(jq -cn --arg u "$2" --arg p "$3" '{username: $u, password: $p}')
    shift 3
    post_json "$client" /login "$body" "$@"
}

# Logs a client in through the form, as a browser does: GET /login for the
# token, then POST it.
login_form() {
    local client=$1 user=$2 pass=$3 token
    shift 3
    get "$client" /login
    token=$(csrf_token)
    post_form "$client" /login "username=$(urlenc "$user")&password=$(urlenc "$pass")&csrf=$(urlenc "$token")" \
        -H "Origin: $T_ORIGIN" "$@"
}

# Common response checks.
status_is() {
    is "$STATUS" "$1" "$2"
}

no_store_is_set() {
    like "$(hdr Cache-Control)" 'no-store' "$1"
}

no_set_cookie() {
    is "$(hdr_count Set-Cookie)" 0 "$1"
}

# Adds an account to the stack's store with sessctl.
add_user() {
    printf '%s\n' "$3" | "$T_BUILD/sessctl" -c "$T_CONFIG" useradd "$1" --role "$2" > /dev/null
}

# JavaScript's Date.prototype.toISOString(), as express-session stores
# cookie.expires.
ISO_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'

# ---------------------------------------------------------------- Redis

# redis_start: a redis-server of the test's own on R_PORT (which the test
# picks; R_PID is set here), its files in $T_DIR/redis, no snapshots of its
# own (a test that restarts it saves one first, so the restart finds the
# sessions again).
redis_start() {
    local i
    mkdir -p "$T_DIR/redis"
    redis-server --port "$R_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$T_DIR/redis" --daemonize no >> "$T_DIR/redis.log" 2>&1 &
    R_PID=$!
    # Ours must be the one answering: a server that lost the race for the
    # port exits, and another test's Redis may be the one on it.
    for ((i = 0; i < 100; i++)); do
        stack_alive "$R_PID" || break
        if [ "$(redis-cli -p "$R_PORT" ping 2> /dev/null)" = PONG ]; then
            sleep 0.1
            stack_alive "$R_PID" && return 0
            break
        fi
        sleep 0.05
    done
    wait "$R_PID" 2> /dev/null
    R_PID=
    return 1
}

