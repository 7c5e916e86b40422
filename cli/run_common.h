/* run_common.h - flag parsing shared by `train`, `eval` and `predict`, and the
 * folders of output files shared by every command that writes one. */
#ifndef RN_CLI_RUN_COMMON_H
#define RN_CLI_RUN_COMMON_H

#include <stddef.h>

#include "args.h"
#include "data/dataset.h"
#include "resnet.h"

/* The --resize-size flag of the commands that evaluate a checkpoint (cli_eval_config reads it). */
#define CLI_RESIZE_SIZE_SPEC                                                                       \
    {"resize-size", ARG_INT, "-1",                                                                 \
     "image folders: the shorter side images are resized to before the centre crop of "           \
     "--image-size (torchvision's --val-resize-size; 232 for its V2 weights); -1: the "           \
     "checkpoint's (train --val-resize-size) at its own image size, given or not, else "          \
     "int(size / 0.875); 0: "                                                                     \
     "int(size / 0.875)",                                                                         \
     0, 0}

/* The --conv-algo flag of the inference commands, and the session
 * configuration it gives (the flag's text stays owned by the table). */
#define CLI_CONV_ALGO_SPEC                                                                    \
    {"conv-algo", ARG_STRING, "auto",                                                         \
     "convolution algorithm: auto (chosen per layer), or im2col, pointwise, winograd "      \
     "(F(4x4, 3x3)), winograd2 (F(2x2, 3x3)), direct, smallmap (maps of at most 2x2 as one " \
     "GEMM) (forced wherever it applies; auto " \
     "elsewhere). "                                                                           \
     "RN_ISA=amx|avx512|avx2|portable picks "                                                  \
     "the kernels",                                                                           \
     0, 0}
#define CLI_PRECISION_TEXT                                                                    \
    "auto (the weights file's own: int8 for a file `resnet quantize` wrote, else fp32), fp32, " \
    "bf16 (weights and activations rounded to bf16, fp32 accumulation: bf16 products where "   \
    "the CPU has them (AVX-512 BF16, AMX), else emulated on fp32 kernels, no faster) or int8"
#define CLI_PRECISION_SPEC {"precision", ARG_STRING, "auto", CLI_PRECISION_TEXT, 0, 0}
/* train's --precision (rn_train_config.precision). */
#define CLI_TRAIN_PRECISION_SPEC                                                              \
    {"precision", ARG_STRING, "fp32",                                                         \
     "fp32, or bf16: mixed precision, the convolutions' and the classifier's GEMM products "  \
     "(forward, data and weight gradients) on bf16 operands with fp32 sums (Winograd's layers " \
     "on fp32 products); weights, optimizer state, BatchNorm and stored activations stay "   \
     "fp32. Needs AVX-512 BF16 or AMX (RN_ISA=portable: slow portable bf16 kernels)",         \
     0, 0}
void cli_session_config(const arg_table *t, rn_session_config *cfg);

/* --mode: RN_MODE_EVAL or RN_MODE_TRAIN; -1 (after an error message) otherwise. */
int cli_mode(const arg_table *t);

/* --stem: RN_STEM_IMAGENET or RN_STEM_CIFAR; -1 (after an error message) otherwise. */
int cli_stem(const arg_table *t);

/* The --width flag of the commands that create a model (rn_model_create_width). */
#define CLI_WIDTH_TEXT                                                                        \
    "base width: the stem's channels; the four stages have 1, 2, 4 and 8 x it (64 as published; " \
    "32: a quarter of the operations)"
#define CLI_WIDTH_SPEC {"width", ARG_INT, "64", CLI_WIDTH_TEXT, 0, 0}
/* --width in 1..4096; -1 (after an error message) otherwise. */
int cli_width(const arg_table *t);
/* With --weights FILE the model is the file's: --stem, --width, --in-channels and
 * --num-classes, which describe a new one, are refused (0 after an error message). */
int cli_new_model_flags_ok(const arg_table *t);

/* The --tta flag of `train` and `eval`, and its value into cfg->tta_flip. */
#define CLI_TTA_SPEC                                                                                  \
    {"tta", ARG_STRING, "none", "test-time augmentation when evaluating: none, or flip (each image's "  \
     "logits averaged with its left-right mirror's; twice the evaluation time)", 0, 0}
/* Returns 0 after an error message. */
int cli_parse_tta(const arg_table *t, rn_loader_config *cfg);

/* --feature-layer of forward, predict and eval: what their --features file holds. */
#define CLI_FEATURE_LAYER_SPEC                                                                        \
    {"feature-layer", ARG_STRING, "pool", "what --features holds: pool (also avgpool or flatten: each "  \
     "image's pooled features, (N, D)), or a stage's maps, (N, C, H, W): stem (its output, after the "  \
     "max-pool where it has one), layer1, layer2, layer3 or layer4 (torchvision's; the architecture's " \
     "own module names work too: maxpool, conv.resnet_block3...)", 0, 0}
/* --feature-layer spelt as some architecture's stage is (rn_model_stage_index), and given only
 * with --features ("none" where not given): 0 after an error message (exit 2). */
int cli_feature_layer_ok(const arg_table *t);
/* --feature-layer's stage of model m, or -1 after an error message (exit 2: a name of another
 * architecture's, "maxpool" for a stem without one). */
int cli_feature_layer(const arg_table *t, const rn_model *m);

/* What a --features file holds for one image at h x w. */
typedef struct cli_features {
    int stage;              /* cli_feature_layer's; RN_STAGE_POOL: the pooled features */
    int64_t shape[3];       /* (D) or a stage's (C, H, W) */
    int ndim;               /* the file's rank, the images' dimension included: 2 or 4 */
    size_t per_image;       /* floats */
} cli_features;
/* Fills f for `stage` at h x w; 0 after an error message (an input the network cannot take:
 * exit 1). */
int cli_features_shape(const char *command, const rn_model *m, int stage, int h, int w,
                       cli_features *f);
/* One batch through s: with feats NULL the logits alone; the pooled features with the logits of
 * the same pass (logits may be NULL); a stage's maps from a pass of their own that stops at the
 * stage, after the whole pass for the logits where logits is not NULL. */
rn_status cli_features_forward(rn_session *s, const cli_features *f, const float *x, int n, int h,
                               int w, rn_mode mode, float *feats, float *logits);

/* The flag holds a finite number; prints an error otherwise. */
int cli_number_ok(const arg_table *t, const char *name);

/* --augment none|flip|crop|crop+flip|auto into cfg (crop: zero padding 4,
 * RandomResizedCrop for folders); auto means `auto_value`. */
int cli_parse_augment(const arg_table *t, rn_loader_config *cfg, const char *auto_value);

/* The canonical "M1,..:S1,.." text of cfg's normalisation for `channels`. */
void cli_format_normalize(const rn_loader_config *cfg, int channels, char *text, size_t cap);

/* --normalize none | auto | imagenet | M1,M2,..:S1,S2,.. into cfg; `text` receives the
 * canonical form stored in checkpoints ("none" or the same syntax). auto is
 * left as "none" here: the caller decides once the dataset is known. */
int cli_parse_normalize(const arg_table *t, rn_loader_config *cfg, char *text, size_t cap);

/* After a failed write of an output file (status st): prints the error and
 * returns EXIT_WRITE for a file that could not be written (RN_ERR_IO: disk
 * full, read-only, no such folder...), EXIT_RUNTIME for anything else. */
int cli_write_failed(const char *command, rn_status st);

/* The metadata of a checkpoint that evaluation defaults to, read while
 * its weights load: rn_model_load_meta(path, arch, cli_ckpt_meta_take, &meta,
 * &m) after cli_ckpt_meta_init(&meta) (fashion-mnist, 0, none when absent). */
typedef struct cli_ckpt_meta {
    char dataset[64], image_size[32], resize_size[32], normalize[256];
} cli_ckpt_meta;
void cli_ckpt_meta_init(cli_ckpt_meta *meta);
void cli_ckpt_meta_take(void *ctx, const char *key, const char *value);

/* The dataset kind and loader configuration to evaluate checkpoint `weights`
 * with, from --dataset, --batch-size, --image-size, --resize-size (where the
 * table has it) and --normalize, whose "auto" (and sizes -1) take the
 * checkpoint's metadata (image size -1 on an image folder: its resize_size
 * too). Returns 0 after an error message. */
int cli_eval_config(const arg_table *t, const char *weights, const cli_ckpt_meta *meta, char *kind,
                    size_t kind_cap, rn_loader_config *cfg);

/* The flags of cli_eval_config and those beside them in eval, quantize and report,
 * checked before anything is read: --arch and --dataset (auto or a name), --split,
 * --batch-size, --image-size, --normalize, and where the command has them --conv-algo,
 * --precision and --tta. Returns 0 after an error message (exit 2). */
int cli_eval_flags_ok(const arg_table *t);

/* After cli_eval_config: the dataset kind (from --dataset or the checkpoint's metadata) is
 * one rn_dataset_load reads, and --split fits it. Returns the split as cli_split does (1:
 * train, 0: the held-out one), or -1 after an error message, with *status the exit
 * status: 2 for a flag, 1 for a checkpoint's metadata naming no dataset resnet reads. */
int cli_eval_split(const arg_table *t, const char *weights, const char *kind, int *status);

/* Parses "M1,M2,..:S1,S2,.." (1 to 4 channels); returns 0 if malformed. */
int parse_mean_std(const char *s, float *mean, float *std, int *channels);

/* --arch: a known architecture, or "auto" where allow_auto. Returns 0 after an error
 * message (a usage error: exit 2). */
int cli_arch_ok(const arg_table *t, int allow_auto);

/* --dataset: a known kind, or "auto" where allow_auto; 0 after an error message. */
int cli_dataset_ok(const arg_table *t, int allow_auto);

/* --conv-algo: auto or an algorithm the library knows; 0 after an error message. */
int cli_conv_algo_ok(const arg_table *t);
/* --precision: auto, fp32, bf16 or int8 (train: fp32 or bf16); 0 after an error message.
 * Whether the weights file can run in it is known once it is loaded (exit 1). */
int cli_precision_ok(const arg_table *t, int train);

/* --split of eval, report and quantize: "train" gives 1, "test" 0 (the held-out
 * split: DIR/val for image folders) and "val" 0 where the dataset has a val split
 * (image folders); anything else, or val for another kind, -1 after an error
 * message (exit 2). kind NULL: only the spelling is checked. */
int cli_split(const arg_table *t, const char *kind);

/* A path flag (--output, --save, --log...) that is not empty; 0 after an error message. */
int cli_path_ok(const arg_table *t, const char *name);

/* An output file's path (what: "--output", "the output") that is not an existing folder (nor
 * ends in '/'), found before any work: 0 after an error message (exit 2). It had been found at
 * the write, after the calibration or the gradients (exit 3). */
int cli_output_file_ok(const char *command, const char *what, const char *path);

/* Every string of a weights file's metadata, in file order (rn_model_load_meta(path,
 * arch, cli_meta_list_take, &list, &m)), to be written again with rn_model_save_meta
 * (whose own keys, format, arch, in_channels and num_classes, take precedence). */
typedef struct cli_meta_list {
    char **keys, **values;
    int count, cap;
    int nomem;              /* a copy failed: the list is incomplete */
} cli_meta_list;
void cli_meta_list_take(void *ctx, const char *key, const char *value);
/* Sets key to value, replacing the value it has (or adding it). Returns 0 when out of memory. */
int cli_meta_list_set(cli_meta_list *l, const char *key, const char *value);
void cli_meta_list_free(cli_meta_list *l);

/* Creates the folders missing above an output file (--save, --log,
 * --output), saying so on stderr the one time it creates them ("resnet CMD:
 * created the folder runs/exp1 for runs/exp1/model.safetensors"). On
 * failure nothing is printed: the status and rn_last_error() say why. */
rn_status cli_make_output_dirs(const char *command, const char *path);

/* The folders cli_make_output_dirs_quietly made above a path: the folder the path lies in
 * (whole) and the outermost one made (outer: runs/a/b/m.safetensors beside no runs/ made runs);
 * both "" when none was. */
typedef struct cli_made_dirs {
    char whole[1024], outer[1024];
} cli_made_dirs;

/* As cli_make_output_dirs, saying nothing: the caller says it (cli_made_dirs_say) once the
 * command goes on, or removes them (cli_unmake_output_dirs) when it stops first. */
rn_status cli_make_output_dirs_quietly(const char *path, cli_made_dirs *made);
void cli_made_dirs_say(const char *command, const char *path, const cli_made_dirs *made);

/* Removes the folders made for path, from the innermost out, each only while empty: a command
 * that fails before writing leaves no folder behind (train calls it on any failure: a run that
 * said it made a folder and then failed before writing into it takes the folder away too). */
void cli_unmake_output_dirs(const char *path, const cli_made_dirs *made);

/* Whether path can be read (a missing file, or a folder, cannot): 0 after "COMMAND: PREFIXpath:
 * cannot read: reason" (prefix "" or e.g. "--log "), so that a read problem is found before any
 * output is made. */
int cli_readable(const char *command, const char *prefix, const char *path);

/* Whether --normalize, where the command line gives MEAN,..:STD,.., gives 1 value (for every
 * channel) or one per channel of images with `channels` channels; 0 after an error message. A
 * value from a checkpoint is not checked (the model was trained with it). --normalize imagenet
 * (given, or from a --resume plan) takes ImageNet's values for `channels` into cfg here (the averages for gray images; refused
 * for other counts than 1 and 3). */
int cli_normalize_fits(const arg_table *t, int channels, rn_loader_config *cfg);

/* An image folder (kind) evaluated with checkpoint `weights`: its classes matched to the
 * model's by name where the checkpoint names them (rn_checkpoint_class_names;
 * rn_dataset_match_classes), so that a folder with fewer classes, or other ones, is labelled
 * as the model's classes are; a warning where no class's name matches. Other kinds are left
 * as they are; with --classes position (t's), nothing is matched. Returns 0 after an error message. */
int cli_match_classes(const arg_table *t, const char *weights, const char *kind, const rn_model *m,
                      rn_dataset *ds);

/* The name of a file that goes with a weights file: "dir/run.safetensors" -> "dir/run" + suffix
 * (its optimizer state ".optim.safetensors", its log ".log.jsonl", its report "_report"). Only a
 * weights file's extension (.safetensors, .pth, .pt, .bin, .ckpt) is dropped, so that names with
 * dots of their own keep them: "runs/lr0.1" -> "runs/lr0.1" + suffix (not "runs/lr0" + suffix,
 * which "runs/lr0.05" would share). */
void cli_beside(char *out, size_t cap, const char *path, const char *suffix);
/* The same name for a file to read, falling back to the name earlier builds gave it (every last
 * extension dropped: "runs/lr0.1" -> "runs/lr0" + suffix) where only that one is there, so that
 * their runs still resume and report. */
void cli_beside_existing(char *out, size_t cap, const char *path, const char *suffix);

/* The curves' name for a training log: "run.log.jsonl" and "run.jsonl" -> "run" + suffix (the
 * log's ".jsonl" and a ".log" before it dropped), any other name kept whole + suffix. */
void cli_log_beside(char *out, size_t cap, const char *log, const char *suffix);

/* v as JSON: buf (cap bytes) printed with fmt (a double's conversion), or "null" where v is NaN
 * or infinite (printf's nan and inf are not JSON). */
const char *cli_json_number(char *buf, size_t cap, const char *fmt, double v);

/* Whether two flag or metadata values are the same: numbers by value (0.05 and 5e-2, 32 and
 * 032), anything else as text. */
int cli_same_value(const char *a, const char *b);

/* Whether a and b name the same file: the same text, or the same file reached another way; for
 * two not there yet, the same name in the same folder (runs/m and runs/../runs/m, m and ./m). */
int cli_same_file(const char *a, const char *b);

/* 0 after "COMMAND: OUT_WHAT OUT is the same file as IN_WHAT IN: writing it would replace what it
 * reads; ..." (OUT_WHAT e.g. "--output", "the output") when out names the same file as in; else 1. */
int cli_output_not_input(const char *command, const char *out_what, const char *out,
                         const char *in_what, const char *in);

/* 0 after "COMMAND: OUT_WHAT OUT is a file inside IN_WHAT DIR, which the dataset is read from..."
 * when out is a file there already, in dir or below it (links resolved: a dataset's own file,
 * which writing would replace); a new file there is fine; else 1. */
int cli_output_not_in_folder(const char *command, const char *out_what, const char *out,
                             const char *in_what, const char *dir);

#endif
