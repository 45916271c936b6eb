/* Test helper of test_exhaustion_conns.sh: opens COUNT idle TCP connections
 * to HOST:PORT and holds them, sending nothing, until its standard input
 * closes. Prints "connected N" once every handshake is settled, and at the
 * end "open N": how many the server had not closed by then.
 * Usage: hold_conns HOST PORT COUNT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SETTLE_MS 10000

static long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* COUNT descriptors and a few for stdio: above the usual soft limit of
 * 1024, so raise it (root may raise the hard limit too). */
static int
raise_fd_limit(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur >= want)
        return 0;
    rl.rlim_cur = want;
    if (rl.rlim_max < want)
        rl.rlim_max = want;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/* Waits until no connection is still in progress, or SETTLE_MS. Returns how
 * many connected; the failed ones get fd -1. */
static size_t
settle(struct pollfd *p, size_t n)
{
    long deadline = now_ms() + SETTLE_MS;
    size_t i, pending, connected = 0;
    int err;
    socklen_t len;

    for (;;) {
        pending = 0;
        for (i = 0; i < n; i++) {
            if (p[i].fd < 0 || p[i].events == 0)
                continue;
            if (p[i].revents & (POLLOUT | POLLERR | POLLHUP)) {
                err = 0;
                len = sizeof err;
                if (getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
                    close(p[i].fd);
                    p[i].fd = -1;
                    continue;
                }
                p[i].events = 0;
                connected++;
                continue;
            }
            pending++;
        }
        if (pending == 0 || now_ms() >= deadline)
            return connected;
        if (poll(p, n, 100) < 0 && errno != EINTR)
            return connected;
    }
}

int
main(int argc, char **argv)
{
    struct sockaddr_in addr;
    struct pollfd *p = NULL;
    size_t i, n, connected, open_now = 0;
    char sink[256];
    int status = 1;

    if (argc != 4 || atoi(argv[2]) <= 0 || atol(argv[3]) <= 0) {
        fprintf(stderr, "usage: hold_conns HOST PORT COUNT\n");
        return 64;
    }
    n = (size_t)atol(argv[3]);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "hold_conns: %s: not an IPv4 address\n", argv[1]);
        return 64;
    }
    if (raise_fd_limit((rlim_t)n + 64) != 0) {
        fprintf(stderr, "hold_conns: cannot raise the descriptor limit to %zu: %s\n", n + 64,
                strerror(errno));
        return 69;
    }
    p = calloc(n, sizeof *p);
    if (!p) {
        fprintf(stderr, "hold_conns: out of memory\n");
        goto out;
    }
    for (i = 0; i < n; i++)
        p[i].fd = -1;
    for (i = 0; i < n; i++) {
        p[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (p[i].fd < 0) {
            fprintf(stderr, "hold_conns: socket %zu: %s\n", i, strerror(errno));
            goto out;
        }
        p[i].events = POLLOUT;
        if (connect(p[i].fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
            close(p[i].fd);
            p[i].fd = -1;
        }
    }
    connected = settle(p, n);
    printf("connected %zu\n", connected);
    fflush(stdout);

    while (read(STDIN_FILENO, sink, sizeof sink) > 0)
        ;

    /* A connection the server closed reads as end of file (POLLIN with
     * nothing to read) or an error. */
    for (i = 0; i < n; i++)
        p[i].events = p[i].fd < 0 ? 0 : POLLIN;
    if (poll(p, n, 0) >= 0) {
        for (i = 0; i < n; i++)
            if (p[i].fd >= 0 && !(p[i].revents & (POLLIN | POLLERR | POLLHUP)))
                open_now++;
    }
    printf("open %zu\n", open_now);
    fflush(stdout);
    status = 0;
out:
    if (p)
        for (i = 0; i < n; i++)
            if (p[i].fd >= 0)
                close(p[i].fd);
    free(p);
    return status;
}
