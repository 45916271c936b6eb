/* Watching html_dir with inotify, so that an edited page shows on the next
 * request without a stat() per file per render: the directory itself for
 * its pages, and every directory on the way to it for the entry that leads
 * on, so a renamed directory or a swapped release symlink is seen too.
 * This file only marks what changed; cache.c reads it again, and stats
 * every file where no watch could be had. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "template_impl.h"

#define TPL_SYMLINKS_MAX    40 /* the kernel's own bound (ELOOP) */
#define TPL_EVENT_READS_MAX 64 /* reads of 4 KiB of events per render */

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

void
tpl_watch_stop(struct sess_templates *tpl)
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

void
tpl_watch_start(struct sess_templates *tpl)
{
    size_t i;

    tpl_watch_stop(tpl);
    tpl->is_watch_tried = true;
    tpl->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (tpl->notify_fd >= 0 && !watch_path(tpl))
        tpl_watch_stop(tpl);
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

/* The kernel queues an event before the write or rename that raised it
 * returns, so a change made before a request arrived is always seen by that
 * request. */
void
tpl_watch_poll(struct sess_templates *tpl)
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
        tpl_watch_start(tpl);
}
