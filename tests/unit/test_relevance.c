/* Unit tests of the relevance filter (mseg/daemon/relevance.h): random
 * worlds (tests/unit/rand_world.h: namespaces with labels, endpoints with
 * labels, addresses, some shared, and named ports, AllowLists and
 * NetworkPolicies with pod and namespace selectors in both directions;
 * the endpoints without a netns are pods of other nodes) and random pod
 * events on the pods of other nodes (labels, addresses, named ports,
 * created, deleted), between changes of everything else (policies,
 * namespace labels, namespaces declared or not, this node's endpoints;
 * this node's pods relabelled, which may make more policies programmable),
 * through the desired state as msegd has it (files and the cluster
 * source, one view). Whenever the filter says an event cannot change a
 * local table, the local_only plan of the programmable policies (what
 * the reconciler compiles) before and after it must be the same, byte for
 * byte. The filter is rebuilt only now and then, as msegd does after a
 * reconcile: the events it judged meanwhile accumulate.
 * RELEV_SEED=N runs other random worlds; RELEV_DEBUG=1 prints the world
 * of a failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/daemon/desired.h"
#include "mseg/daemon/relevance.h"
#include "plan_cmp.h"
#include "rand_world.h"
#include "t.h"

/* What the world holds besides rand_world's: which namespaces are
 * declared (an undeclared one has no labels but its name), and when each
 * endpoint was registered (of two with one address, the newer has it). */
struct rworld {
	struct world w;
	bool declared[N_NSS];
	uint64_t born[N_EPS];
	uint64_t clock;
};

/* One endpoint of the world as a REST body would give it. */
static void ep_text(const struct rworld *rw, int i, struct buf *b)
{
	const struct wep *e = &rw->w.eps[i];

	bput(b, "{id: ep%02d, name: ep%02d, namespace: ns%d,", i, i, e->ns);
	if (!e->peer)
		bput(b, " netns: /run/netns/t%02d,", i);
	bput(b, " labels: {app: %s", apps[e->app]);
	if (e->tier >= 0)
		bput(b, ", tier: t%d", e->tier);
	bput(b, "}, ips: [10.60.%d.%d", e->a4 / 8, 10 + e->a4 % 8);
	if (e->a6 >= 0)
		bput(b, ", \"fd60::%x\"", 0x100 + e->a6);
	bput(b, "]");
	if (e->http >= 0)
		bput(b, ", ports: [{name: http, port: %d}, {name: dns, port: 53, protocol: UDP}]",
		     8080 + e->http);
	bput(b, "}\n");
}

static struct mseg_endpoint *ep_make(const struct rworld *rw, int i)
{
	struct mseg_endpoint *ep = NULL;
	struct buf b = { 0 };
	struct mseg_err err;
	char id[16], msg[512];

	snprintf(id, sizeof(id), "ep%02d", i);
	ep_text(rw, i, &b);
	err_clear(&err);
	if (endpoint_parse_buffer(id, "event", b.p, b.len, &ep, &err) < 0) {
		printf("  %s\n%s", err_format(&err, msg, sizeof(msg)), b.p);
		fflush(stdout);
		abort();
	}
	free(b.p);
	ep->cluster_peer = rw->w.eps[i].peer;
	ep->registered_ns = rw->born[i];
	return ep;
}

/* The whole desired state of @rw: policies and this node's endpoints and
 * the namespaces as files, the other nodes' pods as the cluster source. */
static void desired_make(const struct rworld *rw, struct desired *ds)
{
	struct mseg_policy_set pols;
	struct mseg_inventory inv, kinv;
	struct buf pb = { 0 }, ib = { 0 };
	struct mseg_err err;
	char msg[600];

	desired_init(ds);
	policy_set_init(&pols);
	inventory_init(&inv);
	inventory_init(&kinv);
	bput(&pb, "%s", "");
	world_policies(&rw->w, &pb);
	bput(&ib, "namespaces:%s\n", rw->declared[0] || rw->declared[1] || rw->declared[2] ?
	     "" : " []");
	for (int i = 0; i < N_NSS; i++)
		if (rw->declared[i])
			bput(&ib, "  - {name: ns%d, labels: {team: t%d}}\n", i, rw->w.team[i]);
	bput(&ib, "endpoints:\n");
	for (int i = 0; i < N_EPS; i++) {
		if (!rw->w.eps[i].present)
			continue;
		if (rw->w.eps[i].peer) {
			if (inventory_put(&kinv, ep_make(rw, i)) < 0)
				abort();
			continue;
		}
		bput(&ib, "  - ");
		ep_text(rw, i, &ib);
	}
	err_clear(&err);
	if (policy_parse_buffer(&pols, "policies", pb.p, pb.len, &err) < 0 ||
	    inventory_parse_buffer(&inv, "inventory", ib.p, ib.len, &err) < 0) {
		printf("  %s\n%s--\n%s", err_format(&err, msg, sizeof(msg)), pb.p, ib.p);
		fflush(stdout);
		abort();
	}
	free(pb.p);
	free(ib.p);
	desired_files_replace(ds, &pols, &inv);
	for (size_t i = 0; i < ds->inv[DESIRED_FILE].n; i++) {
		struct mseg_endpoint *ep = ds->inv[DESIRED_FILE].eps[i];

		ep->registered_ns = rw->born[atoi(ep->id + 2)];
	}
	desired_kube_replace(ds, &pols, &kinv);
	policy_set_release(&pols);
	inventory_release(&inv);
	inventory_release(&kinv);
}

/* The plan the reconciler would program, and the view it comes from. */
struct local_plan {
	struct desired_view v;
	struct mseg_policy **prog;
	size_t n_prog;
	struct mseg_plan *plan;
};

static void local_plan(const struct desired *ds, struct local_plan *lp)
{
	const struct compile_opts opts = { .default_mode = MSEG_MODE_ENFORCE, .local_only = true };

	if (desired_view_build(ds, NULL, &lp->v) < 0 ||
	    desired_view_programmable(&lp->v, &lp->prog, &lp->n_prog) < 0 ||
	    compile_plan((const struct mseg_policy *const *)lp->prog, lp->n_prog,
			 (const struct mseg_endpoint *const *)lp->v.inv.eps, lp->v.inv.n, &opts,
			 &lp->plan) < 0)
		abort();
}

static void local_plan_release(struct local_plan *lp)
{
	plan_free(lp->plan);
	free(lp->prog);
	desired_view_release(&lp->v);
}

/* One random event of a pod of another node; what it was. */
static const char *pod_event(struct rworld *rw, int i)
{
	struct wep *e = &rw->w.eps[i];

	switch (rnd(7)) {
	case 0:
		e->app = (int)rnd(4);
		return "app label";
	case 1:
		e->tier = (int)rnd(3) - 1;
		return "tier label";
	case 2:
		/* often one another endpoint has */
		e->a4 = rnd(2) ? (int)rnd(N_EPS) : (int)rnd(2 * N_EPS);
		return "IPv4 address";
	case 3:
		e->a6 = rnd(3) ? (int)rnd(2 * N_EPS) : -1;
		return "IPv6 address";
	case 4:
		e->http = (int)rnd(3) - 1;
		return "named port";
	default:
		e->present = !e->present;
		if (e->present)
			rw->born[i] = ++rw->clock;   /* a new pod */
		return e->present ? "created" : "deleted";
	}
}

/* Anything else: the filter is invalid until rebuilt. */
static const char *other_change(struct rworld *rw)
{
	switch (rnd(4)) {
	case 0:
		rw->declared[rnd(N_NSS)] ^= 1;
		return "namespace declared or not";
	default: {
		const char *what = world_change(&rw->w);

		for (int i = 0; i < N_EPS; i++)
			if (rw->w.eps[i].present && !rw->born[i])
				rw->born[i] = ++rw->clock;
		return what;
	}
	}
}

static void rworld_init(struct rworld *rw)
{
	memset(rw, 0, sizeof(*rw));
	world_init(&rw->w);
	/* more pods of other nodes than rand_world makes: the case at hand */
	for (int i = 0; i < N_EPS; i++) {
		rw->w.eps[i].peer = rnd(3) != 0;
		rw->born[i] = ++rw->clock;
	}
	for (int i = 0; i < N_NSS; i++)
		rw->declared[i] = rnd(5) != 0;
	/* every policy present more often than not */
	for (int i = 0; i < N_POLS; i++)
		if (rw->w.pol[i] < 0 && rnd(2))
			rw->w.pol[i] = (int)rnd(4);
}

static void test_random_events(void)
{
	size_t n_events = 0, n_none = 0, n_checked = 0, n_rebuilds = 0;
	bool failed = false;

	t_begin();
	rng_state = getenv("RELEV_SEED") ? strtoull(getenv("RELEV_SEED"), NULL, 0) :
		    0x5eed2011ull;
	for (int world_no = 0; world_no < 60 && !failed; world_no++) {
		struct relevance *rl = relevance_new();
		struct rworld rw;
		struct desired ds;

		rworld_init(&rw);
		desired_make(&rw, &ds);
		for (int step = 0; step < 150 && !failed; step++) {
			struct local_plan before, after;
			struct mseg_endpoint *old, *now;
			char id[16], key[32], why[256];
			bool matters;
			const char *what;
			int i;

			if (!relevance_valid(rl) || rnd(6) == 0) {
				/* a reconcile: the filter from its view */
				local_plan(&ds, &before);
				T_CHECK(relevance_rebuild(rl, &ds, &before.v, before.prog,
							  before.n_prog) == 0, "rebuild");
				local_plan_release(&before);
				n_rebuilds++;
			}
			if (rnd(10) == 0) {
				/* everything else: the desired state anew (its
				 * pods too, not told one by one) */
				other_change(&rw);
				desired_release(&ds);
				desired_make(&rw, &ds);
				relevance_forget(rl);
				continue;
			}
			if (rnd(8) == 0) {
				/* a pod of this node relabelled: relevant, and
				 * the policies of its namespace may now be
				 * programmable (no rebuild: the next events are
				 * judged with that) */
				do
					i = (int)rnd(N_EPS);
				while (rw.w.eps[i].peer);
				snprintf(id, sizeof(id), "ep%02d", i);
				snprintf(key, sizeof(key), "ns%d/ep%02d", rw.w.eps[i].ns, i);
				old = inventory_find(&ds.inv[DESIRED_FILE], id);
				T_CHECK(relevance_pod_before(rl, &ds, key, old, true), "local");
				rw.w.eps[i].app = (int)rnd(4);
				rw.w.eps[i].tier = (int)rnd(3) - 1;
				now = NULL;
				if (rw.w.eps[i].present) {
					now = ep_make(&rw, i);
					if (inventory_put(&ds.inv[DESIRED_FILE], now) < 0)
						abort();
				}
				T_CHECK(relevance_pod_after(rl, &ds, key, now, true), "local");
				continue;
			}
			do
				i = (int)rnd(N_EPS);
			while (!rw.w.eps[i].peer);
			snprintf(id, sizeof(id), "ep%02d", i);
			snprintf(key, sizeof(key), "ns%d/ep%02d", rw.w.eps[i].ns, i);
			local_plan(&ds, &before);
			old = inventory_find(&ds.inv[DESIRED_KUBE], id);
			matters = relevance_pod_before(rl, &ds, key, old, false);
			what = pod_event(&rw, i);
			if (rw.w.eps[i].present) {
				now = ep_make(&rw, i);
				if (inventory_put(&ds.inv[DESIRED_KUBE], now) < 0)
					abort();
			} else {
				now = NULL;
				if (old)
					inventory_remove(&ds.inv[DESIRED_KUBE], id);
			}
			matters = relevance_pod_after(rl, &ds, key, now, false) || matters;
			n_events++;
			local_plan(&ds, &after);
			if (!matters) {
				n_none++;
				n_checked++;
				if (!plans_equal(before.plan, "before", after.plan, "after", why, sizeof(why))) {
					T_CHECK(false, "world %d step %d: pod %s (%s): judged to change "
						"no local table, yet %s", world_no, step, key, what, why);
					failed = true;
					if (getenv("RELEV_DEBUG")) {
						struct buf pb = { 0 };

						bput(&pb, "%s", "");
						world_policies(&rw.w, &pb);
						printf("%s", pb.p);
						free(pb.p);
						for (int k = 0; k < N_EPS; k++) {
							struct buf eb = { 0 };

							if (!rw.w.eps[k].present)
								continue;
							ep_text(&rw, k, &eb);
							printf("%s born %llu: %s", rw.w.eps[k].peer ?
							       "peer" : "local",
							       (unsigned long long)rw.born[k], eb.p);
							free(eb.p);
						}
					}
				}
			}
			local_plan_release(&before);
			local_plan_release(&after);
		}
		desired_release(&ds);
		relevance_free(rl);
	}
	printf("  %zu pod events, %zu judged to change no local table (plans compared), "
	       "%zu rebuilds\n", n_events, n_none, n_rebuilds);
	/* a filter that says "relevant" to everything passes the above: it
	 * must also let a fair share of these events go */
	T_CHECK(n_none * 10 >= n_events, "only %zu of %zu events judged irrelevant", n_none,
		n_events);
	t_end("relevance: an event judged irrelevant leaves every local plan as it was");
}

/* The rules of relevance one by one, on a small fixed state: the pods of
 * other nodes come and go (after: created, before: deleted). */
static void test_rules(void)
{
	static const char pols_text[] =
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		"metadata: {name: db, namespace: shop}\n"
		"spec:\n  podSelector: {matchLabels: {app: db}}\n"
		"  ingress:\n    - from: [{podSelector: {matchLabels: {app: api}}}]\n"
		"  egress:\n    - to: [{namespaceSelector: {matchLabels: {team: ops}}, "
		"podSelector: {matchLabels: {app: log}}}]\n---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
		"metadata: {name: far, namespace: other}\n"
		"spec:\n  podSelector: {}\n"
		"  ingress:\n    - from: [{podSelector: {matchLabels: {app: x}}}]\n";
	static const char inv_text[] =
		"namespaces:\n  - {name: shop}\n  - {name: ops, labels: {team: ops}}\n"
		"  - {name: other}\n"
		"endpoints:\n  - {id: db-1, name: db-1, namespace: shop, netns: /run/netns/db1, "
		"labels: {app: db}, ips: [10.1.0.1]}\n";
	static const char web_text[] = "{name: web, namespace: shop, labels: {app: web}, "
				       "ips: [10.2.0.9]}";
	struct mseg_policy_set pols;
	struct mseg_inventory inv, kinv;
	struct mseg_endpoint *ep;
	struct local_plan lp;
	struct relevance *rl = relevance_new();
	struct mseg_err err;
	struct desired ds;
	struct mseg_endpoint *api, *web, *log_ops, *log_shop, *stray, *shared, *x, *reuse;

	t_begin();
	desired_init(&ds);
	policy_set_init(&pols);
	inventory_init(&inv);
	inventory_init(&kinv);
	err_clear(&err);
	T_CHECK(policy_parse_buffer(&pols, "p", pols_text, strlen(pols_text), &err) == 0, "pols");
	T_CHECK(inventory_parse_buffer(&inv, "i", inv_text, strlen(inv_text), &err) == 0, "inv");
	T_CHECK(endpoint_parse_buffer("k8s.shop.web", "w", web_text, strlen(web_text), &ep,
				      &err) == 0, "peer");
	ep->cluster_peer = true;
	inventory_put(&kinv, ep);
	desired_files_replace(&ds, &pols, &inv);
	desired_kube_replace(&ds, &pols, &kinv);
	local_plan(&ds, &lp);

#define PEER(json, ret)                                                                    \
	do {                                                                               \
		T_CHECK(endpoint_parse_buffer(NULL, "e", json, strlen(json), &(ret), &err) == 0, \
			"%s", json);                                                       \
		(ret)->cluster_peer = true;                                                \
	} while (0)

	PEER("{id: k8s.shop.api, name: api, namespace: shop, labels: {app: api}, "
	     "ips: [10.2.0.1]}", api);
	PEER("{id: k8s.shop.web2, name: web2, namespace: shop, labels: {app: web}, "
	     "ips: [10.2.0.2]}", web);
	PEER("{id: k8s.ops.log, name: log, namespace: ops, labels: {app: log}, "
	     "ips: [10.2.0.3]}", log_ops);
	PEER("{id: k8s.shop.log, name: log, namespace: shop, labels: {app: log}, "
	     "ips: [10.2.0.4]}", log_shop);
	PEER("{id: k8s.nowhere.a, name: a, namespace: nowhere, labels: {app: zz}, "
	     "ips: [10.2.0.5]}", stray);
	PEER("{id: k8s.shop.twin, name: twin, namespace: shop, labels: {app: web}, "
	     "ips: [10.2.0.9]}", shared);
	PEER("{id: k8s.other.x, name: x, namespace: other, labels: {app: x}, "
	     "ips: [10.2.0.6]}", x);
	PEER("{id: k8s.shop.reuse, name: reuse, namespace: shop, labels: {app: web}, "
	     "ips: [10.2.0.2]}", reuse);

	T_CHECK(relevance_pod_after(rl, &ds, "shop/web2", web, false),
		"not valid before a rebuild: everything is relevant");
	relevance_pod_before(rl, &ds, "shop/web2", web, false);
	T_CHECK(relevance_rebuild(rl, &ds, &lp.v, lp.prog, lp.n_prog) == 0, "rebuild");
	T_CHECK(lp.n_prog == 1, "one programmable policy, got %zu", lp.n_prog);
	T_CHECK(!relevance_pod_after(rl, &ds, "shop/web2", web, false), "a pod no peer selects");
	T_CHECK(!relevance_pod_after(rl, &ds, "shop/none", NULL, false), "no endpoint");
	T_CHECK(relevance_pod_after(rl, &ds, "shop/api", api, false), "ingress peer");
	T_CHECK(relevance_pod_after(rl, &ds, "ops/log", log_ops, false),
		"egress peer, namespace selector");
	T_CHECK(!relevance_pod_after(rl, &ds, "shop/log", log_shop, false),
		"egress peer's namespace selector does not select shop");
	T_CHECK(relevance_pod_after(rl, &ds, "nowhere/a", stray, false), "namespace not known");
	T_CHECK(relevance_pod_after(rl, &ds, "shop/twin", shared, false),
		"its address is claimed by another pod (of the cluster source)");
	T_CHECK(!relevance_pod_after(rl, &ds, "other/x", x, false),
		"selected only by a policy that selects no local endpoint");
	T_CHECK(relevance_pod_after(rl, &ds, "shop/db-1", NULL, false),
		"a registered pod's namespace/name");
	T_CHECK(relevance_valid(rl), "still valid");
	/* a pod of this node in namespace other: the policy there may now
	 * select it, its peers count */
	T_CHECK(relevance_pod_after(rl, &ds, "other/mine", NULL, true), "a pod of this node");
	T_CHECK(relevance_valid(rl), "... which does not invalidate");
	T_CHECK(relevance_pod_before(rl, &ds, "other/x", x, false),
		"x: selected by a policy a pod of this node may make programmable");
	T_CHECK(relevance_pod_after(rl, &ds, "other/x", x, false), "... after too");
	/* the claims follow the events: web2 deleted, its address is free */
	T_CHECK(relevance_pod_after(rl, &ds, "shop/reuse", reuse, false),
		"web2's address, while web2 has it");
	relevance_pod_before(rl, &ds, "shop/reuse", reuse, false);
	T_CHECK(!relevance_pod_before(rl, &ds, "shop/web2", web, false), "web2 deleted");
	T_CHECK(!relevance_pod_after(rl, &ds, "shop/web2", NULL, false), "... gone");
	T_CHECK(!relevance_pod_after(rl, &ds, "shop/reuse", reuse, false),
		"web2's address once web2 is gone");
	relevance_invalidate(rl);
	T_CHECK(relevance_pod_after(rl, &ds, "shop/web2", web, false), "invalidated");

	endpoint_free(api);
	endpoint_free(web);
	endpoint_free(log_ops);
	endpoint_free(log_shop);
	endpoint_free(stray);
	endpoint_free(shared);
	endpoint_free(x);
	endpoint_free(reuse);
	local_plan_release(&lp);
	desired_release(&ds);
	relevance_free(rl);
	policy_set_release(&pols);
	inventory_release(&inv);
	inventory_release(&kinv);
	t_end("relevance: local, registered, peers of both directions, namespaces, addresses");
}

int main(void)
{
	test_rules();
	test_random_events();
	return t_any_failed;
}
