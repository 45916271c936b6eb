#!/usr/bin/env bash
# Exhaustion at start-up: an executable that cannot use its store directory
# or read its secret exits 78 (EX_CONFIG) with a message naming the path,
# and answers nothing; the reader slot of a process killed inside an LMDB
# read transaction is reclaimed when an executable or `sessctl gc` opens the
# store, while the slots of live readers stay. The executables run here as
# plain CGI, which opens the store exactly as the FastCGI start does.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CGI_RC=
CGI_OUT=
CGI_ERR=

# run_cgi CONFIG [USER]: GET /views as plain CGI with the configuration,
# as USER when given (setpriv). Sets CGI_RC, CGI_OUT (stdout), CGI_ERR.
run_cgi() {
    local config=$1 user=${2:-} as=()
    if [ -n "$user" ]; then
        as=(setpriv --reuid="$user" --regid="$(id -gn "$user")" --clear-groups --)
    fi
    CGI_RC=0
    SESSION_CONFIG=$config GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET \
        SERVER_PROTOCOL=HTTP/1.1 SCRIPT_NAME=/views REQUEST_URI=/views QUERY_STRING='' \
        REMOTE_ADDR=127.0.0.1 HTTP_ACCEPT=application/json \
        "${as[@]}" "$T_BUILD/cgi-bin/views.fcgi" < /dev/null > "$T_DIR/cgi.out" \
        2> "$T_DIR/cgi.err" || CGI_RC=$?
    CGI_OUT=$(tr -d '\r' < "$T_DIR/cgi.out")
    CGI_ERR=$(cat "$T_DIR/cgi.err")
}

# refuses NAME PATH: the last run_cgi exited 78, named PATH on stderr and
# wrote no response.
refuses() {
    is "$CGI_RC" 78 "$1: exit status 78" || diag "stderr: $CGI_ERR"
    if [[ $CGI_ERR == *"$2"* ]]; then
        ok "$1: the message names $2"
    else
        not_ok "$1: the message names $2"
        diag "stderr: $CGI_ERR"
    fi
    is "$CGI_OUT" "" "$1: no response written"
}

# sessctl_refuses NAME CONFIG PATH: sessctl exits 78 naming PATH too.
sessctl_refuses() {
    local rc=0 err
    err=$("$T_BUILD/sessctl" -c "$2" gc 2>&1 > /dev/null) || rc=$?
    if [ "$rc" -eq 78 ] && [[ $err == *"$3"* ]]; then
        ok "$1: sessctl gc exits 78 naming $3"
    else
        not_ok "$1: sessctl gc exits 78 naming $3"
        diag "exit $rc: $err"
    fi
}

stack_secret "$T_DIR/secret" || bail "cannot write $T_DIR/secret"
html=html_dir=$T_ROOT/html

# ---------------------------------------------------------------- secret

t_config "$T_DIR/nosecret.conf" secret_file=keys/secret store=lmdb:st-nosecret "$html"
run_cgi "$T_DIR/nosecret.conf"
refuses "missing secret file" "$T_DIR/keys/secret"
sessctl_refuses "missing secret file" "$T_DIR/nosecret.conf" "$T_DIR/keys/secret"

# ----------------------------------------------------------------- store

# Root may write anywhere, so the first case needs no other user: no
# directory can be made below a regular file.
: > "$T_DIR/plain-file"
t_config "$T_DIR/underfile.conf" secret_file=secret store=lmdb:plain-file/sessions "$html"
run_cgi "$T_DIR/underfile.conf"
refuses "store below a regular file" "$T_DIR/plain-file/sessions"
sessctl_refuses "store below a regular file" "$T_DIR/underfile.conf" "$T_DIR/plain-file/sessions"

# The other cases need a user without write access: as root, `nobody`
# through setpriv; otherwise ourselves, with the directory made read-only.
other=
if [ "$(id -u)" -eq 0 ]; then
    if command -v setpriv > /dev/null && id nobody > /dev/null 2>&1; then
        other=nobody
    fi
else
    other=self
fi
if [ -z "$other" ]; then
    for what in "read-only store directory" "store files of another user" "unreadable secret"; do
        skip "$what: exit 78 naming the path" "running as root without setpriv or user nobody"
    done
else
    user=
    if [ "$other" = nobody ]; then
        user=nobody
        # The other user must reach the configuration and the secret.
        chmod 0711 "$T_DIR"
        mkdir -p "$T_DIR/as-nobody"
        cp "$T_DIR/secret" "$T_DIR/as-nobody/secret"
        chown nobody "$T_DIR/as-nobody/secret"
        chmod 0755 "$T_DIR/as-nobody"
    else
        mkdir -p "$T_DIR/as-nobody"
        cp "$T_DIR/secret" "$T_DIR/as-nobody/secret"
    fi
    base=$T_DIR/as-nobody

    # A store directory the user may read but not write.
    mkdir -p "$base/ro-store"
    [ "$other" = self ] && chmod 0500 "$base/ro-store"
    t_config "$base/ro.conf" secret_file=secret store=lmdb:ro-store "$html"
    chmod 0644 "$base/ro.conf"
    run_cgi "$base/ro.conf" "$user"
    refuses "read-only store directory" "$base/ro-store"

    # A writable directory holding an environment that belongs to someone
    # else (made by root, or made read-only): mdb_env_open fails.
    t_config "$base/foreign.conf" secret_file=secret store=lmdb:foreign-store "$html"
    chmod 0644 "$base/foreign.conf"
    "$T_BUILD/sessctl" -c "$base/foreign.conf" gc > /dev/null 2>&1
    if [ "$other" = nobody ]; then
        chown nobody "$base/foreign-store"
    else
        chmod 0400 "$base/foreign-store"/*.mdb
    fi
    run_cgi "$base/foreign.conf" "$user"
    refuses "store files of another user" "$base/foreign-store"

    # A secret file the user cannot read (root's, or made unreadable).
    cp "$T_DIR/secret" "$base/root-secret"
    [ "$other" = self ] && chmod 0000 "$base/root-secret"
    t_config "$base/secret.conf" secret_file=root-secret store=lmdb:secret-store "$html"
    chmod 0644 "$base/secret.conf"
    run_cgi "$base/secret.conf" "$user"
    refuses "unreadable secret" "$base/root-secret"
    # Let the cleanup remove what was made read-only.
    [ "$other" = self ] && chmod -R u+rwx "$base"
fi

# ----------------------------------------------------- stale reader slots

readers() {
    mdb_stat -r "$T_DIR/sessions" 2> /dev/null | awk 'NR > 2 { print $1 }' | tr '\n' ' '
}

# Starts hold_reader; sets HOLD_PID once it holds its read transaction.
start_reader() {
    local line i
    : > "$T_DIR/reader.$1"
    "$T_DIR/hold_reader" "$T_DIR/sessions" > "$T_DIR/reader.$1" 2>&1 &
    HOLD_PID=$!
    for ((i = 0; i < 100; i++)); do
        line=
        read -r line < "$T_DIR/reader.$1"
        [ "$line" = "reading $HOLD_PID" ] && return 0
        stack_alive "$HOLD_PID" || break
        sleep 0.05
    done
    bail "hold_reader did not start: $(cat "$T_DIR/reader.$1")"
}

# kill_reader PID: SIGKILL, as the crash of a process inside a read txn.
kill_reader() {
    kill -KILL "$1"
    wait "$1" 2> /dev/null
}

if ! command -v mdb_stat > /dev/null; then
    skip "stale reader slots are reclaimed" "mdb_stat (lmdb-utils) is not installed"
elif ! "${CC:-cc}" -o "$T_DIR/hold_reader" "$T_ROOT/tests/integration/hold_reader.c" -llmdb \
    2> "$T_DIR/cc.err"; then
    skip "stale reader slots are reclaimed" "cannot build hold_reader: $(head -n 1 "$T_DIR/cc.err")"
else
    t_config "$T_DIR/good.conf" secret_file=secret store=lmdb:sessions "$html"
    "$T_BUILD/sessctl" -c "$T_DIR/good.conf" gc > /dev/null ||
        bail "sessctl gc cannot create the store"

    # A live reader keeps the environment open throughout: LMDB resets the
    # whole reader table when one process opens it alone, which would hide
    # whether mdb_reader_check ran.
    start_reader live
    live=$HOLD_PID

    start_reader dead1
    dead1=$HOLD_PID
    kill_reader "$dead1"
    like "$(readers)" "(^| )$dead1 " "mdb_stat -r lists the slot of killed reader $dead1"

    run_cgi "$T_DIR/good.conf"
    is "$CGI_RC" 0 "GET /views as CGI with a stale slot: exit 0" || diag "stderr: $CGI_ERR"
    like "$CGI_OUT" '^Status: 200' "GET /views as CGI with a stale slot: 200"
    unlike "$(readers)" "(^| )$dead1 " "opening the store (views.fcgi) freed the stale slot"
    like "$(readers)" "(^| )$live " "the live reader's slot stays"

    start_reader dead2
    dead2=$HOLD_PID
    kill_reader "$dead2"
    like "$(readers)" "(^| )$dead2 " "mdb_stat -r lists the slot of killed reader $dead2"
    "$T_BUILD/sessctl" -c "$T_DIR/good.conf" gc > "$T_DIR/gc.out" 2>&1
    is "$?" 0 "sessctl gc with a stale slot: exit 0" || diag "$(cat "$T_DIR/gc.out")"
    unlike "$(readers)" "(^| )$dead2 " "sessctl gc freed the stale slot"
    like "$(readers)" "(^| )$live " "the live reader's slot stays"

    kill "$live"
    wait "$live" 2> /dev/null
fi

done_testing
