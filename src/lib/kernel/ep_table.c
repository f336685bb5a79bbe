/* ep_table: program an endpoint's table: replace (one batch for the whole
 * table), update (one batch of element deletes and adds, worked out from
 * what changed only: ep_diff.h), delete. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/kernel/nft.h"
#include "mseg/model/addr.h"
#include "kernel/batch.h"
#include "kernel/ep_diff.h"
#include "kernel/ep_shape.h"
#include "kernel/netns.h"
#include "kernel/render_nl.h"

void ep_shape_of(struct ep_shape *s, const struct mseg_ep_plan *plan,
		 const struct table_opts *opts)
{
	memset(s, 0, sizeof(*s));
	s->known = true;
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		s->isolated[d] = plan && plan->dir[d].isolated;
		s->mode[d] = s->isolated[d] ? plan->dir[d].mode : MSEG_MODE_ENFORCE;
		s->present |= s->isolated[d];
	}
	if (s->present)
		table_opts_normalize(&s->opts, opts);
}

bool ep_shape_equal(const struct ep_shape *a, const struct ep_shape *b)
{
	if (!a->known || !b->known || a->present != b->present)
		return false;
	if (!a->present)
		return true;
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (a->isolated[d] != b->isolated[d] ||
		    (a->isolated[d] && a->mode[d] != b->mode[d]))
			return false;
	return a->opts.queue == b->opts.queue && a->opts.queue_num == b->opts.queue_num &&
	       a->opts.rate == b->opts.rate && a->opts.burst == b->opts.burst;
}

bool ep_plan_has_table(const struct mseg_ep_plan *plan)
{
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (plan && plan->dir[d].isolated)
			return true;
	return false;
}

bool ep_plan_same_structure(const struct mseg_ep_plan *a, const struct mseg_ep_plan *b)
{
	struct ep_shape sa, sb;

	ep_shape_of(&sa, a, NULL);
	ep_shape_of(&sb, b, NULL);
	return ep_shape_equal(&sa, &sb);
}

int ep_table_replace(struct netns *ns, const struct mseg_ep_plan *plan,
		     const struct table_opts *opts, const char *const *policy_names,
		     size_t n_policy_names, struct mseg_err *err)
{
	struct nl_batch *b = nl_batch_new(ns);
	int r;

	if (!b)
		return err_setf(err, ENOMEM, "out of memory");
	if (ep_plan_has_table(plan))
		r = render_nl_table_replace(b, plan, opts);
	else
		r = render_nl_table_remove(b);
	if (r < 0) {
		err_setf(err, -r, "netns %s: building the table: %s", netns_path(ns), strerror(-r));
		goto out_free;
	}
	r = nl_batch_commit(ns, b, policy_names, n_policy_names, err);
	if (r == 0)
		ep_shape_of(&ns->programmed, plan, opts);
out_free:
	nl_batch_free(b);
	return r;
}

int ep_table_delete(struct netns *ns, struct mseg_err *err)
{
	return ep_table_replace(ns, NULL, NULL, NULL, 0, err);
}

/* ---- element diffs ---- */

void ep_dir_diff_release(struct ep_dir_diff *dd)
{
	free(dd->del);
	free(dd->add);
	for (size_t i = 0; i < sizeof(dd->img) / sizeof(dd->img[0]); i++)
		nl_parts_release(&dd->img[i]);
	memset(dd, 0, sizeof(*dd));
}

/* The changes of set @k between the images @po and @pn (each set sorted),
 * appended to del/add, with the set index in kdel/kadd unless those are
 * NULL. */
static void parts_merge(const struct nl_parts *po, const struct nl_parts *pn, size_t k,
			const struct mseg_entry **del, uint8_t *kdel, size_t *n_del,
			const struct mseg_entry **add, uint8_t *kadd, size_t *n_add)
{
	const struct mseg_entry *const *o = po->v + po->off[k], *const *n = pn->v + pn->off[k];
	size_t no = po->off[k + 1] - po->off[k], nn = pn->off[k + 1] - pn->off[k];
	size_t i = 0, j = 0;

	while (i < no || j < nn) {
		int c = i == no ? 1 : j == nn ? -1 : addr_entry_cmp(o[i], n[j]);

		if (c < 0) {
			if (kdel)
				kdel[*n_del] = (uint8_t)k;
			del[(*n_del)++] = o[i++];
		} else if (c > 0) {
			if (kadd)
				kadd[*n_add] = (uint8_t)k;
			add[(*n_add)++] = n[j++];
		} else {
			i++;
			j++;
		}
	}
}

/* The reference: both plans' element images, each set sorted, merged. */
static int dir_diff_full(struct ep_dir_diff *dd, const struct mseg_dir_plan *old_dir,
			 const struct mseg_dir_plan *new_dir)
{
	struct nl_parts *po = &dd->img[0], *pn = &dd->img[1];
	size_t n_del = 0, n_add = 0;
	int r;

	r = nl_parts_build(po, old_dir);
	if (r == 0)
		r = nl_parts_build(pn, new_dir);
	if (r < 0)
		return r;
	nl_parts_sort(po);
	nl_parts_sort(pn);
	dd->del = malloc((po->off[NL_SETS_PER_DIR] ? po->off[NL_SETS_PER_DIR] : 1) *
			 sizeof(*dd->del));
	dd->add = malloc((pn->off[NL_SETS_PER_DIR] ? pn->off[NL_SETS_PER_DIR] : 1) *
			 sizeof(*dd->add));
	if (!dd->del || !dd->add)
		return -ENOMEM;
	for (size_t k = 0; k < NL_SETS_PER_DIR; k++) {
		dd->del_off[k] = n_del;
		dd->add_off[k] = n_add;
		parts_merge(po, pn, k, dd->del, NULL, &n_del, dd->add, NULL, &n_add);
	}
	dd->del_off[NL_SETS_PER_DIR] = n_del;
	dd->add_off[NL_SETS_PER_DIR] = n_add;
	return 0;
}

/* Entries compared a block at a time first: provenance is nearly always
 * the same as well, and one memcmp() of a block is much cheaper than a
 * compare per entry. */
#define DIFF_BLOCK 64

/* Same box (provenance ignored). The memcmp() covers every box field;
 * bytes it sees that the box does not use (padding, an IPv4 address's
 * unused bytes) may differ, which addr_entry_cmp() then settles. */
static bool entry_same(const struct mseg_entry *a, const struct mseg_entry *b)
{
	return memcmp(a, b, offsetof(struct mseg_entry, policy)) == 0 || addr_entry_cmp(a, b) == 0;
}

/* How many entries @a and @b have in common from the start (at most @n). */
static size_t common_head(const struct mseg_entry *a, const struct mseg_entry *b, size_t n)
{
	size_t i = 0;

	while (n - i >= DIFF_BLOCK && memcmp(a + i, b + i, DIFF_BLOCK * sizeof(*a)) == 0)
		i += DIFF_BLOCK;
	while (i < n && entry_same(&a[i], &b[i]))
		i++;
	return i;
}

/* ... and from the end: a[na - k ..] against b[nb - k ..] (at most @n). */
static size_t common_tail(const struct mseg_entry *a, size_t na, const struct mseg_entry *b,
			  size_t nb, size_t n)
{
	size_t k = 0;

	while (n - k >= DIFF_BLOCK && memcmp(a + na - k - DIFF_BLOCK, b + nb - k - DIFF_BLOCK,
					     DIFF_BLOCK * sizeof(*a)) == 0)
		k += DIFF_BLOCK;
	while (k < n && entry_same(&a[na - 1 - k], &b[nb - 1 - k]))
		k++;
	return k;
}

static bool run_ascending(const struct mseg_entry *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (addr_entry_cmp(&v[i - 1], &v[i]) >= 0)
			return false;
	return true;
}

/* @v[0..n) (set @k[i] each) grouped by set into *ret (malloc'd), offsets
 * into @off; the order within a set is kept. */
static int diff_group(const struct mseg_entry **v, const uint8_t *k, size_t n,
		      const struct mseg_entry ***ret, size_t *off)
{
	size_t count[NL_SETS_PER_DIR] = { 0 }, pos[NL_SETS_PER_DIR];
	const struct mseg_entry **out = malloc((n ? n : 1) * sizeof(*out));

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		count[k[i]]++;
	off[0] = 0;
	for (size_t s = 0; s < NL_SETS_PER_DIR; s++) {
		off[s + 1] = off[s] + count[s];
		pos[s] = off[s];
	}
	for (size_t i = 0; i < n; i++)
		out[pos[k[i]]++] = v[i];
	*ret = out;
	return 0;
}

/* Set indexes of the span's entries; a range entry of family f marks
 * @ranges[f] (its set is decided by the images, not by the entry alone). */
static int span_sets(const struct mseg_entry **v, size_t n, uint8_t *k, bool ranges[2])
{
	for (size_t i = 0; i < n; i++) {
		const struct mseg_entry *e = v[i];
		enum entry_shape shape = entry_shape(e);
		int s = e->hi.family == e->lo.family ? nl_set_index(e->lo.family, shape) : -1;

		if (s < 0)
			return -EINVAL;
		k[i] = (uint8_t)s;
		if (shape == SHAPE_PORT_IV)
			ranges[e->lo.family == AF_INET6] = true;
	}
	return 0;
}

/* Drop the range entries of the families in @ranges from v/k. */
static size_t drop_ranges(const struct mseg_entry **v, uint8_t *k, size_t n, const bool ranges[2])
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		if (entry_shape(v[i]) == SHAPE_PORT_IV && ranges[v[i]->lo.family == AF_INET6])
			continue;
		v[m] = v[i];
		k[m++] = k[i];
	}
	return m;
}

/* Same address range and protocol: entries of one (address, protocol)
 * group are adjacent (addr_entry_cmp() order). */
static bool same_key(const struct mseg_entry *a, const struct mseg_entry *b)
{
	return a->lo.family == b->lo.family && a->proto == b->proto &&
	       memcmp(a->lo.bytes, b->lo.bytes, sizeof(a->lo.bytes)) == 0 &&
	       memcmp(a->hi.bytes, b->hi.bytes, sizeof(a->hi.bytes)) == 0;
}

/* The images of @family's range and slot sets to diff, old into @po and
 * new into @pn, when the span between the common @head and @tail holds a
 * range entry of that family. When both directions choose the same slot
 * signatures (slots_choose(): one pass, no copy), only the groups the span
 * touches can change place: the span widened to whole (address,
 * protocol) groups, placed by that choice. Otherwise the whole images. */
static int ranges_images(struct nl_parts *po, struct nl_parts *pn,
			 const struct mseg_dir_plan *old_dir, const struct mseg_dir_plan *new_dir,
			 size_t head, size_t tail, int family)
{
	const struct mseg_entry *o = old_dir->entries, *n = new_dir->entries;
	size_t no = old_dir->n_entries, nn = new_dir->n_entries;
	size_t s0 = head, eo = no - tail, en = nn - tail;
	struct slot_assign co, cn;
	struct mseg_dir_plan so = *old_dir, sn = *new_dir;
	int r;

	r = slots_choose(o, no, family, NL_SLOTS, &co);
	if (r < 0)
		return r;
	r = slots_choose(n, nn, family, NL_SLOTS, &cn);
	if (r < 0) {
		slot_assign_release(&co);
		return r;
	}
	if (!slots_same_choice(&co, &cn)) {
		slot_assign_release(&co);
		slot_assign_release(&cn);
		r = nl_parts_build_ranges(po, old_dir, family, NULL);
		return r < 0 ? r : nl_parts_build_ranges(pn, new_dir, family, NULL);
	}
	/* the head and tail are common: widen both spans alike */
	while (s0 > 0 && ((s0 < eo && same_key(&o[s0 - 1], &o[s0])) ||
			  (s0 < en && same_key(&o[s0 - 1], &n[s0]))))
		s0--;
	while (eo < no && ((eo > s0 && same_key(&o[eo - 1], &o[eo])) ||
			   (en > s0 && same_key(&n[en - 1], &o[eo])))) {
		eo++;
		en++;
	}
	so.entries = old_dir->entries + s0;
	so.n_entries = eo - s0;
	sn.entries = new_dir->entries + s0;
	sn.n_entries = en - s0;
	r = nl_parts_build_ranges(po, &so, family, &co);
	if (r == 0)
		r = nl_parts_build_ranges(pn, &sn, family, &co);
	slot_assign_release(&co);
	slot_assign_release(&cn);
	return r;
}

/* Only the span between the common head and tail is looked at entry by
 * entry. Distinct entries make this exact: an entry of the old span that
 * is not in the new span cannot be in the new head or tail either (they
 * are the old head and tail, which hold it at most once: in the span).
 * Where the span holds a range entry, the family's range and slot sets
 * are diffed from their whole images (a slot's members and signature
 * depend on other entries than the changed ones). -EAGAIN when a span is
 * not in order. */
static int dir_diff_fast(struct ep_dir_diff *dd, const struct mseg_dir_plan *old_dir,
			 const struct mseg_dir_plan *new_dir)
{
	const struct mseg_entry *o = old_dir->entries, *n = new_dir->entries;
	size_t no = old_dir->n_entries, nn = new_dir->n_entries;
	size_t least = no < nn ? no : nn, head, tail, i = 0, j = 0, n_del = 0, n_add = 0;
	size_t cap_del, cap_add;
	const struct mseg_entry **del = NULL, **add = NULL;
	uint8_t *kdel = NULL, *kadd = NULL;
	bool ranges[2] = { false, false };
	int r;

	if (o == n && no == nn)
		return 0;   /* the array the kernel holds: untouched */
	head = common_head(o, n, least);
	tail = common_tail(o, no, n, nn, least - head);
	o += head;
	n += head;
	no -= head + tail;
	nn -= head + tail;
	if (!run_ascending(o, no) || !run_ascending(n, nn))
		return -EAGAIN;
	del = malloc((no ? no : 1) * sizeof(*del));
	add = malloc((nn ? nn : 1) * sizeof(*add));
	if (!del || !add) {
		r = -ENOMEM;
		goto out_free;
	}
	while (i < no || j < nn) {
		int c = i == no ? 1 : j == nn ? -1 : addr_entry_cmp(&o[i], &n[j]);

		if (c < 0)
			del[n_del++] = &o[i++];
		else if (c > 0)
			add[n_add++] = &n[j++];
		else {
			i++;
			j++;
		}
	}
	cap_del = n_del;
	cap_add = n_add;
	kdel = malloc(cap_del ? cap_del : 1);
	kadd = malloc(cap_add ? cap_add : 1);
	if (!kdel || !kadd) {
		r = -ENOMEM;
		goto out_free;
	}
	r = span_sets(del, n_del, kdel, ranges);
	if (r == 0)
		r = span_sets(add, n_add, kadd, ranges);
	if (r < 0)
		goto out_free;
	if (ranges[0] || ranges[1]) {
		n_del = drop_ranges(del, kdel, n_del, ranges);
		n_add = drop_ranges(add, kadd, n_add, ranges);
		for (int f = 0; f < 2 && r == 0; f++) {
			struct nl_parts *po = &dd->img[2 * f], *pn = &dd->img[2 * f + 1];
			int family = f ? AF_INET6 : AF_INET;
			size_t want_del, want_add;
			void *p;

			if (!ranges[f])
				continue;
			r = ranges_images(po, pn, old_dir, new_dir, head, tail, family);
			if (r < 0)
				break;
			nl_parts_sort(po);
			nl_parts_sort(pn);
			want_del = n_del + po->off[NL_SETS_PER_DIR];
			want_add = n_add + pn->off[NL_SETS_PER_DIR];
			if (want_del > cap_del) {
				if (!(p = realloc(del, want_del * sizeof(*del))))
					goto out_nomem;
				del = p;
				if (!(p = realloc(kdel, want_del)))
					goto out_nomem;
				kdel = p;
				cap_del = want_del;
			}
			if (want_add > cap_add) {
				if (!(p = realloc(add, want_add * sizeof(*add))))
					goto out_nomem;
				add = p;
				if (!(p = realloc(kadd, want_add)))
					goto out_nomem;
				kadd = p;
				cap_add = want_add;
			}
			parts_merge(po, pn, (size_t)nl_set_index(family, SHAPE_PORT_IV), del, kdel,
				    &n_del, add, kadd, &n_add);
			for (unsigned sl = 0; sl < NL_SLOTS; sl++)
				for (int ports = 0; ports < 2; ports++)
					parts_merge(po, pn, (size_t)nl_slot_set_index(family, sl, ports),
						    del, kdel, &n_del, add, kadd, &n_add);
		}
		if (r < 0)
			goto out_free;
	}
	r = diff_group(del, kdel, n_del, &dd->del, dd->del_off);
	if (r == 0)
		r = diff_group(add, kadd, n_add, &dd->add, dd->add_off);
	goto out_free;
out_nomem:
	r = -ENOMEM;
out_free:
	free(del);
	free(add);
	free(kdel);
	free(kadd);
	return r;
}

int ep_dir_diff_compute(struct ep_dir_diff *dd, const struct mseg_dir_plan *old_dir,
			const struct mseg_dir_plan *new_dir, enum ep_diff_method method)
{
	int r = -EAGAIN;

	memset(dd, 0, sizeof(*dd));
	if (method == EP_DIFF_FAST)
		r = dir_diff_fast(dd, old_dir, new_dir);
	if (r == -EAGAIN)
		r = dir_diff_full(dd, old_dir, new_dir);
	if (r < 0)
		ep_dir_diff_release(dd);
	return r;
}

static bool dir_diff_empty(const struct ep_dir_diff *dd)
{
	return dd->del_off[NL_SETS_PER_DIR] == 0 && dd->add_off[NL_SETS_PER_DIR] == 0;
}

int ep_table_update_with(struct netns *ns, const struct mseg_ep_plan *old_plan,
			 const struct mseg_ep_plan *new_plan, const struct table_opts *opts,
			 const char *const *policy_names, size_t n_policy_names,
			 enum ep_diff_method method, struct mseg_err *err)
{
	struct ep_dir_diff dd[MSEG_DIR_COUNT] = { 0 };
	struct ep_shape want, have;
	struct nl_batch *b = NULL;
	bool any = false;
	int r = 0;

	ep_shape_of(&want, new_plan, opts);
	ep_shape_of(&have, old_plan, opts);
	if (!ep_shape_equal(&have, &want))
		return err_setf(err, ESTALE, "netns %s: the table structure changes: replace it",
				netns_path(ns));
	if (!ep_shape_equal(&ns->programmed, &want))
		return err_setf(err, ESTALE,
				"netns %s: the table in the kernel is not known to be the old "
				"one: replace it",
				netns_path(ns));
	if (!want.present)
		return 0;

	for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++) {
		if (!want.isolated[d])
			continue;
		r = ep_dir_diff_compute(&dd[d], &old_plan->dir[d], &new_plan->dir[d], method);
		any |= r == 0 && !dir_diff_empty(&dd[d]);
	}
	if (r < 0) {
		err_setf(err, -r, "netns %s: computing the update: %s", netns_path(ns),
			 strerror(-r));
		goto out_release;
	}
	if (!any)
		goto out_release;   /* the same entries: nothing to send */
	b = nl_batch_new(ns);
	if (!b) {
		r = err_setf(err, ENOMEM, "out of memory");
		goto out_release;
	}
	/* every delete before any add: an interval that shrinks, grows or
	 * splits must be gone before its successor goes in */
	for (int pass = 0; pass < 2 && r == 0; pass++)
		for (int d = 0; d < MSEG_DIR_COUNT && r == 0; d++) {
			if (!want.isolated[d])
				continue;
			for (size_t i = 0; i < NL_SETS_PER_DIR && r == 0; i++) {
				const struct ep_dir_diff *x = &dd[d];
				struct nl_set_spec s;

				nl_set_spec_get((enum mseg_dir)d, i, &s);
				if (pass == 0)
					r = render_nl_elems(b, &s, 0, x->del + x->del_off[i],
							    x->del_off[i + 1] - x->del_off[i], true);
				else
					r = render_nl_elems(b, &s, 0, x->add + x->add_off[i],
							    x->add_off[i + 1] - x->add_off[i], false);
			}
		}
	if (r < 0) {
		err_setf(err, -r, "netns %s: building the update: %s", netns_path(ns), strerror(-r));
		goto out_release;
	}
	r = nl_batch_commit(ns, b, policy_names, n_policy_names, err);
	if (r < 0 && r != -ENOMEM)
		/* refused: the table is unchanged, but it was not what we thought
		 * (an element to delete was missing, one to add was there) */
		ns->programmed.known = false;
out_release:
	nl_batch_free(b);
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		ep_dir_diff_release(&dd[d]);
	return r;
}

int ep_table_update(struct netns *ns, const struct mseg_ep_plan *old_plan,
		    const struct mseg_ep_plan *new_plan, const struct table_opts *opts,
		    const char *const *policy_names, size_t n_policy_names,
		    struct mseg_err *err)
{
	return ep_table_update_with(ns, old_plan, new_plan, opts, policy_names, n_policy_names,
				    EP_DIFF_FAST, err);
}

int ep_table_apply(struct netns *ns, const struct mseg_ep_plan *old_plan,
		   const struct mseg_ep_plan *new_plan, const struct table_opts *opts,
		   const char *const *policy_names, size_t n_policy_names,
		   struct mseg_err *err)
{
	int r;

	if (old_plan) {
		r = ep_table_update(ns, old_plan, new_plan, opts, policy_names, n_policy_names,
				    err);
		if (r == 0 || r == -ENOMEM || r == -ENOTRECOVERABLE)
			return r;
		err_clear(err);
	}
	return ep_table_replace(ns, new_plan, opts, policy_names, n_policy_names, err);
}
