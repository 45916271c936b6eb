#!/usr/bin/env bash
# "Your devices" (README, the demo's contract): GET /devices lists the user's live
# sessions newest first with a handle that stays and reveals no id;
# POST /devices/revoke ends one of the user's own (404 for anyone else's)
# or all but the current; POST /password checks the current password and
# the new one's length, then ends every other session and renews this
# one; every POST takes the CSRF and Origin checks; 401 without a login;
# max_sessions_per_user ends the least recently used; sessctl passwd ends
# the user's sessions unless --keep-sessions.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack
add_user carol user "carol's password" || bail "sessctl useradd carol failed"

body_has() {
    jq -e "$1" <<< "$BODY" > /dev/null 2>&1
}

# --- not logged in
get_json - /devices
status_is 401 "GET /devices without a login: 401"
post_json - /devices/revoke '{"others":true}'
status_is 401 "POST /devices/revoke without a login: 401"
post_json - /password '{"current":"x","new":"0123456789"}'
status_is 401 "POST /password without a login: 401"
get - /devices
status_is 401 "GET /devices (HTML) without a login: 401"

# --- three devices of carol's, one of bob's
login_json d1 carol "carol's password" -H 'User-Agent: Device-One/1.0'
sleep 0.01
login_json d2 carol "carol's password" -H 'User-Agent: Device-Two/2.0'
sleep 0.01
login_json d3 carol "carol's password" -H 'User-Agent: Device-Three/3.0'
login_json b bob builder
d1_id=$(cookie_id "$(jar_sid d1)")

get_json d1 /devices -H 'User-Agent: Device-One/1.0'
status_is 200 "GET /devices (JSON): 200"
no_store_is_set "GET /devices: Cache-Control: no-store"
is "$(json '.sessions | length')" 3 "three live sessions of carol's, none of bob's"
is "$(json -c '[.sessions[].user_agent]')" '["Device-Three/3.0","Device-Two/2.0","Device-One/1.0"]' \
    "newest first, each with its User-Agent"
check "each has handle, created, last_seen, ip, user_agent, current" \
    body_has '.sessions | all(has("handle") and has("created") and has("last_seen") and
        has("ip") and has("user_agent") and has("current"))'
check "dates in ISO 8601" body_has '.sessions | all(.created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))'
is "$(json '[.sessions[] | select(.current)] | length')" 1 "exactly one is current"
is "$(json '.sessions[] | select(.current) | .user_agent')" Device-One/1.0 "the current one is this device"
is "$(json '.sessions[0].ip')" 127.0.0.1 "the client address"
check "handles are base64url of 16 bytes" body_has '.sessions | all(.handle | test("^[A-Za-z0-9_-]{22}$"))'
unlike "$BODY" "$d1_id" "no session id appears"
h1=$(json '.sessions[] | select(.current) | .handle')
h2=$(json '.sessions[1].handle')
h3=$(json '.sessions[0].handle')
get_json b /devices
hb=$(json '.sessions[0].handle')

# The handle stays through writes, and cannot be used as a cookie.
get d1 /views
get d1 /views
get_json d1 /devices
is "$(json '.sessions[] | select(.current) | .handle')" "$h1" "the handle stays the same across writes"
get_json - /session -H "Cookie: sid=$(sign_id "$h1")"
status_is 401 "a handle signed as a cookie is no session"

# --- HTML
get d1 /devices
status_is 200 "GET /devices (HTML): 200"
is "$(grep -c '>Log out</button>' <<< "$BODY")" 2 "a Log out button for each other session"
like "$BODY" '>Log out all other devices</button>' "and Log out all other devices"
like "$(text)" 'Device-Two/2.0' "rows name the browser"
get d1 /dashboard
like "$BODY" 'href="/devices"' "the dashboard links to /devices"

# --- revoke one
post_json d1 /devices/revoke "{\"handle\":\"$hb\"}"
status_is 404 "bob's handle is not one of carol's: 404"
get_json b /session
is "$(json .user.username)" bob "and bob's session goes on"
post_json d1 /devices/revoke '{"handle":"AAAAAAAAAAAAAAAAAAAAAA"}'
status_is 404 "an unknown handle: 404"
get d1 /devices
token=$(csrf_token)
post_form d1 /devices/revoke "handle=$h3" -H "Origin: $T_ORIGIN"
status_is 403 "a form without the CSRF token: 403"
post_json d1 /devices/revoke "{\"handle\":\"$h3\"}" -H 'Origin: http://evil.example'
status_is 403 "JSON from another Origin: 403"
get_json d3 /session
is "$(json .user.username)" carol "nothing ended by the refused posts"
post_form d1 /devices/revoke "handle=$h3&csrf=$(urlenc "$token")" -H "Origin: $T_ORIGIN"
status_is 303 "form revoke: 303"
is "$(hdr Location)" /devices "to /devices"
get_json d3 /session
status_is 401 "the revoked session's next request is not logged in"
get_json d1 /devices
is "$(json '.sessions | length')" 2 "two left"

# --- revoke all others
login_json d4 carol "carol's password"
post_json d1 /devices/revoke '{"others":true}'
status_is 200 "revoke others (JSON): 200"
check "answers {revoked: 2}" json_eq '{"revoked":2}'
get_json d2 /session
status_is 401 "another device is logged out"
get_json d4 /session
status_is 401 "and the other"
get_json d1 /session
is "$(json .user.username)" carol "the current one stays logged in"
get_json b /session
is "$(json .user.username)" bob "another user's sessions stay"

# --- password
login_json d5 carol "carol's password"
post_json d1 /password '{"current":"wrong","new":"a long new password"}'
status_is 403 "a wrong current password: 403"
post_json d1 /password "{\"current\":\"carol's password\",\"new\":\"short\"}"
status_is 400 "a new password under 10 characters: 400"
long=$(head -c 1025 /dev/zero | tr '\0' x)
post_json d1 /password "{\"current\":\"carol's password\",\"new\":\"$long\"}"
status_is 400 "a new password over 1024 bytes: 400"
get d1 /password
post_form d1 /password "current=$(urlenc "carol's password")&new=0123456789" -H "Origin: $T_ORIGIN"
status_is 403 "a password form without the CSRF token: 403"
get_json d5 /session
is "$(json .user.username)" carol "the refused changes ended nothing"
old=$(jar_sid d1)
post_json d1 /password "{\"current\":\"carol's password\",\"new\":\"a long new password\"}"
status_is 200 "a good change: 200"
isnt "$(jar_sid d1)" "$old" "the current session gets a new id"
get_json d1 /session
is "$(json .user.username)" carol "and stays logged in"
get_json - /session -H "Cookie: sid=$old"
status_is 401 "its old id no longer works"
get_json d5 /session
status_is 401 "every other session of the user ended"
login_json n carol "carol's password"
status_is 403 "the old password no longer logs in"
login_json n carol "a long new password"
status_is 200 "the new one does"

# --- sessctl passwd
printf 'another new password\n' | "$T_BUILD/sessctl" -c "$T_CONFIG" passwd carol --keep-sessions > /dev/null 2>&1
get_json n /session
is "$(json .user.username)" carol "sessctl passwd --keep-sessions keeps the sessions"
printf 'yet another password\n' | "$T_BUILD/sessctl" -c "$T_CONFIG" passwd carol > /dev/null 2>&1
get_json n /session
status_is 401 "sessctl passwd ends the user's sessions"
get_json d1 /session
status_is 401 "every one of them"

# --- max_sessions_per_user
stop_stack
start_stack max_sessions_per_user=2 touch_after=0
login_json m1 alice wonderland
sleep 1.1
login_json m2 alice wonderland
sleep 1.1
get_json m1 /session
sleep 1.1
login_json m3 alice wonderland
status_is 200 "a third login with max_sessions_per_user = 2: 200"
get_json m2 /session
status_is 401 "the least recently used session ended"
get_json m1 /session
is "$(json .user.username)" alice "the one used since stays"
get_json m3 /session
is "$(json .user.username)" alice "the new one is logged in"
done_testing
