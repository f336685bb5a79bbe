/* Which pod watch events can change a table of this node. At cluster
 * scale most pod events concern pods of other nodes that no policy
 * programmed here looks at; such an event is still taken into the desired
 * state, but it need not cost a reconcile of its own (msegd folds them
 * into a later one, docs/kubernetes.md "Pod events that change no local
 * table").
 *
 * A pod event is judged by the pod's state before and after it (its
 * endpoint in the cluster source, or none). A state is *relevant* when:
 *   - the pod is a pod of this node, or has a registration (mseg-cni) of
 *     its namespace/name, or its endpoint is no cluster peer;
 *   - its namespace is not known (no namespace object: its labels are not
 *     known either);
 *   - one of its addresses is claimed by another endpoint (in the view of
 *     the last rebuild, including the addresses lost in a conflict, or by
 *     a pod judged since): who has an address decides what the tables hold;
 *   - an endpoint peer of a rule (ingress or egress) of a policy that can
 *     change a table (desired_view_programmable()) selects it, with its
 *     namespace's labels as they are now;
 *   - one of its addresses is in a CIDR of an address peer (ipBlock) of an
 *     egress rule of such a policy that names a port: a named port
 *     resolves at each endpoint of the block.
 * Anything else cannot change a local table: a policy is programmable by
 * the local endpoints alone, and a cluster peer reaches a table only
 * through the peers that select it (its addresses, its named ports).
 *
 * The judgement holds for the state of the last rebuild: everything else
 * that changes (namespaces, policies, registrations, files) must call
 * relevance_invalidate(), after which every pod event is relevant until
 * the next relevance_rebuild() (made after each reconcile from its view);
 * a state of the first kind (this node's) does the same by itself.
 * Nothing here logs. */
#ifndef MSEG_RELEVANCE_H
#define MSEG_RELEVANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "mseg/daemon/desired.h"
#include "mseg/model/model.h"

struct relevance;

struct relevance *relevance_new(void);
struct relevance *relevance_free(struct relevance *rl);

/* From @v, the view a reconcile applied, and @prog (@n_prog), the
 * policies of it that can change a table; @ds for the registrations and
 * namespaces. Keeps pointers into the policies (their peers) and copies
 * of what else it needs. 0 or -ENOMEM (then invalid: every event is
 * relevant). */
int relevance_rebuild(struct relevance *rl, const struct desired *ds, const struct desired_view *v,
		      struct mseg_policy *const *prog, size_t n_prog);

/* Something other than a pod changed: every pod event is relevant until
 * the next rebuild. */
void relevance_invalidate(struct relevance *rl);
bool relevance_valid(const struct relevance *rl);

/* One state of pod @key ("NS/NAME"), before or after its event: @ep, its
 * endpoint in the cluster source (NULL: none), @local: a pod of this node.
 * May it change a local table? Its addresses are remembered as claimed by
 * it from now on (the next pod with one of them is relevant). */
bool relevance_pod_state(struct relevance *rl, const struct desired *ds, const char *key,
			 const struct mseg_endpoint *ep, bool local);

/* What the last rebuild holds, for tests and logs. */
struct relevance_stats {
	size_t peers;          /* peers of programmable policies that select pods */
	size_t claims;         /* addresses claimed */
	size_t registrations;  /* namespace/name of registered endpoints */
};
void relevance_stats(const struct relevance *rl, struct relevance_stats *ret);

#endif
