#!/usr/bin/env bash
# GET and POST /prefs: {} without a session; theme and lang stored, merged,
# validated (400 for bad values, changing nothing), nothing else stored (no
# mass assignment); forms with CSRF and 303; values HTML-escaped in pages;
# the chosen theme applied to the pages.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

get_json - /prefs
status_is 200 "GET /prefs without a session: 200"
check "GET /prefs without a session: {}" json_eq '{}'
no_set_cookie "GET /prefs creates no session"

# --- JSON
post_json a /prefs '{"theme":"dark","lang":"fr"}'
status_is 200 "POST /prefs (JSON): 200"
check "POST /prefs answers the stored prefs" json_eq '{"theme":"dark","lang":"fr"}'
like "$(set_cookie)" '^sid=s%3A' "POST /prefs creates the session (Set-Cookie)"
no_store_is_set "POST /prefs: Cache-Control: no-store"
get_json a /prefs
check "GET /prefs: stored" json_eq '{"theme":"dark","lang":"fr"}'
no_store_is_set "GET /prefs with data: Cache-Control: no-store"
post_json a /prefs '{"lang":"de"}'
status_is 200 "POST only lang: 200"
get_json a /prefs
check "merged: theme kept, lang replaced" json_eq '{"theme":"dark","lang":"de"}'
post_json a /prefs '{}'
status_is 200 "POST {}: 200"
get_json a /prefs
check "POST {} changes nothing" json_eq '{"theme":"dark","lang":"de"}'

# --- only theme and lang are stored
post_json a /prefs '{"theme":"light","authenticated":true,"user":{"username":"alice","role":"admin"},"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},"cookie":{"secure":true,"maxAge":1},"views":99,"prefs":{"x":1}}'
status_is 200 "POST with extra keys: 200"
get_json a /prefs
check "only theme changed" json_eq '{"theme":"light","lang":"de"}'
get_json a /session
is "$(json .authenticated)" null "authenticated was not stored"
is "$(json .user)" null "user was not stored"
is "$(json .views)" null "views was not stored"
is "$(json .cookie.secure)" false "cookie was not touched"
is "$(json .cookie.originalMaxAge)" 1800000 "cookie.originalMaxAge was not touched"
get a /dashboard
status_is 401 "mass assignment does not log in"

# --- validation: 400 and nothing stored
long=$(head -c 65 /dev/zero | tr '\0' x)
for bad in "{\"theme\":\"$long\"}" '{"theme":"a\u0001b"}' '{"lang":"a\nb"}' '{"lang":"a\u007fb"}' \
    '{"theme":5}' '{"theme":null}' '{"theme":true}' '{"lang":["fr"]}' '{"lang":{"x":"fr"}}' \
    '{"theme":"dark\r\nSet-Cookie: x=1"}' '{"theme":"ok","lang":"\u0000"}'; do
    post_json a /prefs "$bad"
    status_is 400 "invalid $bad: 400"
    like "$(json .msg)" '.' "invalid value: a short message"
    no_set_cookie "invalid value: no Set-Cookie"
done
get_json a /prefs
check "invalid values stored nothing" json_eq '{"theme":"light","lang":"de"}'
post_json - /prefs '{"theme":5}'
status_is 400 "invalid value without a session: 400"
no_set_cookie "invalid value without a session: no session created"

max=$(head -c 64 /dev/zero | tr '\0' y)
post_json a /prefs "{\"lang\":\"$max\"}"
status_is 200 "a 64-character value: 200"
accents=$(printf 'é%.0s' $(seq 1 64))
post_json a /prefs "{\"lang\":\"$accents\"}"
status_is 200 "64 non-ASCII characters: 200 (the limit counts characters, as Express)"
post_json a /prefs '{"lang":"日本語","theme":"dark"}'
status_is 200 "UTF-8 values: 200"
get_json a /prefs
check "UTF-8 values stored" json_eq '{"theme":"dark","lang":"日本語"}'

# --- HTML: the page shows the values, escaped; the theme is applied
get a /prefs
status_is 200 "GET /prefs (HTML): 200"
like "$(hdr Content-Type)" '^text/html' "GET /prefs (HTML): a page"
like "$(text)" '日本語' "the page shows the language"
like "$BODY" 'data-theme="dark"' "the page is in the chosen theme"
get a /
like "$BODY" 'data-theme="dark"' "the welcome page is in the chosen theme too"
evil='<script>alert(1)</script>'
post_json a /prefs "$(jq -cn --arg t "$evil" --arg l '" onmouseover="alert(2)' '{theme: $t, lang: $l}')"
status_is 200 "markup in values is accepted as text"
get a /prefs
unlike "$BODY" '<script>alert' "no raw <script> from a stored value"
unlike "$BODY" '" onmouseover="alert' "no attribute injection from a stored value"
like "$BODY" '&lt;script&gt;alert\(1\)&lt;/script&gt;' "the value is shown escaped"
get a /
unlike "$BODY" '<script>alert|" onmouseover="alert' "the layout escapes the theme too"

# --- forms: CSRF and 303
get f /prefs
status_is 200 "GET /prefs for a browser: 200"
like "$BODY" '<form[^>]*action="/prefs"' "the page has the form"
token=$(csrf_token)
post_form f /prefs "theme=dark&lang=es&csrf=$(urlenc "$token")" -H "Origin: $T_ORIGIN"
status_is 303 "form POST /prefs: 303"
is "$(hdr Location)" /prefs "form POST /prefs: back to /prefs"
like "$(set_cookie)" '^sid=s%3A' "form POST /prefs creates the session"
get_json f /prefs
check "the form's values are stored" json_eq '{"theme":"dark","lang":"es"}'
get f /prefs
token=$(csrf_token)
post_form f /prefs "theme=light&lang=fr&csrf=$(urlenc "$token")&authenticated=true&user=alice"
status_is 303 "form POST with extra fields: 303"
get_json f /session
check "the form stored theme and lang only" test "$(json -c '[.prefs, .authenticated, .user]')" = '[{"theme":"light","lang":"fr"},null,null]'

post_form f /prefs "theme=dark&lang=de"
status_is 403 "form POST /prefs without csrf: 403"
post_form f /prefs "theme=dark&lang=de&csrf=1.AAAA"
status_is 403 "form POST /prefs with a wrong csrf: 403"
get f /prefs
token=$(csrf_token)
post_form f /prefs "theme=dark&lang=de&csrf=$(urlenc "$token")" -H 'Origin: http://evil.example'
status_is 403 "form POST /prefs with a foreign Origin: 403"
post_json f /prefs '{"theme":"dark"}' -H 'Origin: http://evil.example'
status_is 403 "JSON POST /prefs with a foreign Origin: 403"
get_json f /prefs
check "refused posts changed nothing" json_eq '{"theme":"light","lang":"fr"}'

# --- a logged-in user keeps the login
login_json u alice wonderland
post_json u /prefs '{"theme":"dark"}'
status_is 200 "alice sets a theme"
get_json u /session
is "$(json .user.username)" alice "prefs leave the login alone"
is "$(json -c .prefs)" '{"theme":"dark"}' "alice's prefs"
get u /dashboard
like "$BODY" 'value="dark"[^>]* selected' "the dashboard's form shows the chosen theme"

req u PUT /prefs -H 'Content-Type: application/json' --data-binary '{"theme":"x"}'
status_is 405 "PUT /prefs: 405"
like "$(hdr Allow)" '^GET, HEAD, POST$' "Allow: GET, HEAD, POST"
get_json u /prefs
check "PUT changed nothing" json_eq '{"theme":"dark"}'

done_testing
