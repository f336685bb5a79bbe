/* Which pod watch events can change a table of this node. At cluster
 * scale most pod events concern pods of other nodes that no policy
 * programmed here looks at; such an event is still taken into the desired
 * state, but it need not cost a reconcile of its own (msegd folds them
 * into a later one, docs/kubernetes.md "Pod events that change no local
 * table").
 *
 * A pod event is judged by the pod's state before it and after it (its
 * endpoint in the cluster source, or none). A state is *relevant* when:
 *   - the pod is a pod of this node, or has a registration (mseg-cni, the
 *     API, the inventory file) of its namespace/name, or its endpoint is
 *     no cluster peer;
 *   - its namespace is not known (no namespace object: its labels are not
 *     known either);
 *   - one of its addresses is claimed by another endpoint: a pod of
 *     another node (counted as their events come), an endpoint of this
 *     node or a registration (from the last rebuild), or an endpoint that
 *     lost it to a newer one; who has an address decides what the tables
 *     hold;
 *   - an endpoint peer of a rule (ingress or egress) of a policy that can
 *     change a table (desired_view_programmable()) selects it, with its
 *     namespace's labels as they are now;
 *   - one of its addresses is in a CIDR of an address peer (ipBlock) of an
 *     egress rule of such a policy that names a port: a named port
 *     resolves at each endpoint of the block.
 * Anything else cannot change a local table: which policies can change a
 * table follows from the endpoints of this node alone, and a pod of
 * another node reaches a table only through the peers that select it (its
 * addresses, its named ports) and the addresses it takes from others.
 *
 * An event of a pod of this node may make more policies programmable: the
 * peers of every policy whose subjects or rules' local sides may select a
 * pod of its namespace (whatever its labels) count from then on, until the
 * next rebuild.
 *
 * The judgement holds for the state of the last rebuild: everything else
 * that changes (namespaces, policies, registrations, files) must call
 * relevance_invalidate(), after which every pod event is relevant until
 * the next relevance_rebuild() (made after each reconcile from its view);
 * a pod change not judged (a list, a relist) relevance_forget(). Nothing
 * here logs. */
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
 * policies of it that can change a table; @ds for the registrations, the
 * cluster source's pods (counted once, and again after a forget) and the
 * namespaces. Keeps pointers into the policies' rules and copies of what
 * else it needs. 0 or -ENOMEM (then invalid: every event is relevant). */
int relevance_rebuild(struct relevance *rl, const struct desired *ds, const struct desired_view *v,
		      struct mseg_policy *const *prog, size_t n_prog);

/* Something other than a pod changed: every pod event is relevant until
 * the next rebuild. */
void relevance_invalidate(struct relevance *rl);
/* The cluster source's pods changed without being judged: the same, and
 * the next rebuild counts their addresses again. */
void relevance_forget(struct relevance *rl);
bool relevance_valid(const struct relevance *rl);

/* Pod @key ("NS/NAME") before its event and after it: @ep its endpoint in
 * the cluster source then (NULL: none), @local a pod of this node. May
 * that state change a local table? Every event of a pod is to be told
 * both, in that order, its change made in between (the addresses of the
 * pods of other nodes are counted by them). */
bool relevance_pod_before(struct relevance *rl, const struct desired *ds, const char *key,
			  const struct mseg_endpoint *ep, bool local);
bool relevance_pod_after(struct relevance *rl, const struct desired *ds, const char *key,
			 const struct mseg_endpoint *ep, bool local);

#endif
