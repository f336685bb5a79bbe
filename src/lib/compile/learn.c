/* learn: flow observations -> an AllowList (groups and allow rules).
 *
 * 1. Each observation becomes an edge (from side, to side, protocol, port):
 *    a side is a group (an endpoint of the namespace, by its label set) or
 *    an outside address. Endpoint addresses are found in a hash of the
 *    address table, endpoint ids by their pointer (records of one endpoint
 *    share it) or a binary search in the (sorted) inventory; outside
 *    addresses are interned, so that an edge's key is 12 bytes.
 * 2. Equal edges are summed in a hash table of their keys as they come;
 *    the distinct ones are sorted.
 * 3. Group -> group edges make one rule per pair with its port list.
 *    Group <-> address edges are collected per (group, direction, address)
 *    with their port list; addresses sharing (group, direction, ports) are
 *    merged into CIDRs and become one address group and one rule. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "mseg/compile/learn.h"
#include "mseg/model/addr.h"
#include "mseg/model/plan.h"

#define LEARN_SUBSET_MAX 3   /* label subsets tried up to this size, else all labels */

/* An edge's key: each side as a number (a group index, or SIDE_ADDR | the
 * index of an interned outside address), so that it hashes and compares
 * as 12 bytes. */
#define SIDE_ADDR 0x80000000u
struct edge_key {
	uint32_t from, to;
	uint8_t proto;
	uint8_t has_port;
	uint16_t port;
};

struct edge {
	struct edge_key k;
	/* the sums: flow records, accepted connections (summaries) */
	uint64_t count, accepted, first, last;
};

struct edge_slot {
	struct edge_key k;
	uint32_t idx;                /* in the edges; UINT32_MAX: free */
};

/* A hash of @len bytes, eight at a time (the keys are zero-padded
 * structs: every byte is defined). */
static uint32_t bytes_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, p + i, len - i);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
	}
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	return (uint32_t)h;
}

static uint32_t edge_key_hash(const struct edge_key *k)
{
	return bytes_hash(k, sizeof(*k));
}

/* An open-addressing table of indexes, with each one's hash beside it so
 * that a probe compares keys only when the hashes agree. */
struct slot {
	uint32_t idx;                /* UINT32_MAX: free */
	uint32_t hash;
};

static struct slot *slots_new(size_t n)
{
	struct slot *v = malloc(n * sizeof(*v));

	if (v)
		memset(v, 0xff, n * sizeof(*v));
	return v;
}

/* Double the table (power of two) and re-place the used slots. */
static int slots_grow(struct slot **v, size_t *n)
{
	size_t nn = *n * 2;
	struct slot *w = slots_new(nn);

	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		size_t h;

		if ((*v)[i].idx == UINT32_MAX)
			continue;
		for (h = (*v)[i].hash & (nn - 1); w[h].idx != UINT32_MAX; h = (h + 1) & (nn - 1))
			;
		w[h] = (*v)[i];
	}
	free(*v);
	*v = w;
	*n = nn;
	return 0;
}

struct addr_ep {
	struct mseg_addr a;
	uint32_t ep;
};

/* The recording endpoint's id by pointer: the records of one endpoint
 * share its id string (the flow ring's), so a pointer seen once is found
 * again without comparing strings. Direct-mapped. */
#define ID_CACHE_SIZE 4096
struct id_cache_slot {
	const char *id;
	uint32_t ep;
};

struct learn_ctx {
	const struct learn_opts *o;
	const struct mseg_endpoint *const *eps;
	size_t n_eps;
	struct id_cache_slot *id_cache;
	struct slot *addr_slots;     /* c->addrs by address */
	size_t n_addr_slots;
	/* outside addresses seen, interned (an edge key's SIDE_ADDR sides) */
	struct mseg_addr *xaddrs;
	size_t n_xaddrs, cap_xaddrs;
	struct slot *x_slots;
	size_t n_x_slots;
	uint32_t *ep_group;          /* per endpoint: group, LEARN_GROUP_NONE = not yet */
	bool *ep_in_ns;              /* per endpoint: of the namespace learned for */
	struct addr_ep *addrs;
	size_t n_addrs;
	struct learn_result *r;
	size_t cap_groups, cap_rules, cap_warnings;
};

/* family, then the address bytes (big-endian: memcmp orders them) */
static int addr_cmp(const struct mseg_addr *a, const struct mseg_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16);
}

static int addr_ep_cmp(const void *pa, const void *pb)
{
	return addr_cmp(&((const struct addr_ep *)pa)->a, &((const struct addr_ep *)pb)->a);
}

/* Groups by index, then addresses (@x: the interned ones) in order. */
static int side_cmp(const struct mseg_addr *x, uint32_t a, uint32_t b)
{
	if (a == b)
		return 0;
	if (!(a & SIDE_ADDR) || !(b & SIDE_ADDR))
		return a < b ? -1 : 1;
	return addr_cmp(&x[a & ~SIDE_ADDR], &x[b & ~SIDE_ADDR]);
}

/* qsort_r: @x the interned addresses */
static int edge_cmp(const void *pa, const void *pb, void *x)
{
	const struct edge_key *a = &((const struct edge *)pa)->k, *b = &((const struct edge *)pb)->k;
	int c;

	if ((c = side_cmp(x, a->from, b->from)) || (c = side_cmp(x, a->to, b->to)))
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->has_port != b->has_port)
		return a->has_port < b->has_port ? -1 : 1;
	return a->port < b->port ? -1 : a->port > b->port;
}

const char *learn_port_format(const struct learn_port *p, char *buf, size_t size)
{
	const char *name = NULL;

	switch (p->proto) {
	case 6: name = "tcp"; break;
	case 17: name = "udp"; break;
	case 132: name = "sctp"; break;
	case 1: name = "icmp"; break;
	case 58: name = "icmpv6"; break;
	}
	if (name && p->has_port)
		snprintf(buf, size, "%s/%u", name, p->port);
	else if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "any");   /* a protocol the language cannot name */
	return buf;
}

/* "endpoint 'ID': WHAT" */
static int warn(struct learn_ctx *c, const char *id, const char *what)
{
	struct learn_result *r = c->r;
	char *s;

	if (r->n_warnings == c->cap_warnings) {
		size_t cap = c->cap_warnings ? c->cap_warnings * 2 : 8;
		char **v = realloc(r->warnings, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->warnings = v;
		c->cap_warnings = cap;
	}
	if (asprintf(&s, "endpoint '%s': %s", id, what) < 0)
		return -ENOMEM;
	r->warnings[r->n_warnings++] = s;
	return 0;
}

static struct learn_group *group_add(struct learn_ctx *c, uint32_t *ret_idx)
{
	struct learn_result *r = c->r;
	struct learn_group *g;

	if (r->n_groups == c->cap_groups) {
		size_t cap = c->cap_groups ? c->cap_groups * 2 : 16;
		struct learn_group *v = realloc(r->groups, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->groups = v;
		c->cap_groups = cap;
	}
	g = &r->groups[r->n_groups];
	memset(g, 0, sizeof(*g));
	*ret_idx = (uint32_t)r->n_groups++;
	return g;
}

/* A group name from @base: letters, digits, '-', '_', '.'; unique. */
static void group_name_set(struct learn_ctx *c, struct learn_group *g, const char *base)
{
	char n[48];
	size_t k = 0;

	for (const char *p = base; *p && k < sizeof(n) - 1; p++) {
		char ch = *p;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.')
			n[k++] = ch;
		else if (k && n[k - 1] != '-')
			n[k++] = '-';
	}
	while (k && !((n[k - 1] >= 'a' && n[k - 1] <= 'z') || (n[k - 1] >= 'A' && n[k - 1] <= 'Z') ||
		      (n[k - 1] >= '0' && n[k - 1] <= '9')))
		k--;
	n[k] = '\0';
	if (!k || strcmp(n, "world") == 0 ||
	    !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') || (n[0] >= '0' && n[0] <= '9')))
		snprintf(n, sizeof(n), "g");
	for (unsigned i = 1;; i++) {
		bool clash = false;

		if (i == 1)
			snprintf(g->name, sizeof(g->name), "%s", n);
		else
			snprintf(g->name, sizeof(g->name), "%s-%u", n, i);
		for (size_t k2 = 0; k2 < c->r->n_groups && !clash; k2++)
			clash = &c->r->groups[k2] != g && strcmp(c->r->groups[k2].name, g->name) == 0;
		if (!clash)
			return;
	}
}

static bool labels_has(const struct mseg_endpoint *ep, const struct mseg_label *l)
{
	for (size_t i = 0; i < ep->n_labels; i++)
		if (strcmp(ep->labels[i].key, l->key) == 0)
			return strcmp(ep->labels[i].value, l->value) == 0;
	return false;
}

static bool labels_same(const struct mseg_endpoint *a, const struct mseg_endpoint *b)
{
	if (a->n_labels != b->n_labels)
		return false;
	for (size_t i = 0; i < a->n_labels; i++)
		if (strcmp(a->labels[i].key, b->labels[i].key) != 0 ||
		    strcmp(a->labels[i].value, b->labels[i].value) != 0)
			return false;
	return true;
}

static bool in_ns(const struct learn_ctx *c, const struct mseg_endpoint *ep)
{
	return strcmp(ep->ns ? ep->ns : "default", c->o->ns) == 0;
}

/* Does the subset @idx (@k label indexes of @ep) select an endpoint of the
 * namespace whose labels differ from @ep's? */
static bool subset_ambiguous(const struct learn_ctx *c, const struct mseg_endpoint *ep,
			     const size_t *idx, size_t k)
{
	for (size_t i = 0; i < c->n_eps; i++) {
		const struct mseg_endpoint *o = c->eps[i];
		bool all = true;

		if (o == ep || !in_ns(c, o) || labels_same(o, ep))
			continue;
		for (size_t j = 0; j < k && all; j++)
			all = labels_has(o, &ep->labels[idx[j]]);
		if (all)
			return true;
	}
	return false;
}

/* The next k-combination of 0..n-1 in @idx; false after the last. */
static bool comb_next(size_t *idx, size_t k, size_t n)
{
	size_t i = k;

	while (i-- > 0) {
		if (idx[i] < n - k + i) {
			idx[i]++;
			for (size_t j = i + 1; j < k; j++)
				idx[j] = idx[j - 1] + 1;
			return true;
		}
	}
	return false;
}

/* The group of endpoint @e (created on first use; replicas share it). */
static int ep_group_get(struct learn_ctx *c, uint32_t e, uint32_t *ret)
{
	const struct mseg_endpoint *ep = c->eps[e];
	size_t idx[LEARN_SUBSET_MAX], best_k = 0;
	struct learn_group *g;
	char base[48] = "";
	uint32_t gi;

	if (c->ep_group[e] != LEARN_GROUP_NONE) {
		*ret = c->ep_group[e];
		return 0;
	}
	/* a replica already has one */
	for (size_t i = 0; i < c->n_eps; i++) {
		if (c->ep_group[i] != LEARN_GROUP_NONE && in_ns(c, c->eps[i]) &&
		    !c->r->groups[c->ep_group[i]].is_addrs && labels_same(c->eps[i], ep)) {
			c->ep_group[e] = c->ep_group[i];
			c->r->groups[c->ep_group[i]].n_endpoints++;
			*ret = c->ep_group[e];
			return 0;
		}
	}
	for (size_t k = 1; k <= ep->n_labels && k <= LEARN_SUBSET_MAX && !best_k; k++) {
		for (size_t j = 0; j < k; j++)
			idx[j] = j;
		do {
			if (!subset_ambiguous(c, ep, idx, k)) {
				best_k = k;
				break;
			}
		} while (comb_next(idx, k, ep->n_labels));
	}
	g = group_add(c, &gi);
	if (!g)
		return -ENOMEM;
	g->n_endpoints = 1;
	if (!best_k && ep->n_labels) {
		/* no small subset: all labels (ambiguous only when another
		 * endpoint has them all and more) */
		size_t all[64];

		best_k = ep->n_labels < 64 ? ep->n_labels : 64;
		for (size_t j = 0; j < best_k; j++)
			all[j] = j;
		g->labels = calloc(best_k, sizeof(*g->labels));
		if (!g->labels)
			return -ENOMEM;
		for (size_t j = 0; j < best_k; j++)
			g->labels[j] = &ep->labels[all[j]];
		g->n_labels = best_k;
		if (subset_ambiguous(c, ep, all, best_k) &&
		    warn(c, ep->id, "its labels also select endpoints with more labels") < 0)
			return -ENOMEM;
	} else if (best_k) {
		g->labels = calloc(best_k, sizeof(*g->labels));
		if (!g->labels)
			return -ENOMEM;
		for (size_t j = 0; j < best_k; j++)
			g->labels[j] = &ep->labels[idx[j]];
		g->n_labels = best_k;
	}
	if (!g->n_labels) {
		/* no labels: only its addresses name it */
		g->is_addrs = true;
		g->cidrs = calloc(ep->n_ips ? ep->n_ips : 1, sizeof(*g->cidrs));
		if (!g->cidrs)
			return -ENOMEM;
		for (size_t i = 0; i < ep->n_ips; i++) {
			g->cidrs[i].addr = ep->ips[i];
			g->cidrs[i].plen = ep->ips[i].family == AF_INET ? 32 : 128;
		}
		g->n_cidrs = ep->n_ips;
		if (warn(c, ep->id, "no labels: named by its addresses") < 0)
			return -ENOMEM;
		snprintf(base, sizeof(base), "%s", ep->name ? ep->name : ep->id);
	} else {
		size_t len = 0;

		for (size_t j = 0; j < g->n_labels && len < sizeof(base); j++)
			len += (size_t)snprintf(base + len, sizeof(base) - len, "%s%s", j ? "-" : "",
						g->labels[j]->value[0] ? g->labels[j]->value :
									  g->labels[j]->key);
	}
	group_name_set(c, g, base);
	c->ep_group[e] = gi;
	*ret = gi;
	return 0;
}

static const struct mseg_endpoint *ep_by_id(const struct learn_ctx *c, const char *id,
					    uint32_t *ret)
{
	struct id_cache_slot *cs = &c->id_cache[((uintptr_t)id >> 3) % ID_CACHE_SIZE];
	size_t lo = 0, hi = c->n_eps;

	if (cs->id == id) {
		*ret = cs->ep;
		return c->eps[cs->ep];
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int k = strcmp(c->eps[mid]->id, id);

		if (k == 0) {
			cs->id = id;
			cs->ep = (uint32_t)mid;
			*ret = (uint32_t)mid;
			return c->eps[mid];
		}
		if (k < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* An address as a hash key: the family and its bytes, the rest zero. */
static void addr_key(const struct mseg_addr *a, struct mseg_addr *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->family = a->family;
	memcpy(ret->bytes, a->bytes, a->family == AF_INET ? 4 : 16);
}

/* @a as addr_key() made it, @h its bytes_hash() */
static bool ep_by_addr(const struct learn_ctx *c, const struct mseg_addr *a, uint32_t h,
		       uint32_t *ret)
{
	size_t mask = c->n_addr_slots - 1;

	for (size_t i = h & mask; c->addr_slots[i].idx != UINT32_MAX; i = (i + 1) & mask) {
		const struct addr_ep *f = &c->addrs[c->addr_slots[i].idx];

		if (c->addr_slots[i].hash == h && addr_cmp(&f->a, a) == 0) {
			*ret = f->ep;
			return true;
		}
	}
	return false;
}

/* The address table (sorted) by hash; the first of equal addresses wins,
 * as the sorted order has it. */
static int addr_slots_build(struct learn_ctx *c)
{
	c->n_addr_slots = 16;
	while (c->n_addr_slots < 2 * c->n_addrs)
		c->n_addr_slots *= 2;
	c->addr_slots = slots_new(c->n_addr_slots);
	if (!c->addr_slots)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_addrs; i++) {
		size_t mask = c->n_addr_slots - 1, h;
		struct mseg_addr k;
		uint32_t hv;
		bool dup = false;

		addr_key(&c->addrs[i].a, &k);
		hv = bytes_hash(&k, sizeof(k));
		for (h = hv & mask; c->addr_slots[h].idx != UINT32_MAX && !dup; h = (h + 1) & mask)
			dup = c->addr_slots[h].hash == hv &&
			      addr_cmp(&c->addrs[c->addr_slots[h].idx].a, &c->addrs[i].a) == 0;
		if (!dup) {
			c->addr_slots[h].idx = (uint32_t)i;
			c->addr_slots[h].hash = hv;
		}
	}
	return 0;
}

/* The outside address @k (hash @h) as an index into c->xaddrs, added
 * when new. -ENOMEM. */
static int xaddr_intern(struct learn_ctx *c, const struct mseg_addr *k, uint32_t h,
			uint32_t *ret)
{
	size_t mask = c->n_x_slots - 1, i;

	for (i = h & mask; c->x_slots[i].idx != UINT32_MAX; i = (i + 1) & mask) {
		if (c->x_slots[i].hash == h && memcmp(&c->xaddrs[c->x_slots[i].idx], k, sizeof(*k)) == 0) {
			*ret = c->x_slots[i].idx;
			return 0;
		}
	}
	if (c->n_xaddrs == c->cap_xaddrs) {
		size_t cap = c->cap_xaddrs ? c->cap_xaddrs * 2 : 1024;
		struct mseg_addr *v = realloc(c->xaddrs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->xaddrs = v;
		c->cap_xaddrs = cap;
	}
	if (c->n_xaddrs >= SIDE_ADDR)
		return -ENOMEM;
	c->xaddrs[c->n_xaddrs] = *k;
	c->x_slots[i].idx = (uint32_t)c->n_xaddrs;
	c->x_slots[i].hash = h;
	*ret = (uint32_t)c->n_xaddrs++;
	if (2 * c->n_xaddrs > c->n_x_slots)
		return slots_grow(&c->x_slots, &c->n_x_slots);
	return 0;
}

/* A side as an edge key's number: an endpoint of the namespace -> its
 * group; else (an outside peer, or an endpoint without labels) the
 * interned address. */
static int side_id(struct learn_ctx *c, const struct mseg_addr *a, uint32_t *ret)
{
	struct mseg_addr k;
	uint32_t e = 0, h, g;
	int r;

	addr_key(a, &k);
	h = bytes_hash(&k, sizeof(k));
	if (ep_by_addr(c, &k, h, &e) && c->ep_in_ns[e]) {
		r = ep_group_get(c, e, &g);
		if (r < 0)
			return r;
		if (!c->r->groups[g].is_addrs) {
			*ret = g;
			return 0;
		}
		/* label-less: by address like outside peers */
	}
	r = xaddr_intern(c, &k, h, &e);
	*ret = SIDE_ADDR | e;
	return r;
}

static int rule_add(struct learn_ctx *c, uint32_t from, uint32_t to, const struct edge *e,
		    size_t n)
{
	struct learn_result *r = c->r;
	struct learn_rule *rule;

	if (r->n_rules == c->cap_rules) {
		size_t cap = c->cap_rules ? c->cap_rules * 2 : 16;
		struct learn_rule *v = realloc(r->rules, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->rules = v;
		c->cap_rules = cap;
	}
	rule = &r->rules[r->n_rules];
	memset(rule, 0, sizeof(*rule));
	rule->from = from;
	rule->to = to;
	rule->ports = calloc(n, sizeof(*rule->ports));
	if (!rule->ports)
		return -ENOMEM;
	rule->first_ns = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		struct learn_port p = { .proto = e[i].k.proto, .has_port = e[i].k.has_port,
					.port = e[i].k.port };

		/* sorted: equal ports are adjacent (they differ by address only) */
		if (!rule->n_ports || memcmp(&rule->ports[rule->n_ports - 1], &p, sizeof(p)) != 0)
			rule->ports[rule->n_ports++] = p;
		rule->flows += e[i].count;
		rule->connections += e[i].accepted;
		if (e[i].first < rule->first_ns)
			rule->first_ns = e[i].first;
		if (e[i].last > rule->last_ns)
			rule->last_ns = e[i].last;
	}
	r->n_rules++;
	return 0;
}

/* One outside address's traffic with one group in one direction. */
struct ext {
	uint32_t g;
	uint8_t ext_is_from;
	struct mseg_addr a;
	const struct edge *e;        /* its edges (same ports order) */
	size_t n;
};

static int ports_cmp(const struct ext *a, const struct ext *b)
{
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (size_t i = 0; i < a->n; i++) {
		const struct edge_key *x = &a->e[i].k, *y = &b->e[i].k;

		if (x->proto != y->proto)
			return x->proto < y->proto ? -1 : 1;
		if (x->has_port != y->has_port)
			return x->has_port < y->has_port ? -1 : 1;
		if (x->port != y->port)
			return x->port < y->port ? -1 : 1;
	}
	return 0;
}

static int ext_cmp(const void *pa, const void *pb)
{
	const struct ext *a = pa, *b = pb;
	int c;

	if (a->g != b->g)
		return a->g < b->g ? -1 : 1;
	if (a->ext_is_from != b->ext_is_from)
		return a->ext_is_from < b->ext_is_from ? -1 : 1;
	if ((c = ports_cmp(a, b)))
		return c;
	return addr_cmp(&a->a, &b->a);
}

static void addr_mask(struct mseg_addr *a, unsigned plen)
{
	unsigned bits = a->family == AF_INET ? 32 : 128;

	for (unsigned b = plen; b < bits; b++)
		a->bytes[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
}

/* Sorted, unique host addresses (or /N prefixes) -> CIDRs: two sibling
 * prefixes of one length merge into their parent, repeatedly, so a prefix
 * appears only when every address inside it is in the input. */
static size_t cidrs_merge(struct mseg_cidr *v, size_t n)
{
	size_t top = 0;

	for (size_t i = 0; i < n; i++) {
		v[top++] = v[i];
		while (top >= 2) {
			struct mseg_cidr *a = &v[top - 2], *b = &v[top - 1];
			struct mseg_addr pa = a->addr, pb = b->addr;

			if (a->plen != b->plen || a->plen == 0 || a->addr.family != b->addr.family)
				break;
			addr_mask(&pa, a->plen - 1u);
			addr_mask(&pb, a->plen - 1u);
			if (!addr_eq(&pa, &pb))
				break;
			a->addr = pa;
			a->plen--;
			top--;
		}
	}
	return top;
}

static bool ep_labels_same(const struct mseg_endpoint *a, const struct mseg_endpoint *b)
{
	return strcmp(a->ns ? a->ns : "default", b->ns ? b->ns : "default") == 0 &&
	       labels_same(a, b);
}

/* For NetworkPolicy: the endpoints of other namespaces among the addresses
 * ext[0..n) by their labels (one per label set), the other addresses as
 * CIDRs (merged and widened as for the AllowList). */
static int ext_class_netpol(struct learn_ctx *c, struct learn_group *g, const struct ext *x,
			    size_t n)
{
	size_t k = 0;

	g->peer_eps = calloc(n, sizeof(*g->peer_eps));
	g->np_cidrs = calloc(n, sizeof(*g->np_cidrs));
	if (!g->peer_eps || !g->np_cidrs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct mseg_cidr cd = { .addr = x[i].a, .plen = x[i].a.family == AF_INET ? 32 : 128 };
		uint8_t agg = cd.addr.family == AF_INET ? c->o->aggregate4 : c->o->aggregate6;
		struct mseg_addr key;
		uint32_t e;

		addr_key(&x[i].a, &key);
		if (ep_by_addr(c, &key, bytes_hash(&key, sizeof(key)), &e) && !c->ep_in_ns[e] &&
		    c->eps[e]->n_labels) {
			bool dup = false;

			for (size_t j = 0; j < g->n_peer_eps && !dup; j++)
				dup = ep_labels_same(g->peer_eps[j], c->eps[e]);
			if (!dup)
				g->peer_eps[g->n_peer_eps++] = c->eps[e];
			continue;
		}
		if (agg && agg < cd.plen) {
			addr_mask(&cd.addr, agg);
			cd.plen = agg;
		}
		if (k && g->np_cidrs[k - 1].plen == cd.plen && addr_eq(&g->np_cidrs[k - 1].addr, &cd.addr))
			continue;
		g->np_cidrs[k++] = cd;
	}
	g->n_np_cidrs = cidrs_merge(g->np_cidrs, k);
	return 0;
}

/* Addresses ext[0..n) share group, direction and ports: one address group
 * and one rule. */
static int ext_class_emit(struct learn_ctx *c, const struct ext *x, size_t n)
{
	struct learn_group *g;
	struct edge *all;
	size_t n_all = 0, k = 0;
	uint32_t gi;
	char base[48];
	int r;

	g = group_add(c, &gi);
	if (!g)
		return -ENOMEM;
	g->is_addrs = true;
	g->cidrs = calloc(n, sizeof(*g->cidrs));
	if (!g->cidrs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct mseg_cidr cd = { .addr = x[i].a, .plen = x[i].a.family == AF_INET ? 32 : 128 };
		uint8_t agg = cd.addr.family == AF_INET ? c->o->aggregate4 : c->o->aggregate6;

		if (agg && agg < cd.plen) {
			addr_mask(&cd.addr, agg);
			cd.plen = agg;
		}
		if (k && g->cidrs[k - 1].plen == cd.plen && addr_eq(&g->cidrs[k - 1].addr, &cd.addr))
			continue;
		g->cidrs[k++] = cd;
		n_all += x[i].n;
	}
	g->n_cidrs = cidrs_merge(g->cidrs, k);
	r = ext_class_netpol(c, g, x, n);
	if (r < 0)
		return r;
	/* outside clients of a group, or outside servers it calls */
	snprintf(base, sizeof(base), "%.36s-%s", c->r->groups[x[0].g].name,
		 x[0].ext_is_from ? "clients" : "upstreams");
	group_name_set(c, g, base);
	/* every address's edges, for the counts (the ports are the same) */
	n_all = 0;
	for (size_t i = 0; i < n; i++)
		n_all += x[i].n;
	all = malloc(n_all * sizeof(*all));
	if (!all)
		return -ENOMEM;
	n_all = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(all + n_all, x[i].e, x[i].n * sizeof(*all));
		n_all += x[i].n;
	}
	/* edge_cmp orders by address first; rule_add wants equal ports
	 * adjacent: without the sides, it sorts by ports only */
	for (size_t i = 0; i < n_all; i++)
		all[i].k.from = all[i].k.to = 0;
	qsort_r(all, n_all, sizeof(*all), edge_cmp, c->xaddrs);
	r = rule_add(c, x[0].ext_is_from ? gi : x[0].g, x[0].ext_is_from ? x[0].g : gi, all, n_all);
	free(all);
	return r;
}

static int learn_build(struct learn_ctx *c, const struct learn_flow *flows, size_t n_flows)
{
	struct edge *edges;
	struct ext *ext = NULL;
	struct edge_slot *slots;
	size_t n = 0, n_ext = 0, n_slots = 4096;
	int r = 0;

	/* equal edges are summed as they come (a hash of their keys): most
	 * records repeat a pair, and only the distinct ones are sorted. The
	 * table grows with the distinct edges, at most half full, so that
	 * it stays small (in cache) when records repeat. */
	edges = malloc((n_flows ? n_flows : 1) * sizeof(*edges));
	slots = malloc(n_slots * sizeof(*slots));
	c->n_x_slots = 1024;
	c->x_slots = slots_new(c->n_x_slots);
	if (!edges || !slots || !c->x_slots) {
		free(edges);
		free(slots);
		return -ENOMEM;
	}
	memset(slots, 0xff, n_slots * sizeof(*slots));
	for (size_t i = 0; i < n_flows; i++) {
		const struct learn_flow *f = &flows[i];
		const struct mseg_endpoint *ep;
		struct edge_key k;
		uint32_t ei;
		size_t h;

		ep = f->ep_id ? ep_by_id(c, f->ep_id, &ei) : NULL;
		if (!ep || !c->ep_in_ns[ei] || f->src.family != f->dst.family ||
		    (f->dir != MSEG_DIR_INGRESS && f->dir != MSEG_DIR_EGRESS)) {
			c->r->flows_skipped++;
			continue;
		}
		/* both sides by address: src opened the connection to dst,
		 * whichever end recorded it */
		r = side_id(c, &f->src, &k.from);
		if (r == 0)
			r = side_id(c, &f->dst, &k.to);
		if (r < 0)
			goto out;
		if ((k.from & SIDE_ADDR) && (k.to & SIDE_ADDR)) {
			/* the recording endpoint has no labels, or its address
			 * is no longer its own: nothing to name it by */
			c->r->flows_skipped++;
			continue;
		}
		k.proto = f->proto;
		k.has_port = f->has_port;
		k.port = f->has_port ? f->dport : 0;
		if (f->accepted)
			c->r->accepted_used += f->count;
		else
			c->r->flows_used++;
		for (h = edge_key_hash(&k) & (n_slots - 1);
		     slots[h].idx != UINT32_MAX && memcmp(&slots[h].k, &k, sizeof(k)) != 0;
		     h = (h + 1) & (n_slots - 1))
			;
		if (slots[h].idx != UINT32_MAX) {
			struct edge *o = &edges[slots[h].idx];

			if (f->accepted)
				o->accepted += f->count;
			else
				o->count += f->count ? f->count : 1;
			if (f->first_ns < o->first)
				o->first = f->first_ns;
			if (f->last_ns > o->last)
				o->last = f->last_ns;
			continue;
		}
		slots[h].k = k;
		slots[h].idx = (uint32_t)n;
		{
			struct edge *e = &edges[n++];

			e->k = k;
			e->count = f->accepted ? 0 : f->count ? f->count : 1;
			e->accepted = f->accepted ? f->count : 0;
			e->first = f->first_ns;
			e->last = f->last_ns;
		}
		if (2 * n > n_slots) {
			/* double, and re-place the used slots */
			size_t nn = n_slots * 2;
			struct edge_slot *w = malloc(nn * sizeof(*w));

			if (!w) {
				r = -ENOMEM;
				goto out;
			}
			memset(w, 0xff, nn * sizeof(*w));
			for (size_t j = 0; j < n_slots; j++) {
				if (slots[j].idx == UINT32_MAX)
					continue;
				for (h = edge_key_hash(&slots[j].k) & (nn - 1); w[h].idx != UINT32_MAX;
				     h = (h + 1) & (nn - 1))
					;
				w[h] = slots[j];
			}
			free(slots);
			slots = w;
			n_slots = nn;
		}
	}
	free(slots);
	slots = NULL;
	qsort_r(edges, n, sizeof(*edges), edge_cmp, c->xaddrs);
	ext = calloc(n ? n : 1, sizeof(*ext));
	if (!ext) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		const struct edge_key *k = &edges[i].k;

		while (j < n && edges[j].k.from == k->from && edges[j].k.to == k->to)
			j++;
		if (!(k->from & SIDE_ADDR) && !(k->to & SIDE_ADDR)) {
			r = rule_add(c, k->from, k->to, edges + i, j - i);
			if (r < 0)
				goto out;
		} else {
			struct ext *x = &ext[n_ext++];

			x->ext_is_from = (k->from & SIDE_ADDR) != 0;
			x->g = x->ext_is_from ? k->to : k->from;
			x->a = c->xaddrs[(x->ext_is_from ? k->from : k->to) & ~SIDE_ADDR];
			x->e = edges + i;
			x->n = j - i;
		}
		i = j;
	}
	qsort(ext, n_ext, sizeof(*ext), ext_cmp);
	for (size_t i = 0; i < n_ext;) {
		size_t j = i + 1;

		while (j < n_ext && ext[j].g == ext[i].g && ext[j].ext_is_from == ext[i].ext_is_from &&
		       ext[j].a.family == ext[i].a.family && ports_cmp(&ext[j], &ext[i]) == 0)
			j++;
		r = ext_class_emit(c, ext + i, j - i);
		if (r < 0)
			goto out;
		i = j;
	}
out:
	free(slots);
	free(ext);
	free(edges);
	return r;
}

static int ep_ptr_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct mseg_endpoint *const *)a)->id,
		      (*(const struct mseg_endpoint *const *)b)->id);
}

int learn_run(const struct learn_flow *flows, size_t n_flows,
	      const struct mseg_endpoint *const *eps, size_t n_eps,
	      const struct learn_opts *opts, struct learn_result **ret)
{
	struct learn_ctx c = { .o = opts, .n_eps = n_eps };
	const struct mseg_endpoint **sorted;
	size_t n_addrs = 0;
	int r;

	if (!opts || !opts->ns || !opts->ns[0])
		return -EINVAL;
	/* by id, for the lookups of the recording endpoint */
	sorted = malloc((n_eps ? n_eps : 1) * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	if (n_eps)
		memcpy(sorted, eps, n_eps * sizeof(*sorted));
	qsort(sorted, n_eps, sizeof(*sorted), ep_ptr_cmp);
	c.eps = sorted;
	eps = sorted;
	c.r = calloc(1, sizeof(*c.r));
	c.ep_group = malloc((n_eps ? n_eps : 1) * sizeof(*c.ep_group));
	c.ep_in_ns = malloc((n_eps ? n_eps : 1) * sizeof(*c.ep_in_ns));
	for (size_t i = 0; i < n_eps; i++)
		n_addrs += eps[i]->n_ips;
	c.addrs = malloc((n_addrs ? n_addrs : 1) * sizeof(*c.addrs));
	c.id_cache = calloc(ID_CACHE_SIZE, sizeof(*c.id_cache));
	if (!c.r || !c.ep_group || !c.ep_in_ns || !c.addrs || !c.id_cache) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_eps; i++) {
		c.ep_group[i] = LEARN_GROUP_NONE;
		c.ep_in_ns[i] = in_ns(&c, eps[i]);
		for (size_t k = 0; k < eps[i]->n_ips; k++) {
			c.addrs[c.n_addrs].a = eps[i]->ips[k];
			c.addrs[c.n_addrs++].ep = (uint32_t)i;
		}
	}
	qsort(c.addrs, c.n_addrs, sizeof(*c.addrs), addr_ep_cmp);
	r = addr_slots_build(&c);
	if (r == 0)
		r = learn_build(&c, flows, n_flows);
out:
	free(c.id_cache);
	free(c.addr_slots);
	free(c.x_slots);
	free(c.xaddrs);
	free(c.ep_group);
	free(c.ep_in_ns);
	free(c.addrs);
	free(sorted);
	if (r < 0) {
		learn_result_free(c.r);
		return r;
	}
	*ret = c.r;
	return 0;
}

struct learn_result *learn_result_free(struct learn_result *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n_groups; i++) {
		free(r->groups[i].labels);
		free(r->groups[i].cidrs);
		free(r->groups[i].peer_eps);
		free(r->groups[i].np_cidrs);
	}
	for (size_t i = 0; i < r->n_rules; i++)
		free(r->rules[i].ports);
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->groups);
	free(r->rules);
	free(r->warnings);
	free(r);
	return NULL;
}

/* ---- YAML ---- */

/* A YAML double-quoted scalar (JSON string escapes are valid YAML). */
static void yq(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static const char *time_fmt(uint64_t ns, char *buf, size_t size)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, size, "?");
		return buf;
	}
	snprintf(buf + strlen(buf), size - strlen(buf), ".%03uZ",
		 (unsigned)(ns / 1000000u % 1000u));
	return buf;
}

/* "12 flows", "30 accepted connections" or both: what a rule was learned
 * from (audited flow records, accepted-connection summaries) */
static const char *rule_counts(const struct learn_rule *ru, char *buf, size_t size)
{
	if (ru->flows && ru->connections)
		snprintf(buf, size, "%llu flow%s, %llu accepted connection%s",
			 (unsigned long long)ru->flows, ru->flows == 1 ? "" : "s",
			 (unsigned long long)ru->connections, ru->connections == 1 ? "" : "s");
	else if (ru->connections)
		snprintf(buf, size, "%llu accepted connection%s", (unsigned long long)ru->connections,
			 ru->connections == 1 ? "" : "s");
	else
		snprintf(buf, size, "%llu flow%s", (unsigned long long)ru->flows,
			 ru->flows == 1 ? "" : "s");
	return buf;
}

/* The first line: what the list was learned from. */
static void learn_source_print(FILE *f, const struct learn_result *r)
{
	fprintf(f, "# learned by mseg from %zu recorded flows", r->flows_used);
	if (r->accepted_used)
		fprintf(f, " and %llu accepted connections", (unsigned long long)r->accepted_used);
}

int learn_render_yaml(FILE *f, const struct learn_result *r, const struct learn_opts *o)
{
	char a[64], t1[40], t2[40], p[32], c[96];

	learn_source_print(f, r);
	if (o->aggregate4 || o->aggregate6)
		fprintf(f, " (outside peers widened to /%u and /%u)", o->aggregate4 ? o->aggregate4 : 32,
			o->aggregate6 ? o->aggregate6 : 128);
	fprintf(f, "\n");
	for (size_t i = 0; i < r->n_warnings; i++)
		fprintf(f, "# warning: %s\n", r->warnings[i]);
	fprintf(f, "apiVersion: mseg.io/v1\nkind: AllowList\nmetadata:\n  name: ");
	yq(f, o->name ? o->name : "learned");
	fprintf(f, "\n  namespace: ");
	yq(f, o->ns);
	fprintf(f, "\nspec:\n  mode: enforce\n  groups:\n");
	if (!r->n_groups)
		fprintf(f, "    {}\n");
	for (size_t i = 0; i < r->n_groups; i++) {
		const struct learn_group *g = &r->groups[i];

		fprintf(f, "    %s: {", g->name);
		if (g->is_addrs) {
			fprintf(f, "cidrs: [");
			for (size_t k = 0; k < g->n_cidrs; k++)
				fprintf(f, "%s%s/%u", k ? ", " : "",
					addr_format(&g->cidrs[k].addr, a, sizeof(a)), g->cidrs[k].plen);
			fprintf(f, "]}\n");
			continue;
		}
		fprintf(f, "selector: {");
		for (size_t k = 0; k < g->n_labels; k++) {
			fprintf(f, "%s", k ? ", " : "");
			yq(f, g->labels[k]->key);
			fprintf(f, ": ");
			yq(f, g->labels[k]->value);
		}
		fprintf(f, "}}\n");
	}
	fprintf(f, "  allow:%s\n", r->n_rules ? "" : " []");
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct learn_rule *ru = &r->rules[i];

		fprintf(f, "    # %s, first %s, last %s\n", rule_counts(ru, c, sizeof(c)),
			time_fmt(ru->first_ns, t1, sizeof(t1)),
			time_fmt(ru->last_ns, t2, sizeof(t2)));
		fprintf(f, "    - {from: %s, to: %s, ports: [", r->groups[ru->from].name,
			r->groups[ru->to].name);
		for (size_t k = 0; k < ru->n_ports; k++)
			fprintf(f, "%s%s", k ? ", " : "", learn_port_format(&ru->ports[k], p, sizeof(p)));
		fprintf(f, "]}\n");
	}
	return ferror(f) ? -EIO : 0;
}

/* ---- NetworkPolicy ---- */

static const char *netpol_proto(uint8_t proto)
{
	switch (proto) {
	case 6: return "TCP";
	case 17: return "UDP";
	case 132: return "SCTP";
	}
	return NULL;
}

static bool netpol_port_ok(const struct learn_port *p)
{
	return netpol_proto(p->proto) && p->has_port;
}

static bool netpol_rule_ok(const struct learn_rule *ru)
{
	for (size_t k = 0; k < ru->n_ports; k++)
		if (netpol_port_ok(&ru->ports[k]))
			return true;
	return false;
}

static void rule_comment(FILE *f, const struct learn_rule *ru, const char *indent)
{
	char t1[40], t2[40], c[96];

	fprintf(f, "%s# %s, first %s, last %s\n", indent, rule_counts(ru, c, sizeof(c)),
		time_fmt(ru->first_ns, t1, sizeof(t1)),
		time_fmt(ru->last_ns, t2, sizeof(t2)));
}

static void netpol_selector(FILE *f, const struct learn_group *g)
{
	fprintf(f, "{matchLabels: {");
	for (size_t k = 0; k < g->n_labels; k++) {
		fprintf(f, "%s", k ? ", " : "");
		yq(f, g->labels[k]->key);
		fprintf(f, ": ");
		yq(f, g->labels[k]->value);
	}
	fprintf(f, "}}");
}

/* One ingress (@ingress) or egress rule of group @self's policy: the peer
 * is the rule's other side. */
static void netpol_rule(FILE *f, const struct learn_result *r, const struct learn_rule *ru,
			bool ingress)
{
	const struct learn_group *peer = &r->groups[ingress ? ru->from : ru->to];
	size_t n_ok = 0;
	char a[64], p[32];

	for (size_t k = 0; k < ru->n_ports; k++) {
		if (netpol_port_ok(&ru->ports[k]))
			n_ok++;
		else
			fprintf(f, "    # left out: %s (a NetworkPolicy names only TCP, UDP and SCTP "
				"ports)\n", learn_port_format(&ru->ports[k], p, sizeof(p)));
	}
	if (!n_ok)
		return;
	rule_comment(f, ru, "    ");
	fprintf(f, "    - %s:\n", ingress ? "from" : "to");
	if (peer->is_addrs) {
		bool np = peer->np_cidrs != NULL;
		const struct mseg_cidr *cv = np ? peer->np_cidrs : peer->cidrs;
		size_t n = np ? peer->n_np_cidrs : peer->n_cidrs;

		for (size_t k = 0; k < n; k++)
			fprintf(f, "        - ipBlock: {cidr: %s/%u}\n",
				addr_format(&cv[k].addr, a, sizeof(a)), cv[k].plen);
		for (size_t k = 0; np && k < peer->n_peer_eps; k++) {
			const struct mseg_endpoint *ep = peer->peer_eps[k];

			fprintf(f, "        - namespaceSelector: {matchLabels: {\"kubernetes.io/metadata.name\": ");
			yq(f, ep->ns ? ep->ns : "default");
			fprintf(f, "}}\n          podSelector: {matchLabels: {");
			for (size_t j = 0; j < ep->n_labels; j++) {
				fprintf(f, "%s", j ? ", " : "");
				yq(f, ep->labels[j].key);
				fprintf(f, ": ");
				yq(f, ep->labels[j].value);
			}
			fprintf(f, "}}\n");
		}
	} else {
		fprintf(f, "        - podSelector: ");
		netpol_selector(f, peer);
		fprintf(f, "\n");
	}
	fprintf(f, "      ports:\n");
	for (size_t k = 0; k < ru->n_ports; k++)
		if (netpol_port_ok(&ru->ports[k]))
			fprintf(f, "        - {protocol: %s, port: %u}\n", netpol_proto(ru->ports[k].proto),
				ru->ports[k].port);
}

/* "NAME-GROUP" as a DNS subdomain: lowercase, '_' as '-'; unique among
 * the @n names already given (a suffix "-N" otherwise). */
static void netpol_name(char *buf, size_t size, const char *list, const char *group,
			char (*given)[96], size_t n)
{
	char base[96];
	size_t k = 0;

	snprintf(base, sizeof(base), "%.40s-%.40s", list, group);
	for (char *q = base; *q; q++) {
		char ch = *q;

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		else if (ch == '_')
			ch = '-';
		base[k++] = ch;
	}
	base[k] = '\0';
	for (unsigned i = 1;; i++) {
		bool clash = false;

		if (i == 1)
			snprintf(buf, size, "%s", base);
		else
			snprintf(buf, size, "%.82s-%u", base, i);
		for (size_t j = 0; j < n && !clash; j++)
			clash = strcmp(given[j], buf) == 0;
		if (!clash)
			return;
	}
}

int learn_render_netpol(FILE *f, const struct learn_result *r, const struct learn_opts *o)
{
	char (*given)[96] = calloc(r->n_groups ? r->n_groups : 1, sizeof(*given));
	size_t n_given = 0;

	if (!given)
		return -ENOMEM;
	learn_source_print(f, r);
	if (o->aggregate4 || o->aggregate6)
		fprintf(f, " (outside peers widened to /%u and /%u)", o->aggregate4 ? o->aggregate4 : 32,
			o->aggregate6 ? o->aggregate6 : 128);
	fprintf(f, ": NetworkPolicies, one per group of endpoints\n");
	for (size_t i = 0; i < r->n_warnings; i++)
		fprintf(f, "# warning: %s\n", r->warnings[i]);
	for (size_t gi = 0; gi < r->n_groups; gi++) {
		const struct learn_group *g = &r->groups[gi];
		bool used = false, any_in = false, any_out = false;

		if (g->is_addrs)
			continue;
		for (size_t i = 0; i < r->n_rules; i++) {
			bool ok = netpol_rule_ok(&r->rules[i]);

			used |= r->rules[i].to == gi || r->rules[i].from == gi;
			any_in |= r->rules[i].to == gi && ok;
			any_out |= r->rules[i].from == gi && ok;
		}
		if (!used)
			continue;
		netpol_name(given[n_given], sizeof(given[0]), o->name ? o->name : "learned", g->name,
			    given, n_given);
		fprintf(f, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
			   "  name: ");
		yq(f, given[n_given++]);
		fprintf(f, "\n  namespace: ");
		yq(f, o->ns);
		fprintf(f, "\nspec:\n  podSelector: ");
		netpol_selector(f, g);
		/* the AllowList isolates both directions of what it covers */
		fprintf(f, "\n  policyTypes: [Ingress, Egress]\n  ingress:%s\n", any_in ? "" : " []");
		for (size_t i = 0; i < r->n_rules; i++)
			if (r->rules[i].to == gi)
				netpol_rule(f, r, &r->rules[i], true);
		fprintf(f, "  egress:%s\n", any_out ? "" : " []");
		for (size_t i = 0; i < r->n_rules; i++)
			if (r->rules[i].from == gi)
				netpol_rule(f, r, &r->rules[i], false);
	}
	free(given);
	return ferror(f) ? -EIO : 0;
}
