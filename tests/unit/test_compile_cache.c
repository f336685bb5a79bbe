/* Unit tests of the compile cache (mseg/compile/cache.h): random sequences
 * of changes (endpoint labels, addresses, named ports, namespaces and
 * namespace labels, endpoints added and removed, policies added, changed
 * and removed, Service routes), each step compiled incrementally through one cache and in
 * full without it: the two plans must be byte-identical (isolation, mode,
 * every entry with its provenance). And what an incremental compile is for:
 * a direction the change did not touch keeps the previous plan's array
 * (same pointer, same id), so the reconciler compares nothing there.
 * And compile_opts.local_only, which the reconciler sets: the endpoints
 * with a netns get what a compile without it gives them, the others are
 * left out of the plan. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/compile/cache.h"
#include "plan_cmp.h"
#include "rand_world.h"
#include "mseg/model/selector.h"
#include "t.h"

/* Service routes towards addresses of the random world (10.60.A/8.10+A%8,
 * port 8080 + http): two sets, to switch between. */
static struct mseg_svc_route routes[2][3];

static void routes_init(void)
{
	static const int backend[2][3] = { { 0, 3, 9 }, { 3, 12, 20 } };

	for (int v = 0; v < 2; v++) {
		for (int i = 0; i < 3; i++) {
			struct mseg_svc_route *rt = &routes[v][i];
			int a = backend[v][i];

			memset(rt, 0, sizeof(*rt));
			rt->vip.family = rt->backend.family = 2;   /* AF_INET */
			memcpy(rt->vip.bytes, (uint8_t[]){ 10, 96, 0, (uint8_t)(1 + i + 3 * v) }, 4);
			memcpy(rt->backend.bytes, (uint8_t[]){ 10, 60, (uint8_t)(a / 8),
							      (uint8_t)(10 + a % 8) }, 4);
			rt->proto = i == 2 ? 17 : 6;
			rt->port = i == 2 ? 53 : 80;
			rt->backend_port = i == 2 ? 53 : (uint16_t)(8080 + i);
		}
	}
}

static void random_changes_incremental_equals_full(void)
{
	static const struct mseg_addr node = { .family = 2 /* AF_INET */,
					       .bytes = { 10, 60, 0, 11 } };
	int failures = 0;
	uint64_t reused = 0, computed = 0;

	for (uint64_t seed = 1; seed <= 120 && failures == 0; seed++) {
		struct compile_opts opts = { .default_mode = MSEG_MODE_ENFORCE };
		struct compile_cache *cc = compile_cache_new(), *ccb = compile_cache_new();
		struct mseg_plan *prev_b = NULL;
		struct compiled prev = { 0 };
		struct world w;

		rng_state = seed * 0x9e3779b97f4a7c15ULL;
		world_init(&w);
		/* the options msegd's reconciler and others use */
		opts.local_only = rnd(2);
		opts.default_deny = rnd(4) == 0;
		opts.expand_max = rnd(3) == 0 ? COMPILE_EXPAND_OFF : rnd(2) ? 0 : 4;
		if (rnd(2)) {
			opts.node_addrs = &node;
			opts.n_node_addrs = 1;
		}
		if (rnd(2)) {
			opts.svc_routes = routes[0];
			opts.n_svc_routes = 3;
		}
		T_CHECK(cc != NULL, "out of memory");
		for (int step = 0; step <= 40 && cc && failures == 0; step++) {
			const char *what = step ? world_change(&w) : "start";
			struct compiled inc;
			struct mseg_plan *full = NULL;
			char why[400];

			if (step && rnd(20) == 0) {
				compile_cache_clear(cc);
				what = "cache cleared (a resync)";
			} else if (step && rnd(15) == 0) {
				opts.svc_routes = opts.svc_routes == routes[0] ? routes[1] : routes[0];
				opts.n_svc_routes = 3;
				what = "Service routes changed";
			}
			if (world_compile_with(&w, &inc, &opts, cc) < 0) {
				T_CHECK(0, "seed %llu step %d (%s): does not compile",
					(unsigned long long)seed, step, what);
				failures++;
				break;
			}
			T_CHECK(compile_plan((const struct mseg_policy *const *)inc.pols.items,
					     inc.pols.n,
					     (const struct mseg_endpoint *const *)inc.inv.eps,
					     inc.inv.n, &opts, &full) == 0,
				"full compile failed");
			if (full && !plans_equal(inc.plan, "incremental", full, "full", why,
						 sizeof(why))) {
				T_CHECK(0, "seed %llu step %d (%s): %s", (unsigned long long)seed,
					step, what, why);
				failures++;
			}
			/* through a brief of the endpoints (a desired view's), with a
			 * cache of its own: the same plan */
			{
				struct compile_opts bo = opts;
				struct mseg_ep_brief *brief = brief_of(&inc.inv);
				struct mseg_plan *bp = NULL;

				bo.eps_brief = brief;
				T_CHECK(brief && compile_plan_cached(
						(const struct mseg_policy *const *)inc.pols.items,
						inc.pols.n, (const struct mseg_endpoint *const *)inc.inv.eps,
						inc.inv.n, &bo, ccb, &bp) == 0,
					"compile with a brief failed");
				if (full && bp &&
				    !plans_equal(bp, "with a brief", full, "full", why, sizeof(why))) {
					T_CHECK(0, "seed %llu step %d (%s), with a brief: %s",
						(unsigned long long)seed, step, what, why);
					failures++;
				}
				plan_free(prev_b);
				prev_b = bp;
				free(brief);
			}
			plan_free(full);
			/* the previous plan outlives the cache's next compile, as
			 * in the reconciler */
			compiled_release(&prev);
			prev = inc;
		}
		reused += compile_cache_stats(cc)->groups_reused;
		computed += compile_cache_stats(cc)->groups_computed;
		compiled_release(&prev);
		plan_free(prev_b);
		compile_cache_free(cc);
		compile_cache_free(ccb);
	}
	/* the sequences did exercise the cache both ways */
	T_CHECK(reused > 0 && computed > 0, "%llu groups reused, %llu computed",
		(unsigned long long)reused, (unsigned long long)computed);
	printf("  %llu groups reused, %llu computed\n", (unsigned long long)reused,
	       (unsigned long long)computed);
}

/* The same inputs again: nothing computed, every array the same pointer
 * and id; a change to one peer's address: only the groups that admit it. */
static void untouched_directions_keep_their_arrays(void)
{
	const struct compile_opts opts = { .default_mode = MSEG_MODE_ENFORCE };
	struct compile_cache *cc = compile_cache_new();
	struct compiled a = { 0 }, b = { 0 }, c = { 0 };
	struct world w;
	uint64_t computed;
	size_t same = 0, changed = 0;
	int victim = -1;

	T_CHECK(cc != NULL, "out of memory");
	if (!cc)
		return;
	rng_state = 77;
	world_init(&w);
	for (int i = 0; i < N_POLS; i++)
		w.pol[i] = i % 4;       /* every policy present */
	T_CHECK(world_compile_with(&w, &a, &opts, cc) == 0, "compile");
	computed = compile_cache_stats(cc)->groups_computed;
	T_CHECK(world_compile_with(&w, &b, &opts, cc) == 0, "compile again");
	T_CHECK(compile_cache_stats(cc)->groups_computed == computed,
		"%llu groups computed again for unchanged inputs",
		(unsigned long long)(compile_cache_stats(cc)->groups_computed - computed));
	for (size_t i = 0; i < a.plan->n_eps && i < b.plan->n_eps; i++)
		for (int d = 0; d < MSEG_DIR_COUNT; d++)
			T_CHECK(a.plan->eps[i].dir[d].entries == b.plan->eps[i].dir[d].entries &&
					a.plan->eps[i].dir[d].entries_id ==
						b.plan->eps[i].dir[d].entries_id,
				"endpoint '%s': a new array for the same inputs",
				a.plan->eps[i].ep->id);

	/* one present endpoint's IPv4 address moves */
	for (int i = 0; i < N_EPS && victim < 0; i++)
		if (w.eps[i].present)
			victim = i;
	w.eps[victim].a4 = 2 * N_EPS + 1;
	T_CHECK(world_compile_with(&w, &c, &opts, cc) == 0, "compile after the change");
	for (size_t i = 0; i < b.plan->n_eps && i < c.plan->n_eps; i++) {
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			const struct mseg_dir_plan *x = &b.plan->eps[i].dir[d];
			const struct mseg_dir_plan *y = &c.plan->eps[i].dir[d];
			bool eq = x->n_entries == y->n_entries &&
				  (!x->n_entries ||
				   memcmp(x->entries, y->entries, x->n_entries * sizeof(*x->entries)) == 0);

			if (x->entries == y->entries && x->entries_id == y->entries_id) {
				same++;
				T_CHECK(eq, "endpoint '%s': the same array for changed entries",
					b.plan->eps[i].ep->id);
			} else if (!eq) {
				changed++;
			}
		}
	}
	T_CHECK(same > 0 && changed > 0, "%zu directions kept their array, %zu changed", same,
		changed);
	compiled_release(&a);
	compiled_release(&b);
	compile_cache_free(cc);
	compiled_release(&c);   /* after the cache: a plan may outlive it */
}

/* local_only leaves the pods of other nodes out of the plan (the compile
 * sizes its arrays by the local endpoints): the plan has the local ones,
 * in id order, with what a compile without it gives them. */
static void local_only_gives_local_endpoints_the_full_entries(void)
{
	size_t locals = 0, peers = 0, with_entries = 0;

	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct compile_opts opts = { .default_mode = MSEG_MODE_ENFORCE };
		struct compiled a, b;
		struct world w;

		rng_state = seed * 0x2545f4914f6cdd1dULL;
		world_init(&w);
		opts.default_deny = rnd(4) == 0;
		if (rnd(2)) {
			opts.svc_routes = routes[0];
			opts.n_svc_routes = 3;
		}
		T_CHECK(world_compile_with(&w, &a, &opts, NULL) == 0, "seed %llu",
			(unsigned long long)seed);
		opts.local_only = true;
		T_CHECK(world_compile_with(&w, &b, &opts, NULL) == 0, "seed %llu local_only",
			(unsigned long long)seed);
		size_t j = 0;

		for (size_t i = 0; a.plan && b.plan && i < a.plan->n_eps; i++) {
			const struct mseg_ep_plan *x = &a.plan->eps[i], *y;

			if (!x->ep->netns) {
				peers++;
				continue;
			}
			locals++;
			T_CHECK(j < b.plan->n_eps && strcmp(b.plan->eps[j].ep->id, x->ep->id) == 0,
				"seed %llu: local endpoint '%s' is line %zu of the local_only plan "
				"(of %zu)", (unsigned long long)seed, x->ep->id, j, b.plan->n_eps);
			if (j >= b.plan->n_eps || strcmp(b.plan->eps[j].ep->id, x->ep->id) != 0)
				break;
			y = &b.plan->eps[j++];
			for (int d = 0; d < MSEG_DIR_COUNT; d++) {
				const struct mseg_dir_plan *dx = &x->dir[d], *dy = &y->dir[d];
				bool same = dx->isolated == dy->isolated && dx->mode == dy->mode &&
					    dx->n_entries == dy->n_entries &&
					    (!dx->n_entries ||
					     memcmp(dx->entries, dy->entries,
						    dx->n_entries * sizeof(*dx->entries)) == 0);

				with_entries += dy->n_entries > 0;
				T_CHECK(same, "seed %llu: endpoint '%s' %s: isolated %d/%d, "
					"mode %d/%d, %zu/%zu entries (all/local_only)",
					(unsigned long long)seed, x->ep->id, d ? "egress" : "ingress",
					dx->isolated, dy->isolated, dx->mode, dy->mode, dx->n_entries,
					dy->n_entries);
			}
		}
		T_CHECK(!b.plan || j == b.plan->n_eps, "seed %llu: the local_only plan has %zu lines, "
			"%zu local endpoints", (unsigned long long)seed, b.plan ? b.plan->n_eps : 0, j);
		compiled_release(&a);
		compiled_release(&b);
	}
	T_CHECK(locals > 0 && peers > 0 && with_entries > 0, "%zu local, %zu peers, %zu with entries",
		locals, peers, with_entries);
}

int main(void)
{
	routes_init();
	T_RUN(random_changes_incremental_equals_full);
	T_RUN(untouched_directions_keep_their_arrays);
	T_RUN(local_only_gives_local_endpoints_the_full_entries);
	return t_exit();
}
