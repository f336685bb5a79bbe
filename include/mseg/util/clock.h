/* The clocks, in nanoseconds: monotonic for durations and deadlines,
 * realtime for timestamps people read (flow records, start time). */
#ifndef MSEG_CLOCK_H
#define MSEG_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC: never jumps; only differences mean something. */
static inline uint64_t clock_mono_ns(void)
{
	return clock_ns_of(CLOCK_MONOTONIC);
}

/* CLOCK_REALTIME: nanoseconds since the Unix epoch. */
static inline uint64_t clock_real_ns(void)
{
	return clock_ns_of(CLOCK_REALTIME);
}

#endif
