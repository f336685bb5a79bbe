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
};

struct kube_watcher_cbs {
	void (*changed)(void *data);   /* the source changed: build it again */
	void (*log)(void *data, enum log_level lvl, const char *msg);
	void *data;
};

/* What /v1/status and /metrics say about one watched resource. */
struct kube_resource_status {
	const char *resource;        /* "pods", "namespaces", ... */
	bool synced;                 /* listed at least once */
	uint64_t stale_since_ns;     /* CLOCK_REALTIME; 0: the watch is live */
	uint64_t lists, relists, watches, restarts, errors, events;
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

/* The source as the watcher knows it now (@pols, @inv initialized, empty):
 * AllowLists and NetworkPolicies as policies; this node's pods matched by
 * namespace/name to @registered (the endpoints mseg-cni registered): a
 * copy of the registered endpoint (same id, netns, addresses) with the
 * pod's labels (winning over the registered ones), named ports and its
 * namespace's labels; other nodes' running pods with addresses as peers
 * (no netns, id "k8s.NS.NAME"). A bad object is left out, and said once
 * through the log callback. -ENOMEM. */
int kube_watcher_build(struct kube_watcher *kw, const struct mseg_inventory *registered,
		       struct mseg_policy_set *pols, struct mseg_inventory *inv);

/* The pure part of kube_watcher_build, for tests: @pods, @namespaces,
 * @policies are the watcher's stores (JSON objects "key" -> trimmed
 * object). @errs (may be NULL) gets one line per object left out. */
struct kube_build_errs {
	char **lines;
	size_t n, cap;
};
int kube_source_build(const json_t *pods, const json_t *namespaces, const json_t *policies,
		      const char *node_name, const struct mseg_inventory *registered,
		      struct mseg_policy_set *pols, struct mseg_inventory *inv,
		      struct kube_build_errs *errs);
void kube_build_errs_release(struct kube_build_errs *e);

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

/* The pure part, for tests: the watcher's stores of Nodes, Services and
 * EndpointSlices (trimmed objects by key). */
int kube_cluster_build(const json_t *nodes, const json_t *services, const json_t *slices,
		       const char *node_name, struct kube_cluster *ret, struct kube_build_errs *errs);
void kube_cluster_release(struct kube_cluster *c);

json_t *kube_node_trim(json_t *node);
json_t *kube_service_trim(json_t *svc);
json_t *kube_slice_trim(json_t *slice);

#endif
