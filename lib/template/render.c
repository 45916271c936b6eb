/* The renderer behind sess_send_page: a Mustache subset over the pages in
 * html_dir, walked token by token with the JSON vars as context, and the
 * page put into layout.html unless it has its own doctype; also the HTML
 * escaping it shares with sess_html_escape. Each render takes its files
 * from cache.c, which keeps them compiled (compile.c) and current
 * (watch.c). What the pages say is html/'s business. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "template_impl.h"

#define TPL_PARTIAL_DEPTH_MAX 8         /* {{>a}} including {{>b}} including ... */
#define TPL_OUTPUT_MAX        (8 << 20) /* bytes one render may produce */
#define TPL_STEPS_MAX         (1 << 20) /* tokens one render may visit */
#define TPL_SCRATCH_KEEP      (1 << 20) /* a bigger scratch buffer is not kept */

/* A value found by name: JSON from the vars, or the page output that the
 * layout sees as "content". */
struct val {
    const json_t *json;
    const char *str;
    size_t str_len;
    bool is_str;
};

/* The context stack: sections push the value they open, lookups walk up. */
struct frame {
    struct val v;
    const struct frame *up;
};

struct render {
    struct sess_templates *tpl;
    char **buf;
    size_t *len;
    size_t *cap;
    size_t limit; /* *len may not grow past this */
    size_t steps;
    struct val content; /* is_str when rendering the layout */
    const struct sess_tpl_lazy *lazy;
    struct val lazy_val; /* once asked for */
    bool has_lazy_val;
    char *errmsg;
    size_t errmsg_len;
};

/* ------------------------------------------------------------------------
 * Output and escaping
 * ------------------------------------------------------------------------ */

/* The growing buffer (buf.h) over the caller's three words, with room
 * for a NUL: the output can always be used as a C string. */
static enum sess_err
buf_reserve(char **buf, size_t *len, size_t *cap, size_t extra)
{
    struct sess_buf b = {*buf, *len, *cap};
    enum sess_err err;

    if (extra > SIZE_MAX - 1 - *len)
        return SESS_ETOOBIG;
    err = sess__buf_reserve(&b, extra + 1);
    *buf = b.ptr;
    *cap = b.cap;
    return err;
}

static enum sess_err
buf_put(char **buf, size_t *len, size_t *cap, size_t limit, const char *p, size_t n)
{
    enum sess_err err;

    if (n > limit - *len)
        return SESS_ETOOBIG;
    /* Once the buffer has grown, which is every render but the first. */
    if (*cap <= *len || n >= *cap - *len) {
        err = buf_reserve(buf, len, cap, n);
        if (err != SESS_OK)
            return err;
    }
    if (n)
        memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return SESS_OK;
}

/* The OWASP set for element content and quoted attributes, plus '`', which
 * old Internet Explorer took as an attribute quote. */
static const char *
escape_of(unsigned char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    case '`':
        return "&#96;";
    default:
        return NULL;
    }
}

/* Bytes that escape_of adds for each byte. */
static const unsigned char escape_extra[256] = {
    ['&'] = 4, ['<'] = 3, ['>'] = 3, ['"'] = 5, ['\''] = 4, ['`'] = 4,
};

static enum sess_err
escape_put(char **buf, size_t *len, size_t *cap, size_t limit, const char *in, size_t in_len)
{
    size_t i, run, extra = 0;
    const char *e;
    char *w;
    enum sess_err err;

    /* Size first, so the bound is checked before anything is written. */
    for (i = 0; i < in_len; i++)
        extra += escape_extra[(unsigned char)in[i]];
    if (in_len > limit - *len || extra > limit - *len - in_len)
        return SESS_ETOOBIG;
    err = buf_reserve(buf, len, cap, in_len + extra);
    if (err != SESS_OK)
        return err;
    w = *buf + *len;
    if (extra == 0 && in_len > 0)
        memcpy(w, in, in_len);
    for (i = 0; extra > 0 && i < in_len;) {
        for (run = 0; i + run < in_len && !escape_extra[(unsigned char)in[i + run]]; run++)
            ;
        memcpy(w, in + i, run);
        w += run;
        i += run;
        if (i < in_len) {
            e = escape_of((unsigned char)in[i++]);
            memcpy(w, e, strlen(e));
            w += strlen(e);
        }
    }
    *len += in_len + extra;
    (*buf)[*len] = '\0';
    return SESS_OK;
}

enum sess_err
sess_html_escape(struct sess_str in, char **out, size_t *out_len, size_t *out_cap)
{
    /* At most 6 bytes out per byte in, so the size sum cannot overflow. */
    if (in.len > SIZE_MAX / 6)
        return SESS_ETOOBIG;
    return escape_put(out, out_len, out_cap, SIZE_MAX, in.ptr, in.len);
}

/* ------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------ */

static enum sess_err fail(struct render *r, enum sess_err err, const struct tpl_file *f,
                          const struct tok *t, const char *fmt, ...) SESS_PRINTF(5, 6);

static enum sess_err
fail(struct render *r, enum sess_err err, const struct tpl_file *f, const struct tok *t,
     const char *fmt, ...)
{
    static const char *const sigil[] = {
        [TOK_TEXT] = "",     [TOK_VAR] = "",       [TOK_RAW] = "&",
        [TOK_SECTION] = "#", [TOK_INVERTED] = "^", [TOK_PARTIAL] = ">",
    };
    char what[256];
    char shown[48];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (t->kind == TOK_TEXT) {
        tpl_say(r->errmsg, r->errmsg_len, "%s/%s.html:%u: %s", r->tpl->dir, f->name, t->line, what);
        return err;
    }
    tpl_snip(f->text + t->off, t->len, shown);
    tpl_say(r->errmsg, r->errmsg_len, "%s/%s.html:%u: %s at {{%s%s}}", r->tpl->dir, f->name,
            t->line, what, sigil[t->kind], shown);
    return err;
}

/* Mustache's rule: the first name resolves against the innermost section
 * that has it, then outward; the rest descend from there and nowhere
 * else. The layout's "content" and the lazy name sit just above the vars. */
static struct val
lookup(struct render *r, const struct frame *ctx, const char *name, size_t len)
{
    struct val v = {.json = NULL};
    const struct frame *fr;
    const char *dot;
    size_t seg;

    if (len == 1 && name[0] == '.')
        return ctx->v;
    dot = memchr(name, '.', len);
    seg = dot ? (size_t)(dot - name) : len;
    for (fr = ctx; fr; fr = fr->up) {
        if (!fr->up && r->content.is_str && seg == 7 && memcmp(name, "content", 7) == 0) {
            if (dot)
                return v;
            return r->content;
        }
        if (!fr->up && r->lazy && seg == r->lazy->name_len &&
            memcmp(name, r->lazy->name, seg) == 0) {
            if (dot)
                return v;
            if (!r->has_lazy_val) {
                r->lazy_val.str = r->lazy->get(r->lazy->arg);
                r->lazy_val.str_len = strlen(r->lazy_val.str);
                r->lazy_val.is_str = true;
                r->has_lazy_val = true;
            }
            return r->lazy_val;
        }
        if (json_is_object(fr->v.json)) {
            v.json = json_object_getn(fr->v.json, name, seg);
            if (v.json)
                break;
        }
    }
    while (v.json && dot) {
        name += seg + 1;
        len -= seg + 1;
        dot = memchr(name, '.', len);
        seg = dot ? (size_t)(dot - name) : len;
        v.json = json_is_object(v.json) ? json_object_getn(v.json, name, seg) : NULL;
    }
    return v;
}

static bool
is_truthy(struct val v)
{
    if (v.is_str)
        return v.str_len > 0;
    if (!v.json)
        return false;
    switch (json_typeof(v.json)) {
    case JSON_STRING:
        return json_string_length(v.json) > 0;
    case JSON_INTEGER:
        return json_integer_value(v.json) != 0;
    case JSON_REAL:
        return json_real_value(v.json) != 0.0;
    case JSON_TRUE:
        return true;
    case JSON_OBJECT:
        return json_object_size(v.json) > 0;
    case JSON_ARRAY:
        return json_array_size(v.json) > 0;
    default:
        return false;
    }
}

/* Integers as printf does; reals as the shortest of %.15g and %.17g that
 * reads back to the same double, which is how JSON.stringify shows most. */
static enum sess_err
put_val(struct render *r, struct val v, bool escape)
{
    char num[40];
    const char *p = NULL;
    size_t n = 0;

    if (v.is_str) {
        p = v.str;
        n = v.str_len;
    } else if (!v.json) {
        return SESS_OK;
    } else {
        switch (json_typeof(v.json)) {
        case JSON_STRING:
            p = json_string_value(v.json);
            n = json_string_length(v.json);
            break;
        case JSON_INTEGER:
            n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
                                 json_integer_value(v.json));
            p = num;
            break;
        case JSON_REAL:
            n = (size_t)snprintf(num, sizeof num, "%.15g", json_real_value(v.json));
            if (strtod(num, NULL) != json_real_value(v.json))
                n = (size_t)snprintf(num, sizeof num, "%.17g", json_real_value(v.json));
            p = num;
            break;
        case JSON_TRUE:
            p = "true";
            n = 4;
            break;
        case JSON_FALSE:
            p = "false";
            n = 5;
            break;
        default:
            return SESS_OK;
        }
    }
    if (escape)
        return escape_put(r->buf, r->len, r->cap, r->limit, p, n);
    return buf_put(r->buf, r->len, r->cap, r->limit, p, n);
}

static enum sess_err render_range(struct render *r, const struct tpl_file *f, size_t begin,
                                  size_t end, const struct frame *ctx, unsigned depth);

static enum sess_err
render_section(struct render *r, const struct tpl_file *f, size_t i, const struct frame *ctx,
               unsigned depth)
{
    const struct tok *t = &f->toks[i];
    struct val v = lookup(r, ctx, f->text + t->off, t->len);
    struct frame inner = {.up = ctx};
    size_t k;
    enum sess_err err = SESS_OK;

    if (t->kind == TOK_INVERTED)
        return is_truthy(v) ? SESS_OK : render_range(r, f, i + 1, t->end, ctx, depth);
    if (!is_truthy(v))
        return SESS_OK;
    if (json_is_array(v.json)) {
        for (k = 0; k < json_array_size(v.json) && err == SESS_OK; k++) {
            inner.v.json = json_array_get(v.json, k);
            err = render_range(r, f, i + 1, t->end, &inner, depth);
        }
        return err;
    }
    inner.v = v;
    return render_range(r, f, i + 1, t->end, &inner, depth);
}

static enum sess_err
render_partial(struct render *r, const struct tpl_file *f, const struct tok *t,
               const struct frame *ctx, unsigned depth)
{
    struct tpl_file *p;
    enum sess_err err;

    if (depth >= TPL_PARTIAL_DEPTH_MAX)
        return fail(r, SESS_EBADINPUT, f, t, "partials nested deeper than %d",
                    TPL_PARTIAL_DEPTH_MAX);
    err = tpl_file_get(r->tpl, f->text + t->off, t->len, true, &p, r->errmsg, r->errmsg_len);
    if (err == SESS_ENOTFOUND)
        return fail(r, err, f, t, "unknown partial (no %s/%.*s.html)", r->tpl->dir, (int)t->len,
                    f->text + t->off);
    if (err != SESS_OK)
        return err;
    return render_range(r, p, 0, p->ntoks, ctx, depth + 1);
}

static enum sess_err
render_range(struct render *r, const struct tpl_file *f, size_t begin, size_t end,
             const struct frame *ctx, unsigned depth)
{
    const struct tok *t;
    size_t i;
    enum sess_err err = SESS_OK;

    for (i = begin; i < end && err == SESS_OK; i++) {
        t = &f->toks[i];
        /* Output is bounded, but a loop over an array that prints nothing
         * is not: this bounds the work. */
        if (++r->steps > TPL_STEPS_MAX)
            return fail(r, SESS_ETOOBIG, f, t, "over %d steps", TPL_STEPS_MAX);
        switch (t->kind) {
        case TOK_TEXT:
            err = buf_put(r->buf, r->len, r->cap, r->limit, f->text + t->off, t->len);
            break;
        case TOK_VAR:
        case TOK_RAW:
            err = put_val(r, lookup(r, ctx, f->text + t->off, t->len), t->kind == TOK_VAR);
            break;
        case TOK_SECTION:
        case TOK_INVERTED:
            err = render_section(r, f, i, ctx, depth);
            i = t->end - 1;
            /* Already described by the innermost failure. */
            if (err != SESS_OK)
                return err;
            break;
        case TOK_PARTIAL:
            err = render_partial(r, f, t, ctx, depth);
            if (err != SESS_OK)
                return err;
            break;
        }
        if (err == SESS_ETOOBIG)
            return fail(r, err, f, t, "output over %d bytes", TPL_OUTPUT_MAX);
        if (err == SESS_ENOMEM)
            return fail(r, err, f, t, "out of memory");
    }
    return err;
}

/* HTML allows whitespace before the doctype, and pages open with a comment
 * line that leaves some. */
static bool
starts_with_doctype(const char *p, size_t n)
{
    static const char want[] = "<!doctype";
    size_t i;

    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }
    while (n > 0 && tpl_is_space(*p)) {
        p++;
        n--;
    }
    if (n < sizeof want - 1)
        return false;
    for (i = 0; i < sizeof want - 1; i++) {
        char ch = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);

        if (ch != want[i])
            return false;
    }
    return true;
}

enum sess_err
sess__templates_render_lazy(struct sess_templates *tpl, const char *name, const json_t *vars,
                            const struct sess_tpl_lazy *lazy, char **out, size_t *out_len,
                            size_t *out_cap, char *errmsg, size_t errmsg_len)
{
    struct render r = {.tpl = tpl, .lazy = lazy, .errmsg = errmsg, .errmsg_len = errmsg_len};
    struct frame root = {.v = {.json = vars}, .up = NULL};
    struct tpl_file *page, *layout;
    size_t start = *out_len;
    enum sess_err err;

    if (errmsg && errmsg_len > 0)
        errmsg[0] = '\0';
    tpl_cache_begin(tpl);
    /* The promise of a NUL-terminated buffer holds for empty output too. */
    err = buf_reserve(out, out_len, out_cap, 0);
    if (err != SESS_OK) {
        tpl_say(errmsg, errmsg_len, "out of memory");
        return err;
    }
    (*out)[start] = '\0';
    err = tpl_file_get(tpl, name, name ? strlen(name) : 0, false, &page, errmsg, errmsg_len);
    if (err != SESS_OK)
        goto out;

    tpl->scratch_len = 0;
    r.buf = &tpl->scratch;
    r.len = &tpl->scratch_len;
    r.cap = &tpl->scratch_cap;
    r.limit = TPL_OUTPUT_MAX;
    err = render_range(&r, page, 0, page->ntoks, &root, 0);
    if (err != SESS_OK)
        goto out;

    r.buf = out;
    r.len = out_len;
    r.cap = out_cap;
    r.limit = start > SIZE_MAX - TPL_OUTPUT_MAX ? SIZE_MAX : start + TPL_OUTPUT_MAX;
    if (starts_with_doctype(tpl->scratch, tpl->scratch_len)) {
        err = buf_put(out, out_len, out_cap, r.limit, tpl->scratch, tpl->scratch_len);
        if (err != SESS_OK)
            tpl_say(errmsg, errmsg_len, "%s/%s.html: %s", tpl->dir, page->name,
                    err == SESS_ENOMEM ? "out of memory" : "output too big");
        goto out;
    }
    err = tpl_file_get(tpl, "layout", 6, true, &layout, errmsg, errmsg_len);
    if (err == SESS_ENOTFOUND) {
        tpl_say(errmsg, errmsg_len,
                "%s/%s.html: needs %s/layout.html, which is missing (or start "
                "the page with <!doctype html>)",
                tpl->dir, page->name, tpl->dir);
        goto out;
    }
    if (err != SESS_OK)
        goto out;
    r.content.is_str = true;
    r.content.str = tpl->scratch ? tpl->scratch : "";
    r.content.str_len = tpl->scratch_len;
    r.steps = 0;
    err = render_range(&r, layout, 0, layout->ntoks, &root, 0);
out:
    if (tpl->scratch_cap > TPL_SCRATCH_KEEP) {
        free(tpl->scratch);
        tpl->scratch = NULL;
        tpl->scratch_cap = 0;
    }
    tpl->scratch_len = 0;
    if (err != SESS_OK) {
        *out_len = start;
        if (*out)
            (*out)[start] = '\0';
    }
    return err;
}

enum sess_err
sess_templates_render(struct sess_templates *tpl, const char *name, const json_t *vars, char **out,
                      size_t *out_len, size_t *out_cap, char *errmsg, size_t errmsg_len)
{
    return sess__templates_render_lazy(tpl, name, vars, NULL, out, out_len, out_cap, errmsg,
                                       errmsg_len);
}
