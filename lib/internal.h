/* Every internal header of lib/, for the unit tests, which reach into each
 * layer; the library's own files include only their layer's header and
 * those below it (scripts/layers checks that). */
#ifndef SESS_INTERNAL_H
#define SESS_INTERNAL_H

#include "auth.h"
#include "base.h"
#include "codec.h"
#include "http.h"
#include "log.h"
#include "render_lazy.h"
#include "store.h"

#endif
