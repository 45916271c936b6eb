/* Fuzzes the configuration reader (sess_config_load) with whole files: any
 * bytes give either a configuration that passes its own checks or an error
 * naming the file, and nothing leaks either way. */
#include <assert.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sess_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One scratch file per process, in memory when /dev/shm is there. */
static const char *
scratch_path(void)
{
    static char path[64];

    if (path[0] == '\0') {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof(path), "%s/fuzz_config.%ld.conf", dir, (long)getpid());
    }
    return path;
}

static void
write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert(fd >= 0);
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        assert(n > 0);
        done += (size_t)n;
    }
    assert(close(fd) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = scratch_path();
    struct sess_config cfg;
    char msg[SESS_ERRMSG_MAX];
    enum sess_err err;

    write_file(path, data, size);
    memset(msg, 0, sizeof(msg));
    err = sess_config_load(&cfg, path, msg, sizeof(msg));
    if (err == SESS_OK) {
        assert(cfg.name != NULL && cfg.secret_file != NULL && cfg.store != NULL);
        assert(cfg.cookie_path != NULL && cfg.html_dir != NULL);
        assert(cfg.secret_file[0] == '/' && cfg.html_dir[0] == '/');
        assert(cfg.max_age_s >= 1 && cfg.touch_after_s <= cfg.max_age_s);
        assert(sess_config_check(&cfg, msg, sizeof(msg)) == SESS_OK);
        assert(sess_config_set(&cfg, "fuzz", "store", "lmdb:db", msg, sizeof(msg)) == SESS_OK);
    } else {
        assert(err == SESS_ECONFIG);
        assert(strncmp(msg, path, strlen(path)) == 0);
        assert(memchr(msg, '\0', sizeof(msg)) != NULL);
        assert(cfg.name == NULL && cfg.path == NULL);
    }
    sess_config_free(&cfg);
    unlink(path);
    return 0;
}
