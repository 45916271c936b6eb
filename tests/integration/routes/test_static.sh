#!/usr/bin/env bash
# The pages' stylesheet, served by the web server itself from html_dir's
# static/ folder at /static/: text/css, revalidated on every use (ETag or
# Last-Modified, Cache-Control: no-cache, 304 while unchanged), an edit
# seen on the next request; nothing else of html/ served; pages link it
# and inline no style, and their CSP allows no inline style. Runs on a
# copy of html/, which it edits. test_servers.sh runs it behind every
# server.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CSS=/static/style.css
cp -R "$T_ROOT/html" "$T_DIR/html" || bail "cannot copy html/"
FILE=$T_DIR/html/static/style.css
start_stack "html_dir=$T_DIR/html"

# --- the file, as it is on disk
get - "$CSS"
status_is 200 "GET $CSS: 200"
like "$(hdr Content-Type)" '^text/css(;|$)' "GET $CSS: Content-Type text/css"
check "GET $CSS: the file's bytes" cmp -s "$T_DIR/body" "$FILE"
is "$(hdr Cache-Control)" no-cache "GET $CSS: Cache-Control: no-cache (used after a check only)"
is "$(hdr_count Cache-Control)" 1 "GET $CSS: one Cache-Control"
is "$(hdr X-Content-Type-Options)" nosniff "GET $CSS: X-Content-Type-Options: nosniff"
no_set_cookie "GET $CSS: no Set-Cookie"
etag=$(hdr ETag)
modified=$(hdr Last-Modified)
check "GET $CSS: a validator (ETag or Last-Modified)" test -n "$etag$modified"

# --- revalidation: 304 without a body while the file is unchanged
if [ -n "$etag" ]; then
    get - "$CSS" -H "If-None-Match: $etag"
    status_is 304 "If-None-Match with its ETag: 304"
    is "$BODY" "" "304: no body"
else
    skip "If-None-Match with its ETag: 304" "no ETag"
    skip "304: no body" "no ETag"
fi
if [ -n "$modified" ]; then
    get - "$CSS" -H "If-Modified-Since: $modified"
    status_is 304 "If-Modified-Since with its Last-Modified: 304"
else
    skip "If-Modified-Since with its Last-Modified: 304" "no Last-Modified"
fi
req - HEAD "$CSS"
status_is 200 "HEAD $CSS: 200"

# --- an edit shows on the next request: a rule added (the size changes,
# so every server's ETag does, even within the second), then asked for
# with the old validators, as the browser does.
printf '.edited-by-the-test { color: red; }\n' >> "$FILE"
args=()
[ -n "$etag" ] && args+=(-H "If-None-Match: $etag")
[ -n "$modified" ] && [ -z "$etag" ] && args+=(-H "If-Modified-Since: $modified")
get - "$CSS" "${args[@]}"
status_is 200 "after an edit, the old validator: 200"
check "after an edit: the edited file" cmp -s "$T_DIR/body" "$FILE"
isnt "$(hdr ETag)$(hdr Last-Modified)" "$etag$modified" "after an edit: a new validator"

# --- nothing else of html/ is served, and no listing
for path in /static/layout.html /static/../layout.html /static/%2e%2e/layout.html /layout.html \
    /style.css /html/static/style.css /static /static/nothing.css; do
    get - "$path" --path-as-is
    like "$STATUS" '^40[04]$' "GET $path: 404 (or 400)"
    unlike "$BODY" '\{\{' "GET $path: no template"
done
get - /static/
like "$STATUS" '^40[34]$' "GET /static/: no listing (403 or 404)"

# --- the pages link it, inline no style, and their CSP allows none
for path in / /login /profile; do
    get - "$path"
    status_is 200 "GET $path: 200"
    like "$BODY" '<link rel="stylesheet" href="/static/style.css">' "GET $path: links $CSS"
    unlike "$BODY" '<style|[[:space:]]style=' "GET $path: no <style> and no style attribute"
    csp=$(hdr Content-Security-Policy)
    like "$csp" "(^|; )style-src 'self'(;|$)" "GET $path: CSP style-src 'self'"
    unlike "$csp" "unsafe-inline" "GET $path: CSP without 'unsafe-inline'"
    is "$(hdr_count Cache-Control)" 1 "GET $path: one Cache-Control (none added by the static rule)"
done
# An error page has the same frame.
get - /dashboard -H 'Accept: text/html'
status_is 401 "GET /dashboard without a login: 401"
like "$BODY" '<link rel="stylesheet" href="/static/style.css">' "the error page links $CSS"
unlike "$(hdr Content-Security-Policy)" "unsafe-inline" "the error page's CSP: no 'unsafe-inline'"

# The page got smaller by the stylesheet it no longer carries.
get - /profile
check "GET /profile: under 2 KB ($(printf '%s' "$BODY" | wc -c) bytes)" \
    test "$(printf '%s' "$BODY" | wc -c)" -lt 2048

done_testing
