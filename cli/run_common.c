/* run_common.c - flag parsing shared by `train`, `eval` and `predict`; output folders. */
#include "run_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "io/file.h"

int cli_mode(const arg_table *t) {
    const char *s = args_str(t, "mode");
    if (strcmp(s, "eval") == 0)
        return RN_MODE_EVAL;
    if (strcmp(s, "train") == 0)
        return RN_MODE_TRAIN;
    cli_error(t->command, "--mode must be eval or train, got '%s'", s);
    return -1;
}

int cli_stem(const arg_table *t) {
    const char *s = args_str(t, "stem");
    if (strcmp(s, "imagenet") == 0)
        return RN_STEM_IMAGENET;
    if (strcmp(s, "cifar") == 0)
        return RN_STEM_CIFAR;
    cli_error(t->command, "--stem must be imagenet or cifar, got '%s'", s);
    return -1;
}

int cli_width(const arg_table *t) {
    int width;
    return args_int(t, "width", 1, 4096, &width) ? width : -1;
}

int cli_parse_tta(const arg_table *t, rn_loader_config *cfg) {
    const char *s = args_str(t, "tta");
    cfg->tta_flip = strcmp(s, "flip") == 0;
    if (!cfg->tta_flip && strcmp(s, "none") != 0) {
        cli_error(t->command, "--tta must be none or flip, got '%s'", s);
        return 0;
    }
    return 1;
}

int cli_number_ok(const arg_table *t, const char *name) {
    const char *v = args_str(t, name);
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || !isfinite(x)) {
        cli_error(t->command, "--%s must be a number, got '%s'", name, v ? v : "");
        return 0;
    }
    return 1;
}

int cli_write_failed(const char *command, rn_status st) {
    cli_error(command, "%s", rn_last_error());
    return st == RN_ERR_IO ? EXIT_WRITE : EXIT_RUNTIME;
}

int cli_parse_augment(const arg_table *t, rn_loader_config *cfg, const char *auto_value) {
    const char *a = args_str(t, "augment");
    if (strcmp(a, "auto") == 0)
        a = auto_value;
    int flip = 0, pad = 0, ok = 1;
    if (strcmp(a, "flip") == 0) {
        flip = 1;
    } else if (strncmp(a, "crop", 4) == 0) {
        const char *p = a + 4;
        pad = 4;
        if (*p == ':') { /* crop:N, the padding in pixels */
            char *end;
            long v = strtol(p + 1, &end, 10);
            ok = end != p + 1 && v >= 1 && v <= 64;
            pad = (int)v;
            p = end;
        }
        flip = strcmp(p, "+flip") == 0;
        ok = ok && (flip || *p == '\0');
    } else {
        ok = strcmp(a, "none") == 0;
    }
    if (!ok) {
        cli_error(t->command, "--augment must be none, flip, crop, crop+flip, crop:N or crop:N+flip "
                  "(N: the padding, 1 to 64 pixels), got '%s'", a);
        return 0;
    }
    cfg->flip = flip;
    cfg->crop_padding = pad;
    return 1;
}

/* Parses up to 4 comma-separated numbers; returns how many, or -1. */
static int parse_list(const char *s, size_t len, float *out) {
    int n = 0;
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    for (char *p = buf;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || n == 4 || !isfinite(v))
            return -1;
        out[n++] = (float)v;
        if (*end == '\0')
            return n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

int parse_mean_std(const char *s, float *mean, float *std, int *channels) {
    const char *colon = strchr(s, ':');
    if (!colon)
        return 0;
    int a = parse_list(s, (size_t)(colon - s), mean), b = parse_list(colon + 1, strlen(colon + 1), std);
    if (a < 1 || a != b)
        return 0;
    for (int i = 0; i < a; i++)
        if (!(std[i] > 0.0f))
            return 0;
    *channels = a;
    return 1;
}

int cli_parse_normalize(const arg_table *t, rn_loader_config *cfg, char *text, size_t cap) {
    const char *v = args_str(t, "normalize");
    snprintf(text, cap, "%s", v);
    if (strcmp(v, "none") == 0 || strcmp(v, "auto") == 0) {
        snprintf(text, cap, "none");
        cfg->normalize = 0;
        return 1;
    }
    int ch = 0;
    if (!parse_mean_std(v, cfg->mean, cfg->std, &ch)) {
        cli_error(t->command, "--normalize must be none or MEAN,..:STD,.. (e.g. 0.286:0.353), got '%s'", v);
        return 0;
    }
    /* one value applies to every channel */
    for (int i = ch; i < 4; i++)
        cfg->mean[i] = cfg->mean[0], cfg->std[i] = cfg->std[0];
    cfg->normalize = 1;
    return 1;
}

void cli_format_normalize(const rn_loader_config *cfg, int channels, char *text, size_t cap) {
    size_t used = 0;
    for (int half = 0; half < 2; half++)
        for (int c = 0; c < channels && c < 4 && used < cap; c++)
            used += (size_t)snprintf(text + used, cap - used, "%s%.9g", c ? "," : half ? ":" : "",
                                     half ? cfg->std[c] : cfg->mean[c]);
}

void cli_session_config(const arg_table *t, rn_session_config *cfg) {
    rn_session_config_default(cfg);
    cfg->conv_algo = args_str(t, "conv-algo");
    if (args_spec(t, "precision"))
        cfg->precision = args_str(t, "precision");
}

rn_status cli_make_output_dirs(const char *command, const char *path) {
    char created[1024];
    rn_status st = rn_make_parent_dirs(path, created, sizeof created);
    if (st == RN_OK && created[0])
        fprintf(stderr, "resnet %s: created the folder %s for %s\n", command, created, path);
    return st;
}

void cli_ckpt_meta_init(cli_ckpt_meta *meta) {
    snprintf(meta->dataset, sizeof meta->dataset, "fashion-mnist");
    snprintf(meta->image_size, sizeof meta->image_size, "0");
    snprintf(meta->normalize, sizeof meta->normalize, "none");
}

void cli_ckpt_meta_take(void *ctx, const char *key, const char *value) {
    cli_ckpt_meta *e = ctx;
    if (strcmp(key, "dataset") == 0)
        snprintf(e->dataset, sizeof e->dataset, "%s", value);
    else if (strcmp(key, "image_size") == 0)
        snprintf(e->image_size, sizeof e->image_size, "%s", value);
    else if (strcmp(key, "normalize") == 0)
        snprintf(e->normalize, sizeof e->normalize, "%s", value);
}

/* "none" or MEAN,..:STD,.. into cfg; 0 if malformed. */
static int set_normalize(const char *norm, rn_loader_config *cfg) {
    if (strcmp(norm, "none") == 0)
        return 1;
    int ch;
    if (!parse_mean_std(norm, cfg->mean, cfg->std, &ch))
        return 0;
    for (int i = ch; i < 4; i++)
        cfg->mean[i] = cfg->mean[0], cfg->std[i] = cfg->std[0];
    cfg->normalize = 1;
    return 1;
}

int cli_eval_config(const arg_table *t, const char *weights, const cli_ckpt_meta *meta, char *kind,
                    size_t kind_cap, rn_loader_config *cfg) {
    int batch, size;
    if (!args_int(t, "batch-size", 1, 65536, &batch) || !args_int(t, "image-size", -1, 4096, &size))
        return 0;
    snprintf(kind, kind_cap, "%s",
             strcmp(args_str(t, "dataset"), "auto") == 0 ? meta->dataset : args_str(t, "dataset"));
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_size = batch;
    cfg->image_size = size >= 0 ? size : atoi(meta->image_size);
    const char *norm_flag = args_str(t, "normalize");
    if (strcmp(norm_flag, "auto") != 0 && !set_normalize(norm_flag, cfg)) {
        cli_error(t->command, "--normalize must be auto, none or MEAN,..:STD,.. (e.g. 0.286:0.353), "
                  "got '%s'", norm_flag);
        return 0;
    }
    if (strcmp(norm_flag, "auto") == 0 && !set_normalize(meta->normalize, cfg)) {
        cli_error(t->command, "%s: bad normalisation '%s' in the metadata", weights, meta->normalize);
        return 0;
    }
    return 1;
}
