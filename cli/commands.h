/* commands.h - the `resnet` subcommands; each returns the process exit status. */
#ifndef RN_CLI_COMMANDS_H
#define RN_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_completion(int argc, char **argv);
int cmd_manpage(int argc, char **argv);

/* The subcommands, in the order `resnet --help` lists them (main.c). */
typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;
extern const cli_command CLI_COMMANDS[];
extern const int CLI_N_COMMANDS;

/* The environment variables every command reads, for --help and the manual. */
typedef struct cli_env_var {
    const char *name, *text;
} cli_env_var;
extern const cli_env_var CLI_ENVIRONMENT[];
/* resnet's exit statuses (name: the status), for --help and the manual */
extern const cli_env_var CLI_EXIT_STATUS[];
extern const int CLI_N_EXIT_STATUS;
extern const int CLI_N_ENVIRONMENT;

/* Exit statuses, one meaning each (README, `resnet --help`): 0 success. */
#define EXIT_RUNTIME 1      /* a failure at run time: a bad file, bad data, out of memory... */
#define EXIT_USAGE 2        /* bad usage: an unknown flag, a bad value */
#define EXIT_WRITE 3        /* a file could not be written (disk full, read-only...); what was on disk is intact */
#define EXIT_INTERRUPTED 4  /* train stopped by SIGINT / SIGTERM after a step, its checkpoint written */

#endif
