/* The endpoint inventory (docs/policy.md, "Inventory file"): YAML or JSON ->
 * struct mseg_endpoint, fully validated; the inventory kept sorted by id. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/model/inventory.h"
#include "mseg/model/names.h"
#include "util/vec.h"
#include "model/ytree.h"

#define WHAT_SIZE 200
#define IPS_MAX 256                /* per endpoint; a pod has one or two */
#define PORTS_MAX 1024             /* named ports per endpoint */

static const struct ytree_limits inventory_limits = {
	.max_size = INVENTORY_MAX_FILE_SIZE,
	.max_depth = INVENTORY_MAX_DEPTH,
	.max_nodes = INVENTORY_MAX_NODES,
};

static struct mseg_endpoint *endpoint_new(void)
{
	struct mseg_endpoint *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return NULL;
	arena_init(&ep->arena);
	return ep;
}

struct mseg_endpoint *endpoint_free(struct mseg_endpoint *ep)
{
	if (!ep)
		return NULL;
	arena_release(&ep->arena);
	free(ep);
	return NULL;
}

/* ---- syntax ---- */

#define PORT_NAME_HINT \
	"at most 15 lowercase letters, digits and '-', with a letter, no '-' at either end " \
	"or twice in a row"

/* ---- one endpoint ---- */

struct ectx {
	struct ycheck ck;
	struct mseg_endpoint *ep;
	char what[WHAT_SIZE];        /* "endpoint 'web-1'" */
};

static int ectx_strdup(struct ectx *c, const char *s, const char **ret)
{
	return ycheck_strdup(&c->ck, &c->ep->arena, s, ret);
}

static int label_cmp(const void *pa, const void *pb)
{
	const struct mseg_label *a = pa, *b = pb;

	return strcmp(a->key, b->key);
}

static int labels_parse(struct ectx *c, const struct ynode *map, const char *key,
			struct mseg_label **ret, size_t *ret_n)
{
	char what[WHAT_SIZE + 16], lwhat[2 * WHAT_SIZE];
	struct mseg_label *v;
	size_t i;
	int r;

	ycheck_whatf(what, sizeof(what), "%s: %s", c->what, key);
	r = ycheck_kind(&c->ck, map, YNODE_MAP, what);
	if (r < 0)
		return r;
	v = arena_calloc(&c->ep->arena, map->n ? map->n : 1, sizeof(*v));
	if (!v)
		return ycheck_oom(&c->ck);
	for (i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i], *val = map->vals[i];
		const char *s;

		ycheck_whatf(lwhat, sizeof(lwhat), "%s: label '%s'", what, k->str);
		r = ycheck_label(&c->ck, k, val, what, lwhat, &s);
		if (r < 0)
			return r;
		r = ectx_strdup(c, k->str, &v[i].key);
		if (r < 0)
			return r;
		r = ectx_strdup(c, s, &v[i].value);
		if (r < 0)
			return r;
	}
	qsort(v, map->n, sizeof(*v), label_cmp);
	*ret = v;
	*ret_n = map->n;
	return 0;
}

static int ips_parse(struct ectx *c, const struct ynode *seq)
{
	struct mseg_endpoint *ep = c->ep;
	char what[WHAT_SIZE + 16], iwhat[WHAT_SIZE + 32], q[YQ_SIZE];
	size_t i, j;
	int r;

	ycheck_whatf(what, sizeof(what), "%s: ips", c->what);
	r = ycheck_seq(&c->ck, seq, what, true);
	if (r < 0)
		return r;
	if (seq->n > IPS_MAX)
		return ycheck_fail(&c->ck, seq, "%s: too many addresses (limit %d)", what, IPS_MAX);
	ep->ips = arena_calloc(&ep->arena, seq->n, sizeof(*ep->ips));
	if (!ep->ips)
		return ycheck_oom(&c->ck);
	for (i = 0; i < seq->n; i++) {
		const struct ynode *n = seq->vals[i];
		struct mseg_addr *a = &ep->ips[i];
		const char *s;

		ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", what, i);
		r = ycheck_string(&c->ck, n, iwhat, true, &s);
		if (r < 0)
			return r;
		if (inet_pton(AF_INET, s, a->bytes) == 1) {
			a->family = AF_INET;
		} else if (inet_pton(AF_INET6, s, a->bytes) == 1) {
			a->family = AF_INET6;
		} else {
			return ycheck_fail(&c->ck, n, "%s: '%s' is not a valid IP address%s", iwhat,
					   ytree_quote(s, q, sizeof(q)),
					   strchr(s, '/') ? " (write it without a prefix length)" : "");
		}
		for (j = 0; j < i; j++)
			if (ep->ips[j].family == a->family &&
			    !memcmp(ep->ips[j].bytes, a->bytes, sizeof(a->bytes)))
				return ycheck_fail(&c->ck, n, "%s: duplicate address '%s'", iwhat,
						   ytree_quote(s, q, sizeof(q)));
	}
	ep->n_ips = seq->n;
	return 0;
}

static int port_parse(struct ectx *c, const struct ynode *item, const char *what,
		      struct mseg_named_port *ret)
{
	static const char *const keys[] = { "name", "port", "protocol", NULL };
	static const char *const proto_names[] = { "TCP", "UDP", "SCTP", NULL };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };
	char kwhat[WHAT_SIZE + 48], q[YQ_SIZE];
	const struct ynode *v;
	unsigned long port;
	const char *s;
	unsigned i;
	int r;

	r = ycheck_map(&c->ck, item, what, keys);
	if (r < 0)
		return r;

	r = ycheck_require(&c->ck, item, "name", what, &v);
	if (r < 0)
		return r;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.name", what);
	r = ycheck_string(&c->ck, v, kwhat, true, &s);
	if (r < 0)
		return r;
	if (!name_is_port_name(s))
		return ycheck_fail(&c->ck, v, "%s: '%s' is not a valid port name (%s)", kwhat,
				   ytree_quote(s, q, sizeof(q)), PORT_NAME_HINT);
	r = ectx_strdup(c, s, &ret->name);
	if (r < 0)
		return r;

	r = ycheck_require(&c->ck, item, "port", what, &v);
	if (r < 0)
		return r;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.port", what);
	r = ycheck_uint(&c->ck, v, kwhat, 1, 65535, &port);
	if (r < 0)
		return r;
	ret->port = (uint16_t)port;

	ret->proto = IPPROTO_TCP;
	v = ynode_map_get(item, "protocol");
	if (!v)
		return 0;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.protocol", what);
	r = ycheck_enum(&c->ck, v, kwhat, "protocol", proto_names, &i);
	if (r < 0)
		return r;
	ret->proto = protos[i];
	return 0;
}

static int ports_parse(struct ectx *c, const struct ynode *seq)
{
	struct mseg_endpoint *ep = c->ep;
	char what[WHAT_SIZE + 16], iwhat[WHAT_SIZE + 32];
	size_t i, j;
	int r;

	ycheck_whatf(what, sizeof(what), "%s: ports", c->what);
	r = ycheck_kind(&c->ck, seq, YNODE_SEQ, what);
	if (r < 0)
		return r;
	if (seq->n > PORTS_MAX)
		return ycheck_fail(&c->ck, seq, "%s: too many ports (limit %d)", what, PORTS_MAX);
	ep->ports = arena_calloc(&ep->arena, seq->n ? seq->n : 1, sizeof(*ep->ports));
	if (!ep->ports)
		return ycheck_oom(&c->ck);
	for (i = 0; i < seq->n; i++) {
		ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", what, i);
		r = port_parse(c, seq->vals[i], iwhat, &ep->ports[i]);
		if (r < 0)
			return r;
		for (j = 0; j < i; j++)
			if (!strcmp(ep->ports[j].name, ep->ports[i].name))
				return ycheck_fail(&c->ck, ynode_map_get(seq->vals[i], "name"),
						   "%s.name: duplicate port name '%s'", iwhat,
						   ep->ports[i].name);
	}
	ep->n_ports = seq->n;
	return 0;
}

/* The id: from the document, or @fixed_id (a REST path) which the
 * document's "id", if any, must repeat. */
static int id_parse(struct ectx *c, const struct ynode *map, const char *what,
		    const char *fixed_id, const struct ynode **ret_node)
{
	char iwhat[WHAT_SIZE + 8], q[YQ_SIZE], q2[YQ_SIZE];
	const struct ynode *v = ynode_map_get(map, "id");
	const char *s;
	int r;

	ycheck_whatf(iwhat, sizeof(iwhat), "%s.id", what);
	if (fixed_id && !name_is_endpoint_id(fixed_id))
		return err_setf(c->ck.err, EINVAL, "'%s' is not a valid endpoint id (%s)",
				ytree_quote(fixed_id, q, sizeof(q)), NAME_ENDPOINT_ID_HINT);
	if (!v && fixed_id) {
		*ret_node = map;
		return ectx_strdup(c, fixed_id, &c->ep->id);
	}
	r = ycheck_require(&c->ck, map, "id", what, &v);
	if (r < 0)
		return r;
	r = ycheck_string(&c->ck, v, iwhat, true, &s);
	if (r < 0)
		return r;
	if (!name_is_endpoint_id(s))
		return ycheck_fail(&c->ck, v, "%s: '%s' is not a valid id (%s)", iwhat,
				   ytree_quote(s, q, sizeof(q)), NAME_ENDPOINT_ID_HINT);
	if (fixed_id && strcmp(s, fixed_id))
		return ycheck_fail(&c->ck, v, "%s: '%s' does not match the endpoint id '%s'", iwhat,
				   ytree_quote(s, q, sizeof(q)), ytree_quote(fixed_id, q2, sizeof(q2)));
	*ret_node = v;
	return ectx_strdup(c, s, &c->ep->id);
}

static int endpoint_fill(struct ectx *c, const struct ynode *map, const char *what,
			 const char *fixed_id, const struct ynode **ret_id_node)
{
	static const char *const keys[] = { "id",    "name", "namespace", "labels", "ns_labels",
					    "netns", "ips",  "ports",     "pod_uid", NULL };
	struct mseg_endpoint *ep = c->ep;
	char kwhat[WHAT_SIZE + 16], q[YQ_SIZE];
	const struct ynode *v;
	const char *s;
	int r;

	r = ycheck_kind(&c->ck, map, YNODE_MAP, what);
	if (r < 0)
		return r;
	ep->pos.line = map->line;
	ep->pos.col = map->col;
	r = id_parse(c, map, what, fixed_id, ret_id_node);
	if (r < 0)
		return r;
	ycheck_whatf(c->what, sizeof(c->what), "endpoint '%s'", ep->id);
	r = ycheck_keys(&c->ck, map, c->what, keys);
	if (r < 0)
		return r;

	ep->name = ep->id;
	v = ynode_map_get(map, "name");
	if (v) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s: name", c->what);
		r = ycheck_string(&c->ck, v, kwhat, true, &s);
		if (r < 0)
			return r;
		if (!name_is_endpoint_name(s))
			return ycheck_fail(&c->ck, v, "%s: '%s' is not a valid name (%s)", kwhat,
					   ytree_quote(s, q, sizeof(q)), NAME_ENDPOINT_NAME_HINT);
		r = ectx_strdup(c, s, &ep->name);
		if (r < 0)
			return r;
	}

	ep->ns = "default";
	v = ynode_map_get(map, "namespace");
	if (v) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s: namespace", c->what);
		r = ycheck_string(&c->ck, v, kwhat, true, &s);
		if (r < 0)
			return r;
		if (!name_is_dns_label(s))
			return ycheck_fail(&c->ck, v, "%s: '%s' is not a valid namespace (%s)", kwhat,
					   ytree_quote(s, q, sizeof(q)), NAME_DNS_LABEL_HINT);
		r = ectx_strdup(c, s, &ep->ns);
		if (r < 0)
			return r;
	}

	v = ynode_map_get(map, "labels");
	if (v) {
		r = labels_parse(c, v, "labels", &ep->labels, &ep->n_labels);
		if (r < 0)
			return r;
	}
	v = ynode_map_get(map, "ns_labels");
	if (v) {
		r = labels_parse(c, v, "ns_labels", &ep->given_ns_labels, &ep->n_given_ns_labels);
		if (r < 0)
			return r;
	}

	v = ynode_map_get(map, "netns");
	if (v) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s: netns", c->what);
		r = ycheck_string(&c->ck, v, kwhat, true, &s);
		if (r < 0)
			return r;
		if (s[0] != '/')
			return ycheck_fail(&c->ck, v, "%s: '%s' is not an absolute path", kwhat,
					   ytree_quote(s, q, sizeof(q)));
		if (strlen(s) >= PATH_MAX)
			return ycheck_fail(&c->ck, v, "%s: path too long (limit %d bytes)", kwhat,
					   PATH_MAX - 1);
		r = ectx_strdup(c, s, &ep->netns);
		if (r < 0)
			return r;
	}

	v = ynode_map_get(map, "pod_uid");
	if (v) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s: pod_uid", c->what);
		r = ycheck_string(&c->ck, v, kwhat, true, &s);
		if (r < 0)
			return r;
		/* a Kubernetes uid (RFC 4122 text): what an id may hold */
		if (!name_is_endpoint_id(s))
			return ycheck_fail(&c->ck, v, "%s: '%s' is not a pod uid (%s)", kwhat,
					   ytree_quote(s, q, sizeof(q)), NAME_ENDPOINT_ID_HINT);
		r = ectx_strdup(c, s, &ep->pod_uid);
		if (r < 0)
			return r;
	}

	r = ycheck_require(&c->ck, map, "ips", c->what, &v);
	if (r < 0)
		return r;
	r = ips_parse(c, v);
	if (r < 0)
		return r;

	v = ynode_map_get(map, "ports");
	if (v)
		return ports_parse(c, v);
	return 0;
}

/* @size: what the endpoint's arena will hold, when known (0: not). */
static int endpoint_from_node(const char *file, struct mseg_err *err, const struct ynode *map,
			      const char *what, const char *fixed_id, size_t size,
			      const struct mseg_namespace *ns, struct mseg_endpoint **ret,
			      const struct ynode **ret_id_node)
{
	struct ectx c = { .ck = { .file = file, .err = err } };
	char *f;
	int r;

	c.ep = endpoint_new();
	if (!c.ep)
		return err_setf(err, ENOMEM, "out of memory");
	f = size && arena_reserve(&c.ep->arena, size) < 0 ? NULL :
	    arena_strdup(&c.ep->arena, file);
	if (!f) {
		r = ycheck_oom(&c.ck);
		goto out_free;
	}
	c.ep->pos.file = f;
	r = endpoint_fill(&c, map, what, fixed_id, ret_id_node);
	if (r < 0)
		goto out_free;
	if (endpoint_ns_labels_fill(c.ep, ns) < 0) {
		r = ycheck_oom(&c.ck);
		goto out_free;
	}
	*ret = c.ep;
	return 0;

out_free:
	endpoint_free(c.ep);
	return r;
}

/* ---- namespaces ---- */

static struct mseg_namespace *namespace_alloc(void)
{
	static uint64_t serial;
	struct mseg_namespace *ns = calloc(1, sizeof(*ns));

	if (!ns)
		return NULL;
	arena_init(&ns->arena);
	ns->serial = ++serial;
	return ns;
}

struct mseg_namespace *namespace_free(struct mseg_namespace *ns)
{
	if (!ns)
		return NULL;
	arena_release(&ns->arena);
	free(ns);
	return NULL;
}

static const struct mseg_label *labels_find(const struct mseg_label *v, size_t n,
					    const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].key, key))
			return &v[i];
	return NULL;
}

/* @n labels of @v (sorted or not) plus kubernetes.io/metadata.name: @name,
 * sorted, into @a. */
static int labels_with_name(struct arena *a, const struct mseg_label *v, size_t n,
			    const char *name, struct mseg_label **ret, size_t *ret_n)
{
	struct mseg_label *out = arena_calloc(a, n + 1, sizeof(*out));
	size_t k = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i].key, NS_NAME_LABEL))
			continue;
		out[k].key = arena_strdup(a, v[i].key);
		out[k].value = arena_strdup(a, v[i].value);
		if (!out[k].key || !out[k].value)
			return -ENOMEM;
		k++;
	}
	out[k].key = NS_NAME_LABEL;
	out[k].value = arena_strdup(a, name);
	if (!out[k].value)
		return -ENOMEM;
	k++;
	qsort(out, k, sizeof(*out), label_cmp);
	*ret = out;
	*ret_n = k;
	return 0;
}

int namespace_new(const char *name, const struct mseg_label *labels, size_t n_labels,
		  struct mseg_namespace **ret_ns)
{
	const struct mseg_label *meta = labels_find(labels, n_labels, NS_NAME_LABEL);
	struct mseg_namespace *ns;

	if (!name || !name_is_dns_label(name) || (meta && strcmp(meta->value, name)))
		return -EINVAL;
	for (size_t i = 0; i < n_labels; i++)
		if (!name_is_label_key(labels[i].key) ||
		    !name_is_label_value(labels[i].value) ||
		    labels_find(labels, i, labels[i].key))
			return -EINVAL;
	ns = namespace_alloc();
	if (!ns)
		return -ENOMEM;
	ns->name = arena_strdup(&ns->arena, name);
	if (!ns->name ||
	    labels_with_name(&ns->arena, labels, n_labels, name, &ns->labels, &ns->n_labels) < 0) {
		namespace_free(ns);
		return -ENOMEM;
	}
	*ret_ns = ns;
	return 0;
}

/* {name: shop, labels: {team: a}}; "name" may be left out when @fixed_name. */
static int namespace_from_node(const char *file, struct mseg_err *err, const struct ynode *map,
			       const char *what, const char *fixed_name,
			       struct mseg_namespace **ret, const struct ynode **ret_name_node)
{
	static const char *const keys[] = { "name", "labels", NULL };
	struct ycheck ck = { .file = file, .err = err };
	char nwhat[WHAT_SIZE], lwhat[2 * WHAT_SIZE], q[YQ_SIZE];
	const struct ynode *v, *labels;
	struct mseg_namespace *ns;
	struct mseg_label *tmp = NULL;
	const char *name = fixed_name;
	size_t i;
	int r;

	r = ycheck_map(&ck, map, what, keys);
	if (r < 0)
		return r;
	v = ynode_map_get(map, "name");
	*ret_name_node = map;
	if (v || !fixed_name) {
		ycheck_whatf(nwhat, sizeof(nwhat), "%s.name", what);
		r = ycheck_require(&ck, map, "name", what, &v);
		if (r < 0)
			return r;
		r = ycheck_string(&ck, v, nwhat, true, &name);
		if (r < 0)
			return r;
		if (!name_is_dns_label(name))
			return ycheck_fail(&ck, v, "%s: '%s' is not a valid namespace name (%s)",
					   nwhat, ytree_quote(name, q, sizeof(q)),
					   NAME_DNS_LABEL_HINT);
		if (fixed_name && strcmp(name, fixed_name))
			return ycheck_fail(&ck, v, "%s: '%s' does not match the namespace '%s'",
					   nwhat, ytree_quote(name, q, sizeof(q)), fixed_name);
		*ret_name_node = v;
	}
	ycheck_whatf(nwhat, sizeof(nwhat), "namespace '%s': labels", name);
	labels = ynode_map_get(map, "labels");
	if (labels && !ynode_is_null(labels)) {
		r = ycheck_kind(&ck, labels, YNODE_MAP, nwhat);
		if (r < 0)
			return r;
		tmp = calloc(labels->n ? labels->n : 1, sizeof(*tmp));
		if (!tmp)
			return ycheck_oom(&ck);
		for (i = 0; i < labels->n; i++) {
			ycheck_whatf(lwhat, sizeof(lwhat), "%s: label '%s'", nwhat,
				     labels->keys[i]->str);
			r = ycheck_label(&ck, labels->keys[i], labels->vals[i], nwhat, lwhat,
					 &tmp[i].value);
			if (r < 0)
				goto out_free;
			tmp[i].key = labels->keys[i]->str;
			if (!strcmp(tmp[i].key, NS_NAME_LABEL) && strcmp(tmp[i].value, name)) {
				r = ycheck_fail(&ck, labels->vals[i],
						"%s: label '%s' is always the namespace's name ('%s')",
						nwhat, NS_NAME_LABEL, name);
				goto out_free;
			}
		}
	}
	r = namespace_new(name, tmp, labels && labels->kind == YNODE_MAP ? labels->n : 0, &ns);
	if (r < 0) {
		r = ycheck_oom(&ck);
		goto out_free;
	}
	ns->pos.file = arena_strdup(&ns->arena, file);
	ns->pos.line = map->line;
	ns->pos.col = map->col;
	if (!ns->pos.file) {
		namespace_free(ns);
		r = ycheck_oom(&ck);
		goto out_free;
	}
	*ret = ns;
	r = 0;
out_free:
	free(tmp);
	return r;
}

int namespace_parse_buffer(const char *ns_name, const char *name, const char *buf, size_t len,
			   struct mseg_namespace **ret_ns, struct mseg_err *err)
{
	const struct ynode *name_node;
	struct ytree t;
	int r;

	r = ytree_load(&t, name, buf, len, &inventory_limits, err);
	if (r < 0)
		goto out_release;
	if (t.n_docs != 1) {
		r = err_set(err, name, t.n_docs ? t.docs[1].line : 0, t.n_docs ? t.docs[1].col : 0,
			    EINVAL, t.n_docs ? "expected one namespace document, found another" :
					       "empty document");
		goto out_release;
	}
	r = namespace_from_node(name, err, t.docs[0].root, "namespace", ns_name, ret_ns,
				&name_node);
out_release:
	ytree_release(&t);
	return r;
}

/* Are @have (sorted) exactly @src (without any metadata.name label) plus
 * kubernetes.io/metadata.name: @name? */
static bool ns_labels_same(const struct mseg_label *have, size_t n_have,
			   const struct mseg_label *src, size_t n_src, const char *name)
{
	const struct mseg_label *meta = labels_find(have, n_have, NS_NAME_LABEL);
	size_t n = 1;

	if (!meta || strcmp(meta->value, name))
		return false;
	for (size_t i = 0; i < n_src; i++) {
		const struct mseg_label *l;

		if (!strcmp(src[i].key, NS_NAME_LABEL))
			continue;
		l = labels_find(have, n_have, src[i].key);
		if (!l || strcmp(l->value, src[i].value))
			return false;
		n++;
	}
	return n == n_have;
}

int endpoint_ns_labels_fill(struct mseg_endpoint *ep, const struct mseg_namespace *ns)
{
	const char *ns_name = ep->ns ? ep->ns : "default";
	const struct mseg_label *src = ep->given_ns_labels;
	size_t n_src = ep->n_given_ns_labels;

	if (ns) {
		src = ns->labels;
		n_src = ns->n_labels;
	}
	/* filled from this very namespace object: nothing to compare (every
	 * view fills every endpoint, 150,000 of them on a large cluster) */
	if (ns && ep->ns_labels_serial == ns->serial)
		return 0;
	/* unchanged: no allocation (fills repeat on every inventory change) */
	if (!ns_labels_same(ep->ns_labels, ep->n_ns_labels, src, n_src, ns_name)) {
		int r = labels_with_name(&ep->arena, src, n_src, ns_name, &ep->ns_labels,
					 &ep->n_ns_labels);

		if (r < 0)
			return r;
	}
	ep->ns_labels_serial = ns ? ns->serial : 0;
	return 0;
}

int inventory_ns_labels_fill(struct mseg_inventory *inv, const struct mseg_inventory *nss)
{
	for (size_t i = 0; i < inv->n; i++) {
		struct mseg_endpoint *ep = inv->eps[i];
		int r = endpoint_ns_labels_fill(ep, inventory_ns_find(nss, ep->ns ? ep->ns :
										 "default"));

		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the inventory ---- */

static uint64_t inventory_serial_next(void)
{
	static uint64_t serial;

	return ++serial;
}

void inventory_init(struct mseg_inventory *inv)
{
	memset(inv, 0, sizeof(*inv));
	inv->serial = inventory_serial_next();
	inv->ns_serial = inventory_serial_next();
}

/* The journal given up: the retired endpoints go. */
static void journal_clear(struct mseg_inventory *inv)
{
	for (size_t i = 0; i < inv->n_journal; i++)
		free(inv->journal[i].id);
	inv->n_journal = 0;
	for (size_t i = 0; i < inv->n_retired; i++)
		endpoint_free(inv->retired[i]);
	inv->n_retired = 0;
}

void inventory_journal_reset(struct mseg_inventory *inv)
{
	journal_clear(inv);
	inv->journal_on = true;
	inv->journal_lost = false;
}

static void journal_lose(struct mseg_inventory *inv)
{
	journal_clear(inv);
	inv->journal_lost = true;
}

/* Endpoint @id is about to change: journaled with what it is now. */
static void journal_note(struct mseg_inventory *inv, const char *id)
{
	char *copy;

	inv->serial = inventory_serial_next();
	if (!inv->journal_on || inv->journal_lost)
		return;
	copy = strdup(id);
	if (!copy || inv->n_journal >= INVENTORY_JOURNAL_MAX ||
	    VEC_RESERVE(inv->journal, inv->cap_journal, inv->n_journal + 1) < 0) {
		free(copy);
		journal_lose(inv);
		return;
	}
	inv->journal[inv->n_journal++] = (struct inventory_journal_entry){
		copy, inventory_find(inv, id) };
}

/* @ep leaves the inventory: freed, or retired while the journal may name
 * it. */
static void inventory_drop(struct mseg_inventory *inv, struct mseg_endpoint *ep)
{
	if (!ep)
		return;
	if (inv->journal_on && !inv->journal_lost) {
		if (VEC_RESERVE(inv->retired, inv->cap_retired, inv->n_retired + 1) == 0) {
			inv->retired[inv->n_retired++] = ep;
			return;
		}
		journal_lose(inv);
	}
	endpoint_free(ep);
}

static void change_release(struct mseg_inventory *inv, struct inventory_change *c)
{
	if (c->ep)
		inventory_drop(inv, c->ep);
	else
		free((char *)c->id);
}

void inventory_release(struct mseg_inventory *inv)
{
	size_t i;

	for (i = 0; i < inv->n; i++)
		endpoint_free(inv->eps[i]);
	free(inv->eps);
	for (i = 0; i < inv->n_nss; i++)
		namespace_free(inv->nss[i]);
	free(inv->nss);
	inv->journal_on = false;
	for (i = 0; i < inv->n_staged; i++)
		change_release(inv, &inv->staged[i]);
	free(inv->staged);
	journal_clear(inv);
	free(inv->journal);
	free(inv->retired);
	inventory_init(inv);
}

static int inventory_reserve(struct mseg_inventory *inv, size_t extra)
{
	if (extra > SIZE_MAX / 2 - inv->n)
		return -ENOMEM;
	return VEC_RESERVE(inv->eps, inv->cap, inv->n + extra);
}

/* Binary search of @items (sorted by the key @key_of gives) for @key: its
 * index, or where it would go (*ret_found false). One search for the
 * endpoints (by id) and the namespaces (by name). */
static size_t sorted_search(void *const *items, size_t n, const char *key,
			    const char *(*key_of)(const void *item), bool *ret_found)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, key_of(items[mid]));

		if (c == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret_found = false;
	return lo;
}

static const char *ep_key(const void *item)
{
	return ((const struct mseg_endpoint *)item)->id;
}

static const char *ns_key(const void *item)
{
	return ((const struct mseg_namespace *)item)->name;
}

static size_t inventory_search(const struct mseg_inventory *inv, const char *id, bool *ret_found)
{
	return sorted_search((void *const *)inv->eps, inv->n, id, ep_key, ret_found);
}

static size_t staged_search(const struct mseg_inventory *inv, const char *id, bool *ret_found)
{
	size_t lo = 0, hi = inv->n_staged;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(id, inv->staged[mid].id);

		if (c == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret_found = false;
	return lo;
}

struct mseg_endpoint *inventory_find(const struct mseg_inventory *inv, const char *id)
{
	bool found;
	size_t i;

	if (inv->n_staged) {
		i = staged_search(inv, id, &found);
		if (found)
			return inv->staged[i].ep;
	}
	i = inventory_search(inv, id, &found);
	return found ? inv->eps[i] : NULL;
}

size_t inventory_count(const struct mseg_inventory *inv)
{
	size_t n = inv->n;

	for (size_t i = 0; i < inv->n_staged; i++) {
		bool found;

		inventory_search(inv, inv->staged[i].id, &found);
		if (found && !inv->staged[i].ep)
			n--;
		else if (!found && inv->staged[i].ep)
			n++;
	}
	return n;
}

size_t inventory_lower_bound(const struct mseg_inventory *inv, size_t from, const char *id)
{
	size_t lo = from, hi = from, step = 1;

	if (!id)
		return inv->n;
	while (hi < inv->n && strcmp(inv->eps[hi]->id, id) < 0) {
		lo = hi + 1;
		hi = from + step;
		step *= 2;
	}
	if (hi > inv->n)
		hi = inv->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(inv->eps[mid]->id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int inventory_flush(struct mseg_inventory *inv)
{
	struct mseg_endpoint **out;
	size_t puts = 0, i = 0, k = 0;

	if (!inv->n_staged)
		return 0;
	for (size_t s = 0; s < inv->n_staged; s++)
		puts += inv->staged[s].ep != NULL;
	if (puts > SIZE_MAX / 2 - inv->n)
		return -ENOMEM;
	out = malloc((inv->n + puts ? inv->n + puts : 1) * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t s = 0; s < inv->n_staged; s++) {
		struct inventory_change *c = &inv->staged[s];
		size_t end = inventory_lower_bound(inv, i, c->id);

		if (end > i)
			memcpy(out + k, inv->eps + i, (end - i) * sizeof(*out));
		k += end - i;
		i = end;
		if (i < inv->n && strcmp(inv->eps[i]->id, c->id) == 0) {
			if (inv->eps[i] != c->ep)
				inventory_drop(inv, inv->eps[i]);   /* replaced or removed */
			i++;
		}
		if (c->ep)
			out[k++] = c->ep;
		else
			free((char *)c->id);
	}
	if (inv->n > i)
		memcpy(out + k, inv->eps + i, (inv->n - i) * sizeof(*out));
	k += inv->n - i;
	free(inv->eps);
	inv->eps = out;
	inv->cap = inv->n + puts ? inv->n + puts : 1;
	inv->n = k;
	inv->n_staged = 0;
	return 0;
}

int inventory_stage_put(struct mseg_inventory *inv, struct mseg_endpoint *ep)
{
	struct inventory_change *c;
	bool found, in_eps;
	size_t i, j;

	if (!ep || !ep->id)
		return -EINVAL;
	if (inv->n_staged >= INVENTORY_STAGED_MAX)
		inventory_flush(inv);   /* -ENOMEM: they stay staged */
	i = staged_search(inv, ep->id, &found);
	if (found) {
		c = &inv->staged[i];
		if (c->ep != ep) {
			journal_note(inv, ep->id);
			change_release(inv, c);
			*c = (struct inventory_change){ ep->id, ep };
		}
		return 0;
	}
	/* a change of an endpoint the array has: in its place, at once */
	j = inventory_search(inv, ep->id, &in_eps);
	if (in_eps) {
		if (inv->eps[j] != ep) {
			journal_note(inv, ep->id);
			inventory_drop(inv, inv->eps[j]);
		}
		inv->eps[j] = ep;
		return 0;
	}
	if (inv->n_staged >= SIZE_MAX / 2 ||
	    VEC_RESERVE(inv->staged, inv->cap_staged, inv->n_staged + 1) < 0)
		return -ENOMEM;
	journal_note(inv, ep->id);
	memmove(&inv->staged[i + 1], &inv->staged[i], (inv->n_staged - i) * sizeof(*inv->staged));
	inv->staged[i] = (struct inventory_change){ ep->id, ep };
	inv->n_staged++;
	return 0;
}

int inventory_stage_remove(struct mseg_inventory *inv, const char *id)
{
	bool found, in_eps;
	size_t i;
	char *copy;

	i = staged_search(inv, id, &found);
	inventory_search(inv, id, &in_eps);
	if (found && !inv->staged[i].ep)
		return -ENOENT;           /* removed already */
	if (found && !in_eps) {
		/* added since the last flush: the change goes */
		journal_note(inv, id);
		change_release(inv, &inv->staged[i]);
		memmove(&inv->staged[i], &inv->staged[i + 1],
			(inv->n_staged - i - 1) * sizeof(*inv->staged));
		inv->n_staged--;
		return 0;
	}
	if (!found && !in_eps)
		return -ENOENT;
	copy = strdup(id);            /* @id may be the endpoint's own */
	if (!copy)
		return -ENOMEM;
	if (found) {
		journal_note(inv, copy);
		change_release(inv, &inv->staged[i]);
		inv->staged[i] = (struct inventory_change){ copy, NULL };
		return 0;
	}
	if (inv->n_staged >= INVENTORY_STAGED_MAX && inventory_flush(inv) == 0)
		i = 0;                    /* nothing staged any more */
	if (inv->n_staged >= SIZE_MAX / 2 ||
	    VEC_RESERVE(inv->staged, inv->cap_staged, inv->n_staged + 1) < 0) {
		free(copy);
		return -ENOMEM;
	}
	journal_note(inv, copy);
	memmove(&inv->staged[i + 1], &inv->staged[i], (inv->n_staged - i) * sizeof(*inv->staged));
	inv->staged[i] = (struct inventory_change){ copy, NULL };
	inv->n_staged++;
	return 0;
}

int inventory_put(struct mseg_inventory *inv, struct mseg_endpoint *ep)
{
	bool found;
	size_t i;
	int r;

	if (!ep || !ep->id)
		return -EINVAL;
	r = inventory_flush(inv);
	if (r < 0)
		return r;
	i = inventory_search(inv, ep->id, &found);
	if (found) {
		if (inv->eps[i] != ep) {
			journal_note(inv, ep->id);
			inventory_drop(inv, inv->eps[i]);
		}
		inv->eps[i] = ep;
		return 0;
	}
	r = inventory_reserve(inv, 1);
	if (r < 0)
		return r;
	journal_note(inv, ep->id);
	memmove(&inv->eps[i + 1], &inv->eps[i], (inv->n - i) * sizeof(*inv->eps));
	inv->eps[i] = ep;
	inv->n++;
	return 0;
}

int inventory_remove(struct mseg_inventory *inv, const char *id)
{
	bool found;
	size_t i;
	int r = inventory_flush(inv);

	if (r < 0)
		return r;
	i = inventory_search(inv, id, &found);
	if (!found)
		return -ENOENT;
	journal_note(inv, id);
	inventory_drop(inv, inv->eps[i]);
	memmove(&inv->eps[i], &inv->eps[i + 1], (inv->n - i - 1) * sizeof(*inv->eps));
	inv->n--;
	return 0;
}

static size_t inventory_ns_search(const struct mseg_inventory *inv, const char *name,
				  bool *ret_found)
{
	return sorted_search((void *const *)inv->nss, inv->n_nss, name, ns_key, ret_found);
}

struct mseg_namespace *inventory_ns_find(const struct mseg_inventory *inv, const char *name)
{
	bool found;
	size_t i;

	if (!inv || !name)
		return NULL;
	i = inventory_ns_search(inv, name, &found);
	return found ? inv->nss[i] : NULL;
}

int inventory_ns_put(struct mseg_inventory *inv, struct mseg_namespace *ns)
{
	bool found;
	size_t i;
	int r;

	if (!ns || !ns->name)
		return -EINVAL;
	i = inventory_ns_search(inv, ns->name, &found);
	inv->ns_serial = inventory_serial_next();
	if (found) {
		if (inv->nss[i] != ns)
			namespace_free(inv->nss[i]);
		inv->nss[i] = ns;
		return 0;
	}
	if (inv->n_nss >= SIZE_MAX / 2)
		return -ENOMEM;
	r = VEC_RESERVE(inv->nss, inv->cap_nss, inv->n_nss + 1);
	if (r < 0)
		return r;
	memmove(&inv->nss[i + 1], &inv->nss[i], (inv->n_nss - i) * sizeof(*inv->nss));
	inv->nss[i] = ns;
	inv->n_nss++;
	return 0;
}

int inventory_ns_remove(struct mseg_inventory *inv, const char *name)
{
	bool found;
	size_t i = inventory_ns_search(inv, name, &found);

	if (!found)
		return -ENOENT;
	inv->ns_serial = inventory_serial_next();
	namespace_free(inv->nss[i]);
	memmove(&inv->nss[i], &inv->nss[i + 1], (inv->n_nss - i - 1) * sizeof(*inv->nss));
	inv->n_nss--;
	return 0;
}

/* ---- loading ---- */

/* A parsed endpoint waiting for the duplicate check. */
struct pending {
	struct mseg_endpoint *ep;
	const struct ynode *id_node;
	const struct ynode *map;
	size_t order;
};

/* A parsed namespace waiting for the duplicate check. */
struct pending_ns {
	struct mseg_namespace *ns;
	const struct ynode *name_node;
};

struct pending_list {
	struct pending *v;
	size_t n, cap;
	struct pending_ns *nss;
	size_t n_nss, cap_nss;
};

static void pending_release(struct pending_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		endpoint_free(l->v[i].ep);
	free(l->v);
	for (i = 0; i < l->n_nss; i++)
		namespace_free(l->nss[i].ns);
	free(l->nss);
}

/* Namespace names unique among @l and new to @inv; an endpoint's own
 * ns_labels only for a namespace declared nowhere. */
static int pending_ns_check(const struct ycheck *ck, const struct mseg_inventory *inv,
			    const struct pending_list *l)
{
	size_t i, j;

	for (i = 0; i < l->n_nss; i++) {
		const struct mseg_namespace *ns = l->nss[i].ns, *first = inventory_ns_find(inv,
											ns->name);

		for (j = 0; !first && j < i; j++)
			if (!strcmp(l->nss[j].ns->name, ns->name))
				first = l->nss[j].ns;
		if (first)
			return ycheck_fail(ck, l->nss[i].name_node,
					   "namespace '%s' is already defined at %s:%u:%u", ns->name,
					   first->pos.file ? first->pos.file : "?", first->pos.line,
					   first->pos.col);
	}
	for (i = 0; i < l->n; i++) {
		const struct mseg_endpoint *ep = l->v[i].ep;
		const struct mseg_namespace *ns;

		if (!ep->n_given_ns_labels && !ynode_map_get(l->v[i].map, "ns_labels"))
			continue;
		ns = inventory_ns_find(inv, ep->ns);
		for (j = 0; !ns && j < l->n_nss; j++)
			if (!strcmp(l->nss[j].ns->name, ep->ns))
				ns = l->nss[j].ns;
		if (ns)
			return ycheck_fail(ck, ynode_map_get(l->v[i].map, "ns_labels"),
					   "endpoint '%s': ns_labels: namespace '%s' is declared at "
					   "%s:%u:%u; its labels are given there",
					   ep->id, ep->ns, ns->pos.file ? ns->pos.file : "?",
					   ns->pos.line, ns->pos.col);
	}
	return 0;
}

static int namespaces_collect(const struct ycheck *ck, const struct ynode *seq,
			      struct pending_list *l)
{
	size_t i;
	int r;

	r = ycheck_kind(ck, seq, YNODE_SEQ, "namespaces");
	if (r < 0)
		return r;
	for (i = 0; i < seq->n; i++) {
		struct pending_ns *p;
		char what[32];

		r = VEC_RESERVE(l->nss, l->cap_nss, l->n_nss + 1);
		if (r < 0)
			return err_setf(ck->err, ENOMEM, "out of memory");
		p = &l->nss[l->n_nss];
		ycheck_whatf(what, sizeof(what), "namespaces[%zu]", i);
		r = namespace_from_node(ck->file, ck->err, seq->vals[i], what, NULL, &p->ns,
					&p->name_node);
		if (r < 0)
			return r;
		l->n_nss++;
	}
	return 0;
}

static int pending_cmp(const void *pa, const void *pb)
{
	const struct pending *a = pa, *b = pb;
	int c = strcmp(a->ep->id, b->ep->id);

	if (c)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int pos_fail_dup(const struct ycheck *ck, const struct ynode *at,
			const struct mseg_endpoint *first)
{
	if (!first->pos.file || !first->pos.line)
		return ycheck_fail(ck, at, "endpoint '%s' is already in the inventory", first->id);
	return ycheck_fail(ck, at, "endpoint '%s' is already defined at %s:%u:%u", first->id,
			   first->pos.file, first->pos.line, first->pos.col);
}

/* Ids unique among @l and new to @inv; reports the duplicate that comes
 * first in the document. Sorts @l by id. */
static int pending_check(const struct ycheck *ck, const struct mseg_inventory *inv,
			 struct pending_list *l)
{
	const struct pending *dup = NULL, *first = NULL;
	size_t i, run = 0;

	for (i = 0; i < l->n; i++) {
		const struct mseg_endpoint *old = inventory_find(inv, l->v[i].ep->id);

		if (old)
			return pos_fail_dup(ck, l->v[i].id_node, old);
	}
	if (l->n < 2)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), pending_cmp);
	for (i = 1; i < l->n; i++) {
		if (strcmp(l->v[i].ep->id, l->v[run].ep->id)) {
			run = i;
			continue;
		}
		if (!dup || l->v[i].order < dup->order) {
			dup = &l->v[i];
			first = &l->v[run];
		}
	}
	if (dup)
		return pos_fail_dup(ck, dup->id_node, first->ep);
	return 0;
}

static int inventory_doc_collect(const struct ycheck *ck, const struct ynode *root,
				 struct pending_list *l)
{
	static const char *const keys[] = { "namespaces", "endpoints", NULL };
	const struct ynode *eps, *nss;
	size_t i;
	int r;

	r = ycheck_kind(ck, root, YNODE_MAP, "document");
	if (r < 0)
		return r;
	r = ycheck_keys(ck, root, "", keys);
	if (r < 0)
		return r;
	nss = ynode_map_get(root, "namespaces");
	if (nss) {
		r = namespaces_collect(ck, nss, l);
		if (r < 0)
			return r;
		if (!ynode_map_get(root, "endpoints"))
			return 0;
	}
	r = ycheck_require(ck, root, "endpoints", "", &eps);
	if (r < 0)
		return r;
	r = ycheck_kind(ck, eps, YNODE_SEQ, "endpoints");
	if (r < 0)
		return r;
	for (i = 0; i < eps->n; i++) {
		struct pending *p;
		char what[32];

		if (l->n == l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 16;
			struct pending *v = reallocarray(l->v, cap, sizeof(*v));

			if (!v)
				return err_setf(ck->err, ENOMEM, "out of memory");
			l->v = v;
			l->cap = cap;
		}
		p = &l->v[l->n];
		ycheck_whatf(what, sizeof(what), "endpoints[%zu]", i);
		r = endpoint_from_node(ck->file, ck->err, eps->vals[i], what, NULL, 0, NULL,
				       &p->ep, &p->id_node);
		if (r < 0)
			return r;
		p->map = eps->vals[i];
		p->order = l->n++;
	}
	return 0;
}

static int ep_cmp(const void *pa, const void *pb)
{
	const struct mseg_endpoint *a = *(const struct mseg_endpoint *const *)pa;
	const struct mseg_endpoint *b = *(const struct mseg_endpoint *const *)pb;

	return strcmp(a->id, b->id);
}

int inventory_parse_buffer(struct mseg_inventory *inv, const char *name, const char *buf,
			   size_t len, struct mseg_err *err)
{
	struct ycheck ck = { .file = name, .err = err };
	struct pending_list l = { 0 };
	struct ytree t;
	size_t i;
	int r;

	r = ytree_load(&t, name, buf, len, &inventory_limits, err);
	for (i = 0; r == 0 && i < t.n_docs; i++)
		r = inventory_doc_collect(&ck, t.docs[i].root, &l);
	if (r < 0)
		goto out_release;
	r = pending_ns_check(&ck, inv, &l);
	if (r == 0)
		r = pending_check(&ck, inv, &l);
	if (r < 0 || (l.n == 0 && l.n_nss == 0))
		goto out_release;
	if (inventory_reserve(inv, l.n) < 0 ||
	    VEC_RESERVE(inv->nss, inv->cap_nss, inv->n_nss + l.n_nss) < 0) {
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_release;
	}
	/* not one change at a time: a journal would not say them */
	inv->serial = inventory_serial_next();
	if (inv->journal_on && l.n)
		journal_lose(inv);
	for (i = 0; i < l.n; i++) {
		inv->eps[inv->n++] = l.v[i].ep;
		l.v[i].ep = NULL;
	}
	if (inv->n > 1)   /* eps may be NULL: a file of namespaces only */
		qsort(inv->eps, inv->n, sizeof(*inv->eps), ep_cmp);
	for (i = 0; i < l.n_nss; i++) {
		inventory_ns_put(inv, l.nss[i].ns);   /* room reserved: cannot fail */
		l.nss[i].ns = NULL;
	}
	if (inventory_ns_labels_fill(inv, inv) < 0)
		r = err_setf(err, ENOMEM, "out of memory");

out_release:
	pending_release(&l);
	ytree_release(&t);
	return r;
}

int inventory_load_file(struct mseg_inventory *inv, const char *path, struct mseg_err *err)
{
	size_t len;
	char *buf;
	int r;

	r = ytree_file_read(path, INVENTORY_MAX_FILE_SIZE, &buf, &len, err);
	if (r < 0)
		return r;
	r = inventory_parse_buffer(inv, path, buf, len, err);
	free(buf);
	return r;
}

int endpoint_parse_buffer(const char *id, const char *name, const char *buf, size_t len,
			  struct mseg_endpoint **ret_ep, struct mseg_err *err)
{
	const struct ynode *id_node;
	struct ytree t;
	int r;

	r = ytree_load(&t, name, buf, len, &inventory_limits, err);
	if (r < 0)
		goto out_release;
	if (t.n_docs > 1) {
		r = err_set(err, name, t.docs[1].line, t.docs[1].col, EINVAL,
			    "expected one endpoint document, found another");
		goto out_release;
	}
	if (t.n_docs == 0) {
		r = err_set(err, name, 0, 0, EINVAL, "empty document");
		goto out_release;
	}
	r = endpoint_from_node(name, err, t.docs[0].root, "endpoint", id, 0, NULL, ret_ep,
			       &id_node);

out_release:
	ytree_release(&t);
	return r;
}

/* ---- an endpoint from fields in memory ---- */

/* The nodes endpoint_build() gives the parser: what the YAML reader makes
 * of the same JSON text (a string is a quoted scalar; a number, true or
 * false a plain one; null a plain "null"), with no position. */
struct ybuild {
	struct arena *a;
	bool oom;
};

static struct ynode *ybuild_node(struct ybuild *b, enum ynode_kind kind, size_t n)
{
	struct ynode *y = arena_alloc(b->a, sizeof(*y));

	if (!y) {
		b->oom = true;
		return NULL;
	}
	y->kind = kind;
	if (kind != YNODE_SCALAR) {
		y->keys = kind == YNODE_MAP ? arena_calloc(b->a, n ? n : 1, sizeof(*y->keys)) : NULL;
		y->vals = arena_calloc(b->a, n ? n : 1, sizeof(*y->vals));
		if (!y->vals || (kind == YNODE_MAP && !y->keys)) {
			b->oom = true;
			return NULL;
		}
	}
	return y;
}

static struct ynode *ybuild_scalar(struct ybuild *b, const char *s, bool plain)
{
	struct ynode *y = ybuild_node(b, YNODE_SCALAR, 0);

	if (!y)
		return NULL;
	y->str = s;
	y->len = strlen(s);
	y->plain = plain;
	return y;
}

static struct ynode *ybuild_value(struct ybuild *b, const struct endpoint_value *v)
{
	switch (v->kind) {
	case EPV_STRING:
		return ybuild_scalar(b, v->text ? v->text : "", false);
	case EPV_LITERAL:
		return ybuild_scalar(b, v->text ? v->text : "", true);
	case EPV_OBJECT:
		return ybuild_node(b, YNODE_MAP, 0);
	case EPV_ARRAY:
		return ybuild_node(b, YNODE_SEQ, 0);
	default:
		return ybuild_scalar(b, "null", true);
	}
}

/* Append @key: @val to @map (room was made by ybuild_node). */
static void ybuild_put(struct ybuild *b, struct ynode *map, const char *key, struct ynode *val)
{
	struct ynode *k = ybuild_scalar(b, key, true);

	if (!k || !val)
		return;
	map->keys[map->n] = k;
	map->vals[map->n++] = val;
}

static void ybuild_str(struct ybuild *b, struct ynode *map, const char *key, const char *s)
{
	if (s)
		ybuild_put(b, map, key, ybuild_scalar(b, s, false));
}

static size_t str_size(const char *s)
{
	return s ? arena_size(strlen(s) + 1) : 0;
}

/* What endpoint_from_node() puts in the arena for @f (a good endpoint):
 * one chunk of this size, no slack. */
static size_t endpoint_fields_size(const char *name, const struct endpoint_fields *f)
{
	size_t n = str_size(name) + str_size(f->id) + str_size(f->name) + str_size(f->ns) +
		   str_size(f->netns) + str_size(f->pod_uid);
	const struct mseg_namespace *ns = f->namespace;

	n += arena_size((f->n_labels ? f->n_labels : 1) * sizeof(struct mseg_label));
	for (size_t i = 0; i < f->n_labels; i++)
		n += str_size(f->labels[i].key) + str_size(f->labels[i].value.text);
	n += arena_size(f->n_ips * sizeof(struct mseg_addr));
	if (f->n_ports)
		n += arena_size(f->n_ports * sizeof(struct mseg_named_port));
	for (size_t i = 0; i < f->n_ports; i++)
		n += str_size(f->ports[i].name.text);
	/* its namespace labels (labels_with_name()) */
	n += arena_size(((ns ? ns->n_labels : 0) + 1) * sizeof(struct mseg_label)) +
	     str_size(f->ns ? f->ns : "default");
	for (size_t i = 0; ns && i < ns->n_labels; i++)
		if (strcmp(ns->labels[i].key, NS_NAME_LABEL) != 0)
			n += str_size(ns->labels[i].key) + str_size(ns->labels[i].value);
	return n;
}

int endpoint_build(const char *name, const struct endpoint_fields *f,
		   struct mseg_endpoint **ret_ep, struct mseg_err *err)
{
	struct arena a;
	struct ybuild b = { .a = &a };
	const struct ynode *id_node;
	struct ynode *root, *labels, *ips, *ports = NULL;
	int r;

	arena_init(&a);
	/* the nodes in one block: a scalar node and its key per field */
	if (arena_reserve(&a, (16 + 2 * (f->n_labels + f->n_ips) + 8 * f->n_ports) *
			       (arena_size(sizeof(struct ynode)) + 2 * sizeof(void *))) < 0)
		goto out_oom;
	root = ybuild_node(&b, YNODE_MAP, 8);
	labels = ybuild_node(&b, YNODE_MAP, f->n_labels);
	ips = ybuild_node(&b, YNODE_SEQ, f->n_ips);
	if (f->n_ports)
		ports = ybuild_node(&b, YNODE_SEQ, f->n_ports);
	if (b.oom)
		goto out_oom;
	ybuild_str(&b, root, "id", f->id);
	ybuild_str(&b, root, "name", f->name);
	ybuild_str(&b, root, "namespace", f->ns);
	for (size_t i = 0; i < f->n_labels; i++)
		ybuild_put(&b, labels, f->labels[i].key, ybuild_value(&b, &f->labels[i].value));
	ybuild_put(&b, root, "labels", labels);
	for (size_t i = 0; i < f->n_ips; i++) {
		struct ynode *y = ybuild_scalar(&b, f->ips[i], false);

		if (y)
			ips->vals[ips->n++] = y;
	}
	ybuild_put(&b, root, "ips", ips);
	ybuild_str(&b, root, "netns", f->netns);
	ybuild_str(&b, root, "pod_uid", f->pod_uid);
	for (size_t i = 0; ports && i < f->n_ports; i++) {
		const struct endpoint_field_port *p = &f->ports[i];
		struct ynode *y = ybuild_node(&b, YNODE_MAP, 3);

		if (!y)
			break;
		if (p->name.kind)
			ybuild_put(&b, y, "name", ybuild_value(&b, &p->name));
		if (p->port.kind)
			ybuild_put(&b, y, "port", ybuild_value(&b, &p->port));
		if (p->protocol.kind)
			ybuild_put(&b, y, "protocol", ybuild_value(&b, &p->protocol));
		ports->vals[ports->n++] = y;
	}
	if (ports)
		ybuild_put(&b, root, "ports", ports);
	if (b.oom)
		goto out_oom;
	r = endpoint_from_node(name, err, root, "endpoint", NULL, endpoint_fields_size(name, f),
			       f->namespace, ret_ep, &id_node);
	arena_release(&a);
	return r;

out_oom:
	arena_release(&a);
	return err_setf(err, ENOMEM, "out of memory");
}
