/* What every route of the demo shares: its page variables (the visitor's
 * theme and language from the session's "prefs"), set up by demo_run. */
#ifndef DEMO_H
#define DEMO_H

#include <sess.h>

/* sess_run with the demo's page variables. */
int demo_run(const char *route_name, sess_route_fn route);

#endif
