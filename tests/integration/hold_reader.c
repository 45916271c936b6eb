/* Test helper of test_exhaustion_open.sh: opens the LMDB environment in DIR,
 * begins a read transaction, prints "reading PID" and waits for a signal.
 * Killed with SIGKILL it leaves the stale reader slot that a crashed
 * FastCGI process would; the store must reclaim it.
 * Usage: hold_reader DIR */
#include <stdio.h>
#include <unistd.h>

#include <lmdb.h>

int
main(int argc, char **argv)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: hold_reader DIR\n");
        return 64;
    }
    rc = mdb_env_create(&env);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(env, argv[1], 0, 0600);
    if (rc == MDB_SUCCESS)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) {
        fprintf(stderr, "hold_reader: %s: %s\n", argv[1], mdb_strerror(rc));
        mdb_env_close(env);
        return 1;
    }
    printf("reading %ld\n", (long)getpid());
    fflush(stdout);
    pause();
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return 0;
}
