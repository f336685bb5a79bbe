/* Desired state -> kernel: compile, then per endpoint an element update or
 * an atomic replace; endpoints that went away lose their table. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "mseg/util/clock.h"
#include "mseg/compile/cache.h"
#include "mseg/compile/check.h"
#include "mseg/kernel/conntrack.h"
#include "mseg/kernel/nft.h"
#include "mseg/kernel/reconcile.h"
#include "mseg/kernel/table_text.h"
#include "mseg/model/addr.h"
#include "mseg/model/selector.h"
#include "kernel/ep_diff.h"

#define RECONCILE_MAX_EVENTS 256

struct ep_state {
	char *id;
	char *name, *nsname;
	char *netns_path;
	struct netns *ns;
	struct mseg_ep_plan desired;  /* last compiled; entries owned */
	struct mseg_ep_plan kernel;   /* what the kernel holds (valid if in_kernel) */
	/* the endpoint's addresses when its table was last programmed: after
	 * an address change, connections on a removed one are still its own
	 * for the revocation walk */
	struct mseg_addr *ips;
	size_t n_ips;
	bool in_kernel;
	bool seen;                    /* in the current apply's plan */
	char *error;
	/* between the endpoint's batch and its conntrack walk, which comes
	 * after every namespace's batch (reconciler_apply): the plan the
	 * kernel held before (s->ips are still the addresses of then), which
	 * directions lost allows, and the endpoint in the plan being applied */
	bool revoke_pending;
	bool revoke_lost[MSEG_DIR_COUNT];
	struct mseg_ep_plan revoke_old;
	const struct mseg_endpoint *revoke_ep;
};

struct reconciler {
	struct table_opts topts;
	struct compile_opts copts;
	struct compile_cache *cache;  /* groups of the last compile (compile/cache.h) */
	struct ep_state **eps;        /* sorted by id */
	size_t n, cap;
	char **names;                 /* "ns/name" per policy of the last compile */
	enum mseg_revoke *names_revoke; /* ... and its spec.revoke */
	size_t n_names;
	enum mseg_revoke revoke;      /* msegd --revoke (never INHERIT) */
	/* during reconciler_apply: the policies being applied, and per policy
	 * of the previous compile (what old entries' provenance indexes) the
	 * revoke setting now in force for connections it had admitted */
	const struct mseg_policy_set *pols;
	enum mseg_revoke *old_revoke;
	size_t n_old_revoke;
	struct reconcile_stats stats;
	uint64_t last_ack_ns;         /* clock_mono_ns() after the last batch */
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

/* Entry arrays are shared and counted. compile_plan() gives every endpoint
 * of a group the same array, and after programming what the kernel holds
 * is what we wanted: a copy per endpoint and per state (desired, kernel)
 * made msegd's memory grow with endpoints x peers (1,000 endpoints of 10
 * groups: 90 KiB each). Now there is one copy per distinct array of the
 * last compile (and of an older one while an endpoint still holds it). */
struct entries_buf {
	size_t refs;
	struct mseg_entry e[];
};

static struct entries_buf *entries_buf_of(struct mseg_entry *e)
{
	return (struct entries_buf *)((char *)e - offsetof(struct entries_buf, e));
}

static struct mseg_entry *entries_ref(struct mseg_entry *e)
{
	if (e)
		entries_buf_of(e)->refs++;
	return e;
}

static void entries_unref(struct mseg_entry *e)
{
	struct entries_buf *b;

	if (!e)
		return;
	b = entries_buf_of(e);
	if (--b->refs == 0)
		free(b);
}

/* One shared copy per array of a compiled plan, for the length of one
 * reconciler_apply(): plan array -> our copy (holding one reference). */
struct entries_map {
	const struct mseg_entry **from;
	struct mseg_entry **to;
	size_t cap;                   /* a power of two */
	size_t n;
};

/* Sized for @n_arrays, and grown as arrays come: a plan of 150,000
 * endpoints of which 110 have a table has a few hundred arrays. */
static int entries_map_init(struct entries_map *m, size_t n_arrays)
{
	m->cap = 16;
	while (m->cap < 2 * n_arrays)
		m->cap *= 2;
	m->n = 0;
	m->from = calloc(m->cap, sizeof(*m->from));
	m->to = calloc(m->cap, sizeof(*m->to));
	return m->from && m->to ? 0 : -ENOMEM;
}

static size_t entries_map_slot(const struct entries_map *m, const struct mseg_entry *src)
{
	size_t i = ((uintptr_t)src / sizeof(*src) * 0x9E3779B97F4A7C15ull) & (m->cap - 1);

	while (m->from[i] && m->from[i] != src)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* Twice the room, the pairs moved over. -ENOMEM (the map unchanged). */
static int entries_map_grow(struct entries_map *m)
{
	struct entries_map g = { .cap = m->cap * 2, .n = m->n };

	g.from = calloc(g.cap, sizeof(*g.from));
	g.to = calloc(g.cap, sizeof(*g.to));
	if (!g.from || !g.to) {
		free(g.from);
		free(g.to);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t k;

		if (!m->from[i])
			continue;
		k = entries_map_slot(&g, m->from[i]);
		g.from[k] = m->from[i];
		g.to[k] = m->to[i];
	}
	free(m->from);
	free(m->to);
	*m = g;
	return 0;
}

static void entries_map_release(struct entries_map *m)
{
	for (size_t i = 0; m->to && i < m->cap; i++)
		entries_unref(m->to[i]);
	free(m->from);
	free(m->to);
	memset(m, 0, sizeof(*m));
}

/* Our copy of @src (@n > 0 entries), made on first sight; not referenced
 * for the caller. NULL: out of memory. When @prev (@n_prev entries, ours:
 * what the endpoint that first sees @src had before) holds exactly the
 * same entries, provenance included, it is @prev itself: a direction the
 * change did not touch keeps the very array the kernel was programmed
 * from, and the element update skips it without comparing an entry. Equal
 * nonzero compile cache ids (@src_id, @prev_id) say so without comparing. */
static struct mseg_entry *entries_map_get(struct entries_map *m, const struct mseg_entry *src,
					  size_t n, uint64_t src_id, struct mseg_entry *prev,
					  size_t n_prev, uint64_t prev_id)
{
	struct entries_buf *b;
	size_t i = entries_map_slot(m, src);

	if (m->from[i])
		return m->to[i];
	if (2 * (m->n + 1) > m->cap) {
		if (entries_map_grow(m) < 0)
			return NULL;
		i = entries_map_slot(m, src);
	}
	m->n++;
	if (prev && n_prev == n &&
	    ((src_id && src_id == prev_id) || memcmp(prev, src, n * sizeof(*src)) == 0)) {
		m->from[i] = src;
		m->to[i] = entries_ref(prev);
		return prev;
	}
	b = malloc(sizeof(*b) + n * sizeof(*src));
	if (!b)
		return NULL;
	b->refs = 1;
	memcpy(b->e, src, n * sizeof(*src));
	m->from[i] = src;
	m->to[i] = b->e;
	return b->e;
}

static void dir_plan_release(struct mseg_ep_plan *p)
{
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		entries_unref(p->dir[d].entries);
		p->dir[d].entries = NULL;
		p->dir[d].n_entries = 0;
		p->dir[d].isolated = false;
	}
	p->ep = NULL;
}

/* @dst becomes what @src is, sharing its entries (both are ours). */
static void ep_plan_share(struct mseg_ep_plan *dst, const struct mseg_ep_plan *src)
{
	struct mseg_ep_plan c = { .ep = NULL };

	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		c.dir[d] = src->dir[d];
		c.dir[d].entries = entries_ref(src->dir[d].entries);
	}
	dir_plan_release(dst);
	*dst = c;
}

/* @dst becomes the compiled @src, with entries that do not point into the
 * compiled plan (it is freed after the apply). */
static int ep_plan_from_compiled(struct mseg_ep_plan *dst, const struct mseg_ep_plan *src,
				 struct entries_map *m)
{
	struct mseg_ep_plan c = { .ep = NULL };

	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		c.dir[d] = src->dir[d];
		c.dir[d].entries = NULL;
		if (src->dir[d].n_entries) {
			c.dir[d].entries = entries_map_get(m, src->dir[d].entries,
							   src->dir[d].n_entries,
							   src->dir[d].entries_id,
							   dst->dir[d].entries,
							   dst->dir[d].n_entries,
							   dst->dir[d].entries_id);
			if (!c.dir[d].entries) {
				dir_plan_release(&c);
				return -ENOMEM;
			}
			entries_ref(c.dir[d].entries);
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
	dir_plan_release(&s->revoke_old);
	free(s->id);
	free(s->name);
	free(s->nsname);
	free(s->netns_path);
	free(s->error);
	free(s->ips);
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

/* Remember @ep's addresses as those its table was programmed for. Out of
 * memory keeps the previous ones (a later walk then misses only the
 * connections of an address removed meanwhile). */
static void ep_state_set_ips(struct ep_state *s, const struct mseg_endpoint *ep)
{
	struct mseg_addr *v = NULL;

	if (ep->n_ips) {
		v = malloc(ep->n_ips * sizeof(*v));
		if (!v)
			return;
		memcpy(v, ep->ips, ep->n_ips * sizeof(*v));
	}
	free(s->ips);
	s->ips = v;
	s->n_ips = ep->n_ips;
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
	r->revoke = MSEG_REVOKE_ESTABLISHED;
	r->cache = compile_cache_new();
	if (!r->cache) {
		free(r);
		return NULL;
	}
	return r;
}

void reconciler_cache_clear(struct reconciler *r)
{
	compile_cache_clear(r->cache);
}

const struct compile_cache_stats *reconciler_cache_stats(const struct reconciler *r)
{
	return compile_cache_stats(r->cache);
}

void reconciler_set_cluster(struct reconciler *r, const struct mseg_addr *node_addrs,
			    size_t n_node_addrs, const struct mseg_svc_route *routes,
			    size_t n_routes)
{
	r->copts.node_addrs = node_addrs;
	r->copts.n_node_addrs = n_node_addrs;
	r->copts.svc_routes = routes;
	r->copts.n_svc_routes = n_routes;
}

void reconciler_set_revoke(struct reconciler *r, enum mseg_revoke revoke)
{
	r->revoke = revoke == MSEG_REVOKE_NEW_ONLY ? MSEG_REVOKE_NEW_ONLY : MSEG_REVOKE_ESTABLISHED;
}

static void rec_names_release(struct reconciler *r)
{
	for (size_t i = 0; i < r->n_names; i++)
		free(r->names[i]);
	free(r->names);
	free(r->names_revoke);
	r->names = NULL;
	r->names_revoke = NULL;
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
	free(r->old_revoke);
	compile_cache_free(r->cache);
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

/* The state of endpoint @id, created when new. *@hint is where the
 * previous endpoint in id order was plus one: a plan's endpoints come in
 * id order, so one compare usually finds it without a search. */
static struct ep_state *rec_get(struct reconciler *r, const char *id, size_t *hint)
{
	size_t pos = 0;
	ssize_t i;
	struct ep_state *s;

	if (*hint < r->n && strcmp(r->eps[*hint]->id, id) == 0)
		return r->eps[(*hint)++];
	i = rec_find(r, id, &pos);
	if (i >= 0) {
		*hint = (size_t)i + 1;
		return r->eps[i];
	}
	*hint = pos + 1;
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
	r->names_revoke = calloc(pols->n, sizeof(*r->names_revoke));
	if (!r->names || !r->names_revoke)
		return -ENOMEM;
	for (size_t i = 0; i < pols->n; i++) {
		r->names_revoke[i] = pols->items[i]->revoke;
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

/* A batch went to @ns since its stats were @batches_before: note the time
 * of its last ack (the batch is committed when it returns). */
static void rec_note_ack(struct reconciler *r, const struct netns *ns, uint64_t batches_before)
{
	if (netns_stats(ns)->batches != batches_before)
		r->last_ack_ns = clock_mono_ns();
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
		uint64_t batches = netns_stats(s->ns)->batches;

		if (s->in_kernel && ep_table_delete(s->ns, NULL) == 0)
			r->stats.deletes++;
		rec_note_ack(r, s->ns, batches);
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

/* ---- revocation of established connections ---- */

static enum mseg_revoke rec_revoke_of(const struct reconciler *r, enum mseg_revoke v)
{
	return v == MSEG_REVOKE_INHERIT ? r->revoke : v;
}

/* Before the names of the previous compile are replaced: for each of its
 * policies, the revoke setting that now applies to connections it admitted
 * (the policy's new version when it still exists, else its last one). */
static int rec_old_revoke_build(struct reconciler *r, const struct mseg_policy_set *pols)
{
	free(r->old_revoke);
	r->old_revoke = NULL;
	r->n_old_revoke = 0;
	if (!r->n_names)
		return 0;
	r->old_revoke = calloc(r->n_names, sizeof(*r->old_revoke));
	if (!r->old_revoke)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_names; i++) {
		enum mseg_revoke v = r->names_revoke[i];
		const char *slash = strchr(r->names[i], '/');
		size_t nslen = slash ? (size_t)(slash - r->names[i]) : 0;

		for (size_t k = 0; slash && k < pols->n; k++) {
			const struct mseg_policy *p = pols->items[k];

			if (strlen(p->ns) == nslen && strncmp(p->ns, r->names[i], nslen) == 0 &&
			    strcmp(p->name, slash + 1) == 0) {
				v = p->revoke;
				break;
			}
		}
		r->old_revoke[i] = rec_revoke_of(r, v);
	}
	r->n_old_revoke = r->n_names;
	return 0;
}

/* Did the change from @old to @new take something away in this direction:
 * an allow entry gone, or the direction newly restricting (isolated in
 * enforce mode where it was open or audited)? An audited direction
 * refuses nothing, so it never revokes. An entry gone is a delete in the
 * element diff (the one the update used: an untouched direction costs
 * nothing). -ENOMEM. */
static int dir_plan_lost(const struct mseg_dir_plan *old, const struct mseg_dir_plan *new,
			 bool *ret_lost)
{
	struct ep_dir_diff dd;
	int r;

	*ret_lost = false;
	if (!new->isolated || new->mode == MSEG_MODE_AUDIT)
		return 0;
	if (!old->isolated || old->mode == MSEG_MODE_AUDIT) {
		*ret_lost = true;
		return 0;
	}
	if (!old->n_entries)
		return 0;
	if (!new->n_entries) {
		*ret_lost = true;
		return 0;
	}
	r = ep_dir_diff_compute(&dd, old, new, EP_DIFF_FAST);
	if (r < 0)
		return r;
	*ret_lost = dd.del_off[NL_SETS_PER_DIR] > 0;
	ep_dir_diff_release(&dd);
	return 0;
}

struct revoke_ctx {
	const struct reconciler *r;
	const struct mseg_endpoint *ep;
	const struct mseg_ep_plan *old, *new;
	const struct mseg_addr *old_ips;   /* its addresses before the change */
	size_t n_old_ips;
	bool lost[MSEG_DIR_COUNT];
	struct check_index *ix[MSEG_DIR_COUNT];  /* the new plan's, where lost */
	enum mseg_revoke dir_default[MSEG_DIR_COUNT];
	uint64_t kept;                /* not admitted any more, but new-only */
};

static bool addrs_have(const struct mseg_addr *v, size_t n, const struct mseg_addr *a)
{
	size_t len = a->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		if (v[i].family == a->family && memcmp(v[i].bytes, a->bytes, len) == 0)
			return true;
	return false;
}

/* One of the endpoint's addresses, now or before the change: a connection
 * it made or took on an address it no longer has is judged by its new
 * plan like the others. */
static bool ep_owns(const struct revoke_ctx *c, const struct mseg_addr *a)
{
	return addrs_have(c->ep->ips, c->ep->n_ips, a) || addrs_have(c->old_ips, c->n_old_ips, a);
}

/* Delete the entries of connections into (ingress) or out of (egress) the
 * endpoint that the new plan no longer admits, unless the setting for the
 * allow that had admitted them says new-only. */
static bool revoke_select(const struct ct_tuple *t, void *data)
{
	struct revoke_ctx *c = data;
	bool in = ep_owns(c, &t->dst), out = ep_owns(c, &t->src);
	const struct mseg_addr *peer;
	const struct mseg_entry *e;
	enum mseg_revoke mode;
	enum mseg_dir dir;
	uint16_t port;

	if (in == out)     /* not the endpoint's, or to itself */
		return false;
	dir = in ? MSEG_DIR_INGRESS : MSEG_DIR_EGRESS;
	if (!c->lost[dir])
		return false;
	peer = in ? &t->src : &t->dst;
	port = proto_has_ports(t->proto) ? t->dport : 0;
	if (c->ix[dir] ? check_index_admits(c->ix[dir], peer, t->proto, port) :
			 check_dir_admits(&c->new->dir[dir], peer, t->proto, port, NULL))
		return false;
	mode = c->dir_default[dir];
	if (check_dir_admits(&c->old->dir[dir], peer, t->proto, port, &e) && e &&
	    e->policy < c->r->n_old_revoke)
		mode = c->r->old_revoke[e->policy];
	if (mode == MSEG_REVOKE_NEW_ONLY) {
		c->kept++;
		return false;
	}
	return true;
}

/* For connections no old allow had admitted (the direction was open or
 * audited): new-only when every policy now isolating the endpoint in @dir
 * says so, else established. */
static enum mseg_revoke rec_dir_default(const struct reconciler *r,
					const struct mseg_endpoint *ep, enum mseg_dir dir)
{
	bool any = false;

	for (size_t i = 0; r->pols && i < r->pols->n; i++) {
		const struct mseg_policy *p = r->pols->items[i];

		if (!(p->isolation & (1u << dir)) || !selector_policy_covers(p, ep))
			continue;
		if (rec_revoke_of(r, p->revoke) != MSEG_REVOKE_NEW_ONLY)
			return MSEG_REVOKE_ESTABLISHED;
		any = true;
	}
	return any ? MSEG_REVOKE_NEW_ONLY : r->revoke;
}

/* Right after s->kernel (the old plan) was replaced in the kernel by
 * s->desired: did a direction lose allows? Then keep the old plan (and the
 * addresses of then, s->ips) for the walk, which reconciler_apply() makes
 * once every namespace has its batch. */
static void ep_state_revoke_prepare(struct ep_state *s, const struct mseg_endpoint *ep)
{
	bool any = false;

	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		/* out of memory to compare: walk, the selection is exact anyway */
		if (dir_plan_lost(&s->kernel.dir[d], &s->desired.dir[d], &s->revoke_lost[d]) < 0)
			s->revoke_lost[d] = true;
		any |= s->revoke_lost[d];
	}
	if (!any || (!ep->n_ips && !s->n_ips))
		return;
	ep_plan_share(&s->revoke_old, &s->kernel);
	s->revoke_ep = ep;
	s->revoke_pending = true;
}

/* The walk ep_state_revoke_prepare() decided on: cut what lost its allow,
 * then the endpoint's addresses become those of its new table. A namespace
 * whose conntrack table is empty is not walked (a dump iterates the
 * conntrack hash of every namespace; the count is the namespace's own). A
 * failure is reported (event, metric), never fatal: the rules are in place,
 * and new connections are refused either way. */
static void ep_state_revoke(struct reconciler *r, struct ep_state *s)
{
	const struct mseg_endpoint *ep = s->revoke_ep;
	struct revoke_ctx c = { .r = r, .ep = ep, .old = &s->revoke_old, .new = &s->desired,
				.old_ips = s->ips, .n_old_ips = s->n_ips };
	struct ct_walk_stats st;
	struct mseg_err err;
	char msg[1024];
	uint32_t entries;
	int ret;

	if (!s->revoke_pending)
		return;
	s->revoke_pending = false;
	if (conntrack_count(s->ns, &entries, NULL) == 0 && entries == 0) {
		r->stats.conntrack_walks_skipped++;
		goto out_release;
	}
	/* one lookup per conntrack entry: index the new entries (without
	 * memory for it, the linear lookup gives the same answers) */
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		c.lost[d] = s->revoke_lost[d];
		if (c.lost[d]) {
			c.dir_default[d] = rec_dir_default(r, ep, (enum mseg_dir)d);
			c.ix[d] = check_index_new(&s->desired.dir[d]);
		}
	}
	err_clear(&err);
	ret = conntrack_revoke(s->ns, revoke_select, &c, &st, &err);
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		check_index_free(c.ix[d]);
	r->stats.conntrack_walks++;
	r->stats.conntrack_revoked += st.deleted;
	r->stats.conntrack_walk_ns += st.dump_ns + st.delete_ns;
	if (ret < 0) {
		r->stats.conntrack_failures++;
		rec_event(r, "endpoint '%s': revoking established connections failed: %s (%llu revoked)",
			  s->id, err_format(&err, msg, sizeof(msg)), (unsigned long long)st.deleted);
		goto out_release;
	}
	if (st.deleted || c.kept) {
		char kept[64] = "";

		if (c.kept)
			snprintf(kept, sizeof(kept), ", %llu kept (revoke: new-only)",
				 (unsigned long long)c.kept);
		rec_event(r, "endpoint '%s': %llu established connections revoked%s; "
			  "%llu conntrack entries walked in %.2f ms", s->id,
			  (unsigned long long)st.deleted, kept, (unsigned long long)st.seen,
			  (double)(st.dump_ns + st.delete_ns) / 1e6);
	}
out_release:
	dir_plan_release(&s->revoke_old);
	ep_state_set_ips(s, ep);
	s->revoke_ep = NULL;
}

/* Bring one endpoint's namespace to s->desired. When @ep is given and the
 * kernel held an older plan, connections that lost their allow are to be
 * revoked: ep_state_revoke() walks them later (s->revoke_pending). */
static int ep_state_program(struct reconciler *r, struct ep_state *s,
			    const struct mseg_endpoint *ep, bool verify_first)
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
			ep_plan_share(&s->kernel, &s->desired);
			if (ep)
				ep_state_set_ips(s, ep);
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
	rec_note_ack(r, s->ns, before.batches);
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
	if (after.batches_failed != before.batches_failed) {
		/* ep_table_apply() repaired it with a replace: the element
		 * diff did not fit what the kernel held */
		r->stats.updates_refused++;
		rec_event(r, "endpoint '%s': the kernel refused the element update (its table "
			  "was not what was programmed); replacing it", s->id);
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
	if (ep && s->in_kernel)
		ep_state_revoke_prepare(s, ep);
	if (ep && !s->revoke_pending)
		ep_state_set_ips(s, ep);
	ep_plan_share(&s->kernel, &s->desired);
	s->in_kernel = true;
	ep_state_set_error(s, NULL);
	return 0;
}

static void rec_remove(struct reconciler *r, size_t i)
{
	struct ep_state *s = r->eps[i];

	if (s->ns && s->in_kernel) {
		uint64_t batches = netns_stats(s->ns)->batches;
		struct mseg_err err;
		char msg[1024];
		int ret;

		err_clear(&err);
		ret = ep_table_delete(s->ns, &err);
		rec_note_ack(r, s->ns, batches);
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
	struct entries_map map = { 0 };
	struct compile_opts copts;
	uint64_t t_start = clock_mono_ns();
	bool failed = false;
	int ret;

	rec_events_clear(r);
	r->last_ack_ns = 0;
	copts = r->copts;
	copts.local_only = true;        /* peers are not programmed (below) */
	copts.eps_brief = inv->brief;   /* a desired view's: read instead of each endpoint */
	/* only the groups this change touched are computed; the others keep
	 * their arrays (and ids), which ep_plan_from_compiled() then keeps
	 * without comparing an entry */
	ret = compile_plan_cached((const struct mseg_policy *const *)pols->items, pols->n,
				  (const struct mseg_endpoint *const *)inv->eps, inv->n, &copts,
				  r->cache, &plan);
	if (ret < 0)
		goto out_free_plan;
	ret = rec_old_revoke_build(r, pols);
	if (ret < 0)
		goto out_free_plan;
	ret = rec_names_build(r, pols);
	if (ret < 0)
		goto out_free_plan;
	ret = entries_map_init(&map, (r->n + 1) * MSEG_DIR_COUNT);
	if (ret < 0)
		goto out_free_plan;
	r->pols = pols;

	for (size_t i = 0; i < r->n; i++)
		r->eps[i]->seen = false;
	for (size_t i = 0, hint = 0; i < plan->n_eps; i++) {
		const struct mseg_ep_plan *p = &plan->eps[i];
		struct ep_state *s;
		struct mseg_err err;
		char msg[1024];
		bool fresh;

		/* a plan of local_only has no endpoint without a netns (a pod
		 * of another node): a peer that other endpoints' rules select,
		 * never programmed itself, with no state here (at 150,000
		 * pods, a plan line, a state and a log line per peer and
		 * reconcile were most of an event's cost). Its address
		 * changes reach the kernel through the entries of the local
		 * endpoints that admit it, and the revocation walk of those
		 * (their old plan against the new). */
		if (!p->ep->netns)
			continue;
		s = rec_get(r, p->ep->id, &hint);
		if (!s) {
			ret = -ENOMEM;
			goto out_free_plan;
		}
		s->seen = true;
		ret = ep_state_set_names(s, p->ep);
		if (ret < 0)
			goto out_free_plan;
		ret = ep_plan_from_compiled(&s->desired, p, &map);
		if (ret < 0)
			goto out_free_plan;
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
		ret = ep_state_program(r, s, p->ep, fresh);
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
	/* Every namespace has its batch (or failed, or an error stopped us
	 * midway): only now the conntrack walks of the endpoints that lost
	 * allows, so that no namespace's rules wait for another's walk. */
	r->stats.last_apply_ack_ns = r->last_ack_ns ? r->last_ack_ns - t_start : 0;
	for (size_t i = 0; i < r->n; i++)
		ep_state_revoke(r, r->eps[i]);
	entries_map_release(&map);
	r->pols = NULL;
	plan_free(plan);
	r->stats.last_apply_ns = clock_mono_ns() - t_start;
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
			if (ep_state_program(r, s, NULL, true) < 0)
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
			if (ep_state_program(r, s, NULL, false) == 0) {
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
		if (!r->eps[i]->in_kernel)
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
	ret = table_text_render(f, &r->eps[i]->desired, &r->topts);
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
