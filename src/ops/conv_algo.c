/*
 * conv_algo.c - the registry of convolution algorithms and the heuristic
 * that picks one per layer (contract in conv_algo.h).
 */
#include "ops/conv_algo.h"
#include "ops/conv_smallmap.h"

#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "ops/kernels.h"

static const rn_conv_algo *const ALGOS[RN_CONV_ALGO_COUNT] = {
    [RN_CONV_IM2COL] = &rn_conv_im2col,
    [RN_CONV_POINTWISE] = &rn_conv_pointwise,
    [RN_CONV_WINOGRAD] = &rn_conv_winograd,
    [RN_CONV_WINOGRAD2] = &rn_conv_winograd2,
    [RN_CONV_DIRECT] = &rn_conv_direct,
    [RN_CONV_SMALLMAP] = &rn_conv_smallmap,
};

const rn_conv_algo *rn_conv_algo_get(int id) {
    return id >= 0 && id < RN_CONV_ALGO_COUNT ? ALGOS[id] : NULL;
}

int rn_conv_algo_find(const char *name) {
    for (int i = 0; name && i < RN_CONV_ALGO_COUNT; i++)
        if (ALGOS[i] && strcmp(ALGOS[i]->name, name) == 0)
            return i;
    return -1;
}

void rn_conv_algo_format(const int count[RN_CONV_ALGO_COUNT], char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (int a = 0; a < RN_CONV_ALGO_COUNT; a++)
        if (count[a] && used < cap)
            used += (size_t)snprintf(buf + used, cap - used, "%s%s x%d", used ? ", " : "",
                                     ALGOS[a]->name, count[a]);
}

rn_status rn_conv_algo_parse(const char *name, int *id) {
    *id = -1;
    if (!name || !*name || strcmp(name, "auto") == 0)
        return RN_OK;
    *id = rn_conv_algo_find(name);
    if (*id >= 0)
        return RN_OK;
    char names[128] = "auto";
    for (int i = 0; i < RN_CONV_ALGO_COUNT; i++)
        if (ALGOS[i])
            snprintf(names + strlen(names), sizeof names - strlen(names), ", %s", ALGOS[i]->name);
    return rn_fail(RN_ERR_ARG, "unknown convolution algorithm '%s' (expected %s)", name, names);
}

/* Winograd's transformed weights (36 x C x K floats for F(4x4)) are read once
 * per block of tiles: with few tiles that reading costs more than the
 * products it saves. Measured (dev/bench_conv, Zen 3, AVX2, effective GFLOP/s
 * on 1 / 2 threads), 512 -> 512 channels at 7x7 (38 MB of F(4x4) weights,
 * 4 tiles per image; F(2x2): 17 MB, 16 tiles):
 *     batch 1: im2col 62-74 / 119-141, F(4x4) 43-54 / 82-104, F(2x2) 83-112 / 162-233
 *     batch 2: im2col 72 / 137-141,   F(4x4) 80 / 158-163,    F(2x2) 104 / 175-184
 *     batch 4: im2col 75 / 124-134,   F(4x4) 169 / 287-298,   F(2x2) 91 / 167-174
 * and 256 -> 256 at 14x14, batch 1 (16 tiles, 9 MB): F(4x4) 1.7x im2col. */
#define WINO_MIN_TILES 8
#define WINO_CACHED_BYTES (16u << 20) /* weights that stay in the last-level cache */
#define WINO_MIN_TILES_UNCACHED 16
/* 256 -> 256 channels at 2x2, batch 128 (`bench_conv -m narrow -b 128`, Zen 3,
 * AVX2, 2 threads, four runs): im2col 75-127 effective GFLOP/s, Winograd 72-96. */
#define WINO_MIN_OUTPUTS_PER_TILE 6 /* of 16: 3x3 maps (9) pass, 2x2 (4) do not */
/* F(2x2) where F(4x4) does not pay: a full GEMM panel of tiles, maps that fill
 * three quarters of their 2x2 tiles (7x7: 49 of 64), and channels enough that
 * its transforms (in C + K per tile) stay small beside the products (C x K).
 * `bench_conv -m narrow`, AVX2 transforms, Zen 3, effective GFLOP/s on 1 / 2
 * threads: batch 1, 64 -> 64 at 7x7 F(2x2) 90 / 89, im2col 58 / 61; 128 -> 128
 * at 7x7 119 / 88 against 67 / 69; 16 -> 16 at 28x28 35 against 35 (F(4x4) 78);
 * batch 256, 256 -> 256 at 2x2 (2 threads) 244 against 89. */
#define WINO2_MIN_TILES 16
#define WINO2_MIN_CHANNELS 64

static int winograd_pays(const rn_conv_shape *s) {
    const long per_image = (long)((s->ho + 3) / 4) * ((s->wo + 3) / 4);
    const long tiles = (long)s->n * per_image;
    const double weight_bytes = 36.0 * 4.0 * s->cin * s->cout;
    /* 36 multiplications per tile against 9 per output directly: a map
     * that fills too little of its 4x4 tiles (2x2: a quarter) saves none */
    const int fills = (long)s->ho * s->wo >= WINO_MIN_OUTPUTS_PER_TILE * per_image;
    return fills && tiles >= WINO_MIN_TILES &&
           (weight_bytes <= WINO_CACHED_BYTES || tiles >= WINO_MIN_TILES_UNCACHED);
}

static int winograd2_pays(const rn_conv_shape *s) {
    const long per_image = (long)((s->ho + 1) / 2) * ((s->wo + 1) / 2);
    const int fills = (long)s->ho * s->wo >= 3 * per_image; /* of 4 outputs per tile */
    return fills && (long)s->n * per_image >= WINO2_MIN_TILES && s->cin >= WINO2_MIN_CHANNELS &&
           s->cout >= WINO2_MIN_CHANNELS;
}

/* A strided 1x1 convolution: im2col while it packs its B whole, once (few output columns:
 * batch 1), else pointwise, whose one subsampling pass beats im2col's strided packing per
 * band of output rows (`bench_conv -m resnet50 -s 1x1/2`, Zen 3, AVX2, 2 threads: batch 32
 * 114-139 effective GFLOP/s against 70-91; batch 1 im2col 108-147 against 103-136). */
static int strided_1x1_by_im2col(const rn_kernels *k, const rn_conv_shape *s) {
    return s->stride > 1 && rn_conv_im2col.workspace_floats(k, s, 1) > 0; /* B packed whole */
}

/* Direct convolution where the input has this many channels or fewer: the stems, where a
 * GEMM packs a gather of few, strided taps into every panel and Winograd's transforms cost
 * more than the products they save. `bench_conv -m stems`, Zen 3, AVX2, 2 threads, two runs,
 * effective GFLOP/s, direct against im2col (Winograd):
 *     7x7/2 3->64 at 224: batch 1 125-152 / 89-125, batch 32 125-129 / 85-87, batch 128
 *                         127-148 / 102-103 (1 thread, batch 1: 65-77 / 44-60)
 *     7x7/2 1->64 at 96:  batch 1 104-138 / 73-91, batch 128 65-114 / 52-79
 *     7x7/2 1->64 at 28:  batch 1 67-90 / 25-36, batch 128 58-81 / 45-73, batch 256 69 / 60
 *     3x3 3->64 at 32:    batch 1 64-87 / 57-88 (46-52), batch 128 51-55 / 48-48 (32-33)
 *     3x3 1->64 at 28:    batch 1 30-45 / 16-29 (12-13), batch 128 28-34 / 29-34 (12-15) */
#define DIRECT_MAX_CHANNELS 4
/* ... and for a strided window on narrow inputs: 32 channels or fewer (64 with the 14 x 32
 * tile), where im2col's strided packing passes over memory more than the products it feeds.
 * `bench_conv -m narrow`, Zen 3, AVX2, batch 1 / 128, three runs, effective GFLOP/s, direct
 * against im2col: 3x3/2 16->32 at 28, 2 threads: 51-97 / 88-109 against 38-44 / 52-76;
 * 1 thread 45-59 / 50-54 against 25-35 / 32-33; 3x3/2 32->64 at 14, 2 threads: 56-69 / 72-79
 * against 30-31 / 57-72; with the 14 x 32 tile (Zen 5, 2 threads, batch 128, `profile_train` on
 * resnet18 width 16): 64 -> 128 at 56x56 57 / 74 ms forward / data gradient against im2col's
 * 70 / 85. Not a strided 1x1 16->32 (direct 10-27 against pointwise 13-45).
 * At stride 1 Winograd takes the narrow windows too, now that its threads split the tiles
 * (conv_winograd.c): `bench_conv -m narrow`, AMD EPYC Zen 5, 2 threads, effective GFLOP/s,
 * Winograd F(4x4) against direct: batch 128, 16->16 at 28x28 256-309 against 226-231, 32->32
 * at 14x14 347-365 against 297-300, at 28x28 427-462 against 265-271; batch 1 and 8 the same
 * way; the fmnist-fast network's training step (`profile_train`, interleaved) 193-194 -> 181 ms
 * on AVX-512, 264-266 -> 246-255 on AVX2. */
#define DIRECT_MAX_CHANNELS_STRIDED 32

/* ... and, with the 14 x 32 tile (AVX-512), for windows on few output pixels. Strided, at most
 * 1024 (resnet18's three at batch 1 and 4): `bench_conv`, batch 1 direct 372-399 against
 * im2col 279-336, batch 4 344-382 against 323-351; inside resnet18 at batch 1 0.31 / 0.33 /
 * 0.49-0.53 ms against 0.36 / 0.39 / 0.58. Not at batch 32: 512 -> 512 at 14x14 stride 2, 232
 * against 299 (a round of one 0.5 MB image reads all 9.4 MB of weights).
 * At stride 1, small maps where Winograd does not pay (winograd_pays, winograd2_pays): a map
 * of 4x4 at batch 1, 166-175 effective GFLOP/s in `bench_conv -m narrow`, Zen 5, 2 threads,
 * against im2col's 158; up to 256 pixels (7x7 up to batch 5). Not one 7x7 map whose F(2x2)
 * weights (16/9 of these) come from memory, since the GEMM kernels ask for their A panels
 * ahead (gemm_avx512.c): inside resnet18 at batch 1, 3x3 512 -> 512 at 7x7 (`profile_layers`,
 * AMD EPYC Zen 5, 2 threads, alternated, 5 rounds) F(2x2) 0.61-0.64 ms against direct's
 * 0.67-0.71 (before that prefetch direct had won there, 0.89-0.93 against 0.98-1.01; on the
 * Xeons with AMX, whose direct tile runs at 70-75 GFLOP/s a core against the GEMM kernel's
 * 105, F(2x2) always had: 1.42-1.63 against 1.85-2.14); from two images on F(2x2) wins on
 * both (Zen 5 batch 2 1.39-1.44 against 1.56-1.59). The 14 x 32 tile also takes strided
 * windows on up to 64 channels. */
#define DIRECT_WIDE_MR 14
#define DIRECT_WIDE_MAX_PIXELS 256 /* stride 1 */
#define DIRECT_WIDE_MAX_PIXELS_STRIDED 1024
#define DIRECT_WIDE_MAX_CHANNELS_STRIDED 64
/* ... and strided windows whose weights stay in L2 beside a round's input, at any batch:
 * `bench_conv -b 32 -s 3x3/2`, AMD EPYC Zen 5, 2 threads, four runs, effective GFLOP/s, direct
 * against im2col: 128->128 at 56x56 (0.6 MB) 248-268 against 198-230, 128->256 at 28x28 (1.2
 * MB) 261-269 against 250-260; 256->256 at 28x28 (2.4 MB) 315-332 against 286-292 (level, 260-277
 * against 255-258, when this rule was first measured; stop 60, inside resnet50's
 * pass, `profile_layers -b 32`, alternated, 22.9-23.1 ms against 26.1-26.7); not 256->512 at
 * 14x14 (4.7 MB: 297-311 against 323-336) nor 512->512 (9.4 MB: 307-310 against 322-324). */
#define DIRECT_WIDE_MAX_WEIGHT_BYTES_STRIDED (3.0 * 1024 * 1024)
/* ... and 1x1 on output maps of at most 256 pixels (14x14 at batch 1, 7x7 up to 5): its
 * rows are the whole map (conv_direct.c), so a 7x7 map fills 3.5 tiles of 14 pixels where the
 * GEMM spends 64 columns on 49. `bench_conv -m resnet50 -b 1 -s 1x1`, AMD EPYC Zen 5, 2
 * threads, two runs, effective GFLOP/s, direct against pointwise: 512->2048 at 7x7 378-385
 * against 282-292, 2048->512 339-343 against 249-254, 1024->256 at 14x14 305-325 against
 * 276-284, 256->1024 362-365 against 334-338, 1024->512 352-360 against 322-335; at 28x28
 * (784 pixels) pointwise wins (512->256 374-379 against 339-343). Strided, on the input
 * subsampled first: 1x1/2 1024->2048 to 7x7 376 against im2col's 271, 512->1024 to 14x14 363
 * against 333 (`-s 1x1/2`). */
#define DIRECT_WIDE_MAX_PIXELS_1X1 256

/* The direct tile takes mr pixels of one output row, or of two rows where a row of at least 4
 * fills at most half of it (conv_direct.c); the rules above and below take windows only where
 * that fills half the tile or more (output rows of 4 pixels and more), or where the whole output
 * has at most DIRECT_WIDE_MAX_PIXELS pixels, whose GEMM panels are as empty. On rows of 2 (and
 * 1) of a larger output the tile multiplies mostly nothing: d2l_resnet18's 3x3/2 128->256 from
 * 4x4 to 2x2 at batch 256 (`bench_conv -m narrow -b 256 -s /2`, AMD EPYC Zen 5, 2 threads) 122
 * effective GFLOP/s on the direct tile against im2col's 257, bf16 190 against 372; but 3x3
 * 512->512 on 3x3 maps at batch 1 (9 pixels, `-b 1 -s @3`) 188 against 164, bf16 334 against
 * 217 (at batch 4, 36 pixels, 240 against 263 and 383 against 443: the tile kept, as before). */
static int direct_fills_tile(const rn_kernels *k, const rn_conv_shape *s) {
    const int rows = s->wo >= 4 && 2 * s->wo <= k->direct_mr && s->ho > 1 ? 2 : 1;
    const long pixels = (long)rows * s->wo < k->direct_mr ? (long)rows * s->wo : k->direct_mr;
    return 2 * pixels >= k->direct_mr || (long)s->n * s->ho * s->wo <= DIRECT_WIDE_MAX_PIXELS;
}

/* A window on a map small enough for the 14 x 32 tile's rule above. */
static int direct_small_map(const rn_kernels *k, const rn_conv_shape *s) {
    const long pixels = (long)s->n * s->ho * s->wo;
    return k->direct_mr >= DIRECT_WIDE_MR && s->kh * s->kw > 1 && direct_fills_tile(k, s) &&
           pixels <= (s->stride == 1 ? DIRECT_WIDE_MAX_PIXELS : DIRECT_WIDE_MAX_PIXELS_STRIDED);
}

/* Direct before Winograd: the stems, strided windows on narrow inputs or small maps, small
 * maps at stride 1 where Winograd's weights would come from memory, and 1x1 on small maps. */
static int direct_pays(const rn_kernels *k, const rn_conv_shape *s) {
    if (s->cin <= DIRECT_MAX_CHANNELS)
        return 1;
    if (s->kh * s->kw == 1) /* the direct tile's rows are then the whole (subsampled) map */
        return k->direct_mr >= DIRECT_WIDE_MR && s->pad == 0 &&
               (long)s->n * s->ho * s->wo <= DIRECT_WIDE_MAX_PIXELS_1X1;
    if (s->stride == 1 || !direct_fills_tile(k, s)) /* Winograd first, where it pays */
        return 0;
    const int wide = k->direct_mr >= DIRECT_WIDE_MR;
    const double weight_bytes = (double)sizeof(float) * (double)conv2d_weight_floats(s);
    return direct_small_map(k, s) ||
           s->cin <= (wide ? DIRECT_WIDE_MAX_CHANNELS_STRIDED : DIRECT_MAX_CHANNELS_STRIDED) ||
           (wide && weight_bytes <= DIRECT_WIDE_MAX_WEIGHT_BYTES_STRIDED);
}

/* Windows on maps of at most 2x2 (conv_smallmap.c) where every block of its matrix
 * is a live tap (3x3 pad 1 on 2x2, or 1x2): as many products as F(2x2) and no transforms, and
 * no zero block mixing an infinite input into outputs whose window does not reach it (on 1x3
 * maps a 3x3 window misses a column: im2col there); from SMALLMAP_MIN_BATCH images, where its
 * product has columns enough. 3x3 256->256 on 2x2 (`bench_conv -m narrow -s "256->256 @2"`,
 * AMD EPYC Zen 5, 2 threads, effective GFLOP/s, weights prepared once): batch 256 690 against
 * F(2x2)'s 609, 128 664 against 614, but 64 502 against 632 and 1 29 against the direct tile's
 * 85. In training (batch 256, d2l_resnet18 at 28x28, `profile_train`) its data and weight
 * gradients outrun F(2x2)'s by more (see the commit that made this rule). bf16 inference takes
 * F(2x2) instead (rn_conv_algo_for_bf16). Strided windows too where every block is a live tap
 * (d2l_resnet18's 3x3/2 256->512 at 28x28, 2x2 -> 1x1), before im2col would crop them (a 2x2
 * window, whose weight gradient is then the algorithm's too); at stride 1 a window im2col crops
 * stays im2col's (3x3 on 1x1 maps: 0.70 ms a step against the product's 0.54 and 0.25 of
 * weights made each step). The strided one in training (`profile_train -a d2l_resnet18 -s 28 -b
 * 256`, AMD EPYC Zen 5, 2 threads, two runs each, ms of the layer's step, im2col -> the
 * product): fp32 5.50-5.73 -> 4.85-5.00 (forward 1.81-1.88 -> 1.02-1.07 and 0.20 of weights
 * made, weight gradient 1.83-1.92 -> 1.61-1.66), bf16 6.43-6.53 -> 4.62-4.66 (forward
 * 2.59-2.65 -> 0.99-1.01); alone (`bench_conv -m narrow -b 256`) 490 against 573 effective
 * GFLOP/s. */
#define SMALLMAP_MIN_BATCH 128
static int smallmap_pays(const rn_conv_shape *s) {
    if (!rn_conv_smallmap.supports(s) || s->kh * s->kw == 1 || s->n < SMALLMAP_MIN_BATCH)
        return 0;
    for (int p = 0; p < s->ho * s->wo; p++)
        for (int q = 0; q < s->h * s->w; q++)
            if (rn_smallmap_tap(s, p, q) < 0)
                return 0;
    return 1;
}

rn_conv_algo_id rn_conv_algo_choose(const rn_kernels *k, const rn_conv_shape *s) {
    rn_conv_shape cropped;
    int k0;
    const int crops = conv2d_crop_shape(s, &cropped, &k0);
    if ((s->stride > 1 || !crops) && smallmap_pays(s))
        return RN_CONV_SMALLMAP;
    if (crops)
        return RN_CONV_IM2COL; /* a smaller kernel on a tiny map: im2col crops it */
    k = rn_kernels_or_default(k);
    if (rn_conv_direct.supports(s) && direct_pays(k, s))
        return RN_CONV_DIRECT;
    if (rn_conv_winograd.supports(s) && winograd_pays(s))
        return RN_CONV_WINOGRAD;
    if (rn_conv_winograd2.supports(s) && winograd2_pays(s))
        return RN_CONV_WINOGRAD2;
    if (rn_conv_direct.supports(s) && direct_small_map(k, s))
        return RN_CONV_DIRECT; /* where neither Winograd pays */
    /* a 1x1 convolution needs no im2col at all */
    return rn_conv_pointwise.supports(s) && !strided_1x1_by_im2col(k, s) ? RN_CONV_POINTWISE
                                                                        : RN_CONV_IM2COL;
}

/* On bf16 products the direct tile runs at about twice its fp32 speed and Winograd (fp32
 * products) at its own, so small maps at stride 1 (at most 784 output pixels: 28x28 at batch 1)
 * go direct where the 14 x 32 tile has bf16 pairs: inside resnet18 and resnet50 at batch 1
 * (`profile_layers -p bf16`, AMD EPYC Zen 5, 2 threads, interleaved, medians, ms), 3x3 256 ->
 * 256 at 14x14 0.41-0.42 against Winograd's 0.61-0.62 (resnet18, 8 pairs: the pass 8.7 -> 8.0
 * ms) and 0.38-0.40 against 0.50-0.55 (resnet50, 5 pairs); 128 -> 128 at 28x28 0.36-0.43
 * against 0.49-0.54 (resnet18, 6 pairs) and 0.40-0.42 against 0.48-0.50 (resnet50); not 64 ->
 * 64 at 56x56 (0.44-0.47 against 0.36-0.47). In training, so do maps of at most 49 pixels an
 * image (7x7, where F(4x4) pads 49 outputs to 64; not 8x8, whole tiles: resnet18's CIFAR-stem
 * 3x3 256 -> 256 at 8x8, batch 128, `profile_train -p bf16`, Zen 5, 2 threads, 45.9-46.6 ms a
 * layer a step direct against 36.5-36.8 by Winograd, when the bound was 64) at any batch: the
 * fmnist-fast network at batch 128 and resnet18 at 224x224 batch 32 no slower (`resnet bench
 * --train`, interleaved, within the noise), d2l_resnet18 at 28x28 batch 256 faster (Zen 5, 3
 * rounds alternated, ms a step, median: 151 against Winograd's 160). Not in inference any
 * more: that rule had timed 3x3 512 -> 512 at 7x7, batch 32, at 11.6-11.8 ms against
 * Winograd's 13.6-14.1 (resnet18) and 16.8-17.6 (resnet50), but after the direct tile's
 * layers that add a residual read by another core got buffers of their own (engine/session.c
 * in_place), Winograd runs them faster: inside resnet18's bf16 pass at batch 32
 * (`profile_layers -p bf16`, AMD EPYC Zen 5, 2 threads, alternated, 3 rounds) 6.9-7.8 ms
 * against 9.6-9.8, the pass (`resnet bench`, 4 rounds) 150.4 -> 142.6 ms; resnet50 batch 32
 * 392 -> 388 (3 rounds). Neither rule takes maps narrower than 7, whose rows would fill less
 * than half the tile.
 * Since Winograd multiplies bf16 pairs in inference too (stop 50, conv_winograd.c), the bound
 * there is half that, and half again for maps narrower than the tile (two rows a tile, the odd
 * last one alone: 7x7 fills 49 of 56 places): `resnet bench --precision bf16`, AMD EPYC Zen 5, 2
 * threads, 6-8 rounds alternated with the bound at 784, medians, ms: resnet18 batch 1 5.55 ->
 * 5.36 (128 -> 128 at 28x28 by Winograd: 0.25-0.31 against 0.32-0.35 a layer, `profile_layers`),
 * batch 4 18.9 -> 17.9, batch 16 70.7 -> 64.3; resnet50 batch 1 13.33 -> 13.18, batch 16 187
 * -> 182. The two halvings, each against the other's bound: batch 2's 14x14 (392 pixels) 11.6
 * direct against 12.0 by Winograd, batch 8's 7x7 (392) 35.8 against 33.5, batch 4's 7x7 (196)
 * 18.55 against 18.60. */
#define DIRECT_BF16_MAX_PIXELS 784
#define DIRECT_BF16_MAX_PIXELS_INFERENCE 392
#define DIRECT_BF16_MAX_MAP_PIXELS 49
#define DIRECT_BF16_MIN_WIDTH 7
/* On matrix tiles (AMX) the bf16 GEMM outruns the direct tile, whose vdpbf16ps runs at half
 * the FMA's rate on Sapphire Rapids (61 against 131 GFLOP/s a core), and Winograd from 256
 * channels up. `profile_layers -p bf16`, Xeon (Sapphire Rapids class), 2 threads, ms, the GEMM
 * (`-c im2col`) against the heuristic's pick: resnet18 batch 1, stem 0.90 against direct's
 * 2.46, 3x3/2 0.33-0.34 against 1.04-1.12, 3x3 512 -> 512 at 7x7 0.62-0.64 against 2.00-2.12,
 * 256 -> 256 at 14x14 0.50-0.52 against Winograd's 0.83-0.91 (the whole pass 27.9 -> 10.6 ms);
 * batch 32, 512 -> 512 8.3-8.7 against Winograd's 13.4-13.8 and 256 -> 256 9.3-10.2 against
 * 12.7-13.2. Up to 128 channels Winograd keeps its lead: batch 32, 64 -> 64 at 56x56 14.2-16.4
 * against 16.8-20.4, 128 -> 128 at 28x28 11.1-12.2 against 15.5-16.4; batch 1 (interleaved,
 * medians) 0.67-0.78 against 0.80-0.85 and 0.65-0.71 against 0.84-0.89. */
#define TILES_WINO_MAX_CHANNELS 128
int rn_conv_bf16_keeps_winograd(const rn_kernels *kb, const rn_conv_shape *s) {
    return !rn_kernels_or_default(kb)->matrix_tiles || s->cin <= TILES_WINO_MAX_CHANNELS;
}

const rn_kernels *rn_conv_bf16_kernels(const rn_kernels *kb, int id) {
    kb = rn_kernels_or_default(kb);
    return rn_conv_algo_is_winograd(id) && kb->matrix_tiles ? rn_kernels_fp32(kb) : kb;
}

/* Whether kb's direct tile is the wide one (14 x 32) on bf16 pairs, which both rules below take. */
static int wide_bf16_tile(const rn_kernels *kb) {
    return rn_kernels_are_bf16(kb) && kb->direct && kb->direct_mr >= DIRECT_WIDE_MR;
}

/* The most output pixels (all images) of a stride-1 3x3 that the wide bf16 tile takes from
 * Winograd: DIRECT_BF16_MAX_PIXELS against Winograd on fp32 products (training), else half,
 * and half again where a row fills less than the tile. */
static long direct_bf16_max_pixels(const rn_kernels *kb, int inference, const rn_conv_shape *s) {
    if (!inference)
        return DIRECT_BF16_MAX_PIXELS;
    return s->wo >= kb->direct_mr ? DIRECT_BF16_MAX_PIXELS_INFERENCE
                                  : DIRECT_BF16_MAX_PIXELS_INFERENCE / 2;
}

/* In inference, strided windows the fp32 heuristic gives to im2col (their weights larger than
 * DIRECT_WIDE_MAX_WEIGHT_BYTES_STRIDED: fp32's direct tile no faster there) go to the direct tile
 * where it multiplies bf16 pairs, at half the weight bytes and twice the fp32 tile's rate:
 * batch 32, `profile_layers -p bf16`, AMD EPYC Zen 5, 2 threads, alternated, ms: resnet50's 3x3/2
 * 256->256 at 28x28 15.9-16.3 -> 14.0, 512->512 at 14x14 13.3-13.7 -> 11.8-12.6; resnet18's
 * 256->512 at 14x14 6.44-6.50 -> 5.77-6.17. (bf16 training keeps im2col there: not measured.) */
static int strided_direct_bf16(const rn_kernels *kb, int a, const rn_conv_shape *s) {
    rn_conv_shape cropped;
    int k0;
    return a == RN_CONV_IM2COL && s->stride > 1 && s->kh * s->kw > 1 &&
           rn_conv_direct.supports(s) && direct_fills_tile(kb, s) &&
           !conv2d_crop_shape(s, &cropped, &k0);
}

rn_conv_algo_id rn_conv_algo_for_bf16(const rn_kernels *kb, int a, int forced, int inference,
                                      const rn_conv_shape *s) {
    kb = rn_kernels_or_default(kb);
    const int wino = rn_conv_algo_is_winograd(a), chosen = forced != a; /* not the user's */
    /* the small-map product: a GEMM on kb's kernels already; but bf16 inference (weights
     * prepared once) runs F(2x2) on bf16 products faster (3x3 256->256 on 2x2, `bench_conv -m
     * narrow -p bf16`: batch 256 976 effective GFLOP/s against 808, 128 852 against 711), unless
     * on matrix tiles, whose Winograd keeps fp32 products (not measured there) */
    if (a == RN_CONV_SMALLMAP)
        return inference && chosen && !kb->matrix_tiles && rn_conv_winograd2.supports(s)
                   ? RN_CONV_WINOGRAD2
                   : RN_CONV_SMALLMAP;
    if (chosen && kb->matrix_tiles) {
        if (wino && rn_conv_bf16_keeps_winograd(kb, s))
            return (rn_conv_algo_id)a;
        /* else the GEMM, below */
    } else if (wino && chosen && wide_bf16_tile(kb) && s->wo >= DIRECT_BF16_MIN_WIDTH &&
               ((long)s->n * s->ho * s->wo <= direct_bf16_max_pixels(kb, inference, s) ||
                (!inference && s->ho * s->wo <= DIRECT_BF16_MAX_MAP_PIXELS))) {
        return RN_CONV_DIRECT;
    } else if (wino || a == RN_CONV_DIRECT || (a == RN_CONV_POINTWISE && forced == a)) {
        return (rn_conv_algo_id)a;
    } else if (chosen && inference && wide_bf16_tile(kb) && strided_direct_bf16(kb, a, s)) {
        return RN_CONV_DIRECT;
    }
    return rn_conv_pointwise.supports(s) && forced != RN_CONV_IM2COL &&
                   !strided_1x1_by_im2col(kb, s)
               ? RN_CONV_POINTWISE
               : RN_CONV_IM2COL;
}
