# shellcheck shell=bash disable=SC2034 # what it sets, scripts/stack.sh reads
# The nginx driver of scripts/stack.sh (which documents the functions every
# driver defines and the variables they set): SERVER=nginx, from
# nginx-conf/nginx.conf.in and fcgi-session.conf.in, with spawn-fcgi
# starting the executables. Started as root, its workers run as
# STACK_USER.

# nginx does not watch the executables: spawn-fcgi's, stack_supervise does.
STACK_DRV_START_DIED_RE=
STACK_DRV_DIED_RE=

stack_drv_fcgi() {
    echo spawn-fcgi
}

# nginx.conf's paths are unquoted.
stack_drv_check_path() {
    if [[ $1 == *' '* ]]; then
        stack_err "$1: a path with a space cannot go into nginx.conf"
        return 1
    fi
}

stack_drv_drops() {
    return 0
}

stack_drv_prog() {
    STACK_PROG=$(stack_find_prog nginx) || {
        stack_err "nginx is not installed (scripts/deps installs it)"
        return 1
    }
    STACK_CONF=$STACK_RUN/nginx.conf
    STACK_ERRLOG=$STACK_RUN/nginx-error.log
    STACK_CMD=("$STACK_PROG" -c "$STACK_CONF" -p "$STACK_RUN/" -e "$STACK_ERRLOG")
    STACK_CHECK_CMD=("${STACK_CMD[@]}" -t -q)
}

stack_drv_write() {
    # nginx makes its temporary directories, not their parent.
    mkdir -p "$STACK_RUN/nginx-tmp" &&
        stack_render "$STACK_ROOT/nginx-conf/fcgi-session.conf.in" "$STACK_RUN/fcgi-session.conf" &&
        stack_render "$STACK_ROOT/nginx-conf/nginx.conf.in" "$STACK_CONF"
}
