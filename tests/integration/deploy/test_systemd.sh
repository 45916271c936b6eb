#!/usr/bin/env bash
# parallel: no (a systemd and a journald of its own in a private mount namespace)
# sanitizer: same
# (Its checks are systemd's: the units and the journal. The service runs as
# fcgi-session under the unit's hardening, where an ASan build cannot write
# its reports.)
# The systemd units in systemd/: systemd-analyze verify accepts the socket
# and the service of a route (ExecStart pointed at this build, the only
# change), its security review rates the service's sandbox at most 2.0
# ("OK"), and the service hands the executable its listening socket as
# fd 0, which the executables take as their FastCGI socket (as spawn-fcgi
# does; test_views.sh serves through spawn-fcgi). Then systemd itself, as
# root: a service manager (systemd --user) and a journald of their own, in
# a mount namespace with /run (and /var/log/journal) private, run the
# socket and the service of views with a broken configuration: the first
# connection starts the route, which exits with 78, and `journalctl -u
# fcgi-session@views` shows the FILE:LINE message (README, "When a route
# does not start"), once per start: not a second time through syslog.
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

# --- systemd running the units with a broken configuration
journal_run() {
    local inner=$T_DIR/inner.sh
    cat > "$inner" << 'INNER'
set -u
W=$1 BUILD=$2
mount -t tmpfs tmpfs /run || exit 1
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal || exit 1; fi
# A manager that finds /run/systemd/system believes it is on a systemd system.
mkdir -p /run/systemd/system /run/systemd/journal /run/user/0 /run/conf
U=$W/xdg/systemd/user
mkdir -p "$U/fcgi-session@.service.d"
cp "$W/units/fcgi-session@.socket" "$W/units/fcgi-session@.service" "$U/"
# The README's configuration path, and the sandbox's namespaces off: a
# manager inside this mount namespace cannot set them up (the service
# fails with 226/NAMESPACE); systemd-analyze security checks them above.
{
    printf '[Service]\nEnvironment=SESSION_CONFIG=/run/conf/fcgi-session.conf\n'
    for o in PrivateTmp PrivateDevices ProtectSystem ProtectHome ProtectKernelTunables \
        ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectClock ProtectHostname; do
        printf '%s=no\n' "$o"
    done
    printf 'ProtectProc=default\nProcSubset=all\nReadWritePaths=\n'
} > "$U/fcgi-session@.service.d/test.conf"
cp "$W/broken.conf" /run/conf/fcgi-session.conf
chmod 755 /run/conf && chmod 644 /run/conf/fcgi-session.conf
/lib/systemd/systemd-journald > "$W/journald.out" 2>&1 &
jpid=$!
for i in $(seq 200); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
XDG_RUNTIME_DIR=/run/user/0 XDG_CONFIG_HOME=$W/xdg /lib/systemd/systemd --user > "$W/manager.out" 2>&1 &
spid=$!
for i in $(seq 200); do [ -S /run/user/0/systemd/private ] && break; sleep 0.05; done
export XDG_RUNTIME_DIR=/run/user/0
systemctl --user start fcgi-session@views.socket > "$W/start.out" 2>&1
echo "socket $?" > "$W/results"
stat -c '%U %G %a' /run/fcgi-session/views.sock >> "$W/results" 2>&1
# The first connection starts the service.
curl -s -o /dev/null --max-time 2 --unix-socket /run/fcgi-session/views.sock http://localhost/views
for i in $(seq 100); do
    [ "$(systemctl --user show -P ExecMainStatus fcgi-session@views.service)" = 78 ] && break
    sleep 0.05
done
echo "status $(systemctl --user show -P ExecMainStatus fcgi-session@views.service)" >> "$W/results"
journalctl --no-pager -o cat -u fcgi-session@views > "$W/journal-unit" 2>&1
journalctl --no-pager -o short > "$W/journal-all" 2>&1
systemctl --user stop fcgi-session@views.socket fcgi-session@views.service
kill -TERM "$spid"; wait "$spid"
kill -TERM "$jpid"; wait "$jpid"
INNER
    timeout 60 unshare -m --propagation private bash "$inner" "$T_DIR" "$T_BUILD" > "$T_DIR/inner.out" 2>&1
}

if [ "$(id -u)" -ne 0 ] || ! command -v unshare > /dev/null || [ ! -x /lib/systemd/systemd ] ||
    [ ! -x /lib/systemd/systemd-journald ] || ! id fcgi-session > /dev/null 2>&1 ||
    ! id www-data > /dev/null 2>&1; then
    skip "systemd runs the units" "needs root, unshare, systemd, systemd-journald and the users fcgi-session and www-data"
else
    t_config "$T_DIR/broken.conf" secret_file=/run/conf/secret store=lmdb:/run/conf/sessions \
        "html_dir=$T_ROOT/html" max_agee=60
    line=$(grep -n '^max_agee' "$T_DIR/broken.conf" | cut -d: -f1)
    want="views: /run/conf/fcgi-session.conf:$line: unknown key \"max_agee\" \\(did you mean \"max_age\"\\?\\)"
    journal_run
    results=$(cat "$T_DIR/results" 2> /dev/null)
    like "$results" "socket 0" "systemctl --user start fcgi-session@views.socket" ||
        diag "$(cat "$T_DIR/start.out" "$T_DIR/inner.out" "$T_DIR/manager.out" 2> /dev/null | head -n 20)"
    like "$results" "fcgi-session www-data 660" "the socket is fcgi-session's and www-data's, 0660"
    like "$results" "status 78" "the service the first connection starts exits with 78" ||
        diag "$(tail -n 20 "$T_DIR/journal-all" 2> /dev/null)"
    like "$(cat "$T_DIR/journal-unit")" "(^|$'\n')$want" \
        "journalctl -u fcgi-session@views shows the FILE:LINE message" ||
        diag "$(tail -n 20 "$T_DIR/journal-all" 2> /dev/null)"
    unlike "$(cat "$T_DIR/journal-all")" "views\\[[0-9]+\\]: /run/conf" \
        "and not a second time through syslog (stderr is the journal)"
fi

done_testing
