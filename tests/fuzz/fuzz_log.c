/* fuzz_log.c - the JSON-lines training log that `resnet plot` reads
 * (rn_plot_svg), written as SVG into a private folder. */
#include "fuzz.h"
#include "train/plot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char svg[512];
    snprintf(svg, sizeof svg, "%s/curves.svg", fuzz_dir());
    rn_plot_svg(fuzz_mem_path(data, size), svg);
    return 0;
}
