# shellcheck shell=bash disable=SC2034 # what it sets, scripts/stack.sh reads
# The Apache driver of scripts/stack.sh (which documents the functions
# every driver defines and the variables they set), from
# apache-conf/apache.conf.in, one configuration for three ways to run the
# executables, picked with -D:
#   SERVER=apache        mod_proxy_fcgi, spawn-fcgi starts them (PROXY_FCGI)
#   SERVER=apache-fcgid  mod_fcgid starts them (FCGID)
#   SERVER=apache-cgi    mod_cgid, plain CGI (CGI)
# Started as root, its workers (and the executables it starts itself) run
# as STACK_USER: Apache refuses to serve as root.

# mod_fcgid's words, in Apache's error log, for an executable that died.
STACK_DRV_START_DIED_RE=
STACK_DRV_DIED_RE='mod_fcgid: process .*(unexpected signal|possible coredump|return code: [1-9])'

stack_drv_fcgi() {
    case $STACK_SERVER in
    apache-fcgid) echo fcgid ;;
    apache-cgi) echo cgi ;;
    *) echo spawn-fcgi ;;
    esac
}

stack_drv_check_path() {
    return 0
}

stack_drv_drops() {
    return 0
}

# Apache's module directory: Debian's, or another distribution's.
stack_apache_modules() {
    local d
    for d in /usr/lib/apache2/modules /usr/lib64/httpd/modules /usr/lib/httpd/modules \
        /usr/libexec/apache2; do
        if [ -f "$d/mod_proxy.so" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

stack_drv_prog() {
    local mode
    if ! STACK_PROG=$(stack_find_prog apache2) && ! STACK_PROG=$(stack_find_prog httpd); then
        stack_err "apache2 is not installed (scripts/deps installs it)"
        return 1
    fi
    STACK_APACHE_MODULES=$(stack_apache_modules) || {
        stack_err "Apache's modules (mod_proxy.so) are not installed (scripts/deps installs apache2)"
        return 1
    }
    case $STACK_FCGI in
    spawn-fcgi) mode=PROXY_FCGI ;;
    fcgid) mode=FCGID ;;
    cgi) mode=CGI ;;
    esac
    if [ "$mode" = FCGID ] && [ ! -f "$STACK_APACHE_MODULES/mod_fcgid.so" ]; then
        stack_err "mod_fcgid is not installed (scripts/deps installs libapache2-mod-fcgid)"
        return 1
    fi
    STACK_CONF=$STACK_RUN/apache.conf
    STACK_ERRLOG=$STACK_RUN/apache-error.log
    STACK_CMD=("$STACK_PROG" -f "$STACK_CONF" -DFOREGROUND -D "$mode")
    [ "${STACK_TLS:-}" = 1 ] && STACK_CMD+=(-D TLS)
    STACK_CHECK_CMD=("${STACK_CMD[@]}" -t)
}

stack_drv_write() {
    local name
    # mod_cgid gives CGI programs what PassEnv names; mod_fcgid starts its
    # processes with FcgidInitialEnv alone. Apache itself reads the values
    # (${NAME}) from its environment.
    while read -r name; do
        if [ "$STACK_FCGI" = fcgid ]; then
            # shellcheck disable=SC2016 # ${NAME} is Apache's to expand
            printf 'FcgidInitialEnv %s "${%s}"\n' "$name" "$name"
        else
            printf 'PassEnv %s\n' "$name"
        fi
    done < <(stack_env_names) > "$STACK_RUN/apache-env.conf" &&
        stack_render "$STACK_ROOT/apache-conf/apache.conf.in" "$STACK_CONF"
}
