/* The reconciler: desired state (policies + endpoints) -> compiled plan ->
 * the kernel tables of every endpoint's namespace. Keeps, per endpoint, what
 * it last programmed, so that membership changes become set element updates
 * and structural changes an atomic table replace. */
#ifndef MSEG_RECONCILE_H
#define MSEG_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mseg/util/err.h"
#include "mseg/model/model.h"
#include "mseg/compile/cache.h"
#include "mseg/model/plan.h"

struct reconciler;

struct reconcile_stats {
	uint64_t replaces;        /* atomic table replaces sent */
	uint64_t updates;         /* element-only batches sent */
	uint64_t updates_refused; /* element updates the kernel refused (then replaced) */
	uint64_t deletes;         /* tables removed */
	uint64_t adopted;         /* tables found in sync at start, left alone */
	uint64_t failures;        /* batches the kernel refused or namespaces not reachable */
	uint64_t drift_repairs;   /* resync found a difference and re-programmed */
	uint64_t elements_added, elements_deleted;
	uint64_t batch_ns_total;  /* wall time spent in batches */
	uint64_t conntrack_walks;     /* conntrack tables walked after a lost allow */
	uint64_t conntrack_walks_skipped; /* ... not walked: the namespace had no entry */
	uint64_t conntrack_revoked;   /* established connections cut (entries deleted) */
	uint64_t conntrack_failures;  /* walks or deletes that failed */
	uint64_t conntrack_walk_ns;   /* time spent walking and deleting */
	/* The last reconciler_apply(), from its call: to its return, and to
	 * the kernel's ack of its last batch (every namespace then has its
	 * rules; 0 when it sent none). The conntrack walks come after that
	 * ack, before the return. */
	uint64_t last_apply_ns;
	uint64_t last_apply_ack_ns;
};

/* Per-endpoint status for the API and readiness. */
struct reconcile_ep_status {
	const char *id;
	const char *netns;
	bool programmed;          /* the kernel holds the desired table */
	const char *name, *ns;    /* the endpoint's name and namespace */
	bool isolated[MSEG_DIR_COUNT];
	enum mseg_mode mode[MSEG_DIR_COUNT];
	size_t n_entries[MSEG_DIR_COUNT];
	const char *error;        /* last error, or NULL */
};

struct reconciler *reconciler_new(const struct table_opts *topts,
				  const struct compile_opts *copts);
struct reconciler *reconciler_free(struct reconciler *r);

/* What happens to established connections whose allow a change removes,
 * for policies without spec.revoke (msegd --revoke; default established):
 * ESTABLISHED cuts them (their conntrack entries in the endpoint's
 * namespace are deleted once every namespace of the change has its batch;
 * a namespace whose conntrack table is empty is not walked), NEW_ONLY
 * leaves them running. */
void reconciler_set_revoke(struct reconciler *r, enum mseg_revoke revoke);

/* Replace compile_opts.node_addrs and svc_routes (not copied: they must
 * stay valid until the next call or reconciler_free()); the next apply
 * compiles with them, and a change of either is an element update. */
void reconciler_set_cluster(struct reconciler *r, const struct mseg_addr *node_addrs,
			    size_t n_node_addrs, const struct mseg_svc_route *routes,
			    size_t n_routes);

/* Compile and program everything: every namespace's batch first, then
 * the conntrack walks of the endpoints that lost allows. Endpoints that
 * fail stay as they were in the kernel and are retried on the next call or
 * resync; returns 0 when all were programmed, -EIO when some failed (their
 * errors are in the status), -errno on a compile failure (nothing
 * programmed). */
int reconciler_apply(struct reconciler *r, const struct mseg_policy_set *pols,
		     const struct mseg_inventory *inv);

/* The next reconciler_apply() compiles everything (without this, it
 * computes only the groups whose content changed: compile/cache.h). */
void reconciler_cache_clear(struct reconciler *r);
const struct compile_cache_stats *reconciler_cache_stats(const struct reconciler *r);

/* Read every table back; re-program the ones that drifted. *ret_repaired
 * counts those. */
int reconciler_resync(struct reconciler *r, unsigned *ret_repaired);

bool reconciler_ready(const struct reconciler *r);
const struct reconcile_stats *reconciler_stats(const struct reconciler *r);
size_t reconciler_ep_count(const struct reconciler *r);
int reconciler_ep_status(const struct reconciler *r, size_t i, struct reconcile_ep_status *ret);
/* The index of endpoint @id for reconciler_ep_status(), or -1 when it is not
 * there (endpoints are kept sorted by id). */
ssize_t reconciler_ep_index(const struct reconciler *r, const char *id);

/* Iterate the messages of what happened in the last apply/resync (one per
 * endpoint event worth logging); the daemon logs them. */
size_t reconciler_event_count(const struct reconciler *r);
const char *reconciler_event(const struct reconciler *r, size_t i);

/* For the API (GET /v1/rules, /metrics, dry runs). */
struct ep_table_report;
struct ep_table_counters;

/* Read endpoint @i's table back and compare it with its desired plan
 * (ep_table_verify). -ENOENT for a bad index, -ENXIO when its namespace
 * could not be opened. */
int reconciler_ep_verify(struct reconciler *r, size_t i, struct ep_table_report *rep,
			 struct mseg_err *err);
/* The table endpoint @i should have, as nft text (malloc'd into *ret_text). */
int reconciler_ep_render(const struct reconciler *r, size_t i, char **ret_text);
/* The over-limit counters of endpoint @i's table (ep_table_counters_read). */
int reconciler_ep_counters(struct reconciler *r, size_t i, struct ep_table_counters *ret,
			   struct mseg_err *err);
/* Endpoint @i's namespace handle (NULL when it could not be opened); valid
 * until the next reconciler_apply. */
struct netns *reconciler_ep_netns(const struct reconciler *r, size_t i);
const struct compile_opts *reconciler_compile_opts(const struct reconciler *r);
const struct table_opts *reconciler_table_opts(const struct reconciler *r);

#endif
