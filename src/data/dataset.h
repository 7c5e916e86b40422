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

/* The handle resnet.h declares (typedef struct rn_dataset rn_dataset). */
struct rn_dataset {
    int count;                 /* images */
    int channels, height, width;   /* FILES: channels decoded (3 RGB, 1 L) and
                                    * the default output size S x S */
    int num_classes;
    uint8_t *pixels;           /* PIXELS: (count, channels, height, width); FILES: NULL */
    int32_t *labels;           /* (count), each in 0..num_classes-1 */
    char **class_names;        /* (num_classes) or NULL */
    rn_dataset_storage storage;
    char **paths;              /* FILES: (count) image files; PIXELS: NULL */
};

/* kind: "mnist", "fashion-mnist" (IDX: DIR/train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz], t10k-...), "cifar10" (DIR/data_batch_{1..5}.bin
 * and test_batch.bin, or the same under DIR/cifar-10-batches-bin), "folder"
 * (an image folder, RGB, see rn_folder_load; the training split is DIR/train,
 * the other DIR/val) or "folder-gray" (the same, decoded as Pillow's "L").
 * train: 1 for the training split, 0 for the test split. */
rn_status rn_dataset_load(const char *dir, const char *kind, int train, rn_dataset *out);

/* Whether rn_dataset_load reads `kind` (the kinds above, and the spellings fashion_mnist and
 * cifar-10), so that a caller can refuse an unknown one before reading anything. */
int rn_dataset_kind_known(const char *kind);

/* Whether `kind` is one of the image-folder kinds ("folder", "folder-gray"), whose splits are
 * DIR/train and DIR/val. */
int rn_dataset_kind_is_folder(const char *kind);

/* Frees what rn_dataset_load allocated and zeroes *ds (NULL is fine). */
void rn_dataset_free(rn_dataset *ds);

/* Labels ds by a model's classes, where both are named: names[j] (k of them) is the model's
 * class j. When every class of ds that has images is one of them, each image's label becomes its
 * class's index among names, and ds's class names and count become the model's (an image
 * folder's classes are its sub-folders in sorted order: val/{cat,dog} beside a model of
 * {bird,cat,dog} had labelled cat 0, the model's bird); *matched is then the number of ds's
 * classes matched (a class without images, such as one of DIR/train's that DIR/val lacks, need
 * not be). When none is, ds is
 * left as it is and *matched is 0 (other names for the same classes, labelled by position, as
 * before). When some are and some are not, fails with RN_ERR_MISMATCH naming the first class
 * the model lacks. A dataset without class names is left as it is (*matched 0). A '/' in a
 * model's name (which no folder's can hold: Fashion-MNIST's "T-shirt/top") matches '/', '_',
 * '-' or ' '. */
rn_status rn_dataset_match_classes(rn_dataset *ds, const char *const *names, int k, int *matched);

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
 * classes, sorted by name (byte order), labels 0, 1, ... in that order (where
 * DIR/train is there, DIR/val's classes are labelled by their names' places
 * among DIR/train's, which the dataset then names: a class of val that train
 * lacks fails, a class train has and val lacks is a label with no images);
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

/* Every .jpg, .jpeg and .png file (any case) in folder dir and the folders below it (links
 * followed): dir's own by name, then each sub-folder's, by name, in the order ImageFolder lists
 * a class folder's (sorted(os.walk(sub)), each folder's files by name); so a folder of class
 * folders gives ImageFolder's order.
 * *paths is one malloc'ed block (free() it): *count pointers, then the strings. A file of a
 * kind ImageFolder takes that is not read here (.bmp, .webp...) fails naming it, as does a
 * folder without images. (`resnet predict FOLDER`.) */
rn_status rn_folder_images(const char *dir, char ***paths, int *count);

/* ImageNet's normalisation for images of `channels` channels: mean (0.485, 0.456,
 * 0.406) and std (0.229, 0.224, 0.225) for 3, mean 0.449 and std 0.226 (their
 * averages) for 1. Fills all four slots (the last value repeated); returns 0 for
 * other channel counts (nothing written). */
int rn_imagenet_normalize(int channels, float mean[4], float std[4]);

/* The normalisation a dataset is usually trained with: ImageNet's
 * (rn_imagenet_normalize) for image folders; returns 1 and fills mean and std.
 * Returns 0 (nothing written) for the others. */
int rn_dataset_default_normalize(const rn_dataset *ds, float mean[4], float std[4]);

/* Copies n names into ds->class_names (replacing any, which must then number
 * ds->num_classes) and sets ds->num_classes = n. */
rn_status rn_dataset_set_class_names(rn_dataset *ds, const char *const *names, int n);

/* The loader (rn_loader_create ...) is public: see resnet.h. */

#endif
