/* Compiling one template: the text of a page into a token list that points
 * into it, with the Mustache subset's syntax checked and every error told
 * as "FILE:LINE: what" to the page author. Reading files, and knowing when
 * to read them again, is cache.c's; walking the tokens is render.c's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_impl.h"

#define TPL_TAG_NAME_MAX 128 /* bytes in a {{variable.path}} */
#define TPL_NEST_MAX     32  /* sections open at once in one file */

void
tpl_say(char *errmsg, size_t errmsg_len, const char *fmt, ...)
{
    va_list ap;

    if (!errmsg || errmsg_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errmsg, errmsg_len, fmt, ap);
    va_end(ap);
}

void
tpl_snip(const char *p, size_t n, char out[48])
{
    size_t i;

    if (n > 40)
        n = 40;
    for (i = 0; i < n; i++)
        out[i] = (char)((unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i]);
    out[n] = '\0';
}

static bool
is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool
tpl_is_file_name(const char *p, size_t n)
{
    size_t i;

    if (n == 0 || n > TPL_NAME_MAX)
        return false;
    for (i = 0; i < n; i++)
        if (!is_name_char(p[i]))
            return false;
    return true;
}

/* "." or dot-separated segments of [A-Za-z0-9_-]. */
static bool
is_var_name(const char *p, size_t n)
{
    size_t i, seg = 0;

    if (n == 1 && p[0] == '.')
        return true;
    if (n == 0 || n > TPL_TAG_NAME_MAX)
        return false;
    for (i = 0; i < n; i++) {
        if (p[i] == '.') {
            if (seg == 0)
                return false;
            seg = 0;
        } else if (is_name_char(p[i]) || (p[i] >= 'A' && p[i] <= 'Z')) {
            seg++;
        } else {
            return false;
        }
    }
    return seg > 0;
}

struct compiler {
    struct tpl_file *f;
    const char *path;
    size_t toks_cap;
    size_t line_pos; /* line counting is incremental: tags come in order */
    uint32_t line;
    char *errmsg;
    size_t errmsg_len;
};

static uint32_t
line_at(struct compiler *c, size_t pos)
{
    const char *t = c->f->text;

    for (; c->line_pos < pos; c->line_pos++)
        if (t[c->line_pos] == '\n')
            c->line++;
    return c->line;
}

static enum sess_err
add_tok(struct compiler *c, enum tok_kind kind, size_t off, size_t len, uint32_t line)
{
    struct tpl_file *f = c->f;
    struct tok *t;

    if (kind == TOK_TEXT && len == 0)
        return SESS_OK;
    if (f->ntoks == c->toks_cap) {
        size_t next = c->toks_cap ? c->toks_cap * 2 : 32;
        t = realloc(f->toks, next * sizeof *t);
        if (!t)
            return SESS_ENOMEM;
        f->toks = t;
        c->toks_cap = next;
    }
    t = &f->toks[f->ntoks++];
    t->kind = kind;
    t->off = (uint32_t)off;
    t->len = (uint32_t)len;
    t->line = line;
    t->end = 0;
    return SESS_OK;
}

static bool
is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static char
sigil_of(enum tok_kind kind)
{
    return kind == TOK_INVERTED ? '^' : '#';
}

static enum sess_err
compile(struct compiler *c)
{
    struct tpl_file *f = c->f;
    const char *t = f->text;
    size_t n = f->text_len, pos = 0, text_start = 0;
    size_t open[TPL_NEST_MAX];
    size_t depth = 0;
    char shown[48];
    enum sess_err err = SESS_OK;

    c->line = 1;
    c->line_pos = 0;
    while (pos < n) {
        const char *hit = memmem(t + pos, n - pos, "{{", 2);
        size_t q, cs, ce, tag_end, ns, ne, ls, re;
        bool triple, standalone;
        char sig = 0;
        uint32_t line, text_line;

        if (!hit)
            break;
        q = (size_t)(hit - t);
        text_line = line_at(c, text_start);
        line = line_at(c, q);
        triple = q + 2 < n && t[q + 2] == '{';
        cs = q + (triple ? 3 : 2);
        hit = memmem(t + cs, n - cs, triple ? "}}}" : "}}", triple ? 3 : 2);
        if (!hit) {
            tpl_snip(t + q, n - q, shown);
            tpl_say(c->errmsg, c->errmsg_len, "%s:%u: unclosed tag %s", c->path, line, shown);
            err = SESS_EBADINPUT;
            goto out;
        }
        ce = (size_t)(hit - t);
        tag_end = ce + (triple ? 3 : 2);
        tpl_snip(t + q, tag_end - q, shown);
        ns = cs;
        if (!triple && ns < ce && t[ns] != '\0' && strchr("!#^/>&=", t[ns]))
            sig = t[ns++];
        for (; ns < ce && tpl_is_space(t[ns]); ns++)
            ;
        for (ne = ce; ne > ns && tpl_is_space(t[ne - 1]); ne--)
            ;

        if (sig == '=') {
            tpl_say(c->errmsg, c->errmsg_len, "%s:%u: custom delimiters %s are not supported",
                    c->path, line, shown);
            err = SESS_EBADINPUT;
            goto out;
        }
        if (sig == '>' ? !tpl_is_file_name(t + ns, ne - ns)
                       : sig != '!' && !is_var_name(t + ns, ne - ns)) {
            tpl_say(c->errmsg, c->errmsg_len, "%s:%u: bad tag %s (names are %s)", c->path, line,
                    shown, sig == '>' ? "a-z 0-9 _ -" : "a.b.c of A-Z a-z 0-9 _ -, or \".\"");
            err = SESS_EBADINPUT;
            goto out;
        }

        /* Mustache's standalone rule: a section, closing or comment tag alone
         * on its line takes the line with it, so pages can indent logic
         * without leaving blank lines in the HTML. Scanning back over blanks
         * cannot cross a tag, whose last byte is '}'. */
        standalone = false;
        if (sig == '#' || sig == '^' || sig == '/' || sig == '!') {
            for (ls = q; ls > 0 && is_blank(t[ls - 1]); ls--)
                ;
            for (re = tag_end; re < n && is_blank(t[re]); re++)
                ;
            if ((ls == 0 || t[ls - 1] == '\n') &&
                (re == n || t[re] == '\n' || (t[re] == '\r' && re + 1 < n && t[re + 1] == '\n'))) {
                standalone = true;
                err = add_tok(c, TOK_TEXT, text_start, ls - text_start, text_line);
                text_start = re == n ? n : re + (t[re] == '\r' ? 2 : 1);
            }
        }
        if (!standalone) {
            err = add_tok(c, TOK_TEXT, text_start, q - text_start, text_line);
            text_start = tag_end;
        }
        if (err != SESS_OK)
            goto out;
        pos = tag_end;

        switch (sig) {
        case '!':
            break;
        case '#':
        case '^':
            if (depth == TPL_NEST_MAX) {
                tpl_say(c->errmsg, c->errmsg_len, "%s:%u: sections nested deeper than %d at %s",
                        c->path, line, TPL_NEST_MAX, shown);
                err = SESS_EBADINPUT;
                goto out;
            }
            open[depth++] = f->ntoks;
            err = add_tok(c, sig == '#' ? TOK_SECTION : TOK_INVERTED, ns, ne - ns, line);
            break;
        case '/': {
            struct tok *o;

            if (depth == 0) {
                tpl_say(c->errmsg, c->errmsg_len, "%s:%u: %s closes no open section", c->path, line,
                        shown);
                err = SESS_EBADINPUT;
                goto out;
            }
            o = &f->toks[open[--depth]];
            if (o->len != ne - ns || memcmp(t + o->off, t + ns, o->len) != 0) {
                char opened[48];

                tpl_snip(t + o->off, o->len, opened);
                tpl_say(c->errmsg, c->errmsg_len, "%s:%u: %s closes {{%c%s}} from line %u", c->path,
                        line, shown, sigil_of(o->kind), opened, o->line);
                err = SESS_EBADINPUT;
                goto out;
            }
            o->end = (uint32_t)f->ntoks;
            break;
        }
        case '>':
            err = add_tok(c, TOK_PARTIAL, ns, ne - ns, line);
            break;
        case '&':
            err = add_tok(c, TOK_RAW, ns, ne - ns, line);
            break;
        default:
            err = add_tok(c, triple ? TOK_RAW : TOK_VAR, ns, ne - ns, line);
            break;
        }
        if (err != SESS_OK)
            goto out;
    }
    if (depth > 0) {
        const struct tok *o = &f->toks[open[depth - 1]];

        tpl_snip(t + o->off, o->len, shown);
        tpl_say(c->errmsg, c->errmsg_len, "%s:%u: unclosed section {{%c%s}}", c->path, o->line,
                sigil_of(o->kind), shown);
        err = SESS_EBADINPUT;
        goto out;
    }
    err = add_tok(c, TOK_TEXT, text_start, n - text_start, line_at(c, text_start));
out:
    if (err == SESS_ENOMEM)
        tpl_say(c->errmsg, c->errmsg_len, "%s: out of memory", c->path);
    return err;
}

enum sess_err
tpl_compile(struct tpl_file *f, const char *path, char *errmsg, size_t errmsg_len)
{
    struct compiler c = {.f = f, .path = path, .errmsg = errmsg, .errmsg_len = errmsg_len};

    return compile(&c);
}
