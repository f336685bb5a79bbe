/* Private to the kernel backend: which range entries of a direction go
 * into the port-range slots instead of the concatenated interval set
 * (docs/ruleset.md, port-range slots). A pure function; render_nl.c maps
 * its result to set elements. */
#ifndef MSEG_SLOTS_H
#define MSEG_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/model/plan.h"

/* Slots per isolated direction and family (docs/ruleset.md says why 2). */
#define NL_SLOTS 2
/* The most slots slots_assign() takes (the tests try other values). */
#define SLOTS_MAX 8

/* A port range of a signature, inclusive. */
struct slot_range {
	uint16_t lo, hi;
};

struct slot_assign {
	/* per input entry: -1 = stays in *_port_iv, else its slot */
	int8_t *slot;
	/* slot j's signature: ranges[sig_off[j] .. sig_off[j] + sig_n[j]),
	 * ascending, disjoint and not adjacent; sig_n[j] == 0: slot j unused
	 * (then so are the slots after it) */
	struct slot_range *ranges;
	size_t sig_off[SLOTS_MAX], sig_n[SLOTS_MAX];
	size_t n_used;
};

/* @iv: the SHAPE_PORT_IV entries of one family of a direction, in
 * addr_entry_cmp() order (pairwise disjoint, as compile_plan() hands them
 * over). The entries whose address is a single address are grouped by
 * (address, protocol); a group's ports merged into maximal ranges are its
 * signature. The @k (at most SLOTS_MAX) first distinct signatures in
 * canonical order (range by range, lower first; a signature that is a
 * prefix of another first) get slots 0..k-1, in that order; every entry of
 * a group with a slot gets it, every other entry -1. Deterministic, and an
 * entry moves only when a signature that sorts before its own appears or
 * goes. 0 or -ENOMEM; release with slot_assign_release(). */
int slots_assign(const struct mseg_entry *const *iv, size_t n, size_t k,
		 struct slot_assign *ret);
void slot_assign_release(struct slot_assign *a);

/* The two halves of slots_assign(), for an update that looks at a part of
 * a direction only. slots_choose(): the signatures slots_assign() would
 * choose for the SHAPE_PORT_IV entries of @family among @v[0..n) (a whole
 * direction's entries in addr_entry_cmp() order; the others are skipped),
 * in one pass without copying them; @ret gets no slot array. */
int slots_choose(const struct mseg_entry *v, size_t n, int family, size_t k,
		 struct slot_assign *ret);
/* Both chose the same signatures in the same slots. */
bool slots_same_choice(const struct slot_assign *a, const struct slot_assign *b);
/* slots_assign() with the signatures of @choice instead of choosing: the
 * slots of @iv's groups whose signature is one of them. @iv may be any run
 * of whole groups. */
int slots_assign_with(const struct mseg_entry *const *iv, size_t n,
		      const struct slot_assign *choice, struct slot_assign *ret);

#endif
