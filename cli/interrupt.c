/* interrupt.c - SIGINT and SIGTERM while `resnet train` runs (see interrupt.h). */
#include "interrupt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t received;
static struct sigaction old_int, old_term;
static int installed, disarmed;

static void on_signal(int sig) {
    if (!received)
        received = sig;
}

void interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_RESETHAND; /* the second one of a kind ends the process */
    received = 0;
    disarmed = 0;
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
    int sig = received;
    if (sig && !disarmed) {
        /* whichever signal comes next stops the process at once */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        disarmed = 1;
    }
    return sig;
}

const char *interrupt_name(int sig) {
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}
