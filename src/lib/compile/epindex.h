/* The endpoints of one compile indexed by namespace, and the endpoints a
 * peer selects, found through that index (compile.c; tests/unit/
 * test_epindex.c checks both against a plain scan). Private to compile/.
 *
 * A selection costs what it selects, not the whole inventory: a named
 * namespace is a binary search, a namespace selector is evaluated once
 * per namespace (once per distinct set of namespace labels within it),
 * and the pod selector only over the endpoints of the namespaces that
 * match. Only a selection of every namespace, or a namespace selector
 * that matches them all, reads every endpoint. */
#ifndef MSEG_COMPILE_EPINDEX_H
#define MSEG_COMPILE_EPINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/model/model.h"
#include "mseg/model/plan.h"

/* A namespace: its endpoints are ns_order[lo, hi). */
struct ep_ns {
	const char *name;                      /* selector_ns_name() */
	uint32_t lo, hi;
};

/* Endpoints of one namespace carrying the same namespace labels (by
 * content): ns_order[lo, hi), their labels those of @ep. An endpoint of an
 * undeclared namespace may carry its own (inventory.h), so one namespace
 * may have several. */
struct ep_labels_run {
	const struct mseg_endpoint *ep;
	uint32_t lo, hi;
};

struct ep_index {
	const struct mseg_endpoint *const *eps;  /* the caller's, sorted by id */
	size_t n_eps;
	const struct mseg_ep_brief *brief;     /* the caller's, or NULL */
	uint32_t *ns_order;                    /* endpoint indexes by namespace
	                                        * (strcmp), then index */
	struct ep_ns *nss;                     /* the namespaces, by name */
	size_t n_nss;
	struct ep_labels_run *runs;            /* in ns_order; made for the first
	                                        * namespace selector */
	size_t n_runs;
	bool runs_made;
	uint64_t *bits;                        /* over the endpoints, all clear:
	                                        * ordering a large selection */
	struct ep_ns_sel *ns_sels;             /* each namespace selector seen: the
	                                        * runs it matches, found once */
	size_t n_ns_sels, cap_ns_sels;
};

/* A namespace selector and the label runs it matches (their indexes). */
struct ep_ns_sel {
	const struct mseg_selector *sel;       /* the first one seen with this content */
	uint64_t hash;
	uint32_t *runs;
	size_t n_runs;
};

/* Index @n_eps endpoints @eps (sorted by id; kept, not copied). Ids of one
 * namespace are mostly adjacent ("k8s.NS.NAME"): the runs of equal
 * namespace are sorted, not the endpoints. With @brief (may be NULL:
 * compile_opts.eps_brief, kept) the passes over every endpoint read it
 * instead of the endpoints; the index is the same. 0 or -ENOMEM. */
int ep_index_init(struct ep_index *ix, const struct mseg_endpoint *const *eps, size_t n_eps,
		  const struct mseg_ep_brief *brief);
void ep_index_release(struct ep_index *ix);

/* The indexes of the endpoints @p selects (selector_peer_selects()),
 * ascending, into *@buf (grown as needed; capacity *@cap), their number
 * in *@ret_n; none for an address peer. A namespace selector's matching
 * label runs are kept by its content (ix->ns_sels), so @p's selectors
 * must stay as they are while @ix lives. 0 or -ENOMEM. */
int ep_index_select(struct ep_index *ix, const struct mseg_peer *p, uint32_t **buf, size_t *cap,
		    size_t *ret_n);

#endif
