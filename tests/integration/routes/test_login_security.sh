#!/usr/bin/env bash
# Login security through the real server: the throttle taken before the
# password check (20 parallel wrong passwords for one user: at most 5 × 403,
# the rest 429 with Retry-After), client addresses behind a trusted proxy
# (X-Forwarded-For from 127.0.0.1) counted apart, a good login clearing its
# username's count, a userdel racing logins, login CSRF (a token fetched by
# one browser refused in another), and the auth log in a file, read by
# fail2ban-regex with the shipped filter. Several FastCGI processes, so
# that parallel requests really run in parallel.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

AUTH_LOG=$T_DIR/auth.log
TEST_PROCS=${TEST_PROCS:-4} start_stack trust_proxy=true "log=$AUTH_LOG"
for u in eve frank; do
    add_user "$u" user "$u's password" || bail "sessctl useradd $u failed"
done

# login_from XFF USER PASSWORD [CURL-ARGS...]: a JSON login from 127.0.0.1
# (a trusted proxy) for the client XFF.
login_from() {
    login_json - "$2" "$3" -H "X-Forwarded-For: $1" "${@:4}"
}

# --- the throttle is taken before the password is checked
# `wait` with the PIDs: a bare one would wait for the server too.
n=20
pids=()
for i in $(seq 1 $n); do
    # Each from an address of its own: only the username's count applies.
    curl -sS -o /dev/null -D "$T_DIR/race.$i" -w '%{http_code}\n' --max-time 30 \
        -H 'Content-Type: application/json' -H 'Accept: application/json' \
        -H "X-Forwarded-For: 198.18.0.$i" \
        --data-binary '{"username":"eve","password":"wrong"}' "$T_URL/login" > "$T_DIR/race.$i.status" &
    pids+=($!)
done
wait "${pids[@]}"
n403=0 n429=0 retry_ok=0
for i in $(seq 1 $n); do
    case $(cat "$T_DIR/race.$i.status") in
    403) n403=$((n403 + 1)) ;;
    429)
        n429=$((n429 + 1))
        grep -qiE '^Retry-After: [0-9]+' "$T_DIR/race.$i" && retry_ok=$((retry_ok + 1))
        ;;
    esac
done
check "20 parallel wrong passwords for one user: at most 5 × 403 (got $n403)" test "$n403" -le 5
check "and at least one checked (got $n403)" test "$n403" -ge 1
is "$((n403 + n429))" "$n" "the rest are 429 (403: $n403, 429: $n429)"
is "$retry_ok" "$n429" "every 429 carries Retry-After"
login_from 198.18.1.1 eve "eve's password"
status_is 429 "eve's right password after the burst: 429"

# --- behind a trusted proxy, client addresses are counted apart
for i in 1 2 3 4 5; do
    login_from 198.51.100.1 "ghost$i" x
    status_is 403 "198.51.100.1 (via the proxy), failure $i: 403"
done
login_from 198.51.100.1 ghost6 x
status_is 429 "198.51.100.1, sixth failure: 429"
like "$(hdr Retry-After)" '^[0-9]+$' "with Retry-After"
login_from 198.51.100.1 bob builder
status_is 429 "198.51.100.1 with good credentials: 429"
login_from 198.51.100.2 ghost7 x
status_is 403 "another client behind the same proxy is not throttled: 403"
login_from 198.51.100.2 bob builder
status_is 200 "and logs in: 200"
# The proxy's own address (no X-Forwarded-For) is another client again.
fresh_addr
T_FROM=$T_ADDR login_json - bob builder
status_is 200 "the proxy itself is not throttled by its clients"

# --- a good login clears its username's count
for i in 1 2 3 4; do
    login_from "198.51.101.$i" frank wrong
    status_is 403 "frank failure $i: 403"
done
login_from 198.51.101.10 frank "frank's password"
status_is 200 "frank's good login: 200"
for i in 1 2 3 4 5; do
    login_from "198.51.102.$i" frank wrong
    status_is 403 "frank after the good login, failure $i: 403 (the count was cleared)"
done
login_from 198.51.102.9 frank wrong
status_is 429 "frank, sixth failure since: 429"

# --- logout is logged
login_from 198.51.103.1 bob builder -c "$T_DIR/jar.out"
status_is 200 "bob logs in"
post_json out /logout '{}' -H "X-Forwarded-For: 198.51.103.1"
status_is 200 "and out"

# --- a userdel racing logins leaves none of them logged in: rounds of
# parallel logins, the account deleted a little later each round, so that
# some deletions land while passwords are being checked.
alive=0 ok_logins=0
for round in 1 2 3 4; do
    user=gina$round
    add_user "$user" user "$user's password" || bail "sessctl useradd $user failed"
    pids=()
    for i in $(seq 1 4); do
        curl -sS -o /dev/null -c "$T_DIR/jar.$user.$i" -w '%{http_code}\n' --max-time 30 \
            -H 'Content-Type: application/json' -H 'Accept: application/json' \
            -H "X-Forwarded-For: 198.18.$((2 + round)).$i" \
            --data-binary "{\"username\":\"$user\",\"password\":\"$user's password\"}" \
            "$T_URL/login" > "$T_DIR/$user.$i.status" &
        pids+=($!)
    done
    sleep "0.$((round * 8))"
    "$T_BUILD/sessctl" -c "$T_CONFIG" userdel "$user" > /dev/null 2>&1
    wait "${pids[@]}"
    for i in $(seq 1 4); do
        [ "$(cat "$T_DIR/$user.$i.status")" = 200 ] && ok_logins=$((ok_logins + 1))
        get_json "$user.$i" /session
        [ "$STATUS" = 200 ] && alive=$((alive + 1))
    done
    like "$("$T_BUILD/sessctl" -c "$T_CONFIG" sessions --user "$user" 2>&1)" \
        $'(^|\n)0 sessions, 0 live' "round $round: the store holds no session of $user"
done
diag "logins answered 200 before their account went: $ok_logins of 16"
is "$alive" 0 "after userdel, none of the racing logins is logged in"

# --- login CSRF: a token is bound to the browser it was shown in
get a /login
token_a=$(csrf_token)
like "$(hdr Set-Cookie)" '^sid\.csrf=' "GET /login gives browser a its pre-session cookie"
get b /login
post_form b /login "username=alice&password=wonderland&csrf=$(urlenc "$token_a")"
status_is 403 "a's token in browser b's form POST without Origin: 403"
is "$(set_cookie)" "" "and no session"
post_form - /login "username=alice&password=wonderland&csrf=$(urlenc "$token_a")"
status_is 403 "a's token without any cookie: 403"
get_json b /session
status_is 401 "b is not logged in"
post_form a /login "username=alice&password=wonderland&csrf=$(urlenc "$token_a")"
status_is 303 "a's token in a's own browser: 303"
get_json a /session
is "$(json .user.username)" alice "a is logged in"
login_json c alice wonderland
status_is 200 "a JSON login needs no token"

# --- the auth log
stop_stack
check "the auth log was written to $AUTH_LOG" test -s "$AUTH_LOG"
LINE_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z fcgi-session\[(login|logout)\]: (login succeeded|login failed|login throttled|logout) for "[^"]*" from [0-9a-f.:]+$'
bad_lines=$(grep -cvE "$LINE_RE" "$AUTH_LOG")
is "$bad_lines" 0 "every line has the time, the route, the event, the username and the address"
grep -qxE '.* fcgi-session\[login\]: login failed for "ghost1" from 198\.51\.100\.1' "$AUTH_LOG"
check "a failure names the user and the client behind the proxy" test $? -eq 0
grep -qxE '.* fcgi-session\[login\]: login throttled for "ghost6" from 198\.51\.100\.1' "$AUTH_LOG"
check "a throttled attempt is logged" test $? -eq 0
grep -qxE '.* fcgi-session\[login\]: login succeeded for "bob" from 198\.51\.100\.2' "$AUTH_LOG"
check "a success is logged" test $? -eq 0
grep -qxE '.* fcgi-session\[logout\]: logout for "bob" from 198\.51\.103\.1' "$AUTH_LOG"
check "a logout is logged" test $? -eq 0
failed_lines=$(grep -c ': login failed for ' "$AUTH_LOG")
check "as many failures logged as answered 403 here (at least $((n403 + 5 + 1 + 9)))" \
    test "$failed_lines" -ge $((n403 + 5 + 1 + 9))

filter=$T_ROOT/fail2ban/filter.d/fcgi-session.conf
if ! command -v fail2ban-regex > /dev/null; then
    skip "fail2ban-regex finds every failure" "fail2ban is not installed"
    skip "with its client address" "fail2ban is not installed"
else
    found=$(fail2ban-regex --out ip "$AUTH_LOG" "$filter" 2> "$T_DIR/f2b.err" | sort)
    want=$(sed -nE 's/.*: (login|password change) failed for ".*" from ([^ ]+)$/\2/p' "$AUTH_LOG" | sort)
    is "$(grep -c . <<< "$found")" "$failed_lines" "fail2ban-regex finds every failure ($failed_lines)"
    is "$found" "$want" "with its client address"
    # fail2ban-regex --out ip prints one line per match, so none of the
    # other events matched.
    unlike "$found" '198\.51\.103\.1' "a logout is not a failure"
fi

done_testing
