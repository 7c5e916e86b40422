/* protobuf.c - the protocol buffers wire format (contract in protobuf.h). */
#include "io/protobuf.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* ---------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------- */

void pb_buf_free(pb_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Room for `more` bytes; sets b->failed and returns 0 when there is none. */
static int reserve(pb_buf *b, size_t more) {
    size_t need;
    if (b->failed || !rn_size_add(b->len, more, &need)) {
        b->failed = 1;
        return 0;
    }
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (!rn_size_mul(cap, 2, &cap)) {
            cap = need;
            break;
        }
    }
    /* from 2 MB on a buffer of huge pages (mem.c), copied over rather than realloc'ed: an
     * ONNX file's weights written into 4 KB pages faulted in one by one cost a 500 MB export
     * a second in a virtual machine */
    unsigned char *p = cap >= RN_HUGE_BYTES ? rn_alloc(cap) : realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    if (cap >= RN_HUGE_BYTES) {
        if (b->len)
            memcpy(p, b->data, b->len);
        free(b->data);
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void varint_write(unsigned char *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p = (unsigned char)v;
}

static void put_raw_varint(pb_buf *b, uint64_t v) {
    if (!reserve(b, 10))
        return;
    varint_write(b->data + b->len, v);
    b->len += varint_size(v);
}

static void put_key(pb_buf *b, int field, int wire) {
    put_raw_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

void pb_put_varint(pb_buf *b, int field, uint64_t value) {
    put_key(b, field, PB_VARINT);
    put_raw_varint(b, value);
}

void pb_put_bytes(pb_buf *b, int field, const void *data, size_t len) {
    put_key(b, field, PB_LEN);
    put_raw_varint(b, len);
    if (len && reserve(b, len)) {
        memcpy(b->data + b->len, data, len);
        b->len += len;
    }
}

void pb_put_string(pb_buf *b, int field, const char *s) { pb_put_bytes(b, field, s, strlen(s)); }

static void put_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

void pb_put_float(pb_buf *b, int field, float value) {
    put_key(b, field, PB_FIXED32);
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if (reserve(b, 4)) {
        put_le32(b->data + b->len, bits);
        b->len += 4;
    }
}

void pb_put_packed_int64(pb_buf *b, int field, const int64_t *values, size_t n) {
    if (n == 0)
        return;
    size_t mark = pb_begin(b, field);
    for (size_t i = 0; i < n; i++)
        put_raw_varint(b, (uint64_t)values[i]);
    pb_end(b, mark);
}

void pb_put_floats_le(pb_buf *b, int field, const float *values, size_t n) {
    size_t bytes;
    if (!rn_size_mul(n, 4, &bytes)) {
        b->failed = 1;
        return;
    }
    put_key(b, field, PB_LEN);
    put_raw_varint(b, bytes);
    if (!reserve(b, bytes))
        return;
    unsigned char *p = b->data + b->len;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, values, bytes); /* the wire's order is the host's */
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        put_le32(p + 4 * i, bits);
    }
#endif
    b->len += bytes;
}

size_t pb_begin(pb_buf *b, int field) {
    put_key(b, field, PB_LEN);
    return b->len;
}

void pb_end(pb_buf *b, size_t mark) {
    if (b->failed)
        return;
    size_t content = b->len - mark, k = varint_size(content);
    if (!reserve(b, k))
        return;
    memmove(b->data + mark + k, b->data + mark, content);
    varint_write(b->data + mark, content);
    b->len += k;
}

/* ---------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------- */

pb_reader pb_reader_init(const unsigned char *data, size_t len, const unsigned char *base) {
    return (pb_reader){.p = data, .end = data + len, .base = base ? base : data};
}

pb_reader pb_reader_sub(const pb_reader *r, const pb_field *f) {
    return pb_reader_init(f->data, f->len, r->base);
}

size_t pb_varint_decode(const unsigned char *p, size_t len, uint64_t *v) {
    uint64_t x = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

int pb_next(pb_reader *r, pb_field *f, size_t *err_offset) {
    if (r->p >= r->end)
        return 0;
    const unsigned char *start = r->p;
    *err_offset = (size_t)(start - r->base);
    uint64_t key;
    size_t k = pb_varint_decode(r->p, (size_t)(r->end - r->p), &key);
    if (k == 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return -1;
    r->p += k;
    memset(f, 0, sizeof *f);
    f->number = (int)(key >> 3);
    f->wire = (int)(key & 7);
    f->offset = (size_t)(start - r->base);
    size_t left = (size_t)(r->end - r->p);
    *err_offset = (size_t)(r->p - r->base);
    switch (f->wire) {
    case PB_VARINT:
        k = pb_varint_decode(r->p, left, &f->varint);
        if (k == 0)
            return -1;
        r->p += k;
        return 1;
    case PB_FIXED64:
    case PB_FIXED32: {
        size_t n = f->wire == PB_FIXED64 ? 8 : 4;
        if (left < n)
            return -1;
        for (size_t i = n; i-- > 0;)
            f->varint = f->varint << 8 | r->p[i];
        f->data = r->p;
        f->len = n;
        r->p += n;
        return 1;
    }
    case PB_LEN: {
        uint64_t len;
        k = pb_varint_decode(r->p, left, &len);
        if (k == 0 || len > left - k)
            return -1;
        f->data = r->p + k;
        f->len = (size_t)len;
        r->p += k + (size_t)len;
        return 1;
    }
    default:
        return -1;
    }
}

float pb_field_float(const pb_field *f) {
    uint32_t bits = (uint32_t)f->varint;
    float v;
    memcpy(&v, &bits, 4);
    return v;
}
