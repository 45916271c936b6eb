/* A JSON loader for stored session records, several times cheaper than
 * jansson's json_loadb (whose lexer pulls the text one byte at a time
 * through a callback) and answering exactly as it does. Internal to lib/
 * (session.c). */
#ifndef SESS_JSON_LOAD_H
#define SESS_JSON_LOAD_H

#include <stddef.h>

#include <jansson.h>

/* Parses the `len` bytes at `text` (no terminating NUL needed) as
 * json_loadb(text, len, 0, ...) of jansson 2.14 does: NULL wherever it
 * fails (bad syntax, bad UTF-8, \u0000, integer or real overflow, nesting
 * past JSON_PARSER_MAX_DEPTH, out of memory), else a new reference equal
 * to its result, member order included. When `drop_key` is not NULL and the
 * top-level value is an object, every member of it named `drop_key` is
 * checked but left out unbuilt, as if json_object_del() had removed it. */
json_t *sess__json_load(const char *text, size_t len, const char *drop_key);

#endif
