#!/usr/bin/env bash
# parallel: no (may apt-get install, failing while another holds dpkg's lock)
# sanitizer: same
# The man pages: scripts/man-check against the built library (every public
# function has a page, in its NAME, with its prototype as the header has
# it; every exported symbol is declared in a public header; every page
# renders without a warning), then what `make install` puts in place:
# `man NAME` of every public function, group pages' aliases included,
# shows the page that lists it; `make uninstall` removes every page.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if ! command -v groff > /dev/null || ! command -v man > /dev/null; then
    "$T_ROOT/scripts/deps" groff-base man-db > "$T_DIR/deps.log" 2>&1 ||
        diag "scripts/deps groff-base man-db failed: $(tail -n 3 "$T_DIR/deps.log")"
fi

# scripts/man-check's TAP, numbered as this test's.
so=$T_BUILD/libfcgi-session.so
check "the library is built ($so)" test -f "$so"
"$T_ROOT/scripts/man-check" "$so" > "$T_DIR/man-check.tap" 2>&1
rc=$?
while IFS= read -r line; do
    case $line in
    "ok "*) ok "${line#ok * - }" ;;
    "not ok "*) not_ok "${line#not ok * - }" ;;
    "#"*) printf '%s\n' "$line" ;;
    esac
done < "$T_DIR/man-check.tap"
is "$rc" "$([ "$T_FAILED" -eq 0 ] && echo 0 || echo 1)" "scripts/man-check's exit status matches its results"

# Installed: each function's name finds a page that lists it.
dest=$T_DIR/dest
make -s -C "$T_ROOT" install BUILD="$T_BUILD" PREFIX=/usr DESTDIR="$dest" > "$T_DIR/install.log" 2>&1
is "$?" 0 "make install PREFIX=/usr DESTDIR=... succeeds $(tail -n 3 "$T_DIR/install.log")"
man3=$dest/usr/share/man/man3
mapfile -t names < <(sed -n 's/^ok [0-9]* - \(sess_[a-z0-9_]*\) has a man page .*/\1/p' "$T_DIR/man-check.tap")
is "$(find "$T_ROOT/man" -name '*.3' | wc -l)" "$(find "$man3" -name '*.3' | wc -l)" \
    "every page and alias of man/ is installed in share/man/man3"
bad=()
for name in "${names[@]}"; do
    # man -w follows an alias's .so to the page it names.
    where=$(MANPATH=$dest/usr/share/man man -w "$name" 2> /dev/null)
    if [ "${where%/*}" != "$man3" ] || [ ! -f "$where" ]; then
        bad+=("man -w $name: '$where'")
        continue
    fi
    text=$(MANPATH=$dest/usr/share/man MANWIDTH=80 man "$name" 2> "$T_DIR/man.err")
    if [ -s "$T_DIR/man.err" ]; then
        bad+=("man $name: $(head -n 2 "$T_DIR/man.err")")
    elif ! awk '/^NAME/ { on = 1; next } /^[A-Z]/ { on = 0 } on' <<< "$text" |
        tr ',\n' '  ' | grep -qw -- "$name"; then
        bad+=("man $name: its NAME does not list $name")
    fi
done
if [ ${#names[@]} -gt 0 ] && [ ${#bad[@]} -eq 0 ]; then
    ok "man NAME shows the installed page of each of the ${#names[@]} public functions"
else
    not_ok "man NAME shows the installed page of each of the ${#names[@]} public functions"
    diag "$(printf '%s\n' "${bad[@]}" | head -n 20)"
fi

make -s -C "$T_ROOT" uninstall BUILD="$T_BUILD" PREFIX=/usr DESTDIR="$dest" > "$T_DIR/uninstall.log" 2>&1
is "$?" 0 "make uninstall PREFIX=/usr DESTDIR=... succeeds"
is "$(find "$dest" -name '*.3' | head -n 5)" "" "make uninstall removes every page and alias"

done_testing
