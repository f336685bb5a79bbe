/* compile: (policies, endpoints) -> per endpoint and direction: isolated?,
 * mode, normalized allow entries (include/mseg/plan.h, docs/compile.md).
 *
 * Pure and deterministic. The steps:
 *  1. Sort the endpoints by id (an inventory's come sorted: a check); from
 *     here on an endpoint is its index in that order. Index them by
 *     namespace (epindex.c: the runs of one namespace in id order, sorted).
 *  2. Selections: each distinct endpoint selection (namespace scope and label
 *     selectors) among the policies' subjects, the rules' local sides and
 *     their peers is evaluated once, through the index -> an ascending list
 *     of endpoint indexes: a named namespace reads its endpoints only; a
 *     namespace selector is evaluated once per namespace (per distinct
 *     namespace labels in it), the label selector only on the endpoints of
 *     the namespaces that match. Policies that reuse a group share the work.
 *  3. Coverage: isolation and mode per endpoint and direction, of the
 *     endpoints the plan has (with compile_opts.local_only, only endpoints
 *     with a netns: the "slots"; the others are left out of the plan).
 *  4. For each isolated (endpoint, direction) of a slot: the set of rules whose local
 *     side selects the endpoint, as a bitset over rules. Endpoints with the
 *     same set (and, when an ingress rule in it names a port, the same named
 *     ports) have the same entries: they form one group, computed once; its
 *     entry array is shared by the group's endpoints (read-only).
 *  5. Per group: raw boxes (peer addresses x ports) bucketed by (family,
 *     protocol); in an egress group, each Service route whose backend a box
 *     admits adds the route's VIP and port with that box's provenance
 *     (compile_opts.svc_routes); then normalized into disjoint boxes (boxes.c), boxes covered by
 *     an every-protocol range dropped, boxes of at most expand_max points
 *     expanded into exact entries (hash sets instead of interval sets, whose
 *     elements cost the kernel far more memory: docs/compile.md), sorted
 *     (the classes come out sorted: a merge) and converted to entries. The
 *     peer addresses of a selection are gathered once and read by every
 *     group (only named ports are resolved per group); every group's
 *     entries go into one block, the plan's (ctx_out_reserve()).
 *  6. With a compile cache (compile_plan_cached(), mseg/compile/cache.h):
 *     before step 5, each group's content key; a group the cache holds
 *     takes its array, only the others are computed.
 * Cost: O(E) for the plan's per-endpoint isolation and the index (plus a
 * sort of the runs of equal namespace, epindex.c); per selection, its
 * namespace's endpoints (named), or one evaluation per namespace and the
 * endpoints of the matching ones (namespace selector), or every endpoint
 * (every namespace); O(P * R / 64) for the rule sets of the P slots (local
 * endpoints with local_only), and per group the normalization of its raw
 * boxes (boxes.c), instead of per endpoint; with a cache, per group only
 * when its key changed. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "mseg/compile/cache.h"
#include "mseg/model/addr.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "mseg/model/selector.h"
#include "mseg/util/hash.h"
#include "compile/boxes.h"
#include "compile/epindex.h"
#include "util/vec.h"

#define SEL_NONE UINT32_MAX
#define SLOT_NONE UINT32_MAX

/* A 128-bit content key (compile cache): two independent 64-bit hashes. */
struct h128 {
	uint64_t a, b;
};
#define N_BUCKETS (2 * 256)

/* An address of a selected endpoint. */
struct sel_addr {
	box_u128 v;
	uint32_t ep;                    /* the endpoint (egress named ports resolve there) */
	uint8_t fam;
};

/* A distinct endpoint selection, evaluated once (ep_index_select()). */
struct sel {
	const struct mseg_peer *peer;   /* the first peer with this selection */
	uint64_t hash;
	uint32_t *eps;                  /* matching endpoints, ascending */
	size_t n_eps;
	/* as a peer: the addresses of those endpoints, in that order, made on
	 * first use and kept while the cache has room (sel_addrs()) */
	bool kept;
	struct sel_addr *addrs;
	size_t n_addrs;
	/* with a compile cache: the content the selection hands its groups
	 * (every picked endpoint's addresses and named ports), made on first
	 * use (sel_digest()) */
	bool digested;
	struct h128 digest;
};

/* Bytes of peer addresses kept (sel.addrs) at most; beyond that a
 * selection's addresses are gathered again for each group that needs them. */
#define SEL_ADDRS_MAX ((size_t)16 << 20)

struct cpeer {
	uint32_t sel;                   /* ENDPOINTS peers; SEL_NONE for ADDRS */
	struct box *ranges[2];          /* ADDRS peers: cidrs minus except, per family */
	size_t n_ranges[2];
};

struct crule {
	const struct mseg_rule *rule;
	uint64_t prov;
	uint32_t local;                 /* selection of the local side, or SEL_NONE */
	struct cpeer *peers;
	bool named;                     /* has a named port */
	bool keyed;                     /* key made (compile cache, rule_key()) */
	struct h128 key;
};

struct group {
	uint64_t hash;
	uint32_t rep;                   /* the first endpoint of the group */
	uint8_t dir;                    /* enum mseg_dir: egress adds Service VIPs */
	uint64_t *rules;                /* bitset over rules */
	bool named;                     /* entries depend on rep's named ports */
	size_t off, n_entries;          /* the entries in compile_ctx.out */
	struct cc_entry *ce;            /* with a compile cache: the entries there */
};

struct bucket {
	struct box *v;
	size_t n, cap;
};

/* A Service route by its backend: the index of the egress VIP lookups,
 * sorted by (family, backend, protocol, backend port, VIP, port). */
struct svc_ref {
	box_u128 backend, vip;
	uint8_t fam, proto;
	uint16_t backend_port, port;
};

/* A VIP box found for the group being computed, added after the scan. */
struct svc_hit {
	struct box b;
	uint8_t fam, proto;
};

struct compile_ctx {
	struct arena arena;
	const struct mseg_policy *const *pols;
	size_t n_pols;
	const struct mseg_endpoint *const *eps;  /* sorted by id: the caller's array,
	                                        * or eps_sorted */
	const struct mseg_endpoint **eps_sorted;
	size_t n_eps;
	struct ep_index ix;                    /* the endpoints by namespace */
	/* the endpoints that may get groups: slot_ep[slot] is one; with
	 * compile_opts.local_only those with a netns, else all (both NULL:
	 * slot = endpoint); slot_of[endpoint] is its slot or SLOT_NONE */
	uint32_t *slot_of, *slot_ep;
	size_t n_slots;

	struct sel *sels;
	size_t n_sels, cap_sels;
	uint32_t *sel_buf;                     /* a selection being evaluated */
	size_t cap_sel_buf;
	uint32_t *sel_table;                   /* open addressing, index + 1 */
	size_t sel_mask;

	struct crule *rules;
	size_t n_rules, rwords;                /* rwords: bitset size over rules */

	struct group *groups;
	size_t n_groups;
	uint32_t *group_table;
	size_t group_mask;

	struct box_ws *ws;
	struct bucket buckets[N_BUCKETS];      /* family * 256 + protocol */
	uint16_t touched[N_BUCKETS];
	size_t n_touched;
	struct box *any[2];                    /* normalized every-protocol ranges */
	size_t n_any[2], cap_any[2];
	struct box *ents;                      /* a group's entries, as boxes of any class */
	size_t n_ents, cap_ents;
	struct mseg_entry *out;                /* every group's entries, the plan's block */
	size_t n_out, cap_out, out_bytes;      /* out_bytes: allocated (ctx_out_reserve()) */
	bool out_mapped;                       /* out is a mapping, not from malloc */
	struct sel_addr *addrs;                /* a selection's addresses not kept */
	size_t cap_addrs;
	size_t kept_bytes;                     /* of every sel.addrs kept */
	size_t expand_max;                     /* compile_opts.expand_max, resolved */
	const struct mseg_addr *node_addrs;    /* compile_opts.node_addrs */
	size_t n_node_addrs;
	struct svc_ref *svc;                   /* compile_opts.svc_routes, indexed */
	size_t n_svc;
	struct svc_hit *hits;
	size_t n_hits, cap_hits;
	/* compile cache: the key of every endpoint's content (egress named
	 * ports towards address groups read every endpoint) */
	bool all_digested;
	struct h128 all_digest;
	bool svc_digested;                     /* ... and of c->svc */
	struct h128 svc_digest;
};

/* The plan with what it owns; plans come only from compile_plan(). */
struct plan_owner {
	struct mseg_plan plan;                 /* first: plan_free() casts back */
	struct mseg_entry *entries;            /* every entry array (one per group,
	                                        * shared by its endpoints): one mapping */
	size_t entries_bytes;
	bool entries_mapped;                   /* a mapping (munmap), else malloc'ed */
	struct cc_entry **refs;                /* compile cache: the groups' arrays it
	                                        * holds a reference to (instead) */
	size_t n_refs;
	size_t eps_bytes;                      /* plan.eps: a mapping of this size
	                                        * (plan_eps_alloc()), or 0: calloc'ed */
};

/* A group's entries in a compile cache, counted: the cache holds one
 * reference while the group is current, each plan that uses it one. */
struct cc_entry {
	size_t refs;
	struct h128 key;
	uint64_t id;                           /* mseg_dir_plan.entries_id */
	uint64_t used;                         /* compile_cache.gen when last used */
	size_t n;
	struct mseg_entry e[];
};

struct compile_cache {
	struct cc_entry **table;               /* open addressing by key.a */
	size_t mask, n;
	uint64_t gen, next_id;
	struct compile_cache_stats stats;
};

static void cc_entry_unref(struct cc_entry *ce)
{
	if (ce && --ce->refs == 0)
		free(ce);
}

static const struct mseg_port port_any = { .proto = 0 };

/* proto_has_ports() (plan.h) spells the numbers out */
_Static_assert(IPPROTO_TCP == 6 && IPPROTO_UDP == 17 && IPPROTO_UDPLITE == 136 &&
		       IPPROTO_SCTP == 132,
	       "proto_has_ports numbers");

static bool addr_is_single(const struct mseg_entry *e)
{
	return memcmp(e->lo.bytes, e->hi.bytes, sizeof(e->lo.bytes)) == 0;
}

enum entry_shape entry_shape(const struct mseg_entry *e)
{
	bool single = addr_is_single(e);

	if (e->proto == 0)
		return single ? SHAPE_ANY : SHAPE_ANY_IV;
	if (proto_has_ports(e->proto))
		return single && e->port_lo == e->port_hi ? SHAPE_PORT : SHAPE_PORT_IV;
	return single ? SHAPE_PROTO : SHAPE_PROTO_IV;
}

void table_opts_normalize(struct table_opts *out, const struct table_opts *in)
{
	static const struct table_opts defaults = {
		.queue = QUEUE_NATIVE,
		.rate = TABLE_DEFAULT_RATE,
		.burst = TABLE_DEFAULT_BURST,
	};

	*out = in ? *in : defaults;
	if (!out->rate)
		out->rate = TABLE_DEFAULT_RATE;
	if (!out->burst)
		out->burst = TABLE_DEFAULT_BURST;
}

struct mseg_plan *plan_free(struct mseg_plan *plan)
{
	struct plan_owner *o = (struct plan_owner *)plan;

	if (!plan)
		return NULL;
	for (size_t i = 0; i < o->n_refs; i++)
		cc_entry_unref(o->refs[i]);
	free(o->refs);
	if (o->entries && o->entries_mapped)
		munmap(o->entries, o->entries_bytes);
	else
		free(o->entries);
	if (o->eps_bytes)
		munmap(plan->eps, o->eps_bytes);
	else
		free(plan->eps);
	free(o);
	return NULL;
}

/* ---- addresses ---------------------------------------------------------- */

/* 0 for IPv4, 1 for IPv6, -1 for anything else. */
static int fam_index(uint8_t family)
{
	return family == AF_INET ? 0 : family == AF_INET6 ? 1 : -1;
}

static void addr_from_value(struct mseg_addr *a, int fam, box_u128 v)
{
	size_t n = fam ? 16 : 4;

	memset(a, 0, sizeof(*a));
	a->family = fam ? AF_INET6 : AF_INET;
	for (size_t i = n; i-- > 0;) {
		a->bytes[i] = (uint8_t)v;
		v >>= 8;
	}
}

static void cidr_range(const struct mseg_cidr *c, box_u128 *lo, box_u128 *hi)
{
	unsigned bits = c->addr.family == AF_INET ? 32 : 128;
	unsigned host = c->plen >= bits ? 0 : bits - c->plen;
	box_u128 mask = host == 0 ? 0 : host >= 128 ? BOX_U128_MAX : ((box_u128)1 << host) - 1;
	box_u128 v = addr_u128(&c->addr);

	*lo = v & ~mask;
	*hi = v | mask;
}

/* @r minus @x (both sorted and disjoint) into @out (room for nr + nx). */
static size_t range_subtract(const struct box *r, size_t nr, const struct box *x, size_t nx,
			     struct box *out)
{
	size_t n = 0, j = 0;

	for (size_t i = 0; i < nr; i++) {
		box_u128 cur = r[i].lo, hi = r[i].hi;
		bool done = false;

		while (j < nx && x[j].hi < cur)
			j++;
		for (size_t k = j; k < nx && x[k].lo <= hi; k++) {
			if (x[k].lo > cur) {
				out[n] = r[i];
				out[n].lo = cur;
				out[n++].hi = x[k].lo - 1;
			}
			if (x[k].hi >= hi) {
				done = true;
				break;
			}
			if (x[k].hi + 1 > cur)
				cur = x[k].hi + 1;
		}
		if (!done) {
			out[n] = r[i];
			out[n].lo = cur;
			out[n++].hi = hi;
		}
	}
	return n;
}

/* ---- selections --------------------------------------------------------- */

/* A rule set: a word at a time (there are as many as isolated directions). */
static uint64_t hash_words(const uint64_t *w, size_t n)
{
	uint64_t h = HASH_FNV_OFFSET;

	for (size_t i = 0; i < n; i++) {
		h ^= w[i];
		h *= 0x9e3779b97f4a7c15ULL;
		h ^= h >> 29;
	}
	return h;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static uint64_t hash_peer_sel(const struct mseg_peer *p)
{
	uint64_t h = HASH_FNV_OFFSET;

	h = hash_fnv(h, &p->ns_scope, sizeof(p->ns_scope));
	if (p->ns_scope == MSEG_NS_NAMED)
		h = hash_fnv_str(h, selector_ns_name(p->ns));
	else if (p->ns_scope == MSEG_NS_SELECTOR)
		h = selector_hash(h, &p->ns_sel);
	return selector_hash(h, &p->ep_sel);
}

static bool peer_sel_equal(const struct mseg_peer *a, const struct mseg_peer *b)
{
	if (a->ns_scope != b->ns_scope)
		return false;
	if (a->ns_scope == MSEG_NS_NAMED && !str_eq(selector_ns_name(a->ns), selector_ns_name(b->ns)))
		return false;
	if (a->ns_scope == MSEG_NS_SELECTOR && !selector_equal(&a->ns_sel, &b->ns_sel))
		return false;
	return selector_equal(&a->ep_sel, &b->ep_sel);
}

static void bit_set(uint64_t *bits, size_t i)
{
	bits[i / 64] |= (uint64_t)1 << (i % 64);
}

/* The selection index of @p (evaluated on first use), or SEL_NONE. */
static int ctx_sel_get(struct compile_ctx *c, const struct mseg_peer *p, uint32_t *ret)
{
	uint64_t h;
	size_t slot;
	struct sel *s;
	size_t n;
	int r;

	*ret = SEL_NONE;
	if (p->kind != MSEG_PEER_ENDPOINTS)
		return 0;
	h = hash_peer_sel(p);
	for (slot = h & c->sel_mask; c->sel_table[slot]; slot = (slot + 1) & c->sel_mask) {
		s = &c->sels[c->sel_table[slot] - 1];
		if (s->hash == h && peer_sel_equal(s->peer, p)) {
			*ret = c->sel_table[slot] - 1;
			return 0;
		}
	}

	r = VEC_RESERVE(c->sels, c->cap_sels, c->n_sels + 1);
	if (r < 0)
		return r;
	s = &c->sels[c->n_sels];
	memset(s, 0, sizeof(*s));
	s->peer = p;
	s->hash = h;
	r = ep_index_select(&c->ix, p, &c->sel_buf, &c->cap_sel_buf, &n);
	if (r < 0)
		return r;
	s->eps = arena_calloc(&c->arena, n ? n : 1, sizeof(*s->eps));
	if (!s->eps)
		return -ENOMEM;
	if (n)
		memcpy(s->eps, c->sel_buf, n * sizeof(*s->eps));
	s->n_eps = n;
	c->sel_table[slot] = (uint32_t)(c->n_sels + 1);
	*ret = (uint32_t)c->n_sels++;
	return 0;
}

/* ---- preparation -------------------------------------------------------- */

static int cmp_ep_id(const void *pa, const void *pb)
{
	const struct mseg_endpoint *a = *(const struct mseg_endpoint *const *)pa;
	const struct mseg_endpoint *b = *(const struct mseg_endpoint *const *)pb;
	int c = strcmp(a->id ? a->id : "", b->id ? b->id : "");

	if (c)
		return c;
	/* duplicate ids (the inventory forbids them): keep it deterministic */
	c = strcmp(selector_ns_name(a->ns), selector_ns_name(b->ns));
	if (c)
		return c;
	c = strcmp(a->name ? a->name : "", b->name ? b->name : "");
	if (c)
		return c;
	return strcmp(a->netns ? a->netns : "", b->netns ? b->netns : "");
}

static size_t table_size(size_t n)
{
	size_t s = 16;

	while (s < 2 * n)
		s *= 2;
	return s;
}

/* cidrs minus except of an ADDRS peer, per family. */
static int peer_ranges(struct compile_ctx *c, const struct mseg_peer *p, struct cpeer *cp)
{
	for (int fam = 0; fam < 2; fam++) {
		uint8_t family = fam ? AF_INET6 : AF_INET;
		size_t nr = 0, nx = 0;
		struct box *r, *x, *out;

		r = arena_calloc(&c->arena, p->n_cidrs + 1, sizeof(*r));
		x = arena_calloc(&c->arena, p->n_except + 1, sizeof(*x));
		if (!r || !x)
			return -ENOMEM;
		for (size_t i = 0; i < p->n_cidrs; i++) {
			if (p->cidrs[i].addr.family != family)
				continue;
			cidr_range(&p->cidrs[i], &r[nr].lo, &r[nr].hi);
			nr++;
		}
		for (size_t i = 0; i < p->n_except; i++) {
			if (p->except[i].addr.family != family)
				continue;
			cidr_range(&p->except[i], &x[nx].lo, &x[nx].hi);
			nx++;
		}
		nr = box_addr_union(r, nr);
		nx = box_addr_union(x, nx);
		out = arena_calloc(&c->arena, nr + nx + 1, sizeof(*out));
		if (!out)
			return -ENOMEM;
		cp->ranges[fam] = out;
		cp->n_ranges[fam] = range_subtract(r, nr, x, nx, out);
	}
	return 0;
}

static int ctx_prepare_rules(struct compile_ctx *c)
{
	size_t n = 0;
	int r;

	for (size_t p = 0; p < c->n_pols; p++)
		n += c->pols[p]->n_rules;
	c->rules = arena_calloc(&c->arena, n ? n : 1, sizeof(*c->rules));
	if (!c->rules)
		return -ENOMEM;
	for (size_t p = 0; p < c->n_pols; p++) {
		const struct mseg_policy *pol = c->pols[p];

		for (size_t i = 0; i < pol->n_rules; i++) {
			const struct mseg_rule *rule = &pol->rules[i];
			struct crule *cr = &c->rules[c->n_rules++];

			cr->rule = rule;
			cr->prov = BOX_PROV(p, i);
			r = ctx_sel_get(c, &rule->local, &cr->local);
			if (r < 0)
				return r;
			cr->peers = arena_calloc(&c->arena, rule->n_peers + 1, sizeof(*cr->peers));
			if (!cr->peers)
				return -ENOMEM;
			for (size_t k = 0; k < rule->n_peers; k++) {
				r = ctx_sel_get(c, &rule->peers[k], &cr->peers[k].sel);
				if (r < 0)
					return r;
				if (rule->peers[k].kind == MSEG_PEER_ADDRS) {
					r = peer_ranges(c, &rule->peers[k], &cr->peers[k]);
					if (r < 0)
						return r;
				}
			}
			for (size_t k = 0; k < rule->n_ports; k++)
				if (rule->ports[k].name)
					cr->named = true;
		}
	}
	c->rwords = (c->n_rules + 63) / 64;
	if (c->rwords == 0)
		c->rwords = 1;
	return 0;
}

static int cmp_svc_ref(const void *pa, const void *pb)
{
	const struct svc_ref *a = pa, *b = pb;

	if (a->fam != b->fam)
		return a->fam < b->fam ? -1 : 1;
	if (a->backend != b->backend)
		return a->backend < b->backend ? -1 : 1;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if (a->backend_port != b->backend_port)
		return a->backend_port < b->backend_port ? -1 : 1;
	if (a->vip != b->vip)
		return a->vip < b->vip ? -1 : 1;
	return (a->port > b->port) - (a->port < b->port);
}

/* c->svc: the usable routes of compile_opts.svc_routes by backend. */
static int ctx_prepare_services(struct compile_ctx *c, const struct compile_opts *opts)
{
	size_t n = opts->svc_routes ? opts->n_svc_routes : 0;

	if (!n)
		return 0;
	c->svc = arena_calloc(&c->arena, n, sizeof(*c->svc));
	if (!c->svc)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct mseg_svc_route *rt = &opts->svc_routes[i];
		int fam = fam_index(rt->vip.family);

		if (fam < 0 || fam != fam_index(rt->backend.family) || !proto_has_ports(rt->proto))
			continue;
		c->svc[c->n_svc++] = (struct svc_ref){
			.backend = addr_u128(&rt->backend),
			.vip = addr_u128(&rt->vip),
			.fam = (uint8_t)fam,
			.proto = rt->proto,
			.backend_port = rt->backend_port,
			.port = rt->port,
		};
	}
	qsort(c->svc, c->n_svc, sizeof(*c->svc), cmp_svc_ref);
	return 0;
}

/* ---- entries of a group ------------------------------------------------- */

static int ctx_box_add(struct compile_ctx *c, int fam, uint8_t proto, box_u128 lo, box_u128 hi,
		       uint16_t plo, uint16_t phi, uint64_t prov)
{
	struct bucket *b;
	unsigned idx;
	int r;

	/* ICMP over IPv6 and ICMPv6 over IPv4 match no real packet */
	if ((proto == IPPROTO_ICMP && fam == 1) || (proto == IPPROTO_ICMPV6 && fam == 0))
		return 0;
	idx = (unsigned)fam * 256 + proto;
	b = &c->buckets[idx];
	if (b->n == 0)
		c->touched[c->n_touched++] = (uint16_t)idx;
	r = VEC_RESERVE(b->v, b->cap, b->n + 1);
	if (r < 0)
		return r;
	b->v[b->n++] = (struct box){ .lo = lo, .hi = hi, .plo = plo, .phi = phi, .prov = prov,
				     .fam = (uint8_t)fam, .proto = proto };
	return 0;
}

/* Protocol and port range of @p towards destination @dst (NULL: an address
 * group, which has no named ports). False when a named port does not resolve. */
static bool port_resolve(const struct mseg_port *p, const struct mseg_endpoint *dst,
			 uint8_t *proto, uint16_t *lo, uint16_t *hi)
{
	if (p->name) {
		if (!dst)
			return false;
		for (size_t i = 0; i < dst->n_ports; i++) {
			const struct mseg_named_port *np = &dst->ports[i];

			if (!np->name || strcmp(np->name, p->name) != 0)
				continue;
			if (p->proto && np->proto != p->proto)
				continue;
			*proto = np->proto;
			*lo = *hi = proto_has_ports(np->proto) ? np->port : 0;
			return true;
		}
		return false;
	}
	*proto = p->proto;
	if (proto_has_ports(p->proto)) {
		*lo = p->lo;
		*hi = p->hi;
	} else {
		*lo = *hi = 0;
	}
	return true;
}

/* An egress named port towards an address group: the group's addresses
 * that belong to endpoints, each with the port as that endpoint names it
 * (the destination resolves a named port; addresses of no endpoint have
 * no named ports). */
static int group_add_named_addrs(struct compile_ctx *c, const struct crule *cr,
				 const struct cpeer *cp, const struct mseg_port *port)
{
	uint8_t proto;
	uint16_t lo, hi;
	int r;

	for (size_t e = 0; e < c->n_eps; e++) {
		const struct mseg_endpoint *dst = c->eps[e];

		if (!port_resolve(port, dst, &proto, &lo, &hi))
			continue;
		for (size_t a = 0; a < dst->n_ips; a++) {
			int fam = fam_index(dst->ips[a].family);
			box_u128 v;

			if (fam < 0)
				continue;
			v = addr_u128(&dst->ips[a]);
			if (!box_range_covered(cp->ranges[fam], cp->n_ranges[fam], v, v))
				continue;
			r = ctx_box_add(c, fam, proto, v, v, lo, hi, cr->prov);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* This node's addresses, every protocol (compile_opts.node_addrs). */
static int group_add_node_addrs(struct compile_ctx *c)
{
	for (size_t i = 0; i < c->n_node_addrs; i++) {
		int fam = fam_index(c->node_addrs[i].family);
		box_u128 v;
		int r;

		if (fam < 0)
			continue;
		v = addr_u128(&c->node_addrs[i]);
		r = ctx_box_add(c, fam, 0, v, v, 0, 0, BOX_PROV(ENTRY_POLICY_NODE, 0));
		if (r < 0)
			return r;
	}
	return 0;
}

/* The addresses of the endpoints of selection @s, in endpoint order: made
 * once and kept in @s while c->kept_bytes allows (every group with a rule
 * towards @s then reads one array instead of each peer endpoint), otherwise
 * made into c->addrs for this call only. */
static int sel_addrs(struct compile_ctx *c, struct sel *s)
{
	size_t n = 0, bytes;
	int r;

	if (s->kept)
		return 0;
	for (size_t i = 0; i < s->n_eps; i++) {
		const struct mseg_endpoint *ep = c->eps[s->eps[i]];

		r = VEC_RESERVE(c->addrs, c->cap_addrs, n + ep->n_ips);
		if (r < 0)
			return r;
		for (size_t a = 0; a < ep->n_ips; a++) {
			int fam = fam_index(ep->ips[a].family);

			if (fam < 0)
				continue;
			c->addrs[n++] = (struct sel_addr){ .v = addr_u128(&ep->ips[a]),
							   .ep = s->eps[i],
							   .fam = (uint8_t)fam };
		}
	}
	s->addrs = c->addrs;
	s->n_addrs = n;
	bytes = (n + 1) * sizeof(*s->addrs);
	if (c->kept_bytes + bytes > SEL_ADDRS_MAX)
		return 0;
	s->addrs = arena_calloc(&c->arena, n + 1, sizeof(*s->addrs));
	if (!s->addrs)
		return -ENOMEM;
	if (n)
		memcpy(s->addrs, c->addrs, n * sizeof(*s->addrs));
	c->kept_bytes += bytes;
	s->kept = true;
	return 0;
}

/* The first route of family @fam whose backend is at least @lo. */
static size_t svc_lower_bound(const struct compile_ctx *c, int fam, box_u128 lo)
{
	size_t a = 0, b = c->n_svc;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		const struct svc_ref *s = &c->svc[m];

		if (s->fam < fam || (s->fam == fam && s->backend < lo))
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* Egress: every Service route whose backend (address, protocol, port) a
 * raw box of this group admits adds a box for its VIP and port, with that
 * box's provenance: the pod's packet still has the VIP as its destination
 * when the egress chain sees it (the node translates it later). */
static int group_add_services(struct compile_ctx *c)
{
	size_t n_touched = c->n_touched;
	int r;

	c->n_hits = 0;
	for (size_t t = 0; t < n_touched; t++) {
		unsigned idx = c->touched[t];
		int fam = (int)(idx / 256);
		uint8_t proto = (uint8_t)(idx % 256);
		const struct bucket *b = &c->buckets[idx];

		for (size_t i = 0; i < b->n; i++) {
			const struct box *x = &b->v[i];

			for (size_t k = svc_lower_bound(c, fam, x->lo);
			     k < c->n_svc && c->svc[k].fam == fam && c->svc[k].backend <= x->hi; k++) {
				const struct svc_ref *s = &c->svc[k];

				/* proto 0: every protocol and port */
				if (proto && (s->proto != proto || s->backend_port < x->plo ||
					      s->backend_port > x->phi))
					continue;
				/* the box admits the VIP itself already (world) */
				if (s->vip >= x->lo && s->vip <= x->hi &&
				    (!proto || (s->port >= x->plo && s->port <= x->phi)))
					continue;
				r = VEC_RESERVE(c->hits, c->cap_hits, c->n_hits + 1);
				if (r < 0)
					return r;
				c->hits[c->n_hits++] = (struct svc_hit){
					.b = { .lo = s->vip, .hi = s->vip, .plo = s->port,
					       .phi = s->port, .prov = x->prov },
					.fam = (uint8_t)fam,
					.proto = s->proto,
				};
			}
		}
	}
	/* added after the scan: ctx_box_add() moves the buckets */
	for (size_t i = 0; i < c->n_hits; i++) {
		const struct svc_hit *h = &c->hits[i];

		r = ctx_box_add(c, h->fam, h->proto, h->b.lo, h->b.hi, h->b.plo, h->b.phi, h->b.prov);
		if (r < 0)
			return r;
	}
	return 0;
}

static int group_add_rule(struct compile_ctx *c, const struct crule *cr,
			  const struct mseg_endpoint *local)
{
	const struct mseg_rule *rule = cr->rule;
	const struct mseg_port *ports = rule->n_ports ? rule->ports : &port_any;
	size_t n_ports = rule->n_ports ? rule->n_ports : 1;
	bool ingress = rule->dir == MSEG_DIR_INGRESS;
	uint8_t proto;
	uint16_t lo, hi;
	int r;

	for (size_t k = 0; k < rule->n_peers; k++) {
		const struct cpeer *cp = &cr->peers[k];

		if (cp->sel != SEL_NONE) {
			struct sel *s = &c->sels[cp->sel];

			r = sel_addrs(c, s);
			if (r < 0)
				return r;
			for (size_t q = 0; q < n_ports; q++) {
				/* a named port resolves at the destination: for
				 * ingress @local, once; for egress each peer */
				bool per_peer = ports[q].name && !ingress;

				if (!per_peer && !port_resolve(&ports[q], local, &proto, &lo, &hi))
					continue;
				for (size_t i = 0; i < s->n_addrs; i++) {
					const struct sel_addr *a = &s->addrs[i];

					if (per_peer && !port_resolve(&ports[q], c->eps[a->ep], &proto,
								      &lo, &hi))
						continue;
					r = ctx_box_add(c, a->fam, proto, a->v, a->v, lo, hi,
							cr->prov);
					if (r < 0)
						return r;
				}
			}
		} else if (rule->peers[k].kind == MSEG_PEER_ADDRS) {
			for (size_t q = 0; q < n_ports; q++) {
				if (ports[q].name && !ingress) {
					r = group_add_named_addrs(c, cr, cp, &ports[q]);
					if (r < 0)
						return r;
					continue;
				}
				if (!port_resolve(&ports[q], ingress ? local : NULL, &proto, &lo, &hi))
					continue;
				for (int fam = 0; fam < 2; fam++) {
					for (size_t a = 0; a < cp->n_ranges[fam]; a++) {
						const struct box *b = &cp->ranges[fam][a];

						r = ctx_box_add(c, fam, proto, b->lo, b->hi, lo, hi,
								cr->prov);
						if (r < 0)
							return r;
					}
				}
			}
		}
	}
	return 0;
}

static int ctx_ent_push(struct compile_ctx *c, int fam, uint8_t proto, const struct box *b)
{
	struct box *e;
	int r = VEC_RESERVE(c->ents, c->cap_ents, c->n_ents + 1);

	if (r < 0)
		return r;
	e = &c->ents[c->n_ents++];
	*e = *b;
	e->fam = (uint8_t)fam;
	e->proto = proto;
	if (!proto_has_ports(proto))
		e->plo = e->phi = 0;
	return 0;
}

/* The plan entry of @b (a box of c->ents). */
static void entry_from_box(struct mseg_entry *e, const struct box *b)
{
	memset(e, 0, sizeof(*e));
	addr_from_value(&e->lo, b->fam, b->lo);
	addr_from_value(&e->hi, b->fam, b->hi);
	e->proto = b->proto;
	e->port_lo = b->plo;
	e->port_hi = b->phi;
	e->policy = (uint32_t)(b->prov >> 32);
	e->rule = (uint32_t)b->prov;
}

/* Every point of @b (a normalized box of at most expand_max points) as an
 * exact entry with @b's provenance, except the addresses that an
 * every-protocol range of the family already admits. The points of one box
 * are distinct, and those of disjoint boxes too: entries stay disjoint. */
static int ctx_ent_push_points(struct compile_ctx *c, int fam, uint8_t proto,
			       const struct box *b)
{
	/* one address: the caller's check of the whole box was this one */
	bool check = proto != 0 && b->lo != b->hi;
	struct box pt = *b;
	box_u128 a = b->lo;
	int r;

	for (;;) {
		if (!check || !box_range_covered(c->any[fam], c->n_any[fam], a, a)) {
			pt.lo = pt.hi = a;
			/* port-less classes: plo = phi = 0, one pass */
			for (uint32_t p = b->plo; p <= b->phi; p++) {
				pt.plo = pt.phi = (uint16_t)p;
				r = ctx_ent_push(c, fam, proto, &pt);
				if (r < 0)
					return r;
			}
		}
		if (a == b->hi)
			break;
		a++;
	}
	return 0;
}

static int cmp_u16(const void *pa, const void *pb)
{
	uint16_t a = *(const uint16_t *)pa, b = *(const uint16_t *)pb;

	return a < b ? -1 : a > b;
}

/* Room for @need entries in c->out. Up to OUT_HUGE_MIN bytes the block is
 * malloc'ed (the heap reuses what the last plan freed); beyond, it is an
 * anonymous mapping grown with mremap(), which moves pages instead of
 * copying them (the entries of a large plan are tens of MiB), advised for
 * huge pages: such a block is written once, page by page, and on this
 * project's VMs the page faults of 4 KiB pages cost more than computing
 * the entries (transparent huge pages in "madvise" mode; elsewhere the
 * advice changes nothing). */
#define OUT_MIN_BYTES ((size_t)16 << 10)
#define OUT_HUGE_MIN ((size_t)4 << 20)

/* The plan's per-endpoint array, zeroed, for @n endpoints: from OUT_HUGE_MIN
 * bytes on (150,000 endpoints are 10 MiB, every byte written once per
 * compile) a mapping advised for huge pages, like the entries' block: with
 * 4 KiB pages its page faults cost more than everything else the compile
 * does per endpoint. */
static int plan_eps_alloc(struct plan_owner *o, size_t n)
{
	size_t bytes = (n ? n : 1) * sizeof(*o->plan.eps);
	void *p;

	if (bytes < OUT_HUGE_MIN) {
		o->plan.eps = calloc(1, bytes);
		return o->plan.eps ? 0 : -ENOMEM;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	(void)madvise(p, bytes, MADV_HUGEPAGE);   /* advice only */
	o->plan.eps = p;
	o->eps_bytes = bytes;
	return 0;
}

static int ctx_out_reserve(struct compile_ctx *c, size_t need)
{
	size_t bytes = c->out_bytes ? c->out_bytes : OUT_MIN_BYTES;
	void *p;

	if (need <= c->cap_out)
		return 0;
	while (bytes / sizeof(*c->out) < need) {
		if (bytes > SIZE_MAX / 2)
			return -ENOMEM;
		bytes *= 2;
	}
	if (bytes < OUT_HUGE_MIN) {
		p = realloc(c->out, bytes);
		if (!p)
			return -ENOMEM;
	} else if (c->out_mapped) {
		p = mremap(c->out, c->out_bytes, bytes, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return -ENOMEM;
	} else {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -ENOMEM;
		if (c->n_out)
			memcpy(p, c->out, c->n_out * sizeof(*c->out));
		free(c->out);
		c->out_mapped = true;
	}
	if (c->out_mapped)
		(void)madvise(p, bytes, MADV_HUGEPAGE);   /* advice only */
	c->out = p;
	c->out_bytes = bytes;
	c->cap_out = bytes / sizeof(*c->out);
	return 0;
}

static int group_compute(struct compile_ctx *c, struct group *g)
{
	const struct mseg_endpoint *local = c->eps[g->rep];
	int r;

	c->n_touched = 0;
	c->n_ents = 0;
	c->n_any[0] = c->n_any[1] = 0;
	r = group_add_node_addrs(c);
	if (r < 0)
		goto out_reset;
	for (size_t w = 0; w < c->rwords; w++) {
		for (uint64_t bits = g->rules[w]; bits; bits &= bits - 1) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(bits);

			r = group_add_rule(c, &c->rules[i], local);
			if (r < 0)
				goto out_reset;
		}
	}
	if (g->dir == MSEG_DIR_EGRESS && c->n_svc) {
		r = group_add_services(c);
		if (r < 0)
			goto out_reset;
	}

	/* every-protocol buckets (index fam * 256) sort first in their family */
	qsort(c->touched, c->n_touched, sizeof(*c->touched), cmp_u16);
	for (size_t t = 0; t < c->n_touched; t++) {
		unsigned idx = c->touched[t];
		int fam = (int)(idx / 256);
		uint8_t proto = (uint8_t)(idx % 256);
		struct bucket *b = &c->buckets[idx];
		const struct box *out;
		size_t n_out;

		r = box_normalize(c->ws, b->v, b->n, proto_has_ports(proto), &out, &n_out);
		if (r < 0)
			goto out_reset;
		if (proto == 0) {
			r = VEC_RESERVE(c->any[fam], c->cap_any[fam], n_out);
			if (r < 0)
				goto out_reset;
			memcpy(c->any[fam], out, n_out * sizeof(*out));
			c->n_any[fam] = n_out;
		}
		for (size_t i = 0; i < n_out; i++) {
			if (proto != 0 &&
			    box_range_covered(c->any[fam], c->n_any[fam], out[i].lo, out[i].hi))
				continue;
			if (box_is_point(&out[i]) ||
			    !box_points_at_most(&out[i], proto_has_ports(proto), c->expand_max))
				r = ctx_ent_push(c, fam, proto, &out[i]);
			else
				r = ctx_ent_push_points(c, fam, proto, &out[i]);
			if (r < 0)
				goto out_reset;
		}
	}

	if (c->n_ents) {
		/* each class came out sorted: this merges the classes */
		r = box_sort_entries(c->ws, c->ents, c->n_ents);
		if (r < 0)
			goto out_reset;
		r = ctx_out_reserve(c, c->n_out + c->n_ents);
		if (r < 0)
			goto out_reset;
		g->off = c->n_out;
		g->n_entries = c->n_ents;
		for (size_t i = 0; i < c->n_ents; i++)
			entry_from_box(&c->out[c->n_out++], &c->ents[i]);
	}
	r = 0;
out_reset:
	for (size_t t = 0; t < c->n_touched; t++)
		c->buckets[c->touched[t]].n = 0;
	c->n_touched = 0;
	return r;
}

/* ---- groups ------------------------------------------------------------- */

static bool named_ports_equal(const struct mseg_endpoint *a, const struct mseg_endpoint *b)
{
	if (a->n_ports != b->n_ports)
		return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (!str_eq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].proto != b->ports[i].proto || a->ports[i].port != b->ports[i].port)
			return false;
	return true;
}

/* The group of endpoint @e in direction @dir with rule set @rules; created
 * when new. The direction matters even for equal (empty) rule sets: only
 * egress adds Service VIPs. */
static int ctx_group_get(struct compile_ctx *c, uint32_t e, uint8_t dir, const uint64_t *rules,
			 bool named, uint32_t *ret)
{
	uint64_t h = hash_words(rules, c->rwords);
	const struct mseg_endpoint *ep = c->eps[e];
	struct group *g;
	size_t slot;

	h = hash_fnv(h, &named, sizeof(named));
	h = hash_fnv(h, &dir, sizeof(dir));
	for (slot = h & c->group_mask; c->group_table[slot];
	     slot = (slot + 1) & c->group_mask) {
		g = &c->groups[c->group_table[slot] - 1];
		if (g->hash != h || g->named != named || g->dir != dir ||
		    memcmp(g->rules, rules, c->rwords * sizeof(*rules)) != 0)
			continue;
		if (named && !named_ports_equal(c->eps[g->rep], ep))
			continue;
		*ret = c->group_table[slot] - 1;
		return 0;
	}
	g = &c->groups[c->n_groups];
	g->hash = h;
	g->rep = e;
	g->dir = dir;
	g->named = named;
	g->rules = arena_calloc(&c->arena, c->rwords, sizeof(*g->rules));
	if (!g->rules)
		return -ENOMEM;
	memcpy(g->rules, rules, c->rwords * sizeof(*rules));
	c->group_table[slot] = (uint32_t)(c->n_groups + 1);
	*ret = (uint32_t)c->n_groups++;
	return 0;
}

/* ---- the compile cache (mseg/compile/cache.h) --------------------------- */

static void h128_u64(struct h128 *h, uint64_t v)
{
	h->a = (h->a ^ v) * 0x100000001b3ULL;
	h->a ^= h->a >> 29;
	h->b = (h->b + v) * 0x9e3779b97f4a7c15ULL;
	h->b ^= h->b >> 31;
}

static void h128_bytes(struct h128 *h, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t w;

	h128_u64(h, n);
	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h128_u64(h, w);
	}
	if (n) {
		w = 0;
		memcpy(&w, s, n);
		h128_u64(h, w);
	}
}

static void h128_str(struct h128 *h, const char *s)
{
	if (s)
		h128_bytes(h, s, strlen(s));
	else
		h128_u64(h, UINT64_MAX);
}

static void h128_box(struct h128 *h, box_u128 v)
{
	h128_u64(h, (uint64_t)v);
	h128_u64(h, (uint64_t)(v >> 64));
}

static struct h128 h128_seed(uint64_t tag)
{
	struct h128 h = { HASH_FNV_OFFSET, 0x84222325cbf29ce4ULL };

	h128_u64(&h, tag);
	return h;
}

static bool h128_eq(struct h128 x, struct h128 y)
{
	return x.a == y.a && x.b == y.b;
}

/* What a group can read of an endpoint it does not belong to: its
 * addresses (peer entries) and named ports (egress named ports resolve at
 * the destination). */
static void h128_ep_content(struct h128 *h, const struct mseg_endpoint *ep)
{
	h128_u64(h, ep->n_ips);
	for (size_t i = 0; i < ep->n_ips; i++) {
		h128_u64(h, ep->ips[i].family);
		h128_bytes(h, ep->ips[i].bytes, sizeof(ep->ips[i].bytes));
	}
	h128_u64(h, ep->n_ports);
	for (size_t i = 0; i < ep->n_ports; i++) {
		h128_str(h, ep->ports[i].name);
		h128_u64(h, (uint64_t)ep->ports[i].proto << 16 | ep->ports[i].port);
	}
}

static const struct h128 *sel_digest(struct sel *s, const struct compile_ctx *c)
{
	if (!s->digested) {
		s->digest = h128_seed(1);
		h128_u64(&s->digest, s->n_eps);
		for (size_t i = 0; i < s->n_eps; i++)
			h128_ep_content(&s->digest, c->eps[s->eps[i]]);
		s->digested = true;
	}
	return &s->digest;
}

static const struct h128 *ctx_all_digest(struct compile_ctx *c)
{
	if (!c->all_digested) {
		c->all_digest = h128_seed(2);
		h128_u64(&c->all_digest, c->n_eps);
		for (size_t e = 0; e < c->n_eps; e++)
			h128_ep_content(&c->all_digest, c->eps[e]);
		c->all_digested = true;
	}
	return &c->all_digest;
}

static const struct h128 *ctx_svc_digest(struct compile_ctx *c)
{
	if (!c->svc_digested) {
		c->svc_digest = h128_seed(5);
		h128_u64(&c->svc_digest, c->n_svc);
		for (size_t i = 0; i < c->n_svc; i++) {
			const struct svc_ref *sv = &c->svc[i];

			h128_box(&c->svc_digest, sv->backend);
			h128_box(&c->svc_digest, sv->vip);
			h128_u64(&c->svc_digest, (uint64_t)sv->fam << 48 | (uint64_t)sv->proto << 32 |
							 (uint64_t)sv->backend_port << 16 | sv->port);
		}
		c->svc_digested = true;
	}
	return &c->svc_digest;
}

/* Everything group_add_rule() reads for @cr, other than the local
 * endpoint's named ports (the group's key has those). */
static const struct h128 *rule_key(struct compile_ctx *c, struct crule *cr)
{
	const struct mseg_rule *rule = cr->rule;
	bool named_egress = cr->named && rule->dir != MSEG_DIR_INGRESS;
	struct h128 *h = &cr->key;

	if (cr->keyed)
		return h;
	*h = h128_seed(3);
	h128_u64(h, cr->prov);
	h128_u64(h, (uint64_t)rule->dir);
	h128_u64(h, rule->n_ports);
	for (size_t q = 0; q < rule->n_ports; q++) {
		const struct mseg_port *pt = &rule->ports[q];

		h128_str(h, pt->name);
		h128_u64(h, (uint64_t)pt->proto << 32 | (uint64_t)pt->lo << 16 | pt->hi);
	}
	h128_u64(h, rule->n_peers);
	for (size_t k = 0; k < rule->n_peers; k++) {
		const struct cpeer *cp = &cr->peers[k];
		const struct h128 *d;

		h128_u64(h, (uint64_t)rule->peers[k].kind);
		if (cp->sel != SEL_NONE) {
			d = sel_digest(&c->sels[cp->sel], c);
			h128_u64(h, d->a);
			h128_u64(h, d->b);
		} else if (rule->peers[k].kind == MSEG_PEER_ADDRS) {
			for (int fam = 0; fam < 2; fam++) {
				h128_u64(h, cp->n_ranges[fam]);
				for (size_t a = 0; a < cp->n_ranges[fam]; a++) {
					h128_box(h, cp->ranges[fam][a].lo);
					h128_box(h, cp->ranges[fam][a].hi);
				}
			}
			if (named_egress) {
				d = ctx_all_digest(c);
				h128_u64(h, d->a);
				h128_u64(h, d->b);
			}
		}
	}
	cr->keyed = true;
	return h;
}

/* The content key of group @g: the compile options that shape entries,
 * the named ports of its endpoints (when they matter), its rules. */
static struct h128 group_key(struct compile_ctx *c, const struct group *g)
{
	struct h128 h = h128_seed(4);

	h128_u64(&h, c->expand_max);
	h128_u64(&h, c->n_node_addrs);
	for (size_t i = 0; i < c->n_node_addrs; i++) {
		h128_u64(&h, c->node_addrs[i].family);
		h128_bytes(&h, c->node_addrs[i].bytes, sizeof(c->node_addrs[i].bytes));
	}
	/* egress: the Service routes add VIPs (group_add_services()) */
	h128_u64(&h, g->dir);
	if (g->dir == MSEG_DIR_EGRESS) {
		const struct h128 *d = ctx_svc_digest(c);

		h128_u64(&h, d->a);
		h128_u64(&h, d->b);
	}
	h128_u64(&h, g->named);
	if (g->named) {
		const struct mseg_endpoint *rep = c->eps[g->rep];

		h128_u64(&h, rep->n_ports);
		for (size_t i = 0; i < rep->n_ports; i++) {
			h128_str(&h, rep->ports[i].name);
			h128_u64(&h, (uint64_t)rep->ports[i].proto << 16 | rep->ports[i].port);
		}
	}
	for (size_t w = 0; w < c->rwords; w++) {
		for (uint64_t bits = g->rules[w]; bits; bits &= bits - 1) {
			const struct h128 *k = rule_key(c, &c->rules[w * 64 +
							      (size_t)__builtin_ctzll(bits)]);

			h128_u64(&h, k->a);
			h128_u64(&h, k->b);
		}
	}
	return h;
}

struct compile_cache *compile_cache_new(void)
{
	struct compile_cache *cc = calloc(1, sizeof(*cc));

	if (cc)
		cc->next_id = 1;
	return cc;
}

void compile_cache_clear(struct compile_cache *cc)
{
	if (!cc)
		return;
	for (size_t i = 0; cc->table && i <= cc->mask; i++)
		cc_entry_unref(cc->table[i]);
	free(cc->table);
	cc->table = NULL;
	cc->mask = 0;
	cc->n = 0;
	cc->stats.groups_kept = 0;
	cc->stats.entries_kept = 0;
}

struct compile_cache *compile_cache_free(struct compile_cache *cc)
{
	compile_cache_clear(cc);
	free(cc);
	return NULL;
}

const struct compile_cache_stats *compile_cache_stats(const struct compile_cache *cc)
{
	return &cc->stats;
}

static struct cc_entry *cc_find(const struct compile_cache *cc, struct h128 key)
{
	if (!cc->table)
		return NULL;
	for (size_t slot = key.a & cc->mask; cc->table[slot]; slot = (slot + 1) & cc->mask)
		if (h128_eq(cc->table[slot]->key, key))
			return cc->table[slot];
	return NULL;
}

/* The groups' entries through @cc: a group whose key the cache holds takes
 * that array; any other is computed and copied into a new one. Each array
 * used is in @ret_refs once, with a reference for the plan. Afterwards the
 * cache holds exactly these arrays. */
static int ctx_groups_cached(struct compile_ctx *c, struct compile_cache *cc,
			     struct cc_entry ***ret_refs, size_t *ret_n)
{
	struct cc_entry **refs, **table;
	size_t n = 0, mask;
	uint64_t gen = ++cc->gen;
	uint64_t reused = 0, computed = 0;
	int r;

	refs = calloc(c->n_groups + 1, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_groups; i++) {
		struct group *g = &c->groups[i];
		struct h128 key = group_key(c, g);
		struct cc_entry *ce = cc_find(cc, key);

		if (ce) {
			reused++;
			g->ce = ce;
			if (ce->used != gen) {
				ce->used = gen;
				ce->refs++;
				refs[n++] = ce;
			}
			continue;
		}
		r = group_compute(c, g);
		if (r < 0)
			goto out_unref;
		ce = malloc(sizeof(*ce) + g->n_entries * sizeof(ce->e[0]));
		if (!ce) {
			r = -ENOMEM;
			goto out_unref;
		}
		ce->refs = 1;
		ce->key = key;
		ce->id = cc->next_id++;
		ce->used = gen;
		ce->n = g->n_entries;
		if (g->n_entries)
			memcpy(ce->e, c->out + g->off, g->n_entries * sizeof(ce->e[0]));
		c->n_out = g->off;      /* the block is scratch here */
		g->ce = ce;
		refs[n++] = ce;
		computed++;
	}

	/* the cache now holds this compile's arrays, and only those */
	mask = table_size(n) - 1;
	table = calloc(mask + 1, sizeof(*table));
	if (!table) {
		r = -ENOMEM;
		goto out_unref;
	}
	compile_cache_clear(cc);
	for (size_t i = 0; i < n; i++) {
		size_t slot = refs[i]->key.a & mask;

		while (table[slot])
			slot = (slot + 1) & mask;
		table[slot] = refs[i];
		refs[i]->refs++;
		cc->stats.entries_kept += refs[i]->n;
	}
	cc->table = table;
	cc->mask = mask;
	cc->n = n;
	cc->stats.groups_kept = n;
	cc->stats.groups_reused += reused;
	cc->stats.groups_computed += computed;
	cc->stats.compiles++;
	*ret_refs = refs;
	*ret_n = n;
	return 0;

out_unref:
	for (size_t i = 0; i < n; i++)
		cc_entry_unref(refs[i]);
	free(refs);
	for (size_t i = 0; i < c->n_groups; i++)
		c->groups[i].ce = NULL;
	return r;
}

/* ---- the whole ---------------------------------------------------------- */

static void ctx_release(struct compile_ctx *c)
{
	if (c->out && c->out_mapped)
		munmap(c->out, c->out_bytes);
	else
		free(c->out);
	free(c->groups);
	free(c->group_table);
	free(c->sels);
	free(c->sel_table);
	for (size_t i = 0; i < N_BUCKETS; i++)
		free(c->buckets[i].v);
	free(c->any[0]);
	free(c->any[1]);
	free(c->ents);
	free(c->addrs);
	free(c->hits);
	free(c->eps_sorted);
	free(c->sel_buf);
	free(c->slot_of);
	free(c->slot_ep);
	ep_index_release(&c->ix);
	c->ws = box_ws_free(c->ws);
	arena_release(&c->arena);
}

/* The endpoints that may get groups (c->slot_*): with local_only, an
 * endpoint without a netns (a pod of another node) is never programmed, so
 * it needs no rule set and no group; the arrays of ctx_assign() and the
 * groups are sized by the slots. */
static int ctx_slots(struct compile_ctx *c, const struct compile_opts *opts)
{
	const struct mseg_ep_brief *brief = opts->eps_brief;
	size_t n = 0;

	c->n_slots = c->n_eps;
	if (!opts->local_only)
		return 0;
	for (size_t e = 0; e < c->n_eps; e++) {
		if (brief) {
			n += brief[e].netns;
			continue;
		}
		if (e + 32 < c->n_eps)
			__builtin_prefetch(c->eps[e + 32]);   /* scattered: overlap the misses */
		n += c->eps[e]->netns != NULL;
	}
	c->slot_of = malloc((c->n_eps ? c->n_eps : 1) * sizeof(*c->slot_of));
	c->slot_ep = malloc((n ? n : 1) * sizeof(*c->slot_ep));
	if (!c->slot_of || !c->slot_ep)
		return -ENOMEM;
	n = 0;
	for (size_t e = 0; e < c->n_eps; e++) {
		bool netns = brief ? brief[e].netns : c->eps[e]->netns != NULL;

		c->slot_of[e] = netns ? (uint32_t)n : SLOT_NONE;
		if (netns)
			c->slot_ep[n++] = (uint32_t)e;
	}
	c->n_slots = n;
	return 0;
}

static uint32_t ctx_slot_of(const struct compile_ctx *c, uint32_t e)
{
	return c->slot_of ? c->slot_of[e] : e;
}

static uint32_t ctx_slot_ep(const struct compile_ctx *c, size_t slot)
{
	return c->slot_ep ? c->slot_ep[slot] : (uint32_t)slot;
}

/* Isolation and mode of every slot (@eps: the plan's, one per slot);
 * groups for their isolated directions (@ep_group: per slot and direction). Coverage and rule sets
 * are filled from each selection's endpoint list (inverted), so the cost
 * follows the selections' sizes, not endpoints x rules. */
static int ctx_assign(struct compile_ctx *c, const struct compile_opts *opts,
		      struct mseg_ep_plan *eps, uint32_t *ep_group)
{
	size_t n_dirs = c->n_slots * MSEG_DIR_COUNT;
	uint8_t *iso, *enforce, *named;
	uint64_t *rules;
	int r;

	iso = arena_calloc(&c->arena, c->n_eps + 1, sizeof(*iso));
	enforce = arena_calloc(&c->arena, c->n_eps + 1, sizeof(*enforce));
	named = arena_calloc(&c->arena, n_dirs + 1, sizeof(*named));
	rules = calloc(n_dirs ? n_dirs * c->rwords : 1, sizeof(*rules));
	if (!iso || !enforce || !named || !rules) {
		r = -ENOMEM;
		goto out_free;
	}
	for (size_t p = 0; p < c->n_pols; p++) {
		const struct mseg_policy *pol = c->pols[p];

		for (size_t k = 0; k < pol->n_subjects; k++) {
			uint32_t si;

			r = ctx_sel_get(c, &pol->subjects[k], &si);
			if (r < 0)
				goto out_free;
			if (si == SEL_NONE)
				continue;
			for (size_t i = 0; i < c->sels[si].n_eps; i++) {
				uint32_t e = c->sels[si].eps[i];

				iso[e] |= (uint8_t)pol->isolation;
				if (pol->mode == MSEG_MODE_ENFORCE)
					enforce[e] |= (uint8_t)pol->isolation;
			}
		}
	}
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct crule *cr = &c->rules[i];
		const struct sel *s;
		int d = (int)cr->rule->dir;

		if (cr->local == SEL_NONE || d < 0 || d >= MSEG_DIR_COUNT)
			continue;
		s = &c->sels[cr->local];
		for (size_t k = 0; k < s->n_eps; k++) {
			uint32_t sl = ctx_slot_of(c, s->eps[k]);
			size_t slot;

			if (sl == SLOT_NONE)
				continue;
			slot = (size_t)sl * MSEG_DIR_COUNT + (size_t)d;
			bit_set(&rules[slot * c->rwords], i);
			if (cr->named && d == MSEG_DIR_INGRESS)
				named[slot] = 1;
		}
	}

	for (size_t sl = 0; sl < c->n_slots; sl++) {
		uint32_t e = ctx_slot_ep(c, sl);

		eps[sl].ep = c->eps[e];
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			struct mseg_dir_plan *dp = &eps[sl].dir[d];

			if (iso[e] & (1u << d)) {
				dp->isolated = true;
				dp->mode = enforce[e] & (1u << d) ? MSEG_MODE_ENFORCE : MSEG_MODE_AUDIT;
			} else if (opts->default_deny) {
				dp->isolated = true;
				dp->mode = opts->default_mode;
			}
			if (opts->force_audit)
				dp->mode = MSEG_MODE_AUDIT;
		}
	}
	/* in endpoint order, then direction: the groups' order (and the
	 * cache's ids) do not depend on the slots */
	for (size_t sl = 0; sl < c->n_slots; sl++) {
		uint32_t e = ctx_slot_ep(c, sl);

		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			size_t slot = sl * MSEG_DIR_COUNT + (size_t)d;

			ep_group[slot] = UINT32_MAX;
			if (!eps[sl].dir[d].isolated)
				continue;
			r = ctx_group_get(c, e, (uint8_t)d, &rules[slot * c->rwords], named[slot],
					  &ep_group[slot]);
			if (r < 0)
				goto out_free;
		}
	}
	r = 0;
out_free:
	free(rules);
	return r;
}

static size_t count_peer_refs(const struct mseg_policy *const *pols, size_t n_pols)
{
	size_t n = 0;

	for (size_t p = 0; p < n_pols; p++) {
		n += pols[p]->n_subjects;
		for (size_t i = 0; i < pols[p]->n_rules; i++)
			n += 1 + pols[p]->rules[i].n_peers;
	}
	return n;
}

int compile_plan(const struct mseg_policy *const *pols, size_t n_pols,
		 const struct mseg_endpoint *const *eps, size_t n_eps,
		 const struct compile_opts *opts, struct mseg_plan **ret_plan)
{
	return compile_plan_cached(pols, n_pols, eps, n_eps, opts, NULL, ret_plan);
}

int compile_plan_cached(const struct mseg_policy *const *pols, size_t n_pols,
			const struct mseg_endpoint *const *eps, size_t n_eps,
			const struct compile_opts *opts, struct compile_cache *cc,
			struct mseg_plan **ret_plan)
{
	static const struct compile_opts no_opts = { .default_mode = MSEG_MODE_ENFORCE };
	struct compile_ctx *c;
	struct plan_owner *o = NULL;
	uint32_t *ep_group = NULL;
	int r;

	if (!ret_plan || (n_pols && !pols) || (n_eps && !eps))
		return -EINVAL;
	*ret_plan = NULL;
	if (!opts)
		opts = &no_opts;
	if (n_eps >= UINT32_MAX / MSEG_DIR_COUNT)
		return -E2BIG;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	arena_init(&c->arena);
	c->pols = pols;
	c->n_pols = n_pols;
	c->n_eps = n_eps;
	c->expand_max = opts->expand_max ? opts->expand_max : COMPILE_EXPAND_MAX;
	if (c->expand_max == COMPILE_EXPAND_OFF)
		c->expand_max = 1;      /* a one-point box is already exact */
	c->node_addrs = opts->node_addrs;
	c->n_node_addrs = opts->node_addrs ? opts->n_node_addrs : 0;
	r = -ENOMEM;
	c->ws = box_ws_new();
	c->sel_mask = table_size(count_peer_refs(pols, n_pols)) - 1;
	c->sel_table = calloc(c->sel_mask + 1, sizeof(*c->sel_table));
	o = calloc(1, sizeof(*o));
	if (!c->ws || !c->sel_table || !o)
		goto out_release;

	/* an inventory keeps its endpoints in id order already: a check of
	 * n - 1 pairs instead of a copy and a sort (150,000 endpoints per
	 * event); none with a brief (a desired view's endpoints) */
	c->eps = eps;
	for (size_t i = 1; !opts->eps_brief && i < n_eps; i++) {
		/* scattered endpoints: overlap the misses (epindex.c) */
		if (i + 32 < n_eps)
			__builtin_prefetch(eps[i + 32]);
		if (i + 16 < n_eps)
			__builtin_prefetch(eps[i + 16]->id);
		if (cmp_ep_id(&eps[i - 1], &eps[i]) > 0) {
			c->eps_sorted = malloc(n_eps * sizeof(*c->eps_sorted));
			if (!c->eps_sorted) {
				r = -ENOMEM;
				goto out_release;
			}
			memcpy(c->eps_sorted, eps, n_eps * sizeof(*c->eps_sorted));
			qsort(c->eps_sorted, n_eps, sizeof(*c->eps_sorted), cmp_ep_id);
			c->eps = c->eps_sorted;
			break;
		}
	}

	r = ep_index_init(&c->ix, c->eps, n_eps, opts->eps_brief);
	if (r < 0)
		goto out_release;
	r = ctx_slots(c, opts);
	if (r < 0)
		goto out_release;
	/* with local_only, the plan has the slots only */
	r = plan_eps_alloc(o, c->n_slots);
	if (r < 0)
		goto out_release;
	o->plan.n_eps = c->n_slots;
	r = -ENOMEM;
	c->group_mask = table_size(c->n_slots * MSEG_DIR_COUNT) - 1;
	c->group_table = calloc(c->group_mask + 1, sizeof(*c->group_table));
	c->groups = calloc(c->n_slots * MSEG_DIR_COUNT + 1, sizeof(*c->groups));
	ep_group = calloc(c->n_slots * MSEG_DIR_COUNT + 1, sizeof(*ep_group));
	if (!c->group_table || !c->groups || !ep_group)
		goto out_release;
	r = ctx_prepare_rules(c);
	if (r < 0)
		goto out_release;
	r = ctx_prepare_services(c, opts);
	if (r < 0)
		goto out_release;
	r = ctx_assign(c, opts, o->plan.eps, ep_group);
	if (r < 0)
		goto out_release;

	if (cc) {
		r = ctx_groups_cached(c, cc, &o->refs, &o->n_refs);
		if (r < 0)
			goto out_release;
	}
	for (size_t i = 0; !cc && i < c->n_groups; i++) {
		r = group_compute(c, &c->groups[i]);
		if (r < 0)
			goto out_release;
	}
	/* hand the block over to the plan */
	o->entries = c->out;
	o->entries_bytes = c->out_bytes;
	o->entries_mapped = c->out_mapped;
	c->out = NULL;
	for (size_t sl = 0; sl < c->n_slots; sl++) {
		struct mseg_ep_plan *ep = &o->plan.eps[sl];

		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			uint32_t gi = ep_group[sl * MSEG_DIR_COUNT + d];
			const struct cc_entry *ce;

			if (gi == UINT32_MAX)
				continue;
			ce = c->groups[gi].ce;
			if (ce) {
				if (ce->n) {
					ep->dir[d].entries = (struct mseg_entry *)ce->e;
					ep->dir[d].n_entries = ce->n;
					ep->dir[d].entries_id = ce->id;
				}
				continue;
			}
			if (c->groups[gi].n_entries == 0)
				continue;
			ep->dir[d].entries = o->entries + c->groups[gi].off;
			ep->dir[d].n_entries = c->groups[gi].n_entries;
		}
	}

	*ret_plan = &o->plan;
	o = NULL;
	r = 0;
out_release:
	if (o)
		plan_free(&o->plan);
	free(ep_group);
	ctx_release(c);
	free(c);
	return r;
}
