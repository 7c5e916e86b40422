/*
 * cmd_export.c - `resnet export`: a checkpoint as an ONNX model.
 *
 * The checkpoint's metadata that describes how to use the model travels
 * into metadata_props: the class names (one per line; the dataset's
 * built-in names when the checkpoint has none), the dataset, the input
 * size, and the normalisation both as resnet.c writes it ("normalize":
 * "M1,..:S1,..") and as lists ("mean", "std"). Import (--weights X.onnx)
 * reads them back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "data/dataset.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"IN OUT.onnx", ARG_POSITIONAL, NULL, "the weights to export (safetensors, PyTorch .pth or ONNX) and the "
     "ONNX file to write; missing folders are created", 0, 0},
    {"format", ARG_STRING, "onnx", "output format: onnx", 0, 0},
    {"arch", ARG_STRING, "auto", "architecture; auto: from the file's metadata or tensor names", 0, 0},
    {"opset", ARG_INT, "17", "ONNX opset, 13..17 (IR version 7 for 13-14, 8 for 15-17)", 0, 0},
    {"batch", ARG_STRING, "dynamic", "batch axis: dynamic (symbolic, named \"batch\") or a fixed size N", 0, 0},
    {"fold-bn", ARG_FLAG, NULL, "fold each BatchNorm into its convolution's weight and bias "
     "(fewer nodes; BatchNormalization nodes otherwise)", 0, 0},
    {"image-size", ARG_STRING, "auto", "input height = width the graph declares; auto: the checkpoint's "
     "image_size, else 224 (imagenet stem) or 32 (cifar stem)", 0, 0},
    {"normalize", ARG_STRING, "auto", "the input normalisation to record (mean and std): none, "
     "imagenet, MEAN,..:STD,.. or auto (the checkpoint's)", 0, 0},
    {"dataset", ARG_STRING, "auto", "the dataset to record, and whose class names when the checkpoint has none: "
     "imagenet, cifar10, fashion-mnist or mnist (folder and folder-gray: no built-in names); auto: the "
     "checkpoint's dataset", 0, 0},
};

#define META_MAX 8

/* The checkpoint's metadata that export carries over. */
typedef struct export_meta {
    char *dataset, *image_size, *resize_size, *normalize, *class_names;
} export_meta;

static void keep(char **dst, const char *value) {
    free(*dst);
    *dst = strdup(value);
}

static void on_meta(void *ctx, const char *key, const char *value) {
    export_meta *e = ctx;
    if (strcmp(key, "dataset") == 0)
        keep(&e->dataset, value);
    else if (strcmp(key, "image_size") == 0)
        keep(&e->image_size, value);
    else if (strcmp(key, "resize_size") == 0)
        keep(&e->resize_size, value);
    else if (strcmp(key, "normalize") == 0)
        keep(&e->normalize, value);
    else if (strcmp(key, "class_names") == 0)
        keep(&e->class_names, value);
}

static void meta_free(export_meta *e) {
    free(e->dataset), free(e->image_size), free(e->resize_size), free(e->normalize), free(e->class_names);
}

/* The built-in names of `kind` joined by newlines when they number k; NULL otherwise. */
static char *builtin_names(const char *kind, int k) {
    int n = 0;
    const char *const *names = rn_dataset_builtin_names(kind, &n);
    if (!names || n != k)
        return NULL;
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    char *text = malloc(len), *p = text;
    for (int i = 0; text && i < n; i++)
        p += sprintf(p, "%s%s", i ? "\n" : "", names[i]);
    return text;
}

/* The channels of the images of a --dataset kind (checked as known): 1 (gray) or 3 (RGB). */
static int kind_channels(const char *kind) {
    static const char *const gray[] = {"mnist", "fashion-mnist", "fashion_mnist", "folder-gray"};
    for (size_t i = 0; i < sizeof gray / sizeof gray[0]; i++)
        if (strcmp(kind, gray[i]) == 0)
            return 1;
    return 3;
}

/* Fills the metadata list; returns 0 after an error message (the flags were checked before:
 * a bad value here is the checkpoint's, `in`). */
static int build_meta(const arg_table *t, const char *in, const rn_model *m, export_meta *e,
                      const char **keys, const char **vals, int *count, char *mean, char *std,
                      size_t cap, int *status) {
    *status = EXIT_RUNTIME;
    int n = 0;
    const char *norm = args_str(t, "normalize");
    if (strcmp(norm, "auto") == 0)
        norm = e->normalize ? e->normalize : "none";
    if (strcmp(norm, "imagenet") == 0) { /* as predict takes it (gray: the averages, as train uses), written as
                                           people write them (rn_imagenet_normalize's floats print longer) */
        const int channels = rn_model_in_channels(m);
        if (channels != 1 && channels != 3) {
            cli_error("export", "--normalize imagenet is for models of 1 or 3 channels, this one takes %d: give "
                      "MEAN,..:STD,..", channels);
            *status = EXIT_USAGE;
            return 0;
        }
        norm = channels == 1 ? "0.449:0.226" : "0.485,0.456,0.406:0.229,0.224,0.225";
    }
    if (strcmp(norm, "none") != 0) {
        float mv[4], sv[4];
        int ch = 0;
        if (!parse_mean_std(norm, mv, sv, &ch)) { /* the flag's was checked before */
            cli_error("export", "%s: its metadata normalize '%s' is neither none nor MEAN,..:STD,..: "
                      "give --normalize", in, norm);
            return 0;
        }
        const int channels = rn_model_in_channels(m);
        if (ch != 1 && ch != channels) { /* predict and eval would refuse what the file records */
            const int given = strcmp(args_str(t, "normalize"), "auto") != 0;
            cli_error("export", "%s%s%s '%s' gives %d values for a model of %d channel%s: give 1 (for every "
                      "channel)%s", given ? "--normalize" : in, given ? "" : ": its metadata", given ? "" : " normalize",
                      norm, ch, channels, channels == 1 ? "" : "s", channels == 1 ? "" : " or one per channel");
            *status = given ? EXIT_USAGE : EXIT_RUNTIME;
            return 0;
        }
        /* the lists as written: "M1,..:S1,.." -> "M1,.." and "S1,.." */
        const char *colon = strchr(norm, ':');
        snprintf(mean, cap, "%.*s", (int)(colon - norm), norm);
        snprintf(std, cap, "%s", colon + 1);
        keys[n] = "normalize", vals[n++] = norm;
        keys[n] = "mean", vals[n++] = mean;
        keys[n] = "std", vals[n++] = std;
    }
    const char *kind = args_str(t, "dataset");
    int builtin = 0;
    if (strcmp(kind, "auto") == 0)
        kind = e->dataset;
    else if (rn_dataset_builtin_names(kind, &builtin) && builtin != rn_model_num_classes(m)) {
        cli_error("export", "--dataset %s has %d classes, the model of %s %d: give the dataset it was trained "
                  "on", kind, builtin, in, rn_model_num_classes(m));
        *status = EXIT_USAGE;
        return 0;
    } else if (kind_channels(kind) != rn_model_in_channels(m)) {
        cli_error("export", "--dataset %s has images of %d channel%s, the model of %s takes %d: give the dataset "
                  "it was trained on", kind, kind_channels(kind), kind_channels(kind) == 1 ? "" : "s", in,
                  rn_model_in_channels(m));
        *status = EXIT_USAGE;
        return 0;
    }
    if (kind) {
        keys[n] = "dataset", vals[n++] = kind;
        if (!e->class_names)
            e->class_names = builtin_names(kind, rn_model_num_classes(m));
    }
    if (e->class_names)
        keys[n] = "class_names", vals[n++] = e->class_names;
    /* the evaluation's resize (train --val-resize-size), which goes with the checkpoint's size only */
    if (e->resize_size && strcmp(e->resize_size, "0") != 0 &&
        (strcmp(args_str(t, "image-size"), "auto") == 0 ||
         (e->image_size && strcmp(args_str(t, "image-size"), e->image_size) == 0)))
        keys[n] = "resize_size", vals[n++] = e->resize_size;
    *count = n;
    return 1;
}

int cmd_export(int argc, char **argv) {
    arg_table t = {"export", "Export weights as an ONNX model (Conv, BatchNormalization or folded, Relu, "
                   "MaxPool, Add, GlobalAveragePool, Flatten, Gemm) with the class names and the "
                   "preprocessing (image_size, mean, std) in its metadata_props.",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    int n_pos = 0;
    char **pos = args_positional(&t, argv, &n_pos);
    if (n_pos != 2) {
        cli_error("export", "expected IN and OUT.onnx, got %d argument%s (see resnet export --help)", n_pos,
                  n_pos == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    if (strcmp(args_str(&t, "format"), "onnx") != 0) {
        cli_error("export", "--format must be onnx, got '%s'", args_str(&t, "format"));
        return EXIT_USAGE;
    }
    rn_onnx_options o;
    rn_onnx_options_default(&o);
    if (!args_int(&t, "opset", 13, 17, &o.opset))
        return EXIT_USAGE;
    const char *batch = args_str(&t, "batch");
    if (strcmp(batch, "dynamic") != 0 && !args_int(&t, "batch", 1, 1000000, &o.batch))
        return EXIT_USAGE;
    const char *size = args_str(&t, "image-size");
    if (strcmp(size, "auto") != 0 && !args_int(&t, "image-size", 1, 65536, &o.height))
        return EXIT_USAGE;
    o.fold_bn = args_flag(&t, "fold-bn");
    const char *kind = args_str(&t, "dataset"), *norm = args_str(&t, "normalize");
    if (strcmp(kind, "auto") != 0 && strcmp(kind, "imagenet") != 0 && !rn_dataset_kind_known(kind)) {
        cli_error("export", "unknown --dataset '%s' (expected auto, imagenet, cifar10, fashion-mnist, mnist, "
                  "folder or folder-gray)", kind);
        return EXIT_USAGE;
    }
    float nm[4], ns[4];
    int nch;
    if (strcmp(norm, "auto") != 0 && strcmp(norm, "none") != 0 && strcmp(norm, "imagenet") != 0 &&
        !parse_mean_std(norm, nm, ns, &nch)) {
        cli_error("export", "--normalize must be auto, none, imagenet or MEAN,..:STD,.. (e.g. 0.286:0.353), got "
                  "'%s'", norm);
        return EXIT_USAGE;
    }
    if (!cli_arch_ok(&t, 1))
        return EXIT_USAGE;
    if (!*pos[0] || !*pos[1]) {
        cli_error("export", "the %s is an empty path", *pos[0] ? "output" : "input");
        return EXIT_USAGE;
    }

    const char *in = pos[0], *out = pos[1];
    if (!cli_output_not_input("export", "the output", out, "the input", in) ||
        !cli_output_file_ok("export", "the output", out))
        return EXIT_USAGE;
    const char *arch = strcmp(args_str(&t, "arch"), "auto") ? args_str(&t, "arch") : NULL;
    export_meta e = {0};
    rn_model *m = NULL;
    if (rn_model_load_meta(in, arch, on_meta, &e, &m) != RN_OK) {
        cli_error("export", "%s", rn_last_error());
        meta_free(&e);
        return EXIT_RUNTIME;
    }
    if (o.height == 0 && e.image_size && strcmp(e.image_size, "0") != 0) { /* "0": not known */
        char *end;
        long side = strtol(e.image_size, &end, 10);
        if (end == e.image_size || *end || side < 1 || side > 65536) {
            cli_error("export", "%s: its metadata image_size '%s' is not a size in 1..65536: give "
                      "--image-size", in, e.image_size);
            rn_model_free(m);
            meta_free(&e);
            return EXIT_RUNTIME;
        }
        o.height = (int)side;
    }
    o.width = o.height;
    const char *keys[META_MAX], *vals[META_MAX];
    char mean[128], std[128];
    int status = 0;
    if (build_meta(&t, in, m, &e, keys, vals, &o.meta_count, mean, std, sizeof mean, &status)) {
        status = 0;
        o.meta_keys = keys, o.meta_values = vals;
        rn_status st = cli_make_output_dirs("export", out);
        if (st == RN_OK)
            st = rn_model_export_onnx(m, out, &o);
        if (st != RN_OK)
            status = cli_write_failed("export", st);
    }
    if (status == 0) {
        FILE *f = fopen(out, "rb");
        long bytes = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
        if (f)
            fclose(f);
        int s = o.height ? o.height : rn_model_stem(m) == RN_STEM_CIFAR ? 32 : 224;
        char b[32];
        snprintf(b, sizeof b, "%d", o.batch);
        /* metadata: arch, stem, in_channels, num_classes, image_size and ours */
        printf("wrote %s: %s, opset %d, input (%s, %d, %d, %d), BatchNorm %s, %d metadata keys, %.1f MB\n",
               out, rn_model_arch(m), o.opset, o.batch ? b : "batch", rn_model_in_channels(m), s, s,
               o.fold_bn ? "folded" : "kept", o.meta_count + 5, bytes / 1e6);
    }
    rn_model_free(m);
    meta_free(&e);
    return status;
}
