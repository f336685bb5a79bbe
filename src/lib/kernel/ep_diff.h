/* Private to the kernel backend: what an element update of one direction
 * sends (entries to delete and to add, per set), and the two ways to work
 * it out. Implemented in ep_table.c, its user; the unit tests and
 * bench_program call it to hold the two ways against each other. */
#ifndef MSEG_EP_DIFF_H
#define MSEG_EP_DIFF_H

#include <stddef.h>

#include "mseg/kernel/nft.h"
#include "kernel/render_nl.h"

enum ep_diff_method {
	/* Only what changed is compared: a direction whose entry array is the
	 * one the kernel holds (same pointer and length) is skipped without a
	 * look; otherwise the common head and tail of the two sorted arrays
	 * are skipped with a plain memory compare, and only the span between
	 * them is merged. A span that is not in addr_entry_cmp() order falls
	 * back to EP_DIFF_FULL for that direction. */
	EP_DIFF_FAST,
	/* Every entry of both plans: grouped by set, each group sorted, then
	 * merged (what every update did before EP_DIFF_FAST; the reference the
	 * tests and the benchmark compare it with). */
	EP_DIFF_FULL,
};

/* The element changes of one direction: del[del_off[i] .. del_off[i + 1])
 * and add[add_off[i] .. add_off[i + 1]) belong to set i (nl_set_spec_get()
 * order), each run in addr_entry_cmp() order. Both methods give the same
 * result for plans whose entries are in that order and distinct (what
 * compile_plan() hands over). What changes are the sets' element images
 * (nl_parts_build()): an entry that moves between *_port_iv and a
 * port-range slot is a delete in one set and an add in the other, and a
 * slot whose signature changes gets its port set's elements changed.
 * EP_DIFF_FAST builds the images of a family's range and slot sets only
 * when a range entry of that family is in the changed span. */
struct ep_dir_diff {
	const struct mseg_entry **del, **add;
	size_t del_off[NL_SETS_PER_DIR + 1];
	size_t add_off[NL_SETS_PER_DIR + 1];
	struct nl_parts img[4];      /* the images del and add may point into */
};

/* -ENOMEM; -EINVAL when a changed entry belongs to no set. */
int ep_dir_diff_compute(struct ep_dir_diff *dd, const struct mseg_dir_plan *old_dir,
			const struct mseg_dir_plan *new_dir, enum ep_diff_method method);
void ep_dir_diff_release(struct ep_dir_diff *dd);

/* ep_table_update() with a chosen method (it uses EP_DIFF_FAST). */
int ep_table_update_with(struct netns *ns, const struct mseg_ep_plan *old_plan,
			 const struct mseg_ep_plan *new_plan, const struct table_opts *opts,
			 const char *const *policy_names, size_t n_policy_names,
			 enum ep_diff_method method, struct mseg_err *err);

#endif
