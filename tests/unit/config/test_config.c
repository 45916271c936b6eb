/* The configuration file (lib/config/config.c): the defaults, the file's
 * syntax, unknown and duplicate keys with the exact message and line a user
 * would see, the checks across keys, and sess_config_set. Expected defaults
 * are README's table ("Configuration"); what each key accepts is test_config_keys.c's. */
#include <unistd.h>

#include "config_test.h"

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

/* --- the file --- */

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
test_load_refuses_a_line_without_equals(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\n  max_age 60\n",
                      "2: expected `key = value`, found \"  max_age 60\"");
    assert_load_error(f, "secret_file = s\n = 60\n",
                      "2: expected a key before '=', found \" = 60\"");
}

static void
test_load_refuses_a_duplicate_key(void **state)
{
    struct fixture *f = *state;

    assert_load_error(f, "secret_file = s\nmax_age = 60\n\n# again\nmax_age = 120\n",
                      "5: max_age is set twice (first on line 2); keep one");
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

/* --- unknown keys --- */

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

/* --- checks across keys --- */

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
        T(test_load_refuses_touch_after_above_max_age),
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
