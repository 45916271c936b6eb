#!/usr/bin/env bash
# The demo in a real browser: tests/browser/login.mjs drives headless
# Chromium (Debian's, through playwright-core) against a private stack: log
# in through the form with "Remember me", reload, switch to the dark theme,
# log other devices out, change the password, log out, with the cookie
# checked in the browser's own jar and the flash messages seen once; the
# stylesheet of /static/ applies under the pages' CSP, with no console
# error (a refused style is one). Screenshots of each page land in
# build/screenshots/. Installs chromium, node and the npm lock when missing;
# skips only when chromium cannot be installed.
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BROWSER_DIR=$T_ROOT/tests/browser
CHROMIUM=/usr/bin/chromium
SHOTS=${SCREENSHOT_DIR:-$T_ROOT/build/screenshots}
PAGES=(login dashboard dashboard-dark devices after-logout)

if [ ! -x "$CHROMIUM" ]; then
    "$T_ROOT/scripts/deps" chromium > "$T_DIR/deps.log" 2>&1
fi
if [ ! -x "$CHROMIUM" ]; then
    skip "the demo in headless Chromium" "chromium cannot be installed here: $(tail -n 1 "$T_DIR/deps.log")"
    printf '1..%d\n' "$T_N"
    exit 0
fi
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    "$T_ROOT/scripts/deps" nodejs > "$T_DIR/deps.log" 2>&1 ||
        bail "node and npm are missing and could not be installed: $(tail -n 3 "$T_DIR/deps.log")"
fi
# The exact playwright-core of the lock; again whenever the lock changes.
if [ ! -f "$BROWSER_DIR/node_modules/.package-lock.json" ] ||
    [ "$BROWSER_DIR/package-lock.json" -nt "$BROWSER_DIR/node_modules/.package-lock.json" ]; then
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund) > "$T_DIR/npm.log" 2>&1 ||
        bail "npm ci in tests/browser failed: $(tail -n 5 "$T_DIR/npm.log")"
fi

start_stack

# Screenshots are taken into the test's own directory, so that two runs at
# once cannot pass on each other's files, and copied out at the end.
rc=0
BASE_URL=$T_URL DEMO_PASSWORD=wonderland SCREENSHOT_DIR=$T_DIR/screenshots CHROMIUM=$CHROMIUM \
    timeout -k 5 180 node "$BROWSER_DIR/login.mjs" > "$T_DIR/browser.tap" 2>&1 || rc=$?

# The script's TAP, renumbered into this test's sequence.
n_results=0
while IFS= read -r line; do
    case $line in
    "ok "*)
        n_results=$((n_results + 1))
        desc=${line#ok }
        ok "browser: ${desc#* - }"
        ;;
    "not ok "*)
        n_results=$((n_results + 1))
        desc=${line#not ok }
        not_ok "browser: ${desc#* - }"
        ;;
    "Bail out!"*)
        n_results=$((n_results + 1))
        not_ok "browser: ${line#Bail out! }"
        ;;
    1..*) ;;
    "#"*) printf '%s\n' "$line" ;;
    *) diag "$line" ;;
    esac
done < "$T_DIR/browser.tap"
if [ "$rc" -ne 0 ] && [ "$T_FAILED" -eq 0 ]; then
    not_ok "the browser test exited with status $rc"
    diag "$(tail -n 20 "$T_DIR/browser.tap")"
fi
check "the browser test reported its checks ($n_results)" test "$n_results" -ge 20

# A screenshot is a PNG that is more than a blank page.
mkdir -p "$SHOTS"
for p in "${PAGES[@]}"; do
    f=$T_DIR/screenshots/$p.png
    if [ -f "$f" ] && [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
        [ "$(stat -c %s "$f")" -gt 5000 ] && cp "$f" "$SHOTS/"; then
        ok "screenshot ${SHOTS#"$T_ROOT"/}/$p.png"
    else
        not_ok "screenshot ${SHOTS#"$T_ROOT"/}/$p.png"
        diag "$(ls -l "$f" 2>&1)"
    fi
done

done_testing
