#!/usr/bin/env bash
# parallel: no (wrk loads every core)
# `make bench` still works: bench/run in its quick mode (BENCH_QUICK=1: 1 s
# per measurement, one round, -c16, no peers, no scale runs) starts the
# floors and the demo, loads every scenario with wrk, writes the raw
# figures to $BUILD/bench-quick/raw/ and, through bench/report,
# $BUILD/bench-quick/results.md and results.png. Its figures measure
# nothing; what is checked is that each scenario has rows, each with
# requests and no errors, that bench/report alone writes the same
# results.md again from the raw figures, that the committed bench/raw/ and
# bench/results.md are left alone, and that nothing the benchmark started
# is left running. bench/run builds
# nothing: it runs the executables of BUILD (build/asan under SANITIZE=1)
# that `make check` has built.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

OUT=$T_BUILD/bench-quick
# Every process the benchmark starts names this directory: in its command
# line, in SESSION_CONFIG (the route executables) or in BENCH_WORKDIR,
# which everything else inherits.
WORK_PARENT=$T_DIR/work
# What quick mode measures: every scenario, D (logins) for the demo alone.
SCENARIOS=(A B C C1 D)
BENCH_PID=

# shellcheck disable=SC2317 # run by the EXIT trap
bench_cleanup() {
    # bench/run stops what it started when it gets SIGTERM.
    if [ -n "$BENCH_PID" ]; then
        kill -TERM "$BENCH_PID" 2> /dev/null
        wait "$BENCH_PID" 2> /dev/null
        BENCH_PID=
    fi
    t_cleanup
}
trap bench_cleanup EXIT

# The committed results, as they are on disk: they must stay as they are.
committed() {
    local files=("$T_ROOT/bench/results.md" "$T_ROOT/bench/results.png" "$T_ROOT"/bench/raw/*)
    stat -c '%n %s %y' "${files[@]}" 2>&1
    sha256sum "${files[@]}" 2>&1
}

# Processes whose command line or environment names the given path.
leftovers() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$BASHPID" ] && continue
        if grep -qsF "$1" "$p/cmdline" "$p/environ" 2> /dev/null; then
            printf '%s %s\n' "${p#/proc/}" "$(tr '\0' ' ' < "$p/cmdline" 2> /dev/null | head -c 120)"
        fi
    done
}

# The rows of the table under "## SCEN: ..." in results.md, one per line:
# "label<TAB>req/s<TAB>errors" (req/s without its thousands separators).
scenario_rows() {
    awk -F'|' -v s="$1" '
        /^## / { here = index($0, "## " s ": ") == 1; next }
        here && /^\| / && !/^\| configuration / {
            label = $2; rps = $4; err = $11
            gsub(/^ +| +$/, "", label)
            sub(/^ +/, "", rps); sub(/ .*/, "", rps); gsub(/,/, "", rps)
            gsub(/ /, "", err)
            print label "\t" rps "\t" err
        }' "$OUT/results.md"
}

for f in bench/floor bench/gen_sessions bench/bench_lib sessctl cgi-bin/views.fcgi; do
    [ -x "$T_BUILD/$f" ] || bail "$T_BUILD/$f is missing: make check (or make bench) builds it"
done

rm -rf "$OUT/results.md" "$OUT/results.png" "$OUT/raw"
before=$(committed)
mkdir -p "$WORK_PARENT"
started=$(date +%s)
(
    # A user's settings (BENCH_ONLY, BENCH_OUT, BENCH_KEEP...) must not
    # change what the test runs or where the results go.
    unset "${!BENCH_@}"
    export BENCH_QUICK=1 BENCH_WORKDIR=$WORK_PARENT BUILD=$T_BUILD
    exec "$T_ROOT/bench/run"
) > "$T_DIR/bench.out" 2> "$T_DIR/bench.err" < /dev/null &
BENCH_PID=$!
wait "$BENCH_PID"
rc=$?
BENCH_PID=
secs=$(($(date +%s) - started))

diag "$(cat "$T_DIR/bench.err")"
is "$rc" 0 "bench/run with BENCH_QUICK=1 succeeds ($secs s)"
like "$(cat "$T_DIR/bench.out")" $'(^|\n)ok 1 - bench/run end to end' "bench/run ends with its TAP line" ||
    diag "$(cat "$T_DIR/bench.out")"

# --- what it wrote, and where
check "results.md written to ${OUT#"$T_ROOT"/}" test -s "$OUT/results.md"
like "$(head -n 20 "$OUT/results.md" 2> /dev/null)" 'Quick mode \(BENCH_QUICK=1\)' \
    "results.md says it comes from the quick mode"
for scen in "${SCENARIOS[@]}"; do
    rows=$(scenario_rows "$scen" 2> /dev/null)
    bad=$(awk -F'\t' '!($2 + 0 > 0) || $3 != "0"' <<< "$rows")
    demo=$(awk -F'\t' 'index($1, "fcgi-session, lmdb_sync = meta") == 1 { print $2 }' <<< "$rows")
    if [ -n "$rows" ] && [ -z "$bad" ] && [ -n "$demo" ]; then
        ok "scenario $scen: $(wc -l <<< "$rows") row(s), each with requests and 0 errors (fcgi-session $demo req/s)"
    else
        not_ok "scenario $scen: rows in results.md, each with requests and 0 errors, fcgi-session's among them"
        diag "rows (configuration, req/s, errors):"$'\n'"${rows:-none}"
    fi
done
is "$(head -c 4 "$OUT/results.png" 2> /dev/null | tail -c 3)" PNG "results.png written next to it"
measured=$(($(wc -l < "$OUT/raw/measurements.tsv" 2> /dev/null || echo 1) - 1))
like "$(grep -m 1 '^ok 1 ' "$T_DIR/bench.out")" " $measured measurements," \
    "raw/measurements.tsv holds every measurement ($measured), after its header"
like "$(cat "$OUT/raw/run.tsv" 2> /dev/null)" $'(^|\n)format\t1\n.*(^|\n)quick\t1(\n|$)' \
    "raw/run.tsv describes the run"

# --- the report again, from the raw figures alone
mkdir -p "$T_DIR/again"
cp -r "$OUT/raw" "$T_DIR/again/raw"
raw_sums=$(cd "$T_DIR/again/raw" && sha256sum ./*)
rc=0
"$T_ROOT/bench/report" "$T_DIR/again/raw" > "$T_DIR/report.out" 2>&1 || rc=$?
is "$rc" 0 "bench/report rebuilds the report from the raw figures" || diag "$(cat "$T_DIR/report.out")"
if cmp -s "$OUT/results.md" "$T_DIR/again/results.md"; then
    ok "bench/report writes the same results.md as the run did"
else
    not_ok "bench/report writes the same results.md as the run did"
    diag "$(diff "$OUT/results.md" "$T_DIR/again/results.md" | head -n 20)"
fi
is "$(head -c 4 "$T_DIR/again/results.png" 2> /dev/null | tail -c 3)" PNG "and results.png"
is "$(cd "$T_DIR/again/raw" && sha256sum ./*)" "$raw_sums" "bench/report leaves the raw figures as they were"
is "$(committed)" "$before" "the committed bench/results.md, results.png and raw/ are untouched"

# --- what it started
is "$(leftovers "$WORK_PARENT")" "" "nothing the benchmark started is left running"
is "$(ls -A "$WORK_PARENT" 2> /dev/null)" "" "its work directory is removed"
unlike "$(cat "$T_DIR/bench.err")" 'stopped, not cleanly|killed:' "every configuration stopped cleanly"

printf '1..%d\n' "$T_N"
exit $((T_FAILED > 0))
