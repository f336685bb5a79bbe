/* The desired view against a straightforward reference, on random
 * inventories in the three sources: which endpoints it holds (the merge),
 * each one's namespace labels (the namespace declared first in the file,
 * the API or the cluster, else the endpoint's own ns_labels, always with
 * kubernetes.io/metadata.name) and the address conflicts (every claim of
 * every address sorted: the newest registration keeps it, ties to the id
 * that sorts last; the conflicts listed in that order of the losing
 * claims; each loser a copy without the address). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/daemon/desired.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "mseg/model/selector.h"
#include "t.h"
#include "trand.h"

static const char *const nss[] = { "a", "b", "c", "d", "e", NULL };   /* NULL: default */
#define N_NSS (sizeof(nss) / sizeof(nss[0]))

static const struct mseg_label given[] = { { "team", "given" }, { "zone", "z1" } };

/* Addresses come from 10.0.0.0 + rnd(v4_pool) (or fd00:: + it); one in
 * @v4_near from the first 24 (8) only, so that they are shared */
static uint32_t v4_pool = 24, v4_near = 1;

/* A random endpoint of source @src: an id from a small pool (so that the
 * sources clash), addresses from small pools (so that they are shared,
 * also twice by one endpoint), a few registration times (so that they
 * tie), a namespace among a few. */
static struct mseg_endpoint *ep_random(int src)
{
	char id[32], ips[4][48], netns[64];
	const char *ip_ptrs[4];
	struct endpoint_fields f = { 0 };
	struct mseg_endpoint *ep = NULL;
	struct mseg_err err;
	size_t n_ips = 1 + rnd(3);
	int pool = (int)rnd(3);

	if (pool == 0)
		snprintf(id, sizeof(id), "e%02u", rnd(40));
	else
		snprintf(id, sizeof(id), "k8s.%s.p%u", nss[rnd(N_NSS - 1)], rnd(30));
	if (v4_pool > 24)
		n_ips = 1 + (rnd(8) == 0);   /* a pod: one address, or two */
	for (size_t i = 0; i < n_ips; i++) {
		if (rnd(4)) {
			uint32_t a = rnd(v4_near) ? rnd(v4_pool) : rnd(24);

			snprintf(ips[i], sizeof(ips[i]), "10.0.%u.%u", a / 256, a % 256);
		}
		else
			snprintf(ips[i], sizeof(ips[i]), "fd00::%x", rnd(v4_near) ? rnd(v4_pool) : rnd(8));
		ip_ptrs[i] = ips[i];
	}
	snprintf(netns, sizeof(netns), "/run/netns/%s", id);
	f.id = id;
	f.ns = nss[rnd(N_NSS)];
	f.ips = ip_ptrs;
	f.n_ips = n_ips;
	/* the cluster's endpoints with a netns stand for a registration */
	f.netns = src != DESIRED_KUBE || rnd(3) == 0 ? netns : NULL;
	f.pod_uid = src == DESIRED_API && rnd(3) == 0 ? "u1" : NULL;
	err_clear(&err);
	if (endpoint_build("test", &f, &ep, &err) < 0)
		return NULL;
	ep->registered_ns = rnd(4);
	ep->cluster_peer = src == DESIRED_KUBE && !f.netns;
	if (rnd(3) == 0) {
		ep->given_ns_labels = (struct mseg_label *)given;
		ep->n_given_ns_labels = 1 + rnd(2);
	}
	return ep;
}

static void world_random(struct desired *ds)
{
	for (int s = 0; s < DESIRED_N_SOURCES; s++) {
		size_t n = rnd(s == DESIRED_KUBE ? 60 : 20);

		for (size_t i = 0; i < n; i++) {
			struct mseg_endpoint *ep = ep_random(s);

			if (ep && inventory_put(&ds->inv[s], ep) < 0)
				endpoint_free(ep);
		}
		/* some namespaces declared, in one source or several */
		for (size_t i = 0; i + 1 < N_NSS; i++) {
			struct mseg_label l = { "src", s == 0 ? "file" : s == 1 ? "api" : "kube" };
			struct mseg_namespace *ns;

			if (rnd(3) || namespace_new(nss[i], &l, 1, &ns) < 0)
				continue;
			if (inventory_ns_put(&ds->inv[s], ns) < 0)
				namespace_free(ns);
		}
	}
	/* changes to the cluster's endpoints staged one at a time, as watch
	 * events make them, not flushed (half of the worlds) */
	for (size_t i = 0, n = rnd(2) ? rnd(30) : 0; i < n; i++) {
		struct mseg_inventory *ki = &ds->inv[DESIRED_KUBE];

		if (rnd(2) && ki->n) {
			inventory_stage_remove(ki, ki->eps[rnd((uint32_t)ki->n)]->id);
		} else {
			struct mseg_endpoint *ep = ep_random(DESIRED_KUBE);

			if (ep && inventory_stage_put(ki, ep) < 0)
				endpoint_free(ep);
		}
	}
	ds->kube_pods = rnd(2);
	for (int i = 0; i < 3; i++)
		if (rnd(4) == 0) {
			char id[16];

			snprintf(id, sizeof(id), "e%02u", rnd(40));
			desired_endpoint_set_gone(ds, id, true);
		}
}

/* ---- the reference ---- */

/* The endpoint of @id in source @s: its staged change (the last one
 * made, the list is unsorted to the reference), else its array's. */
static const struct mseg_endpoint *ref_src_find(const struct desired *ds, int s, const char *id)
{
	for (size_t i = 0; i < ds->inv[s].n_staged; i++)
		if (strcmp(ds->inv[s].staged[i].id, id) == 0)
			return ds->inv[s].staged[i].ep;
	for (size_t i = 0; i < ds->inv[s].n; i++)
		if (strcmp(ds->inv[s].eps[i]->id, id) == 0)
			return ds->inv[s].eps[i];
	return NULL;
}

/* In the sorted array itself (not staged). */
static bool inventory_search_eps(const struct mseg_inventory *inv, const char *id)
{
	for (size_t i = 0; i < inv->n; i++)
		if (strcmp(inv->eps[i]->id, id) == 0)
			return true;
	return false;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The endpoints of the view, as the documented merge rule says, in id
 * order: at most 3 * 100 of them. */
static size_t ref_merge(const struct desired *ds, const struct mseg_endpoint **out)
{
	const char *ids[400];
	size_t n_ids = 0, n = 0;

	for (int s = 0; s < DESIRED_N_SOURCES; s++) {
		for (size_t i = 0; i < ds->inv[s].n; i++)
			ids[n_ids++] = ds->inv[s].eps[i]->id;
		for (size_t i = 0; i < ds->inv[s].n_staged; i++)
			ids[n_ids++] = ds->inv[s].staged[i].id;
	}
	qsort(ids, n_ids, sizeof(*ids), str_cmp);
	for (size_t i = 0; i < n_ids; i++) {
		const struct mseg_endpoint *fa, *fb, *fk, *take;

		if (i && strcmp(ids[i], ids[i - 1]) == 0)
			continue;
		fa = ref_src_find(ds, DESIRED_FILE, ids[i]);
		fb = ref_src_find(ds, DESIRED_API, ids[i]);
		fk = ref_src_find(ds, DESIRED_KUBE, ids[i]);
		if (fk && fk->netns && !fb)
			fk = NULL;
		if (fb && !fk && fb->pod_uid && ds->kube_pods && !fa)
			continue;
		take = fa ? fa : fk ? fk : fb;
		if (take && !desired_endpoint_is_gone(ds, take->id))
			out[n++] = take;
	}
	return n;
}

static const struct mseg_namespace *ref_ns(const struct desired *ds, const char *name)
{
	for (int s = 0; s < DESIRED_N_SOURCES; s++)
		for (size_t i = 0; i < ds->inv[s].n_nss; i++)
			if (strcmp(ds->inv[s].nss[i]->name, name) == 0)
				return ds->inv[s].nss[i];
	return NULL;
}

/* "k=v,k=v" of the namespace labels @ep must have. */
static void ref_ns_labels(const struct desired *ds, const struct mseg_endpoint *ep, char *buf,
			  size_t size)
{
	const char *name = selector_ns_name(ep->ns);
	const struct mseg_namespace *ns = ref_ns(ds, name);
	size_t len = 0;

	buf[0] = '\0';
	if (ns) {
		for (size_t i = 0; i < ns->n_labels; i++)
			len += (size_t)snprintf(buf + len, size - len, "%s=%s,", ns->labels[i].key,
						ns->labels[i].value);
		return;
	}
	/* given labels (sorted: team, zone) and the name label, by key */
	len += (size_t)snprintf(buf + len, size - len, "%s=%s,", NS_NAME_LABEL, name);
	for (size_t i = 0; i < ep->n_given_ns_labels; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s=%s,", ep->given_ns_labels[i].key,
					ep->given_ns_labels[i].value);
}

static void labels_text(const struct mseg_label *l, size_t n, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s=%s,", l[i].key, l[i].value);
}

struct ref_claim {
	struct mseg_addr addr;
	size_t ep;
	uint64_t reg;
	const char *id;
};

static int ref_claim_cmp(const void *pa, const void *pb)
{
	const struct ref_claim *a = pa, *b = pb;
	unsigned __int128 x = addr_u128(&a->addr), y = addr_u128(&b->addr);

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	if (x != y)
		return x < y ? -1 : 1;
	if (a->reg != b->reg)
		return a->reg > b->reg ? -1 : 1;
	return -strcmp(a->id, b->id);
}

static void test_view_random(void)
{
	size_t rounds = 3000, n_conflicts = 0, n_declared = 0, n_given = 0, n_eps = 0;
	size_t n_staged_rounds = 0;

	for (size_t round = 0; round < rounds && !t_case_failed; round++) {
		const struct mseg_endpoint *ref[300];
		struct ref_claim cl[900];
		struct mseg_addr left[300][3];
		size_t n_left[300], n_ref, n_cl = 0, n_conf = 0;
		struct desired ds;
		struct desired_view v;

		desired_init(&ds);
		world_random(&ds);
		n_ref = ref_merge(&ds, ref);
		T_CHECK(desired_view_build(&ds, NULL, &v) == 0, "round %zu: build", round);
		T_CHECK(v.inv.n == n_ref, "round %zu: %zu endpoints, want %zu", round, v.inv.n, n_ref);
		for (size_t i = 0; i < n_ref && i < v.inv.n && !t_case_failed; i++) {
			const struct mseg_endpoint *ep = v.inv.eps[i];
			char got[256], want[256];

			T_STREQ(ep->id, ref[i]->id);
			ref_ns_labels(&ds, ref[i], want, sizeof(want));
			labels_text(ep->ns_labels, ep->n_ns_labels, got, sizeof(got));
			T_CHECK(strcmp(got, want) == 0, "round %zu: '%s': namespace labels %s, want %s",
				round, ep->id, got, want);
			if (ref_ns(&ds, selector_ns_name(ep->ns)))
				n_declared++;
			else
				n_given += ep->n_given_ns_labels > 0;
			for (size_t j = 0; j < ref[i]->n_ips; j++)
				cl[n_cl++] = (struct ref_claim){ ref[i]->ips[j], i, ref[i]->registered_ns,
								 ref[i]->id };
			memcpy(left[i], ref[i]->ips, ref[i]->n_ips * sizeof(*ref[i]->ips));
			n_left[i] = ref[i]->n_ips;
		}
		/* every claim sorted; in each run of one address the first wins */
		qsort(cl, n_cl, sizeof(*cl), ref_claim_cmp);
		for (size_t i = 1; i < n_cl && !t_case_failed; i++) {
			size_t w = i;

			while (w > 0 && addr_eq(&cl[w - 1].addr, &cl[i].addr))
				w--;
			if (w == i || cl[w].ep == cl[i].ep)
				continue;
			T_CHECK(n_conf < v.n_conflicts, "round %zu: too few conflicts", round);
			if (n_conf < v.n_conflicts) {
				const struct desired_conflict *c = &v.conflicts[n_conf];

				T_CHECK(addr_eq(&c->addr, &cl[i].addr) &&
					strcmp(c->winner, cl[w].id) == 0 && strcmp(c->loser, cl[i].id) == 0,
					"round %zu: conflict %zu: %s over %s, want %s over %s", round, n_conf,
					c->winner, c->loser, cl[w].id, cl[i].id);
			}
			n_conf++;
			for (size_t j = 0; j < n_left[cl[i].ep]; j++)
				if (addr_eq(&left[cl[i].ep][j], &cl[i].addr)) {
					memmove(&left[cl[i].ep][j], &left[cl[i].ep][j + 1],
						(n_left[cl[i].ep] - j - 1) * sizeof(left[0][0]));
					n_left[cl[i].ep]--;
					break;
				}
		}
		T_CHECK(v.n_conflicts == n_conf, "round %zu: %zu conflicts, want %zu", round,
			v.n_conflicts, n_conf);
		for (size_t i = 0; i < n_ref && i < v.inv.n && !t_case_failed; i++) {
			const struct mseg_endpoint *ep = v.inv.eps[i];

			T_CHECK(ep->n_ips == n_left[i] &&
				memcmp(ep->ips, left[i], n_left[i] * sizeof(*ep->ips)) == 0,
				"round %zu: '%s': %zu addresses left, want %zu", round, ep->id, ep->n_ips,
				n_left[i]);
			T_CHECK((ep == ref[i]) == (n_left[i] == ref[i]->n_ips),
				"round %zu: '%s': a copy exactly when it lost an address", round, ep->id);
		}
		n_conflicts += n_conf;
		n_eps += v.inv.n;
		/* the staged changes applied: the same cluster endpoints, the
		 * same view */
		if (ds.inv[DESIRED_KUBE].n_staged) {
			struct mseg_inventory *ki = &ds.inv[DESIRED_KUBE];
			size_t count = inventory_count(ki), n_kube = 0;
			struct desired_view w;

			for (size_t i = 0; i < ki->n; i++)
				n_kube += ref_src_find(&ds, DESIRED_KUBE, ki->eps[i]->id) != NULL;
			for (size_t i = 0; i < ki->n_staged; i++)
				n_kube += ki->staged[i].ep && !inventory_search_eps(ki, ki->staged[i].id);
			T_CHECK(count == n_kube, "round %zu: count %zu, want %zu", round, count, n_kube);
			n_staged_rounds++;
			T_CHECK(inventory_flush(ki) == 0 && ki->n_staged == 0 && ki->n == count,
				"round %zu: flush: %zu endpoints, want %zu", round, ki->n, count);
			for (size_t i = 1; i < ki->n; i++)
				T_CHECK(strcmp(ki->eps[i - 1]->id, ki->eps[i]->id) < 0,
					"round %zu: flushed array not sorted at %zu", round, i);
			/* and a namespace changed (a new object of that name):
			 * the endpoints filled from the old one are filled again */
			{
				struct mseg_label l = { "src", "changed" };
				struct mseg_namespace *o;
				int s = (int)rnd(DESIRED_N_SOURCES);

				if (namespace_new(nss[rnd(N_NSS - 1)], &l, 1, &o) == 0 &&
				    inventory_ns_put(&ds.inv[s], o) < 0)
					namespace_free(o);
			}
			T_CHECK(desired_view_build(&ds, NULL, &w) == 0 && w.inv.n == v.inv.n,
				"round %zu: %zu endpoints after the flush, %zu before", round, w.inv.n,
				v.inv.n);
			for (size_t i = 0; i < w.inv.n && i < v.inv.n; i++) {
				char got[256], want[256];

				T_CHECK(strcmp(w.inv.eps[i]->id, v.inv.eps[i]->id) == 0 &&
					w.inv.eps[i]->n_ips == v.inv.eps[i]->n_ips,
					"round %zu: '%s' after the flush, '%s' before", round,
					w.inv.eps[i]->id, v.inv.eps[i]->id);
				ref_ns_labels(&ds, w.inv.eps[i], want, sizeof(want));
				labels_text(w.inv.eps[i]->ns_labels, w.inv.eps[i]->n_ns_labels, got,
					    sizeof(got));
				T_CHECK(strcmp(got, want) == 0,
					"round %zu: '%s': namespace labels %s after a change, want %s",
					round, w.inv.eps[i]->id, got, want);
			}
			desired_view_release(&w);
		}
		desired_view_release(&v);
		desired_release(&ds);
	}
	/* the random worlds must have had what this test is about */
	T_CHECK(n_conflicts > rounds && n_declared > rounds && n_given > rounds / 4 &&
		n_staged_rounds > rounds / 4,
		"%zu conflicts, %zu endpoints of declared namespaces, %zu with their own labels "
		"(of %zu), %zu worlds with staged changes", n_conflicts, n_declared, n_given, n_eps,
		n_staged_rounds);
	printf("  %zu rounds (%zu with staged cluster changes): %zu endpoints, %zu conflicts, "
	       "%zu of declared namespaces, %zu with their own ns_labels\n", rounds,
	       n_staged_rounds, n_eps, n_conflicts, n_declared, n_given);
}

/* Two views of the same sources hold the same: endpoints (the same
 * objects, or copies with the same addresses), local ones, counts,
 * conflicts and policies. */
static bool views_same(const struct desired_view *a, const struct desired_view *b, char *why,
		       size_t size)
{
	if (a->inv.n != b->inv.n)
		return snprintf(why, size, "%zu endpoints, want %zu", a->inv.n, b->inv.n), false;
	for (size_t i = 0; i < a->inv.n; i++) {
		const struct mseg_endpoint *x = a->inv.eps[i], *y = b->inv.eps[i];

		if (strcmp(x->id, y->id) != 0 || x->n_ips != y->n_ips ||
		    (x->n_ips && memcmp(x->ips, y->ips, x->n_ips * sizeof(*x->ips)) != 0) ||
		    x->labels != y->labels || x->ns_labels != y->ns_labels ||
		    x->cluster_peer != y->cluster_peer || x->netns != y->netns)
			return snprintf(why, size, "endpoint %zu: '%s', want '%s'", i, x->id, y->id),
			       false;
	}
	if (a->n_local != b->n_local ||
	    (a->n_local && memcmp(a->local, b->local, a->n_local * sizeof(*a->local)) != 0))
		return snprintf(why, size, "%zu local endpoints, want %zu (or others)", a->n_local,
				b->n_local), false;
	if (a->shadowed_pols != b->shadowed_pols || a->shadowed_eps != b->shadowed_eps ||
	    a->gone != b->gone || a->waiting != b->waiting)
		return snprintf(why, size, "shadowed %zu/%zu, gone %zu, waiting %zu; want "
				"%zu/%zu, %zu, %zu", a->shadowed_pols, a->shadowed_eps, a->gone,
				a->waiting, b->shadowed_pols, b->shadowed_eps, b->gone, b->waiting),
		       false;
	if (a->n_conflicts != b->n_conflicts)
		return snprintf(why, size, "%zu conflicts, want %zu", a->n_conflicts,
				b->n_conflicts), false;
	for (size_t i = 0; i < a->n_conflicts; i++)
		if (!addr_eq(&a->conflicts[i].addr, &b->conflicts[i].addr) ||
		    strcmp(a->conflicts[i].winner, b->conflicts[i].winner) != 0 ||
		    strcmp(a->conflicts[i].loser, b->conflicts[i].loser) != 0)
			return snprintf(why, size, "conflict %zu differs", i), false;
	if (a->pols.n != b->pols.n)
		return snprintf(why, size, "%zu policies, want %zu", a->pols.n, b->pols.n), false;
	for (size_t i = 0; i < a->pols.n; i++)
		if (strcmp(a->pols.items[i]->name, b->pols.items[i]->name) != 0 ||
		    a->pols.items[i]->mode != b->pols.items[i]->mode)
			return snprintf(why, size, "policy %zu differs", i), false;
	return true;
}

/* The view's brief describes its endpoints (compile_opts.eps_brief): each
 * one's serial and netns, the same namespace number exactly for the same
 * namespace name (against its neighbour and another endpoint). */
static bool brief_ok(const struct desired_view *v, char *why, size_t size)
{
	if (v->inv.brief != v->brief || (v->inv.n && !v->brief))
		return snprintf(why, size, "no brief"), false;
	for (size_t i = 0; i < v->inv.n; i++) {
		const struct mseg_endpoint *ep = v->inv.eps[i];
		size_t o[2] = { i ? i - 1 : 0, (i * 7 + 3) % v->inv.n };

		if (v->brief[i].ns_labels_serial != ep->ns_labels_serial ||
		    !v->brief[i].netns != !ep->netns ||
		    strcmp(v->brief[i].ns_name, selector_ns_name(ep->ns)) != 0)
			return snprintf(why, size, "brief of '%s' differs", ep->id), false;
		for (int q = 0; q < 2; q++) {
			bool same = strcmp(selector_ns_name(ep->ns),
					   selector_ns_name(v->inv.eps[o[q]]->ns)) == 0;

			if ((v->brief[i].ns_name == v->brief[o[q]].ns_name) != same)
				return snprintf(why, size, "brief: namespace of '%s' and '%s'", ep->id,
						v->inv.eps[o[q]]->id), false;
		}
	}
	return true;
}

/* A policy of the cluster named @name (no subject: nothing it selects
 * matters here, only which policies a view holds). */
static struct mseg_policy *policy_named(const char *name)
{
	struct mseg_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	arena_init(&p->arena);
	p->name = arena_strdup(&p->arena, name);
	p->ns = "default";
	return p;
}

/* The view desired_view_update() keeps, after random sequences of watch
 * events (cluster endpoints put, replaced and removed, staged, flushed
 * now and then) and now and then another change (an API endpoint, a
 * namespace, a gone endpoint, a cluster policy): after each, the same
 * view a merge of every source makes. Most updates must be made from the
 * journal (else this would test the merge again), some must merge. */
static void test_view_kept_random(void)
{
	size_t rounds = 300, steps = 40, n_journal = 0, n_full = 0, n_changes = 0;

	v4_pool = 4000;
	v4_near = 12;
	for (size_t round = 0; round < rounds && !t_case_failed; round++) {
		struct desired ds;
		const struct desired_view *kv;

		desired_init(&ds);
		world_random(&ds);
		T_CHECK(desired_view_update(&ds, &kv) == 0, "round %zu: first update", round);
		for (size_t step = 0; step < steps && !t_case_failed; step++) {
			struct mseg_inventory *ki = &ds.inv[DESIRED_KUBE];
			struct desired_view w;
			char why[256];
			uint32_t what = rnd(100);

			for (size_t e = 0, n = 1 + rnd(6); e < n; e++) {
				struct mseg_endpoint *ep;

				if (rnd(3) == 0 && inventory_count(ki)) {
					size_t i = rnd((uint32_t)(ki->n + ki->n_staged));
					const char *id = i < ki->n ? ki->eps[i]->id :
							 ki->staged[i - ki->n].id;

					inventory_stage_remove(ki, id);
					n_changes++;
					continue;
				}
				ep = ep_random(DESIRED_KUBE);
				if (ep && inventory_stage_put(ki, ep) < 0)
					endpoint_free(ep);
				n_changes++;
			}
			if (rnd(2))
				inventory_flush(ki);   /* as kube_source_sync() does */
			if (what < 4) {
				struct mseg_endpoint *ep = ep_random(DESIRED_API);

				if (ep && inventory_put(&ds.inv[DESIRED_API], ep) < 0)
					endpoint_free(ep);
			} else if (what < 7) {
				struct mseg_label l = { "src", "changed" };
				struct mseg_namespace *ns;

				if (namespace_new(nss[rnd(N_NSS - 1)], &l, 1, &ns) == 0 &&
				    inventory_ns_put(ki, ns) < 0)
					namespace_free(ns);
			} else if (what < 9) {
				char id[32];

				snprintf(id, sizeof(id), "k8s.%s.p%u", nss[rnd(N_NSS - 1)], rnd(30));
				desired_endpoint_set_gone(&ds, id, rnd(2));
			} else if (what < 12) {
				char name[16];
				struct mseg_policy *p;

				snprintf(name, sizeof(name), "np%u", rnd(5));
				p = policy_named(name);
				if (p && policy_set_put(&ds.pols[DESIRED_KUBE], p) < 0)
					policy_free(p);
			}
			T_CHECK(desired_view_update(&ds, &kv) == 0, "round %zu step %zu: update", round,
				step);
			if (desired_view_last_full(&ds))
				n_full++;
			else
				n_journal++;
			/* each endpoint's namespace labels, before a merge fills them */
			for (size_t i = 0; i < kv->inv.n && !t_case_failed; i++) {
				const struct mseg_endpoint *ep = kv->inv.eps[i];
				char got[256], want[256];

				ref_ns_labels(&ds, ep, want, sizeof(want));
				labels_text(ep->ns_labels, ep->n_ns_labels, got, sizeof(got));
				T_CHECK(strcmp(got, want) == 0, "round %zu step %zu: '%s': namespace "
					"labels %s, want %s", round, step, ep->id, got, want);
			}
			T_CHECK(desired_view_build(&ds, NULL, &w) == 0, "round %zu: build", round);
			T_CHECK(views_same(kv, &w, why, sizeof(why)), "round %zu step %zu (%s): %s",
				round, step, desired_view_last_full(&ds) ? "merged" : "journal", why);
			T_CHECK(brief_ok(kv, why, sizeof(why)) && brief_ok(&w, why, sizeof(why)),
				"round %zu step %zu (%s): %s", round, step,
				desired_view_last_full(&ds) ? "merged" : "journal", why);
			desired_view_release(&w);
		}
		desired_release(&ds);
	}
	v4_pool = 24;
	v4_near = 1;
	T_CHECK(n_journal > n_full * 3 && n_full > rounds, "%zu updates from the journal, %zu merged",
		n_journal, n_full);
	printf("  %zu rounds of %zu steps, %zu cluster changes: %zu updates from the journal, "
	       "%zu merged\n", rounds, steps, n_changes, n_journal, n_full);
}

int main(void)
{
	T_RUN(test_view_random);
	T_RUN(test_view_kept_random);
	return t_exit();
}
