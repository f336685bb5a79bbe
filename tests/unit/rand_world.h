/* A random world for the compiler's tests (test_ep_diff, test_compile_cache):
 * a few dozen endpoints in three namespaces and six AllowLists and
 * NetworkPolicies, each absent or in one of four variants, and random
 * changes to it (labels, addresses, named ports, namespace labels,
 * policies added, changed and removed, endpoints added and removed). */
#ifndef MSEG_TEST_RAND_WORLD_H
#define MSEG_TEST_RAND_WORLD_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/compile/cache.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "tbuf.h"
#include "trand.h"

/* ---- a random world ---- */

#define N_EPS 36
#define N_NSS 3
#define N_POLS 6

struct wep {
	bool present;
	int ns, app, tier;       /* tier -1: no tier label */
	int a4, a6;              /* 10.60.a4/… ; a6 -1: no IPv6 address */
	int http;                /* named port http: -1 none, else 8080 + http */
	bool peer;               /* no netns: a pod of another node */
};

struct world {
	struct wep eps[N_EPS];
	int team[N_NSS];         /* namespace label team=t<team> */
	int pol[N_POLS];         /* -1 absent, else the variant */
};

static const char *const apps[] = { "a", "b", "c", "d" };

static inline void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	for (int i = 0; i < N_EPS; i++) {
		struct wep *e = &w->eps[i];

		e->present = rnd(5) != 0;
		e->ns = (int)rnd(N_NSS);
		e->app = (int)rnd(4);
		e->tier = (int)rnd(3) - 1;
		e->a4 = i;
		e->a6 = rnd(2) ? i : -1;
		e->http = (int)rnd(3) - 1;
		e->peer = rnd(4) == 0;
	}
	for (int i = 0; i < N_NSS; i++)
		w->team[i] = (int)rnd(2);
	for (int i = 0; i < N_POLS; i++)
		w->pol[i] = (int)rnd(4) - 1;
}

/* One random change; returns what it was, for failure messages. */
static inline const char *world_change(struct world *w)
{
	struct wep *e = &w->eps[rnd(N_EPS)];

	switch (rnd(9)) {
	case 0:
		e->app = (int)rnd(4);
		return "endpoint app label";
	case 1:
		e->tier = (int)rnd(3) - 1;
		return "endpoint tier label";
	case 2:
		/* an address of an endpoint that is gone, or a fresh one */
		e->a4 = rnd(2) ? (int)rnd(N_EPS) + N_EPS : (int)rnd(2 * N_EPS);
		return "endpoint IPv4 address";
	case 3:
		e->a6 = rnd(3) ? (int)rnd(2 * N_EPS) : -1;
		return "endpoint IPv6 address";
	case 4:
		e->present = !e->present;
		return "endpoint added or removed";
	case 5:
		e->http = (int)rnd(3) - 1;
		return "endpoint named port";
	case 6:
		w->team[rnd(N_NSS)] ^= 1;
		return "namespace label";
	case 7:
		e->ns = (int)rnd(N_NSS);
		return "endpoint namespace";
	default:
		w->pol[rnd(N_POLS)] = (int)rnd(4) - 1;
		return "policy added, changed or removed";
	}
}

static inline void world_inventory(const struct world *w, struct buf *b)
{
	bput(b, "namespaces:\n");
	for (int i = 0; i < N_NSS; i++)
		bput(b, "  - {name: ns%d, labels: {team: t%d}}\n", i, w->team[i]);
	bput(b, "endpoints:\n");
	for (int i = 0; i < N_EPS; i++) {
		const struct wep *e = &w->eps[i];

		if (!e->present)
			continue;
		if (e->peer)
			bput(b, "  - {id: ep%02d, name: ep%02d, namespace: ns%d,\n", i, i, e->ns);
		else
			bput(b, "  - {id: ep%02d, name: ep%02d, namespace: ns%d, netns: /run/netns/t%02d,\n",
			     i, i, e->ns, i);
		bput(b, "     labels: {app: %s", apps[e->app]);
		if (e->tier >= 0)
			bput(b, ", tier: t%d", e->tier);
		bput(b, "},\n     ips: [10.60.%d.%d", e->a4 / 8, 10 + e->a4 % 8);
		if (e->a6 >= 0)
			bput(b, ", \"fd60::%x\"", 0x100 + e->a6);
		bput(b, "]");
		if (e->http >= 0)
			bput(b, ",\n     ports: [{name: http, port: %d}, {name: dns, port: 53, protocol: UDP}]",
			     8080 + e->http);
		bput(b, "}\n");
	}
}

/* Six policies, each absent or in one of four variants. */
static inline void world_policies(const struct world *w, struct buf *b)
{
	static const char *const ports[] = { "tcp/80", "tcp/80-90", "udp/53", "tcp" };
	int v;

	if ((v = w->pol[0]) >= 0)
		bput(b, "apiVersion: mseg.io/v1\nkind: AllowList\n"
			"metadata: {name: p0, namespace: ns0}\n"
			"spec:\n  groups:\n    a: {selector: {app: a}}\n    b: {selector: {app: %s}}\n"
			"    office: {cidrs: [10.60.0.0/22], except: [10.60.1.%d/30]}\n"
			"  allow:\n    - {from: b, to: a, ports: [%s]}\n"
			"    - {from: office, to: a, ports: [tcp/443-450]}\n"
			"    - {from: a, to: world, ports: [udp/53]}\n---\n",
			v % 2 ? "b" : "c", 8 + 4 * v, ports[v]);
	if ((v = w->pol[1]) >= 0)
		bput(b, "apiVersion: mseg.io/v1\nkind: AllowList\n"
			"metadata: {name: p1, namespace: ns1}\n"
			"spec:\n  mode: %s\n  isolation: %s\n  groups:\n"
			"    c: {selector: {app: c}}\n    d: {selector: {app: d%s}}\n"
			"  allow:\n    - {from: c, to: d, ports: [%s, icmp]}\n"
			"    - {from: world, to: c, ports: [icmp]}\n---\n",
			v == 3 ? "audit" : "enforce", v == 2 ? "ingress" : "both",
			v == 1 ? ", tier: t0" : "", ports[(v + 1) % 4]);
	if ((v = w->pol[2]) >= 0)
		bput(b, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			"metadata: {name: p2, namespace: ns%d}\n"
			"spec:\n  podSelector: {matchLabels: {app: a}}\n"
			"  ingress:\n    - from: [{podSelector: {matchLabels: {app: b}}, "
			"namespaceSelector: {}}]\n      ports: [{port: http}%s]\n"
			"  egress:\n    - to: [{ipBlock: {cidr: 10.60.0.0/16}}]\n"
			"      ports: [{port: http}, {port: dns, protocol: UDP}]\n---\n",
			v % N_NSS, v == 1 ? ", {port: 9000, endPort: 9010}" : "");
	if ((v = w->pol[3]) >= 0)
		bput(b, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			"metadata: {name: p3, namespace: ns%d}\n"
			"spec:\n  podSelector: {matchExpressions: [{key: tier, operator: %s}]}\n"
			"  policyTypes: [Ingress]\n"
			"  ingress:\n    - from: [{namespaceSelector: {matchLabels: {team: t%d}}}]\n"
			"      ports: [{port: 5432}]\n---\n",
			v % 2, v < 2 ? "Exists" : "DoesNotExist", v % 2);
	if ((v = w->pol[4]) >= 0)
		bput(b, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			"metadata: {name: p4, namespace: ns2}\n"
			"spec:\n  podSelector: {}\n  policyTypes: [Egress]\n"
			"  egress:\n    - to: [{podSelector: {matchLabels: {app: %s}}}]\n"
			"      ports: [{port: http}]\n"
			"    - to: [{ipBlock: {cidr: \"fd60::/112\", except: [\"fd60::100/%d\"]}}]\n---\n",
			apps[v], 120 + v);
	if ((v = w->pol[5]) >= 0)
		bput(b, "apiVersion: mseg.io/v1\nkind: AllowList\n"
			"metadata: {name: p5, namespace: ns%d}\n"
			"spec:\n  groups:\n    all: {selector: {}}\n    t: {selector: {tier: t%d}}\n"
			"  allow:\n    - {from: t, to: all, ports: [%s]}\n---\n",
			v % N_NSS, v % 2, ports[v]);
}

struct compiled {
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_plan *plan;
};

/* Parse @w into @c and compile it with @opts (NULL: defaults) and @cc
 * (NULL: no compile cache). */
static inline int world_compile_with(const struct world *w, struct compiled *c,
			      const struct compile_opts *opts, struct compile_cache *cc)
{
	static const struct compile_opts defaults = { .default_mode = MSEG_MODE_ENFORCE };
	struct buf pb = { 0 }, ib = { 0 };
	struct mseg_err err;
	char msg[600];
	int r;

	memset(c, 0, sizeof(*c));
	policy_set_init(&c->pols);
	inventory_init(&c->inv);
	bput(&pb, "%s", "");
	bput(&ib, "%s", "");
	world_policies(w, &pb);
	world_inventory(w, &ib);
	err_clear(&err);
	r = policy_parse_buffer(&c->pols, "policies", pb.p, pb.len, &err);
	if (r == 0)
		r = inventory_parse_buffer(&c->inv, "inventory", ib.p, ib.len, &err);
	if (r < 0)
		printf("  %s\n--\n%s--\n%s", err_format(&err, msg, sizeof(msg)), pb.p, ib.p);
	else
		r = compile_plan_cached((const struct mseg_policy *const *)c->pols.items,
					c->pols.n,
					(const struct mseg_endpoint *const *)c->inv.eps, c->inv.n,
					opts ? opts : &defaults, cc, &c->plan);
	free(pb.p);
	free(ib.p);
	return r;
}

static inline int world_compile(const struct world *w, struct compiled *c)
{
	return world_compile_with(w, c, NULL, NULL);
}

static inline void compiled_release(struct compiled *c)
{
	plan_free(c->plan);
	policy_set_release(&c->pols);
	inventory_release(&c->inv);
	memset(c, 0, sizeof(*c));
}

static inline const struct mseg_ep_plan *plan_find(const struct mseg_plan *p, const char *id)
{
	for (size_t i = 0; p && i < p->n_eps; i++)
		if (strcmp(p->eps[i].ep->id, id) == 0)
			return &p->eps[i];
	return NULL;
}

#endif
