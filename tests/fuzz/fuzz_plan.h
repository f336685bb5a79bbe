/* The plan the read-back fuzz target compares against, and that
 * tests/tools/nlcapture programs before capturing the kernel's dump of it
 * (tests/fuzz/corpus_readback/): the policies of the incident
 * (policies/examples/incident.yaml) plus ranges (one wide enough for a
 * port-range slot), CIDRs, "any" and ICMP,
 * over four endpoints with both, one or no isolated direction. */
#ifndef MSEG_FUZZ_PLAN_H
#define MSEG_FUZZ_PLAN_H

#include <stdio.h>
#include <stdlib.h>

#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"

static const char fuzz_plan_policies[] =
	"apiVersion: mseg.io/v1\n"
	"kind: AllowList\n"
	"metadata: {name: shop, namespace: shop}\n"
	"spec:\n"
	"  isolation: both\n"
	"  groups:\n"
	"    web: {selector: {app: web}}\n"
	"    api: {selector: {app: api}}\n"
	"    db:  {selector: {app: db}}\n"
	"    lab: {cidrs: [10.97.0.0/16, 10.96.1.0/29]}\n"
	"    v6lab: {cidrs: [\"fd00:300::/64\"]}\n"
	"  allow:\n"
	"    - {from: world, to: web, ports: [tcp/443, tcp/80]}\n"
	"    - {from: web, to: api, ports: [tcp/8080-8090, udp/53]}\n"
	"    - {from: api, to: db, ports: [tcp/5432, icmp, icmpv6]}\n"
	"    - {from: web, to: db, ports: [tcp/7000-7100]}\n"
	"    - {from: lab, to: db, ports: [any]}\n"
	"    - {from: v6lab, to: api, ports: [sctp/9000]}\n"
	"---\n"
	"apiVersion: mseg.io/v1\n"
	"kind: AllowList\n"
	"metadata: {name: audit, namespace: shop}\n"
	"spec:\n"
	"  mode: audit\n"
	"  isolation: ingress\n"
	"  groups:\n"
	"    log: {selector: {app: log}}\n"
	"    lan: {cidrs: [10.0.0.0/8]}\n"
	"  allow:\n"
	"    - {from: lan, to: log, ports: [udp/514]}\n";

static const char fuzz_plan_inventory[] =
	"endpoints:\n"
	"  - {id: api, name: api, namespace: shop, labels: {app: api}, netns: /run/netns/f-api,"
	" ips: [10.89.0.3, \"fd89::3\"]}\n"
	"  - {id: db, name: db, namespace: shop, labels: {app: db}, netns: /run/netns/f-db,"
	" ips: [10.89.0.4, \"fd89::4\"]}\n"
	"  - {id: log, name: log, namespace: shop, labels: {app: log}, netns: /run/netns/f-log,"
	" ips: [10.89.0.5]}\n"
	"  - {id: web, name: web, namespace: shop, labels: {app: web}, netns: /run/netns/f-web,"
	" ips: [10.89.0.2, \"fd89::2\"]}\n";

/* The plan with the documents it borrows from. */
struct fuzz_plan {
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_plan *plan;
};

/* -1 when the built-in documents do not compile (a bug here). */
static inline int fuzz_plan_build(struct fuzz_plan *fp)
{
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_err err;

	policy_set_init(&fp->pols);
	inventory_init(&fp->inv);
	fp->plan = NULL;
	if (policy_parse_buffer(&fp->pols, "fuzz_plan", fuzz_plan_policies,
				sizeof(fuzz_plan_policies) - 1, &err) < 0 ||
	    inventory_parse_buffer(&fp->inv, "fuzz_inventory", fuzz_plan_inventory,
				   sizeof(fuzz_plan_inventory) - 1, &err) < 0 ||
	    compile_plan((const struct mseg_policy *const *)fp->pols.items, fp->pols.n,
			 (const struct mseg_endpoint *const *)fp->inv.eps, fp->inv.n, &copts,
			 &fp->plan) < 0) {
		fprintf(stderr, "fuzz_plan: %s:%u:%u: %s\n", err.file, err.line, err.col, err.msg);
		return -1;
	}
	return 0;
}

static inline void fuzz_plan_release(struct fuzz_plan *fp)
{
	fp->plan = plan_free(fp->plan);
	policy_set_release(&fp->pols);
	inventory_release(&fp->inv);
}

#endif
