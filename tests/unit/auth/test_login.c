/* Login security: the client address (trusted_proxies, X-Forwarded-For),
 * the throttle taken before the password check, a userdel racing a login,
 * the auth log's lines and its configuration, through real requests on a
 * real LMDB store (fixture.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "log.h"

/* ------------------------------------------------------------------------
 * trusted_proxies and the client address
 * ------------------------------------------------------------------------ */

struct net_case {
    const char *list;
    enum sess_err err;
    size_t count;
    const char *bad; /* the entry named when refused */
};

static void
test_proxy_list_parse_table(void **state)
{
    static const struct net_case cases[] = {
        {"127.0.0.0/8, ::1", SESS_OK, 2, NULL},
        {"", SESS_OK, 0, NULL},
        {"10.0.0.1", SESS_OK, 1, NULL},
        {" 10.0.0.0/8 ,\t192.168.0.0/16 , fd00::/8 ", SESS_OK, 3, NULL},
        {"0.0.0.0/0", SESS_OK, 1, NULL},
        {"::/0", SESS_OK, 1, NULL},
        {"::ffff:10.1.2.3", SESS_OK, 1, NULL},
        {"127.0.0.1/8", SESS_OK, 1, NULL}, /* host bits set: the same network */
        {"10.0.0.0/33", SESS_EBADINPUT, 0, "10.0.0.0/33"},
        {"::1/129", SESS_EBADINPUT, 0, "::1/129"},
        {"10.0.0.0/", SESS_EBADINPUT, 0, "10.0.0.0/"},
        {"10.0.0.0/8x", SESS_EBADINPUT, 0, "10.0.0.0/8x"},
        {"10.0.0.0/-1", SESS_EBADINPUT, 0, "10.0.0.0/-1"},
        {"localhost", SESS_EBADINPUT, 0, "localhost"},
        {"10.0.0", SESS_EBADINPUT, 0, "10.0.0"},
        {"256.0.0.1", SESS_EBADINPUT, 0, "256.0.0.1"},
        {"10.0.0.1,,10.0.0.2", SESS_EBADINPUT, 0, ""},
        {"10.0.0.1,", SESS_EBADINPUT, 0, ""},
        {"10.0.0.1 10.0.0.2", SESS_EBADINPUT, 0, "10.0.0.1 10.0.0.2"},
        {"[::1]", SESS_EBADINPUT, 0, "[::1]"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sess_net nets[SESS_TRUSTED_PROXIES_MAX];
        struct sess_str bad;
        size_t count = 99;
        enum sess_err err =
            sess__net_list_parse(cases[i].list, nets, SESS_TRUSTED_PROXIES_MAX, &count, &bad);
        if (err != cases[i].err)
            fail_msg("case %zu (%s): got %d, want %d", i, cases[i].list, err, cases[i].err);
        if (err == SESS_OK)
            assert_int_equal(count, cases[i].count);
        else if ((int)bad.len != (int)strlen(cases[i].bad) ||
                 strncmp(bad.ptr, cases[i].bad, bad.len) != 0)
            fail_msg("case %zu (%s): names \"%.*s\", want \"%s\"", i, cases[i].list, (int)bad.len,
                     bad.ptr, cases[i].bad);
    }
}

static void
test_proxy_list_refuses_more_than_its_room(void **state)
{
    struct sess_net nets[2];
    struct sess_str bad;
    size_t count;
    (void)state;
    assert_int_equal(sess__net_list_parse("1.1.1.1, 2.2.2.2, 3.3.3.3", nets, 2, &count, &bad),
                     SESS_ETOOBIG);
}

struct member_case {
    const char *list, *addr;
    bool is_member;
};

static void
test_proxy_list_membership_table(void **state)
{
    static const struct member_case cases[] = {
        {"127.0.0.0/8, ::1", "127.0.0.1", true},
        {"127.0.0.0/8, ::1", "127.255.3.4", true},
        {"127.0.0.0/8, ::1", "128.0.0.1", false},
        {"127.0.0.0/8, ::1", "::1", true},
        {"127.0.0.0/8, ::1", "::2", false},
        {"127.0.0.0/8, ::1", "::ffff:127.0.0.1", true}, /* dual-stack sockets */
        {"10.1.2.0/23", "10.1.3.255", true},
        {"10.1.2.0/23", "10.1.4.0", false},
        {"10.1.2.3", "10.1.2.3", true},
        {"10.1.2.3", "10.1.2.4", false},
        {"2001:db8::/33", "2001:db8:7fff::1", true},
        {"2001:db8::/33", "2001:db8:8000::1", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"0.0.0.0/0", "2001:db8::1", false}, /* IPv4's 0/0 is not all of IPv6 */
        {"", "127.0.0.1", false},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sess_net nets[4];
        struct sess_str bad;
        unsigned char a[16];
        size_t count;

        assert_int_equal(sess__net_list_parse(cases[i].list, nets, 4, &count, &bad), SESS_OK);
        assert_true(sess__addr_parse(sess_str_c(cases[i].addr), a));
        if (sess__net_list_has(nets, count, a) != cases[i].is_member)
            fail_msg("case %zu: %s in %s", i, cases[i].addr, cases[i].list);
    }
}

struct pick_case {
    const char *remote, *forwarded;
    bool trust_proxy;
    const char *want;
};

static void
test_client_address_table(void **state)
{
    static const struct pick_case cases[] = {
        /* No trust: REMOTE_ADDR whatever the header says. */
        {"127.0.0.1", "203.0.113.9", false, "127.0.0.1"},
        {"198.51.100.7", NULL, false, "198.51.100.7"},
        /* Trust, from a trusted proxy: the right-most untrusted hop. */
        {"127.0.0.1", "203.0.113.9", true, "203.0.113.9"},
        {"127.0.0.1", "1.1.1.1, 203.0.113.9", true, "203.0.113.9"}, /* 1.1.1.1: the client's word */
        {"127.0.0.1", "203.0.113.9, 127.0.0.5", true, "203.0.113.9"},
        {"::1", "2001:db8::7", true, "2001:db8::7"},
        {"::ffff:127.0.0.1", "203.0.113.9", true, "203.0.113.9"},
        /* Every hop trusted: the left-most. */
        {"127.0.0.1", "127.0.0.9, 127.0.0.8", true, "127.0.0.9"},
        /* Not from a trusted proxy: the header is anyone's. */
        {"198.51.100.7", "203.0.113.9", true, "198.51.100.7"},
        /* No header. */
        {"127.0.0.1", NULL, true, "127.0.0.1"},
        {"127.0.0.1", "", true, "127.0.0.1"},
        /* Ports and brackets, as some proxies write them. */
        {"127.0.0.1", "203.0.113.9:4711", true, "203.0.113.9"},
        {"127.0.0.1", "[2001:db8::7]:443", true, "2001:db8::7"},
        {"127.0.0.1", " 203.0.113.9 ", true, "203.0.113.9"},
        /* Canonical text: one client, one throttle key. */
        {"127.0.0.1", "2001:DB8:0:0::7", true, "2001:db8::7"},
        {"0:0:0:0:0:0:0:1", NULL, false, "::1"},
        /* An entry that is not an address ends the walk at the last good
         * hop: the garbage was written by whoever sent it to a trusted proxy. */
        {"127.0.0.1", "203.0.113.9, garbage", true, "127.0.0.1"},
        {"127.0.0.1", "garbage, 127.0.0.3", true, "127.0.0.3"},
        /* A REMOTE_ADDR that is no address is kept, made harmless. */
        {"unix:/run/x sock\n", "203.0.113.9", true, "unix:?run?x?sock?"},
        {NULL, NULL, true, ""},
    };
    struct sess_net nets[4];
    struct sess_str bad;
    size_t count;
    (void)state;

    assert_int_equal(sess__net_list_parse("127.0.0.0/8, ::1", nets, 4, &count, &bad), SESS_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[SESS_ADDR_TEXT_MAX];
        sess__client_addr_pick(cases[i].remote, cases[i].forwarded, cases[i].trust_proxy, nets,
                               count, out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu (%s | %s): got %s, want %s", i, cases[i].remote,
                     cases[i].forwarded ? cases[i].forwarded : "-", out, cases[i].want);
    }
}

/* ------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------ */

static enum sess_err
load_text(struct fixture *f, const char *text, struct sess_config *cfg, char *msg, size_t msg_len)
{
    char path[300];
    FILE *fp;

    snprintf(path, sizeof path, "%s/login.conf", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "secret_file = secret\n%s", text);
    assert_int_equal(fclose(fp), 0);
    return sess_config_load(cfg, path, msg, msg_len);
}

static void
test_config_defaults(void **state)
{
    const struct sess_config *cfg = sess_app_config(((struct fixture *)*state)->app);
    unsigned char a[16];

    assert_int_equal(cfg->login_max_failures, 5);
    assert_int_equal(cfg->login_window_s, 300);
    assert_int_equal(cfg->log_to, SESS_LOG_STDERR);
    assert_null(cfg->log_path);
    assert_int_equal(cfg->trusted_proxies_count, 2);
    assert_true(sess__addr_parse(SESS_STR_LIT("127.1.2.3"), a));
    assert_true(sess__net_list_has(cfg->trusted_proxies, cfg->trusted_proxies_count, a));
    assert_true(sess__addr_parse(SESS_STR_LIT("::1"), a));
    assert_true(sess__net_list_has(cfg->trusted_proxies, cfg->trusted_proxies_count, a));
}

static void
test_config_keys(void **state)
{
    struct fixture *f = *state;
    struct sess_config cfg;
    char msg[SESS_ERRMSG_MAX];

    assert_int_equal(load_text(f,
                               "trusted_proxies = 10.0.0.0/8\nlogin_max_failures = 3\n"
                               "login_window = 60\nlog = logs/auth.log\n",
                               &cfg, msg, sizeof msg),
                     SESS_OK);
    assert_int_equal(cfg.trusted_proxies_count, 1);
    assert_int_equal(cfg.login_max_failures, 3);
    assert_int_equal(cfg.login_window_s, 60);
    assert_int_equal(cfg.log_to, SESS_LOG_FILE);
    /* Relative to the configuration's directory, like every path. */
    assert_non_null(strstr(cfg.log_path, "/logs/auth.log"));
    assert_int_equal(cfg.log_path[0], '/');
    sess_config_free(&cfg);

    assert_int_equal(load_text(f, "log = syslog\n", &cfg, msg, sizeof msg), SESS_OK);
    assert_int_equal(cfg.log_to, SESS_LOG_SYSLOG);
    sess_config_free(&cfg);
    assert_int_equal(load_text(f, "trusted_proxies =\n", &cfg, msg, sizeof msg), SESS_OK);
    assert_int_equal(cfg.trusted_proxies_count, 0);
    sess_config_free(&cfg);
}

static void
test_config_errors_name_file_and_line(void **state)
{
    static const struct {
        const char *text, *tail;
    } cases[] = {
        {"trusted_proxies = 127.0.0.0/8, 10.0.0.0/33\n",
         ":2: trusted_proxies = \"127.0.0.0/8, 10.0.0.0/33\": \"10.0.0.0/33\" is not an address "
         "or network; expected a comma-separated list of IPv4/IPv6 addresses or CIDRs such as "
         "127.0.0.0/8, ::1"},
        {"login_max_failures = 0\n",
         ":2: login_max_failures = \"0\": expected a whole number of failed logins from 1 to "
         "1000000"},
        {"login_window = 5m\n", ":2: login_window = \"5m\": expected a whole number of seconds "
                                "from 1 to 31536000"},
        {"log =\n", ":2: log = \"\": expected stderr, syslog or the path of a file"},
    };
    struct fixture *f = *state;
    struct sess_config cfg;
    char msg[SESS_ERRMSG_MAX];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load_text(f, cases[i].text, &cfg, msg, sizeof msg), SESS_ECONFIG);
        if (!strstr(msg, "/login.conf:") ||
            strcmp(strstr(msg, "/login.conf:") + 11, cases[i].tail) != 0)
            fail_msg("case %zu: %s", i, msg);
    }
}

/* ------------------------------------------------------------------------
 * The auth log
 * ------------------------------------------------------------------------ */

struct line_case {
    const char *event, *username, *addr, *want;
};

static void
test_log_line_table(void **state)
{
    static const struct line_case cases[] = {
        {SESS_AUTH_LOGIN_FAILED, "bob", "203.0.113.9",
         "fcgi-session[login]: login failed for \"bob\" from 203.0.113.9"},
        {SESS_AUTH_LOGIN_OK, "alice@example.org", "2001:db8::1",
         "fcgi-session[login]: login succeeded for \"alice@example.org\" from 2001:db8::1"},
        {SESS_AUTH_LOGOUT, NULL, "127.0.0.1",
         "fcgi-session[login]: logout for \"\" from 127.0.0.1"},
        /* A username that tries to forge a field or a line. */
        {SESS_AUTH_LOGIN_FAILED, "x\" from 10.0.0.1", "203.0.113.9",
         "fcgi-session[login]: login failed for \"x\\\" from 10.0.0.1\" from 203.0.113.9"},
        {SESS_AUTH_LOGIN_FAILED, "a\nfcgi-session[login]: login failed for \"b\" from 10.0.0.1",
         "203.0.113.9",
         "fcgi-session[login]: login failed for \"a\\x0afcgi-session[login]: login failed for "
         "\\\"b\\\" from 10.0.0.1\" from 203.0.113.9"},
        {SESS_AUTH_LOGIN_FAILED, "back\\slash\r\t\x7f\xc3\xa9", "203.0.113.9",
         "fcgi-session[login]: login failed for \"back\\\\slash\\x0d\\x09\\x7f\\xc3\\xa9\" from "
         "203.0.113.9"},
        {SESS_AUTH_LOGIN_THROTTLED, "bob", "",
         "fcgi-session[login]: login throttled for \"bob\" "
         "from -"},
        {SESS_AUTH_LOGIN_THROTTLED, "bob", NULL,
         "fcgi-session[login]: login throttled for \"bob\" "
         "from -"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[1024];
        size_t n = sess__log_auth_line(out, sizeof out, "login", cases[i].event, cases[i].username,
                                       cases[i].addr);
        assert_int_equal(n, strlen(out));
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu:\n got %s\nwant %s", i, out, cases[i].want);
    }
}

static void
test_log_line_cuts_long_usernames(void **state)
{
    char name[200], out[1024], want[300];
    (void)state;
    memset(name, 'u', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    sess__log_auth_line(out, sizeof out, "login", SESS_AUTH_LOGIN_FAILED, name, "203.0.113.9");
    snprintf(want, sizeof want,
             "fcgi-session[login]: login failed for \"%.*s...\" from 203.0.113.9",
             SESS_USERNAME_MAX, name);
    assert_string_equal(out, want);
    /* Escapes count against the room, never past it. */
    memset(name, '\n', sizeof name - 1);
    sess__log_auth_line(out, 64, "login", SESS_AUTH_LOGIN_FAILED, name, "203.0.113.9");
    assert_true(strlen(out) < 64);
}

static char *
read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *text = calloc(1, 65536);
    size_t n;

    assert_non_null(fp);
    assert_non_null(text);
    n = fread(text, 1, 65535, fp);
    text[n] = '\0';
    fclose(fp);
    return text;
}

/* ------------------------------------------------------------------------
 * Logins through the real request path
 * ------------------------------------------------------------------------ */

static const char *login_user, *login_password;

static void
route_login(struct sess_request *req)
{
    int64_t retry_after_s = -1;
    char retry[24];
    enum sess_err err =
        sess_login(req, login_user, login_user ? strlen(login_user) : 0, login_password,
                   login_password ? strlen(login_password) : 0, &retry_after_s);

    if (err == SESS_OK) {
        sess_send_json(req, 200, sess_to_json(req));
    } else if (err == SESS_ETHROTTLED) {
        snprintf(retry, sizeof retry, "%lld", (long long)retry_after_s);
        (void)sess_header(req, "Retry-After", retry);
        sess_fail(req, 429, "throttled");
    } else {
        sess_fail(req, err == SESS_EFORBIDDEN ? 403 : 503, sess_strerror(err));
    }
}

static int
login_as(struct fixture *f, const char *user, const char *password)
{
    struct client c = {0};
    int status;

    login_user = user;
    login_password = password;
    f->method = "POST";
    fixture_get(f, &c, route_login);
    f->method = NULL;
    status = c.status;
    client_free(&c);
    return status;
}

static void
test_failures_per_username_then_429(void **state)
{
    struct fixture *f = *state;
    char addr[32];

    /* Each from an address of its own: only the username's count. */
    for (int i = 0; i < 5; i++) {
        snprintf(addr, sizeof addr, "198.51.100.%d", i + 1);
        f->remote_addr = addr;
        assert_int_equal(login_as(f, "alice", "wrong"), 403);
    }
    f->remote_addr = "198.51.100.77";
    assert_int_equal(login_as(f, "alice", "wrong"), 429);
    assert_int_equal(login_as(f, "alice", "wonderland"), 429);
    /* Another name from the same address is not locked. */
    assert_int_equal(login_as(f, "bob", "builder"), 200);
    /* The window ends. */
    f->now_ms += 300 * 1000;
    assert_int_equal(login_as(f, "alice", "wonderland"), 200);
}

/* The count is taken before the password is checked. While one login's
 * argon2id runs, ten more for the same name arrive (each from an address
 * of its own): of the eleven, at most login_max_failures are checked and
 * answered 403, the rest 429. Counting after the check let all eleven be
 * checked, as every one found the count still at 0. */
static const struct sess_store_ops *real_ops;
static struct sess_store_ops racing_ops;
static struct fixture *race_fixture;
static bool is_racing;
static int n_forbidden, n_throttled;

static void
count_answer(enum sess_err err)
{
    if (err == SESS_EFORBIDDEN)
        n_forbidden++;
    else if (err == SESS_ETHROTTLED)
        n_throttled++;
    else
        fail_msg("unexpected %s", sess_strerror(err));
}

static enum sess_err
parallel_user_get(struct sess_store *st, struct sess_str name, int64_t now_ms,
                  struct sess_buf *value)
{
    enum sess_err err = real_ops->user_get(st, name, now_ms, value);

    if (is_racing)
        return err;
    is_racing = true;
    for (int i = 0; i < 10; i++) {
        char addr[48];
        char *envp[] = {"REQUEST_METHOD=POST", addr, NULL};
        struct sess_request req;
        int64_t retry_after_s;

        snprintf(addr, sizeof addr, "REMOTE_ADDR=192.0.2.%d", i + 1);
        memset(&req, 0, sizeof req);
        req.app = race_fixture->app;
        req.envp = envp;
        req.now_ms = race_fixture->now_ms;
        sess__session_begin(&req);
        count_answer(sess_login(&req, "alice", 5, "wrong", 5, &retry_after_s));
        sess__session_end(&req);
        sess__request_reset(&req);
        sess__buf_free(&req.headers);
        sess__buf_free(&req.out);
    }
    is_racing = false;
    return err;
}

static void
test_places_are_taken_before_the_check(void **state)
{
    struct fixture *f = *state;
    struct sess_request req;
    struct client c = {0};
    int64_t retry_after_s;

    real_ops = f->app->store->ops;
    racing_ops = *real_ops;
    racing_ops.user_get = parallel_user_get;
    f->app->store->ops = &racing_ops;
    race_fixture = f;
    n_forbidden = n_throttled = 0;
    fixture_begin(f, &c, &req);
    count_answer(sess_login(&req, "alice", 5, "wrong", 5, &retry_after_s));
    fixture_end(&req);
    f->app->store->ops = real_ops;
    assert_int_equal(n_forbidden, 5);
    assert_int_equal(n_throttled, 6);
    client_free(&c);
}

static void
test_good_login_clears_the_username_count(void **state)
{
    struct fixture *f = *state;
    char addr[32];

    for (int i = 0; i < 4; i++) {
        snprintf(addr, sizeof addr, "198.51.100.%d", i + 1);
        f->remote_addr = addr;
        assert_int_equal(login_as(f, "alice", "wrong"), 403);
    }
    assert_int_equal(login_as(f, "alice", "wonderland"), 200);
    for (int i = 0; i < 5; i++) {
        snprintf(addr, sizeof addr, "198.51.100.%d", i + 20);
        f->remote_addr = addr;
        assert_int_equal(login_as(f, "alice", "wrong"), 403);
    }
    assert_int_equal(login_as(f, "alice", "wrong"), 429);
}

/* A good login gives back its place in the address's count but does not
 * clear it: one valid account must not wipe the failures its address ran
 * up against other names; nor may good logins from a busy address (an
 * office behind NAT) add up to a lockout. */
static void
test_good_login_leaves_the_address_count(void **state)
{
    struct fixture *f = *state;
    char name[32];

    f->remote_addr = "203.0.113.50";
    for (int i = 0; i < 10; i++)
        assert_int_equal(login_as(f, "bob", "builder"), 200);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "ghost%d", i);
        assert_int_equal(login_as(f, name, "x"), 403);
    }
    assert_int_equal(login_as(f, "bob", "builder"), 200);
    assert_int_equal(login_as(f, "ghost9", "x"), 403); /* the fifth failure */
    assert_int_equal(login_as(f, "ghost10", "x"), 429);
    assert_int_equal(login_as(f, "bob", "builder"), 429);
}

static void
test_addresses_behind_a_trusted_proxy_are_apart(void **state)
{
    struct fixture *f = *state;
    char name[32];

    fixture_reopen(f, "trust_proxy = true\n");
    f->remote_addr = "127.0.0.1";
    f->forwarded_for = "203.0.113.1";
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "ghost%d", i);
        assert_int_equal(login_as(f, name, "x"), 403);
    }
    assert_int_equal(login_as(f, "ghost99", "x"), 429);
    assert_int_equal(login_as(f, "bob", "builder"), 429);
    /* Another client behind the same proxy. */
    f->forwarded_for = "203.0.113.2";
    assert_int_equal(login_as(f, "ghost100", "x"), 403);
    assert_int_equal(login_as(f, "bob", "builder"), 200);
    /* Without trust_proxy, they would all be the proxy. */
    fixture_reopen(f, "");
    f->forwarded_for = "203.0.113.3";
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "spook%d", i);
        assert_int_equal(login_as(f, name, "x"), 403);
    }
    f->forwarded_for = "203.0.113.4";
    assert_int_equal(login_as(f, "spook9", "x"), 429);
    f->forwarded_for = NULL;
}

static void
test_login_max_failures_and_window_are_settings(void **state)
{
    struct fixture *f = *state;

    fixture_reopen(f, "login_max_failures = 2\nlogin_window = 10\n");
    assert_int_equal(login_as(f, "alice", "wrong"), 403);
    assert_int_equal(login_as(f, "alice", "wrong"), 403);
    assert_int_equal(login_as(f, "alice", "wrong"), 429);
    f->now_ms += 10 * 1000;
    assert_int_equal(login_as(f, "alice", "wonderland"), 200);
}

static void
test_retry_after_is_the_rest_of_the_window(void **state)
{
    struct fixture *f = *state;
    struct client c = {0};

    for (int i = 0; i < 5; i++)
        assert_int_equal(login_as(f, "alice", "wrong"), 403);
    f->now_ms += 100 * 1000;
    login_user = "alice";
    login_password = "wrong";
    f->method = "POST";
    fixture_get(f, &c, route_login);
    f->method = NULL;
    assert_int_equal(c.status, 429);
    /* The fixture keeps only Set-Cookie; the route's header is checked
     * through sess_login directly below. */
    client_free(&c);
    {
        struct sess_request req;
        int64_t retry_after_s = 0;
        fixture_begin(f, &c, &req);
        assert_int_equal(sess_login(&req, "alice", 5, "wrong", 5, &retry_after_s), SESS_ETHROTTLED);
        assert_int_equal(retry_after_s, 200);
        fixture_end(&req);
    }
    client_free(&c);
}

static void
test_auth_log_file_lines(void **state)
{
    struct fixture *f = *state;
    char path[300], *text;

    fixture_reopen(f, "log = auth.log\ntrust_proxy = true\n");
    f->forwarded_for = "203.0.113.9";
    assert_int_equal(login_as(f, "bob", "wrong"), 403);
    assert_int_equal(login_as(f, "bob", "builder"), 200);
    /* The address's fifth failure, then its lockout. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(login_as(f, "carol", "x"), 403);
    assert_int_equal(login_as(f, "carol", "x"), 429);
    f->forwarded_for = NULL;
    snprintf(path, sizeof path, "%s/auth.log", f->dir);
    text = read_file(path);
    /* Whole-second UTC time first: 2026-11-22T18:00:00Z. */
    assert_non_null(strstr(text, "2026-11-22T18:00:00Z fcgi-session[test_login]: login failed "
                                 "for \"bob\" from 203.0.113.9\n"));
    assert_non_null(strstr(text, "2026-11-22T18:00:00Z fcgi-session[test_login]: login "
                                 "succeeded for \"bob\" from 203.0.113.9\n"));
    assert_non_null(strstr(text, "fcgi-session[test_login]: login throttled for \"carol\" from "
                                 "203.0.113.9\n"));
    free(text);
}

/* ------------------------------------------------------------------------
 * A userdel racing a login, and the rehash that must not undo it
 * ------------------------------------------------------------------------ */

static struct sess_app *race_app;
static int user_gets, delete_after_get;

/* The n-th read of an account (1: the password check's; 2: the check
 * after the session was stored) is followed by `sessctl userdel`. */
static enum sess_err
racing_user_get(struct sess_store *st, struct sess_str name, int64_t now_ms, struct sess_buf *value)
{
    enum sess_err err = real_ops->user_get(st, name, now_ms, value);
    char n[SESS_USERNAME_MAX + 1];

    if (++user_gets == delete_after_get) {
        snprintf(n, sizeof n, "%.*s", (int)name.len, name.ptr);
        assert_int_equal(sess_user_del(race_app, n), SESS_OK);
    }
    return err;
}

static void
race_userdel(struct fixture *f, int after_get)
{
    real_ops = f->app->store->ops;
    racing_ops = *real_ops;
    racing_ops.user_get = racing_user_get;
    f->app->store->ops = &racing_ops;
    race_app = f->app;
    user_gets = 0;
    delete_after_get = after_get;
}

static bool
count_session(void *arg, const struct sess_session_info *s)
{
    if (s->is_live)
        (*(int *)arg)++;
    return true;
}

static int
sessions_of(struct fixture *f, const char *user)
{
    int n = 0;
    assert_int_equal(sess_sessions_each(f->app, user, count_session, &n), SESS_OK);
    return n;
}

static void
test_userdel_while_checking_the_password_leaves_no_session(void **state)
{
    struct fixture *f = *state;

    race_userdel(f, 1);
    assert_int_equal(login_as(f, "bob", "builder"), 403);
    assert_int_equal(user_gets, 2);
    assert_int_equal(sessions_of(f, "bob"), 0);
    f->app->store->ops = real_ops;
}

static void
test_userdel_after_the_check_ends_the_new_session(void **state)
{
    struct fixture *f = *state;

    race_userdel(f, 2);
    assert_int_equal(login_as(f, "bob", "builder"), 200);
    assert_int_equal(sessions_of(f, "bob"), 0);
    f->app->store->ops = real_ops;
}

/* An account hashed under weaker limits is rehashed on login; a userdel
 * between the check and that write must not bring the account back. */
static void
test_rehash_never_resurrects_a_deleted_account(void **state)
{
    struct fixture *f = *state;
    struct sess_store *st = f->app->store;
    struct sess_buf buf = {0};
    char hash[crypto_pwhash_STRBYTES], text[300];

    assert_int_equal(crypto_pwhash_str(hash, "old-password", 12, crypto_pwhash_OPSLIMIT_MIN,
                                       crypto_pwhash_MEMLIMIT_MIN),
                     0);
    snprintf(text, sizeof text, "{\"role\":\"user\",\"hash\":\"%s\"}", hash);
    assert_int_equal(
        st->ops->user_put(st, SESS_STR_LIT("olduser"), f->now_ms, sess_str_c(text), true), SESS_OK);
    race_userdel(f, 1);
    assert_int_equal(login_as(f, "olduser", "old-password"), 403);
    f->app->store->ops = real_ops;
    assert_int_equal(st->ops->user_get(st, SESS_STR_LIT("olduser"), f->now_ms, &buf),
                     SESS_ENOTFOUND);
    sess__buf_free(&buf);
}

/* Without a race, the rehash happens, and a changed account is left as
 * it is (a new password set meanwhile wins). */
static void
test_rehash_upgrades_and_respects_a_new_password(void **state)
{
    struct fixture *f = *state;
    struct sess_store *st = f->app->store;
    struct sess_buf buf = {0};
    char hash[crypto_pwhash_STRBYTES], text[300];

    assert_int_equal(crypto_pwhash_str(hash, "old-password", 12, crypto_pwhash_OPSLIMIT_MIN,
                                       crypto_pwhash_MEMLIMIT_MIN),
                     0);
    snprintf(text, sizeof text, "{\"role\":\"user\",\"hash\":\"%s\"}", hash);
    assert_int_equal(
        st->ops->user_put(st, SESS_STR_LIT("olduser"), f->now_ms, sess_str_c(text), true), SESS_OK);
    assert_int_equal(login_as(f, "olduser", "old-password"), 200);
    assert_int_equal(st->ops->user_get(st, SESS_STR_LIT("olduser"), f->now_ms, &buf), SESS_OK);
    assert_null(strstr(buf.ptr, hash));
    assert_int_equal(st->ops->user_replace(st, SESS_STR_LIT("olduser"), f->now_ms, sess_str_c(text),
                                           SESS_STR_LIT("{}")),
                     SESS_ECONFLICT);
    assert_int_equal(st->ops->user_replace(st, SESS_STR_LIT("nobody"), f->now_ms, sess_str_c(text),
                                           SESS_STR_LIT("{}")),
                     SESS_ENOTFOUND);
    sess__buf_free(&buf);
}

static void
test_throttle_undo_takes_back_one_within_the_window(void **state)
{
    struct fixture *f = *state;
    struct sess_store *st = f->app->store;
    struct sess_str k = SESS_STR_LIT("addr:203.0.113.1");
    uint32_t count;
    int64_t first_ms;

    assert_int_equal(st->ops->throttle_undo(st, k, f->now_ms, 1000), SESS_OK); /* none: no-op */
    assert_int_equal(st->ops->throttle_hit(st, k, f->now_ms, 1000, &count, &first_ms), SESS_OK);
    assert_int_equal(st->ops->throttle_hit(st, k, f->now_ms, 1000, &count, &first_ms), SESS_OK);
    assert_int_equal(count, 2);
    assert_int_equal(st->ops->throttle_undo(st, k, f->now_ms, 1000), SESS_OK);
    assert_int_equal(st->ops->throttle_peek(st, k, f->now_ms, 1000, &count, &first_ms), SESS_OK);
    assert_int_equal(count, 1);
    assert_int_equal(first_ms, f->now_ms);
    assert_int_equal(st->ops->throttle_undo(st, k, f->now_ms, 1000), SESS_OK);
    assert_int_equal(st->ops->throttle_undo(st, k, f->now_ms, 1000), SESS_OK); /* not below 0 */
    assert_int_equal(st->ops->throttle_hit(st, k, f->now_ms, 1000, &count, &first_ms), SESS_OK);
    assert_int_equal(count, 1);
}

static int
setup(void **state)
{
    struct fixture *f = fixture_new("");

    assert_int_equal(sess_user_add(f->app, "alice", "admin", "wonderland", 10, true), SESS_OK);
    assert_int_equal(sess_user_add(f->app, "bob", "user", "builder", 7, true), SESS_OK);
    *state = f;
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, fixture_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_list_parse_table),
        cmocka_unit_test(test_proxy_list_refuses_more_than_its_room),
        cmocka_unit_test(test_proxy_list_membership_table),
        cmocka_unit_test(test_client_address_table),
        T(test_config_defaults),
        T(test_config_keys),
        T(test_config_errors_name_file_and_line),
        cmocka_unit_test(test_log_line_table),
        cmocka_unit_test(test_log_line_cuts_long_usernames),
        T(test_failures_per_username_then_429),
        T(test_places_are_taken_before_the_check),
        T(test_good_login_clears_the_username_count),
        T(test_good_login_leaves_the_address_count),
        T(test_addresses_behind_a_trusted_proxy_are_apart),
        T(test_login_max_failures_and_window_are_settings),
        T(test_retry_after_is_the_rest_of_the_window),
        T(test_auth_log_file_lines),
        T(test_userdel_while_checking_the_password_leaves_no_session),
        T(test_userdel_after_the_check_ends_the_new_session),
        T(test_rehash_never_resurrects_a_deleted_account),
        T(test_rehash_upgrades_and_respects_a_new_password),
        T(test_throttle_undo_takes_back_one_within_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
