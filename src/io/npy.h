/*
 * npy.h - a .npy file written a block at a time (npy.c; whole arrays: resnet.h's
 * rn_npy_write, which is one of these).
 *
 * Its shape is given first (the header comes before the data), then its elements in C order,
 * float32 ('<f4') or int64 ('<i8', written from int32 values: a dataset's labels), in as many
 * calls as the caller likes; the commit checks that exactly the shape's count came and renames
 * the file into place (file.h rn_wfile: written atomically, what was there before intact on any
 * failure). `resnet eval --features` writes a dataset's features batch by batch this way,
 * without holding them all.
 */
#ifndef RN_IO_NPY_H
#define RN_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "io/file.h"
#include "resnet.h"

typedef enum { RN_NPY_F32, RN_NPY_I64 } rn_npy_dtype;

typedef struct rn_npy_writer {
    rn_wfile w;
    rn_npy_dtype dtype;
    size_t total, written;  /* elements: the shape's, and so far */
} rn_npy_writer;

/* Checks the shape, opens the temporary file and writes the header. On failure *nw is empty
 * (rn_npy_writer_discard does nothing). */
rn_status rn_npy_writer_open(rn_npy_writer *nw, const char *path, rn_npy_dtype dtype, int ndim,
                             const int64_t *shape);

/* The next `count` elements: floats for RN_NPY_F32, int32 values stored as int64 for
 * RN_NPY_I64 (the other pointer is ignored). More than the shape holds, or a write error,
 * fails (the file is then discarded). */
rn_status rn_npy_writer_f32(rn_npy_writer *nw, const float *data, size_t count);
rn_status rn_npy_writer_i32(rn_npy_writer *nw, const int32_t *data, size_t count);

/* Renames the file into place when every element was written (else fails and discards it). */
rn_status rn_npy_writer_commit(rn_npy_writer *nw);

/* Abandons the file (the target untouched). */
void rn_npy_writer_discard(rn_npy_writer *nw);

#endif
