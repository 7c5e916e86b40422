/*
 * cmd_grad.c - `resnet grad`: the gradient of the mean cross-entropy loss of
 * one batch with respect to every parameter, for checking against PyTorch.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "core/status.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"weights", ARG_STRING, NULL, "weights file (safetensors, PyTorch .pth or ONNX)", 0, 0},
    {"arch", ARG_STRING, "auto", "architecture; auto: from the file", 0, 0},
    {"input", ARG_STRING, NULL, ".npy float32 input (N, C, H, W)", 0, 0},
    {"labels", ARG_STRING, NULL, ".npy float32 labels (N), whole numbers in 0..num_classes-1", 0, 0},
    {"label-smoothing", ARG_STRING, "0", "cross-entropy label smoothing in [0, 1]", 0, 0},
    {"output", ARG_STRING, NULL, "safetensors file for the gradients (parameter names); missing folders are created", 0, 0},
    {"threads", ARG_INT, "0", "threads to use; 0: all cores", 0, 0},
};

int cmd_grad(int argc, char **argv) {
    arg_table t = {"grad", "Write the loss gradient of every parameter for one batch (train-mode BatchNorm).",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    int threads;
    if (!args_int(&t, "threads", 0, 1024, &threads) || !cli_number_ok(&t, "label-smoothing") ||
        !cli_arch_ok(&t, 1) || !cli_path_ok(&t, "output") ||
        !cli_output_file_ok("grad", "--output", args_str(&t, "output")))
        return EXIT_USAGE;
    static const char *const read[] = {"weights", "input", "labels"};
    for (int i = 0; i < 3; i++) { /* a gradients file over one of them had replaced it (the model too) */
        char what[16];
        snprintf(what, sizeof what, "--%s", read[i]);
        if (!cli_output_not_input("grad", "--output", args_str(&t, "output"), what, args_str(&t, read[i])))
            return EXIT_USAGE;
    }
    const double smoothing = atof(args_str(&t, "label-smoothing"));
    if (smoothing < 0 || smoothing > 1) {
        cli_error("grad", "--label-smoothing must be in [0, 1], got '%s'", args_str(&t, "label-smoothing"));
        return EXIT_USAGE;
    }
    rn_set_threads(threads);
    rn_model *m = NULL;
    float *x = NULL, *yl = NULL;
    int32_t *labels = NULL;
    int nd = 0, nl = 0, status = EXIT_RUNTIME;
    int64_t xs[RN_NPY_MAX_DIMS], ls[RN_NPY_MAX_DIMS];
    const char *arch = strcmp(args_str(&t, "arch"), "auto") ? args_str(&t, "arch") : NULL;
    if (rn_npy_read(args_str(&t, "input"), &x, &nd, xs) != RN_OK ||
        rn_npy_read(args_str(&t, "labels"), &yl, &nl, ls) != RN_OK ||
        rn_model_load(args_str(&t, "weights"), arch, &m) != RN_OK) {
        cli_error("grad", "%s", rn_last_error());
        goto done;
    }
    if (rn_model_is_quantized(m)) { /* as train refuses one */
        cli_error("grad", "%s is an int8 model: it can be evaluated and run, not trained or differentiated; "
                  "use the float32 weights it was quantized from", args_str(&t, "weights"));
        goto done;
    }
    if (nd != 4 || xs[1] != rn_model_in_channels(m) || nl != 1 || ls[0] != xs[0] || xs[0] > 100000 ||
        xs[2] > 65536 || xs[3] > 65536) {
        char gx[96], gl[96];
        rn_shape_str(gx, sizeof gx, nd, xs);
        rn_shape_str(gl, sizeof gl, nl, ls);
        cli_error("grad", "the input has shape %s and the labels %s: expected input (N, %d, H, W) and "
                  "labels (N)", gx, gl, rn_model_in_channels(m));
        goto done;
    }
    labels = malloc((size_t)xs[0] * sizeof *labels);
    if (!labels) {
        cli_error("grad", "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < xs[0]; i++) {
        /* a class index: a whole number in range (a NaN, 0.5 or -1 is no label; casting one is undefined) */
        const float v = yl[i];
        if (!(v >= 0.0f && v < (float)rn_model_num_classes(m)) || v != floorf(v)) {
            cli_error("grad", "%s: label %lld is %g; labels are whole numbers in 0..%d", args_str(&t, "labels"),
                      (long long)i, (double)v, rn_model_num_classes(m) - 1);
            goto done;
        }
        labels[i] = (int32_t)v;
    }
    float loss = 0.0f;
    rn_status st = cli_make_output_dirs("grad", args_str(&t, "output"));
    if (st == RN_OK)
        st = rn_model_save_gradients(m, x, labels, (int)xs[0], (int)xs[2], (int)xs[3],
                                     (float)smoothing, args_str(&t, "output"), &loss);
    if (st != RN_OK) {
        status = cli_write_failed("grad", st);
        goto done;
    }
    printf("loss %.8f\n", loss);
    status = 0;
done:
    free(x), free(yl), free(labels);
    rn_model_free(m);
    return status;
}
