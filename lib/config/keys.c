/* The table of configuration keys (README, "Configuration"): for each key,
 * the parser that reads its value and the check that refuses a bad one with what is
 * allowed ("expected a whole number of seconds from 1 to 31536000"). The
 * file itself, its FILE:LINE, the defaults, unknown keys and the checks
 * across keys are config.c's; reading the secret file is sign.c's. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_impl.h"
#include "redis_url.h"

#define MAX_AGE_MAX_S             31536000 /* one year */
#define MAX_BODY_MAX              ((uint64_t)64 << 20)
#define MAP_SIZE_MIN              65536
#define MAP_SIZE_MAX              ((uint64_t)1 << 40)
#define REDIS_TIMEOUT_MAX_MS      60000
#define MAX_SESSIONS_PER_USER_MAX 10000
#define REDIS_PREFIX_MAX          64
#define REDIS_REPLICAS_MAX        16

/* --- messages --- */

/* A bad value quoted back: a Redis URL masked whole (redis_url.c) before
 * it is cut to CFG_SHOWN_MAX, or the cut could keep the start of a long
 * password and lose the '@' that tells where it ends. */
static void
shown_value(char out[CFG_SHOWN_MAX + 8], const char *key, const char *value)
{
    char *masked;
    size_t len;

    if (strcmp(key, "store") != 0 || !sess__redis_url_is_redis(value)) {
        cfg_shown(out, value);
        return;
    }
    len = strlen(value) + 8;
    masked = malloc(len);
    if (!masked) {
        cfg_shown(out, "(a Redis URL)");
        return;
    }
    sess__redis_url_mask(value, masked, len);
    cfg_shown(out, masked);
    free(masked);
}

static enum sess_err
bad_value(const struct cfg_origin *o, const char *key, const char *value, const char *expected)
{
    char v[CFG_SHOWN_MAX + 8];

    shown_value(v, key, value);
    sess__fmt(o->errmsg, o->errmsg_len, "%s: %s = \"%s\": expected %s", o->where, key, v, expected);
    return SESS_ECONFIG;
}

/* --- value parsers --- */

/* Strict decimal: digits only, no sign or spaces, overflow-checked. Returns
 * the rest of the string (the unit, if any), or NULL when no digit came. */
static const char *
parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    if (p == s)
        return NULL;
    *out = v;
    return p;
}

static bool
parse_whole(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *rest = parse_u64(s, out);
    return rest != NULL && *rest == '\0' && *out >= min && *out <= max;
}

/* Bytes, with an optional binary suffix: K, M, G, T, optionally spelled KiB
 * and so on (never powers of 1000: "1G" here is 2^30, as LMDB counts). */
static bool
parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *rest = parse_u64(s, out);
    unsigned shift = 0;

    if (rest == NULL)
        return false;
    switch (*rest) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    case 't':
    case 'T':
        shift = 40;
        break;
    default:
        return false;
    }
    if (shift != 0) {
        rest++;
        if (*rest != '\0' && strcasecmp(rest, "iB") != 0)
            return false;
        if (*out > UINT64_MAX >> shift)
            return false;
        *out <<= shift;
    }
    return *out >= min && *out <= max;
}

static bool
parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* --- paths --- */

char *
cfg_resolve_path(const char *base, const char *rel)
{
    char *out;
    size_t base_len, rel_len;

    if (rel[0] == '/')
        return strdup(rel);
    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
        while (*rel == '/')
            rel++;
    }
    if (strcmp(rel, ".") == 0)
        rel = "";
    base_len = strlen(base);
    while (base_len > 1 && base[base_len - 1] == '/')
        base_len--;
    rel_len = strlen(rel);
    if (rel_len == 0)
        return strndup(base, base_len);
    out = malloc(base_len + 1 + rel_len + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, base, base_len);
    if (base[base_len - 1] != '/')
        out[base_len++] = '/';
    memcpy(out + base_len, rel, rel_len + 1);
    return out;
}

char *
cfg_lmdb_store(const char *base, const char *dir)
{
    char *abs_dir = cfg_resolve_path(base, dir);
    char *out = NULL;

    if (abs_dir != NULL && asprintf(&out, "lmdb:%s", abs_dir) < 0)
        out = NULL;
    free(abs_dir);
    return out;
}

static enum sess_err
replace_string(char **field, char *value)
{
    if (value == NULL)
        return SESS_ENOMEM;
    free(*field);
    *field = value;
    return SESS_OK;
}

/* --- one setter per kind of key --- */

static enum sess_err
set_name(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    if (!sess__cookie_name_is_valid(sess_str_c(value)))
        return bad_value(o, key, value,
                         "a cookie name of letters, digits and !#$%&'*+-.^_`|~ (RFC 7230 token)");
    return replace_string(&cfg->name, strdup(value));
}

static enum sess_err
set_path_field(char **field, const struct cfg_origin *o, const char *key, const char *value,
               const char *what)
{
    if (value[0] == '\0')
        return bad_value(o, key, value, what);
    return replace_string(field, cfg_resolve_path(o->base_dir, value));
}

static enum sess_err
set_secret_file(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                const char *value)
{
    return set_path_field(&cfg->secret_file, o, key, value,
                          "the path of a file with one secret of 32+ bytes per line");
}

static enum sess_err
set_html_dir(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
             const char *value)
{
    return set_path_field(&cfg->html_dir, o, key, value, "the directory of the HTML pages");
}

static enum sess_err
set_store(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    static const char expected[] =
        "lmdb:DIR, redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://..., "
        "redis-sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB] or unix:/SOCKET";
    struct sess_redis_url url;
    char why[160], what[320];
    enum sess_err err;

    if (strncmp(value, "lmdb:", 5) == 0) {
        if (value[5] == '\0')
            return bad_value(o, key, value, expected);
        return replace_string(&cfg->store, cfg_lmdb_store(o->base_dir, value + 5));
    }
    if (!sess__redis_url_is_redis(value))
        return bad_value(o, key, value, expected);
    /* The grammar the store connects by (redis_url.c), so that a typo stops
     * the start rather than every request. */
    err = sess__redis_url_parse(value, &url, why, sizeof(why));
    sess__redis_url_free(&url);
    if (err == SESS_ENOMEM)
        return err;
    if (err != SESS_OK) {
        sess__fmt(what, sizeof(what), "%s (%s)", why, expected);
        return bad_value(o, key, value, what);
    }
    return replace_string(&cfg->store, strdup(value));
}

static enum sess_err
set_seconds(int64_t *field, const struct cfg_origin *o, const char *key, const char *value,
            uint64_t min)
{
    char expected[96];
    uint64_t v;

    if (!parse_whole(value, min, MAX_AGE_MAX_S, &v)) {
        sess__fmt(expected, sizeof(expected), "a whole number of seconds from %llu%s to %d",
                  (unsigned long long)min, min == 0 ? " (off)" : "", MAX_AGE_MAX_S);
        return bad_value(o, key, value, expected);
    }
    *field = (int64_t)v;
    return SESS_OK;
}

static enum sess_err
set_max_age(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    return set_seconds(&cfg->max_age_s, o, key, value, 1);
}

static enum sess_err
set_absolute_timeout(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                     const char *value)
{
    return set_seconds(&cfg->absolute_timeout_s, o, key, value, 0);
}

static enum sess_err
set_touch_after(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                const char *value)
{
    uint64_t v;

    /* The bound against max_age is sess_config_check's: max_age may come
     * later in the file. */
    if (!parse_whole(value, 0, MAX_AGE_MAX_S, &v))
        return bad_value(o, key, value,
                         "a whole number of seconds from 0 (write on every request) to max_age");
    cfg->touch_after_s = (int64_t)v;
    return SESS_OK;
}

static enum sess_err
set_bool_field(bool *field, const struct cfg_origin *o, const char *key, const char *value)
{
    if (!parse_bool(value, field))
        return bad_value(o, key, value, "true or false (also yes/no, on/off, 1/0)");
    return SESS_OK;
}

/* --- "remember me" and the sessions of one user --- */

static enum sess_err
set_cookie_persist(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                   const char *value)
{
    return set_bool_field(&cfg->cookie_persist, o, key, value);
}

static enum sess_err
set_remember_max_age(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                     const char *value)
{
    return set_seconds(&cfg->remember_max_age_s, o, key, value, 1);
}

static enum sess_err
set_remember_absolute_timeout(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                              const char *value)
{
    return set_seconds(&cfg->remember_absolute_timeout_s, o, key, value, 0);
}

static enum sess_err
set_max_sessions_per_user(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                          const char *value)
{
    uint64_t v;

    if (!parse_whole(value, 0, MAX_SESSIONS_PER_USER_MAX, &v))
        return bad_value(o, key, value, "a whole number from 0 (no limit) to 10000");
    cfg->max_sessions_per_user = (unsigned)v;
    return SESS_OK;
}

static enum sess_err
set_rolling(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    return set_bool_field(&cfg->rolling, o, key, value);
}

static enum sess_err
set_resave(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    return set_bool_field(&cfg->resave, o, key, value);
}

static enum sess_err
set_save_uninitialized(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                       const char *value)
{
    return set_bool_field(&cfg->save_uninitialized, o, key, value);
}

static enum sess_err
set_http_only(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
              const char *value)
{
    return set_bool_field(&cfg->cookie_http_only, o, key, value);
}

static enum sess_err
set_partitioned(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                const char *value)
{
    return set_bool_field(&cfg->cookie_partitioned, o, key, value);
}

static enum sess_err
set_trust_proxy(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                const char *value)
{
    return set_bool_field(&cfg->trust_proxy, o, key, value);
}

static enum sess_err
set_cookie_secure(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                  const char *value)
{
    bool b;

    if (strcasecmp(value, "auto") == 0)
        cfg->cookie_secure = SESS_SECURE_AUTO;
    else if (parse_bool(value, &b))
        cfg->cookie_secure = b ? SESS_SECURE_ALWAYS : SESS_SECURE_NEVER;
    else
        return bad_value(o, key, value, "auto (Secure over HTTPS), true or false");
    return SESS_OK;
}

static enum sess_err
set_encrypt(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    bool b;

    if (strcasecmp(value, "auto") == 0)
        cfg->encrypt = SESS_ENCRYPT_AUTO;
    else if (parse_bool(value, &b))
        cfg->encrypt = b ? SESS_ENCRYPT_YES : SESS_ENCRYPT_NO;
    else
        return bad_value(o, key, value, "auto (yes in LMDB, no in Redis), true or false");
    return SESS_OK;
}

static enum sess_err
set_same_site(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
              const char *value)
{
    if (strcasecmp(value, "lax") == 0)
        cfg->cookie_same_site = SESS_SAME_SITE_LAX;
    else if (strcasecmp(value, "strict") == 0)
        cfg->cookie_same_site = SESS_SAME_SITE_STRICT;
    else if (strcasecmp(value, "none") == 0)
        cfg->cookie_same_site = SESS_SAME_SITE_NONE;
    else if (strcasecmp(value, "off") == 0)
        cfg->cookie_same_site = SESS_SAME_SITE_OFF;
    else
        return bad_value(o, key, value, "lax, strict, none (needs Secure) or off");
    return SESS_OK;
}

static enum sess_err
set_cookie_path(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                const char *value)
{
    if (value[0] != '/' || !sess__cookie_path_is_valid(value))
        return bad_value(o, key, value, "a URL path starting with '/', printable ASCII, no ';'");
    return replace_string(&cfg->cookie_path, strdup(value));
}

static enum sess_err
set_cookie_domain(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                  const char *value)
{
    if (value[0] == '\0' || strcasecmp(value, "none") == 0) {
        free(cfg->cookie_domain);
        cfg->cookie_domain = NULL;
        return SESS_OK;
    }
    if (!sess__cookie_domain_is_valid(value))
        return bad_value(o, key, value, "none or a host name such as example.com");
    return replace_string(&cfg->cookie_domain, strdup(value));
}

static enum sess_err
set_priority(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
             const char *value)
{
    static const char *const names[] = {"Low", "Medium", "High"};

    if (strcasecmp(value, "none") == 0) {
        free(cfg->cookie_priority);
        cfg->cookie_priority = NULL;
        return SESS_OK;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(value, names[i]) == 0)
            return replace_string(&cfg->cookie_priority, strdup(names[i]));
    return bad_value(o, key, value, "none, low, medium or high");
}

static enum sess_err
set_max_body(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
             const char *value)
{
    uint64_t v;

    if (!parse_size(value, 1, MAX_BODY_MAX, &v))
        return bad_value(o, key, value, "a size in bytes from 1 to 67108864 (or with K, M)");
    cfg->max_body_bytes = (size_t)v;
    return SESS_OK;
}

static enum sess_err
set_map_size(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
             const char *value)
{
    uint64_t v;
    uint64_t max = MAP_SIZE_MAX < SIZE_MAX ? MAP_SIZE_MAX : SIZE_MAX;

    if (!parse_size(value, MAP_SIZE_MIN, max, &v))
        return bad_value(o, key, value,
                         "a size in bytes of at least 65536, such as 1073741824 or 1G (K, M, G, "
                         "T: powers of 1024)");
    cfg->lmdb_map_size_bytes = (size_t)v;
    return SESS_OK;
}

static enum sess_err
set_sync(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    if (strcasecmp(value, "full") == 0)
        cfg->lmdb_sync = SESS_SYNC_FULL;
    else if (strcasecmp(value, "meta") == 0)
        cfg->lmdb_sync = SESS_SYNC_META;
    else if (strcasecmp(value, "none") == 0)
        cfg->lmdb_sync = SESS_SYNC_NONE;
    else
        return bad_value(o, key, value, "full, meta or none");
    return SESS_OK;
}

static enum sess_err
set_redis_timeout(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                  const char *value)
{
    uint64_t v;

    if (!parse_whole(value, 1, REDIS_TIMEOUT_MAX_MS, &v))
        return bad_value(o, key, value, "a whole number of milliseconds from 1 to 60000");
    cfg->redis_timeout_ms = (int64_t)v;
    return SESS_OK;
}

/* connect-redis's `prefix`. Printable, without spaces, and without the
 * characters of a SCAN pattern (the store walks PREFIX*). */
static enum sess_err
set_redis_prefix(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                 const char *value)
{
    size_t len = strlen(value);

    if (len == 0 || len > REDIS_PREFIX_MAX || strpbrk(value, "*?[]\\") != NULL)
        return bad_value(o, key, value,
                         "1 to 64 printable characters without spaces or any of * ? [ ] \\");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] <= 0x20 || (unsigned char)value[i] >= 0x7f)
            return bad_value(o, key, value,
                             "1 to 64 printable characters without spaces or any of * ? [ ] \\");
    return replace_string(&cfg->redis_prefix, strdup(value));
}

static enum sess_err
set_redis_min_replicas(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                       const char *value)
{
    uint64_t v;

    if (!parse_whole(value, 0, REDIS_REPLICAS_MAX, &v))
        return bad_value(o, key, value, "a whole number of replicas from 0 to 16");
    cfg->redis_min_replicas = (int)v;
    return SESS_OK;
}

/* --- login security and the auth log: trusted_proxies, login_max_failures,
 * login_window, log --- */

#define LOGIN_FAILURES_MAX 1000000

static enum sess_err
set_trusted_proxies(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                    const char *value)
{
    struct sess_net nets[SESS_TRUSTED_PROXIES_MAX];
    struct sess_str bad;
    char v[CFG_SHOWN_MAX + 8], entry[CFG_SHOWN_MAX + 8];
    size_t count;
    enum sess_err err = sess__net_list_parse(value, nets, SESS_TRUSTED_PROXIES_MAX, &count, &bad);

    if (err == SESS_OK) {
        memcpy(cfg->trusted_proxies, nets, count * sizeof nets[0]);
        cfg->trusted_proxies_count = count;
        return SESS_OK;
    }
    cfg_shown(v, value);
    snprintf(entry, sizeof entry, "%.*s", (int)(bad.len < CFG_SHOWN_MAX ? bad.len : CFG_SHOWN_MAX),
             bad.ptr);
    if (err == SESS_ETOOBIG)
        sess__fmt(o->errmsg, o->errmsg_len, "%s: %s = \"%s\": more than %d entries", o->where, key,
                  v, SESS_TRUSTED_PROXIES_MAX);
    else
        sess__fmt(o->errmsg, o->errmsg_len,
                  "%s: %s = \"%s\": \"%s\" is not an address or network; expected a "
                  "comma-separated list of IPv4/IPv6 addresses or CIDRs such as 127.0.0.0/8, ::1",
                  o->where, key, v, entry);
    return SESS_ECONFIG;
}

static enum sess_err
set_login_max_failures(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                       const char *value)
{
    uint64_t v;

    if (!parse_whole(value, 1, LOGIN_FAILURES_MAX, &v))
        return bad_value(o, key, value, "a whole number of failed logins from 1 to 1000000");
    cfg->login_max_failures = (uint32_t)v;
    return SESS_OK;
}

static enum sess_err
set_login_window(struct sess_config *cfg, const struct cfg_origin *o, const char *key,
                 const char *value)
{
    return set_seconds(&cfg->login_window_s, o, key, value, 1);
}

static enum sess_err
set_log(struct sess_config *cfg, const struct cfg_origin *o, const char *key, const char *value)
{
    if (strcmp(value, "stderr") == 0 || strcmp(value, "syslog") == 0) {
        free(cfg->log_path);
        cfg->log_path = NULL;
        cfg->log_to = value[1] == 't' ? SESS_LOG_STDERR : SESS_LOG_SYSLOG;
        return SESS_OK;
    }
    if (value[0] == '\0')
        return bad_value(o, key, value, "stderr, syslog or the path of a file");
    cfg->log_to = SESS_LOG_FILE;
    return replace_string(&cfg->log_path, cfg_resolve_path(o->base_dir, value));
}

/* --- the table --- */

const struct cfg_key cfg_keys[] = {
    {"name", set_name},
    {"secret_file", set_secret_file},
    {"store", set_store},
    {"max_age", set_max_age},
    {"absolute_timeout", set_absolute_timeout},
    {"rolling", set_rolling},
    {"resave", set_resave},
    {"save_uninitialized", set_save_uninitialized},
    {"touch_after", set_touch_after},
    {"cookie_secure", set_cookie_secure},
    {"cookie_http_only", set_http_only},
    {"cookie_same_site", set_same_site},
    {"cookie_path", set_cookie_path},
    {"cookie_domain", set_cookie_domain},
    {"cookie_partitioned", set_partitioned},
    {"cookie_priority", set_priority},
    {"trust_proxy", set_trust_proxy},
    {"encrypt", set_encrypt},
    {"max_body", set_max_body},
    {"html_dir", set_html_dir},
    {"lmdb_map_size", set_map_size},
    {"lmdb_sync", set_sync},
    {"redis_timeout_ms", set_redis_timeout},
    {"redis_prefix", set_redis_prefix},
    {"redis_min_replicas", set_redis_min_replicas},
    {"cookie_persist", set_cookie_persist},
    {"remember_max_age", set_remember_max_age},
    {"remember_absolute_timeout", set_remember_absolute_timeout},
    {"max_sessions_per_user", set_max_sessions_per_user},
    {"trusted_proxies", set_trusted_proxies},
    {"login_max_failures", set_login_max_failures},
    {"login_window", set_login_window},
    {"log", set_log},
};

_Static_assert(sizeof(cfg_keys) / sizeof(cfg_keys[0]) == CFG_KEY_COUNT,
               "CFG_KEY_COUNT in config_impl.h counts the entries of cfg_keys");

const struct cfg_key *
cfg_key_find(const char *name)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}
