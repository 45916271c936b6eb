/* Pure formats beyond what sess_util.h makes public: addresses and the
 * trusted_proxies list (addr.c), the cache of verified cookie values
 * (sign.c), and the checks config.c shares with cookie.c. No I/O, no
 * request. Internal to lib/. */
#ifndef SESS_CODEC_H
#define SESS_CODEC_H

#include "base.h"
#include "buf.h"
#include "sess_util.h"

/* An address as text: INET6_ADDRSTRLEN. */
#define SESS_ADDR_TEXT_MAX 46

/* Addresses (addr.c). Parses an IPv4 or IPv6 address into 16 bytes, IPv4
 * as IPv4-mapped IPv6. */
bool sess__addr_parse(struct sess_str s, unsigned char out[16]);
/* The canonical text of an address (IPv4-mapped ones as IPv4). */
void sess__addr_format(const unsigned char a[16], char out[SESS_ADDR_TEXT_MAX]);
/* Parses trusted_proxies: comma-separated addresses or CIDRs, spaces
 * around each allowed; "" is an empty list. SESS_EBADINPUT for an entry
 * that is neither (an empty one too), SESS_ETOOBIG past `cap`; `*bad`
 * then borrows the entry from `text`. */
enum sess_err sess__net_list_parse(const char *text, struct sess_net *nets, size_t cap,
                                   size_t *count, struct sess_str *bad) SESS_MUST_CHECK;
bool sess__net_list_has(const struct sess_net *nets, size_t count, const unsigned char a[16]);
/* sess_client_addr's choice, from the parameters alone. */
void sess__client_addr_pick(const char *remote, const char *forwarded, bool trust_proxy,
                            const struct sess_net *trusted, size_t trusted_count,
                            char out[SESS_ADDR_TEXT_MAX]);

/* Cookie values this process verified lately, so that a client's next
 * request skips the HMAC (~17k instructions, a fifth of a logged-in page).
 * Sets chosen by a hash of the signature's first characters, four values
 * each, so that a thousand clients taking turns all stay in (direct-mapped
 * on two characters, 256 clients in turn missed two times in three); a
 * value that fits is "s:" + id + "." + signature, 89 bytes for our
 * 43-character ids. */
#define SESS_VERIFIED_SETS 256
#define SESS_VERIFIED_WAYS 4
#define SESS_VERIFIED_MAX  96

struct sess_verified {
    unsigned char len[SESS_VERIFIED_SETS][SESS_VERIFIED_WAYS]; /* 0: empty */
    unsigned char victim[SESS_VERIFIED_SETS]; /* the way a miss replaces next */
    char value[SESS_VERIFIED_SETS][SESS_VERIFIED_WAYS][SESS_VERIFIED_MAX];
};

/* sess_unsign() with `cache` in front: the same answer for every value. A
 * hit is a constant-time compare with a value that verified before, so
 * neither the answer nor its timing tells a forger more than the HMAC. */
enum sess_err sess__unsign_cached(const struct sess_secrets *secrets, struct sess_verified *cache,
                                  struct sess_str value, struct sess_str *id) SESS_MUST_CHECK;

/* What sess_cookie_build() accepts (cookie.c): config.c refuses at load time
 * what would otherwise fail on every response. Name: an RFC 7230 token. Path:
 * printable ASCII without ';'. Domain: cookie 0.7.2's rule, RFC 1123 labels
 * with an optional leading '.'. */
bool sess__cookie_name_is_valid(struct sess_str name);
/* Whether cookie `name` starts with `prefix` ("__Host-", "__Secure-") as
 * browsers now match it: without regard to case (RFC 6265bis), so that
 * the configuration check and the Set-Cookie agree with them. */
bool sess__cookie_has_prefix(const char *name, const char *prefix);
bool sess__cookie_path_is_valid(const char *path);
bool sess__cookie_domain_is_valid(const char *domain);

#endif
