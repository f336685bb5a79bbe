/* What the benchmark programs share: a private network namespace for the
 * kernel's side of a benchmark, and sorting samples for percentiles. */
#ifndef MSEG_BENCH_UTIL_H
#define MSEG_BENCH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static inline void *ns_thread(void *arg)
{
	int *fd = arg;

	if (unshare(CLONE_NEWNET) < 0) {
		*fd = -errno;
		return NULL;
	}
	*fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		*fd = -errno;
	return NULL;
}

/* A new network namespace, kept alive by the returned fd (or -errno). It is
 * made on a thread of its own, so the caller's namespace never changes. */
static inline int ns_create(void)
{
	pthread_t t;
	int fd = -EIO;

	if (pthread_create(&t, NULL, ns_thread, &fd))
		return -EAGAIN;
	pthread_join(t, NULL);
	return fd;
}

#endif
