/* fuzz_checkpoint.c - checkpoint metadata, as --resume, eval and predict read
 * it: the input is split in two (fuzz_split) into a weights file and its
 * optimizer state, two in-memory files; then the pair is matched
 * (run id and step of both, header-only reads), where training stood is
 * read strictly, and the weights' normalisation and image size are parsed
 * as the commands parse them. */
#include <stdlib.h>

#include "fuzz.h"
#include "io/safetensors.h"
#include "run_common.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t cut = fuzz_split(data, size);
    const char *weights = fuzz_mem_file(0, size >= 2 ? data + 2 : data, cut > 2 ? cut - 2 : 0);
    const char *state = fuzz_mem_file(1, data + cut, size - cut);
    char use[600];
    rn_checkpoint_id id;
    rn_checkpoint_match(weights, state, use, sizeof use, &id);
    rn_train_position pos;
    rn_checkpoint_position(state, &pos);
    st_file f;
    if (st_read_meta(weights, &f) == RN_OK) {
        const char *norm = st_meta_get(&f, "normalize"), *image_size = st_meta_get(&f, "image_size");
        float mean[4], std[4];
        int channels;
        if (norm)
            parse_mean_std(norm, mean, std, &channels);
        if (image_size)
            (void)strtol(image_size, NULL, 10);
        st_free(&f);
    }
    return 0;
}
