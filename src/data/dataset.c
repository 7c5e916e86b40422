/*
 * dataset.c - rn_dataset_load: picks the reader for a dataset kind;
 * rn_dataset_free, the class-name helpers the readers share, and the relabelling of a
 * dataset by a model's class names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "data/dataset.h"
#include "data/imagenet_classes.h"

static const char *const fashion_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

static const char *const digit_names[10] = {
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
};

static const char *const cifar10_names[10] = {
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
};

const char *const *rn_dataset_builtin_names(const char *kind, int *count) {
    const char *const *names = NULL;
    int n = 0;
    if (kind && strcmp(kind, "mnist") == 0)
        names = digit_names, n = 10;
    else if (kind && (strcmp(kind, "fashion-mnist") == 0 || strcmp(kind, "fashion_mnist") == 0))
        names = fashion_names, n = 10;
    else if (kind && (strcmp(kind, "cifar10") == 0 || strcmp(kind, "cifar-10") == 0))
        names = cifar10_names, n = 10;
    else if (kind && strcmp(kind, "imagenet") == 0)
        names = rn_imagenet_classes, n = RN_IMAGENET_CLASSES;
    if (count)
        *count = n;
    return names;
}

/* ---------------------------------------------------------------------------
 * Loading and freeing
 * ------------------------------------------------------------------------- */

int rn_dataset_kind_known(const char *kind) {
    static const char *const KINDS[] = {"mnist",    "fashion-mnist", "fashion_mnist", "cifar10",
                                        "cifar-10", "folder",        "folder-gray"};
    for (size_t i = 0; kind && i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (strcmp(kind, KINDS[i]) == 0)
            return 1;
    return 0;
}

int rn_dataset_kind_is_folder(const char *kind) {
    return kind && (strcmp(kind, "folder") == 0 || strcmp(kind, "folder-gray") == 0);
}

rn_status rn_dataset_load(const char *dir, const char *kind, int train, rn_dataset *out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_dataset_load: NULL output");
    memset(out, 0, sizeof *out);
    if (!dir || !kind)
        return rn_fail(RN_ERR_ARG, "rn_dataset_load: NULL directory or kind");
    if (strcmp(kind, "mnist") == 0)
        return rn_idx_load(dir, train, 10, digit_names, out);
    if (strcmp(kind, "fashion-mnist") == 0 || strcmp(kind, "fashion_mnist") == 0)
        return rn_idx_load(dir, train, 10, fashion_names, out);
    if (strcmp(kind, "cifar10") == 0 || strcmp(kind, "cifar-10") == 0)
        return rn_cifar10_load(dir, train, out);
    if (rn_dataset_kind_is_folder(kind)) {
        rn_folder_options opt = {.channels = strcmp(kind, "folder") == 0 ? 3 : 1};
        return rn_folder_load(dir, train, &opt, out);
    }
    return rn_fail(RN_ERR_ARG, "unknown dataset kind '%s' (expected mnist, fashion-mnist, cifar10, "
                   "folder or folder-gray)", kind);
}

void rn_dataset_free(rn_dataset *ds) {
    if (!ds)
        return;
    if (ds->class_names) {
        for (int i = 0; i < ds->num_classes; i++)
            free(ds->class_names[i]);
        free(ds->class_names);
    }
    free(ds->pixels);
    free(ds->labels);
    free(ds->paths);           /* one block: the pointers, then the strings */
    memset(ds, 0, sizeof *ds);
}

int rn_imagenet_normalize(int channels, float mean[4], float std[4]) {
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
    static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    if (channels != 1 && channels != 3)
        return 0;
    for (int c = 0; c < 4; c++) {
        mean[c] = channels == 1 ? 0.449f : imagenet_mean[c < 3 ? c : 2];
        std[c] = channels == 1 ? 0.226f : imagenet_std[c < 3 ? c : 2];
    }
    return 1;
}

int rn_dataset_default_normalize(const rn_dataset *ds, float mean[4], float std[4]) {
    if (!ds || ds->storage != RN_DATASET_FILES)
        return 0;
    return rn_imagenet_normalize(ds->channels == 1 ? 1 : 3, mean, std);
}

/* ---------------------------------------------------------------------------
 * Class names
 * ------------------------------------------------------------------------- */

rn_status rn_dataset_set_class_names(rn_dataset *ds, const char *const *names, int n) {
    if (n < 1 || !names)
        return rn_fail(RN_ERR_ARG, "class names: count %d < 1, or no list", n);
    for (int i = 0; i < n; i++)
        if (!names[i])
            return rn_fail(RN_ERR_ARG, "class names: name %d is NULL", i);
    char **list = calloc((size_t)n, sizeof *list);
    if (!list)
        return rn_fail(RN_ERR_NOMEM, "out of memory for %d class names", n);
    for (int i = 0; i < n; i++) {
        list[i] = strdup(names[i]);
        if (!list[i]) {
            for (int j = 0; j < i; j++)
                free(list[j]);
            free(list);
            return rn_fail(RN_ERR_NOMEM, "out of memory for class names");
        }
    }
    if (ds->class_names) {
        for (int i = 0; i < ds->num_classes; i++)
            free(ds->class_names[i]);
        free(ds->class_names);
    }
    ds->class_names = list;
    ds->num_classes = n;
    return RN_OK;
}

/* One block: k pointers, then the k names copied from list or from text's lines; where text
 * has fewer than k lines, the rest are named by their index ("7"). */
static char **name_block(const char *const *list, const char *text, int lines, int k) {
    size_t bytes = (size_t)k * sizeof(char *) + 1;
    for (int i = 0; list && i < k; i++)
        bytes += strlen(list[i]) + 1;
    if (text)
        bytes += strlen(text) + 1 + (size_t)(k - lines) * 12;
    char **names = malloc(bytes);
    if (!names)
        return NULL;
    char *p = (char *)(names + k);
    for (int i = 0; i < k; i++) {
        names[i] = p;
        if (text && i >= lines) {
            p += snprintf(p, 12, "%d", i) + 1;
            continue;
        }
        const char *src = list ? list[i] : text;
        size_t n = list ? strlen(src) : strcspn(src, "\n");
        memcpy(p, src, n);
        p[n] = '\0';
        p += n + 1;
        if (!list)
            text = src[n] ? src + n + 1 : src + n;
    }
    return names;
}

rn_status rn_checkpoint_class_names(const char *weights, int k, char ***names) {
    if (!names)
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_class_names: NULL output");
    *names = NULL;
    if (!weights || k < 1)
        return rn_fail(RN_ERR_ARG, "rn_checkpoint_class_names: bad argument");
    size_t cap = 1 << 20;
    char *text = malloc(cap), kind[64];
    if (!text)
        return rn_fail(RN_ERR_NOMEM, "out of memory for class names");
    int lines = 0; /* "": none (a dataset without names) */
    rn_status st = rn_weights_meta(weights, "class_names", text, cap);
    if (st == RN_OK && text[0]) {
        lines = 1;
        for (const char *p = text; *p; p++)
            lines += *p == '\n';
    } else if (st == RN_ERR_MISMATCH) {
        st = RN_OK;
    }
    /* the names of all k classes: class_names, else the dataset's built-in names; else
     * class_names naming fewer (a model trained with more classes than its dataset's) */
    int n = 0;
    const char *const *builtin = NULL;
    if (st == RN_OK && lines != k && rn_weights_meta(weights, "dataset", kind, sizeof kind) == RN_OK)
        builtin = rn_dataset_builtin_names(kind, &n);
    if (st == RN_OK && (lines == k || (lines > 0 && lines < k && !(builtin && n == k))))
        *names = name_block(NULL, text, lines, k);
    else if (st == RN_OK && builtin && n == k)
        *names = name_block(builtin, NULL, 0, k);
    else
        lines = -1; /* none */
    free(text);
    if (st == RN_OK && lines >= 0 && !*names)
        return rn_fail(RN_ERR_NOMEM, "out of memory for class names");
    return st;
}

/* ---------------------------------------------------------------------------
 * A dataset labelled by a model's classes
 * ------------------------------------------------------------------------- */

/* A dataset's class name is the model's: the same text, where a '/' of the model's (which no
 * folder name can hold: Fashion-MNIST's "T-shirt/top") may be a '/', '_', '-' or ' '. */
static int same_class(const char *model, const char *data) {
    for (; *model && *data; model++, data++)
        if (*model != *data && !(*model == '/' && strchr("_- ", *data)))
            return 0;
    return *model == *data;
}

rn_status rn_dataset_match_classes(rn_dataset *ds, const char *const *names, int k, int *matched) {
    if (matched)
        *matched = 0;
    if (!ds || !names || k < 1 || !matched)
        return rn_fail(RN_ERR_ARG, "rn_dataset_match_classes: bad argument");
    if (!ds->class_names)
        return RN_OK;
    int *to = malloc((size_t)ds->num_classes * sizeof *to);
    if (!to)
        return rn_fail(RN_ERR_NOMEM, "out of memory matching %d class names", ds->num_classes);
    /* a class without images (an image folder's val labelled by train's classes, one of which it
     * lacks) needs no match: train/{bird,cat,dog} beside a model of {cat,dog} had been refused */
    for (int c = 0; c < ds->num_classes; c++)
        to[c] = -2; /* no image */
    for (int i = 0; i < ds->count; i++)
        if (ds->labels[i] >= 0 && ds->labels[i] < ds->num_classes)
            to[ds->labels[i]] = -1;
    int found = 0, missing = -1, same = ds->num_classes == k;
    for (int c = 0; c < ds->num_classes; c++) {
        const int empty = to[c] == -2;
        to[c] = -1;
        for (int j = 0; j < k && to[c] < 0; j++)
            if (names[j] && same_class(names[j], ds->class_names[c]))
                to[c] = j;
        if (to[c] >= 0)
            found += !empty; /* a match of an imageless class alone labels nothing */
        else if (missing < 0 && !empty)
            missing = c;
        same &= to[c] == c;
    }
    rn_status st = RN_OK;
    if (found > 0 && missing >= 0) {
        st = rn_fail(RN_ERR_MISMATCH, "class '%s' of the dataset is not one of the model's %d "
                     "(%d of the dataset's %d classes are)", ds->class_names[missing], k, found,
                     ds->num_classes);
    } else if (found > 0 && !same) {
        char **copy = calloc((size_t)k, sizeof *copy);
        for (int j = 0; copy && j < k; j++)
            if (!(copy[j] = strdup(names[j] ? names[j] : ""))) {
                for (int i = 0; i < j; i++)
                    free(copy[i]);
                free(copy);
                copy = NULL;
            }
        if (!copy) {
            st = rn_fail(RN_ERR_NOMEM, "out of memory copying %d class names", k);
        } else {
            for (int i = 0; i < ds->count; i++)
                ds->labels[i] = to[ds->labels[i]];
            for (int c = 0; c < ds->num_classes; c++)
                free(ds->class_names[c]);
            free(ds->class_names);
            ds->class_names = copy;
            ds->num_classes = k;
        }
    }
    if (st == RN_OK)
        *matched = found;
    free(to);
    return st;
}
