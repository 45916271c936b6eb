/* The configuration file of DESIGN.md: `key = value` lines, defaults, and
 * the checks that make a bad setting stop the executable at start (exit 78)
 * with "FILE:LINE: what is wrong (what is allowed)" instead of failing on
 * every request. Reading the secret file is sign.c's job. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"
#include "redis_url.h"

#define MAX_AGE_MAX_S        31536000 /* one year */
#define MAX_BODY_MAX         ((uint64_t)64 << 20)
#define MAP_SIZE_MIN         65536
#define MAP_SIZE_MAX         ((uint64_t)1 << 40)
#define REDIS_TIMEOUT_MAX_MS 60000
#define MAX_SESSIONS_PER_USER_MAX 10000
#define SHOWN_VALUE_MAX      64 /* characters of a bad value quoted back */
#define REDIS_PREFIX_MAX     64
#define REDIS_REPLICAS_MAX   16

/* Where one setting comes from, for messages, and what a relative path in it
 * is relative to. */
struct origin {
    const char *where; /* "FILE:LINE" or the caller's name */
    const char *base_dir;
    char *errmsg;
    size_t errmsg_len;
};

typedef enum sess_err (*set_fn)(struct sess_config *cfg, const struct origin *o, const char *key,
                                const char *value);

struct key_def {
    const char *name;
    set_fn set;
};

/* --- messages --- */

/* Copies `s` for quoting in a message: non-printable bytes, '"' and '\' as
 * escapes, cut at SHOWN_VALUE_MAX characters. */
static void
shown(char out[SHOWN_VALUE_MAX + 8], const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (n >= SHOWN_VALUE_MAX - 4) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (c < 0x20 || c >= 0x7f) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

/* A bad value quoted back: a Redis URL masked whole (redis_url.c) before
 * it is cut to SHOWN_VALUE_MAX, or the cut could keep the start of a long
 * password and lose the '@' that tells where it ends. */
static void
shown_value(char out[SHOWN_VALUE_MAX + 8], const char *key, const char *value)
{
    char *masked;
    size_t len;

    if (strcmp(key, "store") != 0 || !sess_redis_url_is_redis(value)) {
        shown(out, value);
        return;
    }
    len = strlen(value) + 8;
    masked = malloc(len);
    if (!masked) {
        shown(out, "(a Redis URL)");
        return;
    }
    sess_redis_url_mask(value, masked, len);
    shown(out, masked);
    free(masked);
}

static enum sess_err
bad_value(const struct origin *o, const char *key, const char *value, const char *expected)
{
    char v[SHOWN_VALUE_MAX + 8];

    shown_value(v, key, value);
    sess_fmt(o->errmsg, o->errmsg_len, "%s: %s = \"%s\": expected %s", o->where, key, v, expected);
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

static char *
current_dir(void)
{
    return getcwd(NULL, 0); /* glibc allocates */
}

/* `rel` taken relative to `base` (absolute), or `rel` itself when absolute.
 * The result need not exist yet. NULL on allocation failure. */
static char *
resolve_path(const char *base, const char *rel)
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

/* The directory holding `path`, absolute and without symlinks. */
static char *
dir_of(const char *path)
{
    char *real = realpath(path, NULL);
    char *slash;

    if (real == NULL)
        return NULL;
    slash = strrchr(real, '/');
    if (slash == real)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    return real;
}

/* "lmdb:" and the absolute form of `dir`. */
static char *
lmdb_store(const char *base, const char *dir)
{
    char *abs_dir = resolve_path(base, dir);
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
set_name(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    if (!sess_cookie_name_is_valid(sess_str_c(value)))
        return bad_value(o, key, value,
                         "a cookie name of letters, digits and !#$%&'*+-.^_`|~ (RFC 7230 token)");
    return replace_string(&cfg->name, strdup(value));
}

static enum sess_err
set_path_field(char **field, const struct origin *o, const char *key, const char *value,
               const char *what)
{
    if (value[0] == '\0')
        return bad_value(o, key, value, what);
    return replace_string(field, resolve_path(o->base_dir, value));
}

static enum sess_err
set_secret_file(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_path_field(&cfg->secret_file, o, key, value,
                          "the path of a file with one secret of 32+ bytes per line");
}

static enum sess_err
set_html_dir(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_path_field(&cfg->html_dir, o, key, value, "the directory of the HTML pages");
}

static enum sess_err
set_store(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
        return replace_string(&cfg->store, lmdb_store(o->base_dir, value + 5));
    }
    if (!sess_redis_url_is_redis(value))
        return bad_value(o, key, value, expected);
    /* The grammar the store connects by (redis_url.c), so that a typo stops
     * the start rather than every request. */
    err = sess_redis_url_parse(value, &url, why, sizeof(why));
    sess_redis_url_free(&url);
    if (err == SESS_ENOMEM)
        return err;
    if (err != SESS_OK) {
        sess_fmt(what, sizeof(what), "%s (%s)", why, expected);
        return bad_value(o, key, value, what);
    }
    return replace_string(&cfg->store, strdup(value));
}

static enum sess_err
set_seconds(int64_t *field, const struct origin *o, const char *key, const char *value,
            uint64_t min)
{
    char expected[96];
    uint64_t v;

    if (!parse_whole(value, min, MAX_AGE_MAX_S, &v)) {
        sess_fmt(expected, sizeof(expected), "a whole number of seconds from %llu%s to %d",
                 (unsigned long long)min, min == 0 ? " (off)" : "", MAX_AGE_MAX_S);
        return bad_value(o, key, value, expected);
    }
    *field = (int64_t)v;
    return SESS_OK;
}

static enum sess_err
set_max_age(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_seconds(&cfg->max_age_s, o, key, value, 1);
}

static enum sess_err
set_absolute_timeout(struct sess_config *cfg, const struct origin *o, const char *key,
                     const char *value)
{
    return set_seconds(&cfg->absolute_timeout_s, o, key, value, 0);
}

static enum sess_err
set_touch_after(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
set_bool_field(bool *field, const struct origin *o, const char *key, const char *value)
{
    if (!parse_bool(value, field))
        return bad_value(o, key, value, "true or false (also yes/no, on/off, 1/0)");
    return SESS_OK;
}

/* --- "remember me" and the sessions of one user --- */

static enum sess_err
set_cookie_persist(struct sess_config *cfg, const struct origin *o, const char *key,
                   const char *value)
{
    return set_bool_field(&cfg->cookie_persist, o, key, value);
}

static enum sess_err
set_remember_max_age(struct sess_config *cfg, const struct origin *o, const char *key,
                     const char *value)
{
    return set_seconds(&cfg->remember_max_age_s, o, key, value, 1);
}

static enum sess_err
set_remember_absolute_timeout(struct sess_config *cfg, const struct origin *o, const char *key,
                              const char *value)
{
    return set_seconds(&cfg->remember_absolute_timeout_s, o, key, value, 0);
}

static enum sess_err
set_max_sessions_per_user(struct sess_config *cfg, const struct origin *o, const char *key,
                          const char *value)
{
    uint64_t v;

    if (!parse_whole(value, 0, MAX_SESSIONS_PER_USER_MAX, &v))
        return bad_value(o, key, value, "a whole number from 0 (no limit) to 10000");
    cfg->max_sessions_per_user = (unsigned)v;
    return SESS_OK;
}

static enum sess_err
set_rolling(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_bool_field(&cfg->rolling, o, key, value);
}

static enum sess_err
set_resave(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_bool_field(&cfg->resave, o, key, value);
}

static enum sess_err
set_save_uninitialized(struct sess_config *cfg, const struct origin *o, const char *key,
                       const char *value)
{
    return set_bool_field(&cfg->save_uninitialized, o, key, value);
}

static enum sess_err
set_http_only(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_bool_field(&cfg->cookie_http_only, o, key, value);
}

static enum sess_err
set_partitioned(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_bool_field(&cfg->cookie_partitioned, o, key, value);
}

static enum sess_err
set_trust_proxy(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    return set_bool_field(&cfg->trust_proxy, o, key, value);
}

static enum sess_err
set_cookie_secure(struct sess_config *cfg, const struct origin *o, const char *key,
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
set_encrypt(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
set_same_site(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
set_cookie_path(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    if (value[0] != '/' || !sess_cookie_path_is_valid(value))
        return bad_value(o, key, value, "a URL path starting with '/', printable ASCII, no ';'");
    return replace_string(&cfg->cookie_path, strdup(value));
}

static enum sess_err
set_cookie_domain(struct sess_config *cfg, const struct origin *o, const char *key,
                  const char *value)
{
    if (value[0] == '\0' || strcasecmp(value, "none") == 0) {
        free(cfg->cookie_domain);
        cfg->cookie_domain = NULL;
        return SESS_OK;
    }
    if (!sess_cookie_domain_is_valid(value))
        return bad_value(o, key, value, "none or a host name such as example.com");
    return replace_string(&cfg->cookie_domain, strdup(value));
}

static enum sess_err
set_priority(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
set_max_body(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
{
    uint64_t v;

    if (!parse_size(value, 1, MAX_BODY_MAX, &v))
        return bad_value(o, key, value, "a size in bytes from 1 to 67108864 (or with K, M)");
    cfg->max_body_bytes = (size_t)v;
    return SESS_OK;
}

static enum sess_err
set_map_size(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
set_sync(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
set_redis_timeout(struct sess_config *cfg, const struct origin *o, const char *key,
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
set_redis_prefix(struct sess_config *cfg, const struct origin *o, const char *key,
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
set_redis_min_replicas(struct sess_config *cfg, const struct origin *o, const char *key,
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

#define DEFAULT_TRUSTED_PROXIES "127.0.0.0/8, ::1"
#define LOGIN_FAILURES_MAX      1000000

static enum sess_err
set_trusted_proxies(struct sess_config *cfg, const struct origin *o, const char *key,
                    const char *value)
{
    struct sess_net nets[SESS_TRUSTED_PROXIES_MAX];
    struct sess_str bad;
    char v[SHOWN_VALUE_MAX + 8], entry[SHOWN_VALUE_MAX + 8];
    size_t count;
    enum sess_err err = sess_net_list_parse(value, nets, SESS_TRUSTED_PROXIES_MAX, &count, &bad);

    if (err == SESS_OK) {
        memcpy(cfg->trusted_proxies, nets, count * sizeof nets[0]);
        cfg->trusted_proxies_count = count;
        return SESS_OK;
    }
    shown(v, value);
    snprintf(entry, sizeof entry, "%.*s",
             (int)(bad.len < SHOWN_VALUE_MAX ? bad.len : SHOWN_VALUE_MAX), bad.ptr);
    if (err == SESS_ETOOBIG)
        sess_fmt(o->errmsg, o->errmsg_len, "%s: %s = \"%s\": more than %d entries", o->where, key,
                 v, SESS_TRUSTED_PROXIES_MAX);
    else
        sess_fmt(o->errmsg, o->errmsg_len,
                 "%s: %s = \"%s\": \"%s\" is not an address or network; expected a "
                 "comma-separated list of IPv4/IPv6 addresses or CIDRs such as 127.0.0.0/8, ::1",
                 o->where, key, v, entry);
    return SESS_ECONFIG;
}

static enum sess_err
set_login_max_failures(struct sess_config *cfg, const struct origin *o, const char *key,
                       const char *value)
{
    uint64_t v;

    if (!parse_whole(value, 1, LOGIN_FAILURES_MAX, &v))
        return bad_value(o, key, value, "a whole number of failed logins from 1 to 1000000");
    cfg->login_max_failures = (uint32_t)v;
    return SESS_OK;
}

static enum sess_err
set_login_window(struct sess_config *cfg, const struct origin *o, const char *key,
                 const char *value)
{
    return set_seconds(&cfg->login_window_s, o, key, value, 1);
}

static enum sess_err
set_log(struct sess_config *cfg, const struct origin *o, const char *key, const char *value)
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
    return replace_string(&cfg->log_path, resolve_path(o->base_dir, value));
}

static void
login_defaults(struct sess_config *cfg)
{
    struct sess_str bad;
    enum sess_err err =
        sess_net_list_parse(DEFAULT_TRUSTED_PROXIES, cfg->trusted_proxies, SESS_TRUSTED_PROXIES_MAX,
                            &cfg->trusted_proxies_count, &bad);

    (void)err; /* a constant, checked by the tests */
    cfg->login_max_failures = 5;
    cfg->login_window_s = 300;
    cfg->log_to = SESS_LOG_STDERR;
}

static const struct key_def keys[] = {
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

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

/* --- unknown keys: the nearest known one --- */

/* Lower case without '_', '-' and '.', so Express's spellings (maxAge,
 * saveUninitialized, cookie.httpOnly) land on ours. */
static size_t
normalize_key(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    for (; *in != '\0' && n + 1 < cap; in++)
        if (*in != '_' && *in != '-' && *in != '.')
            out[n++] = (char)tolower((unsigned char)*in);
    out[n] = '\0';
    return n;
}

/* Levenshtein distance of two short strings (both under 64 bytes). */
static size_t
edit_distance(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t row[64];

    for (size_t j = 0; j <= b_len; j++)
        row[j] = j;
    for (size_t i = 1; i <= a_len; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b_len; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[b_len];
}

static const char *
nearest_key(const char *key)
{
    char in[48], with_prefix[48], known[48];
    size_t in_len, prefixed_len, best = SIZE_MAX;
    const char *found = NULL;

    if (strlen(key) >= sizeof(in) - 8)
        return NULL;
    in_len = normalize_key(key, in, sizeof(in));
    prefixed_len = (size_t)snprintf(with_prefix, sizeof(with_prefix), "cookie%s", in);
    if (in_len == 0)
        return NULL;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        size_t k_len = normalize_key(keys[i].name, known, sizeof(known));
        size_t d = edit_distance(in, in_len, known, k_len);
        size_t d2 = edit_distance(with_prefix, prefixed_len, known, k_len);
        if (d2 < d)
            d = d2;
        /* "secret" for secret_file: a prefix is as good as one edit. */
        if (in_len >= 4 && strncmp(known, in, in_len) == 0 && d > 1)
            d = 1;
        if (d < best) {
            best = d;
            found = keys[i].name;
        }
    }
    return best <= (in_len <= 4 ? 1u : 2u) ? found : NULL;
}

static const struct key_def *
find_key(const char *key)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].name, key) == 0)
            return &keys[i];
    return NULL;
}

static enum sess_err
unknown_key(const struct origin *o, const char *key)
{
    char k[SHOWN_VALUE_MAX + 8];
    const char *near = nearest_key(key);

    shown(k, key);
    if (near != NULL)
        sess_fmt(o->errmsg, o->errmsg_len, "%s: unknown key \"%s\" (did you mean \"%s\"?)",
                 o->where, k, near);
    else
        sess_fmt(o->errmsg, o->errmsg_len,
                 "%s: unknown key \"%s\" (keys: name, secret_file, store, max_age, "
                 "absolute_timeout, rolling, resave, save_uninitialized, touch_after, "
                 "cookie_secure, cookie_http_only, cookie_same_site, cookie_path, "
                 "cookie_domain, cookie_partitioned, cookie_priority, trust_proxy, encrypt, "
                 "max_body, html_dir, lmdb_map_size, lmdb_sync, redis_timeout_ms, "
                 "redis_prefix, redis_min_replicas, cookie_persist, remember_max_age, "
                 "remember_absolute_timeout, max_sessions_per_user, trusted_proxies, "
                 "login_max_failures, login_window, log)",
                 o->where, k);
    return SESS_ECONFIG;
}

/* --- the public calls --- */

enum sess_err
sess_config_defaults(struct sess_config *cfg, const char *base_dir)
{
    enum sess_err err = SESS_ENOMEM;
    char *cwd = NULL;
    char *abs_base = NULL;

    memset(cfg, 0, sizeof(*cfg));
    if (base_dir != NULL && base_dir[0] == '/') {
        abs_base = strdup(base_dir);
    } else {
        cwd = current_dir();
        if (cwd == NULL) {
            err = SESS_ECONFIG;
            goto out;
        }
        abs_base = resolve_path(cwd, base_dir != NULL ? base_dir : ".");
    }
    if (abs_base == NULL)
        goto out;
    cfg->name = strdup("sid");
    cfg->cookie_path = strdup("/");
    cfg->html_dir = resolve_path(abs_base, "html");
    cfg->store = lmdb_store(abs_base, "var/sessions");
    cfg->redis_prefix = strdup("sess:");
    if (cfg->name == NULL || cfg->cookie_path == NULL || cfg->html_dir == NULL ||
        cfg->store == NULL || cfg->redis_prefix == NULL)
        goto out;
    cfg->max_age_s = 1800;
    cfg->absolute_timeout_s = 43200;
    cfg->touch_after_s = 60;
    cfg->cookie_secure = SESS_SECURE_AUTO;
    cfg->cookie_http_only = true;
    cfg->cookie_same_site = SESS_SAME_SITE_LAX;
    cfg->encrypt = SESS_ENCRYPT_AUTO;
    cfg->max_body_bytes = 16384;
    cfg->lmdb_map_size_bytes = (size_t)1 << 30;
    cfg->lmdb_sync = SESS_SYNC_META;
    cfg->redis_timeout_ms = 1000;
    cfg->cookie_persist = true;
    cfg->remember_max_age_s = 2592000;
    cfg->remember_absolute_timeout_s = 7776000;
    login_defaults(cfg);
    err = SESS_OK;
out:
    if (err != SESS_OK)
        sess_config_free(cfg);
    free(abs_base);
    free(cwd);
    return err;
}

void
sess_config_free(struct sess_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->name);
    free(cfg->secret_file);
    free(cfg->store);
    free(cfg->cookie_path);
    free(cfg->cookie_domain);
    free(cfg->cookie_priority);
    free(cfg->html_dir);
    free(cfg->redis_prefix);
    free(cfg->log_path);
    memset(cfg, 0, sizeof(*cfg));
}

enum sess_err
sess_config_set(struct sess_config *cfg, const char *origin, const char *key, const char *value,
                char *errmsg, size_t errmsg_len)
{
    const struct key_def *def = find_key(key);
    struct origin o = {origin, NULL, errmsg, errmsg_len};
    char *base = NULL;
    enum sess_err err;

    if (def == NULL)
        return unknown_key(&o, key);
    /* Relative paths follow the file the rest came from, as in the file. */
    base = cfg->path != NULL ? dir_of(cfg->path) : NULL;
    if (base == NULL)
        base = current_dir();
    if (base == NULL) {
        sess_fmt(errmsg, errmsg_len, "%s: cannot find the current directory: %s", origin,
                 strerror(errno));
        return SESS_ECONFIG;
    }
    o.base_dir = base;
    err = def->set(cfg, &o, key, value);
    if (err == SESS_ENOMEM)
        sess_fmt(errmsg, errmsg_len, "%s: %s", origin, sess_strerror(err));
    free(base);
    return err;
}

/* Splits one line into key and value, in place. Returns false for a blank
 * or comment line; sets *error for a malformed one. */
static bool
split_line(char *line, char **key, char **value, const char **error)
{
    char *p = line, *eq, *end;

    *error = NULL;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return false;
    eq = strchr(p, '=');
    if (eq == NULL) {
        *error = "expected `key = value`";
        return true;
    }
    end = eq;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    if (*p == '\0') {
        *error = "expected a key before '='";
        return true;
    }
    *key = p;
    p = eq + 1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '"' || *p == '\'') {
        char *close = strchr(p + 1, *p);
        if (close == NULL) {
            *error = "the quoted value has no closing quote";
            return true;
        }
        *close = '\0';
        *value = p + 1;
        for (p = close + 1; *p == ' ' || *p == '\t'; p++)
            ;
        if (*p != '\0' && *p != '#')
            *error = "unexpected text after the closing quote";
        return true;
    }
    /* '#' starts a comment only after whitespace, so "a#b" stays a value. */
    *value = p;
    for (end = p; *end != '\0'; end++)
        if (*end == '#' && (end == p || end[-1] == ' ' || end[-1] == '\t'))
            break;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return true;
}

enum sess_err
sess_config_load(struct sess_config *cfg, const char *path, char *errmsg, size_t errmsg_len)
{
    enum sess_err err;
    FILE *fp = NULL;
    char *dir = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    unsigned line_no = 0;
    unsigned first_line[KEY_COUNT] = {0};
    char where[PATH_MAX + 32];
    char shown_line[SHOWN_VALUE_MAX + 8];

    memset(cfg, 0, sizeof(*cfg));
    fp = fopen(path, "re");
    if (fp == NULL) {
        sess_fmt(errmsg, errmsg_len, "%s: cannot open the configuration: %s", path,
                 strerror(errno));
        err = SESS_ECONFIG;
        goto out;
    }
    dir = dir_of(path);
    if (dir == NULL) {
        sess_fmt(errmsg, errmsg_len, "%s: cannot resolve the directory: %s", path, strerror(errno));
        err = SESS_ECONFIG;
        goto out;
    }
    err = sess_config_defaults(cfg, dir);
    if (err != SESS_OK) {
        sess_fmt(errmsg, errmsg_len, "%s: %s", path, sess_strerror(err));
        goto out;
    }
    cfg->path = strdup(path);
    if (cfg->path == NULL) {
        err = SESS_ENOMEM;
        sess_fmt(errmsg, errmsg_len, "%s: %s", path, sess_strerror(err));
        goto out;
    }
    for (;;) {
        ssize_t n;
        char *key = NULL, *value = NULL;
        const char *problem;
        const struct key_def *def;
        struct origin o = {where, dir, errmsg, errmsg_len};

        errno = 0;
        n = getline(&line, &line_cap, fp);
        if (n < 0) {
            if (errno != 0 || ferror(fp)) {
                sess_fmt(errmsg, errmsg_len, "%s: cannot read: %s", path,
                         strerror(errno != 0 ? errno : EIO));
                err = errno == ENOMEM ? SESS_ENOMEM : SESS_ECONFIG;
                goto out;
            }
            break;
        }
        line_no++;
        sess_fmt(where, sizeof(where), "%s:%u", path, line_no);
        if (memchr(line, '\0', (size_t)n) != NULL) {
            sess_fmt(errmsg, errmsg_len, "%s: a NUL byte in the line (is this a text file?)",
                     where);
            err = SESS_ECONFIG;
            goto out;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        /* split_line() cuts the line in place; keep it whole for a message. */
        shown(shown_line, line);
        if (!split_line(line, &key, &value, &problem))
            continue;
        if (problem != NULL) {
            sess_fmt(errmsg, errmsg_len, "%s: %s, found \"%s\"", where, problem, shown_line);
            err = SESS_ECONFIG;
            goto out;
        }
        def = find_key(key);
        if (def == NULL) {
            err = unknown_key(&o, key);
            goto out;
        }
        size_t idx = (size_t)(def - keys);
        if (first_line[idx] != 0) {
            sess_fmt(errmsg, errmsg_len, "%s: %s is set twice (first on line %u); keep one", where,
                     key, first_line[idx]);
            err = SESS_ECONFIG;
            goto out;
        }
        first_line[idx] = line_no;
        err = def->set(cfg, &o, key, value);
        if (err != SESS_OK) {
            if (err == SESS_ENOMEM)
                sess_fmt(errmsg, errmsg_len, "%s: %s", where, sess_strerror(err));
            goto out;
        }
    }
    err = sess_config_check(cfg, errmsg, errmsg_len);
out:
    if (err != SESS_OK)
        sess_config_free(cfg);
    free(line);
    free(dir);
    if (fp != NULL)
        fclose(fp);
    return err;
}

enum sess_err
sess_config_check(const struct sess_config *cfg, char *errmsg, size_t errmsg_len)
{
    const char *file = cfg->path != NULL ? cfg->path : "configuration";
    const char *name = cfg->name != NULL ? cfg->name : "";

    if (cfg->secret_file == NULL) {
        sess_fmt(errmsg, errmsg_len,
                 "%s: secret_file is required (a file with one secret of 32+ bytes per line)",
                 file);
        return SESS_ECONFIG;
    }
    if (!sess_cookie_name_is_valid(sess_str_c(name))) {
        sess_fmt(errmsg, errmsg_len, "%s: name must be a cookie name (RFC 7230 token)", file);
        return SESS_ECONFIG;
    }
    if (cfg->store == NULL || cfg->html_dir == NULL || cfg->cookie_path == NULL) {
        sess_fmt(errmsg, errmsg_len, "%s: store, html_dir and cookie_path must be set", file);
        return SESS_ECONFIG;
    }
    if (!sess_cookie_path_is_valid(cfg->cookie_path) ||
        (cfg->cookie_domain != NULL && !sess_cookie_domain_is_valid(cfg->cookie_domain))) {
        sess_fmt(errmsg, errmsg_len,
                 "%s: cookie_path or cookie_domain holds a character a "
                 "Set-Cookie header cannot carry",
                 file);
        return SESS_ECONFIG;
    }
    if (cfg->touch_after_s > cfg->max_age_s) {
        sess_fmt(errmsg, errmsg_len,
                 "%s: touch_after = %lld is more than max_age = %lld (a session would expire "
                 "before its expiry is written)",
                 file, (long long)cfg->touch_after_s, (long long)cfg->max_age_s);
        return SESS_ECONFIG;
    }
    if (cfg->touch_after_s > cfg->remember_max_age_s) {
        sess_fmt(errmsg, errmsg_len,
                 "%s: touch_after = %lld is more than remember_max_age = %lld (a remembered "
                 "session would expire before its expiry is written)",
                 file, (long long)cfg->touch_after_s, (long long)cfg->remember_max_age_s);
        return SESS_ECONFIG;
    }
    if (cfg->cookie_same_site == SESS_SAME_SITE_NONE && cfg->cookie_secure == SESS_SECURE_NEVER) {
        sess_fmt(errmsg, errmsg_len,
                 "%s: cookie_same_site = none needs cookie_secure = auto or true (browsers "
                 "drop SameSite=None cookies without Secure)",
                 file);
        return SESS_ECONFIG;
    }
    /* Browsers match the prefixes without regard to case (RFC 6265bis). */
    if (sess_cookie_has_prefix(name, "__Host-") &&
        (cfg->cookie_secure == SESS_SECURE_NEVER || strcmp(cfg->cookie_path, "/") != 0 ||
         cfg->cookie_domain != NULL)) {
        sess_fmt(errmsg, errmsg_len,
                 "%s: a name starting with __Host- needs cookie_secure = auto or true, "
                 "cookie_path = / and no cookie_domain (browsers drop it otherwise)",
                 file);
        return SESS_ECONFIG;
    }
    if (sess_cookie_has_prefix(name, "__Secure-") && cfg->cookie_secure == SESS_SECURE_NEVER) {
        sess_fmt(errmsg, errmsg_len,
                 "%s: a name starting with __Secure- needs cookie_secure = auto or true "
                 "(browsers drop it otherwise)",
                 file);
        return SESS_ECONFIG;
    }
    return SESS_OK;
}
