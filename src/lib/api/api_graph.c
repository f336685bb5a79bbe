/* GET /v1/graph (docs/rest-api.md): who may talk to whom, from the
 * compiled plan of the desired state. Nodes are the endpoints; an edge
 * joins two endpoints when the destination's ingress admits the source's
 * address on a port and the source's egress admits the destination's
 * (a direction that is not isolated admits everything); a peer edge joins
 * an endpoint and an address group of a policy rule. The flow map
 * (docs/ui.md) draws it. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "mseg/daemon/desired.h"
#include "mseg/kernel/reconcile.h"
#include "mseg/model/addr.h"
#include "mseg/model/plan.h"
#include "mseg/model/selector.h"
#include "mseg/packet/pkt.h"
#include "api/api_json.h"
#include "api/api_priv.h"

static const char *dir_name(enum mseg_dir d)
{
	return d == MSEG_DIR_INGRESS ? "ingress" : "egress";
}

/* "tcp/80", "tcp/8000-8080", "tcp", "icmp", "any" */
static const char *entry_port_text(const struct mseg_entry *e, char *buf, size_t size)
{
	const char *pn = pkt_proto_name(e->proto);
	char num[8];

	if (!pn) {
		snprintf(num, sizeof(num), "%u", e->proto);
		pn = num;
	}
	if (e->proto == 0)
		snprintf(buf, size, "any");
	else if (!proto_has_ports(e->proto) || (e->port_lo == 0 && e->port_hi == 65535))
		snprintf(buf, size, "%s", pn);
	else if (e->port_lo == e->port_hi)
		snprintf(buf, size, "%s/%u", pn, e->port_lo);
	else
		snprintf(buf, size, "%s/%u-%u", pn, e->port_lo, e->port_hi);
	return buf;
}

static bool entry_has_addr(const struct mseg_entry *e, const struct mseg_addr *a)
{
	unsigned __int128 v;

	if (e->lo.family != a->family)
		return false;
	v = addr_u128(a);
	return addr_u128(&e->lo) <= v && v <= addr_u128(&e->hi);
}

/* Does @d admit @peer on @e's protocol and first port? */
static bool dir_admits(const struct mseg_dir_plan *d, const struct mseg_addr *peer,
		       const struct mseg_entry *e)
{
	if (!d->isolated)
		return true;
	for (size_t i = 0; i < d->n_entries; i++) {
		const struct mseg_entry *f = &d->entries[i];

		if (!entry_has_addr(f, peer))
			continue;
		if (f->proto == 0)
			return true;
		if (f->proto != e->proto)
			continue;
		if (!proto_has_ports(f->proto) || (f->port_lo <= e->port_lo && e->port_lo <= f->port_hi))
			return true;
	}
	return false;
}

static void ports_add(json_t *o, const char *port)
{
	json_t *ports = json_object_get(o, "ports");
	size_t i;
	json_t *v;

	json_array_foreach(ports, i, v)
		if (strcmp(json_string_value(v), port) == 0)
			return;
	json_array_append_new(ports, json_string(port));
}

static void prov_set(json_t *o, const struct mseg_policy *const *pols, size_t n_pols,
		     const struct mseg_entry *e)
{
	char name[512];
	const struct mseg_policy *p;

	if (json_object_get(o, "policy") || e->policy >= n_pols)
		return;
	p = pols[e->policy];
	snprintf(name, sizeof(name), "%s/%s", p->ns, p->name);
	json_object_set_new(o, "policy", json_string(name));
	json_object_set_new(o, "rule", json_integer(e->rule < p->n_rules ? p->rules[e->rule].index
								      : e->rule));
}

struct graph {
	const struct mseg_plan *plan;
	const struct mseg_policy *const *pols;
	size_t n_pols;
	json_t *edges;                 /* "SRC\nDST" -> edge */
	json_t *peers;                 /* "EP\nDIR\nGROUP" -> peer edge */
};

static const char *plan_ep_id(const struct graph *g, size_t i)
{
	return g->plan->eps[i].ep->id;
}

static void edge_add(struct graph *g, size_t s, size_t d, const struct mseg_entry *e)
{
	const struct mseg_endpoint *src = g->plan->eps[s].ep, *dst = g->plan->eps[d].ep;
	char key[600], port[32];
	json_t *o;

	snprintf(key, sizeof(key), "%s\n%s", src->id, dst->id);
	o = json_object_get(g->edges, key);
	if (!o) {
		o = json_pack("{ss,ss,s[]}", "from", src->id, "to", dst->id, "ports");
		if (!o)
			return;
		json_object_set_new(g->edges, key, o);
	}
	ports_add(o, entry_port_text(e, port, sizeof(port)));
	prov_set(o, g->pols, g->n_pols, e);
}

/* The endpoints admitted by entry @e of endpoint @me's direction @dir whose
 * other direction admits the pair too. */
static void entry_endpoints(struct graph *g, size_t me, enum mseg_dir dir, const struct mseg_entry *e)
{
	const struct mseg_plan *plan = g->plan;

	for (size_t o = 0; o < plan->n_eps; o++) {
		const struct mseg_endpoint *other = plan->eps[o].ep;
		const struct mseg_endpoint *self = plan->eps[me].ep;

		if (o == me)
			continue;
		for (size_t i = 0; i < other->n_ips; i++) {
			const struct mseg_addr *self_ip = NULL;

			if (!entry_has_addr(e, &other->ips[i]))
				continue;
			for (size_t k = 0; k < self->n_ips && !self_ip; k++)
				if (self->ips[k].family == other->ips[i].family)
					self_ip = &self->ips[k];
			if (!self_ip)
				continue;
			if (dir == MSEG_DIR_INGRESS &&
			    dir_admits(&plan->eps[o].dir[MSEG_DIR_EGRESS], self_ip, e))
				edge_add(g, o, me, e);
			/* an isolated ingress on the other side was done from there */
			if (dir == MSEG_DIR_EGRESS && !plan->eps[o].dir[MSEG_DIR_INGRESS].isolated)
				edge_add(g, me, o, e);
			break;
		}
	}
}

/* The address group of the rule behind @e that holds @e's addresses. */
static void entry_peer(struct graph *g, size_t me, enum mseg_dir dir, const struct mseg_entry *e)
{
	const struct mseg_policy *p;
	const struct mseg_rule *rule;
	char key[700], port[32], buf[INET6_ADDRSTRLEN];

	if (e->policy >= g->n_pols)
		return;
	p = g->pols[e->policy];
	if (e->rule >= p->n_rules)
		return;
	rule = &p->rules[e->rule];
	for (size_t i = 0; i < rule->n_peers; i++) {
		const struct mseg_peer *peer = &rule->peers[i];
		bool has = false;
		json_t *o, *cidrs;

		if (peer->kind != MSEG_PEER_ADDRS)
			continue;
		for (size_t c = 0; c < peer->n_cidrs && !has; c++)
			has = addr_in_cidr(&e->lo, &peer->cidrs[c]);
		if (!has)
			continue;
		snprintf(key, sizeof(key), "%s\n%s\n%s/%s/%s", plan_ep_id(g, me), dir_name(dir), p->ns,
			 p->name, peer->group ? peer->group : "");
		o = json_object_get(g->peers, key);
		if (!o) {
			cidrs = json_array();
			for (size_t c = 0; c < peer->n_cidrs; c++) {
				char t[64];

				snprintf(t, sizeof(t), "%s/%u",
					 addr_format(&peer->cidrs[c].addr, buf, sizeof(buf)),
					 peer->cidrs[c].plen);
				json_array_append_new(cidrs, json_string(t));
			}
			o = json_pack("{ss,ss,ss,so,s[]}", "endpoint", plan_ep_id(g, me), "direction",
				      dir_name(dir), "group",
				      peer->group ? peer->group : json_string_value(json_array_get(cidrs, 0)),
				      "cidrs", cidrs, "ports");
			if (!o)
				return;
			json_object_set_new(g->peers, key, o);
		}
		ports_add(o, entry_port_text(e, port, sizeof(port)));
		prov_set(o, g->pols, g->n_pols, e);
		return;
	}
}

static json_t *graph_endpoint(const struct mseg_ep_plan *ep)
{
	json_t *o = json_object(), *labels = json_object(), *ips = json_array();
	char buf[INET6_ADDRSTRLEN];

	if (!o || !labels || !ips) {
		json_decref(o);
		json_decref(labels);
		json_decref(ips);
		return NULL;
	}
	json_object_set_new(o, "id", json_string(ep->ep->id));
	json_object_set_new(o, "name", json_string(ep->ep->name ? ep->ep->name : ep->ep->id));
	json_object_set_new(o, "namespace", json_string(selector_ns_name(ep->ep->ns)));
	for (size_t i = 0; i < ep->ep->n_labels; i++)
		json_object_set_new(labels, ep->ep->labels[i].key, json_string(ep->ep->labels[i].value));
	json_object_set_new(o, "labels", labels);
	for (size_t i = 0; i < ep->ep->n_ips; i++)
		json_array_append_new(ips, json_string(addr_format(&ep->ep->ips[i], buf, sizeof(buf))));
	json_object_set_new(o, "ips", ips);
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		const struct mseg_dir_plan *dp = &ep->dir[d];

		json_object_set_new(o, dir_name((enum mseg_dir)d),
				    json_pack("{sb,ss}", "isolated", dp->isolated, "mode",
					      !dp->isolated ? "open" :
					      dp->mode == MSEG_MODE_AUDIT ? "audit" : "enforce"));
	}
	return o;
}

static json_t *values_array(json_t *map)
{
	json_t *arr = json_array(), *v;
	const char *k;

	if (!arr)
		return NULL;
	json_object_foreach(map, k, v)
		json_array_append(arr, v);
	return arr;
}

void api_handle_graph(struct api_ctx *x)
{
	struct desired_view v;
	struct mseg_plan *plan = NULL;
	struct graph g = { 0 };
	json_t *out = NULL, *eps;
	int r;

	r = desired_view_build(x->be->desired, NULL, &v);
	if (r < 0) {
		api_resp_error(x, 503, "out of memory");
		return;
	}
	r = compile_plan((const struct mseg_policy *const *)v.pols.items, v.pols.n,
			 (const struct mseg_endpoint *const *)v.inv.eps, v.inv.n,
			 reconciler_compile_opts(x->be->rec), &plan);
	if (r < 0) {
		api_resp_error(x, r == -ENOMEM ? 503 : 500, "cannot compile the desired state: %s",
			       strerror(-r));
		goto out_release;
	}
	g.plan = plan;
	g.pols = (const struct mseg_policy *const *)v.pols.items;
	g.n_pols = v.pols.n;
	g.edges = json_object();
	g.peers = json_object();
	eps = json_array();
	if (!g.edges || !g.peers || !eps) {
		json_decref(eps);
		api_resp_error(x, 503, "out of memory");
		goto out_free;
	}
	for (size_t i = 0; i < plan->n_eps; i++) {
		json_array_append_new(eps, graph_endpoint(&plan->eps[i]));
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			const struct mseg_dir_plan *dp = &plan->eps[i].dir[d];

			if (!dp->isolated)
				continue;
			for (size_t k = 0; k < dp->n_entries; k++) {
				entry_endpoints(&g, i, (enum mseg_dir)d, &dp->entries[k]);
				entry_peer(&g, i, (enum mseg_dir)d, &dp->entries[k]);
			}
		}
	}
	out = json_pack("{sI,so,so,so}", "generation", (json_int_t)x->be->desired->generation,
			"endpoints", eps, "edges", values_array(g.edges), "peers",
			values_array(g.peers));
	if (!out)
		api_resp_error(x, 503, "out of memory");
	else
		api_resp_json(x, 200, out);
out_free:
	json_decref(g.edges);
	json_decref(g.peers);
	plan_free(plan);
out_release:
	desired_view_release(&v);
}
