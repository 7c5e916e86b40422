/* cmd_convert.c - `resnet convert`: a weights file (PyTorch .pth or safetensors) to safetensors. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "args.h"
#include "commands.h"
#include "resnet.h"
#include "run_common.h"

static arg_spec SPECS[] = {
    {"IN OUT.safetensors", ARG_POSITIONAL, "", "the weights to read and the safetensors file to write (or --input "
     "and --output)", 0, 0},
    {"input", ARG_STRING, "none", "weights to read: a torch.save checkpoint (.pth), safetensors or an ONNX ResNet "
     "(or IN)", 0, 0},
    {"output", ARG_STRING, "none", "safetensors file to write (PyTorch state_dict names; the input's metadata "
     "kept); missing folders are created (or OUT)", 0, 0},
    {"arch", ARG_STRING, "auto", "architecture; auto: from the metadata or the tensor names and shapes", 0, 0},
};

int cmd_convert(int argc, char **argv) {
    arg_table t = {"convert", "Convert weights to safetensors, keeping their metadata (image size, normalisation, "
                   "dataset, class names...); the result loads in PyTorch with load_state_dict(strict=True) and "
                   "in every resnet command.", SPECS, sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    /* `resnet convert IN OUT`, or --input IN --output OUT, with the other flags anywhere */
    int n_pos = 0;
    char **pos = args_positional(&t, argv, &n_pos);
    const int flags = args_spec(&t, "input")->set || args_spec(&t, "output")->set;
    if (n_pos > 0 && flags) {
        cli_error("convert", "give IN OUT or --input IN --output OUT, not both (see resnet convert --help)");
        return EXIT_USAGE;
    }
    const char *in = n_pos ? pos[0] : args_str(&t, "input"), *out = n_pos > 1 ? pos[1] : args_str(&t, "output");
    if (n_pos == 1 || n_pos > 2) {
        cli_error("convert", "expected IN and OUT, got %d argument%s (see resnet convert --help)", n_pos,
                  n_pos == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    if (n_pos == 0 && (strcmp(in, "none") == 0 || strcmp(out, "none") == 0)) {
        cli_error("convert", "missing %s: give IN OUT or --input IN --output OUT (see resnet convert --help)",
                  strcmp(in, "none") == 0 ? "the input" : "the output");
        return EXIT_USAGE;
    }
    if (!*in || !*out) {
        cli_error("convert", "the %s is an empty path", *in ? "output" : "input");
        return EXIT_USAGE;
    }
    if (!cli_arch_ok(&t, 1) || !cli_output_not_input("convert", "the output", out, "the input", in) ||
        !cli_output_file_ok("convert", "the output", out))
        return EXIT_USAGE;
    const size_t len = strlen(out); /* a safetensors file named .onnx had been written, "wrote x.onnx" */
    if (len >= 5 && strcasecmp(out + len - 5, ".onnx") == 0) {
        cli_error("convert", "the output %s is named as an ONNX model, but convert writes safetensors: "
                  "resnet export writes ONNX (or name a .safetensors file)", out);
        return EXIT_USAGE;
    }
    const char *arch = strcmp(args_str(&t, "arch"), "auto") ? args_str(&t, "arch") : NULL;
    rn_model *m = NULL;
    cli_meta_list meta = {0};
    if (rn_model_load_meta(in, arch, cli_meta_list_take, &meta, &m) != RN_OK) {
        cli_error("convert", "%s", rn_last_error());
        cli_meta_list_free(&meta);
        return EXIT_RUNTIME;
    }
    if (rn_model_is_quantized(m)) { /* the output would be the int8 file again, which PyTorch cannot load */
        cli_error("convert", "%s is an int8 model (resnet quantize), which convert does not write: its "
                  "output loads in PyTorch as float32 weights; convert the float32 weights it was "
                  "quantized from (every resnet command reads %s as it is)", in, in);
        rn_model_free(m);
        cli_meta_list_free(&meta);
        return EXIT_RUNTIME;
    }
    if (meta.nomem) {
        cli_error("convert", "out of memory reading the metadata of %s", in);
        rn_model_free(m);
        cli_meta_list_free(&meta);
        return EXIT_RUNTIME;
    }
    /* every key of the input's metadata travels (the file's own, format, arch, in_channels and
     * num_classes, are written from the model) */
    rn_status st = cli_make_output_dirs("convert", out);
    if (st == RN_OK)
        st = rn_model_save_meta(m, out, (const char *const *)meta.keys, (const char *const *)meta.values,
                                meta.count);
    cli_meta_list_free(&meta);
    if (st != RN_OK) {
        rn_model_free(m);
        return cli_write_failed("convert", st);
    }
    printf("wrote %s: %s, width %d, in_channels %d, num_classes %d, %lld parameters\n", out,
           rn_model_arch(m), rn_model_width(m), rn_model_in_channels(m), rn_model_num_classes(m),
           (long long)rn_model_param_count(m));
    rn_model_free(m);
    return 0;
}
