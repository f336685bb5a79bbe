/* Desired state -> kernel: compile, then per endpoint an element update or
 * an atomic replace; endpoints that went away lose their table. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mseg/util/clock.h"
#include "mseg/kernel/nft.h"
#include "mseg/kernel/reconcile.h"
#include "mseg/model/selector.h"
#include "mseg/compile/render_text.h"

#define RECONCILE_MAX_EVENTS 256

struct ep_state {
	char *id;
	char *name, *nsname;
	char *netns_path;
	struct netns *ns;
	struct mseg_ep_plan desired;  /* last compiled; entries owned */
	struct mseg_ep_plan kernel;   /* what the kernel holds (valid if in_kernel) */
	bool in_kernel;
	bool peer;            /* no netns: only a peer of others' rules */
	bool seen;                    /* in the current apply's plan */
	char *error;
};

struct reconciler {
	struct table_opts topts;
	struct compile_opts copts;
	struct ep_state **eps;        /* sorted by id */
	size_t n, cap;
	char **names;                 /* "ns/name" per policy of the last compile */
	size_t n_names;
	struct reconcile_stats stats;
	char *events[RECONCILE_MAX_EVENTS];
	size_t n_events;
	size_t dropped_events;
};

static void rec_event(struct reconciler *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rec_event(struct reconciler *r, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (r->n_events >= RECONCILE_MAX_EVENTS) {
		r->dropped_events++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s)
		r->events[r->n_events++] = s;
}

static void rec_events_clear(struct reconciler *r)
{
	for (size_t i = 0; i < r->n_events; i++)
		free(r->events[i]);
	r->n_events = 0;
	r->dropped_events = 0;
}

static void dir_plan_release(struct mseg_ep_plan *p)
{
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		free(p->dir[d].entries);
		p->dir[d].entries = NULL;
		p->dir[d].n_entries = 0;
		p->dir[d].isolated = false;
	}
	p->ep = NULL;
}

/* A copy that does not point into the compiled plan or the inventory. */
static int ep_plan_copy(struct mseg_ep_plan *dst, const struct mseg_ep_plan *src)
{
	struct mseg_ep_plan c = { .ep = NULL };

	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		c.dir[d] = src->dir[d];
		c.dir[d].entries = NULL;
		if (src->dir[d].n_entries) {
			c.dir[d].entries = malloc(src->dir[d].n_entries * sizeof(struct mseg_entry));
			if (!c.dir[d].entries) {
				dir_plan_release(&c);
				return -ENOMEM;
			}
			memcpy(c.dir[d].entries, src->dir[d].entries,
			       src->dir[d].n_entries * sizeof(struct mseg_entry));
		}
	}
	dir_plan_release(dst);
	*dst = c;
	return 0;
}

static struct ep_state *ep_state_free(struct ep_state *s)
{
	if (!s)
		return NULL;
	netns_free(s->ns);
	dir_plan_release(&s->desired);
	dir_plan_release(&s->kernel);
	free(s->id);
	free(s->name);
	free(s->nsname);
	free(s->netns_path);
	free(s->error);
	free(s);
	return NULL;
}

static int ep_state_set_names(struct ep_state *s, const struct mseg_endpoint *ep)
{
	const char *name = ep->name ? ep->name : ep->id;
	const char *ns = selector_ns_name(ep->ns);

	if (!s->name || strcmp(s->name, name) != 0) {
		free(s->name);
		s->name = strdup(name);
	}
	if (!s->nsname || strcmp(s->nsname, ns) != 0) {
		free(s->nsname);
		s->nsname = strdup(ns);
	}
	return s->name && s->nsname ? 0 : -ENOMEM;
}

static void ep_state_set_error(struct ep_state *s, const char *msg)
{
	free(s->error);
	s->error = msg ? strdup(msg) : NULL;
}

struct reconciler *reconciler_new(const struct table_opts *topts,
				  const struct compile_opts *copts)
{
	struct reconciler *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->topts = *topts;
	r->copts = *copts;
	return r;
}

static void rec_names_release(struct reconciler *r)
{
	for (size_t i = 0; i < r->n_names; i++)
		free(r->names[i]);
	free(r->names);
	r->names = NULL;
	r->n_names = 0;
}

struct reconciler *reconciler_free(struct reconciler *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n; i++)
		ep_state_free(r->eps[i]);
	free(r->eps);
	rec_names_release(r);
	rec_events_clear(r);
	free(r);
	return NULL;
}

static ssize_t rec_find(const struct reconciler *r, const char *id, size_t *ret_pos)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(r->eps[mid]->id, id);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_pos = lo;
	return -1;
}

static struct ep_state *rec_get(struct reconciler *r, const char *id)
{
	size_t pos = 0;
	ssize_t i = rec_find(r, id, &pos);
	struct ep_state *s;

	if (i >= 0)
		return r->eps[i];
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct ep_state **v = realloc(r->eps, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->eps = v;
		r->cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = strdup(id);
	if (!s->id) {
		free(s);
		return NULL;
	}
	memmove(r->eps + pos + 1, r->eps + pos, (r->n - pos) * sizeof(*r->eps));
	r->eps[pos] = s;
	r->n++;
	return s;
}

static int rec_names_build(struct reconciler *r, const struct mseg_policy_set *pols)
{
	rec_names_release(r);
	if (!pols->n)
		return 0;
	r->names = calloc(pols->n, sizeof(*r->names));
	if (!r->names)
		return -ENOMEM;
	for (size_t i = 0; i < pols->n; i++) {
		if (asprintf(&r->names[i], "%s/%s", pols->items[i]->ns, pols->items[i]->name) < 0) {
			r->n_names = i;
			return -ENOMEM;
		}
	}
	r->n_names = pols->n;
	return 0;
}

/* Account what one call sent to a namespace. */
static void rec_account(struct reconciler *r, const struct nft_stats *before,
			const struct nft_stats *after)
{
	r->stats.elements_added += after->elems_added - before->elems_added;
	r->stats.elements_deleted += after->elems_deleted - before->elems_deleted;
}

/* Make sure s->ns is open on the endpoint's current netns path. */
static int ep_state_open(struct reconciler *r, struct ep_state *s, const char *path,
			 struct mseg_err *err)
{
	int ret;

	if (s->ns && s->netns_path && strcmp(s->netns_path, path) == 0)
		return 0;
	if (s->ns) {
		/* the endpoint moved: its old namespace no longer gets rules */
		if (s->in_kernel && ep_table_delete(s->ns, NULL) == 0)
			r->stats.deletes++;
		s->ns = netns_free(s->ns);
		s->in_kernel = false;
	}
	free(s->netns_path);
	s->netns_path = strdup(path);
	if (!s->netns_path)
		return -ENOMEM;
	ret = netns_open(path, &s->ns);
	if (ret < 0)
		return err_setf(err, -ret, "cannot open network namespace '%s': %s", path,
				strerror(-ret));
	return 0;
}

/* Bring one endpoint's namespace to s->desired. */
static int ep_state_program(struct reconciler *r, struct ep_state *s, bool verify_first)
{
	struct mseg_err err;
	struct nft_stats before, after;
	char msg[1024];
	uint64_t t0;
	int ret;

	err_clear(&err);
	before = *netns_stats(s->ns);
	t0 = clock_mono_ns();
	if (!s->in_kernel && verify_first) {
		struct ep_table_report rep = { 0 };

		/* a restart: adopt a table that is already exactly right */
		ret = ep_table_verify(s->ns, &s->desired, &r->topts, &rep, &err);
		if (ret == 0 && rep.in_sync) {
			ep_table_report_release(&rep);
			ret = ep_plan_copy(&s->kernel, &s->desired);
			if (ret < 0)
				return ret;
			s->in_kernel = true;
			r->stats.adopted++;
			rec_event(r, "endpoint '%s': table in sync, adopted", s->id);
			ep_state_set_error(s, NULL);
			return 0;
		}
		ep_table_report_release(&rep);
		err_clear(&err);
	}
	ret = ep_table_apply(s->ns, s->in_kernel ? &s->kernel : NULL, &s->desired, &r->topts,
			     (const char *const *)r->names, r->n_names, &err);
	after = *netns_stats(s->ns);
	r->stats.batch_ns_total += clock_mono_ns() - t0;
	rec_account(r, &before, &after);
	if (ret < 0) {
		r->stats.failures++;
		err_format(&err, msg, sizeof(msg));
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s", strerror(-ret));
		ep_state_set_error(s, msg);
		rec_event(r, "endpoint '%s': programming failed: %s", s->id, msg);
		return ret;
	}
	if (after.table_msgs != before.table_msgs) {
		r->stats.replaces++;
		rec_event(r, "endpoint '%s': replace (%llu elements, %.2f ms)", s->id,
			  (unsigned long long)(after.elems_added - before.elems_added),
			  (double)after.last_batch_ns / 1e6);
	} else if (after.batches != before.batches) {
		r->stats.updates++;
		rec_event(r, "endpoint '%s': update +%llu -%llu (%.2f ms)", s->id,
			  (unsigned long long)(after.elems_added - before.elems_added),
			  (unsigned long long)(after.elems_deleted - before.elems_deleted),
			  (double)after.last_batch_ns / 1e6);
	}
	ret = ep_plan_copy(&s->kernel, &s->desired);
	if (ret < 0) {
		s->in_kernel = false;
		return ret;
	}
	s->in_kernel = true;
	ep_state_set_error(s, NULL);
	return 0;
}

static void rec_remove(struct reconciler *r, size_t i)
{
	struct ep_state *s = r->eps[i];

	if (s->ns && s->in_kernel) {
		struct mseg_err err;
		char msg[1024];
		int ret;

		err_clear(&err);
		ret = ep_table_delete(s->ns, &err);
		if (ret == 0) {
			r->stats.deletes++;
			rec_event(r, "endpoint '%s' removed; its table is deleted", s->id);
		} else {
			rec_event(r, "endpoint '%s' removed; deleting its table failed: %s", s->id,
				  err_format(&err, msg, sizeof(msg)));
		}
	} else {
		rec_event(r, "endpoint '%s' removed", s->id);
	}
	ep_state_free(s);
	memmove(r->eps + i, r->eps + i + 1, (r->n - i - 1) * sizeof(*r->eps));
	r->n--;
}

int reconciler_apply(struct reconciler *r, const struct mseg_policy_set *pols,
		     const struct mseg_inventory *inv)
{
	struct mseg_plan *plan = NULL;
	bool failed = false;
	int ret;

	rec_events_clear(r);
	ret = compile_plan((const struct mseg_policy *const *)pols->items, pols->n,
			   (const struct mseg_endpoint *const *)inv->eps, inv->n, &r->copts, &plan);
	if (ret < 0)
		return ret;
	ret = rec_names_build(r, pols);
	if (ret < 0)
		goto out_free_plan;

	for (size_t i = 0; i < r->n; i++)
		r->eps[i]->seen = false;
	for (size_t i = 0; i < plan->n_eps; i++) {
		const struct mseg_ep_plan *p = &plan->eps[i];
		struct ep_state *s = rec_get(r, p->ep->id);
		struct mseg_err err;
		char msg[1024];
		bool fresh;

		if (!s) {
			ret = -ENOMEM;
			goto out_free_plan;
		}
		s->seen = true;
		ret = ep_state_set_names(s, p->ep);
		if (ret < 0)
			goto out_free_plan;
		ret = ep_plan_copy(&s->desired, p);
		if (ret < 0)
			goto out_free_plan;
		/* no netns (a pod of another node): a peer that other
		 * endpoints' rules select, never programmed itself */
		s->peer = !p->ep->netns;
		if (s->peer) {
			ep_state_set_error(s, NULL);
			continue;
		}
		err_clear(&err);
		fresh = !s->ns || strcmp(s->netns_path, p->ep->netns) != 0;
		ret = ep_state_open(r, s, p->ep->netns, &err);
		if (ret < 0) {
			if (ret == -ENOMEM)
				goto out_free_plan;
			err_format(&err, msg, sizeof(msg));
			ep_state_set_error(s, msg);
			rec_event(r, "endpoint '%s': %s", s->id, msg);
			r->stats.failures++;
			failed = true;
			continue;
		}
		ret = ep_state_program(r, s, fresh);
		if (ret == -ENOMEM)
			goto out_free_plan;
		if (ret < 0)
			failed = true;
	}
	for (size_t i = r->n; i-- > 0;)
		if (!r->eps[i]->seen)
			rec_remove(r, i);
	ret = failed ? -EIO : 0;

out_free_plan:
	plan_free(plan);
	return ret;
}

int reconciler_resync(struct reconciler *r, unsigned *ret_repaired)
{
	unsigned repaired = 0;
	bool failed = false;

	rec_events_clear(r);
	for (size_t i = 0; i < r->n; i++) {
		struct ep_state *s = r->eps[i];
		struct ep_table_report rep = { 0 };
		struct mseg_err err;
		char msg[1024];
		int ret;

		if (!s->ns)
			continue;
		err_clear(&err);
		if (!s->in_kernel) {
			/* a failed endpoint: try again */
			if (ep_state_program(r, s, true) < 0)
				failed = true;
			continue;
		}
		ret = ep_table_verify(s->ns, &s->desired, &r->topts, &rep, &err);
		if (ret < 0) {
			rec_event(r, "endpoint '%s': read-back failed: %s", s->id,
				  err_format(&err, msg, sizeof(msg)));
			failed = true;
			ep_table_report_release(&rep);
			continue;
		}
		if (!rep.in_sync) {
			rec_event(r, "endpoint '%s': drift found (%zu differences), repairing:\n%s",
				  s->id, rep.n_diffs, rep.text ? rep.text : "");
			s->in_kernel = false;
			if (ep_state_program(r, s, false) == 0) {
				repaired++;
				r->stats.drift_repairs++;
			} else {
				failed = true;
			}
		}
		ep_table_report_release(&rep);
	}
	if (ret_repaired)
		*ret_repaired = repaired;
	return failed ? -EIO : 0;
}

bool reconciler_ready(const struct reconciler *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (!r->eps[i]->in_kernel && !r->eps[i]->peer)
			return false;
	return true;
}

const struct reconcile_stats *reconciler_stats(const struct reconciler *r)
{
	return &r->stats;
}

size_t reconciler_ep_count(const struct reconciler *r)
{
	return r->n;
}

ssize_t reconciler_ep_index(const struct reconciler *r, const char *id)
{
	size_t pos;

	return rec_find(r, id, &pos);
}

int reconciler_ep_status(const struct reconciler *r, size_t i, struct reconcile_ep_status *ret)
{
	const struct ep_state *s;

	if (i >= r->n)
		return -ENOENT;
	s = r->eps[i];
	memset(ret, 0, sizeof(*ret));
	ret->id = s->id;
	ret->netns = s->netns_path;
	ret->name = s->name;
	ret->ns = s->nsname;
	ret->programmed = s->in_kernel;
	ret->peer = s->peer;
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		ret->isolated[d] = s->desired.dir[d].isolated;
		ret->mode[d] = s->desired.dir[d].mode;
		ret->n_entries[d] = s->desired.dir[d].n_entries;
	}
	ret->error = s->error;
	return 0;
}

struct netns *reconciler_ep_netns(const struct reconciler *r, size_t i)
{
	return i < r->n ? r->eps[i]->ns : NULL;
}

size_t reconciler_event_count(const struct reconciler *r)
{
	return r->n_events;
}

const char *reconciler_event(const struct reconciler *r, size_t i)
{
	return i < r->n_events ? r->events[i] : NULL;
}

int reconciler_ep_verify(struct reconciler *r, size_t i, struct ep_table_report *rep,
			 struct mseg_err *err)
{
	struct ep_state *s;

	if (i >= r->n)
		return -ENOENT;
	s = r->eps[i];
	if (!s->ns)
		return err_setf(err, ENXIO, "endpoint '%s': network namespace not open", s->id);
	return ep_table_verify(s->ns, &s->desired, &r->topts, rep, err);
}

int reconciler_ep_render(const struct reconciler *r, size_t i, char **ret_text)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (i >= r->n)
		return -ENOENT;
	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	ret = render_text_table(f, &r->eps[i]->desired, &r->topts);
	if (fclose(f) != 0 && ret == 0)
		ret = -ENOMEM;
	if (ret < 0) {
		free(buf);
		return ret;
	}
	*ret_text = buf;
	return 0;
}

int reconciler_ep_counters(struct reconciler *r, size_t i, struct ep_table_counters *ret,
			   struct mseg_err *err)
{
	if (i >= r->n)
		return -ENOENT;
	if (!r->eps[i]->ns)
		return err_setf(err, ENXIO, "endpoint '%s': network namespace not open", r->eps[i]->id);
	return ep_table_counters_read(r->eps[i]->ns, ret, err);
}

const struct compile_opts *reconciler_compile_opts(const struct reconciler *r)
{
	return &r->copts;
}

const struct table_opts *reconciler_table_opts(const struct reconciler *r)
{
	return &r->topts;
}
