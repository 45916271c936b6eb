/* What the four parts of the renderer share, and nothing outside
 * lib/template/ includes: a compiled file and its tokens (compile.c makes
 * them), the set of files and its watches (cache.c keeps them fresh, with
 * watch.c telling it what changed), which render.c walks. Functions here
 * carry the tpl_ prefix: they are not the library's API. */
#ifndef SESS_TEMPLATE_IMPL_H
#define SESS_TEMPLATE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "base.h"
#include "buf.h"
#include "render_lazy.h"

#define TPL_NAME_MAX 64        /* bytes in a page or partial name */
#define TPL_FILE_MAX (1 << 20) /* bytes in one template file */

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

/* --- compile.c --- */

/* vsnprintf into `errmsg`, which may be NULL or of length 0. */
void tpl_say(char *errmsg, size_t errmsg_len, const char *fmt, ...) SESS_PRINTF(3, 4);

/* A tag as the page author wrote it, for messages: at most 40 bytes, with
 * control bytes shown as '?' so a message stays one line. */
void tpl_snip(const char *p, size_t n, char out[48]);

/* Page and partial names become file names: this is the whole defence
 * against "../" and absolute paths, so nothing but [a-z0-9_-] gets through. */
bool tpl_is_file_name(const char *p, size_t n);

/* Tokenises f->text (f->text_len bytes, NUL-terminated) into f->toks and
 * f->ntoks, which must start empty; `path` names the file in messages
 * ("PATH:LINE: ..."). On error f->toks may hold a part, for the caller to
 * free. SESS_EBADINPUT for a syntax error, SESS_ENOMEM. */
enum sess_err tpl_compile(struct tpl_file *f, const char *path, char *errmsg, size_t errmsg_len);

static inline bool
tpl_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* --- cache.c --- */

/* A render begins: every file is checked again, at most once until the
 * next call, after taking in what inotify saw (or starting to watch, from
 * the second render on). */
void tpl_cache_begin(struct sess_templates *tpl);

/* The current compiled version of NAME.html, checked once per render and
 * read again when it changed. `*out` stays valid until the next
 * tpl_cache_begin(). `is_name_known` skips the check of the name (partials
 * checked when compiled, and "layout"). SESS_ENOTFOUND when there is no
 * such file, SESS_EBADINPUT for a bad name or a syntax error, SESS_ETOOBIG,
 * SESS_EIO, SESS_ENOMEM; `errmsg` says which. */
enum sess_err tpl_file_get(struct sess_templates *tpl, const char *name, size_t name_len,
                           bool is_name_known, struct tpl_file **out, char *errmsg,
                           size_t errmsg_len);

/* --- watch.c --- */

/* (Re)starts watching html_dir and the way to it, or falls back to stat()
 * for good (notify_fd stays -1); either way marks every cached file to be
 * read again, since anything may have changed unseen. */
void tpl_watch_start(struct sess_templates *tpl);

/* Marks the files that changed since the last call; restarts the watch
 * when the way to html_dir may have changed or events were lost. Needs
 * notify_fd >= 0. */
void tpl_watch_poll(struct sess_templates *tpl);

/* Closes the inotify descriptor and forgets the watches (not the array
 * that holds them: sess_templates_close frees it). */
void tpl_watch_stop(struct sess_templates *tpl);

#endif
