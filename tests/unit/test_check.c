/* check_decide: would A reach B, and which rule or which policy decides. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/compile/check.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "t.h"

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
	"  groups:\n"
	"    box: {selector: {app: box}}\n"
	"  allow:\n"
	"    - {from: world, to: box, ports: [tcp/22]}\n";

static const char endpoints[] =
	"endpoints:\n"
	"  - {id: web-1, namespace: shop, labels: {app: web}, ips: [10.0.0.1, \"fd00::1\"]}\n"
	"  - {id: api-1, namespace: shop, labels: {app: api}, ips: [10.0.0.2, \"fd00::2\"]}\n"
	"  - {id: db-1, namespace: shop, labels: {app: db}, ips: [10.0.0.3]}\n"
	"  - {id: box-1, namespace: lab, labels: {app: box}, ips: [10.0.0.4]}\n"
	"  - {id: free-1, namespace: other, ips: [10.0.0.5, \"fd00::5\"]}\n"
	"  - {id: v6only, namespace: other, ips: [\"fd00::6\"]}\n";

static struct mseg_policy_set pols;
static struct mseg_inventory inv;
static struct compile_opts opts = { .default_mode = MSEG_MODE_ENFORCE };

static int run(const char *from, const char *to, uint8_t proto, uint16_t port,
	       struct check_result *res, struct mseg_err *err)
{
	struct check_query q = { .from = from, .to = to, .proto = proto, .port = port };

	err_clear(err);
	return check_decide((const struct mseg_policy *const *)pols.items, pols.n,
			    (const struct mseg_endpoint *const *)inv.eps, inv.n, &opts, &q, res, err);
}

static void test_allowed_with_rule(void)
{
	struct check_result r;
	struct mseg_err err;

	T_CHECK(run("web-1", "api-1", IPPROTO_TCP, 9005, &r, &err) == 0, "%s", err.msg);
	T_CHECK(r.verdict == CHECK_ALLOWED, "verdict %d", r.verdict);
	T_CHECK(r.egress.ep && !strcmp(r.egress.ep->id, "web-1"), "egress side");
	T_CHECK(r.egress.isolated && r.egress.allowed && r.egress.policy &&
		!strcmp(r.egress.policy->name, "shop") && r.egress.rule == 1,
		"egress rule %u", r.egress.rule);
	T_CHECK(r.ingress.isolated && r.ingress.allowed && r.ingress.rule == 1, "ingress rule %u",
		r.ingress.rule);
	T_CHECK(r.src.family == AF_INET, "IPv4 preferred");
	/* icmp has no port */
	T_CHECK(run("web-1", "api-1", IPPROTO_ICMP, 0, &r, &err) == 0 && r.verdict == CHECK_ALLOWED,
		"icmp");
}

static void test_denied_names_policy(void)
{
	struct check_result r;
	struct mseg_err err;

	T_CHECK(run("web-1", "db-1", IPPROTO_TCP, 5432, &r, &err) == 0, "%s", err.msg);
	T_CHECK(r.verdict == CHECK_DENIED, "verdict %d", r.verdict);
	T_CHECK(!r.egress.allowed && r.egress.n_isolating == 1 &&
		!strcmp(r.egress.isolating[0]->name, "shop"), "egress isolated by shop/shop");
	T_CHECK(!r.ingress.allowed && r.ingress.n_isolating == 1, "ingress isolated");
	T_CHECK(!r.ingress.default_deny, "not default deny");
	/* port out of the range */
	T_CHECK(run("web-1", "api-1", IPPROTO_TCP, 9011, &r, &err) == 0 && r.verdict == CHECK_DENIED,
		"9011");
}

static void test_addresses(void)
{
	struct check_result r;
	struct mseg_err err;

	/* an outside address in the office CIDR: only db's ingress decides */
	T_CHECK(run("192.0.2.9", "db-1", IPPROTO_TCP, 5432, &r, &err) == 0, "%s", err.msg);
	T_CHECK(r.verdict == CHECK_ALLOWED && !r.egress.ep && r.ingress.rule == 3, "office rule 3");
	T_CHECK(run("198.51.100.1", "db-1", IPPROTO_TCP, 5432, &r, &err) == 0 &&
		r.verdict == CHECK_DENIED, "outside office");
	/* an address that belongs to an endpoint is that endpoint */
	T_CHECK(run("10.0.0.2", "10.0.0.3", IPPROTO_TCP, 5432, &r, &err) == 0 &&
		r.verdict == CHECK_ALLOWED && r.egress.ep && !strcmp(r.egress.ep->id, "api-1"),
		"api by address");
	/* world -> web */
	T_CHECK(run("203.0.113.7", "fd00::1", IPPROTO_TCP, 443, &r, &err) == -EINVAL,
		"mixed families refused");
	T_CHECK(run("2001:db8::7", "fd00::1", IPPROTO_TCP, 443, &r, &err) == 0 &&
		r.verdict == CHECK_ALLOWED, "world over IPv6");
	/* web's egress to the world is not allowed */
	T_CHECK(run("web-1", "203.0.113.7", IPPROTO_TCP, 443, &r, &err) == 0 &&
		r.verdict == CHECK_DENIED && r.egress.n_isolating == 1, "egress to the world");
	/* neither side managed */
	T_CHECK(run("203.0.113.7", "198.51.100.1", IPPROTO_TCP, 1, &r, &err) == 0 &&
		r.verdict == CHECK_ALLOWED && !r.egress.ep && !r.ingress.ep, "unmanaged");
}

static void test_errors_and_modes(void)
{
	struct check_result r;
	struct mseg_err err;

	T_CHECK(run("nope", "db-1", IPPROTO_TCP, 1, &r, &err) == -EINVAL, "unknown id");
	T_STREQ(err.msg, "from 'nope': not an endpoint id or an address");
	T_CHECK(run("db-1", "v6only", IPPROTO_TCP, 1, &r, &err) == -EINVAL, "no common family");
	/* audit: refused but passes */
	T_CHECK(run("free-1", "box-1", IPPROTO_TCP, 23, &r, &err) == 0, "%s", err.msg);
	T_CHECK(r.verdict == CHECK_AUDITED && r.ingress.mode == MSEG_MODE_AUDIT, "audited %d",
		r.verdict);
	/* not covered: open */
	T_CHECK(run("web-1", "free-1", IPPROTO_TCP, 80, &r, &err) == 0 && r.ingress.allowed &&
		!r.ingress.isolated, "free-1 open");
	/* default deny isolates it, with no policy to name */
	opts.default_deny = true;
	T_CHECK(run("203.0.113.7", "free-1", IPPROTO_TCP, 80, &r, &err) == 0, "%s", err.msg);
	T_CHECK(r.verdict == CHECK_DENIED && r.ingress.default_deny && r.ingress.n_isolating == 0,
		"default deny");
	opts.default_deny = false;
}

/* the allow-list index of the rule an entry came from */
static unsigned rule_of(const struct mseg_entry *e)
{
	return pols.items[e->policy]->rules[e->rule].index;
}

/* The lookup the revocation of established connections shares with check:
 * per direction plan, peer address, protocol and destination port. */
static void test_dir_admits(void)
{
	struct mseg_plan *plan = NULL;
	const struct mseg_dir_plan *db = NULL, *free1 = NULL;
	const struct mseg_entry *e;
	struct mseg_addr api = { .family = AF_INET, .bytes = { 10, 0, 0, 2 } };
	struct mseg_addr office = { .family = AF_INET, .bytes = { 192, 0, 2, 9 } };
	struct mseg_addr web = { .family = AF_INET, .bytes = { 10, 0, 0, 1 } };

	T_CHECK(compile_plan((const struct mseg_policy *const *)pols.items, pols.n,
			     (const struct mseg_endpoint *const *)inv.eps, inv.n, &opts, &plan) == 0,
		"compile");
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n_eps; i++) {
		if (!strcmp(plan->eps[i].ep->id, "db-1"))
			db = &plan->eps[i].dir[MSEG_DIR_INGRESS];
		if (!strcmp(plan->eps[i].ep->id, "free-1"))
			free1 = &plan->eps[i].dir[MSEG_DIR_INGRESS];
	}
	T_CHECK(db && free1, "plans found");
	if (db && free1) {
		T_CHECK(check_dir_admits(db, &api, IPPROTO_TCP, 5432, &e) && e && rule_of(e) == 2,
			"api -> db tcp/5432 admitted by rule 2");
		T_CHECK(check_dir_admits(db, &office, IPPROTO_TCP, 5432, &e) && e && rule_of(e) == 3,
			"office -> db admitted by rule 3");
		T_CHECK(!check_dir_admits(db, &api, IPPROTO_TCP, 5433, &e) && !e, "other port refused");
		T_CHECK(!check_dir_admits(db, &web, IPPROTO_TCP, 5432, NULL), "web refused");
		T_CHECK(!check_dir_admits(db, &api, IPPROTO_UDP, 5432, NULL), "udp refused");
		T_CHECK(check_dir_admits(free1, &web, IPPROTO_UDP, 1, &e) && !e,
			"not isolated: everything, no entry");
	}
	plan_free(plan);
}

/* The index answers as the linear lookup does, for addresses at, around
 * and between every entry's bounds, every protocol and port of the plan. */
static void test_index_matches_linear(void)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 0 };
	static const uint16_t ports[] = { 0, 22, 443, 5432, 9000, 9005, 9011 };
	struct mseg_plan *plan = NULL;
	size_t checked = 0, mismatched = 0;

	T_CHECK(compile_plan((const struct mseg_policy *const *)pols.items, pols.n,
			     (const struct mseg_endpoint *const *)inv.eps, inv.n, &opts, &plan) == 0,
		"compile");
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n_eps; i++) {
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			const struct mseg_dir_plan *dp = &plan->eps[i].dir[d];
			struct check_index *ix = check_index_new(dp);

			T_CHECK(ix != NULL, "index");
			for (size_t k = 0; ix && k < dp->n_entries; k++) {
				for (int w = 0; w < 4; w++) {
					struct mseg_addr a = w < 2 ? dp->entries[k].lo : dp->entries[k].hi;
					size_t last = a.family == AF_INET ? 3 : 15;

					if (w == 1)
						a.bytes[last]--;   /* just below lo (or wraps) */
					if (w == 3)
						a.bytes[last]++;   /* just above hi */
					for (size_t p = 0; p < sizeof(protos); p++)
						for (size_t q = 0; q < sizeof(ports) / sizeof(ports[0]); q++) {
							checked++;
							if (check_dir_admits(dp, &a, protos[p], ports[q], NULL) !=
							    check_index_admits(ix, &a, protos[p], ports[q]))
								mismatched++;
						}
				}
			}
			check_index_free(ix);
		}
	}
	T_CHECK(checked > 100 && mismatched == 0, "%zu of %zu lookups differ", mismatched, checked);
	plan_free(plan);
}

int main(void)
{
	struct mseg_err err;

	policy_set_init(&pols);
	inventory_init(&inv);
	if (policy_parse_buffer(&pols, "p.yaml", policies, strlen(policies), &err) < 0 ||
	    inventory_parse_buffer(&inv, "e.yaml", endpoints, strlen(endpoints), &err) < 0) {
		char buf[1024];

		printf("FAIL: setup: %s\n", err_format(&err, buf, sizeof(buf)));
		return 1;
	}
	T_RUN(test_allowed_with_rule);
	T_RUN(test_denied_names_policy);
	T_RUN(test_addresses);
	T_RUN(test_errors_and_modes);
	T_RUN(test_dir_admits);
	T_RUN(test_index_matches_linear);
	policy_set_release(&pols);
	inventory_release(&inv);
	return t_exit();
}
