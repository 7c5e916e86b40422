/*
 * args.h - command-line flags for the `resnet` subcommands.
 *
 * Each command declares a table of flags with defaults and help text; the
 * same table parses argv, prints `--help`, and answers typed look-ups.
 *
 * A command that takes positional arguments (`resnet predict ... IMAGE...`)
 * adds one ARG_POSITIONAL entry, named as its usage line shows them:
 *     {"IMAGE...", ARG_POSITIONAL, NULL, "JPEG or PNG files", 0, 0}
 * def NULL: at least one is required; def "": none is fine. Arguments that do
 * not start with "-" (and "-" itself, and everything after "--") are then
 * positional; without such an entry they are an error.
 */
#ifndef RN_CLI_ARGS_H
#define RN_CLI_ARGS_H

#include <stddef.h>

typedef enum arg_kind { ARG_STRING, ARG_INT, ARG_FLAG, ARG_POSITIONAL } arg_kind;

typedef struct arg_spec {
    const char *name;       /* without the leading "--" */
    arg_kind kind;
    const char *def;        /* default, as text; NULL: required (or none for flags) */
    const char *help;
    const char *value;      /* filled by args_parse (ARG_POSITIONAL: the first one) */
    int set;                /* given on the command line (ARG_POSITIONAL: how many) */
} arg_spec;

typedef struct arg_table {
    const char *command;    /* "forward" */
    const char *summary;    /* one line */
    arg_spec *specs;
    int count;
} arg_table;

/* Parses argv[1..argc-1] (argv[0] is the command name). Returns 0 on
 * success, 1 if --help was printed (exit 0), -1 after printing an error
 * (exit 2). Required flags (def == NULL, not ARG_FLAG) are enforced.
 * With an ARG_POSITIONAL entry, argv is reordered as getopt does: the
 * positional arguments move, in their order, to argv[1..n] (the strings
 * themselves, and the values the table points to, do not change). */
int args_parse(arg_table *t, int argc, char **argv);

/* The edits (a letter more, fewer or other, two swapped) between typed name a and name b where
 * they are a typo apart (one edit for a name typed under 5 letters, two for longer ones), else -1:
 * the nearest is suggested for an unknown flag or command. */
int args_typo_distance(const char *a, const char *b);
void args_print_help(const arg_table *t);

/* What --help says of itself. */
#define ARGS_HELP_TEXT "show this help"

/* The placeholder of a flag's value in help: "N", "VALUE", or "" for ARG_FLAG. */
const char *args_value_name(const arg_spec *s);
/* "default: X", "default: off" (ARG_FLAG) or "required", into buf. */
void args_default_text(const arg_spec *s, char *buf, size_t cap);

/* The documentation generators (docs.c) read every command's table through
 * this hook: while it is set, --help hands the table to fn(t, ctx) instead
 * of printing it. fn NULL removes it. */
void args_set_help_hook(void (*fn)(const arg_table *t, void *ctx), void *ctx);

/* The positional arguments after args_parse(t, argc, argv): argv + 1, with
 * their number in *count (0 without an ARG_POSITIONAL entry). */
char **args_positional(const arg_table *t, char **argv, int *count);

const char *args_str(const arg_table *t, const char *name);
/* The flag's entry in the table, or NULL. */
arg_spec *args_spec(const arg_table *t, const char *name);
/* Gives a flag that was not on the command line another value than its
 * default (value must outlive the table; "1"/"0" for ARG_FLAG). Returns 0,
 * changing nothing, if the flag was given or is unknown. */
int args_default_to(arg_table *t, const char *name, const char *value);
int args_flag(const arg_table *t, const char *name);
/* Integer flag in [lo, hi]; prints an error and returns 0 if out of range. */
int args_int(const arg_table *t, const char *name, int lo, int hi, int *out);

/* Prints "resnet CMD: message" on stderr (one line). */
void cli_error(const char *command, const char *fmt, ...);

#endif
