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
    char old[RN_MSG_CAP];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof last_error ? (size_t)n : sizeof last_error - 1;
    size_t room = sizeof last_error - used;
    if (room > 2) {
        memcpy(last_error + used, ": ", 2);
        size_t len = strnlen(old, room - 3);
        memcpy(last_error + used + 2, old, len);
        last_error[used + 2 + len] = '\0';
    }
    return status;
}

void rn_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

rn_status rn_copy_text(char *buf, size_t cap, const char *text, const char *what) {
    const size_t n = strlen(text);
    if (n >= cap) {
        if (cap)
            buf[0] = 0;
        return rn_fail(RN_ERR_ARG, "%s: the text takes %zu bytes, more than the %zu the buffer "
                       "holds", what, n + 1, cap);
    }
    memcpy(buf, text, n + 1);
    return RN_OK;
}
