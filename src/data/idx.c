/*
 * idx.c - MNIST-style IDX files, raw or gzip-compressed.
 *
 * Format (all integers big-endian):
 *   images: magic 0x00000803, count, rows, cols, then count*rows*cols bytes
 *   labels: magic 0x00000801, count, then count bytes
 * A file is read whole (zlib's gzread decompresses when the file starts with
 * the gzip magic and passes raw files through), then checked: magic, sane
 * dimensions, exact size (truncation and trailing bytes both fail), labels
 * in range, and the same count in the image and label files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/mem.h"
#include "core/status.h"
#include "data/dataset.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_MAX_SIDE 4096
#define IDX_MAX_BYTES ((size_t)1 << 34)   /* refuse to inflate more than 16 GiB */
#define IDX_CHUNK ((size_t)1 << 20)      /* bytes per gzread */
#define IDX_FIRST ((size_t)1 << 16)      /* the buffer's first size; it doubles */

/* ---------------------------------------------------------------------------
 * Reading a whole file, inflating gzip
 * ------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads all of path (decompressed if gzip) into a malloc'ed *data. */
static rn_status read_whole(const char *path, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(f, 1 << 17);

    size_t cap = 0, n = 0;
    uint8_t *buf = NULL;
    rn_status st = RN_OK;
    for (;;) {
        if (n == cap) {
            size_t grown = cap ? cap * 2 : IDX_FIRST;
            if (grown > IDX_MAX_BYTES) {
                st = rn_fail(RN_ERR_FORMAT, "%s: more than %zu bytes of data", path, IDX_MAX_BYTES);
                break;
            }
            uint8_t *p = realloc(buf, grown);
            if (!p) {
                st = rn_fail(RN_ERR_NOMEM, "%s: out of memory after %zu bytes", path, n);
                break;
            }
            buf = p;
            cap = grown;
        }
        int got = gzread(f, buf + n, (unsigned)(cap - n < IDX_CHUNK ? cap - n : IDX_CHUNK));
        if (got < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            st = rn_fail(err == Z_ERRNO ? RN_ERR_IO : RN_ERR_FORMAT,
                         "%s: corrupt gzip data after %zu decompressed bytes: %s", path, n,
                         err == Z_ERRNO ? strerror(errno) : msg);
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (st == RN_OK) {
        /* A gzip stream cut short reads like end of file; zlib remembers it. */
        int err;
        const char *msg = gzerror(f, &err);
        if (err != Z_OK)
            st = rn_fail(RN_ERR_FORMAT, "%s: truncated or corrupt gzip data after %zu decompressed "
                         "bytes: %s", path, n, msg);
    }
    int closed = gzclose_r(f);
    if (st == RN_OK && closed != Z_OK)
        st = rn_fail(RN_ERR_FORMAT, "%s: truncated gzip stream after %zu decompressed bytes",
                     path, n);
    if (st != RN_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = n;
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Image and label files
 * ------------------------------------------------------------------------- */

static rn_status check_magic(const char *path, const uint8_t *buf, size_t len, uint32_t want,
                             size_t header, const char *what) {
    if (len < header)
        return rn_fail(RN_ERR_FORMAT, "%s: %zu bytes, too short for an IDX %s header (%zu bytes)",
                       path, len, what, header);
    uint32_t magic = be32(buf);
    if (magic != want)
        return rn_fail(RN_ERR_FORMAT, "%s: magic 0x%08x at offset 0, expected 0x%08x (IDX %s)%s",
                       path, magic, want, what,
                       magic == IDX_IMAGES_MAGIC ? ": this is an image file"
                       : magic == IDX_LABELS_MAGIC ? ": this is a label file" : "");
    return RN_OK;
}

/* Checks that len == header + body exactly. */
static rn_status check_size(const char *path, size_t len, size_t header, size_t body,
                            const char *what) {
    size_t want;
    if (!rn_size_add(header, body, &want) || len < want)
        return rn_fail(RN_ERR_FORMAT, "%s: truncated: %s need %zu bytes, the file has %zu", path,
                       what, body > SIZE_MAX - header ? SIZE_MAX : header + body, len);
    if (len > want)
        return rn_fail(RN_ERR_FORMAT, "%s: %zu bytes of trailing data after the %s (expected "
                       "%zu bytes)", path, len - want, what, want);
    return RN_OK;
}

/* Reads an image file; *pixels becomes the malloc'ed (count, rows, cols) data. */
static rn_status read_images(const char *path, int *count, int *rows, int *cols,
                             uint8_t **pixels) {
    uint8_t *buf;
    size_t len;
    RN_TRY(read_whole(path, &buf, &len));
    rn_status st = check_magic(path, buf, len, IDX_IMAGES_MAGIC, 16, "images");
    uint32_t n = 0, r = 0, c = 0;
    if (st == RN_OK) {
        n = be32(buf + 4);
        r = be32(buf + 8);
        c = be32(buf + 12);
        if (n == 0 || n > INT32_MAX)
            st = rn_fail(RN_ERR_FORMAT, "%s: image count %u at offset 4 is not in 1..%d", path, n,
                         INT32_MAX);
        else if (r < 1 || r > IDX_MAX_SIDE || c < 1 || c > IDX_MAX_SIDE)
            st = rn_fail(RN_ERR_FORMAT, "%s: image size %ux%u at offset 8 is not in 1..%d", path,
                         r, c, IDX_MAX_SIDE);
    }
    size_t body = 0;
    if (st == RN_OK && !rn_size_mul((size_t)n, (size_t)r * c, &body))
        st = rn_fail(RN_ERR_FORMAT, "%s: %u images of %ux%u overflow the size", path, n, r, c);
    char what[96];
    snprintf(what, sizeof what, "%u images of %ux%u", n, r, c);
    if (st == RN_OK)
        st = check_size(path, len, 16, body, what);
    if (st != RN_OK) {
        free(buf);
        return st;
    }
    memmove(buf, buf + 16, body);
    uint8_t *shrunk = realloc(buf, body);
    *pixels = shrunk ? shrunk : buf;
    *count = (int)n;
    *rows = (int)r;
    *cols = (int)c;
    return RN_OK;
}

/* Reads a label file into a malloc'ed int32 array; labels must be < classes. */
static rn_status read_labels(const char *path, int classes, int *count, int32_t **labels) {
    uint8_t *buf;
    size_t len;
    RN_TRY(read_whole(path, &buf, &len));
    rn_status st = check_magic(path, buf, len, IDX_LABELS_MAGIC, 8, "labels");
    uint32_t n = 0;
    if (st == RN_OK) {
        n = be32(buf + 4);
        if (n == 0 || n > INT32_MAX)
            st = rn_fail(RN_ERR_FORMAT, "%s: label count %u at offset 4 is not in 1..%d", path, n,
                         INT32_MAX);
    }
    char what[64];
    snprintf(what, sizeof what, "%u labels", n);
    if (st == RN_OK)
        st = check_size(path, len, 8, n, what);
    int32_t *out = NULL;
    if (st == RN_OK && !(out = malloc((size_t)n * sizeof *out)))
        st = rn_fail(RN_ERR_NOMEM, "%s: out of memory for %u labels", path, n);
    for (uint32_t i = 0; st == RN_OK && i < n; i++) {
        if (buf[8 + i] >= classes)
            st = rn_fail(RN_ERR_FORMAT, "%s: label %u at offset %u is out of range 0..%d", path,
                         (unsigned)buf[8 + i], 8 + i, classes - 1);
        else
            out[i] = buf[8 + i];
    }
    free(buf);
    if (st != RN_OK) {
        free(out);
        return st;
    }
    *count = (int)n;
    *labels = out;
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * A split
 * ------------------------------------------------------------------------- */

/* DIR/name.gz if it exists, else DIR/name (whose absence the reader reports). */
static void find_file(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s.gz", dir, name);
    FILE *f = fopen(out, "rb");
    if (f) {
        fclose(f);
        return;
    }
    snprintf(out, cap, "%s/%s", dir, name);
}

rn_status rn_idx_load(const char *dir, int train, int num_classes,
                      const char *const *class_names, rn_dataset *out) {
    memset(out, 0, sizeof *out);
    if (!dir || num_classes < 1 || num_classes > 256)
        return rn_fail(RN_ERR_ARG, "rn_idx_load: NULL directory or %d classes", num_classes);
    const char *split = train ? "train" : "t10k";
    char name[64], img_path[4096], lab_path[4096];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    find_file(img_path, sizeof img_path, dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    find_file(lab_path, sizeof lab_path, dir, name);

    int n_img = 0, rows = 0, cols = 0, n_lab = 0;
    RN_TRY(read_images(img_path, &n_img, &rows, &cols, &out->pixels));
    rn_status st = read_labels(lab_path, num_classes, &n_lab, &out->labels);
    if (st == RN_OK && n_img != n_lab)
        st = rn_fail(RN_ERR_FORMAT, "%s has %d images but %s has %d labels", img_path, n_img,
                     lab_path, n_lab);
    out->count = n_img;
    out->channels = 1;
    out->height = rows;
    out->width = cols;
    if (st == RN_OK && class_names)
        st = rn_dataset_set_class_names(out, class_names, num_classes);
    out->num_classes = num_classes;
    if (st != RN_OK)
        rn_dataset_free(out);
    return st;
}
