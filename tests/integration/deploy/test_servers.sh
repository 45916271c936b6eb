#!/usr/bin/env bash
# The HTTP contract behind every web server we ship a configuration for:
# the route tests (routes/test_index.sh ... test_devices.sh, test_bad_input.sh;
# /devices/revoke is the one path with a slash; test_static.sh, the
# stylesheet each configuration serves from html/static/) run again with
# TEST_SERVER set to each of lighttpd-cgi, apache (mod_proxy_fcgi and
# spawn-fcgi), apache-fcgid, apache-cgi and nginx, each starting that real
# server from its template on a free loopback port (lighttpd itself is the
# default of every other run). Their results are nested here, named by
# server; after each server, no process of its runs may be left.
#
# TEST_SERVERS="apache nginx" picks servers (under SANITIZE=1, lighttpd-cgi
# and nginx unless told); TEST_CONTRACT="views login" picks route tests.
# About 45 s per server, twice that under SANITIZE=1:
# timeout: 1500
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Under SANITIZE=1, one CGI and one FastCGI server besides lighttpd: the
# executables run the same code behind each FastCGI server, and the normal
# pass has already run the whole matrix.
all_servers="lighttpd-cgi apache apache-fcgid apache-cgi nginx"
[ "${SANITIZE:-}" = 1 ] && all_servers="lighttpd-cgi nginx"
read -r -a servers <<< "${TEST_SERVERS:-$all_servers}"
read -r -a contract <<< "${TEST_CONTRACT:-index login logout profile dashboard session views prefs devices bad_input static}"

# The processes of one server's runs: every one of them (the server, its
# workers, spawn-fcgi's and mod_fcgid's executables) names a path under the
# runs' own TMPDIR in its command line or its environment.
leftovers() {
    local dir=$1 p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$BASHPID" ] && continue
        if grep -qsF "$dir" "$p/cmdline" "$p/environ" 2> /dev/null; then
            printf '%s %s\n' "${p#/proc/}" "$(tr '\0' ' ' < "$p/cmdline" 2> /dev/null | head -c 120)"
        fi
    done
}

# run_contract SERVER TEST: one route test behind one server, its TAP
# nested (indented, each line named by server and file) and one line here
# for the whole file.
run_contract() {
    local server=$1 name=test_$2.sh out=$T_DIR/$1.$2.tap rc=0 passed failed
    TEST_SERVER=$server TMPDIR=$T_DIR/$server timeout -k 10 "${TEST_TIMEOUT_S:-300}" \
        bash "$T_ROOT/tests/integration/routes/$name" > "$out" 2>&1 < /dev/null || rc=$?
    sed -E -e "s/^(not ok|ok) ([0-9]+) - /\\1 \\2 - $server $name: /" -e 's/^/    /' "$out"
    passed=$(grep -cE '^ok ' "$out")
    failed=$(grep -cE '^not ok ' "$out")
    if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
        ok "$server: $name ($passed passed)"
    else
        not_ok "$server: $name ($passed passed, $failed failed, exit $rc)"
        [ "$failed" -eq 0 ] && diag "$(tail -n 15 "$out")"
    fi
}

# A server that runs the executables as www-data (Apache started as root)
# must get through to each run's directory.
chmod 711 "$T_DIR"
for server in "${servers[@]}"; do
    mkdir -p "$T_DIR/$server" && chmod 711 "$T_DIR/$server"
    for t in "${contract[@]}"; do
        run_contract "$server" "$t"
    done
    left=$(leftovers "$T_DIR/$server/")
    if [ -z "$left" ]; then
        ok "$server: nothing left running after its runs"
    else
        not_ok "$server: nothing left running after its runs"
        diag "$left"
        # shellcheck disable=SC2046 # a list of pids
        kill -TERM $(cut -d' ' -f1 <<< "$left") 2> /dev/null
    fi
done

done_testing
