/* fuzz_cifar.c - CIFAR-10 binary batches: the input is split in two
 * (fuzz_split) into test_batch.bin and batches.meta.txt (absent when that
 * part is empty), which rn_cifar10_load then reads from a private folder. */
#include "fuzz.h"
#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t cut = fuzz_split(data, size);
    size_t first = cut > 2 ? cut - 2 : 0;
    fuzz_put_file(0, "test_batch.bin", size >= 2 ? data + 2 : data, first);
    fuzz_put_file(1, "batches.meta.txt", cut < size ? data + cut : NULL, size - cut);
    rn_dataset ds;
    if (rn_cifar10_load(fuzz_dir(), 0, &ds) == RN_OK)
        rn_dataset_free(&ds);
    return 0;
}
