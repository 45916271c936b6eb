/* A real app (config file, secret, LMDB store, the repo's html/) in a
 * temporary directory, a test clock, and clients that carry their cookie
 * from request to request. Shared by the unit tests that drive requests. */
#ifndef TEST_FIXTURE_H
#define TEST_FIXTURE_H

#include "internal.h"

/* 2026-11-22T18:00:00.000Z: sessions made at it expire at 18:30. */
#define FIXTURE_EPOCH_MS 1795370400000LL

struct fixture {
    char dir[64];
    char config_path[256];
    struct sess_app *app;
    int64_t now_ms;
    bool https;
    const char *forwarded_proto;
    const char *method;
    const char *content_type;
    const char *origin;
    const char *body;
    const char *user_agent;
    const char *remote_addr;   /* REMOTE_ADDR; NULL: 127.0.0.1 */
    const char *forwarded_for; /* X-Forwarded-For, or NULL */
    const char *params[4];     /* more "NAME=VALUE" parameters (REQUEST_URI=...), NULL-ended */
    char env[4][18][1024];     /* a few requests may be alive at once */
    char *envp[4][19];
    unsigned next_env;
};

struct client {
    char *cookie;     /* the sid value to send, or NULL */
    char *set_cookie; /* the last response's Set-Cookie, or NULL */
    char *body;
    int status;
    char *csrf_cookie; /* the pre-session cookie NAME.csrf to send, or NULL */
};

/* Makes the directory, the secret and a config of defaults plus `extra`
 * ("key = value\n" lines), and opens the app. Fails the test on error. */
struct fixture *fixture_new(const char *extra);
/* Reopens the app with another `extra`, keeping the store. */
void fixture_reopen(struct fixture *f, const char *extra);
void fixture_free(struct fixture *f);
/* cmocka's setup and teardown for tests of the defaults: *state is the
 * fixture. */
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* One whole request through `route`, as the request loop runs it. */
void fixture_get(struct fixture *f, struct client *c, sess_route_fn route);
/* The same through a route table, as sess_run_routes runs it. */
void fixture_route(struct fixture *f, struct client *c, const struct sess_route *routes,
                   size_t count);

/* A request that stays open: the session is loaded; the test calls the API
 * and sess__session_commit itself. */
void fixture_begin(struct fixture *f, struct client *c, struct sess_request *req);
void fixture_end(struct sess_request *req);

void client_copy(struct client *dst, const struct client *src);
void client_free(struct client *c);

#endif
