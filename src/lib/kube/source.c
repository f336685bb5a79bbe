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
	src->in_set = json_object();
	for (int k = 0; k < KUBE_POLICY_KINDS; k++)
		src->policies[k] = json_object();
	if (node_name)
		src->node_name = strdup(node_name);
	if (!src->pods || !src->pod_ids || !src->local || !src->errors || !src->in_set ||
	    !src->policies[0] ||
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
	json_decref(src->in_set);
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

/* Parse @text (a trimmed policy object as JSON text) into its own policy. */
static int policy_of(struct kube_source *src, enum kube_policy_kind kind, const char *key,
		     json_t *text, struct mseg_policy **ret)
{
	struct mseg_policy_set one;
	struct mseg_err err;
	char name[600], msg[1024], ekey[600];
	const char *doc = json_string_value(text);
	int r;

	*ret = NULL;
	snprintf(name, sizeof(name), "kubernetes:%s/%s", kind_names[kind], key);
	snprintf(ekey, sizeof(ekey), "%s/%s", kind_names[kind], key);
	policy_set_init(&one);
	err_clear(&err);
	r = policy_parse_buffer(&one, name, doc, json_string_length(text), &err);
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

/* The set is searched (a linear search) only for a policy this source has
 * put there (@src->in_set): a first list of 10,000 policies does not
 * compare each with all the others. */
static void pols_remove(struct kube_source *src, const char *ns, const char *name)
{
	char k[600];

	snprintf(k, sizeof(k), "%s/%s", ns, name);
	if (!json_object_get(src->in_set, k))
		return;
	policy_set_remove(src->pols, ns, name);
	json_object_del(src->in_set, k);
}

static int pols_put(struct kube_source *src, struct mseg_policy *p)
{
	struct mseg_policy_set one = { &p, 1, 1 };
	char k[600];
	int r;

	snprintf(k, sizeof(k), "%s/%s", p->ns, p->name);
	if (json_object_get(src->in_set, k))
		return policy_set_put(src->pols, p);
	if (json_object_set_new(src->in_set, k, json_true()) < 0)
		return -ENOMEM;
	r = policy_set_take(src->pols, &one);
	if (r < 0)
		json_object_del(src->in_set, k);
	return r;
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
			pols_remove(src, ns, slash + 1);
		return 0;
	}
	/* a document's own namespace/name might differ from the key: the set
	 * holds what the key had */
	if (slash && (strcmp(p->ns, ns) != 0 || strcmp(p->name, slash + 1) != 0))
		pols_remove(src, ns, slash + 1);
	r = pols_put(src, p);
	if (r < 0)
		policy_free(p);
	return r;
}

int kube_source_policy_put(struct kube_source *src, enum kube_policy_kind kind, const char *key,
			   json_t *obj)
{
	/* kept as its text: what a parse needs, a tenth of the object's
	 * memory (a NetworkPolicy's tree is several KiB) */
	char *doc = json_dumps(obj, JSON_COMPACT);
	json_t *text = doc ? json_stringn_nocheck(doc, strlen(doc)) : NULL;

	free(doc);
	if (!text || json_object_set_new(src->policies[kind], key, text) < 0)
		return -ENOMEM;
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

/* A JSON value as endpoint_build() takes it; numbers and true/false as
 * their text (@buf), as a YAML reader sees them. */
static struct endpoint_value pod_value(json_t *v, char *buf, size_t size)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return (struct endpoint_value){ EPV_STRING, json_string_value(v) };
	case JSON_INTEGER:
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return (struct endpoint_value){ EPV_LITERAL, buf };
	case JSON_REAL:
		/* as jansson writes it: 8080.0 stays a real */
		snprintf(buf, size, "%.17g", json_real_value(v));
		if (!strpbrk(buf, ".eEn") && strlen(buf) + 2 < size)
			strcat(buf, ".0");
		return (struct endpoint_value){ EPV_LITERAL, buf };
	case JSON_TRUE:
		return (struct endpoint_value){ EPV_LITERAL, "true" };
	case JSON_FALSE:
		return (struct endpoint_value){ EPV_LITERAL, "false" };
	case JSON_OBJECT:
		return (struct endpoint_value){ EPV_OBJECT, NULL };
	case JSON_ARRAY:
		return (struct endpoint_value){ EPV_ARRAY, NULL };
	default:
		return (struct endpoint_value){ EPV_NULL, NULL };
	}
}

#define POD_LITERAL 32   /* the text of a number */

/* The fields of one pod's endpoint, read from the trimmed pod (no copy of
 * its strings: they live as long as @pod). */
struct pod_fields {
	struct endpoint_fields f;
	struct endpoint_field_label *labels;
	const char **ips;
	struct endpoint_field_port *ports;
	char (*lit)[POD_LITERAL];   /* texts of numbers: one per label, 3 per port */
	char (*addr)[64];           /* a registration's addresses as text */
	char id[600];
};

static void pod_fields_release(struct pod_fields *pf)
{
	free(pf->labels);
	free(pf->ips);
	free(pf->ports);
	free(pf->lit);
	free(pf->addr);
}

/* One pod as endpoint fields: @r its registration (this node's pods; NULL
 * for another node's). 1: not an endpoint (no address, finished, host
 * network); 0; -ENOMEM. */
static int pod_fields(json_t *pod, const struct mseg_endpoint *r, struct pod_fields *pf)
{
	json_t *md = json_object_get(pod, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *uid = json_string_value(json_object_get(md, "uid"));
	const char *phase = json_string_value(json_object_get(pod, "phase"));
	json_t *labels = json_object_get(md, "labels"), *ips, *ports, *v;
	size_t n_reg = r ? r->n_labels : 0, n_lab, n_ips, n_ports, nl = 0, i;
	const char *k;

	memset(pf, 0, sizeof(*pf));
	if (!ns || !name)
		return 1;
	if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
		return 1;   /* its addresses may belong to another pod already */
	if (json_is_true(json_object_get(pod, "hostNetwork")))
		return 1;   /* the node's addresses: never an endpoint */
	ips = json_object_get(pod, "podIPs");
	ports = json_object_get(pod, "ports");
	n_lab = n_reg + json_object_size(labels);
	n_ips = r ? r->n_ips : json_array_size(ips);
	n_ports = json_array_size(ports);
	pf->labels = calloc(n_lab ? n_lab : 1, sizeof(*pf->labels));
	pf->ips = calloc(n_ips ? n_ips : 1, sizeof(*pf->ips));
	pf->ports = calloc(n_ports ? n_ports : 1, sizeof(*pf->ports));
	pf->lit = calloc(n_lab + 3 * n_ports + 1, sizeof(*pf->lit));
	if (r)
		pf->addr = calloc(n_ips ? n_ips : 1, sizeof(*pf->addr));
	if (!pf->labels || !pf->ips || !pf->ports || !pf->lit || (r && !pf->addr)) {
		pod_fields_release(pf);
		return -ENOMEM;
	}
	/* the registration's labels, then the pod's: the pod's win (a key of
	 * both keeps the registration's place, as a JSON merge does) */
	for (i = 0; i < n_reg; i++) {
		json_t *pv = json_object_get(labels, r->labels[i].key);

		pf->labels[nl].key = r->labels[i].key;
		pf->labels[nl].value = pv ? pod_value(pv, pf->lit[nl], POD_LITERAL) :
				       (struct endpoint_value){ EPV_STRING, r->labels[i].value };
		nl++;
	}
	json_object_foreach(labels, k, v) {
		bool dup = false;

		for (i = 0; i < n_reg && !dup; i++)
			dup = strcmp(r->labels[i].key, k) == 0;
		if (dup)
			continue;
		pf->labels[nl].key = k;
		pf->labels[nl].value = pod_value(v, pf->lit[nl], POD_LITERAL);
		nl++;
	}
	pf->f.n_ips = 0;
	if (r) {
		for (i = 0; i < r->n_ips; i++)
			pf->ips[pf->f.n_ips++] = addr_format(&r->ips[i], pf->addr[i],
							     sizeof(pf->addr[i]));
	} else {
		json_array_foreach(ips, i, v) {
			const char *s = json_string_value(json_object_get(v, "ip"));

			if (s)
				pf->ips[pf->f.n_ips++] = s;
		}
	}
	if (!pf->f.n_ips) {
		pod_fields_release(pf);
		return 1;
	}
	json_array_foreach(ports, i, v) {
		char (*lit)[POD_LITERAL] = &pf->lit[n_lab + 3 * i];
		json_t *x;

		/* a port that is not an object: as the parser would say */
		if ((x = json_object_get(v, "name")))
			pf->ports[i].name = pod_value(x, lit[0], POD_LITERAL);
		if ((x = json_object_get(v, "port")))
			pf->ports[i].port = pod_value(x, lit[1], POD_LITERAL);
		if ((x = json_object_get(v, "protocol")))
			pf->ports[i].protocol = pod_value(x, lit[2], POD_LITERAL);
	}
	if (r)
		snprintf(pf->id, sizeof(pf->id), "%s", r->id);
	else
		snprintf(pf->id, sizeof(pf->id), "k8s.%s.%s", ns, name);
	pf->f.id = pf->id;
	pf->f.name = name;
	pf->f.ns = ns;
	pf->f.labels = pf->labels;
	pf->f.n_labels = nl;
	pf->f.ips = pf->ips;
	pf->f.netns = r ? r->netns : NULL;
	pf->f.pod_uid = uid && name_is_endpoint_id(uid) ? uid : NULL;
	pf->f.ports = pf->ports;
	pf->f.n_ports = n_ports;
	return 0;
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
	/* staged: a watch event does not move the sorted array (150,000
	 * pods); kube_source_sync() applies the changes once */
	inventory_stage_remove(src->inv, id);
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
	struct pod_fields pf;
	struct mseg_err err;
	int r = pod_fields(pod, reg, &pf);

	if (r < 0)
		return r;
	if (r > 0) {
		source_error(src, key, NULL);
		*ret_changed |= pod_unset(src, key);
		return 0;
	}
	snprintf(name, sizeof(name), "kubernetes:pods/%s", key);
	pf.f.namespace = inventory_ns_find(src->inv, pf.f.ns);
	err_clear(&err);
	r = endpoint_build(name, &pf.f, &ep, &err);
	pod_fields_release(&pf);
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
	r = inventory_stage_put(src->inv, ep);
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

	/* this node's endpoints follow from its pods and their registrations
	 * only: when neither changed, they are what the last sync made */
	if (!src->local_dirty && registered && registered->serial == src->registered_serial)
		return inventory_flush(src->inv);
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
	src->registered_serial = registered ? registered->serial : 0;
	/* every change since the last sync into the sorted array, at once */
	return inventory_flush(src->inv);
}

/* ---- what a pod event changes (kube.c asks before and after it) ---- */

const struct mseg_endpoint *kube_source_pod_endpoint(struct kube_source *src, const char *key,
						     bool *ret_local)
{
	char buf[600];
	const char *id = pod_id(src, key, buf, sizeof(buf));

	*ret_local = json_object_get(src->local, key) != NULL;
	return id ? inventory_find(src->inv, id) : NULL;
}
