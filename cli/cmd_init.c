/* cmd_init.c - `resnet init`: write a freshly initialised model to safetensors. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "commands.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"arch", ARG_STRING, NULL, "architecture: d2l_resnet18, resnet18, resnet34, resnet50, resnet101, resnet152, wide_resnet50_2, wide_resnet101_2, resnext50_32x4d or resnext101_32x8d", 0, 0},
    {"stem", ARG_STRING, "imagenet", "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no max-pool)", 0, 0},
    CLI_WIDTH_SPEC,
    {"in-channels", ARG_INT, "3", "input channels", 0, 0},
    {"num-classes", ARG_INT, "1000", "output classes", 0, 0},
    {"init", ARG_STRING, "default", "default (PyTorch's initialisation for the architecture) or xavier", 0, 0},
    {"seed", ARG_INT, "0", "random seed", 0, 0},
    {"output", ARG_STRING, NULL, "safetensors file to write; missing folders are created", 0, 0},
};

int cmd_init(int argc, char **argv) {
    arg_table t = {"init", "Write a freshly initialised model (PyTorch state_dict names) to a safetensors file.",
                   SPECS, sizeof SPECS / sizeof SPECS[0]};
    int r = args_parse(&t, argc, argv);
    if (r)
        return r > 0 ? 0 : EXIT_USAGE;
    int in_ch, classes, seed;
    if (!args_int(&t, "in-channels", 1, 4096, &in_ch) || !args_int(&t, "num-classes", 1, 1000000, &classes) ||
        !args_int(&t, "seed", 0, 2147483647, &seed))
        return EXIT_USAGE;
    int stem = cli_stem(&t), width = stem < 0 ? -1 : cli_width(&t);
    if (stem < 0 || width < 0 || !cli_arch_ok(&t, 0) || !cli_path_ok(&t, "output") ||
        !cli_output_file_ok("init", "--output", args_str(&t, "output")))
        return EXIT_USAGE;
    rn_model *m = NULL;
    rn_status st = rn_model_create_width(args_str(&t, "arch"), in_ch, classes, (rn_stem)stem, width, &m);
    if (st == RN_OK)
        st = rn_model_init(m, args_str(&t, "init"), (uint64_t)seed);
    if (st != RN_OK) {
        cli_error("init", "%s", rn_last_error());
        rn_model_free(m);
        return st == RN_ERR_NOMEM ? EXIT_RUNTIME : EXIT_USAGE; /* out of memory is no usage error */
    }
    int status = 0;
    st = cli_make_output_dirs("init", args_str(&t, "output"));
    if (st == RN_OK)
        st = rn_model_save(m, args_str(&t, "output"));
    if (st != RN_OK) {
        status = cli_write_failed("init", st);
    } else {
        printf("wrote %s: %s, width %d, in_channels %d, num_classes %d, %lld parameters\n", args_str(&t, "output"),
               rn_model_arch(m), rn_model_width(m), in_ch, classes, (long long)rn_model_param_count(m));
    }
    rn_model_free(m);
    return status;
}
