/* Boxes: address range x port range, within one (family, protocol) class,
 * and their normalization into pairwise disjoint, merged boxes.
 *
 * Private to the compiler (src/lib/compile.c); the unit tests use it too.
 *
 * Merging rule (docs/compile.md): overlapping boxes always merge; boxes that
 * only touch (adjacent addresses or adjacent ports with the same addresses)
 * merge when at least one of them is a range. Runs of adjacent single values
 * stay single, so that exact addresses and ports stay in the hash sets (flat
 * lookup, one element per endpoint address) instead of turning into ranges. */
#ifndef MSEG_BOXES_H
#define MSEG_BOXES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 box_u128;

#define BOX_U128_MAX (~(box_u128)0)

struct box {
	box_u128 lo, hi;     /* address range, inclusive; IPv4 in the low 32 bits */
	uint64_t prov;       /* provenance, (policy << 32) | rule: the lowest wins */
	uint16_t plo, phi;   /* port range, inclusive; 0..0 for port-less classes */
	uint8_t fam, proto;  /* the class (0 IPv4, 1 IPv6; protocol, 0 = every one):
	                      * box_normalize() keeps it, box_sort_entries() orders by it */
};

#define BOX_PROV(policy, rule) (((uint64_t)(policy) << 32) | (uint32_t)(rule))

/* Scratch memory reused across calls, so that compiling many endpoints does
 * not allocate per call. */
struct box_ws;

struct box_ws *box_ws_new(void);
struct box_ws *box_ws_free(struct box_ws *ws);

/* Sort @v by address and merge it into disjoint address ranges, in place
 * (ports are ignored and left as they are in the first box of a run).
 * Returns the new count. */
size_t box_addr_union(struct box *v, size_t n);

/* Normalize @n boxes of one class: the result is pairwise disjoint, covers
 * exactly the union of the input, and is sorted by (address, port). With
 * @ports false every box is treated as port 0..0 (port-less class).
 * @in is reordered. *@ret points into @ws and stays valid until the next
 * call with @ws. 0 or -ENOMEM. */
int box_normalize(struct box_ws *ws, struct box *in, size_t n, bool ports,
		  const struct box **ret, size_t *ret_n);

/* Sort @n boxes of any classes into the order of plan entries: family,
 * address range, protocol, port range. Sorted runs already in @v are
 * merged, not sorted anew. 0 or -ENOMEM. */
int box_sort_entries(struct box_ws *ws, struct box *v, size_t n);

/* True when @b is one address and one port (already exact). */
static inline bool box_is_point(const struct box *b)
{
	return b->lo == b->hi && b->plo == b->phi;
}

/* True when @b holds at most @max points: addresses x ports, or addresses
 * alone with @ports false (port-less classes). Exact for any range, the whole
 * IPv6 space included: no overflow. */
bool box_points_at_most(const struct box *b, bool ports, size_t max);

/* True when [lo, hi] lies inside one range of @v (sorted, disjoint). */
bool box_range_covered(const struct box *v, size_t n, box_u128 lo, box_u128 hi);

#endif
