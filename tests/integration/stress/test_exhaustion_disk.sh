#!/usr/bin/env bash
# Disk full through the real stack: the store lives on a 1 MiB file system
# mounted by the test (tmpfs, or a loop-mounted ext4 image), which a filler
# file then fills. A write that cannot be stored is a 503 with a short
# message and no cookie, never a crash or a half-written store: the
# environment still reads and existing sessions still load. Purging expired
# sessions is a write too (LMDB copies pages on write), so on a full disk
# it goes only as far as free pages inside the file allow; once the filler
# is deleted, service comes back without restarting anything and gc purges
# every expired session.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

MNT=$T_DIR/disk
MOUNTED=

# Stops the stack before unmounting (its processes hold the store open),
# then the harness's own cleanup.
# shellcheck disable=SC2317 # run by the EXIT trap
disk_cleanup() {
    if [ -n "$T_STACK_UP" ]; then
        stack_stop > /dev/null 2>&1
        T_STACK_UP=
    fi
    if [ -n "$MOUNTED" ]; then
        umount "$MNT" 2> /dev/null || umount -l "$MNT" 2> /dev/null
        MOUNTED=
    fi
    t_cleanup
}
trap disk_cleanup EXIT

# Mounts a 1 MiB file system at $MNT, or sets NO_DISK to why not.
NO_DISK=
mount_small_disk() {
    local err
    mkdir -p "$MNT"
    if err=$(mount -t tmpfs -o size=1M,mode=0700 tmpfs "$MNT" 2>&1); then
        MOUNTED=tmpfs
        return 0
    fi
    if command -v mkfs.ext4 > /dev/null &&
        truncate -s 1M "$T_DIR/disk.img" 2> /dev/null &&
        mkfs.ext4 -q -F -m 0 "$T_DIR/disk.img" > /dev/null 2>&1 &&
        mount -o loop "$T_DIR/disk.img" "$MNT" 2> /dev/null; then
        MOUNTED=ext4
        chmod 0700 "$MNT"
        return 0
    fi
    NO_DISK="cannot mount a small file system here (tmpfs: ${err:-refused}; no loop-mounted ext4 either)"
    return 1
}

if ! mount_small_disk; then
    skip "disk full: 503, no corruption, recovery" "$NO_DISK"
    done_testing
fi
if ! command -v mdb_stat > /dev/null || ! command -v mdb_dump > /dev/null; then
    skip "disk full: 503, no corruption, recovery" "lmdb-utils is not installed"
    done_testing
fi
diag "store on a 1 MiB $MOUNTED file system"
store=$MNT/sessions

# How many sessions the store holds that have expired (sessctl stats).
expired_count() {
    "$T_BUILD/sessctl" -c "$T_CONFIG" stats 2> /dev/null |
        sed -n 's/^sessions .*(\([0-9]*\) expired.*/\1/p'
}

pids() {
    stack_children "$STACK_LIGHTTPD_PID" | sort -n | tr '\n' ' '
}

# -------------------------------------------- sessions that will expire

start_stack "store=lmdb:disk/sessions" lmdb_map_size=64K max_age=1 touch_after=0
args=()
for ((i = 0; i < 100; i++)); do
    args+=(-o /dev/null "$T_URL/views")
done
made=$(curl -s --max-time 60 -w '%{http_code}\n' "${args[@]}" 2> /dev/null | grep -c '^200$')
is "$made" 100 "100 short-lived sessions (max_age = 1) stored on the small disk"
stop_stack

# ------------------------------------------------------------ disk full

start_stack "store=lmdb:disk/sessions" lmdb_map_size=64K
# The expiry index files a session under the next whole second after its
# death: past that, every one of them counts as expired.
sleep 2
is "$(expired_count)" 100 "the 100 sessions have expired, not yet purged"
login_json alice alice wonderland
status_is 200 "alice logs in before the disk fills"
get_json counter /views
is "$STATUS $BODY" '200 {"views":1}' "a counter at 1 before the disk fills"
before=$(pids)

# Every free block goes to the filler: the store file can no longer grow.
dd if=/dev/zero of="$MNT/filler" bs=4096 > /dev/null 2>&1
avail=$(df -k --output=avail "$MNT" | tail -n 1 | tr -d ' ')
is "$avail" 0 "the file system is full (filler: $(stat -c %s "$MNT/filler") bytes)"

# New sessions until the store refuses them three times in a row (a
# refused commit may still have extended the file by a few pages, which
# the next one can use), alternating JSON clients and browsers. The first
# refusal of each kind is kept for the checks below.
stored=0 streak=0 left='' others=()
for ((i = 0; i < 400 && streak < 3; i++)); do
    if ((i % 2)); then
        kind=html
        get - /views -H 'Accept: text/html'
    else
        kind=json
        get_json - /views
    fi
    case $STATUS in
    200)
        stored=$((stored + 1))
        streak=0
        ;;
    503)
        streak=$((streak + 1))
        [ -n "$left" ] || left=$(expired_count)
        if [ ! -e "$T_DIR/refused.$kind" ]; then
            cp "$T_DIR/headers" "$T_DIR/refused.$kind"
            printf '%s' "$BODY" > "$T_DIR/refused-body.$kind"
        fi
        ;;
    *)
        others+=("$STATUS")
        streak=0
        ;;
    esac
done
diag "$stored new sessions stored on the full disk before three refusals in a row"
is "$streak" 3 "new sessions on the full disk are refused (503)"
is "${others[*]}" "" "no status other than 200 and 503 while the disk is full"
diag "expired sessions left at the first 503: ${left:-?} of 100"

# refused KIND: the kept first refusal of a kind as the last response.
refused() {
    STATUS=000
    BODY=
    : > "$T_DIR/headers"
    [ -e "$T_DIR/refused.$1" ] || return 0
    STATUS=503
    cp "$T_DIR/refused.$1" "$T_DIR/headers"
    BODY=$(cat "$T_DIR/refused-body.$1")
}
refused json
status_is 503 "a JSON client's new session on the full disk: 503"
is "$BODY" '{"msg":"Session store unavailable; try again shortly"}' "503: a short JSON message"
no_set_cookie "503: no Set-Cookie"
no_store_is_set "503: Cache-Control: no-store"
refused html
status_is 503 "a browser's new session on the full disk: 503"
like "$(hdr Content-Type)" '^text/html' "503 for a browser: an HTML page"
like "$(text)" 'Session store unavailable' "503 for a browser: the short message"
no_set_cookie "503 for a browser: no Set-Cookie"

login_json bob bob builder
status_is 503 "a login on the full disk: 503"
no_set_cookie "a refused login sets no cookie"

# Nothing written half: the environment reads end to end, and what was
# acknowledged before is still there.
check "mdb_stat -a reads the environment on the full disk" \
    eval "mdb_stat -a \"$store\" > /dev/null 2>&1"
check "mdb_dump -a reads every record on the full disk" \
    eval "mdb_dump -a \"$store\" > /dev/null 2>&1"
get_json alice /session
status_is 200 "alice's session still loads on the full disk"
is "$(json .user.username)" alice "GET /session still knows alice"

# Requests answered 503 above were the point of the test.
bad=()
for b in "${T_BAD_STATUS[@]}"; do
    [[ $b == "503 for "* ]] || bad+=("$b")
done
T_BAD_STATUS=("${bad[@]}")

# ------------------------------------------------------------- recovery

rm -f "$MNT/filler"
get_json - /views
status_is 200 "space freed: a new session is stored again"
is "$(set_cookie_value | cut -c 1-4)" "s%3A" "the new session gets its cookie"
get_json counter /views
is "$STATUS $BODY" '200 {"views":2}' "the counter goes on from its acknowledged value"
login_json bob bob builder
status_is 200 "bob logs in once space is back"
is "$(pids)" "$before" "no executable was restarted"
"$T_BUILD/sessctl" -c "$T_CONFIG" gc > /dev/null 2>&1
is "$?" 0 "sessctl gc runs once space is back"
is "$(expired_count)" 0 "and no expired session is left"
check "mdb_stat -a reads the environment after recovery" \
    eval "mdb_stat -a \"$store\" > /dev/null 2>&1"

done_testing
