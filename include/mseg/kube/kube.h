/* msegd's Kubernetes watcher: Pods, Namespaces, AllowLists (mseg.io/v1),
 * NetworkPolicies, this node's Node object, Services and EndpointSlices
 * from the API server, listed and watched from the
 * daemon's event loop, turned into a desired-state source (policies and
 * endpoints). Nothing here logs: lines worth logging go to a callback. */
#ifndef MSEG_KUBE_H
#define MSEG_KUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mseg/kube/kubeconfig.h"
#include "mseg/model/model.h"
#include "mseg/util/err.h"
#include "mseg/util/log.h"

struct evloop;
struct kube_watcher;

struct kube_watcher_opts {
	const char *node_name;      /* this node: its pods are our endpoints */
	unsigned idle_timeout_s;    /* default 90 */
	unsigned backoff_max_ms;    /* default 30000 */
	unsigned page_size;         /* list pages of this many objects (limit=N); 0: one page */
	/* the sets the watcher keeps up to date (struct kube_source) */
	struct mseg_policy_set *pols;
	struct mseg_inventory *inv;
};

#define KUBE_PAGE_SIZE_DEFAULT 500

struct kube_watcher_cbs {
	void (*changed)(void *data);   /* the source changed: sync and reconcile */
	void (*log)(void *data, enum log_level lvl, const char *msg);
	void *data;
	/* Optional (NULL: every pod event is a change): a pod watch event is
	 * judged by the pod's state before it (@after false) and after it,
	 * @ep its endpoint in the source (NULL: none), @local a pod of this
	 * node; true: that state may change a table of this node. An event of
	 * which neither state may is staged like any other. Every pod change
	 * is reported through @pod_event instead of @changed: @matters, one of
	 * its states may; @rv, the event's resourceVersion, NULL for a change
	 * that was not judged (from a list: the first, a relist; or one that
	 * ran out of memory), which is a change. */
	bool (*pod_matters)(void *data, const char *key, const struct mseg_endpoint *ep,
			    bool local, bool after);
	void (*pod_event)(void *data, bool matters, const char *rv);
};

/* What /v1/status and /metrics say about one watched resource. */
struct kube_resource_status {
	const char *resource;        /* "pods", "namespaces", ... */
	bool synced;                 /* listed at least once */
	uint64_t stale_since_ns;     /* CLOCK_REALTIME; 0: the watch is live */
	uint64_t lists, relists, watches, restarts, errors, events;
	uint64_t pages;              /* list pages received (limit/continue) */
	uint64_t list_restarts;      /* lists started again: continue token expired */
	size_t objects;              /* held now (Services, EndpointSlices, ...) */
	char rv[32];                 /* the last resourceVersion seen */
	char last_error[512];
};

#define KUBE_N_RESOURCES 7

/* Start watching; takes @cfg's contents (it ends empty). */
int kube_watcher_new(struct evloop *loop, struct kube_config *cfg,
		     const struct kube_watcher_opts *o, const struct kube_watcher_cbs *cbs,
		     struct kube_watcher **ret, struct mseg_err *err);
struct kube_watcher *kube_watcher_free(struct kube_watcher *kw);

/* Every resource listed at least once. */
bool kube_watcher_synced(const struct kube_watcher *kw);

/* Status of resource @i (< KUBE_N_RESOURCES). */
void kube_watcher_status(const struct kube_watcher *kw, size_t i,
			 struct kube_resource_status *ret);
const char *kube_watcher_server(const struct kube_watcher *kw);

/* Pod watch events judged by kube_watcher_cbs.pod_matters: those that may
 * change a table of this node (@ret_local) and those that cannot
 * (@ret_none). */
void kube_watcher_pod_events(const struct kube_watcher *kw, uint64_t *ret_local,
			     uint64_t *ret_none);

/* Bring this node's pods up to date with @registered (the endpoints
 * mseg-cni registered); everything else of the source was updated as the
 * events came (the endpoint changes staged, applied to the inventory's
 * array here). Call before each view of the desired state. -ENOMEM. */
int kube_watcher_sync(struct kube_watcher *kw, const struct mseg_inventory *registered);

/* The cluster's source, kept up to date object by object in the sets the
 * owner gives (the desired state's "kubernetes" source): AllowLists and
 * NetworkPolicies as policies, each parsed once when it changes (an
 * AllowList and a NetworkPolicy of one namespace/name: the AllowList);
 * Namespaces as namespace objects (the labels namespace selectors read);
 * other nodes' running pods with addresses as peers (no netns, id
 * "k8s.NS.NAME"), each made once when it changes; this node's pods,
 * matched to what mseg-cni registered by namespace/name and uid when both
 * are known, at each kube_source_sync(): a copy of the registered endpoint
 * (same id, netns, addresses) with the pod's labels (winning over the
 * registered ones) and named ports. Of two pods with one address, the one
 * seen last has it. A pod's endpoint change is staged in the inventory
 * (inventory_stage_put(): inventory_find() and every view see it at once,
 * its sorted array at the next kube_source_sync(), which applies them all
 * in one pass), so that one watch event never moves an array of every pod
 * of the cluster. A bad object is left out, and said once through @log.
 * Keys are the store keys "NS/NAME" (namespaces: "NAME"); objects are
 * trimmed (kube_*_trim); a pod of this node is kept with a new reference,
 * a policy as its text, nothing else of an object. */
enum kube_policy_kind { KUBE_ALLOWLIST, KUBE_NETWORKPOLICY, KUBE_POLICY_KINDS };

struct kube_source {
	struct mseg_policy_set *pols;   /* the owner's; updated in place */
	struct mseg_inventory *inv;
	char *node_name;
	json_t *pods;                   /* this node's pods: key -> trimmed pod (of
	                                 * another node's only its peer is kept) */
	json_t *pod_ids;                /* this node's pods: key -> the id of its
	                                 * endpoint in @inv (a peer's is k8s.NS.NAME) */
	json_t *local;                  /* keys of this node's pods */
	json_t *policies[KUBE_POLICY_KINDS];   /* key -> the trimmed object as compact
	                                        * JSON text (a JSON string) */
	json_t *errors;                 /* object -> its error line, said once */
	json_t *in_set;                 /* "NS/NAME" of each policy it put in @pols */
	bool local_dirty;               /* a pod of this node changed since the sync */
	uint64_t registered_serial;     /* the registrations' inventory (its serial)
	                                 * at the last sync */
	void (*log)(void *data, enum log_level lvl, const char *msg);
	void *log_data;
};

int kube_source_init(struct kube_source *src, const char *node_name,
		     struct mseg_policy_set *pols, struct mseg_inventory *inv);
/* Leaves the owner's sets as they are. */
void kube_source_release(struct kube_source *src);
int kube_source_pod_put(struct kube_source *src, const char *key, json_t *pod);
int kube_source_pod_remove(struct kube_source *src, const char *key);
int kube_source_namespace_put(struct kube_source *src, const char *name, json_t *ns);
int kube_source_namespace_remove(struct kube_source *src, const char *name);
int kube_source_policy_put(struct kube_source *src, enum kube_policy_kind kind, const char *key,
			   json_t *obj);
int kube_source_policy_remove(struct kube_source *src, enum kube_policy_kind kind,
			      const char *key);
int kube_source_sync(struct kube_source *src, const struct mseg_inventory *registered);
/* The endpoint pod @key stands for now (staged changes included; NULL:
 * none) and whether it is a pod of this node (*@ret_local). */
const struct mseg_endpoint *kube_source_pod_endpoint(struct kube_source *src, const char *key,
						     bool *ret_local);
/* Objects left out now. */
size_t kube_source_error_count(const struct kube_source *src);

/* The trims the watcher applies (exposed for tests): new references. */
json_t *kube_pod_trim(json_t *pod);
json_t *kube_namespace_trim(json_t *ns);
json_t *kube_policy_trim(json_t *obj);

/* What the cluster says besides policies and endpoints: this node's
 * addresses (its Node object's status.addresses of type InternalIP and
 * ExternalIP; traffic to and from them is never isolated) and the Service
 * routes (each ClusterIP and external IP with a Service port, to each ready
 * backend of the Service's EndpointSlices: compile_opts.svc_routes). */
struct kube_cluster {
	struct mseg_addr *node_addrs;
	size_t n_node_addrs;
	struct mseg_svc_route *routes;     /* sorted, unique */
	size_t n_routes;
};

/* The cluster part as the watcher knows it now (@ret filled, to be
 * released). Bad addresses are left out, said once through the log
 * callback. -ENOMEM. */
int kube_watcher_cluster(struct kube_watcher *kw, struct kube_cluster *ret);

/* A Node, Service or EndpointSlice changed (or was listed) since the last
 * successful kube_watcher_cluster(): the cluster part is to be read again. */
bool kube_watcher_cluster_changed(const struct kube_watcher *kw);

/* The error lines of a build, one per object left out. */
struct kube_build_errs {
	char **lines;
	size_t n, cap;
};
void kube_build_errs_release(struct kube_build_errs *e);

/* The pure part, for tests: the watcher's stores of Nodes, Services and
 * EndpointSlices (trimmed objects by key). */
int kube_cluster_build(const json_t *nodes, const json_t *services, const json_t *slices,
		       const char *node_name, struct kube_cluster *ret, struct kube_build_errs *errs);
void kube_cluster_release(struct kube_cluster *c);

json_t *kube_node_trim(json_t *node);
json_t *kube_service_trim(json_t *svc);
json_t *kube_slice_trim(json_t *slice);

#endif
