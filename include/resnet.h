/*
 * resnet.h - the one public header of resnet.c: ResNets in plain C.
 *
 * Conventions
 *   - Every function that can fail returns an rn_status. RN_OK (0) means
 *     success; anything else means failure, and rn_last_error() then returns
 *     a one-line message naming the file, key or offset at fault. The library
 *     never prints, exits or aborts.
 *   - Handles (rn_model) are opaque. A handle is used by one thread at a time;
 *     the library itself may use several threads inside a call (rn_set_threads).
 *   - Images are float32 in (N, C, H, W) order, C-contiguous, as in PyTorch.
 */
#ifndef RESNET_H
#define RESNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RN_VERSION "0.1.0"

typedef enum rn_status {
    RN_OK = 0,
    RN_ERR_ARG,         /* an argument is invalid (NULL, out of range, unknown name) */
    RN_ERR_NOMEM,       /* an allocation failed or a size overflowed */
    RN_ERR_IO,          /* a file could not be opened, read or written */
    RN_ERR_FORMAT,      /* a file is malformed (header, JSON, offsets, dtype) */
    RN_ERR_MISMATCH,    /* a file is well formed but does not fit the model */
    RN_ERR_UNSUPPORTED  /* a valid request this build cannot do */
} rn_status;

/* The message describing the most recent failure on the calling thread
 * ("" if none). The pointer stays valid until the next failing call on
 * this thread. */
const char *rn_last_error(void);

/* A short name for a status code ("ok", "invalid argument", ...). */
const char *rn_status_name(rn_status status);

/* Number of threads the library's kernels use (default: all cores, or
 * OMP_NUM_THREADS). n <= 0 restores the default. Results are bitwise
 * deterministic for a given thread count. */
void rn_set_threads(int n);
int rn_get_threads(void);

/* ---------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------- */

typedef struct rn_model rn_model;

typedef enum rn_mode {
    RN_MODE_EVAL = 0,   /* BatchNorm uses the running statistics */
    RN_MODE_TRAIN = 1   /* BatchNorm uses the batch statistics (biased variance) */
} rn_mode;

/* The architectures, by name: "d2l_resnet18", "resnet18", "resnet34",
 * "resnet50", "resnet101", "resnet152". rn_arch_count()/rn_arch_name(i)
 * enumerate them. */
int rn_arch_count(void);
const char *rn_arch_name(int index);

/* Creates a model of architecture `arch` with `in_channels` input channels
 * and `num_classes` outputs, initialised as rn_model_init(m, "default", 0). */
rn_status rn_model_create(const char *arch, int in_channels, int num_classes,
                          rn_model **out);

/* Re-initialises every parameter. scheme "default": PyTorch's defaults for
 * the architecture (torchvision: kaiming_normal fan_out convs; D2L: the
 * nn.Conv2d/nn.Linear defaults); "xavier": xavier_uniform weights. BatchNorm
 * becomes the identity (weight 1, bias 0, mean 0, var 1). Seeded. */
rn_status rn_model_init(rn_model *model, const char *scheme, uint64_t seed);

/* Loads a model from a safetensors file with PyTorch state_dict names.
 * `arch` may be NULL when the file's metadata names the architecture;
 * in_channels and num_classes are taken from the tensor shapes. Missing,
 * unexpected, wrong-shape or wrong-dtype tensors fail with the key named. */
rn_status rn_model_load(const char *path, const char *arch, rn_model **out);

/* Loads the tensors of a safetensors file into an existing model. */
rn_status rn_model_load_weights(rn_model *model, const char *path);

/* Writes the model's state_dict (PyTorch names, F32, I64 for
 * num_batches_tracked) to a safetensors file, with the architecture,
 * in_channels and num_classes in the metadata. PyTorch loads it with
 * load_state_dict(strict=True). */
rn_status rn_model_save(const rn_model *model, const char *path);

void rn_model_free(rn_model *model);

const char *rn_model_arch(const rn_model *model);
int rn_model_in_channels(const rn_model *model);
int rn_model_num_classes(const rn_model *model);
/* Number of trainable parameters (weights and biases, not BN statistics). */
int64_t rn_model_param_count(const rn_model *model);

/* Forward pass. x: (n, in_channels, h, w) float32; logits: (n, num_classes).
 * h and w must be at least 32 (smaller inputs are refused when a layer's
 * output would be empty). In RN_MODE_TRAIN BatchNorm normalizes with batch
 * statistics; running statistics are not modified. */
rn_status rn_model_forward(rn_model *model, const float *x, int n, int h, int w,
                           rn_mode mode, float *logits);

/* Floating-point operations (2 x multiply-accumulates) of one image's
 * forward pass at h x w. */
double rn_model_flops(const rn_model *model, int h, int w);

/* ---------------------------------------------------------------------------
 * Layer summary (what `resnet info` prints)
 * ------------------------------------------------------------------------- */

typedef struct rn_layer_info {
    char name[96];      /* PyTorch module name, e.g. "layer1.0.conv1" */
    char type[24];      /* "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", ... */
    int depth;          /* nesting depth, 0 = top level */
    int out_c, out_h, out_w;  /* output shape for one image (h=w=1 for vectors) */
    int64_t params;     /* trainable parameters, children included */
    int64_t macs;       /* multiply-accumulates for one image, children included */
    int leaf;           /* 1 for a layer, 0 for a container (Sequential, block) */
} rn_layer_info;

/* Fills `layers` (capacity `cap`) with the module tree for an h x w input
 * and stores the number of entries in *count. With layers == NULL only
 * counts. Fails if the input is too small for the network. */
rn_status rn_model_summary(const rn_model *model, int h, int w,
                           rn_layer_info *layers, int cap, int *count);

/* ---------------------------------------------------------------------------
 * .npy arrays (float32, C order, little-endian)
 * ------------------------------------------------------------------------- */

#define RN_NPY_MAX_DIMS 8

/* Reads a float32 .npy file. On success *data is malloc'ed (free with
 * free()), *ndim and shape[0..ndim-1] describe it. Other dtypes, Fortran
 * order, big-endian data or a malformed header fail with a message. */
rn_status rn_npy_read(const char *path, float **data, int *ndim,
                      int64_t shape[RN_NPY_MAX_DIMS]);

/* Writes a float32 .npy file (format version 1.0). */
rn_status rn_npy_write(const char *path, const float *data, int ndim,
                       const int64_t *shape);

#ifdef __cplusplus
}
#endif

#endif /* RESNET_H */
