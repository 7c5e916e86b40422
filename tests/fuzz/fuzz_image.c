/* fuzz_image.c - JPEG and PNG decoding through the size limits. The first
 * byte chooses the channels (bit 0: gray) and the limits (bit 1: the
 * defaults, else small ones, so both refusals and decoding are reached);
 * the rest is the file, decoded from memory and probed through a path. */
#include "fuzz.h"
#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    int channels = data[0] & 1 ? 1 : 3;
    rn_image_limits lim;
    rn_image_limits_default(&lim);
    if (!(data[0] & 2)) {
        lim.max_width = lim.max_height = 1024;
        lim.max_pixels = 1 << 18;
        lim.max_file_bytes = 1 << 20;
    }
    rn_image img;
    if (rn_image_decode(data + 1, size - 1, "fuzz-image", channels, &lim, &img) == RN_OK)
        rn_image_free(&img);
    const char *format;
    int w, h;
    rn_image_probe(fuzz_mem_path(data + 1, size - 1), &format, &w, &h);
    return 0;
}
