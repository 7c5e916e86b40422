/* status.c - the thread-local error message behind rn_last_error(). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RN_MSG_CAP 1024

static _Thread_local char last_error[RN_MSG_CAP];

const char *rn_last_error(void) { return last_error; }

const char *rn_status_name(rn_status status) {
    switch (status) {
    case RN_OK: return "ok";
    case RN_ERR_ARG: return "invalid argument";
    case RN_ERR_NOMEM: return "out of memory";
    case RN_ERR_IO: return "i/o error";
    case RN_ERR_FORMAT: return "malformed file";
    case RN_ERR_MISMATCH: return "mismatch";
    case RN_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

rn_status rn_fail(rn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

rn_status rn_fail_context(rn_status status, const char *fmt, ...) {
    char prefix[RN_MSG_CAP], old[RN_MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    snprintf(last_error, sizeof last_error, "%s: %s", prefix, old);
    return status;
}
