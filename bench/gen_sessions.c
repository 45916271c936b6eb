/* Fills a store with logged-in sessions for the benchmarks, as fast as the
 * store's own create allows: the scale scenarios need up to a million, and
 * logging in through argon2id would take hours. Records go through the
 * store interface, so they are sealed and indexed exactly as the routes
 * write them; the signed cookies of the first ones go to a file for wrk.
 *
 *   gen_sessions [-n LIVE] [-x EXPIRED] [-o COOKIES] [-k KEEP] CONFIG
 *
 * Not part of the library. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "internal.h"

struct gen {
    struct sess_config cfg;
    struct sess_secrets secrets;
    struct sess_store *store;
    FILE *cookies;
    size_t keep; /* cookies still to write */
    int64_t now_ms;
    size_t created;
    char errmsg[SESS_ERRMSG_MAX];
};

static int
usage(void)
{
    fprintf(stderr,
            "usage: gen_sessions [-n LIVE] [-x EXPIRED] [-o COOKIES] [-k KEEP] CONFIG\n"
            "  adds LIVE logged-in sessions (default 1000) and EXPIRED dead ones (default 0)\n"
            "  to the store of CONFIG; writes the Cookie header values of the first KEEP\n"
            "  (default 256) live ones to COOKIES, one per line\n");
    return SESS_EXIT_USAGE;
}

static bool
parse_count(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v > 100000000ULL)
        return false;
    *out = (size_t)v;
    return true;
}

/* The "name=value" pair a browser sends back, from the Set-Cookie header the
 * routes would build for this id (so the value is percent-encoded the same
 * way). */
static enum sess_err
write_cookie(struct gen *g, const char *id)
{
    char value[SESS_ID_LEN + SESS_SIG_LEN + 8], built[512];
    size_t value_len, built_len;
    struct sess_cookie_attrs attrs = {0};
    enum sess_err err;

    err = sess_sign(&g->secrets, sess_str_c(id), value, sizeof value, &value_len);
    if (err != SESS_OK)
        return err;
    err = sess_cookie_build(built, sizeof built, &built_len, sess_str_c(g->cfg.name),
                            (struct sess_str){value, value_len}, &attrs, 0);
    if (err != SESS_OK)
        return err;
    if (fprintf(g->cookies, "%.*s\n", (int)strcspn(built, ";"), built) < 0)
        return SESS_EIO;
    return SESS_OK;
}

/* One session as a login leaves it: express-session's cookie object, then
 * authenticated and user. The owner (the username) is unique per session,
 * as on a site where most users have one session. A dead one expired an
 * idle lifetime ago. */
static enum sess_err
create_one(struct gen *g, bool is_live)
{
    const struct sess_config *cfg = &g->cfg;
    int64_t max_age_ms = cfg->max_age_s * 1000;
    int64_t created_ms = is_live ? g->now_ms : g->now_ms - 2 * max_age_ms;
    int64_t expires_ms = created_ms + max_age_ms;
    char id[SESS_ID_LEN + 1], iso[25], owner[16], data[512];
    struct sess_record rec;
    enum sess_err err;
    int len;

    sess_id_new(id);
    sess_iso_date(expires_ms, iso);
    /* '-' and '_' of base64url are fine in a username; keep it short. */
    sess__fmt(owner, sizeof owner, "u%.10s", id);
    len = snprintf(data, sizeof data,
                   "{\"cookie\":{\"originalMaxAge\":%lld,\"expires\":\"%s\",\"secure\":false,"
                   "\"httpOnly\":true,\"path\":\"/\",\"sameSite\":\"lax\"},"
                   "\"authenticated\":true,\"user\":{\"username\":\"%s\",\"role\":\"user\"}}",
                   (long long)max_age_ms, iso, owner);
    if (len < 0 || (size_t)len >= sizeof data)
        return SESS_ETOOBIG;
    rec = (struct sess_record){
        .expires_ms = expires_ms,
        .deadline_ms = cfg->absolute_timeout_s ? created_ms + cfg->absolute_timeout_s * 1000 : 0,
        .created_ms = created_ms,
        .owner = sess_str_c(owner),
        .data = {data, (size_t)len},
    };
    err = g->store->ops->create(g->store, sess_str_c(id), g->now_ms, &rec);
    if (err == SESS_EEXISTS)
        return SESS_OK; /* 2^-256: nothing to do but not count it */
    if (err != SESS_OK)
        return err;
    g->created++;
    if (is_live && g->keep > 0) {
        g->keep--;
        return write_cookie(g, id);
    }
    return SESS_OK;
}

static double
seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int
main(int argc, char **argv)
{
    struct gen g;
    size_t live = 1000, expired = 0, keep = 256, i;
    const char *cookies_path = NULL;
    struct timespec t0;
    enum sess_err err = SESS_OK;
    int opt, status = 0;
    double secs;

    memset(&g, 0, sizeof g);
    while ((opt = getopt(argc, argv, "n:x:o:k:h")) != -1) {
        switch (opt) {
        case 'n':
            if (!parse_count(optarg, &live))
                return usage();
            break;
        case 'x':
            if (!parse_count(optarg, &expired))
                return usage();
            break;
        case 'k':
            if (!parse_count(optarg, &keep))
                return usage();
            break;
        case 'o':
            cookies_path = optarg;
            break;
        default:
            return usage();
        }
    }
    if (optind != argc - 1)
        return usage();
    if (sodium_init() < 0) {
        fprintf(stderr, "gen_sessions: libsodium failed to initialise\n");
        return SESS_EXIT_SOFTWARE;
    }

    /* A bulk load needs no durability per record: if it dies, it is run
     * again. Every process opens the environment with its own sync flags,
     * so the routes keep the configured lmdb_sync. */
    err = sess_config_load(&g.cfg, argv[optind], g.errmsg, sizeof g.errmsg);
    if (err == SESS_OK)
        err =
            sess_config_set(&g.cfg, "gen_sessions", "lmdb_sync", "none", g.errmsg, sizeof g.errmsg);
    if (err == SESS_OK)
        err = sess_secrets_load(&g.secrets, g.cfg.secret_file, g.errmsg, sizeof g.errmsg);
    if (err == SESS_OK)
        err = sess__store_open(&g.store, &g.cfg, &g.secrets, g.errmsg, sizeof g.errmsg);
    if (err != SESS_OK) {
        fprintf(stderr, "gen_sessions: %s\n", g.errmsg);
        status = err == SESS_ECONFIG ? SESS_EXIT_CONFIG : SESS_EXIT_SOFTWARE;
        goto out;
    }
    if (cookies_path) {
        g.cookies = fopen(cookies_path, "w");
        if (!g.cookies) {
            fprintf(stderr, "gen_sessions: %s: %s\n", cookies_path, strerror(errno));
            status = SESS_EXIT_IOERR;
            goto out;
        }
        g.keep = keep;
    }

    g.now_ms = sess__clock_real_ms();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Dead records interleaved with live ones, as gc meets them in use. */
    for (i = 0; i < live + expired && err == SESS_OK; i++) {
        bool is_live = expired == 0 ||
                       (i * expired / (live + expired) == (i + 1) * expired / (live + expired));
        err = create_one(&g, is_live);
    }
    secs = seconds_since(&t0);
    if (err != SESS_OK) {
        fprintf(stderr, "gen_sessions: after %zu sessions: %s: %s\n", g.created, sess_strerror(err),
                g.store->errmsg[0] ? g.store->errmsg : "-");
        status = SESS_EXIT_IOERR;
        goto out;
    }
    printf("gen_sessions: %zu sessions (%zu live, %zu expired) in %.2f s, %.0f per second\n",
           g.created, live, expired, secs, secs > 0 ? (double)g.created / secs : 0.0);
out:
    if (g.cookies && fclose(g.cookies) != 0 && status == 0) {
        fprintf(stderr, "gen_sessions: %s: %s\n", cookies_path, strerror(errno));
        status = SESS_EXIT_IOERR;
    }
    sess__store_close(g.store);
    sess_secrets_free(&g.secrets);
    sess_config_free(&g.cfg);
    return status;
}
