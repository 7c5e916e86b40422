/*
 * png_write.c - PNG encoding through libpng into a growing buffer.
 *
 * libpng reports errors by longjmp; the jump lands in encode_rows, the only
 * function holding the setjmp, and no local variable is read after it.
 */
#include "io/png_write.h"

#include <png.h>
#include <setjmp.h>
#include <string.h>

#include "core/status.h"

typedef struct png_out {
    json_buf *buf;
    char msg[160];
} png_out;

static void write_cb(png_structp png, png_bytep data, png_size_t len) {
    png_out *o = png_get_io_ptr(png);
    json_buf_put(o->buf, (const char *)data, len);
    if (o->buf->failed)
        png_error(png, "out of memory for the PNG output");
}

static void flush_cb(png_structp png) {
    (void)png;
}

static void error_cb(png_structp png, png_const_charp msg) {
    png_out *o = png_get_error_ptr(png);
    snprintf(o->msg, sizeof o->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void warning_cb(png_structp png, png_const_charp msg) {
    (void)png, (void)msg;
}

/* Returns 0 on success, 1 after a libpng error. */
static int encode_rows(png_structp png, png_infop info, png_out *o, const uint8_t *pixels,
                       int width, int height, int channels) {
    if (setjmp(png_jmpbuf(png)))
        return 1;
    png_set_write_fn(png, o, write_cb, flush_cb);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    return 0;
}

rn_status rn_png_encode(const uint8_t *pixels, int width, int height, int channels, json_buf *out) {
    if (!pixels || !out)
        return rn_fail(RN_ERR_ARG, "rn_png_encode: NULL argument");
    if (width < 1 || width > 65535 || height < 1 || height > 65535 || (channels != 1 && channels != 3))
        return rn_fail(RN_ERR_ARG, "rn_png_encode: cannot encode %dx%d with %d channels", width, height,
                       channels);
    png_out o = {out, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &o, error_cb, warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        return rn_fail(RN_ERR_NOMEM, "cannot create a PNG writer");
    }
    int failed = encode_rows(png, info, &o, pixels, width, height, channels);
    png_destroy_write_struct(&png, &info);
    if (out->failed)
        return rn_fail(RN_ERR_NOMEM, "out of memory for a %dx%d PNG", width, height);
    if (failed)
        return rn_fail(RN_ERR_FORMAT, "PNG encoding failed: %s", o.msg);
    return RN_OK;
}

void rn_base64_append(json_buf *out, const void *data, size_t len) {
    static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = data;
    char quad[4];
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        quad[0] = ALPHABET[v >> 18 & 63];
        quad[1] = ALPHABET[v >> 12 & 63];
        quad[2] = i + 1 < len ? ALPHABET[v >> 6 & 63] : '=';
        quad[3] = i + 2 < len ? ALPHABET[v & 63] : '=';
        json_buf_put(out, quad, 4);
    }
}
