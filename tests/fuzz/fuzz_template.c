/* Fuzzes the template compiler and renderer: the input becomes a page (and,
 * when its first byte is odd, the layout too) in a directory made once, and
 * is rendered with fixed vars. Beyond not crashing: errors leave the output
 * alone and say where, output stays bounded and NUL-terminated, and values
 * reach the page escaped unless the template asks for them raw. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sess_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUTPUT_MAX (8u << 20) /* TPL_OUTPUT_MAX, template/render.c */

/* Not assert(): these must hold in every build, NDEBUG or not. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Every var kind, with the characters escaping must catch in the strings. */
static const char vars_json[] =
    "{\"title\":\"<t>\",\"csrf\":\"a\\\"b'c`d&e\",\"theme\":\"dark\",\"lang\":\"\","
    "\"user\":{\"username\":\"<script>alert(1)</script>\",\"role\":\"admin\","
    "\"tags\":[\"<a>\",\"b\"],\"nested\":{\"deep\":{\"x\":1}}},"
    "\"n\":42,\"neg\":-1,\"r\":0.5,\"zero\":0,\"t\":true,\"f\":false,\"nil\":null,"
    "\"empty\":\"\",\"obj\":{},\"arr\":[],\"list\":[1,\"two\",{\"name\":\"<3>\"},[4],true,null],"
    "\"content\":\"'vars content'\"}";

/* Fixed files a fuzzed page can include; none holds a character that
 * escaping removes, so the invariant below can rely on it. */
static const struct {
    const char *name, *text;
} fixed_files[] = {
    {"layout.html", "L[{{title}}|{{{content}}}|{{#user}}{{>part}}{{/user}}]L"},
    {"part.html", "P({{username}}:{{.}}:{{#tags}}{{.}},{{/tags}})"},
    {"rec.html", "R{{>rec}}"},
};

struct fuzz_env {
    char dir[64];
    json_t *vars;
};

static struct fuzz_env env;

static void
put_file(const char *name, const void *data, size_t size)
{
    char path[PATH_MAX];
    size_t done = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "%s/%s", env.dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    while (done < size) {
        n = write(fd, (const char *)data + done, size - done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    close(fd);
}

static void
remove_dir(void)
{
    static const char *const names[] = {"page.html", "layout.html", "part.html", "rec.html"};
    char path[PATH_MAX];
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", env.dir, names[i]);
        unlink(path);
    }
    rmdir(env.dir);
    json_decref(env.vars);
}

static void
init_once(void)
{
    json_error_t jerr;

    if (env.vars)
        return;
    snprintf(env.dir, sizeof env.dir, "/tmp/fuzz_template.XXXXXX");
    if (!mkdtemp(env.dir))
        abort();
    env.vars = json_loads(vars_json, 0, &jerr);
    if (!env.vars)
        abort();
    atexit(remove_dir);
}

static bool
has(const uint8_t *data, size_t size, const char *needle)
{
    return memmem(data, size, needle, strlen(needle)) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sess_templates *tpl = NULL;
    char *out = NULL;
    size_t out_len = 0, out_cap = 0, i;
    char errmsg[SESS_ERRMSG_MAX];
    bool as_layout = size > 0 && (data[0] & 1);
    enum sess_err err;

    init_once();
    for (i = 0; i < sizeof fixed_files / sizeof fixed_files[0]; i++)
        put_file(fixed_files[i].name, fixed_files[i].text, strlen(fixed_files[i].text));
    put_file("page.html", data, size);
    if (as_layout)
        put_file("layout.html", data, size);

    /* A fresh set each time: rewrites within one clock tick keep the same
     * mtime, and the cache would rightly keep the old page. */
    if (sess_templates_open(&tpl, env.dir) != SESS_OK)
        abort();
    errmsg[0] = '\0';
    err = sess_templates_render(tpl, "page", env.vars, &out, &out_len, &out_cap, errmsg,
                                sizeof errmsg);
    if (err != SESS_OK) {
        CHECK(out_len == 0);
        CHECK(errmsg[0] != '\0');
        CHECK(err == SESS_EBADINPUT || err == SESS_ENOTFOUND || err == SESS_ETOOBIG);
    } else {
        CHECK(out_len <= OUTPUT_MAX);
        CHECK(out != NULL && out[out_len] == '\0');
        /* Without raw tags or those bytes in the template, nothing but
         * escaping stands between the vars' "<script>" and the output. */
        if (!as_layout && !has(data, size, "{{{") && !has(data, size, "{{&") &&
            !has(data, size, "<") && !has(data, size, ">") && !has(data, size, "\"") &&
            !has(data, size, "'") && !has(data, size, "`"))
            for (i = 0; i < out_len; i++)
                CHECK(out[i] == '\0' || !strchr("<>\"'`", out[i]));
    }
    free(out);
    sess_templates_close(tpl);
    return 0;
}
