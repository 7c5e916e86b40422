/*
 * cmd_predict.c - `resnet predict`: JPEG / PNG images -> top-k classes with
 * their probabilities (softmax of the logits).
 *
 * Preprocessing follows the checkpoint's metadata (keys written by
 * `resnet train`: dataset, image_size, normalize), each step overridable:
 *   dataset fashion-mnist / mnist / cifar10: decode (Pillow's "L" for 1-channel
 *     models), resize straight to S x S (S = image_size, else the dataset's
 *     own side), ToTensor, Normalize if the metadata says so; as torchvision's
 *     Resize((S, S)) on a PIL image.
 *   anything else (torchvision ImageNet weights, image folders): torchvision's
 *     eval transform Resize(int(C / 0.875)) -> CenterCrop(C) (C = image_size,
 *     else 224) -> ToTensor -> Normalize (metadata, else ImageNet's).
 * Class names: --labels FILE, else the metadata key "class_names" (names
 * separated by newlines), else the dataset's built-in names, else the 1000
 * ImageNet names for a 1000-class model without a dataset.
 *
 * The images of a batch are decoded in parallel, then go through one forward
 * pass. Every image is probed (its header read) before the model is loaded,
 * so a missing or unrecognisable file fails at once. --features also writes
 * each image's features from the same pass (rn_session_forward_features).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "core/threads.h"
#include "data/dataset.h"
#include "data/resize.h"
#include "data/transform.h"
#include "fit.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/sniff.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"weights", ARG_STRING, NULL, "checkpoint or weights file (.safetensors, PyTorch .pth or ONNX)", 0, 0},
    {"arch", ARG_STRING, "auto", "architecture; auto: from the file's metadata or tensor names", 0, 0},
    {"labels", ARG_STRING, "auto", "class names, one per line, as many as the model's classes; auto: the "
     "checkpoint's dataset (ImageNet's for 1000 classes without one)", 0, 0},
    {"topk", ARG_INT, "5", "classes shown per image (at most the model's classes)", 0, 0},
    {"json", ARG_FLAG, NULL, "one JSON object per image per line", 0, 0},
    {"batch-size", ARG_INT, "16", "images per forward pass", 0, 0},
    {"resize-size", ARG_INT, "0", "ImageNet-style: the shorter side after Resize; datasets: the square side; "
     "0: from the checkpoint (its train --val-resize-size at its own crop, else int(crop / 0.875); or "
     "image_size)", 0, 0},
    {"crop-size", ARG_INT, "0", "side of the center crop fed to the network; 0: the checkpoint's image_size "
     "(224 for ImageNet-style, the resize side for datasets)", 0, 0},
    {"normalize", ARG_STRING, "auto", "none, imagenet, MEAN,..:STD,.., or auto (the checkpoint's, else ImageNet's "
     "for ImageNet-style preprocessing)", 0, 0},
    {"gray", ARG_FLAG, NULL, "decode as Pillow's convert(\"L\") (replicated for 3-channel models)", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    CLI_CONV_ALGO_SPEC,
    CLI_PRECISION_SPEC,
    {"features", ARG_STRING, "none", ".npy file to also write each image's (N, D) float32 features to, in "
     "the order given: what the classifier reads, the global average pool of the last stage (D 512 for "
     "resnet18/34, 2048 for resnet50 and deeper; with --feature-layer a stage's maps); embeddings for image "
     "search or clustering; none: not written", 0, 0},
    CLI_FEATURE_LAYER_SPEC,
    {"IMAGE...", ARG_POSITIONAL, NULL, "JPEG or PNG files to classify; a folder stands for the .jpg, .jpeg and "
     ".png files in it and below it (its own by name, then each sub-folder's as ImageFolder lists a class "
     "folder's: a folder of class folders in ImageFolder's order); - reads one from standard input", 0, 0},
};

#define META_CAP 256

/* ---------------------------------------------------------------------------
 * Checkpoint metadata
 * ------------------------------------------------------------------------- */

typedef struct predict_meta {
    char dataset[META_CAP];     /* "" if absent */
    char image_size[META_CAP];
    char resize_size[META_CAP]; /* train --val-resize-size; "" or "0": int(crop / 0.875) */
    char normalize[META_CAP];
    char *class_names;          /* malloc'ed, or NULL */
    int nomem;                  /* copying class_names failed */
} predict_meta;

/* Keeps the metadata keys predict uses (rn_model_load_meta calls it for
 * each key of the checkpoint; PyTorch checkpoints have none). */
static void on_meta(void *ctx, const char *key, const char *value) {
    predict_meta *m = ctx;
    if (strcmp(key, "dataset") == 0)
        snprintf(m->dataset, META_CAP, "%s", value);
    else if (strcmp(key, "image_size") == 0)
        snprintf(m->image_size, META_CAP, "%s", value);
    else if (strcmp(key, "resize_size") == 0)
        snprintf(m->resize_size, META_CAP, "%s", value);
    else if (strcmp(key, "normalize") == 0)
        snprintf(m->normalize, META_CAP, "%s", value);
    else if (strcmp(key, "class_names") == 0) {
        free(m->class_names);
        m->class_names = strdup(value);
        m->nomem |= m->class_names == NULL;
    }
}

/* ---------------------------------------------------------------------------
 * Class names
 * ------------------------------------------------------------------------- */

typedef struct label_set {
    char *text;                 /* owned storage the names point into, or NULL */
    const char **names;         /* (count), or NULL: no names */
    int count;
} label_set;

/* Splits text (taken over) into lines; a final newline ends the last line
 * rather than starting an empty one, and a "\r" before "\n" is dropped. */
static int split_lines(char *text, label_set *out) {
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) /* blank lines at the end */
        text[--len] = '\0';
    int n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    out->text = text;
    out->names = malloc((size_t)n * sizeof *out->names);
    if (!out->names)
        return 0;
    char *p = text;
    for (int i = 0; i < n; i++) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r')
            p[l - 1] = '\0';
        out->names[i] = p;
        p = nl ? nl + 1 : p + l;
    }
    out->count = n;
    return 1;
}

/* Reads a --labels file; returns 0 after printing an error. */
static int read_labels_file(const char *path, label_set *out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("predict", "%s: cannot open the labels file", path);
        return 0;
    }
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size < (1L << 28) &&
        fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1)) &&
        fread(text, 1, (size_t)size, f) == (size_t)size) {
        fclose(f);
        text[size] = '\0';
        if (strlen(text) != (size_t)size) {
            free(text);
            cli_error("predict", "%s: the labels file holds a NUL byte", path);
            return 0;
        }
        if (size == 0) {
            free(text);
            cli_error("predict", "%s: the labels file is empty", path);
            return 0;
        }
        if (!split_lines(text, out)) {
            cli_error("predict", "out of memory reading %s", path);
            return 0;
        }
        return 1;
    }
    fclose(f);
    free(text);
    cli_error("predict", "%s: cannot read the labels file", path);
    return 0;
}

static void labels_free(label_set *l) {
    if (l->text)
        free((void *)l->names);
    free(l->text);
    memset(l, 0, sizeof *l);
}

/* Chooses the class names (see the top of the file); returns 0 after printing an error. */
static int choose_labels(const char *flag, predict_meta *meta, int num_classes, label_set *out) {
    memset(out, 0, sizeof *out);
    if (strcmp(flag, "auto") != 0) {
        if (!read_labels_file(flag, out))
            return 0;
        if (out->count != num_classes) {
            cli_error("predict", "%s: %d class names, but the model has %d classes", flag, out->count,
                      num_classes);
            return 0;
        }
        return 1;
    }
    int n = 0;
    const char *const *names = rn_dataset_builtin_names(meta->dataset[0] ? meta->dataset : "imagenet", &n);
    if (meta->class_names && meta->class_names[0]) { /* "": none */
        char *text = meta->class_names;
        meta->class_names = NULL;
        if (!split_lines(text, out)) {
            cli_error("predict", "out of memory");
            return 0;
        }
        if (out->count > num_classes) {
            cli_error("predict", "the checkpoint's class_names hold %d names, but the model has %d classes",
                      out->count, num_classes);
            return 0;
        }
        /* fewer: the dataset's built-in names where they number the model's classes, else a
         * model trained with more classes than its dataset's (--num-classes): the classes past
         * the names are shown by their index alone (rn_checkpoint_class_names's order) */
        if (out->count == num_classes || !(names && n == num_classes))
            return 1;
        labels_free(out);
    }
    if (names && n == num_classes) {
        out->names = (const char **)names;
        out->count = n;
    }
    return 1;
}


/* ---------------------------------------------------------------------------
 * Preprocessing
 * ------------------------------------------------------------------------- */

typedef struct predict_plan {
    int square;                 /* datasets: resize to resize x resize; else the shorter side */
    int channels;               /* the model's input channels (1 or 3) */
    int decode_channels;        /* 1: Pillow's "L"; 3: RGB */
    int resize, crop;
    rn_preprocess_config cfg;   /* the crop, mean and std (std 1, mean 0 when not normalising) */
    const unsigned char *stdin_data; /* the image "-" names, read from standard input */
    size_t stdin_len;
} predict_plan;

static int is_pixel_dataset(const char *kind) {
    static const char *const kinds[] = {"fashion-mnist", "fashion_mnist", "mnist", "cifar10", "cifar-10"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return 1;
    return 0;
}

/* Builds the plan from the flags and the metadata; returns 0 after printing an error. */
static int make_plan(const arg_table *t, const predict_meta *meta, int channels, predict_plan *p) {
    memset(p, 0, sizeof *p);
    if (channels != 1 && channels != 3) {
        cli_error("predict", "the model takes %d input channels; predict handles 1 (gray) or 3 (RGB)",
                  channels);
        return 0;
    }
    int resize, crop, meta_size = 0;
    if (!args_int(t, "resize-size", 0, RN_RESIZE_MAX_SIDE, &resize) ||
        !args_int(t, "crop-size", 0, 16384, &crop))
        return 0;
    if (meta->image_size[0]) {
        char *end = NULL;
        long v = strtol(meta->image_size, &end, 10);
        if (*end || v < 0 || v > 16384) {
            cli_error("predict", "the checkpoint's image_size '%s' is not a size", meta->image_size);
            return 0;
        }
        meta_size = (int)v;
    }
    p->channels = channels;
    p->decode_channels = channels == 1 || args_flag(t, "gray") ? 1 : 3;
    p->square = is_pixel_dataset(meta->dataset);
    if (p->square) {
        int own = strstr(meta->dataset, "cifar") ? 32 : 28;
        p->resize = resize ? resize : meta_size ? meta_size : crop ? crop : own;
        p->crop = crop ? crop : p->resize;
    } else {
        p->crop = crop ? crop : meta_size ? meta_size : 224;
        /* the checkpoint's resize goes with its crop: a --crop-size of another size takes the ratio */
        const long meta_resize = (crop && crop != meta_size) || !meta_size ? 0 : strtol(meta->resize_size, NULL, 10);
        p->resize = resize                                               ? resize
                    : meta_resize > 0 && meta_resize <= RN_RESIZE_MAX_SIDE ? (int)meta_resize
                                                                         : (int)(p->crop / 0.875);
    }
    if (p->resize < 1) {
        cli_error("predict", "--resize-size %d is too small for --crop-size %d", p->resize, p->crop);
        return 0;
    }

    /* Normalisation: the flag, else the metadata, else ImageNet's (non-dataset models only). */
    const char *norm = args_str(t, "normalize");
    if (strcmp(norm, "auto") == 0)
        norm = meta->normalize[0] ? meta->normalize : p->square ? "none" : "imagenet";
    float mean[4] = {0, 0, 0, 0}, std[4] = {1, 1, 1, 1};
    int nc = channels;
    if (strcmp(norm, "imagenet") == 0) {
        rn_imagenet_normalize(channels, mean, std); /* 1 or 3 (above); gray: the averages, as train uses */
    } else if (strcmp(norm, "none") != 0) {
        if (!parse_mean_std(norm, mean, std, &nc) || (nc != 1 && nc != channels)) {
            if (channels == 1)
                cli_error("predict", "bad normalisation '%s' (expected auto, none, imagenet or MEAN:STD, one value "
                          "each for this 1-channel model)", norm);
            else
                cli_error("predict", "bad normalisation '%s' (expected auto, none, imagenet or MEAN,..:STD,.. with 1 "
                          "or %d values)",
                          norm, channels);
            return 0;
        }
        for (int c = nc; c < 3; c++)
            mean[c] = mean[0], std[c] = std[0];
    }
    for (int c = 0; c < 3; c++)
        p->cfg.mean[c] = mean[c], p->cfg.std[c] = std[c];
    p->cfg.resize_size = p->square ? 0 : p->resize;
    p->cfg.crop_size = p->crop;
    return 1;
}

/* What messages call the image "-" reads from standard input. */
#define STDIN_NAME "standard input"

/* Reads all of standard input (the image "-" names) into *data: at most the image limits' file
 * size (1 GiB). Returns 0 after printing an error. */
static int read_stdin(unsigned char **data, size_t *len) {
    rn_image_limits lim;
    rn_image_limits_default(&lim);
    const size_t most = (size_t)lim.max_file_bytes;
    size_t cap = 0, n = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (n == cap) { /* grown to a byte past the limit at most: that byte read, it was passed */
            if (n > most) {
                cli_error("predict", "%s: more than the %zu bytes an image may have", STDIN_NAME, most);
                free(buf);
                return 0;
            }
            const size_t grown = cap ? (2 * cap < most + 1 ? 2 * cap : most + 1) : 1 << 16;
            unsigned char *more = realloc(buf, grown);
            if (!more) {
                cli_error("predict", "%s: out of memory for %zu bytes", STDIN_NAME, grown);
                free(buf);
                return 0;
            }
            buf = more, cap = grown;
        }
        const size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0 && ferror(stdin)) {
            cli_error("predict", "%s: read failed at byte %zu: %s", STDIN_NAME, n, strerror(errno));
            free(buf);
            return 0;
        }
        if (got == 0)
            break;
        /* not an image by its first bytes: no more is read (a gigabyte of something else had
         * been read whole before it was refused); the decoder says what it is */
        const rn_format format = rn_sniff(buf, n);
        if (n >= 8 && format != RN_FMT_JPEG && format != RN_FMT_PNG)
            break;
    }
    *data = buf, *len = n;
    return 1;
}

/* Decodes and preprocesses one image into out: (channels, crop, crop); on failure msg says
 * why (the library's message, or this function's own out of memory). */
static rn_status prepare_image(const char *path, const predict_plan *p, float *out, char *msg,
                               size_t cap) {
    rn_image img = {0}, tmp = {0};
    int oom = 0; /* an allocation here failed (the library's message would be another's) */
    rn_status st = strcmp(path, "-") == 0
                       ? rn_image_decode(p->stdin_data, p->stdin_len, STDIN_NAME, p->decode_channels,
                                         NULL, &img)
                       : rn_image_read_channels(path, p->decode_channels, NULL, &img);
    const int decoded = st == RN_OK; /* past here the library's messages do not name the file */
    if (st == RN_OK && p->decode_channels == 1 && p->channels == 3) {
        /* Gray for an RGB model: the L plane three times (convert("L").convert("RGB")). */
        size_t plane = (size_t)img.width * (size_t)img.height;
        tmp = (rn_image){img.width, img.height, 3, malloc(3 * plane)};
        if (!tmp.pixels) {
            st = RN_ERR_NOMEM, oom = 1;
        } else {
            for (int c = 0; c < 3; c++)
                memcpy(tmp.pixels + c * plane, img.pixels, plane);
            rn_image_free(&img);
            img = tmp;
            tmp = (rn_image){0};
        }
    }
    if (st == RN_OK && p->square && (img.width != p->resize || img.height != p->resize)) {
        /* Resize((S, S)): straight to a square, aspect ratio not kept. */
        size_t plane = (size_t)p->resize * (size_t)p->resize;
        tmp = (rn_image){p->resize, p->resize, img.channels, malloc((size_t)img.channels * plane)};
        oom = !tmp.pixels;
        st = oom ? RN_ERR_NOMEM
                 : rn_resize_bilinear_u8(img.pixels, img.channels, img.height, img.width,
                                         tmp.pixels, p->resize, p->resize);
        rn_image_free(&img);
        img = tmp;
        tmp = (rn_image){0};
    }
    if (st == RN_OK)
        st = rn_preprocess_eval(&img, &p->cfg, out);
    rn_image_free(&img);
    rn_image_free(&tmp);
    if (st != RN_OK && oom)
        snprintf(msg, cap, "%s: out of memory", path);
    else if (st != RN_OK)
        snprintf(msg, cap, "%s%s%s", decoded ? path : "", decoded ? ": " : "", rn_last_error());
    return st;
}

/* ---------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static int utf8_len(const unsigned char *s) {
    if (s[0] < 0x80)
        return 1;
    int n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2) || (n == 4 && s[0] > 0xF4))
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] >= 0xA0) ||
        (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] >= 0x90))
        return 0;   /* overlong, surrogate or past U+10FFFF */
    return n;
}

/* A JSON string: quotes, backslashes and control characters escaped; bytes
 * that are not UTF-8 become U+FFFD. */
static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c == '\t') {
            fputs("\\t", stdout);
        } else if (c == '\r') {
            fputs("\\r", stdout);
        } else if (c < 0x20 || c == 0x7F) {
            printf("\\u%04x", c);
        } else {
            int n = utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", stdout);
                n = 1;
            } else {
                fwrite(p, 1, (size_t)n, stdout);
            }
            p += n;
            continue;
        }
        p++;
    }
    putchar('"');
}

/* Softmax of logits (k) into prob, in double. */
static void softmax(const float *logits, int k, double *prob) {
    double m = logits[0], sum = 0.0;
    for (int j = 1; j < k; j++)
        if (logits[j] > m)
            m = logits[j];
    for (int j = 0; j < k; j++)
        sum += prob[j] = exp((double)logits[j] - m);
    for (int j = 0; j < k; j++)
        prob[j] /= sum;
}

/* The topk highest probabilities' indices, highest first (ties: lower index first). */
static void top_indices(const double *prob, int k, int topk, int *idx) {
    for (int r = 0; r < topk; r++) {
        int best = -1;
        for (int j = 0; j < k; j++) {
            int taken = 0;
            for (int q = 0; q < r && !taken; q++)
                taken = idx[q] == j;
            if (!taken && (best < 0 || prob[j] > prob[best]))
                best = j;
        }
        idx[r] = best;
    }
}

static void print_result(const char *path, const double *prob, const int *idx, int topk,
                         const label_set *labels, int json) {
    if (json) {
        fputs("{\"image\": ", stdout);
        json_string(path);
        fputs(", \"top\": [", stdout);
        for (int r = 0; r < topk; r++) {
            printf("%s{\"index\": %d, \"label\": ", r ? ", " : "", idx[r]);
            if (labels->names && idx[r] < labels->count)
                json_string(labels->names[idx[r]]);
            else
                fputs("null", stdout);
            char p[32]; /* NaN logits: null, as JSON has it */
            printf(", \"prob\": %s}", cli_json_number(p, sizeof p, "%.9g", prob[idx[r]]));
        }
        fputs("]}\n", stdout);
        return;
    }
    printf("%s\n", path);
    for (int r = 0; r < topk; r++) {
        printf("  %2d. %.4f  %5d", r + 1, prob[idx[r]], idx[r]);
        if (labels->names && idx[r] < labels->count)
            printf("  %s", labels->names[idx[r]]);
        putchar('\n');
    }
}

/* ---------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------- */

#define MSG_CAP 512

/* Classifies the images, batch by batch, their features (fp's) into fw where it is not NULL
 * (open, for count images); returns 0, or after printing an error the exit status (EXIT_WRITE
 * where the features could not be written). */
static int run_batches(rn_model *m, rn_session *sess, const predict_plan *p, char **images,
                       int count, int batch, int topk, const label_set *labels, int json,
                       rn_npy_writer *fw, const cli_features *fp) {
    const size_t d = fp->per_image;
    int k = rn_model_num_classes(m);
    size_t per_image = (size_t)p->channels * (size_t)p->crop * (size_t)p->crop;
    float *x = malloc((size_t)batch * per_image * sizeof *x);
    float *logits = malloc((size_t)batch * (size_t)k * sizeof *logits);
    float *feats = fw ? malloc((size_t)batch * (size_t)d * sizeof *feats) : NULL;
    double *prob = malloc((size_t)k * sizeof *prob);
    int *idx = malloc((size_t)topk * sizeof *idx);
    rn_status *st = malloc((size_t)batch * sizeof *st);
    char(*msg)[MSG_CAP] = malloc((size_t)batch * sizeof *msg);
    int status = EXIT_RUNTIME;
    if (!x || !logits || !prob || !idx || !st || !msg || (fw && !feats)) {
        cli_error("predict", "out of memory for a batch of %d images of %dx%d", batch, p->crop, p->crop);
        goto done;
    }
    for (int start = 0; start < count; start += batch) {
        int n = count - start < batch ? count - start : batch;
#pragma omp parallel for schedule(dynamic, 1) num_threads(rn_threads())
        for (int b = 0; b < n; b++) {
            st[b] = prepare_image(images[start + b], p, x + (size_t)b * per_image, msg[b], MSG_CAP);
        }
        for (int b = 0; b < n; b++)
            if (st[b] != RN_OK) {
                cli_error("predict", "%s", msg[b]);
                goto done;
            }
        if (cli_features_forward(sess, fp, x, n, p->crop, p->crop, RN_MODE_EVAL, feats, logits) !=
            RN_OK) {
            cli_error("predict", "%s", rn_last_error());
            goto done;
        }
        if (fw) {
            rn_status ws = rn_npy_writer_f32(fw, feats, (size_t)n * (size_t)d);
            if (ws != RN_OK) {
                status = cli_write_failed("predict", ws);
                goto done;
            }
        }
        for (int b = 0; b < n; b++) {
            softmax(logits + (size_t)b * k, k, prob);
            top_indices(prob, k, topk, idx);
            if (!json && start + b > 0)
                putchar('\n');
            print_result(images[start + b], prob, idx, topk, labels, json);
        }
        fflush(stdout);
    }
    status = 0;
done:
    free(x);
    free(logits);
    free(feats);
    free(prob);
    free(idx);
    free(st);
    free(msg);
    return status;
}

/* The IMAGE arguments, each folder replaced by its images (rn_folder_images). */
typedef struct image_list {
    char **paths;           /* count of them: the arguments' strings or the blocks' */
    int count;
    char ***blocks;         /* rn_folder_images's, one a folder */
    int n_blocks;
} image_list;

static void image_list_free(image_list *l) {
    for (int i = 0; i < l->n_blocks; i++)
        free(l->blocks[i]);
    free(l->blocks);
    free(l->paths);
    memset(l, 0, sizeof *l);
}

/* Fills *out from the n arguments; 0 after an error message (exit 1). */
static int expand_images(char **args, int n, image_list *out) {
    memset(out, 0, sizeof *out);
    out->blocks = calloc((size_t)n + 1, sizeof *out->blocks);
    long total = 0;
    int *found = calloc((size_t)n + 1, sizeof *found);
    int ok = out->blocks && found;
    for (int i = 0; ok && i < n; i++) {
        struct stat sb;
        if (strcmp(args[i], "-") == 0 || stat(args[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            found[i] = -1; /* a file, standard input, or what the probe will report */
            total++;
            continue;
        }
        if (rn_folder_images(args[i], &out->blocks[out->n_blocks], &found[i]) != RN_OK) {
            cli_error("predict", "%s", rn_last_error());
            ok = 0;
            break;
        }
        out->n_blocks++;
        total += found[i];
    }
    if (ok && total > INT_MAX / 2) {
        cli_error("predict", "%ld images: more than one run takes (%d)", total, INT_MAX / 2);
        ok = 0;
    }
    if (ok && !(out->paths = malloc((size_t)total * sizeof *out->paths))) {
        cli_error("predict", "out of memory for %ld image names", total);
        ok = 0;
    }
    for (int i = 0, b = 0; ok && i < n; i++) {
        if (found[i] < 0) {
            out->paths[out->count++] = args[i];
            continue;
        }
        for (int k = 0; k < found[i]; k++)
            out->paths[out->count++] = out->blocks[b][k];
        b++;
    }
    if (!out->blocks || !found)
        cli_error("predict", "out of memory for the image names");
    free(found);
    if (!ok)
        image_list_free(out);
    return ok;
}

int cmd_predict(int argc, char **argv) {
    arg_table t = {"predict", "Classify JPEG / PNG images: the top-k classes with their probabilities. Every "
                   "IMAGE's header is read first: one that is missing or not an image stops the "
                   "command before any is classified.",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    int r = args_parse(&t, argc, argv);
    if (r)
        return r > 0 ? 0 : EXIT_USAGE;
    int count, batch, topk, threads;
    char **args = args_positional(&t, argv, &count);
    if (!args_int(&t, "batch-size", 1, 4096, &batch) || !args_int(&t, "topk", 1, 1000000, &topk) ||
        !args_int(&t, "threads", 0, 1024, &threads) || !cli_arch_ok(&t, 1) || !cli_conv_algo_ok(&t) ||
        !cli_precision_ok(&t, 0) || !cli_feature_layer_ok(&t))
        return EXIT_USAGE;
    rn_set_threads(threads);
    const char *weights = args_str(&t, "weights");
    const char *arch = strcmp(args_str(&t, "arch"), "auto") ? args_str(&t, "arch") : NULL;
    /* --features: a file, not one of those read */
    const char *fpath = args_str(&t, "features");
    const int want_features = strcmp(fpath, "none") != 0;
    if (want_features) {
        if (!cli_path_ok(&t, "features") || !cli_output_file_ok("predict", "--features", fpath) ||
            !cli_output_not_input("predict", "--features", fpath, "--weights", weights) ||
            (strcmp(args_str(&t, "labels"), "auto") != 0 &&
             !cli_output_not_input("predict", "--features", fpath, "--labels", args_str(&t, "labels"))))
            return EXIT_USAGE;
    }
    image_list list;
    if (!expand_images(args, count, &list))
        return EXIT_RUNTIME;
    char **images = list.paths;
    count = list.count;
    for (int i = 0; want_features && i < count; i++)
        if (strcmp(images[i], "-") != 0 &&
            !cli_output_not_input("predict", "--features", fpath, "an IMAGE", images[i])) {
            image_list_free(&list);
            return EXIT_USAGE;
        }

    /* Cheap checks first: every image's header (standard input read whole, once), then the
     * weights. */
    unsigned char *stdin_data = NULL;
    size_t stdin_len = 0;
    int dashes = 0;
    for (int i = 0; i < count; i++)
        dashes += strcmp(images[i], "-") == 0;
    if (dashes > 1) {
        cli_error("predict", "- (standard input) is given %d times; it holds one image", dashes);
        image_list_free(&list);
        return EXIT_USAGE;
    }
    for (int i = 0; i < count; i++) {
        const char *format;
        int w, h;
        if (strcmp(images[i], "-") == 0 && !read_stdin(&stdin_data, &stdin_len)) {
            image_list_free(&list);
            return EXIT_RUNTIME;
        }
        if (strcmp(images[i], "-") == 0
                ? rn_image_probe_data(stdin_data, stdin_len, STDIN_NAME, &format, &w, &h) != RN_OK
                : rn_image_probe(images[i], &format, &w, &h) != RN_OK) {
            cli_error("predict", "%s", rn_last_error());
            free(stdin_data);
            image_list_free(&list);
            return EXIT_RUNTIME;
        }
    }
    predict_meta meta = {0};
    rn_model *m = NULL;
    rn_session *sess = NULL;
    rn_npy_writer fw = {0};
    label_set labels = {0};
    int status = EXIT_RUNTIME;
    if (rn_model_load_meta(weights, arch, on_meta, &meta, &m) != RN_OK) {
        cli_error("predict", "%s", rn_last_error());
        goto done;
    }
    if (meta.nomem) {
        cli_error("predict", "out of memory reading the class names of %s", weights);
        goto done;
    }
    predict_plan plan;
    if (!make_plan(&t, &meta, rn_model_in_channels(m), &plan)) {
        status = EXIT_USAGE;
        goto done;
    }
    plan.stdin_data = stdin_data, plan.stdin_len = stdin_len;
    const int stage = want_features ? cli_feature_layer(&t, m) : RN_STAGE_POOL;
    if (stage < 0) {
        status = EXIT_USAGE;
        goto done;
    }
    cli_features fp;
    if (!cli_features_shape("predict", m, stage, plan.crop, plan.crop, &fp))
        goto done;
    if (!choose_labels(args_str(&t, "labels"), &meta, rn_model_num_classes(m), &labels))
        goto done;
    if (topk > rn_model_num_classes(m))
        topk = rn_model_num_classes(m);
    if (batch > count)
        batch = count;
    rn_session_config scfg;
    cli_session_config(&t, &scfg);
    /* the network's memory at the crop and batch, and per image its input and logits and the
     * resized picture (at least resize x resize, three bytes a pixel): refused before anything
     * large is allocated (--crop-size 16384 had taken 18 GB before the kernel's killer came) */
    size_t per_image = ((size_t)plan.channels * plan.crop * plan.crop + 2 * (size_t)rn_model_num_classes(m) +
                        (want_features ? fp.per_image : 0)) * sizeof(float) +
                       3 * (size_t)plan.resize * plan.resize;
    cli_plan fits = {.command = "predict", .m = m, .scfg = &scfg, .session = 1, .batch = batch, .h = plan.crop,
                     .w = plan.crop, .per_image = per_image, .size_flag = "--crop-size", .weights = weights};
    if (!cli_plan_fits(&fits))
        goto done;
    if (rn_session_create(m, &scfg, &sess) != RN_OK) { /* the flags are checked: the weights' precision */
        cli_error("predict", "%s: %s", weights, rn_last_error());
        goto done;
    }
    if (want_features) {
        const int64_t shape[4] = {count, fp.shape[0], fp.shape[1], fp.shape[2]};
        rn_status fs = cli_make_output_dirs("predict", fpath);
        if (fs == RN_OK)
            fs = rn_npy_writer_open(&fw, fpath, RN_NPY_F32, fp.ndim, shape);
        if (fs != RN_OK) {
            status = cli_write_failed("predict", fs);
            goto done;
        }
    }
    status = run_batches(m, sess, &plan, images, count, batch, topk, &labels, args_flag(&t, "json"),
                         want_features ? &fw : NULL, &fp);
    if (status == 0 && want_features) {
        rn_status fs = rn_npy_writer_commit(&fw);
        status = fs == RN_OK ? 0 : cli_write_failed("predict", fs);
    }
done:
    rn_npy_writer_discard(&fw);
    image_list_free(&list);
    free(stdin_data);
    free(meta.class_names);
    labels_free(&labels);
    rn_session_free(sess);
    rn_model_free(m);
    return status;
}
