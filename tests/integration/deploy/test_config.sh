#!/usr/bin/env bash
# Starting the executables: every route refuses a bad configuration with
# exit status 78 and a message naming the file and line (and lighttpd then
# does not start); the committed demo configuration is valid; the same
# executables answer as plain CGI; STORE in the environment overrides the
# configured store.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

stack_secret "$T_DIR/secret"
mkdir -p "$T_DIR/sessions"

# cgi ROUTE CONFIG [VAR=VALUE...]: one request as plain CGI; sets CGI_OUT,
# CGI_ERR and CGI_RC.
cgi() {
    local route=$1 config=$2
    shift 2
    CGI_OUT=$(env -i PATH="$PATH" SESSION_CONFIG="$config" GATEWAY_INTERFACE=CGI/1.1 \
        REQUEST_METHOD=GET SERVER_PROTOCOL=HTTP/1.1 SERVER_NAME=127.0.0.1 SERVER_PORT=80 \
        REMOTE_ADDR=127.0.0.1 SCRIPT_NAME="/$route" REQUEST_URI="/$route" QUERY_STRING= \
        ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS} ${UBSAN_OPTIONS:+UBSAN_OPTIONS=$UBSAN_OPTIONS} \
        ${LSAN_OPTIONS:+LSAN_OPTIONS=$LSAN_OPTIONS} "$@" \
        "$T_BUILD/cgi-bin/$route.fcgi" < /dev/null 2> "$T_DIR/cgi.err")
    CGI_RC=$?
    CGI_ERR=$(cat "$T_DIR/cgi.err")
}

# --- the committed configuration is valid (its paths made this test's)
t_config "$T_DIR/good.conf" secret_file=secret store=lmdb:sessions "html_dir=$T_ROOT/html"
cgi views "$T_DIR/good.conf"
is "$CGI_RC" 0 "plain CGI, GET /views: exit 0"
like "$CGI_OUT" $'(^|\n)Set-Cookie: sid=s%3A' "plain CGI: Set-Cookie"
like "$CGI_OUT" '\{"views":1\}' "plain CGI: {\"views\":1}"
like "$CGI_OUT" $'(^|\n)(Status: 200|Content-Type: application/json)' "plain CGI: a CGI response"
cgi index "$T_DIR/good.conf"
like "$CGI_OUT" 'Welcome' "plain CGI, GET /: the welcome page"

# --- bad configurations: every route exits 78 and says where
# bad_config DESC ERE LINE...: each `key = value` LINE replaces its key's
# line of the committed file; other lines, and those after a "+ ", are
# added at the end. @LINE@ in ERE is the line number of the last LINE.
bad_config() {
    local desc=$1 re=$2 route kv=() raw=() l at
    shift 2
    for l in "$@"; do
        if [[ $l =~ ^([a-z_]+)\ =\ (.*)$ ]]; then
            kv+=("${BASH_REMATCH[1]}=${BASH_REMATCH[2]}")
        else
            raw+=("${l#+ }")
        fi
    done
    t_config "$T_DIR/bad.conf" secret_file=secret store=lmdb:sessions "html_dir=$T_ROOT/html" "${kv[@]}"
    [ ${#raw[@]} -gt 0 ] && printf '%s\n' "${raw[@]}" >> "$T_DIR/bad.conf"
    l=${!#}
    if [[ $l =~ ^([a-z_]+)\ = ]]; then
        at=$(grep -n "^${BASH_REMATCH[1]} = " "$T_DIR/bad.conf" | tail -n 1 | cut -d: -f1)
    else
        at=$(wc -l < "$T_DIR/bad.conf")
    fi
    re=${re//@LINE@/$at}
    for route in "${STACK_ROUTES[@]}"; do
        cgi "$route" "$T_DIR/bad.conf"
        if [ "$CGI_RC" != 78 ]; then
            not_ok "$desc: $route.fcgi exits 78"
            diag "exit $CGI_RC, stderr: $CGI_ERR"
            return
        fi
    done
    ok "$desc: every route exits 78"
    like "$CGI_ERR" "$re" "$desc: the message says where and what"
}
bad_config "an unknown key" 'bad\.conf:@LINE@:.*max_agee' "max_agee = 10"
bad_config "a bad number" 'bad\.conf:@LINE@:.*max_age' "max_age = soon"
bad_config "a negative number" 'bad\.conf:@LINE@:.*touch_after' "touch_after = -1"
bad_config "a bad boolean" 'bad\.conf:@LINE@:.*rolling' "rolling = perhaps"
bad_config "a bad SameSite" 'bad\.conf:@LINE@:.*cookie_same_site' "cookie_same_site = loose"
bad_config "a bad store" 'bad\.conf:@LINE@:.*store' "store = ftp://x"
bad_config "a line without =" 'bad\.conf:@LINE@:' "just words"
bad_config "a key set twice" 'bad\.conf:@LINE@:.*name' "+ name = other"
bad_config "SameSite=None without Secure" 'cookie_same_site|cookie_secure|Secure' \
    "cookie_same_site = none" "cookie_secure = false"
bad_config "a missing secret file" "$T_DIR/nowhere" "secret_file = nowhere"
printf 'short\n' > "$T_DIR/short-secret"
chmod 600 "$T_DIR/short-secret"
bad_config "a secret under 32 bytes" "short-secret" "secret_file = short-secret"
cp "$T_DIR/secret" "$T_DIR/open-secret"
chmod 644 "$T_DIR/open-secret"
bad_config "a secret readable by everyone" "open-secret" "secret_file = open-secret"
cgi views "$T_DIR/no-such.conf"
is "$CGI_RC" 78 "a missing configuration file: exit 78"
like "$CGI_ERR" 'no-such\.conf' "a missing configuration file: named"
cgi views ""
is "$CGI_RC" 78 "no SESSION_CONFIG: exit 78"

# --- lighttpd does not serve with a broken executable configuration
t_config "$T_DIR/broken.conf" secret_file=secret store=lmdb:sessions "html_dir=$T_ROOT/html"
echo "max_agee = 10" >> "$T_DIR/broken.conf"
STACK_ROOT=$T_ROOT STACK_BUILD=$T_BUILD STACK_RUN=$T_DIR/run-broken STACK_CONFIG=$T_DIR/broken.conf
STACK_FCGI=lighttpd STACK_PROCS=1 STACK_LOG=$T_DIR/broken.log
STACK_PORT=$(stack_free_port)
rc=0
{ stack_prepare && stack_start; } 2> "$T_DIR/broken.err" || rc=$?
isnt "$rc" 0 "a broken configuration: the stack does not start"
like "$(cat "$T_DIR/broken.err")" 'broken\.conf:[0-9]+:.*max_agee' "a broken configuration: the executable's message is shown"
stack_port_open "$STACK_PORT"
isnt "$?" 0 "a broken configuration: nothing listens"
[ "$rc" = 0 ] && stack_stop

# --- STORE in the environment overrides the configured store
mkdir -p "$T_DIR/other-store"
cgi views "$T_DIR/good.conf" STORE="lmdb:$T_DIR/other-store"
is "$CGI_RC" 0 "STORE=lmdb:DIR: exit 0"
check "STORE=lmdb:DIR: the session lands in that store" test -s "$T_DIR/other-store/data.mdb"
cgi views "$T_DIR/good.conf" STORE="bogus:x"
is "$CGI_RC" 78 "STORE with a bad value: exit 78"

done_testing
