/* The configuration file (README, "Configuration"): `key = value` lines
 * read over the defaults, each handed to its key's parser in keys.c, then the checks
 * across keys, so that a bad setting stops the executable at start (exit
 * 78) with "FILE:LINE: what is wrong (what is allowed)" instead of failing
 * on every request; an unknown key gets the nearest known one ("did you
 * mean"). What each key accepts is keys.c's. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_impl.h"

/* --- messages --- */

/* --- paths --- */

static char *
current_dir(void)
{
    return getcwd(NULL, 0); /* glibc allocates */
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
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        size_t k_len = normalize_key(cfg_keys[i].name, known, sizeof(known));
        size_t d = edit_distance(in, in_len, known, k_len);
        size_t d2 = edit_distance(with_prefix, prefixed_len, known, k_len);
        if (d2 < d)
            d = d2;
        /* "secret" for secret_file: a prefix is as good as one edit. */
        if (in_len >= 4 && strncmp(known, in, in_len) == 0 && d > 1)
            d = 1;
        if (d < best) {
            best = d;
            found = cfg_keys[i].name;
        }
    }
    return best <= (in_len <= 4 ? 1u : 2u) ? found : NULL;
}

/* The names of cfg_keys, comma-separated, cut short if `cap` is too small. */
static void
list_keys(char *out, size_t cap)
{
    size_t len = 0;
    int n;

    out[0] = '\0';
    for (size_t i = 0; i < CFG_KEY_COUNT && len < cap; i++) {
        n = snprintf(out + len, cap - len, "%s%s", i > 0 ? ", " : "", cfg_keys[i].name);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

static enum sess_err
unknown_key(const struct cfg_origin *o, const char *key)
{
    char k[CFG_SHOWN_MAX + 8];
    char names[CFG_KEY_COUNT * 32];
    const char *near = nearest_key(key);

    cfg_shown(k, key);
    if (near != NULL) {
        sess__fmt(o->errmsg, o->errmsg_len, "%s: unknown key \"%s\" (did you mean \"%s\"?)",
                  o->where, k, near);
        return SESS_ECONFIG;
    }
    /* From the table, so that a new key is listed without a second edit. */
    list_keys(names, sizeof(names));
    sess__fmt(o->errmsg, o->errmsg_len, "%s: unknown key \"%s\" (keys: %s)", o->where, k, names);
    return SESS_ECONFIG;
}

/* --- defaults --- */

#define DEFAULT_TRUSTED_PROXIES "127.0.0.0/8, ::1"

/* Login security and the auth log: trusted_proxies, login_max_failures,
 * login_window and log in keys.c. */
static void
login_defaults(struct sess_config *cfg)
{
    struct sess_str bad;
    enum sess_err err =
        sess__net_list_parse(DEFAULT_TRUSTED_PROXIES, cfg->trusted_proxies,
                             SESS_TRUSTED_PROXIES_MAX, &cfg->trusted_proxies_count, &bad);

    (void)err; /* a constant, checked by the tests */
    cfg->login_max_failures = 5;
    cfg->login_window_s = 300;
    cfg->log_to = SESS_LOG_STDERR;
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
        abs_base = cfg_resolve_path(cwd, base_dir != NULL ? base_dir : ".");
    }
    if (abs_base == NULL)
        goto out;
    cfg->name = strdup("sid");
    cfg->cookie_path = strdup("/");
    cfg->html_dir = cfg_resolve_path(abs_base, "html");
    cfg->store = cfg_lmdb_store(abs_base, "var/sessions");
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
    const struct cfg_key *def = cfg_key_find(key);
    struct cfg_origin o = {origin, NULL, errmsg, errmsg_len};
    char *base = NULL;
    enum sess_err err;

    if (def == NULL)
        return unknown_key(&o, key);
    /* Relative paths follow the file the rest came from, as in the file. */
    base = cfg->path != NULL ? dir_of(cfg->path) : NULL;
    if (base == NULL)
        base = current_dir();
    if (base == NULL) {
        sess__fmt(errmsg, errmsg_len, "%s: cannot find the current directory: %s", origin,
                  strerror(errno));
        return SESS_ECONFIG;
    }
    o.base_dir = base;
    err = def->set(cfg, &o, key, value);
    if (err == SESS_ENOMEM)
        sess__fmt(errmsg, errmsg_len, "%s: %s", origin, sess_strerror(err));
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
    unsigned first_line[CFG_KEY_COUNT] = {0};
    char where[PATH_MAX + 32];
    char shown_line[CFG_SHOWN_MAX + 8];

    memset(cfg, 0, sizeof(*cfg));
    fp = fopen(path, "re");
    if (fp == NULL) {
        sess__fmt(errmsg, errmsg_len, "%s: cannot open the configuration: %s", path,
                  strerror(errno));
        err = SESS_ECONFIG;
        goto out;
    }
    dir = dir_of(path);
    if (dir == NULL) {
        sess__fmt(errmsg, errmsg_len, "%s: cannot resolve the directory: %s", path,
                  strerror(errno));
        err = SESS_ECONFIG;
        goto out;
    }
    err = sess_config_defaults(cfg, dir);
    if (err != SESS_OK) {
        sess__fmt(errmsg, errmsg_len, "%s: %s", path, sess_strerror(err));
        goto out;
    }
    cfg->path = strdup(path);
    if (cfg->path == NULL) {
        err = SESS_ENOMEM;
        sess__fmt(errmsg, errmsg_len, "%s: %s", path, sess_strerror(err));
        goto out;
    }
    for (;;) {
        ssize_t n;
        char *key = NULL, *value = NULL;
        const char *problem;
        const struct cfg_key *def;
        struct cfg_origin o = {where, dir, errmsg, errmsg_len};

        errno = 0;
        n = getline(&line, &line_cap, fp);
        if (n < 0) {
            if (errno != 0 || ferror(fp)) {
                sess__fmt(errmsg, errmsg_len, "%s: cannot read: %s", path,
                          strerror(errno != 0 ? errno : EIO));
                err = errno == ENOMEM ? SESS_ENOMEM : SESS_ECONFIG;
                goto out;
            }
            break;
        }
        line_no++;
        sess__fmt(where, sizeof(where), "%s:%u", path, line_no);
        if (memchr(line, '\0', (size_t)n) != NULL) {
            sess__fmt(errmsg, errmsg_len, "%s: a NUL byte in the line (is this a text file?)",
                      where);
            err = SESS_ECONFIG;
            goto out;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        /* split_line() cuts the line in place; keep it whole for a message. */
        cfg_shown(shown_line, line);
        if (!split_line(line, &key, &value, &problem))
            continue;
        if (problem != NULL) {
            sess__fmt(errmsg, errmsg_len, "%s: %s, found \"%s\"", where, problem, shown_line);
            err = SESS_ECONFIG;
            goto out;
        }
        def = cfg_key_find(key);
        if (def == NULL) {
            err = unknown_key(&o, key);
            goto out;
        }
        size_t idx = (size_t)(def - cfg_keys);
        if (first_line[idx] != 0) {
            sess__fmt(errmsg, errmsg_len, "%s: %s is set twice (first on line %u); keep one", where,
                      key, first_line[idx]);
            err = SESS_ECONFIG;
            goto out;
        }
        first_line[idx] = line_no;
        err = def->set(cfg, &o, key, value);
        if (err != SESS_OK) {
            if (err == SESS_ENOMEM)
                sess__fmt(errmsg, errmsg_len, "%s: %s", where, sess_strerror(err));
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
        sess__fmt(errmsg, errmsg_len,
                  "%s: secret_file is required (a file with one secret of 32+ bytes per line)",
                  file);
        return SESS_ECONFIG;
    }
    if (!sess__cookie_name_is_valid(sess_str_c(name))) {
        sess__fmt(errmsg, errmsg_len, "%s: name must be a cookie name (RFC 7230 token)", file);
        return SESS_ECONFIG;
    }
    if (cfg->store == NULL || cfg->html_dir == NULL || cfg->cookie_path == NULL) {
        sess__fmt(errmsg, errmsg_len, "%s: store, html_dir and cookie_path must be set", file);
        return SESS_ECONFIG;
    }
    if (!sess__cookie_path_is_valid(cfg->cookie_path) ||
        (cfg->cookie_domain != NULL && !sess__cookie_domain_is_valid(cfg->cookie_domain))) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: cookie_path or cookie_domain holds a character a "
                  "Set-Cookie header cannot carry",
                  file);
        return SESS_ECONFIG;
    }
    if (cfg->touch_after_s > cfg->max_age_s) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: touch_after = %lld is more than max_age = %lld (a session would expire "
                  "before its expiry is written)",
                  file, (long long)cfg->touch_after_s, (long long)cfg->max_age_s);
        return SESS_ECONFIG;
    }
    if (cfg->touch_after_s > cfg->remember_max_age_s) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: touch_after = %lld is more than remember_max_age = %lld (a remembered "
                  "session would expire before its expiry is written)",
                  file, (long long)cfg->touch_after_s, (long long)cfg->remember_max_age_s);
        return SESS_ECONFIG;
    }
    if (cfg->cookie_same_site == SESS_SAME_SITE_NONE && cfg->cookie_secure == SESS_SECURE_NEVER) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: cookie_same_site = none needs cookie_secure = auto or true (browsers "
                  "drop SameSite=None cookies without Secure)",
                  file);
        return SESS_ECONFIG;
    }
    /* Browsers match the prefixes without regard to case (RFC 6265bis). */
    if (sess__cookie_has_prefix(name, "__Host-") &&
        (cfg->cookie_secure == SESS_SECURE_NEVER || strcmp(cfg->cookie_path, "/") != 0 ||
         cfg->cookie_domain != NULL)) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: a name starting with __Host- needs cookie_secure = auto or true, "
                  "cookie_path = / and no cookie_domain (browsers drop it otherwise)",
                  file);
        return SESS_ECONFIG;
    }
    if (sess__cookie_has_prefix(name, "__Secure-") && cfg->cookie_secure == SESS_SECURE_NEVER) {
        sess__fmt(errmsg, errmsg_len,
                  "%s: a name starting with __Secure- needs cookie_secure = auto or true "
                  "(browsers drop it otherwise)",
                  file);
        return SESS_ECONFIG;
    }
    return SESS_OK;
}
