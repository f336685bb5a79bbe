/* mseg: the command line tool. Every command is a line in `commands[]`
 * (exact-match name, synopsis, one-line help, option text, handler);
 * `mseg help` prints from that table. A handler gets argv with argv[0] = the
 * command name and returns the exit status: 0 ok, 1 failure, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/err.h"
#include "mseg/inventory.h"
#include "mseg/plan.h"
#include "mseg/policy.h"
#include "mseg/render_text.h"

#define EXIT_USAGE 2

struct command {
	const char *name;       /* exact match, no prefixes */
	const char *synopsis;   /* arguments, one line */
	const char *help;       /* what it does, one line */
	const char *options;    /* option lines for `mseg help NAME`; may be NULL */
	int (*run)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);
static int cmd_compile(int argc, char **argv);

static const struct command commands[] = {
	{ "help", "[COMMAND]", "show the commands, or the options of one", NULL, cmd_help },
	{ "compile", "-f FILE|DIR --endpoints FILE [OPTIONS]",
	  "print the nft ruleset of each endpoint (offline: no daemon, no root)",
	  "  -f, --file FILE|DIR     policy file, or directory of *.yaml, *.yml, *.json\n"
	  "  --endpoints FILE        endpoint inventory\n"
	  "  --endpoint ID           only this endpoint\n"
	  "  --queue native|xt|nflog how unmatched packets reach msegd (default native;\n"
	  "                          xt prints as native; nflog loads on kernels without\n"
	  "                          the queue expression)\n"
	  "  --queue-num N           queue or NFLOG group number (default 0)\n"
	  "  --rate N                unmatched packets per second sent to msegd (default 100)\n"
	  "  --burst N               burst of that limit (default 200)\n"
	  "  --default-deny          isolate every direction no policy isolates\n"
	  "  --mode enforce|audit    audit: every isolated direction audits (default enforce)\n",
	  cmd_compile },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage_print(FILE *f)
{
	fprintf(f, "usage: mseg COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s %s\n  %-8s   %s\n", commands[i].name, commands[i].synopsis, "",
			commands[i].help);
	fprintf(f, "\n`mseg help COMMAND` shows the options of a command.\n");
}

static void command_usage_print(FILE *f, const struct command *c)
{
	fprintf(f, "usage: mseg %s %s\n%s\n", c->name, c->synopsis, c->help);
	if (c->options)
		fprintf(f, "\noptions:\n%s", c->options);
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc > 2) {
		fprintf(stderr, "usage: mseg help [COMMAND]\n");
		return EXIT_USAGE;
	}
	if (argc < 2) {
		usage_print(stdout);
		return 0;
	}
	c = command_find(argv[1]);
	if (!c) {
		fprintf(stderr, "mseg: unknown command '%s'; see `mseg help`\n", argv[1]);
		return EXIT_USAGE;
	}
	command_usage_print(stdout, c);
	return 0;
}

/* A whole decimal number in [min, max]. */
static int number_parse(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!s[0] || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

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

static int cmd_compile(int argc, char **argv)
{
	enum { OPT_ENDPOINTS = 256, OPT_ENDPOINT, OPT_QUEUE, OPT_QUEUE_NUM, OPT_RATE, OPT_BURST,
	       OPT_DEFAULT_DENY, OPT_MODE };
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "endpoints", required_argument, NULL, OPT_ENDPOINTS },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "queue", required_argument, NULL, OPT_QUEUE },
		{ "queue-num", required_argument, NULL, OPT_QUEUE_NUM },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "burst", required_argument, NULL, OPT_BURST },
		{ "default-deny", no_argument, NULL, OPT_DEFAULT_DENY },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *policy_path = NULL, *inventory_path = NULL, *only = NULL;
	struct table_opts topts = { .queue = QUEUE_NATIVE, .rate = TABLE_DEFAULT_RATE,
				    .burst = TABLE_DEFAULT_BURST };
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_policy_set set;
	struct mseg_inventory inv;
	struct mseg_plan *plan = NULL;
	struct mseg_err err;
	char msg[1024];
	unsigned long v;
	int opt, r, status = 1;

	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":f:h", longopts, NULL)) != -1) {
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
			r = render_text_table(stdout, ep, &topts);
	} else {
		r = render_text_plan(stdout, plan, &topts);
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

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage_print(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage_print(stdout);
		return 0;
	}
	c = command_find(argv[1]);
	if (!c) {
		fprintf(stderr, "mseg: unknown command '%s'; see `mseg help`\n", argv[1]);
		return EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}
