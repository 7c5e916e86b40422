/*
 * dataset_api.c - datasets as handles for the public API (resnet.h):
 * rn_dataset_create / rn_dataset_open / rn_dataset_close and the
 * accessors, over the dataset struct the loaders fill (dataset.h), and the
 * loader's default configuration.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/status.h"
#include "data/dataset.h"

rn_status rn_dataset_create(int count, int channels, int height, int width, int num_classes,
                            const uint8_t *pixels, const int32_t *labels,
                            const char *const *class_names, rn_dataset **out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_dataset_create: out is NULL");
    *out = NULL;
    if (!pixels || !labels)
        return rn_fail(RN_ERR_ARG, "rn_dataset_create: NULL pixels or labels");
    if (count < 1 || channels < 1 || channels > 4 || height < 1 || height > 65536 || width < 1 ||
        width > 65536 || num_classes < 1 || num_classes > 1000000)
        return rn_fail(RN_ERR_ARG, "rn_dataset_create: bad shape: %d images of %dx%dx%d, %d classes",
                       count, channels, height, width, num_classes);
    for (int i = 0; i < count; i++)
        if (labels[i] < 0 || labels[i] >= num_classes)
            return rn_fail(RN_ERR_ARG, "rn_dataset_create: label %d of image %d is outside 0..%d",
                           (int)labels[i], i, num_classes - 1);
    size_t bytes;
    if (!rn_size_mul((size_t)count * (size_t)channels, (size_t)height * (size_t)width, &bytes))
        return rn_fail(RN_ERR_NOMEM, "rn_dataset_create: the images' size overflows");
    rn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return rn_fail(RN_ERR_NOMEM, "out of memory for a dataset");
    *ds = (rn_dataset){.count = count, .channels = channels, .height = height, .width = width,
                       .num_classes = num_classes, .storage = RN_DATASET_PIXELS};
    ds->pixels = malloc(bytes);
    ds->labels = malloc((size_t)count * sizeof *ds->labels);
    if (!ds->pixels || !ds->labels) {
        rn_dataset_close(ds);
        return rn_fail(RN_ERR_NOMEM, "out of memory for a dataset of %zu bytes", bytes);
    }
    memcpy(ds->pixels, pixels, bytes);
    memcpy(ds->labels, labels, (size_t)count * sizeof *ds->labels);
    if (class_names) {
        rn_status st = rn_dataset_set_class_names(ds, class_names, num_classes);
        if (st != RN_OK) {
            rn_dataset_close(ds);
            return st;
        }
    }
    *out = ds;
    return RN_OK;
}

rn_status rn_dataset_open(const char *dir, const char *kind, int train, rn_dataset **out) {
    if (!out)
        return rn_fail(RN_ERR_ARG, "rn_dataset_open: out is NULL");
    *out = NULL;
    rn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return rn_fail(RN_ERR_NOMEM, "out of memory for a dataset");
    rn_status st = rn_dataset_load(dir, kind, train, ds);
    if (st != RN_OK) {
        free(ds);
        return st;
    }
    *out = ds;
    return RN_OK;
}

void rn_dataset_close(rn_dataset *ds) {
    if (!ds)
        return;
    rn_dataset_free(ds);
    free(ds);
}

int rn_dataset_count(const rn_dataset *ds) { return ds ? ds->count : 0; }

int rn_dataset_num_classes(const rn_dataset *ds) { return ds ? ds->num_classes : 0; }

void rn_dataset_shape(const rn_dataset *ds, int *channels, int *height, int *width) {
    if (channels)
        *channels = ds ? ds->channels : 0;
    if (height)
        *height = ds ? ds->height : 0;
    if (width)
        *width = ds ? ds->width : 0;
}

const char *rn_dataset_class_name(const rn_dataset *ds, int c) {
    return ds && ds->class_names && c >= 0 && c < ds->num_classes ? ds->class_names[c] : NULL;
}

void rn_loader_config_default(rn_loader_config *cfg) {
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_size = 64;
    cfg->ra_magnitude = 9;
}
