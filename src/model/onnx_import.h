/*
 * onnx_import.h - reading an ONNX ResNet as a state_dict, for the weights
 * loader (weights.c): rn_model_load and friends read ONNX files through it.
 */
#ifndef RN_MODEL_ONNX_IMPORT_H
#define RN_MODEL_ONNX_IMPORT_H

#include <stddef.h>

#include "io/safetensors.h"
#include "resnet.h"

/* Matches the ONNX model in buf[0..len) to an architecture (`arch`, or
 * the candidates in turn when NULL; see rn_model_load in resnet.h) and
 * hands back its state_dict under PyTorch's names, with the file's
 * metadata_props as metadata and "arch" set to the architecture found.
 * `what` names the file in messages. On failure *out is empty. */
rn_status rn_onnx_import(const unsigned char *buf, size_t len, const char *what, const char *arch,
                         st_file *out);

#endif
