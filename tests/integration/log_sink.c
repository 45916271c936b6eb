/* A stand-in syslog daemon for the tests: binds a unix datagram socket at
 * PATH (open to every user, as /dev/log is) and appends each message it
 * receives, one per line, to OUT, until SIGTERM; then removes PATH.
 * Usage: log_sink PATH OUT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
    (void)sig;
    stop = 1;
}

int
main(int argc, char **argv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct sigaction sa;
    char msg[8192];
    FILE *out;
    ssize_t n;
    int fd;

    if (argc != 3 || strlen(argv[1]) >= sizeof sun.sun_path) {
        fprintf(stderr, "usage: log_sink PATH OUT\n");
        return 64;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: recv() returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    out = fopen(argv[2], "a");
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    strcpy(sun.sun_path, argv[1]);
    umask(0); /* the socket is made writable by all at once */
    if (!out || fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        fprintf(stderr, "log_sink: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while (!stop) {
        n = recv(fd, msg, sizeof msg - 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        msg[n] = '\0';
        fprintf(out, "%s\n", msg);
        fflush(out);
    }
    unlink(argv[1]);
    fclose(out);
    return 0;
}
