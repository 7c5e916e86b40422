/*
 * rng.h - a small seedable random number generator (splitmix64 seeding a
 * xoshiro256** state). Same seed, same sequence, on every platform.
 */
#ifndef RN_CORE_RNG_H
#define RN_CORE_RNG_H

#include <stdint.h>

typedef struct rn_rng {
    uint64_t s[4];
} rn_rng;

void rn_rng_seed(rn_rng *r, uint64_t seed);
uint64_t rn_rng_next(rn_rng *r);
/* Uniform in [0, 1), 24 random bits. */
float rn_rng_uniform(rn_rng *r);
/* Standard normal (Box-Muller). */
float rn_rng_normal(rn_rng *r);

#endif
