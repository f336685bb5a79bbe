/* slots: range entries of single addresses -> port-range slots (slots.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/slots.h"

/* A run of entries of one (single address, protocol). */
struct group {
	size_t first, n;             /* entries iv[first .. first + n) */
	size_t r_off, r_n;           /* its signature in the scratch ranges */
};

static bool entry_single(const struct mseg_entry *e)
{
	return memcmp(e->lo.bytes, e->hi.bytes, sizeof(e->lo.bytes)) == 0;
}

static bool same_group(const struct mseg_entry *a, const struct mseg_entry *b)
{
	return a->lo.family == b->lo.family && a->proto == b->proto &&
	       memcmp(a->lo.bytes, b->lo.bytes, sizeof(a->lo.bytes)) == 0;
}

struct sig_ref {
	const struct slot_range *r;
	size_t n;
	size_t group;
};

static int sig_cmp(const struct slot_range *a, size_t na, const struct slot_range *b, size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++) {
		if (a[i].lo != b[i].lo)
			return a[i].lo < b[i].lo ? -1 : 1;
		if (a[i].hi != b[i].hi)
			return a[i].hi < b[i].hi ? -1 : 1;
	}
	return na == nb ? 0 : na < nb ? -1 : 1;
}

static int sig_ref_cmp(const void *pa, const void *pb)
{
	const struct sig_ref *a = pa, *b = pb;
	int c = sig_cmp(a->r, a->n, b->r, b->n);

	if (c)
		return c;
	return a->group < b->group ? -1 : a->group > b->group;
}

void slot_assign_release(struct slot_assign *a)
{
	free(a->slot);
	free(a->ranges);
	memset(a, 0, sizeof(*a));
}

int slots_assign(const struct mseg_entry *const *iv, size_t n, size_t k,
		 struct slot_assign *ret)
{
	struct slot_range *scratch = NULL;
	struct group *groups = NULL;
	struct sig_ref *refs = NULL;
	size_t n_groups = 0, n_scratch = 0, n_out = 0;
	int r = -ENOMEM;

	memset(ret, 0, sizeof(*ret));
	if (k > SLOTS_MAX)
		k = SLOTS_MAX;
	ret->slot = malloc(n ? n : 1);
	scratch = malloc((n ? n : 1) * sizeof(*scratch));
	groups = malloc((n ? n : 1) * sizeof(*groups));
	if (!ret->slot || !scratch || !groups)
		goto out_free;
	memset(ret->slot, -1, n);

	/* groups and their signatures: a group's entries are adjacent in
	 * addr_entry_cmp() order (address, then protocol, then ports) */
	for (size_t i = 0; i < n;) {
		struct group *g;
		size_t j = i + 1;

		if (!entry_single(iv[i])) {
			i++;
			continue;
		}
		while (j < n && entry_single(iv[j]) && same_group(iv[i], iv[j]))
			j++;
		g = &groups[n_groups++];
		g->first = i;
		g->n = j - i;
		g->r_off = n_scratch;
		for (size_t m = i; m < j; m++) {
			struct slot_range *last = n_scratch > g->r_off ? &scratch[n_scratch - 1] : NULL;

			if (last && (uint32_t)iv[m]->port_lo <= (uint32_t)last->hi + 1) {
				if (iv[m]->port_hi > last->hi)
					last->hi = iv[m]->port_hi;
			} else {
				scratch[n_scratch].lo = iv[m]->port_lo;
				scratch[n_scratch].hi = iv[m]->port_hi;
				n_scratch++;
			}
		}
		g->r_n = n_scratch - g->r_off;
		i = j;
	}
	if (!n_groups || !k) {
		r = 0;
		goto out_free;
	}

	/* the first k distinct signatures in canonical order */
	refs = malloc(n_groups * sizeof(*refs));
	if (!refs)
		goto out_free;
	for (size_t g = 0; g < n_groups; g++) {
		refs[g].r = scratch + groups[g].r_off;
		refs[g].n = groups[g].r_n;
		refs[g].group = g;
	}
	qsort(refs, n_groups, sizeof(*refs), sig_ref_cmp);
	for (size_t g = 0; g < n_groups; g++) {
		if (g == 0 || sig_cmp(refs[g - 1].r, refs[g - 1].n, refs[g].r, refs[g].n) != 0) {
			if (ret->n_used == k)
				break;
			ret->sig_off[ret->n_used] = n_out;
			ret->sig_n[ret->n_used] = refs[g].n;
			n_out += refs[g].n;
			ret->n_used++;
		}
	}
	ret->ranges = malloc((n_out ? n_out : 1) * sizeof(*ret->ranges));
	if (!ret->ranges)
		goto out_free;
	for (size_t g = 0, s = 0; g < n_groups; g++) {
		const struct group *gr = &groups[refs[g].group];

		bool start = g == 0 ||
			     sig_cmp(refs[g - 1].r, refs[g - 1].n, refs[g].r, refs[g].n) != 0;

		if (start && g)
			s++;
		if (s == ret->n_used)
			break;
		if (start)
			memcpy(ret->ranges + ret->sig_off[s], refs[g].r, refs[g].n * sizeof(*refs[g].r));
		for (size_t m = 0; m < gr->n; m++)
			ret->slot[gr->first + m] = (int8_t)s;
	}
	r = 0;

out_free:
	free(refs);
	free(groups);
	free(scratch);
	if (r < 0)
		slot_assign_release(ret);
	return r;
}
