/* The renderer behind sess_send_page: a Mustache subset over the pages in
 * html_dir. Each file is compiled once into a token list that points into its
 * text, and compiled again when it changes, so an edited page shows on the
 * next request. Changes are learnt from inotify, one non-blocking read per
 * render, and from stat() on every render where inotify cannot be had. What
 * the pages say is html/'s business. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define TPL_NAME_MAX          64        /* bytes in a page or partial name */
#define TPL_TAG_NAME_MAX      128       /* bytes in a {{variable.path}} */
#define TPL_FILE_MAX          (1 << 20) /* bytes in one template file */
#define TPL_NEST_MAX          32        /* sections open at once in one file */
#define TPL_PARTIAL_DEPTH_MAX 8         /* {{>a}} including {{>b}} including ... */
#define TPL_OUTPUT_MAX        (8 << 20) /* bytes one render may produce */
#define TPL_STEPS_MAX         (1 << 20) /* tokens one render may visit */
#define TPL_SCRATCH_KEEP      (1 << 20) /* a bigger scratch buffer is not kept */
#define TPL_SYMLINKS_MAX      40        /* the kernel's own bound (ELOOP) */
#define TPL_EVENT_READS_MAX   64        /* reads of 4 KiB of events per render */

/* What changes a page: its file written, replaced (editors save by rename),
 * removed, or its mode changed; and html_dir itself going away. Our own
 * reads raise none of these. */
#define DIR_EVENTS                                                                                 \
    (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |              \
     IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_MASK_ADD)
/* What changes the way to html_dir: an entry on the path renamed, replaced
 * (a release symlink swapped) or removed. */
#define PATH_EVENTS                                                                                \
    (IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |            \
     IN_MOVE_SELF | IN_ONLYDIR | IN_MASK_ADD)
/* The watch itself is gone, or was never what it should be. */
#define LOST_EVENTS (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_Q_OVERFLOW)

enum tok_kind {
    TOK_TEXT,     /* literal bytes */
    TOK_VAR,      /* {{a.b}}: HTML-escaped */
    TOK_RAW,      /* {{{a}}} or {{&a}} */
    TOK_SECTION,  /* {{#a}}: body is the tokens up to `end` */
    TOK_INVERTED, /* {{^a}} */
    TOK_PARTIAL,  /* {{>name}} */
};

/* Offsets fit in 32 bits because files are at most TPL_FILE_MAX bytes. */
struct tok {
    uint32_t off; /* the text, or the tag's name, inside the file's text */
    uint32_t len;
    uint32_t line;
    uint32_t end; /* sections: index of the first token after the body */
    enum tok_kind kind;
};

/* One compiled file; `dev` .. `ctim` identify the version that was read. */
struct tpl_file {
    char name[TPL_NAME_MAX + 1];
    size_t name_len;
    char *text;
    size_t text_len;
    struct tok *toks;
    size_t ntoks;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
    struct timespec ctim;
    uint64_t checked_gen; /* the render that last checked it */
    bool must_reload;     /* inotify saw it change */
    /* A symlink or one of several hard links can change through a path
     * that no watch covers: such a file is stat()ed on every render. */
    bool needs_stat;
};

/* One inotify watch: a directory on the way to html_dir, where only the
 * entry `name` matters, or (name NULL) html_dir itself. */
struct watch {
    int wd;
    char *name;
};

struct sess_templates {
    char *dir;
    struct tpl_file **files; /* pointers, so an entry stays put while rendered */
    size_t nfiles;
    size_t files_cap;
    /* Each render checks a file at most once, and so never swaps the tokens
     * of a file that an outer section or partial is still walking. */
    uint64_t gen;
    char *scratch; /* the page, before it goes into the layout */
    size_t scratch_len;
    size_t scratch_cap;
    /* inotify, or -1: before the second render (a plain CGI run renders
     * once, and a first render reads every file anyway), or for good when
     * it could not be had (instances or watches over the limit), and then
     * every cached file is stat()ed on every render. */
    int notify_fd;
    bool is_watch_tried;
    struct watch *watches;
    size_t nwatches;
    size_t watches_cap;
};

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

static void say(char *errmsg, size_t errmsg_len, const char *fmt, ...) SESS_PRINTF(3, 4);

static void
say(char *errmsg, size_t errmsg_len, const char *fmt, ...)
{
    va_list ap;

    if (!errmsg || errmsg_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errmsg, errmsg_len, fmt, ap);
    va_end(ap);
}

/* A tag as the page author wrote it, for messages: at most 40 bytes, with
 * control bytes shown as '?' so a message stays one line. */
static void
snip(const char *p, size_t n, char out[48])
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

/* Page and partial names become file names: this is the whole defence
 * against "../" and absolute paths, so nothing but [a-z0-9_-] gets through. */
static bool
is_file_name(const char *p, size_t n)
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

/* Keeps the buffer NUL-terminated, so callers may use it as a C string. */
static enum sess_err
buf_reserve(char **buf, size_t *len, size_t *cap, size_t extra)
{
    size_t need, next;
    char *p;

    if (extra > SIZE_MAX - 1 - *len)
        return SESS_ETOOBIG;
    need = *len + extra + 1;
    if (need <= *cap)
        return SESS_OK;
    next = *cap ? *cap : 256;
    while (next < need)
        next = next > SIZE_MAX / 2 ? need : next * 2;
    p = realloc(*buf, next);
    if (!p)
        return SESS_ENOMEM;
    *buf = p;
    *cap = next;
    return SESS_OK;
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
 * Compiling
 * ------------------------------------------------------------------------ */

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

static bool
is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
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
            snip(t + q, n - q, shown);
            say(c->errmsg, c->errmsg_len, "%s:%u: unclosed tag %s", c->path, line, shown);
            err = SESS_EBADINPUT;
            goto out;
        }
        ce = (size_t)(hit - t);
        tag_end = ce + (triple ? 3 : 2);
        snip(t + q, tag_end - q, shown);
        ns = cs;
        if (!triple && ns < ce && t[ns] != '\0' && strchr("!#^/>&=", t[ns]))
            sig = t[ns++];
        for (; ns < ce && is_space(t[ns]); ns++)
            ;
        for (ne = ce; ne > ns && is_space(t[ne - 1]); ne--)
            ;

        if (sig == '=') {
            say(c->errmsg, c->errmsg_len, "%s:%u: custom delimiters %s are not supported", c->path,
                line, shown);
            err = SESS_EBADINPUT;
            goto out;
        }
        if (sig == '>' ? !is_file_name(t + ns, ne - ns)
                       : sig != '!' && !is_var_name(t + ns, ne - ns)) {
            say(c->errmsg, c->errmsg_len, "%s:%u: bad tag %s (names are %s)", c->path, line, shown,
                sig == '>' ? "a-z 0-9 _ -" : "a.b.c of A-Z a-z 0-9 _ -, or \".\"");
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
                say(c->errmsg, c->errmsg_len, "%s:%u: sections nested deeper than %d at %s",
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
                say(c->errmsg, c->errmsg_len, "%s:%u: %s closes no open section", c->path, line,
                    shown);
                err = SESS_EBADINPUT;
                goto out;
            }
            o = &f->toks[open[--depth]];
            if (o->len != ne - ns || memcmp(t + o->off, t + ns, o->len) != 0) {
                char opened[48];

                snip(t + o->off, o->len, opened);
                say(c->errmsg, c->errmsg_len, "%s:%u: %s closes {{%c%s}} from line %u", c->path,
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

        snip(t + o->off, o->len, shown);
        say(c->errmsg, c->errmsg_len, "%s:%u: unclosed section {{%c%s}}", c->path, o->line,
            sigil_of(o->kind), shown);
        err = SESS_EBADINPUT;
        goto out;
    }
    err = add_tok(c, TOK_TEXT, text_start, n - text_start, line_at(c, text_start));
out:
    if (err == SESS_ENOMEM)
        say(c->errmsg, c->errmsg_len, "%s: out of memory", c->path);
    return err;
}

/* ------------------------------------------------------------------------
 * The cache
 * ------------------------------------------------------------------------ */

static void
file_clear(struct tpl_file *f)
{
    free(f->text);
    free(f->toks);
    f->text = NULL;
    f->toks = NULL;
    f->text_len = 0;
    f->ntoks = 0;
}

static bool
same_version(const struct tpl_file *f, const struct stat *st)
{
    return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
           f->mtim.tv_sec == st->st_mtim.tv_sec && f->mtim.tv_nsec == st->st_mtim.tv_nsec &&
           f->ctim.tv_sec == st->st_ctim.tv_sec && f->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

/* Reads and compiles `path` into `f`, whose old contents are kept on error. */
static enum sess_err
file_load(struct tpl_file *f, const char *path, char *errmsg, size_t errmsg_len)
{
    struct tpl_file next = {.checked_gen = 0};
    struct compiler c = {.f = &next, .path = path, .errmsg = errmsg, .errmsg_len = errmsg_len};
    struct stat st;
    size_t got = 0;
    ssize_t r;
    bool is_symlink = false;
    int fd;
    enum sess_err err = SESS_OK;

    /* O_NOFOLLOW first, to learn whether the page is a symlink without a
     * separate lstat(). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) {
        is_symlink = true;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    }
    if (fd < 0) {
        err = errno == ENOENT || errno == ENOTDIR ? SESS_ENOTFOUND : SESS_EIO;
        say(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        err = SESS_EIO;
        say(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = SESS_EBADINPUT;
        say(errmsg, errmsg_len, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > TPL_FILE_MAX) {
        err = SESS_ETOOBIG;
        say(errmsg, errmsg_len, "%s: over %d bytes", path, TPL_FILE_MAX);
        goto out;
    }
    /* One byte more than the size, to see a file that grew meanwhile. */
    next.text = malloc((size_t)st.st_size + 2);
    if (!next.text) {
        err = SESS_ENOMEM;
        say(errmsg, errmsg_len, "%s: out of memory", path);
        goto out;
    }
    while (got < (size_t)st.st_size + 1) {
        r = read(fd, next.text + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = SESS_EIO;
            say(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > (size_t)st.st_size) {
        /* Being written right now: the next render sees a new mtime (and
         * inotify another write). */
        err = SESS_EIO;
        say(errmsg, errmsg_len, "%s: changed while being read", path);
        goto out;
    }
    next.text[got] = '\0';
    next.text_len = got;
    err = compile(&c);
    if (err != SESS_OK)
        goto out;
    file_clear(f);
    f->text = next.text;
    f->text_len = next.text_len;
    f->toks = next.toks;
    f->ntoks = next.ntoks;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->mtim = st.st_mtim;
    f->ctim = st.st_ctim;
    f->must_reload = false;
    f->needs_stat = is_symlink || st.st_nlink > 1;
    next.text = NULL;
    next.toks = NULL;
out:
    if (fd >= 0)
        close(fd);
    file_clear(&next);
    return err;
}

static void
file_forget(struct sess_templates *tpl, size_t i)
{
    file_clear(tpl->files[i]);
    free(tpl->files[i]);
    tpl->files[i] = tpl->files[--tpl->nfiles];
}

/* ------------------------------------------------------------------------
 * Watching html_dir
 * ------------------------------------------------------------------------ */

static void
watch_stop(struct sess_templates *tpl)
{
    size_t i;

    if (tpl->notify_fd >= 0)
        close(tpl->notify_fd);
    tpl->notify_fd = -1;
    for (i = 0; i < tpl->nwatches; i++)
        free(tpl->watches[i].name);
    tpl->nwatches = 0;
}

/* inotify hears only what this kernel does: on a network or cluster file
 * system (or FUSE, whose daemon changes files unseen), an edit made
 * elsewhere raises no event, so such a path stays on stat(). Magic numbers
 * from statfs(2). */
static bool
is_shared_fs(const char *path)
{
    static const unsigned long magics[] = {
        0x6969,     /* NFS */
        0x517b,     /* SMB */
        0xfe534d42, /* SMB2 */
        0xff534d42, /* CIFS */
        0x65735546, /* FUSE */
        0x00c36400, /* Ceph */
        0x01021997, /* 9P */
        0x5346414f, /* AFS */
        0x6b414653, /* kAFS */
        0x73757245, /* Coda */
        0x01161970, /* GFS2 */
        0x7461636f, /* OCFS2 */
        0x0bd00bd0, /* Lustre */
    };
    struct statfs sf;
    size_t i;

    if (statfs(path, &sf) != 0)
        return false; /* the walk's own lstat() tells what is wrong */
    for (i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if ((unsigned long)sf.f_type == magics[i])
            return true;
    return false;
}

static bool
watch_add(struct sess_templates *tpl, const char *path, uint32_t mask, const char *name,
          size_t name_len)
{
    struct watch *w;
    int wd;

    if (is_shared_fs(path))
        return false;

    if (tpl->nwatches == tpl->watches_cap) {
        size_t cap = tpl->watches_cap ? tpl->watches_cap * 2 : 8;

        w = realloc(tpl->watches, cap * sizeof *w);
        if (!w)
            return false;
        tpl->watches = w;
        tpl->watches_cap = cap;
    }
    w = &tpl->watches[tpl->nwatches];
    w->name = NULL;
    if (name) {
        w->name = strndup(name, name_len);
        if (!w->name)
            return false;
    }
    wd = inotify_add_watch(tpl->notify_fd, path, mask);
    if (wd < 0) {
        free(w->name);
        return false;
    }
    w->wd = wd;
    tpl->nwatches++;
    return true;
}

/* `cur` (`*cur_len` bytes of directories, no symlinks, starting "/" or
 * ".") to its parent, as the kernel resolves "..". False when that does not
 * fit in PATH_MAX. */
static bool
path_up(char *cur, size_t *cur_len)
{
    char *slash = memrchr(cur, '/', *cur_len);

    if (*cur_len == 1 && cur[0] == '/')
        return true;
    if ((*cur_len == 1 && cur[0] == '.') ||
        (slash && (size_t)(cur + *cur_len - slash) == 3 && memcmp(slash, "/..", 3) == 0)) {
        if (*cur_len + 3 >= PATH_MAX)
            return false;
        memcpy(cur + *cur_len, "/..", 4);
        *cur_len += 3;
        return true;
    }
    *cur_len = slash == cur ? 1 : (size_t)(slash - cur);
    cur[*cur_len] = '\0';
    return true;
}

/* Watches html_dir for its files and every directory on the way there for
 * the entry that leads on, following symlinks as the kernel does, so that a
 * renamed directory or a swapped release symlink is seen too. Each watch is
 * added before the entry it guards is looked at, so a change between the
 * two still raises an event. A path that ends early (html_dir missing) is
 * watched up to where its next entry would appear. False when the path
 * cannot be watched (a watch refused, a shared file system, a loop, a name
 * too long). */
static bool
watch_path(struct sess_templates *tpl)
{
    char cur[PATH_MAX], next[PATH_MAX], pending[PATH_MAX], target[PATH_MAX];
    const char *rest;
    size_t len, cur_len, next_len, rest_len, links = 0;
    struct stat st;
    ssize_t n;

    len = strlen(tpl->dir);
    if (len >= sizeof pending)
        return false;
    memcpy(pending, tpl->dir, len + 1);
    cur[0] = pending[0] == '/' ? '/' : '.';
    cur[1] = '\0';
    cur_len = 1;
    rest = pending;
    for (;;) {
        rest += strspn(rest, "/");
        if (!*rest)
            break;
        len = strcspn(rest, "/");
        if (len == 1 && rest[0] == '.') {
            rest += len;
            continue;
        }
        if (len == 2 && rest[0] == '.' && rest[1] == '.') {
            if (!path_up(cur, &cur_len))
                return false;
            rest += len;
            continue;
        }
        if (len > NAME_MAX || cur_len + 1 + len >= sizeof next)
            return false;
        if (!watch_add(tpl, cur, PATH_EVENTS, rest, len))
            return false;
        next_len = cur_len == 1 && cur[0] == '/' ? 0 : cur_len;
        memcpy(next, cur, next_len);
        next[next_len++] = '/';
        memcpy(next + next_len, rest, len);
        next_len += len;
        next[next_len] = '\0';
        rest += len;
        if (lstat(next, &st) != 0)
            return errno == ENOENT || errno == ENOTDIR;
        if (S_ISLNK(st.st_mode)) {
            if (++links > TPL_SYMLINKS_MAX)
                return false;
            n = readlink(next, target, sizeof target - 1);
            if (n < 0)
                return errno == ENOENT || errno == EINVAL; /* replaced: an event is due */
            rest_len = strlen(rest);
            if ((size_t)n + 1 + rest_len >= sizeof pending)
                return false;
            /* The link's text takes the place of its name in what is left
             * to resolve, from the directory that holds the link. */
            memmove(pending + n + 1, rest, rest_len + 1);
            memcpy(pending, target, (size_t)n);
            pending[n] = '/';
            rest = pending;
            if (target[0] == '/') {
                cur[1] = '\0';
                cur[0] = '/';
                cur_len = 1;
            }
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            return true; /* as if missing: the watch sees it replaced */
        memcpy(cur, next, next_len + 1);
        cur_len = next_len;
    }
    return watch_add(tpl, cur, DIR_EVENTS, NULL, 0);
}

/* (Re)starts watching, or falls back to stat() for good; either way every
 * cached file is read again, since anything may have changed unseen. */
static void
watch_start(struct sess_templates *tpl)
{
    size_t i;

    watch_stop(tpl);
    tpl->is_watch_tried = true;
    tpl->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (tpl->notify_fd >= 0 && !watch_path(tpl))
        watch_stop(tpl);
    for (i = 0; i < tpl->nfiles; i++)
        tpl->files[i]->must_reload = true;
}

/* One event: marks the page it names, or asks for a restart (true) when
 * the way to html_dir may have changed or events were lost. */
static bool
watch_event(struct sess_templates *tpl, const struct inotify_event *ev)
{
    size_t i, k, len;
    bool restart = (ev->mask & IN_Q_OVERFLOW) != 0;

    for (i = 0; i < tpl->nwatches && !restart; i++) {
        const struct watch *w = &tpl->watches[i];

        if (w->wd != ev->wd)
            continue;
        if (ev->mask & LOST_EVENTS) {
            restart = true;
        } else if (w->name) {
            restart = ev->len > 0 && strcmp(ev->name, w->name) == 0;
        } else if (ev->len > 0) {
            len = strlen(ev->name);
            if (len <= 5 || memcmp(ev->name + len - 5, ".html", 5) != 0)
                continue;
            for (k = 0; k < tpl->nfiles; k++)
                if (tpl->files[k]->name_len == len - 5 &&
                    memcmp(tpl->files[k]->name, ev->name, len - 5) == 0)
                    tpl->files[k]->must_reload = true;
        }
    }
    return restart;
}

/* Takes in what changed since the last render. The kernel queues an event
 * before the write or rename that raised it returns, so a change made
 * before a request arrived is always seen by that request. */
static void
watch_poll(struct sess_templates *tpl)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    const struct inotify_event *ev;
    bool restart = false;
    ssize_t n;
    size_t pos, reads;

    for (reads = 0;; reads++) {
        /* A flood (a busy directory on the way, say) must not hold the
         * request: starting over reads every page again instead. */
        if (reads == TPL_EVENT_READS_MAX) {
            restart = true;
            break;
        }
        n = read(tpl->notify_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (pos = 0; pos + sizeof *ev <= (size_t)n; pos += sizeof *ev + ev->len) {
            ev = (const struct inotify_event *)(buf + pos);
            if (!restart)
                restart = watch_event(tpl, ev);
        }
    }
    if (restart || n == 0 || (n < 0 && errno != EAGAIN))
        watch_start(tpl);
}

/* The current compiled version of NAME.html, checked once per render (by
 * inotify's word or by stat()) and re-read when it is not the version in
 * the cache. */
static enum sess_err
file_get(struct sess_templates *tpl, const char *name, size_t name_len, bool is_name_known,
         struct tpl_file **out, char *errmsg, size_t errmsg_len)
{
    char path[PATH_MAX];
    size_t dir_len;
    struct tpl_file *f = NULL;
    struct stat st;
    size_t i;
    enum sess_err err = SESS_OK;

    /* Partial names passed is_file_name when their file was compiled, and
     * "layout" is ours. */
    if (!is_name_known && !is_file_name(name, name_len)) {
        say(errmsg, errmsg_len, "bad page name (1 to %d of a-z 0-9 _ -)", TPL_NAME_MAX);
        return SESS_EBADINPUT;
    }
    path[0] = '\0';
    for (i = 0; i < tpl->nfiles; i++)
        if (tpl->files[i]->name_len == name_len && memcmp(tpl->files[i]->name, name, name_len) == 0)
            break;
    if (i < tpl->nfiles) {
        f = tpl->files[i];
        if (f->checked_gen == tpl->gen)
            goto out;
        if (tpl->notify_fd >= 0 && !f->must_reload && !f->needs_stat) {
            f->checked_gen = tpl->gen;
            goto out;
        }
    }
    /* sess_templates_open checked that the longest name fits. */
    dir_len = strlen(tpl->dir);
    memcpy(path, tpl->dir, dir_len);
    path[dir_len] = '/';
    memcpy(path + dir_len + 1, name, name_len);
    memcpy(path + dir_len + 1 + name_len, ".html", 6);
    if (f) {
        if (!f->must_reload && stat(path, &st) == 0 && same_version(f, &st)) {
            f->checked_gen = tpl->gen;
            goto out;
        }
        err = file_load(f, path, errmsg, errmsg_len);
        if (err != SESS_OK) {
            file_forget(tpl, i);
            f = NULL;
            goto out;
        }
        f->checked_gen = tpl->gen;
        goto out;
    }

    if (tpl->nfiles == tpl->files_cap) {
        size_t cap = tpl->files_cap ? tpl->files_cap * 2 : 16;
        struct tpl_file **files = realloc(tpl->files, cap * sizeof(struct tpl_file *));

        if (!files) {
            err = SESS_ENOMEM;
            goto out;
        }
        tpl->files = files;
        tpl->files_cap = cap;
    }
    f = calloc(1, sizeof *f);
    if (!f) {
        err = SESS_ENOMEM;
        goto out;
    }
    memcpy(f->name, name, name_len);
    f->name[name_len] = '\0';
    f->name_len = name_len;
    err = file_load(f, path, errmsg, errmsg_len);
    if (err != SESS_OK) {
        free(f);
        f = NULL;
        goto out;
    }
    f->checked_gen = tpl->gen;
    tpl->files[tpl->nfiles++] = f;
out:
    if (err == SESS_ENOMEM)
        say(errmsg, errmsg_len, "%s: out of memory", path);
    *out = f;
    return err;
}

enum sess_err
sess_templates_open(struct sess_templates **tpl, const char *dir)
{
    struct sess_templates *t;
    size_t len;

    *tpl = NULL;
    if (!dir || !*dir)
        return SESS_EBADINPUT;
    len = strlen(dir);
    /* Room for "/NAME.html" with the longest name. */
    if (len > PATH_MAX - (TPL_NAME_MAX + 7))
        return SESS_ETOOBIG;
    t = calloc(1, sizeof *t);
    if (!t)
        return SESS_ENOMEM;
    t->notify_fd = -1;
    t->dir = strdup(dir);
    if (!t->dir) {
        free(t);
        return SESS_ENOMEM;
    }
    while (len > 1 && t->dir[len - 1] == '/')
        t->dir[--len] = '\0';
    *tpl = t;
    return SESS_OK;
}

void
sess_templates_close(struct sess_templates *tpl)
{
    if (!tpl)
        return;
    watch_stop(tpl);
    free(tpl->watches);
    while (tpl->nfiles > 0)
        file_forget(tpl, tpl->nfiles - 1);
    free(tpl->files);
    free(tpl->scratch);
    free(tpl->dir);
    free(tpl);
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
        say(r->errmsg, r->errmsg_len, "%s/%s.html:%u: %s", r->tpl->dir, f->name, t->line, what);
        return err;
    }
    snip(f->text + t->off, t->len, shown);
    say(r->errmsg, r->errmsg_len, "%s/%s.html:%u: %s at {{%s%s}}", r->tpl->dir, f->name, t->line,
        what, sigil[t->kind], shown);
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
    err = file_get(r->tpl, f->text + t->off, t->len, true, &p, r->errmsg, r->errmsg_len);
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
    while (n > 0 && is_space(*p)) {
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
sess_templates_render_lazy(struct sess_templates *tpl, const char *name, const json_t *vars,
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
    tpl->gen++;
    if (tpl->notify_fd >= 0)
        watch_poll(tpl);
    else if (!tpl->is_watch_tried && tpl->nfiles > 0)
        watch_start(tpl);
    /* The promise of a NUL-terminated buffer holds for empty output too. */
    err = buf_reserve(out, out_len, out_cap, 0);
    if (err != SESS_OK) {
        say(errmsg, errmsg_len, "out of memory");
        return err;
    }
    (*out)[start] = '\0';
    err = file_get(tpl, name, name ? strlen(name) : 0, false, &page, errmsg, errmsg_len);
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
            say(errmsg, errmsg_len, "%s/%s.html: %s", tpl->dir, page->name,
                err == SESS_ENOMEM ? "out of memory" : "output too big");
        goto out;
    }
    err = file_get(tpl, "layout", 6, true, &layout, errmsg, errmsg_len);
    if (err == SESS_ENOTFOUND) {
        say(errmsg, errmsg_len,
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
    return sess_templates_render_lazy(tpl, name, vars, NULL, out, out_len, out_cap, errmsg,
                                      errmsg_len);
}
