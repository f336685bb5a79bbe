/* Address helpers shared by the stages: parse, format, compare and order
 * struct mseg_addr values, and order allow entries by their boxes. Pure: no
 * I/O, no allocation. */
#ifndef MSEG_ADDR_H
#define MSEG_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "mseg/model/plan.h"

/* Same family and the same address bytes (4 for IPv4, 16 for IPv6). */
bool addr_eq(const struct mseg_addr *a, const struct mseg_addr *b);

/* An IPv4 or IPv6 address in text form; 0 or -EINVAL. */
int addr_parse(const char *s, struct mseg_addr *ret);

/* The text form into @buf ("?" when it cannot be formatted); returns @buf. */
const char *addr_format(const struct mseg_addr *a, char *buf, size_t size);

/* Is @a in @c (same family, the first c->plen bits equal)? */
bool addr_in_cidr(const struct mseg_addr *a, const struct mseg_cidr *c);

/* The address as a big-endian integer (IPv4 in the low 32 bits). */
unsigned __int128 addr_u128(const struct mseg_addr *a);

/* Total order of entries: family, lo, hi, proto, port_lo, port_hi
 * (provenance is ignored). Addresses compare as big-endian integers. */
int addr_entry_cmp(const struct mseg_entry *a, const struct mseg_entry *b);

#endif
