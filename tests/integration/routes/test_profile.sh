#!/usr/bin/env bash
# GET /profile: "You're not logged in" without a login, "Hello USER" with
# one; creates no session; no-store when it shows session data.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

get - /profile
status_is 200 "no session: 200"
like "$(hdr Content-Type)" '^text/html' "no session: HTML"
like "$(text)" "You're not logged in" "no session: You're not logged in"
no_set_cookie "no session: no Set-Cookie"
like "$BODY" '^<!doctype html>' "a whole page (doctype)"

get a /views
get a /profile
like "$(text)" "You're not logged in" "an anonymous session: not logged in"
no_set_cookie "an anonymous session is not rewritten"

get - /profile -H "Cookie: sid=$(sign_id AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)"
like "$(text)" "You're not logged in" "an unknown id: not logged in"

login_json b alice wonderland
get b /profile
status_is 200 "alice: 200"
like "$(text)" "Hello alice" "alice: Hello alice"
unlike "$(text)" "not logged in" "alice: not the anonymous text"
no_store_is_set "alice: Cache-Control: no-store (session data)"
no_set_cookie "reading the profile does not rewrite the cookie"

login_form c bob builder
get c /profile
like "$(text)" "Hello bob" "bob: Hello bob"

forged=$(sign_id "$(cookie_id "$(jar_sid b)")" "a-secret-that-is-not-this-servers-one")
get - /profile -H "Cookie: sid=$forged"
like "$(text)" "You're not logged in" "alice's id with a forged signature: not logged in"

req b HEAD /profile
status_is 200 "HEAD /profile: 200"
req b POST /profile -H 'Content-Type: application/json' --data-binary '{}'
status_is 405 "POST /profile: 405"
like "$(hdr Allow)" '^GET, HEAD$' "Allow: GET, HEAD"

# A FastCGI route starts with glibc's per-thread cache at 64 chunks a size
# (scripts/stack.sh and each server's template); a CGI one lives for one
# request.
tunables=
case "${TEST_SERVER:-lighttpd}" in
*-cgi) skip "the route's GLIBC_TUNABLES" "plain CGI keeps no process" ;;
*)
    for p in /proc/[0-9]*; do
        if grep -qsF "cgi-bin/profile.fcgi" "$p/cmdline" && grep -qsF "$T_CONFIG" "$p/environ"; then
            tunables=$(tr '\0' '\n' < "$p/environ" | grep '^GLIBC_TUNABLES=')
            break
        fi
    done
    is "$tunables" "GLIBC_TUNABLES=glibc.malloc.tcache_count=64" "the route's GLIBC_TUNABLES"
    ;;
esac

done_testing
