/* The unit tests' random numbers: one xorshift64 generator, seeded by the
 * test that uses it (rng_state = seed; a fixed start otherwise), so that a
 * failing run can be repeated. */
#ifndef MSEG_TEST_TRAND_H
#define MSEG_TEST_TRAND_H

#include <stdint.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* A number in 0 .. n - 1 (n > 0). */
static inline uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

#endif
