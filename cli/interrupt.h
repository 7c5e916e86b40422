/*
 * interrupt.h - SIGINT and SIGTERM while `resnet train` runs.
 *
 * The handler only records which signal came (async-signal-safe); the
 * training loop asks after every step and stops cleanly: the step finished,
 * a checkpoint written, a message saying how to resume. Once the loop has
 * seen a signal, both signals get their default action back, so a second
 * Ctrl-C (or SIGTERM) ends the process at once; the last committed
 * checkpoint stays intact because every file is written atomically.
 */
#ifndef RN_CLI_INTERRUPT_H
#define RN_CLI_INTERRUPT_H

/* Installs the handlers for SIGINT and SIGTERM. */
void interrupt_install(void);

/* Restores the actions that were in place before interrupt_install. */
void interrupt_restore(void);

/* The signal received since interrupt_install (SIGINT or SIGTERM), or 0.
 * After the first non-zero answer the default actions are back. */
int interrupt_pending(void);

/* "SIGINT" or "SIGTERM". */
const char *interrupt_name(int sig);

#endif
