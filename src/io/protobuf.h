/*
 * protobuf.h - the protocol buffers wire format, as much of it as ONNX
 * files need: a growing buffer to encode messages into, and a bounded
 * reader that walks the fields of an encoded message.
 *
 * Wire format: a message is a sequence of fields, each a varint key
 * (field number << 3 | wire type) and a value: a varint (type 0), 8 bytes
 * (type 1), a varint length and that many bytes (type 2: strings, bytes,
 * nested messages, packed repeated scalars) or 4 bytes (type 5). Fields
 * may come in any order and repeat; groups (types 3 and 4) are obsolete
 * and not read.
 *
 * Nested messages are encoded in place: pb_begin writes the key and
 * remembers where the content starts; pb_end moves the content up by the
 * size of its length and writes the length in front. Each level of
 * nesting moves its content once.
 */
#ifndef RN_IO_PROTOBUF_H
#define RN_IO_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------- */

typedef struct pb_buf {
    unsigned char *data;
    size_t len, cap;
    int failed;                  /* an allocation failed: the content is incomplete */
} pb_buf;

void pb_buf_free(pb_buf *b);

/* Field `field` with a varint value (int32, int64, enum, bool; negative
 * numbers as their 64-bit two's complement, as protobuf does). */
void pb_put_varint(pb_buf *b, int field, uint64_t value);
/* A length-delimited field: bytes, or a string (pb_put_string, NUL excluded). */
void pb_put_bytes(pb_buf *b, int field, const void *data, size_t len);
void pb_put_string(pb_buf *b, int field, const char *s);
/* A float field (wire type 5, little-endian). */
void pb_put_float(pb_buf *b, int field, float value);
/* A packed repeated int64 field (skipped when n == 0). */
void pb_put_packed_int64(pb_buf *b, int field, const int64_t *values, size_t n);
/* A bytes field holding n floats little-endian (ONNX raw_data). */
void pb_put_floats_le(pb_buf *b, int field, const float *values, size_t n);

/* Opens a nested message in field `field`; returns the mark pb_end needs. */
size_t pb_begin(pb_buf *b, int field);
void pb_end(pb_buf *b, size_t mark);

/* ---------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------- */

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

/* Walks the fields of one message, data[0..len). base is the start of the
 * whole file, so that offsets in messages are the file's. */
typedef struct pb_reader {
    const unsigned char *p, *end, *base;
} pb_reader;

typedef struct pb_field {
    int number;                  /* field number, >= 1 */
    int wire;                    /* PB_VARINT, PB_FIXED64, PB_LEN or PB_FIXED32 */
    uint64_t varint;             /* PB_VARINT: the value; FIXED: the raw little-endian bits */
    const unsigned char *data;   /* PB_LEN: the bytes; FIXED: the value's bytes */
    size_t len;
    size_t offset;               /* offset of the field's key in the file */
} pb_field;

pb_reader pb_reader_init(const unsigned char *data, size_t len, const unsigned char *base);

/* The reader over a PB_LEN field's bytes (a nested message). */
pb_reader pb_reader_sub(const pb_reader *r, const pb_field *f);

/* Reads the next field into *f: 1 if there was one, 0 at the end of the
 * message, -1 if the bytes are malformed (a truncated or over-long
 * varint, a length past the end, field number 0, a group or an unknown
 * wire type); *err_offset then holds the offset of the bad byte. */
int pb_next(pb_reader *r, pb_field *f, size_t *err_offset);

/* The float of a PB_FIXED32 field. */
float pb_field_float(const pb_field *f);

/* Decodes one varint from p[0..len) into *v; returns the bytes it took, or
 * 0 if it is truncated or longer than 10 bytes. For packed fields. */
size_t pb_varint_decode(const unsigned char *p, size_t len, uint64_t *v);

#endif
