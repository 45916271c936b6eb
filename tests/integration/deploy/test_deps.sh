#!/usr/bin/env bash
# sanitizer: same
# What make installs and stops, on a fresh clone of this tree: `make` and
# `make install` install at most the build's packages, saying so first;
# `make run`'s and `make check`'s dependency steps add theirs; DEPS=no asks
# for nothing; no step ever stops a service that was running before it, and
# a service an install started is stopped again, and said. apt-get,
# dpkg-query, systemctl, service, sudo and ldconfig are stand-ins, first on
# PATH, that log every call: the machine's packages and services are not
# touched. Also: ldconfig after an install to the system, and `make
# uninstall` removing the directories that `make install` made.
# timeout: 400
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BIN=$T_DIR/bin
STATE=$T_DIR/state
LOG=$T_DIR/calls.log
SRC=$T_DIR/src
mkdir -p "$BIN" "$STATE"
: > "$LOG"

# Every build package installed but libhiredis-dev; Apache and nginx
# installed and running; the tools of the tests missing.
printf '%s\n' build-essential pkg-config libfcgi-dev libsodium-dev liblmdb-dev libjansson-dev \
    apache2 nginx > "$STATE/installed"
printf '%s\n' apache2 nginx > "$STATE/running"

stand_in() {
    {
        printf '#!/usr/bin/env bash\n'
        printf 'STATE=%q LOG=%q\n' "$STATE" "$LOG"
        # shellcheck disable=SC2016 # for the stand-in
        printf 'echo "%s $*" >> "$LOG"\n' "$1"
        cat
    } > "$BIN/$1"
    chmod +x "$BIN/$1"
}
stand_in dpkg-query << 'EOF'
p=${!#}
if grep -qxF -- "$p" "$STATE/installed"; then
    echo 'install ok installed'
else
    echo "dpkg-query: no packages found matching $p" >&2
    exit 1
fi
EOF
# As Debian's: an installed server starts at once.
stand_in apt-get << 'EOF'
[ "$1" = update ] && exit 0
seen=
for a in "$@"; do
    case $a in
    install) seen=1 ;;
    -*) ;;
    *)
        [ -n "$seen" ] || continue
        echo "$a" >> "$STATE/installed"
        case $a in apache2 | nginx | lighttpd | redis-server) echo "$a" >> "$STATE/running" ;; esac
        ;;
    esac
done
EOF
stand_in systemctl << 'EOF'
case $1 in
is-active) grep -qxF -- "${!#}" "$STATE/running" ;;
stop) grep -vxF -- "$2" "$STATE/running" > "$STATE/r" ; mv "$STATE/r" "$STATE/running" ;;
esac
EOF
stand_in service << 'EOF'
case $2 in
status) grep -qxF -- "$1" "$STATE/running" ;;
stop) grep -vxF -- "$1" "$STATE/running" > "$STATE/r" ; mv "$STATE/r" "$STATE/running" ;;
esac
EOF
stand_in sudo << 'EOF'
exec "$@"
EOF
stand_in ldconfig < /dev/null

# A fresh clone, with this tree's uncommitted changes and new files.
git clone -q "$T_ROOT" "$SRC" 2> "$T_DIR/clone.err" || bail "git clone failed: $(cat "$T_DIR/clone.err")"
while IFS= read -r -d '' f; do
    [ -f "$T_ROOT/$f" ] || continue
    mkdir -p "$SRC/$(dirname "$f")"
    cp -p "$T_ROOT/$f" "$SRC/$f"
done < <(git -C "$T_ROOT" ls-files -z --cached --others --exclude-standard)
check "the clone has no build directory" test ! -e "$SRC/build"

# mk NAME ARGS...: make in the clone with the stand-ins first on PATH; its
# output in $T_DIR/NAME.out, the calls it made in $T_DIR/NAME.calls.
mk() {
    local name=$1 rc
    shift
    : > "$LOG"
    (
        unset MAKEFLAGS MFLAGS MAKELEVEL BUILD SANITIZE DEPS SERVER FCGI TLS STORE
        PATH=$BIN:$PATH make -C "$SRC" "$@" > "$T_DIR/$name.out" 2>&1
    )
    rc=$?
    cp "$LOG" "$T_DIR/$name.calls"
    return $rc
}

# ran NAME DESC: the step NAME (its status in $?) succeeded; its output
# when not.
ran() {
    local rc=$?
    is "$rc" 0 "$2" || diag "$(tail -n 15 "$T_DIR/$1.out")"
}

# The packages a step installed, and the services it stopped.
installed_by() {
    sed -n 's/^apt-get .*install -y -qq --no-install-recommends //p' "$T_DIR/$1.calls" | tr ' ' '\n' |
        sed '/^$/d' | sort | xargs
}
stopped_by() {
    sed -n -e 's/^systemctl stop //p' -e 's/^service \([^ ]*\) stop$/\1/p' "$T_DIR/$1.calls" | sort | xargs
}
TEST_TOOLS='^(chromium|valgrind|nodejs|npm|redis-server|lighttpd|lighttpd-mod-openssl|apache2|libapache2-mod-fcgid|nginx|spawn-fcgi|curl|jq|lmdb-utils|libcmocka-dev|clang)$'

mk make -j"$(nproc 2> /dev/null || echo 2)" BUILD=build
ran make "make succeeds on the fresh clone"
is "$(installed_by make)" "libhiredis-dev" "make installs the one missing build package, nothing else"
like "$(cat "$T_DIR/make.out")" "scripts/deps: installing libhiredis-dev" "make says what it installs"
is "$(stopped_by make)" "" "make stops no service"

mk install install BUILD=build PREFIX=/usr/local DESTDIR="$T_DIR/dest"
ran install "make install DESTDIR=... succeeds"
is "$(installed_by install)" "" "make install installs nothing more"
is "$(grep -c '^apt-get' "$T_DIR/install.calls")" 0 "make install calls no apt-get"
is "$(stopped_by install)" "" "make install stops no service"
is "$(grep -c '^ldconfig' "$T_DIR/install.calls")" 0 "make install DESTDIR=... runs no ldconfig"
check "make install DESTDIR=... installs the routes" test -x "$T_DIR/dest/usr/local/lib/fcgi-session/cgi-bin/views.fcgi"

no_tools() {
    installed_by "$1" | tr ' ' '\n' | grep -E "$TEST_TOOLS" | xargs
}
is "$(no_tools make)" "" "make installs no package of the tests or the demo"
is "$(no_tools install)" "" "make install installs no package of the tests or the demo"

mk run deps-run BUILD=build
ran run "make run's dependency step succeeds"
is "$(installed_by run)" "lighttpd" "make run installs the demo's server (lighttpd), nothing else"
is "$(stopped_by run)" "lighttpd" "make run stops lighttpd, which its install started, and nothing else"
like "$(cat "$T_DIR/run.out")" "stopping lighttpd, which the install started" "make run says so"

mk run-nginx deps-run BUILD=build SERVER=nginx
is "$(installed_by run-nginx)" "spawn-fcgi" "make run SERVER=nginx installs spawn-fcgi (nginx is there)"
is "$(stopped_by run-nginx)" "" "make run SERVER=nginx stops no service (nginx was running before)"

mk check deps-check BUILD=build
ran check "make check's dependency step succeeds"
like " $(installed_by check) " " chromium .*libcmocka-dev .*nodejs .*redis-server " \
    "make check installs what the tests start"
is "$(stopped_by check)" "redis-server" "make check stops redis-server, which its install started, and nothing else"
like "$(sort "$STATE/running" | xargs)" "^apache2 lighttpd nginx$|^apache2 nginx$" \
    "Apache and nginx, running before, still run"

rm -f "$SRC/build/.deps-build"
mk nodeps DEPS=no BUILD=build all deps-run deps-check
ran nodeps "make DEPS=no all deps-run deps-check succeeds"
is "$(cat "$T_DIR/nodeps.calls")" "" "DEPS=no: not even dpkg-query is called"

# An install to the system (no DESTDIR), as root: ldconfig, so that
# programs linked with -lfcgi-session find it; uninstall removes every
# directory install made.
prefix=$T_DIR/prefix
if [ "$(id -u)" -eq 0 ]; then
    mk sys install BUILD=build PREFIX="$prefix"
    ran sys "make install PREFIX=... as root succeeds"
    is "$(grep -c '^ldconfig' "$T_DIR/sys.calls")" 1 "make install to the system runs ldconfig"
    mk sys-un uninstall BUILD=build PREFIX="$prefix"
    ran sys-un "make uninstall PREFIX=... succeeds"
    check "make uninstall removes the directories install made, down to PREFIX" test ! -e "$prefix"
else
    skip "ldconfig after an install to the system" "needs root"
fi
mk un uninstall BUILD=build PREFIX=/usr/local DESTDIR="$T_DIR/dest"
ran un "make uninstall DESTDIR=... succeeds"
is "$(find "$T_DIR/dest" -mindepth 1 | head -n 5)" "" "make uninstall DESTDIR=... leaves no file or directory"

done_testing
