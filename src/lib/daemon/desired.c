/* The desired state and its one merge (include/mseg/daemon/desired.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/daemon/desired.h"
#include "mseg/daemon/store.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "mseg/model/selector.h"
#include "mseg/util/hash.h"
#include "mseg/util/clock.h"
#include "util/vec.h"

static struct desired_kept *kept_free(struct desired_kept *k);

void desired_init(struct desired *ds)
{
	memset(ds, 0, sizeof(*ds));
	for (int s = 0; s < DESIRED_N_SOURCES; s++) {
		policy_set_init(&ds->pols[s]);
		inventory_init(&ds->inv[s]);
	}
}

void desired_release(struct desired *ds)
{
	for (int s = 0; s < DESIRED_N_SOURCES; s++) {
		policy_set_release(&ds->pols[s]);
		inventory_release(&ds->inv[s]);
	}
	ds->store = store_free(ds->store);
	for (size_t i = 0; i < ds->n_gone; i++)
		free(ds->gone[i]);
	free(ds->gone);
	ds->gone = NULL;
	ds->n_gone = ds->cap_gone = 0;
	for (size_t i = 0; i < ds->n_stages; i++)
		free(ds->stages[i].key);
	free(ds->stages);
	ds->stages = NULL;
	ds->n_stages = ds->cap_stages = 0;
	ds->kept = kept_free(ds->kept);
}

static ssize_t gone_index(const struct desired *ds, const char *id)
{
	for (size_t i = 0; i < ds->n_gone; i++)
		if (strcmp(ds->gone[i], id) == 0)
			return (ssize_t)i;
	return -1;
}

bool desired_endpoint_is_gone(const struct desired *ds, const char *id)
{
	return gone_index(ds, id) >= 0;
}

const struct mseg_endpoint *desired_endpoint_waiting(const struct desired *ds, const char *id)
{
	const struct mseg_endpoint *ep;

	if (!ds->kube_pods)
		return NULL;
	ep = inventory_find(&ds->inv[DESIRED_API], id);
	if (!ep || !ep->pod_uid || inventory_find(&ds->inv[DESIRED_FILE], id) ||
	    inventory_find(&ds->inv[DESIRED_KUBE], id))
		return NULL;
	return ep;
}

int desired_endpoint_set_gone(struct desired *ds, const char *id, bool gone)
{
	ssize_t i = gone_index(ds, id);
	char *copy;

	if (!gone) {
		if (i >= 0) {
			free(ds->gone[i]);
			ds->gone[i] = ds->gone[--ds->n_gone];
			ds->gone_serial++;
		}
		return 0;
	}
	if (i >= 0)
		return 0;
	copy = strdup(id);
	if (!copy || VEC_RESERVE(ds->gone, ds->cap_gone, ds->n_gone + 1) < 0) {
		free(copy);
		return -ENOMEM;
	}
	ds->gone[ds->n_gone++] = copy;
	ds->gone_serial++;
	return 0;
}

int desired_store_open(struct desired *ds, const char *state_dir, struct mseg_err *err)
{
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct store *st = NULL;
	int r;

	policy_set_init(&pols);
	inventory_init(&inv);
	r = store_open(state_dir, &st, err);
	if (r < 0)
		return r;
	/* one bad file must not keep the host unprotected: it is moved aside */
	store_quarantine_enable(st);
	r = store_load(st, &pols, &inv, err);
	if (r < 0) {
		store_free(st);
		policy_set_release(&pols);
		inventory_release(&inv);
		return r;
	}
	policy_set_release(&ds->pols[DESIRED_API]);
	inventory_release(&ds->inv[DESIRED_API]);
	ds->pols[DESIRED_API] = pols;
	ds->inv[DESIRED_API] = inv;
	store_free(ds->store);
	ds->store = st;
	return 0;
}

void desired_files_replace(struct desired *ds, struct mseg_policy_set *pols,
			   struct mseg_inventory *inv)
{
	uint64_t now = clock_real_ns();

	for (size_t i = 0; i < inv->n; i++) {
		const struct mseg_endpoint *old = inventory_find(&ds->inv[DESIRED_FILE], inv->eps[i]->id);

		inv->eps[i]->registered_ns = old ? old->registered_ns : now;
	}
	policy_set_release(&ds->pols[DESIRED_FILE]);
	inventory_release(&ds->inv[DESIRED_FILE]);
	ds->pols[DESIRED_FILE] = *pols;
	ds->inv[DESIRED_FILE] = *inv;
	policy_set_init(pols);
	inventory_init(inv);
}

void desired_kube_replace(struct desired *ds, struct mseg_policy_set *pols,
			  struct mseg_inventory *inv)
{
	policy_set_release(&ds->pols[DESIRED_KUBE]);
	inventory_release(&ds->inv[DESIRED_KUBE]);
	ds->pols[DESIRED_KUBE] = *pols;
	ds->inv[DESIRED_KUBE] = *inv;
	policy_set_init(pols);
	inventory_init(inv);
}

bool desired_policy_shadowed(const struct desired *ds, const struct mseg_policy *p)
{
	return policy_set_find(&ds->pols[DESIRED_FILE], p->ns, p->name) != NULL;
}

bool desired_endpoint_shadowed(const struct desired *ds, const struct mseg_endpoint *ep)
{
	return inventory_find(&ds->inv[DESIRED_FILE], ep->id) != NULL;
}

static bool change_drops_policy(const struct desired_change *ch, const struct mseg_policy *p)
{
	if (!ch)
		return false;
	if (ch->put_pol && strcmp(p->ns, ch->put_pol->ns) == 0 &&
	    strcmp(p->name, ch->put_pol->name) == 0)
		return true;
	return ch->del_ns && strcmp(p->ns, ch->del_ns) == 0 && strcmp(p->name, ch->del_name) == 0;
}

static bool change_drops_endpoint(const struct desired_change *ch, const struct mseg_endpoint *ep)
{
	if (!ch)
		return false;
	if (ch->put_ep && strcmp(ep->id, ch->put_ep->id) == 0)
		return true;
	return ch->del_id && strcmp(ep->id, ch->del_id) == 0;
}

/* The API's endpoints as the change leaves them, in id order (the file's
 * shadowing is applied by the caller): @out gets at most n + 1 pointers. */
static size_t api_endpoints_changed(const struct desired *ds, const struct desired_change *ch,
				    struct mseg_endpoint **out)
{
	const struct mseg_inventory *api = &ds->inv[DESIRED_API];
	struct mseg_endpoint *put = ch ? (struct mseg_endpoint *)ch->put_ep : NULL;
	size_t n = 0;

	for (size_t i = 0; i < api->n; i++) {
		struct mseg_endpoint *ep = api->eps[i];

		if (put && strcmp(put->id, ep->id) < 0) {
			out[n++] = put;
			put = NULL;
		}
		if (!change_drops_endpoint(ch, ep))
			out[n++] = ep;
	}
	if (put)
		out[n++] = put;
	return n;
}

struct claim {
	struct mseg_addr addr;
	size_t ep;                 /* index in the view's inventory */
	uint64_t registered_ns;
};

/* Same address together; the newest registration first (ties: the id
 * that sorts last, so the outcome never depends on load order). */
static int claim_cmp(const void *pa, const void *pb, void *data)
{
	const struct claim *a = pa, *b = pb;
	const struct desired_view *v = data;
	unsigned __int128 x = addr_u128(&a->addr), y = addr_u128(&b->addr);

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	if (x != y)
		return x < y ? -1 : 1;
	if (a->registered_ns != b->registered_ns)
		return a->registered_ns > b->registered_ns ? -1 : 1;
	return -strcmp(v->inv.eps[a->ep]->id, v->inv.eps[b->ep]->id);
}

/* One address in the table of the view's addresses, by a 32-bit key
 * (addr_key(): an IPv4 address itself, 32 bits of an IPv6 address's
 * hash; two addresses with one key only look claimed twice: the merge
 * then compares the claims themselves, the kept view merges again): how
 * many claim it; while a merge fills the table, its first claim
 * (endpoint @ep, its address @ip) and whether another one followed. 12
 * bytes: at cluster scale the table is larger than the caches, and
 * below glibc's mmap threshold (a merge would fault in a new mapping). */
struct addr_slot {
	uint32_t key;              /* never 0; 0: empty */
	uint32_t ep;
	uint16_t ip;               /* | ADDR_SLOT_SHARED: claimed again */
	uint16_t count;            /* claims, up to UINT16_MAX (then: many) */
};

/* The addresses of a view, kept with it by desired_view_update(). */
struct addr_table {
	struct addr_slot *t;
	size_t mask, n;
};

#define ADDR_SLOT_SHARED 0x8000u
#define CLAIM_BATCH 16

static uint64_t addr_hash(const struct mseg_addr *a)
{
	uint64_t w[2] = { 0, 0 };
	uint64_t h;

	memcpy(w, a->bytes, a->family == AF_INET ? 4 : 16);   /* what addr_eq() compares */
	h = (w[0] ^ (w[1] * 0x9e3779b97f4a7c15ull) ^ a->family) * 0xbf58476d1ce4e5b9ull;
	h ^= h >> 31;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 29);
}

static uint32_t addr_key(const struct mseg_addr *a)
{
	uint32_t k;

	if (a->family == AF_INET)
		memcpy(&k, a->bytes, 4);
	else
		k = (uint32_t)(addr_hash(a) >> 32);
	return k ? k : 1;
}

/* The slot where the probe for @key starts. */
static size_t key_home(uint32_t key, size_t mask)
{
	uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull;

	return (size_t)(h ^ (h >> 29)) & mask;
}

static int claim_push(struct claim **cl, size_t *n, size_t *cap, const struct desired_view *v,
		      size_t ep, size_t ip)
{
	if (VEC_RESERVE(*cl, *cap, *n + 1) < 0)
		return -ENOMEM;
	(*cl)[(*n)++] = (struct claim){ v->inv.eps[ep]->ips[ip], ep,
					v->inv.eps[ep]->registered_ns };
	return 0;
}

/* Every claim of an address that @v's endpoints claim more than once (by
 * two endpoints, or one listing it twice), in claim_cmp() order: one pass
 * over the addresses with an open-addressing table of them (left in
 * @at, which the caller frees), then a sort of these claims only (the
 * same order a sort of all claims gives them). */
static int claims_shared(const struct desired_view *v, size_t n_claims, struct addr_table *at,
			 struct claim **ret_cl, size_t *ret_n)
{
	struct addr_slot *t;
	struct claim *cl = NULL;
	size_t size = 16, mask, n = 0, cap = 0, ci = 0, cj = 0;

	*ret_cl = NULL;
	*ret_n = 0;
	memset(at, 0, sizeof(*at));
	if (v->inv.n >= UINT32_MAX)
		return -ENOMEM;
	while (size < n_claims + n_claims / 2)   /* at most 2/3 full */
		size *= 2;
	mask = size - 1;
	t = calloc(size, sizeof(*t));
	if (!t)
		return -ENOMEM;
	at->t = t;
	at->mask = mask;
	while (ci < v->inv.n) {
		struct { uint32_t key, ep, ip; size_t home; } b[CLAIM_BATCH];
		size_t nb = 0;

		/* a batch of claims hashed and their slots fetched ahead: the
		 * table is larger than the caches, so a first look misses;
		 * these misses overlap instead of following each other */
		while (nb < CLAIM_BATCH && ci < v->inv.n) {
			const struct mseg_endpoint *ep = v->inv.eps[ci];

			if (cj >= ep->n_ips || cj >= ADDR_SLOT_SHARED) {
				/* the endpoints ahead, and their addresses, fetched
				 * too (each its own allocation: a miss each) */
				if (ci + 2 * CLAIM_BATCH < v->inv.n)
					__builtin_prefetch(v->inv.eps[ci + 2 * CLAIM_BATCH]);
				if (ci + CLAIM_BATCH < v->inv.n)
					__builtin_prefetch(v->inv.eps[ci + CLAIM_BATCH]->ips);
				ci++;
				cj = 0;
				continue;
			}
			b[nb].key = addr_key(&ep->ips[cj]);
			b[nb].home = key_home(b[nb].key, mask);
			b[nb].ep = (uint32_t)ci;
			b[nb].ip = (uint32_t)cj++;
			__builtin_prefetch(&t[b[nb].home], 1);
			nb++;
		}
		for (size_t q = 0; q < nb; q++) {
			struct addr_slot *e;

			for (size_t s = b[q].home;; s = (s + 1) & mask) {
				e = &t[s];
				if (!e->key || e->key == b[q].key)
					break;
			}
			if (!e->key) {
				*e = (struct addr_slot){ b[q].key, b[q].ep, (uint16_t)b[q].ip, 1 };
				at->n++;
				continue;
			}
			if (e->count < UINT16_MAX)
				e->count++;
			if (!(e->ip & ADDR_SLOT_SHARED) &&
			    claim_push(&cl, &n, &cap, v, e->ep, e->ip) < 0)
				goto out_nomem;
			e->ip |= ADDR_SLOT_SHARED;
			if (claim_push(&cl, &n, &cap, v, b[q].ep, b[q].ip) < 0)
				goto out_nomem;
		}
	}
	if (n > 1)
		qsort_r(cl, n, sizeof(*cl), claim_cmp, (void *)v);
	*ret_cl = cl;
	*ret_n = n;
	return 0;

out_nomem:
	free(cl);
	return -ENOMEM;
}

/* The slot of @a in @at, or NULL. */
static struct addr_slot *addr_table_find(const struct addr_table *at, const struct mseg_addr *a)
{
	uint32_t key = addr_key(a);

	if (!at->t)
		return NULL;
	for (size_t s = key_home(key, at->mask); at->t[s].key; s = (s + 1) & at->mask)
		if (at->t[s].key == key)
			return &at->t[s];
	return NULL;
}

/* One more claim of @a: its count now (UINT16_MAX: that many or more), or
 * 0 when the table is full (at most 2/3 of its slots are used). */
static uint32_t addr_table_claim(struct addr_table *at, const struct mseg_addr *a)
{
	uint32_t key = addr_key(a);
	size_t s;

	if (!at->t)
		return 0;
	for (s = key_home(key, at->mask); at->t[s].key; s = (s + 1) & at->mask) {
		if (at->t[s].key == key) {
			if (at->t[s].count < UINT16_MAX)
				at->t[s].count++;
			return at->t[s].count;
		}
	}
	if (3 * (at->n + 1) > 2 * (at->mask + 1))
		return 0;
	at->t[s] = (struct addr_slot){ .key = key, .count = 1 };
	at->n++;
	return 1;
}

/* One claim of @a fewer (it must have one, and not "many"); its slot
 * emptied at the last, the slots after it moved back so that every probe
 * still finds them. */
static void addr_table_unclaim(struct addr_table *at, struct addr_slot *e)
{
	size_t i = (size_t)(e - at->t), j = i;

	if (--e->count)
		return;
	at->n--;
	for (;;) {
		size_t home;

		at->t[i].key = 0;
		for (;;) {
			j = (j + 1) & at->mask;
			if (!at->t[j].key)
				return;
			home = key_home(at->t[j].key, at->mask);
			/* stays when its home is cyclically in (i, j] */
			if (((j - home) & at->mask) >= ((j - i) & at->mask))
				break;
		}
		at->t[i] = at->t[j];
		i = j;
	}
}

/* No address grants one endpoint's access to another: where endpoints of
 * the view claim the same address, the newest registration keeps it and
 * the others are replaced by copies without it. The conflicts are listed
 * in claim_cmp() order of the losing claims. The table of the addresses
 * is left in @at (the caller frees at->t). */
static int view_resolve_conflicts(struct desired_view *v, size_t n_claims, struct addr_table *at)
{
	struct claim *cl;
	bool *loses;
	size_t n;

	if (claims_shared(v, n_claims, at, &cl, &n) < 0)
		goto out_nomem_view;
	if (!n)
		return 0;
	loses = calloc(n, sizeof(*loses));
	if (!loses)
		goto out_nomem;
	for (size_t i = 1; i < n; i++) {
		size_t w = i - 1;

		if (!addr_eq(&cl[i].addr, &cl[w].addr))
			continue;
		while (w > 0 && addr_eq(&cl[w - 1].addr, &cl[i].addr))
			w--;                  /* the group's first: the winner */
		if (cl[i].ep == cl[w].ep)
			continue;             /* one endpoint listing it twice */
		loses[i] = true;
	}
	for (size_t i = 0; i < n; i++) {
		const struct mseg_endpoint *old;
		struct mseg_endpoint *cp;
		size_t w = i;

		if (!loses[i])
			continue;
		while (w > 0 && addr_eq(&cl[w - 1].addr, &cl[i].addr))
			w--;
		old = v->inv.eps[cl[i].ep];
		{
			struct desired_conflict *t = realloc(v->conflicts, (v->n_conflicts + 1) *
							     sizeof(*t));

			if (!t)
				goto out_nomem;
			v->conflicts = t;
			v->conflicts[v->n_conflicts++] = (struct desired_conflict){
				cl[i].addr, v->inv.eps[cl[w].ep]->id, old->id };
		}
		/* the loser: a copy (made once) without this address */
		cp = NULL;
		for (size_t c = 0; c < v->n_copies; c++)
			if (v->copies[c] == old)
				cp = v->copies[c];
		if (!cp) {
			struct mseg_endpoint **t = realloc(v->copies, (v->n_copies + 1) * sizeof(*t));

			if (!t)
				goto out_nomem;
			v->copies = t;
			cp = malloc(sizeof(*cp));
			if (!cp)
				goto out_nomem;
			*cp = *old;
			memset(&cp->arena, 0, sizeof(cp->arena));
			cp->ips = malloc(old->n_ips * sizeof(*cp->ips));
			if (!cp->ips) {
				free(cp);
				goto out_nomem;
			}
			memcpy(cp->ips, old->ips, old->n_ips * sizeof(*cp->ips));
			v->copies[v->n_copies++] = cp;
			v->inv.eps[cl[i].ep] = cp;
		}
		for (size_t j = 0; j < cp->n_ips; j++)
			if (addr_eq(&cp->ips[j], &cl[i].addr)) {
				memmove(&cp->ips[j], &cp->ips[j + 1], (cp->n_ips - j - 1) * sizeof(*cp->ips));
				cp->n_ips--;
				break;
			}
	}
	free(cl);
	free(loses);
	return 0;

out_nomem:
	free(cl);
	free(loses);
out_nomem_view:
	desired_view_release(v);
	return -ENOMEM;
}

static int no_store(struct mseg_err *err);

/* Namespace names numbered (struct mseg_ep_brief.ns): one name, one
 * number, for as long as the table lives. */
struct desired_ns_ids {
	char **names;                          /* by number */
	size_t n, cap;
	uint32_t *table;                       /* open addressing: number + 1 */
	size_t mask;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = hash_fnv_str(HASH_FNV_OFFSET, s);

	return h ^ (h >> 32);
}

static void ns_ids_release(struct desired_ns_ids *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	free(t->table);
	memset(t, 0, sizeof(*t));
}

static int ns_ids_get(struct desired_ns_ids *t, const char *name, uint32_t *ret)
{
	size_t slot;

	if (!t->table || 2 * (t->n + 1) > t->mask + 1) {
		size_t size = t->table ? 2 * (t->mask + 1) : 64;
		uint32_t *table = calloc(size, sizeof(*table));

		if (!table || t->n >= UINT32_MAX - 1) {
			free(table);
			return -ENOMEM;
		}
		for (size_t i = 0; i < t->n; i++) {
			for (slot = str_hash(t->names[i]) & (size - 1); table[slot];
			     slot = (slot + 1) & (size - 1))
				;
			table[slot] = (uint32_t)i + 1;
		}
		free(t->table);
		t->table = table;
		t->mask = size - 1;
	}
	for (slot = str_hash(name) & t->mask; t->table[slot]; slot = (slot + 1) & t->mask) {
		if (strcmp(t->names[t->table[slot] - 1], name) == 0) {
			*ret = t->table[slot] - 1;
			return 0;
		}
	}
	if (VEC_RESERVE(t->names, t->cap, t->n + 1) < 0 || !(t->names[t->n] = strdup(name)))
		return -ENOMEM;
	t->table[slot] = (uint32_t)++t->n;
	*ret = (uint32_t)(t->n - 1);
	return 0;
}

/* The namespace looked up last: the inventory is sorted by id, and the
 * endpoints of one namespace mostly follow each other (the cluster's ids
 * are "k8s.NS.NAME"), so most endpoints need no search of the sources;
 * and its number (@ids). */
struct ns_memo {
	const char *name;
	const struct mseg_namespace *ns;
	struct desired_ns_ids *ids;
	uint32_t id;
	bool nomem;
};

static const struct mseg_namespace *ns_memo_find(const struct desired *ds, struct ns_memo *m,
						 const char *name)
{
	if (!m->name || (m->name != name && strcmp(m->name, name) != 0)) {
		m->ns = desired_namespace_find(ds, name, NULL);
		m->name = name;
		if (ns_ids_get(m->ids, name, &m->id) < 0)
			m->nomem = true;
	}
	return m->ns;
}

static struct mseg_ep_brief ep_brief(const struct mseg_endpoint *ep,
				     const struct desired_ns_ids *ids, uint32_t ns_id)
{
	return (struct mseg_ep_brief){ .ns_name = ids->names[ns_id],
				       .ns_labels_serial = ep->ns_labels_serial & ~(1ull << 63),
				       .netns = ep->netns != NULL };
}

/* Endpoint @ep into view @v (unless its netns is gone), with its
 * namespace's labels (filled before any copy is made: the labels live in
 * the original's arena); its addresses counted into *@n_claims. */
static int view_take(const struct desired *ds, struct desired_view *v, struct mseg_endpoint *ep,
		     struct ns_memo *memo, size_t *n_claims)
{
	if (ds->n_gone && desired_endpoint_is_gone(ds, ep->id)) {
		v->gone++;
		return 0;
	}
	if (endpoint_ns_labels_fill(ep, ns_memo_find(ds, memo, selector_ns_name(ep->ns))) < 0 ||
	    memo->nomem)
		return -ENOMEM;
	if (!ep->cluster_peer) {
		if (VEC_RESERVE(v->local, v->cap_local, v->n_local + 1) < 0)
			return -ENOMEM;
		v->local[v->n_local++] = v->inv.n;
	}
	v->brief[v->inv.n] = ep_brief(ep, memo->ids, memo->id);
	v->inv.eps[v->inv.n++] = ep;
	*n_claims += ep->n_ips;
	return 0;
}

/* How far ahead a walk over every endpoint fetches them (each one is an
 * allocation of its own: a cache miss each at cluster scale). */
#define VIEW_AHEAD 8

/* The cluster's endpoints in id order: its sorted array with the changes
 * staged since the last flush (inventory_stage_put()) applied as it goes.
 * Settled, its next endpoint is eps[i], unless staged[s] comes first. */
struct kube_cursor {
	const struct mseg_inventory *inv;
	size_t i, s;
};

static void kc_settle(struct kube_cursor *c)
{
	const struct mseg_inventory *inv = c->inv;

	while (c->s < inv->n_staged) {
		const struct inventory_change *st = &inv->staged[c->s];
		int cmp = c->i < inv->n ? strcmp(inv->eps[c->i]->id, st->id) : 1;

		if (cmp < 0)
			return;
		if (cmp == 0)
			c->i++;        /* replaced or removed by the change */
		if (st->ep)
			return;
		c->s++;                /* a removal: nothing to take */
	}
}

/* The next endpoint (NULL: none), and whether it is a staged one. */
static struct mseg_endpoint *kc_head(const struct kube_cursor *c, bool *ret_staged)
{
	const struct mseg_inventory *inv = c->inv;
	struct mseg_endpoint *m = c->i < inv->n ? inv->eps[c->i] : NULL;

	*ret_staged = c->s < inv->n_staged && (!m || strcmp(inv->staged[c->s].id, m->id) < 0);
	return *ret_staged ? inv->staged[c->s].ep : m;
}

static void kc_next(struct kube_cursor *c)
{
	bool staged;

	if (kc_head(c, &staged)) {
		if (staged)
			c->s++;
		else
			c->i++;
	}
	kc_settle(c);
}

/* The policies of view @v (those it had are let go): every source's, a
 * file winning a name over the API and the cluster, the API over the
 * cluster, with @ch applied; a policy with a stage (the mode set through
 * the API, the end of its learning) is a copy, owned by the view. */
static int view_policies(const struct desired *ds, const struct desired_change *ch,
			 struct desired_view *v)
{
	const struct mseg_policy_set *fp = &ds->pols[DESIRED_FILE], *ap = &ds->pols[DESIRED_API];
	const struct mseg_policy_set *kp = &ds->pols[DESIRED_KUBE];
	size_t np = fp->n + ap->n + kp->n + 1;

	free(v->pols.items);
	for (size_t i = 0; i < v->n_pol_copies; i++)
		free(v->pol_copies[i]);
	v->n_pol_copies = 0;
	v->shadowed_pols = 0;
	v->pols.n = 0;
	v->pols.cap = 0;
	v->pols.items = malloc(np * sizeof(*v->pols.items));
	if (!v->pols.items)
		return -ENOMEM;
	v->pols.cap = np;

	for (size_t i = 0; i < fp->n; i++)
		v->pols.items[v->pols.n++] = fp->items[i];
	for (size_t i = 0; i < ap->n; i++) {
		struct mseg_policy *p = ap->items[i];

		if (desired_policy_shadowed(ds, p))
			v->shadowed_pols++;
		else if (!change_drops_policy(ch, p))
			v->pols.items[v->pols.n++] = p;
	}
	if (ch && ch->put_pol)
		v->pols.items[v->pols.n++] = (struct mseg_policy *)ch->put_pol;
	/* the cluster's policies: a file or API policy of the same name wins */
	for (size_t i = 0; i < kp->n; i++) {
		struct mseg_policy *p = kp->items[i];
		bool clash = policy_set_find(fp, p->ns, p->name) ||
			     (policy_set_find(ap, p->ns, p->name) && !change_drops_policy(ch, p)) ||
			     (ch && ch->put_pol && strcmp(p->ns, ch->put_pol->ns) == 0 &&
			      strcmp(p->name, ch->put_pol->name) == 0);

		if (clash)
			v->shadowed_pols++;
		else
			v->pols.items[v->pols.n++] = p;
	}

	for (size_t i = 0; ds->n_stages && i < v->pols.n; i++) {
		struct mseg_policy *p = v->pols.items[i], *c;
		const struct stage_entry *st = desired_stage_find(ds, p->ns, p->name);

		if (!st)
			continue;
		c = malloc(sizeof(*c));
		if (!c || VEC_RESERVE(v->pol_copies, v->cap_pol_copies, v->n_pol_copies + 1) < 0) {
			free(c);
			return -ENOMEM;
		}
		*c = *p;   /* shallow: everything stays in p's arena */
		memset(&c->arena, 0, sizeof(c->arena));
		v->pol_copies[v->n_pol_copies++] = c;
		switch (st->mode) {
		case STAGE_SPEC:
			break;
		case STAGE_ENFORCE:
			c->mode = MSEG_MODE_ENFORCE;
			c->learn = false;
			break;
		case STAGE_AUDIT:
			c->mode = MSEG_MODE_AUDIT;
			c->learn = false;
			break;
		case STAGE_LEARN:
			c->mode = MSEG_MODE_ENFORCE;
			c->learn = true;
			c->learn_for_s = st->learn_for_s;
			break;
		}
		c->learn_until_s = c->learn ? st->until_s : 0;
		v->pols.items[i] = c;
	}
	return 0;
}

/* What the merge makes of id X given the endpoints of that id in the file,
 * API and cluster sources (NULL: none): the endpoint the view takes, and
 * what X adds to the view's counts: the file wins a clash, then the
 * cluster's view of a pod over its registration by mseg-cni. One copy for
 * view_build()'s merge and the kept view's updates. */
struct ep_outcome {
	struct mseg_endpoint *take;
	size_t waiting, shadowed, gone;
};

static struct ep_outcome view_outcome(const struct desired *ds, struct mseg_endpoint *fa,
				      struct mseg_endpoint *fb, struct mseg_endpoint *fk)
{
	struct ep_outcome o = { 0 };

	/* a cluster endpoint with a netns only stands for a registered one */
	if (fk && fk->netns && !fb)
		fk = NULL;   /* its registration is gone (or going) */
	if (fb && !fk && fb->pod_uid && ds->kube_pods && !fa) {
		o.waiting = 1;   /* a pod's registration: never without its labels */
		return o;
	}
	if (fa) {
		o.take = fa;
		o.shadowed = (fb != NULL) + (fk != NULL);
	} else {
		o.take = fk ? fk : fb;
	}
	if (o.take && ds->n_gone && desired_endpoint_is_gone(ds, o.take->id)) {
		o.take = NULL;
		o.gone = 1;
	}
	return o;
}

/* desired_view_build(), its table of addresses left in @at (NULL: freed),
 * its namespaces numbered in @ids (NULL: a table of its own, the view's). */
static int view_build(const struct desired *ds, const struct desired_change *ch,
		      struct desired_view *ret, struct addr_table *at, struct desired_ns_ids *ids)
{
	const struct mseg_inventory *fi = &ds->inv[DESIRED_FILE], *ki = &ds->inv[DESIRED_KUBE];
	size_t ne = fi->n + ds->inv[DESIRED_API].n + ki->n + ki->n_staged + 1;
	struct mseg_endpoint **api_eps = NULL;
	struct ns_memo memo = { .ids = ids };
	struct kube_cursor kc = { ki, 0, 0 };
	struct addr_table own;
	size_t n_api, a = 0, b = 0, n_claims = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!at)
		at = &own;
	memset(at, 0, sizeof(*at));
	if (!ids) {
		ret->ns_ids = calloc(1, sizeof(*ret->ns_ids));
		memo.ids = ret->ns_ids;
		if (!ret->ns_ids)
			goto out_nomem;
	}
	ret->inv.eps = malloc(ne * sizeof(*ret->inv.eps));
	ret->brief = malloc(ne * sizeof(*ret->brief));
	ret->inv.brief = ret->brief;
	api_eps = malloc((ds->inv[DESIRED_API].n + 1) * sizeof(*api_eps));
	if (!ret->inv.eps || !ret->brief || !api_eps || view_policies(ds, ch, ret) < 0)
		goto out_nomem;
	ret->inv.cap = ne;

	/* all sides are sorted by id: merge, the file winning a clash, then
	 * the cluster's view of a pod over its registration by mseg-cni (a
	 * cluster endpoint with a netns only stands for a registered one) */
	n_api = api_endpoints_changed(ds, ch, api_eps);
	kc_settle(&kc);
	for (;;) {
		struct mseg_endpoint *fa = a < fi->n ? fi->eps[a] : NULL;
		struct mseg_endpoint *fb = b < n_api ? api_eps[b] : NULL;
		struct mseg_endpoint *fk;
		struct ep_outcome o;
		const char *min = NULL;
		bool staged;

		/* the cluster's endpoints before the next of the other
		 * sources (and before its next staged change) have no rival:
		 * peers are taken as they are, and an endpoint with a netns
		 * without its registration is left out */
		if (kc.i < ki->n) {
			size_t end;

			if (fa)
				min = fa->id;
			if (fb && (!min || strcmp(fb->id, min) < 0))
				min = fb->id;
			if (kc.s < ki->n_staged && (!min || strcmp(ki->staged[kc.s].id, min) < 0))
				min = ki->staged[kc.s].id;
			for (end = inventory_lower_bound(ki, kc.i, min); kc.i < end; kc.i++) {
				if (kc.i + VIEW_AHEAD < end)
					__builtin_prefetch(ki->eps[kc.i + VIEW_AHEAD]);
				if (!ki->eps[kc.i]->netns &&
				    view_take(ds, ret, ki->eps[kc.i], &memo, &n_claims) < 0)
					goto out_nomem;
			}
			kc_settle(&kc);
		}
		fk = kc_head(&kc, &staged);
		if (!fa && !fb && !fk)
			break;
		min = NULL;
		if (fa)
			min = fa->id;
		if (fb && (!min || strcmp(fb->id, min) < 0))
			min = fb->id;
		if (fk && (!min || strcmp(fk->id, min) < 0))
			min = fk->id;
		fa = fa && strcmp(fa->id, min) == 0 ? fa : NULL;
		fb = fb && strcmp(fb->id, min) == 0 ? fb : NULL;
		fk = fk && strcmp(fk->id, min) == 0 ? fk : NULL;
		a += fa != NULL;
		b += fb != NULL;
		if (fk)
			kc_next(&kc);
		o = view_outcome(ds, fa, fb, fk);
		ret->waiting += o.waiting;
		ret->shadowed_eps += o.shadowed;
		ret->gone += o.gone;
		if (o.take && view_take(ds, ret, o.take, &memo, &n_claims) < 0)
			goto out_nomem;
	}
	free(api_eps);
	api_eps = NULL;
	r = view_resolve_conflicts(ret, n_claims, at);
	if (at == &own)
		free(own.t);
	return r;

out_nomem:
	free(api_eps);
	desired_view_release(ret);
	return -ENOMEM;
}

int desired_view_build(const struct desired *ds, const struct desired_change *ch,
		       struct desired_view *ret)
{
	return view_build(ds, ch, ret, NULL, NULL);
}

/* ---- the view kept across reconciles (desired_view_update()) ---- */

struct desired_kept {
	struct desired_view view;
	bool valid;
	bool last_full;
	struct addr_table addrs;               /* of the view's endpoints */
	struct desired_ns_ids ids;                     /* its namespaces numbered */
	/* what the view was made from: the same serials, the same view */
	uint64_t file_serial, file_ns_serial, api_serial, api_ns_serial, kube_ns_serial;
	uint64_t gone_serial;
	bool kube_pods;
	uint64_t kube_serial;                  /* the cluster's endpoints */
};

static struct desired_kept *kept_free(struct desired_kept *k)
{
	if (k) {
		desired_view_release(&k->view);
		free(k->addrs.t);
		ns_ids_release(&k->ids);
		free(k);
	}
	return NULL;
}

static bool kept_holds(const struct desired *ds, const struct desired_kept *k)
{
	const struct mseg_inventory *fi = &ds->inv[DESIRED_FILE], *ai = &ds->inv[DESIRED_API];
	const struct mseg_inventory *ki = &ds->inv[DESIRED_KUBE];

	return k->valid && k->file_serial == fi->serial && k->file_ns_serial == fi->ns_serial &&
	       k->api_serial == ai->serial && k->api_ns_serial == ai->ns_serial &&
	       k->kube_ns_serial == ki->ns_serial && k->gone_serial == ds->gone_serial &&
	       k->kube_pods == ds->kube_pods &&
	       (k->kube_serial == ki->serial || (ki->journal_on && !ki->journal_lost));
}

/* A journaled id: where the view has it, what it takes now. */
struct view_op {
	const char *id;
	const struct mseg_endpoint *before;    /* the cluster's, when the view was made */
	size_t seq;
	size_t pos;                            /* in the view's endpoints */
	bool found;                            /* ... which have it there */
	struct mseg_endpoint *take;            /* NULL: none any more */
};

static int view_op_cmp(const void *pa, const void *pb)
{
	const struct view_op *a = pa, *b = pb;
	int c = strcmp(a->id, b->id);

	return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static size_t view_search(const struct desired_view *v, const char *id, bool *ret_found)
{
	size_t pos = inventory_lower_bound(&v->inv, 0, id);

	*ret_found = pos < v->inv.n && strcmp(v->inv.eps[pos]->id, id) == 0;
	return pos;
}

/* The kept view with the journal of the cluster's inventory applied.
 * -EAGAIN: a change this cannot follow (an address claimed twice before
 * or after, the address table full): merge everything; -ENOMEM. Either
 * way the view is then no longer valid. */
static int kept_apply_journal(struct desired *ds, struct desired_kept *k)
{
	const struct mseg_inventory *ki = &ds->inv[DESIRED_KUBE];
	struct desired_view *v = &k->view;
	struct view_op *ops;
	struct mseg_endpoint **eps = NULL;
	struct mseg_ep_brief *brief = NULL;
	size_t *local = NULL;
	size_t n_ops = 0, n_new, cap_local, i, j, kk, l;
	int r = -ENOMEM;

	ops = malloc((ki->n_journal ? ki->n_journal : 1) * sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < ki->n_journal; i++)
		ops[i] = (struct view_op){ .id = ki->journal[i].id,
					   .before = ki->journal[i].before, .seq = i };
	qsort(ops, ki->n_journal, sizeof(*ops), view_op_cmp);
	/* each id once, with what it was when the view was made */
	for (i = 0; i < ki->n_journal; i++)
		if (!n_ops || strcmp(ops[n_ops - 1].id, ops[i].id) != 0)
			ops[n_ops++] = ops[i];

	/* the outcome of each id, before and now; the claims of what
	 * leaves the view first, then of what comes in */
	n_new = v->inv.n;
	for (i = 0; i < n_ops; i++) {
		struct view_op *op = &ops[i];
		struct mseg_endpoint *fa = inventory_find(&ds->inv[DESIRED_FILE], op->id);
		struct mseg_endpoint *fb = inventory_find(&ds->inv[DESIRED_API], op->id);
		struct ep_outcome was = view_outcome(ds, fa, fb, (struct mseg_endpoint *)op->before);
		struct ep_outcome now = view_outcome(ds, fa, fb, inventory_find(ki, op->id));

		v->waiting += now.waiting - was.waiting;
		v->shadowed_eps += now.shadowed - was.shadowed;
		v->gone += now.gone - was.gone;
		op->pos = view_search(v, op->id, &op->found);
		op->take = now.take;
		if (op->found != (was.take != NULL) || (op->found && v->inv.eps[op->pos] != was.take)) {
			r = -EAGAIN;   /* a copy (it lost an address) or not what we thought */
			goto out_free;
		}
		if (was.take == now.take) {
			op->id = NULL;      /* nothing to do in the array */
			continue;
		}
		for (size_t q = 0; was.take && q < was.take->n_ips; q++) {
			struct addr_slot *e = addr_table_find(&k->addrs, &was.take->ips[q]);

			if (!e || e->count != 1) {
				r = -EAGAIN;
				goto out_free;
			}
			addr_table_unclaim(&k->addrs, e);
		}
		n_new += (now.take != NULL) - (was.take != NULL);
	}
	for (i = 0; i < n_ops; i++) {
		struct mseg_endpoint *ep = ops[i].take;

		if (!ops[i].id || !ep)
			continue;
		if (endpoint_ns_labels_fill(ep, desired_namespace_find(ds, selector_ns_name(ep->ns),
								       NULL)) < 0)
			goto out_free;
		for (size_t q = 0; q < ep->n_ips; q++) {
			if (addr_table_claim(&k->addrs, &ep->ips[q]) != 1) {
				r = -EAGAIN;
				goto out_free;
			}
		}
	}

	/* the new array in one pass (the ops are in id order, so in the
	 * order of their places), the local endpoints' indices with it */
	eps = malloc((n_new ? n_new : 1) * sizeof(*eps));
	brief = malloc((n_new ? n_new : 1) * sizeof(*brief));
	cap_local = v->n_local + n_ops + 1;
	local = malloc(cap_local * sizeof(*local));
	if (!eps || !brief || !local)
		goto out_free;
	i = 0;    /* the old array */
	kk = 0;   /* the new one */
	l = 0;    /* the old local indices */
	{
		size_t n_local = 0;

		for (j = 0; j <= n_ops; j++) {
			size_t end = j < n_ops ? ops[j].pos : v->inv.n;

			if (j < n_ops && !ops[j].id)
				continue;
			if (end > i) {
				memcpy(eps + kk, v->inv.eps + i, (end - i) * sizeof(*eps));
				memcpy(brief + kk, v->brief + i, (end - i) * sizeof(*brief));
			}
			for (; l < v->n_local && v->local[l] < end; l++)
				local[n_local++] = v->local[l] - i + kk;
			kk += end - i;
			i = end;
			if (j == n_ops)
				break;
			if (ops[j].found) {
				if (l < v->n_local && v->local[l] == i)
					l++;            /* it leaves; its successor may be local */
				i++;
			}
			if (ops[j].take) {
				uint32_t id;

				if (ns_ids_get(&k->ids, selector_ns_name(ops[j].take->ns), &id) < 0)
					goto out_free;
				if (!ops[j].take->cluster_peer)
					local[n_local++] = kk;
				brief[kk] = ep_brief(ops[j].take, &k->ids, id);
				eps[kk++] = ops[j].take;
			}
		}
		free(v->inv.eps);
		v->inv.eps = eps;
		free(v->brief);
		v->brief = brief;
		v->inv.brief = brief;
		v->inv.n = kk;
		v->inv.cap = n_new ? n_new : 1;
		free(v->local);
		v->local = local;
		v->n_local = n_local;
		v->cap_local = cap_local;
	}
	free(ops);
	return 0;

out_free:
	free(eps);
	free(brief);
	free(local);
	free(ops);
	k->valid = false;
	return r;
}

int desired_view_update(struct desired *ds, const struct desired_view **ret_view)
{
	struct mseg_inventory *ki = &ds->inv[DESIRED_KUBE];
	struct desired_kept *k = ds->kept;
	int r;

	*ret_view = NULL;
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return -ENOMEM;
		ds->kept = k;
	}
	k->last_full = false;
	if (kept_holds(ds, k)) {
		r = 0;
		if (k->kube_serial != ki->serial)
			r = kept_apply_journal(ds, k);
		if (r == 0)
			r = view_policies(ds, NULL, &k->view);
		if (r == -ENOMEM) {
			k->valid = false;
			return r;
		}
	} else {
		r = -EAGAIN;
	}
	if (r < 0) {
		/* every endpoint merged again */
		k->valid = false;
		desired_view_release(&k->view);
		free(k->addrs.t);
		memset(&k->addrs, 0, sizeof(k->addrs));
		r = view_build(ds, NULL, &k->view, &k->addrs, &k->ids);
		if (r < 0)
			return r;
		k->last_full = true;
		k->file_serial = ds->inv[DESIRED_FILE].serial;
		k->file_ns_serial = ds->inv[DESIRED_FILE].ns_serial;
		k->api_serial = ds->inv[DESIRED_API].serial;
		k->api_ns_serial = ds->inv[DESIRED_API].ns_serial;
		k->kube_ns_serial = ki->ns_serial;
		k->gone_serial = ds->gone_serial;
		k->kube_pods = ds->kube_pods;
	}
	/* from here on, the journal names what changed since this view */
	inventory_journal_reset(ki);
	k->kube_serial = ki->serial;
	k->valid = true;
	*ret_view = &k->view;
	return 0;
}

bool desired_view_last_full(const struct desired *ds)
{
	return ds->kept && ds->kept->last_full;
}

const struct mseg_namespace *desired_namespace_find(const struct desired *ds, const char *name,
						    enum desired_source *ret_src)
{
	for (int src = 0; src < DESIRED_N_SOURCES; src++) {
		const struct mseg_namespace *ns = inventory_ns_find(&ds->inv[src], name);

		if (ns) {
			if (ret_src)
				*ret_src = (enum desired_source)src;
			return ns;
		}
	}
	return NULL;
}

int desired_api_namespace_put(struct desired *ds, struct mseg_namespace *ns, const char *doc,
			      size_t len, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	r = store_namespace_put(ds->store, ns->name, doc, len, err);
	if (r < 0)
		return r;
	r = inventory_ns_put(&ds->inv[DESIRED_API], ns);
	if (r < 0)
		return err_setf(err, -r, "namespace '%s' is stored but could not be taken into "
			       "memory (%s); a restart brings it", ns->name, strerror(-r));
	ds->generation++;
	return 0;
}

int desired_api_namespace_delete(struct desired *ds, const char *name, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	if (!inventory_ns_find(&ds->inv[DESIRED_API], name))
		return err_setf(err, ENOENT, "no namespace '%s'", name);
	r = store_namespace_delete(ds->store, name, err);
	if (r < 0 && r != -ENOENT)
		return r;
	inventory_ns_remove(&ds->inv[DESIRED_API], name);
	ds->generation++;
	return 0;
}

void desired_view_release(struct desired_view *v)
{
	for (size_t i = 0; i < v->n_copies; i++) {
		free(v->copies[i]->ips);
		free(v->copies[i]);
	}
	free(v->copies);
	for (size_t i = 0; i < v->n_pol_copies; i++)
		free(v->pol_copies[i]);
	free(v->pol_copies);
	free(v->conflicts);
	free(v->local);
	free(v->pols.items);
	free(v->inv.eps);
	free(v->brief);
	if (v->ns_ids) {
		ns_ids_release(v->ns_ids);
		free(v->ns_ids);
	}
	memset(v, 0, sizeof(*v));
}

static int ep_ns_cmp(const void *pa, const void *pb)
{
	const struct mseg_endpoint *a = *(const struct mseg_endpoint *const *)pa;
	const struct mseg_endpoint *b = *(const struct mseg_endpoint *const *)pb;

	return strcmp(selector_ns_name(a->ns), selector_ns_name(b->ns));
}

/* The local endpoints by namespace: a namespace's endpoints are
 * local[lo, hi); its name hashed into @table (index + 1), so that a peer
 * of one named namespace (most of the cluster's policies, each naming
 * its own) costs a hash of the name, not a search with a strcmp a step. */
struct local_ns {
	const char *name;
	uint64_t hash;
	size_t lo, hi;
};

struct local_index {
	struct mseg_endpoint **local;          /* sorted by namespace */
	size_t n_local;
	struct local_ns *nss;
	size_t n_nss;
	uint32_t *table;
	size_t mask;
};

static const struct local_ns *local_ns_find(const struct local_index *li, const char *name)
{
	uint64_t h = str_hash(name);

	for (size_t s = h & li->mask; li->table[s]; s = (s + 1) & li->mask) {
		const struct local_ns *ns = &li->nss[li->table[s] - 1];

		if (ns->hash == h && strcmp(ns->name, name) == 0)
			return ns;
	}
	return NULL;
}

/* Does @peer (an endpoints peer) select one of the local endpoints? A
 * peer of one named namespace looks at that namespace's endpoints only. */
static bool peer_selects_any(const struct mseg_peer *peer, const struct local_index *li)
{
	if (peer->kind != MSEG_PEER_ENDPOINTS)
		return false;
	if (peer->ns_scope == MSEG_NS_NAMED) {
		const struct local_ns *ns = local_ns_find(li, selector_ns_name(peer->ns));

		for (size_t i = ns ? ns->lo : 0; ns && i < ns->hi; i++)
			if (selector_peer_selects(peer, li->local[i]))
				return true;
		return false;
	}
	for (size_t i = 0; i < li->n_local; i++)
		if (selector_peer_selects(peer, li->local[i]))
			return true;
	return false;
}

int desired_view_programmable(const struct desired_view *v, struct mseg_policy ***ret_items,
			      size_t *ret_n)
{
	struct local_index li = { 0 };
	struct mseg_policy **out;
	size_t n = 0, size = 16;

	*ret_items = NULL;
	*ret_n = 0;
	while (size < 2 * v->n_local + 2)
		size *= 2;
	out = malloc((v->pols.n ? v->pols.n : 1) * sizeof(*out));
	li.local = malloc((v->n_local ? v->n_local : 1) * sizeof(*li.local));
	li.nss = malloc((v->n_local ? v->n_local : 1) * sizeof(*li.nss));
	li.table = calloc(size, sizeof(*li.table));
	li.mask = size - 1;
	if (!out || !li.local || !li.nss || !li.table) {
		free(out);
		out = NULL;
		goto out_free;
	}
	/* the view has them (no pass over every endpoint) */
	for (size_t i = 0; i < v->n_local; i++)
		li.local[li.n_local++] = v->inv.eps[v->local[i]];
	if (li.n_local == v->inv.n) {
		memcpy(out, v->pols.items, v->pols.n * sizeof(*out));
		n = v->pols.n;
		goto out_free;
	}
	qsort(li.local, li.n_local, sizeof(*li.local), ep_ns_cmp);
	for (size_t i = 0; i < li.n_local; i++) {
		const char *name = selector_ns_name(li.local[i]->ns);
		size_t s;

		if (li.n_nss && strcmp(li.nss[li.n_nss - 1].name, name) == 0) {
			li.nss[li.n_nss - 1].hi = i + 1;
			continue;
		}
		li.nss[li.n_nss] = (struct local_ns){ name, str_hash(name), i, i + 1 };
		for (s = li.nss[li.n_nss].hash & li.mask; li.table[s]; s = (s + 1) & li.mask)
			;
		li.table[s] = (uint32_t)++li.n_nss;
	}
	for (size_t i = 0; i < v->pols.n; i++) {
		struct mseg_policy *p = v->pols.items[i];
		bool keep = false;

		/* 10,000 policies, each its own allocation: what the test reads
		 * is fetched some policies ahead (the misses overlap) */
		if (i + 8 < v->pols.n)
			__builtin_prefetch(v->pols.items[i + 8]);
		if (i + 4 < v->pols.n) {
			const struct mseg_policy *q = v->pols.items[i + 4];

			__builtin_prefetch(q->subjects);
			__builtin_prefetch(q->rules);
		}
		for (size_t j = 0; j < p->n_subjects && !keep; j++)
			keep = peer_selects_any(&p->subjects[j], &li);
		for (size_t j = 0; j < p->n_rules && !keep; j++)
			keep = peer_selects_any(&p->rules[j].local, &li);
		if (keep)
			out[n++] = p;
	}

out_free:
	free(li.local);
	free(li.nss);
	free(li.table);
	if (!out)
		return -ENOMEM;
	*ret_items = out;
	*ret_n = n;
	return 0;
}

int desired_compile(const struct desired *ds, const struct desired_change *ch,
		    const struct compile_opts *opts, struct desired_plan *ret)
{
	struct mseg_policy **pols;
	size_t n_pols;
	int r = desired_view_build(ds, ch, &ret->view);

	ret->plan = NULL;
	if (r < 0)
		return r;
	r = desired_view_programmable(&ret->view, &pols, &n_pols);
	if (r == 0) {
		struct compile_opts o = { .default_mode = MSEG_MODE_ENFORCE };

		if (opts)
			o = *opts;
		o.eps_brief = ret->view.brief;   /* the passes over every endpoint read it */
		r = compile_plan((const struct mseg_policy *const *)pols, n_pols,
				 (const struct mseg_endpoint *const *)ret->view.inv.eps,
				 ret->view.inv.n, &o, &ret->plan);
		free(pols);
	}
	if (r < 0)
		desired_view_release(&ret->view);
	return r;
}

void desired_plan_release(struct desired_plan *p)
{
	p->plan = plan_free(p->plan);
	desired_view_release(&p->view);
}

struct mseg_policy *desired_policy_find(const struct desired *ds, enum desired_source src,
					const char *ns, const char *name)
{
	return policy_set_find(&ds->pols[src], ns, name);
}

struct mseg_endpoint *desired_endpoint_find(const struct desired *ds, enum desired_source src,
					    const char *id)
{
	return inventory_find(&ds->inv[src], id);
}

static int no_store(struct mseg_err *err)
{
	return err_setf(err, EROFS, "no state dir is open");
}

int desired_api_policy_put(struct desired *ds, struct mseg_policy *p, const char *doc,
			   size_t len, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	r = store_policy_put(ds->store, p->ns, p->name, doc, len, err);
	if (r < 0)
		return r;
	r = policy_set_put(&ds->pols[DESIRED_API], p);
	if (r < 0)
		return err_setf(err, -r, "policy '%s/%s' is stored but could not be taken into "
			       "memory (%s); a restart brings it", p->ns, p->name, strerror(-r));
	ds->generation++;
	return 0;
}

int desired_api_policy_delete(struct desired *ds, const char *ns, const char *name,
			      struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	if (!policy_set_find(&ds->pols[DESIRED_API], ns, name))
		return err_setf(err, ENOENT, "no policy '%s/%s'", ns, name);
	r = store_policy_delete(ds->store, ns, name, err);
	if (r < 0 && r != -ENOENT)
		return r;
	policy_set_remove(&ds->pols[DESIRED_API], ns, name);
	ds->generation++;
	return 0;
}

int desired_api_endpoint_put(struct desired *ds, struct mseg_endpoint *ep, const char *doc,
			     size_t len, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	r = store_endpoint_put(ds->store, ep->id, doc, len, err);
	if (r < 0)
		return r;
	ep->registered_ns = clock_real_ns();
	r = inventory_put(&ds->inv[DESIRED_API], ep);
	if (r < 0)
		return err_setf(err, -r, "endpoint '%s' is stored but could not be taken into "
			       "memory (%s); a restart brings it", ep->id, strerror(-r));
	desired_endpoint_set_gone(ds, ep->id, false);
	ds->generation++;
	return 0;
}

int desired_api_endpoint_delete(struct desired *ds, const char *id, struct mseg_err *err)
{
	int r;

	if (!ds->store)
		return no_store(err);
	if (!inventory_find(&ds->inv[DESIRED_API], id))
		return err_setf(err, ENOENT, "no endpoint '%s'", id);
	r = store_endpoint_delete(ds->store, id, err);
	if (r < 0 && r != -ENOENT)
		return r;
	inventory_remove(&ds->inv[DESIRED_API], id);
	ds->generation++;
	return 0;
}

int desired_api_policy_doc(const struct desired *ds, const char *ns, const char *name,
			   char **ret_doc, size_t *ret_len)
{
	if (!ds->store)
		return -ENOENT;
	return store_policy_read(ds->store, ns, name, ret_doc, ret_len);
}

int desired_api_endpoint_doc(const struct desired *ds, const char *id, char **ret_doc,
			     size_t *ret_len)
{
	if (!ds->store)
		return -ENOENT;
	return store_endpoint_read(ds->store, id, ret_doc, ret_len);
}

size_t desired_store_quarantined_count(const struct desired *ds)
{
	return ds->store ? store_quarantined_count(ds->store) : 0;
}

const char *desired_store_quarantined(const struct desired *ds, size_t i)
{
	return ds->store ? store_quarantined(ds->store, i) : NULL;
}

int desired_api_namespace_doc(const struct desired *ds, const char *name, char **ret_doc,
			      size_t *ret_len)
{
	if (!ds->store)
		return -ENOENT;
	return store_namespace_read(ds->store, name, ret_doc, ret_len);
}

struct tomb_ctx {
	struct desired *ds;
	char **done;            /* ids removed */
	size_t n_done;
};

static int tomb_one(void *data, const char *id, uint64_t mtime_ns)
{
	struct tomb_ctx *t = data;
	const struct mseg_endpoint *ep = inventory_find(&t->ds->inv[DESIRED_API], id);
	struct mseg_err err;
	char **v;

	/* registered again after the DEL (a new ADD of the same id): keep it */
	if (!ep || ep->registered_ns > mtime_ns)
		return 0;
	err_clear(&err);
	if (desired_api_endpoint_delete(t->ds, id, &err) < 0)
		return 1;   /* keep the tombstone for the next try */
	v = realloc(t->done, (t->n_done + 1) * sizeof(*v));
	if (v) {
		t->done = v;
		t->done[t->n_done] = strdup(id);
		if (t->done[t->n_done])
			t->n_done++;
	}
	return 0;
}

int desired_tombstones_apply(struct desired *ds, char ***ret_ids, size_t *ret_n,
			     struct mseg_err *err)
{
	struct tomb_ctx t = { .ds = ds };
	int r;

	*ret_ids = NULL;
	*ret_n = 0;
	if (!ds->store)
		return 0;
	r = store_tombstones_each(ds->store, tomb_one, &t, err);
	*ret_ids = t.done;
	*ret_n = t.n_done;
	return r;
}

const char *desired_state_dir(const struct desired *ds)
{
	return ds->store ? store_dir(ds->store) : NULL;
}
