#!/usr/bin/env bash
# GET and POST /login: the form and its CSRF token, JSON and form logins,
# regenerate (a new id, the old one dead), bad credentials (403, the same
# answer for unknown users, no session), foreign Origin, and the throttle
# (429 with Retry-After per username and per client address). Every failed
# login comes from a loopback address of its own (fresh_addr), so that the
# per-address throttle only fires where a test wants it.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack
# Accounts of their own for the tests that count failures, so that no
# username reaches the throttle by accident: erin (odd inputs), carol
# (timing), dave (the per-username throttle).
for u in erin carol dave; do
    add_user "$u" user "$u's password" || bail "sessctl useradd $u failed"
done
BAD='{"msg":"Bad credentials"}'

# --- GET /login: the form
get a /login
status_is 200 "GET /login: 200"
like "$(hdr Content-Type)" '^text/html' "GET /login: HTML"
like "$BODY" '<form[^>]*method="post"' "GET /login: a POST form"
like "$BODY" 'name="username"' "the form has a username field"
like "$BODY" 'name="password"[^>]*type="password"|type="password"[^>]*name="password"' "the form has a password field"
token=$(csrf_token)
like "$token" '^[^ ]{16,}$' "the form has a csrf token"
is "$(set_cookie)" "" "GET /login creates no session"
like "$(hdr Set-Cookie)" '^sid\.csrf=[^;]+; Path=/; Expires=[^;]+; Max-Age=[0-9]+; HttpOnly; SameSite=Lax$' \
    "GET /login without a session: a pre-session cookie for the token, HttpOnly"

# --- JSON login
get a /views
pre_id=$(cookie_id "$(jar_sid a)")
like "$pre_id" '^[A-Za-z0-9_-]{43}$' "an anonymous session before logging in"
pre_cookie=$(jar_sid a)
login_json a alice wonderland
status_is 200 "JSON login, good credentials: 200"
like "$(hdr Content-Type)" '^application/json' "JSON login: a JSON answer"
is "$(json .cookie.originalMaxAge)" 1800000 "session JSON: cookie.originalMaxAge 1800000 (ms)"
like "$(json .cookie.expires)" "$ISO_RE" "session JSON: cookie.expires in ISO 8601 with ms"
is "$(json .cookie.httpOnly)" true "session JSON: cookie.httpOnly true"
is "$(json .cookie.path)" / "session JSON: cookie.path /"
is "$(json .cookie.sameSite)" lax "session JSON: cookie.sameSite lax"
is "$(json .cookie.secure)" false "session JSON: cookie.secure false over HTTP"
is "$(json .authenticated)" true "session JSON: authenticated true"
is "$(json -c .user)" '{"username":"alice","role":"admin"}' "session JSON: user {username, role}"
unlike "$BODY" 'wonderland|password' "the password is not in the session"
expires_ms=$(date -d "$(json .cookie.expires)" +%s 2> /dev/null || echo 0)
delta=$((expires_ms - $(date +%s)))
check "cookie.expires is now + 1800 s (got $delta s)" test "$delta" -ge 1795 -a "$delta" -le 1801
no_store_is_set "JSON login: Cache-Control: no-store"
post_id=$(cookie_id "$(set_cookie_value)")
like "$post_id" '^[A-Za-z0-9_-]{43}$' "JSON login: Set-Cookie with a new id"
isnt "$post_id" "$pre_id" "login regenerates: the id changes"
like "$(set_cookie)" '; HttpOnly; SameSite=Lax$' "the login cookie is HttpOnly, SameSite=Lax"

get_json a /session
is "$(json .user.username)" alice "the new session is logged in"
is "$(json .views)" 1 "login keeps the visitor's data (views)"
unlike "$BODY" 'wonderland' "the stored session holds no password"
get_json - /session -H "Cookie: sid=$pre_cookie"
status_is 401 "the pre-login id no longer works (destroyed by regenerate)"
get - /views -H "Cookie: sid=$pre_cookie"
check "the pre-login cookie gives a new session" json_eq '{"views":1}'
isnt "$(cookie_id "$(set_cookie_value)")" "$pre_id" "and not with the old id"

get a /login
status_is 200 "GET /login logged in: 200, the same form"
like "$(csrf_token)" '^[^ ]{16,}$' "GET /login logged in: with a token"
no_set_cookie "GET /login logged in: no Set-Cookie"

# JSON is chosen by Content-Type alone too.
req b POST /login -H 'Content-Type: application/json' \
    --data-binary '{"username":"bob","password":"builder"}'
status_is 200 "JSON login without Accept: 200"
is "$(json -c .user)" '{"username":"bob","role":"user"}' "bob is a user"
get_json b /dashboard
is "$(json .username)" bob "bob's session is bob's"

# --- bad credentials
fresh_addr
get_json c /views
T_FROM=$T_ADDR login_json c alice wrong-password
status_is 403 "wrong password: 403"
wrong_body=$BODY
check "wrong password: {\"msg\":\"Bad credentials\"}" json_eq "$BAD"
no_set_cookie "wrong password: no Set-Cookie"
fresh_addr
T_FROM=$T_ADDR login_json - nobody-here wonderland
status_is 403 "unknown user: 403"
is "$BODY" "$wrong_body" "unknown user: byte for byte the answer to a wrong password"
no_set_cookie "unknown user: no Set-Cookie"
get c /views
check "a failed login leaves the client's session alone (views 2)" json_eq '{"views":2}'
get_json c /session
is "$(json .authenticated)" null "a failed login does not log the session in"

fresh_addr
T_FROM=$T_ADDR post_json - /login '{"username":"erin"}'
status_is 403 "no password: 403"
check "no password: Bad credentials" json_eq "$BAD"
fresh_addr
T_FROM=$T_ADDR post_json - /login '{}'
status_is 403 "no fields: 403"
fresh_addr
T_FROM=$T_ADDR post_json - /login '{"username":"erin","password":""}'
status_is 403 "empty password: 403"
no_set_cookie "empty password: no Set-Cookie"
fresh_addr
T_FROM=$T_ADDR post_json - /login '{"username":"erin","password":"erin'"'"'s password\u0000x"}'
like "$STATUS" '^(400|403)$' "a NUL and more after the password: 400 or 403 (no C-string truncation)"
no_set_cookie "a NUL and more after the password: no Set-Cookie"
fresh_addr
T_FROM=$T_ADDR post_json - /login '{"username":"bob\u0000x","password":"builder"}'
like "$STATUS" '^(400|403)$' "a NUL and more after the username: 400 or 403"
no_set_cookie "a NUL and more after the username: no Set-Cookie"
fresh_addr
get - /login
token=$(csrf_token)
T_FROM=$T_ADDR post_form - /login "username=erin&password=erin's%20password%00x&csrf=$(urlenc "$token")"
like "$STATUS" '^(400|403)$' "form: a NUL and more after the password: 400 or 403"
no_set_cookie "form: a NUL and more after the password: no Set-Cookie"
fresh_addr
T_FROM=$T_ADDR post_json - /login '{"username":"erin","password":["erin'"'"'s password"]}'
like "$STATUS" '^(400|403)$' "password as an array: 400 or 403"
no_set_cookie "password as an array: no Set-Cookie"
fresh_addr
# shellcheck disable=SC2016 # a literal $ne, as a NoSQL injection sends it
T_FROM=$T_ADDR post_json - /login '{"username":{"$ne":""},"password":"x"}'
like "$STATUS" '^(400|403)$' "username as an object: 400 or 403"
fresh_addr
T_FROM=$T_ADDR post_json - /login "{\"username\":\"$(head -c 600 /dev/zero | tr '\0' u)\",\"password\":\"x\"}"
like "$STATUS" '^(400|403)$' "a 600-byte username: 400 or 403"
fresh_addr
T_FROM=$T_ADDR post_json - /login "{\"username\":\"$(head -c 12000 /dev/zero | tr '\0' u)\",\"password\":\"x\"}"
like "$STATUS" '^(400|403|413)$' "a 12000-byte username: a 4xx"
fresh_addr
T_FROM=$T_ADDR post_json - /login '{"username":"ALICE","password":"wonderland"}'
status_is 403 "usernames are case-sensitive"

# Unknown users cost the same argon2id work as wrong passwords: no user
# enumeration by timing either (medians of 3, loose bound).
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
t_wrong=() t_unknown=()
for i in 1 2 3; do
    fresh_addr
    T_FROM=$T_ADDR login_json - carol "wrong $i"
    t_wrong+=("$T_TIME")
    fresh_addr
    T_FROM=$T_ADDR login_json - "nobody$i" "wrong $i"
    t_unknown+=("$T_TIME")
done
mw=$(median "${t_wrong[@]}")
mu=$(median "${t_unknown[@]}")
check "an unknown user takes as long as a wrong password (${mu} s vs ${mw} s)" \
    awk -v u="$mu" -v w="$mw" 'BEGIN { exit !(u >= 0.5 * w && u <= 2 * w + 0.05) }'

# --- form login
get f /login
token=$(csrf_token)
post_form f /login "username=alice&password=wonderland&csrf=$(urlenc "$token")"
status_is 303 "form login: 303"
is "$(hdr Location)" /dashboard "form login: to /dashboard"
like "$(set_cookie)" '^sid=s%3A' "form login: Set-Cookie"
get f /dashboard
status_is 200 "form login: then the dashboard"
like "$(text)" 'alice' "the dashboard names alice"

get g /login
token=$(csrf_token)
post_form g /login "username=bob&password=builder&csrf=$(urlenc "$token")" -H "Origin: $T_ORIGIN"
status_is 303 "form login with this site's Origin: 303"

# with a session already (the token is bound to it)
get h /views
get h /login
token=$(csrf_token)
h_id=$(cookie_id "$(jar_sid h)")
post_form h /login "username=bob&password=builder&csrf=$(urlenc "$token")"
status_is 303 "form login from an anonymous session: 303"
isnt "$(cookie_id "$(jar_sid h)")" "$h_id" "form login regenerates the id"

fresh_addr
get i /login
token=$(csrf_token)
T_FROM=$T_ADDR post_form i /login "username=alice&password=nope&csrf=$(urlenc "$token")"
status_is 403 "form login, wrong password: 403"
like "$(hdr Content-Type)" '^text/html' "form login, wrong password: the form again (HTML)"
like "$(text)" 'Bad credentials' "form login, wrong password: the error is shown"
like "$BODY" 'name="csrf"' "form login, wrong password: the form again, with a token"
no_set_cookie "form login, wrong password: no Set-Cookie"

# the username is shown back, escaped
fresh_addr
get i /login
token=$(csrf_token)
evil='"><script>alert(1)</script>'
T_FROM=$T_ADDR post_form i /login "username=$(urlenc "$evil")&password=x&csrf=$(urlenc "$token")"
like "$STATUS" '^(400|403)$' "a username with markup: 400 or 403"
unlike "$BODY" '<script>alert' "a username with markup is never echoed raw"

# --- CSRF
get j /login
post_form j /login "username=alice&password=wonderland"
status_is 403 "form login without csrf: 403"
no_set_cookie "form login without csrf: no session"
get_json j /session
status_is 401 "form login without csrf: not logged in"
get j /login
token=$(csrf_token)
post_form j /login "username=alice&password=wonderland&csrf=x$(urlenc "$token")"
status_is 403 "form login with a wrong csrf: 403"
post_form j /login "username=alice&password=wonderland&csrf=$(urlenc "${token%?}")"
status_is 403 "form login with a truncated csrf: 403"
post_form j /login "username=alice&password=wonderland&csrf="
status_is 403 "form login with an empty csrf: 403"
get_json j /session
status_is 401 "still not logged in after refused forms"
# A token shown to a client without a session is not valid for one with.
get - /login
anon_token=$(csrf_token)
get k /views
post_form k /login "username=alice&password=wonderland&csrf=$(urlenc "$anon_token")"
status_is 403 "a token from another session: 403"

# --- Origin
for o in http://evil.example "http://127.0.0.1.evil.example" null "https://127.0.0.1:${T_URL##*:}"; do
    get l /login
    token=$(csrf_token)
    post_form l /login "username=alice&password=wonderland&csrf=$(urlenc "$token")" -H "Origin: $o"
    status_is 403 "form login with Origin: $o: 403"
    no_set_cookie "form login with Origin: $o: no Set-Cookie"
done
login_json l alice wonderland -H 'Origin: http://evil.example'
status_is 403 "JSON login with a foreign Origin: 403 (good credentials)"
no_set_cookie "JSON login with a foreign Origin: no Set-Cookie"
login_json l alice wonderland -H "Origin: $T_ORIGIN"
status_is 200 "JSON login with this site's Origin: 200"

# --- throttle, per username: five failures from five addresses, then 429
# for that username from anywhere, good password included.
for i in 1 2 3 4 5; do
    fresh_addr
    T_FROM=$T_ADDR login_json - dave "bad $i"
    status_is 403 "dave failure $i: 403"
done
fresh_addr
T_FROM=$T_ADDR login_json - dave "bad 6"
status_is 429 "dave, sixth try in the window: 429"
retry=$(hdr Retry-After)
like "$retry" '^[0-9]+$' "429 carries Retry-After in seconds"
check "Retry-After is within the 5-minute window ($retry)" test "${retry:-0}" -ge 1 -a "${retry:-0}" -le 300
no_set_cookie "429: no Set-Cookie"
fresh_addr
T_FROM=$T_ADDR login_json - dave "dave's password"
status_is 429 "dave, right password while locked: 429"
fresh_addr
T_FROM=$T_ADDR login_json - bob builder
status_is 200 "another user is not locked"

# --- throttle, per client address: five failures for five usernames from
# one address, then 429 for any username from it.
fresh_addr
addr=$T_ADDR
for i in 1 2 3 4 5; do
    T_FROM=$addr login_json - "ghost$i" x
    status_is 403 "address failure $i: 403"
done
T_FROM=$addr login_json - ghost6 x
status_is 429 "sixth failure from one address: 429"
like "$(hdr Retry-After)" '^[0-9]+$' "with Retry-After"
T_FROM=$addr login_json - alice wonderland
status_is 429 "good credentials from the locked address: 429"
get m /login
token=$(csrf_token)
T_FROM=$addr post_form m /login "username=alice&password=wonderland&csrf=$(urlenc "$token")"
status_is 429 "form login from the locked address: 429"
fresh_addr
T_FROM=$T_ADDR login_json - alice wonderland
status_is 200 "alice from another address: 200"

# --- methods
req - PUT /login
status_is 405 "PUT /login: 405"
like "$(hdr Allow)" '^GET, HEAD, POST$' "Allow: GET, HEAD, POST"

done_testing
