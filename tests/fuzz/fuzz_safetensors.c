/* fuzz_safetensors.c - the safetensors reader (8-byte length, JSON header,
 * dtypes, shapes, offsets, conversion of the data) on arbitrary bytes. */
#include "fuzz.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    if (st_parse(data, size, "fuzz.safetensors", &f) != RN_OK)
        return 0;
    /* what the loaders do with a parsed file: look tensors and keys up */
    for (size_t i = 0; i < f.count; i++)
        if (st_find(&f, f.tensors[i].name) == NULL)
            abort();
    for (size_t i = 0; i < f.meta_count; i++)
        if (st_meta_get(&f, f.meta[i].key) == NULL)
            abort();
    st_free(&f);
    return 0;
}
