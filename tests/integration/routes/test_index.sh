#!/usr/bin/env bash
# GET /: the welcome page, no session created; names the user when logged
# in. And the web server's routing: only the contract's paths reach an
# executable, everything else is 404.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

get - /
status_is 200 "GET /: 200"
like "$(hdr Content-Type)" '^text/html; charset=utf-8' "GET /: HTML in UTF-8"
like "$BODY" '^<!doctype html>' "GET /: a whole page"
like "$BODY" '<html lang="[a-z]' "GET /: the page names its language"
like "$(text)" 'Welcome' "GET /: the welcome page"
like "$BODY" 'href="/login"' "GET /: links to the login"
no_set_cookie "GET /: no Set-Cookie"
get - '/?utm=1&x=%20'
status_is 200 "GET /?query: 200"
no_set_cookie "GET /?query: no Set-Cookie"

get a /views
get a /
status_is 200 "an anonymous session: 200"
unlike "$(text)" 'Welcome back' "an anonymous session is nobody"
no_set_cookie "an anonymous session: not rewritten"

login_json a alice wonderland
get a /
status_is 200 "alice: 200"
like "$(text)" 'alice' "the welcome page names alice"
no_store_is_set "alice: Cache-Control: no-store (session data)"
no_set_cookie "alice: no Set-Cookie"

req a HEAD /
status_is 200 "HEAD /: 200"
req a POST / -H 'Content-Type: application/json' --data-binary '{}'
status_is 405 "POST /: 405"
like "$(hdr Allow)" '^GET, HEAD$' "Allow: GET, HEAD"

# --- routing: the exact paths of the contract, nothing else
for path in /index /index.fcgi /index.html /login/ /login/x /loginx /logout/x /profile/1 \
    /dashboard.html /session/ /views/1 /prefs/x /cgi-bin/views.fcgi /lighttpd.conf \
    /favicon.ico; do
    get - "$path"
    status_is 404 "GET $path: 404"
done
# Above the root: Apache and nginx refuse the path itself (400), lighttpd
# finds nothing there (404); no server may reach an executable.
for path in /../etc/passwd /%2e%2e/etc/passwd; do
    get - "$path"
    like "$STATUS" '^40[04]$' "GET $path: 400 or 404"
done
get - '/login?next=/x'
status_is 200 "GET /login?query: the login page"

done_testing
