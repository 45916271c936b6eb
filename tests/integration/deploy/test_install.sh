#!/usr/bin/env bash
# `make install PREFIX= DESTDIR=` and what a user then builds with it: a C
# route and a C++ program from `pkg-config --cflags --libs fcgi-session`,
# against the installed header and library only. The C route answers a
# request as plain CGI; linked with `pkg-config --static` and -static, it
# runs with the shared library removed.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

dest=$T_DIR/dest
prefix=/opt/fcgi-session
make -s -C "$T_ROOT" install BUILD="$T_BUILD" PREFIX="$prefix" DESTDIR="$dest" > "$T_DIR/install.log" 2>&1
is "$?" 0 "make install PREFIX=$prefix DESTDIR=... succeeds"
for f in include/sess.h include/sess_admin.h include/sess_util.h lib/libfcgi-session.a lib/libfcgi-session.so lib/pkgconfig/fcgi-session.pc \
    bin/sessctl lib/fcgi-session/cgi-bin/views.fcgi share/man/man3/fcgi-session.3 \
    share/man/man8/sessctl.8 share/fcgi-session/html/layout.html \
    share/fcgi-session/html/profile.html share/fcgi-session/fcgi-session.conf; do
    check "installed $f" test -e "$dest$prefix/$f"
done
example=$(cat "$dest$prefix/share/fcgi-session/fcgi-session.conf")
like "$example" "(^|
)html_dir = $prefix/share/fcgi-session/html(
|\$)" "the example configuration names the installed pages"
like "$example" "(^|
)secret_file = /etc/fcgi-session/secret(
|\$)" "and the README's secret"
like "$(cat "$dest$prefix/lib/pkgconfig/fcgi-session.pc")" "prefix=$prefix" "the .pc file names the prefix"

# The .pc file says PREFIX; with DESTDIR the files are elsewhere, so point
# pkg-config at them the way a packager's build root would.
pc() {
    PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig pkg-config --define-variable=prefix="$dest$prefix" "$@"
}
flags=$(pc --cflags --libs fcgi-session)
like "$flags" "-lfcgi-session" "pkg-config --libs names the library"

cat > "$T_DIR/hello.c" << 'EOF'
#include <sess.h>

static void
hello(struct sess_request *req)
{
    if (!sess_allow(req, "GET"))
        return;
    sess_send_json(req, 200, json_pack("{s:s}", "hello", "world"));
}

int
main(void)
{
    return sess_run("hello", hello);
}
EOF
# A sanitizer build of the library needs programs built the same way.
san=
[ "${SANITIZE:-}" = 1 ] && san="-fsanitize=address,undefined"
# shellcheck disable=SC2086 # pkg-config's output is a list of flags
cc $san -std=c11 -Wall -Wextra -Werror -o "$T_DIR/hello" "$T_DIR/hello.c" $flags 2> "$T_DIR/cc.log"
is "$?" 0 "a C route builds with cc \$(pkg-config --cflags --libs fcgi-session) $(head -c 300 "$T_DIR/cc.log")"

cat > "$T_DIR/hello.cpp" << 'EOF'
#include <sess.h>
#include <sess_admin.h>
#include <sess_util.h>

int
main()
{
    struct sess_str s = sess_str_c("abc");
    return s.len == 3 && sess_str_eq(s, SESS_STR_LIT("abc")) ? 0 : 1;
}
EOF
# shellcheck disable=SC2086
c++ $san -std=c++11 -Wall -Wextra -pedantic -Werror -o "$T_DIR/hello-cxx" "$T_DIR/hello.cpp" $flags 2> "$T_DIR/cxx.log"
is "$?" 0 "sess.h, sess_admin.h and sess_util.h compile (-pedantic) and link as C++ $(head -c 300 "$T_DIR/cxx.log")"
LD_LIBRARY_PATH=$dest$prefix/lib "$T_DIR/hello-cxx"
is "$?" 0 "the C++ program runs against the installed shared library"

# The C route, as plain CGI, with a configuration of its own.
t_config "$T_DIR/hello.conf" secret_file=secret store=lmdb:sessions "html_dir=$T_ROOT/html"
stack_secret "$T_DIR/secret"
out=$(SESSION_CONFIG=$T_DIR/hello.conf REQUEST_METHOD=GET LD_LIBRARY_PATH=$dest$prefix/lib \
    "$T_DIR/hello" < /dev/null 2>&1)
like "$out" '^Status: 200 OK' "the installed library serves a request as plain CGI"
like "$out" '\{"hello":"world"\}' "with the route's body"

# pkg-config --static is for a static link (-static): the program then
# needs no libfcgi-session.so.0 at run time, whatever the PREFIX. Not with
# the sanitizers, which do not link statically.
if [ -n "$san" ]; then
    skip "a -static link from pkg-config --static --libs" "the sanitizers' runtime is shared"
else
    sflags=$(pc --cflags --static --libs fcgi-session)
    like "$sflags" "-lfcgi-session .*-lfcgi .*-llmdb" "pkg-config --static --libs adds what the static library needs"
    # shellcheck disable=SC2086 # pkg-config's output is a list of flags
    cc -std=c11 -Wall -Wextra -Werror -o "$T_DIR/hello-static" "$T_DIR/hello.c" $sflags -static \
        > "$T_DIR/cc-static.log" 2>&1
    is "$?" 0 "a C route links with cc ... \$(pkg-config --static --libs fcgi-session) -static" ||
        diag "$(cat "$T_DIR/cc-static.log")"
    mv "$dest$prefix/lib/libfcgi-session.so.0" "$T_DIR/libfcgi-session.so.0.away"
    out=$(env -u LD_LIBRARY_PATH "$T_DIR/hello" < /dev/null 2>&1)
    like "$out" "libfcgi-session\.so\.0: cannot open shared object file" \
        "with the shared library gone, the program linked without -static cannot start"
    out=$(env -u LD_LIBRARY_PATH SESSION_CONFIG="$T_DIR/hello.conf" REQUEST_METHOD=GET \
        "$T_DIR/hello-static" < /dev/null 2>&1)
    like "$out" '^Status: 200 OK' "the -static one serves a request as plain CGI without it"
    mv "$T_DIR/libfcgi-session.so.0.away" "$dest$prefix/lib/libfcgi-session.so.0"
fi

# The installed index route, as plain CGI, renders the installed pages.
t_config "$T_DIR/pages.conf" secret_file=secret store=lmdb:sessions \
    "html_dir=$dest$prefix/share/fcgi-session/html"
out=$(SESSION_CONFIG=$T_DIR/pages.conf REQUEST_METHOD=GET REQUEST_URI=/ SCRIPT_NAME=/ \
    "$dest$prefix/lib/fcgi-session/cgi-bin/index.fcgi" < /dev/null 2>&1)
like "$out" '^Status: 200 OK' "the installed index route serves GET / from the installed pages"
like "$out" '<!doctype html>' "with the layout of share/fcgi-session/html"

make -s -C "$T_ROOT" uninstall BUILD="$T_BUILD" PREFIX="$prefix" DESTDIR="$dest" \
    > "$T_DIR/uninstall.log" 2>&1
is "$?" 0 "make uninstall with the same PREFIX and DESTDIR succeeds"
left=$(find "$dest" -mindepth 1 2> /dev/null | head -n 5)
is "$left" "" "make uninstall leaves no installed file behind, nor a directory install made"

done_testing
