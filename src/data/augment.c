/*
 * augment.c - TrivialAugmentWide's, RandAugment's and AutoAugment's operations
 * and draws; the operations as torchvision 0.14 applies them
 * to PIL images: the geometry by Pillow's nearest-neighbour affine transform
 * (its 16.16 fixed-point loop, or its scaling loop for translations) or its
 * bilinear one (the generic transform with its bilinear filter), the
 * colours by Image.blend against ImageEnhance's degenerate images, the rest
 * by ImageOps' lookup tables. Each step keeps Pillow's arithmetic (float32
 * where Pillow computes in float, double where Python does) so that the
 * results are its bytes; tests/test_augment.c compares them with torchvision.
 */
#include "data/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[RN_AUG_OPS] = {
    "Identity", "ShearX",     "ShearY",    "TranslateX", "TranslateY",
    "Rotate",   "Brightness", "Color",     "Contrast",   "Sharpness",
    "Posterize", "Solarize",  "AutoContrast", "Equalize", "Invert"};

const char *rn_augment_op_name(int op) { return op >= 0 && op < RN_AUG_OPS ? NAMES[op] : "?"; }

int rn_augment_op_has_magnitude(int op) {
    return op != RN_AUG_IDENTITY && op != RN_AUG_AUTOCONTRAST && op != RN_AUG_EQUALIZE &&
           op != RN_AUG_INVERT && op >= 0 && op < RN_AUG_OPS;
}

int rn_augment_op_signed(int op) { return op >= RN_AUG_SHEAR_X && op <= RN_AUG_SHARPNESS; }

/* torch.linspace(0, 0.99, 31) and torch.linspace(0, 32, 31) in float32 as Debian's torch 1.13
 * computes them on an AMD EPYC (its vectorised loop, 8 lanes there, rounds a few entries a last bit
 * otherwise than start + step * i would, and another vector width otherwise again); the other two
 * tables, linspace(0, 135) and linspace(255, 0), are exact multiples of their steps. */
static const float UNIT[RN_AUG_BINS] = {
    0x0p+0f,       0x1.0e5604p-5f, 0x1.0e5604p-4f, 0x1.958106p-4f, 0x1.0e5604p-3f, 0x1.51eb84p-3f,
    0x1.958106p-3f, 0x1.d91688p-3f, 0x1.0e5604p-2f, 0x1.3020c4p-2f, 0x1.51eb84p-2f, 0x1.73b646p-2f,
    0x1.958106p-2f, 0x1.b74bc6p-2f, 0x1.d91688p-2f, 0x1.fae148p-2f, 0x1.0e5604p-1f, 0x1.1f3b64p-1f,
    0x1.3020c4p-1f, 0x1.410626p-1f, 0x1.51eb86p-1f, 0x1.62d0e6p-1f, 0x1.73b646p-1f, 0x1.849ba6p-1f,
    0x1.958106p-1f, 0x1.a66666p-1f, 0x1.b74bc8p-1f, 0x1.c83128p-1f, 0x1.d91688p-1f, 0x1.e9fbe8p-1f,
    0x1.fae148p-1f};
static const float PIXELS[RN_AUG_BINS] = {
    0x0p+0f,       0x1.111112p+0f, 0x1.111112p+1f, 0x1.99999cp+1f, 0x1.111112p+2f, 0x1.555556p+2f,
    0x1.99999cp+2f, 0x1.ddddep+2f,  0x1.111112p+3f, 0x1.333334p+3f, 0x1.555556p+3f, 0x1.777778p+3f,
    0x1.99999cp+3f, 0x1.bbbbbcp+3f, 0x1.ddddep+3f,  0x1p+4f,        0x1.11111p+4f,  0x1.222222p+4f,
    0x1.333332p+4f, 0x1.444444p+4f, 0x1.555554p+4f, 0x1.666666p+4f, 0x1.777778p+4f, 0x1.888888p+4f,
    0x1.99999ap+4f, 0x1.aaaaaap+4f, 0x1.bbbbbcp+4f, 0x1.ccccccp+4f, 0x1.dddddep+4f, 0x1.eeeeeep+4f,
    0x1p+5f};

double rn_augment_magnitude(int op, int bin) {
    if (bin < 0 || bin >= RN_AUG_BINS)
        return 0.0;
    switch (op) {
    case RN_AUG_SHEAR_X:
    case RN_AUG_SHEAR_Y:
    case RN_AUG_BRIGHTNESS:
    case RN_AUG_COLOR:
    case RN_AUG_CONTRAST:
    case RN_AUG_SHARPNESS:
        return UNIT[bin];
    case RN_AUG_TRANSLATE_X:
    case RN_AUG_TRANSLATE_Y:
        return PIXELS[bin];
    case RN_AUG_ROTATE:
        return 4.5f * (float)bin;
    case RN_AUG_SOLARIZE:
        return 255.0f - 8.5f * (float)bin;
    case RN_AUG_POSTERIZE: /* 8 - (arange(31) / 5).round(): no ties */
        return 8 - (int)nearbyint(bin / 5.0);
    default:
        return 0.0;
    }
}

/* ---------------------------------------------------------------------------
 * Geometry: Pillow's nearest-neighbour affine transform (Geometry.c), the
 * matrix mapping output pixel centres to input coordinates, outside 0
 * ------------------------------------------------------------------------- */

static int coord(double v) { return v < 0.0 ? -1 : (int)v; }
static int floor_int(double v) { return v < 0.0 ? (int)floor(v) : (int)v; }
static int fix16(double v) { return floor_int(v * 65536.0 + 0.5); }

static int fits_fixed(const double a[6], int x, int y) {
    return fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

/* one plane, in -> out */
static void affine_plane(const uint8_t *in, uint8_t *out, int h, int w, const double a[6]) {
    memset(out, 0, (size_t)h * (size_t)w);
    if (a[1] == 0 && a[3] == 0) { /* ImagingScaleAffine */
        /* its table of input columns (0 where a column falls outside) and the range [xmin, xmax)
         * it copies, recomputed per row in the same sums instead of stored */
        int xmin = w, xmax = 0;
        double xo = a[2] + a[0] * 0.5, yo = a[5] + a[4] * 0.5;
        for (int x = 0; x < w; x++, xo += a[0]) {
            const int xi = coord(xo);
            if (xi >= 0 && xi < w) {
                xmax = x + 1;
                xmin = x < xmin ? x : xmin;
            }
        }
        for (int y = 0; y < h; y++, yo += a[4]) {
            const int yi = coord(yo);
            if (yi < 0 || yi >= h)
                continue;
            xo = a[2] + a[0] * 0.5;
            for (int x = 0; x < xmax; x++, xo += a[0]) {
                const int xi = coord(xo);
                if (x >= xmin)
                    out[(size_t)y * w + x] = in[(size_t)yi * w + (xi >= 0 && xi < w ? xi : 0)];
            }
        }
        return;
    }
    if (fits_fixed(a, 0, 0) && fits_fixed(a, w, h) && fits_fixed(a, 0, h) && fits_fixed(a, w, 0)) {
        const int a0 = fix16(a[0]), a1 = fix16(a[1]), a3 = fix16(a[3]), a4 = fix16(a[4]);
        int a2 = fix16(a[2] + a[0] * 0.5 + a[1] * 0.5), a5 = fix16(a[5] + a[3] * 0.5 + a[4] * 0.5);
        for (int y = 0; y < h; y++) {
            int xx = a2, yy = a5;
            for (int x = 0; x < w; x++) {
                const int xi = xx >> 16; /* arithmetic shift, as Pillow's compilers do */
                if (xi >= 0 && xi < w) {
                    const int yi = yy >> 16;
                    if (yi >= 0 && yi < h)
                        out[(size_t)y * w + x] = in[(size_t)yi * w + xi];
                }
                xx += a0;
                yy += a3;
            }
            a2 += a1;
            a5 += a4;
        }
        return;
    }
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int y = 0; y < h; y++) {
        double xx = xo, yy = yo;
        for (int x = 0; x < w; x++) {
            const int xi = coord(xx);
            if (xi >= 0 && xi < w) {
                const int yi = coord(yy);
                if (yi >= 0 && yi < h)
                    out[(size_t)y * w + x] = in[(size_t)yi * w + xi];
            }
            xx += a[0];
            yy += a[3];
        }
        xo += a[1];
        yo += a[4];
    }
}

/* Pillow's generic transform with its bilinear filter (bilinear_filter8 / 32RGB): each output
 * pixel centre mapped by a; outside the image 0; else the four neighbours (clipped to the image,
 * the lower row only where there is one) weighted in double, truncated */
static void bilinear_plane(const uint8_t *in, uint8_t *out, int h, int w, const double a[6]) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double xo = x + 0.5, yo = y + 0.5;
            double xin = a[0] * xo + a[1] * yo + a[2], yin = a[3] * xo + a[4] * yo + a[5];
            uint8_t *o = out + (size_t)y * w + x;
            if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h) {
                *o = 0;
                continue;
            }
            xin -= 0.5;
            yin -= 0.5;
            const int xi = floor_int(xin), yi = floor_int(yin);
            const double dx = xin - xi, dy = yin - yi;
            const uint8_t *row = in + (size_t)(yi < 0 ? 0 : yi < h ? yi : h - 1) * w;
            const int x0 = xi < 0 ? 0 : xi < w ? xi : w - 1, x1 = xi + 1 < 0 ? 0 : xi + 1 < w ? xi + 1 : w - 1;
            double v1 = row[x0] + (row[x1] - row[x0]) * dx, v2 = v1;
            if (yi + 1 >= 0 && yi + 1 < h) {
                row = in + (size_t)(yi + 1) * w;
                v2 = row[x0] + (row[x1] - row[x0]) * dx;
            }
            v1 = v1 + (v2 - v1) * dy;
            *o = (uint8_t)v1;
        }
}

static void affine(uint8_t *img, int c, int h, int w, const double a[6], int bilinear,
                   uint8_t *scratch) {
    const size_t plane = (size_t)h * (size_t)w;
    memcpy(scratch, img, plane * (size_t)c);
    for (int k = 0; k < c; k++)
        (bilinear ? bilinear_plane : affine_plane)(scratch + k * plane, img + k * plane, h, w, a);
}

/* CPython's math.radians and math.degrees */
static double radians(double deg) { return deg * (3.14159265358979323846 / 180.0); }
static double degrees(double rad) { return rad * (180.0 / 3.14159265358979323846); }

/* torchvision's _get_inverse_affine_matrix(center, angle 0, translate, scale 1, shear), in its
 * order of operations, then F.affine on a PIL image */
static void tv_affine(uint8_t *img, int c, int h, int w, double cx, double cy, double tx, double ty,
                      double shear_x, double shear_y, int bilinear, uint8_t *scratch) {
    const double rot = radians(0.0), sx = radians(shear_x), sy = radians(shear_y);
    const double a = cos(rot - sy) / cos(sy);
    const double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    const double cc = sin(rot - sy) / cos(sy);
    const double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    double m[6] = {d / 1.0, -b / 1.0, 0.0 / 1.0, -cc / 1.0, a / 1.0, 0.0 / 1.0};
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    affine(img, c, h, w, m, bilinear, scratch);
}

/* Python's round(v, 15) (correctly rounded to 15 decimals, as glibc's printf rounds) */
static double round15(double v) {
    char text[64];
    snprintf(text, sizeof text, "%.15f", v);
    return strtod(text, NULL);
}

/* Pillow's transposes: ROTATE_90 counter-clockwise, ROTATE_180, ROTATE_270 (square planes) */
static void turn(uint8_t *img, int c, int h, int w, int quarter, uint8_t *scratch) {
    const size_t plane = (size_t)h * (size_t)w;
    memcpy(scratch, img, plane * (size_t)c);
    for (int k = 0; k < c; k++) {
        const uint8_t *in = scratch + k * plane;
        uint8_t *out = img + k * plane;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const uint8_t v = in[(size_t)y * w + x];
                if (quarter == 1)
                    out[(size_t)(w - 1 - x) * h + y] = v;
                else if (quarter == 2)
                    out[(size_t)(h - 1 - y) * w + (w - 1 - x)] = v;
                else
                    out[(size_t)x * h + (h - 1 - y)] = v;
            }
    }
}

/* PIL's Image.rotate(angle, NEAREST, expand=False, center=None, fillcolor=0) */
static void rotate(uint8_t *img, int c, int h, int w, double angle, int bilinear, uint8_t *scratch) {
    double r = fmod(angle, 360.0); /* Python's %: the divisor's sign */
    if (r != 0.0 && r < 0.0)
        r += 360.0;
    if (r == 0.0)
        return;
    if (r == 180.0 || ((r == 90.0 || r == 270.0) && w == h)) {
        turn(img, c, h, w, r == 90.0 ? 1 : r == 180.0 ? 2 : 3, scratch);
        return;
    }
    const double cx = w / 2.0, cy = h / 2.0, t = -radians(r);
    double m[6] = {round15(cos(t)), round15(sin(t)), 0.0, round15(-sin(t)), round15(cos(t)), 0.0};
    const double x = -cx - 0, y = -cy - 0;
    const double m2 = m[0] * x + m[1] * y + m[2], m5 = m[3] * x + m[4] * y + m[5];
    m[2] = m2 + cx;
    m[5] = m5 + cy;
    affine(img, c, h, w, m, bilinear, scratch);
}

/* ---------------------------------------------------------------------------
 * Colour: Image.blend(degenerate, img, factor) (Blend.c: float32 alpha)
 * ------------------------------------------------------------------------- */

static void blend(const uint8_t *degenerate, uint8_t *img, size_t n, double factor) {
    const float alpha = (float)factor;
    if (alpha == 0.0f) {
        memcpy(img, degenerate, n);
    } else if (alpha == 1.0f) {
        return;
    } else if (alpha >= 0 && alpha <= 1.0f) {
        for (size_t i = 0; i < n; i++)
            img[i] = (uint8_t)((int)degenerate[i] + alpha * ((int)img[i] - (int)degenerate[i]));
    } else {
        for (size_t i = 0; i < n; i++) {
            const float t = (float)((int)degenerate[i] + alpha * ((int)img[i] - (int)degenerate[i]));
            img[i] = t <= 0.0f ? 0 : t >= 255.0f ? 255 : (uint8_t)t;
        }
    }
}

/* convert("L"): ITU-R 601-2 luma in Pillow's fixed point (Convert.c's L24) */
static void luma(const uint8_t *img, int c, size_t plane, uint8_t *out) {
    if (c == 1) {
        memcpy(out, img, plane);
        return;
    }
    for (size_t i = 0; i < plane; i++)
        out[i] = (uint8_t)((img[i] * 19595 + img[plane + i] * 38470 + img[2 * plane + i] * 7471 +
                            0x8000) >> 16);
}

static void color(uint8_t *img, int c, int h, int w, double factor, uint8_t *scratch) {
    const size_t plane = (size_t)h * (size_t)w;
    luma(img, c, plane, scratch);
    for (int k = 1; k < c; k++)
        memcpy(scratch + k * plane, scratch, plane);
    blend(scratch, img, plane * (size_t)c, factor);
}

static void contrast(uint8_t *img, int c, int h, int w, double factor, uint8_t *scratch) {
    const size_t plane = (size_t)h * (size_t)w;
    luma(img, c, plane, scratch);
    uint64_t sum = 0;
    for (size_t i = 0; i < plane; i++)
        sum += scratch[i];
    /* ImageStat's mean (integer sum over count, in double), then int(mean + 0.5) */
    const int mean = (int)((double)sum / (double)plane + 0.5);
    memset(scratch, mean, plane * (size_t)c);
    blend(scratch, img, plane * (size_t)c, factor);
}

/* filter(SMOOTH): the 3x3 kernel 1 1 1 / 1 5 1 / 1 1 1 over 13 (each weight rounded to float32),
 * summed in float32 from 0.5 (Pillow's rounding), rows below, centre, above; the border kept */
static void smooth(const uint8_t *in, uint8_t *out, int h, int w) {
    const float k1 = (float)(1.0 / 13.0), k5 = (float)(5.0 / 13.0);
    memcpy(out, in, (size_t)h * (size_t)w);
    for (int y = 1; y < h - 1; y++) {
        const uint8_t *up = in + (size_t)(y - 1) * w, *mid = in + (size_t)y * w,
                      *down = in + (size_t)(y + 1) * w;
        for (int x = 1; x < w - 1; x++) {
            float ss = 0.5f;
            ss += (float)down[x - 1] * k1 + (float)down[x] * k1 + (float)down[x + 1] * k1;
            ss += (float)mid[x - 1] * k1 + (float)mid[x] * k5 + (float)mid[x + 1] * k1;
            ss += (float)up[x - 1] * k1 + (float)up[x] * k1 + (float)up[x + 1] * k1;
            ss = ss < 0.0f ? 0.0f : ss;
            ss = ss > 255.0f ? 255.0f : ss;
            out[(size_t)y * w + x] = (uint8_t)ss;
        }
    }
}

static void sharpness(uint8_t *img, int c, int h, int w, double factor, uint8_t *scratch) {
    const size_t plane = (size_t)h * (size_t)w;
    for (int k = 0; k < c; k++)
        smooth(img + k * plane, scratch + k * plane, h, w);
    blend(scratch, img, plane * (size_t)c, factor);
}

/* ---------------------------------------------------------------------------
 * Lookup tables (ImageOps), per plane
 * ------------------------------------------------------------------------- */

static void apply_lut(uint8_t *p, size_t n, const uint8_t lut[256]) {
    for (size_t i = 0; i < n; i++)
        p[i] = lut[p[i]];
}

static void histogram(const uint8_t *p, size_t n, uint64_t h[256]) {
    memset(h, 0, 256 * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[p[i]]++;
}

static void autocontrast_plane(uint8_t *p, size_t n) {
    uint64_t h[256];
    histogram(p, n, h);
    int lo = 0, hi = 255;
    while (lo < 255 && !h[lo])
        lo++;
    while (hi > 0 && !h[hi])
        hi--;
    if (hi <= lo)
        return;
    const double scale = 255.0 / (hi - lo), offset = -lo * scale;
    uint8_t lut[256];
    for (int i = 0; i < 256; i++) {
        const int v = (int)(i * scale + offset);
        lut[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    apply_lut(p, n, lut);
}

static void equalize_plane(uint8_t *p, size_t n) {
    uint64_t h[256];
    histogram(p, n, h);
    uint64_t total = 0, last = 0;
    int used = 0;
    for (int i = 0; i < 256; i++)
        if (h[i]) {
            total += h[i];
            last = h[i];
            used++;
        }
    if (used <= 1)
        return;
    const uint64_t step = (total - last) / 255;
    if (!step)
        return;
    uint8_t lut[256];
    uint64_t acc = step / 2;
    for (int i = 0; i < 256; i++) {
        const uint64_t v = acc / step;
        lut[i] = (uint8_t)(v > 255 ? 255 : v); /* point()'s table clips */
        acc += h[i];
    }
    apply_lut(p, n, lut);
}

void rn_augment_apply(uint8_t *img, int c, int h, int w, int op, double magnitude, int bilinear,
                      uint8_t *scratch) {
    const size_t plane = (size_t)h * (size_t)w, n = plane * (size_t)c;
    uint8_t lut[256];
    switch (op) {
    case RN_AUG_SHEAR_X:
        tv_affine(img, c, h, w, 0, 0, 0, 0, degrees(atan(magnitude)), 0.0, bilinear, scratch);
        break;
    case RN_AUG_SHEAR_Y:
        tv_affine(img, c, h, w, 0, 0, 0, 0, 0.0, degrees(atan(magnitude)), bilinear, scratch);
        break;
    case RN_AUG_TRANSLATE_X: /* translate=[int(magnitude), 0] about the centre */
        tv_affine(img, c, h, w, w * 0.5, h * 0.5, (double)(int)magnitude, 0, 0.0, 0.0, bilinear,
                  scratch);
        break;
    case RN_AUG_TRANSLATE_Y:
        tv_affine(img, c, h, w, w * 0.5, h * 0.5, 0, (double)(int)magnitude, 0.0, 0.0, bilinear,
                  scratch);
        break;
    case RN_AUG_ROTATE:
        rotate(img, c, h, w, magnitude, bilinear, scratch);
        break;
    case RN_AUG_BRIGHTNESS:
        memset(scratch, 0, n);
        blend(scratch, img, n, 1.0 + magnitude);
        break;
    case RN_AUG_COLOR:
        color(img, c, h, w, 1.0 + magnitude, scratch);
        break;
    case RN_AUG_CONTRAST:
        contrast(img, c, h, w, 1.0 + magnitude, scratch);
        break;
    case RN_AUG_SHARPNESS:
        sharpness(img, c, h, w, 1.0 + magnitude, scratch);
        break;
    case RN_AUG_POSTERIZE: {
        const int bits = (int)magnitude, mask = ~((1 << (8 - bits)) - 1);
        for (int i = 0; i < 256; i++)
            lut[i] = (uint8_t)(i & mask);
        apply_lut(img, n, lut);
        break;
    }
    case RN_AUG_SOLARIZE:
        for (int i = 0; i < 256; i++)
            lut[i] = (uint8_t)(i < magnitude ? i : 255 - i);
        apply_lut(img, n, lut);
        break;
    case RN_AUG_AUTOCONTRAST:
        for (int k = 0; k < c; k++)
            autocontrast_plane(img + k * plane, plane);
        break;
    case RN_AUG_EQUALIZE:
        for (int k = 0; k < c; k++)
            equalize_plane(img + k * plane, plane);
        break;
    case RN_AUG_INVERT: /* ImageOps.invert */
        for (int i = 0; i < 256; i++)
            lut[i] = (uint8_t)(255 - i);
        apply_lut(img, n, lut);
        break;
    default: /* identity */
        break;
    }
}

/* torch.linspace(start, end, steps)[i] in float32, its scalar rule: from the start below half
 * way, from the end after */
static float linspace(float start, float end, int steps, int i) {
    const float step = (end - start) / (float)(steps - 1);
    return i < steps / 2 ? start + step * (float)i : end - step * (float)(steps - 1 - i);
}

/* RandAugment's and AutoAugment's _augmentation_space(bins, (h, w)): bin of the table */
static double space(int op, int bins, int bin, int h, int w) {
    if (bin < 0 || bin >= bins)
        return 0.0;
    switch (op) {
    case RN_AUG_SHEAR_X:
    case RN_AUG_SHEAR_Y:
        return linspace(0.0f, 0.3f, bins, bin);
    case RN_AUG_TRANSLATE_X: /* 150 / 331 of the side, in double as Python computes it */
        return linspace(0.0f, (float)(150.0 / 331.0 * w), bins, bin);
    case RN_AUG_TRANSLATE_Y:
        return linspace(0.0f, (float)(150.0 / 331.0 * h), bins, bin);
    case RN_AUG_ROTATE:
        return linspace(0.0f, 30.0f, bins, bin);
    case RN_AUG_BRIGHTNESS:
    case RN_AUG_COLOR:
    case RN_AUG_CONTRAST:
    case RN_AUG_SHARPNESS:
        return linspace(0.0f, 0.9f, bins, bin);
    case RN_AUG_POSTERIZE: /* 8 - (arange(bins) / ((bins - 1) / 4)).round(), in float32: no ties
                            * for 10 or 31 bins */
        return 8 - (int)nearbyintf((float)bin / ((float)(bins - 1) / 4.0f));
    case RN_AUG_SOLARIZE:
        return linspace(255.0f, 0.0f, bins, bin);
    default:
        return 0.0;
    }
}

double rn_rand_augment_magnitude(int op, int bin, int h, int w) {
    return space(op, RN_AUG_BINS, bin, h, w);
}

double rn_auto_augment_magnitude(int op, int bin, int h, int w) {
    return space(op, RN_AA_BINS, bin, h, w);
}

void rn_rand_augment(uint8_t *img, int c, int h, int w, int num_ops, int bin, int bilinear,
                     rn_rng *r, uint8_t *scratch) {
    for (int k = 0; k < num_ops; k++) {
        const int op = (int)(rn_rng_next(r) % RN_AUG_WIDE_OPS);
        double m = rn_rand_augment_magnitude(op, bin, h, w);
        if (rn_augment_op_signed(op) && (rn_rng_next(r) & 1))
            m = -m;
        rn_augment_apply(img, c, h, w, op, m, bilinear, scratch);
    }
}

void rn_trivial_augment(uint8_t *img, int c, int h, int w, int bilinear, rn_rng *r,
                        uint8_t *scratch, int *op, double *magnitude) {
    const int o = (int)(rn_rng_next(r) % RN_AUG_WIDE_OPS);
    const int bin = (int)(rn_rng_next(r) % RN_AUG_BINS);
    const int negative = (int)(rn_rng_next(r) & 1);
    double m = rn_augment_magnitude(o, bin);
    if (rn_augment_op_signed(o) && negative)
        m = -m;
    rn_augment_apply(img, c, h, w, o, m, bilinear, scratch);
    if (op)
        *op = o;
    if (magnitude)
        *magnitude = m;
}

/* ---------------------------------------------------------------------------
 * AutoAugment: torchvision's policies (AutoAugment._get_policies), each
 * sub-policy two steps of (operation, probability, magnitude bin or -1)
 * ------------------------------------------------------------------------- */

#define S(op, prob, bin) {RN_AUG_##op, prob, bin}
static const rn_aa_step POLICIES[RN_AA_POLICIES][RN_AA_SUBPOLICIES][2] = {
    {/* imagenet */
     {S(POSTERIZE, 0.4f, 8), S(ROTATE, 0.6f, 9)},
     {S(SOLARIZE, 0.6f, 5), S(AUTOCONTRAST, 0.6f, -1)},
     {S(EQUALIZE, 0.8f, -1), S(EQUALIZE, 0.6f, -1)},
     {S(POSTERIZE, 0.6f, 7), S(POSTERIZE, 0.6f, 6)},
     {S(EQUALIZE, 0.4f, -1), S(SOLARIZE, 0.2f, 4)},
     {S(EQUALIZE, 0.4f, -1), S(ROTATE, 0.8f, 8)},
     {S(SOLARIZE, 0.6f, 3), S(EQUALIZE, 0.6f, -1)},
     {S(POSTERIZE, 0.8f, 5), S(EQUALIZE, 1.0f, -1)},
     {S(ROTATE, 0.2f, 3), S(SOLARIZE, 0.6f, 8)},
     {S(EQUALIZE, 0.6f, -1), S(POSTERIZE, 0.4f, 6)},
     {S(ROTATE, 0.8f, 8), S(COLOR, 0.4f, 0)},
     {S(ROTATE, 0.4f, 9), S(EQUALIZE, 0.6f, -1)},
     {S(EQUALIZE, 0.0f, -1), S(EQUALIZE, 0.8f, -1)},
     {S(INVERT, 0.6f, -1), S(EQUALIZE, 1.0f, -1)},
     {S(COLOR, 0.6f, 4), S(CONTRAST, 1.0f, 8)},
     {S(ROTATE, 0.8f, 8), S(COLOR, 1.0f, 2)},
     {S(COLOR, 0.8f, 8), S(SOLARIZE, 0.8f, 7)},
     {S(SHARPNESS, 0.4f, 7), S(INVERT, 0.6f, -1)},
     {S(SHEAR_X, 0.6f, 5), S(EQUALIZE, 1.0f, -1)},
     {S(COLOR, 0.4f, 0), S(EQUALIZE, 0.6f, -1)},
     {S(EQUALIZE, 0.4f, -1), S(SOLARIZE, 0.2f, 4)},
     {S(SOLARIZE, 0.6f, 5), S(AUTOCONTRAST, 0.6f, -1)},
     {S(INVERT, 0.6f, -1), S(EQUALIZE, 1.0f, -1)},
     {S(COLOR, 0.6f, 4), S(CONTRAST, 1.0f, 8)},
     {S(EQUALIZE, 0.8f, -1), S(EQUALIZE, 0.6f, -1)},
    },
    {/* cifar10 */
     {S(INVERT, 0.1f, -1), S(CONTRAST, 0.2f, 6)},
     {S(ROTATE, 0.7f, 2), S(TRANSLATE_X, 0.3f, 9)},
     {S(SHARPNESS, 0.8f, 1), S(SHARPNESS, 0.9f, 3)},
     {S(SHEAR_Y, 0.5f, 8), S(TRANSLATE_Y, 0.7f, 9)},
     {S(AUTOCONTRAST, 0.5f, -1), S(EQUALIZE, 0.9f, -1)},
     {S(SHEAR_Y, 0.2f, 7), S(POSTERIZE, 0.3f, 7)},
     {S(COLOR, 0.4f, 3), S(BRIGHTNESS, 0.6f, 7)},
     {S(SHARPNESS, 0.3f, 9), S(BRIGHTNESS, 0.7f, 9)},
     {S(EQUALIZE, 0.6f, -1), S(EQUALIZE, 0.5f, -1)},
     {S(CONTRAST, 0.6f, 7), S(SHARPNESS, 0.6f, 5)},
     {S(COLOR, 0.7f, 7), S(TRANSLATE_X, 0.5f, 8)},
     {S(EQUALIZE, 0.3f, -1), S(AUTOCONTRAST, 0.4f, -1)},
     {S(TRANSLATE_Y, 0.4f, 3), S(SHARPNESS, 0.2f, 6)},
     {S(BRIGHTNESS, 0.9f, 6), S(COLOR, 0.2f, 8)},
     {S(SOLARIZE, 0.5f, 2), S(INVERT, 0.0f, -1)},
     {S(EQUALIZE, 0.2f, -1), S(AUTOCONTRAST, 0.6f, -1)},
     {S(EQUALIZE, 0.2f, -1), S(EQUALIZE, 0.6f, -1)},
     {S(COLOR, 0.9f, 9), S(EQUALIZE, 0.6f, -1)},
     {S(AUTOCONTRAST, 0.8f, -1), S(SOLARIZE, 0.2f, 8)},
     {S(BRIGHTNESS, 0.1f, 3), S(COLOR, 0.7f, 0)},
     {S(SOLARIZE, 0.4f, 5), S(AUTOCONTRAST, 0.9f, -1)},
     {S(TRANSLATE_Y, 0.9f, 9), S(TRANSLATE_Y, 0.7f, 9)},
     {S(AUTOCONTRAST, 0.9f, -1), S(SOLARIZE, 0.8f, 3)},
     {S(EQUALIZE, 0.8f, -1), S(INVERT, 0.1f, -1)},
     {S(TRANSLATE_Y, 0.7f, 9), S(AUTOCONTRAST, 0.9f, -1)},
    },
    {/* svhn */
     {S(SHEAR_X, 0.9f, 4), S(INVERT, 0.2f, -1)},
     {S(SHEAR_Y, 0.9f, 8), S(INVERT, 0.7f, -1)},
     {S(EQUALIZE, 0.6f, -1), S(SOLARIZE, 0.6f, 6)},
     {S(INVERT, 0.9f, -1), S(EQUALIZE, 0.6f, -1)},
     {S(EQUALIZE, 0.6f, -1), S(ROTATE, 0.9f, 3)},
     {S(SHEAR_X, 0.9f, 4), S(AUTOCONTRAST, 0.8f, -1)},
     {S(SHEAR_Y, 0.9f, 8), S(INVERT, 0.4f, -1)},
     {S(SHEAR_Y, 0.9f, 5), S(SOLARIZE, 0.2f, 6)},
     {S(INVERT, 0.9f, -1), S(AUTOCONTRAST, 0.8f, -1)},
     {S(EQUALIZE, 0.6f, -1), S(ROTATE, 0.9f, 3)},
     {S(SHEAR_X, 0.9f, 4), S(SOLARIZE, 0.3f, 3)},
     {S(SHEAR_Y, 0.8f, 8), S(INVERT, 0.7f, -1)},
     {S(EQUALIZE, 0.9f, -1), S(TRANSLATE_Y, 0.6f, 6)},
     {S(INVERT, 0.9f, -1), S(EQUALIZE, 0.6f, -1)},
     {S(CONTRAST, 0.3f, 3), S(ROTATE, 0.8f, 4)},
     {S(INVERT, 0.8f, -1), S(TRANSLATE_Y, 0.0f, 2)},
     {S(SHEAR_Y, 0.7f, 6), S(SOLARIZE, 0.4f, 8)},
     {S(INVERT, 0.6f, -1), S(ROTATE, 0.8f, 4)},
     {S(SHEAR_Y, 0.3f, 7), S(TRANSLATE_X, 0.9f, 3)},
     {S(SHEAR_X, 0.1f, 6), S(INVERT, 0.6f, -1)},
     {S(SOLARIZE, 0.7f, 2), S(TRANSLATE_Y, 0.6f, 7)},
     {S(SHEAR_Y, 0.8f, 4), S(INVERT, 0.8f, -1)},
     {S(SHEAR_X, 0.7f, 9), S(TRANSLATE_Y, 0.8f, 3)},
     {S(SHEAR_Y, 0.8f, 5), S(AUTOCONTRAST, 0.7f, -1)},
     {S(SHEAR_X, 0.7f, 2), S(INVERT, 0.1f, -1)},
    },
};
#undef S

const char *rn_auto_augment_policy_name(int policy) {
    static const char *const names[RN_AA_POLICIES] = {"imagenet", "cifar10", "svhn"};
    return policy >= 0 && policy < RN_AA_POLICIES ? names[policy] : "?";
}

const rn_aa_step *rn_auto_augment_subpolicy(int policy, int id) {
    if (policy < 0 || policy >= RN_AA_POLICIES || id < 0 || id >= RN_AA_SUBPOLICIES)
        return NULL;
    return POLICIES[policy][id];
}

void rn_auto_augment_apply(uint8_t *img, int c, int h, int w, int policy, int id,
                           const float probs[2], const int negative[2], int bilinear,
                           uint8_t *scratch) {
    const rn_aa_step *steps = rn_auto_augment_subpolicy(policy, id);
    if (!steps)
        return;
    for (int k = 0; k < 2; k++) {
        if (!(probs[k] <= steps[k].prob)) /* torch: a float32 tensor against the float */
            continue;
        double m = steps[k].bin >= 0 ? rn_auto_augment_magnitude(steps[k].op, steps[k].bin, h, w)
                                     : 0.0;
        if (rn_augment_op_signed(steps[k].op) && negative[k])
            m = -m;
        rn_augment_apply(img, c, h, w, steps[k].op, m, bilinear, scratch);
    }
}

void rn_auto_augment(uint8_t *img, int c, int h, int w, int policy, int bilinear, rn_rng *r,
                     uint8_t *scratch) {
    /* torchvision's get_params: the sub-policy, two probabilities, two signs */
    const int id = (int)(rn_rng_next(r) % RN_AA_SUBPOLICIES);
    float probs[2];
    int negative[2];
    probs[0] = rn_rng_uniform(r);
    probs[1] = rn_rng_uniform(r);
    negative[0] = (int)(rn_rng_next(r) & 1);
    negative[1] = (int)(rn_rng_next(r) & 1);
    rn_auto_augment_apply(img, c, h, w, policy, id, probs, negative, bilinear, scratch);
}
