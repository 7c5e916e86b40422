/*
 * json.h - a small strict JSON parser (RFC 8259), enough for file headers,
 * and a string builder for writing them.
 *
 * json_parse() builds a tree from a buffer and fails, naming the byte
 * offset, on anything that is not strict JSON: trailing commas, comments,
 * single quotes, unquoted keys, control characters or invalid UTF-8 in
 * strings, lone surrogates, leading zeros, NaN/Infinity, trailing garbage.
 * Beyond the RFC it rejects what a header reader should not have to handle:
 *   - duplicate keys in any object,
 *   - "\u0000" in strings (strings come back as NUL-terminated C strings),
 *   - integer literals outside int64 (numbers with a fraction or an exponent
 *     are accepted but flagged is_int = 0, their value is not kept),
 *   - nesting deeper than JSON_MAX_DEPTH, more than JSON_MAX_VALUES values.
 * Every offset (in messages and in json_value.offset) is the byte offset in
 * the input plus `base`, so a header parsed at byte 8 of a file reports
 * file offsets.
 */
#ifndef RN_IO_JSON_H
#define RN_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

#define JSON_MAX_DEPTH 64
#define JSON_MAX_VALUES (1u << 22)

typedef enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
    json_type type;
    int is_int;              /* JSON_NUMBER: an integer literal (no '.', no exponent) */
    size_t offset;           /* where the value starts: input offset + base */
    size_t count;            /* JSON_STRING: bytes; JSON_ARRAY / JSON_OBJECT: entries */
    union {
        int boolean;         /* JSON_BOOL */
        int64_t integer;     /* JSON_NUMBER with is_int */
        char *string;        /* JSON_STRING: UTF-8, NUL-terminated */
        json_value *items;   /* JSON_ARRAY: count values */
        json_member *members;/* JSON_OBJECT: count members, in input order */
    };
};

struct json_member {
    char *key;               /* UTF-8, NUL-terminated, unique within the object */
    size_t offset;           /* where the key starts: input offset + base */
    json_value value;
};

/* Parses text[0..len) as one JSON value surrounded by optional whitespace.
 * On success *out holds the tree (free with json_free). On failure *out is
 * a JSON_NULL with nothing to free, and rn_last_error() reads
 * "invalid JSON at byte N: <reason>" (RN_ERR_FORMAT) or names the
 * allocation that failed (RN_ERR_NOMEM). */
rn_status json_parse(const char *text, size_t len, size_t base, json_value *out);

/* Frees everything under v and leaves it a JSON_NULL. NULL is a no-op. */
void json_free(json_value *v);

/* The member of object `obj` named `key`, or NULL (also if obj is not an
 * object). Linear in the number of members. */
const json_value *json_get(const json_value *obj, const char *key);

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0
 * when it is invalid: overlong, surrogate, beyond U+10FFFF, truncated. */
size_t json_utf8_seq(const unsigned char *s, size_t n);

/* 1 if s[0..n) is valid UTF-8, else 0. */
int json_utf8_valid(const char *s, size_t n);

/* Copies s into out (capacity cap >= 4) for a one-line message: bytes
 * outside printable ASCII become '?', and a long s is cut with "...". */
void json_printable(char *out, size_t cap, const char *s);

/* ---------------------------------------------------------------------------
 * Writing: a growing buffer. An allocation failure sets `failed` and makes
 * every later call a no-op, so a writer checks once at the end.
 * ------------------------------------------------------------------------- */

typedef struct json_buf {
    char *data;              /* NUL-terminated while !failed */
    size_t len, cap;
    int failed;
} json_buf;

void json_buf_put(json_buf *b, const char *s, size_t n);
void json_buf_printf(json_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s as a quoted JSON string: '"', '\\' and control characters
 * escaped, other bytes copied (the caller checks s is valid UTF-8). */
void json_buf_string(json_buf *b, const char *s);
void json_buf_free(json_buf *b);

#endif
