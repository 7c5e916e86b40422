/* fuzz_npy.c - the .npy reader (magic, version, header dict, shape, data
 * size) on arbitrary bytes, through its file interface. */
#include "fuzz.h"
#include "resnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *x = NULL;
    int ndim = 0;
    int64_t shape[RN_NPY_MAX_DIMS];
    if (rn_npy_read(fuzz_mem_path(data, size), &x, &ndim, shape) == RN_OK)
        free(x);
    return 0;
}
