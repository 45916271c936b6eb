/* Fuzzes sess__json_load differentially: jansson's json_loadb(data, size, 0)
 * is its specification, so for every input both fail, or both give equal
 * values that dump to the same text (member order and the sign of -0.0
 * included). With "cookie" as the drop key the result must be json_loadb's
 * with that member deleted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_util.h"
#include "json_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_same(json_t *want, json_t *got)
{
    char *want_text, *got_text;

    if (want == NULL || got == NULL) {
        CHECK(want == got);
        return;
    }
    CHECK(json_equal(want, got));
    want_text = json_dumps(want, JSON_COMPACT);
    got_text = json_dumps(got, JSON_COMPACT);
    CHECK(want_text != NULL && got_text != NULL);
    CHECK(strcmp(want_text, got_text) == 0);
    free(want_text);
    free(got_text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_error_t jerr;
    json_t *want = json_loadb(text, size, 0, &jerr);
    json_t *got = sess__json_load(text, size, NULL);

    check_same(want, got);
    json_decref(got);
    if (json_is_object(want))
        json_object_del(want, "cookie");
    got = sess__json_load(text, size, "cookie");
    check_same(want, got);
    json_decref(got);
    json_decref(want);
    return 0;
}
