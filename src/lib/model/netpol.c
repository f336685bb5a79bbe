/* Kubernetes NetworkPolicy v1 (networking.k8s.io/v1) -> struct mseg_policy
 * (docs/policy.md, "NetworkPolicy").
 *
 * Validation follows the API server's (pkg/apis/networking/validation and
 * the LabelSelector rules of apimachinery); the model carries upstream
 * semantics:
 *  - the policy covers the pods of its namespace that spec.podSelector
 *    selects ({} = every pod of the namespace), in the directions of
 *    spec.policyTypes; without policyTypes: Ingress always, Egress when
 *    spec.egress has a rule;
 *  - an absent or empty rule list isolates and admits nothing; a rule
 *    without from/to admits every address (and, for a named port, every pod
 *    that has it); a rule without ports admits every port and protocol;
 *  - a peer is podSelector (pods of the policy's namespace),
 *    namespaceSelector (every pod of the selected namespaces), both (pods
 *    matching both, AND), or ipBlock (cidr minus except, applied literally,
 *    also to pod addresses);
 *  - ports are numbers (with endPort: a range), or names resolved against
 *    the destination pod's named ports; protocol TCP (default), UDP, SCTP;
 *  - rules of a direction that policyTypes does not list are ignored;
 *  - NetworkPolicy has no audit mode: always enforce. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "model/policy_priv.h"

#define WHAT_SIZE (POLICY_WHAT_SIZE + 64)

#define PORT_NAME_HINT \
	"a port number, or a name of at most 15 lowercase letters, digits and '-', with a " \
	"letter, no '-' at either end or twice in a row"

/* A plain scalar that reads as an integer (what JSON and YAML give as a number). */
static bool is_int_scalar(const struct ynode *n)
{
	const char *s = n->str;
	size_t i = 0;

	if (n->kind != YNODE_SCALAR || !n->plain)
		return false;
	if (s[0] == '-' || s[0] == '+')
		i++;
	if (!s[i])
		return false;
	for (; s[i]; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* An optional value: absent or null. */
static const struct ynode *map_get_opt(const struct ynode *map, const char *key)
{
	const struct ynode *v = ynode_map_get(map, key);

	return v && ynode_is_null(v) ? NULL : v;
}

/* ---- label selectors (metav1.LabelSelector) ---- */

static int sel_values_parse(struct pctx *c, const struct ynode *seq, const char *what,
			    struct mseg_sel_req *req)
{
	char iwhat[WHAT_SIZE + 16], q[YQ_SIZE];
	size_t i;
	int r;

	r = ycheck_kind(&c->ck, seq, YNODE_SEQ, what);
	if (r < 0)
		return r;
	req->values = arena_calloc(&c->p->arena, seq->n ? seq->n : 1, sizeof(*req->values));
	if (!req->values)
		return ycheck_oom(&c->ck);
	for (i = 0; i < seq->n; i++) {
		const char *s;

		ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", what, i);
		r = ycheck_string(&c->ck, seq->vals[i], iwhat, false, &s);
		if (r < 0)
			return r;
		if (!name_is_label_value(s))
			return ycheck_fail(&c->ck, seq->vals[i],
					   "%s: '%s' is not a valid label value (%s)", iwhat,
					   ytree_quote(s, q, sizeof(q)), NAME_LABEL_VALUE_HINT);
		r = pctx_strdup(c, s, &req->values[i]);
		if (r < 0)
			return r;
	}
	req->n_values = seq->n;
	return 0;
}

static int sel_expr_parse(struct pctx *c, const struct ynode *item, const char *what,
			  struct mseg_sel_req *req)
{
	static const char *const keys[] = { "key", "operator", "values", NULL };
	static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist", NULL };
	static const enum mseg_sel_op op_vals[] = { MSEG_SEL_IN, MSEG_SEL_NOT_IN, MSEG_SEL_EXISTS,
						    MSEG_SEL_DOES_NOT_EXIST };
	char kwhat[WHAT_SIZE + 16], q[YQ_SIZE];
	const struct ynode *v, *op_node, *values;
	const char *s;
	unsigned i;
	int r;

	r = ycheck_map(&c->ck, item, what, keys);
	if (r < 0)
		return r;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.key", what);
	r = ycheck_require(&c->ck, item, "key", what, &v);
	if (r < 0)
		return r;
	r = ycheck_string(&c->ck, v, kwhat, true, &s);
	if (r < 0)
		return r;
	if (!name_is_label_key(s))
		return ycheck_fail(&c->ck, v, "%s: '%s' is not a valid label key (%s)", kwhat,
				   ytree_quote(s, q, sizeof(q)), NAME_LABEL_KEY_HINT);
	r = pctx_strdup(c, s, &req->key);
	if (r < 0)
		return r;

	ycheck_whatf(kwhat, sizeof(kwhat), "%s.operator", what);
	r = ycheck_require(&c->ck, item, "operator", what, &op_node);
	if (r < 0)
		return r;
	r = ycheck_enum(&c->ck, op_node, kwhat, "operator", ops, &i);
	if (r < 0)
		return r;
	req->op = op_vals[i];

	ycheck_whatf(kwhat, sizeof(kwhat), "%s.values", what);
	values = map_get_opt(item, "values");
	if (values) {
		r = sel_values_parse(c, values, kwhat, req);
		if (r < 0)
			return r;
	}
	if ((req->op == MSEG_SEL_IN || req->op == MSEG_SEL_NOT_IN) && req->n_values == 0)
		return ycheck_fail(&c->ck, values ? values : item,
				   "%s: must be given when operator is '%s'", kwhat, ops[i]);
	if ((req->op == MSEG_SEL_EXISTS || req->op == MSEG_SEL_DOES_NOT_EXIST) &&
	    req->n_values != 0)
		return ycheck_fail(&c->ck, values, "%s: must be empty when operator is '%s'", kwhat,
				   ops[i]);
	return 0;
}

/* {matchLabels: {k: v}, matchExpressions: [{key, operator, values}]};
 * {} (or null) selects everything. */
static int label_selector_parse(struct pctx *c, const struct ynode *n, const char *what,
				struct mseg_selector *ret)
{
	static const char *const keys[] = { "matchLabels", "matchExpressions", NULL };
	char swhat[WHAT_SIZE + 32], lwhat[2 * WHAT_SIZE];
	const struct ynode *labels, *exprs;
	size_t i, n_reqs = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (ynode_is_null(n))
		return 0;
	r = ycheck_map(&c->ck, n, what, keys);
	if (r < 0)
		return r;
	labels = map_get_opt(n, "matchLabels");
	exprs = map_get_opt(n, "matchExpressions");
	ycheck_whatf(swhat, sizeof(swhat), "%s.matchLabels", what);
	if (labels) {
		r = ycheck_kind(&c->ck, labels, YNODE_MAP, swhat);
		if (r < 0)
			return r;
		n_reqs += labels->n;
	}
	if (exprs) {
		char ewhat[WHAT_SIZE + 32];

		ycheck_whatf(ewhat, sizeof(ewhat), "%s.matchExpressions", what);
		r = ycheck_kind(&c->ck, exprs, YNODE_SEQ, ewhat);
		if (r < 0)
			return r;
		n_reqs += exprs->n;
	}
	ret->reqs = arena_calloc(&c->p->arena, n_reqs ? n_reqs : 1, sizeof(*ret->reqs));
	if (!ret->reqs)
		return ycheck_oom(&c->ck);
	for (i = 0; labels && i < labels->n; i++) {
		struct mseg_sel_req *req = &ret->reqs[ret->n_reqs++];
		const char *val;

		ycheck_whatf(lwhat, sizeof(lwhat), "%s: label '%s'", swhat, labels->keys[i]->str);
		r = ycheck_label(&c->ck, labels->keys[i], labels->vals[i], swhat, lwhat, &val);
		if (r < 0)
			return r;
		req->op = MSEG_SEL_IN;
		req->values = arena_calloc(&c->p->arena, 1, sizeof(*req->values));
		if (!req->values)
			return ycheck_oom(&c->ck);
		req->n_values = 1;
		r = pctx_strdup(c, labels->keys[i]->str, &req->key);
		if (r == 0)
			r = pctx_strdup(c, val, &req->values[0]);
		if (r < 0)
			return r;
	}
	for (i = 0; exprs && i < exprs->n; i++) {
		char ewhat[WHAT_SIZE + 48];

		ycheck_whatf(ewhat, sizeof(ewhat), "%s.matchExpressions[%zu]", what, i);
		r = sel_expr_parse(c, exprs->vals[i], ewhat, &ret->reqs[ret->n_reqs++]);
		if (r < 0)
			return r;
	}
	selector_sort(ret);
	return 0;
}

/* ---- peers ---- */

static int ip_block_parse(struct pctx *c, const struct ynode *n, const char *what,
			  struct mseg_peer *peer)
{
	static const char *const keys[] = { "cidr", "except", NULL };
	char kwhat[WHAT_SIZE + 16], iwhat[WHAT_SIZE + 32], q[YQ_SIZE];
	const struct ynode *cidr, *except;
	size_t i;
	int r;

	r = ycheck_map(&c->ck, n, what, keys);
	if (r < 0)
		return r;
	r = ycheck_require(&c->ck, n, "cidr", what, &cidr);
	if (r < 0)
		return r;
	peer->kind = MSEG_PEER_ADDRS;
	peer->cidrs = arena_calloc(&c->p->arena, 1, sizeof(*peer->cidrs));
	if (!peer->cidrs)
		return ycheck_oom(&c->ck);
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.cidr", what);
	r = cidr_parse(c, cidr, kwhat, true, &peer->cidrs[0]);
	if (r < 0)
		return r;
	peer->n_cidrs = 1;

	except = map_get_opt(n, "except");
	if (!except)
		return 0;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.except", what);
	r = ycheck_seq(&c->ck, except, kwhat, false);
	if (r < 0)
		return r;
	peer->except = arena_calloc(&c->p->arena, except->n ? except->n : 1,
				    sizeof(*peer->except));
	if (!peer->except)
		return ycheck_oom(&c->ck);
	for (i = 0; i < except->n; i++) {
		struct mseg_cidr *x = &peer->except[i];

		ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", kwhat, i);
		r = cidr_parse(c, except->vals[i], iwhat, true, x);
		if (r < 0)
			return r;
		/* upstream: a strict subset of cidr */
		if (!cidr_contains(&peer->cidrs[0], x) || x->plen <= peer->cidrs[0].plen)
			return ycheck_fail(&c->ck, except->vals[i],
					   "%s: '%s' must be a strict subset of cidr '%s'", iwhat,
					   ytree_quote(except->vals[i]->str, q, sizeof(q)),
					   cidr->str);
	}
	peer->n_except = except->n;
	return 0;
}

static int peer_parse(struct pctx *c, const struct ynode *n, const char *what,
		      struct mseg_peer *peer)
{
	static const char *const keys[] = { "podSelector", "namespaceSelector", "ipBlock", NULL };
	char kwhat[WHAT_SIZE + 32];
	const struct ynode *pod, *ns, *ip;
	int r;

	r = ycheck_map(&c->ck, n, what, keys);
	if (r < 0)
		return r;
	memset(peer, 0, sizeof(*peer));
	pctx_pos(c, n, &peer->pos);
	pod = map_get_opt(n, "podSelector");
	ns = map_get_opt(n, "namespaceSelector");
	ip = map_get_opt(n, "ipBlock");
	if (!pod && !ns && !ip)
		return ycheck_fail(&c->ck, n,
				   "%s: must specify a peer (podSelector, namespaceSelector or "
				   "ipBlock)", what);
	if (ip && (pod || ns))
		return ycheck_fail(&c->ck, ip,
				   "%s: may not specify more than 1 peer type (ipBlock goes alone; "
				   "podSelector and namespaceSelector may go together)", what);
	if (ip) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s.ipBlock", what);
		return ip_block_parse(c, ip, kwhat, peer);
	}
	peer->kind = MSEG_PEER_ENDPOINTS;
	if (pod) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s.podSelector", what);
		r = label_selector_parse(c, pod, kwhat, &peer->ep_sel);
		if (r < 0)
			return r;
	}
	if (!ns) {
		peer->ns_scope = MSEG_NS_NAMED;
		peer->ns = c->p->ns;
		return 0;
	}
	peer->ns_scope = MSEG_NS_SELECTOR;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.namespaceSelector", what);
	return label_selector_parse(c, ns, kwhat, &peer->ns_sel);
}

/* ---- ports ---- */

static int np_port_parse(struct pctx *c, const struct ynode *n, const char *what,
			 struct mseg_port *ret)
{
	static const char *const keys[] = { "protocol", "port", "endPort", NULL };
	static const char *const protos[] = { "TCP", "UDP", "SCTP", NULL };
	static const uint8_t proto_vals[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP };
	char kwhat[WHAT_SIZE + 16], q[YQ_SIZE];
	const struct ynode *v, *port, *end;
	unsigned long num;
	unsigned i;
	int r;

	r = ycheck_map(&c->ck, n, what, keys);
	if (r < 0)
		return r;
	memset(ret, 0, sizeof(*ret));
	pctx_pos(c, n, &ret->pos);
	ret->proto = IPPROTO_TCP;
	v = map_get_opt(n, "protocol");
	if (v) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s.protocol", what);
		r = ycheck_enum(&c->ck, v, kwhat, "protocol", protos, &i);
		if (r < 0)
			return r;
		ret->proto = proto_vals[i];
	}

	port = map_get_opt(n, "port");
	end = map_get_opt(n, "endPort");
	ret->lo = 0;
	ret->hi = 65535;
	if (port) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s.port", what);
		if (is_int_scalar(port)) {
			r = ycheck_uint(&c->ck, port, kwhat, 1, 65535, &num);
			if (r < 0)
				return ycheck_fail(&c->ck, port,
						   "%s: %s out of range (1-65535)", kwhat,
						   ytree_quote(port->str, q, sizeof(q)));
			ret->lo = ret->hi = (uint16_t)num;
		} else {
			const char *s;

			r = ycheck_string(&c->ck, port, kwhat, true, &s);
			if (r < 0)
				return r;
			if (!name_is_port_name(s))
				return ycheck_fail(&c->ck, port, "%s: '%s' is not a valid port (%s)",
						   kwhat, ytree_quote(s, q, sizeof(q)),
						   PORT_NAME_HINT);
			r = pctx_strdup(c, s, &ret->name);
			if (r < 0)
				return r;
			ret->lo = ret->hi = 0;
		}
	}
	if (!end)
		return 0;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.endPort", what);
	if (!port)
		return ycheck_fail(&c->ck, end, "%s: may not be given without port", kwhat);
	if (ret->name)
		return ycheck_fail(&c->ck, end, "%s: may not be given when port is a name ('%s')",
				   kwhat, ret->name);
	if (!is_int_scalar(end))
		return ycheck_fail(&c->ck, end, "%s: expected an integer, got %s", kwhat,
				   end->kind == YNODE_SCALAR ? "a string" : ynode_kind_name(end));
	r = ycheck_uint(&c->ck, end, kwhat, 1, 65535, &num);
	if (r < 0)
		return ycheck_fail(&c->ck, end, "%s: %s out of range (1-65535)", kwhat,
				   ytree_quote(end->str, q, sizeof(q)));
	if (num < ret->lo)
		return ycheck_fail(&c->ck, end,
				   "%s: %lu must be greater than or equal to port (%u)", kwhat, num,
				   ret->lo);
	ret->hi = (uint16_t)num;
	return 0;
}

/* ---- rules ---- */

/* Rule @i of spec.ingress or spec.egress (@key), with peers under @peers_key. */
static int np_rule_parse(struct pctx *c, const struct ynode *item, const char *key,
			 const char *peers_key, size_t i, enum mseg_dir dir, bool keep,
			 const struct mseg_peer *subject)
{
	const char *const keys[] = { peers_key, "ports", NULL };
	char what[WHAT_SIZE], kwhat[WHAT_SIZE + 16], iwhat[WHAT_SIZE + 32];
	const struct ynode *peers, *ports, *node = item;
	struct mseg_policy *p = c->p;
	struct mseg_rule rule;
	size_t k, n_peers;
	int r;

	ycheck_whatf(what, sizeof(what), "spec.%s[%zu]", key, i);
	memset(&rule, 0, sizeof(rule));
	if (ynode_is_null(item))
		item = NULL;       /* "- " or "- {}": every peer, every port */
	if (item) {
		r = ycheck_map(&c->ck, item, what, keys);
		if (r < 0)
			return r;
	}
	rule.dir = dir;
	rule.local = *subject;
	rule.index = (unsigned)i;
	pctx_pos(c, node, &rule.pos);

	ports = item ? map_get_opt(item, "ports") : NULL;
	if (ports) {
		ycheck_whatf(kwhat, sizeof(kwhat), "%s.ports", what);
		r = ycheck_seq(&c->ck, ports, kwhat, false);
		if (r < 0)
			return r;
		rule.ports = arena_calloc(&p->arena, ports->n ? ports->n : 1, sizeof(*rule.ports));
		if (!rule.ports)
			return ycheck_oom(&c->ck);
		for (k = 0; k < ports->n; k++) {
			ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", kwhat, k);
			r = np_port_parse(c, ports->vals[k], iwhat, &rule.ports[k]);
			if (r < 0)
				return r;
		}
		rule.n_ports = ports->n;
	}

	peers = item ? map_get_opt(item, peers_key) : NULL;
	ycheck_whatf(kwhat, sizeof(kwhat), "%s.%s", what, peers_key);
	if (peers) {
		r = ycheck_seq(&c->ck, peers, kwhat, false);
		if (r < 0)
			return r;
	}
	n_peers = peers ? peers->n : 0;
	/* no peers: every address (a named egress port resolves at the
	 * endpoints among them: compile.c) */
	rule.peers = arena_calloc(&p->arena, n_peers ? n_peers : 1, sizeof(*rule.peers));
	if (!rule.peers)
		return ycheck_oom(&c->ck);
	for (k = 0; k < n_peers; k++) {
		ycheck_whatf(iwhat, sizeof(iwhat), "%s[%zu]", kwhat, k);
		r = peer_parse(c, peers->vals[k], iwhat, &rule.peers[k]);
		if (r < 0)
			return r;
	}
	rule.n_peers = n_peers;
	if (n_peers == 0) {
		r = peer_world_init(c, NULL, &rule.peers[0]);
		if (r < 0)
			return r;
		rule.peers[0].pos = rule.pos;
		rule.n_peers = 1;
	}
	if (keep)
		p->rules[p->n_rules++] = rule;
	return 0;
}

static int np_rules_parse(struct pctx *c, const struct ynode *seq, const char *key,
			  const char *peers_key, enum mseg_dir dir, bool keep,
			  const struct mseg_peer *subject)
{
	char what[WHAT_SIZE];
	size_t i;
	int r;

	if (!seq)
		return 0;
	ycheck_whatf(what, sizeof(what), "spec.%s", key);
	r = ycheck_seq(&c->ck, seq, what, false);
	if (r < 0)
		return r;
	for (i = 0; i < seq->n; i++) {
		r = np_rule_parse(c, seq->vals[i], key, peers_key, i, dir, keep, subject);
		if (r < 0)
			return r;
	}
	return 0;
}

static int policy_types_parse(struct pctx *c, const struct ynode *seq, unsigned *ret)
{
	static const char *const names[] = { "Ingress", "Egress", NULL };
	static const unsigned bits[] = { MSEG_ISO_INGRESS, MSEG_ISO_EGRESS };
	char what[WHAT_SIZE];
	size_t i;
	int r;

	r = ycheck_seq(&c->ck, seq, "spec.policyTypes", false);
	if (r < 0)
		return r;
	if (seq->n > 2)
		return ycheck_fail(&c->ck, seq->vals[2],
				   "spec.policyTypes: may not give more than two policyTypes");
	*ret = 0;
	for (i = 0; i < seq->n; i++) {
		unsigned k;

		ycheck_whatf(what, sizeof(what), "spec.policyTypes[%zu]", i);
		r = ycheck_enum(&c->ck, seq->vals[i], what, "policy type", names, &k);
		if (r < 0)
			return r;
		*ret |= bits[k];
	}
	return 0;
}

int netpol_spec_parse(struct pctx *c, const struct ynode *root)
{
	static const char *const keys[] = { "podSelector", "ingress", "egress", "policyTypes",
					    NULL };
	const struct ynode *spec, *v, *ingress, *egress;
	struct mseg_policy *p = c->p;
	struct mseg_peer *subject;
	size_t n_rules = 0;
	int r;

	p->mode = MSEG_MODE_ENFORCE;
	r = ycheck_require(&c->ck, root, "spec", "", &spec);
	if (r < 0)
		return r;
	r = ycheck_map(&c->ck, spec, "spec", keys);
	if (r < 0)
		return r;

	/* the pods of the policy's namespace that podSelector selects */
	subject = arena_calloc(&p->arena, 1, sizeof(*subject));
	if (!subject)
		return ycheck_oom(&c->ck);
	subject->kind = MSEG_PEER_ENDPOINTS;
	subject->group = "podSelector";
	subject->ns_scope = MSEG_NS_NAMED;
	subject->ns = p->ns;
	v = ynode_map_get(spec, "podSelector");
	pctx_pos(c, v ? v : spec, &subject->pos);
	if (v) {
		r = label_selector_parse(c, v, "spec.podSelector", &subject->ep_sel);
		if (r < 0)
			return r;
	}
	p->subjects = subject;
	p->n_subjects = 1;

	ingress = map_get_opt(spec, "ingress");
	egress = map_get_opt(spec, "egress");
	if (ingress && ingress->kind == YNODE_SEQ)
		n_rules += ingress->n;
	if (egress && egress->kind == YNODE_SEQ)
		n_rules += egress->n;

	v = map_get_opt(spec, "policyTypes");
	if (v) {
		r = policy_types_parse(c, v, &p->isolation);
		if (r < 0)
			return r;
	}
	if (!v || v->n == 0) {
		/* upstream defaulting */
		p->isolation = MSEG_ISO_INGRESS;
		if (egress && egress->kind == YNODE_SEQ && egress->n)
			p->isolation |= MSEG_ISO_EGRESS;
	}

	p->rules = arena_calloc(&p->arena, n_rules ? n_rules : 1, sizeof(*p->rules));
	if (!p->rules)
		return ycheck_oom(&c->ck);
	r = np_rules_parse(c, ingress, "ingress", "from", MSEG_DIR_INGRESS,
			   p->isolation & MSEG_ISO_INGRESS, subject);
	if (r < 0)
		return r;
	return np_rules_parse(c, egress, "egress", "to", MSEG_DIR_EGRESS,
			      p->isolation & MSEG_ISO_EGRESS, subject);
}
