/* slots: range entries of single addresses -> port-range slots (slots.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/slots.h"

/* The range entries looked at: a list of pointers, or the entries of an
 * array that are SHAPE_PORT_IV and of one family (the others skipped). */
struct src {
	const struct mseg_entry *const *pv;
	const struct mseg_entry *raw;
	size_t n;
	int family;
};

static const struct mseg_entry *src_at(const struct src *s, size_t i)
{
	return s->pv ? s->pv[i] : &s->raw[i];
}

static bool src_takes(const struct src *s, size_t i)
{
	const struct mseg_entry *e;

	if (s->pv)
		return true;
	e = &s->raw[i];
	return e->lo.family == s->family && entry_shape(e) == SHAPE_PORT_IV;
}

static bool entry_single(const struct mseg_entry *e)
{
	return memcmp(e->lo.bytes, e->hi.bytes, sizeof(e->lo.bytes)) == 0;
}

/* Same (address, protocol): in addr_entry_cmp() order the entries of one
 * single address and protocol are adjacent. */
static bool same_group(const struct mseg_entry *a, const struct mseg_entry *b)
{
	return a->lo.family == b->lo.family && a->proto == b->proto &&
	       memcmp(a->lo.bytes, b->lo.bytes, sizeof(a->lo.bytes)) == 0 && entry_single(b);
}

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

/* A growable signature. */
struct sig {
	struct slot_range *r;
	size_t n, cap;
};

static int sig_push(struct sig *g, uint16_t lo, uint16_t hi)
{
	struct slot_range *last = g->n ? &g->r[g->n - 1] : NULL;

	if (last && (uint32_t)lo <= (uint32_t)last->hi + 1) {
		if (hi > last->hi)
			last->hi = hi;   /* touching or overlapping: one range */
		return 0;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 8;
		struct slot_range *r = realloc(g->r, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		g->r = r;
		g->cap = cap;
	}
	g->r[g->n].lo = lo;
	g->r[g->n].hi = hi;
	g->n++;
	return 0;
}

/* The group starting at @i (a taken single-address entry): its signature
 * into @g; returns the index after it. */
static size_t group_read(const struct src *s, size_t i, struct sig *g, int *ret)
{
	const struct mseg_entry *first = src_at(s, i);
	size_t j = i;

	g->n = 0;
	*ret = 0;
	for (; j < s->n; j++) {
		const struct mseg_entry *e = src_at(s, j);

		if (!same_group(first, e))
			break;
		if (!src_takes(s, j))
			continue;   /* an exact entry of the same address and protocol */
		*ret = sig_push(g, e->port_lo, e->port_hi);
		if (*ret < 0)
			break;
	}
	return j;
}

void slot_assign_release(struct slot_assign *a)
{
	free(a->slot);
	free(a->ranges);
	memset(a, 0, sizeof(*a));
}

/* The k smallest distinct signatures of @s into @ret (no slot array). */
static int choose(const struct src *s, size_t k, struct slot_assign *ret)
{
	struct sig chosen[SLOTS_MAX] = { { 0 } }, cur = { 0 };
	size_t n_chosen = 0, n_out = 0;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	if (k > SLOTS_MAX)
		k = SLOTS_MAX;
	for (size_t i = 0; i < s->n && r == 0 && k;) {
		size_t at;
		int c = 1;

		if (!src_takes(s, i) || !entry_single(src_at(s, i))) {
			i++;
			continue;
		}
		i = group_read(s, i, &cur, &r);
		if (r < 0)
			break;
		/* its place among the chosen, from the largest down (most groups
		 * share a signature: the last chosen is compared first) */
		at = n_chosen;
		while (at > 0 && (c = sig_cmp(cur.r, cur.n, chosen[at - 1].r, chosen[at - 1].n)) < 0)
			at--;
		if (at > 0 && c == 0)
			continue;   /* known */
		if (at >= k)
			continue;   /* k smaller ones already */
		if (n_chosen == k) {
			/* the largest drops out; its buffer is reused */
			struct sig drop = chosen[--n_chosen];

			memmove(chosen + at + 1, chosen + at, (n_chosen - at) * sizeof(*chosen));
			chosen[at] = drop;
		} else {
			memmove(chosen + at + 1, chosen + at, (n_chosen - at) * sizeof(*chosen));
			memset(&chosen[at], 0, sizeof(chosen[at]));
		}
		n_chosen++;
		chosen[at].n = 0;
		for (size_t m = 0; m < cur.n && r == 0; m++)
			r = sig_push(&chosen[at], cur.r[m].lo, cur.r[m].hi);
	}
	if (r == 0) {
		for (size_t j = 0; j < n_chosen; j++) {
			ret->sig_off[j] = n_out;
			ret->sig_n[j] = chosen[j].n;
			n_out += chosen[j].n;
		}
		ret->n_used = n_chosen;
		ret->ranges = malloc((n_out ? n_out : 1) * sizeof(*ret->ranges));
		if (!ret->ranges)
			r = -ENOMEM;
		for (size_t j = 0; j < n_chosen && r == 0; j++)
			memcpy(ret->ranges + ret->sig_off[j], chosen[j].r,
			       chosen[j].n * sizeof(*ret->ranges));
	}
	for (size_t j = 0; j < SLOTS_MAX; j++)
		free(chosen[j].r);
	free(cur.r);
	if (r < 0)
		slot_assign_release(ret);
	return r;
}

int slots_choose(const struct mseg_entry *v, size_t n, int family, size_t k,
		 struct slot_assign *ret)
{
	struct src s = { .raw = v, .n = n, .family = family };

	return choose(&s, k, ret);
}

bool slots_same_choice(const struct slot_assign *a, const struct slot_assign *b)
{
	if (a->n_used != b->n_used)
		return false;
	for (size_t j = 0; j < a->n_used; j++)
		if (sig_cmp(a->ranges + a->sig_off[j], a->sig_n[j], b->ranges + b->sig_off[j],
			    b->sig_n[j]) != 0)
			return false;
	return true;
}

int slots_assign_with(const struct mseg_entry *const *iv, size_t n,
		      const struct slot_assign *choice, struct slot_assign *ret)
{
	struct src s = { .pv = iv, .n = n };
	struct sig cur = { 0 };
	size_t n_out = 0;
	int r = -ENOMEM, hint = -1;

	memset(ret, 0, sizeof(*ret));
	for (size_t j = 0; j < choice->n_used; j++)
		n_out += choice->sig_n[j];
	ret->slot = malloc(n ? n : 1);
	ret->ranges = malloc((n_out ? n_out : 1) * sizeof(*ret->ranges));
	if (!ret->slot || !ret->ranges)
		goto out_free;
	memset(ret->slot, -1, n);
	memcpy(ret->ranges, choice->ranges, n_out * sizeof(*ret->ranges));
	memcpy(ret->sig_off, choice->sig_off, sizeof(ret->sig_off));
	memcpy(ret->sig_n, choice->sig_n, sizeof(ret->sig_n));
	ret->n_used = choice->n_used;
	r = 0;
	for (size_t i = 0; i < n && ret->n_used;) {
		size_t end;
		int slot = -1;

		if (!entry_single(iv[i])) {
			i++;
			continue;
		}
		end = group_read(&s, i, &cur, &r);
		if (r < 0)
			break;
		/* its signature among the chosen (most often the last found) */
		if (hint >= 0 && sig_cmp(cur.r, cur.n, choice->ranges + choice->sig_off[hint],
					 choice->sig_n[hint]) == 0)
			slot = hint;
		for (size_t j = 0; j < choice->n_used && slot < 0; j++)
			if (sig_cmp(cur.r, cur.n, choice->ranges + choice->sig_off[j],
				    choice->sig_n[j]) == 0)
				slot = (int)j;
		if (slot >= 0) {
			memset(ret->slot + i, slot, end - i);
			hint = slot;
		}
		i = end;
	}

out_free:
	free(cur.r);
	if (r < 0)
		slot_assign_release(ret);
	return r;
}

int slots_assign(const struct mseg_entry *const *iv, size_t n, size_t k,
		 struct slot_assign *ret)
{
	struct src s = { .pv = iv, .n = n };
	struct slot_assign choice;
	int r;

	r = choose(&s, k, &choice);
	if (r == 0)
		r = slots_assign_with(iv, n, &choice, ret);
	slot_assign_release(&choice);
	return r;
}
