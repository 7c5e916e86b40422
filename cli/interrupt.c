/* interrupt.c - SIGINT and SIGTERM while `resnet train` runs (see interrupt.h). */
#include "interrupt.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received;
static struct sigaction old_int, old_term;
static int installed;
static volatile sig_atomic_t saving; /* the run has a --save to write */

/* write(2) of a constant: what a handler may do */
#define SAY(text) (void)!write(2, text, sizeof text - 1)

static void on_signal(int sig) {
    const int was = errno; /* write(2) may set it under code about to report a failed save's */
    if (!received) {
        received = sig;
        if (saving)
            SAY("\nresnet train: stopping after this step, with a checkpoint (a second signal stops at once)\n");
        else
            SAY("\nresnet train: stopping after this step (no --save: no checkpoint; a second signal stops at "
                "once)\n");
        errno = was;
        return;
    }
    /* the second: at once, by the signal's own default action (status 130 or 143 from the shell) */
    SAY("\nresnet train: a second signal: stopped at once, without a checkpoint of this step (any written "
        "before is intact)\n");
    signal(sig, SIG_DFL);
    raise(sig);
}

void interrupt_install(int save) {
    saving = save;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    received = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    installed = 1;
}

void interrupt_restore(void) {
    if (!installed)
        return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    installed = 0;
}

int interrupt_pending(void) {
    return received;
}

const char *interrupt_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}
