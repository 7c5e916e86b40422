/* cmd_forward.c - `resnet forward`: weights + input .npy -> logits .npy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"arch", ARG_STRING, "auto", "architecture; auto: from the file's metadata or tensor names", 0, 0},
    {"weights", ARG_STRING, NULL, "safetensors file with PyTorch state_dict names", 0, 0},
    {"input", ARG_STRING, NULL, ".npy float32 input of shape (N, C, H, W)", 0, 0},
    {"output", ARG_STRING, NULL, ".npy file to write the (N, num_classes) float32 logits to", 0, 0},
    {"mode", ARG_STRING, "eval", "eval: BatchNorm uses running statistics; train: batch statistics", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
    {"print", ARG_FLAG, NULL, "also print each image's top class and logit", 0, 0},
};

int cmd_forward(int argc, char **argv) {
    arg_table t = {"forward", "Run a forward pass and write the logits.", SPECS,
                   sizeof SPECS / sizeof SPECS[0]};
    int r = args_parse(&t, argc, argv);
    if (r)
        return r > 0 ? 0 : EXIT_USAGE;
    int threads;
    if (!args_int(&t, "threads", 0, 1024, &threads))
        return EXIT_USAGE;
    int mode_i = cli_mode(&t);
    if (mode_i < 0)
        return EXIT_USAGE;
    rn_mode mode = (rn_mode)mode_i;
    const char *arch = args_str(&t, "arch");
    if (strcmp(arch, "auto") == 0)
        arch = NULL;
    rn_set_threads(threads);

    rn_model *m = NULL;
    float *x = NULL, *y = NULL;
    int ndim = 0, status = EXIT_RUNTIME;
    int64_t shape[RN_NPY_MAX_DIMS];
    /* The input first: it is small, and a bad one is reported without loading the weights. */
    if (rn_npy_read(args_str(&t, "input"), &x, &ndim, shape) != RN_OK ||
        rn_model_load(args_str(&t, "weights"), arch, &m) != RN_OK) {
        cli_error("forward", "%s", rn_last_error());
        goto done;
    }
    if (ndim != 4 || shape[1] != rn_model_in_channels(m) || shape[0] < 1 || shape[2] < 1 ||
        shape[3] < 1 || shape[0] > 1000000 || shape[2] > 65536 || shape[3] > 65536) {
        cli_error("forward", "%s: expected an input of shape (N, %d, H, W)", args_str(&t, "input"),
                  rn_model_in_channels(m));
        goto done;
    }
    int n = (int)shape[0], h = (int)shape[2], w = (int)shape[3], k = rn_model_num_classes(m);
    y = malloc((size_t)n * (size_t)k * sizeof *y);
    if (!y) {
        cli_error("forward", "out of memory");
        goto done;
    }
    int64_t out_shape[2] = {n, k};
    if (rn_model_forward(m, x, n, h, w, mode, y) != RN_OK) {
        cli_error("forward", "%s", rn_last_error());
        goto done;
    }
    rn_status st = rn_npy_write(args_str(&t, "output"), y, 2, out_shape);
    if (st != RN_OK) {
        status = cli_write_failed("forward", st);
        goto done;
    }
    if (args_flag(&t, "print")) {
        for (int i = 0; i < n; i++) {
            int best = 0;
            for (int j = 1; j < k; j++)
                if (y[(size_t)i * k + j] > y[(size_t)i * k + best])
                    best = j;
            printf("image %d: class %d (logit %.4f)\n", i, best, y[(size_t)i * k + best]);
        }
    }
    status = 0;
done:
    free(x);
    free(y);
    rn_model_free(m);
    return status;
}
