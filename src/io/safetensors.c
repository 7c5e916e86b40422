/* safetensors.c - a validating safetensors reader and an F32/I64 writer. */
#include "io/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/mem.h"
#include "core/status.h"
#include "io/file.h"
#include "io/json.h"
#include "io/sniff.h"

/* The reference implementation's limit on the JSON header. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

/* ---------------------------------------------------------------------------
 * Dtypes
 * ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8}, [ST_I64] = {"I64", 8}, [ST_I8] = {"I8", 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

/* Valid safetensors dtypes that this reader does not convert. */
static const char *const unsupported_dtypes[] = {
    "BOOL", "U8", "U16", "I16", "U32", "I32", "U64", "C64",
    "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
};

const char *st_dtype_name(st_dtype d) {
    return (unsigned)d < N_DTYPES ? dtypes[d].name : "?";
}

/* ---------------------------------------------------------------------------
 * Little-endian bytes and float conversions
 * ------------------------------------------------------------------------- */

static uint16_t load_u16(const unsigned char *b) { return (uint16_t)(b[0] | b[1] << 8); }

static uint32_t load_u32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t load_u64(const unsigned char *b) {
    return (uint64_t)load_u32(b) | (uint64_t)load_u32(b + 4) << 32;
}

static void store_u64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half to float, exactly: subnormals, infinities and NaN payloads kept. */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        float mag = ldexpf((float)mant, -24);  /* exact: mant < 2^10 */
        return sign ? -mag : mag;
    }
    if (exp == 31)
        return bits_to_float(sign | 0x7f800000u | mant << 13);
    return bits_to_float(sign | (exp + 112) << 23 | mant << 13);
}

/* One loop per dtype; F32 a copy where the host is little-endian. */
void st_convert_to_float(st_dtype d, const unsigned char *src, float *dst, size_t n) {
    switch (d) {
    case ST_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(dst, src, n * sizeof *dst);
#else
        for (size_t i = 0; i < n; i++)
            dst[i] = bits_to_float(load_u32(src + 4 * i));
#endif
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = half_to_float(load_u16(src + 2 * i));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = bits_to_float((uint32_t)load_u16(src + 2 * i) << 16);
        break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = load_u64(src + 8 * i);
            double v;
            memcpy(&v, &u, sizeof v);
            dst[i] = (float)v;
        }
        break;
    case ST_I8:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int8_t)src[i];
        break;
    case ST_I64:
        break;
    }
}

/* ---------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------- */

static void format_shape(char *out, size_t cap, const int64_t *shape, int ndim) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

/* ---------------------------------------------------------------------------
 * Header: one tensor entry
 * ------------------------------------------------------------------------- */

/* Where a tensor's bytes lie in the data section. */
typedef struct st_span {
    size_t begin, end;
    size_t index;            /* into st_file.tensors */
} st_span;

/* Reads a non-negative JSON integer into *out, or fails naming `field`. */
static rn_status get_size(const json_value *v, const char *what, const char *name,
                          const char *field, size_t *out) {
    if (v->type != JSON_NUMBER || !v->is_int)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': %s at byte %zu is not an integer",
                       what, name, field, v->offset);
    if (v->integer < 0)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': %s at byte %zu is negative (%" PRId64 ")",
                       what, name, field, v->offset, v->integer);
    if ((uint64_t)v->integer > SIZE_MAX)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': %s at byte %zu is too large",
                       what, name, field, v->offset);
    *out = (size_t)v->integer;
    return RN_OK;
}

static rn_status parse_dtype(const json_value *v, const char *what, const char *name,
                             st_dtype *out) {
    if (v->type != JSON_STRING)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': dtype at byte %zu is not a string",
                       what, name, v->offset);
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(v->string, dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return RN_OK;
        }
    char shown[64];
    json_printable(shown, sizeof shown, v->string);
    for (size_t i = 0; i < sizeof unsupported_dtypes / sizeof unsupported_dtypes[0]; i++)
        if (strcmp(v->string, unsupported_dtypes[i]) == 0)
            return rn_fail(RN_ERR_UNSUPPORTED,
                           "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16, F64, I64, I8)",
                           what, name, shown);
    return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s' at byte %zu",
                   what, name, shown, v->offset);
}

static rn_status parse_shape(const json_value *v, const char *what, const char *name,
                             st_tensor *t) {
    if (v->type != JSON_ARRAY)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': shape at byte %zu is not an array",
                       what, name, v->offset);
    if (v->count > ST_MAX_DIMS)
        return rn_fail(RN_ERR_UNSUPPORTED,
                       "%s: tensor '%s': shape at byte %zu has %zu dimensions, at most %d supported",
                       what, name, v->offset, v->count, ST_MAX_DIMS);
    t->ndim = (int)v->count;
    t->numel = 1;
    for (size_t i = 0; i < v->count; i++) {
        size_t dim;
        char field[32];
        snprintf(field, sizeof field, "shape[%zu]", i);
        RN_TRY(get_size(&v->items[i], what, name, field, &dim));
        t->shape[i] = v->items[i].integer;
        if (!rn_size_mul(t->numel, dim, &t->numel))
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': shape at byte %zu overflows",
                           what, name, v->offset);
    }
    return RN_OK;
}

static rn_status parse_offsets(const json_value *v, const char *what, const char *name,
                               st_span *span) {
    if (v->type != JSON_ARRAY || v->count != 2)
        return rn_fail(RN_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets at byte %zu is not an array [begin, end]",
                       what, name, v->offset);
    RN_TRY(get_size(&v->items[0], what, name, "data_offsets[0]", &span->begin));
    RN_TRY(get_size(&v->items[1], what, name, "data_offsets[1]", &span->end));
    if (span->begin > span->end)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] at byte %zu end "
                       "before they begin", what, name, span->begin, span->end, v->offset);
    return RN_OK;
}

/* Parses member m (a tensor entry) into t and span, checking the byte size
 * of its shape against its offsets and the data section (data_len bytes). */
static rn_status parse_tensor(const json_member *m, size_t data_len, const char *what,
                              st_tensor *t, st_span *span) {
    char name[100];
    json_printable(name, sizeof name, m->key);
    if (m->value.type != JSON_OBJECT)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' at byte %zu is not an object",
                       what, name, m->value.offset);
    const json_value *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (size_t i = 0; i < m->value.count; i++) {
        const json_member *f = &m->value.members[i];
        if (strcmp(f->key, "dtype") == 0) {
            dtype = &f->value;
        } else if (strcmp(f->key, "shape") == 0) {
            shape = &f->value;
        } else if (strcmp(f->key, "data_offsets") == 0) {
            offsets = &f->value;
        } else {
            char key[64];
            json_printable(key, sizeof key, f->key);
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': unexpected key '%s' at byte %zu",
                           what, name, key, f->offset);
        }
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
    if (missing)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s' at byte %zu has no '%s'",
                       what, name, m->value.offset, missing);
    RN_TRY(parse_dtype(dtype, what, name, &t->dtype));
    RN_TRY(parse_shape(shape, what, name, t));
    RN_TRY(parse_offsets(offsets, what, name, span));

    char dims[160];
    format_shape(dims, sizeof dims, t->shape, t->ndim);
    size_t bytes;
    if (!rn_size_mul(t->numel, dtypes[t->dtype].size, &bytes))
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': shape %s %s overflows the byte size",
                       what, name, dims, dtypes[t->dtype].name);
    if (span->end - span->begin != bytes)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] span %zu bytes "
                       "but shape %s %s needs %zu", what, name, span->begin, span->end,
                       span->end - span->begin, dims, dtypes[t->dtype].name, bytes);
    if (span->end > data_len)
        return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] go past the end "
                       "of the data section (%zu bytes)", what, name, span->begin, span->end,
                       data_len);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Header: metadata and layout
 * ------------------------------------------------------------------------- */

static rn_status parse_meta(const json_value *v, const char *what, st_file *out) {
    if (v->type == JSON_NULL)
        return RN_OK;
    if (v->type != JSON_OBJECT)
        return rn_fail(RN_ERR_FORMAT, "%s: __metadata__ at byte %zu is not an object",
                       what, v->offset);
    if (v->count == 0)
        return RN_OK;
    out->meta = calloc(v->count, sizeof *out->meta);
    if (!out->meta)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for __metadata__", what);
    out->meta_count = v->count;
    for (size_t i = 0; i < v->count; i++) {
        const json_member *m = &v->members[i];
        if (m->value.type != JSON_STRING) {
            char key[64];
            json_printable(key, sizeof key, m->key);
            return rn_fail(RN_ERR_FORMAT, "%s: __metadata__ '%s' at byte %zu is not a string",
                           what, key, m->value.offset);
        }
        out->meta[i].key = strdup(m->key);
        out->meta[i].value = strdup(m->value.string);
        if (!out->meta[i].key || !out->meta[i].value)
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory for __metadata__", what);
    }
    return RN_OK;
}

static int compare_spans(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The tensors must tile the data section: sorted by begin, each starts where
 * the previous one ended, the first at 0 and the last at data_len. */
static rn_status check_layout(st_span *spans, size_t n, size_t data_base, size_t data_len,
                              const char *what, const st_file *f) {
    if (n > 1)
        qsort(spans, n, sizeof *spans, compare_spans);
    size_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        char name[100];
        json_printable(name, sizeof name, f->tensors[spans[i].index].name);
        if (spans[i].begin < covered) {
            char prev[100];
            json_printable(prev, sizeof prev, f->tensors[spans[i - 1].index].name);
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] overlap "
                           "tensor '%s' [%zu, %zu]", what, name, spans[i].begin, spans[i].end,
                           prev, spans[i - 1].begin, spans[i - 1].end);
        }
        if (spans[i].begin > covered)
            return rn_fail(RN_ERR_FORMAT, "%s: tensor '%s': data_offsets [%zu, %zu] leave bytes "
                           "[%zu, %zu) of the data section unused", what, name, spans[i].begin,
                           spans[i].end, covered, spans[i].begin);
        covered = spans[i].end;
    }
    if (covered != data_len)
        return rn_fail(RN_ERR_FORMAT, "%s: bytes [%zu, %zu) at the end of the data section "
                       "(file offset %zu) belong to no tensor", what, covered, data_len,
                       data_base + covered);
    return RN_OK;
}

/* ---------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------- */

/* Allocates t's values and converts its numel elements from src. */
static rn_status load_tensor(st_tensor *t, const unsigned char *src, const char *what) {
    size_t count = t->numel ? t->numel : 1, bytes;
    size_t size = t->dtype == ST_I64 ? sizeof *t->i64 : sizeof *t->f32;
    void *values = rn_size_mul(count, size, &bytes) ? rn_alloc(bytes) : NULL;
    if (!values)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for tensor data", what);
    if (t->dtype == ST_I64) {
        t->i64 = values;
        for (size_t j = 0; j < t->numel; j++)
            t->i64[j] = (int64_t)load_u64(src + 8 * j);
    } else {
        t->f32 = values;
        st_convert_to_float(t->dtype, src, t->f32, t->numel);
    }
    return RN_OK;
}

/* Fills `out` from a parsed header `root` and the data section, which
 * starts at byte data_base of the file; data == NULL checks the layout
 * against data_len but loads no values. */
static rn_status build(const json_value *root, const unsigned char *data, size_t data_base,
                       size_t data_len, const char *what, st_file *out) {
    if (root->type != JSON_OBJECT)
        return rn_fail(RN_ERR_FORMAT, "%s: header at byte %zu is not a JSON object",
                       what, root->offset);
    size_t n = 0;
    for (size_t i = 0; i < root->count; i++)
        n += strcmp(root->members[i].key, "__metadata__") != 0;
    st_span *spans = NULL;
    if (n > 0) {
        out->tensors = calloc(n, sizeof *out->tensors);
        spans = calloc(n, sizeof *spans);
        if (!out->tensors || !spans) {
            free(spans);
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory for %zu tensor entries", what, n);
        }
        out->count = n;
    }
    rn_status st = RN_OK;
    for (size_t i = 0, k = 0; i < root->count && st == RN_OK; i++) {
        const json_member *m = &root->members[i];
        if (strcmp(m->key, "__metadata__") == 0) {
            st = parse_meta(&m->value, what, out);
            continue;
        }
        st_tensor *t = &out->tensors[k];
        spans[k].index = k;
        if (!(t->name = strdup(m->key)))
            st = rn_fail(RN_ERR_NOMEM, "%s: out of memory", what);
        else
            st = parse_tensor(m, data_len, what, t, &spans[k]);
        k++;
    }
    if (st == RN_OK)
        st = check_layout(spans, n, data_base, data_len, what, out);
    for (size_t i = 0; data && i < n && st == RN_OK; i++)
        st = load_tensor(&out->tensors[spans[i].index], data + spans[i].begin, what);
    free(spans);
    return st;
}

/* The header length must leave room in a file of len bytes (len >= 8). */
static rn_status check_header_length(uint64_t hlen, size_t len, const char *what) {
    if (hlen == 0)
        return rn_fail(RN_ERR_FORMAT, "%s: header length at byte 0 is 0", what);
    if (hlen > len - 8)
        return rn_fail(RN_ERR_FORMAT, "%s: header length %" PRIu64 " at byte 0 goes past the end "
                       "of the file (%zu bytes)", what, hlen, len);
    if (hlen > ST_MAX_HEADER)
        return rn_fail(RN_ERR_FORMAT, "%s: header length %" PRIu64 " at byte 0 exceeds the "
                       "%u-byte limit", what, hlen, ST_MAX_HEADER);
    return RN_OK;
}

rn_status st_parse(const unsigned char *buf, size_t len, const char *what, st_file *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "st_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!what)
        what = "<buffer>";
    if (!buf && len)
        return rn_fail(RN_ERR_ARG, "%s: buffer is NULL", what);
    if (len < 8)
        return rn_fail(RN_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header "
                       "length", what, len);
    uint64_t hlen = load_u64(buf);
    rn_format looks = rn_sniff(buf, len);
    if ((hlen == 0 || hlen > len - 8) && looks != RN_FMT_SAFETENSORS && looks != RN_FMT_UNKNOWN)
        return rn_sniff_refuse(buf, len, what, "a safetensors file");
    RN_TRY(check_header_length(hlen, len, what));
    json_value root;
    rn_status st = json_parse((const char *)buf + 8, (size_t)hlen, 8, &root);
    if (st != RN_OK)
        return rn_fail_context(st, "%s: header", what);
    st = build(&root, buf + 8 + hlen, 8 + (size_t)hlen, len - 8 - (size_t)hlen, what, out);
    json_free(&root);
    if (st != RN_OK)
        st_free(out);
    return st;
}

rn_status st_read(const char *path, st_file *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "st_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return rn_fail(RN_ERR_ARG, "st_read: path is NULL");
    unsigned char *buf = NULL;
    size_t len = 0;
    RN_TRY(rn_file_read_all(path, &buf, &len));
    rn_status st = st_parse(buf, len, path, out);
    free(buf);
    return st;
}

rn_status st_read_meta(const char *path, st_file *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "st_read_meta: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return rn_fail(RN_ERR_ARG, "st_read_meta: path is NULL");
    FILE *f;
    size_t len;
    RN_TRY(rn_file_open(path, &f, &len));
    unsigned char len8[8];
    char *header = NULL;
    rn_status st = RN_OK;
    uint64_t hlen = 0;
    if (len < 8 || fread(len8, 1, 8, f) != 8)
        st = rn_fail(RN_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length", path, len);
    if (st == RN_OK)
        st = check_header_length(hlen = load_u64(len8), len, path);
    if (st == RN_OK && !(header = malloc((size_t)hlen)))
        st = rn_fail(RN_ERR_NOMEM, "%s: out of memory for the header", path);
    if (st == RN_OK && fread(header, 1, (size_t)hlen, f) != hlen)
        st = rn_fail(RN_ERR_IO, "%s: read failed in the header: %s", path,
                     ferror(f) ? strerror(errno) : "file shrank while reading");
    fclose(f);
    json_value root;
    if (st == RN_OK && (st = json_parse(header, (size_t)hlen, 8, &root)) != RN_OK)
        rn_fail_context(st, "%s: header", path);
    if (st == RN_OK) {
        st = build(&root, NULL, 8 + (size_t)hlen, len - 8 - (size_t)hlen, path, out);
        json_free(&root);
        if (st != RN_OK)
            st_free(out);
    }
    free(header);
    return st;
}

void st_free(st_file *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].f32);
        free(f->tensors[i].i64);
    }
    free(f->tensors);
    for (size_t i = 0; i < f->meta_count; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    memset(f, 0, sizeof *f);
}

int st_shape_is(const st_tensor *t, int ndim, const int64_t *shape) {
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    return same;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    if (!f || !name)
        return NULL;
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *st_meta_get(const st_file *f, const char *key) {
    if (!f || !key)
        return NULL;
    for (size_t i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

/* Checks one entry and computes its byte size. */
static rn_status check_entry(const st_entry *e, size_t i, const char *path, size_t *bytes) {
    if (!e->name || !json_utf8_valid(e->name, strlen(e->name)) ||
        strcmp(e->name, "__metadata__") == 0)
        return rn_fail(RN_ERR_ARG, "%s: entry %zu: name is NULL, not UTF-8 or reserved", path, i);
    char name[100];
    json_printable(name, sizeof name, e->name);
    if (e->dtype != ST_F32 && e->dtype != ST_I64 && e->dtype != ST_I8)
        return rn_fail(RN_ERR_ARG, "%s: tensor '%s': only F32, I64 and I8 can be written", path,
                       name);
    if (e->ndim < 0 || e->ndim > ST_MAX_DIMS || (e->ndim > 0 && !e->shape))
        return rn_fail(RN_ERR_ARG, "%s: tensor '%s': invalid ndim %d", path, name, e->ndim);
    size_t numel = 1;
    for (int d = 0; d < e->ndim; d++)
        if (e->shape[d] < 0 || (uint64_t)e->shape[d] > SIZE_MAX ||
            !rn_size_mul(numel, (size_t)e->shape[d], &numel))
            return rn_fail(RN_ERR_ARG, "%s: tensor '%s': invalid shape", path, name);
    if (!rn_size_mul(numel, dtypes[e->dtype].size, bytes))
        return rn_fail(RN_ERR_ARG, "%s: tensor '%s': byte size overflows", path, name);
    if (*bytes > 0 && !e->data)
        return rn_fail(RN_ERR_ARG, "%s: tensor '%s': data is NULL", path, name);
    return RN_OK;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails if two of names[0..n) are equal (sorts names). */
static rn_status check_unique(const char **names, size_t n, const char *path, const char *kind) {
    if (n > 1)
        qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            char name[100];
            json_printable(name, sizeof name, names[i]);
            return rn_fail(RN_ERR_ARG, "%s: duplicate %s '%s'", path, kind, name);
        }
    return RN_OK;
}

/* Builds the JSON header, padded with spaces to a multiple of 8 bytes. */
static rn_status build_header(json_buf *b, const st_entry *entries, size_t count,
                              const st_meta *meta, size_t meta_count, const size_t *bytes,
                              const char *path) {
    json_buf_put(b, "{", 1);
    if (meta_count > 0) {
        json_buf_string(b, "__metadata__");
        json_buf_put(b, ":{", 2);
        for (size_t i = 0; i < meta_count; i++) {
            if (i)
                json_buf_put(b, ",", 1);
            json_buf_string(b, meta[i].key);
            json_buf_put(b, ":", 1);
            json_buf_string(b, meta[i].value);
        }
        json_buf_put(b, "}", 1);
    }
    size_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        if (i || meta_count)
            json_buf_put(b, ",", 1);
        json_buf_string(b, entries[i].name);
        json_buf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[entries[i].dtype].name);
        for (int d = 0; d < entries[i].ndim; d++)
            json_buf_printf(b, "%s%" PRId64, d ? "," : "", entries[i].shape[d]);
        json_buf_printf(b, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes[i]);
        offset += bytes[i];  /* the sum was overflow-checked by the caller */
    }
    json_buf_put(b, "}", 1);
    while (!b->failed && b->len % 8 != 0)
        json_buf_put(b, " ", 1);
    if (b->failed)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory building the header", path);
    return RN_OK;
}

/* Writes n elements little-endian (byte by byte through a small buffer on other hosts). */
static int write_data(FILE *f, st_dtype d, const void *data, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return n == 0 || fwrite(data, dtypes[d].size, n, f) == n; /* the file's order is the host's */
#else
    unsigned char chunk[1 << 14];
    size_t size = dtypes[d].size, per = sizeof chunk / size;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        for (size_t j = 0; j < m; j++) {
            uint64_t u;
            if (d == ST_F32) {
                uint32_t u32;
                memcpy(&u32, (const float *)data + i + j, 4);
                u = u32;
            } else if (d == ST_I8) {
                u = ((const uint8_t *)data)[i + j];
            } else {
                memcpy(&u, (const int64_t *)data + i + j, 8);
            }
            for (size_t k = 0; k < size; k++)
                chunk[j * size + k] = (unsigned char)(u >> (8 * k));
        }
        if (fwrite(chunk, size, m, f) != m)
            return 0;
    }
    return 1;
#endif
}

rn_status st_write_to(rn_wfile *w, const st_entry *entries, size_t count, const st_meta *meta,
                      size_t meta_count) {
    if (!w || !w->f || (count && !entries) || (meta_count && !meta))
        return rn_fail(RN_ERR_ARG, "st_write_to: no file, or NULL entries or metadata");
    const char *path = w->path;
    size_t *bytes = calloc(count + 1, sizeof *bytes);
    const char **names = calloc(count + meta_count + 1, sizeof *names);
    if (!bytes || !names) {
        free(bytes);
        free(names);
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
    }
    rn_status st = RN_OK;
    size_t total = 0;
    for (size_t i = 0; i < count && st == RN_OK; i++) {
        st = check_entry(&entries[i], i, path, &bytes[i]);
        if (st == RN_OK && !rn_size_add(total, bytes[i], &total))
            st = rn_fail(RN_ERR_ARG, "%s: total data size overflows", path);
        names[i] = entries[i].name;
    }
    if (st == RN_OK)
        st = check_unique(names, count, path, "tensor name");
    for (size_t i = 0; i < meta_count && st == RN_OK; i++) {
        if (!meta[i].key || !meta[i].value || !json_utf8_valid(meta[i].key, strlen(meta[i].key)) ||
            !json_utf8_valid(meta[i].value, strlen(meta[i].value)))
            st = rn_fail(RN_ERR_ARG, "%s: metadata entry %zu is NULL or not UTF-8", path, i);
        names[i] = meta[i].key;
    }
    if (st == RN_OK)
        st = check_unique(names, meta_count, path, "metadata key");
    free(names);

    json_buf header = {0};
    if (st == RN_OK)
        st = build_header(&header, entries, count, meta, meta_count, bytes, path);
    if (st == RN_OK) {
        unsigned char len8[8];
        store_u64(len8, header.len);
        int ok = fwrite(len8, 1, 8, w->f) == 8 && fwrite(header.data, 1, header.len, w->f) == header.len;
        for (size_t i = 0; i < count && ok; i++)
            ok = write_data(w->f, entries[i].dtype, entries[i].data, bytes[i] / dtypes[entries[i].dtype].size);
        if (!ok)
            st = rn_wfile_error(w, errno);
    }
    json_buf_free(&header);
    free(bytes);
    return st;
}

rn_status st_write(const char *path, const st_entry *entries, size_t count,
                   const st_meta *meta, size_t meta_count) {
    rn_wfile w;
    RN_TRY(rn_wfile_open(&w, path));
    rn_status st = st_write_to(&w, entries, count, meta, meta_count);
    if (st != RN_OK) {
        rn_wfile_discard(&w);
        return st;
    }
    return rn_wfile_commit(&w);
}
