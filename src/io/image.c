/*
 * image.c - JPEG (libjpeg-turbo) and PNG (libpng) decoding into uint8 planes
 * with Pillow's conversions (see image.h for the exact rules).
 *
 * Both libraries report errors by calling a handler that must not return.
 * Ours format the message and longjmp back to the decoder, which frees what
 * it allocated and fails with the file named. Every piece of state that
 * outlives a longjmp lives in a job struct owned by the caller of the
 * function holding the setjmp, so no local variable is read after a jump.
 * Warnings are swallowed (a corrupt Huffman code decodes as Pillow decodes
 * it), except libjpeg's "premature end of file", which is an error (Pillow:
 * "image file is truncated"), also when only the EOI marker is missing.
 */
#include "image.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/file.h"

/* A progressive JPEG with more scans than this is refused (each scan costs a
 * pass over the coefficients; libjpeg-turbo's TJFLAG_LIMITSCANS uses 500). */
#define JPEG_MAX_SCANS 500

void rn_image_limits_default(rn_image_limits *lim) {
    lim->max_width = 16384;
    lim->max_height = 16384;
    lim->max_pixels = 100000000;
    lim->max_file_bytes = (int64_t)1 << 30;
}

void rn_image_free(rn_image *img) {
    if (!img)
        return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* ---------------------------------------------------------------------------
 * Pillow's conversions
 * ------------------------------------------------------------------------- */

static inline uint8_t clip8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* Pillow's MULDIV255: a * b / 255, rounded. */
static inline int muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* Pillow's rgb2l (L24). */
static inline uint8_t rgb_to_l(int r, int g, int b) {
    return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

rn_status rn_image_to_gray(rn_image *img) {
    if (!img || !img->pixels || (img->channels != 1 && img->channels != 3))
        return rn_fail(RN_ERR_ARG, "rn_image_to_gray: not an RGB or L image");
    if (img->channels == 1)
        return RN_OK;
    size_t n = (size_t)img->width * (size_t)img->height;
    uint8_t *r = img->pixels, *g = r + n, *b = g + n;
    for (size_t i = 0; i < n; i++)
        r[i] = rgb_to_l(r[i], g[i], b[i]);
    uint8_t *shrunk = realloc(img->pixels, n ? n : 1);
    if (shrunk)
        img->pixels = shrunk;
    img->channels = 1;
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Shared decoder state
 * ------------------------------------------------------------------------- */

typedef struct decode_job {
    const uint8_t *data;
    size_t len;
    const char *name;
    const rn_image_limits *lim;
    int header_only;
    /* results */
    int width, height;
    uint8_t *pixels;           /* (3, height, width), owned until handed out */
    uint8_t *row;              /* decoder-format row buffer(s) */
    rn_status status;          /* of a failure recorded with rn_fail */
    char msg[JMSG_LENGTH_MAX > 256 ? JMSG_LENGTH_MAX : 256];
} decode_job;

/* Checks the header's size against the limits and allocates the RGB planes. */
static rn_status job_begin(decode_job *job, const char *fmt, int64_t w, int64_t h) {
    const rn_image_limits *lim = job->lim;
    if (w <= 0 || h <= 0)
        return rn_fail(RN_ERR_FORMAT, "%s: %s header gives an empty image (%lld x %lld)",
                       job->name, fmt, (long long)w, (long long)h);
    if (w > lim->max_width || h > lim->max_height || w * h > lim->max_pixels)
        return rn_fail(RN_ERR_UNSUPPORTED,
                       "%s: %s image of %lld x %lld pixels exceeds the limit "
                       "(%d x %d, %lld pixels)",
                       job->name, fmt, (long long)w, (long long)h, lim->max_width,
                       lim->max_height, (long long)lim->max_pixels);
    job->width = (int)w;
    job->height = (int)h;
    if (job->header_only)
        return RN_OK;
    size_t bytes;
    if (!rn_size_mul((size_t)w, (size_t)h, &bytes) || !rn_size_mul(bytes, 3, &bytes))
        return rn_fail(RN_ERR_NOMEM, "%s: image size overflows", job->name);
    job->pixels = malloc(bytes);
    if (!job->pixels)
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu bytes for the pixels", job->name,
                       bytes);
    return RN_OK;
}

/* Pointers to row y of the three planes. */
static inline void job_planes(const decode_job *job, int y, uint8_t **r, uint8_t **g,
                              uint8_t **b) {
    size_t plane = (size_t)job->width * (size_t)job->height;
    *r = job->pixels + (size_t)y * (size_t)job->width;
    *g = *r + plane;
    *b = *g + plane;
}

/* ---------------------------------------------------------------------------
 * JPEG
 * ------------------------------------------------------------------------- */

typedef struct jpeg_job {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    decode_job *job;
    struct jpeg_progress_mgr progress;
    struct jpeg_decompress_struct cinfo;
    int created;
} jpeg_job;

static void jpeg_error_exit_cb(j_common_ptr cinfo) {
    jpeg_job *jj = (jpeg_job *)cinfo->err;
    cinfo->err->format_message(cinfo, jj->job->msg);
    longjmp(jj->jb, 1);
}

static void jpeg_output_message_cb(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_emit_message_cb(j_common_ptr cinfo, int level) {
    jpeg_job *jj = (jpeg_job *)cinfo->err;
    if (level >= 0)
        return; /* trace messages */
    cinfo->err->num_warnings++;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(jj->job->msg, sizeof jj->job->msg, "truncated (premature end of JPEG data)");
        longjmp(jj->jb, 1);
    }
}

static void jpeg_progress_cb(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor)
        return;
    jpeg_job *jj = (jpeg_job *)cinfo->err;
    if (((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        snprintf(jj->job->msg, sizeof jj->job->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(jj->jb, 1);
    }
}

/* Runs the libjpeg calls; returns 0 on success, 1 after a longjmp (message in
 * job->msg), 2 for a failure already recorded with rn_fail. */
static int jpeg_run(jpeg_job *jj) {
    decode_job *job = jj->job;
    j_decompress_ptr cinfo = &jj->cinfo;
    if (setjmp(jj->jb))
        return 1;
    jpeg_create_decompress(cinfo);
    jj->created = 1;
    cinfo->progress = &jj->progress;
    jpeg_mem_src(cinfo, job->data, (unsigned long)job->len);
    jpeg_read_header(cinfo, TRUE);

    int comps = cinfo->num_components;
    if (comps == 1)
        cinfo->out_color_space = JCS_GRAYSCALE;
    else if (comps == 3)
        cinfo->out_color_space = JCS_RGB;
    else if (comps == 4)
        cinfo->out_color_space = JCS_CMYK;
    else {
        job->status =
            rn_fail(RN_ERR_UNSUPPORTED, "%s: JPEG with %d components", job->name, comps);
        return 2;
    }
    if ((job->status = job_begin(job, "JPEG", cinfo->image_width, cinfo->image_height)))
        return 2;
    if (job->header_only)
        return 0;

    jpeg_start_decompress(cinfo);
    int oc = cinfo->output_components;
    if ((int)cinfo->output_width != job->width || (int)cinfo->output_height != job->height ||
        oc != (comps == 4 ? 4 : comps)) {
        job->status = rn_fail(RN_ERR_FORMAT, "%s: unexpected JPEG output geometry", job->name);
        return 2;
    }
    size_t w = (size_t)job->width;
    job->row = malloc(w * (size_t)oc);
    if (!job->row) {
        job->status = rn_fail(RN_ERR_NOMEM, "%s: out of memory", job->name);
        return 2;
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        int y = (int)cinfo->output_scanline;
        JSAMPROW rows[1] = {job->row};
        if (jpeg_read_scanlines(cinfo, rows, 1) != 1) {
            snprintf(job->msg, sizeof job->msg, "truncated (no data for row %d)", y);
            return 1;
        }
        uint8_t *r, *g, *b;
        job_planes(job, y, &r, &g, &b);
        const uint8_t *s = job->row;
        if (oc == 1) {
            memcpy(r, s, w);
            memcpy(g, s, w);
            memcpy(b, s, w);
        } else if (oc == 3) {
            for (size_t x = 0; x < w; x++) {
                r[x] = s[3 * x];
                g[x] = s[3 * x + 1];
                b[x] = s[3 * x + 2];
            }
        } else {
            /* Pillow reads 4-component JPEGs as "CMYK;I" (inverted), so its
             * C = 255 - c and nk = 255 - K = k for libjpeg's c and k. */
            for (size_t x = 0; x < w; x++) {
                int nk = s[4 * x + 3];
                r[x] = clip8(nk - muldiv255(255 - s[4 * x], nk));
                g[x] = clip8(nk - muldiv255(255 - s[4 * x + 1], nk));
                b[x] = clip8(nk - muldiv255(255 - s[4 * x + 2], nk));
            }
        }
    }
    jpeg_finish_decompress(cinfo); /* reads up to EOI: a missing EOI is truncation */
    return 0;
}

static rn_status decode_jpeg(decode_job *job) {
    jpeg_job *jj = calloc(1, sizeof *jj);
    if (!jj)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", job->name);
    jj->job = job;
    jj->cinfo.err = jpeg_std_error(&jj->pub);
    jj->pub.error_exit = jpeg_error_exit_cb;
    jj->pub.output_message = jpeg_output_message_cb;
    jj->pub.emit_message = jpeg_emit_message_cb;
    jj->progress.progress_monitor = jpeg_progress_cb;
    int rc = jpeg_run(jj);
    if (jj->created)
        jpeg_destroy_decompress(&jj->cinfo);
    free(jj);
    if (rc == 1)
        return rn_fail(RN_ERR_FORMAT, "%s: bad JPEG: %s", job->name, job->msg);
    return rc == 2 ? job->status : RN_OK;
}

/* ---------------------------------------------------------------------------
 * PNG
 * ------------------------------------------------------------------------- */

typedef struct png_job {
    decode_job *job;
    size_t pos;
    png_structp png;
    png_infop info;
    uint8_t palette[256][3];
} png_job;

static void png_error_cb(png_structp png, png_const_charp msg) {
    png_job *pj = png_get_error_ptr(png);
    snprintf(pj->job->msg, sizeof pj->job->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_cb(png_structp png, png_bytep out, size_t n) {
    png_job *pj = png_get_io_ptr(png);
    if (n > pj->job->len - pj->pos)
        png_error(png, "truncated (unexpected end of file)");
    memcpy(out, pj->job->data + pj->pos, n);
    pj->pos += n;
}

/* One decoded row (after libpng's transforms) into the RGB planes. */
static void png_store_row(png_job *pj, int y, const uint8_t *s, int channels, int depth,
                          int paletted) {
    decode_job *job = pj->job;
    size_t w = (size_t)job->width;
    uint8_t *r, *g, *b;
    job_planes(job, y, &r, &g, &b);
    if (paletted) {
        for (size_t x = 0; x < w; x++) {
            const uint8_t *c = pj->palette[s[x]];
            r[x] = c[0];
            g[x] = c[1];
            b[x] = c[2];
        }
    } else if (channels <= 2 && depth == 16) {
        /* Pillow opens 16-bit gray as "I" and clips it to 0..255. */
        for (size_t x = 0; x < w; x++) {
            const uint8_t *p = s + x * (size_t)channels * 2;
            int v = p[0] << 8 | p[1];
            r[x] = g[x] = b[x] = (uint8_t)(v > 255 ? 255 : v);
        }
    } else if (channels <= 2) {
        for (size_t x = 0; x < w; x++)
            r[x] = g[x] = b[x] = s[x * (size_t)channels];
    } else {
        for (size_t x = 0; x < w; x++) {
            const uint8_t *p = s + x * (size_t)channels;
            r[x] = p[0];
            g[x] = p[1];
            b[x] = p[2];
        }
    }
}

static int png_run(png_job *pj) {
    decode_job *job = pj->job;
    png_structp png = pj->png;
    png_infop info = pj->info;
    if (setjmp(png_jmpbuf(png)))
        return 1;
    png_set_read_fn(png, pj, png_read_cb);
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &color, &interlace, NULL, NULL);
    if ((job->status = job_begin(job, "PNG", w32, h32)))
        return 2;
    if (job->header_only)
        return 0;

    int paletted = color == PNG_COLOR_TYPE_PALETTE;
    if (paletted) {
        /* Pillow's palette starts as a gray ramp; PLTE overwrites its head. */
        for (int i = 0; i < 256; i++)
            pj->palette[i][0] = pj->palette[i][1] = pj->palette[i][2] = (uint8_t)i;
        png_colorp pal = NULL;
        int npal = 0;
        if (png_get_PLTE(png, info, &pal, &npal) == 0 || !pal) {
            png_error(png, "palette image without a PLTE chunk");
        }
        for (int i = 0; i < npal && i < 256; i++) {
            pj->palette[i][0] = pal[i].red;
            pj->palette[i][1] = pal[i].green;
            pj->palette[i][2] = pal[i].blue;
        }
        if (depth < 8)
            png_set_packing(png);
    } else if (color == PNG_COLOR_TYPE_GRAY && depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    } else if (depth == 16 && color != PNG_COLOR_TYPE_GRAY) {
        png_set_strip_16(png); /* Pillow's ";16B" raw modes keep the high byte */
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    size_t min_row = (size_t)job->width * (size_t)channels * (size_t)(out_depth == 16 ? 2 : 1);
    if (channels < 1 || channels > 4 || (out_depth != 8 && out_depth != 16) ||
        rowbytes < min_row || (paletted && channels != 1)) {
        job->status = rn_fail(RN_ERR_FORMAT, "%s: unexpected PNG row layout", job->name);
        return 2;
    }
    size_t rows = passes > 1 ? (size_t)job->height : 1, bytes;
    if (!rn_size_mul(rowbytes, rows, &bytes)) {
        job->status = rn_fail(RN_ERR_NOMEM, "%s: PNG row buffer overflows", job->name);
        return 2;
    }
    job->row = malloc(bytes);
    if (!job->row) {
        job->status = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu bytes for PNG rows",
                              job->name, bytes);
        return 2;
    }
    if (passes > 1) {
        /* Interlaced: every pass revisits every row, so keep them all. */
        for (int p = 0; p < passes; p++)
            for (int y = 0; y < job->height; y++)
                png_read_row(png, job->row + (size_t)y * rowbytes, NULL);
        for (int y = 0; y < job->height; y++)
            png_store_row(pj, y, job->row + (size_t)y * rowbytes, channels, out_depth, paletted);
    } else {
        for (int y = 0; y < job->height; y++) {
            png_read_row(png, job->row, NULL);
            png_store_row(pj, y, job->row, channels, out_depth, paletted);
        }
    }
    return 0;
}

static rn_status decode_png(decode_job *job) {
    png_job *pj = calloc(1, sizeof *pj);
    if (!pj)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", job->name);
    pj->job = job;
    pj->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, pj, png_error_cb, png_warning_cb);
    if (pj->png)
        pj->info = png_create_info_struct(pj->png);
    if (!pj->png || !pj->info) {
        png_destroy_read_struct(pj->png ? &pj->png : NULL, NULL, NULL);
        free(pj);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot create a PNG reader", job->name);
    }
    int rc = png_run(pj);
    png_destroy_read_struct(&pj->png, &pj->info, NULL);
    free(pj);
    if (rc == 1)
        return rn_fail(RN_ERR_FORMAT, "%s: bad PNG: %s", job->name, job->msg);
    return rc == 2 ? job->status : RN_OK;
}

/* ---------------------------------------------------------------------------
 * Format detection and entry points
 * ------------------------------------------------------------------------- */

static const char *sniff_other(const uint8_t *d, size_t n) {
    if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
        return "GIF";
    if (n >= 2 && !memcmp(d, "BM", 2))
        return "BMP";
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return "WebP";
    if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4)))
        return "TIFF";
    return NULL;
}

static rn_status decode_any(decode_job *job) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    rn_status st;
    if (job->len >= 3 && job->data[0] == 0xff && job->data[1] == 0xd8 && job->data[2] == 0xff) {
        st = decode_jpeg(job);
    } else if (job->len >= 8 && !memcmp(job->data, png_sig, 8)) {
        st = decode_png(job);
    } else {
        const char *other = sniff_other(job->data, job->len);
        if (other)
            return rn_fail(RN_ERR_UNSUPPORTED, "%s: %s images are not supported (JPEG and PNG are)",
                           job->name, other);
        return rn_fail(RN_ERR_FORMAT, "%s: not a JPEG or PNG file%s", job->name,
                       job->len == 0 ? " (empty)" : "");
    }
    free(job->row);
    job->row = NULL;
    if (st != RN_OK) {
        free(job->pixels);
        job->pixels = NULL;
    }
    return st;
}

static const rn_image_limits *limits_or_default(const rn_image_limits *lim,
                                                rn_image_limits *storage) {
    if (lim)
        return lim;
    rn_image_limits_default(storage);
    return storage;
}

rn_status rn_image_decode(const void *data, size_t len, const char *name, int channels,
                          const rn_image_limits *lim, rn_image *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_image_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!name)
        name = "<memory>";
    if (!data && len)
        return rn_fail(RN_ERR_ARG, "%s: data is NULL", name);
    if (channels != 1 && channels != 3)
        return rn_fail(RN_ERR_ARG, "%s: channels must be 1 or 3, not %d", name, channels);
    rn_image_limits storage;
    decode_job job = {.data = data, .len = len, .name = name};
    job.lim = limits_or_default(lim, &storage);
    RN_TRY(decode_any(&job));
    out->width = job.width;
    out->height = job.height;
    out->channels = 3;
    out->pixels = job.pixels;
    if (channels == 1)
        rn_image_to_gray(out);
    return RN_OK;
}

/* The file size lim allows (a negative limit allows none). */
static size_t file_limit(const rn_image_limits *lim) {
    return lim->max_file_bytes < 0 ? 0 : (uint64_t)lim->max_file_bytes > SIZE_MAX
                                             ? SIZE_MAX
                                             : (size_t)lim->max_file_bytes;
}

rn_status rn_image_read_channels(const char *path, int channels, const rn_image_limits *lim,
                                 rn_image *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_image_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return rn_fail(RN_ERR_ARG, "rn_image_read: path is NULL");
    rn_image_limits storage;
    lim = limits_or_default(lim, &storage);
    uint8_t *data;
    size_t len;
    RN_TRY(rn_file_read_limit(path, file_limit(lim), &data, &len));
    rn_status st = rn_image_decode(data, len, path, channels, lim, out);
    free(data);
    return st;
}

rn_status rn_image_read(const char *path, const rn_image_limits *lim, rn_image *out) {
    return rn_image_read_channels(path, 3, lim, out);
}

/* The probe's limits: the file size's, no bound on the sides (only the header is read). */
static void probe_limits(rn_image_limits *lim) {
    rn_image_limits_default(lim);
    lim->max_width = lim->max_height = 0x7fffffff;
    lim->max_pixels = INT64_MAX;
}

rn_status rn_image_probe_data(const void *data, size_t len, const char *name, const char **format,
                              int *width, int *height) {
    if (!data && len)
        return rn_fail(RN_ERR_ARG, "rn_image_probe_data: data is NULL");
    rn_image_limits lim;
    probe_limits(&lim);
    decode_job job = {.data = data, .len = len, .name = name ? name : "<memory>", .lim = &lim,
                      .header_only = 1};
    RN_TRY(decode_any(&job));
    if (format)
        *format = job.data[0] == 0xff ? "jpeg" : "png";
    if (width)
        *width = job.width;
    if (height)
        *height = job.height;
    return RN_OK;
}

rn_status rn_image_probe(const char *path, const char **format, int *width, int *height) {
    if (!path)
        return rn_fail(RN_ERR_ARG, "rn_image_probe: path is NULL");
    rn_image_limits lim;
    probe_limits(&lim);
    uint8_t *data;
    size_t len;
    RN_TRY(rn_file_read_limit(path, file_limit(&lim), &data, &len));
    rn_status st = rn_image_probe_data(data, len, path, format, width, height);
    free(data);
    return st;
}
