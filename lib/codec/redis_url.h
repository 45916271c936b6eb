/* The grammar of a Redis `store` URL, one for the whole library: config.c
 * checks a URL with it when the file is read (errors with FILE:LINE), the
 * Redis store connects by what it parsed, and every message that quotes a
 * URL or names a server goes through the masking and formatting here. No
 * I/O. Internal to lib/. */
#ifndef SESS_REDIS_URL_H
#define SESS_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "sess_util.h"

#define SESS_REDIS_SENTINELS_MAX   16
#define SESS_REDIS_DEFAULT_PORT    6379
#define SESS_REDIS_SENTINEL_PORT   26379
#define SESS_REDIS_MASTER_NAME_MAX 128

enum sess_redis_kind {
    SESS_REDIS_TCP,      /* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] */
    SESS_REDIS_TLS,      /* rediss://..., the same shape */
    SESS_REDIS_UNIX,     /* unix:/PATH or unix:///PATH, then ?db=N&password=P */
    SESS_REDIS_SENTINEL, /* redis-sentinel://[USERINFO@]HOST[:PORT][,...]/MASTER[/DB] */
};

struct sess_redis_node {
    char *host; /* a name, an IPv4 address or an IPv6 one without brackets */
    int port;
};

/* What a URL names. Strings are malloc'd and freed (the password and user
 * wiped first) by sess__redis_url_free. */
struct sess_redis_url {
    enum sess_redis_kind kind;
    struct sess_redis_node node;                               /* TCP, TLS: the server */
    char *socket_path;                                         /* UNIX */
    struct sess_redis_node sentinel[SESS_REDIS_SENTINELS_MAX]; /* SENTINEL, port 26379 by default */
    size_t sentinels;
    char *master;   /* SENTINEL: the master's name as the sentinels know it */
    char *user;     /* Redis 6 ACL user, or NULL */
    char *password; /* NULL: no AUTH */
    int db;
};

/* Whether `url` has the scheme of a Redis URL (redis://, rediss://,
 * redis-sentinel://, unix:): the rest is for sess__redis_url_parse to judge. */
bool sess__redis_url_is_redis(const char *url);

/* Parses `url` into `out` (zeroed first; free it with sess__redis_url_free
 * whatever the result). SESS_ECONFIG with `why` saying what is wrong and
 * what is allowed, never quoting the URL (the caller shows it masked);
 * SESS_ENOMEM. The user and password are percent-decoded as node-redis
 * does; they end at the URL's last '@', so a password may hold '/' or '@'. */
enum sess_err sess__redis_url_parse(const char *url, struct sess_redis_url *out, char *why,
                                    size_t why_len) SESS_MUST_CHECK;
void sess__redis_url_free(struct sess_redis_url *u);

/* `url` as a message may quote it: the password (what lies between the
 * user's ':' and the last '@', or all before that '@' without a ':') and
 * the value of every password= parameter replaced by "***" (where the two
 * overlap, all that either would hide), before any truncation, so that no
 * byte of a password survives however long it is. Any URL may be given:
 * store.c masks what it cannot name. "(a Redis URL)" when out of memory. */
void sess__redis_url_mask(const char *url, char *out, size_t out_len);

/* Reads a port from s[0..len): 1 to 65535 in decimal, nothing else (no
 * sign, no spaces). The URL's grammar, and a sentinel's answer to
 * get-master-addr-by-name, which names the master the same way. */
bool sess__redis_port_parse(const char *s, size_t len, int *port);

/* "HOST:PORT" into `out` as a URL writes it, an IPv6 address in brackets
 * ("[::1]:6379"), the host cut to its first 100 bytes: how messages name a
 * server, never with a password. */
void sess__redis_node_format(const char *host, int port, char *out, size_t out_len);

#endif
