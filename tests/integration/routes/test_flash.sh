#!/usr/bin/env bash
# Flash messages (README, the demo's contract): after a form login the dashboard shows
# "Welcome back, USERNAME" once; after a form POST to /prefs the page it
# returns to shows "Preferences saved" once; after a password change,
# "Password changed". Each in an element with class="flash" and
# role="status", kept in the session in connect-flash's layout, and read
# by pages only (JSON does not take them).
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

# flash_count TEXT: how many flash elements of the page say TEXT.
flash_count() {
    grep -cE "<[a-z]+ class=\"flash\" role=\"status\"[^>]*>$1<" <<< "$BODY"
}

# --- login
login_form a alice wonderland
status_is 303 "form login: 303"
is "$(hdr Location)" /dashboard "to /dashboard"
get_json a /session
check "kept as connect-flash keeps it" json_eq \
    "$(jq -c '.flash = {"info":["Welcome back, alice"]}' <<< "$BODY")"
get_json a /session
like "$BODY" 'Welcome back, alice' "JSON does not take the message"
get a /dashboard
status_is 200 "the dashboard after the login: 200"
is "$(flash_count 'Welcome back, alice')" 1 "shows Welcome back, alice once, class=flash role=status"
get a /dashboard
is "$(flash_count 'Welcome back, alice')" 0 "reloading it no longer shows it"
get_json a /session
unlike "$BODY" '"flash"' "and the session no longer holds it"

# A JSON login has nobody to show it to.
login_json j alice wonderland
get_json j /session
unlike "$BODY" '"flash"' "a JSON login leaves no flash"

# --- prefs
for back in /dashboard /prefs; do
    get a "$back"
    post_form a /prefs "theme=dark&lang=en&back=$(urlenc "$back")&csrf=$(urlenc "$(csrf_token)")" \
        -H "Origin: $T_ORIGIN"
    status_is 303 "form POST /prefs (back $back): 303"
    is "$(hdr Location)" "$back" "back to $back"
    get a "$back"
    is "$(flash_count 'Preferences saved')" 1 "$back shows Preferences saved once"
    get a "$back"
    is "$(flash_count 'Preferences saved')" 0 "$back again: not shown"
done
post_json a /prefs '{"theme":"light"}'
get a /prefs
is "$(flash_count 'Preferences saved')" 0 "a JSON POST /prefs sets no flash"

# An anonymous visitor's form post gets it too (the session starts).
get v /prefs
post_form v /prefs "theme=dark&csrf=$(urlenc "$(csrf_token)")" -H "Origin: $T_ORIGIN"
get v /prefs
is "$(flash_count 'Preferences saved')" 1 "a visitor without a login sees it too"

# --- password change
get a /password
status_is 200 "GET /password: the form"
post_form a /password "current=wonderland&new=$(urlenc 'a brand new password')&csrf=$(urlenc "$(csrf_token)")" \
    -H "Origin: $T_ORIGIN"
status_is 303 "form password change: 303"
is "$(hdr Location)" /dashboard "to /dashboard"
get a /dashboard
is "$(flash_count 'Password changed')" 1 "the dashboard shows Password changed once"
get a /dashboard
is "$(flash_count 'Password changed')" 0 "then no more"

done_testing
