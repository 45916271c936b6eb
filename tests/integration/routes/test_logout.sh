#!/usr/bin/env bash
# GET /logout shows a confirm form and changes nothing; POST /logout destroys
# the stored session and expires the cookie (JSON 200, forms 303 to /); a
# replayed cookie then finds nothing; CSRF and Origin are checked.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

# The Set-Cookie that clears sid: an empty value that has expired.
CLEAR_RE='^sid=;( |.*; )(Expires=Thu, 01 Jan 1970 00:00:00 GMT|Max-Age=0)(;|$)'

# --- GET /logout
get - /logout
status_is 200 "GET /logout without a session: 200"
like "$(hdr Content-Type)" '^text/html' "GET /logout: HTML"
like "$BODY" '<form[^>]*method="post"[^>]*action="/logout"|<form[^>]*action="/logout"[^>]*method="post"' "GET /logout: a form that posts to /logout"
like "$(csrf_token)" '^[^ ]{16,}$' "GET /logout: the form has a csrf token"
is "$(set_cookie)" "" "GET /logout without a session: no session cookie"
like "$(hdr Set-Cookie)" '^sid\.csrf=' "GET /logout without a session: only the pre-session cookie its token is bound to"

login_json a alice wonderland
status_is 200 "alice logs in"
cookie=$(jar_sid a)
get a /logout
status_is 200 "GET /logout logged in: 200"
no_set_cookie "GET /logout changes nothing: no Set-Cookie"
get_json a /session
status_is 200 "GET /logout changes nothing: still logged in"
is "$(json .user.username)" alice "GET /logout changes nothing: still alice"

# --- POST /logout, JSON
post_json a /logout '{}'
status_is 200 "POST /logout (JSON): 200"
like "$(hdr Content-Type)" '^application/json' "POST /logout (JSON): a JSON answer"
like "$(set_cookie)" "$CLEAR_RE" "POST /logout clears the cookie (empty, expired)"
like "$(set_cookie)" '; Path=/(;|$)' "the clearing cookie has the same Path"
no_store_is_set "POST /logout: Cache-Control: no-store"
is "$(jar_sid a)" "" "the client has dropped the cookie"
get_json - /session -H "Cookie: sid=$cookie"
status_is 401 "the old cookie replayed: no session (destroyed on the server)"
get_json - /dashboard -H "Cookie: sid=$cookie"
status_is 401 "the old cookie replayed: /dashboard 401"
get - /profile -H "Cookie: sid=$cookie"
like "$(text)" "You're not logged in" "the old cookie replayed: /profile not logged in"
get - /views -H "Cookie: sid=$cookie"
check "the old cookie replayed: /views starts a new session" json_eq '{"views":1}'
isnt "$(cookie_id "$(set_cookie_value)")" "$(cookie_id "$cookie")" "with a new id, not the destroyed one"

# --- POST /logout, form
login_form b bob builder
status_is 303 "bob logs in through the form"
cookie=$(jar_sid b)
get b /logout
token=$(csrf_token)
post_form b /logout "csrf=$(urlenc "$token")" -H "Origin: $T_ORIGIN"
status_is 303 "POST /logout (form): 303"
is "$(hdr Location)" / "POST /logout (form): to /"
like "$(set_cookie)" "$CLEAR_RE" "POST /logout (form) clears the cookie"
get_json - /session -H "Cookie: sid=$cookie"
status_is 401 "after the form logout the old cookie finds nothing"

# --- refused logouts change nothing
login_json c alice wonderland
cookie=$(jar_sid c)
post_form c /logout ""
status_is 403 "POST /logout form without csrf: 403"
no_set_cookie "POST /logout without csrf: the cookie stays"
post_form c /logout "csrf=forged.token"
status_is 403 "POST /logout form with a wrong csrf: 403"
get - /logout
anon_token=$(csrf_token)
post_form c /logout "csrf=$(urlenc "$anon_token")"
status_is 403 "POST /logout with a token of no session: 403"
post_json c /logout '{}' -H 'Origin: http://evil.example'
status_is 403 "POST /logout (JSON) with a foreign Origin: 403"
get c /logout
token=$(csrf_token)
post_form c /logout "csrf=$(urlenc "$token")" -H 'Origin: http://evil.example'
status_is 403 "POST /logout (form, good csrf) with a foreign Origin: 403"
get_json - /session -H "Cookie: sid=$cookie"
status_is 200 "after refused logouts the session lives"
is "$(json .user.username)" alice "still alice"

# --- logout without a session
post_json - /logout '{}'
status_is 200 "POST /logout without a session (JSON): 200"
no_set_cookie "POST /logout without a cookie: no Set-Cookie"
forged=$(sign_id "$(cookie_id "$cookie")" "some-other-secret-of-at-least-32-bytes")
post_json - /logout '{}' -H "Cookie: sid=$forged"
status_is 200 "POST /logout with a forged cookie: 200"
get_json - /session -H "Cookie: sid=$cookie"
status_is 200 "a forged cookie logs nobody out"

# --- the session of another client is untouched by a logout
login_json d bob builder
post_json c /logout '{}'
status_is 200 "alice logs out"
get_json d /session
is "$(json .user.username)" bob "bob's session is untouched"

# --- methods
req d PUT /logout
status_is 405 "PUT /logout: 405"
like "$(hdr Allow)" '^GET, HEAD, POST$' "Allow: GET, HEAD, POST"
get_json d /session
status_is 200 "PUT /logout logged nobody out"

done_testing
