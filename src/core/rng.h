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

/* splitmix64's finaliser: a well-mixed 64-bit function of z. */
uint64_t rn_rng_mix64(uint64_t z);
/* Seeds r for the draws named by (seed, tag, a, b), e.g. an image's augmentation by (the run's
 * seed, what is drawn, its epoch, its position), so that draws need no shared state. */
void rn_rng_seed_at(rn_rng *r, uint64_t seed, uint64_t tag, int64_t a, int64_t b);
/* Beta(alpha, alpha) (alpha > 0), as the ratio of two Gamma(alpha) variates (Marsaglia and
 * Tsang's method; below 1 through Gamma(alpha + 1) times U^(1 / alpha)), in double. */
double rn_rng_beta_symmetric(rn_rng *r, double alpha);

#endif
