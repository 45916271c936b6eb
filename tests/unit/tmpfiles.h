/* Scratch directories and files for the unit tests that read files
 * (configuration, secrets). Each test makes its own directory under $TMPDIR
 * and removes it, so tests can run in parallel and leave nothing behind. */
#ifndef TESTS_TMPFILES_H
#define TESTS_TMPFILES_H

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tmpdir {
    char path[256];
};

/* Creates a fresh directory; returns 0 or -1. */
static inline int
tmpdir_make(struct tmpdir *d)
{
    const char *base = getenv("TMPDIR");

    int n = snprintf(d->path, sizeof(d->path), "%s/fcgi-session-test.XXXXXX",
                     base != NULL && base[0] != '\0' ? base : "/tmp");
    if (n < 0 || (size_t)n >= sizeof(d->path))
        return -1;
    return mkdtemp(d->path) != NULL ? 0 : -1;
}

/* The full path of `name` inside the directory, in a caller buffer. */
static inline const char *
tmpdir_path(const struct tmpdir *d, const char *name, char out[PATH_MAX])
{
    if (snprintf(out, PATH_MAX, "%s/%s", d->path, name) >= PATH_MAX)
        abort(); /* a test's own names are short */
    return out;
}

/* Writes `len` bytes to `name` with permissions `mode`; returns 0 or -1. */
static inline int
tmpdir_write(const struct tmpdir *d, const char *name, const void *data, size_t len, mode_t mode)
{
    char path[PATH_MAX];
    int fd;
    ssize_t n;

    tmpdir_path(d, name, path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    n = write(fd, data, len);
    if (close(fd) != 0 || n < 0 || (size_t)n != len)
        return -1;
    return chmod(path, mode);
}

static inline int
tmpdir_write_str(const struct tmpdir *d, const char *name, const char *text)
{
    return tmpdir_write(d, name, text, strlen(text), 0600);
}

static inline int
tmpdir_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static inline void
tmpdir_remove(struct tmpdir *d)
{
    nftw(d->path, tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
