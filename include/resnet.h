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

/* The stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool, the default) or
 * "cifar" (3x3/1 conv, no max-pool: for 32x32 and smaller images). */
typedef enum rn_stem { RN_STEM_IMAGENET = 0, RN_STEM_CIFAR = 1 } rn_stem;

/* As rn_model_create, with a choice of stem. */
rn_status rn_model_create_stem(const char *arch, int in_channels, int num_classes, rn_stem stem,
                               rn_model **out);
rn_stem rn_model_stem(const rn_model *model);

/* Re-initialises every parameter. scheme "default": PyTorch's defaults for
 * the architecture (torchvision: kaiming_normal fan_out convs; D2L: the
 * nn.Conv2d/nn.Linear defaults); "xavier": xavier_uniform weights. BatchNorm
 * becomes the identity (weight 1, bias 0, mean 0, var 1). Seeded. */
rn_status rn_model_init(rn_model *model, const char *scheme, uint64_t seed);

/* Loads a model from a weights file with PyTorch state_dict names: a
 * safetensors file, or a PyTorch checkpoint written by torch.save (zip or
 * legacy format), told apart by content; any other file is refused with a
 * message saying what it looks like. `arch` may be NULL when the file's
 * metadata names the architecture or its tensors tell it; in_channels and
 * num_classes are taken from the tensor shapes. Missing, unexpected,
 * wrong-shape or wrong-dtype tensors fail with the key named. */
rn_status rn_model_load(const char *path, const char *arch, rn_model **out);

/* As rn_model_load, also handing each string of the file's metadata to
 * get_meta(ctx, key, value) (in file order, before it returns; get_meta
 * may be NULL). The file is read once. PyTorch checkpoints have none. */
rn_status rn_model_load_meta(const char *path, const char *arch,
                             void (*get_meta)(void *ctx, const char *key, const char *value),
                             void *ctx, rn_model **out);

/* For fine-tuning: loads `path` into a new model with `num_classes`
 * outputs. Every tensor is loaded except, when the file's classifier has
 * another number of classes, fc.weight and fc.bias, which keep PyTorch's
 * default initialisation (seeded); *head_replaced (may be NULL) tells
 * which happened. */
rn_status rn_model_load_finetune(const char *path, const char *arch, int num_classes, uint64_t seed,
                                 rn_model **out, int *head_replaced);

/* Loads the tensors of a weights file into an existing model. */
rn_status rn_model_load_weights(rn_model *model, const char *path);

/* Writes the model's state_dict (PyTorch names, F32, I64 for
 * num_batches_tracked) to a safetensors file, with the architecture,
 * in_channels and num_classes in the metadata. PyTorch loads it with
 * load_state_dict(strict=True). */
rn_status rn_model_save(const rn_model *model, const char *path);

/* As rn_model_save, with extra string metadata (e.g. image_size, mean, std)
 * stored beside the architecture. */
rn_status rn_model_save_meta(const rn_model *model, const char *path, const char *const *keys,
                             const char *const *values, int count);

/* Reads one string of a weights file's metadata into value (capacity cap).
 * Returns RN_ERR_MISMATCH if the key is absent. */
rn_status rn_weights_meta(const char *path, const char *key, char *value, size_t cap);

/* Hands every string of a weights file's metadata to get_meta(ctx, key,
 * value), in file order, reading the file once. */
rn_status rn_weights_meta_each(const char *path,
                               void (*get_meta)(void *ctx, const char *key, const char *value),
                               void *ctx);

void rn_model_free(rn_model *model);

const char *rn_model_arch(const rn_model *model);
int rn_model_in_channels(const rn_model *model);
int rn_model_num_classes(const rn_model *model);
/* Number of trainable parameters (weights and biases, not BN statistics). */
int64_t rn_model_param_count(const rn_model *model);

/* Forward pass in one call: creates a session (below), runs it once and
 * frees it, so the weights are prepared anew every call. For more than one
 * batch, create a session. x: (n, in_channels, h, w) float32; logits:
 * (n, num_classes). Inputs too small for the network (a layer's output
 * would be empty) are refused. In RN_MODE_TRAIN BatchNorm normalizes with
 * batch statistics; running statistics are not modified. */
rn_status rn_model_forward(rn_model *model, const float *x, int n, int h, int w,
                           rn_mode mode, float *logits);

/* Floating-point operations (2 x multiply-accumulates) of one image's
 * forward pass at h x w. */
double rn_model_flops(const rn_model *model, int h, int w);

/* ---------------------------------------------------------------------------
 * Inference sessions
 *
 * A session runs a model: it holds the plan (an algorithm per convolution,
 * the activations' memory), the prepared weights (BatchNorm folded, packed,
 * transformed) and the kernels of one instruction set. The model stays
 * read-only: several sessions on one model may run at the same time, one
 * thread each. When the model's weights change (loading, training), the
 * session prepares them again before its next forward pass.
 * ------------------------------------------------------------------------- */

typedef struct rn_session rn_session;

typedef struct rn_session_config {
    /* kernels: NULL (the default: the environment variable RN_ISA if set,
     * else the best the CPU has), "avx512", "avx2" or "portable" */
    const char *isa;
    /* convolution algorithm: NULL or "auto" (a heuristic per layer), or a
     * name ("im2col", "pointwise", "winograd") forced wherever it applies,
     * the heuristic's choice elsewhere */
    const char *conv_algo;
} rn_session_config;

/* Fills *cfg with the defaults above. */
void rn_session_config_default(rn_session_config *cfg);

/* A session on `model` (which must outlive it); cfg may be NULL. Fails on an
 * unknown ISA or algorithm name, or an ISA this CPU cannot run. */
rn_status rn_session_create(const rn_model *model, const rn_session_config *cfg,
                            rn_session **out);
void rn_session_free(rn_session *s);

/* Forward pass, as rn_model_forward. Allocates only when the input size
 * changes or the batch is larger than any before. */
rn_status rn_session_forward(rn_session *s, const float *x, int n, int h, int w, rn_mode mode,
                             float *logits);

/* The instruction set of the session's kernels: "avx512", "avx2", "portable". */
const char *rn_session_isa(const rn_session *s);

/* The convolution algorithms of the current plan, e.g.
 * "im2col x3, pointwise x3, winograd x14", into buf (capacity cap). Fails
 * before the first forward pass. */
rn_status rn_session_algorithms(const rn_session *s, char *buf, size_t cap);

/* Bytes the session holds (activations, workspace, prepared weights). */
size_t rn_session_bytes(const rn_session *s);

/* Bytes a session of `model` with `cfg` (NULL: defaults) would hold to run
 * batches of up to n images of h x w: what rn_session_bytes gives after such
 * a forward pass, planned without allocating it, so that a caller can check
 * that it fits before starting. RN_ERR_NOMEM if it cannot be addressed. */
rn_status rn_session_plan_bytes(const rn_model *model, const rn_session_config *cfg, int n, int h, int w,
                                size_t *bytes);

/* The model name of this CPU (e.g. "AMD EPYC 9R14"), and whether an
 * instruction set ("avx512", "avx2", "portable") can run on it. */
const char *rn_cpu_model(void);
int rn_isa_supported(const char *isa);

/* RN_OK, or the error an RN_ISA environment variable naming an unknown
 * instruction set, or one this CPU lacks, causes. */
rn_status rn_isa_check(void);

/* ---------------------------------------------------------------------------
 * Training
 * ------------------------------------------------------------------------- */

typedef struct rn_train_config {
    const char *optimizer;   /* "sgd" (default) or "adamw" */
    double lr;               /* base learning rate (default 0.05) */
    double momentum;         /* SGD momentum (default 0) */
    int nesterov;            /* SGD Nesterov momentum (default 0) */
    double weight_decay;     /* SGD: added to the gradient; AdamW: decoupled (default 0) */
    double beta1, beta2, eps;          /* AdamW (defaults 0.9, 0.999, 1e-8) */
    const char *schedule;    /* "constant" (default), "step:S[:G]", "multistep:A,B[:G]",
                                "cosine[:ETA_MIN]", "onecycle[:PCT]" (see src/train/optim.h) */
    int64_t warmup_steps;    /* linear warm-up steps (default 0) */
    int64_t steps_per_epoch; /* needed by epoch-based schedules */
    int64_t total_steps;     /* needed by cosine and onecycle */
    float label_smoothing;   /* cross-entropy label smoothing (default 0) */
    double lr_backbone;      /* < 0 (default): the same lr; else every tensor but fc.* uses it */
    int freeze_backbone;     /* train fc.* only; BN statistics stay as they are */
    const char *conv_algo;   /* NULL or "auto" (default): Winograd F(4x4, 3x3) for the 3x3
                                stride-1 convolutions where it pays, forward and data
                                gradient (relative error ~1e-5); "im2col": the GEMM
                                paths everywhere, equal to PyTorch up to rounding */
} rn_train_config;

/* Fills *cfg with the defaults above. */
void rn_train_config_default(rn_train_config *cfg);

typedef struct rn_trainer rn_trainer;

/* A trainer owns the optimizer state for `model` (which must outlive it). */
rn_status rn_trainer_create(rn_model *model, const rn_train_config *cfg, rn_trainer **out);
void rn_trainer_free(rn_trainer *t);

typedef struct rn_step_result {
    float loss;              /* mean cross-entropy of the batch */
    int correct;             /* images whose top-1 class equals the label */
    double lr;               /* learning rate used for this step */
    int skipped;             /* 1: the loss, a gradient or a new BatchNorm
                                running statistic was not finite (NaN or
                                infinite); nothing was changed: weights, BatchNorm
                                statistics, optimizer state and step count are as
                                before the step */
} rn_step_result;

/* One optimizer step on a batch: forward in train mode (BatchNorm batch
 * statistics, running statistics updated as PyTorch does), backward, update.
 * x: (n, C, h, w) float32; labels: (n) in 0..num_classes-1. Allocates only
 * when the input size changes or the batch is larger than any before (a
 * smaller last batch runs in the same memory). A non-finite loss,
 * gradient or BatchNorm statistic skips the update (result->skipped). */
rn_status rn_trainer_step(rn_trainer *t, const float *x, const int32_t *labels, int n, int h,
                          int w, rn_step_result *result);

/* Optimizer steps taken so far (skipped steps not counted). */
int64_t rn_trainer_steps(const rn_trainer *t);

/* For data-parallel training: fn is called during each step's backward pass
 * every time the gradients of a range of the parameter block become final,
 * grads[offset .. offset + count) in floats of the block (the layout of the
 * state_dict's float tensors), from the end of the block towards its start,
 * each float exactly once per step. fn may change them in place (average
 * them over processes); the update reads them after the last call. NULL
 * removes the hook. */
typedef void (*rn_grad_hook)(void *ctx, float *grads, size_t offset, size_t count);
rn_status rn_trainer_set_grad_hook(rn_trainer *t, rn_grad_hook fn, void *ctx);

/* Bytes the trainer holds: gradients, optimizer state, training arena. */
size_t rn_trainer_bytes(const rn_trainer *t);

/* Bytes a trainer of `model` with `cfg` would hold for steps on batches of
 * up to n images of h x w: what rn_trainer_bytes gives after such a step,
 * planned without allocating anything, so that a caller can check that
 * training fits before starting. RN_ERR_NOMEM if it cannot be addressed. */
rn_status rn_trainer_plan_bytes(const rn_model *model, const rn_train_config *cfg, int n, int h, int w,
                                size_t *bytes);

/* The instruction set of the trainer's kernels: "avx512", "avx2", "portable". */
const char *rn_trainer_isa(const rn_trainer *t);

/* The convolution algorithms of the trainer's forward passes, as
 * rn_session_algorithms; fails before the first step. */
rn_status rn_trainer_algorithms(const rn_trainer *t, char *buf, size_t cap);

/* Saves / restores the optimizer state (momentum buffers or Adam moments and
 * the step count) to / from a safetensors file, with extra string metadata
 * (e.g. the data loader's position) that rn_trainer_load_state returns
 * through `get_meta(ctx, key, value)` for each key. */
rn_status rn_trainer_save_state(const rn_trainer *t, const char *path, const char *const *meta_keys,
                                const char *const *meta_values, int meta_count);
rn_status rn_trainer_load_state(rn_trainer *t, const char *path,
                                void (*get_meta)(void *ctx, const char *key, const char *value),
                                void *ctx);

/* Gradients of the mean cross-entropy loss of one batch, in train mode
 * (running statistics untouched), written to a safetensors file under the
 * parameter names. For tests and debugging. */
rn_status rn_model_save_gradients(rn_model *model, const float *x, const int32_t *labels, int n,
                                  int h, int w, float label_smoothing, const char *path, float *loss);

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
