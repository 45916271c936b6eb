#!/usr/bin/env bash
# GET /session: 401 {"error":"no session"} without one, else the session as
# express-session shows it; an unchanged session sends no Set-Cookie. Then,
# on stacks with short lifetimes: idle expiry, renewal by touch and rolling,
# and the absolute timeout.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

get - /session
status_is 401 "no cookie: 401"
like "$(hdr Content-Type)" '^application/json' "no cookie: JSON even for a browser"
check 'no cookie: {"error":"no session"}' json_eq '{"error":"no session"}'
no_set_cookie "no cookie: no session is created"
get_json - /session -H "Cookie: sid=$(sign_id "$(head -c 32 /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '=')")"
status_is 401 "an unknown id: 401"
no_set_cookie "an unknown id: no Set-Cookie"
get_json - /session -H "Cookie: sid=s%3Aforged.abc"
status_is 401 "a forged cookie: 401"

# --- an anonymous session
get a /views
set_cookie_expires=$(set_cookie | sed -E 's/.*Expires=([^;]*);.*/\1/')
get_json a /session
status_is 200 "a session: 200"
is "$(json -c 'del(.cookie.expires)')" \
    '{"cookie":{"originalMaxAge":1800000,"secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"views":1}' \
    "the session as express-session shows it"
like "$(json .cookie.expires)" "$ISO_RE" "cookie.expires in ISO 8601"
is "$(json -c '.cookie | keys_unsorted')" '["originalMaxAge","expires","secure","httpOnly","path","sameSite"]' \
    "cookie keys in express-session's order"
is "$(date -d "$(json .cookie.expires)" +%s)" "$(date -d "$set_cookie_expires" +%s)" \
    "cookie.expires is the instant of the cookie's Expires"
no_set_cookie "an unchanged session sends no Set-Cookie (rolling off)"
no_store_is_set "session data: Cache-Control: no-store"
get_json a /session
status_is 200 "reading twice: 200"
is "$(json .views)" 1 "reading does not change the data"

# --- a logged-in session
login_json a alice wonderland
get_json a /session
is "$(json .authenticated)" true "logged in: authenticated true"
is "$(json -c .user)" '{"username":"alice","role":"admin"}' "logged in: the user"
is "$(json -c 'keys_unsorted')" '["cookie","views","authenticated","user"]' "logged in: the visitor's views kept, authenticated and user added, nothing else"

# --- methods
req a POST /session -H 'Content-Type: application/json' --data-binary '{}'
status_is 405 "POST /session: 405"
like "$(hdr Allow)" '^GET, HEAD$' "Allow: GET, HEAD"
req a DELETE /session
status_is 405 "DELETE /session: 405"
get_json a /session
status_is 200 "wrong methods destroyed nothing"

stop_stack

# --- idle expiry, with renewal by touch (touch_after = 0) and rolling.
# The store outlives the stacks of this file: new clients for new stacks.
start_stack max_age=3 touch_after=0 rolling=true
get s2 /views
like "$(set_cookie)" '; Max-Age=3;' "max_age = 3: Max-Age=3"
cookie=$(jar_sid s2)
sleep 1.6
get_json s2 /session
status_is 200 "1.6 s later: alive"
like "$(set_cookie)" '; Max-Age=3;' "rolling: an unchanged session gets its cookie again"
sleep 1.6
get_json s2 /session
status_is 200 "3.2 s after creation, 1.6 s idle: alive (touched)"
sleep 3.5
# Sent by hand: the client's jar has dropped the expired cookie itself.
get_json - /session -H "Cookie: sid=$cookie"
status_is 401 "3.5 s idle: expired on the server"
get - /views -H "Cookie: sid=$cookie"
check "an expired session's cookie gives a new session" json_eq '{"views":1}'
isnt "$(cookie_id "$(set_cookie_value)")" "$(cookie_id "$cookie")" "with a new id"
stop_stack

# --- absolute timeout: ends an active session
start_stack max_age=60 absolute_timeout=3
get s3 /views
id=$(cookie_id "$(jar_sid s3)")
sleep 1.5
get s3 /views
check "1.5 s: the session goes on" json_eq '{"views":2}'
sleep 2
get s3 /views
check "3.5 s since creation: a new session however active" json_eq '{"views":1}'
isnt "$(cookie_id "$(set_cookie_value)")" "$id" "with a new id"

done_testing
