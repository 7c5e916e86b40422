/*
 * status.h - failing with a message.
 *
 * rn_fail() records a printf-style message for rn_last_error() and returns
 * the status, so a failure is reported and propagated in one statement:
 *     if (n < 0) return rn_fail(RN_ERR_FORMAT, "%s: negative count at offset %zu", path, off);
 * RN_TRY(expr) returns early from the enclosing function when expr fails.
 */
#ifndef RN_CORE_STATUS_H
#define RN_CORE_STATUS_H

#include "resnet.h"

#if defined(__GNUC__)
#define RN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RN_PRINTF(a, b)
#endif

rn_status rn_fail(rn_status status, const char *fmt, ...) RN_PRINTF(2, 3);

/* Prefixes the current message with "context: " and returns status. Used to
 * add the file name or key to an error raised deeper down. */
rn_status rn_fail_context(rn_status status, const char *fmt, ...) RN_PRINTF(2, 3);

/* Writes a tensor shape for a message, "[64, 3, 7, 7]", truncated to cap. */
void rn_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

#define RN_TRY(expr)                         \
    do {                                     \
        rn_status rn_try_status_ = (expr);   \
        if (rn_try_status_ != RN_OK)         \
            return rn_try_status_;           \
    } while (0)

/* Copies text into buf (capacity cap): RN_OK, or RN_ERR_ARG naming `what` when it does not fit
 * (buf then holds ""), so that a caller's short buffer is not cut short in silence. */
rn_status rn_copy_text(char *buf, size_t cap, const char *text, const char *what);

#endif
