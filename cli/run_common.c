/* run_common.c - flag parsing shared by `train`, `eval` and `predict`; output folders. */
#include "run_common.h"

#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "data/dataset.h"
#include "io/file.h"
#include "ops/conv_algo.h"

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

int cli_new_model_flags_ok(const arg_table *t) {
    const char *w = args_str(t, "weights");
    if (!w || strcmp(w, "none") == 0)
        return 1;
    static const char *const NEW[] = {"stem", "width", "in-channels", "num-classes"};
    for (size_t i = 0; i < sizeof NEW / sizeof NEW[0]; i++) {
        const arg_spec *s = args_spec(t, NEW[i]);
        if (s && s->set) {
            cli_error(t->command, "--%s describes a new model; with --weights the file's is used: drop --%s",
                      NEW[i], NEW[i]);
            return 0;
        }
    }
    return 1;
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
    /* decimal only: strtod also reads hexadecimal (0x10 is 16), which no one means by a rate */
    if (!v || !*v || *end || !isfinite(x) || strpbrk(v, "xX")) {
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
        if (end == p || n == 4 || !isfinite(v) || !isfinite((float)v)) /* 1e39 is inf as a float */
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
    if (strcmp(v, "imagenet") == 0) /* 3 channels until cli_normalize_fits knows the images' */
        return cfg->normalize = rn_imagenet_normalize(3, cfg->mean, cfg->std);
    int ch = 0;
    if (!parse_mean_std(v, cfg->mean, cfg->std, &ch)) {
        cli_error(t->command, "--normalize must be none, imagenet or MEAN,..:STD,.. (e.g. 0.286:0.353), got '%s'",
                  v);
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
    cli_made_dirs made;
    rn_status st = cli_make_output_dirs_quietly(path, &made);
    if (st == RN_OK)
        cli_made_dirs_say(command, path, &made);
    return st;
}

rn_status cli_make_output_dirs_quietly(const char *path, cli_made_dirs *made) {
    return rn_make_parent_dirs(path, made->whole, sizeof made->whole, made->outer, sizeof made->outer);
}

void cli_made_dirs_say(const char *command, const char *path, const cli_made_dirs *made) {
    if (made->whole[0])
        fprintf(stderr, "resnet %s: created the folder %s for %s\n", command, made->whole, path);
}

void cli_unmake_output_dirs(const char *path, const cli_made_dirs *made) {
    const size_t n = strlen(made->outer);
    char dir[1024];
    if (!n || strncmp(path, made->outer, n) != 0 || snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return;
    for (char *slash; (slash = strrchr(dir, '/')) && (size_t)(slash - dir) >= n;) {
        *slash = '\0';
        if (rmdir(dir) != 0) /* not empty (something was written there), or gone: leave the rest */
            return;
    }
}

void cli_ckpt_meta_init(cli_ckpt_meta *meta) {
    snprintf(meta->dataset, sizeof meta->dataset, "fashion-mnist");
    snprintf(meta->image_size, sizeof meta->image_size, "0");
    snprintf(meta->resize_size, sizeof meta->resize_size, "0");
    snprintf(meta->normalize, sizeof meta->normalize, "none");
}

void cli_ckpt_meta_take(void *ctx, const char *key, const char *value) {
    cli_ckpt_meta *e = ctx;
    if (strcmp(key, "dataset") == 0)
        snprintf(e->dataset, sizeof e->dataset, "%s", value);
    else if (strcmp(key, "image_size") == 0)
        snprintf(e->image_size, sizeof e->image_size, "%s", value);
    else if (strcmp(key, "resize_size") == 0)
        snprintf(e->resize_size, sizeof e->resize_size, "%s", value);
    else if (strcmp(key, "normalize") == 0)
        snprintf(e->normalize, sizeof e->normalize, "%s", value);
}

/* "none", "imagenet" (3 channels until cli_normalize_fits knows the images') or
 * MEAN,..:STD,.. into cfg; 0 if malformed. */
static int set_normalize(const char *norm, rn_loader_config *cfg) {
    if (strcmp(norm, "none") == 0)
        return 1;
    if (strcmp(norm, "imagenet") == 0)
        return cfg->normalize = rn_imagenet_normalize(3, cfg->mean, cfg->std);
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
    /* image folders: --resize-size, else at the checkpoint's size its evaluation's resize (train
     * --val-resize-size) */
    int resize = -1;
    const int folder = rn_dataset_kind_is_folder(kind);
    if (args_spec(t, "resize-size") && !args_int(t, "resize-size", -1, 4096, &resize))
        return 0;
    if (resize > 0 && !folder) {
        cli_error(t->command, "--resize-size is for image folders (--dataset folder or folder-gray); images of "
                  "%s are resized straight to --image-size", kind);
        return 0;
    }
    if (resize < 0 && (size < 0 || size == atoi(meta->image_size)) && folder) { /* its size, given or not */
        const int own = atoi(meta->resize_size);
        resize = own > 0 && own <= 4096 ? own : 0;
    }
    cfg->resize_size = resize > 0 ? resize : 0;
    const char *norm_flag = args_str(t, "normalize");
    if (strcmp(norm_flag, "auto") != 0 && !set_normalize(norm_flag, cfg)) {
        cli_error(t->command, "--normalize must be auto, none, imagenet or MEAN,..:STD,.. (e.g. 0.286:0.353), "
                  "got '%s'", norm_flag);
        return 0;
    }
    if (strcmp(norm_flag, "auto") == 0 && !set_normalize(meta->normalize, cfg)) {
        cli_error(t->command, "%s: bad normalisation '%s' in the metadata", weights, meta->normalize);
        return 0;
    }
    return 1;
}

int cli_arch_ok(const arg_table *t, int allow_auto) {
    const char *a = args_str(t, "arch");
    if (!a || (allow_auto && strcmp(a, "auto") == 0))
        return 1;
    char names[512] = "";
    size_t used = 0;
    for (int i = 0; i < rn_arch_count(); i++) {
        if (strcmp(a, rn_arch_name(i)) == 0)
            return 1;
        if (used < sizeof names)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", rn_arch_name(i));
    }
    cli_error(t->command, "unknown --arch '%s' (expected %s%s)", a, allow_auto ? "auto, " : "", names);
    return 0;
}

int cli_dataset_ok(const arg_table *t, int allow_auto) {
    const char *k = args_str(t, "dataset");
    if ((allow_auto && strcmp(k, "auto") == 0) || rn_dataset_kind_known(k))
        return 1;
    cli_error(t->command, "unknown --dataset '%s' (expected %sfashion-mnist, mnist, cifar10, folder or folder-gray)",
              k, allow_auto ? "auto, " : "");
    return 0;
}

/* Every name some architecture gives a stage (rn_model_stage_index's, for the flag's spelling
 * before a model is loaded). */
static const char *const STAGE_NAMES[] = {
    "pool", "avgpool", "flatten", "stem", "maxpool", "relu", "conv.block.3", "conv.block.2",
    "layer1", "layer2", "layer3", "layer4", "conv.resnet_block1", "conv.resnet_block2",
    "conv.resnet_block3", "conv.resnet_block4"};

int cli_feature_layer_ok(const arg_table *t) {
    const char *v = args_str(t, "feature-layer");
    size_t i = 0;
    while (i < sizeof STAGE_NAMES / sizeof *STAGE_NAMES && strcmp(v, STAGE_NAMES[i]) != 0)
        i++;
    if (i == sizeof STAGE_NAMES / sizeof *STAGE_NAMES) {
        cli_error(t->command, "--feature-layer: unknown layer '%s' (expected pool, stem, layer1, "
                  "layer2, layer3 or layer4)", v);
        return 0;
    }
    if (strcmp(v, "pool") != 0 && strcmp(args_str(t, "features"), "none") == 0) {
        cli_error(t->command, "--feature-layer needs --features (the file it goes to)");
        return 0;
    }
    return 1;
}

int cli_feature_layer(const arg_table *t, const rn_model *m) {
    const char *v = args_str(t, "feature-layer");
    const int stage = rn_model_stage_index(m, v);
    if (stage < 0)
        cli_error(t->command, "--feature-layer %s: %s has no layer of that name (its layers: stem, "
                  "layer1..layer4 and pool, or by module name %s, %s..%s and %s)", v,
                  rn_model_arch(m), rn_model_stage_name(m, 0), rn_model_stage_name(m, 1),
                  rn_model_stage_name(m, 4), rn_model_stage_name(m, RN_STAGE_POOL));
    return stage;
}

int cli_features_shape(const char *command, const rn_model *m, int stage, int h, int w,
                       cli_features *f) {
    int c, oh, ow;
    if (rn_model_stage_shape(m, stage, h, w, &c, &oh, &ow) != RN_OK) {
        cli_error(command, "%s", rn_last_error());
        return 0;
    }
    const int pool = stage == RN_STAGE_POOL;
    *f = (cli_features){.stage = stage, .shape = {c, oh, ow}, .ndim = pool ? 2 : 4,
                        .per_image = (size_t)c * (size_t)oh * (size_t)ow};
    return 1;
}

rn_status cli_features_forward(rn_session *s, const cli_features *f, const float *x, int n, int h,
                               int w, rn_mode mode, float *feats, float *logits) {
    if (!feats)
        return rn_session_forward(s, x, n, h, w, mode, logits);
    if (f->stage == RN_STAGE_POOL)
        return rn_session_forward_features(s, x, n, h, w, mode, feats, logits);
    if (logits)
        RN_TRY(rn_session_forward(s, x, n, h, w, mode, logits));
    return rn_session_forward_stage(s, x, n, h, w, mode, f->stage, feats);
}

int cli_conv_algo_ok(const arg_table *t) {
    int id;
    if (rn_conv_algo_parse(args_str(t, "conv-algo"), &id) == RN_OK)
        return 1;
    cli_error(t->command, "--conv-algo: %s", rn_last_error());
    return 0;
}

int cli_precision_ok(const arg_table *t, int train) {
    const char *p = args_str(t, "precision");
    if (strcmp(p, "fp32") == 0 || strcmp(p, "bf16") == 0 ||
        (!train && (strcmp(p, "auto") == 0 || strcmp(p, "int8") == 0)))
        return 1;
    cli_error(t->command, "unknown --precision '%s' (expected %s)", p,
              train ? "fp32 or bf16" : "auto, fp32, bf16 or int8");
    return 0;
}

int cli_split(const arg_table *t, const char *kind) {
    const char *s = args_str(t, "split");
    if (strcmp(s, "train") == 0)
        return 1;
    if (strcmp(s, "test") == 0)
        return 0;
    if (strcmp(s, "val") != 0) {
        cli_error(t->command, "--split must be train, test or val (image folders), got '%s'", s);
        return -1;
    }
    if (!kind || rn_dataset_kind_is_folder(kind))
        return 0;
    cli_error(t->command, "--split val: the %s dataset has no val split (its splits are train and test; "
              "val is an image folder's DIR/val)", kind);
    return -1;
}

int cli_path_ok(const arg_table *t, const char *name) {
    const char *v = args_str(t, name);
    if (v && *v)
        return 1;
    cli_error(t->command, "--%s must name a file, got an empty path", name);
    return 0;
}

int cli_output_file_ok(const char *command, const char *what, const char *path) {
    struct stat sb;
    const size_t n = strlen(path);
    if ((n > 0 && path[n - 1] == '/') || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))) {
        cli_error(command, "%s %s is a folder: name the file to write in it", what, path);
        return 0;
    }
    return 1;
}

void cli_meta_list_take(void *ctx, const char *key, const char *value) {
    cli_meta_list *l = ctx;
    if (!cli_meta_list_set(l, key, value))
        l->nomem = 1;
}

int cli_meta_list_set(cli_meta_list *l, const char *key, const char *value) {
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->keys[i], key) == 0) {
            char *v = strdup(value);
            if (!v)
                return 0;
            free(l->values[i]);
            l->values[i] = v;
            return 1;
        }
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **k = realloc(l->keys, (size_t)cap * sizeof *k);
        if (!k)
            return 0;
        l->keys = k;
        char **v = realloc(l->values, (size_t)cap * sizeof *v);
        if (!v)
            return 0;
        l->values = v;
        l->cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k), free(v);
        return 0;
    }
    l->keys[l->count] = k;
    l->values[l->count++] = v;
    return 1;
}

void cli_meta_list_free(cli_meta_list *l) {
    for (int i = 0; i < l->count; i++)
        free(l->keys[i]), free(l->values[i]);
    free(l->keys), free(l->values);
    memset(l, 0, sizeof *l);
}

int cli_eval_flags_ok(const arg_table *t) {
    int batch, size;
    if (!cli_arch_ok(t, 1) || !cli_dataset_ok(t, 1) || cli_split(t, NULL) < 0 ||
        !args_int(t, "batch-size", 1, 65536, &batch) || !args_int(t, "image-size", -1, 4096, &size))
        return 0;
    const char *norm = args_str(t, "normalize");
    rn_loader_config cfg = {0};
    if (strcmp(norm, "auto") != 0 && !set_normalize(norm, &cfg)) {
        cli_error(t->command, "--normalize must be auto, none, imagenet or MEAN,..:STD,.. (e.g. 0.286:0.353), "
                  "got '%s'", norm);
        return 0;
    }
    if ((args_spec(t, "conv-algo") && !cli_conv_algo_ok(t)) || (args_spec(t, "precision") && !cli_precision_ok(t, 0)))
        return 0;
    const char *classes = args_spec(t, "classes") ? args_str(t, "classes") : "names";
    if (strcmp(classes, "names") != 0 && strcmp(classes, "position") != 0) {
        cli_error(t->command, "--classes must be names or position, got '%s'", classes);
        return 0;
    }
    return !args_spec(t, "tta") || cli_parse_tta(t, &cfg);
}

int cli_eval_split(const arg_table *t, const char *weights, const char *kind, int *status) {
    *status = EXIT_USAGE;
    if (!rn_dataset_kind_known(kind)) {
        *status = EXIT_RUNTIME;
        cli_error(t->command, "%s: the dataset '%s' of its metadata is none resnet reads: give --dataset "
                  "(fashion-mnist, mnist, cifar10, folder or folder-gray)", weights, kind);
        return -1;
    }
    const arg_spec *classes = args_spec(t, "classes");
    if (classes && classes->set && !rn_dataset_kind_is_folder(kind)) {
        cli_error(t->command, "--classes labels image folders (--dataset folder or folder-gray); %s's "
                  "labels are its class numbers", kind);
        return -1;
    }
    return cli_split(t, kind);
}

int cli_readable(const char *command, const char *prefix, const char *path) {
    FILE *f = fopen(path, "rb");
    int c = f ? fgetc(f) : EOF;
    if (!f || (c == EOF && ferror(f))) {
        cli_error(command, "%s%s: cannot read: %s", prefix, path, strerror(errno));
        if (f)
            fclose(f);
        return 0;
    }
    fclose(f);
    return 1;
}

int cli_normalize_fits(const arg_table *t, int channels, rn_loader_config *cfg) {
    const arg_spec *s = args_spec(t, "normalize");
    const char *v = args_str(t, "normalize");
    if (s && strcmp(v, "imagenet") == 0) { /* given, or a --resume plan's (its images' values too) */
        if (!rn_imagenet_normalize(channels, cfg->mean, cfg->std)) {
            cli_error(t->command, "--normalize imagenet is for images of 1 or 3 channels, these have %d: give "
                      "MEAN,..:STD,..", channels);
            return 0;
        }
        return 1;
    }
    if (!s || !s->set || !strchr(v, ':'))
        return 1; /* not given, or none / auto */
    int values = 1;
    for (const char *p = v; *p && *p != ':'; p++)
        values += *p == ',';
    if (values == 1 || values == channels)
        return 1;
    if (channels == 1)
        cli_error(t->command, "--normalize '%s' gives %d values for images of 1 channel: give one "
                  "MEAN:STD", v, values);
    else
        cli_error(t->command, "--normalize '%s' gives %d values for images of %d channels: give 1 "
                  "(for every channel) or %d", v, values, channels, channels);
    return 0;
}

int cli_match_classes(const arg_table *t, const char *weights, const char *kind, const rn_model *m,
                      rn_dataset *ds) {
    const char *command = t->command;
    if (!rn_dataset_kind_is_folder(kind) || strcmp(args_str(t, "classes"), "position") == 0)
        return 1;
    const int k = rn_model_num_classes(m);
    char **names = NULL;
    if (rn_checkpoint_class_names(weights, k, &names) != RN_OK) {
        cli_error(command, "%s", rn_last_error());
        return 0;
    }
    if (!names) /* the checkpoint names no classes: by position, as ImageFolder labels them */
        return 1;
    int matched = 0;
    const int had = ds->num_classes;
    rn_status st = rn_dataset_match_classes(ds, (const char *const *)names, k, &matched);
    free(names);
    if (st != RN_OK) {
        cli_error(command, "%s (the classes %s names; --classes position labels the folders by "
                  "their sorted order instead)", rn_last_error(), weights);
        return 0;
    }
    if (!matched)
        fprintf(stderr, "resnet %s: warning: none of the dataset's %d class folders is named as a "
                "class of %s; they are taken as its first %d classes in sorted order\n", command,
                had, weights, had);
    return 1;
}

void cli_beside(char *out, size_t cap, const char *path, const char *suffix) {
    static const char *const weights_ext[] = {".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".onnx"};
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t stem = strlen(path);
    if (dot && (!slash || dot > slash) && dot > (slash ? slash + 1 : path))
        for (size_t i = 0; i < sizeof weights_ext / sizeof weights_ext[0]; i++)
            if (strcasecmp(dot, weights_ext[i]) == 0)
                stem = (size_t)(dot - path);
    snprintf(out, cap, "%.*s%s", (int)stem, path, suffix);
}

void cli_beside_existing(char *out, size_t cap, const char *path, const char *suffix) {
    cli_beside(out, cap, path, suffix);
    struct stat sb;
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (stat(out, &sb) == 0 || !dot || (slash && dot < slash) || dot == (slash ? slash + 1 : path))
        return;
    char legacy[1024]; /* before 2026-12-07 every extension was dropped: runs/lr0.1 -> runs/lr0 */
    snprintf(legacy, sizeof legacy, "%.*s%s", (int)(dot - path), path, suffix);
    if (stat(legacy, &sb) == 0)
        snprintf(out, cap, "%s", legacy);
}

void cli_log_beside(char *out, size_t cap, const char *log, const char *suffix) {
    const char *dot = strrchr(log, '.'), *slash = strrchr(log, '/');
    size_t stem = strlen(log);
    if (dot && (!slash || dot > slash) && strcmp(dot, ".jsonl") == 0) {
        stem = (size_t)(dot - log);
        if (stem > 4 && strncmp(log + stem - 4, ".log", 4) == 0)
            stem -= 4;
    }
    snprintf(out, cap, "%.*s%s", (int)stem, log, suffix);
}

const char *cli_json_number(char *buf, size_t cap, const char *fmt, double v) {
    if (!isfinite(v))
        return "null";
    snprintf(buf, cap, fmt, v);
    return buf;
}

/* path's folder ("." for a bare name) into dir and its last name into base; 0 if too long or
 * the name is empty ("runs/"). */
static int split_path(const char *path, char *dir, char *base, size_t cap) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name || strlen(path) >= cap)
        return 0;
    snprintf(base, cap, "%s", name);
    if (!slash)
        snprintf(dir, cap, ".");
    else
        snprintf(dir, cap, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return 1;
}

/* path without empty and "." names ("runs//./m" -> "runs/m", "./m" -> "m", "/" stays); 0 if
 * it does not fit. ".." is kept: what it names depends on the folders being there. */
static int lexical_clean(const char *path, char *out, size_t cap) {
    size_t n = 0;
    const int absolute = path[0] == '/';
    if (absolute)
        out[n++] = '/';
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.')) {
            p += len;
            continue;
        }
        if (n + (n > (size_t)absolute) + len + 1 > cap)
            return 0;
        if (n > (size_t)absolute)
            out[n++] = '/';
        memcpy(out + n, p, len);
        n += len;
        p += len;
    }
    if (n == 0)
        out[n++] = '.';
    out[n] = '\0';
    return 1;
}

static int same_file_clean(const char *a, const char *b) {
    struct stat sa, sb;
    if (strcmp(a, b) == 0)
        return 1;
    const int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea || eb) /* one is there: the same file only if both are, as one inode */
        return ea && eb && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    /* neither is there yet (outputs to be written): the same name in the same folder, the
     * folders compared alike (runs/m and runs/../runs/m, or ./m and m, are one file to be) */
    char da[1024], db[1024], na[1024], nb[1024];
    if (!split_path(a, da, na, sizeof da) || !split_path(b, db, nb, sizeof db) || strcmp(na, nb) != 0 ||
        strcmp(na, "..") == 0)
        return 0;
    return strcmp(da, a) != 0 && strcmp(db, b) != 0 && same_file_clean(da, db);
}

int cli_same_value(const char *a, const char *b) {
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    if (ea != a && eb != b && !*ea && !*eb)
        return x == y;
    return strcmp(a, b) == 0;
}

int cli_output_not_in_folder(const char *command, const char *out_what, const char *out,
                             const char *in_what, const char *dir) {
    struct stat so;
    if (stat(out, &so) != 0 || !S_ISREG(so.st_mode))
        return 1;
    char *ro = realpath(out, NULL), *rd = realpath(dir, NULL);
    const size_t nd = rd ? strlen(rd) : 0;
    const int inside = ro && rd && strncmp(ro, rd, nd) == 0 && (ro[nd] == '/' || nd == 1);
    free(ro);
    free(rd);
    if (inside)
        cli_error(command, "%s %s is a file inside %s %s, which the dataset is read from: writing it "
                  "could replace what it reads; name a file outside it (or a new one)",
                  out_what, out, in_what, dir);
    return !inside;
}

int cli_same_file(const char *a, const char *b) {
    char ca[1024], cb[1024];
    if (strcmp(a, b) == 0)
        return 1;
    if (!lexical_clean(a, ca, sizeof ca) || !lexical_clean(b, cb, sizeof cb))
        return 0;
    return same_file_clean(ca, cb);
}

int cli_output_not_input(const char *command, const char *out_what, const char *out,
                         const char *in_what, const char *in) {
    if (!cli_same_file(out, in))
        return 1;
    cli_error(command, "%s %s is the same file as %s %s: writing it would replace what it reads; "
              "name another output", out_what, out, in_what, in);
    return 0;
}
