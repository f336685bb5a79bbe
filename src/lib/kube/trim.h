/* What the trims (kube.c, services.c) share: msegd keeps of each object
 * only the keys it reads. */
#ifndef MSEG_KUBE_TRIM_H
#define MSEG_KUBE_TRIM_H

#include <jansson.h>

/* dst[key] = src[key] (a new reference) when src has the key. */
static inline void copy_key(json_t *dst, json_t *src, const char *key)
{
	json_t *v = json_object_get(src, key);

	if (v)
		json_object_set(dst, key, v);
}

#endif
