/*
 * font.h - the stroke font of raster figures: printable ASCII drawn as lines
 * and arcs, so that text stays smooth at any size and scale.
 *
 * Glyphs are designed in font units: RN_FONT_EM units to the em, baseline at
 * y = 0, y upwards; capitals are 20 units high, lowercase 14, descenders go
 * to -6. Strokes are drawn with round ends, RN_FONT_STROKE units wide
 * (RN_FONT_STROKE_BOLD for bold).
 */
#ifndef RN_REPORT_FONT_H
#define RN_REPORT_FONT_H

#include <stdint.h>

#define RN_FONT_EM 28.0
#define RN_FONT_STROKE 2.2
#define RN_FONT_STROKE_BOLD 3.4
#define RN_FONT_TRACKING 1.0     /* added to every advance */

/* The advance width of code point cp, tracking included, in font units (a
 * box for anything outside printable ASCII). */
double rn_glyph_advance(uint32_t cp);

/* Calls fn once per stroke of cp's glyph with its n points xy[0..2n) in font
 * units (n may be 1: a dot). */
void rn_glyph_strokes(uint32_t cp, void (*fn)(void *ctx, const double *xy, int n), void *ctx);

#endif
