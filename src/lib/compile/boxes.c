/* Disjoint decomposition of address x port boxes (see boxes.h).
 *
 * Algorithm, for one (family, protocol) class of n boxes:
 *  1. Sort by (port range, address). Boxes with the same port range form a
 *     port group; union each group's addresses (sort, merge) -> K groups.
 *  2. K == 1: done. Otherwise sweep the port axis: the breakpoints are every
 *     group's first port and last port + 1; between two breakpoints lies an
 *     elementary port interval, and the groups active there (kept in an
 *     active list while sweeping) all cover it entirely. Its address set is
 *     the union of the active groups' address lists.
 *  3. That gives disjoint boxes (elementary interval x address range). Sort
 *     them by address and merge, per address range, the chains of touching
 *     port intervals (unless every member is a single port: see the merging
 *     rule in boxes.h).
 * Every sort is box_sort(), a natural merge sort: what is already sorted
 * runs is merged, not sorted again (the active lists of step 2 are each
 * sorted; step 3 has one sorted run per elementary interval).
 * Cost: O(n log n) for the sort and group unions, plus, per elementary
 * interval (at most 2K of them), the union of the active lists:
 * O(sum over intervals of A log k), A = addresses and k = groups active
 * there, and the final merge of those M = sum(A) boxes, O(M log 2K). For the usual inputs
 * (many single addresses on a few ports) K and the interval count are small.
 * Worst case (K port ranges all overlapping, each with its own addresses):
 * O(K * n log n) time, O(K * n) output. */
#include <stdlib.h>
#include <string.h>

#include "compile/boxes.h"
#include "util/vec.h"

struct port_group {
	uint32_t plo, phi;
	size_t off, n;          /* addresses in the group's array */
};

struct box_ws {
	struct box *out;
	size_t n_out, cap_out;
	struct box *tmp;        /* box_sort()'s other half */
	size_t cap_tmp;
	size_t *runs;           /* box_sort()'s run ends */
	size_t cap_runs;
	struct port_group *groups;
	size_t cap_groups;
	struct port_group *elems;
	size_t cap_elems;
	struct box *eaddr;      /* addresses of the elementary intervals */
	size_t cap_eaddr;
	uint32_t *bps;          /* breakpoints */
	size_t cap_bps;
	size_t *active;
	size_t cap_active;
};

struct box_ws *box_ws_new(void)
{
	return calloc(1, sizeof(struct box_ws));
}

struct box_ws *box_ws_free(struct box_ws *ws)
{
	if (!ws)
		return NULL;
	free(ws->out);
	free(ws->tmp);
	free(ws->runs);
	free(ws->groups);
	free(ws->elems);
	free(ws->eaddr);
	free(ws->bps);
	free(ws->active);
	free(ws);
	return NULL;
}

static int cmp_u128(box_u128 a, box_u128 b)
{
	return a < b ? -1 : a > b;
}

/* By address range: first address, then last. */
static int box_cmp_range(const struct box *a, const struct box *b)
{
	int c = cmp_u128(a->lo, b->lo);

	return c ? c : cmp_u128(a->hi, b->hi);
}

static int box_cmp_addr(const struct box *a, const struct box *b)
{
	int c = box_cmp_range(a, b);

	if (c)
		return c;
	return a->prov < b->prov ? -1 : a->prov > b->prov;
}

static int box_qsort_cmp_addr(const void *pa, const void *pb)
{
	return box_cmp_addr(pa, pb);
}

static int box_cmp_port_addr(const struct box *a, const struct box *b)
{
	if (a->plo != b->plo)
		return a->plo < b->plo ? -1 : 1;
	if (a->phi != b->phi)
		return a->phi < b->phi ? -1 : 1;
	return box_cmp_addr(a, b);
}

static int box_cmp_addr_port(const struct box *a, const struct box *b)
{
	int c = box_cmp_range(a, b);

	if (c)
		return c;
	return a->plo < b->plo ? -1 : a->plo > b->plo;
}

/* The order of plan entries (addr_entry_cmp): family, address range,
 * protocol, port range. */
static int box_cmp_entry(const struct box *a, const struct box *b)
{
	int c;

	if (a->fam != b->fam)
		return a->fam < b->fam ? -1 : 1;
	c = box_cmp_range(a, b);
	if (c)
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->plo != b->plo)
		return a->plo < b->plo ? -1 : 1;
	return a->phi < b->phi ? -1 : a->phi > b->phi;
}

typedef int (*box_cmp_fn)(const struct box *a, const struct box *b);

/* Stable merge of the sorted @a and @b into @out. */
static void box_merge(const struct box *a, size_t na, const struct box *b, size_t nb,
		      struct box *out, box_cmp_fn cmp)
{
	size_t i = 0, j = 0, k = 0;

	while (i < na && j < nb) {
		if (cmp(&b[j], &a[i]) < 0)
			out[k++] = b[j++];
		else
			out[k++] = a[i++];
	}
	memcpy(out + k, a + i, (na - i) * sizeof(*a));
	k += na - i;
	memcpy(out + k, b + j, (nb - j) * sizeof(*b));
}

/* Stable natural merge sort: the ascending runs already in @v are merged
 * pairwise, through ws->tmp, so that the concatenation of k sorted lists
 * costs O(n log k) and a sorted input O(n). 0 or -ENOMEM. */
static int box_sort(struct box_ws *ws, struct box *v, size_t n, box_cmp_fn cmp)
{
	struct box *src = v, *dst;
	size_t n_runs = 0;
	int r;

	if (n < 2)
		return 0;
	r = VEC_RESERVE(ws->runs, ws->cap_runs, n);
	if (r < 0)
		return r;
	for (size_t i = 1; i < n; i++)
		if (cmp(&v[i - 1], &v[i]) > 0)
			ws->runs[n_runs++] = i;
	ws->runs[n_runs++] = n;
	if (n_runs == 1)
		return 0;
	r = VEC_RESERVE(ws->tmp, ws->cap_tmp, n);
	if (r < 0)
		return r;
	dst = ws->tmp;
	while (n_runs > 1) {
		size_t start = 0, w = 0;
		struct box *t;

		for (size_t k = 0; k < n_runs; k += 2) {
			size_t mid = ws->runs[k], end = k + 1 < n_runs ? ws->runs[k + 1] : mid;

			box_merge(src + start, mid - start, src + mid, end - mid, dst + start, cmp);
			ws->runs[w++] = end;
			start = end;
		}
		n_runs = w;
		t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	return 0;
}

int box_sort_entries(struct box_ws *ws, struct box *v, size_t n)
{
	return box_sort(ws, v, n, box_cmp_entry);
}

static int cmp_u32(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return a < b ? -1 : a > b;
}

static uint64_t prov_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The two axes along which touching boxes merge (the merging rule of
 * boxes.h). */
enum box_axis { AXIS_ADDR, AXIS_PORT };

/* More than one address (or port) along @axis. */
static bool box_wide(const struct box *b, enum box_axis axis)
{
	return axis == AXIS_ADDR ? b->lo != b->hi : b->plo != b->phi;
}

/* @b starts right after @a along @axis; along the port axis, with the same
 * addresses. */
static bool box_touches(const struct box *a, const struct box *b, enum box_axis axis)
{
	if (axis == AXIS_ADDR)
		return a->hi != BOX_U128_MAX && b->lo == a->hi + 1;
	return b->lo == a->lo && b->hi == a->hi && b->plo == a->phi + 1;
}

/* Merge, in @v (sorted along @axis, disjoint), each chain of touching boxes
 * into one when any member is wider than one value, keeping the lowest
 * provenance; a chain of single values stays apart. Returns the new count. */
static inline size_t merge_chains(struct box *v, size_t n, enum box_axis axis)
{
	size_t out = 0, i = 0;

	while (i < n) {
		size_t j = i;
		bool wide = box_wide(&v[i], axis);

		while (j + 1 < n && box_touches(&v[j], &v[j + 1], axis)) {
			j++;
			wide |= box_wide(&v[j], axis);
		}
		if (wide || i == j) {
			struct box merged = v[i];

			for (size_t k = i + 1; k <= j; k++)
				merged.prov = prov_min(merged.prov, v[k].prov);
			if (axis == AXIS_ADDR)
				merged.hi = v[j].hi;
			else
				merged.phi = v[j].phi;
			v[out++] = merged;
		} else {
			for (size_t k = i; k <= j; k++)
				v[out++] = v[k];
		}
		i = j + 1;
	}
	return out;
}

/* Union of address ranges, sorted: overlaps always merge; a chain of
 * touching ranges merges into one when any member is wider than one
 * address, otherwise its single addresses stay apart. */
static size_t addr_union_sorted(struct box *v, size_t n)
{
	size_t m = 0;

	for (size_t k = 0; k < n; k++) {
		if (m && v[k].lo <= v[m - 1].hi) {
			if (v[k].hi > v[m - 1].hi)
				v[m - 1].hi = v[k].hi;
			v[m - 1].prov = prov_min(v[m - 1].prov, v[k].prov);
		} else {
			v[m++] = v[k];
		}
	}
	return merge_chains(v, m, AXIS_ADDR);
}

size_t box_addr_union(struct box *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), box_qsort_cmp_addr);
	return addr_union_sorted(v, n);
}

static int out_push(struct box_ws *ws, const struct box *b, uint16_t plo, uint16_t phi)
{
	int r = VEC_RESERVE(ws->out, ws->cap_out, ws->n_out + 1);

	if (r < 0)
		return r;
	ws->out[ws->n_out] = *b;
	ws->out[ws->n_out].plo = plo;
	ws->out[ws->n_out].phi = phi;
	ws->n_out++;
	return 0;
}

/* Step 2 of the algorithm: elementary port intervals and their address
 * unions, into ws->elems / ws->eaddr. */
static int sweep_ports(struct box_ws *ws, const struct box *gaddr, size_t ng, size_t *ret_ne)
{
	size_t nb = 0, ne = 0, n_active = 0, next = 0, n_eaddr = 0;
	int r;

	r = VEC_RESERVE(ws->bps, ws->cap_bps, 2 * ng);
	if (r < 0)
		return r;
	r = VEC_RESERVE(ws->active, ws->cap_active, ng);
	if (r < 0)
		return r;
	for (size_t g = 0; g < ng; g++) {
		ws->bps[nb++] = ws->groups[g].plo;
		ws->bps[nb++] = ws->groups[g].phi + 1;
	}
	qsort(ws->bps, nb, sizeof(*ws->bps), cmp_u32);
	{
		size_t u = 0;

		for (size_t k = 0; k < nb; k++)
			if (u == 0 || ws->bps[u - 1] != ws->bps[k])
				ws->bps[u++] = ws->bps[k];
		nb = u;
	}

	for (size_t k = 0; k + 1 < nb; k++) {
		uint32_t b = ws->bps[k], e = ws->bps[k + 1] - 1;
		size_t w = 0, start;

		for (size_t a = 0; a < n_active; a++)
			if (ws->groups[ws->active[a]].phi >= b)
				ws->active[w++] = ws->active[a];
		n_active = w;
		while (next < ng && ws->groups[next].plo == b)
			ws->active[n_active++] = next++;
		if (n_active == 0)
			continue;

		start = n_eaddr;
		for (size_t a = 0; a < n_active; a++) {
			const struct port_group *g = &ws->groups[ws->active[a]];

			r = VEC_RESERVE(ws->eaddr, ws->cap_eaddr, n_eaddr + g->n);
			if (r < 0)
				return r;
			memcpy(ws->eaddr + n_eaddr, gaddr + g->off, g->n * sizeof(*gaddr));
			n_eaddr += g->n;
		}
		/* the active lists are sorted: merging them is O(A log active) */
		r = box_sort(ws, ws->eaddr + start, n_eaddr - start, box_cmp_addr);
		if (r < 0)
			return r;
		n_eaddr = start + addr_union_sorted(ws->eaddr + start, n_eaddr - start);

		r = VEC_RESERVE(ws->elems, ws->cap_elems, ne + 1);
		if (r < 0)
			return r;
		ws->elems[ne++] = (struct port_group){ .plo = b, .phi = e, .off = start,
						       .n = n_eaddr - start };
	}
	*ret_ne = ne;
	return 0;
}

/* Step 3: every (elementary interval, address range) box, then per address
 * range, chains of touching port intervals merged. Merging two boxes with the
 * same addresses and touching ports keeps the result disjoint: whatever
 * overlaps the merged box overlaps one of the two. */
static int merge_ports_and_emit(struct box_ws *ws, size_t ne)
{
	int r;

	for (size_t k = 0; k < ne; k++) {
		const struct port_group *el = &ws->elems[k];

		for (size_t a = 0; a < el->n; a++) {
			r = out_push(ws, ws->eaddr + el->off + a, (uint16_t)el->plo,
				     (uint16_t)el->phi);
			if (r < 0)
				return r;
		}
	}
	/* one sorted run per elementary interval: merged, not sorted anew */
	r = box_sort(ws, ws->out, ws->n_out, box_cmp_addr_port);
	if (r < 0)
		return r;
	ws->n_out = merge_chains(ws->out, ws->n_out, AXIS_PORT);
	return 0;
}

int box_normalize(struct box_ws *ws, struct box *in, size_t n, bool ports,
		  const struct box **ret, size_t *ret_n)
{
	size_t ng = 0, w = 0, ne = 0;
	int r;

	ws->n_out = 0;
	*ret = NULL;
	*ret_n = 0;
	if (n == 0)
		return 0;

	if (!ports) {
		size_t m;

		r = VEC_RESERVE(ws->out, ws->cap_out, n);
		if (r < 0)
			return r;
		memcpy(ws->out, in, n * sizeof(*in));
		r = box_sort(ws, ws->out, n, box_cmp_addr);
		if (r < 0)
			return r;
		m = addr_union_sorted(ws->out, n);
		for (size_t k = 0; k < m; k++)
			ws->out[k].plo = ws->out[k].phi = 0;
		ws->n_out = m;
		goto out;
	}

	/* 1. port groups, each with its address union, compacted inside @in */
	r = box_sort(ws, in, n, box_cmp_port_addr);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n;) {
		size_t j = i, m;

		while (j < n && in[j].plo == in[i].plo && in[j].phi == in[i].phi)
			j++;
		m = addr_union_sorted(in + i, j - i);
		if (w != i)
			memmove(in + w, in + i, m * sizeof(*in));
		r = VEC_RESERVE(ws->groups, ws->cap_groups, ng + 1);
		if (r < 0)
			return r;
		ws->groups[ng++] = (struct port_group){ .plo = in[w].plo, .phi = in[w].phi,
							.off = w, .n = m };
		w += m;
		i = j;
	}

	if (ng == 1) {
		r = VEC_RESERVE(ws->out, ws->cap_out, w);
		if (r < 0)
			return r;
		memcpy(ws->out, in, w * sizeof(*in));
		ws->n_out = w;
		goto out;
	}

	/* 2. and 3. */
	r = sweep_ports(ws, in, ng, &ne);
	if (r < 0)
		return r;
	r = merge_ports_and_emit(ws, ne);
	if (r < 0)
		return r;
out:
	*ret = ws->out;
	*ret_n = ws->n_out;
	return 0;
}

bool box_points_at_most(const struct box *b, bool ports, size_t max)
{
	box_u128 addrs_m1 = b->hi - b->lo;      /* address count - 1: never overflows */
	box_u128 n_ports = ports ? (box_u128)b->phi - b->plo + 1 : 1;

	if (max == 0 || addrs_m1 >= max)
		return false;
	/* at most 2^64 addresses times at most 2^16 ports: fits in 128 bits */
	return (addrs_m1 + 1) * n_ports <= max;
}

bool box_range_covered(const struct box *v, size_t n, box_u128 lo, box_u128 hi)
{
	size_t a = 0, b = n;

	/* first index with v[i].lo > lo */
	while (a < b) {
		size_t mid = a + (b - a) / 2;

		if (v[mid].lo <= lo)
			a = mid + 1;
		else
			b = mid;
	}
	if (a == 0)
		return false;
	return v[a - 1].hi >= hi;
}
