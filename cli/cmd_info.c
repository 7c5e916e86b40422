/* cmd_info.c - `resnet info`: the layer table of an architecture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"weights", ARG_STRING, "none", "a weights file to describe (its architecture, and for an int8 model every layer's quantization scales)", 0, 0},
    {"arch", ARG_STRING, "auto", "auto (from --weights), or an architecture: d2l_resnet18, resnet18, resnet34, resnet50, resnet101, resnet152, wide_resnet50_2, wide_resnet101_2, resnext50_32x4d or resnext101_32x8d", 0, 0},
    {"stem", ARG_STRING, "imagenet", "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no max-pool); "
     "not with --weights: the file's", 0, 0},
    {"width", ARG_INT, "64", CLI_WIDTH_TEXT " (not with --weights: the file's)", 0, 0},
    {"in-channels", ARG_INT, "3", "input channels (not with --weights: the file's)", 0, 0},
    {"num-classes", ARG_INT, "1000", "output classes (not with --weights: the file's)", 0, 0},
    {"image-size", ARG_INT, "-1", "input height and width; -1: the size --weights was evaluated at (its "
     "image_size), else 224", 0, 0},
};

static void group_digits(char *buf, size_t cap, int64_t v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
}

/* An int8 model's scheme and every conv's scales. */
static void print_quantization(const rn_model *m) {
    int n = rn_model_quant_layers(m, NULL, 0);
    rn_quant_layer *q = n > 0 ? calloc((size_t)n, sizeof *q) : NULL;
    if (!q)
        return;
    rn_model_quant_layers(m, q, n);
    float in_scale;
    int in_zp, images;
    const char *method = rn_model_quant_input(m, &in_scale, &in_zp, &images);
    printf("\nint8 model: weights int8 symmetric per output channel (BatchNorm folded), activations "
           "uint8 [0, 127] per tensor with a zero point, fc float32\n");
    char on[48] = "on an unknown number of images"; /* 0: the file's count was unreadable */
    if (images > 0)
        snprintf(on, sizeof on, "on %d image%s", images, images == 1 ? "" : "s");
    printf("calibration: %s %s; input scale %.6g, zero point %d\n\n", method, on, (double)in_scale, in_zp);
    printf("%-36s %6s %24s %14s %8s\n", "Conv", "cout", "weight scale (min..max)", "output scale",
           "zero pt");
    for (int i = 0; i < n; i++)
        printf("%-36s %6d %11.4g..%-12.4g %14.6g %8d\n", q[i].name, q[i].cout,
               (double)q[i].w_scale_min, (double)q[i].w_scale_max, (double)q[i].out_scale, q[i].out_zp);
    free(q);
}

int cmd_info(int argc, char **argv) {
    arg_table t = {"info", "Print every module of an architecture with its output shape, parameters "
                   "and multiply-accumulates for one image, and the totals.",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    int r = args_parse(&t, argc, argv);
    if (r)
        return r > 0 ? 0 : EXIT_USAGE;
    int in_ch, classes, size;
    if (!args_int(&t, "in-channels", 1, 4096, &in_ch) || !args_int(&t, "num-classes", 1, 1000000, &classes) ||
        !args_int(&t, "image-size", -1, 16384, &size))
        return EXIT_USAGE;
    if (size == 0) {
        cli_error("info", "--image-size must be at least 1 (or -1: the file's, else 224)");
        return EXIT_USAGE;
    }

    int stem = cli_stem(&t), width = stem < 0 ? -1 : cli_width(&t);
    if (stem < 0 || width < 0 || !cli_arch_ok(&t, 1) || !cli_new_model_flags_ok(&t))
        return EXIT_USAGE;
    rn_model *m = NULL;
    const char *weights = args_str(&t, "weights"), *arch = args_str(&t, "arch");
    if (strcmp(weights, "none") != 0) {
        cli_ckpt_meta meta;
        cli_ckpt_meta_init(&meta);
        if (rn_model_load_meta(weights, strcmp(arch, "auto") ? arch : NULL, cli_ckpt_meta_take, &meta,
                               &m) != RN_OK) {
            cli_error("info", "%s", rn_last_error());
            return EXIT_RUNTIME;
        }
        if (size < 0 && atoi(meta.image_size) > 0 && atoi(meta.image_size) <= 16384)
            size = atoi(meta.image_size);
        in_ch = rn_model_in_channels(m);
        classes = rn_model_num_classes(m);
    } else if (strcmp(arch, "auto") == 0) {
        cli_error("info", "give --arch NAME or --weights FILE");
        return EXIT_USAGE;
    } else {
        rn_status st = rn_model_create_width(arch, in_ch, classes, (rn_stem)stem, width, &m);
        if (st != RN_OK) {
            cli_error("info", "%s", rn_last_error());
            return st == RN_ERR_NOMEM ? EXIT_RUNTIME : EXIT_USAGE; /* out of memory is no usage error */
        }
    }
    if (size < 0)
        size = 224;
    int count = 0;
    rn_layer_info *rows = NULL;
    if (rn_model_summary(m, size, size, NULL, 0, &count) != RN_OK ||
        !(rows = calloc((size_t)count, sizeof *rows)) ||
        rn_model_summary(m, size, size, rows, count, &count) != RN_OK) {
        cli_error("info", "%s", rows ? rn_last_error() : "out of memory");
        free(rows);
        rn_model_free(m);
        return EXIT_RUNTIME;
    }

    printf("%s: width %d, in_channels %d, num_classes %d, input (N, %d, %d, %d)\n\n", rn_model_arch(m),
           rn_model_width(m), in_ch, classes, in_ch, size, size);
    printf("%-44s %-18s %-18s %14s %16s\n", "Layer (type)", "", "Output shape", "Param #", "Mult-adds");
    printf("%.*s\n", 114, "==================================================================================================================");
    int64_t macs = 0;
    for (int i = 0; i < count; i++) {
        const rn_layer_info *l = &rows[i];
        char name[160], shape[48], p[32], mc[32];
        snprintf(name, sizeof name, "%*s%s", 2 * l->depth, "", l->name);
        if (l->out_h == 1 && l->out_w == 1 && (l->type[0] == 'L'))
            snprintf(shape, sizeof shape, "[N, %d]", l->out_c);
        else
            snprintf(shape, sizeof shape, "[N, %d, %d, %d]", l->out_c, l->out_h, l->out_w);
        group_digits(p, sizeof p, l->params);
        group_digits(mc, sizeof mc, l->macs);
        printf("%-44s %-18s %-18s %14s %16s\n", name, l->type, shape, l->leaf || l->params ? p : "--",
               l->leaf || l->macs ? mc : "--");
        if (l->leaf)
            macs += l->macs;
    }
    char total[32], total_macs[32];
    group_digits(total, sizeof total, rn_model_param_count(m));
    group_digits(total_macs, sizeof total_macs, macs);
    printf("%.*s\n", 114, "==================================================================================================================");
    printf("Total params: %s (%.2f MB as float32)\n", total, rn_model_param_count(m) * 4.0 / 1e6);
    printf("Mult-adds per image: %s (%.3f GFLOP forward)\n", total_macs, 2.0 * (double)macs / 1e9);
    print_quantization(m);
    free(rows);
    rn_model_free(m);
    return 0;
}
