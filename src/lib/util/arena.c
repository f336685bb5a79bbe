#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/util/arena.h"

/* Chunks start small and double up to ARENA_CHUNK: a small document (one
 * endpoint: a few hundred bytes, and msegd keeps one per endpoint) does not
 * hold a 4 KiB chunk for its life. */
#define ARENA_FIRST_CHUNK 256
#define ARENA_CHUNK 4096
#define ARENA_ALIGN _Alignof(max_align_t)

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, off;
	_Alignas(max_align_t) unsigned char data[];
};

void arena_init(struct arena *a)
{
	a->head = NULL;
	a->used = 0;
}

void arena_release(struct arena *a)
{
	struct arena_chunk *c = a->head;

	while (c) {
		struct arena_chunk *next = c->next;

		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
}

/* A new chunk of @csize bytes at the head. */
static struct arena_chunk *arena_chunk_add(struct arena *a, size_t csize)
{
	struct arena_chunk *c;

	if (csize > SIZE_MAX - sizeof(*c))
		return NULL;
	c = malloc(sizeof(*c) + csize);
	if (!c)
		return NULL;
	c->size = csize;
	c->off = 0;
	c->next = a->head;
	a->head = c;
	return c;
}

size_t arena_size(size_t size)
{
	return size ? (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1) : ARENA_ALIGN;
}

int arena_reserve(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->head;

	if (c && c->size - c->off >= size)
		return 0;
	return arena_chunk_add(a, arena_size(size)) ? 0 : -ENOMEM;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->head;
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	void *p;

	if (size == 0)
		need = ARENA_ALIGN;
	if (need < size)
		return NULL;
	if (!c || c->size - c->off < need) {
		size_t csize = !c ? ARENA_FIRST_CHUNK
				  : c->size >= ARENA_CHUNK / 2 ? ARENA_CHUNK : c->size * 2;

		if (csize < need)
			csize = need;
		c = arena_chunk_add(a, csize);
		if (!c)
			return NULL;
	}
	p = c->data + c->off;
	c->off += need;
	a->used += need;
	memset(p, 0, need);
	return p;
}

void *arena_calloc(struct arena *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return arena_alloc(a, n * size);
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *d = arena_alloc(a, n + 1);

	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}
