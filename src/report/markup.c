/* markup.c - escaping text for HTML and SVG, compact numbers, UTF-8 decoding. */
#include "report/markup.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void rn_markup_escape(json_buf *out, const char *s) {
    while (*s) {
        unsigned char c = (unsigned char)*s;
        size_t n = c < 0x80 ? 1 : json_utf8_seq((const unsigned char *)s, strnlen(s, 4));
        const char *rep = NULL;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep)
            json_buf_put(out, rep, strlen(rep));
        else if (n == 0)
            json_buf_put(out, "?", 1);
        else if (c >= 0x20 || c == '\t' || c == '\n')
            json_buf_put(out, s, n);
        s += n ? n : 1;
    }
}

void rn_markup_number(json_buf *out, double v, int decimals) {
    char text[64];
    if (!isfinite(v)) {
        json_buf_put(out, "0", 1);
        return;
    }
    int n = snprintf(text, sizeof text, "%.*f", decimals, v);
    if (n <= 0 || (size_t)n >= sizeof text) {
        json_buf_put(out, "0", 1);
        return;
    }
    if (strchr(text, '.')) {
        while (n > 0 && text[n - 1] == '0')
            text[--n] = '\0';
        if (n > 0 && text[n - 1] == '.')
            text[--n] = '\0';
    }
    if (strcmp(text, "-0") == 0)
        json_buf_put(out, "0", 1);
    else
        json_buf_put(out, text, (size_t)n);
}

uint32_t rn_utf8_next(const char **s) {
    const unsigned char *p = (const unsigned char *)*s;
    if (p[0] < 0x80) {
        *s += 1;
        return p[0];
    }
    size_t n = json_utf8_seq(p, strnlen(*s, 4));
    if (n == 0) {
        *s += 1;
        return '?';
    }
    *s += n;
    if (n == 2)
        return (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
    if (n == 3)
        return (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
    return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
           (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
}
