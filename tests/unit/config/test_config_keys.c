/* The configuration keys (lib/config/keys.c): every key, what it accepts,
 * and every refusal with the exact message and line a user would see. The
 * file's syntax, the defaults and the checks across keys are
 * test_config.c's. */
#include "config_test.h"

/* --- every key --- */

static void
test_load_every_key(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "name = __Host-app\n"
                             "secret_file = /etc/fcgi-session/secret\n"
                             "store = redis://127.0.0.1:6379/2\n"
                             "max_age = 600\n"
                             "absolute_timeout = 0\n"
                             "rolling = true\n"
                             "resave = yes\n"
                             "save_uninitialized = on\n"
                             "touch_after = 30\n"
                             "cookie_secure = true\n"
                             "cookie_http_only = false\n"
                             "cookie_same_site = strict\n"
                             "cookie_path = /\n"
                             "cookie_domain = none\n"
                             "cookie_partitioned = 1\n"
                             "cookie_priority = high\n"
                             "trust_proxy = true\n"
                             "encrypt = false\n"
                             "max_body = 64K\n"
                             "html_dir = pages\n"
                             "lmdb_map_size = 2G\n"
                             "lmdb_sync = none\n"
                             "redis_timeout_ms = 250\n"),
                     SESS_OK);
    assert_string_equal(f->cfg.name, "__Host-app");
    assert_string_equal(f->cfg.secret_file, "/etc/fcgi-session/secret");
    assert_string_equal(f->cfg.store, "redis://127.0.0.1:6379/2");
    assert_int_equal(f->cfg.max_age_s, 600);
    assert_int_equal(f->cfg.absolute_timeout_s, 0);
    assert_true(f->cfg.rolling);
    assert_true(f->cfg.resave);
    assert_true(f->cfg.save_uninitialized);
    assert_int_equal(f->cfg.touch_after_s, 30);
    assert_int_equal(f->cfg.cookie_secure, SESS_SECURE_ALWAYS);
    assert_false(f->cfg.cookie_http_only);
    assert_int_equal(f->cfg.cookie_same_site, SESS_SAME_SITE_STRICT);
    assert_string_equal(f->cfg.cookie_path, "/");
    assert_null(f->cfg.cookie_domain);
    assert_true(f->cfg.cookie_partitioned);
    assert_string_equal(f->cfg.cookie_priority, "High");
    assert_true(f->cfg.trust_proxy);
    assert_int_equal(f->cfg.encrypt, SESS_ENCRYPT_NO);
    assert_int_equal(f->cfg.max_body_bytes, 65536);
    assert_path(f, f->cfg.html_dir, "", "pages");
    assert_int_equal(f->cfg.lmdb_map_size_bytes, (size_t)2 << 30);
    assert_int_equal(f->cfg.lmdb_sync, SESS_SYNC_NONE);
    assert_int_equal(f->cfg.redis_timeout_ms, 250);
}

/* "Remember me" and the per-user limit: defaults, values, and FILE:LINE
 * errors. */
static void
test_load_remember_and_session_limit(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_with_secret(f, ""), SESS_OK);
    assert_true(f->cfg.cookie_persist);
    assert_int_equal(f->cfg.remember_max_age_s, 2592000);
    assert_int_equal(f->cfg.remember_absolute_timeout_s, 7776000);
    assert_int_equal(f->cfg.max_sessions_per_user, 0);
    assert_int_equal(load_with_secret(f, "cookie_persist = no\nremember_max_age = 600\n"
                                         "remember_absolute_timeout = 0\n"
                                         "max_sessions_per_user = 3\n"),
                     SESS_OK);
    assert_false(f->cfg.cookie_persist);
    assert_int_equal(f->cfg.remember_max_age_s, 600);
    assert_int_equal(f->cfg.remember_absolute_timeout_s, 0);
    assert_int_equal(f->cfg.max_sessions_per_user, 3);
    assert_load_error(f, "secret_file = s\nremember_max_age = 0\n",
                      "2: remember_max_age = \"0\": expected a whole number of seconds from 1 to "
                      "31536000");
    assert_load_error(f, "secret_file = s\nmax_sessions_per_user = -1\n",
                      "2: max_sessions_per_user = \"-1\": expected a whole number from 0 (no "
                      "limit) to 10000");
    assert_load_error(f, "secret_file = s\ncookie_persist = maybe\n",
                      "2: cookie_persist = \"maybe\": expected true or false (also yes/no, "
                      "on/off, 1/0)");
}

/* --- booleans --- */

static void
test_load_every_boolean_spelling(void **state)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {
        {"true", true},   {"TRUE", true},   {"yes", true}, {"On", true},   {"1", true},
        {"false", false}, {"False", false}, {"no", false}, {"OFF", false}, {"0", false},
    };
    struct fixture *f = *state;
    char text[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "rolling = %s\ntrust_proxy = %s\n", cases[i].text,
                 cases[i].text);
        assert_int_equal(load_with_secret(f, text), SESS_OK);
        assert_int_equal(f->cfg.rolling, cases[i].value);
        assert_int_equal(f->cfg.trust_proxy, cases[i].value);
    }
}

static void
test_load_refuses_a_bad_boolean(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\n\nresave = maybe\n",
                      "3: resave = \"maybe\": expected true or false (also yes/no, on/off, 1/0)");
    assert_load_error(f, "secret_file = s\nrolling = 2\n",
                      "2: rolling = \"2\": expected true or false (also yes/no, on/off, 1/0)");
}

/* --- enumerations --- */

static void
test_load_enumerations(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_with_secret(f, "cookie_secure = auto\ncookie_same_site = NONE\n"
                                         "encrypt = true\nlmdb_sync = full\n"),
                     SESS_OK);
    assert_int_equal(f->cfg.cookie_secure, SESS_SECURE_AUTO);
    assert_int_equal(f->cfg.cookie_same_site, SESS_SAME_SITE_NONE);
    assert_int_equal(f->cfg.encrypt, SESS_ENCRYPT_YES);
    assert_int_equal(f->cfg.lmdb_sync, SESS_SYNC_FULL);
    assert_int_equal(load_with_secret(f, "cookie_secure = false\ncookie_same_site = off\n"
                                         "encrypt = auto\nlmdb_sync = meta\n"),
                     SESS_OK);
    assert_int_equal(f->cfg.cookie_secure, SESS_SECURE_NEVER);
    assert_int_equal(f->cfg.cookie_same_site, SESS_SAME_SITE_OFF);
    assert_int_equal(f->cfg.encrypt, SESS_ENCRYPT_AUTO);
    assert_int_equal(f->cfg.lmdb_sync, SESS_SYNC_META);
}

static void
test_load_refuses_bad_enumerations(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\ncookie_same_site = loose\n",
                      "2: cookie_same_site = \"loose\": expected lax, strict, none (needs Secure) "
                      "or off");
    assert_load_error(f, "secret_file = s\ncookie_secure = sometimes\n",
                      "2: cookie_secure = \"sometimes\": expected auto (Secure over HTTPS), true "
                      "or false");
    assert_load_error(f, "secret_file = s\nlmdb_sync = async\n",
                      "2: lmdb_sync = \"async\": expected full, meta or none");
    assert_load_error(f, "secret_file = s\nencrypt = always\n",
                      "2: encrypt = \"always\": expected auto (yes in LMDB, no in Redis), true or "
                      "false");
    assert_load_error(f, "secret_file = s\ncookie_priority = urgent\n",
                      "2: cookie_priority = \"urgent\": expected none, low, medium or high");
}

static void
test_load_priority_is_stored_as_set_cookie_spells_it(void **state)
{
    static const char *const in[] = {"low", "MEDIUM", "High"};
    static const char *const out[] = {"Low", "Medium", "High"};
    struct fixture *f = *state;
    char text[64];

    for (size_t i = 0; i < 3; i++) {
        snprintf(text, sizeof(text), "cookie_priority = %s\n", in[i]);
        assert_int_equal(load_with_secret(f, text), SESS_OK);
        assert_string_equal(f->cfg.cookie_priority, out[i]);
    }
    assert_int_equal(load_with_secret(f, "cookie_priority = none\n"), SESS_OK);
    assert_null(f->cfg.cookie_priority);
}

/* --- numbers --- */

static void
test_load_refuses_bad_seconds_with_the_range(void **state)
{
    static const char *const bad[] = {
        "abc",   "-1",  "0", "31536001", "1e3", "+5", "12s", "", "99999999999999999999999",
        "1 800", "0x10"};
    struct fixture *f = *state;
    char text[128], want[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "secret_file = s\nmax_age = %s\n", bad[i]);
        snprintf(want, sizeof(want),
                 "2: max_age = \"%s\": expected a whole number of seconds from 1 to 31536000",
                 bad[i]);
        assert_load_error(f, text, want);
    }
}

static void
test_load_seconds_bounds(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_with_secret(f, "max_age = 31536000\nabsolute_timeout = 31536000\n"),
                     SESS_OK);
    assert_int_equal(f->cfg.max_age_s, 31536000);
    assert_int_equal(load_with_secret(f, "max_age = 1\ntouch_after = 0\n"), SESS_OK);
    assert_int_equal(f->cfg.max_age_s, 1);
    assert_int_equal(f->cfg.touch_after_s, 0);
    assert_load_error(f, "secret_file = s\nabsolute_timeout = -5\n",
                      "2: absolute_timeout = \"-5\": expected a whole number of seconds from 0 "
                      "(off) to 31536000");
}

static void
test_load_sizes_with_binary_suffixes(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        {"65536", 65536},
        {"64K", 65536},
        {"64k", 65536},
        {"1M", 1048576},
        {"512MiB", 536870912},
        {"1G", 1073741824},
        {"1073741824", 1073741824},
        {"3gib", 3221225472ULL},
        {"1T", 1099511627776ULL},
    };
    struct fixture *f = *state;
    char text[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "lmdb_map_size = %s\n", cases[i].text);
        assert_int_equal(load_with_secret(f, text), SESS_OK);
        assert_int_equal(f->cfg.lmdb_map_size_bytes, cases[i].bytes);
    }
}

static void
test_load_refuses_bad_sizes(void **state)
{
    static const char *const bad[] = {
        "65535", "63K", "1GB", "1 G", "G", "-1G", "2T", "18446744073709551616", "1KK", "1.5G"};
    struct fixture *f = *state;
    char text[128], want[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "secret_file = s\nlmdb_map_size = %s\n", bad[i]);
        snprintf(want, sizeof(want),
                 "2: lmdb_map_size = \"%s\": expected a size in bytes of at least 65536, such as "
                 "1073741824 or 1G (K, M, G, T: powers of 1024)",
                 bad[i]);
        assert_load_error(f, text, want);
    }
}

static void
test_load_max_body_bounds(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_with_secret(f, "max_body = 1\n"), SESS_OK);
    assert_int_equal(f->cfg.max_body_bytes, 1);
    assert_int_equal(load_with_secret(f, "max_body = 64M\n"), SESS_OK);
    assert_int_equal(f->cfg.max_body_bytes, 64 << 20);
    assert_load_error(f, "secret_file = s\nmax_body = 0\n",
                      "2: max_body = \"0\": expected a size in bytes from 1 to 67108864 (or with "
                      "K, M)");
}

static void
test_load_redis_timeout_bounds(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_with_secret(f, "redis_timeout_ms = 60000\n"), SESS_OK);
    assert_int_equal(f->cfg.redis_timeout_ms, 60000);
    assert_load_error(f, "secret_file = s\nredis_timeout_ms = 0\n",
                      "2: redis_timeout_ms = \"0\": expected a whole number of milliseconds from "
                      "1 to 60000");
}

/* --- the store --- */

static void
test_load_store_shapes(void **state)
{
    static const char *const good[] = {
        "redis://localhost",
        "redis://localhost:6379",
        "redis://127.0.0.1:6379/0",
        "rediss://user:pw@cache:6380/3",
        "redis://:secret@h:1/",
        "redis://[::1]:6379/1",
        "unix:/run/redis/redis.sock",
        "redis-sentinel://127.0.0.1:26379/mymaster",
        "redis-sentinel://:pw@a:1,b:2,[::1]:3/mymaster/2",
        "redis-sentinel://a,b/m",
    };
    static const char *const bad[] = {
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:port",
        "redis://h/db",
        "redis://h:6379/0?x",
        "redis://h o",
        "unix:relative.sock",
        "unix:",
        "lmdb:",
        "memcached://h",
        "",
        "redis://[::1",
        "redis://[]:1",
        "redis://h:",
        "redis-sentinel://a:1",
        "redis-sentinel://a:1/",
        "redis-sentinel://a:1,,b:2/m",
        "redis-sentinel://a:0/m",
        "redis-sentinel://a:1/m/x",
        "redis-sentinel:///m",
    };
    struct fixture *f = *state;
    char text[128];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text), "store = %s\n", good[i]);
        if (load_with_secret(f, text) != SESS_OK)
            fail_msg("%s refused: %s", good[i], f->msg);
        assert_string_equal(f->cfg.store, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "store = %s\n", bad[i]);
        if (load_with_secret(f, text) != SESS_ECONFIG)
            fail_msg("%s accepted", bad[i]);
        assert_non_null(strstr(f->msg, ":2: store = \""));
    }
}

static void
test_store_error_never_shows_the_password(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_with_secret(f, "store = redis://:hunter2@h:port/0\n"), SESS_ECONFIG);
    assert_null(strstr(f->msg, "hunter2"));
    assert_non_null(strstr(f->msg, "redis://:***@h:port/0"));
    assert_int_equal(load_with_secret(f, "store = redis://user:p@h o\n"), SESS_ECONFIG);
    assert_null(strstr(f->msg, "user:p@"));
}

/* A password longer than the quoted part of a value: it was cut before it
 * was masked, and the '@' that ends it went with the cut, so up to 51 of
 * its bytes were quoted. */
static void
test_store_error_never_shows_a_long_password(void **state)
{
    static const struct {
        const char *before, *after; /* around the password */
    } urls[] = {
        {"redis://:", "@h:port/0"},
        {"redis://user:", "@h:port/0"},
        {"redis-sentinel://:", "@a:1,b:2/m/x"},
        {"redis-sentinel://:", "@a:0/m"},
        {"unix:/r.sock?password=", "&db=x"},
        {"redis://:", "/with/slashes@h:port"},
        {"redis://", "@h:port"},
    };
    struct fixture *f = *state;
    char text[512], password[300];

    memset(password, 'Q', sizeof(password) - 1);
    password[sizeof(password) - 1] = '\0';
    memcpy(password, "PW", 2);
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        snprintf(text, sizeof(text), "secret_file = s\nstore = %s%s%s\n", urls[i].before, password,
                 urls[i].after);
        assert_int_equal(load(f, text), SESS_ECONFIG);
        if (strstr(f->msg, "PW") || strstr(f->msg, "QQ"))
            fail_msg("%s...%s shows password bytes: %s", urls[i].before, urls[i].after, f->msg);
        assert_non_null(strstr(f->msg, ":2: store = \""));
    }
}

static void
test_load_redis_prefix_and_min_replicas(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load_with_secret(f, ""), SESS_OK);
    assert_string_equal(f->cfg.redis_prefix, "sess:");
    assert_int_equal(f->cfg.redis_min_replicas, 0);
    assert_int_equal(load_with_secret(f, "redis_prefix = myapp:sess:\nredis_min_replicas = 2\n"),
                     SESS_OK);
    assert_string_equal(f->cfg.redis_prefix, "myapp:sess:");
    assert_int_equal(f->cfg.redis_min_replicas, 2);
    assert_load_error(f, "secret_file = s\nredis_prefix = a*b\n",
                      "2: redis_prefix = \"a*b\": expected 1 to 64 printable characters without "
                      "spaces or any of * ? [ ] \\");
    assert_int_equal(load_with_secret(f, "redis_prefix = x y\n"), SESS_ECONFIG);
    assert_load_error(f, "secret_file = s\nredis_min_replicas = 17\n",
                      "2: redis_min_replicas = \"17\": expected a whole number of replicas from 0 "
                      "to 16");
}

/* --- cookie names and attributes --- */

static void
test_load_refuses_a_name_that_is_not_a_token(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\nname = my sid\n",
                      "2: name = \"my sid\": expected a cookie name of letters, digits and "
                      "!#$%&'*+-.^_`|~ (RFC 7230 token)");
    assert_int_equal(load_with_secret(f, "name = sid;x\n"), SESS_ECONFIG);
    assert_int_equal(load_with_secret(f, "name = \"\"\n"), SESS_ECONFIG);
}

static void
test_load_refuses_bad_cookie_path_and_domain(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\ncookie_path = app\n",
                      "2: cookie_path = \"app\": expected a URL path starting with '/', printable "
                      "ASCII, no ';'");
    assert_int_equal(load_with_secret(f, "cookie_path = /a;b\n"), SESS_ECONFIG);
    assert_int_equal(load_with_secret(f, "cookie_path = /a\x01\n"), SESS_ECONFIG);
    assert_load_error(f, "secret_file = s\ncookie_domain = exa_mple.com\n",
                      "2: cookie_domain = \"exa_mple.com\": expected none or a host name such as "
                      "example.com");
    assert_int_equal(load_with_secret(f, "cookie_domain = .example.com\n"), SESS_OK);
    assert_string_equal(f->cfg.cookie_domain, ".example.com");
    assert_int_equal(load_with_secret(f, "cookie_domain = \"\"\n"), SESS_OK);
    assert_null(f->cfg.cookie_domain);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_load_every_key),
        T(test_load_every_boolean_spelling),
        T(test_load_refuses_a_bad_boolean),
        T(test_load_remember_and_session_limit),
        T(test_load_enumerations),
        T(test_load_refuses_bad_enumerations),
        T(test_load_priority_is_stored_as_set_cookie_spells_it),
        T(test_load_refuses_bad_seconds_with_the_range),
        T(test_load_seconds_bounds),
        T(test_load_sizes_with_binary_suffixes),
        T(test_load_refuses_bad_sizes),
        T(test_load_max_body_bounds),
        T(test_load_redis_timeout_bounds),
        T(test_load_store_shapes),
        T(test_store_error_never_shows_the_password),
        T(test_store_error_never_shows_a_long_password),
        T(test_load_redis_prefix_and_min_replicas),
        T(test_load_refuses_a_name_that_is_not_a_token),
        T(test_load_refuses_bad_cookie_path_and_domain),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
