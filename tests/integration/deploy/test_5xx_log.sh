#!/usr/bin/env bash
# Every 5xx a route answers is on the `log` destination with the route's
# name and the reason (README, "Login security and the auth log"): a
# route that sends no answer, a redirect to another site, a JSON body that
# is NULL (a json_pack that failed). A program of three routes, built
# here against this build's static library, answers them as CGI (the same
# code as under FastCGI, without a server), with `log` a file, then stderr.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

cat > "$T_DIR/broken.c" <<'C'
#include <sess.h>

static void
no_answer(struct sess_request *req)
{
    (void)req;
}

static void
bad_redirect(struct sess_request *req)
{
    sess_redirect(req, "//evil.example/");
}

static void
null_json(struct sess_request *req)
{
    sess_send_json(req, 200, json_pack("{s:s}", "msg", (const char *)NULL));
}

int
main(void)
{
    static const struct sess_route routes[] = {
        {"/none", no_answer}, {"/redirect", bad_redirect}, {"/json", null_json}};
    return sess_run_routes("broken", routes, sizeof routes / sizeof routes[0]);
}
C
san=
[ "${SANITIZE:-}" = 1 ] && san="-fsanitize=address,undefined"
[ -f "$T_BUILD/libfcgi-session.a" ] || bail "$T_BUILD/libfcgi-session.a is missing: run make"
# shellcheck disable=SC2086,SC2046 # $san: empty or one flag; pkg-config: a list
"${CC:-cc}" -O2 -Wall -Wextra -Werror $san -I"$T_ROOT/lib" $(pkg-config --cflags jansson) \
    -o "$T_DIR/broken" "$T_DIR/broken.c" "$T_BUILD/libfcgi-session.a" \
    -lfcgi -llmdb -lsodium -ljansson -lhiredis 2> "$T_DIR/cc.err" ||
    bail "cannot build the test's routes: $(head -n 5 "$T_DIR/cc.err")"

mkdir -p "$T_DIR/sessions"
stack_secret "$T_DIR/secret" || bail "cannot write $T_DIR/secret"

# cgi PATH: one GET of PATH; the answer in OUT, stderr in $T_DIR/cgi.err.
cgi() {
    OUT=$(env -i PATH="$PATH" SESSION_CONFIG="$T_DIR/app.conf" GATEWAY_INTERFACE=CGI/1.1 \
        SERVER_PROTOCOL=HTTP/1.1 REMOTE_ADDR=127.0.0.1 HTTP_HOST=localhost REQUEST_METHOD=GET \
        REQUEST_URI="$1?q=secret" HTTP_ACCEPT=application/json \
        ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
        ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} "$T_DIR/broken" < /dev/null 2> "$T_DIR/cgi.err")
}

# path reason: each answers 500 and logs one line.
cases=("/none:The route sent no answer"
    "/redirect:sess_redirect refused a target that is not a path of this site"
    "/json:")

t_config "$T_DIR/app.conf" secret_file=secret store=lmdb:sessions "html_dir=$T_ROOT/html" log=app.log
for c in "${cases[@]}"; do
    path=${c%%:*} reason=${c#*:}
    : > "$T_DIR/app.log"
    cgi "$path"
    like "$OUT" $'^Status: 500 ' "GET $path: 500"
    line=$(grep -E "fcgi-session\\[broken\\]: " "$T_DIR/app.log")
    like "$line" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z fcgi-session\[broken\]: ' \
        "GET $path: the log file has a dated line named by the route"
    if [ -n "$reason" ]; then
        like "$line" "$reason" "GET $path: with the reason"
    else
        like "$line" "JSON|json" "GET $path: with the reason (the body is no JSON)"
    fi
    unlike "$line" 'secret' "GET $path: and not the query"
    is "$(wc -c < "$T_DIR/cgi.err")" 0 "GET $path: nothing on stderr with log = a file"
done

# log = stderr (the default): the web server's error log gets the line.
t_config "$T_DIR/app.conf" secret_file=secret store=lmdb:sessions "html_dir=$T_ROOT/html"
cgi /none
like "$(cat "$T_DIR/cgi.err")" 'fcgi-session\[broken\]: 500 for GET /none: The route sent no answer' \
    "log = stderr: the line is on stderr"

done_testing
