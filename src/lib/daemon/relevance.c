/* Which pod events can change a local table (include/mseg/daemon/relevance.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/util/hash.h"
#include "mseg/daemon/relevance.h"
#include "mseg/model/addr.h"
#include "mseg/model/selector.h"

/* Claims of addresses: per address (by a 64-bit hash of it: two
 * addresses that share one look like one address claimed twice, which
 * only makes more events relevant), how many endpoints claim it and the
 * sum of the hashes of their ids (with one claimant: its id's hash). */
struct claim {
	uint64_t key;       /* 0: an empty slot */
	uint64_t id_sum;
	uint32_t count;
};

struct claims {
	struct claim *tab;  /* open addressing, a power of two, at most 2/3 full */
	size_t used, size;
};

/* A policy of the last view, to find those a pod of this node may make
 * programmable (its struct may be the view's copy: only the arrays, which
 * the policy's own arena holds, are kept). */
struct pol_ref {
	const struct mseg_peer *subjects;
	size_t n_subjects;
	const struct mseg_rule *rules;
	size_t n_rules;
};

struct relevance {
	bool valid;
	/* endpoint peers of the programmable policies: those of one named
	 * namespace sorted by it, the others (namespace selector, any) apart */
	const struct mseg_peer **named;
	size_t n_named, cap_named;
	bool named_sorted;
	const struct mseg_peer **wide;
	size_t n_wide, cap_wide;
	/* address peers of egress rules with a named port: the port resolves
	 * at each endpoint in their CIDRs, whoever selects it */
	const struct mseg_peer **named_addrs;
	size_t n_named_addrs, cap_named_addrs;
	/* every policy of the view */
	struct pol_ref *pols;
	size_t n_pols, cap_pols;
	/* "NS/NAME" of the registered endpoints, sorted */
	char **regs;
	size_t n_regs, cap_regs;
	/* addresses of the pods of other nodes, kept up to date by their
	 * events; of this node's endpoints, the registrations and the
	 * endpoints that lost one to a newer one, made at each rebuild */
	struct claims peer_claims, local_claims;
	bool peer_claims_stale;   /* count them again at the next rebuild */
};

struct relevance *relevance_new(void)
{
	struct relevance *rl = calloc(1, sizeof(struct relevance));

	if (rl)
		rl->peer_claims_stale = true;
	return rl;
}

static void regs_clear(struct relevance *rl)
{
	for (size_t i = 0; i < rl->n_regs; i++)
		free(rl->regs[i]);
	rl->n_regs = 0;
}

struct relevance *relevance_free(struct relevance *rl)
{
	if (!rl)
		return NULL;
	regs_clear(rl);
	free(rl->regs);
	free(rl->named);
	free(rl->wide);
	free(rl->named_addrs);
	free(rl->pols);
	free(rl->peer_claims.tab);
	free(rl->local_claims.tab);
	free(rl);
	return NULL;
}

void relevance_invalidate(struct relevance *rl)
{
	rl->valid = false;
}

void relevance_forget(struct relevance *rl)
{
	rl->valid = false;
	rl->peer_claims_stale = true;
}

bool relevance_valid(const struct relevance *rl)
{
	return rl->valid;
}

/* ---- addresses ---- */

static uint64_t id_hash(const char *id)
{
	return hash_fnv_str(HASH_FNV_OFFSET, id);
}

static uint64_t addr_key(const struct mseg_addr *a)
{
	uint64_t h = hash_fnv(HASH_FNV_OFFSET, &a->family, 1);

	h = hash_fnv(h, a->bytes, a->family == 2 /* AF_INET */ ? 4 : 16);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h ? h : 1;
}

static struct claim *claim_slot(struct claim *tab, size_t size, uint64_t key)
{
	size_t i = (size_t)key & (size - 1);

	while (tab[i].key && tab[i].key != key)
		i = (i + 1) & (size - 1);
	return &tab[i];
}

static void claims_clear(struct claims *c)
{
	if (c->tab)
		memset(c->tab, 0, c->size * sizeof(*c->tab));
	c->used = 0;
}

static int claims_reserve(struct claims *c, size_t n)
{
	size_t size = 64;
	struct claim *tab;

	if (3 * n <= 2 * c->size)
		return 0;
	while (2 * size < 3 * n)
		size *= 2;
	tab = calloc(size, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < c->size; i++)
		if (c->tab[i].key)
			*claim_slot(tab, size, c->tab[i].key) = c->tab[i];
	free(c->tab);
	c->tab = tab;
	c->size = size;
	return 0;
}

/* @a is claimed by the endpoint of id hash @h. */
static int claim_add(struct claims *c, const struct mseg_addr *a, uint64_t h)
{
	uint64_t key = addr_key(a);
	struct claim *cl;
	int r = claims_reserve(c, c->used + 1);

	if (r < 0)
		return r;
	cl = claim_slot(c->tab, c->size, key);
	if (!cl->key) {
		cl->key = key;
		c->used++;
	}
	cl->count++;
	cl->id_sum += h;
	return 0;
}

/* ... no longer (an empty entry stays, for the address's next claim). */
static void claim_remove(struct claims *c, const struct mseg_addr *a, uint64_t h)
{
	struct claim *cl;

	if (!c->size)
		return;
	cl = claim_slot(c->tab, c->size, addr_key(a));
	if (cl->key && cl->count) {
		cl->count--;
		cl->id_sum -= h;
	}
}

/* Is @a claimed by an endpoint other than the one of id hash @h? */
static bool claimed_by_other(const struct claims *c, const struct mseg_addr *a, uint64_t h)
{
	const struct claim *cl;

	if (!c->size)
		return false;
	cl = claim_slot(c->tab, c->size, addr_key(a));
	return cl->key && (cl->count > 1 || (cl->count == 1 && cl->id_sum != h));
}

static int claims_add_ep(struct claims *c, const struct mseg_endpoint *ep)
{
	uint64_t h = id_hash(ep->id);
	int r = 0;

	for (size_t k = 0; k < ep->n_ips && r == 0; k++)
		r = claim_add(c, &ep->ips[k], h);
	return r;
}

/* ---- registrations ---- */

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int regs_add(struct relevance *rl, const struct mseg_endpoint *ep)
{
	size_t len;
	char *k;

	if (!ep->name)
		return 0;
	len = strlen(selector_ns_name(ep->ns)) + strlen(ep->name) + 2;
	if (rl->n_regs == rl->cap_regs) {
		size_t cap = rl->cap_regs ? 2 * rl->cap_regs : 16;
		char **p = realloc(rl->regs, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		rl->regs = p;
		rl->cap_regs = cap;
	}
	k = malloc(len);
	if (!k)
		return -ENOMEM;
	strcpy(k, selector_ns_name(ep->ns));
	strcat(k, "/");
	strcat(k, ep->name);
	rl->regs[rl->n_regs++] = k;
	return 0;
}

static bool registered(const struct relevance *rl, const char *key)
{
	return rl->n_regs && bsearch(&key, rl->regs, rl->n_regs, sizeof(*rl->regs), str_cmp);
}

/* ---- peers ---- */

static int peers_push(const struct mseg_peer ***arr, size_t *n, size_t *cap,
		      const struct mseg_peer *p)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		const struct mseg_peer **a = realloc(*arr, c * sizeof(**arr));

		if (!a)
			return -ENOMEM;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

static int peer_ns_cmp(const void *pa, const void *pb)
{
	const struct mseg_peer *a = *(const struct mseg_peer *const *)pa;
	const struct mseg_peer *b = *(const struct mseg_peer *const *)pb;

	return strcmp(selector_ns_name(a->ns), selector_ns_name(b->ns));
}

static bool rule_has_named_port(const struct mseg_rule *rule)
{
	for (size_t i = 0; i < rule->n_ports; i++)
		if (rule->ports[i].name)
			return true;
	return false;
}

/* Every endpoint peer of @rules, both directions; the address peers of
 * its egress rules that name a port. */
static int peers_add(struct relevance *rl, const struct mseg_rule *rules, size_t n_rules)
{
	for (size_t i = 0; i < n_rules; i++) {
		const struct mseg_rule *rule = &rules[i];
		bool named_egress = rule->dir != MSEG_DIR_INGRESS && rule_has_named_port(rule);

		for (size_t j = 0; j < rule->n_peers; j++) {
			const struct mseg_peer *peer = &rule->peers[j];
			int r;

			if (peer->kind != MSEG_PEER_ENDPOINTS) {
				if (!named_egress)
					continue;
				r = peers_push(&rl->named_addrs, &rl->n_named_addrs,
					       &rl->cap_named_addrs, peer);
				if (r < 0)
					return r;
				continue;
			}
			if (peer->ns_scope == MSEG_NS_NAMED) {
				r = peers_push(&rl->named, &rl->n_named, &rl->cap_named, peer);
				rl->named_sorted = false;
			}
			else
				r = peers_push(&rl->wide, &rl->n_wide, &rl->cap_wide, peer);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Does a peer of a programmable policy select @ep (namespace labels
 * filled)? */
static bool peers_select(struct relevance *rl, const struct mseg_endpoint *ep)
{
	const char *ns = selector_ns_name(ep->ns);
	size_t lo = 0, hi = rl->n_named;

	if (!rl->named_sorted && rl->n_named)
		qsort(rl->named, rl->n_named, sizeof(*rl->named), peer_ns_cmp);
	rl->named_sorted = true;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(selector_ns_name(rl->named[mid]->ns), ns) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < rl->n_named && strcmp(selector_ns_name(rl->named[lo]->ns), ns) == 0; lo++)
		if (selector_peer_selects(rl->named[lo], ep))
			return true;
	for (size_t i = 0; i < rl->n_wide; i++)
		if (selector_peer_selects(rl->wide[i], ep))
			return true;
	return false;
}

/* Is an address of @ep in the CIDRs of an address peer whose named port
 * resolves at the endpoints there? (Its except holes are not looked at:
 * relevant the more often.) */
static bool named_addrs_hold(const struct relevance *rl, const struct mseg_endpoint *ep)
{
	for (size_t i = 0; i < rl->n_named_addrs; i++) {
		const struct mseg_peer *peer = rl->named_addrs[i];

		for (size_t c = 0; c < peer->n_cidrs; c++)
			for (size_t a = 0; a < ep->n_ips; a++)
				if (addr_in_cidr(&ep->ips[a], &peer->cidrs[c]))
					return true;
	}
	return false;
}

/* ---- policies a pod of this node may make programmable ---- */

/* Could @peer (a subject or a rule's local side) select some pod of
 * namespace @ns (labels @ns_labels; NULL: not known), whatever its labels? */
static bool scope_may_hold(const struct mseg_peer *peer, const char *ns,
			   const struct mseg_namespace *ns_obj)
{
	if (peer->kind != MSEG_PEER_ENDPOINTS)
		return false;
	switch (peer->ns_scope) {
	case MSEG_NS_NAMED:
		return strcmp(selector_ns_name(peer->ns), ns) == 0;
	case MSEG_NS_SELECTOR:
		return !ns_obj || selector_matches(&peer->ns_sel, ns_obj->labels, ns_obj->n_labels);
	case MSEG_NS_ANY:
		return true;
	}
	return true;
}

/* A pod of this node in namespace @ns changes: the peers of every policy
 * that may select a pod there count from now on. */
static int widen(struct relevance *rl, const struct desired *ds, const char *ns)
{
	const struct mseg_namespace *ns_obj = desired_namespace_find(ds, ns, NULL);

	for (size_t i = 0; i < rl->n_pols; i++) {
		const struct pol_ref *p = &rl->pols[i];
		bool may = false;
		int r;

		for (size_t j = 0; j < p->n_subjects && !may; j++)
			may = scope_may_hold(&p->subjects[j], ns, ns_obj);
		for (size_t j = 0; j < p->n_rules && !may; j++)
			may = scope_may_hold(&p->rules[j].local, ns, ns_obj);
		if (!may)
			continue;
		r = peers_add(rl, p->rules, p->n_rules);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- rebuild and judgement ---- */

/* The addresses of the pods of other nodes, counted anew. */
static int peer_claims_count(struct relevance *rl, const struct mseg_inventory *inv)
{
	int r;

	claims_clear(&rl->peer_claims);
	if (inv->n_staged)
		return -EAGAIN;   /* not flushed: the caller syncs first */
	r = claims_reserve(&rl->peer_claims, inv->n + inv->n / 8 + 1024);
	for (size_t i = 0; i < inv->n && r == 0; i++)
		if (inv->eps[i]->cluster_peer)
			r = claims_add_ep(&rl->peer_claims, inv->eps[i]);
	return r;
}

int relevance_rebuild(struct relevance *rl, const struct desired *ds, const struct desired_view *v,
		      struct mseg_policy *const *prog, size_t n_prog)
{
	int r = 0;

	rl->valid = false;
	rl->n_named = rl->n_wide = rl->n_named_addrs = rl->n_pols = 0;
	rl->named_sorted = false;
	regs_clear(rl);
	for (size_t i = 0; i < n_prog && r == 0; i++)
		r = peers_add(rl, prog[i]->rules, prog[i]->n_rules);
	if (r < 0)
		return r;
	if (rl->cap_pols < v->pols.n) {
		struct pol_ref *p = realloc(rl->pols, v->pols.n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		rl->pols = p;
		rl->cap_pols = v->pols.n;
	}
	for (size_t i = 0; i < v->pols.n; i++) {
		const struct mseg_policy *p = v->pols.items[i];

		rl->pols[rl->n_pols++] = (struct pol_ref){ p->subjects, p->n_subjects, p->rules,
							   p->n_rules };
	}
	/* registrations: whatever was registered here, by the API (mseg-cni)
	 * or in the inventory file, with their addresses; this node's
	 * endpoints of the view; the endpoints that lost an address (the
	 * view's copy of a loser no longer has it) */
	claims_clear(&rl->local_claims);
	for (int s = 0; s < DESIRED_N_SOURCES && r == 0; s++) {
		if (s == DESIRED_KUBE)
			continue;
		for (size_t i = 0; i < ds->inv[s].n && r == 0; i++) {
			r = regs_add(rl, ds->inv[s].eps[i]);
			if (r == 0)
				r = claims_add_ep(&rl->local_claims, ds->inv[s].eps[i]);
		}
	}
	for (size_t i = 0; i < v->n_local && r == 0; i++)
		r = claims_add_ep(&rl->local_claims, v->inv.eps[v->local[i]]);
	for (size_t i = 0; i < v->n_conflicts && r == 0; i++) {
		r = claim_add(&rl->local_claims, &v->conflicts[i].addr,
			      id_hash(v->conflicts[i].winner));
		if (r == 0)
			r = claim_add(&rl->local_claims, &v->conflicts[i].addr,
				      id_hash(v->conflicts[i].loser));
	}
	if (r < 0)
		return r;
	if (rl->n_regs)
		qsort(rl->regs, rl->n_regs, sizeof(*rl->regs), str_cmp);
	if (rl->peer_claims_stale) {
		r = peer_claims_count(rl, &ds->inv[DESIRED_KUBE]);
		if (r < 0)
			return r == -EAGAIN ? 0 : r;
		rl->peer_claims_stale = false;
	}
	rl->valid = true;
	return 0;
}

/* The namespace of pod @key ("NS/NAME"). */
static void key_ns(const char *key, char *buf, size_t size)
{
	const char *slash = strchr(key, '/');

	snprintf(buf, size, "%.*s", slash ? (int)(slash - key) : (int)strlen(key), key);
}

/* A state of this node's pods (or a registered one's): relevant; the
 * policies of its namespace may become programmable. */
static bool local_state(struct relevance *rl, const struct desired *ds, const char *key,
			const struct mseg_endpoint *ep, bool local)
{
	char ns[300];

	if (!local && !registered(rl, key) && (!ep || ep->cluster_peer))
		return false;
	key_ns(key, ns, sizeof(ns));
	if (widen(rl, ds, ns) < 0)
		rl->valid = false;
	return true;
}

/* Does state @ep of a pod of another node matter (its claims counted)? */
static bool peer_state(struct relevance *rl, const struct desired *ds,
		       const struct mseg_endpoint *ep)
{
	const struct mseg_namespace *ns;
	struct mseg_endpoint with_ns;
	uint64_t h = id_hash(ep->id);

	for (size_t i = 0; i < ep->n_ips; i++)
		if (claimed_by_other(&rl->peer_claims, &ep->ips[i], h) ||
		    claimed_by_other(&rl->local_claims, &ep->ips[i], h))
			return true;
	if (named_addrs_hold(rl, ep))
		return true;
	ns = desired_namespace_find(ds, selector_ns_name(ep->ns), NULL);
	if (!ns)
		return true;
	/* with its namespace's labels as they are now (a view fills them
	 * the same way) */
	with_ns = *ep;
	with_ns.ns_labels = ns->labels;
	with_ns.n_ns_labels = ns->n_labels;
	return peers_select(rl, &with_ns);
}

/* The counted claims: those of a pod of another node's endpoint (a pod of
 * this node keeps an endpoint of a pod of another node until the next
 * sync takes it out: not counted). */
static bool counted(const struct mseg_endpoint *ep, bool local)
{
	return ep && ep->cluster_peer && !local;
}

bool relevance_pod_before(struct relevance *rl, const struct desired *ds, const char *key,
			  const struct mseg_endpoint *ep, bool local)
{
	bool relevant = true;

	if (rl->valid && !local_state(rl, ds, key, ep, local))
		relevant = ep && peer_state(rl, ds, ep);
	if (counted(ep, local)) {
		uint64_t h = id_hash(ep->id);

		for (size_t i = 0; i < ep->n_ips; i++)
			claim_remove(&rl->peer_claims, &ep->ips[i], h);
	}
	return relevant;
}

bool relevance_pod_after(struct relevance *rl, const struct desired *ds, const char *key,
			 const struct mseg_endpoint *ep, bool local)
{
	if (counted(ep, local) && claims_add_ep(&rl->peer_claims, ep) < 0)
		relevance_forget(rl);   /* no longer knows every claim */
	if (!rl->valid || local_state(rl, ds, key, ep, local))
		return true;
	return ep && peer_state(rl, ds, ep);
}
