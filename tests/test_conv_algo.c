/*
 * test_conv_algo.c - which convolution algorithm the heuristic (conv_algo.c) gives each shape,
 * on every kernel path the host supports: the choices its measured tables promise (fp32, and on
 * bf16 products in inference and training, on matrix tiles too); and the shape validation every
 * algorithm starts from. The algorithms' numerics: test_conv2d.c.
 */
#include <stdio.h>

#include "ops/conv2d.h"
#include "ops/conv_algo.h"
#include "ops/kernels.h"
#include "check.h"
#include "conv_case.h"

/* A check named by a string built at run time. */
#define CHECK_WHAT(cond, what) CHECK(cond, "%s", what)

static void check_shape_init(void) {
    rn_conv_shape s = conv_case_shape(2, 3, 224, 224, 64, 7, 2, 3, 1);
    CHECK_WHAT(conv2d_shape_init(&s) && s.ho == 112 && s.wo == 112, "shape 224 7x7/2 p3 -> 112");
    s = conv_case_shape(1, 4, 5, 6, 8, 3, 1, 1, 1);
    CHECK_WHAT(conv2d_shape_init(&s) && s.ho == 5 && s.wo == 6, "shape 5x6 3x3 p1 -> 5x6");
    s = conv_case_shape(1, 3, 2, 2, 4, 5, 1, 1, 1);
    CHECK_WHAT(!conv2d_shape_init(&s), "shape rejects empty output");
    s = conv_case_shape(1, 6, 8, 8, 4, 3, 1, 1, 4);
    CHECK_WHAT(!conv2d_shape_init(&s), "shape rejects cin not divisible by groups");
    s = conv_case_shape(1, 4, 8, 8, 6, 3, 1, 1, 4);
    CHECK_WHAT(!conv2d_shape_init(&s), "shape rejects cout not divisible by groups");
    s = conv_case_shape(1, 4, 8, 8, 4, 3, 0, 1, 1);
    CHECK_WHAT(!conv2d_shape_init(&s), "shape rejects stride 0");
}

/* The heuristic's picks that its measured tables (conv_algo.c) promise: `want` on the 6 x 16
 * direct tile (AVX2, C), `wide` on the 14 x 32 one (AVX-512; -1: the same). */
static void check_heuristic(const rn_kernels *kd) {
#define SHAPE(N, CI, H, CO, K, S, P)                                                               \
    {.n = N, .cin = CI, .h = H, .w = H, .cout = CO, .kh = K, .kw = K, .stride = S, .pad = P,       \
     .groups = 1}
    static const struct {
        rn_conv_shape s;
        int want, wide;
        const char *what;
    } cases[] = {
        {SHAPE(1, 3, 224, 64, 7, 2, 3), RN_CONV_DIRECT, -1, "the 7x7/2 stem"},
        {SHAPE(128, 16, 28, 16, 3, 1, 1), RN_CONV_WINOGRAD, -1, "3x3 16->16"},
        {SHAPE(128, 32, 14, 64, 3, 2, 1), RN_CONV_DIRECT, -1, "3x3/2 32->64"},
        {SHAPE(128, 32, 14, 32, 3, 1, 1), RN_CONV_WINOGRAD, -1, "3x3 32->32 at 14"},
        /* a small map at batch 1: Winograd where its weights stay in cache, else direct on
         * the wide tile */
        {SHAPE(1, 256, 14, 256, 3, 1, 1), RN_CONV_WINOGRAD, -1, "3x3 256->256 at 14"},
        {SHAPE(1, 128, 4, 128, 3, 1, 1), RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3 128->128 at 4"},
        {SHAPE(1, 64, 56, 64, 3, 1, 1), RN_CONV_WINOGRAD, -1, "3x3 64->64 at 56"},
        {SHAPE(128, 16, 28, 32, 1, 2, 0), RN_CONV_POINTWISE, -1, "1x1/2 16->32"},
        /* 1x1 on small maps: the wide tile's rows are the whole map */
        {SHAPE(1, 2048, 7, 512, 1, 1, 0), RN_CONV_POINTWISE, RN_CONV_DIRECT, "1x1 2048->512 at 7"},
        {SHAPE(1, 1024, 14, 256, 1, 1, 0), RN_CONV_POINTWISE, RN_CONV_DIRECT, "1x1 1024->256 at 14"},
        {SHAPE(1, 512, 28, 256, 1, 1, 0), RN_CONV_POINTWISE, -1, "1x1 512->256 at 28"},
        {SHAPE(32, 2048, 7, 512, 1, 1, 0), RN_CONV_POINTWISE, -1, "1x1 2048->512 at 7"},
        {SHAPE(1, 1024, 14, 2048, 1, 2, 0), RN_CONV_IM2COL, RN_CONV_DIRECT, "1x1/2 1024->2048 at 14"},
        {SHAPE(1, 256, 56, 512, 1, 2, 0), RN_CONV_IM2COL, -1, "1x1/2 256->512 at 56"},
        /* ResNet's last stage at batch 1, 2, and 8 (at 1 F(2x2) on every tile since the
         * GEMM kernels ask for A ahead: conv_algo.c) */
        {SHAPE(1, 512, 7, 512, 3, 1, 1), RN_CONV_WINOGRAD2, -1, "3x3 512->512 at 7"},
        {SHAPE(2, 512, 7, 512, 3, 1, 1), RN_CONV_WINOGRAD2, -1, "3x3 512->512 at 7"},
        {SHAPE(8, 512, 7, 512, 3, 1, 1), RN_CONV_WINOGRAD, -1, "3x3 512->512 at 7"},
        /* a strided window at batch 1; at batch 32 only where its weights stay in L2 (up to 3 MB) */
        {SHAPE(1, 128, 28, 256, 3, 2, 1), RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3/2 128->256 at 28"},
        {SHAPE(32, 128, 28, 256, 3, 2, 1), RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3/2 128->256 at 28"},
        {SHAPE(32, 256, 28, 256, 3, 2, 1), RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3/2 256->256 at 28"},
        {SHAPE(32, 256, 14, 512, 3, 2, 1), RN_CONV_IM2COL, -1, "3x3/2 256->512 at 14"},
        /* not where output rows of 2 would fill a seventh of the wide tile (d2l_resnet18 at
         * 28x28); rows of 4 fill it more than half */
        {SHAPE(256, 128, 4, 256, 3, 2, 1), RN_CONV_IM2COL, -1, "3x3/2 128->256 at 4"},
        {SHAPE(256, 64, 7, 128, 3, 2, 1), RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3/2 64->128 at 7"},
        /* ... but on rows of 3 where the whole output is small (9 pixels) */
        {SHAPE(1, 512, 3, 512, 3, 1, 1), RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3 512->512 at 3"},
        /* 2x2 maps at stride 1: the small-map product from batch 128; F(2x2) below (64: 256
         * tiles), and at batch 1 the wide direct tile's small-map rule, else im2col */
        {SHAPE(256, 256, 2, 256, 3, 1, 1), RN_CONV_SMALLMAP, -1, "3x3 256->256 at 2x2"},
        {SHAPE(128, 256, 2, 256, 3, 1, 1), RN_CONV_SMALLMAP, -1, "3x3 256->256 at 2x2"},
        {SHAPE(64, 256, 2, 256, 3, 1, 1), RN_CONV_WINOGRAD2, -1, "3x3 256->256 at 2x2"},
        {SHAPE(1, 256, 2, 256, 3, 1, 1), RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3 256->256 at 2x2"},
        /* strided, where every block is a live tap (d2l_resnet18's 3x3/2 at 28x28: 2x2 -> 1x1),
         * from batch 128; the uncropped window's shape (the cropped one, 2x2, too) */
        {SHAPE(256, 256, 2, 512, 3, 2, 1), RN_CONV_SMALLMAP, -1, "3x3/2 256->512 at 2x2"},
        {SHAPE(256, 256, 2, 512, 2, 2, 0), RN_CONV_SMALLMAP, -1, "2x2/2 256->512 at 2x2"},
        {SHAPE(32, 256, 2, 512, 3, 2, 1), RN_CONV_IM2COL, -1, "3x3/2 256->512 at 2x2"},
        /* not where a block of its matrix would be zeros (a 3x3 window on 1x3 misses a column):
         * the small map's rule of the wide direct tile, else im2col */
        {{.n = 64, .cin = 32, .h = 1, .w = 3, .cout = 32, .kh = 3, .kw = 3, .stride = 1, .pad = 1,
          .groups = 1}, RN_CONV_IM2COL, RN_CONV_DIRECT, "3x3 32->32 at 1x3"},
    };
#undef SHAPE
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rn_conv_shape s = cases[i].s;
        const int on_wide = kd->direct_mr >= RN_DIRECT_AVX512_MR && cases[i].wide >= 0;
        const int want = on_wide ? cases[i].wide : cases[i].want;
        char what[128];
        snprintf(what, sizeof what, "heuristic: %s, batch %d, by %s (%d x %d direct tile)",
                 cases[i].what, s.n, rn_conv_algo_get(want)->name, kd->direct_mr, kd->direct_nr);
        CHECK_WHAT(conv2d_shape_init(&s) && (int)rn_conv_algo_choose(kd, &s) == want, what);
    }
    /* on bf16 products: Winograd and direct stay, the rest become a GEMM (pointwise unless
     * im2col is forced); kb, the portable bf16 kernels: a narrow direct tile */
    const rn_kernels *kb = rn_kernels_bf16(rn_kernels_for(RN_ISA_PORTABLE));
    rn_conv_shape one = {.n = 1, .cin = 64, .h = 7, .w = 7, .cout = 64, .kh = 1, .kw = 1,
                         .stride = 1, .groups = 1};
    rn_conv_shape three = one;
    three.kh = three.kw = 3, three.pad = 1;
    CHECK_WHAT(conv2d_shape_init(&one) && conv2d_shape_init(&three) &&
              rn_conv_algo_for_bf16(kb, RN_CONV_WINOGRAD, -1, 1, &three) == RN_CONV_WINOGRAD &&
              rn_conv_algo_for_bf16(kb, RN_CONV_WINOGRAD2, RN_CONV_WINOGRAD2, 1, &three) ==
                  RN_CONV_WINOGRAD2 &&
              rn_conv_algo_for_bf16(kb, RN_CONV_DIRECT, -1, 1, &three) == RN_CONV_DIRECT &&
              rn_conv_algo_for_bf16(kb, RN_CONV_DIRECT, RN_CONV_DIRECT, 1, &one) == RN_CONV_DIRECT &&
              rn_conv_algo_for_bf16(kb, RN_CONV_IM2COL, -1, 1, &one) == RN_CONV_POINTWISE &&
              rn_conv_algo_for_bf16(kb, RN_CONV_IM2COL, RN_CONV_IM2COL, 1, &one) == RN_CONV_IM2COL &&
              rn_conv_algo_for_bf16(kb, RN_CONV_IM2COL, -1, 1, &three) == RN_CONV_IM2COL,
          "bf16: Winograd and direct kept, a 1x1 GEMM pointwise, forced im2col kept");
    /* the small-map product stays in training (a GEMM on the bf16 kernels already), on matrix
     * tiles too, and where forced; bf16 inference takes F(2x2) on bf16 products instead */
    rn_conv_shape two = three;
    two.n = 256, two.h = two.w = 2, two.cin = two.cout = 256;
    rn_kernels amx = *kb;
    amx.matrix_tiles = 1;
    CHECK_WHAT(conv2d_shape_init(&two) &&
              rn_conv_algo_for_bf16(kb, RN_CONV_SMALLMAP, -1, 0, &two) == RN_CONV_SMALLMAP &&
              rn_conv_algo_for_bf16(&amx, RN_CONV_SMALLMAP, -1, 0, &two) == RN_CONV_SMALLMAP &&
              rn_conv_algo_for_bf16(&amx, RN_CONV_SMALLMAP, -1, 1, &two) == RN_CONV_SMALLMAP &&
              rn_conv_algo_for_bf16(kb, RN_CONV_SMALLMAP, RN_CONV_SMALLMAP, 1, &two) ==
                  RN_CONV_SMALLMAP &&
              rn_conv_algo_for_bf16(kb, RN_CONV_SMALLMAP, -1, 1, &two) == RN_CONV_WINOGRAD2,
          "bf16: 3x3 on 2x2 keeps the small-map product in training, on matrix tiles and where "
          "forced; F(2x2) in inference");
    /* a small map at stride 1: the direct tile where it has bf16 pairs, unless forced */
    rn_conv_shape small = three;
    small.h = small.w = 14, small.cin = small.cout = 256;
    const rn_kernels *kw = rn_kernels_bf16(rn_kernels_for(RN_ISA_AVX512));
    if (conv2d_shape_init(&small) && kw && kw->direct_mr >= RN_DIRECT_AVX512_MR)
        CHECK_WHAT(rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 1, &small) == RN_CONV_DIRECT &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, RN_CONV_WINOGRAD, 1, &small) ==
                      RN_CONV_WINOGRAD &&
                  rn_conv_algo_for_bf16(rn_kernels_for(RN_ISA_AVX512), RN_CONV_WINOGRAD, -1, 1,
                                        &small) == RN_CONV_WINOGRAD,
              "bf16, 3x3 256->256 at 14x14, batch 1: direct on bf16 pairs, Winograd where forced "
              "or emulated");
    /* on matrix tiles (AMX): the GEMM for direct layers and for Winograd's above 128 input
     * channels, unless forced; a strided 1x1 at batch 1 by im2col (its B packed whole) */
    rn_kernels tiles = *kb;
    tiles.matrix_tiles = 1;
    rn_conv_shape narrow = small, stride2 = three, one2 = one;
    narrow.cin = narrow.cout = 128;
    stride2.stride = one2.stride = 2, stride2.h = stride2.w = one2.h = one2.w = 14;
    CHECK_WHAT(conv2d_shape_init(&narrow) && conv2d_shape_init(&stride2) &&
              conv2d_shape_init(&one2) &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_WINOGRAD, -1, 1, &small) == RN_CONV_IM2COL &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_WINOGRAD, RN_CONV_WINOGRAD, 1, &small) ==
                  RN_CONV_WINOGRAD &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_WINOGRAD, -1, 1, &narrow) == RN_CONV_WINOGRAD &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_DIRECT, -1, 1, &stride2) == RN_CONV_IM2COL &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_DIRECT, RN_CONV_DIRECT, 1, &stride2) ==
                  RN_CONV_DIRECT &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_DIRECT, -1, 1, &one) == RN_CONV_POINTWISE &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_IM2COL, -1, 1, &one2) == RN_CONV_IM2COL &&
              rn_conv_algo_for_bf16(&tiles, RN_CONV_POINTWISE, RN_CONV_POINTWISE, 1, &one2) ==
                  RN_CONV_POINTWISE,
          "bf16 on matrix tiles: direct and wide Winograd layers a GEMM, unless forced");
    /* inference: a strided window the heuristic gave to im2col goes to the direct tile where it
     * multiplies bf16 pairs (not when forced, not in training, not on matrix tiles) */
    rn_conv_shape wide2 = three;
    wide2.n = 32, wide2.h = wide2.w = 14, wide2.cin = 256, wide2.cout = 512, wide2.stride = 2;
    if (conv2d_shape_init(&wide2) && kw && kw->direct_mr >= RN_DIRECT_AVX512_MR)
        CHECK_WHAT(rn_conv_algo_for_bf16(kw, RN_CONV_IM2COL, -1, 1, &wide2) == RN_CONV_DIRECT &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_IM2COL, RN_CONV_IM2COL, 1, &wide2) ==
                      RN_CONV_IM2COL &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_IM2COL, -1, 0, &wide2) == RN_CONV_IM2COL &&
                  rn_conv_algo_for_bf16(&tiles, RN_CONV_IM2COL, -1, 1, &wide2) == RN_CONV_IM2COL &&
                  rn_conv_algo_for_bf16(rn_kernels_for(RN_ISA_AVX512), RN_CONV_IM2COL, -1, 1,
                                        &wide2) == RN_CONV_IM2COL,
              "bf16 inference, 3x3/2 256->512 at 14x14, batch 32: direct on bf16 pairs; im2col "
              "where forced, in training, on matrix tiles or emulated");
    /* ... but not on output rows of 2 (a seventh of the tile), nor on a map im2col crops */
    rn_conv_shape rows2 = wide2, cropped = wide2;
    rows2.n = cropped.n = 256, rows2.h = rows2.w = 4, rows2.cin = 128, rows2.cout = 256;
    cropped.h = cropped.w = 2;
    if (conv2d_shape_init(&rows2) && conv2d_shape_init(&cropped) && kw &&
        kw->direct_mr >= RN_DIRECT_AVX512_MR)
        CHECK_WHAT(rn_conv_algo_for_bf16(kw, RN_CONV_IM2COL, -1, 1, &rows2) == RN_CONV_IM2COL &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_IM2COL, -1, 1, &cropped) == RN_CONV_IM2COL,
              "bf16 inference, 3x3/2 at batch 256 to 2x2 and to 1x1: im2col");
    rn_conv_shape seven = three, four = three, eight = three;
    seven.n = four.n = 32, four.h = four.w = 4;
    eight.n = 128, eight.h = eight.w = 8, eight.cin = eight.cout = 256;
    if (conv2d_shape_init(&seven) && conv2d_shape_init(&four) && conv2d_shape_init(&eight) && kw &&
        kw->direct_mr >= RN_DIRECT_AVX512_MR)
        CHECK_WHAT(rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 0, &seven) == RN_CONV_DIRECT &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 1, &seven) ==
                      RN_CONV_WINOGRAD &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 0, &four) == RN_CONV_WINOGRAD &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 1, &four) == RN_CONV_WINOGRAD &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 0, &eight) == RN_CONV_WINOGRAD,
              "bf16, batch 32: 7x7 maps direct on bf16 pairs in training, Winograd in inference; "
              "4x4 ones Winograd, and 8x8 ones in training (batch 128: whole F(4x4) tiles)");
    /* in inference the switch is where 14x14 maps outgrow 392 output pixels (batch 2 direct,
     * batch 3 Winograd) and 7x7 ones, narrower than the tile, 196 (batch 4, batch 5); in
     * training, against Winograd on fp32 products, 784 (14x14 at batch 4 direct, 5 Winograd) */
    rn_conv_shape b4 = three, b5 = three, m2 = three, m3 = three, m4 = three, m5 = three;
    b4.n = 4, b5.n = 5, m2.n = 2, m3.n = 3, m4.n = 4, m5.n = 5;
    m2.h = m2.w = m3.h = m3.w = m4.h = m4.w = m5.h = m5.w = 14;
    if (conv2d_shape_init(&b4) && conv2d_shape_init(&b5) && conv2d_shape_init(&m2) &&
        conv2d_shape_init(&m3) && conv2d_shape_init(&m4) && conv2d_shape_init(&m5) && kw &&
        kw->direct_mr >= RN_DIRECT_AVX512_MR)
        CHECK_WHAT(rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 1, &b4) == RN_CONV_DIRECT &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 1, &b5) == RN_CONV_WINOGRAD &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 1, &m2) == RN_CONV_DIRECT &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 1, &m3) == RN_CONV_WINOGRAD &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 0, &m4) == RN_CONV_DIRECT &&
                  rn_conv_algo_for_bf16(kw, RN_CONV_WINOGRAD, -1, 0, &m5) == RN_CONV_WINOGRAD,
              "bf16 inference: 7x7 maps direct up to batch 4, 14x14 up to batch 2; training: "
              "14x14 up to batch 4");
}

int main(void) {
    check_shape_init();
    const rn_kernels *ks[RN_ISA_COUNT];
    const int nk = check_kernel_paths("test_conv_algo", ks);
    for (int i = 0; i < nk; i++)
        check_heuristic(ks[i]);
    return check_done("test_conv_algo");
}
