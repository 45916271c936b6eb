/* The set of compiled pages of one html_dir: each NAME.html read and
 * compiled (compile.c) on first use and kept, and read again when it is no
 * longer the version kept, which watch.c's inotify events say at once and a
 * stat() on every render says where inotify cannot be had. What a render
 * does with a file is render.c's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "template_impl.h"

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
        tpl_say(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        err = SESS_EIO;
        tpl_say(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = SESS_EBADINPUT;
        tpl_say(errmsg, errmsg_len, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > TPL_FILE_MAX) {
        err = SESS_ETOOBIG;
        tpl_say(errmsg, errmsg_len, "%s: over %d bytes", path, TPL_FILE_MAX);
        goto out;
    }
    /* One byte more than the size, to see a file that grew meanwhile. */
    next.text = malloc((size_t)st.st_size + 2);
    if (!next.text) {
        err = SESS_ENOMEM;
        tpl_say(errmsg, errmsg_len, "%s: out of memory", path);
        goto out;
    }
    while (got < (size_t)st.st_size + 1) {
        r = read(fd, next.text + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = SESS_EIO;
            tpl_say(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
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
        tpl_say(errmsg, errmsg_len, "%s: changed while being read", path);
        goto out;
    }
    next.text[got] = '\0';
    next.text_len = got;
    err = tpl_compile(&next, path, errmsg, errmsg_len);
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

/* Checked once per render (by inotify's word or by stat()) and re-read
 * when it is not the version in the cache. */
enum sess_err
tpl_file_get(struct sess_templates *tpl, const char *name, size_t name_len, bool is_name_known,
             struct tpl_file **out, char *errmsg, size_t errmsg_len)
{
    char path[PATH_MAX];
    size_t dir_len;
    struct tpl_file *f = NULL;
    struct stat st;
    size_t i;
    enum sess_err err = SESS_OK;

    /* Partial names passed tpl_is_file_name when their file was compiled, and
     * "layout" is ours. */
    if (!is_name_known && !tpl_is_file_name(name, name_len)) {
        tpl_say(errmsg, errmsg_len, "bad page name (1 to %d of a-z 0-9 _ -)", TPL_NAME_MAX);
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
        tpl_say(errmsg, errmsg_len, "%s: out of memory", path);
    *out = f;
    return err;
}

void
tpl_cache_begin(struct sess_templates *tpl)
{
    tpl->gen++;
    if (tpl->notify_fd >= 0)
        tpl_watch_poll(tpl);
    else if (!tpl->is_watch_tried && tpl->nfiles > 0)
        tpl_watch_start(tpl);
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
    tpl_watch_stop(tpl);
    free(tpl->watches);
    while (tpl->nfiles > 0)
        file_forget(tpl, tpl->nfiles - 1);
    free(tpl->files);
    free(tpl->scratch);
    free(tpl->dir);
    free(tpl);
}
