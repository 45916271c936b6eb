#!/usr/bin/env bash
# parallel: no (40 sessions must be stored within their 3 s max_age)
# Store map full (MDB_MAP_FULL) through the real stack, with the smallest
# map the configuration allows (64 KiB): a write that does not fit grows the
# map by doubling while nothing has expired, the other executables adopt the
# new size (MDB_MAP_RESIZED), and once sessions have expired a full map is
# met by purging them instead of growing it. Growth that is impossible (the
# disk is full) is test_exhaustion_disk.sh.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

MAX_AGE=3
start_stack lmdb_map_size=64K max_age=$MAX_AGE touch_after=0
store=$T_DIR/sessions

map_size() {
    mdb_stat -e "$store" | awk '/Map size:/ { print $3 }'
}

entries() {
    mdb_stat -s sessions "$store" | awk '/Entries:/ { print $2 }'
}

# burst N: N new clients each GET /views over one connection (no cookies),
# so N new sessions. Sets BURST_OK (how many answered 200) and BURST_BAD
# (the other statuses).
burst() {
    local args=() i
    for ((i = 0; i < $1; i++)); do
        args+=(-o /dev/null "$T_URL/views")
    done
    curl -s --max-time 60 -w '%{http_code}\n' "${args[@]}" > "$T_DIR/burst" 2> /dev/null
    BURST_OK=$(grep -c '^200$' "$T_DIR/burst")
    BURST_BAD=$(grep -v '^200$' "$T_DIR/burst" | sort | uniq -c | tr -s ' \n' ' ')
}

if ! command -v mdb_stat > /dev/null; then
    skip "map full: gc, growth" "mdb_stat (lmdb-utils) is not installed"
    done_testing
fi

is "$(map_size)" 65536 "a new store starts at lmdb_map_size (64 KiB)"

# Logged in before the growth: the login, prefs and session processes all
# mapped 64 KiB when they started.
login_json alice alice wonderland
status_is 200 "alice logs in"
post_json alice /prefs '{"theme":"dark"}'
status_is 200 "alice sets a preference before the map grows"

# ------------------------------------------------------------------ growth

# Nothing has expired yet, so nothing can be purged: the map must grow.
burst 40
is "$BURST_OK" 40 "40 new sessions on a 64 KiB map: all 200" || diag "other statuses: $BURST_BAD"
grown=$(map_size)
if [ "$grown" -gt 65536 ] && [ $((grown % 65536)) -eq 0 ] &&
    [ $((grown / 65536 & (grown / 65536 - 1))) -eq 0 ]; then
    ok "the map grew by doubling: 65536 -> $grown bytes"
else
    not_ok "the map grew by doubling: 65536 -> $grown bytes"
fi
size=$(stat -c %s "$store/data.mdb")
check "data.mdb grew past the first map ($size bytes)" test "$size" -gt 65536
is "$(entries)" 41 "every session was stored (40 new and alice's)"

# The executables that did not grow the map find it resized by another
# process, and must map the new size before they read or write.
post_json alice /prefs '{"lang":"fr"}'
status_is 200 "POST /prefs by another process after the growth: 200"
get_json alice /session
status_is 200 "GET /session after the growth: 200"
is "$(json .user.username)/$(json .prefs.theme)/$(json .prefs.lang)" alice/dark/fr \
    "GET /session: alice's session and both preferences survived the growth"
get alice /dashboard
status_is 200 "GET /dashboard after the growth: 200"
"$T_BUILD/sessctl" -c "$T_CONFIG" stats > "$T_DIR/stats" 2>&1
is "$?" 0 "sessctl stats after the growth" || diag "$(cat "$T_DIR/stats")"

# -------------------------------------------------------- gc before growth

# Once every session so far has expired, new ones fill the map until a
# write meets MDB_MAP_FULL: expired records must then be purged (then, or
# earlier, ahead of a full map) and the map must not grow. The 60-second
# periodic gc cannot be what purges them: it ran at the first request above
# and is not due again yet. The expiry index files a session under the next whole
# second after its death, hence the extra seconds.
sleep $((MAX_AGE + 2))
before=$(entries)
created=0 purged='' prev=$before grew=''
for ((round = 0; round < 60; round++)); do
    burst 10
    created=$((created + BURST_OK))
    [ "$BURST_OK" -eq 10 ] || break
    now=$(entries)
    if [ "$(map_size)" != "$grown" ]; then
        grew="map $(map_size) bytes after $created sessions, $now stored"
        break
    fi
    if [ "$now" -lt $((prev + 10)) ]; then
        purged="$prev + 10 new -> $now stored"
        break
    fi
    prev=$now
done
is "$BURST_OK" 10 "new sessions while expired ones fill the map: all 200" ||
    diag "other statuses: $BURST_BAD"
if [ -n "$purged" ] && [ -z "$grew" ]; then
    ok "expired sessions were purged instead of growing the map ($purged) after $created new sessions"
else
    not_ok "expired sessions were purged instead of growing the map after $created new sessions"
    diag "${grew:-no purge seen after $created new sessions; $before expired at the start}"
fi
is "$(map_size)" "$grown" "the map did not grow while expired sessions could make room"

# The store works on: a new session is written and read back.
get fresh /views
get fresh /views
is "$STATUS $BODY" '200 {"views":2}' "a new client's session is stored and read back"
check "mdb_stat -a reads every database" eval "mdb_stat -a \"$store\" > /dev/null 2>&1"

done_testing
