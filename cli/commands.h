/* commands.h - the `resnet` subcommands; each returns the process exit status. */
#ifndef RN_CLI_COMMANDS_H
#define RN_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Exit statuses: 0 success, 1 failure at run time, 2 bad usage. */
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#endif
