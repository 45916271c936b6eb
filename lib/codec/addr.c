/* Client addresses: IPv4/IPv6 addresses and networks (inet_pton, IPv4 kept
 * as IPv4-mapped IPv6 so that one comparison serves both), the
 * trusted_proxies list, and which address of a request is the client's
 * (X-Forwarded-For read as Express's proxy-addr reads it). Pure: the
 * request's own answer, cached, is request.c's (sess_client_addr); the
 * throttle and the auth log that use it are auth/'s. */
#include <arpa/inet.h>
#include <string.h>

#include "codec.h"

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool
sess__addr_parse(struct sess_str s, unsigned char out[16])
{
    char text[SESS_ADDR_TEXT_MAX];
    unsigned char v4[4];

    if (s.len == 0 || s.len >= sizeof text)
        return false;
    memcpy(text, s.ptr, s.len);
    text[s.len] = '\0';
    if (inet_pton(AF_INET, text, v4) == 1) {
        memcpy(out, v4_mapped_prefix, sizeof v4_mapped_prefix);
        memcpy(out + 12, v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, text, out) == 1;
}

void
sess__addr_format(const unsigned char a[16], char out[SESS_ADDR_TEXT_MAX])
{
    bool is_v4 = memcmp(a, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0;

    if (!inet_ntop(is_v4 ? AF_INET : AF_INET6, is_v4 ? a + 12 : a, out, SESS_ADDR_TEXT_MAX))
        out[0] = '\0';
}

static struct sess_str
trim(struct sess_str s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* One "ADDR[/BITS]" of trusted_proxies. */
static bool
parse_net(struct sess_str s, struct sess_net *net)
{
    const char *slash = memchr(s.ptr, '/', s.len);
    struct sess_str addr = {s.ptr, slash ? (size_t)(slash - s.ptr) : s.len};
    bool is_v4;
    unsigned bits = 0, max;
    size_t i;

    if (!sess__addr_parse(addr, net->addr))
        return false;
    is_v4 = memcmp(net->addr, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0 &&
            memchr(addr.ptr, ':', addr.len) == NULL;
    max = is_v4 ? 32 : 128;
    if (!slash) {
        net->prefix_bits = 128;
        return true;
    }
    i = (size_t)(slash - s.ptr) + 1;
    if (i == s.len || s.len - i > 3)
        return false;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        bits = bits * 10 + (unsigned)(s.ptr[i] - '0');
    }
    if (bits > max)
        return false;
    net->prefix_bits = is_v4 ? 96 + bits : bits;
    /* Host bits set ("127.0.0.1/8") name the same network. */
    for (i = 0; i < 16; i++) {
        unsigned keep = net->prefix_bits > i * 8 ? net->prefix_bits - (unsigned)i * 8 : 0;
        if (keep < 8)
            net->addr[i] &= (unsigned char)(0xff00u >> keep);
    }
    return true;
}

enum sess_err
sess__net_list_parse(const char *text, struct sess_net *nets, size_t cap, size_t *count,
                     struct sess_str *bad)
{
    const char *p = text, *end = text + strlen(text);

    *count = 0;
    *bad = (struct sess_str){text, 0};
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        struct sess_str item = trim((struct sess_str){p, (size_t)((comma ? comma : end) - p)});

        p = (comma ? comma : end) + 1;
        if (item.len == 0) {
            if (comma || *count > 0) {
                *bad = item;
                return SESS_EBADINPUT; /* "a,,b" or a trailing comma */
            }
            continue; /* an empty list: trust no proxy */
        }
        if (*count == cap) {
            *bad = item;
            return SESS_ETOOBIG;
        }
        if (!parse_net(item, &nets[*count])) {
            *bad = item;
            return SESS_EBADINPUT;
        }
        (*count)++;
    }
    return SESS_OK;
}

bool
sess__net_list_has(const struct sess_net *nets, size_t count, const unsigned char a[16])
{
    for (size_t n = 0; n < count; n++) {
        unsigned bits = nets[n].prefix_bits, full = bits / 8, rest = bits % 8;
        if (memcmp(nets[n].addr, a, full) != 0)
            continue;
        if (rest == 0 || ((nets[n].addr[full] ^ a[full]) & (0xff00u >> rest) & 0xff) == 0)
            return true;
    }
    return false;
}

/* One X-Forwarded-For entry: an address, "[v6]" or "[v6]:port", or
 * "v4:port" as some proxies write them. */
static bool
parse_forwarded(struct sess_str s, unsigned char out[16])
{
    const char *colon;

    s = trim(s);
    if (s.len > 0 && s.ptr[0] == '[') {
        const char *close = memchr(s.ptr, ']', s.len);
        if (!close)
            return false;
        return sess__addr_parse((struct sess_str){s.ptr + 1, (size_t)(close - s.ptr - 1)}, out);
    }
    colon = memchr(s.ptr, ':', s.len);
    if (colon && memchr(colon + 1, ':', s.len - (size_t)(colon + 1 - s.ptr)) == NULL)
        s.len = (size_t)(colon - s.ptr); /* exactly one ':': v4 and a port */
    return sess__addr_parse(s, out);
}

/* A REMOTE_ADDR that is not an address (a UNIX socket's path, say) is kept
 * as it is, with anything but [0-9A-Za-z.:_-] as '?': it names the client
 * in the throttle and the log all the same. */
static void
copy_raw(const char *s, char out[SESS_ADDR_TEXT_MAX])
{
    size_t n = 0;

    for (; s && *s && n < SESS_ADDR_TEXT_MAX - 1; s++, n++) {
        char c = *s;
        bool is_plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                        (c >= 'A' && c <= 'Z') || c == '.' || c == ':' || c == '_' || c == '-';
        if (!is_plain)
            c = '?';
        out[n] = c;
    }
    out[n] = '\0';
}

void
sess__client_addr_pick(const char *remote, const char *forwarded, bool trust_proxy,
                       const struct sess_net *trusted, size_t trusted_count,
                       char out[SESS_ADDR_TEXT_MAX])
{
    unsigned char hop[16], last[16];
    const char *end;

    if (!sess__addr_parse(sess_str_c(remote), last)) {
        copy_raw(remote, out);
        return;
    }
    if (trust_proxy && forwarded && sess__net_list_has(trusted, trusted_count, last)) {
        /* Right to left: each hop was added by the one after it, so only
         * what trusted proxies added is believed. */
        end = forwarded + strlen(forwarded);
        for (;;) {
            const char *p = end;
            while (p > forwarded && p[-1] != ',')
                p--;
            if (!parse_forwarded((struct sess_str){p, (size_t)(end - p)}, hop))
                break;
            memcpy(last, hop, sizeof last);
            if (!sess__net_list_has(trusted, trusted_count, hop) || p == forwarded)
                break;
            end = p - 1;
        }
    }
    sess__addr_format(last, out);
}
