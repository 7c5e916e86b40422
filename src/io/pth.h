/*
 * pth.h - reading PyTorch checkpoints written by torch.save without Python,
 * in either of its two formats, told apart by content:
 *
 * The zip format (PyTorch >= 1.6, see zip.h): <name>/data.pkl, <name>/data/<key>
 * for each storage and <name>/version, all under one top-level folder <name>.
 * A "byteorder" record saying other than "little" is refused, and so is a
 * TorchScript archive (torch.jit.save), with a message saying what it is.
 *
 * The legacy format (PyTorch < 1.6, or _use_new_zipfile_serialization=False),
 * five pickles and the raw storages one after another:
 *   1. torch's magic number 0x1950a86a20f9469cfc6c (an int);
 *   2. the protocol version, which must be 1001;
 *   3. sys_info, a dict; little_endian=False is refused;
 *   4. the object itself, whose persistent ids are ('storage', type, key,
 *      location, numel, view_metadata) with view_metadata None;
 *   5. the list of storage keys, each once;
 *   then, for each key in that order, an int64 element count (which must
 *   equal the numel its persistent ids declare) and count x element size
 *   bytes, little-endian; the file ends there. Every storage a persistent
 *   id names must be in the list, and every key in the list must be named,
 *   always with the same type and numel. Python 2 files (str as
 *   SHORT_BINSTRING) and PyTorch 0.3's _rebuild_tensor are read too.
 *
 * Both pickles are read by the restricted unpickler of pickle.h: nothing is
 * executed, and any global other than OrderedDict, the torch rebuild
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
 * inside the storage, and a storage must hold exactly numel x element size
 * bytes. Float/Half/BFloat16/Double storages come back as f32 (dtype
 * ST_F32/F16/BF16/F64, converted exactly, doubles rounded to nearest);
 * Long, Int, Short, Char, Byte and Bool as i64 (dtype ST_I64). Names are
 * the dict keys as they are ("module." prefixes kept here; the model loader,
 * weights.c, drops a DataParallel wrapper's). The result is the
 * same st_file the safetensors reader gives: free it with st_free().
 *
 * Anything else (safetensors, ONNX, text, ...) is refused by rn_sniff_refuse
 * (sniff.h), naming what the file looks like.
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

#endif
