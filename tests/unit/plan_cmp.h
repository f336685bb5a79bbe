/* For the unit tests that compare compiles: two plans byte for byte, and
 * the brief a desired view makes of an inventory (compile_opts.eps_brief). */
#ifndef MSEG_TEST_PLAN_CMP_H
#define MSEG_TEST_PLAN_CMP_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/model/model.h"
#include "mseg/model/plan.h"
#include "mseg/model/selector.h"

/* Are @a and @b the same, byte for byte? If not, @why says where, naming
 * them @a_name and @b_name ("incremental", "full"). */
static inline bool plans_equal(const struct mseg_plan *a_plan, const char *a_name,
			       const struct mseg_plan *b_plan, const char *b_name, char *why,
			       size_t n_why)
{
	if (a_plan->n_eps != b_plan->n_eps) {
		snprintf(why, n_why, "%zu endpoints %s, %zu %s", a_plan->n_eps, a_name,
			 b_plan->n_eps, b_name);
		return false;
	}
	for (size_t i = 0; i < a_plan->n_eps; i++) {
		const struct mseg_ep_plan *a = &a_plan->eps[i], *b = &b_plan->eps[i];

		if (strcmp(a->ep->id, b->ep->id) != 0) {
			snprintf(why, n_why, "endpoint %zu is '%s' %s, '%s' %s", i, a->ep->id,
				 a_name, b->ep->id, b_name);
			return false;
		}
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			const struct mseg_dir_plan *x = &a->dir[d], *y = &b->dir[d];

			if (x->isolated != y->isolated || x->mode != y->mode ||
			    x->n_entries != y->n_entries ||
			    (x->n_entries &&
			     memcmp(x->entries, y->entries, x->n_entries * sizeof(*x->entries)))) {
				snprintf(why, n_why,
					 "endpoint '%s' %s: isolated %d/%d mode %d/%d, %zu/%zu entries "
					 "(%s/%s)", a->ep->id, d ? "egress" : "ingress",
					 x->isolated, y->isolated, x->mode, y->mode, x->n_entries,
					 y->n_entries, a_name, b_name);
				return false;
			}
		}
	}
	return true;
}

/* The brief a desired view makes of @inv: namespaces numbered by name
 * (the first endpoint's name: one copy per name). NULL when out of memory;
 * free() it. */
static inline struct mseg_ep_brief *brief_of(const struct mseg_inventory *inv)
{
	struct mseg_ep_brief *b = calloc(inv->n + 1, sizeof(*b));

	for (size_t e = 0; b && e < inv->n; e++) {
		const struct mseg_endpoint *ep = inv->eps[e];
		size_t first = 0;

		while (strcmp(selector_ns_name(inv->eps[first]->ns), selector_ns_name(ep->ns)) != 0)
			first++;
		b[e] = (struct mseg_ep_brief){ .ns_name = selector_ns_name(inv->eps[first]->ns),
					       .ns_labels_serial = ep->ns_labels_serial,
					       .netns = ep->netns != NULL };
	}
	return b;
}

#endif
