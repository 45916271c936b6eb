#!/usr/bin/env bash
# sessctl against a running stack, seen over HTTP: useradd then the login
# works, passwd changes which password works (ending the sessions unless
# --keep-sessions: test_devices.sh), revoke ends one session,
# revoke --user ends all of a user's at once, userdel ends the account and
# its sessions; listings, gc and stats answer; exit codes per sysexits.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

start_stack

# sessctl ARGS... [< input]: sets OUT, ERR and RC.
sessctl() {
    OUT=$("$T_BUILD/sessctl" -c "$T_CONFIG" "$@" 2> "$T_DIR/sessctl.err")
    RC=$?
    ERR=$(cat "$T_DIR/sessctl.err")
}

# --- accounts
sessctl useradd frank --role editor <<< 'frank secret'
is "$RC" 0 "useradd frank --role editor: exit 0"
unlike "$OUT$ERR" 'frank secret' "useradd never prints the password"
login_json a frank 'frank secret'
status_is 200 "frank logs in with the password given on stdin"
is "$(json -c .user)" '{"username":"frank","role":"editor"}' "frank's role is editor"
sessctl users
like "$OUT" $'(^|\n)frank[ \t]+editor' "users lists frank and his role"
like "$OUT" $'(^|\n)alice[ \t]+admin' "users lists alice"
sessctl useradd frank <<< 'other'
is "$RC" 65 "useradd of an existing name: 65"
# Two creations of one name at once: both pass the first look before the
# slow hash; the write decides, and only one account is made.
for k in 1 2 3 4; do
    "$T_BUILD/sessctl" -c "$T_CONFIG" useradd "twin$k" <<< "first $k" > /dev/null 2>&1 &
    p1=$!
    "$T_BUILD/sessctl" -c "$T_CONFIG" useradd "twin$k" <<< "second $k" > /dev/null 2>&1 &
    p2=$!
    rc1=0 rc2=0
    wait "$p1" || rc1=$?
    wait "$p2" || rc2=$?
    is "$(printf '%s\n' "$rc1" "$rc2" | sort -n | tr '\n' ' ')" "0 65 " \
        "two useradd twin$k at once: one succeeds, the other exits 65"
done
sessctl useradd 'bad name' <<< 'x'
is "$RC" 65 "useradd of an invalid name: 65"
sessctl useradd '<b>x' <<< 'x'
is "$RC" 65 "useradd of a name with markup: 65"

sessctl passwd frank --keep-sessions <<< 'frank new'
is "$RC" 0 "passwd frank --keep-sessions: exit 0"
fresh_addr
T_FROM=$T_ADDR login_json - frank 'frank secret'
status_is 403 "the old password no longer works"
login_json b frank 'frank new'
status_is 200 "the new password works"
get_json a /session
status_is 200 "passwd --keep-sessions leaves open sessions open"
sessctl passwd nobody <<< 'x'
is "$RC" 67 "passwd of an unknown user: 67"

# --- sessions, show, revoke
get anon /views
sessctl sessions --user frank
is "$RC" 0 "sessions --user frank: exit 0"
is "$(grep -c frank <<< "$OUT")" 2 "frank has two sessions listed"
id_a=$(cookie_id "$(jar_sid a)")
like "$OUT" "${id_a:0:8}" "the listing shows id prefixes"
unlike "$OUT" "$id_a" "the listing does not show whole ids"
sessctl sessions
like "$OUT" "$(cookie_id "$(jar_sid anon)" | cut -c1-8)" "sessions lists the anonymous one too"
sessctl show "${id_a:0:8}"
is "$RC" 0 "show PREFIX: exit 0"
like "$OUT" '"username": *"frank"' "show prints the session's data"
like "$OUT" '"originalMaxAge": *1800000' "show prints the cookie as express-session stores it"
sessctl revoke "$id_a"
is "$RC" 0 "revoke ID: exit 0"
get_json a /session
status_is 401 "the revoked session is gone"
get_json b /session
status_is 200 "frank's other session lives"
sessctl revoke "$id_a"
is "$RC" 1 "revoke of a gone session: 1"
sessctl revoke ab
is "$RC" 64 "revoke with a too short prefix: 64"

login_json c frank 'frank new'
login_json d alice wonderland
sessctl revoke --user frank
is "$RC" 0 "revoke --user frank: exit 0"
like "$OUT$ERR" '2' "revoke --user says how many (2)"
get_json b /session
status_is 401 "revoke --user: frank's first session is gone"
get_json c /session
status_is 401 "revoke --user: frank's second session is gone"
get_json d /session
is "$(json .user.username)" alice "revoke --user frank leaves alice alone"
get_json anon /session
status_is 200 "and the anonymous session"

# A crafted owners index: an "id" of 400 bytes under frank's name, which
# once overflowed a 136-byte stack buffer and aborted sessctl. Now the
# entry is reported and skipped, and frank's real session still ends.
store_dir=$(sed -n 's/^store[ \t]*=[ \t]*lmdb://p' "$T_CONFIG" | tail -n 1)
case $store_dir in
'' | /*) ;;
*) store_dir=$(dirname "$T_CONFIG")/$store_dir ;;
esac
if [ -n "$store_dir" ] && command -v mdb_load > /dev/null; then
    login_json c frank 'frank new'
    printf 'VERSION=3\nformat=bytevalue\ndatabase=owners\ntype=btree\ndupsort=1\nHEADER=END\n %s\n %s\nDATA=END\n' \
        "$(printf frank | od -An -v -tx1 | tr -d ' \n')" \
        "$(head -c 400 /dev/zero | tr '\0' Z | od -An -v -tx1 | tr -d ' \n')" |
        mdb_load -s owners "$store_dir"
    sessctl revoke --user frank
    is "$RC" 0 "revoke --user past a 400-byte id in the owners index: exit 0"
    like "$ERR" 'warning: .*1 entry .*no possible session id' "sessctl reports the corrupt entry"
    like "$OUT" 'revoked 1 session of frank' "and ends frank's real session"
    get_json c /session
    status_is 401 "frank's session is gone"
else
    skip "a corrupt owners index" "not an LMDB store, or no mdb_load (lmdb-utils)"
fi

login_json e frank 'frank new'
sessctl userdel frank
is "$RC" 0 "userdel frank: exit 0"
get_json e /session
status_is 401 "userdel ends the user's sessions"
fresh_addr
T_FROM=$T_ADDR login_json - frank 'frank new'
status_is 403 "a deleted user cannot log in"
sessctl users
unlike "$OUT" 'frank' "users no longer lists frank"
sessctl userdel frank
is "$RC" 67 "userdel of an unknown user: 67"

# --- gc, stats, usage, configuration
sessctl gc
is "$RC" 0 "gc: exit 0"
like "$OUT" '^purged [0-9]+ expired sessions? in ' "gc says how many it purged"
# Dead sessions amid live ones, more than the routes' own gc batch, while
# the stack runs: gc takes exactly those, and their owners' index entries.
# counts: sessions stored, of them expired, owners with sessions (stats).
counts() {
    awk '/^sessions/ { t = $2; d = substr($3, 2) } /^users/ { o = $4 } END { print t, d, o }' <<< "$OUT"
}
gen=$T_BUILD/bench/gen_sessions
if [ -x "$gen" ]; then
    sessctl stats
    read -r total dead owners <<< "$(counts)"
    "$gen" -n 100 -x 700 -k 0 "$T_CONFIG" > /dev/null
    sessctl stats
    is "$(counts)" "$((total + 800)) $((dead + 700)) $((owners + 800))" \
        "stats counts 100 live and 700 dead sessions more"
    sessctl gc
    like "$OUT" "^purged $((dead + 700)) expired sessions in " "gc purges the dead ones"
    sessctl stats
    is "$(counts)" "$((total - dead + 100)) 0 $((owners + 100))" \
        "gc leaves the live ones and their owners"
    get_json d /session
    is "$(json .user.username)" alice "alice's session outlives gc"
else
    skip "gc of 700 dead sessions" "no $gen (make check builds it)"
fi
sessctl stats
is "$RC" 0 "stats: exit 0"
like "$OUT" 'session' "stats reports sessions"
"$T_BUILD/sessctl" --help > "$T_DIR/help" 2>&1
is "$?" 0 "--help: exit 0"
like "$(cat "$T_DIR/help")" 'useradd' "--help lists the commands"
sessctl no-such-command
is "$RC" 64 "an unknown command: 64"
like "$ERR" '^sessctl:' "messages begin with sessctl:"
printf 'max_agee = 1\n' > "$T_DIR/bad.conf"
"$T_BUILD/sessctl" -c "$T_DIR/bad.conf" users > /dev/null 2> "$T_DIR/bad.err"
is "$?" 78 "a bad configuration: 78"
like "$(cat "$T_DIR/bad.err")" 'bad\.conf:1:' "a bad configuration: FILE:LINE"

# --- ids are base64url: one may start with '-' and is still an id
dash_id=
for ((i = 0; i < 400; i++)); do
    get "dash$i" /views
    id=$(cookie_id "$(set_cookie_value)")
    if [ "${id:0:1}" = - ]; then
        dash_id=$id
        break
    fi
done
if [ -n "$dash_id" ]; then
    sessctl show "$dash_id"
    is "$RC" 0 "show of an id starting with '-' ($dash_id): exit 0"
    sessctl revoke -- "$dash_id"
    is "$RC" 0 "revoke -- ID: exit 0"
    sessctl show "$dash_id"
    is "$RC" 1 "the session revoked with -- is gone"
else
    skip "show of an id starting with '-'" "no such id in 400 sessions"
fi
sessctl show --bogus
is "$RC" 64 "an unknown --option is a usage error (64)"
# An id may even start with "--": one of 4096 does.
sessctl show --qMjhetIDA5NxUFEFHxhqWpxUQH4MZx6kV6dPiErXk
is "$RC" 1 "an id starting with -- is an id, not an option (no such session: 1)"

done_testing
