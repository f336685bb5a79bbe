/* Kubernetes NetworkPolicy v1: documents -> model (netpol.c), upstream
 * semantics through the compiler (who reaches whom on which port), the
 * inventory's namespaces, and node addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "t.h"

static const char *fmt(const struct mseg_err *err)
{
	static char buf[1024];

	return err_format(err, buf, sizeof(buf));
}

static struct mseg_addr ip(const char *s)
{
	struct mseg_addr a = { 0 };

	if (inet_pton(AF_INET, s, a.bytes) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.bytes) == 1)
		a.family = AF_INET6;
	else
		abort();
	return a;
}

/* A world: an inventory and policies, compiled. */
struct world {
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_plan *plan;
	struct compile_opts opts;
	int r;
};

static const char inventory_text[] =
	"namespaces:\n"
	"  - {name: shop, labels: {team: a}}\n"
	"  - {name: other, labels: {team: b}}\n"
	"endpoints:\n"
	"  - {id: db, namespace: shop, labels: {app: db}, ips: [10.0.0.1, 'fd00::1'],\n"
	"     ports: [{name: pg, port: 5432}, {name: dns, port: 53, protocol: UDP}]}\n"
	"  - {id: api, namespace: shop, labels: {app: api}, ips: [10.0.0.2, 'fd00::2']}\n"
	"  - {id: api-b, namespace: other, labels: {app: api}, ips: [10.0.1.2]}\n"
	"  - {id: web-b, namespace: other, labels: {app: web}, ips: [10.0.1.3]}\n"
	"  - {id: lone, namespace: lonely, labels: {app: api}, ips: [10.0.2.2],\n"
	"     ports: [{name: pg, port: 6543}]}\n";

static void world_load(struct world *w, const char *policies)
{
	struct mseg_err err;

	memset(w, 0, sizeof(*w));
	policy_set_init(&w->pols);
	inventory_init(&w->inv);
	w->opts.default_mode = MSEG_MODE_ENFORCE;
	w->r = inventory_parse_buffer(&w->inv, "inv.yaml", inventory_text, strlen(inventory_text),
				      &err);
	T_CHECK(w->r == 0, "inventory: %s", fmt(&err));
	w->r = policy_parse_buffer(&w->pols, "np.yaml", policies, strlen(policies), &err);
	T_CHECK(w->r == 0, "policies: %s", fmt(&err));
}

static void world_compile(struct world *w)
{
	if (w->r == 0) {
		w->r = compile_plan((const struct mseg_policy *const *)w->pols.items, w->pols.n,
				    (const struct mseg_endpoint *const *)w->inv.eps, w->inv.n,
				    &w->opts, &w->plan);
		T_CHECK(w->r == 0, "compile: %d", w->r);
	}
}

static void world_free(struct world *w)
{
	plan_free(w->plan);
	policy_set_release(&w->pols);
	inventory_release(&w->inv);
}

static const struct mseg_dir_plan *dir_plan(const struct world *w, const char *id,
					    enum mseg_dir d)
{
	for (size_t i = 0; w->plan && i < w->plan->n_eps; i++)
		if (!strcmp(w->plan->eps[i].ep->id, id))
			return &w->plan->eps[i].dir[d];
	return NULL;
}

static bool entry_admits(const struct mseg_entry *e, const struct mseg_addr *a, uint8_t proto,
			 uint16_t port)
{
	size_t n = a->family == AF_INET ? 4 : 16;

	if (e->lo.family != a->family || memcmp(a->bytes, e->lo.bytes, n) < 0 ||
	    memcmp(a->bytes, e->hi.bytes, n) > 0)
		return false;
	if (e->proto == 0)
		return true;
	if (e->proto != proto)
		return false;
	return !proto_has_ports(proto) || (port >= e->port_lo && port <= e->port_hi);
}

/* Does @dp (NULL or not isolated: yes) admit @peer on proto/port? */
static bool dir_admits(const struct mseg_dir_plan *dp, const struct mseg_addr *peer,
		       uint8_t proto, uint16_t port)
{
	if (!dp || !dp->isolated)
		return true;
	for (size_t i = 0; i < dp->n_entries; i++)
		if (entry_admits(&dp->entries[i], peer, proto, port))
			return true;
	return false;
}

static const struct mseg_endpoint *ep_get(const struct world *w, const char *id)
{
	return inventory_find(&w->inv, id);
}

/* Would @from reach @to (first address of each, same family) on proto/port? */
static bool reach(const struct world *w, const char *from, const char *to, uint8_t proto,
		  uint16_t port)
{
	const struct mseg_endpoint *a = ep_get(w, from), *b = ep_get(w, to);

	if (!a || !b)
		abort();
	return dir_admits(dir_plan(w, from, MSEG_DIR_EGRESS), &b->ips[0], proto, port) &&
	       dir_admits(dir_plan(w, to, MSEG_DIR_INGRESS), &a->ips[0], proto, port);
}

static bool reach_addr(const struct world *w, const char *id, enum mseg_dir d, const char *addr,
		       uint8_t proto, uint16_t port)
{
	struct mseg_addr a = ip(addr);

	return dir_admits(dir_plan(w, id, d), &a, proto, port);
}

#define NP_HEAD(name)                                 \
	"apiVersion: networking.k8s.io/v1\n"          \
	"kind: NetworkPolicy\n"                       \
	"metadata: {name: " name ", namespace: shop}\n"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

static void test_deny_all_ingress(void)
{
	struct world w;

	world_load(&w, NP_HEAD("deny") "spec: {podSelector: {}}\n");
	world_compile(&w);
	T_CHECK(w.pols.n == 1 && w.pols.items[0]->kind == MSEG_KIND_NETWORKPOLICY, "kind");
	T_CHECK(w.pols.n == 1 && w.pols.items[0]->isolation == MSEG_ISO_INGRESS, "iso");
	T_CHECK(dir_plan(&w, "db", MSEG_DIR_INGRESS)->isolated, "db ingress isolated");
	T_CHECK(dir_plan(&w, "db", MSEG_DIR_INGRESS)->n_entries == 0, "nothing admitted");
	T_CHECK(!dir_plan(&w, "db", MSEG_DIR_EGRESS)->isolated, "egress open");
	T_CHECK(!dir_plan(&w, "api-b", MSEG_DIR_INGRESS)->isolated, "other namespace open");
	T_CHECK(!reach(&w, "api-b", "db", TCP, 5432), "denied");
	T_CHECK(reach(&w, "db", "api-b", TCP, 80), "egress allowed");
	world_free(&w);
}

static void test_allow_all_and_types(void)
{
	struct world w;

	/* ingress: [{}] admits everything; egress rules default Egress */
	world_load(&w, NP_HEAD("all") "spec:\n  podSelector: {matchLabels: {app: db}}\n"
				      "  ingress: [{}]\n  egress: [{ports: [{port: 53, protocol: UDP}]}]\n"
		   "---\n" NP_HEAD("eonly") "spec:\n  podSelector: {matchLabels: {app: api}}\n"
		   "  policyTypes: [Egress]\n  ingress: [{}]\n");
	world_compile(&w);
	T_CHECK(reach_addr(&w, "db", MSEG_DIR_INGRESS, "192.0.2.1", IPPROTO_SCTP, 9), "any in");
	T_CHECK(reach_addr(&w, "db", MSEG_DIR_INGRESS, "2001:db8::1", TCP, 1), "any in v6");
	T_CHECK(dir_plan(&w, "db", MSEG_DIR_EGRESS)->isolated, "egress defaulted");
	T_CHECK(reach_addr(&w, "db", MSEG_DIR_EGRESS, "192.0.2.1", UDP, 53), "dns out");
	T_CHECK(!reach_addr(&w, "db", MSEG_DIR_EGRESS, "192.0.2.1", TCP, 53), "tcp 53 out");
	/* policyTypes [Egress]: ingress not isolated, its ingress rules ignored,
	 * egress isolated with no rule */
	T_CHECK(!dir_plan(&w, "api", MSEG_DIR_INGRESS)->isolated, "api ingress open");
	T_CHECK(dir_plan(&w, "api", MSEG_DIR_EGRESS)->isolated &&
			dir_plan(&w, "api", MSEG_DIR_EGRESS)->n_entries == 0,
		"api egress deny all");
	world_free(&w);
}

static void test_peers_and_or(void)
{
	struct world w;

	/* one peer with both selectors: AND; two peers: OR */
	world_load(&w, NP_HEAD("and") "spec:\n  podSelector: {matchLabels: {app: db}}\n"
				      "  ingress:\n  - from:\n"
				      "    - namespaceSelector: {matchLabels: {team: b}}\n"
				      "      podSelector: {matchLabels: {app: api}}\n"
		   "---\n" NP_HEAD("or") "spec:\n  podSelector: {matchLabels: {app: api}}\n"
		   "  ingress:\n  - from:\n"
		   "    - namespaceSelector: {matchLabels: {team: b}}\n"
		   "    - podSelector: {matchLabels: {app: db}}\n");
	world_compile(&w);
	T_CHECK(reach(&w, "api-b", "db", TCP, 5432), "api in team b");
	T_CHECK(!reach(&w, "web-b", "db", TCP, 5432), "web in team b: AND");
	T_CHECK(!reach(&w, "api", "db", TCP, 5432), "api in shop: AND");
	T_CHECK(reach(&w, "web-b", "api", TCP, 80), "any pod of team b: OR");
	T_CHECK(reach(&w, "db", "api", TCP, 80), "db of own namespace: OR");
	T_CHECK(!reach(&w, "lone", "api", TCP, 80), "other namespace");
	world_free(&w);
}

static void test_namespace_name_label(void)
{
	struct world w;

	/* the metadata.name label exists also for an undeclared namespace */
	world_load(&w, NP_HEAD("byname") "spec:\n  podSelector: {matchLabels: {app: db}}\n"
					 "  ingress:\n  - from:\n    - namespaceSelector:\n"
					 "        matchExpressions:\n"
					 "        - {key: kubernetes.io/metadata.name, operator: In,"
					 " values: [lonely]}\n");
	world_compile(&w);
	T_CHECK(reach(&w, "lone", "db", TCP, 1), "lonely by name");
	T_CHECK(!reach(&w, "api-b", "db", TCP, 1), "other");
	world_free(&w);

	world_load(&w, NP_HEAD("notin") "spec:\n  podSelector: {matchLabels: {app: db}}\n"
					"  ingress:\n  - from:\n    - namespaceSelector:\n"
					"        matchExpressions:\n"
					"        - {key: team, operator: NotIn, values: [a]}\n"
					"      podSelector:\n        matchExpressions:\n"
					"        - {key: app, operator: Exists}\n");
	world_compile(&w);
	T_CHECK(reach(&w, "lone", "db", TCP, 1), "no team label: NotIn holds");
	T_CHECK(reach(&w, "web-b", "db", TCP, 1), "team b");
	T_CHECK(!reach(&w, "api", "db", TCP, 1), "team a");
	world_free(&w);
}

static void test_ip_block(void)
{
	struct world w;

	world_load(&w, NP_HEAD("ipb") "spec:\n  podSelector: {matchLabels: {app: db}}\n"
				      "  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.1.0/24, "
				      "except: [10.0.1.2/32]}\n"
				      "    - ipBlock: {cidr: 10.0.0.0/24}\n");
	world_compile(&w);
	T_CHECK(reach(&w, "web-b", "db", TCP, 5432), "pod address in the block");
	T_CHECK(!reach(&w, "api-b", "db", TCP, 5432), "except applies to pods too");
	T_CHECK(reach(&w, "api", "db", TCP, 5432), "second block");
	T_CHECK(!reach_addr(&w, "db", MSEG_DIR_INGRESS, "fd00::2", TCP, 5432), "no IPv6");
	world_free(&w);
}

static void test_ports(void)
{
	struct world w;

	world_load(&w, NP_HEAD("ports") "spec:\n  podSelector: {matchLabels: {app: db}}\n"
					"  ingress:\n  - ports:\n    - port: pg\n"
					"    - {port: 8000, endPort: 8010}\n"
					"    - {protocol: SCTP, port: 9}\n    - {protocol: UDP}\n"
					"    - {port: dns}\n"
		   "---\n" NP_HEAD("out") "spec:\n  podSelector: {matchLabels: {app: api}}\n"
		   "  egress:\n  - ports: [{port: pg}]\n"
		   "  - to: [{ipBlock: {cidr: 10.0.2.0/24}}]\n    ports: [{port: pg}]\n");
	world_compile(&w);
	T_CHECK(reach(&w, "api-b", "db", TCP, 5432), "named ingress");
	T_CHECK(!reach(&w, "api-b", "db", TCP, 5433), "only the named port");
	T_CHECK(reach(&w, "api-b", "db", TCP, 8000) && reach(&w, "api-b", "db", TCP, 8010),
		"endPort range");
	T_CHECK(!reach(&w, "api-b", "db", TCP, 8011), "beyond endPort");
	T_CHECK(reach(&w, "api-b", "db", IPPROTO_SCTP, 9), "sctp");
	T_CHECK(reach(&w, "api-b", "db", UDP, 1234), "every UDP port");
	/* dns is UDP on the pod; the policy asks for TCP "dns" */
	T_CHECK(!reach(&w, "api-b", "db", TCP, 53), "named port of another protocol");
	/* egress: named port resolved at each destination pod */
	T_CHECK(reach(&w, "api", "db", TCP, 5432), "egress named to db");
	T_CHECK(reach(&w, "api", "lone", TCP, 6543), "egress named to lone (ipBlock)");
	T_CHECK(!reach(&w, "api", "lone", TCP, 5432), "not db's number at lone");
	T_CHECK(!reach(&w, "api", "web-b", TCP, 5432), "web-b has no 'pg'");
	T_CHECK(!reach_addr(&w, "api", MSEG_DIR_EGRESS, "192.0.2.1", TCP, 5432),
		"no address outside pods");
	world_free(&w);
}

static void test_union_with_allowlist(void)
{
	struct world w;

	world_load(&w, NP_HEAD("np") "spec:\n  podSelector: {matchLabels: {app: db}}\n"
				     "  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}],"
				     " ports: [{port: 5432}]}]\n"
		   "---\napiVersion: mseg.io/v1\nkind: AllowList\n"
		   "metadata: {name: al, namespace: shop}\n"
		   "spec:\n  mode: audit\n  groups:\n    db: {selector: {app: db}}\n"
		   "    mon: {cidrs: [192.0.2.0/24]}\n"
		   "  allow: [{from: mon, to: db, ports: [tcp/9187]}]\n");
	world_compile(&w);
	T_CHECK(reach(&w, "api", "db", TCP, 5432), "NetworkPolicy admits");
	T_CHECK(reach_addr(&w, "db", MSEG_DIR_INGRESS, "192.0.2.5", TCP, 9187), "AllowList admits");
	T_CHECK(!reach_addr(&w, "db", MSEG_DIR_INGRESS, "192.0.2.5", TCP, 5432), "neither");
	/* the AllowList isolates egress too (isolation: both, audit); the
	 * NetworkPolicy's enforce wins where both isolate */
	T_CHECK(dir_plan(&w, "db", MSEG_DIR_INGRESS)->mode == MSEG_MODE_ENFORCE, "enforce");
	T_CHECK(dir_plan(&w, "db", MSEG_DIR_EGRESS)->isolated &&
			dir_plan(&w, "db", MSEG_DIR_EGRESS)->mode == MSEG_MODE_AUDIT,
		"egress audit from the AllowList");
	world_free(&w);
}

static void test_node_addrs(void)
{
	struct mseg_addr node[2] = { ip("10.0.0.254"), ip("fd00::fe") };
	struct world w;
	const struct mseg_dir_plan *dp;
	bool found = false;

	world_load(&w, NP_HEAD("deny") "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n");
	w.opts.node_addrs = node;
	w.opts.n_node_addrs = 2;
	world_compile(&w);
	T_CHECK(reach_addr(&w, "db", MSEG_DIR_INGRESS, "10.0.0.254", UDP, 9), "node in");
	T_CHECK(reach_addr(&w, "db", MSEG_DIR_EGRESS, "fd00::fe", TCP, 22), "node out v6");
	T_CHECK(!reach_addr(&w, "db", MSEG_DIR_EGRESS, "10.0.0.253", TCP, 22), "not a node");
	dp = dir_plan(&w, "api", MSEG_DIR_EGRESS);
	for (size_t i = 0; dp && i < dp->n_entries; i++)
		if (dp->entries[i].policy == ENTRY_POLICY_NODE)
			found = true;
	T_CHECK(found, "provenance ENTRY_POLICY_NODE");
	T_CHECK(!dir_plan(&w, "api-b", MSEG_DIR_INGRESS)->isolated &&
			dir_plan(&w, "api-b", MSEG_DIR_INGRESS)->n_entries == 0,
		"not isolated: no entries");
	world_free(&w);
}

/* Each item of a List knows its own bytes (mseg apply sends them as a
 * document), also after non-ASCII text: libyaml counts characters. */
#define FLOW_B \
	"{apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: b},\n" \
	"   spec: {podSelector: {}}}"

static void test_list_item_spans(void)
{
	static const char buf[] =
		"# caf\xc3\xa9 \xe2\x9c\x93\n"
		"apiVersion: v1\nkind: List\nitems:\n"
		"- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n"
		"  metadata: {name: a, namespace: shop}  # \xc3\xa9\n  spec: {podSelector: {}}\n"
		"- " FLOW_B "\n"
		"---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n"
		"- metadata: {name: c}\n  spec: {egress: [{}]}\n"
		"---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: d}\n"
		"spec: {podSelector: {}}\n";
	struct mseg_policy_set set;
	struct mseg_err err;
	int r;

	policy_set_init(&set);
	r = policy_parse_buffer(&set, "l.yaml", buf, strlen(buf), &err);
	T_CHECK(r == 0 && set.n == 4, "parse: %s (n %zu)", r ? fmt(&err) : "", set.n);
	if (set.n == 4) {
		const struct mseg_policy *a = set.items[0], *b = set.items[1], *c = set.items[2],
					 *d = set.items[3];

		T_CHECK(a->doc_col == 3 && !a->doc_bare &&
				!strncmp(buf + a->doc_start,
					 "apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n", 55) &&
				!strncmp(buf + a->doc_start + a->doc_len - 24,
					 "spec: {podSelector: {}}\n- {", 27),
			"a: the item's block, up to the next item");
		T_CHECK(b->doc_col == 3 && b->doc_len == strlen(FLOW_B) &&
				!strncmp(buf + b->doc_start, FLOW_B, b->doc_len),
			"b: the flow mapping");
		T_CHECK(c->doc_bare && c->doc_col == 3 &&
				!strncmp(buf + c->doc_start, "metadata: {name: c}\n  spec:", 27),
			"c: a bare NetworkPolicyList item");
		T_CHECK(d->doc_col == 1 && !d->doc_bare &&
				d->doc_start + d->doc_len == strlen(buf) &&
				!strcmp(buf + d->doc_start, "---\napiVersion: networking.k8s.io/v1\nkind: "
							    "NetworkPolicy\nmetadata: {name: d}\n"
							    "spec: {podSelector: {}}\n"),
			"d: a whole document after non-ASCII text");
	}
	policy_set_release(&set);
}

static void test_lists_and_json(void)
{
	static const char list[] =
		"apiVersion: v1\nkind: List\nmetadata: {resourceVersion: ''}\nitems:\n"
		"- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n"
		"  metadata:\n    name: a\n    namespace: shop\n    uid: 1234\n"
		"    resourceVersion: '99'\n    generation: 2\n"
		"    creationTimestamp: '2026-12-06T00:00:00Z'\n"
		"    annotations: {kubectl.kubernetes.io/last-applied-configuration: '{}'}\n"
		"    managedFields: [{manager: kubectl, operation: Update}]\n"
		"  spec: {podSelector: {}}\n  status: {}\n"
		"- apiVersion: mseg.io/v1\n  kind: AllowList\n  metadata: {name: b}\n"
		"  spec: {groups: {x: {selector: {}}}}\n"
		"---\n"
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n"
		"- metadata: {name: c.d, namespace: other}\n  spec: {egress: [{}]}\n";
	static const char json[] =
		"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
		"\"metadata\":{\"name\":\"j\"},\"spec\":{\"podSelector\":{},"
		"\"ingress\":[{\"ports\":[{\"port\":80},{\"port\":\"http\"}]}]}}";
	struct mseg_policy_set set;
	struct mseg_err err;
	int r;

	policy_set_init(&set);
	r = policy_parse_buffer(&set, "list.yaml", list, strlen(list), &err);
	T_CHECK(r == 0 && set.n == 3, "list: %s (n %zu)", r ? fmt(&err) : "", set.n);
	if (set.n == 3) {
		T_STREQ(set.items[0]->name, "a");
		T_CHECK(set.items[1]->kind == MSEG_KIND_ALLOWLIST, "b is an AllowList");
		T_STREQ(set.items[2]->ns, "other");
		T_CHECK(set.items[2]->isolation == MSEG_ISO_BOTH, "c: egress defaulted");
		T_CHECK(set.items[2]->pos.line == 26, "c at line %u", set.items[2]->pos.line);
	}
	r = policy_parse_buffer(&set, "j.json", json, strlen(json), &err);
	T_CHECK(r == 0 && set.n == 4, "json: %s", r ? fmt(&err) : "");
	if (set.n == 4) {
		const struct mseg_rule *rule = &set.items[3]->rules[0];

		T_STREQ(set.items[3]->ns, "default");
		T_CHECK(set.items[3]->n_rules == 1 && rule->n_ports == 2 && rule->ports[0].lo == 80 &&
				!rule->ports[0].name && rule->ports[1].name &&
				!strcmp(rule->ports[1].name, "http"),
			"ports");
	}
	/* a quoted number is a name, and not a valid one */
	r = policy_parse_buffer(&set, "q.yaml",
				NP_HEAD("q") "spec: {ingress: [{ports: [{port: '80'}]}]}\n",
				strlen(NP_HEAD("q") "spec: {ingress: [{ports: [{port: '80'}]}]}\n"),
				&err);
	T_CHECK(r == -EINVAL && set.n == 4, "quoted number");
	T_CHECK(strstr(fmt(&err), "q.yaml:4:34: spec.ingress[0].ports[0].port: '80' is not a "
				  "valid port") != NULL,
		"%s", fmt(&err));
	policy_set_release(&set);
}

static void test_inventory_namespaces(void)
{
	struct mseg_inventory inv;
	struct mseg_namespace *ns = NULL;
	const struct mseg_endpoint *ep;
	struct mseg_label l = { "team", "c" };
	struct mseg_err err;
	int r;

	inventory_init(&inv);
	r = inventory_parse_buffer(&inv, "inv.yaml", inventory_text, strlen(inventory_text), &err);
	T_CHECK(r == 0 && inv.n_nss == 2 && inv.n == 5, "load: %s", r ? fmt(&err) : "");
	ep = inventory_find(&inv, "db");
	T_CHECK(ep && ep->n_ns_labels == 2 && !strcmp(ep->ns_labels[0].key, NS_NAME_LABEL) &&
			!strcmp(ep->ns_labels[0].value, "shop") &&
			!strcmp(ep->ns_labels[1].value, "a"),
		"db's namespace labels");
	ep = inventory_find(&inv, "lone");
	T_CHECK(ep && ep->n_ns_labels == 1 && !strcmp(ep->ns_labels[0].value, "lonely"),
		"undeclared namespace: the name label");

	/* a namespace changes: refill */
	T_CHECK(namespace_new("lonely", &l, 1, &ns) == 0, "namespace_new");
	T_CHECK(inventory_ns_put(&inv, ns) == 0, "put");
	T_CHECK(inventory_ns_labels_fill(&inv, &inv) == 0, "fill");
	ep = inventory_find(&inv, "lone");
	T_CHECK(ep && ep->n_ns_labels == 2 && !strcmp(ep->ns_labels[1].value, "c"), "refilled");
	T_CHECK(inventory_ns_remove(&inv, "lonely") == 0 && inventory_ns_labels_fill(&inv, &inv) ==
			0 && ep->n_ns_labels == 1, "removed");
	T_CHECK(namespace_new("x", &(struct mseg_label){ NS_NAME_LABEL, "y" }, 1, &ns) == -EINVAL,
		"metadata.name must be the name");

	/* errors: file:line:col, nothing changes */
	{
		static const struct {
			const char *text, *want;
		} bad[] = {
			{ "namespaces:\n  - {name: shop}\n",
			  "b.yaml:2:12: namespace 'shop' is already defined at inv.yaml:2:5" },
			{ "namespaces:\n  - {name: Shop}\n",
			  "b.yaml:2:12: namespaces[0].name: 'Shop' is not a valid namespace name" },
			{ "namespaces:\n  - {name: n1, labels: {kubernetes.io/metadata.name: n2}}\n",
			  "b.yaml:2:54: namespace 'n1': labels: label 'kubernetes.io/metadata.name' "
			  "is always the namespace's name ('n1')" },
			{ "namespaces:\n  - {name: n1, lables: {}}\n",
			  "b.yaml:2:16: namespaces[0]: unknown key 'lables'" },
			{ "endpoints:\n  - {id: x, namespace: other, ns_labels: {team: z}, ips: [10.9.0.1]}\n",
			  "b.yaml:2:42: endpoint 'x': ns_labels: namespace 'other' is declared at "
			  "inv.yaml:3:5; its labels are given there" },
			{ "namespaces:\n  - {name: n1, labels: {team: [a]}}\n",
			  "b.yaml:2:31: namespace 'n1': labels: label 'team': expected a string" },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			err_clear(&err);
			r = inventory_parse_buffer(&inv, "b.yaml", bad[i].text, strlen(bad[i].text),
						   &err);
			T_CHECK(r == -EINVAL, "bad %zu loaded", i);
			T_CHECK(!strncmp(fmt(&err), bad[i].want, strlen(bad[i].want)),
				"bad %zu:\n    got:  %s\n    want: %s", i, fmt(&err), bad[i].want);
			T_CHECK(inv.n == 5 && inv.n_nss == 2, "bad %zu changed the inventory", i);
		}
	}
	/* the REST body of a namespace */
	ns = NULL;
	r = namespace_parse_buffer("web", "body", "{\"labels\": {\"team\": \"w\"}}", 25, &ns, &err);
	T_CHECK(r == 0 && ns && ns->n_labels == 2 && !strcmp(ns->name, "web"), "body: %s",
		r ? fmt(&err) : "");
	namespace_free(ns);
	r = namespace_parse_buffer("web", "body", "{\"name\": \"api\"}", 15, &ns, &err);
	T_CHECK(r == -EINVAL && strstr(fmt(&err), "does not match"), "name mismatch: %s",
		fmt(&err));
	inventory_release(&inv);
}

int main(void)
{
	T_RUN(test_deny_all_ingress);
	T_RUN(test_allow_all_and_types);
	T_RUN(test_peers_and_or);
	T_RUN(test_namespace_name_label);
	T_RUN(test_ip_block);
	T_RUN(test_ports);
	T_RUN(test_union_with_allowlist);
	T_RUN(test_node_addrs);
	T_RUN(test_lists_and_json);
	T_RUN(test_list_item_spans);
	T_RUN(test_inventory_namespaces);
	return t_exit();
}
