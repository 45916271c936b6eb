/* The Redis URL grammar of redis_url.h: redis://, rediss://, unix: and
 * redis-sentinel://, parsed once for config.c and the Redis store alike,
 * and the masking that keeps passwords out of every message. Pure text:
 * connecting is store/redis/conn.c's business. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base.h"
#include "redis_url.h"

static bool
starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
free_secret(char *s)
{
    if (s)
        sodium_memzero(s, strlen(s));
    free(s);
}

/* A percent-decoded copy of s[0..len) (node-redis decodes the user and
 * password of its URL the same way), or NULL on a bad escape or a NUL;
 * *is_nomem tells the two apart. */
static char *
url_decode(const char *s, size_t len, bool *is_nomem)
{
    char *out = malloc(len + 1);
    size_t n;

    *is_nomem = out == NULL;
    if (!out)
        return NULL;
    if (sess_percent_decode((struct sess_str){s, len}, false, out, &n) != SESS_OK ||
        memchr(out, '\0', n)) {
        /* Not NUL-terminated after a bad escape: wipe all of it. */
        sodium_memzero(out, len + 1);
        free(out);
        return NULL;
    }
    return out;
}

/* Reads a whole decimal number in [min, max] from s[0..len). */
static bool
parse_int(const char *s, size_t len, long min, long max, int *out)
{
    long v = 0;
    size_t i;

    if (len == 0 || len > 9)
        return false;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

static bool
has_control_or_space(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* HOST[:PORT] in s[0..end), HOST a name, an IPv4 address or [IPv6]. */
static enum sess_err
parse_node(const char *s, const char *end, int default_port, struct sess_redis_node *n, char *why,
           size_t why_len)
{
    const char *host = s, *host_end, *colon;

    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end || host_end == host + 1 || (host_end + 1 < end && host_end[1] != ':'))
            goto bad_host;
        host++;
        colon = host_end + 1 < end ? host_end + 1 : NULL;
    } else {
        colon = memchr(host, ':', (size_t)(end - host));
        host_end = colon ? colon : end;
    }
    if (host_end == host)
        goto bad_host;
    n->port = default_port;
    if (colon && !sess__redis_port_parse(colon + 1, (size_t)(end - colon - 1), &n->port)) {
        sess__fmt(why, why_len, "the port must be 1 to 65535");
        return SESS_ECONFIG;
    }
    n->host = strndup(host, (size_t)(host_end - host));
    return n->host ? SESS_OK : SESS_ENOMEM;
bad_host:
    sess__fmt(why, why_len, "no host (HOST, HOST:PORT or [IPv6]:PORT)");
    return SESS_ECONFIG;
}

/* [[USER]:PASSWORD@] at `p`, ending at the URL's last '@'; *rest is what
 * follows it. */
static enum sess_err
parse_userinfo(const char *p, struct sess_redis_url *u, const char **rest, char *why,
               size_t why_len)
{
    const char *at = strrchr(p, '@'), *colon;
    bool is_nomem = false;

    *rest = p;
    if (!at)
        return SESS_OK;
    colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) {
        sess__fmt(why, why_len,
                  "a user needs a password (USER:PASSWORD@HOST, or :PASSWORD@HOST without a "
                  "user)");
        return SESS_ECONFIG;
    }
    if (colon > p && !(u->user = url_decode(p, (size_t)(colon - p), &is_nomem)))
        goto bad;
    if (!(u->password = url_decode(colon + 1, (size_t)(at - colon - 1), &is_nomem)))
        goto bad;
    *rest = at + 1;
    return SESS_OK;
bad:
    if (is_nomem)
        return SESS_ENOMEM;
    sess__fmt(why, why_len, "a bad %%-escape in the user or password");
    return SESS_ECONFIG;
}

static enum sess_err
parse_db(const char *s, struct sess_redis_url *u, char *why, size_t why_len)
{
    if (*s != '\0' && !parse_int(s, strlen(s), 0, INT_MAX, &u->db)) {
        sess__fmt(why, why_len, "the database after '/' must be a number");
        return SESS_ECONFIG;
    }
    return SESS_OK;
}

/* redis:// and rediss://: [[USER]:PASSWORD@]HOST[:PORT][/DB]. */
static enum sess_err
parse_tcp(const char *p, struct sess_redis_url *u, char *why, size_t why_len)
{
    const char *slash, *end;
    enum sess_err err = parse_userinfo(p, u, &p, why, why_len);

    if (err != SESS_OK)
        return err;
    slash = strchr(p, '/');
    end = slash ? slash : p + strlen(p);
    err = parse_node(p, end, SESS_REDIS_DEFAULT_PORT, &u->node, why, why_len);
    if (err == SESS_OK && slash)
        err = parse_db(slash + 1, u, why, why_len);
    return err;
}

/* redis-sentinel://: [[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB],
 * the sentinels' port 26379 when not given. */
static enum sess_err
parse_sentinel(const char *p, struct sess_redis_url *u, char *why, size_t why_len)
{
    static const char shape[] =
        "(redis-sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB])";
    const char *slash, *name, *name_end, *q, *comma;
    enum sess_err err = parse_userinfo(p, u, &p, why, why_len);

    if (err != SESS_OK)
        return err;
    slash = strchr(p, '/');
    if (!slash || slash[1] == '\0' || slash[1] == '/') {
        sess__fmt(why, why_len, "no master name after the sentinels %s", shape);
        return SESS_ECONFIG;
    }
    for (q = p; err == SESS_OK && q <= slash; q = comma + 1) {
        comma = memchr(q, ',', (size_t)(slash - q));
        if (!comma)
            comma = slash;
        if (u->sentinels == SESS_REDIS_SENTINELS_MAX) {
            sess__fmt(why, why_len, "more than %d sentinels", SESS_REDIS_SENTINELS_MAX);
            return SESS_ECONFIG;
        }
        err = parse_node(q, comma, SESS_REDIS_SENTINEL_PORT, &u->sentinel[u->sentinels++], why,
                         why_len);
    }
    if (err == SESS_ECONFIG && why_len > 0) {
        size_t n = strlen(why);
        sess__fmt(why + n, why_len - n, " in the list of sentinels %s", shape);
    }
    if (err != SESS_OK)
        return err;
    name = slash + 1;
    name_end = strchr(name, '/');
    if (!name_end)
        name_end = name + strlen(name);
    if ((size_t)(name_end - name) > SESS_REDIS_MASTER_NAME_MAX) {
        sess__fmt(why, why_len, "a master name longer than %d bytes", SESS_REDIS_MASTER_NAME_MAX);
        return SESS_ECONFIG;
    }
    u->master = strndup(name, (size_t)(name_end - name));
    if (!u->master)
        return SESS_ENOMEM;
    return *name_end == '/' ? parse_db(name_end + 1, u, why, why_len) : SESS_OK;
}

/* unix:/PATH or unix:///PATH, then optionally ?db=N&password=P. */
static enum sess_err
parse_unix(const char *path, struct sess_redis_url *u, char *why, size_t why_len)
{
    const char *query, *q;
    bool is_nomem = false;

    if (starts(path, "//"))
        path += 2;
    query = strchr(path, '?');
    if (*path != '/' || (query ? query : path + strlen(path)) - path < 2) {
        sess__fmt(why, why_len, "unix: needs the absolute path of a socket");
        return SESS_ECONFIG;
    }
    u->socket_path = query ? strndup(path, (size_t)(query - path)) : strdup(path);
    if (!u->socket_path)
        return SESS_ENOMEM;
    for (q = query; q && *q;) {
        const char *name = q + 1, *amp = strchr(name, '&');
        const char *stop = amp ? amp : name + strlen(name);

        if (starts(name, "db=")) {
            if (!parse_int(name + 3, (size_t)(stop - name - 3), 0, INT_MAX, &u->db)) {
                sess__fmt(why, why_len, "db= must be a number");
                return SESS_ECONFIG;
            }
        } else if (starts(name, "password=")) {
            free_secret(u->password);
            u->password = url_decode(name + 9, (size_t)(stop - name - 9), &is_nomem);
            if (!u->password) {
                if (is_nomem)
                    return SESS_ENOMEM;
                sess__fmt(why, why_len, "a bad %%-escape in the password");
                return SESS_ECONFIG;
            }
        } else {
            /* The name only: an unknown parameter may be a misspelt
             * password=. */
            sess__fmt(why, why_len, "unknown parameter %.*s (unix:/PATH?db=N&password=P)",
                      (int)(strcspn(name, "=&") > 40 ? 40 : strcspn(name, "=&")), name);
            return SESS_ECONFIG;
        }
        q = amp;
    }
    return SESS_OK;
}

bool
sess__redis_port_parse(const char *s, size_t len, int *port)
{
    return parse_int(s, len, 1, 65535, port);
}

void
sess__redis_node_format(const char *host, int port, char *out, size_t out_len)
{
    bool is_v6 = strchr(host, ':') != NULL;

    sess__fmt(out, out_len, "%s%.100s%s:%d", is_v6 ? "[" : "", host, is_v6 ? "]" : "", port);
}

bool
sess__redis_url_is_redis(const char *url)
{
    return starts(url, "redis://") || starts(url, "rediss://") ||
           starts(url, "redis-sentinel://") || starts(url, "unix:");
}

enum sess_err
sess__redis_url_parse(const char *url, struct sess_redis_url *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (why_len)
        why[0] = '\0';
    if (has_control_or_space(url)) {
        sess__fmt(why, why_len, "spaces or control characters in the URL");
        return SESS_ECONFIG;
    }
    if (starts(url, "redis://")) {
        out->kind = SESS_REDIS_TCP;
        return parse_tcp(url + 8, out, why, why_len);
    }
    if (starts(url, "rediss://")) {
        out->kind = SESS_REDIS_TLS;
        return parse_tcp(url + 9, out, why, why_len);
    }
    if (starts(url, "redis-sentinel://")) {
        out->kind = SESS_REDIS_SENTINEL;
        return parse_sentinel(url + 17, out, why, why_len);
    }
    if (starts(url, "unix:")) {
        out->kind = SESS_REDIS_UNIX;
        return parse_unix(url + 5, out, why, why_len);
    }
    sess__fmt(why, why_len, "not a Redis URL (redis://, redis-sentinel://, unix:)");
    return SESS_ECONFIG;
}

void
sess__redis_url_free(struct sess_redis_url *u)
{
    size_t i;

    if (!u)
        return;
    free(u->node.host);
    free(u->socket_path);
    for (i = 0; i < u->sentinels; i++)
        free(u->sentinel[i].host);
    free(u->master);
    free_secret(u->user);
    free_secret(u->password);
    memset(u, 0, sizeof *u);
}

/* What sess__redis_url_mask hides, byte by byte: MASK_HIDE on a password's
 * bytes, MASK_STARS where a password begins (so that an empty one shows as
 * "***" too). */
#define MASK_HIDE  1
#define MASK_STARS 2

static void
mark(unsigned char *marks, size_t from, size_t to)
{
    marks[from] |= MASK_STARS;
    for (; from < to; from++)
        marks[from] |= MASK_HIDE;
}

/* The userinfo's password: after the user's ':' up to the last '@', or all
 * before that '@' without a ':' (a password put in the wrong place). */
static void
mark_userinfo(const char *url, unsigned char *marks)
{
    const char *auth = strstr(url, "://");
    const char *at = auth ? strrchr(auth + 3, '@') : NULL;
    const char *colon;

    if (!at)
        return;
    colon = memchr(auth + 3, ':', (size_t)(at - auth - 3));
    mark(marks, (size_t)((colon ? colon + 1 : auth + 3) - url), (size_t)(at - url));
}

/* Every password= parameter's value, up to the next '&'. */
static void
mark_password_params(const char *url, size_t len, unsigned char *marks)
{
    const char *p, *amp;

    for (p = strstr(url, "password="); p; p = strstr(p + 1, "password=")) {
        amp = strchr(p + 9, '&');
        mark(marks, (size_t)(p + 9 - url), amp ? (size_t)(amp - url) : len);
    }
}

void
sess__redis_url_mask(const char *url, char *out, size_t out_len)
{
    size_t len = strlen(url), i, n = 0;
    unsigned char *marks = calloc(len + 1, 1);
    /* Each byte shown may be followed by "***". */
    char *tmp = len < SIZE_MAX / 4 - 4 ? malloc(4 * len + 4) : NULL;
    bool is_in_stars = false;

    if (!marks || !tmp) {
        free(marks);
        free(tmp);
        sess__fmt(out, out_len, "(a Redis URL)");
        return;
    }
    /* Both rules on the URL as written, and their union hidden: applied in
     * turn, the first could leave bytes the second no longer recognises
     * (unix:///s?password=a@b lost all but the "b" of its password to the
     * '@' rule). */
    mark_userinfo(url, marks);
    mark_password_params(url, len, marks);
    for (i = 0; i <= len; i++) {
        bool is_hidden = i < len && (marks[i] & MASK_HIDE);

        if ((is_hidden || (marks[i] & MASK_STARS)) && !is_in_stars) {
            memcpy(tmp + n, "***", 3);
            n += 3;
            is_in_stars = true;
        }
        if (is_hidden)
            continue;
        is_in_stars = false;
        if (i < len)
            tmp[n++] = url[i];
    }
    tmp[n] = '\0';
    /* Masked whole, then cut: no byte of a password survives the cut. */
    sess__fmt(out, out_len, "%s", tmp);
    free(marks);
    free(tmp);
}
