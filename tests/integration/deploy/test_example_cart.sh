#!/usr/bin/env bash
# examples/cart as a user builds and serves it (README, "Your own routes:
# the cart example"): `make install` into a temporary PREFIX, the example
# copied out of the tree and built by its own Makefile against the
# installed files only (PKG_CONFIG_PATH, -Wl,-rpath), served by a real
# lighttpd from the example's own lighttpd-cart.conf (one fastcgi.server
# entry, one executable, every path under /cart), and driven with curl: the
# route table and its 404s, adding to the cart, the flash shown once, a form
# login (CSRF) that keeps the cart, "log out everywhere" ending another
# session of the same user and no one else's, logout. Then the same
# executable behind nginx (spawn-fcgi, one `location /cart`), and, built
# without an rpath, as plain CGI with LD_LIBRARY_PATH.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

prefix=$T_DIR/prefix
app=$T_DIR/cart
run=$T_DIR/run

make -s -C "$T_ROOT" install BUILD="$T_BUILD" PREFIX="$prefix" > "$T_DIR/install.log" 2>&1 ||
    bail "make install PREFIX=$prefix failed: $(tail -n 5 "$T_DIR/install.log")"
ok "make install PREFIX=$prefix"

# --- the build: the example's folder alone, the installed library alone
cp -R "$T_ROOT/examples/cart" "$app" || bail "cannot copy examples/cart"
rm -rf "$app/cart.fcgi" "$app/secret" "$app/sessions"
# A sanitizer build of the library needs programs built the same way.
san=
[ "${SANITIZE:-}" = 1 ] && san="-fsanitize=address,undefined"
cflags="-O2 -g -Wall -Wextra -Werror $san"

PKG_CONFIG_LIBDIR=$T_DIR/nowhere make -s -C "$app" CFLAGS="$cflags" > "$T_DIR/build-nopc.log" 2>&1
isnt "$?" 0 "without the .pc file in pkg-config's path the build stops"
# shellcheck disable=SC2016 # the Makefile's words, $PREFIX included
like "$(cat "$T_DIR/build-nopc.log")" 'PKG_CONFIG_PATH=\$PREFIX/lib/pkgconfig' \
    "and says to set PKG_CONFIG_PATH"

PKG_CONFIG_PATH=$prefix/lib/pkgconfig make -s -C "$app" CFLAGS="$cflags" \
    LDFLAGS="-Wl,-rpath,$prefix/lib $san" > "$T_DIR/build.log" 2>&1
is "$?" 0 "the example builds with its own Makefile: PKG_CONFIG_PATH=\$PREFIX/lib/pkgconfig make" ||
    diag "$(cat "$T_DIR/build.log")"
[ -x "$app/cart.fcgi" ] || bail "no cart.fcgi was built"
like "$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags fcgi-session)" "-I$prefix/include" \
    "its headers are the installed ones"
like "$(env -u LD_LIBRARY_PATH ldd "$app/cart.fcgi" 2> /dev/null | grep libfcgi-session)" \
    "=> $prefix/lib/libfcgi-session\.so\.0" "it loads the installed library through its rpath"

# Its configuration as shipped (relative paths: secret, sessions, pages),
# a secret, and two accounts made by the installed sessctl.
stack_secret "$app/secret" || bail "cannot write $app/secret"
for u in alice:wonderland bob:builder; do
    printf '%s\n' "${u#*:}" | "$prefix/bin/sessctl" -c "$app/cart.conf" useradd "${u%%:*}" \
        >> "$T_DIR/sessctl.log" 2>&1 || bail "sessctl useradd ${u%%:*} failed: $(cat "$T_DIR/sessctl.log")"
done
ok "the installed sessctl adds the accounts to the example's store"

# --- lighttpd, from the example's drop-in
mkdir -p "$run/www" "$run/upload"
STACK_ROOT=$T_ROOT
STACK_RUN=$run
STACK_SERVER=lighttpd
STACK_FCGI=lighttpd
STACK_SCHEME=http
STACK_LOG=$T_DIR/stack.log
stack_driver || bail "no driver for lighttpd"
STACK_PROG=$(stack_find_prog lighttpd) || bail "lighttpd is not installed (scripts/deps installs it)"
STACK_CONF=$run/lighttpd.conf
STACK_ERRLOG=$run/lighttpd-error.log
STACK_CMD=("$STACK_PROG" -D -f "$STACK_CONF")
for ((tries = 0; tries < 20; tries++)); do
    STACK_PORT=$(stack_free_port)
    {
        printf 'server.modules += ("mod_fastcgi")\n'
        printf 'server.bind = "%s"\nserver.port = %s\n' "$STACK_BIND" "$STACK_PORT"
        printf 'server.pid-file = "%s/lighttpd.pid"\nserver.errorlog = "%s"\n' "$run" "$STACK_ERRLOG"
        printf 'server.document-root = "%s/www"\nserver.upload-dirs = ("%s/upload")\n' "$run" "$run"
        # The paths of the example's drop-in, and the sanitizers' settings
        # for a SANITIZE=1 build.
        sed -e "s|/srv/cart|$app|g" -e "s|/run/lighttpd|$run|g" \
            -e 's|^\( *\)"bin-environment" *=>|\1"bin-copy-environment" => ("PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"),\n&|' \
            "$app/lighttpd-cart.conf"
    } > "$STACK_CONF"
    "$STACK_PROG" -tt -f "$STACK_CONF" > "$T_DIR/check.log" 2>&1 ||
        bail "lighttpd refuses the configuration: $(cat "$T_DIR/check.log")"
    rc=0
    stack_start 2> "$T_DIR/start.err" || rc=$?
    [ "$rc" -eq 0 ] && break
    [ "$rc" -eq 2 ] && continue
    bail "lighttpd did not start: $(cat "$T_DIR/start.err")"$'\n'"$(tail -n 20 "$STACK_ERRLOG" 2> /dev/null)"
done
[ "$rc" -eq 0 ] || bail "no free port found"
T_STACK_UP=1
T_URL=$STACK_URL
T_ORIGIN=$T_URL

# The example's cookie is cart.sid, not the demo's sid.
cart_sid() {
    [ -f "$T_DIR/jar.$1" ] || return 0
    awk -F '\t' '$6 == "cart.sid" { print $7 }' "$T_DIR/jar.$1" | tail -n 1
}
cart_set_cookie() {
    tr -d '\r' < "$T_DIR/headers" | sed -n 's/^[Ss]et-[Cc]ookie: \(cart\.sid=.*\)/\1/p' | head -n 1
}
flash_count() {
    grep -cE "<p class=\"flash\" role=\"status\"[^>]*>$1<" <<< "$BODY"
}
qty_of() {
    sed -n "s/.*data-item=\"$1\">\([0-9]*\)<.*/\1/p" <<< "$BODY"
}

# --- one executable, several paths
get a /cart
status_is 200 "GET /cart: 200"
like "$(hdr Content-Type)" '^text/html' "an HTML page"
like "$BODY" 'Your cart is empty' "from the example's pages: the cart is empty"
like "$BODY" '<a href="/cart/login">Log in</a>' "in the example's layout"
is "$(cart_set_cookie)" "" "no session yet"
get a '/cart?from=mail'
status_is 200 "GET /cart?from=mail: the query is no part of the path"
get a /cart/login
status_is 200 "GET /cart/login: 200, from the same executable"
like "$BODY" '<form method="post" action="/cart/login">' "the login form"
for path in /cart/ /cart/nope /cart/add/x /cart/Login '/cart/%6cogin'; do
    get a "$path"
    status_is 404 "GET $path: 404 from the route table"
    like "$BODY" 'Error 404.*Not found|Not found.*Error 404' "the example's error page"
done
like "$BODY" 'Back to the cart' "error.html is the example's own"
get_json a /cart/nope
is "$STATUS $BODY" '404 {"msg":"Not found"}' "a JSON client gets its 404 as JSON"
get a /cartx
status_is 404 "GET /cartx: lighttpd's own 404 (the condition of the drop-in)"
get a /cart/add
status_is 405 "GET /cart/add: 405"
is "$(hdr Allow)" POST "Allow: POST"

# --- adding to the cart; the flash shown once
get a /cart
token=$(csrf_token)
like "$token" '^[^ ]{16,}$' "the cart page carries a CSRF token"
post_form a /cart/add "item=pear&qty=2" -H "Origin: $T_ORIGIN"
status_is 403 "POST /cart/add without the token: 403"
post_form a /cart/add "item=pear&qty=2&csrf=$(urlenc "$token")" -H "Origin: $T_ORIGIN"
status_is 303 "POST /cart/add (form): 303"
is "$(hdr Location)" /cart "back to /cart"
like "$(cart_set_cookie)" '^cart\.sid=s%3A[^;]+; Path=/; Expires=[^;]+; Max-Age=1800; HttpOnly; SameSite=Lax$' \
    "the session starts: cart.sid, HttpOnly, SameSite=Lax"
get a /cart
is "$(flash_count 'Added 2 × Pear')" 1 "the cart shows 'Added 2 × Pear' once"
is "$(qty_of pear)" 2 "with 2 pears"
get a /cart
is "$(flash_count 'Added 2 × Pear')" 0 "reloaded: no longer"
is "$(qty_of pear)" 2 "still 2 pears"
post_json a /cart/add '{"item":"fig","qty":3}'
status_is 200 "POST /cart/add (JSON): 200"
check "JSON answers with the cart" json_eq '{"cart":{"pear":2,"fig":3}}'
post_json a /cart/add '{"item":"plum"}'
status_is 400 "an item that is not in the catalogue: 400"
post_json a /cart/add '{"item":"fig","qty":0}'
status_is 400 "a quantity of 0: 400"
post_json a /cart/remove '{"item":"fig"}'
check "POST /cart/remove takes it out" json_eq '{"cart":{"pear":2}}'
get a /cart
is "$(flash_count 'Added 3 × Fig')" 0 "JSON sets no flash"
anon_id=$(cookie_id "$(cart_sid a)")

# --- login: CSRF, a new id, the cart kept
get a /cart/login
token=$(csrf_token)
post_form a /cart/login "username=alice&password=wrong&csrf=$(urlenc "$token")" -H "Origin: $T_ORIGIN"
status_is 403 "a wrong password: 403"
like "$BODY" 'Bad credentials' "the login page says why"
post_form a /cart/login "username=alice&password=wonderland" -H "Origin: $T_ORIGIN"
status_is 403 "a form login without the token: 403"
post_form a /cart/login "username=alice&password=wonderland&csrf=$(urlenc "$token")" \
    -H "Origin: $T_ORIGIN"
status_is 303 "form login: 303"
is "$(hdr Location)" /cart "to /cart"
isnt "$(cookie_id "$(cart_sid a)")" "$anon_id" "a new session id"
get a /cart
is "$(flash_count 'Welcome, alice')" 1 "'Welcome, alice' shown once"
like "$BODY" 'Logged in as alice' "the layout names the user"
is "$(qty_of pear)" 2 "the visitor's cart is kept"
get a /cart
is "$(flash_count 'Welcome, alice')" 0 "and not again"

# A second session of alice's elsewhere, and one of bob's.
post_json b /cart/login '{"username":"alice","password":"wonderland"}'
status_is 200 "a second login of alice (JSON): 200"
get_json b /cart
check "the second session is alice's, with a cart of its own" json_eq '{"cart":{},"user":"alice"}'
post_json c /cart/login '{"username":"bob","password":"builder"}'
get_json c /cart
is "$(json .user)" bob "bob logged in"
b_cookie=$(cart_sid b)

# --- log out everywhere
get a /cart
token=$(csrf_token)
post_form a /cart/logout-everywhere "csrf=$(urlenc "$token")" -H "Origin: $T_ORIGIN"
status_is 303 "POST /cart/logout-everywhere: 303"
like "$(cart_set_cookie)" '^cart\.sid=; .*Max-Age=0' "the cookie expires"
get_json b /cart
is "$(json .user)" null "alice's other session has ended"
get_json - /cart -H "Cookie: cart.sid=$b_cookie"
is "$(json .user)" null "its cookie no longer logs anyone in"
get_json a /cart
check "this browser is logged out, its cart gone" json_eq '{"cart":{},"user":null}'
get_json c /cart
is "$(json .user)" bob "bob's session is not alice's: it stays"
post_json a /cart/logout-everywhere '{}'
status_is 401 "log out everywhere without a login: 401"

# --- logout
post_json c /cart/logout '{}'
check "POST /cart/logout (JSON)" json_eq '{"msg":"Logged out"}'
get_json c /cart
is "$(json .user)" null "bob is logged out"
get d /cart/login
post_form d /cart/login "username=bob&password=builder&csrf=$(urlenc "$(csrf_token)")" \
    -H "Origin: $T_ORIGIN"
get d /cart
post_form d /cart/logout "csrf=$(urlenc "$(csrf_token)")" -H "Origin: $T_ORIGIN"
status_is 303 "POST /cart/logout (form): 303"
like "$(cart_set_cookie)" '^cart\.sid=; .*Max-Age=0' "the cookie expires"
get d /cart
unlike "$BODY" 'Logged in as' "logged out"

stop_stack

# --- nginx: the same executable under spawn-fcgi, one prefix location
# (README's line) with the demo snippet's fastcgi_param lines; nginx in
# one process of the test's own user (master_process off).
mkdir -p "$T_DIR/bin/cgi-bin" "$run/nginx-tmp"
ln -sf "$app/cart.fcgi" "$T_DIR/bin/cgi-bin/cart.fcgi"
STACK_SERVER=nginx
STACK_DRIVER=
stack_driver || bail "no driver for nginx"
STACK_FCGI=spawn-fcgi
STACK_SPAWN_FCGI=$(stack_find_prog spawn-fcgi) || bail "spawn-fcgi is not installed"
STACK_PROG=$(stack_find_prog nginx) || bail "nginx is not installed (scripts/deps installs it)"
STACK_BUILD=$T_DIR/bin
STACK_CONFIG=$app/cart.conf
STACK_ROUTES=(cart)
STACK_PROCS=1
STACK_WRITE_PROCS=1
STACK_CONF=$run/nginx.conf
STACK_ERRLOG=$run/nginx-error.log
STACK_CMD=("$STACK_PROG" -c "$STACK_CONF" -p "$run/" -e "$STACK_ERRLOG")
for ((tries = 0; tries < 20; tries++)); do
    STACK_PORT=$(stack_free_port)
    {
        printf 'daemon off;\nmaster_process off;\npid %s/nginx.pid;\n' "$run"
        printf 'error_log %s warn;\nevents { worker_connections 64; }\n' "$STACK_ERRLOG"
        printf 'http {\n  access_log off;\n'
        for d in client_body fastcgi proxy uwsgi scgi; do
            printf '  %s_temp_path %s/nginx-tmp/%s;\n' "$d" "$run" "$d"
        done
        printf '  server {\n    listen %s:%s;\n    root %s/www;\n' "$STACK_BIND" "$STACK_PORT" "$run"
        printf '    location /cart {\n      fastcgi_pass unix:%s/cart.sock;\n' "$run"
        sed -n 's/^\(fastcgi_param .*\)/      \1/p' "$T_ROOT/nginx-conf/fcgi-session.conf.in"
        printf '    }\n  }\n}\n'
    } > "$STACK_CONF"
    rc=0
    stack_start 2> "$T_DIR/start.err" || rc=$?
    [ "$rc" -eq 0 ] && break
    [ "$rc" -eq 2 ] && continue
    bail "nginx did not start: $(cat "$T_DIR/start.err")"
done
[ "$rc" -eq 0 ] || bail "no free port found"
T_STACK_UP=1
T_URL=$STACK_URL
T_ORIGIN=$T_URL
get n /cart
status_is 200 "nginx, location /cart: GET /cart: 200"
like "$BODY" 'Your cart is empty' "the cart page"
get n /cart/login
status_is 200 "GET /cart/login: 200, from the same executable"
for path in /cart/nope /cartx; do
    get n "$path"
    status_is 404 "GET $path: 404 from the route table (the location is a prefix)"
    like "$BODY" 'Back to the cart' "the example's error page"
done
get n /other
status_is 404 "GET /other: nginx's own 404"
post_json n /cart/login '{"username":"bob","password":"builder"}'
status_is 200 "POST /cart/login (JSON): 200"
post_json n /cart/add '{"item":"pear","qty":1}'
check "POST /cart/add keeps the cart in bob's session" json_eq '{"cart":{"pear":1}}'
get_json n /cart
is "$(json .user)" bob "GET /cart: bob, through the session's cookie"
stop_stack

# --- plain CGI, built without an rpath: LD_LIBRARY_PATH finds the library
make -s -C "$app" clean > /dev/null 2>&1
PKG_CONFIG_PATH=$prefix/lib/pkgconfig make -s -C "$app" CFLAGS="$cflags" LDFLAGS="$san" \
    > "$T_DIR/build-cgi.log" 2>&1
is "$?" 0 "built again without an rpath" || diag "$(cat "$T_DIR/build-cgi.log")"
cgi() {
    env -i PATH="$PATH" LD_LIBRARY_PATH="$prefix/lib" SESSION_CONFIG="$app/cart.conf" \
        GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 HTTP_HOST=localhost \
        ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
        ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} "$@" "$app/cart.fcgi" 2> "$T_DIR/cgi.err"
}
out=$(cgi REQUEST_METHOD=GET REQUEST_URI=/cart/login SCRIPT_NAME=/cart PATH_INFO=/login < /dev/null)
like "$out" $'^Status: 200 OK\r' "CGI: GET /cart/login: 200 $(head -c 300 "$T_DIR/cgi.err")"
like "$out" 'action="/cart/login"' "CGI: the login form"
out=$(cgi REQUEST_METHOD=GET SCRIPT_NAME=/cart PATH_INFO=/login < /dev/null)
like "$out" $'^Status: 200 OK\r' "CGI without REQUEST_URI: SCRIPT_NAME and PATH_INFO make the path"
body='{"username":"alice","password":"wonderland"}'
out=$(printf '%s' "$body" | cgi REQUEST_METHOD=POST REQUEST_URI=/cart/login \
    CONTENT_TYPE=application/json HTTP_ACCEPT=application/json CONTENT_LENGTH=${#body})
like "$out" $'^Status: 200 OK\r' "CGI: POST /cart/login (JSON): 200"
like "$out" $'\r\nSet-Cookie: cart\\.sid=s%3A' "CGI: with the session's cookie"
like "$out" '\{"cart":\{\}\}' "CGI: and the cart"
out=$(cgi REQUEST_METHOD=GET REQUEST_URI=/cart/none HTTP_ACCEPT=application/json < /dev/null)
like "$out" $'^Status: 404 Not Found\r' "CGI: a path that is no route: 404"

done_testing
