/* cmd_plot.c - `resnet plot`: a training log (JSON lines) as SVG curves. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "run_common.h"
#include "train/plot.h"

static arg_spec SPECS[] = {
    {"log", ARG_STRING, NULL, "JSON-lines log written by resnet train", 0, 0},
    {"output", ARG_STRING, "auto", "SVG file (missing folders are created); auto: the log's name with .svg", 0, 0},
};

int cmd_plot(int argc, char **argv) {
    arg_table t = {"plot", "Render the loss and accuracy curves of a training log as an SVG file.", SPECS,
                   sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    const char *log = args_str(&t, "log");
    char out[1024];
    if (strcmp(args_str(&t, "output"), "auto") == 0) {
        const char *dot = strrchr(log, '.'), *slash = strrchr(log, '/');
        size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - log) : strlen(log);
        if (stem > 4 && strncmp(log + stem - 4, ".log", 4) == 0 && strcmp(dot, ".jsonl") == 0)
            stem -= 4; /* run.log.jsonl -> run.svg */
        snprintf(out, sizeof out, "%.*s.svg", (int)stem, log);
    } else {
        snprintf(out, sizeof out, "%s", args_str(&t, "output"));
    }
    FILE *probe = fopen(log, "rb"); /* a missing log fails before any folder is made */
    if (!probe) {
        cli_error("plot", "%s: cannot open: %s", log, strerror(errno));
        return EXIT_RUNTIME;
    }
    fclose(probe);
    rn_status st = cli_make_output_dirs("plot", out);
    if (st == RN_OK)
        st = rn_plot_svg(log, out);
    if (st != RN_OK) /* the log is readable: an I/O error is the SVG's */
        return cli_write_failed("plot", st);
    printf("wrote %s\n", out);
    return 0;
}
