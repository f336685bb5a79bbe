/* Growable arrays: the one growth rule for the arrays that libmseg keeps as
 * (pointer, count, capacity). Private to libmseg. */
#ifndef MSEG_VEC_H
#define MSEG_VEC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

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

#endif
