/*
 * markup.h - text for HTML and SVG: escaping, and numbers written compactly.
 */
#ifndef RN_REPORT_MARKUP_H
#define RN_REPORT_MARKUP_H

#include <stdint.h>

#include "io/json.h"

/* Appends a string literal (only a literal compiles) to a json_buf. */
#define RN_PUT(buf, lit) json_buf_put((buf), "" lit, sizeof(lit) - 1)

/* Appends s with & < > " ' escaped as entities, control characters other
 * than tab and newline dropped, and bytes that are not valid UTF-8 replaced
 * by '?': the result is safe in element text and in quoted attributes. */
void rn_markup_escape(json_buf *out, const char *s);

/* Appends v with at most `decimals` decimals and no trailing zeros
 * ("12", "0.5", "-3.25"); -0 is written as 0. */
void rn_markup_number(json_buf *out, double v, int decimals);

/* The next code point of UTF-8 text at *s, advancing *s; an invalid byte
 * gives '?' and advances by one. *s must not point at the terminating NUL. */
uint32_t rn_utf8_next(const char **s);

#endif
