/*
 * main.c - the `resnet` command: dispatch to a subcommand.
 * The CLI is the only part of resnet.c that prints or chooses exit codes.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "dist.h"
#include "resnet.h"

const cli_command CLI_COMMANDS[] = {
    {"train", cmd_train, "train a model on a dataset (Fashion-MNIST, MNIST, CIFAR-10, image folders)"},
    {"eval", cmd_eval, "evaluate a checkpoint: loss, top-1/top-5, per-class accuracy, confusion matrix"},
    {"quantize", cmd_quantize, "quantize a float32 model to int8 (post-training, calibrated on a dataset)"},
    {"report", cmd_report, "write a checkpoint's training report: HTML page, figures as SVG/PNG"},
    {"plot", cmd_plot, "render a training log as SVG curves"},
    {"predict", cmd_predict, "classify JPEG/PNG images: top-k classes with probabilities"},
    {"convert", cmd_convert, "convert a PyTorch .pth checkpoint (or any weights file) to safetensors"},
    {"export", cmd_export, "export weights as an ONNX model (with class names and preprocessing)"},
    {"info", cmd_info, "print the layer table (output shapes, parameters, MACs) of an architecture"},
    {"forward", cmd_forward, "run a forward pass: weights + input .npy -> logits .npy"},
    {"bench", cmd_bench, "time inference and report images/s and GFLOP/s"},
    {"init", cmd_init, "write a freshly initialised model to a safetensors file"},
    {"grad", cmd_grad, "write every parameter's loss gradient for one batch (for checking)"},
    {"completion", cmd_completion, "print the bash completion script (generated from the flag tables)"},
    {"manpage", cmd_manpage, "print the manual page resnet.1 (roff, generated from the flag tables)"},
};
const int CLI_N_COMMANDS = (int)(sizeof CLI_COMMANDS / sizeof CLI_COMMANDS[0]);

const cli_env_var CLI_ENVIRONMENT[] = {
    {"RN_ISA", "amx, avx512, avx2 or portable: forces the kernels' instruction set (default: the "
               "best this CPU has; one it lacks is an error; amx is avx512 with int8 and bf16 "
               "products on AMX tiles)"},
    {"OMP_NUM_THREADS", "the default number of threads (default: all cores); --threads overrides it"},
    {"RN_HUGEPAGES", "0: the large buffers (weights, activations, files read whole) without transparent "
                     "huge pages (default: asked for, where Linux has them)"},
};
const int CLI_N_ENVIRONMENT = (int)(sizeof CLI_ENVIRONMENT / sizeof CLI_ENVIRONMENT[0]);

const cli_env_var CLI_EXIT_STATUS[] = {
    {"0", "success"},
    {"1", "a failure at run time (a bad or missing file, bad data, out of memory, a run too big to "
          "fit in memory, train stopped after --max-bad-steps non-finite steps...)"},
    {"2", "bad usage (an unknown flag, a bad value)"},
    {"3", "a file could not be written (disk full, read-only folder...); what was on disk is intact"},
    {"4", "train was stopped by SIGINT or SIGTERM after finishing a step; its checkpoint (with --save) is "
          "written"},
    {"130", "(143 for SIGTERM; set by the shell) a second signal ended train at once; the last "
            "checkpoint is intact"},
};
const int CLI_N_EXIT_STATUS = (int)(sizeof CLI_EXIT_STATUS / sizeof CLI_EXIT_STATUS[0]);

/* text after a `indent`-column label, wrapped at 100 columns */
static void wrapped(FILE *f, const char *text, int indent) {
    int col = indent;
    while (*text) {
        int word = (int)strcspn(text, " ");
        if (col > indent && col + 1 + word > 100) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", word, text);
        col += word;
        text += word;
        while (*text == ' ')
            text++;
    }
    fputc('\n', f);
}

static void usage(FILE *f) {
    fprintf(f, "resnet %s - ResNets in C\n\nusage: resnet COMMAND [flags]\n       resnet --version   print the "
               "version (and the MPI library of an MPI-enabled build)\n       resnet --help      this help (also -h)\n"
               "       resnet help COMMAND  the command's flags (as resnet COMMAND --help)\n\n"
               "commands:\n", RN_VERSION);
    for (int i = 0; i < CLI_N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", CLI_COMMANDS[i].name, CLI_COMMANDS[i].summary);
    fprintf(f, "\narchitectures:");
    for (int i = 0; i < rn_arch_count(); i++)
        fprintf(f, " %s", rn_arch_name(i));
    fprintf(f, "\n\n`resnet COMMAND --help` lists a command's flags with their defaults.\n\nenvironment:\n");
    for (int i = 0; i < CLI_N_ENVIRONMENT; i++)
        fprintf(f, "  %-16s %s\n", CLI_ENVIRONMENT[i].name, CLI_ENVIRONMENT[i].text);
    fprintf(f, "\nexit status:\n");
    for (int i = 0; i < CLI_N_EXIT_STATUS; i++) {
        fprintf(f, "  %-4s ", CLI_EXIT_STATUS[i].name);
        wrapped(f, CLI_EXIT_STATUS[i].text, 7);
    }
}

/* "unknown command", with the nearest command a typo away where there is one; exit 2. */
static int unknown_command(const char *name) {
    const char *near = NULL;
    for (int i = 0, best = 3, d; i < CLI_N_COMMANDS; i++)
        if ((d = args_typo_distance(name, CLI_COMMANDS[i].name)) >= 0 && d < best)
            best = d, near = CLI_COMMANDS[i].name;
    if (near)
        fprintf(stderr, "resnet: unknown command '%s': did you mean %s? (see resnet --help)\n", name, near);
    else
        fprintf(stderr, "resnet: unknown command '%s' (see resnet --help)\n", name);
    return EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "resnet: no command given (see resnet --help)\n");
        return EXIT_USAGE;
    }
    /* a file-size limit (ulimit -f) fails the write (EFBIG: "File too large", exit 3, the files on
     * disk unchanged) instead of killing the process mid-save without a word */
    signal(SIGXFSZ, SIG_IGN);
    if (strcmp(argv[1], "help") == 0 && argc >= 3) { /* resnet help COMMAND: its --help */
        for (int i = 0; i < CLI_N_COMMANDS && argc == 3; i++)
            if (strcmp(argv[2], CLI_COMMANDS[i].name) == 0) {
                char *args[] = {argv[2], "--help", NULL};
                return CLI_COMMANDS[i].run(2, args);
            }
        if (argc > 3) {
            fprintf(stderr, "resnet help: give one command, got %d words (see resnet --help)\n", argc - 2);
            return EXIT_USAGE;
        }
        return unknown_command(argv[2]);
    }
    const int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0,
              version = strcmp(argv[1], "--version") == 0;
    if ((help || version) && argc > 2) { /* as resnet help COMMAND WORD: the word was meant for something */
        fprintf(stderr, "resnet: %s takes no arguments, got '%s' (see resnet --help)\n", argv[1], argv[2]);
        return EXIT_USAGE;
    }
    if (help) {
        usage(stdout);
        return 0;
    }
    if (version) {
        printf("resnet %s\n", RN_VERSION);
        if (dist_library())
            printf("data-parallel training over MPI (mpirun -np N resnet train ...): %s\n", dist_library());
        return 0;
    }
    /* RN_ISA naming kernels this CPU lacks is an error for every command */
    if (rn_isa_check() != RN_OK) {
        fprintf(stderr, "resnet: %s\n", rn_last_error());
        return EXIT_USAGE;
    }
    for (int i = 0; i < CLI_N_COMMANDS; i++)
        if (strcmp(argv[1], CLI_COMMANDS[i].name) == 0)
            return CLI_COMMANDS[i].run(argc - 1, argv + 1);
    return unknown_command(argv[1]);
}
