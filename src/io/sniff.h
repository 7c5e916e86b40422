/*
 * sniff.h - telling file formats apart by their first bytes, and refusing
 * the ones we do not read with a message that says what the file is.
 *
 * Every reader of weights goes through here: rn_model_load and friends pick
 * their reader with rn_sniff(), and st_parse()/pth_parse() call
 * rn_sniff_refuse() when the bytes are not theirs, so that a user who
 * hands over an ONNX model, a Git LFS pointer or an HTML page learns that,
 * and what is accepted instead, rather than a complaint about a header
 * length.
 */
#ifndef RN_IO_SNIFF_H
#define RN_IO_SNIFF_H

#include <stddef.h>

#include "resnet.h"

/* What the weights readers accept, for messages. */
#define RN_WEIGHT_FORMATS                                                                      \
    "resnet reads safetensors files and PyTorch checkpoints written by torch.save (the zip "  \
    "format, or the legacy format of _use_new_zipfile_serialization=False)"

typedef enum rn_format {
    RN_FMT_UNKNOWN,       /* binary data of no format below */
    RN_FMT_EMPTY,         /* 0 bytes */
    RN_FMT_SAFETENSORS,   /* an 8-byte header length, then '{' */
    RN_FMT_ZIP,           /* a zip archive: torch.save's format, or any other zip */
    RN_FMT_PICKLE,        /* a binary pickle (PROTO 2..5): torch.save's legacy format or not */
    RN_FMT_PICKLE_TEXT,   /* torch.save's legacy format written with pickle protocol 0 or 1 */
    RN_FMT_TAR,           /* a tar archive (the format of PyTorch's earliest releases) */
    RN_FMT_ONNX,          /* an ONNX ModelProto (protobuf) */
    RN_FMT_NPY,           /* a NumPy .npy array */
    RN_FMT_HDF5,          /* an HDF5 file (Keras .h5 weights) */
    RN_FMT_GZIP,          /* gzip-compressed data */
    RN_FMT_PNG,
    RN_FMT_JPEG,
    RN_FMT_LFS_POINTER,   /* a Git LFS pointer instead of the file it stands for */
    RN_FMT_HTML,          /* a web page (a download that went wrong) */
    RN_FMT_TEXT           /* other text */
} rn_format;

/* The format buf[0..len) looks like. Reads at most the first 4 KiB and the
 * last 64 KiB + 22 bytes (a zip's End of Central Directory record). */
rn_format rn_sniff(const unsigned char *buf, size_t len);

/* "a zip archive", "an ONNX model (protobuf)", ... */
const char *rn_format_name(rn_format format);

/* Fails with RN_ERR_UNSUPPORTED (RN_ERR_FORMAT for an empty file) and a
 * one-line message: "<what>: <what the file looks like>; <a hint>; <what
 * resnet reads>". For a file that is none of the formats `reader` reads;
 * `reader` names that reader's format ("a safetensors file", ...). */
rn_status rn_sniff_refuse(const unsigned char *buf, size_t len, const char *what,
                          const char *reader);

#endif
