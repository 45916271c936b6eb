/* The demo's page variables: every page gets the visitor's theme and
 * language (the session's "prefs", set by /prefs, or "system" and "en"),
 * and one true flag for each, "theme_dark" for theme "dark", so a page can
 * mark the chosen <option> without logic. The library adds the user. */
#include <string.h>

#include "demo.h"

/* Sets NAME_VALUE: true, only for short [a-z] values, so that no value can
 * make a name of its own choosing. */
static void
flag_choice(json_t *vars, const char *name, const char *v)
{
    size_t name_len = strlen(name), v_len;
    char key[40];

    if (!v || (v_len = strlen(v)) > 16 || name_len + 1 + v_len >= sizeof key)
        return;
    for (size_t i = 0; i < v_len; i++)
        if (v[i] < 'a' || v[i] > 'z')
            return;
    memcpy(key, name, name_len);
    key[name_len] = '_';
    memcpy(key + name_len + 1, v, v_len);
    json_object_setn_new_nocheck(vars, key, name_len + 1 + v_len, json_true());
}

/* A preference from the session, or its default; a route's own wins. */
static void
pref(json_t *vars, json_t *prefs, const char *name, const char *fallback)
{
    json_t *v = json_object_get(vars, name);

    /* Keys and defaults are ASCII constants: the _nocheck calls skip
     * jansson's UTF-8 scan of them. The session's string is shared, not
     * copied: a page only reads it. */
    if (!v) {
        v = json_is_object(prefs) ? json_object_get(prefs, name) : NULL;
        v = json_is_string(v) ? json_incref(v) : json_string_nocheck(fallback);
        if (json_object_set_new_nocheck(vars, name, v) != 0)
            return;
    }
    flag_choice(vars, name, json_string_value(v));
}

static void
page_vars(struct sess_request *req, json_t *vars)
{
    json_t *prefs = sess_peek(req, "prefs");

    pref(vars, prefs, "theme", "system");
    pref(vars, prefs, "lang", "en");
}

int
demo_run(const char *route_name, sess_route_fn route)
{
    sess_set_page_vars(page_vars);
    return sess_run(route_name, route);
}
