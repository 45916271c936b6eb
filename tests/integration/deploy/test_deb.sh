#!/usr/bin/env bash
# parallel: no (may apt-get install, failing while another holds dpkg's lock; a minute of compiling)
# sanitizer: same
# `make deb`: the Debian packages of debian/, built with dpkg-buildpackage
# (about a minute, most of it the compiler), checked by lintian (any E: tag
# fails), their Depends computed from the libraries' shlibs, then unpacked
# with dpkg-deb -x into a directory of their own and used from there only:
# a C program built with the packaged pkg-config file, header and library
# (shared, then static) signs and verifies a cookie, and the packaged
# routes and sessctl run with the packaged example configuration and pages.
# Skips when dpkg-buildpackage (dpkg-dev, debhelper) cannot be installed.
# timeout: 300
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

skip_all() {
    skip "the Debian packages" "$1"
    printf '1..%d\n' "$T_N"
    exit 0
}

# The packaging tools, installed as make installs its build's packages.
missing=()
command -v dpkg-buildpackage > /dev/null || missing+=(dpkg-dev)
command -v dh > /dev/null || missing+=(debhelper)
command -v lintian > /dev/null || missing+=(lintian)
if [ ${#missing[@]} -gt 0 ]; then
    "$T_ROOT/scripts/deps" "${missing[@]}" > "$T_DIR/deps.log" 2>&1
fi
if ! command -v dpkg-buildpackage > /dev/null || ! command -v dh > /dev/null; then
    skip_all "dpkg-buildpackage and debhelper cannot be installed: $(tail -n 1 "$T_DIR/deps.log")"
fi

out=$T_BUILD/deb-out
start=$SECONDS
make -C "$T_ROOT" deb BUILD="$T_BUILD" > "$T_DIR/deb.log" 2>&1
rc=$?
is "$rc" 0 "make deb succeeds ($((SECONDS - start)) s)" || diag "$(tail -n 30 "$T_DIR/deb.log")"

declare -A deb=()
for p in libfcgi-session0 libfcgi-session-dev fcgi-session; do
    f=$(compgen -G "$out/${p}_*.deb" | head -n 1)
    deb[$p]=$f
    check "$p's package is in ${out#"$T_ROOT"/}" test -f "$f" || bail "make deb made no $p package"
done
[ -z "$(ls -A "$T_BUILD/deb-tmp" 2> /dev/null)" ]
is "$?" 0 "make deb leaves no copy of the tree behind"

# ---------------------------------------------------------------- lintian

if command -v lintian > /dev/null; then
    lintian "$out"/*.deb > "$T_DIR/lintian.log" 2> "$T_DIR/lintian.err"
    errors=$(grep '^E:' "$T_DIR/lintian.log")
    is "$errors" "" "lintian reports no error on the packages"
    warnings=$(grep '^W:' "$T_DIR/lintian.log")
    [ -z "$warnings" ] || diag "lintian's warnings:"$'\n'"$warnings"
else
    skip "lintian reports no error on the packages" "lintian cannot be installed"
fi

# ---------------------------------------------------------------- control

field() { dpkg-deb -f "${deb[$1]}" "$2"; }
version=$(field libfcgi-session0 Version)
lib_depends=$(field libfcgi-session0 Depends)
for d in libc6 libfcgi0 liblmdb0 libsodium libjansson libhiredis; do
    like "$lib_depends" "(^|, )${d}[^,]* \(>= [^)]+\)" "libfcgi-session0 Depends on $d, from its shlibs"
done
like "$(field libfcgi-session-dev Depends)" "(^|, )libfcgi-session0 \(= $version\)" \
    "libfcgi-session-dev Depends on libfcgi-session0 (= $version)"
for d in libjansson-dev libsodium-dev libhiredis-dev; do
    like "$(field libfcgi-session-dev Depends)" "(^|, )$d(,|$)" \
        "libfcgi-session-dev Depends on $d (the .pc file's Requires)"
done
like "$(field fcgi-session Depends)" "(^|, )libc6 \(>= [^)]+\)" "fcgi-session Depends on libc6, from shlibs"
like "$(field libfcgi-session0 Section)" "^libs$" "libfcgi-session0 is in section libs"
like "$(field libfcgi-session-dev Section)" "^libdevel$" "libfcgi-session-dev is in section libdevel"

ctrl=$(dpkg-deb --ctrl-tarfile "${deb[libfcgi-session0]}" | tar -t)
like "$ctrl" "shlibs" "libfcgi-session0 has a shlibs file"
like "$ctrl" "symbols" "libfcgi-session0 has a symbols file"
like "$(dpkg-deb -I "${deb[libfcgi-session0]}" shlibs)" "^libfcgi-session 0 libfcgi-session0 \(>= " \
    "its shlibs names libfcgi-session.so.0's package with a version"
like "$(dpkg-deb -I "${deb[libfcgi-session0]}" symbols)" "sess_sign@Base" "its symbols list sess_sign"

# ---------------------------------------------------------------- contents

contents() { dpkg-deb -c "${deb[$1]}" | awk '{ print $6 }' | sed 's|^\./|/|'; }
has() {
    local p=$1 f
    shift
    for f in "$@"; do
        grep -qxF "$f" <<< "$(contents "$p")"
        is "$?" 0 "$p holds $f"
    done
}
has libfcgi-session0 /usr/lib/libfcgi-session.so.0
has libfcgi-session-dev /usr/include/sess.h /usr/lib/libfcgi-session.a /usr/lib/libfcgi-session.so \
    /usr/lib/pkgconfig/fcgi-session.pc /usr/share/man/man3/fcgi-session.3.gz
has fcgi-session /usr/bin/sessctl /usr/share/man/man8/sessctl.8.gz \
    /usr/share/fcgi-session/html/layout.html /usr/share/fcgi-session/html/static/style.css \
    /lib/systemd/system/fcgi-session@.service \
    /lib/systemd/system/fcgi-session@.socket /usr/share/doc/fcgi-session/examples/fcgi-session.conf \
    /usr/share/doc/fcgi-session/examples/apache2/fcgi-session-proxy-fcgi.conf \
    /usr/share/doc/fcgi-session/examples/nginx/fcgi-session.conf.in \
    /usr/share/doc/fcgi-session/examples/lighttpd/lighttpd-spawn-fcgi.conf.in
all_files=$(for p in "${!deb[@]}"; do contents "$p" | grep -v '/$'; done | sort)
is "$(uniq -d <<< "$all_files")" "" "no file is in two packages"
unlike "$all_files" "made-dirs|/usr/local/" "no make install bookkeeping, nothing under /usr/local"
is "$(contents libfcgi-session0 | grep '^/usr/lib/.*[^/]$')" /usr/lib/libfcgi-session.so.0 \
    "libfcgi-session0 holds the shared library only"
unlike "$(contents libfcgi-session0)" "\.so$|\.a$|\.h$" "no development file in libfcgi-session0"

# ---------------------------------------------------------------- unpacked

root=$T_DIR/root
for p in "${!deb[@]}"; do
    dpkg-deb -x "${deb[$p]}" "$root" || not_ok "dpkg-deb -x $p"
done
for r in "${STACK_ROUTES[@]}"; do
    [ -x "$root/usr/lib/fcgi-session/cgi-bin/$r.fcgi" ] || missing_route="${missing_route:-} $r"
done
is "${missing_route:-}" "" "every route is in /usr/lib/fcgi-session/cgi-bin"
like "$(cat "$root/usr/share/doc/fcgi-session/examples/apache2/fcgi-session-proxy-fcgi.conf")" \
    $'\n    Define FCGI_SESSION_STATIC /usr/share/fcgi-session/html/static\n' \
    "the Apache drop-in serves the packaged stylesheet by default"
like "$(cat "$root/lib/systemd/system/fcgi-session@.service")" \
    $'(^|\n)ExecStart=/usr/lib/fcgi-session/cgi-bin/%i.fcgi\n' "the systemd unit starts the packaged routes"

# pkg-config finds the packaged .pc file, and its paths, under the root.
pc() {
    PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$root/usr/lib/pkgconfig pkg-config "$@"
}
flags=$(pc --cflags --libs fcgi-session)
like "$flags" "-I$root/usr/include( |$)" "pkg-config --cflags names the unpacked headers"
like "$flags" "-L$root/usr/lib -lfcgi-session( |$)" "pkg-config --libs names the unpacked library"

cat > "$T_DIR/sign.c" << 'EOF'
/* A new session id, signed and verified as express-session's cookie. */
#include <sess_util.h>
#include <stdio.h>

int
main(int argc, char **argv)
{
    struct sess_secrets secrets = {0};
    char id[SESS_ID_LEN + 1], value[SESS_ID_LEN + SESS_SIG_LEN + 4];
    size_t len;
    struct sess_str back;
    int rc = 0;

    if (argc != 2 || sess_secrets_add(&secrets, sess_str_c(argv[1])) != SESS_OK)
        return 2;
    sess_id_new(id);
    if (!sess_id_is_valid(sess_str_c(id)))
        rc = 3;
    else if (sess_sign(&secrets, sess_str_c(id), value, sizeof value, &len) != SESS_OK)
        rc = 4;
    else if (sess_unsign(&secrets, sess_str_c(value), &back) != SESS_OK ||
             !sess_str_eq(back, sess_str_c(id)))
        rc = 5;
    else {
        value[len - 1] = value[len - 1] == 'A' ? 'B' : 'A';
        if (sess_unsign(&secrets, sess_str_c(value), &back) == SESS_OK)
            rc = 6;
    }
    if (rc == 0 && sess_sign(&secrets, sess_str_c(id), value, sizeof value, &len) == SESS_OK)
        printf("%s %s\n", id, value);
    sess_secrets_free(&secrets);
    return rc;
}
EOF
secret="a secret only this test knows"

# shellcheck disable=SC2086 # pkg-config's output is a list of flags
cc -std=c11 -Wall -Wextra -Werror -o "$T_DIR/sign" "$T_DIR/sign.c" $flags 2> "$T_DIR/cc.log"
is "$?" 0 "a program builds against the unpacked packages with \$(pkg-config --cflags --libs)" ||
    diag "$(head -c 600 "$T_DIR/cc.log")"
lib=$(LD_LIBRARY_PATH=$root/usr/lib ldd "$T_DIR/sign" | awk '$1 == "libfcgi-session.so.0" { print $3 }')
is "$lib" "$root/usr/lib/libfcgi-session.so.0" "it loads the unpacked libfcgi-session.so.0"
read -r id value < <(LD_LIBRARY_PATH=$root/usr/lib "$T_DIR/sign" "$secret")
like "$id" '^[A-Za-z0-9_-]{43}$' "sess_id_new gives a 43-character id"
is "$value" "s:$id.$(hmac_sig "$id" "$secret")" \
    "sess_sign signs it as express-session does; sess_unsign takes it back and refuses a changed one"

# The static library, with pkg-config --static's private libraries.
static_libs=$(pc --static --libs fcgi-session | sed 's/ -lfcgi-session / /')
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -Werror -o "$T_DIR/sign-static" "$T_DIR/sign.c" $(pc --cflags fcgi-session) \
    "$root/usr/lib/libfcgi-session.a" $static_libs 2> "$T_DIR/cc-static.log"
is "$?" 0 "it links with the unpacked libfcgi-session.a" || diag "$(head -c 600 "$T_DIR/cc-static.log")"
unlike "$(readelf -d "$T_DIR/sign-static")" "libfcgi-session" "and then needs no libfcgi-session.so"
read -r id value < <("$T_DIR/sign-static" "$secret")
is "$value" "s:$id.$(hmac_sig "$id" "$secret")" "the statically linked program signs the same"

# The packaged example configuration, set up as README.md's "Deploying"
# does, with the packaged pages; sessctl and a route from the packages.
stack_secret "$T_DIR/secret"
sed -e "s|^secret_file = .*|secret_file = $T_DIR/secret|" \
    -e "s|^store = .*|store = lmdb:$T_DIR/sessions|" \
    -e "s|^html_dir = .*|html_dir = $root/usr/share/fcgi-session/html|" \
    "$root/usr/share/doc/fcgi-session/examples/fcgi-session.conf" > "$T_DIR/fcgi-session.conf"
mkdir -p "$T_DIR/sessions"
"$root/usr/bin/sessctl" -c "$T_DIR/fcgi-session.conf" check > "$T_DIR/check.log" 2>&1
is "$?" 0 "the packaged sessctl checks the packaged example configuration" || diag "$(cat "$T_DIR/check.log")"
out=$(SESSION_CONFIG=$T_DIR/fcgi-session.conf REQUEST_METHOD=GET REQUEST_URI=/ SCRIPT_NAME=/ \
    "$root/usr/lib/fcgi-session/cgi-bin/index.fcgi" < /dev/null 2>&1)
like "$out" '^Status: 200 OK' "the packaged index route serves GET / as plain CGI"
like "$out" '<!doctype html>' "with the packaged pages"

done_testing
