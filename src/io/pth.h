/*
 * pth.h - reading PyTorch checkpoints written by torch.save (the zip
 * format of PyTorch >= 1.6) without Python.
 *
 * The archive (see zip.h) holds <name>/data.pkl, <name>/data/<key> for each
 * storage and <name>/version, all under one top-level folder <name>. The
 * pickle is read by the restricted unpickler of pickle.h: nothing is
 * executed, and any global other than OrderedDict, the two torch rebuild
 * functions and the storage types is refused with its name.
 *
 * What it must hold: a dict that is a state_dict (str -> tensor), or a dict
 * wrapping one under "state_dict" (looked up first) or "model", as training
 * scripts save {"epoch": 3, "state_dict": {...}, "optimizer": {...}}. The
 * other entries of a wrapper may hold any plain value, tensors included;
 * they are not loaded. Nested dicts inside the state_dict are refused, as
 * are duplicate or non-str keys.
 *
 * Tensors may be any view of their storage (offset, strides, several
 * tensors sharing one storage): the highest element a view reaches must lie
 * inside the storage, and a storage's record must hold exactly
 * numel x element size bytes. Float/Half/BFloat16/Double storages come back
 * as f32 (dtype ST_F32/F16/BF16/F64, converted exactly, doubles rounded to
 * nearest); Long, Int, Short, Char, Byte and Bool as i64 (dtype ST_I64).
 * Names are the dict keys as they are ("module." prefixes kept). The result
 * is the same st_file the safetensors reader gives: free it with st_free().
 * The byte order must be little-endian (a "byteorder" record saying
 * otherwise is refused).
 */
#ifndef RN_IO_PTH_H
#define RN_IO_PTH_H

#include <stddef.h>

#include "io/safetensors.h"
#include "resnet.h"

/* Reads the checkpoint at `path`. On failure *out is left empty. */
rn_status pth_read(const char *path, st_file *out);

/* Same, from a buffer (`what` names it in messages). */
rn_status pth_parse(const unsigned char *buf, size_t len, const char *what, st_file *out);

/* 1 when buf starts like a torch.save zip archive (a local file header,
 * "PK\3\4"), else 0. */
int pth_sniff(const unsigned char *buf, size_t len);

#endif
