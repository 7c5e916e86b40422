/* cmd_plot.c - `resnet plot`: a training log (JSON lines) as SVG curves, or
 * (--compare) the test accuracy of several runs against wall time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "run_common.h"
#include "train/plot.h"

static arg_spec SPECS[] = {
    {"log", ARG_STRING, NULL, "JSON-lines log written by resnet train", 0, 0},
    {"output", ARG_STRING, "auto", "SVG file (missing folders are created); auto: the log's name with .svg "
     "(with --time: the log's name with _time.svg)", 0, 0},
    {"time", ARG_FLAG, NULL, "draw the test accuracy against wall time (the log's \"elapsed\": seconds since "
     "the start, evaluation included, summed over a resumed run's commands) instead of the curves", 0, 0},
    {"compare", ARG_STRING, "none", "other logs, comma-separated, drawn beside --log's (implies --time)", 0, 0},
    {"labels", ARG_STRING, "auto", "with --time: the lines' names, comma-separated, --log's first; "
     "auto: the logs' file names", 0, 0},
};

#define MAX_COMPARE 8

/* The items of a comma-separated list. */
static int count_items(const char *list) {
    int n = 1;
    for (; *list; list++)
        n += *list == ',';
    return n;
}

/* Splits a comma-separated list (in place, in buf) into at most cap items. */
static int split_list(char *buf, const char **items, int cap) {
    int n = 0;
    for (char *p = buf; p && n < cap;) {
        items[n++] = p;
        p = strchr(p, ',');
        if (p)
            *p++ = '\0';
    }
    return n;
}

/* --time (and --compare): returns the exit status. */
static int plot_compare(const arg_table *t, const char *out) {
    const char *paths[MAX_COMPARE + 1], *labels[MAX_COMPARE + 1];
    char list[4096], names[4096];
    snprintf(list, sizeof list, "%s", args_str(t, "compare"));
    paths[0] = args_str(t, "log");
    const int none = strcmp(list, "none") == 0;
    if (!none && count_items(args_str(t, "compare")) > MAX_COMPARE) {
        cli_error("plot", "--compare takes at most %d logs; it names %d", MAX_COMPARE,
                  count_items(args_str(t, "compare")));
        return EXIT_USAGE;
    }
    int n = none ? 1 : 1 + split_list(list, paths + 1, MAX_COMPARE);
    if (strcmp(args_str(t, "labels"), "auto") == 0) {
        for (int k = 0; k < n; k++) {
            const char *slash = strrchr(paths[k], '/');
            labels[k] = slash ? slash + 1 : paths[k];
        }
    } else {
        const int given = count_items(args_str(t, "labels")); /* however many split_list keeps */
        snprintf(names, sizeof names, "%s", args_str(t, "labels"));
        const int kept = split_list(names, labels, MAX_COMPARE + 1);
        if (given != n || kept != n) { /* kept < given: a list longer than the copy holds */
            cli_error("plot", "--labels '%s' names %d line%s; there %s %d log%s", args_str(t, "labels"),
                      given, given == 1 ? "" : "s", n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
            return EXIT_USAGE;
        }
    }
    for (int k = 1; k < n; k++)
        if (!cli_output_not_input("plot", "--output", out, "--compare's", paths[k]))
            return EXIT_USAGE;
    for (int k = 0; k < n; k++)
        if (!cli_readable("plot", "", paths[k])) /* before any folder is made */
            return EXIT_RUNTIME;
    rn_status st = cli_make_output_dirs("plot", out);
    if (st == RN_OK)
        st = rn_plot_compare_svg(paths, labels, n, out);
    if (st != RN_OK)
        return cli_write_failed("plot", st);
    printf("wrote %s\n", out);
    return 0;
}

int cmd_plot(int argc, char **argv) {
    arg_table t = {"plot", "Render the loss and accuracy curves of a training log as an SVG file, or the test "
                   "accuracy of several runs against wall time.", SPECS,
                   sizeof SPECS / sizeof SPECS[0]};
    int pr = args_parse(&t, argc, argv);
    if (pr)
        return pr > 0 ? 0 : EXIT_USAGE;
    const char *log = args_str(&t, "log");
    if (!cli_path_ok(&t, "log") || !cli_path_ok(&t, "output") ||
        (strcmp(args_str(&t, "output"), "auto") != 0 && !cli_output_file_ok("plot", "--output", args_str(&t, "output"))))
        return EXIT_USAGE;
    int compare = args_flag(&t, "time") || strcmp(args_str(&t, "compare"), "none") != 0;
    if (!compare && strcmp(args_str(&t, "labels"), "auto") != 0) {
        cli_error("plot", "--labels names the lines of --time or --compare; one log's curves have "
                  "none to name");
        return EXIT_USAGE;
    }
    char out[1024];
    if (strcmp(args_str(&t, "output"), "auto") == 0) {
        cli_log_beside(out, sizeof out, log, compare ? "_time.svg" : ".svg");
    } else {
        snprintf(out, sizeof out, "%s", args_str(&t, "output"));
    }
    if (!cli_output_not_input("plot", "--output", out, "--log", log))
        return EXIT_USAGE;
    if (compare)
        return plot_compare(&t, out);
    if (!cli_readable("plot", "", log))
        return EXIT_RUNTIME;
    rn_status st = cli_make_output_dirs("plot", out);
    if (st == RN_OK)
        st = rn_plot_svg(log, out);
    if (st != RN_OK) /* the log is readable: an I/O error is the SVG's */
        return cli_write_failed("plot", st);
    printf("wrote %s\n", out);
    return 0;
}
