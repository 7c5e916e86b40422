/*
 * amx_util.h - the tile configuration the AMX kernels use (qgemm_amx.c, gemm_amx.c): eight
 * tiles of 16 rows x 64 bytes; tmm0..3 hold C, tmm4 and tmm5 A, tmm6 and tmm7 B. Each kernel
 * call makes sure the thread has it (rn_amx_configure): nothing is assumed of what ran before
 * on the thread. Included only by files compiled for AMX.
 */
#ifndef RN_OPS_X86_AMX_UTIL_H
#define RN_OPS_X86_AMX_UTIL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef struct rn_amx_tile_config {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} rn_amx_tile_config;

/* GCC's tile load and store intrinsics are asm statements that name the address but not the
 * memory: without this barrier the compiler may drop or delay stores into a buffer a tile is
 * then loaded from, and read a buffer a tile was stored to before the store. Put it between
 * ordinary writes and a tile load of the same memory, and between a tile store and reads. */
static inline void rn_amx_fence(void) { __asm__ volatile("" ::: "memory"); }

/* Loads the configuration unless the thread's tiles hold it already (read back with
 * STTILECFG: a thread without one reads all zeros). Loading it each call (LDTILECFG, which also
 * zeroes every tile) took 11-17% of a 32 x 32 x 256 bf16 kernel call's time with its operands
 * in L1; reading it back and comparing, nothing measurable (Xeon, Sapphire Rapids class, one
 * thread). The kernels zero or load every tile they read. */
static inline void rn_amx_configure(void) {
    _Alignas(64) rn_amx_tile_config cfg, cur;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) {
        cfg.colsb[i] = 64;
        cfg.rows[i] = 16;
    }
    rn_amx_fence();
    _tile_storeconfig(&cur);
    rn_amx_fence();
    if (memcmp(&cur, &cfg, sizeof cfg) != 0)
        _tile_loadconfig(&cfg);
}

#endif
