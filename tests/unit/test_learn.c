/* learn: recorded flows -> an AllowList that `mseg apply` takes. The
 * rendered YAML is compared whole, and parsed back with the policy parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/compile/check.h"
#include "mseg/compile/learn.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "t.h"

static const char endpoints[] =
	"endpoints:\n"
	"  - {id: web-1, namespace: shop, labels: {app: web, tier: front, pod: a1}, ips: [10.0.0.1]}\n"
	"  - {id: web-2, namespace: shop, labels: {app: web, tier: front, pod: a1}, ips: [10.0.0.4]}\n"
	"  - {id: api-1, namespace: shop, labels: {app: api, tier: back}, ips: [10.0.0.2]}\n"
	"  - {id: db-1, namespace: shop, labels: {app: db, tier: back}, ips: [10.0.0.3]}\n"
	"  - {id: bare, namespace: shop, ips: [10.0.0.9]}\n"
	"  - {id: other-1, namespace: lab, labels: {app: api}, ips: [10.0.1.1]}\n";

static struct mseg_inventory inv;

#define S 1000000000ull
#define T0 (1796533200ull * S)   /* 2026-12-06T05:00:00Z */

static struct learn_flow fl(const char *ep, enum mseg_dir dir, const char *src, const char *dst,
			    uint8_t proto, uint16_t dport, uint64_t count, uint64_t first_s,
			    uint64_t last_s)
{
	struct learn_flow f = { .ep_id = ep, .dir = dir, .proto = proto,
				.has_port = proto == 6 || proto == 17, .dport = dport,
				.count = count, .first_ns = T0 + first_s * S,
				.last_ns = T0 + last_s * S };

	addr_parse(src, &f.src);
	addr_parse(dst, &f.dst);
	return f;
}

static char *render(const struct learn_result *r, const struct learn_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		abort();
	T_CHECK(learn_render_yaml(f, r, o) == 0, "render");
	fclose(f);
	return buf;
}

static const struct mseg_endpoint *const *eps(void)
{
	return (const struct mseg_endpoint *const *)inv.eps;
}

/* the app: web (two replicas) -> api tcp/8080, api -> db tcp/5432,
 * api -> three outside addresses tcp/443, an outside client -> web tcp/443
 * and icmp; recorded at one or both ends */
static void test_app(void)
{
	const struct learn_flow flows[] = {
		fl("web-1", MSEG_DIR_EGRESS, "10.0.0.1", "10.0.0.2", 6, 8080, 3, 0, 30),
		fl("api-1", MSEG_DIR_INGRESS, "10.0.0.1", "10.0.0.2", 6, 8080, 3, 0, 30),
		fl("web-2", MSEG_DIR_EGRESS, "10.0.0.4", "10.0.0.2", 6, 8080, 1, 40, 40),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "10.0.0.3", 6, 5432, 2, 5, 50),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "10.0.0.3", 6, 5433, 1, 6, 6),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "192.0.2.10", 6, 443, 1, 1, 1),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "192.0.2.11", 6, 443, 1, 2, 2),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "192.0.2.12", 6, 443, 1, 3, 3),
		fl("web-1", MSEG_DIR_INGRESS, "198.51.100.7", "10.0.0.1", 6, 443, 5, 0, 60),
		fl("web-1", MSEG_DIR_INGRESS, "198.51.100.7", "10.0.0.1", 1, 0, 1, 7, 7),
		/* another namespace's endpoint recorded it: not ours */
		fl("other-1", MSEG_DIR_EGRESS, "10.0.1.1", "10.0.0.3", 6, 5432, 1, 0, 0),
	};
	static const char want[] =
		"# learned by mseg from 10 recorded flows\n"
		"apiVersion: mseg.io/v1\n"
		"kind: AllowList\n"
		"metadata:\n"
		"  name: \"learned\"\n"
		"  namespace: \"shop\"\n"
		"spec:\n"
		"  mode: enforce\n"
		"  groups:\n"
		"    web: {selector: {\"app\": \"web\"}}\n"
		"    api: {selector: {\"app\": \"api\"}}\n"
		"    db: {selector: {\"app\": \"db\"}}\n"
		"    web-clients: {cidrs: [198.51.100.7/32]}\n"
		"    api-upstreams: {cidrs: [192.0.2.10/31, 192.0.2.12/32]}\n"
		"  allow:\n"
		"    # 7 flows, first 2026-12-06T05:00:00.000Z, last 2026-12-06T05:00:40.000Z\n"
		"    - {from: web, to: api, ports: [tcp/8080]}\n"
		"    # 3 flows, first 2026-12-06T05:00:05.000Z, last 2026-12-06T05:00:50.000Z\n"
		"    - {from: api, to: db, ports: [tcp/5432, tcp/5433]}\n"
		"    # 6 flows, first 2026-12-06T05:00:00.000Z, last 2026-12-06T05:01:00.000Z\n"
		"    - {from: web-clients, to: web, ports: [icmp, tcp/443]}\n"
		"    # 3 flows, first 2026-12-06T05:00:01.000Z, last 2026-12-06T05:00:03.000Z\n"
		"    - {from: api, to: api-upstreams, ports: [tcp/443]}\n";
	struct learn_opts o = { .ns = "shop" };
	struct learn_result *r = NULL;
	struct mseg_policy_set set;
	struct mseg_err err;
	char *yaml;

	T_CHECK(learn_run(flows, sizeof(flows) / sizeof(flows[0]), eps(), inv.n, &o, &r) == 0,
		"learn");
	if (!r)
		return;
	T_CHECK(r->flows_used == 10 && r->flows_skipped == 1, "used %zu skipped %zu",
		r->flows_used, r->flows_skipped);
	yaml = render(r, &o);
	T_STREQ(yaml, want);
	/* ready to apply: the policy parser takes it */
	policy_set_init(&set);
	T_CHECK(policy_parse_buffer(&set, "learned.yaml", yaml, strlen(yaml), &err) == 0,
		"parse back: %s", err.msg);
	T_CHECK(set.n == 1 && set.items[0]->n_rules > 0, "one list with rules");
	policy_set_release(&set);
	free(yaml);
	learn_result_free(r);
}

/* accepted-connection summaries (learn mode) next to audited flows: the
 * counts stay apart, in the header and in each rule's comment */
static void test_accepted(void)
{
	struct learn_flow flows[] = {
		fl("web-1", MSEG_DIR_EGRESS, "10.0.0.1", "10.0.0.2", 6, 8080, 12, 0, 30),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "10.0.0.3", 6, 5432, 4, 5, 50),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "10.0.0.3", 6, 5432, 2, 1, 60),
	};
	static const char want[] =
		"# learned by mseg from 1 recorded flows and 16 accepted connections\n"
		"apiVersion: mseg.io/v1\n"
		"kind: AllowList\n"
		"metadata:\n"
		"  name: \"learned\"\n"
		"  namespace: \"shop\"\n"
		"spec:\n"
		"  mode: enforce\n"
		"  groups:\n"
		"    web: {selector: {\"app\": \"web\"}}\n"
		"    api: {selector: {\"app\": \"api\"}}\n"
		"    db: {selector: {\"app\": \"db\"}}\n"
		"  allow:\n"
		"    # 12 accepted connections, first 2026-12-06T05:00:00.000Z, last 2026-12-06T05:00:30.000Z\n"
		"    - {from: web, to: api, ports: [tcp/8080]}\n"
		"    # 2 flows, 4 accepted connections, first 2026-12-06T05:00:01.000Z, last 2026-12-06T05:01:00.000Z\n"
		"    - {from: api, to: db, ports: [tcp/5432]}\n";
	struct learn_opts o = { .ns = "shop" };
	struct learn_result *r = NULL;
	char *yaml;

	flows[0].accepted = true;
	flows[1].accepted = true;
	T_CHECK(learn_run(flows, 3, eps(), inv.n, &o, &r) == 0, "learn");
	if (!r)
		return;
	T_CHECK(r->flows_used == 1 && r->accepted_used == 16, "flows %zu accepted %llu",
		r->flows_used, (unsigned long long)r->accepted_used);
	yaml = render(r, &o);
	T_STREQ(yaml, want);
	free(yaml);
	learn_result_free(r);
}

/* --format networkpolicy: the same allows as the AllowList. Both are
 * parsed by the policy parser and asked "would A reach B on P?" for every
 * pair of endpoints and outside addresses and every port seen (and one
 * never seen): the answers must be the same. ICMP, which a NetworkPolicy
 * cannot name, is left out with a comment; an endpoint of another
 * namespace is named by its namespace and labels. */
static void test_netpol(void)
{
	const struct learn_flow flows[] = {
		fl("web-1", MSEG_DIR_EGRESS, "10.0.0.1", "10.0.0.2", 6, 8080, 3, 0, 30),
		fl("web-2", MSEG_DIR_EGRESS, "10.0.0.4", "10.0.0.2", 6, 8080, 1, 40, 40),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "10.0.0.3", 6, 5432, 2, 5, 50),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "10.0.0.3", 17, 5433, 1, 6, 6),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "192.0.2.10", 6, 443, 1, 1, 1),
		fl("api-1", MSEG_DIR_EGRESS, "10.0.0.2", "192.0.2.11", 6, 443, 1, 2, 2),
		fl("web-1", MSEG_DIR_INGRESS, "198.51.100.7", "10.0.0.1", 6, 443, 5, 0, 60),
		fl("web-1", MSEG_DIR_INGRESS, "198.51.100.7", "10.0.0.1", 1, 0, 1, 7, 7),
		fl("db-1", MSEG_DIR_EGRESS, "10.0.0.3", "10.0.0.9", 6, 22, 1, 8, 8),
		/* an endpoint of another namespace: an address in the list, a
		 * namespaceSelector + podSelector peer in the NetworkPolicy */
		fl("db-1", MSEG_DIR_INGRESS, "10.0.1.1", "10.0.0.3", 6, 5432, 1, 9, 9),
	};
	static const char *const sides[] = { "web-1", "web-2", "api-1", "db-1", "bare", "other-1",
					     "198.51.100.7", "198.51.100.8", "192.0.2.10",
					     "192.0.2.11", "192.0.2.12" };
	static const struct { uint8_t proto; uint16_t port; } ports[] = {
		{ 6, 443 }, { 6, 8080 }, { 6, 5432 }, { 17, 5433 }, { 6, 5433 }, { 6, 22 }, { 6, 9999 },
	};
	struct learn_opts o = { .ns = "shop", .name = "shop" };
	struct learn_result *r = NULL;
	struct mseg_policy_set al, np;
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_err err;
	size_t n_allowed = 0, n_denied = 0, n_differ = 0;
	char *yaml, *netpol = NULL;
	size_t len = 0;
	FILE *f;

	T_CHECK(learn_run(flows, sizeof(flows) / sizeof(flows[0]), eps(), inv.n, &o, &r) == 0,
		"learn");
	if (!r)
		return;
	yaml = render(r, &o);
	f = open_memstream(&netpol, &len);
	if (!f)
		abort();
	T_CHECK(learn_render_netpol(f, r, &o) == 0, "render");
	fclose(f);
	T_CHECK(strstr(netpol, "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
			       "metadata:\n  name: \"shop-web\"\n  namespace: \"shop\"\nspec:\n"
			       "  podSelector: {matchLabels: {\"app\": \"web\"}}\n"
			       "  policyTypes: [Ingress, Egress]\n") != NULL, "web's policy: %s", netpol);
	T_CHECK(strstr(netpol, "    # 6 flows, first 2026-12-06T05:00:00.000Z, last "
			       "2026-12-06T05:01:00.000Z\n"
			       "    - from:\n        - ipBlock: {cidr: 198.51.100.7/32}\n"
			       "      ports:\n        - {protocol: TCP, port: 443}\n") != NULL,
		"web's outside client, with its comment: %s", netpol);
	T_CHECK(strstr(netpol, "    - to:\n        - podSelector: {matchLabels: {\"app\": \"db\"}}\n"
			       "      ports:\n        - {protocol: TCP, port: 5432}\n"
			       "        - {protocol: UDP, port: 5433}\n") != NULL,
		"api -> db in api's egress: %s", netpol);
	T_CHECK(strstr(netpol, "# left out: icmp") != NULL, "icmp left out, said: %s", netpol);
	T_CHECK(strstr(netpol, "ipBlock: {cidr: 10.0.0.9/32}") != NULL,
		"the label-less endpoint by address: %s", netpol);
	T_CHECK(strstr(yaml, "db-clients: {cidrs: [10.0.1.1/32]}") != NULL,
		"the list names the other namespace's endpoint by address: %s", yaml);
	T_CHECK(strstr(netpol, "    - from:\n"
			       "        - namespaceSelector: {matchLabels: {\"kubernetes.io/metadata.name\": \"lab\"}}\n"
			       "          podSelector: {matchLabels: {\"app\": \"api\"}}\n"
			       "      ports:\n        - {protocol: TCP, port: 5432}\n") != NULL &&
		!strstr(netpol, "10.0.1.1"),
		"the NetworkPolicy names it by namespace and labels, not address: %s", netpol);
	policy_set_init(&al);
	policy_set_init(&np);
	T_CHECK(policy_parse_buffer(&al, "learned.yaml", yaml, strlen(yaml), &err) == 0, "al: %s",
		err.msg);
	T_CHECK(policy_parse_buffer(&np, "netpol.yaml", netpol, strlen(netpol), &err) == 0,
		"netpol parses: %s", err.msg);
	T_CHECK(np.n == 3, "one NetworkPolicy per group (web, api, db): %zu", np.n);
	for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
		for (size_t j = 0; j < sizeof(sides) / sizeof(sides[0]); j++) {
			for (size_t k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
				struct check_query q = { .from = sides[i], .to = sides[j],
							 .proto = ports[k].proto, .port = ports[k].port };
				struct check_result ra, rn;

				if (i == j)
					continue;
				if (check_decide((const struct mseg_policy *const *)al.items, al.n, eps(),
						 inv.n, &copts, &q, &ra, &err) < 0 ||
				    check_decide((const struct mseg_policy *const *)np.items, np.n, eps(),
						 inv.n, &copts, &q, &rn, &err) < 0) {
					T_CHECK(false, "check %s -> %s: %s", q.from, q.to, err.msg);
					continue;
				}
				if (ra.verdict != rn.verdict) {
					n_differ++;
					printf("  differ: %s -> %s %u/%u: allowlist %s, netpol %s\n", q.from,
					       q.to, q.proto, q.port, check_verdict_name(ra.verdict),
					       check_verdict_name(rn.verdict));
				}
				if (ra.verdict == CHECK_ALLOWED)
					n_allowed++;
				else
					n_denied++;
			}
		}
	}
	T_CHECK(n_differ == 0, "%zu answers differ", n_differ);
	/* the comparison decided something both ways */
	T_CHECK(n_allowed >= 8 && n_denied > 100, "allowed %zu, denied %zu", n_allowed, n_denied);
	policy_set_release(&al);
	policy_set_release(&np);
	free(netpol);
	free(yaml);
	learn_result_free(r);
}

/* the smallest distinguishing label set: app is shared by web and api
 * here, so tier is needed with it; an endpoint without labels is named by
 * its address, with a warning */
static void test_labels_and_warnings(void)
{
	static const char more[] =
		"endpoints:\n"
		"  - {id: a, namespace: n, labels: {app: x, tier: front}, ips: [10.1.0.1]}\n"
		"  - {id: b, namespace: n, labels: {app: x, tier: back}, ips: [10.1.0.2]}\n"
		"  - {id: c, namespace: n, labels: {app: y, tier: back}, ips: [10.1.0.3]}\n"
		"  - {id: d, namespace: n, ips: [10.1.0.4]}\n";
	struct mseg_inventory i2;
	struct mseg_err err;
	const struct learn_flow flows[] = {
		fl("a", MSEG_DIR_EGRESS, "10.1.0.1", "10.1.0.2", 6, 80, 1, 0, 0),
		fl("b", MSEG_DIR_EGRESS, "10.1.0.2", "10.1.0.3", 17, 53, 1, 0, 0),
		fl("d", MSEG_DIR_EGRESS, "10.1.0.4", "10.1.0.3", 6, 22, 1, 0, 0),
	};
	struct learn_opts o = { .ns = "n", .name = "app" };
	struct learn_result *r = NULL;
	char *yaml;

	inventory_init(&i2);
	T_CHECK(inventory_parse_buffer(&i2, "e.yaml", more, strlen(more), &err) == 0, "%s", err.msg);
	T_CHECK(learn_run(flows, 3, (const struct mseg_endpoint *const *)i2.eps, i2.n, &o, &r) == 0,
		"learn");
	if (r) {
		yaml = render(r, &o);
		T_CHECK(strstr(yaml, "    front: {selector: {\"tier\": \"front\"}}\n") != NULL, "a: %s", yaml);
		T_CHECK(strstr(yaml, "    x-back: {selector: {\"app\": \"x\", \"tier\": \"back\"}}\n") != NULL,
			"b: %s", yaml);
		T_CHECK(strstr(yaml, "    y: {selector: {\"app\": \"y\"}}\n") != NULL, "c: %s", yaml);
		T_CHECK(strstr(yaml, "# warning: endpoint 'd': no labels: named by its addresses\n"),
			"warning: %s", yaml);
		T_CHECK(strstr(yaml, "{cidrs: [10.1.0.4/32]}") && strstr(yaml, "ports: [tcp/22]"),
			"d by address: %s", yaml);
		T_CHECK(strstr(yaml, "ports: [udp/53]") != NULL, "udp: %s", yaml);
		free(yaml);
	}
	learn_result_free(r);
	inventory_release(&i2);
}

/* outside peers: a prefix only when every address in it was seen, or
 * widened on request */
static void test_aggregate(void)
{
	struct learn_flow flows[8];
	struct learn_opts o = { .ns = "shop" };
	struct learn_result *r = NULL;
	char a[32], *yaml;

	for (int i = 0; i < 4; i++) {   /* 203.0.113.4 .. .7: a whole /30 */
		snprintf(a, sizeof(a), "203.0.113.%d", 4 + i);
		flows[i] = fl("db-1", MSEG_DIR_INGRESS, a, "10.0.0.3", 6, 5432, 1, 0, 0);
	}
	flows[4] = fl("db-1", MSEG_DIR_INGRESS, "203.0.113.9", "10.0.0.3", 6, 5432, 1, 0, 0);
	flows[5] = fl("db-1", MSEG_DIR_INGRESS, "fd00::1:5", "fd00::3", 6, 5432, 1, 0, 0);
	T_CHECK(learn_run(flows, 6, eps(), inv.n, &o, &r) == 0, "learn");
	if (r) {
		yaml = render(r, &o);
		T_CHECK(strstr(yaml, "{cidrs: [203.0.113.4/30, 203.0.113.9/32]}") != NULL, "%s", yaml);
		/* fd00::3 is no endpoint: both sides outside, nothing to learn */
		T_CHECK(r->flows_skipped == 1, "skipped %zu", r->flows_skipped);
		free(yaml);
	}
	r = learn_result_free(r);
	o.aggregate4 = 24;
	T_CHECK(learn_run(flows, 5, eps(), inv.n, &o, &r) == 0, "learn /24");
	if (r) {
		yaml = render(r, &o);
		T_CHECK(strstr(yaml, "{cidrs: [203.0.113.0/24]}") != NULL, "%s", yaml);
		T_CHECK(strstr(yaml, "widened to /24") != NULL, "%s", yaml);
		free(yaml);
	}
	learn_result_free(r);
	T_CHECK(learn_run(flows, 5, eps(), inv.n, &(struct learn_opts){ .ns = NULL }, &r) == -EINVAL,
		"namespace required");
}

/* nothing recorded: an empty, valid list */
static void test_empty(void)
{
	struct learn_opts o = { .ns = "shop" };
	struct learn_result *r = NULL;
	struct mseg_policy_set set;
	struct mseg_err err;
	char *yaml;

	T_CHECK(learn_run(NULL, 0, eps(), inv.n, &o, &r) == 0 && r, "learn");
	if (!r)
		return;
	yaml = render(r, &o);
	T_CHECK(strstr(yaml, "allow: []") != NULL, "%s", yaml);
	policy_set_init(&set);
	/* no groups at all is not a valid list: the user sees why */
	T_CHECK(policy_parse_buffer(&set, "l.yaml", yaml, strlen(yaml), &err) < 0, "empty groups");
	policy_set_release(&set);
	free(yaml);
	learn_result_free(r);
}

int main(void)
{
	struct mseg_err err;

	inventory_init(&inv);
	if (inventory_parse_buffer(&inv, "e.yaml", endpoints, strlen(endpoints), &err) < 0) {
		printf("FAIL: setup: %s\n", err.msg);
		return 1;
	}
	T_RUN(test_app);
	T_RUN(test_accepted);
	T_RUN(test_netpol);
	T_RUN(test_labels_and_warnings);
	T_RUN(test_aggregate);
	T_RUN(test_empty);
	inventory_release(&inv);
	return t_any_failed;
}
