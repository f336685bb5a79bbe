/* mseg compile: the nft ruleset of each endpoint, offline (no daemon, no
 * root). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mseg/compile/render_text.h"
#include "mseg/kernel/table_text.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "mseg/util/err.h"
#include "mseg.h"

enum { OPT_ENDPOINTS = 256, OPT_ENDPOINT, OPT_QUEUE, OPT_QUEUE_NUM, OPT_RATE, OPT_BURST,
       OPT_DEFAULT_DENY, OPT_MODE, OPT_NODE_ADDR };
#define MAX_NODE_ADDRS 16

const struct cli_option compile_options[] = {
	{ "file", 'f', required_argument, "FILE|DIR",
	  "policy file, or directory of *.yaml, *.yml, *.json" },
	{ "endpoints", OPT_ENDPOINTS, required_argument, "FILE", "endpoint inventory" },
	{ "endpoint", OPT_ENDPOINT, required_argument, "ID", "only this endpoint" },
	{ "queue", OPT_QUEUE, required_argument, "native|xt|nflog",
	  "how unmatched packets reach msegd (default native;\n"
	  "xt prints as native; nflog loads on kernels without\n"
	  "the queue expression)" },
	{ "queue-num", OPT_QUEUE_NUM, required_argument, "N", "queue or NFLOG group number (default 0)" },
	{ "rate", OPT_RATE, required_argument, "N",
	  "unmatched packets per second sent to msegd (default 100)" },
	{ "burst", OPT_BURST, required_argument, "N", "burst of that limit (default 200)" },
	{ "default-deny", OPT_DEFAULT_DENY, no_argument, NULL,
	  "isolate every direction no policy isolates" },
	{ "mode", OPT_MODE, required_argument, "enforce|audit",
	  "audit: every isolated direction audits (default enforce)" },
	{ "node-addr", OPT_NODE_ADDR, required_argument, "ADDR",
	  "an address of the node, never isolated (repeat for more)" },
	{ "help", 'h', no_argument, NULL, "show these options" },
	CLI_OPTION_END,
};

__attribute__((format(printf, 1, 2))) static int compile_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mseg compile: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: mseg compile %s\n", command_find("compile")->synopsis);
	return EXIT_USAGE;
}

int cmd_compile(int argc, char **argv)
{
	const char *policy_path = NULL, *inventory_path = NULL, *only = NULL;
	struct table_opts topts = { .queue = QUEUE_NATIVE, .rate = TABLE_DEFAULT_RATE,
				    .burst = TABLE_DEFAULT_BURST };
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_addr node_addrs[MAX_NODE_ADDRS];
	struct mseg_policy_set set;
	struct mseg_inventory inv;
	struct mseg_plan *plan = NULL;
	struct mseg_err err;
	struct cli_parse p;
	char msg[1024];
	unsigned long v;
	int opt, r, status = 1;

	r = cli_parse_begin(&p, "compile", argc, argv);
	if (r)
		return r;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		switch (opt) {
		case 'f':
			policy_path = optarg;
			break;
		case OPT_ENDPOINTS:
			inventory_path = optarg;
			break;
		case OPT_ENDPOINT:
			only = optarg;
			break;
		case OPT_QUEUE:
			if (strcmp(optarg, "native") == 0)
				topts.queue = QUEUE_NATIVE;
			else if (strcmp(optarg, "xt") == 0)
				topts.queue = QUEUE_XT;
			else if (strcmp(optarg, "nflog") == 0)
				topts.queue = QUEUE_NFLOG;
			else
				return compile_usage_error("--queue '%s': native, xt or nflog", optarg);
			break;
		case OPT_QUEUE_NUM:
			if (number_parse(optarg, 0, 65535, &v) < 0)
				return compile_usage_error("--queue-num '%s': 0 to 65535", optarg);
			topts.queue_num = (uint16_t)v;
			break;
		case OPT_RATE:
			if (number_parse(optarg, 1, UINT32_MAX, &v) < 0)
				return compile_usage_error("--rate '%s': a positive number", optarg);
			topts.rate = (uint32_t)v;
			break;
		case OPT_BURST:
			if (number_parse(optarg, 1, UINT32_MAX, &v) < 0)
				return compile_usage_error("--burst '%s': a positive number", optarg);
			topts.burst = (uint32_t)v;
			break;
		case OPT_DEFAULT_DENY:
			copts.default_deny = true;
			break;
		case OPT_NODE_ADDR:
			if (copts.n_node_addrs == MAX_NODE_ADDRS)
				return compile_usage_error("at most %d --node-addr", MAX_NODE_ADDRS);
			if (addr_parse(optarg, &node_addrs[copts.n_node_addrs]) < 0)
				return compile_usage_error("--node-addr '%s': not an IPv4 or IPv6 address",
							   optarg);
			copts.n_node_addrs++;
			copts.node_addrs = node_addrs;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "enforce") == 0) {
				copts.force_audit = false;
				copts.default_mode = MSEG_MODE_ENFORCE;
			} else if (strcmp(optarg, "audit") == 0) {
				copts.force_audit = true;
				copts.default_mode = MSEG_MODE_AUDIT;
			} else {
				return compile_usage_error("--mode '%s': enforce or audit", optarg);
			}
			break;
		case 'h':
			command_usage_print(stdout, command_find("compile"));
			return 0;
		case ':':
			return compile_usage_error("%s needs an argument", argv[optind - 1]);
		default:
			return compile_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return compile_usage_error("unexpected argument '%s'", argv[optind]);
	if (!policy_path)
		return compile_usage_error("%s", "-f FILE|DIR is required");
	if (!inventory_path)
		return compile_usage_error("%s", "--endpoints FILE is required");

	policy_set_init(&set);
	inventory_init(&inv);
	err_clear(&err);
	r = policy_load_path(&set, policy_path, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err_format(&err, msg, sizeof(msg)));
		goto out_release;
	}
	r = inventory_load_file(&inv, inventory_path, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err_format(&err, msg, sizeof(msg)));
		goto out_release;
	}
	r = compile_plan((const struct mseg_policy *const *)set.items, set.n,
			 (const struct mseg_endpoint *const *)inv.eps, inv.n, &copts, &plan);
	if (r < 0) {
		fprintf(stderr, "mseg compile: %s\n", strerror(-r));
		goto out_release;
	}

	if (only) {
		const struct mseg_ep_plan *ep = NULL;

		for (size_t i = 0; i < plan->n_eps && !ep; i++)
			if (strcmp(plan->eps[i].ep->id, only) == 0)
				ep = &plan->eps[i];
		if (!ep) {
			fprintf(stderr, "mseg compile: endpoint '%s' is not in %s\n", only,
				inventory_path);
			goto out_free_plan;
		}
		r = render_text_header(stdout, ep->ep);
		if (r == 0)
			r = table_text_render(stdout, ep, &topts);
	} else {
		r = table_text_render_plan(stdout, plan, &topts);
	}
	if (r == 0 && fflush(stdout) != 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "mseg compile: writing the output: %s\n", strerror(-r));
		goto out_free_plan;
	}
	status = 0;
out_free_plan:
	plan_free(plan);
out_release:
	inventory_release(&inv);
	policy_set_release(&set);
	return status;
}
