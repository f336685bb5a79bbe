/* check (POST /v1/check, `mseg check`) and compile (what the kernel gets)
 * must agree. For every golden case (tests/golden/CASE: policy, endpoints,
 * args) and for cases of our own, for every ordered pair of endpoints and
 * every protocol/port the policies name (plus some they do not), the
 * verdict of check_decide equals a lookup in the compiled plan: the
 * source's egress entries and the destination's ingress entries, where the
 * direction is isolated. Where a side refuses, check's reason (the policies
 * that isolate it, or --default-deny) must be what made compile isolate it. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mseg/compile/check.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "mseg/model/selector.h"
#include "t.h"

struct probe {
	uint8_t proto;
	uint16_t port;
};

struct tcase {
	char name[128];
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct compile_opts opts;
	struct probe probes[512];
	size_t n_probes;
};

static void probe_add(struct tcase *c, uint8_t proto, uint16_t port)
{
	for (size_t i = 0; i < c->n_probes; i++)
		if (c->probes[i].proto == proto && c->probes[i].port == port)
			return;
	if (c->n_probes < sizeof(c->probes) / sizeof(c->probes[0]))
		c->probes[c->n_probes++] = (struct probe){ proto, port };
}

/* Every protocol and port the policies and the endpoints' named ports
 * name, the ports around each range, and some nobody names. */
static void probes_collect(struct tcase *c)
{
	probe_add(c, IPPROTO_TCP, 1);
	probe_add(c, IPPROTO_UDP, 65535);
	probe_add(c, 47, 0);   /* GRE: no policy names it */
	probe_add(c, 0, 0);    /* "any protocol" */
	for (size_t p = 0; p < c->pols.n; p++) {
		const struct mseg_policy *pol = c->pols.items[p];

		for (size_t r = 0; r < pol->n_rules; r++) {
			for (size_t k = 0; k < pol->rules[r].n_ports; k++) {
				const struct mseg_port *pt = &pol->rules[r].ports[k];

				if (!proto_has_ports(pt->proto) || pt->name) {
					probe_add(c, pt->proto ? pt->proto : IPPROTO_TCP, 0);
					continue;
				}
				probe_add(c, pt->proto, pt->lo);
				probe_add(c, pt->proto, pt->hi);
				if (pt->lo > 0)
					probe_add(c, pt->proto, pt->lo - 1);
				if (pt->hi < 65535)
					probe_add(c, pt->proto, pt->hi + 1);
			}
		}
	}
	for (size_t e = 0; e < c->inv.n; e++)
		for (size_t k = 0; k < c->inv.eps[e]->n_ports; k++)
			probe_add(c, c->inv.eps[e]->ports[k].proto, c->inv.eps[e]->ports[k].port);
}

/* ---- the oracle: a lookup in the plan ---- */

static const struct mseg_addr *addr_of(const struct mseg_endpoint *ep, int family)
{
	for (size_t i = 0; i < ep->n_ips; i++)
		if (ep->ips[i].family == family)
			return &ep->ips[i];
	return NULL;
}

static const struct mseg_dir_plan *plan_dir(const struct mseg_plan *plan,
					    const struct mseg_endpoint *ep, enum mseg_dir dir)
{
	for (size_t i = 0; i < plan->n_eps; i++)
		if (plan->eps[i].ep == ep)
			return &plan->eps[i].dir[dir];
	return NULL;
}

static bool plan_admits(const struct mseg_dir_plan *dp, const struct mseg_addr *peer,
			uint8_t proto, uint16_t port)
{
	size_t len = peer->family == AF_INET ? 4 : 16;

	if (!dp || !dp->isolated)
		return true;
	for (size_t i = 0; i < dp->n_entries; i++) {
		const struct mseg_entry *e = &dp->entries[i];

		if (e->lo.family != peer->family || memcmp(e->lo.bytes, peer->bytes, len) > 0 ||
		    memcmp(peer->bytes, e->hi.bytes, len) > 0)
			continue;
		if (e->proto == 0)
			return true;
		if (e->proto != proto)
			continue;
		if (!proto_has_ports(proto) || (port >= e->port_lo && port <= e->port_hi))
			return true;
	}
	return false;
}

static bool dir_isolated(const struct mseg_plan *plan, const struct mseg_endpoint *ep,
			 enum mseg_dir dir)
{
	const struct mseg_dir_plan *dp = plan_dir(plan, ep, dir);

	return dp && dp->isolated;
}

static const char *dir_name(enum mseg_dir d)
{
	return d == MSEG_DIR_INGRESS ? "ingress" : "egress";
}

/* One side of check's answer against the plan. @policies_plan was compiled
 * without --default-deny: there, isolated means a policy isolates. */
static void side_compare(const struct tcase *c, const char *what, const struct check_side *s,
			 const struct mseg_plan *plan, const struct mseg_plan *policies_plan,
			 enum mseg_dir dir, bool want_allowed)
{
	const struct mseg_dir_plan *dp = plan_dir(plan, s->ep, dir);
	bool by_policy = dir_isolated(policies_plan, s->ep, dir);

	T_CHECK(s->allowed == want_allowed, "%s: %s %s: check says %s, the plan %s", c->name,
		what, dir_name(dir), s->allowed ? "allowed" : "refused",
		want_allowed ? "admits" : "refuses");
	T_CHECK(s->isolated == (dp && dp->isolated), "%s: %s %s: isolated %d, plan %d", c->name,
		what, dir_name(dir), s->isolated, dp && dp->isolated);
	if (!dp || !dp->isolated)
		return;
	T_CHECK(s->mode == dp->mode, "%s: %s %s: mode %d, plan %d", c->name, what, dir_name(dir),
		s->mode, dp->mode);
	if (s->allowed)
		return;
	T_CHECK((s->n_isolating > 0) == by_policy && s->default_deny == !by_policy,
		"%s: %s %s: check names %zu isolating policies%s, compile isolates it %s", c->name,
		what, dir_name(dir), s->n_isolating, s->default_deny ? " (default-deny)" : "",
		by_policy ? "by a policy" : "by --default-deny only");
}

static void case_run(struct tcase *c)
{
	const struct mseg_policy *const *pols = (const struct mseg_policy *const *)c->pols.items;
	const struct mseg_endpoint *const *eps = (const struct mseg_endpoint *const *)c->inv.eps;
	struct compile_opts no_dd = c->opts;
	struct mseg_plan *plan = NULL, *policies_plan = NULL;
	size_t n_queries = 0;

	no_dd.default_deny = false;
	probes_collect(c);
	T_CHECK(compile_plan(pols, c->pols.n, eps, c->inv.n, &c->opts, &plan) == 0 &&
			compile_plan(pols, c->pols.n, eps, c->inv.n, &no_dd, &policies_plan) == 0,
		"%s: compile", c->name);
	if (!plan || !policies_plan)
		goto out;
	for (size_t i = 0; i < c->inv.n; i++) {
		for (size_t j = 0; j < c->inv.n; j++) {
			const struct mseg_endpoint *src = eps[i], *dst = eps[j];
			const struct mseg_addr *sa = addr_of(src, AF_INET), *da = addr_of(dst, AF_INET);

			if (!sa || !da) {
				sa = addr_of(src, AF_INET6);
				da = addr_of(dst, AF_INET6);
			}
			for (size_t k = 0; k < c->n_probes; k++) {
				struct check_query q = { .from = src->id, .to = dst->id,
							 .proto = c->probes[k].proto,
							 .port = c->probes[k].port };
				struct check_result res;
				struct mseg_err err;
				char what[600];
				bool eg, in;
				enum check_verdict want;
				int r;

				err_clear(&err);
				r = check_decide(pols, c->pols.n, eps, c->inv.n, &c->opts, &q, &res, &err);
				n_queries++;
				if (!sa || !da) {
					T_CHECK(r == -EINVAL, "%s: %s -> %s: no common family, got %d",
						c->name, src->id, dst->id, r);
					continue;
				}
				T_CHECK(r == 0, "%s: %s -> %s: %s", c->name, src->id, dst->id, err.msg);
				if (r < 0)
					continue;
				eg = plan_admits(plan_dir(plan, src, MSEG_DIR_EGRESS), da, q.proto, q.port);
				in = plan_admits(plan_dir(plan, dst, MSEG_DIR_INGRESS), sa, q.proto, q.port);
				if (eg && in)
					want = CHECK_ALLOWED;
				else if ((eg || plan_dir(plan, src, MSEG_DIR_EGRESS)->mode == MSEG_MODE_AUDIT) &&
					 (in || plan_dir(plan, dst, MSEG_DIR_INGRESS)->mode == MSEG_MODE_AUDIT))
					want = CHECK_AUDITED;
				else
					want = CHECK_DENIED;
				snprintf(what, sizeof(what), "%s -> %s proto %u port %u", src->id, dst->id,
					 q.proto, q.port);
				T_CHECK(res.verdict == want, "%s: %s: check says %s, the plan %s", c->name,
					what, check_verdict_name(res.verdict), check_verdict_name(want));
				T_CHECK(addr_eq(&res.src, sa) && addr_eq(&res.dst, da),
					"%s: %s: other addresses checked", c->name, what);
				side_compare(c, what, &res.egress, plan, policies_plan, MSEG_DIR_EGRESS, eg);
				side_compare(c, what, &res.ingress, plan, policies_plan, MSEG_DIR_INGRESS,
					     in);
			}
		}
	}
	T_CHECK(n_queries > 0, "%s: nothing checked", c->name);
out:
	plan_free(plan);
	plan_free(policies_plan);
}

static void case_free(struct tcase *c)
{
	policy_set_release(&c->pols);
	inventory_release(&c->inv);
	free(c);
}

/* ---- the golden cases ---- */

static int golden_load(struct tcase *c, const char *dir, const char *name, struct mseg_err *err)
{
	char path[1024], tok[64];
	struct stat st;
	FILE *f;
	int r;

	snprintf(c->name, sizeof(c->name), "golden/%s", name);
	c->opts = (struct compile_opts){ .default_mode = MSEG_MODE_ENFORCE };
	snprintf(path, sizeof(path), "%s/policy", dir);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	r = policy_load_path(&c->pols, path, err);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/endpoints.yaml", dir);
	r = inventory_load_file(&c->inv, path, err);
	if (r < 0)
		return r;
	/* the compile options of `mseg compile`'s arguments (the others only
	 * change the rendering) */
	snprintf(path, sizeof(path), "%s/args", dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fscanf(f, "%63s", tok) == 1) {
		if (!strcmp(tok, "--default-deny")) {
			c->opts.default_deny = true;
		} else if (!strcmp(tok, "--mode") && fscanf(f, "%63s", tok) == 1 &&
			   !strcmp(tok, "audit")) {
			c->opts.force_audit = true;
			c->opts.default_mode = MSEG_MODE_AUDIT;
		}
	}
	fclose(f);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_golden_cases_agree(void)
{
	const char *root = getenv("MSEG_ROOT");
	char gdir[512], *names[256];
	size_t n = 0;
	struct dirent *de;
	DIR *d;

	snprintf(gdir, sizeof(gdir), "%s/tests/golden", root ? root : ".");
	d = opendir(gdir);
	T_CHECK(d, "%s: %s", gdir, strerror(errno));
	if (!d)
		return;
	while ((de = readdir(d)) && n < 256)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	T_CHECK(n >= 5, "only %zu golden cases in %s", n, gdir);
	for (size_t i = 0; i < n; i++) {
		struct tcase *c = calloc(1, sizeof(*c));
		struct mseg_err err;
		char dir[800];

		if (!c)
			break;
		policy_set_init(&c->pols);
		inventory_init(&c->inv);
		err_clear(&err);
		snprintf(dir, sizeof(dir), "%s/%s", gdir, names[i]);
		if (golden_load(c, dir, names[i], &err) < 0) {
			char buf[1024];

			T_CHECK(false, "%s: %s", dir, err_format(&err, buf, sizeof(buf)));
		} else {
			case_run(c);
		}
		case_free(c);
		free(names[i]);
	}
}

/* ---- our own cases ---- */

/* A case from YAML text; NULL (and a failed check) when it does not load. */
static struct tcase *case_new(const char *name, const char *policies, const char *endpoints)
{
	struct tcase *c = calloc(1, sizeof(*c));
	struct mseg_err err;

	T_CHECK(c, "out of memory");
	if (!c)
		return NULL;
	policy_set_init(&c->pols);
	inventory_init(&c->inv);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->opts = (struct compile_opts){ .default_mode = MSEG_MODE_ENFORCE };
	err_clear(&err);
	if (policy_parse_buffer(&c->pols, "p.yaml", policies, strlen(policies), &err) < 0 ||
	    inventory_parse_buffer(&c->inv, "e.yaml", endpoints, strlen(endpoints), &err) < 0) {
		T_CHECK(false, "%s: setup: %s", name, err.msg);
		case_free(c);
		return NULL;
	}
	return c;
}

static void peer_ns_drop(struct mseg_peer *p)
{
	if (p->kind == MSEG_PEER_ENDPOINTS && p->ns_scope == MSEG_NS_NAMED &&
	    !strcmp(p->ns, "default"))
		p->ns = NULL;
}

/* A model whose peers and endpoints omit the namespace (the parser always
 * fills it in; a model built otherwise, a Kubernetes translation or the
 * API's, may leave it NULL): missing stands for "default", for check as
 * for compile. With --default-deny and without. */
static void test_missing_namespace_agrees(void)
{
	static const char policies[] =
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: shop}\n"
		"spec:\n"
		"  groups:\n"
		"    web: {selector: {app: web}}\n"
		"    db: {selector: {app: db}}\n"
		"  allow:\n"
		"    - {from: web, to: db, ports: [tcp/5432]}\n"
		"---\n"
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: watch, namespace: lab}\n"
		"spec:\n"
		"  mode: audit\n"
		"  isolation: ingress\n"
		"  groups:\n"
		"    box: {selector: {app: db}}\n"
		"  allow:\n"
		"    - {from: world, to: box, ports: [tcp/22]}\n";
	static const char endpoints[] =
		"endpoints:\n"
		"  - {id: web-1, labels: {app: web}, ips: [10.0.0.1]}\n"
		"  - {id: db-1, namespace: default, labels: {app: db}, ips: [10.0.0.2]}\n"
		"  - {id: db-other, namespace: other, labels: {app: db}, ips: [10.0.0.3]}\n"
		"  - {id: db-lab, namespace: lab, labels: {app: db}, ips: [10.0.0.4]}\n"
		"  - {id: web-lab, namespace: lab, labels: {app: web}, ips: [10.0.0.5]}\n";

	for (int dd = 0; dd < 2; dd++) {
		struct tcase *c = case_new(dd ? "missing-namespace, default-deny"
					      : "missing-namespace",
					      policies, endpoints);

		if (!c)
			return;
		c->opts.default_deny = dd;
		for (size_t p = 0; p < c->pols.n; p++) {
			struct mseg_policy *pol = c->pols.items[p];

			for (size_t s = 0; s < pol->n_subjects; s++)
				peer_ns_drop(&pol->subjects[s]);
			for (size_t r = 0; r < pol->n_rules; r++) {
				peer_ns_drop(&pol->rules[r].local);
				for (size_t k = 0; k < pol->rules[r].n_peers; k++)
					peer_ns_drop(&pol->rules[r].peers[k]);
			}
		}
		for (size_t e = 0; e < c->inv.n; e++)
			if (!strcmp(c->inv.eps[e]->ns, "default"))
				c->inv.eps[e]->ns = NULL;
		case_run(c);
		case_free(c);
	}
}

/* The same agreement for a model as the parser makes it, with namespaces,
 * modes and one-directional isolation, dual stack and a v6-only endpoint. */
static void test_namespaces_agree(void)
{
	static const char policies[] =
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: shop, namespace: shop}\n"
		"spec:\n"
		"  groups:\n"
		"    web: {selector: {app: web}}\n"
		"    api: {selector: {app: api}}\n"
		"    db: {selector: {app: db}}\n"
		"    office: {cidrs: [192.0.2.0/24]}\n"
		"  allow:\n"
		"    - {from: world, to: web, ports: [tcp/443]}\n"
		"    - {from: web, to: api, ports: [tcp/9000-9010, icmp]}\n"
		"    - {from: api, to: db, ports: [tcp/5432]}\n"
		"    - {from: office, to: db, ports: [tcp/5432]}\n"
		"---\n"
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: trial, namespace: lab}\n"
		"spec:\n"
		"  mode: audit\n"
		"  isolation: egress\n"
		"  groups:\n"
		"    box: {selector: {app: box}}\n"
		"    web: {selector: {app: web}}\n"
		"  allow:\n"
		"    - {from: box, to: web, ports: [udp/53, tcp]}\n";
	static const char endpoints[] =
		"endpoints:\n"
		"  - {id: web-1, namespace: shop, labels: {app: web}, ips: [10.0.0.1, \"fd00::1\"]}\n"
		"  - {id: api-1, namespace: shop, labels: {app: api}, ips: [10.0.0.2, \"fd00::2\"]}\n"
		"  - {id: db-1, namespace: shop, labels: {app: db}, ips: [10.0.0.3]}\n"
		"  - {id: box-1, namespace: lab, labels: {app: box}, ips: [10.0.0.4]}\n"
		"  - {id: web-lab, namespace: lab, labels: {app: web}, ips: [10.0.0.6]}\n"
		"  - {id: free-1, namespace: other, ips: [10.0.0.5, \"fd00::5\"]}\n"
		"  - {id: v6only, namespace: other, labels: {app: web}, ips: [\"fd00::6\"]}\n";
	struct tcase *c = case_new("namespaces", policies, endpoints);

	if (!c)
		return;
	case_run(c);
	case_free(c);
}

/* ---- the selection rules themselves ---- */

static void test_peer_selects(void)
{
	static const char *v_web[] = { "web" }, *v_shop[] = { "shop" };
	struct mseg_sel_req r_web = { .key = "app", .op = MSEG_SEL_IN, .values = v_web,
				      .n_values = 1 };
	struct mseg_sel_req r_team = { .key = "team", .op = MSEG_SEL_IN, .values = v_shop,
				       .n_values = 1 };
	struct mseg_label l_web[] = { { "app", "web" } }, l_team[] = { { "team", "shop" } };
	struct mseg_endpoint ep = { .id = "e", .labels = l_web, .n_labels = 1 };
	struct mseg_peer p = { .kind = MSEG_PEER_ENDPOINTS, .ns_scope = MSEG_NS_NAMED,
			       .ep_sel = { &r_web, 1 } };
	struct mseg_policy pol = { .name = "x", .subjects = &p, .n_subjects = 1 };

	T_STREQ(selector_ns_name(NULL), "default");
	T_STREQ(selector_ns_name("shop"), "shop");
	/* a missing namespace is "default", on either side */
	T_CHECK(selector_peer_selects(&p, &ep), "NULL peer ns, NULL endpoint ns");
	ep.ns = "default";
	T_CHECK(selector_peer_selects(&p, &ep), "NULL peer ns, endpoint in default");
	p.ns = "default";
	ep.ns = NULL;
	T_CHECK(selector_peer_selects(&p, &ep), "peer in default, NULL endpoint ns");
	ep.ns = "shop";
	T_CHECK(!selector_peer_selects(&p, &ep), "other namespace");
	T_CHECK(!selector_policy_covers(&pol, &ep), "policy does not cover");
	p.ns = "shop";
	T_CHECK(selector_peer_selects(&p, &ep) && selector_policy_covers(&pol, &ep), "same ns");
	/* by namespace labels */
	p.ns_scope = MSEG_NS_SELECTOR;
	p.ns_sel = (struct mseg_selector){ &r_team, 1 };
	T_CHECK(!selector_peer_selects(&p, &ep), "namespace labels do not match");
	ep.ns_labels = l_team;
	ep.n_ns_labels = 1;
	T_CHECK(selector_peer_selects(&p, &ep), "namespace labels match");
	p.ns_scope = MSEG_NS_ANY;
	ep.n_ns_labels = 0;
	T_CHECK(selector_peer_selects(&p, &ep), "any namespace");
	/* the endpoint selector still applies */
	ep.labels = NULL;
	ep.n_labels = 0;
	T_CHECK(!selector_peer_selects(&p, &ep), "labels do not match");
	/* an address peer selects no endpoint */
	ep.labels = l_web;
	ep.n_labels = 1;
	p.kind = MSEG_PEER_ADDRS;
	T_CHECK(!selector_peer_selects(&p, &ep), "address peer");
}

/* addr_in_cidr(): the prefix bits only, both families, byte and bit
 * boundaries, /0 and full length, never across families. */
static void test_addr_in_cidr(void)
{
	static const struct {
		const char *net;
		unsigned plen;
		const char *addr;
		bool in;
	} cases[] = {
		{ "10.0.0.0", 8, "10.255.1.2", true },   { "10.0.0.0", 8, "11.0.0.1", false },
		{ "192.168.4.0", 22, "192.168.7.255", true },
		{ "192.168.4.0", 22, "192.168.8.0", false },
		{ "192.168.1.128", 25, "192.168.1.200", true },
		{ "192.168.1.128", 25, "192.168.1.127", false },
		{ "10.1.2.3", 32, "10.1.2.3", true },    { "10.1.2.3", 32, "10.1.2.4", false },
		{ "0.0.0.0", 0, "203.0.113.9", true },   { "0.0.0.0", 0, "fd00::1", false },
		{ "fd00::", 8, "fdff::1", true },        { "fd00::", 9, "fd80::1", false },
		{ "2001:db8::", 127, "2001:db8::1", true },
		{ "2001:db8::", 127, "2001:db8::2", false },
		{ "::", 0, "10.0.0.1", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mseg_cidr c = { .plen = (uint8_t)cases[i].plen };
		struct mseg_addr a;

		T_CHECK(addr_parse(cases[i].net, &c.addr) == 0 && addr_parse(cases[i].addr, &a) == 0,
			"parse %s", cases[i].addr);
		T_CHECK(addr_in_cidr(&a, &c) == cases[i].in, "%s in %s/%u: expected %d",
			cases[i].addr, cases[i].net, cases[i].plen, cases[i].in);
	}
}

int main(void)
{
	T_RUN(test_peer_selects);
	T_RUN(test_addr_in_cidr);
	T_RUN(test_golden_cases_agree);
	T_RUN(test_namespaces_agree);
	T_RUN(test_missing_namespace_agrees);
	return t_exit();
}
