#!/usr/bin/env bash
# GET /dashboard: 401 without a login (HTML and JSON), 200 with username,
# role, the session's expiry and the preferences form when logged in.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

get - /dashboard
status_is 401 "no session: 401"
like "$(hdr Content-Type)" '^text/html' "no session, a browser: an HTML page"
no_set_cookie "no session: no Set-Cookie"
get_json - /dashboard
status_is 401 "no session, JSON: 401"
like "$(json .msg)" '.' "no session, JSON: {\"msg\": ...}"

get a /views
get a /dashboard
status_is 401 "an anonymous session: 401"
no_set_cookie "an anonymous session: 401 and no Set-Cookie"

login_json a alice wonderland
get a /dashboard
status_is 200 "alice: 200"
like "$(hdr Content-Type)" '^text/html' "alice: HTML"
like "$(text)" 'alice' "the dashboard names the user"
like "$(text)" 'admin' "the dashboard shows the role"
like "$BODY" '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}' "the dashboard shows the session's expiry"
like "$BODY" '<form[^>]*action="/prefs"' "the dashboard has the preferences form"
like "$(csrf_token)" '^[^ ]{16,}$' "the preferences form carries a csrf token"
no_store_is_set "Cache-Control: no-store (session data)"
no_set_cookie "reading the dashboard does not rewrite the cookie"

get_json a /dashboard
status_is 200 "alice, JSON: 200"
check 'alice, JSON: {"username":"alice","role":"admin"}' json_eq '{"username":"alice","role":"admin"}'

login_form b bob builder
is "$(hdr Location)" /dashboard "a form login lands on /dashboard"
get b /dashboard
status_is 200 "bob: 200"
like "$(text)" 'bob' "bob's dashboard names bob"
like "$(text)" '(^|[^a-z])user([^a-z]|$)' "bob's role is user"
unlike "$(text)" 'alice' "bob's dashboard says nothing of alice"

# After logout the dashboard is closed again.
post_json b /logout '{}'
get b /dashboard
status_is 401 "after logout: 401"

req a PUT /dashboard
status_is 405 "PUT /dashboard: 405"
like "$(hdr Allow)" '^GET, HEAD$' "Allow: GET, HEAD"

done_testing
