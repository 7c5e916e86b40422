/*
 * idx.c - MNIST-style IDX files, raw or gzip-compressed.
 *
 * Format (all integers big-endian):
 *   images: magic 0x00000803, count, rows, cols, then count*rows*cols bytes
 *   labels: magic 0x00000801, count, then count bytes
 * A file is read as it is stored; a gzip file (one that starts with the gzip
 * magic; concatenated members are one stream) is inflated from memory as the
 * reader asks for bytes. The header is read and checked first (magic, sane
 * dimensions), then exactly the bytes it announces: nothing is inflated or
 * allocated past what the header asks for and the data holds, so a small
 * file that inflates to gigabytes costs no more than its header allows.
 * Then: exact size (truncation and trailing bytes both fail), labels in
 * range, and the same count in the image and label files.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/mem.h"
#include "core/status.h"
#include "data/dataset.h"
#include "io/file.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_MAX_SIDE 4096
#define IDX_FIRST ((size_t)1 << 20)      /* an inflated body's first buffer; it doubles */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------------------------------------------------------------------
 * A file's bytes, inflated on demand when it is gzip
 * ------------------------------------------------------------------------- */

typedef struct idx_src {
    const char *path;
    uint8_t *file;           /* the file as stored */
    size_t len, pos;         /* its length; raw files: the read position */
    int gz;                  /* a gzip stream, inflated by z */
    int ended;               /* gzip: the last member ended at the end of the file */
    z_stream z;
    size_t out;              /* gzip: bytes inflated so far */
} idx_src;

static void src_close(idx_src *s) {
    if (s->gz)
        inflateEnd(&s->z);
    free(s->file);
    s->file = NULL;
}

static rn_status src_open(idx_src *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->path = path;
    RN_TRY(rn_file_read_all(path, &s->file, &s->len));
    if (s->len >= 2 && s->file[0] == 0x1f && s->file[1] == 0x8b) {
        if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
            src_close(s);
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory for the gzip decoder", path);
        }
        s->gz = 1;
        s->z.next_in = s->file;
        s->z.avail_in = s->len > UINT_MAX ? UINT_MAX : (uInt)s->len;
    }
    return RN_OK;
}

/* Inflates up to `want` bytes into dst; *got < want only at the end of the
 * stream. A corrupt or cut-short stream, or bytes after the last member
 * that are not another member, fail naming the offset. */
static rn_status src_inflate(idx_src *s, uint8_t *dst, size_t want, size_t *got) {
    *got = 0;
    while (*got < want && !s->ended) {
        size_t in_before = (size_t)(s->z.next_in - s->file);
        size_t left_in = s->len - in_before;
        s->z.avail_in = left_in > UINT_MAX ? UINT_MAX : (uInt)left_in;
        size_t room = want - *got;
        s->z.next_out = dst + *got;
        s->z.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt out_before = s->z.avail_out;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        size_t made = out_before - s->z.avail_out;
        *got += made;
        s->out += made;
        size_t at = (size_t)(s->z.next_in - s->file);
        if (rc == Z_STREAM_END) {
            size_t zeros = 0; /* padding after the last member, as gzip(1) and Python's gzip skip */
            while (at + zeros < s->len && s->file[at + zeros] == 0)
                zeros++;
            if (at + zeros == s->len) {
                s->ended = 1;
            } else if (s->len - at >= 2 && s->file[at] == 0x1f && s->file[at + 1] == 0x8b) {
                inflateReset(&s->z);           /* the next member */
            } else {
                return rn_fail(RN_ERR_FORMAT, "%s: %zu bytes after the end of the gzip stream at "
                               "offset %zu are not a gzip member", s->path, s->len - at, at);
            }
        } else if (rc == Z_MEM_ERROR) {
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory in the gzip decoder", s->path);
        } else if (rc == Z_BUF_ERROR || (rc == Z_OK && at == s->len && made == 0)) {
            return rn_fail(RN_ERR_FORMAT, "%s: truncated gzip data: the file ends at offset %zu "
                           "after %zu decompressed bytes", s->path, at, s->out);
        } else if (rc != Z_OK) {
            return rn_fail(RN_ERR_FORMAT, "%s: corrupt gzip data near offset %zu after %zu "
                           "decompressed bytes: %s", s->path, at, s->out,
                           s->z.msg ? s->z.msg : "invalid stream");
        }
    }
    return RN_OK;
}

/* Reads up to `want` bytes into dst; *got < want only at the end of the data. */
static rn_status src_read(idx_src *s, uint8_t *dst, size_t want, size_t *got) {
    if (s->gz)
        return src_inflate(s, dst, want, got);
    *got = want < s->len - s->pos ? want : s->len - s->pos;
    memcpy(dst, s->file + s->pos, *got);
    s->pos += *got;
    return RN_OK;
}

/* After the header (`header` bytes) and body of `what`: the data must end here. */
static rn_status src_expect_end(idx_src *s, size_t header, size_t body, const char *what) {
    if (!s->gz) {
        if (s->pos < s->len)
            return rn_fail(RN_ERR_FORMAT, "%s: %zu bytes of trailing data after the %s (expected "
                           "%zu bytes)", s->path, s->len - s->pos, what, header + body);
        return RN_OK;
    }
    uint8_t extra;
    size_t got;
    RN_TRY(src_inflate(s, &extra, 1, &got));
    if (got)
        return rn_fail(RN_ERR_FORMAT, "%s: trailing data after the %s (expected %zu decompressed "
                       "bytes)", s->path, what, header + body);
    return RN_OK;
}

/* Reads the `body` bytes of `what` that follow a `header`-byte header into
 * a malloc'ed *out. A raw file's size is checked before anything is moved;
 * gzip data fills a buffer that grows as it inflates, so a header that
 * announces more than the data holds allocates no more than the data. */
static rn_status src_read_body(idx_src *s, size_t header, size_t body, const char *what,
                               uint8_t **out) {
    *out = NULL;
    if (!s->gz) {              /* the file's own buffer becomes the body */
        if (s->len - s->pos < body)
            return rn_fail(RN_ERR_FORMAT, "%s: truncated: %s need %zu bytes, the file has %zu",
                           s->path, what, body > SIZE_MAX - header ? SIZE_MAX : header + body,
                           s->len);
        size_t at = s->pos;
        s->pos += body;
        RN_TRY(src_expect_end(s, header, body, what));
        memmove(s->file, s->file + at, body);
        uint8_t *shrunk = realloc(s->file, body ? body : 1);
        *out = shrunk ? shrunk : s->file;
        s->file = NULL;
        return RN_OK;
    }
    size_t cap = body > IDX_FIRST ? IDX_FIRST : body, got = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    rn_status st = buf ? RN_OK : rn_fail(RN_ERR_NOMEM, "%s: out of memory for %zu bytes", s->path, cap);
    while (st == RN_OK) {
        size_t n;
        st = src_read(s, buf + got, cap - got, &n);
        got += n;
        if (st != RN_OK || got < cap || cap == body)
            break;
        size_t grown = cap > body / 2 ? body : cap * 2;
        uint8_t *p = realloc(buf, grown);
        if (!p)
            st = rn_fail(RN_ERR_NOMEM, "%s: out of memory after %zu bytes", s->path, got);
        else
            buf = p, cap = grown;
    }
    if (st == RN_OK && got < body)
        st = rn_fail(RN_ERR_FORMAT, "%s: truncated: %s need %zu bytes, the data has %zu "
                     "(decompressed)", s->path, what, header + body, header + got);
    if (st == RN_OK)
        st = src_expect_end(s, header, body, what);
    if (st != RN_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return RN_OK;
}

/* Reads the first `header` bytes into buf and checks the magic number. */
static rn_status read_header(idx_src *s, uint8_t *buf, size_t header, uint32_t want,
                             const char *what) {
    size_t got;
    RN_TRY(src_read(s, buf, header, &got));
    if (got < header)
        return rn_fail(RN_ERR_FORMAT, "%s: %zu bytes, too short for an IDX %s header (%zu bytes)",
                       s->path, got, what, header);
    uint32_t magic = be32(buf);
    if (magic != want)
        return rn_fail(RN_ERR_FORMAT, "%s: magic 0x%08x at offset 0, expected 0x%08x (IDX %s)%s",
                       s->path, magic, want, what,
                       magic == IDX_IMAGES_MAGIC ? ": this is an image file"
                       : magic == IDX_LABELS_MAGIC ? ": this is a label file" : "");
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Image and label files
 * ------------------------------------------------------------------------- */

/* Reads an image file; *pixels becomes the malloc'ed (count, rows, cols) data. */
static rn_status read_images(const char *path, int *count, int *rows, int *cols,
                             uint8_t **pixels) {
    idx_src s;
    RN_TRY(src_open(&s, path));
    uint8_t head[16];
    rn_status st = read_header(&s, head, 16, IDX_IMAGES_MAGIC, "images");
    uint32_t n = 0, r = 0, c = 0;
    if (st == RN_OK) {
        n = be32(head + 4);
        r = be32(head + 8);
        c = be32(head + 12);
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
        st = src_read_body(&s, 16, body, what, pixels);
    src_close(&s);
    if (st != RN_OK)
        return st;
    *count = (int)n;
    *rows = (int)r;
    *cols = (int)c;
    return RN_OK;
}

/* Reads a label file into a malloc'ed int32 array; labels must be < classes. */
static rn_status read_labels(const char *path, int classes, int *count, int32_t **labels) {
    idx_src s;
    RN_TRY(src_open(&s, path));
    uint8_t head[8], *buf = NULL;
    rn_status st = read_header(&s, head, 8, IDX_LABELS_MAGIC, "labels");
    uint32_t n = 0;
    if (st == RN_OK) {
        n = be32(head + 4);
        if (n == 0 || n > INT32_MAX)
            st = rn_fail(RN_ERR_FORMAT, "%s: label count %u at offset 4 is not in 1..%d", path, n,
                         INT32_MAX);
    }
    char what[64];
    snprintf(what, sizeof what, "%u labels", n);
    if (st == RN_OK)
        st = src_read_body(&s, 8, n, what, &buf);
    src_close(&s);
    int32_t *out = NULL;
    if (st == RN_OK && !(out = malloc((size_t)n * sizeof *out)))
        st = rn_fail(RN_ERR_NOMEM, "%s: out of memory for %u labels", path, n);
    for (uint32_t i = 0; st == RN_OK && i < n; i++) {
        if (buf[i] >= classes)
            st = rn_fail(RN_ERR_FORMAT, "%s: label %u at offset %u is out of range 0..%d", path,
                         (unsigned)buf[i], 8 + i, classes - 1);
        else
            out[i] = buf[i];
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
