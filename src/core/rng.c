/* rng.c - xoshiro256** seeded through splitmix64. */
#include "rng.h"

#include <math.h>

uint64_t rn_rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x) {
    return rn_rng_mix64(*x += 0x9e3779b97f4a7c15ULL);
}

void rn_rng_seed_at(rn_rng *r, uint64_t seed, uint64_t tag, int64_t a, int64_t b) {
    const uint64_t g = 0x9e3779b97f4a7c15ULL;
    uint64_t z = rn_rng_mix64((seed ^ tag) + g);
    z = rn_rng_mix64((z ^ (uint64_t)a) + g);
    rn_rng_seed(r, rn_rng_mix64((z ^ (uint64_t)b) + g));
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rn_rng_seed(rn_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t rn_rng_next(rn_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rn_rng_uniform(rn_rng *r) {
    return (float)(rn_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform in (0, 1), 53 bits. */
static double open_uniform(rn_rng *r) {
    return ((double)(rn_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Gamma(a, 1), a >= 1: Marsaglia and Tsang (2000). */
static double gamma_one_up(rn_rng *r, double a) {
    const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = rn_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        const double u = open_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

static double gamma_variate(rn_rng *r, double a) {
    if (a >= 1.0)
        return gamma_one_up(r, a);
    return gamma_one_up(r, a + 1.0) * pow(open_uniform(r), 1.0 / a);
}

double rn_rng_beta_symmetric(rn_rng *r, double alpha) {
    const double x = gamma_variate(r, alpha), y = gamma_variate(r, alpha);
    if (!(x + y > 0.0)) /* both underflowed (alpha near 0): the two ends alike */
        return open_uniform(r) < 0.5 ? 0.0 : 1.0;
    return x / (x + y);
}

float rn_rng_normal(rn_rng *r) {
    double u1 = ((double)(rn_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(rn_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}
