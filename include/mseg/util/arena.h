/* A bump allocator: every object of a loaded document lives in one arena and
 * is released with it, so no error path has to free a half-built tree. */
#ifndef MSEG_ARENA_H
#define MSEG_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used;        /* bytes handed out, for limits and benchmarks */
};

void arena_init(struct arena *a);
void arena_release(struct arena *a);

/* Room for @size bytes of allocations (their arena_size() summed) in one
 * chunk of that size: an object whose size is known beforehand (an
 * endpoint) does not keep the slack of doubling chunks. 0 or -ENOMEM. */
int arena_reserve(struct arena *a, size_t size);
/* What an allocation of @size bytes takes in an arena (aligned). */
size_t arena_size(size_t size);

/* Zeroed memory, aligned for any type; NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_calloc(struct arena *a, size_t n, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);

#endif
