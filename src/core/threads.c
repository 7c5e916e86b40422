/* threads.c - the thread count set by rn_set_threads(). */
#include "threads.h"

#include "resnet.h"

static int requested_threads; /* 0: the default */

static int default_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void rn_set_threads(int n) { requested_threads = n > RN_THREADS_MAX ? RN_THREADS_MAX : n > 0 ? n : 0; }

int rn_get_threads(void) { return rn_threads(); }

int rn_threads(void) {
    int n = requested_threads ? requested_threads : default_threads();
    return n > 0 ? n : 1;
}
