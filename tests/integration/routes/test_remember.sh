#!/usr/bin/env bash
# "Remember me" and "Login keeps what the visitor had" (README, the demo's contract): a
# remembered login's cookie carries Max-Age = remember_max_age and the
# matching Expires, GET /session shows it as cookie.originalMaxAge, and the
# session outlives max_age; without it, max_age as before, and with
# cookie_persist = false a cookie without Expires or Max-Age whose session
# still ends on the server. A login keeps the visitor's data under a new id.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

# body_has JQ-FILTER: the JSON body passes the filter.
body_has() {
    jq -e "$1" <<< "$BODY" > /dev/null 2>&1
}

# max_age_of: the Max-Age of the last Set-Cookie of `sid`.
max_age_of() {
    sed -n 's/.*; Max-Age=\([0-9]*\).*/\1/p' <<< "$(set_cookie)"
}

# --- the login form has the checkbox
get a /login
like "$BODY" '<input[^>]*name="remember"[^>]*type="checkbox"|type="checkbox"[^>]*name="remember"' \
    "the login form has a remember checkbox"
like "$(text)" 'Remember me' "labelled Remember me"

# --- JSON, remembered
post_json a /login '{"username":"alice","password":"wonderland","remember":true}'
status_is 200 "JSON login with remember: 200"
is "$(max_age_of)" 2592000 "a remembered login's cookie: Max-Age=2592000"
expires=$(sed -n 's/.*; Expires=\([^;]*\);.*/\1/p' <<< "$(set_cookie)")
delta=$(($(date -d "$expires" +%s) - $(date +%s)))
check "its Expires is now + 30 days (got $delta s)" test "$delta" -ge 2591990 -a "$delta" -le 2592001
is "$(json .cookie.originalMaxAge)" 2592000000 "the login answer: originalMaxAge 2592000000"
delta=$(($(date -d "$(json .cookie.expires)" +%s) - $(date +%s)))
check "the login answer: cookie.expires is now + 30 days too (got $delta s)" \
    test "$delta" -ge 2591990 -a "$delta" -le 2592001
get_json a /session
is "$(json .cookie.originalMaxAge)" 2592000000 "GET /session: cookie.originalMaxAge = remember_max_age x 1000"
get a /views
is "$(max_age_of)" 2592000 "a later write re-sends Max-Age=2592000"

# --- form, remembered (on and 1)
for v in on 1; do
    get f$v /login
    post_form f$v /login "username=alice&password=wonderland&remember=$v&csrf=$(urlenc "$(csrf_token)")" \
        -H "Origin: $T_ORIGIN"
    status_is 303 "form login with remember=$v: 303"
    is "$(max_age_of)" 2592000 "form login with remember=$v: Max-Age=2592000"
done

# --- not remembered
login_json n alice wonderland
is "$(max_age_of)" 1800 "without remember: Max-Age=1800"
get_json n /session
is "$(json .cookie.originalMaxAge)" 1800000 "without remember: originalMaxAge 1800000"
post_json n2 /login '{"username":"alice","password":"wonderland","remember":false}'
is "$(max_age_of)" 1800 "remember false: Max-Age=1800"

# --- login keeps what the visitor had
post_json v /prefs '{"theme":"dark","lang":"fr"}'
get v /views
get v /views
old=$(jar_sid v)
login_json v bob builder
status_is 200 "login over a visitor's session: 200"
isnt "$(jar_sid v)" "$old" "login gives a new id"
get_json v /session
check "login keeps prefs and views, adds authenticated and user" \
    body_has '.prefs == {"theme":"dark","lang":"fr"} and .views == 2 and .authenticated == true
        and .user == {"username":"bob","role":"user"}'
get_json - /session -H "Cookie: sid=$old"
status_is 401 "the visitor's old cookie no longer works"
# Someone else's session carries nothing over.
login_json v alice wonderland
get_json v /session
check "a login over another user's session keeps none of it" \
    body_has '.prefs == null and .views == null and .user.username == "alice"'

# --- cookie_persist = false, and lifetimes that can be waited for
stop_stack
start_stack cookie_persist=false max_age=2 touch_after=0 remember_max_age=60
login_json p alice wonderland
status_is 200 "cookie_persist = false: login 200"
unlike "$(set_cookie)" 'Expires=|Max-Age=' "a session not remembered: no Expires, no Max-Age"
is "$(json .cookie.originalMaxAge)" null "its originalMaxAge is null, as express-session shows it"
post_json r /login '{"username":"alice","password":"wonderland","remember":true}'
is "$(max_age_of)" 60 "a remembered session keeps Max-Age=remember_max_age"
like "$(set_cookie)" 'Expires=' "and Expires"
sleep 3
get_json p /session
status_is 401 "past max_age the unremembered session has ended on the server"
get_json r /session
status_is 200 "the remembered one lives on (remember_max_age)"
done_testing
