#!/usr/bin/env bash
# HTTPS behind every web server: over TLS (a certificate made for the test,
# which curl verifies) the executables see HTTPS=on, so the cookie carries
# Secure (cookie_secure = auto), the session says so, and a form post's
# Origin is https://; over plain HTTP no Secure. Behind a TLS-terminating
# proxy: X-Forwarded-Proto: https gives Secure with trust_proxy = true, and
# only then (test_bad_input.sh checks it is ignored without).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

read -r -a servers <<< "${TEST_SERVERS:-lighttpd lighttpd-cgi apache apache-fcgid apache-cgi nginx}"

# shellcheck disable=SC2317 # called through check and eval
has_secure() {
    [[ $(set_cookie) =~ \;\ Secure(\;|$) ]]
}

for server in "${servers[@]}"; do
    TEST_SERVER=$server
    rm -f "$T_DIR"/jar.*

    # --- over TLS
    start_stack --tls
    like "$T_URL" '^https://' "$server: an https URL"
    get a /views
    status_is 200 "$server over TLS: GET /views 200"
    check "$server over TLS: the cookie carries Secure" has_secure
    like "$(set_cookie)" '^sid=s%3A[^;]+; Path=/; Expires=[^;]+; Max-Age=1800; HttpOnly; Secure; SameSite=Lax$' \
        "$server over TLS: Secure among express-session's attributes"
    get_json a /session
    is "$(json .cookie.secure)" true "$server over TLS: the session's cookie.secure is true"
    login_form b alice wonderland
    status_is 303 "$server over TLS: a form login with Origin $T_ORIGIN is this site"
    post_json b /prefs '{"theme":"dark"}' -H "Origin: $T_ORIGIN"
    status_is 200 "$server over TLS: a JSON post from $T_ORIGIN"
    post_json b /prefs '{"theme":"light"}' -H "Origin: ${T_ORIGIN/https:/http:}"
    status_is 403 "$server over TLS: Origin http://... is another site"
    # Plain HTTP to the TLS port is no way in.
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${T_URL/https:/http:}/views") || true
    isnt "$status" 200 "$server: plain HTTP to the TLS port gets no page ($status)"
    stop_stack

    # --- plain HTTP behind a TLS-terminating proxy
    rm -f "$T_DIR"/jar.*
    start_stack trust_proxy=true
    get - /views
    status_is 200 "$server, trust_proxy: GET /views 200"
    check "$server, trust_proxy, no X-Forwarded-Proto: no Secure" eval '! has_secure'
    get - /views -H 'X-Forwarded-Proto: https'
    check "$server, trust_proxy, X-Forwarded-Proto: https: Secure" has_secure
    get - /views -H 'X-Forwarded-Proto: http'
    check "$server, trust_proxy, X-Forwarded-Proto: http: no Secure" eval '! has_secure'
    get p /views -H 'X-Forwarded-Proto: https'
    get_json p /session -H 'X-Forwarded-Proto: https'
    is "$(json .cookie.secure)" true "$server, trust_proxy: the session's cookie.secure follows the proxy"
    stop_stack
done

done_testing
