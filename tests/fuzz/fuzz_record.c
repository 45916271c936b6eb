/* Fuzzes stored session records as the LMDB store reads them back. The input
 * becomes the value of one session id in the "sessions" database, written
 * by a second process with plain LMDB as anyone holding the file could:
 * either raw bytes, or the store's own sealed record with bytes flipped and
 * cut. Then the store's get, a whole request carrying that id's signed
 * cookie, and sessctl's listing and stats read it. A value is a valid record
 * or none: never a crash, a store error (one bad record must not answer 503
 * to everyone who names it), an unsealed record in this sealing store, or a
 * record that opens after any byte changed but the two the seal leaves out
 * (idle expiry and last sighting, which touch rewrites).
 *
 * First byte: bit 0 clear, the rest is the raw value. Bit 0 set, the rest
 * edits the sealed record: with bit 1, two bytes (little-endian) of a new
 * length first (modulo the length + 1); then triples (offset high, offset
 * low, xor mask), offsets modulo the length. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "fuzz_app.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value layouts of lib/store/lmdb/records.c. Format 2 (written now): version,
 * flags, owner length (u16), extensions length (u32), then idle expiry,
 * last sighting, absolute deadline, creation (i64 ms) at 8, 16, 24, 32, a
 * generation and a nonce, 64 bytes; the owner, the extensions, the sealed
 * payload. Everything but 8..23 is under the seal. Format 1 (0.1): version,
 * flags, owner length, then expiry, deadline and creation at 8, 16 and 24,
 * 32 bytes; the owner; the payload sealed under 0.1's key with the id as AD.
 * Native byte order throughout. */
#define REC_VERSION       2
#define REC1_VERSION      1
#define REC_FLAG_SEALED   0x01
#define REC_HEADER        64
#define REC1_HEADER       32
#define REC_MUTABLE_BEGIN 8
#define REC_MUTABLE_END   24

#define ID "FuzzRecord-0123456789_abcdefghijklmnopqrstu" /* 43 base64url characters */

static const char data_json[] =
    "{\"cookie\":{\"originalMaxAge\":1800000,\"expires\":\"2026-11-22T18:30:00.000Z\","
    "\"secure\":false,\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},"
    "\"authenticated\":true,\"user\":{\"username\":\"alice\",\"role\":\"admin\"},\"views\":3}";

static struct {
    struct fuzz_app fa;
    struct sess_sealer sealer; /* the store's keys, to judge sealed payloads */
    struct sess_buf sealed;    /* the store's own record of ID */
    struct sess_buf value;     /* this input's value */
    struct sess_buf plain;
    struct sess_buf rec_buf;
    char cookie_env[SESS_COOKIE_MAX_LEN];
    struct sess_request req;
    bool route_saw_session;
    pid_t writer; /* the process that writes raw values */
    int to_writer, from_writer;
} g;

static bool
read_all(int fd, void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = read(fd, (char *)buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

static bool
write_all(int fd, const void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, (const char *)buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

static void
store_reopen(void)
{
    char errmsg[SESS_ERRMSG_MAX];
    struct sess_app *app = g.fa.app;

    if (sess__store_open(&app->store, &app->cfg, &app->secrets, errmsg, sizeof errmsg) != SESS_OK) {
        fprintf(stderr, "fuzz_record: %s\n", errmsg);
        abort();
    }
}

static void
store_close(void)
{
    sess__store_close(g.fa.app->store);
    g.fa.app->store = NULL;
}

/* LMDB allows one environment per process, and opening one costs
 * megabytes of zeroed pages: the raw writes come from a child process with
 * its own environment, as a second process on the same machine would do
 * them. It reads a length and a value, writes it under ID, answers one byte,
 * and exits when the pipe closes. The expiry index is emptied on every
 * write: each touch of a fuzzed record files it under a new instant, and a
 * long run would otherwise fill the map with entries gc keeps until due. */
static void
writer_main(int in, int out)
{
    struct sess_buf value = {0};
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    size_t len;
    char ok;
    int rc;

    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
        mdb_env_open(env, g.fa.store_dir, MDB_NOSYNC, 0600))
        _exit(1);
    while (read_all(in, &len, sizeof len)) {
        value.len = 0;
        if (sess__buf_reserve(&value, len + 1) != SESS_OK || !read_all(in, value.ptr, len))
            _exit(1);
        MDB_val k = {strlen(ID), ID}, v = {len, value.ptr};
        rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED && mdb_env_set_mapsize(env, 0) == 0)
            rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc == 0) {
            if ((rc = mdb_dbi_open(txn, "expiry", 0, &dbi)) == 0 &&
                (rc = mdb_drop(txn, dbi, 0)) == 0 &&
                (rc = mdb_dbi_open(txn, "sessions", 0, &dbi)) == 0)
                rc = mdb_put(txn, dbi, &k, &v, 0);
            if (rc == 0)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        ok = rc == 0;
        if (write(out, &ok, 1) != 1)
            _exit(1);
    }
    mdb_env_close(env);
    /* Not exit(): the parent's atexit handlers and leak check are its own. */
    _exit(0);
}

static void
writer_start(void)
{
    int to_writer[2], from_writer[2];

    CHECK(pipe2(to_writer, O_CLOEXEC) == 0 && pipe2(from_writer, O_CLOEXEC) == 0);
    g.writer = fork();
    CHECK(g.writer >= 0);
    if (g.writer == 0) {
        close(to_writer[1]);
        close(from_writer[0]);
        writer_main(to_writer[0], from_writer[1]);
    }
    close(to_writer[0]);
    close(from_writer[1]);
    g.to_writer = to_writer[1];
    g.from_writer = from_writer[0];
}

static void
writer_stop(void)
{
    int status;

    if (g.writer <= 0)
        return;
    close(g.to_writer);
    close(g.from_writer);
    CHECK(waitpid(g.writer, &status, 0) == g.writer);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g.writer = 0;
}

static void
raw_put(const void *value, size_t len)
{
    char ok = 0;

    CHECK(write_all(g.to_writer, &len, sizeof len) && write_all(g.to_writer, value, len));
    CHECK(read_all(g.from_writer, &ok, 1) && ok);
}

/* At start, with the store closed: the only environment then. */
static void
raw_get(struct sess_buf *out)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(ID), ID}, v;

    CHECK(mdb_env_create(&env) == 0);
    CHECK(mdb_env_set_maxdbs(env, 8) == 0);
    CHECK(mdb_env_open(env, g.fa.store_dir, MDB_RDONLY, 0600) == 0);
    CHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "sessions", 0, &dbi) == 0);
    CHECK(mdb_get(txn, dbi, &k, &v) == 0);
    out->len = 0;
    CHECK(sess__buf_append(out, v.mv_data, v.mv_size) == SESS_OK);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static void
cleanup(void)
{
    writer_stop();
    sess__request_reset(&g.req);
    sess__buf_free(&g.req.headers);
    sess__buf_free(&g.req.out);
    sess__buf_free(&g.sealed);
    sess__buf_free(&g.value);
    sess__buf_free(&g.plain);
    sess__buf_free(&g.rec_buf);
    sess__sealer_wipe(&g.sealer);
    fuzz_app_close(&g.fa);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sess_record rec = {
        .expires_ms = FUZZ_NOW_MS + 30 * 60 * 1000LL,
        .deadline_ms = FUZZ_NOW_MS + 12 * 3600 * 1000LL,
        .created_ms = FUZZ_NOW_MS - 60 * 1000LL,
        .owner = SESS_STR_LIT("alice"),
        .data = SESS_STR_LIT(data_json),
    };
    struct sess_app *app;
    char signed_id[SESS_ID_MAX_LEN + SESS_SIG_LEN + 4];
    size_t len;

    (void)argc;
    (void)argv;
    fuzz_app_open(&g.fa, NULL);
    app = g.fa.app;
    CHECK(app->store->ops->create(app->store, SESS_STR_LIT(ID), FUZZ_NOW_MS, &rec) == SESS_OK);
    store_close();
    raw_get(&g.sealed);
    CHECK(g.sealed.len > REC_HEADER && (g.sealed.ptr[1] & REC_FLAG_SEALED));
    /* Forked with no environment open, so the child inherits none. */
    writer_start();
    store_reopen();
    sess__sealer_init(&g.sealer, &app->secrets);

    /* The cookie a browser holding this session sends. */
    CHECK(sess_sign(&app->secrets, SESS_STR_LIT(ID), signed_id, sizeof signed_id, &len) == SESS_OK);
    CHECK(strncmp(signed_id, "s:", 2) == 0);
    snprintf(g.cookie_env, sizeof g.cookie_env, "HTTP_COOKIE=%s=s%%3A%s", app->cfg.name,
             signed_id + 2);
    atexit(cleanup);
    return 0;
}

/* The input's value: raw bytes, or the sealed record edited. */
static void
make_value(const uint8_t *data, size_t size)
{
    uint8_t mode = size > 0 ? data[0] : 0;

    g.value.len = 0;
    if (size > 0) {
        data++;
        size--;
    }
    if (!(mode & 1)) {
        CHECK(sess__buf_append(&g.value, data, size) == SESS_OK);
        return;
    }
    CHECK(sess__buf_append(&g.value, g.sealed.ptr, g.sealed.len) == SESS_OK);
    if ((mode & 2) && size >= 2) {
        g.value.len = ((size_t)data[0] | (size_t)data[1] << 8) % (g.value.len + 1);
        data += 2;
        size -= 2;
    }
    for (; size >= 3 && g.value.len > 0; data += 3, size -= 3)
        g.value.ptr[((size_t)data[0] << 8 | data[1]) % g.value.len] ^= (char)data[2];
}

static int64_t
field_i64(const char *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Whether g.value is the store's own record with at most the bytes outside
 * the seal changed: the only format 2 value that can open, short of
 * forging a seal. */
static bool
is_own_record_with_mutable_edits(void)
{
    if (g.value.len != g.sealed.len)
        return false;
    return memcmp(g.value.ptr, g.sealed.ptr, REC_MUTABLE_BEGIN) == 0 &&
           memcmp(g.value.ptr + REC_MUTABLE_END, g.sealed.ptr + REC_MUTABLE_END,
                  g.value.len - REC_MUTABLE_END) == 0;
}

/* What a get must answer for g.value, from the layout alone; on SESS_OK,
 * `*owner` points into g.value and `*plain` at the data, and `*created_ms`
 * is the creation. */
static enum sess_err
expected_get(struct sess_str *owner, struct sess_str *plain, int64_t *created_ms)
{
    const char *v = g.value.ptr;
    size_t len = g.value.len;
    uint16_t owner_len;
    struct sess_record rec;

    if (len < REC1_HEADER || !(v[1] & REC_FLAG_SEALED))
        return SESS_ENOTFOUND; /* too short, or unsealed in a sealing store */
    memcpy(&owner_len, v + 2, sizeof owner_len);
    if (v[0] == REC_VERSION) {
        if (!is_own_record_with_mutable_edits())
            return SESS_ENOTFOUND;
        rec.expires_ms = field_i64(v + 8);
        rec.deadline_ms = field_i64(v + 24);
        if (!sess__record_is_live(&rec, FUZZ_NOW_MS))
            return SESS_ENOTFOUND;
        *owner = (struct sess_str){v + REC_HEADER, owner_len};
        *plain = SESS_STR_LIT(data_json);
        *created_ms = field_i64(v + 32);
        return SESS_OK;
    }
    /* Format 1: opens under 0.1's keys with the id as AD, or not at all. */
    if (v[0] != REC1_VERSION || (v[1] & ~REC_FLAG_SEALED) || owner_len > len - REC1_HEADER)
        return SESS_ENOTFOUND;
    rec.expires_ms = field_i64(v + 8);
    rec.deadline_ms = field_i64(v + 16);
    if (!sess__record_is_live(&rec, FUZZ_NOW_MS))
        return SESS_ENOTFOUND;
    g.plain.len = 0;
    if (sess__unseal_legacy(
            &g.sealer, SESS_STR_LIT(ID),
            (struct sess_str){v + REC1_HEADER + owner_len, len - REC1_HEADER - owner_len},
            &g.plain) != SESS_OK)
        return SESS_ENOTFOUND;
    *owner = (struct sess_str){v + REC1_HEADER, owner_len};
    *plain = (struct sess_str){g.plain.ptr, g.plain.len};
    *created_ms = field_i64(v + 24);
    return SESS_OK;
}

static void
check_get(void)
{
    struct sess_store *st = g.fa.app->store;
    struct sess_str owner = {0}, plain = {0};
    struct sess_record rec;
    int64_t created_ms = 0;
    enum sess_err want = expected_get(&owner, &plain, &created_ms);
    enum sess_err err = st->ops->get(st, SESS_STR_LIT(ID), FUZZ_NOW_MS, &rec, &g.rec_buf);

    CHECK(err == want);
    if (err != SESS_OK)
        return;
    CHECK(sess__record_is_live(&rec, FUZZ_NOW_MS));
    CHECK(rec.deadline_ms == 0 || rec.expires_ms <= rec.deadline_ms);
    CHECK(rec.created_ms == created_ms);
    CHECK(rec.owner.ptr >= g.rec_buf.ptr &&
          rec.owner.ptr + rec.owner.len < g.rec_buf.ptr + g.rec_buf.len);
    CHECK(rec.data.ptr >= g.rec_buf.ptr &&
          rec.data.ptr + rec.data.len < g.rec_buf.ptr + g.rec_buf.len);
    CHECK(rec.owner.ptr[rec.owner.len] == '\0' && rec.data.ptr[rec.data.len] == '\0');
    CHECK(rec.owner.len == owner.len && memcmp(rec.owner.ptr, owner.ptr, owner.len) == 0);
    CHECK(rec.data.len == plain.len && memcmp(rec.data.ptr, plain.ptr, plain.len) == 0);
}

static void
route_show(struct sess_request *req)
{
    g.route_saw_session = sess_exists(req);
    sess_send_json(req, 200, sess_to_json(req));
}

/* A request with the session's cookie: loaded exactly when the record is
 * live and its data a JSON object; an answer either way. */
static void
check_request(void)
{
    char *envp[] = {"REQUEST_METHOD=GET", "HTTP_HOST=localhost", g.cookie_env, NULL};
    struct sess_store *st = g.fa.app->store;
    struct sess_record rec;
    json_error_t jerr;
    json_t *data = NULL, *shown;
    bool is_loadable = false;

    if (st->ops->get(st, SESS_STR_LIT(ID), FUZZ_NOW_MS, &rec, &g.rec_buf) == SESS_OK) {
        data = json_loadb(rec.data.ptr, rec.data.len, 0, &jerr);
        is_loadable = json_is_object(data);
    }
    g.route_saw_session = !is_loadable;
    fuzz_request(&g.req, g.fa.app, envp, route_show);
    CHECK(g.req.status == 200);
    CHECK(g.route_saw_session == is_loadable);
    CHECK(fuzz_headers_are_clean(&g.req.headers));
    shown = json_loadb(g.req.out.ptr, g.req.out.len, JSON_ALLOW_NUL, &jerr);
    CHECK(json_is_object(shown));
    if (is_loadable) {
        const char *key;
        json_t *value;
        /* The data as stored, with the cookie object the library makes. */
        json_object_foreach(data, key, value)
        {
            if (strcmp(key, "cookie") != 0)
                CHECK(json_equal(json_object_get(shown, key), value));
        }
        CHECK(json_is_object(json_object_get(shown, "cookie")));
    }
    json_decref(shown);
    json_decref(data);
    sess__request_reset(&g.req);
}

static bool
visit_session(void *arg, const struct sess_session_info *s)
{
    size_t *count = arg;

    CHECK(s->id != NULL && s->owner != NULL && s->data != NULL);
    ++*count;
    return true;
}

/* sessctl's views of the store read every record, live or not. */
static void
check_admin(void)
{
    struct sess_stats stats;
    size_t count = 0;

    CHECK(sess_sessions_each(g.fa.app, NULL, visit_session, &count) == SESS_OK);
    CHECK(count <= 1);
    CHECK(sess_sessions_each(g.fa.app, "alice", visit_session, &count) == SESS_OK);
    CHECK(sess_stats_get(g.fa.app, &stats) == SESS_OK);
    CHECK(stats.sessions == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_value(data, size);
    raw_put(g.value.ptr, g.value.len);
    check_get();
    check_request();
    check_admin();
    return 0;
}
