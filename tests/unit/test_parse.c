/* Policy parsing and validation: good documents become the right model, bad
 * ones give the exact "file:line:col: message" and change nothing. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mseg/model/policy.h"
#include "mseg/model/selector.h"
#include "t.h"

#define BAD_DIR "tests/bad"

static const char shop_yaml[] =
	"apiVersion: mseg.io/v1\n"
	"kind: AllowList\n"
	"metadata:\n"
	"  name: shop                 # unique per namespace\n"
	"  namespace: shop\n"
	"spec:\n"
	"  mode: enforce\n"
	"  isolation: both\n"
	"  groups:\n"
	"    web:     {selector: {app: web-ui}}\n"
	"    gateway: {selector: {app: gateway}}\n"
	"    api:     {selector: {app: microservice}}\n"
	"    db:      {selector: {app: postgres}}\n"
	"    office:  {cidrs: [192.0.2.0/24], except: [192.0.2.7/32]}\n"
	"  allow:\n"
	"    - {from: world,   to: web,     ports: [tcp/443]}\n"
	"    - {from: web,     to: gateway, ports: [tcp/8080]}\n"
	"    - {from: gateway, to: api,     ports: [tcp/9000]}\n"
	"    - {from: api,     to: db,      ports: [tcp/5432]}\n"
	"    - {from: office,  to: db,      ports: [tcp/5432]}\n";

/* A minimal valid policy named @name, for set and directory tests. */
static char *mini(const char *ns, const char *name)
{
	char *s;

	if (asprintf(&s,
		     "apiVersion: mseg.io/v1\nkind: AllowList\n"
		     "metadata: {name: %s, namespace: %s}\n"
		     "spec: {groups: {all: {selector: {}}}}\n",
		     name, ns) < 0)
		abort();
	return s;
}

static char errbuf[1024];

static const char *fmt(const struct mseg_err *e)
{
	return err_format(e, errbuf, sizeof(errbuf));
}

/* Parse @yaml, which must hold exactly one policy. */
static const struct mseg_policy *parse_one(struct mseg_policy_set *set, const char *yaml)
{
	struct mseg_err err;
	int r;

	policy_set_init(set);
	r = policy_parse_buffer(set, "test.yaml", yaml, strlen(yaml), &err);
	T_CHECK(r == 0, "parse failed: %s", fmt(&err));
	if (r < 0)
		return NULL;
	T_CHECK(set->n == 1, "n = %zu", set->n);
	return set->n == 1 ? set->items[0] : NULL;
}

static int expect_error(const char *name, const char *yaml, size_t len, const char *want)
{
	struct mseg_policy_set set;
	struct mseg_err err;
	int r;

	policy_set_init(&set);
	r = policy_parse_buffer(&set, name, yaml, len, &err);
	T_CHECK(r < 0, "expected an error for %s", name);
	if (r < 0)
		T_STREQ(fmt(&err), want);
	T_CHECK(set.n == 0, "set changed: n = %zu", set.n);
	policy_set_release(&set);
	return r;
}

static bool addr_is(const struct mseg_addr *a, const char *text)
{
	struct mseg_addr b = { 0 };

	if (inet_pton(AF_INET, text, b.bytes) == 1)
		b.family = AF_INET;
	else if (inet_pton(AF_INET6, text, b.bytes) == 1)
		b.family = AF_INET6;
	return a->family == b.family && !memcmp(a->bytes, b.bytes, sizeof(b.bytes));
}

static bool cidr_is(const struct mseg_cidr *c, const char *addr, unsigned plen)
{
	return addr_is(&c->addr, addr) && c->plen == plen;
}

static bool sel_is(const struct mseg_selector *s, const char *key, const char *value)
{
	return s->n_reqs == 1 && !strcmp(s->reqs[0].key, key) && s->reqs[0].op == MSEG_SEL_IN &&
	       s->reqs[0].n_values == 1 && !strcmp(s->reqs[0].values[0], value);
}

static bool port_is(const struct mseg_port *p, uint8_t proto, uint16_t lo, uint16_t hi)
{
	return p->proto == proto && p->lo == lo && p->hi == hi && !p->name;
}

/* ---- good documents ---- */

static void test_shop_example(void)
{
	struct mseg_policy_set set;
	const struct mseg_policy *p = parse_one(&set, shop_yaml);
	const struct mseg_rule *r;
	size_t i;

	if (!p)
		goto out;
	T_STREQ(p->name, "shop");
	T_STREQ(p->ns, "shop");
	T_CHECK(p->kind == MSEG_KIND_ALLOWLIST, "kind");
	T_CHECK(p->mode == MSEG_MODE_ENFORCE, "mode");
	T_CHECK(p->isolation == MSEG_ISO_BOTH, "isolation %u", p->isolation);
	T_STREQ(p->pos.file, "test.yaml");
	T_CHECK(p->pos.line == 1 && p->pos.col == 1, "pos %u:%u", p->pos.line, p->pos.col);

	/* every selector group is a subject, in declaration order */
	T_CHECK(p->n_subjects == 4, "n_subjects %zu", p->n_subjects);
	if (p->n_subjects == 4) {
		static const char *const names[] = { "web", "gateway", "api", "db" };
		static const char *const apps[] = { "web-ui", "gateway", "microservice", "postgres" };

		for (i = 0; i < 4; i++) {
			const struct mseg_peer *s = &p->subjects[i];

			T_STREQ(s->group, names[i]);
			T_CHECK(s->kind == MSEG_PEER_ENDPOINTS, "subject %zu kind", i);
			T_CHECK(s->ns_scope == MSEG_NS_NAMED, "subject %zu scope", i);
			T_STREQ(s->ns, "shop");
			T_CHECK(sel_is(&s->ep_sel, "app", apps[i]), "subject %zu selector", i);
		}
		T_CHECK(p->subjects[3].pos.line == 13 && p->subjects[3].pos.col == 5, "db pos");
	}

	/* world->web: ingress only; three endpoint pairs: both; office->db: ingress */
	T_CHECK(p->n_rules == 8, "n_rules %zu", p->n_rules);
	if (p->n_rules != 8)
		goto out;
	r = &p->rules[0];
	T_CHECK(r->dir == MSEG_DIR_INGRESS && r->index == 0, "rule 0 dir/index");
	T_STREQ(r->local.group, "web");
	T_CHECK(r->local.kind == MSEG_PEER_ENDPOINTS, "rule 0 local kind");
	T_CHECK(r->n_peers == 1 && r->peers[0].kind == MSEG_PEER_ADDRS, "rule 0 peer");
	T_STREQ(r->peers[0].group, "world");
	T_CHECK(r->peers[0].n_cidrs == 2 && cidr_is(&r->peers[0].cidrs[0], "0.0.0.0", 0) &&
			cidr_is(&r->peers[0].cidrs[1], "::", 0) && r->peers[0].n_except == 0,
		"world cidrs");
	T_CHECK(r->n_ports == 1 && port_is(&r->ports[0], IPPROTO_TCP, 443, 443), "rule 0 ports");
	T_CHECK(r->pos.line == 16 && r->pos.col == 7, "rule 0 pos %u:%u", r->pos.line, r->pos.col);
	T_CHECK(r->peers[0].pos.line == 16 && r->peers[0].pos.col == 14, "peer pos %u:%u",
		r->peers[0].pos.line, r->peers[0].pos.col);
	T_CHECK(r->ports[0].pos.line == 16 && r->ports[0].pos.col == 44, "port pos %u:%u",
		r->ports[0].pos.line, r->ports[0].pos.col);

	r = &p->rules[1]; /* web -> gateway: gateway accepts from web */
	T_CHECK(r->dir == MSEG_DIR_INGRESS && r->index == 1, "rule 1");
	T_STREQ(r->local.group, "gateway");
	T_STREQ(r->peers[0].group, "web");
	T_CHECK(r->peers[0].kind == MSEG_PEER_ENDPOINTS && r->peers[0].ns_scope == MSEG_NS_NAMED,
		"rule 1 peer kind");
	T_STREQ(r->peers[0].ns, "shop");
	T_CHECK(sel_is(&r->peers[0].ep_sel, "app", "web-ui"), "rule 1 peer selector");
	T_CHECK(r->n_ports == 1 && port_is(&r->ports[0], IPPROTO_TCP, 8080, 8080), "rule 1 port");

	r = &p->rules[2]; /* web -> gateway: web sends to gateway */
	T_CHECK(r->dir == MSEG_DIR_EGRESS && r->index == 1, "rule 2");
	T_STREQ(r->local.group, "web");
	T_STREQ(r->peers[0].group, "gateway");
	T_CHECK(r->n_ports == 1 && port_is(&r->ports[0], IPPROTO_TCP, 8080, 8080), "rule 2 port");

	r = &p->rules[6]; /* api -> db egress */
	T_CHECK(r->dir == MSEG_DIR_EGRESS && r->index == 3, "rule 6");
	T_STREQ(r->local.group, "api");
	T_STREQ(r->peers[0].group, "db");

	r = &p->rules[7]; /* office -> db: ingress only */
	T_CHECK(r->dir == MSEG_DIR_INGRESS && r->index == 4, "rule 7");
	T_STREQ(r->local.group, "db");
	T_CHECK(sel_is(&r->local.ep_sel, "app", "postgres"), "rule 7 local selector");
	T_CHECK(r->peers[0].kind == MSEG_PEER_ADDRS, "rule 7 peer kind");
	T_STREQ(r->peers[0].group, "office");
	T_CHECK(r->peers[0].n_cidrs == 1 && cidr_is(&r->peers[0].cidrs[0], "192.0.2.0", 24),
		"office cidrs");
	T_CHECK(r->peers[0].n_except == 1 && cidr_is(&r->peers[0].except[0], "192.0.2.7", 32),
		"office except");

	/* no rule from or to an address group on its local side */
	for (i = 0; i < p->n_rules; i++)
		T_CHECK(p->rules[i].local.kind == MSEG_PEER_ENDPOINTS, "rule %zu local", i);
out:
	policy_set_release(&set);
}

static void test_defaults(void)
{
	struct mseg_policy_set set;
	const struct mseg_policy *p = parse_one(&set,
		"apiVersion: mseg.io/v1\n"
		"kind: AllowList\n"
		"metadata: {name: db-lockdown}\n"
		"spec:\n"
		"  groups:\n"
		"    db: {selector: {app: postgres, tier: data}}\n"
		"    api: {selector: {app: api}}\n"
		"  allow:\n"
		"    - from: api\n"
		"      to: db\n");

	if (!p)
		goto out;
	T_STREQ(p->ns, "default");
	T_CHECK(p->mode == MSEG_MODE_ENFORCE, "mode");
	T_CHECK(p->isolation == MSEG_ISO_BOTH, "isolation");
	T_CHECK(p->n_rules == 2, "n_rules %zu", p->n_rules);
	if (p->n_rules == 2) {
		/* no ports: every protocol */
		T_CHECK(p->rules[0].n_ports == 0 && p->rules[1].n_ports == 0, "ports");
		T_STREQ(p->rules[0].peers[0].ns, "default");
	}
	/* selector requirements sorted by key */
	T_CHECK(p->n_subjects == 2 && p->subjects[0].ep_sel.n_reqs == 2, "db selector");
	if (p->n_subjects == 2 && p->subjects[0].ep_sel.n_reqs == 2) {
		T_STREQ(p->subjects[0].ep_sel.reqs[0].key, "app");
		T_STREQ(p->subjects[0].ep_sel.reqs[1].key, "tier");
	}
out:
	policy_set_release(&set);
}

static void test_mode_isolation(void)
{
	static const struct {
		const char *mode, *iso;
		enum mseg_mode m;
		unsigned i;
	} cases[] = {
		{ "audit", "ingress", MSEG_MODE_AUDIT, MSEG_ISO_INGRESS },
		{ "enforce", "egress", MSEG_MODE_ENFORCE, MSEG_ISO_EGRESS },
		{ "audit", "both", MSEG_MODE_AUDIT, MSEG_ISO_BOTH },
	};
	size_t k;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct mseg_policy_set set;
		const struct mseg_policy *p;
		char *y;

		if (asprintf(&y,
			     "apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: m}\n"
			     "spec: {mode: %s, isolation: %s, groups: {a: {selector: {x: y}}}}\n",
			     cases[k].mode, cases[k].iso) < 0)
			abort();
		p = parse_one(&set, y);
		if (p) {
			T_CHECK(p->mode == cases[k].m, "case %zu mode", k);
			T_CHECK(p->isolation == cases[k].i, "case %zu isolation", k);
			T_CHECK(p->n_rules == 0, "case %zu: no allow, no rules", k);
		}
		policy_set_release(&set);
		free(y);
	}
}

/* spec.revoke: absent = msegd's --revoke; a bad value names its place */
static void test_revoke(void)
{
	static const char *const vals[] = { NULL, "established", "new-only" };
	static const enum mseg_revoke want[] = { MSEG_REVOKE_INHERIT, MSEG_REVOKE_ESTABLISHED,
						  MSEG_REVOKE_NEW_ONLY };
	static const char bad[] = "apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: r}\n"
				  "spec:\n  revoke: sometimes\n  groups: {a: {selector: {x: y}}}\n";

	for (size_t k = 0; k < 3; k++) {
		struct mseg_policy_set set;
		const struct mseg_policy *p;
		char *y;

		if (asprintf(&y,
			     "apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: r}\n"
			     "spec: {%s%s%sgroups: {a: {selector: {x: y}}}}\n",
			     vals[k] ? "revoke: " : "", vals[k] ? vals[k] : "", vals[k] ? ", " : "") < 0)
			abort();
		p = parse_one(&set, y);
		if (p)
			T_CHECK(p->revoke == want[k], "case %zu revoke %d", k, p->revoke);
		policy_set_release(&set);
		free(y);
	}
	expect_error("r.yaml", bad, strlen(bad),
		     "r.yaml:5:11: spec.revoke: unknown revoke 'sometimes' (established or new-only)");
}

/* spec.mode: learn enforces (mode enforce for the compiler) and carries its
 * stage's length; spec.learnFor only with learn, a duration, named when bad */
static void test_learn(void)
{
	static const char *const docs[] = {
		"spec: {mode: learn, groups: {a: {selector: {x: y}}}}\n",
		"spec: {mode: learn, learnFor: 90m, groups: {a: {selector: {x: y}}}}\n",
		"spec: {mode: audit, groups: {a: {selector: {x: y}}}}\n",
	};
	static const bool learn[] = { true, true, false };
	static const uint32_t secs[] = { 24 * 3600, 90 * 60, 24 * 3600 };
	static const char head[] = "apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: l}\n";
	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{ "spec:\n  mode: enforce\n  learnFor: 1h\n  groups: {a: {selector: {x: y}}}\n",
		  "l.yaml:6:13: spec.learnFor: only with mode: learn" },
		{ "spec:\n  mode: learn\n  learnFor: 1 hour\n  groups: {a: {selector: {x: y}}}\n",
		  "l.yaml:6:13: spec.learnFor: '1 hour' is not a duration (a number and s, m, h or d: 24h)" },
		{ "spec:\n  mode: learn\n  learnFor: 30s\n  groups: {a: {selector: {x: y}}}\n",
		  "l.yaml:6:13: spec.learnFor: '30s' is out of range (1m to 90d)" },
		{ "spec:\n  mode: learning\n  groups: {a: {selector: {x: y}}}\n",
		  "l.yaml:5:9: spec.mode: unknown mode 'learning' (enforce, audit or learn)" },
	};
	uint32_t d = 0;

	for (size_t k = 0; k < 3; k++) {
		struct mseg_policy_set set;
		const struct mseg_policy *p;
		char *y;

		if (asprintf(&y, "%s%s", head, docs[k]) < 0)
			abort();
		p = parse_one(&set, y);
		T_CHECK(p != NULL, "case %zu parses", k);
		if (p) {
			T_CHECK(p->learn == learn[k], "case %zu learn %d", k, p->learn);
			T_CHECK(p->learn_for_s == secs[k], "case %zu learnFor %u", k, p->learn_for_s);
			T_CHECK(p->mode == (k == 2 ? MSEG_MODE_AUDIT : MSEG_MODE_ENFORCE),
				"case %zu mode %d", k, p->mode);
		}
		policy_set_release(&set);
		free(y);
	}
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char *y;

		if (asprintf(&y, "%s%s", head, bad[k].spec) < 0)
			abort();
		expect_error("l.yaml", y, strlen(y), bad[k].msg);
		free(y);
	}
	T_CHECK(policy_duration_parse("7d", &d) == 0 && d == 7 * 86400, "7d: %u", d);
	T_CHECK(policy_duration_parse("1m", &d) == 0 && d == 60, "1m: %u", d);
	T_CHECK(policy_duration_parse("91d", &d) == -ERANGE, "91d out of range");
	T_CHECK(policy_duration_parse("99999999999999h", &d) == -ERANGE, "no overflow");
	T_CHECK(policy_duration_parse("h", &d) == -EINVAL, "no number");
	T_CHECK(policy_duration_parse("12", &d) == -EINVAL, "no unit");
	T_CHECK(policy_duration_parse("12hh", &d) == -EINVAL, "junk after the unit");
	T_CHECK(policy_duration_parse("-1h", &d) == -EINVAL, "negative");
}

static void test_ports_syntax(void)
{
	struct mseg_policy_set set;
	const struct mseg_policy *p = parse_one(&set,
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: ports}\n"
		"spec:\n"
		"  groups: {a: {selector: {app: a}}, b: {selector: {app: b}}}\n"
		"  allow:\n"
		"    - from: a\n"
		"      to: b\n"
		"      ports: [tcp/80, tcp/8000-8080, udp/53, sctp/9, tcp, udp, sctp, icmp,\n"
		"              icmpv6, any, \"tcp/1\", tcp/65535, udp/5-5]\n");
	const struct mseg_port *v;

	if (!p || p->n_rules != 2) {
		T_CHECK(0, "no rules");
		goto out;
	}
	T_CHECK(p->rules[0].n_ports == 13, "n_ports %zu", p->rules[0].n_ports);
	T_CHECK(p->rules[0].ports == p->rules[1].ports, "both directions share the ports");
	if (p->rules[0].n_ports != 13)
		goto out;
	v = p->rules[0].ports;
	T_CHECK(port_is(&v[0], IPPROTO_TCP, 80, 80), "tcp/80");
	T_CHECK(port_is(&v[1], IPPROTO_TCP, 8000, 8080), "tcp/8000-8080");
	T_CHECK(port_is(&v[2], IPPROTO_UDP, 53, 53), "udp/53");
	T_CHECK(port_is(&v[3], IPPROTO_SCTP, 9, 9), "sctp/9");
	T_CHECK(port_is(&v[4], IPPROTO_TCP, 0, 65535), "tcp");
	T_CHECK(port_is(&v[5], IPPROTO_UDP, 0, 65535), "udp");
	T_CHECK(port_is(&v[6], IPPROTO_SCTP, 0, 65535), "sctp");
	T_CHECK(port_is(&v[7], IPPROTO_ICMP, 0, 0), "icmp");
	T_CHECK(port_is(&v[8], IPPROTO_ICMPV6, 0, 0), "icmpv6");
	T_CHECK(port_is(&v[9], 0, 0, 0), "any");
	T_CHECK(port_is(&v[10], IPPROTO_TCP, 1, 1), "quoted tcp/1");
	T_CHECK(port_is(&v[11], IPPROTO_TCP, 65535, 65535), "tcp/65535");
	T_CHECK(port_is(&v[12], IPPROTO_UDP, 5, 5), "udp/5-5");
	T_CHECK(v[8].pos.line == 10 && v[8].pos.col == 15, "icmpv6 pos %u:%u", v[8].pos.line,
		v[8].pos.col);
out:
	policy_set_release(&set);
}

static void test_address_groups(void)
{
	struct mseg_policy_set set;
	const struct mseg_policy *p = parse_one(&set,
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: addrs, namespace: n1}\n"
		"spec:\n"
		"  groups:\n"
		"    dns: {cidrs: [\"2001:db8::/32\", 10.96.0.10, \"fd00::1\", 192.0.2.0/24],\n"
		"          except: [\"2001:db8:1::/48\", 192.0.2.0/24]}\n"
		"    app: {selector: {app: x}}\n"
		"  allow:\n"
		"    - {from: app, to: dns, ports: [udp/53]}\n"
		"    - {from: app, to: world, ports: [tcp/443]}\n");
	const struct mseg_peer *d;

	if (!p)
		goto out;
	T_CHECK(p->n_subjects == 1, "only the selector group is a subject");
	T_CHECK(p->n_rules == 2, "n_rules %zu", p->n_rules);
	if (p->n_rules != 2)
		goto out;
	/* to an address group: egress only */
	T_CHECK(p->rules[0].dir == MSEG_DIR_EGRESS && p->rules[1].dir == MSEG_DIR_EGRESS, "dirs");
	T_STREQ(p->rules[0].local.group, "app");
	T_STREQ(p->rules[0].local.ns, "n1");
	d = &p->rules[0].peers[0];
	T_CHECK(d->kind == MSEG_PEER_ADDRS && d->n_cidrs == 4 && d->n_except == 2, "dns peer");
	if (d->n_cidrs == 4 && d->n_except == 2) {
		T_CHECK(cidr_is(&d->cidrs[0], "2001:db8::", 32), "cidr 0");
		T_CHECK(cidr_is(&d->cidrs[1], "10.96.0.10", 32), "bare IPv4 is /32");
		T_CHECK(cidr_is(&d->cidrs[2], "fd00::1", 128), "bare IPv6 is /128");
		T_CHECK(cidr_is(&d->cidrs[3], "192.0.2.0", 24), "cidr 3");
		T_CHECK(cidr_is(&d->except[0], "2001:db8:1::", 48), "except 0");
		T_CHECK(cidr_is(&d->except[1], "192.0.2.0", 24), "except equal to a cidr");
	}
	T_STREQ(p->rules[1].peers[0].group, "world");
out:
	policy_set_release(&set);
}

static void test_empty_selector_and_self(void)
{
	struct mseg_policy_set set;
	const struct mseg_policy *p = parse_one(&set,
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: ns-wide, namespace: team}\n"
		"spec:\n"
		"  groups: {all: {selector: {}}}\n"
		"  allow: [{from: all, to: all}]\n");

	if (!p)
		goto out;
	T_CHECK(p->n_subjects == 1 && p->subjects[0].ep_sel.n_reqs == 0, "empty selector");
	T_STREQ(p->subjects[0].ns, "team");
	T_CHECK(p->n_rules == 2, "a group may talk to itself: %zu rules", p->n_rules);
	if (p->n_rules == 2) {
		T_CHECK(p->rules[0].dir == MSEG_DIR_INGRESS && p->rules[1].dir == MSEG_DIR_EGRESS,
			"dirs");
		T_CHECK(selector_matches(&p->rules[0].local.ep_sel, NULL, 0), "matches everything");
	}
out:
	policy_set_release(&set);
}

static void test_multi_doc(void)
{
	struct mseg_policy_set set;
	struct mseg_err err;
	const char *y =
		"# leading comment\n"
		"---\n"
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: one}\n"
		"spec: {groups: {a: {selector: {x: \"1\"}}}}\n"
		"---\n"
		"---\n"
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: one, namespace: other}\n"
		"spec: {mode: audit, groups: {a: {selector: {x: \"2\"}}}}\n"
		"...\n"
		"---\n";
	int r;

	policy_set_init(&set);
	r = policy_parse_buffer(&set, "multi.yaml", y, strlen(y), &err);
	T_CHECK(r == 0, "%s", fmt(&err));
	T_CHECK(set.n == 2, "n = %zu (empty documents are skipped)", set.n);
	if (set.n == 2) {
		T_STREQ(set.items[0]->ns, "default");
		T_STREQ(set.items[1]->ns, "other");
		T_CHECK(set.items[1]->mode == MSEG_MODE_AUDIT, "mode");
		T_CHECK(set.items[0]->pos.line == 2 && set.items[1]->pos.line == 8,
			"document starts %u %u", set.items[0]->pos.line, set.items[1]->pos.line);
		T_CHECK(policy_set_find(&set, "other", "one") == set.items[1], "find");
	}
	/* an empty buffer and a comment-only one hold no policies */
	r = policy_parse_buffer(&set, "empty.yaml", "", 0, &err);
	T_CHECK(r == 0 && set.n == 2, "empty buffer");
	r = policy_parse_buffer(&set, "comment.yaml", "# nothing\n", 10, &err);
	T_CHECK(r == 0 && set.n == 2, "comment only");
	policy_set_release(&set);
}

/* Each policy knows the bytes of its document, as the parser delimited
 * them: `mseg apply` sends exactly those. Re-parsing a span gives that
 * policy alone, also with `...` end markers, a flow document on the `---`
 * line and comments around. */
static void test_doc_spans(void)
{
	static const char text[] =
		"# shop policies\n"
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: a}\n"
		"spec: {groups: {g: {selector: {app: a}}}}\n"
		"...\n"
		"--- {apiVersion: mseg.io/v1, kind: AllowList, metadata: {name: b},\n"
		"     spec: {groups: {g: {selector: {app: b}}}}}\n"
		"# between\n"
		"---\n"
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: c}\n"
		"spec: {groups: {g: {selector: {app: c}}}}\n";
	static const char *const names[] = { "a", "b", "c" };
	static const unsigned lines[] = { 2, 7, 10 };
	struct mseg_policy_set set;
	struct mseg_err err;

	policy_set_init(&set);
	T_CHECK(policy_parse_buffer(&set, "spans.yaml", text, sizeof(text) - 1, &err) == 0, "%s",
		fmt(&err));
	T_CHECK(set.n == 3, "%zu policies", set.n);
	for (size_t i = 0; i < set.n && i < 3; i++) {
		const struct mseg_policy *p = set.items[i];
		struct mseg_policy_set one;

		T_STREQ(p->name, names[i]);
		T_CHECK(p->pos.line == lines[i], "%s starts on line %u", p->name, p->pos.line);
		T_CHECK(p->doc_start + p->doc_len <= sizeof(text) - 1, "%s: span in the buffer", p->name);
		T_CHECK(i == 0 || p->doc_start >= set.items[i - 1]->doc_start + set.items[i - 1]->doc_len,
			"%s: spans do not overlap", p->name);
		policy_set_init(&one);
		T_CHECK(policy_parse_buffer(&one, "span", text + p->doc_start, p->doc_len, &err) == 0,
			"%s: %s", p->name, fmt(&err));
		T_CHECK(one.n == 1 && strcmp(one.items[0]->name, names[i]) == 0, "%s re-parses alone",
			p->name);
		policy_set_release(&one);
	}
	policy_set_release(&set);
}

static void test_json_body(void)
{
	struct mseg_policy_set set;
	const struct mseg_policy *p = parse_one(&set,
		"{\"apiVersion\":\"mseg.io/v1\",\"kind\":\"AllowList\",\n"
		"\t\"metadata\":{\"name\":\"shop\",\"namespace\":\"shop\"},\n"
		"\t\"spec\":{\"mode\":\"audit\",\"isolation\":\"ingress\",\n"
		"\t\t\"groups\":{\"db\":{\"selector\":{\"app\":\"postgres\"}},\n"
		"\t\t\t\"api\":{\"selector\":{\"app\":\"api\"}},\n"
		"\t\t\t\"lan\":{\"cidrs\":[\"10.0.0.0/8\",\"fd00::/8\"],\"except\":[\"10.1.0.0/16\"]}},\n"
		"\t\t\"allow\":[{\"from\":\"api\",\"to\":\"db\",\"ports\":[\"tcp/5432\"]},\n"
		"\t\t\t{\"from\":\"lan\",\"to\":\"db\"}]}}\n");

	if (!p)
		goto out;
	T_STREQ(p->name, "shop");
	T_CHECK(p->mode == MSEG_MODE_AUDIT && p->isolation == MSEG_ISO_INGRESS, "mode/iso");
	T_CHECK(p->n_subjects == 2 && p->n_rules == 3, "subjects %zu rules %zu", p->n_subjects,
		p->n_rules);
	if (p->n_rules == 3) {
		T_CHECK(p->rules[0].n_ports == 1 &&
				port_is(&p->rules[0].ports[0], IPPROTO_TCP, 5432, 5432),
			"json port");
		T_CHECK(p->rules[2].peers[0].n_cidrs == 2 && p->rules[2].peers[0].n_except == 1,
			"json cidrs");
		T_CHECK(p->rules[2].pos.line == 8 && p->rules[2].pos.col == 4, "json pos %u:%u",
			p->rules[2].pos.line, p->rules[2].pos.col);
	}
out:
	policy_set_release(&set);
}

static void test_json_error_position(void)
{
	const char *j = "{\"apiVersion\": \"mseg.io/v1\", \"kind\": \"AllowList\",\n"
			" \"metadata\": {\"name\": \"x\"},\n"
			" \"spec\": {\"groups\": {\"a\": {\"selector\": {}}},\n"
			"          \"allow\": [{\"from\": \"a\", \"to\": \"b\"}]}}\n";

	expect_error("body", j, strlen(j), "body:4:41: allow[0].to: unknown group 'b'");
}

static void test_encodings(void)
{
	struct mseg_policy_set set;
	/* a UTF-8 byte order mark and CRLF line ends are fine */
	const struct mseg_policy *p = parse_one(&set,
		"\xef\xbb\xbf" "apiVersion: mseg.io/v1\r\nkind: AllowList\r\n"
		"metadata: {name: crlf}\r\nspec:\r\n  groups: {a: {selector: {k: v}}}\r\n");

	if (p)
		T_STREQ(p->name, "crlf");
	policy_set_release(&set);
	/* columns count characters, not bytes, and not the byte order mark */
	expect_error("b1", "\xef\xbb\xbf" "ab\xff\n", 7,
		     "b1:1:3: invalid leading UTF-8 octet (byte 0xFF)");
	expect_error("b2", "\xef\xbb\xbf" "a\0\n", 6, "b2:1:2: NUL byte in input");
	expect_error("b3", "# \xc3\xa9\xc3\xa9\n\xc3\xa9\x01\n", 11,
		     "b3:2:2: control characters are not allowed (#1)");
	expect_error("b4", "k: \"\xc3\xa9\" x\n", 10,
		     "b4:1:8: did not find expected key (while parsing a block mapping at line 1, "
		     "column 1)");
	expect_error("b5", "\xfe\xff\0a", 4, "b5:1:1: UTF-16 input is not supported (use UTF-8)");
	expect_error("b6", "a\0\0\0", 4, "b6:1:2: NUL byte in input");
}

/* ---- sets ---- */

static void test_set_operations(void)
{
	struct mseg_policy_set a, b;
	struct mseg_policy *p1, *p2;
	struct mseg_err err;
	char *y1 = mini("n", "p1"), *y2 = mini("n", "p2"), *y3 = mini("m", "p1");
	int r;

	policy_set_init(&a);
	policy_set_init(&b);
	r = policy_parse_buffer(&a, "a", y1, strlen(y1), &err);
	r |= policy_parse_buffer(&a, "b", y2, strlen(y2), &err);
	r |= policy_parse_buffer(&b, "c", y3, strlen(y3), &err);
	T_CHECK(r == 0 && a.n == 2 && b.n == 1, "setup");
	if (a.n != 2 || b.n != 1)
		goto out;

	/* same name, other namespace: no clash */
	T_CHECK(policy_set_take(&a, &b) == 0 && a.n == 3 && b.n == 0, "take");
	T_CHECK(policy_set_find(&a, "m", "p1") == a.items[2], "find m/p1");
	T_CHECK(policy_set_find(&a, "x", "p1") == NULL, "find absent");

	/* parsing a duplicate of a set member fails and names the first place */
	r = policy_parse_buffer(&a, "again.yaml", y1, strlen(y1), &err);
	T_CHECK(r == -EINVAL && a.n == 3, "duplicate against the set: %d", r);
	T_STREQ(fmt(&err), "again.yaml:3:18: policy 'n/p1' is already defined at a:1:1");

	/* put replaces in place */
	r = policy_parse_buffer(&b, "new", y1, strlen(y1), &err);
	T_CHECK(r == 0 && b.n == 1, "parse into b");
	p1 = b.items[0];
	b.n = 0; /* hand the policy over */
	T_CHECK(policy_set_put(&a, p1) == 0 && a.n == 3 && a.items[0] == p1, "put replaces");
	T_STREQ(a.items[0]->pos.file, "new");

	/* remove */
	T_CHECK(policy_set_remove(&a, "n", "p2") == 0 && a.n == 2, "remove");
	T_CHECK(policy_set_remove(&a, "n", "p2") == -ENOENT, "remove absent");
	T_CHECK(a.items[0] == p1 && !strcmp(a.items[1]->ns, "m"), "order kept");

	/* put appends a new one */
	r = policy_parse_buffer(&b, "new2", y2, strlen(y2), &err);
	p2 = b.items[0];
	b.n = 0;
	T_CHECK(r == 0 && policy_set_put(&a, p2) == 0 && a.n == 3 && a.items[2] == p2, "append");
	T_CHECK(policy_set_put(&a, NULL) == -EINVAL, "put NULL");
	T_CHECK(policy_free(NULL) == NULL, "free NULL");
out:
	policy_set_release(&a);
	policy_set_release(&b);
	free(y1);
	free(y2);
	free(y3);
}

static void test_selector_matches(void)
{
	const struct mseg_label labels[] = {
		{ "app", "db" }, { "env", "prod" }, { "tier", "" },
	};
	const char *db[] = { "db" }, *web_api[] = { "web", "api" }, *prod_dev[] = { "dev", "prod" };
	struct mseg_sel_req in_db = { "app", MSEG_SEL_IN, db, 1 };
	struct mseg_sel_req in_web = { "app", MSEG_SEL_IN, web_api, 2 };
	struct mseg_sel_req notin_env = { "env", MSEG_SEL_NOT_IN, prod_dev, 2 };
	struct mseg_sel_req notin_zone = { "zone", MSEG_SEL_NOT_IN, prod_dev, 2 };
	struct mseg_sel_req exists_tier = { "tier", MSEG_SEL_EXISTS, NULL, 0 };
	struct mseg_sel_req exists_zone = { "zone", MSEG_SEL_EXISTS, NULL, 0 };
	struct mseg_sel_req absent_zone = { "zone", MSEG_SEL_DOES_NOT_EXIST, NULL, 0 };
	struct mseg_sel_req absent_app = { "app", MSEG_SEL_DOES_NOT_EXIST, NULL, 0 };
	struct mseg_sel_req two[2];
	struct mseg_selector s = { NULL, 0 };

	T_CHECK(selector_matches(&s, labels, 3), "empty selector matches");
	T_CHECK(selector_matches(&s, NULL, 0), "empty selector matches no labels");
	T_CHECK(selector_matches(NULL, labels, 3), "NULL selector matches");
#define ONE(req, want)                                                      \
	do {                                                                \
		s.reqs = &(req);                                            \
		s.n_reqs = 1;                                               \
		T_CHECK(selector_matches(&s, labels, 3) == (want), #req);  \
	} while (0)
	ONE(in_db, true);
	ONE(in_web, false);
	ONE(notin_env, false);
	ONE(notin_zone, true);
	ONE(exists_tier, true);
	ONE(exists_zone, false);
	ONE(absent_zone, true);
	ONE(absent_app, false);
#undef ONE
	two[0] = in_db;
	two[1] = exists_tier;
	s.reqs = two;
	s.n_reqs = 2;
	T_CHECK(selector_matches(&s, labels, 3), "all requirements hold");
	two[1] = exists_zone;
	T_CHECK(!selector_matches(&s, labels, 3), "one fails");
	T_CHECK(!selector_matches(&s, NULL, 0), "no labels");
}

/* ---- files and directories ---- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	T_CHECK(f != NULL, "fopen %s: %s", path, strerror(errno));
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static char *path_join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s/%s", a, b) < 0)
		abort();
	return s;
}

static void rm_rf(const char *dir)
{
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", dir) < 0)
		abort();
	if (system(cmd) != 0)
		printf("  could not remove %s\n", dir);
	free(cmd);
}

static void put(const char *dir, const char *name, const char *text)
{
	char *p = path_join(dir, name);

	write_file(p, text);
	free(p);
}

static void test_load_dir(void)
{
	char tmpl[] = "/tmp/mseg-test-XXXXXX", *dir = mkdtemp(tmpl), *sub;
	char *b = mini("n", "b"), *a = mini("n", "a"), *c = mini("n", "c"), *d = mini("n", "d");
	struct mseg_policy_set set;
	struct mseg_err err;
	int r;

	T_CHECK(dir != NULL, "mkdtemp");
	if (!dir)
		return;
	put(dir, "20-b.yaml", b);
	put(dir, "10-a.yml", a);
	put(dir, "30-c.json", c);
	put(dir, ".hidden.yaml", "not: [valid");
	put(dir, "README.md", "not: [valid");
	put(dir, "40-d.yaml~", "not: [valid");
	sub = path_join(dir, "sub.yaml");
	T_CHECK(mkdir(sub, 0755) == 0, "mkdir");
	put(sub, "x.yaml", "not: [valid");

	policy_set_init(&set);
	r = policy_load_dir(&set, dir, &err);
	T_CHECK(r == 0, "load_dir: %s", fmt(&err));
	T_CHECK(set.n == 3, "n = %zu", set.n);
	if (set.n == 3) {
		char *want = path_join(dir, "10-a.yml");

		T_STREQ(set.items[0]->name, "a");
		T_STREQ(set.items[1]->name, "b");
		T_STREQ(set.items[2]->name, "c");
		T_STREQ(set.items[0]->pos.file, want);
		free(want);
	}

	/* all or nothing across the directory: a duplicate in a later file */
	policy_set_release(&set);
	policy_set_init(&set);
	put(dir, "50-dup.yaml", c);
	r = policy_load_path(&set, dir, &err);
	T_CHECK(r == -EINVAL && set.n == 0, "duplicate across files: %d n=%zu", r, set.n);
	{
		char *want;

		if (asprintf(&want,
			     "%s/50-dup.yaml:3:18: policy 'n/c' is already defined at "
			     "%s/30-c.json:1:1",
			     dir, dir) < 0)
			abort();
		T_STREQ(fmt(&err), want);
		free(want);
	}

	/* a trailing slash does not double up */
	{
		char *p = path_join(dir, "50-dup.yaml"), *slash, *want;

		unlink(p);
		free(p);
		put(dir, "60-bad.yaml", "kind: [\n");
		if (asprintf(&slash, "%s/", dir) < 0 ||
		    asprintf(&want, "%s/60-bad.yaml:2:1: did not find expected node content "
				    "(while parsing a flow node)", dir) < 0)
			abort();
		r = policy_load_dir(&set, slash, &err);
		T_CHECK(r == -EINVAL && set.n == 0, "bad file in dir");
		T_STREQ(fmt(&err), want);
		free(slash);
		free(want);
	}

	/* load_path on a file */
	{
		char *p = path_join(dir, "10-a.yml");

		r = policy_load_path(&set, p, &err);
		T_CHECK(r == 0 && set.n == 1, "load_path file: %s", fmt(&err));
		free(p);
	}
	policy_set_release(&set);
	rm_rf(dir);
	free(sub);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* A Kubernetes ConfigMap volume: ..2024_01_01/ holds the files, ..data links
 * to it, and each key is a top-level symlink into ..data. */
static void test_configmap_layout(void)
{
	char tmpl[] = "/tmp/mseg-cm-XXXXXX", *dir = mkdtemp(tmpl);
	char *x = mini("shop", "x"), *y = mini("shop", "y");
	struct mseg_policy_set set;
	struct mseg_err err;
	char *ts, *l;
	int r;

	T_CHECK(dir != NULL, "mkdtemp");
	if (!dir)
		return;
	ts = path_join(dir, "..2024_01_01_00_00_00.123");
	T_CHECK(mkdir(ts, 0755) == 0, "mkdir");
	put(ts, "x.yaml", x);
	put(ts, "y.yaml", y);
	l = path_join(dir, "..data");
	T_CHECK(symlink("..2024_01_01_00_00_00.123", l) == 0, "symlink ..data");
	free(l);
	l = path_join(dir, "x.yaml");
	T_CHECK(symlink("..data/x.yaml", l) == 0, "symlink x");
	free(l);
	l = path_join(dir, "y.yaml");
	T_CHECK(symlink("..data/y.yaml", l) == 0, "symlink y");
	free(l);

	policy_set_init(&set);
	r = policy_load_path(&set, dir, &err);
	T_CHECK(r == 0, "configmap: %s", fmt(&err));
	T_CHECK(set.n == 2, "each policy once, through the symlinks: n = %zu", set.n);
	if (set.n == 2) {
		char *want = path_join(dir, "x.yaml");

		T_STREQ(set.items[0]->name, "x");
		T_STREQ(set.items[1]->name, "y");
		T_STREQ(set.items[0]->pos.file, want);
		free(want);
	}
	/* a dangling key symlink (mid-update) fails the whole load */
	policy_set_release(&set);
	policy_set_init(&set);
	l = path_join(dir, "z.yaml");
	T_CHECK(symlink("..data/z.yaml", l) == 0, "symlink z");
	r = policy_load_dir(&set, dir, &err);
	T_CHECK(r == -ENOENT && set.n == 0, "dangling: %d", r);
	{
		char *want;

		if (asprintf(&want, "%s: cannot open: No such file or directory", l) < 0)
			abort();
		T_STREQ(fmt(&err), want);
		free(want);
	}
	free(l);
	policy_set_release(&set);
	rm_rf(dir);
	free(ts);
	free(x);
	free(y);
}

static void test_file_errors(void)
{
	char tmpl[] = "/tmp/mseg-big-XXXXXX", *dir = mkdtemp(tmpl);
	struct mseg_policy_set set;
	struct mseg_err err;
	char *p, *want;
	FILE *f;
	int r;

	policy_set_init(&set);
	r = policy_load_file(&set, "/nonexistent/x.yaml", &err);
	T_CHECK(r == -ENOENT, "missing file %d", r);
	T_STREQ(fmt(&err), "/nonexistent/x.yaml: cannot open: No such file or directory");
	r = policy_load_path(&set, "/nonexistent", &err);
	T_CHECK(r == -ENOENT, "missing path %d", r);
	r = policy_load_file(&set, "/tmp", &err);
	T_CHECK(r == -EISDIR, "directory as a file %d", r);
	T_STREQ(fmt(&err), "/tmp: is a directory");

	T_CHECK(dir != NULL, "mkdtemp");
	if (!dir)
		return;
	/* an oversized file is refused before it is read */
	p = path_join(dir, "big.yaml");
	f = fopen(p, "w");
	T_CHECK(f != NULL, "fopen");
	if (f) {
		size_t i;

		fputs("# padding\n", f);
		for (i = 10; i < POLICY_MAX_FILE_SIZE + 1; i++)
			fputc(i % 64 == 63 ? '\n' : '#', f);
		fclose(f);
	}
	r = policy_load_file(&set, p, &err);
	T_CHECK(r == -EFBIG && set.n == 0, "too large: %d", r);
	if (asprintf(&want, "%s: file too large (1048577 bytes, limit 1048576)", p) < 0)
		abort();
	T_STREQ(fmt(&err), want);
	free(want);
	free(p);
	rm_rf(dir);
	policy_set_release(&set);
}

/* ---- generated hostile input ---- */

static void test_limits(void)
{
	size_t n = POLICY_MAX_FILE_SIZE + 1, i;
	char *buf = malloc(n + 1);

	if (!buf)
		abort();
	/* a body one byte over the limit */
	memset(buf, ' ', n);
	expect_error("body", buf, n, "body: file too large (1048577 bytes, limit 1048576)");

	/* nesting: 32 levels are fine for the parser, 33 are not */
	for (i = 0; i < 40; i++)
		buf[i] = '[';
	for (i = 40; i < 80; i++)
		buf[i] = ']';
	buf[80] = '\n';
	expect_error("deep.yaml", buf, 81, "deep.yaml:1:33: nesting too deep (limit 32 levels)");
	{
		/* 32 levels parse as YAML and fail only as a policy */
		char ok[80];

		memset(ok, '[', 32);
		memset(ok + 32, ']', 32);
		ok[64] = '\n';
		expect_error("d32.yaml", ok, 65,
			     "d32.yaml:1:1: document: expected a mapping, got a sequence");
	}
	/* block-style nesting */
	{
		size_t len = 0;

		for (i = 0; i < 40; i++) {
			memset(buf + len, ' ', 2 * i);
			len += 2 * i;
			len += (size_t)sprintf(buf + len, "k%zu:\n", i);
		}
		expect_error("deep2.yaml", buf, len,
			     "deep2.yaml:33:65: nesting too deep (limit 32 levels)");
	}

	/* node count: [0,0,0,...] with more items than POLICY_MAX_NODES */
	{
		size_t len = 0, items = POLICY_MAX_NODES + 10;
		char want[128];

		buf[len++] = '[';
		for (i = 0; i < items && len + 3 < n; i++) {
			buf[len++] = '0';
			buf[len++] = ',';
		}
		buf[len - 1] = ']';
		snprintf(want, sizeof(want), "many.yaml:1:%d: too many YAML nodes (limit %d)",
			 2 * POLICY_MAX_NODES, POLICY_MAX_NODES);
		expect_error("many.yaml", buf, len, want);
	}
	free(buf);
}

/* ---- the bad corpus: tests/bad/NAME.yaml + NAME.err ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, len;

	if (!f)
		return NULL;
	len = (size_t)getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (len == (size_t)-1) {
		free(buf);
		return NULL;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	return buf;
}

static size_t corpus_cases;

static void run_bad_corpus(void)
{
	static const char preloaded[] =
		"apiVersion: mseg.io/v1\nkind: AllowList\n"
		"metadata: {name: existing, namespace: corpus}\n"
		"spec: {groups: {a: {selector: {}}}}\n";
	struct mseg_policy_set set;
	struct mseg_policy *pre;
	struct mseg_err err;
	char **names = NULL;
	size_t n = 0, i;
	struct dirent *de;
	DIR *d;

	policy_set_init(&set);
	t_begin();
	T_CHECK(policy_parse_buffer(&set, "preloaded.yaml", preloaded, strlen(preloaded), &err) ==
			0 && set.n == 1,
		"preload: %s", fmt(&err));
	d = opendir(BAD_DIR);
	T_CHECK(d != NULL, "opendir %s: %s", BAD_DIR, strerror(errno));
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char *err_path;

		if (len > 4 && !strcmp(de->d_name + len - 4, ".err")) {
			/* every .err has its .yaml */
			struct stat st;

			if (asprintf(&err_path, "%s/%.*s.yaml", BAD_DIR, (int)(len - 4), de->d_name) < 0)
				abort();
			T_CHECK(stat(err_path, &st) == 0, "%s has no .yaml", de->d_name);
			free(err_path);
			continue;
		}
		if (len <= 5 || strcmp(de->d_name + len - 5, ".yaml"))
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!names)
			abort();
		names[n++] = strndup(de->d_name, len - 5);
	}
	if (d)
		closedir(d);
	t_end("bad_corpus_setup");
	if (set.n != 1)
		goto out;
	pre = set.items[0];
	qsort(names, n, sizeof(*names), name_cmp);

	for (i = 0; i < n; i++) {
		char *yaml, *errf, *want, label[300];
		int r;

		t_begin();
		if (asprintf(&yaml, "%s/%s.yaml", BAD_DIR, names[i]) < 0 ||
		    asprintf(&errf, "%s/%s.err", BAD_DIR, names[i]) < 0)
			abort();
		want = slurp(errf);
		T_CHECK(want != NULL, "missing %s", errf);
		err_clear(&err);
		r = policy_load_file(&set, yaml, &err);
		T_CHECK(r < 0, "%s loaded", yaml);
		if (want && r < 0)
			T_STREQ(fmt(&err), want);
		/* the destination set is untouched */
		T_CHECK(set.n == 1 && set.items[0] == pre, "set changed: n = %zu", set.n);
		snprintf(label, sizeof(label), "bad/%s", names[i]);
		t_end(label);
		free(yaml);
		free(errf);
		free(want);
		corpus_cases++;
	}
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	policy_set_release(&set);
}

static void test_bad_corpus_size(void)
{
	T_CHECK(corpus_cases >= 40, "only %zu corpus cases", corpus_cases);
}

/* The port parser policies use, exposed for the CLI (mseg check --port):
 * the same values and the same hints, without a position. */
static void test_port_parse(void)
{
	static const struct {
		const char *in;
		int r;
		uint8_t proto;
		uint16_t lo, hi;
		const char *msg;
	} cases[] = {
		{ "tcp/5432", 0, IPPROTO_TCP, 5432, 5432, NULL },
		{ "tcp/8000-8080", 0, IPPROTO_TCP, 8000, 8080, NULL },
		{ "udp", 0, IPPROTO_UDP, 0, 65535, NULL },
		{ "icmp", 0, IPPROTO_ICMP, 0, 0, NULL },
		{ "any", 0, 0, 0, 0, NULL },
		{ "5432", -EINVAL, 0, 0, 0, "'5432' needs a protocol, like tcp/5432" },
		{ "TCP/5432", -EINVAL, 0, 0, 0,
		  "unknown protocol 'TCP' (protocols are lowercase: 'tcp')" },
		{ "tcp/0", -EINVAL, 0, 0, 0, "port 0 out of range (1-65535)" },
		{ "tcp/x", -EINVAL, 0, 0, 0,
		  "'tcp/x' is not a valid port (like tcp/80 or tcp/8000-8080)" },
		{ "icmp/8", -EINVAL, 0, 0, 0, "icmp has no ports" },
		{ "tcp/90-80", -EINVAL, 0, 0, 0, "inverted port range 90-80 (did you mean 80-90?)" },
		{ "gre", -EINVAL, 0, 0, 0,
		  "unknown protocol 'gre' (tcp, udp, sctp, icmp, icmpv6 or any)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mseg_port port;
		struct mseg_err err;
		int r;

		err_clear(&err);
		r = policy_port_parse(cases[i].in, &port, &err);
		T_CHECK(r == cases[i].r, "%s: r = %d", cases[i].in, r);
		if (cases[i].msg) {
			T_STREQ(err.msg, cases[i].msg);
			continue;
		}
		if (r == 0)
			T_CHECK(port.proto == cases[i].proto && port.lo == cases[i].lo &&
				port.hi == cases[i].hi, "%s: proto %u %u-%u", cases[i].in,
				port.proto, port.lo, port.hi);
	}
}

int main(void)
{
	const char *root = getenv("MSEG_ROOT");

	if (root && chdir(root) < 0) {
		printf("FAIL: chdir %s\n", root);
		return 1;
	}
	T_RUN(test_shop_example);
	T_RUN(test_defaults);
	T_RUN(test_mode_isolation);
	T_RUN(test_revoke);
	T_RUN(test_learn);
	T_RUN(test_ports_syntax);
	T_RUN(test_port_parse);
	T_RUN(test_address_groups);
	T_RUN(test_empty_selector_and_self);
	T_RUN(test_multi_doc);
	T_RUN(test_doc_spans);
	T_RUN(test_json_body);
	T_RUN(test_json_error_position);
	T_RUN(test_encodings);
	T_RUN(test_set_operations);
	T_RUN(test_selector_matches);
	T_RUN(test_load_dir);
	T_RUN(test_configmap_layout);
	T_RUN(test_file_errors);
	T_RUN(test_limits);
	run_bad_corpus();
	T_RUN(test_bad_corpus_size);
	return t_exit();
}
