/* Growable arrays: the one growth rule for the arrays that libmseg keeps as
 * (pointer, count, capacity). Private to libmseg. */
#ifndef MSEG_VEC_H
#define MSEG_VEC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Room for @need elements of @elsz bytes in *@p (capacity *@cap): the
 * capacity doubles from 16 until it holds them. 0 or -ENOMEM (then *@p and
 * *@cap are unchanged). Inline: the compiler calls it once per box. */
static inline int vec_reserve(void **p, size_t *cap, size_t need, size_t elsz)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elsz)
			return -ENOMEM;
		ncap *= 2;
	}
	np = realloc(*p, ncap * elsz);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

#define VEC_RESERVE(ptr, cap, need) vec_reserve((void **)&(ptr), &(cap), (need), sizeof(*(ptr)))

/* Binary search of the @n elements of @elsz bytes at @base, sorted by
 * strcmp() of the string each holds at offset @key_off, for @key: its index,
 * or where it would go (*@ret_found false). */
static inline size_t vec_str_index(const void *base, size_t n, size_t elsz, size_t key_off,
				   const char *key, bool *ret_found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *k;
		int c;

		memcpy(&k, (const char *)base + mid * elsz + key_off, sizeof(k));
		c = strcmp(k, key);
		if (c == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_found = false;
	return lo;
}

/* VEC_STR_INDEX(arr, n, field, key, &found): vec_str_index() over @arr by
 * its char * member @field */
#define VEC_STR_INDEX(arr, n, field, key, ret_found)                                          \
	vec_str_index((arr), (n), sizeof(*(arr)), offsetof(__typeof__(*(arr)), field), (key), \
		      (ret_found))

#endif
