/* The configuration file (config.c): every key, its default, and every error
 * with the exact message and line a user would see. Expected defaults are
 * DESIGN.md's table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "tmpfiles.h"

/* A directory with a configuration file in it, loaded. */
struct fixture {
    struct tmpdir dir;
    char real_dir[PATH_MAX]; /* realpath of dir: what relative paths resolve to */
    char conf[PATH_MAX];     /* the file's path as given to sess_config_load */
    struct sess_config cfg;
    char msg[SESS_ERRMSG_MAX];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || tmpdir_make(&f->dir) != 0 || realpath(f->dir.path, f->real_dir) == NULL)
        return -1;
    tmpdir_path(&f->dir, "sess.conf", f->conf);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    sess_config_free(&f->cfg);
    tmpdir_remove(&f->dir);
    free(f);
    return 0;
}

static enum sess_err
load(struct fixture *f, const char *text)
{
    sess_config_free(&f->cfg);
    f->msg[0] = '\0';
    assert_int_equal(tmpdir_write_str(&f->dir, "sess.conf", text), 0);
    return sess_config_load(&f->cfg, f->conf, f->msg, sizeof(f->msg));
}

/* Loads `secret_file = s` followed by `text`. */
static enum sess_err
load_with_secret(struct fixture *f, const char *text)
{
    char full[4096];

    snprintf(full, sizeof(full), "secret_file = secret\n%s", text);
    return load(f, full);
}

/* Asserts that loading fails with "CONF:" + `tail`. */
static void
assert_load_error(struct fixture *f, const char *text, const char *tail)
{
    char want[SESS_ERRMSG_MAX + PATH_MAX];

    assert_int_equal(load(f, text), SESS_ECONFIG);
    snprintf(want, sizeof(want), "%s:%s", f->conf, tail);
    assert_string_equal(f->msg, want);
    /* A failed load leaves nothing to free. */
    assert_null(f->cfg.name);
    assert_null(f->cfg.path);
}

static void
assert_path(struct fixture *f, const char *got, const char *prefix, const char *rel)
{
    char want[PATH_MAX + 64];

    snprintf(want, sizeof(want), "%s%s/%s", prefix, f->real_dir, rel);
    assert_string_equal(got, want);
}

/* --- defaults --- */

static void
test_defaults_match_the_design_table(void **state)
{
    struct sess_config cfg;

    (void)state;
    assert_int_equal(sess_config_defaults(&cfg, "/srv/app"), SESS_OK);
    assert_null(cfg.path);
    assert_string_equal(cfg.name, "sid");
    assert_null(cfg.secret_file);
    assert_string_equal(cfg.store, "lmdb:/srv/app/var/sessions");
    assert_int_equal(cfg.max_age_s, 1800);
    assert_int_equal(cfg.absolute_timeout_s, 43200);
    assert_false(cfg.rolling);
    assert_false(cfg.resave);
    assert_false(cfg.save_uninitialized);
    assert_int_equal(cfg.touch_after_s, 60);
    assert_int_equal(cfg.cookie_secure, SESS_SECURE_AUTO);
    assert_true(cfg.cookie_http_only);
    assert_int_equal(cfg.cookie_same_site, SESS_SAME_SITE_LAX);
    assert_string_equal(cfg.cookie_path, "/");
    assert_null(cfg.cookie_domain);
    assert_false(cfg.cookie_partitioned);
    assert_null(cfg.cookie_priority);
    assert_false(cfg.trust_proxy);
    assert_int_equal(cfg.encrypt, SESS_ENCRYPT_AUTO);
    assert_int_equal(cfg.max_body_bytes, 16384);
    assert_string_equal(cfg.html_dir, "/srv/app/html");
    assert_int_equal(cfg.lmdb_map_size_bytes, 1073741824);
    assert_int_equal(cfg.lmdb_sync, SESS_SYNC_META);
    assert_int_equal(cfg.redis_timeout_ms, 1000);
    sess_config_free(&cfg);
}

static void
test_defaults_resolve_against_the_current_directory(void **state)
{
    struct sess_config cfg;
    char cwd[PATH_MAX], want[PATH_MAX + 32];

    (void)state;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(sess_config_defaults(&cfg, NULL), SESS_OK);
    snprintf(want, sizeof(want), "%s/html", cwd);
    assert_string_equal(cfg.html_dir, want);
    sess_config_free(&cfg);
    assert_int_equal(sess_config_defaults(&cfg, "etc"), SESS_OK);
    snprintf(want, sizeof(want), "lmdb:%s/etc/var/sessions", cwd);
    assert_string_equal(cfg.store, want);
    sess_config_free(&cfg);
    /* The root directory gets no doubled slash. */
    assert_int_equal(sess_config_defaults(&cfg, "/"), SESS_OK);
    assert_string_equal(cfg.html_dir, "/html");
    sess_config_free(&cfg);
}

static void
test_free_accepts_null_and_a_freed_config(void **state)
{
    struct sess_config cfg;

    (void)state;
    sess_config_free(NULL);
    assert_int_equal(sess_config_defaults(&cfg, "/x"), SESS_OK);
    sess_config_free(&cfg);
    sess_config_free(&cfg);
    assert_null(cfg.name);
}

/* --- loading --- */

static void
test_load_minimal_file_resolves_paths_from_its_directory(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = secret\n"), SESS_OK);
    assert_string_equal(f->cfg.path, f->conf);
    assert_path(f, f->cfg.secret_file, "", "secret");
    assert_path(f, f->cfg.store, "lmdb:", "var/sessions");
    assert_path(f, f->cfg.html_dir, "", "html");
    assert_string_equal(f->cfg.name, "sid");
}

static void
test_load_resolves_through_a_symlinked_directory(void **state)
{
    struct fixture *f = *state;
    char link[PATH_MAX], conf[PATH_MAX + 16];

    assert_int_equal(mkdir(tmpdir_path(&f->dir, "real", link), 0700), 0);
    assert_int_equal(symlink("real", tmpdir_path(&f->dir, "alias", link)), 0);
    assert_int_equal(tmpdir_write_str(&f->dir, "real/sess.conf", "secret_file = s\n"), 0);
    snprintf(conf, sizeof(conf), "%s/sess.conf", link);
    assert_int_equal(sess_config_load(&f->cfg, conf, f->msg, sizeof(f->msg)), SESS_OK);
    assert_path(f, f->cfg.secret_file, "", "real/s");
}

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
test_load_refuses_touch_after_above_max_age(void **state)
{
    struct fixture *f = *state;
    char want[PATH_MAX + 512];

    /* Either order: the check runs once the whole file is read. */
    assert_int_equal(load_with_secret(f, "touch_after = 300\nmax_age = 300\n"), SESS_OK);
    assert_int_equal(load_with_secret(f, "touch_after = 301\nmax_age = 300\n"), SESS_ECONFIG);
    snprintf(want, sizeof(want),
             "%s: touch_after = 301 is more than max_age = 300 (a session would expire before "
             "its expiry is written)",
             f->conf);
    assert_string_equal(f->msg, want);
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

static void
test_load_suggests_the_nearest_key(void **state)
{
    static const struct {
        const char *typed;
        const char *meant;
    } cases[] = {
        {"max_agee", "max_age"},
        {"maxAge", "max_age"},
        {"saveUninitialized", "save_uninitialized"},
        {"secret", "secret_file"},
        {"httpOnly", "cookie_http_only"},
        {"sameSite", "cookie_same_site"},
        {"cookie_samesite", "cookie_same_site"},
        {"touch_afer", "touch_after"},
        {"lmdb_mapsize", "lmdb_map_size"},
    };
    struct fixture *f = *state;
    char text[128], want[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "# comment\n%s = 1\n", cases[i].typed);
        snprintf(want, sizeof(want), "2: unknown key \"%s\" (did you mean \"%s\"?)", cases[i].typed,
                 cases[i].meant);
        assert_load_error(f, text, want);
    }
}

static void
test_load_lists_the_keys_when_nothing_is_near(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "frobnicate = 1\n"), SESS_ECONFIG);
    assert_non_null(strstr(f->msg, ":1: unknown key \"frobnicate\" (keys: name, secret_file, "));
}

static void
test_load_quotes_an_unprintable_key_safely(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "bad\x1b[31mkey\"\\ = 1\n"), SESS_ECONFIG);
    assert_non_null(strstr(f->msg, ":1: unknown key \"bad\\x1b[31mkey\\\"\\\\\""));
}

static void
test_load_refuses_a_duplicate_key(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\nmax_age = 60\n\n# again\nmax_age = 120\n",
                      "5: max_age is set twice (first on line 2); keep one");
}

static void
test_load_refuses_a_line_without_equals(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\n  max_age 60\n",
                      "2: expected `key = value`, found \"  max_age 60\"");
    assert_load_error(f, "secret_file = s\n = 60\n",
                      "2: expected a key before '=', found \" = 60\"");
}

static void
test_load_skips_comments_and_blank_lines(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "# a whole-line comment\n"
                             "   # an indented comment\n"
                             "\n"
                             "   \t\n"
                             "secret_file = my#secret   # a trailing comment\n"
                             "name = sid\t# after a tab\n"
                             "max_age=90#no space: part of the value\n"),
                     SESS_ECONFIG);
    /* '#' right after a value is part of it, so max_age sees "90#no". */
    assert_non_null(strstr(f->msg, ":7: max_age = \"90#no space: part of the value\""));
    assert_int_equal(load(f, "# a whole-line comment\n"
                             "secret_file = my#secret   # a trailing comment\n"
                             "name = sid\t# after a tab\n"
                             "max_age=90\n"),
                     SESS_OK);
    assert_path(f, f->cfg.secret_file, "", "my#secret");
    assert_string_equal(f->cfg.name, "sid");
    assert_int_equal(f->cfg.max_age_s, 90);
}

static void
test_load_strips_optional_quotes(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = \"dir with spaces/secret #1\"  # comment\n"
                             "cookie_path = '/app'\n"
                             "name = \"sid\"\n"),
                     SESS_OK);
    assert_path(f, f->cfg.secret_file, "", "dir with spaces/secret #1");
    assert_string_equal(f->cfg.cookie_path, "/app");
    assert_string_equal(f->cfg.name, "sid");
}

static void
test_load_refuses_broken_quotes(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = \"s\nname = x\n",
                      "1: the quoted value has no closing quote, found \"secret_file = \\\"s\"");
    assert_load_error(f, "secret_file = s\nname = \"a\"b\n",
                      "2: unexpected text after the closing quote, found \"name = \\\"a\\\"b\"");
}

static void
test_load_accepts_crlf_line_endings(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = s\r\nmax_age = 120\r\n"), SESS_OK);
    assert_int_equal(f->cfg.max_age_s, 120);
    assert_path(f, f->cfg.secret_file, "", "s");
}

static void
test_load_refuses_a_nul_byte(void **state)
{
    struct fixture *f = *state;
    char want[PATH_MAX + 128];

    assert_int_equal(tmpdir_write(&f->dir, "sess.conf", "secret_file = s\nname = a\0b\n", 25, 0600),
                     0);
    assert_int_equal(sess_config_load(&f->cfg, f->conf, f->msg, sizeof(f->msg)), SESS_ECONFIG);
    snprintf(want, sizeof(want), "%s:2: a NUL byte in the line (is this a text file?)", f->conf);
    assert_string_equal(f->msg, want);
}

static void
test_load_requires_secret_file(void **state)
{
    struct fixture *f = *state;
    char want[PATH_MAX + 128];

    assert_int_equal(load(f, "max_age = 60\n"), SESS_ECONFIG);
    snprintf(want, sizeof(want),
             "%s: secret_file is required (a file with one secret of 32+ bytes per line)", f->conf);
    assert_string_equal(f->msg, want);
    assert_load_error(f, "secret_file =\n",
                      "1: secret_file = \"\": expected the path of a file with one secret of 32+ "
                      "bytes per line");
}

static void
test_load_reports_a_missing_file(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX], want[PATH_MAX + 128];

    tmpdir_path(&f->dir, "absent.conf", path);
    assert_int_equal(sess_config_load(&f->cfg, path, f->msg, sizeof(f->msg)), SESS_ECONFIG);
    snprintf(want, sizeof(want), "%s: cannot open the configuration: No such file or directory",
             path);
    assert_string_equal(f->msg, want);
}

static void
test_load_keeps_absolute_paths(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = /run/secrets/sid\nhtml_dir = /srv/html\n"
                             "store = lmdb:/var/lib/fcgi-session\n"),
                     SESS_OK);
    assert_string_equal(f->cfg.secret_file, "/run/secrets/sid");
    assert_string_equal(f->cfg.html_dir, "/srv/html");
    assert_string_equal(f->cfg.store, "lmdb:/var/lib/fcgi-session");
}

static void
test_load_resolves_relative_store_and_dot_paths(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = ./keys/secret\nstore = lmdb:./db\nhtml_dir = .\n"),
                     SESS_OK);
    assert_path(f, f->cfg.secret_file, "", "keys/secret");
    assert_path(f, f->cfg.store, "lmdb:", "db");
    assert_string_equal(f->cfg.html_dir, f->real_dir);
}

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

static void
test_load_same_site_none_needs_secure(void **state)
{
    struct fixture *f = *state;
    char want[PATH_MAX + 512];

    assert_int_equal(load_with_secret(f, "cookie_same_site = none\ncookie_secure = false\n"),
                     SESS_ECONFIG);
    snprintf(want, sizeof(want),
             "%s: cookie_same_site = none needs cookie_secure = auto or true (browsers drop "
             "SameSite=None cookies without Secure)",
             f->conf);
    assert_string_equal(f->msg, want);
    assert_int_equal(load_with_secret(f, "cookie_same_site = none\ncookie_secure = auto\n"),
                     SESS_OK);
}

static void
test_load_host_prefix_rules(void **state)
{
    static const char *const bad[] = {
        "name = __Host-sid\ncookie_path = /app\n",
        "name = __Host-sid\ncookie_domain = example.com\n",
        "name = __Host-sid\ncookie_secure = false\n",
        "name = __host-sid\ncookie_secure = false\n",
    };
    struct fixture *f = *state;
    char want[PATH_MAX + 512];

    snprintf(want, sizeof(want),
             "%s: a name starting with __Host- needs cookie_secure = auto or true, cookie_path "
             "= / and no cookie_domain (browsers drop it otherwise)",
             f->conf);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load_with_secret(f, bad[i]), SESS_ECONFIG);
        assert_string_equal(f->msg, want);
    }
    assert_int_equal(load_with_secret(f, "name = __Host-sid\ncookie_secure = true\n"), SESS_OK);
}

static void
test_load_secure_prefix_rule(void **state)
{
    struct fixture *f = *state;
    char want[PATH_MAX + 512];

    assert_int_equal(load_with_secret(f, "name = __Secure-sid\ncookie_secure = no\n"),
                     SESS_ECONFIG);
    snprintf(want, sizeof(want),
             "%s: a name starting with __Secure- needs cookie_secure = auto or true (browsers "
             "drop it otherwise)",
             f->conf);
    assert_string_equal(f->msg, want);
    assert_int_equal(load_with_secret(f, "name = __Secure-sid\ncookie_path = /app\n"
                                         "cookie_domain = example.com\n"),
                     SESS_OK);
}

/* --- set and check --- */

static void
test_set_overrides_one_key_and_names_its_origin(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = s\n"), SESS_OK);
    assert_int_equal(
        sess_config_set(&f->cfg, "STORE", "store", "redis://r:6379/1", f->msg, sizeof(f->msg)),
        SESS_OK);
    assert_string_equal(f->cfg.store, "redis://r:6379/1");
    assert_int_equal(
        sess_config_set(&f->cfg, "STORE", "store", "mongodb://x", f->msg, sizeof(f->msg)),
        SESS_ECONFIG);
    assert_string_equal(f->msg, "STORE: store = \"mongodb://x\": expected lmdb:DIR, "
                                "redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://..., "
                                "redis-sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB] "
                                "or unix:/SOCKET");
    /* A refused value leaves the previous one. */
    assert_string_equal(f->cfg.store, "redis://r:6379/1");
}

static void
test_set_resolves_relative_paths_from_the_file(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = s\n"), SESS_OK);
    assert_int_equal(
        sess_config_set(&f->cfg, "STORE", "store", "lmdb:other", f->msg, sizeof(f->msg)), SESS_OK);
    assert_path(f, f->cfg.store, "lmdb:", "other");
}

static void
test_set_refuses_an_unknown_key(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(load(f, "secret_file = s\n"), SESS_OK);
    assert_int_equal(sess_config_set(&f->cfg, "env", "stor", "x", f->msg, sizeof(f->msg)),
                     SESS_ECONFIG);
    assert_string_equal(f->msg, "env: unknown key \"stor\" (did you mean \"store\"?)");
}

static void
test_check_runs_on_a_config_built_in_code(void **state)
{
    struct sess_config cfg;
    char msg[SESS_ERRMSG_MAX];

    (void)state;
    assert_int_equal(sess_config_defaults(&cfg, "/srv"), SESS_OK);
    assert_int_equal(sess_config_check(&cfg, msg, sizeof(msg)), SESS_ECONFIG);
    assert_string_equal(msg, "configuration: secret_file is required (a file with one secret "
                             "of 32+ bytes per line)");
    assert_int_equal(sess_config_set(&cfg, "test", "secret_file", "/srv/secret", msg, sizeof(msg)),
                     SESS_OK);
    assert_int_equal(sess_config_check(&cfg, msg, sizeof(msg)), SESS_OK);
    assert_int_equal(sess_config_set(&cfg, "test", "name", "__Host-x", msg, sizeof(msg)), SESS_OK);
    assert_int_equal(sess_config_set(&cfg, "test", "cookie_path", "/a", msg, sizeof(msg)), SESS_OK);
    assert_int_equal(sess_config_check(&cfg, msg, sizeof(msg)), SESS_ECONFIG);
    assert_non_null(strstr(msg, "__Host-"));
    sess_config_free(&cfg);
}

static void
test_messages_are_truncated_not_overflowed(void **state)
{
    struct fixture *f = *state;
    char small[24];

    assert_int_equal(tmpdir_write_str(&f->dir, "sess.conf", "max_agee = 1\n"), 0);
    memset(small, 'x', sizeof(small));
    assert_int_equal(sess_config_load(&f->cfg, f->conf, small, sizeof(small)), SESS_ECONFIG);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, f->conf, sizeof(small) - 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_the_design_table),
        cmocka_unit_test(test_defaults_resolve_against_the_current_directory),
        cmocka_unit_test(test_free_accepts_null_and_a_freed_config),
        cmocka_unit_test(test_check_runs_on_a_config_built_in_code),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_load_minimal_file_resolves_paths_from_its_directory),
        T(test_load_resolves_through_a_symlinked_directory),
        T(test_load_every_key),
        T(test_load_every_boolean_spelling),
        T(test_load_refuses_a_bad_boolean),
        T(test_load_remember_and_session_limit),
        T(test_load_enumerations),
        T(test_load_refuses_bad_enumerations),
        T(test_load_priority_is_stored_as_set_cookie_spells_it),
        T(test_load_refuses_bad_seconds_with_the_range),
        T(test_load_seconds_bounds),
        T(test_load_refuses_touch_after_above_max_age),
        T(test_load_sizes_with_binary_suffixes),
        T(test_load_refuses_bad_sizes),
        T(test_load_max_body_bounds),
        T(test_load_redis_timeout_bounds),
        T(test_load_suggests_the_nearest_key),
        T(test_load_lists_the_keys_when_nothing_is_near),
        T(test_load_quotes_an_unprintable_key_safely),
        T(test_load_refuses_a_duplicate_key),
        T(test_load_refuses_a_line_without_equals),
        T(test_load_skips_comments_and_blank_lines),
        T(test_load_strips_optional_quotes),
        T(test_load_refuses_broken_quotes),
        T(test_load_accepts_crlf_line_endings),
        T(test_load_refuses_a_nul_byte),
        T(test_load_requires_secret_file),
        T(test_load_reports_a_missing_file),
        T(test_load_keeps_absolute_paths),
        T(test_load_resolves_relative_store_and_dot_paths),
        T(test_load_store_shapes),
        T(test_store_error_never_shows_the_password),
        T(test_store_error_never_shows_a_long_password),
        T(test_load_redis_prefix_and_min_replicas),
        T(test_load_refuses_a_name_that_is_not_a_token),
        T(test_load_refuses_bad_cookie_path_and_domain),
        T(test_load_same_site_none_needs_secure),
        T(test_load_host_prefix_rules),
        T(test_load_secure_prefix_rule),
        T(test_set_overrides_one_key_and_names_its_origin),
        T(test_set_resolves_relative_paths_from_the_file),
        T(test_set_refuses_an_unknown_key),
        T(test_messages_are_truncated_not_overflowed),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
