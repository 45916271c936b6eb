/* The floor our routes are measured against: a bare FastCGI responder with
 * nothing but libfcgi (the same detach-before-finish close as the library),
 * optionally doing one raw LMDB read or write transaction per request.
 *
 *   floor hello [BYTES]
 *   floor lmdb-read DIR
 *   floor lmdb-write DIR full|meta|none
 *
 * `hello BYTES` answers a body of that size (at most 64 KiB) instead of
 * "hello\n", to tell what the size of a page costs apart from what making it
 * costs. Run it under spawn-fcgi like a route. Not part of the library. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fcgiapp.h>
#include <lmdb.h>

#define BODY_MAX (64 * 1024)

static const char reply[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 6\r\n\r\nhello\n";

static int
usage(void)
{
    fprintf(stderr, "usage: floor hello [BYTES] | lmdb-read DIR | lmdb-write DIR full|meta|none\n");
    return 64;
}

static int
open_env(MDB_env **env, MDB_dbi *dbi, const char *dir, unsigned flags)
{
    MDB_txn *txn;
    MDB_val key = {5, "floor"}, val = {64, NULL};
    char zeros[64] = {0};

    val.mv_data = zeros;
    mkdir(dir, 0700);
    if (mdb_env_create(env) || mdb_env_set_mapsize(*env, 64u << 20) ||
        mdb_env_open(*env, dir, MDB_NOTLS | flags, 0600) || mdb_txn_begin(*env, NULL, 0, &txn) ||
        mdb_dbi_open(txn, NULL, 0, dbi) || mdb_put(txn, *dbi, &key, &val, 0) || mdb_txn_commit(txn))
        return -1;
    return 0;
}

int
main(int argc, char **argv)
{
    enum { HELLO, READ, WRITE } mode;
    unsigned flags = 0;
    MDB_env *env = NULL;
    MDB_dbi dbi = 0;
    MDB_txn *rtxn = NULL;
    FCGX_Request req;
    char sink[4096];
    static char big[BODY_MAX + 128];
    const char *out = reply;
    int out_len = (int)sizeof reply - 1;

    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "hello") == 0 && argc <= 3)
        mode = HELLO;
    else if (strcmp(argv[1], "lmdb-read") == 0 && argc == 3)
        mode = READ;
    else if (strcmp(argv[1], "lmdb-write") == 0 && argc == 4)
        mode = WRITE;
    else
        return usage();
    if (mode == HELLO && argc == 3) {
        char *end;
        long n = strtol(argv[2], &end, 10);
        int head;
        if (*end || n < 1 || n > BODY_MAX)
            return usage();
        head = snprintf(big, sizeof big,
                        "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %ld\r\n\r\n",
                        n);
        memset(big + head, 'x', (size_t)n - 1);
        big[head + n - 1] = '\n';
        out = big;
        out_len = head + (int)n;
    }
    if (mode == WRITE)
        flags = strcmp(argv[3], "none") == 0   ? MDB_NOSYNC
                : strcmp(argv[3], "meta") == 0 ? MDB_NOMETASYNC
                                               : 0;
    if (mode != HELLO && open_env(&env, &dbi, argv[2], flags) != 0) {
        fprintf(stderr, "floor: cannot open LMDB in %s\n", argv[2]);
        return 74;
    }
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        return 70;
    /* As the library does after FCGX_Init: EPIPE, not a signal per request. */
    signal(SIGPIPE, SIG_IGN);
    while (FCGX_Accept_r(&req) >= 0) {
        MDB_val key = {5, "floor"}, val;
        MDB_txn *txn;
        if (mode == READ) {
            if (rtxn ? mdb_txn_renew(rtxn) : mdb_txn_begin(env, NULL, MDB_RDONLY, &rtxn))
                return 74;
            if (mdb_get(rtxn, dbi, &key, &val) != 0)
                return 74;
            mdb_txn_reset(rtxn);
        } else if (mode == WRITE) {
            if (mdb_txn_begin(env, NULL, 0, &txn) != 0 || mdb_get(txn, dbi, &key, &val) != 0)
                return 74;
            val.mv_size = 64;
            if (mdb_put(txn, dbi, &key, &val, 0) != 0 || mdb_txn_commit(txn) != 0)
                return 74;
        }
        FCGX_PutStr(out, out_len, req.out);
        while (FCGX_GetStr(sink, sizeof sink, req.in) > 0)
            ;
        FCGX_Detach(&req);
        FCGX_Finish_r(&req);
    }
    if (rtxn)
        mdb_txn_abort(rtxn);
    mdb_env_close(env);
    return 0;
}
