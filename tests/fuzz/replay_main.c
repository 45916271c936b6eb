/* A main() for the fuzz targets built without libFuzzer: runs each corpus
 * file given (or each file in each directory given) through the target once
 * and prints a TAP line per file, so `make check` replays the corpus under
 * the ordinary and the sanitizer builds. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as in libFuzzer: a target that sets up once defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Reads a whole file; the buffer is one byte larger so that an empty file
 * still gives a valid pointer. */
static unsigned char *
read_all(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;

    if (fp == NULL)
        return NULL;
    for (;;) {
        if (len == cap) {
            size_t next = cap == 0 ? 4096 : cap * 2;
            unsigned char *grown = realloc(buf, next + 1);
            if (grown == NULL) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = grown;
            cap = next;
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(fp)) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *size = len;
    return buf;
}

static int
run_file(const char *target, const char *path, unsigned *n)
{
    size_t size = 0;
    unsigned char *data = read_all(path, &size);

    ++*n;
    if (data == NULL) {
        printf("not ok %u - %s %s (cannot read: %s)\n", *n, target, path, strerror(errno));
        return 1;
    }
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    printf("ok %u - %s %s\n", *n, target, path);
    fflush(stdout);
    return 0;
}

static int
skip_dots(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int
main(int argc, char **argv)
{
    const char *target = strrchr(argv[0], '/') != NULL ? strrchr(argv[0], '/') + 1 : argv[0];
    unsigned n = 0;
    int failed = 0;

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **list;
            int count = scandir(argv[i], &list, skip_dots, alphasort);
            if (count < 0) {
                printf("not ok %u - %s %s (cannot list: %s)\n", ++n, target, argv[i],
                       strerror(errno));
                failed = 1;
                continue;
            }
            for (int k = 0; k < count; k++) {
                char path[PATH_MAX];
                struct stat fst;
                snprintf(path, sizeof(path), "%s/%s", argv[i], list[k]->d_name);
                if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode))
                    failed |= run_file(target, path, &n);
                free(list[k]);
            }
            free(list);
        } else {
            failed |= run_file(target, argv[i], &n);
        }
    }
    printf("1..%u\n", n);
    return failed;
}
