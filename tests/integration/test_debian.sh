#!/usr/bin/env bash
# The drop-ins installed as README.md tells, into copies of Debian's own
# configurations of Apache (a2enmod, sites-available, a2ensite), nginx
# (snippets/, included in the default site) and lighttpd (conf-available,
# enabled with its modules), each started as Debian starts it: as root,
# serving as www-data, with the routes under spawn-fcgi as www-data where
# the drop-in wants sockets. Only ports and file locations differ from the
# stock files. Each answers the routes, 404 elsewhere, a form login (its
# Origin check sees the Host the browser sent) and the profile after it.
# Needs root and Debian's packages; skips otherwise.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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

# setup NAME: $D, a directory for one installation: the application's
# configuration (paths as the README's, under $D), its secret and store
# owned by www-data with alice's account, and $D/fcgi for the sockets.
setup() {
    D=$T_DIR/$1
    mkdir -p "$D/fcgi" "$D/log" "$D/run" "$D/lock" "$D/www"
    chmod 711 "$T_DIR" "$D"
    t_config "$D/fcgi-session.conf" "secret_file=$D/secret" "store=lmdb:$D/sessions" \
        "html_dir=$T_ROOT/html"
    stack_secret "$D/secret"
    printf 'wonderland\n' | "$T_BUILD/sessctl" -c "$D/fcgi-session.conf" useradd alice --role admin \
        > /dev/null || bail "sessctl useradd failed"
    chown -R www-data:www-data "$D/secret" "$D/sessions" "$D/fcgi" "$D/www"
    PORT=$(stack_free_port)
    T_URL=http://127.0.0.1:$PORT T_ORIGIN=$T_URL
    SPAWNED=()
}

# The README's spawn-fcgi loop, with the sockets in $D/fcgi.
spawn_routes() {
    local r
    for r in "${ROUTES[@]}"; do
        env SESSION_CONFIG="$D/fcgi-session.conf" spawn-fcgi -u www-data \
            -s "$D/fcgi/$r.sock" -U www-data -G www-data -M 0600 -F 1 -P "$D/fcgi/$r.pid" \
            -- "$T_BUILD/cgi-bin/$r.fcgi" > /dev/null || return 1
        SPAWNED+=("$(tr -d '\n' < "$D/fcgi/$r.pid")")
    done
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
}

finish() {
    local name=$1 left
    if [ ${#SPAWNED[@]} -gt 0 ]; then
        stack_kill_wait "${SPAWNED[@]}" || true
    fi
    left=$(leftovers "$D/")
    is "$left" "" "$name: nothing left running"
    if [ -n "$left" ]; then
        # shellcheck disable=SC2046 # a list of pids
        kill -KILL $(cut -d' ' -f1 <<< "$left") 2> /dev/null
    fi
}

# --- Apache, three ways
apache() {
    local mode=$1 name="Debian apache2, $1" conf pid
    setup "apache-$mode"
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
        apache2ctl start > "$D/start.log" 2>&1
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
    spawn_routes || bail "spawn-fcgi failed"
    if ! nginx -t -q -c "$conf/nginx.conf" -e "$D/log/error.log" > "$D/check.log" 2>&1; then
        not_ok "$name: nginx -t"
        diag "$(cat "$D/check.log")"
    else
        ok "$name: nginx -t"
        nginx -c "$conf/nginx.conf" -e "$D/log/error.log" > "$D/start.log" 2>&1
        if wait_up; then
            serve_checks "$name"
        else
            not_ok "$name: starts"
            diag "$(cat "$D/start.log" "$D/log/error.log" 2> /dev/null)"
        fi
        pid=$(cat "$D/run/nginx.pid" 2> /dev/null)
        [ -n "$pid" ] && stack_kill_wait "$pid"
    fi
    finish "$name"
}

# --- lighttpd: conf-available, enabled with the modules it needs
lighttpd_debian() {
    local mode=$1 name="Debian lighttpd, $1" conf template mods m pid name_env
    setup "lighttpd-$mode"
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
        setsid lighttpd -D -f "$conf/lighttpd.conf" > "$D/start.log" 2>&1 < /dev/null &
        pid=$!
        if wait_up; then
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

apache proxy-fcgi
apache fcgid
apache cgi
nginx_debian
lighttpd_debian bin-path
lighttpd_debian spawn-fcgi
lighttpd_debian cgi

done_testing
