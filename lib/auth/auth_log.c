/* The auth log's line for a request: the event and the username, from the
 * client's address as the configuration reads it (request.c). Writing the
 * line is the log's (app/log.c). */
#include "auth.h"
#include "log.h"

void
sess_log_auth(struct sess_request *req, const char *event, const char *username)
{
    sess__log_auth_app(req->app, event, username, sess_client_addr(req));
}
