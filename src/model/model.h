/*
 * model.h - the inside of an rn_model: the architecture as data.
 *
 * Every ResNet here is the same skeleton:
 *
 *   stem   conv (7x7/2, or 3x3/1 for small images) -> BN -> ReLU -> maxpool 3x3/2
 *   blocks each: main path of 2 or 3 units (conv -> BN, ReLU between units),
 *          shortcut = identity or a unit (1x1 conv, with BN in torchvision),
 *          out = relu(main + shortcut)
 *   head   global average pool -> linear
 *
 * What differs between the D2L ResNet and the torchvision family (block
 * kind, conv bias, BN on the shortcut, module names) is captured when the
 * blocks are built (arch.c). The order in which the layers run is the
 * schedule's (schedule.h), built from these tables.
 *
 * All parameters live in one float block (`params`), BatchNorm statistics
 * included, described by the `tensors` table with PyTorch's state_dict
 * names; num_batches_tracked counters live in `counters`.
 *
 * A model is the architecture and the weights only. Execution state lives
 * elsewhere: an inference session (engine/session.h) holds the plan, the
 * prepared weights and the activations; a trainer holds gradients,
 * optimizer state and its own arena. Whatever changes the weights bumps
 * `generation` (through rn_model_params_changed), and sessions prepare
 * their weights again when they see a new generation.
 */
#ifndef RN_MODEL_MODEL_H
#define RN_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

#define RN_NAME_CAP 64

/* A convolution followed by an optional BatchNorm. */
typedef struct rn_unit {
    char conv_name[RN_NAME_CAP];  /* e.g. "layer1.0.conv1" */
    char bn_name[RN_NAME_CAP];    /* e.g. "layer1.0.bn1"; "" without BN */
    int cin, cout, k, stride, pad, groups;
    int has_bias, has_bn;
    float *w;                     /* (cout, cin/groups, k, k) */
    float *b;                     /* (cout) or NULL */
    float *bn_weight, *bn_bias, *bn_mean, *bn_var;  /* (cout) each, when has_bn */
    int64_t *bn_batches;          /* num_batches_tracked */
    /* int8 models (quant.c): BatchNorm folded, weights symmetric per output
     * channel (w = wq * wq_scale), the output tensor's quantization */
    int8_t *wq;                   /* (cout, cin/groups, k, k) */
    float *wq_scale, *q_bias;     /* (cout) each */
    float q_out_scale;
    int q_out_zp;
} rn_unit;

typedef enum rn_block_kind {
    RN_BLOCK_D2L,          /* "Residual": conv1/bn1, conv2/bn2, conv3 shortcut without BN */
    RN_BLOCK_BASIC,        /* torchvision BasicBlock */
    RN_BLOCK_BOTTLENECK    /* torchvision Bottleneck */
} rn_block_kind;

typedef struct rn_block {
    char name[RN_NAME_CAP];       /* e.g. "layer2.0" or "conv.resnet_block2.0" */
    int stage;                    /* 0..3 */
    int n_main;                   /* 2 or 3 */
    rn_unit main[3];
    int has_shortcut;             /* else identity */
    rn_unit shortcut;
} rn_block;

/* One named tensor of the state_dict. */
typedef struct rn_tensor_ref {
    char name[RN_NAME_CAP + 24];
    int ndim;
    int64_t shape[4];
    size_t numel;
    float *f32;                   /* into model->params, or NULL */
    int64_t *i64;                 /* into model->counters, or NULL */
    int trainable;                /* weights and biases: 1; BN statistics: 0 */
    int norm;                     /* a BatchNorm's weight or bias: 1 (their own weight decay) */
} rn_tensor_ref;

typedef struct rn_arch_desc {
    const char *name;
    rn_block_kind kind;
    int blocks[4];                /* residual blocks per stage */
    int groups, width_per_group;  /* Bottleneck 3x3 conv: ResNeXt groups, wide ResNets' width */
} rn_arch_desc;

struct rn_model {
    const rn_arch_desc *arch;
    int in_channels, num_classes;
    rn_stem stem_kind;            /* RN_STEM_CIFAR: 3x3/1 conv and no max-pool */
    int width;                    /* the stem's channels; stages have 1, 2, 4, 8 x width planes */
    int expansion;                /* 4 for Bottleneck, else 1 */
    char stage_names[4][RN_NAME_CAP];   /* "layer1" / "conv.resnet_block1" */
    char stem_seq_name[RN_NAME_CAP];    /* "conv.block" for D2L, "" for torchvision */
    char stem_relu_name[RN_NAME_CAP];   /* "relu" / "conv.block.2" */
    char pool_name[RN_NAME_CAP];        /* "maxpool" / "conv.block.3" */
    rn_unit stem;
    int pool_k, pool_stride, pool_pad;  /* the stem's max-pool; pool_k 0: none */
    rn_block *blocks;
    int n_blocks;
    float *fc_w, *fc_b;           /* (num_classes, feat), (num_classes) */
    int feat;                     /* 8 * width * expansion (512 * expansion at width 64) */

    float *params;                /* every float tensor, one block */
    size_t n_params;
    int64_t *counters;            /* one per BatchNorm */
    rn_tensor_ref *tensors;
    int n_tensors;

    uint64_t generation;          /* changes whenever the parameters change */

    /* int8 models (`resnet quantize`, quant.c): the units' wq fields hold the
     * weights, fc stays float32; params holds only fc (the rest is zero) */
    int quantized;
    float q_in_scale;             /* the network input's quantization */
    int q_in_zp;
    void *q_block;                /* the units' int8 arrays, one block */
    char q_method[32];            /* calibration method and images, for `info` */
    int q_calib_images;
};

/* Every conv unit of m in schedule-independent order (stem, then each
 * block's main units and shortcut) into units[] (NULL: count only);
 * returns how many. */
int rn_model_units(rn_model *m, rn_unit **units);

/* BatchNorm folded into unit u: fw = w * s per output channel, fb = (b -
 * mean) * s + beta (or b, or 0). */
void rn_unit_fold(const rn_unit *u, float *fw, float *fb);

/* quant.c: int8 files. rn_quant_is_file: whether f is an int8 model file;
 * rn_quant_load fills the zero model m (of the file's architecture) from
 * it; rn_quant_write writes m (quantized) into w. */
struct st_file;
int rn_quant_is_file(const struct st_file *f);
rn_status rn_quant_load(rn_model *m, const struct st_file *f, const char *path);
/* The range of every scale of an int8 model (weights, activations, the input): 1 / scale and
 * the products of two (a conv's input scale times its weight scale, its requantization's mult)
 * stay finite in float32 where each factor is in range and their product is checked. */
#define RN_Q_SCALE_MIN 1e-30f
#define RN_Q_SCALE_MAX 1e30f
/* Whether the scales of int8 model m fit its requantization (ops/qconv.h): every scale in
 * [RN_Q_SCALE_MIN, RN_Q_SCALE_MAX], every conv's input scale x weight scale finite. Fails
 * naming the tensor: RN_ERR_FORMAT prefixed with path where m was loaded from that file,
 * RN_ERR_ARG with path NULL (a model just quantized, or about to run). */
rn_status rn_quant_check_scales(const rn_model *m, const char *path);
/* Allocates the units' int8 arrays (zero) and marks m quantized. */
rn_status rn_quant_alloc(rn_model *m);

/* Records that m's parameters (or BN statistics) were written: sessions
 * prepare their weights again. Every writer calls it once it is done. */
void rn_model_params_changed(rn_model *m);

/* arch.c */
const rn_arch_desc *rn_arch_find(const char *name);
/* As rn_model_create_width, with every parameter and counter zero: for
 * callers that fill them all (the loaders, the ONNX importer), without the
 * cost of the random initialisation. */
rn_status rn_model_create_zero(const char *arch, int in_channels, int num_classes, rn_stem stem, int width,
                               rn_model **out);
/* Guesses the architecture of a state_dict from its key names and shapes;
 * NULL if none fits. shape_of(ctx, key, dims) returns the number of
 * dimensions of tensor `key` (filling dims[0..3]) or -1 if it is absent. */
const rn_arch_desc *rn_arch_guess(int (*shape_of)(const void *ctx, const char *key, int64_t dims[4]),
                                  const void *ctx);

/* weights.c: the state_dict and metadata, as rn_model_save_meta writes
 * them, into a file the caller opened and then commits (io/file.h). */
struct rn_wfile;
rn_status rn_quant_write(const rn_model *m, struct rn_wfile *w, const char *const *keys,
                         const char *const *values, int count);
rn_status rn_model_write_to(const rn_model *m, struct rn_wfile *w, const char *const *keys,
                            const char *const *values, int count);

/* init.c: PyTorch's default initialisation (seeded). */
void rn_model_init_default(rn_model *m, uint64_t seed);

#endif
