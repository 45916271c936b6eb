/* The Redis URL grammar and its password masking (codec/redis_url.c), with
 * no server: what each form names, what each mistake says (never quoting
 * the password), and what a message may show of a URL. The forms are
 * node-redis's and connect-redis's (redis://, rediss://, a unix socket)
 * and the sentinel form of ioredis; the '@' rule is node-redis's: the
 * userinfo ends at the URL's last '@'. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "redis_url.h"

/* ------------------------------------------------------------------------
 * What a URL names
 * ------------------------------------------------------------------------ */

struct parse_case {
    const char *url;
    enum sess_redis_kind kind;
    const char *host; /* TCP, TLS: the server; UNIX: the socket's path */
    int port;
    const char *user;     /* NULL: none */
    const char *password; /* NULL: none */
    int db;
};

static const struct parse_case parse_cases[] = {
    {"redis://localhost", SESS_REDIS_TCP, "localhost", 6379, NULL, NULL, 0},
    {"redis://127.0.0.1:7000/2", SESS_REDIS_TCP, "127.0.0.1", 7000, NULL, NULL, 2},
    {"redis://h/", SESS_REDIS_TCP, "h", 6379, NULL, NULL, 0},
    {"redis://h:65535/0", SESS_REDIS_TCP, "h", 65535, NULL, NULL, 0},
    {"redis://:pw@h", SESS_REDIS_TCP, "h", 6379, NULL, "pw", 0},
    {"redis://alice:pw@h:1/3", SESS_REDIS_TCP, "h", 1, "alice", "pw", 3},
    /* Percent-decoded, as node-redis does. */
    {"redis://a%20b:p%40ss%2Fx@h", SESS_REDIS_TCP, "h", 6379, "a b", "p@ss/x", 0},
    /* The last '@' ends the userinfo: '/' and '@' may sit in a password. */
    {"redis://:a/b@c@h:7/1", SESS_REDIS_TCP, "h", 7, NULL, "a/b@c", 1},
    /* The first ':' ends the user. */
    {"redis://us:er:pw@h", SESS_REDIS_TCP, "h", 6379, "us", "er:pw", 0},
    {"redis://[::1]:6380/4", SESS_REDIS_TCP, "::1", 6380, NULL, NULL, 4},
    {"redis://[fe80::1]", SESS_REDIS_TCP, "fe80::1", 6379, NULL, NULL, 0},
    {"redis://:pw@[::1]:1/2", SESS_REDIS_TCP, "::1", 1, NULL, "pw", 2},
    {"rediss://cache.example:6380/1", SESS_REDIS_TLS, "cache.example", 6380, NULL, NULL, 1},
    {"unix:/run/redis.sock", SESS_REDIS_UNIX, "/run/redis.sock", 0, NULL, NULL, 0},
    {"unix:///run/redis.sock?db=2", SESS_REDIS_UNIX, "/run/redis.sock", 0, NULL, NULL, 2},
    {"unix:/r.sock?password=p%26w&db=5", SESS_REDIS_UNIX, "/r.sock", 0, NULL, "p&w", 5},
    /* A raw '@' is just a byte in a query. */
    {"unix:/r.sock?db=1&password=a@b", SESS_REDIS_UNIX, "/r.sock", 0, NULL, "a@b", 1},
    /* Given twice, the last wins, as in a query string. */
    {"unix:/r.sock?password=a&password=b", SESS_REDIS_UNIX, "/r.sock", 0, NULL, "b", 0},
};

static void
assert_parses_as(const struct parse_case *c)
{
    struct sess_redis_url u;
    char why[200];

    if (sess__redis_url_parse(c->url, &u, why, sizeof why) != SESS_OK)
        fail_msg("%s: %s", c->url, why);
    assert_int_equal(u.kind, c->kind);
    if (c->kind == SESS_REDIS_UNIX) {
        assert_string_equal(u.socket_path, c->host);
        assert_null(u.node.host);
    } else {
        assert_string_equal(u.node.host, c->host);
        assert_int_equal(u.node.port, c->port);
        assert_null(u.socket_path);
    }
    if (c->user)
        assert_string_equal(u.user, c->user);
    else
        assert_null(u.user);
    if (c->password)
        assert_string_equal(u.password, c->password);
    else
        assert_null(u.password);
    assert_int_equal(u.db, c->db);
    assert_int_equal(u.sentinels, 0);
    assert_null(u.master);
    sess__redis_url_free(&u);
}

static void
test_parse_names_server_user_password_and_db(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++)
        assert_parses_as(&parse_cases[i]);
}

static void
test_sentinel_url_names_sentinels_master_password_and_db(void **state)
{
    struct sess_redis_url u;
    char why[200];

    (void)state;
    assert_int_equal(sess__redis_url_parse("redis-sentinel://:p%40ss@10.0.0.1:26380,sentinel-b,"
                                           "[::1]:26381/my-master/3",
                                           &u, why, sizeof why),
                     SESS_OK);
    assert_int_equal(u.kind, SESS_REDIS_SENTINEL);
    assert_int_equal(u.sentinels, 3);
    assert_string_equal(u.sentinel[0].host, "10.0.0.1");
    assert_int_equal(u.sentinel[0].port, 26380);
    assert_string_equal(u.sentinel[1].host, "sentinel-b");
    assert_int_equal(u.sentinel[1].port, 26379);
    assert_string_equal(u.sentinel[2].host, "::1");
    assert_int_equal(u.sentinel[2].port, 26381);
    assert_string_equal(u.master, "my-master");
    assert_string_equal(u.password, "p@ss");
    assert_null(u.user);
    assert_null(u.node.host);
    assert_int_equal(u.db, 3);
    sess__redis_url_free(&u);

    assert_int_equal(sess__redis_url_parse("redis-sentinel://s:1/m", &u, why, sizeof why), SESS_OK);
    assert_int_equal(u.sentinels, 1);
    assert_string_equal(u.master, "m");
    assert_null(u.password);
    assert_int_equal(u.db, 0);
    sess__redis_url_free(&u);
}

static void
test_sentinel_url_takes_sixteen_sentinels_and_a_128_byte_master(void **state)
{
    char url[512], master[130];
    struct sess_redis_url u;
    char why[200];
    int n;

    (void)state;
    memset(master, 'm', 128);
    master[128] = '\0';
    n = snprintf(url, sizeof url, "redis-sentinel://");
    for (int i = 0; i < SESS_REDIS_SENTINELS_MAX; i++)
        n += snprintf(url + n, sizeof url - (size_t)n, "%ss%d:%d", i ? "," : "", i, 1000 + i);
    snprintf(url + n, sizeof url - (size_t)n, "/%s", master);
    assert_int_equal(sess__redis_url_parse(url, &u, why, sizeof why), SESS_OK);
    assert_int_equal(u.sentinels, SESS_REDIS_SENTINELS_MAX);
    assert_string_equal(u.sentinel[15].host, "s15");
    assert_int_equal(u.sentinel[15].port, 1015);
    assert_int_equal(strlen(u.master), 128);
    sess__redis_url_free(&u);

    /* One byte more in the name is too long. */
    snprintf(url, sizeof url, "redis-sentinel://s/%sm", master);
    assert_int_equal(sess__redis_url_parse(url, &u, why, sizeof why), SESS_ECONFIG);
    assert_non_null(strstr(why, "longer than 128"));
    sess__redis_url_free(&u);
}

static void
test_is_redis_knows_the_four_schemes_only(void **state)
{
    static const char *const yes[] = {"redis://", "rediss://h", "redis-sentinel://s/m",
                                      "unix:", "unix:/r.sock"};
    static const char *const no[] = {"",           "lmdb:/var/lib/sessions",
                                     "REDIS://h",  "redis:/h",
                                     "redis:",     "http://h",
                                     " redis://h", "unixx:/s"};

    (void)state;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!sess__redis_url_is_redis(yes[i]))
            fail_msg("%s: not taken for a Redis URL", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (sess__redis_url_is_redis(no[i]))
            fail_msg("\"%s\": taken for a Redis URL", no[i]);
}

/* ------------------------------------------------------------------------
 * What a mistake says
 * ------------------------------------------------------------------------ */

static const struct {
    const char *url;
    const char *says;
} error_cases[] = {
    {"", "not a Redis URL"},
    {"http://SECRET@h", "not a Redis URL"},
    {"redis://", "no host"},
    {"redis://:SECRET@", "no host"},
    {"redis://:SECRET@:6379", "no host"},
    {"redis://[::1", "no host"},
    {"redis://[]:1", "no host"},
    {"redis://[::1]x", "no host"},
    {"redis://h:", "port"},
    {"redis://h:0", "port"},
    {"redis://h:65536", "port"},
    {"redis://h:80x", "port"},
    {"redis://h:-1", "port"},
    {"redis://h:0000000001", "port"},
    {"redis://:SECRET@h/x", "database"},
    {"redis://h/-1", "database"},
    {"redis://h/1/2", "database"},
    {"redis://h/9999999999", "database"},
    {"redis://SECRET@h", "needs a password"},
    {"redis://:SECRET%zz@h", "escape"},
    {"redis://:SECRET%4@h", "escape"},
    {"redis://:SECRET%00@h", "escape"},
    {"redis://us%zzer:SECRET@h", "escape"},
    {"redis://:SECRET@h /0", "spaces"},
    {"redis://:SECRET@h\t", "control"},
    {"redis://:SECRET\x7f@h", "control"},
    {"rediss://:SECRET@h:99999", "port"},
    {"unix:", "absolute path"},
    {"unix:r.sock", "absolute path"},
    {"unix:/", "absolute path"},
    {"unix:/?db=1", "absolute path"},
    {"unix:/r.sock?db=x&password=SECRET", "db= must be a number"},
    {"unix:/r.sock?db=", "db= must be a number"},
    {"unix:/r.sock?password=SECRET&passwd=SECRET", "unknown parameter passwd"},
    {"unix:/r.sock?password=SECRET%zz", "escape"},
    {"redis-sentinel://:SECRET@a:1", "no master name"},
    {"redis-sentinel://:SECRET@a:1/", "no master name"},
    {"redis-sentinel://:SECRET@a:1//m", "no master name"},
    {"redis-sentinel://:SECRET@a:1,,b:2/m", "no host"},
    {"redis-sentinel://:SECRET@a:0/m", "port"},
    {"redis-sentinel://:SECRET@a:1/m/x", "database"},
    {"redis-sentinel://SECRET@a:1/m", "needs a password"},
    {"redis-sentinel://:SECRET%zz@a:1/m", "escape"},
    {"redis-sentinel://:SECRET@a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q/m", "more than 16"},
};

static void
test_errors_say_what_is_wrong_and_never_quote_the_password(void **state)
{
    struct sess_redis_url u;
    char why[200];

    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const char *url = error_cases[i].url;

        memset(why, 'x', sizeof why);
        if (sess__redis_url_parse(url, &u, why, sizeof why) != SESS_ECONFIG)
            fail_msg("%s: accepted", url);
        if (!strstr(why, error_cases[i].says))
            fail_msg("%s: \"%s\" does not say %s", url, why, error_cases[i].says);
        if (strstr(why, "SECRET"))
            fail_msg("%s: \"%s\" quotes the password", url, why);
        sess__redis_url_free(&u);
    }
}

/* Whatever the result, the struct can be freed, and freeing leaves it
 * zeroed (free twice is harmless, and so is free(NULL)). */
static void
test_free_after_any_result_leaves_nothing(void **state)
{
    static const struct sess_redis_url zero;
    static const struct {
        const char *url;
        enum sess_err err;
    } urls[] = {
        {"redis://u:p@h:1/2", SESS_OK},
        {"redis-sentinel://:p@a:1,b:2/m/3", SESS_OK},
        {"unix:/r.sock?password=p&db=1", SESS_OK},
        {"redis-sentinel://:p@a:1,b:0/m", SESS_ECONFIG}, /* at the second sentinel */
        {"unix:/r.sock?password=p&bad=1", SESS_ECONFIG}, /* after the password */
        {"redis://u:p@h:1/x", SESS_ECONFIG},             /* at the database */
    };
    struct sess_redis_url u;
    char why[200];

    (void)state;
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        assert_int_equal(sess__redis_url_parse(urls[i].url, &u, why, sizeof why), urls[i].err);
        sess__redis_url_free(&u);
        assert_memory_equal(&u, &zero, sizeof u);
        sess__redis_url_free(&u);
    }
    sess__redis_url_free(NULL);
}

/* A `why` too short for the message is cut, never overrun; a zero length
 * is allowed. */
static void
test_why_is_cut_to_its_length(void **state)
{
    struct sess_redis_url u;
    char why[8];

    (void)state;
    memset(why, '#', sizeof why);
    assert_int_equal(sess__redis_url_parse("redis://h:0", &u, why, 5), SESS_ECONFIG);
    assert_int_equal(strlen(why), 4);
    assert_int_equal(why[5], '#');
    sess__redis_url_free(&u);
    assert_int_equal(sess__redis_url_parse("redis://h:0", &u, why, 0), SESS_ECONFIG);
    sess__redis_url_free(&u);
    /* A sentinel's error adds to what the node's said. */
    memset(why, '#', sizeof why);
    assert_int_equal(sess__redis_url_parse("redis-sentinel://a:0/m", &u, why, 0), SESS_ECONFIG);
    assert_int_equal(why[0], '#');
    sess__redis_url_free(&u);
}

/* ------------------------------------------------------------------------
 * Ports and how a server is named
 * ------------------------------------------------------------------------ */

/* Leading zeros are allowed, as in a WHATWG URL's port (node-redis). */
static void
test_port_is_1_to_65535_in_decimal_only(void **state)
{
    static const struct {
        const char *text;
        int port; /* 0: refused */
    } cases[] = {
        {"1", 1},     {"6379", 6379}, {"65535", 65535}, {"06379", 6379}, {"0", 0},
        {"65536", 0}, {"99999", 0},   {"", 0},          {"-1", 0},       {"+1", 0},
        {" 1", 0},    {"1 ", 0},      {"0x10", 0},      {"12a", 0},
    };
    int port;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        port = -7;
        bool is_port = sess__redis_port_parse(cases[i].text, strlen(cases[i].text), &port);
        if (is_port != (cases[i].port != 0) || (is_port && port != cases[i].port))
            fail_msg("\"%s\": %s %d", cases[i].text, is_port ? "read as" : "refused", port);
    }
    /* The length bounds the digits: a sentinel's reply is not NUL-ended. */
    assert_true(sess__redis_port_parse("6379junk", 4, &port));
    assert_int_equal(port, 6379);
}

static void
test_node_format_brackets_ipv6_as_a_url_does(void **state)
{
    char out[160], longhost[200];

    (void)state;
    sess__redis_node_format("cache.example", 6380, out, sizeof out);
    assert_string_equal(out, "cache.example:6380");
    sess__redis_node_format("10.0.0.1", 26379, out, sizeof out);
    assert_string_equal(out, "10.0.0.1:26379");
    sess__redis_node_format("::1", 6379, out, sizeof out);
    assert_string_equal(out, "[::1]:6379");
    sess__redis_node_format("h", 1, out, 4);
    assert_string_equal(out, "h:1");
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    sess__redis_node_format(longhost, 7, out, sizeof out);
    assert_int_equal(strlen(out), 100 + 2);
    assert_string_equal(out + 100, ":7");
}

/* ------------------------------------------------------------------------
 * Masking
 * ------------------------------------------------------------------------ */

static const struct {
    const char *url, *shown;
} mask_cases[] = {
    {"redis://h:1/0", "redis://h:1/0"},
    {"redis://:pw@h:1/0", "redis://:***@h:1/0"},
    {"redis://user:pw@h", "redis://user:***@h"},
    {"redis://:@h", "redis://:***@h"},
    /* Without a ':' all of it may be a password put in the wrong place. */
    {"redis://pw@h", "redis://***@h"},
    {"redis://:a/b@c@h:7/1", "redis://:***@h:7/1"},
    {"redis://us:er:pw@h", "redis://us:***@h"},
    {"rediss://u:pw@[::1]:6380", "rediss://u:***@[::1]:6380"},
    {"redis-sentinel://u:pw@a:1,b:2/m", "redis-sentinel://u:***@a:1,b:2/m"},
    /* Both rules apply wherever they match, and hide their union: more
     * than the password at times, never less. */
    {"redis://:password=x@h", "redis://:***"},
    {"unix:/s?xpassword=pw", "unix:/s?xpassword=***"},
    {"unix:/s", "unix:/s"},
    {"unix:/s?db=1&password=pw", "unix:/s?db=1&password=***"},
    {"unix:/s?password=pw&db=1", "unix:/s?password=***&db=1"},
    {"unix:/s?password=", "unix:/s?password=***"},
    /* A raw '@' in a query's password: all of it goes, whatever the '@'
     * rule makes of it. */
    {"unix:///s?password=a@b", "unix://***"},
    {"unix:/s?password=a@b", "unix:/s?password=***"},
    /* Every password=, the last being the one that counts. */
    {"unix:/s?password=a&password=b", "unix:/s?password=***&password=***"},
    /* Any URL may carry a password (store.c masks what it cannot name). */
    {"lmdb:/var/lib/sessions", "lmdb:/var/lib/sessions"},
    {"http://u:pw@h/", "http://u:***@h/"},
    {"", ""},
};

static void
test_mask_hides_every_password_and_keeps_the_rest(void **state)
{
    char out[256];

    (void)state;
    for (size_t i = 0; i < sizeof mask_cases / sizeof mask_cases[0]; i++) {
        sess__redis_url_mask(mask_cases[i].url, out, sizeof out);
        if (strcmp(out, mask_cases[i].shown) != 0)
            fail_msg("%s: shown as %s, not %s", mask_cases[i].url, out, mask_cases[i].shown);
    }
}

/* The mask comes before the cut: however long the password and however
 * short the message, no byte of it survives (a cut first could drop the
 * '@' that says where the password ends). */
static void
test_mask_before_the_cut_leaves_no_byte_of_a_long_password(void **state)
{
    static const struct {
        const char *before, *after; /* around the password */
    } forms[] = {
        {"redis://:", "@h:1/0"},
        {"redis://user:", "@h:1/0"},
        {"redis-sentinel://:", "@a:1/m"},
        {"unix:/r.sock?password=", "&db=1"},
        {"redis://:", "/with/slashes@h"},
        {"redis://", "@h"},
        {"unix:///r.sock?password=", "@x"},
    };
    static const size_t lens[] = {1, 8, 12, 16, 40, 100, 400};
    char password[300], url[400], out[400];

    memset(password, 'Q', sizeof password - 1);
    password[sizeof password - 1] = '\0';
    memcpy(password, "PW", 2);
    (void)state;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        snprintf(url, sizeof url, "%s%s%s", forms[i].before, password, forms[i].after);
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            memset(out, '#', sizeof out);
            sess__redis_url_mask(url, out, lens[k]);
            assert_true(strlen(out) < lens[k]);
            if (strstr(out, "PW") || strstr(out, "Q"))
                fail_msg("%s...%s in %zu bytes: %s", forms[i].before, forms[i].after, lens[k], out);
        }
        sess__redis_url_mask(url, out, sizeof out);
        assert_non_null(strstr(out, "***"));
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names_server_user_password_and_db),
        cmocka_unit_test(test_sentinel_url_names_sentinels_master_password_and_db),
        cmocka_unit_test(test_sentinel_url_takes_sixteen_sentinels_and_a_128_byte_master),
        cmocka_unit_test(test_is_redis_knows_the_four_schemes_only),
        cmocka_unit_test(test_errors_say_what_is_wrong_and_never_quote_the_password),
        cmocka_unit_test(test_free_after_any_result_leaves_nothing),
        cmocka_unit_test(test_why_is_cut_to_its_length),
        cmocka_unit_test(test_port_is_1_to_65535_in_decimal_only),
        cmocka_unit_test(test_node_format_brackets_ipv6_as_a_url_does),
        cmocka_unit_test(test_mask_hides_every_password_and_keeps_the_rest),
        cmocka_unit_test(test_mask_before_the_cut_leaves_no_byte_of_a_long_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
