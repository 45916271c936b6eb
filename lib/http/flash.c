/* Flash messages as connect-flash keeps them: {"flash": {TYPE: [MSG...]}}
 * in the session, added by one request and read once by a later one. The
 * key is an ordinary session key, so reading and taking it is serializable
 * like any other (session.c); which page shows them is response.c's. */
#include <string.h>

#include "http.h"

/* The flash object as stored, copied (the caller changes and sets it), or
 * a new empty one when there is none or it is not an object. */
static json_t *
flash_copy(struct sess_request *req)
{
    json_t *flash = sess_get(req, "flash");

    return json_is_object(flash) ? json_deep_copy(flash) : json_object();
}

enum sess_err
sess_flash(struct sess_request *req, const char *type, const char *msg)
{
    json_t *flash, *list, *text;

    if (!type || !*type || !msg)
        return SESS_EBADINPUT;
    text = json_string(msg);
    if (!text)
        return SESS_EBADINPUT;
    flash = flash_copy(req);
    list = flash ? json_object_get(flash, type) : NULL;
    /* connect-flash pushes onto an array; anything else there is lost. */
    if (!json_is_array(list)) {
        list = json_array();
        if (!flash || !list || json_object_set_new(flash, type, list) != 0 ||
            json_object_size(flash) == 0) {
            json_decref(text);
            json_decref(flash);
            return SESS_ENOMEM;
        }
    }
    if (json_array_append_new(list, text) != 0) {
        json_decref(flash);
        return SESS_ENOMEM;
    }
    return sess_set(req, "flash", flash);
}

json_t *
sess_flash_take(struct sess_request *req, const char *type)
{
    json_t *flash, *list;

    if (!type || !json_is_object(sess_get(req, "flash")) ||
        !json_object_get(sess_get(req, "flash"), type))
        return NULL;
    flash = flash_copy(req);
    list = flash ? json_incref(json_object_get(flash, type)) : NULL;
    if (!flash || !list || json_object_del(flash, type) != 0) {
        json_decref(list);
        json_decref(flash);
        return NULL;
    }
    /* connect-flash leaves {} behind; we leave nothing. */
    if (json_object_size(flash) == 0) {
        json_decref(flash);
        (void)sess_unset(req, "flash");
    } else if (sess_set(req, "flash", flash) != SESS_OK) {
        json_decref(list);
        return NULL;
    }
    if (!json_is_array(list) || json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

json_t *
sess_flash_take_all(struct sess_request *req)
{
    json_t *flash = sess_get(req, "flash");

    if (!flash)
        return NULL;
    flash = json_is_object(flash) && json_object_size(flash) ? json_deep_copy(flash) : NULL;
    (void)sess_unset(req, "flash");
    return flash;
}
