/*
 * test_bf16.c - bf16 inference: the rounding (ties to even, NaN and
 * infinities kept), and every layer of a bf16 session against the float32
 * session on the same random model and input, within the stated tolerance
 * (bf16 keeps 8 significant bits: each operand is off by at most 2^-9
 * relative).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/session.h"
#include "model/model.h"
#include "ops/conv_algo.h"
#include "ops/kernels.h"
#include "ops/ops.h"
#include "check.h"

#define LAYER_TOL 3e-2  /* max |y_bf16 - y_fp32| / max |y_fp32| per layer */
/* ... where the pass runs Winograd on bf16 products (its U and V rounded too: about 3x the
 * error, conv_winograd.c): resnet50 at 64x64, batch 8, 0.033 (direct and GEMMs alone: 0.012) */
#define LAYER_TOL_WINO 6e-2

static float bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t ubits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void check_rounding(void) {
    float v[7] = {1.0f, bits(0x3F808000u), bits(0x3F818000u), bits(0x3F808001u), bits(0x7FC00001u),
                  bits(0x7F800000u), bits(0x7F7FFFFFu)};
    rn_round_bf16(v, 7);
    CHECK(ubits(v[0]) == 0x3F800000u, "1.0 stays");
    CHECK(ubits(v[1]) == 0x3F800000u, "a tie rounds to even (down): %08x", ubits(v[1]));
    CHECK(ubits(v[2]) == 0x3F820000u, "a tie rounds to even (up): %08x", ubits(v[2]));
    CHECK(ubits(v[3]) == 0x3F810000u, "above a tie rounds up: %08x", ubits(v[3]));
    CHECK(ubits(v[4]) == 0x7FC00001u, "NaN stays NaN: %08x", ubits(v[4]));
    CHECK(ubits(v[5]) == 0x7F800000u, "infinity stays");
    CHECK(ubits(v[6]) == 0x7F800000u, "FLT_MAX rounds to infinity in bf16: %08x", ubits(v[6]));
}

/* Each session's values, kept by the observer (ctx: the session's array), and whether each
 * came blocked by 16 channels: a stem's output fused with its pool (ops.h's layout), where one
 * session may fuse and the other not (bf16 on AMX runs the stem as a GEMM). */
static float *seen[256], *seen_bf16[256];
static int blocked[2][256]; /* [0]: seen's, [1]: seen_bf16's */
static void keep(void *ctx, int v, const float *x, size_t n, int blocked16) {
    float **into = ctx;
    if (v < 256) {
        free(into[v]);
        into[v] = malloc(n * sizeof *x);
        memcpy(into[v], x, n * sizeof *x);
        blocked[into == seen_bf16][v] = blocked16;
    }
}

/* p (c channels of `plane` floats, blocked by 16: channel 16 b + l of pixel q at
 * p[(b * plane + q) * 16 + l]) rewritten planar */
static void unblock(float *p, int c, size_t plane) {
    float *t = malloc((size_t)c * plane * sizeof *t);
    for (int ch = 0; ch < c; ch++)
        for (size_t q = 0; q < plane; q++)
            t[(size_t)ch * plane + q] = p[((size_t)(ch / 16) * plane + q) * 16 + ch % 16];
    memcpy(p, t, (size_t)c * plane * sizeof *t);
    free(t);
}

static void check_layers(const char *isa, const char *arch, rn_stem stem, int size, int n) {
    rn_model *m;
    CHECK(rn_model_create_stem(arch, 3, 10, stem, &m) == RN_OK, "create %s", arch);
    rn_model_init(m, "default", 3);
    size_t nx = (size_t)n * 3 * size * size;
    float *x = malloc(nx * sizeof *x), *y32 = malloc((size_t)n * 10 * sizeof *y32),
          *y16 = malloc((size_t)n * 10 * sizeof *y16);
    check_fill(x, nx, -1.0f, 1.0f);
    rn_session_config cfg;
    rn_session_config_default(&cfg);
    rn_session *a, *b;
    cfg.isa = isa;
    cfg.precision = "fp32";
    CHECK(rn_session_create(m, &cfg, &a) == RN_OK, "fp32 session");
    cfg.precision = "bf16";
    CHECK(rn_session_create(m, &cfg, &b) == RN_OK, "bf16 session");
    a->observe = b->observe = keep;
    a->observe_ctx = seen;
    b->observe_ctx = seen_bf16;
    CHECK(rn_session_forward(a, x, n, size, size, RN_MODE_EVAL, y32) == RN_OK, "fp32 forward");
    CHECK(rn_session_forward(b, x, n, size, size, RN_MODE_EVAL, y16) == RN_OK, "bf16 forward");
    CHECK(strcmp(rn_session_precision(b), "bf16") == 0, "bf16 session says so");
    char algos[256];
    CHECK(rn_session_algorithms(b, algos, sizeof algos) == RN_OK, "algorithms");
    /* Winograd on bf16 products: some Winograd layer, on kernels that multiply bf16 */
    int wino = 0;
    for (int i = 0; i < b->sc->n_nodes; i++)
        wino |= b->sc->nodes[i].op == RN_NODE_CONV && rn_conv_algo_is_winograd(b->algo[i]) &&
                rn_kernels_are_bf16(rn_conv_bf16_kernels(b->kconv, b->algo[i]));
    /* maps large enough (batch 8 at 64x64): Winograd on bf16 products wherever the path has
     * them (a bf16 descriptor of vector products; AMX keeps it on fp32) */
    if (n >= 8 && rn_kernels_are_bf16(b->kconv) && !b->kconv->matrix_tiles)
        CHECK(wino, "%s %s batch %d: Winograd ran on bf16 products", isa, arch, n);
    const double tol = wino ? LAYER_TOL_WINO : LAYER_TOL;
    double worst = 0.0;
    int layers = 0;
    for (int v = 1; v < a->sc->n_values && v < 256; v++) {
        if (!seen[v] || !seen_bf16[v])
            continue;
        const rn_value *val = &a->sc->values[v];
        const size_t plane = (size_t)n * val->h * val->w;
        if (blocked[0][v])
            unblock(seen[v], val->c, plane);
        if (blocked[1][v])
            unblock(seen_bf16[v], val->c, plane);
        double e = check_rel_err(seen_bf16[v], seen[v], rn_value_floats(a->sc, v, n));
        worst = e > worst ? e : worst;
        layers++;
        CHECK(e <= tol, "%s: value %d: bf16 vs fp32 rel err %.3g > %.0e", arch, v, e, tol);
    }
    CHECK(layers > 0, "%s: the per-layer values were seen (%d compared)", arch, layers);
    double el = check_rel_err(y16, y32, (size_t)n * 10);
    CHECK(el <= tol && el > 0.0, "%s logits: rel err %.3g (0 would mean bf16 did nothing)", arch, el);
    printf("test_bf16: %s %s %dx%d batch %d: %d layers, worst rel err %.3g, logits %.3g (%s)\n",
           rn_session_isa(b), arch, size, size, n, layers, worst, el, algos);
    for (int v = 0; v < 256; v++) {
        free(seen[v]), free(seen_bf16[v]);
        seen[v] = seen_bf16[v] = NULL;
    }
    rn_session_free(a);
    rn_session_free(b);
    rn_model_free(m);
    free(x), free(y32), free(y16);
}

int main(void) {
    check_rounding();
    /* every kernel path the host has: native bf16 products where the path has them
     * (rn_kernels_bf16), else fp32 kernels on rounded operands */
    const rn_kernels *ks[RN_ISA_COUNT];
    const int nk = check_kernel_paths("test_bf16", ks);
    for (int i = 0; i < nk; i++) {
        const char *isa = rn_isa_name(ks[i]->isa);
        check_layers(isa, "resnet18", RN_STEM_IMAGENET, ks[i]->isa == RN_ISA_PORTABLE ? 32 : 64, 2);
        check_layers(isa, "d2l_resnet18", RN_STEM_IMAGENET, 32, 2);
        /* maps large enough for Winograd in a bf16 pass (over 784 output pixels), on every path
         * but the slow portable one; the best path: the bottleneck network too */
        if (ks[i]->isa != RN_ISA_PORTABLE)
            check_layers(isa, "resnet18", RN_STEM_IMAGENET, 64, 8);
        if (i == 0) {
            check_layers(isa, "resnet50", RN_STEM_IMAGENET, 64, 2);
            check_layers(isa, "resnet50", RN_STEM_IMAGENET, 64, 8);
        }
    }
    return check_done("test_bf16");
}
