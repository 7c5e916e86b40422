/*
 * font.c - the stroke font (see font.h).
 *
 * Each glyph is "ADVANCE|PATH", where PATH is a sequence of commands:
 *   M x y                    start a stroke at (x, y)
 *   L x y                    a line to (x, y)
 *   A cx cy rx ry a0 a1      an elliptic arc around (cx, cy) from angle a0 to
 *                            a1 (degrees, counter-clockwise; a1 < a0 runs
 *                            clockwise), joined to the stroke by a line
 *   U                        lift the pen (the next A starts a new stroke)
 * in font units, y upwards.
 */
#include "report/font.h"

#include <math.h>
#include <stdlib.h>

static const char *const GLYPHS[95] = {
    /* ' ' */ "8|",
    /* '!' */ "6|M3 20L3 6M3 0L3 0",
    /* '"' */ "9|M3 20L3 14M6 20L6 14",
    /* '#' */ "16|M7 20L5 0M12 20L10 0M2 13L15 13M1 7L14 7",
    /* '$' */ "16|A8 14.5 5.5 4 30 270A8 6.5 6 4 90 -150M8 22L8 -2",
    /* '%' */ "20|A5.5 15 3 4 0 360M16 20L4 0M17.5 5A14.5 5 3 4 0 360",
    /* '&' */ "17|M15 0L5.4 13.9A7.5 16.5 3 3.5 220 -40L3.5 6.5A7.5 5 5 5 160 320L14 8",
    /* ''' */ "5|M2.5 20L2.5 14",
    /* '(' */ "9|A11 8.5 7 13.5 120 240",
    /* ')' */ "9|A-2 8.5 7 13.5 60 -60",
    /* '*' */ "12|M6 20L6 12M2.5 18L9.5 14M9.5 18L2.5 14",
    /* '+' */ "16|M8 16L8 2M2 9L14 9",
    /* ',' */ "6|M3 1L3 0L2 -3",
    /* '-' */ "10|M2 8L8 8",
    /* '.' */ "6|M3 0L3 0",
    /* '/' */ "10|M9 21L1 -2",
    /* '0' */ "16|A8 10 6 10 0 360",
    /* '1' */ "16|M4 16L9 20L9 0M4 0L14 0",
    /* '2' */ "16|A8 14 6 6 150 -40L2 0L14 0",
    /* '3' */ "16|A8 15 5.5 5 150 -90A8 5 6 5 90 -150",
    /* '4' */ "16|M11 0L11 20L1 6L15 6",
    /* '5' */ "16|M13 20L3.5 20L2.5 11A8 6.5 6 6.5 140 -150",
    /* '6' */ "16|A8 10 6 10 60 180L2 6.5A8 6.5 6 6.5 180 -180",
    /* '7' */ "16|M2 20L14 20L6 0",
    /* '8' */ "16|A8 15 5 5 -90 270A8 5 6 5 90 450",
    /* '9' */ "16|A8 13.5 6 6.5 0 360L14 10A8 10 6 10 0 -120",
    /* ':' */ "6|M3 12L3 12M3 0L3 0",
    /* ';' */ "6|M3 12L3 12M3 1L3 0L2 -3",
    /* '<' */ "16|M14 16L2 9L14 2",
    /* '=' */ "16|M2 12L14 12M2 6L14 6",
    /* '>' */ "16|M2 16L14 9L2 2",
    /* '?' */ "13|A6.5 15 4.5 5 150 -60L6.5 7L6.5 5M6.5 0L6.5 0",
    /* '@' */ "22|A11 8 3.5 4 0 360M14.5 12L14.5 5A16.5 5 2 2 180 360A11 8 7.5 9 0 330",
    /* 'A' */ "16|M1 0L8 20L15 0M3.6 7L12.4 7",
    /* 'B' */ "16|M2 0L2 20L9 20A9 15 5 5 90 -90L2 10M9 10A9 5 5.5 5 90 -90L2 0",
    /* 'C' */ "17|A9 10 7 10 45 315",
    /* 'D' */ "17|M2 0L2 20L7 20A7 10 8 10 90 -90L2 0",
    /* 'E' */ "15|M13 20L2 20L2 0L13 0M2 10L11 10",
    /* 'F' */ "14|M13 20L2 20L2 0M2 10L11 10",
    /* 'G' */ "18|A9 10 7 10 40 360L16 8L10 8",
    /* 'H' */ "17|M2 0L2 20M15 0L15 20M2 10L15 10",
    /* 'I' */ "6|M3 0L3 20",
    /* 'J' */ "12|M10 20L10 5A5.5 5 4.5 5 0 -160",
    /* 'K' */ "16|M2 0L2 20M14 20L2 7M6 11L14 0",
    /* 'L' */ "13|M2 20L2 0L12 0",
    /* 'M' */ "19|M2 0L2 20L9.5 4L17 20L17 0",
    /* 'N' */ "17|M2 0L2 20L15 0L15 20",
    /* 'O' */ "18|A9 10 7 10 0 360",
    /* 'P' */ "15|M2 0L2 20L8 20A8 14.5 6 5.5 90 -90L2 9",
    /* 'Q' */ "18|A9 10 7 10 0 360M11 5L16 -1",
    /* 'R' */ "16|M2 0L2 20L8 20A8 15 6 5 90 -90L2 10M8 10L14 0",
    /* 'S' */ "16|A8 15 6 5 30 270A8 5 6 5 90 -150",
    /* 'T' */ "16|M1 20L15 20M8 20L8 0",
    /* 'U' */ "17|M2 20L2 6A8.5 6 6.5 6 180 360L15 20",
    /* 'V' */ "16|M1 20L8 0L15 20",
    /* 'W' */ "22|M1 20L6 0L11 16L16 0L21 20",
    /* 'X' */ "16|M2 20L14 0M14 20L2 0",
    /* 'Y' */ "16|M1 20L8 10L15 20M8 10L8 0",
    /* 'Z' */ "15|M2 20L13 20L2 0L13 0",
    /* '[' */ "8|M6 21L3 21L3 -3L6 -3",
    /* '\' */ "10|M1 21L9 -2",
    /* ']' */ "8|M2 21L5 21L5 -3L2 -3",
    /* '^' */ "14|M3 14L7 20L11 14",
    /* '_' */ "14|M0 -3L14 -3",
    /* '`' */ "8|M3 20L5 17",
    /* 'a' */ "14|A7 7 5 7 0 360M12 14L12 0",
    /* 'b' */ "14|M2 21L2 0M2 7A7 7 5 7 180 -180",
    /* 'c' */ "13|A7 7 5 7 45 315",
    /* 'd' */ "14|A7 7 5 7 0 360M12 21L12 0",
    /* 'e' */ "14|M2 7L12 7A7 7 5 7 0 325",
    /* 'f' */ "9|A7.5 17 3.5 4 70 180L4 0M1 14L8 14",
    /* 'g' */ "14|A7 7 5 7 0 360M12 14L12 -1A7 -1 5 5 0 -150",
    /* 'h' */ "14|M2 21L2 0M2 9A7 9 5 5 180 0L12 0",
    /* 'i' */ "6|M3 0L3 14M3 19L3 19",
    /* 'j' */ "7|M4 14L4 -3A1.5 -3 2.5 3 0 -120M4 19L4 19",
    /* 'k' */ "13|M2 21L2 0M12 14L2 5M5.5 8L12 0",
    /* 'l' */ "6|M3 21L3 0",
    /* 'm' */ "22|M2 14L2 0M2 10A6.5 10 4.5 4 180 0L11 0M11 10A15.5 10 4.5 4 180 0L20 0",
    /* 'n' */ "14|M2 14L2 0M2 9A7 9 5 5 180 0L12 0",
    /* 'o' */ "14|A7 7 5 7 0 360",
    /* 'p' */ "14|M2 14L2 -6M2 7A7 7 5 7 180 -180",
    /* 'q' */ "14|A7 7 5 7 0 360M12 14L12 -6",
    /* 'r' */ "10|M2 14L2 0M2 8A7 8 5 6 180 70",
    /* 's' */ "13|A6.5 10.5 4.5 3.5 30 270A6.5 3.5 5 3.5 90 -150",
    /* 't' */ "9|M4 19L4 3A7 3 3 3 180 300M1 14L8 14",
    /* 'u' */ "14|M2 14L2 5A7 5 5 5 180 360M12 14L12 0",
    /* 'v' */ "13|M1 14L6.5 0L12 14",
    /* 'w' */ "19|M1 14L5 0L9.5 12L14 0L18 14",
    /* 'x' */ "13|M2 14L11 0M11 14L2 0",
    /* 'y' */ "13|M1 14L6.5 0M12 14L4 -6L2 -6",
    /* 'z' */ "12|M2 14L10 14L2 0L10 0",
    /* '{' */ "9|M7 21A7 18 2 3 90 180L5 11L3 9L5 7L5 0A7 0 2 3 180 270",
    /* '|' */ "6|M3 21L3 -4",
    /* '}' */ "9|M2 21A2 18 2 3 90 0L4 11L6 9L4 7L4 0A2 0 2 3 0 -90",
    /* '~' */ "14|M2 8A4.5 8 2.5 2 180 0A9.5 8 2.5 2 180 360",
};

/* Drawn for characters outside printable ASCII. */
static const char *const BOX = "14|M2 0L2 20L12 20L12 0L2 0";

static const char *glyph(uint32_t cp) {
    return cp >= 32 && cp < 127 ? GLYPHS[cp - 32] : BOX;
}

double rn_glyph_advance(uint32_t cp) {
    return strtod(glyph(cp), NULL) + RN_FONT_TRACKING;
}

/* ---------------------------------------------------------------------------
 * Path interpretation
 * ------------------------------------------------------------------------- */

#define MAX_POINTS 128

typedef struct stroke {
    double xy[2 * MAX_POINTS];
    int n;
    void (*fn)(void *ctx, const double *xy, int n);
    void *ctx;
} stroke;

static void flush(stroke *s) {
    if (s->n > 0)
        s->fn(s->ctx, s->xy, s->n);
    s->n = 0;
}

static void add(stroke *s, double x, double y) {
    if (s->n == MAX_POINTS) {   /* keep going in a new stroke from the last point */
        double lx = s->xy[2 * s->n - 2], ly = s->xy[2 * s->n - 1];
        flush(s);
        add(s, lx, ly);
    }
    s->xy[2 * s->n] = x;
    s->xy[2 * s->n + 1] = y;
    s->n++;
}

/* Reads k numbers after a command letter; returns the position after them. */
static const char *numbers(const char *p, double *v, int k) {
    for (int i = 0; i < k; i++) {
        char *end;
        v[i] = strtod(p, &end);
        p = end;
    }
    return p;
}

void rn_glyph_strokes(uint32_t cp, void (*fn)(void *ctx, const double *xy, int n), void *ctx) {
    const char *p = glyph(cp);
    while (*p && *p != '|')
        p++;
    if (*p == '|')
        p++;
    stroke s = {.n = 0, .fn = fn, .ctx = ctx};
    double v[6];
    while (*p) {
        char cmd = *p++;
        if (cmd == 'M') {
            flush(&s);
            p = numbers(p, v, 2);
            add(&s, v[0], v[1]);
        } else if (cmd == 'L') {
            p = numbers(p, v, 2);
            add(&s, v[0], v[1]);
        } else if (cmd == 'A') {
            p = numbers(p, v, 6);
            double span = v[5] - v[4];
            int steps = (int)ceil(fabs(span) / 12.0);
            if (steps < 1)
                steps = 1;
            for (int i = 0; i <= steps; i++) {
                double a = (v[4] + span * i / steps) * M_PI / 180.0;
                add(&s, v[0] + v[2] * cos(a), v[1] + v[3] * sin(a));
            }
        } else if (cmd == 'U') {
            flush(&s);
        }
    }
    flush(&s);
}
