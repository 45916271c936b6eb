#!/usr/bin/env bash
# The bad-input rows of the contract, across routes: bodies too large (413,
# also when only declared), unsupported types (415), invalid JSON, invalid
# UTF-8, non-object bodies, deep nesting (400), wrong methods (405 with
# Allow). Each answer is a 4xx with a short message, in JSON for JSON
# clients, and changes nothing stored; nothing is ever a 5xx.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

# A client with a session and prefs, to see that refusals change nothing.
post_json a /prefs '{"theme":"dark","lang":"fr"}'
status_is 200 "setup: prefs stored"
unchanged() {
    get_json a /prefs
    check "$1: nothing stored" json_eq '{"theme":"dark","lang":"fr"}'
}
# refused STATUS DESC: the status, and a JSON message for JSON clients.
refused() {
    status_is "$1" "$2: $1"
    like "$(json .msg)" '^.{1,200}$' "$2: a short message"
    no_set_cookie "$2: no Set-Cookie"
}

# --- 413: past max_body (16 KiB), decided from Content-Length
pad=$(head -c 17408 /dev/zero | tr '\0' x)
post_json a /prefs "{\"theme\":\"dark\",\"pad\":\"$pad\"}"
refused 413 "a 17 KiB JSON body"
get a /prefs
token=$(csrf_token)
post_form a /prefs "theme=light&pad=$pad&csrf=$(urlenc "$token")" -H 'Accept: application/json'
refused 413 "a 17 KiB form body"
post_json a /login "{\"username\":\"alice\",\"password\":\"$pad\"}"
refused 413 "a 17 KiB login"
big=$(head -c 1048576 /dev/zero | tr '\0' x)
req a POST /prefs -H 'Content-Type: application/json' -H 'Accept: application/json' \
    --data-binary @- <<< "{\"pad\":\"$big\"}"
refused 413 "a 1 MiB body"
# A declared 10^12 bytes with nothing behind it: answered at once, from the
# header alone (by lighttpd or the application).
req a POST /prefs -H 'Content-Type: application/json' -H 'Accept: application/json' \
    -H 'Content-Length: 1000000000000' --data-binary '{}' --max-time 5
status_is 413 "Content-Length: 10^12: 413"
check "Content-Length: 10^12: answered at once (${T_TIME} s)" \
    awk -v t="$T_TIME" 'BEGIN { exit !(t < 3) }'
unchanged "after the 413s"
# A body that never arrives in full is lighttpd's to wait for (it buffers
# bodies, so a slow client cannot hold an executable): the route goes on
# serving others meanwhile.
curl -s -o /dev/null --max-time 30 -H 'Content-Type: application/json' -H 'Content-Length: 8000' \
    --data-binary '{}' "$T_URL/login" &
stalled=$!
sleep 0.3
login_json s alice wonderland
status_is 200 "a stalled upload to /login holds nobody else's login"
kill "$stalled" 2> /dev/null
wait "$stalled" 2> /dev/null
# exactly max_body is allowed
fill=$(head -c $((16384 - 24)) /dev/zero | tr '\0' z)
body="{\"lang\":\"fr\",\"x\":\"$fill\"}"
post_json a /prefs "$body"
status_is 200 "a body of exactly max_body (${#body} bytes): 200"

# --- 415: only JSON and forms
req a POST /prefs -H 'Content-Type: text/plain' -H 'Accept: application/json' --data-binary 'theme=dark'
refused 415 "text/plain"
req a POST /prefs -H 'Accept: application/json' -H 'Content-Type:' --data-binary '{"theme":"x"}'
refused 415 "no Content-Type"
req a POST /login -H 'Content-Type: multipart/form-data; boundary=x' -H 'Accept: application/json' \
    --data-binary $'--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--x--\r\n'
refused 415 "multipart/form-data"
req a POST /prefs -H 'Content-Type: application/xml' -H 'Accept: application/json' --data-binary '<theme/>'
refused 415 "application/xml"
req a POST /prefs -H 'Content-Type: application/json; charset=utf-8' -H 'Accept: application/json' \
    --data-binary '{"lang":"fr"}'
status_is 200 "application/json; charset=utf-8 is JSON"
unchanged "after the 415s"

# --- 400: invalid JSON, not an object
for bad in '{"theme":' '{"theme":"dark",}' "{'theme':'dark'}" '{"theme":"dark"} x' 'nul' '' \
    '[]' '["theme","dark"]' '"dark"' '123' 'null' 'true' '{"theme":"\ud800"}'; do
    post_json a /prefs "$bad"
    refused 400 "JSON body '$bad'"
done
deep=$(printf '%.0s[' $(seq 1 5000))$(printf '%.0s]' $(seq 1 5000))
post_json a /prefs "{\"theme\":$deep}"
refused 400 "JSON nested 5000 deep"
deep=$(printf '%.0s{"":' $(seq 1 3000))1$(printf '%.0s}' $(seq 1 3000))
post_json a /prefs "$deep"
refused 400 "JSON objects nested 3000 deep (under max_body)"
unchanged "after the invalid JSON"

# --- 400: invalid UTF-8, in JSON and in forms
for bytes in '\xff' '\xc0\xaf' '\xed\xa0\x80' '\xf4\x90\x80\x80' '\xe2\x82'; do
    post_json a /prefs "$(printf '{"theme":"a%bb"}' "$bytes")"
    refused 400 "JSON with invalid UTF-8 ($bytes)"
done
get a /prefs
token=$(csrf_token)
for esc in %FF %C0%AF %ED%A0%80 %E2%82; do
    post_form a /prefs "theme=a${esc}b&csrf=$(urlenc "$token")" -H 'Accept: application/json'
    refused 400 "form with invalid UTF-8 ($esc)"
done
post_form a /prefs "theme=%zz&csrf=$(urlenc "$token")" -H 'Accept: application/json'
like "$STATUS" '^400$' "form with a bad percent escape: 400"
unchanged "after the invalid UTF-8"

# Browsers get the same refusals as pages.
post_form a /prefs "theme=a%FFb&csrf=$(urlenc "$token")"
status_is 400 "a form with invalid UTF-8, for a browser: 400"
like "$(hdr Content-Type)" '^text/html' "for a browser: an HTML page"
req a POST /prefs -H 'Content-Type: text/plain' --data-binary 'x'
status_is 415 "text/plain, for a browser: 415"
like "$(hdr Content-Type)" '^text/html' "for a browser: an HTML page"

# --- odd form bodies: fields without "=", empty names, only separators
for body in 'abcd' 'theme=dark&lang' '=x' '&&&' 'a&b&c' '%41%42' '=' 'csrf' \
    "$(head -c 3000 /dev/zero | tr '\0' k)"; do
    post_form a /prefs "$body" -H 'Accept: application/json'
    like "$STATUS" '^4[0-9][0-9]$' "form body '${body:0:20}': a 4xx"
    post_form - /login "$body" -H 'Accept: application/json'
    like "$STATUS" '^4[0-9][0-9]$' "form login body '${body:0:20}': a 4xx"
done
unchanged "after the odd form bodies"

# --- many form fields
fields=$(for i in $(seq 1 500); do printf 'f%d=1&' "$i"; done)
post_form a /prefs "${fields}csrf=$(urlenc "$token")" -H 'Accept: application/json'
like "$STATUS" '^4[0-9][0-9]$' "a form with 500 fields: a 4xx"

# --- 405 with Allow, on every route
while read -r method path allow; do
    req a "$method" "$path" -H 'Accept: application/json' -H 'Content-Type: application/json' \
        --data-binary '{}'
    status_is 405 "$method $path: 405"
    is "$(hdr Allow)" "${allow//_/ }" "$method $path: Allow: ${allow//_/ }"
done << 'EOF'
PUT / GET,_HEAD
DELETE /login GET,_HEAD,_POST
PATCH /logout GET,_HEAD,_POST
POST /profile GET,_HEAD
POST /dashboard GET,_HEAD
POST /session GET,_HEAD
PUT /views GET,_HEAD
DELETE /prefs GET,_HEAD,_POST
OPTIONS /prefs GET,_HEAD,_POST
EOF
unchanged "after the 405s"

# --- headers that must not matter
get a /views -H 'Proxy: http://evil.example:1' -H 'Session: x'
status_is 200 "Proxy and Session request headers are ignored"
get a /views -H 'X-Forwarded-Proto: https'
unlike "$(set_cookie)" '[Ss]ecure' "X-Forwarded-Proto is ignored without trust_proxy"
get a /views -H "Accept: $(head -c 4000 /dev/zero | tr '\0' a)"
status_is 200 "a 4000-byte Accept header: 200"

done_testing
