/* Which pod events can change a local table (include/mseg/daemon/relevance.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/daemon/relevance.h"
#include "mseg/model/selector.h"

/* An address and who claims it: the hash of the claimant's id, or
 * several claimants. A 64-bit hash that two ids share would make two
 * claimants look like one: at 150,000 pods, a chance of about 1e-9 per
 * rebuild. */
struct claim {
	struct mseg_addr addr;
	bool used, several;
	uint64_t id_hash;
};

struct relevance {
	bool valid;
	/* endpoint peers of the programmable policies: those of one named
	 * namespace sorted by it, the others (namespace selector, any) apart */
	const struct mseg_peer **named;
	size_t n_named, cap_named;
	const struct mseg_peer **wide;
	size_t n_wide, cap_wide;
	/* address peers of egress rules with a named port: the port resolves
	 * at each endpoint in their CIDRs, whoever selects it */
	const struct mseg_peer **named_addrs;
	size_t n_named_addrs, cap_named_addrs;
	/* "NS/NAME" of the registered endpoints, sorted */
	char **regs;
	size_t n_regs, cap_regs;
	/* open addressing, a power of two, at most half full */
	struct claim *claims;
	size_t n_claims, size_claims;
};

struct relevance *relevance_new(void)
{
	return calloc(1, sizeof(struct relevance));
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
	free(rl->claims);
	free(rl);
	return NULL;
}

void relevance_invalidate(struct relevance *rl)
{
	rl->valid = false;
}

bool relevance_valid(const struct relevance *rl)
{
	return rl->valid;
}

void relevance_stats(const struct relevance *rl, struct relevance_stats *ret)
{
	ret->peers = rl->n_named + rl->n_wide + rl->n_named_addrs;
	ret->claims = rl->n_claims;
	ret->registrations = rl->n_regs;
}

/* ---- addresses ---- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static uint64_t id_hash(const char *id)
{
	return hash_bytes(1469598103934665603ull, id, strlen(id));
}

static uint64_t addr_hash(const struct mseg_addr *a)
{
	uint64_t h = hash_bytes(1469598103934665603ull, &a->family, 1);

	h = hash_bytes(h, a->bytes, a->family == 2 /* AF_INET */ ? 4 : 16);
	h ^= h >> 29;
	return h * 0xbf58476d1ce4e5b9ull;
}

static bool addr_same(const struct mseg_addr *a, const struct mseg_addr *b)
{
	return a->family == b->family &&
	       memcmp(a->bytes, b->bytes, a->family == 2 /* AF_INET */ ? 4 : 16) == 0;
}

static struct claim *claim_slot(struct claim *tab, size_t size, const struct mseg_addr *a)
{
	size_t i = (size_t)addr_hash(a) & (size - 1);

	while (tab[i].used && !addr_same(&tab[i].addr, a))
		i = (i + 1) & (size - 1);
	return &tab[i];
}

static int claims_reserve(struct relevance *rl, size_t n)
{
	size_t size = 64;
	struct claim *tab;

	if (2 * n <= rl->size_claims)
		return 0;
	while (size < 2 * n)
		size *= 2;
	tab = calloc(size, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < rl->size_claims; i++)
		if (rl->claims[i].used)
			*claim_slot(tab, size, &rl->claims[i].addr) = rl->claims[i];
	free(rl->claims);
	rl->claims = tab;
	rl->size_claims = size;
	return 0;
}

/* @a is claimed by the endpoint of id hash @h. */
static int claim_add(struct relevance *rl, const struct mseg_addr *a, uint64_t h)
{
	struct claim *c;
	int r = claims_reserve(rl, rl->n_claims + 1);

	if (r < 0)
		return r;
	c = claim_slot(rl->claims, rl->size_claims, a);
	if (!c->used) {
		c->used = true;
		c->addr = *a;
		c->id_hash = h;
		rl->n_claims++;
	} else if (c->id_hash != h) {
		c->several = true;
	}
	return 0;
}

/* Is @a claimed by an endpoint other than the one of id hash @h? */
static bool claimed_by_other(const struct relevance *rl, const struct mseg_addr *a, uint64_t h)
{
	const struct claim *c;

	if (!rl->size_claims)
		return false;
	c = claim_slot(rl->claims, rl->size_claims, a);
	return c->used && (c->several || c->id_hash != h);
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

/* Every endpoint peer of @p's rules, both directions; the address peers
 * of its egress rules that name a port. */
static int peers_add(struct relevance *rl, const struct mseg_policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct mseg_rule *rule = &p->rules[i];
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
			if (peer->ns_scope == MSEG_NS_NAMED)
				r = peers_push(&rl->named, &rl->n_named, &rl->cap_named, peer);
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
static bool peers_select(const struct relevance *rl, const struct mseg_endpoint *ep)
{
	const char *ns = selector_ns_name(ep->ns);
	size_t lo = 0, hi = rl->n_named;

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

static bool cidr_contains(const struct mseg_cidr *c, const struct mseg_addr *a)
{
	unsigned bits = c->plen, i;

	if (c->addr.family != a->family)
		return false;
	for (i = 0; bits >= 8; i++, bits -= 8)
		if (c->addr.bytes[i] != a->bytes[i])
			return false;
	return !bits || ((c->addr.bytes[i] ^ a->bytes[i]) & (0xff00u >> bits)) == 0;
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
				if (cidr_contains(&peer->cidrs[c], &ep->ips[a]))
					return true;
	}
	return false;
}

/* ---- rebuild and judgement ---- */

int relevance_rebuild(struct relevance *rl, const struct desired *ds, const struct desired_view *v,
		      struct mseg_policy *const *prog, size_t n_prog)
{
	size_t n_addrs = v->n_conflicts;
	int r = 0;

	rl->valid = false;
	rl->n_named = rl->n_wide = rl->n_named_addrs = 0;
	regs_clear(rl);
	rl->n_claims = 0;
	if (rl->claims)
		memset(rl->claims, 0, rl->size_claims * sizeof(*rl->claims));
	for (size_t i = 0; i < n_prog && r == 0; i++)
		r = peers_add(rl, prog[i]);
	if (r < 0)
		return r;
	qsort(rl->named, rl->n_named, sizeof(*rl->named), peer_ns_cmp);
	/* registrations: whatever was registered here, by the API (mseg-cni)
	 * or in the inventory file */
	for (int s = 0; s < DESIRED_N_SOURCES && r == 0; s++) {
		if (s == DESIRED_KUBE)
			continue;
		for (size_t i = 0; i < ds->inv[s].n && r == 0; i++)
			r = regs_add(rl, ds->inv[s].eps[i]);
	}
	if (r < 0)
		return r;
	qsort(rl->regs, rl->n_regs, sizeof(*rl->regs), str_cmp);
	/* every address of the view, and those an endpoint lost to a newer
	 * one (the view's copy of the loser no longer has them) */
	for (size_t i = 0; i < v->inv.n; i++)
		n_addrs += v->inv.eps[i]->n_ips;
	r = claims_reserve(rl, n_addrs + 1024);
	for (size_t i = 0; i < v->inv.n && r == 0; i++) {
		const struct mseg_endpoint *ep = v->inv.eps[i];
		uint64_t h = id_hash(ep->id);

		for (size_t k = 0; k < ep->n_ips && r == 0; k++)
			r = claim_add(rl, &ep->ips[k], h);
	}
	for (size_t i = 0; i < v->n_conflicts && r == 0; i++) {
		r = claim_add(rl, &v->conflicts[i].addr, id_hash(v->conflicts[i].winner));
		if (r == 0)
			r = claim_add(rl, &v->conflicts[i].addr, id_hash(v->conflicts[i].loser));
	}
	if (r < 0)
		return r;
	rl->valid = true;
	return 0;
}

bool relevance_pod_state(struct relevance *rl, const struct desired *ds, const char *key,
			 const struct mseg_endpoint *ep, bool local)
{
	const struct mseg_namespace *ns;
	struct mseg_endpoint with_ns;
	bool relevant = false;
	uint64_t h;

	if (!rl->valid)
		return true;
	if (local || registered(rl, key) || (ep && !ep->cluster_peer)) {
		/* an endpoint of this node changes: which policies can change
		 * a table, and so which peers count, may change with it */
		rl->valid = false;
		return true;
	}
	if (!ep)
		return false;   /* no endpoint: in no view */
	h = id_hash(ep->id);
	for (size_t i = 0; i < ep->n_ips && !relevant; i++)
		relevant = claimed_by_other(rl, &ep->ips[i], h);
	/* from now on its addresses are claimed by it too */
	for (size_t i = 0; i < ep->n_ips; i++) {
		if (claim_add(rl, &ep->ips[i], h) < 0) {
			rl->valid = false;   /* no longer knows every claim */
			return true;
		}
	}
	if (relevant || named_addrs_hold(rl, ep))
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
