/*
 * qgemm_amx.c - the int8 GEMM tile on AMX (qconv.h): up to 32 columns x 32 output channels a
 * call, as four 16 x 16 int32 tiles of C in the tile registers.
 *
 * The operands are in AMX's layouts already: 16 im2col rows (a_js bytes apart, K contiguous)
 * are an A tile of 16 rows x 64 bytes of K, and a block's packed weights, 64 bytes per 4 bytes
 * of K (16 channels x 4), are a B tile of 16 rows for the same 64 bytes of K. tdpbusd adds the
 * u8 x s8 products in int32 exactly, so the sums are the oracle's. K past the last whole 64
 * bytes (the stem's 160) is copied, zero-padded, into tiles of its own, columns past the last
 * whole 16 go to the VNNI tile, and the epilogue is the VNNI tile's: the bytes equal the
 * oracle's.
 *
 * The process asked Linux for the tile registers when it read the CPU's features (core/cpu.c);
 * this descriptor is chosen only when that was granted. Each call makes sure the thread has the
 * tile configuration (amx_util.h): nothing is assumed of what ran before on the thread.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "ops/qconv.h"
#include "ops/x86/amx_util.h"
#include "ops/x86/qreq_avx512.h"

/* The sums over K into acc: tile 2r + b at acc + (2r + b) * 256, 16 rows (columns j) of 16
 * channels. */
static inline __attribute__((always_inline)) void amx_sums(const rn_qtile *t, const int NRB,
                                                           const int NCB, int32_t *acc) {
    const long sa = t->a_js;
    const int chunks = t->groups / 4, rest = t->groups % 4; /* whole 64 bytes, 16 left over */
    _tile_zero(0);
    if (NCB > 1)
        _tile_zero(1);
    if (NRB > 1)
        _tile_zero(2);
    if (NRB > 1 && NCB > 1)
        _tile_zero(3);
    for (int c = 0; c < chunks; c++) {
        const uint8_t *a = t->a + (long)c * 64;
        const int8_t *w = t->w + (long)c * 1024;
        _tile_loadd(6, w, 64);
        if (NCB > 1)
            _tile_loadd(7, w + t->w_bs, 64);
        _tile_loadd(4, a, sa);
        _tile_dpbusd(0, 4, 6);
        if (NCB > 1)
            _tile_dpbusd(1, 4, 7);
        if (NRB > 1) {
            _tile_loadd(5, a + 16 * sa, sa);
            _tile_dpbusd(2, 5, 6);
            if (NCB > 1)
                _tile_dpbusd(3, 5, 7);
        }
    }
    if (rest) { /* the last rest x 16 bytes of K, zero-padded to a whole step */
        _Alignas(64) uint8_t at[32][64];
        _Alignas(64) int8_t bt[2][16][64];
        memset(at, 0, sizeof at);
        memset(bt, 0, sizeof bt);
        for (int i = 0; i < 16 * NRB; i++)
            memcpy(at[i], t->a + i * sa + chunks * 64, (size_t)rest * 16);
        for (int b = 0; b < NCB; b++) /* 4 rows of 64 bytes per 16 bytes of K */
            memcpy(bt[b], t->w + b * t->w_bs + (long)chunks * 1024, (size_t)rest * 256);
        rn_amx_fence();
        _tile_loadd(6, bt[0], 64);
        if (NCB > 1)
            _tile_loadd(7, bt[1], 64);
        _tile_loadd(4, at[0], 64);
        _tile_dpbusd(0, 4, 6);
        if (NCB > 1)
            _tile_dpbusd(1, 4, 7);
        if (NRB > 1) {
            _tile_loadd(5, at[16], 64);
            _tile_dpbusd(2, 5, 6);
            if (NCB > 1)
                _tile_dpbusd(3, 5, 7);
        }
    }
    _tile_stored(0, acc, 64);
    if (NCB > 1)
        _tile_stored(1, acc + 256, 64);
    if (NRB > 1)
        _tile_stored(2, acc + 512, 64);
    if (NRB > 1 && NCB > 1)
        _tile_stored(3, acc + 768, 64);
    rn_amx_fence();
}

/* The stored sums requantized and stored. */
static inline __attribute__((always_inline)) void finish(const rn_qtile *t, const int NRB,
                                                         const int NCB, const int32_t *acc) {
    for (int r = 0; r < NRB; r++)
        for (int i = 0; i < 16; i++) {
            const int j = r * 16 + i;
            for (int b = 0; b < NCB; b++) {
                const __m512i s = _mm512_load_si512(acc + ((2 * r + b) * 16 + i) * 16);
                const long o = (long)b * t->y_bs + rn_qtile_col_at(t, j);
                const uint8_t *rr = t->r ? t->r + o : NULL;
                _mm_storeu_si128((__m128i *)(t->y + o),
                                 rn_requant16_avx512(t, b, s, rr));
            }
        }
}

static inline __attribute__((always_inline)) void amx_tile(const rn_qtile *t, const int NRB,
                                                           const int NCB) {
    _Alignas(64) int32_t acc[4 * 256];
    amx_sums(t, NRB, NCB, acc);
    finish(t, NRB, NCB, acc);
}

void rn_qgemm_amx(const rn_qtile *t) {
    /* row blocks of 16 columns for the tiles (K must be contiguous in each row) */
    const int nrb = t->a_gs != 16 ? 0 : t->nj >= 32 ? 2 : t->nj >= 16 ? 1 : 0;
    if (nrb) {
        rn_amx_configure(); /* tmm0..3 C, tmm4/5 A of row blocks 0/1, tmm6/7 B of blocks 0/1 */
        if (nrb == 2)
            t->ncb > 1 ? amx_tile(t, 2, 2) : amx_tile(t, 2, 1);
        else
            t->ncb > 1 ? amx_tile(t, 1, 2) : amx_tile(t, 1, 1);
    }
    rn_qtile u = *t; /* the columns left over, 12 at a time on the VNNI tile */
    for (int j = nrb * 16; j < t->nj; j += 12) {
        u.nj = t->nj - j < 12 ? t->nj - j : 12;
        u.a = t->a + (long)j * t->a_js;
        if (t->y_joff) {
            u.y_joff = t->y_joff + j;
        } else {
            u.y = t->y + (long)j * 16;
            u.r = t->r ? t->r + (long)j * 16 : NULL;
        }
        rn_qgemm_avx512vnni(&u);
    }
}
