/*
 * npy.c - float32 .npy files: rn_npy_read, and rn_npy_write (on npy.h's writer, which
 * also writes int64 labels).
 *
 * Format: "\x93NUMPY", major, minor, a little-endian header length (2 bytes
 * in version 1.0, 4 in 2.0), then an ASCII Python dict literal
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a newline, then the raw data. The reader accepts
 * exactly the keys descr, fortran_order and shape, once each, in any order;
 * descr '<f4', fortran_order False, shape a tuple of non-negative integers
 * whose product times 4 (overflow-checked) is the number of bytes left.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/file.h"
#include "io/npy.h"
#include "resnet.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER (1u << 20)
#define NPY_ALIGN 64

/* ---------------------------------------------------------------------------
 * Header dict parser
 * ------------------------------------------------------------------------- */

typedef struct npy_header {
    const char *s;           /* the header text */
    size_t len, pos;
    size_t base;             /* file offset of s[0], for messages */
    const char *path;
    int ndim;
    int64_t shape[RN_NPY_MAX_DIMS];
} npy_header;

static rn_status header_error(const npy_header *h, const char *what) {
    char got[32];
    if (h->pos >= h->len)
        snprintf(got, sizeof got, "end of header");
    else if (h->s[h->pos] > 0x20 && h->s[h->pos] < 0x7f)
        snprintf(got, sizeof got, "'%c'", h->s[h->pos]);
    else
        snprintf(got, sizeof got, "byte 0x%02x", (unsigned char)h->s[h->pos]);
    return rn_fail(RN_ERR_FORMAT, "%s: header at byte %zu: expected %s, found %s",
                   h->path, h->base + h->pos, what, got);
}

static void skip_space(npy_header *h) {
    while (h->pos < h->len && (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' ||
                               h->s[h->pos] == '\r' || h->s[h->pos] == '\n'))
        h->pos++;
}

/* Consumes c (after optional spaces) or returns 0. */
static int accept(npy_header *h, char c) {
    skip_space(h);
    if (h->pos < h->len && h->s[h->pos] == c) {
        h->pos++;
        return 1;
    }
    return 0;
}

/* A quoted Python string of printable ASCII without escapes, into out. */
static rn_status parse_str(npy_header *h, char *out, size_t cap) {
    skip_space(h);
    if (h->pos >= h->len || (h->s[h->pos] != '\'' && h->s[h->pos] != '"'))
        return header_error(h, "a quoted string");
    char quote = h->s[h->pos++];
    size_t n = 0;
    while (h->pos < h->len && h->s[h->pos] != quote) {
        char c = h->s[h->pos];
        if (c < 0x20 || c > 0x7e || c == '\\' || n + 1 >= cap)
            return header_error(h, "a short string of plain ASCII");
        out[n++] = c;
        h->pos++;
    }
    if (h->pos >= h->len)
        return header_error(h, "a closing quote");
    h->pos++;
    out[n] = '\0';
    return RN_OK;
}

/* A non-negative decimal integer (no sign, no leading zeros) below 2^63. */
static rn_status parse_dim(npy_header *h, int64_t *out) {
    skip_space(h);
    size_t start = h->pos;
    uint64_t v = 0;
    while (h->pos < h->len && h->s[h->pos] >= '0' && h->s[h->pos] <= '9') {
        unsigned d = (unsigned)(h->s[h->pos] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return rn_fail(RN_ERR_FORMAT, "%s: header at byte %zu: dimension too large",
                           h->path, h->base + start);
        v = v * 10 + d;
        h->pos++;
    }
    if (h->pos == start)
        return header_error(h, "a non-negative integer dimension");
    if (h->s[start] == '0' && h->pos - start > 1)
        return rn_fail(RN_ERR_FORMAT, "%s: header at byte %zu: dimension with a leading zero",
                       h->path, h->base + start);
    *out = (int64_t)v;
    return RN_OK;
}

/* A Python tuple of dimensions: (), (n,), (n, m), (n, m,) ... */
static rn_status parse_shape(npy_header *h) {
    if (!accept(h, '('))
        return header_error(h, "'(' starting the shape tuple");
    h->ndim = 0;
    if (accept(h, ')'))
        return RN_OK;
    for (;;) {
        if (h->ndim == RN_NPY_MAX_DIMS) {
            skip_space(h);
            return rn_fail(RN_ERR_UNSUPPORTED, "%s: header at byte %zu: more than %d dimensions",
                           h->path, h->base + h->pos, RN_NPY_MAX_DIMS);
        }
        RN_TRY(parse_dim(h, &h->shape[h->ndim]));
        h->ndim++;
        if (accept(h, ')')) {
            if (h->ndim == 1)  /* "(5)" is an int in Python, not a tuple */
                return header_error(h, "',' in a one-element tuple");
            return RN_OK;
        }
        if (!accept(h, ','))
            return header_error(h, "',' or ')' in the shape tuple");
        if (accept(h, ')'))
            return RN_OK;
    }
}

/* Parses one "key: value" pair, recording which keys were seen. */
static rn_status parse_item(npy_header *h, unsigned *seen) {
    static const char *const keys[] = {"descr", "fortran_order", "shape"};
    char key[32], descr[32];
    size_t key_at;
    skip_space(h);
    key_at = h->base + h->pos;
    RN_TRY(parse_str(h, key, sizeof key));
    unsigned k = 0;
    while (k < 3 && strcmp(key, keys[k]) != 0)
        k++;
    if (k == 3)
        return rn_fail(RN_ERR_FORMAT, "%s: header at byte %zu: unexpected key '%s' (expected "
                       "descr, fortran_order, shape)", h->path, key_at, key);
    if (*seen & (1u << k))
        return rn_fail(RN_ERR_FORMAT, "%s: header at byte %zu: duplicate key '%s'",
                       h->path, key_at, key);
    *seen |= 1u << k;
    if (!accept(h, ':'))
        return header_error(h, "':' after the key");
    skip_space(h);
    size_t value_at = h->base + h->pos;
    if (k == 0) {
        RN_TRY(parse_str(h, descr, sizeof descr));
        if (strcmp(descr, "<f4") != 0)
            return rn_fail(RN_ERR_UNSUPPORTED, "%s: header at byte %zu: dtype '%s' is not "
                           "supported (only '<f4', little-endian float32)", h->path, value_at,
                           descr);
    } else if (k == 1) {
        if (h->len - h->pos >= 5 && memcmp(h->s + h->pos, "False", 5) == 0)
            h->pos += 5;
        else if (h->len - h->pos >= 4 && memcmp(h->s + h->pos, "True", 4) == 0)
            return rn_fail(RN_ERR_UNSUPPORTED, "%s: header at byte %zu: fortran_order True is "
                           "not supported (C order only)", h->path, value_at);
        else
            return header_error(h, "False or True for fortran_order");
    } else {
        RN_TRY(parse_shape(h));
    }
    return RN_OK;
}

/* Parses the whole header dict into h->ndim / h->shape. */
static rn_status parse_header(npy_header *h) {
    unsigned seen = 0;
    if (!accept(h, '{'))
        return header_error(h, "'{' starting the header dict");
    while (!accept(h, '}')) {
        RN_TRY(parse_item(h, &seen));
        if (accept(h, '}'))
            break;
        if (!accept(h, ','))
            return header_error(h, "',' or '}' in the header dict");
    }
    skip_space(h);
    if (h->pos != h->len)
        return header_error(h, "only spaces and a newline after the header dict");
    if (seen != 7u)
        return rn_fail(RN_ERR_FORMAT, "%s: header at byte %zu: missing key '%s'", h->path,
                       h->base, !(seen & 1u) ? "descr" : !(seen & 2u) ? "fortran_order" : "shape");
    return RN_OK;
}

static void format_dims(char *out, size_t cap, const int64_t *shape, int ndim) {
    size_t n = (size_t)snprintf(out, cap, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%" PRId64 "%s", shape[i],
                              ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    if (n < cap)
        snprintf(out + n, cap - n, ")");
}

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

/* Reads the magic, version and header length; *prefix is the header's
 * file offset. size is the file size. */
static rn_status read_preamble(FILE *f, const char *path, size_t size, size_t *prefix,
                               size_t *hlen) {
    unsigned char b[12];
    if (size < 10 || fread(b, 1, 10, f) != 10)
        return rn_fail(RN_ERR_FORMAT, "%s: file is %zu bytes, too short for a .npy header",
                       path, size);
    if (memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return rn_fail(RN_ERR_FORMAT, "%s: not a .npy file (bad magic at byte 0)", path);
    if (b[6] == 1 && b[7] == 0) {
        *prefix = 10;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if (b[6] == 2 && b[7] == 0) {
        if (size < 12 || fread(b + 10, 1, 2, f) != 2)
            return rn_fail(RN_ERR_FORMAT, "%s: file is %zu bytes, too short for a .npy 2.0 header",
                           path, size);
        *prefix = 12;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else if (b[6] == 3 && b[7] == 0) {
        return rn_fail(RN_ERR_UNSUPPORTED, "%s: .npy version 3.0 (UTF-8 header) at byte 6 is not "
                       "supported", path);
    } else {
        return rn_fail(RN_ERR_FORMAT, "%s: unknown .npy version %u.%u at byte 6", path, b[6], b[7]);
    }
    if (*hlen > size - *prefix)
        return rn_fail(RN_ERR_FORMAT, "%s: header length %zu at byte 8 goes past the end of the "
                       "file (%zu bytes)", path, *hlen, size);
    if (*hlen > NPY_MAX_HEADER)
        return rn_fail(RN_ERR_FORMAT, "%s: header length %zu at byte 8 exceeds %u bytes",
                       path, *hlen, NPY_MAX_HEADER);
    return RN_OK;
}

/* Reads the header at the current position and checks the data size. */
static rn_status read_header(FILE *f, const char *path, size_t size, npy_header *h,
                             size_t *numel) {
    size_t prefix = 0, hlen = 0;
    RN_TRY(read_preamble(f, path, size, &prefix, &hlen));
    char *text = malloc(hlen ? hlen : 1);
    if (!text)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for the header", path);
    rn_status st = RN_OK;
    if (fread(text, 1, hlen, f) != hlen)
        st = rn_fail(RN_ERR_IO, "%s: read failed in the header at byte %zu", path, prefix);
    if (st == RN_OK) {
        *h = (npy_header){.s = text, .len = hlen, .base = prefix, .path = path};
        st = parse_header(h);
    }
    free(text);
    h->s = NULL;
    RN_TRY(st);

    size_t data_at = prefix + hlen, bytes = 0;
    char dims[200];
    format_dims(dims, sizeof dims, h->shape, h->ndim);
    *numel = 1;
    for (int i = 0; i < h->ndim; i++)
        if (!rn_size_mul(*numel, (size_t)h->shape[i], numel))
            return rn_fail(RN_ERR_FORMAT, "%s: shape %s overflows", path, dims);
    if (!rn_size_mul(*numel, sizeof(float), &bytes))
        return rn_fail(RN_ERR_FORMAT, "%s: shape %s overflows the byte size", path, dims);
    if (bytes != size - data_at)
        return rn_fail(RN_ERR_FORMAT, "%s: data at byte %zu is %zu bytes but shape %s float32 "
                       "needs %zu", path, data_at, size - data_at, dims, bytes);
    return RN_OK;
}

rn_status rn_npy_read(const char *path, float **data, int *ndim,
                      int64_t shape[RN_NPY_MAX_DIMS]) {
    if (!path || !data || !ndim || !shape)
        return rn_fail(RN_ERR_ARG, "rn_npy_read: NULL argument");
    *data = NULL;
    *ndim = 0;
    FILE *f;
    size_t size;
    RN_TRY(rn_file_open(path, &f, &size));
    npy_header h = {0};
    size_t numel = 0;
    rn_status st = read_header(f, path, size, &h, &numel);
    float *values = NULL;
    if (st == RN_OK && !(values = rn_alloc(numel ? numel * sizeof(float) : sizeof(float))))
        st = rn_fail(RN_ERR_NOMEM, "%s: out of memory for %zu floats", path, numel);
    if (st == RN_OK) {
        size_t got = fread(values, sizeof(float), numel, f);
        if (got != numel)
            st = rn_fail(RN_ERR_IO, "%s: read failed in the data at element %zu: %s", path, got,
                         ferror(f) ? strerror(errno) : "file shrank while reading");
    }
    fclose(f);
    if (st != RN_OK) {
        free(values);
        return st;
    }
    unsigned char *b = (unsigned char *)values;  /* little-endian bytes to host floats */
    for (size_t i = 0; i < numel; i++) {
        uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                     (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        memcpy(&values[i], &u, sizeof u);
    }
    *data = values;
    *ndim = h.ndim;
    memcpy(shape, h.shape, (size_t)h.ndim * sizeof *shape);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

rn_status rn_npy_writer_open(rn_npy_writer *nw, const char *path, rn_npy_dtype dtype, int ndim,
                             const int64_t *shape) {
    memset(nw, 0, sizeof *nw);
    if (!path || (ndim > 0 && !shape))
        return rn_fail(RN_ERR_ARG, "rn_npy_write: NULL %s", path ? "shape" : "path");
    if (ndim < 0 || ndim > RN_NPY_MAX_DIMS)
        return rn_fail(RN_ERR_ARG, "%s: %d dimensions, outside 0..%d", path, ndim, RN_NPY_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX ||
            !rn_size_mul(numel, (size_t)shape[i], &numel))
            return rn_fail(RN_ERR_ARG, "%s: invalid shape (dimension %d)", path, i);
    size_t bytes;
    if (!rn_size_mul(numel, dtype == RN_NPY_I64 ? 8 : 4, &bytes))
        return rn_fail(RN_ERR_ARG, "%s: array too large", path);

    /* 10-byte preamble + dict + spaces + '\n', a multiple of NPY_ALIGN. */
    char header[10 + 512];
    char dims[400];
    format_dims(dims, sizeof dims, shape, ndim);
    int n = snprintf(header + 10, sizeof header - 10,
                     "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     dtype == RN_NPY_I64 ? "<i8" : "<f4", dims);
    size_t hlen = (size_t)n + 1;
    hlen += (NPY_ALIGN - (10 + hlen) % NPY_ALIGN) % NPY_ALIGN;
    memset(header + 10 + n, ' ', hlen - (size_t)n - 1);
    header[10 + hlen - 1] = '\n';
    memcpy(header, NPY_MAGIC, NPY_MAGIC_LEN);
    header[6] = 1;
    header[7] = 0;
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);

    RN_TRY(rn_wfile_open(&nw->w, path));
    nw->dtype = dtype;
    nw->total = numel;
    if (fwrite(header, 1, 10 + hlen, nw->w.f) != 10 + hlen) {
        rn_status st = rn_wfile_error(&nw->w, errno);
        rn_npy_writer_discard(nw);
        return st;
    }
    return RN_OK;
}

/* count elements of the writer's dtype from f (float32) or q (int32 as int64), little-endian */
static rn_status writer_put(rn_npy_writer *nw, const float *f, const int32_t *q, size_t count) {
    if (!nw->w.f)
        return rn_fail(RN_ERR_ARG, "rn_npy_writer: the file is not open");
    if (count > nw->total - nw->written) {
        rn_status st = rn_fail(RN_ERR_ARG, "%s: %zu more elements than its shape's %zu",
                               nw->w.path, count - (nw->total - nw->written), nw->total);
        rn_npy_writer_discard(nw);
        return st;
    }
    if (count > 0 && !f && !q) {
        rn_status st = rn_fail(RN_ERR_ARG, "%s: data is NULL", nw->w.path);
        rn_npy_writer_discard(nw);
        return st;
    }
    const size_t size = nw->dtype == RN_NPY_I64 ? 8 : 4;
    unsigned char chunk[1 << 14];
    int ok = 1;
    for (size_t i = 0; i < count && ok; i += sizeof chunk / size) {
        size_t m = count - i < sizeof chunk / size ? count - i : sizeof chunk / size;
        for (size_t j = 0; j < m; j++) {
            uint64_t u;
            if (size == 8) {
                u = (uint64_t)(int64_t)q[i + j];
            } else {
                uint32_t b;
                memcpy(&b, &f[i + j], sizeof b);
                u = b;
            }
            for (size_t k = 0; k < size; k++)
                chunk[size * j + k] = (unsigned char)(u >> (8 * k));
        }
        ok = fwrite(chunk, size, m, nw->w.f) == m;
    }
    if (!ok) {
        rn_status st = rn_wfile_error(&nw->w, errno);
        rn_npy_writer_discard(nw);
        return st;
    }
    nw->written += count;
    return RN_OK;
}

rn_status rn_npy_writer_f32(rn_npy_writer *nw, const float *data, size_t count) {
    if (nw->dtype != RN_NPY_F32) {
        rn_npy_writer_discard(nw);
        return rn_fail(RN_ERR_ARG, "rn_npy_writer_f32: the file holds int64");
    }
    return writer_put(nw, data, NULL, count);
}

rn_status rn_npy_writer_i32(rn_npy_writer *nw, const int32_t *data, size_t count) {
    if (nw->dtype != RN_NPY_I64) {
        rn_npy_writer_discard(nw);
        return rn_fail(RN_ERR_ARG, "rn_npy_writer_i32: the file holds float32");
    }
    return writer_put(nw, NULL, data, count);
}

rn_status rn_npy_writer_commit(rn_npy_writer *nw) {
    if (!nw->w.f)
        return rn_fail(RN_ERR_ARG, "rn_npy_writer: the file is not open");
    if (nw->written != nw->total) {
        rn_status st = rn_fail(RN_ERR_ARG, "%s: %zu elements written of its shape's %zu",
                               nw->w.path, nw->written, nw->total);
        rn_npy_writer_discard(nw);
        return st;
    }
    rn_status st = rn_wfile_commit(&nw->w);
    memset(nw, 0, sizeof *nw);
    return st;
}

void rn_npy_writer_discard(rn_npy_writer *nw) {
    rn_wfile_discard(&nw->w);
    memset(nw, 0, sizeof *nw);
}

rn_status rn_npy_write(const char *path, const float *data, int ndim, const int64_t *shape) {
    rn_npy_writer nw;
    RN_TRY(rn_npy_writer_open(&nw, path, RN_NPY_F32, ndim, shape));
    RN_TRY(rn_npy_writer_f32(&nw, data, nw.total));
    return rn_npy_writer_commit(&nw);
}
