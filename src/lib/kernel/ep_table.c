/* ep_table: program an endpoint's table: replace (one batch for the whole
 * table), update (one batch of element deletes and adds), delete. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/kernel/nft.h"
#include "kernel/batch.h"
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

/* What changes in one set: entries only in old (delete) and only in new
 * (add), by a merge of the sorted groups. */
struct set_diff {
	const struct mseg_entry **del, **add;
	size_t n_del, n_add;
};

static int set_diff_compute(struct set_diff *sd, const struct mseg_entry *const *old,
			    size_t n_old, const struct mseg_entry *const *new, size_t n_new)
{
	size_t i = 0, j = 0;

	sd->del = malloc((n_old ? n_old : 1) * sizeof(*sd->del));
	sd->add = malloc((n_new ? n_new : 1) * sizeof(*sd->add));
	if (!sd->del || !sd->add)
		return -ENOMEM;
	while (i < n_old || j < n_new) {
		int c = i == n_old ? 1 : j == n_new ? -1 : addr_entry_cmp(old[i], new[j]);

		if (c < 0)
			sd->del[sd->n_del++] = old[i++];
		else if (c > 0)
			sd->add[sd->n_add++] = new[j++];
		else {
			i++;
			j++;
		}
	}
	return 0;
}

int ep_table_update(struct netns *ns, const struct mseg_ep_plan *old_plan,
		    const struct mseg_ep_plan *new_plan, const struct table_opts *opts,
		    const char *const *policy_names, size_t n_policy_names,
		    struct mseg_err *err)
{
	struct set_diff sd[MSEG_DIR_COUNT][NL_SETS_PER_DIR] = { 0 };
	struct nl_parts po[MSEG_DIR_COUNT] = { 0 }, pn[MSEG_DIR_COUNT] = { 0 };
	struct ep_shape want, have;
	struct nl_batch *b = NULL;
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
		r = nl_parts_build(&po[d], &old_plan->dir[d]);
		if (r == 0)
			r = nl_parts_build(&pn[d], &new_plan->dir[d]);
		if (r < 0)
			break;
		nl_parts_sort(&po[d]);
		nl_parts_sort(&pn[d]);
		for (size_t i = 0; i < NL_SETS_PER_DIR && r == 0; i++)
			r = set_diff_compute(&sd[d][i], po[d].v + po[d].off[i],
					     po[d].off[i + 1] - po[d].off[i], pn[d].v + pn[d].off[i],
					     pn[d].off[i + 1] - pn[d].off[i]);
	}
	if (r < 0) {
		err_setf(err, -r, "netns %s: computing the update: %s", netns_path(ns),
			 strerror(-r));
		goto out_release;
	}
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
				struct set_diff *x = &sd[d][i];
				struct nl_set_spec s;

				nl_set_spec_get((enum mseg_dir)d, i, &s);
				if (pass == 0)
					r = render_nl_elems(b, &s, 0, x->del, x->n_del, true);
				else
					r = render_nl_elems(b, &s, 0, x->add, x->n_add, false);
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
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		nl_parts_release(&po[d]);
		nl_parts_release(&pn[d]);
		for (size_t i = 0; i < NL_SETS_PER_DIR; i++) {
			free(sd[d][i].del);
			free(sd[d][i].add);
		}
	}
	return r;
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
