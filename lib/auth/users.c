/* Accounts: argon2id hashes (crypto_pwhash_str, interactive limits) kept in
 * the store as {"role": ..., "hash": ...}, and the password check that costs
 * the same whether or not the name exists. Throttling and the session side
 * of a login are login.c's. */
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth.h"

#define ROLE_MAX 32

_Static_assert(sizeof(((struct sess_app *)0)->dummy_hash) == crypto_pwhash_STRBYTES,
               "dummy_hash holds one crypto_pwhash_str");

/* An account as stored. */
struct account {
    char role[ROLE_MAX + 1];
    char hash[crypto_pwhash_STRBYTES];
};

static bool
name_is_valid(const char *name, size_t len)
{
    size_t i;

    if (!name || len == 0 || len > SESS_USERNAME_MAX)
        return false;
    for (i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

static bool
role_is_valid(const char *role)
{
    size_t i, len = role ? strlen(role) : 0;

    if (len == 0 || len > ROLE_MAX)
        return false;
    for (i = 0; i < len; i++) {
        char c = role[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static enum sess_err
check_name(struct sess_app *app, const char *name)
{
    if (name_is_valid(name, name ? strlen(name) : 0))
        return SESS_OK;
    return sess__app_fail(app, SESS_EBADINPUT,
                          "user name \"%.64s\": use 1 to %d of A-Z a-z 0-9 . _ @ -",
                          name ? name : "", SESS_USERNAME_MAX);
}

static enum sess_err
check_password(struct sess_app *app, size_t password_len)
{
    if (password_len > 0 && password_len <= SESS_PASSWORD_MAX)
        return SESS_OK;
    return sess__app_fail(app, SESS_EBADINPUT, "the password must be 1 to %d bytes",
                          SESS_PASSWORD_MAX);
}

static enum sess_err
hash_password(struct sess_app *app, const char *password, size_t password_len,
              char out[crypto_pwhash_STRBYTES])
{
    if (crypto_pwhash_str(out, password ? password : "", password_len,
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0)
        return SESS_OK;
    return sess__app_fail(app, SESS_ENOMEM, "argon2id needs %zu bytes of memory it could not get",
                          (size_t)crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

/* Reads the account `name`, and its stored bytes into `raw` unless NULL.
 * SESS_ENOTFOUND when there is none; SESS_EBADINPUT when the stored value
 * is not an account (someone edited the database); store failures as the
 * store reports them. */
static enum sess_err
get_account(struct sess_app *app, struct sess_str name, struct account *acct, struct sess_buf *raw)
{
    struct sess_store *st = app->store;
    struct sess_buf buf = {0};
    json_t *root = NULL;
    const char *role = NULL, *hash = NULL;
    enum sess_err err;

    err = st->ops->user_get(st, name, sess_now_ms(app), &buf);
    if (err == SESS_ENOTFOUND) {
        sess__app_fail(app, err, "no user \"%.*s\"", (int)name.len, name.ptr);
        goto out;
    }
    if (err != SESS_OK) {
        sess__app_fail(app, err, "%s", st->errmsg);
        goto out;
    }
    root = json_loadb(buf.ptr, buf.len, 0, NULL);
    if (json_unpack(root, "{s:s, s:s}", "role", &role, "hash", &hash) != 0 ||
        strlen(role) > ROLE_MAX || strlen(hash) >= sizeof acct->hash) {
        err =
            sess__app_fail(app, SESS_EBADINPUT, "the account of \"%.*s\" is damaged; set it again",
                           (int)name.len, name.ptr);
        goto out;
    }
    memcpy(acct->role, role, strlen(role) + 1);
    memcpy(acct->hash, hash, strlen(hash) + 1);
    if (raw)
        err = sess__buf_append(raw, buf.ptr, buf.len);
out:
    json_decref(root);
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess__buf_free(&buf);
    return err;
}

/* The stored form of an account; the caller frees it. NULL when out of
 * memory. */
static char *
account_text(const struct account *acct)
{
    json_t *root = json_pack("{s:s, s:s}", "role", acct->role, "hash", acct->hash);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;

    json_decref(root);
    return text;
}

static enum sess_err
put_account(struct sess_app *app, const char *name, const struct account *acct, bool must_be_new)
{
    struct sess_store *st = app->store;
    char *text;
    enum sess_err err;

    text = account_text(acct);
    if (!text) {
        err = sess__app_fail(app, SESS_ENOMEM, "out of memory");
        goto out;
    }
    err = st->ops->user_put(st, sess_str_c(name), sess_now_ms(app), sess_str_c(text), must_be_new);
    if (err == SESS_EEXISTS)
        sess__app_fail(app, err, "user \"%s\" already exists", name);
    else if (err != SESS_OK)
        sess__app_fail(app, err, "%s", st->errmsg);
out:
    free(text);
    return err;
}

enum sess_err
sess_user_add(struct sess_app *app, const char *name, const char *role, const char *password,
              size_t password_len, bool must_be_new)
{
    struct account acct = {0}, existing;
    enum sess_err err;

    err = check_name(app, name);
    if (err != SESS_OK)
        return err;
    if (!role_is_valid(role))
        return sess__app_fail(app, SESS_EBADINPUT, "role \"%.32s\": use 1 to %d of a-z 0-9 _ -",
                              role ? role : "", ROLE_MAX);
    err = check_password(app, password_len);
    if (err != SESS_OK)
        return err;
    /* Checked now, before the slow hash, and again where it is written. */
    if (must_be_new) {
        err = get_account(app, sess_str_c(name), &existing, NULL);
        if (err == SESS_OK)
            return sess__app_fail(app, SESS_EEXISTS, "user \"%s\" already exists", name);
        if (err != SESS_ENOTFOUND)
            return err;
    }
    memcpy(acct.role, role, strlen(role) + 1);
    err = hash_password(app, password, password_len, acct.hash);
    if (err == SESS_OK)
        err = put_account(app, name, &acct, must_be_new);
    return err;
}

enum sess_err
sess_user_passwd(struct sess_app *app, const char *name, const char *password, size_t password_len)
{
    struct account acct;
    enum sess_err err;

    err = check_name(app, name);
    if (err == SESS_OK)
        err = check_password(app, password_len);
    if (err == SESS_OK)
        err = get_account(app, sess_str_c(name), &acct, NULL);
    if (err == SESS_OK)
        err = hash_password(app, password, password_len, acct.hash);
    if (err == SESS_OK)
        err = put_account(app, name, &acct, false);
    return err;
}

enum sess_err
sess_user_del(struct sess_app *app, const char *name)
{
    struct sess_store *st = app->store;
    struct sess_str key = sess_str_c(name);
    enum sess_err err, ended;
    size_t count;

    app->warning[0] = '\0';
    if (!name_is_valid(key.ptr, key.len))
        return sess__app_fail(app, SESS_ENOTFOUND, "no user \"%.64s\"", name ? name : "");
    /* The account goes first, so no new login races the revocation. */
    err = st->ops->user_del(st, key, sess_now_ms(app));
    if (err != SESS_OK && err != SESS_ENOTFOUND)
        return sess__app_fail(app, err, "%s", st->errmsg);
    /* Sessions outlive a missing account if an earlier delete failed
     * halfway; end them either way. */
    st->warning[0] = '\0';
    ended = st->ops->destroy_owner(st, key, sess_now_ms(app), &count);
    memcpy(app->warning, st->warning, sizeof app->warning);
    if (ended != SESS_OK)
        return sess__app_fail(app, ended, "%s", st->errmsg);
    if (err == SESS_ENOTFOUND)
        return sess__app_fail(app, err, "no user \"%s\"", name);
    return SESS_OK;
}

/* Writes the account back with its new hash, only if it is still the one
 * that was read (`old`): a userdel or a new password since must win over
 * an upgrade made with the old one, never be undone by it. */
static void
rehash(struct sess_app *app, struct sess_str name, struct sess_str old, const struct account *acct)
{
    struct sess_store *st = app->store;
    char *text = account_text(acct);

    if (text)
        (void)st->ops->user_replace(st, name, sess_now_ms(app), old, sess_str_c(text));
    free(text);
}

/* The hash unknown names are checked against: made once per process, with
 * the limits real accounts are made with, so both cost the same. */
static enum sess_err
dummy_hash(struct sess_app *app, const char **hash)
{
    enum sess_err err;
    unsigned char noise[16];

    if (app->dummy_hash[0] == '\0') {
        randombytes_buf(noise, sizeof noise);
        err = hash_password(app, (const char *)noise, sizeof noise, app->dummy_hash);
        if (err != SESS_OK)
            return err;
    }
    *hash = app->dummy_hash;
    return SESS_OK;
}

enum sess_err
sess_user_verify(struct sess_app *app, const char *name, size_t name_len, const char *password,
                 size_t password_len, char role[33])
{
    struct account acct;
    struct sess_buf raw = {0};
    const char *hash, *dummy;
    bool is_known = false, is_match;
    enum sess_err err;

    role[0] = '\0';
    /* Made before the lookup, whatever its outcome: the first check of a
     * process must not be slower for one kind of name than the other. */
    err = dummy_hash(app, &dummy);
    if (err != SESS_OK)
        return err;
    hash = dummy;
    if (name_is_valid(name, name_len) && password_len <= SESS_PASSWORD_MAX) {
        err = get_account(app, (struct sess_str){name, name_len}, &acct, &raw);
        if (err == SESS_OK) {
            is_known = true;
            hash = acct.hash;
        } else if (err != SESS_ENOTFOUND && err != SESS_EBADINPUT) {
            goto out; /* the store is down: 503, the same for every name */
        }
    }
    is_match = crypto_pwhash_str_verify(hash, password ? password : "", password_len) == 0;
    if (!is_known || !is_match) {
        err = sess__app_fail(app, SESS_EFORBIDDEN, "bad credentials");
        goto out;
    }
    err = SESS_OK;
    memcpy(role, acct.role, strlen(acct.role) + 1);
    /* Accounts hashed under weaker limits than today's are upgraded on a
     * successful login; a failure here does not fail the login. */
    if (crypto_pwhash_str_needs_rehash(acct.hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE) == 1 &&
        hash_password(app, password, password_len, acct.hash) == SESS_OK)
        rehash(app, (struct sess_str){name, name_len}, (struct sess_str){raw.ptr, raw.len}, &acct);
out:
    if (raw.ptr)
        sodium_memzero(raw.ptr, raw.cap);
    sess__buf_free(&raw);
    return err;
}

bool
sess__user_exists(struct sess_app *app, struct sess_str name, enum sess_err *err)
{
    struct sess_store *st = app->store;
    struct sess_buf buf = {0};

    *err = name_is_valid(name.ptr, name.len) ? st->ops->user_get(st, name, sess_now_ms(app), &buf)
                                             : SESS_ENOTFOUND;
    if (buf.ptr)
        sodium_memzero(buf.ptr, buf.cap);
    sess__buf_free(&buf);
    if (*err == SESS_ENOTFOUND) {
        *err = SESS_OK;
        return false;
    }
    return *err == SESS_OK;
}

struct users_visit {
    sess_user_fn visit;
    void *arg;
};

static bool
visit_user(void *arg, struct sess_str name, struct sess_str value)
{
    struct users_visit *v = arg;
    struct sess_user_info info;
    char name_buf[SESS_USERNAME_MAX + 1];
    const char *role = "?";
    json_t *root;
    bool go_on;

    /* Only names users.c could have written; anything else was not made
     * through this API and is not an account. */
    if (!name_is_valid(name.ptr, name.len))
        return true;
    memcpy(name_buf, name.ptr, name.len);
    name_buf[name.len] = '\0';
    root = json_loadb(value.ptr, value.len, 0, NULL);
    if (json_is_string(json_object_get(root, "role")))
        role = json_string_value(json_object_get(root, "role"));
    info = (struct sess_user_info){.name = name_buf, .role = role};
    go_on = v->visit(v->arg, &info);
    json_decref(root);
    return go_on;
}

enum sess_err
sess_users_each(struct sess_app *app, sess_user_fn visit, void *arg)
{
    struct sess_store *st = app->store;
    struct users_visit v = {visit, arg};
    enum sess_err err;

    err = st->ops->user_each(st, sess_now_ms(app), visit_user, &v);
    if (err != SESS_OK)
        sess__app_fail(app, err, "%s", st->errmsg);
    return err;
}
