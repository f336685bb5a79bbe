/* bench_view: the desired view at cluster scale, the part of each msegd
 * reconcile outside reconciler_apply() that grows with the cluster, and
 * one watch event's change to the cluster's endpoints.
 *
 * The state is kube_scale's: 150,000 pods in 5,000 namespaces (ids
 * k8s.NS.NAME, one address each, a few addresses claimed twice), the
 * 5,000 namespaces in the cluster source, 110 registered endpoints (API)
 * each with the cluster endpoint that stands for it.
 *
 *  1. view: desired_view_build() + desired_view_programmable(), against
 *     the baseline, the same work done the way it was before (kept here):
 *     a three-way strcmp merge of every endpoint, every endpoint's
 *     namespace searched in the three sources, every address claim sorted
 *     with the same order to find the shared ones, every endpoint walked
 *     again for the local ones. The two alternate run by run. Both fill
 *     the labels with today's endpoint_ns_labels_fill(), which no longer
 *     compares them when filled again from the same namespace object: the
 *     baseline is faster than the code it stands for, and the ratio
 *     understates the change (bench/kube_scale.sh with MSEGD_BASELINE
 *     compares whole builds).
 *  2. event: one peer added and one removed (a watch event each) with
 *     inventory_stage_put()/inventory_stage_remove() (the watcher), against
 *     inventory_put()/inventory_remove() (the baseline: the sorted array
 *     moved for each), alternating.
 *  3. reconcile: what a reconcile's view costs after a small change (a
 *     peer's address changed, one added, one removed: staged,
 *     then flushed as kube_source_sync() does): desired_view_update() (the
 *     view kept, the journal's ids applied) + desired_view_programmable(),
 *     against desired_view_build() + desired_view_programmable() (the view
 *     merged again, as each reconcile did before), alternating on the
 *     same changes; and how many updates had to merge everything.
 *
 *   bench_view [--pods N] [--namespaces N] [--runs N] [--events N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "mseg/daemon/desired.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/selector.h"
#include "mseg/util/memtune.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct mseg_endpoint *ep_new(const char *id, const char *ns, const char *ip,
				    const char *netns, uint64_t reg)
{
	struct endpoint_field_label l = { "app", { EPV_STRING, "web" } };
	struct endpoint_fields f = { .id = id, .ns = ns, .netns = netns, .labels = &l,
				     .n_labels = 1, .ips = &ip, .n_ips = 1 };
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;

	err_clear(&err);
	if (endpoint_build("bench", &f, &ep, &err) < 0) {
		fprintf(stderr, "bench_view: %s: %s\n", id, err.msg);
		exit(1);
	}
	ep->registered_ns = reg;
	ep->cluster_peer = !netns;
	return ep;
}

static void pod_addr(size_t i, char *buf, size_t size)
{
	snprintf(buf, size, "10.%zu.%zu.%zu", 64 + i / 65536, (i / 256) % 256, i % 256);
}

static void world(struct desired *ds, size_t pods, size_t nss)
{
	char id[64], ns[32], ip[32], netns[64];

	for (size_t n = 0; n < nss; n++) {
		struct mseg_label l = { "team", "t" };
		struct mseg_namespace *o;

		snprintf(ns, sizeof(ns), "ns%zu", n);
		if (namespace_new(ns, &l, 1, &o) < 0 || inventory_ns_put(&ds->inv[DESIRED_KUBE], o) < 0)
			exit(1);
	}
	for (size_t i = 0; i < pods; i++) {
		size_t n = i % nss;
		bool local = i % (pods / 110 ? pods / 110 : 1) == 0;

		snprintf(ns, sizeof(ns), "ns%zu", n);
		snprintf(id, sizeof(id), "k8s.ns%zu.p%zu", n, i);
		/* one pod in 2,000 has the address of the pod before it */
		pod_addr(i % 2000 == 1 ? i - 1 : i, ip, sizeof(ip));
		snprintf(netns, sizeof(netns), "/run/netns/b%zu", i);
		if (inventory_stage_put(&ds->inv[DESIRED_KUBE],
					ep_new(id, ns, ip, local ? netns : NULL, i)) < 0)
			exit(1);
		if (local && inventory_put(&ds->inv[DESIRED_API], ep_new(id, ns, ip, netns, i)) < 0)
			exit(1);
	}
	if (inventory_flush(&ds->inv[DESIRED_KUBE]) < 0)
		exit(1);
	ds->kube_pods = true;
}

/* ---- the baseline: the view's endpoint work done as before ---- */

struct claim {
	struct mseg_addr addr;
	size_t ep;
	uint64_t reg;
};

static int claim_cmp(const void *pa, const void *pb, void *data)
{
	const struct claim *a = pa, *b = pb;
	struct mseg_endpoint **eps = data;
	unsigned __int128 x = addr_u128(&a->addr), y = addr_u128(&b->addr);

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	if (x != y)
		return x < y ? -1 : 1;
	if (a->reg != b->reg)
		return a->reg > b->reg ? -1 : 1;
	return -strcmp(eps[a->ep]->id, eps[b->ep]->id);
}

/* The number of endpoints and of shared-address claims it found. */
static size_t baseline_view(const struct desired *ds, size_t *ret_shared, size_t *ret_local)
{
	const struct mseg_inventory *fi = &ds->inv[DESIRED_FILE], *ai = &ds->inv[DESIRED_API];
	const struct mseg_inventory *ki = &ds->inv[DESIRED_KUBE];
	size_t ne = fi->n + ai->n + ki->n + 1, n = 0, a = 0, b = 0, k = 0, nc = 0, c = 0;
	struct mseg_endpoint **eps = calloc(ne, sizeof(*eps)), **api = calloc(ne, sizeof(*api));
	struct mseg_endpoint **local;
	struct claim *cl;

	if (!eps || !api)
		exit(1);
	memcpy(api, ai->eps, ai->n * sizeof(*api));
	while (a < fi->n || b < ai->n || k < ki->n) {
		struct mseg_endpoint *fa = a < fi->n ? fi->eps[a] : NULL;
		struct mseg_endpoint *fb = b < ai->n ? api[b] : NULL;
		struct mseg_endpoint *fk = k < ki->n ? ki->eps[k] : NULL;
		const char *min = NULL;

		if (fa)
			min = fa->id;
		if (fb && (!min || strcmp(fb->id, min) < 0))
			min = fb->id;
		if (fk && (!min || strcmp(fk->id, min) < 0))
			min = fk->id;
		fa = fa && strcmp(fa->id, min) == 0 ? fa : NULL;
		fb = fb && strcmp(fb->id, min) == 0 ? fb : NULL;
		fk = fk && strcmp(fk->id, min) == 0 ? fk : NULL;
		a += fa != NULL;
		b += fb != NULL;
		k += fk != NULL;
		if (fk && fk->netns && !fb)
			fk = NULL;
		if (fb && !fk && fb->pod_uid && ds->kube_pods && !fa)
			continue;
		if (fa || fk || fb)
			eps[n++] = fa ? fa : fk ? fk : fb;
	}
	free(api);
	for (size_t i = 0; i < n; i++) {
		if (endpoint_ns_labels_fill(eps[i], desired_namespace_find(ds,
						selector_ns_name(eps[i]->ns), NULL)) < 0)
			exit(1);
		nc += eps[i]->n_ips;
	}
	cl = calloc(nc ? nc : 1, sizeof(*cl));
	if (!cl)
		exit(1);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < eps[i]->n_ips; j++)
			cl[c++] = (struct claim){ eps[i]->ips[j], i, eps[i]->registered_ns };
	qsort_r(cl, nc, sizeof(*cl), claim_cmp, eps);
	*ret_shared = 0;
	for (size_t i = 1; i < nc; i++)
		*ret_shared += addr_eq(&cl[i].addr, &cl[i - 1].addr);
	free(cl);
	local = malloc(n * sizeof(*local));
	*ret_local = 0;
	for (size_t i = 0; local && i < n; i++)
		if (!eps[i]->cluster_peer)
			local[(*ret_local)++] = eps[i];
	free(local);
	free(eps);
	return n;
}

static double median(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[n / 2] / 1e6;
}

int main(int argc, char **argv)
{
	size_t pods = 150000, nss = 5000, runs = 15, events = 2000;
	uint64_t *t_new, *t_old, *e_new, *e_old;
	struct desired ds;

	for (int i = 1; i + 1 < argc; i += 2) {
		size_t v = strtoul(argv[i + 1], NULL, 10);

		if (!strcmp(argv[i], "--pods"))
			pods = v;
		else if (!strcmp(argv[i], "--namespaces"))
			nss = v;
		else if (!strcmp(argv[i], "--runs"))
			runs = v;
		else if (!strcmp(argv[i], "--events"))
			events = v;
		else {
			fprintf(stderr, "bench_view: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (argc % 2 == 0 || !pods || !nss || !runs || !events) {
		fprintf(stderr, "usage: bench_view [--pods N] [--namespaces N] [--runs N] "
			"[--events N]\n");
		return 2;
	}
	memtune_apply();   /* malloc as in msegd */
	desired_init(&ds);
	world(&ds, pods, nss);
	t_new = calloc(runs, sizeof(*t_new));
	t_old = calloc(runs, sizeof(*t_old));
	e_new = calloc(events, sizeof(*e_new));
	e_old = calloc(events, sizeof(*e_old));
	if (!t_new || !t_old || !e_new || !e_old)
		return 1;
	printf("bench_view: %zu pods in %zu namespaces, %zu registered; load %s", pods, nss,
	       ds.inv[DESIRED_API].n, "");
	{
		FILE *f = fopen("/proc/loadavg", "r");
		char l[64] = "?";

		if (f && fgets(l, sizeof(l), f))
			l[strcspn(l, " ")] = '\0';
		if (f)
			fclose(f);
		printf("%s\n", l);
	}
	for (size_t r = 0; r < runs; r++) {
		struct desired_view v;
		struct mseg_policy **prog;
		size_t n_prog, shared, local, n_old;
		uint64_t t0 = now_ns();

		if (desired_view_build(&ds, NULL, &v) < 0 ||
		    desired_view_programmable(&v, &prog, &n_prog) < 0)
			return 1;
		t_new[r] = now_ns() - t0;
		t0 = now_ns();
		n_old = baseline_view(&ds, &shared, &local);
		t_old[r] = now_ns() - t0;
		if (r == 0)
			printf("bench_view: view: %zu endpoints (baseline %zu), %zu local (baseline %zu), "
			       "%zu conflicts (baseline: %zu shared claims)\n", v.inv.n, n_old,
			       v.n_local, local, v.n_conflicts, shared);
		free(prog);
		desired_view_release(&v);
	}
	{
		double a = median(t_new, runs), b = median(t_old, runs);

		printf("bench_view: view build + programmable, median of %zu: %.2f ms; baseline "
		       "%.2f ms; ratio %.2f\n", runs, a, b, a / b);
	}
	for (size_t e = 0; e < events; e++) {
		struct mseg_inventory *ki = &ds.inv[DESIRED_KUBE];
		char id[64], ip[32], ns[32];
		size_t i = pods + e, n = (e * 7919) % nss;
		struct mseg_endpoint *x, *y;
		uint64_t t0;

		snprintf(id, sizeof(id), "k8s.ns%zu.q%zu", n, i);
		snprintf(ns, sizeof(ns), "ns%zu", n);
		pod_addr(i, ip, sizeof(ip));
		x = ep_new(id, ns, ip, NULL, i);
		y = ep_new(id, ns, ip, NULL, i);
		/* an add and a remove, staged (what a reconcile flushes) ... */
		t0 = now_ns();
		inventory_stage_put(ki, x);
		inventory_stage_remove(ki, id);
		e_new[e] = now_ns() - t0;
		/* ... and moved in the array */
		t0 = now_ns();
		inventory_put(ki, y);
		inventory_remove(ki, id);
		e_old[e] = now_ns() - t0;
	}
	{
		double a = median(e_new, events) * 1e3, b = median(e_old, events) * 1e3;

		printf("bench_view: event (add + remove of a peer), median of %zu: %.2f us staged; "
		       "baseline %.2f us moved in the array; ratio %.3f\n", events, a, b, a / b);
	}
	{
		/* 3. a reconcile's view after a small change, kept and built */
		const struct desired_view *kv;
		size_t merged = 0;

		if (desired_view_update(&ds, &kv) < 0)   /* the first: a merge */
			return 1;
		for (size_t r = 0; r < runs; r++) {
			struct mseg_inventory *ki = &ds.inv[DESIRED_KUBE];
			size_t i = (r * 7919 + 13) % pods, n = i % nss, j = pods + events + r;
			char id[64], ns[32], ip[32];
			struct mseg_policy **prog;
			struct desired_view v;
			size_t n_prog;
			uint64_t t0;

			/* pod i (a peer) readdressed, pod j added, pod j - 1 gone */
			if (i % (pods / 110 ? pods / 110 : 1) == 0) {
				i = (i + 1) % pods;   /* not a local one */
				n = i % nss;
			}
			snprintf(id, sizeof(id), "k8s.ns%zu.p%zu", n, i);
			snprintf(ns, sizeof(ns), "ns%zu", n);
			pod_addr(pods + 4 * events + r, ip, sizeof(ip));
			inventory_stage_put(ki, ep_new(id, ns, ip, NULL, i));
			snprintf(id, sizeof(id), "k8s.ns%zu.r%zu", j % nss, j);
			snprintf(ns, sizeof(ns), "ns%zu", j % nss);
			pod_addr(pods + 2 * events + r, ip, sizeof(ip));
			inventory_stage_put(ki, ep_new(id, ns, ip, NULL, j));
			if (r) {
				snprintf(id, sizeof(id), "k8s.ns%zu.r%zu", (j - 1) % nss, j - 1);
				inventory_stage_remove(ki, id);
			}
			if (inventory_flush(ki) < 0)
				return 1;
			t0 = now_ns();
			if (desired_view_update(&ds, &kv) < 0 ||
			    desired_view_programmable(kv, &prog, &n_prog) < 0)
				return 1;
			t_new[r] = now_ns() - t0;
			merged += desired_view_last_full(&ds);
			free(prog);
			t0 = now_ns();
			if (desired_view_build(&ds, NULL, &v) < 0 ||
			    desired_view_programmable(&v, &prog, &n_prog) < 0)
				return 1;
			t_old[r] = now_ns() - t0;
			if (v.inv.n != kv->inv.n || v.n_local != kv->n_local ||
			    v.n_conflicts != kv->n_conflicts) {
				fprintf(stderr, "bench_view: the kept view differs from the built one\n");
				return 1;
			}
			free(prog);
			desired_view_release(&v);
		}
		{
			double a = median(t_new, runs), b = median(t_old, runs);

			printf("bench_view: reconcile after a small change (1 pod changed, 1 added, "
			       "1 removed), median of %zu: %.2f ms view kept (%zu merged everything); "
			       "baseline %.2f ms view built; ratio %.3f\n", runs, a, merged, b, a / b);
		}
	}
	free(t_new);
	free(t_old);
	free(e_new);
	free(e_old);
	desired_release(&ds);
	return 0;
}
