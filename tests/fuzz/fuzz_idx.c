/* fuzz_idx.c - MNIST IDX files (raw or gzip): the input is split in two
 * (fuzz_split) into the image file and the label file of a training split,
 * which rn_idx_load then reads from a private folder. */
#include "fuzz.h"
#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t cut = fuzz_split(data, size);
    size_t first = cut > 2 ? cut - 2 : 0;
    fuzz_put_file(0, "train-images-idx3-ubyte", size >= 2 ? data + 2 : data, first);
    fuzz_put_file(1, "train-labels-idx1-ubyte", data + cut, size - cut);
    rn_dataset ds;
    if (rn_idx_load(fuzz_dir(), 1, 10, rn_dataset_builtin_names("fashion-mnist", NULL), &ds) == RN_OK)
        rn_dataset_free(&ds);
    return 0;
}
