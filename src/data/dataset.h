/*
 * dataset.h - labelled image datasets held in memory as uint8, and the
 * loader that turns them into float batches.
 *
 * Formats: MNIST / Fashion-MNIST IDX files (raw or .gz), CIFAR-10 binary
 * batches, image folders (DIR/CLASS/*.jpg|png, classes sorted by name).
 * Bad files (wrong magic, truncated, count mismatch, labels out of range)
 * fail with a message naming the file and offset.
 */
#ifndef RN_DATA_DATASET_H
#define RN_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

typedef struct rn_dataset {
    int count;                 /* images */
    int channels, height, width;
    int num_classes;
    uint8_t *pixels;           /* (count, channels, height, width) */
    int32_t *labels;           /* (count), each in 0..num_classes-1 */
    char **class_names;        /* (num_classes) or NULL */
} rn_dataset;

/* kind: "mnist", "fashion-mnist" (IDX: DIR/train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz], t10k-...), "cifar10" (DIR/data_batch_{1..5}.bin
 * and test_batch.bin, or the same under DIR/cifar-10-batches-bin).
 * train: 1 for the training split, 0 for the test split. */
rn_status rn_dataset_load(const char *dir, const char *kind, int train, rn_dataset *out);
void rn_dataset_free(rn_dataset *ds);

/* ---- the loader ------------------------------------------------------------- */

typedef struct rn_loader_config {
    int batch_size;
    int image_size;            /* output height = width; 0: the dataset's own size */
    int shuffle;               /* reshuffle every epoch (seeded) */
    int drop_last;             /* skip a final partial batch */
    int flip;                  /* random horizontal flip (p = 0.5) */
    int crop_padding;          /* random crop with this zero padding; 0: off */
    int normalize;             /* subtract mean[c], divide by std[c] after scaling to [0,1] */
    float mean[4], std[4];
    uint64_t seed;
} rn_loader_config;

typedef struct rn_loader rn_loader;

/* Where the loader stands, for checkpoints: restoring it continues with
 * exactly the batches that would have come next. */
typedef struct rn_loader_state {
    int64_t epoch;             /* epochs started so far */
    int64_t position;          /* images handed out in the current epoch */
} rn_loader_state;

/* The loader prepares the next batch on a background thread while the caller
 * computes. Batches are deterministic given the seed, whatever the timing. */
rn_status rn_loader_create(const rn_dataset *ds, const rn_loader_config *cfg, rn_loader **out);
void rn_loader_free(rn_loader *l);

/* Batches per epoch. */
int rn_loader_steps(const rn_loader *l);

/* Fills x: (batch_size, channels, S, S) float32 and labels (batch_size) with
 * the next batch and stores its size in *n; *n == 0 marks the end of an epoch
 * (the next call starts the next one). */
rn_status rn_loader_next(rn_loader *l, float *x, int32_t *labels, int *n);

void rn_loader_get_state(const rn_loader *l, rn_loader_state *st);
rn_status rn_loader_set_state(rn_loader *l, const rn_loader_state *st);

#endif
