/* cmd_convert.c - `resnet convert`: a weights file (PyTorch .pth or safetensors) to safetensors. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"input", ARG_STRING, NULL, "weights to read: a torch.save checkpoint (.pth), safetensors or an ONNX ResNet", 0, 0},
    {"output", ARG_STRING, NULL, "safetensors file to write (PyTorch state_dict names); missing folders are created", 0, 0},
    {"arch", ARG_STRING, "auto", "architecture; auto: from the metadata or the tensor names and shapes", 0, 0},
};

int cmd_convert(int argc, char **argv) {
    arg_table t = {"convert", "Convert weights to safetensors; the result loads in PyTorch with "
                   "load_state_dict(strict=True) and in every resnet command.", SPECS, sizeof SPECS / sizeof SPECS[0]};
    /* `resnet convert IN OUT` works as well as the flags */
    char *flags[8];
    if (argc == 3 && argv[1][0] != '-' && argv[2][0] != '-') {
        flags[0] = argv[0], flags[1] = "--input", flags[2] = argv[1], flags[3] = "--output", flags[4] = argv[2];
        argc = 5;
        argv = flags;
    }
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    const char *arch = strcmp(args_str(&t, "arch"), "auto") ? args_str(&t, "arch") : NULL;
    rn_model *m = NULL;
    if (rn_model_load(args_str(&t, "input"), arch, &m) != RN_OK) {
        cli_error("convert", "%s", rn_last_error());
        return EXIT_RUNTIME;
    }
    rn_status st = cli_make_output_dirs("convert", args_str(&t, "output"));
    if (st == RN_OK)
        st = rn_model_save(m, args_str(&t, "output"));
    if (st != RN_OK) {
        rn_model_free(m);
        return cli_write_failed("convert", st);
    }
    printf("wrote %s: %s, width %d, in_channels %d, num_classes %d, %lld parameters\n", args_str(&t, "output"),
           rn_model_arch(m), rn_model_width(m), rn_model_in_channels(m), rn_model_num_classes(m),
           (long long)rn_model_param_count(m));
    rn_model_free(m);
    return 0;
}
