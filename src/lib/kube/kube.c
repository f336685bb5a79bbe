/* The Kubernetes watcher and the source it builds (include/mseg/kube/kube.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/reflector.h"
#include "mseg/kube/kube.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "util/vec.h"

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
	char *node_name;
	char **said;                 /* build errors already logged */
	size_t n_said, cap_said;
	struct kube_build_errs said_cluster;   /* the same for kube_watcher_cluster() */
};

/* ---- trims: what msegd keeps of each object ---- */

static void copy_key(json_t *dst, json_t *src, const char *key)
{
	json_t *v = json_object_get(src, key);

	if (v)
		json_object_set(dst, key, v);
}

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

/* ---- building the source ---- */

static void errs_add(struct kube_build_errs *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void errs_add(struct kube_build_errs *e, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	if (!e)
		return;
	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if (VEC_RESERVE(e->lines, e->cap, e->n + 1) < 0) {
		free(s);
		return;
	}
	e->lines[e->n++] = s;
}

void kube_build_errs_release(struct kube_build_errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->lines[i]);
	free(e->lines);
	memset(e, 0, sizeof(*e));
}

static int build_policies(const json_t *store, const char *what, struct mseg_policy_set *pols,
			  struct kube_build_errs *errs)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)store, key, v) {
		char name[600], msg[1024];
		struct mseg_err err;
		char *doc = json_dumps(v, JSON_COMPACT);
		int r;

		if (!doc)
			return -ENOMEM;
		snprintf(name, sizeof(name), "kubernetes:%s/%s", what, key);
		err_clear(&err);
		r = policy_parse_buffer(pols, name, doc, strlen(doc), &err);
		free(doc);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			errs_add(errs, "%s (left out)", err_format(&err, msg, sizeof(msg)));
	}
	return 0;
}

static const struct mseg_endpoint *registered_find(const struct mseg_inventory *reg,
						   const char *ns, const char *name)
{
	for (size_t i = 0; reg && i < reg->n; i++)
		if (reg->eps[i]->name && strcmp(reg->eps[i]->name, name) == 0 &&
		    strcmp(reg->eps[i]->ns, ns) == 0)
			return reg->eps[i];
	return NULL;
}

/* One pod as an endpoint document; NULL: not one (no address, finished). */
static json_t *pod_endpoint(json_t *pod, const json_t *namespaces, const char *node,
			    const struct mseg_inventory *reg, const struct mseg_endpoint **ret_reg)
{
	json_t *md = json_object_get(pod, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *pnode = json_string_value(json_object_get(pod, "nodeName"));
	const char *phase = json_string_value(json_object_get(pod, "phase"));
	json_t *nsobj, *labels, *ips, *ep, *ip, *ports;
	const struct mseg_endpoint *r = NULL;
	char id[600], buf[64];
	size_t i;

	*ret_reg = NULL;
	if (!ns || !name)
		return NULL;
	if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
		return NULL;   /* its addresses may belong to another pod already */
	if (json_is_true(json_object_get(pod, "hostNetwork")))
		return NULL;   /* the node's addresses: never an endpoint */
	if (node && pnode && strcmp(node, pnode) == 0)
		r = registered_find(reg, ns, name);
	labels = json_object();
	if (r)
		for (size_t k = 0; k < r->n_labels; k++)
			json_object_set_new(labels, r->labels[k].key,
					    json_string(r->labels[k].value));
	/* the pod's labels win */
	json_object_update(labels, json_object_get(md, "labels"));
	ips = json_array();
	if (r) {
		for (i = 0; i < r->n_ips; i++)
			json_array_append_new(ips, json_string(addr_format(&r->ips[i], buf,
									 sizeof(buf))));
	} else {
		json_array_foreach(json_object_get(pod, "podIPs"), i, ip)
			if (json_is_string(json_object_get(ip, "ip")))
				json_array_append(ips, json_object_get(ip, "ip"));
	}
	if (!json_array_size(ips) || (node && pnode && strcmp(node, pnode) == 0 && !r)) {
		/* no address yet, or a pod of this node mseg-cni did not register */
		json_decref(labels);
		json_decref(ips);
		return NULL;
	}
	if (r)
		snprintf(id, sizeof(id), "%s", r->id);
	else
		snprintf(id, sizeof(id), "k8s.%s.%s", ns, name);
	ep = json_pack("{sssssssoso}", "id", id, "name", name, "namespace", ns, "labels", labels,
		       "ips", ips);
	if (!ep)
		return NULL;
	if (r && r->netns)
		json_object_set_new(ep, "netns", json_string(r->netns));
	nsobj = json_object_get(namespaces, ns);
	/* TODO(namespace labels): the inventory's ns_labels are the hook the
	 * namespace selectors read; kubernetes.io/metadata.name is set here
	 * until the model sets it itself */
	labels = json_deep_copy(json_object_get(json_object_get(nsobj, "metadata"), "labels"));
	if (!labels)
		labels = json_object();
	json_object_set_new(labels, "kubernetes.io/metadata.name", json_string(ns));
	json_object_set_new(ep, "ns_labels", labels);
	ports = json_object_get(pod, "ports");
	if (json_array_size(ports))
		json_object_set(ep, "ports", ports);
	*ret_reg = r;
	return ep;
}

int kube_source_build(const json_t *pods, const json_t *namespaces, const json_t *policies,
		      const char *node_name, const struct mseg_inventory *registered,
		      struct mseg_policy_set *pols, struct mseg_inventory *inv,
		      struct kube_build_errs *errs)
{
	const char *key;
	json_t *v;
	int r;

	r = build_policies(policies, "policies", pols, errs);
	if (r < 0)
		return r;
	json_object_foreach((json_t *)pods, key, v) {
		const struct mseg_endpoint *reg;
		struct mseg_endpoint *ep;
		struct mseg_err err;
		char name[600], msg[1024];
		json_t *doc = pod_endpoint(v, namespaces, node_name, registered, &reg);
		char *text;

		if (!doc)
			continue;
		text = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
		if (!text)
			return -ENOMEM;
		snprintf(name, sizeof(name), "kubernetes:pods/%s", key);
		err_clear(&err);
		r = endpoint_parse_buffer(NULL, name, text, strlen(text), &ep, &err);
		free(text);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			errs_add(errs, "%s (left out)", err_format(&err, msg, sizeof(msg)));
			continue;
		}
		ep->registered_ns = reg ? reg->registered_ns : 0;
		if (inventory_find(inv, ep->id)) {
			errs_add(errs, "%s: endpoint id '%s' twice (left out)", name, ep->id);
			endpoint_free(ep);
			continue;
		}
		r = inventory_put(inv, ep);
		if (r < 0) {
			endpoint_free(ep);
			return r;
		}
	}
	return 0;
}

/* ---- the watcher ---- */

static void on_upsert(void *data, const char *key, json_t *obj)
{
	struct kube_watcher *kw = data;

	if (kw->cbs.changed)
		kw->cbs.changed(kw->cbs.data);
}

static void on_listed(void *data)
{
	on_upsert(data, NULL, NULL);
}

static void on_log(void *data, enum log_level lvl, const char *msg)
{
	struct kube_watcher *kw = data;

	if (kw->cbs.log)
		kw->cbs.log(kw->cbs.data, lvl, msg);
}

static const struct kube_reflector_ops ops[KUBE_N_RESOURCES] = {
	[R_PODS] = { kube_pod_trim, on_upsert, on_upsert, on_listed, on_log },
	[R_NAMESPACES] = { kube_namespace_trim, on_upsert, on_upsert, on_listed, on_log },
	[R_ALLOWLISTS] = { kube_policy_trim, on_upsert, on_upsert, on_listed, on_log },
	[R_NETPOLS] = { kube_policy_trim, on_upsert, on_upsert, on_listed, on_log },
	[R_NODES] = { kube_node_trim, on_upsert, on_upsert, on_listed, on_log },
	[R_SERVICES] = { kube_service_trim, on_upsert, on_upsert, on_listed, on_log },
	[R_SLICES] = { kube_slice_trim, on_upsert, on_upsert, on_listed, on_log },
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
	};
	int r;

	if (!kw)
		return err_setf(err, ENOMEM, "out of memory");
	kw->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	kw->cbs = *cbs;
	if (o->node_name && !(kw->node_name = strdup(o->node_name))) {
		kube_watcher_free(kw);
		return err_setf(err, ENOMEM, "out of memory");
	}
	kw->http = kube_http_new(loop, &kw->cfg, &r);
	if (!kw->http) {
		kube_watcher_free(kw);
		return err_setf(err, -r, "kubernetes: %s", strerror(-r));
	}
	for (int i = 0; i < KUBE_N_RESOURCES; i++) {
		struct kube_reflector_opts rop = ro;
		char query[512];

		if (i == R_NODES) {
			/* only this node's Node object, not every node's */
			node_selector(kw->node_name, query, sizeof(query));
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
	for (size_t i = 0; i < kw->n_said; i++)
		free(kw->said[i]);
	free(kw->said);
	kube_build_errs_release(&kw->said_cluster);
	free(kw->node_name);
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

/* Log each build error once while it lasts. */
static void watcher_say(struct kube_watcher *kw, struct kube_build_errs *e)
{
	for (size_t i = 0; i < e->n; i++) {
		bool old = false;

		for (size_t j = 0; j < kw->n_said && !old; j++)
			old = strcmp(kw->said[j], e->lines[i]) == 0;
		if (!old)
			on_log(kw, LOG_LVL_ERROR, e->lines[i]);
	}
	for (size_t j = 0; j < kw->n_said; j++)
		free(kw->said[j]);
	free(kw->said);
	kw->said = e->lines;
	kw->n_said = e->n;
	kw->cap_said = e->cap;
	memset(e, 0, sizeof(*e));
}

int kube_watcher_build(struct kube_watcher *kw, const struct mseg_inventory *registered,
		       struct mseg_policy_set *pols, struct mseg_inventory *inv)
{
	struct kube_build_errs errs = { 0 };
	json_t *policies = json_object();
	int r;

	if (!policies)
		return -ENOMEM;
	/* AllowLists and NetworkPolicies share one name space per namespace */
	json_object_update(policies, kube_reflector_store(kw->rf[R_ALLOWLISTS]));
	{
		const char *key;
		json_t *v;
		char k[600];

		json_object_foreach(kube_reflector_store(kw->rf[R_NETPOLS]), key, v) {
			snprintf(k, sizeof(k), "networkpolicy:%s", key);
			json_object_set(policies, k, v);
		}
	}
	r = kube_source_build(kube_reflector_store(kw->rf[R_PODS]),
			      kube_reflector_store(kw->rf[R_NAMESPACES]), policies, kw->node_name,
			      registered, pols, inv, &errs);
	json_decref(policies);
	watcher_say(kw, &errs);
	kube_build_errs_release(&errs);
	return r;
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
			       kube_reflector_store(kw->rf[R_SLICES]), kw->node_name, ret, &errs);
	cluster_say(kw, &errs);
	kube_build_errs_release(&errs);
	return r;
}
