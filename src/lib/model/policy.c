/* Policy documents (docs/policy.md): the YAML tree of an
 * AllowList -> struct mseg_policy, fully validated; the loader of every
 * policy document (AllowList, NetworkPolicy via netpol.c, List); the policy set. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "mseg/model/names.h"
#include "mseg/model/addr.h"
#include "mseg/model/policy.h"
#include "util/vec.h"
#include "model/policy_priv.h"
#include "model/ytree.h"

#define API_VERSION "mseg.io/v1"
#define KIND_ALLOWLIST "AllowList"
#define API_VERSION_K8S "networking.k8s.io/v1"
#define KIND_NETWORKPOLICY "NetworkPolicy"
#define GROUP_WORLD "world"
#define WHAT_SIZE POLICY_WHAT_SIZE

static const struct ytree_limits policy_limits = {
	.max_size = POLICY_MAX_FILE_SIZE,
	.max_depth = POLICY_MAX_DEPTH,
	.max_nodes = POLICY_MAX_NODES,
};

/* ---- one policy ---- */

static struct mseg_policy *policy_new(void)
{
	struct mseg_policy *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	arena_init(&p->arena);
	return p;
}

struct mseg_policy *policy_free(struct mseg_policy *p)
{
	if (!p)
		return NULL;
	arena_release(&p->arena);
	free(p);
	return NULL;
}

/* ---- document -> policy ---- */

struct group {
	const char *name;            /* in the policy's arena */
	const struct ynode *key;     /* where it is defined */
	struct mseg_peer peer;       /* ENDPOINTS for a selector, ADDRS for cidrs */
};

static struct mseg_cidr world_cidrs[2] = {
	{ .addr.family = AF_INET },
	{ .addr.family = AF_INET6 },
};
static const struct group world_group = {
	.name = GROUP_WORLD,
	.peer = { .kind = MSEG_PEER_ADDRS, .group = GROUP_WORLD, .cidrs = world_cidrs,
		  .n_cidrs = 2 },
};

int pctx_strdup(struct pctx *c, const char *s, const char **ret)
{
	return ycheck_strdup(&c->ck, &c->p->arena, s, ret);
}

void pctx_pos(struct pctx *c, const struct ynode *n, struct mseg_pos *ret)
{
	ret->file = c->p->pos.file;
	ret->line = n->line;
	ret->col = n->col;
}

/* ---- addresses ---- */

/* Clear the host bits of @a beyond @plen; true when some were set. */
static bool addr_mask(struct mseg_addr *a, unsigned plen)
{
	unsigned max = a->family == AF_INET ? 32 : 128, i;
	bool changed = false;

	for (i = plen; i < max; i++) {
		uint8_t bit = (uint8_t)(0x80u >> (i % 8));

		if (a->bytes[i / 8] & bit) {
			a->bytes[i / 8] &= (uint8_t)~bit;
			changed = true;
		}
	}
	return changed;
}

int cidr_parse(struct pctx *c, const struct ynode *n, const char *what, bool need_plen,
	       struct mseg_cidr *ret)
{
	char a[INET6_ADDRSTRLEN + 1], q[YQ_SIZE];
	const char *s, *slash;
	unsigned max, plen;
	size_t alen;
	int r;

	r = ycheck_string(&c->ck, n, what, true, &s);
	if (r < 0)
		return r;
	memset(ret, 0, sizeof(*ret));
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(a))
		goto out_invalid;
	memcpy(a, s, alen);
	a[alen] = '\0';
	if (inet_pton(AF_INET, a, ret->addr.bytes) == 1) {
		ret->addr.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, a, ret->addr.bytes) == 1) {
		ret->addr.family = AF_INET6;
		max = 128;
	} else {
		goto out_invalid;
	}
	plen = max;
	if (!slash && need_plen)
		return ycheck_fail(&c->ck, n, "%s: '%s' is not a valid CIDR: needs a prefix length "
				   "(like %s/%u)", what, ytree_quote(s, q, sizeof(q)), a, max);
	if (slash) {
		const char *d = slash + 1;
		size_t dlen = strlen(d), i;

		if (dlen == 0 || dlen > 3)
			goto out_invalid;
		for (i = 0, plen = 0; i < dlen; i++) {
			if (d[i] < '0' || d[i] > '9')
				goto out_invalid;
			plen = plen * 10 + (unsigned)(d[i] - '0');
		}
		if (plen > max)
			return ycheck_fail(&c->ck, n,
					   "%s: '%s': prefix length %u out of range for %s (0-%u)",
					   what, ytree_quote(s, q, sizeof(q)), plen,
					   max == 32 ? "IPv4" : "IPv6", max);
	}
	ret->plen = (uint8_t)plen;
	if (addr_mask(&ret->addr, plen)) {
		char fixed[INET6_ADDRSTRLEN];

		inet_ntop(ret->addr.family, ret->addr.bytes, fixed, sizeof(fixed));
		return ycheck_fail(&c->ck, n, "%s: %s has host bits set; did you mean %s/%u?", what,
				   ytree_quote(s, q, sizeof(q)), fixed, plen);
	}
	return 0;

out_invalid:
	return ycheck_fail(&c->ck, n, "%s: '%s' is not a valid CIDR (like 10.0.0.0/8 or fd00::/8)",
			   what, ytree_quote(s, q, sizeof(q)));
}

bool cidr_contains(const struct mseg_cidr *outer, const struct mseg_cidr *inner)
{
	return inner->plen >= outer->plen && addr_in_cidr(&inner->addr, outer);
}

static int cidr_list_parse(struct pctx *c, const struct ynode *seq, const char *what,
			   bool nonempty, struct mseg_cidr **ret, size_t *ret_n)
{
	char iwhat[WHAT_SIZE];
	struct mseg_cidr *v;
	size_t i;
	int r;

	r = ycheck_seq(&c->ck, seq, what, nonempty);
	if (r < 0)
		return r;
	v = arena_calloc(&c->p->arena, seq->n ? seq->n : 1, sizeof(*v));
	if (!v)
		return ycheck_oom(&c->ck);
	for (i = 0; i < seq->n; i++) {
		ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", what, i);
		r = cidr_parse(c, seq->vals[i], iwhat, false, &v[i]);
		if (r < 0)
			return r;
	}
	*ret = v;
	*ret_n = seq->n;
	return 0;
}

/* ---- selectors ---- */

static int sel_req_cmp(const void *pa, const void *pb)
{
	const struct mseg_sel_req *a = pa, *b = pb;

	return strcmp(a->key, b->key);
}

/* {key: value, ...}: every label must be equal; {} selects every endpoint. */
static int selector_parse(struct pctx *c, const struct ynode *map, const char *what,
			  struct mseg_selector *ret)
{
	char swhat[WHAT_SIZE], lwhat[WHAT_SIZE + YQ_SIZE];
	struct mseg_sel_req *reqs;
	size_t i;
	int r;

	ycheck_whatf(swhat, sizeof(swhat), "%s: selector", what);
	r = ycheck_kind(&c->ck, map, YNODE_MAP, swhat);
	if (r < 0)
		return r;
	reqs = arena_calloc(&c->p->arena, map->n ? map->n : 1, sizeof(*reqs));
	if (!reqs)
		return ycheck_oom(&c->ck);
	for (i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i], *v = map->vals[i];
		const char *val;

		ycheck_whatf(lwhat, sizeof(lwhat), "%s: label '%s'", swhat, k->str);
		r = ycheck_label(&c->ck, k, v, swhat, lwhat, &val);
		if (r < 0)
			return r;
		reqs[i].op = MSEG_SEL_IN;
		reqs[i].n_values = 1;
		reqs[i].values = arena_calloc(&c->p->arena, 1, sizeof(*reqs[i].values));
		if (!reqs[i].values)
			return ycheck_oom(&c->ck);
		r = pctx_strdup(c, k->str, &reqs[i].key);
		if (r < 0)
			return r;
		r = pctx_strdup(c, val, &reqs[i].values[0]);
		if (r < 0)
			return r;
	}
	ret->reqs = reqs;
	ret->n_reqs = map->n;
	selector_sort(ret);
	return 0;
}

void selector_sort(struct mseg_selector *sel)
{
	if (sel->n_reqs > 1)
		qsort(sel->reqs, sel->n_reqs, sizeof(*sel->reqs), sel_req_cmp);
}

/* ---- groups ---- */

static int group_parse(struct pctx *c, const struct ynode *key, const struct ynode *v,
		       struct group *g)
{
	static const char *const keys[] = { "selector", "cidrs", "except", NULL };
	const struct ynode *sel, *cidrs, *except;
	char what[WHAT_SIZE], sub[WHAT_SIZE + 16];
	struct mseg_peer *peer = &g->peer;
	size_t i, j;
	int r;

	ycheck_whatf(what, sizeof(what), "group '%s'", key->str);
	r = ycheck_map(&c->ck, v, what, keys);
	if (r < 0)
		return r;
	sel = ynode_map_get(v, "selector");
	cidrs = ynode_map_get(v, "cidrs");
	except = ynode_map_get(v, "except");
	if (sel && cidrs)
		return ycheck_fail(&c->ck, v,
				   "%s: has both 'selector' and 'cidrs' "
				   "(a group selects endpoints or addresses, not both)", what);
	if (sel && except)
		return ycheck_fail(&c->ck, v, "%s: 'except' goes with 'cidrs', not 'selector'", what);
	if (!sel && !cidrs)
		return ycheck_fail(&c->ck, v, "%s: %s", what,
				   except ? "'except' needs 'cidrs'" : "needs 'selector' or 'cidrs'");

	r = pctx_strdup(c, key->str, &g->name);
	if (r < 0)
		return r;
	g->key = key;
	peer->group = g->name;
	pctx_pos(c, key, &peer->pos);
	if (sel) {
		peer->kind = MSEG_PEER_ENDPOINTS;
		peer->ns_scope = MSEG_NS_NAMED;
		peer->ns = c->p->ns;
		return selector_parse(c, sel, what, &peer->ep_sel);
	}

	peer->kind = MSEG_PEER_ADDRS;
	ycheck_whatf(sub, sizeof(sub), "%s: cidrs", what);
	r = cidr_list_parse(c, cidrs, sub, true, &peer->cidrs, &peer->n_cidrs);
	if (r < 0)
		return r;
	if (!except)
		return 0;
	ycheck_whatf(sub, sizeof(sub), "%s: except", what);
	r = cidr_list_parse(c, except, sub, false, &peer->except, &peer->n_except);
	if (r < 0)
		return r;
	for (i = 0; i < peer->n_except; i++) {
		for (j = 0; j < peer->n_cidrs; j++)
			if (cidr_contains(&peer->cidrs[j], &peer->except[i]))
				break;
		if (j == peer->n_cidrs) {
			char q[YQ_SIZE];

			return ycheck_fail(&c->ck, except->vals[i],
					   "%s[%zu]: %s is not inside any of the group's cidrs", sub,
					   i, ytree_quote(except->vals[i]->str, q, sizeof(q)));
		}
	}
	return 0;
}

static int group_cmp(const void *pa, const void *pb)
{
	const struct group *a = pa, *b = pb;

	return strcmp(a->name, b->name);
}

static const struct group *group_find(const struct pctx *c, const char *name)
{
	struct group key = { .name = name };

	if (!strcmp(name, GROUP_WORLD))
		return &world_group;
	return bsearch(&key, c->groups, c->n_groups, sizeof(key), group_cmp);
}

int peer_world_init(struct pctx *c, const char *group, struct mseg_peer *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->kind = MSEG_PEER_ADDRS;
	ret->group = group;
	ret->cidrs = arena_calloc(&c->p->arena, 2, sizeof(*ret->cidrs));
	if (!ret->cidrs)
		return ycheck_oom(&c->ck);
	ret->cidrs[0].addr.family = AF_INET;
	ret->cidrs[1].addr.family = AF_INET6;
	ret->n_cidrs = 2;
	return 0;
}

static int groups_parse(struct pctx *c, const struct ynode *map)
{
	struct mseg_policy *p = c->p;
	size_t i, n_sel = 0;
	int r;

	r = ycheck_kind(&c->ck, map, YNODE_MAP, "spec.groups");
	if (r < 0)
		return r;
	if (map->n == 0)
		return ycheck_fail(&c->ck, map, "spec.groups: must define at least one group");
	c->groups = arena_calloc(&p->arena, map->n, sizeof(*c->groups));
	if (!c->groups)
		return ycheck_oom(&c->ck);
	for (i = 0; i < map->n; i++) {
		const struct ynode *k = map->keys[i];
		char q[YQ_SIZE];

		if (!strcmp(k->str, GROUP_WORLD))
			return ycheck_fail(&c->ck, k,
					   "group 'world' is reserved (every IPv4 and IPv6 "
					   "address); choose another name");
		if (!k->len || !name_is_label_value(k->str))
			return ycheck_fail(&c->ck, k, "spec.groups: '%s' is not a valid group name (%s)",
					   ytree_quote(k->str, q, sizeof(q)), NAME_LABEL_VALUE_HINT);
		r = group_parse(c, k, map->vals[i], &c->groups[i]);
		if (r < 0)
			return r;
		if (c->groups[i].peer.kind == MSEG_PEER_ENDPOINTS)
			n_sel++;
	}
	c->n_groups = map->n;

	/* every selector group covers its endpoints, in declaration order */
	p->subjects = arena_calloc(&p->arena, n_sel ? n_sel : 1, sizeof(*p->subjects));
	if (!p->subjects)
		return ycheck_oom(&c->ck);
	for (i = 0; i < c->n_groups; i++)
		if (c->groups[i].peer.kind == MSEG_PEER_ENDPOINTS)
			p->subjects[p->n_subjects++] = c->groups[i].peer;

	qsort(c->groups, c->n_groups, sizeof(*c->groups), group_cmp);
	return 0;
}

/* ---- ports ---- */

static const struct {
	const char *name;
	uint8_t proto;
	bool has_ports;
} port_protos[] = {
	{ "tcp", IPPROTO_TCP, true },
	{ "udp", IPPROTO_UDP, true },
	{ "sctp", IPPROTO_SCTP, true },
	{ "icmp", IPPROTO_ICMP, false },
	{ "icmpv6", IPPROTO_ICMPV6, false },
	{ "any", 0, false },
};

static bool all_digits(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A port number of @len digits at @s, in 1..65535. */
static int port_number(const char *s, size_t len, uint16_t *ret, struct mseg_err *err)
{
	unsigned long v = 0;
	size_t i;

	for (i = 0; i < len && v <= 65535; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v < 1 || v > 65535)
		return err_setf(err, EINVAL, "port %.*s out of range (1-65535)",
				(int)(len > 20 ? 20 : len), s);
	*ret = (uint16_t)v;
	return 0;
}

/* tcp/80, tcp/8000-8080, udp/53, sctp/9, tcp, udp, sctp, icmp, icmpv6, any */
int policy_port_parse(const char *s, struct mseg_port *ret, struct mseg_err *err)
{
	const char *slash, *num, *dash;
	char q[YQ_SIZE];
	size_t plen, i;
	int r;

	slash = strchr(s, '/');
	plen = slash ? (size_t)(slash - s) : strlen(s);
	for (i = 0; i < sizeof(port_protos) / sizeof(port_protos[0]); i++)
		if (strlen(port_protos[i].name) == plen && !strncmp(s, port_protos[i].name, plen))
			break;
	if (i == sizeof(port_protos) / sizeof(port_protos[0])) {
		char proto[16];

		ytree_quote(s, q, sizeof(q));
		if (all_digits(s, strlen(s)))
			return err_setf(err, EINVAL, "'%s' needs a protocol, like tcp/%s", q, q);
		/* TCP/80: say how to write it */
		for (i = 0; plen < sizeof(proto) && i < plen; i++)
			proto[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
		proto[plen < sizeof(proto) ? plen : 0] = '\0';
		for (i = 0; i < sizeof(port_protos) / sizeof(port_protos[0]); i++)
			if (!strcmp(proto, port_protos[i].name))
				return err_setf(err, EINVAL,
						"unknown protocol '%.*s' (protocols are lowercase: '%s')",
						(int)plen, s, port_protos[i].name);
		return err_setf(err, EINVAL,
				"unknown protocol '%.*s' (tcp, udp, sctp, icmp, icmpv6 or any)",
				(int)(plen < 40 ? plen : 40), q);
	}
	memset(ret, 0, sizeof(*ret));
	ret->proto = port_protos[i].proto;
	if (!slash) {
		if (port_protos[i].has_ports)
			ret->hi = 65535;
		return 0;
	}
	if (!port_protos[i].has_ports)
		return err_setf(err, EINVAL, "%s has no ports", port_protos[i].name);

	num = slash + 1;
	dash = strchr(num, '-');
	if (!dash) {
		if (!all_digits(num, strlen(num)))
			goto out_invalid;
		r = port_number(num, strlen(num), &ret->lo, err);
		if (r < 0)
			return r;
		ret->hi = ret->lo;
		return 0;
	}
	if (!all_digits(num, (size_t)(dash - num)) || !all_digits(dash + 1, strlen(dash + 1)))
		goto out_invalid;
	r = port_number(num, (size_t)(dash - num), &ret->lo, err);
	if (r < 0)
		return r;
	r = port_number(dash + 1, strlen(dash + 1), &ret->hi, err);
	if (r < 0)
		return r;
	if (ret->lo > ret->hi)
		return err_setf(err, EINVAL, "inverted port range %u-%u (did you mean %u-%u?)",
				ret->lo, ret->hi, ret->hi, ret->lo);
	return 0;

out_invalid:
	return err_setf(err, EINVAL, "'%s' is not a valid port (like tcp/80 or tcp/8000-8080)",
			ytree_quote(s, q, sizeof(q)));
}

/* A port string of the document: policy_port_parse() at the node's place. */
static int port_parse(struct pctx *c, const struct ynode *n, const char *what,
		      struct mseg_port *ret)
{
	struct mseg_err perr;
	const char *s;
	int r;

	r = ycheck_string(&c->ck, n, what, true, &s);
	if (r < 0)
		return r;
	err_clear(&perr);
	if (policy_port_parse(s, ret, &perr) < 0)
		return ycheck_fail(&c->ck, n, "%s: %s", what, perr.msg);
	pctx_pos(c, n, &ret->pos);
	return 0;
}

static int ports_parse(struct pctx *c, const struct ynode *seq, const char *what,
		       struct mseg_port **ret, size_t *ret_n)
{
	char iwhat[WHAT_SIZE];
	struct mseg_port *v;
	size_t i;
	int r;

	r = ycheck_kind(&c->ck, seq, YNODE_SEQ, what);
	if (r < 0)
		return r;
	if (seq->n == 0)
		return ycheck_fail(&c->ck, seq,
				   "%s: must not be empty (leave 'ports' out, or write [any], "
				   "to allow every protocol)", what);
	v = arena_calloc(&c->p->arena, seq->n, sizeof(*v));
	if (!v)
		return ycheck_oom(&c->ck);
	for (i = 0; i < seq->n; i++) {
		ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", what, i);
		r = port_parse(c, seq->vals[i], iwhat, &v[i]);
		if (r < 0)
			return r;
	}
	*ret = v;
	*ret_n = seq->n;
	return 0;
}

/* ---- allow ---- */

static int allow_side(struct pctx *c, const struct ynode *item, const char *what,
		      const char *key, const struct ynode **ret_node, const struct group **ret)
{
	char kwhat[WHAT_SIZE], q[YQ_SIZE];
	const struct ynode *v;
	const char *name;
	int r;

	r = ycheck_require(&c->ck, item, key, what, &v);
	if (r < 0)
		return r;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.%s", what, key);
	r = ycheck_string(&c->ck, v, kwhat, true, &name);
	if (r < 0)
		return r;
	*ret = group_find(c, name);
	if (!*ret)
		return ycheck_fail(&c->ck, v, "%s: unknown group '%s'", kwhat,
				   ytree_quote(name, q, sizeof(q)));
	*ret_node = v;
	return 0;
}

static void rule_fill(struct pctx *c, struct mseg_rule *rule, enum mseg_dir dir,
		      const struct group *local, const struct ynode *local_node,
		      const struct group *peer, const struct ynode *peer_node,
		      struct mseg_peer *peer_slot, size_t index, const struct ynode *item)
{
	rule->dir = dir;
	rule->local = local->peer;
	pctx_pos(c, local_node, &rule->local.pos);
	*peer_slot = peer->peer;
	pctx_pos(c, peer_node, &peer_slot->pos);
	rule->peers = peer_slot;
	rule->n_peers = 1;
	rule->index = (unsigned)index;
	pctx_pos(c, item, &rule->pos);
}

static int allow_parse(struct pctx *c, const struct ynode *seq)
{
	static const char *const keys[] = { "from", "to", "ports", NULL };
	struct mseg_policy *p = c->p;
	size_t i;
	int r;

	r = ycheck_kind(&c->ck, seq, YNODE_SEQ, "spec.allow");
	if (r < 0)
		return r;
	if (seq->n == 0)
		return 0;
	p->rules = arena_calloc(&p->arena, 2 * seq->n, sizeof(*p->rules));
	if (!p->rules)
		return ycheck_oom(&c->ck);
	for (i = 0; i < seq->n; i++) {
		const struct ynode *item = seq->vals[i], *from_node, *to_node, *ports_node;
		const struct group *from, *to;
		struct mseg_port *ports = NULL;
		struct mseg_peer *peers;
		size_t n_ports = 0;
		char what[WHAT_SIZE], sub[WHAT_SIZE + 8];

		ycheck_whatf(what, sizeof(what), "allow[%zu]", i);
		r = ycheck_map(&c->ck, item, what, keys);
		if (r < 0)
			return r;
		r = allow_side(c, item, what, "from", &from_node, &from);
		if (r < 0)
			return r;
		r = allow_side(c, item, what, "to", &to_node, &to);
		if (r < 0)
			return r;
		if (from->peer.kind == MSEG_PEER_ADDRS && to->peer.kind == MSEG_PEER_ADDRS)
			return ycheck_fail(&c->ck, item,
					   "%s: 'from' (%s) and 'to' (%s) are both address groups; "
					   "one side must be a selector group",
					   what, from->name, to->name);
		ports_node = ynode_map_get(item, "ports");
		if (ports_node) {
			ycheck_whatf(sub, sizeof(sub), "%s.ports", what);
			r = ports_parse(c, ports_node, sub, &ports, &n_ports);
			if (r < 0)
				return r;
		}
		peers = arena_calloc(&p->arena, 2, sizeof(*peers));
		if (!peers)
			return ycheck_oom(&c->ck);
		/* B accepts from A */
		if (to->peer.kind == MSEG_PEER_ENDPOINTS) {
			struct mseg_rule *rule = &p->rules[p->n_rules++];

			rule_fill(c, rule, MSEG_DIR_INGRESS, to, to_node, from, from_node, &peers[0],
				  i, item);
			rule->ports = ports;
			rule->n_ports = n_ports;
		}
		/* A sends to B */
		if (from->peer.kind == MSEG_PEER_ENDPOINTS) {
			struct mseg_rule *rule = &p->rules[p->n_rules++];

			rule_fill(c, rule, MSEG_DIR_EGRESS, from, from_node, to, to_node, &peers[1],
				  i, item);
			rule->ports = ports;
			rule->n_ports = n_ports;
		}
	}
	return 0;
}

/* ---- metadata, spec, document ---- */

/* Keys of metadata that the API server sets or that carry no meaning for
 * enforcement: accepted and ignored (kubectl get -o yaml prints them). */
static const char *const metadata_keys[] = {
	"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
	"creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields",
	"selfLink", "finalizers", "ownerReferences", "generateName", NULL
};

static int metadata_parse(struct pctx *c, const struct ynode *root)
{
	bool k8s = c->p->kind == MSEG_KIND_NETWORKPOLICY;
	const struct ynode *md, *v;
	const char *s;
	char q[YQ_SIZE];
	int r;

	r = ycheck_require(&c->ck, root, "metadata", "", &md);
	if (r < 0)
		return r;
	r = ycheck_map(&c->ck, md, "metadata", metadata_keys);
	if (r < 0)
		return r;
	r = ycheck_require(&c->ck, md, "name", "metadata", &v);
	if (r < 0)
		return r;
	r = ycheck_string(&c->ck, v, "metadata.name", true, &s);
	if (r < 0)
		return r;
	if (k8s && !name_is_dns_subdomain(s))
		return ycheck_fail(&c->ck, v, "metadata.name: '%s' is not a valid name (%s)",
				   ytree_quote(s, q, sizeof(q)), NAME_DNS_SUBDOMAIN_HINT);
	if (!k8s && !name_is_dns_label(s))
		return ycheck_fail(&c->ck, v, "metadata.name: '%s' is not a valid name (%s)",
				   ytree_quote(s, q, sizeof(q)), NAME_DNS_LABEL_HINT);
	r = pctx_strdup(c, s, &c->p->name);
	if (r < 0)
		return r;
	c->name_node = v;

	v = ynode_map_get(md, "namespace");
	if (!v) {
		c->p->ns = "default";
		c->p->ns_defaulted = true;
		return 0;
	}
	r = ycheck_string(&c->ck, v, "metadata.namespace", true, &s);
	if (r < 0)
		return r;
	if (!name_is_dns_label(s))
		return ycheck_fail(&c->ck, v, "metadata.namespace: '%s' is not a valid namespace (%s)",
				   ytree_quote(s, q, sizeof(q)), NAME_DNS_LABEL_HINT);
	return pctx_strdup(c, s, &c->p->ns);
}

int policy_duration_parse(const char *s, uint32_t *ret_s)
{
	unsigned long long n = 0, mul;
	const char *p = s;

	if (!s || *p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (unsigned)(*p++ - '0');
		if (n > POLICY_LEARN_FOR_MAX_S)
			return -ERANGE;
	}
	switch (*p++) {
	case 's':
		mul = 1;
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	n *= mul;
	if (n < POLICY_LEARN_FOR_MIN_S || n > POLICY_LEARN_FOR_MAX_S)
		return -ERANGE;
	*ret_s = (uint32_t)n;
	return 0;
}

static int spec_parse(struct pctx *c, const struct ynode *root)
{
	static const char *const keys[] = { "mode", "learnFor", "isolation", "revoke", "groups",
					    "allow", NULL };
	static const char *const mode_names[] = { "enforce", "audit", "learn", NULL };
	static const enum mseg_mode modes[] = { MSEG_MODE_ENFORCE, MSEG_MODE_AUDIT,
						MSEG_MODE_ENFORCE };
	static const char *const isolation_names[] = { "both", "ingress", "egress", NULL };
	static const unsigned isolations[] = { MSEG_ISO_BOTH, MSEG_ISO_INGRESS, MSEG_ISO_EGRESS };
	static const char *const revoke_names[] = { "established", "new-only", NULL };
	static const enum mseg_revoke revokes[] = { MSEG_REVOKE_ESTABLISHED, MSEG_REVOKE_NEW_ONLY };
	const struct ynode *spec, *v;
	unsigned i;
	int r;

	r = ycheck_require(&c->ck, root, "spec", "", &spec);
	if (r < 0)
		return r;
	r = ycheck_map(&c->ck, spec, "spec", keys);
	if (r < 0)
		return r;

	c->p->mode = MSEG_MODE_ENFORCE;
	v = ynode_map_get(spec, "mode");
	if (v) {
		r = ycheck_enum(&c->ck, v, "spec.mode", "mode", mode_names, &i);
		if (r < 0)
			return r;
		c->p->mode = modes[i];
		c->p->learn = i == 2;
	}
	c->p->learn_for_s = POLICY_LEARN_FOR_DEFAULT_S;
	v = ynode_map_get(spec, "learnFor");
	if (v) {
		const char *d;

		r = ycheck_string(&c->ck, v, "spec.learnFor", true, &d);
		if (r < 0)
			return r;
		if (!c->p->learn)
			return ycheck_fail(&c->ck, v, "spec.learnFor: only with mode: learn");
		r = policy_duration_parse(d, &c->p->learn_for_s);
		if (r == -ERANGE)
			return ycheck_fail(&c->ck, v, "spec.learnFor: '%s' is out of range (1m to 90d)",
					   d);
		if (r < 0)
			return ycheck_fail(&c->ck, v, "spec.learnFor: '%s' is not a duration "
					   "(a number and s, m, h or d: 24h)", d);
	}

	c->p->isolation = MSEG_ISO_BOTH;
	v = ynode_map_get(spec, "isolation");
	if (v) {
		r = ycheck_enum(&c->ck, v, "spec.isolation", "isolation", isolation_names, &i);
		if (r < 0)
			return r;
		c->p->isolation = isolations[i];
	}

	c->p->revoke = MSEG_REVOKE_INHERIT;
	v = ynode_map_get(spec, "revoke");
	if (v) {
		r = ycheck_enum(&c->ck, v, "spec.revoke", "revoke", revoke_names, &i);
		if (r < 0)
			return r;
		c->p->revoke = revokes[i];
	}

	r = ycheck_require(&c->ck, spec, "groups", "spec", &v);
	if (r < 0)
		return r;
	r = groups_parse(c, v);
	if (r < 0)
		return r;

	v = ynode_map_get(spec, "allow");
	if (v)
		return allow_parse(c, v);
	return 0;
}

/* kind and apiVersion: mseg.io/v1 AllowList or networking.k8s.io/v1
 * NetworkPolicy; sets c->p->kind. A top-level status (the API server's) is
 * ignored. */
static int header_parse(struct pctx *c, const struct ynode *root, bool np_item)
{
	static const char *const keys[] = { "apiVersion", "kind", "metadata", "spec", "status",
					    NULL };
	const struct ynode *kind_node, *api_node;
	const char *kind, *api, *want_api;
	char q[YQ_SIZE];
	int r;

	/* the items of a NetworkPolicyList from the API server carry neither */
	if (np_item && !ynode_map_get(root, "kind") && !ynode_map_get(root, "apiVersion")) {
		c->p->kind = MSEG_KIND_NETWORKPOLICY;
		return ycheck_keys(&c->ck, root, "", keys);
	}
	r = ycheck_require(&c->ck, root, "kind", "", &kind_node);
	if (r < 0)
		return r;
	r = ycheck_string(&c->ck, kind_node, "kind", true, &kind);
	if (r < 0)
		return r;
	r = ycheck_require(&c->ck, root, "apiVersion", "", &api_node);
	if (r < 0)
		return r;
	r = ycheck_string(&c->ck, api_node, "apiVersion", true, &api);
	if (r < 0)
		return r;
	if (np_item && strcmp(kind, KIND_NETWORKPOLICY))
		return ycheck_fail(&c->ck, kind_node,
				   "kind '%s' in a NetworkPolicyList (only NetworkPolicy)",
				   ytree_quote(kind, q, sizeof(q)));
	if (!strcmp(kind, KIND_ALLOWLIST)) {
		c->p->kind = MSEG_KIND_ALLOWLIST;
		want_api = API_VERSION;
	} else if (!strcmp(kind, KIND_NETWORKPOLICY)) {
		c->p->kind = MSEG_KIND_NETWORKPOLICY;
		want_api = API_VERSION_K8S;
	} else {
		return ycheck_fail(&c->ck, kind_node, "unknown kind '%s' (supported: %s, %s)",
				   ytree_quote(kind, q, sizeof(q)), KIND_ALLOWLIST,
				   KIND_NETWORKPOLICY);
	}
	if (strcmp(api, want_api))
		return ycheck_fail(&c->ck, api_node,
				   "unsupported apiVersion '%s' for kind %s (supported: %s)",
				   ytree_quote(api, q, sizeof(q)), kind, want_api);
	return ycheck_keys(&c->ck, root, "", keys);
}

/* One policy document (or one item of a List) at @root. */
static int policy_from_node(const char *file, const struct ydoc *doc, const struct ynode *root,
			    const char *what, bool np_item, struct mseg_err *err,
			    struct mseg_policy **ret, const struct ynode **ret_name_node)
{
	struct pctx c = { .ck = { .file = file, .err = err } };
	char *f;
	int r;

	r = ycheck_kind(&c.ck, root, YNODE_MAP, what);
	if (r < 0)
		return r;
	c.p = policy_new();
	if (!c.p)
		return err_setf(err, ENOMEM, "out of memory");
	f = arena_strdup(&c.p->arena, file);
	if (!f) {
		r = ycheck_oom(&c.ck);
		goto out_free;
	}
	c.p->pos.file = f;
	c.p->pos.line = root == doc->root ? doc->line : root->line;
	c.p->pos.col = root == doc->root ? doc->col : root->col;
	if (root == doc->root) {
		c.p->doc_start = doc->start;
		c.p->doc_len = doc->end - doc->start;
		c.p->doc_col = 1;
	} else {
		/* an item of a List: its own bytes, to be sent as a document */
		c.p->doc_start = root->start;
		c.p->doc_len = root->end - root->start;
		c.p->doc_col = root->col;
		c.p->doc_bare = np_item && !ynode_map_get(root, "kind") &&
				!ynode_map_get(root, "apiVersion");
	}

	r = header_parse(&c, root, np_item);
	if (r < 0)
		goto out_free;
	r = metadata_parse(&c, root);
	if (r < 0)
		goto out_free;
	if (c.p->kind == MSEG_KIND_NETWORKPOLICY)
		r = netpol_spec_parse(&c, root);
	else
		r = spec_parse(&c, root);
	if (r < 0)
		goto out_free;
	*ret = c.p;
	*ret_name_node = c.name_node;
	return 0;

out_free:
	policy_free(c.p);
	return r;
}

/* ---- the set ---- */

void policy_set_init(struct mseg_policy_set *set)
{
	set->items = NULL;
	set->n = 0;
	set->cap = 0;
}

void policy_set_release(struct mseg_policy_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		policy_free(set->items[i]);
	free(set->items);
	policy_set_init(set);
}

static int policy_set_reserve(struct mseg_policy_set *set, size_t extra)
{
	if (extra > SIZE_MAX / 2 - set->n)
		return -ENOMEM;
	return VEC_RESERVE(set->items, set->cap, set->n + extra);
}

static ssize_t policy_set_index(const struct mseg_policy_set *set, const char *ns,
				const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (!strcmp(set->items[i]->name, name) && !strcmp(set->items[i]->ns, ns))
			return (ssize_t)i;
	return -1;
}

struct mseg_policy *policy_set_find(const struct mseg_policy_set *set, const char *ns,
				    const char *name)
{
	ssize_t i = policy_set_index(set, ns, name);

	return i < 0 ? NULL : set->items[i];
}

int policy_set_remove(struct mseg_policy_set *set, const char *ns, const char *name)
{
	ssize_t i = policy_set_index(set, ns, name);

	if (i < 0)
		return -ENOENT;
	policy_free(set->items[i]);
	memmove(&set->items[i], &set->items[i + 1],
		(set->n - (size_t)i - 1) * sizeof(*set->items));
	set->n--;
	return 0;
}

int policy_set_put(struct mseg_policy_set *set, struct mseg_policy *p)
{
	ssize_t i;
	int r;

	if (!p || !p->name || !p->ns)
		return -EINVAL;
	i = policy_set_index(set, p->ns, p->name);
	if (i >= 0) {
		if (set->items[i] != p)
			policy_free(set->items[i]);
		set->items[i] = p;
		return 0;
	}
	r = policy_set_reserve(set, 1);
	if (r < 0)
		return r;
	set->items[set->n++] = p;
	return 0;
}

int policy_set_take(struct mseg_policy_set *dst, struct mseg_policy_set *src)
{
	int r;

	if (src->n == 0)
		return 0;
	r = policy_set_reserve(dst, src->n);
	if (r < 0)
		return r;
	memcpy(dst->items + dst->n, src->items, src->n * sizeof(*src->items));
	dst->n += src->n;
	src->n = 0;
	return 0;
}

/* ---- loading ---- */

static int policy_check_dup(const struct ycheck *ck, const struct mseg_policy_set *a,
			    const struct mseg_policy_set *b, const struct mseg_policy *p,
			    const struct ynode *name_node)
{
	const struct mseg_policy *other = policy_set_find(a, p->ns, p->name);

	if (!other)
		other = policy_set_find(b, p->ns, p->name);
	if (!other)
		return 0;
	if (!other->pos.file || !other->pos.line)
		return ycheck_fail(ck, name_node, "policy '%s/%s' is already defined", p->ns,
				   p->name);
	return ycheck_fail(ck, name_node, "policy '%s/%s' is already defined at %s:%u:%u", p->ns,
			   p->name, other->pos.file, other->pos.line, other->pos.col);
}

/* Check and append one parsed policy to @tmp; frees it on error. */
static int policy_collect_one(const struct ycheck *ck, struct mseg_policy_set *tmp,
			      const struct mseg_policy_set *dst, struct mseg_policy *p,
			      const struct ynode *name_node)
{
	int r = policy_check_dup(ck, tmp, dst, p, name_node);

	if (r == 0 && policy_set_reserve(tmp, 1) < 0)
		r = err_setf(ck->err, ENOMEM, "out of memory");
	if (r < 0) {
		policy_free(p);
		return r;
	}
	tmp->items[tmp->n++] = p;
	return 0;
}

/* kind: List (apiVersion v1, as kubectl get -o yaml prints) or
 * NetworkPolicyList (networking.k8s.io/v1): true, and the items. */
static int policy_list_items(const struct ycheck *ck, const struct ynode *root,
			     const struct ynode **ret_items, bool *ret_np)
{
	static const char *const keys[] = { "apiVersion", "kind", "metadata", "items", NULL };
	const struct ynode *kind = ynode_map_get(root, "kind"), *api, *items;
	const char *want;
	char q[YQ_SIZE];
	int r;

	*ret_items = NULL;
	if (root->kind != YNODE_MAP || !kind || kind->kind != YNODE_SCALAR)
		return 0;
	if (!strcmp(kind->str, "List"))
		want = "v1";
	else if (!strcmp(kind->str, KIND_NETWORKPOLICY "List"))
		want = API_VERSION_K8S;
	else
		return 0;
	*ret_np = strcmp(want, "v1") != 0;
	r = ycheck_require(ck, root, "apiVersion", "", &api);
	if (r < 0)
		return r;
	if (api->kind != YNODE_SCALAR || strcmp(api->str, want))
		return ycheck_fail(ck, api, "unsupported apiVersion '%s' for kind %s (supported: %s)",
				   api->kind == YNODE_SCALAR ? ytree_quote(api->str, q, sizeof(q)) :
							       ynode_kind_name(api),
				   kind->str, want);
	r = ycheck_keys(ck, root, "", keys);
	if (r < 0)
		return r;
	r = ycheck_require(ck, root, "items", "", &items);
	if (r < 0)
		return r;
	if (ynode_is_null(items)) {
		*ret_items = items;
		return 0;
	}
	r = ycheck_kind(ck, items, YNODE_SEQ, "items");
	if (r < 0)
		return r;
	*ret_items = items;
	return 0;
}

/* Parse @buf and append its policies to @tmp; names must be new in @tmp and @dst.
 * A List's items carry their own span (doc_start, doc_len, doc_col). */
static int policy_buffer_collect(struct mseg_policy_set *tmp, const struct mseg_policy_set *dst,
				 const char *name, const char *buf, size_t len,
				 struct mseg_err *err)
{
	struct ycheck ck = { .file = name, .err = err };
	struct ytree t;
	size_t i;
	int r;

	r = ytree_load(&t, name, buf, len, &policy_limits, err);
	if (r < 0)
		goto out_release;
	for (i = 0; i < t.n_docs; i++) {
		const struct ynode *name_node = NULL, *items = NULL;
		struct mseg_policy *p = NULL;
		bool np = false;

		r = policy_list_items(&ck, t.docs[i].root, &items, &np);
		if (r < 0)
			goto out_release;
		if (!items) {
			r = policy_from_node(name, &t.docs[i], t.docs[i].root, "document", false,
					     err, &p, &name_node);
			if (r == 0)
				r = policy_collect_one(&ck, tmp, dst, p, name_node);
			if (r < 0)
				goto out_release;
			continue;
		}
		for (size_t k = 0; items->kind == YNODE_SEQ && k < items->n; k++) {
			char what[32];

			ycheck_whatf(what, sizeof(what), "items[%zu]", k);
			r = policy_from_node(name, &t.docs[i], items->vals[k], what, np, err, &p,
					     &name_node);
			if (r == 0)
				r = policy_collect_one(&ck, tmp, dst, p, name_node);
			if (r < 0)
				goto out_release;
		}
	}
	r = 0;

out_release:
	ytree_release(&t);
	return r;
}

static int policy_file_collect(struct mseg_policy_set *tmp, const struct mseg_policy_set *dst,
			       const char *path, struct mseg_err *err)
{
	size_t len;
	char *buf;
	int r;

	r = ytree_file_read(path, POLICY_MAX_FILE_SIZE, &buf, &len, err);
	if (r < 0)
		return r;
	r = policy_buffer_collect(tmp, dst, path, buf, len, err);
	free(buf);
	return r;
}

/* Everything collected in @tmp moves to @set, or nothing does. */
static int policy_set_commit(struct mseg_policy_set *set, struct mseg_policy_set *tmp,
			     struct mseg_err *err)
{
	if (policy_set_take(set, tmp) < 0)
		return err_setf(err, ENOMEM, "out of memory");
	return 0;
}

int policy_parse_buffer(struct mseg_policy_set *set, const char *name, const char *buf,
			size_t len, struct mseg_err *err)
{
	struct mseg_policy_set tmp;
	int r;

	policy_set_init(&tmp);
	r = policy_buffer_collect(&tmp, set, name, buf, len, err);
	if (r == 0)
		r = policy_set_commit(set, &tmp, err);
	policy_set_release(&tmp);
	return r;
}

int policy_load_file(struct mseg_policy_set *set, const char *path, struct mseg_err *err)
{
	struct mseg_policy_set tmp;
	int r;

	policy_set_init(&tmp);
	r = policy_file_collect(&tmp, set, path, err);
	if (r == 0)
		r = policy_set_commit(set, &tmp, err);
	policy_set_release(&tmp);
	return r;
}

static bool policy_file_name(const char *name)
{
	static const char *const exts[] = { ".yaml", ".yml", ".json" };
	size_t len = strlen(name), i;

	if (name[0] == '.')
		return false;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t el = strlen(exts[i]);

		if (len > el && !strcmp(name + len - el, exts[i]))
			return true;
	}
	return false;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The policy file names of @dir, sorted. */
static int policy_dir_list(const char *dir, char ***ret, size_t *ret_n, struct mseg_err *err)
{
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	struct dirent *de;
	DIR *d;
	int r;

	d = opendir(dir);
	if (!d)
		return err_set(err, dir, 0, 0, errno, "cannot open directory: %s", strerror(errno));
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno) {
				r = err_set(err, dir, 0, 0, errno, "cannot read directory: %s",
					    strerror(errno));
				goto out_free;
			}
			break;
		}
		if (!policy_file_name(de->d_name))
			continue;
		if (n == cap) {
			char **v;

			cap = cap ? 2 * cap : 16;
			v = reallocarray(names, cap, sizeof(*v));
			if (!v) {
				r = err_setf(err, ENOMEM, "out of memory");
				goto out_free;
			}
			names = v;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = err_setf(err, ENOMEM, "out of memory");
			goto out_free;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*ret = names;
	*ret_n = n;
	return 0;

out_free:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
}

int policy_load_dir(struct mseg_policy_set *set, const char *dir, struct mseg_err *err)
{
	struct mseg_policy_set tmp;
	size_t n = 0, i, dlen = strlen(dir);
	const char *slash = dlen && dir[dlen - 1] == '/' ? "" : "/";
	char **names = NULL;
	int r;

	r = policy_dir_list(dir, &names, &n, err);
	if (r < 0)
		return r;
	policy_set_init(&tmp);
	for (i = 0; i < n && r == 0; i++) {
		struct stat st;
		char *path;

		if (asprintf(&path, "%s%s%s", dir, slash, names[i]) < 0) {
			r = err_setf(err, ENOMEM, "out of memory");
			break;
		}
		/* follows symlinks (a ConfigMap's name.yaml -> ..data/name.yaml);
		 * subdirectories are not loaded */
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			free(path);
			continue;
		}
		r = policy_file_collect(&tmp, set, path, err);
		free(path);
	}
	if (r == 0)
		r = policy_set_commit(set, &tmp, err);
	policy_set_release(&tmp);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int policy_load_path(struct mseg_policy_set *set, const char *path, struct mseg_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return err_set(err, path, 0, 0, errno, "cannot open: %s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return policy_load_dir(set, path, err);
	return policy_load_file(set, path, err);
}
