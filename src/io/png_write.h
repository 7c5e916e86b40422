/*
 * png_write.h - encoding 8-bit images as PNG (libpng), and base64 for data URIs.
 */
#ifndef RN_IO_PNG_WRITE_H
#define RN_IO_PNG_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "io/json.h"
#include "resnet.h"

/* Appends the PNG encoding of an 8-bit image to *out. pixels are
 * interleaved rows, top row first: (height, width, channels) with channels
 * 1 (gray) or 3 (RGB). Fails (RN_ERR_ARG) on a size outside 1..65535 or
 * another channel count, (RN_ERR_NOMEM) when *out cannot grow, and
 * (RN_ERR_FORMAT) if libpng reports an error; *out may then hold a partial
 * encoding, which the caller discards. */
rn_status rn_png_encode(const uint8_t *pixels, int width, int height, int channels, json_buf *out);

/* Appends the base64 encoding (RFC 4648, with padding) of data[0..len). */
void rn_base64_append(json_buf *out, const void *data, size_t len);

#endif
