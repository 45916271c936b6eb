#!/usr/bin/env bash
# GET /views behind a real lighttpd, the executables under spawn-fcgi: the
# cookie's format and attributes (express-session's, plus Max-Age), the
# signature checked against HMAC-SHA256 computed with openssl, counting,
# isolation of clients, forged/unknown/garbage cookies, secret rotation
# across a restart.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack --fcgi=spawn-fcgi

# Set-Cookie: sid=s%3A<id>.<sig>; Path=/; Expires=<IMF-fixdate>;
# Max-Age=1800; HttpOnly; SameSite=Lax. The signature is standard base64,
# so encodeURIComponent may have turned + and / into %2B and %2F.
B64URL='[A-Za-z0-9_-]'
SIG='([A-Za-z0-9]|%2B|%2F)'
IMF='(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT'
COOKIE_RE="^sid=s%3A($B64URL{43})\.($SIG{43,})(; Path=/; Expires=($IMF); Max-Age=1800; HttpOnly; SameSite=Lax)$"

# --- a first visit
get a /views
status_is 200 "first visit: 200"
like "$(hdr Content-Type)" '^application/json' "first visit: JSON"
check "first visit: body is {\"views\":1}" json_eq '{"views":1}'
is "$(hdr_count Set-Cookie)" 1 "first visit: one Set-Cookie"
cookie=$(set_cookie)
like "$cookie" "$COOKIE_RE" "first visit: sid cookie with Path, Expires, Max-Age=1800, HttpOnly, SameSite=Lax, in that order"
unlike "$cookie" '[Ss]ecure' "no Secure over plain HTTP (cookie_secure = auto)"
no_store_is_set "Cache-Control: no-store with the cookie"

value=$(set_cookie_value)
decoded=$(urldec "$value")
id=$(cookie_id "$value")
sig=${decoded##*.}
like "$decoded" "^s:$B64URL{43}\.[A-Za-z0-9+/]{43}$" "decoded value is s:ID.SIG, 43 + 43 characters"
is "$sig" "$(hmac_sig "$id")" "signature = base64(HMAC-SHA256(secret, id)) without '=', as cookie-signature"
is "$(sign_id "$id")" "$value" "value is encodeURIComponent of the signed id"

# Expires is the same instant as Max-Age, about now + 1800 s.
expires=$(sed -E 's/.*Expires=([^;]*);.*/\1/' <<< "$cookie")
expires_s=$(date -d "$expires" +%s 2> /dev/null || echo 0)
delta=$((expires_s - $(date +%s)))
check "Expires is now + 1800 s (got now + $delta s)" test "$delta" -ge 1795 -a "$delta" -le 1801

# --- counting with the cookie
get a /views
status_is 200 "second visit: 200"
check "second visit counts 2" json_eq '{"views":2}'
is "$(cookie_id "$(set_cookie_value)")" "$id" "second visit: the cookie is renewed with the same id"
get a /views
check "third visit counts 3" json_eq '{"views":3}'
no_store_is_set "Cache-Control: no-store on a session response"

# --- two clients do not share a session
get b /views
check "another client starts at 1" json_eq '{"views":1}'
id_b=$(cookie_id "$(set_cookie_value)")
isnt "$id_b" "$id" "another client gets another id"
get a /views
check "the first client goes on at 4" json_eq '{"views":4}'
get b /views
check "the second client goes on at 2" json_eq '{"views":2}'

# --- a cookie sent by hand, as curl -H would
get - /views -H "Cookie: sid=$value"
check "the cookie alone carries the session (5)" json_eq '{"views":5}'
get - /views -H "Cookie: other=1; sid=$value; more=2"
check "among other cookies (6)" json_eq '{"views":6}'
get - /views -H "Cookie: sid=\"$value\""
check "in double quotes (7)" json_eq '{"views":7}'
get - /views -H "Cookie: sid=$(urldec "$value")"
check "not percent-encoded (s:ID.SIG) (8)" json_eq '{"views":8}'

# --- a forged signature: the right id, a signature made with another secret
forged=$(sign_id "$id" "not-the-secret-of-this-server-0123456789")
get - /views -H "Cookie: sid=$forged"
status_is 200 "forged signature: 200"
check "forged signature: a new session (views 1)" json_eq '{"views":1}'
new_id=$(cookie_id "$(set_cookie_value)")
like "$new_id" "^$B64URL{43}$" "forged signature: a new id is issued"
isnt "$new_id" "$id" "forged signature: never the id the client sent"
get a /views
check "the real session is untouched (9)" json_eq '{"views":9}'

# --- a well-signed id that the store does not know
unknown=$(head -c 32 /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '=')
get - /views -H "Cookie: sid=$(sign_id "$unknown")"
status_is 200 "unknown id: 200"
check "unknown id: a new session (views 1)" json_eq '{"views":1}'
new_id=$(cookie_id "$(set_cookie_value)")
isnt "$new_id" "$unknown" "unknown id: a new id, not the client's (no fixation)"
like "$new_id" "^$B64URL{43}$" "unknown id: the new id has 43 base64url characters"

# An Express id (24 bytes, 32 characters) signed right is accepted as an
# id, but unknown here: also a new session.
get - /views -H "Cookie: sid=$(sign_id "nc93lGy3AL5AfydR9DG4phvdX6VSIcfB")"
check "unknown 32-character id: a new session" json_eq '{"views":1}'

# --- malformed cookies: a new session or a 4xx, never a 5xx
# label|Cookie header
garbage=(
    "unsigned|sid=$id"
    "no signature|sid=s%3A$id"
    "empty signature|sid=s%3A$id."
    "empty id|sid=s%3A.$(hmac_sig '')"
    "truncated signature|sid=s%3A${id}.${sig:0:42}"
    "signature with a tail|sid=s%3A${id}.${sig}x"
    "a path as id, signed|sid=s%3A../../etc.$(hmac_sig ../../etc)"
    "bad percent escapes|sid=%zz%"
    "NUL in the value|sid=s%3A$id%00.$sig"
    "empty value|sid="
    "no value|sid"
    "only separators|;;;;"
    "invalid UTF-8|sid=$(printf '\xff\xfe\xfd')"
    "control characters|sid=$(printf 's%%3A\x01\x02.\x7f')"
)
for g in "${garbage[@]}"; do
    label=${g%%|*}
    get - /views -H "Cookie: ${g#*|}"
    if [ "$STATUS" = 200 ]; then
        if json_eq '{"views":1}' && [ "$(cookie_id "$(set_cookie_value)")" != "$id" ]; then
            ok "malformed cookie ($label): a new session"
        else
            not_ok "malformed cookie ($label): a new session"
            t_last_response
        fi
    else
        like "$STATUS" '^4[0-9][0-9]$' "malformed cookie ($label): a 4xx"
    fi
done

big=$(head -c 6144 /dev/urandom | base64 -w 0 | head -c 8192)
many=$(for i in $(seq 1 100); do printf 'sid=s%%3Ax%d.y; ' "$i"; done)
for c in "sid=s%3A$big.$sig" "sid=$big" "${many}sid=$value"; do
    get - /views -H "Cookie: $c"
    if [ "$STATUS" = 200 ]; then
        check "oversized cookie (${#c} bytes): a new session" json_eq '{"views":1}'
    else
        like "$STATUS" '^4[0-9][0-9]$' "oversized cookie (${#c} bytes): a 4xx"
    fi
done

# The first of repeated names wins, as in express-session: a forged first
# one hides a good second one.
get - /views -H "Cookie: sid=$forged; sid=$value"
check "repeated sid, the first forged: a new session" json_eq '{"views":1}'
get - /views -H "Cookie: sid=$value; sid=$forged"
check "repeated sid, the first good: the session (10)" json_eq '{"views":10}'

# --- methods
req - HEAD /views
status_is 200 "HEAD /views: 200"
req a PUT /views
status_is 405 "PUT /views: 405"
like "$(hdr Allow)" '^GET, HEAD$' "405 names the allowed methods"
req a DELETE /views
status_is 405 "DELETE /views: 405"
req a POST /views -H 'Content-Type: application/json' --data-binary '{}'
status_is 405 "POST /views: 405"
get a /views
check "wrong methods changed nothing (11)" json_eq '{"views":11}'

# --- the query string is not part of the route
get a '/views?x=1'
check "GET /views?x=1 is /views (12)" json_eq '{"views":12}'
get a /views/x
status_is 404 "GET /views/x: 404 from the web server"
get a /viewsx
status_is 404 "GET /viewsx: 404 from the web server"

# --- restart with a new first secret: sessions survive (LMDB), cookies
# signed with the old secret still verify, new ones are signed with the new.
stop_stack
old_secret=$T_SECRET
{
    head -c 32 /dev/urandom | base64 -w 0
    echo
    cat "$T_DIR/secret"
} > "$T_DIR/secret.new" && mv "$T_DIR/secret.new" "$T_DIR/secret"
chmod 600 "$T_DIR/secret"
start_stack --fcgi=spawn-fcgi
isnt "$T_SECRET" "$old_secret" "rotation: a new first secret"
get a /views
status_is 200 "after restart and rotation: 200"
check "after restart and rotation: the session goes on (13)" json_eq '{"views":13}'
value=$(set_cookie_value)
is "$(cookie_id "$value")" "$id" "rotation: the same id"
is "$(urldec "$value" | sed 's/.*\.//')" "$(hmac_sig "$id" "$T_SECRET")" "rotation: renewed cookie signed with the new first secret"

done_testing
