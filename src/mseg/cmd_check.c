/* mseg check: would FROM reach TO on this port, and which rule decides.
 * Scriptable: exit 0 allowed (or audited), 1 denied, 2 usage or an
 * unknown endpoint, 3 msegd unreachable. --port goes through the policies'
 * own port parser, hints included. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "mseg.h"

#define EXIT_UNREACHABLE 3

enum { OPT_FROM = 256, OPT_TO, OPT_PORT };

const struct cli_option check_options[] = {
	{ "from", OPT_FROM, required_argument, "ID|ADDR", "source endpoint id or address" },
	{ "to", OPT_TO, required_argument, "ID|ADDR", "destination endpoint id or address" },
	{ "port", OPT_PORT, required_argument, "PROTO/PORT", "tcp/5432, udp/53, icmp, icmpv6, any\n(as a policy writes it; one port for tcp/udp/sctp)" },
	{ "output", 'o', required_argument, "table|json", "output format (default table)" },
	CLI_OPTION_END,
};

int cmd_check(int argc, char **argv)
{
	const char *from = NULL, *to = NULL, *port = NULL;
	enum out_fmt fmt = OUT_TABLE;
	struct client_buf resp = { 0 };
	struct cli_parse p;
	json_t *body, *j;
	char *text;
	long code;
	int opt, usage, status = 1;

	usage = cli_parse_begin(&p, "check", argc, argv);
	if (usage)
		return usage;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		switch (opt) {
		case OPT_FROM:
			from = optarg;
			break;
		case OPT_TO:
			to = optarg;
			break;
		case OPT_PORT:
			port = optarg;
			break;
		default:
			usage = opt_output("check", opt, argv, &fmt);
			if (usage)
				return usage;
		}
	}
	usage = args_none("check", argc, argv);
	if (usage)
		return usage;
	if (!from || !to || !port)
		return usage_error("check", "--from, --to and --port are required");
	{
		struct mseg_port pp;
		struct mseg_err err;

		err_clear(&err);
		if (policy_port_parse(port, &pp, &err) < 0)
			return usage_error("check", "--port: %s", err.msg);
		if (proto_has_ports(pp.proto) && pp.lo != pp.hi)
			return usage_error("check", "--port '%s': a check needs one port, like %.*s/%u "
					   "(in a policy, '%s' means %s)", port,
					   (int)strcspn(port, "/"), port, pp.lo ? pp.lo : pp.proto == IPPROTO_UDP ? 53 : 80, port,
					   pp.lo ? "that range" : "every port");
	}
	body = json_pack("{ssss}", "from", from, "to", to);
	if (body)
		json_object_set_new(body, strchr(port, '/') ? "port" : "proto", json_string(port));
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text) {
		fprintf(stderr, "mseg check: out of memory\n");
		return 1;
	}
	code = api_call("POST", "/v1/check", "application/json", text, strlen(text), &resp, NULL, NULL);
	free(text);
	if (code < 0) {
		status = EXIT_UNREACHABLE;
		goto out_free;
	}
	if (code >= 300) {
		api_error_print("check", code, &resp);
		/* 400: an endpoint msegd does not know, or no common family */
		if (code == 400)
			status = EXIT_USAGE;
		goto out_free;
	}
	j = json_loads(resp.data ? resp.data : "", 0, NULL);
	if (fmt == OUT_JSON)
		print_json(j);
	else
		print_check(j, from, to, port);
	status = json_is_true(json_object_get(j, "allowed")) ? 0 : 1;
	json_decref(j);
out_free:
	free(resp.data);
	return status;
}
