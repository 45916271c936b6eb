# shellcheck shell=bash disable=SC2153
# Starts and stops the demo stack: a real web server on a loopback port in
# front of the route executables, from the templates in lighttpd-conf/,
# apache-conf/ and nginx-conf/. Sourced by scripts/run (`make run`),
# tests/integration/lib.sh, scripts/valgrind-check and bench/run, so the
# tests serve exactly what users run. Functions only; nothing runs when
# sourced.
#
# What differs from one web server to the next is in its driver,
# scripts/stack/NAME.sh, which serves SERVER=NAME and NAME-VARIANT (an
# other way of running the executables: lighttpd-cgi, apache-fcgid);
# stack_driver loads the one STACK_SERVER names. Each driver defines:
#   stack_drv_fcgi        prints who may start the executables, the
#                         default first: lighttpd, spawn-fcgi, fcgid, cgi
#                         (STACK_FCGI takes one of them)
#   stack_drv_check_path PATH  refuses, with a message, a path its
#                         configuration cannot hold (beyond stack_check_path)
#   stack_drv_drops       true when, started as root, its workers serve as
#                         STACK_USER, not root
#   stack_drv_prog        finds the server (and its modules); sets
#                         STACK_PROG, STACK_CONF, STACK_ERRLOG, STACK_CMD (the
#                         server in the foreground) and STACK_CHECK_CMD (the
#                         check of its configuration)
#   stack_drv_write       writes its configuration under STACK_RUN
# and sets STACK_DRV_START_DIED_RE and STACK_DRV_DIED_RE: what its error
# log says when an executable dies at start, or while it serves (extended
# regular expressions; empty when it says nothing).
#
# The caller sets, before stack_prepare:
#   STACK_ROOT    repository root (templates)
#   STACK_BUILD   build directory holding cgi-bin/*.fcgi (absolute)
#   STACK_RUN     directory for the generated configuration, sockets, pid
#                 and log files (created)
#   STACK_CONFIG  the fcgi-session configuration file (absolute)
#   STACK_PORT    TCP port on STACK_BIND (default 127.0.0.1)
#   STACK_SERVER  which server, and who starts the executables (one of
#                 STACK_SERVERS):
#                   lighttpd      lighttpd (STACK_FCGI decides; the default)
#                   lighttpd-cgi  lighttpd, plain CGI (mod_cgi)
#                   apache        Apache mod_proxy_fcgi, spawn-fcgi
#                   apache-fcgid  Apache mod_fcgid starts them
#                   apache-cgi    Apache, plain CGI (mod_cgid)
#                   nginx         nginx, spawn-fcgi
#   STACK_FCGI    for lighttpd only: lighttpd (it starts the executables and
#                 restarts one that dies: mod_fastcgi bin-path, the
#                 default) or spawn-fcgi (spawn-fcgi starts them,
#                 stack_supervise restarts them). The other servers set it:
#                 spawn-fcgi, fcgid or cgi.
#   STACK_PROCS   processes per route (default 1, 2 under mod_fcgid: on 2
#                 cores, with lighttpd and the load on the same machine, one
#                 process per read route answered as much as two or more in
#                 every round of one run; bench/results.md, demo-procs-2)
#   STACK_WRITE_PROCS  processes for the routes that update their session on
#                 most requests, views and prefs (default 4, or STACK_PROCS
#                 if larger): their concurrent commits share one fsync
#                 (group commit), which needs several processes
#   STACK_STATIC  the folder the server serves at /static/ (stack_prepare
#                 sets STACK_STATIC_DIR to it; default: the
#                 static/ folder of STACK_CONFIG's html_dir, as installed)
#   STACK_LOG     file for the server's and the executables' stderr
#                 (default: inherited)
#   STACK_TLS     1: serve HTTPS with STACK_TLS_CERT and STACK_TLS_KEY (PEM
#                 files, see stack_tls_cert)
#   STACK_OWN     (array) files and directories the executables write or
#                 read privately (store, secret): given to the server's user
#                 when started as root (see stack_users)
#   STACK_USER    the user Apache and nginx serve as when started as root
#                 (default www-data)
#   STACK_ROUTES_USER  when started as root, the user spawn-fcgi runs the
#                 routes as (stack_system_user makes it when missing),
#                 owning STACK_OWN, with the sockets its own and open to the
#                 server's group (0660); empty (the default): the routes
#                 run as the invoking user, root
#
# stack_start sets STACK_SERVER_PID (STACK_LIGHTTPD_PID too, the name older
# callers use), STACK_URL and STACK_ERRLOG (the server's error log).

STACK_ROUTES=(index login logout profile dashboard session views prefs devices devices_revoke password)
STACK_SERVERS=(lighttpd lighttpd-cgi apache apache-fcgid apache-cgi nginx)
STACK_BIND=${STACK_BIND:-127.0.0.1}
# The environment of every FastCGI route process, beside SESSION_CONFIG: a
# request frees a few dozen small jansson values of three sizes at once, past
# glibc's per-thread cache of 7 chunks a size, and the rest of them took
# malloc's slow paths (README.md, "Performance"). The server templates and
# the systemd and init.d files set the same.
STACK_ROUTE_TUNABLES=glibc.malloc.tcache_count=64
STACK_DRIVERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stack
STACK_DRIVER=
STACK_SERVER_PID=
STACK_LIGHTTPD_PID=
STACK_BACKEND_PIDS=
STACK_URL=
STACK_ERRLOG=
STACK_STATIC_DIR=
declare -gA STACK_ROUTE_PIDS=()

stack_err() {
    printf 'fcgi-session: %s\n' "$*" >&2
}

# Finds a program also in the sbin directories, which a normal user's PATH
# lacks on Debian (lighttpd, apache2 and nginx live in /usr/sbin).
stack_find_prog() {
    local d
    if command -v "$1" 2> /dev/null; then
        return 0
    fi
    for d in /usr/sbin /sbin /usr/local/sbin; do
        if [ -x "$d/$1" ]; then
            printf '%s\n' "$d/$1"
            return 0
        fi
    done
    return 1
}

# True when something accepts connections on the port.
stack_port_open() {
    (exec 3<> "/dev/tcp/$STACK_BIND/$1") 2> /dev/null
}

# Prints a loopback port nothing listens on, below Linux's ephemeral range
# (32768-60999): there a client's connection, or its TIME_WAIT, can hold a
# port unseen, and a server's bind to it then fails.
stack_free_port() {
    local p
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
        stack_port_open "$p" || break
    done
    printf '%s\n' "$p"
}

# True while the process exists and is not a zombie.
stack_alive() {
    local stat
    [ -n "${1:-}" ] || return 1
    # read, not cat: no fork, so a Ctrl-C never lands in a helper process.
    read -r stat 2> /dev/null < "/proc/$1/stat" || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# Prints the pids whose parent is $1.
stack_children() {
    local f line pid rest state ppid
    for f in /proc/[0-9]*/stat; do
        read -r line 2> /dev/null < "$f" || continue
        pid=${line%% *}
        rest=${line##*) }
        read -r state ppid _ <<< "$rest"
        if [ "$ppid" = "$1" ] && [ "$state" != Z ]; then
            printf '%s\n' "$pid"
        fi
    done
}

# Prints the pids below $1, at any depth: Apache's executables (mod_fcgid,
# mod_cgid) are its grandchildren.
stack_descendants() {
    local f line pid rest state ppid
    local -A parent=()
    local -a todo=("$1")
    for f in /proc/[0-9]*/stat; do
        read -r line 2> /dev/null < "$f" || continue
        pid=${line%% *}
        rest=${line##*) }
        read -r state ppid _ <<< "$rest"
        [ "$state" != Z ] && parent[$pid]=$ppid
    done
    while [ ${#todo[@]} -gt 0 ]; do
        ppid=${todo[0]}
        todo=("${todo[@]:1}")
        for pid in "${!parent[@]}"; do
            if [ "${parent[$pid]}" = "$ppid" ]; then
                printf '%s\n' "$pid"
                todo+=("$pid")
            fi
        done
    done
}

# Prints the pids of processes that hold a unix socket bound under
# $STACK_RUN: the executables, even after the socket file is gone.
stack_socket_holders() {
    local inode path expr=()
    # Num RefCount Protocol Flags Type St Inode Path
    while read -r _ _ _ _ _ _ inode path; do
        if [[ $path == "$STACK_RUN"/* ]]; then
            [ ${#expr[@]} -gt 0 ] && expr+=(-o)
            expr+=(-lname "socket:\\[$inode\\]")
        fi
    done < /proc/net/unix
    [ ${#expr[@]} -gt 0 ] || return 0
    find /proc/[0-9]*/fd -maxdepth 1 \( "${expr[@]}" \) 2> /dev/null |
        sed -n 's|^/proc/\([0-9]*\)/fd/.*|\1|p' | sort -u
}

# Creates a secret file (one line: 32 random bytes in base64, mode 0600)
# unless it exists.
stack_secret() {
    local file=$1
    [ -s "$file" ] && return 0
    mkdir -p "$(dirname "$file")"
    (
        umask 077
        head -c 32 /dev/urandom | base64 -w 0 > "$file.tmp" && echo >> "$file.tmp" &&
            mv "$file.tmp" "$file"
    )
}

# stack_tls_cert DIR: a self-signed certificate for localhost and
# 127.0.0.1 (DIR/cert.pem, DIR/key.pem, the key 0600) unless both exist.
# Sets STACK_TLS_CERT and STACK_TLS_KEY.
stack_tls_cert() {
    local dir=$1
    STACK_TLS_CERT=$dir/cert.pem
    STACK_TLS_KEY=$dir/key.pem
    [ -s "$STACK_TLS_CERT" ] && [ -s "$STACK_TLS_KEY" ] && return 0
    command -v openssl > /dev/null || {
        stack_err "openssl is not installed (scripts/deps installs it)"
        return 1
    }
    mkdir -p "$dir" || return 1
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
            -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
            -keyout "$dir/key.pem.tmp" -out "$dir/cert.pem.tmp" > "$dir/openssl.log" 2>&1
    ) || {
        stack_err "openssl could not make a certificate:"
        cat "$dir/openssl.log" >&2
        return 1
    }
    chmod 644 "$dir/cert.pem.tmp"
    mv "$dir/key.pem.tmp" "$STACK_TLS_KEY" && mv "$dir/cert.pem.tmp" "$STACK_TLS_CERT" &&
        rm -f "$dir/openssl.log"
}

# stack_accounts SESSCTL CONFIG NAME ROLE PASSWORD [NAME ROLE PASSWORD...]:
# creates each account that `sessctl users` does not list yet.
stack_accounts() {
    local sessctl=$1 config=$2 users
    shift 2
    users=$("$sessctl" -c "$config" users) || return 1
    while [ $# -ge 3 ]; do
        if ! awk -v n="$1" '$1 == n { found = 1 } END { exit !found }' <<< "$users"; then
            printf '%s\n' "$3" | "$sessctl" -c "$config" useradd "$1" --role "$2" > /dev/null ||
                return 1
        fi
        shift 3
    done
}

# The generated configurations quote paths as lighttpd, Apache and nginx
# do: refuse paths that would need escaping there or in sed (nginx's are
# unquoted, so no blanks either).
stack_check_path() {
    case $1 in
    /*) ;;
    *)
        stack_err "$1: an absolute path is needed"
        return 1
        ;;
    esac
    case $1 in
    *[\"\\\|\&\$\;\{\}\'$'\n\t']*)
        stack_err "$1: a path with one of \" \\ | & \$ ; { } ' or a control character cannot go into" \
            "a server configuration"
        return 1
        ;;
    esac
    stack_drv_check_path "$1"
}

# Who the server's workers, and the executables it starts itself, run as:
# the invoking user, or www-data (STACK_USER) when started as root and the
# driver says its workers drop root (Apache refuses to serve as root, and
# nginx's workers should not; lighttpd keeps the invoking user).
stack_users() {
    if [ "$(id -u)" -eq 0 ]; then
        STACK_USER=${STACK_USER:-www-data}
    else
        STACK_USER=$(id -un)
    fi
    STACK_GROUP=$(id -gn "$STACK_USER") || {
        stack_err "user $STACK_USER does not exist (set STACK_USER to the web server's user)"
        return 1
    }
    STACK_DROPS=
    if [ "$(id -u)" -eq 0 ] && [ "$(id -u "$STACK_USER")" -ne 0 ] && stack_drv_drops; then
        STACK_DROPS=1
    fi
}

# Runs a command as the user the executables run as.
stack_as_exec_user() {
    if [ "$STACK_EXEC_USER" = "$(id -un)" ]; then
        "$@"
    else
        setpriv --reuid="$STACK_EXEC_USER" --regid="$STACK_EXEC_GROUP" --clear-groups -- "$@"
    fi
}

# stack_system_user NAME: a system user NAME with a group of its own, no
# home and no login shell, made unless it exists (useradd is in every
# Debian system; adduser is not). Another process may make it at the same
# time: what counts is that it exists afterwards.
stack_system_user() {
    local name=$1 useradd i
    id "$name" > /dev/null 2>&1 && return 0
    useradd=$(stack_find_prog useradd) || {
        stack_err "useradd is not installed: create the system user $name for the routes"
        return 1
    }
    for ((i = 0; i < 25; i++)); do
        if "$useradd" --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "fcgi-session routes" "$name" 2> /dev/null; then
            stack_err "created the system user $name for the routes (userdel $name removes it)"
            return 0
        fi
        id "$name" > /dev/null 2>&1 && return 0
        # /etc/passwd locked by another useradd: try again.
        sleep 0.2
    done
    stack_err "could not create the system user $name (useradd --system --user-group $name)"
    return 1
}

# The directories the sanitizers write their reports to (log_path=DIR/x in
# ASAN_OPTIONS and co.), so that executables running as another user can.
stack_sanitizer_dirs() {
    local opts path
    for opts in "${ASAN_OPTIONS:-}" "${UBSAN_OPTIONS:-}" "${LSAN_OPTIONS:-}"; do
        path=$(tr ':' '\n' <<< "$opts" | sed -n 's/^log_path=//p' | tail -n 1)
        [ -n "$path" ] && dirname "$path"
    done | sort -u
}

# Gives the executables' user what it needs when the server drops to it:
# STACK_OWN (store, secret) and the sanitizers' report directories.
stack_grant() {
    local p dirs=()
    [ "$STACK_EXEC_USER" != "$(id -un)" ] || return 0
    for p in "${STACK_OWN[@]}"; do
        [ -e "$p" ] || continue
        # Theirs alone: the web server's user gets the sockets only.
        { chown -R "$STACK_EXEC_USER:$STACK_EXEC_GROUP" "$p" && chmod -R go-rwx "$p"; } || {
            stack_err "cannot give $p to $STACK_EXEC_USER"
            return 1
        }
    done
    mapfile -t dirs < <(stack_sanitizer_dirs)
    for p in "${dirs[@]}"; do
        [ -e "$p" ] || continue
        chown -R "$STACK_EXEC_USER:$STACK_EXEC_GROUP" "$p" || {
            stack_err "cannot give $p to $STACK_EXEC_USER"
            return 1
        }
    done
}

# The names of the environment variables passed on to executables that a
# server starts with an environment of its own (mod_fcgid, CGI): STORE
# overrides the configured store; the rest are the sanitizers' settings.
stack_env_names() {
    local name
    for name in STORE ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TZ; do
        [ -n "${!name+set}" ] && printf '%s\n' "$name"
    done
}

# stack_render TEMPLATE OUT: fills in the placeholders; with TLS the
# "#@TLS@ " lines become configuration, as does "#@ROOT@ " when root.
stack_render() {
    local tls_sed='/^[[:space:]]*#@TLS@ /d' root_sed='/^[[:space:]]*#@ROOT@ /d' ssl=
    if [ "${STACK_TLS:-}" = 1 ]; then
        tls_sed='s/^\([[:space:]]*\)#@TLS@ /\1/'
        ssl=' ssl'
    fi
    [ "$(id -u)" -eq 0 ] && root_sed='s/^\([[:space:]]*\)#@ROOT@ /\1/'
    sed -e "$tls_sed" -e "$root_sed" \
        -e "s|@BIND@|$STACK_BIND|g" -e "s|@PORT@|$STACK_PORT|g" -e "s|@RUN@|$STACK_RUN|g" \
        -e "s|@BUILD@|$STACK_BUILD|g" -e "s|@CONFIG@|$STACK_CONFIG|g" \
        -e "s|@PROCS@|$STACK_PROCS|g" -e "s|@WRITE_PROCS@|$STACK_WRITE_PROCS|g" \
        -e "s|@ROOT@|$STACK_ROOT|g" -e "s|@STATIC@|$STACK_STATIC_DIR|g" \
        -e "s|@USER@|$STACK_USER|g" -e "s|@GROUP@|$STACK_GROUP|g" \
        -e "s|@MODULES@|${STACK_APACHE_MODULES:-}|g" -e "s|@SSL@|$ssl|g" \
        -e "s|@CERT@|${STACK_TLS_CERT:-}|g" -e "s|@KEY@|${STACK_TLS_KEY:-}|g" \
        "$1" > "$2"
}

# Prints the static/ folder of the configuration's html_dir (a relative one
# is the configuration's directory's, as the executables read it): the
# pages and their stylesheet stay together, wherever html_dir points. The
# tree's html/static when the file names none (or does not exist).
stack_static_dir() {
    local dir
    dir=$(sed -n 's/^[[:space:]]*html_dir[[:space:]]*=[[:space:]]*//p' "$STACK_CONFIG" 2> /dev/null |
        tail -n 1 | sed 's/[[:space:]]*$//')
    case $dir in
    '') dir=$STACK_ROOT/html ;;
    /*) ;;
    *) dir=$(dirname "$STACK_CONFIG")/$dir ;;
    esac
    # Canonical: Apache matches <Directory> against the path as given.
    realpath -m "$dir/static"
}

# stack_one_of WORD LIST...: true when WORD is one of LIST.
stack_one_of() {
    local w=$1
    shift
    while [ $# -gt 0 ]; do
        [ "$1" = "$w" ] && return 0
        shift
    done
    return 1
}

# stack_driver: loads the driver of STACK_SERVER (scripts/stack/NAME.sh
# for NAME or NAME-VARIANT), unless it is loaded already.
stack_driver() {
    local name=${STACK_SERVER%%-*}
    if ! stack_one_of "$STACK_SERVER" "${STACK_SERVERS[@]}" || [ ! -r "$STACK_DRIVERS/$name.sh" ]; then
        stack_err "SERVER=$STACK_SERVER is not supported; use one of ${STACK_SERVERS[*]}"
        return 1
    fi
    [ "$STACK_DRIVER" = "$name" ] && return 0
    # shellcheck source=/dev/null # one of scripts/stack/*.sh
    . "$STACK_DRIVERS/$name.sh" || return 1
    STACK_DRIVER=$name
}

# stack_fcgi_choices: who may start the executables behind STACK_SERVER,
# one a line, the default first; more than one line: STACK_FCGI chooses.
stack_fcgi_choices() {
    local c
    stack_driver || return 1
    for c in $(stack_drv_fcgi); do
        printf '%s\n' "$c"
    done
}

# Writes the server's configuration under $STACK_RUN from its templates and
# checks it with the server itself, then runs one executable once. Removes
# what an earlier run left in $STACK_RUN.
stack_prepare() {
    local route p choices=()
    STACK_SERVER=${STACK_SERVER:-lighttpd}
    stack_driver || return 1
    mapfile -t choices < <(stack_fcgi_choices)
    STACK_FCGI=${STACK_FCGI:-${choices[0]}}
    if ! stack_one_of "$STACK_FCGI" "${choices[@]}"; then
        if [ ${#choices[@]} -gt 1 ]; then
            p=${choices[*]}
            stack_err "FCGI=$STACK_FCGI is not supported; use ${p// / or }"
        else
            stack_err "FCGI=$STACK_FCGI does not apply to SERVER=$STACK_SERVER" \
                "(it runs the executables with ${choices[0]})"
        fi
        return 1
    fi
    # mod_fcgid keeps two: a request that finds no process idle waits for
    # one in 1 s sleeps.
    if [ -z "${STACK_PROCS:-}" ]; then
        STACK_PROCS=1
        [ "$STACK_FCGI" = fcgid ] && STACK_PROCS=2
    fi
    STACK_WRITE_PROCS=${STACK_WRITE_PROCS:-$((STACK_PROCS > 4 ? STACK_PROCS : 4))}
    case $STACK_PORT in
    '' | *[!0-9]* | 0*)
        stack_err "port \"$STACK_PORT\" is not a number from 1 to 65535"
        return 1
        ;;
    esac
    if [ "$STACK_PORT" -gt 65535 ]; then
        stack_err "port $STACK_PORT is not a number from 1 to 65535"
        return 1
    fi
    for p in "PROCS=$STACK_PROCS" "WRITE_PROCS=$STACK_WRITE_PROCS"; do
        case ${p#*=} in
        [1-9] | [1-9][0-9]) ;;
        *)
            stack_err "$p: give 1 to 99 processes per route"
            return 1
            ;;
        esac
    done
    STACK_STATIC_DIR=${STACK_STATIC:-$(stack_static_dir)}
    for p in "$STACK_ROOT" "$STACK_BUILD" "$STACK_RUN" "$STACK_CONFIG" "$STACK_STATIC_DIR"; do
        stack_check_path "$p" || return 1
    done
    STACK_SCHEME=http
    if [ "${STACK_TLS:-}" = 1 ]; then
        STACK_SCHEME=https
        for p in "${STACK_TLS_CERT:-}" "${STACK_TLS_KEY:-}"; do
            stack_check_path "$p" || return 1
            [ -r "$p" ] || {
                stack_err "$p: no such certificate or key (stack_tls_cert makes them)"
                return 1
            }
        done
    fi
    stack_users || return 1
    STACK_EXEC_USER=$(id -un)
    STACK_EXEC_GROUP=$(id -gn)
    # What a server that drops root starts itself (mod_fcgid, CGI) runs as
    # its workers' user.
    if [ -n "$STACK_DROPS" ] && [ "$STACK_FCGI" != spawn-fcgi ]; then
        STACK_EXEC_USER=$STACK_USER
        STACK_EXEC_GROUP=$STACK_GROUP
    fi
    if [ "$(id -u)" -eq 0 ] && [ "$STACK_FCGI" = spawn-fcgi ] && [ -n "${STACK_ROUTES_USER:-}" ]; then
        stack_system_user "$STACK_ROUTES_USER" || return 1
        STACK_EXEC_USER=$STACK_ROUTES_USER
        STACK_EXEC_GROUP=$(id -gn "$STACK_ROUTES_USER") || return 1
    fi
    stack_drv_prog || return 1
    if [ "$STACK_FCGI" = spawn-fcgi ]; then
        STACK_SPAWN_FCGI=$(stack_find_prog spawn-fcgi) || {
            stack_err "spawn-fcgi is not installed (scripts/deps installs it)"
            return 1
        }
    fi
    for route in "${STACK_ROUTES[@]}"; do
        if [ ! -x "$STACK_BUILD/cgi-bin/$route.fcgi" ]; then
            stack_err "$STACK_BUILD/cgi-bin/$route.fcgi is missing: run make first"
            return 1
        fi
    done
    mkdir -p "$STACK_RUN/www" "$STACK_RUN/upload" || return 1
    rm -rf "$STACK_RUN"/*.sock "$STACK_RUN"/*.sock-[0-9]* "$STACK_RUN"/*.pid "$STACK_RUN/fcgid" \
        "$STACK_RUN/nginx-tmp" "$STACK_RUN"/*-error.log "$STACK_RUN"/ssl-cache*
    stack_drv_write || return 1
    if ! "${STACK_CHECK_CMD[@]}" > "$STACK_RUN/check.log" 2>&1 < /dev/null; then
        stack_err "${STACK_PROG##*/} refuses $STACK_CONF:"
        cat "$STACK_RUN/check.log" >&2
        return 1
    fi
    rm -f "$STACK_RUN/check.log"
    stack_grant || return 1
    stack_reachable || return 1
    stack_preflight
}

# When the server's workers run as another user, they must get through to
# $STACK_RUN (its sockets, its empty document root): a 0700 directory above
# it (a home, a mktemp -d) would turn every answer into a 403 or 502.
stack_reachable() {
    if [ "$STACK_EXEC_USER" != "$(id -un)" ] &&
        ! stack_as_exec_user test -x "$STACK_BUILD/cgi-bin/index.fcgi" -a -r "$STACK_CONFIG" 2> /dev/null; then
        stack_err "$STACK_EXEC_USER (the routes' user when started as root) cannot run" \
            "$STACK_BUILD/cgi-bin/index.fcgi or read $STACK_CONFIG: give the directories above" \
            "them o+x and the configuration o+r, or work elsewhere than in a private home"
        return 1
    fi
    [ -n "$STACK_DROPS" ] || return 0
    if ! setpriv --reuid="$STACK_USER" --regid="$STACK_GROUP" --clear-groups -- \
        test -x "$STACK_RUN/www" 2> /dev/null; then
        stack_err "$STACK_USER (the server's user when started as root) cannot get to $STACK_RUN:" \
            "give the directories above it o+x, or use a VAR elsewhere (make run VAR=/srv/fcgi-session)"
        return 1
    fi
    # Only the stylesheet is missing then: say so, and serve.
    if [ -d "$STACK_STATIC_DIR" ] &&
        ! setpriv --reuid="$STACK_USER" --regid="$STACK_GROUP" --clear-groups -- \
            test -x "$STACK_STATIC_DIR" 2> /dev/null; then
        stack_err "warning: $STACK_USER (the server's user when started as root) cannot get to" \
            "$STACK_STATIC_DIR: the pages are served without their stylesheet"
    fi
}

# Runs one executable once, as plain CGI and as the user it will run as, so
# that a configuration it refuses (or a store or secret that user cannot
# open) stops the start here with its own message: a server would only
# notice an executable that exits at once, and go on respawning one that is
# slower.
stack_preflight() {
    local rc=0
    stack_as_exec_user env SESSION_CONFIG="$STACK_CONFIG" GATEWAY_INTERFACE=CGI/1.1 \
        REQUEST_METHOD=OPTIONS SERVER_PROTOCOL=HTTP/1.1 SCRIPT_NAME=/ REQUEST_URI=/ \
        QUERY_STRING='' REMOTE_ADDR=127.0.0.1 "$STACK_BUILD/cgi-bin/index.fcgi" \
        < /dev/null > /dev/null 2> "$STACK_RUN/preflight.log" || rc=$?
    if [ "$rc" -ne 0 ]; then
        stack_err "$STACK_BUILD/cgi-bin/index.fcgi refuses to start (exit $rc, as $STACK_EXEC_USER):"
        cat "$STACK_RUN/preflight.log" >&2
        return 1
    fi
    rm -f "$STACK_RUN/preflight.log"
}

# The routes that update their session on most requests (STACK_WRITE_PROCS).
stack_is_write_route() {
    case $1 in
    views | prefs) return 0 ;;
    esac
    return 1
}

# Starts spawn-fcgi's processes for one route and records their pids. The
# socket is the server's user's alone when that is another user; with a
# routes' user of their own (STACK_ROUTES_USER), the socket is theirs and
# the server's group's (0660).
stack_spawn() {
    local route=$1 sock=$STACK_RUN/$1.sock pidfile=$STACK_RUN/$1.pid pid pids='' owner=() mode=0600
    local procs=$STACK_PROCS
    stack_is_write_route "$route" && procs=$STACK_WRITE_PROCS
    rm -f "$sock" "$pidfile"
    if [ -n "${STACK_EXEC_USER:-}" ] && [ "$STACK_EXEC_USER" != "$(id -un)" ]; then
        owner=(-u "$STACK_EXEC_USER" -g "$STACK_EXEC_GROUP" -U "$STACK_EXEC_USER" -G "$STACK_GROUP")
        mode=0660
    elif [ -n "${STACK_DROPS:-}" ]; then
        owner=(-U "$STACK_USER" -G "$STACK_GROUP")
    fi
    # Without STACK_LOG, its words on stderr stay on the terminal.
    SESSION_CONFIG=$STACK_CONFIG GLIBC_TUNABLES=$STACK_ROUTE_TUNABLES "$STACK_SPAWN_FCGI" -s "$sock" \
        "${owner[@]}" -M "$mode" -F "$procs" -P "$pidfile" -- "$STACK_BUILD/cgi-bin/$route.fcgi" \
        >> "${STACK_LOG:-/dev/null}" 2>> "${STACK_LOG:-/dev/stderr}" || {
        stack_err "spawn-fcgi could not start $route.fcgi"
        return 1
    }
    # spawn-fcgi writes one pid per line, the last without a newline.
    while read -r pid || [ -n "$pid" ]; do
        [ -n "$pid" ] && pids="$pids $pid"
    done < "$pidfile"
    STACK_ROUTE_PIDS[$route]=${pids# }
}

# The server's pid. bench/run switches between stacks by setting only
# STACK_LIGHTTPD_PID: when the two differ, that name was set last.
stack_server_pid() {
    if [ -n "${STACK_LIGHTTPD_PID:-}" ] && [ "$STACK_LIGHTTPD_PID" != "${STACK_SERVER_PID:-}" ]; then
        STACK_SERVER_PID=$STACK_LIGHTTPD_PID
    fi
    printf '%s\n' "${STACK_SERVER_PID:-}"
}

# Restarts every route of a spawn-fcgi stack whose process died (all of its
# processes, since they share one listening socket). Call it every second.
stack_supervise() {
    local route pid dead server
    server=$(stack_server_pid)
    if [ "${STACK_FCGI:-}" != spawn-fcgi ]; then
        # The server restarts its own; remember them in case it dies first.
        if stack_alive "$server"; then
            STACK_BACKEND_PIDS=$(stack_descendants "$server")
        fi
        return 0
    fi
    for route in "${STACK_ROUTES[@]}"; do
        dead=
        for pid in ${STACK_ROUTE_PIDS[$route]:-}; do
            stack_alive "$pid" || dead=$pid
        done
        [ -n "$dead" ] || continue
        stack_err "$route.fcgi (pid $dead) died; starting it again"
        # shellcheck disable=SC2086 # a list of pids
        stack_kill_wait ${STACK_ROUTE_PIDS[$route]} || true
        stack_spawn "$route" || return 1
    done
}

# Sends SIGTERM to the pids, waits up to STACK_KILL_WAIT_S (10) seconds,
# then SIGKILL. Fails if one needed SIGKILL.
stack_kill_wait() {
    local pid i left
    for pid in "$@"; do
        stack_alive "$pid" && kill -TERM "$pid" 2> /dev/null
    done
    for ((i = 0; i < ${STACK_KILL_WAIT_S:-10} * 10; i++)); do
        left=
        for pid in "$@"; do
            stack_alive "$pid" && left="$left $pid"
        done
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    stack_err "still running ${STACK_KILL_WAIT_S:-10} s after SIGTERM, killed:$left"
    for pid in $left; do
        kill -KILL "$pid" 2> /dev/null || true
    done
    return 1
}

# The server's own words on why it stopped, from its error log and stderr.
stack_server_log() {
    tail -n 15 "$STACK_ERRLOG" 2> /dev/null
    [ -n "${STACK_LOG:-}" ] && tail -n 5 "$STACK_LOG" 2> /dev/null
}

# Starts the stack; returns once it answers HTTP. Returns 2 when the port is
# taken (the caller may try another), 1 on any other failure (with the
# reason on stderr), leaving nothing running.
stack_start() {
    local route i status name=${STACK_PROG##*/} curl_tls=()
    if stack_port_open "$STACK_PORT"; then
        stack_err "port $STACK_PORT is taken: something already listens on $STACK_BIND:$STACK_PORT" \
            "(stop it, or choose another port with PORT=...)"
        return 2
    fi
    # A caller that wrote its own configuration (and STACK_CMD) skips
    # stack_prepare: its server's driver still says what a death at start
    # looks like.
    if [ -z "$STACK_DRIVER" ] && [ -n "${STACK_SERVER:-}" ]; then
        stack_driver || return 1
    fi
    STACK_ROUTE_PIDS=()
    STACK_URL=$STACK_SCHEME://$STACK_BIND:$STACK_PORT
    if [ "$STACK_FCGI" = spawn-fcgi ]; then
        for route in "${STACK_ROUTES[@]}"; do
            stack_spawn "$route" || {
                stack_stop > /dev/null 2>&1
                return 1
            }
        done
    fi
    # In a session of its own, so that a Ctrl-C reaches only the caller,
    # which stops the server in order (it would restart an executable
    # killed by the same Ctrl-C while it shuts down).
    if [ -n "${STACK_LOG:-}" ]; then
        setsid "${STACK_CMD[@]}" >> "$STACK_LOG" 2>&1 < /dev/null &
    else
        setsid "${STACK_CMD[@]}" < /dev/null &
    fi
    STACK_SERVER_PID=$!
    STACK_LIGHTTPD_PID=$STACK_SERVER_PID
    [ "$STACK_SCHEME" = https ] && curl_tls=(--cacert "$STACK_TLS_CERT")
    # lighttpd listens before it spawns the executables and answers only
    # after; a 404 for a path that is no route proves the whole start-up.
    for ((i = 0; i < 300; i++)); do
        if ! stack_alive "$STACK_SERVER_PID"; then
            wait "$STACK_SERVER_PID" 2> /dev/null
            STACK_SERVER_PID=
            STACK_LIGHTTPD_PID=
            stack_stop > /dev/null 2>&1
            if grep -qs 'Address already in use' "$STACK_ERRLOG" "${STACK_LOG:-/dev/null}"; then
                stack_err "port $STACK_PORT is taken ($name: Address already in use)"
                return 2
            fi
            stack_err "$name did not start; from $STACK_ERRLOG:"
            stack_server_log >&2
            return 1
        fi
        status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${curl_tls[@]}" \
            "$STACK_URL/.fcgi-session-ready" 2> /dev/null) || true
        if [ "$status" = 404 ]; then
            if [ -n "${STACK_DRV_START_DIED_RE:-}" ] && grep -qsE "$STACK_DRV_START_DIED_RE" "$STACK_ERRLOG"; then
                stack_err "an executable died at start; from $STACK_ERRLOG:"
                tail -n 15 "$STACK_ERRLOG" >&2
                stack_stop > /dev/null 2>&1
                return 1
            fi
            stack_supervise
            return 0
        fi
        sleep 0.05
    done
    stack_err "$name started but does not answer on $STACK_URL"
    stack_stop > /dev/null 2>&1
    return 1
}

# Stops everything stack_start started: the server (which stops the
# executables it started), then any process of its tree or executable still
# running, by pid. Fails when a process needed SIGKILL or the port still
# accepts connections.
stack_stop() {
    local rc=0 pids=() route server
    server=$(stack_server_pid)
    # shellcheck disable=SC2206 # a list of pids
    pids=($STACK_BACKEND_PIDS)
    STACK_BACKEND_PIDS=
    if [ -n "$server" ]; then
        if stack_alive "$server"; then
            mapfile -t -O ${#pids[@]} pids < <(stack_descendants "$server")
            # Apache stops its children in steps (SIGTERM every 2 s, SIGKILL
            # after 6 s) when they are slow to go: under mod_fcgid, requests
            # wait for a free process in 1 s sleeps. About 11 s in all.
            STACK_KILL_WAIT_S=20 stack_kill_wait "$server" || rc=1
        fi
        wait "$server" 2> /dev/null
        STACK_SERVER_PID=
        STACK_LIGHTTPD_PID=
    fi
    for route in "${!STACK_ROUTE_PIDS[@]}"; do
        # shellcheck disable=SC2206
        pids+=(${STACK_ROUTE_PIDS[$route]})
    done
    STACK_ROUTE_PIDS=()
    if [ ${#pids[@]} -gt 0 ]; then
        stack_kill_wait "${pids[@]}" || rc=1
    fi
    mapfile -t pids < <(stack_socket_holders)
    if [ ${#pids[@]} -gt 0 ]; then
        stack_err "still listening on a socket in $STACK_RUN, stopped now: ${pids[*]}"
        stack_kill_wait "${pids[@]}"
        rc=1
    fi
    rm -f "$STACK_RUN"/*.sock "$STACK_RUN"/*.sock-[0-9]* "$STACK_RUN"/*.pid
    if [ -n "${STACK_PORT:-}" ] && stack_port_open "$STACK_PORT"; then
        stack_err "something still listens on $STACK_BIND:$STACK_PORT"
        rc=1
    fi
    return $rc
}
