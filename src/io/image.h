/*
 * image.h - decoding JPEG and PNG files into uint8 planes, as Pillow does.
 *
 * The result is what torchvision's pil_loader produces,
 * Image.open(path).convert("RGB") with Pillow 9.4, pixel for pixel:
 *   JPEG  libjpeg-turbo with its defaults (JDCT_ISLOW, fancy upsampling);
 *         gray -> replicated; YCbCr / RGB -> RGB; CMYK / YCCK -> Pillow's
 *         "CMYK;I" (every 4-component JPEG is taken as Adobe-inverted) then
 *         Pillow's cmyk2rgb. EXIF orientation is ignored (as pil_loader).
 *   PNG   gray 1/2/4-bit scaled by bit replication; gray 16-bit clipped to
 *         0..255 (Pillow's "I" -> "RGB"); other 16-bit images keep the high
 *         byte; palettes looked up (indices past the palette give gray,
 *         index i as (i, i, i): Pillow's palette starts as a gray ramp);
 *         alpha and tRNS dropped, no compositing, gAMA ignored.
 * With channels == 1 the RGB result goes through Pillow's convert("L"):
 *   L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16
 * which is the identity on gray sources.
 *
 * The format is recognised by content (magic bytes), not by name. Width and
 * height are checked against the limits from the header, before any pixel
 * memory is allocated, so decompression bombs are refused cheaply. Corrupt or
 * truncated files fail with a message naming the file; libjpeg and libpng
 * never print and never exit.
 */
#ifndef RN_IO_IMAGE_H
#define RN_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

/* An 8-bit image in planar (channels, height, width) order, C-contiguous:
 * plane c starts at pixels + c * height * width. channels is 1 (L) or 3 (RGB). */
typedef struct rn_image {
    int width, height, channels;
    uint8_t *pixels;
} rn_image;

typedef struct rn_image_limits {
    int max_width;             /* default 16384 */
    int max_height;            /* default 16384 */
    int64_t max_pixels;        /* width * height; default 100,000,000 */
    int64_t max_file_bytes;    /* default 1 GiB */
} rn_image_limits;

/* Fills *lim with the defaults above. */
void rn_image_limits_default(rn_image_limits *lim);

/* Decodes the JPEG or PNG file at `path` into *out as RGB (channels 3).
 * lim == NULL uses the defaults. On failure *out is zeroed and the message
 * names the file. Free the result with rn_image_free. */
rn_status rn_image_read(const char *path, const rn_image_limits *lim, rn_image *out);

/* As rn_image_read with channels 3 (RGB) or 1 (Pillow's "L"). */
rn_status rn_image_read_channels(const char *path, int channels, const rn_image_limits *lim,
                                 rn_image *out);

/* Decodes an image held in memory; `name` is used in messages. */
rn_status rn_image_decode(const void *data, size_t len, const char *name, int channels,
                          const rn_image_limits *lim, rn_image *out);

/* Reads only the header: format ("jpeg" or "png"), width and height, with
 * the same validation of the signature (not of the limits). */
rn_status rn_image_probe(const char *path, const char **format, int *width, int *height);

/* As rn_image_probe, on an image held in memory; `name` is used in messages. */
rn_status rn_image_probe_data(const void *data, size_t len, const char *name, const char **format,
                              int *width, int *height);

/* Replaces an RGB image by its Pillow convert("L"); no-op on 1 channel. */
rn_status rn_image_to_gray(rn_image *img);

void rn_image_free(rn_image *img);

#endif
