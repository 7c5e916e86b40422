/*
 * cmd_quantize.c - `resnet quantize`: post-training static int8
 * quantization of a float32 model, calibrated on real images of a dataset
 * with the preprocessing `resnet eval` would use (scheme: src/ops/qconv.h;
 * file: src/model/quant.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "data/dataset.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"weights", ARG_STRING, NULL, "float32 weights: checkpoint, safetensors, PyTorch .pth or ONNX (the architecture comes from it)", 0, 0},
    {"arch", ARG_STRING, "auto", "architecture; auto: from the file", 0, 0},
    {"data", ARG_STRING, NULL, "dataset directory with the calibration images", 0, 0},
    {"dataset", ARG_STRING, "auto", "fashion-mnist, mnist, cifar10, folder or folder-gray; auto: from the checkpoint", 0, 0},
    {"split", ARG_STRING, "train", "split the calibration images are drawn from: train, test (an image folder's "
     "val) or val (image folders only)", 0, 0},
    {"calib-images", ARG_INT, "512", "calibration images (drawn at random, seeded, from the split)", 0, 0},
    {"method", ARG_STRING, "percentile", "activation ranges: minmax, percentile (0.01%/99.99% quantiles) or entropy (KL divergence)", 0, 0},
    {"seed", ARG_INT, "0", "seed of the random draw of calibration images", 0, 0},
    {"batch-size", ARG_INT, "64", "images per calibration batch", 0, 0},
    {"image-size", ARG_INT, "-1", "resize to this size (image folders: the centre crop's side); -1: from the "
     "checkpoint; 0: the dataset's own", 0, 0},
    CLI_RESIZE_SIZE_SPEC,
    {"normalize", ARG_STRING, "auto", "none, imagenet, MEAN,..:STD,.., or auto (from the checkpoint)", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    {"output", ARG_STRING, NULL, "the int8 model to write (.safetensors; missing folders are created)", 0, 0},
    {"quiet", ARG_FLAG, NULL, "no progress and summary", 0, 0},
};

/* The value of `key` in the checkpoint's metadata, or NULL. */
static const char *meta_of(const cli_meta_list *l, const char *key) {
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->keys[i], key) == 0)
            return l->values[i];
    return NULL;
}

/* Whether a and b are the same value of metadata `key`: normalisations value by value (train
 * writes them as "%.9g" of floats: 0.286000013 is --normalize 0.286), datasets under any of
 * their names, sizes as numbers (cli_same_value). */
static int same_value(const char *key, const char *a, const char *b) {
    if (strcmp(key, "dataset") == 0) {
        const int fa = !strcmp(a, "fashion-mnist") || !strcmp(a, "fashion_mnist");
        const int fb = !strcmp(b, "fashion-mnist") || !strcmp(b, "fashion_mnist");
        return fa || fb ? fa && fb : strcmp(a, b) == 0;
    }
    float ma[4], sa[4], mb[4], sb[4];
    int ca = 0, cb = 0;
    if (strcmp(key, "normalize") != 0 || !parse_mean_std(a, ma, sa, &ca) || !parse_mean_std(b, mb, sb, &cb))
        return cli_same_value(a, b); /* a size, or "none" among them */
    for (int c = 0; c < ca && ca == cb; c++)
        if (ma[c] != mb[c] || sa[c] != sb[c])
            return 0;
    return ca == cb;
}

/* The image size or normalisation calibration used: the flag's value `given` when the flag is
 * not `unset` (else the checkpoint's, or the default). One that overrides what the checkpoint
 * records is warned about: the int8 file records what calibration used (its scales are for
 * those inputs), which eval and predict then apply. */
static const char *used_value(const arg_table *t, const char *flag, const char *given, const char *unset,
                              const cli_meta_list *l, const char *key, const char *dflt, const char *weights) {
    const char *had = meta_of(l, key);
    if (strcmp(args_str(t, flag), unset) == 0)
        return dflt;
    if (had && !same_value(key, had, given))
        cli_error("quantize", "warning: calibrated with --%s %s, where %s records %s %s: the int8 file "
                  "records %s, which eval and predict will use", flag, given, weights, key, had, given);
    return given;
}

/* The metadata keys eval defaults to, and every key as it is. */
typedef struct both_meta {
    cli_ckpt_meta *eval;
    cli_meta_list list;
} both_meta;

static void take_meta(void *ctx, const char *key, const char *value) {
    both_meta *b = ctx;
    cli_ckpt_meta_take(b->eval, key, value);
    cli_meta_list_take(&b->list, key, value);
}

int cmd_quantize(int argc, char **argv) {
    arg_table t = {"quantize", "Quantize a float32 model to int8 (post-training static quantization).",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    int threads, want, seed;
    if (!args_int(&t, "threads", 0, 1024, &threads) ||
        !args_int(&t, "calib-images", 1, 10000000, &want) || !args_int(&t, "seed", 0, 2147483647, &seed))
        return EXIT_USAGE;
    const char *split = args_str(&t, "split"), *weights = args_str(&t, "weights");
    const char *output = args_str(&t, "output"), *method = args_str(&t, "method");
    int quiet = args_flag(&t, "quiet");
    if (!cli_eval_flags_ok(&t) || !cli_path_ok(&t, "output") ||
        !cli_output_file_ok("quantize", "--output", args_str(&t, "output")) ||
        !cli_output_not_input("quantize", "--output", output, "--weights", weights))
        return EXIT_USAGE;
    const int show = !quiet && isatty(2); /* the progress line, on a terminal only (as eval's) */
    if (strcmp(method, "minmax") && strcmp(method, "percentile") && strcmp(method, "entropy")) {
        cli_error("quantize", "--method must be minmax, percentile or entropy, got '%s'", method);
        return EXIT_USAGE;
    }
    rn_set_threads(threads);

    cli_ckpt_meta meta;
    cli_ckpt_meta_init(&meta);
    rn_model *m = NULL, *q = NULL;
    rn_dataset ds = {0};
    rn_loader *ld = NULL;
    rn_calibrator *cal = NULL;
    float *x = NULL;
    int32_t *labels = NULL;
    int status = EXIT_RUNTIME;
    const char *arch = strcmp(args_str(&t, "arch"), "auto") ? args_str(&t, "arch") : NULL;
    both_meta all = {&meta, {0}};
    if (rn_model_load_meta(weights, arch, take_meta, &all, &m) != RN_OK) {
        cli_error("quantize", "%s", rn_last_error());
        goto done;
    }
    if (rn_model_is_quantized(m)) {
        cli_error("quantize", "%s is already an int8 model", weights);
        goto done;
    }
    char kind[64];
    rn_loader_config cfg;
    if (!cli_eval_config(&t, weights, &meta, kind, sizeof kind, &cfg)) {
        status = EXIT_USAGE;
        goto done;
    }
    const int train_split = cli_eval_split(&t, weights, kind, &status);
    if (train_split < 0)
        goto done;
    status = EXIT_RUNTIME;
    cfg.shuffle = 1;
    cfg.seed = (uint64_t)seed;
    if (rn_dataset_load(args_str(&t, "data"), kind, train_split, &ds) != RN_OK) {
        cli_error("quantize", "%s", rn_last_error());
        goto done;
    }
    if (!cli_normalize_fits(&t, ds.channels, &cfg)) {
        status = EXIT_USAGE;
        goto done;
    }
    if (rn_loader_create(&ds, &cfg, &ld) != RN_OK) {
        cli_error("quantize", "%s", rn_last_error());
        goto done;
    }
    int ch, hh, ww;
    rn_loader_shape(ld, &ch, &hh, &ww);
    if (ch != rn_model_in_channels(m)) {
        cli_error("quantize", "the calibration images have %d channel%s, %s takes %d", ch,
                  ch == 1 ? "" : "s", weights, rn_model_in_channels(m));
        goto done;
    }
    if (ds.count == 0) {
        cli_error("quantize", "the %s split of %s is empty: calibration needs images", split,
                  args_str(&t, "data"));
        goto done;
    }
    x = malloc((size_t)cfg.batch_size * ch * hh * ww * sizeof *x);
    labels = malloc((size_t)cfg.batch_size * sizeof *labels);
    if (!x || !labels) {
        cli_error("quantize", "out of memory");
        goto done;
    }
    if (rn_calibrator_create(m, hh, ww, method, &cal) != RN_OK) {
        cli_error("quantize", "%s", rn_last_error());
        goto done;
    }
    long limit = want < (long)ds.count ? want : (long)ds.count;
    while (rn_calibrator_images(cal) < limit) {
        int n = 0;
        if (rn_loader_next(ld, x, labels, &n) != RN_OK) {
            cli_error("quantize", "%s", rn_last_error());
            goto done;
        }
        long left = limit - rn_calibrator_images(cal);
        n = n < left ? n : (int)left;
        if (n > 0 && rn_calibrator_add(cal, x, n) != RN_OK) {
            cli_error("quantize", "%s", rn_last_error());
            goto done;
        }
        if (show)
            fprintf(stderr, "\rcalibrating: %ld / %ld images", rn_calibrator_images(cal), limit);
    }
    if (show)
        fprintf(stderr, "\n");
    if (rn_calibrator_quantize(cal, &q) != RN_OK) {
        cli_error("quantize", "%s", rn_last_error());
        goto done;
    }
    /* the checkpoint's metadata travels with the model (class names, stem, ...), with the image
     * size and normalisation calibration used, which eval and predict apply; the dataset names the
     * model's classes (predict's names): the checkpoint's where it has one, calibration's own
     * recorded beside it; the int8 file's own keys (format, calibration) are written from the model */
    const char *had_dataset = meta_of(&all.list, "dataset");
    const char *used_dataset = had_dataset ? had_dataset : kind;
    if (had_dataset && !same_value("dataset", had_dataset, kind))
        cli_error("quantize", "warning: calibrated on --dataset %s, where %s records dataset %s (its "
                  "classes'): the int8 file keeps dataset %s", kind, weights, had_dataset, had_dataset);
    const char *used_size = used_value(&t, "image-size", args_str(&t, "image-size"), "-1", &all.list, "image_size",
                                       meta.image_size, weights);
    const char *norm_given = args_str(&t, "normalize");
    char imagenet[128]; /* --normalize imagenet as its values for these images, as train records them */
    if (strcmp(norm_given, "imagenet") == 0) {
        cli_format_normalize(&cfg, ch, imagenet, sizeof imagenet);
        norm_given = imagenet;
    }
    const char *used_norm = used_value(&t, "normalize", norm_given, "auto", &all.list, "normalize", meta.normalize,
                                       weights);
    char resize[16]; /* the resize calibration used (image folders; 0: int(size / 0.875)) */
    snprintf(resize, sizeof resize, "%d", cfg.resize_size);
    if (!cli_meta_list_set(&all.list, "dataset", used_dataset) ||
        !cli_meta_list_set(&all.list, "calibration_dataset", kind) ||
        !cli_meta_list_set(&all.list, "image_size", used_size) ||
        !cli_meta_list_set(&all.list, "resize_size", resize) ||
        !cli_meta_list_set(&all.list, "normalize", used_norm) || all.list.nomem) {
        cli_error("quantize", "out of memory");
        goto done;
    }
    rn_status wst = cli_make_output_dirs("quantize", output);
    if (wst == RN_OK)
        wst = rn_model_save_meta(q, output, (const char *const *)all.list.keys,
                                 (const char *const *)all.list.values, all.list.count);
    if (wst != RN_OK) {
        status = cli_write_failed("quantize", wst);
        goto done;
    }
    if (!quiet) {
        printf("quantized %s (%s) to int8: %d convolutions, weights int8 per output channel "
               "(BatchNorm folded), activations uint8 per tensor, fc float32\n",
               weights, rn_model_arch(m), rn_calibrator_convs(cal));
        printf("calibration: %ld %s images of %s, method %s\nwrote %s (per-layer scales: resnet "
               "info --weights %s)\n", rn_calibrator_images(cal), split, args_str(&t, "data"),
               method, output, output);
    }
    status = 0;
done:
    cli_meta_list_free(&all.list);
    free(x);
    free(labels);
    rn_calibrator_free(cal);
    rn_loader_free(ld);
    rn_dataset_free(&ds);
    rn_model_free(q);
    rn_model_free(m);
    return status;
}
