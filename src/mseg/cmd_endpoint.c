/* mseg endpoint add|del ID: change the API's inventory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mseg.h"

enum { OPT_NETNS = 256, OPT_IP, OPT_NAME, OPT_NS, OPT_LABEL, OPT_DRY };

const struct cli_option endpoint_options[] = {
	{ "netns", OPT_NETNS, required_argument, "PATH",
	  "the endpoint's network namespace (/run/netns/X, /proc/PID/ns/net)" },
	{ "ip", OPT_IP, required_argument, "ADDR", "an address (repeat for more; IPv4 or IPv6)" },
	{ "name", OPT_NAME, required_argument, "N", "name (default: the id)" },
	{ "namespace", OPT_NS, required_argument, "NS", "namespace (default \"default\")" },
	{ "label", OPT_LABEL, required_argument, "K=V", "a label (repeat for more)" },
	{ "dry-run", OPT_DRY, no_argument, NULL, "show what would change; apply nothing" },
	CLI_OPTION_END,
};

int cmd_endpoint(int argc, char **argv)
{
	json_t *body = json_object(), *ips = json_array(), *labels = json_object();
	bool dry_run = false, add;
	const char *id;
	char *path = NULL, *what = NULL, *text;
	struct client_buf resp = { 0 };
	struct cli_parse p;
	long code;
	int opt, status;

	if (argc < 2 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "del") != 0)) {
		status = usage_error("endpoint", "expected 'add ID ...' or 'del ID'");
		goto out_free;
	}
	add = strcmp(argv[1], "add") == 0;
	argc--;
	argv++;
	status = cli_parse_begin(&p, "endpoint", argc, argv);
	if (status)
		goto out_free;
	while ((opt = cli_parse_next(&p, argc, argv)) != -1) {
		switch (opt) {
		case OPT_NETNS:
			json_object_set_new(body, "netns", json_string(optarg));
			break;
		case OPT_IP:
			json_array_append_new(ips, json_string(optarg));
			break;
		case OPT_NAME:
			json_object_set_new(body, "name", json_string(optarg));
			break;
		case OPT_NS:
			json_object_set_new(body, "namespace", json_string(optarg));
			break;
		case OPT_LABEL: {
			const char *eq = strchr(optarg, '=');
			char *k;

			if (!eq || eq == optarg) {
				status = usage_error("endpoint", "--label '%s': expected KEY=VALUE", optarg);
				goto out_free;
			}
			k = strndup(optarg, (size_t)(eq - optarg));
			if (k)
				json_object_set_new(labels, k, json_string(eq + 1));
			free(k);
			break;
		}
		case OPT_DRY:
			dry_run = true;
			break;
		default:
			status = usage_error("endpoint", "bad option '%s'", argv[optind - 1]);
			goto out_free;
		}
	}
	if (argc - optind != 1) {
		status = usage_error("endpoint", "expected one ID");
		goto out_free;
	}
	id = argv[optind];
	path = api_path_new("/v1/endpoints", id, NULL, dry_run ? "?dry_run=1" : NULL);
	if (!path || asprintf(&what, "endpoint %s", id) < 0) {
		fprintf(stderr, "mseg: out of memory\n");
		what = NULL;
		status = 1;
		goto out_free;
	}
	if (!add) {
		code = api_call("DELETE", path, NULL, NULL, 0, &resp, NULL, NULL);
		status = mutation_print(what, code, &resp, dry_run);
		goto out_free;
	}
	if (!json_object_get(body, "netns") || !json_array_size(ips)) {
		status = usage_error("endpoint", "add needs --netns PATH and at least one --ip ADDR");
		goto out_free;
	}
	json_object_set(body, "ips", ips);
	if (json_object_size(labels))
		json_object_set(body, "labels", labels);
	text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		fprintf(stderr, "mseg: out of memory\n");
		status = 1;
		goto out_free;
	}
	code = api_call("PUT", path, "application/json", text, strlen(text), &resp, NULL, NULL);
	free(text);
	status = mutation_print(what, code, &resp, dry_run);
out_free:
	free(resp.data);
	free(what);
	free(path);
	json_decref(body);
	json_decref(ips);
	json_decref(labels);
	return status;
}
