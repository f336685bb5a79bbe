/* Unit tests of compile_plan() and the box normalization, on hand-made model
 * structs (no YAML parser involved), and of the nft text renderer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/model/plan.h"
#include "mseg/compile/render_text.h"
#include "mseg/kernel/table_text.h"
#include "compile/boxes.h"
#include "t.h"

/* ---- model builders (everything lives in one arena per test) ---------- */

static struct arena A;

static char *xstrdup(const char *s)
{
	return arena_strdup(&A, s);
}

static struct mseg_addr ip(const char *s)
{
	struct mseg_addr a = { 0 };

	if (inet_pton(AF_INET, s, a.bytes) == 1) {
		a.family = AF_INET;
	} else if (inet_pton(AF_INET6, s, a.bytes) == 1) {
		a.family = AF_INET6;
	} else {
		printf("bad address %s\n", s);
		abort();
	}
	return a;
}

static struct mseg_cidr cidr(const char *s)
{
	char buf[64];
	char *slash;
	struct mseg_cidr c = { 0 };

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	c.addr = ip(buf);
	c.plen = slash ? (uint8_t)atoi(slash + 1) : (c.addr.family == AF_INET ? 32 : 128);
	return c;
}

/* "app=web,tier=x" -> matchLabels (sorted by the caller); "" -> everything */
static struct mseg_selector sel(const char *spec)
{
	struct mseg_selector s = { 0 };
	char *copy = xstrdup(spec), *save = NULL;

	s.reqs = arena_calloc(&A, 8, sizeof(*s.reqs));
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct mseg_sel_req *q = &s.reqs[s.n_reqs++];
		char *eq = strchr(tok, '=');

		if (tok[0] == '!') {
			q->key = tok + 1;
			q->op = MSEG_SEL_DOES_NOT_EXIST;
		} else if (!eq) {
			q->key = tok;
			q->op = MSEG_SEL_EXISTS;
		} else {
			*eq = '\0';
			q->key = tok;
			q->op = MSEG_SEL_IN;
			q->values = arena_calloc(&A, 1, sizeof(*q->values));
			q->values[0] = eq + 1;
			q->n_values = 1;
		}
	}
	return s;
}

static struct mseg_peer peer_eps(const char *ns, const char *spec)
{
	struct mseg_peer p = { .kind = MSEG_PEER_ENDPOINTS };

	p.ns_scope = ns ? MSEG_NS_NAMED : MSEG_NS_ANY;
	p.ns = ns ? xstrdup(ns) : NULL;
	p.ep_sel = sel(spec);
	return p;
}

/* comma-separated cidrs and excepts */
static struct mseg_peer peer_cidrs(const char *cidrs, const char *except)
{
	struct mseg_peer p = { .kind = MSEG_PEER_ADDRS };
	char *save = NULL, *copy;

	p.cidrs = arena_calloc(&A, 64, sizeof(*p.cidrs));
	p.except = arena_calloc(&A, 64, sizeof(*p.except));
	copy = xstrdup(cidrs);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		p.cidrs[p.n_cidrs++] = cidr(t);
	if (except) {
		copy = xstrdup(except);
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			p.except[p.n_except++] = cidr(t);
	}
	return p;
}

static struct mseg_port port(uint8_t proto, uint16_t lo, uint16_t hi)
{
	return (struct mseg_port){ .proto = proto, .lo = lo, .hi = hi };
}

static struct mseg_port named(const char *name, uint8_t proto)
{
	return (struct mseg_port){ .proto = proto, .name = name };
}

/* labels "a=1,b=2" (sorted by key), ips "10.0.0.1,fd00::1" */
static struct mseg_endpoint *ep_new(const char *id, const char *ns, const char *labels,
				    const char *ips)
{
	struct mseg_endpoint *ep = arena_calloc(&A, 1, sizeof(*ep));
	char *save = NULL, *copy;

	ep->id = xstrdup(id);
	ep->name = ep->id;
	ep->ns = xstrdup(ns);
	ep->labels = arena_calloc(&A, 8, sizeof(*ep->labels));
	copy = xstrdup(labels);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		*eq = '\0';
		ep->labels[ep->n_labels].key = t;
		ep->labels[ep->n_labels++].value = eq + 1;
	}
	ep->ips = arena_calloc(&A, 8, sizeof(*ep->ips));
	copy = xstrdup(ips);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		ep->ips[ep->n_ips++] = ip(t);
	ep->ports = arena_calloc(&A, 8, sizeof(*ep->ports));
	return ep;
}

static void ep_port(struct mseg_endpoint *ep, const char *name, uint8_t proto, uint16_t p)
{
	ep->ports[ep->n_ports++] = (struct mseg_named_port){ .name = name, .proto = proto,
							     .port = p };
}

static struct mseg_policy *pol_new(const char *name, enum mseg_mode mode, unsigned iso)
{
	struct mseg_policy *p = arena_calloc(&A, 1, sizeof(*p));

	p->name = xstrdup(name);
	p->ns = "shop";
	p->mode = mode;
	p->isolation = iso;
	p->subjects = arena_calloc(&A, 16, sizeof(*p->subjects));
	p->rules = arena_calloc(&A, 64, sizeof(*p->rules));
	return p;
}

static void pol_subject(struct mseg_policy *p, struct mseg_peer s)
{
	p->subjects[p->n_subjects++] = s;
}

static struct mseg_rule *pol_rule(struct mseg_policy *p, enum mseg_dir dir, struct mseg_peer local,
				  struct mseg_peer peer, const struct mseg_port *ports, size_t n_ports)
{
	struct mseg_rule *r = &p->rules[p->n_rules];

	r->dir = dir;
	r->local = local;
	r->peers = arena_calloc(&A, 4, sizeof(*r->peers));
	r->peers[0] = peer;
	r->n_peers = 1;
	r->ports = arena_calloc(&A, n_ports + 1, sizeof(*r->ports));
	memcpy(r->ports, ports, n_ports * sizeof(*ports));
	r->n_ports = n_ports;
	r->index = (unsigned)p->n_rules++;
	return r;
}

/* AllowList {from, to, ports}: ingress (local to, peer from) and, when from
 * selects endpoints, egress (local from, peer to). */
static void pol_allow(struct mseg_policy *p, struct mseg_peer from, struct mseg_peer to,
		      const struct mseg_port *ports, size_t n_ports)
{
	if (to.kind == MSEG_PEER_ENDPOINTS)
		pol_rule(p, MSEG_DIR_INGRESS, to, from, ports, n_ports);
	if (from.kind == MSEG_PEER_ENDPOINTS)
		pol_rule(p, MSEG_DIR_EGRESS, from, to, ports, n_ports);
}

static struct mseg_plan *compile(struct mseg_policy **pols, size_t np, struct mseg_endpoint **eps,
				 size_t ne, const struct compile_opts *opts)
{
	struct mseg_plan *plan = NULL;
	int r = compile_plan((const struct mseg_policy *const *)pols, np,
			     (const struct mseg_endpoint *const *)eps, ne, opts, &plan);

	T_CHECK(r == 0, "compile_plan: %d", r);
	return plan;
}

static const struct mseg_ep_plan *plan_ep(const struct mseg_plan *plan, const char *id)
{
	for (size_t i = 0; plan && i < plan->n_eps; i++)
		if (strcmp(plan->eps[i].ep->id, id) == 0)
			return &plan->eps[i];
	return NULL;
}

/* The entries of a direction as text, "el;el;..." with shapes. */
static const char *dir_text(const struct mseg_plan *plan, const char *id, enum mseg_dir d)
{
	static char buf[8192];
	const struct mseg_ep_plan *ep = plan_ep(plan, id);
	size_t off = 0;

	buf[0] = '\0';
	if (!ep)
		return "(no endpoint)";
	for (size_t i = 0; i < ep->dir[d].n_entries; i++) {
		char el[RENDER_TEXT_ENTRY_MAX];

		render_text_entry(&ep->dir[d].entries[i], el, sizeof(el));
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? ";" : "", el);
	}
	return buf;
}

#define TCP(lo, hi) port(IPPROTO_TCP, lo, hi)

/* The normalized boxes as they are, without expansion into exact entries. */
static const struct compile_opts no_expand = { .expand_max = COMPILE_EXPAND_OFF };

static box_u128 addr_val(const struct mseg_addr *a)
{
	box_u128 v = 0;

	for (size_t i = 0; i < (a->family == AF_INET ? 4u : 16u); i++)
		v = (v << 8) | a->bytes[i];
	return v;
}

static void t_setup(void)
{
	arena_init(&A);
}

static void t_teardown(void)
{
	arena_release(&A);
}

/* ---- tests -------------------------------------------------------------- */

static void test_shape_and_proto(void)
{
	struct mseg_entry e = { 0 };

	T_CHECK(proto_has_ports(IPPROTO_TCP) && proto_has_ports(IPPROTO_UDP) &&
			proto_has_ports(IPPROTO_SCTP) && proto_has_ports(IPPROTO_UDPLITE),
		"port protocols");
	T_CHECK(!proto_has_ports(0) && !proto_has_ports(IPPROTO_ICMP) &&
			!proto_has_ports(IPPROTO_ICMPV6),
		"port-less protocols");
	e.lo = ip("10.0.0.1");
	e.hi = ip("10.0.0.1");
	e.proto = IPPROTO_TCP;
	e.port_lo = e.port_hi = 80;
	T_CHECK(entry_shape(&e) == SHAPE_PORT, "exact");
	e.port_hi = 90;
	T_CHECK(entry_shape(&e) == SHAPE_PORT_IV, "port range");
	e.port_hi = 80;
	e.hi = ip("10.0.0.2");
	T_CHECK(entry_shape(&e) == SHAPE_PORT_IV, "address range");
	e.proto = IPPROTO_ICMP;
	e.port_lo = e.port_hi = 0;
	T_CHECK(entry_shape(&e) == SHAPE_PROTO_IV, "icmp range");
	e.hi = e.lo;
	T_CHECK(entry_shape(&e) == SHAPE_PROTO, "icmp exact");
	e.proto = 0;
	T_CHECK(entry_shape(&e) == SHAPE_ANY, "any exact");
	e.hi = ip("10.0.0.9");
	T_CHECK(entry_shape(&e) == SHAPE_ANY_IV, "any range");
	T_CHECK(plan_free(NULL) == NULL, "plan_free(NULL)");
}

static void test_coverage_and_modes(void)
{
	struct mseg_endpoint *eps[3];
	struct mseg_policy *pols[3];
	struct mseg_plan *plan;
	const struct mseg_ep_plan *p;
	struct compile_opts opts = { 0 };

	t_setup();
	eps[0] = ep_new("web", "shop", "app=web", "10.0.0.2");
	eps[1] = ep_new("db", "shop", "app=db", "10.0.0.3");
	eps[2] = ep_new("other", "shop", "app=other", "10.0.0.4");
	/* web: enforce, ingress only */
	pols[0] = pol_new("a", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[0], peer_eps("shop", "app=web"));
	/* db: audit both, and enforce ingress: ingress enforce, egress audit */
	pols[1] = pol_new("b", MSEG_MODE_AUDIT, MSEG_ISO_BOTH);
	pol_subject(pols[1], peer_eps("shop", "app=db"));
	pols[2] = pol_new("c", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[2], peer_eps("shop", "app=db"));
	/* a subject in another namespace covers nothing here */
	pol_subject(pols[2], peer_eps("elsewhere", "app=other"));

	plan = compile(pols, 3, eps, 3, &opts);
	T_CHECK(plan && plan->n_eps == 3, "3 endpoints");
	if (!plan)
		goto out;
	T_STREQ(plan->eps[0].ep->id, "db");
	T_STREQ(plan->eps[1].ep->id, "other");
	T_STREQ(plan->eps[2].ep->id, "web");
	p = plan_ep(plan, "web");
	T_CHECK(p->dir[MSEG_DIR_INGRESS].isolated && p->dir[MSEG_DIR_INGRESS].mode == MSEG_MODE_ENFORCE,
		"web ingress enforce");
	T_CHECK(!p->dir[MSEG_DIR_EGRESS].isolated, "web egress open");
	p = plan_ep(plan, "db");
	T_CHECK(p->dir[MSEG_DIR_INGRESS].isolated && p->dir[MSEG_DIR_INGRESS].mode == MSEG_MODE_ENFORCE,
		"db ingress: enforce wins");
	T_CHECK(p->dir[MSEG_DIR_EGRESS].isolated && p->dir[MSEG_DIR_EGRESS].mode == MSEG_MODE_AUDIT,
		"db egress audit");
	p = plan_ep(plan, "other");
	T_CHECK(!p->dir[0].isolated && !p->dir[1].isolated, "uncovered: not isolated");
	plan = plan_free(plan);

	/* default deny: every direction no policy isolates, with default_mode */
	opts.default_deny = true;
	opts.default_mode = MSEG_MODE_AUDIT;
	plan = compile(pols, 3, eps, 3, &opts);
	if (!plan)
		goto out;
	p = plan_ep(plan, "other");
	T_CHECK(p->dir[0].isolated && p->dir[0].mode == MSEG_MODE_AUDIT && p->dir[1].isolated &&
			p->dir[1].mode == MSEG_MODE_AUDIT,
		"default deny isolates the uncovered endpoint");
	T_CHECK(p->dir[0].n_entries == 0 && p->dir[1].n_entries == 0, "and allows nothing");
	p = plan_ep(plan, "web");
	T_CHECK(p->dir[MSEG_DIR_INGRESS].mode == MSEG_MODE_ENFORCE, "policy mode kept");
	T_CHECK(p->dir[MSEG_DIR_EGRESS].isolated && p->dir[MSEG_DIR_EGRESS].mode == MSEG_MODE_AUDIT,
		"default deny closes the direction no policy isolates");
	plan = plan_free(plan);

	/* force audit */
	opts.default_deny = false;
	opts.force_audit = true;
	plan = compile(pols, 3, eps, 3, &opts);
	if (!plan)
		goto out;
	for (size_t i = 0; i < plan->n_eps; i++)
		for (int d = 0; d < 2; d++)
			T_CHECK(!plan->eps[i].dir[d].isolated ||
					plan->eps[i].dir[d].mode == MSEG_MODE_AUDIT,
				"force audit %zu/%d", i, d);
	T_CHECK(plan_ep(plan, "db")->dir[0].isolated, "still isolated");
	plan = plan_free(plan);

	/* no options at all */
	plan = compile(pols, 3, eps, 3, NULL);
	T_CHECK(plan && !plan_ep(plan, "other")->dir[0].isolated, "NULL opts");
	plan = plan_free(plan);
out:
	t_teardown();
}

static void test_allow_entries(void)
{
	struct mseg_endpoint *eps[5];
	struct mseg_policy *pols[2];
	struct mseg_plan *plan;
	struct mseg_port p5432 = TCP(5432, 5432), p443[2] = { TCP(443, 443), TCP(80, 80) };

	t_setup();
	eps[0] = ep_new("api-1", "shop", "app=api", "10.0.0.5,fd00::5");
	eps[1] = ep_new("api-2", "shop", "app=api", "10.0.0.6");
	eps[2] = ep_new("db", "shop", "app=db", "10.0.0.9,fd00::9");
	eps[3] = ep_new("web", "shop", "app=web", "10.0.0.2");
	eps[4] = ep_new("api-x", "other", "app=api", "10.1.0.5");
	pols[0] = pol_new("shop", MSEG_MODE_ENFORCE, MSEG_ISO_BOTH);
	pol_subject(pols[0], peer_eps("shop", "app=db"));
	pol_subject(pols[0], peer_eps("shop", "app=api"));
	pol_allow(pols[0], peer_eps("shop", "app=api"), peer_eps("shop", "app=db"), &p5432, 1);
	/* web is isolated by nobody in pols[1] ... */
	pols[1] = pol_new("web", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[1], peer_eps("shop", "app=web"));
	pol_allow(pols[1], peer_cidrs("0.0.0.0/0,::/0", NULL), peer_eps("shop", "app=web"), p443, 2);
	/* ... and a rule of pols[0]'s kind on api also applies to web's egress? no:
	 * web's egress is not isolated, so it has no entries */

	plan = compile(pols, 2, eps, 5, NULL);
	if (!plan)
		goto out;
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS),
		"10.0.0.5 . tcp . 5432;10.0.0.6 . tcp . 5432;fd00::5 . tcp . 5432");
	T_STREQ(dir_text(plan, "db", MSEG_DIR_EGRESS), "");
	T_CHECK(plan_ep(plan, "db")->dir[MSEG_DIR_EGRESS].isolated, "db egress isolated");
	T_STREQ(dir_text(plan, "api-1", MSEG_DIR_EGRESS), "10.0.0.9 . tcp . 5432;fd00::9 . tcp . 5432");
	T_STREQ(dir_text(plan, "api-2", MSEG_DIR_EGRESS), "10.0.0.9 . tcp . 5432;fd00::9 . tcp . 5432");
	T_CHECK(plan_ep(plan, "api-1")->dir[1].entries == plan_ep(plan, "api-2")->dir[1].entries,
		"same rule set: shared entries");
	T_STREQ(dir_text(plan, "api-1", MSEG_DIR_INGRESS), "");
	T_STREQ(dir_text(plan, "web", MSEG_DIR_INGRESS),
		"0.0.0.0/0 . tcp . 80;0.0.0.0/0 . tcp . 443;::/0 . tcp . 80;::/0 . tcp . 443");
	T_CHECK(!plan_ep(plan, "api-x")->dir[0].isolated, "other namespace not covered");
	plan = plan_free(plan);
out:
	t_teardown();
}

/* A rule admits for every endpoint its local side selects, also when
 * another list isolates that endpoint; lists are a union. */
static void test_union_across_lists(void)
{
	struct mseg_endpoint *eps[2];
	struct mseg_policy *pols[2];
	struct mseg_plan *plan;
	struct mseg_port p = TCP(22, 22);

	t_setup();
	eps[0] = ep_new("a", "shop", "app=a", "10.0.0.1");
	eps[1] = ep_new("b", "shop", "app=b", "10.0.0.2");
	pols[0] = pol_new("iso", MSEG_MODE_ENFORCE, MSEG_ISO_BOTH);
	pol_subject(pols[0], peer_eps("shop", "app=a"));
	pols[1] = pol_new("rules-only", MSEG_MODE_AUDIT, MSEG_ISO_BOTH);
	/* no subjects: covers nothing, but its rules still admit */
	pol_allow(pols[1], peer_eps("shop", "app=b"), peer_eps("shop", "app=a"), &p, 1);
	pol_allow(pols[1], peer_eps("shop", "app=a"), peer_eps("shop", "app=a"), &p, 1);

	plan = compile(pols, 2, eps, 2, NULL);
	if (!plan)
		goto out;
	T_STREQ(dir_text(plan, "a", MSEG_DIR_INGRESS), "10.0.0.1 . tcp . 22;10.0.0.2 . tcp . 22");
	T_STREQ(dir_text(plan, "a", MSEG_DIR_EGRESS), "10.0.0.1 . tcp . 22");
	T_CHECK(plan_ep(plan, "a")->dir[0].mode == MSEG_MODE_ENFORCE, "mode from the covering list");
	T_CHECK(!plan_ep(plan, "b")->dir[1].isolated, "b not isolated");
	plan = plan_free(plan);
out:
	t_teardown();
}

static void test_cidr_except_and_icmp(void)
{
	struct mseg_endpoint *eps[1];
	struct mseg_policy *pols[1];
	struct mseg_plan *plan;
	struct mseg_port icmp[3] = { port(IPPROTO_ICMP, 0, 0), port(IPPROTO_ICMPV6, 0, 0),
				     TCP(0, 65535) };

	t_setup();
	eps[0] = ep_new("db", "shop", "app=db", "10.0.0.9");
	pols[0] = pol_new("p", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[0], peer_eps("shop", "app=db"));
	pol_allow(pols[0], peer_cidrs("192.0.2.0/24,2001:db8::/32", "192.0.2.7/32,2001:db8::/64"),
		  peer_eps("shop", "app=db"), icmp, 3);

	plan = compile(pols, 1, eps, 1, &no_expand);
	if (!plan)
		goto out;
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS),
		"192.0.2.0-192.0.2.6 . icmp;192.0.2.0-192.0.2.6 . tcp . 0-65535;"
		"192.0.2.8-192.0.2.255 . icmp;192.0.2.8-192.0.2.255 . tcp . 0-65535;"
		"2001:db8:0:1::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff . tcp . 0-65535;"
		"2001:db8:0:1::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff . ipv6-icmp");
	plan = plan_free(plan);

	/* by default the 7 ICMP points below the hole become exact entries; the
	 * 7 x 65536 TCP points stay a range */
	plan = compile(pols, 1, eps, 1, NULL);
	if (!plan)
		goto out;
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS),
		"192.0.2.0 . icmp;192.0.2.0-192.0.2.6 . tcp . 0-65535;192.0.2.1 . icmp;"
		"192.0.2.2 . icmp;192.0.2.3 . icmp;192.0.2.4 . icmp;192.0.2.5 . icmp;"
		"192.0.2.6 . icmp;"
		"192.0.2.8-192.0.2.255 . icmp;192.0.2.8-192.0.2.255 . tcp . 0-65535;"
		"2001:db8:0:1::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff . tcp . 0-65535;"
		"2001:db8:0:1::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff . ipv6-icmp");
	plan = plan_free(plan);
out:
	t_teardown();
}

static void test_merge_and_disjoint(void)
{
	struct mseg_endpoint *eps[3];
	struct mseg_policy *pols[1];
	struct mseg_plan *plan;
	struct mseg_port a[1] = { TCP(80, 90) }, b[1] = { TCP(85, 100) }, c[2] = { TCP(80, 80),
										    TCP(81, 81) };
	struct mseg_port any[1] = { port(0, 0, 0) }, tcp443 = TCP(443, 443);

	t_setup();
	eps[0] = ep_new("db", "shop", "app=db", "10.0.0.9");
	eps[1] = ep_new("c1", "shop", "app=c", "10.0.1.1");
	eps[2] = ep_new("c2", "shop", "app=c", "10.0.1.2");
	pols[0] = pol_new("p", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[0], peer_eps("shop", "app=db"));
	/* same addresses, overlapping port ranges: one box 80-100 */
	pol_allow(pols[0], peer_cidrs("10.1.0.0/24", NULL), peer_eps("shop", "app=db"), a, 1);
	pol_allow(pols[0], peer_cidrs("10.1.0.0/24", NULL), peer_eps("shop", "app=db"), b, 1);
	/* overlapping addresses, different ports: made disjoint */
	pol_allow(pols[0], peer_cidrs("10.2.0.0/24", NULL), peer_eps("shop", "app=db"), a, 1);
	pol_allow(pols[0], peer_cidrs("10.2.0.128/25", NULL), peer_eps("shop", "app=db"), b, 1);
	/* adjacent single addresses and ports stay single (hash set) */
	pol_allow(pols[0], peer_eps("shop", "app=c"), peer_eps("shop", "app=db"), c, 2);
	/* adjacent cidrs merge */
	pol_allow(pols[0], peer_cidrs("10.3.0.0/25,10.3.0.128/25", NULL),
		  peer_eps("shop", "app=db"), &tcp443, 1);
	/* covered by an every-protocol range: dropped */
	pol_allow(pols[0], peer_cidrs("10.4.0.0/16", NULL), peer_eps("shop", "app=db"), any, 1);
	pol_allow(pols[0], peer_cidrs("10.4.3.0/24", NULL), peer_eps("shop", "app=db"), &tcp443, 1);

	plan = compile(pols, 1, eps, 3, NULL);
	if (!plan)
		goto out;
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS),
		"10.0.1.1 . tcp . 80;10.0.1.1 . tcp . 81;10.0.1.2 . tcp . 80;10.0.1.2 . tcp . 81;"
		"10.1.0.0/24 . tcp . 80-100;"
		"10.2.0.0/24 . tcp . 80-90;"
		"10.2.0.128/25 . tcp . 91-100;"
		"10.3.0.0/24 . tcp . 443;"
		"10.4.0.0/16");
	plan = plan_free(plan);
out:
	t_teardown();
}

static void test_named_ports(void)
{
	struct mseg_endpoint *eps[4];
	struct mseg_policy *pols[1];
	struct mseg_plan *plan;
	struct mseg_port http = named("http", IPPROTO_TCP);

	t_setup();
	eps[0] = ep_new("web-1", "shop", "app=web", "10.0.0.1");
	eps[1] = ep_new("web-2", "shop", "app=web", "10.0.0.2");
	eps[2] = ep_new("web-3", "shop", "app=web", "10.0.0.3");
	eps[3] = ep_new("cli", "shop", "app=cli", "10.0.0.4");
	ep_port(eps[0], "http", IPPROTO_TCP, 8080);
	ep_port(eps[1], "http", IPPROTO_TCP, 9090);
	ep_port(eps[2], "http", IPPROTO_UDP, 9090); /* wrong protocol: unresolved */
	pols[0] = pol_new("p", MSEG_MODE_ENFORCE, MSEG_ISO_BOTH);
	pol_subject(pols[0], peer_eps("shop", ""));
	pol_allow(pols[0], peer_eps("shop", "app=cli"), peer_eps("shop", "app=web"), &http, 1);
	/* an address group has no named ports: egress to it resolves nothing */
	pol_rule(pols[0], MSEG_DIR_EGRESS, peer_eps("shop", "app=cli"),
		 peer_cidrs("192.0.2.0/24", NULL), &http, 1);
	/* ingress from an address group resolves on the local endpoint */
	pol_rule(pols[0], MSEG_DIR_INGRESS, peer_eps("shop", "app=web"),
		 peer_cidrs("192.0.2.0/24", NULL), &http, 1);

	plan = compile(pols, 1, eps, 4, NULL);
	if (!plan)
		goto out;
	T_STREQ(dir_text(plan, "web-1", MSEG_DIR_INGRESS),
		"10.0.0.4 . tcp . 8080;192.0.2.0/24 . tcp . 8080");
	T_STREQ(dir_text(plan, "web-2", MSEG_DIR_INGRESS),
		"10.0.0.4 . tcp . 9090;192.0.2.0/24 . tcp . 9090");
	T_STREQ(dir_text(plan, "web-3", MSEG_DIR_INGRESS), "");
	T_STREQ(dir_text(plan, "cli", MSEG_DIR_EGRESS), "10.0.0.1 . tcp . 8080;10.0.0.2 . tcp . 9090");
	plan = plan_free(plan);
out:
	t_teardown();
}

static void test_provenance(void)
{
	struct mseg_endpoint *eps[2];
	struct mseg_policy *pols[2];
	struct mseg_plan *plan;
	struct mseg_port p80 = TCP(80, 80), r = TCP(70, 90);
	const struct mseg_dir_plan *dp;

	t_setup();
	eps[0] = ep_new("db", "shop", "app=db", "10.0.0.9");
	eps[1] = ep_new("api", "shop", "app=api", "10.0.0.5");
	pols[0] = pol_new("first", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pols[1] = pol_new("second", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[1], peer_eps("shop", "app=db"));
	pol_rule(pols[1], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"), peer_eps("shop", "app=api"),
		 &p80, 1);
	pol_rule(pols[0], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"), peer_cidrs("10.9.0.0/16", NULL),
		 &p80, 1);
	pol_rule(pols[0], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"), peer_eps("shop", "app=api"),
		 &r, 1);
	pol_rule(pols[0], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"), peer_eps("shop", "app=api"),
		 &p80, 1);

	plan = compile(pols, 2, eps, 2, NULL);
	if (!plan)
		goto out;
	dp = &plan_ep(plan, "db")->dir[MSEG_DIR_INGRESS];
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS),
		"10.0.0.5 . tcp . 70-90;10.9.0.0/16 . tcp . 80");
	T_CHECK(dp->n_entries == 2, "2 entries");
	if (dp->n_entries == 2) {
		/* 10.0.0.5 70-90 from (0,1), (0,2) and (1,0): the lowest */
		T_CHECK(dp->entries[0].policy == 0 && dp->entries[0].rule == 1, "prov %u/%u",
			dp->entries[0].policy, dp->entries[0].rule);
		T_CHECK(dp->entries[1].policy == 0 && dp->entries[1].rule == 0, "prov %u/%u",
			dp->entries[1].policy, dp->entries[1].rule);
	}
	plan = plan_free(plan);
out:
	t_teardown();
}

/* ---- expansion of small boxes into exact entries ------------------------ */

static size_t count_shape(const struct mseg_dir_plan *dp, enum entry_shape shape)
{
	size_t n = 0;

	for (size_t i = 0; i < dp->n_entries; i++)
		n += entry_shape(&dp->entries[i]) == shape;
	return n;
}

/* Entries of one (family, protocol) pairwise disjoint, and every entry of a
 * hash shape exact. */
static void check_disjoint(const struct mseg_dir_plan *dp)
{
	for (size_t i = 0; i < dp->n_entries; i++) {
		const struct mseg_entry *a = &dp->entries[i];
		enum entry_shape s = entry_shape(a);

		if (s == SHAPE_PORT || s == SHAPE_PROTO || s == SHAPE_ANY)
			T_CHECK(addr_val(&a->lo) == addr_val(&a->hi) && a->port_lo == a->port_hi,
				"entry %zu exact", i);
		for (size_t j = i + 1; j < dp->n_entries; j++) {
			const struct mseg_entry *b = &dp->entries[j];

			if (a->lo.family != b->lo.family || a->proto != b->proto)
				continue;
			T_CHECK(!(addr_val(&a->lo) <= addr_val(&b->hi) &&
				  addr_val(&b->lo) <= addr_val(&a->hi) && a->port_lo <= b->port_hi &&
				  b->port_lo <= a->port_hi),
				"entries %zu and %zu overlap", i, j);
		}
	}
}

static void test_expand_threshold(void)
{
	struct mseg_endpoint *eps[3];
	struct mseg_policy *pols[1];
	struct mseg_plan *plan;
	struct mseg_port p16 = TCP(9000, 9015), p17 = TCP(9000, 9016), p443 = TCP(443, 443);
	struct mseg_port p4 = TCP(20, 23), p5 = TCP(20, 24), any = port(0, 0, 0);
	struct mseg_port icmp6 = port(IPPROTO_ICMPV6, 0, 0);
	const struct mseg_dir_plan *dp;
	char want[4096];
	size_t off = 0;

	t_setup();
	eps[0] = ep_new("db", "shop", "app=db", "10.0.0.9");
	eps[1] = ep_new("a", "shop", "app=a", "10.0.0.5");
	eps[2] = ep_new("b", "shop", "app=b", "10.0.0.6");
	pols[0] = pol_new("p", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[0], peer_eps("shop", "app=db"));
	/* one address x 16 ports: expanded; x 17 ports: a range */
	pol_allow(pols[0], peer_eps("shop", "app=a"), peer_eps("shop", "app=db"), &p16, 1);
	pol_allow(pols[0], peer_eps("shop", "app=b"), peer_eps("shop", "app=db"), &p17, 1);
	/* a /28 x 1 port = 16: expanded; a /27 x 1 port: a range */
	pol_allow(pols[0], peer_cidrs("192.0.2.0/28", NULL), peer_eps("shop", "app=db"), &p443, 1);
	pol_allow(pols[0], peer_cidrs("198.51.100.0/27", NULL), peer_eps("shop", "app=db"), &p443, 1);
	/* a /30 x 4 ports = 16: expanded; a /30 x 5 ports = 20: a range */
	pol_allow(pols[0], peer_cidrs("203.0.113.0/30", NULL), peer_eps("shop", "app=db"), &p4, 1);
	pol_allow(pols[0], peer_cidrs("203.0.113.8/30", NULL), peer_eps("shop", "app=db"), &p5, 1);
	/* IPv6: a /124 of every protocol and of ICMPv6 = 16 addresses: expanded;
	 * a /123: a range; the whole space: a range (no overflow) */
	pol_allow(pols[0], peer_cidrs("2001:db8::/124", NULL), peer_eps("shop", "app=db"), &any, 1);
	pol_allow(pols[0], peer_cidrs("2001:db8:1::/124", NULL), peer_eps("shop", "app=db"), &icmp6,
		  1);
	pol_allow(pols[0], peer_cidrs("2001:db8:2::/123", NULL), peer_eps("shop", "app=db"), &any, 1);
	pol_allow(pols[0], peer_cidrs("::/0", NULL), peer_eps("shop", "app=db"), &p443, 1);

	plan = compile(pols, 1, eps, 3, NULL);
	if (!plan)
		goto out;
	dp = &plan_ep(plan, "db")->dir[MSEG_DIR_INGRESS];
	for (int p = 9000; p <= 9015; p++)
		off += (size_t)snprintf(want + off, sizeof(want) - off, "10.0.0.5 . tcp . %d;", p);
	off += (size_t)snprintf(want + off, sizeof(want) - off, "10.0.0.6 . tcp . 9000-9016;");
	for (int a = 0; a < 16; a++)
		off += (size_t)snprintf(want + off, sizeof(want) - off, "192.0.2.%d . tcp . 443;", a);
	off += (size_t)snprintf(want + off, sizeof(want) - off, "198.51.100.0/27 . tcp . 443;");
	for (int a = 0; a < 4; a++)
		for (int p = 20; p <= 23; p++)
			off += (size_t)snprintf(want + off, sizeof(want) - off,
						"203.0.113.%d . tcp . %d;", a, p);
	off += (size_t)snprintf(want + off, sizeof(want) - off, "203.0.113.8/30 . tcp . 20-24;");
	off += (size_t)snprintf(want + off, sizeof(want) - off, "::/0 . tcp . 443;");
	/* (2001:db8::0 prints as 2001:db8::) */
	off += (size_t)snprintf(want + off, sizeof(want) - off, "2001:db8::;");
	for (int a = 1; a < 16; a++)
		off += (size_t)snprintf(want + off, sizeof(want) - off, "2001:db8::%x;", a);
	off += (size_t)snprintf(want + off, sizeof(want) - off, "2001:db8:1:: . ipv6-icmp;");
	for (int a = 1; a < 16; a++)
		off += (size_t)snprintf(want + off, sizeof(want) - off,
					"2001:db8:1::%x . ipv6-icmp;", a);
	snprintf(want + off, sizeof(want) - off, "2001:db8:2::/123");
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS), want);
	T_CHECK(count_shape(dp, SHAPE_PORT) == 16 + 16 + 16, "%zu exact port entries",
		count_shape(dp, SHAPE_PORT));
	T_CHECK(count_shape(dp, SHAPE_PORT_IV) == 4, "%zu port intervals",
		count_shape(dp, SHAPE_PORT_IV));
	T_CHECK(count_shape(dp, SHAPE_PROTO) == 16 && count_shape(dp, SHAPE_PROTO_IV) == 0,
		"icmpv6 exact");
	T_CHECK(count_shape(dp, SHAPE_ANY) == 16 && count_shape(dp, SHAPE_ANY_IV) == 1,
		"any: 16 exact, 1 interval");
	check_disjoint(dp);
	plan = plan_free(plan);

	/* the switch off: nothing expanded */
	plan = compile(pols, 1, eps, 3, &no_expand);
	if (!plan)
		goto out;
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS),
		"10.0.0.5 . tcp . 9000-9015;10.0.0.6 . tcp . 9000-9016;192.0.2.0/28 . tcp . 443;"
		"198.51.100.0/27 . tcp . 443;203.0.113.0/30 . tcp . 20-23;"
		"203.0.113.8/30 . tcp . 20-24;::/0 . tcp . 443;2001:db8::/124;"
		"2001:db8:1::/124 . ipv6-icmp;2001:db8:2::/123");
	plan = plan_free(plan);

	/* a threshold of one point is the same as off */
	{
		struct compile_opts one = { .expand_max = 1 };

		plan = compile(pols, 1, eps, 3, &one);
		if (!plan)
			goto out;
		T_CHECK(plan_ep(plan, "db")->dir[MSEG_DIR_INGRESS].n_entries == 10, "1: off");
		plan = plan_free(plan);
	}

	/* another threshold: 20 expands the /30 x 5 ports too, 32 also the /27
	 * and the /123 */
	{
		struct compile_opts o = { .expand_max = 20 };

		plan = compile(pols, 1, eps, 3, &o);
		if (!plan)
			goto out;
		dp = &plan_ep(plan, "db")->dir[MSEG_DIR_INGRESS];
		T_CHECK(count_shape(dp, SHAPE_PORT) == 16 + 17 + 16 + 16 + 20, "20: %zu exact",
			count_shape(dp, SHAPE_PORT));
		T_CHECK(count_shape(dp, SHAPE_PORT_IV) == 2, "20: /27 and ::/0 stay ranges");
		check_disjoint(dp);
		plan = plan_free(plan);
		o.expand_max = 32;
		plan = compile(pols, 1, eps, 3, &o);
		if (!plan)
			goto out;
		dp = &plan_ep(plan, "db")->dir[MSEG_DIR_INGRESS];
		T_CHECK(count_shape(dp, SHAPE_PORT_IV) == 1 && count_shape(dp, SHAPE_ANY_IV) == 0 &&
				count_shape(dp, SHAPE_ANY) == 16 + 32,
			"32: only ::/0 stays a range");
		check_disjoint(dp);
		plan = plan_free(plan);
	}
out:
	t_teardown();
}

/* Each expanded entry keeps the provenance of its box; points that an
 * every-protocol range already admits are dropped like covered boxes. */
static void test_expand_provenance_and_cover(void)
{
	struct mseg_endpoint *eps[2];
	struct mseg_policy *pols[2];
	struct mseg_plan *plan;
	struct mseg_port p80 = TCP(80, 80), r = TCP(80, 83), any = port(0, 0, 0);
	const struct mseg_dir_plan *dp;

	t_setup();
	eps[0] = ep_new("db", "shop", "app=db", "10.0.0.9");
	eps[1] = ep_new("api", "shop", "app=api", "10.0.0.5");
	pols[0] = pol_new("first", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pols[1] = pol_new("second", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[1], peer_eps("shop", "app=db"));
	/* (1,0): api on 80-83; (0,0): api on 80, lower: the merged box is (0,0) */
	pol_rule(pols[1], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"), peer_eps("shop", "app=api"),
		 &r, 1);
	pol_rule(pols[0], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"), peer_eps("shop", "app=api"),
		 &p80, 1);
	/* (1,1): a /29 on port 80, half of it inside (0,1)'s every-protocol /30 */
	pol_rule(pols[1], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"),
		 peer_cidrs("192.0.2.0/29", NULL), &p80, 1);
	pol_rule(pols[0], MSEG_DIR_INGRESS, peer_eps("shop", "app=db"),
		 peer_cidrs("192.0.2.4/30", NULL), &any, 1);

	plan = compile(pols, 2, eps, 2, NULL);
	if (!plan)
		goto out;
	dp = &plan_ep(plan, "db")->dir[MSEG_DIR_INGRESS];
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS),
		"10.0.0.5 . tcp . 80;10.0.0.5 . tcp . 81;10.0.0.5 . tcp . 82;10.0.0.5 . tcp . 83;"
		"192.0.2.0 . tcp . 80;192.0.2.1 . tcp . 80;192.0.2.2 . tcp . 80;"
		"192.0.2.3 . tcp . 80;"
		"192.0.2.4;192.0.2.5;192.0.2.6;192.0.2.7");
	T_CHECK(dp->n_entries == 12, "12 entries");
	for (size_t i = 0; i < dp->n_entries && dp->n_entries == 12; i++) {
		unsigned want_pol = i < 4 ? 0 : i < 8 ? 1 : 0, want_rule = i < 4 ? 0 : 1;

		T_CHECK(dp->entries[i].policy == want_pol && dp->entries[i].rule == want_rule,
			"entry %zu: prov %u/%u, want %u/%u", i, dp->entries[i].policy,
			dp->entries[i].rule, want_pol, want_rule);
	}
	check_disjoint(dp);
	plan = plan_free(plan);
out:
	t_teardown();
}

/* The point count: exact at the threshold, no overflow on IPv6 ranges. */
static void test_box_points(void)
{
	box_u128 two64 = (box_u128)1 << 64;
	struct box b = { .lo = 100, .hi = 115, .plo = 0, .phi = 0 };

	T_CHECK(box_points_at_most(&b, false, 16), "16 addresses <= 16");
	T_CHECK(!box_points_at_most(&b, false, 15), "16 addresses > 15");
	T_CHECK(!box_points_at_most(&b, false, 0), "0: nothing");
	b.plo = 80;
	b.phi = 80;
	T_CHECK(box_points_at_most(&b, true, 16), "16 x 1 port");
	b.phi = 81;
	T_CHECK(!box_points_at_most(&b, true, 16) && box_points_at_most(&b, true, 32),
		"16 x 2 ports = 32");
	T_CHECK(box_points_at_most(&b, false, 16), "ports ignored when port-less");
	b.hi = b.lo;
	b.plo = 0;
	b.phi = 65535;
	T_CHECK(box_points_at_most(&b, true, 65536) && !box_points_at_most(&b, true, 65535),
		"every port of one address");
	b.lo = 0;
	b.hi = BOX_U128_MAX;
	T_CHECK(!box_points_at_most(&b, false, SIZE_MAX) && !box_points_at_most(&b, true, SIZE_MAX),
		"the whole IPv6 space");
	b.lo = two64;
	b.hi = two64 + two64 - 1;          /* 2^64 addresses, one more than SIZE_MAX */
	T_CHECK(!box_points_at_most(&b, false, SIZE_MAX), "2^64 addresses");
	b.hi--;                            /* 2^64 - 1 */
	T_CHECK(box_points_at_most(&b, false, SIZE_MAX), "2^64 - 1 addresses");
	T_CHECK(!box_points_at_most(&b, true, SIZE_MAX), "(2^64 - 1) x 65536 ports: no overflow");
	b.lo = BOX_U128_MAX - 15;
	b.hi = BOX_U128_MAX;
	b.plo = b.phi = 7;
	T_CHECK(box_points_at_most(&b, true, 16) && !box_points_at_most(&b, true, 15),
		"the top of the space");
}

/* ---- random tests ------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* Point membership in an output entry. */
static bool entry_has(const struct mseg_entry *e, int family, box_u128 a, uint8_t proto,
		      uint16_t port)
{
	if (e->lo.family != family || addr_val(&e->lo) > a || addr_val(&e->hi) < a)
		return false;
	if (e->proto == 0)
		return true;
	if (e->proto != proto)
		return false;
	return !proto_has_ports(proto) || (e->port_lo <= port && port <= e->port_hi);
}

static bool cidr_has(const struct mseg_cidr *c, int family, box_u128 a)
{
	unsigned bits = family == AF_INET ? 32 : 128;
	unsigned host = bits - c->plen;
	box_u128 mask = host >= 128 ? ~(box_u128)0 : ((box_u128)1 << host) - 1;

	return c->addr.family == family && (addr_val(&c->addr) & ~mask) == (a & ~mask);
}

/* Point membership in the rules' raw boxes (ADDRS peers only). */
static bool rules_have(const struct mseg_policy *p, int family, box_u128 a, uint8_t proto,
		       uint16_t port)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct mseg_rule *r = &p->rules[i];
		const struct mseg_peer *pe = &r->peers[0];
		bool in = false, port_ok = false;

		for (size_t k = 0; k < pe->n_cidrs && !in; k++)
			in = cidr_has(&pe->cidrs[k], family, a);
		for (size_t k = 0; k < pe->n_except && in; k++)
			in = !cidr_has(&pe->except[k], family, a);
		if (!in)
			continue;
		for (size_t k = 0; k < r->n_ports && !port_ok; k++) {
			const struct mseg_port *q = &r->ports[k];

			if (q->proto == 0)
				port_ok = true;
			else if (q->proto == proto)
				port_ok = !proto_has_ports(proto) || (q->lo <= port && port <= q->hi);
		}
		if (port_ok)
			return true;
	}
	return false;
}

static struct mseg_cidr rnd_cidr(int family)
{
	struct mseg_cidr c = { 0 };
	unsigned bits = family == AF_INET ? 32 : 128;
	box_u128 v, mask;
	unsigned host;

	c.addr.family = (uint8_t)family;
	/* a small address space so that boxes overlap a lot */
	c.plen = (uint8_t)(bits - rnd_below(7));
	v = family == AF_INET ? (box_u128)0x0a000000 + rnd_below(256)
			      : ((box_u128)0xfd00 << 112) + rnd_below(256);
	host = bits - c.plen;
	mask = ((box_u128)1 << host) - 1;
	v &= ~mask;
	for (unsigned i = bits / 8; i-- > 0;) {
		c.addr.bytes[i] = (uint8_t)v;
		v >>= 8;
	}
	return c;
}

static struct mseg_port rnd_port(void)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, 0 };
	uint8_t proto = protos[rnd_below(9) % 5];
	uint16_t lo, hi;

	if (rnd_below(4) == 0)
		proto = IPPROTO_TCP;
	if (!proto_has_ports(proto))
		return port(proto, 0, 0);
	lo = (uint16_t)(1000 + rnd_below(40));
	hi = rnd_below(3) ? lo : (uint16_t)(lo + rnd_below(20));
	return port(proto, lo, hi);
}

static void check_disjoint_and_cover(const struct mseg_policy *pol, const struct mseg_dir_plan *dp)
{
	/* pairwise disjoint within (family, protocol) */
	for (size_t i = 0; i < dp->n_entries; i++) {
		for (size_t j = i + 1; j < dp->n_entries; j++) {
			const struct mseg_entry *a = &dp->entries[i], *b = &dp->entries[j];
			bool ov;

			if (a->lo.family != b->lo.family || a->proto != b->proto)
				continue;
			ov = addr_val(&a->lo) <= addr_val(&b->hi) && addr_val(&b->lo) <= addr_val(&a->hi) &&
			     a->port_lo <= b->port_hi && b->port_lo <= a->port_hi;
			T_CHECK(!ov, "entries %zu and %zu overlap", i, j);
		}
	}
	/* exact cover, by sampling points around every boundary and at random */
	for (int k = 0; k < 4000; k++) {
		int family = rnd_below(2) ? AF_INET : AF_INET6;
		box_u128 base = family == AF_INET ? 0x0a000000 : (box_u128)0xfd00 << 112;
		box_u128 a = base + rnd_below(300) - 10;
		static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP,
						  IPPROTO_ICMPV6, IPPROTO_SCTP };
		uint8_t proto = protos[rnd_below(5)];
		uint16_t pt = (uint16_t)(995 + rnd_below(70));
		bool want = rules_have(pol, family, a, proto, pt), got = false;

		if ((proto == IPPROTO_ICMP && family == AF_INET6) ||
		    (proto == IPPROTO_ICMPV6 && family == AF_INET))
			continue; /* dropped on purpose */
		for (size_t i = 0; i < dp->n_entries && !got; i++)
			got = entry_has(&dp->entries[i], family, a, proto, pt);
		if (want != got) {
			T_CHECK(want == got, "point %s proto %u port %u: want %d got %d",
				family == AF_INET ? "v4" : "v6", proto, pt, want, got);
			break;
		}
	}
}

static void test_random_disjoint(void)
{
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (int round = 0; round < 60 && !t_case_failed; round++) {
		struct mseg_endpoint *eps[1];
		struct mseg_policy *pols[1];
		struct mseg_plan *plan;
		unsigned n_rules = 1 + rnd_below(30);

		t_setup();
		eps[0] = ep_new("x", "ns", "app=x", "10.255.0.1");
		pols[0] = pol_new("p", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
		pol_subject(pols[0], peer_eps("ns", "app=x"));
		for (unsigned i = 0; i < n_rules; i++) {
			struct mseg_peer pe = peer_cidrs("10.0.0.0/32", NULL);
			struct mseg_port ports[3];
			unsigned np = 1 + rnd_below(3);

			pe.n_cidrs = 0;
			for (unsigned k = 1 + rnd_below(3); k > 0; k--)
				pe.cidrs[pe.n_cidrs++] = rnd_cidr(rnd_below(2) ? AF_INET : AF_INET6);
			for (unsigned k = rnd_below(3); k > 0; k--)
				pe.except[pe.n_except++] = rnd_cidr(rnd_below(2) ? AF_INET : AF_INET6);
			for (unsigned k = 0; k < np; k++)
				ports[k] = rnd_port();
			pol_rule(pols[0], MSEG_DIR_INGRESS, peer_eps("ns", "app=x"), pe, ports, np);
		}
		/* default expansion, none, and a larger threshold: the same points,
		 * disjoint entries, no interval entry small enough to expand */
		for (int k = 0; k < 3; k++) {
			static const size_t maxes[] = { 0, COMPILE_EXPAND_OFF, 64 };
			struct compile_opts o = { .expand_max = maxes[k] };
			size_t max = k == 0 ? COMPILE_EXPAND_MAX : maxes[k];
			const struct mseg_dir_plan *dp;

			plan = compile(pols, 1, eps, 1, &o);
			if (!plan)
				break;
			dp = &plan->eps[0].dir[MSEG_DIR_INGRESS];
			check_disjoint_and_cover(pols[0], dp);
			check_disjoint(dp);
			for (size_t i = 0; max != COMPILE_EXPAND_OFF && i < dp->n_entries; i++) {
				const struct mseg_entry *e = &dp->entries[i];
				struct box b = { .lo = addr_val(&e->lo), .hi = addr_val(&e->hi),
						 .plo = e->port_lo, .phi = e->port_hi };

				enum entry_shape sh = entry_shape(e);

				T_CHECK(sh == SHAPE_PORT || sh == SHAPE_PROTO || sh == SHAPE_ANY ||
						!box_points_at_most(&b, proto_has_ports(e->proto), max),
					"round %d max %zu: entry %zu small but a range", round, max, i);
			}
			plan = plan_free(plan);
		}
		t_teardown();
	}
}

/* box_normalize() directly, with IPv6-wide ranges and the address extremes. */
static void test_boxes_direct(void)
{
	struct box_ws *ws = box_ws_new();
	struct box in[64], copy[64];
	const struct box *out;
	size_t n_out;

	rng_state = 12345;
	T_CHECK(ws != NULL, "ws");
	for (int round = 0; ws && round < 300 && !t_case_failed; round++) {
		size_t n = 1 + rnd_below(40);

		for (size_t i = 0; i < n; i++) {
			box_u128 lo = rnd_below(4) == 0 ? BOX_U128_MAX - rnd_below(50) : rnd_below(60);
			box_u128 w = rnd_below(3) ? 0 : rnd_below(30);

			if (rnd_below(20) == 0)
				lo = 0, w = BOX_U128_MAX;
			in[i].lo = lo;
			in[i].hi = lo + w < lo ? BOX_U128_MAX : lo + w;
			in[i].plo = (uint16_t)(rnd_below(4) == 0 ? 65535 - rnd_below(5) : rnd_below(30));
			in[i].phi = rnd_below(2) ? in[i].plo
						 : (uint16_t)(in[i].plo + rnd_below(65535 - in[i].plo + 1));
			in[i].prov = BOX_PROV(rnd_below(3), rnd_below(3));
		}
		memcpy(copy, in, n * sizeof(*in));
		T_CHECK(box_normalize(ws, in, n, true, &out, &n_out) == 0, "normalize");
		for (size_t i = 0; i < n_out; i++) {
			T_CHECK(out[i].lo <= out[i].hi && out[i].plo <= out[i].phi, "well formed");
			for (size_t j = i + 1; j < n_out; j++)
				T_CHECK(!(out[i].lo <= out[j].hi && out[j].lo <= out[i].hi &&
					  out[i].plo <= out[j].phi && out[j].plo <= out[i].phi),
					"overlap %zu %zu", i, j);
		}
		for (int k = 0; k < 500; k++) {
			box_u128 a = rnd_below(2) ? rnd_below(100) : BOX_U128_MAX - rnd_below(60);
			uint16_t p = (uint16_t)(rnd_below(2) ? rnd_below(40) : 65535 - rnd_below(8));
			bool want = false, got = false;
			uint64_t want_prov = UINT64_MAX, got_prov = UINT64_MAX;

			for (size_t i = 0; i < n; i++)
				if (copy[i].lo <= a && a <= copy[i].hi && copy[i].plo <= p &&
				    p <= copy[i].phi) {
					want = true;
					if (copy[i].prov < want_prov)
						want_prov = copy[i].prov;
				}
			for (size_t i = 0; i < n_out; i++)
				if (out[i].lo <= a && a <= out[i].hi && out[i].plo <= p &&
				    p <= out[i].phi) {
					got = true;
					got_prov = out[i].prov;
				}
			T_CHECK(want == got, "cover at %u", p);
			/* a merged box carries the lowest provenance of what it merged */
			T_CHECK(!got || got_prov <= want_prov, "provenance");
			if (want != got)
				break;
		}
	}
	box_ws_free(ws);
}

static void shuffle(void **v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd_below((unsigned)i);
		void *t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static bool plans_equal(const struct mseg_plan *a, const struct mseg_plan *b)
{
	if (a->n_eps != b->n_eps)
		return false;
	for (size_t i = 0; i < a->n_eps; i++) {
		const struct mseg_ep_plan *x = &a->eps[i], *y = &b->eps[i];

		if (x->ep != y->ep)
			return false;
		for (int d = 0; d < 2; d++) {
			if (x->dir[d].isolated != y->dir[d].isolated || x->dir[d].mode != y->dir[d].mode ||
			    x->dir[d].n_entries != y->dir[d].n_entries)
				return false;
			if (x->dir[d].n_entries &&
			    memcmp(x->dir[d].entries, y->dir[d].entries,
				   x->dir[d].n_entries * sizeof(*x->dir[d].entries)) != 0)
				return false;
		}
	}
	return true;
}

static void test_determinism(void)
{
	struct mseg_endpoint *eps[40];
	struct mseg_policy *pols[3];
	struct mseg_plan *first, *again;
	char id[32], labels[32], ips[64];

	t_setup();
	rng_state = 777;
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "ep-%02d", i);
		snprintf(labels, sizeof(labels), "app=a%d", i % 5);
		snprintf(ips, sizeof(ips), "10.0.%d.%d,fd00::%x", i % 3, i, i);
		eps[i] = ep_new(id, "ns", labels, ips);
		ep_port(eps[i], "http", IPPROTO_TCP, (uint16_t)(8000 + i % 2));
	}
	for (int p = 0; p < 3; p++) {
		pols[p] = pol_new(p ? "b" : "a", p == 1 ? MSEG_MODE_AUDIT : MSEG_MODE_ENFORCE,
				  MSEG_ISO_BOTH);
		for (int k = 0; k < 2; k++) {
			snprintf(labels, sizeof(labels), "app=a%u", rnd_below(5));
			pol_subject(pols[p], peer_eps("ns", labels));
		}
		for (int k = 0; k < 10; k++) {
			char from[32], to[32];
			struct mseg_port ports[2] = { rnd_port(), named("http", IPPROTO_TCP) };

			snprintf(from, sizeof(from), "app=a%u", rnd_below(5));
			snprintf(to, sizeof(to), "app=a%u", rnd_below(5));
			pol_allow(pols[p], peer_eps("ns", from), peer_eps("ns", to), ports,
				  1 + rnd_below(2));
			if (k % 4 == 0)
				pol_allow(pols[p], peer_cidrs("10.0.0.0/22,fd00::/120", "10.0.1.0/24"),
					  peer_eps("ns", to), ports, 1);
		}
	}
	first = compile(pols, 3, eps, 40, NULL);
	for (int round = 0; first && round < 10; round++) {
		shuffle((void **)eps, 40);
		/* the order of an endpoint's addresses does not matter either */
		for (int i = 0; i < 40; i++)
			if (rnd_below(2)) {
				struct mseg_addr t = eps[i]->ips[0];

				eps[i]->ips[0] = eps[i]->ips[1];
				eps[i]->ips[1] = t;
			}
		again = compile(pols, 3, eps, 40, NULL);
		T_CHECK(again && plans_equal(first, again), "round %d differs", round);
		again = plan_free(again);
	}
	plan_free(first);
	t_teardown();
}

static char *render(const struct mseg_plan *plan, const struct table_opts *opts)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	T_CHECK(table_text_render_plan(f, plan, opts) == 0, "render");
	fclose(f);
	return buf;
}

/* ---- Services: an egress allow to a backend also admits the VIPs -------- */

static struct mseg_svc_route route(const char *vip, uint16_t port, const char *backend,
				   uint16_t bport)
{
	return (struct mseg_svc_route){ .vip = ip(vip), .backend = ip(backend),
					.proto = IPPROTO_TCP, .port = port, .backend_port = bport };
}

static void test_services(void)
{
	struct mseg_endpoint *eps[4];
	struct mseg_policy *pols[2];
	struct mseg_plan *plan, *bare;
	struct mseg_port p5432 = TCP(5432, 5432), pg = named("pg", IPPROTO_TCP);
	const struct mseg_svc_route routes[] = {
		route("10.96.0.10", 80, "10.0.0.3", 5432),      /* db: allowed */
		route("fd00:96::10", 80, "fd00::3", 5432),      /* db over IPv6 */
		route("10.96.0.11", 80, "10.0.0.4", 5432),      /* other: not allowed */
		route("10.96.0.12", 81, "10.0.0.3", 6000),      /* db, another port */
		route("10.96.0.13", 443, "10.0.0.4", 5432),     /* two backends, one allowed */
		route("10.96.0.13", 443, "10.0.0.3", 5432),
		route("192.0.2.50", 8443, "10.0.0.3", 5432),    /* an external IP */
		route("10.96.0.14", 9000, "10.9.1.1", 9000),    /* behind the CIDR rule */
		route("10.96.0.15", 7000, "10.0.0.3", 7000),    /* the named port (7000) */
	};
	struct compile_opts opts = { .svc_routes = routes,
				     .n_svc_routes = sizeof(routes) / sizeof(routes[0]) };
	const struct mseg_dir_plan *dp;
	char want[1024];

	t_setup();
	eps[0] = ep_new("client", "shop", "app=client", "10.0.0.2,fd00::2");
	eps[1] = ep_new("db", "shop", "app=db", "10.0.0.3,fd00::3");
	eps[2] = ep_new("other", "shop", "app=other", "10.0.0.4");
	eps[3] = ep_new("idle", "shop", "app=idle", "10.0.0.5");
	ep_port(eps[1], "pg", IPPROTO_TCP, 7000);
	pols[0] = pol_new("shop", MSEG_MODE_ENFORCE, MSEG_ISO_BOTH);
	pol_subject(pols[0], peer_eps("shop", "app=client"));
	pol_subject(pols[0], peer_eps("shop", "app=db"));
	pol_subject(pols[0], peer_eps("shop", "app=idle"));
	/* AllowList semantics: {from: client, to: db, ports: [tcp/5432]} */
	pol_allow(pols[0], peer_eps("shop", "app=client"), peer_eps("shop", "app=db"), &p5432, 1);
	pol_allow(pols[0], peer_eps("shop", "app=client"), peer_eps("shop", "app=db"), &pg, 1);
	pols[1] = pol_new("net", MSEG_MODE_ENFORCE, MSEG_ISO_EGRESS);
	pol_rule(pols[1], MSEG_DIR_EGRESS, peer_eps("shop", "app=client"),
		 peer_cidrs("10.9.0.0/16", NULL), &p5432, 0);   /* no ports: every protocol */

	plan = compile(pols, 2, eps, 4, &opts);
	bare = compile(pols, 2, eps, 4, NULL);
	if (!plan || !bare)
		goto out;
	/* the VIP entries next to the backend's, nothing for other's or 6000 */
	snprintf(want, sizeof(want), "%s",
		 "10.0.0.3 . tcp . 5432;10.0.0.3 . tcp . 7000;10.9.0.0/16;"
		 "10.96.0.10 . tcp . 80;10.96.0.13 . tcp . 443;10.96.0.14 . tcp . 9000;"
		 "10.96.0.15 . tcp . 7000;192.0.2.50 . tcp . 8443;"
		 "fd00::3 . tcp . 5432;fd00::3 . tcp . 7000;fd00:96::10 . tcp . 80");
	T_STREQ(dir_text(plan, "client", MSEG_DIR_EGRESS), want);
	T_STREQ(dir_text(bare, "client", MSEG_DIR_EGRESS),
		"10.0.0.3 . tcp . 5432;10.0.0.3 . tcp . 7000;10.9.0.0/16;"
		"fd00::3 . tcp . 5432;fd00::3 . tcp . 7000");
	/* ingress sees the pod address after the node's translation: no VIPs */
	T_STREQ(dir_text(plan, "db", MSEG_DIR_INGRESS), dir_text(bare, "db", MSEG_DIR_INGRESS));
	/* an isolated egress with no rule admits no VIP */
	T_STREQ(dir_text(plan, "idle", MSEG_DIR_EGRESS), "");
	T_STREQ(dir_text(plan, "db", MSEG_DIR_EGRESS), "");
	/* provenance: the rule that admitted the backend */
	dp = &plan_ep(plan, "client")->dir[MSEG_DIR_EGRESS];
	for (size_t i = 0; i < dp->n_entries; i++) {
		char el[RENDER_TEXT_ENTRY_MAX];

		render_text_entry(&dp->entries[i], el, sizeof(el));
		if (strcmp(el, "10.96.0.10 . tcp . 80") == 0)
			T_CHECK(dp->entries[i].policy == 0 && dp->entries[i].rule == 1,
				"VIP from shop's egress rule: %u/%u", dp->entries[i].policy,
				dp->entries[i].rule);
		if (strcmp(el, "10.96.0.14 . tcp . 9000") == 0)
			T_CHECK(dp->entries[i].policy == 1 && dp->entries[i].rule == 0,
				"VIP from the CIDR rule: %u/%u", dp->entries[i].policy,
				dp->entries[i].rule);
	}
	check_disjoint(dp);
	plan = plan_free(plan);
	bare = plan_free(bare);

	/* a backend on the node (its addresses admitted everywhere): the VIP
	 * too, also for an egress without rules */
	{
		struct mseg_addr node = ip("10.0.0.3");

		opts.node_addrs = &node;
		opts.n_node_addrs = 1;
		plan = compile(pols, 2, eps, 4, &opts);
		if (plan)
			T_STREQ(dir_text(plan, "idle", MSEG_DIR_EGRESS),
				"10.0.0.3;10.96.0.10 . tcp . 80;10.96.0.12 . tcp . 81;"
				"10.96.0.13 . tcp . 443;10.96.0.15 . tcp . 7000;"
				"192.0.2.50 . tcp . 8443");
		plan = plan_free(plan);
	}
out:
	plan_free(plan);
	plan_free(bare);
	t_teardown();
}

static void test_render_text(void)
{
	struct mseg_endpoint *eps[3];
	struct mseg_policy *pols[2];
	struct mseg_plan *plan;
	struct mseg_port ports[3] = { TCP(5432, 5432), port(IPPROTO_ICMPV6, 0, 0),
				      port(IPPROTO_UDP, 1000, 2000) };
	struct table_opts opts = { .queue = QUEUE_NATIVE, .queue_num = 3, .rate = 10, .burst = 20 };
	char *text;

	t_setup();
	eps[0] = ep_new("db", "shop", "app=db", "10.0.0.9,fd00::9");
	eps[0]->netns = "/run/netns/db";
	eps[1] = ep_new("api", "shop", "app=api", "10.0.0.5,fd00::5");
	eps[2] = ep_new("free", "shop", "app=free", "10.0.0.7");
	pols[0] = pol_new("p", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[0], peer_eps("shop", "app=db"));
	pol_allow(pols[0], peer_eps("shop", "app=api"), peer_eps("shop", "app=db"), ports, 3);
	pols[1] = pol_new("q", MSEG_MODE_AUDIT, MSEG_ISO_EGRESS);
	pol_subject(pols[1], peer_eps("shop", "app=api"));
	plan = compile(pols, 2, eps, 3, NULL);
	if (!plan)
		goto out;
	text = render(plan, &opts);
	T_CHECK(text != NULL, "text");
	if (text) {
		T_CHECK(strstr(text, "# endpoint api (shop/api) netns -\ntable inet mseg {\n"), "api header");
		T_CHECK(strstr(text, "# endpoint db (shop/db) netns /run/netns/db\ntable inet mseg {\n"
				     "\tlimit flood {\n\t\trate over 10/second burst 20 packets\n\t}\n\n"
				     "\tcounter in_overlimit {\n\t}\n\n"
				     "\tcounter in_invalid {\n\t}\n\n\tset in4_port {\n"),
			"db header");
		T_CHECK(strstr(text, "\t\tct state invalid counter name \"in_invalid\" drop\n"),
			"invalid packets counted");
		T_CHECK(strstr(text, "# endpoint free (shop/free) netns -\n# not isolated: no table\n"),
			"free: no table");
		T_CHECK(strstr(text, "\tset in4_port {\n\t\ttype ipv4_addr . inet_proto . inet_service\n"
				     "\t\telements = {\n\t\t\t10.0.0.5 . tcp . 5432\n\t\t}\n\t}\n"),
			"in4_port");
		/* a single address on a port range: a port-range slot */
		T_CHECK(strstr(text, "\tset in4_range0 {\n\t\ttype ipv4_addr . inet_proto\n"
				     "\t\telements = {\n\t\t\t10.0.0.5 . udp\n"),
			"in4_range0");
		T_CHECK(strstr(text, "\tset in4_range0_ports {\n\t\ttype inet_service\n"
				     "\t\tflags interval\n\t\telements = {\n\t\t\t1000-2000\n"),
			"in4_range0_ports");
		T_CHECK(strstr(text, "\t\tip saddr . meta l4proto @in4_range0 th dport @in4_range0_ports "
				     "goto in4_seen\n"),
			"slot lookup");
		T_CHECK(strstr(text, "\t\t\tfd00::5 . ipv6-icmp\n"), "icmpv6 element");
		T_CHECK(!strstr(text, "10.0.0.5 . ipv6-icmp"), "no icmpv6 over IPv4");
		T_CHECK(strstr(text, "\tset in6_any_iv {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t}\n"),
			"empty sets exist");
		T_CHECK(strstr(text, "\t\tip6 saddr . meta l4proto @in6_proto_iv goto in6_seen\n"),
			"lookup");
		T_CHECK(strstr(text, "\tchain in6_seen {\n\t\tmeta l4proto { tcp, udp, sctp, udplite } "
				     "update @in6_seen_port { ip6 saddr . meta l4proto . th dport }\n"),
			"seen chain");
		T_CHECK(strstr(text, "\tset in4_seen_port {\n\t\ttype ipv4_addr . inet_proto . "
				     "inet_service\n\t\tsize 4096\n\t\tflags dynamic,timeout\n"
				     "\t\tcounter\n"),
			"seen set");
		T_CHECK(strstr(text, "\t\tlimit name \"flood\" counter name \"in_overlimit\" drop\n"
				     "\t\tqueue num 3\n\t}\n}\n"),
			"enforce tail");
		T_CHECK(strstr(text, "\t\toif \"lo\" accept\n"), "egress loopback");
		T_CHECK(strstr(text, "\t\tip daddr @out4_any_iv goto out4_seen\n"), "egress lookup");
		T_CHECK(strstr(text, "\t\tlimit name \"flood\" counter name \"out_overlimit\" accept\n"
				     "\t\tqueue num 3 bypass\n"),
			"audit tail");
		{
			const char *db = strstr(text, "# endpoint db ");
			const char *end = db ? strstr(db, "# endpoint free") : NULL;
			const char *out = db ? strstr(db, "out_overlimit") : NULL;

			T_CHECK(db && end && (!out || out > end), "db has no egress");
		}
		free(text);
	}
	opts.queue = QUEUE_NFLOG;
	opts.queue_num = 0;
	text = render(plan, &opts);
	if (text) {
		T_CHECK(strstr(text, "\t\tlog group 0 drop\n"), "nflog enforce");
		T_CHECK(strstr(text, "\t\tlog group 0 accept\n"), "nflog audit");
		T_CHECK(!strstr(text, "queue"), "no queue");
		free(text);
	}
	plan = plan_free(plan);
out:
	t_teardown();
}

static void test_entry_text(void)
{
	struct mseg_entry e = { 0 };
	char buf[RENDER_TEXT_ENTRY_MAX];

	e.lo = ip("10.0.0.0");
	e.hi = ip("10.255.255.255");
	T_STREQ(render_text_entry(&e, buf, sizeof(buf)), "10.0.0.0/8");
	e.hi = ip("10.0.0.5");
	T_STREQ(render_text_entry(&e, buf, sizeof(buf)), "10.0.0.0-10.0.0.5");
	e.lo = ip("0.0.0.0");
	e.hi = ip("255.255.255.255");
	T_STREQ(render_text_entry(&e, buf, sizeof(buf)), "0.0.0.0/0");
	e.lo = ip("::");
	e.hi = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	e.proto = 47;
	T_STREQ(render_text_entry(&e, buf, sizeof(buf)), "::/0 . 47");
	e.lo = e.hi = ip("fd00::1");
	e.proto = IPPROTO_SCTP;
	e.port_lo = 9;
	e.port_hi = 9;
	T_STREQ(render_text_entry(&e, buf, sizeof(buf)), "fd00::1 . sctp . 9");
	e.proto = IPPROTO_UDPLITE;
	e.port_hi = 10;
	T_STREQ(render_text_entry(&e, buf, sizeof(buf)), "fd00::1 . udplite . 9-10");
	e.lo = ip("10.0.0.1");
	e.hi = ip("10.0.0.2");
	T_STREQ(render_text_entry(&e, buf, sizeof(buf)), "10.0.0.1-10.0.0.2 . udplite . 9-10");
}

/* A plan of 60,000 endpoints, whose per-endpoint array is a mapping (from
 * 4 MiB on), given them in reverse id order: every endpoint in id order
 * with its isolation; with local_only, a plan of the local ones only, in
 * id order, with their entries. */
static void test_large_plan(void)
{
	enum { N = 60000, NS = 100 };
	struct mseg_endpoint **eps;
	struct mseg_policy *pols[1];
	struct mseg_plan *plan;
	struct compile_opts opts = { .local_only = false };
	size_t bad_order = 0, bad_iso = 0, bad_entries = 0, locals = 0, n_netns = 0;
	char id[32], ns[16], addr[32];

	t_setup();
	eps = arena_calloc(&A, N, sizeof(*eps));
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "k8s.ns%d.p-%05d", i % NS, i);
		snprintf(ns, sizeof(ns), "ns%d", i % NS);
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		/* given in reverse: the compile sorts them */
		eps[N - 1 - i] = ep_new(id, ns, i / NS % 2 ? "app=b" : "app=a", addr);
		if (i % 1000 == 1 || i % 1000 == 2) {
			eps[N - 1 - i]->netns = "/run/netns/x";
			n_netns++;
		}
	}
	/* ns1's app=a pods accept ns1's app=b pods on tcp/80 */
	pols[0] = pol_new("a", MSEG_MODE_ENFORCE, MSEG_ISO_INGRESS);
	pol_subject(pols[0], peer_eps("ns1", "app=a"));
	pol_allow(pols[0], peer_eps("ns1", "app=b"), peer_eps("ns1", "app=a"),
		  (struct mseg_port[]){ port(IPPROTO_TCP, 80, 80) }, 1);
	for (int local_only = 0; local_only < 2; local_only++) {
		opts.local_only = local_only;
		bad_order = bad_iso = bad_entries = locals = 0;
		plan = compile(pols, 1, eps, N, &opts);
		T_CHECK(plan && plan->n_eps == (local_only ? n_netns : N), "local_only %d: %zu "
			"endpoints", local_only, plan ? plan->n_eps : 0);
		for (size_t i = 0; plan && i < plan->n_eps; i++) {
			const struct mseg_ep_plan *p = &plan->eps[i];
			bool covered = strcmp(p->ep->ns, "ns1") == 0 &&
				       strcmp(p->ep->labels[0].value, "a") == 0;

			bad_order += i && strcmp(plan->eps[i - 1].ep->id, p->ep->id) >= 0;
			bad_iso += p->dir[MSEG_DIR_INGRESS].isolated != covered ||
				   p->dir[MSEG_DIR_EGRESS].isolated || (local_only && !p->ep->netns);
			/* ns1 has 600 pods, 300 of app=b: one entry each */
			if (covered && (p->ep->netns || !local_only)) {
				locals += p->ep->netns != NULL;
				bad_entries += p->dir[MSEG_DIR_INGRESS].n_entries != N / NS / 2;
			} else {
				bad_entries += p->dir[MSEG_DIR_INGRESS].n_entries != 0;
			}
		}
		T_CHECK(bad_order == 0 && bad_iso == 0, "local_only %d: %zu out of order, %zu wrong",
			local_only, bad_order, bad_iso);
		T_CHECK(locals > 0 && bad_entries == 0, "local_only %d: %zu local in ns1, %zu with "
			"wrong entries", local_only, locals, bad_entries);
		plan_free(plan);
	}
	t_teardown();
}

int main(void)
{
	T_RUN(test_shape_and_proto);
	T_RUN(test_coverage_and_modes);
	T_RUN(test_allow_entries);
	T_RUN(test_union_across_lists);
	T_RUN(test_cidr_except_and_icmp);
	T_RUN(test_merge_and_disjoint);
	T_RUN(test_named_ports);
	T_RUN(test_provenance);
	T_RUN(test_expand_threshold);
	T_RUN(test_expand_provenance_and_cover);
	T_RUN(test_box_points);
	T_RUN(test_random_disjoint);
	T_RUN(test_boxes_direct);
	T_RUN(test_determinism);
	T_RUN(test_services);
	T_RUN(test_render_text);
	T_RUN(test_entry_text);
	T_RUN(test_large_plan);
	return t_exit();
}
