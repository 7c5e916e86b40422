/*
 * safetensors.h - reading and writing safetensors files.
 *
 * Format: 8-byte little-endian header length L, then L bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data; offsets are relative to the end of the header.
 *
 * The reader trusts nothing: header length within the file, valid JSON,
 * known dtypes, shapes whose byte size (overflow-checked) equals the offset
 * span, offsets in bounds, contiguous and non-overlapping. Every failure
 * names the file and the key or offset at fault.
 */
#ifndef RN_IO_SAFETENSORS_H
#define RN_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "io/file.h"
#include "resnet.h"

#define ST_MAX_DIMS 8

typedef enum st_dtype { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I8 } st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;              /* dtype as stored in the file */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    float *f32;                  /* converted values, for F32/F16/BF16/F64 and I8 (exact); else NULL */
    int64_t *i64;                /* values, for I64; else NULL */
} st_tensor;

typedef struct st_meta {
    char *key, *value;
} st_meta;

typedef struct st_file {
    st_tensor *tensors;
    size_t count;
    st_meta *meta;               /* the "__metadata__" object */
    size_t meta_count;
} st_file;

/* Reads a whole file. On failure *out is left empty (nothing to free). */
rn_status st_read(const char *path, st_file *out);
/* Same, from a buffer (`what` names it in messages). */
rn_status st_parse(const unsigned char *buf, size_t len, const char *what, st_file *out);
/* Reads only the header of a file: the metadata, and the tensors' names,
 * dtypes and shapes without their values (f32 and i64 are NULL). The
 * header is validated as st_read does, offsets against the file's size. */
rn_status st_read_meta(const char *path, st_file *out);

void st_free(st_file *f);

const st_tensor *st_find(const st_file *f, const char *name);

/* Whether t has the shape (shape[0], ..., shape[ndim - 1]). */
int st_shape_is(const st_tensor *t, int ndim, const int64_t *shape);
const char *st_meta_get(const st_file *f, const char *key);

/* What to write: F32 tensors from float, I64 from int64_t, I8 from int8_t data. */
typedef struct st_entry {
    const char *name;
    st_dtype dtype;              /* ST_F32, ST_I64 or ST_I8 */
    int ndim;
    const int64_t *shape;
    const void *data;
} st_entry;

/* Writes the file atomically (io/file.h): a failure leaves `path` as it was. */
rn_status st_write(const char *path, const st_entry *entries, size_t count,
                   const st_meta *meta, size_t meta_count);

/* Writes the file's bytes into w (rn_wfile_open'ed by the caller, who then
 * stages, commits or discards it). Nothing is written when an entry is
 * invalid. */
rn_status st_write_to(rn_wfile *w, const st_entry *entries, size_t count, const st_meta *meta,
                      size_t meta_count);

const char *st_dtype_name(st_dtype d);

/* Converts n little-endian elements of dtype d (F32, F16, BF16, F64, I8) at
 * src into dst, exactly (F16/BF16 subnormals, infinities and NaN payloads
 * kept; F64 rounded to nearest). I64 is left untouched. */
void st_convert_to_float(st_dtype d, const unsigned char *src, float *dst, size_t n);

#endif
