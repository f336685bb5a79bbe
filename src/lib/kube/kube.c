/* The Kubernetes watcher and the source it builds (include/mseg/kube/kube.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/reflector.h"
#include "mseg/kube/kube.h"
#include "kube/trim.h"

enum { R_PODS, R_NAMESPACES, R_ALLOWLISTS, R_NETPOLS, R_NODES, R_SERVICES, R_SLICES };

static const char *const resource_paths[KUBE_N_RESOURCES] = {
	[R_PODS] = "/api/v1/pods",
	[R_NAMESPACES] = "/api/v1/namespaces",
	[R_ALLOWLISTS] = "/apis/mseg.io/v1/allowlists",
	[R_NETPOLS] = "/apis/networking.k8s.io/v1/networkpolicies",
	[R_NODES] = "/api/v1/nodes",   /* this node's only: a field selector */
	[R_SERVICES] = "/api/v1/services",
	[R_SLICES] = "/apis/discovery.k8s.io/v1/endpointslices",
};

struct kube_watcher {
	struct kube_config cfg;
	struct kube_http *http;
	struct kube_reflector *rf[KUBE_N_RESOURCES];
	struct kube_watcher_cbs cbs;
	struct kube_source src;      /* in the owner's sets */
	struct kube_build_errs said_cluster;   /* what kube_watcher_cluster() said */
	bool cluster_dirty;          /* a Node, Service or EndpointSlice changed */
	uint64_t pod_events_local, pod_events_none;   /* judged by cbs.pod_matters */
};

/* ---- trims: what msegd keeps of each object ---- */

json_t *kube_pod_trim(json_t *pod)
{
	json_t *md = json_object_get(pod, "metadata"), *spec = json_object_get(pod, "spec");
	json_t *status = json_object_get(pod, "status"), *t, *m, *ports, *c, *p;
	size_t i, j;

	if (!json_is_object(md))
		return NULL;
	t = json_object();
	m = json_object();
	copy_key(m, md, "namespace");
	copy_key(m, md, "name");
	copy_key(m, md, "uid");
	copy_key(m, md, "labels");
	json_object_set_new(t, "metadata", m);
	copy_key(t, spec, "nodeName");
	copy_key(t, spec, "hostNetwork");
	copy_key(t, status, "podIPs");
	copy_key(t, status, "phase");
	ports = json_array();
	json_array_foreach(json_object_get(spec, "containers"), i, c) {
		json_array_foreach(json_object_get(c, "ports"), j, p) {
			json_t *proto = json_object_get(p, "protocol");

			if (!json_is_string(json_object_get(p, "name")))
				continue;
			json_array_append_new(ports, json_pack("{sOsOso}", "name",
				json_object_get(p, "name"), "port",
				json_object_get(p, "containerPort") ?: json_null(), "protocol",
				proto ? json_incref(proto) : json_string("TCP")));
		}
	}
	json_object_set_new(t, "ports", ports);
	return t;
}

json_t *kube_namespace_trim(json_t *ns)
{
	json_t *md = json_object_get(ns, "metadata"), *m;

	if (!json_is_object(md))
		return NULL;
	m = json_object();
	copy_key(m, md, "name");
	copy_key(m, md, "labels");
	return json_pack("{so}", "metadata", m);
}

/* A policy object as a policy document: apiVersion, kind, the name and
 * namespace of its metadata, spec (status, uid, managedFields... dropped). */
json_t *kube_policy_trim(json_t *obj)
{
	json_t *md = json_object_get(obj, "metadata"), *t, *m;

	if (!json_is_object(md))
		return NULL;
	t = json_object();
	m = json_object();
	copy_key(t, obj, "apiVersion");
	copy_key(t, obj, "kind");
	copy_key(m, md, "name");
	copy_key(m, md, "namespace");
	json_object_set_new(t, "metadata", m);
	copy_key(t, obj, "spec");
	return t;
}

/* ---- the watcher ---- */

/* Each resource's events update the source in place (struct kube_source). */
static void watcher_changed(struct kube_watcher *kw, int r)
{
	if (r == -ENOMEM && kw->cbs.log)
		kw->cbs.log(kw->cbs.data, LOG_LVL_ERROR, "out of memory: an object is left out "
			    "until it changes again or the next relist");
	if (kw->cbs.changed)
		kw->cbs.changed(kw->cbs.data);
}

/* May pod @key, as the source has it now, change a table of this node? */
static bool pod_matters(struct kube_watcher *kw, const char *key, bool after)
{
	bool local;
	const struct mseg_endpoint *ep = kube_source_pod_endpoint(&kw->src, key, &local);

	return kw->cbs.pod_matters(kw->cbs.data, key, ep, local, after);
}

static bool pods_judged(const struct kube_watcher *kw)
{
	return kw->cbs.pod_matters && kw->cbs.pod_event;
}

/* A pod event: judged by the pod's state before (@before) and after it. */
static void pod_changed(struct kube_watcher *kw, const char *key, const char *rv, bool before,
			int r)
{
	bool after;

	if (!pods_judged(kw)) {
		watcher_changed(kw, r);
		return;
	}
	if (!rv || r < 0) {
		if (r == -ENOMEM && kw->cbs.log)
			kw->cbs.log(kw->cbs.data, LOG_LVL_ERROR, "out of memory: an object is left "
				    "out until it changes again or the next relist");
		kw->cbs.pod_event(kw->cbs.data, true, NULL);
		return;
	}
	after = pod_matters(kw, key, true);
	if (before || after)
		kw->pod_events_local++;
	else
		kw->pod_events_none++;
	kw->cbs.pod_event(kw->cbs.data, before || after, rv);
}

/* The resourceVersion of the watch event being applied (NULL: a list). */
static const char *pod_event_rv(struct kube_watcher *kw)
{
	return kube_reflector_event_rv(kw->rf[R_PODS]);
}

static void on_pod(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;
	const char *rv = pod_event_rv(kw);
	bool before = pods_judged(kw) && rv ? pod_matters(kw, key, false) : true;

	pod_changed(kw, key, rv, before, kube_source_pod_put(&kw->src, key, obj));
}

static void on_pod_gone(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;
	const char *rv = pod_event_rv(kw);
	bool before = pods_judged(kw) && rv ? pod_matters(kw, key, false) : true;

	pod_changed(kw, key, rv, before, kube_source_pod_remove(&kw->src, key));
}

static void on_namespace(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	watcher_changed(kw, kube_source_namespace_put(&kw->src, key, obj));
}

static void on_namespace_gone(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	watcher_changed(kw, kube_source_namespace_remove(&kw->src, key));
}

static void on_allowlist(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	watcher_changed(kw, kube_source_policy_put(&kw->src, KUBE_ALLOWLIST, key, obj));
}

static void on_allowlist_gone(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	watcher_changed(kw, kube_source_policy_remove(&kw->src, KUBE_ALLOWLIST, key));
}

static void on_netpol(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	watcher_changed(kw, kube_source_policy_put(&kw->src, KUBE_NETWORKPOLICY, key, obj));
}

static void on_netpol_gone(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	watcher_changed(kw, kube_source_policy_remove(&kw->src, KUBE_NETWORKPOLICY, key));
}

static void on_listed(void *data)
{
	watcher_changed(data, 0);
}

/* Nodes, Services, EndpointSlices: the reflectors' stores hold the trimmed
 * objects; kube_watcher_cluster() reads them when one changed. */
static void on_cluster(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	(void)key;
	(void)obj;
	kw->cluster_dirty = true;
	watcher_changed(kw, 0);
}

static void on_cluster_listed(void *data)
{
	struct kube_watcher *kw = data;

	kw->cluster_dirty = true;
	watcher_changed(kw, 0);
}

static void on_log(void *data, enum log_level lvl, const char *msg)
{
	struct kube_watcher *kw = data;

	if (kw->cbs.log)
		kw->cbs.log(kw->cbs.data, lvl, msg);
}

static const struct kube_reflector_ops ops[KUBE_N_RESOURCES] = {
	[R_PODS] = { kube_pod_trim, on_pod, on_pod_gone, on_listed, on_log },
	[R_NAMESPACES] = { kube_namespace_trim, on_namespace, on_namespace_gone, on_listed,
			   on_log },
	[R_ALLOWLISTS] = { kube_policy_trim, on_allowlist, on_allowlist_gone, on_listed, on_log },
	[R_NETPOLS] = { kube_policy_trim, on_netpol, on_netpol_gone, on_listed, on_log },
	[R_NODES] = { kube_node_trim, on_cluster, on_cluster, on_cluster_listed, on_log },
	[R_SERVICES] = { kube_service_trim, on_cluster, on_cluster, on_cluster_listed, on_log },
	[R_SLICES] = { kube_slice_trim, on_cluster, on_cluster, on_cluster_listed, on_log },
};

/* "fieldSelector=metadata.name%3DNAME", NAME percent-encoded. */
static void node_selector(const char *name, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "fieldSelector=metadata.name%%3D");

	for (const char *p = name ? name : ""; *p && n + 4 < size; p++) {
		unsigned char ch = (unsigned char)*p;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_')
			buf[n++] = (char)ch;
		else
			n += (size_t)snprintf(buf + n, size - n, "%%%02X", ch);
	}
	buf[n] = '\0';
}

int kube_watcher_new(struct evloop *loop, struct kube_config *cfg,
		     const struct kube_watcher_opts *o, const struct kube_watcher_cbs *cbs,
		     struct kube_watcher **ret, struct mseg_err *err)
{
	struct kube_watcher *kw = calloc(1, sizeof(*kw));
	struct kube_reflector_opts ro = {
		.idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : 90,
		.watch_timeout_s = 300 + (unsigned)(kube_random() % 300),
		.backoff_min_ms = 200,
		.backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 30000,
		.page_size = o->page_size,
	};
	int r;

	if (!kw)
		return err_setf(err, ENOMEM, "out of memory");
	kw->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	kw->cbs = *cbs;
	kw->cluster_dirty = true;   /* the first list makes it */
	if (kube_source_init(&kw->src, o->node_name, o->pols, o->inv) < 0) {
		kube_watcher_free(kw);
		return err_setf(err, ENOMEM, "out of memory");
	}
	kw->src.log = on_log;
	kw->src.log_data = kw;
	kw->http = kube_http_new(loop, &kw->cfg, &r);
	if (!kw->http) {
		kube_watcher_free(kw);
		return err_setf(err, -r, "kubernetes: %s", strerror(-r));
	}
	for (int i = 0; i < KUBE_N_RESOURCES; i++) {
		struct kube_reflector_opts rop = ro;
		char query[512];

		/* of a pod or a policy, the source keeps what it made of
		 * it: the reflector needs only to tell a change from a repeat */
		rop.store_digest = i == R_PODS || i == R_ALLOWLISTS || i == R_NETPOLS;
		if (i == R_NODES) {
			/* only this node's Node object, not every node's */
			node_selector(o->node_name, query, sizeof(query));
			rop.query = query;
		}
		kw->rf[i] = kube_reflector_new(kw->http, resource_paths[i], &rop, &ops[i], kw);
		if (!kw->rf[i]) {
			kube_watcher_free(kw);
			return err_setf(err, ENOMEM, "out of memory");
		}
	}
	*ret = kw;
	return 0;
}

struct kube_watcher *kube_watcher_free(struct kube_watcher *kw)
{
	if (!kw)
		return NULL;
	for (int i = 0; i < KUBE_N_RESOURCES; i++)
		kw->rf[i] = kube_reflector_free(kw->rf[i]);
	kw->http = kube_http_free(kw->http);
	kube_config_release(&kw->cfg);
	kube_source_release(&kw->src);
	kube_build_errs_release(&kw->said_cluster);
	free(kw);
	return NULL;
}

bool kube_watcher_synced(const struct kube_watcher *kw)
{
	struct kube_resource_status st;

	for (int i = 0; i < KUBE_N_RESOURCES; i++) {
		kube_reflector_status(kw->rf[i], &st);
		if (!st.synced)
			return false;
	}
	return true;
}

void kube_watcher_status(const struct kube_watcher *kw, size_t i,
			 struct kube_resource_status *ret)
{
	kube_reflector_status(kw->rf[i], ret);
}

const char *kube_watcher_server(const struct kube_watcher *kw)
{
	return kw->cfg.server;
}

int kube_watcher_sync(struct kube_watcher *kw, const struct mseg_inventory *registered)
{
	return kube_source_sync(&kw->src, registered);
}

/* Log each error of the cluster part once while it lasts. */
static void cluster_say(struct kube_watcher *kw, struct kube_build_errs *e)
{
	for (size_t i = 0; i < e->n; i++) {
		bool old = false;

		for (size_t j = 0; j < kw->said_cluster.n && !old; j++)
			old = strcmp(kw->said_cluster.lines[j], e->lines[i]) == 0;
		if (!old)
			on_log(kw, LOG_LVL_ERROR, e->lines[i]);
	}
	kube_build_errs_release(&kw->said_cluster);
	kw->said_cluster = *e;
	memset(e, 0, sizeof(*e));
}

int kube_watcher_cluster(struct kube_watcher *kw, struct kube_cluster *ret)
{
	struct kube_build_errs errs = { 0 };
	int r;

	r = kube_cluster_build(kube_reflector_store(kw->rf[R_NODES]),
			       kube_reflector_store(kw->rf[R_SERVICES]),
			       kube_reflector_store(kw->rf[R_SLICES]), kw->src.node_name, ret, &errs);
	cluster_say(kw, &errs);
	kube_build_errs_release(&errs);
	if (r == 0)
		kw->cluster_dirty = false;
	return r;
}

void kube_watcher_pod_events(const struct kube_watcher *kw, uint64_t *ret_local,
			     uint64_t *ret_none)
{
	*ret_local = kw->pod_events_local;
	*ret_none = kw->pod_events_none;
}

bool kube_watcher_cluster_changed(const struct kube_watcher *kw)
{
	return kw->cluster_dirty;
}
