/*
 * test_image.c - image decoding (src/io/image.c) and the torchvision
 * transforms (src/data/transform.c).
 *
 *   test_image                       run the tests; the last line reads
 *                                    "test_image: N passed, M failed"
 *   test_image --decode IN OUT.npy [--gray]
 *                                    write the decoded image, float32 (C, H, W), 0..255
 *   test_image --preprocess IN OUT.npy [--resize N] [--crop N] [--gray]
 *                                    write the ImageNet eval tensor, float32 (C, H, W)
 *
 * The tests: PNG files built here with zlib (every color type and bit depth,
 * interlaced, palettes) decoded exactly; JPEG files encoded here with libjpeg
 * decoded within a tolerance; every truncation and a few hundred byte flips
 * refused or decoded without a crash and without a byte on stderr; the size
 * limits refusing bombs from the header; then the Pillow corpus of
 * tools/make_test_images.py (when /usr/bin/python3 with PIL is there)
 * compared to PIL's own decoding exactly. (The transforms' own tests:
 * test_transform.c.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <jpeglib.h>
#include <zlib.h>

#include "check.h"
#include "data/transform.h"
#include "io/image.h"
#include "resnet.h"

static char tmpdir[256];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------
 * stderr capture: the library must never print
 * ------------------------------------------------------------------------- */

static int saved_stderr = -1;
static char stderr_path[300];

static void stderr_capture_begin(void) {
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr.txt", tmpdir);
    fflush(stderr);
    saved_stderr = dup(2);
    FILE *f = fopen(stderr_path, "wb");
    if (f) {
        dup2(fileno(f), 2);
        fclose(f);
    }
}

/* Returns the number of bytes written to stderr since the capture began. */
static long stderr_capture_end(void) {
    fflush(stderr);
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
        saved_stderr = -1;
    }
    FILE *f = fopen(stderr_path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* ---------------------------------------------------------------------------
 * A PNG writer (zlib) and a JPEG writer (libjpeg) for in-memory files
 * ------------------------------------------------------------------------- */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u32(buf *b, uint32_t v) {
    unsigned char be[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v};
    buf_put(b, be, 4);
}

static void png_chunk(buf *b, const char *type, const void *data, size_t n) {
    put_u32(b, (uint32_t)n);
    buf_put(b, type, 4);
    if (n)
        buf_put(b, data, n);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n)
        crc = crc32(crc, data, (uInt)n);
    put_u32(b, (uint32_t)crc);
}

static const int adam7[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

/* samples: (h, w, c) values < 2^depth. Returns a PNG file (caller frees b.p). */
static buf make_png(const int *samples, int w, int h, int c, int depth, int color,
                    const unsigned char *plte, int plte_n, int interlace) {
    buf raw = {0}, out = {0};
    int passes = interlace ? 7 : 1;
    for (int p = 0; p < passes; p++) {
        int x0 = interlace ? adam7[p][0] : 0, y0 = interlace ? adam7[p][1] : 0;
        int dx = interlace ? adam7[p][2] : 1, dy = interlace ? adam7[p][3] : 1;
        if (x0 >= w || y0 >= h)
            continue;
        for (int y = y0; y < h; y += dy) {
            unsigned char filter = 0, acc = 0;
            int bits = 0;
            buf_put(&raw, &filter, 1);
            for (int x = x0; x < w; x += dx)
                for (int k = 0; k < c; k++) {
                    int v = samples[((size_t)y * w + x) * c + k];
                    if (depth == 16) {
                        unsigned char be[2] = {(unsigned char)(v >> 8), (unsigned char)v};
                        buf_put(&raw, be, 2);
                    } else if (depth == 8) {
                        unsigned char u = (unsigned char)v;
                        buf_put(&raw, &u, 1);
                    } else {
                        acc |= (unsigned char)(v << (8 - depth - bits));
                        bits += depth;
                        if (bits == 8) {
                            buf_put(&raw, &acc, 1);
                            acc = 0;
                            bits = 0;
                        }
                    }
                }
            if (bits)
                buf_put(&raw, &acc, 1);
        }
    }
    uLongf zlen = compressBound(raw.len);
    unsigned char *z = malloc(zlen);
    compress2(z, &zlen, raw.p, raw.len, 6);
    buf_put(&out, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13] = {0};
    ihdr[0] = (unsigned char)(w >> 24), ihdr[1] = (unsigned char)(w >> 16);
    ihdr[2] = (unsigned char)(w >> 8), ihdr[3] = (unsigned char)w;
    ihdr[4] = (unsigned char)(h >> 24), ihdr[5] = (unsigned char)(h >> 16);
    ihdr[6] = (unsigned char)(h >> 8), ihdr[7] = (unsigned char)h;
    ihdr[8] = (unsigned char)depth, ihdr[9] = (unsigned char)color;
    ihdr[12] = (unsigned char)interlace;
    png_chunk(&out, "IHDR", ihdr, 13);
    if (plte)
        png_chunk(&out, "PLTE", plte, (size_t)plte_n * 3);
    png_chunk(&out, "IDAT", z, zlen);
    png_chunk(&out, "IEND", NULL, 0);
    free(z);
    free(raw.p);
    return out;
}

/* rgb: (h, w, comps) interleaved; comps 1 or 3. */
static buf make_jpeg(const unsigned char *pix, int w, int h, int comps, int quality,
                     int progressive) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    unsigned char *mem = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&ci, &mem, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    if (progressive)
        jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)ci.next_scanline * (size_t)w * (size_t)comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    buf b = {mem, len, len};
    return b;
}

/* ---------------------------------------------------------------------------
 * PNG decoding, built here
 * ------------------------------------------------------------------------- */

static uint8_t pil_l(int r, int g, int b) {
    return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

/* Decodes png and compares with the expected RGB (h, w, 3). */
static void expect_png(const char *what, buf png, const uint8_t *want, int w, int h) {
    rn_image img;
    rn_status st = rn_image_decode(png.p, png.len, what, 3, NULL, &img);
    CHECK(st == RN_OK, "%s: decode failed: %s", what, rn_last_error());
    if (st != RN_OK)
        return;
    CHECK(img.width == w && img.height == h && img.channels == 3, "%s: shape %dx%dx%d", what,
          img.width, img.height, img.channels);
    int bad = 0;
    size_t plane = (size_t)w * (size_t)h;
    for (size_t i = 0; i < plane && img.width == w && img.height == h; i++)
        for (int c = 0; c < 3; c++)
            bad += img.pixels[c * plane + i] != want[i * 3 + c];
    CHECK(bad == 0, "%s: %d samples differ", what, bad);
    rn_image gray;
    st = rn_image_decode(png.p, png.len, what, 1, NULL, &gray);
    CHECK(st == RN_OK && gray.channels == 1, "%s: gray decode: %s", what, rn_last_error());
    if (st == RN_OK) {
        bad = 0;
        for (size_t i = 0; i < plane; i++)
            bad += gray.pixels[i] != pil_l(want[i * 3], want[i * 3 + 1], want[i * 3 + 2]);
        CHECK(bad == 0, "%s: %d gray samples differ", what, bad);
        rn_image_free(&gray);
    }
    rn_image_free(&img);
}

static void test_png_built(void) {
    const int w = 13, h = 7;
    int *s = malloc(sizeof(int) * w * h * 4);
    uint8_t *want = malloc((size_t)w * h * 3);
    char what[64];
    for (int interlace = 0; interlace <= 1; interlace++) {
        /* gray 1, 2, 4, 8 bits: bit replication */
        static const int depths[4] = {1, 2, 4, 8};
        for (int d = 0; d < 4; d++) {
            int depth = depths[d], maxv = (1 << depth) - 1;
            for (int i = 0; i < w * h; i++) {
                s[i] = (i * 7 + 3) % (maxv + 1);
                want[i * 3] = want[i * 3 + 1] = want[i * 3 + 2] = (uint8_t)(s[i] * 255 / maxv);
            }
            buf png = make_png(s, w, h, 1, depth, 0, NULL, 0, interlace);
            snprintf(what, sizeof what, "gray%d%s", depth, interlace ? " interlaced" : "");
            expect_png(what, png, want, w, h);
            free(png.p);
        }
        /* gray 16: clipped to 255 as Pillow's "I" -> "RGB" */
        for (int i = 0; i < w * h; i++) {
            s[i] = (i * 2731) % 65536;
            want[i * 3] = want[i * 3 + 1] = want[i * 3 + 2] = (uint8_t)(s[i] > 255 ? 255 : s[i]);
        }
        s[0] = 200;
        want[0] = want[1] = want[2] = 200;
        buf png = make_png(s, w, h, 1, 16, 0, NULL, 0, interlace);
        expect_png(interlace ? "gray16 interlaced" : "gray16", png, want, w, h);
        free(png.p);
        /* 8 and 16-bit RGB, RGBA, gray+alpha: alpha dropped, 16 bits keep the high byte */
        for (int depth = 8; depth <= 16; depth += 8) {
            for (int color = 2; color <= 6; color += 2) {
                int c = color == 2 ? 3 : color == 4 ? 2 : 4;
                for (int i = 0; i < w * h; i++)
                    for (int k = 0; k < c; k++)
                        s[i * c + k] = ((i * 37 + k * 101) * (depth == 16 ? 251 : 1)) %
                                       (1 << depth);
                for (int i = 0; i < w * h; i++)
                    for (int k = 0; k < 3; k++) {
                        int v = s[i * c + (c <= 2 ? 0 : k)];
                        want[i * 3 + k] = (uint8_t)(depth == 16 ? v >> 8 : v);
                    }
                png = make_png(s, w, h, c, depth, color, NULL, 0, interlace);
                snprintf(what, sizeof what, "color%d depth%d%s", color, depth,
                         interlace ? " interlaced" : "");
                expect_png(what, png, want, w, h);
                free(png.p);
            }
        }
        /* palette, 2/4/8 bits; indices past the palette read Pillow's gray ramp */
        unsigned char plte[5 * 3] = {10, 20, 30, 200, 100, 0, 0, 0, 255, 7, 8, 9, 255, 255, 255};
        for (int depth = 2; depth <= 8; depth *= 2) {
            int maxi = (1 << depth) - 1;
            for (int i = 0; i < w * h; i++) {
                s[i] = (i * 5) % (maxi + 1);
                for (int k = 0; k < 3; k++)
                    want[i * 3 + k] = s[i] < 5 ? plte[s[i] * 3 + k] : (uint8_t)s[i];
            }
            png = make_png(s, w, h, 1, depth, 3, plte, 5, interlace);
            snprintf(what, sizeof what, "palette%d%s", depth, interlace ? " interlaced" : "");
            expect_png(what, png, want, w, h);
            free(png.p);
        }
    }
    /* 1 x 1 and a tall 1-pixel-wide image */
    s[0] = 42;
    want[0] = want[1] = want[2] = 42;
    buf png = make_png(s, 1, 1, 1, 8, 0, NULL, 0, 0);
    expect_png("1x1", png, want, 1, 1);
    free(png.p);
    free(s);
    free(want);
}

/* ---------------------------------------------------------------------------
 * JPEG decoding, encoded here
 * ------------------------------------------------------------------------- */

static void test_jpeg_built(void) {
    const int w = 45, h = 31;
    unsigned char *pix = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = pix + ((size_t)y * w + x) * 3;
            p[0] = (unsigned char)(x * 5);
            p[1] = (unsigned char)(y * 8);
            p[2] = (unsigned char)(128 + 60 * sin(x * 0.3));
        }
    for (int prog = 0; prog <= 1; prog++) {
        buf j = make_jpeg(pix, w, h, 3, 98, prog);
        rn_image img;
        rn_status st = rn_image_decode(j.p, j.len, "rgb.jpg", 3, NULL, &img);
        CHECK(st == RN_OK, "jpeg rgb (progressive %d): %s", prog, rn_last_error());
        if (st == RN_OK) {
            CHECK(img.width == w && img.height == h && img.channels == 3, "jpeg shape");
            double err = 0;
            size_t plane = (size_t)w * h;
            for (size_t i = 0; i < plane; i++)
                for (int c = 0; c < 3; c++)
                    err += fabs((double)img.pixels[c * plane + i] - pix[i * 3 + c]);
            err /= (double)plane * 3;
            CHECK(err < 3.0, "jpeg rgb mean abs error %.2f", err);
            rn_image_free(&img);
        }
        free(j.p);
    }
    /* grayscale JPEG: replicated into R = G = B, identity under "L" */
    unsigned char *g = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        g[i] = (unsigned char)(i % 251);
    buf j = make_jpeg(g, w, h, 1, 100, 0);
    rn_image img, gray;
    rn_status st = rn_image_decode(j.p, j.len, "gray.jpg", 3, NULL, &img);
    rn_status st1 = rn_image_decode(j.p, j.len, "gray.jpg", 1, NULL, &gray);
    CHECK(st == RN_OK && st1 == RN_OK, "gray jpeg: %s", rn_last_error());
    if (st == RN_OK && st1 == RN_OK) {
        size_t plane = (size_t)w * h;
        int same = 1;
        for (size_t i = 0; i < plane; i++)
            same &= img.pixels[i] == img.pixels[plane + i] &&
                    img.pixels[i] == img.pixels[2 * plane + i] && img.pixels[i] == gray.pixels[i];
        CHECK(same, "gray jpeg: planes differ");
        rn_image_free(&img);
        rn_image_free(&gray);
    }
    free(j.p);
    free(g);
    free(pix);
}

/* ---------------------------------------------------------------------------
 * Robustness: truncations, byte flips, limits, no stderr
 * ------------------------------------------------------------------------- */

static void truncations_and_flips(const char *what, buf file) {
    int consistent = 1, ok_truncated = 0, bad_msg = 0;
    for (size_t n = 0; n < file.len; n += (n < 200 ? 1 : 7)) {
        rn_image img;
        rn_status st = rn_image_decode(file.p, n, what, 3, NULL, &img);
        /* Pillow (and so this decoder) accepts a PNG whose IEND chunk is
         * missing or cut; any other truncation is an error. */
        int png_iend = file.p[0] == 0x89 && n >= file.len - 12;
        if (st == RN_OK) {
            ok_truncated += !png_iend;
            rn_image_free(&img);
        } else if (!strstr(rn_last_error(), what)) {
            bad_msg++;
        }
        consistent &= st == RN_OK || (img.pixels == NULL && img.width == 0);
    }
    CHECK(ok_truncated == 0, "%s: %d truncated files decoded", what, ok_truncated);
    CHECK(bad_msg == 0, "%s: %d messages without the name", what, bad_msg);
    unsigned char *copy = malloc(file.len);
    uint32_t state = 12345;
    for (int t = 0; t < 300; t++) {
        memcpy(copy, file.p, file.len);
        for (int k = 0; k < 1 + t % 4; k++) {
            state = state * 1664525u + 1013904223u;
            size_t at = (state >> 8) % file.len;
            copy[at] ^= (unsigned char)(1 + (state >> 24) % 255);
        }
        rn_image img;
        if (rn_image_decode(copy, file.len, what, t % 2 ? 1 : 3, NULL, &img) == RN_OK) {
            consistent &= img.pixels != NULL && img.width > 0;
            rn_image_free(&img);
        } else {
            consistent &= img.pixels == NULL;
        }
    }
    CHECK(consistent, "%s: byte flips left an inconsistent result", what);
    free(copy);
}

static void test_robustness(void) {
    const int w = 40, h = 23;
    int *s = malloc(sizeof(int) * w * h * 3);
    unsigned char *pix = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        pix[i] = (unsigned char)(s[i] = (i * 31) % 256);
    buf png = make_png(s, w, h, 3, 8, 2, NULL, 0, 0);
    buf ipng = make_png(s, w, h, 3, 8, 2, NULL, 0, 1);
    buf jpg = make_jpeg(pix, w, h, 3, 90, 0);
    buf pjpg = make_jpeg(pix, w, h, 3, 90, 1);
    stderr_capture_begin();
    truncations_and_flips("t.png", png);
    truncations_and_flips("ti.png", ipng);
    truncations_and_flips("t.jpg", jpg);
    truncations_and_flips("tp.jpg", pjpg);
    long n = stderr_capture_end();
    CHECK(n == 0, "the decoders wrote %ld bytes to stderr", n);

    /* limits from the header */
    rn_image_limits lim;
    rn_image_limits_default(&lim);
    CHECK(lim.max_width == 16384 && lim.max_height == 16384 && lim.max_pixels == 100000000,
          "default limits");
    rn_image img;
    lim.max_width = 39;
    CHECK(rn_image_decode(png.p, png.len, "w.png", 3, &lim, &img) == RN_ERR_UNSUPPORTED,
          "max_width refused: %s", rn_last_error());
    CHECK(rn_image_decode(jpg.p, jpg.len, "w.jpg", 3, &lim, &img) == RN_ERR_UNSUPPORTED,
          "max_width refused (jpeg)");
    lim.max_width = 40;
    lim.max_height = 22;
    CHECK(rn_image_decode(png.p, png.len, "h.png", 3, &lim, &img) == RN_ERR_UNSUPPORTED,
          "max_height refused");
    lim.max_height = 23;
    lim.max_pixels = 40 * 23 - 1;
    CHECK(rn_image_decode(jpg.p, jpg.len, "p.jpg", 3, &lim, &img) == RN_ERR_UNSUPPORTED,
          "max_pixels refused");
    lim.max_pixels = 40 * 23;
    CHECK(rn_image_decode(jpg.p, jpg.len, "p.jpg", 3, &lim, &img) == RN_OK, "at the limit");
    rn_image_free(&img);
    CHECK(strstr(rn_last_error(), "p.jpg") != NULL, "message names the file");

    /* argument errors and file errors */
    CHECK(rn_image_decode(png.p, png.len, "c.png", 2, NULL, &img) == RN_ERR_ARG, "channels 2");
    CHECK(rn_image_decode(NULL, 0, "e.png", 3, NULL, &img) == RN_ERR_FORMAT, "empty buffer");
    CHECK(rn_image_read("/nonexistent/x.png", NULL, &img) == RN_ERR_IO &&
              strstr(rn_last_error(), "/nonexistent/x.png"),
          "missing file: %s", rn_last_error());
    CHECK(rn_image_read(tmpdir, NULL, &img) != RN_OK, "a directory");
    CHECK(rn_image_decode("GIF89a\1\0\1\0", 10, "a.gif", 3, NULL, &img) == RN_ERR_UNSUPPORTED,
          "GIF named unsupported");
    free(png.p);
    free(ipng.p);
    free(jpg.p);
    free(pjpg.p);
    free(pix);
    free(s);
}

/* ---------------------------------------------------------------------------
 * The Pillow corpus (tools/make_test_images.py)
 * ------------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted regular file names of dir (NULL-terminated; free each and the array). */
static char **list_dir(const char *dir, int *count) {
    DIR *d = opendir(dir);
    *count = 0;
    if (!d)
        return NULL;
    char **names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "ref") || !strcmp(e->d_name, "broken") ||
            !strcmp(e->d_name, "large") || has_suffix(e->d_name, ".txt"))
            continue;
        names = realloc(names, sizeof *names * (size_t)(*count + 1));
        names[(*count)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)*count, sizeof *names, cmp_names);
    return names;
}

/* Compares a decoded image with PIL's reference .npy (float32 (C, H, W)). */
static int compare_ref(const rn_image *img, const char *ref_path, long *bad_out) {
    float *ref;
    int ndim;
    int64_t shape[RN_NPY_MAX_DIMS];
    if (rn_npy_read(ref_path, &ref, &ndim, shape) != RN_OK)
        return 0;
    int ok = ndim == 3 && shape[0] == img->channels && shape[1] == img->height &&
             shape[2] == img->width;
    long bad = 0;
    if (ok) {
        size_t n = (size_t)img->channels * img->height * img->width;
        for (size_t i = 0; i < n; i++)
            bad += (float)img->pixels[i] != ref[i];
    }
    free(ref);
    *bad_out = bad;
    return ok;
}

static void test_corpus(void) {
    char dir[300], cmd[700];
    snprintf(dir, sizeof dir, "%s/corpus", tmpdir);
    const char *script = "tools/make_test_images.py";
    /* make test installs PIL and runs from the repository root: a missing corpus is a failure */
    CHECK(access(script, R_OK) == 0 && access("/usr/bin/python3", X_OK) == 0,
          "corpus: run from the repository root with /usr/bin/python3");
    if (access(script, R_OK) != 0 || access("/usr/bin/python3", X_OK) != 0)
        return;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -W ignore %s '%s' --ref > '%s/gen.txt' 2>&1",
             script, dir, tmpdir);
    int gen = system(cmd);
    CHECK(gen == 0, "corpus: %s failed (no PIL?)", script);
    if (gen != 0)
        return;
    int count;
    char **names = list_dir(dir, &count);
    CHECK(count >= 40, "corpus has %d images", count);
    int exact = 0;
    stderr_capture_begin();
    for (int i = 0; i < count; i++) {
        char path[700], ref[800];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        for (int gray = 0; gray <= 1; gray++) {
            rn_image img;
            rn_status st = rn_image_read_channels(path, gray ? 1 : 3, NULL, &img);
            CHECK(st == RN_OK, "%s: %s", names[i], rn_last_error());
            if (st != RN_OK)
                continue;
            snprintf(ref, sizeof ref, "%s/ref/%s%s", dir, names[i], gray ? ".L.npy" : ".npy");
            long bad = -1;
            int ok = compare_ref(&img, ref, &bad);
            CHECK(ok && bad == 0, "%s%s: %ld samples differ from PIL (shape ok %d)", names[i],
                  gray ? " (L)" : "", bad, ok);
            exact += ok && bad == 0;
            rn_image_free(&img);
        }
        free(names[i]);
    }
    free(names);
    printf("corpus: %d of %d decodes identical to PIL (RGB and L)\n", exact, 2 * count);

    /* broken files: refused, with the file named */
    char bdir[400];
    snprintf(bdir, sizeof bdir, "%s/broken", dir);
    DIR *d = opendir(bdir);
    int refused = 0, total = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", bdir, e->d_name);
        rn_image img;
        double t0 = now_s();
        rn_status st = rn_image_read(path, NULL, &img);
        double dt = now_s() - t0;
        total++;
        CHECK(st != RN_OK, "broken/%s decoded", e->d_name);
        if (st == RN_OK) {
            rn_image_free(&img);
            continue;
        }
        refused++;
        CHECK(strstr(rn_last_error(), e->d_name) != NULL, "broken/%s: message %s", e->d_name,
              rn_last_error());
        CHECK(img.pixels == NULL && img.width == 0, "broken/%s: output not cleared", e->d_name);
        if (strstr(e->d_name, "bomb"))
            CHECK(st == RN_ERR_UNSUPPORTED && dt < 0.05, "broken/%s: %s after %.3f s",
                  e->d_name, rn_status_name(st), dt);
    }
    if (d)
        closedir(d);
    long n = stderr_capture_end();
    CHECK(n == 0, "corpus decoding wrote %ld bytes to stderr", n);
    CHECK(total >= 15, "only %d broken files", total);
    printf("corpus: %d of %d broken files refused\n", refused, total);

    /* a valid 8000 x 8000 PNG of 8 KB: tight limits refuse it from the header,
     * in little time and without allocating its 192 MB */
    char bomb[800];
    snprintf(bomb, sizeof bomb, "%s/large/bomb_8000x8000_1bit.png", dir);
    const char *fmt = NULL;
    int bw = 0, bh = 0;
    CHECK(rn_image_probe(bomb, &fmt, &bw, &bh) == RN_OK && bw == 8000 && bh == 8000 && fmt &&
              !strcmp(fmt, "png"),
          "probe bomb: %s", rn_last_error());
    rn_image_limits lim;
    rn_image_limits_default(&lim);
    lim.max_pixels = 1000000;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    rn_image img;
    double t0 = now_s();
    rn_status st = rn_image_read(bomb, &lim, &img);
    double dt = now_s() - t0;
    getrusage(RUSAGE_SELF, &ru1);
    CHECK(st == RN_ERR_UNSUPPORTED && strstr(rn_last_error(), "8000 x 8000"), "bomb: %s",
          rn_last_error());
    CHECK(dt < 0.05, "bomb refused after %.3f s", dt);
    CHECK(ru1.ru_maxrss - ru0.ru_maxrss < 16 * 1024, "bomb grew the peak RSS by %ld KB",
          ru1.ru_maxrss - ru0.ru_maxrss);
}

/* ---------------------------------------------------------------------------
 * Tool modes and main
 * ------------------------------------------------------------------------- */

static int tool_main(int argc, char **argv) {
    int gray = 0, preprocess = !strcmp(argv[1], "--preprocess");
    rn_preprocess_config cfg;
    rn_preprocess_config_imagenet(&cfg);
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--gray"))
            gray = 1;
        else if (!strcmp(argv[i], "--resize") && i + 1 < argc)
            cfg.resize_size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--crop") && i + 1 < argc)
            cfg.crop_size = atoi(argv[++i]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    rn_image img;
    if (rn_image_read_channels(argv[2], gray ? 1 : 3, NULL, &img) != RN_OK) {
        fprintf(stderr, "error: %s\n", rn_last_error());
        return 1;
    }
    int64_t shape[3] = {img.channels, img.height, img.width};
    size_t n = (size_t)img.channels * img.height * img.width;
    float *out = NULL;
    rn_status st = RN_OK;
    if (preprocess) {
        int oh, ow;
        st = rn_preprocess_eval_size(&cfg, img.height, img.width, &oh, &ow);
        if (st == RN_OK) {
            shape[1] = oh;
            shape[2] = ow;
            out = malloc(sizeof(float) * (size_t)img.channels * oh * ow);
            st = out ? rn_preprocess_eval(&img, &cfg, out) : RN_ERR_NOMEM;
        }
    } else {
        out = malloc(sizeof(float) * (n ? n : 1));
        for (size_t i = 0; out && i < n; i++)
            out[i] = img.pixels[i];
        st = out ? RN_OK : RN_ERR_NOMEM;
    }
    if (st == RN_OK)
        st = rn_npy_write(argv[3], out, 3, shape);
    if (st != RN_OK)
        fprintf(stderr, "error: %s\n", rn_last_error());
    free(out);
    rn_image_free(&img);
    return st == RN_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 4 && (!strcmp(argv[1], "--decode") || !strcmp(argv[1], "--preprocess")))
        return tool_main(argc, argv);
    if (argc > 1) {
        fprintf(stderr, "usage: test_image [--decode|--preprocess IN OUT.npy [--gray] "
                        "[--resize N] [--crop N]]\n");
        return 2;
    }
    if (!check_tmpdir("test_image", tmpdir, sizeof tmpdir))
        return 1;
    test_corpus(); /* first: the bomb's peak-RSS check wants a quiet process */
    test_png_built();
    test_jpeg_built();
    test_robustness();
    check_tmpdir_remove(tmpdir);
    return check_done("test_image");
}
