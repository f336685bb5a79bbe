/* mseg learn: an AllowList (or NetworkPolicies) learned from the audited
 * flow records of a namespace and the accepted-connection summaries of its
 * learning endpoints (GET /v1/recommendations), as YAML that
 * `mseg apply` takes,
 * each rule with a comment giving its flow count and first and last time
 * seen. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mseg/client/query.h"
#include "mseg.h"

#define LEARN_QUERY_MAX 2048

enum { OPT_NS = 256, OPT_SINCE, OPT_AGG, OPT_AGG6, OPT_FORMAT, OPT_NAME };

const struct cli_option learn_options[] = {
	{ "namespace", OPT_NS, required_argument, "NS", "the namespace to learn for (default: default)" },
	{ "since", OPT_SINCE, required_argument, "T", "only records seen since: 30s, 5m, 2h, 1d ago, or an RFC 3339 time" },
	{ "aggregate", OPT_AGG, required_argument, "/N",
	  "widen outside IPv4 peers to their /N (default: only prefixes whose every\naddress was seen)" },
	{ "aggregate6", OPT_AGG6, required_argument, "/N", "the same for IPv6 peers" },
	{ "name", OPT_NAME, required_argument, "NAME", "metadata.name of the list (default: learned)" },
	{ "format", OPT_FORMAT, required_argument, "KIND",
	  "allowlist (default): one AllowList; networkpolicy: the same\nallows as Kubernetes NetworkPolicies, one per group" },
	{ "output", 'o', required_argument, "yaml|json", "yaml (default): the list, ready for\n`mseg apply -f`; json: the API's answer" },
	CLI_OPTION_END,
};


static int prefix_opt(struct client_query *q, const char *key, const char *v, unsigned long max)
{
	unsigned long n;

	if (number_parse(v + (*v == '/'), 1, max, &n) < 0)
		return usage_error("learn", "--%s '%s': a prefix length /1 to /%lu", key, v, max);
	return cli_query_add("learn", LEARN_QUERY_MAX, q, key, v + (*v == '/'));
}

int cmd_learn(int argc, char **argv)
{
	struct client_query q;
	struct cli_parse p;
	enum out_fmt fmt = OUT_YAML;
	char since_buf[32], *path = NULL;
	const char *since;
	json_t *j = NULL;
	int opt, status;

	status = cli_parse_begin(&p, "learn", argc, argv);
	if (status)
		return status;
	if (client_query_init(&q, LEARN_QUERY_MAX) < 0) {
		fprintf(stderr, "mseg learn: out of memory\n");
		return 1;
	}
	while (status == 0 && (opt = cli_parse_next(&p, argc, argv)) != -1) {
		switch (opt) {
		case OPT_NS:
			status = cli_query_add("learn", LEARN_QUERY_MAX, &q, "namespace", optarg);
			break;
		case OPT_NAME:
			status = cli_query_add("learn", LEARN_QUERY_MAX, &q, "name", optarg);
			break;
		case OPT_SINCE:
			since = cli_since_parse(optarg, since_buf, sizeof(since_buf));
			if (!since)
				status = usage_error("learn", "--since '%s': e.g. 30s, 5m, 2h, 1d or an RFC 3339 time",
						     optarg);
			else
				status = cli_query_add("learn", LEARN_QUERY_MAX, &q, "since", since);
			break;
		case OPT_AGG:
			status = prefix_opt(&q, "aggregate", optarg, 32);
			break;
		case OPT_AGG6:
			status = prefix_opt(&q, "aggregate6", optarg, 128);
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "allowlist") != 0 && strcmp(optarg, "networkpolicy") != 0)
				status = usage_error("learn", "--format '%s': allowlist or networkpolicy",
						     optarg);
			else
				status = cli_query_add("learn", LEARN_QUERY_MAX, &q, "format", optarg);
			break;
		case 'o':
			if (strcmp(optarg, "yaml") == 0)
				fmt = OUT_YAML;
			else if (strcmp(optarg, "json") == 0)
				fmt = OUT_JSON;
			else
				status = usage_error("learn", "-o '%s': yaml or json", optarg);
			break;
		default:
			status = usage_error("learn", "bad option '%s'", argv[optind - 1]);
		}
	}
	if (status == 0)
		status = args_none("learn", argc, argv);
	if (status)
		goto out_release;
	if (client_query_path(&q, "/v1/recommendations", &path) < 0) {
		fprintf(stderr, "mseg learn: out of memory\n");
		status = 1;
		goto out_release;
	}
	status = api_get_json(path, &j);
	if (status == 0) {
		const json_t *w;
		size_t i;

		if (fmt == OUT_JSON)
			print_json(j);
		else
			fputs(jstr(j, "yaml"), stdout);
		/* what the list cannot say by itself goes to stderr */
		json_array_foreach(json_object_get(j, "warnings"), i, w)
			fprintf(stderr, "mseg learn: warning: %s\n", json_string_value(w));
		if (json_integer_value(json_object_get(j, "flows")) == 0 &&
		    json_integer_value(json_object_get(j, "accepted_connections")) == 0)
			fprintf(stderr, "mseg learn: no audited flow records and no accepted connections "
				"of learning endpoints for this namespace: the list admits nothing\n");
	}
	json_decref(j);
	free(path);
out_release:
	client_query_release(&q);
	return status;
}
