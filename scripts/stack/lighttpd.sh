# shellcheck shell=bash disable=SC2034 # what it sets, scripts/stack.sh reads
# The lighttpd driver of scripts/stack.sh (which documents the functions
# every driver defines and the variables they set):
#   SERVER=lighttpd      mod_fastcgi; lighttpd starts the executables
#                        (bin-path, the default) or spawn-fcgi does
#   SERVER=lighttpd-cgi  mod_cgi, plain CGI
# from the templates in lighttpd-conf/. lighttpd keeps the invoking user,
# root included, as it always did here.

# Its words, in its error log, for an executable that died: at start (then
# the start fails), and while serving.
STACK_DRV_START_DIED_RE='child exited|spawning gw failed'
STACK_DRV_DIED_RE='child (exited|signalled)'

stack_drv_fcgi() {
    case $STACK_SERVER in
    lighttpd-cgi) echo cgi ;;
    *) echo lighttpd spawn-fcgi ;;
    esac
}

stack_drv_check_path() {
    return 0
}

stack_drv_drops() {
    return 1
}

stack_drv_prog() {
    STACK_PROG=$(stack_find_prog lighttpd) || {
        stack_err "lighttpd is not installed (scripts/deps installs it)"
        return 1
    }
    STACK_CONF=$STACK_RUN/lighttpd.conf
    STACK_ERRLOG=$STACK_RUN/lighttpd-error.log
    STACK_CMD=("$STACK_PROG" -D -f "$STACK_CONF")
    STACK_CHECK_CMD=("$STACK_PROG" -tt -f "$STACK_CONF")
}

stack_drv_write() {
    local name
    case $STACK_FCGI in
    lighttpd) stack_render "$STACK_ROOT/lighttpd-conf/lighttpd-fcgi-bin-path.conf.in" "$STACK_CONF" ;;
    spawn-fcgi) stack_render "$STACK_ROOT/lighttpd-conf/lighttpd-spawn-fcgi.conf.in" "$STACK_CONF" ;;
    cgi)
        # lighttpd gives CGI programs none of its own environment.
        {
            printf 'setenv.add-environment = (\n'
            while read -r name; do
                printf '    "%s" => env.%s,\n' "$name" "$name"
            done < <(stack_env_names)
            printf ')\n'
        } > "$STACK_RUN/lighttpd-env.conf" &&
            stack_render "$STACK_ROOT/lighttpd-conf/lighttpd-cgi.conf.in" "$STACK_CONF"
        ;;
    esac
}
