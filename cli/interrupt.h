/*
 * interrupt.h - SIGINT and SIGTERM while `resnet train` runs.
 *
 * The handler records which signal came and says on stderr that the run
 * stops after the step (write(2) only: async-signal-safe); the training loop
 * asks after every step and stops cleanly: the step finished, a checkpoint
 * written, a message saying how to resume. A second Ctrl-C (or SIGTERM) says
 * so and ends the process at once by the signal's default action; the last
 * committed checkpoint stays intact because every file is written atomically.
 */
#ifndef RN_CLI_INTERRUPT_H
#define RN_CLI_INTERRUPT_H

/* Installs the handlers for SIGINT and SIGTERM; `save`: the run writes a checkpoint when it stops
 * (what the first signal's message says). */
void interrupt_install(int save);

/* Restores the actions that were in place before interrupt_install. */
void interrupt_restore(void);

/* The first signal received since interrupt_install (SIGINT or SIGTERM), or 0. */
int interrupt_pending(void);

/* "SIGINT" or "SIGTERM". */
const char *interrupt_name(int sig);

#endif
