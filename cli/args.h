/*
 * args.h - command-line flags for the `resnet` subcommands.
 *
 * Each command declares a table of flags with defaults and help text; the
 * same table parses argv, prints `--help`, and answers typed look-ups.
 */
#ifndef RN_CLI_ARGS_H
#define RN_CLI_ARGS_H

typedef enum arg_kind { ARG_STRING, ARG_INT, ARG_FLAG } arg_kind;

typedef struct arg_spec {
    const char *name;       /* without the leading "--" */
    arg_kind kind;
    const char *def;        /* default, as text; NULL: required (or none for flags) */
    const char *help;
    const char *value;      /* filled by args_parse */
    int set;
} arg_spec;

typedef struct arg_table {
    const char *command;    /* "forward" */
    const char *summary;    /* one line */
    arg_spec *specs;
    int count;
} arg_table;

/* Parses argv[1..argc-1] (argv[0] is the command name). Returns 0 on
 * success, 1 if --help was printed (exit 0), -1 after printing an error
 * (exit 2). Required flags (def == NULL, not ARG_FLAG) are enforced unless
 * `optional_required` names them ("arch" may be taken from a file). */
int args_parse(arg_table *t, int argc, char **argv);
void args_print_help(const arg_table *t);

const char *args_str(const arg_table *t, const char *name);
int args_flag(const arg_table *t, const char *name);
/* Integer flag in [lo, hi]; prints an error and returns 0 if out of range. */
int args_int(const arg_table *t, const char *name, int lo, int hi, int *out);

/* Prints "resnet CMD: message" on stderr (one line). */
void cli_error(const char *command, const char *fmt, ...);

#endif
