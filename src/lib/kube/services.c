/* What the cluster says beyond policies and endpoints (include/mseg/kube/kube.h,
 * struct kube_cluster): this node's addresses from its Node object, and
 * the Service routes from Services and EndpointSlices. Pure: the watcher's
 * stores in, addresses and routes out. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/kube/kube.h"
#include "mseg/model/addr.h"
#include "util/vec.h"
#include "kube/trim.h"

#define SERVICE_NAME_LABEL "kubernetes.io/service-name"

/* ---- trims ---- */

static bool node_addr_type_kept(const char *type)
{
	/* Hostname, InternalDNS and ExternalDNS are names, not addresses */
	return type && (strcmp(type, "InternalIP") == 0 || strcmp(type, "ExternalIP") == 0);
}

json_t *kube_node_trim(json_t *node)
{
	json_t *md = json_object_get(node, "metadata"), *addrs, *a;
	size_t i;

	if (!json_is_object(md))
		return NULL;
	addrs = json_array();
	json_array_foreach(json_object_get(json_object_get(node, "status"), "addresses"), i, a) {
		if (node_addr_type_kept(json_string_value(json_object_get(a, "type"))))
			json_array_append_new(addrs, json_pack("{sOsO}", "type",
				json_object_get(a, "type"), "address",
				json_object_get(a, "address") ?: json_null()));
	}
	return json_pack("{s{sO*}so}", "metadata", "name", json_object_get(md, "name"),
			 "addresses", addrs);
}

json_t *kube_service_trim(json_t *svc)
{
	json_t *md = json_object_get(svc, "metadata"), *spec = json_object_get(svc, "spec");
	json_t *t, *m, *ports, *p;
	size_t i;

	if (!json_is_object(md))
		return NULL;
	t = json_object();
	m = json_object();
	copy_key(m, md, "namespace");
	copy_key(m, md, "name");
	json_object_set_new(t, "metadata", m);
	copy_key(t, spec, "clusterIP");
	copy_key(t, spec, "clusterIPs");
	copy_key(t, spec, "externalIPs");
	/* a LoadBalancer's addresses (status.loadBalancer.ingress): the ip
	 * and its ipMode; a hostname-only ingress has no address to keep */
	{
		json_t *lb = json_array(), *in;

		json_array_foreach(json_object_get(json_object_get(json_object_get(svc, "status"),
								   "loadBalancer"), "ingress"), i, in) {
			json_t *q = json_object();

			copy_key(q, in, "ip");
			copy_key(q, in, "ipMode");
			json_array_append_new(lb, q);
		}
		if (json_array_size(lb))
			json_object_set_new(t, "loadBalancerIngress", lb);
		else
			json_decref(lb);
	}
	ports = json_array();
	json_array_foreach(json_object_get(spec, "ports"), i, p) {
		json_t *q = json_object();

		copy_key(q, p, "name");
		copy_key(q, p, "port");
		copy_key(q, p, "targetPort");
		copy_key(q, p, "protocol");
		json_array_append_new(ports, q);
	}
	json_object_set_new(t, "ports", ports);
	return t;
}

json_t *kube_slice_trim(json_t *slice)
{
	json_t *md = json_object_get(slice, "metadata"), *t, *m, *eps, *e, *ports, *p;
	const char *svc;
	size_t i;

	if (!json_is_object(md))
		return NULL;
	svc = json_string_value(json_object_get(json_object_get(md, "labels"), SERVICE_NAME_LABEL));
	t = json_object();
	m = json_object();
	copy_key(m, md, "namespace");
	copy_key(m, md, "name");
	if (svc)
		json_object_set_new(m, "service", json_string(svc));
	json_object_set_new(t, "metadata", m);
	copy_key(t, slice, "addressType");
	eps = json_array();
	json_array_foreach(json_object_get(slice, "endpoints"), i, e) {
		json_t *ready = json_object_get(json_object_get(e, "conditions"), "ready");
		json_t *q = json_object();

		copy_key(q, e, "addresses");
		if (ready)
			json_object_set(q, "ready", ready);
		json_array_append_new(eps, q);
	}
	json_object_set_new(t, "endpoints", eps);
	ports = json_array();
	json_array_foreach(json_object_get(slice, "ports"), i, p) {
		json_t *q = json_object();

		copy_key(q, p, "name");
		copy_key(q, p, "port");
		copy_key(q, p, "protocol");
		json_array_append_new(ports, q);
	}
	json_object_set_new(t, "ports", ports);
	return t;
}

/* ---- building ---- */

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
	/* a slice is read once per Service port: say each line once */
	for (size_t i = 0; i < e->n; i++) {
		if (strcmp(e->lines[i], s) == 0) {
			free(s);
			return;
		}
	}
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

void kube_cluster_release(struct kube_cluster *c)
{
	free(c->node_addrs);
	free(c->routes);
	memset(c, 0, sizeof(*c));
}

static int node_addrs_build(const json_t *nodes, const char *node_name, struct kube_cluster *c,
			    struct kube_build_errs *errs)
{
	json_t *node = node_name ? json_object_get(nodes, node_name) : NULL, *a;
	size_t i, cap = 0;

	json_array_foreach(json_object_get(node, "addresses"), i, a) {
		const char *s = json_string_value(json_object_get(a, "address"));
		struct mseg_addr addr;
		bool dup = false;

		if (!s || addr_parse(s, &addr) < 0) {
			errs_add(errs, "kubernetes:nodes/%s: status.addresses: '%.100s' (%s) is not an "
				 "IPv4 or IPv6 address (left out)", node_name, s ? s : "",
				 json_string_value(json_object_get(a, "type")));
			continue;
		}
		for (size_t k = 0; k < c->n_node_addrs && !dup; k++)
			dup = addr_eq(&c->node_addrs[k], &addr);
		if (dup)
			continue;
		if (VEC_RESERVE(c->node_addrs, cap, c->n_node_addrs + 1) < 0)
			return -ENOMEM;
		c->node_addrs[c->n_node_addrs++] = addr;
	}
	return 0;
}

static uint8_t proto_of(const json_t *v)
{
	const char *s = json_string_value(v);

	if (!s || strcmp(s, "TCP") == 0)
		return 6;
	if (strcmp(s, "UDP") == 0)
		return 17;
	if (strcmp(s, "SCTP") == 0)
		return 132;
	return 0;
}

static const char *str_or_empty(const json_t *v)
{
	const char *s = json_string_value(v);

	return s ? s : "";
}

static bool str_is(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static bool port_number(const json_t *v, uint16_t *ret)
{
	json_int_t n = json_integer_value(v);

	if (!json_is_integer(v) || n < 1 || n > 65535)
		return false;
	*ret = (uint16_t)n;
	return true;
}

struct routes {
	struct mseg_svc_route *v;
	size_t n, cap;
};

static int vips_add(struct mseg_addr **vips, size_t *n, size_t *cap, const struct mseg_addr *a)
{
	for (size_t i = 0; i < *n; i++)
		if (addr_eq(&(*vips)[i], a))
			return 0;   /* an external IP that is also the balancer's */
	if (VEC_RESERVE(*vips, *cap, *n + 1) < 0)
		return -ENOMEM;
	(*vips)[(*n)++] = *a;
	return 0;
}

/* The Service's virtual addresses: clusterIPs (or clusterIP), externalIPs,
 * and the LoadBalancer ingress addresses that kube-proxy translates on the
 * node (ipMode VIP, the default; with ipMode Proxy, traffic goes to the
 * balancer itself and leaves the node with its address)
 * (*ret_vips allocated). 0 or -ENOMEM. */
static int svc_vips(const char *key, json_t *svc, struct mseg_addr **ret_vips, size_t *ret_n,
		    struct kube_build_errs *errs)
{
	static const char *const fields[] = { "clusterIPs", "externalIPs" };
	json_t *one = json_object_get(svc, "clusterIP"), *v;
	struct mseg_addr *vips = NULL;
	size_t n = 0, cap = 0, i;

	for (size_t f = 0; f < 2; f++) {
		json_t *list = json_object_get(svc, fields[f]), *tmp = NULL;

		if (f == 0 && !list && one)
			list = tmp = json_pack("[O]", one);
		json_array_foreach(list, i, v) {
			const char *s = json_string_value(v);
			struct mseg_addr a;

			if (s && (strcmp(s, "None") == 0 || !*s))
				continue;   /* headless: clients reach the pods directly */
			if (!s || addr_parse(s, &a) < 0) {
				errs_add(errs, "kubernetes:services/%s: spec.%s[%zu]: '%.100s' is not "
					 "an IPv4 or IPv6 address (left out)", key, fields[f], i,
					 s ? s : "");
				continue;
			}
			if (vips_add(&vips, &n, &cap, &a) < 0) {
				json_decref(tmp);
				free(vips);
				return -ENOMEM;
			}
		}
		json_decref(tmp);
	}
	json_array_foreach(json_object_get(svc, "loadBalancerIngress"), i, v) {
		const char *s = json_string_value(json_object_get(v, "ip"));
		const char *mode = json_string_value(json_object_get(v, "ipMode"));
		struct mseg_addr a;

		if (!json_object_get(v, "ip") || (mode && strcmp(mode, "VIP") != 0))
			continue;   /* a hostname; or the balancer proxies (ipMode Proxy) */
		if (!s || addr_parse(s, &a) < 0) {
			errs_add(errs, "kubernetes:services/%s: status.loadBalancer.ingress[%zu].ip: "
				 "'%.100s' is not an IPv4 or IPv6 address (left out)", key, i,
				 s ? s : "");
			continue;
		}
		if (vips_add(&vips, &n, &cap, &a) < 0) {
			free(vips);
			return -ENOMEM;
		}
	}
	*ret_vips = vips;
	*ret_n = n;
	return 0;
}

/* The routes of one Service port through one slice. */
static int slice_routes(const char *key, json_t *sp, json_t *slice, const struct mseg_addr *vips,
			size_t n_vips, struct routes *out, struct kube_build_errs *errs)
{
	const char *name = str_or_empty(json_object_get(sp, "name"));
	uint8_t proto = proto_of(json_object_get(sp, "protocol"));
	uint16_t port, bport = 0, target = 0;
	json_t *p, *e, *a;
	size_t i, j, k;
	bool found = false;

	if (!proto || !port_number(json_object_get(sp, "port"), &port))
		return 0;
	port_number(json_object_get(sp, "targetPort"), &target);
	/* the slice's port of the same name and protocol carries the backends'
	 * port (a named targetPort resolved per pod); none: targetPort */
	json_array_foreach(json_object_get(slice, "ports"), i, p) {
		if (strcmp(str_or_empty(json_object_get(p, "name")), name) != 0 ||
		    proto_of(json_object_get(p, "protocol")) != proto)
			continue;
		found = true;
		if (!port_number(json_object_get(p, "port"), &bport))
			bport = target;
		break;
	}
	if (!found || !bport)
		return 0;
	if (!str_is(json_object_get(slice, "addressType"), "IPv4") &&
	    !str_is(json_object_get(slice, "addressType"), "IPv6"))
		return 0;   /* FQDN: names, nothing the node translates to */
	json_array_foreach(json_object_get(slice, "endpoints"), i, e) {
		json_t *ready = json_object_get(e, "ready");

		/* an unknown readiness counts as ready (the API's rule) */
		if (ready && !json_is_true(ready))
			continue;
		json_array_foreach(json_object_get(e, "addresses"), j, a) {
			const char *s = json_string_value(a);
			struct mseg_addr b;

			if (!s || addr_parse(s, &b) < 0) {
				errs_add(errs, "kubernetes:endpointslices/%s: endpoints[%zu].addresses: "
					 "'%.100s' is not an IPv4 or IPv6 address (left out)",
					 key, i, s ? s : "");
				continue;
			}
			for (k = 0; k < n_vips; k++) {
				if (vips[k].family != b.family)
					continue;
				if (VEC_RESERVE(out->v, out->cap, out->n + 1) < 0)
					return -ENOMEM;
				out->v[out->n++] = (struct mseg_svc_route){
					.vip = vips[k], .backend = b, .proto = proto,
					.port = port, .backend_port = bport,
				};
			}
		}
	}
	return 0;
}

static int cmp_route(const void *pa, const void *pb)
{
	const struct mseg_svc_route *a = pa, *b = pb;
	int c = a->vip.family - b->vip.family;

	if (c)
		return c;
	if ((c = memcmp(a->vip.bytes, b->vip.bytes, sizeof(a->vip.bytes))))
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if ((c = memcmp(a->backend.bytes, b->backend.bytes, sizeof(a->backend.bytes))))
		return c;
	return (a->backend_port > b->backend_port) - (a->backend_port < b->backend_port);
}

static int routes_build(const json_t *services, const json_t *slices, struct kube_cluster *c,
			struct kube_build_errs *errs)
{
	struct routes out = { 0 };
	json_t *by_svc = json_object(), *v, *list, *sp, *sl;
	const char *key;
	char k[600];
	size_t i, j;
	int r = -ENOMEM;

	if (!by_svc)
		return -ENOMEM;
	/* slices by "NS/SERVICE" */
	json_object_foreach((json_t *)slices, key, v) {
		json_t *md = json_object_get(v, "metadata");
		const char *svc = json_string_value(json_object_get(md, "service"));

		if (!svc)
			continue;   /* not managed for a Service */
		snprintf(k, sizeof(k), "%s/%s", str_or_empty(json_object_get(md, "namespace")), svc);
		list = json_object_get(by_svc, k);
		if (!list) {
			list = json_array();
			if (json_object_set_new(by_svc, k, list) < 0)
				goto out_free;
		}
		if (json_array_append(list, v) < 0)
			goto out_free;
	}
	json_object_foreach((json_t *)services, key, v) {
		struct mseg_addr *vips;
		size_t n_vips;

		r = svc_vips(key, v, &vips, &n_vips, errs);
		if (r < 0)
			goto out_free;
		if (!n_vips)
			continue;
		list = json_object_get(by_svc, key);
		json_array_foreach(json_object_get(v, "ports"), i, sp) {
			json_array_foreach(list, j, sl) {
				char skey[600];
				json_t *md = json_object_get(sl, "metadata");

				snprintf(skey, sizeof(skey), "%s/%s",
					 str_or_empty(json_object_get(md, "namespace")),
					 str_or_empty(json_object_get(md, "name")));
				r = slice_routes(skey, sp, sl, vips, n_vips, &out, errs);
				if (r < 0) {
					free(vips);
					goto out_free;
				}
			}
		}
		free(vips);
	}
	/* the same backend through several slices or ports: once */
	if (out.n)
		qsort(out.v, out.n, sizeof(*out.v), cmp_route);
	for (i = 0; i < out.n; i++)
		if (!c->n_routes || cmp_route(&out.v[c->n_routes - 1], &out.v[i]) != 0)
			out.v[c->n_routes++] = out.v[i];
	c->routes = out.v;
	out.v = NULL;
	r = 0;
out_free:
	free(out.v);
	json_decref(by_svc);
	return r;
}

int kube_cluster_build(const json_t *nodes, const json_t *services, const json_t *slices,
		       const char *node_name, struct kube_cluster *ret, struct kube_build_errs *errs)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	r = node_addrs_build(nodes, node_name, ret, errs);
	if (r == 0)
		r = routes_build(services, slices, ret, errs);
	if (r < 0)
		kube_cluster_release(ret);
	return r;
}
