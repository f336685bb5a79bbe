/* FNV-1a, 64 bits: one copy of the hash the in-memory tables use (index
 * keys, digests compared within one process; never stored). */
#ifndef MSEG_HASH_H
#define MSEG_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HASH_FNV_OFFSET 0xcbf29ce484222325ULL
#define HASH_FNV_PRIME 0x100000001b3ULL

/* @h (HASH_FNV_OFFSET to start) with the bytes @p[0..n) folded in. */
static inline uint64_t hash_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * HASH_FNV_PRIME;
	return h;
}

/* @h with the string @s and its NUL folded in; a NULL @s as one 0xff byte
 * (no string's bytes end that way), so that NULL, "" and "x" differ and
 * two strings in a row cannot run into each other. */
static inline uint64_t hash_fnv_str(uint64_t h, const char *s)
{
	return s ? hash_fnv(h, s, strlen(s) + 1) : hash_fnv(h, "\xff", 1);
}

#endif
