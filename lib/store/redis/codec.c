/* The Redis store's values (redis_codec.h): the session JSON that
 * connect-redis stores, our metadata inside it, sealing when encrypt = true,
 * and the TTL. Pure: no I/O, and the clock is the caller's. Connecting and
 * running commands is conn.c's business, what is read and written when is
 * sessions.c's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "base.h"
#include "redis_codec.h"

/* What this library knows about a session beyond express-session's JSON.
 * It travels inside that JSON, as the first top-level key:
 *   {"_fcgi":{"created":MS,"deadline":MS,"owner":"NAME"},"cookie":{...},...}
 * rather than in a key of its own ("sessmeta:ID"), because express-session
 * copies unknown top-level keys onto req.session and writes them back on
 * every save, and connect-redis's touch never rewrites the value: the
 * absolute deadline survives however long an Express app keeps the session
 * alive, where a sibling key would expire or go stale behind its back. The
 * key is taken out before the data reaches session.c and put back on write,
 * so routes never see it. A value without it was made by Express: created
 * when we first read it, owner from user.username, and (express-session
 * having no absolute timeout) absolute_timeout after that first reading,
 * which get writes into the value as our key so that later readings, ours
 * or Express's saves, keep it. */
#define META_KEY    "_fcgi"
#define META_OPEN   "{\"" META_KEY "\":{\"created\":"
#define META_NEEDLE "\"" META_KEY "\""

/* Session metadata as found in a value. The fields after `owner` are
 * written, in this order, only when set: ,"handle":"BASE64URL","seen":MS,
 * "idle":MS,"life":MS,"remember":true,"addr":"..","ua":"..". The idle
 * lifetime is also what session.c writes as cookie.originalMaxAge, as
 * express-session stores a session whose cookie.maxAge was set. */
struct meta {
    bool is_present;
    int64_t created_ms;
    int64_t deadline_ms;
    struct sess_str owner;
    bool has_handle;
    unsigned char handle[SESS_HANDLE_BYTES];
    int64_t last_seen_ms, idle_ms, lifetime_ms;
    bool is_remembered;
    struct sess_str client_addr, user_agent;
};

#define HANDLE_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* ------------------------------------------------------------------------
 * The codec's state and the helpers the store's files share
 * ------------------------------------------------------------------------ */

void
rs_codec_init(struct rs_codec *c, const struct sess_secrets *secrets, bool is_sealing,
              int64_t absolute_ms)
{
    memset(c, 0, sizeof *c);
    c->is_sealing = is_sealing;
    c->absolute_ms = absolute_ms;
    sess__sealer_init(&c->sealer, secrets);
}

void
rs_codec_wipe(struct rs_codec *c)
{
    sess__sealer_wipe(&c->sealer);
    sess__buf_wipe(&c->val);
    sess__buf_wipe(&c->plain);
    sess__buf_wipe(&c->text);
    c->why = NULL;
}

int64_t
rs_ttl_seconds(const struct sess_record *rec, int64_t now_ms)
{
    int64_t left = sess__record_expiry_ms(rec->expires_ms, rec->deadline_ms) - now_ms;

    if (left <= 0)
        return 0;
    return left / 1000 + (left % 1000 != 0);
}

bool
rs_has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

bool
rs_str_eq(struct sess_str a, struct sess_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool
rs_id_is_usable(struct sess_str id)
{
    return id.len > 0 && id.len <= SESS_ID_MAX_LEN;
}

/* ------------------------------------------------------------------------
 * Writing: our key first, then the data
 * ------------------------------------------------------------------------ */

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Appends `s` as the body of a JSON string (without the quotes). */
static enum sess_err
append_json_chars(struct sess_buf *out, struct sess_str s)
{
    static const char hex[] = "0123456789abcdef";
    enum sess_err err = SESS_OK;
    size_t i, run = 0;

    for (i = 0; i < s.len && err == SESS_OK; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        err = sess__buf_append(out, s.ptr + run, i - run);
        if (err == SESS_OK && (ch == '"' || ch == '\\'))
            err = sess__buf_append(out, (char[]){'\\', (char)ch}, 2);
        else if (err == SESS_OK)
            err = sess__buf_append(out, esc, sizeof esc);
        run = i + 1;
    }
    return err == SESS_OK ? sess__buf_append(out, s.ptr + run, s.len - run) : err;
}

/* `data` without a top-level META_KEY, which a route may have set itself:
 * a second copy would be a duplicate key that Express and we resolve
 * differently. Borrows from `data` or from c->text. */
static enum sess_err
without_meta(struct rs_codec *c, struct sess_str data, struct sess_str *out)
{
    json_error_t jerr;
    json_t *obj;
    char *text;
    enum sess_err err;

    *out = data;
    if (!memmem(data.ptr, data.len, META_NEEDLE, sizeof META_NEEDLE - 1))
        return SESS_OK;
    obj = json_loadb(data.ptr, data.len, 0, &jerr);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return SESS_EBADINPUT;
    }
    json_object_del(obj, META_KEY);
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!text)
        return SESS_ENOMEM;
    c->text.len = 0;
    err = sess__buf_append(&c->text, text, strlen(text));
    free(text);
    *out = (struct sess_str){c->text.ptr, c->text.len};
    return err;
}

static enum sess_err
write_meta_str(struct sess_buf *out, const char *name, struct sess_str v)
{
    enum sess_err err = SESS_OK;

    if (!v.len)
        return SESS_OK;
    err = sess__buf_append(out, name, strlen(name));
    if (err == SESS_OK)
        err = append_json_chars(out, v);
    return err == SESS_OK ? sess__buf_append(out, "\"", 1) : err;
}

static enum sess_err
write_meta_i64(struct sess_buf *out, const char *name, int64_t v)
{
    char num[24];
    int n;

    if (!v)
        return SESS_OK;
    n = snprintf(num, sizeof num, "%lld", (long long)v);
    return sess__buf_append(out, name, strlen(name)) == SESS_OK
               ? sess__buf_append(out, num, (size_t)n)
               : SESS_ENOMEM;
}

/* The fields of struct meta after the owner, those that are set. */
static enum sess_err
write_meta_fields(struct sess_buf *out, const struct sess_record *rec)
{
    char handle[sodium_base64_ENCODED_LEN(SESS_HANDLE_BYTES, HANDLE_B64)];
    enum sess_err err = SESS_OK;

    if (rec->has_handle) {
        sodium_bin2base64(handle, sizeof handle, rec->handle, sizeof rec->handle, HANDLE_B64);
        err = write_meta_str(out, ",\"handle\":\"", sess_str_c(handle));
    }
    if (err == SESS_OK)
        err = write_meta_i64(out, ",\"seen\":", rec->last_seen_ms);
    if (err == SESS_OK)
        err = write_meta_i64(out, ",\"idle\":", rec->idle_ms);
    if (err == SESS_OK)
        err = write_meta_i64(out, ",\"life\":", rec->lifetime_ms);
    if (err == SESS_OK && rec->is_remembered)
        err = sess__buf_append(out, ",\"remember\":true", 16);
    if (err == SESS_OK)
        err = write_meta_str(out, ",\"addr\":\"", rec->client_addr);
    if (err == SESS_OK)
        err = write_meta_str(out, ",\"ua\":\"", rec->user_agent);
    return err;
}

/* Writes into `out` the JSON Redis holds for `rec`: META_KEY first, then
 * the record's data as session.c made it. */
static enum sess_err
write_json(struct rs_codec *c, const struct sess_record *rec, struct sess_buf *out)
{
    struct sess_str data;
    char head[96];
    const char *body, *end;
    enum sess_err err;
    int n;

    err = without_meta(c, rec->data, &data);
    if (err != SESS_OK)
        return err;
    body = data.ptr;
    end = data.ptr + data.len;
    while (body < end && is_space(*body))
        body++;
    while (end > body && is_space(end[-1]))
        end--;
    if (end - body < 2 || *body != '{' || end[-1] != '}')
        return SESS_EBADINPUT;
    body++;
    while (body < end && is_space(*body))
        body++;

    out->len = 0;
    n = snprintf(head, sizeof head, META_OPEN "%lld,\"deadline\":%lld", (long long)rec->created_ms,
                 (long long)rec->deadline_ms);
    err = sess__buf_append(out, head, (size_t)n);
    if (err == SESS_OK && rec->owner.len) {
        err = sess__buf_append(out, ",\"owner\":\"", 10);
        if (err == SESS_OK)
            err = append_json_chars(out, rec->owner);
        if (err == SESS_OK)
            err = sess__buf_append(out, "\"", 1);
    }
    if (err == SESS_OK)
        err = write_meta_fields(out, rec);
    if (err == SESS_OK)
        err = sess__buf_append(out, "}", 1);
    /* `body` now starts at the first key, or at the closing brace. */
    if (err == SESS_OK && *body != '}')
        err = sess__buf_append(out, ",", 1);
    if (err == SESS_OK)
        err = sess__buf_append(out, body, (size_t)(end - body));
    return err;
}

enum sess_err
rs_value_encode(struct rs_codec *c, struct sess_str id, const struct sess_record *rec)
{
    enum sess_err err;

    if (!c->is_sealing)
        return write_json(c, rec, &c->val);
    err = write_json(c, rec, &c->plain);
    if (err == SESS_OK) {
        c->val.len = 0;
        err = sess__buf_append(&c->val, RS_SEAL_MAGIC, RS_SEAL_MAGIC_LEN);
    }
    if (err == SESS_OK)
        err = sess__seal(&c->sealer, id, (struct sess_str){c->plain.ptr, c->plain.len}, &c->val);
    if (c->plain.ptr)
        sodium_memzero(c->plain.ptr, c->plain.len);
    return err;
}

/* ------------------------------------------------------------------------
 * Reading: our key without a parser when it is as we wrote it
 * ------------------------------------------------------------------------ */

/* The JSON inside a stored value: the value itself, or the unsealed bytes
 * in c->plain. A value that does not open, and a plain one when sealing is
 * on (anyone who can write to Redis could otherwise forge one), is
 * SESS_ENOTFOUND, with c->why. */
static enum sess_err
open_value(struct rs_codec *c, struct sess_str id, struct sess_str raw, struct sess_str *json)
{
    enum sess_err err;

    if (rs_has_prefix(raw.ptr, raw.len, RS_SEAL_MAGIC)) {
        c->plain.len = 0;
        err = sess__unseal(
            &c->sealer, id,
            (struct sess_str){raw.ptr + RS_SEAL_MAGIC_LEN, raw.len - RS_SEAL_MAGIC_LEN}, &c->plain);
        if (err == SESS_ECRYPTO) {
            c->why = "a session value does not open under any secret (tampered, moved, or "
                     "sealed with a secret no longer in secret_file)";
            return SESS_ENOTFOUND;
        }
        *json = (struct sess_str){c->plain.ptr, c->plain.len};
        return err;
    }
    if (c->is_sealing) {
        c->why = "a plain session value with encrypt = true";
        return SESS_ENOTFOUND;
    }
    *json = raw;
    return SESS_OK;
}

/* Reads a decimal integer at text[*pos]. */
static bool
scan_i64(struct sess_str text, size_t *pos, int64_t *out)
{
    size_t i = *pos;
    bool is_negative = i < text.len && text.ptr[i] == '-';
    int64_t v = 0;

    if (is_negative)
        i++;
    if (i >= text.len || text.ptr[i] < '0' || text.ptr[i] > '9')
        return false;
    for (; i < text.len && text.ptr[i] >= '0' && text.ptr[i] <= '9'; i++) {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (text.ptr[i] - '0');
    }
    *out = is_negative ? -v : v;
    *pos = i;
    return true;
}

static bool
scan_lit(struct sess_str text, size_t *pos, const char *lit)
{
    size_t n = strlen(lit);

    if (text.len - *pos < n || memcmp(text.ptr + *pos, lit, n) != 0)
        return false;
    *pos += n;
    return true;
}

/* A string field of the metadata without escapes (those go to the
 * parser): `name` is ',"NAME":"'. Absent is fine; false if malformed. */
static bool
scan_meta_str(struct sess_str text, size_t *pos, const char *name, struct sess_str *out)
{
    size_t start;

    if (!scan_lit(text, pos, name))
        return true;
    start = *pos;
    while (*pos < text.len && text.ptr[*pos] != '"' && text.ptr[*pos] != '\\')
        (*pos)++;
    if (*pos >= text.len || text.ptr[*pos] != '"')
        return false;
    *out = (struct sess_str){text.ptr + start, *pos - start};
    (*pos)++;
    return true;
}

static bool
scan_meta_i64(struct sess_str text, size_t *pos, const char *name, int64_t *out)
{
    return !scan_lit(text, pos, name) || scan_i64(text, pos, out);
}

/* Sets m->handle from its base64url text; false if it is not one. */
static bool
meta_handle(struct meta *m, struct sess_str text)
{
    size_t len = 0;

    if (!text.len)
        return true;
    if (sodium_base642bin(m->handle, sizeof m->handle, text.ptr, text.len, NULL, &len, NULL,
                          HANDLE_B64) != 0 ||
        len != sizeof m->handle)
        return false;
    m->has_handle = true;
    return true;
}

/* The fields write_meta_fields writes, in its order. */
static bool
meta_fast_fields(struct sess_str text, size_t *pos, struct meta *m)
{
    struct sess_str handle = {"", 0};

    if (!scan_meta_str(text, pos, ",\"handle\":\"", &handle) || !meta_handle(m, handle) ||
        !scan_meta_i64(text, pos, ",\"seen\":", &m->last_seen_ms) ||
        !scan_meta_i64(text, pos, ",\"idle\":", &m->idle_ms) ||
        !scan_meta_i64(text, pos, ",\"life\":", &m->lifetime_ms))
        return false;
    m->is_remembered = scan_lit(text, pos, ",\"remember\":true");
    return scan_meta_str(text, pos, ",\"addr\":\"", &m->client_addr) &&
           scan_meta_str(text, pos, ",\"ua\":\"", &m->user_agent);
}

/* The common case without a JSON parser: META_KEY first, exactly as
 * write_json puts it (JSON.stringify writes the same bytes when Express
 * saves the session again). On success *rest is where the remaining keys
 * start: at ',' or at the object's closing '}'. */
static bool
meta_fast(struct sess_str text, struct meta *m, size_t *rest)
{
    size_t pos = 0, start;

    if (!scan_lit(text, &pos, META_OPEN) || !scan_i64(text, &pos, &m->created_ms) ||
        !scan_lit(text, &pos, ",\"deadline\":") || !scan_i64(text, &pos, &m->deadline_ms))
        return false;
    m->owner = (struct sess_str){"", 0};
    /* An owner with escapes is left to the parser. */
    if (scan_lit(text, &pos, ",\"owner\":\"")) {
        start = pos;
        while (pos < text.len && text.ptr[pos] != '"' && text.ptr[pos] != '\\')
            pos++;
        if (pos >= text.len || text.ptr[pos] != '"')
            return false;
        m->owner = (struct sess_str){text.ptr + start, pos - start};
        pos++;
    }
    if (!meta_fast_fields(text, &pos, m) || !scan_lit(text, &pos, "}") || pos >= text.len ||
        (text.ptr[pos] != ',' && text.ptr[pos] != '}'))
        return false;
    m->is_present = true;
    *rest = pos;
    return true;
}

static struct sess_str
json_str_view(json_t *v)
{
    if (!json_is_string(v))
        return (struct sess_str){"", 0};
    return (struct sess_str){json_string_value(v), json_string_length(v)};
}

static int64_t
json_ms(json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    /* Beyond int64 the cast is undefined: such a time reads as absent. */
    if (json_is_real(v) && json_real_value(v) > -9.2e18 && json_real_value(v) < 9.2e18)
        return (int64_t)json_real_value(v);
    return 0;
}

/* The cheap part of "is this a JSON object": braces at both ends. The rest
 * is session.c's parse, which treats a corrupt value as absent. */
static bool
looks_like_object(struct sess_str json)
{
    size_t b = 0, e = json.len;

    while (b < e && is_space(json.ptr[b]))
        b++;
    while (e > b && is_space(json.ptr[e - 1]))
        e--;
    return e - b >= 2 && json.ptr[b] == '{' && json.ptr[e - 1] == '}';
}

/* Appends "owner\0client_addr\0user_agent\0" to `buf`; *addr_off is where
 * the address starts. */
static enum sess_err
append_meta_views(struct sess_buf *buf, struct sess_str owner, const struct meta *m,
                  size_t *addr_off)
{
    enum sess_err err = sess__buf_append(buf, owner.ptr, owner.len);

    if (err == SESS_OK)
        err = sess__buf_append(buf, "", 1);
    *addr_off = buf->len;
    if (err == SESS_OK)
        err = sess__buf_append(buf, m->client_addr.ptr, m->client_addr.len);
    if (err == SESS_OK)
        err = sess__buf_append(buf, "", 1);
    if (err == SESS_OK)
        err = sess__buf_append(buf, m->user_agent.ptr, m->user_agent.len);
    return err == SESS_OK ? sess__buf_append(buf, "", 1) : err;
}

/* Splits a session value's JSON into metadata and the data session.c sees,
 * writing "owner\0client_addr\0user_agent\0data\0" into `buf` and pointing
 * `out`'s views at it;
 * `out->expires_ms` is left to the caller. *has_meta (if not NULL) says
 * whether we wrote the value (else Express made it). The data is not
 * validated here: session.c parses it and treats a corrupt value as absent. */
static enum sess_err
split_json(struct sess_str json, int64_t now_ms, struct sess_record *out, struct sess_buf *buf,
           bool *has_meta)
{
    struct meta m = {0};
    struct sess_str owner = {"", 0}, data = json;
    json_error_t jerr;
    json_t *obj = NULL, *meta;
    char *text = NULL;
    size_t rest, data_off, addr_off;
    enum sess_err err;

    buf->len = 0;
    if (meta_fast(json, &m, &rest)) {
        err = append_meta_views(buf, m.owner, &m, &addr_off);
        if (err == SESS_OK)
            err = sess__buf_append(buf, "{", 1);
        data_off = buf->len - 1;
        /* After "{": the keys that followed META_KEY, or "}" when none. */
        if (json.ptr[rest] == ',')
            rest++;
        if (err == SESS_OK)
            err = sess__buf_append(buf, json.ptr + rest, json.len - rest);
        goto done;
    }
    if (!looks_like_object(json))
        return SESS_ENOTFOUND;
    /* Anything else takes the parser, but a value with neither our key nor
     * a user (an anonymous Express session) needs nothing from it. */
    if (memmem(json.ptr, json.len, META_NEEDLE, sizeof META_NEEDLE - 1) ||
        memmem(json.ptr, json.len, "\"user\"", 6)) {
        obj = json_loadb(json.ptr, json.len, 0, &jerr);
        meta = json_object_get(obj, META_KEY);
        if (json_is_object(meta)) {
            m.is_present = true;
            m.created_ms = json_ms(json_object_get(meta, "created"));
            m.deadline_ms = json_ms(json_object_get(meta, "deadline"));
            owner = json_str_view(json_object_get(meta, "owner"));
            (void)meta_handle(&m, json_str_view(json_object_get(meta, "handle")));
            m.last_seen_ms = json_ms(json_object_get(meta, "seen"));
            m.idle_ms = json_ms(json_object_get(meta, "idle"));
            m.lifetime_ms = json_ms(json_object_get(meta, "life"));
            m.is_remembered = json_is_true(json_object_get(meta, "remember"));
            m.client_addr = json_str_view(json_object_get(meta, "addr"));
            m.user_agent = json_str_view(json_object_get(meta, "ua"));
        } else {
            owner = sess__data_owner(obj);
        }
    }
    err = append_meta_views(buf, owner, &m, &addr_off);
    data_off = buf->len;
    if (err == SESS_OK && m.is_present) {
        /* Copied out above: `owner` pointed into the object freed here. */
        json_object_del(obj, META_KEY);
        text = json_dumps(obj, JSON_COMPACT);
        if (!text)
            err = SESS_ENOMEM;
        data = sess_str_c(text);
    }
    if (err == SESS_OK)
        err = sess__buf_append(buf, data.ptr, data.len);

done:
    if (err == SESS_OK)
        err = sess__buf_append(buf, "", 1);
    if (err == SESS_OK) {
        /* A value Express made: it started now as far as we can tell, and
         * has no absolute deadline (express-session has none). */
        out->created_ms = m.is_present ? m.created_ms : now_ms;
        out->deadline_ms = m.is_present ? m.deadline_ms : 0;
        out->owner = (struct sess_str){buf->ptr, strlen(buf->ptr)};
        out->client_addr = (struct sess_str){buf->ptr + addr_off, strlen(buf->ptr + addr_off)};
        out->user_agent =
            (struct sess_str){out->client_addr.ptr + out->client_addr.len + 1,
                              strlen(out->client_addr.ptr + out->client_addr.len + 1)};
        out->data = (struct sess_str){buf->ptr + data_off, buf->len - 1 - data_off};
        out->has_handle = m.has_handle;
        memcpy(out->handle, m.handle, sizeof out->handle);
        out->last_seen_ms = m.last_seen_ms;
        out->idle_ms = m.idle_ms;
        out->lifetime_ms = m.lifetime_ms;
        out->is_remembered = m.is_remembered;
        if (has_meta)
            *has_meta = m.is_present;
    }
    free(text);
    json_decref(obj);
    return err;
}

enum sess_err
rs_value_decode(struct rs_codec *c, struct sess_str id, struct sess_str raw, int64_t now_ms,
                long long pttl_ms, struct sess_record *out, struct sess_buf *buf, bool *has_meta)
{
    struct sess_str json;
    enum sess_err err;
    bool is_ours = false;

    /* The fields Redis does not keep (store.h) read as their defaults. */
    memset(out, 0, sizeof *out);
    c->why = NULL;
    err = open_value(c, id, raw, &json);
    if (err == SESS_OK)
        err = split_json(json, now_ms, out, buf, &is_ours);
    if (c->plain.ptr)
        sodium_memzero(c->plain.ptr, c->plain.len);
    if (err != SESS_OK)
        return err;
    if (has_meta)
        *has_meta = is_ours;
    /* Express's session, seen for the first time (or again, if stamping it
     * failed): its absolute lifetime starts now. */
    if (!is_ours && c->absolute_ms)
        out->deadline_ms = out->created_ms + c->absolute_ms;
    out->expires_ms = now_ms + (pttl_ms >= 0 ? (int64_t)pttl_ms : RS_NO_TTL_EXPIRY_MS);
    out->read_tag = 0;
    return SESS_OK;
}

bool
rs_value_is_owned_by(struct rs_codec *c, struct sess_str id, struct sess_str raw,
                     struct sess_str owner, struct sess_buf *buf)
{
    struct sess_record rec;
    struct sess_str json;
    json_error_t jerr;
    json_t *obj;
    bool is_owned, is_plain;

    c->why = NULL;
    if (open_value(c, id, raw, &json) != SESS_OK)
        return false;
    /* Most values name someone else. Without a backslash in the value,
     * every string in it is its own bytes, so a name it does not contain
     * verbatim is not in it; with one, a writer may have escaped what needs
     * none ("\u0061lice" is alice too), and only the parser can tell. */
    is_plain = !memchr(json.ptr, '\\', json.len);
    if (is_plain && !memmem(json.ptr, json.len, owner.ptr, owner.len)) {
        is_owned = false;
        goto out;
    }
    /* Only the owner is looked at: no clock needed. */
    is_owned = split_json(json, 0, &rec, buf, NULL) == SESS_OK && rs_str_eq(rec.owner, owner);
    if (!is_owned) {
        obj = json_loadb(json.ptr, json.len, 0, &jerr);
        is_owned = json_is_object(obj) && rs_str_eq(sess__data_owner(obj), owner);
        json_decref(obj);
    }
out:
    if (c->plain.ptr)
        sodium_memzero(c->plain.ptr, c->plain.len);
    return is_owned;
}
