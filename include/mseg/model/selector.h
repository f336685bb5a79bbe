/* Selection, one copy for the compiler (what the kernel enforces) and for
 * check (POST /v1/check, `mseg check`): label selectors, namespaces, and
 * "does this peer select this endpoint". docs/policy.md, "Selection". */
#ifndef MSEG_SELECTOR_H
#define MSEG_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/model/model.h"

/* The namespace a peer or an endpoint stands for: @ns, or "default" when
 * it has none. (The policy parser gives every group its list's namespace,
 * itself "default" when metadata.namespace is absent; a model built
 * otherwise may leave it NULL, which means the same.) */
const char *selector_ns_name(const char *ns);

/* Label selector match against labels sorted by key (Kubernetes semantics:
 * every requirement holds; NotIn and DoesNotExist hold for absent keys; no
 * requirement, or a NULL @sel, matches everything). */
bool selector_matches(const struct mseg_selector *sel, const struct mseg_label *labels,
		      size_t n_labels);

/* Are @a and @b the same selector, requirement by requirement (same
 * order, operators, keys and values)? */
bool selector_equal(const struct mseg_selector *a, const struct mseg_selector *b);

/* @h with @s folded in (hash_fnv(), util/hash.h): equal selectors
 * (selector_equal()) hash alike. */
uint64_t selector_hash(uint64_t h, const struct mseg_selector *s);

/* Is @ep in the namespaces @peer (MSEG_PEER_ENDPOINTS) chooses: the named
 * one (selector_ns_name on both sides), those whose labels match ns_sel,
 * or any? */
bool selector_ns_matches(const struct mseg_peer *peer, const struct mseg_endpoint *ep);

/* Does @peer select @ep: an endpoints peer whose namespace scope and label
 * selector both match. An address peer selects no endpoint. */
bool selector_peer_selects(const struct mseg_peer *peer, const struct mseg_endpoint *ep);

/* Does @pol cover @ep (one of its subjects selects it)? */
bool selector_policy_covers(const struct mseg_policy *pol, const struct mseg_endpoint *ep);

#endif
