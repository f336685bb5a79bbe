/* The cluster's desired-state source, kept up to date object by object
 * (include/mseg/kube/kube.h, struct kube_source): a policy is parsed once
 * when it changes, a pod of another node becomes its peer endpoint once
 * when it changes, a namespace is one namespace object; only this node's
 * pods, which depend on what mseg-cni registered, are looked at again at
 * each sync. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/kube/kube.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/names.h"
#include "mseg/model/policy.h"
#include "mseg/util/clock.h"

static const char *const kind_names[KUBE_POLICY_KINDS] = {
	[KUBE_ALLOWLIST] = "allowlists",
	[KUBE_NETWORKPOLICY] = "networkpolicies",
};

int kube_source_init(struct kube_source *src, const char *node_name,
		     struct mseg_policy_set *pols, struct mseg_inventory *inv)
{
	memset(src, 0, sizeof(*src));
	src->pols = pols;
	src->inv = inv;
	src->pods = json_object();
	src->pod_ids = json_object();
	src->local = json_object();
	src->errors = json_object();
	for (int k = 0; k < KUBE_POLICY_KINDS; k++)
		src->policies[k] = json_object();
	if (node_name)
		src->node_name = strdup(node_name);
	if (!src->pods || !src->pod_ids || !src->local || !src->errors || !src->policies[0] ||
	    !src->policies[1] || (node_name && !src->node_name)) {
		kube_source_release(src);
		return -ENOMEM;
	}
	return 0;
}

void kube_source_release(struct kube_source *src)
{
	json_decref(src->pods);
	json_decref(src->pod_ids);
	json_decref(src->local);
	json_decref(src->errors);
	for (int k = 0; k < KUBE_POLICY_KINDS; k++)
		json_decref(src->policies[k]);
	free(src->node_name);
	memset(src, 0, sizeof(*src));
}

/* An object's error line: said (through @src->log) when it is new or
 * differs from the one this object had; NULL clears it. */
static void source_error(struct kube_source *src, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void source_error(struct kube_source *src, const char *key, const char *fmt, ...)
{
	const char *old = json_string_value(json_object_get(src->errors, key));
	char msg[1200];
	va_list ap;

	if (!fmt) {
		json_object_del(src->errors, key);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (old && strcmp(old, msg) == 0)
		return;
	json_object_set_new(src->errors, key, json_string(msg));
	if (src->log)
		src->log(src->log_data, LOG_LVL_ERROR, msg);
}

size_t kube_source_error_count(const struct kube_source *src)
{
	return json_object_size(src->errors);
}

/* ---- policies ---- */

/* Parse @obj (a trimmed policy object) into its own policy. */
static int policy_of(struct kube_source *src, enum kube_policy_kind kind, const char *key,
		     json_t *obj, struct mseg_policy **ret)
{
	struct mseg_policy_set one;
	struct mseg_err err;
	char name[600], msg[1024], ekey[600];
	char *doc = json_dumps(obj, JSON_COMPACT);
	int r;

	*ret = NULL;
	if (!doc)
		return -ENOMEM;
	snprintf(name, sizeof(name), "kubernetes:%s/%s", kind_names[kind], key);
	snprintf(ekey, sizeof(ekey), "%s/%s", kind_names[kind], key);
	policy_set_init(&one);
	err_clear(&err);
	r = policy_parse_buffer(&one, name, doc, strlen(doc), &err);
	free(doc);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || one.n != 1) {
		if (r < 0)
			source_error(src, ekey, "%s (left out)", err_format(&err, msg, sizeof(msg)));
		else
			source_error(src, ekey, "%s: not one policy (left out)", name);
		policy_set_release(&one);
		return 0;
	}
	*ret = one.items[0];
	one.n = 0;
	policy_set_release(&one);
	source_error(src, ekey, NULL);
	return 0;
}

/* Put the policy of store key @key into the set, from whichever kind has
 * it: an AllowList and a NetworkPolicy of one namespace/name share the
 * name, the AllowList keeps it and the other is left out, said once. */
static int policy_refresh(struct kube_source *src, const char *key)
{
	json_t *al = json_object_get(src->policies[KUBE_ALLOWLIST], key);
	json_t *np = json_object_get(src->policies[KUBE_NETWORKPOLICY], key);
	struct mseg_policy *p = NULL;
	char ekey[600];
	const char *slash = strchr(key, '/');
	char ns[300];
	int r;

	snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - key) : 0, key);
	snprintf(ekey, sizeof(ekey), "%s/%s", kind_names[KUBE_NETWORKPOLICY], key);
	if (al) {
		r = policy_of(src, KUBE_ALLOWLIST, key, al, &p);
		if (r < 0)
			return r;
		if (np)
			source_error(src, ekey, "kubernetes:networkpolicies/%s: an AllowList has the "
				     "same namespace/name (left out)", key);
	} else if (np) {
		r = policy_of(src, KUBE_NETWORKPOLICY, key, np, &p);
		if (r < 0)
			return r;
	}
	if (!p) {
		if (slash)
			policy_set_remove(src->pols, ns, slash + 1);
		return 0;
	}
	/* a document's own namespace/name might differ from the key: the set
	 * holds what the key had */
	if (slash && (strcmp(p->ns, ns) != 0 || strcmp(p->name, slash + 1) != 0))
		policy_set_remove(src->pols, ns, slash + 1);
	r = policy_set_put(src->pols, p);
	if (r < 0)
		policy_free(p);
	return r;
}

int kube_source_policy_put(struct kube_source *src, enum kube_policy_kind kind, const char *key,
			   json_t *obj)
{
	json_object_set(src->policies[kind], key, obj);
	return policy_refresh(src, key);
}

int kube_source_policy_remove(struct kube_source *src, enum kube_policy_kind kind,
			      const char *key)
{
	char ekey[600];

	snprintf(ekey, sizeof(ekey), "%s/%s", kind_names[kind], key);
	source_error(src, ekey, NULL);
	json_object_del(src->policies[kind], key);
	return policy_refresh(src, key);
}

/* ---- namespaces ---- */

int kube_source_namespace_put(struct kube_source *src, const char *name, json_t *obj)
{
	json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels"), *v;
	struct mseg_label *ls;
	struct mseg_namespace *ns;
	const char *k;
	size_t n = 0;
	int r;

	ls = calloc(json_object_size(labels) + 1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	json_object_foreach(labels, k, v)
		if (json_is_string(v))
			ls[n++] = (struct mseg_label){ k, json_string_value(v) };
	r = namespace_new(name, ls, n, &ns);
	free(ls);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		source_error(src, name, "kubernetes:namespaces/%s: a label is not valid (its "
			     "labels are left out)", name);
		r = namespace_new(name, NULL, 0, &ns);
		if (r < 0)
			return r;
	} else {
		source_error(src, name, NULL);
	}
	r = inventory_ns_put(src->inv, ns);
	if (r < 0)
		namespace_free(ns);
	return r;
}

int kube_source_namespace_remove(struct kube_source *src, const char *name)
{
	source_error(src, name, NULL);
	inventory_ns_remove(src->inv, name);
	return 0;
}

/* ---- pods ---- */

static bool pod_is_local(const struct kube_source *src, json_t *pod)
{
	const char *pnode = json_string_value(json_object_get(pod, "nodeName"));

	return src->node_name && pnode && strcmp(src->node_name, pnode) == 0;
}

/* The registration of pod @ns/@name of uid @uid (may be NULL): same
 * namespace and name, and the same uid where both are known (a pod
 * deleted and created again under its name is another pod). */
static const struct mseg_endpoint *registered_find(const struct mseg_inventory *reg,
						   const char *ns, const char *name,
						   const char *uid)
{
	for (size_t i = 0; reg && i < reg->n; i++) {
		const struct mseg_endpoint *ep = reg->eps[i];

		if (ep->name && strcmp(ep->name, name) == 0 && strcmp(ep->ns, ns) == 0 &&
		    (!uid || !ep->pod_uid || strcmp(ep->pod_uid, uid) == 0))
			return ep;
	}
	return NULL;
}

/* One pod as an endpoint document: @r its registration (this node's pods;
 * NULL for another node's). NULL: not an endpoint (no address, finished,
 * host network). */
static json_t *pod_endpoint(json_t *pod, const struct mseg_endpoint *r)
{
	json_t *md = json_object_get(pod, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *uid = json_string_value(json_object_get(md, "uid"));
	const char *phase = json_string_value(json_object_get(pod, "phase"));
	json_t *labels, *ips, *ep, *ip, *ports;
	char id[600], buf[64];
	size_t i;

	if (!ns || !name)
		return NULL;
	if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
		return NULL;   /* its addresses may belong to another pod already */
	if (json_is_true(json_object_get(pod, "hostNetwork")))
		return NULL;   /* the node's addresses: never an endpoint */
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
	if (!json_array_size(ips)) {
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
	if (uid && name_is_endpoint_id(uid))
		json_object_set_new(ep, "pod_uid", json_string(uid));
	ports = json_object_get(pod, "ports");
	if (json_array_size(ports))
		json_object_set(ep, "ports", ports);
	return ep;
}

/* The id of pod @key's peer endpoint, "k8s.NS.NAME" (namespaces have no
 * dot: one key, one id). */
static void peer_id(const char *key, char *buf, size_t size)
{
	const char *slash = strchr(key, '/');

	if (slash)
		snprintf(buf, size, "k8s.%.*s.%s", (int)(slash - key), key, slash + 1);
	else
		snprintf(buf, size, "k8s.%s", key);
}

/* The id pod @key's endpoint has in the inventory (a local pod's is its
 * registration's, recorded; a peer's follows from the key), or NULL. */
static const char *pod_id(struct kube_source *src, const char *key, char *buf, size_t size)
{
	const char *id = json_string_value(json_object_get(src->pod_ids, key));

	if (id)
		return id;
	peer_id(key, buf, size);
	return inventory_find(src->inv, buf) ? buf : NULL;
}

/* Take the endpoint out that pod @key stood for. */
static bool pod_unset(struct kube_source *src, const char *key)
{
	char buf[600];
	const char *id = pod_id(src, key, buf, sizeof(buf));

	if (!id)
		return false;
	inventory_remove(src->inv, id);
	json_object_del(src->pod_ids, key);
	return true;
}

/* Make the endpoint of pod @key what @pod and @reg say; *@ret_changed
 * when the inventory changed. */
static int pod_set(struct kube_source *src, const char *key, json_t *pod,
		   const struct mseg_endpoint *reg, bool *ret_changed)
{
	char name[600], msg[1024], idbuf[600];
	const char *old_id = pod_id(src, key, idbuf, sizeof(idbuf));
	struct mseg_endpoint *ep, *old;
	struct mseg_err err;
	json_t *doc = pod_endpoint(pod, reg);
	char *text;
	int r;

	if (!doc) {
		source_error(src, key, NULL);
		*ret_changed |= pod_unset(src, key);
		return 0;
	}
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
		source_error(src, key, "%s (left out)", err_format(&err, msg, sizeof(msg)));
		*ret_changed |= pod_unset(src, key);
		return 0;
	}
	old = inventory_find(src->inv, ep->id);
	if (old && (!old_id || strcmp(old_id, ep->id) != 0)) {
		source_error(src, key, "%s: endpoint id '%s' twice (left out)", name, ep->id);
		endpoint_free(ep);
		*ret_changed |= pod_unset(src, key);
		return 0;
	}
	source_error(src, key, NULL);
	ep->cluster_peer = !reg;
	if (reg) {
		ep->registered_ns = reg->registered_ns;
	} else {
		/* of two pods with one address, the one seen last has it: an
		 * address a newer pod claims stops belonging to the older one */
		bool same = old && old->pod_uid && ep->pod_uid &&
			    strcmp(old->pod_uid, ep->pod_uid) == 0;

		ep->registered_ns = same ? old->registered_ns : clock_real_ns();
	}
	if (old_id && strcmp(old_id, ep->id) != 0)
		pod_unset(src, key);
	r = inventory_put(src->inv, ep);
	if (r < 0) {
		endpoint_free(ep);
		return r;
	}
	/* a peer's id follows from its key: only a local pod's is kept */
	if (reg)
		json_object_set_new(src->pod_ids, key, json_string(ep->id));
	*ret_changed = true;
	return 0;
}

int kube_source_pod_put(struct kube_source *src, const char *key, json_t *pod)
{
	bool changed = false;

	if (pod_is_local(src, pod)) {
		/* this node's: made at each sync, with its registration */
		json_object_set(src->pods, key, pod);
		json_object_set_new(src->local, key, json_true());
		src->local_dirty = true;
		return 0;
	}
	/* another node's: its peer endpoint is all that is kept of it */
	if (json_object_get(src->local, key)) {
		json_object_del(src->local, key);
		json_object_del(src->pods, key);
		pod_unset(src, key);
	}
	return pod_set(src, key, pod, NULL, &changed);
}

int kube_source_pod_remove(struct kube_source *src, const char *key)
{
	json_object_del(src->pods, key);
	json_object_del(src->local, key);
	source_error(src, key, NULL);
	pod_unset(src, key);
	return 0;
}

int kube_source_sync(struct kube_source *src, const struct mseg_inventory *registered)
{
	const char *key;
	json_t *v;
	int r;

	json_object_foreach(src->local, key, v) {
		json_t *pod = json_object_get(src->pods, key);
		json_t *md = json_object_get(pod, "metadata");
		const char *ns = json_string_value(json_object_get(md, "namespace"));
		const char *name = json_string_value(json_object_get(md, "name"));
		const char *uid = json_string_value(json_object_get(md, "uid"));
		const struct mseg_endpoint *reg = ns && name ? registered_find(registered, ns, name,
									     uid) : NULL;
		bool changed = false;

		if (!reg) {
			/* a pod of this node mseg-cni did not register (yet) */
			pod_unset(src, key);
			continue;
		}
		r = pod_set(src, key, pod, reg, &changed);
		if (r < 0)
			return r;
	}
	src->local_dirty = false;
	return 0;
}
