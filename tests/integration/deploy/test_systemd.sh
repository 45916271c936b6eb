#!/usr/bin/env bash
# The systemd units in systemd/: systemd-analyze verify accepts the socket
# and the service of a route (ExecStart pointed at this build, the only
# change), its security review rates the service's sandbox at most 2.0
# ("OK"), and the service hands the executable its listening socket as
# fd 0, which the executables take as their FastCGI socket (as spawn-fcgi
# does; test_views.sh serves through spawn-fcgi). systemd itself is not run.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if ! command -v systemd-analyze > /dev/null; then
    skip "systemd-analyze verify and security" "systemd-analyze is not installed"
    printf '1..%d\n' "$T_N"
    exit 0
fi

UNITS=$T_DIR/units
mkdir -p "$UNITS"
cp "$T_ROOT/systemd/fcgi-session@.socket" "$T_ROOT/systemd/fcgi-session@.service" "$UNITS/"
sed -i "s|^ExecStart=/usr/local/lib/fcgi-session/cgi-bin/|ExecStart=$T_BUILD/cgi-bin/|" \
    "$UNITS/fcgi-session@.service"
like "$(grep '^ExecStart=' "$UNITS/fcgi-session@.service")" "^ExecStart=$T_BUILD/" \
    "the service's ExecStart points at this build"
for route in "${STACK_ROUTES[@]}"; do
    ln -s fcgi-session@.socket "$UNITS/fcgi-session@$route.socket"
    ln -s fcgi-session@.service "$UNITS/fcgi-session@$route.service"
done

for route in views login; do
    if out=$(systemd-analyze verify --man=no "$UNITS/fcgi-session@$route.socket" \
        "$UNITS/fcgi-session@$route.service" 2>&1); then
        ok "systemd-analyze verify: fcgi-session@$route.socket and .service"
    else
        not_ok "systemd-analyze verify: fcgi-session@$route.socket and .service"
        diag "$out"
    fi
done

out=$(systemd-analyze security --offline=yes --threshold=20 "$UNITS/fcgi-session@views.service" 2>&1)
rc=$?
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<< "$out")
is "$rc" 0 "systemd-analyze security: exposure $score, at most 2.0"
[ "$rc" -eq 0 ] || diag "$(grep -E '^✗' <<< "$out" | head -n 20)"

# What the deployment relies on, whatever else changes in the units.
service=$(cat "$UNITS/fcgi-session@.service")
socket=$(cat "$UNITS/fcgi-session@.socket")
like "$socket" $'\nAccept=no' "the socket hands one listening socket to one service"
like "$socket" $'\nSocketUser=fcgi-session\nSocketGroup=www-data\nSocketMode=0660' \
    "the socket is the routes' user's and the web server's group's, no one else's"
like "$service" $'\nUser=fcgi-session\nGroup=fcgi-session' \
    "the routes run as a user of their own, not the web server's"
unlike "$service" $'\nDynamicUser=' "a static user, which owns the secret and the store across restarts"
like "$service" $'\nStandardInput=socket' "the listening socket is the service's fd 0"
like "$service" $'\nStandardOutput=journal' "stdout is the journal, not the socket"
like "$service" $'\nRestart=always' "the service starts again whenever it ends"
like "$service" $'\nReadWritePaths=/var/lib/fcgi-session' "the store is the only writable path"

done_testing
