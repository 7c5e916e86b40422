/*
 * dataset.h - labelled image datasets, and the loader that turns them into
 * float batches.
 *
 * Two kinds of storage: pixels held in memory as uint8 (MNIST / Fashion-MNIST
 * IDX files, raw or .gz; CIFAR-10 binary batches) and image folders in
 * torchvision's ImageFolder layout (a list of JPEG / PNG files, decoded and
 * transformed by the loader, batch by batch). Bad files (wrong magic,
 * truncated, count mismatch, labels out of range) fail with a message naming
 * the file and offset.
 */
#ifndef RN_DATA_DATASET_H
#define RN_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

typedef enum rn_dataset_storage {
    RN_DATASET_PIXELS = 0,     /* pixels in memory */
    RN_DATASET_FILES = 1,      /* image files, decoded by the loader */
} rn_dataset_storage;

typedef struct rn_dataset {
    int count;                 /* images */
    int channels, height, width;   /* FILES: channels decoded (3 RGB, 1 L) and
                                    * the default output size S x S */
    int num_classes;
    uint8_t *pixels;           /* PIXELS: (count, channels, height, width); FILES: NULL */
    int32_t *labels;           /* (count), each in 0..num_classes-1 */
    char **class_names;        /* (num_classes) or NULL */
    rn_dataset_storage storage;
    char **paths;              /* FILES: (count) image files; PIXELS: NULL */
} rn_dataset;

/* kind: "mnist", "fashion-mnist" (IDX: DIR/train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz], t10k-...), "cifar10" (DIR/data_batch_{1..5}.bin
 * and test_batch.bin, or the same under DIR/cifar-10-batches-bin), "folder"
 * (an image folder, RGB, see rn_folder_load; the training split is DIR/train,
 * the other DIR/val) or "folder-gray" (the same, decoded as Pillow's "L").
 * train: 1 for the training split, 0 for the test split. */
rn_status rn_dataset_load(const char *dir, const char *kind, int train, rn_dataset *out);

/* Frees what rn_dataset_load allocated and zeroes *ds (NULL is fine). */
void rn_dataset_free(rn_dataset *ds);

/* ---- the format readers behind rn_dataset_load ------------------------------ */

/* IDX files: DIR/{train,t10k}-images-idx3-ubyte[.gz] and -labels-idx1-ubyte[.gz];
 * gzip is detected by its magic, so raw and .gz files both work. Labels must
 * be < num_classes; class_names (num_classes entries) are copied. */
rn_status rn_idx_load(const char *dir, int train, int num_classes,
                      const char *const *class_names, rn_dataset *out);

/* CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes
 * (3x32x32, channel-major). Class names from batches.meta.txt if present. */
rn_status rn_cifar10_load(const char *dir, int train, rn_dataset *out);

/* Image folders as torchvision's ImageFolder reads them: the split is
 * DIR/train (train = 1) or DIR/val (train = 0); its sub-folders are the
 * classes, sorted by name (byte order), labels 0, 1, ... in that order;
 * a class's images are every file under its folder (sub-folders included,
 * as os.walk with followlinks) whose name ends in .jpg, .jpeg or .png in any
 * case, in ImageFolder's order (folders by path, files by name). Other files
 * are ignored, except the other extensions ImageFolder takes (.bmp, .ppm,
 * .pgm, .tif, .tiff, .webp), which fail: the two would disagree on the
 * samples. A missing split, a split without class folders, or a class
 * without images fails with a message naming the folder. Only the names are
 * read here; a corrupt image fails when the loader reaches it.
 * ds->height = ds->width = image_size, the loader's default output size. */
typedef struct rn_folder_options {
    int channels;              /* 3 (RGB, as pil_loader) or 1 (Pillow's "L"); 0: 3 */
    int image_size;            /* the default output size S; 0: 224 */
} rn_folder_options;

rn_status rn_folder_load(const char *dir, int train, const rn_folder_options *opt,
                         rn_dataset *out);

/* The normalisation a dataset is usually trained with: for image folders
 * ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), for
 * gray folders mean 0.449, std 0.226 (their averages); returns 1 and fills
 * mean[0..channels-1], std[...]. Returns 0 (nothing written) for the others. */
int rn_dataset_default_normalize(const rn_dataset *ds, float mean[4], float std[4]);

/* The class names a built-in kind always has: "mnist" ("0".."9"),
 * "fashion-mnist" (T-shirt/top, Trouser, ...), "cifar10" (airplane, ...)
 * and "imagenet" (the 1000 ImageNet-1k names in torchvision's order).
 * Stores the count in *count (if not NULL); NULL and 0 for other kinds. */
const char *const *rn_dataset_builtin_names(const char *kind, int *count);

/* The names of a checkpoint's k classes: its metadata "class_names" (one
 * per line) when they number k, else the built-in names of its metadata
 * "dataset" when they number k. *names is NULL when neither applies, else
 * one malloc'ed block holding the k pointers and then the text (free it with
 * free()). Fails only when the file cannot be read. */
rn_status rn_checkpoint_class_names(const char *weights, int k, char ***names);

/* Copies n names into ds->class_names (replacing any, which must then number
 * ds->num_classes) and sets ds->num_classes = n. */
rn_status rn_dataset_set_class_names(rn_dataset *ds, const char *const *names, int n);

/* ---- the loader ------------------------------------------------------------- */

typedef struct rn_loader_config {
    int batch_size;
    int image_size;            /* output height = width; 0: the dataset's own size */
    int shuffle;               /* reshuffle every epoch (seeded) */
    int drop_last;             /* skip a final partial batch */
    int flip;                  /* random horizontal flip (p = 0.5) */
    int crop_padding;          /* random crop with this zero padding; 0: off.
                                * Image folders: any value > 0 selects
                                * RandomResizedCrop (see below) */
    int normalize;             /* subtract mean[c], divide by std[c] after scaling to [0,1] */
    float mean[4], std[4];
    uint64_t seed;
    float crop_scale[2];       /* image folders: RandomResizedCrop's area range;
                                * {0, 0}: {0.08, 1} */
    float crop_ratio[2];       /* its aspect-ratio range; {0, 0}: {3/4, 4/3} */
} rn_loader_config;

typedef struct rn_loader rn_loader;

/* Where the loader stands, for checkpoints: restoring it continues with
 * exactly the batches that would have come next. A new loader is at (0, 0);
 * after the last batch of epoch e it is at (e, images per epoch), and the
 * end-of-epoch call (*n == 0) moves it to (e + 1, 0). */
typedef struct rn_loader_state {
    int64_t epoch;             /* index of the current epoch (= epochs finished) */
    int64_t position;          /* images handed out in the current epoch */
} rn_loader_state;

/* The loader prepares the next batch on a background thread while the caller
 * computes. Batches are deterministic given the seed, whatever the timing:
 * epoch e's order is a function of (seed, e) only, and the crop and flip of
 * the i-th image of epoch e a function of (seed, e, i) only.
 *
 * In-memory datasets, per image in torchvision's order: resize the uint8
 * image to image_size x image_size (PIL bilinear, see resize.h; a non-square
 * image is squashed), random crop of the same size from the image
 * zero-padded by crop_padding, horizontal flip, scale to [0, 1]
 * (u / 255.0f), then (v - mean[c]) / std[c]. Nothing is allocated after
 * creation.
 *
 * Image folders, S = image_size (0: ds->height): each image is decoded
 * (rn_image_read_channels, default limits) then, with crop_padding > 0,
 * RandomResizedCrop(S, crop_scale, crop_ratio) + flip (rn_preprocess_train),
 * else Resize(int(S / 0.875)) + CenterCrop(S) (rn_preprocess_eval, exactly
 * torchvision's) and the flip; then ToTensor and, with normalize,
 * Normalize(mean, std). The images of a batch are decoded in parallel
 * (rn_threads() OpenMP threads on the background thread). A file that
 * fails to decode fails rn_loader_next with a message naming it (the
 * lowest-numbered such image of the batch); the loader stays where it was,
 * so calling again retries that batch.
 *
 * ds must outlive the loader. */
rn_status rn_loader_create(const rn_dataset *ds, const rn_loader_config *cfg, rn_loader **out);

/* Stops the background thread and frees the loader (NULL is fine). */
void rn_loader_free(rn_loader *l);

/* Batches per epoch. */
int rn_loader_steps(const rn_loader *l);

/* The shape of one output image: channels and height x width (image_size, or
 * the dataset's own size when image_size is 0). */
void rn_loader_shape(const rn_loader *l, int *channels, int *height, int *width);

/* Fills x: (batch_size, channels, S, S) float32 and labels (batch_size) with
 * the next batch and stores its size in *n; *n == 0 marks the end of an epoch
 * (the next call starts the next one). On failure (only image folders can
 * fail) *n is 0 and the position does not move. */
rn_status rn_loader_next(rn_loader *l, float *x, int32_t *labels, int *n);

void rn_loader_get_state(const rn_loader *l, rn_loader_state *st);

/* Moves the loader to st (epoch >= 0, 0 <= position <= images per epoch). */
rn_status rn_loader_set_state(rn_loader *l, const rn_loader_state *st);

#endif
