/* epindex: the endpoints of a compile by namespace, and selections through
 * that index (compile/epindex.h). Pure.
 *
 * Cost: ep_index_init() is one pass over the endpoints (a pointer compare,
 * else a strcmp, per neighbour; with a brief, a pass over it) and a sort
 * of the runs of equal namespace in id order, O(E + R log R) for R runs
 * (about one per namespace when ids are "k8s.NS.NAME"; at worst R = E,
 * today's sort of every endpoint; only the runs out of the longest
 * stretch in order are sorted). The runs of equal namespace labels are
 * one more pass, made only when a namespace selector is evaluated. A
 * selection: named namespace O(log N + its endpoints); namespace selector
 * O(L + endpoints of the matching namespaces, + k log k to order the k
 * selected when they came out of order, or O(E / 64) when they are many)
 * for L label runs, the O(L) once per distinct namespace selector; every
 * namespace O(E). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/model/selector.h"
#include "mseg/util/hash.h"
#include "compile/epindex.h"
#include "util/vec.h"

/* The endpoints are scattered over the heap and each pass reads a little
 * of every one: what the pass will read is fetched some endpoints ahead
 * (the structure first, then what it points to), so that the cache misses
 * overlap instead of following one another. */
#define AHEAD 16

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool ns_same(const char *a, const char *b)
{
	return a == b || strcmp(selector_ns_name(a), selector_ns_name(b)) == 0;
}

/* By name, then first endpoint: concatenated, the runs give the endpoints
 * by namespace, then index. */
static int cmp_ns_run(const void *pa, const void *pb)
{
	const struct ep_ns *a = pa, *b = pb;
	int r = a->name == b->name ? 0 : strcmp(a->name, b->name);

	return r ? r : (a->lo > b->lo) - (a->lo < b->lo);
}

/* @runs in cmp_ns_run() order. Mostly they come in order already: the
 * cluster's ids are "k8s.NS.NAME", and only the endpoints of other ids
 * (this node's registrations, a few) make runs out of place; so the
 * longest stretch in order stays, the others are sorted and merged into
 * it (O(R + k log k) for k runs out of it, not O(R log R)). */
static int runs_sort(struct ep_ns *runs, size_t n)
{
	size_t best_lo = 0, best_hi = n ? 1 : 0, lo = 0, k = 0, a, b, o;
	struct ep_ns *out, *rest;

	for (size_t i = 1; i <= n; i++) {
		if (i < n && cmp_ns_run(&runs[i - 1], &runs[i]) <= 0)
			continue;
		if (i - lo > best_hi - best_lo) {
			best_lo = lo;
			best_hi = i;
		}
		lo = i;
	}
	if (best_hi - best_lo == n)
		return 0;
	out = malloc(n * sizeof(*out));
	rest = malloc((n - (best_hi - best_lo)) * sizeof(*rest));
	if (!out || !rest) {
		free(out);
		free(rest);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (i < best_lo || i >= best_hi)
			rest[k++] = runs[i];
	qsort(rest, k, sizeof(*rest), cmp_ns_run);
	for (a = best_lo, b = 0, o = 0; a < best_hi || b < k;) {
		if (b == k || (a < best_hi && cmp_ns_run(&runs[a], &rest[b]) <= 0))
			out[o++] = runs[a++];
		else
			out[o++] = rest[b++];
	}
	memcpy(runs, out, n * sizeof(*runs));
	free(out);
	free(rest);
	return 0;
}

int ep_index_init(struct ep_index *ix, const struct mseg_endpoint *const *eps, size_t n_eps,
		  const struct mseg_ep_brief *brief)
{
	struct ep_ns *runs = NULL;
	size_t n_runs = 0, cap_runs = 0, k = 0, n_nss = 0;
	int r;

	memset(ix, 0, sizeof(*ix));
	ix->eps = eps;
	ix->n_eps = n_eps;
	ix->brief = brief;
	ix->ns_order = malloc((n_eps ? n_eps : 1) * sizeof(*ix->ns_order));
	if (!ix->ns_order)
		return -ENOMEM;
	/* the runs of equal namespace in id order */
	for (size_t e = 0; e < n_eps; e++) {
		bool same;

		if (brief) {
			same = n_runs && brief[e].ns_name == brief[e - 1].ns_name;
		} else {
			if (e + 2 * AHEAD < n_eps)
				__builtin_prefetch(eps[e + 2 * AHEAD]);
			if (e + AHEAD < n_eps)
				__builtin_prefetch(eps[e + AHEAD]->ns);
			same = n_runs && ns_same(eps[e - 1]->ns, eps[e]->ns);
		}
		if (same) {
			runs[n_runs - 1].hi = (uint32_t)e + 1;
			continue;
		}
		r = VEC_RESERVE(runs, cap_runs, n_runs + 1);
		if (r < 0)
			goto out_free;
		runs[n_runs++] = (struct ep_ns){ .name = brief ? brief[e].ns_name :
						 selector_ns_name(eps[e]->ns),
						 .lo = (uint32_t)e,
						 .hi = (uint32_t)e + 1 };
	}
	r = runs_sort(runs, n_runs);
	if (r < 0)
		goto out_free;
	/* concatenated; runs of one name become one namespace, in place */
	for (size_t i = 0; i < n_runs; i++) {
		struct ep_ns run = runs[i];

		if (n_nss && ns_same(runs[n_nss - 1].name, run.name)) {
			runs[n_nss - 1].hi += run.hi - run.lo;
		} else {
			runs[n_nss].name = run.name;
			runs[n_nss].lo = (uint32_t)k;
			runs[n_nss].hi = (uint32_t)k + (run.hi - run.lo);
			n_nss++;
		}
		for (uint32_t e = run.lo; e < run.hi; e++)
			ix->ns_order[k++] = e;
	}
	ix->nss = runs;
	ix->n_nss = n_nss;
	return 0;

out_free:
	free(runs);
	ep_index_release(ix);
	return r;
}

void ep_index_release(struct ep_index *ix)
{
	for (size_t i = 0; i < ix->n_ns_sels; i++)
		free(ix->ns_sels[i].runs);
	free(ix->ns_sels);
	free(ix->ns_order);
	free(ix->nss);
	free(ix->runs);
	free(ix->bits);
	memset(ix, 0, sizeof(*ix));
}

static bool ns_labels_same(const struct mseg_endpoint *a, const struct mseg_endpoint *b)
{
	if (a->n_ns_labels != b->n_ns_labels)
		return false;
	if (a->ns_labels == b->ns_labels)
		return true;
	for (size_t i = 0; i < a->n_ns_labels; i++)
		if (!str_eq(a->ns_labels[i].key, b->ns_labels[i].key) ||
		    !str_eq(a->ns_labels[i].value, b->ns_labels[i].value))
			return false;
	return true;
}

/* With a brief: does endpoint @e have the namespace labels of endpoint
 * @first (of the same namespace)? Those filled from one namespace object
 * (its serial) are the same, others are compared. Two objects' labels
 * may be the same and still make two runs: a run is where one evaluation
 * of a namespace selector holds, not more. */
static bool brief_labels_same(const struct ep_index *ix, uint32_t first, uint32_t e)
{
	uint64_t a = ix->brief[first].ns_labels_serial, b = ix->brief[e].ns_labels_serial;

	if (a || b)
		return a == b;
	return ns_labels_same(ix->eps[first], ix->eps[e]);
}

/* ix->runs made from the brief: no endpoint read unless its labels are
 * its own. */
static int ep_index_runs_brief(struct ep_index *ix)
{
	size_t cap = 0;
	int r;

	for (size_t i = 0; i < ix->n_nss; i++) {
		const struct ep_ns *ns = &ix->nss[i];
		uint32_t first = 0;

		for (uint32_t k = ns->lo; k < ns->hi; k++) {
			uint32_t e = ix->ns_order[k];

			if (k > ns->lo && brief_labels_same(ix, first, e)) {
				ix->runs[ix->n_runs - 1].hi = k + 1;
				continue;
			}
			r = VEC_RESERVE(ix->runs, cap, ix->n_runs + 1);
			if (r < 0)
				return r;
			ix->runs[ix->n_runs++] = (struct ep_labels_run){ .ep = ix->eps[e], .lo = k,
									 .hi = k + 1 };
			first = e;
		}
	}
	ix->runs_made = true;
	return 0;
}

/* ix->runs: each namespace split where the labels of its endpoints differ
 * from those of the run so far. */
static int ep_index_runs(struct ep_index *ix)
{
	size_t cap = 0;
	int r;

	if (ix->brief)
		return ep_index_runs_brief(ix);
	for (size_t i = 0; i < ix->n_nss; i++) {
		const struct ep_ns *ns = &ix->nss[i];

		for (uint32_t k = ns->lo; k < ns->hi; k++) {
			const struct mseg_endpoint *ep = ix->eps[ix->ns_order[k]];

			if (k + 3 * AHEAD < ix->n_eps)
				__builtin_prefetch(ix->eps[ix->ns_order[k + 3 * AHEAD]]);
			if (k + 2 * AHEAD < ix->n_eps)
				__builtin_prefetch(ix->eps[ix->ns_order[k + 2 * AHEAD]]->ns_labels);
			if (k + AHEAD < ix->n_eps) {
				const struct mseg_endpoint *ahead = ix->eps[ix->ns_order[k + AHEAD]];

				if (ahead->n_ns_labels)
					__builtin_prefetch(ahead->ns_labels[0].key);
			}
			if (k > ns->lo && ns_labels_same(ix->runs[ix->n_runs - 1].ep, ep)) {
				ix->runs[ix->n_runs - 1].hi = k + 1;
				continue;
			}
			r = VEC_RESERVE(ix->runs, cap, ix->n_runs + 1);
			if (r < 0)
				return r;
			ix->runs[ix->n_runs++] = (struct ep_labels_run){ .ep = ep, .lo = k,
									 .hi = k + 1 };
		}
	}
	ix->runs_made = true;
	return 0;
}

static int cmp_u32(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return (a > b) - (a < b);
}

/* @v[0, n) (distinct endpoint indexes) ascending: a sort when they are
 * few, else through a bitset over the endpoints (one pass over its words,
 * left cleared), so that a selection of most endpoints costs O(E / 64),
 * not O(E log E). */
static int sort_selected(struct ep_index *ix, uint32_t *v, size_t n)
{
	size_t words = (ix->n_eps + 63) / 64, k = 0;

	if (n < words) {
		qsort(v, n, sizeof(*v), cmp_u32);
		return 0;
	}
	if (!ix->bits) {
		ix->bits = calloc(words, sizeof(*ix->bits));
		if (!ix->bits)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		ix->bits[v[i] / 64] |= (uint64_t)1 << (v[i] % 64);
	for (size_t w = 0; w < words; w++) {
		for (uint64_t b = ix->bits[w]; b; b &= b - 1)
			v[k++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
		ix->bits[w] = 0;
	}
	return 0;
}

/* The label runs namespace selector @sel matches, in run order: found
 * once per selector content (the peers of many policies share one, as
 * "the namespaces of my team" does), each run's labels matched once. */
static int ns_sel_runs(struct ep_index *ix, const struct mseg_selector *sel,
		       const struct ep_ns_sel **ret)
{
	uint64_t h = selector_hash(HASH_FNV_OFFSET, sel);
	struct ep_ns_sel *m;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < ix->n_ns_sels; i++) {
		if (ix->ns_sels[i].hash == h && selector_equal(ix->ns_sels[i].sel, sel)) {
			*ret = &ix->ns_sels[i];
			return 0;
		}
	}
	r = VEC_RESERVE(ix->ns_sels, ix->cap_ns_sels, ix->n_ns_sels + 1);
	if (r < 0)
		return r;
	m = &ix->ns_sels[ix->n_ns_sels];
	*m = (struct ep_ns_sel){ .sel = sel, .hash = h };
	m->runs = malloc((ix->n_runs ? ix->n_runs : 1) * sizeof(*m->runs));
	if (!m->runs)
		return -ENOMEM;
	for (size_t i = 0; i < ix->n_runs; i++) {
		const struct mseg_endpoint *ep = ix->runs[i].ep;

		if (selector_matches(sel, ep->ns_labels, ep->n_ns_labels))
			m->runs[n++] = (uint32_t)i;
	}
	m->n_runs = n;
	ix->n_ns_sels++;
	*ret = m;
	return 0;
}

/* The endpoints of ns_order[lo, hi) that @sel picks, appended. */
static int select_span(const struct ep_index *ix, const struct mseg_selector *sel, uint32_t lo,
		       uint32_t hi, uint32_t **buf, size_t *cap, size_t *n)
{
	int r = vec_reserve((void **)buf, cap, *n + (hi - lo), sizeof(**buf));

	if (r < 0)
		return r;
	for (uint32_t k = lo; k < hi; k++) {
		uint32_t e = ix->ns_order[k];

		if (selector_matches(sel, ix->eps[e]->labels, ix->eps[e]->n_labels))
			(*buf)[(*n)++] = e;
	}
	return 0;
}

int ep_index_select(struct ep_index *ix, const struct mseg_peer *p, uint32_t **buf, size_t *cap,
		    size_t *ret_n)
{
	const struct ep_ns_sel *ms;
	size_t n = 0;
	bool found, sorted = true;
	size_t i;
	int r;

	*ret_n = 0;
	if (p->kind != MSEG_PEER_ENDPOINTS)
		return 0;
	switch (p->ns_scope) {
	case MSEG_NS_NAMED:
		/* one namespace: its endpoints are in index order */
		i = vec_str_index(ix->nss, ix->n_nss, sizeof(*ix->nss), offsetof(struct ep_ns, name),
				  selector_ns_name(p->ns), &found);
		if (!found)
			break;
		r = select_span(ix, &p->ep_sel, ix->nss[i].lo, ix->nss[i].hi, buf, cap, &n);
		if (r < 0)
			return r;
		break;
	case MSEG_NS_SELECTOR:
		if (!ix->runs_made) {
			r = ep_index_runs(ix);
			if (r < 0)
				return r;
		}
		r = ns_sel_runs(ix, &p->ns_sel, &ms);
		if (r < 0)
			return r;
		for (i = 0; i < ms->n_runs; i++) {
			const struct ep_labels_run *run = &ix->runs[ms->runs[i]];
			size_t from = n;

			r = select_span(ix, &p->ep_sel, run->lo, run->hi, buf, cap, &n);
			if (r < 0)
				return r;
			if (from && n > from && (*buf)[from - 1] > (*buf)[from])
				sorted = false;
		}
		/* namespaces come by name, the selection goes by index */
		if (!sorted) {
			r = sort_selected(ix, *buf, n);
			if (r < 0)
				return r;
		}
		break;
	case MSEG_NS_ANY:
		r = vec_reserve((void **)buf, cap, ix->n_eps, sizeof(**buf));
		if (r < 0)
			return r;
		for (size_t e = 0; e < ix->n_eps; e++)
			if (selector_matches(&p->ep_sel, ix->eps[e]->labels, ix->eps[e]->n_labels))
				(*buf)[n++] = (uint32_t)e;
		break;
	}
	*ret_n = n;
	return 0;
}
