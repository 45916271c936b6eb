/* A render with one value computed on demand (render.c); for the
 * response (http/response.c), whose CSRF token costs an HMAC. Internal to
 * lib/. */
#ifndef SESS_RENDER_LAZY_H
#define SESS_RENDER_LAZY_H

#include "sess_util.h"

/* sess_templates_render (template.c) with one top-level name whose string
 * value costs work (the CSRF token, an HMAC): asked for only when a render
 * reaches a tag that names it, and then once. It shadows a var of that
 * name. */
struct sess_tpl_lazy {
    const char *name;
    size_t name_len;
    const char *(*get)(void *arg);
    void *arg;
};

enum sess_err sess__templates_render_lazy(struct sess_templates *tpl, const char *name,
                                          const json_t *vars, const struct sess_tpl_lazy *lazy,
                                          char **out, size_t *out_len, size_t *out_cap,
                                          char *errmsg, size_t errmsg_len);

#endif
