#!/usr/bin/env bash
# parallel: no (adduser fcgi-session fails while another useradd holds /etc/passwd; binds /dev/log)
# The drop-ins installed as README.md tells, into copies of Debian's own
# configurations of Apache (a2enmod, sites-available, a2ensite), nginx
# (snippets/, included in the default site) and lighttpd (conf-available,
# enabled with its modules), each started as Debian starts it: as root,
# serving as www-data, with the routes under spawn-fcgi or the init script
# as fcgi-session where the drop-in wants sockets: the routes' own user,
# made as the README makes it, owning the secret and the store, which
# www-data then cannot read, with the sockets (0660) its only way in. Where
# the server starts the routes itself (mod_fcgid, CGI, lighttpd's
# bin-path), they run as www-data, which owns those files instead, as the
# README says. Only ports and file locations differ from the
# stock files. Each answers the routes, 404 elsewhere, a form login (its
# Origin check sees the Host the browser sent) and the profile after it.
# The commands are those that work without systemd as PID 1: spawn-fcgi
# with pidfiles, stopped by them; init.d/fcgi-session start, status,
# restart and stop; apache2ctl graceful, which starts a server that is not
# running. Then the pre-flight check (sessctl check as fcgi-session) and a
# broken configuration, whose file:line message must reach the system log
# from spawn-fcgi, the init script and lighttpd's bin-path.
# Needs root and Debian's packages; skips otherwise.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ROUTES=("${STACK_ROUTES[@]}")

skip_all() {
    skip "the drop-ins in Debian's own server configurations" "$1"
    printf '1..%d\n' "$T_N"
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip_all "needs root (servers start as root and serve as www-data)"
id www-data > /dev/null 2>&1 || skip_all "no www-data user"
for d in /etc/apache2 /etc/nginx /etc/lighttpd; do
    [ -d "$d" ] || skip_all "$d is missing (scripts/deps installs the servers)"
done
# The certificate of Debian's default-ssl site (package ssl-cert) is not
# needed: the sites here serve plain HTTP.

# The processes of one installation name its directory in their command
# line or environment.
leftovers() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$BASHPID" ] && continue
        if grep -qsF "$1" "$p/cmdline" "$p/environ" 2> /dev/null; then
            printf '%s %s\n' "${p#/proc/}" "$(tr '\0' ' ' < "$p/cmdline" 2> /dev/null | head -c 120)"
        fi
    done
}

# The README's user for the routes: adduser where it is installed,
# useradd otherwise (both leave an existing system user as it is).
if command -v adduser > /dev/null; then
    adduser --quiet --system --group --no-create-home --home /nonexistent fcgi-session > /dev/null 2>&1
elif ! id fcgi-session > /dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin fcgi-session
fi
id fcgi-session > /dev/null 2>&1 || skip_all "cannot create the system user fcgi-session"

# setup NAME [OWNER]: $D, a directory for one installation: the
# application's configuration (paths as the README's, under $D; root's,
# group OWNER, 0640), its secret (0600) and store (0700) owned by OWNER
# (fcgi-session, or www-data where the server starts the routes) with
# alice's account, and $D/fcgi for the sockets (root's; www-data's when
# lighttpd makes them).
setup() {
    D=$T_DIR/$1 OWNER=${2:-fcgi-session}
    mkdir -p "$D/fcgi" "$D/log" "$D/run" "$D/lock" "$D/www"
    chmod 711 "$T_DIR" "$D"
    t_config "$D/fcgi-session.conf" "secret_file=$D/secret" "store=lmdb:$D/sessions" \
        "html_dir=$T_ROOT/html"
    stack_secret "$D/secret"
    printf 'wonderland\n' | "$T_BUILD/sessctl" -c "$D/fcgi-session.conf" useradd alice --role admin \
        > /dev/null || bail "sessctl useradd failed"
    chown -R "$OWNER:$OWNER" "$D/secret" "$D/sessions"
    chmod 600 "$D/secret"
    chmod -R go-rwx "$D/sessions"
    chgrp "$OWNER" "$D/fcgi-session.conf"
    chmod 640 "$D/fcgi-session.conf"
    chown www-data:www-data "$D/www"
    [ "$OWNER" = www-data ] && chown www-data:www-data "$D/fcgi"
    PORT=$(stack_free_port)
    T_URL=http://127.0.0.1:$PORT T_ORIGIN=$T_URL
    SPAWNED=()
}

# The README's spawn-fcgi loop, with the sockets in $D/fcgi.
spawn_routes() {
    local r
    for r in "${ROUTES[@]}"; do
        env SESSION_CONFIG="$D/fcgi-session.conf" spawn-fcgi -u fcgi-session -g fcgi-session \
            -s "$D/fcgi/$r.sock" -U fcgi-session -G www-data -M 0660 -F 1 -P "$D/fcgi/$r.pid" \
            -- "$T_BUILD/cgi-bin/$r.fcgi" > /dev/null || return 1
        SPAWNED+=("$(tr -d '\n' < "$D/fcgi/$r.pid")")
    done
}

# init.d/fcgi-session with this installation's paths in its defaults file.
init_defaults() {
    printf '%s\n' "PROCS=1" "WRITE_PROCS=2" "RUN=$D/fcgi" "BIN=$T_BUILD/cgi-bin" \
        "SESSCTL=$T_BUILD/sessctl" "CONFIG=$D/fcgi-session.conf" > "$D/default"
}

initd() {
    FCGI_SESSION_DEFAULTS=$D/default "${LOGGED[@]}" sh "$T_ROOT/init.d/fcgi-session" "$@"
}

# The pids in the init script's pidfiles.
initd_pids() {
    local f
    for f in "$D"/fcgi/*.pid; do
        [ -f "$f" ] && cat "$f" && echo
    done | sort -n | xargs
}

# restart: new processes that serve; stop: none left, status says so.
initd_restart_stop() {
    local name=$1 before after
    before=$(initd_pids)
    initd restart > "$D/initd.log" 2>&1
    is "$?" 0 "$name: init.d/fcgi-session restart $(head -c 300 "$D/initd.log")"
    after=$(initd_pids)
    isnt "$after" "$before" "$name: restart started new processes"
    get c /views
    status_is 200 "$name: GET /views after the restart: 200"
    initd stop > "$D/initd.log" 2>&1
    is "$?" 0 "$name: init.d/fcgi-session stop"
    is "$(leftovers "$D/fcgi-session.conf")" "" "$name: no route left after stop"
    initd status > /dev/null 2>&1
    is "$?" 3 "$name: init.d/fcgi-session status then: 3 (not running)"
}

# copy_etc DIR DEST: a copy of a server's configuration directory whose
# links into DIR (nginx's sites-enabled/default) point into the copy.
copy_etc() {
    local link target
    cp -a "$1" "$2"
    while IFS= read -r link; do
        target=$(readlink "$link")
        ln -sfn "$2${target#"$1"}" "$link"
    done < <(find "$2" -type l -lname "$1/*")
}

# Waits until the server answers (any status) or 10 s have passed.
wait_up() {
    local i
    for ((i = 0; i < 200; i++)); do
        curl -s -o /dev/null --max-time 2 "$T_URL/" && return 0
        sleep 0.05
    done
    return 1
}

# denied USER COMMAND...: true when COMMAND fails as USER.
# shellcheck disable=SC2317 # called by check
denied() {
    ! runuser -u "$1" -- "${@:2}" > /dev/null 2>&1
}

# The users the route processes of this installation run as (each has
# its configuration in its environment), sorted, on one line.
route_users() {
    local pid
    leftovers "$D/" | awk '$2 ~ /\.fcgi$/ { print $1 }' | while read -r pid; do
        ps -o user:32= -p "$pid"
    done | sort -u | xargs
}

# The routes run as OWNER; with fcgi-session, www-data (the server) can
# open the sockets and nothing else of theirs, and other users not even
# those.
user_checks() {
    local name=$1
    is "$(route_users)" "$OWNER" "$name: the routes run as $OWNER (ps -o user=)"
    [ "$OWNER" = fcgi-session ] || return 0
    check "$name: www-data cannot read the secret" denied www-data cat "$D/secret"
    check "$name: www-data cannot open the store" denied www-data ls "$D/sessions"
    check "$name: www-data cannot read the store's data" denied www-data cat "$D/sessions/data.mdb"
    check "$name: www-data cannot read the configuration" denied www-data cat "$D/fcgi-session.conf"
    is "$(stat -c '%U %G %a' "$D"/fcgi/*.sock | sort -u)" "fcgi-session www-data 660" \
        "$name: the sockets are fcgi-session's and www-data's group's, 0660"
    check "$name: www-data may open a socket" runuser -u www-data -- test -w "$D/fcgi/views.sock"
    check "$name: another user may not" denied nobody test -w "$D/fcgi/views.sock"
}

# The checks, then: everything stopped, nothing left.
serve_checks() {
    local name=$1
    rm -f "$T_DIR"/jar.*
    get a /views
    status_is 200 "$name: GET /views 200"
    get a /views
    check "$name: GET /views again: {\"views\":2}" json_eq '{"views":2}'
    get - /views/x
    status_is 404 "$name: GET /views/x 404"
    get - /
    like "$(text)" 'Welcome' "$name: GET / is the demo's welcome page"
    login_form b alice wonderland
    status_is 303 "$name: a form login with this site's Origin: 303"
    get b /profile
    like "$(text)" 'Hello alice' "$name: then GET /profile: Hello alice"
    get_json b /session
    status_is 200 "$name: then GET /session: 200"
    is "$(json .user.username)" alice "$name: then GET /session: alice's"
    case $name in
    *", cgi") ;; # no process lives past its request
    *) user_checks "$name" ;;
    esac
}

finish() {
    local name=$1 left r i
    if [ ${#SPAWNED[@]} -gt 0 ]; then
        # The README's stop line, with its pidfiles (spawn-fcgi ends the
        # last pid of a file with no newline).
        for r in "${ROUTES[@]}"; do
            # shellcheck disable=SC2046 # a list of pids
            kill $(cat "$D/fcgi/$r.pid")
        done
        stack_kill_wait "${SPAWNED[@]}" || true
    fi
    # lighttpd sends its bin-path children SIGTERM as it exits and does not
    # wait for them: give them the time a sanitizer build takes to exit.
    for ((i = 0; i < 50; i++)); do
        left=$(leftovers "$D/")
        [ -z "$left" ] && break
        sleep 0.1
    done
    is "$left" "" "$name: nothing left running"
    if [ -n "$left" ]; then
        # shellcheck disable=SC2046 # a list of pids
        kill -KILL $(cut -d' ' -f1 <<< "$left") 2> /dev/null
    fi
}

# --- The system log, where the routes' startup errors go
# shellcheck source=tests/integration/deploy/syslog_capture.sh
. "$(dirname "${BASH_SOURCE[0]}")/syslog_capture.sh"

# --- The pre-flight check: sessctl check, as fcgi-session
preflight() {
    local name="sessctl check as fcgi-session" out rc conf
    setup preflight
    conf=$D/fcgi-session.conf
    out=$(runuser -u fcgi-session -- "$T_BUILD/sessctl" -c "$conf" check 2>&1)
    rc=$?
    is "$rc" 0 "$name: 0 on the README's setup"
    like "$out" "ok: the routes can start with this configuration as fcgi-session" "$name: says so"
    out=$(runuser -u www-data -- "$T_BUILD/sessctl" -c "$conf" check 2>&1)
    isnt "$?" 0 "$name: as www-data, the web server's user, it fails: ${out:0:200}"

    chmod 0640 "$D/secret"
    chmod o+r "$D/secret"
    out=$(runuser -u fcgi-session -- "$T_BUILD/sessctl" -c "$conf" check 2>&1)
    is "$?" 77 "$name: 77 when other users can read the secret"
    like "$out" "secret_file $D/secret: other users may open it .*chmod o-rwx" "$name: names the secret and the fix"
    chmod 0600 "$D/secret"

    chown root "$D/sessions/lock.mdb"
    out=$(runuser -u fcgi-session -- "$T_BUILD/sessctl" -c "$conf" check 2>&1)
    is "$?" 77 "$name: 77 when a file of the store is root's"
    like "$out" "store $D/sessions/lock.mdb: not readable and writable by fcgi-session \\(owner root" \
        "$name: names the file, the user and the owner"
    chown fcgi-session "$D/sessions/lock.mdb"

    printf 'max_agee = 60\n' >> "$conf"
    out=$(runuser -u fcgi-session -- "$T_BUILD/sessctl" -c "$conf" check 2>&1)
    is "$?" 78 "$name: 78 for an unknown key"
    like "$out" "$conf:$(wc -l < "$conf"): unknown key \"max_agee\"" "$name: the file:line message"
    finish "$name"
}

# --- A broken configuration under spawn-fcgi and the init script: the
# file:line message in the system log, and on the console from the script.
broken() {
    local name="a broken configuration" conf want out rc
    setup broken
    conf=$D/fcgi-session.conf
    printf 'max_agee = 60\n' >> "$conf"
    want="views\\[[0-9]+\\]: $conf:$(wc -l < "$conf"): unknown key \"max_agee\""
    out=$(env SESSION_CONFIG="$conf" "${LOGGED[@]}" spawn-fcgi -u fcgi-session -g fcgi-session \
        -s "$D/fcgi/views.sock" -U fcgi-session -G www-data -M 0660 -F 1 -P "$D/fcgi/views.pid" \
        -- "$T_BUILD/cgi-bin/views.fcgi" 2>&1)
    like "$out" "child exited with: 78" "$name, spawn-fcgi: the route exits with 78"
    wait_log "$want"
    like "$(cat "$T_DIR/syslog")" "$want" "$name, spawn-fcgi: the system log has the file:line message"

    init_defaults
    out=$(initd start 2>&1)
    rc=$?
    is "$rc" 78 "$name, init.d/fcgi-session start: 78, after sessctl check"
    like "$out" "$conf:[0-9]+: unknown key \"max_agee\"" "$name, init.d/fcgi-session start: prints the file:line message"
    is "$(initd_pids)" "" "$name, init.d/fcgi-session start: starts nothing"
    finish "$name"
}

# --- Apache, three ways
apache() {
    local mode=$1 name="Debian apache2, $1" conf pid
    # mod_fcgid and CGI run the routes as Apache's user.
    if [ "$mode" = proxy-fcgi ]; then
        setup "apache-$mode"
    else
        setup "apache-$mode" www-data
    fi
    conf=$D/apache2
    copy_etc /etc/apache2 "$conf"
    sed -i -e "s|^export APACHE_PID_FILE=.*|export APACHE_PID_FILE=$D/run/apache2.pid|" \
        -e "s|^export APACHE_RUN_DIR=.*|export APACHE_RUN_DIR=$D/run|" \
        -e "s|^export APACHE_LOCK_DIR=.*|export APACHE_LOCK_DIR=$D/lock|" \
        -e "s|^export APACHE_LOG_DIR=.*|export APACHE_LOG_DIR=$D/log|" "$conf/envvars"
    echo "Listen 127.0.0.1:$PORT" > "$conf/ports.conf"
    sed -i "s|<VirtualHost \\*:80>|<VirtualHost *:$PORT>|" "$conf/sites-available/000-default.conf"
    # The drop-ins' paths (conf-enabled is read before sites-enabled).
    printf 'Define FCGI_SESSION_RUN %s\nDefine FCGI_SESSION_BIN %s\nDefine FCGI_SESSION_CONFIG %s\n' \
        "$D/fcgi" "$T_BUILD/cgi-bin" "$D/fcgi-session.conf" > "$conf/conf-enabled/fcgi-session-paths.conf"
    # The sanitizers' settings reach the executables as the demo's do.
    stack_env_names | sed 's/^/PassEnv /' > "$conf/conf-enabled/fcgi-session-env.conf"
    # apache2ctl would hand a start to systemd where it runs the system.
    export APACHE_CONFDIR=$conf APACHE_STARTED_BY_SYSTEMD=true
    case $mode in
    proxy-fcgi)
        a2enmod -q proxy_fcgi buffer > /dev/null
        spawn_routes || bail "spawn-fcgi failed"
        ;;
    fcgid)
        a2enmod -q fcgid > /dev/null
        stack_env_names | while read -r v; do
            # shellcheck disable=SC2016 # Apache's ${...}
            printf 'FcgidInitialEnv %s "${%s}"\n' "$v" "$v"
        done > "$conf/conf-enabled/fcgi-session-env.conf"
        ;;
    cgi) a2enmod -q cgi > /dev/null 2>&1 ;;
    esac
    cp "$T_ROOT/apache-conf/fcgi-session-$mode.conf" "$conf/sites-available/fcgi-session.conf"
    a2ensite -q fcgi-session > /dev/null
    if ! apache2ctl configtest > "$D/check.log" 2>&1; then
        not_ok "$name: apache2ctl configtest"
        diag "$(cat "$D/check.log")"
    else
        ok "$name: apache2ctl configtest"
        # The README's line without systemd: graceful starts a server that
        # is not running.
        apache2ctl graceful > "$D/start.log" 2>&1
        if wait_up; then
            serve_checks "$name"
        else
            not_ok "$name: starts"
            diag "$(cat "$D/start.log" "$D/log/error.log" 2> /dev/null)"
        fi
        pid=$(cat "$D/run/apache2.pid" 2> /dev/null)
        apache2ctl stop > /dev/null 2>&1
        [ -n "$pid" ] && stack_kill_wait "$pid"
    fi
    unset APACHE_CONFDIR APACHE_STARTED_BY_SYSTEMD
    finish "$name"
}

# --- nginx: the snippet in Debian's default site
nginx_debian() {
    local name="Debian nginx" conf pid
    setup nginx
    conf=$D/nginx
    copy_etc /etc/nginx "$conf"
    sed -i -e "s|/etc/nginx/|$conf/|g" -e "s|^pid .*|pid $D/run/nginx.pid;|" \
        -e "s|/var/log/nginx/|$D/log/|g" "$conf/nginx.conf"
    sed -i -e "s|listen 80 default_server;|listen 127.0.0.1:$PORT default_server;|" \
        -e '/listen \[::\]:80 default_server;/d' -e "s|root /var/www/html;|root $D/www;|" \
        "$conf/sites-available/default"
    sed "s|@RUN@|$D/fcgi|g" "$T_ROOT/nginx-conf/fcgi-session.conf.in" > "$conf/snippets/fcgi-session.conf"
    sed -i "s|^\\(\\s*server_name _;\\)|\\1\\n\\tinclude snippets/fcgi-session.conf;|" \
        "$conf/sites-available/default"
    # The routes from the init script, as without systemd.
    init_defaults
    initd start > "$D/initd.log" 2>&1
    is "$?" 0 "$name: init.d/fcgi-session start $(head -c 300 "$D/initd.log")"
    initd status > "$D/initd.log" 2>&1
    is "$?" 0 "$name: init.d/fcgi-session status: every route running"
    if ! nginx -t -q -c "$conf/nginx.conf" -e "$D/log/error.log" > "$D/check.log" 2>&1; then
        not_ok "$name: nginx -t"
        diag "$(cat "$D/check.log")"
    else
        ok "$name: nginx -t"
        nginx -c "$conf/nginx.conf" -e "$D/log/error.log" > "$D/start.log" 2>&1
        if wait_up; then
            serve_checks "$name"
            initd_restart_stop "$name"
        else
            not_ok "$name: starts"
            diag "$(cat "$D/start.log" "$D/log/error.log" 2> /dev/null)"
        fi
        pid=$(cat "$D/run/nginx.pid" 2> /dev/null)
        [ -n "$pid" ] && stack_kill_wait "$pid"
    fi
    initd stop > /dev/null 2>&1
    finish "$name"
}

# --- lighttpd: conf-available, enabled with the modules it needs
lighttpd_debian() {
    local mode=$1 broken=${2:-} name="Debian lighttpd, $1" conf template mods m pid name_env want
    # lighttpd's bin-path and CGI run the routes as lighttpd's user.
    if [ "$mode" = spawn-fcgi ]; then
        setup "lighttpd-$mode${broken:+-broken}"
    else
        setup "lighttpd-$mode${broken:+-broken}" www-data
    fi
    if [ -n "$broken" ]; then
        name="$name, a broken configuration"
        printf 'max_agee = 60\n' >> "$D/fcgi-session.conf"
        want=": $D/fcgi-session.conf:$(wc -l < "$D/fcgi-session.conf"): unknown key \"max_agee\""
    fi
    conf=$D/lighttpd
    copy_etc /etc/lighttpd "$conf"
    sed -i -e "s|/etc/lighttpd/|$conf/|g" -e "s|^server.port .*|server.port = $PORT\\nserver.bind = \"127.0.0.1\"|" \
        -e '/use-ipv6.pl/d' -e "s|/var/log/lighttpd/|$D/log/|" -e "s|^server.pid-file .*|server.pid-file = \"$D/run/lighttpd.pid\"|" \
        -e "s|/var/cache/lighttpd/uploads|$D/run|" -e "s|\"/var/www/html\"|\"$D/www\"|" "$conf/lighttpd.conf"
    chown www-data:www-data "$D/log" "$D/run"
    case $mode in
    bin-path)
        template=lighttpd-fcgi-bin-path.conf.in mods=(10-fastcgi)
        ;;
    spawn-fcgi)
        template=lighttpd-spawn-fcgi.conf.in mods=(10-fastcgi)
        spawn_routes || bail "spawn-fcgi failed"
        ;;
    cgi)
        template=lighttpd-cgi.conf.in mods=(10-cgi 05-setenv)
        # The sanitizers' settings reach CGI programs as in the demo's.
        {
            printf 'setenv.add-environment = (\n'
            while read -r name_env; do
                printf '    "%s" => env.%s,\n' "$name_env" "$name_env"
            done < <(stack_env_names)
            printf ')\n'
        } > "$conf/conf-enabled/04-fcgi-session-env.conf"
        ;;
    esac
    # The README's lines, with this installation's paths for Debian's.
    sed -n '/^# ---- drop-in/,$p' "$T_ROOT/lighttpd-conf/$template" |
        sed -e "s|@BUILD@|${T_BUILD}|g" -e "s|@RUN@|$D/fcgi|g" -e "s|@CONFIG@|$D/fcgi-session.conf|g" \
            -e 's|@PROCS@|1|g' -e 's|@WRITE_PROCS@|4|g' > "$conf/conf-available/50-fcgi-session.conf"
    # lighty-enable-mod, which knows only /etc/lighttpd, makes these links.
    for m in "${mods[@]}" 50-fcgi-session; do
        ln -s "../conf-available/$m.conf" "$conf/conf-enabled/$m.conf"
    done
    if ! lighttpd -tt -f "$conf/lighttpd.conf" > "$D/check.log" 2>&1; then
        not_ok "$name: lighttpd -tt"
        diag "$(cat "$D/check.log")"
    else
        ok "$name: lighttpd -tt"
        setsid "${LOGGED[@]}" lighttpd -D -f "$conf/lighttpd.conf" > "$D/start.log" 2>&1 < /dev/null &
        pid=$!
        if [ -n "$broken" ]; then
            wait_log "$want"
            like "$(cat "$T_DIR/syslog")" "[a-z]+\\[[0-9]+\\]$want" "$name: the system log has the file:line message"
        elif wait_up; then
            serve_checks "$name"
        else
            not_ok "$name: starts"
            diag "$(cat "$D/start.log" "$D/log/error.log" 2> /dev/null)"
        fi
        stack_kill_wait "$pid"
        wait "$pid" 2> /dev/null
    fi
    finish "$name"
}

log_capture_start
preflight
broken
lighttpd_debian bin-path broken
apache proxy-fcgi
apache fcgid
apache cgi
nginx_debian
lighttpd_debian bin-path
lighttpd_debian spawn-fcgi
lighttpd_debian cgi

done_testing
