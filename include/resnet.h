/*
 * resnet.h - the one public header of resnet.c: ResNets in plain C.
 *
 * Conventions
 *   - Every function that can fail returns an rn_status. RN_OK (0) means
 *     success; anything else means failure, and rn_last_error() then returns
 *     a one-line message naming the file, key or offset at fault. The library
 *     never prints, exits or aborts.
 *   - Handles (rn_model, rn_session, rn_trainer, ...) are opaque. A handle is
 *     used by one thread at a time, except that a model nobody changes may
 *     serve several sessions on several threads at once (see sessions). The
 *     library itself may use several threads inside a call (rn_set_threads).
 *     Every free function and the accessors (rn_model_arch, rn_session_isa,
 *     rn_trainer_steps, ...) take NULL: the accessors then give "" or 0.
 *   - Images are float32 in (N, C, H, W) order, C-contiguous, as in PyTorch.
 *   - Input sizes: a batch of 1 to 1000000 images of any height and width
 *     from 1 to 65536 (every layer of these networks keeps at least one
 *     pixel, as in PyTorch), as far as memory allows and as far as the
 *     kernels' int indices reach (a batch's pixels at any layer, images x
 *     height x width, at most 2^31 - 1); larger requests fail with
 *     RN_ERR_ARG, allocations that do not fit with RN_ERR_NOMEM.
 *
 * Build against the installed library with
 *     cc app.c $(pkg-config --cflags --libs resnet)
 * or, to link libresnet.a, with $(pkg-config --cflags --libs resnet-static).
 */
#ifndef RESNET_H
#define RESNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RN_VERSION "0.1.0"
#define RN_VERSION_MAJOR 0
#define RN_VERSION_MINOR 1
#define RN_VERSION_PATCH 0

/* RN_API marks the functions libresnet.so and the installed libresnet.a
 * export; the library is built with -fvisibility=hidden (and the static one
 * made one object whose other symbols are local), so everything else in it
 * stays internal. */
#if defined(__GNUC__) || defined(__clang__)
#define RN_API __attribute__((visibility("default")))
#else
#define RN_API
#endif

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
RN_API const char *rn_last_error(void);

/* A short name for a status code ("ok", "invalid argument", ...). */
RN_API const char *rn_status_name(rn_status status);

/* Number of threads the library's kernels use (default: all cores, or
 * OMP_NUM_THREADS). n <= 0 restores the default; n above RN_THREADS_MAX is
 * taken as RN_THREADS_MAX (a team of a million threads had been asked of
 * OpenMP). Results are bitwise deterministic for a given thread count. */
#define RN_THREADS_MAX 1024
RN_API void rn_set_threads(int n);
RN_API int rn_get_threads(void);

/* ---------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------- */

typedef struct rn_model rn_model;

typedef enum rn_mode {
    RN_MODE_EVAL = 0,   /* BatchNorm uses the running statistics */
    RN_MODE_TRAIN = 1   /* BatchNorm uses the batch statistics (biased variance) */
} rn_mode;

/* The ten architectures, by name: "d2l_resnet18" (the "Dive into Deep
 * Learning" ResNet-18: convs with bias, a 1x1 conv without BatchNorm as the
 * projection shortcut), and torchvision's "resnet18", "resnet34",
 * "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
 * "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d", with
 * torchvision's state_dict names. rn_arch_count()/rn_arch_name(i)
 * (0 <= i < count; NULL outside) enumerate them in this order. */
RN_API int rn_arch_count(void);
RN_API const char *rn_arch_name(int index);

/* Creates a model of architecture `arch` with `in_channels` (1..4096) input
 * channels and `num_classes` (1..1000000) outputs, initialised as
 * rn_model_init(m, "default", 0). */
RN_API rn_status rn_model_create(const char *arch, int in_channels, int num_classes,
                                 rn_model **out);

/* The stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool, the default) or
 * "cifar" (3x3/1 conv, no max-pool: for 32x32 and smaller images). */
typedef enum rn_stem { RN_STEM_IMAGENET = 0, RN_STEM_CIFAR = 1 } rn_stem;

/* As rn_model_create, with a choice of stem. */
RN_API rn_status rn_model_create_stem(const char *arch, int in_channels, int num_classes,
                                      rn_stem stem, rn_model **out);
RN_API rn_stem rn_model_stem(const rn_model *model);

/* The base width of every architecture as published: the stem's output
 * channels and the first stage's planes. */
#define RN_DEFAULT_WIDTH 64

/* As rn_model_create_stem, with the base width (1..4096): the stem has
 * `width` output channels and the four stages width, 2, 4 and 8 x width
 * planes (x 4 after a Bottleneck's expansion), so the classifier reads
 * 8 x width (32 x width) features. Width 32 halves every layer's channels
 * and needs about a quarter of the operations. The names of the tensors
 * stay PyTorch's; only their shapes change, and rn_model_load reads the
 * width back from them. For Bottleneck architectures width x
 * width_per_group (64; 128 for the wide ones, 4 and 8 for ResNeXt) must be
 * a multiple of 64. RN_ERR_ARG otherwise. */
RN_API rn_status rn_model_create_width(const char *arch, int in_channels, int num_classes,
                                       rn_stem stem, int width, rn_model **out);
/* The model's base width (RN_DEFAULT_WIDTH unless created or loaded narrower or wider). */
RN_API int rn_model_width(const rn_model *model);

/* Re-initialises every parameter. scheme "default": PyTorch's defaults for
 * the architecture (torchvision: kaiming_normal fan_out convs; D2L: the
 * nn.Conv2d/nn.Linear defaults); "xavier": xavier_uniform weights. BatchNorm
 * becomes the identity (weight 1, bias 0, mean 0, var 1). Seeded. An int8
 * model is refused (RN_ERR_UNSUPPORTED). */
RN_API rn_status rn_model_init(rn_model *model, const char *scheme, uint64_t seed);

/* Loads a model from a weights file: a safetensors file or a PyTorch
 * checkpoint written by torch.save (zip or legacy format) with PyTorch
 * state_dict names, or an ONNX model of one of the architectures; told
 * apart by content; any other file is refused with a message saying what
 * it looks like. `arch` may be NULL when the file's metadata names the
 * architecture or its tensors tell it; in_channels and num_classes are
 * taken from the tensor shapes. Missing, unexpected, wrong-shape or
 * wrong-dtype tensors fail with the key named. The base width
 * (rn_model_create_width) is the stem conv's output channels.
 *
 * ONNX models (as torch.onnx.export writes a torchvision ResNet, or
 * rn_model_export_onnx) are matched to an architecture by the graph's
 * structure, not by names: each node of the network's schedule must find
 * its ONNX node (Conv with its attributes and weight shape, then
 * BatchNormalization, Add and Relu as the unit has them; MaxPool;
 * GlobalAveragePool; Flatten and Gemm), Identity nodes over initializers
 * are followed, and no ONNX node may be left over. A Conv whose
 * BatchNormalization was folded into it (torch.onnx.export's default in
 * eval mode) loads with an identity BatchNorm (weight 1, bias = the conv's
 * bias, mean 0, var 1 - eps). With `arch` given, only that architecture is
 * tried. A graph that fits none fails with RN_ERR_MISMATCH naming the first
 * ONNX node that does not fit (for the architecture that fit furthest).
 * The file's metadata_props are its metadata. */
RN_API rn_status rn_model_load(const char *path, const char *arch, rn_model **out);

/* As rn_model_load, also handing each string of the file's metadata to
 * get_meta(ctx, key, value) (in file order, before it returns; get_meta
 * may be NULL). The file is read once. PyTorch checkpoints have none. */
RN_API rn_status rn_model_load_meta(const char *path, const char *arch,
                                    void (*get_meta)(void *ctx, const char *key, const char *value),
                                    void *ctx, rn_model **out);

/* For fine-tuning: loads `path` into a new model with `num_classes`
 * outputs. Every tensor is loaded except, when the file's classifier has
 * another number of classes, fc.weight and fc.bias, which keep PyTorch's
 * default initialisation (seeded); *head_replaced (may be NULL) tells
 * which happened. */
RN_API rn_status rn_model_load_finetune(const char *path, const char *arch, int num_classes,
                                        uint64_t seed, rn_model **out, int *head_replaced);

/* Loads the tensors of a weights file into an existing model. */
RN_API rn_status rn_model_load_weights(rn_model *model, const char *path);

/* Writes the model's state_dict (PyTorch names, F32, I64 for
 * num_batches_tracked) to a safetensors file, with the architecture,
 * in_channels and num_classes in the metadata. PyTorch loads it with
 * load_state_dict(strict=True). */
RN_API rn_status rn_model_save(const rn_model *model, const char *path);

/* As rn_model_save, with extra string metadata (e.g. image_size, mean, std)
 * stored beside the architecture. */
RN_API rn_status rn_model_save_meta(const rn_model *model, const char *path, const char *const *keys,
                                    const char *const *values, int count);

/* Reads one string of a weights file's metadata into value (capacity cap).
 * Returns RN_ERR_MISMATCH if the key is absent, RN_ERR_ARG (value "") if the
 * string does not fit in cap bytes with its terminating zero. */
RN_API rn_status rn_weights_meta(const char *path, const char *key, char *value, size_t cap);

/* Hands every string of a weights file's metadata to get_meta(ctx, key,
 * value), in file order, reading the file once. */
RN_API rn_status rn_weights_meta_each(const char *path,
                                      void (*get_meta)(void *ctx, const char *key, const char *value),
                                      void *ctx);

RN_API void rn_model_free(rn_model *model);

RN_API const char *rn_model_arch(const rn_model *model);
RN_API int rn_model_in_channels(const rn_model *model);
RN_API int rn_model_num_classes(const rn_model *model);
/* The length of an image's feature vector: what the classifier (fc) reads, the global average
 * pool of the last stage (512 for resnet18 and resnet34, 2048 for resnet50 and deeper, 8 x width x
 * expansion in general). */
RN_API int rn_model_feature_dim(const rn_model *model);
/* Number of trainable parameters (weights and biases, not BN statistics). */
RN_API int64_t rn_model_param_count(const rn_model *model);

/* Forward pass in one call: creates a session (below), runs it once and
 * frees it, so the weights are prepared anew every call. For more than one
 * batch, create a session. x: (n, in_channels, h, w) float32; logits:
 * (n, num_classes). Sizes as in the conventions at the top of this file.
 * In RN_MODE_TRAIN BatchNorm normalizes with batch statistics; running
 * statistics are not modified. */
RN_API rn_status rn_model_forward(rn_model *model, const float *x, int n, int h, int w,
                                  rn_mode mode, float *logits);

/* Floating-point operations (2 x multiply-accumulates) of one image's
 * forward pass at h x w; 0 for a NULL model, a size below 1, or one that
 * rn_model_summary refuses (past the kernels' int indices). */
RN_API double rn_model_flops(const rn_model *model, int h, int w);

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
     * else the best the CPU has), "amx", "avx512", "avx2" or "portable" */
    const char *isa;
    /* convolution algorithm: NULL or "auto" (a heuristic per layer), or a
     * name ("im2col", "pointwise", "winograd", "winograd2", "direct", "smallmap") forced
     * wherever it applies, the heuristic's choice elsewhere */
    const char *conv_algo;
    /* NULL or "auto": the model's own (int8 for a model `resnet quantize`
     * wrote, else fp32); "fp32"; "int8" (an int8 model only); "bf16" (a
     * float32 model): weights (BatchNorm folded) and activations rounded to
     * bf16 (round to nearest even), products accumulated in fp32, the
     * classifier and the biases in fp32. The products are bf16 dot
     * products where the CPU has them (AVX-512 BF16, AMX); elsewhere the
     * fp32 GEMM runs on the rounded operands (the same numbers, at fp32
     * speed). Winograd's layers multiply bf16 too (but on AMX), their
     * transformed operands rounded: about 3x bf16's error; conv_algo
     * "direct" runs every layer it can on exact products of the rounded
     * operands instead */
    const char *precision;
} rn_session_config;

/* Fills *cfg with the defaults above. */
RN_API void rn_session_config_default(rn_session_config *cfg);

/* ---- post-training int8 quantization ----------------------------------------------------------
 * Calibrate a float32 model on real images (the same preprocessing as for
 * inference), then make the int8 model (weights int8 per output channel
 * with BatchNorm folded, activations uint8 per tensor; README "int8"):
 *
 *     rn_calibrator *c;  rn_calibrator_create(model, h, w, "percentile", &c);
 *     rn_calibrator_add(c, batch, n);    for each calibration batch (N, C, H, W)
 *     rn_calibrator_quantize(c, &int8);  rn_model_save(int8, "m.int8.safetensors");
 *
 * method: "minmax", "percentile" (0.01% / 99.99% quantiles; NULL gives it)
 * or "entropy" (KL-divergence thresholds). Grouped convolutions (ResNeXt)
 * run as dense blocks of 16 channels (groups that do not gather into such
 * blocks are refused). An int8 model runs in sessions (precision "auto" or
 * "int8") and saves as an int8 file; it cannot be trained.
 * rn_calibrator_add takes a batch whole or not at all: a batch that cannot
 * run (too large), an image with a value that is not finite, or a batch
 * whose activations are not finite is refused with a message and leaves the
 * statistics as they were. */
typedef struct rn_calibrator rn_calibrator;
RN_API rn_status rn_calibrator_create(const rn_model *model, int h, int w, const char *method,
                                      rn_calibrator **out);
RN_API rn_status rn_calibrator_add(rn_calibrator *c, const float *x, int n);
RN_API long rn_calibrator_images(const rn_calibrator *c);
/* Convolutions of the calibrated schedule (0 before the first batch). */
RN_API int rn_calibrator_convs(const rn_calibrator *c);
RN_API rn_status rn_calibrator_quantize(rn_calibrator *c, rn_model **out);
RN_API void rn_calibrator_free(rn_calibrator *c);
/* The int8 model of a float32 `model` calibrated (percentile) on 8 images of h x w whose values
 * are uniform in [-1, 1) (a fixed seed): for timing int8 inference on any architecture without
 * a dataset (`resnet bench --precision int8`); its scales fit no real image. */
RN_API rn_status rn_quantize_synthetic(const rn_model *model, int h, int w, rn_model **out);
/* 1 for an int8 model, else 0. */
RN_API int rn_model_is_quantized(const rn_model *model);

/* An int8 model's conv layers (stem, then each block's units and shortcut):
 * fills up to cap entries of out (NULL: count only) and returns how many
 * there are (0 for a float32 model). */
typedef struct rn_quant_layer {
    const char *name;          /* the conv's module name, e.g. "layer1.0.conv1" */
    int cout;
    float w_scale_min, w_scale_max;   /* per output channel weight scales */
    float out_scale;           /* the layer's output: x = (q - out_zp) * out_scale */
    int out_zp;
} rn_quant_layer;
RN_API int rn_model_quant_layers(const rn_model *model, rn_quant_layer *out, int cap);
/* The network input's scale and zero point, and the calibration (method
 * returned, images in *images); NULL for a float32 model. */
RN_API const char *rn_model_quant_input(const rn_model *model, float *scale, int *zp, int *images);

/* A session on `model` (which must outlive it); cfg may be NULL. Fails on an
 * unknown ISA or algorithm name, or an ISA this CPU cannot run. */
RN_API rn_status rn_session_create(const rn_model *model, const rn_session_config *cfg,
                                   rn_session **out);
RN_API void rn_session_free(rn_session *s);

/* Forward pass, as rn_model_forward. Allocates only when the input size
 * changes or the batch is larger than any before at this size (a new size no
 * taller and no wider than the last keeps room for the largest batch so far;
 * any other is planned for its own batch). The convolution algorithms are chosen for
 * the batch the plan holds, so a session that ran larger batches may sum a
 * smaller one in another order than a fresh session (within the algorithms'
 * tolerances; bitwise the same for the same sequence of calls). */
RN_API rn_status rn_session_forward(rn_session *s, const float *x, int n, int h, int w, rn_mode mode,
                                    float *logits);

/* A forward pass that gives every image's features, (n, rn_model_feature_dim) float32 row-major:
 * the global average pool of the last stage, what the classifier reads (torchvision: the model
 * with fc = nn.Identity(), or create_feature_extractor's "flatten" node), for embeddings, image
 * search or a linear probe; and the logits in the same pass where `logits` is not NULL (the
 * classifier is skipped where it is). Any precision: an int8 session's features are its average
 * pool's dequantized output (an image with a value that is not finite gets NaN features there,
 * as in float32). Otherwise as rn_session_forward. */
RN_API rn_status rn_session_forward_features(rn_session *s, const float *x, int n, int h, int w,
                                             rn_mode mode, float *features, float *logits);

/* The network's stages, whose outputs rn_session_forward_stage gives: RN_STAGE_STEM the stem's
 * (after its max-pool where it has one), 1..4 the four residual stages' (torchvision's layer1 ..
 * layer4, d2l's conv.resnet_block1 .. 4: create_feature_extractor's return nodes), RN_STAGE_POOL
 * the pooled features (rn_session_forward_features'). */
#define RN_STAGE_STEM 0
#define RN_STAGE_POOL 5
/* The stage a name means: "stem" or the module the stem ends with ("maxpool", d2l's
 * "conv.block.3"; "relu" / "conv.block.2" for the CIFAR stem), "layer1" .. "layer4" or the
 * architecture's own names of its stages, "pool", "avgpool" or "flatten" (the pooled features,
 * (n, D) from rn_session_forward_stage: torchvision's "flatten" node, its "avgpool" one being
 * the same numbers as (n, D, 1, 1)); -1 for any other. */
RN_API int rn_model_stage_index(const rn_model *model, const char *name);
/* The module name of a stage's output in the architecture's naming ("maxpool", "layer3",
 * "conv.resnet_block3", "avgpool", d2l's "pool"), "" for a stage outside 0..5. */
RN_API const char *rn_model_stage_name(const rn_model *model, int stage);
/* A stage's output shape for one h x w image: channels and map size (1 x 1 for the pool).
 * RN_ERR_ARG for a stage outside 0..5 or an input the network cannot take. */
RN_API rn_status rn_model_stage_shape(const rn_model *model, int stage, int h, int w, int *c,
                                      int *oh, int *ow);
/* A forward pass up to a stage's output, into out as (n, c, oh, ow) float32 (rn_model_stage_shape;
 * nothing after the stage runs). Any precision: an int8 session's maps are its uint8 values
 * dequantized ((q - zero point) x scale), a bf16 session's its float32 values (activations stay
 * float32 between its layers, rounded as each layer packs them). */
RN_API rn_status rn_session_forward_stage(rn_session *s, const float *x, int n, int h, int w,
                                          rn_mode mode, int stage, float *out);

/* The instruction set of the session's kernels: "amx", "avx512", "avx2", "portable". */
RN_API const char *rn_session_isa(const rn_session *s);

/* The convolutions' GEMM kernel, named with its register tile: "avx2 6x16",
 * "avx512-bf16 8x48", "avx512-vnni 32x12" (int8), ... */
RN_API const char *rn_session_kernel(const rn_session *s);

/* The precision the session runs in: "fp32", "bf16" or "int8". */
RN_API const char *rn_session_precision(const rn_session *s);

/* The convolution algorithms of the current plan, e.g.
 * "im2col x3, pointwise x3, winograd x14", into buf (capacity cap; 256 bytes
 * hold any). Fails before the first forward pass, and with RN_ERR_ARG (buf
 * "") where the text does not fit. */
RN_API rn_status rn_session_algorithms(const rn_session *s, char *buf, size_t cap);

/* Bytes the session holds (activations, workspace, prepared weights). */
RN_API size_t rn_session_bytes(const rn_session *s);

/* Bytes a session of `model` with `cfg` (NULL: defaults) would hold to run
 * batches of up to n images of h x w: what rn_session_bytes gives after such
 * a forward pass, planned without allocating it, so that a caller can check
 * that it fits before starting. RN_ERR_NOMEM if it cannot be addressed. */
RN_API rn_status rn_session_plan_bytes(const rn_model *model, const rn_session_config *cfg, int n, int h,
                                       int w, size_t *bytes);

/* The model name of this CPU (e.g. "AMD EPYC 9R14"), and whether an
 * instruction set ("amx", "avx512", "avx2", "portable") can run on it. */
RN_API const char *rn_cpu_model(void);
RN_API int rn_isa_supported(const char *isa);

/* RN_OK, or the error an RN_ISA environment variable naming an unknown
 * instruction set, or one this CPU lacks, causes. */
RN_API rn_status rn_isa_check(void);

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
    const char *schedule;    /* the learning rate of 0-based step t, as torch.optim.lr_scheduler
                                stepped after each optimizer step, epoch e = t / steps_per_epoch,
                                T = total_steps:
                                "constant" (default): lr;
                                "step:S[:G]": lr * G^(e / S) (StepLR, G default 0.1);
                                "multistep:A,B,..[:G]": lr * G^(epochs A, B, .. <= e) (MultiStepLR);
                                "cosine[:ETA_MIN]": ETA_MIN + (lr - ETA_MIN)(1 + cos(pi t / T)) / 2
                                (CosineAnnealingLR, ETA_MIN default 0);
                                "onecycle[:PCT]": OneCycleLR(max_lr=lr, total_steps=T,
                                pct_start=PCT (default 0.3), cos annealing, div_factor 25,
                                final_div_factor 1e4, momentum not cycled);
                                "exponential:G": lr * G^e (ExponentialLR stepped per epoch);
                                times (t + 1) / warmup_steps during the warm-up (the
                                warm-up's options and schedule_by_epoch below change this) */
    int64_t warmup_steps;    /* linear warm-up steps (default 0) */
    int64_t steps_per_epoch; /* needed by epoch-based schedules */
    int64_t total_steps;     /* needed by cosine and onecycle */
    float label_smoothing;   /* cross-entropy label smoothing (default 0) */
    double lr_backbone;      /* < 0 (default): the same lr; else every tensor but fc.* uses it,
                                the schedule run from it as PyTorch runs a second parameter
                                group (cosine's eta_min the floor of both; onecycle as
                                max_lr=[lr_backbone, lr]) */
    int freeze_backbone;     /* train fc.* only; BN statistics stay as they are */
    const char *conv_algo;   /* NULL or "auto" (default): Winograd F(4x4, 3x3) for the 3x3
                                stride-1 convolutions where it pays, forward and data
                                gradient (relative error ~1e-5), the direct convolution
                                (exact) for the stems and narrow layers; "im2col": the GEMM
                                paths everywhere, equal to PyTorch up to rounding */
    const char *precision;   /* NULL or "fp32" (default); "bf16": mixed precision, the
                                convolutions' and the classifier's GEMM products (forward,
                                data and weight gradients) and the direct convolution's
                                forward on bf16-rounded operands with fp32 sums; the layers
                                the heuristic gives to Winograd run their forward and
                                weight gradient on its fp32 products, their data gradient on
                                bf16 ones (fp32 on AMX); the weight gradients of the stems
                                and (but on AMX) of 1x1 layers on up to 128 input channels
                                on fp32 products too; everything else fp32 (master
                                weights, optimizer state, BatchNorm, activations as
                                stored). Needs a CPU with bf16 products (AVX-512 BF16 or
                                AMX) or RN_ISA=portable */
    int64_t schedule_offset; /* the schedule runs at the optimizer's step + this (default 0):
                                a run resumed with other steps per epoch (another batch size
                                or dataset) goes on from where its images are in the new plan */
    double norm_weight_decay; /* < 0 (default): weight_decay; else the weight decay of the
                                BatchNorm weights and biases (a parameter group of their own,
                                as torchvision's set_weight_decay makes for --norm-weight-decay;
                                0 is the usual choice); SGD and AdamW alike. A config not filled
                                by rn_train_config_default has 0 here: no decay on BatchNorm */
    double clip_grad_norm;   /* > 0: before each update the gradients of the tensors it updates
                                are scaled by min(1, clip / (norm + 1e-6)), norm their total
                                L2 norm, as torch.nn.utils.clip_grad_norm_ (torchvision's
                                --clip-grad-norm); under data parallelism the norm of the
                                averaged gradients. 0 (default): no clipping */
    double ema_decay;        /* in (0, 1): the trainer keeps an exponential moving average of
                                the weights and BatchNorm statistics (torchvision's
                                ExponentialMovingAverage: AveragedModel with use_buffers),
                                updated after the batches 0, ema_every, 2 ema_every, ... of
                                each epoch (their index in it: the schedule's step modulo
                                steps_per_epoch, or the schedule's step without it), as
                                torchvision's reference does, as avg = decay * avg +
                                (1 - decay) * w; the first update, and every update within
                                the warm-up, copies w (torchvision resets it during
                                warm-up).
                                rn_trainer_ema_weights reads it. 0 (default): none */
    int ema_every;           /* batches of an epoch between the average's updates
                                (rn_train_config_default: 32, torchvision's
                                --model-ema-steps; 0 is taken as 1) */
    /* The warm-up and the schedule as torchvision's classification reference runs them
     * (--lr-warmup-method, --lr-warmup-decay, a SequentialLR stepped once an epoch); all 0
     * (default): the product above, stepped every step. */
    double warmup_factor;    /* > 0: the warm-up starts at lr * this (LinearLR's start_factor,
                                reaching lr at warmup_steps; ConstantLR's factor; in (0, 1]);
                                0: (t + 1) / warmup_steps (linear), 1/3 (constant) */
    int warmup_constant;     /* the warm-up holds lr * warmup_factor (ConstantLR), not a ramp */
    int warmup_sequential;   /* the schedule starts after the warm-up and runs over the steps
                                left (SequentialLR([warm-up, schedule], [warmup_steps])); 0: it
                                runs from step 0, times the warm-up (ChainedScheduler) */
    int schedule_by_epoch;   /* the learning rate changes only between epochs, the schedule
                                and the warm-up counted in epochs (torchvision's reference
                                steps its scheduler once an epoch); warmup_steps must then be
                                whole epochs. See src/train/optim.h for the exact formulas */
} rn_train_config;

/* Fills *cfg with the defaults above. */
RN_API void rn_train_config_default(rn_train_config *cfg);

typedef struct rn_trainer rn_trainer;

/* A trainer owns the optimizer state for `model` (which must outlive it). cfg NULL: the
 * defaults (rn_train_config_default). */
RN_API rn_status rn_trainer_create(rn_model *model, const rn_train_config *cfg, rn_trainer **out);
RN_API void rn_trainer_free(rn_trainer *t);

typedef struct rn_step_result {
    float loss;              /* mean cross-entropy of the batch */
    int correct;             /* images whose top-1 class equals the label */
    double lr;               /* learning rate used for this step */
    int skipped;             /* 1: the loss, a gradient or a new BatchNorm
                                running statistic was not finite (NaN or
                                infinite); nothing was changed: weights, BatchNorm
                                statistics, optimizer state and step count are as
                                before the step */
    double grad_norm;        /* with clip_grad_norm > 0, the total L2 norm of the
                                gradients before clipping (the step clipped them
                                where it is above clip_grad_norm); else 0 */
} rn_step_result;

/* One optimizer step on a batch: forward in train mode (BatchNorm batch
 * statistics, running statistics updated as PyTorch does), backward, update.
 * x: (n, C, h, w) float32; labels: (n) in 0..num_classes-1. Allocates only
 * when the input size changes or the batch is larger than any before (a
 * smaller last batch runs in the same memory). A non-finite loss,
 * gradient or BatchNorm statistic skips the update (result->skipped). */
RN_API rn_status rn_trainer_step(rn_trainer *t, const float *x, const int32_t *labels, int n, int h,
                                 int w, rn_step_result *result);

/* rn_trainer_step on a mixed batch (mixup, CutMix; rn_batch_mix makes one): labels2 (n) the
 * label of the image mixed into each and lam the share of labels, the loss the cross-entropy
 * against (1 - s) * (lam * onehot(labels) + (1 - lam) * onehot(labels2)) + s / K (s the label
 * smoothing), as torchvision's RandomMixup / RandomCutmix targets with
 * CrossEntropyLoss(label_smoothing=s); result->correct counts the images whose top-1 is the
 * label of the larger share. labels2 NULL: rn_trainer_step. */
RN_API rn_status rn_trainer_step_mixed(rn_trainer *t, const float *x, const int32_t *labels,
                                       const int32_t *labels2, float lam, int n, int h, int w,
                                       rn_step_result *result);

/* Optimizer steps taken so far (skipped steps not counted). */
RN_API int64_t rn_trainer_steps(const rn_trainer *t);

/* For data-parallel training: fn is called during each step's backward pass
 * every time the gradients of a range of the parameter block become final,
 * grads[offset .. offset + count) in floats of the block (the layout of the
 * state_dict's float tensors), from the end of the block towards its start,
 * each float exactly once per step. fn may change them in place (average
 * them over processes); the update reads them after the last call. NULL
 * removes the hook. */
typedef void (*rn_grad_hook)(void *ctx, float *grads, size_t offset, size_t count);
RN_API rn_status rn_trainer_set_grad_hook(rn_trainer *t, rn_grad_hook fn, void *ctx);

/* For data-parallel training, the point between the gradients and the
 * update: fn is called once per step, after backward (and the gradient
 * hook's last call) and before anything is updated, with the gradient block
 * grads[0 .. count) and this process's mean loss and correct images of the
 * batch. fn must leave the gradients final (wait for the reductions the
 * gradient hook started) and may replace *loss and *correct by their values
 * over all processes: the step reports those, and skips the update when
 * that loss (or a gradient) is not finite, so all processes skip together.
 * *loss comes in as NaN where this process's new BatchNorm running statistics
 * would not be finite (its share of the batch's, without a BatchNorm sync
 * hook), so that a sum over the processes makes every one skip.
 * fn cannot fail the step: a failure is fn's to handle (an MPI process
 * group aborts). NULL removes the hook. */
typedef void (*rn_update_hook)(void *ctx, float *grads, size_t count, float *loss, int *correct);
RN_API rn_status rn_trainer_set_update_hook(rn_trainer *t, rn_update_hook fn, void *ctx);

/* Synchronised BatchNorm for data-parallel training (PyTorch's
 * SyncBatchNorm): with fn set, every BatchNorm of a training step calls
 * fn(ctx, v, len) once in forward and once in backward, in the same order
 * in every process, and fn must replace v[0 .. len) by its elementwise sum
 * over all processes:
 *   forward,  len = 2C + 1: v = [sum x (C channels), sum x^2 (C), values per channel]
 *   backward, len = 2C:     v = [sum dy (C), sum dy * xhat (C)]
 * (C: the layer's channels; x its input, dy the gradient of its output,
 * xhat the normalised input, sums over this process's batch). BatchNorm
 * then normalises with the global mean and biased variance, running_var
 * moves by the unbiased global variance, and backward differentiates
 * through the global statistics; the BatchNorm weight and bias gradients
 * stay this process's own (the gradient hook averages them as any other).
 * NULL removes the hook: each process normalises by its own batch. Without
 * effect with freeze_backbone (BatchNorm is in eval mode). */
typedef void (*rn_bn_sync_hook)(void *ctx, double *v, size_t len);
RN_API rn_status rn_trainer_set_bn_sync(rn_trainer *t, rn_bn_sync_hook fn, void *ctx);

/* Bytes the trainer holds: gradients, optimizer state, training arena. */
RN_API size_t rn_trainer_bytes(const rn_trainer *t);

/* Bytes a trainer of `model` with `cfg` would hold for steps on batches of
 * up to n images of h x w: what rn_trainer_bytes gives after such a step,
 * planned without allocating anything, so that a caller can check that
 * training fits before starting (cfg NULL: the defaults). RN_ERR_NOMEM if it
 * cannot be addressed. */
RN_API rn_status rn_trainer_plan_bytes(const rn_model *model, const rn_train_config *cfg, int n, int h,
                                       int w, size_t *bytes);

/* The instruction set of the trainer's kernels: "amx", "avx512", "avx2", "portable" (fp32
 * training on amx runs the AVX-512 kernels; bf16 training the AMX tiles). */
RN_API const char *rn_trainer_isa(const rn_trainer *t);

/* The exponential moving average of the weights (rn_train_config.ema_decay) into dst, a
 * model of the trainer's architecture, classes and shapes (rn_model_create_width with the
 * trainer's model's arguments): its weights and BatchNorm statistics become the average's,
 * its BatchNorm counters the trainer's model's. RN_ERR_ARG without an average, or for a
 * dst of other shapes. Before the first update the average is the weights the trainer
 * started from. */
RN_API rn_status rn_trainer_ema_weights(const rn_trainer *t, rn_model *dst);

/* The trainer's GEMM kernel, named with its register tile: "avx2 6x16", "avx512-bf16 8x48", ... */
RN_API const char *rn_trainer_kernel(const rn_trainer *t);

/* The precision of the trainer's products: "fp32" or "bf16" (rn_train_config.precision). */
RN_API const char *rn_trainer_precision(const rn_trainer *t);

/* The convolution algorithms of the trainer's forward passes, as
 * rn_session_algorithms; fails before the first step. */
RN_API rn_status rn_trainer_algorithms(const rn_trainer *t, char *buf, size_t cap);

/* Saves / restores the optimizer state (momentum buffers or Adam moments,
 * the step count, and the weights' moving average with its update count
 * where the trainer keeps one) to / from a safetensors file (a file without
 * an average restores none: the trainer's starts again from the weights at
 * its next update), with extra string metadata
 * (e.g. the data loader's position) that rn_trainer_load_state returns
 * through `get_meta(ctx, key, value)` for each key. */
RN_API rn_status rn_trainer_save_state(const rn_trainer *t, const char *path, const char *const *meta_keys,
                                       const char *const *meta_values, int meta_count);
RN_API rn_status rn_trainer_load_state(rn_trainer *t, const char *path,
                                       void (*get_meta)(void *ctx, const char *key, const char *value),
                                       void *ctx);

/* Gradients of the mean cross-entropy loss of one batch, in train mode
 * (running statistics untouched), written to a safetensors file under the
 * parameter names. For tests and debugging; an int8 model is refused
 * (RN_ERR_UNSUPPORTED). */
RN_API rn_status rn_model_save_gradients(rn_model *model, const float *x, const int32_t *labels, int n,
                                         int h, int w, float label_smoothing, const char *path, float *loss);

/* ---------------------------------------------------------------------------
 * Datasets, batches and evaluation
 *
 * A dataset is a set of labelled images: uint8 pixels held in memory (given
 * by the caller, or read from MNIST / Fashion-MNIST / CIFAR-10 files), or an
 * image folder whose files are decoded batch by batch. A loader turns a
 * dataset into float batches for rn_trainer_step and rn_session_forward,
 * with the preprocessing and augmentation `resnet train` uses; rn_evaluate
 * runs a whole dataset through a model.
 * ------------------------------------------------------------------------- */

typedef struct rn_dataset rn_dataset;

/* An in-memory dataset of `count` images, copied: pixels (count, channels,
 * height, width) uint8 in channel-major order, labels (count) in
 * 0..num_classes-1, class_names (num_classes strings, none NULL) or NULL. count >= 1,
 * channels 1..4, height and width 1..65536, num_classes 1..1000000. A
 * label out of range fails with RN_ERR_ARG naming the image. */
RN_API rn_status rn_dataset_create(int count, int channels, int height, int width, int num_classes,
                                   const uint8_t *pixels, const int32_t *labels,
                                   const char *const *class_names, rn_dataset **out);

/* A dataset on disk. kind: "mnist", "fashion-mnist" (IDX files
 * DIR/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...),
 * "cifar10" (DIR/data_batch_{1..5}.bin and test_batch.bin, or the same under
 * DIR/cifar-10-batches-bin), "folder" (torchvision's ImageFolder layout:
 * DIR/train/CLASS/... and DIR/val/CLASS/... JPEG and PNG files, decoded as
 * RGB; val's classes labelled as train's of the same name) or "folder-gray"
 * (the same, decoded as Pillow's "L"). train: 1 for
 * the training split, 0 for the test split. Malformed files fail with a
 * message naming the file and offset. */
RN_API rn_status rn_dataset_open(const char *dir, const char *kind, int train, rn_dataset **out);

/* Frees a dataset from rn_dataset_create or rn_dataset_open (NULL is fine). */
RN_API void rn_dataset_close(rn_dataset *ds);

RN_API int rn_dataset_count(const rn_dataset *ds);
RN_API int rn_dataset_num_classes(const rn_dataset *ds);
/* The images' channels and size (image folders: the channels they are
 * decoded to, and 224 x 224, the loader's default output size). */
RN_API void rn_dataset_shape(const rn_dataset *ds, int *channels, int *height, int *width);
/* The name of class c, or NULL when the dataset has no names or c is out of range. */
RN_API const char *rn_dataset_class_name(const rn_dataset *ds, int c);

/* The class names a built-in kind always has: "mnist" ("0".."9"),
 * "fashion-mnist" (T-shirt/top, Trouser, ...), "cifar10" (airplane, ...)
 * and "imagenet" (the 1000 ImageNet-1k names in torchvision's order).
 * Stores the count in *count (if not NULL); NULL and 0 for other kinds. */
RN_API const char *const *rn_dataset_builtin_names(const char *kind, int *count);

/* The names of a checkpoint's k classes: its metadata "class_names" (one
 * per line) when they number k, else the built-in names of its metadata
 * "dataset" when they number k, else class_names when they number fewer (a
 * model trained with more classes than its dataset's: the rest named by
 * their index, "7"). *names is NULL when none applies, else
 * one malloc'ed block holding the k pointers and then the text (free it with
 * free()). Fails only when the file cannot be read. */
RN_API rn_status rn_checkpoint_class_names(const char *weights, int k, char ***names);

typedef struct rn_loader_config {
    int batch_size;
    int image_size;            /* output height = width; 0: the dataset's own size */
    int shuffle;               /* reshuffle every epoch (seeded) */
    int drop_last;             /* skip a final partial batch */
    int flip;                  /* random horizontal flip (p = 0.5) */
    int crop_padding;          /* random crop with this zero padding; 0: off.
                                * Image folders: any value > 0 selects
                                * RandomResizedCrop (see below) */
    int normalize;             /* subtract mean[c], divide by std[c] after scaling to [0,1] */
    float mean[4], std[4];
    uint64_t seed;
    float crop_scale[2];       /* image folders: RandomResizedCrop's area range;
                                * {0, 0}: {0.08, 1} */
    float crop_ratio[2];       /* its aspect-ratio range; {0, 0}: {3/4, 4/3} */
    int shards, shard;         /* data parallel: with shards > 1 this loader hands out
                                * only share `shard` of every batch (see below); 0, 0:
                                * the whole batch */
    int tta_flip;              /* evaluation only (rn_evaluate): each image's logits are the
                                * mean of its own and its left-right mirror's */
    float erase_prob;          /* torchvision's RandomErasing(p = erase_prob, scale (0.02,
                                * 0.33), ratio (0.3, 3.3), value 0) on each image after the
                                * rest (normalisation included): with that probability a
                                * random rectangle of it, all channels, becomes 0; 0: off.
                                * Its draws are apart from the crop's and flip's. */
    int auto_augment;          /* RN_AUTO_AUGMENT_*: torchvision's TrivialAugmentWide (31
                                * magnitude bins), RandAugment (ra_ops operations at bin
                                * ra_magnitude of 31) or AutoAugment (one of its policy's 25
                                * sub-policies) on each image after the crop and flip,
                                * before the normalisation, fill 0, each
                                * operation as torchvision computes it on a PIL image (1 or 3
                                * channels); its draws are apart from the others'. 0: off */
    int ra_magnitude;          /* RandAugment's magnitude bin, 0..30 (rn_loader_config_default:
                                * 9, torchvision's --ra-magnitude) */
    int ra_ops;                /* RandAugment's operations per image, up to 64; 0: 2
                                * (torchvision's) */
    int auto_augment_bilinear; /* the geometric operations of auto_augment with bilinear
                                * interpolation (torchvision's reference script's default); 0:
                                * nearest (the TrivialAugmentWide and RandAugment classes') */
    int resize_size;           /* image folders, without crop_padding (evaluation): Resize's
                                * shorter side before CenterCrop(image_size) (torchvision's
                                * --val-resize-size); 0: int(S / 0.875). In-memory datasets: 0 */
    int repeat_aug;            /* repeated augmentation, torchvision's RASampler(repetitions =
                                * repeat_aug): each image of the epoch's order repeat_aug times
                                * in a row (each repetition augmented with its own draws), the
                                * epoch cut to its first (count / 256) * 256 positions (rounded
                                * down to a multiple of shards) as RASampler cuts it, so an
                                * epoch sees about 1 / repeat_aug of the images; at most 64; 0
                                * or 1: off */
} rn_loader_config;

enum {
    RN_AUTO_AUGMENT_NONE,
    RN_AUTO_AUGMENT_TA_WIDE,
    RN_AUTO_AUGMENT_RA,
    RN_AUTO_AUGMENT_IMAGENET, /* AutoAugment's policies, AutoAugmentPolicy's names */
    RN_AUTO_AUGMENT_CIFAR10,
    RN_AUTO_AUGMENT_SVHN
};

/* Fills *cfg with the defaults: batch_size 64, every option off (the
 * dataset's own size, no shuffle, no augmentation, no normalisation), seed 0,
 * ra_magnitude 9. */
RN_API void rn_loader_config_default(rn_loader_config *cfg);

typedef struct rn_loader rn_loader;

/* Where the loader stands, for checkpoints: restoring it continues with
 * exactly the batches that would have come next. A new loader is at (0, 0);
 * after the last batch of epoch e it is at (e, images per epoch), and the
 * end-of-epoch call (*n == 0) moves it to (e + 1, 0). */
typedef struct rn_loader_state {
    int64_t epoch;             /* index of the current epoch (= epochs finished) */
    int64_t position;          /* images handed out in the current epoch */
} rn_loader_state;

/* The loader prepares the next batch on a background thread while the caller
 * computes. Batches are deterministic given the seed, whatever the timing:
 * epoch e's order is a function of (seed, e) only, and the crop and flip of
 * the i-th image of epoch e a function of (seed, e, i) only.
 *
 * In-memory datasets, per image in torchvision's order: resize the uint8
 * image to image_size x image_size (PIL's bilinear filter; a non-square
 * image is squashed), random crop of the same size from the image
 * zero-padded by crop_padding, horizontal flip, scale to [0, 1]
 * (u / 255.0f), then (v - mean[c]) / std[c]. Nothing is allocated after
 * creation.
 *
 * Image folders, S = image_size (0: 224): each image is decoded (JPEG or
 * PNG) then, with crop_padding > 0, RandomResizedCrop(S, crop_scale,
 * crop_ratio) + flip, else Resize(resize_size, 0: int(S / 0.875)) +
 * CenterCrop(S) (exactly torchvision's) and the flip; then ToTensor and, with normalize,
 * Normalize(mean, std). The images of a batch are decoded in parallel
 * (rn_get_threads() threads on the background thread). A file that
 * fails to decode fails rn_loader_next with a message naming it (the
 * lowest-numbered such image of the batch); the loader stays where it was,
 * so calling again retries that batch.
 *
 * Data parallel (shards = S > 1, one loader per process, PyTorch's
 * DistributedSampler with a DataLoader of batch_size / S): every process
 * draws the same order; batch_size stays the global batch, which must be a
 * multiple of S, and the step that takes the images at positions
 * [p, p + w) of the epoch's order hands process `shard` the positions
 * p + shard, p + shard + S, ... - w / S images (rounded up). A last window
 * whose size is not a multiple of S is padded, as DistributedSampler pads,
 * with the first positions of the order (every process gets as many
 * images; a few are seen twice in that step). Positions, the state and the
 * augmentation draws are the global ones, so the images of a step are
 * those of the unsharded loader, whatever S, and a state saved with one S
 * restores with another.
 *
 * ds must outlive the loader. */
RN_API rn_status rn_loader_create(const rn_dataset *ds, const rn_loader_config *cfg, rn_loader **out);

/* Stops the background thread and frees the loader (NULL is fine). */
RN_API void rn_loader_free(rn_loader *l);

/* Batches per epoch. */
RN_API int rn_loader_steps(const rn_loader *l);
/* Positions an epoch hands out: the images (drop_last: those of the full batches), or with
 * repeat_aug RASampler's cut. */
RN_API int rn_loader_epoch_positions(const rn_loader *l);

/* The shape of one output image: channels and height x width (image_size, or
 * the dataset's own size when image_size is 0). */
RN_API void rn_loader_shape(const rn_loader *l, int *channels, int *height, int *width);

/* Fills x: (batch_size, channels, S, S) float32 and labels (batch_size) with
 * the next batch (sharded: batch_size / shards images, this process's share)
 * and stores its size in *n; *n == 0 marks the end of an epoch
 * (the next call starts the next one). On failure (only image folders can
 * fail) *n is 0 and the position does not move. */
RN_API rn_status rn_loader_next(rn_loader *l, float *x, int32_t *labels, int *n);

/* Where the loader stands (see rn_loader_state). */
RN_API void rn_loader_get_state(const rn_loader *l, rn_loader_state *st);

/* Moves the loader to st (epoch >= 0, 0 <= position <= images per epoch). */
RN_API rn_status rn_loader_set_state(rn_loader *l, const rn_loader_state *st);

/* Mixing a training batch, as torchvision's classification reference does with
 * --mixup-alpha and --cutmix-alpha (RandomMixup, RandomCutmix; both on: one of
 * the two per batch at even odds, RandomChoice). Each image is mixed with the one
 * before it in the batch, the first with the last (torchvision's roll by one):
 *   mixup:  x_i = lam x_i + (1 - lam) x_{i-1}, lam ~ Beta(alpha, alpha);
 *   CutMix: a box centred at a uniform pixel with sides sqrt(1 - lam) of the
 *           image's (lam ~ Beta(alpha, alpha)), clipped to the image, is pasted
 *           from x_{i-1} into x_i; lam becomes the share of x_i left.
 * labels2[i] receives the label of the image mixed into image i (labels[i - 1]),
 * for rn_trainer_step_mixed with info->lam. The draws are a function of (seed,
 * epoch, position) alone (a loader's rn_loader_get_state before the batch), so a
 * resumed run mixes as the run it continues. x: (n, c, h, w), changed in place;
 * nothing is allocated. Both alphas 0: nothing mixed (lam 1, labels2 = the rolled
 * labels). */
typedef struct rn_mix_config {
    float mixup_alpha;        /* > 0: RandomMixup(alpha) */
    float cutmix_alpha;       /* > 0: RandomCutmix(alpha) */
    uint64_t seed;
} rn_mix_config;

enum { RN_MIX_NONE = 0, RN_MIX_MIXUP = 1, RN_MIX_CUTMIX = 2 };

typedef struct rn_mix_info {
    int kind;                 /* RN_MIX_NONE, RN_MIX_MIXUP or RN_MIX_CUTMIX */
    float lam;                /* the share of each image's own label */
    int box[4];               /* CutMix: rows box[0]..box[1]-1, columns box[2]..box[3]-1 */
} rn_mix_info;

RN_API rn_status rn_batch_mix(const rn_mix_config *cfg, int64_t epoch, int64_t position, float *x,
                              const int32_t *labels, int32_t *labels2, int n, int c, int h, int w,
                              rn_mix_info *info);

typedef struct rn_eval_result {
    int64_t count;            /* images evaluated */
    double loss;              /* mean cross-entropy */
    int64_t top1, top5;       /* images whose label is the top-1 / among the top-5 */
    int num_classes;
    int64_t *confusion;       /* (num_classes, num_classes): [label][predicted]; owned */
} rn_eval_result;

/* Called after each batch with the images done so far and the total. */
typedef void (*rn_eval_progress)(void *ctx, int64_t done, int64_t total);

/* Runs the whole dataset through the model in eval mode with the loader
 * configuration cfg (its shuffle and augmentation are switched off; with
 * cfg->tta_flip every batch also runs mirrored left-right and the logits
 * are the mean of the two), in a session of the default configuration;
 * progress (may be NULL) is called after each batch. *out is filled; free
 * it with rn_eval_result_free. */
RN_API rn_status rn_evaluate(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg,
                             rn_eval_progress progress, void *ctx, rn_eval_result *out);

/* One batch as the model saw it, for rn_evaluate_each. */
typedef struct rn_eval_batch {
    int64_t first;            /* dataset index of the batch's first image (in order) */
    int n;                    /* images in the batch */
    int channels, height, width;
    int num_classes;
    const float *x;           /* (n, channels, height, width): the loader's output */
    const int32_t *labels;    /* (n) */
    const float *logits;      /* (n, num_classes) */
    int feature_dim;          /* rn_model_feature_dim */
    const float *features;    /* (n, feature_dim): each image's features (rn_session_forward_features;
                                 with tta_flip the mean of the two views', as the logits) */
} rn_eval_batch;

/* Called after each batch; a status other than RN_OK stops the evaluation
 * and is returned. */
typedef rn_status (*rn_eval_each)(void *ctx, const rn_eval_batch *batch);

/* As rn_evaluate, also handing every batch to each(each_ctx, batch). */
RN_API rn_status rn_evaluate_each(rn_model *m, const rn_dataset *ds, const rn_loader_config *cfg,
                                  rn_eval_progress progress, void *ctx, rn_eval_each each,
                                  void *each_ctx, rn_eval_result *out);

/* The same in a session configured by scfg (NULL: the defaults); each may be NULL. */
RN_API rn_status rn_evaluate_config(rn_model *m, const rn_session_config *scfg, const rn_dataset *ds,
                                    const rn_loader_config *cfg, rn_eval_progress progress, void *ctx,
                                    rn_eval_each each, void *each_ctx, rn_eval_result *out);
/* Frees the confusion matrix of a result (NULL is fine). */
RN_API void rn_eval_result_free(rn_eval_result *r);

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
RN_API rn_status rn_model_summary(const rn_model *model, int h, int w,
                                  rn_layer_info *layers, int cap, int *count);

/* ---------------------------------------------------------------------------
 * ONNX
 *
 * Export: the model as an ONNX graph of Conv, BatchNormalization (or BN
 * folded into the convolutions), Relu, MaxPool, Add, GlobalAveragePool,
 * Flatten and Gemm, in execution order, named after the PyTorch modules
 * ("layer1.0.conv1") with the state_dict's keys as initializer names.
 * Input "input" (batch, in_channels, height, width) float32, output
 * "logits" (batch, num_classes), in eval mode (running statistics).
 *
 * Import: rn_model_load and friends read ONNX files as they read weights
 * (see rn_model_load).
 * ------------------------------------------------------------------------- */

typedef struct rn_onnx_options {
    int opset;           /* ONNX opset of the default domain, 13..17 (default 17;
                            IR version 7 for 13-14, 8 for 15-17) */
    int batch;           /* 0 (default): a symbolic batch axis named "batch";
                            N > 0: a fixed batch of N */
    int height, width;   /* the input size the graph declares; 0 (default):
                            224 for the imagenet stem, 32 for the cifar stem */
    int fold_bn;         /* 1: BatchNorm folded into the convolutions'
                            weights and biases; 0 (default): BatchNormalization nodes */
    /* metadata_props written after arch, stem, in_channels, num_classes and
     * (for square inputs) image_size, which the exporter writes itself (keys
     * of those names here are dropped); e.g. class_names, mean, std */
    const char *const *meta_keys;
    const char *const *meta_values;
    int meta_count;
} rn_onnx_options;

/* Fills *opt with the defaults above. */
RN_API void rn_onnx_options_default(rn_onnx_options *opt);

/* Writes `model` to `path` as an ONNX model (opt NULL: the defaults).
 * Fails with RN_ERR_ARG on an opset outside 13..17 or a size out of range,
 * RN_ERR_UNSUPPORTED when the file would pass protobuf's 2 GB limit,
 * RN_ERR_IO when it cannot be written. */
RN_API rn_status rn_model_export_onnx(const rn_model *model, const char *path,
                                      const rn_onnx_options *opt);

/* ---------------------------------------------------------------------------
 * .npy arrays (float32, C order, little-endian)
 * ------------------------------------------------------------------------- */

#define RN_NPY_MAX_DIMS 8

/* Reads a float32 .npy file. On success *data is malloc'ed (free with
 * free()), *ndim and shape[0..ndim-1] describe it. Other dtypes, Fortran
 * order, big-endian data or a malformed header fail with a message. */
RN_API rn_status rn_npy_read(const char *path, float **data, int *ndim,
                             int64_t shape[RN_NPY_MAX_DIMS]);

/* Writes a float32 .npy file (format version 1.0). */
RN_API rn_status rn_npy_write(const char *path, const float *data, int ndim,
                              const int64_t *shape);

#ifdef __cplusplus
}
#endif

#endif /* RESNET_H */
